//! `trove exp diff A [B]`: what changed from record A to record B.

use anyhow::Result;

use super::super::Ctx;
use crate::error::Error;
use crate::exp::compare::{self, ValueChange};
use crate::exp::record::Value;
use crate::exp::store;
use crate::exp::table::short_number;

#[derive(clap::Args)]
pub struct Args {
    /// The first record (id, id prefix or name)
    a: String,
    /// The second record (default: the newest other record of the commit HEAD is on)
    b: Option<String>,
}

fn show(v: &Option<Value>) -> String {
    v.as_ref().map_or("(none)".into(), Value::to_string)
}

fn change_line(c: &ValueChange) -> String {
    let mut line = format!("{}: {} -> {}", c.key, show(&c.a), show(&c.b));
    if let Some(d) = c.change {
        let rel = c.relative.map_or(String::new(), |r| format!(", {:+.2}%", r * 100.0));
        let sign = if d >= 0.0 { "+" } else { "" };
        line.push_str(&format!("  ({sign}{}{rel})", short_number(d)));
    }
    line
}

fn short(hash: &Option<String>) -> String {
    hash.as_ref().map_or("(none)".into(), |h| h[..h.len().min(10)].to_string())
}

/// Lines of a diff shown before `-v` is needed.
const LINES_SHOWN: usize = 20;

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    let git = repo.git()?;
    let all = store::list(&git)?;
    let a = store::find_in(&all, &args.a)?;
    let b = match &args.b {
        Some(q) => store::find_in(&all, q)?,
        None => {
            let head = git.head().and_then(|h| h.peel_to_commit()).map(|c| c.id().to_string()).ok();
            all.iter().rev().find(|r| Some(&r.commit) == head.as_ref() && r.id != a.id).ok_or_else(|| {
                Error::Usage(format!(
                    "{}: no other record of the commit HEAD is on to compare with; name two records: trove exp diff A B",
                    args.a
                ))
            })?
        }
    };
    let d = compare::diff(a, b);
    let out = &ctx.out;
    if out.json {
        out.emit(&d);
        return Ok(());
    }
    out.say(format!("{} ({}) -> {} ({})", a.short_id(), a.name, b.short_id(), b.name));
    if d.a_commit != d.b_commit {
        out.say(format!("commit: {} -> {}", &d.a_commit[..10], &d.b_commit[..10]));
    }
    let verbose = out.verbose > 0;
    for (title, list) in [("params", &d.params), ("metrics", &d.metrics)] {
        let shown: Vec<&ValueChange> = list.iter().filter(|c| c.changed || verbose).collect();
        let same = list.iter().filter(|c| !c.changed).count();
        if !shown.is_empty() {
            out.say(format!("{title}:"));
            for c in shown {
                out.say(format!("    {}{}", change_line(c), if c.changed { "" } else { "  (same)" }));
            }
        }
        if same > 0 && !verbose {
            out.detail(format!("    {same} unchanged"));
        }
    }
    if !d.tags.is_empty() {
        out.say("tags:");
        for c in &d.tags {
            out.say(format!("    {}", change_line(c)));
        }
    }
    for (title, list) in [("data", &d.data), ("artifacts", &d.artifacts)] {
        if !list.is_empty() {
            out.say(format!("{title}:"));
            for c in list {
                let what = match (&c.a, &c.b) {
                    (None, Some(_)) => format!("added ({})", short(&c.b)),
                    (Some(_), None) => format!("removed (was {})", short(&c.a)),
                    _ => format!("{} -> {}", short(&c.a), short(&c.b)),
                };
                out.say(format!("    {}: {what}", c.path));
            }
        }
    }
    if !d.env_files.is_empty() || !d.interpreters.is_empty() || !d.packages.is_empty() {
        out.say("environment:");
        for c in &d.interpreters {
            out.say(format!("    {}", change_line(c)));
        }
        for c in &d.packages {
            let version = |v: &Option<crate::exp::Value>| v.as_ref().map_or(String::new(), |v| v.to_string());
            let what = match (&c.a, &c.b) {
                (None, _) => format!("added ({})", version(&c.b)),
                (_, None) => format!("removed (was {})", version(&c.a)),
                _ => format!("{} -> {}", version(&c.a), version(&c.b)),
            };
            out.say(format!("    package {}: {what}", c.key));
        }
        for f in &d.env_files {
            let presence = match (f.in_a, f.in_b) {
                (false, true) => " (only in the second)",
                (true, false) => " (only in the first)",
                _ => "",
            };
            out.say(format!("    {}: +{} -{} lines{presence}", f.file, f.added, f.removed));
            let limit = if verbose { usize::MAX } else { LINES_SHOWN };
            for l in f.lines.iter().take(limit) {
                out.say(format!("      {l}"));
            }
            if f.lines.len() > limit {
                let more = crate::cli::output::plural((f.lines.len() - limit) as u64, "more line");
                out.say(format!("      … {more} (-v shows all)"));
            }
        }
    }
    if d.is_empty() {
        out.say("no differences in commit, params, metrics, tags, data, artifacts or environment");
    }
    Ok(())
}
