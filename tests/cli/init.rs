//! `trove init`.

use std::fs;

use crate::common::*;

#[test]
fn init_creates_the_trove_folder() {
    let env = Env::git_only();
    let out = env.ok(&["init"]);
    assert!(out.stdout.contains(".trove"), "init should say where it initialised:\n{out}");

    let t = env.path(".trove");
    assert!(t.join("config").is_file(), ".trove/config");
    for d in ["cache", "state", "tmp"] {
        assert!(t.join(d).is_dir(), ".trove/{d} should be a folder");
    }
    // config.local is created on first write only, and is never a folder.
    assert!(!t.join("config.local").is_dir());

    // .trove/.gitignore: config.local, cache/, state/, tmp/.
    let gi = fs::read_to_string(t.join(".gitignore")).unwrap();
    let lines: Vec<&str> = gi.lines().map(|l| l.trim_start_matches('/')).collect();
    for want in ["config.local", "cache/", "state/", "tmp/"] {
        assert!(lines.contains(&want), ".trove/.gitignore lacks {want}:\n{gi}");
    }
    // And git really ignores them, but not the committed config.
    for ignored in [".trove/config.local", ".trove/cache/objects/ab/cd", ".trove/state/x", ".trove/tmp/lock"]
    {
        assert!(env.is_git_ignored(ignored), "git should ignore {ignored}");
    }
    assert!(!env.is_git_ignored(".trove/config"), "git must not ignore .trove/config");
    assert!(!env.is_git_ignored(".trove/.gitignore"));

    // The committed files are staged (documented; --no-stage skips it).
    let idx = env.index_paths();
    assert!(idx.contains(&".trove/config".to_string()), "index: {idx:?}");
    assert!(idx.contains(&".trove/.gitignore".to_string()), "index: {idx:?}");
    // The config is YAML: a comment line at most, no settings.
    let cfg = fs::read_to_string(t.join("config")).unwrap();
    assert!(cfg.lines().all(|l| l.trim().is_empty() || l.starts_with('#')), "fresh config:\n{cfg}");
}

#[test]
fn init_no_stage_leaves_the_index_alone() {
    let env = Env::git_only();
    env.ok(&["init", "--no-stage"]);
    assert!(env.path(".trove/config").is_file());
    assert!(env.index_paths().is_empty(), "index: {:?}", env.index_paths());
}

#[test]
fn init_outside_git_runs_git_init_and_says_so() {
    let env = Env::plain();
    assert!(!env.path(".git").exists());
    let out = env.ok(&["init"]);
    assert!(env.path(".git").is_dir(), "git init should have run");
    assert!(env.path(".trove/config").is_file());
    let said = out.stdout.to_lowercase();
    assert!(said.contains("git"), "init should say it created a git repository:\n{out}");
    // A second init in the now-git folder does not claim to create git again.
    let again = env.json(&["init"]);
    assert_eq!(again["created_git"], false);
    assert_eq!(again["already"], true);
}

#[test]
fn init_json_reports_created_git() {
    let env = Env::plain();
    let v = env.json(&["init"]);
    assert_eq!(v["created_git"], true, "{v}");
    assert_eq!(v["already"], false, "{v}");
    assert_eq!(v["root"].as_str().unwrap(), env.root.to_str().unwrap(), "{v}");
}

#[test]
fn init_twice_is_fine_and_changes_nothing() {
    let env = Env::new();
    env.ok(&["config", "core.lock_timeout", "7"]);
    let cfg = env.read(".trove/config");
    let gi = env.read(".trove/.gitignore");
    let v = env.json(&["init"]);
    assert_eq!(v["already"], true, "{v}");
    assert_eq!(v["created_git"], false, "{v}");
    assert_eq!(env.read(".trove/config"), cfg, "a second init must keep the settings");
    assert_eq!(env.read(".trove/.gitignore"), gi);
    let human = env.ok(&["init"]);
    assert!(human.stdout.contains("already"), "{human}");
}

#[test]
fn init_in_a_subfolder_uses_the_top_of_the_work_tree() {
    let env = Env::git_only();
    fs::create_dir_all(env.path("src/deep")).unwrap();
    let out = env.run_in(&env.path("src/deep"), &["--json", "init"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.json()["root"].as_str().unwrap(), env.root.to_str().unwrap());
    assert!(env.path(".trove/config").is_file());
    assert!(!env.path("src/deep/.trove").exists());
}
