use std::path::PathBuf;

use anyhow::Result;

use super::Ctx;
use super::output::{bytes, plural};
use crate::pointer::Kind;
use crate::workspace;

#[derive(clap::Args)]
pub struct Args {
    /// Files or folders to track
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Do not stage the pointer files and .gitignore changes in git
    #[arg(long)]
    no_stage: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    let progress = ctx.out.reporter();
    let _lock = repo.lock(&progress)?;
    let added = workspace::add(&repo, &ctx.cwd, &args.paths, !args.no_stage, &progress)?;
    let out = &ctx.out;
    for a in &added {
        let what = match a.kind {
            Kind::Dir => format!("dir, {}, {}", plural(a.files.unwrap_or(0), "file"), bytes(a.size)),
            Kind::File => format!("file, {}", bytes(a.size)),
        };
        if a.updated {
            out.say(format!("added {} ({what}) -> {}", a.path, a.pointer));
        } else {
            out.say(format!("{} unchanged ({what})", a.path));
        }
        out.detail(format!(
            "  {} new object{}, {} stored; id {}",
            a.new_objects,
            if a.new_objects == 1 { "" } else { "s" },
            bytes(a.new_bytes),
            a.hash
        ));
    }
    if added.iter().any(|a| a.updated) {
        let pointers: Vec<&str> = added.iter().filter(|a| a.updated).map(|a| a.pointer.as_str()).collect();
        out.hint(format!("commit the pointers with git: git commit {} .gitignore", pointers.join(" ")));
    }
    out.emit(&serde_json::json!({ "added": added }));
    Ok(())
}
