//! Shared output helpers: colour, diagnostics, GitHub annotations.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};

use gitops_core::actions::neutralize;
pub use gitops_core::actions::{annotation, escape_data};
pub use gitops_core::render::{paint, problem as render_problem};

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

/// Removes every registered secret from `text` (see [`add_secret`]); no
/// copy when none is registered.
pub fn redact(text: &str) -> Cow<'_, str> {
    let all = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    if all.is_empty() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(gitops_core::text::redact(text, &all))
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

fn prepare(text: &str, stream: usize, actions: bool) -> Cow<'_, str> {
    let text = redact(text);
    if !actions {
        return text;
    }
    let mut state = LINE_START.lock().unwrap_or_else(PoisonError::into_inner);
    Cow::Owned(neutralize(&text, &mut state[stream]))
}

/// Prints `value` as pretty JSON to standard output.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    // Straight to write_out: `println!` would copy the text once more (a
    // detection of 1,000 environments is over a megabyte).
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write_out(&text);
    Ok(())
}
