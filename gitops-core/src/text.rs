//! Char-safe text helpers: the one place that shortens text that came from
//! AWS, git or files, and that removes secrets from text a remote server
//! echoed.
//!
//! Never slice such text by byte offset (`&s[..12]`): a tag, a commit
//! message or a file may hold multi-byte characters, and a byte offset
//! inside one panics.
//!
//! ```
//! use gitops_core::text::{short_commit, truncate};
//!
//! assert_eq!(short_commit("0123456789abcdef0123456789abcdef01234567"), "0123456789ab");
//! assert_eq!(short_commit("éééééééééééééééé"), "éééééééééééé");
//! assert_eq!(truncate("héllo wörld", 5), "héllo");
//! ```

/// How many characters of a commit id are shown.
pub const SHORT_COMMIT_LEN: usize = 12;

/// The first `max` characters of `s` (all of it when shorter), never
/// splitting a character.
pub fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `s` cut to at most `max` characters, ending with `…` when it was cut.
pub fn truncate_ellipsis(s: &str, max: usize) -> String {
    if truncate(s, max).len() == s.len() {
        s.to_string()
    } else {
        format!("{}…", truncate(s, max.saturating_sub(1)))
    }
}

/// A commit id as people read it: its first [`SHORT_COMMIT_LEN`]
/// characters. Any text is accepted (a tag may hold anything).
pub fn short_commit(commit: &str) -> &str {
    truncate(commit, SHORT_COMMIT_LEN)
}

/// [`short_commit`] of `commit`, or `fallback` without one.
pub fn short_commit_or<'a>(commit: Option<&'a str>, fallback: &'a str) -> &'a str {
    commit.map_or(fallback, short_commit)
}

/// [`short_commit`] of a full 40- or 64-digit hexadecimal id; any other
/// revision (a branch, a tag, `HEAD~2`) unchanged.
pub fn short_rev(rev: &str) -> &str {
    if matches!(rev.len(), 40 | 64) && rev.chars().all(|c| c.is_ascii_hexdigit()) {
        short_commit(rev)
    } else {
        rev
    }
}

/// The host (and port) of a URL, without credentials, path or query: what
/// may be shown of a URL that is a secret.
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.rsplit('@').next().unwrap_or_default()
}

/// What a `NoEcho` parameter value is shown as.
pub const MASK: &str = "****";

/// What replaces a secret in [`redact`].
pub const REDACTED: &str = "<redacted>";

/// `text` with every occurrence of each secret replaced by [`REDACTED`].
///
/// A secret that is a URL (a webhook) is also removed by its path and
/// query, which is where such URLs carry their key, so an echo of the path
/// alone (`POST /services/T0/B0/key failed`) is redacted too. Empty and
/// very short secrets (under 4 characters) are ignored: replacing them would
/// garble the text without protecting anything.
pub fn redact<S: AsRef<str>>(text: &str, secrets: &[S]) -> String {
    let mut out = text.to_string();
    let mut parts: Vec<&str> = Vec::new();
    for s in secrets {
        let s = s.as_ref();
        parts.push(s);
        if let Some((_, rest)) = s.split_once("://") {
            if let Some(i) = rest.find(['/', '?']) {
                parts.push(&rest[i..]);
            }
        }
    }
    // Longest first, so a URL goes before its own path.
    parts.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in parts {
        if p.chars().count() >= 4 && out.contains(p) {
            out = out.replace(p, REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_splits_a_character() {
        // 'é' is 2 bytes: byte 12 falls inside the 7th one.
        let tag = "éééééééééééééééé";
        assert_eq!(short_commit(tag), "éééééééééééé");
        assert_eq!(short_commit("🚀"), "🚀");
        assert_eq!(short_commit(""), "");
        assert_eq!(truncate("a😀b", 2), "a😀");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(truncate_ellipsis("abcdef", 4), "abc…");
        assert_eq!(truncate_ellipsis("abcd", 4), "abcd");
        assert_eq!(truncate_ellipsis("ééééé", 3), "éé…");
        for s in ["", "a", "日本語のタグ", "x\u{301}\u{301}\u{301}y"] {
            for n in 0..8 {
                assert!(s.starts_with(truncate(s, n)));
                assert!(truncate(s, n).chars().count() <= n);
            }
        }
    }

    #[test]
    fn short_rev_shortens_only_commit_ids() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(short_rev(sha), "0123456789ab");
        assert_eq!(short_rev("main"), "main");
        assert_eq!(
            short_rev("ééééééééééééééééééééééééééééééééééééééé"),
            "ééééééééééééééééééééééééééééééééééééééé"
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let token = "ghs_abcdef0123456789";
        let hook = "https://hooks.example.com/services/T0/B0/key123";
        let text =
            format!("bad token {token}; POST {hook} failed; GET /services/T0/B0/key123 failed");
        let out = redact(&text, &[token, hook]);
        assert_eq!(
            out,
            "bad token <redacted>; POST <redacted> failed; GET <redacted> failed"
        );
        assert_eq!(redact("a b c", &["", "b"]), "a b c");
        assert_eq!(redact::<&str>("x", &[]), "x");
        assert_eq!(
            url_host("https://user:pw@hooks.example:8443/a?b"),
            "hooks.example:8443"
        );
    }
}
