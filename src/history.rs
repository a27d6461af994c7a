//! Data across git revisions: which tracked items (and so which objects) a set of
//! revisions — named ones, every branch head, or every commit — refers to.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::pointer::{self, Pointer};
use crate::repo::Repo;
use crate::tracked::{self, Tracked};

/// Which data a command covers: the workspace's pointers and/or those of git revisions.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The pointers in the work tree.
    pub workspace: bool,
    /// Revisions as git understands them (`HEAD~2`, a branch, a tag, a SHA).
    pub revs: Vec<String>,
    /// The head of every local branch.
    pub all_branches: bool,
    /// Every commit reachable from any branch, tag or remote-tracking ref.
    pub all_commits: bool,
}

impl Scope {
    pub fn workspace() -> Scope {
        Scope { workspace: true, ..Scope::default() }
    }

    /// Whether it names any git revision (beyond the work tree).
    pub fn has_revisions(&self) -> bool {
        !self.revs.is_empty() || self.all_branches || self.all_commits
    }
}

/// One tracked item as some revision has it. `pointer_path` and `data_path` are where it
/// lives in the work tree (it need not be there now).
#[derive(Debug, Clone)]
pub struct AtRevision {
    /// The commit (short id), or None for the work tree.
    pub commit: Option<String>,
    pub tracked: Tracked,
}

/// The commits a scope names (the work tree aside), each once, in a stable order.
pub fn commits(git: &git2::Repository, root: &Path, scope: &Scope) -> Result<Vec<git2::Oid>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut push = |oid: git2::Oid, out: &mut Vec<git2::Oid>| {
        if seen.insert(oid) {
            out.push(oid);
        }
    };
    for rev in &scope.revs {
        push(resolve(git, root, rev)?, &mut out);
    }
    if scope.all_branches {
        let branches = git.branches(Some(git2::BranchType::Local)).map_err(|e| Error::git(root, e))?;
        for b in branches {
            let (b, _) = b.map_err(|e| Error::git(root, e))?;
            if let Ok(c) = b.get().peel_to_commit() {
                push(c.id(), &mut out);
            }
        }
    }
    if scope.all_commits {
        let mut walk = git.revwalk().map_err(|e| Error::git(root, e))?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME).map_err(|e| Error::git(root, e))?;
        for glob in ["refs/heads", "refs/tags", "refs/remotes"] {
            walk.push_glob(glob).map_err(|e| Error::git(root, e))?;
        }
        if git.head().is_ok() {
            let _ = walk.push_head();
        }
        for oid in walk {
            push(oid.map_err(|e| Error::git(root, e))?, &mut out);
        }
    }
    Ok(out)
}

/// A revision to its commit, with an error naming it.
pub fn resolve(git: &git2::Repository, root: &Path, rev: &str) -> Result<git2::Oid> {
    let obj = git
        .revparse_single(rev)
        .map_err(|e| Error::path(root, format!("unknown revision `{rev}`: {}", e.message())))?;
    obj.peel_to_commit()
        .map(|c| c.id())
        .map_err(|e| Error::path(root, format!("revision `{rev}` is not a commit: {}", e.message())))
}

/// The pointer files in a commit's tree, as (path relative to the top, pointer).
/// Subtrees already read for another commit are skipped when `seen_trees` has them, so
/// walking many commits reads each distinct folder once.
pub fn pointers_in_commit(
    git: &git2::Repository,
    commit: git2::Oid,
    seen_trees: Option<&mut HashSet<git2::Oid>>,
) -> Result<Vec<(PathBuf, Pointer)>> {
    let short = short_id(commit);
    let c = git.find_commit(commit).map_err(|e| Error::git(Path::new(&short), e))?;
    let tree = c.tree().map_err(|e| Error::git(Path::new(&short), e))?;
    let mut local = HashSet::new();
    let seen = seen_trees.unwrap_or(&mut local);
    let mut found = Vec::new();
    read_tree(git, &tree, "", &short, seen, &mut found)?;
    Ok(found)
}

fn read_tree(
    git: &git2::Repository,
    tree: &git2::Tree,
    dir: &str,
    rev: &str,
    seen: &mut HashSet<git2::Oid>,
    found: &mut Vec<(PathBuf, Pointer)>,
) -> Result<()> {
    if !seen.insert(tree.id()) {
        return Ok(());
    }
    let suffix = format!(".{}", pointer::EXTENSION);
    for entry in tree.iter() {
        let Ok(name) = entry.name() else { continue };
        match entry.kind() {
            Some(git2::ObjectType::Tree) => {
                let sub = git.find_tree(entry.id()).map_err(|e| Error::git(Path::new(rev), e))?;
                read_tree(git, &sub, &format!("{dir}{name}/"), rev, seen, found)?;
            }
            Some(git2::ObjectType::Blob) if name.ends_with(&suffix) && name != suffix => {
                let rel = PathBuf::from(format!("{dir}{name}"));
                let shown = PathBuf::from(format!("{rev}:{}", rel.display()));
                let blob = git.find_blob(entry.id()).map_err(|e| Error::git(&shown, e))?;
                let text = std::str::from_utf8(blob.content())
                    .map_err(|_| Error::path(&shown, "pointer file is not UTF-8"))?;
                found.push((rel, Pointer::parse(text, &shown)?));
            }
            _ => {}
        }
    }
    Ok(())
}

pub fn short_id(oid: git2::Oid) -> String {
    oid.to_string()[..10].to_string()
}

/// The tracked items of a scope, restricted to `paths` (data or pointer paths, or folders
/// holding them; all when empty). Items with the same content at the same place are
/// listed once: the work tree's first, then by commit.
pub fn tracked_in_scope(
    repo: &Repo,
    cwd: &Path,
    paths: &[PathBuf],
    scope: &Scope,
) -> Result<Vec<AtRevision>> {
    let mut out: Vec<AtRevision> = Vec::new();
    let mut seen: HashSet<(PathBuf, crate::hash::ObjectId)> = HashSet::new();
    if scope.workspace {
        // With revisions too, a path may be tracked only in the past.
        let here: Vec<Tracked> = if scope.has_revisions() && !paths.is_empty() {
            paths
                .iter()
                .filter_map(|p| tracked::select(repo, cwd, std::slice::from_ref(p)).ok())
                .flatten()
                .collect()
        } else {
            tracked::select(repo, cwd, paths)?
        };
        for t in here {
            seen.insert((t.pointer_path.clone(), t.pointer.hash));
            out.push(AtRevision { commit: None, tracked: t });
        }
    }
    if !scope.has_revisions() {
        return Ok(out);
    }
    let git = repo.git()?;
    let wanted: Vec<PathBuf> =
        paths.iter().map(|p| tracked::resolve_in_repo(repo, cwd, p)).collect::<Result<_>>()?;
    // Only for whole-history walks: a named revision is read in full.
    let mut seen_trees = HashSet::new();
    for commit in commits(&git, &repo.root, scope)? {
        let trees = if wanted.is_empty() { Some(&mut seen_trees) } else { None };
        for (rel, pointer) in pointers_in_commit(&git, commit, trees)? {
            let pointer_path = repo.root.join(&rel);
            let data_path = pointer_path.with_file_name(&pointer.path);
            let selected = wanted.is_empty()
                || wanted.iter().any(|w| {
                    *w == pointer_path
                        || *w == data_path
                        || pointer_path.starts_with(w)
                        || data_path.starts_with(w)
                });
            if !selected || !seen.insert((pointer_path.clone(), pointer.hash)) {
                continue;
            }
            out.push(AtRevision {
                commit: Some(short_id(commit)),
                tracked: Tracked { pointer_path, data_path, pointer },
            });
        }
    }
    if out.is_empty() && !paths.is_empty() {
        return Err(Error::path(
            &paths[0],
            "is not tracked by trove in the work tree or in the revisions asked for",
        ));
    }
    Ok(out)
}
