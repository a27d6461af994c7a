//! The local workflow over tracked data: add, status, checkout, remove, move, unprotect.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;
use serde::Serialize;

use crate::cache::Staged;
use crate::error::{Error, IoContext, Result};
use crate::git;
use crate::hash::{ObjectId, hash_file};
use crate::link::{self, LinkKind};
use crate::pointer::{self, Kind, Pointer};
use crate::progress::Reporter;
use crate::repo::Repo;
use crate::scan::{self, Changes, Found};
use crate::state::{Stamp, StateDb};
use crate::tracked::{self, Tracked, display_rel, pointer_path_for};

#[derive(Debug, Serialize)]
pub struct Added {
    pub path: String,
    pub pointer: String,
    pub kind: Kind,
    pub hash: ObjectId,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// Whether the pointer file was written (false when the data was unchanged).
    pub updated: bool,
    pub new_objects: u64,
    pub new_bytes: u64,
    /// The `.gitignore` this run changed (absolute), if it changed one.
    #[serde(skip)]
    pub gitignore: Option<PathBuf>,
    /// The pointer file (absolute).
    #[serde(skip)]
    pub pointer_path: PathBuf,
}

/// Track files or folders: store their content in the cache and write their pointers.
/// `stage` also adds the pointers and `.gitignore` changes to the git index.
pub fn add(
    repo: &Repo,
    cwd: &Path,
    paths: &[PathBuf],
    stage: bool,
    reporter: &dyn Reporter,
) -> Result<Vec<Added>> {
    repo.cache.ensure()?;
    let kinds = repo.config.link_kinds()?;
    let state = repo.state();
    // Every path is looked at before anything is stored: one refused path stops them all,
    // and the error names every refused one.
    let mut ready = Vec::new();
    let mut refused = Vec::new();
    for p in paths {
        match tracked::resolve_in_repo(repo, cwd, p).and_then(|abs| prepare(repo, &abs)) {
            Ok(r) => ready.push(r),
            Err(e) => refused.push(e),
        }
    }
    if refused.len() == 1 {
        return Err(refused.remove(0));
    }
    if !refused.is_empty() {
        let problems = refused.iter().map(|e| e.to_string().replace('\n', "\n  ")).collect();
        let mut hints: Vec<String> = Vec::new();
        for h in refused.iter().filter_map(Error::hint) {
            if !hints.contains(&h) {
                hints.push(h);
            }
        }
        return Err(Error::NotAddable { problems, hints });
    }
    let mut results = Vec::new();
    let mut to_stage = Vec::new();
    for r in ready {
        let (added, touched) = add_one(repo, r, &state, &kinds, reporter)?;
        results.push(added);
        to_stage.extend(touched);
    }
    repo.cache.remember_committed(&state);
    if stage && !to_stage.is_empty() {
        git::stage(&repo.git()?, &repo.root, &to_stage)?;
    }
    Ok(results)
}

/// A path `add` accepted, with the files it holds.
struct Prepared {
    abs: PathBuf,
    name: String,
    is_dir: bool,
    files: Vec<Found>,
}

/// Check that `abs` can be tracked and list its files; nothing is written (but the temp
/// files a killed checkout left inside a folder, which are debris).
fn prepare(repo: &Repo, abs: &Path) -> Result<Prepared> {
    let lmeta = fs::symlink_metadata(abs).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::path(abs, "no such file or folder"),
        _ => Error::io(abs, e),
    })?;
    let name = abs
        .file_name()
        .expect("resolved paths have a name")
        .to_str()
        .ok_or_else(|| Error::NonUtf8Path { path: abs.to_path_buf() })?
        .to_string();
    if abs.extension().is_some_and(|e| e == pointer::EXTENSION) && lmeta.is_file() {
        return Err(Error::path(abs, "is a trove pointer file; name the data it tracks instead"));
    }
    // Refused before anything is stored: what other commands would refuse to read back.
    if git::ignore_line(&name).is_none() {
        return Err(git::unignorable(abs));
    }
    if lmeta.file_type().is_symlink() {
        let target = fs::read_link(abs).at(abs)?;
        let into_cache = repo.cache.id_of_object_path(&abs.parent().unwrap_or(abs).join(&target)).is_some();
        if !into_cache {
            let message = match fs::canonicalize(abs) {
                Ok(real) if real.starts_with(&repo.root) => format!(
                    "is a symbolic link (to {}); trove tracks real files and folders, not links: add {} itself, or replace the link by a copy",
                    target.display(),
                    display_rel(&repo.root, &real)
                ),
                Ok(real) => format!(
                    "is a symbolic link pointing outside the repository (to {}); trove tracks real files and folders, not links: replace the link by a copy of what it points to",
                    real.display()
                ),
                Err(_) => format!(
                    "is a broken symbolic link (to {}); trove tracks real files and folders, not links",
                    target.display()
                ),
            };
            return Err(Error::path(abs, message));
        }
    }
    if let Ok(git) = repo.git() {
        let files = git::tracked_by_git(&git, &repo.root, abs)?;
        if !files.is_empty() {
            return Err(Error::TrackedByGit { path: abs.to_path_buf(), files });
        }
    }
    if let Some(owner) = tracked::tracked_ancestor(repo, abs)? {
        return Err(Error::path(
            abs,
            format!("is inside the tracked directory {}; add that directory instead", owner.rel(repo)),
        ));
    }
    let is_dir = lmeta.is_dir();
    let files: Vec<Found> = if is_dir {
        if let Some(inner) = tracked::find_pointers(repo, Some(abs))?.first() {
            return Err(Error::path(
                abs,
                format!(
                    "contains tracked data ({}); `trove remove` it first or add it separately",
                    display_rel(&repo.root, inner)
                ),
            ));
        }
        // Temp files a killed checkout left inside are debris: they go.
        scan::list_dir_cleaning(repo, abs, true)?
    } else {
        vec![scan::examine(repo, abs, name.clone())?]
    };
    Ok(Prepared { abs: abs.to_path_buf(), name, is_dir, files })
}

fn add_one(
    repo: &Repo,
    prepared: Prepared,
    state: &StateDb,
    kinds: &[LinkKind],
    reporter: &dyn Reporter,
) -> Result<(Added, Vec<PathBuf>)> {
    let Prepared { abs, name, is_dir, files } = prepared;
    let abs = abs.as_path();
    let link_first = kinds.first() == Some(&LinkKind::Hardlink);
    let Stored { ids, new_objects, new_bytes, linked } = store(repo, state, &files, link_first, reporter)?;

    let pointer = if is_dir {
        let manifest = scan::manifest_of(&files, &ids);
        let hash = repo.cache.insert_manifest(&manifest)?;
        Pointer {
            path: name.clone(),
            kind: Kind::Dir,
            hash,
            size: manifest.total_size(),
            files: Some(manifest.entries.len() as u64),
            source: None,
        }
    } else {
        Pointer {
            path: name.clone(),
            kind: Kind::File,
            hash: ids[0],
            size: files[0].meta.len(),
            files: None,
            source: None,
        }
    };
    let parent = abs.parent().expect("inside the repository");
    // Temp files of a killed add (pointer, .gitignore) are debris git would see.
    link::remove_stale_temps(parent);
    let pointer_path = pointer_path_for(abs);
    let text = pointer.to_text();
    let updated = fs::read_to_string(&pointer_path).ok().as_deref() != Some(text.as_str());
    if updated {
        crate::atomic_file::write(&pointer_path, text.as_bytes())?;
    }
    // Both are staged even when unchanged: a run killed after writing them but before
    // staging left the index behind, and the rerun finishes the job.
    let gitignore = git::ignore_entry(parent, &name)?;
    let touched = vec![pointer_path.clone(), parent.join(".gitignore")];
    let pointer_rel = display_rel(&repo.root, &pointer_path);

    // With hardlink/symlink first in cache.link, the workspace shares the cache's copy.
    if kinds.first().is_some_and(|k| k.shares_object()) {
        let relink: Vec<(PathBuf, ObjectId, bool)> = files
            .iter()
            .zip(&ids)
            .enumerate()
            .filter(|(i, (f, _))| f.known.is_none() && !linked.contains(i))
            .map(|(_, (f, id))| (f.abs.clone(), *id, f.exec))
            .collect();
        let placed = relink
            .par_iter()
            .map(|(abs, id, exec)| {
                link::place(&repo.cache.object_path(id), abs, kinds, *exec).map(|_| (abs.clone(), *id))
            })
            .collect::<Result<Vec<_>>>()?;
        scan::remember(repo, state, &placed);
    }
    let added = Added {
        path: display_rel(&repo.root, abs),
        pointer: pointer_rel,
        kind: pointer.kind,
        hash: pointer.hash,
        size: pointer.size,
        files: pointer.files,
        updated,
        new_objects,
        new_bytes,
        gitignore,
        pointer_path,
    };
    Ok((added, touched))
}

/// Files up to this size are read once into memory, hashed and written from there; larger
/// ones are hashed (in large chunks, on all cores) and then copied by the kernel.
const ONE_PASS_MAX: u64 = 4 << 20;

/// An object staged for the cache, and whether it is a hard link of the added file.
type NewObject = (Staged, bool);

struct Stored {
    ids: Vec<ObjectId>,
    new_objects: u64,
    new_bytes: u64,
    /// Indexes of files that now share their inode with the cache (hard-linked into it).
    linked: HashSet<usize>,
}

/// Hash `files` and store the content the cache lacks, reading each file once where it
/// can: small files are read into memory, hashed and written from the same bytes. With
/// `link_first` (cache.link starts with hardlink) new objects are hard links of the files.
fn store(
    repo: &Repo,
    state: &StateDb,
    files: &[Found],
    link_first: bool,
    reporter: &dyn Reporter,
) -> Result<Stored> {
    let cache = &repo.cache;
    let (mut ids, todo) = scan::cached_ids(repo, state, files);
    // An object is written once even when several files hold it.
    let claimed: Mutex<HashSet<ObjectId>> = Mutex::new(HashSet::new());
    let claim = |id: &ObjectId| !cache.has_object(id) && claimed.lock().expect("not poisoned").insert(*id);

    // A new object: a hard link of the file when cache.link starts with hardlink (and it
    // can be linked), else written from the bytes already read, else copied.
    let stage = |f: &Found, id: ObjectId, bytes: Option<&[u8]>| -> Result<NewObject> {
        if link_first
            && !f.exec
            && let Some(s) = cache.stage_link(&f.abs, id, &f.meta)?
        {
            return Ok((s, true));
        }
        let s = match bytes {
            Some(b) => cache.stage_bytes(b, id)?,
            None => cache.stage_file(&f.abs, id, &f.meta)?,
        };
        Ok((s, false))
    };

    let reflink = todo.first().is_some_and(|&i| cache.can_reflink(&files[i].abs));
    let todo_bytes: u64 = todo.iter().map(|&i| files[i].meta.len()).sum();
    if !todo.is_empty() {
        reporter.start("adding", todo.len() as u64, todo_bytes);
    }
    // Each hashed file: its index, its id, whether it was dealt with in the same pass,
    // and the object staged for it then.
    let hashed: Vec<(usize, ObjectId, bool, Option<NewObject>)> = todo
        .par_iter()
        .map(|&i| {
            let f = &files[i];
            let out = if f.meta.len() <= ONE_PASS_MAX && !reflink {
                let bytes = read_unchanged(f)?;
                let id = ObjectId::of_bytes(&bytes);
                let staged = if claim(&id) { Some(stage(f, id, Some(&bytes))?) } else { None };
                (i, id, true, staged)
            } else {
                (i, hash_file(&f.abs)?.0, false, None)
            };
            reporter.advance(1, f.meta.len());
            Ok(out)
        })
        .collect::<Result<_>>()?;
    if !todo.is_empty() {
        reporter.finish();
    }
    let mut staged = Vec::new();
    let mut linked = HashSet::new();
    let mut new_bytes = 0;
    let mut keep = |i: usize, (s, l): NewObject| {
        staged.push(s);
        new_bytes += files[i].meta.len();
        if l {
            linked.insert(i);
        }
    };
    let mut fresh = Vec::with_capacity(hashed.len());
    let mut done = vec![false; files.len()];
    for (i, id, d, s) in hashed {
        ids[i] = Some(id);
        done[i] = d;
        fresh.push((i, id));
        if let Some(s) = s {
            keep(i, s);
        }
    }
    // Recorded as checkout records what it writes, so that the status right after add
    // does not read the files again.
    let seen: Vec<_> =
        fresh.iter().map(|&(i, id)| (files[i].abs.as_path(), Stamp::of(&files[i].meta), id)).collect();
    scan::record_settled(repo, state, &seen, state.opened_ns());
    let ids: Vec<ObjectId> = ids.into_iter().map(|i| i.expect("every file has an id")).collect();

    // What is still missing: large files, and files whose id came from the hash cache.
    let rest: Vec<usize> =
        (0..files.len()).filter(|&i| files[i].known.is_none() && !done[i] && claim(&ids[i])).collect();
    if !rest.is_empty() {
        let bytes: u64 = rest.iter().map(|&i| files[i].meta.len()).sum();
        reporter.start("storing", rest.len() as u64, bytes);
        let more = rest
            .par_iter()
            .map(|&i| {
                let s = stage(&files[i], ids[i], None)?;
                reporter.advance(1, files[i].meta.len());
                Ok((i, s))
            })
            .collect::<Result<Vec<_>>>()?;
        reporter.finish();
        for (i, s) in more {
            keep(i, s);
        }
    }
    let new_objects = staged.len() as u64;
    cache.commit(staged)?;
    Ok(Stored { ids, new_objects, new_bytes, linked })
}

/// A file's whole content, refused when the file changed since it was listed.
fn read_unchanged(f: &Found) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut file = fs::File::open(&f.abs).at(&f.abs)?;
    let mut bytes = vec![0; f.meta.len() as usize];
    let complete = match file.read_exact(&mut bytes) {
        Ok(()) => file.read(&mut [0u8; 1]).at(&f.abs)? == 0,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => false,
        Err(e) => return Err(Error::io(&f.abs, e)),
    };
    let after = file.metadata().at(&f.abs)?;
    if !complete || crate::cache::changed(&f.meta, &after) {
        return Err(crate::cache::changed_while_adding(&f.abs));
    }
    Ok(bytes)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Unchanged,
    Modified,
    Missing,
    NotInCache,
    /// The workspace shares its file with the cache (a hard or symbolic link) and that
    /// file was written: the cache's object no longer hashes to its id.
    Damaged,
}

impl State {
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Unchanged => "unchanged",
            State::Modified => "modified",
            State::Missing => "missing",
            State::NotInCache => "not in cache",
            State::Damaged => "damaged",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub path: String,
    pub pointer: String,
    pub kind: Kind,
    pub state: State,
    /// Whether the cache holds everything the pointer names.
    pub in_cache: bool,
    /// The workspace holds data other than the pointer names (with `not_in_cache`: data
    /// the pointer does not name, e.g. after a git checkout of older pointers).
    pub other_data: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
    /// Objects changed by writes through links in the workspace (state `damaged`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub damaged: Vec<ObjectId>,
}

/// Compare each tracked item's workspace data with its pointer.
pub fn status(repo: &Repo, targets: &[Tracked], reporter: &dyn Reporter) -> Result<Vec<Status>> {
    let state = repo.state();
    targets.iter().map(|t| status_one(repo, t, &state, reporter)).collect()
}

/// [`status`] of each pointer file, one result each: a pointer that cannot be read, or
/// data that cannot be looked at, fails its own entry only.
pub fn status_each(repo: &Repo, pointers: &[PathBuf], reporter: &dyn Reporter) -> Vec<Result<Status>> {
    let state = repo.state();
    pointers.iter().map(|p| Tracked::load(p).and_then(|t| status_one(repo, &t, &state, reporter))).collect()
}

fn status_one(repo: &Repo, t: &Tracked, state: &StateDb, reporter: &dyn Reporter) -> Result<Status> {
    tracked::check_inside(repo, t)?;
    let p = &t.pointer;
    let manifest = match p.kind {
        Kind::Dir => match repo.cache.read_manifest(&p.hash) {
            Ok(m) => Some(m),
            Err(Error::MissingObject { .. }) => None,
            Err(e) => return Err(e),
        },
        Kind::File => None,
    };
    let in_cache = match p.kind {
        Kind::File => repo.cache.has_object(&p.hash),
        Kind::Dir => manifest.as_ref().is_some_and(|m| repo.cache.has_all(&p.hash, m, state)),
    };
    let mut out = Status {
        path: t.rel(repo),
        pointer: display_rel(&repo.root, &t.pointer_path),
        kind: p.kind,
        state: State::Unchanged,
        in_cache,
        other_data: false,
        changes: None,
        damaged: Vec::new(),
    };
    let exists = fs::symlink_metadata(&t.data_path).is_ok();
    if !exists {
        out.state = if in_cache { State::Missing } else { State::NotInCache };
        return Ok(out);
    }
    let cache = &repo.cache;
    match p.kind {
        Kind::File => {
            let kind_ok = fs::metadata(&t.data_path).is_ok_and(|m| m.is_file());
            let found = if kind_ok { Some(scan::examine(repo, &t.data_path, String::new())?) } else { None };
            let id = match &found {
                Some(f) => Some(scan::hash_all(repo, state, std::slice::from_ref(f), reporter)?[0]),
                None => None,
            };
            if id != Some(p.hash) {
                out.other_data = true;
                if id.is_some_and(|id| written_through_link(repo, &t.data_path, &p.hash, &id)) {
                    out.damaged.push(p.hash);
                }
            } else if let Some(f) = found.filter(|f| f.known.is_some()) {
                // A symbolic link into the cache names its object; a write through it
                // changes the object.
                if !cache.find_damaged(&[(p.hash, Stamp::of(&f.meta))], state, reporter)?.is_empty() {
                    out.other_data = true;
                    out.damaged.push(p.hash);
                }
            }
        }
        Kind::Dir => {
            if t.data_path.is_dir() {
                let files = scan::list_dir(repo, &t.data_path)?;
                let ids = scan::hash_all(repo, state, &files, reporter)?;
                let current = scan::manifest_of(&files, &ids);
                let linked: Vec<(ObjectId, Stamp)> =
                    files.iter().filter_map(|f| Some((f.known?, Stamp::of(&f.meta)))).collect();
                let through_links: HashSet<ObjectId> =
                    cache.find_damaged(&linked, state, reporter)?.into_iter().map(|(id, _)| id).collect();
                if current.id() != p.hash || !through_links.is_empty() {
                    out.other_data = true;
                    out.damaged.extend(&through_links);
                    if let Some(m) = &manifest {
                        let was: HashMap<&str, ObjectId> =
                            m.entries.iter().map(|e| (e.path.as_str(), e.hash)).collect();
                        // A file whose bytes changed while it shares its inode with the
                        // object it was: the object changed with it.
                        out.damaged.extend(current.entries.iter().filter_map(|e| {
                            let was = *was.get(e.path.as_str())?;
                            written_through_link(repo, &t.data_path.join(&e.path), &was, &e.hash)
                                .then_some(was)
                        }));
                        let mut changes = scan::compare(m, &current);
                        let via_links =
                            files.iter().filter(|f| f.known.is_some_and(|id| through_links.contains(&id)));
                        changes.modified.extend(via_links.map(|f| f.rel.clone()));
                        changes.modified.sort();
                        changes.modified.dedup();
                        out.changes = Some(changes);
                    }
                    out.damaged.sort_unstable();
                    out.damaged.dedup();
                }
            } else {
                out.other_data = true;
            }
        }
    }
    // Data the cache lacks is fetched, not re-added: the workspace holding other data
    // (after a git checkout or pull brought new pointers) is not an edit to save.
    out.state = match (out.other_data, in_cache) {
        (false, _) => State::Unchanged,
        (true, false) => State::NotInCache,
        (true, true) if !out.damaged.is_empty() => State::Damaged,
        (true, true) => State::Modified,
    };
    Ok(out)
}

#[derive(Debug, Serialize)]
pub struct CheckedOut {
    pub path: String,
    pub kind: Kind,
    /// Files written into the workspace.
    pub placed: u64,
    /// Files deleted because the pointer no longer has them.
    pub removed: u64,
}

/// Make the workspace match the pointers, touching only files that differ.
/// Unsaved changes (content not in the cache) are refused unless `force`.
pub fn checkout(
    repo: &Repo,
    targets: &[Tracked],
    force: bool,
    reporter: &dyn Reporter,
) -> Result<Vec<CheckedOut>> {
    let co = Checkout { repo, state: repo.state(), kinds: repo.config.link_kinds()?, force, reporter };
    let folders: HashSet<&Path> = targets.iter().filter_map(|t| t.data_path.parent()).collect();
    for folder in folders {
        link::remove_stale_temps(folder);
    }
    targets
        .iter()
        .map(|t| {
            tracked::check_inside(repo, t)?;
            match t.pointer.kind {
                Kind::File => co.file(t),
                Kind::Dir => co.dir(t),
            }
        })
        .collect()
}

/// Whether the cache holds all of a pointer's content (a folder: its manifest and files).
pub fn in_cache(repo: &Repo, p: &Pointer) -> bool {
    match p.kind {
        Kind::File => repo.cache.has_object(&p.hash),
        Kind::Dir => repo
            .cache
            .read_manifest(&p.hash)
            .is_ok_and(|m| m.entries.par_iter().all(|e| repo.cache.has_object(&e.hash))),
    }
}

/// Write one tracked item's data at `t.data_path`, which may be anywhere (`trove get`):
/// the same as checkout without the check that it lies inside the repository.
pub fn materialize(repo: &Repo, t: &Tracked, reporter: &dyn Reporter) -> Result<CheckedOut> {
    let co = Checkout { repo, state: repo.state(), kinds: repo.config.link_kinds()?, force: false, reporter };
    match t.pointer.kind {
        Kind::File => co.file(t),
        Kind::Dir => co.dir(t),
    }
}

/// One checkout run's settings.
struct Checkout<'a> {
    repo: &'a Repo,
    state: StateDb,
    kinds: Vec<LinkKind>,
    force: bool,
    reporter: &'a dyn Reporter,
}

impl Checkout<'_> {
    fn file(&self, t: &Tracked) -> Result<CheckedOut> {
        let (repo, state, kinds, force, reporter) =
            (self.repo, &self.state, &self.kinds[..], self.force, self.reporter);
        let mut out = CheckedOut { path: t.rel(repo), kind: Kind::File, placed: 0, removed: 0 };
        if let Ok(meta) = fs::symlink_metadata(&t.data_path) {
            if meta.is_dir() {
                if !force {
                    return Err(unsaved(&t.data_path, vec![format!("{} (a folder now)", out.path)]));
                }
                fs::remove_dir_all(&t.data_path).at(&t.data_path)?;
            } else {
                let id = scan::hash_one(repo, state, &t.data_path, reporter)?;
                if id == t.pointer.hash {
                    // A symbolic link into the cache is only as good as its object.
                    if meta.file_type().is_symlink() {
                        repo.cache.check_sound(&[id], state, reporter)?;
                    }
                    return Ok(out);
                }
                damaged_link(repo, &t.data_path, &t.pointer.hash, &id)?;
                if !force && !repo.cache.has_object(&id) {
                    return Err(unsaved(&t.data_path, vec![out.path]));
                }
            }
        }
        repo.cache.check_sound(&[t.pointer.hash], state, reporter)?;
        link::place(&repo.cache.object_path(&t.pointer.hash), &t.data_path, kinds, false)?;
        scan::remember(repo, state, &[(t.data_path.clone(), t.pointer.hash)]);
        out.placed = 1;
        Ok(out)
    }

    fn dir(&self, t: &Tracked) -> Result<CheckedOut> {
        let (repo, state, kinds, force, reporter) =
            (self.repo, &self.state, &self.kinds[..], self.force, self.reporter);
        let manifest = repo.cache.read_manifest(&t.pointer.hash)?;
        let dir = &t.data_path;
        let mut out = CheckedOut { path: t.rel(repo), kind: Kind::Dir, placed: 0, removed: 0 };
        if let Ok(meta) = fs::symlink_metadata(dir)
            && !meta.is_dir()
        {
            if !force && !is_saved_file(repo, state, dir, reporter)? {
                return Err(unsaved(dir, vec![format!("{} (a file now)", out.path)]));
            }
            fs::remove_file(dir).at(dir)?;
        }
        let current = if dir.is_dir() { scan::list_dir_cleaning(repo, dir, true)? } else { Vec::new() };
        let ids = scan::hash_all(repo, state, &current, reporter)?;
        let now: HashMap<&str, (ObjectId, &Found)> =
            current.iter().zip(&ids).map(|(f, id)| (f.rel.as_str(), (*id, f))).collect();
        let wanted: HashSet<&str> = manifest.entries.iter().map(|e| e.path.as_str()).collect();

        let to_place: Vec<_> = manifest
            .entries
            .iter()
            .filter(|e| match now.get(e.path.as_str()) {
                None => true,
                Some((id, f)) => *id != e.hash || (f.exec != e.exec && f.known.is_none()),
            })
            .collect();
        let extras: Vec<&Found> = current.iter().filter(|f| !wanted.contains(f.rel.as_str())).collect();

        let mut at_risk: Vec<String> = Vec::new();
        for e in &to_place {
            if let Some((id, f)) = now.get(e.path.as_str()) {
                damaged_link(repo, &f.abs, &e.hash, id)?;
                if !repo.cache.has_object(id) {
                    at_risk.push(format!("{}/{}", out.path, e.path));
                }
            }
        }
        for f in &extras {
            let id = now[f.rel.as_str()].0;
            if !repo.cache.has_object(&id) {
                at_risk.push(format!("{}/{}", out.path, f.rel));
            }
        }
        if !force && !at_risk.is_empty() {
            return Err(unsaved(dir, at_risk));
        }
        // What is placed, and what symbolic links into the cache already show.
        let linked = current.iter().zip(&ids).filter(|(f, _)| f.known.is_some()).map(|(_, id)| *id);
        let needed: Vec<ObjectId> = to_place.iter().map(|e| e.hash).chain(linked).collect();
        repo.cache.check_sound(&needed, state, reporter)?;

        for f in &extras {
            fs::remove_file(&f.abs).at(&f.abs)?;
            out.removed += 1;
        }
        if !extras.is_empty() {
            remove_empty_dirs(dir);
        }
        fs::create_dir_all(dir).at(dir)?;
        let real_dir = fs::canonicalize(dir).at(dir)?;
        let parents: HashSet<&str> =
            to_place.iter().filter_map(|e| e.path.rsplit_once('/').map(|(p, _)| p)).collect();
        for p in parents {
            let abs = dir.join(p);
            fs::create_dir_all(&abs).map_err(|e| Error::path(&abs, format!("cannot create folder: {e}")))?;
            let real = fs::canonicalize(&abs).at(&abs)?;
            if !real.starts_with(&real_dir) {
                return Err(Error::path(
                    &abs,
                    "is a symbolic link leading outside the tracked folder; refusing to write through it",
                ));
            }
        }
        let bytes: u64 = to_place.iter().map(|e| e.size).sum();
        if !to_place.is_empty() {
            reporter.start("checking out", to_place.len() as u64, bytes);
        }
        let placed = to_place
            .par_iter()
            .map(|e| {
                let dest = dir.join(&e.path);
                if fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir()) {
                    fs::remove_dir_all(&dest).at(&dest)?;
                }
                link::place(&repo.cache.object_path(&e.hash), &dest, kinds, e.exec)?;
                reporter.advance(1, e.size);
                Ok((dest, e.hash))
            })
            .collect::<Result<Vec<_>>>()?;
        if !to_place.is_empty() {
            reporter.finish();
        }
        scan::remember(repo, state, &placed);
        out.placed = placed.len() as u64;
        Ok(out)
    }
}

/// Whether the workspace file `path`, placed from the object `want` and now hashing to
/// `got`, was written through a hard link to that object: then the object changed too.
fn written_through_link(repo: &Repo, path: &Path, want: &ObjectId, got: &ObjectId) -> bool {
    got != want && link::same_file(path, &repo.cache.object_path(want))
}

/// A file written through a hard link to its object: the object is damaged, and nothing
/// can be restored from it.
fn damaged_link(repo: &Repo, path: &Path, want: &ObjectId, got: &ObjectId) -> Result<()> {
    if written_through_link(repo, path, want, got) {
        return Err(Error::DamagedObject { id: want.to_hex(), actual: got.to_hex() });
    }
    Ok(())
}

fn unsaved(path: &Path, files: Vec<String>) -> Error {
    Error::Unsaved { path: path.to_path_buf(), files }
}

fn is_saved_file(repo: &Repo, state: &StateDb, path: &Path, reporter: &dyn Reporter) -> Result<bool> {
    let id = scan::hash_one(repo, state, path, reporter)?;
    Ok(repo.cache.has_object(&id))
}

/// Remove folders left empty under `dir` (deepest first), keeping `dir` itself.
fn remove_empty_dirs(dir: &Path) {
    let mut dirs: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_dir())
        .map(|e| e.into_path())
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let _ = fs::remove_dir(d); // fails, as it should, when not empty
    }
}

/// Stop tracking: delete the pointer and the `.gitignore` entry; the data stays.
pub fn remove(repo: &Repo, t: &Tracked, stage: bool) -> Result<()> {
    fs::remove_file(&t.pointer_path).at(&t.pointer_path)?;
    let parent = t.pointer_path.parent().expect("pointer has a folder");
    let mut touched = vec![t.pointer_path.clone()];
    touched.extend(git::unignore_entry(parent, &t.pointer.path)?);
    if stage {
        git::stage(&repo.git()?, &repo.root, &touched)?;
    }
    Ok(())
}

/// Move tracked data and its pointer together. Returns the new data path.
pub fn move_tracked(repo: &Repo, cwd: &Path, t: &Tracked, dst: &Path, stage: bool) -> Result<PathBuf> {
    let mut dest = tracked::resolve_in_repo(repo, cwd, dst)?;
    // Like `mv`: moving into an existing folder, or one named with a trailing `/`, keeps the name.
    let into_folder = dst.as_os_str().as_encoded_bytes().ends_with(b"/");
    if (dest.is_dir() || into_folder) && dest != t.data_path {
        dest = dest.join(&t.pointer.path);
    }
    if dest.exists() {
        return Err(Error::path(&dest, "already exists; choose a destination that does not"));
    }
    if dest.starts_with(&t.data_path) {
        return Err(Error::path(&dest, "is inside the data being moved"));
    }
    if let Some(owner) = tracked::tracked_ancestor(repo, &dest)? {
        return Err(Error::path(&dest, format!("is inside the tracked directory {}", owner.rel(repo))));
    }
    let new_name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::NonUtf8Path { path: dest.clone() })?
        .to_string();
    if git::ignore_line(&new_name).is_none() {
        return Err(git::unignorable(&dest));
    }
    let new_pointer_path = pointer_path_for(&dest);
    if new_pointer_path.exists() {
        return Err(Error::path(&new_pointer_path, "already exists"));
    }
    let parent = dest.parent().expect("inside the repository");
    fs::create_dir_all(parent).at(parent)?;
    if fs::symlink_metadata(&t.data_path).is_ok() {
        fs::rename(&t.data_path, &dest).at(&t.data_path)?;
    }
    let mut pointer = t.pointer.clone();
    pointer.path = new_name.clone();
    crate::atomic_file::write(&new_pointer_path, pointer.to_text().as_bytes())?;
    fs::remove_file(&t.pointer_path).at(&t.pointer_path)?;
    let old_parent = t.pointer_path.parent().expect("pointer has a folder");
    let mut touched = vec![t.pointer_path.clone(), new_pointer_path];
    touched.extend(git::unignore_entry(old_parent, &t.pointer.path)?);
    touched.extend(git::ignore_entry(parent, &new_name)?);
    if stage {
        git::stage(&repo.git()?, &repo.root, &touched)?;
    }
    Ok(dest)
}

/// Make tracked files private writable copies; returns how many were changed.
pub fn unprotect(repo: &Repo, cwd: &Path, paths: &[PathBuf]) -> Result<u64> {
    let mut count = 0;
    for p in paths {
        let abs = tracked::resolve_in_repo(repo, cwd, p)?;
        let is_tracked = pointer_path_for(&abs).is_file() || tracked::tracked_ancestor(repo, &abs)?.is_some();
        if !is_tracked {
            return Err(Error::path(p, "is not tracked data"));
        }
        let meta = fs::symlink_metadata(&abs).map_err(|e| Error::io(&abs, e))?;
        if meta.is_dir() {
            let files: Vec<PathBuf> = walkdir::WalkDir::new(&abs)
                .into_iter()
                .filter_map(|e| e.ok())
                .filter(|e| !e.file_type().is_dir())
                .map(|e| e.into_path())
                .collect();
            let changed = files.par_iter().map(|f| link::unprotect(f)).collect::<Result<Vec<bool>>>()?;
            count += changed.into_iter().filter(|c| *c).count() as u64;
        } else if link::unprotect(&abs)? {
            count += 1;
        }
    }
    Ok(count)
}
