//! `trove exp plot`: one self-contained HTML page comparing records. The SVG is drawn
//! here, so the page shows everything without running a script and the same records
//! always give the same bytes; a small inline script only highlights an experiment on hover.
//!
//! - a parallel-coordinates plot: one vertical axis per param and per metric (numbers on a
//!   linear or, when they span orders of magnitude, a log scale; anything else as
//!   categories), one line per experiment;
//! - small multiples of the metric series over steps, one line per experiment.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::error::Result;
use crate::exp::record::{Metric, Point, Record, Value};
use crate::exp::store;

/// What the plot shows of one record.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotRun {
    pub id: String,
    pub name: String,
    pub params: BTreeMap<String, Value>,
    /// Single values, and the last value of each series.
    pub metrics: BTreeMap<String, Value>,
    pub series: BTreeMap<String, Vec<Point>>,
}

impl PlotRun {
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(10)]
    }
}

/// The records' params, metrics and series (read from their blobs).
pub fn gather(git: &git2::Repository, records: &[Record]) -> Result<Vec<PlotRun>> {
    records
        .iter()
        .map(|r| {
            let mut metrics = BTreeMap::new();
            let mut series = BTreeMap::new();
            for (key, metric) in &r.metrics {
                if let Some(v) = metric.value() {
                    metrics.insert(key.clone(), v);
                }
                if let Metric::Series(s) = metric {
                    series.insert(key.clone(), store::read_series(git, s)?);
                }
            }
            Ok(PlotRun { id: r.id.clone(), name: r.name.clone(), params: r.params.clone(), metrics, series })
        })
        .collect()
}

/// The page, and what it holds.
#[derive(Debug, Clone)]
pub struct Plot {
    pub html: String,
    /// The parallel-coordinates axes, as `params.KEY` / `metrics.KEY`.
    pub axes: Vec<String>,
    /// The metric keys that have a series chart.
    pub series: Vec<String>,
}

/// Render the page for `runs` (in the order given: it sets the colours).
pub fn render(runs: &[PlotRun]) -> Plot {
    let axes = axes(runs);
    let series_keys: Vec<String> =
        runs.iter().flat_map(|r| r.series.keys().cloned()).collect::<BTreeSet<_>>().into_iter().collect();

    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str("<title>trove experiments</title>\n<style>\n");
    h.push_str(STYLE);
    h.push_str("</style>\n</head>\n<body>\n<h1>Experiments</h1>\n");
    let params = axes.iter().filter(|a| a.source == Source::Param).count();
    let _ = writeln!(
        h,
        "<p class=\"meta\">{} · {} · {} · {}</p>",
        count(runs.len(), "experiment"),
        count(params, "param"),
        count(axes.len() - params, "metric"),
        count(series_keys.len(), "series metric")
    );
    legend(&mut h, runs);

    h.push_str("<section id=\"parallel\">\n<h2>Params and metrics</h2>\n");
    if axes.is_empty() {
        h.push_str("<p class=\"empty\">These records have no params or metrics.</p>\n");
    } else {
        parallel(&mut h, runs, &axes);
    }
    h.push_str("</section>\n");

    h.push_str("<section id=\"series\">\n<h2>Metric series</h2>\n");
    if series_keys.is_empty() {
        h.push_str("<p class=\"empty\">These records have no metric series.</p>\n");
    } else {
        h.push_str("<div class=\"multiples\">\n");
        for key in &series_keys {
            series_chart(&mut h, runs, key);
        }
        h.push_str("</div>\n");
    }
    h.push_str("</section>\n<script>\n");
    h.push_str(SCRIPT);
    h.push_str("</script>\n</body>\n</html>\n");
    Plot { html: h, axes: axes.iter().map(Axis::name).collect(), series: series_keys }
}

const STYLE: &str = r#"body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 2px}
h2{font-size:16px;margin:22px 0 8px}
.meta,.empty{color:#666;margin:0 0 12px}
.legend{list-style:none;padding:0;margin:0 0 8px;display:flex;flex-wrap:wrap;gap:6px 18px}
.legend li{display:flex;align-items:center;gap:6px;cursor:default}
.swatch{display:inline-block;width:16px;height:4px;border-radius:2px}
.legend code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;color:#666}
.scroll{overflow-x:auto}
svg text{font-size:11px;fill:#333;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
.axis{stroke:#777;stroke-width:1}
.tick{stroke:#777}
.grid{stroke:#ececec}
.axis-label{font-size:12px;font-weight:600}
.axis-kind{font-size:10px;fill:#888}
.pc-line,.series-line{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}
.multiples{display:flex;flex-wrap:wrap;gap:12px 20px}
figure{margin:0}
figcaption{text-align:center;font-weight:600;font-size:13px;margin-bottom:2px}
body.hovering .hl{opacity:.15}
body.hovering .hl.hot{opacity:1}
"#;

/// Hover highlight: optional, the page is complete without it.
const SCRIPT: &str = r#"(function () {
  var items = document.querySelectorAll(".hl[data-exp]");
  function highlight(id) {
    document.body.classList.toggle("hovering", id !== null);
    items.forEach(function (el) { el.classList.toggle("hot", el.getAttribute("data-exp") === id); });
  }
  items.forEach(function (el) {
    el.addEventListener("mouseenter", function () { highlight(el.getAttribute("data-exp")); });
    el.addEventListener("mouseleave", function () { highlight(null); });
  });
})();
"#;

fn count(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

/// A distinct colour per experiment: Tableau 10, then golden-angle hues.
pub fn colour(i: usize) -> String {
    const TABLEAU: [&str; 10] = [
        "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
        "#bab0ac",
    ];
    match TABLEAU.get(i) {
        Some(c) => (*c).to_string(),
        None => format!("hsl({} 62% 45%)", (i * 137 + 17) % 360),
    }
}

fn legend(h: &mut String, runs: &[PlotRun]) {
    h.push_str("<ul class=\"legend\">\n");
    for (i, r) in runs.iter().enumerate() {
        let _ = writeln!(
            h,
            "<li class=\"hl\" data-exp=\"{id}\"><span class=\"swatch\" style=\"background:{c}\"></span>\
             <code>{short}</code> {name}</li>",
            id = esc(&r.id),
            c = colour(i),
            short = esc(r.short_id()),
            name = esc(&r.name),
        );
    }
    h.push_str("</ul>\n");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Param,
    Metric,
}

#[derive(Debug)]
struct Axis {
    source: Source,
    key: String,
    scale: Scale,
}

impl Axis {
    fn name(&self) -> String {
        match self.source {
            Source::Param => format!("params.{}", self.key),
            Source::Metric => format!("metrics.{}", self.key),
        }
    }

    fn value<'r>(&self, run: &'r PlotRun) -> Option<&'r Value> {
        match self.source {
            Source::Param => run.params.get(&self.key),
            Source::Metric => run.metrics.get(&self.key),
        }
    }
}

/// One axis per param key, then one per metric key (each sorted by key).
fn axes(runs: &[PlotRun]) -> Vec<Axis> {
    let mut keys: BTreeSet<(Source, &str)> = BTreeSet::new();
    for r in runs {
        keys.extend(r.params.keys().map(|k| (Source::Param, k.as_str())));
        keys.extend(r.metrics.keys().map(|k| (Source::Metric, k.as_str())));
    }
    keys.into_iter()
        .map(|(source, key)| {
            let mut axis = Axis { source, key: key.to_string(), scale: Scale::Categories(Vec::new()) };
            let values: Vec<&Value> = runs.iter().filter_map(|r| axis.value(r)).collect();
            axis.scale = Scale::fit(&values);
            axis
        })
        .collect()
}

/// How an axis places values: positions run from 0 (bottom) to 1 (top).
#[derive(Debug, Clone, PartialEq)]
enum Scale {
    Linear {
        lo: f64,
        hi: f64,
        ticks: Vec<f64>,
    },
    /// `lo` and `hi` are powers of ten.
    Log {
        lo: i32,
        hi: i32,
    },
    Categories(Vec<String>),
}

impl Scale {
    fn fit(values: &[&Value]) -> Scale {
        let numbers: Option<Vec<f64>> = values.iter().map(|v| v.as_f64()).collect();
        match numbers {
            Some(n) if !n.is_empty() => {
                let min = n.iter().copied().fold(f64::INFINITY, f64::min);
                let max = n.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if min > 0.0 && max / min >= 100.0 {
                    Scale::Log { lo: min.log10().floor() as i32, hi: max.log10().ceil() as i32 }
                } else {
                    let (lo, hi, ticks) = nice(min, max, 5, false);
                    Scale::Linear { lo, hi, ticks }
                }
            }
            _ => {
                let mut cats: Vec<&Value> = values.to_vec();
                cats.sort_by(|a, b| category_order(a, b));
                let mut names: Vec<String> = cats.iter().map(|v| v.to_string()).collect();
                names.dedup();
                Scale::Categories(names)
            }
        }
    }

    fn position(&self, v: &Value) -> Option<f64> {
        match (self, v) {
            (Scale::Linear { lo, hi, .. }, Value::Number(n)) => Some((n - lo) / (hi - lo)),
            (Scale::Log { lo, hi }, Value::Number(n)) if *n > 0.0 => {
                Some((n.log10() - f64::from(*lo)) / f64::from((hi - lo).max(1)))
            }
            (Scale::Categories(c), v) => {
                let text = v.to_string();
                let i = c.iter().position(|x| *x == text)?;
                Some(if c.len() == 1 { 0.5 } else { i as f64 / (c.len() - 1) as f64 })
            }
            _ => None,
        }
    }

    /// Tick positions and labels.
    fn ticks(&self) -> Vec<(f64, String)> {
        match self {
            Scale::Linear { lo, hi, ticks } => {
                ticks.iter().map(|t| ((t - lo) / (hi - lo), fmt_num(*t))).collect()
            }
            Scale::Log { lo, hi } => (*lo..=*hi)
                .map(|e| (f64::from(e - lo) / f64::from((hi - lo).max(1)), fmt_num(10f64.powi(e))))
                .collect(),
            Scale::Categories(c) => c
                .iter()
                .map(|name| (self.position(&Value::Text(name.clone())).unwrap_or(0.5), shorten(name, 14)))
                .collect(),
        }
    }
}

/// Numbers first (by value), then booleans, then text.
fn category_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::Bool(_) => 1,
            Value::Text(_) => 2,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.total_cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Text(x), Value::Text(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// A "nice" domain around min..max with round ticks (about `count` of them), as in d3.
/// `integer` keeps the step at least 1 (for steps of a series).
fn nice(min: f64, max: f64, count: usize, integer: bool) -> (f64, f64, Vec<f64>) {
    let (min, max) = if max > min {
        (min, max)
    } else if integer {
        (min, min + 1.0)
    } else {
        let d = if min == 0.0 { 1.0 } else { min.abs() * 0.1 };
        (min - d, max + d)
    };
    let raw = (max - min) / count as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let m = match raw / magnitude {
        e if e >= 7.07 => 10.0,
        e if e >= 3.16 => 5.0,
        e if e >= 1.41 => 2.0,
        _ => 1.0,
    };
    let mut step = m * magnitude;
    if integer {
        step = step.max(1.0).round();
    }
    let first = (min / step).floor() as i64;
    let last = (max / step).ceil() as i64;
    // i * step (not repeated addition) keeps the ticks exact where they can be.
    let at = |i: i64| if step < 1.0 { i as f64 / (1.0 / step).round() } else { i as f64 * step };
    let ticks: Vec<f64> = (first..=last).map(at).collect();
    (at(first), at(last), ticks)
}

/// A number for a tick label: at most 4 significant digits, exponent form when tiny or huge.
pub fn fmt_num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v.is_finite() { "0".into() } else { v.to_string() };
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        let s = format!("{v:.3e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        return format!("{}e{exp}", trim_zeros(mantissa));
    }
    let digits = (3 - a.log10().floor() as i32).max(0) as usize;
    trim_zeros(&format!("{v:.digits$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// Text for HTML and SVG content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A coordinate: one decimal is finer than a pixel, and keeps the output stable.
fn px(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_string)
}

const PC_TOP: f64 = 64.0;
const PC_BOTTOM: f64 = 314.0;
const PC_HEIGHT: f64 = 340.0;
const PC_MARGIN: f64 = 80.0;
/// The plot fits this width while axes can stay this far apart; more axes scroll.
const PC_FIT_WIDTH: f64 = 1100.0;
const PC_SPACING: (f64, f64) = (110.0, 170.0);

fn parallel(h: &mut String, runs: &[PlotRun], axes: &[Axis]) {
    let gaps = axes.len().saturating_sub(1).max(1) as f64;
    let spacing = ((PC_FIT_WIDTH - 2.0 * PC_MARGIN) / gaps).clamp(PC_SPACING.0, PC_SPACING.1);
    let width = (2.0 * PC_MARGIN + spacing * gaps).max(640.0);
    let x_of = |i: usize| {
        if axes.len() == 1 {
            width / 2.0
        } else {
            PC_MARGIN + i as f64 * (width - 2.0 * PC_MARGIN) / (axes.len() - 1) as f64
        }
    };
    let y_of = |pos: f64| PC_BOTTOM - pos * (PC_BOTTOM - PC_TOP);
    let _ = writeln!(
        h,
        "<div class=\"scroll\">\n<svg class=\"parallel\" width=\"{w}\" height=\"{hh}\" viewBox=\"0 0 {w} {hh}\" \
         role=\"img\" aria-label=\"parallel coordinates of params and metrics\">",
        w = px(width),
        hh = px(PC_HEIGHT)
    );
    // The lines first: axes and their labels stay readable on top.
    for (ri, run) in runs.iter().enumerate() {
        let c = colour(ri);
        let mut d = String::new();
        let mut dots = String::new();
        let mut pen_down = false;
        let mut tip = format!("{} ({})", run.name, run.short_id());
        for (i, axis) in axes.iter().enumerate() {
            let Some(v) = axis.value(run) else {
                pen_down = false;
                continue;
            };
            let _ = write!(tip, "\n{} = {v}", axis.name());
            let Some(pos) = axis.scale.position(v) else {
                pen_down = false;
                continue;
            };
            let (x, y) = (px(x_of(i)), px(y_of(pos)));
            let command = match (pen_down, d.is_empty()) {
                (true, _) => " L",
                (false, true) => "M",
                (false, false) => " M",
            };
            let _ = write!(d, "{command}{x} {y}");
            let _ = write!(dots, "<circle class=\"pc-dot\" cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{c}\"/>");
            pen_down = true;
        }
        let _ = writeln!(
            h,
            "<g class=\"exp hl\" data-exp=\"{id}\"><path class=\"pc-line\" data-exp=\"{id}\" stroke=\"{c}\" \
             d=\"{d}\"><title>{tip}</title></path>{dots}</g>",
            id = esc(&run.id),
            tip = esc(&tip),
        );
    }
    for (i, axis) in axes.iter().enumerate() {
        let x = px(x_of(i));
        let kind = match axis.source {
            Source::Param => "param",
            Source::Metric => "metric",
        };
        let _ = writeln!(
            h,
            "<g class=\"pc-axis\" data-axis=\"{name}\">\n<text class=\"axis-kind\" x=\"{x}\" y=\"{ky}\" \
             text-anchor=\"middle\">{kind}{log}</text>\n<text class=\"axis-label\" x=\"{x}\" y=\"{ly}\" \
             text-anchor=\"middle\">{label}<title>{name}</title></text>\n<line class=\"axis\" x1=\"{x}\" \
             y1=\"{top}\" x2=\"{x}\" y2=\"{bottom}\"/>",
            name = esc(&axis.name()),
            ky = px(PC_TOP - 34.0),
            ly = px(PC_TOP - 18.0),
            log = if matches!(axis.scale, Scale::Log { .. }) { " (log)" } else { "" },
            label = esc(&shorten(&axis.key, 22)),
            top = px(PC_TOP),
            bottom = px(PC_BOTTOM),
        );
        for (pos, label) in axis.scale.ticks() {
            let y = px(y_of(pos));
            let _ = writeln!(
                h,
                "<line class=\"tick\" x1=\"{x0}\" y1=\"{y}\" x2=\"{x}\" y2=\"{y}\"/><text x=\"{xt}\" y=\"{y}\" \
                 dy=\"0.32em\" text-anchor=\"end\">{label}</text>",
                x0 = px(x_of(i) - 5.0),
                xt = px(x_of(i) - 8.0),
                label = esc(&label),
            );
        }
        h.push_str("</g>\n");
    }
    h.push_str("</svg>\n</div>\n");
}

const S_WIDTH: f64 = 420.0;
const S_HEIGHT: f64 = 250.0;
const S_LEFT: f64 = 58.0;
const S_RIGHT: f64 = 14.0;
const S_TOP: f64 = 12.0;
const S_BOTTOM: f64 = 40.0;

fn series_chart(h: &mut String, runs: &[PlotRun], key: &str) {
    let lines: Vec<(usize, &PlotRun, &Vec<Point>)> = runs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.series.get(key).map(|p| (i, r, p)))
        .filter(|(_, _, p)| !p.is_empty())
        .collect();
    let steps = lines.iter().flat_map(|(_, _, p)| p.iter().map(|pt| pt.step as f64));
    let (smin, smax) = steps.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), s| (a.min(s), b.max(s)));
    let values = lines.iter().flat_map(|(_, _, p)| p.iter().map(|pt| pt.value));
    let (vmin, vmax) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let (smin, smax) = if smin.is_finite() { (smin, smax) } else { (0.0, 1.0) };
    let (vmin, vmax) = if vmin.is_finite() { (vmin, vmax) } else { (0.0, 1.0) };
    let (xlo, xhi, xticks) = nice(smin, smax, 6, true);
    let (ylo, yhi, yticks) = nice(vmin, vmax, 5, false);
    let (left, right, top, bottom) = (S_LEFT, S_WIDTH - S_RIGHT, S_TOP, S_HEIGHT - S_BOTTOM);
    let x_of = |s: f64| left + (s - xlo) / (xhi - xlo) * (right - left);
    let y_of = |v: f64| bottom - (v - ylo) / (yhi - ylo) * (bottom - top);

    let _ = writeln!(
        h,
        "<figure>\n<figcaption>{k}</figcaption>\n<svg class=\"series\" data-metric=\"{k}\" width=\"{w}\" height=\"{hh}\" viewBox=\"0 0 {w} {hh}\" \
         role=\"img\" aria-label=\"{k} over steps\">",
        k = esc(key),
        w = px(S_WIDTH),
        hh = px(S_HEIGHT)
    );
    for t in &yticks {
        let y = px(y_of(*t));
        let _ = writeln!(
            h,
            "<line class=\"grid\" x1=\"{l}\" y1=\"{y}\" x2=\"{r}\" y2=\"{y}\"/><text x=\"{xt}\" y=\"{y}\" \
             dy=\"0.32em\" text-anchor=\"end\">{label}</text>",
            l = px(left),
            r = px(right),
            xt = px(left - 6.0),
            label = esc(&fmt_num(*t)),
        );
    }
    for t in &xticks {
        let x = px(x_of(*t));
        let _ = writeln!(
            h,
            "<line class=\"tick\" x1=\"{x}\" y1=\"{b}\" x2=\"{x}\" y2=\"{b5}\"/><text x=\"{x}\" y=\"{yt}\" \
             text-anchor=\"middle\">{label}</text>",
            b = px(bottom),
            b5 = px(bottom + 5.0),
            yt = px(bottom + 17.0),
            label = esc(&fmt_num(*t)),
        );
    }
    let _ = writeln!(
        h,
        "<line class=\"axis\" x1=\"{l}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\"/><line class=\"axis\" x1=\"{l}\" \
         y1=\"{t}\" x2=\"{l}\" y2=\"{b}\"/><text class=\"axis-kind\" x=\"{mid}\" y=\"{yl}\" \
         text-anchor=\"middle\">step</text>",
        l = px(left),
        r = px(right),
        t = px(top),
        b = px(bottom),
        mid = px((left + right) / 2.0),
        yl = px(S_HEIGHT - 6.0),
    );
    for (i, run, points) in lines {
        let c = colour(i);
        let shown = decimate(points, (2.0 * (right - left)) as usize);
        let coords: Vec<String> =
            shown.iter().map(|p| format!("{},{}", px(x_of(p.step as f64)), px(y_of(p.value)))).collect();
        let last = points
            .last()
            .map_or(String::new(), |p| format!(", last {} at step {}", fmt_num(p.value), p.step));
        let _ = write!(
            h,
            "<polyline class=\"series-line hl\" data-exp=\"{id}\" data-metric=\"{k}\" stroke=\"{c}\" \
             points=\"{pts}\"><title>{tip}</title></polyline>",
            id = esc(&run.id),
            k = esc(key),
            pts = coords.join(" "),
            tip = esc(&format!("{} ({}): {key}, {} points{last}", run.name, run.short_id(), points.len())),
        );
        if let [only] = shown.as_slice() {
            let _ = write!(
                h,
                "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{c}\"/>",
                px(x_of(only.step as f64)),
                px(y_of(only.value))
            );
        }
        h.push('\n');
    }
    h.push_str("</svg>\n</figure>\n");
}

/// At most about `budget` points: for long series, the first, lowest, highest and last
/// point of each of `budget / 4` buckets, in step order, so peaks survive.
fn decimate(points: &[Point], budget: usize) -> Vec<Point> {
    let buckets = (budget / 4).max(1);
    if points.len() <= budget.max(4) {
        return points.to_vec();
    }
    let size = points.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(buckets * 4);
    for chunk in points.chunks(size) {
        let lowest =
            chunk.iter().enumerate().min_by(|a, b| a.1.value.total_cmp(&b.1.value)).map_or(0, |(i, _)| i);
        let highest =
            chunk.iter().enumerate().max_by(|a, b| a.1.value.total_cmp(&b.1.value)).map_or(0, |(i, _)| i);
        let mut keep = [0, lowest, highest, chunk.len() - 1];
        keep.sort_unstable();
        let mut prev = None;
        for i in keep {
            if prev != Some(i) {
                out.push(chunk[i]);
                prev = Some(i);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, name: &str, params: &[(&str, Value)], metrics: &[(&str, Value)]) -> PlotRun {
        PlotRun {
            id: id.into(),
            name: name.into(),
            params: params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            series: BTreeMap::new(),
        }
    }

    fn sample() -> Vec<PlotRun> {
        let n = Value::Number;
        let t = |s: &str| Value::Text(s.into());
        let mut a = run(
            "01aaaaaaaaaaaaaaaaaaaaaaaa",
            "base",
            &[("lr", n(0.1)), ("opt", t("sgd"))],
            &[("acc", n(0.8))],
        );
        let mut b = run(
            "01bbbbbbbbbbbbbbbbbbbbbbbb",
            "fast<&>",
            &[("lr", n(0.01)), ("opt", t("adam"))],
            &[("acc", n(0.9))],
        );
        let c = run("01cccccccccccccccccccccccc", "partial", &[("lr", n(0.001))], &[]);
        a.series.insert("loss".into(), vec![Point::new(0, 1.0), Point::new(1, 0.6), Point::new(2, 0.4)]);
        b.series.insert("loss".into(), vec![Point::new(0, 0.9), Point::new(1, 0.3)]);
        b.series.insert("val/loss".into(), vec![Point::new(5, 0.5)]);
        vec![a, b, c]
    }

    /// Elements of a kind in the page, as their opening tags.
    fn tags<'a>(html: &'a str, start: &str) -> Vec<&'a str> {
        html.match_indices(start).map(|(i, _)| &html[i..i + html[i..].find('>').unwrap()]).collect()
    }

    #[test]
    fn one_line_per_experiment_in_both_charts() {
        let runs = sample();
        let plot = render(&runs);
        let html = &plot.html;
        assert_eq!(plot.axes, ["params.lr", "params.opt", "metrics.acc"]);
        assert_eq!(plot.series, ["loss", "val/loss"]);
        let pc = tags(html, "<path class=\"pc-line\"");
        assert_eq!(pc.len(), 3);
        for r in &runs {
            assert_eq!(pc.iter().filter(|t| t.contains(&format!("data-exp=\"{}\"", r.id))).count(), 1);
        }
        let loss = tags(html, "<polyline class=\"series-line hl\"");
        assert_eq!(loss.iter().filter(|t| t.contains("data-metric=\"loss\"")).count(), 2);
        assert_eq!(loss.iter().filter(|t| t.contains("data-metric=\"val/loss\"")).count(), 1);
        assert_eq!(tags(html, "<svg class=\"series\"").len(), 2);
        // The name is escaped, the legend names every run.
        assert!(html.contains("fast&lt;&amp;&gt;"));
        assert!(!html.contains("fast<&>"));
        assert_eq!(tags(html, "<li class=\"hl\"").len(), 3);
    }

    #[test]
    fn self_contained_and_deterministic() {
        let a = render(&sample()).html;
        assert_eq!(a, render(&sample()).html);
        assert!(!a.contains("http://") && !a.contains("https://"), "no network references");
        assert!(!a.contains(" src=") && !a.contains("<link"), "nothing loaded from elsewhere");
        assert!(a.starts_with("<!DOCTYPE html>"));
    }

    #[test]
    fn missing_values_break_the_line() {
        let runs = sample();
        let html = render(&runs).html;
        // "partial" has only lr: one point, no segment, and a dot.
        let tag = tags(&html, "<path class=\"pc-line\" data-exp=\"01cccccccccccccccccccccccc\"")[0];
        let d = &tag[tag.find(" d=\"").unwrap() + 4..];
        assert!(d.starts_with('M') && !d.contains('L'), "{d}");
    }

    #[test]
    fn scales() {
        // lr spans two orders of magnitude: a log axis with decade ticks.
        let lr = [Value::Number(0.1), Value::Number(0.01), Value::Number(0.001)];
        let refs: Vec<&Value> = lr.iter().collect();
        let s = Scale::fit(&refs);
        assert_eq!(s, Scale::Log { lo: -3, hi: -1 });
        assert_eq!(s.position(&lr[1]), Some(0.5));
        let labels: Vec<String> = s.ticks().into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["0.001", "0.01", "0.1"]);

        let acc = [Value::Number(0.81), Value::Number(0.93)];
        let refs: Vec<&Value> = acc.iter().collect();
        let Scale::Linear { lo, hi, ticks } = Scale::fit(&refs) else { panic!("linear") };
        assert!(lo <= 0.81 && hi >= 0.93 && hi - lo < 0.5, "{lo} {hi}");
        let labels: Vec<String> = ticks.iter().map(|t| fmt_num(*t)).collect();
        assert_eq!(labels, ["0.8", "0.82", "0.84", "0.86", "0.88", "0.9", "0.92", "0.94"]);

        // One value: a domain around it, the value in the middle.
        let one = [Value::Number(5.0)];
        let refs: Vec<&Value> = one.iter().collect();
        let s = Scale::fit(&refs);
        assert_eq!(s.position(&one[0]), Some(0.5));

        let cats =
            [Value::Text("sgd".into()), Value::Bool(true), Value::Number(3.0), Value::Text("adam".into())];
        let refs: Vec<&Value> = cats.iter().collect();
        assert_eq!(
            Scale::fit(&refs),
            Scale::Categories(vec!["3".into(), "true".into(), "adam".into(), "sgd".into()])
        );
    }

    #[test]
    fn number_labels() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(0.30000000000000004), "0.3");
        assert_eq!(fmt_num(12345.678), "12346");
        assert_eq!(fmt_num(1.5), "1.5");
        assert_eq!(fmt_num(-0.25), "-0.25");
        assert_eq!(fmt_num(0.0001), "1e-4");
        assert_eq!(fmt_num(2_500_000.0), "2.5e6");
        let (lo, hi, ticks) = nice(0.0, 9.0, 6, true);
        assert_eq!((lo, hi), (0.0, 10.0));
        assert_eq!(ticks, [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let (lo, hi, _) = nice(3.0, 3.0, 6, true);
        assert_eq!((lo, hi), (3.0, 4.0));
    }

    #[test]
    fn long_series_are_thinned_keeping_peaks() {
        let mut points: Vec<Point> = (0..10_000).map(|i| Point::new(i, (i as f64 / 100.0).sin())).collect();
        points[5_000].value = 50.0;
        let thin = decimate(&points, 800);
        assert!(thin.len() <= 800, "{}", thin.len());
        assert!(thin.contains(&Point::new(5_000, 50.0)));
        assert_eq!(thin.first(), points.first());
        assert_eq!(thin.last(), points.last());
        assert!(thin.windows(2).all(|w| w[0].step < w[1].step));
        let short: Vec<Point> = vec![Point::new(0, 1.0), Point::new(1, 2.0)];
        assert_eq!(decimate(&short, 800), short);
    }

    #[test]
    fn colours_are_distinct() {
        let all: BTreeSet<String> = (0..40).map(colour).collect();
        assert!(all.len() >= 35);
    }

    #[test]
    fn empty_sections_say_so() {
        let runs = vec![run("01dddddddddddddddddddddddd", "bare", &[], &[])];
        let html = render(&runs).html;
        assert!(html.contains("no params or metrics"));
        assert!(html.contains("no metric series"));
    }
}
