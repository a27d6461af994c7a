//! `trove exp sync --mlflow URI [--experiment NAME]`.

use anyhow::Result;

use crate::cli::{Ctx, WithReport};
use crate::error::Error;
use std::collections::HashMap;

use crate::exp::mlflow::{self, Auth, Client, Progress, Tls};
use crate::exp::mlflow_registry;
use crate::exp::store;
use crate::repo::Repo;

#[derive(clap::Args)]
pub struct Args {
    /// The MLflow tracking server, e.g. http://127.0.0.1:5000
    #[arg(long, value_name = "URI", env = "MLFLOW_TRACKING_URI", hide_env_values = true)]
    mlflow: String,
    /// The MLflow experiment to put the runs in, created when missing (default: the
    /// setting exp.mlflow_experiment, else the repository's name in its origin URL, else
    /// its folder's name)
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

/// How to check an https server's certificate, from MLflow's own environment variables.
fn tls_from_env() -> Tls {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    Tls {
        ca_file: var("MLFLOW_TRACKING_SERVER_CERT_PATH").map(std::path::PathBuf::from),
        insecure: var("MLFLOW_TRACKING_INSECURE_TLS")
            .is_some_and(|v| v.to_string_lossy().trim().eq_ignore_ascii_case("true")),
    }
}

/// The experiment a repository's runs go to unless `--experiment` says otherwise: the
/// same from every clone, so that their runs meet in one place.
fn default_experiment(repo: &Repo, git: &git2::Repository) -> Result<String> {
    if let Some(v) = repo.config.get("exp.mlflow_experiment") {
        return match v.as_str().map(str::trim).filter(|s| !s.is_empty()) {
            Some(name) => Ok(name.to_string()),
            None => Err(Error::Config {
                path: repo.trove_dir.join("config"),
                message: "exp.mlflow_experiment must be an experiment name".into(),
            }
            .into()),
        };
    }
    let from_origin = git.find_remote("origin").ok().and_then(|r| r.url().ok().and_then(repository_name));
    Ok(from_origin.unwrap_or_else(|| {
        repo.root.file_name().map_or_else(|| "trove".to_string(), |n| n.to_string_lossy().into_owned())
    }))
}

/// The repository's name in a git URL: `vision` for `git@host:team/vision.git`,
/// `https://host/team/vision` or `/srv/git/vision.git/`.
fn repository_name(url: &str) -> Option<String> {
    let url = url.trim_end_matches('/');
    let last = url.rsplit(['/', ':', '\\']).next()?;
    let name = last.strip_suffix(".git").unwrap_or(last);
    (!name.is_empty()).then(|| name.to_string())
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let client = Client::with_tls(&args.mlflow, auth_from_env(), &tls_from_env())?;
    let repo = ctx.open()?;
    let git = repo.git()?;
    let experiment = match args.experiment {
        Some(name) => name,
        None => default_experiment(&repo, &git)?,
    };
    let records = store::list(&git)?;
    let out = &ctx.out;
    let mut each = |p: Progress| match p {
        Progress::Sent(r) => out.detail(format!("sent {} {} -> run {}", short(&r.id), r.name, r.run_id)),
        Progress::Already(r) => {
            out.detail(format!("already there: {} {} (run {})", short(&r.id), r.name, r.run_id))
        }
        Progress::Completed(r) => out.detail(format!(
            "sent the missing artifacts of {} {} (run {})",
            short(&r.id),
            r.name,
            r.run_id
        )),
        Progress::Refused(r) => out.problem("refused", format!("{} {}: {}", short(&r.id), r.name, r.error)),
    };
    let report = mlflow::sync(&client, &git, &repo.cache, &experiment, &records, &mut each)?;
    // The model registry, after the runs: a version from a record goes with its run.
    let runs: HashMap<String, String> = report
        .synced
        .iter()
        .chain(&report.already)
        .chain(&report.completed)
        .map(|r| (r.id.clone(), r.run_id.clone()))
        .collect();
    let models = crate::model::load(&git)?;
    let models = mlflow_registry::sync_models(&client, &report.experiment_id, &models, &runs, &repo.cache)?;

    out.say(format!(
        "synced {}, already there {}{} (experiment {:?}{}, id {}, at {})",
        report.synced.len(),
        report.already.len(),
        if report.refused.is_empty() { String::new() } else { format!(", refused {}", report.refused.len()) },
        report.experiment,
        if report.created_experiment { ", created" } else { "" },
        report.experiment_id,
        report.mlflow
    ));
    if !report.completed.is_empty() {
        out.say(format!("sent the artifacts missing from {} runs before", report.completed.len()));
    }
    for u in &report.unsent {
        out.problem("not sent", format!("artifact {} of {} {}: {}", u.path, short(&u.id), u.name, u.reason));
    }
    let mut doc = serde_json::to_value(&report)?;
    doc["models"] = serde_json::to_value(&models)?;
    if !models.sent.is_empty() || models.already > 0 || !models.unsent.is_empty() {
        out.say(format!(
            "models: sent {}, already there {}{}{}",
            crate::cli::output::plural(models.sent.len() as u64, "version"),
            models.already,
            if models.aliases_set.is_empty() {
                String::new()
            } else {
                format!(", aliases set: {}", models.aliases_set.join(" "))
            },
            if models.aliases_removed.is_empty() {
                String::new()
            } else {
                format!(", aliases removed: {}", models.aliases_removed.join(" "))
            }
        ));
    }
    for v in &models.sent {
        out.detail(format!("sent model {} {} -> MLflow version {}", v.name, v.version, v.mlflow_version));
    }
    for u in &models.unsent {
        out.problem("not sent", format!("model {} {}: {}", u.name, u.what, u.reason));
    }
    if !report.replaced.is_empty() {
        out.say(format!("replaced {} unfinished runs left by an interrupted sync", report.replaced.len()));
    }
    if !report.refused.is_empty() {
        let names: Vec<String> =
            report.refused.iter().map(|r| format!("{} ({})", short(&r.id), r.name)).collect();
        return Err(WithReport {
            message: format!("MLflow at {} refused {}: {}", report.mlflow, plural(names.len()), names.join(", ")),
            hint: Some(
                "the other records were sent; fix what MLflow names (e.g. a key with characters it does not allow) \
                 in a new record, then `trove exp remove ID` the refused one"
                    .into(),
            ),
            report: doc,
        }
        .into());
    }
    out.emit(&doc);
    Ok(())
}

fn short(id: &str) -> &str {
    &id[..id.len().min(10)]
}

fn plural(n: usize) -> String {
    if n == 1 { "1 record".into() } else { format!("{n} records") }
}

#[cfg(test)]
mod tests {
    use super::repository_name;

    #[test]
    fn repository_names_from_urls() {
        for (url, name) in [
            ("git@github.com:team/vision.git", "vision"),
            ("https://github.com/team/vision", "vision"),
            ("ssh://git@host:22/srv/vision.git/", "vision"),
            ("/srv/git/vision.git", "vision"),
            ("host:vision", "vision"),
        ] {
            assert_eq!(repository_name(url).as_deref(), Some(name), "{url}");
        }
        assert_eq!(repository_name(".git"), None);
    }
}
