//! `verify --remote [--repair]` on layout-2 remotes: damaged packs, missing packs and
//! damaged index files are found and named, a pull never places data from them, and a
//! repair re-uploads what this cache has so a fresh clone pulls everything.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

pub(crate) fn commit_all(env: &Env, message: &str) {
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "--allow-empty", "-m", message]);
}

/// Files of the work tree under `rel` (relative paths, sorted) with the BLAKE3 of each.
pub(crate) fn tree(env: &Env, rel: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let top = env.path(rel);
    if top.is_file() {
        return vec![(rel.to_string(), blake3_file(&top))];
    }
    if top.is_dir() {
        walk(&top, &mut files);
    }
    let mut out: Vec<(String, String)> = files
        .iter()
        .map(|f| (f.strip_prefix(&env.root).unwrap().to_string_lossy().into_owned(), blake3_file(f)))
        .collect();
    out.sort();
    out
}

/// Every file under `dir` of the remote at `root`.
pub(crate) fn files_under(root: &Path, dir: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if root.join(dir).exists() {
        walk(&root.join(dir), &mut out);
    }
    out.sort();
    out
}

/// `packs/xx/<hex>` or `index/<hex>`: a remote file's name as verify reports it.
pub(crate) fn rel(root: &Path, file: &Path) -> String {
    file.strip_prefix(root).unwrap().to_string_lossy().into_owned()
}

/// Flip one byte of a remote file in the middle.
pub(crate) fn damage(file: &Path) {
    fs::set_permissions(file, fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = fs::read(file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    fs::write(file, bytes).unwrap();
}

/// A repository with a folder of small files and a large file (several chunks), pushed
/// in two pushes (so two packs at least) to a layout-2 folder remote `store`.
fn pushed() -> (Env, PathBuf) {
    let env = Env::new();
    let root = env.outside().join("remote");
    env.ok(&["remote", "add", "store", root.to_str().unwrap(), "--default"]);
    fs::create_dir_all(env.path("shards")).unwrap();
    for i in 0..20u64 {
        env.write(&format!("shards/s{i:02}.bin"), noise(1000 + i as usize * 300, i));
    }
    env.ok(&["add", "shards"]);
    commit_all(&env, "shards");
    env.ok(&["push"]);
    env.write("model.bin", noise(3 << 20, 99));
    env.ok(&["add", "model.bin"]);
    commit_all(&env, "model");
    env.ok(&["push"]);
    assert!(files_under(&root, "packs").len() >= 2, "two pushes make two packs");
    (env, root)
}

/// The pack holding `model.bin`'s chunks: the one the second push wrote (the newest).
fn model_pack(root: &Path) -> PathBuf {
    let mut packs = files_under(root, "packs");
    packs.sort_by_key(|p| fs::metadata(p).unwrap().modified().unwrap());
    packs.pop().unwrap()
}

fn verify_json(env: &Env, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--json", "verify", "--remote", "store"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    (out.code, out.json()["verify"].clone())
}

/// A pull in a fresh clone places only sound data: every file it wrote has the source's
/// bytes, and its cache verifies.
fn pull_places_only_sound_data(env: &Env) -> (Env, i32) {
    let clone = clone_repo(&env.root);
    let out = clone.run(&["pull"]);
    for (path, hash) in tree(env, "shards").into_iter().chain(tree(env, "model.bin")) {
        let there = clone.path(&path);
        if there.is_file() {
            assert_eq!(blake3_file(&there), hash, "{path} in the clone differs:\n{out}");
        }
    }
    clone.ok(&["verify"]);
    (clone, out.code)
}

#[test]
fn a_sound_layout2_remote_verifies() {
    let (env, root) = pushed();
    let (code, v) = verify_json(&env, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["objects"], 22, "{v}"); // 20 files, a manifest, model.bin
    assert!(v.get("damaged_packs").is_none() && v.get("missing_packs").is_none(), "{v}");
    assert!(!files_under(&root, "index").is_empty());
}

#[test]
fn a_damaged_pack_is_named_and_never_pulled() {
    let (env, root) = pushed();
    let pack = model_pack(&root);
    damage(&pack);
    let (code, v) = verify_json(&env, &[]);
    assert_eq!(code, 1, "{v}");
    let damaged = &v["damaged_packs"];
    assert_eq!(damaged.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(damaged[0]["name"], rel(&root, &pack), "{v}");
    let corrupt: Vec<&str> =
        v["corrupt"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(corrupt, vec![env.pointer("model.bin.trove").hash], "only model.bin is in that pack: {v}");
    let text = env.run(&["verify", "--remote", "store"]);
    assert!(text.stdout.contains(&format!("damaged pack: {}", rel(&root, &pack))), "{text}");

    let (clone, code) = pull_places_only_sound_data(&env);
    assert_ne!(code, 0, "a pull of damaged data fails");
    assert!(!clone.path("model.bin").is_file(), "model.bin was placed from a damaged pack");
    // What the sound pack holds still pulls.
    clone.ok(&["pull", "shards"]);
    assert_eq!(tree(&clone, "shards"), tree(&env, "shards"));
}

#[test]
fn a_missing_pack_is_named() {
    let (env, root) = pushed();
    let pack = model_pack(&root);
    fs::remove_file(&pack).unwrap();
    let (code, v) = verify_json(&env, &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(strings(&v["missing_packs"]), vec![rel(&root, &pack)], "{v}");
    let (clone, code) = pull_places_only_sound_data(&env);
    assert_ne!(code, 0);
    assert!(!clone.path("model.bin").is_file());
}

#[test]
fn a_damaged_index_file_is_named_and_a_pull_refuses_it() {
    let (env, root) = pushed();
    let index = files_under(&root, "index");
    let victim = index.last().unwrap();
    damage(victim);
    let (code, v) = verify_json(&env, &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["damaged_index"][0]["name"], rel(&root, victim), "{v}");
    let (clone, code) = pull_places_only_sound_data(&env);
    assert_ne!(code, 0, "a pull refuses a damaged index file");
    assert!(!clone.path("model.bin").is_file() || tree(&clone, "model.bin") == tree(&env, "model.bin"));
}

#[test]
fn repair_reuploads_from_the_cache_and_a_fresh_clone_pulls_everything() {
    let (env, root) = pushed();
    let pack = model_pack(&root);
    damage(&pack);
    let (code, v) = verify_json(&env, &["--repair"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["repaired"], true, "{v}");
    assert!(v["corrupt"].as_array().unwrap().iter().all(|c| c["repair"] == "reuploaded"), "{v}");
    // The same chunks make a pack of the same name: a sound one replaced it.
    assert_eq!(blake3_file(&pack), pack.file_name().unwrap().to_str().unwrap(), "the damaged pack is gone");
    assert_eq!(files_under(&root, "index").len(), 1, "one index replaces the old ones");
    assert!(files_under(&root, "locks").is_empty(), "the exclusive lock is released");
    let (code, after) = verify_json(&env, &[]);
    assert_eq!(code, 0, "{after}");

    let clone = clone_repo(&env.root);
    clone.ok(&["pull"]);
    assert_eq!(tree(&clone, "shards"), tree(&env, "shards"));
    assert_eq!(tree(&clone, "model.bin"), tree(&env, "model.bin"));
}

#[test]
fn repair_replaces_a_damaged_index_file_and_a_push_restores_what_it_named() {
    let (env, root) = pushed();
    let victim = files_under(&root, "index").into_iter().next().unwrap();
    damage(&victim);
    let out = env.run(&["--json", "verify", "--remote", "store", "--repair"]);
    assert_eq!(out.code, 0, "{out}");
    let v = out.json()["verify"].clone();
    assert_eq!(v["damaged_index"][0]["name"], rel(&root, &victim), "{v}");
    assert_eq!(v["repaired"], true, "{v}");
    assert!(!victim.exists(), "the damaged index file is deleted");
    assert!(env.run(&["verify", "--remote", "store"]).stdout.contains("all sound"));
    // What only the damaged file named (when it no longer parses) is pushed again.
    env.ok(&["push"]);
    let clone = clone_repo(&env.root);
    clone.ok(&["pull"]);
    assert_eq!(tree(&clone, "shards"), tree(&env, "shards"));
    assert_eq!(tree(&clone, "model.bin"), tree(&env, "model.bin"));
}

#[test]
fn repair_without_a_local_copy_drops_the_object_so_pulls_call_it_missing() {
    let (env, root) = pushed();
    damage(&model_pack(&root));
    // A clone with an empty cache has no sound copy to re-upload.
    let other = clone_repo(&env.root);
    let out = other.run(&["--json", "verify", "--remote", "store", "--repair"]);
    assert_eq!(out.code, 1, "{out}");
    let v = out.json()["verify"].clone();
    assert_eq!(v["corrupt"][0]["repair"], "deleted", "{v}");
    let (code, after) = verify_json(&env, &[]);
    assert_eq!(code, 0, "what is left is sound: {after}");
    assert_eq!(after["objects"], 21, "{after}");

    let clone = clone_repo(&env.root);
    let out = clone.run(&["--json", "pull"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stdout.contains("missing") || out.stderr.contains("missing"), "{out}");
    clone.ok(&["pull", "shards"]);
    assert_eq!(tree(&clone, "shards"), tree(&env, "shards"));
    // The source still has model.bin: a push puts it back.
    env.ok(&["push"]);
    clone.ok(&["pull"]);
    assert_eq!(tree(&clone, "model.bin"), tree(&env, "model.bin"));
}
