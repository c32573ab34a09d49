//! Branch-bound environments and the drift gate, end to end against moto:
//! a push to `develop` deploys only the environments bound to `develop`
//! and lists the others as skipped; a protected environment whose stack was
//! changed behind the tool's back is refused (the parameter named, the
//! stack unchanged), `plan` shows it, and `--accept-drift` deploys over it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gitops_e2e::bin::gitops;
use gitops_e2e::fixture::{entry, parameter, run_json, streams, update_out_of_band, SSM_TEMPLATE};
use gitops_e2e::git::GitRepo;
use gitops_e2e::moto::Moto;

const CFG: &str = "version: 1\nid: acme/branches\nstack: {template: common/app.yaml}\n";

/// `dev` bound to `develop`, `prod` (protected) bound to `main`, both at
/// AppVersion `v`; returns (repo, templates-only commit, first commit).
fn two_branch_repo() -> (GitRepo, String, String) {
    let repo = GitRepo::new();
    repo.write("gitops.yaml", CFG)
        .write("common/app.yaml", SSM_TEMPLATE);
    let empty = repo.commit("templates");
    repo.write(
        "environments/dev/environment.yaml",
        "branch: develop\nparameters: {AppVersion: '1.0.0'}\n",
    )
    .write(
        "environments/prod/environment.yaml",
        "branch: main\nprotected: true\nparameters: {AppVersion: '1.0.0'}\n",
    );
    let first = repo.commit("dev and prod");
    (repo, empty, first)
}

#[test]
fn a_push_to_develop_deploys_only_develop_bound_environments() {
    let Some(moto) = Moto::start() else { return };
    let (repo, empty, first) = two_branch_repo();
    let range = ["--base", empty.as_str(), "--head", first.as_str()];

    // detect: the matrix holds dev only; prod is listed as skipped.
    let (out, v) = run_json(
        "detect",
        &repo,
        &moto,
        &[&range[..], &["--branch", "develop"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    assert_eq!(v["created"], serde_json::json!(["dev"]), "{v}");
    assert_eq!(v["skipped"][0]["name"], "prod", "{v}");
    assert_eq!(
        v["skipped"][0]["reason"], "bound to branch `main`, not `develop`",
        "{v}"
    );

    // deploy from develop: dev only.
    let (out, v) = run_json(
        "deploy",
        &repo,
        &moto,
        &[&range[..], &["--branch", "develop"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    assert_eq!(
        parameter(&moto, "dev-app", "AppVersion").as_deref(),
        Some("1.0.0")
    );
    assert_eq!(parameter(&moto, "prod-app", "AppVersion"), None, "{v}");
    // deploy from main: prod only.
    let (out, _) = run_json(
        "deploy",
        &repo,
        &moto,
        &[&range[..], &["--branch", "main"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    assert_eq!(
        parameter(&moto, "prod-app", "AppVersion").as_deref(),
        Some("1.0.0")
    );

    // A push to develop that changes both: only dev is deployed.
    repo.write(
        "environments/dev/environment.yaml",
        "branch: develop\nparameters: {AppVersion: '2.0.0'}\n",
    )
    .write(
        "environments/prod/environment.yaml",
        "branch: main\nprotected: true\nparameters: {AppVersion: '2.0.0'}\n",
    );
    let second = repo.commit("2.0.0 everywhere");
    let out = gitops()
        .args(["deploy", "--repo", repo.path().to_str().unwrap()])
        .args(["--base", &first, "--head", &second, "--branch", "develop"])
        .envs(moto.env())
        .output()
        .unwrap();
    let text = streams(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("prod: skipped: bound to branch `main`, not `develop`"),
        "{text}"
    );
    assert_eq!(
        parameter(&moto, "dev-app", "AppVersion").as_deref(),
        Some("2.0.0")
    );
    assert_eq!(
        parameter(&moto, "prod-app", "AppVersion").as_deref(),
        Some("1.0.0")
    );
}

/// Changes `stack`'s AppVersion behind the tool's back, keeping its tags.
fn hotfix(moto: &Moto, stack: &str, version: &str) {
    update_out_of_band(moto, stack, version, |_, value| Some(value));
    assert_eq!(
        parameter(moto, stack, "AppVersion").as_deref(),
        Some(version)
    );
}

#[test]
fn the_drift_gate_refuses_a_protected_environment_changed_out_of_band() {
    let Some(moto) = Moto::start() else { return };
    let (repo, empty, first) = two_branch_repo();
    let (out, _) = run_json(
        "deploy",
        &repo,
        &moto,
        &["--base", &empty, "--head", &first, "--branch", "main"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    hotfix(&moto, "prod-app", "1.0.1-hotfix");

    repo.write(
        "environments/prod/environment.yaml",
        "branch: main\nprotected: true\nparameters: {AppVersion: '2.0.0'}\n",
    );
    let second = repo.commit("prod 2.0.0");
    let range = [
        "--base",
        first.as_str(),
        "--head",
        second.as_str(),
        "--branch",
        "main",
    ];

    // deploy refuses, names the parameter, and leaves the stack as it is.
    let (out, v) = run_json("deploy", &repo, &moto, &range);
    assert_eq!(out.status.code(), Some(1), "{}", streams(&out));
    let o = entry(&v, "prod");
    assert_eq!(o["outcome"], "refused", "{v}");
    let message = o["message"].as_str().unwrap();
    assert!(
        message.contains("parameters.AppVersion expected 1.0.0, actual 1.0.1-hotfix"),
        "{message}"
    );
    assert!(message.contains("--accept-drift"), "{message}");
    assert_eq!(
        parameter(&moto, "prod-app", "AppVersion").as_deref(),
        Some("1.0.1-hotfix")
    );

    // plan shows the out-of-band change in prod's section.
    let out = gitops()
        .args([
            "plan",
            "--repo",
            repo.path().to_str().unwrap(),
            "--format",
            "markdown",
        ])
        .args(range)
        .envs(moto.env())
        .output()
        .unwrap();
    let text = streams(&out);
    assert!(
        text.contains("parameters.AppVersion expected 1.0.0, actual 1.0.1-hotfix"),
        "{text}"
    );

    // --accept-drift deploys over it, and says so.
    let (out, v) = run_json(
        "deploy",
        &repo,
        &moto,
        &[&range[..], &["--accept-drift"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    assert_eq!(entry(&v, "prod")["outcome"], "succeeded", "{v}");
    assert!(
        entry(&v, "prod")["plan"]["accepted_drift"][0]
            .as_str()
            .unwrap()
            .contains("actual 1.0.1-hotfix"),
        "{v}"
    );
    assert_eq!(
        parameter(&moto, "prod-app", "AppVersion").as_deref(),
        Some("2.0.0")
    );
}
