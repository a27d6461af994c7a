//! Remote layout 2: content-defined chunks, compressed where that pays, in write-once
//! pack files, found through write-once index files (formats in [`crate::pack`]).
//!
//! ```text
//! TROVE_REMOTE          layout: 2
//! packs/<2 hex>/<64 hex>  pack files, named by the BLAKE3 of their bytes
//! index/<64 hex>        index files, named by the BLAKE3 of their bytes
//! locks/                push and prune locks (see `store::locks`)
//! tmp/                  uploads in flight
//! ```
//!
//! The client keeps a copy of every index file under `.trove/state/remotes/<remote>/`
//! and, on opening the remote, lists `index/` once to learn which are new and which a
//! prune removed: whether the remote has an object then costs no round trip.
//!
//! A push chunks each object, puts the chunks the remote lacks into packs, uploads the
//! packs, and only then writes an index naming them and the objects they complete: a
//! crash leaves unreferenced packs at worst, never an index entry without its data.
//! Index files are written one at a time by a push, so an object is never named before
//! the packs of its chunks. A fetch reads only the chunks the local cache cannot supply,
//! with ranged reads of the packs, and re-hashes every object as a whole before it
//! enters the cache.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use super::locks::{self, Lock};
use super::{Outcomes, Stage, Store, check_id};
use crate::cache::{Cache, Staged};
use crate::error::{Error, IoContext, RemoteFailure, Result};
use crate::hash::{ObjectId, ObjectKey};
use crate::manifest::Manifest;
use crate::pack::{
    self, ChunkId, ChunkLocation, IndexFile, IndexId, ObjectRecord, PackId, PackRecord, PackWriter,
    RemoteIndex,
};
use crate::progress::Reporter;
use crate::remote::backend::{Backend, join};
use crate::remote::pool::Pool;
use crate::repo::Repo;

pub const PACKS: &str = "packs";
pub const INDEX: &str = "index";

/// A push writes an index after this many new packs, so a killed push keeps (and a rerun
/// skips) what it uploaded before.
const INDEX_EVERY_PACKS: usize = 8;
/// Reads of a pack are merged across gaps up to this size (reading a gap costs less
/// than another request)...
const READ_GAP: u64 = 64 << 10;
/// ... into reads of at most this much.
const READ_MAX: u64 = 8 << 20;
/// Reads of one large object requested at once while it is assembled (at most this many
/// times [`READ_MAX`] bytes held).
const ASSEMBLE_READS: usize = 4;
/// A batch of ranged reads (pipelined over one connection) holds about this much.
const BATCH_BYTES: u64 = 16 << 20;

/// `packs/<2 hex>/<64 hex>`.
pub fn pack_path(id: &PackId) -> String {
    let hex = id.to_hex();
    format!("{PACKS}/{}/{hex}", &hex[..2])
}

/// `index/<64 hex>`.
pub fn index_path(id: &IndexId) -> String {
    join(INDEX, &id.to_hex())
}

/// A layout-2 remote opened for transfers.
pub struct Layout2<'a> {
    pool: Pool<'a>,
    index: RwLock<RemoteIndex>,
    /// Where this client keeps its copies of the remote's index files.
    cache_dir: PathBuf,
    /// A push's shared lock, released at the end of the push (or when dropped).
    lock: Mutex<Option<Lock>>,
    /// Held while a push writes an index file: one at a time, in order.
    index_writer: Mutex<()>,
    /// Index files on the remote left out as damaged, with why: the objects only they name
    /// are reported corrupt, naming them, while everything else still transfers; a push
    /// writing the same index replaces the damaged file (a write-once write would keep it).
    damaged: Vec<(IndexId, String)>,
}

/// Where the index files of remote `url` are cached: one folder per URL.
fn cache_dir_of(repo: &Repo, url: &str) -> PathBuf {
    let tag = blake3::hash(url.as_bytes()).to_hex();
    repo.trove_dir.join("state").join("remotes").join(&tag.as_str()[..16])
}

impl<'a> Layout2<'a> {
    /// Refresh the cached index (one listing of `index/`, then only the new files), load
    /// it. A push takes its lock later, in `begin_writing`.
    /// `preloaded`: the index made from this client's copies while the connection was
    /// being opened ([`preload`]), used when the remote lists exactly those files.
    pub fn open(repo: &Repo, pool: Pool<'a>, preloaded: Option<Preloaded>) -> Result<Self> {
        let cache_dir = cache_dir_of(repo, pool.remote_url());
        let mut store = Layout2 {
            index: RwLock::new(RemoteIndex::default()),
            cache_dir,
            lock: Mutex::new(None),
            index_writer: Mutex::new(()),
            damaged: Vec::new(),
            pool,
        };
        // A push locks only once it has something to send (`begin_writing`), and then
        // reads the index again: a push with nothing new writes nothing, and needs none.
        let (index, damaged) = store.load_index_with(preloaded)?;
        *store.index.write().expect("index") = index;
        store.damaged = damaged;
        Ok(store)
    }

    fn name(&self) -> &str {
        self.pool.remote_name()
    }

    fn corrupt(&self, message: String) -> Error {
        Error::remote(self.name(), RemoteFailure::Corrupt, message)
    }

    /// The index files on the remote, read from the local copies where there are some,
    /// and why damaged ones were left out.
    fn load_index(&self) -> Result<(RemoteIndex, Vec<(IndexId, String)>)> {
        self.load_index_with(None)
    }

    /// [`Layout2::load_index`], starting from what [`preload`] made when there is that.
    fn load_index_with(
        &self,
        mut preloaded: Option<Preloaded>,
    ) -> Result<(RemoteIndex, Vec<(IndexId, String)>)> {
        // An index file listed but gone when read was removed by a prune meanwhile (which
        // wrote the index replacing it first): list again.
        for _ in 0..4 {
            match self.load_index_once(preloaded.take()) {
                Err(Error::Remote { kind: RemoteFailure::NotFound, .. }) => continue,
                other => return other,
            }
        }
        self.load_index_once(None).map_err(|e| match e {
            Error::Remote { kind: RemoteFailure::NotFound, remote, message } => Error::Remote {
                remote,
                kind: RemoteFailure::Io,
                message: format!(
                    "its index files kept changing while they were read (a prune may be running): {message}; run the command again"
                ),
            },
            e => e,
        })
    }

    fn load_index_once(&self, preloaded: Option<Preloaded>) -> Result<(RemoteIndex, Vec<(IndexId, String)>)> {
        let mut conn = self.pool.connection()?;
        let listed: Vec<IndexId> = conn.list(INDEX)?.iter().filter_map(|l| l.name.parse().ok()).collect();
        // Nothing new on the remote and nothing gone: the copies are the index.
        if let Some(p) = preloaded
            && p.files.len() == listed.len()
            && listed.iter().all(|id| p.files.contains(id))
        {
            self.pool.idle(conn);
            return Ok((p.index, Vec::new()));
        }
        let _ = fs::create_dir_all(&self.cache_dir);
        let cached: HashSet<IndexId> = match fs::read_dir(&self.cache_dir) {
            Ok(rd) => rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect(),
            Err(_) => HashSet::new(),
        };
        // Copies of index files a prune removed from the remote.
        let on_remote: HashSet<IndexId> = listed.iter().copied().collect();
        for gone in cached.difference(&on_remote) {
            let _ = fs::remove_file(self.cache_dir.join(gone.to_hex()));
        }
        let new: Vec<IndexId> = listed.iter().filter(|id| !cached.contains(id)).copied().collect();
        self.pool.idle(conn);
        let got = self.pool.run(&new, |c, id| {
            let mut bytes = Vec::new();
            c.read(&index_path(id), None, &mut bytes)?;
            self.check_index(id, &bytes)?;
            crate::atomic_file::write(&self.cache_dir.join(id.to_hex()), &bytes)?;
            Ok(())
        })?;
        let mut damaged = Vec::new();
        let mut skip = HashSet::new();
        for (id, r) in new.iter().zip(got) {
            match r {
                Ok(()) => {}
                Err(e @ Error::Remote { kind: RemoteFailure::Corrupt, .. }) => {
                    damaged.push((*id, e.to_string()));
                    skip.insert(*id);
                }
                Err(e) => return Err(e),
            }
        }
        let current: Vec<IndexId> = listed.iter().filter(|id| !skip.contains(id)).copied().collect();
        let index = merge_copies(&self.cache_dir, &current, |message| self.corrupt(message))?;
        Ok((index, damaged))
    }

    /// The error for an object no readable index names: missing, or, when index files
    /// were left out as damaged, corrupt, naming them.
    fn unindexed(&self, k: &ObjectKey) -> Error {
        if self.damaged.is_empty() {
            return Error::MissingObject { id: k.display() };
        }
        self.corrupt(format!(
            "object {} is named by no readable index file; left out: {}",
            k.display(),
            self.damaged.iter().map(|(_, why)| why.as_str()).collect::<Vec<_>>().join("; ")
        ))
    }

    /// Refuse an index file whose bytes do not match its name, or do not parse.
    fn check_index(&self, id: &IndexId, bytes: &[u8]) -> Result<IndexFile> {
        if IndexFile::id_of(bytes) != *id {
            return Err(self.corrupt(format!("{} does not match its name: it is damaged", index_path(id))));
        }
        IndexFile::parse(bytes, &index_path(id)).map_err(|e| self.corrupt(e.to_string()))
    }

    /// Write an index file (after the packs it names), keep a copy, and merge it.
    fn write_index(&self, c: &mut dyn Backend, file: &IndexFile) -> Result<u64> {
        let bytes = file.encode();
        let id = IndexFile::id_of(&bytes);
        if self.damaged.iter().any(|(d, _)| *d == id) {
            c.replace(&index_path(&id), &bytes)?;
        } else {
            c.write_bytes(&index_path(&id), &bytes)?;
        }
        let _ = crate::atomic_file::write(&self.cache_dir.join(id.to_hex()), &bytes);
        self.index.write().expect("index").add(id, file);
        Ok(bytes.len() as u64)
    }

    /// The bytes of chunks `wanted` (each with its location), read from their packs in
    /// as few ranged reads as the gaps between them allow. Calls `each(position in
    /// wanted, raw bytes)` per chunk; a chunk that cannot be had gets its error.
    fn read_chunks(
        &self,
        wanted: &[(ChunkId, ChunkLocation)],
        skip: &(dyn Fn(usize) -> bool + Sync),
        each: &(dyn Fn(usize, Result<Vec<u8>>) + Sync),
        wire: &Mutex<u64>,
    ) -> Result<()> {
        // Ranges of packs: (pack, offset, length, positions of the chunks in it).
        let mut order: Vec<usize> = (0..wanted.len()).collect();
        order.sort_by_key(|&i| (wanted[i].1.pack, wanted[i].1.entry.offset));
        let mut ranges: Vec<(PackId, u64, u64, Vec<usize>)> = Vec::new();
        for i in order {
            let loc = &wanted[i].1;
            let (start, end) = (u64::from(loc.entry.offset), loc.entry.end());
            match ranges.last_mut() {
                Some((pack, offset, len, members))
                    if *pack == loc.pack
                        && start >= *offset + *len
                        && start - (*offset + *len) <= READ_GAP
                        && end - *offset <= READ_MAX =>
                {
                    *len = end - *offset;
                    members.push(i);
                }
                // The same chunk twice (two objects share it): read it again.
                _ => ranges.push((loc.pack, start, end - start, vec![i])),
            }
        }
        let mut batches: Vec<Vec<usize>> = Vec::new();
        let mut bytes = 0;
        for (r, (_, _, len, _)) in ranges.iter().enumerate() {
            if batches.last().is_none_or(|_| bytes >= BATCH_BYTES) {
                batches.push(Vec::new());
                bytes = 0;
            }
            bytes += len;
            batches.last_mut().expect("pushed").push(r);
        }
        let done = self.pool.run(&batches, |c, batch| {
            let todo: Vec<usize> =
                batch.iter().copied().filter(|&r| !ranges[r].3.iter().all(|&i| skip(i))).collect();
            let reads: Vec<(String, u64, u64)> =
                todo.iter().map(|&r| (pack_path(&ranges[r].0), ranges[r].1, ranges[r].2)).collect();
            c.read_many(&reads, &mut |j, got| {
                let (pack, offset, len, members) = &ranges[todo[j]];
                let pack_name = pack_path(pack);
                match got {
                    Ok(bytes) if bytes.len() as u64 == *len => {
                        *wire.lock().expect("wire") += *len;
                        for &i in members {
                            let entry = &wanted[i].1.entry;
                            let from = (u64::from(entry.offset) - offset) as usize;
                            let stored = &bytes[from..from + entry.stored_len as usize];
                            each(i, pack::decode_chunk(stored, entry, &pack_name).map_err(|e| self.corrupt(e.to_string())));
                        }
                    }
                    Ok(bytes) => {
                        for &i in members {
                            each(
                                i,
                                Err(self.corrupt(format!(
                                    "{pack_name} is shorter than the index says ({} bytes at {offset}: got {})",
                                    len,
                                    bytes.len()
                                ))),
                            );
                        }
                    }
                    Err(Error::Remote { kind: RemoteFailure::NotFound, .. }) => {
                        for &i in members {
                            each(i, Err(self.corrupt(format!("{pack_name}, which the index lists, is missing"))));
                        }
                    }
                    Err(e) => {
                        for &i in members {
                            each(i, Err(e.again(self.name())));
                        }
                    }
                }
            })
        })?;
        // A batch that failed as a whole (its connection) fails the chunks it did not deliver.
        for (batch, r) in batches.iter().zip(done) {
            if let Err(e) = r {
                for &r in batch {
                    for &i in &ranges[r].3 {
                        if !skip(i) {
                            each(i, Err(e.again(self.name())));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Chunks this cache holds as parts of objects the remote index describes: chunk →
    /// (object file, offset, length). A one-chunk object's chunk id is its own id, so
    /// those need no entry here (see [`Self::local_chunk`]).
    fn local_chunks(&self, cache: &Cache) -> HashMap<ChunkId, (PathBuf, u64, u32)> {
        let index = self.index.read().expect("index");
        let mut out = HashMap::new();
        for (key, _, chunks) in index.objects() {
            if chunks.len() < 2 || key.is_manifest() || !cache.has_object(&key.id) {
                continue;
            }
            let path = cache.path_of(&key);
            let mut offset = 0u64;
            for c in chunks {
                let Some(loc) = index.chunk(c) else { break };
                out.entry(*c).or_insert_with(|| (path.clone(), offset, loc.entry.raw_len));
                offset += u64::from(loc.entry.raw_len);
            }
        }
        out
    }
}

/// What the reader of an object's chunks hands its writer, in the object's order.
enum Piece {
    /// A chunk the cache had, raw.
    Local(Vec<u8>),
    /// `bytes` of pack `name` from `start`: the stored chunks `i..j` of the plan.
    Fetched { i: usize, j: usize, start: u64, name: String, bytes: Vec<u8> },
}

/// One ranged read through [`Backend::read_many`], which a backend with round trips
/// pipelines (over SFTP many requests in flight on one channel, where a plain read waits
/// for each answer).
fn read_pipelined(c: &mut dyn Backend, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
    let mut got = None;
    c.read_many(&[(path.to_string(), offset, len)], &mut |_, r| got = Some(r))?;
    got.unwrap_or_else(|| c.read_range(path, offset, len))
}

/// The index made from a client's copies of a remote's index files, before the remote
/// was asked which files it has (see [`preload`]).
pub struct Preloaded {
    files: HashSet<IndexId>,
    index: RemoteIndex,
}

/// Make `reads` over `c` and the `extra` connections at once, a run of them on each, and
/// give back what each returned (`None`: not reported). A failed extra connection is
/// dropped, its unreported reads left to the caller; a failed `c` is the error.
fn read_spread(
    c: &mut dyn Backend,
    extra: &mut Vec<Box<dyn Backend>>,
    reads: &[(String, u64, u64)],
) -> Result<Vec<Option<Result<Vec<u8>>>>> {
    let mut got: Vec<Option<Result<Vec<u8>>>> = (0..reads.len()).map(|_| None).collect();
    let streams = (extra.len() + 1).min(reads.len());
    if streams <= 1 {
        c.read_many(reads, &mut |r, bytes| got[r] = Some(bytes))?;
        return Ok(got);
    }
    let per = reads.len().div_ceil(streams);
    let outcomes: Vec<Result<()>> = std::thread::scope(|s| {
        let mut conns: Vec<&mut dyn Backend> = vec![c];
        for b in extra.iter_mut() {
            conns.push(b.as_mut());
        }
        let workers: Vec<_> = conns
            .into_iter()
            .zip(reads.chunks(per).zip(got.chunks_mut(per)))
            .map(|(conn, (reads, got))| {
                s.spawn(move || {
                    crate::interrupt::shield_this_thread();
                    conn.read_many(reads, &mut |r, bytes| got[r] = Some(bytes))
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("a reader of a large object panicked")).collect()
    });
    let mut outcomes = outcomes.into_iter();
    outcomes.next().expect("c read")?;
    extra.retain(|_| outcomes.next().is_none_or(|r| r.is_ok()));
    Ok(got)
}

/// Read this client's copies of remote `url`'s index files into an index, as
/// [`Layout2::open`] would once the remote lists the same files: run beside the SSH login,
/// it takes the reading off a no-op push's and `status --remote`'s path. `None` when there
/// are no copies or one cannot be read (the usual way then reads them).
pub fn preload(repo: &Repo, url: &str) -> Option<Preloaded> {
    let dir = cache_dir_of(repo, url);
    let files: HashSet<IndexId> =
        fs::read_dir(&dir).ok()?.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
    if files.is_empty() {
        return None;
    }
    let ids: Vec<IndexId> = files.iter().copied().collect();
    let index =
        merge_copies(&dir, &ids, |message| Error::remote(url, RemoteFailure::Corrupt, message)).ok()?;
    Some(Preloaded { files, index })
}

/// Merge this client's copies (in `dir`) of index files `ids` into one index. Files that
/// supersede others (a prune's) go first, so the ones they replace are skipped rather
/// than merged and then found stale. Each file is read once; `corrupt` words a copy that
/// does not parse.
fn merge_copies(dir: &Path, ids: &[IndexId], corrupt: impl Fn(String) -> Error) -> Result<RemoteIndex> {
    let (first, then): (Vec<IndexId>, Vec<IndexId>) =
        ids.iter().partition(|id| supersedes_others(&dir.join(id.to_hex())));
    let mut index = RemoteIndex::default();
    for id in first.iter().chain(&then) {
        let path = dir.join(id.to_hex());
        let bytes = fs::read(&path).at(&path)?;
        let file = IndexFile::parse(&bytes, &index_path(id)).map_err(|e| corrupt(e.to_string()))?;
        index.add(*id, &file);
    }
    Ok(index)
}

/// Whether the index file at `path` has a `supersedes` list (its count follows the
/// 8-byte magic): only its first 12 bytes are read.
fn supersedes_others(path: &Path) -> bool {
    let mut head = [0u8; 12];
    fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && head[8..12] != [0, 0, 0, 0]
}

/// The index of the files no other listed file supersedes. A prune killed before it
/// deleted the files its new index replaces leaves them listed; merged, their records
/// would name chunks in packs the prune's rerun deletes, so a push would reuse them.
pub(crate) fn merge_current(files: &[(IndexId, IndexFile)]) -> RemoteIndex {
    let superseded: HashSet<IndexId> = files.iter().flat_map(|(_, f)| f.supersedes.iter().copied()).collect();
    let mut index = RemoteIndex::default();
    for (id, file) in files.iter().filter(|(id, _)| !superseded.contains(id)) {
        index.add(*id, file);
    }
    index
}

/// A chunk read from the local cache, when it is there and sound: as a part of a cached
/// object (`local`), or as a whole cached object (a one-chunk file's id is its chunk's).
fn local_chunk(
    cache: &Cache,
    local: &HashMap<ChunkId, (PathBuf, u64, u32)>,
    id: &ChunkId,
    raw_len: u32,
) -> Option<Vec<u8>> {
    let (path, offset, len) = match local.get(id) {
        Some((p, o, l)) => (p.clone(), *o, *l),
        None => {
            let whole = cache.object_path(&ObjectId::from_bytes(*id.as_bytes()));
            (whole, 0, raw_len)
        }
    };
    if len != raw_len {
        return None;
    }
    let mut f = fs::File::open(&path).ok()?;
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(offset)).ok()?;
    let mut bytes = vec![0; len as usize];
    f.read_exact(&mut bytes).ok()?;
    // A damaged cached object must not spread into a new one.
    (ChunkId::of_bytes(&bytes) == *id).then_some(bytes)
}

/// What a push has chunked and uploaded so far.
struct Pushing {
    /// Chunks put into this push's packs, with the pack (by number) that holds them.
    claimed: HashMap<ChunkId, u32>,
    /// Packs uploaded, not yet named by an index file written.
    unindexed: Vec<PackRecord>,
    /// Pack numbers uploaded; those that failed, with why.
    uploaded: HashSet<u32>,
    failed: HashMap<u32, Error>,
    /// Objects chunked: (item, record, packs it needs), waiting for their packs.
    waiting: Vec<(usize, ObjectRecord, Vec<u32>)>,
    /// Objects whose packs are all uploaded, for the next index.
    complete: Vec<(usize, ObjectRecord)>,
    /// Outcomes decided (items failed, or indexed).
    outcomes: Vec<Option<Result<()>>>,
    wire: u64,
}

/// Where an object's chunks come from: a file smaller than the smallest chunk is one
/// chunk, read whole (the chunker would cut it the same way, after allocating a buffer
/// of the largest chunk's size for it); a larger one goes through the chunker.
enum Source {
    Whole(Option<Vec<u8>>),
    Chunker(pack::Chunks<fs::File>),
}

impl Source {
    fn open(path: &Path, size: u64) -> std::io::Result<Source> {
        if size < u64::from(pack::CHUNK_MIN) {
            return Ok(Source::Whole(Some(fs::read(path)?).filter(|b| !b.is_empty())));
        }
        Ok(Source::Chunker(pack::chunks(fs::File::open(path)?, &path.to_string_lossy())))
    }

    fn next(&mut self) -> Option<Result<pack::Chunk>> {
        match self {
            Source::Whole(bytes) => {
                bytes.take().map(|data| Ok(pack::Chunk { offset: 0, id: ChunkId::of_bytes(&data), data }))
            }
            Source::Chunker(chunks) => chunks.next(),
        }
    }
}

/// An object being chunked: its item, key, size, chunker, chunk ids so far, and the
/// packs (by number) its chunks are in.
struct Chunking {
    item: usize,
    key: ObjectKey,
    size: u64,
    chunks: Source,
    ids: Vec<ChunkId>,
    deps: Vec<u32>,
}

/// Chunking objects into packs, one chunk at a time, for the uploaders to take.
struct Producer<'c> {
    items: std::slice::Iter<'c, (ObjectKey, u64)>,
    next_item: usize,
    current: Option<Chunking>,
    writer: PackWriter,
    seq: u32,
    ready: VecDeque<(u32, pack::FinishedPack)>,
    finished: bool,
}

impl Layout2<'_> {
    /// The next finished pack, chunking objects until one is ready.
    fn next_pack(
        &self,
        cache: &Cache,
        producer: &mut Producer,
        state: &Mutex<Pushing>,
    ) -> Option<(u32, pack::FinishedPack)> {
        loop {
            if let Some(p) = producer.ready.pop_front() {
                return Some(p);
            }
            if producer.finished || crate::interrupt::signal().is_some() {
                return None;
            }
            if producer.current.is_none() {
                match producer.items.next() {
                    Some((key, size)) => {
                        let i = producer.next_item;
                        producer.next_item += 1;
                        let path = cache.path_of(key);
                        match Source::open(&path, *size) {
                            Ok(chunks) => {
                                producer.current = Some(Chunking {
                                    item: i,
                                    key: *key,
                                    size: *size,
                                    chunks,
                                    ids: Vec::new(),
                                    deps: Vec::new(),
                                });
                            }
                            Err(e) => {
                                let err = match e.kind() {
                                    std::io::ErrorKind::NotFound => {
                                        Error::MissingObject { id: key.display() }
                                    }
                                    _ => Error::io(&path, e),
                                };
                                state.lock().expect("push").outcomes[i] = Some(Err(err));
                            }
                        }
                        continue;
                    }
                    None => {
                        if !producer.writer.is_empty() {
                            let full = std::mem::take(&mut producer.writer);
                            producer.ready.push_back((producer.seq, full.finish()));
                            producer.seq += 1;
                        }
                        producer.finished = true;
                        continue;
                    }
                }
            }
            let Chunking { item: i, key, size, chunks, ids, deps } =
                producer.current.as_mut().expect("current object");
            match chunks.next() {
                Some(Ok(chunk)) => {
                    ids.push(chunk.id);
                    let known = self.index.read().expect("index").has_chunk(&chunk.id);
                    let mut s = state.lock().expect("push");
                    if known {
                        continue;
                    }
                    if let Some(&seq) = s.claimed.get(&chunk.id) {
                        if !deps.contains(&seq) {
                            deps.push(seq);
                        }
                        continue;
                    }
                    s.claimed.insert(chunk.id, producer.seq);
                    drop(s);
                    if !deps.contains(&producer.seq) {
                        deps.push(producer.seq);
                    }
                    if let Err(e) = producer.writer.add(chunk.id, &chunk.data) {
                        state.lock().expect("push").outcomes[*i] = Some(Err(e));
                        producer.current = None;
                        continue;
                    }
                    if producer.writer.len() >= pack::PACK_TARGET {
                        let full = std::mem::take(&mut producer.writer);
                        producer.ready.push_back((producer.seq, full.finish()));
                        producer.seq += 1;
                    }
                }
                Some(Err(e)) => {
                    state.lock().expect("push").outcomes[*i] = Some(Err(e));
                    producer.current = None;
                }
                None => {
                    let record = ObjectRecord { key: *key, size: *size, chunks: std::mem::take(ids) };
                    let deps = std::mem::take(deps);
                    let i = *i;
                    producer.current = None;
                    state.lock().expect("push").waiting.push((i, record, deps));
                }
            }
        }
    }

    /// Move waiting objects whose packs are all uploaded to `complete` (and report them);
    /// fail those a failed pack held chunks of.
    fn settle(&self, s: &mut Pushing, reporter: &dyn Reporter) {
        let waiting = std::mem::take(&mut s.waiting);
        for (i, record, deps) in waiting {
            if let Some(why) = deps.iter().find_map(|d| s.failed.get(d)) {
                s.outcomes[i] = Some(Err(why.again(self.name())));
            } else if deps.iter().all(|d| s.uploaded.contains(d)) {
                reporter.advance(1, record.size);
                s.complete.push((i, record));
            } else {
                s.waiting.push((i, record, deps));
            }
        }
    }

    /// Write an index of the packs uploaded and the objects they complete (one index
    /// write at a time, so an object never appears before its packs' index).
    fn flush_index(&self, c: &mut dyn Backend, state: &Mutex<Pushing>, objects: bool) -> Result<()> {
        let _writing = self.index_writer.lock().expect("index writer");
        let (packs, complete) = {
            let mut s = state.lock().expect("push");
            let complete = if objects { std::mem::take(&mut s.complete) } else { Vec::new() };
            (std::mem::take(&mut s.unindexed), complete)
        };
        if packs.is_empty() && complete.is_empty() {
            return Ok(());
        }
        let file = IndexFile {
            supersedes: Vec::new(),
            packs: packs.clone(),
            objects: complete.iter().map(|(_, r)| r.clone()).collect(),
        };
        match self.write_index(c, &file) {
            Ok(bytes) => {
                let mut s = state.lock().expect("push");
                s.wire += bytes;
                for (i, _) in &complete {
                    s.outcomes[*i] = Some(Ok(()));
                }
                Ok(())
            }
            Err(e) => {
                // Named by the next index, or by nothing: a rerun uploads them again.
                let mut s = state.lock().expect("push");
                s.unindexed.extend(packs);
                s.complete.extend(complete);
                Err(e)
            }
        }
    }
}

impl Store for Layout2<'_> {
    fn name(&self) -> &str {
        self.pool.remote_name()
    }

    fn layout(&self) -> u64 {
        2
    }

    /// Take the push's shared lock, then read the index again: a prune that ran before
    /// the lock could have removed chunks the first reading showed, which the push would
    /// then not send.
    fn begin_writing(&self) -> Result<()> {
        if self.lock.lock().expect("lock").is_some() {
            return Ok(());
        }
        let mut conn = self.pool.connection()?;
        let lock = locks::acquire(conn.as_mut(), self.pool.remote_name(), locks::Kind::Shared)?;
        *self.lock.lock().expect("lock") = Some(lock);
        self.pool.idle(conn);
        let (index, _) = self.load_index()?;
        *self.index.write().expect("index") = index;
        Ok(())
    }

    fn present(&self, keys: &[ObjectKey]) -> Result<HashSet<ObjectKey>> {
        let index = self.index.read().expect("index");
        Ok(keys.iter().filter(|k| index.has_object(k)).copied().collect())
    }

    fn manifests(&self, keys: &[ObjectKey]) -> Result<Vec<Result<Manifest>>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.small_object(k).and_then(|bytes| Manifest::parse(&bytes, &k.display())));
        }
        Ok(out)
    }

    fn upload(&self, cache: &Cache, items: &[(ObjectKey, u64)], reporter: &dyn Reporter) -> Result<Outcomes> {
        // Nothing to send starts no workers (a no-op push would start and join `jobs`
        // threads twice, about 5 ms on 2 cores).
        if items.is_empty() {
            return Ok(Outcomes { each: Vec::new(), wire: 0 });
        }
        let state = Mutex::new(Pushing {
            claimed: HashMap::new(),
            unindexed: Vec::new(),
            uploaded: HashSet::new(),
            failed: HashMap::new(),
            waiting: Vec::new(),
            complete: Vec::new(),
            outcomes: (0..items.len()).map(|_| None).collect(),
            wire: 0,
        });
        let producer = Mutex::new(Producer {
            items: items.iter(),
            next_item: 0,
            current: None,
            writer: PackWriter::new(),
            seq: 0,
            ready: VecDeque::new(),
            finished: false,
        });
        // Objects the remote already has in full (e.g. from a killed push's index) need
        // no upload; the planner asked only about whole objects.
        self.pool.run_each(
            usize::MAX,
            || self.next_pack(cache, &mut producer.lock().expect("producer"), &state),
            |c, (_, finished)| {
                c.write_bytes(&pack_path(&finished.id), &finished.bytes)?;
                if let Some(lock) = &*self.lock.lock().expect("lock") {
                    lock.refresh(c)?;
                }
                Ok(())
            },
            |c, (seq, finished), r| {
                let due = {
                    let mut s = state.lock().expect("push");
                    match r {
                        Ok(()) => {
                            s.wire += finished.bytes.len() as u64;
                            s.uploaded.insert(seq);
                            s.unindexed.push(PackRecord { id: finished.id, entries: finished.entries });
                        }
                        Err(e) => {
                            // Copied for every object it stops (errors are not `Clone`).
                            s.failed.insert(seq, e);
                        }
                    }
                    self.settle(&mut s, reporter);
                    s.unindexed.len() >= INDEX_EVERY_PACKS
                };
                if due && let Some(c) = c {
                    // Best effort: the final index names what this one could not.
                    let _ = self.flush_index(c, &state, true);
                }
            },
        )?;
        {
            let mut s = state.lock().expect("push");
            self.settle(&mut s, reporter);
        }
        let mut conn = self.pool.connection()?;
        let flushed = self.flush_index(conn.as_mut(), &state, true);
        self.pool.idle(conn);
        let s = state.into_inner().expect("push");
        let mut each = Vec::with_capacity(items.len());
        for (i, outcome) in s.outcomes.into_iter().enumerate() {
            each.push(match outcome {
                Some(Ok(())) => Ok(()),
                Some(Err(e)) => Err(e),
                None => Err(match (&flushed, crate::interrupt::signal()) {
                    (_, Some(signal)) => Error::Interrupted { signal },
                    (Err(e), _) => e.again(self.name()),
                    (Ok(()), None) => Error::remote(
                        self.name(),
                        RemoteFailure::Io,
                        format!(
                            "{} was not uploaded: an earlier failure stopped the push",
                            items[i].0.display()
                        ),
                    ),
                }),
            });
        }
        Ok(Outcomes { each, wire: s.wire })
    }

    fn download(&self, cache: &Cache, items: &[(ObjectKey, u64)], stage: &Stage<'_>) -> Result<Outcomes> {
        let outcomes: Mutex<Vec<Option<Result<()>>>> = Mutex::new((0..items.len()).map(|_| None).collect());
        let set = |i: usize, r: Result<()>| {
            outcomes.lock().expect("outcomes")[i].get_or_insert(r);
        };
        let wire = Mutex::new(0u64);
        // One-chunk objects are read in batches straight from their packs; larger ones are
        // assembled one at a time, from local chunks where the cache has them.
        let mut small: Vec<(ChunkId, ChunkLocation)> = Vec::new();
        let mut small_items: Vec<usize> = Vec::new();
        let mut large: Vec<usize> = Vec::new();
        {
            let index = self.index.read().expect("index");
            for (i, (k, _)) in items.iter().enumerate() {
                match index.object(k) {
                    None => set(i, Err(self.unindexed(k))),
                    // An empty file has no chunks.
                    Some((0, _)) => set(
                        i,
                        check_id(k, ObjectId::of_bytes(&[]))
                            .and_then(|()| cache.stage_bytes(&[], k.id))
                            .map(|s| stage(s, 0)),
                    ),
                    Some((_, [one])) => match index.chunk(one) {
                        Some(loc) => {
                            small.push((*one, loc));
                            small_items.push(i);
                        }
                        None => set(
                            i,
                            Err(self
                                .corrupt(format!("object {}: its chunk {one} is in no pack", k.display()))),
                        ),
                    },
                    Some(_) => large.push(i),
                }
            }
        }
        let done = |i: usize| outcomes.lock().expect("outcomes")[i].is_some();
        self.read_chunks(
            &small,
            &|j| done(small_items[j]),
            &|j, raw| {
                let i = small_items[j];
                let (k, size) = items[i];
                // decode_chunk checked the bytes hash to the chunk's id, which for a
                // one-chunk object is the object's own id: it was re-hashed whole.
                let r = raw.and_then(|raw| {
                    if small[j].0 != ChunkId::from(k.id) || raw.len() as u64 != size {
                        check_id(&k, ObjectId::of_bytes(&raw))?;
                    }
                    stage(cache.stage_bytes(&raw, k.id)?, size);
                    Ok(())
                });
                set(i, r);
            },
            &wire,
        )?;
        if !large.is_empty() {
            let local = self.local_chunks(cache);
            // Spare connections spread the reads of each object (SFTP on more cores).
            let streams = (self.pool.streams_per_object() / large.len()).max(1);
            let got =
                self.pool.run(&large, |c, &i| self.assemble(c, streams, cache, &local, &items[i], &wire))?;
            for (&i, r) in large.iter().zip(got) {
                set(i, r.map(|staged| stage(staged, items[i].1)));
            }
        }
        let each = outcomes
            .into_inner()
            .expect("outcomes")
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(Error::remote(self.name(), RemoteFailure::Io, "not attempted"))))
            .collect();
        Ok(Outcomes { each, wire: wire.into_inner().expect("wire") })
    }

    fn finish_push(&self, wrote: bool) -> Result<()> {
        let mut conn = self.pool.connection()?;
        let _ = crate::remote::clean_temps(conn.as_mut());
        if wrote {
            conn.flush()?;
        }
        if let Some(lock) = self.lock.lock().expect("lock").take() {
            let _ = lock.release(conn.as_mut());
        }
        Ok(())
    }

    fn abandon(&self) {
        self.pool.abandon();
        if let Some(lock) = self.lock.lock().expect("lock").take()
            && let Ok(mut conn) = self.pool.fresh_connection()
        {
            let _ = lock.release(conn.as_mut());
        }
    }
}

impl Drop for Layout2<'_> {
    /// A push that ends without `finish_push` (nothing to send, or an error) gives its
    /// lock back too.
    fn drop(&mut self) {
        if let Some(lock) = self.lock.get_mut().map(Option::take).unwrap_or_default()
            && let Ok(mut conn) = self.pool.connection()
        {
            let _ = lock.release(conn.as_mut());
        }
    }
}

impl Layout2<'_> {
    /// A small object's bytes (a manifest), checked against its id.
    fn small_object(&self, k: &ObjectKey) -> Result<Vec<u8>> {
        let (chunks, locations) = {
            let index = self.index.read().expect("index");
            let Some((_, chunks)) = index.object(k) else {
                return Err(self.unindexed(k));
            };
            let mut locations = Vec::with_capacity(chunks.len());
            for c in chunks {
                let loc = index.chunk(c).ok_or_else(|| {
                    self.corrupt(format!("object {}: its chunk {c} is in no pack", k.display()))
                })?;
                locations.push((*c, loc));
            }
            (chunks.to_vec(), locations)
        };
        let parts: Mutex<Vec<Option<Result<Vec<u8>>>>> =
            Mutex::new((0..chunks.len()).map(|_| None).collect());
        let wire = Mutex::new(0);
        self.read_chunks(&locations, &|_| false, &|j, r| parts.lock().expect("parts")[j] = Some(r), &wire)?;
        let mut bytes = Vec::new();
        for part in parts.into_inner().expect("parts") {
            bytes.extend(part.unwrap_or_else(|| Err(self.corrupt("a chunk was not read".into())))?);
        }
        check_id(k, ObjectId::of_bytes(&bytes))?;
        Ok(bytes)
    }

    /// Build one object of several chunks in a cache temp file: chunks the cache has are
    /// copied from it, the rest read from their packs (neighbours in one read, over `c`
    /// and up to `streams - 1` more connections at once); the whole is re-hashed before
    /// it is staged.
    fn assemble(
        &self,
        c: &mut dyn Backend,
        streams: usize,
        cache: &Cache,
        local: &HashMap<ChunkId, (PathBuf, u64, u32)>,
        item: &(ObjectKey, u64),
        wire: &Mutex<u64>,
    ) -> Result<Staged> {
        let (k, size) = *item;
        let plan: Vec<(ChunkId, ChunkLocation)> = {
            let index = self.index.read().expect("index");
            let (_, chunks) = index.object(&k).ok_or_else(|| self.unindexed(&k))?;
            chunks
                .iter()
                .map(|ch| {
                    index.chunk(ch).map(|loc| (*ch, loc)).ok_or_else(|| {
                        self.corrupt(format!("object {}: its chunk {ch} is in no pack", k.display()))
                    })
                })
                .collect::<Result<_>>()?
        };
        let (file, temp) = cache.temp_file(&k.id)?;
        // Runs of chunks the cache lacks that lie back to back in one pack (one read
        // each), and chunks the cache has, in the object's order.
        let mut segments: Vec<(usize, usize, bool)> = Vec::new();
        let mut i = 0;
        while i < plan.len() {
            let (id, loc) = &plan[i];
            if local.contains_key(id) {
                segments.push((i, i + 1, false));
                i += 1;
                continue;
            }
            let mut j = i + 1;
            while j < plan.len()
                && plan[j].1.pack == loc.pack
                && u64::from(plan[j].1.entry.offset) == plan[j - 1].1.entry.end()
                && plan[j].1.entry.end() - u64::from(loc.entry.offset) <= READ_MAX
                && !local.contains_key(&plan[j].0)
            {
                j += 1;
            }
            segments.push((i, j, true));
            i = j;
        }
        let range = |i: usize, j: usize| {
            let start = u64::from(plan[i].1.entry.offset);
            (pack_path(&plan[i].1.pack), start, plan[j - 1].1.entry.end() - start)
        };
        // This thread reads; another decodes, hashes and writes what arrived, so the
        // connection is never idle while a window of chunks is checked (the bytes of
        // one window wait while the next is read).
        let (tx, rx) = std::sync::mpsc::sync_channel::<Piece>(2);
        // Only connections that open are used: one that does not leaves fewer streams. An
        // object read from fewer packs than that (or mostly from the cache) takes fewer.
        let remote_reads = segments.iter().filter(|s| s.2).count();
        let mut extra: Vec<Box<dyn Backend>> =
            (1..streams.min(remote_reads)).map_while(|_| self.pool.connection().ok()).collect();
        let window_reads = ASSEMBLE_READS.max(2 * (extra.len() + 1));
        let result = std::thread::scope(|scope| {
            let writer = scope.spawn(|| -> Result<()> {
                let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
                let mut hasher = blake3::Hasher::new();
                let mut written = 0u64;
                for piece in rx {
                    let (i, j, start, name, bytes) = match piece {
                        Piece::Local(raw) => {
                            hasher.update(&raw);
                            out.write_all(&raw).at(&temp)?;
                            written += raw.len() as u64;
                            continue;
                        }
                        Piece::Fetched { i, j, start, name, bytes } => (i, j, start, name, bytes),
                    };
                    for (_, l) in &plan[i..j] {
                        let from = (u64::from(l.entry.offset) - start) as usize;
                        let raw = pack::decode_chunk(
                            &bytes[from..from + l.entry.stored_len as usize],
                            &l.entry,
                            &name,
                        )
                        .map_err(|e| self.corrupt(e.to_string()))?;
                        hasher.update(&raw);
                        out.write_all(&raw).at(&temp)?;
                        written += raw.len() as u64;
                    }
                }
                out.flush().at(&temp)?;
                if written != size {
                    return Err(Error::CorruptObject {
                        id: k.display(),
                        actual: format!("{written} bytes, not {size}"),
                    });
                }
                check_id(&k, ObjectId::from_bytes(*hasher.finalize().as_bytes()))
            });
            // A window of reads at a time, which a backend with round trips overlaps (SFTP
            // pipelines them on each connection, S3 sends them over several); sent in order.
            let read = (|| -> Result<()> {
                let mut rest = &segments[..];
                while !rest.is_empty() {
                    crate::interrupt::check()?;
                    let mut take = 0;
                    let mut remote = 0;
                    while take < rest.len() && remote < window_reads {
                        remote += usize::from(rest[take].2);
                        take += 1;
                    }
                    let (window, after) = rest.split_at(take);
                    rest = after;
                    let reads: Vec<(String, u64, u64)> =
                        window.iter().filter(|s| s.2).map(|&(i, j, _)| range(i, j)).collect();
                    // Reads no connection reported are made again on `c`, below.
                    let mut got = read_spread(c, &mut extra, &reads)?.into_iter();
                    for &(i, j, is_remote) in window {
                        let fetched = if is_remote {
                            got.next().flatten().unwrap_or_else(|| {
                                let (name, start, len) = range(i, j);
                                c.read_range(&name, start, len)
                            })
                        } else {
                            match local_chunk(cache, local, &plan[i].0, plan[i].1.entry.raw_len) {
                                Some(raw) => {
                                    if tx.send(Piece::Local(raw)).is_err() {
                                        return Ok(());
                                    }
                                    continue;
                                }
                                // The cache's copy went or changed: read it from the pack.
                                None => {
                                    let (name, start, len) = range(i, j);
                                    read_pipelined(c, &name, start, len)
                                }
                            }
                        };
                        let (name, start, len) = range(i, j);
                        let bytes = fetched.map_err(|e| match e {
                            Error::Remote { kind: RemoteFailure::NotFound, .. } => {
                                self.corrupt(format!("{name}, which the index lists, is missing"))
                            }
                            e => e,
                        })?;
                        if bytes.len() as u64 != len {
                            return Err(self.corrupt(format!("{name} is shorter than the index says")));
                        }
                        *wire.lock().expect("wire") += len;
                        // A writer that stopped has its error, reported below.
                        if tx.send(Piece::Fetched { i, j, start, name, bytes }).is_err() {
                            return Ok(());
                        }
                    }
                }
                Ok(())
            })();
            drop(tx);
            let wrote = writer.join().expect("the writer of a fetched object panicked");
            // A failed read leaves the object short: its error says why.
            read.and(wrote)
        });
        for conn in extra {
            self.pool.idle(conn);
        }
        match result {
            Ok(()) => Ok(Cache::staged(temp, k.id)),
            Err(e) => {
                let _ = fs::remove_file(&temp);
                Err(e)
            }
        }
    }
}
