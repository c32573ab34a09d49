//! Static checks of the GitHub Actions files, with the tools scripts/test
//! installs into .tools/venv (pinned in scripts/tools.sh):
//!
//! - actionlint (with shellcheck) on every workflow: examples/workflows/ and
//!   .github/workflows/;
//! - check-jsonschema: `vendor.github-actions` on every action.yml,
//!   `vendor.github-workflows` on every workflow;
//! - zizmor --offline on all of them: no findings with the regular persona,
//!   none above low with the pedantic one;
//! - shellcheck on every composite `run:` script and on the scripts they call;
//! - the README's table of inputs and outputs matches the action.yml files
//!   (`UPDATE_EXPECT=1` rewrites it).
//!
//! Each check also runs on a deliberately broken file, so a tool that
//! silently checks nothing fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gitops_e2e::tools::{repo_root, require};

/// Every action.yml, relative to the repository root.
fn action_files() -> Vec<String> {
    let mut v = vec!["action.yml".to_string()];
    for d in ["detect", "plan", "deploy", "promote", "drift", "validate"] {
        v.push(format!("{d}/action.yml"));
    }
    for f in &v {
        assert!(repo_root().join(f).is_file(), "{f} is missing");
    }
    v
}

/// Every workflow file, relative to the repository root.
fn workflow_files() -> Vec<String> {
    let mut v = Vec::new();
    for dir in ["examples/workflows", ".github/workflows"] {
        let mut names: Vec<String> = std::fs::read_dir(repo_root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
            .collect();
        names.sort();
        v.extend(names.into_iter().map(|n| format!("{dir}/{n}")));
    }
    for expected in [
        "examples/workflows/deploy.yml",
        "examples/workflows/plan.yml",
        "examples/workflows/drift.yml",
        "examples/workflows/promote.yml",
        "examples/workflows/validate.yml",
        ".github/workflows/release.yml",
    ] {
        assert!(v.iter().any(|f| f == expected), "{expected} is missing");
    }
    v
}

/// A command for `tool` with the venv first on PATH (actionlint finds
/// shellcheck there), run from the repository root.
fn tool(path: &Path) -> Command {
    let mut cmd = Command::new(path);
    let venv = repo_root().join(".tools/venv/bin");
    let mut paths = vec![venv];
    if let Some(p) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&p));
    }
    cmd.env("PATH", std::env::join_paths(paths).unwrap())
        .env("NO_COLOR", "1")
        .current_dir(repo_root());
    cmd
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

const BAD_WORKFLOW: &str = r#"name: bad
on: pull_request
jobs:
  x:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}" $UNQUOTED
"#;

const BAD_ACTION: &str = r#"name: bad
description: runs an input as code
inputs:
  title:
    description: a pull request title
runs:
  using: composite
  steps:
    - shell: bash
      run: echo "${{ inputs.title }}"
"#;

#[test]
fn workflows_pass_actionlint_with_shellcheck() {
    let Some(actionlint) = require("actionlint") else {
        return;
    };
    let Some(_) = require("shellcheck") else {
        return;
    };
    let out = tool(&actionlint)
        .arg("-shellcheck")
        .arg(repo_root().join(".tools/venv/bin/shellcheck"))
        .args(workflow_files())
        .output()
        .unwrap();
    assert!(out.status.success(), "actionlint: {}", show(&out));

    // It does find problems: an untrusted expression and an unquoted variable.
    let tmp = tempfile::tempdir().unwrap();
    let bad = write(tmp.path(), "bad.yml", BAD_WORKFLOW);
    let out = tool(&actionlint)
        .arg("-shellcheck")
        .arg(repo_root().join(".tools/venv/bin/shellcheck"))
        .arg(&bad)
        .output()
        .unwrap();
    let text = show(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("potentially untrusted"), "{text}");
    assert!(text.contains("SC2086"), "shellcheck ran: {text}");
}

#[test]
fn actions_and_workflows_match_their_schemas() {
    let Some(cj) = require("check-jsonschema") else {
        return;
    };
    let out = tool(&cj)
        .args(["--builtin-schema", "vendor.github-actions"])
        .args(action_files())
        .output()
        .unwrap();
    assert!(out.status.success(), "actions: {}", show(&out));
    let out = tool(&cj)
        .args(["--builtin-schema", "vendor.github-workflows"])
        .args(workflow_files())
        .output()
        .unwrap();
    assert!(out.status.success(), "workflows: {}", show(&out));

    let tmp = tempfile::tempdir().unwrap();
    let bad = write(
        tmp.path(),
        "action.yml",
        "name: x\ndescription: y\nruns:\n  using: composite\n  steps: nope\n",
    );
    let out = tool(&cj)
        .args(["--builtin-schema", "vendor.github-actions"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", show(&out));
}

#[test]
fn zizmor_finds_nothing() {
    let Some(zizmor) = require("zizmor") else {
        return;
    };
    let mut files = action_files();
    files.extend(workflow_files());
    let out = tool(&zizmor)
        .args(["--offline", "--no-progress"])
        .args(&files)
        .output()
        .unwrap();
    assert!(out.status.success(), "regular persona: {}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("No findings"),
        "{}",
        show(&out)
    );
    let out = tool(&zizmor)
        .args([
            "--offline",
            "--no-progress",
            "--persona",
            "pedantic",
            "--min-severity",
            "medium",
        ])
        .args(&files)
        .output()
        .unwrap();
    assert!(out.status.success(), "pedantic, above low: {}", show(&out));

    let tmp = tempfile::tempdir().unwrap();
    let bad = write(tmp.path(), "bad/action.yml", BAD_ACTION);
    let out = tool(&zizmor)
        .args(["--offline", "--no-progress"])
        .arg(&bad)
        .output()
        .unwrap();
    let text = show(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("template-injection"), "{text}");
}

/// The `run:` scripts of an action.yml.
fn run_scripts(file: &str) -> Vec<String> {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo_root().join(file)).unwrap()).unwrap();
    doc["runs"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str().map(String::from))
        .collect()
}

fn shellcheck(sc: &Path, files: &[PathBuf]) -> Output {
    // From the repository root, so `# shellcheck source=action/lib.sh` resolves.
    tool(sc)
        .args([
            "--shell",
            "bash",
            "--external-sources",
            "--severity",
            "style",
        ])
        .args(files)
        .output()
        .unwrap()
}

#[test]
fn composite_scripts_pass_shellcheck() {
    let Some(sc) = require("shellcheck") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for f in action_files() {
        let scripts = run_scripts(&f);
        assert!(!scripts.is_empty(), "{f} has run steps");
        for (i, s) in scripts.iter().enumerate() {
            let name = format!("{}-step{i}.sh", f.replace('/', "-"));
            // As the runner runs it: bash -eo pipefail.
            files.push(write(tmp.path(), &name, &format!("set -eo pipefail\n{s}")));
        }
    }
    for f in ["action/install.sh", "action/lib.sh", "scripts/release.sh"] {
        files.push(repo_root().join(f));
    }
    let out = shellcheck(&sc, &files);
    assert!(out.status.success(), "shellcheck: {}", show(&out));

    let bad = write(tmp.path(), "bad.sh", "set -eo pipefail\necho $1\n");
    let out = shellcheck(&sc, &[bad]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(show(&out).contains("SC2086"), "{}", show(&out));
}

/// Every `uses:` in the workflows, the actions (their actions/cache steps)
/// and the README's workflow names a full commit SHA followed by a comment
/// saying what it is.
#[test]
fn every_uses_is_pinned_by_sha_with_a_comment() {
    let mut files: Vec<(String, String)> = workflow_files()
        .into_iter()
        .chain(action_files())
        .map(|f| {
            let text = std::fs::read_to_string(repo_root().join(&f)).unwrap();
            (f, text)
        })
        .collect();
    files.push(("README.md".into(), readme_workflow()));
    let mut seen = 0;
    for (f, text) in &files {
        for line in text.lines() {
            let Some(rest) = line.trim().trim_start_matches("- ").strip_prefix("uses: ") else {
                continue;
            };
            seen += 1;
            let (target, comment) = rest.split_once(" # ").unwrap_or((rest, ""));
            let sha = target.split_once('@').map(|(_, r)| r).unwrap_or("");
            assert!(
                sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
                "{f}: `{line}` is not pinned by a full commit SHA"
            );
            assert!(
                !comment.trim().is_empty(),
                "{f}: `{line}` has no version comment"
            );
        }
    }
    assert!(seen >= 15, "only {seen} uses: lines found");
}

/// The shortest workflow shown in the README.
fn readme_workflow() -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme
        .find("```yaml\nname: deploy\n")
        .expect("README.md shows a deploy workflow")
        + "```yaml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    readme[start..end].to_string()
}

#[test]
fn readme_workflow_passes_the_checks() {
    let (Some(actionlint), Some(cj)) = (require("actionlint"), require("check-jsonschema")) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let wf = write(tmp.path(), "readme.yml", &readme_workflow());
    let out = tool(&actionlint).arg(&wf).output().unwrap();
    assert!(out.status.success(), "actionlint: {}", show(&out));
    let out = tool(&cj)
        .args(["--builtin-schema", "vendor.github-workflows"])
        .arg(&wf)
        .output()
        .unwrap();
    assert!(out.status.success(), "schema: {}", show(&out));
    if let Some(zizmor) = require("zizmor") {
        let out = tool(&zizmor)
            .args(["--offline", "--no-progress"])
            .arg(&wf)
            .output()
            .unwrap();
        assert!(out.status.success(), "zizmor: {}", show(&out));
    }
}

// ---------------------------------------------------------------------------
// README

const BEGIN: &str = "<!-- actions-reference:begin (generated from the action.yml files by tests/tests/action_checks.rs; UPDATE_EXPECT=1 cargo test -p gitops-e2e --test action_checks rewrites it) -->";
const END: &str = "<!-- actions-reference:end -->";

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ").trim().to_string()
}

/// The reference section: per action, its inputs and outputs.
fn render_reference() -> String {
    let mut md = String::new();
    for f in action_files() {
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(repo_root().join(&f)).unwrap()).unwrap();
        let uses = match f.strip_suffix("/action.yml") {
            Some(dir) => format!("gitops-aws/gitops-aws/{dir}"),
            None => "gitops-aws/gitops-aws".to_string(),
        };
        md.push_str(&format!(
            "#### `{uses}`\n\n{}\n\n",
            doc["description"].as_str().unwrap().trim()
        ));
        md.push_str("| input | default | description |\n|---|---|---|\n");
        for (name, spec) in doc["inputs"].as_mapping().unwrap() {
            let default = match &spec["default"] {
                serde_yaml::Value::String(s) if !s.is_empty() => format!("`{s}`"),
                _ if spec["required"].as_bool() == Some(true) => "required".to_string(),
                _ => String::new(),
            };
            md.push_str(&format!(
                "| `{}` | {} | {} |\n",
                name.as_str().unwrap(),
                default,
                cell(spec["description"].as_str().unwrap())
            ));
        }
        md.push_str("\n| output | description |\n|---|---|\n");
        for (name, spec) in doc["outputs"].as_mapping().unwrap() {
            md.push_str(&format!(
                "| `{}` | {} |\n",
                name.as_str().unwrap(),
                cell(spec["description"].as_str().unwrap())
            ));
        }
        md.push('\n');
    }
    md
}

#[test]
fn readme_documents_every_input_and_output() {
    let path = repo_root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (Some(b), Some(e)) = (readme.find(BEGIN), readme.find(END)) else {
        panic!("README.md lacks the markers {BEGIN} … {END}");
    };
    let current = &readme[b + BEGIN.len()..e];
    let expected = format!("\n\n{}", render_reference());
    if current != expected {
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            let new = format!("{}{BEGIN}{expected}{}", &readme[..b], &readme[e..]);
            std::fs::write(&path, new).unwrap();
            return;
        }
        panic!(
            "README.md's actions reference differs from the action.yml files; run\n  UPDATE_EXPECT=1 cargo test -p gitops-e2e --test action_checks readme\n--- README\n{current}\n--- expected\n{expected}"
        );
    }
    // And every example workflow is mentioned.
    for f in workflow_files() {
        if f.starts_with("examples/") {
            assert!(readme.contains(&f), "README.md does not mention {f}");
        }
    }
}
