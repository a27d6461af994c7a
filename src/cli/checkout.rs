use std::path::PathBuf;

use anyhow::Result;

use super::Ctx;
use super::output::{plural, quote_name};
use crate::{tracked, workspace};

#[derive(clap::Args)]
pub struct Args {
    /// Tracked paths (default: all)
    paths: Vec<PathBuf>,
    /// Overwrite changes to tracked data even when they are not saved in the cache
    #[arg(short, long)]
    force: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    let progress = ctx.out.reporter();
    let _lock = repo.lock(&progress)?;
    let targets = tracked::select(&repo, &ctx.cwd, &args.paths)?;
    let done = workspace::checkout(&repo, &targets, args.force, &progress)?;
    let out = &ctx.out;
    for c in &done {
        if c.placed == 0 && c.removed == 0 {
            out.detail(format!("{}: up to date", quote_name(&c.path)));
        } else {
            out.say(format!(
                "{}: {} written, {} removed",
                quote_name(&c.path),
                plural(c.placed, "file"),
                c.removed
            ));
        }
    }
    if done.iter().all(|c| c.placed == 0 && c.removed == 0) {
        out.say("workspace already matches the pointers");
    }
    out.emit(&serde_json::json!({ "checked_out": done }));
    Ok(())
}
