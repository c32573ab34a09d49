#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::*;
use crate::deploy::{self, BaseDeclaration, Observed, PlanOptions, Refusal};
use crate::detect::{detect, ChangedPath};
use crate::WorkTree;

const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";
const GONE: &str = "dddddddddddddddddddddddddddddddddddddddd";

fn load(files: &[(&str, &str)]) -> Repository {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
    Repository::load(&WorkTree::new(dir.path()).unwrap()).unwrap()
}

fn head() -> Repository {
    load(&[
        (
            "gitops.yaml",
            "version: 1\nid: acme/shop\nstack: { template: common/app.yaml }\n",
        ),
        ("environments/dev/environment.yaml", "parameters: {}\n"),
        ("environments/qa/environment.yaml", "parameters: {}\n"),
        ("environments/prod/environment.yaml", "parameters: {}\n"),
        ("environments/new/environment.yaml", "parameters: {}\n"),
        ("environments/broken/environment.yaml", "parameters: {}\n"),
        ("environments/stuck/environment.yaml", "parameters: {}\n"),
    ])
}

fn stack(name: &str, status: &str, tags: &[(&str, &str)]) -> Stack {
    Stack {
        name: name.into(),
        id: format!("arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/1"),
        status: status.into(),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Stack::default()
    }
}

fn ours(env: &str, commit: &str) -> Vec<(&'static str, String)> {
    vec![
        (TAG_MANAGED_BY, "acme/shop".to_string()),
        (TAG_ENVIRONMENT, env.to_string()),
        (TAG_COMMIT, commit.to_string()),
    ]
}

fn managed(name: &str, status: &str, env: &str, commit: &str) -> Stack {
    let tags = ours(env, commit);
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
    stack(name, status, &tags)
}

fn listing() -> RegionStacks {
    RegionStacks::new(
        "us-east-1",
        None,
        vec![
            managed("dev-app", "UPDATE_COMPLETE", "dev", C1),
            managed("qa-app", "CREATE_COMPLETE", "qa", C2),
            managed("prod-app", "UPDATE_COMPLETE", "prod", GONE),
            managed("broken-app", "UPDATE_ROLLBACK_COMPLETE", "broken", C1),
            managed("stuck-app", "UPDATE_ROLLBACK_FAILED", "stuck", C1),
            // Only reviewed: never deployed.
            managed("new-app", "REVIEW_IN_PROGRESS", "new", C1),
            // Managed by us for environments head does not declare.
            managed("old-app", "UPDATE_COMPLETE", "old", C1),
            managed("lost-app", "UPDATE_COMPLETE", "lost", GONE),
            // Another repository's, and an untagged one.
            stack(
                "theirs-app",
                "UPDATE_COMPLETE",
                &[(TAG_MANAGED_BY, "other/repo"), (TAG_ENVIRONMENT, "theirs")],
            ),
            stack("plain", "CREATE_COMPLETE", &[]),
        ],
    )
}

#[test]
fn from_listings_reads_each_environments_commit_and_the_undeclared_stacks() {
    let head = head();
    // In another region, a stack tagged with an undeclared environment whose
    // name head's `dev` claims, and a stack of `dev` under a name head no
    // longer gives it (a renamed stack): neither is undeclared, as head
    // declares `dev` and claims `dev-app`.
    let elsewhere = RegionStacks::new(
        "eu-west-1",
        None,
        vec![
            managed("dev-app", "UPDATE_COMPLETE", "web", C1),
            managed("dev-previous-app", "UPDATE_COMPLETE", "dev", C1),
        ],
    );
    let d = Deployed::from_listings(&head, &[listing(), elsewhere], &BTreeMap::new());
    let envs: Vec<String> = d
        .environments
        .iter()
        .map(|(n, e)| format!("{n} {} {}", e.commit.as_deref().unwrap_or("-"), e.status))
        .collect();
    expect_test::expect![[r#"
        [
            "broken 1111111111111111111111111111111111111111 UPDATE_ROLLBACK_COMPLETE",
            "dev 1111111111111111111111111111111111111111 UPDATE_COMPLETE",
            "prod dddddddddddddddddddddddddddddddddddddddd UPDATE_COMPLETE",
            "qa 2222222222222222222222222222222222222222 CREATE_COMPLETE",
            "stuck 1111111111111111111111111111111111111111 UPDATE_ROLLBACK_FAILED",
        ]
    "#]]
    .assert_debug_eq(&envs);
    let undeclared: Vec<&str> = d.undeclared.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(undeclared, ["lost-app", "old-app"]);
    assert_eq!(d.commits().len(), 3);
}

#[test]
fn a_foreign_stack_gives_no_commit_and_a_pipeline_run_wins_over_the_tag() {
    let head = head();
    let mut l = listing();
    l.stacks[1] = stack(
        "qa-app",
        "CREATE_COMPLETE",
        &[(TAG_MANAGED_BY, "other/repo"), (TAG_COMMIT, C2)],
    );
    let d = Deployed::from_listings(&head, &[l.clone()], &BTreeMap::new());
    assert_eq!(d.environments["qa"].commit, None);
    assert_eq!(d.environments["dev"].commit.as_deref(), Some(C1));

    // Pipeline mode: the latest succeeded execution's source revision first.
    let mut head = head;
    for e in &mut head.environments {
        e.pipeline = Some(format!("{}-deploy", e.name));
        e.pipeline_stack = Some(format!("{}-app", e.name));
    }
    let succeeded = BTreeMap::from([("dev-deploy".to_string(), C2.to_string())]);
    let d = Deployed::from_listings(&head, &[l], &succeeded);
    assert_eq!(d.environments["dev"].commit.as_deref(), Some(C2));
    assert_eq!(d.environments["prod"].commit.as_deref(), Some(GONE));
}

/// `dev` and `broken` deployed at C1, `qa` at C2; C1..head changed dev's
/// file, C2..head changed nothing of qa's.
fn bases(head: &Repository) -> BTreeMap<String, BaseDetection> {
    let c1 = detect(
        Some(head),
        head,
        &[ChangedPath::modified("environments/dev/environment.yaml")],
    );
    let c2 = detect(Some(head), head, &[]);
    BTreeMap::from([
        (C1.to_string(), BaseDetection::Compared(c1)),
        (C2.to_string(), BaseDetection::Compared(c2)),
    ])
}

fn render(d: &Detection) -> String {
    let mut out = String::new();
    for e in &d.environments {
        let reasons: Vec<String> = e
            .reasons
            .iter()
            .map(|r| {
                format!(
                    "{} ({}) since {}",
                    r.path,
                    r.why,
                    r.since.as_deref().map(|s| &s[..4]).unwrap_or("-")
                )
            })
            .collect();
        out.push_str(&format!(
            "{} {} base={} status={}: {}\n",
            e.name,
            e.change,
            match &e.base {
                None => "absent".to_string(),
                Some(None) => "null".to_string(),
                Some(Some(c)) => c[..4].to_string(),
            },
            e.stack_status.as_deref().unwrap_or("-"),
            reasons.join(", ")
        ));
    }
    out
}

#[test]
fn classify_every_case() {
    let head = head();
    let deployed = Deployed::from_listings(&head, &[listing()], &BTreeMap::new());
    let mut declarations = BTreeMap::new();
    let mut old = head.environment("dev").unwrap().clone();
    old.name = "old".into();
    old.stack = "old-app".into();
    old.file = "environments/old/environment.yaml".into();
    declarations.insert(
        "old".to_string(),
        AtCommit {
            declaration: BaseDeclaration::of(&old),
            environment: Some(old),
        },
    );
    let d = classify(&head, &deployed, &bases(&head), &declarations);
    expect_test::expect![[r#"
        broken updated base=1111 status=UPDATE_ROLLBACK_COMPLETE: environments/broken/environment.yaml (failed-state) since 1111
        dev updated base=1111 status=-: environments/dev/environment.yaml (folder) since 1111
        lost deleted base=dddd status=-: lost-app (not-declared) since dddd, lost-app (not-in-history) since dddd
        new created base=null status=-: environments/new/environment.yaml (not-deployed) since -
        old deleted base=1111 status=-: environments/old/environment.yaml (not-declared) since 1111
        prod updated base=dddd status=-: environments/prod/environment.yaml (not-in-history) since dddd
        qa unchanged base=2222 status=-: 
        stuck unchanged base=1111 status=UPDATE_ROLLBACK_FAILED: 
    "#]]
    .assert_eq(&render(&d));
    assert_eq!(d.created, ["new"]);
    assert_eq!(d.deleted, ["lost", "old"]);
    // The matrix is detect's.
    assert_eq!(d.matrix().include.len(), 6);
    // `old`, declared and not protected at its deployed commit, may go.
    let old = d.environment("old").unwrap();
    let desired = deploy::desired(&head, &WorkTree::new(".").unwrap(), old, C2).unwrap();
    let observed = Observed {
        stack: Some(managed("old-app", "UPDATE_COMPLETE", "old", C1)),
        ..Observed::default()
    };
    let plan = deploy::plan_environment(
        "acme/shop",
        &desired,
        &observed,
        PlanOptions::new().with_allow_delete(true),
    );
    assert_eq!(plan.actions[0].label(), "delete-stack", "{plan:?}");
}

#[test]
fn an_environment_whose_declaration_is_unknown_is_never_deleted() {
    let head = head();
    let deployed = Deployed::from_listings(&head, &[listing()], &BTreeMap::new());
    let declarations = BTreeMap::from([("old".to_string(), AtCommit::unknown("not in history"))]);
    let d = classify(&head, &deployed, &bases(&head), &declarations);
    for name in ["old", "lost"] {
        let change = d.environment(name).unwrap();
        assert!(change.environment.protected, "{name}");
        let desired = deploy::desired(&head, &WorkTree::new(".").unwrap(), change, C2).unwrap();
        let observed = Observed {
            stack: Some(managed(&format!("{name}-app"), "UPDATE_COMPLETE", name, C1)),
            ..Observed::default()
        };
        let plan = deploy::plan_environment(
            "acme/shop",
            &desired,
            &observed,
            PlanOptions::new().with_allow_delete(true),
        );
        assert!(
            matches!(plan.refusal(), Some(Refusal::Protected { .. })),
            "{name}: {plan:?}"
        );
    }
}

#[test]
fn an_unusable_base_configuration_updates_with_gitops_yaml_as_the_reason() {
    let head = head();
    let deployed = Deployed::from_listings(&head, &[listing()], &BTreeMap::new());
    let mut b = bases(&head);
    b.insert(C1.into(), BaseDetection::Unusable("bad".into()));
    let d = classify(&head, &deployed, &b, &BTreeMap::new());
    let dev = d.environment("dev").unwrap();
    assert_eq!(dev.change, Change::Updated);
    assert_eq!(dev.reasons[0].path, "gitops.yaml");
}

#[test]
fn text_lines_name_the_deployed_commit_and_pending_follows_the_verdict() {
    let head = head();
    let deployed = Deployed::from_listings(&head, &[listing()], &BTreeMap::new());
    let d = classify(&head, &deployed, &bases(&head), &BTreeMap::new());
    expect_test::expect![[r#"
        broken: deployed 111111111111 (UPDATE_ROLLBACK_COMPLETE), head 333333333333: stack is UPDATE_ROLLBACK_COMPLETE: retried
        dev: deployed 111111111111, head 333333333333: environments/dev/environment.yaml changed
        lost: deployed dddddddddddd, head 333333333333: not declared at head: stack `lost-app` goes, deployed commit dddddddddddd not in history
        new: not deployed, head 333333333333: no stack yet
        old: deployed 111111111111, head 333333333333: not declared at head: stack `old-app` goes, deployed commit 111111111111 not in history
        prod: deployed dddddddddddd, head 333333333333: deployed commit dddddddddddd not in history
        stuck: deployed 111111111111 (UPDATE_ROLLBACK_FAILED), head 333333333333: unchanged, stack is UPDATE_ROLLBACK_FAILED: it needs a person (see its events) before a deployment can retry it
    "#]]
    .assert_eq(&render_text(&d, &"3".repeat(40)));
    let nothing = classify(&head, &Deployed::new(), &BTreeMap::new(), &BTreeMap::new());
    let nothing = Detection::from_changes(
        nothing
            .environments
            .into_iter()
            .map(|mut e| {
                e.change = Change::Unchanged;
                e
            })
            .collect(),
    );
    assert_eq!(
        render_text(&nothing, "3"),
        "every environment is deployed at its inputs' latest state\n"
    );

    let mut drifts: Vec<crate::drift::EnvDrift> = ["dev", "qa", "new", "elsewhere"]
        .iter()
        .map(|n| {
            let mut env = head.environment("dev").unwrap().clone();
            env.name = n.to_string();
            crate::drift::EnvDrift::unknown(&env, &[], "not read")
        })
        .collect();
    mark_pending(&mut drifts, &d);
    let pending: Vec<Option<bool>> = drifts.iter().map(|x| x.status.pending).collect();
    assert_eq!(pending, [Some(true), Some(false), Some(true), None]);
}
