//! The SFTP remote over ssh2 (libssh2). Each [`Connection`] is its own TCP stream, SSH
//! session and SFTP channel, so transfers run one per worker thread.
//!
//! Connecting: host, user, port and key come from the URL, then the remote's settings,
//! then `~/.ssh/config`, then defaults. The server's host key is checked against
//! known_hosts before any secret is sent; then password, key files, ssh-agent and the
//! default keys are tried in turn.

use std::collections::HashSet;
use std::io::{Read, Seek, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ssh2::{
    CheckResult, ErrorCode, HashType, KeyboardInteractivePrompt, KnownHostFileKind, MethodType, OpenFlags,
    OpenType, Prompt, Session, Sftp,
};

use super::backend::{self, Backend, Listed};
use super::sftp_pipe::{Outcome, Pipe};
use super::{Remote, Settings, ssh_config, temp_name};
use crate::base64::encode as base64;
use crate::error::{Error, RemoteFailure, Result};

const DEFAULT_JOBS: usize = 8;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// For the handshake and authentication.
const LOGIN_TIMEOUT_MS: u32 = 20_000;
/// For any one blocking SFTP call once logged in.
const IO_TIMEOUT_MS: u32 = 120_000;
/// Reads and writes of this size let libssh2 keep many SFTP packets in flight.
const CHUNK: usize = 1 << 20;
/// Fast ciphers first (AES-GCM where the CPU has AES instructions); the others libssh2
/// supports follow, so an old server still finds a common one.
const CIPHERS: &[&str] = &[
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
];
const DEFAULT_KEYS: &[&str] = &["id_ed25519", "id_ecdsa", "id_rsa"];

// SFTP status codes (LIBSSH2_FX_*).
const FX_NO_SUCH_FILE: i32 = 2;
const FX_PERMISSION_DENIED: i32 = 3;
const FX_FAILURE: i32 = 4;
const FX_NO_SUCH_PATH: i32 = 10;

/// Everything needed to log in, resolved once when the remote is opened.
struct Target {
    remote: String,
    /// As written in the URL (shown to users, matched in ~/.ssh/config).
    host: String,
    /// Where to connect, and the name checked against known_hosts.
    host_name: String,
    port: u16,
    user: String,
    /// The remote root, without a trailing slash; relative to the login folder unless absolute.
    root: String,
    password: Option<String>,
    passphrase: Option<String>,
    /// `keyfile` from the settings, else `IdentityFile` from ~/.ssh/config.
    keyfiles: Vec<PathBuf>,
    default_keys: Vec<PathBuf>,
    known_hosts: PathBuf,
    accept_new: bool,
    /// Host key algorithms to ask for, once a connection learnt which type known_hosts has.
    host_key_prefs: std::sync::Mutex<Option<String>>,
}

pub struct SftpRemote {
    name: String,
    url: String,
    jobs: Option<usize>,
    layout: u64,
    target: Arc<Target>,
}

/// Resolve where and as whom to log in. Nothing touches the network until `connect`.
pub fn open(
    settings: &Settings,
    user: Option<String>,
    host: String,
    port: Option<u16>,
    path: String,
) -> Result<Box<dyn Remote>> {
    let (local_user, home) = account();
    let ssh = ssh_config::load(home.as_deref(), &host);
    let url = Url { user, host, port, path };
    let target = resolve(settings, url, &ssh, local_user.as_deref(), home.as_deref())?;
    Ok(Box::new(SftpRemote {
        name: settings.name.clone(),
        url: settings.url.clone(),
        jobs: settings.jobs,
        layout: settings.layout.unwrap_or(crate::store::NEW_LAYOUT),
        target: Arc::new(target),
    }))
}

/// What the URL says.
struct Url {
    user: Option<String>,
    host: String,
    port: Option<u16>,
    path: String,
}

/// URL values win, then the remote's settings, then ~/.ssh/config, then defaults.
fn resolve(
    settings: &Settings,
    url: Url,
    ssh: &ssh_config::HostConfig,
    local_user: Option<&str>,
    home: Option<&Path>,
) -> Result<Target> {
    let Url { user, host, port, path } = url;
    let err = |message: String| Error::remote(settings.name.clone(), RemoteFailure::Auth, message);
    let user = user
        .or_else(|| settings.user.clone())
        .or_else(|| ssh.user.clone())
        .or_else(|| local_user.map(str::to_string))
        .ok_or_else(|| {
            err(format!(
                "cannot tell which user to log in as; put it in the URL (sftp://USER@{host}/…) or run `trove remote set {} user USER`",
                settings.name
            ))
        })?;
    let host_name = ssh.host_name.clone().unwrap_or_else(|| host.clone());
    let port = port.or(settings.port).or(ssh.port).unwrap_or(22);
    let keyfiles = match &settings.keyfile {
        Some(k) => vec![k.clone()],
        None => ssh.identity_paths(home, &host_name, &user, local_user.unwrap_or("")),
    };
    let ssh_dir = home.map(|h| h.join(".ssh"));
    let default_keys = match &ssh_dir {
        Some(d) => DEFAULT_KEYS.iter().map(|k| d.join(k)).collect(),
        None => Vec::new(),
    };
    let known_hosts = match (&settings.known_hosts, &ssh_dir) {
        (Some(k), _) => k.clone(),
        (None, Some(d)) => d.join("known_hosts"),
        (None, None) => {
            return Err(err(format!(
                "HOME is not set, so there is no ~/.ssh/known_hosts to check {host}'s key against; run `trove remote set {} known_hosts PATH`",
                settings.name
            )));
        }
    };
    let root = path.trim_end_matches('/');
    let root = match (root, path.starts_with('/')) {
        ("", true) => "/".to_string(),
        ("", false) => ".".to_string(),
        (r, _) => r.to_string(),
    };
    Ok(Target {
        remote: settings.name.clone(),
        host,
        host_name,
        port,
        user,
        root,
        password: settings.password.clone(),
        passphrase: settings.key_passphrase.clone(),
        keyfiles,
        default_keys,
        known_hosts,
        accept_new: settings.accept_new_host_key,
        host_key_prefs: std::sync::Mutex::new(None),
    })
}

impl Remote for SftpRemote {
    fn name(&self) -> &str {
        &self.name
    }

    fn url(&self) -> &str {
        &self.url
    }

    fn connect(&self) -> Result<Box<dyn Backend>> {
        let t = &self.target;
        let session = t.login()?;
        let sftp = session.sftp().map_err(|e| {
            t.err(
                RemoteFailure::Connect,
                format!(
                    "cannot start SFTP on {} (is the server's SFTP subsystem enabled?): {}",
                    t.addr(),
                    describe(&e)
                ),
            )
        })?;
        session.set_timeout(IO_TIMEOUT_MS);
        Ok(Box::new(SftpBackend {
            target: Arc::clone(t),
            pipe: None,
            sftp,
            session,
            dirs: HashSet::new(),
            buf: vec![0; CHUNK],
        }))
    }

    fn new_layout(&self) -> u64 {
        self.layout
    }

    fn default_jobs(&self) -> usize {
        self.jobs.unwrap_or(DEFAULT_JOBS)
    }
}

impl Target {
    fn err(&self, kind: RemoteFailure, message: impl Into<String>) -> Error {
        Error::remote(self.remote.clone(), kind, message)
    }

    /// `host:port`, or `alias (host:port)` when ~/.ssh/config maps the URL's host.
    fn addr(&self) -> String {
        if self.host == self.host_name {
            format!("{}:{}", self.host, self.port)
        } else {
            format!("{} ({}:{})", self.host, self.host_name, self.port)
        }
    }

    /// Connect, check the host key, authenticate.
    fn login(&self) -> Result<Session> {
        let remembered = self.host_key_prefs.lock().ok().and_then(|p| p.clone());
        let session = self.handshake(remembered.as_deref())?;
        let session = match self.check_host_key(&session, remembered.is_some())? {
            HostKey::Known => session,
            // The server showed a key of a type known_hosts has no entry for, while it
            // has one of another type: ask for that type, as OpenSSH does. A server that
            // no longer has a key of that type changed its key.
            HostKey::Retry { prefs, changed } => {
                let session = self.handshake(Some(&prefs)).map_err(|_| changed)?;
                self.check_host_key(&session, true)?;
                // The other connections of this transfer ask for that type straight away.
                if let Ok(mut p) = self.host_key_prefs.lock() {
                    *p = Some(prefs);
                }
                session
            }
        };
        self.authenticate(&session)?;
        Ok(session)
    }

    fn handshake(&self, host_key_prefs: Option<&str>) -> Result<Session> {
        let addrs = (self.host_name.as_str(), self.port).to_socket_addrs().map_err(|e| {
            self.err(RemoteFailure::Connect, format!("cannot find host {}: {e}", self.host_name))
        })?;
        let mut last = None;
        let mut stream = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = stream.ok_or_else(|| {
            let why = last.map_or_else(|| "no address".to_string(), |e| e.to_string());
            self.err(RemoteFailure::Connect, format!("cannot connect to {}: {why}", self.addr()))
        })?;
        let _ = stream.set_nodelay(true);
        let mut session = Session::new().map_err(|e| {
            self.err(RemoteFailure::Connect, format!("cannot start an SSH session: {}", describe(&e)))
        })?;
        session.set_tcp_stream(stream);
        session.set_timeout(LOGIN_TIMEOUT_MS);
        prefer_ciphers(&session);
        if let Some(p) = host_key_prefs {
            let _ = session.method_pref(MethodType::HostKey, p);
        }
        session.handshake().map_err(|e| {
            self.err(
                RemoteFailure::Connect,
                format!("SSH handshake with {} failed: {}", self.addr(), describe(&e)),
            )
        })?;
        Ok(session)
    }

    fn check_host_key(&self, session: &Session, retried: bool) -> Result<HostKey> {
        let (key, _) = session
            .host_key()
            .ok_or_else(|| self.err(RemoteFailure::HostKey, "the server sent no host key"))?;
        let key_type = key_type_of(key).unwrap_or("unknown");
        let shown = format!(
            "{} key {}",
            key_label(key_type),
            session.host_key_hash(HashType::Sha256).map_or_else(|| "(no fingerprint)".into(), fingerprint)
        );
        let kh = &self.known_hosts;
        let text = match std::fs::read_to_string(kh) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(self.err(RemoteFailure::HostKey, format!("cannot read {}: {e}", kh.display())));
            }
        };
        let lines: Vec<&str> =
            text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
        // libssh2 skips `@revoked` lines: honour them here.
        let key_b64 = base64(key, true);
        if lines
            .iter()
            .any(|l| l.starts_with("@revoked") && l.split_whitespace().nth(3) == Some(key_b64.as_str()))
        {
            return Err(self.err(
                RemoteFailure::HostKey,
                format!(
                    "{} shows {shown}, which {} marks as revoked; refusing to connect",
                    self.addr(),
                    kh.display()
                ),
            ));
        }
        let mut known = session.known_hosts().map_err(|e| self.err(RemoteFailure::HostKey, describe(&e)))?;
        // Line by line, so one line libssh2 does not understand (a newer key type, a
        // marker) does not hide the others.
        for line in &lines {
            let _ = known.read_str(line, KnownHostFileKind::OpenSSH);
        }
        let spec = host_spec(&self.host_name, self.port);
        match known.check_port(&self.host_name, self.port, key) {
            CheckResult::Match => Ok(HostKey::Known),
            CheckResult::Mismatch => {
                let changed = self.err(RemoteFailure::HostKey, format!(
                    "the host key of {} has CHANGED: the server now shows {shown}, which is not the key {} records for it.\n\
                     Someone may be intercepting the connection, or the server was reinstalled. \
                     If you trust the new key, remove the old line (`ssh-keygen -R '{spec}' -f {}`) and try again.",
                    self.addr(),
                    kh.display(),
                    kh.display()
                ));
                let recorded = self.recorded_types(session, &lines, key);
                if !retried && !recorded.is_empty() && !recorded.iter().any(|t| t == key_type) {
                    let prefs: Vec<&str> = recorded.iter().flat_map(|t| host_key_methods(t)).collect();
                    if !prefs.is_empty() {
                        return Ok(HostKey::Retry { prefs: prefs.join(","), changed });
                    }
                }
                Err(changed)
            }
            CheckResult::NotFound if self.accept_new => {
                self.record_host_key(&spec, key_type, key)?;
                Ok(HostKey::Known)
            }
            CheckResult::NotFound => Err(self.err(
                RemoteFailure::HostKey,
                format!(
                    "{} is not a known host: {} has no key for it; the server shows {shown}.\n\
                 If that is the server's key, accept it with `trove remote set {} host_key accept-new`, \
                 or add it with `ssh-keyscan -p {} {} >> {}` (and compare the fingerprint).",
                    self.addr(),
                    kh.display(),
                    self.remote,
                    self.port,
                    self.host_name,
                    kh.display()
                ),
            )),
            CheckResult::Failure => Err(self.err(
                RemoteFailure::HostKey,
                format!("cannot check the host key of {} against {}", self.addr(), kh.display()),
            )),
        }
    }

    /// The key types of the known_hosts lines that name this host.
    fn recorded_types(&self, session: &Session, lines: &[&str], key: &[u8]) -> Vec<String> {
        let mut types = Vec::new();
        for line in lines {
            let Ok(mut one) = session.known_hosts() else { continue };
            if one.read_str(line, KnownHostFileKind::OpenSSH).is_err() {
                continue;
            }
            if matches!(one.check_port(&self.host_name, self.port, key), CheckResult::Mismatch)
                && let Some(t) = line.split_whitespace().nth(1)
                && !types.iter().any(|k| k == t)
            {
                types.push(t.to_string());
            }
        }
        types
    }

    /// Append `spec type base64` to known_hosts (`accept-new`).
    fn record_host_key(&self, spec: &str, key_type: &str, key: &[u8]) -> Result<()> {
        let kh = &self.known_hosts;
        let fail = |e: std::io::Error| {
            self.err(RemoteFailure::HostKey, format!("cannot record the host key in {}: {e}", kh.display()))
        };
        if let Some(dir) = kh.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(fail)?;
        }
        let needs_newline = std::fs::read(kh).is_ok_and(|b| b.last().is_some_and(|&c| c != b'\n'));
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(kh).map_err(fail)?;
        let line =
            format!("{}{spec} {key_type} {}\n", if needs_newline { "\n" } else { "" }, base64(key, true));
        f.write_all(line.as_bytes()).map_err(fail)
    }

    fn authenticate(&self, session: &Session) -> Result<()> {
        let user = self.user.as_str();
        let methods = match session.auth_methods(user) {
            Ok(m) => m.to_string(),
            Err(_) if session.authenticated() => return Ok(()),
            Err(e) => {
                return Err(self.err(
                    RemoteFailure::Auth,
                    format!("cannot log in as {user}@{}: {}", self.addr(), describe(&e)),
                ));
            }
        };
        if session.authenticated() {
            return Ok(());
        }
        let offers = |m: &str| methods.split(',').any(|x| x == m);
        let mut tried: Vec<String> = Vec::new();

        if let Some(password) = &self.password {
            if offers("password") {
                if session.userauth_password(user, password).is_ok() && session.authenticated() {
                    return Ok(());
                }
                tried.push("password (refused)".into());
            } else if offers("keyboard-interactive") {
                let mut answer = PasswordPrompt(password);
                if session.userauth_keyboard_interactive(user, &mut answer).is_ok() && session.authenticated()
                {
                    return Ok(());
                }
                tried.push("password (refused)".into());
            } else {
                tried.push("password (the server does not take passwords)".into());
            }
        }

        if offers("publickey") {
            let mut seen: Vec<PathBuf> = Vec::new();
            for key in &self.keyfiles {
                seen.push(key.clone());
                if let Some(note) = self.try_key(session, key, true) {
                    tried.push(note);
                } else {
                    return Ok(());
                }
            }
            if std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty()) {
                match try_agent(session, user) {
                    Ok(()) => return Ok(()),
                    Err(note) => tried.push(note),
                }
            }
            for key in &self.default_keys {
                if seen.contains(key) || !key.is_file() {
                    continue;
                }
                if let Some(note) = self.try_key(session, key, false) {
                    tried.push(note);
                } else {
                    return Ok(());
                }
            }
        } else if !self.keyfiles.is_empty() {
            tried.push("keys (the server does not take public keys)".into());
        }

        let tried = if tried.is_empty() {
            "no password, key file or ssh-agent was available to try".to_string()
        } else {
            format!("tried {}", tried.join(", "))
        };
        Err(self.err(
            RemoteFailure::Auth,
            format!(
                "cannot log in as {user}@{}: {tried}; the server accepts {methods}.\n\
             Set a key with `trove remote set {} keyfile PATH`, load one into ssh-agent, \
             or set a password with `trove remote set {} password … --local` (or TROVE_SFTP_PASSWORD).",
                self.addr(),
                self.remote,
                self.remote
            ),
        ))
    }

    /// None when the key logged us in; otherwise what to report about it.
    fn try_key(&self, session: &Session, key: &Path, explicit: bool) -> Option<String> {
        if !key.is_file() {
            return explicit.then(|| format!("key {} (no such file)", key.display()));
        }
        let public = PathBuf::from(format!("{}.pub", key.display()));
        let public = public.is_file().then_some(public);
        let result =
            session.userauth_pubkey_file(&self.user, public.as_deref(), key, self.passphrase.as_deref());
        if result.is_ok() && session.authenticated() {
            return None;
        }
        let encrypted = key_is_encrypted(key);
        let why = match result {
            _ if encrypted && self.passphrase.is_none() => {
                "it is encrypted: put its passphrase in TROVE_SFTP_KEY_PASSPHRASE".to_string()
            }
            _ if encrypted => "refused, or the passphrase in TROVE_SFTP_KEY_PASSPHRASE is wrong".to_string(),
            // LIBSSH2_ERROR_FILE: libssh2 could not read or parse the file.
            Err(e) if matches!(e.code(), ErrorCode::Session(-16)) => {
                format!("cannot read it: {}", e.message())
            }
            _ => "refused".to_string(),
        };
        Some(format!("key {} ({why})", key.display()))
    }
}

/// Whether a private key file needs a passphrase (OpenSSH or PEM format).
fn key_is_encrypted(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else { return false };
    if text.contains("BEGIN OPENSSH PRIVATE KEY") {
        // The body starts with "openssh-key-v1\0" and the cipher name; "none" is plain.
        let body: String =
            text.lines().skip_while(|l| !l.starts_with("-----BEGIN")).skip(1).take(2).collect();
        return !body.starts_with("b3BlbnNzaC1rZXktdjEAAAAABG5vbmU");
    }
    text.contains("ENCRYPTED")
}

enum HostKey {
    Known,
    /// Connect again asking for these host key algorithms; if that fails, `changed` is the error.
    Retry {
        prefs: String,
        changed: Error,
    },
}

fn try_agent(session: &Session, user: &str) -> std::result::Result<(), String> {
    let mut agent = session.agent().map_err(|_| "ssh-agent (unavailable)".to_string())?;
    if agent.connect().is_err() || agent.list_identities().is_err() {
        return Err("ssh-agent (cannot reach it)".into());
    }
    let ids = agent.identities().unwrap_or_default();
    for id in &ids {
        if agent.userauth(user, id).is_ok() && session.authenticated() {
            let _ = agent.disconnect();
            return Ok(());
        }
    }
    let _ = agent.disconnect();
    Err(match ids.len() {
        0 => "ssh-agent (holds no keys)".into(),
        1 => "ssh-agent (1 key, refused)".into(),
        n => format!("ssh-agent ({n} keys, refused)"),
    })
}

/// Answers keyboard-interactive prompts with the configured password.
struct PasswordPrompt<'a>(&'a str);

impl KeyboardInteractivePrompt for PasswordPrompt<'_> {
    fn prompt<'b>(&mut self, _user: &str, _instructions: &str, prompts: &[Prompt<'b>]) -> Vec<String> {
        prompts.iter().map(|_| self.0.to_string()).collect()
    }
}

fn prefer_ciphers(session: &Session) {
    for kind in [MethodType::CryptCs, MethodType::CryptSc] {
        let Ok(supported) = session.supported_algs(kind) else { continue };
        let mut order: Vec<&str> = CIPHERS.iter().copied().filter(|c| supported.contains(c)).collect();
        if order.is_empty() {
            continue;
        }
        let rest: Vec<&str> =
            supported.iter().copied().filter(|c| !order.contains(c) && *c != "none").collect();
        order.extend(rest);
        let _ = session.method_pref(kind, &order.join(","));
    }
}

/// The host key algorithms to ask for to get a key of this known_hosts type.
fn host_key_methods(key_type: &str) -> Vec<&'static str> {
    match key_type {
        "ssh-ed25519" => vec!["ssh-ed25519"],
        "ecdsa-sha2-nistp256" => vec!["ecdsa-sha2-nistp256"],
        "ecdsa-sha2-nistp384" => vec!["ecdsa-sha2-nistp384"],
        "ecdsa-sha2-nistp521" => vec!["ecdsa-sha2-nistp521"],
        "ssh-rsa" => vec!["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
        "ssh-dss" => vec!["ssh-dss"],
        _ => vec![],
    }
}

/// The type name at the start of an SSH public key blob.
fn key_type_of(blob: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    std::str::from_utf8(blob.get(4..4 + len)?).ok()
}

/// As OpenSSH names key types in its messages.
fn key_label(key_type: &str) -> &str {
    match key_type {
        "ssh-ed25519" => "ED25519",
        "ssh-rsa" => "RSA",
        "ssh-dss" => "DSA",
        t if t.starts_with("ecdsa-") => "ECDSA",
        t => t,
    }
}

/// `host` on port 22, `[host]:port` otherwise, as known_hosts writes it.
fn host_spec(host: &str, port: u16) -> String {
    if port == 22 { host.to_string() } else { format!("[{host}]:{port}") }
}

/// `SHA256:` and the unpadded base64 of the hash, as OpenSSH shows fingerprints.
fn fingerprint(sha256: &[u8]) -> String {
    format!("SHA256:{}", base64(sha256, false))
}

/// The local user's name and home: USER / LOGNAME / HOME, else the password database.
fn account() -> (Option<String>, Option<PathBuf>) {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let name = env("USER").or_else(|| env("LOGNAME"));
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    if name.is_some() && home.is_some() {
        return (name, home);
    }
    let (pw_name, pw_home) = passwd_entry();
    (name.or(pw_name), home.or(pw_home))
}

fn passwd_entry() -> (Option<String>, Option<PathBuf>) {
    use std::ffi::CStr;
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: `pwd` and `buf` outlive the call; on success `result` points at `pwd`,
    // whose strings live in `buf`, and both are read before they go out of scope.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(libc::getuid(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc != 0 || result.is_null() {
            return (None, None);
        }
        let name =
            (!pwd.pw_name.is_null()).then(|| CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned());
        let home = (!pwd.pw_dir.is_null())
            .then(|| PathBuf::from(std::ffi::OsStr::from_bytes(CStr::from_ptr(pwd.pw_dir).to_bytes())));
        (name, home)
    }
}

/// An error's text: libssh2's message, with the SFTP status code when there is one.
fn describe(e: &ssh2::Error) -> String {
    match e.code() {
        ErrorCode::SFTP(n) => format!("{} (SFTP status {n})", e.message()),
        ErrorCode::Session(_) => e.message().to_string(),
    }
}

fn not_found(e: &ssh2::Error) -> bool {
    matches!(e.code(), ErrorCode::SFTP(FX_NO_SUCH_FILE) | ErrorCode::SFTP(FX_NO_SUCH_PATH))
}

struct SftpBackend {
    target: Arc<Target>,
    // Dropped before the session they run on.
    /// A second SFTP channel for pipelined batch transfers, opened on first use.
    pipe: Option<Pipe>,
    sftp: Sftp,
    session: Session,
    /// Folders (relative to the root) known to exist.
    dirs: HashSet<String>,
    buf: Vec<u8>,
}

/// What an SFTP error means for a retry.
fn failure(e: &ssh2::Error) -> RemoteFailure {
    match e.code() {
        ErrorCode::SFTP(FX_NO_SUCH_FILE | FX_NO_SUCH_PATH) => RemoteFailure::NotFound,
        ErrorCode::SFTP(FX_PERMISSION_DENIED) => RemoteFailure::Denied,
        ErrorCode::SFTP(_) => RemoteFailure::Io,
        // The session failed: timed out, or the connection dropped.
        ErrorCode::Session(_) => RemoteFailure::Connect,
    }
}

impl SftpBackend {
    /// The channel for batch transfers, opened when first needed.
    fn pipe(&mut self) -> Result<&mut Pipe> {
        if self.pipe.is_none() {
            let t = &self.target;
            let pipe = Pipe::open(&self.session).map_err(|e| {
                t.err(RemoteFailure::Connect, format!("cannot start SFTP on {}: {e}", t.addr()))
            })?;
            self.pipe = Some(pipe);
        }
        Ok(self.pipe.as_mut().expect("opened above"))
    }

    /// A path under the remote root.
    fn path(&self, rel: &str) -> String {
        match (self.target.root.as_str(), rel) {
            (root, "") => root.to_string(),
            ("/", rel) => format!("/{rel}"),
            (root, rel) => format!("{root}/{rel}"),
        }
    }

    fn fail(&self, what: &str, path: &str, e: impl std::fmt::Display) -> Error {
        self.target.err(RemoteFailure::Io, format!("{what} {path}: {e}"))
    }

    fn fail_ssh(&self, what: &str, path: &str, e: &ssh2::Error) -> Error {
        self.target.err(failure(e), format!("{what} {path}: {}", describe(e)))
    }

    fn mkdir(&self, path: &str) -> Result<()> {
        match self.sftp.mkdir(Path::new(path), 0o755) {
            Ok(()) => Ok(()),
            // OpenSSH answers a plain "failure" when the folder exists.
            Err(e) => match self.sftp.stat(Path::new(path)) {
                Ok(st) if st.is_dir() => Ok(()),
                Ok(_) => Err(self.fail("cannot create folder", path, "a file of that name is in the way")),
                Err(_) => Err(self.fail_ssh("cannot create folder", path, &e)),
            },
        }
    }

    /// Make folder `dir` (relative to the root) and the ones above it, once per connection.
    fn ensure_dir(&mut self, dir: &str) -> Result<()> {
        if dir.is_empty() || self.dirs.contains(dir) {
            return Ok(());
        }
        let up = backend::parent(dir);
        if !up.is_empty()
            && !self.dirs.contains(up)
            && !self.sftp.stat(Path::new(&self.path(up))).is_ok_and(|s| s.is_dir())
        {
            self.ensure_dir(up)?;
        }
        self.mkdir(&self.path(dir))?;
        self.dirs.insert(dir.to_string());
        Ok(())
    }

    fn create_temp(&self, temp: &str) -> std::result::Result<ssh2::File, ssh2::Error> {
        let flags = OpenFlags::WRITE | OpenFlags::EXCLUSIVE;
        self.sftp.open_mode(Path::new(temp), flags, 0o644, OpenType::File)
    }

    /// Open a new temp file under `tmp/` (made again when it went missing).
    fn open_temp(&mut self, temp: &str) -> Result<ssh2::File> {
        match self.create_temp(temp) {
            Ok(f) => Ok(f),
            Err(e) if not_found(&e) => {
                // tmp/ went missing (cleaned up on the server): make it again.
                self.mkdir(&self.path("tmp"))?;
                self.create_temp(temp).map_err(|e| self.fail_ssh("cannot create", temp, &e))
            }
            Err(e) => Err(self.fail_ssh("cannot create", temp, &e)),
        }
    }

    /// Write what `src` reads (`size` bytes) to `temp`. Errors name `dest`, the file
    /// being written; a failure to read `src` is an error of `local`.
    fn write_temp(
        &mut self,
        src: &mut dyn Read,
        local: &Path,
        size: u64,
        temp: &str,
        dest: &str,
    ) -> Result<()> {
        let mut f = self.open_temp(temp)?;
        let mut buf = std::mem::take(&mut self.buf);
        let result = loop {
            if let Err(e) = crate::interrupt::check() {
                break Err(e);
            }
            let n = match src.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(Error::io(local, e)),
            };
            if let Err(e) = f.write_all(&buf[..n]) {
                break Err(self.write_failed(&mut f, dest, &e.to_string(), size));
            }
        };
        self.buf = buf;
        result?;
        // Closing reports what the server could not finish.
        f.close().map_err(|e| match e.code() {
            ErrorCode::SFTP(FX_FAILURE) => self.target.err(
                RemoteFailure::Io,
                format!(
                    "uploading {dest}: the server could not finish writing it ({}); its disk may be full",
                    describe(&e)
                ),
            ),
            _ => self.fail_ssh("uploading", dest, &e),
        })
    }

    /// A write the server refused. OpenSSH reports a full disk as a plain "failure", so
    /// ask the server how much room is left.
    fn write_failed(&self, f: &mut ssh2::File, dest: &str, why: &str, size: u64) -> Error {
        if !matches!(why, "failure" | "no space on filesystem" | "quota exceeded") {
            return self.fail("uploading", dest, why);
        }
        let free = f.statvfs().ok().map(|v| v.f_bavail.saturating_mul(v.f_frsize));
        let full = |message: String| self.target.err(RemoteFailure::Full, message);
        match free {
            Some(free) if free > size.saturating_add(1 << 20) => full(format!(
                "uploading {dest}: the server refused a write ({why}) though it reports {free} bytes free; a quota may be exceeded"
            )),
            Some(free) => full(format!(
                "uploading {dest}: the server's disk is full ({free} bytes free; the file is {size} bytes)"
            )),
            None => {
                full(format!("uploading {dest}: the server refused a write ({why}); its disk is likely full"))
            }
        }
    }

    /// Write to a temp file with `fill`, then rename it to `rel`: a name written once
    /// keeps the file already there.
    fn put(&mut self, rel: &str, fill: impl FnOnce(&mut Self, &str, &str) -> Result<()>) -> Result<()> {
        let dest = self.path(rel);
        let temp = self.path(&format!("tmp/{}", temp_name()));
        let dir = backend::parent(rel).to_string();
        let result = fill(self, &temp, &dest).and_then(|()| self.ensure_dir(&dir));
        if let Err(e) = result {
            let _ = self.sftp.unlink(Path::new(&temp));
            return Err(e);
        }
        let (t, d) = (Path::new(&temp), Path::new(&dest));
        let Err(first) = self.sftp.rename(t, d, None) else { return Ok(()) };
        // SFTP v3 (OpenSSH) will not rename over an existing file: it is already there
        // (same name, same bytes).
        if self.sftp.stat(d).is_ok() {
            let _ = self.sftp.unlink(t);
            return Ok(());
        }
        // The folder was removed behind our back: make it again, once.
        self.dirs.remove(&dir);
        let again = self.ensure_dir(&dir).and_then(|()| {
            self.sftp.rename(t, d, None).map_err(|_| self.fail_ssh("cannot move into place", &dest, &first))
        });
        if again.is_err() {
            let _ = self.sftp.unlink(t);
        }
        again
    }

    fn readdir(&self, dir: &str) -> Result<Vec<(PathBuf, ssh2::FileStat)>> {
        let path = self.path(dir);
        match self.sftp.readdir(Path::new(&path)) {
            Ok(entries) => Ok(entries),
            Err(e) if not_found(&e) => Ok(Vec::new()),
            Err(e) => Err(self.fail_ssh("cannot list", &path, &e)),
        }
    }
}

impl Backend for SftpBackend {
    fn root_exists(&mut self) -> Result<bool> {
        let root = self.target.root.clone();
        match self.sftp.stat(Path::new(&root)) {
            Ok(st) => Ok(st.is_dir()),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(self.fail_ssh("cannot stat", &root, &e)),
        }
    }

    fn create_root(&mut self) -> Result<()> {
        let root = self.target.root.clone();
        match self.sftp.stat(Path::new(&root)) {
            Ok(st) if st.is_dir() => Ok(()),
            Ok(_) => Err(self
                .target
                .err(RemoteFailure::Denied, format!("cannot use {root}: it is a file, not a folder"))),
            Err(e) if not_found(&e) => {
                let parent = match root.rfind('/') {
                    Some(0) => "/".to_string(),
                    Some(i) => root[..i].to_string(),
                    None => ".".to_string(),
                };
                if let Err(e) = self.sftp.stat(Path::new(&parent)) {
                    let why =
                        if not_found(&e) { "its parent folder does not exist".into() } else { describe(&e) };
                    return Err(self.target.err(
                        failure(&e),
                        format!(
                            "cannot create folder {root} on {}: {why}; create {parent} first or fix the URL",
                            self.target.host
                        ),
                    ));
                }
                self.mkdir(&root)
            }
            Err(e) => Err(self.fail_ssh("cannot use", &root, &e)),
        }
    }

    fn list(&mut self, dir: &str) -> Result<Vec<Listed>> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Ok(self
            .readdir(dir)?
            .into_iter()
            .filter(|(_, stat)| stat.is_file())
            .filter_map(|(path, stat)| {
                let name = path.file_name()?.to_str()?.to_string();
                let age = stat.mtime.map(|m| now.saturating_sub(std::time::Duration::from_secs(m)));
                Some(Listed { name, size: stat.size.unwrap_or(0), age })
            })
            .collect())
    }

    fn list_dirs(&mut self, dir: &str) -> Result<Vec<String>> {
        Ok(self
            .readdir(dir)?
            .into_iter()
            .filter(|(_, stat)| stat.is_dir())
            .filter_map(|(path, _)| path.file_name()?.to_str().map(str::to_string))
            .filter(|n| n != "." && n != "..")
            .collect())
    }

    fn exists(&mut self, rel: &str) -> Result<bool> {
        let path = self.path(rel);
        match self.sftp.stat(Path::new(&path)) {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(self.fail_ssh("cannot look up", &path, &e)),
        }
    }

    fn read(&mut self, rel: &str, size: Option<u64>, out: &mut dyn Write) -> Result<u64> {
        let path = self.path(rel);
        let mut f = self.sftp.open(Path::new(&path)).map_err(|e| self.fail_ssh("cannot open", &path, &e))?;
        let mut buf = std::mem::take(&mut self.buf);
        let mut total = 0u64;
        // Reads sized to what is left: libssh2 asks the server ahead for a whole buffer,
        // which for a small file costs many packets past its end. Files do not change,
        // so once `size` bytes arrived the read is complete (the caller checks the hash).
        let size = size.or_else(|| f.stat().ok().and_then(|st| st.size));
        let result = loop {
            let want = match size {
                Some(s) if total >= s => break Ok(total),
                Some(s) => (s - total).min(buf.len() as u64) as usize,
                None => buf.len(),
            };
            let n = match f.read(&mut buf[..want]) {
                Ok(0) => break Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(self.fail("downloading", &path, e)),
            };
            if let Err(e) = out.write_all(&buf[..n]) {
                break Err(self.fail("downloading", &path, format!("cannot write the local copy: {e}")));
            }
            total += n as u64;
        };
        self.buf = buf;
        result
    }

    fn read_range(&mut self, rel: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let path = self.path(rel);
        let mut f = self.sftp.open(Path::new(&path)).map_err(|e| self.fail_ssh("cannot open", &path, &e))?;
        f.seek(std::io::SeekFrom::Start(offset)).map_err(|e| self.fail("cannot read", &path, e))?;
        let mut bytes = vec![0; len as usize];
        let mut got = 0;
        while got < bytes.len() {
            match f.read(&mut bytes[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.fail("downloading", &path, e)),
            }
        }
        bytes.truncate(got);
        Ok(bytes)
    }

    fn read_many(
        &mut self,
        items: &[(String, u64, u64)],
        done: &mut dyn FnMut(usize, Result<Vec<u8>>),
    ) -> Result<()> {
        let target = Arc::clone(&self.target);
        let paths: Vec<(String, u64, u64)> =
            items.iter().map(|(rel, offset, len)| (self.path(rel), *offset, *len)).collect();
        let result = self.pipe()?.read_files(&paths, &mut |i, outcome| {
            done(
                i,
                match outcome {
                    Outcome::Data(bytes) => Ok(bytes),
                    Outcome::Missing => {
                        Err(target.err(RemoteFailure::NotFound, format!("{}: no such file", paths[i].0)))
                    }
                    Outcome::Refused(why) => {
                        Err(target.err(RemoteFailure::Io, format!("downloading {}: {why}", paths[i].0)))
                    }
                },
            )
        });
        result.map_err(|e| {
            self.pipe = None;
            target.err(RemoteFailure::Protocol, format!("downloading from {}: {e}", target.addr()))
        })
    }

    fn write_file(&mut self, rel: &str, local: &Path) -> Result<()> {
        let mut src = std::fs::File::open(local).map_err(|e| Error::io(local, e))?;
        let size = src.metadata().map_err(|e| Error::io(local, e))?.len();
        self.put(rel, |me, temp, dest| me.write_temp(&mut src, local, size, temp, dest))
    }

    fn write_bytes(&mut self, rel: &str, bytes: &[u8]) -> Result<()> {
        let size = bytes.len() as u64;
        self.put(rel, |me, temp, dest| me.write_temp(&mut &bytes[..], Path::new(dest), size, temp, dest))
    }

    fn write_many(
        &mut self,
        items: &[(String, PathBuf)],
        done: &mut dyn FnMut(usize, Result<()>),
    ) -> Result<()> {
        let target = Arc::clone(&self.target);
        for (rel, _) in items {
            self.ensure_dir(backend::parent(rel))?;
        }
        let mut files = Vec::with_capacity(items.len());
        for (rel, local) in items {
            let bytes = std::fs::read(local).map_err(|e| Error::io(local, e))?;
            files.push((self.path(&format!("tmp/{}", temp_name())), self.path(rel), bytes));
        }
        let mut again = Vec::new();
        let result = self.pipe()?.write_files(&files, &mut |i, ok| {
            if ok {
                done(i, Ok(()))
            } else {
                again.push(i);
            }
        });
        if let Err(e) = result {
            self.pipe = None;
            crate::interrupt::check()?;
            return Err(target.err(RemoteFailure::Protocol, format!("uploading to {}: {e}", target.addr())));
        }
        // What the pipelined path could not do (the file already there, a full disk,
        // a vanished folder) goes the careful way, which tells these apart.
        for i in again {
            let _ = self.sftp.unlink(Path::new(&files[i].0));
            done(i, self.write_file(&items[i].0, &items[i].1));
        }
        Ok(())
    }

    fn replace(&mut self, rel: &str, bytes: &[u8]) -> Result<()> {
        let dest = self.path(rel);
        let temp = self.path(&format!("tmp/{}", temp_name()));
        let size = bytes.len() as u64;
        let written = self.write_temp(&mut &bytes[..], Path::new(&dest), size, &temp, &dest);
        if let Err(e) = written {
            let _ = self.sftp.unlink(Path::new(&temp));
            return Err(e);
        }
        let (t, d) = (Path::new(&temp), Path::new(&dest));
        // SFTP v3 renames only to a free name: the old file goes first.
        if self.sftp.rename(t, d, None).is_err() {
            let _ = self.sftp.unlink(d);
            if let Err(e) = self.sftp.rename(t, d, None) {
                let _ = self.sftp.unlink(t);
                return Err(self.fail_ssh("cannot write", &dest, &e));
            }
        }
        Ok(())
    }

    fn delete(&mut self, rel: &str) -> Result<()> {
        let path = self.path(rel);
        match self.sftp.unlink(Path::new(&path)) {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(self.fail_ssh("cannot delete", &path, &e)),
        }
    }

    fn remove_empty_dir(&mut self, rel: &str) -> Result<()> {
        // A server refuses to remove a folder that is not empty; that is not an error here.
        let _ = self.sftp.rmdir(Path::new(&self.path(rel)));
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        // SFTP has no "sync everything". fsync@openssh.com on one file commits the
        // server's file system journal, which on the common Linux file systems carries
        // the renames of this push with it. Best effort: other servers lack it.
        if let Ok(mut f) = self.sftp.open(Path::new(&self.path(super::LAYOUT_FILE))) {
            let _ = f.fsync();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_unpadded_base64() {
        assert_eq!(fingerprint(&[0xfb; 32]), format!("SHA256:{}", "+/v7".repeat(10) + "+/s"));
    }

    #[test]
    fn encrypted_keys() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let plain = write(
            "plain",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n",
        );
        let locked = write(
            "locked",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABAAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        );
        let pem = write(
            "pem",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\n-----END RSA PRIVATE KEY-----\n",
        );
        assert!(!key_is_encrypted(&plain));
        assert!(key_is_encrypted(&locked));
        assert!(key_is_encrypted(&pem));
        assert!(!key_is_encrypted(&dir.path().join("missing")));
    }

    #[test]
    fn key_types() {
        let mut blob = 11u32.to_be_bytes().to_vec();
        blob.extend_from_slice(b"ssh-ed25519");
        blob.extend_from_slice(&[0; 36]);
        assert_eq!(key_type_of(&blob), Some("ssh-ed25519"));
        assert_eq!(key_type_of(&blob[..6]), None);
        assert_eq!(key_label("ecdsa-sha2-nistp256"), "ECDSA");
        assert_eq!(host_spec("h", 22), "h");
        assert_eq!(host_spec("h", 2222), "[h]:2222");
        assert_eq!(host_key_methods("ssh-rsa")[0], "rsa-sha2-512");
    }

    fn url(user: Option<&str>, port: Option<u16>, path: &str) -> Url {
        Url { user: user.map(str::to_string), host: "data".into(), port, path: path.into() }
    }

    #[test]
    fn resolves_url_then_settings_then_ssh_config_then_defaults() {
        let home = Path::new("/home/me");
        let ssh = ssh_config::parse(
            "Host data\n HostName data.example.com\n User cfguser\n Port 2022\n IdentityFile ~/.ssh/cfgkey\n",
            "data",
        );
        let mut settings = Settings { name: "r".into(), ..Default::default() };

        let t = resolve(&settings, url(None, None, "/srv/x/"), &ssh, Some("me"), Some(home)).unwrap();
        assert_eq!((t.user.as_str(), t.host_name.as_str(), t.port), ("cfguser", "data.example.com", 2022));
        assert_eq!(t.host, "data");
        assert_eq!(t.root, "/srv/x");
        assert_eq!(t.keyfiles, [home.join(".ssh/cfgkey")]);
        assert_eq!(t.known_hosts, home.join(".ssh/known_hosts"));
        assert_eq!(t.default_keys[0], home.join(".ssh/id_ed25519"));

        settings.user = Some("setuser".into());
        settings.port = Some(2200);
        settings.keyfile = Some("/k/id".into());
        settings.known_hosts = Some("/k/known".into());
        let t = resolve(&settings, url(None, None, "data"), &ssh, Some("me"), Some(home)).unwrap();
        assert_eq!((t.user.as_str(), t.port), ("setuser", 2200));
        assert_eq!(t.keyfiles, [PathBuf::from("/k/id")]);
        assert_eq!(t.known_hosts, PathBuf::from("/k/known"));
        assert_eq!(t.root, "data");

        let t = resolve(&settings, url(Some("urluser"), Some(2), "/"), &ssh, Some("me"), Some(home)).unwrap();
        assert_eq!((t.user.as_str(), t.port, t.root.as_str()), ("urluser", 2, "/"));

        let none = ssh_config::HostConfig::default();
        let bare = Settings { name: "r".into(), ..Default::default() };
        let t = resolve(&bare, url(None, None, ""), &none, Some("me"), Some(home)).unwrap();
        assert_eq!((t.user.as_str(), t.host_name.as_str(), t.port, t.root.as_str()), ("me", "data", 22, "."));
        assert!(resolve(&bare, url(None, None, "x"), &none, None, Some(home)).is_err());
        assert!(resolve(&bare, url(Some("u"), None, "x"), &none, None, None).is_err());
    }
}
