//! gc, verify and install-hooks, end to end in real git repositories.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::*;

/// Object names (`<hex>` or `<hex>.dir`) below an `objects/` folder.
fn ids_under(objects: &Path) -> BTreeSet<String> {
    let mut files = Vec::new();
    walk(objects, &mut files);
    files
        .iter()
        .map(|f| {
            let prefix = f.parent().unwrap().file_name().unwrap().to_str().unwrap();
            format!("{prefix}{}", f.file_name().unwrap().to_str().unwrap())
        })
        .collect()
}

fn cache_ids(env: &Env) -> BTreeSet<String> {
    ids_under(&env.objects_dir())
}

/// The objects a commit's data needs: its two pointers' ids and every file of the folder.
fn needed(h: &History, i: usize) -> BTreeSet<String> {
    let c = &h.commits[i];
    let pointer = |rel: &str| Pointer::parse(&h.env.git_cmd(&["show", &format!("{c}:{rel}")])).hash;
    let mut out = BTreeSet::from([format!("{}.dir", pointer("data.trove")), pointer("model.bin.trove")]);
    out.extend(h.contents[i].iter().filter(|(k, _)| k.starts_with("data/")).map(|(_, v)| blake3_hex(v)));
    out
}

fn assert_work_tree_is(env: &Env, want: &BTreeMap<String, Vec<u8>>, what: &str) {
    let now = snapshot(env);
    assert_eq!(now.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{what}");
    assert!(now == *want, "{what}: contents differ");
}

#[test]
fn gc_all_commits_keeps_what_every_commit_needs() {
    let h = three_commits(DataRemote::None);
    let env = &h.env;
    let all: BTreeSet<String> = (0..3).flat_map(|i| needed(&h, i)).collect();
    let before = cache_ids(env);
    assert_eq!(before, all.iter().cloned().chain([h.scratch.clone()]).collect(), "setup");

    let v = env.json(&["gc", "--all-commits", "-f"]);
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["scope"]["all_commits"], true);
    assert_eq!(v["referenced"], all.len(), "{v}");
    assert_eq!(v["cache"]["count"], 1, "only the scratch object goes: {v}");
    assert_eq!(v["cache"]["objects"][0]["id"], h.scratch.as_str());
    assert_eq!(v["cache"]["bytes"], 700);
    assert_eq!(v["cache"]["kept"], all.len());
    assert_eq!(cache_ids(env), all);

    // Every commit checks out from the cache alone (no remote is configured).
    for (i, commit) in h.commits.iter().enumerate() {
        env.git_cmd(&["checkout", "-q", commit]);
        env.ok(&["checkout"]);
        assert_work_tree_is(env, &h.contents[i], &format!("commit {}", i + 1));
    }
    env.git_cmd(&["checkout", "-q", &h.branch]);
    env.ok(&["checkout"]);

    // A second run finds nothing; so does --all-branches (one branch, at its head).
    let out = env.ok(&["gc", "-A", "-f"]);
    assert!(out.stdout.contains("in use by the work tree and every commit"), "{out}");
    assert!(out.stdout.contains("nothing to delete"), "{out}");
}

#[test]
fn gc_keeps_every_file_when_a_folder_manifest_is_unknown() {
    let h = three_commits(DataRemote::PushedEachCommit);
    let env = &h.env;
    // The first commit's folder manifest leaves the cache.
    let first = needed(&h, 0).into_iter().find(|i| i.ends_with(".dir")).unwrap();
    let m = env.objects_dir().join(&first[..2]).join(&first[2..]);
    fs::remove_file(&m).unwrap();
    let before = cache_ids(env);

    // Its files cannot be known: no file object goes, and gc says why.
    let out = env.ok(&["gc", "-A", "-f"]);
    assert!(out.stderr.contains("warning:") && out.stderr.contains(&first), "{out}");
    assert!(out.stderr.contains("--remote"), "{out}");
    assert_eq!(cache_ids(env), before, "the scratch object is kept too");
    let v = env.json(&["gc", "-A", "-n"]);
    assert_eq!(strings(&v["unknown_manifests"]), vec![first.clone()]);

    // With the remote, the manifest is read from there and gc goes ahead.
    let v = env.json(&["gc", "-A", "-r", "store", "-f"]);
    assert!(v["unknown_manifests"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(v["cache"]["objects"][0]["id"], h.scratch.as_str(), "{v}");
    assert!(m.is_file(), "the manifest is back in the cache");
}

#[test]
fn gc_workspace_keeps_only_current_data_and_dry_run_deletes_nothing() {
    let h = three_commits(DataRemote::None);
    let env = &h.env;
    let before = cache_ids(env);

    // --dry-run: the plan, with each path under -v, and nothing deleted.
    let out = env.ok(&["gc", "--dry-run", "-v"]);
    assert!(out.stdout.contains("cache: would delete 6 objects"), "{out}");
    assert!(
        out.stdout.contains(&format!(".trove/cache/objects/{}/{}", &h.scratch[..2], &h.scratch[2..])),
        "{out}"
    );
    let v = env.json(&["gc", "-n"]);
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["cache"]["count"], 6, "{v}");
    assert_eq!(cache_ids(env), before, "a dry run deletes nothing");

    // Without --force and without a terminal: refused, as a usage error.
    let out = env.fails(2, &["gc"]);
    assert!(out.stderr.contains("--force") && out.stderr.contains("--dry-run"), "{out}");
    assert_eq!(cache_ids(env), before);

    let out = env.ok(&["gc", "--workspace", "-f", "-v"]);
    assert!(out.stdout.contains("in use by the work tree: 5 objects"), "{out}");
    assert!(out.stdout.contains("cache: deleted 6 objects"), "{out}");
    assert_eq!(cache_ids(env), needed(&h, 2), "only the current data survives");
    env.ok(&["status"]);
    env.ok(&["checkout"]);

    // The first commit's data is gone: its checkout names what is missing.
    env.git_cmd(&["checkout", "-q", &h.commits[0]]);
    let out = env.fails(1, &["checkout"]);
    assert!(out.stderr.contains("not in the cache"), "{out}");
    env.git_cmd(&["checkout", "-q", &h.branch]);

    // Conflicting scopes are a usage error.
    env.fails(2, &["gc", "-w", "-A", "-f"]);
}

#[test]
fn gc_removes_stale_temp_files_and_keeps_experiment_artifacts() {
    let env = Env::new();
    env.write("data.csv", "x\n");
    env.ok(&["add", "data.csv"]);
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", "data"]);
    // An artifact of an experiment record lives only in the cache.
    env.write("weights.bin", noise(300, 4));
    env.ok(&["exp", "log", "--name", "base", "--allow-dirty", "--artifact", "weights.bin"]);
    let artifact = blake3_hex(&noise(300, 4));
    // A temp file of a process that no longer runs.
    let tmp = env.path(".trove/cache/tmp/obj-999999999-0");
    fs::write(&tmp, "half an object").unwrap();

    let v = env.json(&["gc", "-f"]);
    assert_eq!(v["cache"]["count"], 0, "{v}");
    assert_eq!(v["temps"]["files"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["temps"]["bytes"], 14);
    assert!(!tmp.exists());
    assert!(cache_ids(&env).contains(&artifact), "the artifact is kept");
    // The hash cache is left alone.
    assert!(env.path(".trove/state").is_dir());
}

#[test]
fn temp_files_in_object_folders_go_with_their_dead_writer_only() {
    let env = Env::new();
    env.write("a.csv", "a\n");
    env.ok(&["add", "a.csv"]);
    assert!(
        cache_temps(&env.path(".trove/cache")).is_empty(),
        "a finished add leaves no temp files or marker"
    );
    // A writer killed mid-copy leaves its marker and a temp file beside the objects; a
    // running one (this test's own process) has the same and must keep them.
    let cache = env.path(".trove/cache");
    let live = std::process::id();
    for (pid, name) in [(999_999_999, "ab"), (live, "cd")] {
        fs::create_dir_all(cache.join("objects").join(name)).unwrap();
        fs::write(cache.join(format!("objects/{name}/obj-{pid}-7")), "half").unwrap();
        fs::write(cache.join(format!("tmp/writer-{pid}")), "").unwrap();
    }
    env.write("b.csv", "b\n");
    env.ok(&["add", "b.csv"]);
    let mut left: Vec<String> =
        cache_temps(&cache).iter().map(|p| p.strip_prefix(&cache).unwrap().display().to_string()).collect();
    left.sort();
    assert_eq!(left, [format!("objects/cd/obj-{live}-7"), format!("tmp/writer-{live}")]);
    assert_eq!(env.json(&["verify"])["verify"]["corrupt"], serde_json::json!([]));
}

#[test]
fn gc_remote_cleans_a_folder_remote() {
    let h = three_commits(DataRemote::PushedEachCommit);
    let env = &h.env;
    let on_remote = ids_under(&h.remote_objects());
    let all: BTreeSet<String> = (0..3).flat_map(|i| needed(&h, i)).collect();
    assert_eq!(on_remote, all, "each commit was pushed; the scratch object never was");

    // Every commit's data is in use: nothing goes from the remote.
    let v = env.json(&["gc", "-A", "-r", "store", "-f"]);
    assert_eq!(v["remote"]["name"], "store");
    assert_eq!(v["remote"]["count"], 0, "{v}");
    assert_eq!(v["cache"]["count"], 1, "{v}");

    // The work tree only: the remote keeps the current data, and says so with -v.
    let out = env.ok(&["gc", "-r", "store", "-f", "-v"]);
    assert!(out.stdout.contains("remote store: deleted 5 objects"), "{out}");
    assert!(out.stdout.contains("store:objects/"), "{out}");
    assert_eq!(ids_under(&h.remote_objects()), needed(&h, 2));
    assert_eq!(cache_ids(env), needed(&h, 2));

    // A clone pulls the current data from the cleaned remote.
    env.ok(&["push"]);
    let out = env.ok(&["status", "--remote", "store"]);
    assert!(out.stdout.contains("in sync"), "{out}");

    env.fails(2, &["gc", "-r", "nosuch", "-f"]);
}

/// Make a read-only object writable and flip its first byte.
fn corrupt(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = fs::read(path).unwrap();
    bytes[0] ^= 0xff;
    fs::write(path, bytes).unwrap();
}

#[test]
fn verify_quarantines_a_corrupt_cache_object_and_pull_repairs_it() {
    let h = three_commits(DataRemote::PushedEachCommit);
    let env = &h.env;
    let v = env.json(&["verify"]);
    assert_eq!(v["verify"]["objects"], cache_ids(env).len());
    assert!(v["verify"]["corrupt"].as_array().unwrap().is_empty());

    // A file of the current data, and the current folder manifest.
    let b = blake3_hex(b"b,2 changed\n");
    let manifest = env.pointer("data.trove").hash;
    corrupt(&env.object_path(&b));
    corrupt(&env.manifest_path(&manifest));
    let out = env.fails(1, &["verify"]);
    assert!(out.stdout.contains(&format!("corrupt: {b}")), "{out}");
    assert!(out.stderr.contains(&b) && out.stderr.contains(".trove/cache/quarantine"), "{out}");
    assert!(out.stderr.contains("trove pull"), "{out}");
    assert!(!env.object_path(&b).exists() && !env.manifest_path(&manifest).exists());
    let quarantine = env.path(".trove/cache/quarantine");
    assert!(quarantine.join(&b).is_file());
    assert!(quarantine.join(format!("{manifest}.dir")).is_file());

    // Now the cache lacks them: pull downloads sound copies.
    let out = env.ok(&["status"]);
    assert!(out.stdout.contains("not in cache") || out.stdout.contains("not in the cache"), "{out}");
    env.ok(&["pull"]);
    assert_eq!(blake3_file(&env.object_path(&b)), b);
    let v = env.json(&["verify"]);
    assert!(v["verify"]["corrupt"].as_array().unwrap().is_empty(), "{v}");
    assert_work_tree_is(env, &h.contents[2], "after the repair");

    // --json on failure: the report beside the error.
    corrupt(&env.object_path(&b));
    let out = env.fails(1, &["--json", "verify"]);
    let v = out.json();
    assert_eq!(v["verify"]["corrupt"][0]["id"], b.as_str(), "{v}");
    assert!(v["error"].as_str().unwrap().contains("corrupt"), "{v}");
}

#[test]
fn verify_remote_finds_corrupt_objects_and_repair_replaces_them() {
    let h = three_commits(DataRemote::PushedEachCommit);
    let env = &h.env;
    let v = env.json(&["verify", "--remote", "store"]);
    assert_eq!(v["verify"]["objects"], ids_under(&h.remote_objects()).len());
    assert!(v["verify"]["corrupt"].as_array().unwrap().is_empty(), "{v}");

    // One object this cache still has, one it no longer has.
    let d = blake3_hex(b"d,2\n");
    let a = blake3_hex(b"a,1\n");
    env.ok(&["gc", "-f"]);
    assert!(!env.object_path(&a).exists());
    let remote_path = |hex: &str| h.remote_objects().join(&hex[..2]).join(&hex[2..]);
    corrupt(&remote_path(&d));
    corrupt(&remote_path(&a));

    let out = env.fails(1, &["verify", "--remote", "store", "-j", "3"]);
    assert!(
        out.stdout.contains(&format!("corrupt: {d}")) && out.stdout.contains(&format!("corrupt: {a}")),
        "{out}"
    );
    assert!(out.stderr.contains("--repair"), "{out}");
    assert!(remote_path(&d).exists(), "nothing is deleted without --repair");

    let out = env.fails(1, &["--json", "verify", "--remote", "store", "--repair"]);
    let v = out.json();
    let repairs: BTreeMap<String, String> = v["verify"]["corrupt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_string(), c["repair"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(repairs, BTreeMap::from([(a.clone(), "deleted".into()), (d.clone(), "reuploaded".into())]));
    assert_eq!(blake3_file(&remote_path(&d)), d, "re-uploaded from the cache");
    assert!(!remote_path(&a).exists(), "deleted, so a push from a clone that has it re-uploads it");
    let v = env.json(&["verify", "--remote"]);
    assert!(v["verify"]["corrupt"].as_array().unwrap().is_empty(), "{v}");

    env.fails(2, &["verify", "--repair"]);
}

/// Run the git CLI in the repository with the trove binary first on PATH.
fn git_with_trove(env: &Env, args: &[&str], path: Option<&str>) -> std::process::Output {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = path.map(String::from).unwrap_or_else(|| {
        format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()))
    });
    let mut cmd = Command::new("git");
    cmd.args(args).current_dir(&env.root);
    env.clean_env(&mut cmd);
    cmd.env("PATH", path).stdin(Stdio::null()).output().expect("run git")
}

fn git_ok(env: &Env, args: &[&str]) -> String {
    let out = git_with_trove(env, args, None);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "git {args:?} failed:\n{text}");
    text
}

#[test]
fn install_hooks_checks_out_data_on_git_checkout_and_chains_existing_hooks() {
    let h = three_commits(DataRemote::PushedEachCommit);
    let env = &h.env;
    let hooks = env.path(".git/hooks");
    // A hook of the user's own, which must keep running.
    let own = "#!/bin/sh\necho \"$@\" >> \"$(git rev-parse --git-dir)/own-hook-ran\"\n";
    env.write_exec(".git/hooks/post-checkout", own);
    let own_pre_push = "#!/bin/sh\ncat > \"$(git rev-parse --git-dir)/own-pre-push-stdin\"\n";
    env.write_exec(".git/hooks/pre-push", own_pre_push);

    let v = env.json(&["install-hooks"]);
    assert_eq!(strings(&v["installed"]), vec!["post-checkout", "post-merge", "pre-push"]);
    assert_eq!(strings(&v["chained"]), vec!["post-checkout", "pre-push"]);
    assert_eq!(fs::read_to_string(hooks.join("post-checkout.pre-trove")).unwrap(), own);
    for hook in ["post-checkout", "post-merge", "pre-push"] {
        let text = fs::read_to_string(hooks.join(hook)).unwrap();
        assert!(text.starts_with("#!/bin/sh\n# trove-hook"), "{text}");
        assert_eq!(mode(&hooks.join(hook)) & 0o111, 0o111, "{hook} is executable");
    }
    // Idempotent.
    let v = env.json(&["install-hooks"]);
    assert!(strings(&v["installed"]).is_empty() && strings(&v["chained"]).is_empty(), "{v}");
    assert_eq!(strings(&v["unchanged"]).len(), 3);
    assert_eq!(fs::read_to_string(hooks.join("post-checkout.pre-trove")).unwrap(), own);

    // git checkout of the first commit brings its data; the user's hook ran first.
    let out = git_ok(env, &["checkout", "-q", &h.commits[0]]);
    assert!(out.contains("data:"), "trove checkout ran:\n{out}");
    assert_work_tree_is(env, &h.contents[0], "after git checkout of commit 1");
    let ran = env.read_string(".git/own-hook-ran");
    assert!(ran.ends_with(" 1\n"), "{ran}");
    git_ok(env, &["checkout", "-q", &h.branch]);
    assert_work_tree_is(env, &h.contents[2], "back on the branch");
    assert_eq!(env.read_string(".git/own-hook-ran").lines().count(), 2);

    // A checkout of files (flag 0) leaves the data alone; the user's hook still runs.
    fs::remove_file(env.path("data/b.csv")).unwrap();
    git_ok(env, &["checkout", &h.commits[0], "--", ".gitignore"]);
    assert!(!env.exists("data/b.csv"), "no trove checkout for a file checkout");
    assert!(env.read_string(".git/own-hook-ran").ends_with(" 0\n"));
    env.ok(&["checkout"]);

    // Without trove on PATH, the hook says so.
    let out = git_with_trove(env, &["checkout", "-q", &h.commits[1]], Some("/usr/bin:/bin"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("not on PATH"), "{err}");
    git_ok(env, &["checkout", "-q", &h.branch]);

    // pre-push: `git push` also pushes the data to the default trove remote.
    let bare = tempfile::Builder::new().prefix("trove-hooks-origin-").tempdir().unwrap();
    env.git_cmd(&["init", "-q", "--bare", bare.path().to_str().unwrap()]);
    env.git_cmd(&["remote", "add", "origin", bare.path().to_str().unwrap()]);
    env.write("data/e.csv", "e\n");
    env.ok(&["commit", "-m", "four"]);
    let e = blake3_hex(b"e\n");
    let remote_e = h.remote_objects().join(&e[..2]).join(&e[2..]);
    assert!(!remote_e.exists());
    let out = git_ok(env, &["push", "-q", "origin", &h.branch]);
    assert!(out.contains("pushed"), "{out}");
    assert!(remote_e.exists(), "the pre-push hook pushed the new data");
    let stdin = env.read_string(".git/own-pre-push-stdin");
    assert!(
        stdin.starts_with(&format!("refs/heads/{} ", h.branch)),
        "the chained hook got git's stdin: {stdin}"
    );

    // Uninstall: trove's hooks go, the user's comes back.
    let v = env.json(&["install-hooks", "--uninstall"]);
    assert_eq!(strings(&v["removed"]), vec!["post-checkout", "post-merge", "pre-push"]);
    assert_eq!(strings(&v["restored"]), vec!["post-checkout", "pre-push"]);
    assert_eq!(fs::read_to_string(hooks.join("post-checkout")).unwrap(), own);
    assert_eq!(fs::read_to_string(hooks.join("pre-push")).unwrap(), own_pre_push);
    assert!(!hooks.join("post-checkout.pre-trove").exists());
    assert!(!hooks.join("post-merge").exists());
    let v = env.json(&["install-hooks", "--uninstall"]);
    assert!(strings(&v["removed"]).is_empty(), "{v}");
    assert_eq!(strings(&v["not_ours"]), vec!["post-checkout", "pre-push"]);
}

#[test]
fn install_hooks_respects_core_hooks_path() {
    let env = Env::new();
    env.git_cmd(&["config", "core.hooksPath", "githooks"]);
    let v = env.json(&["install-hooks"]);
    assert_eq!(v["hooks_dir"], Value::String(env.path("githooks").to_str().unwrap().into()));
    assert!(env.path("githooks/post-checkout").is_file());
    assert!(!env.path(".git/hooks/post-checkout").exists());
    // A foreign hook beside an already kept one is not overwritten.
    env.ok(&["install-hooks", "--uninstall"]);
    env.write_exec("githooks/pre-push", "#!/bin/sh\nexit 0\n");
    env.write_exec("githooks/pre-push.pre-trove", "#!/bin/sh\nexit 0\n");
    let out = env.fails(1, &["install-hooks"]);
    assert!(out.stderr.contains("pre-push") && out.stderr.contains("by hand"), "{out}");
    assert!(!env.path("githooks/post-checkout").exists(), "nothing was written");
}

#[test]
fn sftp_remote_is_listed_cleaned_and_verified() {
    let server = crate::sshd::Sshd::start();
    let env = Env::new();
    let root = server.data.join("store");
    env.ok(&["remote", "add", "store", &server.url(&root), "--default"]);
    env.ok(&["remote", "set", "store", "layout", "1"]);
    env.ok(&["remote", "set", "store", "keyfile", server.key.to_str().unwrap()]);
    env.ok(&["remote", "set", "store", "known_hosts", server.known_hosts.to_str().unwrap()]);
    env.write("data/a.csv", "a\n");
    env.write("data/b.csv", "b\n");
    env.write("old.bin", noise(500, 5));
    env.ok(&["add", "data", "old.bin"]);
    env.ok(&["push"]);
    let objects = root.join("objects");
    assert_eq!(ids_under(&objects).len(), 4, "{}", server.log_text());

    // old.bin is no longer tracked: gc deletes it here and on the server.
    env.ok(&["remove", "old.bin"]);
    let old = blake3_hex(&noise(500, 5));
    let v = env.json(&["gc", "-r", "store", "-f"]);
    assert_eq!(v["remote"]["count"], 1, "{v}\n{}", server.log_text());
    assert_eq!(v["remote"]["objects"][0]["id"], old.as_str());
    assert_eq!(v["remote"]["kept"], 3);
    assert!(!ids_under(&objects).contains(&old));

    let a = blake3_hex(b"a\n");
    corrupt(&objects.join(&a[..2]).join(&a[2..]));
    let out = env.fails(1, &["verify", "--remote", "store"]);
    assert!(out.stdout.contains(&format!("corrupt: {a}")), "{out}");
    let out = env.ok(&["verify", "--remote", "store", "--repair"]);
    assert!(out.stdout.contains("replaced with the sound copy"), "{out}");
    assert_eq!(blake3_file(&objects.join(&a[..2]).join(&a[2..])), a);
    env.ok(&["verify", "--remote", "store"]);
}

#[test]
fn post_checkout_hook_skips_the_checkouts_of_a_rebase() {
    let env = Env::new();
    env.ok(&["install-hooks"]);
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", "init"]);
    let branch = env.git_cmd(&["rev-parse", "--abbrev-ref", "HEAD"]).trim().to_string();
    // A stand-in trove on PATH that logs how it is called.
    let bin = env.outside().join("fake-bin");
    let log = env.outside().join("fake-trove.log");
    fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("trove");
    fs::write(&fake, format!("#!/bin/sh\necho \"$*\" >> '{}'\n", log.display())).unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let path =
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()));
    let git = |args: &[&str]| {
        let out = git_with_trove(&env, args, Some(&path));
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    env.write("m.txt", "m");
    git(&["add", "m.txt"]);
    git(&["commit", "-q", "-m", "m"]);
    git(&["checkout", "-q", "-b", "side", "HEAD~1"]);
    env.write("s.txt", "s");
    git(&["add", "s.txt"]);
    git(&["commit", "-q", "-m", "s"]);
    assert_eq!(fs::read_to_string(&log).unwrap(), "checkout\n", "the branch checkout ran it");
    git(&["rebase", "-q", &branch]);
    assert_eq!(fs::read_to_string(&log).unwrap(), "checkout\n", "the rebase did not");
    git(&["checkout", "-q", &branch]);
    assert_eq!(fs::read_to_string(&log).unwrap(), "checkout\ncheckout\n");
}

#[test]
fn pre_push_hook_pushes_the_data_of_every_commit_git_pushes() {
    let h = three_commits(DataRemote::Configured);
    let env = &h.env;
    env.ok(&["install-hooks"]);
    let bare = tempfile::Builder::new().prefix("trove-hooks-origin-").tempdir().unwrap();
    env.git_cmd(&["init", "-q", "--bare", bare.path().to_str().unwrap()]);
    env.git_cmd(&["remote", "add", "origin", bare.path().to_str().unwrap()]);

    // A new branch: the data of all its commits, not only of the work tree.
    git_ok(env, &["push", "-q", "origin", &h.branch]);
    let clone = clone_repo(bare.path());
    for (commit, contents) in h.commits.iter().zip(&h.contents) {
        clone.git_cmd(&["checkout", "-q", commit]);
        clone.ok(&["pull"]);
        assert_work_tree_is(&clone, contents, &format!("the clone at {commit}"));
    }

    // Two `trove commit`s, then one push: the older one's data goes too.
    env.write("data/a.csv", "a,4\n");
    env.ok(&["commit", "-m", "four"]);
    let four = head(env);
    let four_contents = snapshot(env);
    env.write("data/a.csv", "a,5\n");
    env.ok(&["commit", "-m", "five"]);
    git_ok(env, &["push", "-q", "origin", &h.branch]);
    clone.git_cmd(&["fetch", "-q", "origin"]);
    clone.git_cmd(&["checkout", "-q", &four]);
    clone.ok(&["pull"]);
    assert_work_tree_is(&clone, &four_contents, "the clone at the older of two pushed commits");

    // Deleting a branch pushes no data.
    git_ok(env, &["push", "-q", "origin", &format!("{}:refs/heads/other", h.branch)]);
    git_ok(env, &["push", "-q", "origin", "--delete", "other"]);
}

/// `data/` committed, then changed on a branch `feature` (b.csv) and on the first branch
/// (a.csv), each with `trove commit`. Returns the first branch's name and the pointer
/// hashes of both sides; the work tree is on the first branch.
fn diverged(env: &Env) -> (String, String, String) {
    env.write("data/a.csv", "a,1\n");
    env.write("data/b.csv", "b,1\n");
    env.ok(&["add", "data"]);
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", "base"]);
    let main = env.git_cmd(&["rev-parse", "--abbrev-ref", "HEAD"]).trim().to_string();
    env.git_cmd(&["checkout", "-q", "-b", "feature"]);
    env.write("data/b.csv", "b,2 feature\n");
    env.ok(&["commit", "-m", "feature"]);
    let theirs = env.pointer("data.trove").hash;
    env.git_cmd(&["checkout", "-q", &main]);
    env.ok(&["checkout"]);
    env.write("data/a.csv", "a,2 main\n");
    env.ok(&["commit", "-m", "main"]);
    let ours = env.pointer("data.trove").hash;
    (main, ours, theirs)
}

#[test]
fn a_merge_conflict_in_a_pointer_names_both_sides_and_how_to_pick_one() {
    let env = Env::new();
    let (_, ours, theirs) = diverged(&env);
    let merge = git_with_trove(&env, &["merge", "-q", "feature"], None);
    assert!(!merge.status.success(), "the pointers conflict");

    let out = env.fails(1, &["status"]);
    assert!(out.stderr.contains("data.trove:5: unresolved merge conflict"), "{out}");
    assert!(!out.stderr.contains("YAML"), "{out}");
    assert!(out.stderr.contains(&format!("ours (HEAD) has hash {ours}")), "{out}");
    assert!(out.stderr.contains(&format!("theirs (feature) has hash {theirs}")), "{out}");
    assert!(out.stderr.contains("hint: keep one side: `git checkout --ours "), "{out}");
    assert!(out.stderr.contains("&& trove checkout "), "{out}");

    // Doing as the hint says: their side, data and all.
    env.git_cmd(&["checkout", "--theirs", "data.trove"]);
    env.ok(&["checkout", "data.trove"]);
    assert_eq!(env.read_string("data/b.csv"), "b,2 feature\n");
    assert_eq!(env.read_string("data/a.csv"), "a,1\n");
    env.ok(&["status"]);
}

fn git_fails(env: &Env, args: &[&str]) -> String {
    let out = git_with_trove(env, args, None);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "git {args:?} succeeded:\n{text}");
    text
}

#[test]
fn merge_driver_combines_changes_to_different_files_and_leaves_real_conflicts() {
    let env = Env::new();
    let (main, ours, theirs) = diverged(&env);
    let v = env.json(&["install-hooks"]);
    assert_eq!(v["merge_driver"], true, "{v}");
    assert_eq!(v["gitattributes"], env.path(".gitattributes").to_str().unwrap(), "{v}");
    assert_eq!(env.read_string(".gitattributes"), "*.trove merge=trove\n");
    assert_eq!(env.git_cmd(&["config", "merge.trove.driver"]).trim(), "trove merge-driver %O %A %B %P");
    assert_eq!(env.json(&["install-hooks"])["merge_driver"], false, "idempotent");
    env.git_cmd(&["commit", "-q", "-m", "merge pointers with trove"]);

    // Different files of the folder: one merged pointer, and the post-merge hook checks it out.
    let out = git_ok(&env, &["merge", "--no-edit", "feature"]);
    assert!(out.contains("trove merged data.trove"), "{out}");
    let merged = env.pointer("data.trove");
    assert!(merged.hash != ours && merged.hash != theirs, "{out}");
    assert_eq!(merged.files, Some(2));
    assert_eq!(env.read_string("data/a.csv"), "a,2 main\n");
    assert_eq!(env.read_string("data/b.csv"), "b,2 feature\n");
    assert!(env.git_cmd(&["status", "--porcelain"]).is_empty(), "the merge is committed");
    let v = env.json(&["status"]);
    assert!(!v.to_string().contains("modified"), "{v}");

    // The same file changed on both sides: a conflict git and trove both report.
    git_ok(&env, &["checkout", "-q", "feature"]);
    env.write("data/b.csv", "b,3 feature\n");
    env.ok(&["commit", "-m", "feature b"]);
    let theirs = env.pointer("data.trove").hash;
    git_ok(&env, &["checkout", "-q", &main]);
    env.write("data/b.csv", "b,3 main\n");
    env.ok(&["commit", "-m", "main b"]);
    let ours = env.pointer("data.trove").hash;
    let out = git_fails(&env, &["merge", "--no-edit", "feature"]);
    assert!(out.contains("data/b.csv: both sides changed it, differently"), "{out}");
    assert!(out.contains("CONFLICT"), "{out}");
    let out = env.fails(1, &["status"]);
    assert!(out.stderr.contains(&format!("ours has hash {ours}, theirs has hash {theirs}")), "{out}");
    env.git_cmd(&["checkout", "--ours", "data.trove"]);
    env.ok(&["checkout", "data.trove"]);
    assert_eq!(env.read_string("data/b.csv"), "b,3 main\n");
    env.git_cmd(&["add", "data.trove"]);
    env.git_cmd(&["commit", "-q", "--no-edit"]);

    // Without their folder's manifest in the cache, the driver cannot merge and says so.
    git_ok(&env, &["checkout", "-q", "feature"]);
    env.write("data/c.csv", "c\n");
    env.ok(&["commit", "-m", "feature c"]);
    let theirs = env.pointer("data.trove").hash;
    git_ok(&env, &["checkout", "-q", &main]);
    env.write("data/d.csv", "d\n");
    env.ok(&["commit", "-m", "main d"]);
    let manifest = env.manifest_path(&theirs);
    fs::set_permissions(manifest.parent().unwrap(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_file(&manifest).unwrap();
    let out = git_fails(&env, &["merge", "--no-edit", "feature"]);
    assert!(out.contains(&format!("({theirs}) is not in this cache")), "{out}");
    assert!(out.contains("trove fetch --rev"), "{out}");
    git_ok(&env, &["merge", "--abort"]);

    // Uninstalling removes the driver and the attribute.
    let v = env.json(&["install-hooks", "--uninstall"]);
    assert_eq!(v["merge_driver"], true, "{v}");
    assert!(!env.exists(".gitattributes"));
    let config = env.git().config().unwrap().snapshot().unwrap();
    assert!(
        config.get_string("merge.trove.driver").is_err() && config.get_string("merge.trove.name").is_err()
    );
}
