//! Pack files: stored chunks back to back, then a trailer listing them (the byte layout is
//! in the [module docs](super)). The trailer is at the end so a writer can stream chunks
//! out before it knows them all, and a reader needs only the pack's tail to list it.

use std::collections::HashSet;

use super::compress::{self, Encoding};
use super::{CHUNK_MAX, ChunkId, PackId, format_error};
use crate::error::Result;

const MAGIC: &[u8; 8] = b"TRVPACK1";
const VERSION: u8 = 1;
/// Where the first stored chunk starts.
const HEADER_LEN: usize = MAGIC.len();
/// The trailer's length field and the closing magic.
const FOOTER_LEN: usize = 4 + MAGIC.len();
/// The trailer's version byte and entry count.
const TRAILER_HEAD: usize = 1 + 4;
/// One entry: chunk id, offset, stored length, raw length, encoding.
pub(crate) const ENTRY_LEN: usize = 32 + 4 + 4 + 4 + 1;

/// How many bytes at a pack's end to fetch first: the whole trailer of a pack of up to
/// ~360 entries (a full pack of 1 MiB chunks has ~16), so one read nearly always suffices.
pub const TAIL_GUESS: usize = 16 << 10;

/// Where one chunk is in a pack, and how it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PackEntry {
    pub chunk: ChunkId,
    pub offset: u32,
    pub stored_len: u32,
    pub raw_len: u32,
    pub encoding: Encoding,
}

impl PackEntry {
    /// The byte just past the stored chunk.
    pub fn end(&self) -> u64 {
        self.offset as u64 + self.stored_len as u64
    }

    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.chunk.as_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.stored_len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.push(self.encoding as u8);
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// The most bytes a chunk of `raw_len` bytes may take stored.
fn stored_limit(encoding: Encoding, raw_len: u32) -> u64 {
    match encoding {
        Encoding::Raw => raw_len as u64,
        Encoding::Zstd => zstd::zstd_safe::compress_bound(raw_len as usize) as u64,
    }
}

/// Whether an entry's lengths are possible; `None` if so, else why not.
fn length_problem(encoding: Encoding, stored_len: u32, raw_len: u32) -> Option<String> {
    if raw_len > CHUNK_MAX {
        Some(format!("raw length {raw_len} exceeds the largest chunk, {CHUNK_MAX}"))
    } else if encoding == Encoding::Raw && stored_len != raw_len {
        Some(format!("a raw chunk of {raw_len} bytes stored in {stored_len}"))
    } else if stored_len as u64 > stored_limit(encoding, raw_len) {
        Some(format!("stored length {stored_len} exceeds zstd's bound for {raw_len} bytes"))
    } else {
        None
    }
}

/// Parse `bytes`, a whole number of entries, as a pack lists them: in offset order, not
/// overlapping, after the header and (when the pack's blob area is known) before
/// `blob_end`. Allocates only for entries present in `bytes`.
pub(crate) fn parse_entries(bytes: &[u8], blob_end: Option<u64>, name: &str) -> Result<Vec<PackEntry>> {
    debug_assert_eq!(bytes.len() % ENTRY_LEN, 0);
    let mut entries = Vec::with_capacity(bytes.len() / ENTRY_LEN);
    let mut next_free = HEADER_LEN as u64;
    for (i, raw) in bytes.chunks_exact(ENTRY_LEN).enumerate() {
        let bad = |message: String| format_error(name, format!("entry {i}: {message}"));
        let chunk = ChunkId::from_bytes(raw[..32].try_into().expect("32 bytes"));
        let (offset, stored_len, raw_len) = (u32_at(raw, 32), u32_at(raw, 36), u32_at(raw, 40));
        let encoding =
            Encoding::from_byte(raw[44]).ok_or_else(|| bad(format!("unknown encoding {}", raw[44])))?;
        if let Some(problem) = length_problem(encoding, stored_len, raw_len) {
            return Err(bad(problem));
        }
        let entry = PackEntry { chunk, offset, stored_len, raw_len, encoding };
        if (offset as u64) < next_free {
            return Err(bad(format!("offset {offset} overlaps the header or the previous entry")));
        }
        if let Some(end) = blob_end
            && entry.end() > end
        {
            return Err(bad(format!("ends at {}, past the trailer at {end}", entry.end())));
        }
        next_free = entry.end();
        entries.push(entry);
    }
    Ok(entries)
}

/// A pack being written, in memory (a pack is at most ~[`super::PACK_TARGET`] plus one
/// chunk, so buffering it whole is cheap and makes it one upload of known length).
pub struct PackWriter {
    bytes: Vec<u8>,
    entries: Vec<PackEntry>,
    chunks: HashSet<ChunkId>,
}

/// A finished pack: its name, its bytes, and what it holds.
#[derive(Debug, Clone)]
pub struct FinishedPack {
    pub id: PackId,
    pub bytes: Vec<u8>,
    pub entries: Vec<PackEntry>,
}

impl Default for PackWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl PackWriter {
    pub fn new() -> Self {
        let mut bytes = Vec::with_capacity(super::PACK_TARGET + CHUNK_MAX as usize / 4);
        bytes.extend_from_slice(MAGIC);
        PackWriter { bytes, entries: Vec::new(), chunks: HashSet::new() }
    }

    /// Add a chunk from its raw bytes, compressed when that pays. A chunk the pack already
    /// holds is not added again.
    pub fn add(&mut self, id: ChunkId, raw: &[u8]) -> Result<()> {
        debug_assert_eq!(id, ChunkId::of_bytes(raw), "a chunk is named by its raw bytes");
        if self.contains(&id) {
            return Ok(());
        }
        let (encoding, stored) = compress::encode(raw);
        self.add_encoded(id, encoding, &stored, raw.len())
    }

    /// Add a chunk already stored (from another pack, when repacking) without decoding it.
    /// Fails when the lengths could not be parsed back, or the pack would outgrow the u32
    /// offsets of its trailer.
    pub fn add_encoded(
        &mut self,
        id: ChunkId,
        encoding: Encoding,
        stored: &[u8],
        raw_len: usize,
    ) -> Result<()> {
        if self.contains(&id) {
            return Ok(());
        }
        let bad = |message: String| format_error("new pack", format!("chunk {id}: {message}"));
        let (Ok(stored_len), Ok(raw_len)) = (u32::try_from(stored.len()), u32::try_from(raw_len)) else {
            return Err(bad("too large for a pack".into()));
        };
        if let Some(problem) = length_problem(encoding, stored_len, raw_len) {
            return Err(bad(problem));
        }
        let Some(offset) =
            u32::try_from(self.bytes.len()).ok().filter(|o| o.checked_add(stored_len).is_some())
        else {
            return Err(bad("the pack is full (offsets are 32-bit)".into()));
        };
        self.bytes.extend_from_slice(stored);
        self.entries.push(PackEntry { chunk: id, offset, stored_len, raw_len, encoding });
        self.chunks.insert(id);
        Ok(())
    }

    /// The pack's length so far, without its trailer: finish it once this reaches
    /// [`super::PACK_TARGET`].
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether no chunk has been added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, id: &ChunkId) -> bool {
        self.chunks.contains(id)
    }

    /// Write the trailer and name the pack.
    pub fn finish(self) -> FinishedPack {
        let PackWriter { mut bytes, entries, .. } = self;
        let trailer_len = TRAILER_HEAD + ENTRY_LEN * entries.len();
        bytes.reserve(trailer_len + FOOTER_LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for entry in &entries {
            entry.write_to(&mut bytes);
        }
        bytes.extend_from_slice(&(trailer_len as u32).to_le_bytes());
        bytes.extend_from_slice(MAGIC);
        FinishedPack { id: PackId::of_bytes(&bytes), bytes, entries }
    }
}

/// What a pack's tail says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// The whole trailer was in the tail: the pack's entries.
    Entries(Vec<PackEntry>),
    /// The trailer starts before the tail given: fetch the pack from `trailer_start` to
    /// its end and parse that.
    NeedMore { trailer_start: u64 },
}

/// Parse the last `tail.len()` bytes of the pack `name` of `pack_len` bytes. Checks the
/// magic, version and lengths, and that every entry lies in the blob area; never panics
/// and allocates only for entries present in `tail`.
pub fn parse_tail(tail: &[u8], pack_len: u64, name: &str) -> Result<Tail> {
    let bad = |message: String| format_error(name, message);
    let min_len = (HEADER_LEN + TRAILER_HEAD + FOOTER_LEN) as u64;
    if pack_len < min_len {
        return Err(bad(format!("{pack_len} bytes is too short for a pack")));
    }
    if tail.len() as u64 > pack_len {
        return Err(bad(format!("a tail of {} bytes is longer than the pack, {pack_len}", tail.len())));
    }
    if tail.len() < FOOTER_LEN {
        return Err(bad(format!("a tail of {} bytes is too short to hold the footer", tail.len())));
    }
    if tail.len() as u64 == pack_len && &tail[..HEADER_LEN] != MAGIC {
        return Err(bad("not a pack file (no TRVPACK1 at the start)".into()));
    }
    let footer = &tail[tail.len() - FOOTER_LEN..];
    if &footer[4..] != MAGIC {
        return Err(bad("not a pack file (no TRVPACK1 at the end)".into()));
    }
    let trailer_len = u32_at(footer, 0) as u64;
    let trailer_start = (pack_len - FOOTER_LEN as u64)
        .checked_sub(trailer_len)
        .filter(|&start| start >= HEADER_LEN as u64 && trailer_len >= TRAILER_HEAD as u64)
        .ok_or_else(|| {
            bad(format!("trailer length {trailer_len} does not fit a pack of {pack_len} bytes"))
        })?;
    let available = (tail.len() - FOOTER_LEN) as u64;
    if available < trailer_len {
        return Ok(Tail::NeedMore { trailer_start });
    }
    let trailer = &tail[(available - trailer_len) as usize..tail.len() - FOOTER_LEN];
    if trailer[0] != VERSION {
        return Err(bad(format!("pack version {} (this trove reads version {VERSION})", trailer[0])));
    }
    let count = u32_at(trailer, 1) as u64;
    if TRAILER_HEAD as u64 + count * ENTRY_LEN as u64 != trailer_len {
        return Err(bad(format!("{count} entries do not fill a trailer of {trailer_len} bytes")));
    }
    parse_entries(&trailer[TRAILER_HEAD..], Some(trailer_start), name).map(Tail::Entries)
}

/// A chunk's raw bytes from its `stored` bytes in the pack `pack`, checked against its id.
pub fn decode_chunk(stored: &[u8], entry: &PackEntry, pack: &str) -> Result<Vec<u8>> {
    let bad = |message: String| format_error(pack, format!("chunk {}: {message}", entry.chunk));
    if stored.len() as u64 != entry.stored_len as u64 {
        return Err(bad(format!("{} bytes given, {} stored", stored.len(), entry.stored_len)));
    }
    let raw = compress::decode_bytes(entry.encoding, stored, entry.raw_len as usize).map_err(bad)?;
    let actual = ChunkId::of_bytes(&raw);
    if actual != entry.chunk {
        return Err(bad(format!("content hashes to {actual}")));
    }
    Ok(raw)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error::Error;
    use crate::pack::chunker::tests::pseudo_random;
    use crate::pack::compress::tests::text_like;

    /// A pack of a compressible and an incompressible chunk, and their raw bytes.
    pub(crate) fn sample_pack() -> (FinishedPack, Vec<Vec<u8>>) {
        let chunks = vec![text_like(50_000), pseudo_random(20_000, 3), b"tiny".to_vec()];
        let mut writer = PackWriter::new();
        assert!(writer.is_empty());
        for raw in &chunks {
            writer.add(ChunkId::of_bytes(raw), raw).unwrap();
        }
        (writer.finish(), chunks)
    }

    fn entries(tail: &[u8], pack_len: u64) -> Result<Vec<PackEntry>> {
        match parse_tail(tail, pack_len, "packs/p")? {
            Tail::Entries(e) => Ok(e),
            Tail::NeedMore { trailer_start } => panic!("needs more from {trailer_start}"),
        }
    }

    fn message(err: Error) -> String {
        match err {
            Error::Format { name, message } => {
                assert_eq!(name, "packs/p");
                message
            }
            other => panic!("not a format error: {other}"),
        }
    }

    #[test]
    fn round_trip_through_the_tail() {
        let (pack, chunks) = sample_pack();
        assert_eq!(pack.id, PackId::of_bytes(&pack.bytes));
        assert_eq!(pack.entries.len(), 3);
        assert_eq!(pack.entries[0].encoding, Encoding::Zstd);
        assert_eq!(pack.entries[1].encoding, Encoding::Raw);
        let len = pack.bytes.len() as u64;
        let parsed = entries(&pack.bytes, len).unwrap();
        assert_eq!(parsed, pack.entries);
        let tail = &pack.bytes[pack.bytes.len() - TAIL_GUESS.min(pack.bytes.len())..];
        assert_eq!(entries(tail, len).unwrap(), pack.entries);
        for (entry, raw) in parsed.iter().zip(&chunks) {
            let stored = &pack.bytes[entry.offset as usize..entry.end() as usize];
            assert_eq!(&decode_chunk(stored, entry, "packs/p").unwrap(), raw);
        }
    }

    #[test]
    fn a_short_tail_asks_for_the_trailer() {
        let (pack, _) = sample_pack();
        let len = pack.bytes.len() as u64;
        let tail = &pack.bytes[pack.bytes.len() - 20..];
        let Tail::NeedMore { trailer_start } = parse_tail(tail, len, "packs/p").unwrap() else {
            panic!("20 bytes cannot hold 3 entries")
        };
        assert_eq!(trailer_start, pack.entries.last().unwrap().end());
        assert_eq!(entries(&pack.bytes[trailer_start as usize..], len).unwrap(), pack.entries);
    }

    #[test]
    fn the_writer_skips_duplicates_and_repacks_without_recompressing() {
        let (pack, chunks) = sample_pack();
        let mut writer = PackWriter::new();
        let id = ChunkId::of_bytes(&chunks[0]);
        writer.add(id, &chunks[0]).unwrap();
        let len = writer.len();
        writer.add(id, &chunks[0]).unwrap();
        assert_eq!(writer.len(), len);
        assert!(writer.contains(&id) && !writer.is_empty());

        let mut repack = PackWriter::new();
        for e in pack.entries.iter().rev() {
            repack
                .add_encoded(
                    e.chunk,
                    e.encoding,
                    &pack.bytes[e.offset as usize..e.end() as usize],
                    e.raw_len as usize,
                )
                .unwrap();
        }
        let repacked = repack.finish();
        for (e, raw) in repacked.entries.iter().zip(chunks.iter().rev()) {
            assert_eq!(
                &decode_chunk(&repacked.bytes[e.offset as usize..e.end() as usize], e, "p").unwrap(),
                raw
            );
        }
        let empty = PackWriter::new().finish();
        assert_eq!(entries(&empty.bytes, empty.bytes.len() as u64).unwrap(), vec![]);

        let mut w = PackWriter::new();
        assert!(w.add_encoded(id, Encoding::Raw, b"abc", 4).is_err(), "raw lengths differ");
        assert!(w.add_encoded(id, Encoding::Zstd, b"abc", CHUNK_MAX as usize + 1).is_err(), "too large");
        assert!(w.is_empty());
    }

    #[test]
    fn decode_chunk_names_the_chunk_and_the_pack() {
        let (pack, _) = sample_pack();
        let e = pack.entries[1];
        let mut stored = pack.bytes[e.offset as usize..e.end() as usize].to_vec();
        stored[0] ^= 1;
        let m = message(decode_chunk(&stored, &e, "packs/p").unwrap_err());
        assert!(m.contains(&e.chunk.to_hex()) && m.contains("hashes to"), "{m}");
        let m = message(decode_chunk(&stored[1..], &e, "packs/p").unwrap_err());
        assert!(m.contains("stored"), "{m}");
        let z = pack.entries[0];
        let m = message(decode_chunk(&vec![0; z.stored_len as usize], &z, "packs/p").unwrap_err());
        assert!(m.contains("zstd"), "{m}");
    }

    /// The sample pack with entry fields rewritten: (entry, field offset, new bytes).
    fn with_entries(edits: &[(usize, usize, &[u8])]) -> Vec<u8> {
        let (pack, _) = sample_pack();
        let mut bytes = pack.bytes;
        let trailer = bytes.len() - FOOTER_LEN - TRAILER_HEAD - 3 * ENTRY_LEN;
        for &(i, field, value) in edits {
            let at = trailer + TRAILER_HEAD + i * ENTRY_LEN + field;
            bytes[at..at + value.len()].copy_from_slice(value);
        }
        bytes
    }

    fn with_entry(i: usize, field: usize, value: &[u8]) -> Vec<u8> {
        with_entries(&[(i, field, value)])
    }

    #[test]
    fn rejects_malformed_tails() {
        let (pack, _) = sample_pack();
        let good = pack.bytes;
        let len = good.len() as u64;
        let reject = |bytes: &[u8], pack_len: u64, what: &str| {
            let m = message(parse_tail(bytes, pack_len, "packs/p").unwrap_err());
            assert!(m.contains(what), "expected `{what}` in `{m}`");
        };
        reject(&good[..10], 10, "too short for a pack");
        reject(&good, len - 1, "longer than the pack");
        reject(&good[good.len() - 11..], len, "too short to hold the footer");
        let mut b = good.clone();
        b[0] = b'X';
        reject(&b, len, "at the start");
        let mut b = good.clone();
        *b.last_mut().unwrap() = b'X';
        reject(&b, len, "at the end");
        let footer = good.len() - FOOTER_LEN;
        let mut b = good.clone();
        b[footer..footer + 4].copy_from_slice(&(len as u32).to_le_bytes());
        reject(&b, len, "does not fit");
        b[footer..footer + 4].copy_from_slice(&4u32.to_le_bytes());
        reject(&b, len, "does not fit");
        let trailer = footer - TRAILER_HEAD - 3 * ENTRY_LEN;
        let mut b = good.clone();
        b[trailer] = 2;
        reject(&b, len, "pack version 2");
        let mut b = good.clone();
        b[trailer + 1..trailer + 5].copy_from_slice(&u32::MAX.to_le_bytes());
        reject(&b, len, "do not fill");
        b[trailer + 1..trailer + 5].copy_from_slice(&2u32.to_le_bytes());
        reject(&b, len, "do not fill");

        // Entry fields: offset 32, stored length 36, raw length 40, encoding 44.
        reject(&with_entry(0, 44, &[7]), len, "unknown encoding 7");
        reject(&with_entry(1, 40, &(CHUNK_MAX + 1).to_le_bytes()), len, "exceeds the largest chunk");
        reject(
            &with_entry(1, 40, &19_999u32.to_le_bytes()),
            len,
            "a raw chunk of 19999 bytes stored in 20000",
        );
        reject(&with_entry(0, 40, &10u32.to_le_bytes()), len, "exceeds zstd's bound");
        reject(&with_entry(0, 32, &0u32.to_le_bytes()), len, "overlaps the header");
        reject(&with_entry(1, 32, &9u32.to_le_bytes()), len, "overlaps the header or the previous entry");
        let trailer_start = trailer as u32;
        reject(&with_entry(2, 32, &(trailer_start - 3).to_le_bytes()), len, "past the trailer");
        // A gap between entries is allowed: only overlaps are refused.
        let shorter = 19_999u32.to_le_bytes();
        let gap = with_entries(&[(1, 36, &shorter), (1, 40, &shorter)]);
        assert_eq!(entries(&gap, len).unwrap()[1].end() + 1, pack.entries[2].offset as u64);
    }

    /// Small real packs: parsed here, and written to `$TROVE_WRITE_SEEDS/pack_tail/` as
    /// the fuzz target's seeds when that is set.
    #[test]
    fn seed_packs_parse() {
        let mut one = PackWriter::new();
        one.add(ChunkId::of_bytes(b"hello"), b"hello").unwrap();
        let text = text_like(3000);
        let mut two = PackWriter::new();
        two.add(ChunkId::of_bytes(&text), &text).unwrap();
        two.add(ChunkId::of_bytes(b"x"), b"x").unwrap();
        let seeds = [
            ("one-raw", one.finish()),
            ("raw-and-zstd", two.finish()),
            ("empty", PackWriter::new().finish()),
        ];
        for (_, pack) in &seeds {
            assert_eq!(entries(&pack.bytes, pack.bytes.len() as u64).unwrap(), pack.entries);
        }
        if let Ok(dir) = std::env::var("TROVE_WRITE_SEEDS") {
            let dir = std::path::Path::new(&dir).join("pack_tail");
            std::fs::create_dir_all(&dir).unwrap();
            for (name, pack) in &seeds {
                std::fs::write(dir.join(name), &pack.bytes).unwrap();
            }
        }
    }
}
