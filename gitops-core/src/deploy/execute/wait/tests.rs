//! The wait for a pipeline execution, at the SDK level: CodePipeline is the
//! real `aws-sdk-codepipeline` adapter over mocked responses
//! (`aws-smithy-mocks`), CloudFormation the in-memory fake (the pipeline
//! stack exists and is up to date, so the run only starts the pipeline).
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_codepipeline::operation::get_pipeline::GetPipelineOutput;
use aws_sdk_codepipeline::operation::get_pipeline_execution::GetPipelineExecutionOutput;
use aws_sdk_codepipeline::operation::get_pipeline_state::GetPipelineStateOutput;
use aws_sdk_codepipeline::operation::start_pipeline_execution::StartPipelineExecutionOutput;
use aws_sdk_codepipeline::operation::stop_pipeline_execution::StopPipelineExecutionOutput;
use aws_sdk_codepipeline::types as cp;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};

use crate::aws::fake::Fake;
use crate::aws::sdk::{retry_config, SdkCodePipeline};
use crate::aws::{AwsClients, Stack};
use crate::deploy::{desired, Desired, Executor, ExecutorOptions, Outcome};
use crate::detect::{Change, EnvChange};
use crate::model::Repository;
use crate::source::Memory;

const APP: &str =
    "Parameters:\n  AppVersion: {Type: String}\nResources:\n  Topic: {Type: AWS::SNS::Topic}\n";
const PIPELINE: &str = "Parameters:\n  PipelineName: {Type: String}\n  StackName: {Type: String}\nResources:\n  P: {Type: AWS::CodePipeline::Pipeline}\n";
const ID: &str = "11111111-2222-3333-4444-555555555555";

fn desired_dev() -> Desired {
    let source = Memory::new("x")
        .with_file(
            "gitops.yaml",
            "version: 1\nid: acme/pay\nstack: {template: common/app.yaml}\npipeline: {template: common/pipeline.yaml}\n",
        )
        .with_file("common/app.yaml", APP)
        .with_file("common/pipeline.yaml", PIPELINE)
        .with_file(
            "environments/dev/environment.yaml",
            "parameters: {AppVersion: '1.0'}\n",
        );
    let repo = Repository::load(&source).unwrap();
    let env = repo.environment("dev").unwrap().clone();
    desired(
        &repo,
        &source,
        &EnvChange::new(env, Change::Updated),
        "0123456789abcdef0123",
    )
    .unwrap()
}

/// The fake CloudFormation with the pipeline stack deployed as git wants it.
fn fake_with_pipeline_stack(d: &Desired) -> Fake {
    let p = d.pipeline_stack.clone().unwrap();
    Fake::new().with_stack(
        Stack {
            name: p.name.clone(),
            id: format!("arn:{}", p.name),
            status: "UPDATE_COMPLETE".into(),
            parameters: p.parameters.clone(),
            tags: p.tags.clone(),
            ..Default::default()
        },
        &p.template_body,
    )
}

fn action_type(category: cp::ActionCategory, provider: &str) -> cp::ActionTypeId {
    cp::ActionTypeId::builder()
        .category(category)
        .owner(cp::ActionOwner::Aws)
        .provider(provider)
        .version("1")
        .build()
        .unwrap()
}

fn get_pipeline() -> Rule {
    mock!(aws_sdk_codepipeline::Client::get_pipeline).then_output(|| {
        let source = cp::ActionDeclaration::builder()
            .name("Source")
            .action_type_id(action_type(
                cp::ActionCategory::Source,
                "CodeStarSourceConnection",
            ))
            .build()
            .unwrap();
        GetPipelineOutput::builder()
            .pipeline(
                cp::PipelineDeclaration::builder()
                    .name("dev-deploy")
                    .role_arn("arn:role")
                    .pipeline_type(cp::PipelineType::V2)
                    .stages(
                        cp::StageDeclaration::builder()
                            .name("Source")
                            .actions(source)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .build()
    })
}

fn start() -> Rule {
    mock!(aws_sdk_codepipeline::Client::start_pipeline_execution)
        .match_requests(|r| {
            r.name() == Some("dev-deploy")
                && r.source_revisions()[0].revision_value() == "0123456789abcdef0123"
        })
        .then_output(|| {
            StartPipelineExecutionOutput::builder()
                .pipeline_execution_id(ID)
                .build()
        })
}

fn execution(status: cp::PipelineExecutionStatus) -> GetPipelineExecutionOutput {
    GetPipelineExecutionOutput::builder()
        .pipeline_execution(
            cp::PipelineExecution::builder()
                .pipeline_execution_id(ID)
                .status(status)
                .build(),
        )
        .build()
}

fn action(name: &str, status: cp::ActionExecutionStatus, error: Option<&str>) -> cp::ActionState {
    let mut ex = cp::ActionExecution::builder()
        .status(status)
        .summary(format!("{name} summary"));
    if let Some(e) = error {
        ex = ex
            .error_details(
                cp::ErrorDetails::builder()
                    .code("JobFailed")
                    .message(e)
                    .build(),
            )
            .external_execution_url("https://console.example/build/42");
    }
    cp::ActionState::builder()
        .action_name(name)
        .latest_execution(ex.build())
        .build()
}

fn stage(
    name: &str,
    status: cp::StageExecutionStatus,
    actions: Vec<cp::ActionState>,
) -> cp::StageState {
    cp::StageState::builder()
        .stage_name(name)
        .latest_execution(
            cp::StageExecution::builder()
                .pipeline_execution_id(ID)
                .status(status)
                .build()
                .unwrap(),
        )
        .set_action_states(Some(actions))
        .build()
}

fn state(stages: Vec<cp::StageState>) -> GetPipelineStateOutput {
    GetPipelineStateOutput::builder()
        .pipeline_name("dev-deploy")
        .set_stage_states(Some(stages))
        .build()
}

fn stop() -> Rule {
    mock!(aws_sdk_codepipeline::Client::stop_pipeline_execution)
        .then_output(|| StopPipelineExecutionOutput::builder().build())
}

type Lines = Arc<Mutex<Vec<String>>>;

async fn run(
    fake: &Fake,
    d: &Desired,
    rules: &[&Rule],
    timeout: Duration,
) -> (crate::deploy::EnvOutcome, Lines) {
    let client = mock_client!(aws_sdk_codepipeline, RuleMode::MatchAny, rules, |b| b
        .retry_config(retry_config().with_initial_backoff(Duration::from_millis(1))));
    let clients = AwsClients {
        codepipeline: Arc::new(SdkCodePipeline::new(client)),
        ..fake.clients()
    };
    let lines: Lines = Arc::default();
    let l = lines.clone();
    let exec = Executor::new(
        Arc::new(clients),
        Arc::new(move |_: &str, line: &str| l.lock().unwrap().push(line.to_string())),
        "acme/pay",
        ExecutorOptions::new()
            .with_wait_pipeline(true)
            .with_poll(Duration::from_millis(1))
            .with_timeout(timeout),
    );
    (exec.run(d).await, lines)
}

#[tokio::test]
async fn success_prints_each_stage_and_action_transition() {
    let d = desired_dev();
    let fake = fake_with_pipeline_stack(&d);
    let (get, start, stop) = (get_pipeline(), start(), stop());
    let exec = mock!(aws_sdk_codepipeline::Client::get_pipeline_execution)
        .sequence()
        .output(|| execution(cp::PipelineExecutionStatus::InProgress))
        .times(2)
        .output(|| execution(cp::PipelineExecutionStatus::Succeeded))
        .build();
    let state = mock!(aws_sdk_codepipeline::Client::get_pipeline_state)
        .sequence()
        .output(|| {
            state(vec![stage(
                "Deploy",
                cp::StageExecutionStatus::InProgress,
                vec![action(
                    "Deploy",
                    cp::ActionExecutionStatus::InProgress,
                    None,
                )],
            )])
        })
        .times(2)
        .output(|| {
            state(vec![stage(
                "Deploy",
                cp::StageExecutionStatus::Succeeded,
                vec![action("Deploy", cp::ActionExecutionStatus::Succeeded, None)],
            )])
        })
        .build();
    let (o, lines) = run(
        &fake,
        &d,
        &[&get, &start, &exec, &state, &stop],
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(o.outcome, Outcome::Succeeded, "{o:?}");
    assert!(!o.outcome.is_failure());
    assert_eq!(o.execution_id.as_deref(), Some(ID));
    assert!(o.message.contains("succeeded"), "{}", o.message);
    let lines = lines.lock().unwrap().clone();
    let progress: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("stage") || l.starts_with("  action"))
        .collect();
    assert_eq!(
        progress,
        [
            "stage Deploy: InProgress",
            "  action Deploy/Deploy: InProgress (Deploy summary)",
            "stage Deploy: Succeeded",
            "  action Deploy/Deploy: Succeeded (Deploy summary)",
        ],
        "one line per transition, none repeated: {lines:?}"
    );
    assert_eq!(exec.num_calls(), 3);
    assert_eq!(stop.num_calls(), 0);
}

#[tokio::test]
async fn a_failed_action_fails_with_its_message_and_the_console_link() {
    let d = desired_dev();
    let fake = fake_with_pipeline_stack(&d);
    let (get, start) = (get_pipeline(), start());
    let exec = mock!(aws_sdk_codepipeline::Client::get_pipeline_execution)
        .sequence()
        .output(|| execution(cp::PipelineExecutionStatus::InProgress))
        .output(|| execution(cp::PipelineExecutionStatus::Failed))
        .build();
    let state = mock!(aws_sdk_codepipeline::Client::get_pipeline_state).then_output(|| {
        state(vec![
            stage(
                "Source",
                cp::StageExecutionStatus::Succeeded,
                vec![action("Source", cp::ActionExecutionStatus::Succeeded, None)],
            ),
            stage(
                "Sast",
                cp::StageExecutionStatus::Failed,
                vec![action(
                    "Sast",
                    cp::ActionExecutionStatus::Failed,
                    Some("Error while executing command: cfn-lint. Reason: exit status 2"),
                )],
            ),
        ])
    });
    let (o, lines) = run(
        &fake,
        &d,
        &[&get, &start, &exec, &state],
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(o.outcome, Outcome::Failed, "{o:?}");
    assert!(o.outcome.is_failure(), "exit 1");
    assert_eq!(o.execution_id.as_deref(), Some(ID));
    assert!(
        o.message.contains(&format!("execution {ID} ended Failed at Sast/Sast: Error while executing command: cfn-lint. Reason: exit status 2 (details: https://console.example/build/42)")),
        "{}",
        o.message
    );
    assert!(
        o.message.contains(&format!(
            "https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/dev-deploy/executions/{ID}/timeline?region=us-east-1"
        )),
        "{}",
        o.message
    );
    let lines = lines.lock().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  action Sast/Sast: Failed: Error while executing command")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn stopped_and_superseded_executions_fail() {
    for (status, words) in [
        (
            cp::PipelineExecutionStatus::Stopped,
            "ended Stopped: stopped by alice",
        ),
        (
            cp::PipelineExecutionStatus::Superseded,
            "was superseded by a newer execution",
        ),
    ] {
        let d = desired_dev();
        let fake = fake_with_pipeline_stack(&d);
        let (get, start) = (get_pipeline(), start());
        let s = status.clone();
        let exec =
            mock!(aws_sdk_codepipeline::Client::get_pipeline_execution).then_output(move || {
                GetPipelineExecutionOutput::builder()
                    .pipeline_execution(
                        cp::PipelineExecution::builder()
                            .pipeline_execution_id(ID)
                            .status(s.clone())
                            .status_summary("stopped by alice")
                            .build(),
                    )
                    .build()
            });
        let st =
            mock!(aws_sdk_codepipeline::Client::get_pipeline_state).then_output(|| state(vec![]));
        let (o, _) = run(
            &fake,
            &d,
            &[&get, &start, &exec, &st],
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(o.outcome, Outcome::Failed, "{status:?}: {o:?}");
        assert!(o.message.contains(words), "{status:?}: {}", o.message);
    }
}

#[tokio::test]
async fn the_timeout_fails_and_leaves_the_execution_running() {
    let d = desired_dev();
    let fake = fake_with_pipeline_stack(&d);
    let (get, start, stop) = (get_pipeline(), start(), stop());
    let exec = mock!(aws_sdk_codepipeline::Client::get_pipeline_execution)
        .then_output(|| execution(cp::PipelineExecutionStatus::InProgress));
    let state = mock!(aws_sdk_codepipeline::Client::get_pipeline_state).then_output(|| {
        state(vec![stage(
            "Approval",
            cp::StageExecutionStatus::InProgress,
            vec![action(
                "Approve",
                cp::ActionExecutionStatus::InProgress,
                None,
            )],
        )])
    });
    let (o, lines) = run(
        &fake,
        &d,
        &[&get, &start, &exec, &state, &stop],
        Duration::from_millis(30),
    )
    .await;
    assert_eq!(o.outcome, Outcome::Failed, "{o:?}");
    assert!(o.outcome.is_failure(), "exit 1");
    assert_eq!(o.execution_id.as_deref(), Some(ID));
    assert!(
        o.message.contains(
            "is still InProgress after 0s: stopped waiting, the execution is left running in AWS"
        ),
        "{}",
        o.message
    );
    assert!(o.message.contains("/executions/"), "{}", o.message);
    assert!(exec.num_calls() >= 1);
    assert_eq!(stop.num_calls(), 0, "the execution is left running");
    assert!(
        fake.mutating_calls().is_empty(),
        "{:?}",
        fake.mutating_calls()
    );
    let lines = lines.lock().unwrap();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("stage Approval"))
            .count(),
        1,
        "no repeated line while nothing changes: {lines:?}"
    );
}
