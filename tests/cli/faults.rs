//! Fault injection: `kill -9` at seeded points of `add`, `push`, `pull`, `gc` and
//! `exp log`; an SFTP server killed under a pull; a full disk under the cache; several
//! trove processes on one repository. After each fault nothing stored is corrupt or lost,
//! the git index and pointer files are intact, and rerunning the command finishes the job.
//!
//! The kill points come from one seed, printed by every test; `TROVE_FAULT_SEED=N` repeats
//! a run. Each operation is timed uncut first and its kill points are spread over that time.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::add::dir_pointer;
use crate::common::*;
use crate::sshd::Sshd;

const DEFAULT_SEED: u64 = 20_261_123;

// Kill points of the campaign, per operation.
const KILLS_ADD_MANY: usize = 10;
const KILLS_ADD_LARGE: usize = 8;
const KILLS_PUSH: usize = 10;
const KILLS_PUSH_SFTP: usize = 4;
const KILLS_PULL: usize = 8;
const KILLS_GC: usize = 7;
const KILLS_EXP_LOG: usize = 6;
const _: () = assert!(
    KILLS_ADD_MANY + KILLS_ADD_LARGE + KILLS_PUSH + KILLS_PUSH_SFTP + KILLS_PULL + KILLS_GC + KILLS_EXP_LOG
        >= 50
);

/// The kill points of one operation: a seeded point in each of `n` equal slices of an
/// uncut run, so the kills cover the whole run. A run that ends before its kill point
/// shows the operation to be quicker than the timing said: later points shrink to fit.
struct Campaign {
    label: String,
    fractions: Vec<f64>,
    full: Duration,
    killed: usize,
    started: Instant,
}

impl Campaign {
    fn new(rng: &mut KillRng, label: &str, full: Duration, n: usize) -> Campaign {
        let fractions = (0..n).map(|i| (i as f64 + rng.fraction()) / n as f64).collect();
        Campaign { label: label.to_string(), fractions, full, killed: 0, started: Instant::now() }
    }

    fn rounds(&self) -> std::ops::Range<usize> {
        0..self.fractions.len()
    }

    /// Run trove and SIGKILL it at this round's point; returns a description for messages.
    fn kill(&mut self, round: usize, env: &Env, cwd: &Path, args: &[&str]) -> String {
        let delay = self.full.mul_f64(self.fractions[round]).max(Duration::from_millis(1));
        let context = format!(
            "{}, round {round}: killed after {delay:?} (an uncut run takes {:?})",
            self.label, self.full
        );
        match kill_after(env, cwd, args, delay) {
            None => self.killed += 1,
            Some(took) => self.full = self.full.min(took),
        }
        context
    }

    fn finish(self) {
        let n = self.fractions.len();
        eprintln!(
            "{}: {} of {n} runs killed mid-way; the rounds took {:.1?}",
            self.label,
            self.killed,
            self.started.elapsed()
        );
        assert!(self.killed > 0, "{}: no kill landed inside a run", self.label);
    }
}

/// Run trove to completion and say how long it took.
fn timed(env: &Env, cwd: &Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let out = env.run_in(cwd, args);
    assert_eq!(out.code, 0, "trove {args:?} failed:\n{out}");
    started.elapsed()
}

/// Object files already hashed, with the stat that was current then: objects are
/// immutable, so one whose stat did not change need not be hashed again.
static HASHED: Mutex<BTreeMap<PathBuf, (u64, u64, i64, i64)>> = Mutex::new(BTreeMap::new());

fn stat_key(m: &fs::Metadata) -> (u64, u64, i64, i64) {
    use std::os::unix::fs::MetadataExt;
    (
        m.ino(),
        m.size(),
        m.mtime_nsec() + m.mtime() * 1_000_000_000,
        m.ctime_nsec() + m.ctime() * 1_000_000_000,
    )
}

/// Every object file under `objects` has an object's name, hashes to it and is read-only
/// (the temp files of writers, `obj-PID-N`, are checked by [`cache_temps`] after a rerun).
fn assert_objects_sound(objects: &Path, context: &str) {
    let mut files = Vec::new();
    walk(objects, &mut files);
    for f in files.into_iter().filter(|f| !is_cache_temp(f)) {
        let rel = f.strip_prefix(objects).unwrap();
        let parts: Vec<&str> = rel.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(parts.len(), 2, "{context}: stray file in the cache: {}", f.display());
        let name = parts[1].strip_suffix(".dir").unwrap_or(parts[1]);
        assert!(parts[0].len() == 2 && name.len() == 62, "{context}: stray file {}", f.display());
        let meta = fs::symlink_metadata(&f).unwrap();
        assert!(meta.is_file(), "{context}: {} is not a regular file", f.display());
        assert_eq!(meta.permissions().mode() & 0o222, 0, "{context}: object {} is writable", f.display());
        let key = stat_key(&meta);
        if HASHED.lock().unwrap().get(&f) == Some(&key) {
            continue;
        }
        assert_eq!(
            blake3_file(&f),
            format!("{}{name}", parts[0]),
            "{context}: object {} does not match its id",
            f.display()
        );
        HASHED.lock().unwrap().insert(f, key);
    }
}

/// The pointer files of the work tree (outside `.git` and `.trove`).
fn pointer_files(env: &Env) -> Vec<PathBuf> {
    let mut files = Vec::new();
    walk_work_tree(&env.root, &mut files);
    files.retain(|f| f.extension().is_some_and(|e| e == "trove"));
    files
}

/// Files of the work tree, without `.git` and `.trove`.
fn walk_work_tree(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name();
        if e.file_type().unwrap().is_dir() {
            if name != ".git" && name != ".trove" {
                walk_work_tree(&p, out);
            }
        } else {
            out.push(p);
        }
    }
}

/// The git index can be read, its entries' blobs exist, and git itself finds its
/// repository sound.
fn assert_git_sound(env: &Env, context: &str) {
    let git = env.git();
    let idx = git.index().unwrap_or_else(|e| panic!("{context}: the git index is unreadable: {e}"));
    for e in idx.iter() {
        let path = String::from_utf8_lossy(&e.path).into_owned();
        assert!(git.find_blob(e.id).is_ok(), "{context}: index entry {path} names a missing blob");
    }
    env.git_cmd(&["status", "--porcelain"]);
    env.git_cmd(&["fsck", "--no-dangling", "--no-progress"]);
}

/// What must hold at every moment, also right after a kill: objects sound, git sound,
/// every pointer file parses.
fn assert_intact(env: &Env, context: &str) {
    assert_objects_sound(&env.objects_dir(), context);
    assert_git_sound(env, context);
    for p in pointer_files(env) {
        let text = fs::read_to_string(&p).unwrap();
        let parsed = std::panic::catch_unwind(|| Pointer::parse(&text));
        assert!(parsed.is_ok(), "{context}: {} does not parse:\n{text}", p.display());
    }
}

/// Every pointer names data the cache holds in full (true after add, at any moment).
fn assert_pointers_resolve(env: &Env, context: &str) {
    for p in pointer_files(env) {
        let ptr = Pointer::parse(&fs::read_to_string(&p).unwrap());
        if ptr.kind == "file" {
            assert!(
                env.object_path(&ptr.hash).is_file(),
                "{context}: {} names a missing object",
                p.display()
            );
            continue;
        }
        let manifest = env.manifest_path(&ptr.hash);
        let bytes = fs::read(&manifest)
            .unwrap_or_else(|e| panic!("{context}: {} names a missing manifest: {e}", p.display()));
        let m: Value = serde_json::from_slice(&bytes).unwrap();
        for entry in m["entries"].as_array().unwrap() {
            let id = entry["hash"].as_str().unwrap();
            assert!(env.object_path(id).is_file(), "{context}: {} lists a missing object {id}", p.display());
        }
    }
}

/// Names of temp files trove writes beside data and pointers (checkout's
/// and atomic writes' `.NAME.trove-PID-N`).
fn work_tree_debris(env: &Env) -> Vec<PathBuf> {
    let mut files = Vec::new();
    walk_work_tree(&env.root, &mut files);
    files.retain(|f| f.file_name().unwrap().to_string_lossy().contains(".trove-"));
    files
}

/// What must hold once a rerun finished the job: [`assert_intact`], `trove verify` finds
/// nothing wrong, every tracked path is unchanged and in the cache, no temp files remain,
/// and git's index matches the work tree (pointers and `.gitignore` are staged or committed).
fn assert_finished(env: &Env, context: &str) {
    assert_intact(env, context);
    let out = env.run(&["--json", "verify"]);
    assert_eq!(out.code, 0, "{context}: verify failed:\n{out}");
    let v = out.json();
    assert!(v["verify"]["corrupt"].as_array().unwrap().is_empty(), "{context}: {v}");
    assert!(v["verify"]["failed"].as_array().unwrap().is_empty(), "{context}: {v}");
    let st = env.json(&["status"]);
    for t in st["tracked"].as_array().unwrap() {
        assert_eq!(t["state"], "unchanged", "{context}: {t}");
        assert_eq!(t["in_cache"], true, "{context}: {t}");
    }
    let temps = cache_temps(&env.path(".trove/cache"));
    assert!(
        temps.is_empty(),
        "{context}: {} temp files remain in the cache: {:?}",
        temps.len(),
        &temps[..temps.len().min(3)]
    );
    let debris = work_tree_debris(env);
    assert!(debris.is_empty(), "{context}: temp files remain in the work tree: {debris:?}");
    let porcelain = env.git_cmd(&["status", "--porcelain", "--untracked-files=all"]);
    for line in porcelain.lines() {
        assert!(
            !line.starts_with("??") && line.as_bytes().get(1) == Some(&b' '),
            "{context}: the work tree differs from the git index:\n{porcelain}"
        );
    }
}

fn commit_all(env: &Env, message: &str) {
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "--allow-empty", "-m", message]);
}

/// Files of `rel` in `a` and `b` are byte-identical (and `b` has no others).
fn assert_same_tree(a: &Env, b: &Env, rel: &str, context: &str) {
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    walk(&a.path(rel), &mut fa);
    walk(&b.path(rel), &mut fb);
    let names = |v: &[PathBuf], root: &Path| -> Vec<String> {
        let mut n: Vec<String> =
            v.iter().map(|f| f.strip_prefix(root).unwrap().to_string_lossy().into_owned()).collect();
        n.sort();
        n
    };
    let na = names(&fa, &a.root);
    assert!(!na.is_empty());
    assert_eq!(na, names(&fb, &b.root), "{context}: {rel} holds other files");
    for r in na {
        assert!(a.read(&r) == b.read(&r), "{context}: {r} differs");
    }
}

/// Write `count` files of a few KiB under `dir` whose content depends on `seed`.
fn write_files(env: &Env, dir: &str, count: u64, seed: u64) -> Vec<Entry> {
    (0..count)
        .map(|i| {
            let content = noise(512 + (i as usize * 97) % 3000, seed.wrapping_mul(1_000_003) ^ i);
            let path = format!("f{i:04}.bin");
            env.write(&format!("{dir}/{path}"), &content);
            Entry { path, content, exec: false }
        })
        .collect()
}

fn make_removable(p: &Path) {
    if let Ok(m) = fs::metadata(p) {
        let _ = fs::set_permissions(p, fs::Permissions::from_mode(m.permissions().mode() | 0o200));
    }
}

// ---------------------------------------------------------------------------------------
// 1. kill -9 at seeded points

#[test]
fn kill_9_during_add_of_many_small_files() {
    const FILES: u64 = 3000;
    let mut rng = KillRng::from_env("add-many", DEFAULT_SEED);
    let env = Env::new();
    commit_all(&env, "trove init");
    let mut entries = write_files(&env, "many", FILES, 0);
    env.ok(&["add", "many"]);
    // A round changes a third of the files: time one such add uncut.
    let change_third = |entries: &mut Vec<Entry>, round: u64| {
        for (i, e) in entries.iter_mut().enumerate() {
            if (i as u64 + round).is_multiple_of(3) {
                e.content = noise(e.content.len(), (round << 32) ^ i as u64 ^ 0xadd);
                env.write(&format!("many/{}", e.path), &e.content);
            }
        }
    };
    change_third(&mut entries, 1);
    let full = timed(&env, &env.root, &["add", "many"]);
    let mut campaign = Campaign::new(&mut rng, &format!("add of {FILES} files"), full, KILLS_ADD_MANY);
    for round in campaign.rounds() {
        let before = env.read_string("many.trove");
        change_third(&mut entries, round as u64 + 2);
        let after = dir_pointer("many", &entries).text();
        let context = campaign.kill(round, &env, &env.root, &["add", "many"]);

        assert_intact(&env, &context);
        assert_pointers_resolve(&env, &context);
        let now = env.read_string("many.trove");
        assert!(
            now == before || now == after,
            "{context}: the pointer is neither the old nor the new one:\n{now}"
        );
        let staged = String::from_utf8(env.index_blob("many.trove").unwrap()).unwrap();
        assert!(staged == before || staged == after, "{context}: the staged pointer is broken:\n{staged}");
        env.ok(&["add", "many"]);
        assert_eq!(env.read_string("many.trove"), after, "{context}");
        assert_eq!(env.index_blob("many.trove").unwrap(), after.as_bytes(), "{context}: pointer not staged");
        assert_eq!(env.index_blob(".gitignore").unwrap(), b"/many\n", "{context}: .gitignore not staged");
        assert_finished(&env, &context);
    }
    campaign.finish();
    // The cache restores the last version.
    fs::remove_dir_all(env.path("many")).unwrap();
    env.ok(&["checkout"]);
    for e in &entries {
        assert!(env.read(&format!("many/{}", e.path)) == e.content, "many/{} after checkout", e.path);
    }
}

/// The state a kill between writing the pointer and `.gitignore` and staging them leaves
/// (the window is too short for timed kills to hit reliably; `--no-stage` leaves the same).
#[test]
fn add_interrupted_before_staging_is_finished_by_the_rerun() {
    let env = Env::new();
    commit_all(&env, "trove init");
    env.write("data/a.txt", "a");
    env.ok(&["add", "--no-stage", "data"]);
    assert_eq!(env.index_blob(".gitignore"), None);
    env.ok(&["add", "data"]);
    assert_eq!(env.index_blob("data.trove").unwrap(), env.read("data.trove"));
    assert_eq!(env.index_blob(".gitignore").unwrap(), b"/data\n", "the rerun stages .gitignore too");
    assert_finished(&env, "after the rerun");
}

/// git's own lock, left by a process killed while it wrote the index: add refuses clearly
/// (a git command may be running; only the user can tell) and nothing is lost; once the
/// lock is gone the rerun finishes the job.
#[test]
fn stale_git_index_lock_is_reported_and_the_rerun_finishes() {
    let env = Env::new();
    commit_all(&env, "trove init");
    env.write("data/a.txt", "a");
    env.write(".git/index.lock", "");
    let out = env.fails(1, &["add", "data"]);
    assert!(out.stderr.contains("index is locked"), "{out}");
    assert!(out.stderr.contains("hint:") && out.stderr.contains(".git/index.lock"), "{out}");
    assert_intact(&env, "after the refused add");
    assert_pointers_resolve(&env, "after the refused add");
    fs::remove_file(env.path(".git/index.lock")).unwrap();
    env.ok(&["add", "data"]);
    assert_finished(&env, "after the rerun");
}

/// The lock file git leaves when a process is killed while it moves the experiment ref:
/// exp log says which file it is (retrying cannot help) and loses no record; once the
/// lock is gone the rerun records.
#[test]
fn stale_experiment_ref_lock_is_reported_and_the_rerun_finishes() {
    let env = Env::new();
    commit_all(&env, "code");
    env.ok(&["exp", "log", "-m", "acc=1"]);
    let before = record_ids(&env, "before");
    env.write(".git/refs/trove/exps.lock", "");
    let out = env.fails(1, &["exp", "log", "-m", "acc=2"]);
    assert!(out.stderr.contains("refs/trove/exps.lock"), "the error names the lock file:\n{out}");
    assert!(!out.stderr.contains("try again"), "retrying cannot help:\n{out}");
    assert_eq!(record_ids(&env, "after the refused log"), before);
    fs::remove_file(env.path(".git/refs/trove/exps.lock")).unwrap();
    env.ok(&["exp", "log", "-m", "acc=2"]);
    assert_eq!(record_ids(&env, "after the rerun").len(), 2);
    assert_finished(&env, "after the rerun");
}

/// Temp files of a writer killed mid-write (pointer, `.gitignore`, settings) carry its pid;
/// the next writer deletes them, so git never sees them as new files.
#[test]
fn temp_files_of_killed_writers_are_removed_by_the_next_writer() {
    let env = Env::new();
    env.write("data/a.txt", "a");
    // No process has this pid: it is above the kernel's largest.
    let dead = 4_194_305;
    for rel in [format!(".data.trove.trove-{dead}-1a"), format!(".gitignore.trove-{dead}-2b")] {
        env.write(&rel, "half");
    }
    env.write(&format!(".trove/.config.trove-{dead}-3c"), "half");
    env.write(&format!("data/.a.txt.trove-{dead}-4d"), "half");
    env.ok(&["add", "data"]);
    commit_all(&env, "data");
    assert_finished(&env, "after the next add");
}

#[test]
fn kill_9_during_add_of_a_large_file() {
    const SIZE: usize = 96 << 20;
    let mut rng = KillRng::from_env("add-large", DEFAULT_SEED);
    let env = Env::new();
    commit_all(&env, "trove init");
    let mut content = noise(SIZE, 3);
    env.write("big.bin", &content);
    let full = timed(&env, &env.root, &["add", "big.bin"]);
    let mut campaign =
        Campaign::new(&mut rng, &format!("add of a {} MiB file", SIZE >> 20), full, KILLS_ADD_LARGE);
    for round in campaign.rounds() {
        let before = env.pointer("big.bin.trove");
        // New content each round, so every run has a whole object to write.
        content[..8].copy_from_slice(&(round as u64 + 1).to_le_bytes());
        env.write("big.bin", &content);
        let after = Pointer::file("big.bin", &content);
        let context = campaign.kill(round, &env, &env.root, &["add", "big.bin"]);

        assert_intact(&env, &context);
        assert_pointers_resolve(&env, &context);
        let now = env.pointer("big.bin.trove");
        assert!(now == before || now == after, "{context}: pointer {now:?}");

        env.ok(&["add", "big.bin"]);
        assert_eq!(env.pointer("big.bin.trove"), after, "{context}");
        assert_eq!(env.index_blob("big.bin.trove").unwrap(), after.text().as_bytes(), "{context}");
        assert_finished(&env, &context);
        // Keep the cache small: the superseded version goes.
        let old = env.object_path(&before.hash);
        make_removable(&old);
        fs::remove_file(old).unwrap();
    }
    campaign.finish();
}

/// A dataset for the transfer tests: many small files and one larger one.
fn transfer_dataset(env: &Env) {
    dataset(env, 1000, 8 << 20);
}

fn dataset(env: &Env, files: u64, model: usize) {
    write_files(env, "shards", files, 42);
    env.write("model.bin", noise(model, 43));
    env.ok(&["add", "shards", "model.bin"]);
}

/// Objects on a folder-layout remote at `root`: (id, path); every one must hash to its id.
fn assert_remote_sound(root: &Path, context: &str) -> BTreeSet<String> {
    let mut files = Vec::new();
    walk(&root.join("objects"), &mut files);
    let mut ids = BTreeSet::new();
    for f in files {
        let prefix = f.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
        let name = format!("{prefix}{}", f.file_name().unwrap().to_string_lossy());
        assert_eq!(
            blake3_file(&f),
            name.trim_end_matches(".dir"),
            "{context}: partial remote object {}",
            f.display()
        );
        ids.insert(name);
    }
    // In-flight uploads stay under tmp/ only (another clone's may be running, so a rerun
    // removes only its own and old ones).
    let mut temps = Vec::new();
    walk(&root.join("tmp"), &mut temps);
    for t in temps {
        assert!(
            t.file_name().unwrap().to_string_lossy().starts_with("up-"),
            "{context}: stray {}",
            t.display()
        );
    }
    ids
}

/// The ids a push of the work tree's pointers sends: every pointer's object, and for a
/// folder its manifest (`<id>.dir`) and files.
fn wanted_ids(env: &Env) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for p in pointer_files(env) {
        let ptr = Pointer::parse(&fs::read_to_string(&p).unwrap());
        if ptr.kind == "file" {
            ids.insert(ptr.hash);
            continue;
        }
        let m: Value = serde_json::from_slice(&fs::read(env.manifest_path(&ptr.hash)).unwrap()).unwrap();
        for e in m["entries"].as_array().unwrap() {
            ids.insert(e["hash"].as_str().unwrap().to_string());
        }
        ids.insert(format!("{}.dir", ptr.hash));
    }
    ids
}

/// One kill campaign against a push to `root` (reached as `url`).
fn push_campaign(rng: &mut KillRng, env: &Env, root: &Path, kills: usize, label: &str) {
    let wanted = wanted_ids(env);
    // Each round starts from an empty remote (its layout kept, as a remote never loses it).
    let wipe = || {
        for e in fs::read_dir(root.join("objects")).unwrap().flatten() {
            fs::remove_dir_all(e.path()).unwrap();
        }
    };
    let full = timed(env, &env.root, &["push"]);
    assert_eq!(assert_remote_sound(root, label), wanted);
    let mut campaign = Campaign::new(rng, label, full, kills);
    for round in campaign.rounds() {
        wipe();
        let context = campaign.kill(round, env, &env.root, &["push"]);
        let there = assert_remote_sound(root, &context);
        for id in there.iter().filter(|i| i.ends_with(".dir")) {
            let m: Value =
                serde_json::from_slice(&fs::read(env.manifest_path(id.trim_end_matches(".dir"))).unwrap())
                    .unwrap();
            for e in m["entries"].as_array().unwrap() {
                let f = e["hash"].as_str().unwrap();
                assert!(there.contains(f), "{context}: the remote has manifest {id} before its file {f}");
            }
        }
        assert_intact(env, &context);

        let v = env.json(&["push"]);
        let t = &v["transfer"];
        assert_eq!(t["already_there"].as_u64().unwrap() as usize, there.len(), "{context}: {v}");
        assert_eq!(t["files"].as_u64().unwrap() as usize, wanted.len() - there.len(), "{context}: {v}");
        assert_eq!(assert_remote_sound(root, &context), wanted, "{context}");
        let out = env.run(&["--json", "verify", "--remote", "store"]);
        assert_eq!(out.code, 0, "{context}: verify --remote:\n{out}");
        assert_finished(env, &context);
    }
    campaign.finish();
}

#[test]
fn kill_9_during_push_to_a_folder_remote() {
    let mut rng = KillRng::from_env("push-folder", DEFAULT_SEED);
    let env = Env::new();
    transfer_dataset(&env);
    let root = env.outside().join("remote");
    env.ok(&["remote", "add", "store", root.to_str().unwrap(), "--default"]);
    env.ok(&["remote", "set", "store", "layout", "1"]);
    commit_all(&env, "data");
    push_campaign(&mut rng, &env, &root, KILLS_PUSH, "push to a folder remote");
}

#[test]
fn kill_9_during_push_to_an_sftp_remote() {
    let mut rng = KillRng::from_env("push-sftp", DEFAULT_SEED);
    let server = Sshd::start();
    let env = Env::new();
    dataset(&env, 500, 4 << 20);
    let root = server.data.join("store");
    sftp_remote(&env, &server, &root);
    commit_all(&env, "data");
    push_campaign(&mut rng, &env, &root, KILLS_PUSH_SFTP, "push to an SFTP remote");
}

/// `remote add store sftp://… --default`, with the test server's key and known_hosts.
fn sftp_remote(env: &Env, server: &Sshd, root: &Path) {
    env.ok(&["remote", "add", "store", &server.url(root), "--default"]);
    env.ok(&["remote", "set", "store", "layout", "1"]);
    env.ok(&["remote", "set", "store", "keyfile", server.key.to_str().unwrap()]);
    env.ok(&["remote", "set", "store", "known_hosts", server.known_hosts.to_str().unwrap()]);
}

/// After an interrupted pull: what status calls unchanged and in the cache is exactly the
/// source's data (a partial pull must not look up to date).
fn assert_status_truthful(src: &Env, clone: &Env, context: &str) {
    let out = clone.run(&["--json", "status"]);
    let st = out.json();
    for t in st["tracked"].as_array().unwrap_or_else(|| panic!("{context}: {out}")) {
        if t["state"] == "unchanged" && t["in_cache"] == true {
            let path = t["path"].as_str().unwrap();
            if src.path(path).is_dir() {
                assert_same_tree(src, clone, path, context);
            } else {
                assert!(
                    src.read(path) == clone.read(path),
                    "{context}: {path} is called unchanged but differs"
                );
            }
        }
    }
}

#[test]
fn kill_9_during_pull_into_a_fresh_clone() {
    let mut rng = KillRng::from_env("pull", DEFAULT_SEED);
    let env = Env::new();
    transfer_dataset(&env);
    let root = env.outside().join("remote");
    env.ok(&["remote", "add", "store", root.to_str().unwrap(), "--default"]);
    env.ok(&["remote", "set", "store", "layout", "1"]);
    commit_all(&env, "data");
    env.ok(&["push"]);

    let first = clone_repo(&env.root);
    let full = timed(&first, &first.root, &["pull"]);
    let mut campaign = Campaign::new(&mut rng, "pull", full, KILLS_PULL);
    for round in campaign.rounds() {
        let clone = clone_repo(&env.root);
        let context = campaign.kill(round, &clone, &clone.root, &["pull"]);
        assert_intact(&clone, &context);
        assert_status_truthful(&env, &clone, &context);
        // Whatever sits under a tracked name is complete.
        if clone.exists("model.bin") {
            assert!(clone.read("model.bin") == env.read("model.bin"), "{context}: a partial model.bin");
        }

        clone.ok(&["pull"]);
        assert_same_tree(&env, &clone, "shards", &context);
        assert!(clone.read("model.bin") == env.read("model.bin"), "{context}");
        assert_finished(&clone, &context);
    }
    campaign.finish();
}

/// Ids of the objects a folder's entries name.
fn ids_of(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| blake3_hex(&e.content)).collect()
}

#[test]
fn kill_9_during_gc() {
    let mut rng = KillRng::from_env("gc", DEFAULT_SEED);
    let env = Env::new();
    // Branch `other` keeps a version of data/ the work tree no longer uses.
    let old = write_files(&env, "data", 400, 7);
    env.ok(&["add", "data"]);
    commit_all(&env, "data v1");
    env.git_cmd(&["branch", "other"]);
    let new = write_files(&env, "data", 400, 8);
    env.ok(&["add", "data"]);
    commit_all(&env, "data v2");
    let mut needed: Vec<String> = ids_of(&old);
    needed.extend(ids_of(&new));
    needed.push(format!("{}.dir", dir_pointer("data", &old).hash));
    needed.push(format!("{}.dir", dir_pointer("data", &new).hash));
    let needed_present = |context: &str| {
        for id in &needed {
            let (hex, dir) = match id.strip_suffix(".dir") {
                Some(h) => (h, true),
                None => (id.as_str(), false),
            };
            let p = if dir { env.manifest_path(hex) } else { env.object_path(hex) };
            assert!(p.is_file(), "{context}: gc deleted {id}, which a branch needs");
        }
    };
    // Unreferenced objects for gc to delete: a folder added, then no longer tracked.
    let make_garbage = |seed: u64| -> Vec<String> {
        let junk = write_files(&env, "junk", 1500, seed);
        env.ok(&["add", "junk"]);
        env.ok(&["remove", "junk"]);
        fs::remove_dir_all(env.path("junk")).unwrap();
        commit_all(&env, "junk gone");
        let mut ids = ids_of(&junk);
        ids.push(format!("{}.dir", dir_pointer("junk", &junk).hash));
        ids
    };
    let gc = ["gc", "-f", "--all-branches"];
    make_garbage(100);
    let full = timed(&env, &env.root, &gc);
    let mut campaign = Campaign::new(&mut rng, "gc", full, KILLS_GC);
    for round in campaign.rounds() {
        let garbage = make_garbage(101 + round as u64);
        let context = campaign.kill(round, &env, &env.root, &gc);
        assert_intact(&env, &context);
        assert_pointers_resolve(&env, &context);
        needed_present(&context);

        env.ok(&gc);
        needed_present(&context);
        for id in &garbage {
            let hex = id.trim_end_matches(".dir");
            assert!(
                !env.object_path(hex).exists() && !env.manifest_path(hex).exists(),
                "{context}: {id} kept"
            );
        }
        assert_finished(&env, &context);
    }
    campaign.finish();
    // The other branch's data is still whole.
    env.git_cmd(&["checkout", "-q", "other"]);
    env.ok(&["checkout", "--force"]);
    for e in &old {
        assert!(env.read(&format!("data/{}", e.path)) == e.content, "data/{} on branch other", e.path);
    }
}

/// The ids of the experiment records, in `exp list --json` order.
fn record_ids(env: &Env, context: &str) -> Vec<String> {
    let out = env.run(&["--json", "exp", "list"]);
    assert_eq!(out.code, 0, "{context}: exp list:\n{out}");
    let v = out.json();
    v["records"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn kill_9_during_exp_log() {
    let mut rng = KillRng::from_env("exp-log", DEFAULT_SEED);
    let env = Env::new();
    env.write(".gitignore", "/out\n");
    env.write("data/a.txt", "a");
    env.ok(&["add", "data"]);
    commit_all(&env, "code and data");
    let mut artifact = noise(24 << 20, 5);
    env.write("out/model.bin", &artifact);
    let log = |round: usize| -> Vec<String> {
        ["exp", "log", "-p", &format!("round={round}"), "-m", "acc=0.5", "--artifact", "out/model.bin"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let args0 = log(0);
    let full = timed(&env, &env.root, &args0.iter().map(String::as_str).collect::<Vec<_>>());
    let mut campaign = Campaign::new(&mut rng, "exp log", full, KILLS_EXP_LOG);
    for round in campaign.rounds() {
        let before = record_ids(&env, "before the kill");
        artifact[..8].copy_from_slice(&(round as u64 + 1).to_le_bytes());
        env.write("out/model.bin", &artifact);
        let args = log(round + 1);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let context = campaign.kill(round, &env, &env.root, &args);

        assert_intact(&env, &context);
        let now = record_ids(&env, &context);
        assert!(before.iter().all(|id| now.contains(id)), "{context}: records lost: {before:?} -> {now:?}");
        assert!(now.len() <= before.len() + 1, "{context}: {now:?}");

        let out = env.ok(&args);
        let id = out.stdout.trim().to_string();
        let after = record_ids(&env, &context);
        assert!(after.contains(&id) && after.len() == now.len() + 1, "{context}: {now:?} -> {after:?}");
        let unique: BTreeSet<&String> = after.iter().collect();
        assert_eq!(unique.len(), after.len(), "{context}: duplicate ids {after:?}");
        // Every record names artifacts the cache holds.
        let records = env.json(&["exp", "list"]);
        for r in records["records"].as_array().unwrap() {
            for a in r["artifacts"].as_array().unwrap() {
                let hash = a["hash"].as_str().unwrap();
                assert!(
                    env.object_path(hash).is_file(),
                    "{context}: record {} lost artifact {hash}",
                    r["id"]
                );
            }
        }
        let shown = env.json(&["exp", "show", &id]);
        assert_eq!(shown["artifacts"][0]["hash"].as_str().unwrap(), blake3_hex(&artifact), "{context}");
        assert_finished(&env, &context);
    }
    campaign.finish();
}

// ---------------------------------------------------------------------------------------
// 2. The SFTP server killed during a pull

/// A repository with a dataset pushed to an SFTP remote on `server`.
/// Size of the large file of [`pushed_to_sftp`]: its download takes long enough to be
/// cut (small objects are fetched in pipelined batches, too fast to catch).
const PULL_BIG: usize = 128 << 20;

fn pushed_to_sftp(server: &Sshd) -> Env {
    let env = Env::new();
    write_files(&env, "shards", 1200, 61);
    env.write("big.bin", noise(PULL_BIG, 62));
    env.ok(&["add", "shards", "big.bin"]);
    sftp_remote(&env, server, &server.data.join("store"));
    commit_all(&env, "data");
    env.ok(&["push"]);
    env
}

/// Start `pull -j 1` in `clone` and wait until the large file's download is under way.
fn pull_until_big_download(clone: &Env) -> Child {
    let mut child = clone.spawn_in(&clone.root, &["pull", "-j", "1"]);
    let cache = clone.root.join(".trove/cache");
    let downloading =
        || cache_temps(&cache).iter().any(|t| fs::metadata(t).is_ok_and(|m| m.len() >= 8 << 20));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !downloading() {
        assert!(Instant::now() < deadline, "pull made no progress");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("pull ended ({status}) before it could be interrupted");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child
}

#[test]
fn sftp_server_killed_during_pull_then_the_rerun_completes() {
    let mut server = Sshd::start();
    let env = pushed_to_sftp(&server);
    let clone = clone_repo(&env.root);
    let child = pull_until_big_download(&clone);
    server.stop();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(60), "pull hung after the server died");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "the pull must fail:\n{stderr}");
    assert!(stderr.contains("store"), "the error names the remote:\n{stderr}");
    let context = "after the server died";
    assert_intact(&clone, context);
    assert_status_truthful(&env, &clone, context);
    let st = clone.json(&["status"]);
    assert_ne!(st["tracked"][0]["state"], "unchanged", "a partial pull is not up to date: {st}");
    assert_eq!(st["tracked"][0]["path"], "big.bin", "{st}");
    let fetched = clone.object_files().len();
    assert!(fetched < 1202, "the pull was interrupted ({fetched} objects)");

    server.restart();
    let v = clone.json(&["pull"]);
    let t = &v["transfer"];
    assert_eq!(t["files"].as_u64().unwrap() as usize + fetched, 1202, "only what is missing is fetched: {v}");
    assert_same_tree(&env, &clone, "shards", "after the rerun");
    assert!(clone.read("big.bin") == env.read("big.bin"), "big.bin after the rerun");
    assert_finished(&clone, "after the rerun");
}

#[test]
fn sftp_server_restarted_during_pull_is_retried_within_the_pull() {
    let mut server = Sshd::start();
    let env = pushed_to_sftp(&server);
    let clone = clone_repo(&env.root);
    let child = pull_until_big_download(&clone);
    // Every connection drops and the server is back at once, as after a network blip.
    server.restart();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "the pull did not recover:\n{stderr}\n{}", server.log_text());
    assert_same_tree(&env, &clone, "shards", "after the blip");
    assert!(clone.read("big.bin") == env.read("big.bin"), "big.bin after the blip");
    assert_finished(&clone, "after the blip");
}

// ---------------------------------------------------------------------------------------
// 3. A full disk under the cache

/// A repository whose cache lives on a small tmpfs (`cache.dir`), with `filler` bytes of
/// the disk taken by a file the test can delete to free space.
struct CacheOnSmallDisk {
    env: Env,
    disk: SmallDisk,
    filler: PathBuf,
}

impl CacheOnSmallDisk {
    fn new(env: Env, size: &str, filler: usize) -> CacheOnSmallDisk {
        let disk = SmallDisk::mount(&env.outside().join("disk"), size);
        let cache = disk.path().join("cache");
        env.ok(&["config", "cache.dir", cache.to_str().unwrap(), "--local"]);
        let filler_path = disk.path().join("filler");
        fs::write(&filler_path, noise(filler, 1)).unwrap();
        CacheOnSmallDisk { env, disk, filler: filler_path }
    }

    fn objects(&self) -> PathBuf {
        self.disk.path().join("cache/objects")
    }

    fn object(&self, hex: &str) -> PathBuf {
        self.objects().join(&hex[..2]).join(&hex[2..])
    }

    fn temps(&self) -> Vec<PathBuf> {
        cache_temps(&self.disk.path().join("cache"))
    }

    fn free_space(&self) {
        fs::remove_file(&self.filler).unwrap();
    }
}

fn assert_says_disk_full(out: &Out) {
    assert_eq!(out.code, 1, "{out}");
    let text = out.stderr.to_lowercase();
    assert!(text.contains("no space"), "the error should say the disk is full:\n{out}");
    for line in text.lines() {
        assert!(line.matches("no space").count() <= 1, "the cause is said once:\n{out}");
    }
}

#[test]
fn full_cache_disk_fails_add_cleanly_and_the_rerun_works() {
    // 2 MiB free: too little for a 3 MiB file, or for 1000 files (a page each on tmpfs).
    let d = CacheOnSmallDisk::new(Env::new(), "12m", 10 << 20);
    let env = &d.env;
    env.write("small.txt", "small");
    env.ok(&["add", "small.txt"]);
    let small = env.pointer("small.txt.trove").hash;
    let index_before = env.index_paths();

    let big = noise(3 << 20, 9);
    env.write("big.bin", &big);
    let many = write_files(env, "many", 1000, 10);
    for args in [&["add", "big.bin"][..], &["add", "many"]] {
        let out = env.run(args);
        assert_says_disk_full(&out);
        assert!(out.stderr.contains("hint: the disk is full"), "{out}");
        assert_objects_sound(&d.objects(), &format!("{args:?}"));
        assert!(d.object(&small).is_file(), "the stored object is kept");
        assert_eq!(blake3_file(&d.object(&small)), small);
        assert!(!d.object(&blake3_hex(&big)).exists());
        assert!(!env.exists("big.bin.trove") && !env.exists("many.trove"), "no pointer without its data");
        assert_eq!(env.index_paths(), index_before, "the git index is untouched");
        let temps = d.temps();
        assert!(
            temps.is_empty(),
            "{args:?}: the failed add left {} temp files: {:?}",
            temps.len(),
            &temps[..temps.len().min(3)]
        );
    }

    d.free_space();
    env.ok(&["add", "big.bin", "many"]);
    assert_eq!(env.pointer("big.bin.trove"), Pointer::file("big.bin", &big));
    assert_eq!(env.pointer("many.trove"), dir_pointer("many", &many));
    assert_objects_sound(&d.objects(), "after freeing space");
    let v = env.json(&["verify"]);
    assert!(v["verify"]["corrupt"].as_array().unwrap().is_empty(), "{v}");
    for t in env.json(&["status"])["tracked"].as_array().unwrap() {
        assert_eq!(t["state"], "unchanged", "{t}");
    }
}

#[test]
fn full_cache_disk_fails_fetch_and_pull_cleanly_and_the_rerun_works() {
    let src = Env::new();
    src.write("small.txt", "small");
    src.write("big.bin", noise(3 << 20, 11));
    write_files(&src, "many", 300, 12);
    src.ok(&["add", "small.txt", "big.bin", "many"]);
    let root = src.outside().join("remote");
    src.ok(&["remote", "add", "store", root.to_str().unwrap(), "--default"]);
    src.ok(&["remote", "set", "store", "layout", "1"]);
    commit_all(&src, "data");
    src.ok(&["push"]);

    // 2 MiB free: room for the small files, not for big.bin.
    let d = CacheOnSmallDisk::new(clone_repo(&src.root), "12m", 10 << 20);
    let env = &d.env;
    env.ok(&["pull", "small.txt"]);
    let small = src.pointer("small.txt.trove").hash;
    let big = src.pointer("big.bin.trove").hash;
    for args in [&["fetch"][..], &["pull"]] {
        let out = env.run(args);
        assert_says_disk_full(&out);
        assert!(out.stderr.contains(&big[..12]) || out.stderr.contains("store"), "{out}");
        assert_objects_sound(&d.objects(), &format!("{args:?}"));
        assert_eq!(blake3_file(&d.object(&small)), small, "the stored object is kept");
        assert!(!d.object(&big).exists(), "nothing partial under {big}");
        assert!(!env.exists("big.bin"), "data that could not be fetched is not placed");
        let temps = d.temps();
        assert!(
            temps.is_empty(),
            "{args:?}: the failed transfer left {} temp files: {:?}",
            temps.len(),
            &temps[..temps.len().min(3)]
        );
        let st = env.json(&["status"]);
        for t in st["tracked"].as_array().unwrap() {
            if t["path"] == "big.bin" {
                assert_eq!(t["in_cache"], false, "{t}");
            }
        }
    }

    d.free_space();
    env.ok(&["pull"]);
    assert!(env.read("big.bin") == src.read("big.bin"));
    assert_same_tree(&src, env, "many", "after freeing space");
    assert_objects_sound(&d.objects(), "after freeing space");
    let v = env.json(&["verify"]);
    assert!(v["verify"]["corrupt"].as_array().unwrap().is_empty(), "{v}");
}

// ---------------------------------------------------------------------------------------
// 4. Several trove processes on one repository

/// A trove process started in the background, its stderr kept.
struct Running {
    child: Child,
    args: Vec<String>,
}

impl Running {
    fn start(env: &Env, args: &[&str]) -> Running {
        let child = env.spawn_in(&env.root, args);
        Running { child, args: args.iter().map(|s| s.to_string()).collect() }
    }

    fn finish(self) -> (Vec<String>, Out) {
        let out = self.child.wait_with_output().unwrap();
        let out = Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        (self.args, out)
    }
}

/// Wait until `running` holds the repository lock (its pid is in the lock file): true,
/// or false when it ended first.
fn took_lock(env: &Env, running: &mut Running) -> bool {
    let lock = env.path(".trove/tmp/lock");
    let want = format!("pid {}", running.child.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    while fs::read_to_string(&lock).unwrap_or_default().trim() != want {
        if running.child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(Instant::now() < deadline, "{:?} never took the lock", running.args);
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Start `first`, and once it holds the repository lock start `others` at once: every
/// command succeeds, and at least one of the others says it waits for the lock.
fn run_behind_a_lock_holder(env: &Env, first: &[&str], others: &[Vec<&str>]) {
    let mut first = Running::start(env, first);
    wait_for_lock_holder(env, &mut first);
    let others: Vec<Running> = others.iter().map(|args| Running::start(env, args)).collect();
    let mut pids = vec![first.child.id()];
    pids.extend(others.iter().map(|r| r.child.id()));
    let (args, out) = first.finish();
    assert_eq!(out.code, 0, "{args:?}:\n{out}");
    let mut waited = 0;
    for r in others {
        let (args, out) = r.finish();
        assert_eq!(out.code, 0, "{args:?}:\n{out}");
        waited += usize::from(waited_clearly(&out, &pids));
    }
    assert!(waited > 0, "the commands started while the first held the lock, and none said it waits");
}

fn wait_for_lock_holder(env: &Env, running: &mut Running) {
    assert!(took_lock(env, running), "{:?} ended before it took the lock", running.args);
}

/// Whether a writer said it waits, and for one of `holders`.
fn waited_clearly(out: &Out, holders: &[u32]) -> bool {
    const NOTICE: &str = "waiting for the repository lock held by pid ";
    let Some(at) = out.stderr.find(NOTICE) else { return false };
    let pid: String = out.stderr[at + NOTICE.len()..].chars().take_while(char::is_ascii_digit).collect();
    assert!(holders.iter().any(|h| h.to_string() == pid), "the notice names another process:\n{out}");
    true
}

fn assert_waited_clearly(out: &Out, holder: u32) {
    assert!(waited_clearly(out, &[holder]), "a waiting writer says whom it waits for:\n{out}");
}

#[test]
fn two_adds_at_once_wait_for_each_other() {
    let env = Env::new();
    env.ok(&["config", "core.lock_timeout", "120"]);
    commit_all(&env, "trove init");
    let a = write_files(&env, "a", 3000, 21);
    let b = write_files(&env, "b", 50, 22);
    // Different paths: the second waits for the first, says so, then succeeds.
    let mut first = Running::start(&env, &["add", "a"]);
    wait_for_lock_holder(&env, &mut first);
    let holder = first.child.id();
    let second = Running::start(&env, &["add", "b"]);
    let (_, out1) = first.finish();
    let (_, out2) = second.finish();
    assert_eq!(out1.code, 0, "{out1}");
    assert_eq!(out2.code, 0, "{out2}");
    assert_waited_clearly(&out2, holder);
    assert_eq!(env.pointer("a.trove"), dir_pointer("a", &a));
    assert_eq!(env.pointer("b.trove"), dir_pointer("b", &b));
    let mut lines = env.gitignore_lines("");
    lines.sort();
    assert_eq!(lines, vec!["/a", "/b"]);
    assert_finished(&env, "two adds of different paths");

    // The same path, changed between the two: both succeed and the pointer names one of
    // the two versions, whole.
    let v1 = write_files(&env, "a", 3000, 23);
    let mut first = Running::start(&env, &["add", "a"]);
    wait_for_lock_holder(&env, &mut first);
    let holder = first.child.id();
    let second = Running::start(&env, &["add", "a"]);
    let (_, out1) = first.finish();
    let (_, out2) = second.finish();
    assert_eq!(out1.code, 0, "{out1}");
    assert_eq!(out2.code, 0, "{out2}");
    assert_waited_clearly(&out2, holder);
    assert_eq!(env.pointer("a.trove"), dir_pointer("a", &v1));
    assert_eq!(env.index_paths().iter().filter(|p| *p == "a.trove").count(), 1);
    assert_finished(&env, "two adds of the same path");
}

#[test]
fn adds_and_gcs_at_once_lose_nothing() {
    let env = Env::new();
    env.ok(&["config", "core.lock_timeout", "120"]);
    let kept = write_files(&env, "kept", 500, 31);
    env.ok(&["add", "kept"]);
    commit_all(&env, "kept");
    // Garbage for the gcs, then two adds and two gcs at once: four processes.
    write_files(&env, "junk", 1500, 32);
    env.ok(&["add", "junk"]);
    env.ok(&["remove", "junk"]);
    fs::remove_dir_all(env.path("junk")).unwrap();
    let n1 = write_files(&env, "new1", 1500, 33);
    let n2 = write_files(&env, "new2", 1500, 34);
    let others = [["gc", "-f"], ["add", "new2"], ["gc", "-f"]];
    run_behind_a_lock_holder(&env, &["add", "new1"], &others.map(|a| a.to_vec()));
    for (name, entries) in [("kept", &kept), ("new1", &n1), ("new2", &n2)] {
        assert_eq!(env.pointer(&format!("{name}.trove")), dir_pointer(name, entries));
        for id in ids_of(entries) {
            assert!(env.object_path(&id).is_file(), "gc deleted {id} of {name}, which add had stored");
        }
    }
    assert_finished(&env, "after adds and gcs at once");
    // What nothing references is gone once the dust settles.
    let v = env.json(&["gc", "-f", "--dry-run"]);
    assert_eq!(v["cache"]["count"], 0, "{v}");
}

#[test]
fn gc_while_exp_log_stores_an_artifact_keeps_it() {
    let env = Env::new();
    env.ok(&["config", "core.lock_timeout", "120"]);
    env.write(".gitignore", "/out\n");
    commit_all(&env, "code");
    let mut raced = 0;
    for round in 0..3u64 {
        let artifact = noise(32 << 20, 40 + round);
        env.write("out/model.bin", &artifact);
        let mut log = Running::start(&env, &["exp", "log", "-m", "acc=1", "--artifact", "out/model.bin"]);
        // The gc starts while exp log stores the artifact (unless exp log was too quick to
        // catch on a loaded machine: then the round still checks the outcome).
        let overlapped = took_lock(&env, &mut log);
        let gc = Running::start(&env, &["gc", "-f"]);
        let (_, out) = log.finish();
        assert_eq!(out.code, 0, "{out}");
        let (_, gc_out) = gc.finish();
        assert_eq!(gc_out.code, 0, "{gc_out}");
        raced += usize::from(overlapped);
        let id = out.stdout.trim();
        let shown = env.json(&["exp", "show", id]);
        let hash = shown["artifacts"][0]["hash"].as_str().unwrap().to_string();
        assert_eq!(hash, blake3_hex(&artifact));
        assert!(
            env.object_path(&hash).is_file(),
            "round {round}: gc deleted the artifact of record {id}\n{gc_out}"
        );
        assert_finished(&env, &format!("round {round}"));
    }
    assert!(raced > 0, "exp log never held the lock long enough for gc to start under it");
}

#[test]
fn pull_and_checkouts_at_once_end_whole() {
    let src = Env::new();
    transfer_dataset(&src);
    let root = src.outside().join("remote");
    src.ok(&["remote", "add", "store", root.to_str().unwrap(), "--default"]);
    src.ok(&["remote", "set", "store", "layout", "1"]);
    commit_all(&src, "data");
    src.ok(&["push"]);

    let clone = clone_repo(&src.root);
    clone.ok(&["config", "core.lock_timeout", "120", "--local"]);
    // After the pull, the data is in the cache: the waiting commands succeed.
    let others = [vec!["checkout"], vec!["checkout", "model.bin"], vec!["pull", "shards"]];
    run_behind_a_lock_holder(&clone, &["pull"], &others);
    assert_same_tree(&src, &clone, "shards", "after pull and checkouts at once");
    assert!(clone.read("model.bin") == src.read("model.bin"));
    assert_finished(&clone, "after pull and checkouts at once");

    // A checkout started before the pull: it fails clearly (the data is not in the cache
    // yet) or waits and succeeds; never a partial file.
    let clone = clone_repo(&src.root);
    let checkout = Running::start(&clone, &["checkout"]);
    let pull = Running::start(&clone, &["pull"]);
    let (_, out) = checkout.finish();
    if out.code != 0 {
        assert!(out.stderr.contains("pull") || out.stderr.contains("not in the cache"), "{out}");
    }
    let (_, out) = pull.finish();
    assert_eq!(out.code, 0, "{out}");
    assert_same_tree(&src, &clone, "shards", "after checkout then pull");
    assert_finished(&clone, "after checkout then pull");
}
