//! GitHub Actions plumbing shared by the commands: step outputs
//! (`GITHUB_OUTPUT`), the job summary (`GITHUB_STEP_SUMMARY`) and warnings.

use std::io::Write;

use anyhow::Context;
use gitops_core::actions::delimiter;
pub use gitops_core::actions::format_outputs;

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
