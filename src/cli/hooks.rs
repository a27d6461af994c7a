//! `install-hooks`: git hooks that run `trove checkout` and `trove push`.

use anyhow::Result;

use super::Ctx;
use crate::hooks;
use crate::tracked::display_rel;

#[derive(clap::Args)]
pub struct Args {
    /// Remove trove's hooks and put back the hooks they chained to
    #[arg(long)]
    uninstall: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    let progress = ctx.out.reporter();
    let _lock = repo.lock(&progress)?;
    let out = &ctx.out;
    if args.uninstall {
        let done = hooks::uninstall(&repo)?;
        let dir = display_rel(&repo.root, &done.hooks_dir);
        if done.removed.is_empty() {
            out.say(format!("no trove hooks in {dir}"));
        } else {
            out.say(format!("removed {} from {dir}", done.removed.join(", ")));
        }
        for h in &done.restored {
            out.say(format!("restored {h} (from {h}{})", hooks::CHAINED_SUFFIX));
        }
        for h in &done.not_ours {
            out.say(format!("left {h} alone: it is not trove's"));
        }
        out.emit(&done);
        return Ok(());
    }
    let done = hooks::install(&repo)?;
    let dir = display_rel(&repo.root, &done.hooks_dir);
    if done.installed.is_empty() {
        out.say(format!("trove's hooks are already installed in {dir}"));
    } else {
        out.say(format!("installed {} in {dir}", done.installed.join(", ")));
    }
    for h in &done.chained {
        out.say(format!("kept your {h} hook as {h}{}; trove's hook runs it first", hooks::CHAINED_SUFFIX));
    }
    if !done.installed.is_empty() {
        out.hint("the hooks call `trove` from PATH; `trove install-hooks --uninstall` removes them");
    }
    out.emit(&done);
    Ok(())
}
