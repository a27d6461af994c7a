//! The Python packages installed for the interpreter a run used, as `name==version` lines
//! (what `pip freeze` prints for ordinary installs), read from the environment's
//! `*.dist-info/METADATA` and `*.egg-info/PKG-INFO` headers: no pip is run, and only the
//! headers of each file are read, so thousands of packages take milliseconds.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the interpreter may take to name its `sys.path`.
const SYS_PATH_TIMEOUT: Duration = Duration::from_secs(5);

/// The installed packages, sorted by name (case-insensitively): those of `$VIRTUAL_ENV`,
/// else of `$CONDA_PREFIX`, else of the `python3` on PATH. Empty when none is found.
pub fn installed() -> Vec<String> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let dirs = match var("VIRTUAL_ENV").or_else(|| var("CONDA_PREFIX")) {
        Some(prefix) => prefix_site_packages(&prefix),
        None => interpreter_site_packages("python3"),
    };
    read_site_packages(&dirs)
}

/// `PREFIX/lib/python3.X/site-packages` (and `lib64`), as venvs and conda lay them out.
pub fn prefix_site_packages(prefix: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for lib in ["lib", "lib64"] {
        let Ok(entries) = fs::read_dir(prefix.join(lib)) else { continue };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("python"))
            .map(|e| e.path().join("site-packages"))
            .filter(|p| p.is_dir())
            .collect();
        found.sort();
        for p in found {
            // lib64 is often a symlink to lib: the same folder once.
            let same = fs::canonicalize(&p).ok();
            if !out.iter().any(|o: &PathBuf| fs::canonicalize(o).ok() == same) {
                out.push(p);
            }
        }
    }
    out
}

/// The `site-packages` / `dist-packages` folders on the `sys.path` of `name` on PATH, in
/// its order; none when it is not there or does not answer in time.
fn interpreter_site_packages(name: &str) -> Vec<PathBuf> {
    let Ok(mut child) = Command::new(name)
        .args(["-c", "import sys\nfor p in sys.path: print(p)"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        return Vec::new();
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() < SYS_PATH_TIMEOUT => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Vec::new();
            }
        }
    }
    let Ok(out) = child.wait_with_output() else { return Vec::new() };
    if !out.status.success() {
        return Vec::new();
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .filter(|p| p.file_name().is_some_and(|n| n == "site-packages" || n == "dist-packages") && p.is_dir())
        .collect()
}

/// `name==version` of every distribution in `dirs`; where two folders hold the same
/// name, the first one's (as Python's import order has it).
pub fn read_site_packages(dirs: &[PathBuf]) -> Vec<String> {
    let mut found: BTreeMap<String, (String, String)> = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = fs::read_dir(dir) else { continue };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            let path = entry.path();
            let metadata = if file_name.ends_with(".dist-info") {
                path.join("METADATA")
            } else if file_name.ends_with(".egg-info") {
                // A folder with PKG-INFO, or (distutils) the PKG-INFO text itself.
                if path.is_dir() { path.join("PKG-INFO") } else { path }
            } else {
                continue;
            };
            let Some((name, version)) = read_metadata(&metadata) else { continue };
            found.entry(normalize(&name)).or_insert((name, version));
        }
    }
    let mut out: Vec<(String, String)> =
        found.into_iter().map(|(key, (name, v))| (key, format!("{name}=={v}"))).collect();
    out.sort();
    out.into_iter().map(|(_, line)| line).collect()
}

/// The `Name:` and `Version:` headers of a METADATA or PKG-INFO file: the headers only,
/// up to the first blank line (the long description after it can be large).
pub fn read_metadata(path: &Path) -> Option<(String, String)> {
    let file = fs::File::open(path).ok()?;
    parse_metadata(BufReader::new(file))
}

fn parse_metadata(reader: impl BufRead) -> Option<(String, String)> {
    let (mut name, mut version) = (None, None);
    for line in reader.split(b'\n') {
        let line = line.ok()?;
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once(':') {
            let value = value.trim();
            match key.to_ascii_lowercase().as_str() {
                "name" if name.is_none() && !value.is_empty() => name = Some(value.to_string()),
                "version" if version.is_none() && !value.is_empty() => version = Some(value.to_string()),
                _ => {}
            }
        }
        if name.is_some() && version.is_some() {
            break;
        }
    }
    Some((name?, version?))
}

/// PEP 503's normalised name: lowercase, runs of `-_.` as one `-`.
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_give_name_and_version() {
        let text = "Metadata-Version: 2.1\r\nName: Foo_Bar\r\nVersion: 1.2.post3\r\nSummary: x\r\n\r\nName: not-this\n";
        assert_eq!(parse_metadata(text.as_bytes()), Some(("Foo_Bar".into(), "1.2.post3".into())));
        // Only the headers count: a Version in the description does not.
        assert_eq!(parse_metadata("Name: a\n\nVersion: 1\n".as_bytes()), None);
        assert_eq!(parse_metadata("".as_bytes()), None);
        assert_eq!(parse_metadata("version: 2\nname: low\n".as_bytes()), Some(("low".into(), "2".into())));
    }

    #[test]
    fn a_venv_lists_its_packages() {
        let d = tempfile::tempdir().unwrap();
        let site = d.path().join("lib/python3.11/site-packages");
        let write = |rel: &str, text: &str| {
            let p = site.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        };
        write("foo-1.2.dist-info/METADATA", "Metadata-Version: 2.1\nName: foo\nVersion: 1.2\n\nlong text\n");
        write("Zed-0.1.dist-info/METADATA", "Name: Zed\nVersion: 0.1\n");
        write("old.egg-info/PKG-INFO", "Name: old\nVersion: 0.9\n");
        write("legacy-2.0-py3.11.egg-info", "Metadata-Version: 1.0\nName: legacy\nVersion: 2.0\n");
        write("broken-1.dist-info/RECORD", "");
        write("foo/__init__.py", "");
        let dirs = prefix_site_packages(d.path());
        assert_eq!(dirs, std::slice::from_ref(&site));
        assert_eq!(read_site_packages(&dirs), ["foo==1.2", "legacy==2.0", "old==0.9", "Zed==0.1"]);
        // The first folder wins for a name in two.
        let other = d.path().join("other");
        fs::create_dir_all(other.join("FOO-9.dist-info")).unwrap();
        fs::write(other.join("FOO-9.dist-info/METADATA"), "Name: FOO\nVersion: 9\n").unwrap();
        assert_eq!(read_site_packages(&[other, site])[0], "FOO==9");
    }

    #[test]
    fn many_packages_are_quick() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..3000 {
            let p = d.path().join(format!("pkg{i}-1.0.dist-info"));
            fs::create_dir(&p).unwrap();
            let body = "x".repeat(10_000);
            fs::write(p.join("METADATA"), format!("Name: pkg{i}\nVersion: 1.0\n\n{body}\n")).unwrap();
        }
        let started = Instant::now();
        assert_eq!(read_site_packages(&[d.path().to_path_buf()]).len(), 3000);
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }
}
