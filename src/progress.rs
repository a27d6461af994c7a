//! How the library reports progress without knowing about terminals.

/// Called by long operations; the CLI draws it, tests ignore it.
pub trait Reporter: Sync {
    /// A one-line notice (e.g. waiting for a lock).
    fn notice(&self, _text: &str) {}
    /// A phase begins with this much work in total.
    fn start(&self, _phase: &str, _files: u64, _bytes: u64) {}
    /// Some of the work is done.
    fn advance(&self, _files: u64, _bytes: u64) {}
    /// The phase ended.
    fn finish(&self) {}
}

/// Reports nothing.
pub struct Silent;

impl Reporter for Silent {}
