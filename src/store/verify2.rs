//! `verify --remote [--repair]` on a layout-2 remote: packs against the index, and the
//! index against the objects.
//!
//! Every pack an index lists must exist, hash to its name, have a trailer listing exactly
//! the entries the index has for it, and hold chunks that decode to their ids. Every
//! object must have a location for each chunk in a sound pack, chunks whose raw lengths
//! sum to its size, and content (its chunks in order) that hashes to its id. Index files
//! whose bytes do not match their name are reported; what still parses of them is checked
//! like the rest (packs and objects are named by their content), so a repair keeps the
//! objects they name that are sound.
//!
//! A repair (under an exclusive lock) packs the sound local copies of the objects that
//! cannot be rebuilt into new packs, writes one index superseding every old one and
//! naming only sound packs, then deletes the old index files (and rewrites the new one
//! without its `supersedes`, see `check`). Damaged packs are deleted
//! before the re-upload (the same chunks may make a pack of the same name).
//! Objects with no local copy are left out of the new index: pulls report them missing.

use std::collections::{HashMap, HashSet};

use super::layout2::{PACKS, index_path, pack_path};
use super::locks;
use super::upgrade::{Damaged, Packer, read_indexes};
use crate::cache::Cache;
use crate::error::{Error, RemoteFailure, Result};
use crate::hash::{ObjectId, ObjectKey};
use crate::pack::{self, ChunkId, IndexFile, IndexId, ObjectRecord, PackEntry, PackId, PackRecord, Tail};
use crate::progress::Reporter;
use crate::remote::backend::join;
use crate::remote::pool::Pool;
use crate::verify::{Corrupt, Failed, Report};

/// What one pack's check found.
enum PackCheck {
    Sound,
    Missing,
    Damaged(String),
}

/// Check a layout-2 remote over `pool`, filling `report`; with `repair`, rewrite its index
/// as the module docs say. `sound_local(key)` says whether this cache holds a sound copy.
pub fn verify(
    cache: &Cache,
    pool: &Pool,
    repair: bool,
    sound_local: &(dyn Fn(&ObjectKey) -> bool + Sync),
    report: &mut Report,
    reporter: &dyn Reporter,
) -> Result<()> {
    let name = pool.remote_name().to_string();
    let mut c = pool.connection()?;
    let lock = if repair { Some(locks::acquire(c.as_mut(), &name, locks::Kind::Exclusive)?) } else { None };
    pool.idle(c);
    let result = check(cache, pool, lock.as_ref(), sound_local, report, reporter);
    if let Some(lock) = lock
        && let Ok(mut c) = pool.fresh_connection()
    {
        let _ = crate::remote::clean_temps(c.as_mut());
        let _ = lock.release(c.as_mut());
    }
    result
}

fn check(
    cache: &Cache,
    pool: &Pool,
    lock: Option<&locks::Lock>,
    sound_local: &(dyn Fn(&ObjectKey) -> bool + Sync),
    report: &mut Report,
    reporter: &dyn Reporter,
) -> Result<()> {
    let mut c = pool.connection()?;
    let indexes = read_indexes(c.as_mut())?;
    report.damaged_index = indexes.damaged.clone();
    // Each pack's entries and each object's record, as the first index naming them says.
    let mut packs: Vec<PackRecord> = Vec::new();
    let mut seen_packs = HashSet::new();
    let mut objects: Vec<ObjectRecord> = Vec::new();
    let mut seen_objects = HashSet::new();
    // What damaged index files still say comes last: every pack it names is checked
    // against its name and every object against its id like the rest.
    for f in indexes.files.iter().map(|(_, f)| f).chain(&indexes.salvaged) {
        for p in &f.packs {
            if seen_packs.insert(p.id) {
                packs.push(p.clone());
            }
        }
        for o in &f.objects {
            if seen_objects.insert(o.key) {
                objects.push(o.clone());
            }
        }
    }
    let mut on_remote: HashMap<PackId, u64> = HashMap::new();
    for dir in c.list_dirs(PACKS)? {
        for l in c.list(&join(PACKS, &dir))? {
            if let Ok(id) = l.name.parse::<PackId>() {
                on_remote.insert(id, l.size);
            }
        }
    }
    pool.idle(c);
    report.objects = objects.len() as u64;
    report.bytes = objects.iter().map(|o| o.size).sum();

    let stored: u64 = packs.iter().map(|p| on_remote.get(&p.id).copied().unwrap_or(0)).sum();
    reporter.start("verifying packs", packs.len() as u64, stored);
    let checked = pool.run(&packs, |c, p| {
        let Some(&size) = on_remote.get(&p.id) else { return Ok(PackCheck::Missing) };
        let r = check_pack(c, p, size);
        reporter.advance(1, size);
        r
    })?;
    reporter.finish();
    let mut bad_packs: HashSet<PackId> = HashSet::new();
    for (p, r) in packs.iter().zip(checked) {
        match r {
            Ok(PackCheck::Sound) => {}
            Ok(PackCheck::Missing) => {
                bad_packs.insert(p.id);
                report.missing_packs.push(pack_path(&p.id));
            }
            Ok(PackCheck::Damaged(why)) => {
                bad_packs.insert(p.id);
                report.damaged_packs.push(Damaged { name: pack_path(&p.id), error: why });
            }
            Err(e) => report.failed.push(Failed { id: pack_path(&p.id), error: e.to_string() }),
        }
    }
    if !report.failed.is_empty() {
        // Which objects are sound is unknown while packs could not be read.
        return Ok(());
    }

    // Every chunk's location in a sound pack, where it has one.
    let mut located: HashMap<ChunkId, (PackId, PackEntry)> = HashMap::new();
    for p in packs.iter().filter(|p| !bad_packs.contains(&p.id)) {
        for e in &p.entries {
            located.entry(e.chunk).or_insert((p.id, *e));
        }
    }
    reporter.start("verifying objects", objects.len() as u64, report.bytes);
    let rebuilt = pool.run(&objects, |c, o| {
        let r = check_object(c, o, &located);
        reporter.advance(1, o.size);
        r
    })?;
    reporter.finish();
    let mut lost: Vec<(ObjectKey, Corrupt)> = Vec::new();
    for (o, r) in objects.iter().zip(rebuilt) {
        match r {
            Ok(None) => {}
            Ok(Some((actual, why))) => lost.push((
                o.key,
                Corrupt { id: o.key.display(), actual, why: Some(why), quarantined: None, repair: None },
            )),
            Err(e) => report.failed.push(Failed { id: o.key.display(), error: e.to_string() }),
        }
    }
    let damaged = !lost.is_empty() || !bad_packs.is_empty() || !report.damaged_index.is_empty();
    if let Some(lock) = lock
        && damaged
        && report.failed.is_empty()
    {
        let lost_keys: HashSet<ObjectKey> = lost.iter().map(|(k, _)| *k).collect();
        let mut packer = Packer::new(located.keys().copied().collect());
        let mut c = pool.connection()?;
        // A damaged pack goes first: a pack is written once, so a re-upload of the same
        // chunks (a pack of the same name) would otherwise keep its damaged bytes. The old
        // index then lists a missing pack instead of a damaged one, which is no worse.
        for id in &bad_packs {
            c.delete(&pack_path(id))?;
        }
        // Files before manifests: a manifest in the index promises its files.
        lost.sort_by_key(|(k, _)| k.is_manifest());
        for (k, corrupt) in &mut lost {
            crate::interrupt::check()?;
            if sound_local(k) {
                let path = cache.path_of(k);
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                packer.add_file(c.as_mut(), *k, &path, size)?;
                corrupt.repair = Some("reuploaded");
            } else {
                corrupt.repair = Some("deleted");
            }
            lock.refresh(c.as_mut())?;
        }
        packer.flush_pack(c.as_mut())?;
        let (new_packs, new_objects) = packer.into_records();
        let mut file = IndexFile {
            supersedes: indexes.listed.clone(),
            packs: packs.iter().filter(|p| !bad_packs.contains(&p.id)).cloned().chain(new_packs).collect(),
            objects: objects
                .iter()
                .filter(|o| !lost_keys.contains(&o.key))
                .cloned()
                .chain(new_objects)
                .collect(),
        };
        // One index replacing them all; only then do the old ones go.
        let replacing = write_index(c.as_mut(), &file)?;
        c.flush()?;
        for id in &indexes.listed {
            c.delete(&index_path(id))?;
        }
        // Then the same without `supersedes`: a later push may write an index with the
        // bytes (so the name) of an old one, which readers skip while an index superseding
        // that name exists.
        file.supersedes.clear();
        write_index(c.as_mut(), &file)?;
        c.flush()?;
        c.delete(&index_path(&replacing))?;
        pool.idle(c);
        report.repaired = true;
    }
    report.corrupt = lost.into_iter().map(|(_, c)| c).collect();
    Ok(())
}

/// Write index file `file`; returns its id.
fn write_index(c: &mut dyn crate::remote::Backend, file: &IndexFile) -> Result<IndexId> {
    let bytes = file.encode();
    let id = IndexFile::id_of(&bytes);
    c.write_bytes(&index_path(&id), &bytes)?;
    Ok(id)
}

/// Read pack `p` whole and check it against its name and its index entries.
fn check_pack(c: &mut dyn crate::remote::Backend, p: &PackRecord, size: u64) -> Result<PackCheck> {
    let name = pack_path(&p.id);
    let mut bytes = Vec::new();
    match c.read(&name, Some(size), &mut bytes) {
        Ok(_) => {}
        Err(Error::Remote { kind: RemoteFailure::NotFound, .. }) => return Ok(PackCheck::Missing),
        Err(e) => return Err(e),
    }
    let actual = PackId::of_bytes(&bytes);
    if actual != p.id {
        return Ok(PackCheck::Damaged(format!("its bytes hash to {actual}, not its name")));
    }
    let entries = match pack::parse_tail(&bytes, bytes.len() as u64, &name) {
        Ok(Tail::Entries(e)) => e,
        Ok(Tail::NeedMore { .. }) => return Ok(PackCheck::Damaged("its trailer does not parse".into())),
        Err(e) => return Ok(PackCheck::Damaged(e.to_string())),
    };
    let mut theirs = entries.clone();
    let mut ours = p.entries.clone();
    theirs.sort_by_key(|e| e.offset);
    ours.sort_by_key(|e| e.offset);
    if theirs != ours {
        return Ok(PackCheck::Damaged(format!(
            "its trailer lists {} entries that differ from the {} the index has for it",
            theirs.len(),
            ours.len()
        )));
    }
    for e in &entries {
        let stored = &bytes[e.offset as usize..e.end() as usize];
        if let Err(err) = pack::decode_chunk(stored, e, &name) {
            return Ok(PackCheck::Damaged(err.to_string()));
        }
    }
    Ok(PackCheck::Sound)
}

/// Whether object `o` can be rebuilt from sound packs: `None`, or what its content
/// hashes to (empty when unknown) and why not.
fn check_object(
    c: &mut dyn crate::remote::Backend,
    o: &ObjectRecord,
    located: &HashMap<ChunkId, (PackId, PackEntry)>,
) -> Result<Option<(String, String)>> {
    let mut total = 0u64;
    for ch in &o.chunks {
        match located.get(ch) {
            Some((_, e)) => total += u64::from(e.raw_len),
            None => return Ok(Some((String::new(), format!("its chunk {ch} is in no sound pack")))),
        }
    }
    if total != o.size {
        return Ok(Some((String::new(), format!("its chunks hold {total} bytes, not its {}", o.size))));
    }
    // A one-chunk object's chunk id is its id, and the pack check decoded that chunk.
    if o.chunks.as_slice() == [ChunkId::from(o.key.id)] {
        return Ok(None);
    }
    let mut hasher = blake3::Hasher::new();
    for ch in &o.chunks {
        let (pack_id, e) = &located[ch];
        let name = pack_path(pack_id);
        let stored = c.read_range(&name, u64::from(e.offset), u64::from(e.stored_len))?;
        match pack::decode_chunk(&stored, e, &name) {
            Ok(raw) => {
                hasher.update(&raw);
            }
            // Changed since the pack check: another process is writing here.
            Err(err) => return Ok(Some((String::new(), err.to_string()))),
        }
    }
    let actual = ObjectId::from_bytes(*hasher.finalize().as_bytes());
    if actual != o.key.id {
        return Ok(Some((actual.to_hex(), "its chunks in order hash to another id".into())));
    }
    Ok(None)
}
