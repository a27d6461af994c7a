//! Remote layout 2 (packs of content-defined chunks, found through index files), end to
//! end on a folder remote and on SFTP: deduplication of edited files, many small files
//! in few packs, concurrent pushes, `kill -9` under a push, and damaged packs and index
//! files.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::common::*;
use crate::remotes::{Backend, Remote, assert_same_tree, both_backends, commit_all, writable};

const MIB: usize = 1 << 20;
/// The largest chunk the chunker cuts (`pack::CHUNK_MAX`).
const CHUNK_MAX: u64 = 4 << 20;
/// What a push or pull moves besides chunks: pack trailers, an index file, a manifest.
const OVERHEAD: u64 = 256 << 10;

both_backends!(
    edits_appends_and_copies_move_only_the_changed_chunks,
    small_files_go_into_few_packs_and_a_no_op_opens_none,
    two_clones_push_different_data_at_once,
    kill_9_during_a_push_then_the_rerun_finishes,
    damaged_or_missing_packs_and_index_files_are_named,
    // A newer layout refused: remotes.rs's unknown_layout_version_is_refused, on layout 2 too.
);

/// A repository with remote `store` (layout 2) configured and committed.
fn setup(b: Backend) -> (Remote, Env) {
    let remote = Remote::of_layout(b, 2);
    let env = Env::new();
    remote.configure(&env);
    (remote, env)
}

fn transferred(v: &Value) -> u64 {
    v["transfer"]["transferred"].as_u64().unwrap_or_else(|| panic!("no transfer.transferred: {v}"))
}

fn head(env: &Env) -> String {
    env.git_cmd(&["rev-parse", "HEAD"]).trim().to_string()
}

/// Bytes of a change of `changed` bytes may cost: the change plus the (at most two)
/// chunks it cuts into, plus the bookkeeping.
fn assert_few_chunks(moved: u64, changed: u64, what: &str, v: &Value) {
    let bound = changed + 2 * CHUNK_MAX + OVERHEAD;
    assert!(moved <= bound, "{what}: {moved} bytes moved for a change of {changed} (at most {bound}): {v}");
}

fn edits_appends_and_copies_move_only_the_changed_chunks(b: Backend) {
    let (remote, env) = setup(b);
    let v1 = noise(24 * MIB, 7);
    env.write("big.bin", &v1);
    env.ok(&["add", "big.bin"]);
    commit_all(&env);
    let v = env.json(&["push"]);
    assert!(transferred(&v) >= v1.len() as u64, "random bytes do not compress: {v}\n{}", remote.describe());
    let rev1 = head(&env);

    // A few KiB inserted in the middle.
    let mut v2 = v1[..12 * MIB].to_vec();
    v2.extend_from_slice(&noise(4096, 8));
    v2.extend_from_slice(&v1[12 * MIB..]);
    env.write("big.bin", &v2);
    env.ok(&["add", "big.bin"]);
    env.git_cmd(&["commit", "-q", "-am", "v2"]);
    let v = env.json(&["push"]);
    assert_eq!(v["transfer"]["files"], 1, "{v}");
    assert_few_chunks(transferred(&v), 4096, "an insert in the middle", &v);
    let rev2 = head(&env);

    // Rows appended at the end.
    let mut v3 = v2.clone();
    let rows: String = (0..20_000u64).map(|i| format!("row {i},{}\n", i * i)).collect();
    v3.extend_from_slice(rows.as_bytes());
    env.write("big.bin", &v3);
    env.ok(&["add", "big.bin"]);
    env.git_cmd(&["commit", "-q", "-am", "v3"]);
    let v = env.json(&["push"]);
    assert_few_chunks(transferred(&v), rows.len() as u64, "rows appended", &v);
    let rev3 = head(&env);

    // A copy under another name: its content is on the remote already.
    env.write("copy/renamed.bin", &v3);
    env.ok(&["add", "copy"]);
    commit_all(&env);
    let v = env.json(&["push"]);
    assert!(transferred(&v) <= OVERHEAD, "a renamed copy costs no chunks: {v}");
    let rev4 = head(&env);
    remote.assert_sound(&remote.root());

    // A fresh clone pulls every version byte for byte.
    let clone = clone_repo(&env.root);
    for (rev, want) in [(&rev1, &v1), (&rev2, &v2), (&rev3, &v3), (&rev4, &v3)] {
        clone.git_cmd(&["checkout", "-q", rev]);
        clone.ok(&["pull"]);
        assert!(clone.read("big.bin") == *want, "big.bin at {rev} differs after the pull");
    }
    assert!(clone.read("copy/renamed.bin") == v3);

    // A clone that has version 1 receives only about the changed chunks for version 2.
    let other = clone_repo(&env.root);
    other.git_cmd(&["checkout", "-q", &rev1]);
    let v = other.json(&["pull"]);
    assert!(transferred(&v) >= v1.len() as u64, "{v}");
    other.git_cmd(&["checkout", "-q", &rev2]);
    let v = other.json(&["pull"]);
    assert_eq!(v["transfer"]["files"], 1, "{v}");
    assert_few_chunks(transferred(&v), 4096, "pulling version 2 over version 1", &v);
    assert!(other.read("big.bin") == v2, "version 2 differs after the pull");
}

fn small_files_go_into_few_packs_and_a_no_op_opens_none(b: Backend) {
    let (remote, env) = setup(b);
    let mut content = 0;
    for i in 0..2000u64 {
        let size = 500 + (i as usize * 7919) % 3000;
        content += size;
        env.write(&format!("small/d{}/f{i:04}.bin", i % 16), noise(size, i));
    }
    env.ok(&["add", "small"]);
    commit_all(&env);
    let v = env.json(&["push"]);
    assert_eq!(v["transfer"]["files"], 2001, "2,000 files and their manifest: {v}");
    let mut stored = Vec::new();
    walk(&remote.root(), &mut stored);
    let bound = content / (4 * MIB) + 6;
    assert!(
        stored.len() <= bound,
        "{} files on the remote for {content} bytes (at most {bound}): {stored:?}",
        stored.len()
    );
    remote.assert_sound(&remote.root());

    // Neither a push with nothing to send nor `status --remote` reads a pack: with the
    // packs gone both still work. (The tests run as root, whom `chmod 000` does not stop,
    // so the packs are moved away rather than made unreadable.)
    let packs = remote.root().join("packs");
    let away = remote.root().join("packs-away");
    fs::rename(&packs, &away).unwrap();
    let v = env.json(&["push"]);
    assert_eq!(v["transfer"]["files"], 0, "{v}");
    assert_eq!(v["transfer"]["already_there"], 2001, "{v}");
    let v = env.json(&["status", "--remote"]);
    assert_eq!(v["tracked"][0]["in_sync"], true, "{v}");
    fs::rename(&away, &packs).unwrap();

    let clone = clone_repo(&env.root);
    let v = clone.json(&["pull"]);
    assert_eq!(v["transfer"]["files"], 2001, "{v}");
    assert_same_tree(&env, &clone, "small");
}

fn two_clones_push_different_data_at_once(b: Backend) {
    let (remote, env) = setup(b);
    env.write("README", "shared");
    commit_all(&env);
    let one = clone_repo(&env.root);
    let two = clone_repo(&env.root);
    for (e, dir, seed) in [(&one, "a", 100u64), (&two, "b", 200u64)] {
        for i in 0..300u64 {
            e.write(&format!("{dir}/f{i:03}.bin"), noise(2000 + i as usize * 11, seed + i));
        }
        e.write(&format!("{dir}/big.bin"), noise(6 * MIB, seed + 999));
        e.ok(&["add", dir]);
        commit_all(e);
    }
    // Both start before either has finished; wait for both.
    let a = one.spawn_in(&one.root, &["--json", "push"]);
    let b = two.spawn_in(&two.root, &["--json", "push"]);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for out in [&a, &b] {
        assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), remote.describe());
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["transfer"]["files"], 302, "{v}");
    }
    remote.assert_sound(&remote.root());

    // A third clone (of the first, with the second's pointer) pulls both.
    let third = clone_repo(&one.root);
    third.write("b.trove", two.read("b.trove"));
    let v = third.json(&["pull"]);
    assert_eq!(v["transfer"]["files"], 604, "{v}");
    assert_same_tree(&one, &third, "a");
    assert_same_tree(&two, &third, "b");
}

/// Index files on the remote (one per finished push step).
fn index_count(remote: &Remote) -> usize {
    remote.index_files_at(&remote.root()).len()
}

fn kill_9_during_a_push_then_the_rerun_finishes(b: Backend) {
    let (remote, env) = setup(b);
    // More than 8 packs of 16 MiB, so a push writes an index on the way (after 8 packs)
    // and a kill after it leaves packs an index names.
    for i in 0..10u64 {
        env.write(&format!("data/part{i}.bin"), noise(16 * MIB, 300 + i));
    }
    env.write("notes.txt", "small things too");
    env.ok(&["add", "data", "notes.txt"]);
    commit_all(&env);
    let content: u64 = 160 * MIB as u64 + 16;

    let started = std::time::Instant::now();
    env.ok(&["push"]);
    let full = started.elapsed();
    remote.wipe_layout2(&env);

    let mut rng = KillRng::for_test(&format!("layout2-push-{b:?}"), 20_261_202);
    let rounds = if b == Backend::Folder { 5 } else { 3 };
    let mut points: Vec<Option<Duration>> = rng.points(full, rounds).into_iter().map(Some).collect();
    // And once right after the push's first index appears: killed with packs indexed.
    points.push(None);
    let (mut killed, mut killed_indexed) = (0, 0);
    for (round, point) in points.into_iter().enumerate() {
        let context = format!("{b:?} round {round} (kill at {point:?}; an uncut push takes {full:?})");
        let outcome = match point {
            Some(delay) => kill_after(&env, &env.root, &["push"], delay),
            None => kill_when(&env, &env.root, &["push"], |_| index_count(&remote) > 0),
        };
        let indexed = index_count(&remote) > 0;
        if outcome.is_none() {
            killed += 1;
            killed_indexed += usize::from(indexed);
        }
        // What a killed push left under a name is whole.
        for path in remote.packs_at(&remote.root()).into_iter().chain(remote.index_files_at(&remote.root())) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(blake3_file(&path), name, "{context}: partial {}", path.display());
        }
        let v = env.json(&["push"]);
        if outcome.is_none() && indexed {
            assert!(transferred(&v) < content, "{context}: the rerun sent everything again: {v}");
            assert!(v["transfer"]["already_there"].as_u64().unwrap() > 0, "{context}: {v}");
        }
        remote.assert_sound(&remote.root());
        let clone = clone_repo(&env.root);
        let out = clone.run(&["pull"]);
        assert_eq!(out.code, 0, "{context}: {out}\n{}", remote.describe());
        assert_same_tree(&env, &clone, "data");
        assert_eq!(clone.read("notes.txt"), b"small things too");
        drop(clone);
        remote.wipe_layout2(&env);
    }
    eprintln!("{b:?}: {killed} pushes killed mid-way, {killed_indexed} of them after an index");
    assert!(killed > 0, "no kill landed inside a push");
    assert!(killed_indexed > 0, "no push was killed after it had indexed packs");
}

/// Layout 2: the index file naming `pack` (it holds the pack's id as raw bytes).
fn index_naming(remote: &Remote, pack: &Path) -> PathBuf {
    let hex = pack.file_name().unwrap().to_str().unwrap();
    let raw: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
    remote
        .index_files_at(&remote.root())
        .into_iter()
        .find(|f| fs::read(f).unwrap().windows(32).any(|w| w == raw))
        .unwrap_or_else(|| panic!("no index file names {}", pack.display()))
}

/// Flip one byte of a file.
fn flip(path: &Path, at: usize) {
    writable(path);
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x5a;
    fs::write(path, &bytes).unwrap();
}

fn relative(remote: &Remote, path: &Path) -> String {
    path.strip_prefix(remote.root()).unwrap().display().to_string()
}

fn damaged_or_missing_packs_and_index_files_are_named(b: Backend) {
    let (remote, env) = setup(b);
    // One push per file: each lands in a pack, and an index file, of its own.
    let files: Vec<(String, Vec<u8>)> =
        [("a.bin", 300_000, 1u64), ("b.bin", 3 * MIB, 2), ("c.bin", 200_000, 3), ("d.bin", 150_000, 4)]
            .into_iter()
            .map(|(name, size, seed)| (name.to_string(), noise(size, seed)))
            .collect();
    for (name, bytes) in &files {
        env.write(name, bytes);
        env.ok(&["add", name]);
    }
    env.write("ok.txt", "untouched");
    env.ok(&["add", "ok.txt"]);
    commit_all(&env);
    for (name, _) in &files {
        env.ok(&["push", name]);
    }
    env.ok(&["push", "ok.txt"]);
    let id = |name: &str| env.pointer(&format!("{name}.trove")).hash;
    let pack_of = |bytes: &[u8]| remote.find_in_packs(&bytes[1000..1064]);

    // A pull into a fresh clone fails naming `name`'s object and `names` (the damaged
    // file), places nothing damaged, and the rest arrives.
    let check = |what: &str, name: &str, names: &str| {
        let clone = clone_repo(&env.root);
        let out = clone.run(&["--json", "pull"]);
        assert_eq!(out.code, 1, "{what}: {out}");
        assert!(out.stderr.contains(&id(name)), "{what}: the object is named:\n{out}");
        assert!(out.stderr.contains(names), "{what}: {names} is named:\n{out}");
        assert!(!clone.exists(name), "{what}: {name} was placed");
        assert!(!clone.object_path(&id(name)).exists(), "{what}: {name} entered the cache");
        // A failed pull checks nothing out; what was sound is in the cache.
        for (other, bytes) in files.iter().filter(|(n, _)| n != name) {
            assert!(clone.object_path(&id(other)).exists(), "{what}: {other} was not fetched");
            clone.ok(&["pull", other]);
            assert!(clone.read(other) == *bytes, "{what}: {other} differs");
        }
        assert!(clone.object_path(&id("ok.txt")).exists(), "{what}: ok.txt was not fetched");
        clone.ok(&["pull", "ok.txt"]);
        assert_eq!(clone.read("ok.txt"), b"untouched", "{what}");
        // Every later pull finds the damage again.
        let out = clone.fails(1, &["pull", name]);
        assert!(out.stderr.contains(&id(name)), "{what}: {out}");
    };

    // A flipped byte in a pack.
    let (pack_a, at) = pack_of(&files[0].1);
    flip(&pack_a, at + 500);
    check("a damaged pack", "a.bin", &relative(&remote, &pack_a));
    flip(&pack_a, at + 500);

    // A byte flipped inside a chunk of a large object, which is assembled from several.
    let (pack_b, at) = pack_of(&files[1].1);
    flip(&pack_b, at + 2 * MIB);
    check("a damaged pack of a large object", "b.bin", &relative(&remote, &pack_b));
    flip(&pack_b, at + 2 * MIB);

    // A pack the index lists is missing.
    let (pack_c, _) = pack_of(&files[2].1);
    let aside = remote.base().join("aside");
    fs::rename(&pack_c, &aside).unwrap();
    check("a missing pack", "c.bin", &relative(&remote, &pack_c));
    fs::rename(&aside, &pack_c).unwrap();

    // A damaged index file.
    let (pack_d, _) = pack_of(&files[3].1);
    let index_d = index_naming(&remote, &pack_d);
    flip(&index_d, 40);
    check("a damaged index file", "d.bin", &relative(&remote, &index_d));
    // A push from a clone that has the data and no copy of the damaged index (the pusher
    // keeps its own, sound copy and finds nothing to send) sends again what only the
    // damaged index named, and others then get it.
    let again = clone_repo(&env.root);
    again.write("d.bin", &files[3].1);
    again.ok(&["add", "d.bin"]);
    let v = again.json(&["push", "d.bin"]);
    assert_eq!(v["transfer"]["files"], 1, "d.bin is sent again: {v}");
    let name = index_d.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(blake3_file(&index_d), name, "the damaged index file was replaced by the push");
    let clone = clone_repo(&env.root);
    clone.ok(&["pull", "d.bin"]);
    assert!(clone.read("d.bin") == files[3].1, "d.bin differs");

    // Repaired, everything pulls.
    let clone = clone_repo(&env.root);
    clone.ok(&["pull"]);
    for (name, bytes) in &files {
        assert!(clone.read(name) == *bytes, "{name} differs");
    }
}
