use std::path::{Path, PathBuf};

use anyhow::Result;

use super::Ctx;
use super::output::{bytes, plural, quote_name, relative, shell_quote};
use crate::pointer::Kind;
use crate::workspace;

#[derive(clap::Args)]
pub struct Args {
    /// Files or folders to track
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Do not stage the pointer files and .gitignore changes in git
    #[arg(long)]
    no_stage: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    let progress = ctx.out.reporter();
    let _lock = repo.lock(&progress)?;
    let added = workspace::add(&repo, &ctx.cwd, &args.paths, !args.no_stage, &progress)?;
    let out = &ctx.out;
    for a in &added {
        let what = match a.kind {
            Kind::Dir => format!("dir, {}, {}", plural(a.files.unwrap_or(0), "file"), bytes(a.size)),
            Kind::File => format!("file, {}", bytes(a.size)),
        };
        if a.updated {
            out.say(format!("added {} ({what}) -> {}", quote_name(&a.path), quote_name(&a.pointer)));
        } else {
            out.say(format!("{} unchanged ({what})", quote_name(&a.path)));
        }
        out.detail(format!(
            "  {} new object{}, {} stored; id {}",
            a.new_objects,
            if a.new_objects == 1 { "" } else { "s" },
            bytes(a.new_bytes),
            a.hash
        ));
    }
    if added.iter().any(|a| a.updated) {
        out.hint(format!("commit the pointers with git: {}", commit_command(ctx, &added, args.no_stage)));
    }
    out.emit(&serde_json::json!({ "added": added }));
    Ok(())
}

/// The `git commit` of the pointers written and the `.gitignore` files changed, with
/// paths as seen from where the user stands (and `-C` when trove ran elsewhere); after
/// `--no-stage`, a `git add` of them first (git commits only paths it knows).
fn commit_command(ctx: &Ctx, added: &[workspace::Added], no_stage: bool) -> String {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let base = canonical(&ctx.cwd);
    let mut git = "git".to_string();
    if let Ok(here) = std::env::current_dir().map(|d| canonical(&d))
        && here != base
    {
        git = format!("git -C {}", shell_quote(&relative(&here, &base).to_string_lossy()));
    }
    let mut paths: Vec<&Path> =
        added.iter().filter(|a| a.updated).map(|a| a.pointer_path.as_path()).collect();
    for g in added.iter().filter_map(|a| a.gitignore.as_deref()) {
        if !paths.contains(&g) {
            paths.push(g);
        }
    }
    let words: Vec<String> =
        paths.iter().map(|p| shell_quote(&relative(&base, p).to_string_lossy())).collect();
    let words = words.join(" ");
    if no_stage {
        format!("{git} add {words} && {git} commit {words}")
    } else {
        format!("{git} commit {words}")
    }
}
