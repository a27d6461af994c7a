//! The model registry: named models with immutable versions, stages and aliases, kept in
//! annotated git tags so that git hosting shows them and `git push --tags` /
//! `git fetch --tags` share them. The names follow GTO's:
//!
//! - `NAME@vX.Y.Z`: version X.Y.Z of NAME. The tag points at the code commit; its message
//!   holds the version's record (object, path, experiment, metrics, data) as YAML.
//! - `NAME@vX.Y.Z!`: that version deprecated.
//! - `NAME@deprecated`: the whole model deprecated.
//! - `NAME#LABEL#N`: the stage or alias LABEL given to a version; `NAME#LABEL!#N`: taken
//!   away from it. N is the event's time in milliseconds followed by three digits of the
//!   process's own, so two people's events never share a tag name; the last event of a
//!   label decides where it points.
//!
//! Every tag is created once and never moved: a version cannot change, and the history
//! (who, when, why) is the list of tags. Two clones that register or promote at once
//! create different tags, which git shares without a merge; only claiming the same
//! version number twice clashes, and git refuses the second tag on push.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::exp::record::{DataRef, Value};
use crate::hash::ObjectId;
use crate::pointer::Kind;

/// The version of the YAML in the tags' messages.
pub const FORMAT: u32 = 1;
const DEPRECATED: &str = "deprecated";

/// A version number: `vMAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SemVer(pub u64, pub u64, pub u64);

impl SemVer {
    /// `1.2.3` or `v1.2.3`.
    pub fn parse(s: &str) -> Option<SemVer> {
        let digits = s.strip_prefix('v').unwrap_or(s);
        let mut parts = digits.split('.');
        let mut next = || {
            let p = parts.next()?;
            // No signs, no leading zeros (as semver), no empty parts.
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || (p.len() > 1 && p.starts_with('0')) {
                return None;
            }
            p.parse().ok()
        };
        let v = SemVer(next()?, next()?, next()?);
        parts.next().is_none().then_some(v)
    }

    pub fn bump(self, bump: Bump) -> SemVer {
        match bump {
            Bump::Major => SemVer(self.0 + 1, 0, 0),
            Bump::Minor => SemVer(self.0, self.1 + 1, 0),
            Bump::Patch => SemVer(self.0, self.1, self.2 + 1),
        }
    }
}

impl std::fmt::Display for SemVer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}.{}.{}", self.0, self.1, self.2)
    }
}

impl Serialize for SemVer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SemVer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SemVer::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a version vX.Y.Z")))
    }
}

/// Which part of the last version a new one raises when none is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Bump {
    Major,
    Minor,
    Patch,
}

/// Whether a label is a stage (`dev`, `staging`, `prod`: where a version is deployed) or
/// an alias (`champion`: a name for it, as MLflow's aliases). Both point at one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelKind {
    Stage,
    Alias,
}

/// What a version's tag message holds, besides the tagger (who, when).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    #[serde(rename = "trove-model")]
    pub format: u32,
    pub name: String,
    pub version: SemVer,
    /// Where the model is in the repository (a tracked path, or an experiment's artifact).
    pub path: String,
    pub kind: Kind,
    pub hash: ObjectId,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// Full SHA of the code commit (the tag's target too).
    pub commit: String,
    /// The experiment record that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Value>,
    /// The data it was trained on: the experiment's data, else the other tracked data at the commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<DataRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When, in milliseconds since the epoch (the tagger's time has only seconds).
    #[serde(default)]
    pub time: i64,
}

/// What a label event's tag message holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LabelRecord {
    #[serde(rename = "trove-model")]
    format: u32,
    name: String,
    version: SemVer,
    label: String,
    kind: LabelKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(default)]
    time: i64,
}

/// What a deprecation's tag message holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DeprecationRecord {
    #[serde(rename = "trove-model")]
    format: u32,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<SemVer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(default)]
    time: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Register,
    Promote,
    Demote,
    Deprecate,
}

/// One change to the registry: one tag.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub action: Action,
    /// None for the deprecation of the whole model.
    pub version: Option<SemVer>,
    pub label: Option<String>,
    pub label_kind: Option<LabelKind>,
    /// `Name <email>` of the tagger.
    pub who: String,
    /// RFC 3339, UTC.
    pub when: String,
    pub note: Option<String>,
    pub tag: String,
    /// Milliseconds since the epoch: the order of events.
    #[serde(skip)]
    order: i64,
}

/// A registered version.
#[derive(Debug, Clone, Serialize)]
pub struct Version {
    #[serde(flatten)]
    pub record: VersionRecord,
    pub tag: String,
    pub registered_by: String,
    pub registered_at: String,
    /// The stages and aliases that point at it now.
    pub labels: Vec<String>,
    pub deprecated: bool,
}

/// Where a label points now.
#[derive(Debug, Clone, Serialize)]
pub struct Label {
    pub kind: LabelKind,
    pub version: SemVer,
    /// When it was set, RFC 3339.
    pub since: String,
    pub by: String,
}

/// A model: its versions (oldest first), labels and history (oldest first).
#[derive(Debug, Clone, Serialize)]
pub struct Model {
    pub name: String,
    pub versions: Vec<Version>,
    pub labels: BTreeMap<String, Label>,
    pub deprecated: bool,
    pub history: Vec<Event>,
}

impl Version {
    /// When it was registered, in milliseconds since the epoch.
    pub fn time_ms(&self) -> i64 {
        if self.record.time > 0 {
            return self.record.time;
        }
        self.registered_at.parse::<jiff::Timestamp>().map_or(0, |t| t.as_millisecond())
    }
}

impl Model {
    /// The newest version that is not deprecated.
    pub fn latest(&self) -> Option<&Version> {
        self.versions.iter().rev().find(|v| !v.deprecated)
    }

    pub fn version(&self, v: SemVer) -> Option<&Version> {
        self.versions.iter().find(|x| x.record.version == v)
    }
}

/// A model name or label: what git accepts in a tag name and leaves `@`, `#`, `:` and
/// `!` free to separate the parts.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.ends_with('.')
        && !name.ends_with(".lock")
        && !name.contains("..");
    if !ok {
        return Err(Error::Usage(format!(
            "{what} {name:?}: use letters, digits, `-`, `_` and `.` (starting with a letter or digit, at most 100)"
        )));
    }
    Ok(())
}

/// A label must not read as a version (`NAME@LABEL` would be ambiguous) nor as the
/// deprecation marker.
fn check_label(label: &str) -> Result<()> {
    check_name("label", label)?;
    if SemVer::parse(label).is_some() || label == DEPRECATED {
        return Err(Error::Usage(format!(
            "label {label:?}: a stage or alias cannot look like a version or be `{DEPRECATED}`"
        )));
    }
    Ok(())
}

fn git_err(e: git2::Error) -> Error {
    Error::git(Path::new("refs/tags"), e)
}

/// A tag name of the registry, parsed.
#[derive(Debug, PartialEq)]
enum TagName {
    Version(String, SemVer),
    VersionDeprecated(String, SemVer),
    ModelDeprecated(String),
    Label { name: String, label: String, removed: bool, n: i64 },
}

fn parse_tag(tag: &str) -> Option<TagName> {
    if let Some((name, rest)) = tag.split_once('@') {
        if check_name("model", name).is_err() {
            return None;
        }
        if rest == DEPRECATED {
            return Some(TagName::ModelDeprecated(name.into()));
        }
        if let Some(v) = rest.strip_suffix('!') {
            return SemVer::parse(v)
                .filter(|_| v.starts_with('v'))
                .map(|v| TagName::VersionDeprecated(name.into(), v));
        }
        return SemVer::parse(rest)
            .filter(|_| rest.starts_with('v'))
            .map(|v| TagName::Version(name.into(), v));
    }
    let mut parts = tag.split('#');
    let (name, label, n) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || check_name("model", name).is_err() {
        return None;
    }
    let (label, removed) = match label.strip_suffix('!') {
        Some(l) => (l, true),
        None => (label, false),
    };
    check_label(label).ok()?;
    let n = n.parse().ok()?;
    Some(TagName::Label { name: name.into(), label: label.into(), removed, n })
}

/// The YAML after the first blank line of a tag message.
fn body<T: serde::de::DeserializeOwned>(message: &str) -> Option<T> {
    let yaml = message.split_once("\n\n").map(|(_, rest)| rest)?;
    serde_yaml::from_str(yaml).ok()
}

/// An event's place in time: its recorded milliseconds, else its tagger's second.
fn order(time_ms: i64, tagger_secs: i64) -> i64 {
    if time_ms > 0 { time_ms } else { tagger_secs * 1000 }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn who(sig: &git2::Signature) -> String {
    format!("{} <{}>", sig.name().unwrap_or("?"), sig.email().unwrap_or("?"))
}

/// RFC 3339 in UTC, to the millisecond.
fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| format!("{t:.3}")).unwrap_or_default()
}

/// Every model in the repository's tags. Tags that merely look like registry tags (or
/// were made by another tool without trove's record) are left out.
pub fn load(git: &git2::Repository) -> Result<BTreeMap<String, Model>> {
    struct Raw {
        tag: String,
        parsed: TagName,
        who: String,
        secs: i64,
        message: String,
        target: git2::Oid,
    }
    let mut raws = Vec::new();
    let names = git.tag_names(None).map_err(git_err)?;
    for tag in names.iter().flatten().flatten() {
        let Some(parsed) = parse_tag(tag) else { continue };
        let reference = match git.find_reference(&format!("refs/tags/{tag}")) {
            Ok(r) => r,
            Err(_) => continue,
        };
        // Lightweight tags carry no record, no tagger: not trove's.
        let Ok(annotated) = reference.peel_to_tag() else { continue };
        let Some(tagger) = annotated.tagger() else { continue };
        raws.push(Raw {
            tag: tag.to_string(),
            parsed,
            who: who(&tagger),
            secs: tagger.when().seconds(),
            message: String::from_utf8_lossy(annotated.message_bytes().unwrap_or(b"")).into_owned(),
            target: annotated.target_id(),
        });
    }
    let mut models: BTreeMap<String, Model> = BTreeMap::new();
    let mut deprecations = Vec::new();
    let mut label_events = Vec::new();
    for raw in raws {
        match raw.parsed {
            TagName::Version(name, v) => {
                let Some(record) = body::<VersionRecord>(&raw.message) else { continue };
                if record.name != name || record.version != v || record.commit != raw.target.to_string() {
                    continue;
                }
                let time = order(record.time, raw.secs);
                let at = rfc3339(time);
                let m = entry(&mut models, &name);
                m.history.push(Event {
                    action: Action::Register,
                    version: Some(v),
                    label: None,
                    label_kind: None,
                    who: raw.who.clone(),
                    when: at.clone(),
                    note: record.note.clone(),
                    tag: raw.tag.clone(),
                    order: time,
                });
                m.versions.push(Version {
                    record,
                    tag: raw.tag,
                    registered_by: raw.who,
                    registered_at: at,
                    labels: Vec::new(),
                    deprecated: false,
                });
            }
            TagName::VersionDeprecated(..) | TagName::ModelDeprecated(_) => {
                let (name, version) = match raw.parsed {
                    TagName::VersionDeprecated(name, v) => (name, Some(v)),
                    TagName::ModelDeprecated(name) => (name, None),
                    _ => unreachable!(),
                };
                let record = body::<DeprecationRecord>(&raw.message);
                let time = order(record.as_ref().map_or(0, |d| d.time), raw.secs);
                let note = record.and_then(|d| d.note);
                deprecations.push((name, version, raw.who, rfc3339(time), note, raw.tag, time));
            }
            TagName::Label { name, label, removed, n } => {
                // Milliseconds and three digits (older tags of other tools: a counter).
                let n = if n > 1_000_000_000_000_000 { n / 1000 } else { 0 };
                let Some(record) = body::<LabelRecord>(&raw.message) else { continue };
                if record.name != name || record.label != label {
                    continue;
                }
                let time = order(record.time, raw.secs).max(n);
                label_events.push((name, record, removed, time, raw.who, rfc3339(time), raw.tag));
            }
        }
    }
    for (name, version, who, when, note, tag, order) in deprecations {
        let Some(m) = models.get_mut(&name) else { continue };
        match version {
            Some(v) => match m.versions.iter_mut().find(|x| x.record.version == v) {
                Some(x) => x.deprecated = true,
                None => continue,
            },
            None => m.deprecated = true,
        }
        m.history.push(Event {
            action: Action::Deprecate,
            version,
            label: None,
            label_kind: None,
            who,
            when,
            note,
            tag,
            order,
        });
    }
    // Labels: in the order of their events; the last one of each label decides.
    label_events.sort_by(|a, b| (a.3, &a.6).cmp(&(b.3, &b.6)));
    for (name, record, removed, n, who, when, tag) in label_events {
        let Some(m) = models.get_mut(&name) else { continue };
        if m.version(record.version).is_none() {
            continue;
        }
        if removed {
            if m.labels.get(&record.label).is_some_and(|l| l.version == record.version) {
                m.labels.remove(&record.label);
            }
        } else {
            m.labels.insert(
                record.label.clone(),
                Label { kind: record.kind, version: record.version, since: when.clone(), by: who.clone() },
            );
        }
        m.history.push(Event {
            action: if removed { Action::Demote } else { Action::Promote },
            version: Some(record.version),
            label: Some(record.label),
            label_kind: Some(record.kind),
            who,
            when,
            note: record.note,
            tag,
            order: n,
        });
    }
    for m in models.values_mut() {
        m.versions.sort_by_key(|v| v.record.version);
        for (label, l) in &m.labels {
            if let Some(v) = m.versions.iter_mut().find(|v| v.record.version == l.version) {
                v.labels.push(label.clone());
            }
        }
        m.history.sort_by(|a, b| (a.order, &a.tag).cmp(&(b.order, &b.tag)));
    }
    Ok(models)
}

fn entry<'a>(models: &'a mut BTreeMap<String, Model>, name: &str) -> &'a mut Model {
    models.entry(name.to_string()).or_insert_with(|| Model {
        name: name.to_string(),
        versions: Vec::new(),
        labels: BTreeMap::new(),
        deprecated: false,
        history: Vec::new(),
    })
}

/// `NAME`, `NAME@vX.Y.Z`, `NAME@ALIAS` or `NAME:STAGE`, resolved to a version. `NAME`
/// alone is the newest version not deprecated.
pub fn resolve<'a>(models: &'a BTreeMap<String, Model>, spec: &str) -> Result<&'a Version> {
    let (name, selector) = match spec.find(['@', ':']) {
        Some(i) => (&spec[..i], Some(&spec[i + 1..])),
        None => (spec, None),
    };
    let model = models.get(name).ok_or_else(|| {
        let known: Vec<&str> = models.keys().map(String::as_str).collect();
        Error::Model {
            name: name.to_string(),
            message: if known.is_empty() {
                "is not registered: this repository has no models (`trove model register` adds one)".into()
            } else {
                format!("is not registered; registered models: {}", known.join(", "))
            },
        }
    })?;
    let fail = |message: String| Error::Model { name: name.to_string(), message };
    let Some(selector) = selector else {
        return model.latest().ok_or_else(|| fail("has no version that is not deprecated".into()));
    };
    if let Some(v) = SemVer::parse(selector) {
        return model.version(v).ok_or_else(|| {
            let all: Vec<String> = model.versions.iter().map(|v| v.record.version.to_string()).collect();
            fail(format!("has no version {v}; its versions: {}", all.join(", ")))
        });
    }
    match model.labels.get(selector) {
        Some(l) => Ok(model.version(l.version).expect("labels point at versions")),
        None => {
            let all: Vec<&str> = model.labels.keys().map(String::as_str).collect();
            Err(fail(if all.is_empty() {
                format!("has no stage or alias {selector:?}: none is set (`trove model promote`)")
            } else {
                format!("has no stage or alias {selector:?}; set ones: {}", all.join(", "))
            }))
        }
    }
}

/// A new version to register.
pub struct NewVersion {
    pub name: String,
    /// None: the next number after the newest (`bump`), or v0.1.0 for a new model.
    pub version: Option<SemVer>,
    pub bump: Bump,
    /// Its object, commit, experiment, metrics and data.
    pub origin: Origin,
    pub note: Option<String>,
}

fn tagger(git: &git2::Repository) -> Result<git2::Signature<'static>> {
    crate::git::signature(git, "COMMITTER", Path::new("refs/tags"))
}

/// Held while a process reads the tags and adds one. libgit2 checks that a tag name is
/// free before it takes the ref's lock file, so two processes creating the same tag at
/// once can both succeed, the second overwriting the first: trove's writers take turns
/// under this lock (in the git folder) instead.
struct RegistryLock(#[allow(dead_code)] std::fs::File);

fn lock_registry(git: &git2::Repository) -> Result<RegistryLock> {
    let path = git.path().join("trove-registry.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    file.lock().map_err(|e| Error::io(&path, e))?;
    Ok(RegistryLock(file))
}

/// Create tag `name` on `target` once; false when a tag of that name exists, or another
/// process is creating it this moment (git's lock file for the ref is there: after a
/// short wait the caller reads the tags again and sees whether it was made).
fn create_tag(git: &git2::Repository, name: &str, target: git2::Oid, message: &str) -> Result<bool> {
    let object = git.find_object(target, None).map_err(git_err)?;
    match git.tag(name, &object, &tagger(git)?, message, false) {
        Ok(_) => Ok(true),
        Err(e) if e.code() == git2::ErrorCode::Exists => Ok(false),
        Err(e)
            if e.code() == git2::ErrorCode::Locked
                || e.message().contains("failed to create locked file") =>
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
            Ok(false)
        }
        Err(e) => Err(git_err(e)),
    }
}

fn message<T: Serialize>(summary: &str, note: Option<&str>, record: &T) -> String {
    let mut m = summary.to_string();
    if let Some(n) = note.filter(|n| !n.trim().is_empty()) {
        m.push_str(": ");
        m.push_str(n.lines().next().unwrap_or(""));
    }
    m.push_str("\n\n");
    m.push_str(&serde_yaml::to_string(record).expect("a record serialises"));
    m
}

/// Register a version: one new tag. A version number taken meanwhile by another process
/// is an error when it was asked for, and the next number when it was not.
pub fn register(git: &git2::Repository, new: NewVersion) -> Result<VersionRecord> {
    check_name("model name", &new.name)?;
    let _lock = lock_registry(git)?;
    for _ in 0..100 {
        let models = load(git)?;
        let existing = models.get(&new.name);
        if existing.is_some_and(|m| m.deprecated) {
            return Err(Error::Model {
                name: new.name.clone(),
                message: "is deprecated: register it under a new name".into(),
            });
        }
        let version = match new.version {
            Some(v) => v,
            None => match existing.and_then(|m| m.versions.last()) {
                Some(last) => last.record.version.bump(new.bump),
                None => SemVer(0, 1, 0),
            },
        };
        if let Some(same) = existing.and_then(|m| m.version(version)) {
            return Err(Error::Model {
                name: new.name.clone(),
                message: format!(
                    "{version} is already registered ({}, by {}): a version never changes; pick another with --version",
                    same.record.hash, same.registered_by
                ),
            });
        }
        let record = VersionRecord {
            format: FORMAT,
            name: new.name.clone(),
            version,
            path: new.origin.path.clone(),
            kind: new.origin.kind,
            hash: new.origin.hash,
            size: new.origin.size,
            files: new.origin.files,
            commit: new.origin.commit.to_string(),
            exp: new.origin.exp.clone(),
            metrics: new.origin.metrics.clone(),
            params: new.origin.params.clone(),
            data: new.origin.data.clone(),
            note: new.note.clone(),
            time: now_ms(),
        };
        let summary = format!("trove model register {} {version}", new.name);
        let tag = format!("{}@{version}", new.name);
        if create_tag(git, &tag, new.origin.commit, &message(&summary, new.note.as_deref(), &record))? {
            return Ok(record);
        }
        if new.version.is_some() {
            continue; // reported above, on the next reading
        }
    }
    Err(Error::Model {
        name: new.name,
        message: "its tags kept changing under this process; try again".into(),
    })
}

/// Point `label` at `version` (promote), or take it away from the version it points at
/// (demote, `version` None). Returns the version concerned.
pub fn set_label(
    git: &git2::Repository,
    name: &str,
    label: &str,
    kind: LabelKind,
    version: Option<SemVer>,
    note: Option<&str>,
) -> Result<SemVer> {
    check_label(label)?;
    let _lock = lock_registry(git)?;
    let models = load(git)?;
    let fail = |message: String| Error::Model { name: name.to_string(), message };
    let model = models.get(name).ok_or_else(|| fail("is not registered".into()))?;
    let (version, removed) = match version {
        Some(v) => {
            let found = model.version(v).ok_or_else(|| fail(format!("has no version {v}")))?;
            if found.deprecated || model.deprecated {
                return Err(fail(format!("{v} is deprecated: it cannot be promoted")));
            }
            if let Some(l) = model.labels.get(label) {
                if l.version == v {
                    return Err(fail(format!("{label} is already {v}")));
                }
                if l.kind != kind {
                    return Err(fail(format!(
                        "{label} is an {} of it, not a {}",
                        kind_word(l.kind),
                        kind_word(kind)
                    )));
                }
            }
            (v, false)
        }
        None => match model.labels.get(label) {
            Some(l) => (l.version, true),
            None => return Err(fail(format!("{label} is not set"))),
        },
    };
    let target =
        git2::Oid::from_str(&model.version(version).expect("checked").record.commit).map_err(git_err)?;
    let record = LabelRecord {
        format: FORMAT,
        name: name.to_string(),
        version,
        label: label.to_string(),
        kind,
        note: note.map(str::to_string),
        time: now_ms(),
    };
    let verb = if removed { "demote" } else { "promote" };
    let summary = format!("trove model {verb} {name} {version} {} {label}", kind_word(kind));
    let text = message(&summary, note, &record);
    // N is the time in ms with three digits of this process's own after it: two people's
    // events of one label in the same millisecond still get different tags.
    let salt = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        .wrapping_add(std::process::id().wrapping_mul(7919))
        % 1000;
    let first = record.time * 1000 + i64::from(salt);
    for n in first..first + 100 {
        let tag = format!("{name}#{label}{}#{n}", if removed { "!" } else { "" });
        if create_tag(git, &tag, target, &text)? {
            return Ok(version);
        }
    }
    Err(fail(format!("could not find a free tag name for {label}")))
}

pub fn kind_word(kind: LabelKind) -> &'static str {
    match kind {
        LabelKind::Stage => "stage",
        LabelKind::Alias => "alias",
    }
}

/// Deprecate one version, or (`version` None) the whole model.
pub fn deprecate(
    git: &git2::Repository,
    name: &str,
    version: Option<SemVer>,
    note: Option<&str>,
) -> Result<()> {
    let _lock = lock_registry(git)?;
    let models = load(git)?;
    let fail = |message: String| Error::Model { name: name.to_string(), message };
    let model = models.get(name).ok_or_else(|| fail("is not registered".into()))?;
    let (tag, target, summary) = match version {
        Some(v) => {
            let found = model.version(v).ok_or_else(|| fail(format!("has no version {v}")))?;
            if found.deprecated {
                return Err(fail(format!("{v} is already deprecated")));
            }
            (format!("{name}@{v}!"), found.record.commit.clone(), format!("trove model deprecate {name} {v}"))
        }
        None => {
            if model.deprecated {
                return Err(fail("is already deprecated".into()));
            }
            let last = model.versions.last().expect("a model has a version");
            (
                format!("{name}@{DEPRECATED}"),
                last.record.commit.clone(),
                format!("trove model deprecate {name}"),
            )
        }
    };
    let record = DeprecationRecord {
        format: FORMAT,
        name: name.to_string(),
        version,
        note: note.map(str::to_string),
        time: now_ms(),
    };
    let target = git2::Oid::from_str(&target).map_err(git_err)?;
    if !create_tag(git, &tag, target, &message(&summary, note, &record))? {
        return Err(fail("was deprecated meanwhile by another process".into()));
    }
    Ok(())
}

/// What a new version is made of, found from a tracked path or an experiment record.
pub struct Origin {
    pub path: String,
    pub kind: Kind,
    pub hash: ObjectId,
    pub size: u64,
    pub files: Option<u64>,
    pub commit: git2::Oid,
    pub exp: Option<String>,
    pub metrics: BTreeMap<String, Value>,
    pub params: BTreeMap<String, Value>,
    pub data: Vec<DataRef>,
}

impl Origin {
    pub fn pointer(&self) -> crate::pointer::Pointer {
        pointer_of(&self.path, self.kind, self.hash, self.size, self.files)
    }
}

fn final_metrics(record: &crate::exp::record::Record) -> BTreeMap<String, Value> {
    record.metrics.iter().filter_map(|(k, m)| m.value().map(|v| (k.clone(), v))).collect()
}

/// The tracked file or folder `path` as committed at HEAD. Its pointer must be committed
/// unchanged (a version names a commit that holds it). The newest clean experiment record
/// of that commit that produced or used the same object lends its metrics, params and data.
pub fn origin_of_path(repo: &crate::repo::Repo, cwd: &Path, path: &Path) -> Result<Origin> {
    let git = repo.git()?;
    let head = git
        .head()
        .and_then(|h| h.peel_to_commit())
        .map_err(|_| Error::path(&repo.root, "has no commit yet: commit the model's pointer first"))?;
    let target = crate::tracked::resolve_in_repo(repo, cwd, path)?;
    let at_head = crate::history::pointers_in_commit(&git, head.id(), None)?;
    let mut found = None;
    let mut data = Vec::new();
    for (rel, pointer) in at_head {
        let pointer_path = repo.root.join(&rel);
        let data_path = pointer_path.with_file_name(&pointer.path);
        let data_rel = crate::tracked::display_rel(&repo.root, &data_path);
        if target == data_path || target == pointer_path {
            found = Some((data_rel, pointer_path, pointer));
        } else {
            data.push(DataRef { path: data_rel, kind: pointer.kind, hash: pointer.hash, size: pointer.size });
        }
    }
    let Some((rel, pointer_path, pointer)) = found else {
        let pointer_path = crate::tracked::pointer_path_for(&target);
        return Err(Error::path(
            path,
            if pointer_path.is_file() {
                format!(
                    "its pointer is not committed: `git add {0} && git commit` first (a version names a commit)",
                    crate::tracked::display_rel(cwd, &pointer_path)
                )
            } else {
                "is not tracked by trove: `trove add` it and commit its pointer first".to_string()
            },
        ));
    };
    let now = crate::tracked::Tracked::load(&pointer_path)?;
    if now.pointer.hash != pointer.hash {
        return Err(Error::path(
            &pointer_path,
            "differs from HEAD's: commit it first (a version names a commit that holds it)",
        ));
    }
    let mut origin = Origin {
        path: rel,
        kind: pointer.kind,
        hash: pointer.hash,
        size: pointer.size,
        files: pointer.files,
        commit: head.id(),
        exp: None,
        metrics: BTreeMap::new(),
        params: BTreeMap::new(),
        data,
    };
    let head_sha = head.id().to_string();
    let records = crate::exp::store::list(&git)?;
    let made_it = records.iter().rev().find(|r| {
        r.commit == head_sha
            && !r.dirty
            && (r.artifacts.iter().any(|a| a.hash == pointer.hash)
                || r.data.iter().any(|d| d.hash == pointer.hash))
    });
    if let Some(r) = made_it {
        origin.exp = Some(r.id.clone());
        origin.metrics = final_metrics(r);
        origin.params = r.params.clone();
        origin.data = r.data.iter().filter(|d| d.hash != pointer.hash).cloned().collect();
    }
    Ok(origin)
}

/// An artifact of experiment record `query` (the one named `artifact`, or its only one),
/// with the record's commit, metrics, params and data.
pub fn origin_of_exp(git: &git2::Repository, query: &str, artifact: Option<&str>) -> Result<Origin> {
    let record = crate::exp::store::find(git, query)?;
    if record.dirty {
        return Err(Error::exp(
            &record.id,
            "was recorded on a work tree with uncommitted changes: its code is at no commit, and a version names one",
        ));
    }
    let listed = || record.artifacts.iter().map(|a| a.path.as_str()).collect::<Vec<_>>().join(", ");
    let chosen = match artifact {
        Some(want) => {
            let want = want.trim_start_matches("./");
            record.artifacts.iter().find(|a| a.path == want).ok_or_else(|| {
                Error::exp(&record.id, format!("has no artifact {want:?}; its artifacts: {}", listed()))
            })?
        }
        None => match record.artifacts.as_slice() {
            [one] => one,
            [] => {
                return Err(Error::exp(&record.id, "has no artifacts: log the model with `--artifact PATH`"));
            }
            _ => {
                return Err(Error::exp(
                    &record.id,
                    format!("has several artifacts; choose one with --artifact ({})", listed()),
                ));
            }
        },
    };
    Ok(Origin {
        path: chosen.path.clone(),
        kind: Kind::File,
        hash: chosen.hash,
        size: chosen.size,
        files: None,
        commit: git2::Oid::from_str(&record.commit).map_err(git_err)?,
        exp: Some(record.id.clone()),
        metrics: final_metrics(&record),
        params: record.params.clone(),
        data: record.data.clone(),
    })
}

/// Every version's object, as a pointer of the file name it had, for push and gc.
pub fn objects(git: &git2::Repository) -> Result<Vec<(String, crate::pointer::Pointer)>> {
    let mut out = Vec::new();
    for m in load(git)?.into_values() {
        for v in m.versions {
            out.push((v.record.path.clone(), v.record.pointer()));
        }
    }
    Ok(out)
}

/// Every version's object that this cache holds, as transfer targets: a whole push
/// sends them, so that `trove model get` finds them on the remote.
pub fn in_cache(repo: &crate::repo::Repo) -> Result<Vec<crate::tracked::Tracked>> {
    let Ok(git) = repo.git() else { return Ok(Vec::new()) };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (path, pointer) in objects(&git)? {
        if seen.insert(pointer.hash) && crate::workspace::in_cache(repo, &pointer) {
            let data_path = repo.root.join(&path);
            out.push(crate::tracked::Tracked {
                pointer_path: crate::tracked::pointer_path_for(&data_path),
                data_path,
                pointer,
            });
        }
    }
    Ok(out)
}

impl VersionRecord {
    /// The version's object as a pointer named after the file or folder it was.
    pub fn pointer(&self) -> crate::pointer::Pointer {
        pointer_of(&self.path, self.kind, self.hash, self.size, self.files)
    }

    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// A pointer to an object, named after the last part of `path`.
fn pointer_of(
    path: &str,
    kind: Kind,
    hash: ObjectId,
    size: u64,
    files: Option<u64>,
) -> crate::pointer::Pointer {
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    crate::pointer::Pointer { path: name, kind, hash, size, files, source: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_bump() {
        assert_eq!(SemVer::parse("v1.2.3"), Some(SemVer(1, 2, 3)));
        assert_eq!(SemVer::parse("0.10.0"), Some(SemVer(0, 10, 0)));
        for bad in ["1.2", "v1.2.3.4", "01.2.3", "v1.2.x", "", "v", "1..2"] {
            assert_eq!(SemVer::parse(bad), None, "{bad}");
        }
        assert_eq!(SemVer(1, 2, 3).bump(Bump::Minor).to_string(), "v1.3.0");
        assert_eq!(SemVer(1, 2, 3).bump(Bump::Patch).to_string(), "v1.2.4");
        assert_eq!(SemVer(1, 2, 3).bump(Bump::Major).to_string(), "v2.0.0");
    }

    #[test]
    fn tag_names_parse() {
        assert_eq!(parse_tag("churn@v1.0.0"), Some(TagName::Version("churn".into(), SemVer(1, 0, 0))));
        assert_eq!(
            parse_tag("churn@v1.0.0!"),
            Some(TagName::VersionDeprecated("churn".into(), SemVer(1, 0, 0)))
        );
        assert_eq!(parse_tag("churn@deprecated"), Some(TagName::ModelDeprecated("churn".into())));
        assert_eq!(
            parse_tag("churn#prod#1765000000000"),
            Some(TagName::Label {
                name: "churn".into(),
                label: "prod".into(),
                removed: false,
                n: 1765000000000
            })
        );
        assert_eq!(
            parse_tag("churn#prod!#2"),
            Some(TagName::Label { name: "churn".into(), label: "prod".into(), removed: true, n: 2 })
        );
        for other in ["v1.0.0", "release-1", "churn@1.0.0", "churn#prod", "churn#v1.0.0#1", "a@b@v1.0.0"] {
            assert_eq!(parse_tag(other), None, "{other}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("model", "churn-model_2.pkl").is_ok());
        for bad in ["", "-x", "a b", "a@b", "a#b", "a:b", "a..b", "a.lock", "a/b", "é"] {
            assert!(check_name("model", bad).is_err(), "{bad}");
        }
        assert!(check_label("v1.0.0").is_err());
        assert!(check_label("deprecated").is_err());
        assert!(check_label("prod").is_ok());
    }
}
