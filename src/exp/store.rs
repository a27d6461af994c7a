//! Records in git: the append-only ref `refs/trove/exps`. Each record commit adds
//! `runs/<id>.json` (and its metric series under `series/<id>/`), with the previous record
//! commit as first parent and the experiment's code commit as second parent. Removing
//! records is a record commit too: it drops `runs/<id>.json` and `series/<id>/` and adds
//! the marker `removed/<id>`, so that merging another copy of the records that still has
//! them does not bring them back; history keeps them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::error::{Error, Result};
use crate::exp::record::{Metric, Point, Record, SeriesRef};

pub const REF: &str = "refs/trove/exps";

/// Where `trove exp pull` fetches a git remote's records.
pub fn remote_ref(remote: &str) -> String {
    format!("refs/trove/remotes/{remote}/exps")
}

fn git_err(e: git2::Error) -> Error {
    Error::git(Path::new(REF), e)
}

/// Store `record` with its metric `series` (key -> points): series become blobs under
/// `series/<id>/` and the record's metrics point at them. Safe against a concurrent
/// writer: the ref moves only from the commit the new one was built on.
pub fn append(
    git: &git2::Repository,
    mut record: Record,
    series: &BTreeMap<String, Vec<Point>>,
) -> Result<Record> {
    for (key, points) in series {
        let path = format!("series/{}/{}.json", record.id, sanitize(key));
        record.metrics.insert(
            key.clone(),
            Metric::Series(SeriesRef {
                series: path,
                points: points.len() as u64,
                last: points.last().map(|p| p.value),
            }),
        );
    }
    let code = git2::Oid::from_str(&record.commit).map_err(git_err)?;
    let code_commit = git.find_commit(code).map_err(git_err)?;
    let json = serde_json::to_vec_pretty(&record).expect("a record serialises");
    let mut locked = false;
    for _ in 0..20 {
        let tip = tip(git, REF)?;
        let base_tree = match &tip {
            Some(c) => Some(c.tree().map_err(git_err)?),
            None => None,
        };
        let mut files: Vec<(String, Vec<u8>)> = vec![(format!("runs/{}.json", record.id), json.clone())];
        for (key, points) in series {
            let body = serde_json::to_vec(points).expect("points serialise");
            files.push((format!("series/{}/{}.json", record.id, sanitize(key)), body));
        }
        let tree = with_files(git, base_tree.as_ref(), &files)?;
        let sig = signature(git)?;
        let mut parents = Vec::new();
        if let Some(t) = &tip {
            parents.push(t);
        }
        parents.push(&code_commit);
        let message = format!("trove exp {} {}\n\ncommit {}\n", record.id, record.name, record.commit);
        let commit = git.commit(None, &sig, &sig, &message, &tree, &parents).map_err(git_err)?;
        match move_ref(git, REF, tip.as_ref().map(|c| c.id()), commit, "trove exp log")? {
            Moved::Done => return Ok(record),
            // Another process moved the ref (build on its commit instead) or is moving it.
            moved => locked = wait_if_locked(moved),
        }
    }
    if locked {
        return Err(Error::exp(&record.id, still_locked(git)));
    }
    Err(Error::exp(&record.id, format!("{REF} kept changing under this process; try again")))
}

/// Why moving `REF` failed when its lock file never went away.
fn still_locked(git: &git2::Repository) -> String {
    let lock = git.path().join(format!("{REF}.lock"));
    format!(
        "{REF} stays locked ({}); if no git or trove command is running, a killed one left that \
         lock file: delete it and run the command again",
        lock.display()
    )
}

/// After a failed move: whether the ref was locked, having given the process that holds
/// the lock a moment to finish.
fn wait_if_locked(moved: Moved) -> bool {
    let locked = matches!(moved, Moved::Locked);
    if locked {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    locked
}

/// How an attempt to move a ref went.
enum Moved {
    Done,
    /// The ref was not where the new commit was built on.
    Raced,
    /// Another process holds the ref's lock file.
    Locked,
}

/// Point `name` at `new` only if it is still at `old` (None: does not exist yet).
fn move_ref(
    git: &git2::Repository,
    name: &str,
    old: Option<git2::Oid>,
    new: git2::Oid,
    log: &str,
) -> Result<Moved> {
    let result = match old {
        Some(old) => git.reference_matching(name, new, true, old, log).map(|_| ()),
        None => git.reference(name, new, false, log).map(|_| ()),
    };
    match result {
        Ok(()) => Ok(Moved::Done),
        Err(e) if e.code() == git2::ErrorCode::Locked => Ok(Moved::Locked),
        Err(e) if matches!(e.code(), git2::ErrorCode::Modified | git2::ErrorCode::Exists) => Ok(Moved::Raced),
        Err(e) => Err(git_err(e)),
    }
}

/// The commit a ref names, if it exists.
pub fn tip<'r>(git: &'r git2::Repository, name: &str) -> Result<Option<git2::Commit<'r>>> {
    match git.find_reference(name) {
        Ok(r) => Ok(Some(r.peel_to_commit().map_err(git_err)?)),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(git_err(e)),
    }
}

/// `base` with `files` (path -> content) added or replaced.
fn with_files<'r>(
    git: &'r git2::Repository,
    base: Option<&git2::Tree>,
    files: &[(String, Vec<u8>)],
) -> Result<git2::Tree<'r>> {
    edit_tree(git, base, files, &[])
}

/// `base` with `files` (path -> content) added or replaced and the records `removed`
/// (their file and series) taken out.
fn edit_tree<'r>(
    git: &'r git2::Repository,
    base: Option<&git2::Tree>,
    files: &[(String, Vec<u8>)],
    removed: &[String],
) -> Result<git2::Tree<'r>> {
    // Build through an in-memory index: simple and handles nested folders.
    let mut index = git2::Index::new().map_err(git_err)?;
    if let Some(t) = base {
        index.read_tree(t).map_err(git_err)?;
    }
    for id in removed {
        index.remove_path(Path::new(&format!("runs/{id}.json"))).map_err(git_err)?;
        index.remove_dir(Path::new(&format!("series/{id}")), 0).map_err(git_err)?;
    }
    for (path, content) in files {
        let blob = git.blob(content).map_err(git_err)?;
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: 0o100644,
            uid: 0,
            gid: 0,
            file_size: content.len() as u32,
            id: blob,
            flags: 0,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        };
        index.add(&entry).map_err(git_err)?;
    }
    let oid = index.write_tree_to(git).map_err(git_err)?;
    git.find_tree(oid).map_err(git_err)
}

/// Merge the records under `other` into `REF`: the union of both trees (record files
/// never collide). Returns how many records were new here.
pub fn merge_from(git: &git2::Repository, other: &str) -> Result<usize> {
    let Some(theirs) = tip(git, other)? else { return Ok(0) };
    let mut locked = false;
    for _ in 0..20 {
        let ours = tip(git, REF)?;
        let Some(ours) = ours else {
            let count = list_tree(git, &theirs.tree().map_err(git_err)?)?.len();
            match move_ref(git, REF, None, theirs.id(), "trove exp pull")? {
                Moved::Done => return Ok(count),
                moved => locked = wait_if_locked(moved),
            }
            continue;
        };
        if ours.id() == theirs.id() || git.graph_descendant_of(ours.id(), theirs.id()).map_err(git_err)? {
            return Ok(0);
        }
        let their_tree = theirs.tree().map_err(git_err)?;
        let our_tree = ours.tree().map_err(git_err)?;
        let mut new_files = Vec::new();
        collect_missing(git, &their_tree, &our_tree, "", &mut new_files)?;
        // Records removed on either side stay removed.
        let ours_removed = removed_ids(git, &our_tree)?;
        let theirs_removed = removed_ids(git, &their_tree)?;
        new_files.retain(|(p, _)| record_of(p).is_none_or(|id| !ours_removed.contains(id)));
        let drop_here: Vec<String> = theirs_removed
            .iter()
            .filter(|id| our_tree.get_path(Path::new(&format!("runs/{id}.json"))).is_ok())
            .cloned()
            .collect();
        let added = new_files.iter().filter(|(p, _)| p.starts_with("runs/")).count();
        let target = if git.graph_descendant_of(theirs.id(), ours.id()).map_err(git_err)? {
            theirs.id()
        } else {
            let tree = edit_tree(git, Some(&our_tree), &new_files, &drop_here)?;
            let sig = signature(git)?;
            let message = format!("trove exp: merge {added} records from {other}\n");
            git.commit(None, &sig, &sig, &message, &tree, &[&ours, &theirs]).map_err(git_err)?
        };
        match move_ref(git, REF, Some(ours.id()), target, "trove exp pull")? {
            Moved::Done => return Ok(added),
            moved => locked = wait_if_locked(moved),
        }
    }
    if locked {
        return Err(Error::exp(REF, still_locked(git)));
    }
    Err(Error::exp(REF, "kept changing during the merge; try again"))
}

/// Blobs in `theirs` whose path `ours` lacks, as (path, content).
fn collect_missing(
    git: &git2::Repository,
    theirs: &git2::Tree,
    ours: &git2::Tree,
    dir: &str,
    out: &mut Vec<(String, Vec<u8>)>,
) -> Result<()> {
    let mut stack = vec![(theirs.id(), dir.to_string())];
    while let Some((tree_id, dir)) = stack.pop() {
        let tree = git.find_tree(tree_id).map_err(git_err)?;
        for entry in tree.iter() {
            let Ok(name) = entry.name() else { continue };
            let path = format!("{dir}{name}");
            match entry.kind() {
                Some(git2::ObjectType::Tree) => stack.push((entry.id(), format!("{path}/"))),
                Some(git2::ObjectType::Blob) if ours.get_path(Path::new(&path)).is_err() => {
                    let blob = git.find_blob(entry.id()).map_err(git_err)?;
                    out.push((path, blob.content().to_vec()));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Every record under `REF`, oldest first (ids sort by time).
pub fn list(git: &git2::Repository) -> Result<Vec<Record>> {
    match tip(git, REF)? {
        Some(c) => list_tree(git, &c.tree().map_err(git_err)?),
        None => Ok(Vec::new()),
    }
}

fn list_tree(git: &git2::Repository, tree: &git2::Tree) -> Result<Vec<Record>> {
    let Some(runs) = tree.get_name("runs") else { return Ok(Vec::new()) };
    let runs = git.find_tree(runs.id()).map_err(git_err)?;
    let removed = removed_ids(git, tree)?;
    let mut out = Vec::new();
    for entry in runs.iter() {
        let name = entry.name().unwrap_or_default().to_string();
        if name.strip_suffix(".json").is_some_and(|id| removed.contains(id)) {
            continue;
        }
        let blob = git
            .find_blob(entry.id())
            .map_err(|_| Error::exp(format!("runs/{name}"), "not a valid record: not a file"))?;
        out.push(Record::parse(blob.content(), &format!("runs/{name}"))?);
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The ids under `removed/`: records removed from the records.
fn removed_ids(git: &git2::Repository, tree: &git2::Tree) -> Result<BTreeSet<String>> {
    let Some(entry) = tree.get_name("removed") else { return Ok(BTreeSet::new()) };
    let removed = git.find_tree(entry.id()).map_err(git_err)?;
    Ok(removed.iter().filter_map(|e| e.name().ok().map(String::from)).collect())
}

/// The record id a path of the records tree belongs to (`runs/<id>.json`, `series/<id>/…`).
fn record_of(path: &str) -> Option<&str> {
    if let Some(rest) = path.strip_prefix("runs/") {
        return rest.strip_suffix(".json");
    }
    path.strip_prefix("series/")?.split('/').next()
}

/// Remove `records` with one record commit: their files go, a `removed/<id>` marker each
/// comes; history keeps them. Safe against a concurrent writer, like [`append`].
pub fn remove(git: &git2::Repository, records: &[&Record]) -> Result<()> {
    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let markers: Vec<(String, Vec<u8>)> = records
        .iter()
        .map(|r| {
            let body = serde_json::json!({ "id": r.id, "name": r.name, "removed": crate::exp::record::now_rfc3339() });
            (format!("removed/{}", r.id), serde_json::to_vec_pretty(&body).expect("JSON serialises"))
        })
        .collect();
    let shown: Vec<String> = records.iter().map(|r| format!("{} {}", r.id, r.name)).collect();
    let message = format!("trove exp remove {}\n\n{}\n", ids.join(" "), shown.join("\n"));
    let mut locked = false;
    for _ in 0..20 {
        let tip = tip(git, REF)?.ok_or_else(|| Error::exp(REF, "there are no records"))?;
        let tree = edit_tree(git, Some(&tip.tree().map_err(git_err)?), &markers, &ids)?;
        let sig = signature(git)?;
        let commit = git.commit(None, &sig, &sig, &message, &tree, &[&tip]).map_err(git_err)?;
        match move_ref(git, REF, Some(tip.id()), commit, "trove exp remove")? {
            Moved::Done => return Ok(()),
            moved => locked = wait_if_locked(moved),
        }
    }
    if locked {
        return Err(Error::exp(REF, still_locked(git)));
    }
    Err(Error::exp(REF, "kept changing under this process; try again"))
}

/// The record `query` names: a whole id, a unique id prefix, or a name (the newest run
/// of that name).
pub fn find(git: &git2::Repository, query: &str) -> Result<Record> {
    let all = list(git)?;
    find_in(&all, query).cloned()
}

pub fn find_in<'a>(all: &'a [Record], query: &str) -> Result<&'a Record> {
    let q = query.to_ascii_lowercase();
    let by_id: Vec<&Record> = all.iter().filter(|r| r.id.starts_with(&q)).collect();
    match by_id.len() {
        1 => return Ok(by_id[0]),
        n if n > 1 => {
            let shown: Vec<&str> = by_id.iter().take(5).map(|r| r.short_id()).collect();
            return Err(Error::exp(
                query,
                format!("the prefix matches {n} records ({}…); give more characters", shown.join(", ")),
            ));
        }
        _ => {}
    }
    all.iter().rev().find(|r| r.name == query).ok_or_else(|| {
        Error::exp(query, "no record has this id, id prefix or name (`trove exp list` shows them)")
    })
}

/// The points of a series metric.
pub fn read_series(git: &git2::Repository, series: &SeriesRef) -> Result<Vec<Point>> {
    let tip = tip(git, REF)?.ok_or_else(|| Error::exp(&series.series, "there are no records"))?;
    let tree = tip.tree().map_err(git_err)?;
    let entry = tree
        .get_path(Path::new(&series.series))
        .map_err(|_| Error::exp(&series.series, "the series blob is missing from the records"))?;
    let blob = git.find_blob(entry.id()).map_err(git_err)?;
    serde_json::from_slice(blob.content())
        .map_err(|e| Error::exp(&series.series, format!("not a valid series: {e}")))
}

/// A metric key as a file name: `/` and other awkward characters become `_`.
fn sanitize(key: &str) -> String {
    key.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

/// The user's git identity, or a neutral one: a missing identity must not lose a record.
fn signature(git: &git2::Repository) -> Result<git2::Signature<'static>> {
    crate::git::signature(git, "COMMITTER", Path::new(REF))
        .or_else(|_| git2::Signature::now("trove", "trove@localhost").map_err(git_err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exp::record::{Status, Value, new_id};

    fn repo_with_commit() -> (tempfile::TempDir, git2::Repository, String) {
        let dir = tempfile::tempdir().unwrap();
        let git = git2::Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let tree = git.find_tree(git.index().unwrap().write_tree().unwrap()).unwrap();
        let c = git.commit(Some("HEAD"), &sig, &sig, "code", &tree, &[]).unwrap().to_string();
        drop(tree);
        (dir, git, c)
    }

    fn record(commit: &str, name: &str) -> Record {
        let mut r: Record = serde_json::from_value(serde_json::json!({
            "version": 1, "id": new_id(), "name": name, "created": "2026-01-01T00:00:00.000Z",
            "user": "u", "commit": commit, "branch": "main", "dirty": false, "status": "finished",
            "data": [], "params": {}, "metrics": {}, "tags": {}, "env": {"files": {}, "interpreters": {}},
            "artifacts": []
        }))
        .unwrap();
        r.params.insert("lr".into(), Value::Number(0.1));
        r.status = Status::Finished;
        r
    }

    #[test]
    fn append_list_find_and_series() {
        let (_d, git, c) = repo_with_commit();
        let mut series = BTreeMap::new();
        series.insert("loss".to_string(), vec![Point::new(0, 1.0), Point::new(1, 0.5)]);
        let a = append(&git, record(&c, "first"), &series).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = append(&git, record(&c, "second"), &BTreeMap::new()).unwrap();
        let all = list(&git).unwrap();
        assert_eq!(all.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["first", "second"]);
        assert_eq!(find(&git, &a.id[..12]).unwrap().id, a.id);
        assert_eq!(find(&git, "second").unwrap().id, b.id);
        assert!(find(&git, "nothing").is_err());
        let Metric::Series(s) = &all[0].metrics["loss"] else { panic!("a series") };
        assert_eq!(s.last, Some(0.5));
        assert_eq!(read_series(&git, s).unwrap(), vec![Point::new(0, 1.0), Point::new(1, 0.5)]);
        // Each record commit: previous record first, code commit second.
        let tip = tip(&git, REF).unwrap().unwrap();
        assert_eq!(tip.parent_count(), 2);
        assert_eq!(tip.parent_id(1).unwrap().to_string(), c);
        assert_eq!(tip.parent(0).unwrap().parent_count(), 1);
    }

    #[test]
    fn merge_is_a_union() {
        let (_d, git, c) = repo_with_commit();
        append(&git, record(&c, "base"), &BTreeMap::new()).unwrap();
        let base = tip(&git, REF).unwrap().unwrap().id();
        append(&git, record(&c, "ours"), &BTreeMap::new()).unwrap();
        // "Theirs": another record on the same base, under another ref.
        let ours_tip = tip(&git, REF).unwrap().unwrap().id();
        git.reference(REF, base, true, "test").unwrap();
        append(&git, record(&c, "theirs"), &BTreeMap::new()).unwrap();
        let theirs_tip = tip(&git, REF).unwrap().unwrap().id();
        git.reference("refs/trove/remotes/origin/exps", theirs_tip, true, "test").unwrap();
        git.reference(REF, ours_tip, true, "test").unwrap();
        assert_eq!(merge_from(&git, "refs/trove/remotes/origin/exps").unwrap(), 1);
        let names: Vec<String> = list(&git).unwrap().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["base", "ours", "theirs"]);
        assert_eq!(
            merge_from(&git, "refs/trove/remotes/origin/exps").unwrap(),
            0,
            "merging twice adds nothing"
        );
    }
}
