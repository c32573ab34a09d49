//! Markdown for pull-request comments, job summaries and issues: the one
//! place that escapes text from a repository or AWS for markdown and HTML.
//! Every renderer of the crate goes through these helpers.
//!
//! ```
//! use gitops_core::markdown::{cell, code, html};
//!
//! assert_eq!(html("<b>&"), "&lt;b&gt;&amp;");
//! assert_eq!(code("a|b"), "`a\\|b`");
//! assert_eq!(code("a`b"), "<code>a`b</code>");
//! assert_eq!(cell("x | <y>\nz"), "x \\| &lt;y&gt; z");
//! ```

/// Escapes text for HTML, in content and in quoted attributes alike: the
/// crate's one HTML escaper (markdown output and the status board).
pub fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Inline code that survives a table cell: one line, `|` escaped, and a
/// value holding a backtick as an HTML `<code>` element.
pub fn code(s: &str) -> String {
    let one_line = s.replace(['\n', '\r'], " ");
    let c = if one_line.contains('`') {
        format!("<code>{}</code>", html(&one_line))
    } else {
        format!("`{one_line}`")
    };
    c.replace('|', "\\|")
}

/// Plain text that survives a table cell: one line, HTML escaped, `|`
/// escaped.
pub fn cell(s: &str) -> String {
    html(&s.replace(['\n', '\r'], " ")).replace('|', "\\|")
}

/// A commit id as a code span of its first 12 characters
/// ([`crate::text::short_commit`]), or `fallback` as plain text without one.
pub fn commit(c: Option<&str>, fallback: &str) -> String {
    match c {
        Some(c) => code(crate::text::short_commit(c)),
        None => fallback.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_stay_in_their_column() {
        assert_eq!(cell("a|b\r\nc"), "a\\|b  c");
        assert_eq!(code("x\ny|`"), "<code>x y\\|`</code>");
        assert_eq!(commit(Some("0123456789abcdef"), "-"), "`0123456789ab`");
        assert_eq!(commit(None, "(none)"), "(none)");
    }
}
