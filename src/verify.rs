//! `trove verify`: re-hash every object of the cache, or of a remote, against its id.
//!
//! A corrupt object in the cache is moved to the cache's `quarantine/` folder, so the
//! cache no longer claims to have it and the next fetch or pull downloads a sound copy.
//! On a remote, corrupt objects are only reported, unless asked to repair: then they are
//! deleted there and, where this cache holds a sound copy, uploaded again. A layout-2
//! remote's packs and index files are checked too (see [`crate::store::verify2`]).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::cache::{Cache, StoredObject};
use crate::error::{Error, IoContext, Result};
use crate::hash::{ObjectId, hash_file};
use crate::progress::Reporter;
use crate::remote::pool::Pool;
use crate::remote::{Backend, ObjectKey, Remote, check_layout};
pub use crate::store::upgrade::Damaged;
use crate::store::{layout1, verify2};

/// An object whose content does not hash to its id.
#[derive(Debug, Clone, Serialize)]
pub struct Corrupt {
    /// The object's id (`<hex>.dir` for a manifest).
    pub id: String,
    /// What its content hashes to (empty when it could not be put together).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub actual: String,
    /// Layout 2: why it cannot be rebuilt from the remote's sound packs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Cache: where it was moved to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<PathBuf>,
    /// Remote with `--repair`: `reuploaded` (a sound copy from this cache replaced it) or
    /// `deleted` (this cache has no sound copy; push one from a clone that has it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<&'static str>,
}

/// An object that could not be read (permissions, I/O, a dropped connection).
#[derive(Debug, Clone, Serialize)]
pub struct Failed {
    pub id: String,
    pub error: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// `cache`, or the remote's name.
    pub store: String,
    pub remote: bool,
    /// Objects re-hashed and their bytes.
    pub objects: u64,
    pub bytes: u64,
    pub corrupt: Vec<Corrupt>,
    pub failed: Vec<Failed>,
    /// Layout 2: packs that do not match their name or their index entries, or hold a
    /// chunk that does not decode to its id.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub damaged_packs: Vec<Damaged>,
    /// Layout 2: packs an index lists that are not there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_packs: Vec<String>,
    /// Layout 2: index files whose bytes do not match their name, or do not parse.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub damaged_index: Vec<Damaged>,
    /// Layout 2 with `--repair`: a new index replaced the old ones, without the damaged
    /// packs (which were deleted).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub repaired: bool,
    /// Layout 2: object files left under `objects/` by an upgrade that did not finish
    /// (not checked; `trove remote upgrade` converts them).
    #[serde(skip_serializing_if = "is_zero")]
    pub leftovers: u64,
    /// The cache's quarantine folder (cache only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<PathBuf>,
    pub seconds: f64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Report {
    /// Nothing corrupt (or everything re-uploaded), nothing unreadable, and no damaged
    /// pack or index file left in use.
    pub fn ok(&self) -> bool {
        let files_sound = self.repaired
            || (self.damaged_packs.is_empty()
                && self.missing_packs.is_empty()
                && self.damaged_index.is_empty());
        files_sound && self.failed.is_empty() && self.corrupt.iter().all(|c| c.repair == Some("reuploaded"))
    }
}

/// What an object file's content hashes to (a manifest's id is the BLAKE3 of its bytes too).
fn rehash(o: &StoredObject) -> Result<ObjectId> {
    if o.key.is_manifest() {
        Ok(ObjectId::of_bytes(&std::fs::read(&o.path).at(&o.path)?))
    } else {
        Ok(hash_file(&o.path)?.0)
    }
}

/// Re-hash every object in the cache, in parallel; move corrupt ones to quarantine.
pub fn verify_cache(cache: &Cache, reporter: &dyn Reporter) -> Result<Report> {
    let started = Instant::now();
    let objects = cache.list_objects()?;
    let mut report = Report {
        store: "cache".into(),
        objects: objects.len() as u64,
        bytes: objects.iter().map(|o| o.size).sum(),
        quarantine: Some(cache.quarantine_dir()),
        ..Report::default()
    };
    reporter.start("verifying", report.objects, report.bytes);
    let hashed: Vec<Result<ObjectId>> = objects
        .par_iter()
        .map(|o| {
            let r = rehash(o);
            reporter.advance(1, o.size);
            r
        })
        .collect();
    reporter.finish();
    for (o, r) in objects.iter().zip(hashed) {
        match r {
            Ok(actual) if actual == o.key.id => {}
            Ok(actual) => {
                let quarantined = cache.quarantine(&o.key)?;
                report.corrupt.push(Corrupt {
                    id: o.key.display(),
                    actual: actual.to_hex(),
                    why: None,
                    quarantined: Some(quarantined),
                    repair: None,
                });
            }
            Err(e) => report.failed.push(Failed { id: o.key.display(), error: e.to_string() }),
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Connect and read the remote's layout. `None`: the remote's folder exists but nothing
/// was pushed to it yet.
fn connect_layout(remote: &dyn Remote) -> Result<Option<(Box<dyn Backend>, u64)>> {
    let mut conn = remote.connect()?;
    match crate::remote::read_layout(conn.as_mut())? {
        Some(text) => {
            let layout = check_layout(remote.name(), &text)?;
            Ok(Some((conn, layout)))
        }
        None if conn.root_exists()? => Ok(None),
        None => Err(Error::remote(
            remote.name(),
            crate::error::RemoteFailure::NotFound,
            format!("{} does not exist; check the URL, or push to it first", remote.url()),
        )),
    }
}

/// Whether this cache holds a sound copy of `k`.
fn sound_copy(cache: &Cache, k: &ObjectKey) -> bool {
    let local = cache.path_of(k);
    local.is_file() && rehash(&StoredObject { key: *k, path: local, size: 0 }).is_ok_and(|a| a == k.id)
}

/// A writer that only hashes.
struct HashSink(blake3::Hasher);

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Download every object on `remote` and re-hash it, over `jobs` connections. With
/// `repair`, corrupt objects are deleted from the remote and, where this cache holds a
/// sound copy, uploaded again.
pub fn verify_remote(
    cache: &Cache,
    remote: &dyn Remote,
    jobs: Option<usize>,
    repair: bool,
    reporter: &dyn Reporter,
) -> Result<Report> {
    let started = Instant::now();
    let mut report = Report { store: remote.name().to_string(), remote: true, ..Report::default() };
    let Some((mut first, layout)) = connect_layout(remote)? else {
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    };
    if layout != 1 {
        report.leftovers = layout1::list_all(first.as_mut())?.len() as u64;
        let pool = Pool::new(remote, first, jobs.unwrap_or_else(|| remote.default_jobs()));
        let sound = |k: &ObjectKey| sound_copy(cache, k);
        verify2::verify(cache, &pool, repair, &sound, &mut report, reporter)?;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let mut listed = layout1::list_all(first.as_mut())?;
    listed.sort();
    report.objects = listed.len() as u64;
    report.bytes = listed.iter().map(|(_, s)| s).sum();
    let pool = Pool::new(remote, first, jobs.unwrap_or_else(|| remote.default_jobs()));
    reporter.start("verifying", report.objects, report.bytes);
    let hashed = pool.run(&listed, |c, (k, size)| {
        let mut sink = HashSink(blake3::Hasher::new());
        layout1::download(c, k, Some(*size), &mut sink)?;
        reporter.advance(1, *size);
        Ok(ObjectId::from_bytes(*sink.0.finalize().as_bytes()))
    })?;
    reporter.finish();
    let mut corrupt = Vec::new();
    for ((k, _), r) in listed.iter().zip(hashed) {
        match r {
            Ok(actual) if actual == k.id => {}
            Ok(actual) => corrupt.push((
                *k,
                Corrupt {
                    id: k.display(),
                    actual: actual.to_hex(),
                    why: None,
                    quarantined: None,
                    repair: None,
                },
            )),
            Err(e) => report.failed.push(Failed { id: k.display(), error: e.to_string() }),
        }
    }
    if repair && !corrupt.is_empty() {
        let keys: Vec<ObjectKey> = corrupt.iter().map(|(k, _)| *k).collect();
        let repaired = pool.run(&keys, |c, k| {
            // Delete first: an upload keeps an object that is already there.
            layout1::delete(c, k)?;
            let local = cache.path_of(k);
            if !sound_copy(cache, k) {
                return Ok("deleted");
            }
            layout1::upload(c, k, &local)?;
            Ok("reuploaded")
        })?;
        for ((_, c), r) in corrupt.iter_mut().zip(repaired) {
            match r {
                Ok(done) => c.repair = Some(done),
                Err(e) => report.failed.push(Failed { id: c.id.clone(), error: e.to_string() }),
            }
        }
        if corrupt.iter().any(|(_, c)| c.repair == Some("reuploaded")) {
            let mut conn = pool.connection()?;
            conn.flush()?;
        }
    }
    report.corrupt = corrupt.into_iter().map(|(_, c)| c).collect();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
