//! GitHub Actions formats, as text: step outputs (`GITHUB_OUTPUT`),
//! workflow commands (`::error file=…::…`) and their escaping, and the
//! neutralising of text that would otherwise begin a workflow command.
//! Writing them (files, standard output) is the caller's.
//!
//! ```
//! use gitops_core::actions::{escape_data, format_outputs};
//!
//! assert_eq!(escape_data("50%\nx"), "50%25%0Ax");
//! let text = format_outputs(&[("changed", "true".to_string())], || "EOF".into());
//! assert_eq!(text, "changed=true\n");
//! ```

use std::hash::{BuildHasher, Hasher};

use crate::problem::{Problem, Severity};

/// A random heredoc delimiter such as `ghadelimiter_3f2a…`, as the runner's
/// own toolkit uses, so a value can never end the heredoc early.
pub fn delimiter() -> String {
    let mut hex = String::new();
    for i in 0..2u64 {
        // Each RandomState is seeded randomly; mix in time and pid for good measure.
        let mut h = std::hash::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u32(std::process::id());
        if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(t.as_nanos());
        }
        hex.push_str(&format!("{:016x}", h.finish()));
    }
    format!("ghadelimiter_{hex}")
}

/// Renders step outputs in the `GITHUB_OUTPUT` file format: `name=value`
/// for one-line values, a heredoc with a delimiter from `delim` otherwise.
pub fn format_outputs(outputs: &[(&str, String)], mut delim: impl FnMut() -> String) -> String {
    let mut out = String::new();
    for (name, value) in outputs {
        if value.contains('\n') || value.contains('\r') {
            let mut d = delim();
            while value.contains(&d) {
                d = delim();
            }
            out.push_str(&format!("{name}<<{d}\n{value}\n{d}\n"));
        } else {
            out.push_str(&format!("{name}={value}\n"));
        }
    }
    out
}

/// `text` with no line able to begin a workflow command: the runner reads
/// a line as a command when it starts with `::` after leading whitespace, or
/// when it holds `##[` anywhere (the old syntax). Such a line's first `:`
/// becomes `%3A`, and `##[` becomes `##%5B`: the text stays readable, the
/// runner ignores it. `blank` says whether the line before `text` held only
/// whitespace, and is updated for the next call. CR and LF both end a line.
pub fn neutralize(text: &str, blank: &mut bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\r' => {
                *blank = true;
                out.push(c);
            }
            ':' if *blank && chars.peek().is_none_or(|n| *n == ':') => {
                *blank = false;
                out.push_str("%3A");
            }
            '#' if out.ends_with('#') && chars.peek() == Some(&'[') => {
                chars.next();
                out.push_str("#%5B");
            }
            c => {
                if !c.is_whitespace() {
                    *blank = false;
                }
                out.push(c);
            }
        }
    }
    out
}

/// Escapes a workflow-command message (`%`, CR, LF).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow-command property (`%`, CR, LF, `:`, `,`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// A `::error file=…,line=…,col=…::message` annotation for `p`, paths relative to `prefix`.
pub fn annotation(p: &Problem, prefix: &str) -> String {
    let level = match p.severity {
        Severity::Error => "error",
        _ => "warning",
    };
    let file = if prefix.is_empty() {
        p.file.clone()
    } else {
        format!("{prefix}/{}", p.file)
    };
    let mut props = vec![format!("file={}", escape_property(&file))];
    if let Some(l) = p.line {
        props.push(format!("line={l}"));
    }
    if let Some(c) = p.column {
        props.push(format!("col={c}"));
    }
    format!("::{level} {}::{}", props.join(","), escape_data(&p.message))
}

/// The path of the GitOps root `root` relative to the workspace (the
/// repository checkout, `GITHUB_WORKSPACE`), which annotations need; empty
/// when there is no workspace or `root` is not inside it.
pub fn workspace_prefix(root: &std::path::Path, workspace: Option<&std::path::Path>) -> String {
    let Some(ws) = workspace else {
        return String::new();
    };
    let (Ok(ws), Ok(root)) = (ws.canonicalize(), root.canonicalize()) else {
        return String::new();
    };
    root.strip_prefix(ws)
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .unwrap_or_default()
}

/// The web page of this workflow run (where the step summary is), from
/// `GITHUB_SERVER_URL`, `GITHUB_REPOSITORY` and `GITHUB_RUN_ID` read
/// through `var`; `None` outside GitHub Actions.
pub fn run_url(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let var = |n: &str| var(n).filter(|v| !v.is_empty());
    Some(format!(
        "{}/{}/actions/runs/{}",
        var("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into()),
        var("GITHUB_REPOSITORY")?,
        var("GITHUB_RUN_ID")?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_line_can_begin_a_workflow_command() {
        let mut blank = true;
        let text =
            "error: unknown key `a\n::error::boom` and\r  ::add-mask::x\nok: a::b ##[error]y\n";
        let out = neutralize(text, &mut blank);
        assert_eq!(
            out,
            "error: unknown key `a\n%3A:error::boom` and\r  %3A:add-mask::x\nok: a::b ##%5Berror]y\n"
        );
        assert!(blank);
        // A line split over two prints.
        let mut blank = true;
        let first = neutralize("  ", &mut blank);
        let second = neutralize("::warning::x\n", &mut blank);
        assert_eq!(format!("{first}{second}"), "  %3A:warning::x\n");
        let mut blank = false;
        assert_eq!(neutralize("::x", &mut blank), "::x");
        for line in out.split(['\n', '\r']) {
            assert!(!line.trim_start().starts_with("::"), "{line}");
            assert!(!line.contains("##["), "{line}");
        }
    }

    #[test]
    fn annotations_escape() {
        let p = Problem::error("a,b:c.yaml", "50% bad\nline").at(Some((3, 4)));
        assert_eq!(
            annotation(&p, ""),
            "::error file=a%2Cb%3Ac.yaml,line=3,col=4::50%25 bad%0Aline"
        );
        assert_eq!(
            annotation(&p, "x"),
            "::error file=x/a%2Cb%3Ac.yaml,line=3,col=4::50%25 bad%0Aline"
        );
    }

    #[test]
    fn outputs_use_heredocs_for_multiline_values() {
        let mut n = 0;
        let text = format_outputs(
            &[
                ("has-changes", "true".into()),
                ("matrix", "{\"include\":[]}".into()),
                ("notes", "a\nEOF_1\nb".into()),
            ],
            || {
                n += 1;
                format!("EOF_{n}")
            },
        );
        // EOF_1 occurs in the value, so the next delimiter is taken.
        assert_eq!(
            text,
            "has-changes=true\nmatrix={\"include\":[]}\nnotes<<EOF_2\na\nEOF_1\nb\nEOF_2\n"
        );
    }

    #[test]
    fn delimiters_are_random() {
        let (a, b) = (delimiter(), delimiter());
        assert_ne!(a, b);
        assert!(a.starts_with("ghadelimiter_") && a.len() == "ghadelimiter_".len() + 32);
    }
}
