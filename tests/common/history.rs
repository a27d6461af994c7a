//! A repository with a history of data: three commits changing a dataset.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use super::*;

/// Three commits changing `data/` and `model.bin` (add files; modify one and retrain;
/// delete one), optionally pushed to a folder remote after each commit, plus one object
/// no commit uses (`scratch.bin`, added then no longer tracked).
pub struct History {
    pub env: Env,
    pub remote: Option<tempfile::TempDir>,
    pub commits: Vec<String>,
    pub contents: Vec<BTreeMap<String, Vec<u8>>>,
    /// The id of an object that no commit uses.
    pub scratch: String,
    pub branch: String,
}

impl History {
    /// The folder remote's root.
    pub fn store(&self) -> PathBuf {
        self.remote.as_ref().expect("a remote").path().join("store")
    }

    pub fn remote_objects(&self) -> PathBuf {
        self.store().join("objects")
    }
}

/// Which data remote the history has.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum DataRemote {
    None,
    /// Configured (and committed), nothing pushed.
    Configured,
    /// Configured, and pushed to after each commit.
    PushedEachCommit,
}

pub fn snapshot(env: &Env) -> BTreeMap<String, Vec<u8>> {
    let mut files = Vec::new();
    walk(&env.path("data"), &mut files);
    let mut out: BTreeMap<String, Vec<u8>> = files
        .into_iter()
        .map(|f| (f.strip_prefix(&env.root).unwrap().to_str().unwrap().to_string(), fs::read(&f).unwrap()))
        .collect();
    out.insert("model.bin".into(), env.read("model.bin"));
    out
}

pub fn head(env: &Env) -> String {
    env.git_cmd(&["rev-parse", "HEAD"]).trim().to_string()
}

pub fn three_commits(mode: DataRemote) -> History {
    let env = Env::new();
    let remote = (mode != DataRemote::None)
        .then(|| tempfile::Builder::new().prefix("trove-history-remote-").tempdir().unwrap());
    if let Some(r) = &remote {
        env.ok(&["remote", "add", "store", r.path().join("store").to_str().unwrap(), "--default"]);
        // These tests look at the remote's object files: layout 1 (one file per object).
        env.ok(&["remote", "set", "store", "layout", "1"]);
    }
    let push = |env: &Env| {
        if mode == DataRemote::PushedEachCommit {
            env.ok(&["push"]);
        }
    };
    let mut commits = Vec::new();
    let mut contents = Vec::new();

    // 1: three files and a model.
    env.write("data/a.csv", "a,1\n");
    env.write("data/b.csv", "b,1\n");
    env.write("data/sub/c.bin", noise(3000, 1));
    env.write("model.bin", noise(5000, 2));
    env.ok(&["add", "data", "model.bin"]);
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", "one"]);
    commits.push(head(&env));
    contents.push(snapshot(&env));
    push(&env);

    // An object no commit and no pointer names.
    let scratch = noise(700, 9);
    env.write("scratch.bin", &scratch);
    env.ok(&["add", "scratch.bin"]);
    env.ok(&["remove", "scratch.bin"]);
    fs::remove_file(env.path("scratch.bin")).unwrap();

    // 2: add a file, modify one, retrain the model.
    env.write("data/d.csv", "d,2\n");
    env.ok(&["unprotect", "data"]);
    env.write("data/b.csv", "b,2 changed\n");
    env.ok(&["unprotect", "model.bin"]);
    env.write("model.bin", noise(5000, 3));
    env.ok(&["commit", "-m", "two"]);
    commits.push(head(&env));
    contents.push(snapshot(&env));
    push(&env);

    // 3: delete a file.
    fs::remove_file(env.path("data/a.csv")).unwrap();
    env.ok(&["commit", "-m", "three"]);
    commits.push(head(&env));
    contents.push(snapshot(&env));
    push(&env);
    let branch = env.git_cmd(&["rev-parse", "--abbrev-ref", "HEAD"]).trim().to_string();
    History { env, remote, commits, contents, scratch: blake3_hex(&scratch), branch }
}
