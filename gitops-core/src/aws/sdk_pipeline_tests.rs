//! Mocked-client tests (`aws-smithy-mocks`) of the adapters moto cannot
//! exercise: pipeline executions in every state, GetPipelineState with its
//! action states, and the three drift-detection calls.

use std::time::Duration;

use aws_sdk_cloudformation::operation::describe_stack_drift_detection_status::DescribeStackDriftDetectionStatusOutput;
use aws_sdk_cloudformation::operation::describe_stack_resource_drifts::DescribeStackResourceDriftsOutput;
use aws_sdk_cloudformation::operation::detect_stack_drift::DetectStackDriftOutput;
use aws_sdk_cloudformation::types as cfn_types;
use aws_sdk_codepipeline::operation::get_pipeline_execution::GetPipelineExecutionOutput;
use aws_sdk_codepipeline::operation::get_pipeline_state::GetPipelineStateOutput;
use aws_sdk_codepipeline::types as cp_types;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};

use super::*;

fn fast_retry() -> RetryConfig {
    retry_config().with_initial_backoff(Duration::from_millis(1))
}

fn cp_client(rules: &[&Rule]) -> SdkCodePipeline {
    SdkCodePipeline::new(mock_client!(
        aws_sdk_codepipeline,
        RuleMode::Sequential,
        rules,
        |b| b.retry_config(fast_retry())
    ))
}

fn cfn_client(rules: &[&Rule]) -> SdkCloudFormation {
    SdkCloudFormation::new(mock_client!(
        aws_sdk_cloudformation,
        RuleMode::Sequential,
        rules,
        |b| b.retry_config(fast_retry())
    ))
}

fn execution_output(
    status: cp_types::PipelineExecutionStatus,
    summary: Option<&str>,
) -> GetPipelineExecutionOutput {
    let mut x = cp_types::PipelineExecution::builder()
        .pipeline_execution_id("exec-1")
        .pipeline_version(4)
        .status(status)
        .artifact_revisions(
            cp_types::ArtifactRevision::builder()
                .name("SourceOutput")
                .revision_id("0123abcd")
                .revision_summary("promote 1.2.3")
                .build(),
        )
        .variables(
            cp_types::ResolvedPipelineVariable::builder()
                .name("AppVersion")
                .resolved_value("1.2.3")
                .build(),
        );
    if let Some(s) = summary {
        x = x.status_summary(s);
    }
    GetPipelineExecutionOutput::builder()
        .pipeline_execution(x.build())
        .build()
}

#[tokio::test]
async fn get_execution_maps_every_state() {
    use cp_types::PipelineExecutionStatus as S;
    for (status, text, running) in [
        (S::InProgress, "InProgress", true),
        (S::Stopping, "Stopping", true),
        (S::Succeeded, "Succeeded", false),
        (S::Failed, "Failed", false),
        (S::Stopped, "Stopped", false),
        (S::Superseded, "Superseded", false),
    ] {
        let s = status.clone();
        let rule = mock!(aws_sdk_codepipeline::Client::get_pipeline_execution)
            .match_requests(|r| {
                r.pipeline_name() == Some("dev-deploy")
                    && r.pipeline_execution_id() == Some("exec-1")
            })
            .then_output(move || execution_output(s.clone(), Some("why")));
        let x = cp_client(&[&rule])
            .get_execution("dev-deploy", "exec-1")
            .await
            .unwrap();
        assert_eq!(x.status, text);
        assert_eq!(x.is_running(), running, "{text}");
        assert_eq!(x.status_summary.as_deref(), Some("why"));
        assert_eq!(x.pipeline_version, Some(4));
        assert_eq!(
            x.artifact_revisions,
            [ExecutedRevision {
                name: "SourceOutput".into(),
                revision_id: Some("0123abcd".into()),
                summary: Some("promote 1.2.3".into()),
            }]
        );
        assert_eq!(x.variables["AppVersion"], "1.2.3");
        assert_eq!(rule.num_calls(), 1);
    }
}

#[tokio::test]
async fn get_execution_of_an_unknown_execution_is_an_error() {
    let rule = mock!(aws_sdk_codepipeline::Client::get_pipeline_execution)
        .sequence()
        .http_status(
            400,
            Some(
                r#"{"__type":"PipelineExecutionNotFoundException","message":"no such execution"}"#
                    .into(),
            ),
        )
        .build();
    let err = cp_client(&[&rule])
        .get_execution("dev-deploy", "nope")
        .await
        .unwrap_err();
    assert_eq!(err.operation, "GetPipelineExecution");
    assert_eq!(
        err.code.as_deref(),
        Some("PipelineExecutionNotFoundException")
    );
}

#[tokio::test]
async fn stage_states_map_stages_and_actions_with_their_errors() {
    let rule = mock!(aws_sdk_codepipeline::Client::get_pipeline_state)
        .match_requests(|r| r.name() == Some("dev-deploy"))
        .then_output(|| {
            let ok = cp_types::ActionState::builder()
                .action_name("Source")
                .latest_execution(
                    cp_types::ActionExecution::builder()
                        .action_execution_id("a-1")
                        .status(cp_types::ActionExecutionStatus::Succeeded)
                        .summary("promote 1.2.3")
                        .build(),
                )
                .build();
            let failed = cp_types::ActionState::builder()
                .action_name("Deploy")
                .entity_url("https://console/cloudformation")
                .latest_execution(
                    cp_types::ActionExecution::builder()
                        .status(cp_types::ActionExecutionStatus::Failed)
                        .error_details(
                            cp_types::ErrorDetails::builder()
                                .code("JobFailed")
                                .message("Stack dev-app is in UPDATE_ROLLBACK_COMPLETE")
                                .build(),
                        )
                        .build(),
                )
                .build();
            let never = cp_types::ActionState::builder()
                .action_name("Later")
                .build();
            GetPipelineStateOutput::builder()
                .stage_states(
                    cp_types::StageState::builder()
                        .stage_name("Source")
                        .latest_execution(
                            cp_types::StageExecution::builder()
                                .pipeline_execution_id("exec-1")
                                .status(cp_types::StageExecutionStatus::Succeeded)
                                .build()
                                .unwrap(),
                        )
                        .action_states(ok)
                        .build(),
                )
                .stage_states(
                    cp_types::StageState::builder()
                        .stage_name("Deploy")
                        .latest_execution(
                            cp_types::StageExecution::builder()
                                .pipeline_execution_id("exec-1")
                                .status(cp_types::StageExecutionStatus::Failed)
                                .build()
                                .unwrap(),
                        )
                        .action_states(failed)
                        .action_states(never)
                        .build(),
                )
                .stage_states(cp_types::StageState::builder().stage_name("Never").build())
                .build()
        });
    let stages = cp_client(&[&rule])
        .stage_states("dev-deploy")
        .await
        .unwrap();
    assert_eq!(
        stages,
        [
            StageState {
                name: "Source".into(),
                status: Some("Succeeded".into()),
                execution_id: Some("exec-1".into()),
                actions: vec![ActionState {
                    name: "Source".into(),
                    status: Some("Succeeded".into()),
                    execution_id: Some("a-1".into()),
                    summary: Some("promote 1.2.3".into()),
                    ..Default::default()
                }],
            },
            StageState {
                name: "Deploy".into(),
                status: Some("Failed".into()),
                execution_id: Some("exec-1".into()),
                actions: vec![
                    ActionState {
                        name: "Deploy".into(),
                        status: Some("Failed".into()),
                        error: Some("Stack dev-app is in UPDATE_ROLLBACK_COMPLETE".into()),
                        external_url: Some("https://console/cloudformation".into()),
                        ..Default::default()
                    },
                    ActionState {
                        name: "Later".into(),
                        ..Default::default()
                    },
                ],
            },
            StageState {
                name: "Never".into(),
                ..Default::default()
            },
        ]
    );
}

#[tokio::test]
async fn stage_states_of_a_missing_pipeline_is_an_error() {
    let rule = mock!(aws_sdk_codepipeline::Client::get_pipeline_state)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"PipelineNotFoundException","message":"no pipeline"}"#.into()),
        )
        .build();
    let err = cp_client(&[&rule]).stage_states("nope").await.unwrap_err();
    assert_eq!(err.operation, "GetPipelineState");
    assert_eq!(err.code.as_deref(), Some("PipelineNotFoundException"));
}

#[tokio::test]
async fn detect_stack_drift_returns_the_detection_id() {
    let rule = mock!(aws_sdk_cloudformation::Client::detect_stack_drift)
        .match_requests(|r| r.stack_name() == Some("dev-app"))
        .then_output(|| {
            DetectStackDriftOutput::builder()
                .stack_drift_detection_id("det-1")
                .build()
        });
    let id = cfn_client(&[&rule])
        .detect_stack_drift("dev-app")
        .await
        .unwrap();
    assert_eq!(id, "det-1");
}

#[tokio::test]
async fn describe_drift_detection_maps_progress_completion_and_failure() {
    use cfn_types::{StackDriftDetectionStatus as D, StackDriftStatus as S};
    let rule = mock!(aws_sdk_cloudformation::Client::describe_stack_drift_detection_status)
        .match_requests(|r| r.stack_drift_detection_id() == Some("det-1"))
        .sequence()
        .output(|| {
            DescribeStackDriftDetectionStatusOutput::builder()
                .stack_id("arn:stack/dev-app/1")
                .stack_drift_detection_id("det-1")
                .detection_status(D::DetectionInProgress)
                .timestamp(DateTime::from_secs(0))
                .build()
        })
        .output(|| {
            DescribeStackDriftDetectionStatusOutput::builder()
                .stack_id("arn:stack/dev-app/1")
                .stack_drift_detection_id("det-1")
                .detection_status(D::DetectionComplete)
                .stack_drift_status(S::Drifted)
                .drifted_stack_resource_count(2)
                .timestamp(DateTime::from_secs(0))
                .build()
        })
        .output(|| {
            DescribeStackDriftDetectionStatusOutput::builder()
                .stack_id("arn:stack/dev-app/1")
                .stack_drift_detection_id("det-1")
                .detection_status(D::DetectionFailed)
                .detection_status_reason("Failed to detect drift on resource Topic")
                .timestamp(DateTime::from_secs(0))
                .build()
        })
        .build();
    let cfn = cfn_client(&[&rule]);
    let first = cfn.describe_drift_detection("det-1").await.unwrap();
    assert_eq!(
        first,
        DriftDetection {
            status: "DETECTION_IN_PROGRESS".into(),
            ..Default::default()
        }
    );
    let done = cfn.describe_drift_detection("det-1").await.unwrap();
    assert_eq!(
        done,
        DriftDetection {
            status: "DETECTION_COMPLETE".into(),
            stack_drift_status: Some("DRIFTED".into()),
            reason: None,
            drifted_resources: Some(2),
        }
    );
    let failed = cfn.describe_drift_detection("det-1").await.unwrap();
    assert_eq!(failed.status, "DETECTION_FAILED");
    assert_eq!(
        failed.reason.as_deref(),
        Some("Failed to detect drift on resource Topic")
    );
    assert_eq!(rule.num_calls(), 3);
}

fn drift(
    logical: &str,
    status: cfn_types::StackResourceDriftStatus,
) -> cfn_types::StackResourceDrift {
    cfn_types::StackResourceDrift::builder()
        .stack_id("arn:stack/dev-app/1")
        .logical_resource_id(logical)
        .resource_type("AWS::SSM::Parameter")
        .stack_resource_drift_status(status)
        .timestamp(DateTime::from_secs(0))
        .build()
}

#[tokio::test]
async fn describe_resource_drifts_collects_every_page_with_differences() {
    let rule = mock!(aws_sdk_cloudformation::Client::describe_stack_resource_drifts)
        .sequence()
        .output(|| {
            let mut modified = drift("Version", cfn_types::StackResourceDriftStatus::Modified);
            modified.property_differences = Some(vec![cfn_types::PropertyDifference::builder()
                .property_path("/Value")
                .expected_value("1.2.3")
                .actual_value("9.9.9")
                .difference_type(cfn_types::DifferenceType::NotEqual)
                .build()]);
            DescribeStackResourceDriftsOutput::builder()
                .stack_resource_drifts(modified)
                .next_token("page-2")
                .build()
        })
        .output(|| {
            DescribeStackResourceDriftsOutput::builder()
                .stack_resource_drifts(drift("Topic", cfn_types::StackResourceDriftStatus::Deleted))
                .stack_resource_drifts(drift("Log", cfn_types::StackResourceDriftStatus::InSync))
                .build()
        })
        .build();
    let drifts = cfn_client(&[&rule])
        .describe_resource_drifts("dev-app")
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 2, "both pages read");
    assert_eq!(
        drifts,
        [
            ResourceDrift {
                logical_id: "Version".into(),
                resource_type: "AWS::SSM::Parameter".into(),
                status: "MODIFIED".into(),
                differences: vec![PropertyDifference {
                    path: "/Value".into(),
                    expected: "1.2.3".into(),
                    actual: "9.9.9".into(),
                    kind: "NOT_EQUAL".into(),
                }],
            },
            ResourceDrift {
                logical_id: "Topic".into(),
                resource_type: "AWS::SSM::Parameter".into(),
                status: "DELETED".into(),
                differences: vec![],
            },
            ResourceDrift {
                logical_id: "Log".into(),
                resource_type: "AWS::SSM::Parameter".into(),
                status: "IN_SYNC".into(),
                differences: vec![],
            },
        ]
    );
}

#[tokio::test]
async fn drift_calls_pass_errors_through() {
    let rule = mock!(aws_sdk_cloudformation::Client::detect_stack_drift)
        .sequence()
        .http_status(
            400,
            Some(
                r#"<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack dev-app is in UPDATE_IN_PROGRESS</Message></Error><RequestId>42</RequestId></ErrorResponse>"#
                    .into(),
            ),
        )
        .build();
    let err = cfn_client(&[&rule])
        .detect_stack_drift("dev-app")
        .await
        .unwrap_err();
    assert_eq!(err.operation, "DetectStackDrift");
    assert_eq!(err.code.as_deref(), Some("ValidationError"));
}
