//! Hostile input: each gets a clear error naming the thing, a failure exit code (never a
//! panic), and nothing written outside the repository.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;

/// A folder beside the repository with one file in it; `unchanged` checks that nothing
/// was added to, removed from or written in it.
struct Sentinel {
    dir: PathBuf,
    before: Vec<(PathBuf, Vec<u8>)>,
}

impl Sentinel {
    fn new(env: &Env) -> Sentinel {
        let dir = env.outside().join("sentinel");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("keep.txt"), "outside the repository").unwrap();
        let before = Self::snapshot(&dir);
        Sentinel { dir, before }
    }

    fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        walk(dir, &mut files);
        files.sort();
        files.into_iter().map(|f| (f.clone(), fs::read(&f).unwrap_or_default())).collect()
    }

    fn unchanged(&self) {
        assert_eq!(Self::snapshot(&self.dir), self.before, "something was written outside the repository");
    }
}

/// A failure with exit code 1 that names `what`, and no panic.
fn refused(out: &Out, what: &str) {
    assert_eq!(out.code, 1, "expected a clean failure:\n{out}");
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert!(out.stderr.contains(what), "the error should name {what}:\n{out}");
}

/// An env with one tracked file (so the cache holds `payload`).
fn seeded() -> Env {
    let env = Env::new();
    env.write("seed.bin", "payload");
    env.ok(&["add", "seed.bin"]);
    env
}

fn entry_json(path: &str, content: &[u8]) -> String {
    format!(r#"{{"path":"{path}","hash":"{}","size":{},"exec":false}}"#, blake3_hex(content), content.len())
}

#[test]
fn pointer_path_with_nul_is_refused() {
    let env = seeded();
    let sentinel = Sentinel::new(&env);
    let h = blake3_hex(b"payload");
    for path in [r#""x\0y""#, r#""x\u0000y""#, r#""../sentinel/x\0""#] {
        env.write(
            "evil.trove",
            format!("{HEADER}\nversion: 1\npath: {path}\nkind: file\nhash: {h}\nsize: 7\n"),
        );
        for cmd in [&["status"][..], &["checkout", "--force"], &["ls"]] {
            let out = env.run(cmd);
            refused(&out, "evil.trove:3:");
        }
    }
    assert!(!env.exists("x"));
    sentinel.unchanged();
}

#[test]
fn manifest_path_with_nul_is_refused() {
    let env = seeded();
    let sentinel = Sentinel::new(&env);
    let manifest = format!(r#"{{"version":1,"entries":[{}]}}"#, entry_json(r"a\u0000b", b"payload"));
    let id = plant_manifest(&env, "evil", &manifest, 1, 7);
    for cmd in [&["checkout", "evil"][..], &["checkout", "--force", "evil"], &["status", "evil"]] {
        let out = env.run(cmd);
        refused(&out, &id[..12]);
        assert!(out.stderr.contains("NUL"), "{out}");
    }
    assert!(!env.exists("evil/a"));
    sentinel.unchanged();
}

#[test]
fn manifest_listing_a_path_twice_is_refused() {
    let env = seeded();
    let sentinel = Sentinel::new(&env);
    let twice = format!(
        r#"{{"version":1,"entries":[{},{}]}}"#,
        entry_json("same.txt", b"payload"),
        entry_json("same.txt", b"payload")
    );
    let id = plant_manifest(&env, "twice", &twice, 2, 14);
    for cmd in [&["checkout", "twice"][..], &["checkout", "--force", "twice"], &["status"]] {
        let out = env.run(cmd);
        refused(&out, &id[..12]);
        assert!(out.stderr.contains("same.txt"), "the error names the repeated path:\n{out}");
    }
    assert!(!env.exists("twice"), "nothing is placed from a manifest that repeats a path");

    // A file and a folder of the same name: `a` and `a/b`.
    fs::remove_file(env.path("twice.trove")).unwrap();
    let clash = format!(
        r#"{{"version":1,"entries":[{},{}]}}"#,
        entry_json("a", b"payload"),
        entry_json("a/b", b"payload")
    );
    let id = plant_manifest(&env, "clash", &clash, 2, 14);
    let out = env.run(&["checkout", "--force", "clash"]);
    refused(&out, &id[..12]);
    assert!(out.stderr.contains("`a`"), "the error names the path used as file and folder:\n{out}");
    sentinel.unchanged();
}

#[test]
fn workspace_symlink_out_of_the_repository_is_refused() {
    let env = seeded();
    let sentinel = Sentinel::new(&env);
    std::os::unix::fs::symlink(&sentinel.dir, env.path("data")).unwrap();
    let out = env.run(&["add", "data"]);
    refused(&out, "data");
    assert!(out.stderr.contains("outside the repository"), "{out}");
    assert!(!env.exists("data.trove"));
    // A link to a file outside as well.
    std::os::unix::fs::symlink(sentinel.dir.join("keep.txt"), env.path("keep.txt")).unwrap();
    let out = env.run(&["add", "keep.txt"]);
    refused(&out, "keep.txt");
    assert!(!env.exists("keep.txt.trove"));
    assert!(
        !env.object_path(&blake3_hex(b"outside the repository")).exists(),
        "the outside file's content entered the cache"
    );

    // Tracked data replaced by a link out: checkout must not write through it.
    fs::remove_file(env.path("data")).unwrap();
    env.write("data/inner.txt", "inner");
    env.ok(&["add", "data"]);
    fs::remove_dir_all(env.path("data")).unwrap();
    std::os::unix::fs::symlink(&sentinel.dir, env.path("data")).unwrap();
    for cmd in [&["checkout", "data"][..], &["checkout", "--force", "data"], &["checkout", "--force"]] {
        let out = env.run(cmd);
        refused(&out, "data");
    }
    let out = env.run(&["status"]);
    assert!(!out.stderr.contains("panicked"), "{out}");
    sentinel.unchanged();
}

#[test]
fn symlink_inside_a_tracked_directory_pointing_out_is_refused() {
    let env = seeded();
    let sentinel = Sentinel::new(&env);
    env.write("data/a.txt", "a");
    std::os::unix::fs::symlink(sentinel.dir.join("keep.txt"), env.path("data/secret.txt")).unwrap();
    let out = env.run(&["add", "data"]);
    refused(&out, "data/secret.txt");
    assert!(out.stderr.contains("outside the repository"), "{out}");
    assert!(!env.exists("data.trove"));
    assert!(!env.object_path(&blake3_hex(b"outside the repository")).exists());

    // A link to a folder outside, deeper down.
    fs::remove_file(env.path("data/secret.txt")).unwrap();
    fs::create_dir_all(env.path("data/sub")).unwrap();
    std::os::unix::fs::symlink(&sentinel.dir, env.path("data/sub/escape")).unwrap();
    let out = env.run(&["add", "data"]);
    refused(&out, "data/sub/escape");
    assert!(!env.exists("data.trove"));

    // Tracked, then a file inside replaced by a link out: checkout replaces the link,
    // it never writes into the file the link points at.
    fs::remove_file(env.path("data/sub/escape")).unwrap();
    env.write("data/sub/b.txt", "b");
    env.ok(&["add", "data"]);
    fs::remove_file(env.path("data/sub/b.txt")).unwrap();
    std::os::unix::fs::symlink(sentinel.dir.join("keep.txt"), env.path("data/sub/b.txt")).unwrap();
    for cmd in [&["status"][..], &["checkout", "data"], &["checkout", "--force", "data"]] {
        let out = env.run(cmd);
        // Refused, naming the link; or (checkout) the link replaced by the tracked file.
        if out.code == 0 && cmd[0] == "checkout" {
            assert!(!lmeta(&env.path("data/sub/b.txt")).file_type().is_symlink(), "{out}");
            assert_eq!(env.read("data/sub/b.txt"), b"b");
        } else {
            refused(&out, "data/sub/b.txt");
        }
        sentinel.unchanged();
    }
}

#[test]
fn huge_pointer_is_refused_quickly() {
    let env = seeded();
    let sentinel = Sentinel::new(&env);
    let mut text =
        format!("{HEADER}\nversion: 1\npath: big\nkind: file\nhash: {}\nsize: 7\n", "0".repeat(64));
    let filler = "# padding padding padding padding padding padding padding padding\n";
    text.reserve(50 << 20);
    while text.len() < 50 << 20 {
        text.push_str(filler);
    }
    env.write("big.trove", &text);
    let started = std::time::Instant::now();
    for cmd in [&["status"][..], &["checkout", "--force"], &["ls"]] {
        let out = env.run(cmd);
        refused(&out, "big.trove:1:");
        assert!(out.stderr.contains("bytes"), "the error gives the size:\n{out}");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
    // Staged and committed, it is refused when read from git too.
    env.git_cmd(&["add", "-f", "big.trove"]);
    env.git_cmd(&["commit", "-q", "-m", "big"]);
    let out = env.run(&["ls", "HEAD"]);
    refused(&out, "big.trove");
    sentinel.unchanged();
}

#[test]
fn deeply_nested_and_exploding_yaml_pointers_are_refused() {
    let env = seeded();
    let sentinel = Sentinel::new(&env);
    let cases = [
        // 100k `[` is refused by its size; these stay under the size limit, and are
        // refused by their depth before the YAML parser (quadratic in it) sees them.
        ("huge-nested", format!("{HEADER}\nversion: 1\npath: {}\n", "[".repeat(100_000))),
        ("nested", format!("{HEADER}\nversion: 1\npath: {}\n", "[".repeat(60_000))),
        ("maps", format!("{HEADER}\nversion: 1\npath: {}\n", "{a: ".repeat(15_000))),
        ("aliases", {
            // Each line doubles the one before: expanded, it would need 2^40 entries.
            let mut t = format!("{HEADER}\nversion: 1\na0: &a0 [x, x]\n");
            for i in 1..40 {
                t.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}]\n", p = i - 1));
            }
            t.push_str("path: *a39\n");
            t
        }),
    ];
    for (name, text) in cases {
        env.write(&format!("{name}.trove"), &text);
        let started = std::time::Instant::now();
        for cmd in [&["status"][..], &["checkout", "--force"]] {
            let out = env.run(cmd);
            refused(&out, &format!("{name}.trove:"));
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{name}: {:?}", started.elapsed());
        fs::remove_file(env.path(&format!("{name}.trove"))).unwrap();
    }
    // The committed config and a params file meet the same limit.
    let config = env.read_string(".trove/config");
    env.write(".trove/config", format!("{config}cache:\n  link: {}\n", "[".repeat(60_000)));
    let started = std::time::Instant::now();
    refused(&env.run(&["status"]), ".trove/config");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    env.write(".trove/config", config);
    sentinel.unchanged();
}

// ---- experiment records ----

fn head(env: &Env) -> String {
    env.git_cmd(&["rev-parse", "HEAD"]).trim().to_string()
}

/// Add `runs/<id>.json` with `body` to `refs/trove/exps` with the git command line, as a
/// record shared by someone else's clone would arrive.
fn plant_record(env: &Env, id: &str, body: &str) {
    let blob_file = env.outside().join("record.json");
    fs::write(&blob_file, body).unwrap();
    let blob = env.git_cmd(&["hash-object", "-w", blob_file.to_str().unwrap()]).trim().to_string();
    let parent = env.git_cmd(&["rev-parse", "--verify", "-q", "refs/trove/exps"]).trim().to_string();
    let index = env.outside().join("records.index");
    let _ = fs::remove_file(&index);
    let git = |args: &[&str]| {
        let mut c = std::process::Command::new("git");
        c.args(args).current_dir(&env.root);
        env.clean_env(&mut c);
        c.env("GIT_INDEX_FILE", &index);
        let out = c.output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    git(&["read-tree", &parent]);
    git(&["update-index", "--add", "--cacheinfo", &format!("100644,{blob},runs/{id}.json")]);
    let tree = git(&["write-tree"]);
    let commit = git(&["commit-tree", &tree, "-p", &parent, "-p", &head(env), "-m", "shared record"]);
    env.git_cmd(&["update-ref", "refs/trove/exps", &commit]);
}

/// A repository with one genuine record; returns it as JSON.
fn with_record() -> (Env, serde_json::Value) {
    let env = Env::new();
    env.write("data/a.csv", "a\n");
    env.ok(&["add", "data"]);
    env.ok(&["config", "exp.interpreters", "[git]"]);
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", "code"]);
    let record = env.json(&["exp", "log", "--name", "genuine", "-p", "lr=0.1"]);
    (env, record)
}

#[test]
fn experiment_record_with_wrong_types_is_reported() {
    let (env, good) = with_record();
    let id = "01jz0000000000000000000000";
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("params", serde_json::json!("lr=0.1")),
        ("metrics", serde_json::json!([1, 2, 3])),
        ("created", serde_json::json!(12)),
        ("dirty", serde_json::json!("no")),
        ("data", serde_json::json!([{"path": "data", "kind": "folder", "hash": "x", "size": -1}])),
        ("version", serde_json::json!(7)),
        ("commit", serde_json::json!("ééééééééééééééééééééééééééééééééééééééé")),
    ];
    for (key, bad) in cases {
        let mut record = good.clone();
        record["id"] = id.into();
        record[key] = bad;
        plant_record(&env, id, &serde_json::to_string_pretty(&record).unwrap());
        for cmd in [&["exp", "list"][..], &["exp", "show", "genuine"], &["--json", "exp", "list"]] {
            let out = env.run(cmd);
            refused(&out, &format!("runs/{id}.json"));
        }
    }
    // Not JSON at all, and a record whose id would cut a character in two.
    plant_record(&env, id, "\u{0}\u{1}garbage");
    refused(&env.run(&["exp", "list"]), &format!("runs/{id}.json"));
    let mut record = good.clone();
    record["id"] = "éééééééééééé".into();
    plant_record(&env, id, &record.to_string());
    refused(&env.run(&["exp", "show", "genuine"]), &format!("runs/{id}.json"));
}

#[test]
fn experiment_record_with_paths_leading_out_is_refused() {
    let (env, good) = with_record();
    let sentinel = Sentinel::new(&env);
    let id = "01jz0000000000000000000001";
    let h = blake3_hex(b"payload");
    env.write("payload.bin", "payload");
    env.ok(&["add", "payload.bin"]);
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", "payload"]);
    let abs = sentinel.dir.join("abs.bin");
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("data", serde_json::json!([{"path": "../sentinel/x.bin", "kind": "file", "hash": h, "size": 7}])),
        ("data", serde_json::json!([{"path": abs.to_str().unwrap(), "kind": "file", "hash": h, "size": 7}])),
        ("artifacts", serde_json::json!([{"path": "../sentinel/model.bin", "hash": h, "size": 7}])),
        ("env", serde_json::json!({"files": {"../sentinel/keep.txt": "x"}, "interpreters": {}})),
    ];
    for (key, bad) in cases {
        let mut record = good.clone();
        record["id"] = id.into();
        record["name"] = "hostile".into();
        record["commit"] = head(&env).into();
        record[key] = bad;
        plant_record(&env, id, &record.to_string());
        for cmd in [&["exp", "checkout", id, "-b", "try"][..], &["exp", "list"]] {
            let out = env.run(cmd);
            refused(&out, &format!("runs/{id}.json"));
        }
    }
    sentinel.unchanged();
}

#[test]
fn malformed_remote_layout_file_is_refused() {
    let env = seeded();
    let remote = env.outside().join("store");
    env.ok(&["remote", "add", "store", remote.to_str().unwrap()]);
    env.ok(&["push"]);
    let count = || {
        let mut files = Vec::new();
        walk(&remote.join("objects"), &mut files);
        files.len()
    };
    let before = count();
    env.write("more.bin", "more");
    env.ok(&["add", "more.bin"]);
    let cases = [
        "layout: [unclosed\n".to_string(),
        "layout: '1'\n".to_string(),
        "layout: -1\n".to_string(),
        "- layout\n- 1\n".to_string(),
        format!("layout: {}\n", "[".repeat(10_000)),
        "\u{0}\u{1}\u{2}".to_string(),
    ];
    for text in cases {
        fs::write(remote.join("TROVE_REMOTE"), &text).unwrap();
        for cmd in [&["push"][..], &["--json", "status", "--remote"]] {
            let out = env.run(cmd);
            refused(&out, "TROVE_REMOTE");
            assert!(out.stderr.contains("store"), "the error names the remote:\n{out}");
        }
        assert_eq!(count(), before, "nothing was written to a remote it cannot read:\n{text}");
    }
}
