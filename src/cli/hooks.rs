//! `install-hooks`: git hooks that run `trove checkout` and `trove push`, and the merge
//! driver of pointer files (`merge-driver`, which git runs).

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{Ctx, WithReport};
use crate::hooks;
use crate::merge::{self, Merged};
use crate::pointer::Pointer;
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
        if done.merge_driver {
            out.say("removed trove's merge driver (merge.trove in the git config)");
        }
        if let Some(a) = &done.gitattributes {
            out.say(format!(
                "removed `{}` from {} (staged)",
                hooks::MERGE_ATTRIBUTE,
                display_rel(&repo.root, a)
            ));
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
    if done.merge_driver {
        out.say("registered trove's merge driver for pointer files (merge.trove in the git config)");
    }
    if let Some(a) = &done.gitattributes {
        out.say(format!(
            "added `{}` to {} (staged: commit it, so clones that run install-hooks merge pointers the same way)",
            hooks::MERGE_ATTRIBUTE,
            display_rel(&repo.root, a)
        ));
    }
    if !done.installed.is_empty() {
        out.hint("the hooks call `trove` from PATH; `trove install-hooks --uninstall` removes them");
    }
    out.emit(&done);
    Ok(())
}

/// git's placeholders, in the order `merge.trove.driver` passes them.
#[derive(clap::Args)]
pub struct MergeDriverArgs {
    /// The common version (%O; empty when there is none)
    base: PathBuf,
    /// Our version (%A), replaced by the result
    ours: PathBuf,
    /// Their version (%B)
    theirs: PathBuf,
    /// The pointer's path in the work tree (%P)
    path: PathBuf,
}

/// Merge a pointer for git: exit 0 with the merged pointer in %A, or write both sides
/// between conflict markers into %A and fail, saying why.
pub fn run_merge_driver(ctx: &Ctx, args: MergeDriverArgs) -> Result<()> {
    let name = &args.path;
    let read = |f: &PathBuf| fs::read_to_string(f).map_err(|e| crate::error::Error::io(f, e));
    let (ours_text, theirs_text) = (read(&args.ours)?, read(&args.theirs)?);
    let merged = (|| -> Result<Merged> {
        let repo = ctx.open()?;
        let _lock = repo.lock(&ctx.out.reporter())?;
        let side = |f: &PathBuf, which: &str| -> Result<Pointer> {
            merge::read_side(f, name)?.ok_or_else(|| {
                crate::error::Error::path(name, format!("{which} version is empty, not a pointer")).into()
            })
        };
        let base = merge::read_side(&args.base, name)?;
        let (ours, theirs) = (side(&args.ours, "our")?, side(&args.theirs, "their")?);
        Ok(merge::merge_pointers(&repo.cache, base.as_ref(), &ours, &theirs)?)
    })();
    let shown = name.display();
    let reasons = match merged {
        Ok(Merged::Clean(p)) => {
            fs::write(&args.ours, p.to_text()).with_context(|| format!("writing {}", args.ours.display()))?;
            ctx.out.say(format!("trove merged {shown}: each file of {} as the side that changed it", p.path));
            return Ok(());
        }
        Ok(Merged::Conflict(reasons)) => reasons,
        Err(e) => vec![format!("{e:#}")],
    };
    fs::write(&args.ours, merge::conflict_text(&ours_text, &theirs_text))
        .with_context(|| format!("writing {}", args.ours.display()))?;
    Err(WithReport {
        message: format!("{shown}: left as a conflict: {}", reasons.join("; ")),
        hint: Some(format!(
            "keep one side: `git checkout --ours {shown} && trove checkout {shown}` (or `--theirs` for the other), then `git add {shown}`"
        )),
        report: serde_json::json!({ "conflicts": reasons }),
    }
    .into())
}
