//! Merging pointer files: git's conflict markers in a pointer, told apart from bad YAML.

/// A conflict that a git merge left in a pointer file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The line of the first conflict marker.
    pub line: usize,
    pub ours: Side,
    pub theirs: Side,
}

/// One side of a conflict: git's label for it (`HEAD`, a branch) and the `hash` it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    pub label: String,
    pub hash: Option<String>,
}

impl Conflict {
    pub fn describe(&self) -> String {
        let side = |name: &str, s: &Side| {
            let label =
                if s.label.is_empty() || s.label == name { String::new() } else { format!(" ({})", s.label) };
            let hash = s.hash.as_deref().map_or("no hash".to_string(), |h| format!("hash {h}"));
            format!("{name}{label} has {hash}")
        };
        format!("unresolved merge conflict: {}, {}", side("ours", &self.ours), side("theirs", &self.theirs))
    }
}

/// The label after a run of at least 7 `c` (git's conflict-marker-size is 7 by default),
/// if the line is such a marker.
fn marker(line: &str, c: char) -> Option<&str> {
    let rest = line.trim_start_matches(c);
    let run = line.len() - rest.len();
    (run >= 7 && (rest.is_empty() || rest.starts_with(' '))).then(|| rest.trim())
}

fn is_separator(line: &str) -> bool {
    marker(line, '=').is_some_and(str::is_empty)
}

/// The conflict git's merge left in a pointer's text, if there is one: each side is the
/// text outside the conflicts plus that side's lines (the base's lines of a diff3-style
/// conflict are left out).
pub fn conflict_in(text: &str) -> Option<Conflict> {
    enum In {
        Both,
        Ours,
        Base,
        Theirs,
    }
    let mut at = In::Both;
    let mut first = None;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut ours_label, mut theirs_label) = (String::new(), String::new());
    for (i, line) in text.lines().enumerate() {
        let start = marker(line, '<');
        let base = marker(line, '|');
        let end = marker(line, '>');
        if start.is_some() || base.is_some() || end.is_some() || is_separator(line) {
            first.get_or_insert(i + 1);
        }
        match at {
            In::Both => match start {
                Some(label) => {
                    if ours_label.is_empty() {
                        ours_label = label.to_string();
                    }
                    at = In::Ours;
                }
                None => {
                    ours.push(line);
                    theirs.push(line);
                }
            },
            In::Ours if base.is_some() => at = In::Base,
            In::Ours | In::Base if is_separator(line) => at = In::Theirs,
            In::Ours => ours.push(line),
            In::Base => {}
            In::Theirs => match end {
                Some(label) => {
                    if theirs_label.is_empty() {
                        theirs_label = label.to_string();
                    }
                    at = In::Both;
                }
                None => theirs.push(line),
            },
        }
    }
    let hash = |lines: &[&str]| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix("hash:").map(|h| h.trim().to_string()))
            .filter(|h| !h.is_empty())
    };
    first.map(|line| Conflict {
        line,
        ours: Side { label: ours_label, hash: hash(&ours) },
        theirs: Side { label: theirs_label, hash: hash(&theirs) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn finds_both_sides_hashes() {
        let text = format!(
            "# trove pointer\nversion: 1\npath: data\nkind: dir\n<<<<<<< HEAD\nhash: {A}\nsize: 4\nfiles: 2\n=======\nhash: {B}\nsize: 5\nfiles: 3\n>>>>>>> feature\n"
        );
        let c = conflict_in(&text).unwrap();
        assert_eq!(c.line, 5);
        assert_eq!(c.ours, Side { label: "HEAD".into(), hash: Some(A.into()) });
        assert_eq!(c.theirs, Side { label: "feature".into(), hash: Some(B.into()) });
    }

    #[test]
    fn diff3_style_and_a_shared_hash_line() {
        let text = format!(
            "version: 1\nhash: {A}\n<<<<<<< ours\nsize: 1\n||||||| base\nsize: 0\n=======\nsize: 2\n>>>>>>> theirs\n"
        );
        let c = conflict_in(&text).unwrap();
        assert_eq!((c.ours.hash.as_deref(), c.theirs.hash.as_deref()), (Some(A), Some(A)));
        assert_eq!(c.theirs.label, "theirs");
    }

    #[test]
    fn plain_pointers_and_lone_markers() {
        assert_eq!(conflict_in(&format!("version: 1\nhash: {A}\n")), None);
        assert_eq!(conflict_in("version: 1\n=======\n").map(|c| c.line), Some(2));
        assert_eq!(conflict_in("path: '<<<<<<< x'\n"), None);
    }
}
