//! `trove exp checkout`: re-create a recorded baseline — its commit on a new branch, and
//! exactly the data and artifacts the record names, fetched and verified.

use std::fs;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::exp::record::Record;
use crate::pointer::{Kind, Pointer};
use crate::progress::Reporter;
use crate::remote::Remote;
use crate::repo::Repo;
use crate::tracked::{Tracked, pointer_path_for};
use crate::{transfer, workspace};

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
/// and artifacts. Refuses when the work tree has uncommitted changes git would lose.
pub fn checkout(
    repo: &Repo,
    record: &Record,
    branch: &str,
    data: bool,
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
    match git.find_branch(branch, git2::BranchType::Local) {
        Ok(b) if b.get().target() == Some(oid) => {}
        Ok(_) => {
            return Err(Error::Usage(format!(
                "branch {branch} exists and points elsewhere; choose another name with -b"
            )));
        }
        Err(_) => {
            git.branch(branch, &commit, false).map_err(git_err)?;
        }
    }
    let mut co = git2::build::CheckoutBuilder::new();
    co.safe();
    git.checkout_tree(commit.as_object(), Some(&mut co)).map_err(git_err)?;
    git.set_head(&format!("refs/heads/{branch}")).map_err(git_err)?;

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
    if !data {
        return Ok(out);
    }

    // Exactly the recorded data, whatever the pointers at the commit say.
    let mut targets = Vec::new();
    for d in &record.data {
        let data_path = repo.root.join(&d.path);
        let pointer_path = pointer_path_for(&data_path);
        let at_commit = Tracked::load(&pointer_path).ok();
        if let Some(t) = &at_commit
            && t.pointer.hash != d.hash
        {
            out.warnings.push(format!(
                "{}: the commit's pointer names {}, the record {}; using the record's",
                d.path,
                t.pointer.hash.short(),
                d.hash.short()
            ));
        }
        let name = data_path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let files = at_commit.as_ref().and_then(|t| t.pointer.files).or((d.kind == Kind::Dir).then_some(0));
        targets.push(Tracked {
            pointer_path,
            data_path,
            pointer: Pointer { path: name, kind: d.kind, hash: d.hash, size: d.size, files },
        });
    }
    let artifacts: Vec<Tracked> = record
        .artifacts
        .iter()
        .map(|a| {
            let data_path = repo.root.join(&a.path);
            let name = data_path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            Tracked {
                pointer_path: pointer_path_for(&data_path),
                data_path,
                pointer: Pointer { path: name, kind: Kind::File, hash: a.hash, size: a.size, files: None },
            }
        })
        .collect();
    let all: Vec<Tracked> = targets.iter().chain(&artifacts).cloned().collect();
    if all.iter().any(|t| !workspace::in_cache(repo, &t.pointer)) {
        let remote = remote.ok_or_else(|| {
            Error::exp(
                record.short_id(),
                "some of its data is not in the cache and no remote is configured; add one with `trove remote add`",
            )
        })?;
        let report = transfer::fetch(repo, remote, &all, None, reporter)?;
        out.fetched = report.files;
        if !report.ok() {
            let ids: Vec<String> = report.missing.iter().chain(&report.corrupt).take(3).cloned().collect();
            return Err(Error::exp(
                record.short_id(),
                format!(
                    "remote {} cannot supply all of its data ({}{})",
                    report.remote,
                    ids.join(", "),
                    report.failed.first().map(|(id, e)| format!("{id}: {e}")).unwrap_or_default()
                ),
            ));
        }
    }
    out.verified = verify(repo, &all)?;
    let done = workspace::checkout(repo, &all, false, reporter)?;
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
