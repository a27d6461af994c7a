//! `trove model …`: the model registry (versions, stages and aliases in git tags).

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use super::Ctx;
use super::output::{bytes, plural};
use crate::error::Error;
use crate::model::{self, Bump, LabelKind, Model, SemVer, Version};
use crate::tracked::{Tracked, pointer_path_for};
use crate::{remote, transfer, workspace};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register a new version of a model: a tracked file or folder at HEAD, or an experiment's artifact
    Register(RegisterArgs),
    /// Point a stage (or an alias) at a version
    Promote(PromoteArgs),
    /// Take a stage (or an alias) away from the version it points at
    Demote(DemoteArgs),
    /// Mark one version, or the whole model, as deprecated
    Deprecate(DeprecateArgs),
    /// The registered models: latest version, stages and aliases
    List,
    /// One model: its versions, stages, aliases, metrics, data and history
    Show(ShowArgs),
    /// Write a version's file or folder (NAME, NAME@VERSION, NAME@ALIAS or NAME:STAGE)
    Get(GetArgs),
}

#[derive(clap::Args)]
struct RegisterArgs {
    /// The model's name (letters, digits, `-`, `_`, `.`)
    name: String,
    /// The tracked file or folder, as committed at HEAD
    #[arg(required_unless_present = "exp", conflicts_with = "exp")]
    path: Option<PathBuf>,
    /// Take the model from this experiment record's artifacts (id, id prefix or name)
    #[arg(long, value_name = "ID")]
    exp: Option<String>,
    /// With --exp: which artifact (needed when the record has several)
    #[arg(long, value_name = "PATH", requires = "exp")]
    artifact: Option<String>,
    /// The version number (default: the newest one bumped by --bump; v0.1.0 for a new model)
    #[arg(long, value_name = "X.Y.Z")]
    version: Option<String>,
    /// Which part of the newest version to raise when --version is not given
    #[arg(long, value_enum, default_value = "minor", conflicts_with = "version")]
    bump: Bump,
    /// Why: kept in the registry's history
    #[arg(short, long, value_name = "NOTE")]
    message: Option<String>,
}

/// The stage or alias a promotion or demotion concerns: one of the two.
#[derive(clap::Args)]
struct LabelArgs {
    /// A stage (e.g. staging, prod)
    #[arg(long, value_name = "STAGE", required_unless_present = "alias", conflicts_with = "alias")]
    stage: Option<String>,
    /// An alias instead (e.g. champion), as MLflow's aliases
    #[arg(long, value_name = "ALIAS")]
    alias: Option<String>,
    /// Why: kept in the registry's history
    #[arg(short, long, value_name = "NOTE")]
    message: Option<String>,
}

impl LabelArgs {
    fn label(&self) -> (&str, LabelKind) {
        match (&self.stage, &self.alias) {
            (Some(s), _) => (s, LabelKind::Stage),
            (None, Some(a)) => (a, LabelKind::Alias),
            (None, None) => unreachable!("clap requires one"),
        }
    }
}

#[derive(clap::Args)]
struct PromoteArgs {
    name: String,
    /// The version (X.Y.Z or vX.Y.Z)
    version: String,
    #[command(flatten)]
    label: LabelArgs,
}

#[derive(clap::Args)]
struct DemoteArgs {
    name: String,
    #[command(flatten)]
    label: LabelArgs,
}

#[derive(clap::Args)]
struct DeprecateArgs {
    name: String,
    /// Only this version (default: the whole model)
    version: Option<String>,
    /// Why: kept in the registry's history
    #[arg(short, long, value_name = "NOTE")]
    message: Option<String>,
}

#[derive(clap::Args)]
struct ShowArgs {
    name: String,
}

#[derive(clap::Args)]
struct GetArgs {
    /// NAME (its newest version), NAME@VERSION, NAME@ALIAS or NAME:STAGE
    spec: String,
    /// Where to write it (default: its file or folder name, in the current folder)
    #[arg(short, long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// The remote to fetch it from when the cache lacks it (default: core.remote)
    #[arg(short, long, value_name = "NAME")]
    remote: Option<String>,
    /// Parallel connections
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: Option<u16>,
    /// Read the registry from this git repository (a path or URL) and fetch the model
    /// from its data remote: works anywhere, without cloning its code or data
    #[arg(long, value_name = "GIT_URL", conflicts_with = "remote")]
    repo: Option<String>,
    /// With --repo: the revision whose .trove/config names the data remote (default: its
    /// default branch)
    #[arg(long, value_name = "REV", requires = "repo")]
    rev: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        Command::Register(a) => register(ctx, a),
        Command::Promote(a) => relabel(ctx, &a.name, &a.label, Some(&a.version)),
        Command::Demote(a) => relabel(ctx, &a.name, &a.label, None),
        Command::Deprecate(a) => deprecate(ctx, a),
        Command::List => list(ctx),
        Command::Show(a) => show(ctx, a),
        Command::Get(a) => get(ctx, a),
    }
}

fn version_arg(s: &str) -> Result<SemVer, Error> {
    SemVer::parse(s).ok_or_else(|| Error::Usage(format!("{s:?} is not a version: give X.Y.Z or vX.Y.Z")))
}

fn register(ctx: &Ctx, a: RegisterArgs) -> Result<()> {
    let repo = ctx.open()?;
    let git = repo.git()?;
    model::check_name("model name", &a.name)?;
    let version = a.version.as_deref().map(version_arg).transpose()?;
    let origin = match (&a.path, &a.exp) {
        (Some(path), None) => model::origin_of_path(&repo, &ctx.cwd, path)?,
        (None, Some(exp)) => model::origin_of_exp(&git, exp, a.artifact.as_deref())?,
        _ => unreachable!("clap requires exactly one"),
    };
    if !workspace::in_cache(&repo, &origin.pointer()) {
        ctx.out.warn(format!(
            "{} is not in this cache: `trove model get` will need it on a remote that has it",
            origin.path
        ));
    }
    let record = model::register(
        &git,
        model::NewVersion { name: a.name, version, bump: a.bump, origin, note: a.message },
    )?;
    ctx.out.say(format!(
        "registered {} {}: {} ({}) at commit {}{}",
        record.name,
        record.version,
        record.path,
        bytes(record.size),
        &record.commit[..12],
        record.exp.as_ref().map(|e| format!(", experiment {e}")).unwrap_or_default()
    ));
    ctx.out.hint("share it: `trove push` sends the model, `git push origin --tags` the registry");
    ctx.out.emit(&record);
    Ok(())
}

fn relabel(ctx: &Ctx, name: &str, args: &LabelArgs, version: Option<&str>) -> Result<()> {
    let (label, kind) = args.label();
    let note = args.message.as_deref();
    let repo = ctx.open()?;
    let git = repo.git()?;
    let asked = version.map(version_arg).transpose()?;
    let version = model::set_label(&git, name, label, kind, asked, note)?;
    let word = model::kind_word(kind);
    match asked {
        Some(_) => ctx.out.say(format!("{name}: {word} {label} is now {version}")),
        None => ctx.out.say(format!("{name}: {word} {label} taken from {version}")),
    }
    ctx.out.emit(&serde_json::json!({
        "name": name, "label": label, "kind": kind, "version": version, "set": asked.is_some(),
    }));
    Ok(())
}

fn deprecate(ctx: &Ctx, a: DeprecateArgs) -> Result<()> {
    let repo = ctx.open()?;
    let git = repo.git()?;
    let version = a.version.as_deref().map(version_arg).transpose()?;
    model::deprecate(&git, &a.name, version, a.message.as_deref())?;
    match version {
        Some(v) => ctx.out.say(format!("{} {v} deprecated", a.name)),
        None => ctx.out.say(format!("{} deprecated", a.name)),
    }
    ctx.out.emit(&serde_json::json!({ "name": a.name, "version": version }));
    Ok(())
}

fn labels_text(m: &Model) -> String {
    m.labels.iter().map(|(l, x)| format!("{l}={}", x.version)).collect::<Vec<_>>().join(" ")
}

fn list(ctx: &Ctx) -> Result<()> {
    let repo = ctx.open()?;
    let models = model::load(&repo.git()?)?;
    if models.is_empty() {
        ctx.out.say("no models registered (`trove model register NAME PATH` adds one)");
    } else {
        let rows: Vec<[String; 4]> = models
            .values()
            .map(|m| {
                let latest = m.latest().map_or("-".to_string(), |v| v.record.version.to_string());
                let name = if m.deprecated { format!("{} (deprecated)", m.name) } else { m.name.clone() };
                [name, latest, m.versions.len().to_string(), labels_text(m)]
            })
            .collect();
        let header = ["NAME", "LATEST", "VERSIONS", "STAGES AND ALIASES"].map(String::from);
        let width = |i: usize| rows.iter().chain([&header]).map(|r| r[i].chars().count()).max().unwrap_or(0);
        let (w0, w1, w2) = (width(0), width(1), width(2));
        for r in std::iter::once(&header).chain(&rows) {
            ctx.out.say(format!("{:w0$}  {:w1$}  {:w2$}  {}", r[0], r[1], r[2], r[3]).trim_end());
        }
    }
    ctx.out.emit(&models.values().collect::<Vec<_>>());
    Ok(())
}

fn show(ctx: &Ctx, a: ShowArgs) -> Result<()> {
    let repo = ctx.open()?;
    let models = model::load(&repo.git()?)?;
    let m = models.get(&a.name).ok_or_else(|| Error::Model {
        name: a.name.clone(),
        message: "is not registered (`trove model list` shows the registered ones)".into(),
    })?;
    let out = &ctx.out;
    out.say(format!(
        "model {}{}: {}",
        m.name,
        if m.deprecated { " (deprecated)" } else { "" },
        plural(m.versions.len() as u64, "version")
    ));
    if !m.labels.is_empty() {
        out.say("stages and aliases:");
        for (label, l) in &m.labels {
            out.say(format!(
                "  {label:<12} {}  ({}, since {} by {})",
                l.version,
                model::kind_word(l.kind),
                l.since,
                l.by
            ));
        }
    }
    out.say("versions:");
    for v in m.versions.iter().rev() {
        show_version(ctx, v);
    }
    out.say("history:");
    for e in &m.history {
        let what = match (&e.label, e.version) {
            (Some(l), Some(v)) => format!(
                "{} {v} {} {l}",
                if matches!(e.action, model::Action::Promote) { "promote" } else { "demote" },
                e.label_kind.map(model::kind_word).unwrap_or("stage")
            ),
            (None, Some(v)) => {
                format!("{} {v}", serde_json::to_value(e.action).expect("serialises").as_str().unwrap_or(""))
            }
            _ => "deprecate the model".to_string(),
        };
        let why = e.note.as_ref().map(|n| format!(": {n}")).unwrap_or_default();
        out.say(format!("  {}  {what} by {}{why}", e.when, e.who));
    }
    out.emit(m);
    Ok(())
}

fn show_version(ctx: &Ctx, v: &Version) {
    let r = &v.record;
    let mut flags = v.labels.clone();
    if v.deprecated {
        flags.push("deprecated".into());
    }
    let flags = if flags.is_empty() { String::new() } else { format!("  [{}]", flags.join(", ")) };
    ctx.out.say(format!("  {}{flags}", r.version));
    ctx.out.say(format!("    object   {} {} ({}) {}", r.kind.as_str(), r.path, bytes(r.size), r.hash));
    ctx.out.say(format!("    commit   {}", r.commit));
    if let Some(e) = &r.exp {
        ctx.out.say(format!("    exp      {e}"));
    }
    ctx.out.say(format!("    by       {} at {}", v.registered_by, v.registered_at));
    if !r.metrics.is_empty() {
        let m: Vec<String> = r.metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
        ctx.out.say(format!("    metrics  {}", m.join(" ")));
    }
    if !r.params.is_empty() {
        let p: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        ctx.out.say(format!("    params   {}", p.join(" ")));
    }
    for d in &r.data {
        ctx.out.say(format!("    data     {} {}", d.path, d.hash));
    }
    if let Some(n) = &r.note {
        ctx.out.say(format!("    note     {n}"));
    }
}

/// Warn about a deprecated version; where to write it.
fn destination(
    ctx: &Ctx,
    models: &std::collections::BTreeMap<String, Model>,
    v: &Version,
    out: Option<&std::path::Path>,
) -> PathBuf {
    if v.deprecated || models[&v.record.name].deprecated {
        ctx.out.warn(format!("{} {} is deprecated", v.record.name, v.record.version));
    }
    match out {
        Some(o) => crate::tracked::normalize(&ctx.cwd, o),
        None => ctx.cwd.join(v.record.file_name()),
    }
}

fn report_written(ctx: &Ctx, record: &model::VersionRecord, dest: &std::path::Path, repo: Option<&str>) {
    let shown = dest.strip_prefix(&ctx.cwd).unwrap_or(dest).display().to_string();
    let from = repo.map(|r| format!(" of {r}")).unwrap_or_default();
    ctx.out.say(format!(
        "wrote {} {}{from} to {shown} ({})",
        record.name,
        record.version,
        bytes(record.size)
    ));
    ctx.out.emit(&serde_json::json!({
        "name": record.name,
        "version": record.version,
        "repo": repo,
        "out": dest,
        "kind": record.kind,
        "hash": record.hash,
        "size": record.size,
        "commit": record.commit,
    }));
}

/// `model get --repo`: the registry of another repository, read from a mirror of its git
/// objects; the object from the data remote its config names.
fn get_from_repo(ctx: &Ctx, url: &str, a: &GetArgs) -> Result<()> {
    let local = crate::repo::Repo::open(&ctx.cwd).ok();
    let _lock = match &local {
        Some(repo) => Some(repo.lock(&ctx.out.reporter())?),
        None => None,
    };
    let up = crate::upstream::Upstream::open(url, &ctx.cwd)?;
    let commit = up.resolve(a.rev.as_deref())?;
    let models = model::load(up.git())?;
    let version = model::resolve(&models, &a.spec).map_err(|e| match e {
        Error::Model { name, message } => {
            Error::Model { name, message: format!("{message} (in {})", up.url()) }
        }
        other => other,
    })?;
    let dest = destination(ctx, &models, version, a.out.as_deref());
    super::import::fetch_and_place(
        ctx,
        &up,
        commit,
        &version.record.pointer(),
        &dest,
        local.as_ref(),
        a.jobs,
    )?;
    report_written(ctx, &version.record, &dest, Some(up.url()));
    Ok(())
}

fn get(ctx: &Ctx, a: GetArgs) -> Result<()> {
    if let Some(url) = &a.repo {
        return get_from_repo(ctx, url, &a);
    }
    let repo = ctx.open()?;
    let progress = ctx.out.reporter();
    let _lock = repo.lock(&progress)?;
    let models = model::load(&repo.git()?)?;
    let version = model::resolve(&models, &a.spec)?;
    let record = &version.record;
    let dest = destination(ctx, &models, version, a.out.as_deref());
    if std::fs::symlink_metadata(&dest).is_ok() {
        return Err(Error::path(&dest, "already exists; choose another place with -o").into());
    }
    let pointer = record.pointer();
    if !workspace::in_cache(&repo, &pointer) {
        let remote = remote::open(&repo, a.remote.as_deref())?;
        let item = Tracked {
            pointer_path: pointer_path_for(&dest),
            data_path: dest.clone(),
            pointer: pointer.clone(),
        };
        let report = transfer::fetch(&repo, remote.as_ref(), &[item], a.jobs.map(usize::from), &progress)?;
        if !report.ok() {
            let (kind, text) = report.shortfall();
            let message = format!("cannot supply {} {}: {text}", record.name, record.version);
            return Err(Error::remote(report.remote.clone(), kind, message).into());
        }
    }
    // Written beside `dest` under a temporary name, then renamed: never half there.
    crate::upstream::place(&repo, &pointer, &dest, &progress)?;
    report_written(ctx, record, &dest, None);
    Ok(())
}
