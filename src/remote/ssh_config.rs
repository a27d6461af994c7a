//! The few settings trove takes from `~/.ssh/config`: `HostName`, `User`, `Port` and
//! `IdentityFile`, from the `Host` blocks that match the host named in a remote's URL.
//!
//! As in OpenSSH, the first value found for a key wins (every `IdentityFile` is kept, in
//! order), patterns may use `*`, `?` and a leading `!`, and keywords are case-insensitive.
//! `Match` blocks are skipped (except `Match all`); `Include` is not followed.

use std::path::{Path, PathBuf};

/// What `~/.ssh/config` says about one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    pub host_name: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// In the order given, `~` and `%d` `%h` `%u` `%r` `%%` not yet expanded.
    pub identity_files: Vec<String>,
}

impl HostConfig {
    /// The `IdentityFile` paths with `~` and the `%` tokens expanded.
    pub fn identity_paths(
        &self,
        home: Option<&Path>,
        host: &str,
        remote_user: &str,
        local_user: &str,
    ) -> Vec<PathBuf> {
        self.identity_files.iter().map(|f| expand_path(f, home, host, remote_user, local_user)).collect()
    }
}

/// Read `<home>/.ssh/config` for `host`; an absent or unreadable file says nothing.
pub fn load(home: Option<&Path>, host: &str) -> HostConfig {
    match home.map(|h| std::fs::read_to_string(h.join(".ssh").join("config"))) {
        Some(Ok(text)) => parse(&text, host),
        _ => HostConfig::default(),
    }
}

/// The settings `text` (an ssh config file) gives `host`.
pub fn parse(text: &str, host: &str) -> HostConfig {
    let host = host.to_ascii_lowercase();
    let mut out = HostConfig::default();
    // Lines before the first Host or Match apply to every host.
    let mut active = true;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, rest) = split_keyword(line);
        let args = split_args(rest);
        match keyword.to_ascii_lowercase().as_str() {
            "host" => active = host_matches(&host, &args),
            "match" => active = args.len() == 1 && args[0].eq_ignore_ascii_case("all"),
            _ if !active => {}
            "hostname" => set_once(&mut out.host_name, args.first().cloned()),
            "user" => set_once(&mut out.user, args.first().cloned()),
            "port" => set_once(&mut out.port, args.first().and_then(|p| p.parse().ok())),
            "identityfile" => {
                if let Some(f) = args.first()
                    && !f.eq_ignore_ascii_case("none")
                {
                    out.identity_files.push(f.clone());
                }
            }
            _ => {}
        }
    }
    if let Some(h) = &out.host_name {
        // `HostName %h.example.com` names the host as typed.
        out.host_name = Some(h.replace("%h", &host).replace("%%", "%"));
    }
    out
}

fn set_once<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// `Key value`, `Key=value` or `Key = value`.
fn split_keyword(line: &str) -> (&str, &str) {
    let end = line.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(line.len());
    let rest = line[end..].trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
    (&line[..end], rest)
}

/// Whitespace-separated arguments; double quotes group words.
fn split_args(rest: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in rest.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    args.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        args.push(cur);
    }
    args
}

/// A `Host` line applies when a pattern matches and no negated pattern does.
fn host_matches(host: &str, patterns: &[String]) -> bool {
    let mut matched = false;
    for p in patterns {
        let p = p.to_ascii_lowercase();
        match p.strip_prefix('!') {
            Some(neg) if glob(neg, host) => return false,
            Some(_) => {}
            None => matched |= glob(&p, host),
        }
    }
    matched
}

/// `*` matches any run of characters, `?` exactly one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    crate::wildcard::matches(&t, &p, '*', '?')
}

/// Expand a leading `~` and the tokens `%d` (home), `%h` (host), `%r` (remote user),
/// `%u` (local user) and `%%`.
pub fn expand_path(
    raw: &str,
    home: Option<&Path>,
    host: &str,
    remote_user: &str,
    local_user: &str,
) -> PathBuf {
    let home_str = home.map(|h| h.to_string_lossy().into_owned());
    let mut s = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            s.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => s.push_str(home_str.as_deref().unwrap_or("~")),
            Some('h') => s.push_str(host),
            Some('r') => s.push_str(remote_user),
            Some('u') => s.push_str(local_user),
            Some('%') => s.push('%'),
            Some(other) => {
                s.push('%');
                s.push(other);
            }
            None => s.push('%'),
        }
    }
    match (home, s.as_str()) {
        (Some(h), "~") => h.to_path_buf(),
        (Some(h), _) if s.starts_with("~/") => h.join(&s[2..]),
        _ => PathBuf::from(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
# global defaults come first
IdentityFile ~/.ssh/global_key

Host data data.example.com
    HostName data.example.com
    User ann
    Port 2222
    IdentityFile ~/.ssh/data_key

Host *.example.com !secret.example.com
  User=bob
  Port = 2200
  IdentityFile \"/keys/with space\"

Host db?
    HostName %h.internal
    User carol

Match host other
    User mallory

Host *
    User fallback
    Port 22
    IdentityFile %d/.ssh/id_%u
";

    #[test]
    fn first_value_wins_across_blocks() {
        let c = parse(CONFIG, "data");
        assert_eq!(c.host_name.as_deref(), Some("data.example.com"));
        assert_eq!(c.user.as_deref(), Some("ann"));
        assert_eq!(c.port, Some(2222));
        assert_eq!(c.identity_files, ["~/.ssh/global_key", "~/.ssh/data_key", "%d/.ssh/id_%u"]);
    }

    #[test]
    fn wildcards_and_negation() {
        let c = parse(CONFIG, "web.example.com");
        assert_eq!(c.host_name, None);
        assert_eq!(c.user.as_deref(), Some("bob"));
        assert_eq!(c.port, Some(2200));
        assert_eq!(c.identity_files[1], "/keys/with space");

        let c = parse(CONFIG, "secret.example.com");
        assert_eq!(c.user.as_deref(), Some("fallback"));
        assert_eq!(c.port, Some(22));

        let c = parse(CONFIG, "DB1");
        assert_eq!(c.host_name.as_deref(), Some("db1.internal"));
        assert_eq!(c.user.as_deref(), Some("carol"));
        assert_eq!(parse(CONFIG, "db12").user.as_deref(), Some("fallback"));
    }

    #[test]
    fn match_blocks_are_skipped() {
        assert_eq!(parse(CONFIG, "other").user.as_deref(), Some("fallback"));
        assert_eq!(parse("Match all\nUser x\n", "h").user.as_deref(), Some("x"));
    }

    #[test]
    fn empty_and_unmatched() {
        assert_eq!(parse("", "h"), HostConfig::default());
        assert_eq!(parse("Host a\nUser u\n", "b"), HostConfig::default());
        assert_eq!(parse("Host a\nPort nope\n", "a").port, None);
        assert_eq!(parse("Host a\nIdentityFile none\n", "a").identity_files, Vec::<String>::new());
    }

    #[test]
    fn globbing() {
        assert!(glob("*", ""));
        assert!(glob("*.com", "a.b.com"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(glob("h?st", "host"));
        assert!(!glob("h?st", "hst"));
        assert!(glob("**x", "x"));
    }

    #[test]
    fn expands_home_and_tokens() {
        let home = Path::new("/home/ann");
        let c = parse(CONFIG, "data");
        assert_eq!(
            c.identity_paths(Some(home), "data.example.com", "ann", "annl"),
            [
                PathBuf::from("/home/ann/.ssh/global_key"),
                PathBuf::from("/home/ann/.ssh/data_key"),
                PathBuf::from("/home/ann/.ssh/id_annl"),
            ]
        );
        assert_eq!(expand_path("~", Some(home), "h", "r", "u"), PathBuf::from("/home/ann"));
        assert_eq!(expand_path("/k/%h-%r-%%", Some(home), "h", "r", "u"), PathBuf::from("/k/h-r-%"));
        assert_eq!(expand_path("~/k", None, "h", "r", "u"), PathBuf::from("~/k"));
    }

    #[test]
    fn loads_from_home() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(Some(dir.path()), "x"), HostConfig::default());
        std::fs::create_dir(dir.path().join(".ssh")).unwrap();
        std::fs::write(dir.path().join(".ssh/config"), "Host x\n  Port 2022\n").unwrap();
        assert_eq!(load(Some(dir.path()), "x").port, Some(2022));
        assert_eq!(load(None, "x"), HostConfig::default());
    }
}
