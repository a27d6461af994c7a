//! Pointer files (`images.trove`): the small YAML file committed to git in place of the data.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::hash::ObjectId;
use crate::manifest::check_relative_path;

pub const EXTENSION: &str = "trove";
const HEADER: &str = "# trove pointer: commit this file; `trove pull` restores the data it names";
/// A pointer is a few hundred bytes; anything far larger is not one, and is refused
/// before the YAML parser spends time and memory on it.
pub const MAX_POINTER_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    /// The tracked file or directory, relative to the pointer's folder.
    pub path: String,
    pub kind: Kind,
    pub hash: ObjectId,
    pub size: u64,
    /// Number of files, for directories.
    pub files: Option<u64>,
    /// Where imported data comes from (`trove import`); None for data added here.
    pub source: Option<Source>,
}

/// The `source:` of an imported pointer: the repository and path the data was taken
/// from, the revision asked for, and the commit it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Source {
    /// The source repository's git URL, as given to `trove import`.
    pub repo: String,
    /// The tracked path inside the source repository, relative to its top folder.
    pub path: String,
    /// The revision asked for (a branch or tag); None follows the source's default branch.
    pub rev: Option<String>,
    /// The full SHA of the commit `rev` resolved to when the data was imported or updated.
    pub commit: String,
}

/// The keys of a `source:` mapping.
const SOURCE_KEYS: [&str; 4] = ["repo", "path", "rev", "commit"];

struct Raw {
    path: String,
    kind: Kind,
    hash: String,
    size: u64,
    files: Option<u64>,
}

impl Pointer {
    /// The exact bytes written to disk: stable, so re-adding unchanged data rewrites nothing.
    pub fn to_text(&self) -> String {
        // Only the line break goes: a name may end in characters trim_end would take (U+00A0).
        let mut out = format!(
            "{HEADER}\nversion: 1\npath: {}\nkind: {}\nhash: {}\nsize: {}\n",
            yaml_string(&self.path),
            self.kind.as_str(),
            self.hash,
            self.size
        );
        if let Some(files) = self.files {
            out.push_str(&format!("files: {files}\n"));
        }
        if let Some(s) = &self.source {
            out.push_str(&format!(
                "source:\n  repo: {}\n  path: {}\n",
                yaml_string(&s.repo),
                yaml_string(&s.path)
            ));
            if let Some(rev) = &s.rev {
                out.push_str(&format!("  rev: {}\n", yaml_string(rev)));
            }
            out.push_str(&format!("  commit: {}\n", s.commit));
        }
        out
    }

    /// Parse a pointer file's text; `file` names it in errors (with the line).
    pub fn parse(text: &str, file: &Path) -> Result<Self> {
        let err = |line: usize, message: String| Error::Pointer { path: file.to_path_buf(), line, message };
        if text.len() > MAX_POINTER_BYTES {
            return Err(err(
                1,
                format!(
                    "not a trove pointer: {} bytes, and a pointer is at most {MAX_POINTER_BYTES}",
                    text.len()
                ),
            ));
        }
        if let Some(c) = crate::merge::conflict_in(text) {
            return Err(Error::PointerConflict {
                path: file.to_path_buf(),
                line: c.line,
                message: c.describe(),
            });
        }
        let line_of = |key: &str| {
            text.lines()
                .position(|l| l.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with(':')))
                .map_or(1, |i| i + 1)
        };
        if let Some(line) = crate::yaml::too_deep(text) {
            return Err(err(line, crate::yaml::too_deep_message()));
        }
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
            let line = e.location().map_or(1, |l| l.line());
            err(line, format!("not valid YAML: {e}"))
        })?;
        let map = value
            .as_mapping()
            .ok_or_else(|| err(1, "not a trove pointer (expected `key: value` lines)".into()))?;
        match map.get("version") {
            None => return Err(err(1, "missing `version`".into())),
            Some(v) if v.as_u64() == Some(1) => {}
            Some(v) => {
                let shown = serde_yaml::to_string(v).unwrap_or_default();
                return Err(err(
                    line_of("version"),
                    format!(
                        "unknown pointer version {} (this trove reads version 1; upgrade trove)",
                        shown.trim()
                    ),
                ));
            }
        }
        const KEYS: [&str; 7] = ["version", "path", "kind", "hash", "size", "files", "source"];
        for key in map.keys() {
            let name = key.as_str().unwrap_or_default();
            if !KEYS.contains(&name) {
                let shown = serde_yaml::to_string(key).unwrap_or_default();
                return Err(err(
                    if name.is_empty() { 1 } else { line_of(name) },
                    format!("unknown field `{}` (a version 1 pointer has {})", shown.trim(), KEYS.join(", ")),
                ));
            }
        }
        fn field<T: serde::de::DeserializeOwned>(
            map: &serde_yaml::Mapping,
            key: &str,
            expected: &str,
            err: &dyn Fn(usize, String) -> Error,
            line_of: &dyn Fn(&str) -> usize,
        ) -> Result<Option<T>> {
            match map.get(key) {
                None | Some(serde_yaml::Value::Null) => Ok(None),
                Some(v) => serde_yaml::from_value(v.clone()).map(Some).map_err(|_| {
                    let shown = serde_yaml::to_string(v).unwrap_or_default();
                    err(line_of(key), format!("`{key}: {}` is not {expected}", shown.trim()))
                }),
            }
        }
        let required = |key: &str| err(1, format!("missing `{key}`"));
        let raw = Raw {
            path: field(map, "path", "a relative path", &err, &line_of)?.ok_or_else(|| required("path"))?,
            kind: field(map, "kind", "`file` or `dir`", &err, &line_of)?.ok_or_else(|| required("kind"))?,
            hash: field(map, "hash", "a hash", &err, &line_of)?.ok_or_else(|| required("hash"))?,
            size: field(map, "size", "a size in bytes", &err, &line_of)?.ok_or_else(|| required("size"))?,
            files: field(map, "files", "a number of files", &err, &line_of)?,
        };
        check_relative_path(&raw.path).map_err(|m| {
            err(
                line_of("path"),
                format!("`path: {}`: {m}; it must name a file or folder beside the pointer", raw.path),
            )
        })?;
        let hash: ObjectId = raw.hash.parse().map_err(|e| err(line_of("hash"), format!("{e}")))?;
        match (raw.kind, raw.files) {
            (Kind::Dir, None) => {
                return Err(err(line_of("kind"), "a `dir` pointer needs `files`".into()));
            }
            (Kind::File, Some(_)) => {
                return Err(err(line_of("files"), "a `file` pointer has no `files`".into()));
            }
            _ => {}
        }
        let source = match map.get("source") {
            None | Some(serde_yaml::Value::Null) => None,
            Some(v) => Some(parse_source(text, v, &err, line_of("source"))?),
        };
        Ok(Pointer { path: raw.path, kind: raw.kind, hash, size: raw.size, files: raw.files, source })
    }
}

/// A string as one line of YAML that reads back as exactly that string.
fn yaml_string(s: &str) -> String {
    // Only the line break goes: a name may end in characters trim_end would take (U+00A0).
    let mut out = serde_yaml::to_string(s).expect("string serialises");
    out.truncate(out.trim_end_matches('\n').len());
    if out.contains('\n') || serde_yaml::from_str::<String>(&out).ok().as_deref() != Some(s) {
        // A name plain YAML would read otherwise: a JSON string is a YAML double-quoted one.
        out = serde_json::to_string(s).expect("string serialises");
    }
    out
}

/// The `source:` mapping of an imported pointer; `at` is the line of `source:`.
fn parse_source(
    text: &str,
    value: &serde_yaml::Value,
    err: &dyn Fn(usize, String) -> Error,
    at: usize,
) -> Result<Source> {
    // The line of `KEY:` inside the mapping (indented, after `source:`).
    let line_of = |key: &str| {
        text.lines()
            .enumerate()
            .skip(at)
            .find(|(_, l)| {
                let t = l.trim_start();
                t.len() < l.len() && t.strip_prefix(key).is_some_and(|r| r.trim_start().starts_with(':'))
            })
            .map_or(at, |(i, _)| i + 1)
    };
    let map = value.as_mapping().ok_or_else(|| {
        err(at, format!("`source` must be a mapping with {}, not a single value", SOURCE_KEYS.join(", ")))
    })?;
    for key in map.keys() {
        let name = key.as_str().unwrap_or_default();
        if !SOURCE_KEYS.contains(&name) {
            let shown = serde_yaml::to_string(key).unwrap_or_default();
            return Err(err(
                if name.is_empty() { at } else { line_of(name) },
                format!("unknown field `source.{}` (a source has {})", shown.trim(), SOURCE_KEYS.join(", ")),
            ));
        }
    }
    let string = |key: &str| -> Result<Option<String>> {
        match map.get(key) {
            None | Some(serde_yaml::Value::Null) => Ok(None),
            Some(serde_yaml::Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(v) => {
                let shown = serde_yaml::to_string(v).unwrap_or_default();
                Err(err(line_of(key), format!("`source.{key}: {}` is not a non-empty string", shown.trim())))
            }
        }
    };
    let required = |key: &str| err(at, format!("`source` is missing `{key}`"));
    let repo = string("repo")?.ok_or_else(|| required("repo"))?;
    let path = string("path")?.ok_or_else(|| required("path"))?;
    let rev = string("rev")?;
    let commit = string("commit")?.ok_or_else(|| required("commit"))?;
    check_relative_path(&path).map_err(|m| {
        err(
            line_of("path"),
            format!("`source.path: {path}`: {m}; it must be a path inside the source repository"),
        )
    })?;
    let is_sha = (commit.len() == 40 || commit.len() == 64)
        && commit.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !is_sha {
        return Err(err(
            line_of("commit"),
            format!("`source.commit: {commit}` is not a full git commit id (40 lowercase hex digits)"),
        ));
    }
    Ok(Source { repo, path, rev, commit })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Pointer {
        Pointer {
            path: "images".into(),
            kind: Kind::Dir,
            hash: ObjectId::of_bytes(b"x"),
            size: 10,
            files: Some(2),
            source: None,
        }
    }

    fn imported() -> Pointer {
        Pointer {
            source: Some(Source {
                repo: "https://example.com/team/registry.git".into(),
                path: "data/images".into(),
                rev: Some("v1".into()),
                commit: "0123456789abcdef0123456789abcdef01234567".into(),
            }),
            ..sample()
        }
    }

    #[test]
    fn source_round_trips_and_old_pointers_are_unchanged() {
        let p = imported();
        let text = p.to_text();
        assert!(text.ends_with(
            "files: 2\nsource:\n  repo: https://example.com/team/registry.git\n  path: data/images\n  rev: v1\n  commit: 0123456789abcdef0123456789abcdef01234567\n"
        ), "{text}");
        assert_eq!(Pointer::parse(&text, Path::new("x.trove")).unwrap(), p);
        let mut no_rev = imported();
        no_rev.source.as_mut().unwrap().rev = None;
        no_rev.source.as_mut().unwrap().repo = "/srv/a: b #c".into();
        let text = no_rev.to_text();
        assert!(!text.contains("rev:"), "{text}");
        assert_eq!(Pointer::parse(&text, Path::new("x.trove")).unwrap(), no_rev);
        // Without a source, the bytes are what earlier versions wrote.
        let plain = sample().to_text();
        assert_eq!(
            plain,
            format!(
                "{HEADER}\nversion: 1\npath: images\nkind: dir\nhash: {}\nsize: 10\nfiles: 2\n",
                sample().hash
            )
        );
    }

    #[test]
    fn a_bad_source_is_named_with_its_line() {
        let text = imported().to_text();
        let parse = |t: &str| Pointer::parse(t, Path::new("d.trove")).unwrap_err().to_string();
        let err = parse(&text.replace("  rev: v1\n", "  rev: v1\n  branch: main\n"));
        assert!(err.starts_with("d.trove:12: unknown field `source.branch`"), "{err}");
        let err = parse(&text.replace("commit: 0123", "commit: zz23"));
        assert!(err.starts_with("d.trove:12: `source.commit: zz23"), "{err}");
        let err = parse(&text.replace("  path: data/images\n", ""));
        assert!(err.starts_with("d.trove:8: `source` is missing `path`"), "{err}");
        let err = parse(&text.replace("  path: data/images", "  path: ../up"));
        assert!(err.starts_with("d.trove:10: `source.path: ../up`"), "{err}");
        let cut = text.find("source:").unwrap();
        let err = parse(&format!("{}source: somewhere\n", &text[..cut]));
        assert!(err.starts_with("d.trove:8: `source` must be a mapping"), "{err}");
        let err = parse(&text.replace("  repo: https://example.com/team/registry.git", "  repo: [1]"));
        assert!(err.starts_with("d.trove:9: `source.repo: - 1` is not a non-empty string"), "{err}");
    }

    #[test]
    fn round_trip() {
        let p = sample();
        let text = p.to_text();
        assert!(text.starts_with(HEADER));
        assert_eq!(Pointer::parse(&text, Path::new("x.trove")).unwrap(), p);
    }

    #[test]
    fn quotes_ambiguous_paths() {
        let mut p = sample();
        p.path = "true".into();
        let text = p.to_text();
        assert!(text.contains("path: 'true'"), "{text}");
        assert_eq!(Pointer::parse(&text, Path::new("x.trove")).unwrap().path, "true");
    }

    #[test]
    fn every_storable_name_reads_back_as_written() {
        let names = [
            "a\\b",
            "cr\r",
            "tab\t",
            "\u{1}",
            "nl\nname",
            " lead",
            "trail ",
            "~",
            "null",
            "- x",
            ": x",
            "x: y",
            "#x",
            "'q'",
            "\"d\"",
            "\u{feff}bom",
            "a\u{85}b",
            "a\u{2028}b",
            "\u{2029}",
            "[x]",
            "{x}",
            "*a",
            "&a",
            "!a",
            "%a",
            "@a",
            "`a",
            "|",
            ">",
            "?",
            "0x1F",
            "1e3",
            ".inf",
            "-.nan",
            "yes",
            "No",
            "~/x",
            "a#b",
            "a #b",
            "\u{7f}",
            "\u{a0}",
            "é",
        ];
        for name in names {
            let mut p = sample();
            p.path = name.into();
            let text = p.to_text();
            let back = Pointer::parse(&text, Path::new("x.trove")).unwrap_or_else(|e| panic!("{e}:\n{text}"));
            assert_eq!(back.path, name, "{text}");
        }
    }

    #[test]
    fn deep_or_huge_text_is_refused_quickly() {
        let deep = format!("version: 1\npath: {}\n", "[".repeat(60_000));
        let err = Pointer::parse(&deep, Path::new("d.trove")).unwrap_err().to_string();
        assert!(err.starts_with("d.trove:2: not valid YAML: nested more than 128"), "{err}");
        let huge = format!("version: 1\n{}", "#\n".repeat(MAX_POINTER_BYTES));
        let err = Pointer::parse(&huge, Path::new("d.trove")).unwrap_err().to_string();
        assert!(err.starts_with("d.trove:1: not a trove pointer:"), "{err}");
    }

    #[test]
    fn errors_name_the_line() {
        let text = sample().to_text().replace("hash: ", "hash: zz");
        let err = Pointer::parse(&text, Path::new("d.trove")).unwrap_err().to_string();
        assert!(err.starts_with("d.trove:5:"), "{err}");
        let text = sample().to_text().replace("version: 1", "version: 7");
        let err = Pointer::parse(&text, Path::new("d.trove")).unwrap_err().to_string();
        assert!(err.starts_with("d.trove:2: unknown pointer version 7"), "{err}");
        let text = sample().to_text().replace("path: images", "path: ../../etc");
        let err = Pointer::parse(&text, Path::new("d.trove")).unwrap_err().to_string();
        assert!(err.starts_with("d.trove:3:"), "{err}");
    }
}
