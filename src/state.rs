//! The hash cache: (path, inode, size, mtime ns) → object id, in an embedded database,
//! so unchanged files are never hashed twice.
//!
//! A second table remembers which folder manifests had every object in the cache, and
//! what the cache's fan-out folders looked like then (see `Cache::has_all`).
//!
//! A third remembers cache objects whose bytes were seen to hash to their id, and the
//! object file's stamp then: checkout places an object only once it is known sound, and
//! re-hashes one whose file changed since (see `workspace::checkout`).
//!
//! It is only a cache: if the database is busy (another trove process has it open) or
//! unreadable, commands go on without it and hash what they need.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use redb::{Database, ReadableDatabase, TableDefinition};

use crate::hash::ObjectId;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("hashes");
const COMPLETE: TableDefinition<&[u8; 32], &[u8; 32]> = TableDefinition::new("complete");
const SOUND: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("sound");

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
}

impl Stamp {
    pub fn of(meta: &fs::Metadata) -> Self {
        Stamp { ino: meta.ino(), size: meta.len(), mtime_ns: nanos(meta.mtime(), meta.mtime_nsec()) }
    }

    fn encode(&self, id: &ObjectId) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[0..8].copy_from_slice(&self.ino.to_le_bytes());
        out[8..16].copy_from_slice(&self.size.to_le_bytes());
        out[16..32].copy_from_slice(&self.mtime_ns.to_le_bytes());
        out[32..64].copy_from_slice(id.as_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<(Stamp, ObjectId)> {
        if bytes.len() != 64 {
            return None;
        }
        let stamp = Stamp {
            ino: u64::from_le_bytes(bytes[0..8].try_into().ok()?),
            size: u64::from_le_bytes(bytes[8..16].try_into().ok()?),
            mtime_ns: i128::from_le_bytes(bytes[16..32].try_into().ok()?),
        };
        Some((stamp, ObjectId::from_bytes(bytes[32..64].try_into().ok()?)))
    }
}

pub struct StateDb {
    db: Option<Database>,
    /// When the database was opened: files stat'ed by this command were stat'ed after it.
    opened_ns: i128,
}

/// Margin for coarse file-system clocks.
pub const RACY_MARGIN_NS: i128 = 50_000_000;

impl StateDb {
    /// Open (or create) the database; a busy or broken one yields a cache that remembers nothing.
    pub fn open(state_dir: &Path) -> Self {
        let opened_ns = now_ns();
        let path = state_dir.join("hashes.redb");
        StateDb { db: open_db(&path), opened_ns }
    }

    /// A cache that remembers nothing (used when no state folder exists).
    pub fn disabled() -> Self {
        StateDb { db: None, opened_ns: 0 }
    }

    /// Look up the ids of many files; `None` where unknown or changed.
    pub fn lookup(&self, keys: &[(&[u8], Stamp)]) -> Vec<Option<ObjectId>> {
        let Some(db) = &self.db else {
            return vec![None; keys.len()];
        };
        let table = db.begin_read().ok().and_then(|t| t.open_table(TABLE).ok());
        let Some(table) = table else {
            return vec![None; keys.len()];
        };
        keys.iter()
            .map(|(key, stamp)| {
                let value = table.get(*key).ok()??;
                let (known, id) = Stamp::decode(value.value())?;
                (known == *stamp).then_some(id)
            })
            .collect()
    }

    /// When this command started looking at files.
    pub fn opened_ns(&self) -> i128 {
        self.opened_ns
    }

    /// Remember ids of files stat'ed at or after `observed_ns`. A stamp whose mtime is
    /// within the file system's timestamp granularity of that moment is skipped: the
    /// file may have been changing then, and a later change could keep the same mtime.
    pub fn record(&self, entries: &[(Vec<u8>, Stamp, ObjectId)], observed_ns: i128) {
        let Some(db) = &self.db else { return };
        let trusted: Vec<_> =
            entries.iter().filter(|(_, s, _)| !self.is_racy_at(s.mtime_ns, observed_ns)).collect();
        if trusted.is_empty() {
            return;
        }
        let write = || -> Result<(), redb::Error> {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(TABLE)?;
                for (key, stamp, id) in trusted {
                    table.insert(key.as_slice(), stamp.encode(id).as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        };
        // A failed write only costs re-hashing later.
        let _ = write();
    }

    /// The fingerprint of the cache folders under which `manifest` was last found complete.
    pub fn complete(&self, manifest: &ObjectId) -> Option<[u8; 32]> {
        let table = self.db.as_ref()?.begin_read().ok()?.open_table(COMPLETE).ok()?;
        let value = table.get(manifest.as_bytes()).ok()??;
        Some(*value.value())
    }

    /// Remember that `manifest` was complete when its cache folders had `fingerprint`.
    pub fn record_complete(&self, manifest: &ObjectId, fingerprint: &[u8; 32]) {
        let Some(db) = &self.db else { return };
        let write = || -> Result<(), redb::Error> {
            let txn = db.begin_write()?;
            txn.open_table(COMPLETE)?.insert(manifest.as_bytes(), fingerprint)?;
            txn.commit()?;
            Ok(())
        };
        // A failed write only costs checking the objects again.
        let _ = write();
    }

    /// Which of the objects (id, stamp of its file now) were seen sound with that stamp.
    pub fn sound(&self, objects: &[(ObjectId, Stamp)]) -> Vec<bool> {
        let table = self.db.as_ref().and_then(|db| db.begin_read().ok()?.open_table(SOUND).ok());
        let Some(table) = table else {
            return vec![false; objects.len()];
        };
        objects
            .iter()
            .map(|(id, stamp)| {
                let Ok(Some(value)) = table.get(id.as_bytes()) else { return false };
                Stamp::decode(value.value()) == Some((*stamp, *id))
            })
            .collect()
    }

    /// Remember objects whose bytes were seen to hash to their id, with the stamps their
    /// files had then (at or after `observed_ns`). Racy stamps are skipped, as in
    /// [`StateDb::record`].
    pub fn record_sound(&self, objects: &[(ObjectId, Stamp)], observed_ns: i128) {
        let Some(db) = &self.db else { return };
        let trusted: Vec<_> =
            objects.iter().filter(|(_, s)| !self.is_racy_at(s.mtime_ns, observed_ns)).collect();
        if trusted.is_empty() {
            return;
        }
        let write = || -> Result<(), redb::Error> {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(SOUND)?;
                for (id, stamp) in trusted {
                    table.insert(id.as_bytes(), stamp.encode(id).as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        };
        // A failed write only costs hashing the objects again.
        let _ = write();
    }

    /// Forget every file remembered under one of `ids`, and that those objects were sound:
    /// their bytes were found damaged, so what was copied from them may be too.
    pub fn forget(&self, ids: &std::collections::HashSet<ObjectId>) {
        let Some(db) = &self.db else { return };
        if ids.is_empty() {
            return;
        }
        let write = || -> Result<(), redb::Error> {
            let txn = db.begin_write()?;
            txn.open_table(TABLE)?
                .retain(|_, value| Stamp::decode(value).is_none_or(|(_, id)| !ids.contains(&id)))?;
            {
                let mut sound = txn.open_table(SOUND)?;
                for id in ids {
                    sound.remove(id.as_bytes())?;
                }
            }
            txn.commit()?;
            Ok(())
        };
        // A failed write leaves them (deleting `.trove/state/` forgets them too).
        let _ = write();
    }

    /// Whether a time stamp is recent enough that a change in the same clock tick could
    /// follow unseen.
    pub fn is_racy(&self, mtime_ns: i128) -> bool {
        self.is_racy_at(mtime_ns, self.opened_ns)
    }

    /// Whether there is a database to remember anything in.
    pub fn is_open(&self) -> bool {
        self.db.is_some()
    }

    /// Whether a time stamp seen at `observed_ns` is within a clock tick of it.
    pub fn is_racy_at(&self, mtime_ns: i128, observed_ns: i128) -> bool {
        mtime_ns >= observed_ns - RACY_MARGIN_NS
    }
}

/// Which of the files (each with the stamp it had when its content was seen, at or after
/// `observed_ns`) can be remembered by that stamp, and the time to record them at.
///
/// A stamp within the file system's clock tick of `observed_ns` cannot be trusted yet (see
/// [`StateDb::record`]); rather than leave a large file to be read again by the next
/// command, the tick is waited out (at most 51 ms, counted from the newest such stamp) and
/// the file looked at again: one whose stamp did not change meanwhile is trusted.
pub fn settle(files: &[(&Path, Stamp)], observed_ns: i128) -> (Vec<bool>, i128) {
    let stamp = |p: &Path| fs::metadata(p).ok().map(|m| Stamp::of(&m));
    let racy = |s: &Stamp| s.mtime_ns >= observed_ns - RACY_MARGIN_NS;
    let Some(newest) = files.iter().filter(|(_, s)| racy(s)).map(|(_, s)| s.mtime_ns).max() else {
        return (vec![true; files.len()], observed_ns);
    };
    // The margin and a millisecond more, counted from the newest file's time.
    let tick = RACY_MARGIN_NS + 1_000_000;
    let wait = (newest + tick - now_ns()).clamp(0, tick);
    std::thread::sleep(std::time::Duration::from_nanos(wait as u64));
    let again = now_ns();
    let trusted = files.iter().map(|(p, s)| !racy(s) || stamp(p) == Some(*s)).collect();
    (trusted, again)
}

/// A file time (seconds and nanoseconds, as `stat` gives them) in nanoseconds.
pub fn nanos(secs: i64, nsec: i64) -> i128 {
    secs as i128 * 1_000_000_000 + nsec as i128
}

pub fn now_ns() -> i128 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128)
}

fn open_db(path: &PathBuf) -> Option<Database> {
    match Database::create(path) {
        Ok(db) => Some(db),
        Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(_))) => {
            // Unreadable: it is only a cache, start afresh.
            let _ = fs::remove_file(path);
            Database::create(path).ok()
        }
        // Busy (another trove process has it open) or unavailable: go on without it.
        Err(_) => None,
    }
}
