//! Bad input and hostile data: malformed pointers and manifests, paths escaping the
//! repository, missing repositories, the repository lock.

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn line_marker(stderr: &str, file: &str) -> Option<usize> {
    let at = stderr.find(&format!("{file}:"))?;
    let rest = &stderr[at + file.len() + 1..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() || !rest[digits.len()..].starts_with(':') {
        return None;
    }
    digits.parse().ok()
}

fn valid_pointer_text() -> String {
    Pointer::file("model.bin", b"m").text()
}

#[test]
fn malformed_pointer_is_reported_with_file_and_line() {
    let env = Env::new();
    env.write("model.bin", "m");
    env.ok(&["add", "model.bin"]);
    let garbage =
        format!("{HEADER}\nversion: 1\npath: model.bin\nkind: file\nhash: [unclosed, {{\nsize: 1\n");
    env.write("model.bin.trove", &garbage);
    for cmd in [&["status"][..], &["checkout"], &["ls"], &["commit", "-m", "x"]] {
        let out = env.fails(1, cmd);
        let line = line_marker(&out.stderr, "model.bin.trove");
        assert!(
            line.is_some_and(|l| (1..=7).contains(&l)),
            "{cmd:?} should report model.bin.trove:LINE:\n{out}"
        );
        assert!(out.stderr.contains("hint:"), "{out}");
    }
    assert_eq!(env.read_string("model.bin.trove"), garbage, "the pointer is left as it was");
    assert_eq!(env.read("model.bin"), b"m");
    // Plain garbage, not even a mapping.
    env.write("model.bin.trove", "\u{1}\u{2} this is not yaml: [: {\n");
    let out = env.fails(1, &["status"]);
    assert!(line_marker(&out.stderr, "model.bin.trove").is_some(), "{out}");
}

#[test]
fn pointer_errors_name_the_right_line() {
    let env = Env::new();
    env.write("model.bin", "m");
    env.ok(&["add", "model.bin"]);
    let good = valid_pointer_text();
    assert_eq!(env.read_string("model.bin.trove"), good);
    let cases: Vec<(String, usize, &str)> = vec![
        (good.replace("version: 1", "version: 2"), 2, "version"),
        (good.replace("version: 1", "version: 99"), 2, "version"),
        (good.replace("hash: ", "hash: zz"), 5, "zz"),
        (good.replace("path: model.bin", "path: ../model.bin"), 3, "../model.bin"),
        (format!("{good}colour: red\n"), 7, "colour"),
        (format!("{good}files: 3\n"), 7, "files"),
    ];
    for (text, line, word) in cases {
        env.write("model.bin.trove", &text);
        let out = env.fails(1, &["status"]);
        assert_eq!(line_marker(&out.stderr, "model.bin.trove"), Some(line), "for\n{text}\n{out}");
        assert!(out.stderr.contains(word), "the error should mention {word}:\n{out}");
        let out = env.fails(1, &["checkout", "--force"]);
        assert_eq!(line_marker(&out.stderr, "model.bin.trove"), Some(line), "{out}");
        assert_eq!(env.read_string("model.bin.trove"), text);
    }
}

#[test]
fn pointer_leading_outside_the_repository_is_refused() {
    let env = Env::new();
    env.write("seed.bin", "payload");
    env.ok(&["add", "seed.bin"]);
    let mut p = Pointer::file("../outside.bin", b"payload");
    env.write_pointer("evil.trove", &p);
    for cmd in [&["checkout"][..], &["checkout", "--force", "evil.trove"], &["status"]] {
        let out = env.fails(1, cmd);
        assert!(out.stderr.contains("evil.trove"), "{cmd:?} should name the pointer:\n{out}");
    }
    assert!(!env.outside().join("outside.bin").exists(), "nothing may be written outside the repository");

    // In a subfolder, `..` is refused as well.
    p.path = "../../../outside2.bin".into();
    fs::remove_file(env.path("evil.trove")).unwrap();
    env.write_pointer("sub/evil.trove", &p);
    let out = env.fails(1, &["checkout", "-f"]);
    assert!(out.stderr.contains("evil.trove"), "{out}");
    assert!(!env.outside().join("outside2.bin").exists());

    // An absolute path.
    fs::remove_file(env.path("sub/evil.trove")).unwrap();
    let target = env.outside().join("abs.bin");
    p.path = target.to_str().unwrap().to_string();
    env.write_pointer("evil.trove", &p);
    let out = env.fails(1, &["checkout", "-f"]);
    assert!(out.stderr.contains("evil.trove"), "{out}");
    assert!(!target.exists());
}

#[test]
fn pointer_behind_a_symlinked_folder_cannot_write_outside() {
    let env = Env::new();
    env.write("seed.bin", "payload");
    env.ok(&["add", "seed.bin"]);
    let out_dir = env.outside().join("elsewhere");
    fs::create_dir_all(&out_dir).unwrap();
    fs::write(out_dir.join("x.trove"), Pointer::file("x", b"payload").text()).unwrap();
    std::os::unix::fs::symlink(&out_dir, env.path("link")).unwrap();
    let out = env.run(&["checkout", "-f", "link/x.trove"]);
    assert_ne!(out.code, 0, "{out}");
    let out = env.run(&["checkout", "-f", "link/x"]);
    assert_ne!(out.code, 0, "{out}");
    let all = env.run(&["checkout", "-f"]);
    assert!(!out_dir.join("x").exists(), "written through a symlink out of the repository:\n{all}");
}

#[test]
fn manifest_with_escaping_paths_is_refused() {
    let env = Env::new();
    env.write("seed.bin", "payload");
    env.ok(&["add", "seed.bin"]);
    let h = blake3_hex(b"payload");
    let abs_target = env.outside().join("abs-escape.txt");
    let cases = [
        ("../escape1.txt", env.path("escape1.txt")),
        ("a/../../escape2.txt", env.path("escape2.txt")),
        ("../../escape3.txt", env.outside().join("escape3.txt")),
        (abs_target.to_str().unwrap(), abs_target.clone()),
        ("./dot.txt", env.path("evil/dot.txt")),
        ("a//b.txt", env.path("evil/a/b.txt")),
    ];
    for (i, (bad, landing)) in cases.iter().enumerate() {
        let name = format!("evil{i}");
        let manifest =
            format!(r#"{{"version":1,"entries":[{{"path":"{bad}","hash":"{h}","size":7,"exec":false}}]}}"#);
        let id = plant_manifest(&env, &name, &manifest, 1, 7);
        for cmd in [&["checkout", name.as_str()][..], &["checkout", "--force", name.as_str()]] {
            let out = env.fails(1, cmd);
            assert!(
                out.stderr.contains(&id) || out.stderr.contains(bad),
                "the error should name the manifest or the entry:\n{out}"
            );
        }
        assert!(!landing.exists(), "{bad}: written to {}", landing.display());
        fs::remove_file(env.path(&format!("{name}.trove"))).unwrap();
    }
    assert!(!env.outside().join("escape3.txt").exists());
}

#[test]
fn manifest_entry_through_a_symlink_in_the_workspace_cannot_escape() {
    let env = Env::new();
    env.write("seed.bin", "payload");
    env.ok(&["add", "seed.bin"]);
    let h = blake3_hex(b"payload");
    let out_dir = env.outside().join("target");
    fs::create_dir_all(&out_dir).unwrap();
    let manifest =
        format!(r#"{{"version":1,"entries":[{{"path":"sub/x.txt","hash":"{h}","size":7,"exec":false}}]}}"#);
    plant_manifest(&env, "evil", &manifest, 1, 7);
    fs::create_dir_all(env.path("evil")).unwrap();
    std::os::unix::fs::symlink(&out_dir, env.path("evil/sub")).unwrap();
    let out = env.run(&["checkout", "evil"]);
    assert_ne!(out.code, 0, "{out}");
    let out = env.run(&["checkout", "--force", "evil"]);
    assert!(!out_dir.join("x.txt").exists(), "written through a symlink out of the tracked folder:\n{out}");
}

#[test]
fn corrupt_manifest_is_refused() {
    let env = Env::new();
    env.write("data/a.txt", "a");
    env.ok(&["add", "data"]);
    let id = env.pointer("data.trove").hash;
    let path = env.manifest_path(&id);
    let mut perm = fs::metadata(&path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    fs::set_permissions(&path, perm).unwrap();
    fs::write(&path, r#"{"version":1,"entries":[]}"#).unwrap();
    fs::remove_dir_all(env.path("data")).unwrap();
    let out = env.fails(1, &["checkout"]);
    assert!(out.stderr.contains(&id[..12]), "the error should name the manifest:\n{out}");
}

#[test]
fn not_a_git_repository() {
    let env = Env::plain();
    env.write("x.txt", "x");
    for cmd in [&["status"][..], &["add", "x.txt"], &["checkout"], &["ls"]] {
        let out = env.fails(1, cmd);
        assert!(out.stderr.contains("git"), "{out}");
        assert!(out.stderr.contains("hint:"), "the error should say what to do:\n{out}");
    }
    assert!(!env.path(".trove").exists());
    assert!(!env.path("x.txt.trove").exists());
}

#[test]
fn not_initialised() {
    let env = Env::git_only();
    env.write("x.txt", "x");
    for cmd in [&["status"][..], &["add", "x.txt"], &["config", "cache.link"]] {
        let out = env.fails(1, cmd);
        assert!(out.stderr.contains("trove init"), "the hint should say `trove init`:\n{out}");
    }
    assert!(!env.path(".trove").exists());
    assert!(!env.path("x.txt.trove").exists());
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    env.fails(2, &["frobnicate"]);
    env.fails(2, &["add"]);
    env.fails(2, &["status", "--no-such-flag"]);
    env.fails(2, &["move", "only-one"]);
}

/// Holds `.trove/tmp/lock` with flock(2), like a running trove writer: a second process
/// (python3) where there is one, else an open file description of this test process.
enum LockHolder {
    Process(std::process::Child),
    InProcess(Option<fs::File>),
}

impl LockHolder {
    fn start(env: &Env) -> LockHolder {
        let script = "import fcntl, os, sys, time\n\
                      f = open(sys.argv[1], 'a+')\n\
                      fcntl.flock(f.fileno(), fcntl.LOCK_EX)\n\
                      f.seek(0); f.truncate(); f.write('pid %d' % os.getpid()); f.flush()\n\
                      print('locked', flush=True)\n\
                      time.sleep(120)\n";
        let lock = env.path(".trove/tmp/lock");
        let spawned = Command::new("python3").arg("-c").arg(script).arg(&lock).stdout(Stdio::piped()).spawn();
        match spawned {
            Ok(mut child) => {
                let mut line = String::new();
                BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
                assert_eq!(line.trim(), "locked");
                LockHolder::Process(child)
            }
            Err(_) => {
                use std::io::Write;
                let mut f = fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&lock)
                    .unwrap();
                f.lock().unwrap();
                f.set_len(0).unwrap();
                write!(f, "pid {}", std::process::id()).unwrap();
                LockHolder::InProcess(Some(f))
            }
        }
    }

    fn pid(&self) -> u32 {
        match self {
            LockHolder::Process(c) => c.id(),
            LockHolder::InProcess(_) => std::process::id(),
        }
    }

    /// Kill the holder (SIGKILL) or close its file: the lock must go with it.
    fn kill(&mut self) {
        match self {
            LockHolder::Process(c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            LockHolder::InProcess(f) => drop(f.take()),
        }
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn a_second_writer_fails_clearly_while_the_repository_is_locked() {
    let env = Env::new();
    env.write("model.bin", "m");
    env.ok(&["add", "model.bin"]);
    // Setting the timeout takes the lock itself, so it comes first.
    env.ok(&["config", "core.lock_timeout", "1"]);
    env.write("data/a.txt", "a");
    let mut holder = LockHolder::start(&env);
    let pid = holder.pid();

    let started = Instant::now();
    let out = env.fails(1, &["add", "data"]);
    let waited = started.elapsed();
    assert!(out.stderr.to_lowercase().contains("lock"), "the error should mention the lock:\n{out}");
    assert!(out.stderr.contains(&pid.to_string()), "the error should name the holder (pid {pid}):\n{out}");
    assert!(waited >= Duration::from_millis(900), "it should wait core.lock_timeout first ({waited:?})");
    assert!(waited < Duration::from_secs(8), "waited {waited:?} for a 1 s timeout");
    assert!(!env.exists("data.trove"), "nothing is written without the lock");

    // Readers are not blocked.
    let st = env.json(&["status"]);
    assert_eq!(st["tracked"][0]["state"], "unchanged", "{st}");
    env.ok(&["ls"]);
    env.ok(&["config", "cache.link"]);

    // Other writers are refused as well.
    for cmd in [&["checkout"][..], &["commit", "-m", "x"], &["remove", "model.bin"]] {
        let out = env.fails(1, cmd);
        assert!(out.stderr.to_lowercase().contains("lock"), "{cmd:?}:\n{out}");
    }
    assert!(env.exists("model.bin.trove"));

    // A killed holder leaves no lock behind.
    holder.kill();
    env.ok(&["add", "data"]);
    assert!(env.exists("data.trove"));
}

#[test]
fn a_waiting_writer_proceeds_when_the_lock_is_released() {
    let env = Env::new();
    env.ok(&["config", "core.lock_timeout", "20"]);
    env.write("model.bin", "m");
    let mut holder = LockHolder::start(&env);
    let mut child = env
        .command_in(&env.root, &["add", "model.bin"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert!(child.try_wait().unwrap().is_none(), "the writer should be waiting");
    holder.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("waiting"), "a notice says it waits:\n{stderr}");
    assert!(env.exists("model.bin.trove"));
}

#[test]
fn concurrent_writers_do_not_corrupt_each_other() {
    let env = Env::new();
    for i in 0..4 {
        for j in 0..50 {
            env.write(&format!("set{i}/f{j}.txt"), format!("{i}-{j}"));
        }
    }
    let children: Vec<_> = (0..4)
        .map(|i| {
            env.command_in(&env.root, &["add", &format!("set{i}")])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut lines = env.gitignore_lines("");
    lines.sort();
    assert_eq!(lines, vec!["/set0", "/set1", "/set2", "/set3"]);
    let idx = env.index_paths();
    for i in 0..4 {
        assert!(idx.contains(&format!("set{i}.trove")), "{idx:?}");
    }
    assert_eq!(env.index_blob(".gitignore").unwrap(), env.read(".gitignore"));
    let st = env.json(&["status"]);
    for t in st["tracked"].as_array().unwrap() {
        assert_eq!(t["state"], "unchanged", "{t}");
    }
}

#[test]
fn non_utf8_pointer_is_reported_with_file_and_line() {
    let env = Env::new();
    env.write("model.bin", "m");
    env.ok(&["add", "model.bin"]);
    env.write("model.bin.trove", b"version: 1\npath: \xff\xfe\n");
    let out = env.fails(1, &["status"]);
    assert!(line_marker(&out.stderr, "model.bin.trove").is_some(), "{out}");
}
