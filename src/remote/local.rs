//! A folder remote: a directory on this machine (or a mounted share).

use std::fs;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::backend::{Backend, Listed};
use super::{Remote, temp_name};
use crate::error::{Error, IoContext, RemoteFailure, Result};

pub struct FolderRemote {
    name: String,
    url: String,
    root: PathBuf,
    jobs: Option<usize>,
    layout: u64,
}

impl FolderRemote {
    pub fn new(settings: &super::Settings, root: PathBuf) -> Self {
        FolderRemote {
            name: settings.name.clone(),
            url: settings.url.clone(),
            root,
            jobs: settings.jobs,
            layout: settings.layout.unwrap_or(crate::store::NEW_LAYOUT),
        }
    }
}

impl Remote for FolderRemote {
    fn name(&self) -> &str {
        &self.name
    }

    fn url(&self) -> &str {
        &self.url
    }

    fn connect(&self) -> Result<Box<dyn Backend>> {
        Ok(Box::new(FolderBackend { name: self.name.clone(), root: self.root.clone() }))
    }

    fn new_layout(&self) -> u64 {
        self.layout
    }

    fn default_jobs(&self) -> usize {
        self.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8))
    }
}

struct FolderBackend {
    name: String,
    root: PathBuf,
}

/// What an I/O error on the remote's side means for a retry.
fn failure(e: &std::io::Error) -> RemoteFailure {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => RemoteFailure::NotFound,
        K::StorageFull | K::QuotaExceeded => RemoteFailure::Full,
        K::PermissionDenied | K::ReadOnlyFilesystem => RemoteFailure::Denied,
        _ => RemoteFailure::Io,
    }
}

impl FolderBackend {
    fn err(&self, path: &Path, e: std::io::Error) -> Error {
        Error::remote(self.name.clone(), failure(&e), format!("{}: {e}", path.display()))
    }

    fn at(&self, rel: &str) -> PathBuf {
        if rel.is_empty() { self.root.clone() } else { self.root.join(rel) }
    }

    /// The entries of the folder `dir` with their names; none when it does not exist.
    /// Names that are not UTF-8 are left out (trove writes none).
    fn entries(&self, dir: &str) -> Result<Vec<(String, fs::DirEntry)>> {
        let path = self.at(dir);
        let entries = match fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err(&path, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.err(&path, e))?;
            if let Some(name) = entry.file_name().to_str() {
                out.push((name.to_string(), entry));
            }
        }
        Ok(out)
    }

    /// Rename `temp` to `dest`, making `dest`'s folder when it is missing.
    fn put(&self, temp: &Path, dest: &Path) -> Result<()> {
        if let Err(e) = fs::rename(temp, dest) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(self.err(dest, e));
            }
            let parent = dest.parent().expect("a remote file has a folder");
            fs::create_dir_all(parent).map_err(|e| self.err(parent, e))?;
            fs::rename(temp, dest).map_err(|e| self.err(dest, e))?;
        }
        Ok(())
    }

    /// Write a temp file under `tmp/` with `fill`, then rename it to `dest`; the temp is
    /// removed when anything fails.
    fn write_via_temp(&self, dest: &str, mut fill: impl FnMut(&Path) -> std::io::Result<()>) -> Result<()> {
        let tmp = self.root.join("tmp");
        let temp = tmp.join(temp_name());
        let dest = self.at(dest);
        let result = (|| {
            let mut filled = fill(&temp);
            if filled.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) && !tmp.is_dir() {
                // tmp/ went missing (cleaned up by hand): make it again.
                fs::create_dir_all(&tmp).map_err(|e| self.err(&tmp, e))?;
                filled = fill(&temp);
            }
            filled.map_err(|e| self.err(&dest, e))?;
            self.put(&temp, &dest)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o444).open(path)?;
    f.write_all(bytes)
}

impl Backend for FolderBackend {
    fn root_exists(&mut self) -> Result<bool> {
        Ok(self.root.is_dir())
    }

    fn create_root(&mut self) -> Result<()> {
        if self.root.is_dir() {
            return Ok(());
        }
        let parent = self.root.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("/"));
        if !parent.is_dir() {
            return Err(Error::remote(
                self.name.clone(),
                RemoteFailure::NotFound,
                format!(
                    "{} does not exist (its parent folder {} does not exist); check the URL",
                    self.root.display(),
                    parent.display()
                ),
            ));
        }
        match fs::create_dir(&self.root) {
            Ok(()) => Ok(()),
            // Another push created it a moment ago.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && self.root.is_dir() => Ok(()),
            Err(e) => Err(Error::remote(
                self.name.clone(),
                failure(&e),
                format!("cannot create folder {}: {e}", self.root.display()),
            )),
        }
    }

    fn list(&mut self, dir: &str) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        for (name, entry) in self.entries(dir)? {
            // A file deleted between the listing and its stat is not listed.
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_file() {
                let age = meta.modified().ok().and_then(|t| t.elapsed().ok());
                out.push(Listed { name, size: meta.len(), age });
            }
        }
        Ok(out)
    }

    fn list_dirs(&mut self, dir: &str) -> Result<Vec<String>> {
        let entries = self.entries(dir)?;
        Ok(entries
            .into_iter()
            .filter(|(_, entry)| entry.file_type().is_ok_and(|t| t.is_dir()))
            .map(|(name, _)| name)
            .collect())
    }

    fn exists(&mut self, path: &str) -> Result<bool> {
        Ok(self.at(path).is_file())
    }

    fn read(&mut self, path: &str, size: Option<u64>, out: &mut dyn Write) -> Result<u64> {
        let path = self.at(path);
        let f = fs::File::open(&path).map_err(|e| self.err(&path, e))?;
        // As over SFTP: the expected bytes only (the caller checks their hash).
        std::io::copy(&mut f.take(size.unwrap_or(u64::MAX)), out).at(&path)
    }

    fn read_range(&mut self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let path = self.at(path);
        let mut f = fs::File::open(&path).map_err(|e| self.err(&path, e))?;
        f.seek(std::io::SeekFrom::Start(offset)).map_err(|e| self.err(&path, e))?;
        let mut bytes = Vec::with_capacity(len.min(64 << 20) as usize);
        f.take(len).read_to_end(&mut bytes).map_err(|e| self.err(&path, e))?;
        Ok(bytes)
    }

    fn write_file(&mut self, path: &str, local: &Path) -> Result<()> {
        let mut local_error = None;
        let result = self.write_via_temp(path, |temp| {
            // A failure to read the local file is this machine's, not the remote's.
            let from = fs::File::open(local).inspect_err(|e| {
                local_error = Some(Error::io(local, std::io::Error::new(e.kind(), e.to_string())));
            })?;
            use std::os::unix::fs::OpenOptionsExt;
            let to = fs::OpenOptions::new().write(true).create_new(true).mode(0o444).open(temp)?;
            crate::link::copy_data(&from, &to)
        });
        match local_error {
            Some(e) => Err(e),
            None => result,
        }
    }

    fn write_bytes(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        self.write_via_temp(path, |temp| write_new(temp, bytes))
    }

    fn replace(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        // A rename replaces the old file atomically.
        self.write_bytes(path, bytes)
    }

    fn delete(&mut self, path: &str) -> Result<()> {
        let path = self.at(path);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.err(&path, e)),
            _ => Ok(()),
        }
    }

    fn remove_empty_dir(&mut self, dir: &str) -> Result<()> {
        // Fails (and is ignored) when the folder is not empty or not there.
        let _ = fs::remove_dir(self.at(dir));
        Ok(())
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
