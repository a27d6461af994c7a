//! Another trove repository, known by its git URL: the source of `trove get --repo`,
//! `trove import` and `trove update` (a "data registry"), and of the model registry's
//! `model get --repo`.
//!
//! [`Upstream::open`] keeps a bare mirror of the repository's git objects (its branches,
//! tags and `refs/trove/*`, never its data) in a per-user cache folder,
//! `$XDG_CACHE_HOME/trove/repos/<blake3 of the URL>` (else `~/.cache/trove/repos/…`),
//! fetched again each time it is opened. A lock file beside the mirror makes two
//! processes opening the same URL take turns.
//!
//! From the mirror, a revision resolves to a commit ([`Upstream::resolve`]), whose
//! pointers ([`Upstream::pointers`], [`Upstream::find`]) and files
//! ([`Upstream::read_file`]) can be read. [`Upstream::fetch_objects`] downloads a
//! pointer's objects from the source's default data remote, as that commit's
//! `.trove/config` names it, into a cache, each object verified as `trove fetch` does.
//! What the remote needs from this machine (passwords, keys, `known_hosts`) comes from
//! the environment and, inside a trove repository, from its `config.local`, as it does
//! for the repository's own remotes. [`place`] then writes an object out.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cache::Cache;
use crate::config::Config;
use crate::error::{Error, IoContext, Result};
use crate::history;
use crate::pointer::{Kind, Pointer};
use crate::progress::Reporter;
use crate::repo::{Repo, TROVE_DIR};
use crate::tracked::Tracked;
use crate::transfer::{self, Report};
use crate::workspace::{self, CheckedOut};

/// The refs a mirror keeps, as the source has them.
const REFSPECS: [&str; 3] =
    ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", "+refs/trove/*:refs/trove/*"];

/// A source repository, through its local mirror.
pub struct Upstream {
    url: String,
    git: git2::Repository,
    mirror: PathBuf,
    /// The source's folder, when its URL is a local path or `file://` URL.
    folder: Option<PathBuf>,
}

/// A tracked item of a source repository at one commit.
#[derive(Debug, Clone)]
pub struct Found {
    /// The pointer file's path, relative to the source's top folder.
    pub pointer_rel: PathBuf,
    /// The data's path, relative to the source's top folder (`/`-separated).
    pub path: String,
    pub pointer: Pointer,
}

/// How long a process waits for another one that updates the same mirror: long enough
/// for a first fetch of a large repository.
const MIRROR_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// The URL a source is known by: a local path becomes absolute (so the same folder is one
/// mirror from anywhere, and a pointer's `source.repo` works from any folder); URLs
/// (`file://`, `ssh://`, `https://`, `user@host:path`) stay as given.
pub fn canonical_url(given: &str, cwd: &Path) -> Result<String> {
    if crate::redact::url(given) != given {
        return Err(Error::Usage(format!(
            "repository URL `{}`: passwords do not belong in URLs (a pointer would record it); use a git credential helper or ssh-agent",
            crate::redact::url(given)
        )));
    }
    if given.contains("://") || is_scp_like(given) {
        return Ok(given.trim_end_matches('/').to_string());
    }
    let abs = crate::tracked::normalize(cwd, Path::new(given));
    let real = fs::canonicalize(&abs)
        .map_err(|_| Error::path(&abs, "no such git repository (the folder does not exist)"))?;
    real.to_str().map(str::to_string).ok_or_else(|| Error::NonUtf8Path { path: real.clone() })
}

/// `user@host:path` or `host:path`, as git and ssh read it (a colon before any slash).
fn is_scp_like(url: &str) -> bool {
    match (url.find(':'), url.find('/')) {
        (Some(colon), slash) => colon > 1 && slash.is_none_or(|s| colon < s),
        _ => false,
    }
}

/// The folder of the mirrors: `$XDG_CACHE_HOME/trove/repos`, else `~/.cache/trove/repos`.
pub fn mirrors_dir() -> Result<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base =
        env("XDG_CACHE_HOME").filter(|p| p.is_absolute()).or_else(|| env("HOME").map(|h| h.join(".cache")));
    base.map(|b| b.join("trove").join("repos")).ok_or_else(|| {
        Error::Usage(
            "neither XDG_CACHE_HOME nor HOME is set: trove has nowhere to keep other repositories".into(),
        )
    })
}

impl Upstream {
    /// Open the repository at `url` (a path, relative to `cwd`, or a `file://`, `ssh://`
    /// or `https://` URL): fetch its branches, tags and `refs/trove/*` into this user's
    /// mirror of it, creating the mirror the first time. An unreachable URL, or one that
    /// is not a git repository, is an error naming it.
    pub fn open(url: &str, cwd: &Path) -> Result<Upstream> {
        let url = canonical_url(url, cwd)?;
        let folder = match url.strip_prefix("file://") {
            Some(p) => Some(PathBuf::from(p)),
            None if url.starts_with('/') => Some(PathBuf::from(&url)),
            None => None,
        };
        if let Some(f) = &folder
            && !f.is_dir()
        {
            return Err(Error::path(f, "no such git repository (the folder does not exist)"));
        }
        let dir = mirrors_dir()?;
        fs::create_dir_all(&dir).at(&dir)?;
        let name = blake3::hash(url.as_bytes()).to_hex().to_string();
        let mirror = dir.join(&name);
        let lock_path = dir.join(format!("{name}.lock"));
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .at(&lock_path)?;
        // Held while the mirror is made or fetched; released when `lock` is dropped (or its
        // process dies). A process that holds it for ever (hung) is reported, not waited on.
        let started = std::time::Instant::now();
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if started.elapsed() < MIRROR_LOCK_WAIT => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(Error::path(
                        &lock_path,
                        format!(
                            "another trove process has been updating the mirror of {url} for {} s; stop it, or try again when it is done",
                            MIRROR_LOCK_WAIT.as_secs()
                        ),
                    ));
                }
                Err(fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
            }
        }
        let git = match git2::Repository::open_bare(&mirror) {
            Ok(g) => g,
            Err(_) => {
                // None yet, or one a killed process left half made.
                if mirror.exists() {
                    fs::remove_dir_all(&mirror).at(&mirror)?;
                }
                git2::Repository::init_bare(&mirror).map_err(|e| Error::git(&mirror, e))?
            }
        };
        let upstream = Upstream { url, git, mirror, folder };
        upstream.fetch()?;
        drop(lock);
        Ok(upstream)
    }

    /// Bring the mirror up to date with the source, and its HEAD to the source's.
    fn fetch(&self) -> Result<()> {
        if self.url.starts_with("https://") {
            crate::git::load_certificates();
        }
        let unreachable = |e: git2::Error| {
            Error::path(&self.url, format!("cannot fetch from this git repository: {}", e.message()))
        };
        let mut remote = self.git.remote_anonymous(&self.url).map_err(unreachable)?;
        let mut opts = git2::FetchOptions::new();
        opts.remote_callbacks(crate::exp::share::callbacks(git2::Config::open_default().ok()));
        opts.prune(git2::FetchPrune::On);
        opts.download_tags(git2::AutotagOption::None);
        remote.fetch(&REFSPECS, Some(&mut opts), None).map_err(unreachable)?;
        // The remote's default branch, as `git clone` would check it out.
        if let Ok(head) = remote.default_branch()
            && let Ok(head) = head.as_str()
        {
            let _ = self.git.set_head(head);
        }
        Ok(())
    }

    /// The URL as [`canonical_url`] made it: what `source.repo` records.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The mirror: a bare git repository holding the source's refs (`refs/heads/*`,
    /// `refs/tags/*`, `refs/trove/*`, HEAD) and objects, for reading blobs, tags and refs.
    pub fn git(&self) -> &git2::Repository {
        &self.git
    }

    /// The source's own folder, when its URL is a local path or `file://` URL.
    pub fn folder(&self) -> Option<&Path> {
        self.folder.as_deref()
    }

    /// A revision (a branch, tag, SHA, `main~2`; None: the source's default branch) to
    /// its commit.
    pub fn resolve(&self, rev: Option<&str>) -> Result<git2::Oid> {
        let rev = rev.unwrap_or("HEAD");
        let obj = self.git.revparse_single(rev).map_err(|e| {
            Error::path(&self.url, format!("unknown revision `{rev}` in this repository: {}", e.message()))
        })?;
        obj.peel_to_commit()
            .map(|c| c.id())
            .map_err(|e| Error::path(&self.url, format!("revision `{rev}` is not a commit: {}", e.message())))
    }

    /// Every pointer in the commit's tree, with its path relative to the top.
    pub fn pointers(&self, commit: git2::Oid) -> Result<Vec<Found>> {
        Ok(history::pointers_in_commit(&self.git, commit, None)?
            .into_iter()
            .map(|(pointer_rel, pointer)| {
                let data = pointer_rel.with_file_name(&pointer.path);
                Found { path: data.to_string_lossy().into_owned(), pointer_rel, pointer }
            })
            .collect())
    }

    /// The tracked item at `path` (its data path or pointer path, relative to the top of
    /// the source) in the commit; the error lists what is tracked there.
    pub fn find(&self, commit: git2::Oid, path: &str) -> Result<Found> {
        let want = path.trim_start_matches("./").trim_end_matches('/');
        let all = self.pointers(commit)?;
        if let Some(f) = all.iter().find(|f| f.path == want || f.pointer_rel.to_str() == Some(want)) {
            return Ok(f.clone());
        }
        let listed: Vec<&str> = all.iter().map(|f| f.path.as_str()).collect();
        Err(Error::path(
            format!("{}:{want}", self.url),
            format!(
                "is not tracked by trove at commit {}; {}",
                history::short_id(commit),
                match listed.as_slice() {
                    [] => "nothing is tracked there".to_string(),
                    some => format!("tracked there: {}", some.join(", ")),
                }
            ),
        ))
    }

    /// A file of the commit's tree (`/`-separated path from the top), None when absent.
    pub fn read_file(&self, commit: git2::Oid, path: &str) -> Result<Option<Vec<u8>>> {
        let shown = || PathBuf::from(format!("{}@{}:{path}", self.url, history::short_id(commit)));
        let tree = self.git.find_commit(commit).and_then(|c| c.tree()).map_err(|e| Error::git(shown(), e))?;
        let entry = match tree.get_path(Path::new(path)) {
            Ok(e) => e,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(Error::git(shown(), e)),
        };
        match entry.to_object(&self.git).ok().and_then(|o| o.into_blob().ok()) {
            Some(blob) => Ok(Some(blob.content().to_vec())),
            None => Ok(None),
        }
    }

    /// The tags of the source, sorted by name.
    pub fn tags(&self) -> Result<Vec<String>> {
        let names = self.git.tag_names(None).map_err(|e| Error::git(&self.mirror, e))?;
        let mut out: Vec<String> = names.iter().flatten().flatten().map(str::to_string).collect();
        out.sort();
        Ok(out)
    }

    /// A repository value for the source at `commit`, for the remote and transfer code:
    /// its settings are the commit's `.trove/config` with `local`'s `config.local` over
    /// them (or nothing, outside a repository), its cache is `cache`. Returns it with the
    /// name of the source's default remote. A relative folder remote is made absolute
    /// against the source's folder, and is an error for a source that has none here.
    pub fn data_repo(
        &self,
        commit: git2::Oid,
        cache: &Cache,
        local: Option<&Repo>,
    ) -> Result<(Repo, String)> {
        let shown = format!("{}@{}:{TROVE_DIR}/config", self.url, history::short_id(commit));
        let bytes = self.read_file(commit, &format!("{TROVE_DIR}/config"))?.ok_or_else(|| {
            Error::path(
                &self.url,
                format!(
                    "is not a trove repository at commit {} (no .trove/config)",
                    history::short_id(commit)
                ),
            )
        })?;
        let text = String::from_utf8(bytes).map_err(|_| Error::path(&shown, "is not UTF-8"))?;
        let mut shared = crate::config::parse_mapping(Path::new(&shown), &text)?;
        let plain = Config::from_texts(Path::new(&shown), &text, "")?;
        let name = plain.get("core.remote").map(crate::config::show).ok_or_else(|| {
            Error::path(
                &self.url,
                "has no default data remote (core.remote) in its .trove/config; its maintainers set one with `trove remote add NAME URL --default`",
            )
        })?;
        let url = plain
            .remote_value(&name, "url")
            .ok_or_else(|| Error::path(&shown, format!("names default remote `{name}`, which has no url")))?;
        let relative = !url.contains("://") && !url.starts_with('/');
        if relative {
            let Some(folder) = &self.folder else {
                return Err(Error::path(
                    &shown,
                    format!(
                        "remote `{name}` is the relative folder `{url}`, which means nothing outside the source's own folder; the source needs a remote every user can reach"
                    ),
                ));
            };
            let abs = crate::tracked::normalize(folder, Path::new(&url));
            set_url(&mut shared, &name, &abs.to_string_lossy());
        }
        let shared_text = serde_yaml::to_string(&shared).expect("mapping serialises");
        let (root, trove_dir, local_text) = match local {
            Some(repo) => {
                let path = repo.trove_dir.join("config.local");
                let text = match fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                    Err(e) => return Err(Error::io(&path, e)),
                };
                (repo.root.clone(), repo.trove_dir.clone(), text)
            }
            None => (self.mirror.clone(), self.mirror.join("trove"), String::new()),
        };
        let config = Config::from_texts(&trove_dir, &shared_text, &local_text)?;
        Ok((Repo { root, trove_dir, config, cache: cache.clone() }, name))
    }

    /// Download what `pointers` (of the source at `commit`) need and `cache` lacks, from
    /// the source's default data remote; every object is re-hashed before it enters the
    /// cache. `local` is the repository the command runs in, if any (its `config.local`
    /// supplies this machine's settings for that remote). An incomplete fetch is an
    /// error naming the source, its remote and the objects; what did arrive stays in the
    /// cache.
    pub fn fetch_objects(
        &self,
        commit: git2::Oid,
        pointers: &[Pointer],
        cache: &Cache,
        local: Option<&Repo>,
        jobs: Option<usize>,
        reporter: &dyn Reporter,
    ) -> Result<Report> {
        let (repo, name) = self.data_repo(commit, cache, local)?;
        let targets: Vec<Tracked> = pointers
            .iter()
            .map(|p| Tracked { pointer_path: PathBuf::new(), data_path: PathBuf::new(), pointer: p.clone() })
            .collect();
        let remote_name = format!("{name} of {}", self.url);
        let named = |e: Error| match e {
            Error::Remote { kind, message, .. } => Error::remote(remote_name.clone(), kind, message),
            other => other,
        };
        let all_here = targets.iter().all(|t| workspace::in_cache(&repo, &t.pointer));
        if all_here {
            return Ok(Report { remote: remote_name, ..Report::default() });
        }
        let remote = crate::remote::open(&repo, Some(&name)).map_err(named)?;
        let mut report = transfer::fetch(&repo, remote.as_ref(), &targets, jobs, reporter).map_err(named)?;
        report.remote = remote_name.clone();
        if !report.ok() {
            let (kind, text) = report.shortfall();
            return Err(Error::remote(remote_name, kind, text));
        }
        Ok(report)
    }
}

/// Set `remote.NAME.url` in a config mapping.
fn set_url(map: &mut serde_yaml::Mapping, name: &str, url: &str) {
    use serde_yaml::Value;
    let remotes = map.entry(Value::from("remote")).or_insert_with(|| Value::Mapping(Default::default()));
    if let Some(remotes) = remotes.as_mapping_mut()
        && let Some(remote) = remotes.get_mut(name).and_then(Value::as_mapping_mut)
    {
        remote.insert(Value::from("url"), Value::from(url));
    }
}

/// A repository value over a scratch folder `dir` (its cache under `dir/cache`, default
/// settings), for a command that runs outside any trove repository: what
/// [`Upstream::fetch_objects`] fills and [`place`] reads.
pub fn scratch_repo(dir: &Path) -> Result<Repo> {
    let trove_dir = dir.join(TROVE_DIR);
    fs::create_dir_all(&trove_dir).at(&trove_dir)?;
    let config = Config::from_texts(&trove_dir, "", "")?;
    Ok(Repo {
        root: dir.to_path_buf(),
        trove_dir: trove_dir.clone(),
        config,
        cache: Cache::new(trove_dir.join("cache")),
    })
}

/// Write the data `pointer` names, which `repo`'s cache must hold, at `out` (a file or a
/// folder), with `repo`'s `cache.link` setting, as checkout does, making its folders. `out` must not exist;
/// the data is written beside it under a temporary name and renamed into place, so a
/// failure leaves nothing at `out`.
pub fn place(repo: &Repo, pointer: &Pointer, out: &Path, reporter: &dyn Reporter) -> Result<CheckedOut> {
    if fs::symlink_metadata(out).is_ok() {
        return Err(Error::path(out, "already exists; choose another place with -o"));
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // As `-o models/new/model.pkl` asks: its folders are made.
    fs::create_dir_all(parent).at(parent)?;
    let name = out.file_name().ok_or_else(|| Error::path(out, "names no file"))?;
    let temp = parent.join(format!(".{}.trove-tmp-{}", name.to_string_lossy(), std::process::id()));
    let _ = fs::remove_dir_all(&temp).or_else(|_| fs::remove_file(&temp));
    let t = Tracked { pointer_path: PathBuf::new(), data_path: temp.clone(), pointer: pointer.clone() };
    let cleanup = |temp: &Path| {
        let _ = fs::remove_dir_all(temp).or_else(|_| fs::remove_file(temp));
    };
    let mut done = match workspace::materialize(repo, &t, reporter) {
        Ok(d) => d,
        Err(e) => {
            cleanup(&temp);
            return Err(e);
        }
    };
    let moved = match pointer.kind {
        // A hard link fails when `out` appeared meanwhile: nothing is replaced.
        Kind::File => fs::hard_link(&temp, out).map(|_| cleanup(&temp)),
        Kind::Dir if fs::symlink_metadata(out).is_ok() => {
            Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already exists"))
        }
        Kind::Dir => fs::rename(&temp, out),
    };
    if let Err(e) = moved {
        cleanup(&temp);
        return Err(Error::io(out, e));
    }
    done.path = out.to_string_lossy().into_owned();
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_kept_and_paths_made_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let real = fs::canonicalize(dir.path()).unwrap();
        fs::create_dir(real.join("reg")).unwrap();
        assert_eq!(canonical_url("reg", &real).unwrap(), real.join("reg").to_str().unwrap());
        assert_eq!(canonical_url("./reg/", &real).unwrap(), real.join("reg").to_str().unwrap());
        assert!(canonical_url("nowhere", &real).is_err());
        for url in
            ["file:///srv/reg", "ssh://git@host/reg.git", "https://host/reg.git", "git@host:team/reg.git"]
        {
            assert_eq!(canonical_url(url, &real).unwrap(), url);
        }
        assert!(!is_scp_like("./a:b"));
        let err = canonical_url("https://ann:hunter2@host/reg.git", &real).unwrap_err().to_string();
        assert!(!err.contains("hunter2") && err.contains("passwords do not belong"), "{err}");
        assert!(!is_scp_like("C"));
    }
}
