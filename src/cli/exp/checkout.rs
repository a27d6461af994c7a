//! `trove exp checkout ID [-b BRANCH] [--no-data] [--force]`.

use std::path::Path;

use anyhow::Result;

use crate::cli::output::plural;
use crate::cli::{Ctx, WithReport};
use crate::error::Error;
use crate::exp::{checkout, store};

#[derive(clap::Args)]
pub struct Args {
    /// The record: id, id prefix or name
    id: String,
    /// The new branch to check the commit out on (default: exp/<name>)
    #[arg(short = 'b', long, value_name = "BRANCH")]
    branch: Option<String>,
    /// Check out the commit only, not the data and artifacts
    #[arg(long)]
    no_data: bool,
    /// Overwrite unsaved changes to the recorded data and artifacts
    #[arg(short, long)]
    force: bool,
    /// The remote to fetch missing data from (default: core.remote)
    #[arg(short, long, value_name = "NAME")]
    remote: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    let progress = ctx.out.reporter();
    let _lock = repo.lock(&progress)?;
    let git = repo.git()?;
    let record = store::find(&git, &args.id)?;
    let branch = args.branch.clone().unwrap_or_else(|| checkout::default_branch(&record));
    let remote = match &args.remote {
        Some(name) => Some(crate::remote::open(&repo, Some(name))?),
        None => crate::remote::open(&repo, None).ok(),
    };
    let options = checkout::Options { data: !args.no_data, force: args.force };
    let done = match checkout::checkout(&repo, &record, &branch, options, remote.as_deref(), &progress) {
        Err(Error::Unsaved { path, files }) => return Err(unsaved(&path, &files, &args).into()),
        done => done?,
    };
    let out = &ctx.out;
    out.say(format!(
        "checked out {} ({}) at {} on branch {}",
        record.short_id(),
        record.name,
        &record.commit[..10],
        done.branch
    ));
    if !args.no_data {
        out.say(format!(
            "data: {} written, {} fetched, {} verified{}",
            plural(done.placed as u64, "file"),
            plural(done.fetched as u64, "object"),
            done.verified,
            if done.artifacts.is_empty() {
                String::new()
            } else {
                format!("; artifacts: {}", done.artifacts.join(", "))
            }
        ));
    }
    for w in &done.warnings {
        out.warn(w);
    }
    out.emit(&done);
    Ok(())
}

/// Unsaved data in the way, with a hint that fits this command: recorded data and
/// artifacts are not (all) tracked paths, so `trove checkout --force` cannot discard them.
fn unsaved(path: &Path, files: &[String], args: &Args) -> WithReport {
    let shown: Vec<&str> = files.iter().take(5).map(String::as_str).collect();
    let more = if files.len() > 5 { format!(" and {} more", files.len() - 5) } else { String::new() };
    let branch = args.branch.as_ref().map(|b| format!(" -b {b}")).unwrap_or_default();
    WithReport {
        message: format!("{}: would overwrite unsaved changes", path.display()),
        hint: Some(format!(
            "changed: {}{more}\nkeep them by saving them elsewhere (`trove add` for data), or discard them with `trove exp checkout {}{branch} --force`",
            shown.join(", "),
            args.id
        )),
        report: serde_json::json!({}),
    }
}
