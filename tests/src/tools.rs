//! External tools the tests use (actionlint, shellcheck, zizmor,
//! check-jsonschema, act): from the venv `scripts/test` fills
//! (`.tools/venv/bin`), else from PATH.
//!
//! Like [`crate::moto`], a missing tool skips the test locally and fails it
//! when `CI=true`.

use std::path::PathBuf;

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize().unwrap_or(root)
}

/// Where `name` is: `.tools/venv/bin/name`, else on PATH.
pub fn find(name: &str) -> Option<PathBuf> {
    let venv = repo_root().join(".tools/venv/bin").join(name);
    if venv.is_file() {
        return Some(venv);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// [`find`], or `None` with a note when the tool is missing outside CI.
/// Panics when it is missing in CI.
pub fn require(name: &str) -> Option<PathBuf> {
    if let Some(p) = find(name) {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{name} is not installed; scripts/test installs it into .tools/venv (scripts/tools.sh)"
        );
    }
    eprintln!("SKIPPED: {name} not found; run scripts/test to install it into .tools/venv");
    None
}
