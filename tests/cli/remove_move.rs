//! `trove remove` and `trove move`.

use crate::add::sample_dir;
use crate::common::*;

#[test]
fn remove_stops_tracking_and_keeps_the_data() {
    let env = Env::new();
    let entries = sample_dir(&env);
    env.write("model.bin", "m");
    env.ok(&["add", "data", "model.bin"]);
    env.git_cmd(&["commit", "-q", "-m", "track"]);
    let id = env.pointer("data.trove").hash;

    let v = env.json(&["remove", "data"]);
    assert_eq!(strings(&v["removed"]), vec!["data"]);
    assert!(!env.exists("data.trove"), "the pointer is deleted");
    assert_eq!(env.gitignore_lines(""), vec!["/model.bin"], "only the data's line goes");
    for e in &entries {
        assert_eq!(env.read(&format!("data/{}", e.path)), e.content, "the data stays");
    }
    assert!(env.manifest_path(&id).is_file(), "the objects stay in the cache");
    let idx = env.index_paths();
    assert!(!idx.contains(&"data.trove".to_string()), "index: {idx:?}");
    assert!(idx.contains(&"model.bin.trove".to_string()), "index: {idx:?}");
    assert_eq!(env.index_blob(".gitignore").unwrap(), env.read(".gitignore"));
    let st = env.json(&["status"]);
    assert_eq!(st["tracked"].as_array().unwrap().len(), 1, "{st}");

    // Removing the last entry deletes the .gitignore it was in.
    env.ok(&["remove", "model.bin.trove"]);
    assert!(!env.exists("model.bin.trove"));
    assert!(!env.exists(".gitignore"));
    assert_eq!(env.read("model.bin"), b"m");
    let idx = env.index_paths();
    assert!(!idx.contains(&".gitignore".to_string()), "index: {idx:?}");
    assert!(!idx.contains(&"model.bin.trove".to_string()), "index: {idx:?}");
}

#[test]
fn remove_refuses_untracked_data() {
    let env = Env::new();
    env.write("loose.txt", "x");
    let out = env.fails(1, &["remove", "loose.txt"]);
    assert!(out.stderr.contains("loose.txt"), "{out}");
    assert!(env.exists("loose.txt"));
}

#[test]
fn move_renames_data_and_pointer_together() {
    let env = Env::new();
    let entries = sample_dir(&env);
    env.write(".gitignore", "*.log\n");
    env.ok(&["add", "data"]);
    let old = env.pointer("data.trove");

    let v = env.json(&["move", "data", "sets/images"]);
    assert_eq!(v["from"], "data");
    assert_eq!(v["to"], "sets/images");
    assert!(!env.exists("data"), "the data moved");
    assert!(!env.exists("data.trove"), "the old pointer is gone");
    for e in &entries {
        assert_eq!(env.read(&format!("sets/images/{}", e.path)), e.content);
    }
    let new = env.pointer("sets/images.trove");
    assert_eq!(new.path, "images", "the pointer names its new data");
    assert_eq!((new.kind, new.hash, new.size, new.files), (old.kind, old.hash, old.size, old.files));
    assert_eq!(env.gitignore_lines(""), vec!["*.log"], "the old entry is gone, the rest kept");
    assert_eq!(env.gitignore_lines("sets"), vec!["/images"]);
    let idx = env.index_paths();
    assert!(!idx.contains(&"data.trove".to_string()), "index: {idx:?}");
    assert!(idx.contains(&"sets/images.trove".to_string()), "index: {idx:?}");
    assert!(idx.contains(&"sets/.gitignore".to_string()), "index: {idx:?}");
    assert_eq!(env.index_blob(".gitignore").unwrap(), env.read(".gitignore"));
    let st = env.json(&["status"]);
    assert_eq!(st["tracked"].as_array().unwrap().len(), 1);
    assert_eq!(st["tracked"][0]["path"], "sets/images");
    assert_eq!(st["tracked"][0]["state"], "unchanged");
}

#[test]
fn move_a_file_into_an_existing_folder_keeps_its_name() {
    let env = Env::new();
    env.write("model.bin", "weights");
    env.write("models/README", "models go here");
    env.ok(&["add", "model.bin"]);
    env.ok(&["move", "model.bin", "models"]);
    assert_eq!(env.read("models/model.bin"), b"weights");
    assert_eq!(env.pointer("models/model.bin.trove"), Pointer::file("model.bin", b"weights"));
    assert!(!env.exists(".gitignore"), "the top .gitignore had only that line");
    assert_eq!(env.gitignore_lines("models"), vec!["/model.bin"]);
}

#[test]
fn move_to_a_new_folder_named_with_a_slash_keeps_the_name() {
    let env = Env::new();
    env.write("model.bin", "weights");
    env.ok(&["add", "model.bin"]);
    env.ok(&["move", "model.bin", "archive/2026/"]);
    assert_eq!(env.read("archive/2026/model.bin"), b"weights");
    assert_eq!(env.pointer("archive/2026/model.bin.trove"), Pointer::file("model.bin", b"weights"));
    assert!(!env.exists("model.bin"));
}

#[test]
fn move_refuses_an_existing_destination() {
    let env = Env::new();
    env.write("model.bin", "weights");
    env.write("other.bin", "other");
    env.ok(&["add", "model.bin"]);
    let out = env.fails(1, &["move", "model.bin", "other.bin"]);
    assert!(out.stderr.contains("other.bin"), "{out}");
    assert_eq!(env.read("other.bin"), b"other");
    assert_eq!(env.read("model.bin"), b"weights");
    assert!(env.exists("model.bin.trove"));
}

#[test]
fn remove_has_a_way_out_of_what_earlier_adds_left() {
    let env = Env::new();
    env.write("keep.bin", "keep");
    env.ok(&["add", "keep.bin"]);
    // What earlier versions of add wrote, by hand: a pointer for a symbolic link, a name
    // with a backslash, and a name with a newline whose .gitignore entry became two lines.
    env.write("real.bin", "real");
    std::os::unix::fs::symlink("real.bin", env.path("link.bin")).unwrap();
    env.write_pointer("link.bin.trove", &Pointer::file("link.bin", b"real"));
    env.write("top\\x", "backslash");
    env.write_pointer("top\\x.trove", &Pointer::file("top\\x", b"backslash"));
    env.write("nl\nname", "newline");
    let text = Pointer::file("NAME", b"newline").text().replace("path: NAME", "path: \"nl\\nname\"");
    env.write("nl\nname.trove", text);
    let own = "# mine\n/other\n";
    env.write(".gitignore", format!("{own}/keep.bin\n/link.bin\n/top\\\\x\n/nl\nname\n"));

    let out = env.fails(1, &["status"]);
    assert!(out.stderr.contains("link.bin: tracked data is a symbolic link"), "{out}");
    assert!(out.stderr.contains("`trove remove`"), "the error says the way out: {out}");

    let v = env.json(&["remove", "link.bin", "top\\x", "nl\nname"]);
    assert_eq!(v["removed"].as_array().unwrap().len(), 3, "{v}");
    for p in ["link.bin.trove", "top\\x.trove", "nl\nname.trove"] {
        assert!(!env.exists(p), "{p} is gone");
    }
    assert_eq!(env.read_string(".gitignore"), format!("{own}/keep.bin\n"), "exactly the entries go");
    assert!(env.exists("real.bin") && env.exists("top\\x") && env.exists("nl\nname"), "the data stays");
    let st = env.json(&["status"]);
    assert_eq!(st["tracked"].as_array().unwrap().len(), 1, "{st}");
    assert_eq!(st["tracked"][0]["state"], "unchanged", "{st}");

    // move refuses, as add does, a name no .gitignore line can match.
    let out = env.fails(1, &["move", "keep.bin", "new\nname"]);
    assert!(out.stderr.contains("line break"), "{out}");
    assert!(env.exists("keep.bin") && env.exists("keep.bin.trove") && !env.exists("new\nname"));
    assert_eq!(env.read_string(".gitignore"), format!("{own}/keep.bin\n"));
}
