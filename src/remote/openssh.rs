//! The OpenSSH transport (`transport: openssh`, the default where `ssh` is installed):
//! trove runs the user's own `ssh -s HOST sftp`, as restic does, and speaks its SFTP
//! client (`sftp_client`) over the pipes. Everything about logging in is OpenSSH's own:
//! `~/.ssh/config` with `Include`, `Match`, `ProxyJump` and `ProxyCommand`, the agent,
//! certificates and hardware keys, known_hosts with its markers. trove adds only what
//! its settings say, on the command line (which wins over the config files):
//!
//! - `StrictHostKeyChecking=yes`, or `accept-new` for `host_key: accept-new`: never
//!   weaker, whatever the config says;
//! - `port`, `user`, `keyfile` (`-i`) and `known_hosts` (`UserKnownHostsFile`) when set;
//! - `BatchMode=yes`, so ssh never waits for someone to type; a password or a key's
//!   passphrase (`password`, `TROVE_SFTP_PASSWORD`, `TROVE_SFTP_KEY_PASSPHRASE`) is
//!   answered instead by trove itself as ssh's `SSH_ASKPASS` program (see [`askpass`]).
//!
//! ssh runs with `-v` and its messages are kept: when it fails, they say why (the host
//! key shown, the keys offered, the methods the server takes), and the error says it in
//! trove's words. ssh runs in a process group of its own, so Ctrl-C at a terminal
//! reaches trove alone, which ends its transfers cleanly before closing the pipes.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::sftp::Target;
use super::sftp_client::Client;
use crate::error::{Error, RemoteFailure, Result};

/// The environment variable that tells trove it runs as ssh's askpass program.
pub const ASKPASS_VAR: &str = "TROVE_SSH_ASKPASS";
const PASSWORD_VAR: &str = "TROVE_SSH_ASKPASS_PASSWORD";
const PASSPHRASE_VAR: &str = "TROVE_SSH_ASKPASS_PASSPHRASE";
/// ssh's messages kept for a diagnosis (its `-v` output of one login is about 60 lines).
const KEPT_LINES: usize = 400;
/// How long ssh may take to exit once its pipes failed, before it is killed.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// The `ssh` program on PATH, if there is one.
pub fn find_ssh() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("ssh")).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Run `ssh -s … sftp` to `t` and start SFTP over its pipes.
///
/// Unless the user's config multiplexes already (`ControlMaster`), the first connection
/// of a remote is a master that holds the one SSH login, and every connection after it
/// (`-j` of them in a transfer) is a session over that master's connection
/// (`ControlMaster=no` with its `ControlPath`): a login costs about 0.1 s of CPU on each
/// side, a session about 5 ms. A master lives until its own session and the others
/// end; when trove exits or is killed, their sockets close and they all end.
pub(super) fn connect(t: &Target, ssh: &Path) -> Result<Client> {
    let base = args(t);
    let config = t.openssh_config.get_or_init(|| effective_config(t, ssh, &base));
    let mut args = Vec::new();
    if let Some(order) = &config.ciphers {
        args.extend(["-o".to_string(), format!("Ciphers={order}")]);
    }
    if config.home_known_hosts {
        args.extend(["-o".to_string(), format!("UserKnownHostsFile={}", t.known_hosts.display())]);
    }
    if !config.multiplexes {
        // Held while a master logs in, so that the connections asked for meanwhile share it.
        let mut mux = t.openssh_mux.lock().unwrap_or_else(|e| e.into_inner());
        let live = mux.path().filter(|p| mux.master && UnixStream::connect(p).is_ok());
        if let Some(path) = live {
            args.extend(["-o", "ControlMaster=no", "-o"].map(String::from));
            args.push(format!("ControlPath={}", path.display()));
        } else {
            mux.master = false;
            if let Some(path) = mux.next_path() {
                args.extend(["-o", "ControlMaster=yes", "-o", "ControlPersist=no", "-o"].map(String::from));
                args.push(format!("ControlPath={}", path.display()));
                args.extend(base);
                let (client, process) = session(t, ssh, &args, true)?;
                mux.master = true;
                mux.processes.extend(process);
                return Ok(client);
            }
            // No folder for a socket: a login of its own.
        }
    }
    args.extend(base);
    session(t, ssh, &args, false).map(|(c, _)| c)
}

/// The master connections of one remote (see [`connect`]).
#[derive(Default)]
pub(super) struct Mux {
    /// A private folder for the control sockets, made with the first master.
    dir: Option<tempfile::TempDir>,
    /// Masters started so far (a new one gets a new socket name).
    started: u32,
    /// The last one started logged in.
    master: bool,
    /// The masters' processes, reaped when the remote is done with (after every
    /// session over them has ended).
    processes: Vec<Child>,
}

impl Drop for Mux {
    fn drop(&mut self) {
        for child in self.processes.drain(..) {
            end(child);
        }
    }
}

impl Mux {
    fn path(&self) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.path().join(format!("m{}", self.started)))
    }

    /// The socket path for a new master; None when no folder can be made for it.
    fn next_path(&mut self) -> Option<PathBuf> {
        if self.dir.is_none() {
            // A socket path has at most 107 bytes: a short folder in the temp folder.
            let base = std::env::temp_dir();
            let base = if base.as_os_str().len() > 60 { PathBuf::from("/tmp") } else { base };
            self.dir = tempfile::Builder::new().prefix("trove-ssh-").tempdir_in(base).ok();
        }
        self.started += 1;
        self.path()
    }
}

/// What `ssh -G` says of the user's configuration for the host, read once per remote.
#[derive(Default)]
pub(super) struct Effective {
    /// The cipher order to ask for (see [`cipher_order`]).
    ciphers: Option<String>,
    /// The user's config multiplexes connections itself (`ControlMaster`).
    multiplexes: bool,
    /// ssh would check host keys against the account's known_hosts while HOME is
    /// elsewhere: HOME's is named instead (a file a config names is left alone).
    home_known_hosts: bool,
    /// The known_hosts file ssh checks first, for messages.
    known_hosts: Option<String>,
}

fn effective_config(t: &Target, ssh: &Path, args: &[String]) -> Effective {
    // `… -s -- HOST sftp` becomes `… -G -- HOST`.
    let Some(at) = args.iter().position(|a| a == "-s") else { return Effective::default() };
    let Some(host) = args.get(at + 2) else { return Effective::default() };
    let query: Vec<&str> = args[..at].iter().map(String::as_str).chain(["-G", "--", host.as_str()]).collect();
    let Ok(out) = Command::new(ssh).args(&query).stdin(Stdio::null()).stderr(Stdio::null()).output() else {
        return Effective::default();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)).map(str::trim);
    let known = value("userknownhostsfile ").and_then(|v| v.split_whitespace().next());
    let home_known_hosts =
        t.account_known_hosts.as_ref().is_some_and(|a| known == Some(a.to_string_lossy().as_ref()));
    Effective {
        ciphers: value("ciphers ").and_then(cipher_order),
        multiplexes: value("controlmaster ").is_some_and(|v| v != "false" && v != "no"),
        home_known_hosts,
        known_hosts: if home_known_hosts { None } else { known.map(str::to_string) },
    }
}

/// One ssh process running the `sftp` subsystem with `args`, and SFTP started over it.
/// A `master`'s process is returned rather than ended with its session: it serves the
/// other sessions until they end too.
fn session(t: &Target, ssh: &Path, args: &[String], master: bool) -> Result<(Client, Option<Child>)> {
    let mut cmd = Command::new(ssh);
    cmd.args(args);
    // ssh's input and output are one end of a socket pair rather than pipes: a write to
    // a pipe whose reader died raises SIGPIPE, which would end trove (it keeps the
    // default action, to stop quietly when its own output is closed); a socket is
    // written with MSG_NOSIGNAL and fails with an error instead.
    let connect_err = |what: &str, e: std::io::Error| t.err(RemoteFailure::Connect, format!("{what}: {e}"));
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| connect_err("cannot make a socket pair for ssh", e))?;
    let theirs_out = theirs.try_clone().map_err(|e| connect_err("cannot make a socket pair for ssh", e))?;
    widen(&ours);
    widen(&theirs);
    cmd.stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::from(OwnedFd::from(theirs_out)))
        .stderr(Stdio::piped());
    // Ctrl-C at a terminal goes to the foreground process group: not to ssh, whose
    // connection trove still needs to end its transfers cleanly.
    cmd.process_group(0);
    if t.password.is_some() || t.passphrase.is_some() {
        let exe = std::env::current_exe().map_err(|e| {
            t.err(
                RemoteFailure::Auth,
                format!("cannot find trove's own program to answer ssh's prompts: {e}"),
            )
        })?;
        cmd.env("SSH_ASKPASS", exe).env("SSH_ASKPASS_REQUIRE", "force").env(ASKPASS_VAR, "1");
        if let Some(p) = &t.password {
            cmd.env(PASSWORD_VAR, p);
        }
        if let Some(p) = &t.passphrase {
            cmd.env(PASSPHRASE_VAR, p);
        }
    }
    let mut child = cmd.spawn().map_err(|e| {
        t.err(
            RemoteFailure::Connect,
            format!(
                "cannot run {}: {e}; set `transport: libssh2` to use trove's built-in SSH",
                ssh.display()
            ),
        )
    })?;
    // Our copies of ssh's end go, so that its exit is seen as the end of the stream.
    drop(cmd);
    let stderr = child.stderr.take().expect("piped stderr");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&lines);
    let (ended, finished) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let mut kept = kept.lock().expect("ssh messages");
            if kept.len() >= KEPT_LINES {
                kept.remove(0);
            }
            kept.push(line);
        }
        let _ = ended.send(());
    });
    let (child, kept) = if master { (None, Some(child)) } else { (Some(child), None) };
    let process = Process { child, socket: ours };
    match Client::start(Box::new(process)) {
        Ok(client) => Ok((client, kept)),
        Err(e) => {
            if let Some(child) = kept {
                end(child);
            }
            // The Process was dropped with the failed start: ssh has exited or was
            // killed, so its stderr ends (unless a process it started holds it).
            let _ = finished.recv_timeout(Duration::from_secs(1));
            let lines = lines.lock().expect("ssh messages").clone();
            Err(diagnose(t, &lines, &e.to_string()))
        }
    }
}

/// The ciphers to ask for: the user's own list (as `ssh -G` resolves it from the
/// config files) with AES-GCM moved first, when the CPU has AES instructions: then it
/// costs about half of ChaCha20-Poly1305, OpenSSH's first choice. No cipher is added
/// or removed; None leaves ssh's order as it is.
fn cipher_order(list: &str) -> Option<String> {
    if !aes_in_hardware() {
        return None;
    }
    let (gcm, rest): (Vec<&str>, Vec<&str>) =
        list.split(',').partition(|c| c.starts_with("aes") && c.contains("-gcm"));
    if gcm.is_empty() || list.starts_with(gcm[0]) {
        return None;
    }
    Some(gcm.into_iter().chain(rest).collect::<Vec<_>>().join(","))
}

fn aes_in_hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes") && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// ssh's command line for `t`.
fn args(t: &Target) -> Vec<String> {
    let mut a: Vec<String> = vec!["-v".into(), "-x".into(), "-a".into(), "-T".into()];
    let opt = |a: &mut Vec<String>, o: String| {
        a.push("-o".into());
        a.push(o);
    };
    let strict = if t.accept_new { "accept-new" } else { "yes" };
    opt(&mut a, format!("StrictHostKeyChecking={strict}"));
    // As sftp(1) runs ssh: no forwarding, no local command.
    for o in ["ClearAllForwardings=yes", "ForwardAgent=no", "ForwardX11=no", "PermitLocalCommand=no"] {
        opt(&mut a, o.into());
    }
    opt(&mut a, "ConnectTimeout=10".into());
    opt(&mut a, "ServerAliveInterval=15".into());
    opt(&mut a, "ServerAliveCountMax=4".into());
    if t.password.is_some() || t.passphrase.is_some() {
        opt(&mut a, "BatchMode=no".into());
        opt(&mut a, "NumberOfPasswordPrompts=1".into());
    } else {
        opt(&mut a, "BatchMode=yes".into());
    }
    if let Some(config) = &t.ssh_config_file {
        a.push("-F".into());
        a.push(config.display().to_string());
    }
    if t.known_hosts_explicit {
        opt(&mut a, format!("UserKnownHostsFile={}", t.known_hosts.display()));
    }
    for key in &t.openssh_keys {
        a.push("-i".into());
        a.push(key.display().to_string());
    }
    if let Some(port) = t.explicit_port {
        a.push("-p".into());
        a.push(port.to_string());
    }
    if let Some(user) = &t.explicit_user {
        a.push("-l".into());
        a.push(user.clone());
    }
    a.push("-s".into());
    a.push("--".into());
    a.push(t.host.clone());
    a.push("sftp".into());
    a
}

/// Bigger socket buffers (1 MiB, as far as the system allows) mean fewer switches
/// between trove and ssh per megabyte.
fn widen(socket: &UnixStream) {
    let size: libc::c_int = 1 << 20;
    for option in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        // SAFETY: setsockopt on a socket trove owns, with a pointer to a c_int that
        // outlives the call; failure leaves the default size.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// ssh's input and output as one stream.
struct Process {
    /// None for a master, whose process the remote's [`Mux`] ends.
    child: Option<Child>,
    socket: UnixStream,
}

impl Read for Process {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.socket.read(buf)
    }
}

impl Write for Process {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            // SAFETY: send on a socket trove owns, from a buffer valid for its length.
            let n = unsafe {
                libc::send(self.socket.as_raw_fd(), buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL)
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Process {
    /// End ssh's input (it ends the session), and reap it.
    fn drop(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Write);
        if let Some(child) = self.child.take() {
            end(child);
        }
    }
}

/// Wait for an ssh whose input ended to exit; one that does not in time is killed.
fn end(mut child: Child) {
    let deadline = Instant::now() + EXIT_WAIT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() >= deadline => break,
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The error for a login that failed, in trove's words, from ssh's messages.
fn diagnose(t: &Target, lines: &[String], why: &str) -> Error {
    let said: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("debug") && !l.starts_with("OpenSSH_") && !l.trim().is_empty())
        .filter(|l| !l.starts_with("@@@") && !l.starts_with("Warning: Permanently added"))
        .collect();
    let has = |s: &str| lines.iter().any(|l| l.contains(s));
    let after = |prefix: &str| {
        lines.iter().rev().find_map(|l| l.split_once(prefix).map(|(_, r)| r.trim().to_string()))
    };
    let ssh_said = if said.is_empty() { why.to_string() } else { said.join("\n  ") };
    // The file ssh checked: the one the config names, else trove's.
    let kh = t
        .openssh_config
        .get()
        .and_then(|c| c.known_hosts.clone())
        .filter(|_| !t.known_hosts_explicit)
        .unwrap_or_else(|| t.known_hosts.display().to_string());
    // "debug1: Server host key: ssh-ed25519 SHA256:…"
    let shown = after("Server host key: ").map(|k| {
        let mut f = k.split_whitespace();
        let (kind, print) = (f.next().unwrap_or(""), f.next().unwrap_or("(no fingerprint)"));
        format!("{} key {print}", super::libssh2::key_label(kind))
    });
    let shown = shown.unwrap_or_else(|| "a key".to_string());
    if has("REMOTE HOST IDENTIFICATION HAS CHANGED") || has("Host key for") && has("has changed") {
        return t.host_key_changed(&shown, &kh);
    }
    if has("revoked") && has("Host key verification failed") {
        return t.host_key_revoked(&shown, &kh);
    }
    if has("host key is known for") || has("Host key verification failed") {
        return t.host_unknown(&shown, &kh, Some(&ssh_said));
    }
    if has("Permission denied") || has("Too many authentication failures") {
        // "debug1: Authenticating to HOST:PORT as 'USER'"
        let user = after("Authenticating to ")
            .and_then(|r| r.rsplit_once(" as '").map(|(_, u)| u.trim_end_matches('\'').to_string()))
            .unwrap_or_else(|| t.user.clone());
        let methods = after("Authentications that can continue: ").unwrap_or_else(|| "(none named)".into());
        let mut tried: Vec<String> = Vec::new();
        // A key is named once, with what was first found of it.
        let named = |tried: &[String], k: &str| tried.iter().any(|e| e.starts_with(&format!("key {k} ")));
        for l in lines {
            let key = l
                .split_once("Will attempt key: ")
                .or_else(|| l.split_once("Offering public key: "))
                .or_else(|| l.split_once("Trying private key: "))
                .and_then(|(_, r)| r.split_whitespace().next());
            if let Some(k) = key.filter(|k| k.contains('/') && !named(&tried, k)) {
                let path = Path::new(k);
                let note = if path.exists() {
                    t.encrypted_key_note(path).unwrap_or("refused")
                } else {
                    "no such file"
                };
                tried.push(format!("key {k} ({note})"));
            }
            if let Some((_, r)) = l.split_once("Identity file ")
                && let Some((k, _)) = r.split_once(" not accessible")
                && !named(&tried, k)
            {
                tried.push(format!("key {k} (no such file)"));
            }
        }
        if t.password.is_some() {
            tried.push(if methods.contains("password") || methods.contains("keyboard-interactive") {
                "password (refused)".to_string()
            } else {
                "password (the server does not take passwords)".to_string()
            });
        }
        return t.login_refused(&user, &tried, &methods, Some(&ssh_said));
    }
    if has("subsystem request failed") {
        return t.no_sftp(&ssh_said);
    }
    t.err(RemoteFailure::Connect, format!("cannot connect to {}: {ssh_said}", t.addr()))
}

/// Answer ssh's prompt (the first argument) when trove runs as its askpass program:
/// the password for a password prompt, the passphrase for a key's, nothing otherwise
/// (never a yes to a host key question). Returns the exit code.
pub fn askpass() -> i32 {
    let prompt = std::env::args().nth(1).unwrap_or_default().to_lowercase();
    let answer = if prompt.contains("passphrase") {
        std::env::var(PASSPHRASE_VAR).ok()
    } else if prompt.contains("password") {
        std::env::var(PASSWORD_VAR).ok()
    } else {
        None
    };
    match answer {
        Some(a) => {
            println!("{a}");
            0
        }
        None => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    fn message(e: Error) -> (RemoteFailure, String) {
        match e {
            Error::Remote { kind, message, .. } => (kind, message),
            other => panic!("not a remote error: {other}"),
        }
    }

    // Messages as OpenSSH 9.2 prints them with -v (shortened to the lines that matter).
    #[test]
    fn unknown_host_key() {
        let t = Target::for_tests();
        let said = lines(
            "debug1: Server host key: ssh-ed25519 SHA256:ohXIUTlUeUadikU+8KmaiTKod5IpEf6M1gMPZuNwylM\n\
             No ED25519 host key is known for [127.0.0.1]:2299 and you have requested strict checking.\n\
             Host key verification failed.",
        );
        let (kind, m) = message(diagnose(&t, &said, "the connection closed"));
        assert_eq!(kind, RemoteFailure::HostKey);
        assert!(m.contains("127.0.0.1:2299 is not a known host"), "{m}");
        assert!(m.contains("ED25519 key SHA256:ohXIUTlUeUadikU+8KmaiTKod5IpEf6M1gMPZuNwylM"), "{m}");
        assert!(m.contains("host_key accept-new"), "{m}");
        assert!(m.contains("ssh said: No ED25519 host key is known"), "{m}");
    }

    #[test]
    fn changed_host_key() {
        let t = Target::for_tests();
        let said = lines(
            "debug1: Server host key: ssh-ed25519 SHA256:abc\n\
             @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
             @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
             Host key verification failed.",
        );
        let (kind, m) = message(diagnose(&t, &said, ""));
        assert_eq!(kind, RemoteFailure::HostKey);
        assert!(m.contains("has CHANGED: the server now shows ED25519 key SHA256:abc"), "{m}");
        assert!(m.contains("ssh-keygen -R '[127.0.0.1]:2299'"), "{m}");
    }

    #[test]
    fn refused_login_names_the_keys_tried() {
        let t = Target::for_tests();
        let said = lines(
            "debug1: Authenticating to 127.0.0.1:2299 as 'ann'\n\
             debug1: Will attempt key: /nonexistent/k ED25519 SHA256:x explicit\n\
             debug1: Will attempt key: ED25519 SHA256:y agent\n\
             debug1: Authentications that can continue: publickey,password\n\
             debug1: Offering public key: /nonexistent/k ED25519 SHA256:x explicit\n\
             Warning: Identity file /gone/key not accessible: No such file or directory.\n\
             ann@127.0.0.1: Permission denied (publickey,password).",
        );
        let (kind, m) = message(diagnose(&t, &said, ""));
        assert_eq!(kind, RemoteFailure::Auth);
        assert!(m.starts_with("cannot log in as ann@127.0.0.1:2299: tried key /nonexistent/k (no such file), key /gone/key (no such file);"), "{m}");
        assert!(m.contains("the server accepts publickey,password"), "{m}");
        assert!(m.contains("Permission denied"), "{m}");
    }

    #[test]
    fn unreachable_server() {
        let t = Target::for_tests();
        let said = lines("OpenSSH_9.2p1\nssh: connect to host 127.0.0.1 port 2299: Connection refused");
        let (kind, m) = message(diagnose(&t, &said, ""));
        assert_eq!(kind, RemoteFailure::Connect);
        assert_eq!(
            m,
            "cannot connect to 127.0.0.1:2299: ssh: connect to host 127.0.0.1 port 2299: Connection refused"
        );
    }

    #[test]
    fn gcm_goes_first_and_nothing_is_added() {
        let list = "chacha20-poly1305@openssh.com,aes128-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com";
        if aes_in_hardware() {
            assert_eq!(
                cipher_order(list).as_deref(),
                Some(
                    "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr"
                )
            );
        }
        assert_eq!(cipher_order("chacha20-poly1305@openssh.com,aes256-ctr"), None);
        assert_eq!(cipher_order("aes256-gcm@openssh.com,aes128-ctr"), None);
    }

    #[test]
    fn ssh_is_run_with_strict_host_keys_and_never_prompts() {
        // The command line ssh is given: strict host keys, batch mode without secrets.
        let t = Target::for_tests();
        let a = args(&t).join(" ");
        assert!(a.contains("StrictHostKeyChecking=yes"), "{a}");
        assert!(a.contains("BatchMode=yes"), "{a}");
        assert!(a.ends_with("-s -- 127.0.0.1 sftp"), "{a}");
    }
}
