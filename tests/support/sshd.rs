//! A real OpenSSH server for tests: runs as the current user on 127.0.0.1 on a free port,
//! with its own host key, one user key pair, and a known_hosts file that trusts it.
//!
//! Use it from a test file with `#[path = "support/sshd.rs"] mod sshd;` and
//! `let server = sshd::Sshd::start();`. The server stops when the value is dropped.

#![allow(dead_code)]

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    /// The port it listens on (on 127.0.0.1).
    pub port: u16,
    /// The user it lets in: the user running the tests.
    pub user: String,
    /// The user's private key (`key.pub` beside it is in authorized_keys).
    pub key: PathBuf,
    /// A known_hosts file holding the server's host key (`[127.0.0.1]:PORT ssh-ed25519 …`).
    pub known_hosts: PathBuf,
    /// The server's private host key.
    pub host_key: PathBuf,
    /// A scratch folder on the "server" (the same machine): a place for remote roots.
    pub data: PathBuf,
    /// sshd's log (`-E`), worth printing when a test fails.
    pub log: PathBuf,
    /// The temporary folder holding all of the above.
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Sshd {
    /// Start a server that takes public keys only.
    pub fn start() -> Sshd {
        Sshd::start_with("")
    }

    /// Start a server with extra sshd_config lines (they win over the defaults, e.g.
    /// `"PasswordAuthentication yes\n"`).
    pub fn start_with(extra_config: &str) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: the SFTP tests need an OpenSSH server; run `apt-get install -y openssh-server`"
        );
        let dir = tempfile::Builder::new().prefix("trove-sshd-").tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let host_key = root.join("host_ed25519");
        let key = root.join("user_ed25519");
        keygen(&host_key);
        keygen(&key);
        let authorized = root.join("authorized_keys");
        fs::copy(root.join("user_ed25519.pub"), &authorized).expect("authorized_keys");
        let data = root.join("data");
        fs::create_dir(&data).expect("data folder");
        let log = root.join("sshd.log");
        let user = current_user();
        if is_root() {
            // sshd started by root insists on its privilege separation folder.
            let _ = fs::create_dir_all("/run/sshd");
        }

        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let config = root.join("sshd_config");
            fs::write(
                &config,
                format!(
                    "{extra_config}\n\
                     Port {port}\n\
                     ListenAddress 127.0.0.1\n\
                     HostKey {host_key}\n\
                     PidFile {pid}\n\
                     AuthorizedKeysFile {authorized}\n\
                     PasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\n\
                     PermitRootLogin yes\n\
                     UsePAM no\n\
                     StrictModes no\n\
                     Subsystem sftp internal-sftp\n\
                     Ciphers aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr\n\
                     MaxStartups 100\n\
                     MaxSessions 100\n\
                     LogLevel VERBOSE\n",
                    host_key = host_key.display(),
                    pid = root.join("sshd.pid").display(),
                    authorized = authorized.display(),
                ),
            )
            .expect("sshd_config");
            let _ = fs::remove_file(&log);
            let mut child = spawn(&config, &log);
            if wait_listening(&mut child, port) {
                let server = Sshd {
                    port,
                    user,
                    key,
                    known_hosts: root.join("known_hosts"),
                    host_key,
                    data,
                    log,
                    dir,
                    child: Some(child),
                };
                server.scan_host_key();
                return server;
            }
            // Most likely another process took the port between our probe and sshd's
            // bind: try another.
            last_log = fs::read_to_string(&log).unwrap_or_default();
            kill_group(&mut child);
        }
        panic!("sshd did not start; its log:\n{last_log}");
    }

    /// An `sftp://` URL for `path` on this server (absolute, or relative to the login folder).
    pub fn url(&self, path: &Path) -> String {
        format!("sftp://{}@127.0.0.1:{}{}", self.user, self.port, path.display())
    }

    /// config.local text that logs remote `remote` in to this server with the test key and
    /// known_hosts, as a user's machine-specific settings would.
    pub fn login_settings(&self, remote: &str) -> String {
        format!(
            "remote:\n  {remote}:\n    keyfile: {}\n    known_hosts: {}\n",
            self.key.display(),
            self.known_hosts.display()
        )
    }

    /// The log so far, for failure messages.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Start the stopped server again: the same port, host key and users.
    pub fn restart(&mut self) {
        self.stop();
        let config = self.dir.path().join("sshd_config");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut child = spawn(&config, &self.log);
            if wait_listening(&mut child, self.port) {
                self.child = Some(child);
                return;
            }
            kill_group(&mut child);
            assert!(Instant::now() < deadline, "sshd did not restart; its log:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kill the server and every session it started.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }

    fn scan_host_key(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("ssh-keyscan")
                .args(["-T", "2", "-t", "ed25519", "-p", &self.port.to_string(), "127.0.0.1"])
                .stderr(Stdio::null())
                .output()
                .expect("run ssh-keyscan (package openssh-client)");
            let text = String::from_utf8_lossy(&out.stdout);
            if text.lines().any(|l| !l.trim().is_empty() && !l.starts_with('#')) {
                fs::write(&self.known_hosts, text.as_bytes()).expect("known_hosts");
                return;
            }
            assert!(Instant::now() < deadline, "ssh-keyscan found no key; sshd log:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `ssh-keygen -q -t ed25519 -N '' -f path`.
pub fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "trove-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen (package openssh-client)");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

fn spawn(config: &Path, log: &Path) -> Child {
    let mut cmd = Command::new(SSHD);
    cmd.arg("-D").arg("-f").arg(config).arg("-E").arg(log);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn().expect("spawn sshd")
}

/// A local account that logs in with a password, for password-authentication tests:
/// `(name, password, home)`. Creating it needs root (CI runs as root); the account is
/// made once and reused by later runs.
pub fn password_user() -> (String, String, PathBuf) {
    const NAME: &str = "trove-sftp-test";
    const PASSWORD: &str = "correct horse 42";
    assert!(is_root(), "password-authentication tests create a local user and need root (CI runs as root)");
    let home = PathBuf::from("/home").join(NAME);
    let exists = Command::new("id").arg(NAME).stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !exists.is_ok_and(|s| s.success()) {
        let status = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", NAME])
            .status()
            .expect("run useradd (package passwd)");
        // Another test may have created it at the same moment.
        let now = Command::new("id").arg(NAME).stdout(Stdio::null()).status();
        assert!(status.success() || now.is_ok_and(|s| s.success()), "useradd {NAME} failed");
    }
    let mut chpasswd = Command::new("chpasswd").stdin(Stdio::piped()).spawn().expect("run chpasswd");
    std::io::Write::write_all(chpasswd.stdin.as_mut().unwrap(), format!("{NAME}:{PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(chpasswd.wait().unwrap().success(), "chpasswd failed");
    fs::create_dir_all(&home).unwrap();
    let _ = Command::new("chown").arg(format!("{NAME}:")).arg(&home).status();
    (NAME.to_string(), PASSWORD.to_string(), home)
}

fn wait_listening(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Kill sshd and its session processes. It leads its own process group, but each session
/// calls setsid(), so the sessions are found as its descendants in /proc.
fn kill_group(child: &mut Child) {
    let pids = descendants(child.id());
    // SAFETY: kill has no memory effects; the negative pid names the group this child leads.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
        for pid in pids {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
    let _ = child.wait();
}

/// The processes below `root` (children, grandchildren, …), from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid …`: comm may hold spaces, so read after the last ')'.
        let ppid: Option<u32> =
            stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok());
        if let Some(ppid) = ppid {
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

fn current_user() -> String {
    for k in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(k)
            && !u.is_empty()
        {
            return u;
        }
    }
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
