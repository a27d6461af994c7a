//! YAML from files anyone can write (pointers, config, a remote's layout file, params
//! files): flow collections nested deeper than the parser accepts are refused before
//! parsing, because libyaml's scanner takes time quadratic in that depth.

/// serde_yaml's own recursion limit: a document nested deeper fails to parse anyway.
pub const MAX_DEPTH: usize = 128;

/// The line (1-based) where `[`/`{` nesting first goes past [`MAX_DEPTH`], if it does.
/// Brackets inside strings count too: an upper bound is enough to refuse a document.
pub fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut line = 1;
    for b in text.bytes() {
        match b {
            b'\n' => line += 1,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(line);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// The message for a document [`too_deep`] refuses.
pub fn too_deep_message() -> String {
    format!("not valid YAML: nested more than {MAX_DEPTH} levels deep")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth() {
        assert_eq!(too_deep("a: [1, {b: [2]}]\nc: '[[['\n"), None);
        assert_eq!(too_deep(&"[]".repeat(10_000)), None);
        assert_eq!(too_deep(&format!("a: 1\nb: {}", "[".repeat(MAX_DEPTH + 1))), Some(2));
        assert_eq!(too_deep(&"{a: ".repeat(MAX_DEPTH)), None);
    }
}
