//! `trove gc`: delete the objects that nothing in a scope uses, from the cache and
//! optionally from a remote.
//!
//! What is kept: every object the scope's pointers name (file contents and folder
//! manifests) and every file a kept manifest lists, plus the artifacts of every
//! experiment record (and, with all commits, the data records name). A folder whose
//! manifest cannot be read leaves its files unknown: then no file object is deleted at
//! all. Planning and deleting are separate steps, so the caller can show the plan and ask
//! before anything goes.

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
use crate::remote::{ObjectKey, Remote};
use crate::repo::Repo;
use crate::store::layout1;
use crate::verify::connect_checked;

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
        }
    }

    fn has_temps(&self) -> bool {
        self.temps.as_ref().is_some_and(|t| !t.files.is_empty())
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
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.cache.count == 0
            && self.remote.as_ref().is_none_or(|r| r.count == 0 && !r.has_temps())
            && self.temps.files.is_empty()
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
    // the data a dirty record stored from the workspace.
    if let Ok(git) = repo.git() {
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
    let deletable = |k: &ObjectKey| !keep.contains(k) && (k.is_manifest() || unknown.is_empty());

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
            let (listed, temps) = match connect_checked(remote)? {
                Some(mut conn) => {
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

    let temps = Temps::new(repo.cache.stale_temps());
    Ok(Plan {
        referenced: keep.len() as u64,
        unknown_manifests: unknown,
        cache,
        remote,
        temps,
        failed: Vec::new(),
    })
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
    if let (Some(side), Some(remote)) =
        (plan.remote.as_ref().filter(|s| s.count > 0 || s.has_temps()), remote)
    {
        // A remote whose layout file went away since the plan holds nothing to delete.
        let Some(first) = connect_checked(remote)? else {
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
