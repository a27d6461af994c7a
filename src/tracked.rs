//! Finding pointer files in the work tree and resolving the paths a user names.

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::pointer::{self, Pointer};
use crate::repo::{Repo, TROVE_DIR};

/// A tracked file or directory: its pointer and where its data lives.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub pointer_path: PathBuf,
    pub data_path: PathBuf,
    pub pointer: Pointer,
}

impl Tracked {
    pub fn load(pointer_path: &Path) -> Result<Tracked> {
        // Read no more than a pointer can hold: a huge file is refused by its size alone.
        let mut bytes = Vec::new();
        fs::File::open(pointer_path)
            .and_then(|f| {
                use std::io::Read;
                f.take(pointer::MAX_POINTER_BYTES as u64 + 1).read_to_end(&mut bytes)
            })
            .at(pointer_path)?;
        if bytes.len() > pointer::MAX_POINTER_BYTES {
            let size = fs::metadata(pointer_path).map_or(bytes.len() as u64, |m| m.len());
            return Err(Error::Pointer {
                path: pointer_path.to_path_buf(),
                line: 1,
                message: format!(
                    "not a trove pointer: {size} bytes, and a pointer is at most {}",
                    pointer::MAX_POINTER_BYTES
                ),
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            Error::Pointer {
                path: pointer_path.to_path_buf(),
                line: 1 + valid.iter().filter(|b| **b == b'\n').count(),
                message: "pointer file is not UTF-8".into(),
            }
        })?;
        let pointer = Pointer::parse(&text, pointer_path)?;
        let dir = pointer_path.parent().unwrap_or(Path::new("."));
        Ok(Tracked { data_path: dir.join(&pointer.path), pointer_path: pointer_path.to_path_buf(), pointer })
    }

    /// The data path relative to the repository root, for display.
    pub fn rel(&self, repo: &Repo) -> String {
        display_rel(&repo.root, &self.data_path)
    }
}

pub fn display_rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).to_string_lossy().into_owned()
}

/// A name as git prints it (`core.quotePath` style, UTF-8 left as it is): names with a
/// control character, a `"` or a `\` are written in double quotes with C escapes
/// (`"a\nb"`), so one name is always one line that reads back unambiguously.
pub fn quote_name(name: &str) -> std::borrow::Cow<'_, str> {
    let needs = |c: char| c.is_ascii_control() || c == '"' || c == '\\';
    if !name.chars().any(needs) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        match c {
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_control() => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    std::borrow::Cow::Owned(out)
}

/// A name that is not UTF-8, as git prints it: quoted, its stray bytes in octal (`"bad\377"`).
pub fn quote_bytes(name: &[u8]) -> String {
    let mut out = String::new();
    for chunk in name.utf8_chunks() {
        let q = quote_name(chunk.valid());
        out.push_str(q.strip_prefix('"').and_then(|q| q.strip_suffix('"')).unwrap_or(&q));
        for b in chunk.invalid() {
            out.push_str(&format!("\\{b:03o}"));
        }
    }
    format!("\"{out}\"")
}

/// A path as a shell word, for commands shown in hints: as it is when it holds only
/// characters no shell treats specially, else in single quotes (`$'…'` with C escapes when
/// it holds control characters).
pub fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./-+,:@%=".contains(c) || !c.is_ascii();
    if !word.is_empty() && word.chars().all(plain) {
        return word.to_string();
    }
    if word.chars().any(|c| c.is_ascii_control()) {
        let quoted = quote_name(word);
        let inner = &quoted[1..quoted.len() - 1];
        return format!("$'{}'", inner.replace("\\\"", "\"").replace('\'', "\\'"));
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The pointer file that goes with a data path: `images` → `images.trove`.
pub fn pointer_path_for(data_path: &Path) -> PathBuf {
    let mut name = data_path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(pointer::EXTENSION);
    data_path.with_file_name(name)
}

/// Lexically make `p` absolute against `cwd` and drop `.` / `..` segments.
pub fn normalize(cwd: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() { p.to_path_buf() } else { cwd.join(p) };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Resolve a user-given path to an absolute path inside the repository, refusing
/// anything outside it or inside `.trove/` or `.git/`.
pub fn resolve_in_repo(repo: &Repo, cwd: &Path, p: &Path) -> Result<PathBuf> {
    let abs = normalize(cwd, p);
    // Resolve symlinks in the parent folders so a link cannot lead outside.
    let resolved = match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => match fs::canonicalize(parent) {
            Ok(real) => real.join(name),
            Err(_) => abs.clone(),
        },
        _ => abs.clone(),
    };
    let rel = resolved
        .strip_prefix(&repo.root)
        .map_err(|_| Error::path(p, format!("is outside the repository at {}", repo.root.display())))?;
    match rel.components().next() {
        None => {
            return Err(Error::path(p, "is the repository's top folder; name the data inside it"));
        }
        Some(Component::Normal(first)) if first == TROVE_DIR || first == ".git" => {
            return Err(Error::path(p, "is inside trove's or git's own folder"));
        }
        _ => {}
    }
    Ok(resolved)
}

/// Every pointer file under `start` (the repository root by default), skipping what git ignores.
pub fn find_pointers(repo: &Repo, start: Option<&Path>) -> Result<Vec<PathBuf>> {
    let start = start.unwrap_or(&repo.root);
    let suffix = format!(".{}", pointer::EXTENSION);
    let walker = ignore::WalkBuilder::new(start)
        .hidden(false)
        .ignore(false)
        .git_global(false)
        .git_exclude(true)
        .git_ignore(true)
        .require_git(false)
        .parents(true)
        .filter_entry(|e| {
            let name = e.file_name();
            !(e.depth() > 0 && (name == ".git" || name == TROVE_DIR))
        })
        .build();
    let mut out = Vec::new();
    for entry in walker {
        let entry = entry.map_err(|e| Error::path(start, e.to_string()))?;
        let is_file = entry.file_type().is_some_and(|t| t.is_file());
        let name = entry.file_name().to_string_lossy();
        if is_file && name.ends_with(&suffix) && name.len() > suffix.len() {
            out.push(entry.into_path());
        }
    }
    out.sort();
    Ok(out)
}

/// The tracked items the user named (data paths, pointer paths or folders holding
/// pointers), or all of them when `paths` is empty.
pub fn select(repo: &Repo, cwd: &Path, paths: &[PathBuf]) -> Result<Vec<Tracked>> {
    select_pointers(repo, cwd, paths)?.iter().map(|p| Tracked::load(p)).collect()
}

/// The pointer files of [`select`], sorted, not yet read.
pub fn select_pointers(repo: &Repo, cwd: &Path, paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if paths.is_empty() {
        return find_pointers(repo, None);
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for p in paths {
        let abs = resolve_in_repo(repo, cwd, p)?;
        let is_pointer = abs.extension().is_some_and(|e| e == pointer::EXTENSION) && abs.is_file();
        let pointer = if is_pointer { abs.clone() } else { pointer_path_for(&abs) };
        if pointer.is_file() {
            out.push(pointer);
        } else if abs.is_dir() {
            out.extend(find_pointers(repo, Some(&abs))?);
        } else if let Some(owner) = tracked_ancestor(repo, &abs)? {
            return Err(Error::path(
                p,
                format!("is inside the tracked directory {}; name that directory instead", owner.rel(repo)),
            ));
        } else {
            return Err(Error::path(p, "is not tracked by trove (no pointer file beside it)"));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The tracked directory that contains `path`, if any.
pub fn tracked_ancestor(repo: &Repo, path: &Path) -> Result<Option<Tracked>> {
    for anc in path.ancestors().skip(1) {
        if anc == repo.root || !anc.starts_with(&repo.root) {
            break;
        }
        let ptr = pointer_path_for(anc);
        if ptr.is_file() {
            return Ok(Some(Tracked::load(&ptr)?));
        }
    }
    Ok(None)
}

/// Check a tracked item's data path stays inside the repository (a pointer's `path`
/// could lead out through a symlinked folder).
pub fn check_inside(repo: &Repo, t: &Tracked) -> Result<()> {
    let parent = t.data_path.parent().unwrap_or(&repo.root);
    let real = fs::canonicalize(parent).at(parent)?;
    if !real.starts_with(&repo.root) {
        return Err(Error::Pointer {
            path: t.pointer_path.clone(),
            line: 3,
            message: format!("`path` leads outside the repository (to {})", real.display()),
        });
    }
    if let Ok(meta) = fs::symlink_metadata(&t.data_path)
        && meta.file_type().is_symlink()
        && repo.cache.id_of_object_path(&fs::read_link(&t.data_path).at(&t.data_path)?).is_none()
    {
        return Err(Error::path(
            &t.data_path,
            "tracked data is a symbolic link; trove tracks real files and folders: replace the link by the data, or `trove remove` it to stop tracking it",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_quoted_as_git_quotes_them() {
        use super::quote_name;
        assert_eq!(quote_name("plain name.txt"), "plain name.txt");
        assert_eq!(quote_name("caf\u{e9}"), "caf\u{e9}");
        assert_eq!(quote_name("a\nb"), "\"a\\nb\"");
        assert_eq!(quote_name("t\tq\"b\\s\r"), "\"t\\tq\\\"b\\\\s\\r\"");
        assert_eq!(quote_name("\u{1}\u{7f}"), "\"\\001\\177\"");
        assert_eq!(super::quote_bytes(b"bad\xff n\\"), "\"bad\\377 n\\\\\"");
    }

    #[test]
    fn shell_words() {
        use super::shell_quote;
        assert_eq!(shell_quote("sub/data.trove"), "sub/data.trove");
        assert_eq!(shell_quote("with space"), "'with space'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("a\tb'\"c"), "$'a\\tb\\'\"c'");
    }
}
