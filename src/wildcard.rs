//! Wildcard matching shared by `~/.ssh/config` host patterns (`*`, `?`) and the
//! `LIKE` operator of `exp list --filter` (`%`, `_`).

/// Whether `text` matches `pattern`, where `any` stands for any run of characters
/// (including none) and `one` for exactly one character. Linear backtracking to the last
/// `any`, so no pattern is exponential.
pub fn matches(text: &[char], pattern: &[char], any: char, one: char) -> bool {
    let (t, p) = (text, pattern);
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == one || (p[pi] != any && p[pi] == t[ti])) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == any {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == any)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(t: &str, p: &str) -> bool {
        matches(&t.chars().collect::<Vec<_>>(), &p.chars().collect::<Vec<_>>(), '*', '?')
    }

    #[test]
    fn wildcards() {
        assert!(m("data.example.com", "*.example.com"));
        assert!(m("abc", "a?c"));
        assert!(m("", "*"));
        assert!(!m("abc", "a?"));
        assert!(m("aaab", "*a*b"));
        assert!(!m("ab", "*c*"));
    }
}
