//! `push`, `fetch` and `pull`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::Ctx;
use super::output::{bytes, plural};
use crate::tracked::Tracked;
use crate::transfer::{self, Report};
use crate::{history, hooks, import, remote, workspace};

#[derive(clap::Args)]
pub struct Args {
    /// Tracked paths (default: all)
    paths: Vec<PathBuf>,
    /// The remote (default: core.remote)
    #[arg(short, long, value_name = "NAME")]
    remote: Option<String>,
    /// Parallel connections
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: Option<u16>,
    #[command(flatten)]
    scope: super::scope::ScopeArgs,
    /// push, for the pre-push hook: also the data of the commits git is pushing to this
    /// git remote, as git lists them on stdin
    #[arg(long, value_name = "GIT_REMOTE", hide = true)]
    git_pre_push: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Push,
    Fetch,
    Pull,
}

pub fn run(ctx: &Ctx, args: Args, direction: Direction) -> Result<()> {
    let repo = ctx.open()?;
    let progress = ctx.out.reporter();
    // Pushing only reads the cache; fetching writes it.
    let _lock = if direction == Direction::Push { None } else { Some(repo.lock(&progress)?) };
    // The login overlaps the reading of pointers and records below (once the lock is
    // held: a connection does not wait idle behind another process). A bad remote
    // setting is still reported after a bad path, as before.
    let remote = remote::open(&repo, args.remote.as_deref()).map(remote::connect_early);
    let mut scope = args.scope.scope();
    if let Some(git_remote) = &args.git_pre_push {
        if direction != Direction::Push {
            return Err(crate::error::Error::Usage("--git-pre-push is for `trove push` only".into()).into());
        }
        let mut stdin = String::new();
        std::io::stdin().read_to_string(&mut stdin).context("reading the refs git pushes from stdin")?;
        let pushed = hooks::pushed_commits(&repo.git()?, &repo.root, git_remote, &stdin)?;
        scope.revs.extend(pushed.iter().map(|c| c.to_string()));
    }
    let items = history::tracked_in_scope(&repo, &ctx.cwd, &args.paths, &scope)?;
    // Imported data lives in its source's remote: it is fetched from there, never pushed here.
    let (imported, mut targets): (Vec<Tracked>, Vec<Tracked>) =
        items.iter().map(|a| a.tracked.clone()).partition(import::is_imported);
    // A whole push also sends the artifacts of experiment records and the registered
    // model versions that this cache holds (`trove exp checkout` and `trove model get`
    // fetch them back).
    if direction == Direction::Push && args.paths.is_empty() {
        targets.extend(crate::exp::artifacts::in_cache(&repo)?);
        targets.extend(crate::model::in_cache(&repo)?);
    }
    let jobs = args.jobs.map(usize::from);
    let from_sources = match direction {
        Direction::Push => Vec::new(),
        _ => import::fetch(&repo, &imported, jobs, &progress)?,
    };
    for r in &from_sources {
        ctx.out.say(format!(
            "fetched {}, {} of content from remote {} ({} already in the cache)",
            plural(r.files, "file"),
            bytes(r.bytes),
            r.remote,
            r.already_there
        ));
    }
    // A project that only imports data needs no remote of its own.
    if direction != Direction::Push && targets.is_empty() && !imported.is_empty() && remote.is_err() {
        return finish_imports_only(ctx, &repo, items, direction, from_sources, &progress);
    }
    if direction == Direction::Push && targets.is_empty() && !imported.is_empty() {
        ctx.out.say("nothing to push: imported data stays in its source's remote");
        ctx.out.emit(&serde_json::json!({ "transfer": null }));
        return Ok(());
    }
    let remote = remote?;
    let out = &ctx.out;
    let summary = |report: &Report| {
        let (verb, wire, where_) = match direction {
            Direction::Push => ("pushed", "sent", "on the remote"),
            _ => ("fetched", "received", "in the cache"),
        };
        out.say(format!(
            "{verb} {}, {} of content, {} {wire} in {:.1} s ({} already {where_})",
            plural(report.files, "file"),
            bytes(report.bytes),
            bytes(report.transferred),
            report.seconds,
            report.already_there
        ));
    };
    let failed = |report: Report| -> anyhow::Error {
        let (message, hint) = problems(&report, direction);
        super::WithReport { message, hint, report: serde_json::json!({ "transfer": report }) }.into()
    };
    match direction {
        Direction::Push | Direction::Fetch => {
            let report = if direction == Direction::Push {
                // Ctrl-C stops the push after it removed its uploads in flight from the remote.
                crate::interrupt::catch();
                transfer::push(&repo, remote.as_ref(), &targets, jobs, &progress)?
            } else {
                transfer::fetch(&repo, remote.as_ref(), &targets, jobs, &progress)?
            };
            summary(&report);
            if !report.ok() {
                return Err(failed(report));
            }
            out.emit(&serde_json::json!({ "transfer": report, "imports": from_sources }));
        }
        Direction::Pull => {
            // Only the work tree's data is checked out; other revisions' data waits in the cache.
            let here: Vec<Tracked> =
                items.into_iter().filter(|a| a.commit.is_none()).map(|a| a.tracked).collect();
            let pulled = transfer::pull(&repo, Some(remote.as_ref()), &targets, jobs, &progress, || {
                workspace::checkout(&repo, &here, false, &progress)
            })?;
            let report = pulled.fetched.expect("a pull with a remote fetches");
            summary(&report);
            let Some(done) = pulled.placed else { return Err(failed(report)) };
            for c in done.iter().filter(|c| c.placed > 0 || c.removed > 0) {
                out.say(format!("{}: {} written, {} removed", c.path, plural(c.placed, "file"), c.removed));
            }
            out.emit(
                &serde_json::json!({ "transfer": report, "imports": from_sources, "checked_out": done }),
            );
        }
    }
    Ok(())
}

/// The end of a fetch or pull whose data is all imported, in a repository without a
/// remote of its own: the imports were fetched; a pull checks the work tree out.
fn finish_imports_only(
    ctx: &Ctx,
    repo: &crate::repo::Repo,
    items: Vec<history::AtRevision>,
    direction: Direction,
    from_sources: Vec<Report>,
    progress: &dyn crate::progress::Reporter,
) -> Result<()> {
    if direction == Direction::Fetch {
        ctx.out.emit(&serde_json::json!({ "transfer": null, "imports": from_sources }));
        return Ok(());
    }
    let here: Vec<Tracked> = items.into_iter().filter(|a| a.commit.is_none()).map(|a| a.tracked).collect();
    let done = workspace::checkout(repo, &here, false, progress)?;
    for c in done.iter().filter(|c| c.placed > 0 || c.removed > 0) {
        ctx.out.say(format!("{}: {} written, {} removed", c.path, plural(c.placed, "file"), c.removed));
    }
    ctx.out.emit(&serde_json::json!({ "transfer": null, "imports": from_sources, "checked_out": done }));
    Ok(())
}

/// What went wrong (the error), and what to do about it (the hint).
fn problems(r: &Report, direction: Direction) -> (String, Option<String>) {
    let mut lines = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    let sample = |v: &[String]| v.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if !r.missing.is_empty() {
        let side = match direction {
            Direction::Push => "the local cache".to_string(),
            _ => format!("remote {}", r.remote),
        };
        lines.push(format!(
            "{} missing from {side}: {}",
            plural(r.missing.len() as u64, "object"),
            sample(&r.missing)
        ));
    }
    if !r.corrupt.is_empty() {
        lines.push(format!(
            "{} on remote {} did not match their id and were not used: {}",
            plural(r.corrupt.len() as u64, "object"),
            r.remote,
            sample(&r.corrupt)
        ));
    }
    if let Some(damage) = &r.damage {
        lines.push(damage.clone());
    }
    for (id, e) in r.failed.iter().take(3) {
        lines.push(format!("{id}: {e}"));
    }
    if r.failed.len() > 3 {
        lines.push(format!("… and {} more failures", r.failed.len() - 3));
    }
    if !r.missing.is_empty() {
        hints.push(match direction {
            Direction::Push => "the data was changed or deleted before it was pushed: `trove status` shows \
                                which; `trove add` it again, or fetch the objects from a remote that has them"
                .into(),
            _ => format!("push them to remote {} from a clone whose cache has them", r.remote),
        });
    }
    if !r.corrupt.is_empty() {
        hints.push(format!(
            "push a sound copy to remote {} from a clone whose cache has it (`trove verify --remote {}` lists the damage)",
            r.remote, r.remote
        ));
    }
    if !r.failed.is_empty() {
        hints.push("run the command again to retry; what was transferred is kept".into());
    }
    (lines.join("\n"), (!hints.is_empty()).then(|| hints.join("\n")))
}
