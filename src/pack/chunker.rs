//! Content-defined chunking: FastCDC 2020 over a stream, so a file is never read into
//! memory whole and an insertion moves only the cut points near it.

use std::io::Read;

use fastcdc::v2020::{Error as CdcError, StreamCDC};

use super::{CHUNK_AVG, CHUNK_MAX, CHUNK_MIN, ChunkId};
use crate::error::{Error, Result};

/// One chunk of a stream: where it starts, its id and its raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub offset: u64,
    pub id: ChunkId,
    pub data: Vec<u8>,
}

/// The chunks of a stream, one at a time (so a caller can stop between any two).
pub struct Chunks<R: Read> {
    cdc: StreamCDC<R>,
    name: String,
}

/// Cut `reader` into chunks, as an iterator; `name` names the input in a read error.
pub fn chunks<R: Read>(reader: R, name: &str) -> Chunks<R> {
    Chunks { cdc: StreamCDC::new(reader, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX), name: name.to_string() }
}

impl<R: Read> Iterator for Chunks<R> {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Result<Chunk>> {
        let chunk = self.cdc.next()?;
        Some(chunk.map_err(|e| read_error(&self.name, e)).map(|chunk| Chunk {
            offset: chunk.offset,
            id: ChunkId::of_bytes(&chunk.data),
            data: chunk.data,
        }))
    }
}

fn read_error(name: &str, e: CdcError) -> Error {
    match e {
        CdcError::IoError(cause) => Error::io(name, cause),
        other => Error::path(name, format!("chunking failed: {other}")),
    }
}

/// Cut `reader` into chunks, calling `each` with every one in order; returns the total
/// length. `name` (e.g. the file's path) names the input in a read error. An error from
/// `each` stops the chunking and is returned as it is.
pub fn chunk_stream(reader: impl Read, name: &str, mut each: impl FnMut(Chunk) -> Result<()>) -> Result<u64> {
    let mut total = 0u64;
    for chunk in chunks(reader, name) {
        let chunk = chunk?;
        total += chunk.data.len() as u64;
        each(chunk)?;
    }
    Ok(total)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashSet;

    pub(crate) fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 56) as u8
            })
            .collect()
    }

    fn chunks_of(data: &[u8]) -> Vec<Chunk> {
        let mut out = Vec::new();
        let total = chunk_stream(data, "test", |c| {
            out.push(c);
            Ok(())
        })
        .unwrap();
        assert_eq!(total, data.len() as u64);
        // The chunks cover the input exactly, in order, within the size bounds.
        let mut at = 0;
        for (i, c) in out.iter().enumerate() {
            assert_eq!(c.offset, at as u64);
            assert_eq!(&data[at..at + c.data.len()], &c.data[..]);
            assert_eq!(c.id, ChunkId::of_bytes(&c.data));
            assert!(c.data.len() <= CHUNK_MAX as usize);
            if i + 1 < out.len() {
                assert!(c.data.len() >= CHUNK_MIN as usize);
            }
            at += c.data.len();
        }
        out
    }

    fn ids(chunks: &[Chunk]) -> HashSet<ChunkId> {
        chunks.iter().map(|c| c.id).collect()
    }

    #[test]
    fn empty_and_small_inputs() {
        assert!(chunks_of(b"").is_empty());
        let small = pseudo_random(CHUNK_MIN as usize - 1, 1);
        let chunks = chunks_of(&small);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].id, ChunkId::from(crate::hash::ObjectId::of_bytes(&small)));
    }

    #[test]
    fn an_insertion_or_an_append_changes_only_nearby_chunks() {
        let original = pseudo_random(20 << 20, 42);
        let before = chunks_of(&original);
        assert!(before.len() >= 10, "{} chunks", before.len());
        let before_ids = ids(&before);

        let mut inserted = original.clone();
        let middle = original.len() / 2;
        inserted.splice(middle..middle, pseudo_random(1000, 7));
        let after = chunks_of(&inserted);
        let new = after.iter().filter(|c| !before_ids.contains(&c.id)).count();
        assert!(new <= 2, "{new} of {} chunks changed by an insertion", after.len());
        assert!(after.len() - new + 2 >= before.len());

        let mut appended = original.clone();
        appended.extend(pseudo_random(5000, 9));
        let after = chunks_of(&appended);
        let changed: Vec<usize> =
            after.iter().enumerate().filter(|(_, c)| !before_ids.contains(&c.id)).map(|(i, _)| i).collect();
        assert!(!changed.is_empty() && changed.len() <= 2, "{changed:?}");
        assert!(changed.iter().all(|&i| i + 2 >= after.len()), "{changed:?} of {}", after.len());
    }

    #[test]
    fn read_errors_and_callback_errors_are_returned() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let err = chunk_stream(Failing, "data/big.bin", |_| Ok(())).unwrap_err();
        assert!(
            err.to_string().contains("data/big.bin") && err.to_string().contains("disk on fire"),
            "{err}"
        );

        let data = pseudo_random(3 << 20, 3);
        let mut seen = 0;
        let err = chunk_stream(&data[..], "x", |_| {
            seen += 1;
            Err(Error::Usage("stop".into()))
        })
        .unwrap_err();
        assert_eq!(seen, 1);
        assert!(matches!(err, Error::Usage(_)));
    }
}
