//! `trove exp …`: experiment records. One file per subcommand; this one only dispatches.

use anyhow::Result;
use clap::Subcommand;

use super::Ctx;

mod share;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send the records to a git remote (after merging its own)
    Push(share::Args),
    /// Fetch a git remote's records and merge them (a union: never a conflict)
    Pull(share::Args),
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        Command::Push(a) => share::run(ctx, a, true),
        Command::Pull(a) => share::run(ctx, a, false),
    }
}
