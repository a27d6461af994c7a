//! `trove exp diff`: what differs between two records — params, metrics (with the change),
//! data, artifacts and the environment.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::exp::record::{Record, Value};

/// A param, metric or tag on both sides. `change` and `relative` are there when both
/// sides are numbers: `b - a`, and that divided by `|a|` (None when `a` is 0).
#[derive(Debug, Clone, Serialize)]
pub struct ValueChange {
    pub key: String,
    pub a: Option<Value>,
    pub b: Option<Value>,
    pub changed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relative: Option<f64>,
}

/// A data path or artifact whose object differs (None: absent on that side).
#[derive(Debug, Clone, Serialize)]
pub struct ObjectChange {
    pub path: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

/// An environment file that differs, as a line diff.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub file: String,
    pub in_a: bool,
    pub in_b: bool,
    pub added: usize,
    pub removed: usize,
    /// `-line` (only in a) and `+line` (only in b), in file order.
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordDiff {
    pub a: String,
    pub b: String,
    pub a_commit: String,
    pub b_commit: String,
    /// Every param and metric key of either record, changed or not.
    pub params: Vec<ValueChange>,
    pub metrics: Vec<ValueChange>,
    /// Tags that differ.
    pub tags: Vec<ValueChange>,
    pub data: Vec<ObjectChange>,
    pub artifacts: Vec<ObjectChange>,
    pub env_files: Vec<FileChange>,
    pub interpreters: Vec<ValueChange>,
    /// Python packages whose version differs, or that only one side has (key: the name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<ValueChange>,
}

impl RecordDiff {
    /// Whether anything but ids and times differs.
    pub fn is_empty(&self) -> bool {
        self.a_commit == self.b_commit
            && self.params.iter().chain(&self.metrics).all(|c| !c.changed)
            && self.tags.is_empty()
            && self.data.is_empty()
            && self.artifacts.is_empty()
            && self.env_files.is_empty()
            && self.interpreters.is_empty()
            && self.packages.is_empty()
    }
}

fn value_change(key: &str, a: Option<Value>, b: Option<Value>) -> ValueChange {
    let (mut change, mut relative) = (None, None);
    if let (Some(x), Some(y)) = (a.as_ref().and_then(Value::as_f64), b.as_ref().and_then(Value::as_f64)) {
        change = Some(y - x);
        relative = (x != 0.0).then(|| (y - x) / x.abs());
    }
    ValueChange { key: key.to_string(), changed: a != b, a, b, change, relative }
}

fn changes(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) -> Vec<ValueChange> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter().map(|k| value_change(k, a.get(k).cloned(), b.get(k).cloned())).collect()
}

fn objects(a: BTreeMap<String, String>, b: BTreeMap<String, String>) -> Vec<ObjectChange> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| ObjectChange { path: k.clone(), a: a.get(k).cloned(), b: b.get(k).cloned() })
        .collect()
}

pub fn diff(a: &Record, b: &Record) -> RecordDiff {
    let metric_values = |r: &Record| -> BTreeMap<String, Value> {
        r.metrics.iter().filter_map(|(k, m)| m.value().map(|v| (k.clone(), v))).collect()
    };
    let text = |m: &BTreeMap<String, String>| -> BTreeMap<String, Value> {
        m.iter().map(|(k, v)| (k.clone(), Value::Text(v.clone()))).collect()
    };
    let data = |r: &Record| r.data.iter().map(|d| (d.path.clone(), d.hash.to_hex())).collect();
    let artifacts = |r: &Record| r.artifacts.iter().map(|d| (d.path.clone(), d.hash.to_hex())).collect();
    let names: BTreeSet<&String> = a.env.files.keys().chain(b.env.files.keys()).collect();
    let env_files = names
        .into_iter()
        .filter(|n| a.env.files.get(*n) != b.env.files.get(*n))
        .map(|n| {
            let (x, y) = (a.env.files.get(n), b.env.files.get(n));
            let lines = line_diff(x.map_or("", String::as_str), y.map_or("", String::as_str));
            FileChange {
                file: n.clone(),
                in_a: x.is_some(),
                in_b: y.is_some(),
                added: lines.iter().filter(|l| l.starts_with('+')).count(),
                removed: lines.iter().filter(|l| l.starts_with('-')).count(),
                lines,
            }
        })
        .collect();
    RecordDiff {
        a: a.id.clone(),
        b: b.id.clone(),
        a_commit: a.commit.clone(),
        b_commit: b.commit.clone(),
        params: changes(&a.params, &b.params),
        metrics: changes(&metric_values(a), &metric_values(b)),
        tags: changes(&text(&a.tags), &text(&b.tags)).into_iter().filter(|c| c.changed).collect(),
        data: objects(data(a), data(b)),
        artifacts: objects(artifacts(a), artifacts(b)),
        env_files,
        interpreters: changes(&text(&a.env.interpreters), &text(&b.env.interpreters))
            .into_iter()
            .filter(|c| c.changed)
            .collect(),
        packages: changes(&packages(a), &packages(b)).into_iter().filter(|c| c.changed).collect(),
    }
}

/// A record's packages by name, their versions as values (`name==version` lines).
fn packages(r: &Record) -> BTreeMap<String, Value> {
    r.env
        .packages
        .iter()
        .map(|line| match line.split_once("==") {
            Some((name, version)) => (name.to_string(), Value::Text(version.to_string())),
            None => (line.clone(), Value::Text(String::new())),
        })
        .collect()
}

/// Above this many cells the line diff falls back to "lines only in one side".
const LCS_MAX_CELLS: usize = 4_000_000;

/// The lines removed (`-`) and added (`+`) from `a` to `b`, in order: a longest common
/// subsequence between the common head and tail.
pub fn line_diff(a: &str, b: &str) -> Vec<String> {
    let x: Vec<&str> = a.lines().collect();
    let y: Vec<&str> = b.lines().collect();
    let head = x.iter().zip(&y).take_while(|(p, q)| p == q).count();
    let tail = x[head..].iter().rev().zip(y[head..].iter().rev()).take_while(|(p, q)| p == q).count();
    let (x, y) = (&x[head..x.len() - tail], &y[head..y.len() - tail]);
    let mut out = Vec::new();
    if x.len().saturating_mul(y.len()) > LCS_MAX_CELLS {
        let in_y: BTreeSet<&str> = y.iter().copied().collect();
        let in_x: BTreeSet<&str> = x.iter().copied().collect();
        out.extend(x.iter().filter(|l| !in_y.contains(*l)).map(|l| format!("-{l}")));
        out.extend(y.iter().filter(|l| !in_x.contains(*l)).map(|l| format!("+{l}")));
        return out;
    }
    // lcs[i][j]: the LCS length of x[i..] and y[j..].
    let w = y.len() + 1;
    let mut lcs = vec![0u32; (x.len() + 1) * w];
    for i in (0..x.len()).rev() {
        for j in (0..y.len()).rev() {
            lcs[i * w + j] = if x[i] == y[j] {
                lcs[(i + 1) * w + j + 1] + 1
            } else {
                lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < x.len() || j < y.len() {
        if i < x.len() && j < y.len() && x[i] == y[j] {
            i += 1;
            j += 1;
        } else if j < y.len() && (i == x.len() || lcs[i * w + j + 1] > lcs[(i + 1) * w + j]) {
            out.push(format!("+{}", y[j]));
            j += 1;
        } else {
            out.push(format!("-{}", x[i]));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_diffs() {
        assert_eq!(line_diff("a\nb\nc\n", "a\nB\nc\nd\n"), ["-b", "+B", "+d"]);
        assert!(line_diff("same\n", "same\n").is_empty());
        assert_eq!(line_diff("", "x"), ["+x"]);
        assert_eq!(line_diff("x\ny", ""), ["-x", "-y"]);
    }

    #[test]
    fn numeric_changes() {
        let c = value_change("acc", Some(Value::Number(0.5)), Some(Value::Number(0.75)));
        assert_eq!((c.change, c.relative, c.changed), (Some(0.25), Some(0.5), true));
        let c = value_change("x", Some(Value::Number(0.0)), Some(Value::Number(1.0)));
        assert_eq!((c.change, c.relative), (Some(1.0), None));
        let c = value_change("opt", Some(Value::Text("a".into())), None);
        assert_eq!((c.change, c.changed), (None, true));
    }
}
