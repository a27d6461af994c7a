//! `trove diff`: which files inside tracked data differ between two revisions, or
//! between a revision and the work tree.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::hash::ObjectId;
use crate::history;
use crate::pointer::{Kind, Pointer};
use crate::progress::Reporter;
use crate::remote::Remote;
use crate::repo::Repo;
use crate::scan;
use crate::tracked::{self, display_rel};

/// One side of a comparison.
#[derive(Debug, Clone)]
pub enum Side {
    /// The data in the work tree (hashed where it changed; the pointer where it is absent).
    Workspace,
    Rev(String),
}

impl Side {
    pub fn name(&self) -> &str {
        match self {
            Side::Workspace => "workspace",
            Side::Rev(r) => r,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_hash: Option<ObjectId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<ObjectId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// Tracked data whose file list is unknown: its folder manifest is in neither the cache
/// nor (when one was asked) the remote.
#[derive(Debug, Clone, Serialize)]
pub struct Unavailable {
    pub path: String,
    pub side: String,
    pub manifest: String,
    pub reason: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Diff {
    pub a: String,
    pub b: String,
    pub added: Vec<FileChange>,
    pub deleted: Vec<FileChange>,
    pub modified: Vec<FileChange>,
    pub unavailable: Vec<Unavailable>,
    /// Why the remote could not supply missing manifests, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_error: Option<String>,
}

/// Every data file on one side: repository-relative path -> (id, size).
type Files = BTreeMap<String, (ObjectId, u64)>;

/// Compare `a` with `b`. Folder manifests the cache lacks are fetched from `remote` when
/// given; what stays unknown is listed in `unavailable`, never guessed: no file under an
/// unknown folder is listed as changed. A file pointer names its content's id and size
/// itself, so a file's change is known without its object.
pub fn diff(
    repo: &Repo,
    a: &Side,
    b: &Side,
    remote: Option<&dyn Remote>,
    reporter: &dyn Reporter,
) -> Result<Diff> {
    let pa = pointers(repo, a)?;
    let pb = pointers(repo, b)?;
    // Data whose pointers are the same on both sides, and read from the pointer on both,
    // is unchanged: no need to know its files.
    let by_pointer = |side: &Side, path: &str, kind: Kind| {
        !matches!(side, Side::Workspace) || !on_disk(&repo.root.join(path), kind)
    };
    let in_b: HashMap<&str, &Pointer> = pb.iter().map(|(path, p)| (path.as_str(), p)).collect();
    let same: HashSet<String> = pa
        .iter()
        .filter(|(path, p)| {
            in_b.get(path.as_str()).is_some_and(|q| q.kind == p.kind && q.hash == p.hash)
                && by_pointer(a, path, p.kind)
                && by_pointer(b, path, p.kind)
        })
        .map(|(path, _)| path.clone())
        .collect();
    let mut remote_error = None;
    if let Some(remote) = remote {
        let mut need: Vec<ObjectId> = pa
            .iter()
            .chain(&pb)
            .filter(|(path, p)| {
                p.kind == Kind::Dir && !same.contains(path) && !repo.cache.has_manifest(&p.hash)
            })
            .map(|(_, p)| p.hash)
            .collect();
        need.sort();
        need.dedup();
        if !need.is_empty()
            && let Err(e) = crate::transfer::fetch_manifests(repo, remote, &need, None)
        {
            remote_error = Some(e.to_string());
        }
    }
    let mut out = Diff { a: a.name().to_string(), b: b.name().to_string(), remote_error, ..Diff::default() };
    let fa = files(repo, a, &pa, &same, &mut out.unavailable, reporter)?;
    let fb = files(repo, b, &pb, &same, &mut out.unavailable, reporter)?;
    // Where one side's files are unknown, nothing is known to have changed: the other
    // side's files are neither added nor deleted.
    let unknown: Vec<String> = out.unavailable.iter().map(|u| u.path.clone()).collect();
    let known = |path: &String| !unknown.iter().any(|dir| within(path, dir));
    let fa: Files = fa.into_iter().filter(|(path, _)| known(path)).collect();
    let fb: Files = fb.into_iter().filter(|(path, _)| known(path)).collect();
    for (path, (hash, size)) in &fb {
        match fa.get(path) {
            None => out.added.push(FileChange {
                path: path.clone(),
                old_hash: None,
                old_size: None,
                hash: Some(*hash),
                size: Some(*size),
            }),
            Some((old, old_size)) if old != hash => out.modified.push(FileChange {
                path: path.clone(),
                old_hash: Some(*old),
                old_size: Some(*old_size),
                hash: Some(*hash),
                size: Some(*size),
            }),
            Some(_) => {}
        }
    }
    for (path, (hash, size)) in &fa {
        if !fb.contains_key(path) {
            out.deleted.push(FileChange {
                path: path.clone(),
                old_hash: Some(*hash),
                old_size: Some(*size),
                hash: None,
                size: None,
            });
        }
    }
    Ok(out)
}

/// The pointers on one side, as (data path relative to the top, pointer).
fn pointers(repo: &Repo, side: &Side) -> Result<Vec<(String, Pointer)>> {
    match side {
        Side::Workspace => tracked::find_pointers(repo, None)?
            .iter()
            .map(|p| {
                let t = tracked::Tracked::load(p)?;
                Ok((display_rel(&repo.root, &t.data_path), t.pointer))
            })
            .collect(),
        Side::Rev(rev) => {
            let git = repo.git()?;
            let commit = history::resolve(&git, &repo.root, rev)?;
            Ok(history::pointers_in_commit(&git, commit, None)?
                .into_iter()
                .map(|(rel, p)| {
                    let data = repo.root.join(&rel).with_file_name(&p.path);
                    (display_rel(&repo.root, &data), p)
                })
                .collect())
        }
    }
}

fn files(
    repo: &Repo,
    side: &Side,
    pointers: &[(String, Pointer)],
    same: &HashSet<String>,
    unavailable: &mut Vec<Unavailable>,
    reporter: &dyn Reporter,
) -> Result<Files> {
    let mut out = Files::new();
    let state = repo.state();
    for (path, p) in pointers {
        let abs = repo.root.join(path);
        // The work tree's own data where it is there; the pointer's otherwise.
        if matches!(side, Side::Workspace) && on_disk(&abs, p.kind) {
            tracked::check_inside(repo, &tracked::Tracked::load(&tracked::pointer_path_for(&abs))?)?;
            match p.kind {
                Kind::File => {
                    let id = scan::hash_one(repo, &state, &abs, reporter)?;
                    let size = std::fs::metadata(&abs).map_err(|e| Error::io(&abs, e))?.len();
                    out.insert(path.clone(), (id, size));
                }
                Kind::Dir => {
                    let found = scan::list_dir(repo, &abs)?;
                    let ids = scan::hash_all(repo, &state, &found, reporter)?;
                    for (f, id) in found.iter().zip(ids) {
                        out.insert(format!("{path}/{}", f.rel), (id, f.meta.len()));
                    }
                }
            }
            continue;
        }
        if same.contains(path) {
            continue;
        }
        match p.kind {
            Kind::File => {
                out.insert(path.clone(), (p.hash, p.size));
            }
            Kind::Dir => match repo.cache.read_manifest(&p.hash) {
                Ok(m) => {
                    for e in m.entries {
                        out.insert(format!("{path}/{}", e.path), (e.hash, e.size));
                    }
                }
                Err(e @ (Error::MissingObject { .. } | Error::CorruptObject { .. })) => {
                    unavailable.push(Unavailable {
                        path: path.clone(),
                        side: side.name().to_string(),
                        manifest: format!("{}.dir", p.hash),
                        reason: e.to_string(),
                    });
                }
                Err(e) => return Err(e),
            },
        }
    }
    Ok(out)
}

fn on_disk(abs: &Path, kind: Kind) -> bool {
    match kind {
        Kind::File => abs.is_file(),
        Kind::Dir => abs.is_dir(),
    }
}

/// Whether `path` is `dir` or inside it.
fn within(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}
