//! The ids of layout 2: chunks, packs and index files, each the BLAKE3-256 of some bytes,
//! written as 64 lowercase hex characters. One macro defines all three so they cannot drift
//! apart, while staying distinct types (a pack id is never looked up as a chunk).

use std::fmt;
use std::str::FromStr;

use crate::hash::ObjectId;

/// A string that is not 64 lowercase hex characters, and what it was meant to name.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseHexError {
    pub what: &'static str,
    pub input: String,
}

impl fmt::Display for ParseHexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a {} (64 lowercase hex characters)", self.input, self.what)
    }
}

impl std::error::Error for ParseHexError {}

fn parse_hex(s: &str, what: &'static str) -> Result<[u8; 32], ParseHexError> {
    let err = || ParseHexError { what, input: s.chars().take(80).collect() };
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    if s.len() != 64 {
        return Err(err());
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        *o = (digit(pair[0]).ok_or_else(err)? << 4) | digit(pair[1]).ok_or_else(err)?;
    }
    Ok(out)
}

fn write_hex(bytes: &[u8; 32], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[(b >> 4) as usize];
        out[2 * i + 1] = DIGITS[(b & 15) as usize];
    }
    f.write_str(std::str::from_utf8(&out).expect("hex digits are ASCII"))
}

macro_rules! blake3_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[repr(transparent)]
        pub struct $name([u8; 32]);

        impl $name {
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                $name(bytes)
            }

            pub fn of_bytes(data: &[u8]) -> Self {
                $name(*blake3::hash(data).as_bytes())
            }

            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            pub fn to_hex(&self) -> String {
                self.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "("))?;
                write_hex(&self.0, f)?;
                f.write_str(")")
            }
        }

        impl FromStr for $name {
            type Err = ParseHexError;

            fn from_str(s: &str) -> Result<Self, ParseHexError> {
                parse_hex(s, $what).map($name)
            }
        }
    };
}

blake3_id!(
    /// A chunk: the BLAKE3 of its raw (uncompressed) bytes.
    ChunkId,
    "chunk id"
);
blake3_id!(
    /// A pack file: the BLAKE3 of all its bytes, which is also its name on the remote.
    PackId,
    "pack id"
);
blake3_id!(
    /// An index file: the BLAKE3 of all its bytes, which is also its name on the remote.
    IndexId,
    "index id"
);

/// Both are the BLAKE3 of the same bytes when a file is one chunk, so its only chunk's id
/// is its object id.
impl From<ObjectId> for ChunkId {
    fn from(id: ObjectId) -> Self {
        ChunkId(*id.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_matches_object_ids() {
        let id = ChunkId::of_bytes(b"hello");
        let hex = id.to_hex();
        assert_eq!(hex, ObjectId::of_bytes(b"hello").to_hex());
        assert_eq!(ChunkId::from(ObjectId::of_bytes(b"hello")), id);
        assert_eq!(hex.parse::<ChunkId>().unwrap(), id);
        assert_eq!(format!("{id:?}"), format!("ChunkId({hex})"));
        let pack: PackId = hex.parse().unwrap();
        assert_eq!(pack.as_bytes(), id.as_bytes());
    }

    #[test]
    fn rejects_what_is_not_lowercase_hex() {
        for bad in
            ["", "abc", &"A".repeat(64), &"g".repeat(64), &"0".repeat(63), &"0".repeat(65), &"é".repeat(32)]
        {
            let err = bad.parse::<IndexId>().unwrap_err();
            assert_eq!(err.what, "index id");
        }
        assert_eq!("0".repeat(64).parse::<PackId>().unwrap(), PackId::default());
    }
}
