//! `gc`: delete objects nothing in the chosen scope uses.

use std::io::IsTerminal;

use anyhow::Result;

use super::Ctx;
use super::output::{bytes, plural};
use crate::error::Error;
use crate::gc::{self, Packs, Plan, Side, Temps};
use crate::history::Scope;

#[derive(clap::Args)]
pub struct Args {
    /// Keep only the data the work tree's pointers name (the default)
    #[arg(short = 'w', long, conflicts_with_all = ["all_branches", "all_commits", "revs"])]
    workspace: bool,
    /// Also keep the data of every local branch's head
    #[arg(short = 'a', long)]
    all_branches: bool,
    /// Also keep the data of every commit (of every branch, tag and remote-tracking branch)
    #[arg(short = 'A', long)]
    all_commits: bool,
    /// Also keep the data of these git revisions (repeatable)
    #[arg(long = "rev", value_name = "REV")]
    revs: Vec<String>,
    /// Also delete the objects this remote holds that the scope does not use
    #[arg(short, long, value_name = "NAME")]
    remote: Option<String>,
    /// Parallel connections for --remote
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: Option<u16>,
    /// Show what would be deleted; delete nothing
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Delete without asking for confirmation
    #[arg(short, long)]
    force: bool,
}

fn describe(scope: &Scope) -> String {
    let mut parts = vec!["the work tree".to_string()];
    if scope.all_commits {
        parts.push("every commit".into());
    } else if scope.all_branches {
        parts.push("every branch head".into());
    }
    parts.extend(scope.revs.iter().map(|r| format!("`{r}`")));
    match parts.len() {
        1 => parts.remove(0),
        _ => {
            let last = parts.pop().unwrap_or_default();
            format!("{} and {last}", parts.join(", "))
        }
    }
}

fn side_line(side: &Side, label: &str, dry_run: bool) -> String {
    let verb = if dry_run { "would delete" } else { "deleted" };
    let freed = if dry_run { "" } else { " freed" };
    format!(
        "{label}: {verb} {}, {}{freed} ({} kept)",
        plural(side.count, "object"),
        bytes(side.bytes),
        side.kept
    )
}

fn print_plan(ctx: &Ctx, plan: &Plan, dry_run: bool) {
    let out = &ctx.out;
    let remote = plan.remote.iter().map(|r| (r, format!("remote {}", r.name), Some(r.name.as_str())));
    for (side, label, remote) in std::iter::once((&plan.cache, "cache".to_string(), None)).chain(remote) {
        for d in &side.objects {
            out.detail(match remote {
                Some(name) => format!("  {name}:{}", d.path),
                None => format!("  {}", d.path),
            });
        }
        out.say(side_line(side, &label, dry_run));
        if let (Some(packs), Some(name)) = (side.packs.as_ref(), remote) {
            print_packs(ctx, packs, &label, name, dry_run);
        }
        if let (Some(temps), Some(name)) = (side.temps.as_ref().filter(|t| !t.files.is_empty()), remote) {
            print_temps(ctx, temps, &format!("{label} tmp"), &format!("{name}:"), dry_run);
        }
    }
    if !plan.temps.files.is_empty() {
        print_temps(ctx, &plan.temps, "tmp", "", dry_run);
    }
}

/// A layout-2 remote's packs: deleted whole, and repacked.
fn print_packs(ctx: &Ctx, packs: &Packs, label: &str, name: &str, dry_run: bool) {
    for p in &packs.deleted {
        ctx.out.detail(format!("  {name}:{p} (deleted)"));
    }
    for p in &packs.repacked {
        ctx.out.detail(format!("  {name}:{p} (repacked)"));
    }
    if !packs.stale_locks.is_empty() {
        ctx.out.say(format!(
            "{label} locks: {} {} left by processes that died",
            if dry_run { "would remove" } else { "removed" },
            plural(packs.stale_locks.len() as u64, "lock"),
        ));
    }
    if packs.deleted.is_empty() && packs.repacked.is_empty() {
        return;
    }
    let written = if dry_run || packs.repacked.is_empty() {
        String::new()
    } else {
        format!(" into {}", plural(packs.written, "new pack"))
    };
    ctx.out.say(format!(
        "{label} packs: {} {}, {} {}{written}; {} {}",
        if dry_run { "would delete" } else { "deleted" },
        plural(packs.deleted.len() as u64, "pack"),
        if dry_run { "would repack" } else { "repacked" },
        packs.repacked.len(),
        bytes(packs.bytes_freed),
        if dry_run { "would be freed on the remote" } else { "freed on the remote" },
    ));
}

fn print_temps(ctx: &Ctx, temps: &Temps, label: &str, prefix: &str, dry_run: bool) {
    for f in &temps.files {
        ctx.out.detail(format!("  {prefix}{}", f.display()));
    }
    ctx.out.say(format!(
        "{label}: {} {}, {}{}",
        if dry_run { "would delete" } else { "deleted" },
        plural(temps.files.len() as u64, "stale temp file"),
        bytes(temps.bytes),
        if dry_run { "" } else { " freed" }
    ));
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    if !args.dry_run && !args.force && !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "gc deletes data and there is no terminal to confirm it on; pass -f/--force to delete \
             without asking, or --dry-run to see what would be deleted"
                .into(),
        )
        .into());
    }
    let progress = ctx.out.reporter();
    let _lock = repo.lock(&progress)?;
    let scope = Scope {
        workspace: true,
        revs: args.revs.clone(),
        all_branches: args.all_branches,
        all_commits: args.all_commits,
    };
    let remote = args.remote.as_deref().map(|n| crate::remote::open(&repo, Some(n))).transpose()?;
    let remote = remote.as_deref();
    let jobs = args.jobs.map(usize::from);
    let mut plan = gc::plan(&repo, &ctx.cwd, &scope, remote, jobs, &progress)?;
    let out = &ctx.out;
    out.say(format!("in use by {}: {}", describe(&scope), plural(plan.referenced, "object")));
    if !plan.unknown_manifests.is_empty() && !out.quiet && !out.json {
        let n = plan.unknown_manifests.len();
        out.warn(format!(
            "{} the scope names {} not in the cache{} (or unreadable), so the files {} unknown: \
             no file object is deleted",
            plural(n as u64, "folder manifest"),
            if n == 1 { "is" } else { "are" },
            if remote.is_some() { " nor on the remote" } else { "" },
            if n == 1 { "it lists are" } else { "they list are" },
        ));
        for m in plan.unknown_manifests.iter().take(3) {
            out.warn(format!("  {m}"));
        }
        out.hint(if remote.is_some() {
            "push them from a clone whose cache has them, or run `trove verify` if they are corrupt"
        } else {
            "fetch them (e.g. `trove fetch --all-commits`), or run gc with --remote NAME to read them from a remote"
        });
    }
    let emit = |plan: &Plan, dry_run: bool| {
        let mut doc = serde_json::to_value(plan).expect("plan serialises");
        doc["dry_run"] = serde_json::Value::Bool(dry_run);
        doc["scope"] = serde_json::json!({
            "workspace": true,
            "all_branches": scope.all_branches,
            "all_commits": scope.all_commits,
            "revs": scope.revs,
        });
        doc
    };
    if plan.is_empty() {
        out.say("nothing to delete");
        out.emit(&emit(&plan, args.dry_run));
        return Ok(());
    }
    if args.dry_run {
        print_plan(ctx, &plan, true);
        out.emit(&emit(&plan, true));
        return Ok(());
    }
    if !args.force {
        let mut what = vec![format!(
            "{} ({}) from the cache",
            plural(plan.cache.count, "object"),
            bytes(plan.cache.bytes)
        )];
        if let Some(r) = plan.remote.as_ref().filter(|r| r.count > 0) {
            what.push(format!("{} ({}) from remote {}", plural(r.count, "object"), bytes(r.bytes), r.name));
        }
        if let Some((r, p)) = plan.remote.as_ref().and_then(|r| r.packs.as_ref().map(|p| (r, p)))
            && (!p.deleted.is_empty() || !p.repacked.is_empty())
        {
            what.push(format!(
                "{} and {} repacked ({} freed) on remote {}",
                plural(p.deleted.len() as u64, "pack"),
                p.repacked.len(),
                bytes(p.bytes_freed),
                r.name
            ));
        }
        if let Some((r, t)) = plan
            .remote
            .as_ref()
            .and_then(|r| r.temps.as_ref().filter(|t| !t.files.is_empty()).map(|t| (r, t)))
        {
            what.push(format!(
                "{} ({}) from remote {}",
                plural(t.files.len() as u64, "stale temp file"),
                bytes(t.bytes),
                r.name
            ));
        }
        if plan.remote.is_some() {
            out.note(
                "other clones may use objects on the remote that this clone does not know of \
                 (branches and commits it has not fetched)",
            );
        }
        if !out.confirm(&format!("delete {}?", what.join(" and ")))? {
            return Err(anyhow::anyhow!("gc cancelled: nothing was deleted"));
        }
    }
    gc::execute(&repo, &mut plan, remote, jobs, &progress)?;
    print_plan(ctx, &plan, false);
    if !plan.failed.is_empty() {
        let mut lines = vec![format!("{} could not be deleted", plural(plan.failed.len() as u64, "object"))];
        lines.extend(plan.failed.iter().take(3).map(|(id, e)| format!("{id}: {e}")));
        lines.push("run the command again to retry".into());
        return Err(
            super::WithReport { hint: None, message: lines.join("\n"), report: emit(&plan, false) }.into()
        );
    }
    out.emit(&emit(&plan, false));
    Ok(())
}
