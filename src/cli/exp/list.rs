//! `trove exp list`: the records as a table, CSV or JSON; sorted, filtered, limited.

use std::io::IsTerminal;

use anyhow::Result;

use super::super::Ctx;
use crate::error::Error;
use crate::exp::query::{self, Sort};
use crate::exp::{store, table};

#[derive(clap::Args)]
pub struct Args {
    /// Order by a key: metrics.NAME, params.NAME, tags.NAME, attributes.created or
    /// attributes.name, with :asc or :desc (default: attributes.created:desc)
    #[arg(long, value_name = "KEY[:asc|:desc]")]
    sort: Option<String>,
    /// Keep records matching an MLflow-style expression, e.g.
    /// "metrics.acc > 0.9 AND params.opt = 'adam'"
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,
    /// Keep records of this commit (any git revision)
    #[arg(long, value_name = "REV")]
    commit: Option<String>,
    /// Show at most N records
    #[arg(short = 'n', long, value_name = "N")]
    limit: Option<usize>,
    /// Print CSV (a header, then one row per record) instead of the table
    #[arg(long)]
    csv: bool,
}

/// The width to fit the table in: only on a terminal (COLUMNS, else its size).
fn terminal_width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    if let Some(c) =
        std::env::var("COLUMNS").ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|c| *c > 0)
    {
        return Some(c);
    }
    // SAFETY: TIOCGWINSZ fills a winsize struct we own, on a descriptor that stays open.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    Some(if rc == 0 && ws.ws_col > 0 { usize::from(ws.ws_col) } else { 80 })
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if args.csv && ctx.out.json {
        return Err(Error::Usage("--csv and --json: choose one".into()).into());
    }
    let sort = match &args.sort {
        Some(s) => query::parse_sort(s).map_err(|e| Error::Usage(format!("--sort: {e}")))?,
        None => Sort::default(),
    };
    let filter = match &args.filter {
        Some(f) => query::parse_filter(f).map_err(|e| Error::Usage(format!("--filter: {e}")))?,
        None => query::Filter::default(),
    };
    let repo = ctx.open()?;
    let git = repo.git()?;
    let commit = match &args.commit {
        Some(rev) => Some(crate::history::resolve(&git, &repo.root, rev)?.to_string()),
        None => None,
    };
    let all = store::list(&git)?;
    let total = all.len();
    let mut records: Vec<_> = all
        .into_iter()
        .filter(|r| commit.as_ref().is_none_or(|c| r.commit == *c) && filter.matches(r))
        .collect();
    query::sort_records(&mut records, &sort);
    if let Some(n) = args.limit {
        records.truncate(n);
    }
    let out = &ctx.out;
    if out.json {
        out.emit(&serde_json::json!({ "records": records }));
        return Ok(());
    }
    if args.csv {
        if !out.quiet {
            print!("{}", table::csv(&records));
        }
        return Ok(());
    }
    if records.is_empty() {
        if total == 0 {
            out.say("no experiment records");
            out.hint("`trove exp log` or `trove exp run -- CMD` records one");
        } else {
            out.say(format!("no records match (of {total})"));
        }
        return Ok(());
    }
    let rendered = table::render(table::columns(&records), terminal_width(), Some(&sort.key));
    for line in &rendered.lines {
        out.say(line);
    }
    if !rendered.dropped.is_empty() {
        out.hint(format!(
            "{} not shown for lack of width: {}; widen the terminal, or use --csv or --json",
            super::super::output::plural(rendered.dropped.len() as u64, "column"),
            rendered.dropped.join(", ")
        ));
    }
    Ok(())
}
