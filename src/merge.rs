//! Merging pointer files: git's conflict markers in a pointer, told apart from bad YAML;
//! and the merge driver (`trove merge-driver`, registered by `trove install-hooks`) that
//! combines two sides' changes to different files of a tracked folder.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cache::Cache;
use crate::error::Result;
use crate::manifest::{Entry, Manifest};
use crate::pointer::{Kind, Pointer};

/// A conflict that a git merge left in a pointer file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The line of the first conflict marker.
    pub line: usize,
    pub ours: Side,
    pub theirs: Side,
}

/// One side of a conflict: git's label for it (`HEAD`, a branch) and the `hash` it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    pub label: String,
    pub hash: Option<String>,
}

impl Conflict {
    pub fn describe(&self) -> String {
        let side = |name: &str, s: &Side| {
            let label =
                if s.label.is_empty() || s.label == name { String::new() } else { format!(" ({})", s.label) };
            let hash = s.hash.as_deref().map_or("no hash".to_string(), |h| format!("hash {h}"));
            format!("{name}{label} has {hash}")
        };
        format!("unresolved merge conflict: {}, {}", side("ours", &self.ours), side("theirs", &self.theirs))
    }
}

/// The label after a run of at least 7 `c` (git's conflict-marker-size is 7 by default),
/// if the line is such a marker.
fn marker(line: &str, c: char) -> Option<&str> {
    let rest = line.trim_start_matches(c);
    let run = line.len() - rest.len();
    (run >= 7 && (rest.is_empty() || rest.starts_with(' '))).then(|| rest.trim())
}

fn is_separator(line: &str) -> bool {
    marker(line, '=').is_some_and(str::is_empty)
}

/// The conflict git's merge left in a pointer's text, if there is one: each side is the
/// text outside the conflicts plus that side's lines (the base's lines of a diff3-style
/// conflict are left out).
pub fn conflict_in(text: &str) -> Option<Conflict> {
    enum In {
        Both,
        Ours,
        Base,
        Theirs,
    }
    let mut at = In::Both;
    let mut first = None;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut ours_label, mut theirs_label) = (String::new(), String::new());
    for (i, line) in text.lines().enumerate() {
        let start = marker(line, '<');
        let base = marker(line, '|');
        let end = marker(line, '>');
        if start.is_some() || base.is_some() || end.is_some() || is_separator(line) {
            first.get_or_insert(i + 1);
        }
        match at {
            In::Both => match start {
                Some(label) => {
                    if ours_label.is_empty() {
                        ours_label = label.to_string();
                    }
                    at = In::Ours;
                }
                None => {
                    ours.push(line);
                    theirs.push(line);
                }
            },
            In::Ours if base.is_some() => at = In::Base,
            In::Ours | In::Base if is_separator(line) => at = In::Theirs,
            In::Ours => ours.push(line),
            In::Base => {}
            In::Theirs => match end {
                Some(label) => {
                    if theirs_label.is_empty() {
                        theirs_label = label.to_string();
                    }
                    at = In::Both;
                }
                None => theirs.push(line),
            },
        }
    }
    let hash = |lines: &[&str]| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix("hash:").map(|h| h.trim().to_string()))
            .filter(|h| !h.is_empty())
    };
    first.map(|line| Conflict {
        line,
        ours: Side { label: ours_label, hash: hash(&ours) },
        theirs: Side { label: theirs_label, hash: hash(&theirs) },
    })
}

/// What merging two sides of a pointer gave.
#[derive(Debug)]
pub enum Merged {
    /// The merged pointer (its manifest is in the cache).
    Clean(Pointer),
    /// Why the sides cannot be combined, one reason a line.
    Conflict(Vec<String>),
}

/// Merge `ours` and `theirs`, two versions of one pointer, from their common version
/// `base` (None when there is none, e.g. both sides added it). A side that did not change
/// loses to one that did; for a folder changed on both sides, every file takes the side
/// that changed it, and a file both sides changed differently (or one changed and the
/// other deleted, or a file on one side where the other has a folder) is a conflict. The
/// three manifests must be in the cache; the merged one is stored there.
pub fn merge_pointers(
    cache: &Cache,
    base: Option<&Pointer>,
    ours: &Pointer,
    theirs: &Pointer,
) -> Result<Merged> {
    if ours == theirs || base == Some(theirs) {
        return Ok(Merged::Clean(ours.clone()));
    }
    if base == Some(ours) {
        return Ok(Merged::Clean(theirs.clone()));
    }
    let conflict = |why: String| Ok(Merged::Conflict(vec![why]));
    // Imported data follows its source: combining two versions would match neither.
    if ours.source.is_some() || theirs.source.is_some() {
        return conflict(format!(
            "both sides changed imported {}; keep one side's pointer, then `trove update` it",
            ours.path
        ));
    }
    if ours.kind != Kind::Dir || theirs.kind != Kind::Dir || ours.path != theirs.path {
        return conflict(format!(
            "both sides changed {}, and only changes to different files of a folder can be combined",
            ours.path
        ));
    }
    let Some(base) = base.filter(|b| b.kind == Kind::Dir) else {
        return conflict(format!(
            "the sides' versions of folder {} have no common version to merge from",
            ours.path
        ));
    };
    let mut missing = Vec::new();
    let mut read = |side: &str, p: &Pointer| match cache.read_manifest(&p.hash) {
        Ok(m) => Some(m),
        Err(crate::error::Error::MissingObject { .. }) => {
            missing.push(format!(
                "the manifest of {side}'s version of {} ({}) is not in this cache: `git merge --abort`, `trove fetch --rev` the commit that has it, and merge again",
                p.path, p.hash
            ));
            None
        }
        Err(e) => {
            missing.push(format!("{side}'s version of {}: {e}", p.path));
            None
        }
    };
    let (b, o, t) = (read("the common", base), read("our", ours), read("their", theirs));
    let (Some(b), Some(o), Some(t)) = (b, o, t) else {
        return Ok(Merged::Conflict(missing));
    };
    type Sides<'a> = (Option<&'a Entry>, Option<&'a Entry>, Option<&'a Entry>);
    let mut files: BTreeMap<&str, Sides> = BTreeMap::new();
    for e in &b.entries {
        files.entry(&e.path).or_default().0 = Some(e);
    }
    for e in &o.entries {
        files.entry(&e.path).or_default().1 = Some(e);
    }
    for e in &t.entries {
        files.entry(&e.path).or_default().2 = Some(e);
    }
    let mut merged = Vec::new();
    let mut reasons = Vec::new();
    for (path, (b, o, t)) in files {
        let chosen = if o == t || b == t {
            o
        } else if b == o {
            t
        } else {
            reasons.push(match (o, t) {
                (Some(_), Some(_)) => format!("{}/{path}: both sides changed it, differently", ours.path),
                _ => format!("{}/{path}: one side changed it, the other deleted it", ours.path),
            });
            continue;
        };
        merged.extend(chosen.cloned());
    }
    // A file on one side where the other has a folder of files (`a` and `a/b`).
    let names: std::collections::HashSet<&str> = merged.iter().map(|e| e.path.as_str()).collect();
    for e in &merged {
        for (i, _) in e.path.match_indices('/') {
            if names.contains(&e.path[..i]) {
                reasons.push(format!(
                    "{}/{}: a file on one side, a folder (holding {}) on the other",
                    ours.path,
                    &e.path[..i],
                    e.path
                ));
            }
        }
    }
    if !reasons.is_empty() {
        reasons.dedup();
        return Ok(Merged::Conflict(reasons));
    }
    let manifest = Manifest::new(merged);
    let hash = cache.insert_manifest(&manifest)?;
    Ok(Merged::Clean(Pointer {
        path: ours.path.clone(),
        kind: Kind::Dir,
        hash,
        size: manifest.total_size(),
        files: Some(manifest.entries.len() as u64),
        source: None,
    }))
}

/// The text of a conflict between two pointer texts, whole, in git's marker style (so
/// `trove` and git both see the conflict): a header both share stays outside.
pub fn conflict_text(ours: &str, theirs: &str) -> String {
    let header = |t: &str| t.lines().next().filter(|l| l.starts_with('#')).map(str::to_string);
    let shared = header(ours).filter(|h| header(theirs).as_ref() == Some(h));
    let skip = usize::from(shared.is_some());
    let body = |t: &str| -> String { t.lines().skip(skip).map(|l| format!("{l}\n")).collect() };
    let mut out = shared.map(|h| format!("{h}\n")).unwrap_or_default();
    out.push_str(&format!("<<<<<<< ours\n{}=======\n{}>>>>>>> theirs\n", body(ours), body(theirs)));
    out
}

/// Read one of the driver's files as a pointer (`name` is the path git merges); None
/// when it is empty (git's stand-in for a missing common version).
pub fn read_side(file: &Path, name: &Path) -> Result<Option<Pointer>> {
    let text = std::fs::read_to_string(file).map_err(|e| crate::error::Error::io(file, e))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    Pointer::parse(&text, name).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn finds_both_sides_hashes() {
        let text = format!(
            "# trove pointer\nversion: 1\npath: data\nkind: dir\n<<<<<<< HEAD\nhash: {A}\nsize: 4\nfiles: 2\n=======\nhash: {B}\nsize: 5\nfiles: 3\n>>>>>>> feature\n"
        );
        let c = conflict_in(&text).unwrap();
        assert_eq!(c.line, 5);
        assert_eq!(c.ours, Side { label: "HEAD".into(), hash: Some(A.into()) });
        assert_eq!(c.theirs, Side { label: "feature".into(), hash: Some(B.into()) });
    }

    #[test]
    fn diff3_style_and_a_shared_hash_line() {
        let text = format!(
            "version: 1\nhash: {A}\n<<<<<<< ours\nsize: 1\n||||||| base\nsize: 0\n=======\nsize: 2\n>>>>>>> theirs\n"
        );
        let c = conflict_in(&text).unwrap();
        assert_eq!((c.ours.hash.as_deref(), c.theirs.hash.as_deref()), (Some(A), Some(A)));
        assert_eq!(c.theirs.label, "theirs");
    }

    #[test]
    fn plain_pointers_and_lone_markers() {
        assert_eq!(conflict_in(&format!("version: 1\nhash: {A}\n")), None);
        assert_eq!(conflict_in("version: 1\n=======\n").map(|c| c.line), Some(2));
        assert_eq!(conflict_in("path: '<<<<<<< x'\n"), None);
    }

    fn folder(cache: &Cache, files: &[(&str, &str)]) -> Pointer {
        let entries = files
            .iter()
            .map(|(path, content)| Entry {
                path: path.to_string(),
                hash: crate::hash::ObjectId::of_bytes(content.as_bytes()),
                size: content.len() as u64,
                exec: false,
            })
            .collect();
        let manifest = Manifest::new(entries);
        let hash = cache.insert_manifest(&manifest).unwrap();
        let files = Some(manifest.entries.len() as u64);
        Pointer {
            path: "data".into(),
            kind: Kind::Dir,
            hash,
            size: manifest.total_size(),
            files,
            source: None,
        }
    }

    fn merged_files(cache: &Cache, m: Merged) -> Vec<(String, u64)> {
        let Merged::Clean(p) = m else { panic!("a conflict: {m:?}") };
        cache.read_manifest(&p.hash).unwrap().entries.into_iter().map(|e| (e.path, e.size)).collect()
    }

    #[test]
    fn imported_folders_changed_on_both_sides_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_path_buf());
        cache.ensure().unwrap();
        let source = |commit: char| crate::pointer::Source {
            repo: "/srv/registry".into(),
            path: "data".into(),
            rev: None,
            commit: commit.to_string().repeat(40),
        };
        let base = Pointer { source: Some(source('a')), ..folder(&cache, &[("a", "1")]) };
        let ours = Pointer { source: Some(source('b')), ..folder(&cache, &[("a", "2")]) };
        let theirs = Pointer { source: Some(source('c')), ..folder(&cache, &[("a", "1"), ("b", "3")]) };
        let Merged::Conflict(why) = merge_pointers(&cache, Some(&base), &ours, &theirs).unwrap() else {
            panic!("a conflict")
        };
        assert!(why[0].contains("imported data"), "{why:?}");
        // One side's update alone is taken whole, source and all.
        let m = merge_pointers(&cache, Some(&base), &base, &theirs).unwrap();
        let Merged::Clean(p) = m else { panic!("clean") };
        assert_eq!(p, theirs);
    }

    #[test]
    fn folders_merge_file_by_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_path_buf());
        cache.ensure().unwrap();
        let base = folder(&cache, &[("a", "1"), ("b", "1"), ("c", "1"), ("d", "1")]);
        // ours: a changed, c deleted, e added; theirs: b changed, d deleted, e added alike.
        let ours = folder(&cache, &[("a", "22"), ("b", "1"), ("d", "1"), ("e", "5")]);
        let theirs = folder(&cache, &[("a", "1"), ("b", "333"), ("c", "1"), ("e", "5")]);
        let m = merge_pointers(&cache, Some(&base), &ours, &theirs).unwrap();
        assert_eq!(merged_files(&cache, m), [("a".into(), 2), ("b".into(), 3), ("e".into(), 1)]);

        // Changed differently, changed and deleted, file against folder: conflicts.
        let ours = folder(&cache, &[("a", "22"), ("b", "55"), ("c", "1"), ("d", "1")]);
        let theirs = folder(&cache, &[("a", "4444"), ("c", "1"), ("d", "1")]);
        let Merged::Conflict(why) = merge_pointers(&cache, Some(&base), &ours, &theirs).unwrap() else {
            panic!("a conflict")
        };
        assert_eq!(
            why,
            [
                "data/a: both sides changed it, differently",
                "data/b: one side changed it, the other deleted it"
            ]
        );
        let ours = folder(&cache, &[("a", "1"), ("b", "1"), ("c", "1"), ("d", "1"), ("x", "f")]);
        let theirs = folder(&cache, &[("a", "1"), ("b", "1"), ("c", "1"), ("d", "1"), ("x/y", "g")]);
        let Merged::Conflict(why) = merge_pointers(&cache, Some(&base), &ours, &theirs).unwrap() else {
            panic!("a conflict")
        };
        assert_eq!(why, ["data/x: a file on one side, a folder (holding x/y) on the other"]);

        // A side that did not change loses; no common version, no merge.
        let m = merge_pointers(&cache, Some(&base), &base, &theirs).unwrap();
        assert!(matches!(m, Merged::Clean(p) if p == theirs));
        assert!(matches!(merge_pointers(&cache, None, &ours, &theirs).unwrap(), Merged::Conflict(_)));
    }
}
