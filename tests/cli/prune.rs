//! `gc --remote` on a layout-2 remote: a prune. Objects leave the index, dead packs are
//! deleted and mostly-garbage packs repacked, under an exclusive lock, in an order that a
//! kill -9 at any point cannot turn into lost data. Run against a folder remote and an
//! SFTP remote on a real OpenSSH server (`support/sshd.rs`) and an S3 remote on s3s-fs
//! (`support/s3.rs`) where that is cheap.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::common::*;
use crate::remotes::{Backend, both_backends, configure_s3};
use crate::s3::S3Server;
use crate::sshd::Sshd;

/// A layout-2 remote for one test, and where its files are on this machine.
struct Remote {
    server: Option<Sshd>,
    s3: Option<S3Server>,
    scratch: tempfile::TempDir,
    /// The `transport` setting of an SFTP remote.
    transport: Option<&'static str>,
}

impl Remote {
    fn new(backend: Backend) -> Remote {
        let server = backend.is_sftp().then(Sshd::start);
        let s3 = (backend == Backend::S3).then(S3Server::start);
        let scratch = tempfile::Builder::new().prefix("trove-prune-").tempdir().expect("temp dir");
        Remote { server, s3, scratch, transport: backend.transport() }
    }

    fn root(&self) -> PathBuf {
        match (&self.server, &self.s3) {
            (Some(s), _) => s.data.join("store"),
            (_, Some(s3)) => s3.bucket_dir().join("store"),
            _ => fs::canonicalize(self.scratch.path()).unwrap().join("store"),
        }
    }

    /// `remote add store URL --default` (layout 2, the default for a new remote).
    fn configure(&self, env: &Env) {
        let root = self.root();
        let url = match (&self.server, &self.s3) {
            (Some(s), _) => s.url(&root),
            (_, Some(s3)) => s3.url(&root),
            _ => root.display().to_string(),
        };
        env.ok(&["remote", "add", "store", &url, "--default"]);
        if let Some(transport) = self.transport {
            env.ok(&["remote", "set", "store", "transport", transport]);
        }
        if let Some(s) = &self.server {
            env.ok(&["remote", "set", "store", "keyfile", s.key.to_str().unwrap()]);
            env.ok(&["remote", "set", "store", "known_hosts", s.known_hosts.to_str().unwrap()]);
        }
        if let Some(s3) = &self.s3 {
            configure_s3(env, "store", s3);
        }
    }

    /// Every file on the remote: path relative to its root → size.
    fn files(&self) -> BTreeMap<String, u64> {
        files_under(&self.root())
    }
}

fn files_under(root: &Path) -> BTreeMap<String, u64> {
    let mut found = Vec::new();
    walk(root, &mut found);
    found
        .into_iter()
        .map(|p| {
            let size = fs::metadata(&p).unwrap().len();
            (p.strip_prefix(root).unwrap().to_str().unwrap().to_string(), size)
        })
        .collect()
}

fn in_dir<'a>(files: &'a BTreeMap<String, u64>, dir: &str) -> Vec<(&'a String, &'a u64)> {
    files.iter().filter(|(p, _)| p.starts_with(&format!("{dir}/"))).collect()
}

fn pack_bytes(files: &BTreeMap<String, u64>) -> u64 {
    in_dir(files, "packs").iter().map(|(_, s)| **s).sum()
}

fn commit(env: &Env, message: &str) {
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", message]);
}

/// Three pushed versions: v1 (30 data files, a 3 MiB model), v2 (a new model), v3 (another
/// model, 20 of the data files replaced). Pruning to the work tree then drops both old
/// models, 20 data files and one manifest: v2's pack has no live chunk left and v1's pack
/// keeps only 10 small files (mostly garbage).
fn three_versions(env: &Env) {
    for i in 0..30u64 {
        env.write(&format!("data/f{i:02}.bin"), noise(100_000, i));
    }
    env.write("model.bin", noise(3 << 20, 100));
    env.ok(&["add", "data", "model.bin"]);
    commit(env, "v1");
    env.ok(&["push"]);
    env.write("model.bin", noise(3 << 20, 101));
    env.ok(&["add", "model.bin"]);
    commit(env, "v2");
    env.ok(&["push"]);
    env.write("model.bin", noise(3 << 20, 102));
    for i in 0..20u64 {
        env.write(&format!("data/f{i:02}.bin"), noise(100_000, 1000 + i));
    }
    env.ok(&["add", "data", "model.bin"]);
    commit(env, "v3");
    env.ok(&["push"]);
}

/// The objects v3 needs; v1 and v2 add 2 models and 20 data files, and share one manifest.
const KEPT: u64 = 32;
const DROPPED: u64 = 23;

/// A fresh clone pulls the work tree's data from the remote, and it verifies.
fn assert_pulls(env: &Env, context: &str) {
    let clone = clone_repo(&env.root);
    let out = clone.run(&["pull"]);
    assert_eq!(out.code, 0, "{context}: pull into a fresh clone failed:\n{out}");
    for rel in ["model.bin", "data/f00.bin", "data/f25.bin"] {
        assert!(clone.read(rel) == env.read(rel), "{context}: {rel} differs after the pull");
    }
    let v = clone.run(&["verify"]);
    assert_eq!(v.code, 0, "{context}: verify failed:\n{v}");
}

/// Exactly one index file, no lock, no temp left.
fn assert_tidy(remote: &Remote) {
    let files = remote.files();
    assert_eq!(in_dir(&files, "index").len(), 1, "one index after a prune: {files:?}");
    assert!(in_dir(&files, "locks").is_empty(), "a lock was left: {files:?}");
    assert!(in_dir(&files, "tmp").is_empty(), "a temp was left: {files:?}");
}

both_backends!(
    prune_drops_old_versions_and_the_current_data_still_pulls,
    dry_run_deletes_nothing_and_reports_the_bytes,
    a_running_push_makes_prune_refuse_and_a_stale_lock_is_recovered,
);

fn prune_drops_old_versions_and_the_current_data_still_pulls(b: Backend) {
    let remote = Remote::new(b);
    let env = Env::new();
    remote.configure(&env);
    three_versions(&env);
    let before = remote.files();

    let report = env.json(&["gc", "-r", "store", "-f"]);
    let side = &report["remote"];
    assert_eq!(side["count"], DROPPED, "{report:#}");
    assert_eq!(side["kept"], KEPT, "{report:#}");
    let packs = &side["packs"];
    assert!(!packs["deleted"].as_array().unwrap().is_empty(), "v2's model's pack: {report:#}");
    assert!(!packs["repacked"].as_array().unwrap().is_empty(), "v1's data pack: {report:#}");
    assert!(packs["written"].as_u64().unwrap() >= 1, "{report:#}");
    let freed = packs["bytes_freed"].as_u64().unwrap();
    assert!(freed > 7_000_000, "two models and 20 data files are freed: {freed}");

    let after = remote.files();
    assert!(
        pack_bytes(&after) + 7_000_000 < pack_bytes(&before),
        "the remote shrinks: {} → {}",
        pack_bytes(&before),
        pack_bytes(&after)
    );
    for p in packs["deleted"].as_array().unwrap().iter().chain(packs["repacked"].as_array().unwrap()) {
        assert!(!after.contains_key(p.as_str().unwrap()), "{p} is still there");
    }
    if let Some(s3) = &remote.s3 {
        // The dead packs went in one DeleteObjects request.
        let batch: Vec<String> =
            s3.requests().into_iter().filter(|r| r.starts_with("POST") && r.contains("delete")).collect();
        assert_eq!(batch.len(), 1, "{:#?}", s3.requests());
    }
    assert_tidy(&remote);
    assert_pulls(&env, "after the prune");

    // An old version is gone from the remote.
    let clone = clone_repo(&env.root);
    let old = clone.run(&["fetch", "--rev", "HEAD~2"]);
    assert_eq!(old.code, 1, "v1's model was pruned:\n{old}");

    // A second prune finds nothing to do and changes nothing.
    let again = env.ok(&["gc", "-r", "store", "-f"]);
    assert!(again.stdout.contains("nothing to delete"), "{again}");
    assert_eq!(remote.files(), after);
}

fn dry_run_deletes_nothing_and_reports_the_bytes(b: Backend) {
    let remote = Remote::new(b);
    let env = Env::new();
    remote.configure(&env);
    three_versions(&env);
    let before = remote.files();
    let cache_before = env.object_files();

    // Keeping every commit keeps every object and every pack.
    let all = env.json(&["gc", "-r", "store", "-A", "--dry-run"]);
    assert_eq!(all["remote"]["count"], 0, "{all:#}");
    assert!(all["remote"]["packs"]["deleted"].as_array().unwrap().is_empty());
    assert!(all["remote"]["packs"]["repacked"].as_array().unwrap().is_empty());

    let dry = env.json(&["gc", "-r", "store", "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["remote"]["count"], DROPPED);
    let freed = dry["remote"]["packs"]["bytes_freed"].as_u64().unwrap();
    assert!(freed > 7_000_000, "{dry:#}");
    assert_eq!(remote.files(), before, "a dry run changes nothing on the remote");
    assert_eq!(env.object_files(), cache_before, "nor in the cache");

    let text = env.ok(&["gc", "-r", "store", "--dry-run"]);
    let deleted = dry["remote"]["packs"]["deleted"].as_array().unwrap().len();
    let repacked = dry["remote"]["packs"]["repacked"].as_array().unwrap().len();
    let line = format!("remote store packs: would delete {deleted} pack");
    assert!(
        text.stdout.contains(&line) && text.stdout.contains(&format!("would repack {repacked};")),
        "{text}"
    );
    assert!(text.stdout.contains("would be freed on the remote"), "{text}");
    assert_eq!(remote.files(), before);

    // The real run frees what the dry run said, less the new pack's header and trailer.
    let done = env.json(&["gc", "-r", "store", "-f"]);
    let packs = &done["remote"]["packs"];
    assert_eq!(packs["bytes_freed"].as_u64().unwrap(), freed);
    assert_eq!(packs["deleted"], dry["remote"]["packs"]["deleted"]);
    assert_eq!(packs["repacked"], dry["remote"]["packs"]["repacked"]);
    let shrink = pack_bytes(&before) - pack_bytes(&remote.files());
    let written = packs["written"].as_u64().unwrap();
    assert!(
        shrink <= freed && freed - shrink < 4096 * written.max(1),
        "freed {shrink} bytes, reported {freed}"
    );
}

fn a_running_push_makes_prune_refuse_and_a_stale_lock_is_recovered(b: Backend) {
    let remote = Remote::new(b);
    let env = Env::new();
    remote.configure(&env);
    three_versions(&env);
    // A push's lock from another machine, just written: a push is running.
    let name = "push-0123456789ab-4242-cafef00d";
    let lock = remote.root().join("locks").join(name);
    fs::create_dir_all(lock.parent().unwrap()).unwrap();
    fs::write(&lock, "kind: push\nhost: elsewhere\npid: 4242\ntime: 0\n").unwrap();
    let before = remote.files();
    let cache_before = env.object_files();

    let out = env.run(&["gc", "-r", "store", "-f"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains(&format!("a push is running on it (lock locks/{name}")), "{out}");
    assert_eq!(remote.files(), before, "a refused prune changes nothing on the remote");
    assert_eq!(env.object_files(), cache_before, "nor in the cache");

    // Not refreshed for 40 minutes: its push died, and the prune removes it.
    let touched =
        std::process::Command::new("touch").args(["-d", "-40 minutes"]).arg(&lock).status().unwrap();
    assert!(touched.success());
    let out = env.ok(&["gc", "-r", "store", "-f"]);
    assert!(out.stdout.contains("remote store packs: deleted "), "{out}");
    assert!(!lock.exists(), "the stale lock was recovered");
    assert_tidy(&remote);
    assert_pulls(&env, "after recovering a stale lock");

    // A prune killed after its work, before it let go of its lock, leaves only the lock:
    // the rerun, with nothing else to do, still removes it.
    let left = remote.root().join("locks").join("prune-0123456789ab-4343-deadbeef");
    fs::write(&left, "kind: prune\nhost: elsewhere\npid: 4343\ntime: 0\n").unwrap();
    let touched =
        std::process::Command::new("touch").args(["-d", "-40 minutes"]).arg(&left).status().unwrap();
    assert!(touched.success());
    let out = env.ok(&["gc", "-r", "store", "-f"]);
    assert!(out.stdout.contains("remote store locks: removed 1 lock left by processes that died"), "{out}");
    assert!(!left.exists(), "the dead prune's lock was removed");
    assert_tidy(&remote);
}

fn copy_tree(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    let st = std::process::Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap();
    assert!(st.success());
}

/// Kill a prune at seeded points spread over an uncut run; after each kill the current data
/// pulls into a fresh clone and verifies, and a rerun finishes the prune exactly as an uncut
/// run does.
fn kill_campaign(b: Backend, kills: usize) {
    let mut rng = KillRng::from_env(&format!("prune-{b:?}"), 0x5eed);
    let remote = Remote::new(b);
    let env = Env::new();
    remote.configure(&env);
    three_versions(&env);
    let pristine = env.outside().join("pristine-remote");
    let pristine_cache = env.outside().join("pristine-cache");
    copy_tree(&remote.root(), &pristine);
    copy_tree(&env.path(".trove/cache"), &pristine_cache);
    let restore = || {
        copy_tree(&pristine, &remote.root());
        copy_tree(&pristine_cache, &env.path(".trove/cache"));
    };
    let args = ["gc", "-r", "store", "-f"];
    let started = Instant::now();
    env.ok(&args);
    let full = started.elapsed();
    let want_packs: Vec<String> =
        in_dir(&remote.files(), "packs").iter().map(|(p, _)| (*p).clone()).collect();
    let mut landed = 0;
    for (round, delay) in rng.points(full, kills).into_iter().enumerate() {
        restore();
        let context = format!("round {round}: killed after {delay:?} of {full:?}");
        if kill_after(&env, &env.root, &args, delay).is_none() {
            landed += 1;
        }
        assert_pulls(&env, &context);
        let out = env.run(&args);
        assert_eq!(out.code, 0, "{context}: the rerun failed:\n{out}");
        let files = remote.files();
        let packs: Vec<String> = in_dir(&files, "packs").iter().map(|(p, _)| (*p).clone()).collect();
        assert_eq!(packs, want_packs, "{context}: the rerun left other packs than an uncut prune");
        assert_tidy(&remote);
        assert_pulls(&env, &format!("{context}, after the rerun"));
    }
    eprintln!("{landed} of {kills} kills landed inside a prune");
    assert!(landed > 0, "no kill landed inside a prune");
}

#[test]
fn kill_9_during_prune_of_a_folder_remote() {
    kill_campaign(Backend::Folder, 8);
}

#[test]
fn kill_9_during_prune_of_an_sftp_remote() {
    kill_campaign(Backend::Sftp, 3);
}

#[test]
fn kill_9_during_prune_of_an_sftp_remote_over_libssh2() {
    kill_campaign(Backend::SftpLibssh2, 3);
}

/// A prune in one clone and a push of new data in another, at once: one may refuse
/// (naming the other's lock) and succeeds when run again; nothing the push sent is lost.
#[test]
fn prune_and_push_from_two_clones_at_once() {
    for round in 0..3 {
        let remote = Remote::new(Backend::Folder);
        let env = Env::new();
        remote.configure(&env);
        three_versions(&env);
        // v4: new data the pruning clone's work tree names and the other clone pushes.
        env.write("extra/new.bin", noise(2 << 20, 500 + round));
        env.ok(&["add", "extra"]);
        commit(&env, "v4");
        let other = clone_repo(&env.root);
        fs::create_dir_all(other.path("extra")).unwrap();
        fs::write(other.path("extra/new.bin"), env.read("extra/new.bin")).unwrap();
        other.ok(&["add", "extra"]);
        assert_eq!(other.read("extra.trove"), env.read("extra.trove"));

        let prune = env.spawn_in(&env.root, &["gc", "-r", "store", "-f"]);
        let push = other.spawn_in(&other.root, &["push"]);
        // Both end first: a rerun while the other still runs may be refused again.
        let outcomes = [
            (prune.wait_with_output().unwrap(), &env, vec!["gc", "-r", "store", "-f"]),
            (push.wait_with_output().unwrap(), &other, vec!["push"]),
        ];
        for (out, who, args) in outcomes {
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(
                    err.contains("is running on it (lock locks/"),
                    "round {round}: {args:?} failed:\n{err}"
                );
                who.ok(&args);
            }
        }
        let files = remote.files();
        assert!(in_dir(&files, "locks").is_empty(), "round {round}: a lock was left: {files:?}");
        let clone = clone_repo(&env.root);
        let pulled = clone.run(&["pull"]);
        assert_eq!(pulled.code, 0, "round {round}: {pulled}");
        assert!(clone.read("extra/new.bin") == env.read("extra/new.bin"), "round {round}: the push's data");
        assert!(clone.read("model.bin") == env.read("model.bin"));
        clone.ok(&["verify"]);
    }
}

/// Copy the files `rels` of the tree at `from` into the tree at `to`.
fn copy_files(from: &Path, to: &Path, rels: &[&String]) {
    for rel in rels {
        let dest = to.join(rel);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(from.join(rel), &dest).unwrap();
    }
}

/// Every state a prune passes through, built from the remote before and after an uncut
/// prune (new packs uploaded; then the new index; then some or all old index files gone;
/// dead packs not yet deleted): the current data pulls from each, and a rerun finishes the
/// prune as the uncut run did.
#[test]
fn every_state_a_killed_prune_leaves_is_pulled_and_finished_by_a_rerun() {
    let remote = Remote::new(Backend::Folder);
    let env = Env::new();
    remote.configure(&env);
    three_versions(&env);
    let pristine = env.outside().join("pristine-remote");
    let after = env.outside().join("after-remote");
    copy_tree(&remote.root(), &pristine);
    env.ok(&["gc", "-r", "store", "-f"]);
    copy_tree(&remote.root(), &after);
    let (before_files, after_files) = (files_under(&pristine), files_under(&after));
    let new_packs: Vec<&String> =
        after_files.keys().filter(|p| p.starts_with("packs/") && !before_files.contains_key(*p)).collect();
    let new_index: Vec<&String> = after_files.keys().filter(|p| p.starts_with("index/")).collect();
    let old_index: Vec<&String> = before_files.keys().filter(|p| p.starts_with("index/")).collect();
    let old_packs: Vec<&String> = before_files.keys().filter(|p| p.starts_with("packs/")).collect();
    assert!(!new_packs.is_empty() && new_index.len() == 1);
    let want_packs: Vec<&String> = after_files.keys().filter(|p| p.starts_with("packs/")).collect();

    let states: [(&str, &dyn Fn()); 4] = [
        ("new packs uploaded, no new index yet", &|| {
            copy_tree(&pristine, &remote.root());
            copy_files(&after, &remote.root(), &new_packs);
        }),
        ("new index written, old index files still there", &|| {
            copy_tree(&pristine, &remote.root());
            copy_files(&after, &remote.root(), &new_packs);
            copy_files(&after, &remote.root(), &new_index);
        }),
        ("half the old index files deleted", &|| {
            copy_tree(&pristine, &remote.root());
            copy_files(&after, &remote.root(), &new_packs);
            copy_files(&after, &remote.root(), &new_index);
            for rel in &old_index[..old_index.len() / 2] {
                fs::remove_file(remote.root().join(rel)).unwrap();
            }
        }),
        ("old index files deleted, dead packs not yet", &|| {
            copy_tree(&after, &remote.root());
            copy_files(&pristine, &remote.root(), &old_packs);
        }),
    ];
    for (what, make) in states {
        make();
        assert_pulls(&env, what);
        env.ok(&["gc", "-r", "store", "-f"]);
        let files = remote.files();
        let packs: Vec<&String> = files.keys().filter(|p| p.starts_with("packs/")).collect();
        assert_eq!(packs, want_packs, "{what}: the rerun left other packs than an uncut prune");
        assert_tidy(&remote);
        assert_pulls(&env, &format!("{what}, after the rerun"));
    }

    // A push into the state a prune killed after its new index leaves: the old index
    // files still list chunks of dropped objects in packs the rerun deletes, so the push
    // must not count on them.
    copy_tree(&pristine, &remote.root());
    copy_files(&after, &remote.root(), &new_packs);
    copy_files(&after, &remote.root(), &new_index);
    env.write("model.bin", noise(3 << 20, 100));
    env.ok(&["add", "model.bin"]);
    commit(&env, "v1's model again");
    env.ok(&["push"]);
    env.ok(&["gc", "-r", "store", "-f"]);
    assert_pulls(&env, "v1's model pushed again into a half-done prune");
}

/// A folder the scope names whose manifest neither the cache nor the remote has: its files
/// are unknown, so no file object leaves the index (manifests may).
#[test]
fn an_unknown_manifest_keeps_every_file_object_in_the_index() {
    let remote = Remote::new(Backend::Folder);
    let env = Env::new();
    remote.configure(&env);
    three_versions(&env);
    let ghost = blake3_hex(b"a manifest nobody pushed");
    let p =
        Pointer { path: "ghost".into(), kind: "dir".into(), hash: ghost.clone(), size: 10, files: Some(1) };
    env.write_pointer("ghost.trove", &p);
    let before = remote.files();

    let report = env.json(&["gc", "-r", "store", "-f"]);
    assert_eq!(report["unknown_manifests"], serde_json::json!([format!("{ghost}.dir")]), "{report:#}");
    let dropped = report["remote"]["objects"].as_array().unwrap();
    assert!(!dropped.is_empty(), "the old manifest goes: {report:#}");
    for o in dropped {
        assert!(o["id"].as_str().unwrap().ends_with(".dir"), "a file object was dropped: {o}");
    }
    // Every file's chunks stay: at most the old manifest's few KiB are freed.
    let freed = report["remote"]["packs"]["bytes_freed"].as_u64().unwrap();
    assert!(freed < 64 << 10, "{report:#}");
    let after = remote.files();
    assert!(pack_bytes(&after) + (64 << 10) > pack_bytes(&before), "{before:?} → {after:?}");
    fs::remove_file(env.path("ghost.trove")).unwrap();
    assert_pulls(&env, "after a prune with an unknown manifest");
    // v1's model, a file object nothing in the scope uses, is still there to fetch.
    let clone = clone_repo(&env.root);
    let out = clone.run(&["fetch", "--rev", "HEAD~2", "model.bin"]);
    assert_eq!(out.code, 0, "{out}");
}

/// A prune's index first lists the index files it replaces, and readers skip those names.
/// Pushing an old version's object again, exactly as it was first pushed, writes an index
/// with the very bytes, and so the name, of a replaced one: it must be seen.
#[test]
fn an_object_pruned_and_then_pushed_again_the_same_way_is_on_the_remote() {
    let remote = Remote::new(Backend::Folder);
    let env = Env::new();
    remote.configure(&env);
    three_versions(&env);
    // A clone at v2 whose cache has v2's model.
    let old = clone_repo(&env.root);
    old.git_cmd(&["checkout", "-q", "HEAD~1"]);
    old.ok(&["pull", "model.bin"]);
    let before: Vec<String> = in_dir(&remote.files(), "index").iter().map(|(n, _)| n.to_string()).collect();

    env.ok(&["gc", "-r", "store", "-f"]);
    // v2's push sent only its model: the same push again writes the same index file.
    old.ok(&["push", "model.bin"]);
    let after: Vec<String> = in_dir(&remote.files(), "index").iter().map(|(n, _)| n.to_string()).collect();
    assert!(
        after.iter().any(|n| before.contains(n)),
        "the push wrote a replaced index's name again: {after:?}"
    );

    let fresh = clone_repo(&env.root);
    fresh.git_cmd(&["checkout", "-q", "HEAD~1"]);
    let out = fresh.run(&["pull", "model.bin"]);
    assert_eq!(out.code, 0, "v2's model was pushed again:\n{out}");
    assert!(fresh.read("model.bin") == old.read("model.bin"));
}
