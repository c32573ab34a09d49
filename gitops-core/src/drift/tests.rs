#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::aws::fake::{DriftScript, Fake, Script};
use crate::aws::{PropertyDifference, ResourceDrift};
use crate::deploy::inspect::{
    assess, detect_resource_drift, find_orphans, inspect, inspect_all, remediate, DriftCheckError,
    InspectOptions,
};
use crate::deploy::{
    desired, Desired, Executor, ExecutorOptions, Observed, TAG_ENVIRONMENT, TAG_MANAGED_BY,
};
use crate::detect::{Change, EnvChange};
use crate::model::Repository;
use crate::source::Memory;
use crate::template::Template;

const TEMPLATE: &str = "Parameters:\n  AppVersion: {Type: String}\n  EnvironmentName: {Type: String}\n  LogLevel: {Type: String, Default: INFO}\n  Secret: {Type: String, NoEcho: true, Default: x}\nResources:\n  Topic: {Type: AWS::SNS::Topic}\n";
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

fn desired_for(pipeline: bool, extra: &str, commit: &str) -> (Repository, Desired) {
    let (repo, source) = repo(pipeline, extra);
    let env = repo.environment("dev").unwrap().clone();
    let d = desired(
        &repo,
        &source,
        &EnvChange::new(env, Change::Updated),
        commit,
    )
    .unwrap();
    (repo, d)
}

fn keys() -> Vec<PromotedKey> {
    vec![PromotedKey::Parameter("AppVersion".into())]
}

/// A stack exactly as `spec` wants it: the parameters it passes, the
/// template's defaults for the others (NoEcho ones masked), its tags.
fn deployed(spec: &StackSpec, status: &str) -> Stack {
    let mut parameters = spec.parameters.clone();
    if let Some(declared) = spec.template_normalized["Parameters"].as_object() {
        for (name, p) in declared {
            if let Some(d) = p.get("Default").and_then(|d| d.as_str()) {
                let shown = if p.get("NoEcho").is_some() { "****" } else { d };
                parameters
                    .entry(name.clone())
                    .or_insert_with(|| shown.to_string());
            }
        }
    }
    Stack {
        name: spec.name.clone(),
        id: format!("arn:stack/{}", spec.name),
        status: status.into(),
        parameters,
        tags: spec.tags.clone(),
        ..Stack::default()
    }
}

fn stack(status: &str) -> Stack {
    Stack {
        name: "s".into(),
        status: status.into(),
        ..Stack::default()
    }
}

fn execution(status: &str) -> ExecutionSummary {
    ExecutionSummary {
        id: "e1".into(),
        status: status.into(),
        last_update_time: Some("2026-01-02T03:04:05Z".into()),
        source_revisions: vec![crate::aws::ExecutedRevision {
            name: "Source".into(),
            revision_id: Some("abc123".into()),
            summary: None,
        }],
        ..ExecutionSummary::default()
    }
}

#[test]
fn health_follows_the_documented_table() {
    let h = |s: Option<&str>, p: Option<&str>| {
        let st = s.map(stack);
        let ex = p.map(execution);
        health(st.as_ref(), ex.as_ref())
    };
    assert_eq!(h(None, None), Health::Missing);
    assert_eq!(h(Some("DELETE_COMPLETE"), None), Health::Missing);
    assert_eq!(h(None, Some("Failed")), Health::Missing);
    assert_eq!(h(None, Some("InProgress")), Health::Progressing);
    assert_eq!(h(Some("UPDATE_IN_PROGRESS"), None), Health::Progressing);
    assert_eq!(h(Some("REVIEW_IN_PROGRESS"), None), Health::Progressing);
    assert_eq!(
        h(Some("UPDATE_COMPLETE"), Some("InProgress")),
        Health::Progressing
    );
    assert_eq!(
        h(Some("UPDATE_COMPLETE"), Some("Stopping")),
        Health::Progressing
    );
    assert_eq!(h(Some("UPDATE_ROLLBACK_COMPLETE"), None), Health::Degraded);
    assert_eq!(h(Some("ROLLBACK_COMPLETE"), None), Health::Degraded);
    assert_eq!(h(Some("CREATE_FAILED"), None), Health::Degraded);
    assert_eq!(
        h(Some("UPDATE_ROLLBACK_FAILED"), Some("Succeeded")),
        Health::Degraded
    );
    assert_eq!(h(Some("UPDATE_COMPLETE"), Some("Failed")), Health::Degraded);
    assert_eq!(
        h(Some("UPDATE_COMPLETE"), Some("Stopped")),
        Health::Degraded
    );
    assert_eq!(
        h(Some("UPDATE_COMPLETE"), Some("Succeeded")),
        Health::Healthy
    );
    assert_eq!(
        h(Some("CREATE_COMPLETE"), Some("Superseded")),
        Health::Healthy
    );
    assert_eq!(h(Some("IMPORT_COMPLETE"), None), Health::Healthy);
    assert_eq!(h(Some("UPDATE_COMPLETE"), Some("Weird")), Health::Unknown);
    // serialised as the bare words
    assert_eq!(
        serde_json::to_string(&Health::Progressing).unwrap(),
        "\"Progressing\""
    );
    assert_eq!(
        serde_json::to_string(&Sync::OutOfSync).unwrap(),
        "\"OutOfSync\""
    );
}

#[test]
fn compare_names_each_difference() {
    let (_, d) = desired_for(false, "", "c1");
    let spec = d.stack.clone().unwrap();
    let mut s = deployed(&spec, "UPDATE_COMPLETE");
    // the template default of LogLevel is what the stack runs
    s.parameters.insert("LogLevel".into(), "INFO".into());
    s.parameters.insert("Secret".into(), "****".into());
    assert_eq!(compare(&spec, &s, Some(&spec.template_normalized)), vec![]);

    // the same template as JSON, keys in another order, compares equal
    let json = Template::parse(
        "t.json",
        r#"{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Parameters": {"Secret": {"Default": "x", "NoEcho": true, "Type": "String"}, "LogLevel": {"Default": "INFO", "Type": "String"}, "EnvironmentName": {"Type": "String"}, "AppVersion": {"Type": "String"}}}"#,
    )
    .unwrap()
    .normalized();
    assert_eq!(compare(&spec, &s, Some(&json)), vec![]);

    // a commit or remediation tag alone is no drift
    s.tags.insert(TAG_COMMIT.into(), "other".into());
    s.tags.insert(TAG_REMEDIATED.into(), "other".into());
    assert_eq!(compare(&spec, &s, None), vec![]);

    s.parameters.insert("AppVersion".into(), "1.3.0".into());
    s.parameters.insert("LogLevel".into(), "DEBUG".into());
    s.tags.insert("team".into(), "x".into());
    s.tags.insert("extra".into(), "y".into());
    let other = Template::parse(
        "t",
        "Resources:\n  Topic: {Type: AWS::SNS::Topic}\n  Q: {Type: AWS::SQS::Queue}\n",
    )
    .unwrap()
    .normalized();
    let messages: Vec<String> = compare(&spec, &s, Some(&other))
        .iter()
        .map(|r| r.message.clone())
        .collect();
    assert_eq!(
        messages,
        [
            "template differs (Parameters, Resources.Q)",
            "parameters.AppVersion expected 1.0, actual 1.3.0",
            "parameters.LogLevel expected INFO, actual DEBUG",
            "tags.extra expected (not set), actual y",
            "tags.team expected pay, actual x",
        ]
    );
    let r = &compare(&spec, &s, None)[0];
    assert_eq!(r.kind, ReasonKind::Parameter);
    assert_eq!(r.key.as_deref(), Some("parameters.AppVersion"));
    assert_eq!(r.expected.as_deref(), Some("1.0"));
    assert_eq!(r.actual.as_deref(), Some("1.3.0"));
    assert_eq!(r.stack, "dev-app");
}

#[test]
fn assess_builds_the_status_row() {
    let (_, d) = desired_for(false, "", "c1");
    let spec = d.stack.clone().unwrap();
    let mut o = Observed::new();
    let missing = assess(&d, &o, None, &keys());
    assert_eq!(missing.status.sync, Sync::OutOfSync);
    assert_eq!(missing.status.health, Health::Missing);
    assert_eq!(missing.reasons[0].message, "stack missing (dev-app)");
    assert_eq!(
        missing.status.git_version["parameters.AppVersion"].as_deref(),
        Some("1.0")
    );
    assert!(missing.status.deployed_version.is_empty());

    let mut s = deployed(&spec, "UPDATE_COMPLETE");
    s.parameters.insert("AppVersion".into(), "0.9".into());
    o.stack = Some(s);
    o.stack_template = Some(spec.template_normalized.clone());
    let a = assess(&d, &o, None, &keys());
    assert_eq!(a.status.sync, Sync::OutOfSync);
    assert_eq!(a.status.health, Health::Healthy);
    assert_eq!(a.status.commit.as_deref(), Some("c1"));
    assert_eq!(a.status.stack_status.as_deref(), Some("UPDATE_COMPLETE"));
    assert_eq!(
        a.status.deployed_version["parameters.AppVersion"].as_deref(),
        Some("0.9")
    );
    assert_eq!(a.reasons.len(), 1);
    let v = serde_json::to_value(&a).unwrap();
    for key in [
        "name",
        "git_version",
        "deployed_version",
        "commit",
        "stack_status",
        "pipeline",
        "sync",
        "health",
        "reasons",
        "resource_drifts",
        "error",
    ] {
        assert!(v.get(key).is_some(), "{key} in {v}");
    }
    assert_eq!(v["sync"], "OutOfSync");
    assert_eq!(v["reasons"][0]["kind"], "parameter");
}

#[test]
fn pipeline_mode_compares_the_pipeline_stack_and_not_the_environment_stack_tags() {
    let (_, d) = desired_for(true, "", "c1");
    let spec = d.stack.clone().unwrap();
    let pspec = d.pipeline_stack.clone().unwrap();
    let mut o = Observed::new();
    let mut s = deployed(&spec, "UPDATE_COMPLETE");
    s.tags.clear(); // the pipeline's deploy action sets no stack tags
    o.stack = Some(s);
    o.stack_template = Some(spec.template_normalized.clone());
    let mut p = deployed(&pspec, "UPDATE_COMPLETE");
    p.tags.insert(TAG_REMEDIATED.into(), "c0".into());
    o.pipeline_stack = Some(p);
    o.pipeline_stack_template = Some(pspec.template_normalized.clone());
    let a = assess(&d, &o, Some(&execution("Succeeded")), &keys());
    assert_eq!(a.status.sync, Sync::Synced, "{:?}", a.reasons);
    assert_eq!(a.status.health, Health::Healthy);
    assert_eq!(a.remediated_commit.as_deref(), Some("c0"));
    let run = a.status.pipeline.clone().unwrap();
    assert_eq!(run.name, "dev-deploy");
    assert_eq!(run.source_revision.as_deref(), Some("abc123"));
    assert_eq!(run.time.as_deref(), Some("2026-01-02T03:04:05Z"));
    // a failed last execution is Degraded; a changed pipeline stack is OutOfSync
    o.pipeline_stack
        .as_mut()
        .unwrap()
        .parameters
        .insert("AppVersion".into(), "0.5".into());
    let a = assess(&d, &o, Some(&execution("Failed")), &keys());
    assert_eq!(a.status.health, Health::Degraded);
    assert_eq!(
        a.reasons[0].message,
        "pipeline stack dev-pipeline: parameters.AppVersion expected 1.0, actual 0.5"
    );
}

fn drifted(logical: &str, status: &str, diffs: &[(&str, &str, &str)]) -> ResourceDrift {
    ResourceDrift {
        logical_id: logical.into(),
        resource_type: "AWS::S3::Bucket".into(),
        status: status.into(),
        differences: diffs
            .iter()
            .map(|(p, e, a)| PropertyDifference {
                path: p.to_string(),
                expected: e.to_string(),
                actual: a.to_string(),
                kind: "NOT_EQUAL".into(),
            })
            .collect(),
    }
}

#[test]
fn ignore_entries_leave_out_known_noise() {
    let drifts = vec![
        drifted(
            "Bucket",
            "MODIFIED",
            &[
                ("/Tags/0/Value", "a", "b"),
                ("/VersioningConfiguration/Status", "Enabled", "Suspended"),
            ],
        ),
        drifted("Noisy", "MODIFIED", &[("/Properties/Tags/1/Key", "a", "b")]),
        drifted("Gone", "DELETED", &[]),
        drifted("Fine", "IN_SYNC", &[]),
        drifted("Custom", "NOT_CHECKED", &[]),
    ];
    let all = filter_ignored("s", &drifts, &[]);
    assert_eq!(
        all.iter()
            .map(|r| r.logical_id.as_str())
            .collect::<Vec<_>>(),
        ["Bucket", "Noisy", "Gone", "Custom"]
    );
    let some = filter_ignored(
        "s",
        &drifts,
        &[
            "Bucket.Tags".into(),
            "Noisy.Tags".into(),
            "Gone".into(),
            "Bucket.Version".into(),
        ],
    );
    assert_eq!(
        some.iter()
            .map(|r| r.logical_id.as_str())
            .collect::<Vec<_>>(),
        ["Bucket", "Custom"],
        "Noisy is left with nothing, Gone is ignored whole"
    );
    assert_eq!(some[0].differences.len(), 1);
    assert_eq!(
        some[0].differences[0].path,
        "/VersioningConfiguration/Status"
    );
    assert!(
        !ignores("Bucket.Tag", "Bucket", "/Tags/0"),
        "whole segments only"
    );
    assert!(ignores("Bucket.Tags.0", "Bucket", "/Tags/0/Value"));

    let (_, d) = desired_for(false, "", "c1");
    let mut e = EnvDrift::unknown(&d.environment, &keys(), "x");
    e.status.error = None;
    e.add_resource_drift("dev-app", &drifts, &["Bucket.Tags".into()]);
    assert_eq!(e.status.sync, Sync::OutOfSync);
    let messages: Vec<&str> = e.reasons.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "resource Bucket/VersioningConfiguration/Status (AWS::S3::Bucket) expected Enabled, actual Suspended (NOT_EQUAL)",
            "resource Noisy/Properties/Tags/1/Key (AWS::S3::Bucket) expected a, actual b (NOT_EQUAL)",
            "resource Gone (AWS::S3::Bucket) DELETED",
        ]
    );
    // NOT_CHECKED is listed, never counted as in sync or as drift
    let custom = e
        .resource_drifts
        .iter()
        .find(|r| r.logical_id == "Custom")
        .unwrap();
    assert_eq!(custom.status, "NOT_CHECKED");
    assert!(!custom.is_drift());
    let v = serde_json::to_value(&e.resource_drifts[0]).unwrap();
    assert_eq!(v["differences"][0]["type"], "NOT_EQUAL");
}

#[test]
fn orphans_are_managed_stacks_no_environment_declares() {
    let s = |n: &str, status: &str| Stack {
        name: n.into(),
        status: status.into(),
        ..Stack::default()
    };
    let found = orphans(
        ["dev-app", "prod-app"],
        &[
            s("old-app", "CREATE_COMPLETE"),
            s("dev-app", "UPDATE_COMPLETE"),
            s("gone-app", "DELETE_COMPLETE"),
            s("old-app", "CREATE_COMPLETE"),
        ],
    );
    assert_eq!(found, ["old-app"]);
}

#[test]
fn remediation_rules() {
    let (_, d) = desired_for(false, "", "c1");
    let mut e = EnvDrift::unknown(&d.environment, &keys(), "x");
    assert!(may_remediate(&e, true, "c1")
        .unwrap_err()
        .to_string()
        .contains("Unknown"));
    e.status.error = None;
    e.reasons.push(Reason::stack_missing("dev-app"));
    e.refresh_sync();
    e.status.health = Health::Healthy;
    assert!(may_remediate(&e, false, "c1")
        .unwrap_err()
        .to_string()
        .contains("auto-remediate"));
    assert_eq!(may_remediate(&e, true, "c1"), Ok(()));
    e.remediated_commit = Some("c1".into());
    assert!(may_remediate(&e, true, "c1")
        .unwrap_err()
        .to_string()
        .contains("already remediated at c1"));
    assert_eq!(may_remediate(&e, true, "c2"), Ok(()));
    e.status.health = Health::Degraded;
    e.status.stack_status = Some("UPDATE_ROLLBACK_COMPLETE".into());
    assert!(may_remediate(&e, true, "c2")
        .unwrap_err()
        .to_string()
        .contains("UPDATE_ROLLBACK_COMPLETE"));
    e.status.health = Health::Progressing;
    assert!(may_remediate(&e, true, "c2").is_err());
}

// ---------------------------------------------------------------------------
// Against the fake AWS
// ---------------------------------------------------------------------------

fn fast() -> InspectOptions {
    InspectOptions::new()
        .with_resource_drift(true)
        .with_poll(Duration::from_millis(1), Duration::from_millis(8))
        .with_timeout(Duration::from_millis(60))
}

fn fake_with(d: &Desired, edit: impl FnOnce(&mut Stack)) -> Fake {
    let spec = d.stack.clone().unwrap();
    let mut s = deployed(&spec, "UPDATE_COMPLETE");
    edit(&mut s);
    Fake::new().with_stack(s, &spec.template_body)
}

#[tokio::test]
async fn drift_detection_reports_property_differences() {
    let (_, d) = desired_for(false, "", "c1");
    let fake = fake_with(&d, |_| {});
    fake.script_drift(
        "dev-app",
        DriftScript {
            in_progress_polls: 2,
            stack_drift_status: Some("DRIFTED".into()),
            resources: vec![
                drifted("Topic", "MODIFIED", &[("/DisplayName", "pay", "hacked")]),
                drifted("Custom", "NOT_CHECKED", &[]),
            ],
            ..DriftScript::default()
        },
    );
    let e = inspect(&fake.clients(), &d, &keys(), &fast()).await;
    assert_eq!(e.status.sync, Sync::OutOfSync);
    assert!(e.resource_drift_checked);
    assert_eq!(
        e.reasons[0].message,
        "resource Topic/DisplayName (AWS::S3::Bucket) expected pay, actual hacked (NOT_EQUAL)"
    );
    assert_eq!(e.resource_drifts.len(), 2);
    let calls = fake.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("DescribeStackDriftDetectionStatus"))
            .count(),
        3,
        "{calls:?}"
    );
    assert!(fake.mutating_calls().is_empty());
}

#[tokio::test]
async fn drift_detection_in_sync() {
    let (_, d) = desired_for(false, "", "c1");
    let fake = fake_with(&d, |_| {});
    fake.script_drift(
        "dev-app",
        DriftScript {
            resources: vec![drifted("Topic", "IN_SYNC", &[])],
            ..DriftScript::default()
        },
    );
    let e = inspect(&fake.clients(), &d, &keys(), &fast()).await;
    assert_eq!(e.status.sync, Sync::Synced, "{:?}", e.reasons);
    assert!(e.resource_drift_checked);
    assert!(e.resource_drifts.is_empty());
    assert_eq!(e.status.error, None);
}

#[tokio::test]
async fn drift_detection_failed_is_unknown_with_its_reason() {
    let (_, d) = desired_for(false, "", "c1");
    let fake = fake_with(&d, |_| {});
    fake.script_drift(
        "dev-app",
        DriftScript {
            status: "DETECTION_FAILED".into(),
            stack_drift_status: None,
            reason: Some("Failed to detect drift on resource [Topic]".into()),
            ..DriftScript::default()
        },
    );
    let e = inspect(&fake.clients(), &d, &keys(), &fast()).await;
    assert_eq!(e.status.sync, Sync::Unknown);
    assert!(!e.resource_drift_checked);
    assert_eq!(
        e.status.error.as_deref(),
        Some("drift detection of `dev-app` failed: Failed to detect drift on resource [Topic]")
    );
    // but differences found before the failure still make it OutOfSync
    let fake = fake_with(&d, |s| {
        s.parameters.insert("AppVersion".into(), "9".into());
    });
    fake.script_drift(
        "dev-app",
        DriftScript {
            status: "DETECTION_FAILED".into(),
            ..DriftScript::default()
        },
    );
    let e = inspect(&fake.clients(), &d, &keys(), &fast()).await;
    assert_eq!(e.status.sync, Sync::OutOfSync);
    assert!(e.status.error.is_some());
}

#[tokio::test]
async fn drift_detection_still_running_past_the_bound() {
    let (_, d) = desired_for(false, "", "c1");
    let fake = fake_with(&d, |_| {});
    fake.script_drift(
        "dev-app",
        DriftScript {
            in_progress_polls: usize::MAX,
            ..DriftScript::default()
        },
    );
    let start = tokio::time::Instant::now();
    let r = detect_resource_drift(&fake, "dev-app", &fast()).await;
    assert!(matches!(r, Err(DriftCheckError::TimedOut { .. })), "{r:?}");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(60), "{waited:?}");
    // backoff: 1, 2, 4, 8, 8, ... ms: at most 11 polls in 60 ms, not 60
    let polls = fake
        .calls()
        .iter()
        .filter(|c| c.starts_with("DescribeStackDriftDetectionStatus"))
        .count();
    assert!((3..=11).contains(&polls), "{polls}");
    let e = inspect(&fake.clients(), &d, &keys(), &fast()).await;
    assert_eq!(e.status.sync, Sync::Unknown);
    assert!(e.status.error.unwrap().contains("was still running after"));
}

#[tokio::test]
async fn pipeline_executions_feed_health() {
    let (_, d) = desired_for(true, "", "c1");
    let spec = d.stack.clone().unwrap();
    let pspec = d.pipeline_stack.clone().unwrap();
    let fake = Fake::new()
        .with_stack(deployed(&spec, "UPDATE_COMPLETE"), &spec.template_body)
        .with_stack(deployed(&pspec, "UPDATE_COMPLETE"), &pspec.template_body);
    let status = InspectOptions::new();
    // no pipeline at all: no run, health from the stack alone
    let e = inspect(&fake.clients(), &d, &keys(), &status).await;
    assert_eq!(e.status.pipeline, None);
    assert_eq!(e.status.health, Health::Healthy);
    for (exec, want) in [
        ("InProgress", Health::Progressing),
        ("Failed", Health::Degraded),
        ("Stopped", Health::Degraded),
        ("Succeeded", Health::Healthy),
    ] {
        fake.list_executions_answer("dev-deploy", vec![execution(exec), execution("Failed")]);
        let e = inspect(&fake.clients(), &d, &keys(), &status).await;
        assert_eq!(e.status.health, want, "{exec}");
        assert_eq!(e.status.pipeline.as_ref().unwrap().status, exec);
        assert_eq!(e.status.sync, Sync::Synced, "{:?}", e.reasons);
    }
    assert!(!fake
        .calls()
        .iter()
        .any(|c| c.starts_with("DetectStackDrift")));
}

#[tokio::test]
async fn inspect_all_keeps_order_and_isolates_errors() {
    let (_, d) = desired_for(false, "", "c1");
    let fake = fake_with(&d, |_| {});
    let mut broken = d.clone();
    broken.environment.name = "broken".into();
    broken.environment.stack = "broken-app".into();
    broken.stack.as_mut().unwrap().name = "broken-app".into();
    let mut missing = broken.clone();
    missing.environment.name = "missing".into();
    missing.environment.stack = "missing-app".into();
    missing.stack.as_mut().unwrap().name = "missing-app".into();
    // GetTemplate fails for broken-app: a stack without a template
    fake.state.lock().unwrap().stacks.insert(
        "broken-app".into(),
        Stack {
            name: "broken-app".into(),
            status: "CREATE_COMPLETE".into(),
            ..Stack::default()
        },
    );
    let all = inspect_all(
        Arc::new(fake.clients()),
        vec![broken, d.clone(), missing],
        keys(),
        InspectOptions::new(),
        2,
    )
    .await;
    assert_eq!(
        all.iter()
            .map(|e| e.status.name.as_str())
            .collect::<Vec<_>>(),
        ["broken", "dev", "missing"]
    );
    assert_eq!(all[0].status.sync, Sync::Unknown);
    assert!(all[0]
        .status
        .error
        .as_deref()
        .unwrap()
        .contains("no template"));
    assert_eq!(all[1].status.sync, Sync::Synced, "{:?}", all[1].reasons);
    assert_eq!(all[2].status.health, Health::Missing);
    assert_eq!(all[2].reasons[0].message, "stack missing (missing-app)");
}

#[tokio::test]
async fn orphans_through_the_fake() {
    let (_, d) = desired_for(false, "", "c1");
    let fake = fake_with(&d, |_| {});
    let mut tags = std::collections::BTreeMap::new();
    tags.insert(TAG_MANAGED_BY.to_string(), "acme/pay".to_string());
    tags.insert(TAG_ENVIRONMENT.to_string(), "old".to_string());
    let fake = fake
        .with_stack(
            Stack {
                name: "old-app".into(),
                id: "arn:old".into(),
                status: "CREATE_COMPLETE".into(),
                tags: tags.clone(),
                ..Stack::default()
            },
            "Resources: {}",
        )
        .with_stack(
            Stack {
                name: "theirs".into(),
                id: "arn:theirs".into(),
                status: "CREATE_COMPLETE".into(),
                ..Stack::default()
            },
            "Resources: {}",
        );
    let found = find_orphans(
        &fake.clients(),
        "acme/pay",
        &[("us-east-1".into(), None), ("eu-west-1".into(), None)],
        &["dev-app".into()],
    )
    .await
    .unwrap();
    assert_eq!(found, ["old-app"]);
}

#[tokio::test]
async fn remediation_runs_once_per_commit() {
    let (_, d) = desired_for(false, "auto-remediate: true\n", "c1");
    assert!(d.environment.auto_remediate);
    let fake = fake_with(&d, |s| {
        s.parameters.insert("AppVersion".into(), "9.9.9".into());
    });
    let exec = Executor::new(
        Arc::new(fake.clients()),
        Arc::new(|_: &str, _: &str| {}),
        "acme/pay",
        ExecutorOptions::new()
            .with_poll(Duration::from_millis(1))
            .with_timeout(Duration::from_secs(5)),
    );
    let status = InspectOptions::new();
    let e = inspect(&fake.clients(), &d, &keys(), &status).await;
    assert_eq!(e.status.sync, Sync::OutOfSync);
    let r = remediate(&exec, &d, &e, "c1").await;
    assert_eq!(r.action.to_string(), "redeployed", "{r:?}");
    let s = fake.stack("dev-app").unwrap();
    assert_eq!(s.parameters["AppVersion"], "1.0");
    assert_eq!(s.tags[TAG_REMEDIATED], "c1");
    let after = inspect(&fake.clients(), &d, &keys(), &status).await;
    assert_eq!(after.status.sync, Sync::Synced, "{:?}", after.reasons);

    // drifting again at the same commit: not redeployed a second time
    fake.edit_stack("dev-app", |s| {
        s.parameters.insert("AppVersion".into(), "9.9.9".into());
    });
    let e = inspect(&fake.clients(), &d, &keys(), &status).await;
    assert_eq!(e.remediated_commit.as_deref(), Some("c1"));
    let before = fake.mutating_calls().len();
    let r = remediate(&exec, &d, &e, "c1").await;
    assert_eq!(r.action.to_string(), "skipped");
    assert!(r.message.contains("already remediated at c1"), "{r:?}");
    assert_eq!(fake.mutating_calls().len(), before);

    // a new commit may remediate again
    let (_, d2) = desired_for(false, "auto-remediate: true\n", "c2");
    let r = remediate(&exec, &d2, &e, "c2").await;
    assert_eq!(r.action.to_string(), "redeployed", "{r:?}");
    assert_eq!(fake.stack("dev-app").unwrap().tags[TAG_REMEDIATED], "c2");

    // a failing redeploy leaves the stack rolled back: Degraded, so never looped
    fake.edit_stack("dev-app", |s| {
        s.parameters.insert("AppVersion".into(), "9.9.9".into());
    });
    fake.script(
        "dev-app",
        Script {
            fail_with: Some("UPDATE_ROLLBACK_COMPLETE".into()),
            ..Script::default()
        },
    );
    let (_, d3) = desired_for(false, "auto-remediate: true\n", "c3");
    let e = inspect(&fake.clients(), &d3, &keys(), &status).await;
    let r = remediate(&exec, &d3, &e, "c3").await;
    assert_eq!(r.action.to_string(), "failed", "{r:?}");
    let e = inspect(&fake.clients(), &d3, &keys(), &status).await;
    assert_eq!(e.status.health, Health::Degraded);
    let before = fake.mutating_calls().len();
    let r = remediate(&exec, &d3, &e, "c3").await;
    assert_eq!(r.action.to_string(), "skipped");
    assert_eq!(fake.mutating_calls().len(), before, "no second attempt");
    assert!(!fake.calls().iter().any(|c| c.starts_with("DeleteStack")));
}

#[tokio::test]
async fn remediation_in_pipeline_mode_starts_the_pipeline_and_tags_its_stack() {
    let (_, d) = desired_for(true, "auto-remediate: true\n", "c1");
    let spec = d.stack.clone().unwrap();
    let pspec = d.pipeline_stack.clone().unwrap();
    let mut s = deployed(&spec, "UPDATE_COMPLETE");
    s.parameters.insert("AppVersion".into(), "0.1".into());
    let fake = Fake::new()
        .with_stack(s, &spec.template_body)
        .with_stack(deployed(&pspec, "UPDATE_COMPLETE"), &pspec.template_body);
    fake.state.lock().unwrap().pipelines.insert(
        "dev-deploy".into(),
        crate::aws::Pipeline {
            name: "dev-deploy".into(),
            ..Default::default()
        },
    );
    let exec = Executor::new(
        Arc::new(fake.clients()),
        Arc::new(|_: &str, _: &str| {}),
        "acme/pay",
        ExecutorOptions::new()
            .with_poll(Duration::from_millis(1))
            .with_timeout(Duration::from_secs(5)),
    );
    let e = inspect(&fake.clients(), &d, &keys(), &InspectOptions::new()).await;
    assert_eq!(e.status.sync, Sync::OutOfSync);
    let r = remediate(&exec, &d, &e, "c1").await;
    assert_eq!(r.action.to_string(), "redeployed", "{r:?}");
    assert_eq!(fake.state.lock().unwrap().executions.len(), 1);
    assert_eq!(
        fake.stack("dev-pipeline").unwrap().tags[TAG_REMEDIATED],
        "c1"
    );
    let e = inspect(&fake.clients(), &d, &keys(), &InspectOptions::new()).await;
    assert_eq!(e.remediated_commit.as_deref(), Some("c1"));
    assert_eq!(
        remediate(&exec, &d, &e, "c1").await.action.to_string(),
        "skipped"
    );
    assert_eq!(fake.state.lock().unwrap().executions.len(), 1);
}

#[test]
fn the_remediation_tag_counts_only_when_a_remediation_sets_it() {
    let (_, d) = desired_for(false, "", "c1");
    let spec = d.stack.clone().unwrap();
    let t = Some(&spec.template_normalized);
    let mut s = deployed(&spec, "UPDATE_COMPLETE");
    s.tags.insert(TAG_REMEDIATED.into(), "c0".into());
    assert!(
        crate::deploy::up_to_date(&spec, &s, t),
        "a deploy ignores it"
    );
    let mut remediation = spec.clone();
    remediation.tags.insert(TAG_REMEDIATED.into(), "c1".into());
    assert!(
        !crate::deploy::up_to_date(&remediation, &s, t),
        "a remediation records it"
    );
    s.tags.insert(TAG_REMEDIATED.into(), "c1".into());
    assert!(crate::deploy::up_to_date(&remediation, &s, t));
}

#[test]
fn drift_ignore_and_auto_remediate_are_read_and_checked() {
    let source = |cfg: &str| {
        Memory::new("x")
            .with_file(
                "gitops.yaml",
                format!("version: 1\nstack: {{template: common/app.yaml}}\n{cfg}"),
            )
            .with_file("common/app.yaml", TEMPLATE)
            .with_file(
                "environments/dev/environment.yaml",
                "parameters: {AppVersion: '1'}\nauto-remediate: true\n",
            )
    };
    let s = source("drift: {ignore: [DataBucket.Tags, Topic, A.B.0.C]}\n");
    let repo = Repository::load(&s).unwrap();
    assert!(repo.validate(&s).is_empty(), "{:?}", repo.validate(&s));
    assert_eq!(
        repo.config.drift.ignore,
        ["DataBucket.Tags", "Topic", "A.B.0.C"]
    );
    assert!(repo.environment("dev").unwrap().auto_remediate);
    assert_eq!(crate::Config::default().drift.ignore, Vec::<String>::new());

    let s = source("drift: {ignore: [Data-Bucket, 'A..B', 'A/B'], keep: 1}\n");
    let problems: Vec<String> = Repository::load(&s)
        .unwrap()
        .validate(&s)
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(
        problems.iter().any(|p| p.contains("unknown key `keep`")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|p| p.contains(
            "`drift.ignore` entry `Data-Bucket` must be `LogicalId` or `LogicalId.PropertyPath`"
        )),
        "{problems:#?}"
    );
}

#[tokio::test]
async fn many_environments_share_one_listing_and_status_reads_no_template() {
    let (_, d) = desired_for(false, "", "c1");
    let spec = d.stack.clone().unwrap();
    let mut fake = Fake::new();
    let mut all = Vec::new();
    for i in 0..6 {
        let mut e = d.clone();
        let name = format!("env{i}");
        e.environment.name = name.clone();
        e.environment.stack = format!("{name}-app");
        e.stack.as_mut().unwrap().name = format!("{name}-app");
        if i != 5 {
            // env5 was never deployed
            let mut s = deployed(e.stack.as_ref().unwrap(), "UPDATE_COMPLETE");
            if i == 3 {
                s.parameters.insert("AppVersion".into(), "7".into());
            }
            fake = fake.with_stack(s, &spec.template_body);
        }
        all.push(e);
    }
    let status = InspectOptions::new().with_templates(false);
    let found = inspect_all(Arc::new(fake.clients()), all.clone(), keys(), status, 4).await;
    let sync: Vec<Sync> = found.iter().map(|e| e.status.sync).collect();
    let (ok, out) = (Sync::Synced, Sync::OutOfSync);
    assert_eq!(sync, [ok, ok, ok, out, ok, out]);
    assert_eq!(found[5].status.health, Health::Missing);
    let calls = fake.calls();
    assert_eq!(calls, ["DescribeStacks *"], "one listing, no template read");

    // drift reads each template, still from one listing
    let fake2 = fake.clone();
    fake2.state.lock().unwrap().calls.clear();
    let found = inspect_all(
        Arc::new(fake2.clients()),
        all,
        keys(),
        InspectOptions::new(),
        4,
    )
    .await;
    assert_eq!(found[3].status.sync, Sync::OutOfSync);
    let calls = fake2.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("DescribeStacks"))
            .count(),
        1,
        "{calls:?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("GetTemplate"))
            .count(),
        5,
        "{calls:?}"
    );
}

#[test]
fn termination_protection_that_does_not_follow_protected_is_out_of_sync() {
    for (extra, deployed_protection, reason) in [
        (
            "protected: true\n",
            Some(false),
            Some("termination protection expected on, actual off"),
        ),
        (
            "",
            Some(true),
            Some("termination protection expected off, actual on"),
        ),
        ("protected: true\n", Some(true), None),
        ("", Some(false), None),
        // Not reported (an emulator): not compared.
        ("protected: true\n", None, None),
    ] {
        let (_, d) = desired_for(false, extra, "c1");
        let spec = d.stack.clone().unwrap();
        let mut o = Observed::new();
        let mut s = deployed(&spec, "UPDATE_COMPLETE");
        s.termination_protection = deployed_protection;
        o.stack = Some(s);
        o.stack_template = Some(spec.template_normalized.clone());
        let drift = assess(&d, &o, None, &keys());
        let messages: Vec<&str> = drift.reasons.iter().map(|r| r.message.as_str()).collect();
        match reason {
            Some(r) => {
                assert_eq!(drift.status.sync, Sync::OutOfSync, "{messages:?}");
                assert_eq!(messages.len(), 1, "{messages:?}");
                assert!(messages[0].starts_with(r), "{messages:?}");
                assert_eq!(drift.reasons[0].kind, ReasonKind::TerminationProtection);
            }
            None => assert_eq!(drift.status.sync, Sync::Synced, "{extra} {messages:?}"),
        }
    }
    // Pipeline mode: the pipeline stack, which the tool deploys.
    let (_, d) = desired_for(true, "protected: true\n", "c1");
    let mut o = Observed::new();
    let spec = d.stack.clone().unwrap();
    let mut s = deployed(&spec, "UPDATE_COMPLETE");
    s.termination_protection = Some(false);
    o.stack = Some(s);
    o.stack_template = Some(spec.template_normalized.clone());
    let pspec = d.pipeline_stack.clone().unwrap();
    let mut p = deployed(&pspec, "UPDATE_COMPLETE");
    p.termination_protection = Some(false);
    o.pipeline_stack = Some(p);
    o.pipeline_stack_template = Some(pspec.template_normalized.clone());
    let drift = assess(&d, &o, None, &keys());
    let messages: Vec<&str> = drift.reasons.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(
        messages,
        ["pipeline stack dev-pipeline: termination protection expected on, actual off (`protected: true`; a deploy sets it)"]
    );
}
