//! `trove exp push` / `trove exp pull [GIT_REMOTE]`.

use anyhow::Result;

use crate::cli::Ctx;
use crate::exp::share;

#[derive(clap::Args)]
pub struct Args {
    /// The git remote (default: origin)
    remote: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args, push: bool) -> Result<()> {
    let repo = ctx.open()?;
    let git = repo.git()?;
    let name = share::remote_name(args.remote.as_deref());
    let done = if push { share::push(&git, name)? } else { share::pull(&git, name)? };
    let out = &ctx.out;
    if push {
        out.say(format!(
            "pushed the records to {} ({} here, {} received first)",
            done.remote, done.total, done.received
        ));
    } else {
        out.say(format!("pulled {} new records from {} ({} here)", done.received, done.remote, done.total));
    }
    out.emit(&done);
    Ok(())
}
