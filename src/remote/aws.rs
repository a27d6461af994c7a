//! Where an S3 remote's credentials and region come from, in the order the AWS tools use:
//! the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`),
//! then the shared files (`~/.aws/credentials` and `~/.aws/config`, or the files
//! `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE` name) under the remote's `profile`
//! setting, `AWS_PROFILE` or `default`, then the remote's settings in config.local.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// An access key pair, with a session token for temporary credentials. Never printed.
#[derive(Clone)]
pub struct Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// Where they came from, for error messages (never the values).
    pub source: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("access_key_id", &self.access_key_id)
            .field("source", &self.source)
            .finish()
    }
}

/// The settings of one S3 remote that say where its credentials are.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The remote's `profile` setting.
    pub profile: Option<String>,
    /// `access_key_id`, `secret_access_key`, `session_token` from the remote's settings
    /// (the secret ones from config.local only).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

fn home_file(var: &str, default: &str) -> Option<PathBuf> {
    env(var).map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(default)))
}

/// The profile whose sections are read: the remote's setting, else `AWS_PROFILE`, else `default`.
pub fn profile_name(sources: &Sources) -> String {
    sources.profile.clone().or_else(|| env("AWS_PROFILE")).unwrap_or_else(|| "default".to_string())
}

/// The keys to sign with, or None when no source has any.
pub fn keys(sources: &Sources) -> Option<Keys> {
    if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Some(Keys {
            access_key_id: id,
            secret_access_key: secret,
            session_token: env("AWS_SESSION_TOKEN"),
            source: "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY".to_string(),
        });
    }
    let profile = profile_name(sources);
    // The credentials file's section is `[NAME]`; the config file's may hold keys too.
    let files = [
        (home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"), profile.clone()),
        (home_file("AWS_CONFIG_FILE", ".aws/config"), config_section(&profile)),
    ];
    for (file, section) in files {
        let Some(file) = file else { continue };
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        let values = section_of(&text, &section);
        if let (Some(id), Some(secret)) =
            (values.get("aws_access_key_id"), values.get("aws_secret_access_key"))
        {
            return Some(Keys {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: values.get("aws_session_token").cloned(),
                source: format!("profile `{profile}` in {}", file.display()),
            });
        }
    }
    match (&sources.access_key_id, &sources.secret_access_key) {
        (Some(id), Some(secret)) => Some(Keys {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            session_token: sources.session_token.clone(),
            source: "the remote's access_key_id / secret_access_key settings".to_string(),
        }),
        _ => None,
    }
}

/// The region named by `AWS_REGION`, `AWS_DEFAULT_REGION` or the profile's `region` in
/// the config file, when any does.
pub fn region(sources: &Sources) -> Option<String> {
    if let Some(r) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
        return Some(r);
    }
    let text = std::fs::read_to_string(home_file("AWS_CONFIG_FILE", ".aws/config")?).ok()?;
    section_of(&text, &config_section(&profile_name(sources))).get("region").cloned()
}

/// Profile `profile`'s section in ~/.aws/config: `[profile NAME]`, `[default]` for the default.
fn config_section(profile: &str) -> String {
    if profile == "default" { profile.to_string() } else { format!("profile {profile}") }
}

/// The `key = value` lines of section `[name]` of an INI file such as ~/.aws/credentials
/// (keys lower-cased; `#` and `;` start comments).
fn section_of(text: &str, name: &str) -> HashMap<String, String> {
    let mut values = HashMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = header.split_whitespace().collect::<Vec<_>>().join(" ") == name;
            continue;
        }
        if inside && let Some((k, v)) = line.split_once('=') {
            values.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_section_only() {
        let text = "[default]\naws_access_key_id = A\n# c\n[profile  lab]\nAWS_ACCESS_KEY_ID=B\nregion = eu-west-1\n[other]\nx=1\n";
        assert_eq!(section_of(text, "default").get("aws_access_key_id").unwrap(), "A");
        let lab = section_of(text, "profile lab");
        assert_eq!(lab.get("aws_access_key_id").unwrap(), "B");
        assert_eq!(lab.get("region").unwrap(), "eu-west-1");
        assert!(!lab.contains_key("x"));
        assert!(section_of(text, "missing").is_empty());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let k = Keys {
            access_key_id: "id".into(),
            secret_access_key: "very-secret".into(),
            session_token: Some("tok".into()),
            source: "test".into(),
        };
        let shown = format!("{k:?}");
        assert!(!shown.contains("very-secret") && !shown.contains("tok"), "{shown}");
    }
}
