//! `trove remote …`: manage remotes.

use anyhow::{Result, bail};
use clap::Subcommand;
use serde::Serialize;

use super::Ctx;
use crate::config::show;
use crate::remote::parse_url;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Add a remote: a folder, file://, sftp://[user@]host[:port]/path or ssh://…
    Add {
        name: String,
        url: String,
        /// Make it the default remote
        #[arg(long)]
        default: bool,
        /// Write to config.local instead of the committed config
        #[arg(long)]
        local: bool,
    },
    /// List remotes
    List,
    /// Remove a remote
    Remove { name: String },
    /// Make a remote the default
    Default { name: String },
    /// Set a remote's setting: jobs, layout; SFTP: user, port, keyfile, password (--local
    /// only), known_hosts, host_key, transport; S3: endpoint, region, path_style, profile, ca_file,
    /// access_key_id, secret_access_key and session_token (--local only), multipart_threshold
    Set {
        name: String,
        key: String,
        value: String,
        /// Write to config.local (required for password)
        #[arg(long)]
        local: bool,
    },
    /// Convert a layout-1 remote to layout 2 in place (resumable: rerun it after a failure)
    Upgrade {
        name: String,
        /// Parallel connections
        #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: Option<u16>,
    },
}

#[derive(Serialize)]
struct Listed {
    name: String,
    url: String,
    default: bool,
    settings: std::collections::BTreeMap<String, String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let mut repo = ctx.open()?;
    let out = &ctx.out;
    let check_name = |name: &str| -> Result<()> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) {
            bail!(crate::error::Error::Usage(format!("remote name `{name}`: use letters, digits, - and _")));
        }
        Ok(())
    };
    match args.command {
        Command::Add { name, url, default, local } => {
            check_name(&name)?;
            parse_url(&url, &repo.root)?;
            if repo.config.remote_names().contains(&name) {
                bail!(crate::error::Error::Usage(format!(
                    "remote `{name}` exists already; `trove remote set {name} url URL` changes it"
                )));
            }
            let progress = out.reporter();
            let _lock = repo.lock(&progress)?;
            repo.config.set(&format!("remote.{name}.url"), &url, local)?;
            if default || repo.config.get("core.remote").is_none() {
                repo.config.set("core.remote", &name, local)?;
            }
            out.say(format!("added remote {name} -> {url}"));
            out.emit(&serde_json::json!({ "added": name, "url": url }));
        }
        Command::List => {
            let default = repo.config.get("core.remote").map(show);
            let listed: Vec<Listed> = repo
                .config
                .remote_names()
                .into_iter()
                .map(|name| {
                    // Every remote setting config knows (the URL is shown apart), secrets
                    // last and only as `(set)`.
                    let keys = crate::config::KNOWN_KEYS
                        .iter()
                        .filter_map(|k| k.key.strip_prefix("remote.NAME."))
                        .filter(|k| *k != "url");
                    let (secret, plain): (Vec<&str>, Vec<&str>) =
                        keys.partition(|k| crate::config::SECRET_KEYS.contains(k));
                    let settings = plain
                        .into_iter()
                        .filter_map(|k| repo.config.remote_value(&name, k).map(|v| (k.to_string(), v)))
                        .chain(
                            secret
                                .into_iter()
                                .filter(|k| repo.config.remote_value(&name, k).is_some())
                                .map(|k| (k.to_string(), "(set)".into())),
                        )
                        .collect();
                    Listed {
                        url: crate::remote::redact_url(
                            &repo.config.remote_value(&name, "url").unwrap_or_default(),
                        ),
                        default: default.as_deref() == Some(name.as_str()),
                        name,
                        settings,
                    }
                })
                .collect();
            if listed.is_empty() {
                out.say("no remotes; add one with `trove remote add NAME URL`");
            }
            for r in &listed {
                out.say(format!("{}{}\t{}", r.name, if r.default { " (default)" } else { "" }, r.url));
                for (k, v) in &r.settings {
                    out.detail(format!("    {k}: {v}"));
                }
            }
            out.emit(&serde_json::json!({ "remotes": listed }));
        }
        Command::Remove { name } => {
            let progress = out.reporter();
            let _lock = repo.lock(&progress)?;
            if !repo.config.remove_remote(&name)? {
                bail!(crate::error::Error::Usage(format!("no remote named `{name}`")));
            }
            out.say(format!("removed remote {name}"));
            out.emit(&serde_json::json!({ "removed": name }));
        }
        Command::Default { name } => {
            if !repo.config.remote_names().contains(&name) {
                bail!(crate::error::Error::Usage(format!("no remote named `{name}`")));
            }
            let progress = out.reporter();
            let _lock = repo.lock(&progress)?;
            repo.config.set("core.remote", &name, false)?;
            out.say(format!("default remote: {name}"));
            out.emit(&serde_json::json!({ "default": name }));
        }
        Command::Set { name, key, value, local } => {
            if !repo.config.remote_names().contains(&name) {
                bail!(crate::error::Error::Usage(format!("no remote named `{name}`")));
            }
            if key == "url" {
                parse_url(&value, &repo.root)?;
            }
            if key == "keyfile" {
                check_keyfile(&repo.root, &name, &value)?;
            }
            let progress = out.reporter();
            let _lock = repo.lock(&progress)?;
            repo.config.set(&format!("remote.{name}.{key}"), &value, local)?;
            let shown = if crate::config::is_secret(&format!("remote.{name}.{key}")) {
                "(hidden)"
            } else {
                value.as_str()
            };
            out.say(format!("remote {name}: {key} = {shown}"));
            out.emit(&serde_json::json!({ "remote": name, "key": key, "local": local }));
        }
        Command::Upgrade { name, jobs } => upgrade(ctx, &repo, &name, jobs)?,
    }
    Ok(())
}

fn upgrade(ctx: &Ctx, repo: &crate::repo::Repo, name: &str, jobs: Option<u16>) -> Result<()> {
    use super::output::{bytes, plural};
    let out = &ctx.out;
    if !repo.config.remote_names().iter().any(|n| n == name) {
        bail!(crate::error::Error::Usage(format!("no remote named `{name}`")));
    }
    let remote = crate::remote::open(repo, Some(name))?;
    let progress = out.reporter();
    // Objects are downloaded into the cache's temp folder.
    repo.cache.ensure()?;
    let report =
        crate::store::upgrade::upgrade(&repo.cache, remote.as_ref(), jobs.map(usize::from), &progress)?;
    if report.already {
        out.say(format!("remote {name} is layout 2 already; nothing to do"));
        out.emit(&serde_json::json!({ "upgrade": report }));
        return Ok(());
    }
    if report.leftovers > 0 {
        out.say(format!(
            "remote {name} was layout 2 with {} left under objects/ by an earlier upgrade: converting those",
            plural(report.leftovers, "object file")
        ));
    }
    for c in &report.corrupt {
        out.say(format!("corrupt: {} ({}); left under objects/, not converted", c.id, c.error));
    }
    for f in &report.failed {
        out.say(format!("unreadable: {}: {}", f.id, f.error));
    }
    out.say(format!(
        "converted {} ({}) to {} of packs and index files; deleted {} in {:.1} s",
        plural(report.objects, "object"),
        bytes(report.bytes_before),
        bytes(report.bytes_after),
        plural(report.deleted, "object file"),
        report.seconds
    ));
    if !report.failed.is_empty() {
        return Err(super::WithReport {
            message: format!(
                "{} could not be read; remote {name} stays layout {} until they are converted",
                plural(report.failed.len() as u64, "object"),
                report.from_layout
            ),
            hint: Some(format!(
                "fix what the errors above say, then run `trove remote upgrade {name}` again"
            )),
            report: serde_json::json!({ "upgrade": report }),
        }
        .into());
    }
    if !report.corrupt.is_empty() {
        return Err(super::WithReport {
            message: format!(
                "remote {name} is layout 2 now, but {} on it {} corrupt and {} left under objects/",
                plural(report.corrupt.len() as u64, "object"),
                if report.corrupt.len() == 1 { "was" } else { "were" },
                if report.corrupt.len() == 1 { "is" } else { "are" },
            ),
            hint: Some(format!(
                "push sound copies with `trove push -r {name}` from a clone whose cache has them, \
                 then delete the corrupt files under objects/"
            )),
            report: serde_json::json!({ "upgrade": report }),
        }
        .into());
    }
    out.say(format!("remote {name} is layout 2"));
    out.emit(&serde_json::json!({ "upgrade": report }));
    Ok(())
}

/// A key file that is not there is refused when it is set, not at the next push.
fn check_keyfile(root: &std::path::Path, remote: &str, value: &str) -> Result<()> {
    let path = crate::remote::setting_path(root, value);
    let why = match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => return Ok(()),
        Ok(_) => "is a folder, not a key file",
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist",
        Err(_) => "cannot be read",
    };
    let shown =
        if path.as_os_str() == value { value.to_string() } else { format!("{value} ({})", path.display()) };
    Err(super::WithReport {
        message: format!("remote {remote}: keyfile {shown} {why}"),
        hint: Some(format!(
            "`~/` is your home folder and other relative paths are relative to the repository; \
             a key that exists only on another machine (a CI runner) can be set there, \
             or here with `trove config remote.{remote}.keyfile PATH`"
        )),
        report: serde_json::json!({}),
    }
    .into())
}
