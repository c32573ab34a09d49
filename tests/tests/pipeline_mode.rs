//! Pipeline mode end to end against moto: `plan` previews the application
//! stack the pipeline will deploy (not only the pipeline stack) and leaves
//! no change set behind; `gitops render` writes what direct mode deploys.
//!
//! moto cannot create an `AWS::CodePipeline::Pipeline` inside a stack, so the
//! pipeline template here holds a stand-in resource: the pipeline stack is
//! real, the pipeline is not (its executions are covered at the SDK level).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use gitops_e2e::bin::gitops;
use gitops_e2e::fixture::{text, SSM_TEMPLATE};
use gitops_e2e::git::GitRepo;
use gitops_e2e::moto::Moto;
use serde_json::Value;

const PIPELINE: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  EnvironmentName: {Type: String}
  StackName: {Type: String}
  PipelineName: {Type: String}
Resources:
  # Stands in for the AWS::CodePipeline::Pipeline moto cannot create.
  PipelineMarker:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${EnvironmentName}/pipeline"
      Type: String
      Value: !Sub "${PipelineName} deploys ${StackName}"
"#;

fn ok(out: &Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn deploy(repo: &GitRepo, moto: &Moto, base: &str, head: &str) -> Output {
    gitops()
        .args(["deploy", "--repo", repo.path().to_str().unwrap()])
        .args(["--base", base, "--head", head])
        .envs(moto.env())
        .output()
        .unwrap()
}

fn query(moto: &Moto, action: &str, stack: &str) -> String {
    moto.query(&[
        ("Action", action),
        ("StackName", stack),
        ("Version", "2010-05-15"),
    ])
}

#[test]
fn plan_in_pipeline_mode_previews_the_application_stack_and_leaves_no_change_set() {
    let Some(moto) = Moto::start() else { return };
    let repo = GitRepo::new();
    repo.write(
        "gitops.yaml",
        "version: 1\nid: acme/e2e\nstack: {template: common/app.yaml}\n",
    )
    .write("common/app.yaml", SSM_TEMPLATE);
    let empty = repo.commit("templates");
    repo.write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.0.0'}\n",
    );
    let direct = repo.commit("dev, deployed directly");
    ok(&deploy(&repo, &moto, &empty, &direct), "direct deploy");

    // Pipeline mode: the first deploy creates the pipeline stack (a new
    // pipeline runs once by itself, so nothing is started).
    repo.write(
        "gitops.yaml",
        "version: 1\nid: acme/e2e\nstack: {template: common/app.yaml}\npipeline: {template: common/pipeline.yaml}\n",
    )
    .write("common/pipeline.yaml", PIPELINE);
    let piped = repo.commit("pipeline mode");
    let out = deploy(&repo, &moto, &direct, &piped);
    ok(&out, "pipeline stack");
    assert!(
        text(&out.stderr).contains("dev-pipeline"),
        "{}",
        text(&out.stderr)
    );
    assert!(query(&moto, "DescribeStacks", "dev-pipeline").contains("CREATE_COMPLETE"));

    // An update of the environment and of its template.
    repo.write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.1.0'}\n",
    )
    .write(
        "common/app.yaml",
        &SSM_TEMPLATE.replace(
            "      Type: String\n      Value",
            "      Type: String\n      Description: the app version\n      Value",
        ),
    );
    let head = repo.commit("dev 1.1.0");
    let out = gitops()
        .args(["plan", "--repo", repo.path().to_str().unwrap()])
        .args(["--base", &piped, "--head", &head, "--format", "json"])
        .envs(moto.env())
        .output()
        .unwrap();
    ok(&out, "plan");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let dev = v["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment"] == "dev")
        .unwrap_or_else(|| panic!("no dev: {v}"));
    let actions: Vec<&str> = dev["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["start-pipeline"], "{dev}");
    let changes: Vec<String> = dev["resource_changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no preview: {dev}"))
        .iter()
        .map(|c| {
            format!(
                "{} {} {} {}",
                c["stack"].as_str().unwrap(),
                c["action"].as_str().unwrap(),
                c["logical_id"].as_str().unwrap(),
                c["resource_type"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        changes,
        ["dev-app Modify Version AWS::SSM::Parameter"],
        "the application stack's changes: {dev}"
    );
    assert!(
        text(&out.stderr).contains("the pipeline deploys `dev-app`"),
        "{}",
        text(&out.stderr)
    );
    // Nothing left behind: no preview change set on either stack, and both
    // stacks as they were.
    for stack in ["dev-app", "dev-pipeline"] {
        let sets = query(&moto, "ListChangeSets", stack);
        assert!(!sets.contains("gitops-plan-"), "{stack}: {sets}");
    }
    let app = query(&moto, "DescribeStacks", "dev-app");
    assert!(
        app.contains("<ParameterValue>1.0.0</ParameterValue>"),
        "{app}"
    );
    assert!(!app.contains("REVIEW_IN_PROGRESS"), "{app}");
}

#[test]
fn render_writes_the_template_and_every_parameter_and_tag() {
    let repo = GitRepo::new();
    repo.write(
        "gitops.yaml",
        "version: 1\nid: acme/e2e\nstack: {template: common/app.yaml}\npipeline: {template: common/pipeline.yaml}\n",
    )
    .write("common/app.yaml", SSM_TEMPLATE)
    .write("common/other.yaml", &SSM_TEMPLATE.replace("app/version", "other/version"))
    .write("common/pipeline.yaml", PIPELINE)
    .write(
        "environments/dev/environment.yaml",
        "template-file-path: common/other.yaml\nparameters: {AppVersion: '1.0.0'}\ntags: {team: pay}\n",
    );
    let out_dir = tempfile::tempdir().unwrap();
    let out = gitops()
        .args(["render", "--repo", repo.path().to_str().unwrap()])
        .args(["--environment", "dev", "--commit", "0123abc"])
        .args(["--out", out_dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    ok(&out, "render");
    let template = std::fs::read_to_string(out_dir.path().join("template.yaml")).unwrap();
    assert!(template.contains("other/version"), "{template}");
    let cfg: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.path().join("template-configuration.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["Parameters"]["AppVersion"], "1.0.0");
    assert_eq!(cfg["Parameters"]["EnvironmentName"], "dev");
    assert_eq!(cfg["Tags"]["team"], "pay");
    assert_eq!(cfg["Tags"]["gitops:commit"], "0123abc");
    assert_eq!(cfg["Tags"]["gitops:managed-by"], "acme/e2e");

    let out = gitops()
        .args(["render", "--repo", repo.path().to_str().unwrap()])
        .args(["--environment", "nope", "--commit", "0123abc"])
        .args(["--out", out_dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no environment `nope`"),
        "{}",
        text(&out.stderr)
    );
}
