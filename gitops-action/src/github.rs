//! GitHub Actions plumbing shared by the commands: step outputs
//! (`GITHUB_OUTPUT`), the job summary (`GITHUB_STEP_SUMMARY`) and warnings.

use std::hash::{BuildHasher, Hasher};
use std::io::Write;

use anyhow::Context;

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

/// Appends `outputs` to the file named by `GITHUB_OUTPUT`. Returns whether
/// that variable was set (outside GitHub Actions, nothing is written).
pub fn write_outputs(outputs: &[(&str, String)]) -> anyhow::Result<bool> {
    append_to_env_file("GITHUB_OUTPUT", &format_outputs(outputs, delimiter))
}

/// Appends `markdown` to the job summary (`GITHUB_STEP_SUMMARY`). Returns
/// whether that variable was set.
pub fn append_summary(markdown: &str) -> anyhow::Result<bool> {
    let mut text = markdown.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    append_to_env_file("GITHUB_STEP_SUMMARY", &text)
}

/// Prints a warning to standard error, plus a `::warning::` annotation in GitHub Actions.
pub fn warning(message: &str, color: bool) {
    eprintln!(
        "{} {message}",
        crate::output::paint("warning:", "1;33", color)
    );
    if crate::output::in_github_actions() {
        crate::output::workflow_command(&format!(
            "::warning::{}",
            crate::output::escape_data(message)
        ));
    }
}

fn append_to_env_file(var: &str, text: &str) -> anyhow::Result<bool> {
    let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) else {
        return Ok(false);
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {var} ({})", path.to_string_lossy()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {var} ({})", path.to_string_lossy()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        expect_test::expect![[r#"
            has-changes=true
            matrix={"include":[]}
            notes<<EOF_2
            a
            EOF_1
            b
            EOF_2
        "#]]
        .assert_eq(&text);
    }

    #[test]
    fn delimiters_are_random() {
        let (a, b) = (delimiter(), delimiter());
        assert_ne!(a, b);
        assert!(a.starts_with("ghadelimiter_") && a.len() == "ghadelimiter_".len() + 32);
    }
}
