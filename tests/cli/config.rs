//! `trove config`.

use std::fs;

use crate::common::*;

#[test]
fn config_reads_defaults_and_writes_settings() {
    let env = Env::new();
    let out = env.ok(&["config", "cache.link"]);
    assert_eq!(out.stdout.trim(), "[reflink, copy]");
    let v = env.json(&["config", "cache.link"]);
    assert_eq!(v["key"], "cache.link");
    assert_eq!(v["value"], serde_json::json!(["reflink", "copy"]));

    let out = env.ok(&["config", "cache.link", "[hardlink, copy]"]);
    assert!(out.stdout.is_empty(), "writing prints nothing:\n{out}");
    assert_eq!(env.ok(&["config", "cache.link"]).stdout.trim(), "[hardlink, copy]");
    let v = env.json(&["config", "cache.link"]);
    assert_eq!(v["value"], serde_json::json!(["hardlink", "copy"]));
    let cfg = env.read_string(".trove/config");
    assert!(cfg.contains("hardlink"), "{cfg}");
    assert!(cfg.starts_with("# trove settings"), "the header comment stays:\n{cfg}");
    assert!(!env.exists(".trove/config.local"), "config.local is only written with --local");

    assert_eq!(env.ok(&["config", "core.lock_timeout"]).stdout.trim(), "10");
    let v = env.json(&["config", "core.lock_timeout", "30"]);
    assert_eq!(v["value"], 30);
    assert_eq!(env.ok(&["config", "core.lock_timeout"]).stdout.trim(), "30");
}

#[test]
fn config_local_writes_config_local_only() {
    let env = Env::new();
    let shared = env.read(".trove/config");
    env.ok(&["config", "--local", "core.lock_timeout", "42"]);
    assert_eq!(env.read(".trove/config"), shared, "the committed config is untouched");
    let local = env.read_string(".trove/config.local");
    assert!(local.contains("42"), "{local}");
    assert_eq!(env.ok(&["config", "core.lock_timeout"]).stdout.trim(), "42");
    // config.local wins over config.
    env.ok(&["config", "core.lock_timeout", "5"]);
    assert_eq!(env.ok(&["config", "core.lock_timeout"]).stdout.trim(), "42");
    assert!(env.is_git_ignored(".trove/config.local"));
    // Only its owner can read it.
    use std::os::unix::fs::PermissionsExt;
    let m = fs::metadata(env.path(".trove/config.local")).unwrap().permissions().mode();
    assert_eq!(m & 0o077, 0, "config.local mode {:o}", m & 0o777);
}

#[test]
fn config_unknown_key_is_a_usage_error() {
    let env = Env::new();
    let before = env.read(".trove/config");
    let out = env.fails(2, &["config", "cache.lnk", "[copy]"]);
    assert!(out.stderr.contains("cache.lnk"), "{out}");
    assert!(out.stderr.contains("cache.link"), "the message lists the known keys:\n{out}");
    assert_eq!(env.read(".trove/config"), before);
    env.fails(2, &["config", "nonsense"]);
}

#[test]
fn config_invalid_values_are_refused() {
    let env = Env::new();
    let before = env.read(".trove/config");
    let out = env.fails(2, &["config", "cache.link", "[teleport, copy]"]);
    assert!(out.stderr.contains("teleport"), "{out}");
    let out = env.fails(2, &["config", "core.lock_timeout", "soon"]);
    assert!(out.stderr.contains("core.lock_timeout"), "{out}");
    assert_eq!(env.read(".trove/config"), before, "nothing is written");
    assert_eq!(env.ok(&["config", "cache.link"]).stdout.trim(), "[reflink, copy]");
}

#[test]
fn config_malformed_file_is_reported() {
    let env = Env::new();
    env.write(".trove/config", "cache: [unclosed\n");
    let out = env.fails(1, &["status"]);
    assert!(out.stderr.contains(".trove/config"), "the error names the config file:\n{out}");
}
