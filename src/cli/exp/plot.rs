//! `trove exp plot [IDS…] [-o FILE.html]`.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::cli::Ctx;
use crate::cli::output::plural;
use crate::error::Error;
use crate::exp::{Record, plot, store};

#[derive(clap::Args)]
pub struct Args {
    /// The records to plot: ids, id prefixes or names (default: all)
    ids: Vec<String>,
    /// The HTML file to write
    #[arg(short, long, value_name = "FILE", default_value = "trove-exps.html")]
    output: PathBuf,
}

#[derive(Serialize)]
struct Report<'a> {
    path: String,
    experiments: Vec<&'a str>,
    axes: &'a [String],
    series: &'a [String],
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    let git = repo.git()?;
    let all = store::list(&git)?;
    let records: Vec<Record> = if args.ids.is_empty() {
        all
    } else {
        let mut chosen: Vec<Record> = Vec::new();
        for q in &args.ids {
            let r = store::find_in(&all, q)?;
            if !chosen.iter().any(|c| c.id == r.id) {
                chosen.push(r.clone());
            }
        }
        chosen
    };
    if records.is_empty() {
        return Err(
            Error::exp(store::REF, "there are no records to plot (`trove exp log` records one)").into()
        );
    }
    let runs = plot::gather(&git, &records)?;
    let page = plot::render(&runs);
    let path = ctx.cwd.join(&args.output);
    crate::atomic_file::write(&path, page.html.as_bytes())?;

    let out = &ctx.out;
    let axes = match page.axes.len() {
        1 => "1 axis".to_string(),
        n => format!("{n} axes"),
    };
    out.say(format!(
        "wrote {}: {}, {axes}, {}",
        args.output.display(),
        plural(runs.len() as u64, "experiment"),
        plural(page.series.len() as u64, "series chart")
    ));
    for r in &runs {
        out.detail(format!("  {} {}", r.short_id(), r.name));
    }
    out.emit(&Report {
        path: path.display().to_string(),
        experiments: runs.iter().map(|r| r.id.as_str()).collect(),
        axes: &page.axes,
        series: &page.series,
    });
    Ok(())
}
