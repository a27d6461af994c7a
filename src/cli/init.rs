use anyhow::Result;

use super::Ctx;
use crate::repo::Repo;

#[derive(clap::Args)]
pub struct Args {
    /// Do not stage .trove/config and .trove/.gitignore in git
    #[arg(long)]
    no_stage: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let report = Repo::init(&ctx.cwd)?;
    if !args.no_stage {
        let repo = Repo::open(&report.root)?;
        let files = [repo.trove_dir.join("config"), repo.trove_dir.join(".gitignore")];
        crate::git::stage(&repo.git()?, &repo.root, &files)?;
    }
    let out = &ctx.out;
    if report.created_git {
        out.say(format!("initialised an empty git repository in {}", report.root.display()));
    }
    if report.already {
        out.say(format!("trove repository already initialised in {}", report.root.display()));
    } else {
        out.say(format!("initialised trove in {}", report.root.join(".trove").display()));
        out.hint("commit .trove/config and .trove/.gitignore with git; then `trove add DATA`");
    }
    out.emit(&report);
    Ok(())
}
