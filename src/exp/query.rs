//! `trove exp list --filter` and `--sort`: MLflow's run-search grammar over records.
//!
//! A filter is conditions joined by `AND` (there is no `OR`, as in MLflow). A condition is
//! `KEY OP VALUE`:
//!
//! - `KEY` is `metrics.NAME`, `params.NAME`, `tags.NAME` or `attributes.NAME` (also the
//!   singular forms and `attr.`); a name with awkward characters goes in backticks or double
//!   quotes: ``metrics.`my metric` ``. Attributes: `id` (`run_id`), `name` (`run_name`),
//!   `created`, `user` (`user_id`), `commit`, `branch`, `status`, `dirty`.
//! - `OP` is `=`, `!=` (`<>`), `<`, `<=`, `>`, `>=`, `LIKE`, `ILIKE` (`%` any text, `_` one
//!   character), `IN (…)`, `NOT IN (…)`, `IS NULL`, `IS NOT NULL`.
//! - `VALUE` is a number, a string in single or double quotes (a doubled quote stands for
//!   itself), or `true` / `false`.
//!
//! Comparisons: a record without the key never matches (except `IS NULL`). An unquoted
//! number compares numerically and matches only numeric values. A quoted string compares
//! numerically when both it and the value are numbers (so `params.lr = '0.01'` matches
//! a param logged as `1e-2`), else as text (case-sensitive, ordered by bytes; RFC 3339
//! times therefore order correctly). Attributes always compare as text, and
//! `attributes.status` ignores case (`'FAILED'` works).
//! A metric series compares by its last value.

use std::cmp::Ordering;
use std::fmt;

use crate::exp::record::{Record, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Param,
    Metric,
    Tag,
    Attribute,
}

impl Entity {
    pub fn prefix(self) -> &'static str {
        match self {
            Entity::Param => "params",
            Entity::Metric => "metrics",
            Entity::Tag => "tags",
            Entity::Attribute => "attributes",
        }
    }
}

/// The attributes a key may name, with MLflow's aliases.
pub const ATTRIBUTES: &[&str] = &["id", "name", "created", "user", "commit", "branch", "status", "dirty"];

fn attribute_alias(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let canonical = match lower.as_str() {
        "run_id" => "id",
        "run_name" => "name",
        "user_id" => "user",
        other => other,
    };
    ATTRIBUTES.iter().find(|a| **a == canonical).copied()
}

/// `params.lr`, `metrics.acc`, `attributes.created`, …
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub entity: Entity,
    pub name: String,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.entity.prefix(), self.name)
    }
}

impl Key {
    /// The key's value in a record: None when the record lacks it.
    pub fn value_of(&self, r: &Record) -> Option<Value> {
        match self.entity {
            Entity::Param => r.params.get(&self.name).cloned(),
            Entity::Metric => r.metrics.get(&self.name).and_then(|m| m.value()),
            Entity::Tag => r.tags.get(&self.name).map(|t| Value::Text(t.clone())),
            Entity::Attribute => Some(match self.name.as_str() {
                "id" => Value::Text(r.id.clone()),
                "name" => Value::Text(r.name.clone()),
                "created" => Value::Text(r.created.clone()),
                "user" => Value::Text(r.user.clone()),
                "commit" => Value::Text(r.commit.clone()),
                "branch" => Value::Text(r.branch.clone()?),
                "status" => Value::Text(r.status.as_str().into()),
                "dirty" => Value::Bool(r.dirty),
                _ => return None,
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// Written without quotes.
    Number(f64),
    /// Quoted, or `true` / `false`.
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub key: Key,
    pub op: Op,
    /// One value; several for IN / NOT IN; none for IS [NOT] NULL.
    pub values: Vec<Literal>,
}

/// Conditions that must all hold. Empty: every record matches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub conditions: Vec<Condition>,
}

/// A syntax error at a 1-based character position of the expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub position: usize,
    pub message: String,
    /// The text from the position on (shortened), or None at the end.
    pub near: Option<String>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)?;
        match &self.near {
            Some(near) => write!(f, " (at `{near}`)"),
            None => f.write_str(" (at the end)"),
        }
    }
}

impl std::error::Error for ParseError {}

pub fn parse_filter(text: &str) -> Result<Filter, ParseError> {
    let mut p = Parser::new(text);
    let mut conditions = Vec::new();
    p.skip_space();
    if p.at_end() {
        return Ok(Filter { conditions });
    }
    loop {
        conditions.push(p.condition()?);
        p.skip_space();
        if p.at_end() {
            break;
        }
        let start = p.pos;
        match p.word().map(|w| w.to_ascii_uppercase()).as_deref() {
            Some("AND") => {
                p.skip_space();
                if p.at_end() {
                    return Err(p.error_here("expected a condition after AND"));
                }
            }
            Some("OR") => {
                p.pos = start;
                return Err(p.error_here(
                    "OR is not supported (MLflow's search grammar has only AND); \
                     run the command once per alternative",
                ));
            }
            _ => {
                p.pos = start;
                return Err(p.error_here("expected AND or the end of the filter"));
            }
        }
    }
    Ok(Filter { conditions })
}

/// A key on its own (for `--sort`).
pub fn parse_key(text: &str) -> Result<Key, ParseError> {
    let mut p = Parser::new(text);
    p.skip_space();
    let key = p.key()?;
    p.skip_space();
    if !p.at_end() {
        return Err(p.error_here("unexpected text after the key"));
    }
    Ok(key)
}

/// `--sort KEY[:asc|:desc]` (MLflow's `KEY DESC` also works).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub key: Key,
    pub descending: bool,
}

impl Default for Sort {
    /// Newest first.
    fn default() -> Self {
        Sort { key: Key { entity: Entity::Attribute, name: "created".into() }, descending: true }
    }
}

pub fn parse_sort(text: &str) -> Result<Sort, ParseError> {
    let mut p = Parser::new(text);
    p.skip_space();
    let key = p.key()?;
    p.skip_space();
    let mut descending = false;
    if !p.at_end() {
        if p.peek() == Some(':') {
            p.pos += 1;
        }
        p.skip_space();
        let start = p.pos;
        descending = match p.word().map(|w| w.to_ascii_lowercase()).as_deref() {
            Some("asc") => false,
            Some("desc") => true,
            _ => {
                p.pos = start;
                return Err(p.error_here("expected `asc` or `desc` after the key"));
            }
        };
        p.skip_space();
        if !p.at_end() {
            return Err(p.error_here("unexpected text after the direction"));
        }
    }
    Ok(Sort { key, descending })
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn new(text: &str) -> Self {
        Parser { chars: text.chars().collect(), pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> ParseError {
        let near = (pos < self.chars.len()).then(|| {
            let rest: String = self.chars[pos..].iter().take(20).collect();
            if self.chars.len() - pos > 20 { format!("{rest}…") } else { rest }
        });
        ParseError { position: pos + 1, message: message.into(), near }
    }

    fn error_here(&self, message: impl Into<String>) -> ParseError {
        self.error_at(self.pos, message)
    }

    /// Letters, digits and `_`, starting with a letter or `_`.
    fn word(&mut self) -> Option<String> {
        let start = self.pos;
        if !self.peek().is_some_and(|c| c.is_alphabetic() || c == '_') {
            return None;
        }
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        Some(self.chars[start..self.pos].iter().collect())
    }

    fn key(&mut self) -> Result<Key, ParseError> {
        let start = self.pos;
        if self.peek() == Some('(') {
            return Err(self.error_here("parentheses are not supported (MLflow's search grammar has none)"));
        }
        let Some(kind) = self.word() else {
            return Err(self.error_here("expected a key such as metrics.acc, params.lr or attributes.status"));
        };
        let entity = match kind.to_ascii_lowercase().as_str() {
            "metric" | "metrics" => Entity::Metric,
            "param" | "params" | "parameter" | "parameters" => Entity::Param,
            "tag" | "tags" => Entity::Tag,
            "attribute" | "attributes" | "attr" | "run" => Entity::Attribute,
            _ => {
                return Err(self.error_at(
                    start,
                    format!("unknown key `{kind}`: keys start with metrics., params., tags. or attributes."),
                ));
            }
        };
        if self.peek() != Some('.') {
            return Err(self.error_here(format!("expected `.` and a name after `{kind}`")));
        }
        self.pos += 1;
        let name_start = self.pos;
        let name = match self.peek() {
            Some(q @ ('`' | '"')) => self.quoted(q)?,
            _ => {
                while self.peek().is_some_and(|c| c.is_alphanumeric() || "_.-/".contains(c)) {
                    self.pos += 1;
                }
                self.chars[name_start..self.pos].iter().collect()
            }
        };
        if name.is_empty() {
            return Err(self.error_at(name_start, format!("expected a name after `{kind}.`")));
        }
        if entity == Entity::Attribute {
            let Some(canonical) = attribute_alias(&name) else {
                return Err(self.error_at(
                    name_start,
                    format!("unknown attribute `{name}`; attributes are {}", ATTRIBUTES.join(", ")),
                ));
            };
            return Ok(Key { entity, name: canonical.into() });
        }
        Ok(Key { entity, name })
    }

    /// A string in `q` quotes, the opening one at `pos`; a doubled quote stands for itself.
    fn quoted(&mut self, q: char) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error_at(start, format!("unterminated {q}…{q} starting"))),
                Some(c) if c == q => {
                    if self.chars.get(self.pos + 1) == Some(&q) {
                        out.push(q);
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        return Ok(out);
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn op(&mut self) -> Result<Op, ParseError> {
        let start = self.pos;
        let two: String = self.chars[self.pos..].iter().take(2).collect();
        let symbol = match two.as_str() {
            "!=" | "<>" => Some((Op::Ne, 2)),
            "<=" => Some((Op::Le, 2)),
            ">=" => Some((Op::Ge, 2)),
            "==" => Some((Op::Eq, 2)),
            _ => match self.peek() {
                Some('=') => Some((Op::Eq, 1)),
                Some('<') => Some((Op::Lt, 1)),
                Some('>') => Some((Op::Gt, 1)),
                _ => None,
            },
        };
        if let Some((op, len)) = symbol {
            self.pos += len;
            return Ok(op);
        }
        let expected = "expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL)";
        let Some(word) = self.word() else { return Err(self.error_here(expected)) };
        match word.to_ascii_uppercase().as_str() {
            "LIKE" => Ok(Op::Like),
            "ILIKE" => Ok(Op::ILike),
            "IN" => Ok(Op::In),
            "NOT" => {
                self.skip_space();
                let at = self.pos;
                match self.word().map(|w| w.to_ascii_uppercase()).as_deref() {
                    Some("IN") => Ok(Op::NotIn),
                    _ => Err(self.error_at(at, "expected IN after NOT")),
                }
            }
            "IS" => {
                self.skip_space();
                let at = self.pos;
                match self.word().map(|w| w.to_ascii_uppercase()).as_deref() {
                    Some("NULL") => Ok(Op::IsNull),
                    Some("NOT") => {
                        self.skip_space();
                        let at = self.pos;
                        match self.word().map(|w| w.to_ascii_uppercase()).as_deref() {
                            Some("NULL") => Ok(Op::IsNotNull),
                            _ => Err(self.error_at(at, "expected NULL after IS NOT")),
                        }
                    }
                    _ => Err(self.error_at(at, "expected NULL or NOT NULL after IS")),
                }
            }
            _ => Err(self.error_at(start, expected)),
        }
    }

    fn number(&mut self) -> Option<f64> {
        let start = self.pos;
        let mut end = self.pos;
        let at = |i: usize| self.chars.get(i).copied();
        if matches!(at(end), Some('-' | '+')) {
            end += 1;
        }
        let digits_from = end;
        while at(end).is_some_and(|c| c.is_ascii_digit() || c == '.') {
            end += 1;
        }
        if end == digits_from {
            return None;
        }
        if matches!(at(end), Some('e' | 'E')) {
            let mut e = end + 1;
            if matches!(at(e), Some('-' | '+')) {
                e += 1;
            }
            if at(e).is_some_and(|c| c.is_ascii_digit()) {
                while at(e).is_some_and(|c| c.is_ascii_digit()) {
                    e += 1;
                }
                end = e;
            }
        }
        let text: String = self.chars[start..end].iter().collect();
        let n = text.parse::<f64>().ok().filter(|n| n.is_finite())?;
        self.pos = end;
        Some(n)
    }

    fn value(&mut self) -> Result<Literal, ParseError> {
        let start = self.pos;
        match self.peek() {
            None => Err(self.error_here("expected a value")),
            Some(q @ ('\'' | '"')) => Ok(Literal::Text(self.quoted(q)?)),
            Some(c) if c.is_ascii_digit() || "-+.".contains(c) => {
                let n = self.number().ok_or_else(|| self.error_here("expected a value"))?;
                if self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                    return Err(self.error_at(start, "not a number; quote text values: 'like this'"));
                }
                Ok(Literal::Number(n))
            }
            Some(_) => match self.word() {
                Some(w) if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") => {
                    Ok(Literal::Text(w.to_ascii_lowercase()))
                }
                Some(w) if w.eq_ignore_ascii_case("AND") || w.eq_ignore_ascii_case("OR") => {
                    Err(self.error_at(start, "expected a value"))
                }
                Some(w) => Err(self.error_at(start, format!("expected a value; quote text values: '{w}'"))),
                None => Err(self.error_here("expected a value")),
            },
        }
    }

    fn condition(&mut self) -> Result<Condition, ParseError> {
        let key = self.key()?;
        self.skip_space();
        let op = self.op()?;
        self.skip_space();
        let values = match op {
            Op::IsNull | Op::IsNotNull => Vec::new(),
            Op::In | Op::NotIn => {
                if self.peek() != Some('(') {
                    return Err(self.error_here("expected `(` and a list of values after IN"));
                }
                self.pos += 1;
                let mut values = Vec::new();
                loop {
                    self.skip_space();
                    values.push(self.value()?);
                    self.skip_space();
                    match self.peek() {
                        Some(',') => self.pos += 1,
                        Some(')') => {
                            self.pos += 1;
                            break;
                        }
                        _ => return Err(self.error_here("expected `,` or `)` in the IN list")),
                    }
                }
                values
            }
            Op::Like | Op::ILike => {
                let at = self.pos;
                match self.value()? {
                    Literal::Text(t) => vec![Literal::Text(t)],
                    Literal::Number(_) => {
                        return Err(self.error_at(at, "LIKE takes a quoted pattern such as '%adam%'"));
                    }
                }
            }
            _ => vec![self.value()?],
        };
        Ok(Condition { key, op, values })
    }
}

/// A finite number, from a number or from text that reads as one.
fn numeric(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Text(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        Value::Bool(_) => None,
    }
}

impl Condition {
    pub fn matches(&self, r: &Record) -> bool {
        let value = self.key.value_of(r);
        match self.op {
            Op::IsNull => return value.is_none(),
            Op::IsNotNull => return value.is_some(),
            _ => {}
        }
        let Some(value) = value else { return false };
        let how = Compare {
            text_only: self.key.entity == Entity::Attribute,
            fold_case: self.key.entity == Entity::Attribute && self.key.name == "status",
        };
        match self.op {
            Op::In => self.values.iter().any(|l| how.compare(&value, l) == Some(Ordering::Equal)),
            Op::NotIn => self.values.iter().all(|l| how.compare(&value, l).is_some_and(|o| o.is_ne())),
            Op::Like | Op::ILike => {
                let Some(Literal::Text(pattern)) = self.values.first() else { return false };
                like(&value.to_string(), pattern, self.op == Op::ILike)
            }
            op => {
                let Some(ord) = self.values.first().and_then(|l| how.compare(&value, l)) else {
                    return false;
                };
                match op {
                    Op::Eq => ord.is_eq(),
                    Op::Ne => ord.is_ne(),
                    Op::Lt => ord.is_lt(),
                    Op::Le => ord.is_le(),
                    Op::Gt => ord.is_gt(),
                    Op::Ge => ord.is_ge(),
                    _ => false,
                }
            }
        }
    }
}

/// How a key's values compare with literals.
struct Compare {
    /// Attributes (ids, names, commit ids, times) are text: a commit id such as
    /// `1234e567…` is never read as a number.
    text_only: bool,
    /// `attributes.status`: `'FAILED'` as in MLflow.
    fold_case: bool,
}

impl Compare {
    /// How `value` compares to `literal`; None when they cannot be compared (an unquoted
    /// number against a value that is not a number).
    fn compare(&self, value: &Value, literal: &Literal) -> Option<Ordering> {
        let text = |t: &str| {
            let v = value.to_string();
            if self.fold_case { v.to_lowercase().cmp(&t.to_lowercase()) } else { v.as_str().cmp(t) }
        };
        match literal {
            Literal::Number(n) if self.text_only => Some(text(&n.to_string())),
            Literal::Number(n) => numeric(value).and_then(|v| v.partial_cmp(n)),
            Literal::Text(t) if self.text_only => Some(text(t)),
            Literal::Text(t) => match (numeric(value), numeric(&Value::Text(t.clone()))) {
                (Some(a), Some(b)) => a.partial_cmp(&b),
                _ => Some(text(t)),
            },
        }
    }
}

/// SQL LIKE: `%` any run of characters, `_` exactly one.
fn like(text: &str, pattern: &str, ignore_case: bool) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = if ignore_case {
        (text.to_lowercase().chars().collect(), pattern.to_lowercase().chars().collect())
    } else {
        (text.chars().collect(), pattern.chars().collect())
    };
    crate::wildcard::matches(&t, &p, '%', '_')
}

impl Filter {
    pub fn matches(&self, r: &Record) -> bool {
        self.conditions.iter().all(|c| c.matches(r))
    }
}

/// Order two values of a key: numbers by value and before text, text by bytes (always
/// text for attributes).
fn compare_as(a: &Value, b: &Value, text_only: bool) -> Ordering {
    if text_only {
        return a.to_string().cmp(&b.to_string());
    }
    match (numeric(a), numeric(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.to_string().cmp(&b.to_string()),
    }
}

/// Sort records by `sort`; records without the key go last whichever the direction, and
/// ties are broken newest first.
pub fn sort_records(records: &mut [Record], sort: &Sort) {
    records.sort_by(|a, b| {
        let (va, vb) = (sort.key.value_of(a), sort.key.value_of(b));
        let primary = match (&va, &vb) {
            (Some(x), Some(y)) => {
                let o = compare_as(x, y, sort.key.entity == Entity::Attribute);
                if sort.descending { o.reverse() } else { o }
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        primary.then_with(|| b.created.cmp(&a.created)).then_with(|| b.id.cmp(&a.id))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exp::record::{Metric, Status};

    fn record(lr: Value, acc: f64) -> Record {
        let mut r: Record = serde_json::from_value(serde_json::json!({
            "version": 1, "id": crate::exp::record::new_id(), "name": "base-run",
            "created": "2026-01-02T03:04:05.000Z", "user": "ann", "commit": "ab".repeat(20),
            "branch": "main", "dirty": false, "status": "finished", "data": [], "params": {},
            "metrics": {}, "tags": {"stage": "dev", "flag": ""}, "env": {"files": {}, "interpreters": {}},
            "artifacts": []
        }))
        .unwrap();
        r.params.insert("lr".into(), lr);
        r.params.insert("opt".into(), Value::Text("Adam".into()));
        r.params.insert("model.depth".into(), Value::Number(4.0));
        r.metrics.insert("acc".into(), Metric::Value(Value::Number(acc)));
        r.metrics.insert("my-metric".into(), Metric::Value(Value::Number(1.5)));
        r
    }

    fn matches(expr: &str, r: &Record) -> bool {
        parse_filter(expr).unwrap_or_else(|e| panic!("{expr}: {e}")).matches(r)
    }

    #[test]
    fn mlflow_examples() {
        let r = record(Value::Number(0.01), 0.93);
        assert!(matches("metrics.acc > 0.9 AND params.lr = '0.01'", &r));
        assert!(matches("metrics.acc > 0.9 and params.lr = \"0.01\"", &r));
        assert!(!matches("metrics.acc > 0.95", &r));
        assert!(matches("tags.stage = 'dev'", &r));
        assert!(matches("attributes.status = 'FAILED'", &{
            let mut f = r.clone();
            f.status = Status::Failed;
            f
        }));
        assert!(!matches("attributes.status = 'failed'", &r));
        assert!(matches("metrics.`my-metric` >= 1.5", &r));
        assert!(matches("metrics.\"my-metric\" < 2", &r));
        assert!(matches("params.model.depth = 4", &r));
        assert!(matches("params.opt LIKE 'Ad%'", &r));
        assert!(!matches("params.opt LIKE 'ad%'", &r));
        assert!(matches("params.opt ILIKE 'ad_m'", &r));
        assert!(matches("params.opt IN ('SGD', 'Adam')", &r));
        assert!(!matches("params.opt NOT IN ('SGD', 'Adam')", &r));
        assert!(matches("attributes.run_name = 'base-run'", &r));
        assert!(matches("attributes.created > '2026-01-01'", &r));
        assert!(matches("tags.missing IS NULL AND tags.flag IS NOT NULL", &r));
        assert!(matches("attributes.dirty = false", &r));
        // Attributes are text, even when they look like numbers.
        let mut odd = r.clone();
        odd.commit = format!("1234e5{}", "0".repeat(34));
        assert!(matches(&format!("attributes.commit = '{}'", odd.commit), &odd));
        assert!(!matches(&format!("attributes.commit = '1234e5{}1'", "0".repeat(33)), &odd));
        assert!(matches("attributes.commit LIKE '1234e5%'", &odd));
        assert!(matches("", &r));
        assert!(matches("   ", &r));
    }

    #[test]
    fn numbers_and_strings() {
        // A param logged as 1e-2 is the number 0.01: quoted numbers compare numerically.
        let r = record(Value::Number(0.01), 0.5);
        assert!(matches("params.lr = '1e-2'", &r));
        assert!(matches("params.lr < 0.1", &r));
        // A param read from a file as the text "0.01" compares the same way.
        let r = record(Value::Text("0.01".into()), 0.5);
        assert!(matches("params.lr = 0.01 AND params.lr >= '0.001'", &r));
        // Text against an unquoted number never matches, even with !=.
        assert!(!matches("params.opt > 1", &r));
        assert!(!matches("params.opt != 1", &r));
        // A missing key never matches, not even !=.
        assert!(!matches("params.nothing != 'x'", &r));
        assert!(!matches("metrics.nothing < 1", &r));
    }

    #[test]
    fn errors_name_the_position() {
        let e = parse_filter("metrics.acc > AND params.lr = 1").unwrap_err();
        assert_eq!((e.position, e.message.as_str()), (15, "expected a value"));
        assert_eq!(e.to_string(), "expected a value at position 15 (at `AND params.lr = 1`)");
        let e = parse_filter("metrics.acc >").unwrap_err();
        assert_eq!(e.to_string(), "expected a value at position 14 (at the end)");
        let e = parse_filter("metrics.acc > 1 OR params.lr = '1'").unwrap_err();
        assert_eq!(e.position, 17);
        assert!(e.message.contains("OR is not supported"), "{e}");
        let e = parse_filter("metric.acc ~ 1").unwrap_err();
        assert_eq!(e.position, 12);
        assert!(e.message.starts_with("expected an operator"), "{e}");
        let e = parse_filter("foo.acc = 1").unwrap_err();
        assert_eq!(e.position, 1);
        let e = parse_filter("attributes.colour = 'x'").unwrap_err();
        assert_eq!(e.position, 12);
        assert!(e.message.contains("status"), "{e}");
        let e = parse_filter("params.opt = adam").unwrap_err();
        assert_eq!(e.position, 14);
        assert!(e.message.contains("'adam'"), "{e}");
        let e = parse_filter("params.opt = 'adam").unwrap_err();
        assert_eq!(e.position, 14);
        assert!(e.message.contains("unterminated"), "{e}");
        let e = parse_filter("params.opt IN 'a'").unwrap_err();
        assert_eq!(e.position, 15);
        let e = parse_filter("params.opt IN ('a' 'b')").unwrap_err();
        assert_eq!(e.position, 20);
        let e = parse_filter("metrics.acc > 1 AND").unwrap_err();
        assert_eq!(e.position, 20);
        let e = parse_filter("metrics.acc > 1 params.x = 2").unwrap_err();
        assert_eq!((e.position, e.message.as_str()), (17, "expected AND or the end of the filter"));
        let e = parse_filter("(metrics.acc > 1)").unwrap_err();
        assert!(e.message.contains("parentheses"), "{e}");
        let e = parse_filter("params.opt LIKE 3").unwrap_err();
        assert!(e.message.contains("LIKE"), "{e}");
        let e = parse_filter("metrics. > 1").unwrap_err();
        assert_eq!(e.position, 9);
        let e = parse_filter("metrics.acc > 1x").unwrap_err();
        assert_eq!(e.position, 15);
        // Positions count characters, not bytes.
        let e = parse_filter("tags.`é` = ").unwrap_err();
        assert_eq!(e.position, 12);
    }

    #[test]
    fn sort_keys() {
        assert_eq!(
            parse_sort("metrics.acc").unwrap(),
            Sort { key: parse_key("metrics.acc").unwrap(), descending: false }
        );
        assert!(parse_sort("metrics.acc:desc").unwrap().descending);
        assert!(parse_sort("metrics.acc DESC").unwrap().descending);
        assert!(!parse_sort("params.lr:asc").unwrap().descending);
        assert_eq!(parse_sort("attributes.run_name").unwrap().key.name, "name");
        assert_eq!(parse_sort("metrics.`a:b`:desc").unwrap().key.name, "a:b");
        assert!(parse_sort("metrics.acc:up").is_err());
        assert!(parse_sort("acc").is_err());

        let mut rs = vec![record(Value::Number(0.1), 0.5), record(Value::Number(0.2), 0.9), {
            let mut r = record(Value::Number(0.3), 0.0);
            r.metrics.remove("acc");
            r
        }];
        rs[2].created = "2026-01-03T00:00:00.000Z".into();
        sort_records(&mut rs, &parse_sort("metrics.acc:desc").unwrap());
        let lrs: Vec<String> = rs.iter().map(|r| r.params["lr"].to_string()).collect();
        assert_eq!(lrs, ["0.2", "0.1", "0.3"], "missing values go last");
        sort_records(&mut rs, &parse_sort("metrics.acc").unwrap());
        let lrs: Vec<String> = rs.iter().map(|r| r.params["lr"].to_string()).collect();
        assert_eq!(lrs, ["0.1", "0.2", "0.3"]);
        sort_records(&mut rs, &Sort::default());
        assert_eq!(rs[0].params["lr"].to_string(), "0.3", "newest first");
    }

    #[test]
    fn like_patterns() {
        assert!(like("abc", "a%", false));
        assert!(like("abc", "%c", false));
        assert!(like("abc", "%b%", false));
        assert!(like("abc", "a_c", false));
        assert!(!like("abc", "a_", false));
        assert!(like("", "%", false));
        assert!(like("aXbXc", "a%b%c", false));
        assert!(!like("ABC", "abc", false));
        assert!(like("ABC", "abc", true));
    }
}
