//! How much memory and time a RemoteIndex of 1,000,000 chunks takes, loaded as the
//! transfer engine loads a remote: index files read one at a time, parsed, merged, dropped.
//!
//!   cargo bench --bench index_memory
//!
//! Prints the peak resident memory (VmHWM) of the loading phase and its wall time. The
//! synthetic remote: packs of 16 chunks of ~1 MiB; 900,000 objects of one chunk (whose id
//! is the object's own, as for every file below the minimum chunk size) and 25,000 of four;
//! spread over 64 index files, as many pushes would write them.
//!
//! Measured on the 2-core development machine: 136 MB peak (131 MB resident after loading,
//! 7 MB before), 1.65 s for 121 MB of index files.

use std::time::Instant;

use trove::hash::{ObjectId, ObjectKey};
use trove::pack::{ChunkId, Encoding, IndexFile, ObjectRecord, PackEntry, PackId, PackRecord, RemoteIndex};

const SINGLE: usize = 900_000;
const MULTI: usize = 25_000;
const PER_MULTI: usize = 4;
const FILES: usize = 64;
const PER_PACK: usize = 16;

fn status(field: &str) -> String {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    status
        .lines()
        .find(|l| l.starts_with(field))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn id(n: u64, salt: u8) -> [u8; 32] {
    let mut input = [salt; 9];
    input[..8].copy_from_slice(&n.to_le_bytes());
    *blake3::hash(&input).as_bytes()
}

/// Index file `f` of `FILES`: its share of the objects and the packs holding their chunks.
fn index_file(f: usize) -> IndexFile {
    let mut objects = Vec::new();
    for n in (f..SINGLE).step_by(FILES) {
        let oid = ObjectId::from_bytes(id(n as u64, 0));
        objects.push(ObjectRecord {
            key: ObjectKey::file(oid),
            size: 1 << 20,
            chunks: vec![ChunkId::from(oid)],
        });
    }
    for n in (f..MULTI).step_by(FILES) {
        let chunks = (0..PER_MULTI).map(|c| ChunkId::from_bytes(id((n * PER_MULTI + c) as u64, 1))).collect();
        let key = ObjectKey::of(ObjectId::from_bytes(id(n as u64, 2)), n % 10 == 0);
        objects.push(ObjectRecord { key, size: (PER_MULTI as u64) << 20, chunks });
    }
    let chunks: Vec<ChunkId> = objects.iter().flat_map(|o| o.chunks.iter().copied()).collect();
    let packs = chunks
        .chunks(PER_PACK)
        .enumerate()
        .map(|(p, group)| {
            let mut offset = 8u32;
            let entries = group
                .iter()
                .map(|&chunk| {
                    let len = (1 << 20) - (chunk.as_bytes()[0] as u32) * 64;
                    let e =
                        PackEntry { chunk, offset, stored_len: len, raw_len: len, encoding: Encoding::Raw };
                    offset += len;
                    e
                })
                .collect();
            PackRecord { id: PackId::from_bytes(id((f * 1_000_000 + p) as u64, 3)), entries }
        })
        .collect();
    IndexFile { supersedes: vec![], packs, objects }
}

fn main() {
    let dir = tempfile::tempdir().expect("a temp folder");
    let mut names = Vec::new();
    let mut bytes_total = 0;
    for f in 0..FILES {
        let bytes = index_file(f).encode();
        bytes_total += bytes.len();
        let path = dir.path().join(IndexFile::id_of(&bytes).to_hex());
        std::fs::write(&path, &bytes).expect("write an index file");
        names.push(path);
    }
    // Forget the generation phase's peak: only loading is measured.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status("VmRSS:");

    let start = Instant::now();
    let mut index = RemoteIndex::default();
    for path in &names {
        let bytes = std::fs::read(path).expect("read an index file");
        let file = IndexFile::parse(&bytes, &path.to_string_lossy()).expect("a valid index file");
        index.add(IndexFile::id_of(&bytes), &file);
    }
    let elapsed = start.elapsed();

    assert_eq!(index.chunk_count(), SINGLE + MULTI * PER_MULTI);
    assert_eq!(index.object_count(), SINGLE + MULTI);
    println!("index files: {FILES}, {:.1} MB in all", bytes_total as f64 / 1e6);
    println!(
        "loaded: {} chunks, {} objects, {} packs in {:.2} s (read + parse + add)",
        index.chunk_count(),
        index.object_count(),
        index.pack_count(),
        elapsed.as_secs_f64()
    );
    println!("VmRSS before loading: {before}");
    println!("VmRSS after loading: {}", status("VmRSS:"));
    println!(
        "VmHWM (peak){}: {}",
        if reset { " of the loading phase" } else { " of the whole run" },
        status("VmHWM:")
    );
}
