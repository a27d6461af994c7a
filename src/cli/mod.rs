//! The command line: global flags, dispatch, and turning errors into exit codes.

mod add;
mod checkout;
mod commit;
mod config;
mod diff;
mod exp;
mod gc;
mod get;
mod hooks;
mod import;
mod init;
mod ls;
mod model;
mod output;
mod remote;
mod remove;
mod scope;
mod status;
mod transfer;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::Error;
use crate::repo::Repo;
pub use output::Output;

#[derive(Parser)]
#[command(name = "trove", version, about = "Version datasets and models next to your code in git")]
pub struct Cli {
    /// Print nothing but errors
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Print more detail
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Print one JSON document on stdout instead of the human report
    #[arg(long, global = true)]
    json: bool,
    /// Never draw progress bars
    #[arg(long, global = true)]
    no_progress: bool,
    /// Run as if started in this folder
    #[arg(short = 'C', global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create .trove/ in this git work tree (running `git init` if there is none)
    Init(init::Args),
    /// Track files or folders: store them in the cache and write pointer files
    Add(add::Args),
    /// Show which tracked data changed, is missing, or is not in the cache
    Status(status::Args),
    /// Make the workspace match the pointer files, from the cache
    Checkout(checkout::Args),
    /// Re-add modified tracked data and commit the pointer files to git
    Commit(commit::Args),
    /// List tracked data
    Ls(ls::Args),
    /// Stop tracking data (the data stays in place)
    Remove(remove::RemoveArgs),
    /// Move tracked data and its pointer together
    Move(remove::MoveArgs),
    /// Turn linked, read-only tracked files into private writable copies
    Unprotect(remove::UnprotectArgs),
    /// Read or write a setting
    Config(config::Args),
    /// Manage remotes
    Remote(remote::Args),
    /// Upload the objects the pointers need that the remote lacks
    Push(transfer::Args),
    /// Download the objects the pointers need into the cache
    Fetch(transfer::Args),
    /// Fetch, then check out
    Pull(transfer::Args),
    /// Show which files inside tracked data differ between revisions or the work tree
    Diff(diff::Args),
    /// Write tracked data as it was at a git revision, or as another repository has it
    Get(get::Args),
    /// Track data from another trove repository, with a pointer that remembers its source
    Import(import::ImportArgs),
    /// Move imported data to what its source's revision names now (or to --rev)
    Update(import::UpdateArgs),
    /// Experiment records: log, run, list, show, diff, checkout, push/pull, plot, sync
    Exp(exp::Args),
    /// The model registry: register versions, promote them to stages, get them by name
    Model(model::Args),
    /// Delete objects that nothing in the chosen scope uses, from the cache (and a remote)
    Gc(gc::Args),
    /// Re-hash the cache's objects (or a remote's); quarantine corrupt ones
    Verify(verify::Args),
    /// Install git hooks that run `trove checkout` after checkouts and merges and `trove push` before pushes
    InstallHooks(hooks::Args),
    /// The merge driver of pointer files that `trove install-hooks` registers with git
    #[command(hide = true)]
    MergeDriver(hooks::MergeDriverArgs),
}

/// What every command gets: where it runs and how to report.
pub struct Ctx {
    pub cwd: PathBuf,
    pub out: Output,
}

impl Ctx {
    pub fn open(&self) -> Result<Repo, Error> {
        Repo::open(&self.cwd)
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Output::new(cli.json, cli.quiet, cli.verbose, cli.no_progress);
    let cwd = match std::env::current_dir() {
        Ok(d) => cli.dir.as_ref().map_or(d.clone(), |c| d.join(c)),
        Err(e) => {
            eprintln!("error: cannot read the current folder: {e}");
            return ExitCode::from(1);
        }
    };
    let json = cli.json;
    let ctx = Ctx { cwd, out };
    let result = match cli.command {
        Command::Init(a) => init::run(&ctx, a),
        Command::Add(a) => add::run(&ctx, a),
        Command::Status(a) => status::run(&ctx, a),
        Command::Checkout(a) => checkout::run(&ctx, a),
        Command::Commit(a) => commit::run(&ctx, a),
        Command::Ls(a) => ls::run(&ctx, a),
        Command::Remove(a) => remove::run_remove(&ctx, a),
        Command::Move(a) => remove::run_move(&ctx, a),
        Command::Unprotect(a) => remove::run_unprotect(&ctx, a),
        Command::Config(a) => config::run(&ctx, a),
        Command::Remote(a) => remote::run(&ctx, a),
        Command::Push(a) => transfer::run(&ctx, a, transfer::Direction::Push),
        Command::Fetch(a) => transfer::run(&ctx, a, transfer::Direction::Fetch),
        Command::Pull(a) => transfer::run(&ctx, a, transfer::Direction::Pull),
        Command::Diff(a) => diff::run(&ctx, a),
        Command::Get(a) => get::run(&ctx, a),
        Command::Import(a) => import::run_import(&ctx, a),
        Command::Update(a) => import::run_update(&ctx, a),
        Command::Exp(a) => exp::run(&ctx, a),
        Command::Model(a) => model::run(&ctx, a),
        Command::Gc(a) => gc::run(&ctx, a),
        Command::Verify(a) => verify::run(&ctx, a),
        Command::InstallHooks(a) => hooks::run(&ctx, a),
        Command::MergeDriver(a) => hooks::run_merge_driver(&ctx, a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report_error(&err, json),
    }
}

/// A failure that also has a report for `--json` (e.g. what a failed transfer did): the
/// error document then carries the report's fields beside `error` and `hint`.
#[derive(Debug)]
pub struct WithReport {
    pub message: String,
    /// What to do about it (a `hint:` line, and `hint` in the JSON document).
    pub hint: Option<String>,
    pub report: serde_json::Value,
}

impl std::fmt::Display for WithReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WithReport {}

fn report_error(err: &anyhow::Error, json: bool) -> ExitCode {
    let lib = err.downcast_ref::<Error>();
    let hint =
        lib.and_then(Error::hint).or_else(|| err.downcast_ref::<WithReport>().and_then(|w| w.hint.clone()));
    let code = match lib {
        Some(Error::Usage(_)) => 2,
        // As a shell reports a command a signal ended.
        Some(Error::Interrupted { signal }) => 128 + *signal as u8,
        _ => 1,
    };
    eprintln!("error: {err:#}");
    if let Some(h) = &hint {
        for line in h.lines() {
            eprintln!("hint: {line}");
        }
    }
    if json {
        let mut doc = serde_json::json!({ "error": format!("{err:#}"), "hint": hint });
        if let Some(serde_json::Value::Object(fields)) = err.downcast_ref::<WithReport>().map(|w| &w.report) {
            for (k, v) in fields {
                doc[k] = v.clone();
            }
        }
        println!("{}", serde_json::to_string_pretty(&doc).expect("serialises"));
    }
    ExitCode::from(code)
}
