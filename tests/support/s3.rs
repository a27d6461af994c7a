//! A real S3 server for tests: s3s-fs (an S3 API over a folder) on 127.0.0.1 on a free
//! port, with one access key pair and one bucket. s3s-fs keeps bucket `B`'s object `K` as
//! the file `ROOT/B/K`, so a test reads and damages what trove stored as plain files, as
//! it does on a folder or SFTP remote.
//!
//! `scripts/setup-test-tools.sh` installs it (`cargo install s3s-fs --version 0.14.1
//! --features binary --locked`). The server stops when the value is dropped.

#![allow(dead_code)]

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BUCKET: &str = "trove-test";
pub const ACCESS_KEY: &str = "TROVETESTKEY";
pub const SECRET_KEY: &str = "trove-test-secret-0123456789";

pub struct S3Server {
    pub port: u16,
    /// The folder s3s-fs serves: one subfolder per bucket.
    pub root: PathBuf,
    /// s3s-fs's output, worth printing when a test fails.
    pub log: PathBuf,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

/// A program a test needs: the file `$var` names, else `name` on PATH, else in cargo's
/// bin folder (where scripts/setup-test-tools.sh installs it).
pub fn tool(name: &str, var: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    let cargo_bin = std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin").join(name));
    on_path.or(cargo_bin.filter(|p| p.is_file()))
}

/// The s3s-fs program (`S3S_FS` names another).
pub fn program() -> PathBuf {
    tool("s3s-fs", "S3S_FS").unwrap_or_else(|| {
        panic!(
            "s3s-fs is missing: the S3 tests need it; run `bash scripts/setup-test-tools.sh` \
             (cargo install s3s-fs --version 0.14.1 --features binary --locked)"
        )
    })
}

impl S3Server {
    /// Start a server whose data lives in a fresh temp folder.
    pub fn start() -> S3Server {
        S3Server::start_at(None)
    }

    /// Start a server serving `root` (made when missing), else a fresh temp folder.
    pub fn start_at(root: Option<PathBuf>) -> S3Server {
        let dir = tempfile::Builder::new().prefix("trove-s3-").tempdir().expect("temp dir");
        let root = root.unwrap_or_else(|| dir.path().join("data"));
        fs::create_dir_all(root.join(BUCKET)).expect("bucket folder");
        let root = fs::canonicalize(&root).unwrap();
        let log = dir.path().join("s3s-fs.log");
        let mut server = S3Server { port: 0, root, log, dir, child: None };
        server.launch(None);
        server
    }

    fn launch(&mut self, port: Option<u16>) {
        let program = program();
        for _ in 0..5 {
            let port = port.unwrap_or_else(free_port);
            let log = fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
            let mut child = Command::new(&program)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(&self.root)
                .env("RUST_LOG", "info,s3s::service=debug")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    self.port = port;
                    self.child = Some(child);
                    return;
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("s3s-fs did not start:\n{}", self.log_text());
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bucket's folder: where remote roots go.
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.join(BUCKET)
    }

    /// `s3://BUCKET/PREFIX` for a folder under the server's root (its first part is the bucket).
    pub fn url(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.root).expect("a path under the S3 server's root");
        format!("s3://{}", rel.display())
    }

    /// Stop the server (kill -9): requests in flight fail.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port;
        self.launch(Some(port));
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The requests the server received, by its log: `METHOD /path?query` each.
    pub fn requests(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter_map(|l| l.split_once("s3s::service: req: Request { method: ")?.1.split_once(", version:"))
            .map(|(what, _)| what.replace(", uri:", ""))
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
