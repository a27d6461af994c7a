//! Moving objects between the cache and a remote, in three steps: plan (what the
//! tracked items need, and what each side lacks), execute (over the remote's [`Store`],
//! whatever its layout), report (files, bytes of content, bytes on the wire).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cache::{Cache, Staged};
use crate::error::{Error, RemoteFailure, Result};
use crate::hash::{ObjectId, ObjectKey};
use crate::pointer::Kind;
use crate::progress::Reporter;
use crate::remote::Remote;
use crate::repo::Repo;
use crate::store::{self, Access, Store};
use crate::tracked::Tracked;

/// Downloads are made durable and renamed into the cache in batches, one at most every
/// this long, so an interrupted fetch keeps what it finished; each batch costs a flush of
/// the file system, so they are not made more often.
const COMMIT_INTERVAL: Duration = Duration::from_secs(3);

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub remote: String,
    /// Objects transferred, and the bytes of their content.
    pub files: u64,
    pub bytes: u64,
    /// Bytes actually sent (push) or received (fetch): less than `bytes` when the remote
    /// already had some of the content's chunks, or the local cache supplied them, or
    /// they compressed.
    pub transferred: u64,
    /// Objects the other side already had.
    pub already_there: u64,
    /// Objects the source side lacks (not in the local cache for push, not on the remote for fetch).
    pub missing: Vec<String>,
    /// Objects whose content did not match their id, or whose packs or index on the
    /// remote are damaged (fetch).
    pub corrupt: Vec<String>,
    /// What was damaged, when it was a pack or an index rather than an object's bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damage: Option<String>,
    /// Objects that failed after retries, with the last error.
    pub failed: Vec<(String, String)>,
    pub seconds: f64,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.missing.is_empty() && self.corrupt.is_empty() && self.failed.is_empty()
    }

    /// What an incomplete fetch lacks, on one line (up to three objects of each kind), and
    /// the kind of failure it was.
    pub fn shortfall(&self) -> (crate::error::RemoteFailure, String) {
        use crate::error::RemoteFailure;
        let mut lines = Vec::new();
        let sample = |v: &[String]| v.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        if !self.missing.is_empty() {
            lines.push(format!("{} object(s) missing: {}", self.missing.len(), sample(&self.missing)));
        }
        if !self.corrupt.is_empty() {
            lines.push(format!("{} object(s) corrupt: {}", self.corrupt.len(), sample(&self.corrupt)));
        }
        for (id, e) in self.failed.iter().take(3) {
            lines.push(format!("{id}: {e}"));
        }
        let kind = if self.failed.is_empty() && self.corrupt.is_empty() {
            RemoteFailure::NotFound
        } else if self.failed.is_empty() {
            RemoteFailure::Corrupt
        } else {
            RemoteFailure::Io
        };
        (kind, lines.join("; "))
    }

    fn new(remote: &dyn Remote) -> Report {
        Report { remote: remote.name().to_string(), ..Report::default() }
    }

    /// Count one object's outcome.
    fn record(&mut self, k: &ObjectKey, size: u64, outcome: Result<()>) {
        match outcome {
            Ok(()) => {
                self.files += 1;
                self.bytes += size;
            }
            Err(Error::MissingObject { .. }) => self.missing.push(k.display()),
            Err(Error::CorruptObject { .. }) => self.corrupt.push(k.display()),
            Err(e @ Error::Remote { kind: RemoteFailure::Corrupt, .. }) => {
                self.corrupt.push(k.display());
                self.damage.get_or_insert_with(|| e.to_string());
            }
            Err(other) => self.failed.push((k.display(), other.to_string())),
        }
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

fn wanted(cache: &Cache, targets: &[&Tracked]) -> Result<Wanted> {
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

/// Whether the cache holds an object.
fn in_cache(cache: &Cache, k: &ObjectKey) -> bool {
    if k.is_manifest() { cache.has_manifest(&k.id) } else { cache.has_object(&k.id) }
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
    let Some(store) = store::open(repo, remote, jobs, Access::Read)? else {
        return Ok(keys.iter().map(|k| (k.id, Error::MissingObject { id: k.display() })).collect());
    };
    let mut failed = Vec::new();
    for (k, r) in keys.iter().zip(store.manifests(&keys)?) {
        match r {
            Ok(m) => {
                repo.cache.insert_manifest(&m)?;
            }
            Err(e) => failed.push((k.id, e)),
        }
    }
    Ok(failed)
}

/// The manifests of the tracked folders that the remote has: their folders are complete
/// there (manifests are stored after all their files).
fn complete_folders(store: &dyn Store, targets: &[Tracked]) -> Result<HashSet<ObjectKey>> {
    let keys: Vec<ObjectKey> = targets
        .iter()
        .filter(|t| t.pointer.kind == Kind::Dir)
        .map(|t| ObjectKey::manifest(t.pointer.hash))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    store.present(&keys)
}

/// What a push will do.
struct PushPlan {
    /// File objects to send, with their sizes.
    files: Vec<(ObjectKey, u64)>,
    /// Manifests to send once their files are there, with the files they list.
    manifests: Vec<(ObjectKey, Vec<ObjectKey>)>,
    /// Objects that neither the cache nor the remote has.
    missing: Vec<ObjectKey>,
    /// Objects the remote had.
    already_there: u64,
}

fn plan_push(cache: &Cache, store: &dyn Store, targets: &[Tracked]) -> Result<PushPlan> {
    // A folder whose manifest the remote has is complete there: its files are not looked
    // at, so a push with nothing new costs a check per folder, not per file.
    let complete = complete_folders(store, targets)?;
    let (done, todo): (Vec<&Tracked>, Vec<&Tracked>) = targets.iter().partition(|t| {
        t.pointer.kind == Kind::Dir && complete.contains(&ObjectKey::manifest(t.pointer.hash))
    });
    let mut already_there: u64 = done.iter().map(|t| t.pointer.files.unwrap_or(0) + 1).sum();
    let w = wanted(cache, &todo)?;

    type Sized = Vec<(ObjectKey, u64)>;
    let (local, mut absent): (Sized, Sized) = w.files.iter().partition(|(k, _)| cache.has_object(&k.id));
    let mut ask: Vec<ObjectKey> = local.iter().map(|(k, _)| *k).collect();
    ask.extend(w.manifests.iter().map(|(k, _)| *k));
    // What this cache lacks is only a problem when the remote lacks it too (a clone that
    // pulled part of the data pushes fine).
    ask.extend(absent.iter().map(|(k, _)| *k));
    ask.extend(w.unknown_manifests.iter().copied());
    let present = store.present(&ask)?;
    already_there += present.len() as u64;
    absent.retain(|(k, _)| !present.contains(k));
    let mut missing: Vec<ObjectKey> =
        w.unknown_manifests.into_iter().filter(|k| !present.contains(k)).collect();
    missing.extend(absent.iter().map(|(k, _)| *k));
    Ok(PushPlan {
        files: local.into_iter().filter(|(k, _)| !present.contains(k)).collect(),
        manifests: w.manifests.into_iter().filter(|(k, _)| !present.contains(k)).collect(),
        missing,
        already_there,
    })
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
    let mut report = Report::new(remote);
    let store = store::open(repo, remote, jobs, Access::Write)?.expect("a push creates the remote");
    let mut plan = plan_push(&repo.cache, store.as_ref(), targets)?;
    if !plan.files.is_empty() || !plan.manifests.is_empty() {
        store.begin_writing()?;
        plan = plan_push(&repo.cache, store.as_ref(), targets)?;
    }
    report.already_there = plan.already_there;
    report.missing = plan.missing.iter().map(ObjectKey::display).collect();

    let total: u64 = plan.files.iter().map(|(_, s)| s).sum();
    reporter.start("pushing", plan.files.len() as u64, total);
    let sent = store.upload(&repo.cache, &plan.files, reporter);
    let stopped = |store: &dyn Store| {
        reporter.finish();
        let signal = crate::interrupt::signal()?;
        store.abandon();
        Some(Error::Interrupted { signal })
    };
    if let Some(e) = stopped(store.as_ref()) {
        return Err(e);
    }
    let sent = sent?;
    report.transferred += sent.wire;
    let mut failed = HashSet::new();
    for ((k, size), r) in plan.files.iter().zip(sent.each) {
        if r.is_err() {
            failed.insert(*k);
        }
        report.record(k, *size, r);
    }
    // A manifest is stored only once every file it lists is on the remote.
    failed.extend(plan.missing.iter().copied());
    let manifests: Vec<(ObjectKey, u64)> = plan
        .manifests
        .iter()
        .filter(|(_, members)| members.iter().all(|m| !failed.contains(m)))
        .map(|(mk, _)| (*mk, std::fs::metadata(repo.cache.manifest_path(&mk.id)).map_or(0, |m| m.len())))
        .collect();
    let sent = store.upload(&repo.cache, &manifests, &crate::progress::Silent);
    if let Some(e) = stopped(store.as_ref()) {
        return Err(e);
    }
    let sent = sent?;
    report.transferred += sent.wire;
    for ((k, _), r) in manifests.iter().zip(sent.each) {
        // A manifest's bytes are not data: it counts as a file sent, not as content.
        report.record(k, 0, r);
    }
    reporter.finish();
    if !plan.files.is_empty() || !manifests.is_empty() {
        match store.finish_push(report.files > 0) {
            Ok(()) => {}
            // The failures are reported; a rerun finishes the job.
            Err(_) if !report.failed.is_empty() => {}
            Err(e) => return Err(e),
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
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
    let mut report = Report::new(remote);
    repo.cache.ensure()?;
    let all: Vec<&Tracked> = targets.iter().collect();
    let mut w = wanted(&repo.cache, &all)?;
    let mut needed: Vec<(ObjectKey, u64)> =
        w.files.iter().filter(|(k, _)| !repo.cache.has_object(&k.id)).copied().collect();
    report.already_there = (w.files.len() - needed.len()) as u64;
    if needed.is_empty() && w.unknown_manifests.is_empty() {
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let Some(store) = store::open(repo, remote, jobs, Access::Read)? else {
        // An empty remote: it has none of them.
        for k in w.unknown_manifests.iter().chain(needed.iter().map(|(k, _)| k)) {
            report.missing.push(k.display());
        }
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    };

    // Manifests first: they say which files the folders need.
    if !w.unknown_manifests.is_empty() {
        let got = store.manifests(&w.unknown_manifests)?;
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
                Err(e) => report.record(k, 0, Err(e)),
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
    let got = store.download(&repo.cache, &needed, &stage);
    flush(true);
    reporter.finish();
    if let Some(e) = commit_err.into_inner().expect("commit") {
        return Err(e);
    }
    let got = got?;
    report.transferred += got.wire;
    for ((k, size), r) in needed.iter().zip(got.each) {
        report.record(k, *size, r);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
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
    let state = repo.state();
    let mut whole_here: HashSet<ObjectKey> = HashSet::new();
    // Each target's objects (a folder's manifest first), and whether the cache is known
    // to hold all of a folder's files without a stat per file (see `Cache::has_all`).
    let mut keys_of = |t: &Tracked| match t.pointer.kind {
        Kind::File => vec![ObjectKey::file(t.pointer.hash)],
        Kind::Dir => {
            let mk = ObjectKey::manifest(t.pointer.hash);
            let mut keys = vec![mk];
            if let Ok(m) = repo.cache.read_manifest(&t.pointer.hash) {
                if repo.cache.has_all(&t.pointer.hash, &m, &state) {
                    whole_here.insert(mk);
                }
                keys.extend(m.entries.iter().map(|e| ObjectKey::file(e.hash)));
            }
            keys
        }
    };
    // The cache's side is read while the remote is opened (an SSH login, then its
    // index): neither waits for the other.
    let (store, mut per_target) = std::thread::scope(|s| {
        let opening = s.spawn(|| store::open(repo, remote, jobs, Access::Read));
        let per_target: Vec<(String, Vec<ObjectKey>)> =
            targets.iter().map(|t| (t.rel(repo), keys_of(t))).collect();
        (opening.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), per_target)
    });
    let store = store?;
    // Folders whose manifest only the remote has: read it from there (verified) into the
    // cache, then list their files.
    let unknown: Vec<usize> = targets
        .iter()
        .enumerate()
        .filter(|(_, t)| t.pointer.kind == Kind::Dir && !repo.cache.has_manifest(&t.pointer.hash))
        .map(|(i, _)| i)
        .collect();
    if let Some(store) = &store
        && !unknown.is_empty()
    {
        let keys: Vec<ObjectKey> = unknown
            .iter()
            .map(|&i| ObjectKey::manifest(targets[i].pointer.hash))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for m in store.manifests(&keys)?.into_iter().flatten() {
            repo.cache.insert_manifest(&m)?;
        }
        for i in unknown {
            per_target[i].1 = keys_of(&targets[i]);
        }
    }
    // The files of a folder whose manifest the remote has are there (see `push`); one the
    // cache is known to hold whole too is in sync without a look at its files.
    let complete = match &store {
        Some(store) => complete_folders(store.as_ref(), targets)?,
        None => HashSet::new(),
    };
    let settled = |keys: &[ObjectKey]| whole_here.contains(&keys[0]) && complete.contains(&keys[0]);
    let unsettled = || per_target.iter().map(|(_, keys)| keys).filter(|keys| !settled(keys));
    let all: HashSet<ObjectKey> = unsettled().flat_map(|k| k.iter().copied()).collect();
    let mut on_remote = HashSet::new();
    if let Some(store) = &store {
        for keys in unsettled().filter(|keys| complete.contains(&keys[0])) {
            on_remote.extend(keys.iter().copied());
        }
        let unsure: Vec<ObjectKey> = all.iter().filter(|k| !on_remote.contains(k)).copied().collect();
        on_remote.extend(store.present(&unsure)?);
    }
    let mut local: HashMap<ObjectKey, bool> = HashMap::with_capacity(all.len());
    for keys in unsettled() {
        let known = whole_here.contains(&keys[0]);
        for k in keys {
            local.entry(*k).or_insert_with(|| known || in_cache(&repo.cache, k));
        }
    }
    Ok(per_target
        .into_iter()
        .map(|(path, keys)| {
            let mut s =
                RemoteState { path, not_pushed: 0, not_pulled: 0, missing_everywhere: 0, in_sync: true };
            if settled(&keys) {
                return s;
            }
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

/// What a pull did: the fetch's report (`None` when the cache had everything and no
/// remote was asked), and what placing produced (`None` when the fetch was incomplete:
/// then nothing was placed).
pub struct Pulled<T> {
    pub fetched: Option<Report>,
    pub placed: Option<T>,
}

/// A pull, as `pull`, `get` and `exp checkout` make it: fetch what `targets` need and the
/// cache lacks (without a remote, the cache must have it all), then, only when the cache
/// has it all, `place` it. An incomplete fetch places nothing and leaves the report for the caller to word.
pub fn pull<T>(
    repo: &Repo,
    remote: Option<&dyn Remote>,
    targets: &[Tracked],
    jobs: Option<usize>,
    reporter: &dyn Reporter,
    place: impl FnOnce() -> Result<T>,
) -> Result<Pulled<T>> {
    let fetched = match remote {
        // A fetch with nothing to do does not connect.
        Some(remote) => Some(fetch(repo, remote, targets, jobs, reporter)?),
        None if targets.iter().all(|t| crate::workspace::in_cache(repo, &t.pointer)) => None,
        None => {
            return Err(Error::Usage(
                "some of the data is not in the cache and no remote is configured; add one with `trove remote add`"
                    .into(),
            ));
        }
    };
    if fetched.as_ref().is_some_and(|r| !r.ok()) {
        return Ok(Pulled { fetched, placed: None });
    }
    Ok(Pulled { fetched, placed: Some(place()?) })
}
