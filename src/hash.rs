//! Object ids: BLAKE3-256 of the content, written as 64 lowercase hex characters.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use crate::error::{IoContext, Result};

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 32]);

/// What an object is: a file's content, or a directory's manifest (stored as `.dir`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    File,
    Manifest,
}

/// An object as stored in the cache and on remotes: its id and what it is. The spelling
/// `objects/<2 hex>/<62 hex>[.dir]` used by both lives here, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub id: ObjectId,
    pub kind: ObjectKind,
}

impl ObjectKey {
    pub fn file(id: ObjectId) -> Self {
        ObjectKey { id, kind: ObjectKind::File }
    }

    pub fn manifest(id: ObjectId) -> Self {
        ObjectKey { id, kind: ObjectKind::Manifest }
    }

    /// A manifest when `manifest`, else a file.
    pub fn of(id: ObjectId, manifest: bool) -> Self {
        if manifest { Self::manifest(id) } else { Self::file(id) }
    }

    pub fn is_manifest(&self) -> bool {
        self.kind == ObjectKind::Manifest
    }

    /// The fan-out folder: the first two hex characters.
    pub fn prefix(&self) -> String {
        self.id.to_hex()[..2].to_string()
    }

    /// The name inside the fan-out folder: `<62 hex>[.dir]`.
    pub fn file_name(&self) -> String {
        let hex = self.id.hex();
        let rest = &hex.as_str()[2..];
        if self.is_manifest() { format!("{rest}.dir") } else { rest.to_string() }
    }

    /// `objects/<2>/<62>[.dir]`, relative to the store's root, built in one allocation.
    pub fn rel_path(&self) -> String {
        let hex = self.id.hex();
        let hex = hex.as_str();
        let mut s = String::with_capacity(8 + 65 + 4);
        s.push_str("objects/");
        s.push_str(&hex[..2]);
        s.push('/');
        s.push_str(&hex[2..]);
        if self.is_manifest() {
            s.push_str(".dir");
        }
        s
    }

    /// Parse a name found by listing `objects/<prefix>/`.
    pub fn from_listing(prefix: &str, name: &str) -> Option<Self> {
        let (stem, manifest) = match name.strip_suffix(".dir") {
            Some(s) => (s, true),
            None => (name, false),
        };
        if prefix.len() != 2 {
            return None;
        }
        let id = format!("{prefix}{stem}").parse().ok()?;
        Some(ObjectKey::of(id, manifest))
    }

    /// `<64 hex>[.dir]`, as messages and reports name objects.
    pub fn display(&self) -> String {
        if self.is_manifest() { format!("{}.dir", self.id) } else { self.id.to_hex() }
    }
}

/// Files at least this large are hashed with all cores.
const PARALLEL_HASH_MIN: u64 = 4 << 20;
/// The chunk such files are read and hashed in.
const PARALLEL_CHUNK: usize = 16 << 20;

impl ObjectId {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ObjectId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn of_bytes(data: &[u8]) -> Self {
        ObjectId(*blake3::hash(data).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        self.hex().as_str().to_owned()
    }

    /// The first 12 hex digits, for messages.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_string()
    }

    /// The 64 hex digits without an allocation (ids are formatted once per file in
    /// status and checkout, so `write!` per byte shows up in profiles).
    pub fn hex(&self) -> HexId {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = DIGITS[(b >> 4) as usize];
            out[2 * i + 1] = DIGITS[(b & 15) as usize];
        }
        HexId(out)
    }
}

/// An id's hex digits on the stack.
pub struct HexId([u8; 64]);

impl HexId {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex().as_str())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct ParseIdError(pub String);

impl fmt::Display for ParseIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not an object id (64 lowercase hex characters)", self.0)
    }
}

impl std::error::Error for ParseIdError {}

impl FromStr for ObjectId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let err = || ParseIdError(s.chars().take(80).collect());
        if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(err());
        }
        let mut out = [0u8; 32];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).map_err(|_| err())?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| err())?;
        }
        Ok(ObjectId(out))
    }
}

impl serde::Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.hex().as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Hash a file's content; returns its id and size.
pub fn hash_file(path: &Path) -> Result<(ObjectId, u64)> {
    let mut file = std::fs::File::open(path).at(path)?;
    let len = file.metadata().at(path)?.len();
    if len >= PARALLEL_HASH_MIN {
        return hash_large(&mut file, path);
    }
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; (len as usize).clamp(1, 256 << 10) + 1];
    loop {
        let n = file.read(&mut buf).at(path)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok((ObjectId(*hasher.finalize().as_bytes()), hasher.count()))
}

/// Hash a large file on all cores, each chunk while the next one is read; its id and size.
/// (A memory map would count the whole file in the process's resident memory, and a file
/// truncated meanwhile would kill the process with SIGBUS.)
fn hash_large(file: &mut File, path: &Path) -> Result<(ObjectId, u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut current = vec![0u8; PARALLEL_CHUNK];
    let mut next = vec![0u8; PARALLEL_CHUNK];
    let mut n = read_full(file, &mut current).at(path)?;
    while n > 0 {
        let (read, _) = rayon::join(|| read_full(file, &mut next), || hasher.update_rayon(&current[..n]));
        n = read.at(path)?;
        std::mem::swap(&mut current, &mut next);
    }
    Ok((ObjectId(*hasher.finalize().as_bytes()), hasher.count()))
}

/// Fill `buf` unless the source ends first; the number of bytes read.
pub(crate) fn read_full<R: Read + ?Sized>(src: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match src.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = ObjectId::of_bytes(b"hello");
        let hex = id.to_string();
        assert_eq!(hex.len(), 64);
        assert_eq!(hex.parse::<ObjectId>().unwrap(), id);
        assert_eq!(hex, "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f");
    }

    #[test]
    fn large_files_hash_the_same_in_chunks() {
        // Sizes around the parallel threshold and across chunk boundaries.
        let dir = tempfile::tempdir().unwrap();
        let mut state = 7u64;
        let data: Vec<u8> = (0..2 * PARALLEL_CHUNK + 4097)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 56) as u8
            })
            .collect();
        for len in [PARALLEL_HASH_MIN as usize - 1, PARALLEL_HASH_MIN as usize, PARALLEL_CHUNK, data.len()] {
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, &data[..len]).unwrap();
            let (id, size) = hash_file(&path).unwrap();
            assert_eq!(size, len as u64);
            assert_eq!(id, ObjectId::of_bytes(&data[..len]), "{len} bytes");
        }
    }

    #[test]
    fn rejects_bad_hex() {
        assert!("abc".parse::<ObjectId>().is_err());
        assert!("A".repeat(64).parse::<ObjectId>().is_err());
        assert!("g".repeat(64).parse::<ObjectId>().is_err());
    }
}
