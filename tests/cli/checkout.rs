//! `trove checkout` and `trove unprotect`, with copies, hard links and symbolic links.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use crate::add::sample_dir;
use crate::common::*;

fn assert_restored(env: &Env, entries: &[Entry]) {
    for e in entries {
        let p = env.path(&format!("data/{}", e.path));
        assert_eq!(fs::read(&p).unwrap(), e.content, "content of {}", e.path);
        let exec = mode(&p) & 0o111 != 0;
        assert_eq!(exec, e.exec, "exec bit of {} (mode {:o})", e.path, mode(&p));
    }
}

#[test]
fn checkout_restores_deleted_data() {
    let env = Env::new();
    let entries = sample_dir(&env);
    let model = noise(200_000, 5);
    env.write("model.bin", &model);
    env.write_exec("tool.sh", "#!/bin/sh\n");
    env.ok(&["add", "data", "model.bin", "tool.sh"]);
    fs::remove_dir_all(env.path("data")).unwrap();
    fs::remove_file(env.path("model.bin")).unwrap();
    fs::remove_file(env.path("tool.sh")).unwrap();

    let v = env.json(&["checkout"]);
    assert_restored(&env, &entries);
    assert_eq!(env.read("model.bin"), model);
    assert_eq!(mode(&env.path("model.bin")) & 0o111, 0);
    assert_eq!(env.read("tool.sh"), b"#!/bin/sh\n");
    let co = v["checked_out"].as_array().unwrap();
    let data = co.iter().find(|c| c["path"] == "data").unwrap();
    assert_eq!(data["placed"], entries.len() as u64, "{v}");
    assert_eq!(data["removed"], 0);
    // With the default cache.link, workspace files are private, writable copies.
    let a = env.path("data/a.txt");
    assert_eq!(lmeta(&a).nlink(), 1);
    assert_ne!(mode(&a) & 0o200, 0, "copied files are writable");
    let st = env.json(&["status"]);
    for t in st["tracked"].as_array().unwrap() {
        assert_eq!(t["state"], "unchanged", "{t}");
    }
    // Nothing left to do.
    let v = env.json(&["checkout"]);
    for c in v["checked_out"].as_array().unwrap() {
        assert_eq!((c["placed"].as_u64(), c["removed"].as_u64()), (Some(0), Some(0)), "{c}");
    }
}

#[test]
fn checkout_only_touches_files_that_differ() {
    let env = Env::new();
    let entries = sample_dir(&env);
    env.ok(&["add", "data"]);
    let keep = env.path("data/sub/b.txt");
    let before = lmeta(&keep);
    fs::remove_file(env.path("data/a.txt")).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let v = env.json(&["checkout", "data"]);
    assert_eq!(v["checked_out"][0]["placed"], 1, "{v}");
    assert_restored(&env, &entries);
    let after = lmeta(&keep);
    assert_eq!(before.ino(), after.ino(), "an unchanged file was replaced");
    assert_eq!((before.mtime(), before.mtime_nsec()), (after.mtime(), after.mtime_nsec()));
    assert_eq!((before.ctime(), before.ctime_nsec()), (after.ctime(), after.ctime_nsec()));
}

#[test]
fn checkout_refuses_to_overwrite_unsaved_changes() {
    let env = Env::new();
    let entries = sample_dir(&env);
    env.write("model.bin", "v1");
    env.ok(&["add", "data", "model.bin"]);

    // A modified file inside a folder, while another file of it is missing.
    env.write("data/a.txt", "my precious edit");
    fs::remove_file(env.path("data/sub/b.txt")).unwrap();
    let out = env.fails(1, &["checkout", "data"]);
    assert!(out.stderr.contains("a.txt"), "the error should name the file:\n{out}");
    assert_eq!(env.read("data/a.txt"), b"my precious edit", "the edit must survive");
    assert!(!env.exists("data/sub/b.txt"), "a refused checkout changes nothing in that item");

    // A modified tracked file.
    env.write("model.bin", "v1, edited");
    let out = env.fails(1, &["checkout", "model.bin"]);
    assert!(out.stderr.contains("model.bin"), "{out}");
    assert_eq!(env.read("model.bin"), b"v1, edited");

    // --json failure: one document with the error.
    let out = env.run(&["--json", "checkout", "model.bin"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.json()["error"].as_str().unwrap().contains("model.bin"), "{out}");

    // --force discards the changes.
    env.ok(&["checkout", "--force", "data", "model.bin"]);
    assert_restored(&env, &entries);
    assert_eq!(env.read("model.bin"), b"v1");
}

#[test]
fn checkout_replaces_a_file_that_became_a_folder_only_with_force() {
    let env = Env::new();
    env.write("model.bin", "v1");
    env.ok(&["add", "model.bin"]);
    fs::remove_file(env.path("model.bin")).unwrap();
    env.write("model.bin/inner.txt", "unsaved");
    let out = env.fails(1, &["checkout"]);
    assert!(out.stderr.contains("model.bin"), "{out}");
    assert_eq!(env.read("model.bin/inner.txt"), b"unsaved");
    env.ok(&["checkout", "-f"]);
    assert_eq!(env.read("model.bin"), b"v1");
}

#[test]
fn checkout_of_an_older_version_removes_saved_extra_files() {
    let env = Env::new();
    env.write("data/a.txt", "a1");
    env.write("data/b.txt", "b");
    env.ok(&["add", "data"]);
    let v1 = env.read("data.trove");
    env.write("data/a.txt", "a2");
    env.write("data/extra/c.txt", "c");
    env.ok(&["add", "data"]);
    // Back to the first version (as `git checkout` of the pointer would do).
    env.write("data.trove", &v1);
    let v = env.json(&["checkout"]);
    let c = &v["checked_out"][0];
    assert_eq!(c["removed"], 1, "{v}");
    assert_eq!(c["placed"], 1, "{v}");
    assert_eq!(env.read("data/a.txt"), b"a1");
    assert_eq!(env.read("data/b.txt"), b"b");
    assert!(!env.exists("data/extra/c.txt"), "a saved file the manifest lacks is removed");
    assert!(!env.exists("data/extra"), "a folder left empty is removed");
    assert_eq!(env.json(&["status"])["tracked"][0]["state"], "unchanged");
}

#[test]
fn checkout_refuses_to_delete_an_unsaved_new_file() {
    let env = Env::new();
    env.write("data/a.txt", "a");
    env.ok(&["add", "data"]);
    env.write("data/new.txt", "not saved anywhere");
    let out = env.fails(1, &["checkout"]);
    assert!(out.stderr.contains("new.txt"), "{out}");
    assert_eq!(env.read("data/new.txt"), b"not saved anywhere");
    env.ok(&["checkout", "--force"]);
    assert!(!env.exists("data/new.txt"));
    assert_eq!(env.read("data/a.txt"), b"a");
}

#[test]
fn checkout_fails_on_an_object_missing_from_the_cache() {
    let env = Env::new();
    env.write("model.bin", "m");
    env.ok(&["add", "model.bin"]);
    fs::remove_file(env.path("model.bin")).unwrap();
    let obj = env.object_path(&blake3_hex(b"m"));
    fs::remove_file(&obj).unwrap();
    let out = env.fails(1, &["checkout"]);
    assert!(out.stderr.contains(&blake3_hex(b"m")), "the error should name the object:\n{out}");
    assert!(!env.exists("model.bin"));
}

#[test]
fn hardlinks_are_read_only_and_unprotect_makes_private_copies() {
    let env = Env::new();
    env.ok(&["config", "cache.link", "[hardlink, copy]"]);
    let entries = sample_dir(&env);
    env.ok(&["add", "data"]);
    // add already links the workspace to the cache.
    let a = env.path("data/a.txt");
    let obj = env.object_path(&blake3_hex(b"alpha\n"));
    assert_eq!(lmeta(&a).ino(), lmeta(&obj).ino(), "add with hardlink links the workspace file");

    fs::remove_dir_all(env.path("data")).unwrap();
    env.ok(&["checkout"]);
    assert_restored(&env, &entries);
    for e in entries.iter().filter(|e| !e.exec) {
        let p = env.path(&format!("data/{}", e.path));
        let obj = env.object_path(&blake3_hex(&e.content));
        let (m, o) = (lmeta(&p), lmeta(&obj));
        assert!(m.file_type().is_file(), "{} is a regular file", e.path);
        assert_eq!(m.ino(), o.ino(), "{} is a hard link to its object", e.path);
        assert!(m.nlink() > 1);
        assert_eq!(m.mode() & 0o222, 0, "{} is read-only (mode {:o})", e.path, m.mode());
    }
    assert_eq!(env.json(&["status"])["tracked"][0]["state"], "unchanged");

    let v = env.json(&["unprotect", "data"]);
    assert_eq!(v["unprotected"], (entries.len() - 1) as u64, "{v}");
    assert_restored(&env, &entries);
    for e in &entries {
        let p = env.path(&format!("data/{}", e.path));
        let m = lmeta(&p);
        assert_eq!(m.nlink(), 1, "{} is a private copy", e.path);
        assert_ne!(m.mode() & 0o200, 0, "{} is writable", e.path);
    }
    // Editing the private copy does not touch the cache.
    fs::write(&a, "edited").unwrap();
    assert_eq!(fs::read(&obj).unwrap(), b"alpha\n");
    assert_eq!(mode(&obj) & 0o222, 0);
    let st = env.json(&["status"]);
    assert_eq!(strings(&st["tracked"][0]["changes"]["modified"]), vec!["a.txt"]);
}

#[test]
fn symlinks_point_into_the_cache_and_unprotect_replaces_them() {
    let env = Env::new();
    env.ok(&["config", "cache.link", "[symlink]"]);
    env.write("data/a.txt", "alpha");
    env.write("data/sub/b.txt", "bravo");
    env.write("model.bin", "weights");
    env.ok(&["add", "data", "model.bin"]);
    fs::remove_dir_all(env.path("data")).unwrap();
    fs::remove_file(env.path("model.bin")).unwrap();
    env.ok(&["checkout"]);
    for (rel, content) in [("data/a.txt", "alpha"), ("data/sub/b.txt", "bravo"), ("model.bin", "weights")] {
        let p = env.path(rel);
        assert!(lmeta(&p).file_type().is_symlink(), "{rel} should be a symlink");
        let obj = env.object_path(&blake3_hex(content.as_bytes()));
        assert_eq!(fs::canonicalize(&p).unwrap(), fs::canonicalize(&obj).unwrap(), "{rel} -> its object");
        assert_eq!(fs::read(&p).unwrap(), content.as_bytes());
        assert_eq!(mode(&p) & 0o222, 0, "{rel} is read-only through the link");
    }
    let st = env.json(&["status"]);
    for t in st["tracked"].as_array().unwrap() {
        assert_eq!(t["state"], "unchanged", "{t}");
    }
    // Unprotect a single file inside a tracked folder, then a tracked file.
    env.ok(&["unprotect", "data/a.txt", "model.bin"]);
    for (rel, content) in [("data/a.txt", "alpha"), ("model.bin", "weights")] {
        let p = env.path(rel);
        let m = lmeta(&p);
        assert!(m.file_type().is_file(), "{rel} is a regular file now");
        assert_ne!(m.mode() & 0o200, 0, "{rel} is writable");
        assert_eq!(fs::read(&p).unwrap(), content.as_bytes());
    }
    assert!(lmeta(&env.path("data/sub/b.txt")).file_type().is_symlink(), "others are left alone");
    fs::write(env.path("model.bin"), "new weights").unwrap();
    assert_eq!(fs::read(env.object_path(&blake3_hex(b"weights"))).unwrap(), b"weights");
}

#[test]
fn unprotect_refuses_untracked_paths() {
    let env = Env::new();
    env.write("loose.txt", "x");
    let out = env.fails(1, &["unprotect", "loose.txt"]);
    assert!(out.stderr.contains("loose.txt"), "{out}");
}

#[test]
fn shared_cache_dir_serves_another_clone() {
    let env = Env::new();
    let shared = env.outside().join("shared-cache");
    env.ok(&["config", "cache.dir", shared.to_str().unwrap()]);
    env.write("data/a.txt", "from the first clone");
    env.ok(&["add", "data"]);
    let id = env.pointer("data.trove").hash;
    assert!(shared.join("objects").join(&id[..2]).join(format!("{}.dir", &id[2..])).is_file());
    assert!(!env.manifest_path(&id).exists(), "objects go to cache.dir, not .trove/cache");
    env.ok(&["commit", "-m", "data"]);

    // A second clone of the repository, using the same cache.
    let clone_dir = env.outside().join("clone");
    git2::Repository::clone(env.root.to_str().unwrap(), &clone_dir).unwrap();
    assert_eq!(
        fs::read_to_string(clone_dir.join(".trove/config")).unwrap(),
        env.read_string(".trove/config"),
        "cache.dir is a committed setting"
    );
    let out = env.run_in(&clone_dir, &["checkout"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(fs::read(clone_dir.join("data/a.txt")).unwrap(), b"from the first clone");
    let out = env.run_in(&clone_dir, &["--json", "status"]);
    assert_eq!(out.json()["tracked"][0]["state"], "unchanged", "{out}");
}

#[test]
fn relative_cache_dir_is_relative_to_the_top_folder() {
    let env = Env::new();
    env.ok(&["config", "cache.dir", "../rel-cache"]);
    env.write("sub/model.bin", "weights");
    let out = env.run_in(&env.path("sub"), &["add", "model.bin"]);
    assert_eq!(out.code, 0, "{out}");
    let hex = blake3_hex(b"weights");
    assert!(env.outside().join("rel-cache/objects").join(&hex[..2]).join(&hex[2..]).is_file());
}

#[test]
fn checkout_remembers_the_files_it_wrote() {
    let env = Env::new();
    env.write("model.bin", noise(1 << 20, 5));
    env.ok(&["add", "model.bin"]);
    fs::remove_file(env.path("model.bin")).unwrap();
    env.ok(&["checkout", "model.bin"]);
    // Other bytes under the same inode, size and mtime: a status that reads the file calls
    // it modified; one that trusts the hash-cache entry checkout left calls it unchanged.
    // (The entry is what spares the next status from reading a large file again.)
    let path = env.path("model.bin");
    rewrite_keeping_stamp(&path, b"not the model");
    let v = env.json(&["status"]);
    assert_eq!(v["tracked"][0]["state"], "unchanged", "{v}");
}

/// Overwrite a read-only cache object in place with other bytes of the same size.
fn damage_in_place(path: &std::path::Path) {
    use std::io::{Seek, Write};
    use std::os::unix::fs::PermissionsExt;
    let ino = lmeta(path).ino();
    let mut bytes = fs::read(path).unwrap();
    for b in bytes.iter_mut() {
        *b ^= 0x20;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    let mut f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.write_all(&bytes).unwrap();
    drop(f);
    fs::set_permissions(path, fs::Permissions::from_mode(0o444)).unwrap();
    assert_eq!(lmeta(path).ino(), ino, "damaged in place");
}

#[test]
fn checkout_from_a_damaged_object_fails_naming_it_and_pull_repairs_it() {
    let env = Env::new();
    let entries = sample_dir(&env);
    let model = noise(300_000, 8);
    env.write("model.bin", &model);
    env.ok(&["add", "data", "model.bin"]);
    env.ok(&["commit", "-m", "data"]);
    let remote = env.outside().join("remote");
    env.ok(&["remote", "add", "store", remote.to_str().unwrap(), "--default"]);
    env.ok(&["push"]);
    // One checkout from the sound objects first: the cache then knows them as sound.
    fs::remove_file(env.path("model.bin")).unwrap();
    env.ok(&["checkout"]);

    let model_id = blake3_hex(&model);
    let a_id = blake3_hex(b"alpha\n");
    for (rel, id, tracked) in [("model.bin", &model_id, "model.bin"), ("data/a.txt", &a_id, "data")] {
        damage_in_place(&env.object_path(id));
        fs::remove_file(env.path(rel)).unwrap();
        let out = env.fails(1, &["checkout"]);
        assert!(out.stderr.contains(id.as_str()), "the error names the object:\n{out}");
        assert!(out.stderr.contains("damaged"), "{out}");
        assert!(
            out.stderr.contains("hint: run `trove verify`") && out.stderr.contains("trove pull"),
            "{out}"
        );
        assert!(!env.exists(rel), "nothing is placed from a damaged object ({rel})");
        let out = env.run(&["--json", "checkout", tracked]);
        assert_eq!(out.code, 1, "{out}");
        assert!(out.json()["error"].as_str().unwrap().contains(id.as_str()), "{out}");
    }

    // verify moves the damaged objects aside, pull fetches sound copies and places them.
    env.fails(1, &["verify"]);
    env.ok(&["pull"]);
    assert_eq!(env.read("model.bin"), model);
    assert_restored(&env, &entries);
    // And what status, checkout and diff say is the truth: the workspace holds the data.
    for t in env.json(&["status"])["tracked"].as_array().unwrap() {
        assert_eq!(t["state"], "unchanged", "{t}");
    }
    let v = env.json(&["checkout", "--force"]);
    for c in v["checked_out"].as_array().unwrap() {
        assert_eq!((c["placed"].as_u64(), c["removed"].as_u64()), (Some(0), Some(0)), "{c}");
    }
    let d = env.json(&["diff"]);
    for k in ["added", "deleted", "modified"] {
        assert!(d[k].as_array().unwrap().is_empty(), "{d}");
    }
    env.write("model.bin", b"edited");
    env.write("data/a.txt", b"edited");
    let st = env.json(&["status"]);
    for t in st["tracked"].as_array().unwrap() {
        assert_eq!(t["state"], "modified", "{t}");
    }
    let d = env.json(&["diff"]);
    let mut modified: Vec<String> =
        d["modified"].as_array().unwrap().iter().map(|c| c["path"].as_str().unwrap().to_string()).collect();
    modified.sort();
    assert_eq!(modified, vec!["data/a.txt", "model.bin"], "{d}");
    env.ok(&["checkout", "--force"]);
    assert_eq!(env.read("model.bin"), model);
    assert_restored(&env, &entries);
}

#[test]
fn full_workspace_disk_fails_checkout_with_a_hint_and_the_rerun_works() {
    let env = Env::new();
    // The tracked folder lives on a 12 MiB disk of its own; the cache does not.
    let disk = SmallDisk::mount(&env.path("disk"), "12m");
    let big = noise(3 << 20, 21);
    env.write("disk/data/big.bin", &big);
    env.write("disk/data/small.txt", "small");
    env.ok(&["add", "disk/data"]);
    fs::remove_file(env.path("disk/data/big.bin")).unwrap();
    // 2 MiB free: too little for big.bin.
    let filler = disk.path().join("filler");
    fs::write(&filler, noise(10 << 20, 1)).unwrap();

    let out = env.fails(1, &["checkout"]);
    assert!(out.stderr.to_lowercase().contains("no space"), "the error says the disk is full:\n{out}");
    assert!(out.stderr.contains("disk/data/big.bin"), "the error names the file:\n{out}");
    assert!(
        out.stderr.contains("hint: the disk is full: free space on it, then run the command again"),
        "{out}"
    );
    let mut left = Vec::new();
    walk(&env.path("disk/data"), &mut left);
    assert_eq!(left, vec![env.path("disk/data/small.txt")], "no temp file is left behind");

    fs::remove_file(&filler).unwrap();
    env.ok(&["checkout"]);
    assert!(env.read("disk/data/big.bin") == big);
    assert_eq!(env.json(&["status"])["tracked"][0]["state"], "unchanged");
}

#[test]
fn verify_makes_the_hash_cache_forget_files_remembered_under_a_damaged_object() {
    use std::io::Write;
    let env = Env::new();
    let model = noise(200_000, 12);
    env.write("model.bin", &model);
    env.ok(&["add", "model.bin"]);
    env.ok(&["commit", "-m", "model"]);
    let remote = env.outside().join("remote");
    env.ok(&["remote", "add", "store", remote.to_str().unwrap(), "--default"]);
    env.ok(&["push"]);
    fs::remove_file(env.path("model.bin")).unwrap();
    env.ok(&["checkout"]);
    // What a checkout from a damaged object left before objects were checked: the bad
    // bytes in the workspace, remembered in the hash cache under the good id (same inode,
    // size and mtime as the entry).
    let id = blake3_hex(&model);
    damage_in_place(&env.object_path(&id));
    let bad = fs::read(env.object_path(&id)).unwrap();
    let path = env.path("model.bin");
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let mut f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all(&bad).unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);

    env.fails(1, &["verify"]);
    // The workspace is not taken for the good data any more.
    let t = env.json(&["status"])["tracked"][0].clone();
    assert_eq!(t["other_data"], true, "{t}");
    assert_ne!(t["state"], "unchanged", "{t}");
    // pull fetches a sound copy, and will not overwrite bytes saved nowhere unless forced.
    let out = env.fails(1, &["pull"]);
    assert!(out.stderr.contains("model.bin"), "{out}");
    assert_eq!(blake3_file(&env.object_path(&id)), id, "the sound copy is in the cache");
    env.ok(&["checkout", "--force"]);
    assert!(env.read("model.bin") == model);
    assert_eq!(env.json(&["status"])["tracked"][0]["state"], "unchanged");
    assert!(env.json(&["diff"])["modified"].as_array().unwrap().is_empty());
}
