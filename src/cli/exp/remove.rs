//! `trove exp remove ID…`: take records out of the list (history keeps them).

use anyhow::Result;
use serde::Serialize;

use super::super::Ctx;
use crate::exp::store;

#[derive(clap::Args)]
pub struct Args {
    /// The records: ids, unique id prefixes or names (the newest of that name)
    #[arg(required = true, value_name = "ID")]
    ids: Vec<String>,
}

#[derive(Serialize)]
struct Removed {
    id: String,
    name: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    let git = repo.git()?;
    let all = store::list(&git)?;
    // Every name is looked up before anything is removed: one unknown id removes nothing.
    let mut chosen = Vec::new();
    for query in &args.ids {
        let r = store::find_in(&all, query)?;
        if !chosen.iter().any(|c: &&crate::exp::Record| c.id == r.id) {
            chosen.push(r);
        }
    }
    store::remove(&git, &chosen)?;
    let out = &ctx.out;
    for r in &chosen {
        out.say(format!("removed {} ({})", r.short_id(), r.name));
    }
    out.hint("the records stay in the history of refs/trove/exps; `trove exp push` shares the removal");
    let removed: Vec<Removed> =
        chosen.iter().map(|r| Removed { id: r.id.clone(), name: r.name.clone() }).collect();
    out.emit(&serde_json::json!({ "removed": removed }));
    Ok(())
}
