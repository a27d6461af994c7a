//! `trove gc`: delete the objects that nothing in a scope uses, from the cache and
//! optionally from a remote.
//!
//! What is kept: every object the scope's pointers name (file contents and folder
//! manifests) and every file a kept manifest lists, plus the artifacts of every
//! experiment record and of every registered model version (and, with all commits, the
//! data records name). A folder whose manifest cannot be read leaves its files unknown:
//! then no file object is deleted at all. Planning and deleting are separate steps, so the caller can show the plan and ask
//! before anything goes.
//!
//! On a layout-2 remote the objects are records in index files and their data chunks in
//! shared packs, so deleting becomes a prune ([`crate::store::prune`]): under an
//! exclusive lock the plan is made again (a push may have come in since it was shown),
//! the objects leave the index, and packs left without live chunks are deleted or
//! repacked.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::hash::ObjectId;
use crate::history::{self, Scope};
use crate::pointer::Kind;
use crate::progress::Reporter;
use crate::remote::pool::Pool;
use crate::remote::{Backend, ObjectKey, Remote};
use crate::repo::Repo;
use crate::store::{layout1, prune};

/// One object to delete.
#[derive(Debug, Clone, Serialize)]
pub struct Doomed {
    /// The object's id (`<hex>.dir` for a manifest).
    pub id: String,
    /// Where it is: a path in the cache, or `objects/…` on the remote.
    pub path: String,
    pub size: u64,
    #[serde(skip)]
    key: ObjectKey,
}

/// What is deleted from one store (the cache, or a remote).
#[derive(Debug, Default, Serialize)]
pub struct Side {
    /// `cache`, or the remote's name.
    pub name: String,
    /// Manifests first, then file contents.
    pub objects: Vec<Doomed>,
    pub count: u64,
    pub bytes: u64,
    /// Objects left in place.
    pub kept: u64,
    /// For a remote: upload temp files under its `tmp/` that no push writes to any more
    /// (see [`crate::remote::STALE_UPLOAD`]), as `tmp/NAME`. The cache's are [`Plan::temps`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temps: Option<Temps>,
    /// For a layout-2 remote: what happens to its packs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packs: Option<Packs>,
}

/// The packs of a layout-2 remote that a prune deletes or repacks.
#[derive(Debug, Default, Serialize)]
pub struct Packs {
    /// Packs deleted whole (no live chunk, or listed by no index file), as `packs/…`.
    pub deleted: Vec<String>,
    /// Packs mostly garbage whose live chunks move into new packs (then deleted).
    pub repacked: Vec<String>,
    /// New packs written by repacking (after [`execute`]).
    pub written: u64,
    /// The bytes the remote frees: packs deleted plus what repacking saves.
    pub bytes_freed: u64,
    /// Locks of processes that died, as `locks/…` (removed by taking the prune's lock).
    pub stale_locks: Vec<String>,
}

impl Packs {
    fn of(p: &prune::Prune) -> Packs {
        Packs {
            deleted: p.delete.iter().map(|(id, _)| crate::store::layout2::pack_path(id)).collect(),
            repacked: p.repack.iter().map(|r| crate::store::layout2::pack_path(&r.id)).collect(),
            written: 0,
            bytes_freed: p.bytes_freed(),
            stale_locks: p.stale_locks.iter().map(|n| format!("{}/{n}", crate::store::locks::DIR)).collect(),
        }
    }
}

impl Side {
    fn new(name: String, mut objects: Vec<Doomed>, total: u64) -> Side {
        objects.sort_by_key(|d| (!d.key.is_manifest(), d.key.id));
        let count = objects.len() as u64;
        Side {
            name,
            bytes: objects.iter().map(|d| d.size).sum(),
            kept: total - count,
            count,
            objects,
            temps: None,
            packs: None,
        }
    }

    /// A layout-2 remote's side: the objects `p` drops from its index.
    fn of_prune(name: String, p: &prune::Prune) -> Side {
        let dropped = p.dropped.iter().map(|(k, size)| Doomed {
            id: k.display(),
            path: k.display(),
            size: *size,
            key: *k,
        });
        let mut side = Side::new(name, dropped.collect(), p.dropped.len() as u64 + p.kept);
        side.temps =
            Some(Temps::new(p.temps.iter().map(|t| (Path::new("tmp").join(&t.name), t.size)).collect()));
        side.packs = Some(Packs::of(p));
        side
    }

    fn has_temps(&self) -> bool {
        self.temps.as_ref().is_some_and(|t| !t.files.is_empty())
    }

    fn has_packs(&self) -> bool {
        self.packs
            .as_ref()
            .is_some_and(|p| !p.deleted.is_empty() || !p.repacked.is_empty() || !p.stale_locks.is_empty())
    }

    /// Whether deleting would change nothing here.
    fn is_empty(&self) -> bool {
        self.count == 0 && !self.has_temps() && !self.has_packs()
    }
}

/// Temp files of killed processes under the cache's (or a remote's) `tmp/`.
#[derive(Debug, Default, Serialize)]
pub struct Temps {
    pub files: Vec<PathBuf>,
    pub bytes: u64,
}

impl Temps {
    fn new(mut found: Vec<(PathBuf, u64)>) -> Temps {
        found.sort();
        Temps {
            bytes: found.iter().map(|(_, s)| s).sum(),
            files: found.into_iter().map(|(p, _)| p).collect(),
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Plan {
    /// Distinct objects the scope uses (whether or not they are present anywhere).
    pub referenced: u64,
    /// Folders (manifest ids) the scope uses whose manifest is not in the cache (nor on
    /// the remote) or is unreadable: their files are unknown, so no file object is deleted.
    pub unknown_manifests: Vec<String>,
    pub cache: Side,
    pub remote: Option<Side>,
    pub temps: Temps,
    /// Objects whose deletion failed, with the error (after [`execute`]).
    pub failed: Vec<(String, String)>,
    /// What the scope keeps, to plan a prune again under its lock.
    #[serde(skip)]
    keep: HashSet<ObjectKey>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.cache.count == 0
            && self.remote.as_ref().is_none_or(Side::is_empty)
            && self.temps.files.is_empty()
    }
}

/// Whether `k` may go: nothing keeps it, and it is a manifest or every kept folder's
/// files are known (with a folder's files unknown, any file object may be one of them).
fn deletable(keep: &HashSet<ObjectKey>, unknown: &[String], k: &ObjectKey) -> bool {
    !keep.contains(k) && (k.is_manifest() || unknown.is_empty())
}

/// Connect to `remote` and read its layout. `None`: the remote's folder exists but nothing
/// was pushed to it yet (no objects).
fn connect(remote: &dyn Remote) -> Result<Option<(Box<dyn Backend>, u64)>> {
    let mut conn = remote.connect()?;
    match crate::remote::read_layout(conn.as_mut())? {
        Some(text) => Ok(Some((conn, crate::remote::check_layout(remote.name(), &text)?))),
        None if conn.root_exists()? => Ok(None),
        None => Err(Error::remote(
            remote.name(),
            crate::error::RemoteFailure::NotFound,
            format!("{} does not exist; check the URL, or push to it first", remote.url()),
        )),
    }
}

/// The roots a scope uses: (id, kind), each once.
fn roots(repo: &Repo, cwd: &Path, scope: &Scope) -> Result<Vec<(ObjectId, Kind)>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut push = |id: ObjectId, kind: Kind| {
        if seen.insert((id, kind == Kind::Dir)) {
            out.push((id, kind));
        }
    };
    for a in history::tracked_in_scope(repo, cwd, &[], scope)? {
        push(a.tracked.pointer.hash, a.tracked.pointer.kind);
    }
    // Experiment artifacts live only in the cache (and on remotes): always kept; so does
    // the data a dirty record stored from the workspace, and every registered model version.
    if let Ok(git) = repo.git() {
        for (_, pointer) in crate::model::objects(&git)? {
            push(pointer.hash, pointer.kind);
        }
        for record in crate::exp::store::list(&git)? {
            for a in &record.artifacts {
                push(a.hash, Kind::File);
            }
            if scope.all_commits || record.dirty {
                for d in &record.data {
                    push(d.hash, d.kind);
                }
            }
        }
    }
    Ok(out)
}

/// What would be deleted: objects in the cache (and on `remote`) that nothing in `scope`
/// uses, and stale temp files (the cache's, and the remote's). With a remote, manifests the cache lacks are first read
/// from it (verified, into the cache). Deletes nothing.
pub fn plan(
    repo: &Repo,
    cwd: &Path,
    scope: &Scope,
    remote: Option<&dyn Remote>,
    jobs: Option<usize>,
    reporter: &dyn Reporter,
) -> Result<Plan> {
    let roots = roots(repo, cwd, scope)?;
    let dirs: Vec<ObjectId> = roots.iter().filter(|(_, k)| *k == Kind::Dir).map(|(id, _)| *id).collect();
    if let Some(remote) = remote {
        let missing: Vec<ObjectId> = dirs.iter().filter(|id| !repo.cache.has_manifest(id)).copied().collect();
        if !missing.is_empty() {
            reporter.notice(&format!(
                "reading {} the cache lacks from remote {}",
                if missing.len() == 1 {
                    "1 manifest".to_string()
                } else {
                    format!("{} manifests", missing.len())
                },
                remote.name()
            ));
            // What cannot be had stays unknown below.
            crate::transfer::fetch_manifests(repo, remote, &missing, jobs)?;
        }
    }
    let mut keep: HashSet<ObjectKey> = HashSet::new();
    let mut unknown = Vec::new();
    for (id, kind) in &roots {
        match kind {
            Kind::File => {
                keep.insert(ObjectKey::file(*id));
            }
            Kind::Dir => {
                keep.insert(ObjectKey::manifest(*id));
                match repo.cache.read_manifest(id) {
                    Ok(m) => keep.extend(m.entries.iter().map(|e| ObjectKey::file(e.hash))),
                    Err(
                        Error::MissingObject { .. } | Error::CorruptObject { .. } | Error::Manifest { .. },
                    ) => unknown.push(format!("{id}.dir")),
                    Err(e) => return Err(e),
                }
            }
        }
    }
    unknown.sort();
    // With a folder's files unknown, any file object may be one of them.
    let deletable = |k: &ObjectKey| deletable(&keep, &unknown, k);

    let stored = repo.cache.list_objects()?;
    let doomed: Vec<Doomed> = stored
        .iter()
        .filter_map(|o| {
            let key = o.key;
            deletable(&key).then(|| Doomed {
                id: key.display(),
                path: crate::tracked::display_rel(&repo.root, &o.path),
                size: o.size,
                key,
            })
        })
        .collect();
    let cache = Side::new("cache".into(), doomed, stored.len() as u64);

    let remote = match remote {
        None => None,
        Some(remote) => {
            let (listed, temps) = match connect(remote)? {
                Some((conn, 2)) => {
                    let pool = Pool::new(remote, conn, jobs.unwrap_or_else(|| remote.default_jobs()));
                    let p = prune::plan(&pool, &deletable)?;
                    return Ok(finish_plan(
                        repo,
                        keep,
                        unknown,
                        cache,
                        Some(Side::of_prune(remote.name().into(), &p)),
                    ));
                }
                Some((mut conn, _)) => {
                    (layout1::list_all(conn.as_mut())?, crate::remote::list_temps(conn.as_mut())?)
                }
                None => (Vec::new(), Vec::new()),
            };
            let doomed = listed
                .iter()
                .filter(|(k, _)| deletable(k))
                .map(|(k, size)| Doomed { id: k.display(), path: k.rel_path(), size: *size, key: *k })
                .collect();
            let mut side = Side::new(remote.name().to_string(), doomed, listed.len() as u64);
            side.temps = Some(Temps::new(
                temps
                    .into_iter()
                    .filter(|t| t.is_stale())
                    .map(|t| (Path::new("tmp").join(t.name), t.size))
                    .collect(),
            ));
            Some(side)
        }
    };

    Ok(finish_plan(repo, keep, unknown, cache, remote))
}

fn finish_plan(
    repo: &Repo,
    keep: HashSet<ObjectKey>,
    unknown: Vec<String>,
    cache: Side,
    remote: Option<Side>,
) -> Plan {
    let temps = Temps::new(repo.cache.stale_temps());
    Plan {
        referenced: keep.len() as u64,
        unknown_manifests: unknown,
        cache,
        remote,
        temps,
        failed: Vec::new(),
        keep,
    }
}

/// Delete what `plan` lists: manifests before the files they list (so a store never has a
/// manifest whose files are gone), then stale temp files. Failures are recorded in
/// `plan.failed`; the caller must hold the repository lock since [`plan`] was made.
pub fn execute(
    repo: &Repo,
    plan: &mut Plan,
    remote: Option<&dyn Remote>,
    jobs: Option<usize>,
    reporter: &dyn Reporter,
) -> Result<()> {
    // A layout-2 remote is locked before anything goes, so a refused prune deletes nothing.
    let locked = match (plan.remote.as_ref().filter(|s| s.packs.is_some() && !s.is_empty()), remote) {
        (Some(_), Some(remote)) => match connect(remote)? {
            Some((first, 2)) => {
                let pool = Pool::new(remote, first, jobs.unwrap_or_else(|| remote.default_jobs()));
                let lock = prune::lock(&pool)?;
                Some((pool, lock))
            }
            _ => None,
        },
        _ => None,
    };
    let mut failed = Vec::new();
    reporter.start("deleting", plan.cache.count, plan.cache.bytes);
    for manifests in [true, false] {
        let errors: Vec<(String, String)> = plan
            .cache
            .objects
            .par_iter()
            .filter(|d| d.key.is_manifest() == manifests)
            .filter_map(|d| {
                let r = repo.cache.delete_object(&d.key);
                reporter.advance(1, d.size);
                r.err().map(|e| (d.id.clone(), e.to_string()))
            })
            .collect();
        failed.extend(errors);
    }
    reporter.finish();
    if let Some((pool, lock)) = locked {
        let side = prune_remote(&pool, lock, plan, reporter, &mut failed)?;
        plan.remote = Some(side);
    } else if let (Some(side), Some(remote)) = (plan.remote.as_ref().filter(|s| !s.is_empty()), remote) {
        // A remote whose layout file went away since the plan holds nothing to delete.
        let Some((first, _)) = connect(remote)? else {
            plan.failed = failed;
            return Ok(());
        };
        let pool = Pool::new(remote, first, jobs.unwrap_or_else(|| remote.default_jobs()));
        reporter.start("deleting", side.count, side.bytes);
        for manifests in [true, false] {
            let batch: Vec<&Doomed> =
                side.objects.iter().filter(|d| d.key.is_manifest() == manifests).collect();
            let done = pool.run(&batch, |c, d| {
                layout1::delete(c, &d.key)?;
                reporter.advance(1, d.size);
                Ok(())
            })?;
            for (d, r) in batch.iter().zip(done) {
                if let Err(e) = r {
                    failed.push((format!("{}:{}", side.name, d.id), e.to_string()));
                }
            }
        }
        reporter.finish();
        // Upload temps of killed pushes.
        let temps: Vec<&PathBuf> = side.temps.iter().flat_map(|t| &t.files).collect();
        let done = pool.run(&temps, |c, rel| {
            let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            crate::remote::delete_temp(c, name)
        })?;
        for (rel, r) in temps.iter().zip(done) {
            if let Err(e) = r {
                failed.push((format!("{}:{}", side.name, rel.display()), e.to_string()));
            }
        }
    }
    for f in &plan.temps.files {
        if let Err(e) = std::fs::remove_file(f)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            failed.push((f.display().to_string(), e.to_string()));
        }
    }
    plan.failed = failed;
    Ok(())
}

/// Prune a layout-2 remote under its exclusive `lock` (released here): plan again there
/// (what was shown may be out of date), then carry it out. Returns the side as done.
fn prune_remote(
    pool: &Pool,
    lock: crate::store::locks::Lock,
    plan: &Plan,
    reporter: &dyn Reporter,
    failed: &mut Vec<(String, String)>,
) -> Result<Side> {
    let result = (|| {
        let p = prune::plan(pool, &|k| deletable(&plan.keep, &plan.unknown_manifests, k))?;
        let done = prune::execute(pool, &p, &lock, reporter)?;
        Ok((p, done))
    })();
    // Released even after a failure (a kill leaves it to go stale, or to be recovered here).
    if let Ok(mut c) = pool.fresh_connection() {
        let _ = lock.release(c.as_mut());
    }
    let (p, done) = result?;
    let name = pool.remote_name().to_string();
    let mut side = Side::of_prune(name.clone(), &p);
    if let Some(packs) = side.packs.as_mut() {
        packs.written = done.packs_written.len() as u64;
        // A pack a killed run uploaded and this one wrote again is not deleted.
        let written: Vec<String> = done.packs_written.iter().map(crate::store::layout2::pack_path).collect();
        packs.deleted.retain(|p| !written.contains(p));
        let kept: u64 =
            p.delete.iter().filter(|(id, _)| done.packs_written.contains(id)).map(|(_, s)| s).sum();
        packs.bytes_freed -= kept;
        // Taking the lock removed the stale ones the first plan saw.
        if let Some(seen) = plan.remote.as_ref().and_then(|r| r.packs.as_ref()) {
            packs.stale_locks.clone_from(&seen.stale_locks);
        }
    }
    failed.extend(done.failed.into_iter().map(|(path, e)| (format!("{name}:{path}"), e)));
    Ok(side)
}
