//! `--base deployed` end to end against moto: each environment is compared
//! with the commit its stack was deployed from, so commits that were never
//! deployed (a failed run, a skipped push) are never lost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use gitops_core::text::short_commit as short;
use gitops_e2e::bin::gitops;
use gitops_e2e::fixture::{describe, entry, exists, json_of, param, SSM_TEMPLATE};
use gitops_e2e::git::GitRepo;
use gitops_e2e::moto::Moto;

fn run(repo: &GitRepo, moto: &Moto, args: &[&str]) -> Output {
    gitops()
        .args(args)
        .args(["--repo", repo.path().to_str().unwrap()])
        .envs(moto.env())
        .output()
        .unwrap()
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// Calls that change something in AWS.
fn mutating(ops: &[String]) -> Vec<&String> {
    ops.iter()
        .filter(|o| {
            let op = o.rsplit('.').next().unwrap_or(o);
            !["Describe", "List", "Get", "Detect"]
                .iter()
                .any(|p| op.starts_with(p))
        })
        .collect()
}

#[test]
fn undeployed_commits_are_reconciled_and_a_second_run_changes_nothing() {
    let Some(moto) = Moto::start() else { return };
    let repo = GitRepo::new();
    // No `shared` glob: a template touches only the environments that use it.
    repo.write(
        "gitops.yaml",
        "version: 1\nid: acme/e2e\nshared: []\nstack: {template: common/app.yaml}\n",
    )
    .write("common/app.yaml", SSM_TEMPLATE)
    .write("common/prod.yaml", SSM_TEMPLATE)
    .write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.0.0'}\n",
    )
    .write(
        "environments/qa/environment.yaml",
        "parameters: {AppVersion: '1.0.0'}\n",
    )
    .write(
        "environments/prod/environment.yaml",
        "template-file-path: common/prod.yaml\nparameters: {AppVersion: '1.0.0'}\n",
    );
    let c1 = repo.commit("C1");
    let out = run(
        &repo,
        &moto,
        &["deploy", "-e", "dev", "-e", "qa", "-e", "prod"],
    );
    assert!(out.status.success(), "{out:?}");

    // Two commits that were never deployed: one changes qa, one the shared template.
    repo.write(
        "environments/qa/environment.yaml",
        "parameters: {AppVersion: '2.0.0'}\n",
    );
    let _c2 = repo.commit("qa 2.0.0");
    repo.write(
        "common/app.yaml",
        &SSM_TEMPLATE.replace(
            "      Type: String\n",
            "      Type: String\n      Description: !Sub \"app version of ${EnvironmentName}\"\n",
        ),
    );
    let c3 = repo.commit("a description");

    // Nothing was deployed past C1: both commits' changes are listed, each against C1.
    let out = run(
        &repo,
        &moto,
        &["detect", "--base", "deployed", "--format", "json"],
    );
    assert!(out.status.success(), "{out:?}");
    let v = json_of(&out);
    assert_eq!(v["base"], "deployed");
    assert_eq!(v["head"], c3.as_str());
    assert_eq!(names(&v["updated"]), ["dev", "qa"], "{v}");
    assert_eq!(names(&v["unchanged"]), ["prod"], "{v}");
    assert!(names(&v["created"]).is_empty() && names(&v["deleted"]).is_empty());
    for name in ["dev", "qa", "prod"] {
        assert_eq!(entry(&v, name)["base"], c1.as_str(), "{name}: {v}");
    }
    let qa: Vec<(String, String, String)> = entry(&v, "qa")["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["why"].as_str().unwrap().to_string(),
                r["since"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        qa,
        [
            ("common/app.yaml".into(), "template".into(), c1.clone()),
            (
                "environments/qa/environment.yaml".into(),
                "folder".into(),
                c1.clone()
            ),
        ]
    );
    // The matrix is detect's.
    let matrix: Vec<&str> = v["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["environment"].as_str().unwrap())
        .collect();
    assert_eq!(matrix, ["dev", "qa"]);

    let out = run(&repo, &moto, &["detect", "--base", "deployed"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "qa: deployed {}, head {}: common/app.yaml changed, environments/qa/environment.yaml changed\n",
            short(&c1),
            short(&c3)
        )),
        "{text}"
    );
    assert!(!text.contains("prod:"), "{text}");

    // status: what --base deployed would act on, from one listing of the
    // region's stacks (for the rows and for what is deployed).
    moto.record();
    let out = run(&repo, &moto, &["status", "--format", "json"]);
    assert!(out.status.success(), "{out:?}");
    let ops = moto.operations();
    let listings = ops.iter().filter(|o| *o == "DescribeStacks").count();
    assert_eq!(listings, 1, "{ops:?}");
    let v = json_of(&out);
    for (name, pending) in [("dev", true), ("qa", true), ("prod", false)] {
        assert_eq!(entry(&v, name)["pending"], pending, "{name}: {v}");
    }
    let out = run(&repo, &moto, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("PENDING"), "{text}");

    // deploy brings them all to head.
    let out = run(
        &repo,
        &moto,
        &["deploy", "--base", "deployed", "--format", "json"],
    );
    let v = json_of(&out);
    assert!(out.status.success(), "{v}");
    assert_eq!(v["result"], "success", "{v}");
    assert_eq!(entry(&v, "dev")["outcome"], "succeeded", "{v}");
    assert_eq!(entry(&v, "qa")["outcome"], "succeeded", "{v}");
    assert!(
        v["environments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["environment"] != "prod"),
        "prod is not touched: {v}"
    );
    assert_eq!(
        param(&describe(&moto, "qa-app"), "AppVersion").unwrap(),
        "2.0.0"
    );
    for stack in ["dev-app", "qa-app"] {
        let t = moto.query(&[
            ("Action", "GetTemplate"),
            ("StackName", stack),
            ("Version", "2010-05-15"),
        ]);
        assert!(t.contains("app version of"), "{stack}: {t}");
    }

    // A second run makes no mutating call. (moto keeps the gitops:commit
    // tag of an update at its old value, so the environments are still
    // listed; their stacks are found up to date.)
    moto.record();
    let out = run(
        &repo,
        &moto,
        &["deploy", "--base", "deployed", "--format", "json"],
    );
    let v = json_of(&out);
    assert!(out.status.success(), "{v}");
    assert_eq!(v["result"], "no-op", "{v}");
    let ops = moto.operations();
    assert!(
        ops.iter().any(|o| o == "DescribeStacks"),
        "the recorder sees the calls: {ops:?}"
    );
    assert!(mutating(&ops).is_empty(), "{ops:?}");
}

/// A repository with environments `dev` and `old` deployed at its first
/// commit; `old`'s file sets `protected` as given.
fn deployed_pair(moto: &Moto, old_protected: bool) -> (GitRepo, String) {
    let repo = GitRepo::new();
    repo.write(
        "gitops.yaml",
        "version: 1\nid: acme/e2e\nstack: {template: common/app.yaml}\n",
    )
    .write("common/app.yaml", SSM_TEMPLATE)
    .write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.0.0'}\n",
    )
    .write(
        "environments/old/environment.yaml",
        &format!("protected: {old_protected}\nparameters: {{AppVersion: '1.0.0'}}\n"),
    );
    let c1 = repo.commit("dev and old");
    let out = run(&repo, moto, &["deploy", "-e", "dev", "-e", "old"]);
    assert!(out.status.success(), "{out:?}");
    assert!(exists(moto, "old-app"));
    (repo, c1)
}

#[test]
fn a_folder_removed_in_a_failed_run_is_deleted_by_the_next_reconcile() {
    let Some(moto) = Moto::start() else { return };
    let (repo, _c1) = deployed_pair(&moto, false);
    // The push that removes `old` fails: another environment's file is broken.
    repo.remove("environments/old")
        .write("environments/bad/environment.yaml", "parameters: [\n");
    let c2 = repo.commit("remove old; break bad");
    let out = run(
        &repo,
        &moto,
        &[
            "deploy",
            "--base",
            "HEAD~1",
            "--head",
            &c2,
            "--allow-delete",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(exists(&moto, "old-app"), "the failed run deleted nothing");
    // The next push fixes it; its own diff no longer shows the deletion.
    repo.remove("environments/bad");
    let c3 = repo.commit("fix bad");
    let out = run(
        &repo,
        &moto,
        &["deploy", "--base", &c2, "--head", &c3, "--allow-delete"],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(exists(&moto, "old-app"), "a push diff loses the deletion");

    // --base deployed finds it: listed, planned, refused without --allow-delete.
    let out = run(
        &repo,
        &moto,
        &["detect", "--base", "deployed", "--format", "json"],
    );
    let v = json_of(&out);
    assert_eq!(names(&v["deleted"]), ["old"], "{v}");
    assert_eq!(names(&v["unchanged"]), ["dev"], "{v}");
    let out = run(
        &repo,
        &moto,
        &[
            "plan",
            "--base",
            "deployed",
            "--allow-delete",
            "--format",
            "json",
        ],
    );
    let v = json_of(&out);
    assert!(out.status.success(), "{v}");
    assert_eq!(
        entry(&v, "old")["actions"][0]["action"],
        "delete-stack",
        "{v}"
    );
    let out = run(
        &repo,
        &moto,
        &["deploy", "--base", "deployed", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", json_of(&out));
    assert!(exists(&moto, "old-app"));

    let out = run(
        &repo,
        &moto,
        &[
            "deploy",
            "--base",
            "deployed",
            "--allow-delete",
            "--format",
            "json",
        ],
    );
    let v = json_of(&out);
    assert!(out.status.success(), "{v}");
    assert_eq!(entry(&v, "old")["outcome"], "succeeded", "{v}");
    assert!(!exists(&moto, "old-app"), "deleted");
    assert!(exists(&moto, "dev-app"), "dev stays");
}

#[test]
fn protected_at_its_deployed_commit_or_unknown_is_never_deleted() {
    let Some(moto) = Moto::start() else { return };
    let (repo, c1) = deployed_pair(&moto, true);
    repo.remove("environments/old");
    repo.commit("remove old");
    // A stack of ours whose deployed commit this repository never had.
    moto.query(&[
        ("Action", "CreateStack"),
        ("StackName", "ghost-app"),
        ("TemplateBody", "Resources:\n  T: {Type: AWS::SNS::Topic}\n"),
        ("Tags.member.1.Key", "gitops:managed-by"),
        ("Tags.member.1.Value", "acme/e2e"),
        ("Tags.member.2.Key", "gitops:environment"),
        ("Tags.member.2.Value", "ghost"),
        ("Tags.member.3.Key", "gitops:commit"),
        (
            "Tags.member.3.Value",
            "0123456789abcdef0123456789abcdef01234567",
        ),
        ("Version", "2010-05-15"),
    ]);
    let out = run(
        &repo,
        &moto,
        &["detect", "--base", "deployed", "--format", "json"],
    );
    let v = json_of(&out);
    assert_eq!(names(&v["deleted"]), ["ghost", "old"], "{v}");
    assert_eq!(entry(&v, "old")["base"], c1.as_str());
    let out = run(&repo, &moto, &["detect", "--base", "deployed"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ghost: deployed 0123456789ab, head "),
        "{text}"
    );
    assert!(
        text.contains("deployed commit 0123456789ab not in history"),
        "{text}"
    );

    let out = run(
        &repo,
        &moto,
        &[
            "deploy",
            "--base",
            "deployed",
            "--allow-delete",
            "--format",
            "json",
        ],
    );
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    for name in ["old", "ghost"] {
        assert_eq!(entry(&v, name)["outcome"], "refused", "{name}: {v}");
        assert!(
            entry(&v, name)["message"]
                .as_str()
                .unwrap()
                .contains("protected"),
            "{v}"
        );
    }
    assert!(exists(&moto, "old-app"), "protected at its deployed commit");
    assert!(
        exists(&moto, "ghost-app"),
        "unknown commit counts as protected"
    );
}
