//! The in-memory index of a layout-2 remote, merged from its index files, so the transfer
//! engine can answer "does the remote have this chunk / object, and where" without a
//! round trip.
//!
//! Built for size: a push of a million chunks must fit in ~150 MB. Chunks and objects live
//! in flat vectors (one 52- and one 48-byte slot each; packs alike) and the hash tables
//! hold only u32 positions into them, so a table's spare capacity costs 5 bytes a slot, not 60. An
//! object made of one chunk whose id is its own (every file under the minimum chunk size,
//! most files in practice) stores no chunk list at all.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use super::compress::Encoding;
use super::indexfile::IndexFile;
use super::packfile::PackEntry;
use super::{ChunkId, IndexId, PackId};
use crate::hash::{ObjectId, ObjectKey, ObjectKind};

/// Where a chunk is: its pack and its entry there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLocation {
    pub pack: PackId,
    pub entry: PackEntry,
}

/// A pack as the index files list it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackSummary {
    pub id: PackId,
    /// How many chunks its trailer lists (including copies of chunks also found elsewhere).
    pub chunks: u32,
    /// The stored bytes of those chunks: the pack's length less its header and trailer.
    pub stored_bytes: u64,
}

/// A chunk's place: `pack` is a position in `RemoteIndex::packs`, so a location can only
/// name a pack some index file listed with its entries.
#[derive(Clone, Copy)]
struct ChunkSlot {
    id: ChunkId,
    pack: u32,
    offset: u32,
    stored_len: u32,
    raw_len: u32,
    encoding: Encoding,
}

/// An object: `start` indexes the chunk arena, or is [`OWN_ID`].
#[derive(Clone, Copy)]
struct ObjectSlot {
    id: ChunkId,
    size: u64,
    start: u32,
    /// The chunk count, with [`MANIFEST_BIT`] set for a manifest.
    count_kind: u32,
}

/// `start` of an object that is one chunk with the object's own id.
const OWN_ID: u32 = u32::MAX;
const MANIFEST_BIT: u32 = 1 << 31;

/// A position in one of the vectors as a u32, below [`MANIFEST_BIT`] (so also below
/// [`OWN_ID`]). Exceeding it needs ~100 GB of slots, so memory runs out long before; the
/// check keeps that from wrapping silently.
fn position(len: usize) -> u32 {
    u32::try_from(len).ok().filter(|&n| n < MANIFEST_BIT).expect("fewer than 2^31 entries")
}

/// What a remote holds, merged from its index files: build it with `default()` and
/// [`RemoteIndex::add`], then query it.
#[derive(Default)]
pub struct RemoteIndex {
    hasher: RandomState,
    packs: Vec<PackSummary>,
    pack_table: HashTable<u32>,
    chunks: Vec<ChunkSlot>,
    chunk_table: HashTable<u32>,
    objects: Vec<ObjectSlot>,
    object_table: HashTable<u32>,
    arena: Vec<ChunkId>,
    index_ids: Vec<IndexId>,
    added: HashSet<IndexId>,
    superseded: HashSet<IndexId>,
    stale: bool,
}

impl RemoteIndex {
    /// Merge the index file `id`. Records already known are kept as they are (the first
    /// location of a chunk wins). Returns false, adding nothing, when the file was added
    /// before or an added file supersedes it.
    pub fn add(&mut self, id: IndexId, file: &IndexFile) -> bool {
        if self.added.contains(&id) || self.superseded.contains(&id) {
            return false;
        }
        for old in &file.supersedes {
            self.stale |= self.added.contains(old);
            self.superseded.insert(*old);
        }
        self.added.insert(id);
        self.index_ids.push(id);

        for record in &file.packs {
            // A pack is write-once, so one listed again holds the same entries: its summary
            // is counted once. Its entries are still merged, in case a listing was partial.
            let hash = self.hasher.hash_one(record.id);
            let pack = match self.pack_table.find(hash, |&i| self.packs[i as usize].id == record.id) {
                Some(&pack) => pack,
                None => {
                    let pack = position(self.packs.len());
                    self.packs.push(PackSummary {
                        id: record.id,
                        chunks: position(record.entries.len()),
                        stored_bytes: record.entries.iter().map(|e| e.stored_len as u64).sum(),
                    });
                    let (packs, hasher) = (&self.packs, &self.hasher);
                    self.pack_table.insert_unique(hash, pack, |&i| hasher.hash_one(packs[i as usize].id));
                    pack
                }
            };
            self.chunks.reserve(record.entries.len());
            for e in &record.entries {
                let hash = self.hasher.hash_one(e.chunk);
                if self.chunk_table.find(hash, |&i| self.chunks[i as usize].id == e.chunk).is_some() {
                    continue;
                }
                let at = position(self.chunks.len());
                self.chunks.push(ChunkSlot {
                    id: e.chunk,
                    pack,
                    offset: e.offset,
                    stored_len: e.stored_len,
                    raw_len: e.raw_len,
                    encoding: e.encoding,
                });
                let (chunks, hasher) = (&self.chunks, &self.hasher);
                self.chunk_table.insert_unique(hash, at, |&i| hasher.hash_one(chunks[i as usize].id));
            }
        }

        self.objects.reserve(file.objects.len());
        for o in &file.objects {
            let id = ChunkId::from(o.key.id);
            let manifest = o.key.kind == ObjectKind::Manifest;
            let hash = self.hasher.hash_one((id, manifest));
            let same = |slot: &ObjectSlot| slot.id == id && (slot.count_kind & MANIFEST_BIT != 0) == manifest;
            if self.object_table.find(hash, |&i| same(&self.objects[i as usize])).is_some() {
                continue;
            }
            let count = position(o.chunks.len());
            let start = if o.chunks == [id] {
                OWN_ID
            } else {
                let start = position(self.arena.len());
                self.arena.extend_from_slice(&o.chunks);
                start
            };
            let at = position(self.objects.len());
            let count_kind = count | if manifest { MANIFEST_BIT } else { 0 };
            self.objects.push(ObjectSlot { id, size: o.size, start, count_kind });
            let (objects, hasher) = (&self.objects, &self.hasher);
            self.object_table.insert_unique(hash, at, |&i| {
                let slot = &objects[i as usize];
                hasher.hash_one((slot.id, slot.count_kind & MANIFEST_BIT != 0))
            });
        }
        true
    }

    pub fn chunk(&self, id: &ChunkId) -> Option<ChunkLocation> {
        let hash = self.hasher.hash_one(id);
        let &i = self.chunk_table.find(hash, |&i| self.chunks[i as usize].id == *id)?;
        Some(self.location(&self.chunks[i as usize]))
    }

    fn location(&self, s: &ChunkSlot) -> ChunkLocation {
        ChunkLocation {
            pack: self.packs[s.pack as usize].id,
            entry: PackEntry {
                chunk: s.id,
                offset: s.offset,
                stored_len: s.stored_len,
                raw_len: s.raw_len,
                encoding: s.encoding,
            },
        }
    }

    pub fn has_chunk(&self, id: &ChunkId) -> bool {
        self.chunk(id).is_some()
    }

    /// An object's size and chunks, in order.
    pub fn object(&self, key: &ObjectKey) -> Option<(u64, &[ChunkId])> {
        let id = ChunkId::from(key.id);
        let manifest = key.is_manifest();
        let hash = self.hasher.hash_one((id, manifest));
        let &i = self.object_table.find(hash, |&i| {
            let slot = &self.objects[i as usize];
            slot.id == id && (slot.count_kind & MANIFEST_BIT != 0) == manifest
        })?;
        let (_, size, chunks) = self.object_at(&self.objects[i as usize]);
        Some((size, chunks))
    }

    fn object_at<'a>(&'a self, slot: &'a ObjectSlot) -> (ObjectKey, u64, &'a [ChunkId]) {
        let key =
            ObjectKey::of(ObjectId::from_bytes(*slot.id.as_bytes()), slot.count_kind & MANIFEST_BIT != 0);
        let chunks = if slot.start == OWN_ID {
            std::slice::from_ref(&slot.id)
        } else {
            let start = slot.start as usize;
            &self.arena[start..start + (slot.count_kind & !MANIFEST_BIT) as usize]
        };
        (key, slot.size, chunks)
    }

    pub fn has_object(&self, key: &ObjectKey) -> bool {
        self.object(key).is_some()
    }

    /// Every object with its size and chunks, in the order first added.
    pub fn objects(&self) -> impl Iterator<Item = (ObjectKey, u64, &[ChunkId])> {
        self.objects.iter().map(|slot| self.object_at(slot))
    }

    /// Every chunk with its (first) location, grouped by the pack first listing it.
    pub fn chunks(&self) -> impl Iterator<Item = (ChunkId, ChunkLocation)> + '_ {
        self.chunks.iter().map(|s| (s.id, self.location(s)))
    }

    /// Every pack listed, in the order first added.
    pub fn packs(&self) -> &[PackSummary] {
        &self.packs
    }

    pub fn has_pack(&self, id: &PackId) -> bool {
        self.pack_table.find(self.hasher.hash_one(id), |&i| self.packs[i as usize].id == *id).is_some()
    }

    /// The index files added, in order.
    pub fn index_ids(&self) -> &[IndexId] {
        &self.index_ids
    }

    /// Index files that an added one supersedes: the remote's readers can skip them and
    /// prune can delete them.
    pub fn superseded(&self) -> &HashSet<IndexId> {
        &self.superseded
    }

    /// Whether an index file was added before one superseding it: its records (e.g.
    /// chunks in packs prune deleted) may linger, so build a new index skipping
    /// [`Self::superseded`] ones.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    pub fn object_count(&self) -> usize {
        self.objects.len()
    }

    pub fn pack_count(&self) -> usize {
        self.packs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::indexfile::tests::sample_index;
    use crate::pack::indexfile::{ObjectRecord, PackRecord};

    fn entry(chunk: ChunkId, offset: u32) -> PackEntry {
        PackEntry { chunk, offset, stored_len: 10, raw_len: 10, encoding: Encoding::Raw }
    }

    #[test]
    fn answers_for_chunks_objects_and_packs() {
        let file = sample_index();
        let mut index = RemoteIndex::default();
        let id = IndexFile::id_of(&file.encode());
        assert!(index.add(id, &file));
        assert!(!index.add(id, &file), "added once");
        let pack = &file.packs[0];
        for e in &pack.entries {
            assert_eq!(index.chunk(&e.chunk), Some(ChunkLocation { pack: pack.id, entry: *e }));
        }
        assert!(!index.has_chunk(&ChunkId::of_bytes(b"absent")));
        for o in &file.objects {
            assert_eq!(index.object(&o.key), Some((o.size, &o.chunks[..])));
        }
        let flipped = ObjectKey::of(file.objects[1].key.id, !file.objects[1].key.is_manifest());
        assert!(!index.has_object(&flipped), "a file and a manifest of one id are distinct");
        let listed: Vec<_> = index.objects().map(|(k, s, c)| (k, s, c.to_vec())).collect();
        let expected: Vec<_> = file.objects.iter().map(|o| (o.key, o.size, o.chunks.clone())).collect();
        assert_eq!(listed, expected);
        assert_eq!(
            index.packs(),
            &[PackSummary {
                id: pack.id,
                chunks: 3,
                stored_bytes: pack.entries.iter().map(|e| e.stored_len as u64).sum()
            }]
        );
        assert_eq!(index.chunks().count(), 3);
        assert_eq!((index.chunk_count(), index.object_count(), index.pack_count()), (3, 3, 1));
        assert_eq!(index.index_ids(), &[id]);
        assert!(index.superseded().contains(&file.supersedes[0]));
    }

    #[test]
    fn a_one_chunk_object_with_its_own_id_stores_no_chunk_list() {
        let oid = ObjectId::of_bytes(b"small file");
        let chunk = ChunkId::from(oid);
        let file = IndexFile {
            supersedes: vec![],
            packs: vec![PackRecord { id: PackId::of_bytes(b"p"), entries: vec![entry(chunk, 8)] }],
            objects: vec![ObjectRecord { key: ObjectKey::file(oid), size: 10, chunks: vec![chunk] }],
        };
        let mut index = RemoteIndex::default();
        index.add(IndexId::of_bytes(b"i"), &file);
        assert!(index.arena.is_empty());
        assert_eq!(index.object(&ObjectKey::file(oid)), Some((10, &[chunk][..])));
    }

    #[test]
    fn the_first_location_wins_and_superseding_is_tracked() {
        let chunk = ChunkId::of_bytes(b"c");
        let other = ChunkId::of_bytes(b"d");
        let (p1, p2) = (PackId::of_bytes(b"p1"), PackId::of_bytes(b"p2"));
        let first = IndexFile {
            supersedes: vec![],
            packs: vec![PackRecord { id: p1, entries: vec![entry(chunk, 8)] }],
            objects: vec![ObjectRecord {
                key: ObjectKey::file(ObjectId::of_bytes(b"o")),
                size: 10,
                chunks: vec![chunk],
            }],
        };
        let (i1, i2, i3) = (IndexId::of_bytes(b"1"), IndexId::of_bytes(b"2"), IndexId::of_bytes(b"3"));
        let second = IndexFile {
            supersedes: vec![i1],
            packs: vec![PackRecord { id: p2, entries: vec![entry(other, 8), entry(chunk, 18)] }],
            objects: vec![ObjectRecord {
                key: ObjectKey::file(ObjectId::of_bytes(b"o")),
                size: 99,
                chunks: vec![],
            }],
        };
        let mut index = RemoteIndex::default();
        assert!(index.add(i1, &first));
        assert!(!index.is_stale());
        assert!(index.add(i2, &second));
        assert!(index.is_stale(), "i1 was added before i2 superseded it");
        assert_eq!(index.chunk(&chunk).unwrap().pack, p1);
        assert_eq!(index.chunk(&other).unwrap().pack, p2);
        assert_eq!(index.object(&ObjectKey::file(ObjectId::of_bytes(b"o"))).unwrap().0, 10);
        assert_eq!(index.packs()[1].chunks, 2, "a pack's summary counts its duplicates too");
        assert_eq!(index.chunk_count(), 2);

        // Added in the other order, the superseded file is skipped.
        let mut index = RemoteIndex::default();
        assert!(index.add(i2, &second));
        assert!(!index.add(i1, &first));
        assert!(!index.is_stale());
        assert_eq!(index.chunk(&chunk).unwrap().pack, p2);
        assert_eq!(index.index_ids(), &[i2]);
        // A pack listed again by a later file is not counted twice; entries it did not list
        // before are merged.
        let late = ChunkId::of_bytes(b"late");
        let mut again = IndexFile { supersedes: vec![], packs: second.packs.clone(), objects: vec![] };
        again.packs[0].entries.push(entry(late, 28));
        assert!(index.add(i3, &again));
        assert_eq!(index.pack_count(), 1);
        assert_eq!(index.packs()[0].chunks, 2);
        assert_eq!(index.chunk(&late).unwrap().pack, p2);
        assert!(index.has_pack(&p2) && !index.has_pack(&p1));
    }

    #[test]
    fn many_packs_and_chunks_stay_findable_as_the_tables_grow() {
        let packs: Vec<PackRecord> = (0..1000u32)
            .map(|p| PackRecord {
                id: PackId::of_bytes(&p.to_le_bytes()),
                entries: (0..5)
                    .map(|c| entry(ChunkId::of_bytes(&(p * 5 + c).to_be_bytes()), 8 + 10 * c))
                    .collect(),
            })
            .collect();
        let mut index = RemoteIndex::default();
        index.add(
            IndexId::of_bytes(b"big"),
            &IndexFile { supersedes: vec![], packs: packs.clone(), objects: vec![] },
        );
        assert_eq!((index.pack_count(), index.chunk_count()), (1000, 5000));
        for record in &packs {
            assert!(index.has_pack(&record.id));
            for e in &record.entries {
                assert_eq!(index.chunk(&e.chunk), Some(ChunkLocation { pack: record.id, entry: *e }));
            }
        }
    }

    #[test]
    fn slots_stay_small() {
        assert_eq!(std::mem::size_of::<ChunkSlot>(), 52);
        assert_eq!(std::mem::size_of::<ObjectSlot>(), 48);
    }
}
