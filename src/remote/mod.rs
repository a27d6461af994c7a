//! Remotes: where objects are pushed to and fetched from. One trait, a backend per URL scheme.
//!
//! Backends: a folder (`local`), SFTP (`sftp`), S3 (`s3`, keys from `aws`). Layout on
//! every remote: `<root>/TROVE_REMOTE` (names the layout version), then layout 1's
//! `<root>/objects/<2 hex>/<62 hex>[.dir]` (see [`ObjectKey`]) or layout 2's packs and
//! index (`crate::store`), and `<root>/tmp/` for uploads in flight (none on S3).

pub mod aws;
pub mod backend;
mod libssh2;
pub mod local;
pub mod openssh;
pub mod pool;
pub mod s3;
pub mod sftp;
mod sftp_client;
pub mod ssh_config;

use std::path::{Path, PathBuf};

use crate::error::{Error, RemoteFailure, Result};
pub use crate::hash::ObjectKey;
use crate::repo::Repo;
pub use backend::Backend;

pub const LAYOUT_FILE: &str = "TROVE_REMOTE";
/// The layouts this trove reads and writes (see `crate::store`).
pub const LAYOUTS: [u64; 2] = [1, 2];

/// The `TROVE_REMOTE` text of a layout.
pub fn layout_text(layout: u64) -> String {
    let what = match layout {
        1 => "objects/<2 hex>/<62 hex>[.dir]",
        _ => "chunks in packs/<2 hex>/<64 hex>, found through index/<64 hex>; locks/ for prune",
    };
    format!("# trove remote: {what}; uploads in flight under tmp/\nlayout: {layout}\n")
}

/// An upload temp file not written to for this long belongs to a push that died: a
/// running upload writes to its temp without pause (an SFTP request gives up after 2
/// minutes), so an hour also allows for a server clock some minutes off this one's.
pub const STALE_UPLOAD: std::time::Duration = std::time::Duration::from_secs(3600);

/// A file under a remote's `tmp/`.
#[derive(Debug, Clone)]
pub struct Temp {
    pub name: String,
    pub size: u64,
    /// Since it was last written (by the server's clock, against this machine's), when known.
    pub age: Option<std::time::Duration>,
}

impl Temp {
    /// Whether no upload will finish it: it was not written to for [`STALE_UPLOAD`], or
    /// the push on this machine that made it is no longer running.
    pub fn is_stale(&self) -> bool {
        self.age.is_some_and(|age| age > STALE_UPLOAD) || made_by_a_dead_process_here(&self.name)
    }

    /// Whether this process made it.
    pub fn is_own(&self) -> bool {
        self.name.starts_with(temp_prefix())
    }
}

/// A temp name for an upload that no other upload (of this or another process, on this
/// or another machine) uses: `up-MACHINE-PID-NONCE-N`.
pub fn temp_name() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!("{}{}", temp_prefix(), COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// `up-MACHINE-PID-NONCE-`: the start of every temp name this process uploads to. MACHINE
/// names this machine's boot and PID namespace, so a later push here can tell the temps
/// of a push that was killed by its PID; NONCE tells a reused PID's temps apart.
fn temp_prefix() -> &'static str {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PREFIX.get_or_init(|| {
        let nonce = blake3::hash(
            format!(
                "{} {:?}",
                std::process::id(),
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default()
            )
            .as_bytes(),
        );
        format!("up-{}-{}-{}-", machine(), std::process::id(), &nonce.to_hex()[..8])
    })
}

/// 12 hex digits naming this machine's boot and PID namespace (where a PID means one
/// process); random when they cannot be read, so no other process's temps look like ours.
fn machine() -> &'static str {
    static MACHINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MACHINE.get_or_init(|| {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok();
        let namespace = std::fs::read_link("/proc/self/ns/pid").ok();
        let seed = match (boot, namespace) {
            (Some(b), Some(n)) => format!("{} {}", b.trim(), n.display()),
            _ => format!("{:?} {}", std::time::SystemTime::now(), std::process::id()),
        };
        blake3::hash(seed.as_bytes()).to_hex()[..12].to_string()
    })
}

/// A name for a file this process puts on a remote (a lock): `WORD-MACHINE-PID-NONCE`,
/// unique to this process, and telling a later process here whether it still runs.
pub fn process_name(word: &str) -> String {
    format!("{word}-{}", temp_prefix().strip_prefix("up-").unwrap_or_default().trim_end_matches('-'))
}

/// Whether a file named by [`temp_name`] or [`process_name`] was made on this machine by
/// a process that is no longer running.
pub fn made_by_a_dead_process_here(name: &str) -> bool {
    let mut parts = name.split('-');
    let (Some(_), Some(m), Some(pid)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else { return false };
    m == machine() && crate::link::is_gone(pid)
}

/// The content of `TROVE_REMOTE`, or None when there is none (or no root folder).
pub fn read_layout(b: &mut dyn Backend) -> Result<Option<String>> {
    let mut bytes = Vec::new();
    match b.read(LAYOUT_FILE, Some(64 << 10), &mut bytes) {
        Ok(_) => {}
        Err(Error::Remote { kind: RemoteFailure::NotFound, .. }) => return Ok(None),
        Err(e) => return Err(e),
    }
    // Bytes that are not UTF-8 fail `check_layout` like any malformed text.
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Make an empty remote of `layout`: the root folder (when its parent exists), `tmp/`
/// and `TROVE_REMOTE`.
pub fn init_layout(b: &mut dyn Backend, layout: u64) -> Result<()> {
    b.create_root()?;
    b.write_bytes(LAYOUT_FILE, layout_text(layout).as_bytes())
}

/// The files under `tmp/` (none when there is no `tmp/`).
pub fn list_temps(b: &mut dyn Backend) -> Result<Vec<Temp>> {
    Ok(b.list("tmp")?.into_iter().map(|l| Temp { name: l.name, size: l.size, age: l.age }).collect())
}

/// Delete the file `tmp/NAME`; one that is already gone is not an error.
pub fn delete_temp(b: &mut dyn Backend, name: &str) -> Result<()> {
    b.delete(&backend::join("tmp", name))
}

/// Delete temp files under `tmp/` that no upload will finish: this process's own (left
/// by uploads that failed and were retried) and any older than [`STALE_UPLOAD`] (left by
/// killed pushes). Best effort, at the end of a push.
pub fn clean_temps(b: &mut dyn Backend) -> Result<()> {
    for t in list_temps(b)? {
        if t.is_own() || t.is_stale() {
            let _ = delete_temp(b, &t.name);
        }
    }
    Ok(())
}

/// A configured remote: knows how to connect.
pub trait Remote: Send + Sync {
    /// The remote's name in the config.
    fn name(&self) -> &str;
    /// Its URL as shown to users (never with a secret).
    fn url(&self) -> &str;
    /// Open a new connection to its storage.
    fn connect(&self) -> Result<Box<dyn Backend>>;
    /// How many connections a transfer uses when `-j` is not given.
    fn default_jobs(&self) -> usize;
    /// The layout a push gives the remote when it creates it.
    fn new_layout(&self) -> u64;
    /// Over how many connections the reads of one large object may be spread. One, but
    /// where each connection's decryption runs in a process of its own (SFTP).
    fn streams_per_object(&self) -> usize {
        1
    }
}

/// A remote's settings, merged from config and config.local (and the environment for secrets).
#[derive(Clone, Default)]
pub struct Settings {
    pub name: String,
    pub url: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub keyfile: Option<std::path::PathBuf>,
    /// From config.local or TROVE_SFTP_PASSWORD; never printed.
    pub password: Option<String>,
    /// From TROVE_SFTP_KEY_PASSPHRASE.
    pub key_passphrase: Option<String>,
    pub known_hosts: Option<std::path::PathBuf>,
    /// `host_key: accept-new`: record an unknown host key instead of refusing it.
    pub accept_new_host_key: bool,
    /// SFTP: `auto` (the default), `openssh` or `libssh2`.
    pub transport: Option<String>,
    pub jobs: Option<usize>,
    /// The layout a push gives the remote when it creates it (`layout`).
    pub layout: Option<u64>,
    /// An S3 remote's settings.
    pub s3: S3Settings,
}

/// The settings only S3 remotes have.
#[derive(Clone, Default, Debug)]
pub struct S3Settings {
    /// `https://HOST[:PORT]` of a store other than AWS (`http://` for one without TLS).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Bucket in the path (`endpoint/bucket/key`) rather than in the host name; the
    /// default is true with an endpoint, false for AWS.
    pub path_style: Option<bool>,
    /// PEM file of the CAs that sign the endpoint's certificate (else the webpki roots).
    pub ca_file: Option<PathBuf>,
    /// Objects larger than this many bytes go up in parts.
    pub multipart_threshold: Option<u64>,
    /// Where the credentials are (`profile`, and keys from config.local).
    pub sources: aws::Sources,
}

impl std::fmt::Debug for Settings {
    /// Everything but the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "(set)");
        f.debug_struct("Settings")
            .field("name", &self.name)
            .field("url", &redact_url(&self.url))
            .field("user", &self.user)
            .field("port", &self.port)
            .field("keyfile", &self.keyfile)
            .field("password", &hidden(&self.password))
            .field("key_passphrase", &hidden(&self.key_passphrase))
            .field("known_hosts", &self.known_hosts)
            .field("accept_new_host_key", &self.accept_new_host_key)
            .field("transport", &self.transport)
            .field("jobs", &self.jobs)
            .field("layout", &self.layout)
            .field("s3", &self.s3)
            .finish()
    }
}

impl Settings {
    /// Read remote `name` (or the default remote) from the repository's config.
    pub fn load(repo: &Repo, name: Option<&str>) -> Result<Settings> {
        let cfg = &repo.config;
        let name = match name {
            Some(n) => n.to_string(),
            None => cfg.get("core.remote").map(crate::config::show).ok_or_else(|| {
                Error::Usage(match cfg.remote_names().as_slice() {
                    [] => "no remote is configured; add one with `trove remote add NAME URL --default`"
                        .to_string(),
                    names => format!(
                        "no default remote; pass -r NAME ({}) or set one with `trove remote default NAME`",
                        names.join(", ")
                    ),
                })
            })?,
        };
        let url = cfg.remote_value(&name, "url").ok_or_else(|| {
            Error::Usage(format!("no remote named `{name}`; `trove remote list` shows the configured ones"))
        })?;
        let home_relative = |p: String| setting_path(&repo.root, &p);
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Ok(Settings {
            user: cfg.remote_value(&name, "user"),
            port: cfg.remote_value(&name, "port").and_then(|p| p.parse().ok()),
            keyfile: cfg.remote_value(&name, "keyfile").map(home_relative),
            password: cfg.remote_value(&name, "password").or_else(|| env("TROVE_SFTP_PASSWORD")),
            key_passphrase: env("TROVE_SFTP_KEY_PASSPHRASE"),
            known_hosts: cfg.remote_value(&name, "known_hosts").map(home_relative),
            accept_new_host_key: cfg.remote_value(&name, "host_key").as_deref() == Some("accept-new"),
            transport: cfg.remote_value(&name, "transport"),
            jobs: cfg.remote_value(&name, "jobs").and_then(|j| j.parse().ok()),
            layout: cfg.remote_value(&name, "layout").and_then(|l| l.parse().ok()),
            s3: S3Settings {
                endpoint: cfg.remote_value(&name, "endpoint"),
                region: cfg.remote_value(&name, "region"),
                path_style: cfg.remote_value(&name, "path_style").and_then(|v| v.parse().ok()),
                ca_file: cfg.remote_value(&name, "ca_file").map(home_relative),
                multipart_threshold: cfg
                    .remote_value(&name, "multipart_threshold")
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|mib| mib << 20),
                sources: aws::Sources {
                    profile: cfg.remote_value(&name, "profile"),
                    access_key_id: cfg.remote_value(&name, "access_key_id"),
                    secret_access_key: cfg.remote_value(&name, "secret_access_key"),
                    session_token: cfg.remote_value(&name, "session_token"),
                },
            },
            name,
            url,
        })
    }
}

/// The file a path setting (`keyfile`, `known_hosts`) names: `~/` is the home folder,
/// other relative paths are relative to the repository's top folder `root`.
pub fn setting_path(root: &Path, value: &str) -> PathBuf {
    match (value.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => root.join(value),
    }
}

/// Open remote `name` (or the default one) with the backend its URL names.
pub fn open(repo: &Repo, name: Option<&str>) -> Result<Box<dyn Remote>> {
    let settings = Settings::load(repo, name)?;
    match parse_url(&settings.url, &repo.root)? {
        Location::Folder(path) => Ok(Box::new(local::FolderRemote::new(&settings, path))),
        Location::Sftp { user, host, port, path } => sftp::open(&settings, user, host, port, path),
        Location::S3(location) => s3::open(&settings, location),
    }
}

/// Start opening `remote`'s first connection in the background, so that an SSH login
/// (most of a no-op push or `status --remote` over SFTP) overlaps the local work that
/// comes before the first request: reading pointers, experiment records, manifests. The
/// first [`Remote::connect`] takes that connection (or its error); later ones connect as
/// usual. A command that ends without connecting leaves the login to end with it.
pub fn connect_early(remote: Box<dyn Remote>) -> Box<dyn Remote> {
    let remote: std::sync::Arc<dyn Remote> = remote.into();
    let connecting = std::sync::Arc::clone(&remote);
    let first = std::thread::spawn(move || connecting.connect());
    Box::new(Early { inner: remote, first: std::sync::Mutex::new(Some(first)) })
}

/// A connection being opened on another thread.
type Connecting = std::thread::JoinHandle<Result<Box<dyn Backend>>>;

/// See [`connect_early`].
struct Early {
    inner: std::sync::Arc<dyn Remote>,
    first: std::sync::Mutex<Option<Connecting>>,
}

impl Remote for Early {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn url(&self) -> &str {
        self.inner.url()
    }
    fn connect(&self) -> Result<Box<dyn Backend>> {
        let first = self.first.lock().expect("first connection").take();
        match first {
            Some(handle) => handle.join().unwrap_or_else(|_| {
                Err(Error::remote(self.name(), RemoteFailure::Io, "connecting failed unexpectedly"))
            }),
            None => self.inner.connect(),
        }
    }
    fn default_jobs(&self) -> usize {
        self.inner.default_jobs()
    }
    fn new_layout(&self) -> u64 {
        self.inner.new_layout()
    }
    fn streams_per_object(&self) -> usize {
        self.inner.streams_per_object()
    }
}

/// The layout a remote's `TROVE_REMOTE` text names, when this trove understands it.
pub fn check_layout(remote: &str, text: &str) -> Result<u64> {
    let bad = |message: String| Error::remote(remote, RemoteFailure::Corrupt, message);
    if crate::yaml::too_deep(text).is_some() {
        return Err(bad(format!("{LAYOUT_FILE} is {}", crate::yaml::too_deep_message())));
    }
    let value: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| bad(format!("{LAYOUT_FILE} is not valid YAML: {e}")))?;
    match value.get("layout").and_then(|v| v.as_u64()) {
        Some(layout) if LAYOUTS.contains(&layout) => Ok(layout),
        Some(other) => Err(bad(format!(
            "{LAYOUT_FILE} says layout {other}; this trove understands layouts 1 and 2 (upgrade trove)"
        ))),
        None => Err(bad(format!("{LAYOUT_FILE} has no `layout:` version"))),
    }
}

/// Remote URLs are shown without their password (one redaction for the crate).
pub use crate::redact::url as redact_url;

/// What a remote URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Folder(std::path::PathBuf),
    Sftp { user: Option<String>, host: String, port: Option<u16>, path: String },
    S3(s3::Location),
}

/// Parse `/path`, `file:///path`, `sftp://[user@]host[:port]/path`, `ssh://…` or
/// `s3://bucket[/prefix]`.
pub fn parse_url(url: &str, base: &Path) -> Result<Location> {
    let shown = redact_url(url);
    let bad = |m: &str| Error::Usage(format!("remote URL `{shown}`: {m}"));
    if let Some(rest) = url.strip_prefix("s3://") {
        return s3::parse(rest).map(Location::S3).map_err(|m| bad(&m));
    }
    if let Some(rest) = url.strip_prefix("sftp://").or_else(|| url.strip_prefix("ssh://")) {
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => return Err(bad("has no path after the host (e.g. sftp://host/srv/data)")),
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, authority),
        };
        if user.as_deref().is_some_and(|u| u.contains(':')) {
            return Err(bad(
                "passwords do not belong in URLs; use `trove remote set NAME password … --local` or TROVE_SFTP_PASSWORD",
            ));
        }
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            let (h, rest) = h.split_once(']').ok_or_else(|| bad("unclosed [ in host"))?;
            let port = match rest.strip_prefix(':') {
                Some(p) => Some(p.parse::<u16>().map_err(|_| bad("port is not a number"))?),
                None => None,
            };
            (h.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => {
                    (h.to_string(), Some(p.parse::<u16>().map_err(|_| bad("port is not a number"))?))
                }
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        // `sftp://host/~/data` or `sftp://host/./data` for paths relative to the login folder.
        let path = path
            .strip_prefix("/~/")
            .or_else(|| path.strip_prefix("/./"))
            .map_or_else(|| path.to_string(), |p| p.to_string());
        return Ok(Location::Sftp { user, host, port, path });
    }
    let path = if let Some(p) = url.strip_prefix("file://") {
        if !p.starts_with('/') {
            return Err(bad("a file:// URL needs an absolute path (file:///srv/data)"));
        }
        std::path::PathBuf::from(p)
    } else if url.contains("://") {
        return Err(bad("unknown scheme; use a folder path, file://, sftp://, ssh:// or s3://"));
    } else {
        base.join(url)
    };
    Ok(Location::Folder(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let base = Path::new("/repo");
        assert_eq!(parse_url("../store", base).unwrap(), Location::Folder("/repo/../store".into()));
        assert_eq!(parse_url("file:///srv/x", base).unwrap(), Location::Folder("/srv/x".into()));
        assert_eq!(
            parse_url("sftp://ann@host:2222/srv/data", base).unwrap(),
            Location::Sftp {
                user: Some("ann".into()),
                host: "host".into(),
                port: Some(2222),
                path: "/srv/data".into()
            }
        );
        assert_eq!(
            parse_url("ssh://host/~/data", base).unwrap(),
            Location::Sftp { user: None, host: "host".into(), port: None, path: "data".into() }
        );
        assert_eq!(
            parse_url("s3://bucket/x/y", base).unwrap(),
            Location::S3(s3::Location { bucket: "bucket".into(), prefix: "x/y".into() })
        );
        assert!(parse_url("gs://bucket/x", base).is_err());
        assert!(parse_url("sftp://u:pw@host/x", base).is_err());
    }

    #[test]
    fn keys_and_layout() {
        let id = crate::hash::ObjectId::of_bytes(b"x");
        let k = ObjectKey::manifest(id);
        assert_eq!(ObjectKey::from_listing(&k.prefix(), &k.file_name()), Some(k));
        assert!(k.rel_path().ends_with(".dir"));
        assert_eq!(check_layout("r", &layout_text(1)).unwrap(), 1);
        assert_eq!(check_layout("r", &layout_text(2)).unwrap(), 2);
        assert!(check_layout("r", "layout: 3\n").unwrap_err().to_string().contains("layout 3"));
    }
}
