//! Index files: which packs exist with which chunks, and which chunks make each object
//! (the byte layout is in the [module docs](super)). Write-once and named by their hash,
//! so concurrent pushes never overwrite each other's records.

use super::packfile::{ENTRY_LEN, PackEntry, parse_entries};
use super::{ChunkId, IndexId, PackId, format_error};
use crate::error::Result;
use crate::hash::{ObjectId, ObjectKey, ObjectKind};

const MAGIC: &[u8; 8] = b"TRVIDX01";

/// A pack and the entries of its trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackRecord {
    pub id: PackId,
    pub entries: Vec<PackEntry>,
}

/// An object: its size and its chunks in order (none for an empty file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    pub key: ObjectKey,
    pub size: u64,
    pub chunks: Vec<ChunkId>,
}

/// One index file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexFile {
    /// Index files whose content this one repeats: readers can drop them.
    pub supersedes: Vec<IndexId>,
    pub packs: Vec<PackRecord>,
    pub objects: Vec<ObjectRecord>,
}

/// Reads little-endian fields off the front of untrusted bytes; every read is checked.
struct Reader<'a> {
    rest: &'a [u8],
    name: &'a str,
    total: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, message: String) -> crate::error::Error {
        format_error(self.name, format!("at byte {}: {message}", self.total - self.rest.len()))
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(self.error(format!("truncated {what}")));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }

    fn id(&mut self, what: &str) -> Result<[u8; 32]> {
        Ok(self.take(32, what)?.try_into().expect("32 bytes"))
    }

    /// A count of items at least `min_item` bytes each, checked against what is left so
    /// a forged count cannot make the parser allocate more than the input accounts for.
    fn count(&mut self, min_item: usize, what: &str) -> Result<usize> {
        let n = self.u32(what)? as usize;
        if n.checked_mul(min_item).is_none_or(|need| need > self.rest.len()) {
            return Err(self.error(format!("{n} {what} cannot fit in the {} bytes left", self.rest.len())));
        }
        Ok(n)
    }
}

impl IndexFile {
    /// The name an index file of these bytes has.
    pub fn id_of(bytes: &[u8]) -> IndexId {
        IndexId::of_bytes(bytes)
    }

    pub fn encode(&self) -> Vec<u8> {
        let entries: usize = self.packs.iter().map(|p| p.entries.len()).sum();
        let chunks: usize = self.objects.iter().map(|o| o.chunks.len()).sum();
        let mut out = Vec::with_capacity(
            8 + 12
                + 32 * self.supersedes.len()
                + 36 * self.packs.len()
                + ENTRY_LEN * entries
                + 45 * self.objects.len()
                + 32 * chunks,
        );
        let count = |out: &mut Vec<u8>, n: usize| out.extend_from_slice(&(n as u32).to_le_bytes());
        out.extend_from_slice(MAGIC);
        count(&mut out, self.supersedes.len());
        for id in &self.supersedes {
            out.extend_from_slice(id.as_bytes());
        }
        count(&mut out, self.packs.len());
        for pack in &self.packs {
            out.extend_from_slice(pack.id.as_bytes());
            count(&mut out, pack.entries.len());
            for entry in &pack.entries {
                entry.write_to(&mut out);
            }
        }
        count(&mut out, self.objects.len());
        for object in &self.objects {
            out.extend_from_slice(object.key.id.as_bytes());
            out.push(match object.key.kind {
                ObjectKind::File => 0,
                ObjectKind::Manifest => 1,
            });
            out.extend_from_slice(&object.size.to_le_bytes());
            count(&mut out, object.chunks.len());
            for chunk in &object.chunks {
                out.extend_from_slice(chunk.as_bytes());
            }
        }
        out
    }

    /// Parse the index file `name`. Never panics; every malformed input is an
    /// [`crate::error::Error::Format`] naming the file and the byte where it went wrong.
    pub fn parse(bytes: &[u8], name: &str) -> Result<IndexFile> {
        let mut r = Reader { rest: bytes, name, total: bytes.len() };
        if r.take(MAGIC.len(), "magic").ok() != Some(&MAGIC[..]) {
            return Err(format_error(name, "not an index file (no TRVIDX01 at the start)"));
        }
        let n = r.count(32, "superseded index ids")?;
        let supersedes =
            (0..n).map(|_| r.id("superseded index id").map(IndexId::from_bytes)).collect::<Result<_>>()?;

        let n = r.count(36, "packs")?;
        let mut packs = Vec::with_capacity(n);
        for _ in 0..n {
            let id = PackId::from_bytes(r.id("pack id")?);
            let entries = r.count(ENTRY_LEN, "pack entries")?;
            let raw = r.take(entries * ENTRY_LEN, "pack entries")?;
            let entries = parse_entries(raw, None, &format!("{name} (pack {id})"))?;
            packs.push(PackRecord { id, entries });
        }

        let n = r.count(45, "objects")?;
        let mut objects = Vec::with_capacity(n);
        for _ in 0..n {
            let id = ObjectId::from_bytes(r.id("object id")?);
            let kind = match r.u8("object kind")? {
                0 => ObjectKind::File,
                1 => ObjectKind::Manifest,
                other => return Err(r.error(format!("object {id}: unknown kind {other}"))),
            };
            let size = r.u64("object size")?;
            let count = r.count(32, "object chunks")?;
            let chunks =
                (0..count).map(|_| r.id("chunk id").map(ChunkId::from_bytes)).collect::<Result<_>>()?;
            objects.push(ObjectRecord { key: ObjectKey { id, kind }, size, chunks });
        }
        if !r.rest.is_empty() {
            return Err(r.error(format!("{} bytes after the last object", r.rest.len())));
        }
        Ok(IndexFile { supersedes, packs, objects })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error::Error;
    use crate::pack::packfile::tests::sample_pack;

    pub(crate) fn sample_index() -> IndexFile {
        let (pack, _) = sample_pack();
        let chunks: Vec<ChunkId> = pack.entries.iter().map(|e| e.chunk).collect();
        IndexFile {
            supersedes: vec![IndexId::of_bytes(b"old index")],
            packs: vec![PackRecord { id: pack.id, entries: pack.entries }],
            objects: vec![
                ObjectRecord {
                    key: ObjectKey::file(ObjectId::of_bytes(b"two")),
                    size: 70_000,
                    chunks: chunks[..2].to_vec(),
                },
                ObjectRecord {
                    key: ObjectKey::manifest(ObjectId::of_bytes(b"tiny")),
                    size: 4,
                    chunks: vec![chunks[2]],
                },
                ObjectRecord { key: ObjectKey::file(ObjectId::of_bytes(b"")), size: 0, chunks: vec![] },
            ],
        }
    }

    fn message(bytes: &[u8]) -> String {
        match IndexFile::parse(bytes, "index/i") {
            Err(Error::Format { name, message }) => {
                assert!(name.starts_with("index/i"), "{name}");
                message
            }
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn round_trips() {
        for file in [IndexFile::default(), sample_index()] {
            let bytes = file.encode();
            assert_eq!(IndexFile::parse(&bytes, "i").unwrap(), file);
            assert_eq!(IndexFile::id_of(&bytes), IndexId::of_bytes(&bytes));
        }
        assert_eq!(IndexFile::default().encode().len(), 8 + 12);
    }

    #[test]
    fn rejects_every_malformation() {
        let good = sample_index().encode();
        assert!(message(b"TRVIDX0").contains("no TRVIDX01"));
        assert!(message(b"TRVIDX02\0\0\0\0\0\0\0\0\0\0\0\0").contains("no TRVIDX01"));
        // Every truncation fails cleanly.
        for len in 8..good.len() {
            let m = message(&good[..len]);
            assert!(m.contains("truncated") || m.contains("cannot fit"), "{len}: {m}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(message(&trailing).contains("1 bytes after the last object"));
        // A forged count is refused before anything is allocated for it.
        let mut huge = good.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(message(&huge).contains("4294967295 superseded index ids cannot fit"));
        // Offsets: magic 8, supersedes 4 + 32, packs count 4, pack id 32, entry count 4.
        let entries_at = 8 + 36 + 4 + 32 + 4;
        let mut bad = good.clone();
        bad[entries_at + 44] = 9;
        let m = message(&bad);
        assert!(m.contains("entry 0: unknown encoding 9"), "{m}");
        let mut bad = good.clone();
        bad[entries_at + 45 + 32..entries_at + 45 + 36].copy_from_slice(&8u32.to_le_bytes());
        assert!(message(&bad).contains("overlaps"));
        let objects_at = entries_at + 3 * ENTRY_LEN + 4;
        let mut bad = good.clone();
        bad[objects_at + 32] = 2;
        let m = message(&bad);
        assert!(m.contains("unknown kind 2"), "{m}");
        let mut bad = good.clone();
        bad[objects_at + 41..objects_at + 45].copy_from_slice(&1000u32.to_le_bytes());
        assert!(message(&bad).contains("cannot fit"));
    }

    /// Small real index files: parsed here, and written to `$TROVE_WRITE_SEEDS/index_file/`
    /// as the fuzz target's seeds when that is set.
    #[test]
    fn seed_index_files_parse() {
        let seeds = [("empty", IndexFile::default()), ("sample", sample_index())];
        for (_, file) in &seeds {
            assert_eq!(&IndexFile::parse(&file.encode(), "seed").unwrap(), file);
        }
        if let Ok(dir) = std::env::var("TROVE_WRITE_SEEDS") {
            let dir = std::path::Path::new(&dir).join("index_file");
            std::fs::create_dir_all(&dir).unwrap();
            for (name, file) in &seeds {
                std::fs::write(dir.join(name), file.encode()).unwrap();
            }
        }
    }
}
