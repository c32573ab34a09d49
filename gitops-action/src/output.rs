//! Shared output helpers: colour, diagnostics, GitHub annotations.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};

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

/// Secrets that must never be printed (the GitHub token, webhook URLs):
/// [`write_out`] and [`write_err`] redact them from everything.
static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether each stream's current line holds only whitespace so far
/// (stdout, stderr): the runner trims leading whitespace before it looks
/// for `::`.
static LINE_START: Mutex<[bool; 2]> = Mutex::new([true, true]);

/// Registers a secret: from now on it is redacted from everything printed.
pub fn add_secret(secret: &str) {
    if secret.trim().is_empty() {
        return;
    }
    let mut all = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    if !all.iter().any(|s| s == secret) {
        all.push(secret.to_string());
    }
}

/// Removes every registered secret from `text` (see [`add_secret`]).
pub fn redact(text: &str) -> String {
    let all = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    if all.is_empty() {
        return text.to_string();
    }
    gitops_core::text::redact(text, &all)
}

/// Prints `text` to standard output (what `print!` and `println!` do in
/// this crate): secrets redacted and, in GitHub Actions, no line able to
/// begin a workflow command. Write errors (a closed pipe) are ignored.
pub fn write_out(text: &str) {
    let text = prepare(text, 0, in_github_actions());
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// [`write_out`] for standard error (`eprint!`, `eprintln!`).
pub fn write_err(text: &str) {
    let text = prepare(text, 1, in_github_actions());
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Prints a workflow command we mean, such as `::error file=…::…`, as it
/// is. Build it with [`escape_data`] and [`escape_property`].
pub fn workflow_command(line: &str) {
    let line = redact(line);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.trim_end_matches(['\r', '\n']));
    let _ = out.flush();
    LINE_START.lock().unwrap_or_else(PoisonError::into_inner)[0] = true;
}

/// [`workflow_command`] on standard error.
pub fn workflow_command_err(line: &str) {
    let line = redact(line);
    let _ = writeln!(
        std::io::stderr().lock(),
        "{}",
        line.trim_end_matches(['\r', '\n'])
    );
    LINE_START.lock().unwrap_or_else(PoisonError::into_inner)[1] = true;
}

fn prepare(text: &str, stream: usize, actions: bool) -> String {
    let text = redact(text);
    if !actions {
        return text;
    }
    let mut state = LINE_START.lock().unwrap_or_else(PoisonError::into_inner);
    neutralize(&text, &mut state[stream])
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
}
