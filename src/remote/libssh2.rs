//! The built-in SSH transport, over libssh2 (the `ssh2` crate), for machines without an
//! OpenSSH client (`transport: libssh2`). It connects, checks the server's host key
//! against known_hosts before any secret is sent, then tries the password, the key
//! files, ssh-agent and the default keys in turn, and opens the `sftp` subsystem on a
//! channel of the session; trove's own SFTP client (`sftp_client`) speaks over it.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh2::{
    CheckResult, ErrorCode, HashType, KeyboardInteractivePrompt, KnownHostFileKind, MethodType, Prompt,
    Session,
};

use super::sftp::Target;
use super::sftp_client::Client;
use crate::base64::encode as base64;
use crate::error::{Error, RemoteFailure, Result};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// For the handshake and authentication.
const LOGIN_TIMEOUT_MS: u32 = 20_000;
/// For any one blocking read or write once logged in.
const IO_TIMEOUT_MS: u32 = 120_000;
/// The cheapest strong ciphers first, as measured on one 1 GiB push and fetch over
/// loopback (client CPU, user seconds per GiB, 2 runs each): chacha20-poly1305 3.7 up and
/// 3.2-3.5 down; aes128-ctr with hmac-sha2-256 4.4 and 3.4-3.6; aes128-gcm 4.4-4.6 and
/// 4.5-5.4, as libssh2 hands OpenSSL one 16-byte block at a time in its GCM mode. The
/// others libssh2 supports follow, so an old server still finds a common one.
const CIPHERS: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
];

/// Log in to `t` and start SFTP on a channel of the session.
pub(super) fn connect(t: &Target) -> Result<Client> {
    let session = t.login()?;
    let start = || -> std::result::Result<Client, String> {
        let mut channel = session.channel_session().map_err(|e| describe(&e))?;
        channel.subsystem("sftp").map_err(|e| describe(&e))?;
        session.set_timeout(IO_TIMEOUT_MS);
        Client::start(Box::new(channel)).map_err(|e| e.to_string())
    };
    start().map_err(|e| t.no_sftp(&e))
}

impl Target {
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
            return Err(self.host_key_revoked(&shown, &kh.display().to_string()));
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
                let changed = self.host_key_changed(&shown, &kh.display().to_string());
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
            CheckResult::NotFound => Err(self.host_unknown(&shown, &kh.display().to_string(), None)),
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

        Err(self.login_refused(user, &tried, &methods, None))
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
        let why = match (self.encrypted_key_note(key), result) {
            (Some(note), _) => note.to_string(),
            // LIBSSH2_ERROR_FILE: libssh2 could not read or parse the file.
            (None, Err(e)) if matches!(e.code(), ErrorCode::Session(-16)) => {
                format!("cannot read it: {}", e.message())
            }
            _ => "refused".to_string(),
        };
        Some(format!("key {} ({why})", key.display()))
    }

    /// Why an encrypted key was not taken: no passphrase, or a wrong one. None for a
    /// key that is not encrypted.
    pub(super) fn encrypted_key_note(&self, key: &Path) -> Option<&'static str> {
        key_is_encrypted(key).then_some(match self.passphrase {
            None => "it is encrypted: put its passphrase in TROVE_SFTP_KEY_PASSPHRASE",
            Some(_) => "refused, or the passphrase in TROVE_SFTP_KEY_PASSPHRASE is wrong",
        })
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
pub(super) fn key_label(key_type: &str) -> &str {
    match key_type {
        "ssh-ed25519" => "ED25519",
        "ssh-rsa" => "RSA",
        "ssh-dss" => "DSA",
        t if t.starts_with("ecdsa-") => "ECDSA",
        t => t,
    }
}

/// `host` on port 22, `[host]:port` otherwise, as known_hosts writes it.
pub(super) fn host_spec(host: &str, port: u16) -> String {
    if port == 22 { host.to_string() } else { format!("[{host}]:{port}") }
}

/// `SHA256:` and the unpadded base64 of the hash, as OpenSSH shows fingerprints.
fn fingerprint(sha256: &[u8]) -> String {
    format!("SHA256:{}", base64(sha256, false))
}

/// An error's text: libssh2's message, with the SFTP status code when there is one.
fn describe(e: &ssh2::Error) -> String {
    match e.code() {
        ErrorCode::SFTP(n) => format!("{} (SFTP status {n})", e.message()),
        ErrorCode::Session(_) => e.message().to_string(),
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
}
