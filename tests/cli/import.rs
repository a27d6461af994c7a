//! Data from other repositories: `trove get --repo`, `trove import`, `trove update`, and
//! imported pointers in `pull`, `push`, `status --imports` and `gc`, over real git
//! repositories and real folder and SFTP remotes.

use std::fs;
use std::path::Path;

use crate::common::*;
use crate::sshd::Sshd;

/// A registry: a trove repository whose default remote is a folder beside it, holding
/// `data/images/` (two files) and `data/labels.csv`, committed and pushed.
struct Registry {
    env: Env,
}

impl Registry {
    fn new() -> Registry {
        let env = Env::new();
        let store = env.outside().join("store");
        fs::create_dir_all(&store).unwrap();
        env.ok(&["remote", "add", "store", store.to_str().unwrap(), "--default"]);
        env.write("data/images/a.png", b"image a v1");
        env.write("data/images/b.png", b"image b v1");
        env.write("data/labels.csv", b"a,cat\nb,dog\n");
        env.ok(&["add", "data/images", "data/labels.csv"]);
        let reg = Registry { env };
        reg.commit("datasets v1");
        reg.env.ok(&["push"]);
        reg
    }

    fn url(&self) -> String {
        format!("file://{}", self.env.root.display())
    }

    fn commit(&self, message: &str) {
        self.env.git_cmd(&["add", "-A"]);
        self.env.git_cmd(&["commit", "-q", "-m", message]);
    }

    /// A new version of the images (b.png changed, c.png added), committed and pushed.
    fn move_on(&self) {
        self.env.write("data/images/b.png", b"image b v2");
        self.env.write("data/images/c.png", b"image c v2");
        self.env.ok(&["add", "data/images"]);
        self.commit("datasets v2");
        self.env.ok(&["push"]);
    }

    fn store(&self) -> std::path::PathBuf {
        self.env.outside().join("store")
    }
}

fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all = Vec::new();
    walk(dir, &mut all);
    let mut out: Vec<(String, Vec<u8>)> = all
        .iter()
        .map(|p| (p.strip_prefix(dir).unwrap().to_string_lossy().into_owned(), fs::read(p).unwrap()))
        .collect();
    out.sort();
    out
}

/// A user's project: a trove repository with a git commit, so clones of it work.
fn project() -> Env {
    let env = Env::new();
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", "start"]);
    env
}

#[test]
fn get_repo_from_outside_any_repository() {
    let reg = Registry::new();
    let user = Env::plain();
    let out = user.run_in(&user.root, &["--json", "get", "--repo", &reg.url(), "data/images"]).ok();
    let doc = out.json();
    assert_eq!(doc["files"], 2);
    assert_eq!(doc["path"], "data/images");
    assert_eq!(files_of(&user.root.join("images")), files_of(&reg.env.path("data/images")));
    // A file, to a chosen place; the temporary cache is gone.
    user.run_in(&user.root, &["get", "--repo", &reg.url(), "data/labels.csv", "-o", "l.csv"]).ok();
    assert_eq!(fs::read(user.root.join("l.csv")).unwrap(), b"a,cat\nb,dog\n");
    assert_eq!(names_in(&user.root), vec!["images", "l.csv"]);
    let leftovers: Vec<String> =
        names_in(&user.outside()).into_iter().filter(|n| n.starts_with("trove-get-")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // An existing OUT is refused, and left alone.
    let err = user.run_in(&user.root, &["get", "--repo", &reg.url(), "data/labels.csv", "-o", "l.csv"]);
    assert_eq!(err.code, 1, "{err}");
    assert!(err.stderr.contains("l.csv: already exists"), "{err}");
    // The mirror lives in the user's cache folder.
    assert_eq!(names_in(&user.home.join(".cache/trove/repos")).len(), 2, "a mirror and its lock");
}

#[test]
fn import_then_pull_in_a_fresh_clone() {
    let reg = Registry::new();
    let user = project();
    let doc = user.json(&["import", "--repo", &reg.url(), "data/images"]);
    assert_eq!(doc["imported"]["path"], "images");
    assert_eq!(doc["imported"]["source"]["path"], "data/images");
    assert_eq!(files_of(&user.path("images")), files_of(&reg.env.path("data/images")));
    // The pointer records the source; it is staged, and the data ignored, as `add` does.
    let text = user.read_string("images.trove");
    let commit = reg.env.git_cmd(&["rev-parse", "HEAD"]);
    assert!(
        text.contains(&format!(
            "source:\n  repo: {}\n  path: data/images\n  commit: {}",
            reg.url(),
            commit.trim()
        )),
        "{text}"
    );
    assert_eq!(user.index_blob("images.trove").unwrap(), text.as_bytes());
    assert!(user.is_git_ignored("images"));
    assert_eq!(user.ok(&["status"]).stdout, "images: unchanged\n");
    // Importing over it again is refused.
    let again = user.fails(1, &["import", "--repo", &reg.url(), "data/images"]);
    assert!(again.stderr.contains("images.trove: already exists"), "{again}");
    user.git_cmd(&["commit", "-q", "-m", "import images"]);
    // The project has no remote: push sends nothing (imported data stays in the source).
    assert!(user.ok(&["push"]).stdout.contains("nothing to push"));
    // gc keeps what an imported pointer names.
    user.ok(&["gc", "--force"]);
    assert_eq!(user.ok(&["status"]).stdout, "images: unchanged\n");

    let clone = clone_repo(&user.root);
    clone.ok(&["init"]);
    assert!(!clone.exists("images"));
    let pulled = clone.json(&["pull"]);
    assert_eq!(pulled["imports"].as_array().unwrap().len(), 1, "{pulled}");
    assert_eq!(files_of(&clone.path("images")), files_of(&reg.env.path("data/images")));
    assert_eq!(clone.ok(&["status"]).stdout, "images: unchanged\n");

    // `get --rev` of an imported pointer, with an empty cache, fetches from its source too.
    let other = clone_repo(&user.root);
    other.ok(&["init"]);
    other.ok(&["get", "images", "--rev", "HEAD", "-o", "copy"]);
    assert_eq!(files_of(&other.path("copy")), files_of(&reg.env.path("data/images")));
}

#[test]
fn source_moves_on_then_update_follows_it() {
    let reg = Registry::new();
    reg.env.git_cmd(&["tag", "v1"]);
    let user = project();
    user.ok(&["import", "--repo", &reg.url(), "data/images", "-o", "imgs"]);
    let v1 = files_of(&user.path("imgs"));
    assert_eq!(
        user.ok(&["status", "--imports"]).stdout,
        format!("imgs: up to date with its default branch of {}\n", reg.url())
    );
    assert_eq!(
        user.ok(&["update"]).stdout,
        format!(
            "imgs: up to date with {} at {}\n",
            reg.url(),
            &reg.env.git_cmd(&["rev-parse", "HEAD"])[..10]
        )
    );

    reg.move_on();
    // Plain status stays offline: the workspace matches the pointer.
    assert_eq!(user.ok(&["status"]).stdout, "imgs: unchanged\n");
    let checked = user.json(&["status", "--imports"]);
    assert_eq!(checked["imports"][0]["moved"], true, "{checked}");
    let shown = user.ok(&["status", "--imports"]).stdout;
    assert!(shown.starts_with("imgs: source moved on: its default branch of "), "{shown}");

    let updated = user.ok(&["update", "imgs"]).stdout;
    assert!(updated.starts_with("imgs: updated "), "{updated}");
    assert_eq!(files_of(&user.path("imgs")), files_of(&reg.env.path("data/images")));
    let pointer = user.read_string("imgs.trove");
    assert!(pointer.contains(reg.env.git_cmd(&["rev-parse", "HEAD"]).trim()), "{pointer}");
    assert_eq!(user.index_blob("imgs.trove").unwrap(), pointer.as_bytes());
    assert_eq!(user.json(&["update"])["updated"][0]["changed"], false);
    assert_eq!(user.json(&["status", "--imports"])["imports"][0]["moved"], false);

    // Back to the tag: the pointer follows v1 from now on.
    let back = user.json(&["update", "imgs", "--rev", "v1"]);
    assert_eq!(back["updated"][0]["changed"], true, "{back}");
    assert_eq!(back["updated"][0]["rev"], "v1");
    assert_eq!(files_of(&user.path("imgs")), v1);
    assert!(user.read_string("imgs.trove").contains("  rev: v1\n"));
    assert_eq!(user.ok(&["status"]).stdout, "imgs: unchanged\n");
}

#[test]
fn an_unreachable_source_remote_writes_nothing() {
    let reg = Registry::new();
    fs::rename(reg.store(), reg.env.outside().join("moved-away")).unwrap();
    let user = Env::plain();
    let out = user.run_in(&user.root, &["get", "--repo", &reg.url(), "data/images"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains(&format!("remote store of {}", reg.url())), "{out}");
    assert!(names_in(&user.root).is_empty(), "{:?}", names_in(&user.root));

    let project = project();
    let before = project.index_paths();
    let out = project.run(&["import", "--repo", &reg.url(), "data/labels.csv"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("remote store of"), "{out}");
    assert!(!project.exists("labels.csv") && !project.exists("labels.csv.trove"));
    assert!(!project.exists(".gitignore"));
    assert_eq!(project.index_paths(), before);
}

#[test]
fn untracked_paths_and_unreachable_repositories_are_named() {
    let reg = Registry::new();
    let user = Env::plain();
    let out = user.run_in(&user.root, &["get", "--repo", &reg.url(), "data/nope"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("data/nope: is not tracked by trove at commit"), "{out}");
    assert!(out.stderr.contains("tracked there: data/images, data/labels.csv"), "{out}");
    let gone = user.outside().join("no-such-repo");
    let out = user.run_in(&user.root, &["get", "--repo", &format!("file://{}", gone.display()), "x"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("no-such-repo: no such git repository"), "{out}");
    let not_git = user.outside().join("plain-folder");
    fs::create_dir(&not_git).unwrap();
    let out = user.run_in(&user.root, &["get", "--repo", not_git.to_str().unwrap(), "x"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("cannot fetch from this git repository"), "{out}");
    // A relative path names the repository from the current folder.
    let rel = format!("../../{}/repo", reg.env.outside().file_name().unwrap().to_string_lossy());
    user.run_in(&user.root, &["get", "--repo", &rel, "data/labels.csv", "--rev", "HEAD"]).ok();
    assert_eq!(fs::read(user.root.join("labels.csv")).unwrap(), b"a,cat\nb,dog\n");
    assert!(names_in(&user.root).iter().all(|n| n == "labels.csv"));
}

#[test]
fn an_sftp_source_remote_with_the_importers_credentials() {
    let server = Sshd::start();
    let reg = Env::new();
    let root = server.data.join("registry-store");
    reg.ok(&["remote", "add", "store", &server.url(&root), "--default"]);
    // The registry's maintainer and the importer each keep the login in config.local.
    let login = server.login_settings("store");
    fs::write(reg.path(".trove/config.local"), &login).unwrap();
    reg.write("models/weights.bin", noise(300_000, 7));
    reg.ok(&["add", "models/weights.bin"]);
    reg.git_cmd(&["add", "-A"]);
    reg.git_cmd(&["commit", "-q", "-m", "weights"]);
    reg.ok(&["push"]);
    let url = format!("file://{}", reg.root.display());

    let user = project();
    // Without this machine's login settings the remote refuses, naming it.
    let out = user.run(&["import", "--repo", &url, "models/weights.bin"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains(&format!("remote store of {url}")), "{out}");
    assert!(!user.exists("weights.bin") && !user.exists("weights.bin.trove"));
    fs::write(user.path(".trove/config.local"), &login).unwrap();
    user.ok(&["import", "--repo", &url, "models/weights.bin"]);
    assert_eq!(user.read("weights.bin"), reg.read("models/weights.bin"));
    // And from outside a repository, with the environment's settings only: refused,
    // since no keyfile is known there (the agent is not running in tests).
    let outside = Env::plain();
    let out = outside.run_in(&outside.root, &["get", "--repo", &url, "models/weights.bin"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(names_in(&outside.root).is_empty());
}

#[test]
fn two_gets_at_once_share_one_mirror() {
    let reg = Registry::new();
    let user = Env::plain();
    let url = reg.url();
    let children: Vec<_> = ["one", "two", "three"]
        .iter()
        .map(|out| user.spawn_in(&user.root, &["get", "--repo", &url, "data/images", "-o", out]))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    for out in ["one", "two", "three"] {
        assert_eq!(files_of(&user.root.join(out)), files_of(&reg.env.path("data/images")));
    }
    assert_eq!(names_in(&user.home.join(".cache/trove/repos")).len(), 2, "a mirror and its lock");
}

#[test]
fn a_malformed_source_is_named_with_its_file_and_line() {
    let reg = Registry::new();
    let user = project();
    user.ok(&["import", "--repo", &reg.url(), "data/labels.csv"]);
    let text = user.read_string("labels.csv.trove");
    user.write(
        "labels.csv.trove",
        text.replace("  path: data/labels.csv\n", "  path: data/labels.csv\n  branch: x\n"),
    );
    let out = user.fails(1, &["status"]);
    assert!(out.stdout.contains("labels.csv.trove: error: line 10: unknown field `source.branch`"), "{out}");
    user.write("labels.csv.trove", text.replace("commit: ", "commit: x"));
    let out = user.fails(1, &["pull"]);
    assert!(out.stderr.contains("labels.csv.trove:10: `source.commit: x"), "{out}");
}
