//! The model registry: `trove model register/promote/demote/deprecate/list/show/get`,
//! stored in annotated git tags and shared with `git push/fetch --tags`.

use std::fs;

use serde_json::Value;

use crate::common::*;

/// A repository with a folder remote and `models/churn.pkl` (content `v1`) committed.
fn with_model() -> (Env, tempfile::TempDir) {
    let env = Env::new();
    let store = tempfile::Builder::new().prefix("trove-store-").tempdir().unwrap();
    env.ok(&["remote", "add", "store", store.path().to_str().unwrap(), "--default"]);
    env.write("data/train.csv", "a,b\n1,2\n");
    env.write("models/churn.pkl", "v1");
    env.ok(&["add", "data/train.csv", "models/churn.pkl"]);
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", "model v1"]);
    (env, store)
}

/// Train a new model file and commit it.
fn retrain(env: &Env, content: &str) {
    env.write("models/churn.pkl", content);
    env.ok(&["add", "models/churn.pkl"]);
    env.git_cmd(&["commit", "-q", "-a", "-m", content]);
}

fn show(env: &Env, name: &str) -> Value {
    env.json(&["model", "show", name])
}

fn versions(v: &Value) -> Vec<String> {
    v["versions"].as_array().unwrap().iter().map(|x| x["version"].as_str().unwrap().to_string()).collect()
}

fn label(v: &Value, label: &str) -> Option<String> {
    v["labels"].get(label).map(|l| l["version"].as_str().unwrap().to_string())
}

fn tags(env: &Env) -> Vec<String> {
    env.git_cmd(&["tag", "-l"]).lines().map(str::to_string).collect()
}

#[test]
fn register_promote_get_and_keep_the_history() {
    let (env, _store) = with_model();
    let head1 = env.git_cmd(&["rev-parse", "HEAD"]).trim().to_string();
    let r = env.json(&["model", "register", "churn", "models/churn.pkl", "-m", "first baseline"]);
    assert_eq!(r["version"], "v0.1.0", "{r}");
    assert_eq!(r["commit"], head1);
    assert_eq!(r["hash"], blake3_hex(b"v1"));
    assert_eq!(r["path"], "models/churn.pkl");
    // The data it was trained on: the other tracked data at the commit.
    assert_eq!(r["data"][0]["path"], "data/train.csv", "{r}");
    assert_eq!(r["data"][0]["hash"], blake3_hex(b"a,b\n1,2\n"));

    retrain(&env, "v2");
    let r = env.json(&["model", "register", "churn", "models/churn.pkl"]);
    assert_eq!(r["version"], "v0.2.0");
    retrain(&env, "v3");
    let r = env.json(&["model", "register", "churn", "models/churn.pkl", "--bump", "patch"]);
    assert_eq!(r["version"], "v0.2.1");
    retrain(&env, "v4");
    let r = env.json(&["model", "register", "churn", "models/churn.pkl", "--version", "1.4.0"]);
    assert_eq!(r["version"], "v1.4.0");

    // Stages and aliases.
    env.ok(&["model", "promote", "churn", "0.1.0", "--stage", "prod", "-m", "best so far"]);
    env.ok(&["model", "promote", "churn", "v0.2.0", "--stage", "staging"]);
    env.ok(&["model", "promote", "churn", "v1.4.0", "--alias", "champion"]);
    env.ok(&["model", "promote", "churn", "v0.2.0", "--stage", "prod", "-m", "v2 wins the A/B test"]);
    let v = show(&env, "churn");
    assert_eq!(versions(&v), ["v0.1.0", "v0.2.0", "v0.2.1", "v1.4.0"]);
    assert_eq!(label(&v, "prod").as_deref(), Some("v0.2.0"));
    assert_eq!(label(&v, "staging").as_deref(), Some("v0.2.0"));
    assert_eq!(label(&v, "champion").as_deref(), Some("v1.4.0"));
    assert_eq!(v["labels"]["champion"]["kind"], "alias");
    assert_eq!(v["labels"]["prod"]["kind"], "stage");

    // Each spec writes the bytes of its version.
    let cases = [
        ("churn", "v4"),
        ("churn@v0.1.0", "v1"),
        ("churn@0.2.1", "v3"),
        ("churn:prod", "v2"),
        ("churn@champion", "v4"),
    ];
    for (i, (spec, content)) in cases.iter().enumerate() {
        let out = format!("out/{i}.pkl");
        env.ok(&["model", "get", spec, "-o", &out]);
        assert_eq!(env.read_string(&out), *content, "{spec}");
    }
    // Default output: the file's name, in the current folder; never over a file.
    env.ok(&["model", "get", "churn:staging"]);
    assert_eq!(env.read_string("churn.pkl"), "v2");
    let out = env.fails(1, &["model", "get", "churn:staging"]);
    assert!(out.stderr.contains("already exists"), "{out}");

    // Demote and deprecate; every change stays in the history, with who, when and why.
    env.ok(&["model", "demote", "churn", "--stage", "staging", "-m", "staging is rebuilt"]);
    env.ok(&["model", "deprecate", "churn", "0.1.0", "-m", "leaks the label"]);
    let v = show(&env, "churn");
    assert_eq!(label(&v, "staging"), None);
    let history = v["history"].as_array().unwrap();
    let actions: Vec<&str> = history.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "register",
            "register",
            "register",
            "register",
            "promote",
            "promote",
            "promote",
            "promote",
            "demote",
            "deprecate"
        ]
    );
    for e in history {
        assert_eq!(e["who"], "Trove Tester <tester@example.com>", "{e}");
        assert!(e["when"].as_str().unwrap().starts_with("20"), "{e}");
    }
    assert_eq!(history[7]["note"], "v2 wins the A/B test");
    assert_eq!(history[9]["note"], "leaks the label");
    assert_eq!(v["versions"][0]["deprecated"], true);
    // The newest version not deprecated; a deprecated one is still there, with a warning.
    let out = env.ok(&["model", "get", "churn@0.1.0", "-o", "old.pkl"]);
    assert!(out.stderr.contains("deprecated"), "{out}");
    let out = env.ok(&["model", "list"]);
    assert!(out.stdout.contains("churn") && out.stdout.contains("prod=v0.2.0"), "{out}");
    let list = env.json(&["model", "list"]);
    assert_eq!(list[0]["name"], "churn");

    // It is all in annotated tags that plain git shows.
    let t = tags(&env);
    for want in ["churn@v0.1.0", "churn@v1.4.0", "churn@v0.1.0!"] {
        assert!(t.iter().any(|x| x == want), "{want} in {t:?}");
    }
    assert_eq!(t.iter().filter(|x| x.starts_with("churn#prod#")).count(), 2, "{t:?}");
    assert_eq!(t.iter().filter(|x| x.starts_with("churn#staging!#")).count(), 1, "{t:?}");
    let target = env.git_cmd(&["rev-parse", "churn@v0.1.0^{commit}"]);
    assert_eq!(target.trim(), head1);
    let message = env.git_cmd(&["tag", "-l", "-n1", "churn@v0.1.0"]);
    assert!(message.contains("trove model register churn v0.1.0: first baseline"), "{message}");
}

#[test]
fn register_from_an_experiment_keeps_its_metrics_and_data() {
    let (env, _store) = with_model();
    env.write("out/model.onnx", "onnx bytes");
    env.write("out/plot.png", "png");
    env.ok(&[
        "exp",
        "log",
        "--name",
        "run-7",
        "-p",
        "lr=0.01",
        "-m",
        "acc=0.93",
        "--artifact",
        "out/model.onnx",
        "--artifact",
        "out/plot.png",
    ]);
    let out = env.fails(1, &["model", "register", "churn", "--exp", "run-7"]);
    assert!(out.stderr.contains("several artifacts") && out.stderr.contains("out/model.onnx"), "{out}");
    let out = env.fails(1, &["model", "register", "churn", "--exp", "run-7", "--artifact", "nope.bin"]);
    assert!(out.stderr.contains("has no artifact"), "{out}");
    let r = env.json(&["model", "register", "churn", "--exp", "run-7", "--artifact", "out/model.onnx"]);
    assert_eq!(r["hash"], blake3_hex(b"onnx bytes"));
    assert_eq!(r["metrics"]["acc"], 0.93, "{r}");
    assert_eq!(r["params"]["lr"], 0.01, "{r}");
    let exp = env.json(&["exp", "show", "run-7"]);
    assert_eq!(r["exp"], exp["id"]);
    assert_eq!(r["commit"], exp["commit"]);
    let paths: Vec<&str> =
        r["data"].as_array().unwrap().iter().map(|d| d["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["data/train.csv", "models/churn.pkl"]);

    // A registration from a path links the experiment of that commit that made the object.
    env.write("models/churn.pkl", "onnx bytes");
    env.ok(&["add", "models/churn.pkl"]);
    env.git_cmd(&["commit", "-q", "-a", "-m", "promote the onnx"]);
    env.ok(&["exp", "log", "--name", "run-8", "-m", "acc=0.95", "--artifact", "models/churn.pkl"]);
    let r = env.json(&["model", "register", "churn", "models/churn.pkl"]);
    assert_eq!(r["metrics"]["acc"], 0.95, "{r}");
    let show = env.ok(&["model", "show", "churn"]);
    assert!(show.stdout.contains("acc=0.95") && show.stdout.contains("data/train.csv"), "{show}");
}

#[test]
fn bad_registrations_are_refused_and_change_nothing() {
    let (env, _store) = with_model();
    // Not committed, not tracked, modified since HEAD.
    env.write("models/new.pkl", "x");
    let out = env.fails(1, &["model", "register", "m", "models/new.pkl"]);
    assert!(out.stderr.contains("not tracked by trove"), "{out}");
    env.ok(&["add", "models/new.pkl"]);
    let out = env.fails(1, &["model", "register", "m", "models/new.pkl"]);
    assert!(out.stderr.contains("not committed"), "{out}");
    env.write("models/churn.pkl", "changed");
    env.ok(&["add", "models/churn.pkl"]);
    let out = env.fails(1, &["model", "register", "m", "models/churn.pkl"]);
    assert!(out.stderr.contains("differs from HEAD"), "{out}");
    env.git_cmd(&["commit", "-q", "-a", "-m", "both"]);

    for bad in ["a b", "x@y", "-m", "a:b", "a..b"] {
        let out = env.run(&["model", "register", bad, "models/churn.pkl"]);
        assert_ne!(out.code, 0, "{bad}: {out}");
    }
    let out = env.fails(2, &["model", "register", "m", "models/churn.pkl", "--version", "1.2"]);
    assert!(out.stderr.contains("not a version"), "{out}");
    env.ok(&["model", "register", "m", "models/churn.pkl", "--version", "1.0.0"]);
    let out = env.fails(1, &["model", "register", "m", "models/new.pkl", "--version", "v1.0.0"]);
    assert!(out.stderr.contains("already registered") && out.stderr.contains("never changes"), "{out}");
    let out = env.fails(2, &["model", "promote", "m", "1.0.0", "--stage", "v2.0.0"]);
    assert!(out.stderr.contains("cannot look like a version"), "{out}");
    let out = env.fails(1, &["model", "promote", "m", "9.9.9", "--stage", "prod"]);
    assert!(out.stderr.contains("has no version v9.9.9"), "{out}");
    let out = env.fails(1, &["model", "promote", "nope", "1.0.0", "--stage", "prod"]);
    assert!(out.stderr.contains("model nope is not registered"), "{out}");
    let out = env.fails(1, &["model", "demote", "m", "--stage", "prod"]);
    assert!(out.stderr.contains("prod is not set"), "{out}");
    let out = env.fails(1, &["model", "get", "m:prod"]);
    assert!(out.stderr.contains("no stage or alias \"prod\""), "{out}");
    let out = env.fails(1, &["model", "get", "other"]);
    assert!(out.stderr.contains("registered models: m"), "{out}");
    env.ok(&["model", "deprecate", "m"]);
    let out = env.fails(1, &["model", "register", "m", "models/new.pkl"]);
    assert!(out.stderr.contains("deprecated"), "{out}");
    let out = env.fails(1, &["model", "promote", "m", "1.0.0", "--stage", "prod"]);
    assert!(out.stderr.contains("deprecated"), "{out}");
    assert_eq!(versions(&show(&env, "m")), ["v1.0.0"]);
}

#[test]
fn processes_registering_at_once_get_distinct_versions() {
    let (env, _store) = with_model();
    let children: Vec<_> = (0..4)
        .map(|_| env.spawn_in(&env.root, &["model", "register", "churn", "models/churn.pkl"]))
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(versions(&show(&env, "churn")), ["v0.1.0", "v0.2.0", "v0.3.0", "v0.4.0"]);
    let children: Vec<_> = (0..4)
        .map(|i| {
            let v = format!("0.{}.0", i + 1);
            env.spawn_in(&env.root, &["model", "promote", "churn", &v, "--stage", "prod"])
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let v = show(&env, "churn");
    assert_eq!(v["history"].as_array().unwrap().len(), 8);
    // prod points at the version of the last promotion in the history.
    let last = v["history"].as_array().unwrap().last().unwrap()["version"].as_str().unwrap().to_string();
    assert_eq!(label(&v, "prod"), Some(last));
}

#[test]
fn two_clones_register_and_promote_at_once_and_share_through_a_bare_repository() {
    let (alice, store) = with_model();
    let bare = tempfile::Builder::new().prefix("trove-bare-").tempdir().unwrap();
    git_in(bare.path(), bare.path(), &["init", "-q", "--bare", "-b", "main"]);
    alice.git_cmd(&["branch", "-M", "main"]);
    alice.git_cmd(&["remote", "add", "origin", bare.path().to_str().unwrap()]);
    alice.ok(&["model", "register", "churn", "models/churn.pkl"]);
    alice.ok(&["push"]);
    alice.git_cmd(&["push", "-q", "origin", "main", "--tags"]);

    let bob = clone_repo(bare.path());
    // A fresh clone has the registry (tags come with the clone) and gets the model from
    // the data remote.
    bob.ok(&["model", "get", "churn", "-o", "got.pkl"]);
    assert_eq!(bob.read_string("got.pkl"), "v1");

    // At the same time: alice trains v2, registers it and makes it prod; bob registers
    // another model and puts churn v0.1.0 in staging and prod.
    retrain(&alice, "v2");
    alice.ok(&["model", "register", "churn", "models/churn.pkl"]);
    bob.write("models/fraud.pkl", "fraud v1");
    bob.ok(&["add", "models/fraud.pkl"]);
    bob.git_cmd(&["add", "-A"]);
    bob.git_cmd(&["commit", "-q", "-m", "fraud"]);
    bob.ok(&["model", "register", "fraud", "models/fraud.pkl"]);
    bob.ok(&["model", "promote", "churn", "0.1.0", "--stage", "prod"]);
    bob.ok(&["model", "promote", "churn", "0.1.0", "--stage", "staging"]);
    alice.ok(&["model", "promote", "churn", "0.2.0", "--stage", "prod"]);
    alice.ok(&["push"]);
    bob.ok(&["push"]);

    // Both push their tags: no conflict, nothing to merge.
    alice.git_cmd(&["push", "-q", "origin", "main", "--tags"]);
    git_in(&bob.root, &bob.home, &["pull", "-q", "--no-rebase", "origin", "main"]);
    git_in(&bob.root, &bob.home, &["push", "-q", "origin", "main", "--tags"]);
    git_in(&bob.root, &bob.home, &["fetch", "-q", "--tags", "origin"]);
    alice.git_cmd(&["fetch", "-q", "--tags", "origin"]);

    let (a, b) = (show(&alice, "churn"), show(&bob, "churn"));
    assert_eq!(versions(&a), ["v0.1.0", "v0.2.0"]);
    assert_eq!(a["history"], b["history"], "both clones see the same history");
    assert_eq!(a["labels"], b["labels"]);
    assert_eq!(a["history"].as_array().unwrap().len(), 5);
    // prod is where the last promotion put it (alice's came last).
    assert_eq!(label(&a, "prod").as_deref(), Some("v0.2.0"));
    assert_eq!(label(&a, "staging").as_deref(), Some("v0.1.0"));
    assert_eq!(versions(&show(&alice, "fraud")), ["v0.1.0"]);
    alice.ok(&["model", "get", "fraud", "-o", "fraud-got.pkl"]);
    assert_eq!(alice.read_string("fraud-got.pkl"), "fraud v1");

    // The one clash: the same version number claimed twice. git refuses the second tag;
    // the first stays.
    retrain(&alice, "v3a");
    alice.ok(&["model", "register", "churn", "models/churn.pkl"]);
    bob.write("models/churn.pkl", "v3b");
    bob.ok(&["add", "models/churn.pkl"]);
    bob.git_cmd(&["commit", "-q", "-a", "-m", "v3b"]);
    bob.ok(&["model", "register", "churn", "models/churn.pkl"]);
    alice.git_cmd(&["push", "-q", "origin", "refs/tags/churn@v0.3.0"]);
    let out = git_output(&bob.root, &bob.home, &["push", "origin", "refs/tags/churn@v0.3.0"]);
    assert!(!out.status.success(), "the second v0.3.0 is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"), "{out:?}");
    let in_bare = git_in(bare.path(), bare.path(), &["rev-parse", "churn@v0.3.0^{commit}"]);
    assert_eq!(in_bare.trim(), alice.git_cmd(&["rev-parse", "HEAD"]).trim());
    // Bob sees the clash when he fetches, and registers his model as the next version.
    let out = git_output(&bob.root, &bob.home, &["fetch", "origin", "--tags"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("churn@v0.3.0"), "{out:?}");
    git_in(&bob.root, &bob.home, &["tag", "-d", "churn@v0.3.0"]);
    git_in(&bob.root, &bob.home, &["fetch", "-q", "origin", "--tags"]);
    let r = bob.json(&["model", "register", "churn", "models/churn.pkl"]);
    assert_eq!(r["version"], "v0.4.0");
    git_in(&bob.root, &bob.home, &["push", "-q", "origin", "--tags"]);
    drop(store);
}

#[test]
fn registered_versions_survive_gc_and_reach_a_fresh_clone() {
    let (env, _store) = with_model();
    env.ok(&["model", "register", "churn", "models/churn.pkl"]);
    retrain(&env, "v2");
    // v1 is named by no pointer at HEAD, only by the registry: gc keeps it.
    env.ok(&["gc", "--workspace", "--force"]);
    assert!(env.object_path(&blake3_hex(b"v1")).exists(), "gc kept the registered version");
    // A whole push sends it: the fresh clone below has an empty cache.
    env.ok(&["push"]);
    let bare = tempfile::Builder::new().prefix("trove-bare-").tempdir().unwrap();
    git_in(bare.path(), bare.path(), &["init", "-q", "--bare", "-b", "main"]);
    env.git_cmd(&["push", "-q", bare.path().to_str().unwrap(), "HEAD:refs/heads/main", "--tags"]);
    let clone = clone_repo(bare.path());
    clone.ok(&["model", "get", "churn@0.1.0", "-o", "m.pkl"]);
    assert_eq!(fs::read(clone.path("m.pkl")).unwrap(), b"v1");
}

#[test]
fn model_get_repo_works_from_outside_any_clone() {
    let (reg, _store) = with_model();
    reg.ok(&["model", "register", "churn", "models/churn.pkl"]);
    retrain(&reg, "v2");
    reg.ok(&["model", "register", "churn", "models/churn.pkl"]);
    reg.ok(&["model", "promote", "churn", "0.1.0", "--stage", "prod"]);
    reg.ok(&["push"]);
    let url = format!("file://{}", reg.root.display());

    let deploy = Env::plain();
    let get = |args: &[&str]| deploy.run_in(&deploy.root, args);
    let out = get(&["--json", "model", "get", "churn:prod", "--repo", &url, "-o", "model.pkl"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.json()["version"], "v0.1.0");
    assert_eq!(fs::read(deploy.root.join("model.pkl")).unwrap(), b"v1");
    // The newest version, under its own name; nothing else is left behind.
    assert_eq!(get(&["model", "get", "churn", "--repo", &url]).code, 0);
    assert_eq!(fs::read(deploy.root.join("churn.pkl")).unwrap(), b"v2");
    assert_eq!(names_in(&deploy.root), ["churn.pkl", "model.pkl"]);

    // A promotion in the registry is seen by the next get (the mirror is fetched again).
    reg.ok(&["model", "promote", "churn", "0.2.0", "--stage", "prod"]);
    assert_eq!(get(&["model", "get", "churn:prod", "--repo", &url, "-o", "new.pkl"]).code, 0);
    assert_eq!(fs::read(deploy.root.join("new.pkl")).unwrap(), b"v2");

    // Errors name the repository, and write nothing.
    let out = get(&["model", "get", "fraud", "--repo", &url]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("model fraud is not registered") && out.stderr.contains(&url), "{out}");
    let out = get(&["model", "get", "churn:prod", "--repo", "file:///nowhere/at/all"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("/nowhere/at/all"), "{out}");
    let out = get(&["model", "get", "churn:prod", "--repo", &url, "-o", "model.pkl"]);
    assert!(out.code != 0 && out.stderr.contains("already exists"), "{out}");
    assert_eq!(names_in(&deploy.root), ["churn.pkl", "model.pkl", "new.pkl"]);
}

#[test]
fn model_get_repo_over_an_sftp_data_remote() {
    let server = crate::sshd::Sshd::start();
    let reg = Env::new();
    let root = server.data.join("models-store");
    reg.ok(&["remote", "add", "store", &server.url(&root), "--default"]);
    let login = server.login_settings("store");
    fs::write(reg.path(".trove/config.local"), &login).unwrap();
    reg.write("models/weights.bin", noise(400_000, 3));
    reg.ok(&["add", "models/weights.bin"]);
    reg.git_cmd(&["add", "-A"]);
    reg.git_cmd(&["commit", "-q", "-m", "weights"]);
    reg.ok(&["model", "register", "weights", "models/weights.bin"]);
    reg.ok(&["model", "promote", "weights", "0.1.0", "--alias", "champion"]);
    reg.ok(&["push"]);
    let url = format!("file://{}", reg.root.display());

    // A deploy machine: its login for the data server in ~/.ssh (as ssh itself reads it).
    let deploy = Env::plain();
    let ssh = deploy.home.join(".ssh");
    fs::create_dir_all(&ssh).unwrap();
    fs::copy(&server.known_hosts, ssh.join("known_hosts")).unwrap();
    let out = deploy.run_in(&deploy.root, &["model", "get", "weights@champion", "--repo", &url]);
    assert_eq!(out.code, 1, "no key for the server yet: {out}");
    assert!(out.stderr.contains("remote store of"), "{out}");
    assert!(names_in(&deploy.root).is_empty(), "nothing half-written");
    fs::write(ssh.join("config"), format!("Host 127.0.0.1\n  IdentityFile {}\n", server.key.display()))
        .unwrap();
    let out = deploy.run_in(&deploy.root, &["model", "get", "weights@champion", "--repo", &url]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(fs::read(deploy.root.join("weights.bin")).unwrap(), reg.read("models/weights.bin"));
}
