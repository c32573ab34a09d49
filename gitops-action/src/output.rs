//! Shared output helpers: colour, diagnostics, GitHub annotations.

use std::io::IsTerminal;

use gitops_core::{Problem, Severity};

use crate::ColorChoice;

pub fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
        }
    }
}

pub fn paint(s: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// Prints an error and its causes to standard error, with the invalid-repo problems listed.
pub fn print_error(e: &anyhow::Error, color: bool) {
    eprintln!("{} {e}", paint("error:", "1;31", color));
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if let Some(gitops_core::Error::Invalid(problems)) = e.downcast_ref::<gitops_core::Error>() {
        for p in problems {
            eprintln!("  {}", render_problem(p, color));
        }
    }
}

pub fn render_problem(p: &Problem, color: bool) -> String {
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

/// Whether we run inside GitHub Actions.
pub fn in_github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
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

/// Prints `value` as pretty JSON to standard output.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
