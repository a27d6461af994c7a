//! `trove install-hooks`: git hooks that keep the data in step with the code.
//!
//! - `post-checkout` runs `trove checkout` after a branch or commit checkout (not a
//!   checkout of files, and not the steps of a rebase);
//! - `post-merge` runs `trove checkout` after a merge (e.g. `git pull`);
//! - `pre-push` runs `trove push` (to the default remote) before git pushes: the data of
//!   the work tree and of every commit the push sends ([`pushed_commits`]).
//!
//! It also registers trove's merge driver for pointer files: `merge.trove.driver` in the
//! repository's git config, and `*.trove merge=trove` in the top `.gitattributes`.
//!
//! A hook that was there before is kept as `NAME.pre-trove` and run first by trove's hook
//! (with the same arguments and stdin). trove's hooks carry [`MARKER`], so uninstalling
//! removes only them and puts the kept hooks back.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::repo::Repo;

/// The line that marks a hook as trove's.
pub const MARKER: &str =
    "# trove-hook: written by `trove install-hooks`; `trove install-hooks --uninstall` removes it";
/// The hooks trove writes.
pub const HOOKS: [&str; 3] = ["post-checkout", "post-merge", "pre-push"];
/// Appended to the name of a hook that was there before trove's.
pub const CHAINED_SUFFIX: &str = ".pre-trove";
/// The `.gitattributes` line that has git merge pointer files with trove's merge driver.
pub const MERGE_ATTRIBUTE: &str = "*.trove merge=trove";
/// The merge driver git runs (`merge.trove.driver`): base, ours, theirs, the path.
pub const MERGE_DRIVER: &str = "trove merge-driver %O %A %B %P";

/// The hooks folder git uses: `core.hooksPath` (relative to the work tree's top), else
/// `hooks/` in the git folder (the common one, for linked work trees).
pub fn hooks_dir(repo: &Repo) -> Result<PathBuf> {
    let git = repo.git()?;
    let config = git.config().map_err(|e| Error::git(&repo.root, e))?;
    match config.get_path("core.hooksPath") {
        Ok(p) if p.is_absolute() => Ok(p),
        Ok(p) => Ok(repo.root.join(p)),
        Err(_) => Ok(git.commondir().join("hooks")),
    }
}

/// The script of one hook (POSIX sh).
pub fn script(hook: &str) -> String {
    let missing = format!(
        "if ! command -v trove >/dev/null 2>&1; then\n    \
         echo \"trove {hook} hook: the trove program is not on PATH; install it, or remove trove's hooks with \\`trove install-hooks --uninstall\\`\" >&2\n    \
         exit 1\n\
         fi\n"
    );
    let chained = format!("chained=\"$(dirname \"$0\")/{hook}{CHAINED_SUFFIX}\"\n");
    let body = match hook {
        "post-checkout" => format!(
            "# After git checks out a branch or commit, make the data match its pointers.\n\
             {chained}status=0\n\
             if [ -x \"$chained\" ]; then\n    \"$chained\" \"$@\" || status=$?\n\
             fi\n\
             # $3 is 1 for a branch or commit checkout, 0 for a checkout of files.\n\
             if [ \"$3\" != 1 ]; then\n    exit \"$status\"\n\
             fi\n\
             # The checkouts of a rebase in progress are steps, not its result.\n\
             for d in rebase-merge rebase-apply; do\n    \
             if [ -d \"$(git rev-parse --git-path \"$d\")\" ]; then\n        exit \"$status\"\n    fi\n\
             done\n\
             {missing}trove checkout || exit $?\n\
             exit \"$status\"\n"
        ),
        "post-merge" => format!(
            "# After a merge (e.g. git pull), make the data match the merged pointers.\n\
             {chained}status=0\n\
             if [ -x \"$chained\" ]; then\n    \"$chained\" \"$@\" || status=$?\n\
             fi\n\
             {missing}trove checkout || exit $?\n\
             exit \"$status\"\n"
        ),
        "pre-push" => format!(
            "# Before git pushes, push the data of the commits it sends (and of the work tree)\n\
             # to the default trove remote. git names what it pushes on stdin, one ref a line.\n\
             input=\"$(cat)\"\n\
             refs() {{\n    [ -z \"$input\" ] || printf '%s\\n' \"$input\"\n}}\n\
             {chained}if [ -x \"$chained\" ]; then\n    refs | \"$chained\" \"$@\" || exit $?\n\
             fi\n\
             {missing}refs | trove push --git-pre-push \"$1\"\n"
        ),
        other => unreachable!("no trove hook named {other}"),
    };
    format!("#!/bin/sh\n{MARKER}\n{body}")
}

/// The commits a `git push` sends, from what git writes on the pre-push hook's stdin: one
/// line `<local ref> <local sha> <remote ref> <remote sha>` per ref. For an update, the
/// commits of the local sha that the remote's sha lacks; for a new ref (or a remote sha
/// this repository does not have), those that no remote-tracking branch of `git_remote`
/// has, so a first push to an empty remote sends the whole history. Deleting a ref sends
/// nothing.
pub fn pushed_commits(
    git: &git2::Repository,
    root: &Path,
    git_remote: &str,
    stdin: &str,
) -> Result<Vec<git2::Oid>> {
    let err = |e: git2::Error| Error::git(root, e);
    let mut walk = git.revwalk().map_err(err)?;
    let mut any = false;
    for line in stdin.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let parsed = match fields[..] {
            [_, local, _, remote] => git2::Oid::from_str(local).ok().zip(git2::Oid::from_str(remote).ok()),
            _ => None,
        };
        let Some((local, remote)) = parsed else {
            return Err(Error::Usage(format!(
                "pre-push: `{line}` is not a line git writes for a pre-push hook (<local ref> <local sha> <remote ref> <remote sha>)"
            )));
        };
        if local.is_zero() {
            continue; // a deletion
        }
        // A tag may point at a tree or a blob: no commits, no data.
        let Ok(commit) = git.find_object(local, None).and_then(|o| o.peel_to_commit()) else {
            continue;
        };
        walk.push(commit.id()).map_err(err)?;
        any = true;
        let known =
            !remote.is_zero() && git.find_object(remote, None).and_then(|o| o.peel_to_commit()).is_ok();
        if known {
            walk.hide(remote).map_err(err)?;
        } else {
            // A glob that names no ref (git_remote is a URL) hides nothing.
            let _ = walk.hide_glob(&format!("refs/remotes/{git_remote}/*"));
        }
    }
    if !any {
        return Ok(Vec::new());
    }
    walk.map(|oid| oid.map_err(err)).collect()
}

fn is_ours(path: &Path) -> bool {
    fs::read(path).is_ok_and(|b| String::from_utf8_lossy(&b).lines().any(|l| l == MARKER))
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

#[derive(Debug, Default, Serialize)]
pub struct Installed {
    pub hooks_dir: PathBuf,
    /// Hooks written (new, or trove's older version replaced).
    pub installed: Vec<String>,
    /// trove's hooks that were already there as they are.
    pub unchanged: Vec<String>,
    /// Hooks that were there before, now kept as `NAME.pre-trove` and run first.
    pub chained: Vec<String>,
    /// Whether `merge.trove.driver` was set now (it was missing or different).
    pub merge_driver: bool,
    /// The `.gitattributes` file, when the merge attribute was added to it (and staged).
    pub gitattributes: Option<PathBuf>,
}

/// Write trove's hooks; idempotent.
pub fn install(repo: &Repo) -> Result<Installed> {
    let dir = hooks_dir(repo)?;
    // Check everything before changing anything.
    for hook in HOOKS {
        let path = dir.join(hook);
        let kept = dir.join(format!("{hook}{CHAINED_SUFFIX}"));
        if exists(&path) && !is_ours(&path) && exists(&kept) {
            return Err(Error::path(
                &path,
                format!(
                    "is not trove's hook, and {} already holds another one; merge them into {hook}{CHAINED_SUFFIX} by hand, then run `trove install-hooks` again",
                    kept.display()
                ),
            ));
        }
    }
    fs::create_dir_all(&dir).at(&dir)?;
    let mut done = Installed { hooks_dir: dir.clone(), ..Installed::default() };
    for hook in HOOKS {
        let path = dir.join(hook);
        let text = script(hook);
        if exists(&path) {
            if is_ours(&path) {
                if fs::read(&path).is_ok_and(|b| b == text.as_bytes()) {
                    done.unchanged.push(hook.to_string());
                    continue;
                }
            } else {
                let kept = dir.join(format!("{hook}{CHAINED_SUFFIX}"));
                fs::rename(&path, &kept).at(&path)?;
                done.chained.push(hook.to_string());
            }
        }
        crate::atomic_file::write_with_mode(&path, text.as_bytes(), 0o755)?;
        done.installed.push(hook.to_string());
    }
    let git = repo.git()?;
    let err = |e: git2::Error| Error::git(&repo.root, e);
    let mut config = git.config().and_then(|c| c.open_level(git2::ConfigLevel::Local)).map_err(err)?;
    if config.get_string("merge.trove.driver").ok().as_deref() != Some(MERGE_DRIVER) {
        config.set_str("merge.trove.name", "trove pointer files").map_err(err)?;
        config.set_str("merge.trove.driver", MERGE_DRIVER).map_err(err)?;
        done.merge_driver = true;
    }
    let attributes = repo.root.join(".gitattributes");
    if crate::git::add_line(&attributes, MERGE_ATTRIBUTE)? {
        crate::git::stage(&git, &repo.root, std::slice::from_ref(&attributes))?;
        done.gitattributes = Some(attributes);
    }
    Ok(done)
}

#[derive(Debug, Default, Serialize)]
pub struct Uninstalled {
    pub hooks_dir: PathBuf,
    /// trove's hooks deleted.
    pub removed: Vec<String>,
    /// Hooks put back from `NAME.pre-trove`.
    pub restored: Vec<String>,
    /// Hooks that are not trove's, left as they are.
    pub not_ours: Vec<String>,
    /// Whether trove's merge driver was registered (and is no longer).
    pub merge_driver: bool,
    /// The `.gitattributes` file, when the merge attribute was removed from it (and staged).
    pub gitattributes: Option<PathBuf>,
}

/// Delete trove's hooks and put back the hooks they chained to.
pub fn uninstall(repo: &Repo) -> Result<Uninstalled> {
    let dir = hooks_dir(repo)?;
    let mut done = Uninstalled { hooks_dir: dir.clone(), ..Uninstalled::default() };
    for hook in HOOKS {
        let path = dir.join(hook);
        let kept = dir.join(format!("{hook}{CHAINED_SUFFIX}"));
        if exists(&path) {
            if !is_ours(&path) {
                done.not_ours.push(hook.to_string());
                continue;
            }
            fs::remove_file(&path).at(&path)?;
            done.removed.push(hook.to_string());
        }
        if exists(&kept) {
            fs::rename(&kept, &path).at(&kept)?;
            done.restored.push(hook.to_string());
        }
    }
    let git = repo.git()?;
    let err = |e: git2::Error| Error::git(&repo.root, e);
    let mut config = git.config().and_then(|c| c.open_level(git2::ConfigLevel::Local)).map_err(err)?;
    for key in ["merge.trove.driver", "merge.trove.name"] {
        if config.get_string(key).is_ok() {
            config.remove(key).map_err(err)?;
            done.merge_driver = true;
        }
    }
    let attributes = repo.root.join(".gitattributes");
    // Every copy of the line goes, as a hand-written one would also name trove's driver.
    let mut removed = false;
    while crate::git::remove_line(&attributes, &[MERGE_ATTRIBUTE.to_string()])? {
        removed = true;
    }
    if removed {
        crate::git::stage(&git, &repo.root, std::slice::from_ref(&attributes))?;
        done.gitattributes = Some(attributes);
    }
    Ok(done)
}
