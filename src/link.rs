//! Placing cache objects in the workspace: reflink, copy, hardlink or symlink, tried in order.

use std::fmt;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, IoContext, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Reflink,
    Copy,
    Hardlink,
    Symlink,
}

impl FromStr for LinkKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "reflink" => Ok(LinkKind::Reflink),
            "copy" => Ok(LinkKind::Copy),
            "hardlink" => Ok(LinkKind::Hardlink),
            "symlink" => Ok(LinkKind::Symlink),
            other => Err(format!("unknown link kind `{other}` (use reflink, copy, hardlink or symlink)")),
        }
    }
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkKind::Reflink => "reflink",
            LinkKind::Copy => "copy",
            LinkKind::Hardlink => "hardlink",
            LinkKind::Symlink => "symlink",
        })
    }
}

impl LinkKind {
    /// Whether the workspace file shares the cache's read-only object.
    pub fn shares_object(self) -> bool {
        matches!(self, LinkKind::Hardlink | LinkKind::Symlink)
    }
}

/// A temp name beside `dest`, `.NAME.trove-PID-HEX`: unique within this process, and
/// recognisable as debris ([`is_stale_temp`]) once the process is gone.
pub fn temp_beside(dest: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let unique = format!(
        ".{name}.trove-{}-{:x}{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
    );
    dest.with_file_name(unique)
}

/// The process id in a temp name `.NAME.trove-PID-HEX` written by [`place`], if it is one.
pub fn temp_pid(name: &str) -> Option<u32> {
    if !name.starts_with('.') {
        return None;
    }
    let (_, tail) = name.rsplit_once(".trove-")?;
    let (pid, hex) = tail.split_once('-')?;
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether `name` is a temp file of a process that is no longer running (a killed checkout
/// or atomic write).
pub fn is_stale_temp(name: &str) -> bool {
    temp_pid(name)
        .is_some_and(|pid| pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists())
}

/// Delete the temp files that killed processes left in `dir` (not recursive).
pub fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_str().is_some_and(is_stale_temp) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn writable_mode(exec: bool) -> u32 {
    if exec { 0o755 } else { 0o644 }
}

/// Put the object at `object` into the workspace at `dest`, replacing what is there,
/// trying each link kind in order. Returns the kind that worked.
pub fn place(object: &Path, dest: &Path, kinds: &[LinkKind], exec: bool) -> Result<LinkKind> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).at(parent)?;
    }
    let temp = temp_beside(dest);
    let mut last_err = None;
    for &kind in kinds {
        let attempt = match kind {
            LinkKind::Reflink => reflink_copy::reflink(object, &temp)
                .and_then(|_| fs::set_permissions(&temp, fs::Permissions::from_mode(writable_mode(exec)))),
            LinkKind::Copy => fs::copy(object, &temp)
                .and_then(|_| fs::set_permissions(&temp, fs::Permissions::from_mode(writable_mode(exec)))),
            // A shared inode cannot carry an exec bit of its own.
            LinkKind::Hardlink if exec => continue,
            LinkKind::Hardlink => fs::hard_link(object, &temp),
            LinkKind::Symlink => std::os::unix::fs::symlink(object, &temp),
        };
        match attempt {
            Ok(()) => {
                if let Err(e) = fs::rename(&temp, dest) {
                    let _ = fs::remove_file(&temp);
                    return Err(Error::io(dest, e));
                }
                return Ok(kind);
            }
            Err(e) => {
                let _ = fs::remove_file(&temp);
                last_err = Some(e);
            }
        }
    }
    Err(Error::path(
        dest,
        format!(
            "could not place the file with any of the link kinds in cache.link ({}): {}",
            kinds.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", "),
            last_err.map_or_else(|| "no kind applies".to_string(), |e| e.to_string())
        ),
    ))
}

/// Whether a workspace file shares its storage with the cache (and so must not be written).
pub fn is_linked(path: &Path) -> Result<bool> {
    let meta = fs::symlink_metadata(path).at(path)?;
    Ok(meta.file_type().is_symlink() || (meta.is_file() && meta.nlink() > 1))
}

/// Turn a linked or read-only workspace file into a private writable copy.
pub fn unprotect(path: &Path) -> Result<bool> {
    let meta = fs::symlink_metadata(path).at(path)?;
    let linked = is_linked(path)?;
    let readonly = meta.permissions().readonly();
    if !linked && !readonly {
        return Ok(false);
    }
    let exec = fs::metadata(path).at(path)?.mode() & 0o111 != 0;
    let temp = temp_beside(path);
    fs::copy(path, &temp).at(path)?;
    fs::set_permissions(&temp, fs::Permissions::from_mode(writable_mode(exec))).at(&temp)?;
    fs::rename(&temp, path).at(path)?;
    Ok(true)
}
