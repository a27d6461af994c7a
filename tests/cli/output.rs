//! Output conventions: one JSON document with --json, nothing with -q.

use std::fs;

use crate::common::*;

#[test]
fn json_everywhere_is_one_document() {
    let env = Env::plain();
    let run = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = env.run(&all);
        assert_eq!(out.code, 0, "{args:?}:\n{out}");
        // Exactly one document: serde_json rejects trailing content.
        let v = out.json();
        assert!(v.is_object(), "{args:?}: {v}");
        assert!(!out.stderr.contains("hint:"), "no hints with --json:\n{out}");
        v
    };
    run(&["init"]);
    // init ran `git init`; commits need an identity.
    let mut cfg = env.git().config().unwrap();
    cfg.set_str("user.name", "Trove Tester").unwrap();
    cfg.set_str("user.email", "tester@example.com").unwrap();
    env.write("data/a.txt", "a");
    env.write("data/sub/b.txt", "b");
    env.write("model.bin", "m");
    run(&["add", "data", "model.bin"]);
    run(&["status"]);
    run(&["status", "data"]);
    run(&["checkout"]);
    run(&["commit", "-m", "first"]);
    run(&["ls"]);
    run(&["ls", "HEAD"]);
    run(&["config", "cache.link"]);
    run(&["config", "cache.link", "[copy]"]);
    run(&["unprotect", "data"]);
    run(&["move", "model.bin", "models/model.bin"]);
    run(&["remove", "data"]);
    // The flag may come after the command too.
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out}");
    out.json();
    // A failure prints one document naming the error.
    let out = env.run(&["--json", "add", "nope"]);
    assert_eq!(out.code, 1, "{out}");
    let v = out.json();
    assert!(v["error"].as_str().unwrap().contains("nope"), "{v}");
}

#[test]
fn quiet_prints_nothing_on_stdout() {
    let env = Env::new();
    env.write("data/a.txt", "a");
    env.write("model.bin", "m");
    let out = env.ok(&["-q", "add", "data", "model.bin"]);
    assert_eq!(out.stdout, "", "{out}");
    assert_eq!(out.stderr, "", "no hints with -q:\n{out}");
    fs::remove_dir_all(env.path("data")).unwrap();
    let out = env.ok(&["checkout", "-q"]);
    assert_eq!(out.stdout, "", "{out}");
    assert_eq!(env.read("data/a.txt"), b"a");
    let out = env.ok(&["-q", "checkout"]);
    assert_eq!(out.stdout, "", "{out}");
    let out = env.ok(&["-q", "status"]);
    assert_eq!(out.stdout, "", "{out}");
    // Errors still reach stderr.
    let out = env.fails(1, &["-q", "add", "nope"]);
    assert!(out.stderr.contains("nope"), "{out}");
}

#[test]
fn no_progress_bars_when_stderr_is_not_a_terminal() {
    let env = Env::new();
    env.write("big.bin", noise(20 * 1024 * 1024, 4));
    let out = env.ok(&["add", "big.bin"]);
    assert!(!out.stderr.contains('\r') && !out.stderr.contains('\u{1b}'), "progress drawn on a pipe:\n{out}");
}

#[test]
fn dash_c_runs_in_another_folder() {
    let env = Env::new();
    env.write("data/a.txt", "a");
    let elsewhere = env.outside();
    let out = env.run_in(&elsewhere, &["-C", "repo", "add", "data"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(env.exists("data.trove"));
    let out = env.run_in(&elsewhere, &["--json", "-C", "repo", "status"]);
    assert_eq!(out.json()["tracked"][0]["state"], "unchanged", "{out}");
}
