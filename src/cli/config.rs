use anyhow::Result;

use super::Ctx;
use crate::config::{check_key, show};
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
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let mut repo = ctx.open()?;
    check_key(&args.key)?;
    match args.value {
        Some(value) => {
            let progress = ctx.out.reporter();
            let _lock = repo.lock(&progress)?;
            repo.config.set(&args.key, &value, args.local)?;
            let now = repo.config.effective(&args.key).map(|v| show(&v)).unwrap_or_default();
            ctx.out.detail(format!("{} = {now}", args.key));
            ctx.out.emit(&serde_json::json!({ "key": args.key, "value": repo.config.effective(&args.key) }));
        }
        None => {
            let value = repo.config.effective(&args.key);
            match &value {
                Some(v) => ctx.out.say(show(v)),
                None => return Err(Error::Usage(format!("{} is not set", args.key)).into()),
            }
            ctx.out.emit(&serde_json::json!({ "key": args.key, "value": value }));
        }
    }
    Ok(())
}
