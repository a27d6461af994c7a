//! The content-addressed object store: `objects/<2 hex>/<62 hex>[.dir]`, immutable, read-only.
//!
//! Writes go to a temp file `obj-PID-N` in the object's own folder, are made durable, then
//! renamed into place, so an id never names a partial object. A rename within one folder
//! does not take the file system's rename lock, and writers spread over 256 folders rather
//! than queueing on one. A process with temp files keeps a marker `tmp/writer-PID`, so that
//! the debris of a killed one is found without listing every object folder.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::error::{Error, IoContext, Result};
use crate::hash::{ObjectId, ObjectKey, hash_file};
use crate::link;
use crate::manifest::Manifest;
use crate::progress::Reporter;
use crate::state::{Stamp, StateDb};

/// Names temp files uniquely within this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    /// Objects this process put in place: their bytes were hashed on the way in.
    committed: Arc<Mutex<Vec<ObjectId>>>,
    /// `tmp/writer-PID`, made before this process's first temp file, deleted when the last
    /// clone of this cache is dropped.
    marker: Arc<Mutex<Option<WriterMarker>>>,
}

/// A file saying that a process may have temp files in the object folders.
#[derive(Debug)]
struct WriterMarker(PathBuf);

impl Drop for WriterMarker {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// An object found in the cache (see [`Cache::list_objects`]).
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub key: ObjectKey,
    pub path: PathBuf,
    pub size: u64,
}

/// A file copied into the cache's temp folder, waiting to be renamed to its id. Dropped
/// without [`Cache::commit`] (when the command fails, e.g. on a full disk), the temp file
/// is deleted rather than left taking space until the next run.
pub struct Staged {
    temp: PathBuf,
    id: ObjectId,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

impl Cache {
    pub fn new(root: PathBuf) -> Self {
        Cache { root, committed: Arc::default(), marker: Arc::default() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn objects_dir(&self) -> PathBuf {
        self.root.join("objects")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Create the cache's folders and delete temp files left by killed processes.
    pub fn ensure(&self) -> Result<()> {
        for d in [self.objects_dir(), self.tmp_dir()] {
            fs::create_dir_all(&d).at(&d)?;
        }
        self.clean_stale_temps();
        Ok(())
    }

    /// Temp files are named `obj-PID-N`; those of processes no longer running are debris,
    /// and so is a marker whose process is gone.
    fn clean_stale_temps(&self) {
        for (path, _) in self.stale_temps() {
            let _ = fs::remove_file(path);
        }
    }

    pub fn object_path(&self, id: &ObjectId) -> PathBuf {
        self.path_of(&ObjectKey::file(*id))
    }

    pub fn manifest_path(&self, id: &ObjectId) -> PathBuf {
        self.path_of(&ObjectKey::manifest(*id))
    }

    /// The path of an object file: `<root>/objects/xx/yyyy…[.dir]`.
    pub fn path_of(&self, key: &ObjectKey) -> PathBuf {
        let rel = key.rel_path();
        let root = self.root.as_os_str();
        let mut s = std::ffi::OsString::with_capacity(root.len() + 1 + rel.len());
        s.push(root);
        s.push("/");
        s.push(rel);
        PathBuf::from(s)
    }

    pub fn has_object(&self, id: &ObjectId) -> bool {
        self.object_path(id).is_file()
    }

    /// Whether the cache holds every file `manifest` (whose id is `id`) lists.
    ///
    /// Checking 20,000 objects costs 20,000 stats; instead, when the folders holding them
    /// are unchanged (same inode, mtime and ctime: nothing was added to or deleted from
    /// them) since the state database last saw them all, the answer is known.
    pub fn has_all(&self, id: &ObjectId, manifest: &Manifest, state: &StateDb) -> bool {
        let mut prefixes = [false; 256];
        for e in &manifest.entries {
            prefixes[e.hash.as_bytes()[0] as usize] = true;
        }
        let mut fingerprint = blake3::Hasher::new();
        let mut racy = false;
        for (byte, _) in prefixes.iter().enumerate().filter(|(_, used)| **used) {
            let dir = self.objects_dir().join(format!("{byte:02x}"));
            let Ok(meta) = fs::metadata(&dir) else { return false };
            let mtime = crate::state::nanos(meta.mtime(), meta.mtime_nsec());
            let ctime = crate::state::nanos(meta.ctime(), meta.ctime_nsec());
            racy |= state.is_racy(mtime) || state.is_racy(ctime);
            fingerprint.update(&[byte as u8]);
            fingerprint.update(&meta.dev().to_le_bytes());
            fingerprint.update(&meta.ino().to_le_bytes());
            fingerprint.update(&mtime.to_le_bytes());
            fingerprint.update(&ctime.to_le_bytes());
        }
        let fingerprint = *fingerprint.finalize().as_bytes();
        if state.complete(id) == Some(fingerprint) {
            return true;
        }
        let all = manifest.entries.par_iter().all(|e| self.has_object(&e.hash));
        if all && !racy {
            state.record_complete(id, &fingerprint);
        }
        all
    }

    pub fn has_manifest(&self, id: &ObjectId) -> bool {
        self.manifest_path(id).is_file()
    }

    /// If `path` is an object file of this cache, its id (used for symlinked workspaces).
    pub fn id_of_object_path(&self, path: &Path) -> Option<ObjectId> {
        let rel = path.strip_prefix(self.objects_dir()).ok()?;
        let mut parts = rel.iter();
        let a = parts.next()?.to_str()?;
        let b = parts.next()?.to_str()?;
        if parts.next().is_some() {
            return None;
        }
        format!("{a}{b}").parse().ok()
    }

    /// Copy `src` (whose content hashed to `id`) into the temp folder: a clone where the
    /// file system can, else a copy. Fails if the file changed since it was hashed (size
    /// or mtime differ).
    pub fn stage_file(&self, src: &Path, id: ObjectId, before: &fs::Metadata) -> Result<Staged> {
        // Made first, so that any failure below deletes what was written.
        let s = Staged { temp: self.temp_path(&id)?, id };
        if in_folder(&s.temp, || link::reflink(src, &s.temp)).is_ok() {
            fs::set_permissions(&s.temp, fs::Permissions::from_mode(0o444)).at(&s.temp)?;
        } else {
            in_folder(&s.temp, || link::copy_new(src, &s.temp, 0o444)).at(&s.temp)?;
        }
        unchanged_since(src, before)?;
        Ok(s)
    }

    /// Whether staging clones files (reflink) into this cache, found out once per process
    /// by cloning `sample` into a temp file. When it does, copying through memory would be
    /// the slower way.
    pub fn can_reflink(&self, sample: &Path) -> bool {
        static PROBED: std::sync::Once = std::sync::Once::new();
        PROBED.call_once(|| {
            let temp = self.tmp_dir().join(format!("obj-{}-probe", link::pid()));
            let _ = fs::create_dir_all(self.tmp_dir());
            let _ = link::reflink(sample, &temp);
            let _ = fs::remove_file(&temp);
        });
        !link::reflink_unsupported()
    }

    /// Stage an object from bytes already read (and hashed to `id`).
    pub fn stage_bytes(&self, bytes: &[u8], id: ObjectId) -> Result<Staged> {
        let (mut file, temp) = self.temp_file(&id)?;
        let s = Staged { temp, id };
        file.write_all(bytes).at(&s.temp)?;
        Ok(s)
    }

    /// Stage an object by hard-linking `src` (whose content hashed to `id`): the cache and
    /// the workspace share one inode, made read-only. `None` when `src` cannot be linked
    /// (another file system); an error when it changed since it was hashed.
    pub fn stage_link(&self, src: &Path, id: ObjectId, before: &fs::Metadata) -> Result<Option<Staged>> {
        let s = Staged { temp: self.temp_path(&id)?, id };
        if in_folder(&s.temp, || fs::hard_link(src, &s.temp)).is_err() {
            return Ok(None);
        }
        fs::set_permissions(&s.temp, fs::Permissions::from_mode(0o444)).at(&s.temp)?;
        unchanged_since(src, before)?;
        Ok(Some(s))
    }

    /// A new temp file name, `obj-PID-N`, in the folder object `id` goes to (which may not
    /// exist yet). This process's marker is made first.
    fn temp_path(&self, id: &ObjectId) -> Result<PathBuf> {
        self.mark_writer()?;
        let mut path = self.object_path(id);
        path.set_file_name(format!("obj-{}-{}", link::pid(), TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
        Ok(path)
    }

    /// Make `tmp/writer-PID` once per process (see [`WriterMarker`]).
    fn mark_writer(&self) -> Result<()> {
        // Held while the marker is made: a second thread making it too would, on losing
        // the race to record it, drop its copy and so delete the file the first one made.
        let mut marker = self.marker.lock().expect("marker");
        if marker.is_none() {
            let path = self.tmp_dir().join(format!("writer-{}", link::pid()));
            in_folder(&path, || fs::write(&path, b"")).at(&path)?;
            *marker = Some(WriterMarker(path));
        }
        Ok(())
    }

    /// A new read-only temp file for object `id`, in the folder it goes to, open for writing.
    pub fn temp_file(&self, id: &ObjectId) -> Result<(fs::File, PathBuf)> {
        use std::os::unix::fs::OpenOptionsExt;
        let temp = self.temp_path(id)?;
        let open = || fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o444).open(&temp);
        let file = in_folder(&temp, open).at(&temp)?;
        Ok((file, temp))
    }

    /// A temp file whose content was verified to hash to `id`, ready for [`Cache::commit`].
    pub fn staged(temp: PathBuf, id: ObjectId) -> Staged {
        Staged { temp, id }
    }

    /// Make staged objects durable and rename them into place, read-only.
    pub fn commit(&self, staged: Vec<Staged>) -> Result<()> {
        if staged.is_empty() {
            return Ok(());
        }
        sync_files(&self.objects_dir(), &staged)?;
        // The folders whose renames are made durable one by one (else one syncfs).
        let dirs: Option<std::collections::BTreeSet<PathBuf>> =
            (staged.len() < SYNCFS_MIN_FILES).then(|| {
                staged
                    .iter()
                    .filter_map(|s| self.object_path(&s.id).parent().map(Path::to_path_buf))
                    .collect()
            });
        let ids: Vec<ObjectId> = staged.iter().map(|s| s.id).collect();
        staged.into_par_iter().try_for_each(|mut s| {
            self.place(&s.temp, &self.object_path(&s.id))?;
            s.temp = PathBuf::new(); // placed: nothing left to delete
            Ok::<_, Error>(())
        })?;
        self.committed.lock().expect("not poisoned").extend(ids);
        // make the renames durable too
        if let Some(dirs) = dirs {
            for d in dirs {
                fs::File::open(&d).and_then(|f| f.sync_all()).at(&d)?;
            }
            Ok(())
        } else {
            sync_filesystem(&self.objects_dir())
        }
    }

    fn place(&self, temp: &Path, dest: &Path) -> Result<()> {
        let parent = dest.parent().expect("object path has a parent");
        if let Err(e) = fs::rename(temp, dest) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(Error::io(dest, e));
            }
            fs::create_dir_all(parent).at(parent)?;
            fs::rename(temp, dest).at(dest)?;
        }
        Ok(())
    }

    /// Store bytes whose id is their BLAKE3 (used for manifests).
    pub fn insert_manifest(&self, manifest: &Manifest) -> Result<ObjectId> {
        let bytes = manifest.to_bytes();
        let id = ObjectId::of_bytes(&bytes);
        let dest = self.manifest_path(&id);
        if dest.is_file() {
            return Ok(id);
        }
        // A read-only temp file, deleted if anything below fails.
        let (mut file, temp) = self.temp_file(&id)?;
        let mut s = Staged { temp, id };
        file.write_all(&bytes).at(&s.temp)?;
        file.sync_all().at(&s.temp)?;
        drop(file);
        self.place(&s.temp, &dest)?;
        s.temp = PathBuf::new(); // placed: nothing left to delete
        Ok(id)
    }

    pub fn read_manifest(&self, id: &ObjectId) -> Result<Manifest> {
        let path = self.manifest_path(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::MissingObject { id: format!("{id}.dir") });
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let actual = ObjectId::of_bytes(&bytes);
        if actual != *id {
            return Err(Error::CorruptObject { id: format!("{id}.dir"), actual: actual.to_hex() });
        }
        Manifest::parse(&bytes, &format!("{id}.dir"))
    }

    /// Re-hash an object file and check it against its id.
    pub fn verify_object(&self, id: &ObjectId) -> Result<()> {
        let (actual, _) = hash_file(&self.object_path(id))?;
        if actual != *id {
            return Err(Error::CorruptObject { id: id.to_hex(), actual: actual.to_hex() });
        }
        Ok(())
    }

    /// Make sure the objects `ids` are in the cache and sound before they are placed in the
    /// workspace (see [`Cache::find_damaged`]). A damaged object is an error naming it.
    pub fn check_sound(&self, ids: &[ObjectId], state: &StateDb, reporter: &dyn Reporter) -> Result<()> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let stamps = ids
            .par_iter()
            .map(|id| match fs::metadata(self.object_path(id)) {
                Ok(m) if m.is_file() => Ok((*id, Stamp::of(&m))),
                Ok(_) => Err(Error::MissingObject { id: id.to_hex() }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(Error::MissingObject { id: id.to_hex() })
                }
                Err(e) => Err(Error::io(self.object_path(id), e)),
            })
            .collect::<Result<Vec<_>>>()?;
        match self.find_damaged(&stamps, state, reporter)?.first() {
            Some((id, actual)) => Err(Error::DamagedObject { id: id.to_hex(), actual: actual.to_hex() }),
            None => Ok(()),
        }
    }

    /// Of these objects (each with its file's stamp, taken just now), those whose bytes do
    /// not hash to their id, with what they hash to. An object is sound without reading it
    /// when this process stored it, or when the state database saw its bytes hash to its
    /// id and its file is unchanged since; the others are hashed, and the sound ones
    /// remembered for next time.
    pub fn find_damaged(
        &self,
        objects: &[(ObjectId, Stamp)],
        state: &StateDb,
        reporter: &dyn Reporter,
    ) -> Result<Vec<(ObjectId, ObjectId)>> {
        let observed = crate::state::now_ns();
        let committed: std::collections::HashSet<ObjectId> =
            self.committed.lock().expect("not poisoned").iter().copied().collect();
        let known = state.sound(objects);
        let (ours, todo): (Vec<_>, Vec<_>) = objects
            .iter()
            .zip(&known)
            .filter(|(_, k)| !**k)
            .map(|(o, _)| *o)
            .partition(|(id, _)| committed.contains(id));
        state.record_sound(&ours, observed);
        if todo.is_empty() {
            return Ok(Vec::new());
        }
        let bytes: u64 = todo.iter().map(|(_, s)| s.size).sum();
        reporter.start("verifying", todo.len() as u64, bytes);
        let hashed = todo
            .par_iter()
            .map(|&(id, stamp)| {
                let (actual, _) = hash_file(&self.object_path(&id))?;
                reporter.advance(1, stamp.size);
                Ok((id, stamp, actual))
            })
            .collect::<Result<Vec<_>>>();
        reporter.finish();
        let (sound, damaged): (Vec<_>, Vec<_>) =
            hashed?.into_iter().partition(|(id, _, actual)| id == actual);
        let sound: Vec<(ObjectId, Stamp)> = sound.into_iter().map(|(id, s, _)| (id, s)).collect();
        state.record_sound(&sound, observed);
        Ok(damaged.into_iter().map(|(id, _, actual)| (id, actual)).collect())
    }

    /// Remember as sound the objects this process stored (their bytes were hashed on the
    /// way in), so that a later checkout need not read them again.
    pub fn remember_committed(&self, state: &StateDb) {
        let ids = std::mem::take(&mut *self.committed.lock().expect("not poisoned"));
        let observed = crate::state::now_ns();
        let paths: Vec<PathBuf> = ids.iter().map(|id| self.object_path(id)).collect();
        let found: Vec<(ObjectId, &Path, Stamp)> = ids
            .par_iter()
            .zip(&paths)
            .filter_map(|(id, p)| Some((*id, p.as_path(), Stamp::of(&fs::metadata(p).ok()?))))
            .collect();
        let files: Vec<(&Path, Stamp)> = found.iter().map(|(_, p, s)| (*p, *s)).collect();
        let (trusted, at) = crate::state::settle(&files, observed);
        let sound: Vec<(ObjectId, Stamp)> =
            found.iter().zip(trusted).filter(|(_, t)| *t).map(|((id, _, s), _)| (*id, *s)).collect();
        state.record_sound(&sound, at);
        self.committed.lock().expect("not poisoned").extend(ids);
    }

    /// Where `trove verify` moves corrupt objects: `quarantine/` beside `objects/`.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.root.join("quarantine")
    }

    /// Every object under `objects/`, with its size. Names that are not object names
    /// (stray files) are skipped.
    pub fn list_objects(&self) -> Result<Vec<StoredObject>> {
        let objects = self.objects_dir();
        let prefixes = match fs::read_dir(&objects) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&objects, e)),
        };
        let mut out = Vec::new();
        for prefix in prefixes {
            let prefix = prefix.at(&objects)?;
            let Some(p) = prefix.file_name().to_str().map(str::to_string) else { continue };
            if p.len() != 2 || !prefix.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let dir = prefix.path();
            for entry in fs::read_dir(&dir).at(&dir)? {
                let entry = entry.at(&dir)?;
                let Some(key) = entry.file_name().to_str().and_then(|n| ObjectKey::from_listing(&p, n))
                else {
                    continue;
                };
                let path = entry.path();
                let meta = fs::symlink_metadata(&path).at(&path)?;
                if !meta.is_file() {
                    continue;
                }
                out.push(StoredObject { key, size: meta.len(), path });
            }
        }
        out.sort_by_key(|o| o.key);
        Ok(out)
    }

    /// Delete one object; one already gone is not an error.
    pub fn delete_object(&self, key: &ObjectKey) -> Result<()> {
        let path = self.path_of(key);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&path, e)),
            _ => Ok(()),
        }
    }

    /// Move an object out of `objects/` into [`Cache::quarantine_dir`] (as
    /// `<64 hex>[.dir]`, `.1`, `.2`… appended when that name is taken); returns where.
    pub fn quarantine(&self, key: &ObjectKey) -> Result<PathBuf> {
        let dir = self.quarantine_dir();
        fs::create_dir_all(&dir).at(&dir)?;
        let name = key.display();
        let mut dest = dir.join(&name);
        let mut n = 0;
        while fs::symlink_metadata(&dest).is_ok() {
            n += 1;
            dest = dir.join(format!("{name}.{n}"));
        }
        let src = self.path_of(key);
        fs::rename(&src, &dest).at(&src)?;
        Ok(dest)
    }

    /// Temp files whose process no longer runs (debris of killed processes), with their
    /// sizes: those in the object folders of each dead process's marker, the marker itself,
    /// and `obj-PID-N` files under `tmp/` (where earlier versions put them).
    /// [`Cache::ensure`] deletes the same ones.
    pub fn stale_temps(&self) -> Vec<(PathBuf, u64)> {
        let Ok(entries) = fs::read_dir(self.tmp_dir()) else {
            return Vec::new();
        };
        let dead = |pid: &str| pid.parse::<u32>().is_ok_and(link::is_gone);
        let mut out = Vec::new();
        let mut writers = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(pid) = name.strip_prefix("writer-").filter(|p| dead(p)) {
                writers.push((pid.to_string(), e.path()));
            } else if name.strip_prefix("obj-").and_then(|n| n.split('-').next()).is_some_and(dead) {
                out.push((e.path(), e.metadata().map_or(0, |m| m.len())));
            }
        }
        if !writers.is_empty() {
            let prefixes: Vec<String> = writers.iter().map(|(pid, _)| format!("obj-{pid}-")).collect();
            let folders = fs::read_dir(self.objects_dir()).into_iter().flatten().flatten();
            for folder in folders.filter(|f| f.file_type().is_ok_and(|t| t.is_dir())) {
                let Ok(files) = fs::read_dir(folder.path()) else { continue };
                for f in files.flatten() {
                    if f.file_name().to_str().is_some_and(|n| prefixes.iter().any(|p| n.starts_with(p))) {
                        out.push((f.path(), f.metadata().map_or(0, |m| m.len())));
                    }
                }
            }
        }
        out.sort();
        // The markers last: one deleted before its temp files would hide them.
        out.extend(writers.into_iter().map(|(_, path)| (path, 0)));
        out
    }
}

/// Run `f`, which makes the file `path`; when it fails because the folder is missing,
/// make the folder and run it again.
fn in_folder<T>(path: &Path, f: impl Fn() -> std::io::Result<T>) -> std::io::Result<T> {
    match f() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            f()
        }
        other => other,
    }
}

/// Fails when `src` changed (size, mtime or inode) since `before` was taken.
fn unchanged_since(src: &Path, before: &fs::Metadata) -> Result<()> {
    let after = fs::metadata(src).at(src)?;
    if changed(before, &after) {
        return Err(changed_while_adding(src));
    }
    Ok(())
}

/// The error for a file that changed while it was being read into the cache.
pub fn changed_while_adding(src: &Path) -> Error {
    Error::path(src, "file changed while it was being added; run the command again")
}

/// Whether a file's size or mtime differ between two stats.
pub fn changed(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.len() != b.len() || a.mtime() != b.mtime() || a.mtime_nsec() != b.mtime_nsec() || a.ino() != b.ino()
}

/// Below this many files an fsync each is cheaper than flushing the whole file system.
const SYNCFS_MIN_FILES: usize = 32;

/// Make staged files durable: an fsync each when few, else one syncfs.
fn sync_files(dir: &Path, staged: &[Staged]) -> Result<()> {
    if staged.len() < SYNCFS_MIN_FILES || cfg!(not(target_os = "linux")) {
        return staged
            .par_iter()
            .try_for_each(|s| fs::File::open(&s.temp).and_then(|f| f.sync_all()).at(&s.temp));
    }
    sync_filesystem(dir)
}

/// Flush the file system holding `dir`.
fn sync_filesystem(dir: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        let f = fs::File::open(dir).at(dir)?;
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs takes a valid open file descriptor, which `f` holds for the call.
        let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
        if rc != 0 {
            return Err(Error::io(dir, std::io::Error::last_os_error()));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        fs::File::open(dir).and_then(|f| f.sync_all()).at(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Threads that start writing at once leave one marker, in place while the cache
    /// lives (a second thread making it too once dropped its copy, deleting the file: a
    /// process killed then left temp files no cleanup could find).
    #[test]
    fn the_writer_marker_outlives_threads_racing_to_make_it() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let cache = Cache::new(dir.path().to_path_buf());
            let start = std::sync::Barrier::new(8);
            std::thread::scope(|s| {
                for i in 0..8u8 {
                    let (cache, start) = (&cache, &start);
                    s.spawn(move || {
                        start.wait();
                        cache.temp_file(&ObjectId::of_bytes(&[i])).unwrap();
                    });
                }
            });
            let marker = dir.path().join(format!("tmp/writer-{}", link::pid()));
            assert!(marker.exists(), "the marker is gone while the cache lives");
            drop(cache);
            assert!(!marker.exists(), "the marker outlives the cache");
        }
    }
}
