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

#[test]
fn names_with_control_characters_are_quoted_as_git_quotes_them() {
    let env = Env::new();
    env.write("data/nl\nname", "one");
    env.write("data/tab\there", "two");
    env.write("data/plain", "three");
    env.write("cr\r.bin", "cr");
    let out = env.ok(&["add", "data", "cr\r.bin"]);
    assert!(out.stdout.contains("added \"cr\\r.bin\" (file, 2 B) -> \"cr\\r.bin.trove\"\n"), "{out}");
    env.git_cmd(&["commit", "-q", "-m", "track"]);
    env.write("data/nl\nname", "one, changed");
    env.write("data/new\u{1}", "new");
    let out = env.ok(&["status"]);
    assert_eq!(
        out.stdout,
        "\"cr\\r.bin\": unchanged\ndata: modified (1 added, 0 removed, 1 changed)\n    added: \"new\\001\"\n    changed: \"nl\\nname\"\n",
        "{out}"
    );
    let out = env.ok(&["diff"]);
    assert_eq!(
        out.stdout,
        "Added:\n    \"data/new\\001\"  (3 B)\nModified:\n    \"data/nl\\nname\"  (3 B -> 12 B)\n\
         2 files changed between HEAD and workspace: 1 added, 0 deleted, 1 modified\n",
        "{out}"
    );
    let out = env.ok(&["ls"]);
    assert!(out.stdout.lines().any(|l| l.starts_with("\"cr\\r.bin\"  file")), "{out}");
    // JSON keeps the names as they are.
    let st = env.json(&["status"]);
    assert_eq!(strings(&st["tracked"][1]["changes"]["modified"]), vec!["nl\nname"]);
    assert_eq!(env.json(&["diff"])["added"][0]["path"], "data/new\u{1}");
    // Errors name such paths quoted too: one error, one line.
    let out = env.fails(1, &["add", "gone\nfile"]);
    assert!(
        out.stderr.starts_with("error: \"/")
            && out.stderr.ends_with("/gone\\nfile\": no such file or folder\n"),
        "{out}"
    );
    let out = env.fails(1, &["checkout", "data"]);
    assert!(out.stderr.contains("hint: changed: \"data/nl\\nname\", \"data/new\\001\"\n"), "{out}");
    env.write("cr\r.bin", "cr2");
    let out = env.ok(&["commit"]);
    assert!(out.stdout.starts_with("re-added \"cr\\r.bin\"\nre-added data\n"), "{out}");
    assert_eq!(env.git_cmd(&["log", "-1", "--format=%s"]), "trove: update \"cr\\r.bin\", data\n");
    fs::remove_file(env.path("cr\r.bin")).unwrap();
    let out = env.ok(&["checkout", "cr\r.bin"]);
    assert_eq!(out.stdout, "\"cr\\r.bin\": 1 file written, 0 removed\n", "{out}");
}

#[test]
fn json_keys_are_in_alphabetical_order_and_counts_are_singular_for_one() {
    let env = Env::new();
    env.write("data/a.txt", "a");
    env.write("model.bin", "m");
    let store = env.outside().join("store");
    env.ok(&["remote", "add", "store", store.to_str().unwrap(), "--default"]);
    let sorted = |args: &[&str]| {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = env.run(&all);
        assert_eq!(out.code, 0, "{args:?}:\n{out}");
        // serde_json's Value keeps keys sorted: printed again, it must read the same.
        let again = serde_json::to_string_pretty(&out.json()).unwrap();
        assert_eq!(out.stdout.trim_end(), again, "{args:?}: keys are not in alphabetical order");
        out.json()
    };
    sorted(&["add", "data", "model.bin"]);
    env.git_cmd(&["commit", "-q", "-m", "track"]);
    env.write("data/b.txt", "b");
    sorted(&["diff"]);
    sorted(&["status"]);
    sorted(&["push"]);
    let ls = sorted(&["ls"]);
    let file = ls["tracked"].as_array().unwrap().iter().find(|t| t["kind"] == "file").unwrap();
    assert!(file.as_object().unwrap().get("files").is_some_and(|f| f.is_null()), "`files` is null: {ls}");
    sorted(&["remove", "model.bin"]);

    env.ok(&["config", "cache.link", "[hardlink, copy]"]);
    env.write("one/x.txt", "x");
    env.ok(&["add", "one"]);
    let out = env.ok(&["unprotect", "one"]);
    assert_eq!(out.stdout, "1 file made writable\n", "{out}");
}

#[test]
fn experiment_reports_count_one_line_and_one_file_in_the_singular() {
    let env = Env::new();
    env.write("requirements.txt", "numpy==1.26\n");
    env.write("data/a.txt", "a");
    env.ok(&["add", "data"]);
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", "one line"]);
    env.ok(&["exp", "log", "--name", "one"]);
    let shown = env.ok(&["exp", "show", "one"]).stdout;
    let line = shown.lines().find(|l| l.contains("requirements.txt")).unwrap_or_else(|| panic!("{shown}"));
    assert!(line.trim_end().ends_with(" 1 line"), "{line}");
    fs::remove_dir_all(env.path("data")).unwrap();
    let out = env.ok(&["exp", "checkout", "one", "--no-progress"]);
    assert!(out.stdout.contains("data: 1 file written, 0 objects fetched"), "{out}");
}
