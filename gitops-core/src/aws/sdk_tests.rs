//! Tests of the SDK adapters: mocked clients (`aws-smithy-mocks`) for the
//! mappings, and one end-to-end run against moto when `moto_server` is on
//! PATH.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudformation::operation::create_change_set::CreateChangeSetOutput;
use aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput;
use aws_sdk_cloudformation::operation::describe_stack_events::DescribeStackEventsOutput;
use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksOutput;
use aws_sdk_cloudformation::types as cfn_types;
use aws_sdk_codepipeline::operation::get_pipeline::GetPipelineOutput;
use aws_sdk_codepipeline::operation::list_pipeline_executions::ListPipelineExecutionsOutput;
use aws_sdk_codepipeline::operation::start_pipeline_execution::StartPipelineExecutionOutput;
use aws_sdk_codepipeline::types as cp_types;
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};

use super::*;
use crate::aws::{ChangeSetKind, ChangeSetRequest, SourceRevision, StartExecution, TemplateSource};

/// The production retry, with a 1 ms initial backoff so tests stay fast.
fn fast_retry() -> RetryConfig {
    retry_config().with_initial_backoff(Duration::from_millis(1))
}

fn cfn_client(rules: &[&Rule]) -> SdkCloudFormation {
    SdkCloudFormation::new(mock_client!(
        aws_sdk_cloudformation,
        RuleMode::Sequential,
        rules,
        |b| b.retry_config(fast_retry())
    ))
}

fn cp_client(rules: &[&Rule]) -> SdkCodePipeline {
    SdkCodePipeline::new(mock_client!(
        aws_sdk_codepipeline,
        RuleMode::Sequential,
        rules,
        |b| b.retry_config(fast_retry())
    ))
}

/// A CloudFormation (awsQuery) error body.
fn cfn_error_xml(code: &str, message: &str) -> String {
    format!(
        r#"<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>42</RequestId></ErrorResponse>"#
    )
}

fn stack_output(name: &str, status: cfn_types::StackStatus) -> cfn_types::Stack {
    cfn_types::Stack::builder()
        .stack_name(name)
        .stack_id(format!(
            "arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/1"
        ))
        .stack_status(status)
        .build()
}

fn tag(k: &str, v: &str) -> cfn_types::Tag {
    cfn_types::Tag::builder().key(k).value(v).build()
}

#[tokio::test]
async fn describe_stack_missing_is_none() {
    let rule = mock!(aws_sdk_cloudformation::Client::describe_stacks)
        .match_requests(|r| r.stack_name() == Some("nope"))
        .sequence()
        .http_status(
            400,
            Some(cfn_error_xml(
                "ValidationError",
                "Stack with id nope does not exist",
            )),
        )
        .build();
    let cfn = cfn_client(&[&rule]);
    assert_eq!(cfn.describe_stack("nope").await.unwrap(), None);
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn describe_stack_other_validation_error_is_an_error() {
    let rule = mock!(aws_sdk_cloudformation::Client::describe_stacks)
        .sequence()
        .http_status(
            400,
            Some(cfn_error_xml(
                "ValidationError",
                "1 validation error detected",
            )),
        )
        .build();
    let err = cfn_client(&[&rule])
        .describe_stack("Bad Name")
        .await
        .unwrap_err();
    assert_eq!(err.code.as_deref(), Some("ValidationError"));
    assert_eq!(err.message, "1 validation error detected");
    assert_eq!(err.operation, "DescribeStacks");
    assert!(!err.is_not_found());
}

#[tokio::test]
async fn describe_stack_maps_fields() {
    let rule = mock!(aws_sdk_cloudformation::Client::describe_stacks).then_output(|| {
        DescribeStacksOutput::builder()
            .stacks(
                cfn_types::Stack::builder()
                    .stack_name("dev-app")
                    .stack_id("arn:stack/dev-app/1")
                    .stack_status(cfn_types::StackStatus::UpdateRollbackComplete)
                    .stack_status_reason("Resource creation cancelled")
                    .parameters(
                        cfn_types::Parameter::builder()
                            .parameter_key("AppVersion")
                            .parameter_value("1.2.3")
                            .build(),
                    )
                    .tags(tag("gitops:env", "dev"))
                    .outputs(
                        cfn_types::Output::builder()
                            .output_key("Url")
                            .output_value("https://x")
                            .build(),
                    )
                    .enable_termination_protection(true)
                    .creation_time(DateTime::from_secs(1_700_000_000))
                    .build(),
            )
            .build()
    });
    let s = cfn_client(&[&rule])
        .describe_stack("dev-app")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.name, "dev-app");
    assert_eq!(s.id, "arn:stack/dev-app/1");
    assert_eq!(s.status, "UPDATE_ROLLBACK_COMPLETE");
    assert!(s.is_rolled_back());
    assert_eq!(
        s.status_reason.as_deref(),
        Some("Resource creation cancelled")
    );
    assert_eq!(s.parameters["AppVersion"], "1.2.3");
    assert_eq!(s.tags["gitops:env"], "dev");
    assert_eq!(s.outputs["Url"], "https://x");
    assert_eq!(s.termination_protection, Some(true));
    assert_eq!(s.creation_time.as_deref(), Some("2023-11-14T22:13:20Z"));
    assert_eq!(s.last_updated_time, None);
}

#[tokio::test]
async fn throttling_is_retried_then_succeeds() {
    let rule = mock!(aws_sdk_cloudformation::Client::describe_stacks)
        .sequence()
        .http_status(400, Some(cfn_error_xml("Throttling", "Rate exceeded")))
        .output(|| {
            DescribeStacksOutput::builder()
                .stacks(stack_output(
                    "dev-app",
                    cfn_types::StackStatus::CreateComplete,
                ))
                .build()
        })
        .build();
    let s = cfn_client(&[&rule])
        .describe_stack("dev-app")
        .await
        .unwrap();
    assert_eq!(s.unwrap().status, "CREATE_COMPLETE");
    assert_eq!(rule.num_calls(), 2);
}

#[tokio::test]
async fn persistent_throttling_gives_up_after_max_attempts() {
    let rule = mock!(aws_sdk_cloudformation::Client::describe_stacks)
        .sequence()
        .http_status(400, Some(cfn_error_xml("Throttling", "Rate exceeded")))
        .times(MAX_ATTEMPTS as usize)
        .build();
    let err = cfn_client(&[&rule])
        .describe_stack("dev-app")
        .await
        .unwrap_err();
    assert!(err.is_throttled(), "{err:?}");
    assert_eq!(rule.num_calls(), MAX_ATTEMPTS as usize);
}

#[tokio::test]
async fn list_stacks_with_tag_paginates_and_filters() {
    let page1 = mock!(aws_sdk_cloudformation::Client::describe_stacks)
        .match_requests(|r| r.next_token().is_none() && r.stack_name().is_none())
        .then_output(|| {
            DescribeStacksOutput::builder()
                .stacks(
                    cfn_types::Stack::builder()
                        .stack_name("dev-app")
                        .stack_status(cfn_types::StackStatus::CreateComplete)
                        .tags(tag("gitops:repo", "r1"))
                        .build(),
                )
                .stacks(
                    cfn_types::Stack::builder()
                        .stack_name("other")
                        .stack_status(cfn_types::StackStatus::CreateComplete)
                        .tags(tag("gitops:repo", "r2"))
                        .build(),
                )
                .next_token("t2")
                .build()
        });
    let page2 = mock!(aws_sdk_cloudformation::Client::describe_stacks)
        .match_requests(|r| r.next_token() == Some("t2"))
        .then_output(|| {
            DescribeStacksOutput::builder()
                .stacks(
                    cfn_types::Stack::builder()
                        .stack_name("prod-app")
                        .stack_status(cfn_types::StackStatus::UpdateComplete)
                        .tags(tag("gitops:repo", "r1"))
                        .build(),
                )
                .stacks(
                    cfn_types::Stack::builder()
                        .stack_name("gone")
                        .stack_status(cfn_types::StackStatus::DeleteComplete)
                        .tags(tag("gitops:repo", "r1"))
                        .build(),
                )
                .build()
        });
    let stacks = cfn_client(&[&page1, &page2])
        .list_stacks_with_tag("gitops:repo", "r1")
        .await
        .unwrap();
    let names: Vec<_> = stacks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["dev-app", "prod-app"]);
    assert_eq!(page2.num_calls(), 1);
}

#[tokio::test]
async fn create_change_set_sends_everything() {
    let rule = mock!(aws_sdk_cloudformation::Client::create_change_set)
        .match_requests(|r| {
            r.stack_name() == Some("dev-app")
                && r.change_set_name() == Some("gitops-abc")
                && r.change_set_type() == Some(&cfn_types::ChangeSetType::Update)
                && r.template_body() == Some("Resources: {}")
                && r.template_url().is_none()
                && r.parameters()
                    == [cfn_types::Parameter::builder()
                        .parameter_key("AppVersion")
                        .parameter_value("1.2.3")
                        .build()]
                && r.tags() == [tag("gitops:env", "dev")]
                && r.capabilities() == [cfn_types::Capability::CapabilityNamedIam]
                && r.description() == Some("deploy abc")
        })
        .then_output(|| {
            CreateChangeSetOutput::builder()
                .id("arn:changeSet/gitops-abc/1")
                .stack_id("arn:stack/dev-app/1")
                .build()
        });
    let req = ChangeSetRequest::new(
        "dev-app",
        "gitops-abc",
        ChangeSetKind::Update,
        TemplateSource::Body("Resources: {}".into()),
    )
    .with_parameter("AppVersion", "1.2.3")
    .with_tag("gitops:env", "dev")
    .with_capabilities(["CAPABILITY_NAMED_IAM"])
    .with_description("deploy abc");
    let r = cfn_client(&[&rule]).create_change_set(req).await.unwrap();
    assert_eq!(r.id, "arn:changeSet/gitops-abc/1");
    assert_eq!(r.name, "gitops-abc");
    assert_eq!(r.stack_id.as_deref(), Some("arn:stack/dev-app/1"));
}

#[tokio::test]
async fn create_change_set_with_url_and_create_type() {
    let rule = mock!(aws_sdk_cloudformation::Client::create_change_set)
        .match_requests(|r| {
            r.change_set_type() == Some(&cfn_types::ChangeSetType::Create)
                && r.template_url() == Some("https://b.s3.us-east-1.amazonaws.com/t.yaml")
                && r.template_body().is_none()
        })
        .then_output(|| CreateChangeSetOutput::builder().id("id").build());
    let req = ChangeSetRequest::new(
        "dev-app",
        "cs",
        ChangeSetKind::Create,
        TemplateSource::Url("https://b.s3.us-east-1.amazonaws.com/t.yaml".into()),
    );
    assert_eq!(
        cfn_client(&[&rule])
            .create_change_set(req)
            .await
            .unwrap()
            .id,
        "id"
    );
}

#[tokio::test]
async fn create_change_set_no_updates_is_recognised_and_not_retried() {
    let rule = mock!(aws_sdk_cloudformation::Client::create_change_set)
        .sequence()
        .http_status(
            400,
            Some(cfn_error_xml(
                "ValidationError",
                "No updates are to be performed.",
            )),
        )
        .build();
    let req = ChangeSetRequest::new(
        "dev-app",
        "cs",
        ChangeSetKind::Update,
        TemplateSource::Body("{}".into()),
    );
    let err = cfn_client(&[&rule])
        .create_change_set(req)
        .await
        .unwrap_err();
    assert!(err.is_no_updates(), "{err:?}");
    assert!(!err.is_throttled());
    assert_eq!(rule.num_calls(), 1);
    // It converts into the crate's error.
    let e: crate::Error = err.into();
    assert!(e.to_string().contains("No updates are to be performed"));
}

#[tokio::test]
async fn describe_change_set_failed_without_changes() {
    let rule = mock!(aws_sdk_cloudformation::Client::describe_change_set)
        .match_requests(|r| r.stack_name() == Some("dev-app") && r.change_set_name() == Some("cs"))
        .then_output(|| {
            DescribeChangeSetOutput::builder()
                .change_set_id("arn:cs")
                .change_set_name("cs")
                .status(cfn_types::ChangeSetStatus::Failed)
                .execution_status(cfn_types::ExecutionStatus::Unavailable)
                .status_reason("The submitted information didn't contain changes. Submit different information to create a change set.")
                .build()
        });
    let cs = cfn_client(&[&rule])
        .describe_change_set("dev-app", "cs")
        .await
        .unwrap();
    assert_eq!(cs.status, "FAILED");
    assert_eq!(cs.execution_status, "UNAVAILABLE");
    assert!(cs.is_empty_no_changes());
    assert!(cs.changes.is_empty());
}

fn change(action: cfn_types::ChangeAction, id: &str) -> cfn_types::Change {
    cfn_types::Change::builder()
        .r#type(cfn_types::ChangeType::Resource)
        .resource_change(
            cfn_types::ResourceChange::builder()
                .action(action)
                .logical_resource_id(id)
                .physical_resource_id(format!("{id}-phys"))
                .resource_type("AWS::SNS::Topic")
                .replacement(cfn_types::Replacement::Conditional)
                .scope(cfn_types::ResourceAttribute::Properties)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn describe_change_set_collects_every_page() {
    let page1 = mock!(aws_sdk_cloudformation::Client::describe_change_set)
        .match_requests(|r| r.next_token().is_none())
        .then_output(|| {
            DescribeChangeSetOutput::builder()
                .change_set_id("arn:cs")
                .change_set_name("cs")
                .status(cfn_types::ChangeSetStatus::CreateComplete)
                .execution_status(cfn_types::ExecutionStatus::Available)
                .changes(change(cfn_types::ChangeAction::Modify, "Topic"))
                .next_token("p2")
                .build()
        });
    let page2 = mock!(aws_sdk_cloudformation::Client::describe_change_set)
        .match_requests(|r| r.next_token() == Some("p2"))
        .then_output(|| {
            DescribeChangeSetOutput::builder()
                .change_set_id("arn:cs")
                .change_set_name("cs")
                .status(cfn_types::ChangeSetStatus::CreateComplete)
                .execution_status(cfn_types::ExecutionStatus::Available)
                .changes(change(cfn_types::ChangeAction::Add, "Queue"))
                .build()
        });
    let cs = cfn_client(&[&page1, &page2])
        .describe_change_set("dev-app", "cs")
        .await
        .unwrap();
    assert!(cs.is_ready());
    assert_eq!(cs.id, "arn:cs");
    assert_eq!(
        cs.changes,
        [
            ResourceChange {
                action: "Modify".into(),
                logical_id: "Topic".into(),
                physical_id: Some("Topic-phys".into()),
                resource_type: "AWS::SNS::Topic".into(),
                replacement: Some("Conditional".into()),
                scope: vec!["Properties".into()],
            },
            ResourceChange {
                action: "Add".into(),
                logical_id: "Queue".into(),
                physical_id: Some("Queue-phys".into()),
                resource_type: "AWS::SNS::Topic".into(),
                replacement: Some("Conditional".into()),
                scope: vec!["Properties".into()],
            },
        ]
    );
}

fn event(id: &str, status: cfn_types::ResourceStatus) -> cfn_types::StackEvent {
    cfn_types::StackEvent::builder()
        .event_id(id)
        .timestamp(DateTime::from_secs(1_700_000_000))
        .logical_resource_id("Topic")
        .resource_type("AWS::SNS::Topic")
        .resource_status(status)
        .resource_status_reason("because")
        .build()
}

#[tokio::test]
async fn stack_events_stop_at_the_last_seen_event() {
    let page1 = mock!(aws_sdk_cloudformation::Client::describe_stack_events)
        .match_requests(|r| r.next_token().is_none())
        .then_output(|| {
            DescribeStackEventsOutput::builder()
                .stack_events(event("e4", cfn_types::ResourceStatus::CreateFailed))
                .stack_events(event("e3", cfn_types::ResourceStatus::CreateInProgress))
                .next_token("p2")
                .build()
        });
    let page2 = mock!(aws_sdk_cloudformation::Client::describe_stack_events)
        .match_requests(|r| r.next_token() == Some("p2"))
        .then_output(|| {
            DescribeStackEventsOutput::builder()
                .stack_events(event("e2", cfn_types::ResourceStatus::CreateInProgress))
                .stack_events(event("e1", cfn_types::ResourceStatus::CreateInProgress))
                .next_token("p3")
                .build()
        });
    let events = cfn_client(&[&page1, &page2])
        .stack_events("dev-app", Some("e1"))
        .await
        .unwrap();
    let ids: Vec<_> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["e4", "e3", "e2"]);
    assert_eq!(
        events[0],
        StackEvent {
            event_id: "e4".into(),
            timestamp: "2023-11-14T22:13:20Z".into(),
            logical_id: "Topic".into(),
            resource_type: "AWS::SNS::Topic".into(),
            status: "CREATE_FAILED".into(),
            reason: Some("because".into()),
        }
    );
}

#[tokio::test]
async fn stack_events_without_a_marker_read_one_page() {
    let page1 = mock!(aws_sdk_cloudformation::Client::describe_stack_events).then_output(|| {
        DescribeStackEventsOutput::builder()
            .stack_events(event("e2", cfn_types::ResourceStatus::CreateComplete))
            .next_token("p2")
            .build()
    });
    let events = cfn_client(&[&page1])
        .stack_events("dev-app", None)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(page1.num_calls(), 1);
}

#[tokio::test]
async fn get_template_of_missing_stack_is_not_found() {
    let rule = mock!(aws_sdk_cloudformation::Client::get_template)
        .match_requests(|r| r.template_stage() == Some(&cfn_types::TemplateStage::Original))
        .sequence()
        .http_status(
            400,
            Some(cfn_error_xml(
                "ValidationError",
                "Stack with id nope does not exist",
            )),
        )
        .build();
    let err = cfn_client(&[&rule]).get_template("nope").await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

fn pipeline_declaration() -> cp_types::PipelineDeclaration {
    let source = cp_types::ActionDeclaration::builder()
        .name("Source")
        .action_type_id(
            cp_types::ActionTypeId::builder()
                .category(cp_types::ActionCategory::Source)
                .owner(cp_types::ActionOwner::Aws)
                .provider("CodeStarSourceConnection")
                .version("1")
                .build()
                .unwrap(),
        )
        .configuration("FullRepositoryId", "acme/app")
        .configuration("BranchName", "main")
        .build()
        .unwrap();
    let deploy = cp_types::ActionDeclaration::builder()
        .name("Deploy")
        .action_type_id(
            cp_types::ActionTypeId::builder()
                .category(cp_types::ActionCategory::Deploy)
                .owner(cp_types::ActionOwner::Aws)
                .provider("CloudFormation")
                .version("1")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cp_types::PipelineDeclaration::builder()
        .name("dev-pipeline")
        .role_arn("arn:role")
        .version(3)
        .pipeline_type(cp_types::PipelineType::V2)
        .variables(
            cp_types::PipelineVariableDeclaration::builder()
                .name("AppVersion")
                .build()
                .unwrap(),
        )
        .variables(
            cp_types::PipelineVariableDeclaration::builder()
                .name("Environment")
                .default_value("dev")
                .build()
                .unwrap(),
        )
        .stages(
            cp_types::StageDeclaration::builder()
                .name("Source")
                .actions(source)
                .build()
                .unwrap(),
        )
        .stages(
            cp_types::StageDeclaration::builder()
                .name("Deploy")
                .actions(deploy)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn get_pipeline_maps_variables_and_source_actions() {
    let rule = mock!(aws_sdk_codepipeline::Client::get_pipeline)
        .match_requests(|r| r.name() == Some("dev-pipeline"))
        .then_output(|| {
            GetPipelineOutput::builder()
                .pipeline(pipeline_declaration())
                .build()
        });
    let p = cp_client(&[&rule])
        .get_pipeline("dev-pipeline")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.name, "dev-pipeline");
    assert_eq!(p.version, Some(3));
    assert_eq!(p.pipeline_type, "V2");
    assert_eq!(p.variables, ["AppVersion", "Environment"]);
    assert_eq!(
        p.source_actions,
        [SourceAction {
            name: "Source".into(),
            provider: "CodeStarSourceConnection".into(),
            configuration: [
                ("BranchName".to_string(), "main".to_string()),
                ("FullRepositoryId".to_string(), "acme/app".to_string()),
            ]
            .into(),
        }]
    );
}

#[tokio::test]
async fn get_pipeline_not_found_is_none() {
    let rule = mock!(aws_sdk_codepipeline::Client::get_pipeline)
        .sequence()
        .http_status(
            400,
            Some(
                r#"{"__type":"PipelineNotFoundException","message":"Account '123456789012' does not have a pipeline with name 'nope'"}"#
                    .into(),
            ),
        )
        .build();
    assert_eq!(
        cp_client(&[&rule]).get_pipeline("nope").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn start_execution_passes_revisions_and_variables() {
    let rule = mock!(aws_sdk_codepipeline::Client::start_pipeline_execution)
        .match_requests(|r| {
            r.name() == Some("dev-pipeline")
                && r.source_revisions()
                    == [cp_types::SourceRevisionOverride::builder()
                        .action_name("Source")
                        .revision_type(cp_types::SourceRevisionType::CommitId)
                        .revision_value("abc123")
                        .build()
                        .unwrap()]
                && r.variables()
                    == [cp_types::PipelineVariable::builder()
                        .name("AppVersion")
                        .value("1.2.3")
                        .build()
                        .unwrap()]
                && r.client_request_token() == Some("token-1")
        })
        .then_output(|| {
            StartPipelineExecutionOutput::builder()
                .pipeline_execution_id("exec-1")
                .build()
        });
    let req = StartExecution::new("dev-pipeline")
        .with_source_revision(SourceRevision::commit("Source", "abc123"))
        .with_variable("AppVersion", "1.2.3")
        .with_client_request_token("token-1");
    let id = cp_client(&[&rule]).start_execution(req).await.unwrap();
    assert_eq!(id, "exec-1");
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn list_executions_maps_and_caps() {
    let rule = mock!(aws_sdk_codepipeline::Client::list_pipeline_executions)
        .match_requests(|r| r.pipeline_name() == Some("p") && r.max_results() == Some(2))
        .then_output(|| {
            ListPipelineExecutionsOutput::builder()
                .pipeline_execution_summaries(
                    cp_types::PipelineExecutionSummary::builder()
                        .pipeline_execution_id("e2")
                        .status(cp_types::PipelineExecutionStatus::InProgress)
                        .start_time(DateTime::from_secs(1_700_000_000))
                        .source_revisions(
                            cp_types::SourceRevision::builder()
                                .action_name("Source")
                                .revision_id("abc123")
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .pipeline_execution_summaries(
                    cp_types::PipelineExecutionSummary::builder()
                        .pipeline_execution_id("e1")
                        .status(cp_types::PipelineExecutionStatus::Succeeded)
                        .build(),
                )
                .next_token("more")
                .build()
        });
    let list = cp_client(&[&rule]).list_executions("p", 2).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, "e2");
    assert_eq!(list[0].status, "InProgress");
    assert_eq!(list[0].start_time.as_deref(), Some("2023-11-14T22:13:20Z"));
    assert_eq!(list[0].source_revision(), Some("abc123"));
    assert_eq!(list[1].status, "Succeeded");
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn caller_identity_maps_fields() {
    let rule = mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
        GetCallerIdentityOutput::builder()
            .account("123456789012")
            .arn("arn:aws:sts::123456789012:assumed-role/deployer/gitops")
            .user_id("AROA:gitops")
            .build()
    });
    let sts = SdkSts::new(mock_client!(aws_sdk_sts, RuleMode::Sequential, [&rule]));
    assert_eq!(
        sts.caller_identity().await.unwrap(),
        Identity {
            account: "123456789012".into(),
            arn: "arn:aws:sts::123456789012:assumed-role/deployer/gitops".into(),
            user_id: "AROA:gitops".into(),
        }
    );
}

#[tokio::test]
async fn put_object_uploads_and_returns_the_url() {
    let rule = mock!(aws_sdk_s3::Client::put_object)
        .match_requests(|r| r.bucket() == Some("artifacts") && r.key() == Some("gitops/t.yaml"))
        .then_output(|| aws_sdk_s3::operation::put_object::PutObjectOutput::builder().build());
    let s3 = SdkS3::new(
        mock_client!(aws_sdk_s3, RuleMode::Sequential, [&rule]),
        "eu-west-1",
        None,
    );
    let url = s3
        .put_object("artifacts", "gitops/t.yaml", b"Resources: {}".to_vec())
        .await
        .unwrap();
    assert_eq!(
        url,
        "https://artifacts.s3.eu-west-1.amazonaws.com/gitops/t.yaml"
    );
    assert_eq!(rule.num_calls(), 1);
}

#[test]
fn object_urls() {
    assert_eq!(
        object_url("us-east-1", None, "b", "a/b c+.yaml"),
        "https://b.s3.us-east-1.amazonaws.com/a/b%20c%2B.yaml"
    );
    assert_eq!(
        object_url("eu-west-1", None, "my.bucket", "k"),
        "https://s3.eu-west-1.amazonaws.com/my.bucket/k"
    );
    assert_eq!(
        object_url("cn-north-1", None, "b", "k"),
        "https://b.s3.cn-north-1.amazonaws.com.cn/k"
    );
    assert_eq!(
        object_url("us-east-1", Some("http://127.0.0.1:5000/"), "b", "k/t.yaml"),
        "http://127.0.0.1:5000/b/k/t.yaml"
    );
}

#[tokio::test]
async fn load_config_sets_retries_timeouts_endpoint_and_region() {
    let cfg = load_config(Some("http://127.0.0.1:1"), Some("eu-central-1")).await;
    assert_eq!(cfg.region().map(|r| r.as_ref()), Some("eu-central-1"));
    assert_eq!(cfg.endpoint_url(), Some("http://127.0.0.1:1"));
    let retry = cfg.retry_config().unwrap();
    assert_eq!(retry.max_attempts(), MAX_ATTEMPTS);
    assert_eq!(retry.mode(), aws_config::retry::RetryMode::Standard);
    let t = cfg.timeout_config().unwrap();
    assert_eq!(t.connect_timeout(), Some(CONNECT_TIMEOUT));
    assert_eq!(t.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
    assert_eq!(t.operation_timeout(), Some(OPERATION_TIMEOUT));
}

fn static_config(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("testing", "testing", None, None, "test"),
        ))
        .retry_config(fast_retry())
        .timeout_config(timeout_config())
        .build()
}

#[tokio::test]
async fn factory_memoises_per_region_and_role() {
    let factory = SdkFactory::new(static_config("http://127.0.0.1:1"));
    let a = factory.clients("eu-west-1", None).await.unwrap();
    let b = factory.clients("eu-west-1", None).await.unwrap();
    let c = factory.clients("eu-west-2", None).await.unwrap();
    let d = factory
        .clients("eu-west-1", Some("arn:aws:iam::123456789012:role/deployer"))
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&a.cloudformation, &b.cloudformation));
    assert!(!Arc::ptr_eq(&a.cloudformation, &c.cloudformation));
    assert!(!Arc::ptr_eq(&a.cloudformation, &d.cloudformation));
    let cfg = factory.config_for("", None).await;
    assert_eq!(cfg.region().map(|r| r.as_ref()), Some("us-east-1"));
}

/// Termination protection follows `protected` both ways, through the SDK
/// adapter (moto does not implement UpdateTerminationProtection): a deploy
/// of an otherwise unchanged stack calls it, and only it.
#[tokio::test]
async fn deploy_sets_termination_protection_of_an_unchanged_stack() {
    use crate::deploy::{desired, Executor, ExecutorOptions, Outcome};
    use crate::detect::{Change, EnvChange};

    const TEMPLATE: &str = "Parameters:\n  AppVersion: {Type: String}\n  EnvironmentName: {Type: String}\nResources:\n  Topic: {Type: AWS::SNS::Topic}\n";
    for (extra, deployed, wanted) in [("protected: true\n", false, true), ("", true, false)] {
        let source = crate::source::Memory::new("x")
            .with_file(
                "gitops.yaml",
                "version: 1\nid: acme/pay\nstack: {template: common/app.yaml}\n",
            )
            .with_file("common/app.yaml", TEMPLATE)
            .with_file(
                "environments/dev/environment.yaml",
                format!("parameters: {{AppVersion: '1.0'}}\n{extra}"),
            );
        let repo = crate::Repository::load(&source).unwrap();
        let env = repo.environment("dev").unwrap().clone();
        let d = desired(&repo, &source, &EnvChange::new(env, Change::Updated), "c1").unwrap();

        let describe = mock!(aws_sdk_cloudformation::Client::describe_stacks)
            .match_requests(|r| r.stack_name() == Some("dev-app"))
            .then_output(move || {
                DescribeStacksOutput::builder()
                    .stacks(
                        cfn_types::Stack::builder()
                            .stack_name("dev-app")
                            .stack_id(
                                "arn:aws:cloudformation:us-east-1:123456789012:stack/dev-app/1",
                            )
                            .stack_status(cfn_types::StackStatus::UpdateComplete)
                            .parameters(
                                cfn_types::Parameter::builder()
                                    .parameter_key("AppVersion")
                                    .parameter_value("1.0")
                                    .build(),
                            )
                            .parameters(
                                cfn_types::Parameter::builder()
                                    .parameter_key("EnvironmentName")
                                    .parameter_value("dev")
                                    .build(),
                            )
                            .tags(tag("gitops:managed-by", "acme/pay"))
                            .tags(tag("gitops:environment", "dev"))
                            .tags(tag("gitops:commit", "c0"))
                            .enable_termination_protection(deployed)
                            .build(),
                    )
                    .build()
            });
        let template = mock!(aws_sdk_cloudformation::Client::get_template).then_output(|| {
            aws_sdk_cloudformation::operation::get_template::GetTemplateOutput::builder()
                .template_body(TEMPLATE)
                .build()
        });
        let protect = mock!(aws_sdk_cloudformation::Client::update_termination_protection)
            .match_requests(move |r| {
                r.stack_name() == Some("dev-app")
                    && r.enable_termination_protection() == Some(wanted)
            })
            .then_output(|| {
                aws_sdk_cloudformation::operation::update_termination_protection::UpdateTerminationProtectionOutput::builder()
                    .stack_id("arn:aws:cloudformation:us-east-1:123456789012:stack/dev-app/1")
                    .build()
            });
        let change_set = mock!(aws_sdk_cloudformation::Client::create_change_set)
            .then_output(|| CreateChangeSetOutput::builder().id("id").build());
        let cfn = SdkCloudFormation::new(mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            &[&describe, &template, &protect, &change_set],
            |b| b.retry_config(fast_retry())
        ));
        let mut clients = crate::aws::fake::Fake::new().clients();
        clients.cloudformation = Arc::new(cfn);
        let exec = Executor::new(
            Arc::new(clients),
            Arc::new(|_: &str, _: &str| {}),
            "acme/pay",
            ExecutorOptions::new().with_poll(Duration::from_millis(1)),
        );
        let plan = exec.plan(&d).await.unwrap();
        assert_eq!(plan.actions.len(), 1, "{plan:?}");
        assert_eq!(plan.actions[0].label(), "set-termination-protection");
        let o = exec.run(&d).await;
        assert_eq!(o.outcome, Outcome::Succeeded, "{o:?}");
        assert_eq!(protect.num_calls(), 1, "{extra:?}");
        assert_eq!(change_set.num_calls(), 0, "nothing else is deployed");
        assert!(
            o.message.contains("termination protection"),
            "{}",
            o.message
        );
    }
}

#[tokio::test]
async fn unreachable_endpoint_is_a_connection_error() {
    // Port 1 on localhost refuses connections.
    let mut cfg = static_config("http://127.0.0.1:1").to_builder();
    cfg.set_retry_config(Some(RetryConfig::disabled()));
    let clients = clients_for(&cfg.build());
    let err = clients.sts.caller_identity().await.unwrap_err();
    assert_eq!(err.kind, AwsErrorKind::Connection, "{err:?}");
    assert_eq!(err.code, None);
    // One line of causes, never the SDK's debug output.
    let shown = err.to_string();
    assert!(shown.contains("Connection refused"), "{shown}");
    for dump in ["DispatchFailure", "ConnectorError", "{", "\n"] {
        assert!(!shown.contains(dump), "{shown}");
    }
    assert!(
        shown.ends_with("(--endpoint-url, AWS_ENDPOINT_URL)"),
        "{shown}"
    );
}

// ---------------------------------------------------------------------------
// End to end against moto, when moto_server is on PATH.
// ---------------------------------------------------------------------------

mod moto {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// A moto_server on a free port, killed on drop.
    pub struct Moto {
        child: Child,
        pub url: String,
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Starts moto_server (from the venv scripts/test fills, else from
    /// PATH), or says that it is not installed. Panics when it is installed
    /// but does not start: that is a failure, not a reason to skip.
    pub fn start() -> Result<Moto, String> {
        let venv =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/moto_server");
        let bin = if venv.is_file() {
            venv
        } else {
            "moto_server".into()
        };
        let mut child = match Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err("moto_server is not installed".into())
            }
            Err(e) => panic!("cannot run {}: {e}", bin.display()),
        };
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("Running on http://").nth(1) {
                    let _ = tx.send(rest.trim().to_string());
                }
            }
        });
        let mut moto = Moto {
            child,
            url: String::new(),
        };
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("moto_server printed no address within 30 s");
        moto.url = format!("http://{addr}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if get(&addr, "/moto-api/").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
                return Ok(moto);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not become ready within 30 s")
    }

    /// A plain HTTP GET; the whole response, headers included.
    pub fn get(addr: &str, path: &str) -> Option<String> {
        let mut s = TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }
}

const TEMPLATE: &str = "\
Parameters:
  AppVersion: { Type: String }
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Sub 'gitops-e2e-${AppVersion}'
Outputs:
  TopicArn:
    Value: !Ref Topic
";

#[tokio::test]
async fn end_to_end_against_moto() {
    let moto = match moto::start() {
        Ok(m) => m,
        // Missing moto fails the test in CI, and says so loudly elsewhere.
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("end_to_end_against_moto needs moto_server (scripts/test installs it): {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: end_to_end_against_moto: {why}; install moto[server]==5.2.1 (scripts/test does)");
            return;
        }
    };
    let factory = SdkFactory::new(static_config(&moto.url));
    let env = factory.clients("us-east-1", None).await.unwrap();

    // STS, plain and through an assumed role.
    let me = env.sts.caller_identity().await.unwrap();
    assert_eq!(me.account, "123456789012");
    let role = factory
        .clients("us-east-1", Some("arn:aws:iam::123456789012:role/deployer"))
        .await
        .unwrap();
    let assumed = role.sts.caller_identity().await.unwrap();
    assert!(
        assumed.arn.contains("assumed-role/deployer/gitops"),
        "{assumed:?}"
    );

    // CloudFormation: create through a change set, then an empty update.
    let cfn = &env.cloudformation;
    assert_eq!(cfn.describe_stack("e2e-app").await.unwrap(), None);
    let req = ChangeSetRequest::new(
        "e2e-app",
        "gitops-create-1",
        ChangeSetKind::Create,
        TemplateSource::Body(TEMPLATE.into()),
    )
    .with_parameter("AppVersion", "1")
    .with_tag("gitops:repo", "e2e");
    let created = cfn.create_change_set(req).await.unwrap();
    assert!(!created.id.is_empty());
    let cs = wait_change_set(cfn.as_ref(), "e2e-app", "gitops-create-1").await;
    assert!(cs.is_ready(), "{cs:?}");
    assert!(
        cs.changes
            .iter()
            .any(|c| c.logical_id == "Topic" && c.action == "Add"),
        "{cs:?}"
    );
    assert!(!cfn.list_change_sets("e2e-app").await.unwrap().is_empty());
    cfn.execute_change_set("e2e-app", "gitops-create-1")
        .await
        .unwrap();
    let stack = wait_stack(cfn.as_ref(), "e2e-app").await;
    assert!(stack.is_complete_ok(), "{stack:?}");
    assert_eq!(stack.parameters["AppVersion"], "1");
    assert_eq!(stack.tags["gitops:repo"], "e2e");
    // moto 5.2.1 fills in no outputs for a stack created by a change set
    // (CreateStack does); the outputs mapping is covered by the mocks.

    let tagged = cfn
        .list_stacks_with_tag("gitops:repo", "e2e")
        .await
        .unwrap();
    assert_eq!(tagged.len(), 1);
    assert!(cfn
        .list_stacks_with_tag("gitops:repo", "other")
        .await
        .unwrap()
        .is_empty());
    assert!(!cfn.stack_events("e2e-app", None).await.unwrap().is_empty());
    assert!(cfn
        .get_template("e2e-app")
        .await
        .unwrap()
        .contains("AWS::SNS::Topic"));

    let same = ChangeSetRequest::new(
        "e2e-app",
        "gitops-update-1",
        ChangeSetKind::Update,
        TemplateSource::Body(TEMPLATE.into()),
    )
    .with_parameter("AppVersion", "1")
    .with_tag("gitops:repo", "e2e");
    match cfn.create_change_set(same).await {
        Err(e) => assert!(e.is_no_updates(), "{e:?}"),
        Ok(_) => {
            let cs = wait_change_set(cfn.as_ref(), "e2e-app", "gitops-update-1").await;
            assert!(cs.is_empty_no_changes(), "{cs:?}");
        }
    }

    // S3: the object is there, at the path-style URL.
    let s3_raw = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&static_config(&moto.url))
            .force_path_style(true)
            .build(),
    );
    s3_raw.create_bucket().bucket("e2e").send().await.unwrap();
    let url = env
        .s3
        .put_object("e2e", "t/app.yaml", TEMPLATE.as_bytes().to_vec())
        .await
        .unwrap();
    assert_eq!(url, format!("{}/e2e/t/app.yaml", moto.url));
    let object = s3_raw
        .get_object()
        .bucket("e2e")
        .key("t/app.yaml")
        .send()
        .await
        .unwrap();
    let body = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(body.as_ref(), TEMPLATE.as_bytes());

    // CodePipeline: a missing pipeline is None.
    assert_eq!(env.codepipeline.get_pipeline("nope").await.unwrap(), None);

    cfn.delete_stack("e2e-app").await.unwrap();
}

async fn wait_change_set(cfn: &dyn CloudFormation, stack: &str, name: &str) -> ChangeSet {
    for _ in 0..100 {
        let cs = cfn.describe_change_set(stack, name).await.unwrap();
        if !cs.is_pending() {
            return cs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("change set {name} still pending");
}

async fn wait_stack(cfn: &dyn CloudFormation, name: &str) -> Stack {
    for _ in 0..100 {
        if let Some(s) = cfn.describe_stack(name).await.unwrap() {
            if !s.is_in_progress() {
                return s;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("stack {name} still in progress");
}

/// `status` and `drift` read many stacks at once through one client per
/// account and region (the factory caches them): when CloudFormation
/// throttles those concurrent calls, the standard retry (with backoff)
/// retries each one, and every stack is read.
#[tokio::test]
async fn throttled_concurrent_calls_are_retried() {
    const N: usize = 16;
    let names: Vec<String> = (0..N).map(|i| format!("env{i:02}-app")).collect();
    // One rule per stack, so each call's attempts meet their own sequence
    // whatever order the tasks run in: throttled once, then answered.
    let rules: Vec<Rule> = names
        .iter()
        .map(|name| {
            let (want, answer) = (name.clone(), name.clone());
            mock!(aws_sdk_cloudformation::Client::describe_stacks)
                .match_requests(move |r| r.stack_name() == Some(want.as_str()))
                .sequence()
                .http_status(400, Some(cfn_error_xml("Throttling", "Rate exceeded")))
                .output(move || {
                    DescribeStacksOutput::builder()
                        .stacks(stack_output(
                            &answer,
                            cfn_types::StackStatus::CreateComplete,
                        ))
                        .build()
                })
                .build()
        })
        .collect();
    let refs: Vec<&Rule> = rules.iter().collect();
    let cfn = Arc::new(SdkCloudFormation::new(mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        &refs,
        |b| b.retry_config(fast_retry())
    )));
    let mut set = tokio::task::JoinSet::new();
    for name in names.clone() {
        let cfn = cfn.clone();
        set.spawn(async move { (name.clone(), cfn.describe_stack(&name).await) });
    }
    let mut read = Vec::new();
    while let Some(r) = set.join_next().await {
        let (name, stack) = r.unwrap();
        let stack = stack.unwrap().unwrap();
        assert_eq!(stack.name, name);
        read.push(name);
    }
    read.sort();
    assert_eq!(read, names);
    // Every call was throttled once and retried once.
    for rule in &rules {
        assert_eq!(rule.num_calls(), 2);
    }
}

/// `status`'s one DescribeStacks page sequence per account and region
/// survives throttling in the middle: the throttled page is retried and the
/// listing goes on from its token.
#[tokio::test]
async fn throttled_listing_page_is_retried() {
    let rule = mock!(aws_sdk_cloudformation::Client::describe_stacks)
        .sequence()
        .output(|| {
            DescribeStacksOutput::builder()
                .stacks(stack_output(
                    "a-app",
                    cfn_types::StackStatus::CreateComplete,
                ))
                .next_token("page-2")
                .build()
        })
        .http_status(400, Some(cfn_error_xml("Throttling", "Rate exceeded")))
        .times(2)
        .output(|| {
            DescribeStacksOutput::builder()
                .stacks(stack_output(
                    "b-app",
                    cfn_types::StackStatus::UpdateComplete,
                ))
                .build()
        })
        .build();
    let cfn = cfn_client(&[&rule]);
    let stacks = cfn.list_stacks().await.unwrap();
    let names: Vec<&str> = stacks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a-app", "b-app"]);
    assert_eq!(rule.num_calls(), 4);
}
