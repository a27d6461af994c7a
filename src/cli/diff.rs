//! `trove diff [REV_A [REV_B]]`.

use anyhow::Result;

use super::Ctx;
use super::output::{bytes, plural, quote_name};
use crate::diff::{self, FileChange, Side};

#[derive(clap::Args)]
pub struct Args {
    /// The old side (default HEAD)
    a: Option<String>,
    /// The new side (default: the work tree)
    b: Option<String>,
    /// Where to fetch folder manifests the cache lacks (default: the default remote, if any)
    #[arg(short, long, value_name = "NAME")]
    remote: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    let a = Side::Rev(args.a.unwrap_or_else(|| "HEAD".into()));
    let b = args.b.map_or(Side::Workspace, Side::Rev);
    // Reading manifests from a remote writes them to the cache.
    let progress = ctx.out.reporter();
    let _lock = repo.lock(&progress)?;
    let remote = match &args.remote {
        Some(name) => Some(crate::remote::open(&repo, Some(name))?),
        None if repo.config.get("core.remote").is_some() => crate::remote::open(&repo, None).ok(),
        None => None,
    };
    let d = diff::diff(&repo, &a, &b, remote.as_deref(), &progress)?;
    let out = &ctx.out;
    let show = |title: &str, list: &[FileChange], line: &dyn Fn(&FileChange) -> String| {
        if !list.is_empty() {
            out.say(format!("{title}:"));
            for c in list {
                out.say(format!("    {}", line(c)));
            }
        }
    };
    let size = |s: Option<u64>| bytes(s.unwrap_or(0));
    show("Added", &d.added, &|c| format!("{}  ({})", quote_name(&c.path), size(c.size)));
    show("Deleted", &d.deleted, &|c| format!("{}  ({})", quote_name(&c.path), size(c.old_size)));
    show("Modified", &d.modified, &|c| {
        format!("{}  ({} -> {})", quote_name(&c.path), size(c.old_size), size(c.size))
    });
    for u in &d.unavailable {
        out.say(format!(
            "Unknown: {} at {} (its file list {} is not in the cache)",
            quote_name(&u.path),
            u.side,
            u.manifest
        ));
    }
    let changed = (d.added.len() + d.deleted.len() + d.modified.len()) as u64;
    if changed == 0 && d.unavailable.is_empty() {
        out.say(format!("no changes between {} and {}", d.a, d.b));
    } else {
        out.say(format!(
            "{} changed between {} and {}: {} added, {} deleted, {} modified",
            plural(changed, "file"),
            d.a,
            d.b,
            d.added.len(),
            d.deleted.len(),
            d.modified.len()
        ));
    }
    if !d.unavailable.is_empty() {
        // The answer is incomplete: say so in the exit code, with what is known.
        let hint = match &d.remote_error {
            Some(e) => format!("the remote could not supply them: {e}"),
            None if remote.is_none() => "add a remote (`trove remote add`) so diff can fetch them".into(),
            None => "they are not on the remote either: push them from a clone that has them".into(),
        };
        let missing = match (&remote, &d.remote_error) {
            (Some(r), None) => format!("in neither the cache nor remote {}", r.name()),
            (Some(r), Some(_)) => format!("not in the cache, and remote {} could not be read", r.name()),
            (None, _) => "not in the cache".into(),
        };
        let named: Vec<String> = d.unavailable.iter().map(|u| format!("{} at {}", u.path, u.side)).collect();
        let message = match named.as_slice() {
            [one] => format!(
                "diff between {} and {} is incomplete: the files of {one} are unknown (its file list {} is {missing})",
                d.a, d.b, d.unavailable[0].manifest
            ),
            many => format!(
                "diff between {} and {} is incomplete: the files of {} are unknown (their file lists are {missing})",
                d.a,
                d.b,
                many.join(", ")
            ),
        };
        let report = serde_json::to_value(&d).expect("diff serialises");
        return Err(super::WithReport { message, hint: Some(hint), report }.into());
    }
    out.emit(&d);
    Ok(())
}
