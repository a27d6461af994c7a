//! Data from other repositories: `trove get --repo`, `trove import`, `trove update`.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::Ctx;
use super::output::{bytes, plural, quote_name};
use crate::error::Error;
use crate::import;
use crate::pointer::Kind;
use crate::repo::Repo;
use crate::upstream::{self, Upstream};

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The source repository: a path, file://, ssh:// or https:// git URL
    #[arg(long, value_name = "GIT_URL")]
    repo: String,
    /// The tracked file or folder in the source, relative to its top folder
    path: String,
    /// The source's revision (a branch or tag; default: its default branch); recorded,
    /// and followed by `trove update`
    #[arg(long, value_name = "REV")]
    rev: Option<String>,
    /// Where to write it (default: PATH's name in the current folder)
    #[arg(short, long, value_name = "OUT")]
    out: Option<PathBuf>,
    /// Do not stage the pointer file and .gitignore change in git
    #[arg(long)]
    no_stage: bool,
    /// Parallel connections
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: Option<u16>,
}

#[derive(clap::Args)]
pub struct UpdateArgs {
    /// Imported paths (default: every imported path)
    paths: Vec<PathBuf>,
    /// Follow this revision of the source from now on (a branch or tag)
    #[arg(long, value_name = "REV")]
    rev: Option<String>,
    /// Do not stage the pointer files in git
    #[arg(long)]
    no_stage: bool,
    /// Parallel connections
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: Option<u16>,
}

/// What `get --repo` wrote.
pub struct Got {
    url: String,
    path: String,
    rev: Option<String>,
    commit: git2::Oid,
    out: PathBuf,
    kind: Kind,
    hash: crate::hash::ObjectId,
    size: u64,
    files: u64,
}

/// `trove get --repo`: fetch PATH of the repository at `url` into this repository's cache
/// (or a temporary one outside any) and write it at `out` (default: its name here).
pub fn fetch_from(
    ctx: &Ctx,
    url: &str,
    path: &Path,
    rev: Option<&str>,
    out: Option<&Path>,
    jobs: Option<u16>,
) -> Result<Got> {
    let progress = ctx.out.reporter();
    let path = path.to_str().ok_or_else(|| Error::NonUtf8Path { path: path.to_path_buf() })?;
    let local = Repo::open(&ctx.cwd).ok();
    let _lock = match &local {
        Some(repo) => Some(repo.lock(&progress)?),
        None => None,
    };
    let up = Upstream::open(url, &ctx.cwd)?;
    let commit = up.resolve(rev)?;
    let found = up.find(commit, path)?;
    let dest = match out {
        Some(o) => crate::tracked::normalize(&ctx.cwd, o),
        None => import::default_out(&ctx.cwd, &found.path),
    };
    let files = fetch_and_place(ctx, &up, commit, &found.pointer, &dest, local.as_ref(), jobs)?;
    Ok(Got {
        url: up.url().to_string(),
        path: found.path,
        rev: rev.map(str::to_string),
        commit,
        out: dest,
        kind: found.pointer.kind,
        hash: found.pointer.hash,
        size: found.pointer.size,
        files,
    })
}

/// Fetch the object(s) of `pointer` (of the repository `up` at `commit`) and write them at
/// `dest`, which must not exist: through `local`'s cache, or outside any repository a
/// temporary one that goes with the command. Returns the number of files written.
pub fn fetch_and_place(
    ctx: &Ctx,
    up: &Upstream,
    commit: git2::Oid,
    pointer: &crate::pointer::Pointer,
    dest: &Path,
    local: Option<&Repo>,
    jobs: Option<u16>,
) -> Result<u64> {
    let progress = ctx.out.reporter();
    if std::fs::symlink_metadata(dest).is_ok() {
        return Err(Error::path(dest, "already exists; choose another place with -o").into());
    }
    let scratch = match local {
        Some(_) => None,
        None => Some(Scratch::new()?),
    };
    let repo = match (local, &scratch) {
        (Some(r), _) => r,
        (None, Some(s)) => &s.repo,
        (None, None) => unreachable!("one of them is set"),
    };
    up.fetch_objects(
        commit,
        std::slice::from_ref(pointer),
        &repo.cache,
        local,
        jobs.map(usize::from),
        &progress,
    )?;
    Ok(upstream::place(repo, pointer, dest, &progress)?.placed)
}

pub fn report_get(ctx: &Ctx, got: &Got) -> Result<()> {
    let shown = got.out.strip_prefix(&ctx.cwd).unwrap_or(&got.out).display().to_string();
    let at = got.rev.clone().unwrap_or_else(|| crate::history::short_id(got.commit));
    ctx.out.say(format!(
        "wrote {} of {} at {at} to {shown} ({}, {})",
        got.path,
        got.url,
        plural(got.files, "file"),
        bytes(got.size)
    ));
    ctx.out.emit(&serde_json::json!({
        "repo": got.url,
        "path": got.path,
        "rev": got.rev,
        "commit": got.commit.to_string(),
        "out": got.out,
        "kind": got.kind,
        "hash": got.hash,
        "size": got.size,
        "files": got.files,
    }));
    Ok(())
}

/// A scratch repository in a temporary folder, removed when dropped.
struct Scratch {
    dir: PathBuf,
    repo: Repo,
}

impl Scratch {
    fn new() -> Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("trove-get-{}", crate::remote::process_name("cache")));
        let repo = upstream::scratch_repo(&dir)?;
        Ok(Scratch { dir, repo })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Cache objects are read-only; their folders are not, so removal works.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn run_import(ctx: &Ctx, args: ImportArgs) -> Result<()> {
    let repo = ctx.open()?;
    let progress = ctx.out.reporter();
    let _lock = repo.lock(&progress)?;
    let up = Upstream::open(&args.repo, &ctx.cwd)?;
    let out = match &args.out {
        Some(o) => crate::tracked::resolve_in_repo(&repo, &ctx.cwd, o)?,
        None => {
            let name = args.path.trim_end_matches('/');
            crate::tracked::resolve_in_repo(&repo, &ctx.cwd, &import::default_out(&ctx.cwd, name))?
        }
    };
    let jobs = args.jobs.map(usize::from);
    let done =
        import::import(&repo, &up, &args.path, args.rev.as_deref(), &out, !args.no_stage, jobs, &progress)?;
    let what = match done.kind {
        Kind::Dir => format!("dir, {}, {}", plural(done.files.unwrap_or(0), "file"), bytes(done.size)),
        Kind::File => format!("file, {}", bytes(done.size)),
    };
    ctx.out.say(format!(
        "imported {} of {} at {} ({what}) -> {}",
        done.source.path,
        done.source.repo,
        done.source.rev.clone().unwrap_or_else(|| done.source.commit[..10].to_string()),
        quote_name(&done.pointer)
    ));
    ctx.out.hint(format!("commit the pointer with git: git commit {}", quote_name(&done.pointer)));
    ctx.out.emit(&serde_json::json!({ "imported": done }));
    Ok(())
}

pub fn run_update(ctx: &Ctx, args: UpdateArgs) -> Result<()> {
    let repo = ctx.open()?;
    let progress = ctx.out.reporter();
    let _lock = repo.lock(&progress)?;
    let all = crate::tracked::select(&repo, &ctx.cwd, &args.paths)?;
    let targets: Vec<_> =
        if args.paths.is_empty() { all.into_iter().filter(import::is_imported).collect() } else { all };
    if targets.is_empty() {
        ctx.out.say("no imported data");
        ctx.out.emit(&serde_json::json!({ "updated": [] }));
        return Ok(());
    }
    let jobs = args.jobs.map(usize::from);
    let done = import::update(&repo, &targets, args.rev.as_deref(), !args.no_stage, jobs, &progress)?;
    let short = |c: &str| c[..10.min(c.len())].to_string();
    for u in &done {
        if !u.changed {
            ctx.out.say(format!(
                "{}: up to date with {} at {}",
                quote_name(&u.path),
                u.repo,
                short(&u.commit)
            ));
        } else {
            let rev = match (&u.old_rev, &u.rev) {
                (a, b) if a == b => String::new(),
                (a, b) => format!(
                    ", rev {} -> {}",
                    a.as_deref().unwrap_or("(default)"),
                    b.as_deref().unwrap_or("(default)")
                ),
            };
            ctx.out.say(format!(
                "{}: updated {} -> {} (commit {} -> {}{rev}), {} written, {} removed",
                quote_name(&u.path),
                short(&u.old_hash.to_hex()),
                short(&u.hash.to_hex()),
                short(&u.old_commit),
                short(&u.commit),
                plural(u.placed, "file"),
                u.removed,
            ));
        }
    }
    if done.iter().any(|u| u.changed) {
        ctx.out.hint("commit the updated pointers with git");
    }
    ctx.out.emit(&serde_json::json!({ "updated": done }));
    Ok(())
}
