//! `trove verify`: re-hash every object of the cache, or of a remote, against its id.
//!
//! A corrupt object in the cache is moved to the cache's `quarantine/` folder, so the
//! cache no longer claims to have it and the next fetch or pull downloads a sound copy.
//! On a remote, corrupt objects are only reported, unless asked to repair: then they are
//! deleted there and, where this cache holds a sound copy, uploaded again.
//!
//! Also home of [`Pool`], the small connection pool `verify --remote` and `gc --remote`
//! share.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Serialize;

use crate::cache::{Cache, StoredObject};
use crate::error::{Error, IoContext, Result};
use crate::hash::{ObjectId, hash_file};
use crate::progress::Reporter;
use crate::remote::{Connection, ObjectKey, Remote, check_layout};

/// An object whose content does not hash to its id.
#[derive(Debug, Clone, Serialize)]
pub struct Corrupt {
    /// The object's id (`<hex>.dir` for a manifest).
    pub id: String,
    /// What its content hashes to.
    pub actual: String,
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
    /// The cache's quarantine folder (cache only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<PathBuf>,
    pub seconds: f64,
}

impl Report {
    /// Nothing corrupt (or everything re-uploaded) and nothing unreadable.
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.corrupt.iter().all(|c| c.repair == Some("reuploaded"))
    }
}

fn display(id: &ObjectId, manifest: bool) -> String {
    ObjectKey { id: *id, manifest }.display()
}

/// What an object file's content hashes to (a manifest's id is the BLAKE3 of its bytes too).
fn rehash(o: &StoredObject) -> Result<ObjectId> {
    if o.manifest {
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
            Ok(actual) if actual == o.id => {}
            Ok(actual) => {
                let quarantined = cache.quarantine(&o.id, o.manifest)?;
                report.corrupt.push(Corrupt {
                    id: display(&o.id, o.manifest),
                    actual: actual.to_hex(),
                    quarantined: Some(quarantined),
                    repair: None,
                });
            }
            Err(e) => report.failed.push(Failed { id: display(&o.id, o.manifest), error: e.to_string() }),
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Connect and check the remote's layout. `None`: the remote's folder exists but nothing
/// was pushed to it yet (no objects).
pub(crate) fn connect_checked(remote: &dyn Remote) -> Result<Option<Box<dyn Connection>>> {
    let mut conn = remote.connect()?;
    match conn.read_layout()? {
        Some(text) => {
            check_layout(remote.name(), &text)?;
            Ok(Some(conn))
        }
        None if conn.root_exists()? => Ok(None),
        None => Err(Error::Remote {
            remote: remote.name().to_string(),
            message: format!("{} does not exist; check the URL, or push to it first", remote.url()),
        }),
    }
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
    let Some(mut first) = connect_checked(remote)? else {
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    };
    let mut listed = first.list_all()?;
    listed.sort();
    report.objects = listed.len() as u64;
    report.bytes = listed.iter().map(|(_, s)| s).sum();
    let pool = Pool::new(remote, first, jobs.unwrap_or_else(|| remote.default_jobs()));
    reporter.start("verifying", report.objects, report.bytes);
    let hashed = pool.run(&listed, |c, (k, size)| {
        let mut sink = HashSink(blake3::Hasher::new());
        c.download(k, &mut sink)?;
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
                Corrupt { id: k.display(), actual: actual.to_hex(), quarantined: None, repair: None },
            )),
            Err(e) => report.failed.push(Failed { id: k.display(), error: e.to_string() }),
        }
    }
    if repair && !corrupt.is_empty() {
        let keys: Vec<ObjectKey> = corrupt.iter().map(|(k, _)| *k).collect();
        let repaired = pool.run(&keys, |c, k| {
            // Delete first: an upload keeps an object that is already there.
            c.delete(k)?;
            let local = cache.path_of(&k.id, k.manifest);
            let sound = local.is_file()
                && rehash(&StoredObject { id: k.id, manifest: k.manifest, path: local.clone(), size: 0 })
                    .is_ok_and(|a| a == k.id);
            if !sound {
                return Ok("deleted");
            }
            c.upload(k, &local)?;
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

/// Attempts per item before its error is reported.
const ATTEMPTS: u32 = 3;

/// Connections to one remote, used from several threads at once: each worker takes an
/// idle connection (or opens one) and gives it back when the batch is done. An item whose
/// work fails for a reason other than its content is retried on a fresh connection.
pub(crate) struct Pool<'a> {
    remote: &'a dyn Remote,
    idle: Mutex<Vec<Box<dyn Connection>>>,
    jobs: usize,
}

impl<'a> Pool<'a> {
    pub(crate) fn new(remote: &'a dyn Remote, first: Box<dyn Connection>, jobs: usize) -> Self {
        Pool { remote, idle: Mutex::new(vec![first]), jobs: jobs.max(1) }
    }

    /// An idle connection, or a new one.
    pub(crate) fn connection(&self) -> Result<Box<dyn Connection>> {
        match self.idle.lock().expect("idle").pop() {
            Some(c) => Ok(c),
            None => self.remote.connect(),
        }
    }

    fn connect_retrying(&self) -> Result<Box<dyn Connection>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.connection() {
                Ok(c) => return Ok(c),
                Err(e) if attempt >= ATTEMPTS => return Err(e),
                Err(_) => std::thread::sleep(backoff(attempt)),
            }
        }
    }

    /// Run `work` on every item, in parallel; one result per item, in order. Fails as a
    /// whole only when no connection can be opened.
    pub(crate) fn run<T: Sync, R: Send>(
        &self,
        items: &[T],
        work: impl Fn(&mut dyn Connection, &T) -> Result<R> + Sync,
    ) -> Result<Vec<Result<R>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let fatal: Mutex<Option<Error>> = Mutex::new(None);
        let results: Mutex<Vec<Option<Result<R>>>> = Mutex::new((0..items.len()).map(|_| None).collect());
        std::thread::scope(|s| {
            for _ in 0..self.jobs.min(items.len()) {
                s.spawn(|| {
                    let mut conn: Option<Box<dyn Connection>> = None;
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= items.len() {
                            break;
                        }
                        let mut attempt = 0;
                        let outcome = loop {
                            attempt += 1;
                            let c = match conn.take().map_or_else(|| self.connect_retrying(), Ok) {
                                Ok(c) => conn.insert(c),
                                Err(e) => {
                                    fatal.lock().expect("fatal").get_or_insert(e);
                                    stop.store(true, Ordering::Relaxed);
                                    return;
                                }
                            };
                            match work(c.as_mut(), &items[i]) {
                                Ok(r) => break Ok(r),
                                Err(e) if attempt < ATTEMPTS && retryable(&e) => {
                                    conn = None;
                                    std::thread::sleep(backoff(attempt));
                                }
                                Err(e) => break Err(e),
                            }
                        };
                        results.lock().expect("results")[i] = Some(outcome);
                    }
                    if let Some(c) = conn {
                        self.idle.lock().expect("idle").push(c);
                    }
                });
            }
        });
        if let Some(e) = fatal.into_inner().expect("fatal") {
            return Err(e);
        }
        Ok(results.into_inner().expect("results").into_iter().map(|r| r.expect("every item ran")).collect())
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 * 4u64.pow(attempt - 1))
}

/// Content errors are final; connection and I/O errors may pass.
fn retryable(e: &Error) -> bool {
    !matches!(e, Error::CorruptObject { .. } | Error::MissingObject { .. } | Error::RemoteFull { .. })
}
