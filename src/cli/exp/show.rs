//! `trove exp show ID`: one record, whole.

use anyhow::Result;

use super::super::Ctx;
use super::super::output::{bytes, plural};
use super::log::record_json;
use crate::exp::record::{Metric, Point, Record};
use crate::exp::store;

#[derive(clap::Args)]
pub struct Args {
    /// The record: its id, a unique prefix of it, or its name (the newest of that name)
    id: String,
}

/// `key  value` lines, keys padded to one width.
fn aligned<'a>(rows: impl IntoIterator<Item = (String, String)> + 'a) -> Vec<String> {
    let rows: Vec<(String, String)> = rows.into_iter().collect();
    let w = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    rows.into_iter().map(|(k, v)| format!("  {k:<w$}  {v}").trim_end().to_string()).collect()
}

fn lines(git: &git2::Repository, r: &Record, verbose: bool) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut head = vec![
        ("id".to_string(), r.id.clone()),
        ("name".into(), r.name.clone()),
        ("created".into(), format!("{} by {}", r.created, r.user)),
        (
            "commit".into(),
            format!("{}{}", r.commit, r.branch.as_ref().map_or(String::new(), |b| format!(" ({b})"))),
        ),
        ("status".into(), r.status.as_str().into()),
    ];
    if r.dirty {
        let hash = r
            .dirty_diff_hash
            .as_deref()
            .map_or(String::new(), |h| format!("; diff blake3 {}", &h[..h.len().min(16)]));
        head.push(("dirty".into(), format!("yes: {}{hash}", r.dirty_paths.join(", "))));
    }
    if let Some(run) = &r.run {
        let how = match run.exit_code {
            Some(c) => format!("exit code {c}"),
            None => "killed by a signal".into(),
        };
        head.push(("command".into(), format!("{} ({how}, {:.1} s)", run.argv.join(" "), run.duration_secs)));
    }
    out.extend(head.into_iter().map(|(k, v)| format!("{k:<8} {v}")));
    let mut section = |title: &str, rows: Vec<(String, String)>| {
        if !rows.is_empty() {
            out.push(String::new());
            out.push(format!("{title}:"));
            out.extend(aligned(rows));
        }
    };
    section("params", r.params.iter().map(|(k, v)| (k.clone(), v.to_string())).collect());
    let mut metrics = Vec::new();
    for (k, m) in &r.metrics {
        match m {
            Metric::Value(v) => metrics.push((k.clone(), v.to_string())),
            Metric::Series(s) => {
                let last = s.last.map_or("-".to_string(), |l| l.to_string());
                metrics.push((k.clone(), format!("{last} (last of a series of {} points)", s.points)));
                if verbose {
                    for Point { step, value, .. } in store::read_series(git, s)? {
                        metrics.push((String::new(), format!("  step {step}: {value}")));
                    }
                }
            }
        }
    }
    section("metrics", metrics);
    section("tags", r.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    section(
        "data",
        r.data
            .iter()
            .map(|d| (d.path.clone(), format!("{:<4}  {:>10}  {}", d.kind.as_str(), bytes(d.size), d.hash)))
            .collect(),
    );
    section(
        "artifacts",
        r.artifacts.iter().map(|a| (a.path.clone(), format!("{:>10}  {}", bytes(a.size), a.hash))).collect(),
    );
    let mut env: Vec<(String, String)> =
        r.env.interpreters.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (name, text) in &r.env.files {
        env.push((name.clone(), plural(text.lines().count() as u64, "line")));
        if verbose {
            env.extend(text.lines().map(|l| (String::new(), format!("| {l}"))));
        }
    }
    if !r.env.packages.is_empty() {
        env.push(("packages".into(), plural(r.env.packages.len() as u64, "Python package")));
        if verbose {
            env.extend(r.env.packages.iter().map(|p| (String::new(), format!("| {p}"))));
        }
    }
    section("environment", env);
    Ok(out)
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    let git = repo.git()?;
    let r = store::find(&git, &args.id)?;
    let out = &ctx.out;
    if out.json {
        out.emit(&record_json(&git, &r)?);
        return Ok(());
    }
    for line in lines(&git, &r, out.verbose > 0)? {
        out.say(line);
    }
    if !r.env.files.is_empty()
        || !r.env.packages.is_empty()
        || r.metrics.values().any(|m| matches!(m, Metric::Series(_)))
    {
        out.hint("-v shows series points and environment files in full; --json the whole record");
    }
    Ok(())
}
