//! Shared helpers for the end-to-end tests: a throwaway git repository with a private
//! HOME, a way to run the `trove` binary in it, and readers for what it writes.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

mod history;
pub use history::*;
mod kill;
pub use kill::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_trove");

pub const HEADER: &str = "# trove pointer: commit this file; `trove pull` restores the data it names";

/// What one run of the binary did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// stdout as exactly one JSON document (panics with the whole output otherwise).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{self}"))
    }

    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success:\n{self}");
        self
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}\n--- stdout ---\n{}--- stderr ---\n{}", self.code, self.stdout, self.stderr)
    }
}

/// A temporary folder holding `repo/` (the work tree) and `home/` (a private HOME).
pub struct Env {
    pub tmp: tempfile::TempDir,
    /// The repository's top folder (canonical path).
    pub root: PathBuf,
    pub home: PathBuf,
}

impl Env {
    /// A git repository (with a user name and email) in which `trove init` has run.
    pub fn new() -> Env {
        let env = Env::git_only();
        env.ok(&["init"]);
        env
    }

    /// A git repository with a user name and email, without trove.
    pub fn git_only() -> Env {
        let env = Env::plain();
        let repo = git2::Repository::init(&env.root).expect("git init");
        let mut cfg = repo.config().expect("git config");
        cfg.set_str("user.name", "Trove Tester").unwrap();
        cfg.set_str("user.email", "tester@example.com").unwrap();
        env
    }

    /// An empty folder, not a git repository.
    pub fn plain() -> Env {
        let tmp = tempfile::Builder::new().prefix("trove-e2e-").tempdir().expect("temp dir");
        let base = fs::canonicalize(tmp.path()).unwrap();
        let root = base.join("repo");
        let home = base.join("home");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&home).unwrap();
        Env { tmp, root, home }
    }

    /// The temporary folder that holds the repository (outside the repository).
    pub fn outside(&self) -> PathBuf {
        self.root.parent().unwrap().to_path_buf()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// A command for the trove binary with a clean environment, in `cwd`.
    pub fn command_in(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(cwd);
        self.clean_env(&mut cmd);
        cmd
    }

    /// Start trove in `cwd` in the background: no stdin, stdout and stderr captured.
    pub fn spawn_in(&self, cwd: &Path, args: &[&str]) -> std::process::Child {
        self.command_in(cwd, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start trove")
    }

    pub fn clean_env(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()))
            .env("HOME", &self.home)
            .env("TMPDIR", self.outside())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", self.home.join(".gitconfig"))
            // The test S3 server's keys, as a machine's ~/.aws/credentials holds them.
            .env("AWS_SHARED_CREDENTIALS_FILE", s3_credentials())
            .env("LC_ALL", "C");
    }

    pub fn run_in(&self, cwd: &Path, args: &[&str]) -> Out {
        let out = self.command_in(cwd, args).stdin(Stdio::null()).output().expect("run trove");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Run trove at the repository's top folder.
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_in(&self.root, args)
    }

    /// Run trove and require exit code 0.
    pub fn ok(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        assert_eq!(out.code, 0, "trove {args:?} failed:\n{out}");
        out
    }

    /// Run trove with --json, require success, and parse stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.ok(&all).json()
    }

    /// Run trove and require it to fail with `code`.
    pub fn fails(&self, code: i32, args: &[&str]) -> Out {
        let out = self.run(args);
        assert_eq!(out.code, code, "trove {args:?} should exit with {code}:\n{out}");
        out
    }

    /// Write a file (creating its folders).
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        if fs::symlink_metadata(&p).is_ok() {
            make_writable(&p);
        }
        fs::write(&p, content).unwrap();
        p
    }

    pub fn write_exec(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.write(rel, content);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        fs::read(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn read_string(&self, rel: &str) -> String {
        String::from_utf8(self.read(rel)).unwrap()
    }

    pub fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.path(rel)).is_ok()
    }

    pub fn git(&self) -> git2::Repository {
        git2::Repository::open(&self.root).expect("open git repository")
    }

    /// Run the git command line in the repository (clean environment).
    pub fn git_cmd(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        cmd.args(args).current_dir(&self.root);
        self.clean_env(&mut cmd);
        let out = cmd.output().expect("run git");
        assert!(
            out.status.success(),
            "git {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Paths in the git index (sorted), read fresh from disk.
    pub fn index_paths(&self) -> Vec<String> {
        let idx = self.git().index().unwrap();
        let mut v: Vec<String> = idx.iter().map(|e| String::from_utf8(e.path).unwrap()).collect();
        v.sort();
        v
    }

    /// The content of `rel` as staged in the git index.
    pub fn index_blob(&self, rel: &str) -> Option<Vec<u8>> {
        let git = self.git();
        let idx = git.index().unwrap();
        let entry = idx.get_path(Path::new(rel), 0)?;
        Some(git.find_blob(entry.id).unwrap().content().to_vec())
    }

    /// The content of `rel` in the tree of HEAD.
    pub fn head_blob(&self, rel: &str) -> Option<Vec<u8>> {
        let git = self.git();
        let tree = git.head().ok()?.peel_to_tree().unwrap();
        let entry = tree.get_path(Path::new(rel)).ok()?;
        Some(git.find_blob(entry.id()).unwrap().content().to_vec())
    }

    pub fn is_git_ignored(&self, rel: &str) -> bool {
        self.git().is_path_ignored(rel).unwrap()
    }

    /// The `.gitignore` lines of a folder ("" for the top).
    pub fn gitignore_lines(&self, dir: &str) -> Vec<String> {
        let p =
            if dir.is_empty() { self.path(".gitignore") } else { self.path(&format!("{dir}/.gitignore")) };
        match fs::read_to_string(p) {
            Ok(t) => t.lines().map(String::from).collect(),
            Err(_) => Vec::new(),
        }
    }

    pub fn objects_dir(&self) -> PathBuf {
        self.path(".trove/cache/objects")
    }

    pub fn object_path(&self, hex: &str) -> PathBuf {
        self.objects_dir().join(&hex[..2]).join(&hex[2..])
    }

    pub fn manifest_path(&self, hex: &str) -> PathBuf {
        self.objects_dir().join(&hex[..2]).join(format!("{}.dir", &hex[2..]))
    }

    /// Every file under the cache's objects folder.
    /// The object files of the cache (not the `obj-PID-N` temp files beside them: see
    /// [`cache_temps`]).
    pub fn object_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.objects_dir(), &mut out);
        out.retain(|p| !is_cache_temp(p));
        out.sort();
        out
    }

    /// The parsed pointer file `rel` as key → value strings (after the header).
    pub fn pointer(&self, rel: &str) -> Pointer {
        Pointer::parse(&self.read_string(rel))
    }

    /// Write a pointer file by hand.
    pub fn write_pointer(&self, rel: &str, p: &Pointer) {
        self.write(rel, p.text());
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // The cache is read-only; make everything removable for TempDir.
        let mut files = Vec::new();
        walk_all(self.tmp.path(), &mut files);
        for f in files {
            make_writable(&f);
        }
    }
}

fn make_writable(p: &Path) {
    if let Ok(m) = fs::symlink_metadata(p)
        && !m.file_type().is_symlink()
    {
        let mode = m.permissions().mode() | 0o200 | if m.is_dir() { 0o700 } else { 0 };
        let _ = fs::set_permissions(p, fs::Permissions::from_mode(mode));
    }
}

fn walk_all(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&p);
                walk_all(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

/// Regular files (and symlinks) below `dir`, recursively.
pub fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

/// The temp files of a cache (the folder holding `objects/`): anything under `tmp/`, and
/// the `obj-PID-N` files that writers make in the object folders.
pub fn cache_temps(cache: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(&cache.join("tmp"), &mut out);
    let mut objects = Vec::new();
    walk(&cache.join("objects"), &mut objects);
    out.extend(objects.into_iter().filter(|p| is_cache_temp(p)));
    out
}

/// Whether `path` is a writer's temp file in a cache's object folder (`obj-PID-N`).
pub fn is_cache_temp(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("obj-"))
}

/// A pointer file's fields, as docs/formats.md lays them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    pub path: String,
    pub kind: String,
    pub hash: String,
    pub size: u64,
    pub files: Option<u64>,
}

impl Pointer {
    pub fn file(path: &str, content: &[u8]) -> Pointer {
        Pointer {
            path: path.into(),
            kind: "file".into(),
            hash: blake3_hex(content),
            size: content.len() as u64,
            files: None,
        }
    }

    /// The exact bytes docs/formats.md prescribes.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{HEADER}\nversion: 1\npath: {}\nkind: {}\nhash: {}\nsize: {}\n",
            self.path, self.kind, self.hash, self.size
        );
        if let Some(f) = self.files {
            s.push_str(&format!("files: {f}\n"));
        }
        s
    }

    pub fn parse(text: &str) -> Pointer {
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(HEADER), "pointer header:\n{text}");
        let mut get = |key: &str| -> Option<String> {
            let l = lines.clone().next()?;
            let v = l.strip_prefix(&format!("{key}: "))?.to_string();
            lines.next();
            Some(v)
        };
        assert_eq!(get("version").as_deref(), Some("1"), "{text}");
        let path = get("path").expect("path");
        let kind = get("kind").expect("kind");
        let hash = get("hash").expect("hash");
        let size = get("size").expect("size").parse().unwrap();
        let files = get("files").map(|f| f.parse().unwrap());
        assert!(lines.next().is_none(), "extra lines in pointer:\n{text}");
        Pointer { path, kind, hash, size, files }
    }
}

pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

pub fn blake3_file(path: &Path) -> String {
    let mut h = blake3::Hasher::new();
    h.update_reader(fs::File::open(path).unwrap()).unwrap();
    h.finalize().to_hex().to_string()
}

/// A manifest entry as the test computes it independently.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: String,
    pub content: Vec<u8>,
    pub exec: bool,
}

/// The canonical manifest bytes, built by hand from docs/formats.md.
pub fn manifest_bytes(entries: &[Entry]) -> String {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let parts: Vec<String> = sorted
        .iter()
        .map(|e| {
            format!(
                r#"{{"path":"{}","hash":"{}","size":{},"exec":{}}}"#,
                e.path,
                blake3_hex(&e.content),
                e.content.len(),
                e.exec
            )
        })
        .collect();
    format!(r#"{{"version":1,"entries":[{}]}}"#, parts.join(","))
}

/// Put other bytes in a file while keeping its inode, size and mtime: only a command
/// that reads the file can tell (one that trusts the hash cache cannot).
pub fn rewrite_keeping_stamp(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mtime = fs::metadata(path).unwrap().modified().unwrap();
    let mut f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
    f.set_modified(mtime).unwrap();
}

/// The names in a folder, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

pub fn lmeta(path: &Path) -> fs::Metadata {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The strings of a JSON array.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

/// Deterministic pseudo-random bytes (xorshift), so big files do not compress or dedupe.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// A fresh `git clone` of the repository at `src`, with its own HOME, a git identity and
/// an empty trove cache.
pub fn clone_repo(src: &Path) -> Env {
    let clone = Env::plain();
    let out = Command::new("git")
        .args(["clone", "-q"])
        .arg(src)
        .arg(&clone.root)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", &clone.home)
        .output()
        .expect("run git clone");
    assert!(out.status.success(), "git clone failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut cfg = clone.git().config().expect("git config");
    cfg.set_str("user.name", "Trove Tester").unwrap();
    cfg.set_str("user.email", "tester@example.com").unwrap();
    clone
}

/// A small tmpfs (mounting needs root; CI runs as root), unmounted on drop: a disk that
/// fills up.
pub struct SmallDisk(PathBuf);

impl SmallDisk {
    /// Mount a tmpfs of `size` (as `mount -o size=` takes it, e.g. `1m`) at `at`.
    pub fn mount(at: &Path, size: &str) -> SmallDisk {
        fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0777"), "tmpfs"])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "the full-disk tests mount a {size} tmpfs and need root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(at.to_path_buf())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Put a hand-made manifest in the cache and a pointer naming it; returns its id.
pub fn plant_manifest(env: &Env, name: &str, manifest: &str, files: u64, size: u64) -> String {
    let id = blake3_hex(manifest.as_bytes());
    let path = env.manifest_path(&id);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, manifest).unwrap();
    let p = Pointer { path: name.into(), kind: "dir".into(), hash: id.clone(), size, files: Some(files) };
    env.write_pointer(&format!("{name}.trove"), &p);
    id
}

/// Run trove in `cwd` with extra environment variables and no stdin.
pub fn run_with(env: &Env, cwd: &Path, args: &[&str], vars: &[(&str, &str)]) -> Out {
    let mut cmd = env.command_in(cwd, args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.stdin(Stdio::null()).output().expect("run trove");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A credentials file holding the test S3 server's keys as profile `default`, written
/// once per test run: every repository and clone of the tests finds its keys there.
pub fn s3_credentials() -> &'static Path {
    static FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("trove-test-aws-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("credentials");
        fs::write(
            &file,
            format!(
                "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                crate::s3::ACCESS_KEY,
                crate::s3::SECRET_KEY
            ),
        )
        .unwrap();
        file
    })
}

/// `git` in `dir` with an isolated configuration (HOME `home`, the test identity): its
/// output, whether it succeeded or not.
pub fn git_output(dir: &Path, home: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", home)
        .env("GIT_AUTHOR_NAME", "Trove Tester")
        .env("GIT_AUTHOR_EMAIL", "tester@example.com")
        .env("GIT_COMMITTER_NAME", "Trove Tester")
        .env("GIT_COMMITTER_EMAIL", "tester@example.com")
        .output()
        .expect("run git")
}

/// [`git_output`], which must succeed: its stdout.
pub fn git_in(dir: &Path, home: &Path, args: &[&str]) -> String {
    let out = git_output(dir, home, args);
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
