//! Human, JSON and quiet output; progress bars on a terminal only.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::progress::Reporter;
pub use crate::tracked::{quote_name, shell_quote};

pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
    progress: bool,
}

impl Output {
    pub fn new(json: bool, quiet: bool, verbose: u8, no_progress: bool) -> Self {
        let progress = !json && !quiet && !no_progress && std::io::stderr().is_terminal();
        Output { json, quiet, verbose, progress }
    }

    /// A line of the human report on stdout (not with --json or -q).
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.json && !self.quiet {
            println!("{}", line.as_ref());
        }
    }

    /// Detail shown with -v.
    pub fn detail(&self, line: impl AsRef<str>) {
        if !self.json && !self.quiet && self.verbose > 0 {
            println!("{}", line.as_ref());
        }
    }

    /// A hint on stderr, for humans only.
    pub fn hint(&self, line: impl AsRef<str>) {
        if !self.json && !self.quiet {
            eprintln!("hint: {}", line.as_ref());
        }
    }

    /// A warning on stderr (`warning: …`): something the command did not do, or did
    /// otherwise than asked, that it need not fail for. Not with -q; with --json too, as
    /// stderr is not the JSON document.
    pub fn warn(&self, line: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("warning: {}", line.as_ref());
        }
    }

    /// A notice on stderr (`note: …`), shown like a warning.
    pub fn note(&self, line: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("note: {}", line.as_ref());
        }
    }

    /// A failure line on stderr (`LABEL: …`, e.g. `error: …` for a failure the command
    /// reports itself, `refused: …` for one of many items), printed even with -q and
    /// --json, like the error a command ends with.
    pub fn problem(&self, label: &str, line: impl AsRef<str>) {
        eprintln!("{label}: {}", line.as_ref());
    }

    /// Ask `question [y/N]` on the terminal (stderr, whatever -q says: a question must be
    /// seen to be answered); true only for an explicit yes.
    pub fn confirm(&self, question: &str) -> std::io::Result<bool> {
        eprint!("{question} [y/N] ");
        std::io::stderr().flush()?;
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

    pub fn reporter(&self) -> Progress {
        Progress { enabled: self.progress, quiet: self.quiet, bar: Mutex::new(None) }
    }
}

/// Draws the library's progress with indicatif on stderr.
pub struct Progress {
    enabled: bool,
    quiet: bool,
    bar: Mutex<Option<Bar>>,
}

struct Bar {
    bar: ProgressBar,
    files_done: u64,
    files_total: u64,
}

impl Reporter for Progress {
    fn notice(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    fn start(&self, phase: &str, files: u64, bytes: u64) {
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
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
        *self.bar.lock().expect("progress lock") = Some(Bar { bar, files_done: 0, files_total: files });
    }

    fn advance(&self, files: u64, bytes: u64) {
        if let Some(b) = self.bar.lock().expect("progress lock").as_mut() {
            b.files_done += files;
            b.bar.inc(bytes);
            b.bar.set_message(format!("{}/{}", b.files_done, plural(b.files_total, "file")));
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.lock().expect("progress lock").take() {
            b.bar.finish_and_clear();
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
