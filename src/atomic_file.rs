//! Replace a small file atomically: write a temp file beside it, fsync, rename.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Write a file readable by all (pointers, config, .gitignore).
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with_mode(path, bytes, 0o644)
}

/// Write a file with the given permission bits (0o600 for files holding secrets).
pub fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tf = tempfile::Builder::new()
        .prefix(".trove-tmp-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .at(dir)?;
    tf.write_all(bytes).at(tf.path())?;
    tf.as_file().sync_all().at(tf.path())?;
    tf.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}
