//! `trove remote upgrade`: convert a layout-1 remote (one file per object under
//! `objects/`) to layout 2 (chunks in packs, see [`super::layout2`]) in place.
//!
//! Safe against a kill at any point, and a rerun finishes: an object file is deleted only
//! after an index file naming its content is written, indexes are written every few
//! packs (a rerun skips the objects they name), and `TROVE_REMOTE` says layout 2 only
//! once every object listed before is converted. Layout-1 clients know no locks, so
//! after the switch `objects/` is listed once more: what a layout-1 push added meanwhile
//! is converted too before the object files go.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::layout1;
use super::layout2::{INDEX, index_path, pack_path};
use super::locks;
use crate::cache::Cache;
use crate::error::{Error, IoContext, RemoteFailure, Result};
use crate::hash::ObjectKey;
use crate::pack::{self, ChunkId, IndexFile, IndexId, ObjectRecord, PackRecord, PackWriter};
use crate::progress::Reporter;
use crate::remote::backend::{Backend, join};
use crate::remote::pool::Pool;
use crate::remote::{LAYOUT_FILE, Remote, check_layout, layout_text, read_layout};

/// An upgrade writes an index after this many packs, so a rerun skips what they hold.
const INDEX_EVERY_PACKS: usize = 4;
/// Objects downloaded at once (in parallel, into cache temp files) before being packed.
const BATCH_OBJECTS: usize = 32;
const BATCH_BYTES: u64 = 256 << 20;

/// Chunks local files into new packs, uploads each pack when full, and writes index files
/// naming the packs and the objects they complete (never an object before its packs).
pub(crate) struct Packer {
    /// Chunks the remote has in sound packs, or that this packer has packed.
    known: HashSet<ChunkId>,
    writer: PackWriter,
    /// Objects whose chunks may be in the pack being written.
    pending: Vec<ObjectRecord>,
    /// Packs uploaded, and the objects they complete, not yet named by an index.
    packs: Vec<PackRecord>,
    ready: Vec<ObjectRecord>,
    /// Bytes of packs and index files written.
    pub written: u64,
}

impl Packer {
    pub(crate) fn new(known: HashSet<ChunkId>) -> Self {
        Packer {
            known,
            writer: PackWriter::new(),
            pending: Vec::new(),
            packs: Vec::new(),
            ready: Vec::new(),
            written: 0,
        }
    }

    /// Chunk the local file `path` (the content of `key`, `size` bytes) into packs.
    pub(crate) fn add_file(
        &mut self,
        c: &mut dyn Backend,
        key: ObjectKey,
        path: &Path,
        size: u64,
    ) -> Result<()> {
        let f = fs::File::open(path).at(path)?;
        let mut ids = Vec::new();
        for chunk in pack::chunks(f, &path.to_string_lossy()) {
            let chunk = chunk?;
            ids.push(chunk.id);
            if self.known.insert(chunk.id) {
                self.writer.add(chunk.id, &chunk.data)?;
                if self.writer.len() >= pack::PACK_TARGET {
                    self.flush_pack(c)?;
                }
            }
        }
        self.pending.push(ObjectRecord { key, size, chunks: ids });
        Ok(())
    }

    /// Upload the pack being written (if any): the objects chunked so far are complete.
    pub(crate) fn flush_pack(&mut self, c: &mut dyn Backend) -> Result<()> {
        if !self.writer.is_empty() {
            let finished = std::mem::take(&mut self.writer).finish();
            c.write_bytes(&pack_path(&finished.id), &finished.bytes)?;
            self.written += finished.bytes.len() as u64;
            self.packs.push(PackRecord { id: finished.id, entries: finished.entries });
        }
        self.ready.append(&mut self.pending);
        Ok(())
    }

    /// The packs uploaded and the objects they complete, for an index written elsewhere.
    pub(crate) fn into_records(self) -> (Vec<PackRecord>, Vec<ObjectRecord>) {
        (self.packs, self.ready)
    }

    /// Packs uploaded and not yet named by an index.
    pub(crate) fn unindexed_packs(&self) -> usize {
        self.packs.len()
    }

    /// Write an index of the uploaded packs and the objects they complete, plus `packs`
    /// and `objects` given (records kept from older index files) and `supersedes`.
    /// Returns the objects it names that this packer packed.
    pub(crate) fn write_index(
        &mut self,
        c: &mut dyn Backend,
        supersedes: Vec<IndexId>,
        mut packs: Vec<PackRecord>,
        mut objects: Vec<ObjectRecord>,
    ) -> Result<Vec<ObjectKey>> {
        let own: Vec<ObjectKey> = self.ready.iter().map(|o| o.key).collect();
        packs.extend(self.packs.iter().cloned());
        objects.extend(self.ready.iter().cloned());
        if packs.is_empty() && objects.is_empty() && supersedes.is_empty() {
            return Ok(own);
        }
        let bytes = IndexFile { supersedes, packs, objects }.encode();
        c.write_bytes(&index_path(&IndexFile::id_of(&bytes)), &bytes)?;
        self.written += bytes.len() as u64;
        self.packs.clear();
        self.ready.clear();
        Ok(own)
    }
}

/// An index file whose bytes do not match its name, or do not parse.
#[derive(Debug, Clone, Serialize)]
pub struct Damaged {
    /// Its path on the remote (`index/<hex>`, `packs/<2>/<hex>`).
    pub name: String,
    pub error: String,
}

/// The index files of a layout-2 remote: the sound ones (without those another sound one
/// supersedes), every id listed, and the damaged ones, with what could still be parsed of
/// them (`salvaged`: only to be used where packs and content are checked by their ids).
pub(crate) struct Indexes {
    pub files: Vec<(IndexId, IndexFile)>,
    pub listed: Vec<IndexId>,
    pub damaged: Vec<Damaged>,
    pub salvaged: Vec<IndexFile>,
}

/// Read and check every index file.
pub(crate) fn read_indexes(c: &mut dyn Backend) -> Result<Indexes> {
    let listed: Vec<IndexId> = c.list(INDEX)?.iter().filter_map(|l| l.name.parse().ok()).collect();
    let mut files = Vec::new();
    let mut damaged = Vec::new();
    let mut salvaged = Vec::new();
    for id in &listed {
        let name = index_path(id);
        let mut bytes = Vec::new();
        match c.read(&name, None, &mut bytes) {
            Ok(_) => {}
            // Deleted since the listing (a prune superseded it).
            Err(Error::Remote { kind: RemoteFailure::NotFound, .. }) => continue,
            Err(e) => return Err(e),
        }
        let actual = IndexFile::id_of(&bytes);
        if actual != *id {
            salvaged.extend(IndexFile::parse(&bytes, &name).ok());
            damaged.push(Damaged { name, error: format!("its bytes hash to {actual}, not its name") });
            continue;
        }
        match IndexFile::parse(&bytes, &name) {
            Ok(file) => files.push((*id, file)),
            Err(e) => damaged.push(Damaged { name, error: e.to_string() }),
        }
    }
    let superseded: HashSet<IndexId> = files.iter().flat_map(|(_, f)| f.supersedes.iter().copied()).collect();
    files.retain(|(id, _)| !superseded.contains(id));
    Ok(Indexes { files, listed, damaged, salvaged })
}

/// An object that was not converted.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub id: String,
    pub error: String,
}

/// What an upgrade did.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub remote: String,
    /// The layout it had before.
    pub from_layout: u64,
    /// A layout-2 remote with nothing under `objects/`: nothing was done.
    pub already: bool,
    /// Objects converted by this run, and the bytes of their object files.
    pub objects: u64,
    pub bytes_before: u64,
    /// Bytes of the packs and index files this run wrote.
    pub bytes_after: u64,
    /// Object files found on a remote that was layout 2 already (a killed upgrade's).
    pub leftovers: u64,
    /// Object files deleted (converted by this run or an earlier one).
    pub deleted: u64,
    /// Objects whose content does not match their id: left under `objects/`, not converted.
    pub corrupt: Vec<Skipped>,
    /// Objects that could not be read.
    pub failed: Vec<Skipped>,
    pub seconds: f64,
}

/// Convert remote `remote` to layout 2, downloading over `jobs` connections into the
/// cache's temp folder. Holds an exclusive lock throughout.
pub fn upgrade(
    cache: &Cache,
    remote: &dyn Remote,
    jobs: Option<usize>,
    reporter: &dyn Reporter,
) -> Result<Report> {
    let started = Instant::now();
    let name = remote.name();
    let mut conn = remote.connect()?;
    let layout = match read_layout(conn.as_mut())? {
        Some(text) => check_layout(name, &text)?,
        None => {
            return Err(Error::remote(
                name,
                RemoteFailure::NotFound,
                format!(
                    "{} has no TROVE_REMOTE: nothing was pushed to it, so there is nothing to upgrade",
                    remote.url()
                ),
            ));
        }
    };
    let mut report = Report { remote: name.to_string(), from_layout: layout, ..Report::default() };
    if layout == 2 && conn.list_dirs("objects")?.is_empty() {
        report.already = true;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let lock = locks::acquire(conn.as_mut(), name, locks::Kind::Exclusive)?;
    let pool = Pool::new(remote, conn, jobs.unwrap_or_else(|| remote.default_jobs()));
    let result = convert(cache, &pool, &lock, layout, &mut report, reporter);
    // Released on failure too; a lock left by a kill is stale once its process is gone.
    if let Ok(mut c) = pool.fresh_connection() {
        let _ = crate::remote::clean_temps(c.as_mut());
        let _ = lock.release(c.as_mut());
    }
    result?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn convert(
    cache: &Cache,
    pool: &Pool,
    lock: &locks::Lock,
    layout: u64,
    report: &mut Report,
    reporter: &dyn Reporter,
) -> Result<()> {
    let name = pool.remote_name();
    let mut c = pool.connection()?;
    let indexes = read_indexes(c.as_mut())?;
    if let Some(d) = indexes.damaged.first() {
        return Err(Error::remote(
            name,
            RemoteFailure::Corrupt,
            format!(
                "{} is damaged ({}); run `trove verify --remote {name} --repair` before upgrading",
                d.name, d.error
            ),
        ));
    }
    let mut indexed: HashSet<ObjectKey> = HashSet::new();
    let mut known = HashSet::new();
    for (_, f) in &indexes.files {
        indexed.extend(f.objects.iter().map(|o| o.key));
        known.extend(f.packs.iter().flat_map(|p| p.entries.iter().map(|e| e.chunk)));
    }
    let mut packer = Packer::new(known);
    pool.idle(c);
    let first = round(cache, pool, lock, &mut packer, &mut indexed, report, reporter)?;
    if !report.failed.is_empty() {
        // Switching now would hide the unread objects from layout-2 clients.
        return Ok(());
    }
    if layout == 2 {
        report.leftovers = first as u64;
    } else {
        let mut c = pool.connection()?;
        c.replace(LAYOUT_FILE, layout_text(2).as_bytes())?;
        pool.idle(c);
    }
    // Layout-1 pushes that ran meanwhile (they take no lock) may have added objects.
    round(cache, pool, lock, &mut packer, &mut indexed, report, reporter)?;
    let mut c = pool.connection()?;
    c.flush()?;
    // Every object file whose object an index names goes, then the emptied folders.
    let listed = layout1::list_all(c.as_mut())?;
    let doomed: Vec<ObjectKey> = listed.iter().map(|(k, _)| *k).filter(|k| indexed.contains(k)).collect();
    pool.idle(c);
    let deleted = pool.run(&doomed, |c, k| layout1::delete(c, k))?;
    for r in deleted {
        r?;
        report.deleted += 1;
    }
    let mut c = pool.connection()?;
    for prefix in c.list_dirs("objects")? {
        c.remove_empty_dir(&join("objects", &prefix))?;
    }
    c.remove_empty_dir("objects")?;
    pool.idle(c);
    Ok(())
}

/// List `objects/` and convert every object the index lacks; returns how many object
/// files were listed.
fn round(
    cache: &Cache,
    pool: &Pool,
    lock: &locks::Lock,
    packer: &mut Packer,
    indexed: &mut HashSet<ObjectKey>,
    report: &mut Report,
    reporter: &dyn Reporter,
) -> Result<usize> {
    let mut c = pool.connection()?;
    let listed = layout1::list_all(c.as_mut())?;
    let mut todo: Vec<(ObjectKey, u64)> =
        listed.iter().filter(|(k, _)| !indexed.contains(k)).copied().collect();
    // Manifests last: a manifest in the index promises its files are there.
    todo.sort_by_key(|(k, _)| k.is_manifest());
    let skipped: HashSet<String> =
        report.corrupt.iter().chain(&report.failed).map(|s| s.id.clone()).collect();
    todo.retain(|(k, _)| !skipped.contains(&k.display()));
    reporter.start("converting", todo.len() as u64, todo.iter().map(|(_, s)| s).sum());
    let mut batches: Vec<&[(ObjectKey, u64)]> = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, (_, size)) in todo.iter().enumerate() {
        if i > start && (i - start >= BATCH_OBJECTS || bytes + size > BATCH_BYTES) {
            batches.push(&todo[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < todo.len() {
        batches.push(&todo[start..]);
    }
    let result = (|| {
        for batch in batches {
            crate::interrupt::check()?;
            let got = pool.run(batch, |c, (k, size)| download_checked(cache, c, k, *size))?;
            // After a failure the rest of the batch's temps are only removed.
            let mut stop = None;
            for ((k, size), r) in batch.iter().zip(got) {
                match r {
                    Ok(temp) => {
                        if stop.is_none() {
                            match packer.add_file(c.as_mut(), *k, &temp, *size) {
                                Ok(()) => {
                                    report.objects += 1;
                                    report.bytes_before += size;
                                }
                                Err(e) => stop = Some(e),
                            }
                        }
                        let _ = fs::remove_file(&temp);
                    }
                    Err(Error::CorruptObject { id, actual }) => {
                        report.corrupt.push(Skipped { id, error: format!("its content hashes to {actual}") })
                    }
                    Err(e @ Error::Interrupted { .. }) => {
                        stop.get_or_insert(e);
                    }
                    Err(e) => report.failed.push(Skipped { id: k.display(), error: e.to_string() }),
                }
                reporter.advance(1, *size);
            }
            if let Some(e) = stop {
                return Err(e);
            }
            lock.refresh(c.as_mut())?;
            if packer.unindexed_packs() >= INDEX_EVERY_PACKS {
                indexed.extend(packer.write_index(c.as_mut(), Vec::new(), Vec::new(), Vec::new())?);
            }
        }
        packer.flush_pack(c.as_mut())?;
        indexed.extend(packer.write_index(c.as_mut(), Vec::new(), Vec::new(), Vec::new())?);
        Ok(())
    })();
    reporter.finish();
    report.bytes_after = packer.written;
    pool.idle(c);
    result.map(|()| listed.len())
}

/// Download object `k` into a cache temp file, checked against its id.
fn download_checked(cache: &Cache, c: &mut dyn Backend, k: &ObjectKey, size: u64) -> Result<PathBuf> {
    let (file, temp) = cache.temp_file(&k.id)?;
    let result = (|| {
        let mut out = layout1::Hashing::new(std::io::BufWriter::new(file));
        layout1::download(c, k, Some(size), &mut out)?;
        out.flush().at(&temp)?;
        super::check_id(k, out.id())
    })();
    match result {
        Ok(()) => Ok(temp),
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::ObjectId;
    use crate::pack::chunker::tests::pseudo_random;
    use crate::remote::local::FolderRemote;
    use crate::remote::{Remote, Settings};

    fn folder() -> (tempfile::TempDir, Box<dyn Backend>) {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings { name: "t".into(), url: "t".into(), ..Settings::default() };
        let remote = FolderRemote::new(&settings, dir.path().join("remote"));
        let mut c = remote.connect().unwrap();
        c.create_root().unwrap();
        (dir, c)
    }

    fn file(dir: &Path, name: &str, data: &[u8]) -> (ObjectKey, PathBuf) {
        let path = dir.join(name);
        fs::write(&path, data).unwrap();
        (ObjectKey::file(ObjectId::of_bytes(data)), path)
    }

    #[test]
    fn an_object_is_indexed_only_once_the_pack_of_its_chunks_is_uploaded() {
        let (dir, mut c) = folder();
        let data = pseudo_random(3 << 20, 1);
        let (key, path) = file(dir.path(), "a", &data);
        let mut packer = Packer::new(HashSet::new());
        packer.add_file(c.as_mut(), key, &path, data.len() as u64).unwrap();
        // Its chunks are still in the pack being written: no index may name it yet.
        assert!(packer.write_index(c.as_mut(), Vec::new(), Vec::new(), Vec::new()).unwrap().is_empty());
        assert!(c.list(INDEX).unwrap().is_empty());
        packer.flush_pack(c.as_mut()).unwrap();
        assert_eq!(packer.write_index(c.as_mut(), Vec::new(), Vec::new(), Vec::new()).unwrap(), vec![key]);

        let indexes = read_indexes(c.as_mut()).unwrap();
        assert!(indexes.damaged.is_empty());
        let [(_, f)] = indexes.files.as_slice() else { panic!("one index file") };
        let [pack] = f.packs.as_slice() else { panic!("one pack") };
        let [object] = f.objects.as_slice() else { panic!("one object") };
        assert!(object.chunks.len() > 1, "3 MiB makes several chunks");
        let raw: u64 = pack.entries.iter().map(|e| u64::from(e.raw_len)).sum();
        assert_eq!((object.size, raw), (data.len() as u64, data.len() as u64));
        // The pack on the remote is the one the index describes.
        let mut bytes = Vec::new();
        c.read(&pack_path(&pack.id), None, &mut bytes).unwrap();
        assert_eq!(pack::PackId::of_bytes(&bytes), pack.id);
        let pack::Tail::Entries(entries) = pack::parse_tail(&bytes, bytes.len() as u64, "p").unwrap() else {
            panic!("whole pack given")
        };
        assert_eq!(entries, pack.entries);

        // Chunks the remote has are not packed again.
        let known = pack.entries.iter().map(|e| e.chunk).collect();
        let mut again = Packer::new(known);
        again.add_file(c.as_mut(), key, &path, data.len() as u64).unwrap();
        again.flush_pack(c.as_mut()).unwrap();
        assert_eq!(again.unindexed_packs(), 0);
        assert_eq!(again.write_index(c.as_mut(), Vec::new(), Vec::new(), Vec::new()).unwrap(), vec![key]);
    }

    #[test]
    fn a_damaged_index_file_is_named_and_what_still_parses_is_salvaged() {
        let (dir, mut c) = folder();
        let data = pseudo_random(1000, 2);
        let (key, path) = file(dir.path(), "a", &data);
        let mut packer = Packer::new(HashSet::new());
        packer.add_file(c.as_mut(), key, &path, 1000).unwrap();
        packer.flush_pack(c.as_mut()).unwrap();
        packer.write_index(c.as_mut(), Vec::new(), Vec::new(), Vec::new()).unwrap();
        let listed = c.list(INDEX).unwrap();
        let name = join(INDEX, &listed[0].name);
        let mut bytes = Vec::new();
        c.read(&name, None, &mut bytes).unwrap();
        let on_disk = dir.path().join("remote").join(&name);
        let rewrite = |bytes: &[u8]| {
            fs::remove_file(&on_disk).unwrap();
            fs::write(&on_disk, bytes).unwrap();
        };
        // A flipped byte in the first entry's chunk id (after the magic, the supersedes
        // and pack counts, the pack id and the entry count): it still parses.
        let mut flipped = bytes.clone();
        flipped[8 + 4 + 4 + 32 + 4] ^= 1;
        rewrite(&flipped);
        let indexes = read_indexes(c.as_mut()).unwrap();
        assert!(indexes.files.is_empty());
        assert_eq!(indexes.damaged[0].name, name);
        assert!(indexes.damaged[0].error.contains("not its name"), "{}", indexes.damaged[0].error);
        assert_eq!(indexes.salvaged.len(), 1, "what still parses is kept, to be checked");
        assert_ne!(indexes.salvaged[0].packs[0].entries[0].chunk, ChunkId::of_bytes(&data));
        assert_eq!(indexes.listed.len(), 1);

        // Bytes after the objects: it no longer parses at all.
        bytes.push(0);
        rewrite(&bytes);
        let indexes = read_indexes(c.as_mut()).unwrap();
        assert_eq!(indexes.damaged.len(), 1);
        assert!(indexes.salvaged.is_empty(), "trailing bytes do not parse");
    }
}
