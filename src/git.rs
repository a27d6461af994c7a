//! Everything git: staging pointer files, `.gitignore` entries, commits, pointers at a revision.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::pointer::{self, Pointer};

/// Start libgit2 without reading the system's CA certificates.
///
/// libgit2 is built with OpenSSL for https remotes, and starting it parses the whole CA
/// bundle (about 140 certificates, 25–60 ms here) even though only `trove exp push` and
/// `exp pull` to an https git remote verify a certificate. Every command that opens the
/// git repository (`push` reads the experiment records, `add` stages pointers) paid for
/// it. libgit2 starts with the empty file `/dev/null` as its bundle, then the environment
/// is put back as it was (neither the commands trove runs nor anything else sees a
/// change); [`load_certificates`] loads the real ones before an https transfer.
///
/// Call it at the start of `main`, before any thread starts: it sets environment
/// variables.
pub fn start_without_certificates() {
    const VARS: [&str; 2] = ["SSL_CERT_FILE", "SSL_CERT_DIR"];
    let saved: Vec<_> = VARS.iter().map(std::env::var_os).collect();
    // SAFETY: called from main before any other thread exists.
    unsafe { std::env::set_var("SSL_CERT_FILE", "/dev/null") };
    // Any libgit2 option call starts the library; caching is on by default.
    git2::opts::enable_caching(true);
    for (var, value) in VARS.iter().zip(saved) {
        // SAFETY: as above; libgit2's start-up has returned and started no thread.
        unsafe {
            match value {
                Some(v) => std::env::set_var(var, v),
                None => std::env::remove_var(var),
            }
        }
    }
}

/// Give libgit2 the CA certificates [`start_without_certificates`] left out: the files
/// `SSL_CERT_FILE` / `SSL_CERT_DIR` name, else the system's usual places. Before any
/// https fetch or push; once per process.
pub fn load_certificates() {
    static LOADED: std::sync::Once = std::sync::Once::new();
    LOADED.call_once(|| {
        let from_env = |var: &str| std::env::var_os(var).map(PathBuf::from).filter(|p| p.exists());
        let probed = openssl_probe::probe();
        // SAFETY: these options are set before the transfer that uses them starts, and
        // no other thread uses libgit2 meanwhile (Once serialises callers).
        unsafe {
            if let Some(file) = from_env("SSL_CERT_FILE").or(probed.cert_file) {
                let _ = git2::opts::set_ssl_cert_file(&file);
            }
            if let Some(dir) = from_env("SSL_CERT_DIR").or(probed.cert_dir) {
                let _ = git2::opts::set_ssl_cert_dir(&dir);
            }
        }
    });
}

fn rel_to<'a>(root: &Path, path: &'a Path) -> Result<&'a Path> {
    path.strip_prefix(root).map_err(|_| Error::path(path, "is outside the repository"))
}

/// Bring the index in line with the work tree for these paths (added, changed or deleted).
pub fn stage(git: &git2::Repository, root: &Path, paths: &[PathBuf]) -> Result<()> {
    let mut index = git.index().map_err(|e| Error::git(root, e))?;
    for path in paths {
        let rel = rel_to(root, path)?;
        let r = if path.exists() {
            index.add_path(rel)
        } else {
            match index.remove_path(rel) {
                Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(()),
                other => other,
            }
        };
        r.map_err(|e| Error::git(path, e))?;
    }
    write_index(git, &mut index, root)
}

/// Write the index to disk keeping git's protection of racily clean entries.
///
/// git trusts an entry's stat data only when the entry's mtime is older, in whole
/// seconds, than the index file's: a file changed (same size) within the second git
/// stat-ed it and wrote the index looks unchanged, so git re-reads the content of
/// entries that are not older. Writing the index again in a later second makes such an
/// entry look old. C git therefore checks, before each write, every entry not older than
/// the index it read (`is_racy_timestamp`) and sets its size to 0 when the file's content
/// differs (`ce_smudge_racily_clean_entry`), so the change shows. libgit2 does the same
/// (`truncate_racily_clean`) but compares nanoseconds (`GIT_USE_NSEC`): an entry stat-ed
/// a few milliseconds before git wrote the index in the same second is not racy to it,
/// is not smudged, and git, which compares seconds, then misses the change for good.
/// So smudge by git's rule here, then let libgit2 write.
fn write_index(git: &git2::Repository, index: &mut git2::Index, root: &Path) -> Result<()> {
    smudge_racily_clean(git, index, root)?;
    index.write().map_err(|e| Error::git(root, e))
}

fn smudge_racily_clean(git: &git2::Repository, index: &mut git2::Index, root: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    const STAGE_MASK: u16 = 0x3000;
    const SKIP_WORKTREE: u16 = 1 << 14;
    const INTENT_TO_ADD: u16 = 1 << 13;
    const GITLINK: u32 = 0o160000;
    const SYMLINK: u32 = 0o120000;
    let Some(index_path) = index.path().map(Path::to_path_buf) else {
        return Ok(());
    };
    // The index on disk is the one read (trove holds its lock while it stages).
    let index_secs = match fs::metadata(&index_path) {
        Ok(m) => m.mtime(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(&index_path, e)),
    };
    let racy: Vec<git2::IndexEntry> = index
        .iter()
        .filter(|e| {
            e.flags & STAGE_MASK == 0
                && e.flags_extended & (SKIP_WORKTREE | INTENT_TO_ADD) == 0
                && e.mode != GITLINK
                && e.file_size != 0
                && i64::from(e.mtime.seconds()) >= index_secs
        })
        .collect();
    for mut entry in racy {
        let Ok(rel) = std::str::from_utf8(&entry.path) else { continue };
        let file = root.join(rel);
        let Ok(meta) = fs::symlink_metadata(&file) else { continue };
        // A changed type or size git sees from the stat data alone (it keeps the size
        // modulo 2^32).
        let same_type = if entry.mode == SYMLINK { meta.is_symlink() } else { meta.is_file() };
        if !same_type || meta.len() as u32 != entry.file_size {
            continue;
        }
        // What cannot be read counts as changed, as in git: smudging is always safe.
        let differs = if entry.mode == SYMLINK {
            fs::read_link(&file).ok().and_then(|target| {
                git2::Oid::hash_object(git2::ObjectType::Blob, target.as_os_str().as_encoded_bytes()).ok()
            }) != Some(entry.id)
        } else {
            // The raw bytes first; only when they differ, the content as git stores it
            // (through eol conversion and the like), so a clean file under a filter is not
            // smudged (`git diff-files` would call it modified until refreshed). That
            // writes the blob, which `git add` of a changed file would write anyway.
            git2::Oid::hash_file(git2::ObjectType::Blob, &file).ok() != Some(entry.id)
                && git.blob_path(&file).ok() != Some(entry.id)
        };
        if differs {
            entry.file_size = 0;
            index.add(&entry).map_err(|e| Error::git(&file, e))?;
        }
    }
    Ok(())
}

/// The files under `path` (the path itself, or anything inside it) that git's index tracks,
/// relative to the repository's top folder.
pub fn tracked_by_git(git: &git2::Repository, root: &Path, path: &Path) -> Result<Vec<String>> {
    let rel = rel_to(root, path)?.to_string_lossy().into_owned();
    let index = git.index().map_err(|e| Error::git(root, e))?;
    let inside = format!("{rel}/");
    Ok(index
        .iter()
        .map(|e| String::from_utf8_lossy(&e.path).into_owned())
        .filter(|p| *p == rel || p.starts_with(&inside))
        .collect())
}

/// Make sure `dir/.gitignore` has the line that ignores `name` (see [`ignore_line`]);
/// returns the .gitignore path if it changed.
pub fn ignore_entry(dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    let path = dir.join(".gitignore");
    let line = ignore_line(name).ok_or_else(|| unignorable(&dir.join(name)))?;
    Ok(add_line(&path, &line)?.then_some(path))
}

/// Take back from `dir/.gitignore` the line [`ignore_entry`] wrote for `name` (or the
/// one earlier versions wrote), leaving every other byte as it was; returns the path if
/// it changed. The file is deleted when nothing else was in it.
pub fn unignore_entry(dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    let path = dir.join(".gitignore");
    let candidates: Vec<String> = ignore_line(name).into_iter().chain([legacy_ignore_line(name)]).collect();
    Ok(remove_line(&path, &candidates)?.then_some(path))
}

/// A text file's content; None when there is no such file.
fn read_text(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Append `line` to the text file `path` (a `.gitignore`, `.gitattributes`; created if
/// need be) unless git already reads that line there; returns whether the file changed.
pub fn add_line(path: &Path, line: &str) -> Result<bool> {
    let mut text = read_text(path)?.unwrap_or_default();
    if find_lines(&text, line).is_some() {
        return Ok(false);
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    crate::atomic_file::write(path, text.as_bytes())?;
    Ok(true)
}

/// Remove from the text file `path` the first line git reads as the first of `candidates`
/// found there, leaving every other byte as it was, and delete the file when nothing else
/// was in it; returns whether the file changed.
pub fn remove_line(path: &Path, candidates: &[String]) -> Result<bool> {
    let Some(text) = read_text(path)? else {
        return Ok(false);
    };
    let Some((start, end)) = candidates.iter().find_map(|line| find_lines(&text, line)) else {
        return Ok(false);
    };
    let kept = format!("{}{}", &text[..start], &text[end..]);
    if kept.is_empty() {
        fs::remove_file(path).at(path)?;
    } else {
        crate::atomic_file::write(path, kept.as_bytes())?;
    }
    Ok(true)
}

/// The byte range of the first run of whole lines of `text` that reads as `lines` to
/// git (which drops a carriage return before the newline).
fn find_lines(text: &str, lines: &str) -> Option<(usize, usize)> {
    let want: Vec<&str> = lines.split('\n').collect();
    let mut segs = Vec::new();
    let mut start = 0;
    for seg in text.split_inclusive('\n') {
        let content = seg.strip_suffix('\n').unwrap_or(seg);
        segs.push((start, start + seg.len(), content.strip_suffix('\r').unwrap_or(content)));
        start += seg.len();
    }
    segs.windows(want.len())
        .find(|w| w.iter().zip(&want).all(|(seg, line)| seg.2 == *line))
        .map(|w| (w[0].0, w[w.len() - 1].1))
}

/// The `.gitignore` line that matches exactly the file or folder `name` beside it and
/// nothing else, escaped by gitignore's rules: `\` before `*`, `?`, `[`, `\` and a
/// leading `#` or `!`, before each trailing space (git strips unescaped ones), and a
/// trailing carriage return as `[\r]` (git drops a bare one). None when no line can
/// match it: a pattern cannot hold a newline.
pub fn ignore_line(name: &str) -> Option<String> {
    if name.contains('\n') {
        return None;
    }
    let body = name.trim_end_matches([' ', '\r']);
    let mut out = format!("/{}", escape_ignore(body));
    for c in name[body.len()..].chars() {
        out.push_str(if c == ' ' { "\\ " } else { "[\r]" });
    }
    Some(out)
}

/// What versions before the full escaping wrote, so `remove` can still take it back.
fn legacy_ignore_line(name: &str) -> String {
    format!("/{}", escape_ignore(name))
}

/// The error for a name no `.gitignore` line can match.
pub fn unignorable(path: &Path) -> Error {
    Error::path(
        path,
        "the name contains a line break, which no .gitignore line can match; rename it before adding it",
    )
}

fn escape_ignore(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if matches!(c, '*' | '?' | '[' | '\\') || (i == 0 && matches!(c, '#' | '!')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Commit exactly these paths (as they are in the work tree) on top of HEAD, leaving
/// anything else staged as it was. Returns None when they match HEAD already.
pub fn commit_paths(
    git: &git2::Repository,
    root: &Path,
    paths: &[PathBuf],
    message: &str,
) -> Result<Option<git2::Oid>> {
    let err = |e: git2::Error| Error::git(root, e);
    let head_commit = match git.head() {
        Ok(h) => Some(h.peel_to_commit().map_err(err)?),
        Err(e) if matches!(e.code(), git2::ErrorCode::UnbornBranch | git2::ErrorCode::NotFound) => None,
        Err(e) => return Err(err(e)),
    };
    let mut tree_index = git2::Index::new().map_err(err)?;
    if let Some(c) = &head_commit {
        tree_index.read_tree(&c.tree().map_err(err)?).map_err(err)?;
    }
    let mut real_index = git.index().map_err(err)?;
    for path in paths {
        let rel = rel_to(root, path)?;
        if path.exists() {
            let bytes = fs::read(path).at(path)?;
            let oid = git.blob(&bytes).map_err(err)?;
            let entry = index_entry(rel, oid, bytes.len())?;
            tree_index.add(&entry).map_err(err)?;
            real_index.add_path(rel).map_err(err)?;
        } else {
            let _ = tree_index.remove_path(rel);
            let _ = real_index.remove_path(rel);
        }
    }
    write_index(git, &mut real_index, root)?;
    let tree_id = tree_index.write_tree_to(git).map_err(err)?;
    if let Some(c) = &head_commit
        && c.tree_id() == tree_id
    {
        return Ok(None);
    }
    let tree = git.find_tree(tree_id).map_err(err)?;
    let author = signature(git, "AUTHOR", root)?;
    let committer = signature(git, "COMMITTER", root)?;
    let parents: Vec<&git2::Commit> = head_commit.iter().collect();
    let oid = git.commit(Some("HEAD"), &author, &committer, message, &tree, &parents).map_err(err)?;
    Ok(Some(oid))
}

fn index_entry(rel: &Path, oid: git2::Oid, len: usize) -> Result<git2::IndexEntry> {
    let path =
        rel.to_str().ok_or_else(|| Error::NonUtf8Path { path: rel.to_path_buf() })?.as_bytes().to_vec();
    Ok(git2::IndexEntry {
        ctime: git2::IndexTime::new(0, 0),
        mtime: git2::IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode: 0o100644,
        uid: 0,
        gid: 0,
        file_size: len as u32,
        id: oid,
        flags: 0,
        flags_extended: 0,
        path,
    })
}

/// Who a commit is by, as git decides: `GIT_AUTHOR_NAME` / `GIT_AUTHOR_EMAIL` (or the
/// `COMMITTER` ones) win over `user.name` / `user.email`.
pub fn signature(git: &git2::Repository, role: &str, root: &Path) -> Result<git2::Signature<'static>> {
    let env = |k: &str| std::env::var(format!("GIT_{role}_{k}")).ok().filter(|v| !v.is_empty());
    let cfg = git.config().ok();
    let from_cfg = |k: &str| cfg.as_ref().and_then(|c| c.get_string(k).ok());
    let name = env("NAME").or_else(|| from_cfg("user.name"));
    let email = env("EMAIL").or_else(|| from_cfg("user.email"));
    match (name, email) {
        (Some(n), Some(e)) => git2::Signature::now(&n, &e).map_err(|e| Error::git(root, e)),
        _ => Err(Error::path(
            root,
            "git needs your name and email to commit: run `git config user.name \"Your Name\"` and `git config user.email you@example.com`",
        )),
    }
}

/// Every pointer file in the tree of `rev`, with its path relative to the repository root.
pub fn pointers_at(git: &git2::Repository, root: &Path, rev: &str) -> Result<Vec<(PathBuf, Pointer)>> {
    let obj = git
        .revparse_single(rev)
        .map_err(|e| Error::path(root, format!("unknown revision `{rev}`: {}", e.message())))?;
    let tree = obj
        .peel_to_tree()
        .map_err(|e| Error::path(root, format!("revision `{rev}` has no tree: {}", e.message())))?;
    let suffix = format!(".{}", pointer::EXTENSION);
    let mut found = Vec::new();
    let mut walk_err = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        let Ok(name) = entry.name() else {
            return git2::TreeWalkResult::Ok;
        };
        if entry.kind() != Some(git2::ObjectType::Blob) || !name.ends_with(&suffix) || name == suffix {
            return git2::TreeWalkResult::Ok;
        }
        let rel = PathBuf::from(format!("{dir}{name}"));
        let shown = PathBuf::from(format!("{rev}:{}", rel.display()));
        let parsed = git.find_blob(entry.id()).map_err(|e| Error::git(&shown, e)).and_then(|b| {
            let text = std::str::from_utf8(b.content())
                .map_err(|_| Error::path(&shown, "pointer file is not UTF-8"))?;
            Pointer::parse(text, &shown)
        });
        match parsed {
            Ok(p) => found.push((rel, p)),
            Err(e) => {
                walk_err = Some(e);
                return git2::TreeWalkResult::Abort;
            }
        }
        git2::TreeWalkResult::Ok
    })
    .ok();
    if let Some(e) = walk_err {
        return Err(e);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_lines_escape_what_gitignore_treats_specially() {
        assert_eq!(ignore_line("data").unwrap(), "/data");
        assert_eq!(ignore_line("a*b?[c]\\d").unwrap(), "/a\\*b\\?\\[c]\\\\d");
        assert_eq!(ignore_line("#x").unwrap(), "/\\#x");
        assert_eq!(ignore_line("two  ").unwrap(), "/two\\ \\ ");
        assert_eq!(ignore_line("cr\r").unwrap(), "/cr[\r]");
        assert_eq!(ignore_line("a b").unwrap(), "/a b");
        assert_eq!(ignore_line("nl\nx"), None);
    }

    #[test]
    fn lines_are_found_whole_as_git_reads_them() {
        let text = "*.log\r\n/data\r\n/a\nb\n/last";
        assert_eq!(find_lines(text, "/data"), Some((7, 14)));
        assert_eq!(find_lines(text, "/a\nb"), Some((14, 19)));
        assert_eq!(find_lines(text, "/last"), Some((19, 24)));
        assert_eq!(find_lines(text, "/dat"), None);
        assert_eq!(find_lines(text, "a"), None);
        assert_eq!(find_lines("", "/x"), None);
    }
}
