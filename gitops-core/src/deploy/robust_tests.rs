//! The executor under faults, with the in-memory fake: a panicking task, a
//! creation left in REVIEW_IN_PROGRESS, an interrupt, a rotated `NoEcho` value.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::aws::fake::{Fake, Script};
use crate::aws::{ChangeSetKind, ChangeSetRequest, CloudFormation, TemplateSource};
use crate::detect::EnvChange;
use crate::fanout::CancellationToken;
use crate::source::Memory;

const TEMPLATE: &str = "Parameters:\n  AppVersion: {Type: String}\n  DbPassword: {Type: String, NoEcho: true}\nResources:\n  Topic: {Type: AWS::SNS::Topic}\n";

fn desired_env(name: &str, password: &str, commit: &str) -> Desired {
    let source = Memory::new("x")
        .with_file(
            "gitops.yaml",
            "version: 1\nid: acme/pay\nstack: {template: common/app.yaml}\n",
        )
        .with_file("common/app.yaml", TEMPLATE)
        .with_file(
            &format!("environments/{name}/environment.yaml"),
            format!("parameters: {{AppVersion: '1.0', DbPassword: {password}}}\n"),
        );
    let repo = Repository::load(&source).unwrap();
    let env = repo.environment(name).unwrap().clone();
    desired(
        &repo,
        &source,
        &EnvChange::new(env, Change::Updated),
        commit,
    )
    .unwrap()
}

fn executor(fake: &Fake) -> Executor {
    Executor::new(
        Arc::new(fake.clients()),
        Arc::new(|_: &str, _: &str| {}),
        "acme/pay",
        ExecutorOptions::new()
            .with_poll(Duration::from_millis(1))
            .with_timeout(Duration::from_secs(2)),
    )
}

#[tokio::test]
async fn a_panic_in_one_environment_fails_that_environment() {
    let fake = Fake::new();
    fake.script(
        "qa-app",
        Script {
            panic_on_describe: true,
            ..Script::default()
        },
    );
    let exec = Arc::new(executor(&fake));
    let all = vec![desired_env("dev", "a", "c1"), desired_env("qa", "b", "c1")];
    let out = exec.run_all(all, 2).await;
    assert_eq!(out.len(), 2, "no environment is dropped: {out:?}");
    assert_eq!(out[0].environment, "dev");
    assert_eq!(out[0].outcome, Outcome::Succeeded, "{:?}", out[0]);
    assert_eq!(out[1].environment, "qa");
    assert_eq!(out[1].outcome, Outcome::Failed, "{:?}", out[1]);
    assert!(
        out[1].message.contains("stopped unexpectedly"),
        "{}",
        out[1].message
    );
    assert!(out[1].outcome.is_failure(), "so deploy exits 1");
}

#[tokio::test]
async fn a_panic_in_one_check_marks_that_environment_failed() {
    let fake = Fake::new();
    fake.script(
        "qa-app",
        Script {
            panic_on_describe: true,
            ..Script::default()
        },
    );
    let all = vec![desired_env("dev", "a", "c1"), desired_env("qa", "b", "c1")];
    let out = inspect::inspect_all(
        Arc::new(fake.clients()),
        all,
        Vec::new(),
        inspect::InspectOptions::new(),
        2,
    )
    .await;
    assert_eq!(out.len(), 2);
    assert!(!out[0].failed);
    assert!(out[1].failed, "{:?}", out[1]);
    assert!(out[1]
        .status
        .error
        .as_deref()
        .unwrap()
        .contains("stopped unexpectedly"));
}

/// A stack in REVIEW_IN_PROGRESS, as an interrupted run leaves it.
fn review(fake: &Fake, tags: &[(&str, &str)], change_set: &str) {
    fake.state.lock().unwrap().stacks.insert(
        "dev-app".into(),
        Stack {
            name: "dev-app".into(),
            id: "arn:stack/dev-app/old".into(),
            status: "REVIEW_IN_PROGRESS".into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Stack::default()
        },
    );
    let cs = ChangeSetRequest::new(
        "dev-app",
        change_set,
        ChangeSetKind::Update,
        TemplateSource::Body("x".into()),
    );
    // The fake only lets UPDATE change sets onto an existing stack.
    let fut = fake.create_change_set(cs);
    futures_lite(fut).unwrap();
}

fn futures_lite<T>(f: crate::aws::BoxFuture<'_, T>) -> T {
    // The fake's futures are ready at once.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = f;
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("the fake never waits"),
    }
}

#[tokio::test]
async fn a_creation_left_in_review_is_deleted_and_created_again() {
    for (tags, change_set) in [
        (vec![(TAG_MANAGED_BY, "acme/pay")], "someone-elses-1"),
        (vec![], "gitops-deploy-left-1"),
        (vec![], "gitops-plan-left-1"),
    ] {
        let fake = Fake::new();
        review(&fake, &tags, change_set);
        let exec = executor(&fake);
        let o = exec.run(&desired_env("dev", "a", "c1")).await;
        assert_eq!(
            o.outcome,
            Outcome::Succeeded,
            "{tags:?} {change_set}: {o:?}"
        );
        let calls = fake.calls();
        let deleted = calls.iter().position(|c| c == "DeleteStack dev-app");
        let created = calls.iter().rposition(|c| c == "CreateChangeSet dev-app");
        assert!(deleted.is_some() && deleted < created, "{calls:?}");
        assert_eq!(fake.stack("dev-app").unwrap().status, "CREATE_COMPLETE");
    }
}

#[tokio::test]
async fn a_review_stack_that_is_not_ours_is_left_alone() {
    let fake = Fake::new();
    review(&fake, &[], "someone-elses-1");
    let o = executor(&fake).run(&desired_env("dev", "a", "c1")).await;
    assert_eq!(o.outcome, Outcome::Refused, "{o:?}");
    assert!(fake
        .mutating_calls()
        .iter()
        .all(|c| !c.starts_with("DeleteStack")));
}

#[tokio::test]
async fn an_interrupt_deletes_the_change_set_and_the_review_stack() {
    let fake = Fake::new();
    fake.script(
        "dev-app",
        Script {
            pending_change_set_polls: usize::MAX,
            ..Script::default()
        },
    );
    let token = CancellationToken::new();
    let exec = executor(&fake).with_cancel(token.clone());
    let t = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        t.cancel();
    });
    let o = exec.run(&desired_env("dev", "a", "c1")).await;
    assert_eq!(o.outcome, Outcome::Interrupted, "{o:?}");
    assert!(fake.state.lock().unwrap().change_sets.is_empty());
    assert!(fake.stack("dev-app").is_none(), "{:?}", fake.calls());
    assert_eq!(exec.pending_previews(), 0);
    // Once interrupted, nothing new starts.
    let before = fake.calls().len();
    let o = exec.run(&desired_env("dev", "a", "c2")).await;
    assert_eq!(o.outcome, Outcome::Interrupted);
    assert_eq!(fake.calls().len(), before);
}

struct History(Option<BTreeMap<String, String>>);

impl SecretHistory for History {
    fn parameters_at(&self, _: Option<&str>, _: &str) -> Option<BTreeMap<String, String>> {
        self.0.clone()
    }
}

#[tokio::test]
async fn a_rotated_no_echo_value_gets_a_change_set() {
    let fake = Fake::new();
    let first = desired_env("dev", "old-secret", "c1");
    let o = executor(&fake).run(&first).await;
    assert_eq!(o.outcome, Outcome::Succeeded, "{o:?}");
    // AWS shows the secret masked.
    fake.edit_stack("dev-app", |s| {
        s.parameters.insert("DbPassword".into(), "****".into());
    });
    let rotated = desired_env("dev", "new-secret", "c2");
    let before: BTreeMap<String, String> = [
        ("AppVersion".to_string(), "1.0".to_string()),
        ("DbPassword".to_string(), "old-secret".to_string()),
    ]
    .into();
    // Unchanged since the deployed commit: nothing to do.
    let same = executor(&fake)
        .with_secret_history(Arc::new(History(Some(before.clone()))))
        .run(&first)
        .await;
    assert_eq!(same.outcome, Outcome::NoOp, "{same:?}");
    // Changed: a change set, executed.
    let o = executor(&fake)
        .with_secret_history(Arc::new(History(Some(before))))
        .run(&rotated)
        .await;
    assert_eq!(o.outcome, Outcome::Succeeded, "{o:?}");
    assert_eq!(
        fake.stack("dev-app").unwrap().parameters["DbPassword"],
        "new-secret"
    );
    // The printed plan still masks it.
    let shown = serde_json::to_string(&o.plan).unwrap();
    assert!(!shown.contains("new-secret"), "{shown}");
}
