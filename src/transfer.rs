//! Moving objects between the cache and a remote: what is missing where, and a pool of
//! connections that transfers it in parallel with retries.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cache::{Cache, Staged};
use crate::error::{Error, RemoteFailure, Result};
use crate::hash::ObjectId;
use crate::manifest::Manifest;
use crate::pointer::Kind;
use crate::progress::Reporter;
use crate::remote::pool::Pool;
use crate::remote::{Backend, ObjectKey, Remote, check_layout, layout1};
use crate::repo::Repo;
use crate::tracked::Tracked;

/// Downloads are made durable and renamed into the cache in batches, one at most every
/// this long, so an interrupted fetch keeps what it finished; each batch costs a flush of
/// the file system, so they are not made more often.
const COMMIT_INTERVAL: Duration = Duration::from_secs(3);
/// Objects up to this size are downloaded in batches, through memory.
const BATCH_OBJECT_MAX: u64 = 1 << 20;
/// A batch holds at most this many objects, or about this many bytes.
const BATCH_OBJECTS: usize = 256;
const BATCH_BYTES: u64 = 8 << 20;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub remote: String,
    /// Objects transferred and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Objects the other side already had.
    pub already_there: u64,
    /// Objects the source side lacks (not in the local cache for push, not on the remote for fetch).
    pub missing: Vec<String>,
    /// Objects whose content did not match their id (fetch).
    pub corrupt: Vec<String>,
    /// Objects that failed after retries, with the last error.
    pub failed: Vec<(String, String)>,
    pub seconds: f64,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.missing.is_empty() && self.corrupt.is_empty() && self.failed.is_empty()
    }
}

/// The objects some tracked items need.
#[derive(Default)]
struct Wanted {
    files: Vec<(ObjectKey, u64)>,
    /// Each manifest with the file objects it lists (uploaded only after them).
    manifests: Vec<(ObjectKey, Vec<ObjectKey>)>,
    /// Manifests the local cache lacks.
    unknown_manifests: Vec<ObjectKey>,
}

fn wanted(cache: &Cache, targets: &[Tracked]) -> Result<Wanted> {
    let mut w = Wanted::default();
    let mut seen = HashSet::new();
    for t in targets {
        match t.pointer.kind {
            Kind::File => {
                let k = ObjectKey::file(t.pointer.hash);
                if seen.insert(k) {
                    w.files.push((k, t.pointer.size));
                }
            }
            Kind::Dir => {
                let mk = ObjectKey::manifest(t.pointer.hash);
                if !seen.insert(mk) {
                    continue;
                }
                match cache.read_manifest(&t.pointer.hash) {
                    Ok(m) => {
                        let mut members = Vec::with_capacity(m.entries.len());
                        for e in &m.entries {
                            let k = ObjectKey::file(e.hash);
                            members.push(k);
                            if seen.insert(k) {
                                w.files.push((k, e.size));
                            }
                        }
                        w.manifests.push((mk, members));
                    }
                    Err(Error::MissingObject { .. }) => w.unknown_manifests.push(mk),
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(w)
}

/// Connect once, check (or, for a push, create) the remote's layout.
fn open_checked(remote: &dyn Remote, create: bool) -> Result<Box<dyn Backend>> {
    let mut conn = remote.connect()?;
    match crate::remote::read_layout(conn.as_mut())? {
        Some(text) => check_layout(remote.name(), &text)?,
        None if create => crate::remote::init_layout(conn.as_mut())?,
        // An empty folder is a remote nothing was pushed to yet: it lacks every object.
        None if conn.root_exists()? => {}
        None => {
            return Err(Error::remote(
                remote.name(),
                RemoteFailure::NotFound,
                format!("{} does not exist; check the URL, or push to it first", remote.url()),
            ));
        }
    }
    Ok(conn)
}

/// Download a manifest and check it against its id (it is small: held in memory).
fn download_manifest(c: &mut dyn Backend, k: &ObjectKey) -> Result<Manifest> {
    let mut bytes = Vec::new();
    layout1::download(c, k, None, &mut bytes).map_err(|e| download_failed(c, k, e))?;
    check_id(k, ObjectId::of_bytes(&bytes))?;
    Manifest::parse(&bytes, &k.display())
}

/// Refuse downloaded bytes that hashed to `actual` for the object `k`.
fn check_id(k: &ObjectKey, actual: ObjectId) -> Result<()> {
    if actual != k.id {
        return Err(Error::CorruptObject { id: k.display(), actual: actual.to_hex() });
    }
    Ok(())
}

/// Why a download of `k` failed: a failure to read may be an object the remote does not
/// have, which is worth saying as such.
fn download_failed(c: &mut dyn Backend, k: &ObjectKey, e: Error) -> Error {
    match e {
        Error::CorruptObject { .. } | Error::MissingObject { .. } => e,
        _ if !layout1::exists(c, k).unwrap_or(true) => Error::MissingObject { id: k.display() },
        _ => e,
    }
}

/// Fetch these folders' manifests into the cache (verified); returns what could not be
/// had, with why (not on the remote, corrupt, …).
pub fn fetch_manifests(
    repo: &Repo,
    remote: &dyn Remote,
    ids: &[ObjectId],
    jobs: Option<usize>,
) -> Result<Vec<(ObjectId, Error)>> {
    let keys: Vec<ObjectKey> =
        ids.iter().filter(|id| !repo.cache.has_manifest(id)).map(|id| ObjectKey::manifest(*id)).collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    repo.cache.ensure()?;
    let jobs = jobs.unwrap_or_else(|| remote.default_jobs());
    let pool = Pool::new(remote, open_checked(remote, false)?, jobs);
    let got = pool.run(&keys, download_manifest)?;
    let mut failed = Vec::new();
    for (k, r) in keys.iter().zip(got) {
        match r {
            Ok(m) => {
                repo.cache.insert_manifest(&m)?;
            }
            Err(e) => failed.push((k.id, e)),
        }
    }
    Ok(failed)
}

/// Which of `keys` the remote has: one listing per fan-out folder when that is fewer
/// round trips than asking for each object.
fn present_on_remote(pool: &Pool, keys: &[ObjectKey]) -> Result<HashSet<ObjectKey>> {
    let prefixes: BTreeSet<String> = keys.iter().map(|k| k.prefix()).collect();
    let mut present = HashSet::new();
    if keys.len() > prefixes.len() * 2 {
        let prefixes: Vec<String> = prefixes.into_iter().collect();
        let listed = pool.run(&prefixes, |c, p| layout1::list_prefix(c, p))?;
        let wanted: HashSet<&ObjectKey> = keys.iter().collect();
        for names in listed {
            for k in names? {
                if wanted.contains(&k) {
                    present.insert(k);
                }
            }
        }
    } else {
        let found = pool.run(keys, |c, k| layout1::exists(c, k))?;
        for (k, f) in keys.iter().zip(found) {
            if f? {
                present.insert(*k);
            }
        }
    }
    Ok(present)
}

/// The manifests of the tracked folders that the remote has.
fn complete_folders(pool: &Pool, targets: &[Tracked]) -> Result<HashSet<ObjectKey>> {
    let keys: Vec<ObjectKey> = targets
        .iter()
        .filter(|t| t.pointer.kind == Kind::Dir)
        .map(|t| ObjectKey::manifest(t.pointer.hash))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    present_on_remote(pool, &keys)
}

/// Upload what the tracked items need and the remote lacks; manifests go last.
pub fn push(
    repo: &Repo,
    remote: &dyn Remote,
    targets: &[Tracked],
    jobs: Option<usize>,
    reporter: &dyn Reporter,
) -> Result<Report> {
    let started = Instant::now();
    let jobs = jobs.unwrap_or_else(|| remote.default_jobs());
    let mut report = Report { remote: remote.name().to_string(), ..Report::default() };
    let pool = Pool::new(remote, open_checked(remote, true)?, jobs);
    // A folder whose manifest the remote has is complete there (manifests are uploaded
    // after all their files): its files are not looked at, so a push with nothing new
    // costs a check per folder, not per file.
    let complete = complete_folders(&pool, targets)?;
    let (done, targets): (Vec<&Tracked>, Vec<&Tracked>) = targets.iter().partition(|t| {
        t.pointer.kind == Kind::Dir && complete.contains(&ObjectKey::manifest(t.pointer.hash))
    });
    report.already_there = done.iter().map(|t| t.pointer.files.unwrap_or(0) + 1).sum();
    let targets: Vec<Tracked> = targets.into_iter().cloned().collect();
    let w = wanted(&repo.cache, &targets)?;

    let mut local_files = Vec::new();
    let mut missing_local = HashSet::new();
    for (k, size) in &w.files {
        if repo.cache.has_object(&k.id) {
            local_files.push((*k, *size));
        } else {
            missing_local.insert(*k);
        }
    }
    let mut all_keys: Vec<ObjectKey> = local_files.iter().map(|(k, _)| *k).collect();
    all_keys.extend(w.manifests.iter().map(|(k, _)| *k));
    // What this cache lacks is only a problem when the remote lacks it too (a clone that
    // pulled part of the data pushes fine). A folder whose manifest the remote has is
    // complete there: manifests are uploaded after all their files.
    all_keys.extend(missing_local.iter().copied());
    all_keys.extend(w.unknown_manifests.iter().copied());
    let present = present_on_remote(&pool, &all_keys)?;
    missing_local.retain(|k| !present.contains(k));
    report
        .missing
        .extend(w.unknown_manifests.iter().filter(|k| !present.contains(k)).map(ObjectKey::display));
    report.missing.extend(missing_local.iter().map(ObjectKey::display));

    let to_send: Vec<(ObjectKey, u64)> =
        local_files.iter().filter(|(k, _)| !present.contains(k)).copied().collect();
    report.already_there += present.len() as u64;
    let total: u64 = to_send.iter().map(|(_, s)| s).sum();
    reporter.start("pushing", to_send.len() as u64, total);
    let sizes: Vec<u64> = to_send.iter().map(|(_, s)| *s).collect();
    let outcomes = run_batched(
        &pool,
        &sizes,
        |c, todo, record| {
            let items: Vec<(ObjectKey, PathBuf)> =
                todo.iter().map(|&i| (to_send[i].0, repo.cache.object_path(&to_send[i].0.id))).collect();
            layout1::upload_batch(c, &items, &mut |j, r| {
                if r.is_ok() {
                    reporter.advance(1, sizes[todo[j]]);
                }
                record(todo[j], r);
            })
        },
        |c, i| {
            let (k, size) = to_send[i];
            layout1::upload(c, &k, &repo.cache.object_path(&k.id))?;
            reporter.advance(1, size);
            Ok(())
        },
    )?;
    if let Some(signal) = crate::interrupt::signal() {
        reporter.finish();
        return Err(interrupted(remote, signal));
    }
    let mut failed_keys = HashSet::new();
    for ((k, size), r) in to_send.iter().zip(outcomes) {
        match r {
            Ok(()) => {
                report.files += 1;
                report.bytes += size;
            }
            Err(e) => {
                failed_keys.insert(*k);
                report.failed.push((k.display(), e.to_string()));
            }
        }
    }
    // A manifest is uploaded only once every file it lists is on the remote.
    let manifests: Vec<ObjectKey> = w
        .manifests
        .iter()
        .filter(|(mk, members)| {
            !present.contains(mk)
                && members.iter().all(|m| !failed_keys.contains(m) && !missing_local.contains(m))
        })
        .map(|(mk, _)| *mk)
        .collect();
    let sent = pool.run(&manifests, |c, k| layout1::upload(c, k, &repo.cache.manifest_path(&k.id)))?;
    if let Some(signal) = crate::interrupt::signal() {
        reporter.finish();
        return Err(interrupted(remote, signal));
    }
    for (k, r) in manifests.iter().zip(sent) {
        match r {
            Ok(()) => report.files += 1,
            Err(e) => report.failed.push((k.display(), e.to_string())),
        }
    }
    reporter.finish();
    if !to_send.is_empty() {
        let mut conn = match pool.connection() {
            Ok(c) => c,
            // The failures are reported below; a rerun finishes the job.
            Err(_) if !report.failed.is_empty() => {
                report.seconds = started.elapsed().as_secs_f64();
                return Ok(report);
            }
            Err(e) => return Err(e),
        };
        // Temps of failed attempts: best effort, the objects are in place either way.
        let _ = crate::remote::clean_temps(conn.as_mut());
        if report.files > 0 {
            conn.flush()?;
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// A push stopped by a signal: remove its temp files from the remote (over a fresh
/// connection: a pooled one may have been cut mid-request), then say so.
fn interrupted(remote: &dyn Remote, signal: i32) -> Error {
    if let Ok(mut conn) = remote.connect() {
        let _ = crate::remote::clean_temps(conn.as_mut());
    }
    Error::Interrupted { signal }
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
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
    let (file, temp) = cache.temp_file()?;
    // A buffer no larger than the object: a 1 MiB one for each small file costs an
    // mmap/munmap pair per object.
    let capacity = size.clamp(4096, 1 << 20) as usize;
    let mut w =
        Hashing { inner: std::io::BufWriter::with_capacity(capacity, file), hasher: blake3::Hasher::new() };
    let result = layout1::download(c, k, Some(size), &mut w).and_then(|_| {
        w.flush().map_err(|e| Error::io(&temp, e))?;
        check_id(k, ObjectId::from_bytes(*w.hasher.finalize().as_bytes()))
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

/// Download what the tracked items need and the cache lacks. Every object is re-hashed
/// before it enters the cache; a corrupt one is reported and never placed.
pub fn fetch(
    repo: &Repo,
    remote: &dyn Remote,
    targets: &[Tracked],
    jobs: Option<usize>,
    reporter: &dyn Reporter,
) -> Result<Report> {
    let started = Instant::now();
    let jobs = jobs.unwrap_or_else(|| remote.default_jobs());
    let mut report = Report { remote: remote.name().to_string(), ..Report::default() };
    repo.cache.ensure()?;
    let mut w = wanted(&repo.cache, targets)?;
    let mut needed: Vec<(ObjectKey, u64)> =
        w.files.iter().filter(|(k, _)| !repo.cache.has_object(&k.id)).copied().collect();
    report.already_there = (w.files.len() - needed.len()) as u64;
    if needed.is_empty() && w.unknown_manifests.is_empty() {
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let pool = Pool::new(remote, open_checked(remote, false)?, jobs);

    // Manifests first: they say which files the folders need.
    if !w.unknown_manifests.is_empty() {
        let got = pool.run(&w.unknown_manifests, download_manifest)?;
        let mut seen: HashSet<ObjectKey> = w.files.iter().map(|(k, _)| *k).collect();
        for (k, r) in std::mem::take(&mut w.unknown_manifests).iter().zip(got) {
            match r {
                Ok(m) => {
                    repo.cache.insert_manifest(&m)?;
                    report.files += 1;
                    for e in &m.entries {
                        let fk = ObjectKey::file(e.hash);
                        if seen.insert(fk) && !repo.cache.has_object(&e.hash) {
                            needed.push((fk, e.size));
                        }
                    }
                }
                Err(e) => classify(&mut report, k, e),
            }
        }
    }

    let total: u64 = needed.iter().map(|(_, s)| s).sum();
    reporter.start("fetching", needed.len() as u64, total);
    let pending: Mutex<(Vec<Staged>, Instant)> = Mutex::new((Vec::new(), Instant::now()));
    let commit_err: Mutex<Option<Error>> = Mutex::new(None);
    let flush = |force: bool| {
        let batch = {
            let mut p = pending.lock().expect("pending");
            if !force && p.1.elapsed() < COMMIT_INTERVAL {
                return;
            }
            p.1 = Instant::now();
            std::mem::take(&mut p.0)
        };
        if let Err(e) = repo.cache.commit(batch) {
            commit_err.lock().expect("commit").get_or_insert(e);
        }
    };
    let stage = |staged: Staged, size: u64| {
        pending.lock().expect("pending").0.push(staged);
        flush(false);
        reporter.advance(1, size);
    };
    let sizes: Vec<u64> = needed.iter().map(|(_, s)| *s).collect();
    let outcomes = run_batched(
        &pool,
        &sizes,
        |c, todo, record| {
            let items: Vec<(ObjectKey, u64)> = todo.iter().map(|&i| needed[i]).collect();
            let mut got = Vec::with_capacity(items.len());
            let result = layout1::download_batch(c, &items, &mut |j, bytes| {
                let (k, size) = items[j];
                got.push((
                    j,
                    bytes.and_then(|bytes| {
                        check_id(&k, ObjectId::of_bytes(&bytes))?;
                        stage(repo.cache.stage_bytes(&bytes, k.id)?, size);
                        Ok(())
                    }),
                ));
            });
            for (j, outcome) in got {
                record(todo[j], outcome.map_err(|e| download_failed(c, &items[j].0, e)));
            }
            result
        },
        |c, i| {
            let (k, size) = needed[i];
            stage(download_verified(&repo.cache, c, &k, size)?, size);
            Ok(())
        },
    )?;
    flush(true);
    reporter.finish();
    if let Some(e) = commit_err.into_inner().expect("commit") {
        return Err(e);
    }
    for ((k, size), r) in needed.iter().zip(outcomes) {
        match r {
            Ok(()) => {
                report.files += 1;
                report.bytes += size;
            }
            Err(e) => classify(&mut report, k, e),
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn classify(report: &mut Report, k: &ObjectKey, e: Error) {
    match e {
        Error::MissingObject { .. } => report.missing.push(k.display()),
        Error::CorruptObject { .. } => report.corrupt.push(k.display()),
        other => report.failed.push((k.display(), other.to_string())),
    }
}

/// Per tracked item: objects not yet pushed, not yet pulled, and on neither side.
#[derive(Debug, Serialize)]
pub struct RemoteState {
    pub path: String,
    pub not_pushed: u64,
    pub not_pulled: u64,
    pub missing_everywhere: u64,
    pub in_sync: bool,
}

pub fn remote_status(
    repo: &Repo,
    remote: &dyn Remote,
    targets: &[Tracked],
    jobs: Option<usize>,
) -> Result<Vec<RemoteState>> {
    let jobs = jobs.unwrap_or_else(|| remote.default_jobs());
    let pool = Pool::new(remote, open_checked(remote, false)?, jobs);
    // Folders whose manifest only the remote has: read it from there (verified) into the cache.
    let w = wanted(&repo.cache, targets)?;
    if !w.unknown_manifests.is_empty() {
        let got = pool.run(&w.unknown_manifests, download_manifest)?;
        for m in got.into_iter().flatten() {
            repo.cache.insert_manifest(&m)?;
        }
    }
    let per_target: Vec<(String, Vec<ObjectKey>)> = targets
        .iter()
        .map(|t| {
            let keys = match t.pointer.kind {
                Kind::File => vec![ObjectKey::file(t.pointer.hash)],
                Kind::Dir => {
                    let mut keys = vec![ObjectKey::manifest(t.pointer.hash)];
                    if let Ok(m) = repo.cache.read_manifest(&t.pointer.hash) {
                        keys.extend(m.entries.iter().map(|e| ObjectKey::file(e.hash)));
                    }
                    keys
                }
            };
            (t.rel(repo), keys)
        })
        .collect();
    let all: HashSet<ObjectKey> = per_target.iter().flat_map(|(_, k)| k.iter().copied()).collect();
    // The files of a folder whose manifest the remote has are there (see `push`).
    let complete = complete_folders(&pool, targets)?;
    let mut on_remote: HashSet<ObjectKey> = complete.clone();
    for (_, keys) in &per_target {
        if complete.contains(&keys[0]) {
            on_remote.extend(keys.iter().copied());
        }
    }
    let unsure: Vec<ObjectKey> = all.iter().filter(|k| !on_remote.contains(k)).copied().collect();
    on_remote.extend(present_on_remote(&pool, &unsure)?);
    let all: Vec<ObjectKey> = all.into_iter().collect();
    let local: HashMap<ObjectKey, bool> = all
        .iter()
        .map(|k| {
            let here =
                if k.is_manifest() { repo.cache.has_manifest(&k.id) } else { repo.cache.has_object(&k.id) };
            (*k, here)
        })
        .collect();
    Ok(per_target
        .into_iter()
        .map(|(path, keys)| {
            let mut s =
                RemoteState { path, not_pushed: 0, not_pulled: 0, missing_everywhere: 0, in_sync: true };
            for k in keys.iter().collect::<HashSet<_>>() {
                match (local[k], on_remote.contains(k)) {
                    (true, false) => s.not_pushed += 1,
                    (false, true) => s.not_pulled += 1,
                    (false, false) => s.missing_everywhere += 1,
                    (true, true) => {}
                }
            }
            s.in_sync = s.not_pushed == 0 && s.not_pulled == 0 && s.missing_everywhere == 0;
            s
        })
        .collect())
}
