use std::path::PathBuf;

use anyhow::Result;

use super::Ctx;
use super::output::{plural, quote_name};
use crate::error::Error;
use crate::tracked;
use crate::workspace::{self, State};

#[derive(clap::Args)]
pub struct Args {
    /// Tracked paths (default: all)
    paths: Vec<PathBuf>,
    /// Compare the cache with a remote instead (default remote when NAME is omitted)
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    remote: Option<String>,
    /// Parallel connections for --remote
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: Option<u16>,
    /// With --remote: also the data of other git revisions
    #[command(flatten)]
    scope: super::scope::ScopeArgs,
    /// Ask the sources of imported data whether their revision now names other data
    /// (fetches each source's git refs; plain status stays offline)
    #[arg(long)]
    imports: bool,
}

fn run_imports(ctx: &Ctx, args: &Args) -> Result<()> {
    let repo = ctx.open()?;
    let targets: Vec<tracked::Tracked> = tracked::select(&repo, &ctx.cwd, &args.paths)?
        .into_iter()
        .filter(crate::import::is_imported)
        .collect();
    let checked = crate::import::check(&repo, &targets)?;
    let out = &ctx.out;
    if checked.is_empty() {
        out.say("no imported data");
    }
    let short = |c: &str| c[..10.min(c.len())].to_string();
    for c in &checked {
        let rev = c.rev.as_deref().unwrap_or("its default branch");
        if c.moved {
            out.say(format!(
                "{}: source moved on: {rev} of {} is now commit {} with other data ({} -> {})",
                quote_name(&c.path),
                c.repo,
                short(&c.latest_commit),
                short(&c.hash.to_hex()),
                short(&c.latest_hash.to_hex())
            ));
        } else {
            out.say(format!("{}: up to date with {rev} of {}", quote_name(&c.path), c.repo));
        }
    }
    if checked.iter().any(|c| c.moved) {
        out.hint("`trove update PATH` moves imported data to its source's current version");
    }
    out.emit(&serde_json::json!({ "imports": checked }));
    Ok(())
}

fn run_remote(ctx: &Ctx, args: &Args, name: &str) -> Result<()> {
    let repo = ctx.open()?;
    // The login overlaps the reading of pointers (see `connect_early`).
    let remote =
        crate::remote::open(&repo, (!name.is_empty()).then_some(name)).map(crate::remote::connect_early);
    let all = crate::history::tracked_in_scope(&repo, &ctx.cwd, &args.paths, &args.scope.scope())?;
    // Imported data lives in its source's remote, not in this one.
    let (imported, items): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|a| a.tracked.pointer.source.is_some());
    let targets: Vec<tracked::Tracked> = items.iter().map(|a| a.tracked.clone()).collect();
    let remote = remote?;
    let mut states =
        crate::transfer::remote_status(&repo, remote.as_ref(), &targets, args.jobs.map(usize::from))?;
    // Data of other revisions is shown as `path@commit`.
    for (s, a) in states.iter_mut().zip(&items) {
        if let Some(c) = &a.commit {
            s.path = format!("{}@{c}", s.path);
        }
    }
    let out = &ctx.out;
    for a in &imported {
        let source = a.tracked.pointer.source.as_ref().expect("imported");
        out.say(format!(
            "{}: imported from {} (its data stays in that repository's remote)",
            quote_name(&a.tracked.rel(&repo)),
            source.repo
        ));
    }
    for s in &states {
        if s.in_sync {
            out.say(format!("{}: in sync with {}", quote_name(&s.path), remote.name()));
        } else {
            let mut parts = Vec::new();
            if s.not_pushed > 0 {
                parts.push(format!("{} not pushed", s.not_pushed));
            }
            if s.not_pulled > 0 {
                parts.push(format!("{} not pulled", s.not_pulled));
            }
            if s.missing_everywhere > 0 {
                parts.push(format!("{} missing on both sides", s.missing_everywhere));
            }
            out.say(format!("{}: {} (objects)", quote_name(&s.path), parts.join(", ")));
        }
    }
    if states.iter().any(|s| s.not_pushed > 0) {
        out.hint("`trove push` uploads what the remote lacks");
    }
    if states.iter().any(|s| s.not_pulled > 0) {
        out.hint("`trove pull` downloads what the cache lacks");
    }
    out.emit(&serde_json::json!({ "remote": remote.name(), "tracked": states }));
    Ok(())
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if args.imports {
        if args.remote.is_some() {
            return Err(
                Error::Usage("--imports and --remote are separate checks; run one at a time".into()).into()
            );
        }
        return run_imports(ctx, &args);
    }
    if let Some(name) = &args.remote {
        return run_remote(ctx, &args, name);
    }
    let s = &args.scope;
    if !s.revs.is_empty() || s.all_branches || s.all_commits {
        return Err(crate::error::Error::Usage(
            "--rev, --all-branches and --all-commits go with --remote (`trove diff` compares revisions)"
                .into(),
        )
        .into());
    }
    let repo = ctx.open()?;
    let pointers = tracked::select_pointers(&repo, &ctx.cwd, &args.paths)?;
    let progress = ctx.out.reporter();
    let results = workspace::status_each(&repo, &pointers, &progress);
    let out = &ctx.out;
    if results.is_empty() {
        out.say("no tracked data");
    }
    let mut statuses = Vec::new();
    let mut errors = Vec::new();
    let (mut all_pointers, mut hint) = (true, None);
    for (pointer, result) in pointers.iter().zip(results) {
        let s = match result {
            Ok(s) => s,
            Err(e) => {
                let name = tracked::display_rel(&repo.root, pointer);
                // The listing names the pointer already; a pointer error's own path is not repeated.
                let detail = match &e {
                    Error::Pointer { line, message, .. } => format!("line {line}: {message}"),
                    other => other.to_string(),
                };
                out.say(format!("{}: error: {detail}", quote_name(&name)));
                all_pointers &= matches!(e, Error::Pointer { .. });
                hint = hint.or_else(|| e.hint());
                errors.push(serde_json::json!({ "pointer": name, "error": e.to_string(), "hint": e.hint() }));
                continue;
            }
        };
        let mut line = format!("{}: {}", quote_name(&s.path), s.state.as_str());
        if s.state == State::NotInCache && s.other_data {
            line.push_str("; the workspace holds other data");
        }
        if s.state == State::Damaged {
            line.push_str(&format!(
                ": written through a link, {} in the cache no longer {} {} id",
                plural(s.damaged.len() as u64, "object"),
                if s.damaged.len() == 1 { "matches" } else { "match" },
                if s.damaged.len() == 1 { "its" } else { "their" },
            ));
        }
        if let Some(c) = &s.changes {
            line.push_str(&format!(
                " ({} added, {} removed, {} changed)",
                c.added.len(),
                c.removed.len(),
                c.modified.len()
            ));
        }
        if !s.in_cache && s.state != State::NotInCache {
            line.push_str(", not in cache");
        }
        out.say(line);
        for id in &s.damaged {
            out.say(format!("    damaged: {id}"));
        }
        if let Some(c) = &s.changes {
            let limit = if out.verbose > 0 { usize::MAX } else { 10 };
            let mut shown = 0;
            for (label, list) in [("added", &c.added), ("removed", &c.removed), ("changed", &c.modified)] {
                for p in list {
                    if shown < limit {
                        out.say(format!("    {label}: {}", quote_name(p)));
                    }
                    shown += 1;
                }
            }
            if shown > limit {
                out.say(format!("    … and {} more (-v shows all)", shown - limit));
            }
        }
        statuses.push(s);
    }
    let any = |state: State| statuses.iter().any(|s| s.state == state);
    if any(State::Damaged) {
        out.hint(
            "a write through a link changed the cache's copy: `trove verify` moves the damaged objects to quarantine; \
             then `trove add PATH` keeps the new content, or `trove pull` and `trove checkout --force PATH` restore the saved one",
        );
    }
    if any(State::Modified) {
        out.hint(
            "`trove add PATH` (or `trove commit`) saves changes; `trove checkout --force PATH` discards them",
        );
    }
    if any(State::Missing) {
        out.hint("`trove checkout` restores missing data from the cache");
    }
    if any(State::NotInCache) {
        out.hint("`trove pull` fetches data that is not in the cache");
    }
    if !errors.is_empty() {
        let each: Vec<&str> = errors.iter().filter_map(|e| e["error"].as_str()).collect();
        let message = match &each[..] {
            [one] => one.to_string(),
            many => format!("{} tracked paths could not be checked:\n  {}", many.len(), many.join("\n  ")),
        };
        return Err(super::WithReport {
            message,
            hint: if all_pointers {
                Some(
                    "fix or restore the pointer file (e.g. `git checkout -- FILE`); a file named *.trove that is \
                     not a pointer can be renamed or listed in .gitignore"
                        .into(),
                )
            } else {
                hint
            },
            report: serde_json::json!({ "tracked": statuses, "errors": errors }),
        }
        .into());
    }
    out.emit(&serde_json::json!({ "tracked": statuses }));
    Ok(())
}
