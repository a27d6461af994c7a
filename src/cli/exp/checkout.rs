//! `trove exp checkout ID [-b BRANCH] [--no-data]`.

use anyhow::Result;

use crate::cli::Ctx;
use crate::cli::output::plural;
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
    let branch = args.branch.unwrap_or_else(|| checkout::default_branch(&record));
    let remote = match &args.remote {
        Some(name) => Some(crate::remote::open(&repo, Some(name))?),
        None => crate::remote::open(&repo, None).ok(),
    };
    let done = checkout::checkout(&repo, &record, &branch, !args.no_data, remote.as_deref(), &progress)?;
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
        eprintln!("warning: {w}");
    }
    out.emit(&done);
    Ok(())
}
