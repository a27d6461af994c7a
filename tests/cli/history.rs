//! Data across git revisions: diff, get, and push / fetch / pull / status --remote of
//! revisions other than the work tree.

use std::collections::BTreeMap;
use std::fs;

use serde_json::Value;

use crate::common::*;

fn paths(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|c| c["path"].as_str().unwrap().into())
        .collect()
}

#[test]
fn diff_between_each_pair_of_commits() {
    let h = three_commits(DataRemote::Configured);
    let env = &h.env;
    let [c1, c2, c3] = [&h.commits[0], &h.commits[1], &h.commits[2]];

    let v = env.json(&["diff", c1, c2]);
    assert_eq!(paths(&v, "added"), vec!["data/d.csv"], "{v}");
    assert_eq!(paths(&v, "modified"), vec!["data/b.csv", "model.bin"], "{v}");
    assert!(paths(&v, "deleted").is_empty(), "{v}");
    let b = &v["modified"][0];
    assert_eq!(b["old_size"], 4);
    assert_eq!(b["size"], 12);
    assert_eq!(b["old_hash"], blake3_hex(b"b,1\n"));
    assert_eq!(b["hash"], blake3_hex(b"b,2 changed\n"));

    let v = env.json(&["diff", c2, c3]);
    assert!(paths(&v, "added").is_empty() && paths(&v, "modified").is_empty(), "{v}");
    assert_eq!(paths(&v, "deleted"), vec!["data/a.csv"], "{v}");

    let v = env.json(&["diff", c1, c3]);
    assert_eq!(paths(&v, "added"), vec!["data/d.csv"]);
    assert_eq!(paths(&v, "deleted"), vec!["data/a.csv"]);
    assert_eq!(paths(&v, "modified"), vec!["data/b.csv", "model.bin"]);

    // Backwards, the other way round.
    let v = env.json(&["diff", c3, c1]);
    assert_eq!(paths(&v, "added"), vec!["data/a.csv"]);
    assert_eq!(paths(&v, "deleted"), vec!["data/d.csv"]);

    // No arguments: HEAD against the work tree, including changes not yet added.
    let v = env.json(&["diff"]);
    assert!(paths(&v, "added").is_empty() && paths(&v, "modified").is_empty(), "{v}");
    let out = env.ok(&["diff"]);
    assert!(out.stdout.contains("no changes between HEAD and workspace"), "{out}");
    env.ok(&["unprotect", "data"]);
    env.write("data/b.csv", "b,3 uncommitted\n");
    env.write("data/e.csv", "e\n");
    let v = env.json(&["diff"]);
    assert_eq!(v["a"], "HEAD");
    assert_eq!(v["b"], "workspace");
    assert_eq!(paths(&v, "added"), vec!["data/e.csv"], "{v}");
    assert_eq!(paths(&v, "modified"), vec!["data/b.csv"], "{v}");
    // One revision: that revision against the work tree.
    let v = env.json(&["diff", c1]);
    assert_eq!(paths(&v, "added"), vec!["data/d.csv", "data/e.csv"], "{v}");
    assert_eq!(paths(&v, "deleted"), vec!["data/a.csv"], "{v}");
    let out = env.ok(&["diff", c1]);
    assert!(out.stdout.contains("Added:\n    data/d.csv"), "{out}");
    assert!(out.stdout.contains("5 files changed"), "{out}");

    let out = env.fails(1, &["diff", "no-such-rev"]);
    assert!(out.stderr.contains("no-such-rev"), "{out}");
}

#[test]
fn get_writes_each_revision_byte_identical_without_moving_head() {
    let h = three_commits(DataRemote::Configured);
    let env = &h.env;
    let before = head(env);
    for (i, commit) in h.commits.iter().enumerate() {
        let out_dir = format!("old{i}");
        let v = env.json(&["get", "data", "--rev", commit, "-o", &out_dir]);
        assert_eq!(v["path"], "data");
        assert_eq!(v["commit"], commit.as_str());
        let mut files = Vec::new();
        walk(&env.path(&out_dir), &mut files);
        let got: BTreeMap<String, Vec<u8>> = files
            .iter()
            .map(|f| {
                let rel = f.strip_prefix(env.path(&out_dir)).unwrap().to_str().unwrap();
                (format!("data/{rel}"), fs::read(f).unwrap())
            })
            .collect();
        let want: BTreeMap<String, Vec<u8>> = h.contents[i]
            .iter()
            .filter(|(k, _)| k.starts_with("data/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(got, want, "data at commit {}", i + 1);
        // A single file, by its pointer path, into another folder.
        let model = env.outside().join(format!("model{i}.bin"));
        env.ok(&["get", "model.bin.trove", "--rev", commit, "-o", model.to_str().unwrap()]);
        assert_eq!(fs::read(&model).unwrap(), h.contents[i]["model.bin"]);
    }
    assert_eq!(head(env), before, "get does not move HEAD");
    assert!(env.git_cmd(&["status", "--porcelain", "--untracked-files=no"]).trim().is_empty());

    // Errors name their subject.
    let out = env.fails(1, &["get", "data", "--rev", &h.commits[0]]);
    assert!(out.stderr.contains("already exists") && out.stderr.contains("-o"), "{out}");
    let out = env.fails(1, &["get", "nothing", "--rev", "HEAD", "-o", "x"]);
    assert!(out.stderr.contains("nothing") && out.stderr.contains("not tracked"), "{out}");
    let out = env.fails(1, &["get", "data", "--rev", "nope", "-o", "x"]);
    assert!(out.stderr.contains("nope"), "{out}");
    env.fails(2, &["get", "data"]);
}

#[test]
fn get_fetches_what_the_cache_lacks() {
    let h = three_commits(DataRemote::Configured);
    let env = &h.env;
    env.ok(&["push", "--all-commits"]);
    let clone = clone_repo(&env.root);
    // Nothing local: get fetches the first commit's folder from the remote.
    let v = clone.json(&["get", "data", "--rev", &h.commits[0], "-o", "first"]);
    assert_eq!(v["files"], 3, "{v}");
    assert_eq!(clone.read("first/a.csv"), b"a,1\n");
    assert!(!clone.exists("data"), "the work tree's data is not restored by get");
}

fn assert_work_tree_is(env: &Env, want: &BTreeMap<String, Vec<u8>>, what: &str) {
    let now = snapshot(env);
    assert_eq!(now.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{what}");
    assert!(now == *want, "{what}: contents differ");
}

#[test]
fn a_clone_that_pulled_all_commits_checks_out_every_commit_offline() {
    let h = three_commits(DataRemote::Configured);
    let env = &h.env;
    // Pushing only the work tree leaves older data behind...
    env.ok(&["push"]);
    let v = env.json(&["status", "--remote", "--all-commits"]);
    let behind: Vec<&Value> =
        v["tracked"].as_array().unwrap().iter().filter(|t| t["in_sync"] == false).collect();
    assert!(!behind.is_empty(), "{v}");
    assert!(behind.iter().all(|t| t["path"].as_str().unwrap().contains('@')), "{v}");
    // ... which --all-commits sends.
    let v = env.json(&["push", "--all-commits"]);
    assert!(v["transfer"]["files"].as_u64().unwrap() > 0, "{v}");
    let v = env.json(&["status", "--remote", "--all-commits"]);
    assert!(v["tracked"].as_array().unwrap().iter().all(|t| t["in_sync"] == true), "{v}");

    let clone = clone_repo(&env.root);
    clone.ok(&["pull", "--all-commits"]);
    assert_work_tree_is(&clone, &h.contents[2], "after pull");
    // Offline: the remote is gone.
    fs::rename(h.store(), h.store().with_file_name("gone")).unwrap();
    for (i, commit) in h.commits.iter().enumerate() {
        clone.git_cmd(&["checkout", "-q", commit]);
        clone.ok(&["checkout"]);
        assert_work_tree_is(&clone, &h.contents[i], &format!("commit {}", i + 1));
    }
    // Back to the branch tip.
    clone.git_cmd(&["checkout", "-q", "-"]);
}

#[test]
fn rev_and_all_branches_select_what_is_transferred() {
    let h = three_commits(DataRemote::Configured);
    let env = &h.env;
    // A branch from the first commit, with its own data.
    env.git_cmd(&["branch", "baseline", &h.commits[0]]);
    // --rev: the work tree and that commit's data, nothing of commit 2 alone.
    let v = env.json(&["push", "--rev", &h.commits[0]]);
    assert!(v["transfer"]["files"].as_u64().unwrap() > 0, "{v}");
    let v = env.json(&["status", "--remote", "--rev", &h.commits[1]]);
    let at2: Vec<&Value> =
        v["tracked"].as_array().unwrap().iter().filter(|t| t["in_sync"] == false).collect();
    assert!(!at2.is_empty(), "commit 2's own data was not pushed: {v}");
    // --all-branches covers the baseline branch (commit 1) and main's head.
    let v = env.json(&["status", "--remote", "--all-branches"]);
    assert!(v["tracked"].as_array().unwrap().iter().all(|t| t["in_sync"] == true), "{v}");

    // fetch --rev into a clone brings that revision's objects only.
    let clone = clone_repo(&env.root);
    clone.ok(&["fetch", "--rev", "origin/baseline"]);
    clone.git_cmd(&["checkout", "-q", "origin/baseline"]);
    clone.ok(&["checkout"]);
    assert_work_tree_is(&clone, &h.contents[0], "baseline");
    let out = clone.fails(1, &["push", "--rev", "no-such-branch"]);
    assert!(out.stderr.contains("no-such-branch"), "{out}");
    env.fails(2, &["status", "--all-commits"]);
}

#[test]
fn diff_fetches_missing_manifests_or_says_what_is_unknown() {
    let h = three_commits(DataRemote::Configured);
    let env = &h.env;
    env.ok(&["push", "--all-commits"]);
    let clone = clone_repo(&env.root);
    // The clone's cache is empty: diff reads the folder manifests from the remote.
    let v = clone.json(&["diff", &h.commits[0], &h.commits[2]]);
    assert_eq!(paths(&v, "added"), vec!["data/d.csv"], "{v}");
    assert_eq!(paths(&v, "deleted"), vec!["data/a.csv"], "{v}");
    assert!(v["unavailable"].as_array().unwrap().is_empty(), "{v}");
    // Without a remote, what cannot be known is said, not guessed.
    let other = clone_repo(&env.root);
    other.ok(&["remote", "remove", "store"]);
    let v = other.fails(1, &["--json", "diff", &h.commits[0], &h.commits[1]]).json();
    let unknown = v["unavailable"].as_array().unwrap();
    assert_eq!(unknown.len(), 2, "{v}");
    assert!(unknown.iter().all(|u| u["path"] == "data"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("incomplete"), "{v}");
    let out = other.fails(1, &["diff", &h.commits[0], &h.commits[1]]);
    assert!(out.stdout.contains("Unknown: data"), "{out}");
    assert!(out.stderr.contains("error: diff between") && out.stderr.contains("hint:"), "{out}");
    // The file pointer's change is still known: its pointers name both ids and sizes.
    assert_eq!(paths(&v, "modified"), vec!["model.bin"], "{v}");
    assert!(paths(&v, "added").is_empty() && paths(&v, "deleted").is_empty(), "{v}");
}

#[test]
fn diff_lists_nothing_under_a_folder_whose_files_are_unknown() {
    let h = three_commits(DataRemote::Configured);
    let env = &h.env;
    env.ok(&["push", "--all-commits"]);
    let (c1, c3) = (&h.commits[0], &h.commits[2]);
    // A clone that pulled the head (commit 3) and then lost its remote: it knows the
    // head's folder manifest, not commit 1's.
    let clone = clone_repo(&env.root);
    clone.ok(&["pull"]);
    clone.ok(&["remote", "remove", "store"]);
    for args in
        [vec!["diff", c1.as_str(), c3.as_str()], vec!["diff", c3.as_str(), c1.as_str()], vec!["diff", c1]]
    {
        let mut json = vec!["--json"];
        json.extend(&args);
        let v = clone.fails(1, &json).json();
        assert!(paths(&v, "added").is_empty(), "{args:?}: a side's unknown files are not added: {v}");
        assert!(paths(&v, "deleted").is_empty(), "{args:?}: nor deleted: {v}");
        assert_eq!(paths(&v, "modified"), vec!["model.bin"], "{args:?}: {v}");
        let unknown = v["unavailable"].as_array().unwrap();
        assert_eq!(unknown.len(), 1, "{v}");
        assert_eq!(unknown[0]["path"], "data", "{v}");
        assert_eq!(unknown[0]["side"], c1.as_str(), "{v}");
        let out = clone.fails(1, &args);
        assert!(!out.stdout.contains("Added:") && !out.stdout.contains("Deleted:"), "{out}");
        assert!(out.stdout.contains(&format!("Unknown: data at {c1}")), "{out}");
        assert!(out.stdout.contains("1 file changed"), "{out}");
        assert!(out.stderr.contains(&format!("the files of data at {c1} are unknown")), "{out}");
        assert!(out.stderr.contains("hint: add a remote"), "{out}");
    }
    // With both sides known the clone's answer is whole again.
    let v = clone.json(&["diff", c3]);
    assert!(v["unavailable"].as_array().unwrap().is_empty(), "{v}");

    // Data whose pointer is the same on both sides is unchanged, files known or not.
    let empty = clone_repo(&env.root);
    empty.ok(&["remote", "remove", "store"]);
    for args in [vec!["diff", c3.as_str(), c3.as_str()], vec!["diff"]] {
        let v = empty.json(&args);
        assert!(v["unavailable"].as_array().unwrap().is_empty(), "{args:?}: {v}");
        let out = empty.ok(&args);
        assert!(out.stdout.contains("no changes"), "{out}");
    }
}

#[test]
fn diff_says_which_manifest_the_remote_lacks() {
    let h = three_commits(DataRemote::Configured);
    let env = &h.env;
    // Only the head's data reaches the remote.
    env.ok(&["push"]);
    let clone = clone_repo(&env.root);
    let (c1, c3) = (&h.commits[0], &h.commits[2]);
    let v = clone.fails(1, &["--json", "diff", c1, c3]).json();
    assert!(paths(&v, "added").is_empty() && paths(&v, "deleted").is_empty(), "{v}");
    assert_eq!(paths(&v, "modified"), vec!["model.bin"], "{v}");
    let out = clone.fails(1, &["diff", c1, c3]);
    assert!(out.stderr.contains("is in neither the cache nor remote store"), "{out}");
    assert!(out.stderr.contains("hint: they are not on the remote either"), "{out}");
}
