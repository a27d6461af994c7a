//! `trove exp sync --mlflow URI [--experiment NAME]`.

use anyhow::Result;

use crate::cli::Ctx;
use crate::exp::mlflow::{self, Auth, Client};
use crate::exp::store;

#[derive(clap::Args)]
pub struct Args {
    /// The MLflow tracking server, e.g. http://127.0.0.1:5000
    #[arg(long, value_name = "URI", env = "MLFLOW_TRACKING_URI", hide_env_values = true)]
    mlflow: String,
    /// The MLflow experiment to put the runs in, created when missing (default: the
    /// repository's folder name)
    #[arg(long, value_name = "NAME")]
    experiment: Option<String>,
}

/// Credentials from MLflow's own environment variables: a token, else a user and password.
fn auth_from_env() -> Auth {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(token) = var("MLFLOW_TRACKING_TOKEN") {
        return Auth::Bearer(token);
    }
    match (var("MLFLOW_TRACKING_USERNAME"), var("MLFLOW_TRACKING_PASSWORD")) {
        (Some(user), password) => Auth::Basic { user, password: password.unwrap_or_default() },
        _ => Auth::None,
    }
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let client = Client::new(&args.mlflow, auth_from_env())?;
    let repo = ctx.open()?;
    let git = repo.git()?;
    let experiment = match args.experiment {
        Some(name) => name,
        None => {
            repo.root.file_name().map_or_else(|| "trove".to_string(), |n| n.to_string_lossy().into_owned())
        }
    };
    let records = store::list(&git)?;
    let out = &ctx.out;
    let mut each = |r: &mlflow::SyncedRun, sent: bool| {
        let short = &r.id[..r.id.len().min(10)];
        if sent {
            out.detail(format!("sent {short} {} -> run {}", r.name, r.run_id));
        } else {
            out.detail(format!("already there: {short} {} (run {})", r.name, r.run_id));
        }
    };
    let report = mlflow::sync(&client, &git, &experiment, &records, &mut each)?;

    out.say(format!(
        "synced {}, already there {} (experiment {:?}{}, id {}, at {})",
        report.synced.len(),
        report.already.len(),
        report.experiment,
        if report.created_experiment { ", created" } else { "" },
        report.experiment_id,
        report.mlflow
    ));
    if !report.replaced.is_empty() {
        out.say(format!("replaced {} unfinished runs left by an interrupted sync", report.replaced.len()));
    }
    out.emit(&report);
    Ok(())
}
