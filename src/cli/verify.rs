//! `verify`: re-hash the cache's (or a remote's) objects.

use anyhow::Result;

use super::Ctx;
use super::output::{bytes, plural};
use crate::tracked::display_rel;
use crate::verify::{self, Report};

#[derive(clap::Args)]
pub struct Args {
    /// Verify a remote's objects instead of the cache's (default remote when NAME is omitted)
    #[arg(short, long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    remote: Option<String>,
    /// With --remote: delete corrupt objects there (layout 2: drop them and damaged packs from its index), re-uploading sound copies from this cache
    #[arg(long, requires = "remote")]
    repair: bool,
    /// Parallel connections for --remote
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: Option<u16>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    let progress = ctx.out.reporter();
    let out = &ctx.out;
    let report = match &args.remote {
        None => {
            // Moving corrupt objects out of the cache writes it.
            let _lock = repo.lock(&progress)?;
            let report = verify::verify_cache(&repo.cache, &progress)?;
            // Files the hash cache remembers under a damaged object's id may have been
            // copied from its bad bytes: they are hashed again next time.
            let damaged = report.corrupt.iter().filter_map(|c| c.id.parse().ok()).collect();
            repo.state().forget(&damaged);
            report
        }
        Some(name) => {
            let remote = crate::remote::open(&repo, (!name.is_empty()).then_some(name.as_str()))?;
            verify::verify_remote(
                &repo.cache,
                remote.as_ref(),
                args.jobs.map(usize::from),
                args.repair,
                &progress,
            )?
        }
    };
    let place =
        if report.remote { format!("on remote {}", report.store) } else { "in the cache".to_string() };
    for c in &report.corrupt {
        let what = match (&c.quarantined, c.repair) {
            (Some(q), _) => format!("moved to {}", display_rel(&repo.root, q)),
            (None, Some("reuploaded")) => "replaced with the sound copy in this cache".into(),
            (None, Some(_)) => format!("deleted from {}", report.store),
            (None, None) => "left in place".into(),
        };
        let why = match &c.why {
            Some(why) if c.actual.is_empty() => why.clone(),
            Some(why) => format!("{why}: {}", c.actual),
            None => format!("its content hashes to {}", c.actual),
        };
        out.say(format!("corrupt: {} ({why}); {what}", c.id));
    }
    let gone = if report.repaired { "; removed from its index and deleted" } else { "" };
    for d in &report.damaged_packs {
        out.say(format!("damaged pack: {} ({}){gone}", d.name, d.error));
    }
    for m in &report.missing_packs {
        let gone = if report.repaired { "; removed from its index" } else { "" };
        out.say(format!("missing pack: {m} (an index lists it){gone}"));
    }
    for d in &report.damaged_index {
        let gone = if report.repaired { "; replaced by a new index and deleted" } else { "" };
        out.say(format!("damaged index file: {} ({}){gone}", d.name, d.error));
    }
    if report.leftovers > 0 {
        out.note(format!(
            "{} left under objects/ by an upgrade that did not finish: `trove remote upgrade {}` converts them",
            plural(report.leftovers, "object file"),
            report.store
        ));
    }
    if report.repaired && !report.damaged_index.is_empty() {
        out.note(format!(
            "objects named only by a damaged index file that no longer parsed are not on {} any more: \
             run `trove push -r {}` in clones that have them",
            report.store, report.store
        ));
    }
    for f in &report.failed {
        out.say(format!("unreadable: {}: {}", f.id, f.error));
    }
    let mut verdict = Vec::new();
    for (n, what) in [(report.corrupt.len(), "corrupt"), (report.failed.len(), "unreadable")] {
        if n > 0 {
            verdict.push(format!("{n} {what}"));
        }
    }
    for (n, what) in [
        (report.damaged_packs.len(), "damaged pack"),
        (report.missing_packs.len(), "missing pack"),
        (report.damaged_index.len(), "damaged index file"),
    ] {
        if n > 0 {
            verdict.push(plural(n as u64, what));
        }
    }
    let verdict = if verdict.is_empty() { "all sound".to_string() } else { verdict.join(", ") };
    out.say(format!(
        "verified {} ({}) {place} in {:.1} s: {verdict}",
        plural(report.objects, "object"),
        bytes(report.bytes),
        report.seconds
    ));
    if !report.ok() {
        let message = problems(&report, &repo.root, args.repair);
        return Err(super::WithReport {
            hint: None,
            message,
            report: serde_json::json!({ "verify": report }),
        }
        .into());
    }
    out.emit(&serde_json::json!({ "verify": report }));
    Ok(())
}

fn problems(r: &Report, root: &std::path::Path, repair: bool) -> String {
    let sample = |ids: Vec<&str>| {
        let more = if ids.len() > 3 { format!(" and {} more", ids.len() - 3) } else { String::new() };
        format!("{}{more}", ids.into_iter().take(3).collect::<Vec<_>>().join(", "))
    };
    let mut lines = Vec::new();
    // With --repair, those whose repair failed are among `failed`.
    let corrupt: Vec<&str> = r
        .corrupt
        .iter()
        .filter(|c| if repair { c.repair == Some("deleted") } else { c.repair.is_none() })
        .map(|c| c.id.as_str())
        .collect();
    if !r.remote && !corrupt.is_empty() {
        let q = r.quarantine.as_deref().map(|q| display_rel(root, q)).unwrap_or_default();
        lines.push(format!(
            "{} in the cache {} corrupt and moved to {q}: {}",
            plural(corrupt.len() as u64, "object"),
            if corrupt.len() == 1 { "was" } else { "were" },
            sample(corrupt)
        ));
        lines.push(
            "run `trove pull` (or `trove fetch`) to download sound copies from a remote, or `trove add` the data again"
                .into(),
        );
    } else if !corrupt.is_empty() && repair {
        lines.push(format!(
            "{} on remote {} {} corrupt and {} deleted there (this cache has no sound copy): {}",
            plural(corrupt.len() as u64, "object"),
            r.store,
            if corrupt.len() == 1 { "was" } else { "were" },
            if corrupt.len() == 1 { "was" } else { "were" },
            sample(corrupt)
        ));
        lines.push(format!("run `trove push -r {}` from a clone whose cache has them", r.store));
    } else if !corrupt.is_empty() {
        lines.push(format!(
            "{} on remote {} {} corrupt: {}",
            plural(corrupt.len() as u64, "object"),
            r.store,
            if corrupt.len() == 1 { "is" } else { "are" },
            sample(corrupt)
        ));
        lines.push(format!(
            "run `trove verify --remote {} --repair` to delete them there and re-upload the sound copies this \
             cache has; push the rest from a clone that has them",
            r.store
        ));
    }
    let files: Vec<&str> = r
        .damaged_packs
        .iter()
        .map(|d| d.name.as_str())
        .chain(r.missing_packs.iter().map(|m| m.as_str()))
        .chain(r.damaged_index.iter().map(|d| d.name.as_str()))
        .collect();
    if !files.is_empty() && !r.repaired {
        lines.push(format!(
            "remote {} has {} damaged or missing: {}",
            r.store,
            plural(files.len() as u64, "pack or index file"),
            sample(files)
        ));
        lines.push(format!(
            "run `trove verify --remote {} --repair` to rewrite its index without them, re-uploading the objects \
             this cache has",
            r.store
        ));
    }
    if !r.failed.is_empty() {
        lines.push(format!(
            "{} could not be read: {}",
            plural(r.failed.len() as u64, "object"),
            sample(r.failed.iter().map(|f| f.id.as_str()).collect())
        ));
        lines.push("fix what the errors above say, then run the command again".into());
    }
    lines.join("\n")
}
