//! The library's error type: every variant names the thing it concerns.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The cause is part of the message, not a `source`: printing the error chain would
    // repeat it.
    #[error("{}: {cause}", shown(path))]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{}:{line}: {message}", shown(path))]
    Pointer { path: PathBuf, line: usize, message: String },
    #[error("{path}:{line}: {message}")]
    PointerConflict { path: PathBuf, line: usize, message: String },
    #[error("manifest {name}: {message}")]
    Manifest { name: String, message: String },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{0}: not inside a git work tree")]
    NotGitRepo(PathBuf),
    #[error("{0}: not a trove repository (no .trove folder here or in any parent)")]
    NotInitialised(PathBuf),
    #[error("repository is locked by another trove process ({holder}); gave up after {waited_secs} s")]
    Locked { holder: String, waited_secs: u64 },
    #[error("{}: {message}", shown(path))]
    Path { path: PathBuf, message: String },
    #[error("{}: file name is not valid UTF-8", shown(path))]
    NonUtf8Path { path: PathBuf },
    #[error("object {id} is not in the cache")]
    MissingObject { id: String },
    #[error("object {id} is corrupt: its content hashes to {actual}")]
    CorruptObject { id: String, actual: String },
    #[error("object {id} in the cache is damaged: its content hashes to {actual}")]
    DamagedObject { id: String, actual: String },
    #[error("{}: would overwrite unsaved changes", shown(path))]
    Unsaved { path: PathBuf, files: Vec<String> },
    #[error("{path}: {message}")]
    Git { path: PathBuf, message: String },
    #[error("remote {remote}: {}{message}", if *kind == RemoteFailure::Full { "no space left: " } else { "" })]
    Remote { remote: String, kind: RemoteFailure, message: String },
    #[error("experiment {subject}: {message}")]
    Experiment { subject: String, message: String },
    #[error("{}: {} cannot be tracked:\n  {}", shown(path), count(problems.len(), "entry", "entries"), problems.join("\n  "))]
    Untrackable { path: PathBuf, problems: Vec<String> },
    #[error(
        "{}: already tracked by git ({}); trove and git cannot both track it",
        shown(path),
        sample(files)
    )]
    TrackedByGit { path: PathBuf, files: Vec<String> },
    #[error("{} cannot be added:\n  {}", count(problems.len(), "path", "paths"), problems.join("\n  "))]
    NotAddable { problems: Vec<String>, hints: Vec<String> },
    #[error("{0}")]
    Usage(String),
    #[error("interrupted by {}: stopped, and removed the uploads in flight", crate::interrupt::name(*signal))]
    Interrupted { signal: i32 },
    #[error("{name}: {message}")]
    Format { name: String, message: String },
    #[error("model {name} {message}")]
    Model { name: String, message: String },
}

/// Why an operation on a remote failed, as far as the backend can tell: it decides
/// whether trying again (on a fresh connection) may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemoteFailure {
    /// The file or folder is not there.
    NotFound,
    /// The remote's disk or quota is full.
    Full,
    /// The server refused the operation (permissions).
    Denied,
    /// Login failed: wrong or missing credentials.
    Auth,
    /// The server's host key is unknown or changed.
    HostKey,
    /// The server could not be reached, or the connection dropped.
    Connect,
    /// The server's answer made no sense, or the connection broke mid-answer.
    Protocol,
    /// What the remote holds is malformed (a layout file, a pack, an index).
    Corrupt,
    /// Reading or writing failed for another reason.
    Io,
}

impl RemoteFailure {
    /// Whether the same operation may succeed on a fresh connection.
    pub fn can_retry(self) -> bool {
        matches!(self, RemoteFailure::Connect | RemoteFailure::Protocol | RemoteFailure::Io)
    }
}

/// A path in a message, quoted as git quotes names when it holds control characters (or
/// is not UTF-8), so an error is always one line.
fn shown(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    match path.to_str() {
        Some(s) => crate::tracked::quote_name(s).into_owned(),
        None => crate::tracked::quote_bytes(path.as_os_str().as_bytes()),
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn sample(files: &[String]) -> String {
    let shown: Vec<&str> = files.iter().take(5).map(String::as_str).collect();
    let more = if files.len() > 5 { format!(" and {} more", files.len() - 5) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().to_path_buf(), cause: source }
    }

    pub fn exp(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Experiment { subject: subject.into(), message: message.into() }
    }

    pub fn path(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Path { path: path.as_ref().to_path_buf(), message: message.into() }
    }

    pub fn remote(remote: impl Into<String>, kind: RemoteFailure, message: impl Into<String>) -> Self {
        Error::Remote { remote: remote.into(), kind, message: message.into() }
    }

    /// Whether the operation that failed may succeed when tried again on a fresh
    /// connection: only remote failures of the transient kinds. Content errors (a missing
    /// or corrupt object), a full disk, bad credentials and an interruption are final.
    pub fn can_retry(&self) -> bool {
        matches!(self, Error::Remote { kind, .. } if kind.can_retry())
    }

    /// A copy of a remote error (for each item one failure stopped); errors of other
    /// kinds become a remote error of `remote` with their text. Errors are not `Clone`:
    /// an I/O error is not.
    pub fn again(&self, remote: &str) -> Error {
        match self {
            Error::Remote { remote, kind, message } => Error::remote(remote.clone(), *kind, message.clone()),
            Error::MissingObject { id } => Error::MissingObject { id: id.clone() },
            Error::CorruptObject { id, actual } => {
                Error::CorruptObject { id: id.clone(), actual: actual.clone() }
            }
            Error::Interrupted { signal } => Error::Interrupted { signal: *signal },
            other => Error::remote(remote, RemoteFailure::Io, other.to_string()),
        }
    }

    pub fn git(path: impl AsRef<Path>, err: git2::Error) -> Self {
        Error::Git { path: path.as_ref().to_path_buf(), message: err.message().to_string() }
    }

    /// What the user can do about it, printed on a line of its own.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::NotGitRepo(_) => Some("run `git init` or `trove init` inside a git work tree".into()),
            Error::NotInitialised(_) => Some("run `trove init` at the top of your git work tree".into()),
            Error::Locked { .. } => Some(
                "wait for the other trove command to finish; if none is running, the lock is stale and the next run takes it".into(),
            ),
            Error::Pointer { .. } => Some("fix or restore the pointer file (e.g. `git checkout -- FILE`)".into()),
            Error::PointerConflict { path, .. } => {
                let p = path.display();
                Some(format!(
                    "keep one side: `git checkout --ours {p} && trove checkout {p}` (or `--theirs` for the other), then `git add {p}`\n\
                     or edit {p} down to one side's lines"
                ))
            }
            Error::MissingObject { .. } => Some("run `trove pull` to fetch it, or `trove add` the data again".into()),
            Error::DamagedObject { .. } => Some(
                "run `trove verify` to move it to quarantine, then `trove pull` to fetch a sound copy".into(),
            ),
            Error::Unsaved { files, .. } => {
                let shown: Vec<_> = files.iter().take(5).map(|f| crate::tracked::quote_name(f)).collect();
                let more = if files.len() > 5 { format!(" and {} more", files.len() - 5) } else { String::new() };
                Some(format!(
                    "changed: {}{more}\nsave them with `trove add`, or discard them with `trove checkout --force`",
                    shown.join(", ")
                ))
            }
            Error::Untrackable { path, .. } => Some(format!(
                "leave them out with patterns in {}/.troveignore (gitignore syntax, one per line), or replace each link by the file it points to; then add again",
                path.display()
            )),
            Error::NotAddable { hints, .. } if !hints.is_empty() => Some(hints.join("\n")),
            Error::TrackedByGit { path, .. } => Some(format!(
                "stop tracking it in git first (the files stay): git rm -r --cached {}; then `trove add` it",
                crate::tracked::shell_quote(&path.to_string_lossy())
            )),
            Error::NonUtf8Path { .. } => Some("rename the file, or exclude it with .troveignore".into()),
            Error::Io { cause, .. } if cause.kind() == std::io::ErrorKind::StorageFull => Some(
                "the disk is full: free space on it, then run the command again; what is already stored is kept"
                    .into(),
            ),
            Error::Git { message, .. } if message.contains("index is locked") => Some(
                "if no git command is running, a killed one left .git/index.lock behind: delete it and run the command again"
                    .into(),
            ),
            Error::Interrupted { .. } => {
                Some("run the command again to finish: what was transferred is kept".into())
            }
            Error::Remote { kind: RemoteFailure::Full, .. } => {
                Some("free space on the remote (or raise its quota), then push again: finished uploads are kept".into())
            }
            _ => None,
        }
    }
}

/// Attach a path to an io::Error.
pub trait IoContext<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for std::result::Result<T, std::io::Error> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
