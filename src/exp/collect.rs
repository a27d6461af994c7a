//! Building a record: the code's state (commit, branch, uncommitted changes), the data at
//! that commit, the environment, params and metrics from files, and artifacts stored in
//! the cache.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, IoContext, Result};
use crate::exp::record::{
    self, Artifact, DataRef, Environment, Point, RECORD_VERSION, Record, RunInfo, Status, Value,
};
use crate::hash::ObjectId;
use crate::pointer::Kind;
use crate::progress::Reporter;
use crate::repo::{Repo, RepoLock};
use crate::scan;
use crate::tracked::{self, display_rel};
use crate::workspace;

/// An environment file larger than this is recorded by size and hash only.
const ENV_FILE_MAX: u64 = 1 << 20;
/// How long an interpreter may take to print its version.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// The code a record links to.
#[derive(Debug, Clone)]
pub struct CodeState {
    pub commit: git2::Oid,
    /// None when HEAD is detached.
    pub branch: Option<String>,
    /// Changed paths relative to the top: git-tracked files that differ from HEAD (staged
    /// or not) and tracked data that differs from its pointer.
    pub dirty_paths: Vec<String>,
    /// BLAKE3 of the changes (the git patch, and the current id of changed data).
    pub diff_hash: Option<String>,
}

impl CodeState {
    pub fn dirty(&self) -> bool {
        !self.dirty_paths.is_empty()
    }

    /// Refuse a dirty work tree unless allowed.
    pub fn check_clean(&self, root: &Path, allow_dirty: bool) -> Result<()> {
        if !self.dirty() || allow_dirty {
            return Ok(());
        }
        let shown: Vec<&str> = self.dirty_paths.iter().take(5).map(String::as_str).collect();
        let more = match self.dirty_paths.len() {
            n if n > 5 => format!(" and {} more", n - 5),
            _ => String::new(),
        };
        Err(Error::path(
            root,
            format!(
                "has uncommitted changes ({}{more}); commit them first (git commit, trove commit), \
                 or pass --allow-dirty to record them with the run",
                shown.join(", ")
            ),
        ))
    }
}

fn git_err(root: &Path) -> impl Fn(git2::Error) -> Error + '_ {
    move |e| Error::git(root, e)
}

/// HEAD's commit and branch, and what differs from it. `outputs` (absolute paths: the
/// metrics file and artifacts a run writes) are not counted as changes.
pub fn code_state(
    repo: &Repo,
    git: &git2::Repository,
    outputs: &[PathBuf],
    reporter: &dyn Reporter,
) -> Result<CodeState> {
    let root = repo.root.as_path();
    let head = match git.head() {
        Ok(h) => h,
        Err(e) if matches!(e.code(), git2::ErrorCode::UnbornBranch | git2::ErrorCode::NotFound) => {
            return Err(Error::path(root, "HEAD has no commit yet: commit your code before recording a run"));
        }
        Err(e) => return Err(Error::git(root, e)),
    };
    let commit = head.peel_to_commit().map_err(git_err(root))?;
    let branch = head.is_branch().then(|| head.shorthand().ok().map(String::from)).flatten();
    let excluded: Vec<String> = outputs.iter().map(|p| display_rel(root, p)).collect();
    let is_output = |rel: &str| {
        excluded.iter().any(|o| rel == o || rel.strip_prefix(o.as_str()).is_some_and(|r| r.starts_with('/')))
    };

    let mut paths = BTreeSet::new();
    let mut hasher = blake3::Hasher::new();
    // Tracked files in git: HEAD against the index and the work tree together.
    let tree = commit.tree().map_err(git_err(root))?;
    let mut opts = git2::DiffOptions::new();
    opts.include_untracked(false).ignore_submodules(true).show_binary(true).include_typechange(true);
    let diff = git.diff_tree_to_workdir_with_index(Some(&tree), Some(&mut opts)).map_err(git_err(root))?;
    diff.print(git2::DiffFormat::Patch, |delta, _hunk, line| {
        let path = delta.new_file().path().or(delta.old_file().path());
        let Some(rel) = path.map(|p| p.to_string_lossy().into_owned()) else { return true };
        if is_output(&rel) {
            return true;
        }
        if paths.insert(rel.clone()) {
            hasher.update(format!("git {rel} {}\n", delta.new_file().id()).as_bytes());
        }
        hasher.update(&[line.origin() as u8]);
        hasher.update(line.content());
        true
    })
    .map_err(git_err(root))?;

    // Tracked data that differs from its pointer.
    let targets: Vec<_> = tracked::select(repo, root, &[])?
        .into_iter()
        .filter(|t| !is_output(&display_rel(root, &t.data_path)))
        .collect();
    let statuses = workspace::status(repo, &targets, reporter)?;
    let state = repo.state();
    for (t, s) in targets.iter().zip(&statuses) {
        if !s.other_data {
            continue;
        }
        let current = current_id(repo, &state, &t.data_path, t.pointer.kind, reporter)
            .map_or_else(|_| "unreadable".to_string(), |id| id.to_hex());
        hasher.update(format!("data {} {current}\n", s.path).as_bytes());
        paths.insert(s.path.clone());
    }
    let dirty_paths: Vec<String> = paths.into_iter().collect();
    let diff_hash = (!dirty_paths.is_empty()).then(|| hasher.finalize().to_hex().to_string());
    Ok(CodeState { commit: commit.id(), branch, dirty_paths, diff_hash })
}

/// The id the data at `abs` would get if added now.
fn current_id(
    repo: &Repo,
    state: &crate::state::StateDb,
    abs: &Path,
    kind: Kind,
    reporter: &dyn Reporter,
) -> Result<ObjectId> {
    match kind {
        Kind::File if abs.is_file() => scan::hash_one(repo, state, abs, reporter),
        Kind::Dir if abs.is_dir() => {
            let files = scan::list_dir(repo, abs)?;
            let ids = scan::hash_all(repo, state, &files, reporter)?;
            Ok(scan::manifest_of(&files, &ids).id())
        }
        _ => Err(Error::path(abs, "changed kind")),
    }
}

/// Every tracked item in the tree of `commit`.
pub fn data_at(git: &git2::Repository, commit: git2::Oid) -> Result<Vec<DataRef>> {
    let mut out: Vec<DataRef> = crate::history::pointers_in_commit(git, commit, None)?
        .into_iter()
        .map(|(rel, p)| {
            let data = rel.with_file_name(&p.path);
            DataRef { path: data.to_string_lossy().into_owned(), kind: p.kind, hash: p.hash, size: p.size }
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// A list setting (`[a, b]` or `a, b`), or its default (the settings own it).
fn list_setting(repo: &Repo, key: &str) -> Result<Vec<String>> {
    use serde_yaml::Value as Y;
    match repo.config.effective(key).as_ref() {
        None => Ok(Vec::new()),
        Some(Y::Sequence(items)) => items
            .iter()
            .map(|i| match i {
                Y::String(s) => Ok(s.clone()),
                other => Err(crate::config::show(other)),
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|bad| Error::Config {
                path: repo.trove_dir.join("config"),
                message: format!("{key}: expected a list of names, found {bad}"),
            }),
        Some(Y::String(s)) => {
            Ok(s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
        }
        Some(Y::Null) => Ok(Vec::new()),
        Some(other) => Err(Error::Config {
            path: repo.trove_dir.join("config"),
            message: format!("{key}: expected a list of names, not {}", crate::config::show(other)),
        }),
    }
}

/// The key patterns whose params are redacted (`exp.redact`).
pub fn redact_patterns(repo: &Repo) -> Result<Vec<String>> {
    list_setting(repo, "exp.redact")
}

/// Environment files at the top of the repository, the versions of interpreters on PATH
/// and the installed Python packages.
pub fn environment(repo: &Repo) -> Result<Environment> {
    let mut env = Environment::default();
    // Read while the interpreters answer: it may ask python3 for its sys.path.
    let listed = !matches!(repo.config.effective("exp.packages"), Some(serde_yaml::Value::Bool(false)));
    let packages = listed.then(|| std::thread::spawn(crate::exp::packages::installed));
    for name in list_setting(repo, "exp.env_files")? {
        let path = repo.root.join(&name);
        let Ok(meta) = fs::metadata(&path) else { continue };
        if !meta.is_file() {
            continue;
        }
        let text = if meta.len() > ENV_FILE_MAX {
            let (id, size) = crate::hash::hash_file(&path)?;
            format!("[not stored: {size} bytes, blake3 {id}]")
        } else {
            let bytes = fs::read(&path).at(&path)?;
            match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => format!("[not stored: not UTF-8, blake3 {}]", ObjectId::of_bytes(e.as_bytes())),
            }
        };
        env.files.insert(name, text);
    }
    let interpreters = list_setting(repo, "exp.interpreters")?;
    let found: Vec<(String, PathBuf)> =
        interpreters.into_iter().filter_map(|name| on_path(&name).map(|p| (name, p))).collect();
    let versions: Vec<(String, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> =
            found.iter().map(|(name, exe)| s.spawn(move || (name.clone(), version_of(name, exe)))).collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    for (name, version) in versions {
        if let Some(v) = version {
            env.interpreters.insert(name, v);
        }
    }
    env.packages = packages.and_then(|p| p.join().ok()).unwrap_or_default();
    Ok(env)
}

/// Where `name` is on PATH, if it is.
fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if name.contains('/') {
        return None;
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// The first line `exe --version` (`go version`) prints, waiting at most VERSION_TIMEOUT.
fn version_of(name: &str, exe: &Path) -> Option<String> {
    let arg = if name == "go" { "version" } else { "--version" };
    let mut child = Command::new(exe)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() < VERSION_TIMEOUT => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = if out.stdout.iter().any(|b| !b.is_ascii_whitespace()) { out.stdout } else { out.stderr };
    String::from_utf8_lossy(&text).lines().map(str::trim).find(|l| !l.is_empty()).map(String::from)
}

/// Who records: the git identity (`Name <email>`), else the login name.
pub fn user(git: &git2::Repository, root: &Path) -> String {
    match crate::git::signature(git, "AUTHOR", root) {
        Ok(sig) => format!("{} <{}>", sig.name().unwrap_or(""), sig.email().unwrap_or("")),
        Err(_) => {
            std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into())
        }
    }
}

/// What a run produced and, for a dirty work tree, the data it used, stored in the cache.
pub struct Stored {
    pub artifacts: Vec<Artifact>,
    /// The workspace's data when it differs from the commit's (None: the commit's).
    pub data: Option<Vec<DataRef>>,
    /// Held until the record naming the objects is stored, or a `gc` in between would
    /// delete them as unreferenced.
    pub lock: Option<RepoLock>,
}

/// Store the artifacts (files, and the files inside folders; paths absolute) as objects
/// in the cache, and, when the work tree is dirty, the tracked data that differs from its
/// pointer: a dirty record names the data as it is, not as committed.
pub fn store_run(
    repo: &Repo,
    code: &CodeState,
    paths: &[PathBuf],
    reporter: &dyn Reporter,
) -> Result<Stored> {
    if paths.is_empty() && !code.dirty() {
        return Ok(Stored { artifacts: Vec::new(), data: None, lock: None });
    }
    repo.cache.ensure()?;
    let lock = repo.lock(reporter)?;
    let data = if code.dirty() { Some(workspace_data(repo, reporter)?) } else { None };
    let artifacts = store_artifacts(repo, paths, reporter)?;
    Ok(Stored { artifacts, data, lock: Some(lock) })
}

/// Every tracked item as the workspace holds it: data that differs from its pointer is
/// stored in the cache (the pointer is left alone) and named by its current id.
fn workspace_data(repo: &Repo, reporter: &dyn Reporter) -> Result<Vec<DataRef>> {
    let targets = tracked::select(repo, &repo.root, &[])?;
    let statuses = workspace::status(repo, &targets, reporter)?;
    let state = repo.state();
    let mut out = Vec::new();
    for (t, s) in targets.iter().zip(&statuses) {
        let path = display_rel(&repo.root, &t.data_path);
        let p = &t.pointer;
        if !s.other_data {
            out.push(DataRef { path, kind: p.kind, hash: p.hash, size: p.size });
            continue;
        }
        let (kind, hash, size) = match fs::metadata(&t.data_path).at(&t.data_path)? {
            m if m.is_dir() => {
                let files = scan::list_dir(repo, &t.data_path)?;
                let ids = store_files(repo, &state, &files, reporter)?;
                let manifest = scan::manifest_of(&files, &ids);
                (Kind::Dir, repo.cache.insert_manifest(&manifest)?, manifest.total_size())
            }
            m => {
                let file = scan::examine(repo, &t.data_path, String::new())?;
                let ids = store_files(repo, &state, std::slice::from_ref(&file), reporter)?;
                (Kind::File, ids[0], m.len())
            }
        };
        out.push(DataRef { path, kind, hash, size });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Hash `files` and store those the cache lacks; their ids.
fn store_files(
    repo: &Repo,
    state: &crate::state::StateDb,
    files: &[scan::Found],
    reporter: &dyn Reporter,
) -> Result<Vec<ObjectId>> {
    let ids = scan::hash_all(repo, state, files, reporter)?;
    let mut staged = Vec::new();
    let mut staged_ids = HashSet::new();
    for (f, id) in files.iter().zip(&ids) {
        if !repo.cache.has_object(id) && staged_ids.insert(*id) {
            staged.push(repo.cache.stage_file(&f.abs, *id, &f.meta)?);
        }
    }
    repo.cache.commit(staged)?;
    Ok(ids)
}

/// Store files (and the files inside folders) as objects in the cache; paths absolute.
/// The caller holds the repository lock.
fn store_artifacts(repo: &Repo, paths: &[PathBuf], reporter: &dyn Reporter) -> Result<Vec<Artifact>> {
    let mut files = Vec::new();
    for p in paths {
        let meta = fs::metadata(p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::path(p, "artifact does not exist"),
            _ => Error::io(p, e),
        })?;
        if meta.is_dir() {
            files.extend(scan::list_dir(repo, p)?);
        } else {
            files.push(scan::examine(repo, p, String::new())?);
        }
    }
    let mut seen = HashSet::new();
    files.retain(|f| seen.insert(f.abs.clone()));
    let ids = store_files(repo, &repo.state(), &files, reporter)?;
    let mut out: Vec<Artifact> = files
        .iter()
        .zip(ids)
        .map(|(f, hash)| Artifact { path: display_rel(&repo.root, &f.abs), hash, size: f.meta.len() })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// `KEY=VALUE` from the command line (`flag` names the option in errors).
pub fn parse_assignment(flag: &str, text: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => {
            let key = k.trim();
            check_key(key).map_err(|m| Error::Usage(format!("{flag} {text}: {m}")))?;
            Ok((key.to_string(), v.to_string()))
        }
        _ => Err(Error::Usage(format!("{flag} {text}: expected KEY=VALUE"))),
    }
}

/// A param, metric or tag key must be one MLflow takes, or `exp sync` could not send the
/// record: refused here, when it is easy to change.
pub fn check_key(key: &str) -> std::result::Result<(), String> {
    match crate::exp::mlflow::invalid_key(key) {
        Some(problem) => Err(format!("key {key:?}: {problem}")),
        None => Ok(()),
    }
}

/// Take out of a metrics file's values and series the keys MLflow would refuse; what is
/// wrong with each one taken out.
pub fn take_invalid_metrics(values: &mut BTreeMap<String, Value>, series: &mut SeriesMap) -> Vec<String> {
    let mut problems = Vec::new();
    let mut keep = |k: &String| match check_key(k) {
        Ok(()) => true,
        Err(m) => {
            problems.push(format!("metric {m}"));
            false
        }
    };
    values.retain(|k, _| keep(k));
    series.retain(|k, _| keep(k));
    problems
}

/// Params from a YAML or JSON file: nested maps become dotted keys, lists are kept as
/// their JSON text, nulls are left out.
pub fn read_params_file(path: &Path) -> Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for (key, v) in flatten_file(path)? {
        let value = match v {
            serde_yaml::Value::Sequence(_) => {
                Value::Text(serde_json::to_string(&v).unwrap_or_else(|_| crate::config::show(&v)))
            }
            other => match scalar(&other) {
                Some(s) => s,
                None => continue,
            },
        };
        check_key(&key).map_err(|m| Error::path(path, format!("param {m}")))?;
        out.insert(key, value);
    }
    Ok(out)
}

/// Metric series by key.
pub type SeriesMap = BTreeMap<String, Vec<Point>>;

/// Metrics from a YAML or JSON file, and the series among them: a list of numbers (steps
/// 0, 1, …) or of `{step, value}` objects.
pub fn read_metrics_file(path: &Path) -> Result<(BTreeMap<String, Value>, SeriesMap)> {
    let mut values = BTreeMap::new();
    let mut series = BTreeMap::new();
    for (key, v) in flatten_file(path)? {
        match v {
            serde_yaml::Value::Sequence(items) => {
                let points =
                    series_of(&items).map_err(|m| Error::path(path, format!("metric `{key}`: {m}")))?;
                series.insert(key, points);
            }
            other => {
                if let Some(s) = scalar(&other) {
                    values.insert(key, s);
                }
            }
        }
    }
    Ok((values, series))
}

fn series_of(items: &[serde_yaml::Value]) -> std::result::Result<Vec<Point>, String> {
    use serde_yaml::Value as Y;
    let bad = "a series is a list of numbers or of {step, value} objects";
    let mut points: Vec<Point> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let mut time = None;
        let (step, value) = match item {
            Y::Number(n) => (i as u64, n.as_f64()),
            Y::Mapping(m) => {
                let value = m.get("value").and_then(Y::as_f64);
                let step = match m.get("step") {
                    None => Some(i as u64),
                    Some(s) => s
                        .as_u64()
                        .or_else(|| s.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64)),
                };
                let Some(step) = step else {
                    return Err(format!("item {i}: `step` must be a whole number ≥ 0"));
                };
                if let Some(t) = m.get("timestamp") {
                    time = Some(point_time(t).ok_or_else(|| {
                        format!(
                            "item {i}: `timestamp` must be seconds or milliseconds since 1970, or an RFC 3339 \
                             UTC time like 2026-11-23T07:10:00Z"
                        )
                    })?);
                }
                (step, value)
            }
            _ => return Err(format!("item {i}: {bad}")),
        };
        match value.filter(|v| v.is_finite()) {
            Some(value) => points.push(Point { step, value, time }),
            None => return Err(format!("item {i}: the value must be a finite number")),
        }
    }
    Ok(points)
}

/// A point's time in milliseconds since the epoch: a number of seconds (as Python's
/// `time.time()` gives) or of milliseconds (as MLflow takes; told apart by size: 10^11
/// seconds is far in the future), or an RFC 3339 UTC text.
fn point_time(v: &serde_yaml::Value) -> Option<i64> {
    use serde_yaml::Value as Y;
    match v {
        Y::Number(n) => {
            let f = n.as_f64().filter(|f| f.is_finite() && *f >= 0.0)?;
            Some(if f < 1e11 { (f * 1000.0).round() as i64 } else { f.round() as i64 })
        }
        Y::String(s) => crate::exp::mlflow::parse_time(s.trim()),
        _ => None,
    }
}

/// A scalar YAML value as a record value (None for null and collections).
fn scalar(v: &serde_yaml::Value) -> Option<Value> {
    use serde_yaml::Value as Y;
    match v {
        Y::Bool(b) => Some(Value::Bool(*b)),
        Y::Number(n) => match n.as_f64().filter(|f| f.is_finite()) {
            Some(f) => Some(Value::Number(f)),
            None => Some(Value::Text(n.to_string())),
        },
        Y::String(s) => Some(Value::Text(s.clone())),
        Y::Tagged(t) => scalar(&t.value),
        Y::Null | Y::Sequence(_) | Y::Mapping(_) => None,
    }
}

/// The file's top-level mapping flattened to dotted keys (lists are left whole).
fn flatten_file(path: &Path) -> Result<Vec<(String, serde_yaml::Value)>> {
    let text = fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::path(path, "no such file"),
        std::io::ErrorKind::InvalidData => Error::path(path, "is not UTF-8 text"),
        _ => Error::io(path, e),
    })?;
    if let Some(line) = crate::yaml::too_deep(&text) {
        return Err(Error::path(path, format!("line {line}: {}", crate::yaml::too_deep_message())));
    }
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| {
        Error::path(
            path,
            format!("line {}: not valid YAML or JSON: {e}", e.location().map_or(1, |l| l.line())),
        )
    })?;
    let mut out = Vec::new();
    match doc {
        serde_yaml::Value::Mapping(m) => flatten(&m, "", &mut out),
        serde_yaml::Value::Null => {}
        _ => return Err(Error::path(path, "expected a mapping of names to values at the top")),
    }
    Ok(out)
}

fn flatten(map: &serde_yaml::Mapping, prefix: &str, out: &mut Vec<(String, serde_yaml::Value)>) {
    for (k, v) in map {
        let name = match k {
            serde_yaml::Value::String(s) => s.clone(),
            other => crate::config::show(other),
        };
        let key = if prefix.is_empty() { name } else { format!("{prefix}.{name}") };
        match v {
            serde_yaml::Value::Mapping(inner) => flatten(inner, &key, out),
            other => out.push((key, other.clone())),
        }
    }
}

/// What a user gives a record besides what is collected.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub name: Option<String>,
    pub params: BTreeMap<String, Value>,
    pub metrics: BTreeMap<String, Value>,
    pub tags: BTreeMap<String, String>,
}

/// A readable default name: the branch (or the short commit) and the short id.
pub fn default_name(code: &CodeState, id: &str) -> String {
    let base = code.branch.clone().unwrap_or_else(|| code.commit.to_string()[..7].to_string());
    format!("{base}-{}", &id[..id.len().min(10)])
}

/// The record for `code`, redacted with `exp.redact`, ready for [`store::append`].
pub fn build(
    repo: &Repo,
    git: &git2::Repository,
    id: String,
    code: &CodeState,
    inputs: Inputs,
    stored: Stored,
    run: Option<RunInfo>,
) -> Result<Record> {
    let status = match &run {
        Some(r) if r.exit_code != Some(0) => Status::Failed,
        _ => Status::Finished,
    };
    let name = match inputs.name {
        Some(n) if n.trim().is_empty() || n.chars().any(char::is_control) => {
            return Err(Error::Usage(format!("--name {n:?}: a name needs visible characters on one line")));
        }
        Some(n) => n,
        None => default_name(code, &id),
    };
    let mut record = Record {
        version: RECORD_VERSION,
        name,
        created: record::now_rfc3339(),
        user: user(git, &repo.root),
        commit: code.commit.to_string(),
        branch: code.branch.clone(),
        dirty: code.dirty(),
        dirty_paths: code.dirty_paths.clone(),
        dirty_diff_hash: code.diff_hash.clone(),
        status,
        data: match stored.data {
            Some(data) => data,
            None => data_at(git, code.commit)?,
        },
        params: inputs.params,
        metrics: inputs.metrics.into_iter().map(|(k, v)| (k, record::Metric::Value(v))).collect(),
        tags: inputs.tags,
        env: environment(repo)?,
        artifacts: stored.artifacts,
        run,
        id,
    };
    record.redact(&redact_patterns(repo)?);
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn params_files_flatten() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "params.yaml",
            "lr: 0.01\nmodel:\n  depth: 4\n  name: resnet\n  layers: [1, 2]\nfast: true\nnothing: null\nq: '0.5'\n",
        );
        let params = read_params_file(&p).unwrap();
        assert_eq!(params["lr"], Value::Number(0.01));
        assert_eq!(params["model.depth"], Value::Number(4.0));
        assert_eq!(params["model.name"], Value::Text("resnet".into()));
        assert_eq!(params["model.layers"], Value::Text("[1,2]".into()));
        assert_eq!(params["fast"], Value::Bool(true));
        assert_eq!(params["q"], Value::Text("0.5".into()));
        assert!(!params.contains_key("nothing"));
        let j = write(d.path(), "params.json", r#"{"opt": {"lr": 0.1, "name": "adam"}}"#);
        let params = read_params_file(&j).unwrap();
        assert_eq!(params["opt.lr"], Value::Number(0.1));
        assert_eq!(params["opt.name"], Value::Text("adam".into()));
        let bad = write(d.path(), "bad.yaml", "- 1\n- 2\n");
        assert!(read_params_file(&bad).unwrap_err().to_string().contains("mapping"));
        let bad = write(d.path(), "bad2.yaml", "a: [\n");
        assert!(read_params_file(&bad).unwrap_err().to_string().contains("not valid YAML"));
    }

    #[test]
    fn metrics_files_with_series() {
        let d = tempfile::tempdir().unwrap();
        let m = write(
            d.path(),
            "metrics.json",
            r#"{"acc": 0.9, "loss": [1.0, 0.5, 0.25], "val": {"loss": [{"step": 10, "value": 0.7}, {"step": 20, "value": 0.6}]}}"#,
        );
        let (values, series) = read_metrics_file(&m).unwrap();
        assert_eq!(values["acc"], Value::Number(0.9));
        assert_eq!(series["loss"], vec![Point::new(0, 1.0), Point::new(1, 0.5), Point::new(2, 0.25)]);
        assert_eq!(series["val.loss"], vec![Point::new(10, 0.7), Point::new(20, 0.6)]);
        let timed = write(
            d.path(),
            "timed.yaml",
            "loss:\n  - {step: 0, value: 1, timestamp: 1795000000.5}\n  - {step: 1, value: 0.5, timestamp: 1795000001000}\n  - {step: 2, value: 0.2, timestamp: '2026-11-18T11:06:42Z'}\n",
        );
        let times: Vec<Option<i64>> =
            read_metrics_file(&timed).unwrap().1["loss"].iter().map(|p| p.time).collect();
        assert_eq!(times, [Some(1_795_000_000_500), Some(1_795_000_001_000), Some(1_795_000_002_000)]);
        let bad =
            write(d.path(), "bad3.json", r#"{"loss": [{"step": 0, "value": 1, "timestamp": "yesterday"}]}"#);
        assert!(read_metrics_file(&bad).unwrap_err().to_string().contains("timestamp"));
        let bad = write(d.path(), "bad.json", r#"{"loss": ["a"]}"#);
        let e = read_metrics_file(&bad).unwrap_err().to_string();
        assert!(e.contains("metric `loss`") && e.contains("item 0"), "{e}");
        let bad = write(d.path(), "bad2.json", r#"{"loss": [{"step": -1, "value": 1}]}"#);
        assert!(read_metrics_file(&bad).unwrap_err().to_string().contains("step"));
    }

    #[test]
    fn assignments() {
        assert_eq!(parse_assignment("-p", "lr=0.1").unwrap(), ("lr".into(), "0.1".into()));
        assert_eq!(parse_assignment("-p", "url=a=b").unwrap(), ("url".into(), "a=b".into()));
        assert!(matches!(parse_assignment("-p", "lr"), Err(Error::Usage(_))));
        assert!(matches!(parse_assignment("-p", "=1"), Err(Error::Usage(_))));
    }
}
