//! A remote's repository format: which objects it holds, and moving objects between it
//! and the cache. Two layouts, both over a remote's [`Backend`] connections:
//!
//! - layout 1 ([`layout1`]): one file per object, `objects/<2>/<62>[.dir]`;
//! - layout 2 ([`layout2`]): content-defined chunks, compressed, in write-once pack files,
//!   found through write-once index files that the client caches (see [`crate::pack`]).
//!
//! `transfer.rs` plans push, fetch and status over a [`Store`] without knowing which.

pub mod layout1;
pub mod layout2;
pub mod locks;
pub mod prune;
pub mod upgrade;
pub mod verify2;

use std::collections::HashSet;

use crate::cache::{Cache, Staged};
use crate::error::{Error, RemoteFailure, Result};
use crate::hash::ObjectKey;
use crate::manifest::Manifest;
use crate::progress::Reporter;
use crate::remote::pool::Pool;
use crate::remote::{Remote, check_layout};
use crate::repo::Repo;

/// The layout new remotes get unless their `layout` setting says otherwise.
pub const NEW_LAYOUT: u64 = 2;

/// How a batch of transfers ended: one outcome per item, in order, and the bytes that
/// actually crossed the wire (for layout 2 less than the content when chunks were
/// already there, came from the local cache, or compressed).
pub struct Outcomes {
    pub each: Vec<Result<()>>,
    pub wire: u64,
}

/// A remote opened for transfers.
/// Where a download hands each object it verified, with its size.
pub type Stage<'a> = dyn Fn(Staged, u64) + Sync + 'a;

pub trait Store: Send + Sync {
    /// The remote's name in the config.
    fn name(&self) -> &str;
    /// Its layout version.
    fn layout(&self) -> u64;
    /// Before a push writes anything: take what it needs to write safely (layout 2: a
    /// shared lock, then a fresh reading of the index). The plan is made again after it.
    fn begin_writing(&self) -> Result<()> {
        Ok(())
    }
    /// Which of `keys` the remote holds. A manifest it holds means every file the
    /// manifest lists is there too (manifests are stored only after their files).
    fn present(&self, keys: &[ObjectKey]) -> Result<HashSet<ObjectKey>>;
    /// Download manifests (small; each checked against its id), one result per key.
    fn manifests(&self, keys: &[ObjectKey]) -> Result<Vec<Result<Manifest>>>;
    /// Upload these objects (with their sizes) from the cache. Calls `reporter.advance`
    /// as objects land.
    fn upload(&self, cache: &Cache, items: &[(ObjectKey, u64)], reporter: &dyn Reporter) -> Result<Outcomes>;
    /// Download these objects (with their sizes), each re-hashed as a whole, and hand
    /// each to `stage` (which reports the progress). A corrupt object is
    /// `Error::CorruptObject` (or a remote error of kind `Corrupt` naming the damaged pack
    /// or index) and is never staged.
    fn download(&self, cache: &Cache, items: &[(ObjectKey, u64)], stage: &Stage<'_>) -> Result<Outcomes>;
    /// The end of a push: make what was written durable and remove this push's temps.
    fn finish_push(&self, wrote: bool) -> Result<()>;
    /// A push stopped by a signal: remove its temps and locks (best effort).
    fn abandon(&self);
}

/// Whether opening a remote may create it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    /// A push: an empty or missing remote (whose parent folder exists) is created.
    Write,
}

/// Connect to `remote`, read its `TROVE_REMOTE` (creating a new remote for a push), and
/// open the format it names. `None` is an empty folder nothing was pushed to yet.
pub fn open<'a>(
    repo: &'a Repo,
    remote: &'a dyn Remote,
    jobs: Option<usize>,
    access: Access,
) -> Result<Option<Box<dyn Store + 'a>>> {
    let jobs = jobs.unwrap_or_else(|| remote.default_jobs());
    // This client's copies of a layout-2 index are read while the connection opens.
    let (conn, preloaded) = std::thread::scope(|s| {
        let preloading = s.spawn(|| layout2::preload(repo, remote.url()));
        let conn = remote.connect();
        (conn, preloading.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    let mut conn = conn?;
    let layout = match crate::remote::read_layout(conn.as_mut())? {
        Some(text) => check_layout(remote.name(), &text)?,
        None if access == Access::Write => {
            let layout = remote.new_layout();
            crate::remote::init_layout(conn.as_mut(), layout)?;
            layout
        }
        // An empty folder is a remote nothing was pushed to yet: it lacks every object.
        None if conn.root_exists()? => return Ok(None),
        None => {
            return Err(Error::remote(
                remote.name(),
                RemoteFailure::NotFound,
                format!("{} does not exist; check the URL, or push to it first", remote.url()),
            ));
        }
    };
    let pool = Pool::new(remote, conn, jobs);
    Ok(Some(match layout {
        1 => Box::new(layout1::Layout1::new(pool)),
        _ => Box::new(layout2::Layout2::open(repo, pool, preloaded)?),
    }))
}

/// Refuse downloaded bytes that hashed to `actual` for the object `k`.
pub fn check_id(k: &ObjectKey, actual: crate::hash::ObjectId) -> Result<()> {
    if actual != k.id {
        return Err(Error::CorruptObject { id: k.display(), actual: actual.to_hex() });
    }
    Ok(())
}
