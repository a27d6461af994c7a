//! `trove status`.

use std::fs;

use crate::add::sample_dir;
use crate::common::*;

fn state_of(v: &serde_json::Value, path: &str) -> serde_json::Value {
    v["tracked"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in {v}"))
        .clone()
}

fn tracked_env() -> Env {
    let env = Env::new();
    sample_dir(&env);
    env.write("model.bin", "weights");
    env.ok(&["add", "data", "model.bin"]);
    env
}

#[test]
fn status_unchanged() {
    let env = tracked_env();
    let v = env.json(&["status"]);
    assert_eq!(v["tracked"].as_array().unwrap().len(), 2, "{v}");
    for p in ["data", "model.bin"] {
        let t = state_of(&v, p);
        assert_eq!(t["state"], "unchanged", "{t}");
        assert_eq!(t["in_cache"], true, "{t}");
        assert!(t.get("changes").is_none_or(|c| c.is_null()), "{t}");
    }
    assert_eq!(state_of(&v, "data")["kind"], "dir");
    assert_eq!(state_of(&v, "data")["pointer"], "data.trove");
    assert_eq!(state_of(&v, "model.bin")["kind"], "file");
    let out = env.ok(&["status"]);
    assert!(out.stdout.contains("data: unchanged"), "{out}");
    assert!(out.stdout.contains("model.bin: unchanged"), "{out}");
}

#[test]
fn status_lists_added_removed_and_changed_files() {
    let env = tracked_env();
    env.write("data/new.txt", "brand new");
    env.write("data/sub/deeper/new2.txt", "also new");
    fs::remove_file(env.path("data/sub/b.txt")).unwrap();
    env.write("data/a.txt", "alpha, edited\n");
    let v = env.json(&["status"]);
    let d = state_of(&v, "data");
    assert_eq!(d["state"], "modified", "{d}");
    let c = &d["changes"];
    let mut added = strings(&c["added"]);
    added.sort();
    assert_eq!(added, vec!["new.txt", "sub/deeper/new2.txt"], "{d}");
    assert_eq!(strings(&c["removed"]), vec!["sub/b.txt"], "{d}");
    assert_eq!(strings(&c["modified"]), vec!["a.txt"], "{d}");
    assert_eq!(state_of(&v, "model.bin")["state"], "unchanged");

    let out = env.ok(&["status"]);
    assert!(out.stdout.contains("data: modified"), "{out}");
    assert!(out.stdout.contains("new.txt") && out.stdout.contains("sub/b.txt"), "{out}");
}

#[test]
fn status_sees_a_changed_exec_bit() {
    use std::os::unix::fs::PermissionsExt;
    let env = tracked_env();
    fs::set_permissions(env.path("data/run.sh"), fs::Permissions::from_mode(0o644)).unwrap();
    let v = env.json(&["status", "data"]);
    let d = state_of(&v, "data");
    assert_eq!(d["state"], "modified", "{d}");
    assert_eq!(strings(&d["changes"]["modified"]), vec!["run.sh"], "{d}");
}

#[test]
fn status_modified_file_and_same_size_change() {
    let env = tracked_env();
    env.write("model.bin", "weights v2");
    let v = env.json(&["status", "model.bin"]);
    assert_eq!(state_of(&v, "model.bin")["state"], "modified");
    // Same size, different content (the hash cache must not be fooled by size alone).
    env.write("model.bin", "weightz");
    let v = env.json(&["status", "model.bin"]);
    assert_eq!(state_of(&v, "model.bin")["state"], "modified");
    env.write("model.bin", "weights");
    let v = env.json(&["status", "model.bin"]);
    assert_eq!(state_of(&v, "model.bin")["state"], "unchanged");
}

#[test]
fn status_missing() {
    let env = tracked_env();
    fs::remove_dir_all(env.path("data")).unwrap();
    fs::remove_file(env.path("model.bin")).unwrap();
    let v = env.json(&["status"]);
    for p in ["data", "model.bin"] {
        let t = state_of(&v, p);
        assert_eq!(t["state"], "missing", "{t}");
        assert_eq!(t["in_cache"], true, "{t}");
    }
    let out = env.ok(&["status"]);
    assert!(out.stdout.contains("data: missing"), "{out}");
}

#[test]
fn status_not_in_cache() {
    let env = tracked_env();
    // With the data present, an emptied cache is reported as such.
    let objects = env.objects_dir();
    let mut all = Vec::new();
    walk(&objects, &mut all);
    for f in &all {
        let mut perm = fs::metadata(f).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        let _ = fs::set_permissions(f, perm);
    }
    fs::remove_dir_all(&objects).unwrap();
    let v = env.json(&["status"]);
    for p in ["data", "model.bin"] {
        assert_eq!(state_of(&v, p)["in_cache"], false, "{v}");
    }
    // And with the data gone too, the state is not_in_cache.
    fs::remove_dir_all(env.path("data")).unwrap();
    fs::remove_file(env.path("model.bin")).unwrap();
    let v = env.json(&["status"]);
    for p in ["data", "model.bin"] {
        let t = state_of(&v, p);
        assert_eq!(t["state"], "not_in_cache", "{t}");
        assert_eq!(t["in_cache"], false, "{t}");
    }
    // Still exit code 0: status reports, it does not fail.
    let out = env.ok(&["status"]);
    assert!(out.stdout.contains("not in cache"), "{out}");
}

#[test]
fn status_notices_one_object_gone_after_it_found_the_folder_complete() {
    let env = tracked_env();
    // Old enough that this status may remember the folder as complete.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(state_of(&env.json(&["status"]), "data")["in_cache"], true);
    assert_eq!(state_of(&env.json(&["status"]), "data")["in_cache"], true);
    // One object of the folder deleted behind trove's back, then put back.
    let object = env.object_path(&blake3_hex(b"bravo bravo\n"));
    let saved = fs::read(&object).unwrap();
    fs::remove_file(&object).unwrap();
    let v = env.json(&["status"]);
    assert_eq!(state_of(&v, "data")["in_cache"], false, "{v}");
    assert_eq!(state_of(&v, "data")["state"], "unchanged", "{v}");
    fs::write(&object, &saved).unwrap();
    assert_eq!(state_of(&env.json(&["status"]), "data")["in_cache"], true);
}

#[test]
fn status_selects_by_data_path_and_pointer_path() {
    let env = tracked_env();
    env.write("model.bin", "changed");
    for args in [&["status", "data"][..], &["status", "data.trove"], &["status", "./data/"]] {
        let v = env.json(args);
        let t = v["tracked"].as_array().unwrap();
        assert_eq!(t.len(), 1, "{args:?}: {v}");
        assert_eq!(t[0]["path"], "data");
        assert_eq!(t[0]["state"], "unchanged");
    }
    for args in [&["status", "model.bin"][..], &["status", "model.bin.trove"]] {
        let v = env.json(args);
        let t = v["tracked"].as_array().unwrap();
        assert_eq!(t.len(), 1, "{args:?}: {v}");
        assert_eq!(t[0]["path"], "model.bin");
        assert_eq!(t[0]["state"], "modified");
    }
    // From a subfolder, paths are relative to it; reported paths stay repository-relative.
    env.write("nested/deep/f.txt", "f");
    env.ok(&["add", "nested/deep/f.txt"]);
    let out = env.run_in(&env.path("nested"), &["--json", "status", "deep/f.txt"]);
    assert_eq!(out.code, 0, "{out}");
    let v = out.json();
    assert_eq!(v["tracked"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["tracked"][0]["path"], "nested/deep/f.txt");
    // A folder holding pointers selects everything under it.
    let v = env.json(&["status", "nested"]);
    assert_eq!(v["tracked"].as_array().unwrap().len(), 1, "{v}");
    // An untracked path is an error naming it.
    env.write("loose.txt", "loose");
    let out = env.fails(1, &["status", "loose.txt"]);
    assert!(out.stderr.contains("loose.txt"), "{out}");
}

#[test]
fn status_with_nothing_tracked() {
    let env = Env::new();
    let v = env.json(&["status"]);
    assert_eq!(v["tracked"].as_array().unwrap().len(), 0);
    let out = env.ok(&["status"]);
    assert!(out.stdout.contains("no tracked data"), "{out}");
}

#[test]
fn status_lists_ten_changes_unless_verbose() {
    let env = Env::new();
    env.write("data/a.txt", "a");
    env.ok(&["add", "data"]);
    for i in 0..15 {
        env.write(&format!("data/new{i:02}.txt"), format!("{i}"));
    }
    let out = env.ok(&["status"]);
    let listed = out.stdout.lines().filter(|l| l.contains("added: new")).count();
    assert_eq!(listed, 10, "{out}");
    assert!(out.stdout.contains("5 more"), "{out}");
    let out = env.ok(&["-v", "status"]);
    let listed = out.stdout.lines().filter(|l| l.contains("added: new")).count();
    assert_eq!(listed, 15, "{out}");
    let v = env.json(&["status"]);
    assert_eq!(v["tracked"][0]["changes"]["added"].as_array().unwrap().len(), 15);
}

#[test]
fn status_right_after_add_trusts_what_add_hashed() {
    let env = Env::new();
    // Written just before the add: within the clock tick of it, as after `cp` or `dd`.
    env.write("model.bin", noise(1 << 20, 6));
    env.ok(&["add", "model.bin"]);
    // Other bytes under the same inode, size and mtime: a status that reads the file calls
    // it modified; one that trusts the hash-cache entry add left calls it unchanged.
    // (The entry is what spares the first status after add from reading a large file.)
    let path = env.path("model.bin");
    rewrite_keeping_stamp(&path, b"not the model");
    let v = env.json(&["status"]);
    assert_eq!(state_of(&v, "model.bin")["state"], "unchanged", "{v}");
}

/// An ordinary append to f.txt and data/a.txt, made writable first (root may write
/// read-only files; anyone else takes a chmod, which a shared inode also carries).
fn append_through_links(env: &Env) {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    for rel in ["f.txt", "data/a.txt"] {
        let p = env.path(rel);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(b"appended\n").unwrap();
    }
}

/// status calls f.txt and data damaged, naming the objects written through the links.
fn assert_damaged(env: &Env, f_id: &str, a_id: &str, modified: &[&str]) {
    let v = env.json(&["status"]);
    let f = state_of(&v, "f.txt");
    assert_eq!(f["state"], "damaged", "{f}");
    assert_eq!(strings(&f["damaged"]), vec![f_id], "{f}");
    let d = state_of(&v, "data");
    assert_eq!(d["state"], "damaged", "{d}");
    assert_eq!(strings(&d["damaged"]), vec![a_id], "{d}");
    assert_eq!(strings(&d["changes"]["modified"]), modified, "{d}");
}

#[test]
fn status_says_a_cache_object_written_through_a_hard_link_is_damaged() {
    let env = Env::new();
    env.ok(&["config", "cache.link", "[hardlink, copy]"]);
    sample_dir(&env);
    env.write("f.txt", "original\n");
    env.ok(&["add", "data", "f.txt"]);
    let (f_id, a_id) = (blake3_hex(b"original\n"), blake3_hex(b"alpha\n"));
    // An ordinary append through the read-only hard links.
    append_through_links(&env);
    assert_eq!(
        blake3_file(&env.object_path(&f_id)),
        blake3_hex(b"original\nappended\n"),
        "the link wrote the cache"
    );
    // A changed mode alone leaves the object's bytes as they were: modified, not damaged.
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(env.path("data/sub/b.txt"), fs::Permissions::from_mode(0o755)).unwrap();
    }

    assert_damaged(&env, &f_id, &a_id, &["a.txt", "sub/b.txt"]);

    let out = env.ok(&["status"]);
    assert!(out.stdout.contains("f.txt: damaged: written through a link"), "{out}");
    assert!(out.stdout.contains(&format!("damaged: {a_id}")), "{out}");
    assert!(
        out.stderr.contains("hint: a write through a link") && out.stderr.contains("trove verify"),
        "{out}"
    );
    assert!(
        !out.stderr.contains("discards them"),
        "checkout --force cannot restore from the damaged object:\n{out}"
    );

    // Checkout, forced or not, names the damaged object rather than restoring from it.
    for args in
        [&["checkout", "f.txt"][..], &["checkout", "--force", "f.txt"], &["checkout", "--force", "data"]]
    {
        let out = env.fails(1, args);
        assert!(out.stderr.contains("damaged"), "{args:?}: {out}");
        assert!(out.stderr.contains(&f_id) || out.stderr.contains(&a_id), "{args:?}: {out}");
    }
    assert_eq!(env.read("f.txt"), b"original\nappended\n", "the workspace content is kept");

    // verify moves the damaged objects aside; the new content can then be added.
    env.fails(1, &["verify"]);
    env.ok(&["add", "f.txt", "data"]);
    for t in env.json(&["status"])["tracked"].as_array().unwrap() {
        assert_eq!(t["state"], "unchanged", "{t}");
    }
}

#[test]
fn status_of_pointers_naming_data_not_in_the_cache_sends_to_pull() {
    let env = tracked_env();
    env.ok(&["commit", "-m", "v1"]);
    let v1 = (env.read("data.trove"), env.read("model.bin.trove"));
    // Newer data, then the older pointers back (as `git checkout -b b OLD` does), with the
    // older data not in this cache (as in a fresh clone that never pulled it).
    env.write("model.bin", "weights v2");
    env.write("data/a.txt", "alpha v2\n");
    env.ok(&["add", "data", "model.bin"]);
    env.write("data.trove", &v1.0);
    env.write("model.bin.trove", &v1.1);
    fs::remove_file(env.object_path(&blake3_hex(b"weights"))).unwrap();
    fs::remove_file(env.object_path(&blake3_hex(b"alpha\n"))).unwrap();

    let v = env.json(&["status"]);
    for p in ["data", "model.bin"] {
        let t = state_of(&v, p);
        assert_eq!(t["state"], "not_in_cache", "{t}");
        assert_eq!(t["in_cache"], false, "{t}");
        assert_eq!(t["other_data"], true, "{t}");
    }
    let out = env.ok(&["status"]);
    assert!(out.stdout.contains("model.bin: not in cache; the workspace holds other data"), "{out}");
    assert!(out.stdout.contains("data: not in cache; the workspace holds other data"), "{out}");
    assert!(out.stderr.contains("hint: `trove pull`"), "{out}");
    assert!(!out.stderr.contains("trove add"), "adding would overwrite the older pointer:\n{out}");
    assert!(!out.stderr.contains("--force"), "{out}");
}

#[test]
fn status_reports_a_bad_pointer_as_one_error_and_the_rest_as_usual() {
    let env = tracked_env();
    // A data file that happens to end in .trove, and a pointer damaged by hand.
    env.write("notes.trove", "meeting notes, not a pointer\n");
    env.write("sub/broken.bin.trove", "version: 1\npath: broken.bin\nkind: file\nhash: nothex\nsize: 1\n");
    env.write("model.bin", "changed");
    let out = env.fails(1, &["status"]);
    assert!(out.stdout.contains("data: unchanged"), "{out}");
    assert!(out.stdout.contains("model.bin: modified"), "{out}");
    let errors: Vec<&str> = out.stdout.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(errors.len(), 2, "one error line per bad pointer:\n{out}");
    assert!(errors[0].starts_with("notes.trove: error: line 1"), "{out}");
    assert!(errors[1].starts_with("sub/broken.bin.trove: error: line 4"), "{out}");
    assert!(out.stderr.contains("error: 2 tracked paths could not be checked:\n"), "{out}");
    let (notes, broken) = (env.path("notes.trove:1: "), env.path("sub/broken.bin.trove:4: "));
    assert!(
        out.stderr.contains(notes.to_str().unwrap()) && out.stderr.contains(broken.to_str().unwrap()),
        "{out}"
    );
    assert!(out.stderr.contains("hint: fix or restore the pointer file"), "{out}");
    assert!(out.stderr.contains("hint: `trove add PATH`"), "the states' hints still come:\n{out}");

    let out = env.run(&["--json", "status"]);
    assert_eq!(out.code, 1, "{out}");
    let v = out.json();
    assert_eq!(v["tracked"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(state_of(&v, "data")["state"], "unchanged", "{v}");
    assert_eq!(state_of(&v, "model.bin")["state"], "modified", "{v}");
    let errs = v["errors"].as_array().unwrap();
    let pointers: Vec<&str> = errs.iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    assert_eq!(pointers, vec!["notes.trove", "sub/broken.bin.trove"], "{v}");
    assert!(errs[0]["error"].as_str().unwrap().contains("notes.trove:1"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("2 tracked paths"), "{v}");

    // Naming a good path reports it alone, and succeeds.
    assert_eq!(state_of(&env.json(&["status", "data"]), "data")["state"], "unchanged");
}

#[test]
fn status_says_a_cache_object_written_through_a_symbolic_link_is_damaged() {
    let env = Env::new();
    env.ok(&["config", "cache.link", "[symlink]"]);
    env.write("data/a.txt", "alpha\n");
    env.write("data/b.txt", "bravo\n");
    env.write("f.txt", "original\n");
    env.ok(&["add", "data", "f.txt"]);
    assert!(lmeta(&env.path("f.txt")).file_type().is_symlink());
    for t in env.json(&["status"])["tracked"].as_array().unwrap() {
        assert_eq!(t["state"], "unchanged", "{t}");
    }
    let (f_id, a_id) = (blake3_hex(b"original\n"), blake3_hex(b"alpha\n"));
    // A write through the link lands in the object.
    append_through_links(&env);
    assert_damaged(&env, &f_id, &a_id, &["a.txt"]);
    for (args, id) in [(&["checkout", "--force", "f.txt"][..], &f_id), (&["checkout", "data"], &a_id)] {
        let out = env.fails(1, args);
        assert!(out.stderr.contains("damaged") && out.stderr.contains(id.as_str()), "{args:?}: {out}");
    }
}
