use anyhow::Result;

use super::Ctx;
use crate::config::{check_key, show, shown};
use crate::error::Error;

#[derive(clap::Args)]
pub struct Args {
    /// The setting, e.g. cache.link
    key: String,
    /// The new value (YAML: `[hardlink, copy]`, `30`, a path); omit to read
    value: Option<String>,
    /// Write to config.local (not committed) instead of config
    #[arg(long)]
    local: bool,
    /// Remove the setting (from config, or config.local with --local)
    #[arg(long, conflicts_with = "value")]
    unset: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let mut repo = ctx.open()?;
    check_key(&args.key)?;
    if args.unset {
        let progress = ctx.out.reporter();
        let _lock = repo.lock(&progress)?;
        let file = if args.local { "config.local" } else { "config" };
        if !repo.config.unset(&args.key, args.local)? {
            return Err(Error::Usage(format!("{} is not set in {file}", args.key)).into());
        }
        ctx.out.detail(format!("removed {} from {file}", args.key));
        let value = repo.config.effective(&args.key).map(|v| shown(&args.key, &v));
        ctx.out.emit(&serde_json::json!({ "key": args.key, "value": value }));
        return Ok(());
    }
    match args.value {
        Some(value) => {
            let progress = ctx.out.reporter();
            let _lock = repo.lock(&progress)?;
            repo.config.set(&args.key, &value, args.local)?;
            let now = repo.config.effective(&args.key).map(|v| shown(&args.key, &v));
            ctx.out.detail(format!("{} = {}", args.key, now.as_ref().map(show).unwrap_or_default()));
            ctx.out.emit(&serde_json::json!({ "key": args.key, "value": now }));
        }
        None => {
            // Secrets are never printed.
            let value = repo.config.effective(&args.key).map(|v| shown(&args.key, &v));
            match &value {
                Some(v) => ctx.out.say(show(v)),
                None => return Err(Error::Usage(format!("{} is not set", args.key)).into()),
            }
            ctx.out.emit(&serde_json::json!({ "key": args.key, "value": value }));
        }
    }
    Ok(())
}
