//! examples/ecs: its checks (cfn-lint, `gitops validate` with its own guard
//! rules, the delivery stages its pipeline must have), and as much of it as
//! moto can deploy.
//!
//! Where the emulator stops (README of examples/ecs): moto 5.2.1 creates the
//! service stack's network, load balancer, ECS and IAM resources, but models
//! no CloudWatch alarm or CodeDeploy resource in a stack (it skips them),
//! cannot create the pipeline stack (no CodeBuild or CodePipeline in a
//! stack), and runs no pipeline, build or deployment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use gitops_e2e::bin::gitops;
use gitops_e2e::fixture::text;
use gitops_e2e::git::GitRepo;
use gitops_e2e::moto::Moto;
use gitops_e2e::tools::{repo_root, require};
use serde_json::Value;

fn example() -> std::path::PathBuf {
    repo_root().join("examples/ecs")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(example().join(rel)).unwrap()
}

#[test]
fn validate_passes_with_its_guard_rules_and_no_warning() {
    let out = gitops()
        .args(["validate", "--no-aws", "--repo"])
        .arg(example())
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = v["problems"].as_array().cloned().unwrap_or_default();
    assert!(problems.is_empty(), "{problems:?}");
    let rules = text(&out.stdout);
    assert!(!rules.contains("pipeline-trigger"), "{rules}");
}

#[test]
fn the_guard_rules_catch_an_in_place_deployment_and_a_triggering_source() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&example(), dir.path());
    let service = dir.path().join("common/service.yaml");
    let s = std::fs::read_to_string(&service).unwrap();
    std::fs::write(&service, s.replace("Type: CODE_DEPLOY", "Type: ECS")).unwrap();
    let pipeline = dir.path().join("common/pipeline.yaml");
    let p = std::fs::read_to_string(&pipeline).unwrap();
    std::fs::write(
        &pipeline,
        p.replace("DetectChanges: \"false\"", "DetectChanges: \"true\""),
    )
    .unwrap();
    let out = gitops()
        .args(["validate", "--no-aws", "--repo"])
        .arg(dir.path())
        .output()
        .unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("ecs_service_blue_green"), "{all}");
    assert!(all.contains("pipeline_sources_do_not_trigger"), "{all}");
    assert!(
        all.contains("starts the pipeline by itself on every push"),
        "{all}"
    );
}

#[test]
fn cfn_lint_passes() {
    let Some(lint) = require("cfn-lint") else {
        return;
    };
    let out = Command::new(lint)
        .current_dir(example())
        .args(["common/service.yaml", "common/pipeline.yaml"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn the_pipeline_has_every_delivery_stage() {
    let p = read("common/pipeline.yaml");
    let t: Value = serde_yaml_ng_free(&p);
    let stages = t["Resources"]["Pipeline"]["Properties"]["Stages"]
        .as_array()
        .unwrap()
        .clone();
    let names: Vec<String> = stages
        .iter()
        .map(|s| {
            s["Name"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("if {}", s["Fn::If"][0].as_str().unwrap()))
        })
        .collect();
    assert_eq!(
        names,
        [
            "Source",
            "Render",
            "SAST",
            "if ApprovalRequired",
            "Deploy",
            "DAST"
        ]
    );
    // The approval exists only for protected environments.
    assert_eq!(
        t["Conditions"]["ApprovalRequired"]["Fn::Equals"][0]["Ref"],
        "Protected"
    );
    assert_eq!(
        stages[3]["Fn::If"][1]["Actions"][0]["ActionTypeId"]["Provider"],
        "Manual"
    );
    let provider = |stage: usize, action: usize| {
        stages[stage]["Actions"][action]["ActionTypeId"]["Provider"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(provider(0, 0), "CodeStarSourceConnection");
    assert_eq!(
        stages[0]["Actions"][0]["Configuration"]["DetectChanges"],
        "false"
    );
    assert_eq!(provider(2, 0), "CodeBuild");
    assert_eq!(provider(4, 0), "CloudFormation");
    assert_eq!(provider(4, 2), "CodeDeployToECS");
    assert_eq!(provider(5, 0), "CodeBuild");
    let spec = |project: &str| {
        t["Resources"][project]["Properties"]["Source"]["BuildSpec"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(spec("SastProject").contains("cfn-lint common/*.yaml"));
    assert!(spec("SastProject").contains("validate --repo . --no-aws"));
    assert!(spec("DastProject").contains("zap-baseline.py -t \"$TARGET_URL\""));
    assert_eq!(
        stages[5]["Actions"][0]["Configuration"]["EnvironmentVariables"],
        r##"[{"name":"TARGET_URL","value":"#{StackOutputs.TestUrl}","type":"PLAINTEXT"}]"##
    );
    // Canary traffic shift with rollback on the alarm.
    let s: Value = serde_yaml_ng_free(&read("common/service.yaml"));
    let dg = &s["Resources"]["DeploymentGroup"]["Properties"];
    assert_eq!(dg["DeploymentConfigName"]["Ref"], "CanaryConfig");
    assert!(s["Parameters"]["CanaryConfig"]["AllowedValues"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v.as_str().unwrap().contains("ECSCanary")));
    assert_eq!(dg["AutoRollbackConfiguration"]["Enabled"], true);
    assert_eq!(
        dg["AlarmConfiguration"]["Alarms"][0]["Name"]["Ref"],
        "Target5xxAlarm"
    );
    assert_eq!(
        dg["LoadBalancerInfo"]["TargetGroupPairInfoList"][0]["TestTrafficRoute"]["ListenerArns"][0]
            ["Ref"],
        "TestListener"
    );
}

/// YAML with CloudFormation short-form tags, as JSON in the long form.
fn serde_yaml_ng_free(text: &str) -> Value {
    let out = gitops_core::Template::parse("t.yaml", text).unwrap();
    out.normalized()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    s.split(open)
        .skip(1)
        .filter_map(|x| x.split_once(close).map(|(v, _)| v))
        .collect()
}

fn deploy(repo: &GitRepo, moto: &Moto, env: &str) -> Output {
    gitops()
        .args(["deploy", "--repo", repo.path().to_str().unwrap()])
        .args(["--environment", env, "--timeout", "120"])
        .envs(moto.env())
        .output()
        .unwrap()
}

fn resources(moto: &Moto, stack: &str) -> Vec<String> {
    let xml = moto.query(&[
        ("Action", "ListStackResources"),
        ("StackName", stack),
        ("Version", "2010-05-15"),
    ]);
    let mut out: Vec<String> = between(&xml, "<LogicalResourceId>", "</LogicalResourceId>")
        .into_iter()
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

#[test]
fn moto_deploys_the_service_stack_and_the_pipeline_stack_as_far_as_it_models_them() {
    let Some(moto) = Moto::start() else { return };
    let ec2 = |params: &[(&str, &str)]| {
        let mut p = params.to_vec();
        p.push(("Version", "2016-11-15"));
        moto.query_service("ec2", &p)
    };
    let vpcs = ec2(&[("Action", "DescribeVpcs")]);
    let vpc = between(&vpcs, "<vpcId>", "</vpcId>")[0].to_string();
    let subnets = ec2(&[
        ("Action", "DescribeSubnets"),
        ("Filter.1.Name", "vpc-id"),
        ("Filter.1.Value.1", &vpc),
    ]);
    let subnets: Vec<&str> = between(&subnets, "<subnetId>", "</subnetId>");
    assert!(subnets.len() >= 2, "{subnets:?}");
    let pair = format!("{},{}", subnets[0], subnets[1]);

    let repo = GitRepo::new();
    copy_dir(&example(), repo.path());
    let cfg = read("gitops.yaml")
        .replace("vpc-0123456789abcdef0", &vpc)
        .replace("subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2", &pair)
        .replace("subnet-0bbbbbbbbbbbbbbb1,subnet-0bbbbbbbbbbbbbbb2", &pair);
    // First the service stack, as the pipeline's CloudFormation action
    // deploys it (direct mode deploys exactly the same: see the parity test).
    let direct = cfg
        .replace(
            "pipeline:\n  name: \"{environment}-shop-deploy\"\n  stack-name: \"{environment}-shop-pipeline\"\n  template: common/pipeline.yaml\n",
            "",
        )
        // Parameters only the pipeline template declares.
        .lines()
        .filter(|l| !l.contains("ConnectionArn:") && !l.contains("FullRepositoryId:"))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    assert_ne!(direct, cfg);
    repo.write("gitops.yaml", &direct);
    repo.commit("the ECS example, direct");
    let out = deploy(&repo, &moto, "development");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stack = moto.query(&[
        ("Action", "DescribeStacks"),
        ("StackName", "development-shop"),
        ("Version", "2010-05-15"),
    ]);
    assert!(stack.contains("CREATE_COMPLETE"), "{stack}");
    assert_eq!(
        resources(&moto, "development-shop"),
        [
            "BlueTargetGroup",
            "Cluster",
            "GreenTargetGroup",
            "ImageRecord",
            "LoadBalancer",
            "LoadBalancerSecurityGroup",
            "LogGroup",
            "ProductionListener",
            "Service",
            "ServiceSecurityGroup",
            "TaskDefinition",
            "TaskExecutionRole",
            "TestListener",
            "CodeDeployRole",
            // Not created by moto: Target5xxAlarm, Application, DeploymentGroup.
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );

    // Then the pipeline stack, in pipeline mode: this is where moto stops.
    // It models no CodeBuild project or pipeline in a stack, and rejects the
    // pipeline role's GetAtt of the build projects' ARNs.
    repo.write("gitops.yaml", &cfg);
    repo.commit("pipeline mode");
    let out = deploy(&repo, &moto, "development");
    let all = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("development-shop-pipeline"), "{all}");
    assert!(
        all.contains("Fn::GetAtt references undefined resource RenderProject"),
        "{all}"
    );
}
