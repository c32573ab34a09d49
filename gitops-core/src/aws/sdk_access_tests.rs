//! Tests of the Access Analyzer adapter with mocked clients
//! (`aws-smithy-mocks`): moto does not implement Access Analyzer.

use std::time::Duration;

use aws_sdk_accessanalyzer::operation::check_access_not_granted::CheckAccessNotGrantedOutput;
use aws_sdk_accessanalyzer::operation::check_no_new_access::CheckNoNewAccessOutput;
use aws_sdk_accessanalyzer::operation::validate_policy::ValidatePolicyOutput;
use aws_sdk_accessanalyzer::types as aa;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};

use super::*;

fn fast_retry() -> RetryConfig {
    retry_config().with_initial_backoff(Duration::from_millis(1))
}

pub(crate) fn aa_client(mode: RuleMode, rules: &[&Rule]) -> SdkAccessAnalyzer {
    SdkAccessAnalyzer::new(mock_client!(aws_sdk_accessanalyzer, mode, rules, |b| b
        .retry_config(fast_retry())))
}

/// A restJson1 error body.
fn json_error(code: &str, message: &str) -> String {
    format!(r#"{{"__type": "{code}", "message": "{message}"}}"#)
}

pub(crate) fn star_finding() -> aa::ValidatePolicyFinding {
    aa::ValidatePolicyFinding::builder()
        .finding_type(aa::ValidatePolicyFindingType::SecurityWarning)
        .issue_code("PASS_ROLE_WITH_STAR_IN_ACTION_AND_RESOURCE")
        .finding_details("Using the iam:PassRole action with wildcards (*) in the resource can be overly permissive.")
        .learn_more_link("https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-reference-policy-checks.html")
        .locations(
            aa::Location::builder()
                .path(aa::PathElement::Key("Statement".into()))
                .path(aa::PathElement::Index(0))
                .path(aa::PathElement::Key("Action".into()))
                .span(
                    aa::Span::builder()
                        .start(aa::Position::builder().line(1).column(50).offset(50).build().unwrap())
                        .end(aa::Position::builder().line(1).column(53).offset(53).build().unwrap())
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn validate_policy_maps_findings_and_follows_pages() {
    let page1 = mock!(aws_sdk_accessanalyzer::Client::validate_policy)
        .match_requests(|r| {
            r.next_token().is_none()
                && r.policy_type() == Some(&aa::PolicyType::IdentityPolicy)
                && r.validate_policy_resource_type().is_none()
        })
        .then_output(|| {
            ValidatePolicyOutput::builder()
                .findings(star_finding())
                .next_token("t2")
                .build()
                .unwrap()
        });
    let page2 = mock!(aws_sdk_accessanalyzer::Client::validate_policy)
        .match_requests(|r| r.next_token() == Some("t2"))
        .then_output(|| {
            ValidatePolicyOutput::builder()
                .findings(
                    aa::ValidatePolicyFinding::builder()
                        .finding_type(aa::ValidatePolicyFindingType::Suggestion)
                        .issue_code("EMPTY_SID_VALUE")
                        .finding_details("Add a value to the empty string in the Sid element.")
                        .learn_more_link("https://example.com")
                        .set_locations(Some(Vec::new()))
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap()
        });
    let client = aa_client(RuleMode::Sequential, &[&page1, &page2]);
    let findings = client
        .validate_policy(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            &PolicyKind::Identity,
        )
        .await
        .unwrap();
    assert_eq!(findings.len(), 2);
    assert_eq!(findings[0].finding_type, FindingType::SecurityWarning);
    assert_eq!(
        findings[0].issue_code,
        "PASS_ROLE_WITH_STAR_IN_ACTION_AND_RESOURCE"
    );
    assert_eq!(
        findings[0].locations,
        vec![vec![
            PolicyPathStep::Key("Statement".into()),
            PolicyPathStep::Index(0),
            PolicyPathStep::Key("Action".into()),
        ]]
    );
    assert_eq!(findings[1].finding_type, FindingType::Suggestion);
    assert!(findings[1].locations.is_empty());
    assert_eq!(page1.num_calls(), 1);
    assert_eq!(page2.num_calls(), 1);
}

#[tokio::test]
async fn policy_types_and_resource_types() {
    let trust = mock!(aws_sdk_accessanalyzer::Client::validate_policy)
        .match_requests(|r| {
            r.policy_type() == Some(&aa::PolicyType::ResourcePolicy)
                && r.validate_policy_resource_type()
                    == Some(&aa::ValidatePolicyResourceType::RoleTrust)
        })
        .then_output(|| {
            ValidatePolicyOutput::builder()
                .set_findings(Some(Vec::new()))
                .build()
                .unwrap()
        });
    let bucket = mock!(aws_sdk_accessanalyzer::Client::validate_policy)
        .match_requests(|r| {
            r.policy_type() == Some(&aa::PolicyType::ResourcePolicy)
                && r.validate_policy_resource_type()
                    == Some(&aa::ValidatePolicyResourceType::S3Bucket)
        })
        .then_output(|| {
            ValidatePolicyOutput::builder()
                .set_findings(Some(Vec::new()))
                .build()
                .unwrap()
        });
    // A topic policy is a resource policy of a type ValidatePolicy does not name.
    let topic = mock!(aws_sdk_accessanalyzer::Client::validate_policy)
        .match_requests(|r| {
            r.policy_type() == Some(&aa::PolicyType::ResourcePolicy)
                && r.validate_policy_resource_type().is_none()
        })
        .then_output(|| {
            ValidatePolicyOutput::builder()
                .set_findings(Some(Vec::new()))
                .build()
                .unwrap()
        });
    let client = aa_client(RuleMode::Sequential, &[&trust, &bucket, &topic]);
    for kind in [
        PolicyKind::RoleTrust,
        PolicyKind::Resource("AWS::S3::Bucket".into()),
        PolicyKind::Resource("AWS::SNS::Topic".into()),
    ] {
        assert!(client
            .validate_policy("{}", &kind)
            .await
            .unwrap()
            .is_empty());
    }
    assert_eq!(
        (trust.num_calls(), bucket.num_calls(), topic.num_calls()),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn check_no_new_access_sends_both_documents() {
    let rule = mock!(aws_sdk_accessanalyzer::Client::check_no_new_access)
        .match_requests(|r| {
            r.new_policy_document() == Some("NEW")
                && r.existing_policy_document() == Some("OLD")
                && r.policy_type() == Some(&aa::AccessCheckPolicyType::IdentityPolicy)
        })
        .then_output(|| {
            CheckNoNewAccessOutput::builder()
                .result(aa::CheckNoNewAccessResult::Fail)
                .message(
                    "The modified permissions grant new access compared to your existing policy.",
                )
                .reasons(
                    aa::ReasonSummary::builder()
                        .statement_index(0)
                        .statement_id("All")
                        .description("New access in the statement with index: 0.")
                        .build(),
                )
                .build()
        });
    let client = aa_client(RuleMode::Sequential, &[&rule]);
    let check = client
        .check_no_new_access("NEW", "OLD", &PolicyKind::Identity)
        .await
        .unwrap();
    assert!(!check.passed);
    assert_eq!(
        check.reasons,
        vec!["statement 0 (All): New access in the statement with index: 0."]
    );
    assert!(check.message.starts_with("The modified permissions"));
}

#[tokio::test]
async fn check_access_not_granted_sends_the_actions() {
    let rule = mock!(aws_sdk_accessanalyzer::Client::check_access_not_granted)
        .match_requests(|r| {
            let a = r.access();
            a.len() == 1
                && a[0].actions() == ["iam:PassRole", "s3:DeleteBucket"]
                && r.policy_type() == Some(&aa::AccessCheckPolicyType::ResourcePolicy)
        })
        .then_output(|| {
            CheckAccessNotGrantedOutput::builder()
                .result(aa::CheckAccessNotGrantedResult::Pass)
                .build()
        });
    let client = aa_client(RuleMode::Sequential, &[&rule]);
    let actions = vec!["iam:PassRole".to_string(), "s3:DeleteBucket".to_string()];
    let check = client
        .check_access_not_granted(
            "{}",
            &actions,
            &PolicyKind::Resource("AWS::S3::Bucket".into()),
        )
        .await
        .unwrap();
    assert!(check.passed);
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn throttling_is_retried() {
    // One sequence: the throttling error, then the answer.
    let rule = mock!(aws_sdk_accessanalyzer::Client::validate_policy)
        .sequence()
        .http_status(
            429,
            Some(json_error("ThrottlingException", "Rate exceeded")),
        )
        .output(|| {
            ValidatePolicyOutput::builder()
                .findings(star_finding())
                .build()
                .unwrap()
        })
        .build();
    let client = aa_client(RuleMode::Sequential, &[&rule]);
    let findings = client
        .validate_policy("{}", &PolicyKind::Identity)
        .await
        .unwrap();
    assert_eq!(findings.len(), 1);
    assert_eq!(rule.num_calls(), 2);
}

#[tokio::test]
async fn persistent_throttling_and_denials_are_errors() {
    let rule = mock!(aws_sdk_accessanalyzer::Client::check_no_new_access)
        .sequence()
        .http_status(
            429,
            Some(json_error("ThrottlingException", "Rate exceeded")),
        )
        .times(MAX_ATTEMPTS as usize)
        .build();
    let client = aa_client(RuleMode::Sequential, &[&rule]);
    let err = client
        .check_no_new_access("{}", "{}", &PolicyKind::Identity)
        .await
        .unwrap_err();
    assert!(err.is_throttled(), "{err:?}");
    assert_eq!(rule.num_calls(), MAX_ATTEMPTS as usize);

    let rule = mock!(aws_sdk_accessanalyzer::Client::validate_policy)
        .sequence()
        .http_status(
            403,
            Some(json_error("AccessDeniedException", "not authorized")),
        )
        .build();
    let client = aa_client(RuleMode::Sequential, &[&rule]);
    let err = client
        .validate_policy("{}", &PolicyKind::Identity)
        .await
        .unwrap_err();
    assert!(err.is_access_denied(), "{err:?}");
    assert_eq!(err.service, "AccessAnalyzer");
    assert_eq!(rule.num_calls(), 1);
}
