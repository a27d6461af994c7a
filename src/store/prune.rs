//! Pruning a layout-2 remote: dropping objects from its index and deleting (or
//! repacking) the packs that then hold garbage.
//!
//! Under an exclusive lock (no push runs), objects the caller does not keep leave the
//! index; chunks no kept object uses are garbage. A pack with no live chunk is deleted; a
//! pack whose live chunks take less than half its stored bytes is repacked (its live
//! chunks copied, still encoded, into new packs); packs no index file lists (left by
//! killed pushes or prunes) are deleted too.
//!
//! The order makes a kill at any point lose nothing: new packs are uploaded first, then
//! ONE new index naming every kept object and every live chunk's pack, superseding every
//! index file listed; then the old index files go, and only then the dead packs. A rerun
//! reads only the index files nothing supersedes, so it finishes the job: what the killed
//! run left (superseded files, unlisted packs) is garbage to it.

use std::collections::{HashMap, HashSet};

use super::layout2::{INDEX, PACKS, index_path, merge_current, pack_path};
use super::locks::{self, Lock};
use crate::error::{Error, RemoteFailure, Result};
use crate::hash::ObjectKey;
use crate::pack::{self, IndexFile, IndexId, ObjectRecord, PackEntry, PackId, PackRecord, PackWriter};
use crate::progress::Reporter;
use crate::remote::Temp;
use crate::remote::backend::{Backend, join};
use crate::remote::pool::Pool;

/// A pack to repack: its name, its size on the remote, and its live entries.
#[derive(Debug, Clone)]
pub struct Repack {
    pub id: PackId,
    pub size: u64,
    pub live: Vec<PackEntry>,
}

impl Repack {
    /// The stored bytes of its live chunks (what the new packs take of it).
    pub fn live_bytes(&self) -> u64 {
        self.live.iter().map(|e| u64::from(e.stored_len)).sum()
    }
}

/// What a prune does to one remote.
#[derive(Debug, Default)]
pub struct Prune {
    /// Objects dropped from the index, with their sizes.
    pub dropped: Vec<(ObjectKey, u64)>,
    /// Objects the index keeps.
    pub kept: u64,
    /// Packs deleted whole (no live chunk, or listed by no index file), with their sizes.
    pub delete: Vec<(PackId, u64)>,
    pub repack: Vec<Repack>,
    /// Stale upload temps under `tmp/`.
    pub temps: Vec<Temp>,
    /// Locks of processes that died (a prune killed before it let go of its lock), which
    /// taking the prune's lock removes.
    pub stale_locks: Vec<String>,
    /// Every index file listed (the new index supersedes them all).
    index_files: Vec<IndexId>,
    /// Packs that stay as they are, as their index files list them.
    keep_packs: Vec<PackRecord>,
    keep_objects: Vec<ObjectRecord>,
    /// Whether the index must be rewritten (objects dropped, packs removed from it, or
    /// superseded files left by a killed prune).
    rewrite: bool,
}

impl Prune {
    /// The bytes the remote frees: packs deleted, plus what repacking saves.
    pub fn bytes_freed(&self) -> u64 {
        self.delete.iter().map(|(_, s)| s).sum::<u64>()
            + self.repack.iter().map(|r| r.size.saturating_sub(r.live_bytes())).sum::<u64>()
    }

    /// Whether it would change nothing on the remote.
    pub fn is_empty(&self) -> bool {
        !self.rewrite
            && self.delete.is_empty()
            && self.repack.is_empty()
            && self.temps.is_empty()
            && self.stale_locks.is_empty()
    }
}

/// Take the exclusive lock a prune needs; a push (or another prune) holding one makes it
/// refuse, naming that lock. Stale locks are recovered.
pub fn lock(pool: &Pool) -> Result<Lock> {
    let mut conn = pool.connection()?;
    let lock = locks::acquire(conn.as_mut(), pool.remote_name(), locks::Kind::Exclusive);
    pool.idle(conn);
    lock
}

/// Plan a prune: read every index file and list every pack; objects for which `drop`
/// says true leave the index. Changes nothing.
pub fn plan(pool: &Pool, drop: &dyn Fn(&ObjectKey) -> bool) -> Result<Prune> {
    let name = pool.remote_name().to_string();
    let corrupt = |m: String| Error::remote(&name, RemoteFailure::Corrupt, m);
    let mut conn = pool.connection()?;
    let listed: Vec<IndexId> = conn.list(INDEX)?.iter().filter_map(|l| l.name.parse().ok()).collect();
    let mut on_remote: HashMap<PackId, u64> = HashMap::new();
    for dir in conn.list_dirs(PACKS)? {
        for f in conn.list(&join(PACKS, &dir))? {
            if let Ok(id) = f.name.parse::<PackId>()
                && pack_path(&id) == join(&join(PACKS, &dir), &f.name)
            {
                on_remote.insert(id, f.size);
            }
        }
    }
    let temps = crate::remote::list_temps(conn.as_mut())?.into_iter().filter(|t| t.is_stale()).collect();
    let stale_locks = locks::stale(conn.as_mut())?;
    pool.idle(conn);
    let read = pool.run(&listed, |c, id| {
        let mut bytes = Vec::new();
        c.read(&index_path(id), None, &mut bytes)?;
        if IndexFile::id_of(&bytes) != *id {
            return Err(corrupt(format!("{} does not match its name: it is damaged", index_path(id))));
        }
        IndexFile::parse(&bytes, &index_path(id)).map_err(|e| corrupt(e.to_string()))
    })?;
    let mut files = Vec::with_capacity(listed.len());
    for (id, r) in listed.iter().zip(read) {
        files.push((*id, r?));
    }
    let index = merge_current(&files);
    // Each pack's entries as its (first) record lists them.
    let mut records: HashMap<PackId, &PackRecord> = HashMap::new();
    for (id, file) in &files {
        if !index.index_ids().contains(id) {
            continue;
        }
        for r in &file.packs {
            records.entry(r.id).or_insert(r);
        }
    }

    let mut prune = Prune { temps, stale_locks, index_files: listed.clone(), ..Prune::default() };
    let mut live: HashSet<pack::ChunkId> = HashSet::new();
    for (key, size, chunks) in index.objects() {
        if drop(&key) {
            prune.dropped.push((key, size));
        } else {
            live.extend(chunks.iter().copied());
            prune.keep_objects.push(ObjectRecord { key, size, chunks: chunks.to_vec() });
        }
    }
    prune.kept = prune.keep_objects.len() as u64;
    let mut removed_from_index = false;
    for summary in index.packs() {
        let Some(record) = records.get(&summary.id) else { continue };
        // A chunk counts as live in the pack the index finds it in (a copy elsewhere is garbage).
        let alive: Vec<PackEntry> = record
            .entries
            .iter()
            .filter(|e| {
                live.contains(&e.chunk) && index.chunk(&e.chunk).is_some_and(|l| l.pack == summary.id)
            })
            .copied()
            .collect();
        let size = on_remote.get(&summary.id).copied().unwrap_or(summary.stored_bytes);
        let live_bytes: u64 = alive.iter().map(|e| u64::from(e.stored_len)).sum();
        if alive.is_empty() {
            removed_from_index = true;
            prune.delete.push((summary.id, size));
        } else if live_bytes * 2 < summary.stored_bytes {
            removed_from_index = true;
            prune.repack.push(Repack { id: summary.id, size, live: alive });
        } else {
            prune.keep_packs.push((*record).clone());
        }
    }
    // Packs no index lists: with the exclusive lock held, no push will name them.
    let mut unlisted: Vec<(PackId, u64)> =
        on_remote.iter().filter(|(id, _)| !index.has_pack(id)).map(|(id, s)| (*id, *s)).collect();
    unlisted.sort();
    prune.delete.extend(unlisted);
    // More than one index file is compacted into one: among them, the copy without
    // `supersedes` that a prune killed before deleting its first copy left beside it.
    prune.rewrite = !prune.dropped.is_empty() || removed_from_index || listed.len() > 1;
    Ok(prune)
}

/// What [`execute`] did.
#[derive(Debug, Default)]
pub struct Done {
    /// New packs written by repacking (a killed run's, already there, among them).
    pub packs_written: Vec<PackId>,
    /// Whether a new index file replaced the old ones.
    pub index_written: bool,
    /// Files that could not be deleted, with why (a rerun deletes them).
    pub failed: Vec<(String, String)>,
}

/// Carry out `prune` while holding `lock` (the exclusive lock, taken before [`plan`]).
pub fn execute(pool: &Pool, prune: &Prune, lock: &Lock, reporter: &dyn Reporter) -> Result<Done> {
    let mut done = Done::default();
    let mut conn = pool.connection()?;
    let c = conn.as_mut();
    let mut new_packs: Vec<PackRecord> = Vec::new();
    if !prune.repack.is_empty() {
        let total: u64 = prune.repack.iter().map(|r| r.live_bytes()).sum();
        reporter.start("repacking", prune.repack.len() as u64, total);
        let mut writer = PackWriter::new();
        for r in &prune.repack {
            crate::interrupt::check()?;
            copy_live(c, pool.remote_name(), r, &mut writer)?;
            if writer.len() >= pack::PACK_TARGET {
                let full = std::mem::take(&mut writer);
                new_packs.push(upload(c, full)?);
            }
            lock.refresh(c)?;
            reporter.advance(1, r.live_bytes());
        }
        if !writer.is_empty() {
            new_packs.push(upload(c, writer)?);
        }
        reporter.finish();
        done.packs_written = new_packs.iter().map(|p| p.id).collect();
    }
    crate::interrupt::check()?;
    // A killed run may have uploaded these very packs (same chunks, same name): unlisted
    // then, they are on the delete list, but the new index names them.
    let written: HashSet<PackId> = new_packs.iter().map(|p| p.id).collect();
    let new_packs_again = new_packs.clone();
    let mut new_index = None;
    if prune.rewrite || !prune.repack.is_empty() {
        let file = IndexFile {
            supersedes: prune.index_files.clone(),
            packs: prune.keep_packs.iter().cloned().chain(new_packs.iter().cloned()).collect(),
            objects: prune.keep_objects.clone(),
        };
        let bytes = file.encode();
        let id = IndexFile::id_of(&bytes);
        c.write_bytes(&index_path(&id), &bytes)?;
        // Durable before anything it replaces goes.
        c.flush()?;
        new_index = Some(id);
        done.index_written = true;
    }
    let delete = |c: &mut dyn Backend, path: String, done: &mut Done| {
        if let Err(e) = c.delete(&path) {
            done.failed.push((path, e.to_string()));
        }
        // Many deletions take a while: the lock must not look stale meanwhile.
        let _ = lock.refresh(c);
    };
    // The old index files first, so no reader finds a dead pack through them.
    for id in prune.index_files.iter().filter(|id| new_index.is_some() && Some(**id) != new_index) {
        delete(c, index_path(id), &mut done);
    }
    if !done.failed.is_empty() {
        // A dead pack an old index still names must stay; a rerun finishes.
        return Ok(done);
    }
    // With the files it replaced gone, the new index is written once more without its
    // `supersedes` list, and the first copy deleted: a later push may write an index
    // with the very bytes of a replaced one (the same objects pushed again), and readers
    // skip a name a listed index supersedes.
    if let Some(first) = new_index {
        let file = IndexFile {
            supersedes: Vec::new(),
            packs: prune.keep_packs.iter().cloned().chain(new_packs_again.iter().cloned()).collect(),
            objects: prune.keep_objects.clone(),
        };
        let bytes = file.encode();
        let id = IndexFile::id_of(&bytes);
        if id != first {
            c.write_bytes(&index_path(&id), &bytes)?;
            c.flush()?;
            delete(c, index_path(&first), &mut done);
        }
    }
    let dead: Vec<&PackId> = prune
        .delete
        .iter()
        .map(|(id, _)| id)
        .chain(prune.repack.iter().map(|r| &r.id))
        .filter(|id| !written.contains(id))
        .collect();
    reporter.start("deleting", dead.len() as u64, prune.bytes_freed());
    // In batches (S3 deletes 1,000 keys a request), refreshing the lock between them.
    for batch in dead.chunks(1000) {
        let paths: Vec<String> = batch.iter().map(|id| pack_path(id)).collect();
        done.failed.extend(c.delete_many(&paths).into_iter().map(|(p, e)| (p, e.to_string())));
        let _ = lock.refresh(c);
        reporter.advance(batch.len() as u64, 0);
    }
    reporter.finish();
    for t in &prune.temps {
        delete(c, join("tmp", &t.name), &mut done);
    }
    pool.idle(conn);
    Ok(done)
}

/// Copy the live chunks of `r` into `writer` as they are stored, with ranged reads
/// (neighbours in one read), each checked against its id first.
fn copy_live(c: &mut dyn Backend, remote: &str, r: &Repack, writer: &mut PackWriter) -> Result<()> {
    let name = pack_path(&r.id);
    // Runs of back-to-back entries: one read each.
    let mut runs: Vec<(u64, u64, Vec<&PackEntry>)> = Vec::new();
    for e in &r.live {
        match runs.last_mut() {
            Some((start, len, members)) if *start + *len == u64::from(e.offset) && *len < 8 << 20 => {
                *len += u64::from(e.stored_len);
                members.push(e);
            }
            _ => runs.push((u64::from(e.offset), u64::from(e.stored_len), vec![e])),
        }
    }
    let reads: Vec<(String, u64, u64)> = runs.iter().map(|(s, l, _)| (name.clone(), *s, *l)).collect();
    let mut got: Vec<Option<Result<Vec<u8>>>> = (0..reads.len()).map(|_| None).collect();
    c.read_many(&reads, &mut |i, r| got[i] = Some(r))?;
    let corrupt = |m: String| Error::remote(remote, RemoteFailure::Corrupt, m);
    for ((start, len, members), r) in runs.iter().zip(got) {
        let bytes = match r {
            Some(Ok(b)) => b,
            Some(Err(Error::Remote { kind: RemoteFailure::NotFound, .. })) => {
                return Err(corrupt(format!("{name}, which the index lists, is missing")));
            }
            Some(Err(e)) => return Err(e),
            None => {
                return Err(Error::remote(remote, RemoteFailure::Io, format!("{name}: a read was not done")));
            }
        };
        if bytes.len() as u64 != *len {
            return Err(corrupt(format!("{name} is shorter than the index says")));
        }
        for e in members {
            let from = (u64::from(e.offset) - start) as usize;
            let stored = &bytes[from..from + e.stored_len as usize];
            // A damaged chunk must not move into a new pack under its id.
            pack::decode_chunk(stored, e, &name)
                .map_err(|err| corrupt(format!("{err} (run `trove verify --remote`)")))?;
            writer.add_encoded(e.chunk, e.encoding, stored, e.raw_len as usize)?;
        }
    }
    Ok(())
}

fn upload(c: &mut dyn Backend, writer: PackWriter) -> Result<PackRecord> {
    let finished = writer.finish();
    c.write_bytes(&pack_path(&finished.id), &finished.bytes)?;
    Ok(PackRecord { id: finished.id, entries: finished.entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::ObjectId;
    use crate::progress::Silent;
    use crate::remote::Remote;
    use crate::remote::local::FolderRemote;

    /// Raw bytes that do not compress, so stored lengths are raw lengths.
    fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// A one-chunk file object of `raw`, as a push records it.
    fn object(raw: &[u8]) -> ObjectRecord {
        let id = ObjectId::of_bytes(raw);
        ObjectRecord {
            key: ObjectKey::file(id),
            size: raw.len() as u64,
            chunks: vec![pack::ChunkId::from(id)],
        }
    }

    fn put_pack(b: &mut dyn Backend, chunks: &[&[u8]]) -> PackRecord {
        let mut w = PackWriter::new();
        for raw in chunks {
            w.add(pack::ChunkId::of_bytes(raw), raw).unwrap();
        }
        let f = w.finish();
        b.write_bytes(&pack_path(&f.id), &f.bytes).unwrap();
        PackRecord { id: f.id, entries: f.entries }
    }

    fn put_index(b: &mut dyn Backend, file: &IndexFile) -> IndexId {
        let bytes = file.encode();
        let id = IndexFile::id_of(&bytes);
        b.write_bytes(&index_path(&id), &bytes).unwrap();
        id
    }

    #[test]
    fn dead_packs_go_sparse_ones_are_repacked_and_kept_objects_stay_readable() {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::remote::Settings { name: "r".into(), url: "r".into(), ..Default::default() };
        let remote = FolderRemote::new(&settings, dir.path().to_path_buf());
        let mut b = remote.connect().unwrap();
        let (keep_a, drop_b, drop_c, keep_d, drop_e) =
            (bytes(1, 10_000), bytes(2, 60_000), bytes(3, 40_000), bytes(4, 30_000), bytes(5, 20_000));
        // Pack 1: mostly garbage (10 KB live of 110 KB); pack 2: all garbage; pack 3:
        // mostly live (30 KB of 50 KB); pack 4: listed by no index.
        let p1 = put_pack(b.as_mut(), &[&keep_a, &drop_b, &drop_c[..]]);
        let p2 = put_pack(b.as_mut(), &[&drop_c]);
        let p3 = put_pack(b.as_mut(), &[&keep_d, &drop_e]);
        let p4 = put_pack(b.as_mut(), &[&bytes(6, 5_000)]);
        let first = IndexFile {
            supersedes: vec![],
            packs: vec![p1.clone(), p2.clone()],
            objects: vec![object(&keep_a), object(&drop_b), object(&drop_c)],
        };
        let second = IndexFile {
            supersedes: vec![],
            packs: vec![p3.clone()],
            objects: vec![object(&keep_d), object(&drop_e)],
        };
        let old = [put_index(b.as_mut(), &first), put_index(b.as_mut(), &second)];
        let keep: HashSet<ObjectKey> = [object(&keep_a).key, object(&keep_d).key].into();
        let pool = Pool::new(&remote, b, 1);

        let plan = plan(&pool, &|k| !keep.contains(k)).unwrap();
        assert_eq!(plan.dropped.len(), 3);
        assert_eq!(plan.kept, 2);
        let mut deleted: Vec<PackId> = plan.delete.iter().map(|(id, _)| *id).collect();
        deleted.sort();
        let mut want = vec![p2.id, p4.id];
        want.sort();
        assert_eq!(deleted, want, "the all-garbage pack and the unlisted one");
        assert_eq!(plan.repack.iter().map(|r| r.id).collect::<Vec<_>>(), vec![p1.id]);
        assert_eq!(plan.repack[0].live_bytes(), 10_000);
        let sizes: u64 = plan.delete.iter().map(|(_, s)| s).sum();
        assert_eq!(plan.bytes_freed(), sizes + plan.repack[0].size - 10_000);

        let lock = lock(&pool).unwrap();
        let done = execute(&pool, &plan, &lock, &Silent).unwrap();
        lock.release(pool.connection().unwrap().as_mut()).unwrap();
        assert!(done.index_written && done.failed.is_empty());
        assert_eq!(done.packs_written.len(), 1);

        let mut c = pool.connection().unwrap();
        let listed: Vec<IndexId> =
            c.list(INDEX).unwrap().iter().filter_map(|l| l.name.parse().ok()).collect();
        assert_eq!(listed.len(), 1, "one index replaces both");
        let mut raw = Vec::new();
        c.read(&index_path(&listed[0]), None, &mut raw).unwrap();
        let file = IndexFile::parse(&raw, "new").unwrap();
        // With the old files gone, the index that replaced them is written again without
        // its `supersedes` list, so a later push writing an old file's bytes is seen.
        assert!(file.supersedes.is_empty(), "{:?}", file.supersedes);
        assert!(old.iter().all(|id| !listed.contains(id)));
        let index = merge_current(&[(listed[0], file)]);
        assert_eq!(index.object_count(), 2);
        for gone in [p1.id, p2.id, p4.id] {
            assert!(!c.exists(&pack_path(&gone)).unwrap(), "{gone} was deleted");
        }
        assert!(c.exists(&pack_path(&p3.id)).unwrap(), "the mostly live pack stays");
        // Every kept object's chunk is readable where the new index says, and sound.
        for raw in [&keep_a, &keep_d] {
            let loc = index.chunk(&pack::ChunkId::of_bytes(raw)).unwrap();
            let stored =
                c.read_range(&pack_path(&loc.pack), loc.entry.offset.into(), loc.entry.stored_len.into());
            assert_eq!(&pack::decode_chunk(&stored.unwrap(), &loc.entry, "p").unwrap(), raw);
        }
        assert!(c.list(locks::DIR).unwrap().is_empty());

        // Nothing is left to do.
        pool.idle(c);
        assert!(super::plan(&pool, &|k| !keep.contains(k)).unwrap().is_empty());
    }
}
