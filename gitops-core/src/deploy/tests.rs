#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::aws::fake::{Fake, Script};
use crate::aws::{Pipeline, SourceAction};
use crate::detect::{Change, EnvChange};
use crate::source::Memory;

const TEMPLATE: &str = "Parameters:\n  AppVersion: {Type: String}\n  EnvironmentName: {Type: String}\nResources:\n  Topic: {Type: AWS::SNS::Topic}\n";
const PIPELINE: &str = "Parameters:\n  PipelineName: {Type: String}\n  StackName: {Type: String}\n  AppVersion: {Type: String, Default: '0'}\nResources:\n  P: {Type: AWS::CodePipeline::Pipeline}\n";

fn repo(pipeline: bool, extra: &str) -> (Repository, Memory) {
    let cfg = if pipeline {
        "version: 1\nid: acme/pay\nstack: {template: common/app.yaml}\npipeline: {template: common/pipeline.yaml}\n"
    } else {
        "version: 1\nid: acme/pay\nstack: {template: common/app.yaml}\n"
    };
    let source = Memory::new("x")
        .with_file("gitops.yaml", cfg)
        .with_file("common/app.yaml", TEMPLATE)
        .with_file("common/pipeline.yaml", PIPELINE)
        .with_file(
            "environments/dev/environment.yaml",
            format!("parameters: {{AppVersion: '1.0'}}\ntags: {{team: pay}}\n{extra}"),
        );
    let repo = Repository::load(&source).unwrap();
    assert!(
        repo.validate(&source).is_empty(),
        "{:?}",
        repo.validate(&source)
    );
    (repo, source)
}

fn change(repo: &Repository, change: Change) -> EnvChange {
    let env = repo.environment("dev").unwrap().clone();
    EnvChange {
        name: env.name.clone(),
        change,
        stack: env.stack.clone(),
        pipeline: env.pipeline.clone(),
        region: env.region.clone(),
        reasons: vec![],
        base: None,
        stack_status: None,
        declaration: None,
        environment: env,
    }
}

fn managed(
    name: &str,
    status: &str,
    params: &[(&str, &str)],
    tags: BTreeMap<String, String>,
) -> Stack {
    Stack {
        name: name.into(),
        id: format!("arn:{name}"),
        status: status.into(),
        parameters: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        tags,
        ..Default::default()
    }
}

fn desired_for(pipeline: bool, extra: &str, ch: Change, commit: &str) -> (Repository, Desired) {
    let (repo, source) = repo(pipeline, extra);
    let d = desired(&repo, &source, &change(&repo, ch), commit).unwrap();
    (repo, d)
}

fn tags(repo: &Repository, commit: &str) -> BTreeMap<String, String> {
    ownership_tags(repo, repo.environment("dev").unwrap(), commit)
}

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

fn executor(fake: &Fake, options: ExecutorOptions) -> (Arc<Executor>, Arc<Lines>) {
    let lines = Arc::new(Lines::default());
    let l = lines.clone();
    let progress =
        Arc::new(move |env: &str, line: &str| l.0.lock().unwrap().push(format!("[{env}] {line}")));
    let exec = Executor::new(
        Arc::new(fake.clients()),
        progress,
        "acme/pay",
        options
            .with_poll(Duration::from_millis(1))
            .with_timeout(Duration::from_secs(5)),
    );
    (Arc::new(exec), lines)
}

fn labels(plan: &EnvPlan) -> Vec<&'static str> {
    plan.actions.iter().map(Action::label).collect()
}

#[test]
fn desired_passes_only_declared_parameters_and_ownership_tags() {
    let (_, d) = desired_for(true, "", Change::Created, "abc123");
    let s = d.stack.unwrap();
    assert_eq!(
        s.parameters.keys().collect::<Vec<_>>(),
        ["AppVersion", "EnvironmentName"]
    );
    assert_eq!(s.parameters["EnvironmentName"], "dev");
    assert_eq!(s.tags[TAG_MANAGED_BY], "acme/pay");
    assert_eq!(s.tags[TAG_ENVIRONMENT], "dev");
    assert_eq!(s.tags[TAG_COMMIT], "abc123");
    assert_eq!(s.tags["team"], "pay");
    let p = d.pipeline_stack.unwrap();
    assert_eq!(p.name, "dev-pipeline");
    let keys: Vec<_> = p
        .parameters
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(
        keys,
        [
            "AppVersion=1.0",
            "PipelineName=dev-deploy",
            "StackName=dev-app"
        ]
    );
}

#[test]
fn planner_pipeline_mode() {
    let (repo, d) = desired_for(true, "", Change::Created, "c1");
    // new environment: create the pipeline stack, do not start it
    let p = plan_environment("acme/pay", &d, &Observed::new(), PlanOptions::new());
    assert_eq!(labels(&p), ["create-pipeline"]);
    // existing, unchanged pipeline stack: just start the pipeline, pinned
    let spec = d.pipeline_stack.clone().unwrap();
    let mut o = Observed::new();
    o.pipeline_stack = Some(managed(
        "dev-pipeline",
        "CREATE_COMPLETE",
        &[
            ("AppVersion", "1.0"),
            ("PipelineName", "dev-deploy"),
            ("StackName", "dev-app"),
        ],
        tags(&repo, "old"),
    ));
    o.pipeline_stack_template = Some(spec.template_normalized.clone());
    let p = plan_environment("acme/pay", &d, &o, PlanOptions::new());
    assert_eq!(labels(&p), ["start-pipeline"]);
    match &p.actions[0] {
        Action::StartPipeline {
            commit, pipeline, ..
        } => {
            assert_eq!(commit, "c1");
            assert_eq!(pipeline, "dev-deploy");
        }
        a => panic!("{a:?}"),
    }
    // a changed parameter updates the pipeline stack first
    o.pipeline_stack
        .as_mut()
        .unwrap()
        .parameters
        .insert("AppVersion".into(), "0.9".into());
    let p = plan_environment("acme/pay", &d, &o, PlanOptions::new());
    assert_eq!(labels(&p), ["update-pipeline-stack", "start-pipeline"]);
}

#[test]
fn planner_safety_rules() {
    let (repo, d) = desired_for(false, "account: '111111111111'\n", Change::Updated, "c1");
    let mut o = Observed::new();
    o.account = Some("222222222222".into());
    let p = plan_environment("acme/pay", &d, &o, PlanOptions::new());
    assert!(
        matches!(p.refusal(), Some(Refusal::AccountMismatch { .. })),
        "{p:?}"
    );

    // a stack without the managed-by tag is refused unless adopted
    let (_, d) = desired_for(false, "", Change::Updated, "c1");
    let mut o = Observed::new();
    o.stack = Some(managed("dev-app", "CREATE_COMPLETE", &[], BTreeMap::new()));
    let p = plan_environment("acme/pay", &d, &o, PlanOptions::new());
    assert!(matches!(
        p.refusal(),
        Some(Refusal::ForeignStack {
            managed_by: None,
            ..
        })
    ));
    let p = plan_environment("acme/pay", &d, &o, PlanOptions::new().with_adopt(true));
    assert_eq!(labels(&p), ["update-stack"]);

    // deletions need --allow-delete, and never touch protected environments
    let head = head_with(HEAD_CFG, &[]);
    let d = removed(&base_with("protected: true\n"), &head);
    let mut o = Observed::new();
    o.stack = Some(managed(
        "dev-app",
        "CREATE_COMPLETE",
        &[],
        tags(&repo, "c0"),
    ));
    let p = plan_environment(
        "acme/pay",
        &d,
        &o,
        PlanOptions::new().with_allow_delete(true),
    );
    assert!(matches!(p.refusal(), Some(Refusal::Protected { .. })));
    let d = removed(&base_with(""), &head);
    let p = plan_environment("acme/pay", &d, &o, PlanOptions::new());
    assert!(matches!(
        p.refusal(),
        Some(Refusal::DeleteNotAllowed { .. })
    ));
    let p = plan_environment(
        "acme/pay",
        &d,
        &o,
        PlanOptions::new().with_allow_delete(true),
    );
    assert_eq!(labels(&p), ["delete-stack"]);
    let p = plan_environment("acme/pay", &d, &Observed::new(), PlanOptions::new());
    assert_eq!(labels(&p), ["nothing"]);

    // UPDATE_ROLLBACK_FAILED stops with the next step
    let (_, d) = desired_for(false, "", Change::Updated, "c1");
    let mut o = Observed::new();
    o.stack = Some(managed(
        "dev-app",
        "UPDATE_ROLLBACK_FAILED",
        &[],
        tags(&repo, "c0"),
    ));
    let p = plan_environment("acme/pay", &d, &o, PlanOptions::new());
    let r = p.refusal().unwrap().to_string();
    assert!(
        r.contains("continue-update-rollback --stack-name dev-app"),
        "{r}"
    );
}

#[test]
fn up_to_date_ignores_the_commit_tag_only() {
    let (repo, d) = desired_for(false, "", Change::Updated, "new");
    let spec = d.stack.clone().unwrap();
    let mut o = Observed::new();
    o.stack = Some(managed(
        "dev-app",
        "UPDATE_COMPLETE",
        &[("AppVersion", "1.0"), ("EnvironmentName", "dev")],
        tags(&repo, "old"),
    ));
    o.stack_template = Some(spec.template_normalized.clone());
    assert_eq!(
        labels(&plan_environment("acme/pay", &d, &o, PlanOptions::new())),
        ["nothing"]
    );
    o.stack
        .as_mut()
        .unwrap()
        .tags
        .insert("team".into(), "other".into());
    assert_eq!(
        labels(&plan_environment("acme/pay", &d, &o, PlanOptions::new())),
        ["update-stack"]
    );
    o.stack = Some(managed(
        "dev-app",
        "UPDATE_ROLLBACK_COMPLETE",
        &[("AppVersion", "1.0"), ("EnvironmentName", "dev")],
        tags(&repo, "old"),
    ));
    assert_eq!(
        labels(&plan_environment("acme/pay", &d, &o, PlanOptions::new())),
        ["update-stack"]
    );
}

#[tokio::test]
async fn direct_create_update_noop() {
    let fake = Fake::new();
    let (exec, lines) = executor(&fake, ExecutorOptions::new());
    let (_, d) = desired_for(false, "", Change::Created, "c1");
    let o = exec.run(&d).await;
    assert_eq!(o.outcome, Outcome::Succeeded, "{o:?}");
    assert_eq!(fake.stack("dev-app").unwrap().status, "CREATE_COMPLETE");
    assert!(lines
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("dev-app CREATE_COMPLETE")));
    // the same again: no mutating call at all
    let before = fake.mutating_calls().len();
    let (_, d) = desired_for(false, "", Change::Updated, "c2");
    let o = exec.run(&d).await;
    assert_eq!(o.outcome, Outcome::NoOp, "{o:?}");
    assert_eq!(
        fake.mutating_calls().len(),
        before,
        "{:?}",
        fake.mutating_calls()
    );
    assert_eq!(o.stack_status.as_deref(), Some("CREATE_COMPLETE"));
    // a parameter change updates
    let (_, d) = desired_for(false, "", Change::Updated, "c3");
    let mut d2 = d.clone();
    d2.stack
        .as_mut()
        .unwrap()
        .parameters
        .insert("AppVersion".into(), "2.0".into());
    let o = exec.run(&d2).await;
    assert_eq!(o.outcome, Outcome::Succeeded, "{o:?}");
    assert_eq!(
        fake.stack("dev-app").unwrap().parameters["AppVersion"],
        "2.0"
    );
    assert!(fake.state.lock().unwrap().change_sets.is_empty());
}

#[tokio::test]
async fn protected_environments_get_termination_protection() {
    let fake = Fake::new();
    let (exec, _) = executor(&fake, ExecutorOptions::new());
    let (_, d) = desired_for(false, "protected: true\n", Change::Created, "c1");
    let o = exec.run(&d).await;
    assert_eq!(o.outcome, Outcome::Succeeded, "{o:?}");
    assert_eq!(
        fake.stack("dev-app").unwrap().termination_protection,
        Some(true)
    );
    assert!(fake
        .calls()
        .contains(&"UpdateTerminationProtection dev-app true".to_string()));
}

#[tokio::test]
async fn rollback_complete_is_deleted_and_recreated() {
    let (repo, d) = desired_for(false, "", Change::Updated, "c1");
    let fake = Fake::new().with_stack(
        managed("dev-app", "ROLLBACK_COMPLETE", &[], tags(&repo, "c0")),
        TEMPLATE,
    );
    let (exec, _) = executor(&fake, ExecutorOptions::new());
    let o = exec.run(&d).await;
    assert_eq!(o.outcome, Outcome::Succeeded, "{o:?}");
    let calls = fake.mutating_calls();
    assert_eq!(calls[0], "DeleteStack dev-app", "{calls:?}");
    assert!(calls.contains(&"CreateChangeSet dev-app".to_string()));
    assert_eq!(fake.stack("dev-app").unwrap().status, "CREATE_COMPLETE");
}

#[tokio::test]
async fn update_rollback_failed_stops_with_the_next_step() {
    let (repo, d) = desired_for(false, "", Change::Updated, "c1");
    let fake = Fake::new().with_stack(
        managed("dev-app", "UPDATE_ROLLBACK_FAILED", &[], tags(&repo, "c0")),
        TEMPLATE,
    );
    let (exec, _) = executor(&fake, ExecutorOptions::new());
    let o = exec.run(&d).await;
    assert_eq!(o.outcome, Outcome::Refused);
    assert!(
        o.message
            .contains("aws cloudformation continue-update-rollback --stack-name dev-app"),
        "{}",
        o.message
    );
    assert!(fake.mutating_calls().is_empty());
}

#[tokio::test]
async fn empty_change_set_is_a_noop_and_is_deleted() {
    let (repo, d) = desired_for(false, "", Change::Updated, "c1");
    // The planner sees a difference (another tag), but CloudFormation computes
    // the change set as empty, as it does for a parameter-only no-op.
    let mut t = tags(&repo, "c0");
    t.insert("extra".into(), "x".into());
    let fake = Fake::new().with_stack(managed("dev-app", "UPDATE_COMPLETE", &[], t), TEMPLATE);
    fake.script(
        "dev-app",
        Script {
            empty_change_sets: true,
            ..Default::default()
        },
    );
    let (exec, _) = executor(&fake, ExecutorOptions::new());
    let o = exec.run(&d).await;
    assert_eq!(o.outcome, Outcome::NoOp, "{o:?}");
    assert!(
        fake.state.lock().unwrap().change_sets.is_empty(),
        "the empty change set was deleted"
    );
    assert!(fake
        .calls()
        .contains(&"DeleteChangeSet dev-app".to_string()));
    assert!(!fake
        .calls()
        .iter()
        .any(|c| c.starts_with("ExecuteChangeSet")));
}

#[tokio::test]
async fn stale_change_sets_are_removed() {
    let (repo, d) = desired_for(false, "", Change::Updated, "c1");
    let fake = Fake::new().with_stack(
        managed(
            "dev-app",
            "UPDATE_COMPLETE",
            &[("AppVersion", "0.1")],
            tags(&repo, "c0"),
        ),
        TEMPLATE,
    );
    // a change set left behind by an earlier, interrupted deploy, and the
    // preview of a plan running at the same time
    for name in ["gitops-deploy-old-1", "gitops-plan-running-2"] {
        use crate::aws::CloudFormation;
        let cs = crate::aws::ChangeSetRequest::new(
            "dev-app",
            name,
            crate::aws::ChangeSetKind::Update,
            crate::aws::TemplateSource::Body("x".into()),
        );
        fake.create_change_set(cs).await.unwrap();
    }
    let (exec, lines) = executor(&fake, ExecutorOptions::new());
    let o = exec.run(&d).await;
    assert_eq!(o.outcome, Outcome::Succeeded, "{o:?}");
    let left: Vec<String> = fake
        .state
        .lock()
        .unwrap()
        .change_sets
        .keys()
        .map(|(_, n)| n.clone())
        .collect();
    assert_eq!(
        left,
        ["gitops-plan-running-2"],
        "only deploy's own are swept"
    );
    assert!(lines
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("removing stale change set `gitops-deploy-old-1`")));
}

#[tokio::test]
async fn busy_stack_is_waited_on_then_fails_past_the_timeout() {
    let (repo, d) = desired_for(false, "", Change::Updated, "c1");
    let fake = Fake::new().with_stack(
        managed(
            "dev-app",
            "UPDATE_COMPLETE",
            &[("AppVersion", "0.1")],
            tags(&repo, "c0"),
        ),
        TEMPLATE,
    );
    fake.script(
        "dev-app",
        Script {
            busy_polls: 5,
            ..Default::default()
        },
    );
    let (exec, lines) = executor(&fake, ExecutorOptions::new());
    let o = exec.run(&d).await;
    assert_eq!(o.outcome, Outcome::Succeeded, "{o:?}");
    assert!(lines
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("waiting for `dev-app`: it is busy (UPDATE_IN_PROGRESS)")));

    fake.script(
        "dev-app",
        Script {
            busy_polls: 1_000_000,
            ..Default::default()
        },
    );
    let lines = Arc::new(Lines::default());
    let l = lines.clone();
    let exec = Executor::new(
        Arc::new(fake.clients()),
        Arc::new(move |e: &str, m: &str| l.0.lock().unwrap().push(format!("[{e}] {m}"))),
        "acme/pay",
        ExecutorOptions::new()
            .with_poll(Duration::from_millis(1))
            .with_timeout(Duration::from_millis(30)),
    );
    let (_, d) = desired_for(false, "", Change::Updated, "c2");
    let o = exec.run(&d).await;
    assert_eq!(o.outcome, Outcome::Failed);
    assert!(
        o.message.contains("is still busy (UPDATE_IN_PROGRESS)") && o.message.contains("--timeout"),
        "{}",
        o.message
    );
}

#[tokio::test]
async fn failed_update_lists_failed_resources() {
    let (repo, d) = desired_for(false, "", Change::Updated, "c1");
    let fake = Fake::new().with_stack(
        managed(
            "dev-app",
            "UPDATE_COMPLETE",
            &[("AppVersion", "0.1")],
            tags(&repo, "c0"),
        ),
        TEMPLATE,
    );
    fake.script(
        "dev-app",
        Script {
            fail_with: Some("UPDATE_ROLLBACK_COMPLETE".into()),
            ..Default::default()
        },
    );
    let (exec, _) = executor(&fake, ExecutorOptions::new());
    let o = exec.run(&d).await;
    assert_eq!(o.outcome, Outcome::Failed);
    assert_eq!(o.stack_status.as_deref(), Some("UPDATE_ROLLBACK_COMPLETE"));
    assert_eq!(o.failures.len(), 1, "{o:?}");
    assert!(o.failures[0].contains("Topic") && o.failures[0].contains("Access Denied"));
}

#[tokio::test]
async fn account_mismatch_changes_nothing() {
    let (_, d) = desired_for(false, "account: '999999999999'\n", Change::Created, "c1");
    let fake = Fake::new();
    let (exec, _) = executor(&fake, ExecutorOptions::new());
    let o = exec.run(&d).await;
    assert_eq!(o.outcome, Outcome::Refused);
    assert!(
        o.message.contains("999999999999") && o.message.contains("123456789012"),
        "{}",
        o.message
    );
    assert!(fake.mutating_calls().is_empty());
    assert!(fake.calls().contains(&"GetCallerIdentity".to_string()));
}

#[tokio::test]
async fn pipeline_start_is_pinned_with_declared_variables() {
    let (repo, d) = desired_for(true, "", Change::Updated, "0123456789abcdef");
    let spec = d.pipeline_stack.clone().unwrap();
    let fake = Fake::new().with_stack(
        managed(
            "dev-pipeline",
            "CREATE_COMPLETE",
            &[
                ("AppVersion", "1.0"),
                ("PipelineName", "dev-deploy"),
                ("StackName", "dev-app"),
            ],
            tags(&repo, "c0"),
        ),
        PIPELINE,
    );
    fake.state.lock().unwrap().pipelines.insert(
        "dev-deploy".into(),
        Pipeline {
            name: "dev-deploy".into(),
            pipeline_type: "V2".into(),
            variables: vec!["AppVersion".into()],
            source_actions: vec![SourceAction {
                name: "Source".into(),
                provider: "CodeStarSourceConnection".into(),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let _ = spec;
    fake.state.lock().unwrap().execution_statuses =
        vec!["InProgress".into(), "InProgress".into(), "Succeeded".into()];
    let (exec, _) = executor(&fake, ExecutorOptions::new().with_wait_pipeline(true));
    let o = exec.run(&d).await;
    assert_eq!(o.outcome, Outcome::Succeeded, "{o:?}");
    assert_eq!(o.execution_id.as_deref(), Some("exec-1"));
    let st = fake.state.lock().unwrap();
    let req = &st.executions[0];
    assert_eq!(req.source_revisions.len(), 1);
    assert_eq!(req.source_revisions[0].action_name, "Source");
    assert_eq!(req.source_revisions[0].value, "0123456789abcdef");
    assert_eq!(
        req.variables.keys().collect::<Vec<_>>(),
        ["AppVersion"],
        "only declared variables"
    );
    assert_eq!(
        st.calls
            .iter()
            .filter(|c| c.starts_with("GetPipelineExecution"))
            .count(),
        3
    );
    assert!(
        !st.calls.iter().any(|c| c.starts_with("CreateChangeSet")),
        "unchanged pipeline stack is not updated"
    );
}

#[tokio::test]
async fn dry_run_and_concurrency() {
    let fake = Fake::new();
    let (exec, _) = executor(&fake, ExecutorOptions::new().with_dry_run(true));
    let (_, d) = desired_for(false, "", Change::Created, "c1");
    let out = exec.clone().run_all(vec![d.clone(), d], 2).await;
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|o| o.outcome == Outcome::Planned));
    assert!(
        out[0].message.contains("create-stack `dev-app`"),
        "{}",
        out[0].message
    );
    assert!(fake.mutating_calls().is_empty());
}

#[tokio::test]
async fn redeploying_twenty_unchanged_environments_mutates_nothing() {
    let fake = Fake::new();
    let (exec, _) = executor(&fake, ExecutorOptions::new());
    let (_, d) = desired_for(false, "", Change::Created, "c1");
    let many: Vec<Desired> = (0..20)
        .map(|i| {
            let mut d = d.clone();
            d.environment.name = format!("env{i}");
            d.environment.stack = format!("env{i}-app");
            let s = d.stack.as_mut().unwrap();
            s.name = format!("env{i}-app");
            s.tags.insert(TAG_ENVIRONMENT.into(), format!("env{i}"));
            d
        })
        .collect();
    let first = exec.clone().run_all(many.clone(), 8).await;
    assert!(
        first.iter().all(|o| o.outcome == Outcome::Succeeded),
        "{first:?}"
    );
    let before = fake.mutating_calls().len();
    assert!(
        before >= 40,
        "two mutating calls per creation at least: {before}"
    );
    let again: Vec<Desired> = many
        .into_iter()
        .map(|mut d| {
            d.change = Change::Updated;
            d.commit = "c2".into();
            d.stack
                .as_mut()
                .unwrap()
                .tags
                .insert(TAG_COMMIT.into(), "c2".into());
            d
        })
        .collect();
    let second = exec.run_all(again, 8).await;
    assert!(
        second.iter().all(|o| o.outcome == Outcome::NoOp),
        "{second:?}"
    );
    assert_eq!(
        fake.mutating_calls().len(),
        before,
        "no mutating call on redeploy"
    );
}

#[test]
fn printed_plans_mask_no_echo_parameters() {
    let (_, mut d) = desired_for(false, "", Change::Created, "c1");
    let spec = d.stack.as_mut().unwrap();
    spec.secret_parameters = vec!["AppVersion".into()];
    let p = plan_environment("acme/pay", &d, &Observed::new(), PlanOptions::new());
    let json = serde_json::to_string(&p.redacted()).unwrap();
    assert!(!json.contains("\"1.0\""), "{json}");
    assert!(json.contains("\"AppVersion\":\"****\""), "{json}");
    // the plan that is executed keeps the real value
    match &p.actions[0] {
        Action::DeployStack { spec, .. } => assert_eq!(spec.parameters["AppVersion"], "1.0"),
        a => panic!("{a:?}"),
    }
}

// ---------------------------------------------------------------------------
// The deletion rules (deploy::safety): one test per rule, each showing the
// rule refusing and the same removal going ahead once the rule is satisfied.
// ---------------------------------------------------------------------------

/// The base model with environment `dev` (its file ends with `extra`),
/// loaded without requiring it to be valid (a base may hold errors).
fn base_with(extra: &str) -> Repository {
    let source = Memory::new("x")
        .with_file(
            "gitops.yaml",
            "version: 1\nid: acme/pay\nstack: {template: common/app.yaml}\n",
        )
        .with_file("common/app.yaml", TEMPLATE)
        .with_file(
            "environments/dev/environment.yaml",
            format!("parameters: {{AppVersion: '1.0'}}\n{extra}"),
        );
    Repository::load(&source).unwrap()
}

/// A head revision: `cfg` as gitops.yaml, the template, and `files`.
fn head_with(cfg: &str, files: &[(&str, &str)]) -> Memory {
    let mut m = Memory::new("x")
        .with_file("gitops.yaml", cfg)
        .with_file("common/app.yaml", TEMPLATE);
    for (p, c) in files {
        m.insert(p, *c);
    }
    m
}

const HEAD_CFG: &str = "version: 1\nid: acme/pay\nstack: {template: common/app.yaml}\n";

/// `dev` of `base` deleted, as seen from `head`.
fn removed(base: &Repository, head: &Memory) -> Desired {
    let head_repo = Repository::load(head).unwrap();
    desired(&head_repo, head, &change(base, Change::Deleted), "c1").unwrap()
}

/// `dev-app`, ours, of environment `dev`.
fn dev_stack() -> Stack {
    let mut t = BTreeMap::new();
    t.insert(TAG_MANAGED_BY.to_string(), "acme/pay".to_string());
    t.insert(TAG_ENVIRONMENT.to_string(), "dev".to_string());
    let mut s = managed("dev-app", "UPDATE_COMPLETE", &[], t);
    s.termination_protection = Some(false);
    s
}

fn observed_with(stack: Stack) -> Observed {
    let mut o = Observed::new();
    o.stack = Some(stack);
    o
}

fn allow() -> PlanOptions {
    PlanOptions::new().with_allow_delete(true)
}

#[test]
fn deletion_needs_the_environment_gone_at_head_as_detected() {
    let base = base_with("");
    // A detect result says `dev` was deleted, but head declares it.
    let head = head_with(
        HEAD_CFG,
        &[(
            "environments/dev/environment.yaml",
            "parameters: {AppVersion: '1.0'}\n",
        )],
    );
    let d = removed(&base, &head);
    assert!(d.declared_at_head);
    let p = plan_environment("acme/pay", &d, &observed_with(dev_stack()), allow());
    match p.refusal() {
        Some(
            r @ Refusal::DetectMismatch {
                environment,
                listed: Change::Deleted,
            },
        ) => {
            assert_eq!(environment, "dev");
            assert!(r.to_string().contains("declared at head"), "{r}");
        }
        r => panic!("{r:?}"),
    }
    // And the other way: listed as updated, but not declared at head.
    let d = desired(
        &Repository::load(&head_with(HEAD_CFG, &[])).unwrap(),
        &head_with(HEAD_CFG, &[]),
        &EnvChange::new(
            Environment::undeclared("ghost", "ghost-app", "us-east-1"),
            Change::Updated,
        ),
        "c1",
    )
    .unwrap();
    assert!(!d.declared_at_head && d.stack.is_none());
    let p = plan_environment("acme/pay", &d, &Observed::new(), allow());
    assert!(
        matches!(
            p.refusal(),
            Some(Refusal::DetectMismatch {
                listed: Change::Updated,
                ..
            })
        ),
        "{p:?}"
    );
    // The same removal with the folder really gone is deleted.
    let d = removed(&base, &head_with(HEAD_CFG, &[]));
    let p = plan_environment("acme/pay", &d, &observed_with(dev_stack()), allow());
    assert_eq!(labels(&p), ["delete-stack"]);
}

#[test]
fn a_gitops_yaml_change_alone_never_deletes() {
    let base = base_with("");
    // `environments.file` misspelt: the file is still there at its base path.
    let cfg = "version: 1\nid: acme/pay\nenvironments: {file: enviroment.yaml}\nstack: {template: common/app.yaml}\n";
    let head = head_with(
        cfg,
        &[(
            "environments/dev/environment.yaml",
            "parameters: {AppVersion: '1.0'}\n",
        )],
    );
    let d = removed(&base, &head);
    assert!(!d.declared_at_head);
    assert!(d.removal.as_ref().unwrap().file_at_head);
    let p = plan_environment("acme/pay", &d, &observed_with(dev_stack()), allow());
    let r = p.refusal().unwrap();
    assert!(matches!(r, Refusal::FileStillThere { .. }), "{r:?}");
    let text = r.to_string();
    assert!(
        text.contains("`dev`")
            && text.contains("environments/dev/environment.yaml")
            && text.contains("remove its folder in a commit of its own"),
        "{text}"
    );
    // Refused even when the stacks are already gone: the change is wrong.
    let p = plan_environment("acme/pay", &d, &Observed::new(), allow());
    assert!(matches!(p.refusal(), Some(Refusal::FileStillThere { .. })));
    // The folder itself removed: deleted.
    let d = removed(&base, &head_with(cfg, &[]));
    let p = plan_environment("acme/pay", &d, &observed_with(dev_stack()), allow());
    assert_eq!(labels(&p), ["delete-stack"]);
}

#[test]
fn a_stack_head_still_claims_is_never_deleted() {
    let base = base_with("");
    // Folder `dev` renamed to `app`, and the pattern changed so that `app`
    // resolves to `dev-app` too (in the same region; its account pinned,
    // the base's not: the credentials' account may be that one).
    let cfg =
        "version: 1\nid: acme/pay\nstack: {name: 'dev-{environment}', template: common/app.yaml}\n";
    let head = head_with(
        cfg,
        &[(
            "environments/app/environment.yaml",
            "parameters: {AppVersion: '1.0'}\nprotected: true\naccount: '123456789012'\n",
        )],
    );
    let d = removed(&base, &head);
    let p = plan_environment("acme/pay", &d, &observed_with(dev_stack()), allow());
    match p.refusal() {
        Some(r @ Refusal::ClaimedAtHead { stack, by }) => {
            assert_eq!((stack.as_str(), by.as_str()), ("dev-app", "app"));
            assert!(r.to_string().contains("never deleted"), "{r}");
        }
        r => panic!("{r:?}"),
    }
    // In another region, the name is another stack: deleted.
    let head = head_with(
        cfg,
        &[(
            "environments/app/environment.yaml",
            "parameters: {AppVersion: '1.0'}\nregion: eu-west-1\n",
        )],
    );
    let d = removed(&base, &head);
    assert!(d.removal.as_ref().unwrap().claimed_by.is_empty());
    let p = plan_environment("acme/pay", &d, &observed_with(dev_stack()), allow());
    assert_eq!(labels(&p), ["delete-stack"]);
    // In another pinned account too.
    let base = base_with("account: '111111111111'\n");
    let head = head_with(
        cfg,
        &[(
            "environments/app/environment.yaml",
            "parameters: {AppVersion: '1.0'}\nrole-arn: arn:aws:iam::222222222222:role/deploy\n",
        )],
    );
    assert!(removed(&base, &head).removal.unwrap().claimed_by.is_empty());
}

#[test]
fn only_our_stack_of_that_environment_is_deleted_even_with_adopt() {
    let base = base_with("");
    let d = removed(&base, &head_with(HEAD_CFG, &[]));
    for (key, value) in [(TAG_MANAGED_BY, "someone/else"), (TAG_ENVIRONMENT, "prod")] {
        let mut s = dev_stack();
        s.tags.insert(key.into(), value.into());
        let p = plan_environment("acme/pay", &d, &observed_with(s), allow().with_adopt(true));
        let r = p.refusal().unwrap_or_else(|| panic!("{key}: {p:?}"));
        assert!(matches!(r, Refusal::NotOwned { .. }), "{r:?}");
        assert!(r.to_string().contains(value), "{r}");
    }
    let mut s = dev_stack();
    s.tags.remove(TAG_ENVIRONMENT);
    let p = plan_environment("acme/pay", &d, &observed_with(s), allow());
    assert!(matches!(p.refusal(), Some(Refusal::NotOwned { .. })));
    let p = plan_environment("acme/pay", &d, &observed_with(dev_stack()), allow());
    assert_eq!(labels(&p), ["delete-stack"]);
}

#[test]
fn protected_at_the_base_is_read_strictly() {
    let head = head_with(HEAD_CFG, &[]);
    for (extra, word) in [
        ("protected: true\n", "`protected: true`"),
        ("protected: \"true\"\n", "`protected: \"true\"`"),
        ("protected: \"false\"\n", "not exactly `false`"),
        ("protected: yes\n", "not exactly `false`"),
        ("protected: 1\n", "`protected: 1`"),
        ("protected:\n", "`protected: null`"),
    ] {
        let d = removed(&base_with(extra), &head);
        let p = plan_environment("acme/pay", &d, &observed_with(dev_stack()), allow());
        let r = p.refusal().unwrap_or_else(|| panic!("{extra}: {p:?}"));
        assert!(matches!(r, Refusal::Protected { .. }), "{extra}: {r:?}");
        assert!(r.to_string().contains(word), "{extra}: {r}");
    }
    for extra in ["", "protected: false\n"] {
        let d = removed(&base_with(extra), &head);
        let p = plan_environment("acme/pay", &d, &observed_with(dev_stack()), allow());
        assert_eq!(labels(&p), ["delete-stack"], "{extra}");
    }
    // A base file that does not parse, and an unknown base, count as protected.
    let unparseable = Memory::new("x")
        .with_file("gitops.yaml", HEAD_CFG)
        .with_file("common/app.yaml", TEMPLATE)
        .with_file(
            "environments/dev/environment.yaml",
            "parameters: [unclosed\n",
        );
    let repo = Repository::load(&unparseable).unwrap();
    let decl = BaseDeclaration::in_repository(&repo, "dev");
    assert!(
        matches!(decl, BaseDeclaration::Unparseable { .. }),
        "{decl:?}"
    );
    for decl in [
        decl,
        BaseDeclaration::Unknown {
            why: "deployed commit 1a2b3c4 not in history".into(),
        },
    ] {
        let mut d = removed(&base_with(""), &head);
        d.removal.as_mut().unwrap().base = decl;
        let p = plan_environment("acme/pay", &d, &observed_with(dev_stack()), allow());
        let r = p.refusal().unwrap();
        assert!(
            matches!(r, Refusal::Protected { .. }) && r.to_string().contains("counts as protected"),
            "{r}"
        );
    }
    // A deleted environment whose facts were not gathered is refused too.
    let mut d = removed(&base_with(""), &head);
    d.removal = None;
    let p = plan_environment("acme/pay", &d, &observed_with(dev_stack()), allow());
    assert!(matches!(p.refusal(), Some(Refusal::Protected { .. })));
}

#[test]
fn a_stack_with_termination_protection_is_not_deleted() {
    let d = removed(&base_with(""), &head_with(HEAD_CFG, &[]));
    let mut s = dev_stack();
    s.termination_protection = Some(true);
    let p = plan_environment("acme/pay", &d, &observed_with(s), allow());
    let r = p.refusal().unwrap();
    assert!(matches!(r, Refusal::TerminationProtected { .. }), "{r:?}");
    assert!(
        r.to_string()
            .contains("remove `protected` from its file in a commit of its own"),
        "{r}"
    );
}

#[test]
fn deletions_need_allow_delete() {
    let d = removed(&base_with(""), &head_with(HEAD_CFG, &[]));
    let p = plan_environment(
        "acme/pay",
        &d,
        &observed_with(dev_stack()),
        PlanOptions::new(),
    );
    assert!(matches!(
        p.refusal(),
        Some(Refusal::DeleteNotAllowed { .. })
    ));
    let p = plan_environment("acme/pay", &d, &observed_with(dev_stack()), allow());
    assert_eq!(labels(&p), ["delete-stack"]);
}

/// `n` removed environments `env0`.. whose stacks exist in `fake`, ready to run.
fn removed_many(n: usize, fake: &Fake) -> Vec<Desired> {
    let d = removed(&base_with(""), &head_with(HEAD_CFG, &[]));
    (0..n)
        .map(|i| {
            let mut d = d.clone();
            d.environment.name = format!("env{i}");
            d.environment.stack = format!("env{i}-app");
            let mut s = dev_stack();
            s.name = format!("env{i}-app");
            s.tags.insert(TAG_ENVIRONMENT.into(), format!("env{i}"));
            let mut st = fake.state.lock().unwrap();
            st.templates.insert(s.name.clone(), TEMPLATE.into());
            st.stacks.insert(s.name.clone(), s);
            d
        })
        .collect()
}

#[test]
fn more_deletions_than_the_limit_refuse_them_all() {
    let plan = |env: &str| EnvPlan {
        environment: env.into(),
        change: Change::Deleted,
        region: "us-east-1".into(),
        actions: vec![Action::DeleteStack {
            role: StackRole::Environment,
            stack: format!("{env}-app"),
        }],
        accepted_drift: Vec::new(),
    };
    let mut plans: Vec<EnvPlan> = (0..6).map(|i| plan(&format!("e{i}"))).collect();
    plans.push(EnvPlan {
        actions: vec![Action::Nothing { reason: "x".into() }],
        ..plan("other")
    });
    let mut five = plans[..5].to_vec();
    limit_deletions(&mut five, DEFAULT_MAX_DELETIONS);
    assert!(five.iter().all(|p| labels(p) == ["delete-stack"]));
    limit_deletions(&mut plans, DEFAULT_MAX_DELETIONS);
    for p in &plans[..6] {
        match p.refusal() {
            Some(r @ Refusal::TooManyDeletions { stacks, max: 5 }) => {
                assert_eq!(stacks.len(), 6);
                let text = r.to_string();
                assert!(
                    text.contains("`e0-app`, `e1-app`, `e2-app`, `e3-app`, `e4-app`, `e5-app`")
                        && text.contains("--max-deletions 6"),
                    "{text}"
                );
            }
            r => panic!("{r:?}"),
        }
    }
    assert_eq!(labels(&plans[6]), ["nothing"], "other plans are left alone");
}

#[tokio::test]
async fn a_run_over_the_deletion_limit_deletes_nothing() {
    let fake = Fake::new();
    let many = removed_many(6, &fake);
    let (exec, _) = executor(&fake, ExecutorOptions::new().with_plan(allow()));
    let out = exec.clone().run_all(many.clone(), 3).await;
    assert!(out.iter().all(|o| o.outcome == Outcome::Refused), "{out:?}");
    assert!(
        out[0].message.contains("--max-deletions 6"),
        "{}",
        out[0].message
    );
    assert!(
        fake.mutating_calls().is_empty(),
        "{:?}",
        fake.mutating_calls()
    );
    // With the limit raised, they go.
    let (exec, _) = executor(
        &fake,
        ExecutorOptions::new().with_plan(allow().with_max_deletions(6)),
    );
    let out = exec.run_all(many, 3).await;
    assert!(
        out.iter().all(|o| o.outcome == Outcome::Succeeded),
        "{out:?}"
    );
    assert!(fake.stack("env5-app").is_none());
}

#[test]
fn termination_protection_follows_protected_both_ways() {
    for (extra, current, expected) in [
        ("protected: true\n", Some(false), Some(true)),
        ("", Some(true), Some(false)),
        ("protected: true\n", Some(true), None),
        ("", Some(false), None),
        // Not reported (an emulator): nothing to decide on.
        ("protected: true\n", None, None),
    ] {
        let (repo, d) = desired_for(false, extra, Change::Updated, "c1");
        let spec = d.stack.clone().unwrap();
        let mut s = managed(
            "dev-app",
            "UPDATE_COMPLETE",
            &[("AppVersion", "1.0"), ("EnvironmentName", "dev")],
            tags(&repo, "c0"),
        );
        s.termination_protection = current;
        let mut o = observed_with(s);
        o.stack_template = Some(spec.template_normalized.clone());
        let p = plan_environment("acme/pay", &d, &o, PlanOptions::new());
        match expected {
            Some(on) => assert_eq!(
                p.actions,
                [Action::SetTerminationProtection {
                    role: StackRole::Environment,
                    stack: "dev-app".into(),
                    enabled: on
                }],
                "{extra:?} {current:?}"
            ),
            None => assert_eq!(labels(&p), ["nothing"], "{extra:?} {current:?}"),
        }
    }
    // Pipeline mode: the pipeline stack the tool deploys.
    let (repo, d) = desired_for(true, "protected: true\n", Change::Updated, "c1");
    let spec = d.pipeline_stack.clone().unwrap();
    let mut o = Observed::new();
    let mut s = managed(
        "dev-pipeline",
        "CREATE_COMPLETE",
        &[
            ("AppVersion", "1.0"),
            ("PipelineName", "dev-deploy"),
            ("StackName", "dev-app"),
        ],
        tags(&repo, "old"),
    );
    s.termination_protection = Some(false);
    o.pipeline_stack = Some(s);
    o.pipeline_stack_template = Some(spec.template_normalized.clone());
    let p = plan_environment("acme/pay", &d, &o, PlanOptions::new());
    assert_eq!(labels(&p), ["set-termination-protection", "start-pipeline"]);
}

#[tokio::test]
async fn an_unchanged_stack_gets_termination_protection_turned_on_and_off() {
    for (extra, before, after) in [("protected: true\n", false, true), ("", true, false)] {
        let (repo, d) = desired_for(false, extra, Change::Updated, "c1");
        let mut s = managed(
            "dev-app",
            "UPDATE_COMPLETE",
            &[("AppVersion", "1.0"), ("EnvironmentName", "dev")],
            tags(&repo, "c0"),
        );
        s.termination_protection = Some(before);
        let fake = Fake::new().with_stack(s, TEMPLATE);
        let (exec, _) = executor(&fake, ExecutorOptions::new());
        let o = exec.run(&d).await;
        assert_eq!(o.outcome, Outcome::Succeeded, "{o:?}");
        assert_eq!(
            fake.mutating_calls(),
            [format!("UpdateTerminationProtection dev-app {after}")]
        );
        assert_eq!(
            fake.stack("dev-app").unwrap().termination_protection,
            Some(after)
        );
    }
}

/// What git said at each deployed commit, for the drift gate.
struct Specs(BTreeMap<String, StackSpec>);

impl DeployedHistory for Specs {
    fn spec_at(
        &self,
        commit: &str,
        _env: &str,
        stack: &str,
    ) -> Result<StackSpec, DeployedHistoryError> {
        self.0
            .get(commit)
            .filter(|s| s.name == stack)
            .cloned()
            .ok_or(DeployedHistoryError::NotInClone)
    }
}

fn gated(fake: &Fake, specs: &Specs, accept: bool) -> Arc<Executor> {
    let (exec, _) = executor(
        fake,
        ExecutorOptions::new().with_plan(
            PlanOptions::new()
                .with_drift_gate(DriftGate::Protected)
                .with_accept_drift(accept),
        ),
    );
    let exec = Arc::into_inner(exec).unwrap();
    Arc::new(exec.with_deployed_history(Arc::new(Specs(specs.0.clone()))))
}

/// The environment of `env_file` deployed to `fake` through the gate at
/// commit c1: what git said at c1, and the deploy's outcome.
async fn deployed_at_c1(fake: &Fake, env_file: &str) -> (Specs, EnvOutcome) {
    let (_, first) = desired_for(false, env_file, Change::Created, "c1");
    let specs = Specs(BTreeMap::from([(
        "c1".to_string(),
        first.stack.clone().unwrap(),
    )]));
    let o = gated(fake, &specs, false).run(&first).await;
    (specs, o)
}

/// The protected environment at commit c2, with AppVersion 2.0.
fn protected_at_c2() -> Desired {
    let (_, mut next) = desired_for(false, "protected: true\n", Change::Updated, "c2");
    next.stack
        .as_mut()
        .unwrap()
        .parameters
        .insert("AppVersion".into(), "2.0".into());
    next
}

#[tokio::test]
async fn the_drift_gate_refuses_an_out_of_band_change_unless_accepted() {
    let fake = Fake::new();
    let (specs, o) = deployed_at_c1(&fake, "protected: true\n").await;
    assert_eq!(o.outcome, Outcome::Succeeded, "{o:?}");
    // A hotfix in the console.
    fake.edit_stack("dev-app", |s| {
        s.parameters
            .insert("AppVersion".into(), "1.0-hotfix".into());
    });
    let next = protected_at_c2();
    let before = fake.mutating_calls().len();
    let o = gated(&fake, &specs, false).run(&next).await;
    assert_eq!(o.outcome, Outcome::Refused, "{o:?}");
    expect_test::expect![[r#"refusing to deploy `dev`: `dev-app` was changed outside gitops since it was deployed from c1: parameters.AppVersion expected 1.0, actual 1.0-hotfix; put the change in git (see `gitops drift --environment dev`), or pass --accept-drift to overwrite it"#]]
    .assert_eq(&o.message);
    assert_eq!(
        fake.mutating_calls().len(),
        before,
        "{:?}",
        fake.mutating_calls()
    );
    assert_eq!(
        fake.stack("dev-app").unwrap().parameters["AppVersion"],
        "1.0-hotfix"
    );

    // A commit the clone does not have: the gate cannot tell, so it refuses.
    let unknown = Specs(BTreeMap::new());
    let o = gated(&fake, &unknown, false).run(&next).await;
    assert_eq!(o.outcome, Outcome::Refused, "{o:?}");
    assert!(
        o.message
            .contains("its deployed commit c1 is not in this clone's history"),
        "{}",
        o.message
    );

    // --accept-drift overwrites it, and says so in the plan.
    let o = gated(&fake, &specs, true).run(&next).await;
    assert_eq!(o.outcome, Outcome::Succeeded, "{o:?}");
    assert_eq!(
        fake.stack("dev-app").unwrap().parameters["AppVersion"],
        "2.0"
    );
    let plan = o.plan.unwrap();
    assert_eq!(plan.accepted_drift.len(), 1, "{plan:?}");
    assert!(
        plan.accepted_drift[0].contains("parameters.AppVersion expected 1.0, actual 1.0-hotfix")
    );
}

#[tokio::test]
async fn the_drift_gate_leaves_unprotected_environments_and_clean_stacks_alone() {
    let fake = Fake::new();
    let (specs, _) = deployed_at_c1(&fake, "").await;
    fake.edit_stack("dev-app", |s| {
        s.parameters
            .insert("AppVersion".into(), "1.0-hotfix".into());
    });
    let (_, next) = desired_for(false, "", Change::Updated, "c2");
    let o = gated(&fake, &specs, false).run(&next).await;
    assert_eq!(
        o.outcome,
        Outcome::Succeeded,
        "unprotected: not gated: {o:?}"
    );

    // Protected and as deployed: the gate passes.
    let fake = Fake::new();
    let (specs, _) = deployed_at_c1(&fake, "protected: true\n").await;
    let next = protected_at_c2();
    let o = gated(&fake, &specs, false).run(&next).await;
    assert_eq!(o.outcome, Outcome::Succeeded, "{o:?}");
    assert!(o.plan.unwrap().accepted_drift.is_empty());
}

#[tokio::test]
async fn the_drift_gate_refuses_resource_drift_except_what_drift_ignore_names() {
    use crate::aws::fake::DriftScript;
    use crate::aws::{PropertyDifference, ResourceDrift};
    let fake = Fake::new();
    let (specs, _) = deployed_at_c1(&fake, "protected: true\n").await;
    fake.script_drift(
        "dev-app",
        DriftScript {
            stack_drift_status: Some("DRIFTED".into()),
            resources: vec![ResourceDrift {
                logical_id: "Topic".into(),
                resource_type: "AWS::SNS::Topic".into(),
                status: "MODIFIED".into(),
                differences: vec![PropertyDifference {
                    path: "/DisplayName".into(),
                    expected: "pay".into(),
                    actual: "hotfix".into(),
                    kind: "NOT_EQUAL".into(),
                }],
            }],
            ..DriftScript::default()
        },
    );
    let (_, next) = desired_for(false, "protected: true\n", Change::Updated, "c2");
    let o = gated(&fake, &specs, false).run(&next).await;
    assert_eq!(o.outcome, Outcome::Refused, "{o:?}");
    assert!(o.message.contains("Topic"), "{}", o.message);
    assert!(o.message.contains("hotfix"), "{}", o.message);
    // drift.ignore: Topic is known noise.
    let exec = Arc::into_inner(gated(&fake, &specs, false))
        .unwrap()
        .with_drift_ignore(vec!["Topic".into()]);
    let o = exec.run(&next).await;
    assert_ne!(o.outcome, Outcome::Refused, "{o:?}");
}
