//! What experiment records name beyond the pointers, as transfer targets, so that it
//! travels like data: their artifacts, and the data of dirty records (stored from the
//! workspace, which no pointer may name).

use crate::error::Result;
use crate::exp::store;
use crate::pointer::{Kind, Pointer};
use crate::repo::Repo;
use crate::tracked::{Tracked, pointer_path_for};
use crate::workspace;

/// The artifacts of every record, and the data of every dirty record, whose objects this
/// cache holds, each once.
pub fn in_cache(repo: &Repo) -> Result<Vec<Tracked>> {
    let Ok(git) = repo.git() else { return Ok(Vec::new()) };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let target = |path: &str, pointer: Pointer| {
        let data_path = repo.root.join(path);
        Tracked { pointer_path: pointer_path_for(&data_path), data_path, pointer }
    };
    let name_of = |path: &str| path.rsplit('/').next().unwrap_or(path).to_string();
    for record in store::list(&git)? {
        for a in &record.artifacts {
            if !seen.insert(a.hash) || !repo.cache.has_object(&a.hash) {
                continue;
            }
            let pointer = Pointer {
                path: name_of(&a.path),
                kind: Kind::File,
                hash: a.hash,
                size: a.size,
                files: None,
                source: None,
            };
            out.push(target(&a.path, pointer));
        }
        if !record.dirty {
            continue;
        }
        for d in &record.data {
            let files = (d.kind == Kind::Dir).then_some(0);
            let pointer = Pointer {
                path: name_of(&d.path),
                kind: d.kind,
                hash: d.hash,
                size: d.size,
                files,
                source: None,
            };
            if seen.insert(d.hash) && workspace::in_cache(repo, &pointer) {
                out.push(target(&d.path, pointer));
            }
        }
    }
    Ok(out)
}
