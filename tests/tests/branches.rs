//! Branch-bound environments and the drift gate, end to end against moto:
//! a push to `develop` deploys only the environments bound to `develop`
//! and lists the others as skipped; a protected environment whose stack was
//! changed behind the tool's back is refused (the parameter named, the
//! stack unchanged), `plan` shows it, and `--accept-drift` deploys over it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use gitops_e2e::bin::gitops;
use gitops_e2e::git::GitRepo;
use gitops_e2e::moto::Moto;

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

const CFG: &str = "version: 1\nid: acme/branches\nstack: {template: common/app.yaml}\n";

fn run(cmd: &str, repo: &GitRepo, moto: &Moto, args: &[&str]) -> (Output, serde_json::Value) {
    let out = gitops()
        .arg(cmd)
        .args(["--repo", repo.path().to_str().unwrap(), "--format", "json"])
        .args(args)
        .envs(moto.env())
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, v)
}

fn all(out: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The value of `key` among the stack's parameters in DescribeStacks.
fn parameter(moto: &Moto, stack: &str, key: &str) -> Option<String> {
    let xml = moto.query(&[
        ("Action", "DescribeStacks"),
        ("StackName", stack),
        ("Version", "2010-05-15"),
    ]);
    if !xml.contains("<StackStatus>") {
        return None;
    }
    xml.split("<member>").find_map(|m| {
        m.contains(&format!("<ParameterKey>{key}</ParameterKey>"))
            .then(|| {
                m.split("<ParameterValue>")
                    .nth(1)
                    .and_then(|r| r.split("</ParameterValue>").next())
                    .map(str::to_string)
            })
            .flatten()
    })
}

fn outcome<'a>(v: &'a serde_json::Value, env: &str) -> &'a serde_json::Value {
    v["environments"]
        .as_array()
        .unwrap_or_else(|| panic!("no environments in {v}"))
        .iter()
        .find(|e| e["environment"] == env)
        .unwrap_or_else(|| panic!("no outcome for {env} in {v}"))
}

/// `dev` bound to `develop`, `prod` (protected) bound to `main`, both at
/// AppVersion `v`; returns (repo, templates-only commit, first commit).
fn two_branch_repo() -> (GitRepo, String, String) {
    let repo = GitRepo::new();
    repo.write("gitops.yaml", CFG)
        .write("common/app.yaml", TEMPLATE);
    let empty = repo.commit("templates");
    repo.write(
        "environments/dev/environment.yaml",
        "branch: develop\nparameters: {AppVersion: '1.0.0'}\n",
    )
    .write(
        "environments/prod/environment.yaml",
        "branch: main\nprotected: true\nparameters: {AppVersion: '1.0.0'}\n",
    );
    let first = repo.commit("dev and prod");
    (repo, empty, first)
}

#[test]
fn a_push_to_develop_deploys_only_develop_bound_environments() {
    let Some(moto) = Moto::start() else { return };
    let (repo, empty, first) = two_branch_repo();
    let range = ["--base", empty.as_str(), "--head", first.as_str()];

    // detect: the matrix holds dev only; prod is listed as skipped.
    let (out, v) = run(
        "detect",
        &repo,
        &moto,
        &[&range[..], &["--branch", "develop"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert_eq!(v["created"], serde_json::json!(["dev"]), "{v}");
    assert_eq!(v["skipped"][0]["name"], "prod", "{v}");
    assert_eq!(
        v["skipped"][0]["reason"], "bound to branch `main`, not `develop`",
        "{v}"
    );

    // deploy from develop: dev only.
    let (out, v) = run(
        "deploy",
        &repo,
        &moto,
        &[&range[..], &["--branch", "develop"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert_eq!(
        parameter(&moto, "dev-app", "AppVersion").as_deref(),
        Some("1.0.0")
    );
    assert_eq!(parameter(&moto, "prod-app", "AppVersion"), None, "{v}");
    // deploy from main: prod only.
    let (out, _) = run(
        "deploy",
        &repo,
        &moto,
        &[&range[..], &["--branch", "main"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert_eq!(
        parameter(&moto, "prod-app", "AppVersion").as_deref(),
        Some("1.0.0")
    );

    // A push to develop that changes both: only dev is deployed.
    repo.write(
        "environments/dev/environment.yaml",
        "branch: develop\nparameters: {AppVersion: '2.0.0'}\n",
    )
    .write(
        "environments/prod/environment.yaml",
        "branch: main\nprotected: true\nparameters: {AppVersion: '2.0.0'}\n",
    );
    let second = repo.commit("2.0.0 everywhere");
    let out = gitops()
        .args(["deploy", "--repo", repo.path().to_str().unwrap()])
        .args(["--base", &first, "--head", &second, "--branch", "develop"])
        .envs(moto.env())
        .output()
        .unwrap();
    let text = all(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("prod: skipped: bound to branch `main`, not `develop`"),
        "{text}"
    );
    assert_eq!(
        parameter(&moto, "dev-app", "AppVersion").as_deref(),
        Some("2.0.0")
    );
    assert_eq!(
        parameter(&moto, "prod-app", "AppVersion").as_deref(),
        Some("1.0.0")
    );
}

/// Changes `stack`'s AppVersion behind the tool's back, keeping its tags.
fn hotfix(moto: &Moto, stack: &str, version: &str) {
    let describe = moto.query(&[
        ("Action", "DescribeStacks"),
        ("StackName", stack),
        ("Version", "2010-05-15"),
    ]);
    let mut params: Vec<(String, String)> = vec![
        ("Action".into(), "UpdateStack".into()),
        ("StackName".into(), stack.into()),
        ("UsePreviousTemplate".into(), "true".into()),
        (
            "Parameters.member.1.ParameterKey".into(),
            "AppVersion".into(),
        ),
        ("Parameters.member.1.ParameterValue".into(), version.into()),
        (
            "Parameters.member.2.ParameterKey".into(),
            "EnvironmentName".into(),
        ),
        ("Parameters.member.2.UsePreviousValue".into(), "true".into()),
        ("Version".into(), "2010-05-15".into()),
    ];
    let mut n = 0;
    for tag in describe.split("<member>").skip(1) {
        let field = |name: &str| {
            tag.split(&format!("<{name}>"))
                .nth(1)
                .and_then(|r| r.split(&format!("</{name}>")).next())
                .map(str::to_string)
        };
        let (Some(key), Some(value)) = (field("Key"), field("Value")) else {
            continue;
        };
        n += 1;
        params.push((format!("Tags.member.{n}.Key"), key));
        params.push((format!("Tags.member.{n}.Value"), value));
    }
    assert!(n > 0, "no tags in {describe}");
    let refs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let xml = moto.query(&refs);
    assert!(xml.contains("<StackId>"), "{xml}");
    assert_eq!(
        parameter(moto, stack, "AppVersion").as_deref(),
        Some(version)
    );
}

#[test]
fn the_drift_gate_refuses_a_protected_environment_changed_out_of_band() {
    let Some(moto) = Moto::start() else { return };
    let (repo, empty, first) = two_branch_repo();
    let (out, _) = run(
        "deploy",
        &repo,
        &moto,
        &["--base", &empty, "--head", &first, "--branch", "main"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    hotfix(&moto, "prod-app", "1.0.1-hotfix");

    repo.write(
        "environments/prod/environment.yaml",
        "branch: main\nprotected: true\nparameters: {AppVersion: '2.0.0'}\n",
    );
    let second = repo.commit("prod 2.0.0");
    let range = [
        "--base",
        first.as_str(),
        "--head",
        second.as_str(),
        "--branch",
        "main",
    ];

    // deploy refuses, names the parameter, and leaves the stack as it is.
    let (out, v) = run("deploy", &repo, &moto, &range);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    let o = outcome(&v, "prod");
    assert_eq!(o["outcome"], "refused", "{v}");
    let message = o["message"].as_str().unwrap();
    assert!(
        message.contains("parameters.AppVersion expected 1.0.0, actual 1.0.1-hotfix"),
        "{message}"
    );
    assert!(message.contains("--accept-drift"), "{message}");
    assert_eq!(
        parameter(&moto, "prod-app", "AppVersion").as_deref(),
        Some("1.0.1-hotfix")
    );

    // plan shows the out-of-band change in prod's section.
    let out = gitops()
        .args([
            "plan",
            "--repo",
            repo.path().to_str().unwrap(),
            "--format",
            "markdown",
        ])
        .args(range)
        .envs(moto.env())
        .output()
        .unwrap();
    let text = all(&out);
    assert!(
        text.contains("parameters.AppVersion expected 1.0.0, actual 1.0.1-hotfix"),
        "{text}"
    );

    // --accept-drift deploys over it, and says so.
    let (out, v) = run(
        "deploy",
        &repo,
        &moto,
        &[&range[..], &["--accept-drift"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert_eq!(outcome(&v, "prod")["outcome"], "succeeded", "{v}");
    assert!(
        outcome(&v, "prod")["plan"]["accepted_drift"][0]
            .as_str()
            .unwrap()
            .contains("actual 1.0.1-hotfix"),
        "{v}"
    );
    assert_eq!(
        parameter(&moto, "prod-app", "AppVersion").as_deref(),
        Some("2.0.0")
    );
}
