//! `trove exp …`: experiment records. One file per subcommand; this one only dispatches.

use anyhow::Result;
use clap::Subcommand;

use super::Ctx;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let _ = ctx;
    match args.command {}
}
