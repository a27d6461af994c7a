//! `trove add`: pointer files, .gitignore entries, staging.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use crate::common::*;

/// `data/` with nested folders, an empty file and an executable script.
pub fn sample_dir(env: &Env) -> Vec<Entry> {
    let entries = vec![
        Entry { path: "a.txt".into(), content: b"alpha\n".to_vec(), exec: false },
        Entry { path: "empty".into(), content: Vec::new(), exec: false },
        Entry { path: "run.sh".into(), content: b"#!/bin/sh\necho hi\n".to_vec(), exec: true },
        Entry { path: "sub/b.txt".into(), content: b"bravo bravo\n".to_vec(), exec: false },
        Entry { path: "sub/deeper/c.bin".into(), content: noise(10_000, 3), exec: false },
    ];
    for e in &entries {
        let rel = format!("data/{}", e.path);
        if e.exec {
            env.write_exec(&rel, &e.content);
        } else {
            env.write(&rel, &e.content);
        }
    }
    entries
}

pub fn dir_pointer(name: &str, entries: &[Entry]) -> Pointer {
    Pointer {
        path: name.into(),
        kind: "dir".into(),
        hash: blake3_hex(manifest_bytes(entries).as_bytes()),
        size: entries.iter().map(|e| e.content.len() as u64).sum(),
        files: Some(entries.len() as u64),
    }
}

#[test]
fn add_file_writes_the_exact_pointer() {
    let env = Env::new();
    let content = b"weights v1\n";
    env.write("model.bin", content);
    env.ok(&["add", "model.bin"]);
    let expected = format!(
        "{HEADER}\nversion: 1\npath: model.bin\nkind: file\nhash: {}\nsize: {}\n",
        blake3_hex(content),
        content.len()
    );
    assert_eq!(env.read_string("model.bin.trove"), expected);
    // The data stays in place, unchanged.
    assert_eq!(env.read("model.bin"), content);
}

#[test]
fn add_dir_writes_the_exact_pointer() {
    let env = Env::new();
    let entries = sample_dir(&env);
    let v = env.json(&["add", "data"]);
    let expected = dir_pointer("data", &entries).text();
    let text = env.read_string("data.trove");
    assert_eq!(text, expected);
    assert!(text.ends_with(&format!("files: {}\n", entries.len())));

    let a = &v["added"][0];
    assert_eq!(a["path"], "data");
    assert_eq!(a["pointer"], "data.trove");
    assert_eq!(a["kind"], "dir");
    assert_eq!(a["files"], entries.len() as u64);
    assert_eq!(a["updated"], true);
    assert_eq!(a["hash"].as_str().unwrap(), dir_pointer("data", &entries).hash);
}

#[test]
fn add_empty_file() {
    let env = Env::new();
    env.write("empty.dat", b"");
    env.ok(&["add", "empty.dat"]);
    assert_eq!(env.pointer("empty.dat.trove"), Pointer::file("empty.dat", b""));
    assert!(env.object_path(&blake3_hex(b"")).is_file(), "the empty object is stored");
}

#[test]
fn add_records_the_exec_bit() {
    let env = Env::new();
    let entries = sample_dir(&env);
    env.ok(&["add", "data"]);
    let id = env.pointer("data.trove").hash;
    let manifest = fs::read_to_string(env.manifest_path(&id)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    for e in v["entries"].as_array().unwrap() {
        let want = entries.iter().find(|x| x.path == e["path"].as_str().unwrap()).unwrap();
        assert_eq!(e["exec"], want.exec, "exec of {}", want.path);
    }
}

#[test]
fn add_appends_the_gitignore_entry_once() {
    let env = Env::new();
    // An existing .gitignore without a final newline is kept as it is.
    env.write(".gitignore", "*.log");
    env.write("data/x.txt", "one");
    env.ok(&["add", "data"]);
    assert_eq!(env.gitignore_lines(""), vec!["*.log", "/data"]);
    env.write("data/x.txt", "two");
    env.ok(&["add", "data"]);
    env.ok(&["add", "data"]);
    assert_eq!(env.gitignore_lines(""), vec!["*.log", "/data"], "the entry is written once");
    assert!(env.is_git_ignored("data/x.txt"), "git ignores the data");
    assert!(!env.is_git_ignored("data.trove"), "git does not ignore the pointer");
}

#[test]
fn add_in_a_subfolder_uses_that_folders_gitignore() {
    let env = Env::new();
    env.write("datasets/raw/file.csv", "a,b\n1,2\n");
    let out = env.run_in(&env.path("datasets"), &["add", "raw"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(env.path("datasets/raw.trove").is_file());
    assert_eq!(env.pointer("datasets/raw.trove").path, "raw");
    assert_eq!(env.gitignore_lines("datasets"), vec!["/raw"]);
    assert!(!env.path(".gitignore").exists(), "the top .gitignore is not touched");
    // -C works the same way.
    env.write("datasets/other.bin", "x");
    env.ok(&["-C", "datasets", "add", "other.bin"]);
    assert_eq!(env.gitignore_lines("datasets"), vec!["/raw", "/other.bin"]);
    assert!(env.path("datasets/other.bin.trove").is_file());
}

#[test]
fn add_stages_the_pointer_and_gitignore() {
    let env = Env::new();
    env.write("data/x.txt", "x");
    env.write("model.bin", "m");
    env.ok(&["add", "data", "model.bin"]);
    let idx = env.index_paths();
    for p in ["data.trove", "model.bin.trove", ".gitignore"] {
        assert!(idx.contains(&p.to_string()), "{p} not staged: {idx:?}");
    }
    assert!(!idx.iter().any(|p| p.starts_with("data/") || p == "model.bin"), "data staged: {idx:?}");
    // What is staged is what is on disk.
    assert_eq!(env.index_blob("data.trove").unwrap(), env.read("data.trove"));
    assert_eq!(env.index_blob(".gitignore").unwrap(), env.read(".gitignore"));
    // git's own view agrees.
    let cached = env.git_cmd(&["diff", "--cached", "--name-only"]);
    assert!(cached.lines().any(|l| l == "data.trove"), "{cached}");
    let untracked = env.git_cmd(&["status", "--porcelain"]);
    assert!(!untracked.contains("data/"), "the data shows up in git status:\n{untracked}");
}

#[test]
fn add_no_stage_stages_nothing() {
    let env = Env::new();
    let before = env.index_paths();
    env.write("data/x.txt", "x");
    env.ok(&["add", "--no-stage", "data"]);
    assert!(env.path("data.trove").is_file());
    assert_eq!(env.gitignore_lines(""), vec!["/data"]);
    assert_eq!(env.index_paths(), before, "--no-stage must leave the index alone");
}

#[test]
fn readding_unchanged_data_rewrites_nothing() {
    let env = Env::new();
    sample_dir(&env);
    env.write("model.bin", noise(5000, 9));
    env.ok(&["add", "data", "model.bin"]);
    let p1 = env.read("data.trove");
    let m1 = lmeta(&env.path("data.trove"));
    let q1 = lmeta(&env.path("model.bin.trove"));
    let g1 = lmeta(&env.path(".gitignore"));
    std::thread::sleep(Duration::from_millis(20));
    let v = env.json(&["add", "data", "model.bin"]);
    for a in v["added"].as_array().unwrap() {
        assert_eq!(a["updated"], false, "{a}");
        assert_eq!(a["new_objects"], 0, "{a}");
    }
    assert_eq!(env.read("data.trove"), p1);
    let m2 = lmeta(&env.path("data.trove"));
    let q2 = lmeta(&env.path("model.bin.trove"));
    let g2 = lmeta(&env.path(".gitignore"));
    assert_eq!((m1.mtime(), m1.mtime_nsec(), m1.ino()), (m2.mtime(), m2.mtime_nsec(), m2.ino()));
    assert_eq!((q1.mtime(), q1.mtime_nsec(), q1.ino()), (q2.mtime(), q2.mtime_nsec(), q2.ino()));
    assert_eq!((g1.mtime(), g1.mtime_nsec(), g1.ino()), (g2.mtime(), g2.mtime_nsec(), g2.ino()));
    // The human report says so too.
    let out = env.ok(&["add", "model.bin"]);
    assert!(out.stdout.contains("unchanged"), "{out}");
}

#[test]
fn readding_changed_data_updates_the_pointer() {
    let env = Env::new();
    env.write("data/a.txt", "one");
    env.ok(&["add", "data"]);
    let old = env.pointer("data.trove");
    env.write("data/a.txt", "two!");
    env.write("data/new.txt", "new");
    let v = env.json(&["add", "data"]);
    assert_eq!(v["added"][0]["updated"], true);
    let new = env.pointer("data.trove");
    let entries = vec![
        Entry { path: "a.txt".into(), content: b"two!".to_vec(), exec: false },
        Entry { path: "new.txt".into(), content: b"new".to_vec(), exec: false },
    ];
    assert_ne!(old.hash, new.hash);
    assert_eq!(new, crate::add::dir_pointer("data", &entries));
    // The old version stays in the cache.
    assert!(env.manifest_path(&old.hash).is_file());
    assert!(env.object_path(&blake3_hex(b"one")).is_file());
}

#[test]
fn troveignore_excludes_files() {
    let env = Env::new();
    // At the top of the repository, and one inside the tracked folder.
    env.write(".troveignore", "*.tmp\n");
    env.write("data/keep.txt", "keep");
    env.write("data/junk.tmp", "junk");
    env.write("data/scratch/notes.txt", "scratch");
    env.write("data/sub/keep2.txt", "keep2");
    env.write("data/sub/more.tmp", "junk2");
    env.write("data/.troveignore", "scratch/\n");
    let v = env.json(&["add", "data"]);
    let id = env.pointer("data.trove").hash;
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(env.manifest_path(&id)).unwrap()).unwrap();
    let paths: Vec<String> = manifest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    assert!(paths.contains(&"keep.txt".to_string()), "{paths:?}");
    assert!(paths.contains(&"sub/keep2.txt".to_string()), "{paths:?}");
    for gone in ["junk.tmp", "sub/more.tmp", "scratch/notes.txt"] {
        assert!(!paths.contains(&gone.to_string()), "{gone} should be excluded: {paths:?}");
    }
    assert_eq!(v["added"][0]["files"], paths.len() as u64);
    assert!(!env.object_path(&blake3_hex(b"junk")).exists(), "ignored content is not stored");
    // A new ignored file does not make the folder modified.
    env.write("data/another.tmp", "x");
    let st = env.json(&["status"]);
    assert_eq!(st["tracked"][0]["state"], "unchanged", "{st}");
}

#[test]
fn add_refuses_a_pointer_file_and_a_missing_path() {
    let env = Env::new();
    env.write("model.bin", "m");
    env.ok(&["add", "model.bin"]);
    let out = env.fails(1, &["add", "model.bin.trove"]);
    assert!(out.stderr.contains("model.bin.trove"), "{out}");
    let out = env.fails(1, &["add", "nope.bin"]);
    assert!(out.stderr.contains("nope.bin"), "{out}");
    assert!(!env.path("nope.bin.trove").exists());
}

#[test]
fn add_refuses_a_path_inside_a_tracked_folder() {
    let env = Env::new();
    env.write("data/sub/x.txt", "x");
    env.ok(&["add", "data"]);
    let out = env.fails(1, &["add", "data/sub"]);
    assert!(out.stderr.contains("data"), "{out}");
    assert!(!env.path("data/sub.trove").exists());
}

#[test]
fn names_that_yaml_or_gitignore_would_misread() {
    let env = Env::new();
    let names = ["true", "123", "weird[1]*.bin", "#notes", "!bang", "with space.txt", "null"];
    for n in names {
        env.write(n, format!("content of {n}"));
    }
    let mut args = vec!["add"];
    args.extend(names);
    env.ok(&args);
    for n in names {
        let text = env.read_string(&format!("{n}.trove"));
        // Whatever the quoting, a YAML reader gets the name back as a string.
        let path_line = text.lines().nth(2).unwrap();
        let value = path_line.strip_prefix("path: ").unwrap();
        let parsed: serde_json::Value = match value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            Some(inner) => serde_json::Value::String(inner.replace("''", "'")),
            None => serde_json::Value::String(value.to_string()),
        };
        assert_eq!(parsed, serde_json::Value::String(n.to_string()), "{n}: {path_line}");
        if ["true", "123", "null"].contains(&n) {
            assert_ne!(value, n, "{n} must be quoted: {path_line}");
        }
        assert!(env.is_git_ignored(n), "git should ignore {n}");
    }
    // The escaped patterns match only themselves.
    env.write("weird1x.bin", "x");
    env.write("notes", "x");
    env.write("bang", "x");
    for n in ["weird1x.bin", "notes", "bang"] {
        assert!(!env.is_git_ignored(n), "{n} is ignored by an entry for another file");
    }
    let st = env.json(&["status"]);
    assert_eq!(st["tracked"].as_array().unwrap().len(), names.len());
    for t in st["tracked"].as_array().unwrap() {
        assert_eq!(t["state"], "unchanged", "{t}");
    }
    for n in names {
        fs::remove_file(env.path(n)).unwrap();
    }
    env.ok(&["checkout"]);
    for n in names {
        assert_eq!(env.read_string(n), format!("content of {n}"));
    }
}

#[test]
fn symlinks_inside_a_tracked_dir() {
    let env = Env::new();
    env.write("shared/real.txt", "real content");
    env.write("data/a.txt", "a");
    std::os::unix::fs::symlink("../shared/real.txt", env.path("data/inside-link")).unwrap();
    env.ok(&["add", "data"]);
    // A link to a file inside the repository is recorded with the content it points to.
    let entries = vec![
        Entry { path: "a.txt".into(), content: b"a".to_vec(), exec: false },
        Entry { path: "inside-link".into(), content: b"real content".to_vec(), exec: false },
    ];
    assert_eq!(env.pointer("data.trove"), dir_pointer("data", &entries));

    // A link leading out of the repository is refused, naming it.
    let secret = env.outside().join("secret.txt");
    fs::write(&secret, "outside").unwrap();
    std::os::unix::fs::symlink(&secret, env.path("data/outside-link")).unwrap();
    let before = env.read("data.trove");
    let out = env.fails(1, &["add", "data"]);
    assert!(out.stderr.contains("outside-link"), "{out}");
    assert_eq!(env.read("data.trove"), before, "the pointer is kept");
    assert!(!env.object_path(&blake3_hex(b"outside")).exists(), "outside content is not stored");
}

#[test]
fn add_refuses_paths_outside_or_inside_trove_and_git() {
    let env = Env::new();
    let outside = env.outside().join("elsewhere.txt");
    fs::write(&outside, "x").unwrap();
    for p in [outside.to_str().unwrap(), "../elsewhere.txt", ".git/config", ".trove/config", "."] {
        let out = env.fails(1, &["add", p]);
        assert!(!out.stderr.is_empty(), "{p}: {out}");
    }
    assert!(!env.outside().join("elsewhere.txt.trove").exists());
    assert!(!env.path(".git/config.trove").exists());
    assert!(!env.path(".trove/config.trove").exists());
}

#[test]
fn backslashes_in_names_work_in_every_command() {
    let env = Env::new();
    env.write("top\\x.bin", "file with a backslash");
    env.write("d\\ir/a\\b.txt", "a");
    env.write("d\\ir/sub\\dir/c", "c");
    env.write("plain.txt", "plain");
    env.ok(&["add", "top\\x.bin", "d\\ir", "plain.txt"]);
    assert_eq!(env.pointer("top\\x.bin.trove").path, "top\\x.bin");
    assert!(env.is_git_ignored("top\\x.bin") && env.is_git_ignored("d\\ir/a\\b.txt"));
    assert!(!env.is_git_ignored("topx.bin"), "the backslash is matched literally");
    env.git_cmd(&["commit", "-q", "-m", "track"]);
    let st = env.json(&["status"]);
    let states: Vec<(String, String)> = st["tracked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["path"].as_str().unwrap().to_string(), t["state"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        states,
        vec![
            ("d\\ir".to_string(), "unchanged".to_string()),
            ("plain.txt".to_string(), "unchanged".to_string()),
            ("top\\x.bin".to_string(), "unchanged".to_string()),
        ]
    );
    let ls = env.json(&["ls", "HEAD"]);
    assert_eq!(ls["tracked"].as_array().unwrap().len(), 3, "{ls}");

    let store = env.outside().join("store");
    env.ok(&["remote", "add", "store", store.to_str().unwrap(), "--default"]);
    env.ok(&["push"]);
    fs::remove_dir_all(env.path(".trove/cache")).unwrap();
    let _ = fs::remove_dir_all(env.path("d\\ir"));
    fs::remove_file(env.path("top\\x.bin")).unwrap();
    env.ok(&["pull"]);
    assert_eq!(env.read_string("top\\x.bin"), "file with a backslash");
    assert_eq!(env.read_string("d\\ir/sub\\dir/c"), "c");

    env.write("d\\ir/new\\one", "n");
    let d = env.json(&["diff"]);
    assert_eq!(d["added"][0]["path"], "d\\ir/new\\one", "{d}");
    let out = env.ok(&["diff"]);
    assert!(out.stdout.contains("    \"d\\\\ir/new\\\\one\"  (1 B)"), "quoted as git quotes it:\n{out}");

    env.ok(&["remove", "top\\x.bin", "d\\ir"]);
    assert_eq!(env.gitignore_lines(""), vec!["/plain.txt"]);
    assert_eq!(env.json(&["status"])["tracked"].as_array().unwrap().len(), 1);
}

#[test]
fn add_refuses_a_symbolic_link_and_writes_nothing() {
    let env = Env::new();
    env.write("real.bin", "real");
    env.write("folder/x", "x");
    env.ok(&["add", "real.bin"]);
    std::os::unix::fs::symlink("real.bin", env.path("link.bin")).unwrap();
    std::os::unix::fs::symlink("folder", env.path("link-dir")).unwrap();
    for link in ["link.bin", "link-dir"] {
        let out = env.fails(1, &["add", link]);
        assert!(out.stderr.contains(&format!("{link}: is a symbolic link")), "{out}");
        assert!(!env.exists(&format!("{link}.trove")), "no pointer for {link}");
    }
    assert_eq!(env.gitignore_lines(""), vec!["/real.bin"]);
    // Every other command still reads the repository.
    let st = env.json(&["status"]);
    assert_eq!(st["tracked"][0]["state"], "unchanged", "{st}");
    env.ok(&["checkout"]);
    env.ok(&["ls"]);
}

/// Whether `git check-ignore` (the real git) says git ignores `rel`.
fn git_ignores(env: &Env, rel: &str) -> bool {
    let mut cmd = std::process::Command::new("git");
    // --no-index: staged pointers (`star*.trove`) must not count as the name being tracked.
    cmd.args(["check-ignore", "--no-index", "-q", "--", rel]).current_dir(&env.root);
    env.clean_env(&mut cmd);
    let status = cmd.status().expect("run git check-ignore");
    assert!(matches!(status.code(), Some(0 | 1)), "git check-ignore {rel:?}: {status}");
    status.code() == Some(0)
}

#[test]
fn gitignore_entries_match_exactly_their_own_name() {
    let env = Env::new();
    // A .gitignore of the user's, with a CRLF line, that must come back byte for byte.
    let own = "*.log\r\n# notes\n/keep\n";
    env.write(".gitignore", own);
    // Each name, and names its line would also match if it were not escaped.
    let cases: [(&str, &[&str]); 16] = [
        ("star*", &["starX", "star"]),
        ("q?", &["qZ"]),
        ("br[a]ck", &["brack", "bra"]),
        ("back\\slash", &["backslash"]),
        ("#hash", &["hash"]),
        ("!bang", &["bang"]),
        ("trail ", &["trail"]),
        ("two  ", &["two", "two "]),
        ("cr\r", &["cr"]),
        ("tab\t", &["tab"]),
        (" lead", &["lead"]),
        ("close]", &["close"]),
        ("**", &["x.bin", "any"]),
        ("a\\*b", &["a\\xb", "axb"]),
        ("sp ace\\ ", &["sp ace", "sp ace\\"]),
        ("end\\", &["end"]),
    ];
    for (name, decoys) in cases {
        env.write(name, format!("content of {name:?}"));
        for d in decoys {
            env.write(&format!("decoys/{d}"), "decoy");
            env.write(d, "decoy");
        }
    }
    let names: Vec<&str> = cases.iter().map(|(n, _)| *n).collect();
    let mut args = vec!["add"];
    args.extend(&names);
    env.ok(&args);
    for (name, decoys) in cases {
        assert!(git_ignores(&env, name), "git should ignore {name:?}: {:?}", env.read_string(".gitignore"));
        for d in decoys.iter().filter(|d| !names.contains(d)) {
            assert!(!git_ignores(&env, d), "{d:?} is ignored by the entry for {name:?}");
        }
    }
    let st = env.json(&["status"]);
    assert_eq!(st["tracked"].as_array().unwrap().len(), names.len(), "{st}");

    // A name with a newline cannot be one .gitignore line: refused, nothing written.
    let before = env.read(".gitignore");
    env.write("x.bin", "unrelated");
    env.write("nl\nx.bin", "newline");
    let out = env.fails(1, &["add", "nl\nx.bin"]);
    assert!(out.stderr.contains("line break"), "{out}");
    assert!(out.stderr.contains("/nl\\nx.bin\": "), "the name is quoted: {out}");
    assert!(!env.exists("nl\nx.bin.trove"));
    assert_eq!(env.read(".gitignore"), before);
    assert!(!git_ignores(&env, "x.bin"));
    assert!(env.object_files().iter().all(|f| blake3_file(f) != blake3_hex(b"newline")));

    // remove takes back exactly the lines add wrote.
    let mut args = vec!["remove"];
    args.extend(&names);
    env.ok(&args);
    assert_eq!(env.read_string(".gitignore"), own);
}

/// The command of `hint: commit the pointers with git: …`, run as a shell would, in `cwd`.
fn run_commit_hint(env: &Env, cwd: &std::path::Path, out: &Out) -> String {
    let hint = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("hint: commit the pointers with git: "))
        .unwrap_or_else(|| panic!("no commit hint:\n{out}"))
        .to_string();
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", &format!("{hint} -q -m data")]).current_dir(cwd);
    env.clean_env(&mut cmd);
    let done = cmd.output().unwrap();
    assert!(done.status.success(), "{hint}: {}", String::from_utf8_lossy(&done.stderr));
    hint
}

#[test]
fn the_commit_hint_works_from_where_the_user_stands() {
    let env = Env::new();
    env.git_cmd(&["commit", "-q", "-m", "init"]);
    env.write("sub/deeper/data/a.txt", "a");
    env.write("sub/model one.bin", "m");
    let sub = env.path("sub");
    let out = env.run_in(&sub, &["add", "deeper/data", "model one.bin"]).ok();
    let hint = run_commit_hint(&env, &sub, &out);
    assert_eq!(hint, "git commit deeper/data.trove 'model one.bin.trove' deeper/.gitignore .gitignore");
    for f in ["sub/deeper/data.trove", "sub/model one.bin.trove", "sub/deeper/.gitignore", "sub/.gitignore"] {
        assert_eq!(env.head_blob(f).as_deref(), Some(&env.read(f)[..]), "{f} is committed");
    }

    // With -C, from outside the repository, re-adding changed data (its .gitignore unchanged).
    env.write("sub/deeper/data/a.txt", "a2");
    let out = env.run_in(&env.outside(), &["-C", "repo/sub/deeper", "add", "data"]).ok();
    let hint = run_commit_hint(&env, &env.outside(), &out);
    assert_eq!(hint, "git -C repo/sub/deeper commit data.trove");
    assert_eq!(env.head_blob("sub/deeper/data.trove").unwrap(), env.read("sub/deeper/data.trove"));

    // After --no-stage, git has to be told about the new files first.
    env.write("loose.bin", "l");
    let out = env.ok(&["add", "--no-stage", "loose.bin"]);
    let hint = run_commit_hint(&env, &env.root, &out);
    assert_eq!(hint, "git add loose.bin.trove .gitignore && git commit loose.bin.trove .gitignore");
    assert_eq!(env.head_blob("loose.bin.trove").unwrap(), env.read("loose.bin.trove"));
    assert_eq!(env.head_blob(".gitignore").unwrap(), env.read(".gitignore"));
}

#[test]
fn add_reports_every_link_it_cannot_track_at_once() {
    let env = Env::new();
    // The shapes of /usr/share/doc and /usr/share/zoneinfo: links to folders beside them
    // and to themselves, links leaving the tree, broken links, among ordinary files.
    let outside = env.outside().join("common-licenses");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("GPL-3"), "license").unwrap();
    env.write("doc/pkg-a/copyright", "a");
    env.write("doc/pkg-a/changelog", "log");
    env.write("doc/zoneinfo/UTC", "utc");
    let links = [
        ("doc/pkg-b", "pkg-a".to_string()),
        ("doc/zoneinfo/posix", ".".to_string()),
        ("doc/pkg-a/GPL", outside.join("GPL-3").to_str().unwrap().to_string()),
        ("doc/licenses", outside.to_str().unwrap().to_string()),
        ("doc/pkg-a/NEWS", "gone".to_string()),
        ("doc/zoneinfo/Zulu", "UTC".to_string()),
    ];
    for (link, target) in &links {
        std::os::unix::fs::symlink(target, env.path(link)).unwrap();
    }
    let out = env.fails(1, &["add", "doc"]);
    assert!(out.stderr.contains("doc: 5 entries cannot be tracked"), "{out}");
    for (shown, why) in [
        ("doc/licenses", "outside the repository"),
        ("doc/pkg-a/GPL", "outside the repository"),
        ("doc/pkg-a/NEWS", "broken symbolic link"),
        ("doc/pkg-b", "to a folder"),
        ("doc/zoneinfo/posix", "to a folder"),
    ] {
        assert!(
            out.stderr.lines().any(|l| l.starts_with(&format!("  {shown}: ")) && l.contains(why)),
            "{shown}: {out}"
        );
    }
    assert!(!out.stderr.contains("Zulu"), "a link to a file inside is tracked: {out}");
    assert!(
        out.stderr.contains("hint: leave them out with patterns in") && out.stderr.contains(".troveignore"),
        "{out}"
    );
    assert!(!env.exists("doc.trove"));

    // The hint's way out works.
    env.write("doc/.troveignore", "/licenses\n/pkg-a/GPL\n/pkg-a/NEWS\n/pkg-b\n/zoneinfo/posix\n");
    let v = env.json(&["add", "doc"]);
    // The four files and the .troveignore itself.
    assert_eq!(v["added"][0]["files"], 5, "{v}");
    assert_eq!(env.json(&["status"])["tracked"][0]["state"], "unchanged");
}

#[test]
fn add_refuses_files_git_already_tracks() {
    let env = Env::new();
    env.write("data/a.txt", "a");
    env.write("data/sub/b.txt", "b");
    env.write("model.bin", "m");
    env.git_cmd(&["add", "data/sub/b.txt", "model.bin"]);
    for (path, tracked) in [("data", "data/sub/b.txt"), ("model.bin", "model.bin")] {
        let out = env.fails(1, &["add", path]);
        assert!(out.stderr.contains(&format!("{path}: already tracked by git ({tracked})")), "{out}");
        assert!(
            out.stderr.contains("hint: stop tracking it in git first (the files stay): git rm -r --cached"),
            "{out}"
        );
        assert!(!env.exists(&format!("{path}.trove")));
    }
    assert!(!env.exists(".gitignore"));
    assert!(env.object_files().is_empty(), "nothing was stored");
    env.git_cmd(&["rm", "-r", "-q", "--cached", "data", "model.bin"]);
    env.ok(&["add", "data", "model.bin"]);
    assert!(env.is_git_ignored("data") && env.is_git_ignored("model.bin"));
}

#[test]
fn names_yaml_reads_as_nothing_are_written_so_they_read_back() {
    let env = Env::new();
    // A no-break space alone: YAML reads it, left plain, as an empty value.
    let names = ["\u{a0}", "x\u{a0}", "\u{85}", "\u{feff}bom"];
    for n in names {
        env.write(n, format!("content of {n:?}"));
    }
    let mut args = vec!["add"];
    args.extend(names);
    env.ok(&args);
    let ls = env.json(&["ls"]);
    let paths: Vec<serde_json::Value> =
        ls["tracked"].as_array().unwrap().iter().map(|t| t["path"].clone()).collect();
    let mut listed = strings(&serde_json::Value::Array(paths));
    let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    listed.sort();
    want.sort();
    assert_eq!(listed, want, "{ls}");
    let st = env.json(&["status"]);
    assert_eq!(st["tracked"].as_array().unwrap().len(), names.len(), "{st}");
    assert!(st["tracked"].as_array().unwrap().iter().all(|t| t["state"] == "unchanged"), "{st}");
    env.ok(&["remove", "\u{a0}"]);
    assert!(!env.exists("\u{a0}.trove"));
}

#[test]
fn add_names_every_refused_path_and_adds_none_of_them() {
    let env = Env::new();
    env.write("good.bin", "good");
    env.write("real.bin", "real");
    std::os::unix::fs::symlink("real.bin", env.path("link.bin")).unwrap();
    env.write("in git.txt", "g");
    env.git_cmd(&["add", "in git.txt"]);
    env.write("tree/a.txt", "a");
    std::os::unix::fs::symlink("/", env.path("tree/root")).unwrap();
    let out = env.fails(1, &["add", "good.bin", "link.bin", "in git.txt", "missing", "tree"]);
    let err: Vec<&str> = out.stderr.lines().filter(|l| !l.starts_with("hint: ")).collect();
    assert_eq!(err.len(), 6, "{out}");
    assert_eq!(err[0], "error: 4 paths cannot be added:", "{out}");
    for (line, what) in err[1..].iter().zip([
        "/link.bin: is a symbolic link (to real.bin)",
        "/in git.txt: already tracked by git (in git.txt)",
        "/missing: no such file or folder",
        "/tree: 1 entry cannot be tracked:",
        "    tree/root: is a symbolic link pointing outside the repository (to /)",
    ]) {
        assert!(line.starts_with("  ") && line.contains(what), "{what}: {out}");
    }
    assert!(out.stderr.contains("hint: stop tracking it in git first"), "{out}");
    assert!(out.stderr.contains("hint: leave them out with patterns in"), "{out}");
    assert!(!env.exists("good.bin.trove") && !env.exists(".gitignore"), "nothing was added");
    assert!(env.object_files().is_empty(), "nothing was stored");
}
