//! Artifacts of experiment records as transfer targets, so they travel like data.

use crate::error::Result;
use crate::exp::store;
use crate::pointer::{Kind, Pointer};
use crate::repo::Repo;
use crate::tracked::{Tracked, pointer_path_for};

/// The artifacts of every record whose object this cache holds, each once.
pub fn in_cache(repo: &Repo) -> Result<Vec<Tracked>> {
    let Ok(git) = repo.git() else { return Ok(Vec::new()) };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for record in store::list(&git)? {
        for a in record.artifacts {
            if !seen.insert(a.hash) || !repo.cache.has_object(&a.hash) {
                continue;
            }
            let data_path = repo.root.join(&a.path);
            let name = data_path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            out.push(Tracked {
                pointer_path: pointer_path_for(&data_path),
                data_path,
                pointer: Pointer { path: name, kind: Kind::File, hash: a.hash, size: a.size, files: None },
            });
        }
    }
    Ok(out)
}
