//! trove's model registry copied to MLflow's Model Registry, so that MLflow's clients
//! load the same bytes by name: `mlflow.artifacts.download_artifacts("models:/NAME@ALIAS")`.
//!
//! Each trove version becomes one MLflow model version (MLflow numbers them 1, 2, 3 in
//! the order they are sent; the tag `trove.version` holds trove's vX.Y.Z). Its files are
//! uploaded through the server's artifact proxy under `trove-models/NAME/vX.Y.Z/` of the
//! run of its experiment record (or of a run made for it when it has none), and that
//! folder is the version's source. Every stage and alias becomes an MLflow alias of the
//! same name; `staging` and `prod`/`production` also set the version's (legacy) stage,
//! and a deprecated version is Archived. A sync sends only what is missing, moves
//! aliases that moved, and removes the aliases trove no longer has.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::cache::Cache;
use crate::error::{Error, RemoteFailure, Result};
use crate::exp::mlflow::{ArtifactBody, Client, proxied_artifact_root};
use crate::model::{LabelKind, Model, Version};
use crate::pointer::Kind;

pub const VERSION_TAG: &str = "trove.version";

/// What a sync did to the Model Registry.
#[derive(Debug, Default, Serialize)]
pub struct ModelsReport {
    /// Versions created now.
    pub sent: Vec<SentVersion>,
    /// Versions that were there already.
    pub already: usize,
    /// Versions or aliases not sent, and why.
    pub unsent: Vec<Unsent>,
    /// Aliases set or moved.
    pub aliases_set: Vec<String>,
    /// Aliases removed (trove's label is gone).
    pub aliases_removed: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct SentVersion {
    pub name: String,
    pub version: String,
    /// MLflow's number for it.
    pub mlflow_version: String,
    pub run_id: String,
}

#[derive(Debug, Serialize)]
pub struct Unsent {
    pub name: String,
    pub what: String,
    pub reason: String,
}

/// An MLflow model version sent by trove.
struct Existing {
    number: String,
    stage: String,
}

/// Copy `models` to the server's Model Registry. `runs` maps an experiment record's id to
/// the run it was sent as (versions from a record go with its run); `cache` holds the
/// objects (a version whose object it lacks is reported, and sent by a later sync).
pub fn sync_models(
    client: &Client,
    experiment_id: &str,
    models: &BTreeMap<String, Model>,
    runs: &HashMap<String, String>,
    cache: &Cache,
) -> Result<ModelsReport> {
    let mut report = ModelsReport::default();
    for model in models.values() {
        let name = &model.name;
        let found = client.get_if_exists("registered-models/get", &[("name", name)])?;
        let current_aliases: BTreeMap<String, String> = match &found {
            Some(doc) => doc["registered_model"]["aliases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| Some((a["alias"].as_str()?.to_string(), a["version"].as_str()?.to_string())))
                .collect(),
            None => {
                client.post(
                    "registered-models/create",
                    &json!({
                        "name": name,
                        "description": "Registered with trove: versions, stages and aliases come from the git tags of the repository.",
                        "tags": [{"key": "trove.registry", "value": "true"}],
                    }),
                )?;
                BTreeMap::new()
            }
        };
        let mut existing = existing_versions(client, name)?;
        for v in &model.versions {
            let trove_version = v.record.version.to_string();
            if existing.contains_key(&trove_version) {
                report.already += 1;
                continue;
            }
            match send_version(client, experiment_id, v, runs, cache)? {
                Ok((number, run_id)) => {
                    existing.insert(
                        trove_version.clone(),
                        Existing { number: number.clone(), stage: "None".into() },
                    );
                    report.sent.push(SentVersion {
                        name: name.clone(),
                        version: trove_version,
                        mlflow_version: number,
                        run_id,
                    });
                }
                Err(reason) => report.unsent.push(Unsent { name: name.clone(), what: trove_version, reason }),
            }
        }
        // Aliases: one per stage and alias of trove.
        let mut wanted = BTreeMap::new();
        for (label, l) in &model.labels {
            let Some(e) = existing.get(&l.version.to_string()) else { continue };
            if let Some(why) = alias_problem(label) {
                report.unsent.push(Unsent {
                    name: name.clone(),
                    what: format!("alias {label}"),
                    reason: why,
                });
                continue;
            }
            wanted.insert(label.clone(), e.number.clone());
        }
        for (alias, number) in &wanted {
            if current_aliases.get(alias) != Some(number) {
                client.post(
                    "registered-models/alias",
                    &json!({"name": name, "alias": alias, "version": number}),
                )?;
                report.aliases_set.push(format!("{name}@{alias}"));
            }
        }
        for alias in current_aliases.keys().filter(|a| !wanted.contains_key(*a)) {
            client.delete("registered-models/alias", &json!({"name": name, "alias": alias}))?;
            report.aliases_removed.push(format!("{name}@{alias}"));
        }
        // The legacy stages, for clients that still read them.
        for v in &model.versions {
            let Some(e) = existing.get(&v.record.version.to_string()) else { continue };
            let stage = legacy_stage(model, v);
            if !e.stage.eq_ignore_ascii_case(stage) {
                client.post(
                    "model-versions/transition-stage",
                    &json!({"name": name, "version": e.number, "stage": stage, "archive_existing_versions": false}),
                )?;
            }
        }
    }
    Ok(report)
}

/// MLflow refuses `latest` and names like `v3` (they mean versions there).
fn alias_problem(label: &str) -> Option<String> {
    let version_like = label.len() > 1
        && label.as_bytes()[0].eq_ignore_ascii_case(&b'v')
        && label[1..].bytes().all(|b| b.is_ascii_digit());
    let allowed = label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if label.eq_ignore_ascii_case("latest") || version_like {
        Some("MLflow reserves this alias name".into())
    } else if !allowed {
        Some("MLflow aliases take letters, digits, `_` and `-` only".into())
    } else {
        None
    }
}

/// The MLflow stage that mirrors trove's labels for version `v`.
fn legacy_stage(model: &Model, v: &Version) -> &'static str {
    let has = |names: &[&str]| {
        model.labels.iter().any(|(label, l)| {
            l.kind == LabelKind::Stage
                && l.version == v.record.version
                && names.iter().any(|n| n.eq_ignore_ascii_case(label))
        })
    };
    if has(&["prod", "production"]) {
        "Production"
    } else if has(&["staging"]) {
        "Staging"
    } else if v.deprecated || model.deprecated {
        "Archived"
    } else {
        "None"
    }
}

/// trove version -> the MLflow version trove sent for it.
fn existing_versions(client: &Client, name: &str) -> Result<HashMap<String, Existing>> {
    let filter = format!("name='{}'", name.replace('\'', "\\'"));
    let mut out = HashMap::new();
    let mut token = String::new();
    loop {
        let mut query = vec![("filter", filter.as_str()), ("max_results", "200")];
        if !token.is_empty() {
            query.push(("page_token", token.as_str()));
        }
        let Some(doc) = client.get_if_exists("model-versions/search", &query)? else { break };
        for mv in doc["model_versions"].as_array().into_iter().flatten() {
            let tag = mv["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["key"] == VERSION_TAG)
                .and_then(|t| t["value"].as_str());
            if let (Some(v), Some(number)) = (tag, mv["version"].as_str()) {
                let stage = mv["current_stage"].as_str().unwrap_or("None").to_string();
                out.insert(v.to_string(), Existing { number: number.to_string(), stage });
            }
        }
        match doc["next_page_token"].as_str() {
            Some(t) if !t.is_empty() => token = t.to_string(),
            _ => break,
        }
    }
    Ok(out)
}

/// The files of version `v`: (path under its folder, object path in the cache); or why not.
fn files_of(
    v: &Version,
    cache: &Cache,
) -> Result<std::result::Result<Vec<(String, std::path::PathBuf)>, String>> {
    let r = &v.record;
    let missing = || {
        format!("{} is not in the local cache: `trove model get {}@{}` fetches it", r.hash, r.name, r.version)
    };
    match r.kind {
        Kind::File => Ok(match cache.has_object(&r.hash) {
            true => Ok(vec![(r.file_name().to_string(), cache.object_path(&r.hash))]),
            false => Err(missing()),
        }),
        Kind::Dir => {
            if !cache.has_manifest(&r.hash) {
                return Ok(Err(missing()));
            }
            let manifest = cache.read_manifest(&r.hash)?;
            let mut files = Vec::new();
            for e in &manifest.entries {
                if !cache.has_object(&e.hash) {
                    return Ok(Err(missing()));
                }
                files.push((e.path.clone(), cache.object_path(&e.hash)));
            }
            Ok(Ok(files))
        }
    }
}

/// Upload version `v` and create its MLflow model version: Ok((number, run id)), or the
/// reason it cannot be sent (its object missing here, a server that takes no artifacts).
fn send_version(
    client: &Client,
    experiment_id: &str,
    v: &Version,
    runs: &HashMap<String, String>,
    cache: &Cache,
) -> Result<std::result::Result<(String, String), String>> {
    let r = &v.record;
    let files = match files_of(v, cache)? {
        Ok(f) => f,
        Err(why) => return Ok(Err(why)),
    };
    let record_run = r.exp.as_ref().and_then(|e| runs.get(e)).cloned();
    let (run_id, artifact_uri, own_run) = match record_run {
        Some(run_id) => {
            let uri = client.artifact_uri(&run_id)?;
            (run_id, uri, false)
        }
        None => {
            let tags = vec![
                ("mlflow.source.git.commit".to_string(), r.commit.clone()),
                ("trove.model".to_string(), format!("{}@{}", r.name, r.version)),
            ];
            let start = v.time_ms();
            let created = client.create_run(
                experiment_id,
                &format!("{} {}", r.name, r.version),
                start,
                &v.registered_by,
                &tags,
            )?;
            (created.run_id, created.artifact_uri, true)
        }
    };
    let Some(root) = proxied_artifact_root(&artifact_uri) else {
        if own_run {
            client.delete_run(&run_id)?;
        }
        return Ok(Err(format!("the server stores artifacts at {artifact_uri}, which it does not proxy")));
    };
    let folder = format!("trove-models/{}/{}", r.name, r.version);
    for (rel, object) in &files {
        client.upload_artifact(&root, &format!("{folder}/{rel}"), ArtifactBody::File(object))?;
    }
    if own_run {
        client.end_run(&run_id, "FINISHED", v.time_ms())?;
    }
    let mut tags = vec![
        json!({"key": VERSION_TAG, "value": r.version.to_string()}),
        json!({"key": "trove.hash", "value": r.hash.to_string()}),
        json!({"key": "trove.commit", "value": r.commit}),
        json!({"key": "trove.path", "value": r.path}),
    ];
    if let Some(e) = &r.exp {
        tags.push(json!({"key": "trove.exp", "value": e}));
    }
    let source = format!("{}/{folder}", artifact_uri.trim_end_matches('/'));
    let created: Json = client.post(
        "model-versions/create",
        &json!({
            "name": r.name,
            "source": source,
            "run_id": run_id,
            "tags": tags,
            "description": r.note.clone().unwrap_or_default(),
        }),
    )?;
    let number = created["model_version"]["version"]
        .as_str()
        .ok_or_else(|| {
            Error::remote(
                client.uri(),
                RemoteFailure::Protocol,
                "model-versions/create answered without a version",
            )
        })?
        .to_string();
    Ok(Ok((number, run_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_mlflow_refuses() {
        assert!(alias_problem("prod").is_none());
        assert!(alias_problem("champion-2").is_none());
        assert!(alias_problem("latest").is_some());
        assert!(alias_problem("v3").is_some());
        assert!(alias_problem("V12").is_some());
        assert!(alias_problem("a.b").is_some());
        assert!(alias_problem("vx").is_none());
    }
}
