//! Imported data: tracked items whose pointer's `source:` names another trove repository
//! (see [`crate::upstream`]). `import` brings one in, `update` moves it to what its
//! source's revision names now, `check` says whether that moved, and `fetch` downloads
//! imported objects from their sources' remotes for `trove fetch` and `pull`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::git;
use crate::hash::ObjectId;
use crate::pointer::{Kind, Pointer, Source};
use crate::progress::Reporter;
use crate::repo::Repo;
use crate::tracked::{self, Tracked, display_rel, pointer_path_for};
use crate::transfer::Report;
use crate::upstream::{self, Upstream};
use crate::workspace;

/// What `import` wrote.
#[derive(Debug, Serialize)]
pub struct Imported {
    /// The data's path in this repository, relative to its top.
    pub path: String,
    /// The pointer's path, relative to the top.
    pub pointer: String,
    pub kind: Kind,
    pub hash: ObjectId,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    pub source: Source,
    pub transfer: Report,
}

/// Bring the data at `path` of the repository `up` (at `rev`, else its default branch)
/// into this repository at `out` (absolute, inside it): fetch it from the source's remote
/// into the cache, write it at `out`, write the pointer (with its `source:`) beside it,
/// ignore `out` in git and, when `stage`, stage the pointer and `.gitignore`. Nothing is
/// written at `out` or beside it unless every object arrived.
#[allow(clippy::too_many_arguments)]
pub fn import(
    repo: &Repo,
    up: &Upstream,
    path: &str,
    rev: Option<&str>,
    out: &Path,
    stage: bool,
    jobs: Option<usize>,
    reporter: &dyn Reporter,
) -> Result<Imported> {
    let pointer_path = pointer_path_for(out);
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::path(out, "names no file"))?
        .to_string();
    if fs::symlink_metadata(&pointer_path).is_ok() {
        return Err(Error::path(
            &pointer_path,
            "already exists; `trove update` moves an imported path on, or choose another place with -o",
        ));
    }
    if fs::symlink_metadata(out).is_ok() {
        return Err(Error::path(out, "already exists; choose another place with -o"));
    }
    if git::ignore_line(&name).is_none() {
        return Err(git::unignorable(out));
    }
    if let Some(owner) = tracked::tracked_ancestor(repo, out)? {
        return Err(Error::path(out, format!("is inside the tracked directory {}", owner.rel(repo))));
    }
    let commit = up.resolve(rev)?;
    let found = up.find(commit, path)?;
    let source = Source {
        repo: up.url().to_string(),
        path: found.path.clone(),
        rev: rev.map(str::to_string),
        commit: commit.to_string(),
    };
    let pointer = Pointer { path: name.clone(), source: Some(source.clone()), ..found.pointer.clone() };
    let transfer = up.fetch_objects(
        commit,
        std::slice::from_ref(&found.pointer),
        &repo.cache,
        Some(repo),
        jobs,
        reporter,
    )?;
    upstream::place(repo, &pointer, out, reporter)?;
    let parent = out.parent().expect("inside the repository");
    let written = crate::atomic_file::write(&pointer_path, pointer.to_text().as_bytes())
        .and_then(|()| git::ignore_entry(parent, &name));
    if let Err(e) = written {
        let _ = fs::remove_file(&pointer_path);
        let _ = fs::remove_dir_all(out).or_else(|_| fs::remove_file(out));
        return Err(e);
    }
    if stage {
        git::stage(&repo.git()?, &repo.root, &[pointer_path.clone(), parent.join(".gitignore")])?;
    }
    Ok(Imported {
        path: display_rel(&repo.root, out),
        pointer: display_rel(&repo.root, &pointer_path),
        kind: pointer.kind,
        hash: pointer.hash,
        size: pointer.size,
        files: pointer.files,
        source,
        transfer,
    })
}

/// Where an imported item's source stands now.
#[derive(Debug, Serialize)]
pub struct Checked {
    /// The data's path, relative to the top.
    pub path: String,
    pub repo: String,
    pub rev: Option<String>,
    /// The commit and hash the pointer records.
    pub commit: String,
    pub hash: ObjectId,
    /// What the revision names now, and its data's hash there.
    pub latest_commit: String,
    pub latest_hash: ObjectId,
    /// Whether the data differs (a new commit with the same data is not a move).
    pub moved: bool,
}

/// Whether each imported item's source revision now names other data. Each source is
/// fetched once.
pub fn check(repo: &Repo, targets: &[Tracked]) -> Result<Vec<Checked>> {
    let mut sources = Sources::default();
    let mut out = Vec::new();
    for t in targets {
        let Some(s) = &t.pointer.source else { continue };
        let up = sources.open(&s.repo, &repo.root)?;
        let commit = up.resolve(s.rev.as_deref())?;
        let found = up.find(commit, &s.path)?;
        out.push(Checked {
            path: t.rel(repo),
            repo: s.repo.clone(),
            rev: s.rev.clone(),
            commit: s.commit.clone(),
            hash: t.pointer.hash,
            latest_commit: commit.to_string(),
            latest_hash: found.pointer.hash,
            moved: found.pointer.hash != t.pointer.hash,
        });
    }
    Ok(out)
}

/// What `update` did to one imported item.
#[derive(Debug, Serialize)]
pub struct Updated {
    pub path: String,
    pub repo: String,
    pub old_rev: Option<String>,
    pub rev: Option<String>,
    pub old_commit: String,
    pub commit: String,
    pub old_hash: ObjectId,
    pub hash: ObjectId,
    /// Whether the pointer was rewritten (false: nothing moved).
    pub changed: bool,
    /// Files written into the workspace, and files deleted from it.
    pub placed: u64,
    pub removed: u64,
}

/// Move imported items to what their source's revision (or `new_rev`, which the pointer
/// then records) names now: fetch the new data, check it out (refusing to overwrite
/// unsaved changes), rewrite the pointer and, when `stage`, stage it. An item whose
/// revision still names the recorded commit is left as it is.
pub fn update(
    repo: &Repo,
    targets: &[Tracked],
    new_rev: Option<&str>,
    stage: bool,
    jobs: Option<usize>,
    reporter: &dyn Reporter,
) -> Result<Vec<Updated>> {
    let mut sources = Sources::default();
    let mut out = Vec::new();
    let mut to_stage = Vec::new();
    for t in targets {
        let Some(old) = &t.pointer.source else {
            return Err(Error::path(
                &t.pointer_path,
                "is not imported (it has no `source:`); `trove import --repo URL PATH` imports data",
            ));
        };
        let rev = new_rev.map(str::to_string).or_else(|| old.rev.clone());
        let up = sources.open(&old.repo, &repo.root)?;
        let commit = up.resolve(rev.as_deref())?;
        let found = up.find(commit, &old.path)?;
        let source = Source { rev: rev.clone(), commit: commit.to_string(), ..old.clone() };
        let pointer = Pointer { path: t.pointer.path.clone(), source: Some(source), ..found.pointer.clone() };
        let mut u = Updated {
            path: t.rel(repo),
            repo: old.repo.clone(),
            old_rev: old.rev.clone(),
            rev,
            old_commit: old.commit.clone(),
            commit: commit.to_string(),
            old_hash: t.pointer.hash,
            hash: pointer.hash,
            changed: pointer != t.pointer,
            placed: 0,
            removed: 0,
        };
        if u.changed {
            up.fetch_objects(
                commit,
                std::slice::from_ref(&found.pointer),
                &repo.cache,
                Some(repo),
                jobs,
                reporter,
            )?;
            let moved = Tracked { pointer: pointer.clone(), ..t.clone() };
            let done = workspace::checkout(repo, std::slice::from_ref(&moved), false, reporter)?;
            u.placed = done.iter().map(|c| c.placed).sum();
            u.removed = done.iter().map(|c| c.removed).sum();
            crate::atomic_file::write(&t.pointer_path, pointer.to_text().as_bytes())?;
            to_stage.push(t.pointer_path.clone());
        }
        out.push(u);
    }
    if stage && !to_stage.is_empty() {
        git::stage(&repo.git()?, &repo.root, &to_stage)?;
    }
    Ok(out)
}

/// Download what the imported items among `targets` need and the cache lacks, each from
/// its source's remote (as the recorded commit configures it); one report per source
/// and commit. Items without a source are left out.
pub fn fetch(
    repo: &Repo,
    targets: &[Tracked],
    jobs: Option<usize>,
    reporter: &dyn Reporter,
) -> Result<Vec<Report>> {
    let mut groups: BTreeMap<(String, String), Vec<Pointer>> = BTreeMap::new();
    for t in targets {
        if let Some(s) = &t.pointer.source
            && !workspace::in_cache(repo, &t.pointer)
        {
            groups.entry((s.repo.clone(), s.commit.clone())).or_default().push(t.pointer.clone());
        }
    }
    let mut sources = Sources::default();
    let mut reports = Vec::new();
    for ((url, commit), pointers) in groups {
        let up = sources.open(&url, &repo.root)?;
        let oid = git2::Oid::from_str(&commit).map_err(|e| Error::git(Path::new(&url), e))?;
        if up.git().find_commit(oid).is_err() {
            return Err(Error::path(
                &url,
                format!(
                    "no longer has commit {commit}, which imported data names; `trove update` it to a revision that exists"
                ),
            ));
        }
        reports.push(up.fetch_objects(oid, &pointers, &repo.cache, Some(repo), jobs, reporter)?);
    }
    Ok(reports)
}

/// Whether a tracked item was imported.
pub fn is_imported(t: &Tracked) -> bool {
    t.pointer.source.is_some()
}

/// Source repositories opened (and fetched) once per command.
#[derive(Default)]
struct Sources {
    open: BTreeMap<String, Upstream>,
}

impl Sources {
    fn open(&mut self, url: &str, cwd: &Path) -> Result<&Upstream> {
        if !self.open.contains_key(url) {
            let up = Upstream::open(url, cwd)?;
            self.open.insert(url.to_string(), up);
        }
        Ok(&self.open[url])
    }
}

/// The data path an import of `source_path` writes to by default: its name in `cwd`.
pub fn default_out(cwd: &Path, source_path: &str) -> PathBuf {
    cwd.join(source_path.rsplit('/').next().unwrap_or(source_path))
}
