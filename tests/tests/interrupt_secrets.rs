//! Interrupts and secrets end to end against moto: a Ctrl-C in the middle
//! of a deploy (moto slowed down by a delaying proxy) leaves nothing behind
//! and the next deploy goes through; rotating only a `NoEcho` value
//! updates the stack; and the secret is in no output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Output, Stdio};
use std::time::Duration;

use gitops_e2e::bin::gitops;
use gitops_e2e::fixture::text;
use gitops_e2e::git::GitRepo;
use gitops_e2e::moto::Moto;
use gitops_e2e::proxy::DelayProxy;

const TEMPLATE: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  EnvironmentName: {Type: String}
  AppVersion: {Type: String}
  DbPassword: {Type: String, NoEcho: true}
Resources:
  Version:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${EnvironmentName}/app/version"
      Type: String
      Value: !Ref AppVersion
  Password:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${EnvironmentName}/app/password"
      Type: String
      Value: !Ref DbPassword
Outputs:
  Password:
    Value: !Ref DbPassword
"#;

fn repo() -> GitRepo {
    let repo = GitRepo::new();
    repo.write(
        "gitops.yaml",
        "version: 1\nid: acme/e2e\nstack: {template: common/app.yaml}\n",
    )
    .write("common/app.yaml", TEMPLATE);
    repo
}

fn env_with(endpoint: &str, moto: &Moto) -> Vec<(&'static str, String)> {
    moto.env()
        .into_iter()
        .map(|(k, v)| {
            if k == "AWS_ENDPOINT_URL" {
                (k, endpoint.to_string())
            } else {
                (k, v)
            }
        })
        .collect()
}

fn query(moto: &Moto, action: &str, stack: Option<&str>) -> String {
    let mut q = vec![("Action", action), ("Version", "2010-05-15")];
    if let Some(s) = stack {
        q.push(("StackName", s));
    }
    moto.query(&q)
}

fn deploy(repo: &GitRepo, moto: &Moto, args: &[&str]) -> Output {
    gitops()
        .args(["deploy", "--repo", repo.path().to_str().unwrap()])
        .args(["--format", "json", "--timeout", "20"])
        .args(args)
        .envs(moto.env())
        .output()
        .unwrap()
}

#[test]
fn a_sigint_during_deploy_leaves_no_change_set_and_no_review_stack() {
    let Some(moto) = Moto::start() else { return };
    let proxy = DelayProxy::start(&moto.endpoint, Duration::from_millis(1500));
    let repo = repo();
    let base = repo.commit("template");
    repo.write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.0.0', DbPassword: hunter2-first}\n",
    );
    let head = repo.commit("dev");
    let mut child = gitops()
        .args(["deploy", "--repo", repo.path().to_str().unwrap()])
        .args(["--base", &base, "--head", &head, "--format", "json"])
        .envs(env_with(&proxy.endpoint, &moto))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the deploy never started creating: {seen}"
        );
        seen.push_str(&line);
        // Printed just before CreateChangeSet, which the proxy holds back.
        if line.contains("creating stack `dev-app` through change set") {
            break;
        }
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}\n{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["result"], "interrupted", "{v}");
    assert_eq!(v["environments"][0]["outcome"], "interrupted", "{v}");
    assert!(
        rest.contains("interrupted (SIGINT)"),
        "the interrupt is announced: {rest}"
    );

    let stacks = query(&moto, "DescribeStacks", None);
    assert!(!stacks.contains("REVIEW_IN_PROGRESS"), "{stacks}");
    let sets = query(&moto, "ListChangeSets", Some("dev-app"));
    assert!(!sets.contains("gitops-"), "a change set was left: {sets}");

    // The next deploy goes through at once, without waiting out a busy stack.
    proxy.set_delay(Duration::ZERO);
    let out = deploy(&repo, &moto, &["--base", &base, "--head", &head]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stacks = query(&moto, "DescribeStacks", Some("dev-app"));
    assert!(stacks.contains("CREATE_COMPLETE"), "{stacks}");
}

#[test]
fn a_creation_left_in_review_is_deleted_and_created_again() {
    let Some(moto) = Moto::start() else { return };
    let repo = repo();
    let base = repo.commit("template");
    repo.write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.0.0', DbPassword: hunter2-first}\n",
    );
    let head = repo.commit("dev");
    // What an interrupted run of an older version left: a CREATE change
    // set never executed, and its stack in REVIEW_IN_PROGRESS.
    let created = moto.query(&[
        ("Action", "CreateChangeSet"),
        ("Version", "2010-05-15"),
        ("StackName", "dev-app"),
        ("ChangeSetName", "gitops-deploy-left-1"),
        ("ChangeSetType", "CREATE"),
        ("TemplateBody", "Resources:\n  T: {Type: AWS::SNS::Topic}\n"),
        ("Tags.member.1.Key", "gitops:managed-by"),
        ("Tags.member.1.Value", "acme/e2e"),
    ]);
    assert!(created.contains("<Id>"), "{created}");
    assert!(query(&moto, "DescribeStacks", Some("dev-app")).contains("REVIEW_IN_PROGRESS"));

    let out = deploy(&repo, &moto, &["--base", &base, "--head", &head]);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{stderr}",
        text(&out.stdout)
    );
    assert!(stderr.contains("REVIEW_IN_PROGRESS"), "{stderr}");
    let stacks = query(&moto, "DescribeStacks", Some("dev-app"));
    assert!(stacks.contains("CREATE_COMPLETE"), "{stacks}");
}

#[test]
fn rotating_only_a_no_echo_value_updates_the_stack() {
    let Some(moto) = Moto::start() else { return };
    let repo = repo();
    let base = repo.commit("template");
    repo.write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.0.0', DbPassword: hunter2-first}\n",
    );
    let first = repo.commit("dev");
    let out = deploy(&repo, &moto, &["--base", &base, "--head", &first]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let xml = query(&moto, "DescribeStacks", Some("dev-app"));
    assert!(xml.contains("CREATE_COMPLETE"), "{xml}");

    repo.write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.0.0', DbPassword: hunter2-rotated}\n",
    );
    let second = repo.commit("rotate the password");
    let out = deploy(&repo, &moto, &["--base", &first, "--head", &second]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{v}\n{}", text(&out.stderr));
    assert_eq!(v["environments"][0]["outcome"], "succeeded", "{v}");
    // moto shows neither the NoEcho value nor an output made of it: the
    // stack went through an update.
    let xml = query(&moto, "DescribeStacks", Some("dev-app"));
    assert!(xml.contains("UPDATE_COMPLETE"), "{xml}");
    for o in [&out.stdout, &out.stderr] {
        assert!(!text(o).contains("hunter2"), "{}", text(o));
    }
}

#[test]
fn a_no_echo_value_appears_in_no_output() {
    let Some(moto) = Moto::start() else { return };
    let repo = repo();
    let base = repo.commit("template");
    repo.write(
        "environments/dev/environment.yaml",
        "parameters:\n  AppVersion: '1.0.0'\n  DbPassword: |\n    sesame-line-one\n    sesame-line-two\n",
    )
    .write(
        "environments/qa/environment.yaml",
        "parameters:\n  AppVersion: '1.0.0'\n  ? DbPassword\n  : \"sesame\\tquoted\"\n",
    );
    let first = repo.commit("dev and qa");
    repo.write(
        "environments/dev/environment.yaml",
        "parameters:\n  AppVersion: '1.0.1'\n  DbPassword: >-\n    sesame-folded-one\n    sesame-folded-two\n",
    )
    .write(
        "environments/qa/environment.yaml",
        "parameters:\n  AppVersion: '1.0.1'\n  ? DbPassword\n  : 'sesame''single'\n",
    );
    let second = repo.commit("rotate");
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let outputs = dir.path().join("outputs");
    let mut all = String::new();
    let mut run = |args: &[&str], revs: (&str, &str)| {
        let out = gitops()
            .args(args)
            .args(["--repo", repo.path().to_str().unwrap()])
            .args(["--base", revs.0, "--head", revs.1])
            .envs(moto.env())
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_OUTPUT", &outputs)
            .output()
            .unwrap();
        all.push_str(&text(&out.stdout));
        all.push_str(&text(&out.stderr));
        out
    };
    // moto's ListChangeSets ignores StackName, so one environment's sweep
    // would see the other's change set: one at a time.
    let out = run(&["deploy", "--concurrency", "1"], (&base, &first));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for format in ["text", "markdown", "json"] {
        let out = run(&["plan", "--format", format], (&first, &second));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let out = run(&["plan", "--no-aws", "--format", format], (&first, &second));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let out = run(
        &["deploy", "--concurrency", "1", "--format", "json"],
        (&first, &second),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    all.push_str(&std::fs::read_to_string(&summary).unwrap());
    all.push_str(&std::fs::read_to_string(&outputs).unwrap());
    assert!(all.contains("1.0.1"), "the outputs show the change: {all}");
    assert!(!all.contains("sesame"), "a secret leaked:\n{all}");
}
