//! `trove exp sync --mlflow URI`: copy records to an MLflow tracking server through its
//! REST API (`/api/2.0/mlflow/`). Idempotent: every run sent carries the tag `trove.id`,
//! so a second sync finds it and sends nothing again. A run left unfinished by an
//! interrupted sync (still RUNNING) is deleted and sent again whole.
//!
//! Only plain `http://` servers are supported: the client is built without a TLS stack.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::error::{Error, Result};
use crate::exp::record::{Metric, Point, Record, Status, Value};
use crate::exp::store;
use crate::redact;

/// The run tag that names the record a run was made from.
pub const ID_TAG: &str = "trove.id";

/// MLflow's limits for one `runs/log-batch` request.
pub const MAX_METRICS: usize = 1000;
pub const MAX_PARAMS: usize = 100;
pub const MAX_TAGS: usize = 100;
pub const MAX_ENTITIES: usize = 1000;
/// A request may be up to 1 MB: stay well below it.
const MAX_BATCH_BYTES: usize = 800_000;

/// MLflow's longest param, metric or tag key.
pub const MAX_KEY_CHARS: usize = 250;

/// Why MLflow would refuse `key` as a param, metric or tag name, with a name it takes
/// instead; `None` when it is fine. MLflow's rules (mlflow/utils/validation.py): letters,
/// digits, `_ - . / :` and spaces only; a path that normalises to itself (no empty, `.`
/// or `..` segments, no leading or trailing `/`, not starting with `..`); at most 250
/// characters.
pub fn invalid_key(key: &str) -> Option<String> {
    let allowed = |c: char| c.is_alphanumeric() || "_-./: ".contains(c);
    let bad: BTreeSet<char> = key.chars().filter(|&c| !allowed(c)).collect();
    let problem = if key.is_empty() {
        "an empty key".to_string()
    } else if !bad.is_empty() {
        let shown: Vec<String> = bad.iter().map(|c| format!("{c:?}")).collect();
        format!("MLflow allows only letters, digits, spaces and _ - . / : in keys, not {}", shown.join(" "))
    } else if key.starts_with('/') || key.ends_with('/') || key.starts_with("..") {
        "MLflow refuses keys that start with `/` or `..` or end with `/`".to_string()
    } else if key.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
        "MLflow refuses keys with empty, `.` or `..` parts between slashes".to_string()
    } else if key.chars().count() > MAX_KEY_CHARS {
        format!("MLflow allows keys of at most {MAX_KEY_CHARS} characters")
    } else {
        return None;
    };
    let mut suggestion: String = key.chars().map(|c| if allowed(c) { c } else { '_' }).collect();
    suggestion = suggestion
        .split('/')
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .collect::<Vec<_>>()
        .join("/");
    suggestion = suggestion.trim_start_matches('.').chars().take(MAX_KEY_CHARS).collect();
    if suggestion.is_empty() || suggestion == key {
        Some(problem)
    } else {
        Some(format!("{problem}; call it e.g. {suggestion:?}"))
    }
}

/// How to log in to the tracking server.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    /// `Authorization: Bearer TOKEN` (MLFLOW_TRACKING_TOKEN).
    Bearer(String),
    /// HTTP basic auth (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD).
    Basic {
        user: String,
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    // Never print a secret, not even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.write_str("Bearer(…)"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}, …)"),
        }
    }
}

/// A client for one tracking server.
pub struct Client {
    /// `http://host:port[/prefix]`, without credentials or a trailing slash.
    base: String,
    agent: ureq::Agent,
    authorization: Option<String>,
}

/// An answer of the server: its status and JSON body.
struct Reply {
    status: u16,
    body: Json,
}

impl Reply {
    fn error_code(&self) -> &str {
        self.body.get("error_code").and_then(Json::as_str).unwrap_or("")
    }
}

impl Client {
    /// A client for `uri` (`http://host:port`, optionally with a path prefix). Credentials
    /// in the URI (`http://user:password@host`) are used when `auth` is `None`.
    pub fn new(uri: &str, auth: Auth) -> Result<Client> {
        let Some(rest) = uri.strip_prefix("http://") else {
            let shown = redact::url_credentials(uri);
            let message = if uri.starts_with("https://") {
                format!(
                    "{shown}: https is not supported: trove talks to MLflow over plain http only \
                     (reach the server through an SSH tunnel or a local proxy, and give its http:// URI)"
                )
            } else {
                format!("{shown}: not an MLflow tracking server URI; give one like http://127.0.0.1:5000")
            };
            return Err(Error::Usage(message));
        };
        let rest = rest.trim_end_matches('/');
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(Error::Usage(format!("{}: the URI names no host", redact::url_credentials(uri))));
        }
        let auth = match (auth, userinfo) {
            (Auth::None, Some(u)) => {
                let (user, password) = u.split_once(':').unwrap_or((u, ""));
                Auth::Basic { user: percent_decode(user), password: percent_decode(password) }
            }
            (a, _) => a,
        };
        let authorization = match auth {
            Auth::None => None,
            Auth::Bearer(token) => Some(format!("Bearer {token}")),
            Auth::Basic { user, password } => Some(format!(
                "Basic {}",
                crate::base64::encode(format!("{user}:{password}").as_bytes(), true)
            )),
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_global(Some(Duration::from_secs(300)))
            .user_agent(concat!("trove/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Client { base: format!("http://{host}{path}"), agent, authorization })
    }

    /// The server's URI as shown to people (never with credentials).
    pub fn uri(&self) -> &str {
        &self.base
    }

    fn fail(&self, message: impl Into<String>) -> Error {
        Error::remote(self.base.clone(), crate::error::RemoteFailure::Io, message)
    }

    /// One request: POST with a JSON body, or GET with a query.
    fn request(&self, endpoint: &str, body: Option<&Json>, query: &[(&str, &str)]) -> Result<Reply> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        let result = match body {
            Some(body) => {
                let mut req = self.agent.post(&url).header("Content-Type", "application/json");
                if let Some(a) = &self.authorization {
                    req = req.header("Authorization", a);
                }
                req.send(serde_json::to_vec(body).expect("JSON serialises"))
            }
            None => {
                let mut req = self.agent.get(&url);
                for (k, v) in query {
                    req = req.query(*k, *v);
                }
                if let Some(a) = &self.authorization {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
        };
        let mut response = result.map_err(|e| {
            let unreachable = match &e {
                ureq::Error::Io(io) => matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
                ),
                ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => true,
                _ => false,
            };
            if unreachable {
                self.fail(format!("{endpoint}: cannot connect ({e}); is the MLflow server running there?"))
            } else {
                self.fail(format!("{endpoint}: {e}"))
            }
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| self.fail(format!("{endpoint}: reading the answer: {e}")))?;
        let body = if text.trim().is_empty() {
            json!({})
        } else {
            match serde_json::from_str(&text) {
                Ok(j) => j,
                Err(_) if status == 200 => {
                    return Err(self.fail(format!(
                        "{endpoint}: the answer is not JSON: is this an MLflow tracking server?"
                    )));
                }
                Err(_) => json!({ "message": text.chars().take(300).collect::<String>() }),
            }
        };
        Ok(Reply { status, body })
    }

    /// A request that must succeed: its JSON body.
    fn call(&self, endpoint: &str, body: Option<&Json>, query: &[(&str, &str)]) -> Result<Json> {
        let reply = self.request(endpoint, body, query)?;
        if reply.status == 200 {
            return Ok(reply.body);
        }
        Err(self.api_error(endpoint, &reply))
    }

    fn api_error(&self, endpoint: &str, reply: &Reply) -> Error {
        let message = reply.body.get("message").and_then(Json::as_str).unwrap_or("");
        let code = reply.error_code();
        let mut text = format!("{endpoint}: HTTP {}", reply.status);
        if !code.is_empty() {
            text.push_str(&format!(" {code}"));
        }
        if !message.is_empty() {
            text.push_str(&format!(": {message}"));
        }
        if matches!(reply.status, 401 | 403) {
            text.push_str(
                " (log in with MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)",
            );
        }
        self.fail(text)
    }

    /// The id of the experiment called `name`, created when missing; and whether it was.
    pub fn experiment(&self, name: &str) -> Result<(String, bool)> {
        for _ in 0..3 {
            let reply = self.request("experiments/get-by-name", None, &[("experiment_name", name)])?;
            if reply.status == 200 {
                let exp = &reply.body["experiment"];
                let id = exp["experiment_id"].as_str().unwrap_or_default().to_string();
                if exp["lifecycle_stage"].as_str() == Some("deleted") {
                    return Err(self.fail(format!(
                        "experiment {name:?} is deleted on this server: restore it, or sync to another \
                         one with --experiment NAME"
                    )));
                }
                return Ok((id, false));
            }
            if reply.status != 404 && reply.error_code() != "RESOURCE_DOES_NOT_EXIST" {
                return Err(self.api_error("experiments/get-by-name", &reply));
            }
            let created = self.request("experiments/create", Some(&json!({ "name": name })), &[])?;
            if created.status == 200 {
                let id = created.body["experiment_id"].as_str().unwrap_or_default().to_string();
                return Ok((id, true));
            }
            // Another client created it meanwhile: look it up again.
            if created.error_code() != "RESOURCE_ALREADY_EXISTS" {
                return Err(self.api_error("experiments/create", &created));
            }
        }
        Err(self.fail(format!("experiment {name:?} could not be found or created")))
    }

    /// POST a search `body` to `endpoint`, then again for each next page the server
    /// names; `on_page` sees every page.
    fn search_pages(&self, endpoint: &str, mut body: Json, mut on_page: impl FnMut(&Json)) -> Result<()> {
        loop {
            let page = self.call(endpoint, Some(&body), &[])?;
            on_page(&page);
            match page["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => body["page_token"] = json!(t),
                _ => return Ok(()),
            }
        }
    }

    /// The ids of the server's active experiments.
    fn experiment_ids(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let body = json!({ "max_results": 1000, "view_type": "ACTIVE_ONLY" });
        self.search_pages("experiments/search", body, |page| {
            let ids = page["experiments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["experiment_id"].as_str());
            out.extend(ids.map(str::to_string));
        })?;
        Ok(out)
    }

    /// The active runs that carry `trove.id`, in every active experiment of the server
    /// (so that a record is sent once, whichever experiment a clone syncs to): record id
    /// -> runs.
    pub fn runs_by_record(&self) -> Result<HashMap<String, Vec<RemoteRun>>> {
        let mut out: HashMap<String, Vec<RemoteRun>> = HashMap::new();
        for experiments in self.experiment_ids()?.chunks(100) {
            let body = json!({
                "experiment_ids": experiments,
                "filter": format!("tags.`{ID_TAG}` LIKE '%'"),
                "max_results": 1000,
                "run_view_type": "ACTIVE_ONLY",
            });
            self.search_pages("runs/search", body, |page| {
                for run in page["runs"].as_array().into_iter().flatten() {
                    let tags = run["data"]["tags"].as_array();
                    let id_tag = tags
                        .into_iter()
                        .flatten()
                        .find(|t| t["key"].as_str() == Some(ID_TAG))
                        .and_then(|t| t["value"].as_str());
                    if let Some(record_id) = id_tag {
                        out.entry(record_id.to_string()).or_default().push(RemoteRun {
                            run_id: run["info"]["run_id"].as_str().unwrap_or_default().to_string(),
                            status: run["info"]["status"].as_str().unwrap_or_default().to_string(),
                        });
                    }
                }
            })?;
        }
        Ok(out)
    }

    /// Create the run, log everything in batches, then close it with its status. A run
    /// that cannot be finished is deleted, so that no half-made run is left RUNNING; a
    /// request the server refuses as invalid (HTTP 400) makes the record `Refused`, any
    /// other failure is an error.
    pub fn send(&self, experiment_id: &str, run: &RunPayload) -> Result<Sent> {
        let created = self.request(
            "runs/create",
            Some(&json!({
                "experiment_id": experiment_id,
                "run_name": run.run_name,
                "start_time": run.start_time,
                "user_id": run.user,
                "tags": key_values(&run.create_tags),
            })),
            &[],
        )?;
        if created.status != 200 {
            return self.refused_or_error("runs/create", &created);
        }
        let run_id = created.body["run"]["info"]["run_id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.fail("runs/create: the answer names no run_id"))?
            .to_string();
        let failed = match self.finish(&run_id, run) {
            Ok(None) => return Ok(Sent::Run(run_id)),
            Ok(Some(answer)) => Ok(answer),
            Err(e) => Err(e),
        };
        // Whatever went wrong, leave no half-made run. Should deleting fail too (the server
        // is gone), the next sync finds the run RUNNING and deletes it then.
        let deleted = self.delete_run(&run_id);
        let (endpoint, reply) = failed?;
        deleted?;
        self.refused_or_error(endpoint, &reply)
    }

    /// Log the run's batches and close it; the first answer that is not a success.
    fn finish(&self, run_id: &str, run: &RunPayload) -> Result<Option<(&'static str, Reply)>> {
        for batch in batches(run) {
            let reply = self.request(
                "runs/log-batch",
                Some(&json!({
                    "run_id": run_id,
                    "params": key_values(batch.params),
                    "tags": key_values(batch.tags),
                    "metrics": batch.metrics,
                })),
                &[],
            )?;
            if reply.status != 200 {
                return Ok(Some(("runs/log-batch", reply)));
            }
        }
        let reply = self.request(
            "runs/update",
            Some(&json!({ "run_id": run_id, "status": run.status, "end_time": run.end_time })),
            &[],
        )?;
        Ok((reply.status != 200).then_some(("runs/update", reply)))
    }

    /// A failed answer: the record refused (HTTP 400: something in it is invalid), or an
    /// error that stops the sync (logins, a broken server).
    fn refused_or_error(&self, endpoint: &str, reply: &Reply) -> Result<Sent> {
        let error = self.api_error(endpoint, reply);
        if reply.status == 400 {
            let Error::Remote { message, .. } = error else { return Err(error) };
            return Ok(Sent::Refused(message));
        }
        Err(error)
    }

    pub fn delete_run(&self, run_id: &str) -> Result<()> {
        self.call("runs/delete", Some(&json!({ "run_id": run_id })), &[]).map(|_| ())
    }
}

/// What became of one record sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The run made for it, finished.
    Run(String),
    /// The server refused it (MLflow's message); no run is left for it.
    Refused(String),
}

/// A run found on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRun {
    pub run_id: String,
    pub status: String,
}

impl RemoteRun {
    /// Whether the run was closed: a sync that finished it, not one cut short.
    fn is_complete(&self) -> bool {
        matches!(self.status.as_str(), "FINISHED" | "FAILED" | "KILLED")
    }
}

fn key_values(pairs: &[(String, String)]) -> Json {
    Json::Array(pairs.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect())
}

/// One metric value at a step, as `runs/log-batch` takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricEntry {
    pub key: String,
    pub value: f64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub step: i64,
}

/// What one record becomes in MLflow.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPayload {
    pub run_name: String,
    pub user: String,
    pub start_time: i64,
    pub end_time: i64,
    /// FINISHED or FAILED.
    pub status: &'static str,
    /// Set when the run is created, so that even an interrupted sync leaves a findable run.
    pub create_tags: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub params: Vec<(String, String)>,
    pub metrics: Vec<MetricEntry>,
}

/// The MLflow run for `record`, with its metric `series` (key -> points): params as
/// strings; single metric values at step 0 and each series point at its step (booleans
/// as 1 and 0; text metrics, which MLflow cannot hold, become `trove.metric.KEY` tags).
pub fn payload(record: &Record, series: &BTreeMap<String, Vec<Point>>) -> Result<RunPayload> {
    let start_time = parse_time(&record.created).ok_or_else(|| {
        Error::exp(&record.id, format!("created time {:?} is not RFC 3339", record.created))
    })?;
    let duration = record.run.as_ref().map_or(0, |r| (r.duration_secs * 1000.0).round() as i64);
    let mut create_tags = vec![
        (ID_TAG.to_string(), record.id.clone()),
        ("mlflow.runName".to_string(), record.name.clone()),
        ("mlflow.user".to_string(), record.user.clone()),
        ("mlflow.source.git.commit".to_string(), record.commit.clone()),
    ];
    if let Some(branch) = &record.branch {
        create_tags.push(("mlflow.source.git.branch".to_string(), branch.clone()));
    }
    let reserved: BTreeSet<&str> = create_tags.iter().map(|(k, _)| k.as_str()).collect();
    let mut tags: Vec<(String, String)> = record
        .tags
        .iter()
        .filter(|(k, _)| !reserved.contains(k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tags.push(("trove.dirty".to_string(), record.dirty.to_string()));
    let params = record.params.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
    let mut metrics = Vec::new();
    for (key, metric) in &record.metrics {
        let entry = |value: f64, step: u64| MetricEntry {
            key: key.clone(),
            value,
            timestamp: start_time,
            step: i64::try_from(step).unwrap_or(i64::MAX),
        };
        match metric {
            Metric::Series(_) => {
                let points = series.get(key).map_or(&[][..], Vec::as_slice);
                metrics.extend(points.iter().map(|&(step, value)| entry(value, step)));
            }
            Metric::Value(Value::Number(n)) => metrics.push(entry(*n, 0)),
            Metric::Value(Value::Bool(b)) => metrics.push(entry(if *b { 1.0 } else { 0.0 }, 0)),
            Metric::Value(Value::Text(t)) => tags.push((format!("trove.metric.{key}"), t.clone())),
        }
    }
    Ok(RunPayload {
        run_name: record.name.clone(),
        user: record.user.clone(),
        start_time,
        end_time: start_time + duration,
        status: match record.status {
            Status::Finished => "FINISHED",
            Status::Failed => "FAILED",
        },
        create_tags,
        tags,
        params,
        metrics,
    })
}

/// One `runs/log-batch` request's share of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<'a> {
    pub params: &'a [(String, String)],
    pub tags: &'a [(String, String)],
    pub metrics: &'a [MetricEntry],
}

/// Split a run's params, tags and metrics into requests within MLflow's limits: at most
/// 100 params, 100 tags and 1000 metrics, 1000 entities in all, and well under 1 MB.
pub fn batches(run: &RunPayload) -> Vec<Batch<'_>> {
    let (mut p, mut t, mut m) = (0, 0, 0);
    let mut out = Vec::new();
    while p < run.params.len() || t < run.tags.len() || m < run.metrics.len() {
        let mut bytes = 0;
        let mut count = 0;
        // Take items while they fit; the first item of a batch always goes.
        let mut take = |items: usize, start: usize, max: usize, cost: &dyn Fn(usize) -> usize| {
            let mut n = 0;
            while start + n < items && n < max && count < MAX_ENTITIES {
                let c = cost(start + n);
                if count > 0 && bytes + c > MAX_BATCH_BYTES {
                    break;
                }
                bytes += c;
                count += 1;
                n += 1;
            }
            n
        };
        let kv = |pairs: &[(String, String)], i: usize| pairs[i].0.len() + pairs[i].1.len() + 32;
        let np = take(run.params.len(), p, MAX_PARAMS, &|i| kv(&run.params, i));
        let nt = take(run.tags.len(), t, MAX_TAGS, &|i| kv(&run.tags, i));
        let nm = take(run.metrics.len(), m, MAX_METRICS, &|i| run.metrics[i].key.len() + 96);
        out.push(Batch {
            params: &run.params[p..p + np],
            tags: &run.tags[t..t + nt],
            metrics: &run.metrics[m..m + nm],
        });
        (p, t, m) = (p + np, t + nt, m + nm);
    }
    out
}

/// A record and the run it has on the server.
#[derive(Debug, Clone, Serialize)]
pub struct SyncedRun {
    pub id: String,
    pub name: String,
    pub run_id: String,
}

/// A record the server would not take, and why.
#[derive(Debug, Clone, Serialize)]
pub struct RefusedRecord {
    pub id: String,
    pub name: String,
    pub error: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub mlflow: String,
    pub experiment: String,
    pub experiment_id: String,
    pub created_experiment: bool,
    /// Runs sent now.
    pub synced: Vec<SyncedRun>,
    /// Records whose run was there already (in any experiment of the server).
    pub already: Vec<SyncedRun>,
    /// Unfinished runs of an interrupted sync, deleted before their record was sent again.
    pub replaced: Vec<String>,
    /// Records the server refused (no run is left for them); the others were still sent.
    pub refused: Vec<RefusedRecord>,
}

/// What `sync` tells its caller as it goes.
pub enum Progress<'a> {
    Sent(&'a SyncedRun),
    Already(&'a SyncedRun),
    Refused(&'a RefusedRecord),
}

/// Send `records` that the server lacks to the experiment `experiment` (created when
/// missing). A record the server refuses is reported and skipped; the rest are sent.
/// `on_record` hears about each record as it is done.
pub fn sync(
    client: &Client,
    git: &git2::Repository,
    experiment: &str,
    records: &[Record],
    on_record: &mut dyn FnMut(Progress),
) -> Result<SyncReport> {
    let (experiment_id, created_experiment) = client.experiment(experiment)?;
    let existing = client.runs_by_record()?;
    let mut report = SyncReport {
        mlflow: client.uri().to_string(),
        experiment: experiment.to_string(),
        experiment_id: experiment_id.clone(),
        created_experiment,
        synced: Vec::new(),
        already: Vec::new(),
        replaced: Vec::new(),
        refused: Vec::new(),
    };
    let mut seen = BTreeSet::new();
    for record in records.iter().filter(|r| seen.insert(r.id.as_str())) {
        let found = existing.get(&record.id).map_or(&[][..], Vec::as_slice);
        if let Some(done) = found.iter().find(|r| r.is_complete()) {
            let run =
                SyncedRun { id: record.id.clone(), name: record.name.clone(), run_id: done.run_id.clone() };
            on_record(Progress::Already(&run));
            report.already.push(run);
            continue;
        }
        for unfinished in found {
            client.delete_run(&unfinished.run_id)?;
            report.replaced.push(unfinished.run_id.clone());
        }
        let mut series = BTreeMap::new();
        for (key, metric) in &record.metrics {
            if let Metric::Series(s) = metric {
                series.insert(key.clone(), store::read_series(git, s)?);
            }
        }
        let run = payload(record, &series)?;
        let sent = client.send(&experiment_id, &run).map_err(|e| match e {
            Error::Remote { remote, kind, message } => Error::Remote {
                remote,
                kind,
                message: format!("record {} ({}): {message}", record.short_id(), record.name),
            },
            e => e,
        })?;
        match sent {
            Sent::Run(run_id) => {
                let run = SyncedRun { id: record.id.clone(), name: record.name.clone(), run_id };
                on_record(Progress::Sent(&run));
                report.synced.push(run);
            }
            Sent::Refused(error) => {
                let refused = RefusedRecord { id: record.id.clone(), name: record.name.clone(), error };
                on_record(Progress::Refused(&refused));
                report.refused.push(refused);
            }
        }
    }
    Ok(report)
}

/// Milliseconds since the epoch of an RFC 3339 UTC time (`2026-11-23T07:10:00.123Z`).
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let millis = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        digits.parse::<i64>().ok()?
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + millis)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exp::record::SeriesRef;

    fn record() -> Record {
        let mut r: Record = serde_json::from_value(json!({
            "version": 1, "id": "01jqxyz0000000000000000000", "name": "baseline",
            "created": "2026-11-23T07:10:00.123Z", "user": "ann", "commit": "a".repeat(40),
            "branch": "main", "dirty": false, "status": "finished", "data": [], "params": {},
            "metrics": {}, "tags": {"team": "vision"}, "env": {"files": {}, "interpreters": {}},
            "artifacts": [], "run": {"argv": ["python", "train.py"], "exit_code": 0, "duration_secs": 2.5}
        }))
        .unwrap();
        r.params.insert("lr".into(), Value::Number(0.01));
        r.params.insert("epochs".into(), Value::Number(10.0));
        r.params.insert("opt".into(), Value::Text("adam".into()));
        r.metrics.insert("acc".into(), Metric::Value(Value::Number(0.9)));
        r.metrics.insert("converged".into(), Metric::Value(Value::Bool(true)));
        r.metrics.insert("note".into(), Metric::Value(Value::Text("ok".into())));
        r.metrics.insert(
            "loss".into(),
            Metric::Series(SeriesRef { series: "series/x/loss.json".into(), points: 3, last: Some(0.2) }),
        );
        r
    }

    #[test]
    fn a_record_becomes_a_run() {
        let mut series = BTreeMap::new();
        series.insert("loss".to_string(), vec![(0, 1.0), (5, 0.5), (10, 0.2)]);
        let run = payload(&record(), &series).unwrap();
        let start = parse_time("2026-11-23T07:10:00.123Z").unwrap();
        assert_eq!(run.start_time, start);
        assert_eq!(run.end_time, start + 2500);
        assert_eq!(run.status, "FINISHED");
        assert_eq!(
            run.params,
            [("epochs".into(), "10".into()), ("lr".into(), "0.01".into()), ("opt".into(), "adam".into())]
        );
        let create: BTreeMap<&str, &str> =
            run.create_tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(create["trove.id"], "01jqxyz0000000000000000000");
        assert_eq!(create["mlflow.source.git.commit"], "a".repeat(40));
        assert_eq!(create["mlflow.source.git.branch"], "main");
        assert_eq!(create["mlflow.user"], "ann");
        assert_eq!(create["mlflow.runName"], "baseline");
        assert!(run.tags.contains(&("team".into(), "vision".into())));
        assert!(run.tags.contains(&("trove.metric.note".into(), "ok".into())));
        let metrics: Vec<(&str, f64, i64)> =
            run.metrics.iter().map(|m| (m.key.as_str(), m.value, m.step)).collect();
        assert_eq!(
            metrics,
            [("acc", 0.9, 0), ("converged", 1.0, 0), ("loss", 1.0, 0), ("loss", 0.5, 5), ("loss", 0.2, 10)]
        );
        assert!(run.metrics.iter().all(|m| m.timestamp == start));
    }

    #[test]
    fn batches_stay_within_mlflow_limits() {
        let mut series = BTreeMap::new();
        series.insert("loss".to_string(), (0..2500).map(|i| (i, 1.0 / (i + 1) as f64)).collect());
        let mut r = record();
        for i in 0..250 {
            r.params.insert(format!("p{i:03}"), Value::Number(f64::from(i)));
            r.tags.insert(format!("t{i:03}"), "x".into());
        }
        let run = payload(&r, &series).unwrap();
        let all = batches(&run);
        for b in &all {
            assert!(
                b.params.len() <= MAX_PARAMS && b.tags.len() <= MAX_TAGS && b.metrics.len() <= MAX_METRICS
            );
            assert!(b.params.len() + b.tags.len() + b.metrics.len() <= MAX_ENTITIES);
        }
        // Everything is sent exactly once, in order.
        let params: Vec<&(String, String)> = all.iter().flat_map(|b| b.params).collect();
        assert_eq!(params, run.params.iter().collect::<Vec<_>>());
        let tags: usize = all.iter().map(|b| b.tags.len()).sum();
        assert_eq!(tags, run.tags.len());
        let metrics: Vec<&MetricEntry> = all.iter().flat_map(|b| b.metrics).collect();
        assert_eq!(metrics, run.metrics.iter().collect::<Vec<_>>());
        assert_eq!(all.len(), 4, "253 params, 253 tags, 2503 metrics");
        // Big values split by size too.
        let mut big = run.clone();
        big.params = (0..100).map(|i| (format!("k{i}"), "v".repeat(6000))).collect();
        big.tags = (0..100).map(|i| (format!("t{i}"), "v".repeat(8000))).collect();
        let split = batches(&big);
        assert!(split.len() > 1);
        for b in &split {
            let bytes: usize = b.params.iter().chain(b.tags).map(|(k, v)| k.len() + v.len()).sum();
            assert!(bytes < 1_000_000, "{bytes}");
        }
        assert!(batches(&RunPayload { params: vec![], tags: vec![], metrics: vec![], ..run }).is_empty());
    }

    #[test]
    fn keys_follow_mlflows_rules() {
        for ok in ["acc", "val/acc", "top 1", "a.b-c_d", "f1:macro", "über"] {
            assert_eq!(invalid_key(ok), None, "{ok}");
        }
        let m = invalid_key("top@1").unwrap();
        assert!(m.contains("'@'") && m.contains("\"top_1\""), "{m}");
        for bad in ["", "/abs", "a/", "a//b", "a/./b", "a/../b", "..x", "x?", &"k".repeat(251)] {
            assert!(invalid_key(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(parse_time("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(parse_time("2026-11-18T11:06:40.005Z"), Some(1_795_000_000_005));
        assert_eq!(parse_time("2026-11-18 11:06:40"), None);
        for secs in [0i64, 951_782_400, 1_795_000_000, 4_102_444_799] {
            let s = crate::exp::record::format_time(secs, 42);
            assert_eq!(parse_time(&s), Some(secs * 1000 + 42), "{s}");
        }
    }

    #[test]
    fn uris_and_auth() {
        assert!(matches!(Client::new("https://mlflow.example.com", Auth::None), Err(Error::Usage(_))));
        assert!(matches!(Client::new("databricks", Auth::None), Err(Error::Usage(_))));
        let Err(Error::Usage(m)) = Client::new("https://ann:secret@h", Auth::None) else { panic!("refused") };
        assert!(m.contains("https is not supported") && !m.contains("secret"), "{m}");
        assert!(matches!(Client::new("http://", Auth::None), Err(Error::Usage(_))));
        let c = Client::new("http://127.0.0.1:5000/", Auth::None).unwrap();
        assert_eq!(c.uri(), "http://127.0.0.1:5000");
        assert_eq!(c.authorization, None);
        let c = Client::new("http://ann:p%40ss@host:5000/mlflow/", Auth::None).unwrap();
        assert_eq!(c.uri(), "http://host:5000/mlflow");
        assert_eq!(c.authorization.as_deref(), Some("Basic YW5uOnBAc3M="));
        let c = Client::new("http://h:1", Auth::Bearer("tok".into())).unwrap();
        assert_eq!(c.authorization.as_deref(), Some("Bearer tok"));
        assert!(!format!("{:?}", Auth::Basic { user: "u".into(), password: "pw".into() }).contains("pw"));
    }

    #[test]
    fn credentials_are_sent_and_refusals_explained() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "the request ended early");
                request.extend_from_slice(&buf[..n]);
            }
            let body = r#"{"error_code": "UNAUTHENTICATED", "message": "You are not authenticated."}"#;
            let head = format!(
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(body.as_bytes()).unwrap();
            String::from_utf8(request).unwrap()
        });
        let c = Client::new(&format!("http://127.0.0.1:{port}"), Auth::Bearer("tok123".into())).unwrap();
        let err = c.experiment("my exp").unwrap_err().to_string();
        let request = server.join().unwrap();
        assert!(
            request.starts_with("GET /api/2.0/mlflow/experiments/get-by-name?experiment_name=my%20exp "),
            "{request}"
        );
        assert!(request.to_ascii_lowercase().contains("authorization: bearer tok123"), "{request}");
        assert!(err.contains("HTTP 401 UNAUTHENTICATED: You are not authenticated."), "{err}");
        assert!(err.contains("MLFLOW_TRACKING_TOKEN") && !err.contains("tok123"), "{err}");
    }

    #[test]
    fn an_unreachable_server_is_named() {
        // A port nothing listens on: bind one, then free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let c = Client::new(&format!("http://127.0.0.1:{port}"), Auth::None).unwrap();
        let err = c.experiment("x").unwrap_err().to_string();
        assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("cannot connect"), "{err}");
    }
}
