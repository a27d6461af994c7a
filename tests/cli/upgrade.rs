//! `trove remote upgrade NAME`: a layout-1 remote made by this trove's pushes becomes
//! layout 2 in place; a fresh clone pulls everything from it; a kill -9 anywhere loses
//! nothing and a rerun finishes.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::sshd::Sshd;
use crate::verify_remote::{commit_all, damage, files_under, tree};

/// Small files, a manifest and a large file, pushed to a layout-1 remote `store`.
fn layout1_remote(env: &Env, url: &str, files: u64) {
    env.ok(&["remote", "add", "store", url, "--default"]);
    env.ok(&["remote", "set", "store", "layout", "1"]);
    fill(env, files);
}

fn fill(env: &Env, files: u64) {
    fs::create_dir_all(env.path("shards")).unwrap();
    for i in 0..files {
        env.write(&format!("shards/s{i:03}.bin"), noise(500 + (i as usize * 37) % 4000, i));
    }
    env.write("model.bin", noise(3 << 20, 7));
    env.ok(&["add", "shards", "model.bin"]);
    commit_all(env, "data");
    env.ok(&["push"]);
}

fn layout_of(root: &Path) -> String {
    fs::read_to_string(root.join("TROVE_REMOTE")).unwrap()
}

/// A fresh clone pulls everything, byte for byte, and the remote verifies.
fn assert_pulls_everything(env: &Env, context: &str) {
    let clone = clone_repo(&env.root);
    let out = clone.run(&["pull"]);
    assert_eq!(out.code, 0, "{context}: pull:\n{out}");
    assert_eq!(tree(&clone, "shards"), tree(env, "shards"), "{context}");
    assert_eq!(tree(&clone, "model.bin"), tree(env, "model.bin"), "{context}");
    let out = clone.run(&["verify", "--remote", "store"]);
    assert_eq!(out.code, 0, "{context}: verify --remote:\n{out}");
}

#[test]
fn upgrade_converts_a_layout1_remote_in_place() {
    let env = Env::new();
    let root = env.outside().join("remote");
    layout1_remote(&env, root.to_str().unwrap(), 60);
    assert!(layout_of(&root).contains("layout: 1"));
    let before = files_under(&root, "").len();
    assert!(before > 60, "one file per object: {before}");

    let v = env.json(&["remote", "upgrade", "store"]);
    let u = &v["upgrade"];
    assert_eq!(u["from_layout"], 1, "{v}");
    assert_eq!(u["objects"], 62, "60 files, a manifest and model.bin: {v}");
    assert_eq!(u["deleted"], 62, "{v}");
    assert!(u["bytes_before"].as_u64().unwrap() > 3 << 20, "{v}");
    assert!(u["bytes_after"].as_u64().unwrap() > 0, "{v}");
    assert!(layout_of(&root).contains("layout: 2"), "{}", layout_of(&root));
    assert!(!root.join("objects").exists(), "objects/ and its fan-out folders are gone");
    let after = files_under(&root, "").len();
    assert!(after * 10 < before, "far fewer files: {after} from {before}");
    assert!(files_under(&root, "locks").is_empty(), "the lock is released");
    assert_pulls_everything(&env, "after the upgrade");

    let out = env.ok(&["remote", "upgrade", "store"]);
    assert!(out.stdout.contains("layout 2 already"), "{out}");
    // Pushes go on in layout 2.
    env.write("more.bin", noise(10_000, 500));
    env.ok(&["add", "more.bin"]);
    commit_all(&env, "more");
    env.ok(&["push"]);
    assert!(!root.join("objects").exists());
    assert_pulls_everything(&env, "after a later push");
}

#[test]
fn a_rerun_converts_and_deletes_object_files_left_under_objects() {
    let env = Env::new();
    let root = env.outside().join("remote");
    layout1_remote(&env, root.to_str().unwrap(), 10);
    let pristine = env.outside().join("pristine");
    copy_tree(&root, &pristine);
    env.ok(&["remote", "upgrade", "store"]);
    // As if the upgrade were killed while deleting object files, with one object file
    // more that a layout-1 push added meanwhile.
    copy_tree(&pristine.join("objects"), &root.join("objects"));
    let extra = noise(2000, 4242);
    let id = blake3_hex(&extra);
    let at = root.join("objects").join(&id[..2]).join(&id[2..]);
    fs::create_dir_all(at.parent().unwrap()).unwrap();
    fs::write(&at, &extra).unwrap();

    let v = env.json(&["verify", "--remote", "store"]);
    assert_eq!(v["verify"]["leftovers"], 13, "verify counts them: {v}");
    let out = env.ok(&["remote", "upgrade", "store"]);
    assert!(out.stdout.contains("left under objects/"), "{out}");
    let v = env.json(&["remote", "upgrade", "store"]);
    assert_eq!(v["upgrade"]["already"], true, "{v}");
    assert!(!root.join("objects").exists());
    assert_pulls_everything(&env, "after the rerun");
    // The extra object was converted: the index names it.
    env.write("extra.bin", &extra);
    env.ok(&["add", "extra.bin"]);
    let out = env.json(&["push"]);
    assert_eq!(out["transfer"]["files"], 0, "nothing to upload: {out}");
    assert_eq!(out["transfer"]["already_there"], 13, "{out}");
}

#[test]
fn a_corrupt_object_file_is_reported_and_not_converted() {
    let env = Env::new();
    let root = env.outside().join("remote");
    layout1_remote(&env, root.to_str().unwrap(), 10);
    let hash = env.pointer("model.bin.trove").hash;
    let victim = root.join("objects").join(&hash[..2]).join(&hash[2..]);
    damage(&victim);
    let out = env.run(&["--json", "remote", "upgrade", "store"]);
    assert_eq!(out.code, 1, "{out}");
    let u = &out.json()["upgrade"];
    assert_eq!(u["corrupt"][0]["id"], hash.as_str(), "{out}");
    assert_eq!(u["objects"], 11, "{out}");
    assert!(victim.exists(), "the corrupt file is left in place");
    assert!(layout_of(&root).contains("layout: 2"));
    // The sound copy in this cache goes up with a push.
    env.ok(&["push"]);
    assert_pulls_everything(&env, "after pushing the sound copy");
}

#[test]
fn upgrade_over_sftp() {
    let server = Sshd::start();
    let env = Env::new();
    let root = server.data.join("store");
    env.ok(&["remote", "add", "store", &server.url(&root), "--default"]);
    env.ok(&["remote", "set", "store", "keyfile", server.key.to_str().unwrap()]);
    env.ok(&["remote", "set", "store", "known_hosts", server.known_hosts.to_str().unwrap()]);
    env.ok(&["remote", "set", "store", "layout", "1"]);
    fill(&env, 30);
    let before = files_under(&root, "").len();
    env.ok(&["remote", "upgrade", "store"]);
    assert!(layout_of(&root).contains("layout: 2"));
    assert!(!root.join("objects").exists());
    assert!(files_under(&root, "").len() * 5 < before);
    assert_pulls_everything(&env, "over SFTP");
}

#[test]
fn upgrade_over_s3() {
    let server = crate::s3::S3Server::start();
    let env = Env::new();
    let root = server.bucket_dir().join("store");
    env.ok(&["remote", "add", "store", &server.url(&root), "--default"]);
    crate::remotes::configure_s3(&env, "store", &server);
    env.ok(&["remote", "set", "store", "layout", "1"]);
    fill(&env, 30);
    let before = files_under(&root, "").len();
    env.ok(&["remote", "upgrade", "store"]);
    assert!(layout_of(&root).contains("layout: 2"));
    // (S3 has no folders: s3s-fs may keep the emptied ones; no object is left in them.)
    assert!(files_under(&root, "objects").is_empty());
    assert!(files_under(&root, "").len() * 5 < before);
    assert_pulls_everything(&env, "over S3");
}

fn copy_tree(from: &Path, to: &Path) {
    let mut files = Vec::new();
    walk(from, &mut files);
    for f in files {
        let dest = to.join(f.strip_prefix(from).unwrap());
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(&f, &dest).unwrap();
    }
}

#[test]
fn kill_9_during_upgrade_loses_nothing_and_a_rerun_finishes() {
    let env = Env::new();
    let root = env.outside().join("remote");
    layout1_remote(&env, root.to_str().unwrap(), 300);
    let pristine = env.outside().join("pristine");
    copy_tree(&root, &pristine);
    let reset = |root: &PathBuf| {
        fs::remove_dir_all(root).unwrap();
        copy_tree(&pristine, root);
    };
    let started = Instant::now();
    env.ok(&["remote", "upgrade", "store"]);
    let mut full = started.elapsed();
    let rounds = 10;
    let mut killed = 0;
    for round in 0..rounds {
        reset(&root);
        // Spread over the whole run: one point in each tenth of it.
        let delay = full.mul_f64((round as f64 + 0.5) / rounds as f64).max(Duration::from_millis(1));
        let context = format!("round {round}: killed after {delay:?} of {full:?}");
        match kill_after(&env, &env.root, &["remote", "upgrade", "store"], delay) {
            None => killed += 1,
            // Quicker than the timed run: later points shrink to fit.
            Some(took) => full = full.min(took),
        }
        // Whatever the kill left, the remote serves every object.
        assert_pulls_everything(&env, &format!("{context}, before the rerun"));
        let out = env.run(&["remote", "upgrade", "store"]);
        assert_eq!(out.code, 0, "{context}: rerun:\n{out}");
        assert!(layout_of(&root).contains("layout: 2"), "{context}");
        assert!(!root.join("objects").exists(), "{context}: objects/ left");
        assert!(files_under(&root, "locks").is_empty(), "{context}: a lock left");
        assert!(files_under(&root, "tmp").is_empty(), "{context}: temps left");
        assert_pulls_everything(&env, &format!("{context}, after the rerun"));
    }
    eprintln!("{killed} of {rounds} upgrades killed mid-way");
    assert!(killed >= rounds / 2, "too few kills landed inside an upgrade");
}

#[test]
fn a_rerun_after_a_kill_skips_what_an_index_already_names() {
    let env = Env::new();
    let root = env.outside().join("remote");
    env.ok(&["remote", "add", "store", root.to_str().unwrap(), "--default"]);
    env.ok(&["remote", "set", "store", "layout", "1"]);
    // Enough for several packs, so the upgrade writes an index before it ends.
    fs::create_dir_all(env.path("big")).unwrap();
    let files = 48;
    for i in 0..files {
        env.write(&format!("big/b{i:02}.bin"), noise(2 << 20, 1000 + i));
    }
    env.ok(&["add", "big"]);
    commit_all(&env, "big");
    env.ok(&["push"]);

    // Kill it as soon as its first index file is there.
    let outcome = kill_when(&env, &env.root, &["remote", "upgrade", "store"], |_| {
        !files_under(&root, "index").is_empty()
    });
    assert!(outcome.is_none(), "the upgrade ended before a kill after its first index");
    assert!(layout_of(&root).contains("layout: 1"), "not switched before every object is converted");

    let v = env.json(&["remote", "upgrade", "store"]);
    let converted = v["upgrade"]["objects"].as_u64().unwrap();
    assert!(converted < files + 1, "objects an index named were skipped: {v}");
    assert_eq!(v["upgrade"]["deleted"], files + 1, "{v}");
    assert!(!root.join("objects").exists());
    let clone = clone_repo(&env.root);
    clone.ok(&["pull"]);
    assert_eq!(tree(&clone, "big"), tree(&env, "big"));
    clone.ok(&["verify", "--remote", "store"]);
}
