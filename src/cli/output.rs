//! Human, JSON and quiet output; progress bars on a terminal only.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::progress::Reporter;
pub use crate::tracked::{quote_name, shell_quote};

pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
    progress: bool,
    /// Every bar of the run is drawn through this one, so a phase that starts while
    /// another is shown (fetch inside `exp checkout`) adds a line instead of fighting
    /// over the terminal; lines printed meanwhile go above the bars.
    bars: MultiProgress,
}

impl Output {
    pub fn new(json: bool, quiet: bool, verbose: u8, no_progress: bool) -> Self {
        let progress = !json && !quiet && !no_progress && std::io::stderr().is_terminal();
        let target = if progress { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        Output { json, quiet, verbose, progress, bars: MultiProgress::with_draw_target(target) }
    }

    /// A line of the human report on stdout (not with --json or -q).
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.json && !self.quiet {
            self.bars.suspend(|| println!("{}", line.as_ref()));
        }
    }

    /// Detail shown with -v.
    pub fn detail(&self, line: impl AsRef<str>) {
        if !self.json && !self.quiet && self.verbose > 0 {
            self.bars.suspend(|| println!("{}", line.as_ref()));
        }
    }

    /// A hint on stderr, for humans only.
    pub fn hint(&self, line: impl AsRef<str>) {
        if !self.json && !self.quiet {
            self.bars.suspend(|| eprintln!("hint: {}", line.as_ref()));
        }
    }

    /// A warning on stderr (`warning: …`): something the command did not do, or did
    /// otherwise than asked, that it need not fail for. Not with -q; with --json too, as
    /// stderr is not the JSON document.
    pub fn warn(&self, line: impl AsRef<str>) {
        if !self.quiet {
            self.bars.suspend(|| eprintln!("warning: {}", line.as_ref()));
        }
    }

    /// A notice on stderr (`note: …`), shown like a warning.
    pub fn note(&self, line: impl AsRef<str>) {
        if !self.quiet {
            self.bars.suspend(|| eprintln!("note: {}", line.as_ref()));
        }
    }

    /// A failure line on stderr (`LABEL: …`, e.g. `error: …` for a failure the command
    /// reports itself, `refused: …` for one of many items), printed even with -q and
    /// --json, like the error a command ends with.
    pub fn problem(&self, label: &str, line: impl AsRef<str>) {
        self.bars.suspend(|| eprintln!("{label}: {}", line.as_ref()));
    }

    /// Ask `question [y/N]` on the terminal (stderr, whatever -q says: a question must be
    /// seen to be answered); true only for an explicit yes.
    pub fn confirm(&self, question: &str) -> std::io::Result<bool> {
        self.bars.suspend(|| {
            eprint!("{question} [y/N] ");
            std::io::stderr().flush()
        })?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
    }

    /// The one JSON document of a --json run, its keys in alphabetical order (a
    /// `serde_json::Value` keeps its objects sorted, whatever order the fields were declared in).
    pub fn emit<T: Serialize>(&self, value: &T) {
        if self.json {
            let doc = serde_json::to_value(value).expect("report serialises");
            println!("{}", serde_json::to_string_pretty(&doc).expect("report serialises"));
        }
    }

    /// A reporter for the library, drawing through this output's bars.
    pub fn reporter(&self) -> Progress {
        Progress {
            enabled: self.progress,
            quiet: self.quiet,
            multi: self.bars.clone(),
            bars: Mutex::new(Vec::new()),
        }
    }
}

/// Draws the library's progress with indicatif on stderr, through the [`Output`]'s one
/// `MultiProgress`.
pub struct Progress {
    enabled: bool,
    quiet: bool,
    multi: MultiProgress,
    /// The phases shown, innermost last: a phase started inside another (a fetch inside
    /// a checkout) is drawn below it, and work and the end go to the innermost.
    bars: Mutex<Vec<Bar>>,
}

struct Bar {
    bar: ProgressBar,
    files_done: u64,
    files_total: u64,
}

impl Reporter for Progress {
    fn notice(&self, text: &str) {
        if !self.quiet {
            self.multi.suspend(|| eprintln!("{text}"));
        }
    }

    fn start(&self, phase: &str, files: u64, bytes: u64) {
        if !self.enabled {
            return;
        }
        // Drawn nowhere until styled, then through the one MultiProgress.
        let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {msg} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(phase.to_string());
        bar.set_message(format!("0/{}", plural(files, "file")));
        bar.set_length(bytes.max(1));
        let bar = self.multi.add(bar);
        bar.tick();
        self.bars.lock().expect("progress lock").push(Bar { bar, files_done: 0, files_total: files });
    }

    fn advance(&self, files: u64, bytes: u64) {
        if let Some(b) = self.bars.lock().expect("progress lock").last_mut() {
            b.files_done += files;
            b.bar.inc(bytes);
            b.bar.set_message(format!("{}/{}", b.files_done, plural(b.files_total, "file")));
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bars.lock().expect("progress lock").pop() {
            b.bar.finish_and_clear();
            self.multi.remove(&b.bar);
        }
    }
}

/// Bytes for people: 1.5 KiB, 124.3 MiB.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

pub fn plural(n: u64, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

/// `path` as seen from the folder `from` (both absolute): `../data.trove`, `sub/x`.
pub fn relative(from: &Path, path: &Path) -> PathBuf {
    let (from, path): (Vec<_>, Vec<_>) = (from.components().collect(), path.components().collect());
    let common = from.iter().zip(&path).take_while(|(a, b)| a == b).count();
    let mut out: PathBuf = std::iter::repeat_n(Component::ParentDir, from.len() - common).collect();
    out.extend(&path[common..]);
    if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drawn_nowhere() -> Progress {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
        Progress { enabled: true, quiet: true, multi, bars: Mutex::new(Vec::new()) }
    }

    /// (phase, files done, bytes done, message) of each bar shown, outermost first.
    fn shown(p: &Progress) -> Vec<(String, u64, u64, String)> {
        let bars = p.bars.lock().unwrap();
        bars.iter().map(|b| (b.bar.prefix(), b.files_done, b.bar.position(), b.bar.message())).collect()
    }

    #[test]
    fn a_phase_inside_another_adds_a_bar_and_the_outer_one_resumes() {
        let p = drawn_nowhere();
        p.start("fetching", 2, 100);
        p.advance(1, 40);
        p.start("checking out", 3, 10);
        p.advance(1, 5);
        assert_eq!(
            shown(&p),
            [
                ("fetching".to_string(), 1, 40, "1/2 files".to_string()),
                ("checking out".to_string(), 1, 5, "1/3 files".to_string())
            ]
        );
        p.finish();
        p.advance(1, 60);
        assert_eq!(shown(&p), [("fetching".to_string(), 2, 100, "2/2 files".to_string())]);
        p.finish();
        assert!(shown(&p).is_empty());
        // Work or an end with no phase shown is ignored.
        p.advance(1, 1);
        p.finish();
        assert!(shown(&p).is_empty());
    }

    #[test]
    fn no_bar_without_a_terminal_or_with_quiet_or_json() {
        for (json, quiet, no_progress) in [(true, false, false), (false, true, false), (false, false, true)] {
            let p = Output::new(json, quiet, 0, no_progress).reporter();
            p.start("pushing", 1, 1);
            assert!(shown(&p).is_empty(), "{json} {quiet} {no_progress}");
        }
    }
}
