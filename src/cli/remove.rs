//! `remove`, `move` and `unprotect`: small commands over single tracked items.

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::Ctx;
use super::output::{plural, quote_name};
use crate::tracked::{self, display_rel};
use crate::workspace;

#[derive(clap::Args)]
pub struct RemoveArgs {
    /// Tracked paths to stop tracking
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Do not stage the change in git
    #[arg(long)]
    no_stage: bool,
}

#[derive(clap::Args)]
pub struct MoveArgs {
    src: PathBuf,
    dst: PathBuf,
    /// Do not stage the change in git
    #[arg(long)]
    no_stage: bool,
}

#[derive(clap::Args)]
pub struct UnprotectArgs {
    /// Tracked files or folders (or files inside tracked folders)
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub fn run_remove(ctx: &Ctx, args: RemoveArgs) -> Result<()> {
    let repo = ctx.open()?;
    let progress = ctx.out.reporter();
    let _lock = repo.lock(&progress)?;
    let targets = tracked::select(&repo, &ctx.cwd, &args.paths)?;
    let mut removed = Vec::new();
    for t in &targets {
        workspace::remove(&repo, t, !args.no_stage)?;
        ctx.out.say(format!("stopped tracking {} (the data stays)", quote_name(&t.rel(&repo))));
        removed.push(t.rel(&repo));
    }
    ctx.out.emit(&serde_json::json!({ "removed": removed }));
    Ok(())
}

pub fn run_move(ctx: &Ctx, args: MoveArgs) -> Result<()> {
    let repo = ctx.open()?;
    let progress = ctx.out.reporter();
    let _lock = repo.lock(&progress)?;
    let targets = tracked::select(&repo, &ctx.cwd, std::slice::from_ref(&args.src))?;
    let [t] = targets.as_slice() else {
        bail!("{}: names {} tracked items; move one at a time", args.src.display(), targets.len());
    };
    let dest = workspace::move_tracked(&repo, &ctx.cwd, t, &args.dst, !args.no_stage)?;
    let (from, to) = (t.rel(&repo), display_rel(&repo.root, &dest));
    ctx.out.say(format!("moved {} -> {}", quote_name(&from), quote_name(&to)));
    ctx.out.emit(&serde_json::json!({ "from": from, "to": to }));
    Ok(())
}

pub fn run_unprotect(ctx: &Ctx, args: UnprotectArgs) -> Result<()> {
    let repo = ctx.open()?;
    let progress = ctx.out.reporter();
    let _lock = repo.lock(&progress)?;
    let n = workspace::unprotect(&repo, &ctx.cwd, &args.paths)?;
    ctx.out.say(format!("{} made writable", plural(n, "file")));
    ctx.out.emit(&serde_json::json!({ "unprotected": n }));
    Ok(())
}
