//! Directory manifests: canonical JSON listing every file of a tracked directory.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hash::ObjectId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub path: String,
    pub hash: ObjectId,
    pub size: u64,
    pub exec: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    pub entries: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    version: u32,
    entries: Vec<Entry>,
}

impl Manifest {
    /// Build a manifest from entries in any order.
    pub fn new(mut entries: Vec<Entry>) -> Self {
        entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        Manifest { entries }
    }

    /// The canonical bytes: keys in spec order, no whitespace, entries sorted bytewise.
    pub fn to_bytes(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct WireRef<'a> {
            version: u32,
            entries: &'a [Entry],
        }
        serde_json::to_vec(&WireRef { version: 1, entries: &self.entries }).expect("manifest serialises")
    }

    pub fn id(&self) -> ObjectId {
        ObjectId::of_bytes(&self.to_bytes())
    }

    pub fn total_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// Parse and validate a manifest; `name` identifies it in errors.
    pub fn parse(bytes: &[u8], name: &str) -> Result<Self> {
        let err = |message: String| Error::Manifest { name: name.to_string(), message };
        let wire: Wire =
            serde_json::from_slice(bytes).map_err(|e| err(format!("not a valid manifest: {e}")))?;
        if wire.version != 1 {
            return Err(err(format!(
                "unknown manifest version {} (this trove reads version 1)",
                wire.version
            )));
        }
        for pair in wire.entries.windows(2) {
            if pair[0].path.as_bytes() >= pair[1].path.as_bytes() {
                return Err(err(format!("entries are not sorted or repeat a path at `{}`", pair[1].path)));
            }
        }
        for e in &wire.entries {
            check_relative_path(&e.path).map_err(|m| err(format!("entry `{}`: {m}", e.path)))?;
        }
        // A file cannot also be a folder of other entries (`a` and `a/b`).
        let files: std::collections::HashSet<&str> = wire.entries.iter().map(|e| e.path.as_str()).collect();
        for e in &wire.entries {
            for (i, _) in e.path.match_indices('/') {
                let folder = &e.path[..i];
                if files.contains(folder) {
                    return Err(err(format!(
                        "entry `{folder}` is a file, and entry `{}` is inside it",
                        e.path
                    )));
                }
            }
        }
        Ok(Manifest { entries: wire.entries })
    }
}

/// A manifest path must stay inside its directory: relative, `/`-separated, no `.`/`..`/empty segments, no NUL.
/// Every other character is an ordinary byte of a name, as on POSIX: a backslash separates nothing.
pub fn check_relative_path(path: &str) -> std::result::Result<(), String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    if path.starts_with('/') {
        return Err("absolute path".into());
    }
    if path.contains('\0') {
        return Err("path contains NUL".into());
    }
    for seg in path.split('/') {
        match seg {
            "" => return Err("path has an empty segment".into()),
            "." | ".." => {
                return Err(format!("path has a `{seg}` segment that escapes or is ambiguous"));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> Entry {
        Entry { path: path.into(), hash: ObjectId::of_bytes(path.as_bytes()), size: 3, exec: false }
    }

    #[test]
    fn canonical_bytes_round_trip() {
        let m = Manifest::new(vec![entry("b"), entry("a/c.png")]);
        let bytes = m.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with(r#"{"version":1,"entries":[{"path":"a/c.png","hash":""#));
        assert!(!text.contains(' '));
        assert_eq!(Manifest::parse(&bytes, "t").unwrap(), m);
    }

    #[test]
    fn rejects_escaping_paths() {
        for bad in ["../x", "/etc/passwd", "a/../../x", "a//b", "./a", "a\0b"] {
            let m = Manifest { entries: vec![entry(bad)] };
            let err = Manifest::parse(&m.to_bytes(), "t").unwrap_err().to_string();
            assert!(err.contains("manifest t"), "{err}");
        }
    }

    #[test]
    fn backslashes_and_control_characters_are_ordinary_bytes() {
        let m = Manifest::new(vec![entry("a\\b"), entry("dir\\/c\nd"), entry("tab\there")]);
        assert_eq!(Manifest::parse(&m.to_bytes(), "t").unwrap(), m);
    }

    #[test]
    fn rejects_unsorted_and_unknown_version() {
        let m = Manifest { entries: vec![entry("b"), entry("a")] };
        assert!(Manifest::parse(&m.to_bytes(), "t").is_err());
        assert!(Manifest::parse(br#"{"version":2,"entries":[]}"#, "t").is_err());
        let m = Manifest { entries: vec![entry("a"), entry("a"), entry("b")] };
        assert!(
            Manifest::parse(&m.to_bytes(), "t").unwrap_err().to_string().contains("repeat a path at `a`")
        );
        let m = Manifest { entries: vec![entry("a"), entry("a-b"), entry("a/b/c")] };
        let err = Manifest::parse(&m.to_bytes(), "t").unwrap_err().to_string();
        assert!(err.contains("`a` is a file"), "{err}");
    }
}
