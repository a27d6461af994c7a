//! `trove get PATH --rev REV [-o OUT]`: the data of PATH as it was at REV, without moving HEAD;
//! `trove get --repo URL PATH [--rev REV] [-o OUT]`: the data of PATH in another repository.

use std::path::PathBuf;

use anyhow::Result;

use super::Ctx;
use super::output::{bytes, plural};
use crate::error::Error;
use crate::history::{self, AtRevision};
use crate::tracked::{self, Tracked, display_rel};
use crate::{remote, transfer, workspace};

#[derive(clap::Args)]
pub struct Args {
    /// The tracked file or folder (its data path or pointer path, as in the work tree;
    /// with --repo, relative to the top of that repository)
    path: PathBuf,
    /// The git revision to take it from (a commit, branch or tag); with --repo the
    /// default is that repository's default branch
    #[arg(long, value_name = "REV")]
    rev: Option<String>,
    /// Take it from another trove repository: a path, file://, ssh:// or https:// git URL
    /// (works outside any repository)
    #[arg(long, value_name = "GIT_URL")]
    repo: Option<String>,
    /// Where to write it (default: PATH, when nothing is there; with --repo, PATH's name
    /// in the current folder)
    #[arg(short, long, value_name = "OUT")]
    out: Option<PathBuf>,
    /// The remote to fetch missing data from (default: core.remote)
    #[arg(short, long, value_name = "NAME")]
    remote: Option<String>,
    /// Parallel connections
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: Option<u16>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if let Some(url) = &args.repo {
        if args.remote.is_some() {
            return Err(Error::Usage(
                "-r/--remote names a remote of this repository; with --repo the data comes from that repository's default remote".into(),
            )
            .into());
        }
        let out = super::import::fetch_from(
            ctx,
            url,
            &args.path,
            args.rev.as_deref(),
            args.out.as_deref(),
            args.jobs,
        )?;
        return super::import::report_get(ctx, &out);
    }
    let Some(rev) = args.rev.clone() else {
        return Err(Error::Usage(
            "--rev REV is required (or --repo GIT_URL to take data from another repository)".into(),
        )
        .into());
    };
    let rev = rev.as_str();
    let repo = ctx.open()?;
    let progress = ctx.out.reporter();
    let _lock = repo.lock(&progress)?;
    let git = repo.git()?;
    let commit = history::resolve(&git, &repo.root, rev)?;
    let target = tracked::resolve_in_repo(&repo, &ctx.cwd, &args.path)?;
    let found = history::pointers_in_commit(&git, commit, None)?.into_iter().find_map(|(rel, pointer)| {
        let pointer_path = repo.root.join(&rel);
        let data_path = pointer_path.with_file_name(&pointer.path);
        (target == data_path || target == pointer_path).then_some(Tracked {
            pointer_path,
            data_path,
            pointer,
        })
    });
    let Some(at_rev) = found else {
        return Err(Error::path(
            &args.path,
            format!("is not tracked by trove at {rev} (`trove ls {rev}` lists what is)"),
        )
        .into());
    };
    let dest = match &args.out {
        Some(o) => tracked::normalize(&ctx.cwd, o),
        None => at_rev.data_path.clone(),
    };
    if std::fs::symlink_metadata(&dest).is_ok() {
        return Err(Error::path(
            &dest,
            if args.out.is_some() {
                "already exists; choose another place with -o".to_string()
            } else {
                "already exists; choose where to write the old version with -o OUT".to_string()
            },
        )
        .into());
    }
    // Imported data comes from its source's remote.
    if at_rev.pointer.source.is_some() {
        crate::import::fetch(&repo, std::slice::from_ref(&at_rev), args.jobs.map(usize::from), &progress)?;
    }
    // Fetch what the cache lacks (asking the remote only then), and write it out.
    let item = AtRevision { commit: Some(history::short_id(commit)), tracked: at_rev.clone() };
    let remote = match workspace::in_cache(&repo, &item.tracked.pointer) {
        true => None,
        false => Some(remote::open(&repo, args.remote.as_deref())?),
    };
    let placed = Tracked { data_path: dest.clone(), ..at_rev.clone() };
    let pulled = transfer::pull(
        &repo,
        remote.as_deref(),
        std::slice::from_ref(&item.tracked),
        args.jobs.map(usize::from),
        &progress,
        || workspace::materialize(&repo, &placed, &progress),
    )?;
    let Some(done) = pulled.placed else {
        let report = pulled.fetched.expect("an incomplete pull fetched");
        let ids: Vec<String> = report.missing.iter().chain(&report.corrupt).take(3).cloned().collect();
        return Err(Error::remote(
            report.remote.clone(),
            crate::error::RemoteFailure::NotFound,
            format!(
                "cannot supply all of {} at {rev}: {}{}",
                display_rel(&repo.root, &at_rev.data_path),
                ids.join(", "),
                report.failed.first().map(|(id, e)| format!("{id}: {e}")).unwrap_or_default()
            ),
        )
        .into());
    };
    let shown = dest.strip_prefix(&ctx.cwd).unwrap_or(&dest).display().to_string();
    ctx.out.say(format!(
        "wrote {} at {rev} to {shown} ({}, {})",
        display_rel(&repo.root, &at_rev.data_path),
        plural(done.placed, "file"),
        bytes(at_rev.pointer.size)
    ));
    ctx.out.emit(&serde_json::json!({
        "path": display_rel(&repo.root, &at_rev.data_path),
        "rev": rev,
        "commit": commit.to_string(),
        "out": dest,
        "kind": at_rev.pointer.kind,
        "hash": at_rev.pointer.hash,
        "size": at_rev.pointer.size,
        "files": done.placed,
    }));
    Ok(())
}
