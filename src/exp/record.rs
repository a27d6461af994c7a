//! The experiment record: its fields, its id, and redaction of secrets.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::manifest::check_relative_path;
use crate::redact;

/// A param, metric or tag value as users write them: a number, a string or a boolean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Number(f64),
    Text(String),
}

impl Value {
    /// `K=V` values from the command line: `true`/`false`, numbers, else text.
    pub fn parse_cli(s: &str) -> Value {
        match s {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => s
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map_or_else(|| Value::Text(s.into()), Value::Number),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::Text(s) => f.write_str(s),
        }
    }
}

/// A metric: one value, or a series of (step, value) points kept in a separate blob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Metric {
    Series(SeriesRef),
    Value(Value),
}

impl Metric {
    /// The value to show and compare: the value itself, or a series' last point.
    pub fn value(&self) -> Option<Value> {
        match self {
            Metric::Value(v) => Some(v.clone()),
            Metric::Series(s) => s.last.map(Value::Number),
        }
    }
}

/// Where a metric series lives in the records tree, and a summary of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesRef {
    /// Path of the series blob in the records tree (`series/<id>/<key>.json`).
    pub series: String,
    /// Number of points.
    pub points: u64,
    /// The value at the last step.
    pub last: Option<f64>,
}

/// One point of a metric series: its step, value and, when known, the time it was
/// measured. Stored as `[step, value]` or `[step, value, time]` (older series have no
/// times).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub step: u64,
    pub value: f64,
    /// Milliseconds since the epoch.
    pub time: Option<i64>,
}

impl Point {
    pub fn new(step: u64, value: f64) -> Point {
        Point { step, value, time: None }
    }
}

impl Serialize for Point {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(if self.time.is_some() { 3 } else { 2 })?;
        t.serialize_element(&self.step)?;
        t.serialize_element(&self.value)?;
        if let Some(time) = self.time {
            t.serialize_element(&time)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Point {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Point, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Point;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("[step, value] or [step, value, time]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Point, A::Error> {
                use serde::de::Error as _;
                let step = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let value = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(1, &self))?;
                let time = seq.next_element::<Option<i64>>()?.flatten();
                if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::invalid_length(4, &self));
                }
                Ok(Point { step, value, time })
            }
        }
        d.deserialize_seq(Visit)
    }
}

/// A tracked item of the work tree at the record's commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRef {
    /// The data path, relative to the top of the repository.
    pub path: String,
    pub kind: crate::pointer::Kind,
    pub hash: crate::hash::ObjectId,
    pub size: u64,
}

/// A file the run produced, stored in the cache as an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Relative to the top of the repository.
    pub path: String,
    pub hash: crate::hash::ObjectId,
    pub size: u64,
}

/// The environment: the content of environment files and interpreter versions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// File name (relative to the top) -> its content.
    pub files: BTreeMap<String, String>,
    /// Interpreter -> its `--version` line.
    pub interpreters: BTreeMap<String, String>,
    /// The Python packages installed for the run's interpreter, `name==version`, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
}

/// What `trove exp run` knows about the command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub argv: Vec<String>,
    /// None when it was killed by a signal.
    pub exit_code: Option<i32>,
    pub duration_secs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Finished,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Finished => "finished",
            Status::Failed => "failed",
        }
    }
}

pub const RECORD_VERSION: u32 = 1;

/// One experiment record: `runs/<id>.json` under `refs/trove/exps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    pub id: String,
    pub name: String,
    /// RFC 3339, UTC, to the millisecond.
    pub created: String,
    pub user: String,
    /// Full SHA of the code commit.
    pub commit: String,
    pub branch: Option<String>,
    pub dirty: bool,
    /// With `dirty`: the changed paths, and the BLAKE3 of the diff against the commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirty_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirty_diff_hash: Option<String>,
    pub status: Status,
    pub data: Vec<DataRef>,
    pub params: BTreeMap<String, Value>,
    pub metrics: BTreeMap<String, Metric>,
    pub tags: BTreeMap<String, String>,
    pub env: Environment,
    pub artifacts: Vec<Artifact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunInfo>,
}

pub const REDACTED: &str = "[redacted]";

/// Whether `key` names a secret under `patterns`.
pub fn is_secret_key(key: &str, patterns: &[String]) -> bool {
    let k = key.to_ascii_lowercase();
    patterns.iter().any(|p| k.contains(&p.to_ascii_lowercase()))
}

impl Record {
    /// Replace secret params and tags, secret-looking lines of environment files, and
    /// secret arguments of the run's command (`--token=x`, `--token x`, `TOKEN=x`) by a marker;
    /// so too the password of any `scheme://user:password@host` URL in them.
    pub fn redact(&mut self, patterns: &[String]) {
        for v in self.params.values_mut() {
            if let Value::Text(t) = v {
                *t = redact::urls_in(t, REDACTED);
            }
        }
        for v in self.tags.values_mut() {
            *v = redact::urls_in(v, REDACTED);
        }
        if let Some(run) = &mut self.run {
            for arg in run.argv.iter_mut() {
                *arg = redact::urls_in(arg, REDACTED);
            }
        }
        for text in self.env.files.values_mut() {
            *text = redact::urls_in(text, REDACTED);
        }
        for (k, v) in self.params.iter_mut() {
            if is_secret_key(k, patterns) {
                *v = Value::Text(REDACTED.into());
            }
        }
        for (k, v) in self.tags.iter_mut() {
            if is_secret_key(k, patterns) {
                *v = REDACTED.into();
            }
        }
        if let Some(run) = &mut self.run {
            let mut hide_next = false;
            for arg in run.argv.iter_mut() {
                if std::mem::take(&mut hide_next) {
                    *arg = REDACTED.into();
                    continue;
                }
                match arg.split_once('=') {
                    Some((k, _)) if is_secret_key(k, patterns) => *arg = format!("{k}={REDACTED}"),
                    None if arg.starts_with('-') && is_secret_key(arg, patterns) => hide_next = true,
                    _ => {}
                }
            }
        }
        for text in self.env.files.values_mut() {
            if !text.lines().any(|l| is_secret_key(l.split(['=', ':']).next().unwrap_or(""), patterns)) {
                continue;
            }
            *text = text
                .lines()
                .map(|line| match line.find(['=', ':']) {
                    Some(i) if is_secret_key(&line[..i], patterns) => format!("{}{REDACTED}", &line[..=i]),
                    _ => line.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n");
        }
    }

    /// Parse and check a stored record; `name` (its path in the records tree) names it in
    /// errors. Records come from other people's clones, so every path in them must stay
    /// inside the repository.
    pub fn parse(bytes: &[u8], name: &str) -> Result<Record> {
        let err = |message: String| Error::exp(name, message);
        let r: Record = serde_json::from_slice(bytes).map_err(|e| err(format!("not a valid record: {e}")))?;
        if r.version != RECORD_VERSION {
            return Err(err(format!(
                "unknown record version {} (this trove reads version {RECORD_VERSION}; upgrade trove)",
                r.version
            )));
        }
        if r.id.len() != 26 || !looks_like_id(&r.id) {
            return Err(err(format!("`id` {:?} is not a record id", r.id)));
        }
        if !matches!(r.commit.len(), 40 | 64) || !r.commit.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err(format!("`commit` {:?} is not a full commit id", r.commit)));
        }
        let paths = r
            .data
            .iter()
            .map(|d| ("data", d.path.as_str()))
            .chain(r.artifacts.iter().map(|a| ("artifact", a.path.as_str())))
            .chain(r.env.files.keys().map(|f| ("environment file", f.as_str())))
            .chain(r.metrics.values().filter_map(|m| match m {
                Metric::Series(s) => Some(("metric series", s.series.as_str())),
                Metric::Value(_) => None,
            }));
        for (what, path) in paths {
            check_relative_path(path).map_err(|m| err(format!("{what} path {path:?}: {m}")))?;
        }
        Ok(r)
    }

    /// The first 10 characters: enough to name a record (prefixes are accepted).
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(10)]
    }
}

/// A new id: a ULID (48-bit milliseconds, 80 random bits, Crockford base32), so ids sort
/// by creation time.
pub fn new_id() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let millis = now.as_millis() & ((1 << 48) - 1);
    let random = random_bits() & ((1u128 << 80) - 1);
    // Monotonic within a process: ids made in the same millisecond still sort in order.
    static LAST: std::sync::Mutex<u128> = std::sync::Mutex::new(0);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let mut id = (millis << 80) | random;
    if id <= *last {
        id = *last + 1;
    }
    *last = id;
    encode_base32(id)
}

fn random_bits() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let mut out = 0u128;
    for i in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos());
        h.write_u8(i);
        out = (out << 64) | u128::from(h.finish());
    }
    out
}

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

fn encode_base32(mut v: u128) -> String {
    let mut chars = [b'0'; 26];
    for c in chars.iter_mut().rev() {
        *c = CROCKFORD[(v & 31) as usize];
        v >>= 5;
    }
    String::from_utf8(chars.to_vec()).expect("ascii")
}

/// Whether `s` could be (a prefix of) a record id.
pub fn looks_like_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 26 && s.bytes().all(|b| CROCKFORD.contains(&b.to_ascii_lowercase()))
}

/// RFC 3339 UTC time with milliseconds, e.g. `2026-11-23T07:10:00.123Z`.
pub fn now_rfc3339() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format_time(now.as_secs() as i64, now.subsec_millis())
}

pub fn format_time(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_are_unique() {
        let a = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id();
        assert_eq!(a.len(), 26);
        assert!(a < b, "{a} {b}");
        assert!(looks_like_id(&a));
        assert_ne!(new_id(), new_id());
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(format_time(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(1_795_000_000, 5), "2026-11-18T11:06:40.005Z");
        assert_eq!(format_time(951_782_400, 0), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn points_with_and_without_times() {
        let old: Vec<Point> = serde_json::from_str("[[0, 1.5], [3, 0.5]]").unwrap();
        assert_eq!(old, [Point::new(0, 1.5), Point::new(3, 0.5)]);
        let timed = Point { step: 1, value: 2.0, time: Some(1_795_000_000_005) };
        let text = serde_json::to_string(&[Point::new(0, 1.0), timed]).unwrap();
        assert_eq!(text, "[[0,1.0],[1,2.0,1795000000005]]");
        assert_eq!(serde_json::from_str::<Vec<Point>>(&text).unwrap()[1], timed);
        assert!(serde_json::from_str::<Point>("[1]").is_err());
        assert!(serde_json::from_str::<Point>("[1, 2, 3, 4]").is_err());
    }

    #[test]
    fn cli_values() {
        assert_eq!(Value::parse_cli("0.01"), Value::Number(0.01));
        assert_eq!(Value::parse_cli("true"), Value::Bool(true));
        assert_eq!(Value::parse_cli("adam"), Value::Text("adam".into()));
        assert_eq!(Value::parse_cli("nan"), Value::Text("nan".into()));
    }

    #[test]
    fn secrets_are_redacted() {
        let patterns: Vec<String> = crate::config::DEFAULT_REDACT.iter().map(|s| s.to_string()).collect();
        let mut r = sample();
        r.params.insert("db_password".into(), Value::Text("hunter2".into()));
        r.params.insert("API_KEY".into(), Value::Text("k".into()));
        r.params.insert("lr".into(), Value::Number(0.1));
        r.env.files.insert(".env".into(), "TOKEN=abc\nMODE=fast".into());
        r.redact(&patterns);
        assert_eq!(r.params["db_password"], Value::Text(REDACTED.into()));
        assert_eq!(r.params["API_KEY"], Value::Text(REDACTED.into()));
        assert_eq!(r.params["lr"], Value::Number(0.1));
        assert_eq!(r.env.files[".env"], format!("TOKEN={REDACTED}\nMODE=fast"));
    }

    #[test]
    fn secret_tags_and_arguments_are_redacted() {
        let patterns: Vec<String> = crate::config::DEFAULT_REDACT.iter().map(|s| s.to_string()).collect();
        let mut r = sample();
        r.tags.insert("slack_token".into(), "xoxb".into());
        r.tags.insert("stage".into(), "dev".into());
        let argv = ["train", "--api-token", "t1", "--db-password=pw", "API_KEY=k", "--lr", "0.1"];
        r.run =
            Some(RunInfo { argv: argv.map(String::from).to_vec(), exit_code: Some(0), duration_secs: 1.0 });
        r.redact(&patterns);
        assert_eq!(r.tags["slack_token"], REDACTED);
        assert_eq!(r.tags["stage"], "dev");
        let shown = r.run.unwrap().argv.join(" ");
        assert_eq!(
            shown,
            format!("train --api-token {REDACTED} --db-password={REDACTED} API_KEY={REDACTED} --lr 0.1")
        );
    }

    #[test]
    fn url_passwords_are_redacted() {
        let mut r = sample();
        r.env.files.insert(
            "requirements.txt".into(),
            "--index-url https://ci:s3cr3t@pypi.example.com/simple\ntorch==2.0".into(),
        );
        r.params.insert("db".into(), Value::Text("postgres://app:pw@db:5432/x and ftp://anon@h".into()));
        r.redact(&[]);
        assert_eq!(
            r.env.files["requirements.txt"],
            format!("--index-url https://ci:{REDACTED}@pypi.example.com/simple\ntorch==2.0")
        );
        assert_eq!(
            r.params["db"],
            Value::Text(format!("postgres://app:{REDACTED}@db:5432/x and ftp://anon@h"))
        );
    }

    #[test]
    fn stored_records_are_checked() {
        let good = serde_json::to_vec(&sample()).unwrap();
        assert!(Record::parse(&good, "runs/x.json").is_ok());
        let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
        let cases: [(&str, serde_json::Value); 6] = [
            ("params", serde_json::json!("not a map")),
            ("id", serde_json::json!("ééééééééééééé")),
            ("commit", serde_json::json!("HEAD")),
            ("version", serde_json::json!(2)),
            (
                "data",
                serde_json::json!([{"path": "../../x", "kind": "file", "hash": "0".repeat(64), "size": 1}]),
            ),
            ("artifacts", serde_json::json!([{"path": "/etc/x", "hash": "0".repeat(64), "size": 1}])),
        ];
        for (key, bad) in cases {
            let saved = v[key].clone();
            v[key] = bad;
            let err = Record::parse(&serde_json::to_vec(&v).unwrap(), "runs/x.json").unwrap_err().to_string();
            assert!(err.contains("runs/x.json"), "{key}: {err}");
            v[key] = saved;
        }
    }

    pub fn sample() -> Record {
        Record {
            version: RECORD_VERSION,
            id: new_id(),
            name: "run".into(),
            created: now_rfc3339(),
            user: "u".into(),
            commit: "0".repeat(40),
            branch: Some("main".into()),
            dirty: false,
            dirty_paths: vec![],
            dirty_diff_hash: None,
            status: Status::Finished,
            data: vec![],
            params: BTreeMap::new(),
            metrics: BTreeMap::new(),
            tags: BTreeMap::new(),
            env: Environment::default(),
            artifacts: vec![],
            run: None,
        }
    }
}
