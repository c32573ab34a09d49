//! Path globs (`shared`, `ignore`) with `*` that never crosses `/`.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// Compiles one glob the way this crate matches paths.
pub(crate) fn compile(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).build()
}

/// Compiles a list of globs, skipping (already reported) bad ones.
pub(crate) fn set(patterns: &[String]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        if let Ok(g) = compile(p) {
            b.add(g);
        }
    }
    b.build().unwrap_or_else(|_| GlobSet::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_does_not_cross_slash() {
        let s = set(&["common/*".into(), "**/*.md".into()]);
        assert!(s.is_match("common/a.yaml"));
        assert!(!s.is_match("common/a/b.yaml"));
        assert!(s.is_match("README.md"));
        assert!(s.is_match("environments/dev/NOTES.md"));
        assert!(compile("a/[").is_err());
    }
}
