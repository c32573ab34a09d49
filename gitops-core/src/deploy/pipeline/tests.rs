//! Parity of pipeline mode with direct mode, and the trigger warnings.
//!
//! The parity test runs the executor twice on one repository, against the
//! in-memory AWS: in direct mode it records the CreateChangeSet request; in
//! pipeline mode the StartPipelineExecution request (what the tool sends).
//! From that request and the example pipeline template it then derives the
//! CloudFormation call the pipeline's deploy action will make: the stack
//! named by the action, the file its `TemplatePath` names, the parameters of
//! its `TemplateConfiguration` file overlaid with its `ParameterOverrides`
//! (pipeline variables resolved from the request), the tags of the
//! configuration file and the capabilities it acknowledges. Artifacts are
//! followed to what produces them: the source action gives the repository at
//! the commit the request pins, a build running `gitops render` gives that
//! command's files for the environment and commit the build is given.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::aws::fake::Fake;
use crate::aws::{ChangeSetKind, Pipeline, SourceAction, Stack, StartExecution, TemplateSource};
use crate::deploy::{desired, Desired, Executor, ExecutorOptions, Outcome};
use crate::detect::{Change, EnvChange};
use crate::model::Repository;
use crate::source::{Entry, Memory, Source};

const BASIC_PIPELINE: &str = include_str!("../../../../examples/basic/common/pipeline.yaml");

const DEFAULT_APP: &str = "Parameters:\n  EnvironmentName: {Type: String}\n  AppVersion: {Type: String}\nResources:\n  Topic: {Type: AWS::SNS::Topic}\n";

/// The template the environment overrides its template with: five
/// parameters of its own, plus EnvironmentName.
const OTHER_APP: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  EnvironmentName: {Type: String}
  AppVersion: {Type: String}
  LogLevel: {Type: String, Default: INFO}
  Replicas: {Type: Number, Default: 1}
  Domain: {Type: String}
  AlertEmail: {Type: String}
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Sub "${EnvironmentName}-${Domain}"
"#;

const ENV_FILE: &str = "template-file-path: common/other.yaml\nparameters:\n  AppVersion: '2.4.1'\n  LogLevel: DEBUG\n  Replicas: '3'\n  Domain: shop.example.com\n  AlertEmail: ops@example.com\ntags:\n  team: checkout\n  cost-center: '4711'\n";

const COMMIT: &str = "4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c";

fn source(pipeline: Option<&str>) -> Memory {
    let mut cfg = "version: 1\nid: acme/shop\nstack: {name: '{environment}-app', template: common/environment.yaml, capabilities: [CAPABILITY_IAM]}\ndefaults: {region: us-east-1}\n".to_string();
    if pipeline.is_some() {
        cfg.push_str("pipeline: {name: '{environment}-deploy', stack-name: '{environment}-pipeline', template: common/pipeline.yaml}\n");
    }
    Memory::new(COMMIT)
        .with_file("gitops.yaml", cfg)
        .with_file("common/environment.yaml", DEFAULT_APP)
        .with_file("common/other.yaml", OTHER_APP)
        .with_file("common/pipeline.yaml", pipeline.unwrap_or(BASIC_PIPELINE))
        .with_file("environments/staging/environment.yaml", ENV_FILE)
}

fn desired_staging(source: &Memory) -> Desired {
    let repo = Repository::load(source).unwrap();
    let problems: Vec<_> = repo
        .validate(source)
        .into_iter()
        .filter(|p| p.is_error())
        .collect();
    assert!(problems.is_empty(), "{problems:?}");
    let env = repo.environment("staging").unwrap().clone();
    desired(&repo, source, &EnvChange::new(env, Change::Updated), COMMIT).unwrap()
}

fn executor(fake: &Fake) -> Executor {
    Executor::new(
        Arc::new(fake.clients()),
        Arc::new(|_: &str, _: &str| {}),
        "acme/shop",
        ExecutorOptions::new()
            .with_poll(Duration::from_millis(1))
            .with_timeout(Duration::from_secs(5)),
    )
}

/// A CloudFormation create-or-update call, reduced to what decides the stack.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    stack: String,
    template: String,
    parameters: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    capabilities: Vec<String>,
}

/// Direct mode: the CreateChangeSet request the tool makes.
async fn direct_call(src: &Memory) -> Call {
    let d = desired_staging(src);
    let fake = Fake::new();
    let o = executor(&fake).run(&d).await;
    assert_eq!(o.outcome, Outcome::Succeeded, "{o:?}");
    let st = fake.state.lock().unwrap();
    let req = &st.change_set_requests[0];
    assert_eq!(req.kind, ChangeSetKind::Create);
    let TemplateSource::Body(template) = &req.template else {
        panic!("inline template expected")
    };
    Call {
        stack: req.stack_name.clone(),
        template: template.clone(),
        parameters: req.parameters.clone(),
        tags: req.tags.clone(),
        capabilities: req.capabilities.clone(),
    }
}

/// Pipeline mode: what the tool sends (the pipeline stack is up to date, so
/// it only starts the pipeline), and the pipeline stack's parameters.
async fn pipeline_start(src: &Memory) -> (StartExecution, BTreeMap<String, String>) {
    let d = desired_staging(src);
    let p = d.pipeline_stack.clone().unwrap();
    let fake = Fake::new().with_stack(
        Stack {
            name: p.name.clone(),
            id: format!("arn:{}", p.name),
            status: "CREATE_COMPLETE".into(),
            parameters: p.parameters.clone(),
            tags: p.tags.clone(),
            ..Default::default()
        },
        &p.template_body,
    );
    let normalized = crate::template::Template::parse("p", &p.template_body)
        .unwrap()
        .normalized();
    let variables = normalized
        .pointer("/Resources/Pipeline/Properties/Variables")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v["Name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    fake.state.lock().unwrap().pipelines.insert(
        "staging-deploy".into(),
        Pipeline {
            name: "staging-deploy".into(),
            pipeline_type: "V2".into(),
            variables,
            source_actions: vec![SourceAction {
                name: "Source".into(),
                provider: "CodeStarSourceConnection".into(),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let o = executor(&fake).run(&d).await;
    assert_eq!(o.outcome, Outcome::Succeeded, "{o:?}");
    assert!(
        !fake
            .calls()
            .iter()
            .any(|c| c.starts_with("CreateChangeSet")),
        "the pipeline stack is up to date: {:?}",
        fake.calls()
    );
    let start = fake.state.lock().unwrap().executions[0].clone();
    (start, p.parameters.clone())
}

/// Resolves the intrinsic functions a pipeline template uses in action
/// configurations: `Ref` to a parameter, `Fn::Sub` over parameters, plain
/// strings.
fn resolve(v: &Value, params: &BTreeMap<String, String>) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Object(m) if m.contains_key("Ref") => {
            let name = m["Ref"].as_str().unwrap();
            params
                .get(name)
                .cloned()
                .unwrap_or_else(|| format!("<{name}>"))
        }
        Value::Object(m) if m.contains_key("Fn::Sub") => {
            let mut s = m["Fn::Sub"].as_str().unwrap().to_string();
            for (k, val) in params {
                s = s.replace(&format!("${{{k}}}"), val);
            }
            s
        }
        other => format!("<{other}>"),
    }
}

/// Replaces `#{variables.X}` and `#{SourceVariables.CommitId}` as
/// CodePipeline does at run time.
fn run_time(s: &str, vars: &BTreeMap<String, String>, commit: &str) -> String {
    let mut out = s.replace("#{SourceVariables.CommitId}", commit);
    for (k, v) in vars {
        out = out.replace(&format!("#{{variables.{k}}}"), v);
    }
    out
}

/// The files of each artifact, keyed by artifact name.
type Artifacts = BTreeMap<String, BTreeMap<String, String>>;

/// What `gitops render` writes, as a function of the repository, the
/// environment and the commit (the real one, or a broken one in the
/// negative checks).
type Renderer = dyn Fn(&Memory, &str, &str) -> BTreeMap<String, String>;

fn real_render(src: &Memory, env: &str, commit: &str) -> BTreeMap<String, String> {
    let repo = Repository::load(src).unwrap();
    let e = repo.environment(env).unwrap().clone();
    let spec = desired(&repo, src, &EnvChange::new(e, Change::Updated), commit)
        .unwrap()
        .stack
        .unwrap();
    let r = render(&spec);
    [
        (RENDERED_TEMPLATE.to_string(), r.template),
        (RENDERED_CONFIGURATION.to_string(), r.configuration),
    ]
    .into()
}

/// The CloudFormation call the pipeline's deploy action makes, derived from
/// the pipeline template, the pipeline stack's parameters, what the tool
/// sent, and the repository at the pinned commit.
fn pipeline_call(
    pipeline_template: &str,
    stack_params: &BTreeMap<String, String>,
    start: &StartExecution,
    repo_at_commit: &Memory,
    renderer: &Renderer,
) -> Call {
    let t = crate::template::Template::parse("pipeline.yaml", pipeline_template).unwrap();
    let normalized = t.normalized();
    // Stack parameters the stack does not pass keep their defaults.
    let mut params = stack_params.clone();
    for (k, p) in &t.parameters {
        if let Some(d) = &p.default {
            params.entry(k.clone()).or_insert_with(|| d.clone());
        }
    }
    // Pipeline variables: declared defaults, overridden by the request.
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    for v in normalized
        .pointer("/Resources/Pipeline/Properties/Variables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(n), Some(d)) = (v["Name"].as_str(), v.get("DefaultValue")) {
            vars.insert(n.into(), resolve(d, &params));
        }
    }
    vars.extend(start.variables.clone());
    let all = actions(&normalized);
    let source = all.iter().find(|a| a.category == "Source").unwrap();
    let pinned = start
        .source_revisions
        .iter()
        .find(|r| r.action_name == source.name)
        .expect("the tool pins the source action")
        .value
        .clone();
    // The source artifact is the repository at the pinned commit (read
    // lazily below); build artifacts are what their builds write.
    let source_artifact = source.outputs[0].clone();
    let mut artifacts: Artifacts = BTreeMap::new();
    for a in all.iter().filter(|a| a.provider == "CodeBuild") {
        let project = a.configuration["ProjectName"]["Ref"].as_str().unwrap();
        let p = &normalized["Resources"][project]["Properties"];
        let spec = p["Source"]["BuildSpec"].as_str().unwrap();
        if !spec.contains("\" render --repo . --environment \"$GITOPS_ENVIRONMENT\" --commit \"$GITOPS_COMMIT\" --out render") {
            continue;
        }
        assert!(spec.contains("base-directory: render"), "{spec}");
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for e in p["Environment"]["EnvironmentVariables"]
            .as_array()
            .into_iter()
            .flatten()
        {
            env.insert(
                e["Name"].as_str().unwrap().into(),
                resolve(&e["Value"], &params),
            );
        }
        if let Some(j) = a.configuration.get("EnvironmentVariables") {
            let list: Vec<Value> =
                serde_json::from_str(&run_time(&resolve(j, &params), &vars, &pinned)).unwrap();
            for e in list {
                env.insert(
                    e["name"].as_str().unwrap().into(),
                    e["value"].as_str().unwrap().into(),
                );
            }
        }
        let out = renderer(
            repo_at_commit,
            &env["GITOPS_ENVIRONMENT"],
            &env["GITOPS_COMMIT"],
        );
        artifacts.insert(a.outputs[0].clone(), out);
    }
    let deploy = all
        .iter()
        .find(|a| a.category == "Deploy" && a.provider == "CloudFormation")
        .unwrap();
    let c = |k: &str| {
        deploy
            .configuration
            .get(k)
            .map(|v| run_time(&resolve(v, &params), &vars, &pinned))
    };
    assert_eq!(c("ActionMode").as_deref(), Some("CREATE_UPDATE"));
    let file = |at: String| -> String {
        let (artifact, path) = at.split_once("::").unwrap();
        assert!(
            deploy.inputs.iter().any(|i| i == artifact),
            "{artifact} is not an input of the deploy action"
        );
        if artifact == source_artifact {
            return match repo_at_commit.read(path).unwrap() {
                Entry::File(b) => String::from_utf8(b).unwrap(),
                other => panic!("the repository has no file {path}: {other:?}"),
            };
        }
        artifacts[artifact]
            .get(path)
            .unwrap_or_else(|| panic!("{artifact} has no {path}"))
            .clone()
    };
    let template = file(c("TemplatePath").unwrap());
    let mut parameters = BTreeMap::new();
    let mut tags = BTreeMap::new();
    if let Some(at) = c("TemplateConfiguration") {
        let cfg: Value = serde_json::from_str(&file(at)).unwrap();
        for (k, v) in cfg["Parameters"].as_object().into_iter().flatten() {
            parameters.insert(k.clone(), v.as_str().unwrap().to_string());
        }
        for (k, v) in cfg["Tags"].as_object().into_iter().flatten() {
            tags.insert(k.clone(), v.as_str().unwrap().to_string());
        }
    }
    if let Some(o) = c("ParameterOverrides") {
        let o: BTreeMap<String, String> = serde_json::from_str(&o).unwrap();
        parameters.extend(o);
    }
    Call {
        stack: c("StackName").unwrap(),
        template,
        parameters,
        tags,
        capabilities: c("Capabilities")
            .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
            .unwrap_or_default(),
    }
}

#[tokio::test]
async fn pipeline_mode_makes_the_call_direct_mode_makes() {
    let direct = direct_call(&source(None)).await;
    // The environment's own template, five parameters (and EnvironmentName),
    // its two tags and the gitops:* ones.
    assert_eq!(direct.template, OTHER_APP);
    assert_eq!(direct.parameters.len(), 6, "{:?}", direct.parameters);
    assert_eq!(direct.tags["team"], "checkout");
    assert_eq!(direct.tags["cost-center"], "4711");
    assert_eq!(direct.tags["gitops:commit"], COMMIT);
    assert_eq!(direct.tags["gitops:managed-by"], "acme/shop");
    assert_eq!(direct.tags["gitops:environment"], "staging");

    let src = source(Some(BASIC_PIPELINE));
    let (start, params) = pipeline_start(&src).await;
    assert_eq!(start.source_revisions[0].value, COMMIT);
    let derived = pipeline_call(BASIC_PIPELINE, &params, &start, &src, &real_render);
    assert_eq!(derived, direct);
}

#[tokio::test]
async fn the_comparison_fails_when_a_parameter_or_the_template_override_is_dropped() {
    let direct = direct_call(&source(None)).await;
    let src = source(Some(BASIC_PIPELINE));
    let (start, params) = pipeline_start(&src).await;

    // A render that drops one parameter.
    let drop_param = |s: &Memory, e: &str, c: &str| {
        let mut files = real_render(s, e, c);
        let mut cfg: Value = serde_json::from_str(&files[RENDERED_CONFIGURATION]).unwrap();
        cfg["Parameters"].as_object_mut().unwrap().remove("Domain");
        files.insert(RENDERED_CONFIGURATION.into(), cfg.to_string());
        files
    };
    let derived = pipeline_call(BASIC_PIPELINE, &params, &start, &src, &drop_param);
    assert_ne!(derived, direct);
    assert!(!derived.parameters.contains_key("Domain"));

    // The old example: a hard-coded template and two parameters.
    let old = BASIC_PIPELINE
        .replace(
            "TemplatePath: RenderOutput::template.yaml",
            "TemplatePath: SourceOutput::common/environment.yaml",
        )
        .replace(
            "                TemplateConfiguration: RenderOutput::template-configuration.json\n",
            "                ParameterOverrides: '{\"AppVersion\": \"#{variables.AppVersion}\", \"LogLevel\": \"#{variables.LogLevel}\"}'\n",
        )
        .replace(
            "              InputArtifacts:\n                - Name: RenderOutput\n",
            "              InputArtifacts:\n                - Name: SourceOutput\n",
        );
    assert_ne!(old, BASIC_PIPELINE);
    let derived = pipeline_call(&old, &params, &start, &src, &real_render);
    assert_ne!(
        derived.template, direct.template,
        "template override dropped"
    );
    assert_ne!(derived.parameters, direct.parameters);
    assert!(derived.tags.is_empty());
}

#[test]
fn render_writes_every_parameter_and_tag() {
    let src = source(None);
    let files = real_render(&src, "staging", COMMIT);
    assert_eq!(files[RENDERED_TEMPLATE], OTHER_APP);
    let cfg: Value = serde_json::from_str(&files[RENDERED_CONFIGURATION]).unwrap();
    assert_eq!(cfg["Parameters"]["Replicas"], "3");
    assert_eq!(cfg["Parameters"]["EnvironmentName"], "staging");
    assert_eq!(cfg["Tags"]["gitops:commit"], COMMIT);
    assert_eq!(cfg["Tags"]["cost-center"], "4711");
}

fn warnings(text: &str) -> Vec<String> {
    let t = crate::template::Template::parse("common/pipeline.yaml", text).unwrap();
    trigger_warnings(&t)
        .into_iter()
        .map(|p| format!("{}:{}: {}", p.file, p.line.unwrap_or(0), p.message))
        .collect()
}

#[test]
fn a_source_that_triggers_on_push_is_warned_about() {
    assert_eq!(warnings(BASIC_PIPELINE), Vec::<String>::new());
    let pushy = BASIC_PIPELINE.replace("                DetectChanges: \"false\"\n", "");
    assert_ne!(pushy, BASIC_PIPELINE);
    let w = warnings(&pushy);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("common/pipeline.yaml:"), "{w:?}");
    assert!(
        w[0].contains("source action `Source` (CodeStarSourceConnection) starts the pipeline by itself on every push")
            && w[0].contains("DetectChanges: \"false\""),
        "{w:?}"
    );
    let line: usize = w[0].split(':').nth(1).unwrap().parse().unwrap();
    assert_eq!(
        pushy.lines().nth(line - 1).unwrap().trim(),
        "Pipeline:",
        "placed on the pipeline resource"
    );
    let truthy = BASIC_PIPELINE.replace("DetectChanges: \"false\"", "DetectChanges: true");
    assert_eq!(warnings(&truthy).len(), 1);
    let boolean = BASIC_PIPELINE.replace("DetectChanges: \"false\"", "DetectChanges: false");
    assert!(warnings(&boolean).is_empty());
}

#[test]
fn a_git_trigger_and_polling_sources_are_warned_about() {
    let trigger = BASIC_PIPELINE.replace(
        "      ExecutionMode: QUEUED\n",
        "      ExecutionMode: QUEUED\n      Triggers:\n        - ProviderType: CodeStarSourceConnection\n          GitConfiguration:\n            SourceActionName: Source\n            Push:\n              - Branches: {Includes: [main]}\n",
    );
    assert_ne!(trigger, BASIC_PIPELINE);
    let w = warnings(&trigger);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("declares a git trigger"), "{w:?}");
    let codecommit = "Resources:\n  P:\n    Type: AWS::CodePipeline::Pipeline\n    Properties:\n      Stages:\n        - Name: Source\n          Actions:\n            - Name: Src\n              ActionTypeId: {Category: Source, Owner: AWS, Provider: CodeCommit, Version: '1'}\n              Configuration: {RepositoryName: r, BranchName: main}\n";
    let w = warnings(codecommit);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("PollForSourceChanges"), "{w:?}");
    assert!(warnings(&codecommit.replace(
        "BranchName: main}",
        "BranchName: main, PollForSourceChanges: 'false'}"
    ))
    .is_empty());
}

#[test]
fn actions_follow_conditional_stages() {
    let t = crate::template::Template::parse("p", BASIC_PIPELINE).unwrap();
    let all = actions(&t.normalized());
    let names: Vec<String> = all
        .iter()
        .map(|a| format!("{}/{} {} {:?}", a.stage, a.name, a.provider, a.condition))
        .collect();
    assert_eq!(
        names,
        [
            "Source/Source CodeStarSourceConnection None",
            "Render/Render CodeBuild None",
            "Approval/Approve Manual Some(\"ApprovalRequired\")",
            "Deploy/Deploy CloudFormation None",
        ]
    );
}
