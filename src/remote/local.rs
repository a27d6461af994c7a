//! A folder remote: a directory on this machine (or a mounted share).

use std::fs;
use std::io::Read;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Connection, LAYOUT_FILE, LAYOUT_TEXT, ObjectKey, Remote, Temp};
use crate::error::{Error, IoContext, Result};

pub struct FolderRemote {
    name: String,
    url: String,
    root: PathBuf,
    jobs: Option<usize>,
}

impl FolderRemote {
    pub fn new(settings: &super::Settings, root: PathBuf) -> Self {
        FolderRemote { name: settings.name.clone(), url: settings.url.clone(), root, jobs: settings.jobs }
    }
}

impl Remote for FolderRemote {
    fn name(&self) -> &str {
        &self.name
    }

    fn url(&self) -> &str {
        &self.url
    }

    fn connect(&self) -> Result<Box<dyn Connection>> {
        Ok(Box::new(FolderConnection { name: self.name.clone(), root: self.root.clone() }))
    }

    fn default_jobs(&self) -> usize {
        self.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8))
    }
}

struct FolderConnection {
    name: String,
    root: PathBuf,
}

impl FolderConnection {
    fn err(&self, path: &Path, e: std::io::Error) -> Error {
        Error::Remote { remote: self.name.clone(), message: format!("{}: {e}", path.display()) }
    }
}

impl Connection for FolderConnection {
    fn read_layout(&mut self) -> Result<Option<String>> {
        let path = self.root.join(LAYOUT_FILE);
        match fs::read_to_string(&path) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(&path, e)),
        }
    }

    fn root_exists(&mut self) -> Result<bool> {
        Ok(self.root.is_dir())
    }

    fn init_layout(&mut self) -> Result<()> {
        if !self.root.is_dir() {
            let parent = self.root.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("/"));
            let message = if parent.is_dir() {
                match fs::create_dir(&self.root) {
                    Ok(()) => None,
                    // Another push created it a moment ago.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && self.root.is_dir() => None,
                    Err(e) => Some(format!("cannot create folder {}: {e}", self.root.display())),
                }
            } else {
                Some(format!(
                    "{} does not exist (its parent folder {} does not exist); check the URL",
                    self.root.display(),
                    parent.display()
                ))
            };
            if let Some(message) = message {
                return Err(Error::Remote { remote: self.name.clone(), message });
            }
        }
        for d in ["objects", "tmp"] {
            let p = self.root.join(d);
            fs::create_dir_all(&p).map_err(|e| self.err(&p, e))?;
        }
        let layout = self.root.join(LAYOUT_FILE);
        crate::atomic_file::write(&layout, LAYOUT_TEXT.as_bytes())
    }

    fn list_prefix(&mut self, prefix: &str) -> Result<Vec<String>> {
        let dir = self.root.join("objects").join(prefix);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err(&dir, e)),
        };
        let mut names = Vec::new();
        for e in entries {
            let e = e.map_err(|e| self.err(&dir, e))?;
            if let Some(n) = e.file_name().to_str() {
                names.push(n.to_string());
            }
        }
        Ok(names)
    }

    fn exists(&mut self, key: &ObjectKey) -> Result<bool> {
        Ok(self.root.join(key.rel_path()).is_file())
    }

    fn clean_temps(&mut self) -> Result<()> {
        for t in self.list_temps()? {
            if t.is_own() || t.is_stale() {
                let _ = self.delete_temp(&t.name);
            }
        }
        Ok(())
    }

    fn list_temps(&mut self) -> Result<Vec<Temp>> {
        let dir = self.root.join("tmp");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err(&dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let (Ok(meta), Some(name)) = (entry.metadata(), entry.file_name().to_str().map(str::to_string))
            else {
                continue;
            };
            if meta.is_file() {
                let age = meta.modified().ok().and_then(|t| t.elapsed().ok());
                out.push(Temp { name, size: meta.len(), age });
            }
        }
        Ok(out)
    }

    fn delete_temp(&mut self, name: &str) -> Result<()> {
        let path = self.root.join("tmp").join(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.err(&path, e)),
            _ => Ok(()),
        }
    }

    fn upload(&mut self, key: &ObjectKey, local: &Path) -> Result<()> {
        let temp = self.root.join("tmp").join(super::temp_name());
        let dest = self.root.join(key.rel_path());
        let result = (|| {
            crate::link::copy_new(local, &temp, 0o444).map_err(|e| self.err(&dest, e))?;
            let parent = dest.parent().expect("object path has a folder");
            if let Err(e) = fs::rename(&temp, &dest) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(self.err(&dest, e));
                }
                fs::create_dir_all(parent).map_err(|e| self.err(parent, e))?;
                fs::rename(&temp, &dest).map_err(|e| self.err(&dest, e))?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    fn download(&mut self, key: &ObjectKey, size: Option<u64>, out: &mut dyn Write) -> Result<u64> {
        let path = self.root.join(key.rel_path());
        let f = fs::File::open(&path).map_err(|e| self.err(&path, e))?;
        // As over SFTP: the expected bytes only (their hash is checked).
        std::io::copy(&mut f.take(size.unwrap_or(u64::MAX)), out).at(&path)
    }

    fn list_all(&mut self) -> Result<Vec<(ObjectKey, u64)>> {
        let objects = self.root.join("objects");
        let prefixes = match fs::read_dir(&objects) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err(&objects, e)),
        };
        let mut out = Vec::new();
        for prefix in prefixes {
            let prefix = prefix.map_err(|e| self.err(&objects, e))?;
            let Some(p) = prefix.file_name().to_str().map(str::to_string) else { continue };
            if p.len() != 2 || !prefix.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let dir = prefix.path();
            for entry in fs::read_dir(&dir).map_err(|e| self.err(&dir, e))? {
                let entry = entry.map_err(|e| self.err(&dir, e))?;
                let Some(key) = entry.file_name().to_str().and_then(|n| ObjectKey::from_listing(&p, n))
                else {
                    continue;
                };
                let meta = entry.metadata().map_err(|e| self.err(&entry.path(), e))?;
                if meta.is_file() {
                    out.push((key, meta.len()));
                }
            }
        }
        Ok(out)
    }

    fn delete(&mut self, key: &ObjectKey) -> Result<()> {
        let path = self.root.join(key.rel_path());
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.err(&path, e)),
            _ => Ok(()),
        }
    }

    fn flush(&mut self) -> Result<()> {
        // One flush of the remote's file system makes every upload durable.
        let f = fs::File::open(&self.root).map_err(|e| self.err(&self.root, e))?;
        f.sync_all().map_err(|e| self.err(&self.root, e))?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: `f` is an open descriptor for the duration of the call.
            unsafe { libc::syncfs(f.as_raw_fd()) };
        }
        Ok(())
    }
}
