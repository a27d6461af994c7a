//! Sharing records through a git remote (`exp push` / `exp pull`) and re-creating a
//! baseline from them (`exp checkout`).

use std::fs;
use std::process::Command;

use serde_json::Value;

use crate::common::*;

/// A bare repository to share through, and a first clone with trove, a data remote and
/// one commit pushed.
struct Team {
    bare: tempfile::TempDir,
    store: tempfile::TempDir,
    alice: Env,
}

fn team() -> Team {
    let bare = tempfile::Builder::new().prefix("trove-bare-").tempdir().unwrap();
    git_in(bare.path(), bare.path(), &["init", "-q", "--bare", "-b", "main"]);
    let store = tempfile::Builder::new().prefix("trove-store-").tempdir().unwrap();
    let alice = Env::new();
    alice.ok(&["remote", "add", "store", store.path().to_str().unwrap()]);
    alice.write("train.py", "print('training')\n");
    alice.write("requirements.txt", "numpy==2.0\n");
    alice.git_cmd(&["add", "-A"]);
    alice.git_cmd(&["commit", "-q", "-m", "code"]);
    alice.git_cmd(&["branch", "-M", "main"]);
    alice.git_cmd(&["remote", "add", "origin", bare.path().to_str().unwrap()]);
    alice.git_cmd(&["push", "-q", "origin", "main"]);
    Team { bare, store, alice }
}

fn names(env: &Env) -> Vec<String> {
    let v = env.json(&["exp", "list"]);
    let list =
        v.as_array().cloned().or_else(|| v["records"].as_array().cloned()).unwrap_or_else(|| panic!("{v}"));
    let mut out: Vec<String> = list.iter().map(|r| r["name"].as_str().unwrap().to_string()).collect();
    out.sort();
    out
}

fn bare_records(t: &Team) -> usize {
    let out = git_in(t.bare.path(), t.bare.path(), &["ls-tree", "--name-only", "refs/trove/exps", "runs/"]);
    out.lines().count()
}

#[test]
fn two_clones_share_records_through_a_bare_repository_without_conflict() {
    let t = team();
    let alice = &t.alice;
    alice.ok(&["exp", "log", "--name", "a1", "-m", "acc=0.7"]);
    alice.ok(&["exp", "log", "--name", "a2", "-m", "acc=0.8"]);
    let v = alice.json(&["exp", "push"]);
    assert_eq!(v["pushed"], true, "{v}");
    assert_eq!(bare_records(&t), 2);

    let bob = clone_repo(t.bare.path());
    bob.ok(&["init"]);
    let v = bob.json(&["exp", "pull"]);
    assert_eq!(v["received"], 2, "{v}");
    assert_eq!(names(&bob), ["a1", "a2"]);

    // Both log at the same time, then both push: the second push merges first.
    bob.ok(&["exp", "log", "--name", "b1", "-m", "acc=0.75"]);
    alice.ok(&["exp", "log", "--name", "a3", "-m", "acc=0.9"]);
    alice.ok(&["exp", "push"]);
    let v = bob.json(&["exp", "push"]);
    assert_eq!(v["received"], 1, "bob's push brought in alice's new record first: {v}");
    assert_eq!(bare_records(&t), 4);
    alice.ok(&["exp", "pull", "origin"]);
    assert_eq!(names(alice), ["a1", "a2", "a3", "b1"]);
    assert_eq!(names(&bob), ["a1", "a2", "a3", "b1"]);
    // Pulling again changes nothing.
    assert_eq!(alice.json(&["exp", "pull"])["received"], 0);

    let out = alice.fails(2, &["exp", "push", "nowhere"]);
    assert!(out.stderr.contains("nowhere"), "{out}");
}

fn tree_files(env: &Env, rel: &str) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    walk(&env.path(rel), &mut files);
    let mut out: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| (f.strip_prefix(&env.root).unwrap().to_str().unwrap().to_string(), fs::read(f).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn exp_checkout_recreates_a_baseline_in_a_fresh_clone() {
    let t = team();
    let alice = &t.alice;
    // v1 of the data: the baseline run.
    for i in 0..30u64 {
        alice.write(&format!("data/s{i:02}.bin"), noise(3000, i));
    }
    alice.ok(&["add", "data"]);
    alice.git_cmd(&["add", "-A"]);
    alice.git_cmd(&["commit", "-q", "-m", "data v1"]);
    alice.ok(&["push"]);
    alice.write("model.pt", noise(10_000, 77));
    alice.ok(&[
        "exp",
        "log",
        "--name",
        "baseline",
        "-p",
        "lr=0.01",
        "-m",
        "acc=0.81",
        "--artifact",
        "model.pt",
    ]);
    let v1 = tree_files(alice, "data");
    let model = alice.read("model.pt");
    fs::remove_file(alice.path("model.pt")).unwrap();

    // v2, on a branch that is then deleted: the record keeps its commit reachable.
    alice.git_cmd(&["checkout", "-q", "-b", "try-v2"]);
    alice.write("data/s00.bin", "changed");
    alice.write("data/new.bin", "new");
    alice.ok(&["commit", "-m", "data v2"]);
    alice.ok(&["push"]);
    alice.ok(&["exp", "log", "--name", "v2", "-m", "acc=0.7"]);
    let v2 = tree_files(alice, "data");
    alice.git_cmd(&["checkout", "-q", "main"]);
    alice.ok(&["checkout"]);
    alice.git_cmd(&["branch", "-q", "-D", "try-v2"]);
    alice.git_cmd(&["push", "-q", "origin", "main"]);
    alice.ok(&["push"]);
    alice.ok(&["exp", "push"]);

    // A fresh clone: records, commits and data all come from the shared places.
    let carol = clone_repo(t.bare.path());
    carol.ok(&["exp", "pull"]);
    let v = carol.json(&["exp", "checkout", "baseline"]);
    assert_eq!(v["branch"], "exp/baseline", "{v}");
    assert!(v["fetched"].as_u64().unwrap() > 0, "{v}");
    assert!(v["verified"].as_u64().unwrap() >= 30, "{v}");
    assert_eq!(tree_files(&carol, "data"), v1, "baseline data is byte-identical");
    assert_eq!(carol.read("model.pt"), model, "the artifact is restored");
    assert_eq!(carol.git_cmd(&["rev-parse", "--abbrev-ref", "HEAD"]).trim(), "exp/baseline");

    // The deleted branch's run, by its name, on a branch of our choosing.
    fs::remove_file(carol.path("model.pt")).unwrap();
    let v = carol.json(&["exp", "checkout", "v2", "-b", "again-v2"]);
    assert_eq!(v["branch"], "again-v2");
    assert_eq!(tree_files(&carol, "data"), v2);

    // Refusals: an existing branch elsewhere, uncommitted changes.
    let out = carol.fails(2, &["exp", "checkout", "baseline", "-b", "again-v2"]);
    assert!(out.stderr.contains("again-v2"), "{out}");
    carol.write("train.py", "print('edited')\n");
    let out = carol.fails(1, &["exp", "checkout", "baseline", "-b", "third"]);
    assert!(out.stderr.contains("uncommitted") && out.stderr.contains("train.py"), "{out}");
    carol.git_cmd(&["checkout", "--", "train.py"]);
    // --no-data moves the code only.
    let v: Value = carol.json(&["exp", "checkout", "baseline", "-b", "code-only", "--no-data"]);
    assert_eq!(v["placed"], 0, "{v}");
    let out = carol.fails(1, &["exp", "checkout", "no-such-run"]);
    assert!(out.stderr.contains("no-such-run"), "{out}");
    let _ = &t.store;
}

/// A record of a run whose artifact lives in a git-ignored folder, shared through `t`.
fn record_with_ignored_artifact(t: &Team) -> Vec<u8> {
    let alice = &t.alice;
    alice.write(".gitignore", "/models/\n");
    alice.git_cmd(&["add", ".gitignore"]);
    alice.git_cmd(&["commit", "-q", "-m", "models are not code"]);
    alice.git_cmd(&["push", "-q", "origin", "main"]);
    alice.write("models/best/model.pt", noise(5000, 11));
    alice.ok(&["exp", "log", "--name", "base", "--artifact", "models/best/model.pt"]);
    alice.ok(&["exp", "push"]);
    alice.read("models/best/model.pt")
}

fn head_and_branches(env: &Env) -> (String, String) {
    (env.git_cmd(&["rev-parse", "--abbrev-ref", "HEAD"]), env.git_cmd(&["branch", "--list"]))
}

#[test]
fn exp_checkout_creates_the_folder_of_an_ignored_artifact() {
    let t = team();
    let model = record_with_ignored_artifact(&t);
    t.alice.ok(&["push"]);
    let carol = clone_repo(t.bare.path());
    carol.ok(&["exp", "pull"]);
    assert!(!carol.exists("models"), "the clone has no models folder");
    let v = carol.json(&["exp", "checkout", "base"]);
    assert_eq!(v["branch"], "exp/base", "{v}");
    assert_eq!(carol.read("models/best/model.pt"), model);
    assert_eq!(carol.git_cmd(&["rev-parse", "--abbrev-ref", "HEAD"]).trim(), "exp/base");
}

#[test]
fn a_failed_exp_checkout_leaves_head_and_branches_as_they_were() {
    let t = team();
    record_with_ignored_artifact(&t);
    // The artifact was never pushed: no remote can supply it.
    let carol = clone_repo(t.bare.path());
    carol.ok(&["exp", "pull"]);
    let before = head_and_branches(&carol);
    let out = carol.fails(1, &["exp", "checkout", "base"]);
    assert!(out.stderr.contains("cannot supply"), "{out}");
    assert_eq!(head_and_branches(&carol), before, "no branch made, HEAD not moved");
    assert!(!carol.exists("models"));

    // An existing branch elsewhere is refused before anything moves too.
    carol.git_cmd(&["commit", "-q", "--allow-empty", "-m", "elsewhere"]);
    carol.git_cmd(&["branch", "taken", "HEAD"]);
    carol.git_cmd(&["reset", "-q", "--hard", "HEAD~"]);
    let before = head_and_branches(&carol);
    carol.fails(2, &["exp", "checkout", "base", "-b", "taken"]);
    assert_eq!(head_and_branches(&carol), before);
}

#[test]
fn exp_checkout_over_an_edited_artifact_offers_its_own_force() {
    let t = team();
    let model = record_with_ignored_artifact(&t);
    t.alice.ok(&["push"]);
    let carol = clone_repo(t.bare.path());
    carol.ok(&["exp", "pull"]);
    let before = head_and_branches(&carol);
    // Unsaved changes to the artifact in the way: refused before anything moves, with a
    // hint that names the command that can discard them.
    carol.write("models/best/model.pt", "my own edit");
    let out = carol.fails(1, &["exp", "checkout", "base"]);
    assert!(out.stderr.contains("unsaved") && out.stderr.contains("models/best/model.pt"), "{out}");
    assert!(out.stderr.contains("trove exp checkout base --force"), "{out}");
    assert!(!out.stderr.contains("`trove checkout --force`"), "{out}");
    assert_eq!(head_and_branches(&carol), before);
    assert_eq!(carol.read("models/best/model.pt"), b"my own edit");

    // --force discards the edit and restores the recorded artifact.
    let v = carol.json(&["exp", "checkout", "base", "--force"]);
    assert_eq!(v["branch"], "exp/base", "{v}");
    assert_eq!(carol.read("models/best/model.pt"), model);
}

#[test]
fn a_removed_record_stays_removed_when_records_are_merged() {
    let t = team();
    let alice = &t.alice;
    alice.ok(&["exp", "log", "--name", "a1", "-m", "acc=0.7"]);
    alice.ok(&["exp", "log", "--name", "a2", "-m", "acc=0.8"]);
    alice.ok(&["exp", "push"]);
    let bob = clone_repo(t.bare.path());
    bob.ok(&["exp", "pull"]);

    // Bob removes a1 while alice logs more: pulling her records does not bring it back.
    bob.ok(&["exp", "remove", "a1"]);
    alice.ok(&["exp", "log", "--name", "a3", "-m", "acc=0.9"]);
    alice.ok(&["exp", "push"]);
    let v = bob.json(&["exp", "pull"]);
    assert_eq!(v["received"], 1, "{v}");
    assert_eq!(names(&bob), ["a2", "a3"]);

    // Bob shares the removal; alice, who logged meanwhile, loses a1 on her next pull.
    bob.ok(&["exp", "push"]);
    alice.ok(&["exp", "log", "--name", "a4", "-m", "acc=0.95"]);
    alice.ok(&["exp", "pull"]);
    assert_eq!(names(alice), ["a2", "a3", "a4"]);
    alice.ok(&["exp", "push"]);
    bob.ok(&["exp", "pull"]);
    assert_eq!(names(&bob), ["a2", "a3", "a4"]);
}

/// An HTTPS server on 127.0.0.1 with a throwaway self-signed certificate, answering 404 to
/// everything: enough for a git client to get through (or fail) the TLS handshake.
struct HttpsServer {
    child: std::process::Child,
    port: u16,
    cert: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl HttpsServer {
    fn start() -> HttpsServer {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("run openssl (Debian package openssl)");
        assert!(made.status.success(), "openssl req: {}", String::from_utf8_lossy(&made.stderr));
        let script = "import http.server, ssl, sys\n\
            class H(http.server.BaseHTTPRequestHandler):\n    \
                def do_GET(self): self.send_error(404)\n    \
                def log_message(self, *a): pass\n\
            s = http.server.HTTPServer(('127.0.0.1', 0), H)\n\
            c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain(sys.argv[1], sys.argv[2])\n\
            s.socket = c.wrap_socket(s.socket, server_side=True)\n\
            print(s.server_address[1], flush=True)\n\
            s.serve_forever()\n";
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&cert)
            .arg(&key)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the server printed {line:?}"));
        HttpsServer { child, port, cert, _dir: dir }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// libgit2 starts without the CA certificates (parsing them cost every command 25–60 ms);
/// trove loads them before an https transfer, from SSL_CERT_FILE or the system's places.
#[test]
fn an_https_git_remote_is_checked_against_the_certificates_loaded_for_it() {
    let server = HttpsServer::start();
    let env = Env::new();
    env.git_cmd(&["remote", "add", "origin", &format!("https://127.0.0.1:{}/records.git", server.port)]);
    // The system's certificates do not vouch for the throwaway one: refused.
    let out = env.fails(1, &["exp", "pull"]);
    assert!(out.stderr.contains("certificate"), "{out}");
    // Trusted through SSL_CERT_FILE, the handshake succeeds and the server's answer shows.
    let cert = server.cert.to_str().unwrap();
    let out = run_with(&env, &env.root, &["exp", "pull"], &[("SSL_CERT_FILE", cert)]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("404") && !out.stderr.contains("certificate"), "{out}");
}
