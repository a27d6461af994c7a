//! `trove exp log`: record an experiment on HEAD.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::super::Ctx;
use crate::error::Error;
use crate::exp::collect::{self, CodeState, Inputs};
use crate::exp::record::{self, Point, Record, Value};
use crate::exp::store;
use crate::repo::Repo;
use crate::tracked;

/// What a record is given on the command line (shared by `exp log` and `exp run`).
#[derive(clap::Args, Debug)]
pub struct RecordArgs {
    /// A name for the record (default: BRANCH-SHORTID)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// A param (repeatable); the value is a number, true/false, or text
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// A metric (repeatable)
    #[arg(short = 'm', long = "metric", value_name = "KEY=VALUE")]
    pub metrics: Vec<String>,
    /// Params from a YAML or JSON file (nested keys become `a.b`); -p wins over it
    #[arg(long, value_name = "FILE")]
    pub params_file: Option<PathBuf>,
    /// Metrics from a YAML or JSON file; a list of numbers or of {step, value} is a series
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Files or folders the run produced, stored in the cache (pushed and pulled like data)
    #[arg(long = "artifact", value_name = "PATH", num_args = 1..)]
    pub artifacts: Vec<PathBuf>,
    /// A tag: KEY=VALUE, or KEY alone (repeatable)
    #[arg(short = 't', long = "tag", value_name = "KEY[=VALUE]")]
    pub tags: Vec<String>,
    /// Record even with uncommitted changes (their paths and a hash of the diff are kept)
    #[arg(long)]
    pub allow_dirty: bool,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub record: RecordArgs,
}

/// The arguments, read and checked: files resolved, params read, KEY=VALUEs parsed.
pub struct Prepared {
    pub inputs: Inputs,
    /// Metric series from the metrics file (-m wins over them).
    pub series: BTreeMap<String, Vec<Point>>,
    /// Absolute paths.
    pub artifacts: Vec<PathBuf>,
    pub metrics_file: Option<PathBuf>,
    /// `-m` values, applied over the metrics file.
    pub cli_metrics: BTreeMap<String, Value>,
}

impl Prepared {
    /// Paths a run writes: not counted as uncommitted changes.
    pub fn outputs(&self) -> Vec<PathBuf> {
        self.artifacts.iter().cloned().chain(self.metrics_file.clone()).collect()
    }

    /// Take the metrics file's values and series, then the `-m` values over them.
    pub fn add_metrics(&mut self, values: BTreeMap<String, Value>, series: BTreeMap<String, Vec<Point>>) {
        self.inputs.metrics.extend(values);
        self.series.extend(series);
        for (k, v) in &self.cli_metrics {
            self.series.remove(k);
            self.inputs.metrics.insert(k.clone(), v.clone());
        }
        for k in self.series.keys() {
            self.inputs.metrics.remove(k);
        }
    }
}

pub fn prepare(ctx: &Ctx, repo: &Repo, args: &RecordArgs) -> Result<Prepared> {
    let mut inputs = Inputs { name: args.name.clone(), ..Inputs::default() };
    if let Some(f) = &args.params_file {
        inputs.params = collect::read_params_file(&tracked::normalize(&ctx.cwd, f))?;
    }
    for a in &args.params {
        let (k, v) = collect::parse_assignment("-p", a)?;
        inputs.params.insert(k, Value::parse_cli(&v));
    }
    let mut cli_metrics = BTreeMap::new();
    for a in &args.metrics {
        let (k, v) = collect::parse_assignment("-m", a)?;
        cli_metrics.insert(k, Value::parse_cli(&v));
    }
    for t in &args.tags {
        let (k, v) = t.split_once('=').unwrap_or((t.as_str(), ""));
        if k.trim().is_empty() {
            return Err(Error::Usage(format!("-t {t}: expected KEY=VALUE or KEY")).into());
        }
        collect::check_key(k.trim()).map_err(|m| Error::Usage(format!("-t {t}: {m}")))?;
        inputs.tags.insert(k.trim().to_string(), v.to_string());
    }
    let artifacts = args
        .artifacts
        .iter()
        .map(|p| tracked::resolve_in_repo(repo, &ctx.cwd, p))
        .collect::<Result<Vec<_>, _>>()?;
    let metrics_file = args.metrics_file.as_ref().map(|f| tracked::normalize(&ctx.cwd, f));
    Ok(Prepared { inputs, series: BTreeMap::new(), artifacts, metrics_file, cli_metrics })
}

/// The record as `show --json` prints it: series metrics carry their points as `values`.
pub fn record_json(git: &git2::Repository, r: &Record) -> Result<serde_json::Value> {
    let mut doc = serde_json::to_value(r)?;
    for (key, metric) in &r.metrics {
        if let record::Metric::Series(s) = metric {
            let points: Vec<serde_json::Value> = store::read_series(git, s)?
                .into_iter()
                .map(|p| match p.time {
                    Some(t) => serde_json::json!({ "step": p.step, "value": p.value, "timestamp": t }),
                    None => serde_json::json!({ "step": p.step, "value": p.value }),
                })
                .collect();
            doc["metrics"][key]["values"] = serde_json::Value::Array(points);
        }
    }
    Ok(doc)
}

/// Say what was recorded: the id on stdout (the record with --json).
pub fn report(ctx: &Ctx, git: &git2::Repository, r: &Record, code: &CodeState) -> Result<()> {
    let out = &ctx.out;
    out.say(&r.id);
    out.detail(format!(
        "  {} on {}{}, {} params, {} metrics, {} artifacts",
        r.name,
        &r.commit[..10],
        r.branch.as_ref().map_or(String::new(), |b| format!(" ({b})")),
        r.params.len(),
        r.metrics.len(),
        r.artifacts.len()
    ));
    if code.dirty() {
        out.hint(format!(
            "recorded with uncommitted changes: {}",
            code.dirty_paths.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if out.json {
        out.emit(&record_json(git, r)?);
    }
    Ok(())
}

fn read_metrics(prepared: &mut Prepared) -> Result<()> {
    if let Some(f) = prepared.metrics_file.clone() {
        let (mut values, mut series) = collect::read_metrics_file(&f)?;
        if let Some(problem) = collect::take_invalid_metrics(&mut values, &mut series).first() {
            return Err(Error::path(&f, problem.clone()).into());
        }
        prepared.add_metrics(values, series);
    } else {
        prepared.add_metrics(BTreeMap::new(), BTreeMap::new());
    }
    Ok(())
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    let git = repo.git()?;
    let mut prepared = prepare(ctx, &repo, &args.record)?;
    read_metrics(&mut prepared)?;
    let progress = ctx.out.reporter();
    let code = collect::code_state(&repo, &git, &prepared.outputs(), &progress)?;
    code.check_clean(&repo.root, args.record.allow_dirty)?;
    let mut stored = collect::store_run(&repo, &code, &prepared.artifacts, &progress)?;
    let lock = stored.lock.take();
    let id = record::new_id();
    let r = collect::build(&repo, &git, id, &code, prepared.inputs, stored, None)?;
    let r = store::append(&git, r, &prepared.series)?;
    drop(lock); // the record names the artifacts now: gc keeps them
    report(ctx, &git, &r, &code)
}

/// For messages: a path relative to the top of the repository.
pub fn shown(repo: &Repo, p: &Path) -> String {
    tracked::display_rel(&repo.root, p)
}
