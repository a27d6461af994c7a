//! Settings: `.trove/config` (committed) merged with `.trove/config.local` (machine-specific).

use std::fs;
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use crate::error::{Error, Result};
use crate::link::LinkKind;

/// Environment files at the top of the repository recorded with experiments (`exp.env_files`).
pub const DEFAULT_ENV_FILES: &[&str] =
    &["requirements.txt", "pyproject.toml", "poetry.lock", "uv.lock", "environment.yml", "Cargo.lock"];

/// Interpreters whose version experiments record when they are on PATH (`exp.interpreters`).
pub const DEFAULT_INTERPRETERS: &[&str] = &["python3", "python", "rustc", "node", "go", "julia"];

/// Keys whose params, tags and arguments experiments redact (a key containing any of these,
/// any case; `exp.redact`).
pub const DEFAULT_REDACT: &[&str] = &["password", "secret", "token", "api_key", "credential"];

/// A key a user may set: its pattern (`NAME` stands for a remote's name), what it means
/// (shown on an unknown key), and its built-in default if it has one.
pub struct KnownKey {
    pub key: &'static str,
    pub about: &'static str,
    pub default: Option<Builtin>,
}

/// A built-in default value.
#[derive(Debug, Clone, Copy)]
pub enum Builtin {
    Number(u64),
    List(&'static [&'static str]),
}

impl Builtin {
    fn value(self) -> Value {
        match self {
            Builtin::Number(n) => Value::Number(n.into()),
            Builtin::List(list) => {
                Value::Sequence(list.iter().map(|s| Value::String(s.to_string())).collect())
            }
        }
    }
}

const fn key(key: &'static str, about: &'static str) -> KnownKey {
    KnownKey { key, about, default: None }
}

const fn with_default(key: &'static str, about: &'static str, default: Builtin) -> KnownKey {
    KnownKey { key, about, default: Some(default) }
}

/// The keys a user may set, with their defaults: the one place both live.
pub const KNOWN_KEYS: &[KnownKey] = &[
    key("cache.dir", "where the object cache lives (default .trove/cache)"),
    with_default(
        "cache.link",
        "how checkout places files, tried in order (default [reflink, copy])",
        Builtin::List(&["reflink", "copy"]),
    ),
    with_default(
        "core.lock_timeout",
        "seconds a writer waits for the repository lock (default 10)",
        Builtin::Number(10),
    ),
    key("core.remote", "the remote push, fetch and pull use when -r is not given"),
    key("remote.NAME.url", "where the remote is: a folder, file://, sftp://, ssh:// or s3:// URL"),
    key("remote.NAME.user", "SFTP login name (else the URL's, ~/.ssh/config's, or $USER)"),
    key("remote.NAME.port", "SFTP port (else the URL's, ~/.ssh/config's, or 22)"),
    key("remote.NAME.keyfile", "SFTP private key; its passphrase comes from TROVE_SFTP_KEY_PASSPHRASE"),
    key("remote.NAME.password", "SFTP password: config.local only (or TROVE_SFTP_PASSWORD)"),
    key("remote.NAME.known_hosts", "known_hosts file for the host key (default ~/.ssh/known_hosts)"),
    key("remote.NAME.host_key", "`strict` (default) or `accept-new`: record an unknown host key"),
    key(
        "remote.NAME.transport",
        "SFTP: `auto` (default: OpenSSH's `ssh` when installed), `openssh` or `libssh2` (built in)",
    ),
    key("remote.NAME.jobs", "parallel connections for transfers"),
    key("remote.NAME.endpoint", "S3: https://HOST[:PORT] of a store other than AWS (http:// without TLS)"),
    key("remote.NAME.region", "S3: the bucket's region (else AWS_REGION, the profile's, or us-east-1)"),
    key("remote.NAME.path_style", "S3: true puts the bucket in the path (default: true with an endpoint)"),
    key("remote.NAME.profile", "S3: the profile of ~/.aws/credentials and ~/.aws/config (else AWS_PROFILE)"),
    key("remote.NAME.ca_file", "S3: PEM file of the CAs that sign the endpoint's certificate"),
    key("remote.NAME.access_key_id", "S3: access key id, after the environment and the profile"),
    key("remote.NAME.secret_access_key", "S3: secret key: config.local only (or AWS_SECRET_ACCESS_KEY)"),
    key("remote.NAME.session_token", "S3: session token of temporary keys: config.local only"),
    key(
        "remote.NAME.multipart_threshold",
        "S3: objects larger than this many MiB go up in parts (default 64)",
    ),
    key(
        "remote.NAME.layout",
        "the layout a push gives a new remote: 2 (default: packed chunks) or 1 (a file per object)",
    ),
    with_default(
        "exp.env_files",
        "files at the top recorded with experiments (default: requirements.txt, …)",
        Builtin::List(DEFAULT_ENV_FILES),
    ),
    with_default(
        "exp.interpreters",
        "programs whose --version experiments record, if on PATH (default: python3, …)",
        Builtin::List(DEFAULT_INTERPRETERS),
    ),
    with_default(
        "exp.redact",
        "params, tags, arguments whose key contains one of these are [redacted]",
        Builtin::List(DEFAULT_REDACT),
    ),
    key(
        "exp.mlflow_experiment",
        "the MLflow experiment `exp sync` uses (default: the origin's repository name)",
    ),
    key("exp.packages", "whether experiment records list the installed Python packages (default true)"),
];

/// Settings that must never be written to the committed config.
pub const SECRET_KEYS: &[&str] = &["password", "secret_access_key", "session_token"];

#[derive(Debug, Clone)]
pub struct Config {
    shared_path: PathBuf,
    local_path: PathBuf,
    shared: Mapping,
    local: Mapping,
}

impl Config {
    pub fn load(trove_dir: &Path) -> Result<Self> {
        let shared_path = trove_dir.join("config");
        let local_path = trove_dir.join("config.local");
        Ok(Config {
            shared: read_mapping(&shared_path)?,
            local: read_mapping(&local_path)?,
            shared_path,
            local_path,
        })
    }

    /// Settings from the texts of config and config.local (as [`Config::load`] reads them
    /// from `trove_dir`).
    pub fn from_texts(trove_dir: &Path, shared: &str, local: &str) -> Result<Self> {
        let shared_path = trove_dir.join("config");
        let local_path = trove_dir.join("config.local");
        Ok(Config {
            shared: parse_mapping(&shared_path, shared)?,
            local: parse_mapping(&local_path, local)?,
            shared_path,
            local_path,
        })
    }

    /// The value in effect: config.local wins over config.
    pub fn get(&self, key: &str) -> Option<&Value> {
        lookup(&self.local, key).or_else(|| lookup(&self.shared, key))
    }

    /// The value in effect, or the built-in default for a known key.
    pub fn effective(&self, key: &str) -> Option<Value> {
        self.get(key).cloned().or_else(|| default_of(key))
    }

    /// Set `key` to `value` (parsed as YAML) in config or config.local, and write the file.
    pub fn set(&mut self, key: &str, raw_value: &str, local: bool) -> Result<()> {
        check_key(key)?;
        if !local && is_secret(key) {
            return Err(Error::Usage(format!(
                "{key} is a secret: it goes in config.local (add --local), never in the committed config"
            )));
        }
        let value: Value = serde_yaml::from_str(raw_value).unwrap_or(Value::String(raw_value.into()));
        // A bad value on the command line is a usage error (exit 2), like an unknown key.
        validate(key, &value).map_err(|message| Error::Usage(format!("{key}: {message}")))?;
        let (map, path) =
            if local { (&mut self.local, &self.local_path) } else { (&mut self.shared, &self.shared_path) };
        insert(map, key, value);
        write_mapping(path, map)
    }

    /// Remove `key` from config or config.local; returns whether it was set there.
    pub fn unset(&mut self, key: &str, local: bool) -> Result<bool> {
        check_key(key)?;
        let (map, path) =
            if local { (&mut self.local, &self.local_path) } else { (&mut self.shared, &self.shared_path) };
        let parts: Vec<&str> = key.split('.').collect();
        let (last, parents) = parts.split_last().expect("a key has a part");
        let mut cur = &mut *map;
        for p in parents {
            match cur.get_mut(*p).and_then(Value::as_mapping_mut) {
                Some(inner) => cur = inner,
                None => return Ok(false),
            }
        }
        if cur.remove(*last).is_none() {
            return Ok(false);
        }
        write_mapping(path, map)?;
        Ok(true)
    }

    pub fn link_kinds(&self) -> Result<Vec<LinkKind>> {
        let value = self.effective("cache.link").expect("cache.link has a default");
        parse_links(&value).map_err(|message| Error::Config {
            path: self.shared_path.clone(),
            message: format!("cache.link: {message}"),
        })
    }

    pub fn cache_dir(&self) -> Result<Option<PathBuf>> {
        match self.get("cache.dir") {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(PathBuf::from(s))),
            Some(other) => Err(Error::Config {
                path: self.shared_path.clone(),
                message: format!("cache.dir must be a path, not {}", show(other)),
            }),
        }
    }

    pub fn lock_timeout_secs(&self) -> Result<u64> {
        let v = self.effective("core.lock_timeout").expect("default");
        v.as_u64().ok_or_else(|| Error::Config {
            path: self.shared_path.clone(),
            message: format!("core.lock_timeout must be a whole number of seconds, not {}", show(&v)),
        })
    }
}

impl Config {
    /// Names of the configured remotes (from both files), sorted.
    pub fn remote_names(&self) -> Vec<String> {
        let mut names: Vec<String> = [&self.shared, &self.local]
            .iter()
            .filter_map(|m| m.get("remote").and_then(Value::as_mapping))
            .flat_map(|m| m.keys().filter_map(|k| k.as_str().map(String::from)))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// A string setting of a remote (`remote.NAME.KEY`), with config.local winning.
    pub fn remote_value(&self, name: &str, key: &str) -> Option<String> {
        self.get(&format!("remote.{name}.{key}")).map(show)
    }

    /// Drop a remote from both files; returns whether it existed.
    pub fn remove_remote(&mut self, name: &str) -> Result<bool> {
        let mut found = false;
        for (map, path) in [(&mut self.shared, &self.shared_path), (&mut self.local, &self.local_path)] {
            let removed =
                map.get_mut("remote").and_then(Value::as_mapping_mut).and_then(|m| m.remove(name)).is_some();
            let default_gone = lookup(map, "core.remote").and_then(Value::as_str) == Some(name);
            if default_gone && let Some(core) = map.get_mut("core").and_then(Value::as_mapping_mut) {
                core.remove("remote");
            }
            if removed || default_gone {
                write_mapping(path, map)?;
            }
            found |= removed;
        }
        Ok(found)
    }
}

/// Whether `key` holds a secret (kept in config.local only, never printed).
pub fn is_secret(key: &str) -> bool {
    SECRET_KEYS.iter().any(|s| key.ends_with(&format!(".{s}")))
}

/// A setting's value as `trove config` and `trove remote list` show it: a secret only as
/// `(set)`, a URL without a password written into it.
pub fn shown(key: &str, value: &Value) -> Value {
    if is_secret(key) {
        return Value::String("(set)".into());
    }
    match value {
        Value::String(s) if key.ends_with(".url") => Value::String(crate::redact::url(s)),
        other => other.clone(),
    }
}

/// A YAML value on one line, for messages and `trove config KEY`.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Sequence(items) => format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(", ")),
        other => serde_yaml::to_string(other).unwrap_or_default().trim_end().to_string(),
    }
}

/// The built-in default of a known key.
fn default_of(key: &str) -> Option<Value> {
    let pattern = pattern_of(key);
    KNOWN_KEYS.iter().find(|k| k.key == pattern).and_then(|k| k.default).map(Builtin::value)
}

/// The pattern a key matches in KNOWN_KEYS (`remote.origin.url` → `remote.NAME.url`).
fn pattern_of(key: &str) -> String {
    let parts: Vec<&str> = key.split('.').collect();
    match parts.as_slice() {
        ["remote", name, setting] if !name.is_empty() => format!("remote.NAME.{setting}"),
        _ => key.to_string(),
    }
}

pub fn check_key(key: &str) -> Result<()> {
    let pattern = pattern_of(key);
    if KNOWN_KEYS.iter().any(|k| k.key == pattern) {
        return Ok(());
    }
    let known: Vec<String> = KNOWN_KEYS.iter().map(|k| format!("  {}: {}", k.key, k.about)).collect();
    Err(Error::Usage(format!("unknown config key `{key}`; known keys:\n{}", known.join("\n"))))
}

fn validate(key: &str, value: &Value) -> std::result::Result<(), String> {
    match pattern_of(key).as_str() {
        "remote.NAME.port" => value
            .as_u64()
            .filter(|p| (1..=65535).contains(p))
            .map(|_| ())
            .ok_or_else(|| format!("must be a port number, not {}", show(value))),
        "remote.NAME.jobs" => value
            .as_u64()
            .filter(|j| (1..=64).contains(j))
            .map(|_| ())
            .ok_or_else(|| format!("must be a number from 1 to 64, not {}", show(value))),
        "remote.NAME.layout" => value
            .as_u64()
            .filter(|l| (1..=2).contains(l))
            .map(|_| ())
            .ok_or_else(|| format!("must be 1 or 2, not {}", show(value))),
        "remote.NAME.url" => match value.as_str() {
            Some(url) if crate::redact::url(url) != url => Err(
                "passwords do not belong in URLs; use `trove remote set NAME password … --local` or TROVE_SFTP_PASSWORD"
                    .into(),
            ),
            _ => Ok(()),
        },
        "remote.NAME.path_style" => match value {
            Value::Bool(_) => Ok(()),
            Value::String(s) if s == "true" || s == "false" => Ok(()),
            other => Err(format!("must be true or false, not {}", show(other))),
        },
        "remote.NAME.endpoint" => match value.as_str() {
            Some(e) if (e.starts_with("https://") || e.starts_with("http://")) && e.len() > 8 => {
                if crate::redact::url(e) != e { Err("credentials do not belong in URLs".into()) } else { Ok(()) }
            }
            _ => Err(format!("must be https://HOST[:PORT] (or http:// for a server without TLS), not {}", show(value))),
        },
        "remote.NAME.multipart_threshold" => value
            .as_u64()
            .filter(|m| (5..=5 * 1024 * 1024).contains(m))
            .map(|_| ())
            .ok_or_else(|| format!("must be a number of MiB from 5 (S3's smallest part), not {}", show(value))),
        "remote.NAME.transport" => match value.as_str() {
            Some("auto" | "openssh" | "libssh2") => Ok(()),
            _ => Err(format!("must be `auto`, `openssh` or `libssh2`, not {}", show(value))),
        },
        "remote.NAME.host_key" => match value.as_str() {
            Some("strict" | "accept-new") => Ok(()),
            _ => Err(format!("must be `strict` or `accept-new`, not {}", show(value))),
        },
        "cache.link" => parse_links(value).map(|_| ()),
        "core.lock_timeout" => value
            .as_u64()
            .map(|_| ())
            .ok_or_else(|| format!("must be a whole number of seconds, not {}", show(value))),
        "cache.dir" => match value {
            Value::String(_) => Ok(()),
            other => Err(format!("must be a path, not {}", show(other))),
        },
        "exp.mlflow_experiment" => match value {
            Value::String(s) if !s.trim().is_empty() => Ok(()),
            other => Err(format!("must be an experiment name, not {}", show(other))),
        },
        "exp.packages" => match value {
            Value::Bool(_) => Ok(()),
            other => Err(format!("must be true or false, not {}", show(other))),
        },
        "exp.env_files" | "exp.interpreters" | "exp.redact" => match value {
            Value::String(_) | Value::Null => Ok(()),
            Value::Sequence(items) if items.iter().all(Value::is_string) => Ok(()),
            other => Err(format!("must be a list of names such as [a, b], not {}", show(other))),
        },
        _ => Ok(()),
    }
}

fn parse_links(value: &Value) -> std::result::Result<Vec<LinkKind>, String> {
    let names: Vec<String> = match value {
        Value::String(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
        Value::Sequence(items) => items.iter().map(show).collect(),
        other => {
            return Err(format!("expected a list such as [reflink, copy], not {}", show(other)));
        }
    };
    let kinds = names.iter().map(|n| n.parse::<LinkKind>()).collect::<std::result::Result<Vec<_>, _>>()?;
    if kinds.is_empty() {
        return Err("the list is empty".into());
    }
    Ok(kinds)
}

fn lookup<'a>(map: &'a Mapping, key: &str) -> Option<&'a Value> {
    let mut parts = key.split('.');
    let mut cur = map.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_mapping()?.get(p)?;
    }
    Some(cur)
}

fn insert(map: &mut Mapping, key: &str, value: Value) {
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = map;
    for p in &parts[..parts.len() - 1] {
        let entry =
            cur.entry(Value::String((*p).to_string())).or_insert_with(|| Value::Mapping(Mapping::new()));
        if !entry.is_mapping() {
            *entry = Value::Mapping(Mapping::new());
        }
        cur = entry.as_mapping_mut().expect("just made a mapping");
    }
    cur.insert(Value::String(parts[parts.len() - 1].to_string()), value);
}

fn read_mapping(path: &Path) -> Result<Mapping> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Mapping::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    parse_mapping(path, &text)
}

/// The settings of a config file's text; `path` names it in errors.
pub fn parse_mapping(path: &Path, text: &str) -> Result<Mapping> {
    if text.trim().is_empty() {
        return Ok(Mapping::new());
    }
    if let Some(line) = crate::yaml::too_deep(text) {
        let message = format!("line {line}: {}", crate::yaml::too_deep_message());
        return Err(Error::Config { path: path.to_path_buf(), message });
    }
    match serde_yaml::from_str::<Value>(text) {
        Ok(Value::Mapping(m)) => Ok(m),
        Ok(Value::Null) => Ok(Mapping::new()),
        Ok(_) => {
            Err(Error::Config { path: path.to_path_buf(), message: "expected `key: value` settings".into() })
        }
        Err(e) => Err(Error::Config {
            path: path.to_path_buf(),
            message: format!("line {}: not valid YAML: {e}", e.location().map_or(1, |l| l.line())),
        }),
    }
}

fn write_mapping(path: &Path, map: &Mapping) -> Result<()> {
    let mut map = map.clone();
    prune_empty(&mut map);
    // Keep the file's leading comment lines (the header `trove init` wrote, or the user's).
    let mut text: String = fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    if !map.is_empty() {
        text.push_str(&serde_yaml::to_string(&map).expect("mapping serialises"));
    }
    // config.local may hold secrets: only its owner reads it.
    let mode = if path.ends_with("config.local") { 0o600 } else { 0o644 };
    crate::atomic_file::write_with_mode(path, text.as_bytes(), mode)
}

/// Drop sections left empty by removals (`core: {}`).
fn prune_empty(map: &mut Mapping) {
    for (_, value) in map.iter_mut() {
        if let Value::Mapping(inner) = value {
            prune_empty(inner);
        }
    }
    map.retain(|_, value| !matches!(value, Value::Mapping(m) if m.is_empty()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_table_and_pass_their_own_checks() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_texts(dir.path(), "", "").unwrap();
        assert_eq!(show(&config.effective("cache.link").unwrap()), "[reflink, copy]");
        assert_eq!(config.effective("core.lock_timeout").unwrap().as_u64(), Some(10));
        let env_files = config.effective("exp.env_files").unwrap();
        assert_eq!(env_files.as_sequence().unwrap().len(), DEFAULT_ENV_FILES.len());
        assert_eq!(
            show(&config.effective("exp.redact").unwrap()),
            format!("[{}]", DEFAULT_REDACT.join(", "))
        );
        assert!(config.effective("remote.origin.url").is_none());
        assert!(config.effective("core.remote").is_none());
        for k in KNOWN_KEYS {
            if let Some(default) = k.default {
                assert_eq!(validate(k.key, &default.value()), Ok(()), "{}", k.key);
            }
        }
    }

    #[test]
    fn a_set_value_wins_over_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let config =
            Config::from_texts(dir.path(), "exp:\n  redact: [pin]\n", "core:\n  lock_timeout: 3\n").unwrap();
        assert_eq!(show(&config.effective("exp.redact").unwrap()), "[pin]");
        assert_eq!(config.lock_timeout_secs().unwrap(), 3);
    }
}
