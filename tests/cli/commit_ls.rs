//! `trove commit` and `trove ls`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// Wait until the clock has left the second in which the git index was last written (and
/// a little more: file times come from a clock that may lag by a tick).
fn wait_past_index_write(env: &Env) {
    let written = fs::metadata(env.path(".git/index")).unwrap().modified().unwrap();
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    while secs(SystemTime::now()) <= secs(written) {
        let into = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        sleep(Duration::from_nanos(u64::from(1_000_000_000 - into)) + Duration::from_millis(20));
    }
}

// git's racy-git rule: an entry whose mtime is not older (in whole seconds) than the index
// file may hide a same-size change made in that second, so git re-reads its content. When
// trove rewrites the index in a later second, such an entry stops looking racy; unless the
// write smudges it, git trusts its stat data and misses the change.
#[test]
fn git_sees_a_change_made_in_the_second_of_its_last_index_write() {
    let env = Env::new();
    env.write("data/b.csv", "b,000\n");
    env.write("req.txt", "torch==000\n");
    env.ok(&["add", "data"]);
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", "one"]);
    let mut raced = 0;
    for i in 1..=8 {
        // git stats req.txt and writes the index; req.txt changes (same size) in that second.
        env.write("req.txt", format!("torch=={:03}\n", 2 * i));
        env.git_cmd(&["add", "-A"]);
        env.git_cmd(&["commit", "-q", "-m", &format!("code {i}")]);
        let changed = format!("torch=={:03}\n", 2 * i + 1);
        env.write("req.txt", &changed);
        env.write("data/b.csv", format!("b,{i:03}\n"));
        let entry_secs =
            env.git().index().unwrap().get_path(Path::new("req.txt"), 0).unwrap().mtime.seconds();
        let index_secs = fs::metadata(env.path(".git/index")).unwrap().mtime();
        let file_secs = fs::metadata(env.path("req.txt")).unwrap().mtime();
        if i64::from(entry_secs) == index_secs && file_secs == index_secs {
            raced += 1;
        }
        // trove writes the index in a later second.
        wait_past_index_write(&env);
        if i % 2 == 0 {
            env.ok(&["commit", "-q", "-m", &format!("data {i}")]);
        } else {
            env.ok(&["add", "-q", "data"]);
        }
        let status = env.git_cmd(&["status", "--porcelain"]);
        assert!(
            status.lines().any(|l| l == " M req.txt"),
            "round {i}: git missed the change to req.txt:\n{status}"
        );
        env.git_cmd(&["add", "-A"]);
        env.git_cmd(&["commit", "-q", "-m", &format!("deps {i}")]);
        assert_eq!(env.head_blob("req.txt").as_deref(), Some(changed.as_bytes()), "round {i}");
        assert_eq!(env.git_cmd(&["diff", "HEAD", "--stat"]), "", "round {i}");
    }
    assert!(raced > 0, "no round changed req.txt in the second of git's index write");
}

#[test]
fn index_writes_leave_clean_files_under_an_eol_filter_clean() {
    let env = Env::new();
    env.write(".gitattributes", "*.txt text eol=crlf\n");
    env.write("data/a.csv", "a\n");
    env.ok(&["add", "data"]);
    for i in 0..3 {
        // Stored with LF, checked out with CRLF: the raw bytes are not the blob.
        env.write("notes.txt", format!("line {i}\r\n"));
        env.git_cmd(&["add", "-A"]);
        env.git_cmd(&["commit", "-q", "-m", &format!("notes {i}")]);
        assert_eq!(env.head_blob("notes.txt").as_deref(), Some(format!("line {i}\n").as_bytes()));
        env.write("data/a.csv", format!("a,{i}\n"));
        wait_past_index_write(&env);
        env.ok(&["add", "-q", "data"]);
        // Plumbing that does not refresh the index sees what is in it.
        assert_eq!(env.git_cmd(&["diff-files", "--name-only"]), "", "round {i}");
    }
}
