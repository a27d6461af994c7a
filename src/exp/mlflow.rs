//! `trove exp sync --mlflow URI`: copy records to an MLflow tracking server through its
//! REST API (`/api/2.0/mlflow/`). Idempotent: every run sent carries the tag `trove.id`,
//! so a second sync finds it and sends nothing again. A run left unfinished by an
//! interrupted sync (still RUNNING) is deleted and sent again whole.
//!
//! A run gets the record's params, metrics, tags, data (as dataset inputs) and artifacts
//! (through the server's artifact proxy). `http://` and `https://` servers (rustls, the
//! webpki roots or a CA file).
//!
//! The pieces are public for other syncs to reuse (a model registry's versions, say):
//! [`Client::experiment`], [`Client::create_run`], [`Client::upload_artifact`] (with
//! [`proxied_artifact_root`] of the run's `artifact_uri`), [`Client::set_tag`],
//! [`Client::end_run`], [`Client::list_artifacts`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::error::{Error, Result};
use crate::exp::record::{Metric, Point, Record, Status, Value};
use crate::exp::store;
use crate::hash::ObjectId;
use crate::redact;

/// The run tag that names the record a run was made from.
pub const ID_TAG: &str = "trove.id";
/// The run tag that counts the record's artifacts not sent because the local cache lacked
/// them: a later sync that has them sends them and removes the tag.
pub const MISSING_TAG: &str = "trove.artifacts.missing";
/// MLflow's limit of datasets in one `runs/log-inputs` request.
pub const MAX_DATASETS: usize = 1000;
/// MLflow's longest dataset digest.
pub const MAX_DIGEST_CHARS: usize = 36;
/// MLflow's longest tag value.
pub const MAX_TAG_VALUE_CHARS: usize = 8000;

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

/// How to check the server's TLS certificate (https only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// Trust only the CA certificates in this PEM file (MLFLOW_TRACKING_SERVER_CERT_PATH)
    /// instead of the webpki roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Do not check the certificate at all (MLFLOW_TRACKING_INSECURE_TLS=true).
    pub insecure: bool,
}

impl Client {
    /// A client for `uri` (`http://host:port` or `https://…`, optionally with a path
    /// prefix), with certificates checked against the webpki roots. Credentials in the URI
    /// (`http://user:password@host`) are used when `auth` is `None`.
    pub fn new(uri: &str, auth: Auth) -> Result<Client> {
        Client::with_tls(uri, auth, &Tls::default())
    }

    /// [`Client::new`] with how to check an https server's certificate.
    pub fn with_tls(uri: &str, auth: Auth, tls: &Tls) -> Result<Client> {
        let (scheme, rest) = match uri.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {
                (s.to_ascii_lowercase(), rest)
            }
            _ => {
                return Err(Error::Usage(format!(
                    "{}: not an MLflow tracking server URI; give one like http://127.0.0.1:5000 or \
                     https://mlflow.example.com",
                    redact::url_credentials(uri)
                )));
            }
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
        let base = format!("{scheme}://{host}{path}");
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
            // A redirect could carry the credentials elsewhere.
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(15)))
            // No cap on a whole request (an artifact may take long to upload), only on a
            // server that stops answering.
            .timeout_recv_response(Some(Duration::from_secs(300)))
            .timeout_per_read(Some(Duration::from_secs(300)))
            .timeout_per_write(Some(Duration::from_secs(300)))
            .user_agent(concat!("trove/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls_config(&base, tls)?)
            .build()
            .new_agent();
        Ok(Client { base, agent, authorization })
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
        let response = result.map_err(|e| self.transport_error(endpoint, e))?;
        self.reply(endpoint, response)
    }

    /// The error for a request that got no answer.
    fn transport_error(&self, what: &str, e: ureq::Error) -> Error {
        let unreachable = match &e {
            ureq::Error::Io(io) => {
                matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
                )
            }
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => true,
            _ => false,
        };
        let tls = match &e {
            ureq::Error::Rustls(_) | ureq::Error::Tls(_) | ureq::Error::Pem(_) => true,
            ureq::Error::Io(io) => io.to_string().contains("certificate"),
            _ => false,
        };
        if tls {
            self.fail(format!(
                "{what}: the TLS connection failed: {e}; for a server whose certificate a private CA \
                 signed, set MLFLOW_TRACKING_SERVER_CERT_PATH to the CA's PEM file"
            ))
        } else if unreachable {
            self.fail(format!("{what}: cannot connect ({e}); is the MLflow server running there?"))
        } else {
            self.fail(format!("{what}: {e}"))
        }
    }

    /// An answer's status and JSON body.
    fn reply(&self, endpoint: &str, mut response: ureq::http::Response<ureq::Body>) -> Result<Reply> {
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
    /// POST `body` to `endpoint`; an error unless the server answers 200.
    pub fn post(&self, endpoint: &str, body: &Json) -> Result<Json> {
        self.call(endpoint, Some(body), &[])
    }

    /// GET `endpoint`; None when the server says it does not exist.
    pub fn get_if_exists(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<Option<Json>> {
        let reply = self.request(endpoint, None, query)?;
        match reply.status {
            200 => Ok(Some(reply.body)),
            404 if reply.error_code() == "RESOURCE_DOES_NOT_EXIST" => Ok(None),
            _ => Err(self.api_error(endpoint, &reply)),
        }
    }

    /// DELETE with a JSON body, as the Model Registry's alias endpoint takes it.
    pub fn delete(&self, endpoint: &str, body: &Json) -> Result<()> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        let mut req = self.agent.delete(&url).header("Content-Type", "application/json");
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let response = req
            .force_send_body()
            .send(serde_json::to_vec(body).expect("JSON serialises"))
            .map_err(|e| self.transport_error(endpoint, e))?;
        let reply = self.reply(endpoint, response)?;
        if reply.status == 200 {
            return Ok(());
        }
        Err(self.api_error(endpoint, &reply))
    }

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
                            missing_artifacts: tags
                                .into_iter()
                                .flatten()
                                .any(|t| t["key"].as_str() == Some(MISSING_TAG)),
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
    pub fn send(
        &self,
        experiment_id: &str,
        run: &RunPayload,
        objects: &dyn Fn(&ObjectId) -> Option<PathBuf>,
    ) -> Result<Sent> {
        let created = match self.try_create_run(
            experiment_id,
            &run.run_name,
            run.start_time,
            &run.user,
            &run.create_tags,
        )? {
            Ok(created) => created,
            Err(reply) => return self.refused_or_error("runs/create", &reply),
        };
        let run_id = created.run_id.clone();
        let failed = match self.finish(&created, run, objects) {
            Ok(Ok(unsent)) => return Ok(Sent::Run { run_id, unsent }),
            Ok(Err(answer)) => Ok(answer),
            Err(e) => Err(e),
        };
        // Whatever went wrong, leave no half-made run. Should deleting fail too (the server
        // is gone), the next sync finds the run RUNNING and deletes it then.
        let deleted = self.delete_run(&run_id);
        let (endpoint, reply) = failed?;
        deleted?;
        self.refused_or_error(endpoint, &reply)
    }

    /// Log the run's batches, inputs and artifacts, and close it: the artifacts that could
    /// not be sent, or the first answer that is not a success.
    fn finish(
        &self,
        created: &CreatedRun,
        run: &RunPayload,
        objects: &dyn Fn(&ObjectId) -> Option<PathBuf>,
    ) -> Result<std::result::Result<Vec<UnsentArtifact>, (&'static str, Reply)>> {
        let run_id = created.run_id.as_str();
        let mut unsent = Vec::new();
        let root = proxied_artifact_root(&created.artifact_uri);
        let mut sendable = Vec::new();
        for file in &run.files {
            let source = match &file.content {
                RunFileContent::Text(t) => ArtifactSource::Text(t),
                RunFileContent::Object(id) => match objects(id) {
                    Some(p) => ArtifactSource::File(p),
                    None => {
                        unsent.push(UnsentArtifact {
                            path: file.path.clone(),
                            reason: format!("object {id} is not in the local cache (trove pull or trove exp checkout fetches it)"),
                        });
                        continue;
                    }
                },
            };
            if root.is_none() {
                unsent.push(UnsentArtifact {
                    path: file.path.clone(),
                    reason: format!(
                        "the server does not take artifacts: the run's artifact location {:?} is not its \
                         proxy (mlflow server --serve-artifacts, without --default-artifact-root)",
                        created.artifact_uri
                    ),
                });
                continue;
            }
            sendable.push((file.path.as_str(), source));
        }
        let missing = unsent.len();
        let mut tags = run.tags.clone();
        if missing > 0 && root.is_some() {
            tags.push((MISSING_TAG.to_string(), missing.to_string()));
        }
        let with_tags = RunPayload { tags, ..run.clone() };
        for batch in batches(&with_tags) {
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
                return Ok(Err(("runs/log-batch", reply)));
            }
        }
        if let Err(answer) = self.log_data(run_id, &run.inputs)? {
            return Ok(Err(answer));
        }
        if let Some(root) = &root {
            for (path, source) in &sendable {
                let body = match source {
                    ArtifactSource::Text(t) => ArtifactBody::Bytes(t.as_bytes()),
                    ArtifactSource::File(p) => ArtifactBody::File(p),
                };
                self.upload_artifact(root, path, body)?;
            }
        }
        let reply = self.request(
            "runs/update",
            Some(&json!({ "run_id": run_id, "status": run.status, "end_time": run.end_time })),
            &[],
        )?;
        if reply.status != 200 {
            return Ok(Err(("runs/update", reply)));
        }
        Ok(Ok(unsent))
    }

    /// The data a run used, as MLflow dataset inputs (`runs/log-inputs`, MLflow 2.4+);
    /// on a server without that endpoint, as `trove.data.PATH` tags instead.
    fn log_data(
        &self,
        run_id: &str,
        inputs: &[DataInput],
    ) -> Result<std::result::Result<(), (&'static str, Reply)>> {
        for chunk in inputs.chunks(MAX_DATASETS) {
            let datasets: Vec<Json> = chunk.iter().map(DataInput::to_json).collect();
            let reply = self.request(
                "runs/log-inputs",
                Some(&json!({ "run_id": run_id, "datasets": datasets })),
                &[],
            )?;
            if reply.status == 200 {
                continue;
            }
            if reply.status == 404 || reply.error_code() == "ENDPOINT_NOT_FOUND" {
                let tags: Vec<(String, String)> =
                    inputs.iter().map(|d| (d.tag_key(), d.hash.clone())).collect();
                let fallback = RunPayload::only_tags(tags);
                for batch in batches(&fallback) {
                    let reply = self.request(
                        "runs/log-batch",
                        Some(&json!({ "run_id": run_id, "tags": key_values(batch.tags) })),
                        &[],
                    )?;
                    if reply.status != 200 {
                        return Ok(Err(("runs/log-batch", reply)));
                    }
                }
                return Ok(Ok(()));
            }
            return Ok(Err(("runs/log-inputs", reply)));
        }
        Ok(Ok(()))
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

    /// The `artifact_uri` of a run (`mlflow-artifacts:/…` when the server proxies
    /// artifacts; see [`proxied_artifact_root`]).
    pub fn artifact_uri(&self, run_id: &str) -> Result<String> {
        let run = self.call("runs/get", None, &[("run_id", run_id)])?;
        run["run"]["info"]["artifact_uri"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.fail(format!("runs/get: run {run_id} has no artifact_uri")))
    }

    /// Upload one artifact through the server's artifact proxy (`mlflow server
    /// --serve-artifacts`, its default): `body` goes to `rel_path` (slash-separated) under
    /// `artifact_root` (from [`proxied_artifact_root`]). Uploading the same path again
    /// replaces it.
    pub fn upload_artifact(&self, artifact_root: &str, rel_path: &str, body: ArtifactBody) -> Result<()> {
        let path: Vec<String> = artifact_root
            .split('/')
            .chain(rel_path.split('/'))
            .filter(|s| !s.is_empty())
            .map(percent_encode)
            .collect();
        let url = format!("{}/api/2.0/mlflow-artifacts/artifacts/{}", self.base, path.join("/"));
        let what = format!("uploading artifact {rel_path}");
        let mut req = self.agent.put(&url).header("Content-Type", "application/octet-stream");
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let result = match body {
            ArtifactBody::Bytes(bytes) => req.send(bytes),
            ArtifactBody::File(file) => {
                let mut f = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
                let len = f.metadata().map_err(|e| Error::io(file, e))?.len();
                req.header("Content-Length", len.to_string()).send(ureq::SendBody::from_reader(&mut f))
            }
        };
        let response = result.map_err(|e| self.transport_error(&what, e))?;
        let reply = self.reply(&what, response)?;
        if reply.status != 200 {
            let mut error = self.api_error(&what, &reply);
            if matches!(reply.status, 404 | 503)
                && let Error::Remote { message, .. } = &mut error
            {
                message.push_str(" (does the server serve artifacts? start it with --serve-artifacts)");
            }
            return Err(error);
        }
        Ok(())
    }

    /// The files and folders (`path`, `is_dir`, `file_size`) in a run's artifact folder
    /// `path` ("" for the top).
    pub fn list_artifacts(&self, run_id: &str, path: &str) -> Result<Vec<Json>> {
        let listing = self.call("artifacts/list", None, &[("run_id", run_id), ("path", path)])?;
        Ok(listing["files"].as_array().cloned().unwrap_or_default())
    }

    /// Create a run in `experiment_id`, RUNNING, with `tags`; its id and artifact URI.
    pub fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time: i64,
        user: &str,
        tags: &[(String, String)],
    ) -> Result<CreatedRun> {
        match self.try_create_run(experiment_id, run_name, start_time, user, tags)? {
            Ok(run) => Ok(run),
            Err(reply) => Err(self.api_error("runs/create", &reply)),
        }
    }

    fn try_create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time: i64,
        user: &str,
        tags: &[(String, String)],
    ) -> Result<std::result::Result<CreatedRun, Reply>> {
        let created = self.request(
            "runs/create",
            Some(&json!({
                "experiment_id": experiment_id,
                "run_name": run_name,
                "start_time": start_time,
                "user_id": user,
                "tags": key_values(tags),
            })),
            &[],
        )?;
        if created.status != 200 {
            return Ok(Err(created));
        }
        let info = &created.body["run"]["info"];
        let run_id = info["run_id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.fail("runs/create: the answer names no run_id"))?
            .to_string();
        let artifact_uri = info["artifact_uri"].as_str().unwrap_or_default().to_string();
        Ok(Ok(CreatedRun { run_id, artifact_uri }))
    }

    /// Close a run with `status` (FINISHED, FAILED, KILLED) at `end_time` (ms).
    pub fn end_run(&self, run_id: &str, status: &str, end_time: i64) -> Result<()> {
        let body = json!({ "run_id": run_id, "status": status, "end_time": end_time });
        self.call("runs/update", Some(&body), &[]).map(|_| ())
    }

    /// Set one tag of a run.
    pub fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<()> {
        let body = json!({ "run_id": run_id, "key": key, "value": value });
        self.call("runs/set-tag", Some(&body), &[]).map(|_| ())
    }

    /// Remove one tag of a run.
    pub fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        self.call("runs/delete-tag", Some(&json!({ "run_id": run_id, "key": key })), &[]).map(|_| ())
    }
}

/// What an artifact upload sends.
#[derive(Debug, Clone, Copy)]
pub enum ArtifactBody<'a> {
    /// A file, streamed.
    File(&'a std::path::Path),
    Bytes(&'a [u8]),
}

/// A run just created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedRun {
    pub run_id: String,
    /// Where its artifacts go (`mlflow-artifacts:/EXP/RUN/artifacts` with the proxy).
    pub artifact_uri: String,
}

/// What became of one record sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The run made for it, finished; and the artifacts that could not go with it.
    Run { run_id: String, unsent: Vec<UnsentArtifact> },
    /// The server refused it (MLflow's message); no run is left for it.
    Refused(String),
}

/// A run found on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRun {
    pub run_id: String,
    pub status: String,
    /// Sent without some artifacts the local cache lacked then (tag `trove.artifacts.missing`).
    pub missing_artifacts: bool,
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
    /// The data the run used, sent as dataset inputs.
    pub inputs: Vec<DataInput>,
    /// The artifacts: the record's, its environment files and its package list.
    pub files: Vec<RunFile>,
}

impl RunPayload {
    fn only_tags(tags: Vec<(String, String)>) -> RunPayload {
        RunPayload {
            run_name: String::new(),
            user: String::new(),
            start_time: 0,
            end_time: 0,
            status: "FINISHED",
            create_tags: Vec::new(),
            tags,
            params: Vec::new(),
            metrics: Vec::new(),
            inputs: Vec::new(),
            files: Vec::new(),
        }
    }
}

/// One data path a run used, at its trove hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataInput {
    pub path: String,
    pub hash: String,
    /// `file` or `dir`.
    pub kind: String,
    pub size: u64,
    pub commit: String,
}

impl DataInput {
    /// An MLflow `DatasetInput`: name the path, digest the hash (cut to MLflow's 36
    /// characters), source type `trove`, source a JSON text with path, hash and commit.
    pub fn to_json(&self) -> Json {
        let source = json!({
            "path": self.path, "hash": self.hash, "kind": self.kind, "size": self.size, "commit": self.commit,
        });
        json!({
            "tags": [{ "key": "mlflow.data.context", "value": "trove" }],
            "dataset": {
                "name": self.path,
                "digest": self.hash.chars().take(MAX_DIGEST_CHARS).collect::<String>(),
                "source_type": "trove",
                "source": source.to_string(),
            },
        })
    }

    /// The tag that names the data on a server without dataset inputs: `trove.data.PATH`,
    /// with characters MLflow refuses in keys made `_`.
    pub fn tag_key(&self) -> String {
        let allowed = |c: char| c.is_alphanumeric() || "_-./: ".contains(c);
        let path: String = self.path.chars().map(|c| if allowed(c) { c } else { '_' }).collect();
        let key = format!("trove.data.{path}");
        key.chars().take(MAX_KEY_CHARS).collect()
    }
}

/// An artifact of a run: where it goes under the run's artifacts, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFile {
    pub path: String,
    pub content: RunFileContent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunFileContent {
    /// An object of the cache.
    Object(ObjectId),
    Text(String),
}

enum ArtifactSource<'a> {
    Text(&'a str),
    File(PathBuf),
}

/// An artifact not sent with its run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnsentArtifact {
    pub path: String,
    pub reason: String,
}

/// Where a record's environment files go among its run's artifacts.
pub const ENV_DIR: &str = "trove/env";
/// The run artifact that lists the record's Python packages, one `name==version` a line
/// (as `pip freeze` prints them: `pip install -r` takes it).
pub const PACKAGES_FILE: &str = "trove/packages.txt";

/// A command line as a shell would take it back: arguments with spaces or quotes quoted.
pub fn command_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain =
                !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain { a.clone() } else { format!("'{}'", a.replace('\'', "'\\''")) }
        })
        .collect::<Vec<_>>()
        .join(" ")
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
    if let Some(run) = record.run.as_ref().filter(|r| !r.argv.is_empty()) {
        let line: String = command_line(&run.argv).chars().take(MAX_TAG_VALUE_CHARS).collect();
        create_tags.push(("trove.command".to_string(), line.clone()));
        create_tags.push(("mlflow.source.name".to_string(), line));
        create_tags.push(("mlflow.source.type".to_string(), "LOCAL".to_string()));
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
        let entry = |value: f64, step: u64, time: Option<i64>| MetricEntry {
            key: key.clone(),
            value,
            timestamp: time.unwrap_or(start_time),
            step: i64::try_from(step).unwrap_or(i64::MAX),
        };
        match metric {
            Metric::Series(_) => {
                let points = series.get(key).map_or(&[][..], Vec::as_slice);
                metrics.extend(points.iter().map(|p| entry(p.value, p.step, p.time)));
            }
            Metric::Value(Value::Number(n)) => metrics.push(entry(*n, 0, None)),
            Metric::Value(Value::Bool(b)) => metrics.push(entry(if *b { 1.0 } else { 0.0 }, 0, None)),
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
        inputs: record
            .data
            .iter()
            .map(|d| DataInput {
                path: d.path.clone(),
                hash: d.hash.to_hex(),
                kind: d.kind.as_str().to_string(),
                size: d.size,
                commit: record.commit.clone(),
            })
            .collect(),
        files: run_files(record),
    })
}

/// A record's artifacts at their paths, its environment files under `trove/env/`, its
/// package list as `trove/packages.txt`.
pub fn run_files(record: &Record) -> Vec<RunFile> {
    let mut files: Vec<RunFile> = record
        .artifacts
        .iter()
        .map(|a| RunFile { path: a.path.clone(), content: RunFileContent::Object(a.hash) })
        .collect();
    for (name, text) in &record.env.files {
        files
            .push(RunFile { path: format!("{ENV_DIR}/{name}"), content: RunFileContent::Text(text.clone()) });
    }
    if !record.env.packages.is_empty() {
        let mut text = record.env.packages.join("\n");
        text.push('\n');
        files.push(RunFile { path: PACKAGES_FILE.to_string(), content: RunFileContent::Text(text) });
    }
    files
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
    /// Runs sent before without artifacts the cache lacked, given them now.
    pub completed: Vec<SyncedRun>,
    /// Artifacts not sent (not in the local cache, or the server takes none), and why.
    pub unsent: Vec<UnsentRecordArtifact>,
}

/// An artifact of a record that its run lacks.
#[derive(Debug, Clone, Serialize)]
pub struct UnsentRecordArtifact {
    pub id: String,
    pub name: String,
    pub path: String,
    pub reason: String,
}

/// What `sync` tells its caller as it goes.
pub enum Progress<'a> {
    Sent(&'a SyncedRun),
    Already(&'a SyncedRun),
    /// A run sent before without some artifacts got them now.
    Completed(&'a SyncedRun),
    Refused(&'a RefusedRecord),
}

/// Send `records` that the server lacks to the experiment `experiment` (created when
/// missing). A record the server refuses is reported and skipped; the rest are sent.
/// `on_record` hears about each record as it is done.
pub fn sync(
    client: &Client,
    git: &git2::Repository,
    cache: &crate::cache::Cache,
    experiment: &str,
    records: &[Record],
    on_record: &mut dyn FnMut(Progress),
) -> Result<SyncReport> {
    let objects = |id: &ObjectId| cache.has_object(id).then(|| cache.object_path(id));
    let in_record = |record: &Record, e: Error| match e {
        Error::Remote { remote, kind, message } => Error::Remote {
            remote,
            kind,
            message: format!("record {} ({}): {message}", record.short_id(), record.name),
        },
        e => e,
    };
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
        completed: Vec::new(),
        unsent: Vec::new(),
    };
    let mut seen = BTreeSet::new();
    for record in records.iter().filter(|r| seen.insert(r.id.as_str())) {
        let found = existing.get(&record.id).map_or(&[][..], Vec::as_slice);
        if let Some(done) = found.iter().find(|r| r.is_complete()) {
            let run =
                SyncedRun { id: record.id.clone(), name: record.name.clone(), run_id: done.run_id.clone() };
            let all_here = record.artifacts.iter().all(|a| cache.has_object(&a.hash));
            if done.missing_artifacts && all_here {
                send_artifacts(client, &done.run_id, record, &objects).map_err(|e| in_record(record, e))?;
                on_record(Progress::Completed(&run));
                report.completed.push(run);
            } else {
                on_record(Progress::Already(&run));
                report.already.push(run);
            }
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
        let sent = client.send(&experiment_id, &run, &objects).map_err(|e| in_record(record, e))?;
        match sent {
            Sent::Run { run_id, unsent } => {
                report.unsent.extend(unsent.into_iter().map(|u| UnsentRecordArtifact {
                    id: record.id.clone(),
                    name: record.name.clone(),
                    path: u.path,
                    reason: u.reason,
                }));
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

/// Send a finished run the record's artifacts it was sent without, then remove its
/// `trove.artifacts.missing` tag.
fn send_artifacts(
    client: &Client,
    run_id: &str,
    record: &Record,
    objects: &dyn Fn(&ObjectId) -> Option<PathBuf>,
) -> Result<()> {
    let uri = client.artifact_uri(run_id)?;
    let root = proxied_artifact_root(&uri).ok_or_else(|| {
        client.fail(format!("run {run_id}: artifact location {uri:?} is not the server's proxy"))
    })?;
    for a in &record.artifacts {
        let path = objects(&a.hash)
            .ok_or_else(|| Error::exp(&record.id, format!("object {} is missing", a.hash)))?;
        client.upload_artifact(&root, &a.path, ArtifactBody::File(&path))?;
    }
    client.delete_tag(run_id, MISSING_TAG)
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

/// The TLS settings: the webpki roots, or only the CAs in `tls.ca_file`, or no check.
fn tls_config(base: &str, tls: &Tls) -> Result<ureq::tls::TlsConfig> {
    let roots = crate::tls::root_certs(tls.ca_file.as_deref()).map_err(|m| {
        let path = tls.ca_file.as_ref().expect("only a CA file can be wrong").display();
        Error::remote(
            base,
            crate::error::RemoteFailure::HostKey,
            format!("CA file {path} (MLFLOW_TRACKING_SERVER_CERT_PATH): {m}"),
        )
    })?;
    Ok(ureq::tls::TlsConfig::builder().root_certs(roots).disable_verification(tls.insecure).build())
}

/// `s` for a URL path segment: all but unreserved characters percent-encoded.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path under the server's artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/`)
/// of a run's `artifact_uri`: `1/RUN/artifacts` for `mlflow-artifacts:/1/RUN/artifacts`
/// (or `mlflow-artifacts://host:port/1/…`). None for a location the server does not
/// proxy (a local path, `s3://…`: the server was started with `--no-serve-artifacts` or
/// `--default-artifact-root`).
pub fn proxied_artifact_root(artifact_uri: &str) -> Option<String> {
    let rest = artifact_uri.strip_prefix("mlflow-artifacts:")?;
    let path = match rest.strip_prefix("//") {
        Some(authority_and_path) => &authority_and_path[authority_and_path.find('/')?..],
        None => rest,
    };
    let path = path.trim_matches('/');
    (!path.is_empty()).then(|| path.to_string())
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
        series.insert(
            "loss".to_string(),
            vec![Point::new(0, 1.0), Point::new(5, 0.5), Point { step: 10, value: 0.2, time: Some(42) }],
        );
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
        // A point's own time when it has one, else the run's start.
        let times: Vec<i64> = run.metrics.iter().map(|m| m.timestamp).collect();
        assert_eq!(times, [start, start, start, start, 42]);
        let create: BTreeMap<&str, &str> =
            run.create_tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(create["trove.command"], "python train.py");
        assert_eq!(create["mlflow.source.name"], "python train.py");
    }

    #[test]
    fn data_artifacts_and_commands() {
        let mut r = record();
        r.data.push(crate::exp::record::DataRef {
            path: "data/images@v1".into(),
            kind: crate::pointer::Kind::Dir,
            hash: ObjectId::of_bytes(b"x"),
            size: 3,
        });
        r.env.files.insert("requirements.txt".into(), "torch==2.0\n".into());
        r.env.packages = vec!["foo==1.2".into(), "bar==3".into()];
        let run = payload(&r, &BTreeMap::new()).unwrap();
        let input = run.inputs[0].to_json();
        assert_eq!(input["dataset"]["name"], "data/images@v1");
        assert_eq!(input["dataset"]["digest"].as_str().unwrap().len(), MAX_DIGEST_CHARS);
        let source: Json = serde_json::from_str(input["dataset"]["source"].as_str().unwrap()).unwrap();
        assert_eq!(source["hash"], ObjectId::of_bytes(b"x").to_hex());
        assert_eq!(source["commit"], "a".repeat(40));
        assert_eq!(run.inputs[0].tag_key(), "trove.data.data/images_v1");
        let paths: Vec<&str> = run.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["trove/env/requirements.txt", "trove/packages.txt"]);
        assert_eq!(run.files[1].content, RunFileContent::Text("foo==1.2\nbar==3\n".into()));
        let argv: Vec<String> = ["python", "train.py", "--name", "my run", "it's"].map(String::from).to_vec();
        assert_eq!(command_line(&argv), r#"python train.py --name 'my run' 'it'\''s'"#);
    }

    #[test]
    fn artifact_roots() {
        assert_eq!(
            proxied_artifact_root("mlflow-artifacts:/1/abc/artifacts").as_deref(),
            Some("1/abc/artifacts")
        );
        assert_eq!(
            proxied_artifact_root("mlflow-artifacts://host:5000/1/abc/artifacts").as_deref(),
            Some("1/abc/artifacts")
        );
        assert_eq!(proxied_artifact_root("/tmp/mlruns/1/abc/artifacts"), None);
        assert_eq!(proxied_artifact_root("s3://b/1/abc/artifacts"), None);
        assert_eq!(percent_encode("a b%/ü"), "a%20b%25%2F%C3%BC");
    }

    #[test]
    fn batches_stay_within_mlflow_limits() {
        let mut series = BTreeMap::new();
        series.insert("loss".to_string(), (0..2500).map(|i| Point::new(i, 1.0 / (i + 1) as f64)).collect());
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
        let c = Client::new("https://mlflow.example.com/", Auth::None).unwrap();
        assert_eq!(c.uri(), "https://mlflow.example.com");
        assert!(matches!(Client::new("databricks", Auth::None), Err(Error::Usage(_))));
        let Err(Error::Usage(m)) = Client::new("ftp://ann:secret@h", Auth::None) else { panic!("refused") };
        assert!(m.contains("not an MLflow tracking server URI") && !m.contains("secret"), "{m}");
        let c = Client::new("https://ann:secret@h", Auth::None).unwrap();
        assert_eq!((c.uri(), c.authorization.as_deref()), ("https://h", Some("Basic YW5uOnNlY3JldA==")));
        let bad_ca = Tls { ca_file: Some("/no/such/ca.pem".into()), insecure: false };
        let err = Client::with_tls("https://h", Auth::None, &bad_ca).err().unwrap().to_string();
        assert!(err.contains("/no/such/ca.pem") && err.contains("MLFLOW_TRACKING_SERVER_CERT_PATH"), "{err}");
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

    /// A server on 127.0.0.1 that reads one request until `done` says it is whole, answers
    /// it with `status` and the JSON `body`, and hands back the request's text.
    fn one_request_server(
        done: fn(&[u8]) -> bool,
        status: &'static str,
        body: &'static str,
    ) -> (u16, std::thread::JoinHandle<String>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !done(&request) {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "the request ended early");
                request.extend_from_slice(&buf[..n]);
            }
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(body.as_bytes()).unwrap();
            String::from_utf8(request).unwrap()
        });
        (port, server)
    }

    #[test]
    fn credentials_are_sent_and_refusals_explained() {
        let (port, server) = one_request_server(
            |r| r.windows(4).any(|w| w == b"\r\n\r\n"),
            "401 Unauthorized",
            r#"{"error_code": "UNAUTHENTICATED", "message": "You are not authenticated."}"#,
        );
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
    fn artifacts_stream_with_their_length_and_credentials() {
        let (port, server) =
            one_request_server(|r| String::from_utf8_lossy(r).contains("weights v1"), "200 OK", "{}");
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("model.bin");
        std::fs::write(&file, "weights v1").unwrap();
        let c = Client::new(&format!("http://127.0.0.1:{port}/prefix"), Auth::Bearer("tok".into())).unwrap();
        c.upload_artifact("1/abc/artifacts", "models/my model.bin", ArtifactBody::File(&file)).unwrap();
        let request = server.join().unwrap();
        assert!(
            request.starts_with(
                "PUT /prefix/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/models/my%20model.bin "
            ),
            "{request}"
        );
        let lower = request.to_ascii_lowercase();
        assert!(lower.contains("content-length: 10\r\n") && !lower.contains("chunked"), "{request}");
        assert!(lower.contains("authorization: bearer tok"), "{request}");
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
