//! `trove exp checkout`: re-create a recorded baseline — its commit on a new branch, and
//! exactly the data and artifacts the record names, fetched and verified.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::exp::record::Record;
use crate::pointer::{Kind, Pointer};
use crate::progress::Reporter;
use crate::remote::Remote;
use crate::repo::Repo;
use crate::tracked::{Tracked, pointer_path_for};
use crate::{git, scan, transfer, workspace};

#[derive(Debug, Default, Serialize)]
pub struct Reproduced {
    pub id: String,
    pub commit: String,
    pub branch: String,
    /// Tracked data written into the work tree (files).
    pub placed: u64,
    /// Objects fetched from the remote.
    pub fetched: u64,
    /// Objects re-hashed and found sound.
    pub verified: u64,
    pub artifacts: Vec<String>,
    /// Where the checkout differs from the recorded run (dirty records, environment).
    pub warnings: Vec<String>,
}

/// What `checkout` restores besides the commit.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The recorded data and artifacts too.
    pub data: bool,
    /// Overwrite unsaved data and artifacts in the way.
    pub force: bool,
}

/// A branch name for a record: `exp/<name>` with characters git refuses replaced.
pub fn default_branch(record: &Record) -> String {
    let name: String = record
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_./".contains(c) { c } else { '-' })
        .collect();
    let name = name.trim_matches(|c| c == '.' || c == '/' || c == '-').replace("..", ".");
    if name.is_empty() { format!("exp/{}", record.short_id()) } else { format!("exp/{name}") }
}

/// Check out the record's commit on `branch` (created there) and, with `data`, its data
/// and artifacts. Everything that can fail is checked first (the commit, the branch name,
/// uncommitted code, data that cannot be had, unsaved data in the way), so that a refusal
/// leaves HEAD and the work tree as they were. `force` discards unsaved data in the way.
pub fn checkout(
    repo: &Repo,
    record: &Record,
    branch: &str,
    options: Options,
    remote: Option<&dyn Remote>,
    reporter: &dyn Reporter,
) -> Result<Reproduced> {
    let git = repo.git()?;
    let git_err = |e: git2::Error| Error::exp(&record.id, e.message().to_string());
    let oid = git2::Oid::from_str(&record.commit).map_err(git_err)?;
    let commit = git.find_commit(oid).map_err(|_| {
        Error::exp(
            record.short_id(),
            format!(
                "its commit {} is not in this repository; `git fetch` it (or `trove exp pull`, which brings the commits of shared records)",
                &record.commit[..12.min(record.commit.len())]
            ),
        )
    })?;
    refuse_uncommitted(&git, &record.id)?;

    // The branch: new, or already at this commit.
    if !git2::Branch::name_is_valid(branch).unwrap_or(false) {
        return Err(Error::Usage(format!("{branch:?} is not a valid branch name; choose another with -b")));
    }
    let branch_exists = match git.find_branch(branch, git2::BranchType::Local) {
        Ok(b) if b.get().target() == Some(oid) => true,
        Ok(_) => {
            return Err(Error::Usage(format!(
                "branch {branch} exists and points elsewhere; choose another name with -b"
            )));
        }
        Err(_) => false,
    };

    let mut out = Reproduced {
        id: record.id.clone(),
        commit: record.commit.clone(),
        branch: branch.into(),
        ..Default::default()
    };
    if record.dirty {
        out.warnings.push(format!(
            "the run had uncommitted changes ({}); the commit alone may not reproduce it",
            record.dirty_paths.join(", ")
        ));
    }
    let all = if options.data { targets(repo, &git, record, &mut out.warnings)? } else { Vec::new() };
    // Only after the data is fetched move the code: git refuses (before writing) where
    // untracked files are in the way, and the branch is made and HEAD moved only once the
    // tree is there.
    let move_code = || -> Result<()> {
        let mut co = git2::build::CheckoutBuilder::new();
        co.safe();
        git.checkout_tree(commit.as_object(), Some(&mut co)).map_err(git_err)?;
        if !branch_exists {
            git.branch(branch, &commit, false).map_err(git_err)?;
        }
        git.set_head(&format!("refs/heads/{branch}")).map_err(git_err)
    };
    if !options.data {
        move_code()?;
        return Ok(out);
    }
    for t in &all {
        check_folder_inside(repo, t)?;
    }
    let remote = match all.iter().all(|t| workspace::in_cache(repo, &t.pointer)) {
        true => None,
        false => Some(remote.ok_or_else(|| {
            Error::exp(
                record.short_id(),
                "some of its data is not in the cache and no remote is configured; add one with `trove remote add`",
            )
        })?),
    };
    let mut verified = 0;
    let pulled = transfer::pull(repo, remote, &all, None, reporter, || {
        verified = verify(repo, &all)?;
        if !options.force {
            refuse_unsaved(repo, &all, reporter)?;
        }
        move_code()?;
        for t in &all {
            if let Some(parent) = t.data_path.parent() {
                fs::create_dir_all(parent).at(parent)?;
            }
        }
        workspace::checkout(repo, &all, options.force, reporter)
    })?;
    out.verified = verified;
    out.fetched = pulled.fetched.as_ref().map_or(0, |r| r.files);
    let Some(done) = pulled.placed else {
        let report = pulled.fetched.expect("an incomplete pull fetched");
        let mut problems: Vec<String> =
            report.missing.iter().chain(&report.corrupt).take(3).cloned().collect();
        problems.extend(report.failed.first().map(|(id, e)| format!("{id}: {e}")));
        return Err(Error::exp(
            record.short_id(),
            format!(
                "remote {} cannot supply all of its data ({}); nothing was changed here: push the data \
                 from a clone that has it, then run this again",
                report.remote,
                problems.join(", ")
            ),
        ));
    };
    out.placed = done.iter().map(|c| c.placed).sum();
    out.artifacts = record.artifacts.iter().map(|a| a.path.clone()).collect();
    for (name, recorded) in &record.env.files {
        match fs::read_to_string(repo.root.join(name)) {
            Ok(now) if now == *recorded => {}
            Ok(_) => out.warnings.push(format!("{name} differs from the one recorded with the run")),
            Err(_) => out.warnings.push(format!("{name} was recorded with the run but is not here")),
        }
    }
    Ok(out)
}

/// Exactly the recorded data and artifacts, whatever the pointers at the commit say (a
/// difference is a warning).
fn targets(
    repo: &Repo,
    git: &git2::Repository,
    record: &Record,
    warnings: &mut Vec<String>,
) -> Result<Vec<Tracked>> {
    let at_commit: HashMap<String, Pointer> = git::pointers_at(git, &repo.root, &record.commit)?
        .into_iter()
        .map(|(rel, p)| {
            let data = rel.parent().map_or_else(|| PathBuf::from(&p.path), |dir| dir.join(&p.path));
            (data.to_string_lossy().into_owned(), p)
        })
        .collect();
    // A target placed at `rel` (the pointer file beside it is never written).
    let target = |rel: &str, kind: Kind, hash, size, files| {
        let data_path = repo.root.join(rel);
        let path = data_path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        Tracked {
            pointer_path: pointer_path_for(&data_path),
            data_path,
            pointer: Pointer { path, kind, hash, size, files, source: None },
        }
    };
    let mut out = Vec::new();
    for d in &record.data {
        let at_commit = at_commit.get(&d.path);
        if let Some(p) = at_commit
            && p.hash != d.hash
        {
            warnings.push(format!(
                "{}: the commit's pointer names {}, the record {}; using the record's",
                d.path,
                p.hash.short(),
                d.hash.short()
            ));
        }
        let files = at_commit.and_then(|p| p.files).or((d.kind == Kind::Dir).then_some(0));
        out.push(target(&d.path, d.kind, d.hash, d.size, files));
    }
    out.extend(record.artifacts.iter().map(|a| target(&a.path, Kind::File, a.hash, a.size, None)));
    Ok(out)
}

/// The folder a target goes in may be missing (an artifact's folder is often git-ignored,
/// so a fresh clone lacks it): what exists of it must lie inside the repository.
fn check_folder_inside(repo: &Repo, t: &Tracked) -> Result<()> {
    let Some(parent) = t.data_path.parent() else { return Ok(()) };
    let existing = parent.ancestors().find(|p| p.exists()).unwrap_or(&repo.root);
    let real = fs::canonicalize(existing).at(existing)?;
    if !real.starts_with(&repo.root) {
        return Err(Error::path(
            existing,
            format!("leads outside the repository (to {}); refusing to write through it", real.display()),
        ));
    }
    Ok(())
}

/// Refuse when placing the targets would overwrite content the cache does not hold (all
/// the targets' own objects are in the cache by now, so anything else is unsaved).
fn refuse_unsaved(repo: &Repo, targets: &[Tracked], reporter: &dyn Reporter) -> Result<()> {
    let state = repo.state();
    for t in targets {
        let Ok(meta) = fs::symlink_metadata(&t.data_path) else { continue };
        let rel = t.rel(repo);
        let mut at_risk = Vec::new();
        if meta.is_dir() && t.pointer.kind == Kind::File {
            at_risk.push(format!("{rel} (a folder now)"));
        } else if meta.is_dir() {
            let files = scan::list_dir(repo, &t.data_path)?;
            let ids = scan::hash_all(repo, &state, &files, reporter)?;
            at_risk.extend(
                files
                    .iter()
                    .zip(&ids)
                    .filter(|(_, id)| !repo.cache.has_object(id))
                    .map(|(f, _)| format!("{rel}/{}", f.rel)),
            );
        } else {
            let id = scan::hash_one(repo, &state, &t.data_path, reporter)?;
            if !repo.cache.has_object(&id) {
                at_risk.push(if t.pointer.kind == Kind::Dir { format!("{rel} (a file now)") } else { rel });
            }
        }
        if !at_risk.is_empty() {
            return Err(Error::Unsaved { path: t.data_path.clone(), files: at_risk });
        }
    }
    Ok(())
}

/// Re-hash every object the targets use; a corrupt one is an error naming it.
fn verify(repo: &Repo, targets: &[Tracked]) -> Result<u64> {
    let mut ids = Vec::new();
    for t in targets {
        match t.pointer.kind {
            Kind::File => ids.push(t.pointer.hash),
            Kind::Dir => {
                // read_manifest checks the manifest's own id.
                let m = repo.cache.read_manifest(&t.pointer.hash)?;
                ids.extend(m.entries.iter().map(|e| e.hash));
            }
        }
    }
    ids.sort();
    ids.dedup();
    ids.par_iter().try_for_each(|id| repo.cache.verify_object(id))?;
    Ok(ids.len() as u64)
}

/// Refuse when tracked files have uncommitted changes (git would carry them along or fail).
fn refuse_uncommitted(git: &git2::Repository, id: &str) -> Result<()> {
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(false).include_ignored(false);
    let statuses = git.statuses(Some(&mut opts)).map_err(|e| Error::exp(id, e.message().to_string()))?;
    let changed: Vec<String> = statuses
        .iter()
        .filter(|s| s.status() != git2::Status::CURRENT)
        .filter_map(|s| s.path().ok().map(String::from))
        .collect();
    if !changed.is_empty() {
        return Err(Error::exp(
            id,
            format!(
                "the work tree has uncommitted changes ({}); commit or stash them first",
                changed.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(())
}
