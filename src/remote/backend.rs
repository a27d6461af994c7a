//! What a remote's storage must do: plain named files under a root, the way restic's and
//! rustic's backends work. Paths are `/`-separated and relative to the remote's root
//! (`TROVE_REMOTE`, `objects/ab/cdef…`). A backend knows nothing of what the files mean:
//! the repository formats (layout 1's object files, layout 2's packs and indexes) live
//! above it, in `remote::layout1` and `remote::layout2`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Result;

/// A file found by listing a folder.
#[derive(Debug, Clone)]
pub struct Listed {
    pub name: String,
    pub size: u64,
    /// Since it was last written (by the server's clock, against this machine's), when known.
    pub age: Option<Duration>,
}

/// One connection to a remote's storage. Transfers open several and use each from one
/// thread. Every error is an [`Error::Remote`](crate::error::Error::Remote) whose kind
/// says whether a retry may help (a file that is not there is `NotFound`), or a local
/// [`Error::Io`](crate::error::Error::Io) for the local side of a copy.
pub trait Backend: Send {
    /// Whether the root folder exists.
    fn root_exists(&mut self) -> Result<bool>;
    /// Create the root folder; its parent must exist (a typo in a URL should not make a
    /// tree of folders). One that exists is not an error.
    fn create_root(&mut self) -> Result<()>;
    /// The files in folder `dir` (not its subfolders); empty when it does not exist.
    fn list(&mut self, dir: &str) -> Result<Vec<Listed>>;
    /// The subfolders of `dir`; empty when it does not exist.
    fn list_dirs(&mut self, dir: &str) -> Result<Vec<String>>;
    /// Whether file `path` exists.
    fn exists(&mut self, path: &str) -> Result<bool>;
    /// Stream file `path` into `out`; returns the byte count. `size` is its expected size
    /// when known (it saves asking the server): no more than that is read.
    fn read(&mut self, path: &str, size: Option<u64>, out: &mut dyn Write) -> Result<u64>;
    /// `len` bytes of file `path` from `offset`: fewer only where the file ends.
    fn read_range(&mut self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>>;
    /// Several ranged reads (path, offset, length), calling `done` with each one's index
    /// and bytes (or why not) as it completes. The default reads one at a time; a backend
    /// with round trips keeps many requests in flight. An error means the connection
    /// failed: reads not reported did not complete.
    fn read_many(
        &mut self,
        items: &[(String, u64, u64)],
        done: &mut dyn FnMut(usize, Result<Vec<u8>>),
    ) -> Result<()> {
        for (i, (path, offset, len)) in items.iter().enumerate() {
            done(i, self.read_range(path, *offset, *len));
        }
        Ok(())
    }
    /// Write local file `local` as `path`, atomically (no reader ever sees part of it):
    /// on a folder or SFTP under a temp name in `tmp/`, then renamed into place, making
    /// the folders on the way; on S3 in one PUT (or a completed multipart upload). Names are written once: when
    /// `path` exists already, it is kept (its content is the same by its name).
    fn write_file(&mut self, path: &str, local: &Path) -> Result<()>;
    /// Write `bytes` as `path`, as [`Backend::write_file`] does.
    fn write_bytes(&mut self, path: &str, bytes: &[u8]) -> Result<()>;
    /// Write several local files (remote path, local path), calling `done` with each
    /// one's index and outcome. The default writes one at a time; a backend with round
    /// trips keeps many requests in flight. An error means the connection failed: writes
    /// not reported did not complete.
    fn write_many(
        &mut self,
        items: &[(String, PathBuf)],
        done: &mut dyn FnMut(usize, Result<()>),
    ) -> Result<()> {
        for (i, (path, local)) in items.iter().enumerate() {
            done(i, self.write_file(path, local));
        }
        Ok(())
    }
    /// Replace file `path` with `bytes` (the one file that changes: `TROVE_REMOTE`).
    fn replace(&mut self, path: &str, bytes: &[u8]) -> Result<()>;
    /// Delete file `path`; one that is already gone is not an error.
    fn delete(&mut self, path: &str) -> Result<()>;
    /// Delete several files; ones already gone are not an error. Returns those that could
    /// not be deleted, each with why. The default deletes one at a time; a backend with
    /// batch deletes (S3's DeleteObjects) sends few requests.
    fn delete_many(&mut self, paths: &[String]) -> Vec<(String, crate::error::Error)> {
        paths.iter().filter_map(|p| self.delete(p).err().map(|e| (p.clone(), e))).collect()
    }
    /// Remove folder `dir` when it is empty; one that is gone or not empty is left alone
    /// (an upgrade removes layout 1's emptied fan-out folders this way).
    fn remove_empty_dir(&mut self, dir: &str) -> Result<()> {
        let _ = dir;
        Ok(())
    }
    /// Make what was written durable (called once at the end of a push).
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

/// `dir/name`, or `name` at the root.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") }
}

/// The folder part of a path (`""` for a file at the root).
pub fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}
