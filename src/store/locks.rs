//! Locks on a layout-2 remote, so a prune never deletes what a push is uploading or is
//! about to reference. As in restic: every push holds a shared lock, a prune (or an
//! upgrade) an exclusive one, each a file under `locks/` named after its process. A
//! process writes its lock first and then lists the others; if a conflicting lock is
//! there it removes its own and gives up. Two processes racing therefore both see each
//! other (and both give up) rather than both going ahead.
//!
//! A lock is rewritten every [`REFRESH`] while its holder works; one not rewritten for
//! [`STALE`], or made on this machine by a process that no longer runs, belongs to a
//! process that died, and the next process removes it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, RemoteFailure, Result};
use crate::remote::backend::{Backend, join};
use crate::remote::{made_by_a_dead_process_here, process_name};

pub const DIR: &str = "locks";
/// How often a holder rewrites its lock.
pub const REFRESH: Duration = Duration::from_secs(5 * 60);
/// A lock not rewritten for this long is stale (allowing for clocks some minutes apart).
pub const STALE: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Pushes: any number at once.
    Shared,
    /// Prune and upgrade: alone.
    Exclusive,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Shared => "push",
            Kind::Exclusive => "prune",
        }
    }
}

/// A lock this process holds on a remote.
pub struct Lock {
    pub name: String,
    kind: Kind,
    refreshed: Mutex<Instant>,
}

fn text(kind: Kind) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let when = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!(
        "kind: {}\nhost: {}\npid: {}\ntime: {}\n",
        kind.word(),
        host.trim(),
        std::process::id(),
        when.as_secs()
    )
}

/// Whether a listed lock belongs to a process that died.
fn is_stale(l: &crate::remote::backend::Listed) -> bool {
    l.age.is_some_and(|a| a > STALE) || made_by_a_dead_process_here(&l.name)
}

/// The names of the stale locks under `locks/` (which the next lock taken removes).
pub fn stale(b: &mut dyn Backend) -> Result<Vec<String>> {
    Ok(b.list(DIR)?.into_iter().filter(is_stale).map(|l| l.name).collect())
}

/// Take a lock of `kind` on the remote `remote` (its name, for messages).
pub fn acquire(b: &mut dyn Backend, remote: &str, kind: Kind) -> Result<Lock> {
    let name = process_name(kind.word());
    let path = join(DIR, &name);
    b.write_bytes(&path, text(kind).as_bytes())?;
    let mut conflict = None;
    for other in b.list(DIR)? {
        if other.name == name {
            continue;
        }
        if is_stale(&other) {
            // Its process died: recover the lock (best effort; another process may too).
            let _ = b.delete(&join(DIR, &other.name));
            continue;
        }
        let exclusive = other.name.starts_with("prune-");
        if kind == Kind::Exclusive || exclusive {
            conflict = Some((other.name, other.age));
        }
    }
    if let Some((other, age)) = conflict {
        let _ = b.delete(&path);
        let what = if other.starts_with("prune-") { "a prune or upgrade" } else { "a push" };
        let since = age.map(|a| format!(", written {} s ago", a.as_secs())).unwrap_or_default();
        return Err(Error::remote(
            remote,
            RemoteFailure::Denied,
            format!(
                "{what} is running on it (lock {DIR}/{other}{since}); try again when it has finished \
                 (a lock not refreshed for {} minutes is stale and is removed)",
                STALE.as_secs() / 60
            ),
        ));
    }
    Ok(Lock { name, kind, refreshed: Mutex::new(Instant::now()) })
}

impl Lock {
    /// Rewrite the lock when [`REFRESH`] has passed, so it never looks stale while held.
    pub fn refresh(&self, b: &mut dyn Backend) -> Result<()> {
        let mut last = self.refreshed.lock().expect("lock refresh");
        if last.elapsed() < REFRESH {
            return Ok(());
        }
        b.replace(&join(DIR, &self.name), text(self.kind).as_bytes())?;
        *last = Instant::now();
        Ok(())
    }

    /// Remove the lock.
    pub fn release(&self, b: &mut dyn Backend) -> Result<()> {
        b.delete(&join(DIR, &self.name))
    }
}
