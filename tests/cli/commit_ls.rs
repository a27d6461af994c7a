//! `trove commit` and `trove ls`.

use std::fs;

use crate::common::*;

fn head_message(env: &Env) -> String {
    env.git().head().unwrap().peel_to_commit().unwrap().message().unwrap().to_string()
}

fn head_id(env: &Env) -> String {
    env.git().head().unwrap().peel_to_commit().unwrap().id().to_string()
}

#[test]
fn commit_readds_modified_data_and_commits_the_pointers() {
    let env = Env::new();
    env.write("data/a.txt", "a1");
    env.write("model.bin", "m1");
    env.ok(&["add", "data", "model.bin"]);
    let v = env.json(&["commit", "-m", "first"]);
    let first = v["commit"].as_str().expect("a commit id").to_string();
    assert_eq!(head_id(&env), first);
    assert_eq!(head_message(&env).trim_end(), "first");
    for p in ["data.trove", "model.bin.trove", ".gitignore", ".trove/config", ".trove/.gitignore"] {
        assert_eq!(env.head_blob(p).as_deref(), Some(&env.read(p)[..]), "{p} in the first commit");
    }
    assert!(env.head_blob("data/a.txt").is_none(), "the data itself is never committed");

    // Modify the data, and commit again: it is re-added first.
    env.write("data/a.txt", "a2");
    env.write("data/b.txt", "b");
    let v = env.json(&["commit", "-m", "second"]);
    let second = v["commit"].as_str().expect("a commit id").to_string();
    assert_ne!(first, second);
    let readded = v["readded"].as_array().unwrap();
    assert_eq!(readded.len(), 1, "{v}");
    assert_eq!(readded[0]["path"], "data");
    assert_eq!(head_message(&env).trim_end(), "second");
    let git = env.git();
    let commit = git.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(commit.parent_id(0).unwrap().to_string(), first);

    let entries = vec![
        Entry { path: "a.txt".into(), content: b"a2".to_vec(), exec: false },
        Entry { path: "b.txt".into(), content: b"b".to_vec(), exec: false },
    ];
    let expected = crate::add::dir_pointer("data", &entries).text();
    assert_eq!(env.read_string("data.trove"), expected);
    assert_eq!(env.head_blob("data.trove").unwrap(), expected.as_bytes(), "HEAD has the new pointer");
    assert_eq!(env.index_blob("data.trove").unwrap(), expected.as_bytes(), "the index agrees");
    assert_eq!(env.json(&["status"])["tracked"][0]["state"], "unchanged");
    assert!(env.manifest_path(&blake3_hex(manifest_bytes(&entries).as_bytes())).is_file());

    // Nothing left to commit.
    let v = env.json(&["commit", "-m", "third"]);
    assert!(v["commit"].is_null(), "{v}");
    assert_eq!(head_id(&env), second);
    let out = env.ok(&["commit", "-m", "fourth"]);
    assert!(out.stdout.contains("nothing to commit"), "{out}");
    assert_eq!(head_id(&env), second);
}

#[test]
fn commit_leaves_other_staged_changes_alone() {
    let env = Env::new();
    env.write("model.bin", "m1");
    env.ok(&["add", "model.bin"]);
    env.write("notes.txt", "unrelated work in progress");
    env.git_cmd(&["add", "notes.txt"]);
    env.ok(&["commit", "-m", "model"]);
    assert!(env.head_blob("model.bin.trove").is_some());
    assert!(env.head_blob("notes.txt").is_none(), "commit must only commit trove's files");
    assert!(env.index_paths().contains(&"notes.txt".to_string()), "notes.txt stays staged");
    // git itself sees a consistent index and HEAD.
    let diff = env.git_cmd(&["diff", "--cached", "--name-only"]);
    assert_eq!(diff.trim(), "notes.txt");
}

#[test]
fn commit_without_message_names_the_items() {
    let env = Env::new();
    env.write("model.bin", "m1");
    env.ok(&["add", "model.bin"]);
    env.ok(&["commit"]);
    let msg = head_message(&env);
    assert!(msg.contains("model.bin"), "{msg}");
}

#[test]
fn ls_lists_the_work_tree_and_a_revision() {
    let env = Env::new();
    env.write("data/a.txt", "aaa");
    env.write("data/sub/b.txt", "bb");
    env.write("model.bin", "m1");
    env.ok(&["add", "data", "model.bin"]);
    env.git_cmd(&["commit", "-q", "-m", "v1"]);
    let v1_model = blake3_hex(b"m1");

    env.write("model.bin", "m2, longer");
    env.ok(&["add", "model.bin"]);

    let v = env.json(&["ls"]);
    let rows = v["tracked"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    let data = rows.iter().find(|r| r["path"] == "data").unwrap();
    assert_eq!(data["kind"], "dir");
    assert_eq!(data["files"], 2);
    assert_eq!(data["size"], 5);
    assert_eq!(data["pointer"], "data.trove");
    assert_eq!(data["in_cache"], true);
    assert_eq!(data["hash"].as_str().unwrap(), env.pointer("data.trove").hash);
    let model = rows.iter().find(|r| r["path"] == "model.bin").unwrap();
    assert_eq!(model["kind"], "file");
    assert!(model["files"].is_null());
    assert_eq!(model["size"], 10);
    assert_eq!(model["hash"].as_str().unwrap(), blake3_hex(b"m2, longer"));

    let v = env.json(&["ls", "HEAD"]);
    let rows = v["tracked"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    let model = rows.iter().find(|r| r["path"] == "model.bin").unwrap();
    assert_eq!(model["hash"].as_str().unwrap(), v1_model, "ls HEAD shows the committed version");
    assert_eq!(model["size"], 2);

    let out = env.ok(&["ls"]);
    assert!(out.stdout.contains("data") && out.stdout.contains("model.bin"), "{out}");

    // Not in the cache any more: reported.
    let obj = env.object_path(&blake3_hex(b"m2, longer"));
    fs::remove_file(obj).unwrap();
    let v = env.json(&["ls"]);
    let model = v["tracked"].as_array().unwrap().iter().find(|r| r["path"] == "model.bin").unwrap().clone();
    assert_eq!(model["in_cache"], false, "{v}");

    let out = env.fails(1, &["ls", "no-such-branch"]);
    assert!(out.stderr.contains("no-such-branch"), "{out}");
}

#[test]
fn ls_with_nothing_tracked() {
    let env = Env::new();
    assert_eq!(env.json(&["ls"])["tracked"].as_array().unwrap().len(), 0);
    let out = env.ok(&["ls"]);
    assert!(out.stdout.contains("no tracked data"), "{out}");
}

#[test]
fn ls_in_a_subfolder_pointer_at_a_revision() {
    let env = Env::new();
    env.write("sets/raw/x.csv", "1,2\n");
    env.ok(&["add", "sets/raw"]);
    env.git_cmd(&["commit", "-q", "-m", "raw"]);
    let v = env.json(&["ls", "HEAD"]);
    assert_eq!(v["tracked"][0]["path"], "sets/raw", "{v}");
    assert_eq!(v["tracked"][0]["pointer"], "sets/raw.trove", "{v}");
}
