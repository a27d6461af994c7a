//! The records as a table (`trove exp list`) fitted to a width, and as CSV.

use std::collections::BTreeSet;

use crate::exp::query::{Entity, Key};
use crate::exp::record::{Record, Value};

/// One column: a header and a cell per row.
#[derive(Debug, Clone)]
pub struct Column {
    pub header: String,
    pub cells: Vec<String>,
    /// The key the column shows (None for the fixed columns).
    pub key: Option<Key>,
    pub right: bool,
}

/// The params and metrics keys used by any of `records`, in that order.
pub fn value_keys(records: &[Record]) -> Vec<Key> {
    let params: BTreeSet<&String> = records.iter().flat_map(|r| r.params.keys()).collect();
    let metrics: BTreeSet<&String> = records.iter().flat_map(|r| r.metrics.keys()).collect();
    let key = |entity, name: &String| Key { entity, name: name.clone() };
    params
        .into_iter()
        .map(|n| key(Entity::Param, n))
        .chain(metrics.into_iter().map(|n| key(Entity::Metric, n)))
        .collect()
}

/// A number for a narrow cell: at most 6 significant digits, exponent form when tiny or huge.
pub fn short_number(n: f64) -> String {
    if n == 0.0 || !n.is_finite() {
        return n.to_string();
    }
    let abs = n.abs();
    if !(1e-4..1e9).contains(&abs) {
        let s = format!("{n:.3e}");
        // 1.500e-7 -> 1.5e-7
        return match s.split_once('e') {
            Some((m, e)) if m.contains('.') => {
                format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.'))
            }
            _ => s,
        };
    }
    let digits = 6 - 1 - abs.log10().floor() as i32;
    let s = format!("{n:.*}", digits.max(0) as usize);
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

fn cell(v: Option<Value>) -> String {
    match v {
        None => "-".into(),
        Some(Value::Number(n)) => short_number(n),
        Some(other) => other.to_string(),
    }
}

/// The table's columns: id, name, commit, created, status, then params and metrics.
pub fn columns(records: &[Record]) -> Vec<Column> {
    let fixed = |header: &str, f: &dyn Fn(&Record) -> String| Column {
        header: header.into(),
        cells: records.iter().map(f).collect(),
        key: None,
        right: false,
    };
    let mut cols = vec![
        fixed("ID", &|r| r.short_id().to_string()),
        fixed("NAME", &|r| r.name.clone()),
        fixed("COMMIT", &|r| {
            format!("{}{}", &r.commit[..r.commit.len().min(7)], if r.dirty { "+" } else { "" })
        }),
        fixed("CREATED", &|r| r.created.get(..16).unwrap_or(&r.created).replace('T', " ")),
        fixed("STATUS", &|r| r.status.as_str().into()),
    ];
    for key in value_keys(records) {
        cols.push(Column {
            header: key.to_string(),
            cells: records.iter().map(|r| cell(key.value_of(r))).collect(),
            right: records
                .iter()
                .all(|r| !matches!(key.value_of(r), Some(Value::Text(_)) | Some(Value::Bool(_)))),
            key: Some(key),
        });
    }
    cols
}

/// The table as text lines, and the headers of the columns left out for lack of width.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub lines: Vec<String>,
    pub dropped: Vec<String>,
}

const GAP: usize = 2;
/// Value columns are cut to this many characters before any is dropped.
const CELL_CAP: usize = 16;
const NAME_CAP: usize = 24;
const NAME_MIN: usize = 8;

fn len(s: &str) -> usize {
    s.chars().count()
}

fn elide(s: &str, width: usize) -> String {
    if len(s) <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Lay the columns out in `width` characters (None: no limit, nothing cut). To fit:
/// long names and values are cut (marked `…`), then value columns are dropped, params
/// before metrics and the last first, never the column of `keep` (the sort key).
pub fn render(mut cols: Vec<Column>, width: Option<usize>, keep: Option<&Key>) -> Rendered {
    let natural = |c: &Column| c.cells.iter().map(|s| len(s)).chain([len(&c.header)]).max().unwrap_or(0);
    let mut widths: Vec<usize> = cols.iter().map(natural).collect();
    let total = |w: &[usize]| w.iter().sum::<usize>() + GAP * w.len().saturating_sub(1);
    let mut dropped = Vec::new();
    if let Some(limit) = width {
        if total(&widths) > limit {
            for (c, w) in cols.iter().zip(widths.iter_mut()) {
                let cap = match (&c.key, c.header.as_str()) {
                    (None, "NAME") => NAME_CAP,
                    (None, _) => continue,
                    (Some(_), _) => CELL_CAP,
                };
                *w = (*w).min(cap);
            }
        }
        // Drop order: params last-to-first, then metrics last-to-first.
        let mut order: Vec<usize> = Vec::new();
        for entity in [Entity::Param, Entity::Metric] {
            order.extend(
                (0..cols.len())
                    .rev()
                    .filter(|&i| cols[i].key.as_ref().is_some_and(|k| k.entity == entity && Some(k) != keep)),
            );
        }
        let mut gone = vec![false; cols.len()];
        for i in order {
            let shown: Vec<usize> = (0..cols.len()).filter(|&j| !gone[j]).map(|j| widths[j]).collect();
            if total(&shown) <= limit {
                break;
            }
            gone[i] = true;
            dropped.push(cols[i].header.clone());
        }
        (cols, widths) = cols.into_iter().zip(widths).zip(gone).filter(|(_, g)| !g).map(|(cw, _)| cw).unzip();
        // Still too wide: narrow the name down to NAME_MIN.
        let over = total(&widths).saturating_sub(limit);
        if over > 0
            && let Some(n) = cols.iter().position(|c| c.key.is_none() && c.header == "NAME")
        {
            widths[n] = widths[n].saturating_sub(over).max(NAME_MIN.min(widths[n]));
        }
        dropped.reverse();
        // Report in table order.
        dropped.sort_by_key(|h| if h.starts_with("params.") { 0 } else { 1 });
    }
    let rows = cols.first().map_or(0, |c| c.cells.len());
    let line = |get: &dyn Fn(&Column) -> &str| {
        let parts: Vec<String> = cols
            .iter()
            .zip(&widths)
            .map(|(c, &w)| {
                let text = elide(get(c), w);
                let pad = w - len(&text);
                if c.right {
                    format!("{}{text}", " ".repeat(pad))
                } else {
                    format!("{text}{}", " ".repeat(pad))
                }
            })
            .collect();
        parts.join(&" ".repeat(GAP)).trim_end().to_string()
    };
    let mut lines = vec![line(&|c| c.header.as_str())];
    for r in 0..rows {
        lines.push(line(&|c| c.cells[r].as_str()));
    }
    Rendered { lines, dropped }
}

/// A CSV field, quoted when it must be (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Every record as a CSV row under a header: full ids and values, tags too.
pub fn csv(records: &[Record]) -> String {
    let mut keys = value_keys(records);
    let tags: BTreeSet<&String> = records.iter().flat_map(|r| r.tags.keys()).collect();
    keys.extend(tags.into_iter().map(|t| Key { entity: Entity::Tag, name: t.clone() }));
    let mut header: Vec<String> =
        ["id", "name", "commit", "created", "user", "branch", "dirty", "status"].map(String::from).to_vec();
    header.extend(keys.iter().map(Key::to_string));
    let mut out = header.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(",");
    out.push('\n');
    for r in records {
        let mut row = vec![
            r.id.clone(),
            r.name.clone(),
            r.commit.clone(),
            r.created.clone(),
            r.user.clone(),
            r.branch.clone().unwrap_or_default(),
            r.dirty.to_string(),
            r.status.as_str().to_string(),
        ];
        row.extend(keys.iter().map(|k| k.value_of(r).map(|v| v.to_string()).unwrap_or_default()));
        out.push_str(&row.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exp::record::Metric;

    fn record(name: &str, lr: f64, acc: f64) -> Record {
        let mut r: Record = serde_json::from_value(serde_json::json!({
            "version": 1, "id": crate::exp::record::new_id(), "name": name,
            "created": "2026-01-02T03:04:05.000Z", "user": "ann", "commit": "ab".repeat(20),
            "branch": "main", "dirty": false, "status": "finished", "data": [], "params": {},
            "metrics": {}, "tags": {"note": "a, \"b\""}, "env": {"files": {}, "interpreters": {}},
            "artifacts": []
        }))
        .unwrap();
        r.params.insert("learning_rate".into(), Value::Number(lr));
        r.params.insert("optimizer".into(), Value::Text("adam".into()));
        r.metrics.insert("accuracy".into(), Metric::Value(Value::Number(acc)));
        r
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(short_number(0.123456789), "0.123457");
        assert_eq!(short_number(12345.678), "12345.7");
        assert_eq!(short_number(0.5), "0.5");
        assert_eq!(short_number(3.0), "3");
        assert_eq!(short_number(1.5e-7), "1.5e-7");
        assert_eq!(short_number(-2.0), "-2");
    }

    #[test]
    fn fits_the_width() {
        let rs = vec![record("a-rather-long-experiment-name-indeed", 0.01, 0.9), record("b", 0.1, 0.95)];
        let full = render(columns(&rs), None, None);
        assert!(full.dropped.is_empty());
        assert!(full.lines[0].contains("params.optimizer"), "{:?}", full.lines);
        assert!(full.lines[1].contains("a-rather-long-experiment-name-indeed"));
        let narrow = render(columns(&rs), Some(110), None);
        assert!(narrow.lines.iter().all(|l| l.chars().count() <= 110), "{:#?}", narrow.lines);
        assert_eq!(narrow.dropped, ["params.optimizer"], "{:#?}", narrow.lines);
        assert!(narrow.lines[1].contains('…'));
        // The sort key is kept; others go instead.
        let key = Key { entity: Entity::Param, name: "optimizer".into() };
        let kept = render(columns(&rs), Some(110), Some(&key));
        assert!(kept.lines[0].contains("params.optimizer"), "{:#?}", kept.lines);
        assert!(kept.dropped.contains(&"params.learning_rate".to_string()));
    }

    #[test]
    fn csv_quotes() {
        let rs = vec![record("x", 0.01, 0.9)];
        let text = csv(&rs);
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "id,name,commit,created,user,branch,dirty,status,params.learning_rate,params.optimizer,metrics.accuracy,tags.note"
        );
        assert!(lines.next().unwrap().ends_with(",0.01,adam,0.9,\"a, \"\"b\"\"\""));
    }
}
