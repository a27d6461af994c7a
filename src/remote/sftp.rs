//! The SFTP remote. Each connection is its own SSH session with the server's `sftp`
//! subsystem, so transfers run one per worker thread; trove's own SFTP client
//! (`sftp_client`) speaks over it, keeping many requests in flight.
//!
//! Two transports carry the session, chosen by the `transport` setting:
//! - `openssh` (the default where an `ssh` program is installed): the user's own `ssh`,
//!   with all of its configuration (`openssh`);
//! - `libssh2`: trove's built-in SSH (`libssh2`), for machines without `ssh`. Host, user,
//!   port and key come from the URL, then the remote's settings, then `~/.ssh/config`,
//!   then defaults.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::backend::{self, Backend, Listed};
use super::sftp_client::{
    Client, FX_FAILURE, FX_NO_SPACE, FX_PERMISSION_DENIED, FX_QUOTA_EXCEEDED, FXF_CREAT, FXF_EXCL, FXF_READ,
    FXF_WRITE, Handle, Outcome, SftpError, Source, StreamError,
};
use super::{Remote, Settings, ssh_config, temp_name};
use crate::error::{Error, RemoteFailure, Result};

const DEFAULT_JOBS: usize = 8;
/// The most connections the reads of one large object are spread over.
const STREAMS_MAX: usize = 4;
const DEFAULT_KEYS: &[&str] = &["id_ed25519", "id_ecdsa", "id_rsa"];

/// What carries the SSH session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// The `ssh` program at this path.
    OpenSsh(PathBuf),
    /// trove's built-in SSH.
    Libssh2,
}

impl Transport {
    /// From the `transport` setting: `auto` (the default) is OpenSSH when an `ssh`
    /// program is on PATH.
    pub fn choose(setting: Option<&str>, remote: &str) -> Result<Transport> {
        match setting.unwrap_or("auto") {
            "libssh2" => Ok(Transport::Libssh2),
            "openssh" => super::openssh::find_ssh().map(Transport::OpenSsh).ok_or_else(|| {
                Error::remote(
                    remote,
                    RemoteFailure::Connect,
                    "`transport: openssh` is set but no `ssh` program is on PATH; install OpenSSH's client \
                     or set `trove remote set NAME transport libssh2`",
                )
            }),
            _ => Ok(super::openssh::find_ssh().map_or(Transport::Libssh2, Transport::OpenSsh)),
        }
    }
}

/// Everything needed to log in, resolved once when the remote is opened.
pub(super) struct Target {
    pub(super) remote: String,
    /// As written in the URL (shown to users, matched in ~/.ssh/config).
    pub(super) host: String,
    /// Where to connect, and the name checked against known_hosts.
    pub(super) host_name: String,
    pub(super) port: u16,
    pub(super) user: String,
    /// The remote root, without a trailing slash; relative to the login folder unless absolute.
    pub(super) root: String,
    pub(super) password: Option<String>,
    pub(super) passphrase: Option<String>,
    /// `keyfile` from the settings, else `IdentityFile` from ~/.ssh/config.
    pub(super) keyfiles: Vec<PathBuf>,
    pub(super) default_keys: Vec<PathBuf>,
    pub(super) known_hosts: PathBuf,
    pub(super) accept_new: bool,
    /// Host key algorithms to ask for, once a connection learnt which type known_hosts has.
    pub(super) host_key_prefs: std::sync::Mutex<Option<String>>,
    // What the OpenSSH transport passes on ssh's command line.
    /// The user and port the URL or the settings name (ssh's config decides otherwise).
    pub(super) explicit_user: Option<String>,
    pub(super) explicit_port: Option<u16>,
    /// Whether the `known_hosts` setting names the file.
    pub(super) known_hosts_explicit: bool,
    /// When HOME is not the account's home: the account's `~/.ssh/known_hosts`, which
    /// ssh uses unless a config names another file, and which trove then replaces with
    /// HOME's (`known_hosts`).
    pub(super) account_known_hosts: Option<PathBuf>,
    /// `-F`: when HOME is not the account's home, ssh (which reads the account's) is
    /// pointed at $HOME/.ssh/config (or none), as the built-in transport reads it.
    pub(super) ssh_config_file: Option<PathBuf>,
    /// `-i`: the `keyfile` setting, and HOME's default keys when HOME was moved.
    pub(super) openssh_keys: Vec<PathBuf>,
    /// What `ssh -G` says of the user's configuration, found once.
    pub(super) openssh_config: std::sync::OnceLock<super::openssh::Effective>,
    /// The OpenSSH transport's master session, which later connections share.
    pub(super) openssh_mux: std::sync::Mutex<super::openssh::Mux>,
}

pub struct SftpRemote {
    name: String,
    url: String,
    jobs: Option<usize>,
    layout: u64,
    target: Arc<Target>,
    transport: Result<Transport>,
}

/// Resolve where and as whom to log in. Nothing touches the network until `connect`.
pub fn open(
    settings: &Settings,
    user: Option<String>,
    host: String,
    port: Option<u16>,
    path: String,
) -> Result<Box<dyn Remote>> {
    let passwd = passwd_entry();
    let (local_user, home) = account(&passwd);
    let ssh = ssh_config::load(home.as_deref(), &host);
    let url = Url { user, host, port, path };
    let mut target = resolve(settings, url, &ssh, local_user.as_deref(), home.as_deref())?;
    // ssh reads ~/.ssh from the account's home, not HOME: when the two differ, point it
    // at HOME's files, as the built-in transport reads them.
    let account_home = passwd.1;
    if let Some(home) = home.as_deref().filter(|h| account_home.as_deref() != Some(*h)) {
        let ssh_dir = home.join(".ssh");
        let config = ssh_dir.join("config");
        target.ssh_config_file = Some(if config.is_file() { config } else { PathBuf::from("none") });
        if !target.known_hosts_explicit {
            target.account_known_hosts = account_home.map(|h| h.join(".ssh").join("known_hosts"));
        }
        if settings.keyfile.is_none() {
            target.openssh_keys =
                target.keyfiles.iter().chain(&target.default_keys).filter(|k| k.is_file()).cloned().collect();
        }
    }
    Ok(Box::new(SftpRemote {
        name: settings.name.clone(),
        url: settings.url.clone(),
        jobs: settings.jobs,
        layout: settings.layout.unwrap_or(crate::store::NEW_LAYOUT),
        target: Arc::new(target),
        transport: Transport::choose(settings.transport.as_deref(), &settings.name),
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
    let explicit_user = user.or_else(|| settings.user.clone());
    let explicit_port = port.or(settings.port);
    let err = |message: String| Error::remote(settings.name.clone(), RemoteFailure::Auth, message);
    let user = explicit_user
        .clone()
        .or_else(|| ssh.user.clone())
        .or_else(|| local_user.map(str::to_string))
        .ok_or_else(|| {
            err(format!(
                "cannot tell which user to log in as; put it in the URL (sftp://USER@{host}/…) or run `trove remote set {} user USER`",
                settings.name
            ))
        })?;
    let host_name = ssh.host_name.clone().unwrap_or_else(|| host.clone());
    let port = explicit_port.or(ssh.port).unwrap_or(22);
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
        explicit_user,
        explicit_port,
        known_hosts_explicit: settings.known_hosts.is_some(),
        account_known_hosts: None,
        ssh_config_file: None,
        openssh_keys: settings.keyfile.iter().cloned().collect(),
        openssh_config: std::sync::OnceLock::new(),
        openssh_mux: std::sync::Mutex::new(super::openssh::Mux::default()),
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
        let client = match &self.transport {
            Ok(Transport::OpenSsh(ssh)) => super::openssh::connect(t, ssh)?,
            Ok(Transport::Libssh2) => super::libssh2::connect(t)?,
            Err(e) => return Err(e.again(&self.name)),
        };
        Ok(Box::new(SftpBackend { target: Arc::clone(t), client, broken: false, dirs: HashSet::new() }))
    }

    fn new_layout(&self) -> u64 {
        self.layout
    }

    fn default_jobs(&self) -> usize {
        self.jobs.unwrap_or(DEFAULT_JOBS)
    }

    /// One connection per two cores, at most [`STREAMS_MAX`]: each connection's ssh
    /// decrypts on a core of its own while the object's chunks are checked and written
    /// on another, so a 2-core machine (where one connection keeps both busy) uses one.
    /// The cores are rayon's threads: `RAYON_NUM_THREADS` when set, else the machine's.
    fn streams_per_object(&self) -> usize {
        (rayon::current_num_threads() / 2).clamp(1, STREAMS_MAX)
    }
}

impl Target {
    /// A target on 127.0.0.1:2299 with no settings, for the transports' unit tests.
    #[cfg(test)]
    pub(super) fn for_tests() -> Target {
        let settings = Settings { name: "r".into(), ..Default::default() };
        let url =
            Url { user: Some("ann".into()), host: "127.0.0.1".into(), port: Some(2299), path: "/x".into() };
        resolve(&settings, url, &ssh_config::HostConfig::default(), None, Some(Path::new("/home/ann")))
            .expect("a target")
    }

    pub(super) fn err(&self, kind: RemoteFailure, message: impl Into<String>) -> Error {
        Error::remote(self.remote.clone(), kind, message)
    }

    /// `host:port`, or `alias (host:port)` when ~/.ssh/config maps the URL's host.
    pub(super) fn addr(&self) -> String {
        if self.host == self.host_name {
            format!("{}:{}", self.host, self.port)
        } else {
            format!("{} ({}:{})", self.host, self.host_name, self.port)
        }
    }

    // The login failures both transports report, in the same words. `shown` is the
    // server's key as "ED25519 key SHA256:…", `kh` the known_hosts file checked; `said`
    // is what ssh said, for the OpenSSH transport.

    pub(super) fn host_key_changed(&self, shown: &str, kh: &str) -> Error {
        let spec = super::libssh2::host_spec(&self.host_name, self.port);
        self.err(
            RemoteFailure::HostKey,
            format!(
                "the host key of {} has CHANGED: the server now shows {shown}, which is not the key {kh} records for it.\n\
                 Someone may be intercepting the connection, or the server was reinstalled. \
                 If you trust the new key, remove the old line (`ssh-keygen -R '{spec}' -f {kh}`) and try again.",
                self.addr()
            ),
        )
    }

    pub(super) fn host_key_revoked(&self, shown: &str, kh: &str) -> Error {
        self.err(
            RemoteFailure::HostKey,
            format!("{} shows {shown}, which {kh} marks as revoked; refusing to connect", self.addr()),
        )
    }

    pub(super) fn host_unknown(&self, shown: &str, kh: &str, said: Option<&str>) -> Error {
        self.err(
            RemoteFailure::HostKey,
            format!(
                "{} is not a known host: {kh} has no key for it; the server shows {shown}.\n\
                 If that is the server's key, accept it with `trove remote set {} host_key accept-new`, \
                 or add it with `ssh-keyscan -p {} {} >> {kh}` (and compare the fingerprint).{}",
                self.addr(),
                self.remote,
                self.port,
                self.host_name,
                ssh_said(said)
            ),
        )
    }

    /// `tried`: what was tried and why each failed (empty: nothing was there to try);
    /// `methods`: what the server accepts.
    pub(super) fn login_refused(
        &self,
        user: &str,
        tried: &[String],
        methods: &str,
        said: Option<&str>,
    ) -> Error {
        let tried = if tried.is_empty() {
            "no password, key file or ssh-agent was available to try".to_string()
        } else {
            format!("tried {}", tried.join(", "))
        };
        self.err(
            RemoteFailure::Auth,
            format!(
                "cannot log in as {user}@{}: {tried}; the server accepts {methods}.\n\
                 Set a key with `trove remote set {r} keyfile PATH`, load one into ssh-agent, \
                 or set a password with `trove remote set {r} password … --local` (or TROVE_SFTP_PASSWORD).{}",
                self.addr(),
                ssh_said(said),
                r = self.remote
            ),
        )
    }

    pub(super) fn no_sftp(&self, why: &str) -> Error {
        self.err(
            RemoteFailure::Connect,
            format!("cannot start SFTP on {} (is the server's SFTP subsystem enabled?): {why}", self.addr()),
        )
    }
}

/// What ssh said, on a line of its own after trove's words.
fn ssh_said(said: Option<&str>) -> String {
    said.map(|s| format!("\n  ssh said: {s}")).unwrap_or_default()
}

/// The local user's name and home: USER / LOGNAME / HOME, else `passwd`'s (the
/// password database's entry).
fn account(passwd: &(Option<String>, Option<PathBuf>)) -> (Option<String>, Option<PathBuf>) {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let name = env("USER").or_else(|| env("LOGNAME")).or_else(|| passwd.0.clone());
    let home =
        std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from).or_else(|| passwd.1.clone());
    (name, home)
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

/// What an SFTP error means for a retry.
fn failure(e: &SftpError) -> RemoteFailure {
    match e {
        e if e.not_found() => RemoteFailure::NotFound,
        SftpError::Status(FX_PERMISSION_DENIED, _) => RemoteFailure::Denied,
        SftpError::Status(..) => RemoteFailure::Io,
        // The connection failed: timed out, or dropped.
        SftpError::Broken(_) => RemoteFailure::Connect,
    }
}

/// Whether an error means the connection failed.
trait Broke {
    fn broke(&self) -> bool;
}

impl Broke for SftpError {
    fn broke(&self) -> bool {
        matches!(self, SftpError::Broken(_))
    }
}

impl Broke for StreamError {
    fn broke(&self) -> bool {
        matches!(self, StreamError::Remote(e) if e.broke())
    }
}

/// The error for a streamed transfer stopped by a signal.
fn interrupted() -> Error {
    crate::interrupt::check().err().unwrap_or(Error::Interrupted { signal: libc::SIGINT })
}

struct SftpBackend {
    target: Arc<Target>,
    client: Client,
    /// The connection failed: every later call fails at once (the pool opens another).
    broken: bool,
    /// Folders (relative to the root) known to exist.
    dirs: HashSet<String>,
}

impl SftpBackend {
    /// Run one call of the client; a failed connection is remembered.
    fn sftp<T, E: From<SftpError> + Broke>(
        &mut self,
        f: impl FnOnce(&mut Client) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        if self.broken {
            return Err(SftpError::Broken("the connection failed earlier".into()).into());
        }
        let r = f(&mut self.client);
        if r.as_ref().is_err_and(Broke::broke) {
            self.broken = true;
        }
        r
    }

    fn stat(&mut self, path: &str) -> std::result::Result<super::sftp_client::Attrs, SftpError> {
        self.sftp(|c| c.stat(path))
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

    fn fail_sftp(&self, what: &str, path: &str, e: &SftpError) -> Error {
        self.target.err(failure(e), format!("{what} {path}: {e}"))
    }

    fn mkdir(&mut self, path: &str) -> Result<()> {
        match self.sftp(|c| c.mkdir(path, 0o755)) {
            Ok(()) => Ok(()),
            // OpenSSH answers a plain "failure" when the folder exists.
            Err(e) => match self.stat(path) {
                Ok(st) if st.is_dir() => Ok(()),
                Ok(_) => Err(self.fail("cannot create folder", path, "a file of that name is in the way")),
                Err(_) => Err(self.fail_sftp("cannot create folder", path, &e)),
            },
        }
    }

    /// Make folder `dir` (relative to the root) and the ones above it, once per connection.
    fn ensure_dir(&mut self, dir: &str) -> Result<()> {
        if dir.is_empty() || self.dirs.contains(dir) {
            return Ok(());
        }
        let up = backend::parent(dir);
        if !up.is_empty() && !self.dirs.contains(up) {
            let up_path = self.path(up);
            if !self.stat(&up_path).is_ok_and(|s| s.is_dir()) {
                self.ensure_dir(up)?;
            }
        }
        let path = self.path(dir);
        self.mkdir(&path)?;
        self.dirs.insert(dir.to_string());
        Ok(())
    }

    fn create_temp(&mut self, temp: &str) -> std::result::Result<Handle, SftpError> {
        self.sftp(|c| c.open(temp, FXF_WRITE | FXF_CREAT | FXF_EXCL, 0o644))
    }

    /// Open a new temp file under `tmp/` (made again when it went missing).
    fn open_temp(&mut self, temp: &str) -> Result<Handle> {
        match self.create_temp(temp) {
            Ok(f) => Ok(f),
            Err(e) if e.not_found() => {
                // tmp/ went missing (cleaned up on the server): make it again.
                let tmp = self.path("tmp");
                self.mkdir(&tmp)?;
                self.create_temp(temp).map_err(|e| self.fail_sftp("cannot create", temp, &e))
            }
            Err(e) => Err(self.fail_sftp("cannot create", temp, &e)),
        }
    }

    /// Write what `src` reads (`size` bytes) to `temp`. Errors name `dest`, the file
    /// being written; a failure to read `src` is an error of `local`.
    fn write_temp(&mut self, src: Source<'_>, local: &Path, size: u64, temp: &str, dest: &str) -> Result<()> {
        let handle = self.open_temp(temp)?;
        let stop = || crate::interrupt::signal().is_some();
        let failed = match self.sftp(|c| c.write_from(&handle, src, &stop)) {
            Ok(_) => None,
            Err(StreamError::Local(e)) => Some(Error::io(local, e)),
            Err(StreamError::Interrupted) => Some(interrupted()),
            Err(StreamError::Remote(e @ SftpError::Broken(_))) => {
                return Err(self.fail_sftp("uploading", dest, &e));
            }
            Err(StreamError::Remote(e)) => Some(self.write_failed(temp, dest, &e, size)),
        };
        // Closing reports what the server could not finish.
        let closed = self.sftp(|c| c.close(handle));
        if let Some(e) = failed {
            return Err(e);
        }
        closed.map_err(|e| match e.code() {
            Some(FX_FAILURE) => self.target.err(
                RemoteFailure::Io,
                format!(
                    "uploading {dest}: the server could not finish writing it ({e}); its disk may be full"
                ),
            ),
            _ => self.fail_sftp("uploading", dest, &e),
        })
    }

    /// A write the server refused. OpenSSH reports a full disk as a plain "failure", so
    /// ask the server how much room is left.
    fn write_failed(&mut self, temp: &str, dest: &str, e: &SftpError, size: u64) -> Error {
        if !matches!(e.code(), Some(FX_FAILURE | FX_NO_SPACE | FX_QUOTA_EXCEEDED)) {
            return self.fail_sftp("uploading", dest, e);
        }
        let free = self.sftp(|c| c.free_bytes(temp)).ok();
        let full = |message: String| self.target.err(RemoteFailure::Full, message);
        match free {
            Some(free) if free > size.saturating_add(1 << 20) => full(format!(
                "uploading {dest}: the server refused a write ({e}) though it reports {free} bytes free; a quota may be exceeded"
            )),
            Some(free) => full(format!(
                "uploading {dest}: the server's disk is full ({free} bytes free; the file is {size} bytes)"
            )),
            None => {
                full(format!("uploading {dest}: the server refused a write ({e}); its disk is likely full"))
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
            let _ = self.sftp(|c| c.remove(&temp));
            return Err(e);
        }
        let Err(first) = self.sftp(|c| c.rename(&temp, &dest)) else { return Ok(()) };
        // SFTP v3 (OpenSSH) will not rename over an existing file: it is already there
        // (same name, same bytes).
        if self.stat(&dest).is_ok() {
            let _ = self.sftp(|c| c.remove(&temp));
            return Ok(());
        }
        // The folder was removed behind our back: make it again, once.
        self.dirs.remove(&dir);
        let again = self.ensure_dir(&dir).and_then(|()| {
            self.sftp(|c| c.rename(&temp, &dest))
                .map_err(|_| self.fail_sftp("cannot move into place", &dest, &first))
        });
        if again.is_err() {
            let _ = self.sftp(|c| c.remove(&temp));
        }
        again
    }

    fn readdir(&mut self, dir: &str) -> Result<Vec<(String, super::sftp_client::Attrs)>> {
        let path = self.path(dir);
        match self.sftp(|c| c.readdir(&path)) {
            Ok(entries) => Ok(entries),
            Err(e) if e.not_found() => Ok(Vec::new()),
            Err(e) => Err(self.fail_sftp("cannot list", &path, &e)),
        }
    }

    /// Read file `path` from `offset` into `out` (at most `size` bytes when given).
    fn read_into(&mut self, path: &str, offset: u64, size: Option<u64>, out: &mut dyn Write) -> Result<u64> {
        let handle =
            self.sftp(|c| c.open(path, FXF_READ, 0)).map_err(|e| self.fail_sftp("cannot open", path, &e))?;
        let read = self.sftp(|c| c.read_to(&handle, offset, size, out));
        // (After a failed connection `sftp` sends nothing.)
        let _ = self.sftp(|c| c.close(handle));
        match read {
            Ok(n) => Ok(n),
            Err(StreamError::Local(e)) => {
                Err(self.fail("downloading", path, format!("cannot write the local copy: {e}")))
            }
            Err(StreamError::Interrupted) => Err(interrupted()),
            Err(StreamError::Remote(e)) => Err(self.fail_sftp("downloading", path, &e)),
        }
    }
}

impl Backend for SftpBackend {
    fn root_exists(&mut self) -> Result<bool> {
        let root = self.target.root.clone();
        match self.stat(&root) {
            Ok(st) => Ok(st.is_dir()),
            Err(e) if e.not_found() => Ok(false),
            Err(e) => Err(self.fail_sftp("cannot stat", &root, &e)),
        }
    }

    fn create_root(&mut self) -> Result<()> {
        let root = self.target.root.clone();
        match self.stat(&root) {
            Ok(st) if st.is_dir() => Ok(()),
            Ok(_) => Err(self
                .target
                .err(RemoteFailure::Denied, format!("cannot use {root}: it is a file, not a folder"))),
            Err(e) if e.not_found() => {
                let parent = match root.rfind('/') {
                    Some(0) => "/".to_string(),
                    Some(i) => root[..i].to_string(),
                    None => ".".to_string(),
                };
                if let Err(e) = self.stat(&parent) {
                    let why =
                        if e.not_found() { "its parent folder does not exist".into() } else { e.to_string() };
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
            Err(e) => Err(self.fail_sftp("cannot use", &root, &e)),
        }
    }

    fn list(&mut self, dir: &str) -> Result<Vec<Listed>> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Ok(self
            .readdir(dir)?
            .into_iter()
            .filter(|(_, a)| a.is_file())
            .map(|(name, a)| {
                let age = a.mtime.map(|m| now.saturating_sub(std::time::Duration::from_secs(m)));
                Listed { name, size: a.size.unwrap_or(0), age }
            })
            .collect())
    }

    fn list_dirs(&mut self, dir: &str) -> Result<Vec<String>> {
        Ok(self.readdir(dir)?.into_iter().filter(|(_, a)| a.is_dir()).map(|(name, _)| name).collect())
    }

    fn exists(&mut self, rel: &str) -> Result<bool> {
        let path = self.path(rel);
        match self.stat(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.not_found() => Ok(false),
            Err(e) => Err(self.fail_sftp("cannot look up", &path, &e)),
        }
    }

    fn read(&mut self, rel: &str, size: Option<u64>, out: &mut dyn Write) -> Result<u64> {
        // Files do not change, so once `size` bytes arrived the read is complete (the
        // caller checks the hash).
        let path = self.path(rel);
        self.read_into(&path, 0, size, out)
    }

    fn read_range(&mut self, rel: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let path = self.path(rel);
        let mut bytes = Vec::with_capacity(len as usize);
        self.read_into(&path, offset, Some(len), &mut bytes)?;
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
        let result = self.sftp(|c| {
            c.read_files(&paths, &mut |i, outcome| {
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
            })
        });
        result.map_err(|e| {
            target.err(RemoteFailure::Protocol, format!("downloading from {}: {e}", target.addr()))
        })
    }

    fn write_file(&mut self, rel: &str, local: &Path) -> Result<()> {
        let mut src = std::fs::File::open(local).map_err(|e| Error::io(local, e))?;
        let size = src.metadata().map_err(|e| Error::io(local, e))?.len();
        self.put(rel, |me, temp, dest| me.write_temp(Source::Read(&mut src), local, size, temp, dest))
    }

    fn write_bytes(&mut self, rel: &str, bytes: &[u8]) -> Result<()> {
        let size = bytes.len() as u64;
        self.put(rel, |me, temp, dest| me.write_temp(Source::Bytes(bytes), Path::new(dest), size, temp, dest))
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
        let result = self.sftp(|c| {
            c.write_files(&files, &mut |i, ok| {
                if ok {
                    done(i, Ok(()))
                } else {
                    again.push(i);
                }
            })
        });
        if let Err(e) = result {
            crate::interrupt::check()?;
            return Err(target.err(RemoteFailure::Protocol, format!("uploading to {}: {e}", target.addr())));
        }
        // What the pipelined path could not do (the file already there, a full disk,
        // a vanished folder) goes the careful way, which tells these apart.
        for i in again {
            let _ = self.sftp(|c| c.remove(&files[i].0));
            done(i, self.write_file(&items[i].0, &items[i].1));
        }
        Ok(())
    }

    fn replace(&mut self, rel: &str, bytes: &[u8]) -> Result<()> {
        let dest = self.path(rel);
        let temp = self.path(&format!("tmp/{}", temp_name()));
        let size = bytes.len() as u64;
        let written = self.write_temp(Source::Bytes(bytes), Path::new(&dest), size, &temp, &dest);
        if let Err(e) = written {
            let _ = self.sftp(|c| c.remove(&temp));
            return Err(e);
        }
        // SFTP v3 renames only to a free name: the old file goes first.
        if self.sftp(|c| c.rename(&temp, &dest)).is_err() {
            let _ = self.sftp(|c| c.remove(&dest));
            if let Err(e) = self.sftp(|c| c.rename(&temp, &dest)) {
                let _ = self.sftp(|c| c.remove(&temp));
                return Err(self.fail_sftp("cannot write", &dest, &e));
            }
        }
        Ok(())
    }

    fn delete(&mut self, rel: &str) -> Result<()> {
        let path = self.path(rel);
        match self.sftp(|c| c.remove(&path)) {
            Ok(()) => Ok(()),
            Err(e) if e.not_found() => Ok(()),
            Err(e) => Err(self.fail_sftp("cannot delete", &path, &e)),
        }
    }

    fn remove_empty_dir(&mut self, rel: &str) -> Result<()> {
        // A server refuses to remove a folder that is not empty; that is not an error here.
        let path = self.path(rel);
        let _ = self.sftp(|c| c.rmdir(&path));
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        // SFTP has no "sync everything". fsync@openssh.com on one file commits the
        // server's file system journal, which on the common Linux file systems carries
        // the renames of this push with it. Best effort: other servers lack it.
        if !self.client.has_extension("fsync@openssh.com") {
            return Ok(());
        }
        let path = self.path(super::LAYOUT_FILE);
        if let Ok(h) = self.sftp(|c| c.open(&path, FXF_READ, 0)) {
            let _ = self.sftp(|c| c.fsync(&h));
            let _ = self.sftp(|c| c.close(h));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
