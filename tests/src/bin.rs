//! Locates the built `gitops` binary for end-to-end tests.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The path of `target/debug/gitops`, building it once if it is missing, or
/// of `$GITOPS_BIN` when that is set.
pub fn gitops_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        // `GITOPS_BIN` runs the suites against another build, e.g. an older
        // commit's binary, to check that a test fails before its fix.
        if let Some(bin) = std::env::var_os("GITOPS_BIN") {
            let bin = PathBuf::from(bin);
            assert!(bin.is_file(), "GITOPS_BIN={} is not a file", bin.display());
            return bin;
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let bin = target.join("debug").join("gitops");
        // Always ask cargo: it is a no-op when the binary is fresh, and it
        // keeps tests from running a stale binary.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "gitops-action", "--bin", "gitops"])
            .current_dir(&root)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the gitops binary failed");
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

/// A `Command` for the `gitops` binary with a clean environment for AWS and GitHub.
pub fn gitops() -> Command {
    let mut cmd = Command::new(gitops_path());
    for var in [
        "GITHUB_ACTIONS",
        "GITHUB_OUTPUT",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_EVENT_PATH",
        "GITHUB_EVENT_NAME",
        "GITHUB_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}
