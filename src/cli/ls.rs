use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use super::output::{bytes, quote_name};
use crate::pointer::{Kind, Pointer};
use crate::tracked::{self, display_rel};

#[derive(clap::Args)]
pub struct Args {
    /// A git revision to list instead of the work tree
    rev: Option<String>,
}

#[derive(Serialize)]
struct Row {
    path: String,
    pointer: String,
    kind: Kind,
    hash: String,
    size: u64,
    /// `null` for a file.
    files: Option<u64>,
    /// The cache holds all of its content.
    in_cache: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    let pointers: Vec<(std::path::PathBuf, Pointer)> = match &args.rev {
        Some(rev) => crate::git::pointers_at(&repo.git()?, &repo.root, rev)?,
        None => tracked::find_pointers(&repo, None)?
            .iter()
            .map(|p| {
                let t = tracked::Tracked::load(p)?;
                Ok((p.strip_prefix(&repo.root).unwrap_or(p).to_path_buf(), t.pointer))
            })
            .collect::<Result<_, crate::error::Error>>()?,
    };
    let rows: Vec<Row> = pointers
        .iter()
        .map(|(rel, p)| Row {
            path: display_rel(&repo.root, &repo.root.join(rel).with_file_name(&p.path)),
            pointer: rel.to_string_lossy().into_owned(),
            kind: p.kind,
            hash: p.hash.to_hex(),
            size: p.size,
            files: p.files,
            in_cache: crate::workspace::in_cache(&repo, p),
        })
        .collect();
    let out = &ctx.out;
    if rows.is_empty() {
        out.say("no tracked data");
    } else {
        let shown: Vec<_> = rows.iter().map(|r| quote_name(&r.path)).collect();
        let width = shown.iter().map(|p| p.chars().count()).max().unwrap_or(4).max(4);
        out.say(format!("{:<width$}  {:<4}  {:>10}  {:>7}  {}", "PATH", "KIND", "SIZE", "FILES", "CACHE"));
        for (r, path) in rows.iter().zip(&shown) {
            out.say(format!(
                "{:<width$}  {:<4}  {:>10}  {:>7}  {}",
                path,
                r.kind.as_str(),
                bytes(r.size),
                r.files.map_or("-".into(), |f| f.to_string()),
                if r.in_cache { "yes" } else { "no" }
            ));
        }
    }
    out.emit(&serde_json::json!({ "tracked": rows }));
    Ok(())
}
