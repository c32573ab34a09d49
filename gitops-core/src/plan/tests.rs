#![allow(clippy::unwrap_used)]

use expect_test::expect;

use super::*;
use crate::deploy::{desired, StackOp};
use crate::detect::EnvChange;
use crate::source::Memory;

const TEMPLATE: &str = "Parameters:\n  AppVersion: {Type: String}\n  DbPassword: {Type: String, NoEcho: true, Default: ''}\n  EnvironmentName: {Type: String}\nResources:\n  Topic: {Type: AWS::SNS::Topic}\n";
const PIPELINE: &str = "Parameters:\n  PipelineName: {Type: String}\n  AppVersion: {Type: String, Default: '0'}\nResources:\n  P: {Type: AWS::CodePipeline::Pipeline}\n";

/// A repository with one environment file per `(name, body)`.
fn source(pipeline: bool, template: &str, envs: &[(&str, &str)]) -> Memory {
    let cfg = if pipeline {
        "version: 1\nid: acme/pay\nstack: {template: common/app.yaml}\npipeline: {template: common/pipeline.yaml}\n"
    } else {
        "version: 1\nid: acme/pay\nstack: {template: common/app.yaml}\n"
    };
    let mut m = Memory::new("x")
        .with_file("gitops.yaml", cfg)
        .with_file("common/app.yaml", template)
        .with_file("common/pipeline.yaml", PIPELINE);
    for (name, body) in envs {
        m.insert(&format!("environments/{name}/environment.yaml"), *body);
    }
    m
}

fn load(s: &Memory) -> Repository {
    let r = Repository::load(s).unwrap();
    let problems = r.validate(s);
    assert!(problems.is_empty(), "{problems:?}");
    r
}

fn secrets() -> BTreeSet<String> {
    ["DbPassword".to_string()].into()
}

/// The git-level preview of `name` from `base` to `head`.
fn guessed(
    base: (&Repository, &Memory),
    head: (&Repository, &Memory),
    name: &str,
    change: Change,
    options: PlanOptions,
) -> EnvPreview {
    let base_env = base.0.environment(name).cloned();
    let env = match change {
        Change::Deleted => base_env.clone().unwrap(),
        _ => head.0.environment(name).unwrap().clone(),
    };
    let d = desired(
        head.0,
        head.1,
        &EnvChange::new(env.clone(), change),
        "c0ffee",
    )
    .unwrap();
    let bd = base_env.as_ref().map(|e| {
        desired(
            base.0,
            base.1,
            &EnvChange::new(e.clone(), Change::Updated),
            "ba5e",
        )
        .unwrap()
    });
    let plan = guess_plan("acme/pay", &d, base_env.as_ref(), bd.as_ref(), options);
    let head_env = (change != Change::Deleted).then_some(&env);
    EnvPreview::new(plan, base_env.as_ref(), head_env, &secrets())
        .with_diffs(env_diffs(
            Some((base.0, base.1 as &dyn Source)),
            Some((head.0, head.1 as &dyn Source)),
            name,
            &secrets(),
        ))
        .guessed()
}

fn labels(p: &EnvPreview) -> String {
    p.labels()
}

#[test]
fn value_changes_cover_created_updated_and_deleted() {
    let base = source(
        false,
        TEMPLATE,
        &[(
            "dev",
            "parameters: {AppVersion: '1.0'}\ntags: {team: pay, old: x}\n",
        )],
    );
    let head = source(
        false,
        TEMPLATE,
        &[(
            "dev",
            "parameters: {AppVersion: '1.1'}\ntags: {team: pay, new: y}\n",
        )],
    );
    let (b, h) = (load(&base), load(&head));
    let c = value_changes(b.environment("dev"), h.environment("dev"));
    assert_eq!(
        c.parameters,
        [ValueChange {
            key: "AppVersion".into(),
            old: Some("1.0".into()),
            new: Some("1.1".into())
        }]
    );
    let tags: Vec<_> = c
        .tags
        .iter()
        .map(|t| format!("{}:{:?}->{:?}", t.key, t.old, t.new))
        .collect();
    assert_eq!(tags, ["new:None->Some(\"y\")", "old:Some(\"x\")->None"]);
    let created = value_changes(None, h.environment("dev"));
    assert_eq!(created.parameters[0].old, None);
    let deleted = value_changes(b.environment("dev"), None);
    assert_eq!(deleted.parameters[0].new, None);
    assert_eq!(deleted.tags.len(), 2);
    assert_eq!(
        value_changes(h.environment("dev"), h.environment("dev")),
        ValueChanges::default()
    );
}

#[test]
fn file_diffs_are_unified_with_context() {
    assert_eq!(file_diff("a.yaml", "x\n", "x\n"), None);
    let d = file_diff(
        "a.yaml",
        "1\n2\n3\n4\n5\n6\n7\n8\n",
        "1\n2\n3\n4\nfive\n6\n7\n8\n",
    )
    .unwrap();
    expect![[r#"
        --- a/a.yaml
        +++ b/a.yaml
        @@ -2,7 +2,7 @@
         2
         3
         4
        -5
        +five
         6
         7
         8
    "#]]
    .assert_eq(&d.diff);
    // No trailing newline still ends the diff with one.
    assert!(file_diff("a", "", "x").unwrap().diff.ends_with('\n'));
}

#[test]
fn env_diffs_show_the_file_and_changed_templates_only() {
    let base = source(
        false,
        TEMPLATE,
        &[("dev", "parameters: {AppVersion: '1.0'}\n")],
    );
    let head = source(
        false,
        TEMPLATE,
        &[("dev", "parameters: {AppVersion: '1.1'}\n")],
    );
    let (b, h) = (load(&base), load(&head));
    let d = env_diffs(
        Some((&b, &base as &dyn Source)),
        Some((&h, &head as &dyn Source)),
        "dev",
        &BTreeSet::new(),
    );
    assert_eq!(d.len(), 1, "the unchanged template is not shown: {d:?}");
    assert_eq!(d[0].path, "environments/dev/environment.yaml");

    let changed = TEMPLATE.replace("Topic:", "Queue:");
    let head2 = source(
        false,
        &changed,
        &[("dev", "parameters: {AppVersion: '1.0'}\n")],
    );
    let h2 = load(&head2);
    let d = env_diffs(
        Some((&b, &base as &dyn Source)),
        Some((&h2, &head2 as &dyn Source)),
        "dev",
        &BTreeSet::new(),
    );
    let paths: Vec<_> = d.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["common/app.yaml"]);
    assert!(d[0]
        .diff
        .contains("-  Topic: {Type: AWS::SNS::Topic}\n+  Queue:"));

    // A created environment: its whole file is added; a deleted one: removed.
    let d = env_diffs(
        None,
        Some((&h, &head as &dyn Source)),
        "dev",
        &BTreeSet::new(),
    );
    assert!(
        d[0].diff.contains("+parameters: {AppVersion: '1.1'}"),
        "{d:?}"
    );
    assert!(
        d.iter().any(|x| x.path == "common/app.yaml"),
        "no base at all: every file is new"
    );
    let d = env_diffs(
        Some((&b, &base as &dyn Source)),
        Some((&h, &head as &dyn Source)),
        "gone",
        &BTreeSet::new(),
    );
    assert!(d.is_empty());
}

#[test]
fn secrets_are_masked_in_values_actions_and_diffs() {
    let base = source(
        true,
        TEMPLATE,
        &[(
            "dev",
            "parameters: {AppVersion: '1.0', DbPassword: hunter22}\n",
        )],
    );
    let head = source(
        true,
        TEMPLATE,
        &[(
            "dev",
            "parameters:\n  AppVersion: '1.1'\n  DbPassword: \"s3cr3t-new\"\n",
        )],
    );
    let (b, h) = (load(&base), load(&head));
    let p = guessed(
        (&b, &base),
        (&h, &head),
        "dev",
        Change::Updated,
        PlanOptions::new(),
    );
    let json = serde_json::to_string(&p).unwrap();
    let text = format!(
        "{json}\n{}",
        render_markdown(&Plan::new(None, None, false, vec![p.clone()]))
    );
    for secret in ["hunter22", "s3cr3t-new"] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    let pw = p
        .parameter_changes
        .iter()
        .find(|c| c.key == "DbPassword")
        .unwrap();
    assert_eq!(
        (pw.old.as_deref(), pw.new.as_deref()),
        (Some(MASK), Some(MASK))
    );
    assert!(
        p.diffs[0].diff.contains("DbPassword: ****"),
        "{}",
        p.diffs[0].diff
    );
    assert!(
        p.diffs[0].diff.contains("+  AppVersion: '1.1'"),
        "other values stay"
    );
    // Pipeline variables carry every parameter: masked too.
    let vars = p
        .actions
        .iter()
        .find_map(|a| match a {
            Action::StartPipeline { variables, .. } => Some(variables.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(vars["DbPassword"], MASK);
    assert_eq!(vars["AppVersion"], "1.1");
}

#[test]
fn redaction_handles_yaml_shapes() {
    let k = "Pw";
    assert_eq!(redact_key("+  Pw: abc # note\n", k), "+  Pw: **** # note\n");
    assert_eq!(redact_key("-{Pw: 'a,b', X: 1}\n", k), "-{Pw: ****, X: 1}\n");
    assert_eq!(redact_key(" \"Pw\": \"q\\\"x\",\n", k), " \"Pw\": ****,\n");
    assert_eq!(redact_key("+  OtherPw: abc\n", k), "+  OtherPw: abc\n");
    assert_eq!(redact_key("+  Pw:\n", k), "+  Pw:\n");
    assert_eq!(redact_key("+  Pw: |\n", k), "+  Pw: |\n");
    let secrets = vec![(
        "Pw".to_string(),
        vec!["longsecret".to_string(), "ab".to_string()],
    )];
    let d = redact_diff("--- a/x\n+++ b/x\n+    - longsecret\n+ ab: 1\n", &secrets);
    assert_eq!(
        d, "--- a/x\n+++ b/x\n+    - ****\n+ ab: 1\n",
        "short values are not replaced blindly"
    );
}

#[test]
fn git_level_guesses_follow_the_deploy_planner() {
    let base = source(
        false,
        TEMPLATE,
        &[
            ("dev", "parameters: {AppVersion: '1.0'}\n"),
            ("same", "parameters: {AppVersion: '1.0'} # a comment\n"),
            ("prod", "parameters: {AppVersion: '1.0'}\nprotected: true\n"),
            ("old", "parameters: {AppVersion: '1.0'}\n"),
        ],
    );
    let head = source(
        false,
        TEMPLATE,
        &[
            ("dev", "parameters: {AppVersion: '1.1'}\n"),
            (
                "same",
                "parameters: {AppVersion: '1.0'} # another comment\n",
            ),
            ("new", "parameters: {AppVersion: '1.0'}\n"),
        ],
    );
    let (b, h) = (load(&base), load(&head));
    let g = |name, change, opts| guessed((&b, &base), (&h, &head), name, change, opts);
    let none = PlanOptions::new();
    assert_eq!(labels(&g("new", Change::Created, none)), "create-stack");
    assert_eq!(labels(&g("dev", Change::Updated, none)), "update-stack");
    let same = g("same", Change::Updated, none);
    assert_eq!(labels(&same), "nothing");
    assert!(
        matches!(&same.actions[0], Action::Nothing { reason } if reason.contains("same as at the base revision"))
    );
    let prod = g("prod", Change::Deleted, none.with_allow_delete(true));
    assert!(matches!(
        &prod.actions[0],
        Action::Refuse { reason: Refusal::Protected { stack, .. } } if stack == "prod-app"
    ));
    assert!(matches!(
        &g("old", Change::Deleted, none).actions[0],
        Action::Refuse {
            reason: Refusal::DeleteNotAllowed { .. }
        }
    ));
    let old = g("old", Change::Deleted, none.with_allow_delete(true));
    assert_eq!(labels(&old), "delete-stack");
    assert!(!old.observed);
    // Without a base desired state (a template missing at base, say), an
    // existing environment is an update.
    let env = h.environment("dev").unwrap().clone();
    let d = desired(
        &h,
        &head,
        &EnvChange::new(env.clone(), Change::Updated),
        "c",
    )
    .unwrap();
    let plan = guess_plan("acme/pay", &d, Some(&env), None, none);
    assert!(matches!(
        plan.actions[0],
        Action::DeployStack {
            op: StackOp::Update,
            ..
        }
    ));
}

#[test]
fn pipeline_mode_guesses() {
    let base = source(
        true,
        TEMPLATE,
        &[("dev", "parameters: {AppVersion: '1.0'}\n")],
    );
    let head = source(
        true,
        TEMPLATE,
        &[
            ("dev", "parameters: {AppVersion: '1.1'}\n"),
            ("new", "parameters: {AppVersion: '1'}\n"),
        ],
    );
    let (b, h) = (load(&base), load(&head));
    let dev = guessed(
        (&b, &base),
        (&h, &head),
        "dev",
        Change::Updated,
        PlanOptions::new(),
    );
    // The pipeline template declares AppVersion: its stack changes too.
    assert_eq!(labels(&dev), "update-pipeline-stack, start-pipeline");
    let new = guessed(
        (&b, &base),
        (&h, &head),
        "new",
        Change::Created,
        PlanOptions::new(),
    );
    assert_eq!(labels(&new), "create-pipeline");
    assert_eq!(
        why_not_previewed(&dev.actions),
        None,
        "the pipeline stack update is previewed"
    );
}

#[test]
fn why_not_previewed_names_the_reason() {
    let refuse = [Action::Refuse {
        reason: Refusal::DeleteNotAllowed { stack: "s".into() },
    }];
    assert!(why_not_previewed(&refuse).unwrap().contains("refuses"));
    let del = [Action::DeleteStack {
        role: StackRole::Environment,
        stack: "s".into(),
    }];
    assert!(why_not_previewed(&del).unwrap().contains("deleted"));
    let nothing = [Action::Nothing { reason: "x".into() }];
    assert!(why_not_previewed(&nothing)
        .unwrap()
        .contains("nothing to deploy"));
    let start = [Action::StartPipeline {
        pipeline: "p".into(),
        commit: "c".into(),
        variables: BTreeMap::new(),
    }];
    assert_eq!(
        why_not_previewed(&start),
        None,
        "a pipeline start previews the application stack"
    );
}

/// A plan with every kind of line a reviewer should see.
fn sample_plan() -> Plan {
    let base = source(
        false,
        TEMPLATE,
        &[
            (
                "dev",
                "parameters: {AppVersion: '1.0'}\ntags: {team: pay}\n",
            ),
            ("prod", "parameters: {AppVersion: '1.0'}\nprotected: true\n"),
            ("old", "parameters: {AppVersion: '0.9'}\n"),
        ],
    );
    let head = source(
        false,
        TEMPLATE,
        &[
            (
                "dev",
                "parameters: {AppVersion: '1.1'}\ntags: {team: payments}\n",
            ),
            ("new", "parameters: {AppVersion: '2.0'}\n"),
        ],
    );
    let (b, h) = (load(&base), load(&head));
    let g = |name, change| {
        guessed(
            (&b, &base),
            (&h, &head),
            name,
            change,
            PlanOptions::new().with_allow_delete(true),
        )
    };
    let dev = g("dev", Change::Updated)
        .with_resource_changes(vec![
            ResourceChange::new("dev-app", "Modify", "Topic", "AWS::SNS::Topic")
                .with_replacement("True"),
            ResourceChange::new("dev-app", "Modify", "Queue", "AWS::SQS::Queue")
                .with_replacement("Conditional"),
            ResourceChange::new("dev-app", "Modify", "Param", "AWS::SSM::Parameter")
                .with_replacement("False"),
            ResourceChange::new("dev-app", "Remove", "Old", "AWS::SNS::Topic"),
        ])
        .with_change_sets(vec!["gitops-plan-c0ffee-1-2".into()]);
    let new = g("new", Change::Created).with_resource_changes(vec![ResourceChange::new(
        "new-app",
        "Add",
        "Topic",
        "AWS::SNS::Topic",
    )]);
    let old = g("old", Change::Deleted).with_note("not previewed: the stacks are deleted");
    let prod = g("prod", Change::Deleted).with_note("not previewed: the deploy refuses");
    let mut envs = vec![dev, new, old, prod];
    for e in &mut envs {
        e.observed = true;
    }
    Plan::new(
        Some("ba5eba5eba5eba5e".into()),
        Some("c0ffeec0ffeec0ffee".into()),
        true,
        envs,
    )
}

#[test]
fn plan_counts_and_highlights() {
    let plan = sample_plan();
    assert_eq!(
        plan.counts
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect::<Vec<_>>(),
        [
            "create-stack=1",
            "delete-stack=1",
            "refuse=1",
            "update-stack=1"
        ]
    );
    assert!(plan.has_changes);
    let kinds: Vec<_> = plan
        .highlights
        .iter()
        .map(|h| format!("{}:{:?}", h.environment, h.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            "dev:Replace",
            "dev:MayReplace",
            "dev:Remove",
            "old:DeleteStack"
        ]
    );
    let quiet = Plan::new(None, None, true, vec![]);
    assert!(!quiet.has_changes);
    let v = serde_json::to_value(&plan).unwrap();
    assert_eq!(v["environments"][0]["parameter_changes"][0]["old"], "1.0");
    assert_eq!(
        v["environments"][0]["resource_changes"][0]["replacement"],
        "True"
    );
    assert_eq!(
        v["environments"][2]["resource_changes"],
        serde_json::Value::Null
    );
    assert_eq!(v["highlights"][3]["kind"], "delete-stack");
}

#[test]
fn markdown_snapshot() {
    expect![[r#"
        <!-- gitops-plan -->
        ### gitops plan

        `ba5eba5eba5e` → `c0ffeec0ffee` · 4 environments: **1** create-stack · **1** delete-stack · **1** refuse · **1** update-stack

        #### ⚠️ Replacements and deletions

        - **dev**: `Topic` (AWS::SNS::Topic) in `dev-app` will be replaced
        - **dev**: `Queue` (AWS::SQS::Queue) in `dev-app` may be replaced (replacement: Conditional)
        - **dev**: `Old` (AWS::SNS::Topic) will be removed from `dev-app`
        - **old**: stack `old-app` will be deleted

        <details><summary><b>dev</b> · updated · update-stack</summary>

        - update-stack `dev-app`

        | Parameter | Old | New |
        |---|---|---|
        | `AppVersion` | `1.0` | `1.1` |

        | Tag | Old | New |
        |---|---|---|
        | `team` | `pay` | `payments` |

        **Change set**

        | Stack | Action | Logical id | Type | Replacement |
        |---|---|---|---|---|
        | `dev-app` | Modify | `Topic` | `AWS::SNS::Topic` | **True** |
        | `dev-app` | Modify | `Queue` | `AWS::SQS::Queue` | Conditional |
        | `dev-app` | Modify | `Param` | `AWS::SSM::Parameter` | False |
        | `dev-app` | Remove | `Old` | `AWS::SNS::Topic` | - |

        ```diff
        --- a/environments/dev/environment.yaml
        +++ b/environments/dev/environment.yaml
        @@ -1,2 +1,2 @@
        -parameters: {AppVersion: '1.0'}
        -tags: {team: pay}
        +parameters: {AppVersion: '1.1'}
        +tags: {team: payments}
        ```

        </details>

        <details><summary><b>new</b> · created · create-stack</summary>

        - create-stack `new-app`

        | Parameter | Old | New |
        |---|---|---|
        | `AppVersion` | _(unset)_ | `2.0` |

        **Change set**

        | Stack | Action | Logical id | Type | Replacement |
        |---|---|---|---|---|
        | `new-app` | Add | `Topic` | `AWS::SNS::Topic` | - |

        ```diff
        --- a/environments/new/environment.yaml
        +++ b/environments/new/environment.yaml
        @@ -0,0 +1 @@
        +parameters: {AppVersion: '2.0'}
        ```

        </details>

        <details><summary><b>old</b> · deleted · delete-stack</summary>

        - delete-stack `old-app`

        | Parameter | Old | New |
        |---|---|---|
        | `AppVersion` | `0.9` | _(unset)_ |

        _not previewed: the stacks are deleted_

        ```diff
        --- a/environments/old/environment.yaml
        +++ b/environments/old/environment.yaml
        @@ -1 +0,0 @@
        -parameters: {AppVersion: '0.9'}
        ```

        </details>

        <details><summary><b>prod</b> · deleted · refuse</summary>

        - refuse (protected): refusing to delete `prod-app` of environment `prod`: it is protected (`protected: true` in environments/prod/environment.yaml at the base revision); to delete it on purpose, first set `protected: false` (or remove the key) in a commit of its own and deploy it, then remove the folder

        | Parameter | Old | New |
        |---|---|---|
        | `AppVersion` | `1.0` | _(unset)_ |

        _not previewed: the deploy refuses_

        ```diff
        --- a/environments/prod/environment.yaml
        +++ b/environments/prod/environment.yaml
        @@ -1,2 +0,0 @@
        -parameters: {AppVersion: '1.0'}
        -protected: true
        ```

        </details>

    "#]]
    .assert_eq(&render_markdown(&sample_plan()));
}

#[test]
fn markdown_of_git_level_and_empty_plans() {
    let plan = Plan::new(Some("a".into()), Some("b".into()), false, vec![]);
    expect![[r#"
        <!-- gitops-plan -->
        ### gitops plan

        `a` → `b` · 0 environments: nothing to do

        > **Git-level plan** (`--no-aws`): the actions assume AWS matches the base revision, and no change set was previewed.

        No environment changed.
    "#]]
    .assert_eq(&render_markdown(&plan));
}

#[test]
fn diffs_with_backticks_get_a_longer_fence() {
    assert_eq!(fence("a ``` b"), "````");
    assert_eq!(fence("plain"), "```");
    assert_eq!(code("a|b"), "`a\\|b`");
    assert_eq!(code("x`y"), "<code>x`y</code>");
}

#[test]
fn text_snapshot() {
    let plan = sample_plan();
    let text = render_text(&plan, false);
    expect![[r#"
        Plan ba5eba5eba5e -> c0ffeec0ffee: 4 environment(s): 1 create-stack, 1 delete-stack, 1 refuse, 1 update-stack

        Replacements and deletions:
          ! dev: `Topic` (AWS::SNS::Topic) in `dev-app` will be replaced
          ! dev: `Queue` (AWS::SQS::Queue) in `dev-app` may be replaced (replacement: Conditional)
          ! dev: `Old` (AWS::SNS::Topic) will be removed from `dev-app`
          ! old: stack `old-app` will be deleted

        dev (updated)
          update-stack `dev-app`
          parameters:
            AppVersion: 1.0 -> 1.1
          tags:
            team: pay -> payments
          change set:
            dev-app Modify Topic (AWS::SNS::Topic)  replacement: True
            dev-app Modify Queue (AWS::SQS::Queue)  replacement: Conditional
            dev-app Modify Param (AWS::SSM::Parameter)  replacement: False
            dev-app Remove Old (AWS::SNS::Topic)
          --- a/environments/dev/environment.yaml
          +++ b/environments/dev/environment.yaml
          @@ -1,2 +1,2 @@
          -parameters: {AppVersion: '1.0'}
          -tags: {team: pay}
          +parameters: {AppVersion: '1.1'}
          +tags: {team: payments}

        new (created)
          create-stack `new-app`
          parameters:
            AppVersion: (unset) -> 2.0
          change set:
            new-app Add Topic (AWS::SNS::Topic)
          --- a/environments/new/environment.yaml
          +++ b/environments/new/environment.yaml
          @@ -0,0 +1 @@
          +parameters: {AppVersion: '2.0'}

        old (deleted)
          delete-stack `old-app`
          parameters:
            AppVersion: 0.9 -> (unset)
          not previewed: the stacks are deleted
          --- a/environments/old/environment.yaml
          +++ b/environments/old/environment.yaml
          @@ -1 +0,0 @@
          -parameters: {AppVersion: '0.9'}

        prod (deleted)
          refuse (protected): refusing to delete `prod-app` of environment `prod`: it is protected (`protected: true` in environments/prod/environment.yaml at the base revision); to delete it on purpose, first set `protected: false` (or remove the key) in a commit of its own and deploy it, then remove the folder
          parameters:
            AppVersion: 1.0 -> (unset)
          not previewed: the deploy refuses
          --- a/environments/prod/environment.yaml
          +++ b/environments/prod/environment.yaml
          @@ -1,2 +0,0 @@
          -parameters: {AppVersion: '1.0'}
          -protected: true
    "#]]
    .assert_eq(&text);
    let colored = render_text(&plan, true);
    assert!(colored.contains("\x1b[32m+parameters: {AppVersion: '1.1'}\x1b[0m"));
    assert!(colored.contains("\x1b[1;31mdelete-stack `old-app`\x1b[0m"));
}

#[test]
fn truncation_cuts_at_a_section_and_points_to_the_summary() {
    let md = render_markdown(&sample_plan());
    assert_eq!(truncate_markdown(&md, md.chars().count()), md);
    let second = md.match_indices("<details>").nth(1).unwrap().0;
    // Room for the first section and the note, not for the second.
    let limit = md[..second].chars().count() + 200;
    let cut = truncate_markdown_linked(
        &md,
        limit,
        Some("https://github.com/acme/pay/actions/runs/1"),
    );
    assert!(
        cut.chars().count() <= limit,
        "{} > {limit}",
        cut.chars().count()
    );
    assert!(cut.starts_with(MARKER));
    assert!(
        cut.contains("⚠️ Replacements and deletions"),
        "the highlights stay"
    );
    assert_eq!(cut.matches("<details>").count(), 1);
    assert_eq!(
        cut.matches("</details>").count(),
        1,
        "no section is cut in half"
    );
    assert!(cut.ends_with("**This plan is cut to fit a comment**: 1 of 4 environment sections are shown. The full plan is in [the job's step summary](https://github.com/acme/pay/actions/runs/1).\n"), "{cut}");
    // Not even the header fits: cut at a line, still within the limit.
    let cut = truncate_markdown(&md, 300);
    assert!(cut.chars().count() <= 300, "{cut}");
    assert!(cut.starts_with(MARKER));
    assert!(cut.contains("0 of 4"));
    // Characters, not bytes: multi-byte text is never split.
    let wide = format!("{MARKER}\n{}\n<details>x</details>\n", "é".repeat(100));
    let cut = truncate_markdown(&wide, 150);
    assert!(cut.chars().count() <= 150, "{}", cut.chars().count());
}

/// A fetch for clones that have every commit.
struct NoFetch;

impl crate::event::Fetch for NoFetch {
    fn fetch(
        &mut self,
        _: &std::path::Path,
        _: &[String],
        _: &[&str],
    ) -> Result<(), crate::event::FetchError> {
        Err(crate::event::FetchError::NotBrought)
    }
}

/// A repository whose first commit has only a README and whose second
/// adds `files`, selected from the first commit to the second.
fn selected_after(files: &[(&str, &str)]) -> (tempfile::TempDir, crate::select::Selected) {
    use crate::git::tests::{commit, git, write};
    use crate::select::{select, Request};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    git(dir, &["init", "-q", "-b", "main"]);
    write(dir, "README.md", "x\n");
    let first = commit(dir).to_string();
    for (path, text) in files {
        write(dir, path, text);
    }
    commit(dir);
    let mut clone = crate::event::Checkout::discover(dir, Box::new(NoFetch)).unwrap();
    let selected = select(&mut clone, &Request::new().with_base(Some(first))).unwrap();
    (tmp, selected)
}

#[test]
fn gathered_reads_head_and_base_from_the_selection() {
    // The base has no gitops.yaml: no value changes, and no warning.
    let (_tmp, selected) = selected_after(&[
        ("gitops.yaml", "version: 1\nstack: { template: t.yaml }\n"),
        (
            "t.yaml",
            "Parameters:\n  P: { Type: String }\nResources:\n  T: { Type: AWS::SNS::Topic }\n",
        ),
        (
            "environments/dev/environment.yaml",
            "parameters: { P: x }\n",
        ),
    ]);
    let targets = selected.changes();
    // No id and no origin remote: only a guess without AWS can go on.
    let err = Gathered::gather(&selected, &targets, false).unwrap_err();
    assert!(
        matches!(err, GatherError::Repository(crate::Error::NoId)),
        "{err}"
    );
    let gathered = Gathered::gather(&selected, &targets, true).unwrap();
    assert_eq!(
        (gathered.repo_id.as_str(), gathered.inputs.len()),
        ("(no id)", 1)
    );
    assert!(gathered.warnings.is_empty(), "{:?}", gathered.warnings);
    let previews = gathered.guess(PlanOptions::new());
    let plan = Plan::new(selected.base, selected.head, false, previews);
    assert_eq!(plan.environments[0].environment, "dev");
    assert!(plan.has_changes);
    assert_eq!(
        [
            plan.exit_code(0, false),
            plan.exit_code(0, true),
            plan.exit_code(1, true)
        ],
        [0, 2, 1]
    );
}

/// Ctrl-C while a preview waits for its change set: the preview is dropped
/// at once, and `Gathered::preview` deletes the change set it left behind.
#[tokio::test]
async fn a_preview_interrupted_mid_wait_leaves_no_change_set() {
    use crate::aws::fake::{Fake, Script};
    use crate::deploy::ExecutorOptions;
    use crate::fanout::CancellationToken;
    use std::sync::Arc;
    use std::time::Duration;
    let (_tmp, selected) = selected_after(&[
        (
            "gitops.yaml",
            "version: 1\nid: acme/pay\nstack: { template: t.yaml }\n",
        ),
        ("t.yaml", TEMPLATE),
        (
            "environments/dev/environment.yaml",
            "parameters: { AppVersion: '1.0' }\n",
        ),
    ]);
    let gathered = Gathered::gather(&selected, &selected.changes(), false).unwrap();
    let fake = Fake::new();
    // The change set never finishes being created.
    fake.script(
        "dev-app",
        Script {
            pending_change_set_polls: usize::MAX,
            ..Default::default()
        },
    );
    let cancel = CancellationToken::new();
    let options = ExecutorOptions::new()
        .with_poll(Duration::from_millis(1))
        .with_timeout(Duration::from_secs(60));
    let exec = Arc::new(gathered.executor(
        Arc::new(fake.clients()),
        Arc::new(|_: &str, _: &str| {}),
        options,
        cancel.clone(),
    ));
    let watch = fake.clone();
    let stop = cancel.clone();
    tokio::spawn(async move {
        // Ctrl-C once the change set exists.
        while watch.state.lock().unwrap().change_sets.is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        stop.cancel();
    });
    let run = tokio::time::timeout(
        Duration::from_secs(10),
        gathered.preview(exec.clone(), PlanOptions::new(), 1, cancel),
    );
    let previewed = run.await.expect("the preview stops on cancel");
    assert!(
        previewed.cleanup_errors.is_empty(),
        "{:?}",
        previewed.cleanup_errors
    );
    assert_eq!(
        previewed.previews[0].preview_note.as_deref(),
        Some("interrupted: not previewed")
    );
    let state = fake.state.lock().unwrap();
    assert!(
        state.change_sets.is_empty(),
        "left behind: {:?}",
        state.change_sets.keys()
    );
    assert!(state
        .stacks
        .values()
        .all(|s| s.status != "REVIEW_IN_PROGRESS"));
    assert_eq!(exec.pending_previews(), 0);
}
