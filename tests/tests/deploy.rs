//! `gitops deploy` end to end against the moto emulator: create, update,
//! no-op, refusals and deletion, in direct and pipeline mode.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use gitops_e2e::bin::gitops;
use gitops_e2e::fixture::{describe, entry, exists, param, tag, SSM_TEMPLATE};
use gitops_e2e::git::GitRepo;
use gitops_e2e::moto::Moto;

const PIPELINE: &str = r#"Parameters:
  EnvironmentName: {Type: String}
  StackName: {Type: String}
  PipelineName: {Type: String}
  AppVersion: {Type: String, Default: "0.0.0"}
Resources:
  Artifacts:
    Type: AWS::S3::Bucket
Outputs:
  Name:
    Value: !Ref PipelineName
"#;

fn deploy(repo: &GitRepo, moto: &Moto, args: &[&str]) -> (Output, serde_json::Value) {
    let out = gitops()
        .arg("deploy")
        .args(["--repo", repo.path().to_str().unwrap(), "--format", "json"])
        .args(args)
        .envs(moto.env())
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "not JSON: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, v)
}

fn base_repo(pipeline: bool) -> GitRepo {
    let repo = GitRepo::new();
    let cfg = if pipeline {
        "version: 1\nid: acme/e2e\nstack: {template: common/app.yaml}\npipeline: {template: common/pipeline.yaml}\n"
    } else {
        "version: 1\nid: acme/e2e\nstack: {template: common/app.yaml}\n"
    };
    repo.write("gitops.yaml", cfg)
        .write("common/app.yaml", SSM_TEMPLATE)
        .write("common/pipeline.yaml", PIPELINE);
    repo
}

#[test]
fn direct_mode_lifecycle() {
    let Some(moto) = Moto::start() else { return };
    let repo = base_repo(false);
    let empty = repo.commit("templates only");
    repo.write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.0.0'}\ntags: {team: pay}\n",
    )
    .write(
        "environments/prod/environment.yaml",
        "parameters: {AppVersion: '0.9.0'}\nprotected: true\n",
    );
    let two = repo.commit("dev and prod");

    // create
    let (out, v) = deploy(&repo, &moto, &["--base", &empty, "--head", &two]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{v}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["result"], "success");
    assert_eq!(entry(&v, "dev")["outcome"], "succeeded");
    let xml = describe(&moto, "dev-app");
    assert!(xml.contains("CREATE_COMPLETE"), "{xml}");
    assert_eq!(param(&xml, "AppVersion").as_deref(), Some("1.0.0"));
    assert_eq!(param(&xml, "EnvironmentName").as_deref(), Some("dev"));
    assert_eq!(tag(&xml, "gitops:managed-by").as_deref(), Some("acme/e2e"));
    assert_eq!(tag(&xml, "gitops:environment").as_deref(), Some("dev"));
    assert_eq!(tag(&xml, "gitops:commit").as_deref(), Some(two.as_str()));
    assert_eq!(tag(&xml, "team").as_deref(), Some("pay"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[dev] creating stack `dev-app`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("dev-app CREATE_COMPLETE"),
        "progress streams stack events: {stderr}"
    );
    // moto does not implement UpdateTerminationProtection: the fake-based
    // unit tests cover turning it on for protected environments.
    assert!(
        stderr.contains("[prod] turning termination protection on for `prod-app`"),
        "{stderr}"
    );

    // update: a parameter changed
    repo.write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.1.0'}\ntags: {team: pay}\n",
    );
    let three = repo.commit("dev 1.1.0");
    let (out, v) = deploy(&repo, &moto, &["--base", &two, "--head", &three]);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(
        v["environments"].as_array().unwrap().len(),
        1,
        "only dev changed: {v}"
    );
    let xml = describe(&moto, "dev-app");
    assert_eq!(param(&xml, "AppVersion").as_deref(), Some("1.1.0"));
    // (moto keeps a stack's tags on change-set updates, so the new
    // gitops:commit tag is asserted only in the fake-based unit tests)
    let list = moto.query(&[
        ("Action", "ListChangeSets"),
        ("StackName", "dev-app"),
        ("Version", "2010-05-15"),
    ]);
    // moto keeps executed change sets listed (AWS removes them): none may be left unexecuted
    assert!(
        !list.contains("<ExecutionStatus>AVAILABLE"),
        "no change set left behind: {list}"
    );

    // no-op: the same again
    let (out, v) = deploy(
        &repo,
        &moto,
        &["--environment", "dev", "--environment", "prod"],
    );
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["result"], "no-op", "{v}");
    assert_eq!(entry(&v, "dev")["outcome"], "no-op");

    // the protected environment's deletion is refused, even with --allow-delete
    repo.remove("environments/prod");
    let four = repo.commit("remove prod");
    let (out, v) = deploy(
        &repo,
        &moto,
        &["--base", &three, "--head", &four, "--allow-delete"],
    );
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(entry(&v, "prod")["outcome"], "refused");
    assert!(entry(&v, "prod")["message"]
        .as_str()
        .unwrap()
        .contains("protected"));
    assert!(exists(&moto, "prod-app"));

    // deleting needs --allow-delete
    repo.remove("environments/dev");
    let five = repo.commit("remove dev");
    let (out, v) = deploy(&repo, &moto, &["--base", &four, "--head", &five]);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(entry(&v, "dev")["message"]
        .as_str()
        .unwrap()
        .contains("--allow-delete"));
    assert!(exists(&moto, "dev-app"));
    let (out, v) = deploy(
        &repo,
        &moto,
        &["--base", &four, "--head", &five, "--allow-delete"],
    );
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(entry(&v, "dev")["outcome"], "succeeded");
    assert!(!exists(&moto, "dev-app"), "{}", describe(&moto, "dev-app"));
}

#[test]
fn foreign_stack_is_refused_and_dry_run_changes_nothing() {
    let Some(moto) = Moto::start() else { return };
    let repo = base_repo(false);
    let empty = repo.commit("templates");
    // someone else's stack with the name this environment would use
    moto.query(&[
        ("Action", "CreateStack"),
        ("StackName", "shared-app"),
        ("TemplateBody", "Resources:\n  T: {Type: AWS::SNS::Topic}\n"),
        ("Version", "2010-05-15"),
    ]);
    repo.write(
        "environments/shared/environment.yaml",
        "parameters: {AppVersion: '1.0.0'}\n",
    )
    .write(
        "environments/fresh/environment.yaml",
        "parameters: {AppVersion: '1.0.0'}\n",
    );
    let head = repo.commit("envs");

    let (out, v) = deploy(
        &repo,
        &moto,
        &["--base", &empty, "--head", &head, "--dry-run"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "the refusal shows in a dry run: {v}"
    );
    assert_eq!(entry(&v, "fresh")["outcome"], "planned");
    assert_eq!(
        entry(&v, "fresh")["plan"]["actions"][0]["action"],
        "deploy-stack"
    );
    assert!(!exists(&moto, "fresh-app"), "a dry run creates nothing");

    let (out, v) = deploy(&repo, &moto, &["--base", &empty, "--head", &head]);
    assert_eq!(out.status.code(), Some(1), "{v}");
    let shared = entry(&v, "shared");
    assert_eq!(shared["outcome"], "refused");
    assert!(shared["message"].as_str().unwrap().contains("--adopt"));
    assert_eq!(
        entry(&v, "fresh")["outcome"],
        "succeeded",
        "one refusal does not stop the others"
    );
    let xml = describe(&moto, "shared-app");
    assert!(
        tag(&xml, "gitops:managed-by").is_none(),
        "the foreign stack is untouched: {xml}"
    );
}

#[test]
fn invalid_repository_changes_nothing() {
    let Some(moto) = Moto::start() else { return };
    let repo = base_repo(false);
    let empty = repo.commit("templates");
    repo.write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.0.0', Typo: x}\n",
    );
    let head = repo.commit("bad env");
    let out = gitops()
        .args([
            "deploy",
            "--repo",
            repo.path().to_str().unwrap(),
            "--base",
            &empty,
            "--head",
            &head,
        ])
        .envs(moto.env())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("environments/dev/environment.yaml:1:") && err.contains("`Typo`"),
        "{err}"
    );
    assert!(!exists(&moto, "dev-app"));
}

#[test]
fn pipeline_mode_creates_the_pipeline_stack() {
    let Some(moto) = Moto::start() else { return };
    let repo = base_repo(true);
    let empty = repo.commit("templates");
    repo.write(
        "environments/feature-x/environment.yaml",
        "parameters: {AppVersion: '2.0.0'}\ntags: {team: pay}\n",
    );
    let head = repo.commit("feature-x");
    let (out, v) = deploy(&repo, &moto, &["--base", &empty, "--head", &head]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{v}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = &entry(&v, "feature-x")["plan"]["actions"];
    assert_eq!(
        plan.as_array().unwrap().len(),
        1,
        "a new pipeline is not started too: {plan}"
    );
    assert_eq!(plan[0]["role"], "pipeline");
    let xml = describe(&moto, "feature-x-pipeline");
    assert!(xml.contains("CREATE_COMPLETE"), "{xml}");
    assert_eq!(param(&xml, "EnvironmentName").as_deref(), Some("feature-x"));
    assert_eq!(param(&xml, "StackName").as_deref(), Some("feature-x-app"));
    assert_eq!(
        param(&xml, "PipelineName").as_deref(),
        Some("feature-x-deploy")
    );
    assert_eq!(param(&xml, "AppVersion").as_deref(), Some("2.0.0"));
    assert_eq!(tag(&xml, "gitops:managed-by").as_deref(), Some("acme/e2e"));
    assert_eq!(tag(&xml, "team").as_deref(), Some("pay"));
    assert!(
        !exists(&moto, "feature-x-app"),
        "the pipeline deploys the environment stack, not the tool"
    );
}
