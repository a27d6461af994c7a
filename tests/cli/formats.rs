//! Object ids, manifests and the cache layout, recomputed independently of trove.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;

use crate::add::{dir_pointer, sample_dir};
use crate::common::*;

#[test]
fn file_id_is_blake3_and_object_is_stored_read_only() {
    let env = Env::new();
    let content = noise(3 * 1024 * 1024 + 17, 42); // several BLAKE3 chunks, not page-aligned
    env.write("model.bin", &content);
    env.ok(&["add", "model.bin"]);
    let expected = blake3_hex(&content);
    assert_eq!(expected.len(), 64);
    let p = env.pointer("model.bin.trove");
    assert_eq!(p.hash, expected);
    assert_eq!(p.size, content.len() as u64);

    let obj = env.object_path(&expected);
    assert!(obj.is_file(), "object at {}", obj.display());
    assert_eq!(fs::read(&obj).unwrap(), content);
    assert_eq!(mode(&obj) & 0o222, 0, "objects are read-only, mode {:o}", mode(&obj));
    // Known value from the format description: BLAKE3("hello").
    env.write("hello.txt", "hello");
    env.ok(&["add", "hello.txt"]);
    assert_eq!(
        env.pointer("hello.txt.trove").hash,
        "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
    );
}

#[test]
fn manifest_is_canonical_json_and_its_id_is_blake3() {
    let env = Env::new();
    let mut entries = sample_dir(&env);
    // Names whose bytewise order differs from a naive walk: '-' < '.' < '/' < 'B' < 'a' < é.
    for (path, content) in
        [("a-b", "dash"), ("a.b", "dot"), ("a/b", "slash"), ("B.txt", "upper"), ("é.txt", "accent")]
    {
        env.write(&format!("data/{path}"), content);
        entries.push(Entry { path: path.into(), content: content.as_bytes().to_vec(), exec: false });
    }
    env.ok(&["add", "data"]);
    let canonical = manifest_bytes(&entries);
    assert!(!canonical.contains(' '));
    let id = blake3_hex(canonical.as_bytes());

    let p = env.pointer("data.trove");
    assert_eq!(p, dir_pointer("data", &entries));
    assert_eq!(p.hash, id);

    let stored = env.manifest_path(&id);
    assert!(stored.is_file(), "manifest at {}", stored.display());
    assert_eq!(String::from_utf8(fs::read(&stored).unwrap()).unwrap(), canonical);
    assert_eq!(mode(&stored) & 0o222, 0, "manifest objects are read-only");

    // Every file's content is stored under its own id, read-only.
    for e in &entries {
        let obj = env.object_path(&blake3_hex(&e.content));
        assert_eq!(fs::read(&obj).unwrap(), e.content, "{}", e.path);
        assert_eq!(mode(&obj) & 0o222, 0, "{} object mode {:o}", e.path, mode(&obj));
    }
}

#[test]
fn every_cache_object_hashes_to_its_name() {
    let env = Env::new();
    sample_dir(&env);
    env.write("model.bin", noise(100_000, 1));
    env.ok(&["add", "data", "model.bin"]);
    let files = env.object_files();
    assert!(files.len() >= 6, "{files:?}");
    for f in files {
        assert_object_sound(&env, &f);
    }
}

/// An object file's name is the BLAKE3 of its bytes, and it is read-only.
pub fn assert_object_sound(env: &Env, f: &std::path::Path) {
    let rel = f.strip_prefix(env.objects_dir()).unwrap();
    let parts: Vec<&str> = rel.iter().map(|c| c.to_str().unwrap()).collect();
    assert_eq!(parts.len(), 2, "unexpected object path {}", f.display());
    assert_eq!(parts[0].len(), 2);
    let name = parts[1].strip_suffix(".dir").unwrap_or(parts[1]);
    assert_eq!(name.len(), 62, "{}", f.display());
    assert_eq!(
        format!("{}{}", parts[0], name),
        blake3_file(f),
        "object {} does not match its id",
        f.display()
    );
    assert_eq!(mode(f) & 0o222, 0, "object {} is writable", f.display());
}

#[test]
fn non_utf8_file_name_inside_a_dir_is_refused() {
    let env = Env::new();
    env.write("data/fine.txt", "fine");
    let bad = env.path("data").join(OsStr::from_bytes(b"bad\xff name.bin"));
    fs::write(&bad, "x").unwrap();
    let before = env.index_paths();
    let out = env.fails(1, &["add", "data"]);
    assert!(out.stderr.contains("data: 1 entry cannot be tracked"), "{out}");
    assert!(
        out.stderr.contains("\n  \"data/bad\\377 name.bin\": "),
        "the error names the file as git does:\n{out}"
    );
    assert!(out.stderr.to_lowercase().contains("utf-8"), "{out}");
    assert!(!env.path("data.trove").exists(), "no pointer is written");
    assert_eq!(env.index_paths(), before);
    assert!(bad.is_file(), "the data stays");
}
