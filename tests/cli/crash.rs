//! Crash safety: `trove add` killed with SIGKILL at random points never leaves a partial
//! object under an id, a broken pointer or a broken git index; rerunning finishes the job.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::*;
use crate::formats::assert_object_sound;

const BIG: usize = 300 * 1024 * 1024;

fn check_invariants(env: &Env, context: &str) {
    for f in env.object_files() {
        assert_object_sound(env, &f);
    }
    if env.exists("big.bin.trove") {
        let text = env.read_string("big.bin.trove");
        let p = Pointer::parse(&text);
        assert_eq!(p.path, "big.bin", "{context}");
        assert_eq!(p.size, BIG as u64, "{context}");
        assert!(env.object_path(&p.hash).is_file(), "{context}: the pointer names an object the cache lacks");
    }
    let git = env.git();
    let idx = git.index().unwrap_or_else(|e| panic!("{context}: git index unreadable: {e}"));
    for e in idx.iter() {
        let path = String::from_utf8(e.path.clone()).unwrap();
        assert!(git.find_blob(e.id).is_ok(), "{context}: index entry {path} names a missing blob");
    }
    env.git_cmd(&["status", "--porcelain"]);
}

#[test]
fn killing_add_never_leaves_a_partial_object() {
    let env = Env::new();
    let mut content = noise(BIG, 77);
    env.write("big.bin", &content);
    // How long one whole `add` takes here, so the kills land inside the work.
    let started = Instant::now();
    env.ok(&["add", "big.bin"]);
    let full = started.elapsed();
    let jitter = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos() as f64 / 1e9;
    let fractions = [0.05, 0.3, 0.6, 0.9];
    for (round, frac) in fractions.into_iter().enumerate() {
        // New content each round, so every run has a whole object to write.
        content[..8].copy_from_slice(&(round as u64 + 1000).to_le_bytes());
        let mut f = fs::OpenOptions::new().write(true).open(env.path("big.bin")).unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.write_all(&content[..8]).unwrap();
        drop(f);

        let delay = full.mul_f64(frac + 0.1 * jitter).max(Duration::from_millis(5));
        let mut child = env
            .command_in(&env.root, &["add", "big.bin"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        eprintln!("round {round}: a full add takes {full:?}; killed after {delay:?}: {status}");
        check_invariants(&env, &format!("round {round}, killed after {delay:?} ({status})"));
    }

    // Rerunning finishes the job.
    let v = env.json(&["add", "big.bin"]);
    assert_eq!(v["added"][0]["hash"].as_str().unwrap(), blake3_hex(&content));
    let p = env.pointer("big.bin.trove");
    assert_eq!(p, Pointer::file("big.bin", &content));
    assert_eq!(fs::read(env.object_path(&p.hash)).unwrap(), content);
    check_invariants(&env, "after the rerun");
    let st = env.json(&["status"]);
    assert_eq!(st["tracked"][0]["state"], "unchanged", "{st}");
    assert_eq!(st["tracked"][0]["in_cache"], true, "{st}");

    // Temp files of the killed processes are cleaned up.
    let left = cache_temps(&env.path(".trove/cache"));
    assert!(left.is_empty(), "temp files of killed processes remain: {left:?}");

    // And the data can be restored from the cache.
    fs::remove_file(env.path("big.bin")).unwrap();
    env.ok(&["checkout"]);
    assert_eq!(blake3_file(&env.path("big.bin")), blake3_hex(&content));
}

#[test]
fn killing_checkout_then_rerunning_finishes_the_job() {
    let env = Env::new();
    let content = noise(BIG / 2, 11);
    env.write("big.bin", &content);
    for i in 0..200 {
        env.write(&format!("data/f{i:03}.bin"), noise(64 * 1024, i));
    }
    env.ok(&["add", "big.bin", "data"]);
    let remove_data = |env: &Env| {
        let _ = fs::remove_file(env.path("big.bin"));
        let _ = fs::remove_dir_all(env.path("data"));
    };
    remove_data(&env);
    let started = Instant::now();
    env.ok(&["checkout"]);
    let full = started.elapsed();
    for frac in [0.1, 0.4, 0.8] {
        remove_data(&env);
        let mut child = env
            .command_in(&env.root, &["checkout"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64(frac).max(Duration::from_millis(5)));
        let _ = child.kill();
        let status = child.wait().unwrap();
        eprintln!("checkout takes {full:?}; killed at {frac}: {status}");
        for f in env.object_files() {
            assert_object_sound(&env, &f);
        }
        // Whatever is in place under the real name is complete.
        if env.exists("big.bin") {
            assert_eq!(blake3_file(&env.path("big.bin")), blake3_hex(&content), "a partial big.bin");
        }
        env.ok(&["checkout"]);
        assert_eq!(blake3_file(&env.path("big.bin")), blake3_hex(&content));
        let st = env.json(&["status"]);
        for t in st["tracked"].as_array().unwrap() {
            assert_eq!(t["state"], "unchanged", "{t}");
        }
    }
    for i in 0..200u64 {
        assert_eq!(env.read(&format!("data/f{i:03}.bin")), noise(64 * 1024, i));
    }
}

#[test]
fn killed_checkout_leaves_no_debris_after_the_rerun() {
    let env = Env::new();
    let content = noise(BIG / 2, 12);
    env.write("big.bin", &content);
    env.ok(&["add", "big.bin"]);
    // The fastest of a few whole checkouts, so the kills land inside the work.
    let full = (0..3)
        .map(|_| {
            fs::remove_file(env.path("big.bin")).unwrap();
            let started = Instant::now();
            env.ok(&["checkout"]);
            started.elapsed()
        })
        .min()
        .unwrap();
    for frac in [0.1, 0.3, 0.5, 0.7] {
        fs::remove_file(env.path("big.bin")).unwrap();
        let mut child = env
            .command_in(&env.root, &["checkout"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64(frac).max(Duration::from_millis(5)));
        let _ = child.kill();
        child.wait().unwrap();
        env.ok(&["checkout"]);
    }
    assert_eq!(blake3_file(&env.path("big.bin")), blake3_hex(&content));
    // The temporary files of the killed runs must not stay in the work tree, where git
    // sees them as new files (`git add -A` would commit them).
    let debris: Vec<String> = fs::read_dir(&env.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".trove-"))
        .collect();
    assert!(debris.is_empty(), "temp files of killed checkouts remain after the rerun: {debris:?}");
    let untracked = env.git_cmd(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(!untracked.contains(".trove-"), "git sees checkout debris:\n{untracked}");
}
