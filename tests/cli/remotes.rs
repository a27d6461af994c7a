//! Remotes: one suite run against a folder remote, an SFTP remote on a real OpenSSH
//! server (started on 127.0.0.1 by `support/sshd.rs`; over each transport, the OpenSSH
//! client and libssh2) and an S3 remote on a real S3
//! server (s3s-fs, started by `support/s3.rs`), plus the SFTP-only cases (authentication
//! and host keys); s3.rs has the S3-only ones.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::s3::{self as s3_server, S3Server};
use crate::sshd::{self, Sshd};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Folder,
    /// SFTP over the OpenSSH client (`transport: openssh`).
    Sftp,
    /// SFTP over the built-in libssh2 transport (`transport: libssh2`).
    SftpLibssh2,
    S3,
}

impl Backend {
    pub(crate) fn is_sftp(self) -> bool {
        matches!(self, Backend::Sftp | Backend::SftpLibssh2)
    }

    /// The `transport` setting of an SFTP backend.
    pub(crate) fn transport(self) -> Option<&'static str> {
        match self {
            Backend::Sftp => Some("openssh"),
            Backend::SftpLibssh2 => Some("libssh2"),
            Backend::Folder | Backend::S3 => None,
        }
    }
}

/// Generate `#[test]`s running each named function (which takes a [`Backend`]) on the
/// folder backend, in a module `folder`, on SFTP over OpenSSH, in `sftp`, on SFTP over
/// libssh2, in `sftp_libssh2`, and on S3, in `s3`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod folder {
            $(#[test] fn $name() { super::$name($crate::remotes::Backend::Folder) })*
        }
        mod sftp {
            $(#[test] fn $name() { super::$name($crate::remotes::Backend::Sftp) })*
        }
        mod sftp_libssh2 {
            $(#[test] fn $name() { super::$name($crate::remotes::Backend::SftpLibssh2) })*
        }
        mod s3 {
            $(#[test] fn $name() { super::$name($crate::remotes::Backend::S3) })*
        }
    };
}
pub(crate) use both_backends;

/// A remote for one test: where its files are on this machine, how trove reaches them,
/// and the layout its pushes give it.
pub(crate) struct Remote {
    pub(crate) server: Option<Sshd>,
    pub(crate) s3: Option<S3Server>,
    /// A scratch folder for remotes of the folder backend.
    scratch: tempfile::TempDir,
    /// The `layout` setting `configure` writes (1: a file per object; 2: packs).
    layout: u32,
    /// The `transport` setting `configure` writes (SFTP).
    transport: Option<&'static str>,
}

impl Remote {
    /// A remote of the default layout (2).
    pub(crate) fn new(backend: Backend) -> Remote {
        Remote::of_layout(backend, 2)
    }

    pub(crate) fn of_layout(backend: Backend, layout: u32) -> Remote {
        Remote::with_server(backend, layout, Sshd::start)
    }

    pub(crate) fn with_server(backend: Backend, layout: u32, start: impl FnOnce() -> Sshd) -> Remote {
        let server = backend.is_sftp().then(start);
        let s3 = (backend == Backend::S3).then(S3Server::start);
        let scratch = tempfile::Builder::new().prefix("trove-remote-").tempdir().expect("temp dir");
        Remote { server, s3, scratch, layout, transport: backend.transport() }
    }

    /// A folder on the "server side" where remote roots can go (S3: the bucket's).
    pub(crate) fn base(&self) -> PathBuf {
        match (&self.server, &self.s3) {
            (Some(s), _) => s.data.clone(),
            (_, Some(s3)) => s3.bucket_dir(),
            _ => fs::canonicalize(self.scratch.path()).unwrap(),
        }
    }

    /// The default remote root.
    pub(crate) fn root(&self) -> PathBuf {
        self.base().join("store")
    }

    pub(crate) fn url_of(&self, root: &Path) -> String {
        match (&self.server, &self.s3) {
            (Some(s), _) => s.url(root),
            (_, Some(s3)) => s3.url(root),
            _ => root.display().to_string(),
        }
    }

    pub(crate) fn s3(&self) -> &S3Server {
        self.s3.as_ref().expect("an S3 remote")
    }

    pub(crate) fn server(&self) -> &Sshd {
        self.server.as_ref().expect("an SFTP remote")
    }

    /// `remote add store URL --default`, with this remote's layout and (SFTP) transport
    /// and the test server's key and known_hosts.
    pub(crate) fn configure_at(&self, env: &Env, root: &Path) {
        env.ok(&["remote", "add", "store", &self.url_of(root), "--default"]);
        env.ok(&["remote", "set", "store", "layout", &self.layout.to_string()]);
        if let Some(transport) = self.transport {
            env.ok(&["remote", "set", "store", "transport", transport]);
        }
        if let Some(s) = &self.server {
            env.ok(&["remote", "set", "store", "keyfile", s.key.to_str().unwrap()]);
            env.ok(&["remote", "set", "store", "known_hosts", s.known_hosts.to_str().unwrap()]);
        }
        if let Some(s3) = &self.s3 {
            configure_s3(env, "store", s3);
        }
    }

    pub(crate) fn configure(&self, env: &Env) {
        self.configure_at(env, &self.root());
    }

    /// Layout 1's object files on the remote, as `(name without the fan-out slash, path)`.
    pub(crate) fn objects_at(&self, root: &Path) -> Vec<(String, PathBuf)> {
        assert_eq!(self.layout, 1, "object files are layout 1's; layout 2 keeps packs");
        let mut files = Vec::new();
        walk(&root.join("objects"), &mut files);
        files
            .into_iter()
            .map(|p| {
                let prefix = p.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
                (format!("{prefix}{}", p.file_name().unwrap().to_string_lossy()), p)
            })
            .collect()
    }

    pub(crate) fn objects(&self) -> Vec<(String, PathBuf)> {
        self.objects_at(&self.root())
    }

    /// Layout 2's pack files under `root`.
    pub(crate) fn packs_at(&self, root: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        walk(&root.join("packs"), &mut files);
        files.sort();
        files
    }

    /// Layout 2's index files under `root`.
    pub(crate) fn index_files_at(&self, root: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        walk(&root.join("index"), &mut files);
        files.sort();
        files
    }

    /// Something of the push has arrived: an object file (layout 1), a pack (layout 2).
    pub(crate) fn stored_files(&self) -> usize {
        match self.layout {
            1 => self.objects().len(),
            _ => self.packs_at(&self.root()).len(),
        }
    }

    /// How many objects the remote holds, as `env` (whose cache holds everything it
    /// pushed) sees it. Layout 1: its object files. Layout 2, where objects share packs: a
    /// push with nothing left to send counts what it found there.
    pub(crate) fn count_objects(&self, env: &Env) -> usize {
        self.count_objects_with(env, &[])
    }

    /// [`Self::count_objects`] with extra environment variables (e.g. an agent's socket).
    pub(crate) fn count_objects_with(&self, env: &Env, vars: &[(&str, &str)]) -> usize {
        match self.layout {
            1 => self.objects().len(),
            _ => {
                let v = run_with(env, &env.root, &["--json", "push"], vars).ok().json();
                assert_eq!(v["transfer"]["files"], 0, "a push counting the remote's objects sent some: {v}");
                v["transfer"]["already_there"].as_u64().unwrap() as usize
            }
        }
    }

    /// Everything stored on the remote hashes to its name (layout 1: objects; layout 2:
    /// packs and index files), and nothing is left under tmp/.
    pub(crate) fn assert_sound(&self, root: &Path) {
        match self.layout {
            1 => {
                for (name, path) in self.objects_at(root) {
                    let id = name.trim_end_matches(".dir");
                    assert_eq!(
                        blake3_file(&path),
                        id,
                        "remote object {} does not match its name",
                        path.display()
                    );
                }
            }
            _ => {
                for path in self.packs_at(root).into_iter().chain(self.index_files_at(root)) {
                    let name = path.file_name().unwrap().to_string_lossy().into_owned();
                    assert_eq!(
                        blake3_file(&path),
                        name,
                        "remote file {} does not match its name",
                        path.display()
                    );
                }
            }
        }
        let mut temps = Vec::new();
        walk(&root.join("tmp"), &mut temps);
        assert!(temps.is_empty(), "uploads left under tmp/: {temps:?}");
    }

    /// Every file under the remote's root with its length, to see that nothing changed.
    pub(crate) fn snapshot(&self, root: &Path) -> Vec<(PathBuf, u64)> {
        let mut files = Vec::new();
        walk(root, &mut files);
        files.sort();
        files.into_iter().map(|f| (f.clone(), fs::metadata(&f).unwrap().len())).collect()
    }

    /// Layout 2: the pack holding `content` (a stretch of an incompressible file, which
    /// is stored raw) and where in it that stretch starts.
    pub(crate) fn find_in_packs(&self, content: &[u8]) -> (PathBuf, usize) {
        for pack in self.packs_at(&self.root()) {
            let bytes = fs::read(&pack).unwrap();
            if let Some(at) = bytes.windows(content.len()).position(|w| w == content) {
                return (pack, at);
            }
        }
        panic!("no pack holds the {} bytes looked for", content.len());
    }

    /// Layout 2: remove everything pushed (packs, index files) and this client's copies
    /// of the index files, keeping the layout: an empty remote of layout 2.
    pub(crate) fn wipe_layout2(&self, env: &Env) {
        for dir in ["packs", "index"] {
            for e in fs::read_dir(self.root().join(dir)).into_iter().flatten().flatten() {
                fs::remove_dir_all(e.path()).or_else(|_| fs::remove_file(e.path())).unwrap();
            }
        }
        let _ = fs::remove_dir_all(env.path(".trove/state/remotes"));
    }

    pub(crate) fn describe(&self) -> String {
        match (&self.server, &self.s3) {
            (Some(s), _) => format!("sshd log:\n{}", s.log_text()),
            (_, Some(s3)) => format!("s3s-fs log:\n{}", s3.log_text()),
            _ => String::new(),
        }
    }
}

/// Point remote `name` at `server` (its keys are in the tests' shared credentials file,
/// [`s3_credentials`]).
pub(crate) fn configure_s3(env: &Env, name: &str, server: &S3Server) {
    env.ok(&["remote", "set", name, "endpoint", &server.endpoint()]);
}

/// Let a file of the remote be rewritten (they are stored read-only).
pub(crate) fn writable(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
}

/// Commit the pointers and the remote's settings, as a user does before others clone.
pub(crate) fn commit_all(env: &Env) {
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", "data and remote"]);
}

/// A dataset: nested folders, an empty file, an executable, plus a 3 MiB model file.
fn write_dataset(env: &Env) {
    for i in 0..40u64 {
        env.write(&format!("data/part{}/f{i:02}.bin", i % 4), noise(1000 + i as usize * 37, i));
    }
    env.write("data/empty.txt", "");
    env.write_exec("data/run.sh", "#!/bin/sh\necho hi\n");
    env.write("model.bin", noise(3 << 20, 99));
}

pub(crate) fn assert_same_tree(a: &Env, b: &Env, rel: &str) {
    let mut files = Vec::new();
    walk(&a.path(rel), &mut files);
    assert!(!files.is_empty());
    for f in files {
        let r = f.strip_prefix(&a.root).unwrap().to_str().unwrap().to_string();
        assert_eq!(a.read(&r), b.read(&r), "{r} differs after the round trip");
        assert_eq!(mode(&a.path(&r)) & 0o111 != 0, mode(&b.path(&r)) & 0o111 != 0, "{r}: exec bit");
    }
}

/// Generate `#[test]`s running suite functions on every backend, each on both layouts
/// (`$both`) or on layout 1 only (`$one`, for tests about layout 1's object files).
macro_rules! suite {
    (both: [$($both:ident),* $(,)?], layout1_only: [$($one:ident),* $(,)?] $(,)?) => {
        suite!(@backend folder, Folder, [$($both),*], [$($one),*]);
        suite!(@backend sftp, Sftp, [$($both),*], [$($one),*]);
        suite!(@backend sftp_libssh2, SftpLibssh2, [$($both),*], [$($one),*]);
        suite!(@backend s3, S3, [$($both),*], [$($one),*]);
    };
    (@backend $m:ident, $b:ident, [$($both:ident),*], [$($one:ident),*]) => {
        mod $m {
            mod layout1 {
                $(#[test] fn $both() { super::super::$both(super::super::Backend::$b, 1) })*
                $(#[test] fn $one() { super::super::$one(super::super::Backend::$b, 1) })*
            }
            mod layout2 {
                $(#[test] fn $both() { super::super::$both(super::super::Backend::$b, 2) })*
            }
        }
    };
}

suite!(
    both: [
        round_trip_through_a_fresh_clone,
        pull_of_one_path_fetches_only_that,
        corrupt_remote_object_is_detected_and_never_placed,
        truncated_or_extended_remote_objects_are_corrupt,
        two_pushes_of_the_same_objects_at_once,
        interrupted_push_resumes,
        ctrl_c_during_a_push_removes_its_uploads_in_flight,
        temps_of_a_killed_push_on_this_machine_are_removed_at_once,
        unknown_layout_version_is_refused,
        missing_remote_path_is_reported,
        full_remote_disk_fails_cleanly,
        status_against_a_remote,
        ci_clone_and_pull_without_a_terminal,
    ],
    layout1_only: [
        // One object file removed at a time; on layout 2 objects share packs, and a
        // missing pack is layout2.rs's `missing_pack_*` test.
        missing_remote_objects_are_named_and_the_rest_fetched,
        // `gc --remote` prunes layout 1 only (layout 2 refuses until packs can be pruned).
        gc_remote_removes_stale_upload_temps,
    ],
);

fn round_trip_through_a_fresh_clone(b: Backend, layout: u32) {
    let remote = Remote::of_layout(b, layout);
    let env = Env::new();
    write_dataset(&env);
    env.ok(&["add", "data", "model.bin"]);
    remote.configure(&env);
    commit_all(&env);

    let v = env.json(&["push"]);
    let t = &v["transfer"];
    // 42 files in data/ (one empty), its manifest, and model.bin: 44 objects.
    assert_eq!(t["files"], 44, "{v}\n{}", remote.describe());
    assert_eq!(t["already_there"], 0, "{v}");
    assert_eq!(t["remote"], "store");
    assert!(v.get("checked_out").is_none(), "push reports no checkout: {v}");
    if layout == 1 {
        assert_eq!(remote.objects().len(), 44);
    } else {
        assert!(
            !remote.packs_at(&remote.root()).is_empty() && !remote.index_files_at(&remote.root()).is_empty()
        );
    }
    remote.assert_sound(&remote.root());
    let text = fs::read_to_string(remote.root().join("TROVE_REMOTE")).unwrap();
    assert!(text.contains(&format!("layout: {layout}")), "{text}");

    // Pushing again sends nothing.
    let v = env.json(&["push"]);
    assert_eq!(v["transfer"]["files"], 0, "{v}");
    assert_eq!(v["transfer"]["bytes"], 0, "{v}");
    assert_eq!(v["transfer"]["already_there"], 44, "{v}");
    let out = env.ok(&["push"]);
    assert!(out.stdout.contains("pushed 0 files"), "{out}");

    let clone = clone_repo(&env.root);
    assert!(!clone.exists("model.bin"));
    let out = clone.ok(&["pull"]);
    assert!(out.stdout.contains("fetched 44 files"), "{out}");
    assert_same_tree(&env, &clone, "data");
    assert_eq!(clone.read("model.bin"), env.read("model.bin"));
    assert!(clone.exists("data/empty.txt"));
    for t in clone.json(&["status"])["tracked"].as_array().unwrap() {
        assert_eq!(t["state"], "unchanged", "{t}");
    }
    // Everything the clone fetched is verified: its cache objects hash to their names.
    for f in clone.object_files() {
        let name = format!(
            "{}{}",
            f.parent().unwrap().file_name().unwrap().to_string_lossy(),
            f.file_name().unwrap().to_string_lossy()
        );
        assert_eq!(blake3_file(&f), name.trim_end_matches(".dir"));
    }
    // A second pull has nothing to do.
    let v = clone.json(&["pull"]);
    assert_eq!(v["transfer"]["files"], 0, "{v}");
    assert_eq!(v["transfer"]["already_there"], 43, "{v}");
}

fn pull_of_one_path_fetches_only_that(b: Backend, layout: u32) {
    let remote = Remote::of_layout(b, layout);
    let env = Env::new();
    write_dataset(&env);
    env.ok(&["add", "data", "model.bin"]);
    remote.configure(&env);
    commit_all(&env);
    env.ok(&["push", "-j", "2"]);

    let clone = clone_repo(&env.root);
    let v = clone.json(&["pull", "model.bin"]);
    assert_eq!(v["transfer"]["files"], 1, "{v}");
    assert_eq!(clone.read("model.bin"), env.read("model.bin"));
    assert!(!clone.exists("data"), "only the path asked for is restored");
    // Pushing from this partial clone is fine: what its cache lacks, the remote has.
    let v = clone.json(&["push"]);
    assert_eq!(v["transfer"]["files"], 0, "{v}");
    assert!(v["transfer"]["missing"].as_array().unwrap().is_empty(), "{v}");
    // fetch fills the cache without touching the workspace; checkout then restores.
    let v = clone.json(&["fetch", "-r", "store", "data"]);
    assert_eq!(v["transfer"]["files"], 43, "{v}");
    assert!(!clone.exists("data"));
    clone.ok(&["checkout", "data"]);
    assert_same_tree(&env, &clone, "data");
}

fn corrupt_remote_object_is_detected_and_never_placed(b: Backend, layout: u32) {
    let remote = Remote::of_layout(b, layout);
    let env = Env::new();
    env.write("model.bin", noise(200_000, 5));
    env.write("notes.txt", "fine");
    env.ok(&["add", "model.bin", "notes.txt"]);
    remote.configure(&env);
    commit_all(&env);
    env.ok(&["push"]);

    let id = env.pointer("model.bin.trove").hash;
    // Flip a byte of model.bin's content where the remote stores it.
    let (path, at) = match layout {
        1 => (remote.objects().into_iter().find(|(n, _)| *n == id).expect("model.bin's object").1, 1000),
        _ => remote.find_in_packs(&noise(200_000, 5)[1000..1064]),
    };
    writable(&path);
    let mut bytes = fs::read(&path).unwrap();
    bytes[at] ^= 0xff;
    fs::write(&path, &bytes).unwrap();

    let clone = clone_repo(&env.root);
    let out = clone.run(&["--json", "pull"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains(&id), "the corrupt object is named by id:\n{out}");
    match layout {
        1 => assert!(out.stderr.contains("did not match"), "{out}"),
        // The pack holding it is named too (a one-chunk object's chunk id is its id).
        _ => assert!(
            out.stderr.contains(&format!("{}", path.strip_prefix(remote.root()).unwrap().display())),
            "{out}"
        ),
    }
    let v = out.json();
    assert!(v["error"].as_str().unwrap().contains(&id), "{v}");
    assert_eq!(strings(&v["transfer"]["corrupt"]), vec![id.clone()], "{v}");
    assert!(!clone.exists("model.bin"), "corrupt data is never placed");
    assert!(!clone.object_path(&id).exists(), "corrupt data never enters the cache");
    // What was sound was fetched and is kept.
    assert!(clone.object_path(&env.pointer("notes.txt.trove").hash).exists());
    clone.ok(&["pull", "notes.txt"]);
    assert_eq!(clone.read("notes.txt"), b"fine");

    // Every later fetch finds the damage again.
    let out = clone.fails(1, &["pull", "model.bin"]);
    assert!(out.stderr.contains(&id), "{out}");
}

fn missing_remote_objects_are_named_and_the_rest_fetched(b: Backend, layout: u32) {
    let remote = Remote::of_layout(b, layout);
    let env = Env::new();
    // Many small objects (downloaded in batches), one over a read's length, one past
    // the batch limit (streamed), and an empty file.
    for i in 0..300 {
        env.write(&format!("data/f{i:03}.bin"), noise(1 + i * 37, i as u64));
    }
    env.write("data/mid.bin", noise(100_000, 900));
    env.write("data/big.bin", noise(3 << 20, 901));
    env.write("data/empty.bin", b"");
    env.ok(&["add", "data"]);
    remote.configure(&env);
    commit_all(&env);
    env.ok(&["push"]);

    let gone_small = blake3_hex(&noise(1 + 7 * 37, 7));
    let gone_big = blake3_hex(&noise(3 << 20, 901));
    for (name, path) in remote.objects() {
        if name == gone_small || name == gone_big {
            fs::remove_file(path).unwrap();
        }
    }
    let clone = clone_repo(&env.root);
    let out = clone.run(&["--json", "fetch"]);
    assert_eq!(out.code, 1, "{out}");
    let v = out.json();
    let mut missing = strings(&v["transfer"]["missing"]);
    missing.sort();
    let mut expected = vec![gone_small.clone(), gone_big.clone()];
    expected.sort();
    assert_eq!(missing, expected, "{v}");
    assert!(strings(&v["transfer"]["failed"]).is_empty(), "{v}");
    assert_eq!(v["transfer"]["files"], 302, "the 301 other objects and the manifest arrived: {v}");
    for i in (0..300).filter(|&i| i != 7) {
        let id = blake3_hex(&noise(1 + i * 37, i as u64));
        assert!(clone.object_path(&id).is_file(), "f{i:03}.bin's object was fetched");
    }
    let mid = blake3_hex(&noise(100_000, 900));
    assert_eq!(fs::read(clone.object_path(&mid)).unwrap(), noise(100_000, 900));
    clone.ok(&["verify"]);
}

fn truncated_or_extended_remote_objects_are_corrupt(b: Backend, layout: u32) {
    let remote = Remote::of_layout(b, layout);
    let env = Env::new();
    env.write("short.bin", noise(50_000, 1));
    env.write("long.bin", noise(50_000, 2));
    env.ok(&["add", "short.bin", "long.bin"]);
    remote.configure(&env);
    commit_all(&env);
    // One push each: on layout 2 each lands in a pack of its own.
    env.ok(&["push", "short.bin"]);
    env.ok(&["push", "long.bin"]);
    let short = env.pointer("short.bin.trove").hash;
    let long = env.pointer("long.bin.trove").hash;
    for (id, seed, change) in [(&short, 1, 0), (&long, 2, 1)] {
        // Layout 1: the object's file; layout 2: the pack holding it, cut inside the
        // object's bytes or extended past its trailer.
        let (path, cut) = match layout {
            1 => (remote.objects().into_iter().find(|(n, _)| n == id).unwrap().1, 20_000),
            _ => {
                let (pack, at) = remote.find_in_packs(&noise(50_000, seed)[..64]);
                (pack, at + 20_000)
            }
        };
        writable(&path);
        let mut bytes = fs::read(&path).unwrap();
        if change == 0 {
            bytes.truncate(cut);
        } else {
            bytes.extend_from_slice(b"trailing bytes");
        }
        fs::write(&path, &bytes).unwrap();
    }
    let clone = clone_repo(&env.root);
    let v = clone.run(&["--json", "pull"]).json();
    // A truncated object fails its hash check; of an extended one only the expected
    // bytes are read, and they are sound: the data is right, and verify finds the damage.
    assert_eq!(strings(&v["transfer"]["corrupt"]), vec![short.clone()], "{v}");
    assert!(!clone.exists("short.bin"));
    clone.ok(&["pull", "long.bin"]);
    assert_eq!(clone.read("long.bin"), env.read("long.bin"));
    if layout == 2 {
        // `verify --remote` checks layout 1's object files only so far.
        return;
    }
    let out = clone.fails(1, &["verify", "--remote", "store"]);
    assert!(out.stdout.contains(&long[..12]) || out.stderr.contains(&long[..12]), "{out}");
    assert!(out.stdout.contains(&short[..12]) || out.stderr.contains(&short[..12]), "{out}");
}

fn two_pushes_of_the_same_objects_at_once(b: Backend, layout: u32) {
    let remote = Remote::of_layout(b, layout);
    let env = Env::new();
    for i in 0..600 {
        env.write(&format!("data/f{i:03}.bin"), noise(100 + i * 13, i as u64));
    }
    env.ok(&["add", "data"]);
    remote.configure(&env);
    commit_all(&env);
    let other = clone_repo(&env.root);
    for i in 0..600 {
        other.write(&format!("data/f{i:03}.bin"), noise(100 + i * 13, i as u64));
    }
    other.ok(&["add", "data"]);
    // Both find every object missing and race to upload the same ones.
    let spawn = |e: &Env| e.command_in(&e.root, &["--json", "push"]).output().unwrap();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn(&env));
        let b = s.spawn(|| spawn(&other));
        (a.join().unwrap(), b.join().unwrap())
    });
    for out in [&a, &b] {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    remote.assert_sound(&remote.root());
    assert_eq!(remote.count_objects(&env), 601, "every object and the manifest");
    if layout == 1 {
        assert_eq!(remote.objects().len(), 601, "once each");
    }
    let clone = clone_repo(&env.root);
    clone.ok(&["pull"]);
    for i in [0, 299, 599] {
        assert_eq!(clone.read(&format!("data/f{i:03}.bin")), noise(100 + i * 13, i as u64));
    }
    if layout == 1 {
        // `verify --remote` checks layout 1's object files only so far.
        clone.ok(&["verify", "--remote"]);
    }
}

fn interrupted_push_resumes(b: Backend, layout: u32) {
    let mut remote = Remote::of_layout(b, layout);
    let env = Env::new();
    // Layout 2 packs 16 MiB at a time: enough for three packs, so that after the first
    // arrives there is still work to interrupt.
    let files: usize = if layout == 1 { 1500 } else { 3000 };
    for i in 0..files as u64 {
        env.write(&format!("shards/s{i:04}.bin"), noise(16 * 1024, i));
    }
    env.ok(&["add", "shards"]);
    remote.configure(&env);
    commit_all(&env);

    let mut child = env.spawn_in(&env.root, &["push", "-j", "1"]);
    // Interrupt once some objects have arrived (layout 2: the first of its packs).
    let arrived = if layout == 1 { 20 } else { 1 };
    let deadline = Instant::now() + Duration::from_secs(30);
    while remote.stored_files() < arrived {
        assert!(Instant::now() < deadline, "push made no progress\n{}", remote.describe());
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    match b {
        Backend::Folder => {
            // kill -9 of the pushing process.
            let _ = child.kill();
            child.wait().unwrap();
        }
        Backend::Sftp | Backend::SftpLibssh2 | Backend::S3 => {
            // The server goes away under a running push: it must fail, not hang.
            let stop_or_restart =
                |remote: &mut Remote, restart: bool| match (&mut remote.server, &mut remote.s3) {
                    (Some(sshd), _) if restart => sshd.restart(),
                    (Some(sshd), _) => sshd.stop(),
                    (_, Some(s3)) if restart => s3.restart(),
                    (_, Some(s3)) => s3.stop(),
                    _ => unreachable!(),
                };
            stop_or_restart(&mut remote, false);
            let started = Instant::now();
            let out = child.wait_with_output().unwrap();
            assert!(started.elapsed() < Duration::from_secs(60), "push hung after the server died");
            if out.status.code() != Some(0) {
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(1), "{stderr}");
                assert!(stderr.contains("store"), "the error names the remote:\n{stderr}");
            }
            stop_or_restart(&mut remote, true);
        }
    }
    if layout == 2 {
        // Objects share packs: what is there counts only once an index names it. Nothing
        // partial is under a name, and the rerun sends what the remote still lacks.
        for path in remote.packs_at(&remote.root()).into_iter().chain(remote.index_files_at(&remote.root())) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(blake3_file(&path), name, "partial pack or index {}", path.display());
        }
        let v = env.json(&["push"]);
        let (sent, there) = (
            v["transfer"]["files"].as_u64().unwrap() as usize,
            v["transfer"]["already_there"].as_u64().unwrap() as usize,
        );
        assert!(sent > 0, "the push was interrupted before it finished: {v}");
        assert_eq!(sent + there, files + 1, "{v}");
        assert_eq!(remote.count_objects(&env), files + 1);
        remote.assert_sound(&remote.root());
        let clone = clone_repo(&env.root);
        clone.ok(&["pull"]);
        assert_same_tree(&env, &clone, "shards");
        return;
    }
    let before = remote.objects().len();
    assert!(before < files, "the push was interrupted before it finished ({before} objects)");
    // No partial object is visible under an id.
    for (name, path) in remote.objects() {
        assert_eq!(blake3_file(&path), name.trim_end_matches(".dir"), "partial object {}", path.display());
    }
    assert!(
        !remote.objects().iter().any(|(n, _)| n.ends_with(".dir")),
        "the manifest is uploaded only after all its files"
    );

    let v = env.json(&["push"]);
    assert_eq!(v["transfer"]["already_there"].as_u64().unwrap() as usize, before, "{v}");
    assert_eq!(v["transfer"]["files"].as_u64().unwrap() as usize, files + 1 - before, "{v}");
    assert_eq!(remote.objects().len(), files + 1);

    let clone = clone_repo(&env.root);
    clone.ok(&["pull"]);
    assert_same_tree(&env, &clone, "shards");
}

fn ctrl_c_during_a_push_removes_its_uploads_in_flight(b: Backend, layout: u32) {
    let remote = Remote::of_layout(b, layout);
    let env = Env::new();
    // Small objects (pipelined in batches over SFTP) and large ones (streamed in chunks).
    for i in 0..1500u64 {
        env.write(&format!("shards/s{i:04}.bin"), noise(16 * 1024, i));
    }
    for i in 0..4u64 {
        env.write(&format!("big/b{i}.bin"), noise(12 << 20, 100 + i));
    }
    env.ok(&["add", "shards", "big"]);
    remote.configure(&env);
    commit_all(&env);

    // Ctrl-C among the small objects; SIGTERM while a large one is being written over
    // SFTP (a folder remote copies a file in one call, too fast to catch half way).
    // (Layout 2: the first pack arrives.)
    let small_ones_arrive = || remote.stored_files() >= if layout == 1 { 20 } else { 1 };
    let large_one_in_flight = || {
        let mut temps = Vec::new();
        walk(&remote.root().join("tmp"), &mut temps);
        temps.iter().any(|t| fs::metadata(t).is_ok_and(|m| m.len() > 1 << 20))
    };
    let second: &dyn Fn() -> bool = if b.is_sftp() { &large_one_in_flight } else { &small_ones_arrive };
    let rounds: [(i32, &str, &dyn Fn() -> bool); 2] =
        [(libc::SIGINT, "SIGINT", &small_ones_arrive), (libc::SIGTERM, "SIGTERM", second)];
    for (signal, name, ready) in rounds {
        // Each round starts from an empty remote (its layout kept).
        if layout == 1 {
            for e in fs::read_dir(remote.root().join("objects")).into_iter().flatten().flatten() {
                fs::remove_dir_all(e.path()).unwrap();
            }
        } else {
            remote.wipe_layout2(&env);
        }
        let child = env.spawn_in(&env.root, &["push", "-j", "2"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready() {
            assert!(Instant::now() < deadline, "push made no progress\n{}", remote.describe());
            std::thread::sleep(Duration::from_millis(1));
        }
        // SAFETY: signalling the child this test started.
        unsafe { libc::kill(child.id() as i32, signal) };
        let started = Instant::now();
        let out = child.wait_with_output().unwrap();
        assert!(started.elapsed() < Duration::from_secs(30), "{name}: the push took long to stop");
        let stderr = String::from_utf8_lossy(&out.stderr);
        remote.assert_sound(&remote.root());
        assert_eq!(out.status.code(), Some(128 + signal), "{name}: {}\n{stderr}", out.status);
        assert!(stderr.contains(&format!("error: interrupted by {name}")), "{stderr}");
        assert!(stderr.contains("hint: run the command again"), "{stderr}");
        if layout == 1 {
            let sent = remote.objects().len();
            assert!(sent < 1505, "{name}: the push was stopped before it finished ({sent} objects)");
            assert!(
                !remote.objects().iter().any(|(n, _)| n.ends_with(".dir")),
                "a manifest went up too early"
            );
        }
    }
    // The rerun sends the rest (layout 2: something was still missing after the signal).
    let v = env.json(&["push"]);
    assert!(v["transfer"]["files"].as_u64().unwrap() > 0, "the push was stopped before it finished: {v}");
    assert_eq!(remote.count_objects(&env), 1500 + 4 + 2);
    remote.assert_sound(&remote.root());
}

fn gc_remote_removes_stale_upload_temps(b: Backend, layout: u32) {
    let remote = Remote::of_layout(b, layout);
    let env = Env::new();
    write_dataset(&env);
    env.ok(&["add", "data", "model.bin"]);
    remote.configure(&env);
    env.ok(&["push"]);
    let objects = remote.objects().len();
    // Temps of killed pushes (last written 2 hours and 2 days ago), and one being written now.
    let tmp = remote.root().join("tmp");
    // (An S3 remote has no folders: the files are objects under `tmp/`.)
    fs::create_dir_all(&tmp).unwrap();
    for (name, size, age) in [
        ("up-dead-1", 5000, Some("2 hours ago")),
        ("up-dead-2", 3000, Some("2 days ago")),
        ("up-live", 700, None),
    ] {
        fs::write(tmp.join(name), noise(size, 7)).unwrap();
        if let Some(age) = age {
            let done = Command::new("touch").arg("-d").arg(age).arg(tmp.join(name)).status().unwrap();
            assert!(done.success());
        }
    }
    let temps = || names_in(&tmp);

    let v = env.json(&["gc", "-r", "store", "--dry-run"]);
    assert_eq!(strings(&v["remote"]["temps"]["files"]), ["tmp/up-dead-1", "tmp/up-dead-2"], "{v}");
    assert_eq!(v["remote"]["temps"]["bytes"], 8000, "{v}");
    assert_eq!(v["remote"]["count"], 0, "every object is in use: {v}");
    let out = env.ok(&["-v", "gc", "-r", "store", "--dry-run"]);
    assert!(out.stdout.contains("remote store tmp: would delete 2 stale temp files, 7.8 KiB\n"), "{out}");
    assert!(
        out.stdout.contains("  store:tmp/up-dead-1\n") && out.stdout.contains("  store:tmp/up-dead-2\n"),
        "{out}"
    );
    assert!(!out.stdout.contains("up-live"), "{out}");
    assert_eq!(temps(), ["up-dead-1", "up-dead-2", "up-live"], "a dry run deletes nothing");

    let out = env.ok(&["gc", "-r", "store", "-f"]);
    assert!(out.stdout.contains("remote store tmp: deleted 2 stale temp files, 7.8 KiB freed"), "{out}");
    assert_eq!(temps(), ["up-live"], "a temp being written is left alone");
    assert_eq!(remote.objects().len(), objects);
    let out = env.ok(&["gc", "-r", "store", "-f"]);
    assert!(out.stdout.contains("nothing to delete"), "{out}");
}

/// How trove names this machine in upload temp names: its boot and PID namespace.
fn machine_id() -> String {
    let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let namespace = fs::read_link("/proc/self/ns/pid").unwrap();
    blake3_hex(format!("{} {}", boot.trim(), namespace.display()).as_bytes())[..12].to_string()
}

fn temps_of_a_killed_push_on_this_machine_are_removed_at_once(b: Backend, layout: u32) {
    let remote = Remote::of_layout(b, layout);
    let env = Env::new();
    write_dataset(&env);
    env.ok(&["add", "data", "model.bin"]);
    remote.configure(&env);
    env.ok(&["push"]);
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let here = machine_id();
    // Written a moment ago: by a push here that was killed, by one that runs, and by a
    // push on another machine (whose processes this one cannot see).
    let killed = format!("up-{here}-{dead}-0badc0de-3");
    let running = format!("up-{here}-{}-0badc0de-3", std::process::id());
    let elsewhere = format!("up-000000000000-{dead}-0badc0de-3");
    let tmp = remote.root().join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    for name in [&killed, &running, &elsewhere] {
        fs::write(tmp.join(name), noise(2000, 5)).unwrap();
    }
    if layout == 1 {
        // (`gc --remote` works on layout 1 only so far.)
        let v = env.json(&["gc", "-r", "store", "--dry-run"]);
        assert_eq!(strings(&v["remote"]["temps"]["files"]), [format!("tmp/{killed}")], "{v}");
    }
    // A push with something to send removes it at its end.
    env.write("more.bin", noise(3000, 6));
    env.ok(&["add", "more.bin"]);
    env.ok(&["push"]);
    let mut want = vec![running, elsewhere];
    want.sort();
    assert_eq!(names_in(&tmp), want);
}

fn unknown_layout_version_is_refused(b: Backend, layout: u32) {
    let remote = Remote::of_layout(b, layout);
    let env = Env::new();
    env.write("a.txt", "a");
    env.ok(&["add", "a.txt"]);
    remote.configure(&env);
    env.ok(&["push"]);
    commit_all(&env);
    // A layout this trove does not know (a newer trove's).
    let marker = remote.root().join("TROVE_REMOTE");
    writable(&marker);
    fs::write(&marker, "layout: 3\n").unwrap();
    let before = remote.snapshot(&remote.root());
    let clone = clone_repo(&env.root);
    env.write("b.txt", "b");
    env.ok(&["add", "b.txt"]);
    for (who, cmd) in [(&env, "push"), (&clone, "fetch"), (&clone, "pull")] {
        let out = who.fails(1, &[cmd]);
        assert!(out.stderr.contains("layout 3"), "{out}");
        assert!(out.stderr.contains("store"), "{out}");
        assert!(out.stderr.contains("upgrade trove"), "{out}");
    }
    let out = env.fails(1, &["status", "--remote"]);
    assert!(out.stderr.contains("layout 3"), "{out}");
    assert!(out.stderr.contains("upgrade trove"), "{out}");
    assert_eq!(remote.snapshot(&remote.root()), before, "nothing was written to a remote of another layout");
    assert!(!clone.exists("a.txt"), "the refused pull placed nothing");
    if layout == 1 {
        assert_eq!(remote.objects().len(), 1);
    }
}

fn missing_remote_path_is_reported(b: Backend, layout: u32) {
    let remote = Remote::of_layout(b, layout);
    let env = Env::new();
    env.write("a.txt", "a");
    env.ok(&["add", "a.txt"]);
    // S3: a bucket that does not exist (a prefix needs no making).
    let root = match &remote.s3 {
        Some(s3) => s3.root.join("no-such-folder").join("store"),
        None => remote.base().join("no-such-folder").join("store"),
    };
    remote.configure_at(&env, &root);
    let out = env.fails(1, &["push"]);
    assert!(out.stderr.contains("store"), "{out}");
    assert!(out.stderr.contains("no-such-folder"), "the error names the path:\n{out}");
    assert!(out.stderr.contains("does not exist"), "{out}");
    assert!(!root.exists());
    commit_all(&env);
    let clone = clone_repo(&env.root);
    for cmd in [&["fetch"][..], &["pull"], &["status", "--remote"]] {
        let out = clone.fails(1, cmd);
        assert!(out.stderr.contains("does not exist"), "{cmd:?}: {out}");
    }
}

fn full_remote_disk_fails_cleanly(b: Backend, layout: u32) {
    let mut remote = Remote::of_layout(b, layout);
    // (S3: not under the first server's folder, which goes when it is replaced.)
    let at = if b == Backend::S3 { remote.scratch.path().join("disk") } else { remote.base().join("disk") };
    let disk = SmallDisk::mount(&at, "1m");
    let mut root = disk.path().join("store");
    if b == Backend::S3 {
        // The S3 server keeps everything (its temp files too) on the small disk.
        remote.s3 = Some(S3Server::start_at(Some(disk.path().join("s3"))));
        root = remote.s3().bucket_dir().join("store");
    }
    let env = Env::new();
    env.write("small.txt", "small");
    env.ok(&["add", "small.txt"]);
    remote.configure_at(&env, &root);
    env.ok(&["push"]);
    if layout == 1 {
        assert_eq!(remote.objects_at(&root).len(), 1);
    }
    let small_stored = remote.snapshot(&root);

    env.write("big.bin", noise(3 << 20, 7));
    env.ok(&["add", "big.bin"]);
    let out = env.fails(1, &["push"]);
    if b == Backend::S3 {
        // s3s-fs answers a full disk with a bare 500 InternalError (retried, then reported).
        assert!(out.stderr.contains("InternalError"), "{out}\n{}", remote.describe());
    } else {
        assert!(out.stderr.contains("full") || out.stderr.contains("space"), "{out}\n{}", remote.describe());
    }
    assert!(out.stderr.contains("run the command again"), "{out}");
    assert!(out.stderr.contains("store"), "{out}");
    // The object already there is intact; nothing partial sits under an id.
    let big = env.pointer("big.bin.trove").hash;
    if layout == 1 {
        let objects = remote.objects_at(&root);
        assert_eq!(objects.len(), 1, "{objects:?}");
        assert_eq!(blake3_file(&objects[0].1), env.pointer("small.txt.trove").hash);
        assert!(!objects.iter().any(|(n, _)| *n == big));
    } else {
        // Packs and index files: what was there is, and nothing partial has a name.
        let now = remote.snapshot(&root);
        for f in &small_stored {
            assert!(now.contains(f), "{} changed: {now:?}", f.0.display());
        }
        for path in remote.packs_at(&root).into_iter().chain(remote.index_files_at(&root)) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(blake3_file(&path), name, "partial file {}", path.display());
        }
        let v = env.json(&["status", "--remote"]);
        let tracked = v["tracked"].as_array().unwrap();
        let state = |p: &str| tracked.iter().find(|t| t["path"] == p).cloned().unwrap();
        assert_eq!(state("small.txt")["in_sync"], true, "{v}");
        assert_eq!(state("big.bin")["not_pushed"], 1, "{v}");
    }
    // The local cache is untouched: the data can still be pushed elsewhere.
    assert!(env.object_path(&big).exists());
    env.ok(&["status"]);
    // The server stops before its disk goes.
    remote.s3 = None;
    drop(disk);
}

fn status_against_a_remote(b: Backend, layout: u32) {
    let remote = Remote::of_layout(b, layout);
    let env = Env::new();
    write_dataset(&env);
    env.ok(&["add", "data", "model.bin"]);
    remote.configure(&env);
    commit_all(&env);
    // A remote nothing was pushed to yet (an empty folder): everything is "not pushed".
    fs::create_dir_all(remote.root()).unwrap();
    let out = env.ok(&["status", "--remote"]);
    assert!(out.stdout.contains("not pushed"), "{out}");
    let v = env.json(&["status", "--remote", "store"]);
    assert_eq!(v["remote"], "store");
    let by_path = |v: &Value, p: &str| {
        v["tracked"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["path"] == p)
            .cloned()
            .unwrap_or_else(|| panic!("{v}"))
    };
    assert_eq!(by_path(&v, "data")["not_pushed"], 43, "{v}");
    assert_eq!(by_path(&v, "model.bin")["not_pushed"], 1, "{v}");
    assert_eq!(by_path(&v, "model.bin")["in_sync"], false, "{v}");

    env.ok(&["push", "model.bin"]);
    let v = env.json(&["status", "--remote"]);
    assert_eq!(by_path(&v, "model.bin")["in_sync"], true, "{v}");
    assert_eq!(by_path(&v, "data")["not_pushed"], 43, "{v}");
    env.ok(&["push"]);
    let v = env.json(&["status", "--remote"]);
    for t in v["tracked"].as_array().unwrap() {
        assert_eq!(t["in_sync"], true, "{t}");
    }

    // A fresh clone has nothing in its cache: everything is "not pulled".
    let clone = clone_repo(&env.root);
    let v = clone.json(&["status", "--remote"]);
    // It read data/'s manifest from the remote (verified, into the cache) to learn its files.
    assert_eq!(by_path(&v, "data")["not_pulled"], 42, "{v}");
    assert_eq!(by_path(&v, "model.bin")["not_pulled"], 1, "{v}");
    let fetched = clone.object_files();
    assert_eq!(fetched.len(), 1, "status --remote fetches no data: {fetched:?}");
    assert!(fetched[0].to_string_lossy().ends_with(".dir"));
}

fn ci_clone_and_pull_without_a_terminal(b: Backend, layout: u32) {
    // In CI the credentials come from the environment: a password for SFTP.
    let remote = Remote::with_server(b, layout, || Sshd::start_with("PasswordAuthentication yes\n"));
    let env = Env::new();
    write_dataset(&env);
    env.ok(&["add", "data", "model.bin"]);
    let mut vars: Vec<(&str, String)> = Vec::new();
    let root = match b {
        Backend::Folder => {
            remote.configure(&env);
            remote.root()
        }
        Backend::Sftp | Backend::SftpLibssh2 => {
            let (user, password, home) = sshd::password_user();
            // Unique among the tests running at once (each transport, each layout).
            let root = home.join(format!("ci-{}-{layout}-{}", b.transport().unwrap(), std::process::id()));
            let _ = fs::remove_dir_all(&root);
            let url = format!(
                "sftp://{user}@127.0.0.1:{}/~/{}",
                remote.server().port,
                root.file_name().unwrap().to_str().unwrap()
            );
            env.ok(&["remote", "add", "store", &url, "--default"]);
            env.ok(&["remote", "set", "store", "transport", b.transport().unwrap()]);
            env.ok(&["remote", "set", "store", "known_hosts", remote.server().known_hosts.to_str().unwrap()]);
            vars.push(("TROVE_SFTP_PASSWORD", password));
            root
        }
        Backend::S3 => {
            // The keys come from the environment, as the AWS tools take them.
            let s3 = remote.s3();
            env.ok(&["remote", "add", "store", &s3.url(&remote.root()), "--default"]);
            env.ok(&["remote", "set", "store", "endpoint", &s3.endpoint()]);
            vars.push(("AWS_ACCESS_KEY_ID", s3_server::ACCESS_KEY.to_string()));
            vars.push(("AWS_SECRET_ACCESS_KEY", s3_server::SECRET_KEY.to_string()));
            remote.root()
        }
    };
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    commit_all(&env);
    let out = run_with(&env, &env.root, &["push"], &vars);
    assert_eq!(out.code, 0, "{out}\n{}", remote.describe());

    let clone = clone_repo(&env.root);
    let out = run_with(&clone, &clone.root, &["pull"], &vars);
    assert_eq!(out.code, 0, "{out}\n{}", remote.describe());
    // No terminal: a summary line on stdout, no progress bar drawing on stderr.
    assert!(out.stdout.contains("fetched 44 files"), "{out}");
    assert!(
        !out.stderr.contains('\r') && !out.stderr.contains("\x1b["),
        "progress drawn without a tty:\n{out}"
    );
    assert_same_tree(&env, &clone, "data");
    assert_eq!(clone.read("model.bin"), env.read("model.bin"));
    // The secret is not printed, nor written to the committed config.
    if let Some((_, password)) = vars.last() {
        assert!(!out.stdout.contains(password) && !out.stderr.contains(password));
        let listed = run_with(&clone, &clone.root, &["-v", "remote", "list"], &vars);
        assert!(!listed.stdout.contains(password), "{listed}");
        assert!(!clone.read_string(".trove/config").contains(password));
        // Without the credentials the job fails with exit code 1 and says how to log in.
        let again = clone_repo(&env.root);
        let out = if b == Backend::S3 {
            run_with(&again, &again.root, &["pull"], &[("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")])
        } else {
            again.fails(1, &["pull"])
        };
        assert_eq!(out.code, 1, "{out}");
        if b == Backend::S3 {
            assert!(out.stderr.contains("no S3 credentials"), "{out}");
            assert!(out.stderr.contains("AWS_SECRET_ACCESS_KEY"), "{out}");
        } else {
            assert!(out.stderr.contains("cannot log in"), "{out}");
            assert!(out.stderr.contains("TROVE_SFTP_PASSWORD"), "{out}");
        }
        let _ = fs::remove_dir_all(&root);
    }
    // A CI job restoring data checks the exit code of a failing pull too.
    let out = run_with(&clone, &clone.root, &["--json", "pull", "nothing-here"], &vars);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.json()["error"].as_str().unwrap().contains("nothing-here"), "{out}");
}

// ---- SFTP only: logging in and host keys ----

/// Generate `#[test]`s running each named SFTP function (which takes a [`Backend`]) over
/// both transports: OpenSSH's client, in a module `openssh`, and libssh2, in `libssh2`.
macro_rules! both_transports {
    ($($name:ident),* $(,)?) => {
        mod openssh {
            $(#[test] fn $name() { super::$name(super::Backend::Sftp) })*
        }
        mod libssh2 {
            $(#[test] fn $name() { super::$name(super::Backend::SftpLibssh2) })*
        }
    };
}

both_transports!(
    sftp_wrong_password_is_refused_without_printing_it,
    sftp_wrong_key_is_refused,
    sftp_unknown_host_key_is_refused_unless_accept_new,
    sftp_changed_host_key_is_refused_even_with_accept_new,
    sftp_ssh_config_alias_and_default_known_hosts_are_honoured,
    sftp_ssh_agent_login,
    sftp_encrypted_key_takes_its_passphrase_from_the_environment,
    sftp_a_dropped_connection_is_retried_within_the_same_push,
    sftp_one_large_object_is_read_over_several_connections_on_more_cores,
);

fn sftp_env(remote: &Remote) -> Env {
    let env = Env::new();
    env.write("a.txt", "a");
    env.ok(&["add", "a.txt"]);
    remote.configure(&env);
    env
}

fn sftp_wrong_password_is_refused_without_printing_it(b: Backend) {
    let remote = Remote::with_server(b, 2, || Sshd::start_with("PasswordAuthentication yes\n"));
    let (user, password, _) = sshd::password_user();
    let env = Env::new();
    env.write("a.txt", "a");
    env.ok(&["add", "a.txt"]);
    // Unique among the tests running at once (one per transport).
    let folder = format!("wrong-{}-{}", b.transport().unwrap(), std::process::id());
    let url = format!("sftp://{user}@127.0.0.1:{}/~/{folder}", remote.server().port);
    env.ok(&["remote", "add", "store", &url]);
    env.ok(&["remote", "set", "store", "transport", b.transport().unwrap()]);
    env.ok(&["remote", "set", "store", "known_hosts", remote.server().known_hosts.to_str().unwrap()]);
    let wrong = "not the password";
    let out = run_with(&env, &env.root, &["push"], &[("TROVE_SFTP_PASSWORD", wrong)]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains(&format!("cannot log in as {user}@127.0.0.1")), "{out}");
    assert!(out.stderr.contains("password"), "{out}");
    assert!(!out.stderr.contains(wrong) && !out.stdout.contains(wrong), "the password is printed:\n{out}");
    // The same password from config.local works and is never shown.
    env.ok(&["remote", "set", "store", "password", &password, "--local"]);
    let out = env.ok(&["push"]);
    assert!(!out.stdout.contains(&password) && !out.stderr.contains(&password));
    assert!(!env.read_string(".trove/config").contains(&password));
    let listed = env.ok(&["-v", "remote", "list"]);
    assert!(!listed.stdout.contains(&password), "{listed}");
    let shown = env.ok(&["--json", "remote", "list"]);
    assert!(!shown.stdout.contains(&password), "{shown}");
    // A secret is refused in the committed config.
    let out = env.fails(2, &["remote", "set", "store", "password", "x"]);
    assert!(out.stderr.contains("--local"), "{out}");
    let _ = fs::remove_dir_all(PathBuf::from("/home").join(&user).join(folder));
}

/// SFTP sessions the server has opened so far (sshd logs each at `LogLevel VERBOSE`).
fn sftp_sessions(server: &Sshd) -> usize {
    server.log_text().matches("Starting session: subsystem 'sftp'").count()
}

/// A pull of one 48 MiB file into a fresh clone, `cores` being what trove takes the
/// machine's cores to be: how many SFTP sessions it opened.
fn sessions_of_a_pull(remote: &Remote, env: &Env, big: &[u8], cores: &str) -> usize {
    let clone = clone_repo(&env.root);
    let before = sftp_sessions(remote.server());
    let out = run_with(&clone, &clone.root, &["pull"], &[("RAYON_NUM_THREADS", cores)]);
    assert_eq!(out.code, 0, "{out}\n{}", remote.describe());
    assert!(clone.read("big.bin") == big, "the pulled file differs from the pushed one");
    sftp_sessions(remote.server()) - before
}

fn sftp_one_large_object_is_read_over_several_connections_on_more_cores(b: Backend) {
    let remote = Remote::new(b);
    let env = Env::new();
    // Random bytes in several packs: reads of at most 8 MiB, a window of several.
    let big = noise(48 << 20, 11);
    env.write("big.bin", &big);
    env.ok(&["add", "big.bin"]);
    remote.configure(&env);
    commit_all(&env);
    env.ok(&["push"]);
    // On 2 cores one connection does it all; on 8, the object's reads are spread over
    // 4 (one per two cores), each its own session.
    let two = sessions_of_a_pull(&remote, &env, &big, "2");
    let eight = sessions_of_a_pull(&remote, &env, &big, "8");
    assert_eq!(two, 1, "2 cores: {two} sessions\n{}", remote.describe());
    assert_eq!(eight, 4, "8 cores: {eight} sessions\n{}", remote.describe());
}

fn sftp_wrong_key_is_refused(b: Backend) {
    let remote = Remote::new(b);
    let env = sftp_env(&remote);
    let other = env.outside().join("other_key");
    sshd::keygen(&other);
    env.ok(&["remote", "set", "store", "keyfile", other.to_str().unwrap()]);
    let out = env.fails(1, &["push"]);
    assert!(out.stderr.contains("cannot log in"), "{out}");
    assert!(out.stderr.contains("other_key"), "the key tried is named:\n{out}");
    assert!(out.stderr.contains("store"), "{out}");
    assert!(!remote.root().exists(), "nothing was written");
    // A key file that does not exist is named too (`remote set` refuses it; `config`
    // sets it, for a key that exists only elsewhere).
    env.ok(&["config", "remote.store.keyfile", "/nonexistent/key"]);
    let out = env.fails(1, &["push"]);
    assert!(out.stderr.contains("/nonexistent/key"), "{out}");
}

/// The server's host key fingerprint as `ssh-keygen -l` prints it (`SHA256:…`).
fn fingerprint(server: &Sshd) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(format!("{}.pub", server.host_key.display()))
        .output()
        .expect("run ssh-keygen");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().nth(1).expect("a fingerprint").to_string()
}

fn sftp_unknown_host_key_is_refused_unless_accept_new(b: Backend) {
    let remote = Remote::new(b);
    let env = sftp_env(&remote);
    let known = env.outside().join("known_hosts");
    fs::write(&known, "").unwrap();
    env.ok(&["remote", "set", "store", "known_hosts", known.to_str().unwrap()]);
    let out = env.fails(1, &["push"]);
    assert!(out.stderr.contains("not a known host"), "{out}");
    assert!(out.stderr.contains(&fingerprint(remote.server())), "the fingerprint is shown:\n{out}");
    assert!(out.stderr.contains("accept-new"), "{out}");
    assert!(!remote.root().exists(), "nothing was written");
    assert_eq!(fs::read_to_string(&known).unwrap(), "", "strict: known_hosts is left as it was");

    // The user's own ~/.ssh/config turning the check off does not weaken it: trove's
    // `host_key` setting decides (OpenSSH: StrictHostKeyChecking on the command line wins).
    let ssh = env.home.join(".ssh");
    fs::create_dir_all(&ssh).unwrap();
    fs::write(ssh.join("config"), "Host *\n  StrictHostKeyChecking no\n").unwrap();
    let out = env.fails(1, &["push"]);
    assert!(out.stderr.contains("not a known host"), "{out}");
    assert!(out.stderr.contains(&fingerprint(remote.server())), "{out}");
    assert_eq!(fs::read_to_string(&known).unwrap(), "", "strict: known_hosts is left as it was");
    assert!(!remote.root().exists(), "nothing was written");

    // With ~/.ssh/known_hosts (the default) missing entirely, the same, and it is not made.
    env.ok(&["config", "--unset", "remote.store.known_hosts"]);
    let out = env.fails(1, &["push"]);
    assert!(out.stderr.contains("not a known host"), "{out}");
    assert!(!ssh.join("known_hosts").exists(), "strict: ~/.ssh/known_hosts was written");

    env.ok(&["remote", "set", "store", "known_hosts", known.to_str().unwrap()]);
    env.ok(&["remote", "set", "store", "host_key", "accept-new"]);
    env.ok(&["push"]);
    let recorded = fs::read_to_string(&known).unwrap();
    assert!(recorded.contains(&format!("[127.0.0.1]:{}", remote.server().port)), "{recorded}");
    // Recorded: a strict check now passes.
    env.ok(&["remote", "set", "store", "host_key", "strict"]);
    env.ok(&["push"]);
}

fn sftp_changed_host_key_is_refused_even_with_accept_new(b: Backend) {
    let remote = Remote::new(b);
    let env = sftp_env(&remote);
    // known_hosts records another key for this server.
    let impostor = env.outside().join("impostor");
    sshd::keygen(&impostor);
    let public = fs::read_to_string(format!("{}.pub", impostor.display())).unwrap();
    let mut fields = public.split_whitespace();
    let line = format!(
        "[127.0.0.1]:{} {} {}\n",
        remote.server().port,
        fields.next().unwrap(),
        fields.next().unwrap()
    );
    let known = env.outside().join("known_hosts");
    fs::write(&known, &line).unwrap();
    env.ok(&["remote", "set", "store", "known_hosts", known.to_str().unwrap()]);
    for policy in ["strict", "accept-new"] {
        env.ok(&["remote", "set", "store", "host_key", policy]);
        let out = env.fails(1, &["push"]);
        assert!(out.stderr.contains("CHANGED"), "{policy}: {out}");
        assert!(out.stderr.contains(&fingerprint(remote.server())), "{policy}: {out}");
        assert_eq!(fs::read_to_string(&known).unwrap(), line, "known_hosts is left as it was");
    }
    assert!(!remote.root().exists(), "nothing was written");
}

fn sftp_ssh_config_alias_and_default_known_hosts_are_honoured(b: Backend) {
    let remote = Remote::new(b);
    let s = remote.server();
    let env = Env::new();
    env.write("a.txt", "through an alias");
    env.ok(&["add", "a.txt"]);
    // As for `ssh datahost`: ~/.ssh/config names the address, port, user and key, and
    // ~/.ssh/known_hosts holds the host key.
    let ssh = env.home.join(".ssh");
    fs::create_dir_all(&ssh).unwrap();
    fs::write(
        ssh.join("config"),
        format!(
            "Host datahost\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n",
            s.port,
            s.user,
            s.key.display()
        ),
    )
    .unwrap();
    fs::copy(&s.known_hosts, ssh.join("known_hosts")).unwrap();
    let root = remote.root();
    env.ok(&["remote", "add", "store", &format!("sftp://datahost{}", root.display())]);
    env.ok(&["remote", "set", "store", "transport", b.transport().unwrap()]);
    let out = env.ok(&["push"]);
    assert!(out.stdout.contains("pushed 1 file"), "{out}\n{}", remote.describe());
    assert_eq!(remote.count_objects(&env), 1);
    // The remote's own settings win over ~/.ssh/config.
    env.ok(&["remote", "set", "store", "port", "1"]);
    let out = env.fails(1, &["status", "--remote"]);
    assert!(out.stderr.contains("127.0.0.1:1"), "{out}");
}

fn sftp_ssh_agent_login(b: Backend) {
    let remote = Remote::new(b);
    let s = remote.server();
    let env = Env::new();
    env.write("a.txt", "through the agent");
    env.ok(&["add", "a.txt"]);
    env.ok(&["remote", "add", "store", &s.url(&remote.root())]);
    env.ok(&["remote", "set", "store", "transport", b.transport().unwrap()]);
    env.ok(&["remote", "set", "store", "known_hosts", s.known_hosts.to_str().unwrap()]);
    // Without a key file or an agent there is nothing to log in with.
    let out = env.fails(1, &["push"]);
    assert!(out.stderr.contains("cannot log in"), "{out}");
    // A real ssh-agent holding the user's key.
    let sock = env.outside().join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run ssh-agent (package openssh-client)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "ssh-agent did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let added = Command::new("ssh-add").arg(&s.key).env("SSH_AUTH_SOCK", &sock).output().unwrap();
    assert!(added.status.success(), "ssh-add: {}", String::from_utf8_lossy(&added.stderr));
    let agent_vars = [("SSH_AUTH_SOCK", sock.to_str().unwrap())];
    let out = run_with(&env, &env.root, &["push"], &agent_vars);
    let stored = remote.count_objects_with(&env, &agent_vars);
    let _ = agent.kill();
    let _ = agent.wait();
    assert_eq!(out.code, 0, "{out}\n{}", remote.describe());
    assert_eq!(stored, 1);
}

fn sftp_encrypted_key_takes_its_passphrase_from_the_environment(b: Backend) {
    let remote = Remote::new(b);
    let s = remote.server();
    let env = sftp_env(&remote);
    // The user's key, encrypted with a passphrase.
    let key = env.outside().join("locked_key");
    fs::copy(&s.key, &key).unwrap();
    fs::copy(format!("{}.pub", s.key.display()), format!("{}.pub", key.display())).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    let status = Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", "open sesame", "-f"])
        .arg(&key)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    env.ok(&["remote", "set", "store", "keyfile", key.to_str().unwrap()]);
    let out = env.fails(1, &["push"]);
    assert!(out.stderr.contains("TROVE_SFTP_KEY_PASSPHRASE"), "{out}");
    let out = run_with(&env, &env.root, &["push"], &[("TROVE_SFTP_KEY_PASSPHRASE", "xyzzy-bad")]);
    assert_eq!(out.code, 1, "{out}");
    assert!(!out.stderr.contains("xyzzy-bad"), "the passphrase is printed:\n{out}");
    let out = run_with(&env, &env.root, &["push"], &[("TROVE_SFTP_KEY_PASSPHRASE", "open sesame")]);
    assert_eq!(out.code, 0, "{out}\n{}", remote.describe());
    assert!(!out.stdout.contains("open sesame") && !out.stderr.contains("open sesame"));
}

/// `cat a b`: one known_hosts file trusting both servers.
fn known_hosts_of(servers: &[&Sshd], to: &Path) {
    let text: String = servers.iter().map(|s| fs::read_to_string(&s.known_hosts).unwrap()).collect();
    fs::write(to, text).unwrap();
}

/// `~/.ssh/config` under `home` reaching `target` through `jump` (ProxyJump); both are
/// trusted by a known_hosts file the config names.
fn write_proxyjump_config(home: &Path, jump: &Sshd, target: &Sshd) {
    let ssh = home.join(".ssh");
    fs::create_dir_all(&ssh).unwrap();
    let known = ssh.join("known_hosts_lab");
    known_hosts_of(&[jump, target], &known);
    fs::write(
        ssh.join("config"),
        format!(
            "Host jump\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n  UserKnownHostsFile {known}\n\n\
             Host target\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n  ProxyJump jump\n  UserKnownHostsFile {known}\n",
            jump.port,
            jump.user,
            jump.key.display(),
            target.port,
            target.user,
            target.key.display(),
            known = known.display(),
        ),
    )
    .unwrap();
}

/// The OpenSSH transport follows ~/.ssh/config's ProxyJump, as `ssh target` does: the
/// data goes to the second server through the first, each host's key checked against the
/// known_hosts file the config names. libssh2 reads neither ProxyJump nor
/// UserKnownHostsFile.
#[test]
fn sftp_proxyjump_through_a_second_server() {
    // DEBUG1 (the first LogLevel wins): the jump server logs the connections it forwards.
    let jump = Sshd::start_with("LogLevel DEBUG1\n");
    let target = Sshd::start();
    let env = Env::new();
    env.write("model.bin", noise(300_000, 11));
    env.ok(&["add", "model.bin"]);
    write_proxyjump_config(&env.home, &jump, &target);
    let root = target.data.join("store");
    env.ok(&["remote", "add", "store", &format!("sftp://target{}", root.display()), "--default"]);
    env.ok(&["remote", "set", "store", "transport", "openssh"]);
    commit_all(&env);
    let logs = || format!("jump sshd log:\n{}\ntarget sshd log:\n{}", jump.log_text(), target.log_text());
    let out = env.run(&["push"]);
    assert_eq!(out.code, 0, "{out}\n{}", logs());
    assert!(out.stdout.contains("pushed 1 file"), "{out}");
    let mut packs = Vec::new();
    walk(&root.join("packs"), &mut packs);
    assert!(!packs.is_empty(), "nothing arrived under {}\n{}", root.display(), logs());
    // The first server logged the user in and forwarded the connection to the second.
    let jump_log = jump.log_text();
    assert!(jump_log.contains("Accepted publickey"), "the jump server saw no login:\n{}", logs());
    assert!(
        jump_log.contains("direct-tcpip")
            && jump_log.contains(&format!("target 127.0.0.1 port {}", target.port)),
        "the jump server forwarded nothing to the second server:\n{}",
        logs()
    );

    let clone = clone_repo(&env.root);
    write_proxyjump_config(&clone.home, &jump, &target);
    let out = clone.run(&["pull"]);
    assert_eq!(out.code, 0, "{out}\n{}", logs());
    assert_eq!(clone.read("model.bin"), env.read("model.bin"));

    // The built-in transport reads neither ProxyJump nor UserKnownHostsFile.
    env.write("more.bin", noise(1000, 12));
    env.ok(&["add", "more.bin"]);
    env.ok(&["remote", "set", "store", "transport", "libssh2"]);
    let out = env.fails(1, &["push"]);
    assert!(out.stderr.contains("store"), "{out}");
    assert!(out.stderr.contains("not a known host"), "{out}");
}

/// ~/.ssh/config's Include and Match (OpenSSH transport): the host's settings come from
/// an included file.
#[test]
fn sftp_ssh_config_include_and_match() {
    let remote = Remote::new(Backend::Sftp);
    let s = remote.server();
    let env = Env::new();
    env.write("a.txt", "through an included config");
    env.ok(&["add", "a.txt"]);
    let ssh = env.home.join(".ssh");
    fs::create_dir_all(ssh.join("conf.d")).unwrap();
    // ssh expands `~` to the account's home (from /etc/passwd), which is not this HOME.
    fs::write(ssh.join("config"), format!("Include {}/conf.d/*\n", ssh.display())).unwrap();
    // HOME's known_hosts, named by its absolute path (`~` would be the account's).
    let known = ssh.join("known_hosts");
    fs::copy(&s.known_hosts, &known).unwrap();
    fs::write(
        ssh.join("conf.d/data.conf"),
        format!(
            "Match host datahost\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n  UserKnownHostsFile {}\n",
            s.port,
            s.user,
            s.key.display(),
            known.display()
        ),
    )
    .unwrap();
    let root = remote.root();
    env.ok(&["remote", "add", "store", &format!("sftp://datahost{}", root.display())]);
    env.ok(&["remote", "set", "store", "transport", "openssh"]);
    let out = env.run(&["push"]);
    assert_eq!(out.code, 0, "{out}\n{}", remote.describe());
    assert!(out.stdout.contains("pushed 1 file"), "{out}");
    assert_eq!(remote.count_objects(&env), 1);
}

// ---- `trove remote …` ----

#[test]
fn remote_commands_manage_the_settings() {
    let env = Env::new();
    let out = env.ok(&["remote", "list"]);
    assert!(out.stdout.contains("no remotes"), "{out}");
    let out = env.fails(2, &["push"]);
    assert!(out.stderr.contains("no remote is configured"), "{out}");

    // The first remote becomes the default; --default moves it.
    env.ok(&["remote", "add", "backup", "/srv/backup"]);
    env.ok(&["remote", "add", "team", "sftp://alice@data.example.com:2222/srv/trove", "--default"]);
    let v = env.json(&["remote", "list"]);
    let remotes = v["remotes"].as_array().unwrap();
    assert_eq!(remotes.len(), 2, "{v}");
    assert_eq!(remotes[0]["name"], "backup");
    assert_eq!(remotes[0]["default"], false);
    assert_eq!(remotes[1]["name"], "team");
    assert_eq!(remotes[1]["default"], true);
    assert_eq!(remotes[1]["url"], "sftp://alice@data.example.com:2222/srv/trove");
    let out = env.ok(&["remote", "list"]);
    assert!(out.stdout.contains("team (default)"), "{out}");
    env.ok(&["remote", "default", "backup"]);
    assert_eq!(env.ok(&["config", "core.remote"]).stdout.trim(), "backup");

    // Settings, checked; secrets only in config.local and never shown.
    env.ok(&["remote", "set", "team", "port", "2200"]);
    env.ok(&["remote", "set", "team", "host_key", "accept-new"]);
    env.fails(2, &["remote", "set", "team", "port", "many"]);
    env.fails(2, &["remote", "set", "team", "host_key", "whatever"]);
    env.fails(2, &["remote", "set", "team", "colour", "blue"]);
    env.fails(2, &["remote", "set", "nosuch", "port", "22"]);
    let out = env.fails(2, &["remote", "set", "team", "password", "hunter2"]);
    assert!(out.stderr.contains("--local"), "{out}");
    let out = env.ok(&["remote", "set", "team", "password", "hunter2", "--local"]);
    assert!(!out.stdout.contains("hunter2"), "{out}");
    assert!(env.read_string(".trove/config.local").contains("hunter2"));
    assert!(!env.read_string(".trove/config").contains("hunter2"));
    // A key file must be there when it is set, found as the push will look for it.
    let out = env.fails(1, &["remote", "set", "team", "keyfile", "/nonexistent/id_team"]);
    assert!(out.stderr.contains("error: remote team: keyfile /nonexistent/id_team does not exist"), "{out}");
    assert!(
        out.stderr.contains("\nhint: ") && out.stderr.contains("trove config remote.team.keyfile"),
        "{out}"
    );
    let home_key = env.home.join(".ssh/id_team");
    let out = env.fails(1, &["remote", "set", "team", "keyfile", "~/.ssh/id_team", "--local"]);
    assert!(
        out.stderr.contains(&format!("keyfile ~/.ssh/id_team ({}) does not exist", home_key.display())),
        "{out}"
    );
    env.fails(1, &["remote", "set", "team", "keyfile", "keys"]);
    env.write("keys/id_team", "a key");
    let out = env.fails(1, &["remote", "set", "team", "keyfile", "keys"]);
    assert!(out.stderr.contains("is a folder"), "{out}");
    env.ok(&["remote", "set", "team", "keyfile", "keys/id_team"]);
    fs::create_dir_all(home_key.parent().unwrap()).unwrap();
    fs::write(&home_key, "a key").unwrap();
    env.ok(&["remote", "set", "team", "keyfile", "~/.ssh/id_team", "--local"]);
    assert!(env.read_string(".trove/config.local").contains("~/.ssh/id_team"));
    assert!(!env.read_string(".trove/config").contains("nonexistent"), "a refused key file is not written");
    let v = env.json(&["remote", "list"]);
    assert_eq!(v["remotes"][1]["settings"]["password"], "(set)", "{v}");
    assert_eq!(v["remotes"][1]["settings"]["port"], "2200", "{v}");
    assert!(!env.ok(&["-v", "remote", "list"]).stdout.contains("hunter2"));
    let out = env.ok(&["config", "remote.team.password"]);
    assert_eq!(out.stdout.trim(), "(set)", "{out}");
    assert!(!env.ok(&["--json", "config", "remote.team.password"]).stdout.contains("hunter2"));

    // Bad URLs and names are usage errors.
    for url in ["sftp://bob:secret@host/path", "sftp://host", "ftp://host/x"] {
        let out = env.fails(2, &["remote", "add", "x", url]);
        assert!(!out.stderr.contains("secret"), "{out}");
    }
    env.fails(2, &["remote", "add", "bad name", "/x"]);
    env.fails(2, &["remote", "add", "team", "/elsewhere"]);
    env.fails(2, &["push", "-r", "nosuch"]);

    // Removing the default remote removes the default too, leaving no empty section.
    env.ok(&["remote", "remove", "backup"]);
    env.fails(2, &["remote", "remove", "backup"]);
    let cfg = env.read_string(".trove/config");
    assert!(!cfg.contains("backup") && !cfg.contains("{}"), "{cfg}");
    assert!(cfg.starts_with("# trove settings"), "{cfg}");
    env.ok(&["remote", "remove", "team"]);
    assert!(!env.read_string(".trove/config.local").contains("hunter2"), "its secret goes with it");
}

#[test]
fn progress_bar_on_a_terminal_summary_line_otherwise() {
    let remote = Remote::new(Backend::Folder);
    let env = Env::new();
    for i in 0..300u64 {
        env.write(&format!("d/f{i:03}"), noise(20_000, i));
    }
    env.ok(&["add", "d"]);
    remote.configure(&env);
    // On a terminal (a pty from `script`), a bar with files, bytes, rate and ETA.
    let mut cmd = Command::new("script");
    env.clean_env(&mut cmd);
    let out = cmd
        .env("TERM", "xterm")
        .args(["-qec", &format!("{BIN} push -j 1"), "/dev/null"])
        .current_dir(&env.root)
        .stdin(Stdio::null())
        .output()
        .expect("run script (package bsdutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("pushed 301 files"), "{text}");
    assert!(text.contains("pushing"), "no progress bar on a terminal:\n{text}");
    assert!(text.contains("files") && text.contains("/s") && text.contains("eta"), "{text}");
    // Without one: only the summary line.
    env.write("d/new", "new");
    env.ok(&["add", "d"]);
    let out = env.ok(&["push"]);
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    assert!(out.stdout.starts_with("pushed 2 files, "), "{out}");
    assert!(out.stderr.is_empty(), "{out}");
}

fn sftp_a_dropped_connection_is_retried_within_the_same_push(b: Backend) {
    // Layout 1: its uploads of one object each give many points to drop the connection
    // at; the retries are the connection pool's, which layout 2 shares.
    let mut remote = Remote::of_layout(b, 1);
    let env = Env::new();
    const FILES: usize = 1500;
    for i in 0..FILES as u64 {
        env.write(&format!("shards/s{i:04}.bin"), noise(16 * 1024, i));
    }
    env.ok(&["add", "shards"]);
    remote.configure(&env);
    let child = env.spawn_in(&env.root, &["push", "-j", "1"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while remote.objects().len() < 20 {
        assert!(Instant::now() < deadline, "push made no progress\n{}", remote.describe());
        std::thread::sleep(Duration::from_millis(2));
    }
    // The server drops every connection and is back at once, as after a network blip.
    remote.server.as_mut().unwrap().restart();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "the push did not recover:\n{stderr}\n{}", remote.describe());
    assert_eq!(remote.objects().len(), FILES + 1);
    remote.assert_sound(&remote.root());
}

/// push, fetch and pull start logging in to an SFTP remote while they read the local side
/// (`connect_early`); a fetch or pull that finds everything in the cache never waits for
/// that login, so it works with the server down, and says nothing of it.
#[test]
fn fetch_and_pull_with_everything_cached_need_no_server() {
    let env = Env::new();
    env.write("data/a.csv", "a\n");
    env.write("b.bin", "b");
    env.ok(&["add", "data", "b.bin"]);
    // Nothing listens on port 1 of 127.0.0.1: a login would be refused at once.
    env.ok(&["remote", "add", "--default", "store", "sftp://tester@127.0.0.1:1/srv/store"]);
    for args in [&["fetch"][..], &["pull"]] {
        let out = env.ok(args);
        assert!(!out.stderr.contains("127.0.0.1"), "{args:?}: {out}");
    }
    // A push needs the server, and says so, naming the remote.
    let out = env.fails(1, &["push"]);
    assert!(out.stderr.contains("store"), "{out}");
}
