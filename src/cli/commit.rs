use std::path::PathBuf;

use anyhow::Result;

use super::Ctx;
use super::output::quote_name;
use crate::workspace::{self, State};
use crate::{git, tracked};

#[derive(clap::Args)]
pub struct Args {
    /// The git commit message
    #[arg(short, long)]
    message: Option<String>,
    /// Tracked paths (default: all)
    paths: Vec<PathBuf>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    let progress = ctx.out.reporter();
    let _lock = repo.lock(&progress)?;
    let targets = tracked::select(&repo, &ctx.cwd, &args.paths)?;
    let statuses = workspace::status(&repo, &targets, &progress)?;
    let modified: Vec<PathBuf> = targets
        .iter()
        .zip(&statuses)
        .filter(|(_, s)| s.state == State::Modified)
        .map(|(t, _)| t.data_path.clone())
        .collect();
    let readded = workspace::add(&repo, &repo.root, &modified, true, &progress)?;

    // The pointers, the .gitignore files beside them, and trove's committed settings.
    let mut paths: Vec<PathBuf> = vec![repo.trove_dir.join("config"), repo.trove_dir.join(".gitignore")];
    for t in &targets {
        paths.push(t.pointer_path.clone());
        let gi = t.pointer_path.with_file_name(".gitignore");
        if gi.exists() && !paths.contains(&gi) {
            paths.push(gi);
        }
    }
    let message = args.message.unwrap_or_else(|| {
        let names: Vec<String> = targets.iter().map(|t| quote_name(&t.rel(&repo)).into_owned()).collect();
        match names.len() {
            1..=3 => format!("trove: update {}", names.join(", ")),
            n => format!("trove: update {}, {} and {} more", names[0], names[1], n - 2),
        }
    });
    let git_repo = repo.git()?;
    let oid = git::commit_paths(&git_repo, &repo.root, &paths, &message)?;
    let out = &ctx.out;
    for a in &readded {
        out.say(format!("re-added {}", quote_name(&a.path)));
    }
    match oid {
        Some(oid) => {
            out.say(format!("committed {} {}", &oid.to_string()[..10], message.lines().next().unwrap_or("")))
        }
        None => out.say("nothing to commit: the pointers match HEAD"),
    }
    out.emit(&serde_json::json!({
        "readded": readded,
        "commit": oid.map(|o| o.to_string()),
    }));
    Ok(())
}
