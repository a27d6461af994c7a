//! Finding, creating and opening a trove repository; the writers' lock.

use std::fs;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cache::Cache;
use crate::config::Config;
use crate::error::{Error, IoContext, Result};
use crate::progress::Reporter;
use crate::state::StateDb;

pub const TROVE_DIR: &str = ".trove";
const GITIGNORE: &str = "/config.local\n/cache/\n/state/\n/tmp/\n";
const CONFIG_HEADER: &str =
    "# trove settings, committed with the code; machine-specific ones go in config.local\n";

pub struct Repo {
    /// The git work tree's top folder, which holds `.trove/`.
    pub root: PathBuf,
    pub trove_dir: PathBuf,
    pub config: Config,
    pub cache: Cache,
}

#[derive(Debug, serde::Serialize)]
pub struct InitReport {
    pub root: PathBuf,
    pub created_git: bool,
    pub already: bool,
}

impl Repo {
    /// Create `.trove/` at the top of the git work tree containing `start`,
    /// running `git init` there first when there is none.
    pub fn init(start: &Path) -> Result<InitReport> {
        let (git, created_git) = match git2::Repository::discover(start) {
            Ok(r) => (r, false),
            Err(_) => (git2::Repository::init(start).map_err(|e| Error::git(start, e))?, true),
        };
        let root = git
            .workdir()
            .ok_or_else(|| Error::path(start, "a bare git repository has no work tree for data"))?
            .to_path_buf();
        let root = fs::canonicalize(&root).at(&root)?;
        let trove_dir = root.join(TROVE_DIR);
        let already = trove_dir.join("config").is_file();
        for d in ["cache", "state", "tmp"] {
            let p = trove_dir.join(d);
            fs::create_dir_all(&p).at(&p)?;
        }
        if !already {
            crate::atomic_file::write(&trove_dir.join("config"), CONFIG_HEADER.as_bytes())?;
        }
        let gi = trove_dir.join(".gitignore");
        if !gi.is_file() {
            crate::atomic_file::write(&gi, GITIGNORE.as_bytes())?;
        }
        let repo = Repo::open(&root)?;
        repo.cache.ensure()?;
        Ok(InitReport { root, created_git, already })
    }

    /// Open the repository whose `.trove/` is at or above `start`.
    pub fn open(start: &Path) -> Result<Repo> {
        let start = fs::canonicalize(start).at(start)?;
        let root = start
            .ancestors()
            .find(|d| d.join(TROVE_DIR).join("config").is_file())
            .ok_or_else(|| {
                if git2::Repository::discover(&start).is_err() {
                    Error::NotGitRepo(start.clone())
                } else {
                    Error::NotInitialised(start.clone())
                }
            })?
            .to_path_buf();
        let trove_dir = root.join(TROVE_DIR);
        let config = Config::load(&trove_dir)?;
        let cache_root = match config.cache_dir()? {
            Some(dir) if dir.is_absolute() => dir,
            Some(dir) => root.join(dir),
            None => trove_dir.join("cache"),
        };
        Ok(Repo { root, trove_dir, config, cache: Cache::new(cache_root) })
    }

    pub fn git(&self) -> Result<git2::Repository> {
        git2::Repository::open(&self.root).map_err(|_| Error::NotGitRepo(self.root.clone()))
    }

    pub fn state(&self) -> StateDb {
        let dir = self.trove_dir.join("state");
        if fs::create_dir_all(&dir).is_err() {
            return StateDb::disabled();
        }
        StateDb::open(&dir)
    }

    /// Take the writers' lock, waiting up to `core.lock_timeout` seconds.
    pub fn lock(&self, reporter: &dyn Reporter) -> Result<RepoLock> {
        let timeout = Duration::from_secs(self.config.lock_timeout_secs()?);
        let dir = self.trove_dir.join("tmp");
        fs::create_dir_all(&dir).at(&dir)?;
        let path = dir.join("lock");
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at(&path)?;
        let started = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) => {
                    let holder = read_holder(&mut file);
                    if started.elapsed() >= timeout {
                        return Err(Error::Locked { holder, waited_secs: timeout.as_secs() });
                    }
                    if !told {
                        reporter.notice(&format!(
                            "waiting for the repository lock held by {holder} (up to {} s)",
                            timeout.as_secs()
                        ));
                        told = true;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
        file.set_len(0).at(&path)?;
        file.rewind().at(&path)?;
        let _ = write!(file, "pid {}", std::process::id());
        // Temp files of killed writers of config files are debris git would see.
        crate::link::remove_stale_temps(&self.trove_dir);
        Ok(RepoLock { _file: file })
    }
}

fn read_holder(file: &mut fs::File) -> String {
    let mut s = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut s);
    let s = s.trim();
    if s.is_empty() { "another process".into() } else { s.to_string() }
}

/// Held while a command writes; released when dropped (or when the process dies).
pub struct RepoLock {
    _file: fs::File,
}
