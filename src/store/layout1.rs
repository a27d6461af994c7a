//! Remote layout 1: one file per object, `objects/<2 hex>/<62 hex>[.dir]` (see
//! [`ObjectKey::rel_path`]), over any [`Backend`].

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use super::{Outcomes, Stage, Store, check_id};
use crate::cache::{Cache, Staged};
use crate::error::{Error, RemoteFailure, Result};
use crate::hash::{ObjectId, ObjectKey};
use crate::manifest::Manifest;
use crate::progress::Reporter;
use crate::remote::backend::{Backend, join};
use crate::remote::pool::Pool;

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

/// Downloads up to this size are batched, through memory.
const BATCH_OBJECT_MAX: u64 = 1 << 20;
/// A batch holds at most this many objects, or about this many bytes.
const BATCH_OBJECTS: usize = 256;
const BATCH_BYTES: u64 = 8 << 20;

/// A layout-1 remote opened for transfers.
pub struct Layout1<'a> {
    pool: Pool<'a>,
}

impl<'a> Layout1<'a> {
    pub fn new(pool: Pool<'a>) -> Self {
        Layout1 { pool }
    }
}

/// Why a download of `k` failed: a failure to read may be an object the remote does not
/// have, which is worth saying as such.
fn download_failed(c: &mut dyn Backend, k: &ObjectKey, e: Error) -> Error {
    match e {
        Error::CorruptObject { .. } | Error::MissingObject { .. } => e,
        _ if !exists(c, k).unwrap_or(true) => Error::MissingObject { id: k.display() },
        _ => e,
    }
}

/// A writer that hashes what passes through it: a download checked against its id as it
/// is written (here and by the upgrade of a layout-1 remote).
pub(super) struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W> Hashing<W> {
    pub(super) fn new(inner: W) -> Self {
        Hashing { inner, hasher: blake3::Hasher::new() }
    }

    /// The id of what was written so far.
    pub(super) fn id(&self) -> ObjectId {
        ObjectId::from_bytes(*self.hasher.finalize().as_bytes())
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Download one object into a cache temp file, verifying its content against its id.
fn download_verified(cache: &Cache, c: &mut dyn Backend, k: &ObjectKey, size: u64) -> Result<Staged> {
    let (file, temp) = cache.temp_file(&k.id)?;
    // A buffer no larger than the object: a 1 MiB one for each small file costs an
    // mmap/munmap pair per object.
    let capacity = size.clamp(4096, 1 << 20) as usize;
    let mut w = Hashing::new(std::io::BufWriter::with_capacity(capacity, file));
    let result = download(c, k, Some(size), &mut w).and_then(|_| {
        w.flush().map_err(|e| Error::io(&temp, e))?;
        check_id(k, w.id())
    });
    match result {
        Ok(()) => Ok(Cache::staged(temp, k.id)),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(download_failed(c, k, e))
        }
    }
}

/// Transfer items (given by their sizes) over the pool: those up to [`BATCH_OBJECT_MAX`]
/// in batches of at most [`BATCH_OBJECTS`] objects or about [`BATCH_BYTES`] bytes, which a
/// backend with round trips pipelines, the rest one at a time. `batch(c, todo, record)`
/// reports each item's outcome through `record(index, outcome)`; when it fails as a whole
/// it is retried on a fresh connection with only the items not yet reported, and those
/// it never reports get its error. Returns one outcome per item, in order.
fn run_batched(
    pool: &Pool,
    sizes: &[u64],
    batch: impl Fn(&mut dyn Backend, &[usize], &dyn Fn(usize, Result<()>)) -> Result<()> + Sync,
    one: impl Fn(&mut dyn Backend, usize) -> Result<()> + Sync,
) -> Result<Vec<Result<()>>> {
    let (small, large): (Vec<usize>, Vec<usize>) =
        (0..sizes.len()).partition(|&i| sizes[i] <= BATCH_OBJECT_MAX);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0;
    for i in small {
        if batches.last().is_none_or(|b| b.len() >= BATCH_OBJECTS || bytes >= BATCH_BYTES) {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += sizes[i];
        batches.last_mut().expect("pushed").push(i);
    }
    let outcomes: Mutex<Vec<Option<Result<()>>>> = Mutex::new((0..sizes.len()).map(|_| None).collect());
    let record = |i: usize, r: Result<()>| outcomes.lock().expect("outcomes")[i] = Some(r);
    let batch_results = pool.run(&batches, |c, items| {
        let todo: Vec<usize> =
            items.iter().copied().filter(|&i| outcomes.lock().expect("outcomes")[i].is_none()).collect();
        batch(c, &todo, &record)
    })?;
    let large_results = pool.run(&large, |c, &i| one(c, i))?;
    let mut outcomes = outcomes.into_inner().expect("outcomes");
    for (i, r) in large.iter().zip(large_results) {
        outcomes[*i] = Some(r);
    }
    for (items, r) in batches.iter().zip(batch_results) {
        if let Err(e) = r {
            for &i in items {
                outcomes[i].get_or_insert_with(|| Err(e.again(pool.remote_name())));
            }
        }
    }
    Ok(outcomes.into_iter().map(|o| o.expect("every item has an outcome")).collect())
}

/// One file per object: the bytes on the wire are the objects' own.
fn whole_objects(each: Vec<Result<()>>, sizes: &[u64]) -> Outcomes {
    let wire = each.iter().zip(sizes).filter(|(r, _)| r.is_ok()).map(|(_, s)| s).sum();
    Outcomes { each, wire }
}

impl Store for Layout1<'_> {
    fn name(&self) -> &str {
        self.pool.remote_name()
    }

    fn layout(&self) -> u64 {
        1
    }

    /// One listing per fan-out folder when that is fewer round trips than asking for
    /// each object.
    fn present(&self, keys: &[ObjectKey]) -> Result<HashSet<ObjectKey>> {
        let prefixes: BTreeSet<String> = keys.iter().map(|k| k.prefix()).collect();
        let mut present = HashSet::new();
        if keys.len() > prefixes.len() * 2 {
            let prefixes: Vec<String> = prefixes.into_iter().collect();
            let listed = self.pool.run(&prefixes, |c, p| list_prefix(c, p))?;
            let wanted: HashSet<&ObjectKey> = keys.iter().collect();
            for names in listed {
                present.extend(names?.into_iter().filter(|k| wanted.contains(k)));
            }
        } else {
            let found = self.pool.run(keys, |c, k| exists(c, k))?;
            for (k, f) in keys.iter().zip(found) {
                if f? {
                    present.insert(*k);
                }
            }
        }
        Ok(present)
    }

    fn manifests(&self, keys: &[ObjectKey]) -> Result<Vec<Result<Manifest>>> {
        self.pool.run(keys, |c, k| {
            let mut bytes = Vec::new();
            download(c, k, None, &mut bytes).map_err(|e| download_failed(c, k, e))?;
            check_id(k, ObjectId::of_bytes(&bytes))?;
            Manifest::parse(&bytes, &k.display())
        })
    }

    fn upload(&self, cache: &Cache, items: &[(ObjectKey, u64)], reporter: &dyn Reporter) -> Result<Outcomes> {
        let sizes: Vec<u64> = items.iter().map(|(_, s)| *s).collect();
        let outcomes = run_batched(
            &self.pool,
            &sizes,
            |c, todo, record| {
                let batch: Vec<(ObjectKey, PathBuf)> =
                    todo.iter().map(|&i| (items[i].0, cache.path_of(&items[i].0))).collect();
                upload_batch(c, &batch, &mut |j, r| {
                    if r.is_ok() {
                        reporter.advance(1, sizes[todo[j]]);
                    }
                    record(todo[j], r);
                })
            },
            |c, i| {
                let (k, size) = items[i];
                upload(c, &k, &cache.path_of(&k))?;
                reporter.advance(1, size);
                Ok(())
            },
        )?;
        Ok(whole_objects(outcomes, &sizes))
    }

    fn download(&self, cache: &Cache, items: &[(ObjectKey, u64)], stage: &Stage<'_>) -> Result<Outcomes> {
        let sizes: Vec<u64> = items.iter().map(|(_, s)| *s).collect();
        let outcomes = run_batched(
            &self.pool,
            &sizes,
            |c, todo, record| {
                let batch: Vec<(ObjectKey, u64)> = todo.iter().map(|&i| items[i]).collect();
                let mut got = Vec::with_capacity(batch.len());
                let result = download_batch(c, &batch, &mut |j, bytes| {
                    let (k, size) = batch[j];
                    got.push((
                        j,
                        bytes.and_then(|bytes| {
                            check_id(&k, ObjectId::of_bytes(&bytes))?;
                            stage(cache.stage_bytes(&bytes, k.id)?, size);
                            Ok(())
                        }),
                    ));
                });
                for (j, outcome) in got {
                    record(todo[j], outcome.map_err(|e| download_failed(c, &batch[j].0, e)));
                }
                result
            },
            |c, i| {
                let (k, size) = items[i];
                stage(download_verified(cache, c, &k, size)?, size);
                Ok(())
            },
        )?;
        Ok(whole_objects(outcomes, &sizes))
    }

    fn finish_push(&self, wrote: bool) -> Result<()> {
        let mut conn = self.pool.connection()?;
        // Temps of failed attempts: best effort, the objects are in place either way.
        let _ = crate::remote::clean_temps(conn.as_mut());
        if wrote {
            conn.flush()?;
        }
        Ok(())
    }

    fn abandon(&self) {
        self.pool.abandon();
    }
}
