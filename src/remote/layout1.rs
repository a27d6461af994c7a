//! Remote layout 1: one file per object, `objects/<2 hex>/<62 hex>[.dir]` (see
//! [`ObjectKey::rel_path`]), over any [`Backend`].

use std::io::Write;
use std::path::PathBuf;

use super::backend::{Backend, join};
use crate::error::{Error, RemoteFailure, Result};
use crate::hash::ObjectKey;

/// An object the remote does not have is a missing object, named as such.
fn missing(key: &ObjectKey, e: Error) -> Error {
    match e {
        Error::Remote { kind: RemoteFailure::NotFound, .. } => Error::MissingObject { id: key.display() },
        e => e,
    }
}

pub fn exists(b: &mut dyn Backend, key: &ObjectKey) -> Result<bool> {
    b.exists(&key.rel_path())
}

/// The objects in fan-out folder `objects/<prefix>/`.
pub fn list_prefix(b: &mut dyn Backend, prefix: &str) -> Result<Vec<ObjectKey>> {
    Ok(b.list(&join("objects", prefix))?
        .into_iter()
        .filter_map(|l| ObjectKey::from_listing(prefix, &l.name))
        .collect())
}

/// Every object on the remote with its size in bytes. Names under `objects/` that are
/// not object names are skipped.
pub fn list_all(b: &mut dyn Backend) -> Result<Vec<(ObjectKey, u64)>> {
    let mut out = Vec::new();
    for prefix in b.list_dirs("objects")? {
        if prefix.len() != 2 {
            continue;
        }
        for l in b.list(&join("objects", &prefix))? {
            if let Some(key) = ObjectKey::from_listing(&prefix, &l.name) {
                out.push((key, l.size));
            }
        }
    }
    Ok(out)
}

/// Upload a local file as `key`.
pub fn upload(b: &mut dyn Backend, key: &ObjectKey, local: &std::path::Path) -> Result<()> {
    b.write_file(&key.rel_path(), local)
}

/// Upload several local files (keys with their paths); see [`Backend::write_many`].
pub fn upload_batch(
    b: &mut dyn Backend,
    items: &[(ObjectKey, PathBuf)],
    done: &mut dyn FnMut(usize, Result<()>),
) -> Result<()> {
    let files: Vec<(String, PathBuf)> = items.iter().map(|(k, p)| (k.rel_path(), p.clone())).collect();
    b.write_many(&files, done)
}

/// Stream an object's bytes into `out`; see [`Backend::read`].
pub fn download(b: &mut dyn Backend, key: &ObjectKey, size: Option<u64>, out: &mut dyn Write) -> Result<u64> {
    b.read(&key.rel_path(), size, out).map_err(|e| missing(key, e))
}

/// Download several objects (keys with their expected sizes); see [`Backend::read_many`].
pub fn download_batch(
    b: &mut dyn Backend,
    items: &[(ObjectKey, u64)],
    done: &mut dyn FnMut(usize, Result<Vec<u8>>),
) -> Result<()> {
    let reads: Vec<(String, u64, u64)> = items.iter().map(|(k, size)| (k.rel_path(), 0, *size)).collect();
    b.read_many(&reads, &mut |i, r| done(i, r.map_err(|e| missing(&items[i].0, e))))
}

/// Delete one object; one that is already gone is not an error.
pub fn delete(b: &mut dyn Backend, key: &ObjectKey) -> Result<()> {
    b.delete(&key.rel_path())
}
