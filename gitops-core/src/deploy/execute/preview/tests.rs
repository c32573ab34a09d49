#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::aws::fake::{Fake, Script};
use crate::aws::Stack;
use crate::deploy::{
    desired, ownership_tags, Desired, Executor, ExecutorOptions, PlanOptions, StackOp,
};
use crate::detect::{Change, EnvChange};
use crate::model::Repository;
use crate::source::Memory;

const TEMPLATE: &str = "Parameters:\n  AppVersion: {Type: String}\n  EnvironmentName: {Type: String}\nResources:\n  Topic: {Type: AWS::SNS::Topic}\n";

fn setup(change: Change) -> (Repository, Desired) {
    let source = Memory::new("x")
        .with_file(
            "gitops.yaml",
            "version: 1\nid: acme/pay\nstack: {template: common/app.yaml}\n",
        )
        .with_file("common/app.yaml", TEMPLATE)
        .with_file(
            "environments/dev/environment.yaml",
            "parameters: {AppVersion: '1.1'}\n",
        );
    let repo = Repository::load(&source).unwrap();
    let env = repo.environment("dev").unwrap().clone();
    let d = desired(&repo, &source, &EnvChange::new(env, change), "c0ffee").unwrap();
    (repo, d)
}

fn executor(fake: &Fake, timeout: Duration) -> Executor {
    Executor::new(
        Arc::new(fake.clients()),
        Arc::new(|_: &str, _: &str| {}),
        "acme/pay",
        ExecutorOptions::new()
            .with_poll(Duration::from_millis(1))
            .with_timeout(timeout)
            .with_plan(PlanOptions::new().with_allow_delete(true)),
    )
}

/// `dev-app` as deployed at version 1.0 by this repository.
fn deployed(repo: &Repository) -> Fake {
    let env = repo.environment("dev").unwrap();
    let params = [("AppVersion", "1.0"), ("EnvironmentName", "dev")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Fake::new().with_stack(
        Stack {
            name: "dev-app".into(),
            id: "arn:dev-app".into(),
            status: "UPDATE_COMPLETE".into(),
            parameters: params,
            tags: ownership_tags(repo, env, "old"),
            ..Default::default()
        },
        TEMPLATE,
    )
}

/// Nothing left: no change set, no REVIEW_IN_PROGRESS stack, nothing executed.
fn assert_clean(fake: &Fake, exec: &Executor) {
    let s = fake.state.lock().unwrap();
    assert!(
        s.change_sets.is_empty(),
        "left behind: {:?}",
        s.change_sets.keys()
    );
    assert!(
        s.stacks
            .values()
            .all(|st| st.status != "REVIEW_IN_PROGRESS"),
        "{:?}",
        s.stacks
    );
    assert!(
        !s.calls.iter().any(|c| c.starts_with("ExecuteChangeSet")),
        "a preview never executes: {:?}",
        s.calls
    );
    assert_eq!(exec.pending_previews(), 0);
}

#[tokio::test]
async fn a_new_environment_previews_a_create_and_leaves_nothing() {
    let (_, d) = setup(Change::Created);
    let fake = Fake::new();
    let exec = executor(&fake, Duration::from_secs(5));
    let plan = exec.plan(&d).await.unwrap();
    assert!(matches!(
        plan.actions[0],
        crate::deploy::Action::DeployStack {
            op: StackOp::Create,
            ..
        }
    ));
    let p = exec.preview(&d, &plan).await.unwrap();
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].action, "Add");
    assert_eq!(p.changes[0].stack, "dev-app");
    assert_eq!(p.change_sets.len(), 1);
    assert!(
        p.change_sets[0].starts_with("gitops-plan-c0ffee-"),
        "{:?}",
        p.change_sets
    );
    assert_clean(&fake, &exec);
    assert!(
        fake.stack("dev-app").is_none(),
        "the REVIEW_IN_PROGRESS stack is deleted"
    );
}

#[tokio::test]
async fn an_update_lists_its_modified_resource() {
    let (repo, d) = setup(Change::Updated);
    let fake = deployed(&repo);
    let exec = executor(&fake, Duration::from_secs(5));
    let plan = exec.plan(&d).await.unwrap();
    let p = exec.preview(&d, &plan).await.unwrap();
    assert_eq!(p.changes[0].action, "Modify");
    assert_eq!(p.changes[0].replacement.as_deref(), Some("False"));
    assert_clean(&fake, &exec);
    let st = fake.stack("dev-app").unwrap();
    assert_eq!(st.parameters["AppVersion"], "1.0", "nothing was changed");
    assert_eq!(st.status, "UPDATE_COMPLETE");
}

#[tokio::test]
async fn an_empty_change_set_gives_no_changes_and_is_deleted() {
    let (repo, d) = setup(Change::Updated);
    let fake = deployed(&repo);
    fake.script(
        "dev-app",
        Script {
            empty_change_sets: true,
            ..Default::default()
        },
    );
    let exec = executor(&fake, Duration::from_secs(5));
    let plan = exec.plan(&d).await.unwrap();
    let p = exec.preview(&d, &plan).await.unwrap();
    assert!(p.changes.is_empty());
    assert_clean(&fake, &exec);
    assert!(fake.calls().iter().any(|c| c == "DeleteChangeSet dev-app"));
}

#[tokio::test]
async fn a_failing_describe_still_deletes_the_change_set() {
    for change in [Change::Created, Change::Updated] {
        let (repo, d) = setup(change);
        let fake = if change == Change::Created {
            Fake::new()
        } else {
            deployed(&repo)
        };
        let exec = executor(&fake, Duration::from_secs(5));
        let plan = exec.plan(&d).await.unwrap();
        fake.script(
            "dev-app",
            Script {
                fail_describe_change_set: true,
                ..Default::default()
            },
        );
        let err = exec.preview(&d, &plan).await.unwrap_err();
        assert!(err.message.contains("Rate exceeded"), "{err}");
        assert_eq!(err.change_sets.len(), 1);
        assert_clean(&fake, &exec);
        if change == Change::Created {
            assert!(fake.stack("dev-app").is_none());
        }
    }
}

#[tokio::test]
async fn a_change_set_still_pending_at_the_timeout_is_deleted() {
    let (_, d) = setup(Change::Created);
    let fake = Fake::new();
    let exec = executor(&fake, Duration::from_millis(20));
    let plan = exec.plan(&d).await.unwrap();
    fake.script(
        "dev-app",
        Script {
            pending_change_set_polls: usize::MAX,
            ..Default::default()
        },
    );
    let err = exec.preview(&d, &plan).await.unwrap_err();
    assert!(err.message.contains("still being created"), "{err}");
    assert_clean(&fake, &exec);
}

#[tokio::test]
async fn a_cancelled_preview_is_cleaned_up_afterwards() {
    let (_, d) = setup(Change::Created);
    let fake = Fake::new();
    let exec = executor(&fake, Duration::from_secs(60));
    let plan = exec.plan(&d).await.unwrap();
    fake.script(
        "dev-app",
        Script {
            pending_change_set_polls: usize::MAX,
            ..Default::default()
        },
    );
    // Cancel mid-wait, as Ctrl-C does.
    let cancelled = tokio::time::timeout(Duration::from_millis(50), exec.preview(&d, &plan)).await;
    assert!(cancelled.is_err(), "the preview was still waiting");
    assert_eq!(fake.state.lock().unwrap().change_sets.len(), 1);
    assert_eq!(exec.pending_previews(), 1);
    assert!(exec.cleanup_previews().await.is_empty());
    assert_clean(&fake, &exec);
    assert!(fake.stack("dev-app").is_none());
}

#[tokio::test]
async fn refusals_and_deletions_are_not_previewed() {
    let (repo, _) = setup(Change::Updated);
    let fake = deployed(&repo);
    let env = repo.environment("dev").unwrap().clone();
    // At head, the folder is gone.
    let head = Memory::new("x").with_file(
        "gitops.yaml",
        "version: 1\nid: acme/pay\nstack: {template: common/app.yaml}\n",
    );
    let head_repo = Repository::load(&head).unwrap();
    let d = desired(
        &head_repo,
        &head,
        &EnvChange::new(env, Change::Deleted),
        "c",
    )
    .unwrap();
    let exec = executor(&fake, Duration::from_secs(5));
    let plan = exec.plan(&d).await.unwrap();
    assert_eq!(plan.actions[0].label(), "delete-stack");
    let p = exec.preview(&d, &plan).await.unwrap();
    assert!(p.changes.is_empty() && p.change_sets.is_empty());
    assert!(
        fake.mutating_calls().is_empty(),
        "{:?}",
        fake.mutating_calls()
    );
    assert!(fake.stack("dev-app").is_some());
}

#[tokio::test]
async fn a_stack_to_recreate_is_noted_not_previewed() {
    let (repo, d) = setup(Change::Updated);
    let fake = deployed(&repo);
    fake.state
        .lock()
        .unwrap()
        .stacks
        .get_mut("dev-app")
        .unwrap()
        .status = "ROLLBACK_COMPLETE".into();
    let exec = executor(&fake, Duration::from_secs(5));
    let plan = exec.plan(&d).await.unwrap();
    let p = exec.preview(&d, &plan).await.unwrap();
    assert!(p.notes[0].contains("ROLLBACK_COMPLETE"), "{:?}", p.notes);
    assert!(
        fake.mutating_calls().is_empty(),
        "{:?}",
        fake.mutating_calls()
    );
}
