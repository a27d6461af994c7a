//! The formats of remote layout 2: content-defined chunks, compressed, in write-once pack
//! files, plus write-once index files saying where every chunk is and which chunks make
//! every object. This module only encodes, parses and indexes; moving the files is the
//! transfer engine's job.
//!
//! # Chunks
//!
//! A file's content is cut by FastCDC (the 2020 variant, normalisation level 1, gear seed
//! 0) into chunks of [`CHUNK_MIN`]..=[`CHUNK_MAX`] bytes, [`CHUNK_AVG`] on average. The
//! last chunk may be shorter than the minimum; an empty file has no chunks. A chunk is
//! named by the BLAKE3-256 of its raw bytes ([`ChunkId`]), so a file of one chunk has a
//! chunk id equal to its object id. The cut points depend only on the content, so an edit
//! in the middle of a large file changes one or two chunks, not every chunk after it.
//!
//! Every chunk is stored either raw (encoding 0) or as one zstd frame (encoding 1); see
//! [`compress`].
//!
//! # Pack files
//!
//! A pack holds stored chunks back to back; a writer finishes it once it reaches
//! [`PACK_TARGET`] bytes. All integers are little-endian.
//!
//! ```text
//! offset  size            content
//! 0       8               magic "TRVPACK1"
//! 8       …               the stored chunks, back to back, in entry order
//! T       1               trailer: version, 1
//! T+1     4               entry count N (u32)
//! T+5     45 × N          entries: chunk id (32 B), offset (u32), stored length (u32),
//!                         raw length (u32), encoding (u8)
//! E-12    4               trailer length E-12-T = 5 + 45 × N (u32)
//! E-8     8               magic "TRVPACK1" again (E is the pack's length)
//! ```
//!
//! A reader fetches the last [`packfile::TAIL_GUESS`] bytes, learns the trailer's length
//! from the 12 bytes at the end, and needs at most one more ranged read for the rest of
//! the trailer. Entries are in offset order, do not overlap, and lie between the header
//! and the trailer; a raw length is at most [`CHUNK_MAX`], a stored length at most zstd's
//! bound for the raw length (exactly the raw length for encoding 0). A pack is named by
//! the hex BLAKE3 of all its bytes ([`PackId`]).
//!
//! # Index files
//!
//! An index file records packs and objects; it is written once, never changed, and named
//! by the hex BLAKE3 of its bytes ([`IndexId`]). Readers merge all of them into a
//! [`RemoteIndex`]. Integers are little-endian; every count is a u32.
//!
//! ```text
//! 8               magic "TRVIDX01"
//! 4 + 32 × n      supersedes: count n, then n index ids: the index files whose content
//!                 this one repeats (written by prune), which readers can drop
//! 4 + …           packs: count, then per pack: pack id (32 B), entry count N (u32),
//!                 N entries of 45 B exactly as in the pack's trailer
//! 4 + …           objects: count, then per object: object id (32 B), kind (u8: 0 file,
//!                 1 manifest), size (u64), chunk count C (u32), C chunk ids (32 B each)
//! ```
//!
//! Nothing may follow the objects. Every parse error is an [`Error::Format`] naming the
//! pack or index file; parsers never panic and allocate only what the input's length
//! accounts for, so a hostile remote can make a transfer fail, not crash or exhaust memory.

pub mod chunker;
pub mod compress;
mod ids;
pub mod index;
pub mod indexfile;
pub mod packfile;

pub use chunker::{Chunk, Chunks, chunk_stream, chunks};
pub use compress::{Encoding, decode, encode};
pub use ids::{ChunkId, IndexId, PackId, ParseHexError};
pub use index::{ChunkLocation, PackSummary, RemoteIndex};
pub use indexfile::{IndexFile, ObjectRecord, PackRecord};
pub use packfile::{FinishedPack, PackEntry, PackWriter, TAIL_GUESS, Tail, decode_chunk, parse_tail};

use crate::error::Error;

/// The smallest chunk the chunker cuts (except a file's last).
pub const CHUNK_MIN: u32 = 256 << 10;
/// The chunk size the chunker aims for.
pub const CHUNK_AVG: u32 = 1 << 20;
/// The largest chunk: no entry's raw length may exceed it.
pub const CHUNK_MAX: u32 = 4 << 20;
/// A pack is finished once it holds this many bytes: large enough that a push of many
/// small files makes few uploads, small enough to fetch whole when most of it is wanted.
pub const PACK_TARGET: usize = 16 << 20;

/// The error for malformed bytes in the pack or index file `name`.
pub(crate) fn format_error(name: &str, message: impl Into<String>) -> Error {
    Error::Format { name: name.to_string(), message: message.into() }
}
