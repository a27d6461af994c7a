//! `trove exp …`: experiment records. One file per subcommand; this one only dispatches.

use anyhow::Result;
use clap::Subcommand;

use super::Ctx;

mod checkout;
mod diff;
mod list;
mod log;
mod plot;
mod remove;
mod run;
mod share;
mod show;
mod sync;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Record an experiment on HEAD: params, metrics, tags, artifacts, data and environment
    Log(log::Args),
    /// Run a command and record it: its exit code, duration and the metrics file it wrote
    Run(run::Args),
    /// List the records: a table (or --csv, --json), sorted and filtered
    List(list::Args),
    /// Show one record (id, id prefix or name)
    Show(show::Args),
    /// Compare two records: params, metrics, data and environment
    Diff(diff::Args),
    /// Remove records from the list: a new record commit drops them (history keeps them)
    Remove(remove::Args),
    /// Re-create a recorded run: its commit on a new branch, its exact data and artifacts
    Checkout(checkout::Args),
    /// Send the records to a git remote (after merging its own)
    Push(share::Args),
    /// Fetch a git remote's records and merge them (a union: never a conflict)
    Pull(share::Args),
    /// Write one self-contained HTML page: parallel coordinates and metric series
    Plot(plot::Args),
    /// Copy the records to an MLflow tracking server (idempotent: sends only what is new)
    Sync(sync::Args),
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        Command::Log(a) => log::run(ctx, a),
        Command::Run(a) => run::run(ctx, a),
        Command::List(a) => list::run(ctx, a),
        Command::Show(a) => show::run(ctx, a),
        Command::Diff(a) => diff::run(ctx, a),
        Command::Remove(a) => remove::run(ctx, a),
        Command::Checkout(a) => checkout::run(ctx, a),
        Command::Push(a) => share::run(ctx, a, true),
        Command::Pull(a) => share::run(ctx, a, false),
        Command::Plot(a) => plot::run(ctx, a),
        Command::Sync(a) => sync::run(ctx, a),
    }
}
