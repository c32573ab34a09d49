//! Text rendering shared by every report: ANSI colour, padded tables,
//! coloured diffs and problem lines. Markdown escaping is in
//! `markdown`; each report renders itself with these.
//!
//! ```
//! use gitops_core::render::{paint, table};
//!
//! assert_eq!(paint("ok", "32", false), "ok");
//! assert_eq!(paint("ok", "32", true), "\x1b[32mok\x1b[0m");
//! let t = table(&["NAME", "STACK"], &[["dev".to_string(), "dev-app".to_string()]]);
//! assert_eq!(t, "NAME  STACK\ndev   dev-app\n");
//! ```

use crate::problem::{Problem, Severity};

/// `s` in the ANSI style `code` (such as `1;31`, bold red) when `color`.
pub fn paint(s: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// A plain text table with columns padded to their widest cell.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// A markdown table: a header row, its rule and one row per entry. Cells
/// are written as given: escape them with the crate's `markdown` helpers.
pub fn markdown_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut out = format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(N));
    for r in rows {
        out.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    out
}

/// A unified diff with `+` lines green, `-` lines red and hunk headers cyan.
pub fn color_diff(diff: &str, color: bool) -> String {
    if !color {
        return diff.to_string();
    }
    diff.split_inclusive('\n')
        .map(|line| {
            let (body, nl) = match line.strip_suffix('\n') {
                Some(b) => (b, "\n"),
                None => (line, ""),
            };
            let code = if body.starts_with("+++") || body.starts_with("---") {
                "1"
            } else if body.starts_with('+') {
                "32"
            } else if body.starts_with('-') {
                "31"
            } else if body.starts_with("@@") {
                "36"
            } else {
                return line.to_string();
            };
            format!("{}{nl}", paint(body, code, true))
        })
        .collect()
}

/// A problem as `file:line:col: error: message`, its severity coloured.
pub fn problem(p: &Problem, color: bool) -> String {
    let text = p.to_string();
    if !color {
        return text;
    }
    match p.severity {
        Severity::Error => text.replacen(
            ": error:",
            &format!(": {}:", paint("error", "1;31", true)),
            1,
        ),
        _ => text.replacen(
            ": warning:",
            &format!(": {}:", paint("warning", "1;33", true)),
            1,
        ),
    }
}

/// The table of `gitops envs`: one row per environment, then (in text) a
/// line with the count and the repository id; `markdown` for a markdown table.
pub fn environments(repo: &crate::Repository, markdown: bool) -> String {
    let header = [
        "ENVIRONMENT",
        "STACK",
        "PIPELINE",
        "REGION",
        "ACCOUNT",
        "PROTECTED",
        "PARAMETERS",
    ];
    let rows: Vec<[String; 7]> = repo
        .environments
        .iter()
        .map(|e| {
            let parameters: Vec<String> = e
                .parameters
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            [
                e.name.clone(),
                e.stack.clone(),
                e.pipeline.clone().unwrap_or_else(|| "-".into()),
                e.region.clone(),
                e.account.clone().unwrap_or_else(|| "-".into()),
                if e.protected { "yes" } else { "no" }.into(),
                parameters.join(" "),
            ]
        })
        .collect();
    if markdown {
        let rows: Vec<[String; 7]> = rows
            .iter()
            .map(|r| r.clone().map(|c| crate::markdown::cell(&c)))
            .collect();
        return markdown_table(&header, &rows);
    }
    let count = rows.len();
    let id = match &repo.id {
        Some(id) => format!("repository id `{id}`"),
        None => "no repository id (set `id:` in gitops.yaml)".to_string(),
    };
    format!("{}{count} environment(s), {id}\n", table(&header, &rows))
}

/// What `gitops validate` prints: each problem, then `valid:` or
/// `invalid:` with the counts, for the repository at `root`.
pub fn validation(problems: &[Problem], root: &std::path::Path, color: bool) -> String {
    let mut out: String = problems.iter().map(|p| problem(p, color) + "\n").collect();
    let errors = problems.iter().filter(|p| p.is_error()).count();
    let warnings = problems.len() - errors;
    out.push_str(&if errors == 0 {
        format!(
            "{} {} ({warnings} warning(s))\n",
            paint("valid:", "1;32", color),
            root.display()
        )
    } else {
        format!(
            "{} {errors} error(s), {warnings} warning(s) in {}\n",
            paint("invalid:", "1;31", color),
            root.display()
        )
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_are_coloured_by_line() {
        assert_eq!(
            color_diff("--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n z", true),
            "\x1b[1m--- a\x1b[0m\n\x1b[1m+++ b\x1b[0m\n\x1b[36m@@ -1 +1 @@\x1b[0m\n\x1b[31m-x\x1b[0m\n\x1b[32m+y\x1b[0m\n z"
        );
        assert_eq!(color_diff("-x\n", false), "-x\n");
        assert_eq!(
            markdown_table(&["a", "b"], &[["1".into(), "2".into()]]),
            "| a | b |\n|---|---|\n| 1 | 2 |\n"
        );
    }
}
