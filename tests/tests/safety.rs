//! Deletion and ownership safety end to end against the moto emulator: the
//! four paths that once deleted or took over a stack git still wanted,
//! protected or never owned (each now refused, the stack still there, exit
//! 1), an environment removed in one commit, the run-level deletion limit,
//! and `--from-detect` checked against the repository.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use gitops_e2e::bin::gitops;
use gitops_e2e::fixture::{entry, exists, run_json, SSM_TEMPLATE};
use gitops_e2e::git::GitRepo;
use gitops_e2e::moto::Moto;

const ENV: &str = "parameters: {AppVersion: '1.0.0'}\n";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn message(v: &serde_json::Value, env: &str) -> String {
    entry(v, env)["message"].as_str().unwrap().to_string()
}

/// The reason of `env`'s `refuse` action in a plan's JSON, as text.
fn plan_refusal(plan: &serde_json::Value, env: &str) -> serde_json::Value {
    let actions = entry(plan, env)["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0]["action"], "refuse", "{actions:?}");
    actions[0]["reason"].clone()
}

/// A repository with `cfg` as gitops.yaml, the template, and `envs`
/// committed on top of a templates-only commit; returns (templates, envs).
fn repo_with(cfg: &str, envs: &[(&str, &str)]) -> (GitRepo, String, String) {
    let repo = GitRepo::new();
    repo.write("gitops.yaml", cfg)
        .write("common/app.yaml", SSM_TEMPLATE);
    let empty = repo.commit("templates");
    for (name, body) in envs {
        repo.write(&format!("environments/{name}/environment.yaml"), body);
    }
    let first = repo.commit("environments");
    (repo, empty, first)
}

/// Deploys `from..to` and checks it succeeded.
fn deployed(repo: &GitRepo, moto: &Moto, from: &str, to: &str) {
    let (out, v) = run_json("deploy", repo, moto, &["--base", from, "--head", to]);
    assert_eq!(out.status.code(), Some(0), "{v}\n{}", stderr(&out));
}

const CFG: &str = "version: 1\nid: acme/safety\nstack: {template: common/app.yaml}\n";

/// Path 1: a folder renamed so that the new environment, protected, resolves
/// to the old one's stack. The old environment's "deletion" would delete the
/// stack the new one claims.
#[test]
fn a_renamed_environment_keeps_the_stack_head_still_claims() {
    let Some(moto) = Moto::start() else { return };
    let (repo, empty, first) = repo_with(
        "version: 1\nid: acme/safety\nstack: {name: \"{environment}\", template: common/app.yaml}\n",
        &[("web-prod", ENV)],
    );
    deployed(&repo, &moto, &empty, &first);
    assert!(exists(&moto, "web-prod"));

    repo.rename("environments/web-prod", "environments/web");
    repo.write(
        "gitops.yaml",
        "version: 1\nid: acme/safety\nstack: {name: \"{environment}-prod\", template: common/app.yaml}\n",
    )
    .write(
        "environments/web/environment.yaml",
        "parameters: {AppVersion: '1.0.0'}\nprotected: true\n",
    );
    let second = repo.commit("rename web-prod to web, protected");

    let (plan_out, plan) = run_json(
        "plan",
        &repo,
        &moto,
        &["--base", "HEAD~1", "--allow-delete"],
    );
    assert_eq!(plan_out.status.code(), Some(0), "{}", stderr(&plan_out));
    let reason = plan_refusal(&plan, "web-prod");
    assert_eq!(reason["kind"], "claimed-at-head", "{reason}");

    let (out, v) = run_json(
        "deploy",
        &repo,
        &moto,
        &["--base", "HEAD~1", "--allow-delete"],
    );
    assert_eq!(out.status.code(), Some(1), "{v}\n{}", stderr(&out));
    assert_eq!(entry(&v, "web-prod")["outcome"], "refused");
    let m = message(&v, "web-prod");
    assert!(
        m.contains("refusing to delete `web-prod`") && m.contains("environment `web` at head"),
        "{m}"
    );
    assert!(
        exists(&moto, "web-prod"),
        "the stack `web` claims is still there"
    );
    assert_eq!(v["commit"], second);
    // The plan showed the refusal the deploy made, word for word.
    let (dry, dv) = run_json(
        "deploy",
        &repo,
        &moto,
        &["--base", "HEAD~1", "--allow-delete", "--dry-run"],
    );
    assert_eq!(dry.status.code(), Some(1));
    assert_eq!(message(&dv, "web-prod"), m);
    let (_, text_plan) = {
        let out = gitops()
            .args(["plan", "--repo", repo.path().to_str().unwrap()])
            .args(["--base", "HEAD~1", "--allow-delete", "--no-aws"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert!(text_plan.contains(&m), "{text_plan}");
}

/// Path 2: a one-line typo in `environments.file` makes every environment
/// look deleted.
#[test]
fn a_misspelt_environments_file_deletes_nothing() {
    let Some(moto) = Moto::start() else { return };
    let (repo, empty, first) = repo_with(CFG, &[("dev", ENV), ("qa", ENV)]);
    deployed(&repo, &moto, &empty, &first);
    repo.write(
        "gitops.yaml",
        "version: 1\nid: acme/safety\nenvironments: {file: enviroment.yaml}\nstack: {template: common/app.yaml}\n",
    );
    let second = repo.commit("typo");

    let (out, v) = run_json(
        "deploy",
        &repo,
        &moto,
        &["--base", &first, "--head", &second, "--allow-delete"],
    );
    assert_eq!(out.status.code(), Some(1), "{v}\n{}", stderr(&out));
    for env in ["dev", "qa"] {
        assert_eq!(entry(&v, env)["outcome"], "refused", "{v}");
        let m = message(&v, env);
        assert!(
            m.contains(&format!("environment `{env}` is no longer declared"))
                && m.contains(&format!(
                    "environments/{env}/environment.yaml is still there"
                ))
                && m.contains("only gitops.yaml changed")
                && m.contains("remove its folder in a commit of its own"),
            "{m}"
        );
        assert!(
            exists(&moto, &format!("{env}-app")),
            "{env}-app is still there"
        );
    }
    // `plan` shows the same refusals, from git alone too.
    let (plan_out, plan) = run_json(
        "plan",
        &repo,
        &moto,
        &[
            "--base",
            &first,
            "--head",
            &second,
            "--allow-delete",
            "--no-aws",
        ],
    );
    assert_eq!(plan_out.status.code(), Some(0), "{}", stderr(&plan_out));
    for env in ["dev", "qa"] {
        let reason = plan_refusal(&plan, env);
        assert_eq!(reason["kind"], "file-still-there", "{reason}");
        assert_eq!(
            reason["file"],
            format!("environments/{env}/environment.yaml")
        );
    }
}

/// Path 3: `protected: "true"` (a string) at the base counts as protected.
#[test]
fn a_mistyped_protected_at_the_base_counts_as_protected() {
    let Some(moto) = Moto::start() else { return };
    let (repo, empty, first) = repo_with(CFG, &[("prod", ENV), ("dev", ENV)]);
    deployed(&repo, &moto, &empty, &first);
    repo.write(
        "environments/prod/environment.yaml",
        "parameters: {AppVersion: '1.0.0'}\nprotected: \"true\"\n",
    );
    let typed = repo.commit("protect prod (as a string)");
    repo.remove("environments/prod");
    let removed = repo.commit("remove prod");

    let (out, v) = run_json(
        "deploy",
        &repo,
        &moto,
        &["--base", &typed, "--head", &removed, "--allow-delete"],
    );
    assert_eq!(out.status.code(), Some(1), "{v}\n{}", stderr(&out));
    assert_eq!(entry(&v, "prod")["outcome"], "refused");
    let m = message(&v, "prod");
    assert!(
        m.contains("`protected: \"true\"` in environments/prod/environment.yaml at the base revision is not exactly `false`, so it counts as protected"),
        "{m}"
    );
    assert!(exists(&moto, "prod-app"));
    let plan = run_json(
        "plan",
        &repo,
        &moto,
        &["--base", &typed, "--head", &removed, "--allow-delete"],
    )
    .1;
    assert_eq!(plan_refusal(&plan, "prod")["kind"], "protected");
}

/// Path 4: two unrelated checkouts with the same folder name, no `id` and no
/// origin remote, would own each other's stacks: without an id, nothing
/// that changes AWS runs.
#[test]
fn two_checkouts_without_an_id_cannot_take_over_each_others_stacks() {
    let Some(moto) = Moto::start() else { return };
    // The first repository has an id, and deploys `app-app`.
    let (first, empty, one) = repo_with(
        "version: 1\nid: acme/first\nstack: {template: common/app.yaml}\n",
        &[("app", ENV)],
    );
    deployed(&first, &moto, &empty, &one);
    // The second is also a folder called `repo`, with no id and no origin.
    let (second, empty2, two) = repo_with(
        "version: 1\nstack: {template: common/app.yaml}\n",
        &[("app", "parameters: {AppVersion: '9.9.9'}\n")],
    );
    assert_eq!(
        first.path().file_name(),
        second.path().file_name(),
        "same folder name"
    );
    for (cmd, args) in [
        ("deploy", vec!["--base", &empty2, "--head", &two]),
        ("deploy", vec!["--environment", "app", "--dry-run"]),
        ("plan", vec!["--base", &empty2, "--head", &two]),
        ("drift", vec!["--remediate", "--skip-resource-drift"]),
    ] {
        let (out, _) = run_json(cmd, &second, &moto, &args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{cmd} {args:?}: {}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert!(err.contains("set `id:` in gitops.yaml"), "{cmd}: {err}");
    }
    let xml = moto.query(&[
        ("Action", "DescribeStacks"),
        ("StackName", "app-app"),
        ("Version", "2010-05-15"),
    ]);
    assert!(
        xml.contains("<ParameterValue>1.0.0</ParameterValue>") && !xml.contains("9.9.9"),
        "the first repository's stack is untouched: {xml}"
    );
    // `validate` says so, as a warning; a plan from git alone still works.
    let out = gitops()
        .args(["validate", "--repo", second.path().to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("gitops.yaml: warning: gitops.yaml sets no `id`"),
        "{text}"
    );
    let (out, _) = run_json("plan", &second, &moto, &["--base", &empty2, "--no-aws"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Removing an environment is one commit: its folder, with `promotion.order`
/// still naming it.
#[test]
fn a_folder_removed_in_one_commit_is_deleted_with_the_order_still_naming_it() {
    let Some(moto) = Moto::start() else { return };
    let cfg = "version: 1\nid: acme/safety\nstack: {template: common/app.yaml}\npromotion: {order: [dev, staging], keys: [parameters.AppVersion]}\n";
    let (repo, empty, first) = repo_with(cfg, &[("dev", ENV), ("staging", ENV)]);
    deployed(&repo, &moto, &empty, &first);
    repo.remove("environments/staging");
    let second = repo.commit("remove staging");

    let out = gitops()
        .args(["validate", "--repo", repo.path().to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("warning: `promotion.order` names `staging`, which is not an environment"),
        "{text}"
    );

    let (out, v) = run_json(
        "deploy",
        &repo,
        &moto,
        &["--base", &first, "--head", &second, "--allow-delete"],
    );
    assert_eq!(out.status.code(), Some(0), "{v}\n{}", stderr(&out));
    assert_eq!(entry(&v, "staging")["outcome"], "succeeded");
    assert!(!exists(&moto, "staging-app"));
    assert!(exists(&moto, "dev-app"));

    // promote to it is an error naming it.
    let out = gitops()
        .args(["promote", "--repo", repo.path().to_str().unwrap()])
        .args(["--from", "dev", "--skip-verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(
        all.contains("`promotion.order` names `staging`, which is not an environment"),
        "{all}"
    );
}

/// Six folders removed in one push: over the default `--max-deletions` of
/// 5, nothing is deleted and the six are listed.
#[test]
fn six_removed_folders_delete_nothing_and_are_listed() {
    let Some(moto) = Moto::start() else { return };
    let names = ["e1", "e2", "e3", "e4", "e5", "e6"];
    let mut envs: Vec<(&str, &str)> = names.iter().map(|n| (*n, ENV)).collect();
    envs.push(("keep", ENV));
    let (repo, empty, first) = repo_with(CFG, &envs);
    deployed(&repo, &moto, &empty, &first);
    for n in names {
        repo.remove(&format!("environments/{n}"));
    }
    let second = repo.commit("remove six");

    let (out, v) = run_json(
        "deploy",
        &repo,
        &moto,
        &["--base", &first, "--head", &second, "--allow-delete"],
    );
    assert_eq!(out.status.code(), Some(1), "{v}\n{}", stderr(&out));
    let list = "`e1-app`, `e2-app`, `e3-app`, `e4-app`, `e5-app`, `e6-app`";
    for n in names {
        assert_eq!(entry(&v, n)["outcome"], "refused");
        let m = message(&v, n);
        assert!(
            m.contains(list) && m.contains("more than --max-deletions 5"),
            "{m}"
        );
        assert!(exists(&moto, &format!("{n}-app")), "{n}-app is still there");
    }
    let plan = run_json(
        "plan",
        &repo,
        &moto,
        &["--base", &first, "--head", &second, "--allow-delete"],
    )
    .1;
    assert_eq!(plan_refusal(&plan, "e3")["kind"], "too-many-deletions");
    assert_eq!(plan["counts"]["refuse"], 6, "{}", plan["counts"]);

    // Raised on purpose, they go.
    let (out, v) = run_json(
        "deploy",
        &repo,
        &moto,
        &[
            "--base",
            &first,
            "--head",
            &second,
            "--allow-delete",
            "--max-deletions",
            "6",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{v}\n{}", stderr(&out));
    assert!(names.iter().all(|n| !exists(&moto, &format!("{n}-app"))));
    assert!(exists(&moto, "keep-app"));
}

/// A detect result is checked against the repository: a `deleted` entry
/// for an environment declared at head is refused.
#[test]
fn from_detect_entries_are_checked_against_the_repository() {
    let Some(moto) = Moto::start() else { return };
    let (repo, empty, first) = repo_with(CFG, &[("dev", ENV)]);
    deployed(&repo, &moto, &empty, &first);
    let file = repo.path().join("detect.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "base": first, "head": first,
            "environments": [
                {"name": "dev", "change": "deleted", "stack": "dev-app", "region": "us-east-1"},
                {"name": "ghost", "change": "updated", "stack": "ghost-app", "region": "us-east-1"}
            ]
        })
        .to_string(),
    )
    .unwrap();
    let (out, v) = run_json(
        "deploy",
        &repo,
        &moto,
        &["--from-detect", file.to_str().unwrap(), "--allow-delete"],
    );
    assert_eq!(out.status.code(), Some(1), "{v}\n{}", stderr(&out));
    assert!(
        message(&v, "dev").contains("lists it as deleted, but it is declared at head"),
        "{v}"
    );
    assert!(
        message(&v, "ghost").contains("lists it as updated, but it is not declared at head"),
        "{v}"
    );
    assert!(exists(&moto, "dev-app"));
    assert!(!exists(&moto, "ghost-app"));
}
