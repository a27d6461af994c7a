//! Walking tracked data and hashing it, with the hash cache so unchanged files are not re-read.

use std::collections::HashMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Error, IoContext, Result};
use crate::hash::{ObjectId, hash_file};
use crate::manifest::{Entry, Manifest};
use crate::progress::Reporter;
use crate::repo::Repo;
use crate::state::{Stamp, StateDb};
use crate::tracked::{display_rel, quote_name};

pub const IGNORE_FILE: &str = ".troveignore";

/// One file found in the workspace.
#[derive(Debug, Clone)]
pub struct Found {
    /// Path inside the tracked directory, `/`-separated (the file name for a tracked file).
    pub rel: String,
    pub abs: PathBuf,
    /// Metadata of the content (a symlink's target).
    pub meta: fs::Metadata,
    pub exec: bool,
    /// Known without hashing: a symlink into the cache names its object.
    pub known: Option<ObjectId>,
}

/// Look at one file (or symlink) that is to be tracked.
pub fn examine(repo: &Repo, abs: &Path, rel: String) -> Result<Found> {
    let lmeta = fs::symlink_metadata(abs).at(abs)?;
    let (meta, known) = if lmeta.file_type().is_symlink() {
        let target = fs::read_link(abs).at(abs)?;
        let target_abs = abs.parent().unwrap_or(Path::new("/")).join(&target);
        if let Some(id) = repo.cache.id_of_object_path(&target_abs) {
            (fs::metadata(abs).at(abs)?, Some(id))
        } else {
            let real = fs::canonicalize(abs).map_err(|_| {
                Error::path(abs, format!("is a broken symbolic link (to {})", target.display()))
            })?;
            if !real.starts_with(&repo.root) {
                return Err(Error::path(
                    abs,
                    format!("is a symbolic link pointing outside the repository (to {})", real.display()),
                ));
            }
            let meta = fs::metadata(&real).at(&real)?;
            if !meta.is_file() {
                return Err(Error::path(
                    abs,
                    format!(
                        "is a symbolic link to a folder (to {}); trove follows links to files only",
                        target.display()
                    ),
                ));
            }
            (meta, None)
        }
    } else if lmeta.is_file() {
        (lmeta, None)
    } else {
        return Err(Error::path(abs, "is not a regular file, folder or symbolic link"));
    };
    let exec = known.is_none() && meta.permissions().mode() & 0o111 != 0;
    Ok(Found { rel, abs: abs.to_path_buf(), meta, exec, known })
}

/// Every file inside a tracked directory, honouring `.troveignore`.
pub fn list_dir(repo: &Repo, dir: &Path) -> Result<Vec<Found>> {
    list_dir_cleaning(repo, dir, false)
}

/// [`list_dir`], deleting on the way the temp files that killed checkouts left (writers only).
pub fn list_dir_cleaning(repo: &Repo, dir: &Path, clean: bool) -> Result<Vec<Found>> {
    // Problems are listed by their path from the repository's top folder.
    let shown = |rel: &str| quote_name(&format!("{}/{rel}", display_rel(&repo.root, dir))).into_owned();
    let walker = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .hidden(false)
        .parents(true)
        .add_custom_ignore_filename(IGNORE_FILE)
        .follow_links(false)
        .build();
    // Everything that cannot be tracked is reported at once, not just the first.
    let mut problems = Vec::new();
    let mut paths = Vec::new();
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        if entry.depth() == 0 || entry.file_type().is_some_and(|t| t.is_dir()) {
            continue;
        }
        let rel_os = entry.path().strip_prefix(dir).expect("walk stays under its root");
        let Some(rel) = rel_os.to_str().map(str::to_string) else {
            let name = crate::tracked::quote_bytes(
                entry.path().strip_prefix(&repo.root).unwrap_or(entry.path()).as_os_str().as_bytes(),
            );
            problems.push(format!("{name}: file name is not valid UTF-8; rename it"));
            continue;
        };
        if is_trove_temp(&rel) {
            if clean && entry.file_name().to_str().is_some_and(crate::link::is_stale_temp) {
                let _ = std::fs::remove_file(entry.path());
            }
            continue;
        }
        paths.push((entry.into_path(), rel));
    }
    let examined: Vec<(String, Result<Found>)> =
        paths.into_par_iter().map(|(abs, rel)| (rel.clone(), examine(repo, &abs, rel))).collect();
    let mut found = Vec::with_capacity(examined.len());
    for (rel, r) in examined {
        match r {
            Ok(f) => found.push(f),
            Err(Error::Path { message, .. }) => problems.push(format!("{}: {message}", shown(&rel))),
            Err(e) => return Err(e),
        }
    }
    if !problems.is_empty() {
        problems.sort();
        return Err(Error::Untrackable { path: dir.to_path_buf(), problems });
    }
    Ok(found)
}

/// Temp files of an interrupted checkout (`.name.trove-PID-N`) are not data.
fn is_trove_temp(rel: &str) -> bool {
    crate::link::temp_pid(rel.rsplit('/').next().unwrap_or(rel)).is_some()
}

fn state_key(repo: &Repo, abs: &Path) -> Vec<u8> {
    abs.strip_prefix(&repo.root).unwrap_or(abs).as_os_str().as_bytes().to_vec()
}

/// Ids of the files, from the hash cache where it knows them, hashing the rest in parallel.
pub fn hash_all(
    repo: &Repo,
    state: &StateDb,
    files: &[Found],
    reporter: &dyn Reporter,
) -> Result<Vec<ObjectId>> {
    let (mut ids, todo) = cached_ids(repo, state, files);
    let todo_bytes: u64 = todo.iter().map(|&i| files[i].meta.len()).sum();
    if !todo.is_empty() {
        reporter.start("hashing", todo.len() as u64, todo_bytes);
    }
    let hashed: Vec<(usize, ObjectId)> = todo
        .par_iter()
        .map(|&i| {
            let (id, _) = hash_file(&files[i].abs)?;
            reporter.advance(1, files[i].meta.len());
            Ok((i, id))
        })
        .collect::<Result<_>>()?;
    if !todo.is_empty() {
        reporter.finish();
    }
    for &(i, id) in &hashed {
        ids[i] = Some(id);
    }
    record_hashed(repo, state, files, &hashed);
    Ok(ids.into_iter().map(|i| i.expect("every file has an id")).collect())
}

/// The ids known without reading: from the hash cache (one batched lookup) or from a
/// symlink into the cache. Returns them, and the indexes of the files still to hash.
pub fn cached_ids(repo: &Repo, state: &StateDb, files: &[Found]) -> (Vec<Option<ObjectId>>, Vec<usize>) {
    let keys: Vec<Vec<u8>> = files.iter().map(|f| state_key(repo, &f.abs)).collect();
    let lookups: Vec<(&[u8], Stamp)> =
        keys.iter().zip(files).map(|(k, f)| (k.as_slice(), Stamp::of(&f.meta))).collect();
    let mut ids = state.lookup(&lookups);
    for (i, f) in files.iter().enumerate() {
        if let Some(k) = f.known {
            ids[i] = Some(k);
        }
    }
    let todo = (0..files.len()).filter(|&i| ids[i].is_none()).collect();
    (ids, todo)
}

/// Remember in the hash cache the ids just computed for `files[i]`.
pub fn record_hashed(repo: &Repo, state: &StateDb, files: &[Found], hashed: &[(usize, ObjectId)]) {
    let fresh: Vec<_> = hashed
        .iter()
        .map(|&(i, id)| (state_key(repo, &files[i].abs), Stamp::of(&files[i].meta), id))
        .collect();
    state.record(&fresh, state.opened_ns());
}

/// The id of one file, from the hash cache or by hashing it.
pub fn hash_one(repo: &Repo, state: &StateDb, abs: &Path, reporter: &dyn Reporter) -> Result<ObjectId> {
    let f = examine(repo, abs, String::new())?;
    Ok(hash_all(repo, state, std::slice::from_ref(&f), reporter)?[0])
}

/// Remember the ids of files just written by checkout (see [`crate::state::settle`]:
/// those written within the clock tick of now are looked at again once it has passed).
pub fn remember(repo: &Repo, state: &StateDb, placed: &[(PathBuf, ObjectId)]) {
    if !state.is_open() {
        return;
    }
    let observed = crate::state::now_ns();
    let entries: Vec<_> = placed
        .iter()
        .filter_map(|(abs, id)| Some((abs.as_path(), Stamp::of(&fs::metadata(abs).ok()?), *id)))
        .collect();
    record_settled(repo, state, &entries, observed);
}

/// Remember ids of files whose content was seen with these stamps at or after
/// `observed_ns`, waiting out the clock tick for recent ones (see [`crate::state::settle`]).
pub fn record_settled(repo: &Repo, state: &StateDb, entries: &[(&Path, Stamp, ObjectId)], observed_ns: i128) {
    let files: Vec<(&Path, Stamp)> = entries.iter().map(|(p, s, _)| (*p, *s)).collect();
    let (trusted, at) = crate::state::settle(&files, observed_ns);
    let record: Vec<_> = entries
        .iter()
        .zip(trusted)
        .filter(|(_, t)| *t)
        .map(|((p, s, id), _)| (state_key(repo, p), *s, *id))
        .collect();
    state.record(&record, at);
}

/// Build a manifest of a directory's current content.
pub fn manifest_of(files: &[Found], ids: &[ObjectId]) -> Manifest {
    Manifest::new(
        files
            .iter()
            .zip(ids)
            .map(|(f, id)| Entry { path: f.rel.clone(), hash: *id, size: f.meta.len(), exec: f.exec })
            .collect(),
    )
}

/// What changed between a stored manifest and the workspace.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub modified: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.modified.is_empty()
    }
}

pub fn compare(old: &Manifest, new: &Manifest) -> Changes {
    let old_map: HashMap<&str, &Entry> = old.entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let new_map: HashMap<&str, &Entry> = new.entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut c = Changes::default();
    for e in &new.entries {
        match old_map.get(e.path.as_str()) {
            None => c.added.push(e.path.clone()),
            Some(o) if o.hash != e.hash || o.exec != e.exec => c.modified.push(e.path.clone()),
            _ => {}
        }
    }
    for e in &old.entries {
        if !new_map.contains_key(e.path.as_str()) {
            c.removed.push(e.path.clone());
        }
    }
    c
}
