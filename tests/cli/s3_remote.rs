//! S3 remotes beyond the shared suite (which remotes.rs, layout2.rs and prune.rs run on
//! s3s-fs too): where the keys come from and what a wrong one says, clock skew, an
//! unreachable endpoint, multipart uploads, the requests of a no-op push, HTTPS with a
//! private CA, and a 3-node Garage cluster losing a node in the middle of a push.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::remotes::{assert_same_tree, commit_all, configure_s3};
use crate::s3::{ACCESS_KEY, S3Server, SECRET_KEY};

/// A repository with `a.txt` added and remote `store` at `server` (no keys set).
fn repo_with_remote(server: &S3Server) -> Env {
    let env = Env::new();
    env.write("a.txt", "a");
    env.ok(&["add", "a.txt"]);
    env.ok(&["remote", "add", "store", &server.url(&server.bucket_dir().join("store")), "--default"]);
    configure_s3(&env, "store", server);
    env
}

/// No credentials file: only the variables given (and the remote's settings) count.
const NO_FILE: (&str, &str) = ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials");

fn never_shown(out: &Out, secret: &str) {
    assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret), "the secret is printed:\n{out}");
}

#[test]
fn keys_come_from_the_environment_then_a_profile_then_config_local() {
    let server = S3Server::start();
    let env = repo_with_remote(&server);

    // None anywhere: a usage-like error saying every place keys can come from.
    let out = run_with(&env, &env.root, &["push"], &[NO_FILE]);
    assert_eq!(out.code, 1, "{out}");
    for place in ["AWS_ACCESS_KEY_ID", "~/.aws/credentials", "secret_access_key … --local"] {
        assert!(out.stderr.contains(place), "{place}: {out}");
    }

    // config.local: the secret is refused in the committed config and never shown.
    let out = env.fails(2, &["remote", "set", "store", "secret_access_key", SECRET_KEY]);
    never_shown(&out, SECRET_KEY);
    env.ok(&["remote", "set", "store", "access_key_id", ACCESS_KEY]);
    never_shown(&env.ok(&["remote", "set", "store", "secret_access_key", SECRET_KEY, "--local"]), SECRET_KEY);
    assert!(!env.read_string(".trove/config").contains(SECRET_KEY));
    let listed = env.ok(&["-v", "remote", "list"]);
    never_shown(&listed, SECRET_KEY);
    assert!(listed.stdout.contains("secret_access_key: (set)"), "{listed}");
    let out = run_with(&env, &env.root, &["push"], &[NO_FILE]);
    assert_eq!(out.code, 0, "{out}\n{}", server.log_text());

    // The environment comes first: a wrong secret there is used, named, and not shown.
    let wrong = "wrong-secret-value-42";
    let out = run_with(
        &env,
        &env.root,
        &["push"],
        &[NO_FILE, ("AWS_ACCESS_KEY_ID", ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", wrong)],
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("SignatureDoesNotMatch"), "{out}");
    assert!(out.stderr.contains("AWS_SECRET_ACCESS_KEY"), "the source is named: {out}");
    never_shown(&out, wrong);
    never_shown(&out, SECRET_KEY);
    // An access key the server does not know.
    let out = run_with(
        &env,
        &env.root,
        &["push"],
        &[NO_FILE, ("AWS_ACCESS_KEY_ID", "NOSUCHKEY"), ("AWS_SECRET_ACCESS_KEY", wrong)],
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("does not know the access key `NOSUCHKEY`"), "{out}");

    // Then the shared credentials file, under the `profile` setting, else AWS_PROFILE,
    // else `default` (here wrong); it wins over config.local.
    let file = env.home.join(".aws/credentials");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {wrong}\n\n\
             [lab]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        ),
    )
    .unwrap();
    let own_file = ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap());
    env.write("b.txt", "b");
    env.ok(&["add", "b.txt"]);
    let out = run_with(&env, &env.root, &["push"], &[own_file]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("profile `default`"), "{out}");
    never_shown(&out, wrong);
    let out = run_with(&env, &env.root, &["push"], &[own_file, ("AWS_PROFILE", "lab")]);
    assert_eq!(out.code, 0, "{out}");
    env.ok(&["remote", "set", "store", "profile", "lab"]);
    env.write("c.txt", "c");
    env.ok(&["add", "c.txt"]);
    let out = run_with(&env, &env.root, &["push"], &[own_file, ("AWS_PROFILE", "default")]);
    assert_eq!(out.code, 0, "the remote's profile setting wins over AWS_PROFILE: {out}");
    let v = run_with(&env, &env.root, &["--json", "status", "--remote"], &[own_file]).json();
    for t in v["tracked"].as_array().unwrap() {
        assert_eq!(t["in_sync"], true, "{v}");
    }
}

#[test]
fn a_skewed_clock_an_unreachable_endpoint_and_a_bad_endpoint_are_explained() {
    let server = S3Server::start();
    let env = repo_with_remote(&server);
    // Signed requests carry the time: a clock two hours off is named, both ways.
    for (shift, word) in [("+2h", "ahead of"), ("-2h", "behind")] {
        let mut cmd = Command::new("faketime");
        cmd.args(["-f", shift, BIN, "push"]).current_dir(&env.root);
        env.clean_env(&mut cmd);
        let out = cmd.stdin(Stdio::null()).output().expect("run faketime (Debian package faketime)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&format!("clock is 7200 s {word} the server's")), "{shift}: {stderr}");
        assert!(stderr.contains("NTP"), "{stderr}");
    }
    assert!(fs::read_dir(server.bucket_dir()).unwrap().next().is_none(), "nothing was written");

    // Nothing listens there: named at once, not after minutes of retries.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    env.ok(&["remote", "set", "store", "endpoint", &format!("http://127.0.0.1:{closed}")]);
    let started = Instant::now();
    let out = env.fails(1, &["push"]);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(out.stderr.contains(&format!("cannot reach http://127.0.0.1:{closed}")), "{out}");
    assert!(out.stderr.contains("endpoint"), "{out}");
    // An endpoint without a scheme is refused when set.
    let out = env.fails(2, &["remote", "set", "store", "endpoint", "127.0.0.1:9000"]);
    assert!(out.stderr.contains("https://"), "{out}");
    // A bucket name S3 would refuse is a usage error.
    let out = env.fails(2, &["remote", "add", "other", "s3://Bad_Bucket/x"]);
    assert!(out.stderr.contains("not a bucket name"), "{out}");
}

#[test]
fn large_objects_go_up_in_parts_and_a_no_op_push_sends_two_requests() {
    let server = S3Server::start();
    let env = Env::new();
    // Layout 1 keeps the 13 MiB file as one object: with a 5 MiB threshold, three parts.
    env.write("big.bin", noise(13 << 20, 1));
    env.ok(&["add", "big.bin"]);
    env.ok(&["remote", "add", "store", &server.url(&server.bucket_dir().join("store")), "--default"]);
    configure_s3(&env, "store", &server);
    env.ok(&["remote", "set", "store", "layout", "1"]);
    env.ok(&["remote", "set", "store", "multipart_threshold", "5"]);
    commit_all(&env);
    env.ok(&["push"]);
    let requests = server.requests();
    let parts: Vec<&String> =
        requests.iter().filter(|r| r.starts_with("PUT") && r.contains("partNumber=")).collect();
    assert_eq!(parts.len(), 3, "{requests:#?}");
    assert!(requests.iter().any(|r| r.starts_with("POST") && r.contains("uploads")), "{requests:#?}");
    let clone = clone_repo(&env.root);
    clone.ok(&["pull"]);
    assert_eq!(clone.read("big.bin"), env.read("big.bin"));

    // Layout 2, 20,000 small files: a push with nothing new reads TROVE_REMOTE and lists
    // index/ once; it opens no pack.
    let server = S3Server::start();
    let env = Env::new();
    for i in 0..20_000u32 {
        env.write(&format!("many/d{:02}/f{i:05}.txt", i % 50), format!("file {i}\n"));
    }
    env.ok(&["add", "many"]);
    env.ok(&["remote", "add", "store", &server.url(&server.bucket_dir().join("store")), "--default"]);
    configure_s3(&env, "store", &server);
    env.ok(&["push"]);
    let before = server.requests().len();
    let v = env.json(&["push"]);
    assert_eq!(v["transfer"]["files"], 0, "{v}");
    let requests: Vec<String> = server.requests().into_iter().skip(before).collect();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(requests[0].starts_with("GET /trove-test/store/TROVE_REMOTE"), "{requests:#?}");
    assert!(
        requests[1].starts_with("GET /trove-test?") || requests[1].starts_with("GET /trove-test/?"),
        "{requests:#?}"
    );
    assert!(
        requests[1].contains("list-type=2") && requests[1].contains("prefix=store%2Findex%2F"),
        "{requests:#?}"
    );
    // status --remote the same.
    let before = server.requests().len();
    env.ok(&["status", "--remote"]);
    assert_eq!(server.requests().len() - before, 2, "{:#?}", server.requests());
}

#[test]
fn verify_names_a_damaged_pack_and_repair_reuploads_it() {
    let server = S3Server::start();
    let env = Env::new();
    let root = server.bucket_dir().join("store");
    env.ok(&["remote", "add", "store", &server.url(&root), "--default"]);
    configure_s3(&env, "store", &server);
    env.write("model.bin", noise(3 << 20, 5));
    for i in 0..20u64 {
        env.write(&format!("shards/s{i:02}.bin"), noise(1000 + i as usize * 300, i));
    }
    env.ok(&["add", "model.bin", "shards"]);
    commit_all(&env);
    env.ok(&["push"]);
    let clean = env.json(&["verify", "--remote"]);
    assert!(clean["verify"]["corrupt"].as_array().unwrap().is_empty(), "{clean}");
    // One byte of a pack flipped on the server's disk.
    let mut packs = Vec::new();
    walk(&root.join("packs"), &mut packs);
    let pack = packs.iter().max_by_key(|p| fs::metadata(p).unwrap().len()).unwrap().clone();
    let mut bytes = fs::read(&pack).unwrap();
    bytes[100] ^= 0xff;
    fs::write(&pack, &bytes).unwrap();
    let out = env.run(&["--json", "verify", "--remote"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stdout.contains(pack.file_name().unwrap().to_str().unwrap()), "the pack is named: {out}");
    let v = env.json(&["verify", "--remote", "--repair"]);
    assert_eq!(v["verify"]["repaired"], true, "{v}");
    assert_eq!(blake3_file(&pack), pack.file_name().unwrap().to_str().unwrap(), "a sound copy replaced it");
    let clone = clone_repo(&env.root);
    clone.ok(&["pull"]);
    assert_eq!(clone.read("model.bin"), env.read("model.bin"));
    assert_same_tree(&env, &clone, "shards");
}

/// A TLS front for `upstream` (a port on 127.0.0.1) with a certificate signed by a CA of
/// its own: the CA's file and the front's port (the MLflow tests use it too).
pub struct TlsFront {
    child: Child,
    pub port: u16,
    pub ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

pub fn tls_front(upstream: u16) -> TlsFront {
    let dir = tempfile::tempdir().unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        dir.path(),
        &[
            &["req", "-x509"][..],
            &ec,
            &["-days", "1", "-subj", "/CN=trove test CA", "-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
    );
    openssl(
        dir.path(),
        &[&["req"][..], &ec, &["-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"]]
            .concat(),
    );
    fs::write(dir.path().join("ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    openssl(
        dir.path(),
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext",
            "-out",
            "server.pem",
        ],
    );
    let script = r#"
import socket, ssl, sys, threading
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
upstream = int(sys.argv[3])
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(64)
print(srv.getsockname()[1], flush=True)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def serve(c):
    try:
        t = ctx.wrap_socket(c, server_side=True)
    except (ssl.SSLError, OSError):
        c.close()
        return
    u = socket.create_connection(("127.0.0.1", upstream))
    threading.Thread(target=pipe, args=(t, u), daemon=True).start()
    pipe(u, t)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.path().join("server.pem"))
        .arg(dir.path().join("server.key"))
        .arg(upstream.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().parse().unwrap_or_else(|_| panic!("the TLS front did not start: {line:?}"));
    TlsFront { child, port, ca: dir.path().join("ca.pem"), _dir: dir }
}

#[test]
fn https_endpoints_are_checked_against_the_ca_file_or_the_public_roots() {
    let server = S3Server::start();
    let front = tls_front(server.port);
    let env = Env::new();
    env.write("data/x.bin", noise(200_000, 3));
    env.ok(&["add", "data"]);
    env.ok(&["remote", "add", "store", &server.url(&server.bucket_dir().join("store")), "--default"]);
    env.ok(&["remote", "set", "store", "endpoint", &format!("https://127.0.0.1:{}", front.port)]);
    commit_all(&env);
    // A certificate no public CA signed: refused, saying what to do.
    let out = env.fails(1, &["push"]);
    assert!(out.stderr.contains("TLS") && out.stderr.contains("ca_file"), "{out}");
    assert!(!server.bucket_dir().join("store").exists(), "nothing went over the refused connection");
    // With the private CA's file it goes through, both ways.
    env.ok(&["remote", "set", "store", "ca_file", front.ca.to_str().unwrap(), "--local"]);
    env.ok(&["push"]);
    let clone = clone_repo(&env.root);
    clone.ok(&["remote", "set", "store", "ca_file", front.ca.to_str().unwrap(), "--local"]);
    clone.ok(&["pull"]);
    assert_same_tree(&env, &clone, "data");
    // A file that holds no certificate is named.
    clone.write("not-a-ca.pem", "hello");
    clone.ok(&["remote", "set", "store", "ca_file", "not-a-ca.pem", "--local"]);
    let out = clone.fails(1, &["fetch"]);
    assert!(out.stderr.contains("not-a-ca.pem"), "{out}");
}

/// A 3-node Garage cluster started by scripts/garage-cluster.sh; stopped when dropped.
struct Garage {
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

fn garage_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/garage-cluster.sh")
}

impl Garage {
    fn start() -> Garage {
        let dir = tempfile::Builder::new().prefix("trove-garage-").tempdir().unwrap();
        let out = Command::new("bash")
            .arg(garage_script())
            .arg("start")
            .arg(dir.path().join("c"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the Garage cluster did not start (scripts/setup-test-tools.sh installs garage):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = fs::read_to_string(dir.path().join("c/env")).unwrap();
        let vars = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Garage { dir, vars }
    }

    fn var(&self, key: &str) -> &str {
        &self.vars.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("no {key} in the cluster's env")).1
    }

    fn run(&self, action: &str, node: u32) {
        let out = Command::new("bash")
            .arg(garage_script())
            .arg(action)
            .arg(self.dir.path().join("c"))
            .arg(node.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "garage-cluster.sh {action} {node}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run the garage command line against node 1.
    fn cli(&self, args: &[&str]) {
        // (As scripts/garage-cluster.sh finds it.)
        let garage = crate::s3::tool("garage", "GARAGE").expect("garage is installed");
        let out = Command::new(garage)
            .arg("-c")
            .arg(self.dir.path().join("c/n1.toml"))
            .args(args)
            .output()
            .expect("run garage");
        assert!(out.status.success(), "garage {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn logs(&self) -> String {
        (1..=3)
            .map(|n| {
                let log = fs::read_to_string(self.dir.path().join(format!("c/n{n}.log"))).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                format!("node {n}:\n{}\n", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            })
            .collect()
    }

    /// Point remote `store` of `env` at node `node`.
    fn configure(&self, env: &Env, node: u32) {
        let _ = env.run(&[
            "remote",
            "add",
            "store",
            &format!("s3://{}/team/data", self.var("S3_BUCKET")),
            "--default",
        ]);
        env.ok(&["remote", "set", "store", "endpoint", self.var(&format!("S3_ENDPOINT_{node}"))]);
        env.ok(&["remote", "set", "store", "region", self.var("S3_REGION")]);
    }

    fn keys(&self) -> [(&str, &str); 3] {
        [
            NO_FILE,
            ("AWS_ACCESS_KEY_ID", self.var("AWS_ACCESS_KEY_ID")),
            ("AWS_SECRET_ACCESS_KEY", self.var("AWS_SECRET_ACCESS_KEY")),
        ]
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(garage_script()).arg("stop").arg(self.dir.path().join("c")).output();
    }
}

#[test]
fn a_garage_cluster_loses_a_node_mid_push_and_still_serves_everything() {
    let garage = Garage::start();
    let env = Env::new();
    // Enough for several packs, so the push is still running when a node dies.
    for i in 0..10u64 {
        env.write(&format!("data/big{i}.bin"), noise(12 << 20, 40 + i));
    }
    for i in 0..300u64 {
        env.write(&format!("data/small/s{i:03}.txt"), noise(3000, 1000 + i));
    }
    env.ok(&["add", "data"]);
    garage.configure(&env, 1);
    commit_all(&env);

    // Push through node 1, one request at a time, and kill -9 node 2 once the first
    // packs are stored (every node keeps a copy of everything: replication factor 3).
    let mut cmd = env.command_in(&env.root, &["push", "-j", "1"]);
    for (k, v) in garage.keys() {
        cmd.env(k, v);
    }
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // (Writes need 2 of the 3 nodes: the node that stored most shows the progress.)
    let stored = || {
        (1..=3)
            .map(|n| {
                let mut files = Vec::new();
                walk(&garage.dir.path().join(format!("c/n{n}")), &mut files);
                files.iter().filter_map(|f| fs::metadata(f).ok()).map(|m| m.len()).sum::<u64>()
            })
            .max()
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored() < 24 << 20 {
        assert!(Instant::now() < deadline, "the push made no progress\n{}", garage.logs());
        assert!(child.try_wait().unwrap().is_none(), "the push ended before a node was killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    garage.run("kill", 2);
    let out = child.wait_with_output().unwrap();
    // The push either rode over the loss (two of three nodes are a quorum) or failed
    // cleanly; run again, it finishes.
    let first = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let again = run_with(&env, &env.root, &["push"], &garage.keys());
    assert_eq!(again.code, 0, "first push: {first}\nsecond: {again}\n{}", garage.logs());

    // A fresh clone pulls through node 3, with node 2 still down: byte-identical.
    let clone = clone_repo(&env.root);
    garage.configure(&clone, 3);
    let out = run_with(&clone, &clone.root, &["pull"], &garage.keys());
    assert_eq!(out.code, 0, "{out}\n{}", garage.logs());
    assert_same_tree(&env, &clone, "data");
    // Node 2 comes back; the remote verifies clean through it.
    garage.run("restart", 2);
    garage.configure(&clone, 2);
    let out = run_with(&clone, &clone.root, &["--json", "verify", "--remote"], &garage.keys());
    assert_eq!(out.code, 0, "{out}\n{}", garage.logs());

    // A key that may only read: pulls work, a push is refused, naming the permissions.
    let (id, secret) = ("GK00112233445566778899aabb", "0123456789abcdef".repeat(4));
    garage.cli(&["key", "import", "--yes", "-n", "readonly", id, &secret]);
    garage.cli(&["bucket", "allow", "--read", garage.var("S3_BUCKET"), "--key", id]);
    garage.configure(&clone, 1);
    let read_only = [NO_FILE, ("AWS_ACCESS_KEY_ID", id), ("AWS_SECRET_ACCESS_KEY", secret.as_str())];
    let fresh = clone_repo(&env.root);
    garage.configure(&fresh, 1);
    let out = run_with(&fresh, &fresh.root, &["pull"], &read_only);
    assert_eq!(out.code, 0, "{out}");
    clone.write("new.txt", "new");
    clone.ok(&["add", "new.txt"]);
    let out = run_with(&clone, &clone.root, &["push"], &read_only);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("access denied") && out.stderr.contains("s3:PutObject"), "{out}");
    assert!(!out.stderr.contains(&secret), "{out}");
}
