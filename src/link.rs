//! Placing cache objects in the workspace: reflink, copy, hardlink or symlink, tried in order.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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

/// Set at the first clone that failed for another reason than a missing file: the file
/// systems here cannot clone, and later files (placed or staged) go straight to a copy.
static REFLINK_UNSUPPORTED: AtomicBool = AtomicBool::new(false);
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// This process's id (asked of the kernel once), for temp file names.
pub fn pid() -> u32 {
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// Clone `src` to the new file `dest` (a reflink), unless clones already failed here.
pub fn reflink(src: &Path, dest: &Path) -> io::Result<()> {
    if reflink_unsupported() {
        return Err(io::ErrorKind::Unsupported.into());
    }
    reflink_copy::reflink(src, dest).inspect_err(|e| {
        if e.kind() != io::ErrorKind::NotFound {
            REFLINK_UNSUPPORTED.store(true, Ordering::Relaxed);
        }
    })
}

/// Whether a clone failed here (see [`reflink`]).
pub fn reflink_unsupported() -> bool {
    REFLINK_UNSUPPORTED.load(Ordering::Relaxed)
}

/// A temp name beside `dest`, `.NAME.trove-PID-HEX`: unique within this process, and
/// recognisable as debris ([`is_stale_temp`]) once the process is gone.
pub fn temp_beside(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dest.with_file_name(format!(".{name}.trove-{}-{:x}", pid(), TEMP_SEQ.fetch_add(1, Ordering::Relaxed)))
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
    temp_pid(name).is_some_and(is_gone)
}

/// Whether process `pid` (not this one) no longer runs: what it left behind is debris.
pub fn is_gone(pid: u32) -> bool {
    pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
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
/// trying each link kind in order. Returns the kind that worked. The parent folder is
/// created when missing.
pub fn place(object: &Path, dest: &Path, kinds: &[LinkKind], exec: bool) -> Result<LinkKind> {
    let temp = temp_beside(dest);
    let mut last_err = None;
    for &kind in kinds {
        // A link appears whole, so where nothing is in the way it is made in place (no
        // temp file, no rename); where something is, it is replaced through a temp.
        if matches!(kind, LinkKind::Hardlink | LinkKind::Symlink) && !(kind == LinkKind::Hardlink && exec) {
            match with_parent(dest, || make(kind, object, dest, exec)) {
                Some(Ok(())) => return Ok(kind),
                Some(Err(e)) if e.kind() != io::ErrorKind::AlreadyExists => {
                    last_err = Some(e);
                    continue;
                }
                _ => {}
            }
        }
        let attempt = match with_parent(&temp, || make(kind, object, &temp, exec)) {
            Some(attempt) => attempt,
            None => continue,
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
                if kind == LinkKind::Copy {
                    let _ = fs::remove_file(&temp);
                }
                last_err = Some(e);
            }
        }
    }
    // A full disk is said as such (with its hint), not as a link kind that did not work.
    if let Some(e) = last_err.take_if(|e| e.kind() == io::ErrorKind::StorageFull) {
        return Err(Error::io(dest, e));
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

/// Run `op`; when it fails because the parent folder of `path` is missing, create the
/// folder and run it once more.
fn with_parent<T>(path: &Path, mut op: impl FnMut() -> Option<io::Result<T>>) -> Option<io::Result<T>> {
    match op()? {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = path.parent()?;
            if parent.is_dir() {
                return Some(Err(e));
            }
            if let Err(e) = fs::create_dir_all(parent) {
                return Some(Err(e));
            }
            op()
        }
        other => Some(other),
    }
}

/// Make `temp` a new file with the object's content by one link kind; `None` when the
/// kind does not apply here.
fn make(kind: LinkKind, object: &Path, temp: &Path, exec: bool) -> Option<io::Result<()>> {
    Some(match kind {
        LinkKind::Reflink if reflink_unsupported() => return None,
        LinkKind::Reflink => reflink(object, temp)
            .and_then(|_| fs::set_permissions(temp, fs::Permissions::from_mode(writable_mode(exec)))),
        LinkKind::Copy => copy_new(object, temp, writable_mode(exec)),
        // A shared inode cannot carry an exec bit of its own.
        LinkKind::Hardlink if exec => return None,
        LinkKind::Hardlink => fs::hard_link(object, temp),
        LinkKind::Symlink => std::os::unix::fs::symlink(object, temp),
    })
}

/// Copy `src` to a new file `dest` created with `mode` (less the umask).
pub fn copy_new(src: &Path, dest: &Path, mode: u32) -> io::Result<()> {
    let from = fs::File::open(src)?;
    let to = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(dest)?;
    copy_data(&from, &to)
}

/// Copy all of `from` (read from its start) to `to` (written at its start). The kernel
/// copies (copy_file_range, without a trip through user space) where it can.
pub fn copy_data(from: &fs::File, to: &fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut copied: u64 = 0;
    loop {
        // SAFETY: both descriptors are open for the call; null offsets use the file positions.
        let n = unsafe {
            libc::copy_file_range(
                from.as_raw_fd(),
                std::ptr::null_mut(),
                to.as_raw_fd(),
                std::ptr::null_mut(),
                1 << 30,
                0,
            )
        };
        match n {
            0 => return Ok(()),
            n if n > 0 => copied += n as u64,
            _ => {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    // Not supported between these files: copy through user space.
                    Some(libc::EXDEV | libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP | libc::EPERM)
                        if copied == 0 =>
                    {
                        return io::copy(&mut &*from, &mut &*to).map(|_| ());
                    }
                    _ => return Err(e),
                }
            }
        }
    }
}

/// Whether two paths name one file (the same inode on the same device), e.g. a workspace
/// file hard-linked to its cache object.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
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
