//! How a chunk is stored: zstd when it pays, raw otherwise.
//!
//! Level 3 (zstd's default), chosen by `tests::throughput` (release build, `--nocapture`)
//! on this project's 2-core machine while another build ran, 1 MiB chunks of 16 MiB:
//!
//! | data      | level 1               | level 3 (via `encode`)  | level 6              |
//! |-----------|-----------------------|-------------------------|----------------------|
//! | text-like | 227 MB/s, 18.7 % left | 265 MB/s, 17.9 % left   | 19 MB/s, 16.5 % left |
//! | random    | 2.3 GB/s, stored raw  | 27 GB/s (sample only)   | 1.0 GB/s             |
//!
//! Level 3 is as fast as level 1 here with a better ratio; level 6 gains 1.4 points for a
//! tenth of the speed, too slow to keep up with a disk. Incompressible data (media,
//! compressed archives: most large datasets) costs only its 64 KiB sample per chunk.

use std::borrow::Cow;

use crate::error::Result;

/// The zstd level chunks are compressed at (see the module docs for why).
pub const LEVEL: i32 = 3;
/// Compression must save at least 1/32 (~3 %) of a chunk, or the chunk is stored raw:
/// below that, decompressing on every fetch costs more than the bytes saved.
const MIN_SAVING_SHIFT: u32 = 5;
/// Chunks larger than this are first judged by compressing their start: random data
/// then costs 64 KiB of compression instead of a whole chunk's.
const SAMPLE: usize = 64 << 10;

/// How a stored chunk's bytes are encoded (the byte in pack trailers and index files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Encoding {
    Raw = 0,
    Zstd = 1,
}

impl Encoding {
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Encoding::Raw),
            1 => Some(Encoding::Zstd),
            _ => None,
        }
    }
}

/// Whether `compressed` is small enough, for `raw` bytes, to be worth storing.
fn pays(raw: usize, compressed: usize) -> bool {
    compressed <= raw - (raw >> MIN_SAVING_SHIFT) && compressed < raw
}

/// The bytes to store for a chunk, and how they are encoded.
pub fn encode(raw: &[u8]) -> (Encoding, Cow<'_, [u8]>) {
    let compress = |data: &[u8]| zstd::bulk::compress(data, LEVEL).ok();
    if raw.len() > SAMPLE {
        let sample = &raw[..SAMPLE];
        if !compress(sample).is_some_and(|c| pays(sample.len(), c.len())) {
            return (Encoding::Raw, Cow::Borrowed(raw));
        }
    }
    match compress(raw) {
        Some(c) if pays(raw.len(), c.len()) => (Encoding::Zstd, Cow::Owned(c)),
        _ => (Encoding::Raw, Cow::Borrowed(raw)),
    }
}

/// A chunk's raw bytes from its stored bytes; fails unless they are exactly `raw_len`
/// long. Never allocates more than `raw_len`, whatever `stored` claims. The error is an
/// [`crate::error::Error::Format`] named "stored chunk"; [`super::decode_chunk`] names the
/// chunk and its pack instead.
pub fn decode(encoding: Encoding, stored: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    decode_bytes(encoding, stored, raw_len).map_err(|message| super::format_error("stored chunk", message))
}

pub(crate) fn decode_bytes(encoding: Encoding, stored: &[u8], raw_len: usize) -> Result<Vec<u8>, String> {
    match encoding {
        Encoding::Raw if stored.len() == raw_len => Ok(stored.to_vec()),
        Encoding::Raw => Err(format!("{} bytes stored raw, {raw_len} expected", stored.len())),
        Encoding::Zstd => {
            // bulk::decompress allocates exactly `raw_len` and fails when the frame says more.
            let out = zstd::bulk::decompress(stored, raw_len).map_err(|e| format!("zstd: {e}"))?;
            if out.len() != raw_len {
                return Err(format!("decompressed to {} bytes, {raw_len} expected", out.len()));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pack::chunker::tests::pseudo_random;

    pub(crate) fn text_like(len: usize) -> Vec<u8> {
        let words = ["alpha", "beta", "gamma", "delta", "epsilon", "0.125", "1e-9", "label", "\n", ", "];
        let mut state = 5u64;
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            out.extend_from_slice(words[(state >> 60) as usize % words.len()].as_bytes());
        }
        out.truncate(len);
        out
    }

    #[test]
    fn compresses_text_and_stores_random_data_raw() {
        let text = text_like(1 << 20);
        let (enc, stored) = encode(&text);
        assert_eq!(enc, Encoding::Zstd);
        assert!(stored.len() < text.len() / 2);
        assert_eq!(decode(enc, &stored, text.len()).unwrap(), text);

        let random = pseudo_random(1 << 20, 11);
        let (enc, stored) = encode(&random);
        assert_eq!(enc, Encoding::Raw);
        assert!(matches!(stored, Cow::Borrowed(_)));
        assert_eq!(decode(enc, &stored, random.len()).unwrap(), random);

        // Small inputs skip the sample and are judged whole; tiny ones never pay.
        assert_eq!(encode(&text[..1000]).0, Encoding::Zstd);
        assert_eq!(encode(b"ab").0, Encoding::Raw);
        assert_eq!(encode(b"").0, Encoding::Raw);
    }

    #[test]
    fn a_saving_under_three_percent_is_stored_raw() {
        // Random bytes then a run of zeros: zstd saves about the run's length.
        let with_zeros = |percent: usize| {
            let mut data = pseudo_random(30_000, 13);
            data.resize(30_000 * 100 / (100 - percent), 0);
            data
        };
        assert_eq!(encode(&with_zeros(2)).0, Encoding::Raw);
        assert_eq!(encode(&with_zeros(6)).0, Encoding::Zstd);
        // A sample that does not shrink skips compressing the rest, however compressible.
        let mut mixed = pseudo_random(SAMPLE, 17);
        mixed.extend(text_like(1 << 20));
        assert_eq!(encode(&mixed).0, Encoding::Raw);
    }

    #[test]
    fn decoding_checks_the_length_and_stays_within_it() {
        let text = text_like(100_000);
        let (enc, stored) = encode(&text);
        assert_eq!(enc, Encoding::Zstd);
        assert!(decode(enc, &stored, text.len() - 1).is_err(), "a frame larger than claimed");
        assert!(decode(enc, &stored, text.len() + 1).is_err(), "a frame smaller than claimed");
        assert!(decode(enc, &stored[..stored.len() / 2], text.len()).is_err(), "a truncated frame");
        assert!(decode(enc, b"not zstd", 8).is_err());
        assert!(decode(Encoding::Raw, b"abc", 4).is_err());
        let err = decode(Encoding::Raw, b"abc", 2).unwrap_err();
        assert!(matches!(err, crate::error::Error::Format { .. }), "{err}");
        assert_eq!(Encoding::from_byte(1), Some(Encoding::Zstd));
        assert_eq!(Encoding::from_byte(2), None);
    }

    /// Prints encode throughput; asserts nothing about time (machines differ).
    #[test]
    fn throughput() {
        for (what, data) in [("random", pseudo_random(16 << 20, 19)), ("text-like", text_like(16 << 20))] {
            for level in [1, LEVEL, 6] {
                let start = std::time::Instant::now();
                let mut stored = 0;
                for chunk in data.chunks(1 << 20) {
                    stored += if level == LEVEL {
                        encode(chunk).1.len()
                    } else {
                        zstd::bulk::compress(chunk, level).unwrap().len()
                    };
                }
                let secs = start.elapsed().as_secs_f64();
                println!(
                    "{what}: level {level}{}: {:.0} MB/s, stored {:.1} %",
                    if level == LEVEL { " via encode" } else { "" },
                    data.len() as f64 / secs / 1e6,
                    100.0 * stored as f64 / data.len() as f64
                );
                assert!(stored > 0);
            }
        }
    }
}
