//! Replace a small file atomically: write a temp file beside it, fsync, rename.
//!
//! The temp file is named like checkout's (`.NAME.trove-PID-HEX`), so the debris of a killed
//! process is recognised and removed by the next writer ([`crate::link::remove_stale_temps`]).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Write a file readable by all (pointers, config, .gitignore).
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with_mode(path, bytes, 0o644)
}

/// Write a file with the given permission bits (0o600 for files holding secrets).
pub fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let temp = crate::link::temp_beside(path);
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .at(&temp)
        .and_then(|()| fs::rename(&temp, path).map_err(|e| Error::io(path, e)));
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}
