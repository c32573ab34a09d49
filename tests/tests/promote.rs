//! End-to-end tests of `promote`, `rollback` and `history`: in-place edits
//! checked with `git diff`, the promotion order, the verification gate
//! against moto, rollback's default revision, history across a rename, and
//! `--open-pr` against a GitHub stand-in and a bare local remote.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use gitops_e2e::bin::gitops;
use gitops_e2e::git::{git_command, GitRepo};
use gitops_e2e::github_stub::{GitHubStub, Route, TOKEN};
use gitops_e2e::moto::Moto;
use serde_json::{json, Value};

const PROD_FILE: &str = "environments/prod/environment.yaml";

/// The prod file: comments above, beside and below, quoted values, a flow map.
const PROD: &str = r#"# Production: promoted from staging, do not edit AppVersion by hand.
parameters:
  # The application version.
  AppVersion: "1.4.1"  # promoted: staging -> prod
  LogLevel: 'WARN'
  # below the values
tags: { team: payments, release: "r41" }  # flow map
region: us-east-1
"#;

fn config(order: &str, keys: &str) -> String {
    format!(
        "version: 1\nstack:\n  template: common/app.yaml\npromotion:\n  order: {order}\n  keys: {keys}\n"
    )
}

const TEMPLATE: &str = "Parameters:\n  AppVersion: { Type: String }\n  LogLevel: { Type: String, Default: INFO }\nResources:\n  Topic: { Type: AWS::SNS::Topic }\n";

/// A repository with development, staging and prod; prod as [`PROD`].
fn repository() -> GitRepo {
    let repo = GitRepo::new();
    repo.write_all(&[
        (
            "gitops.yaml",
            &config(
                "[development, staging, prod]",
                "[parameters.AppVersion, tags.release]",
            ),
        ),
        ("common/app.yaml", TEMPLATE),
        (
            "environments/development/environment.yaml",
            "parameters:\n  AppVersion: \"1.5.0\"\ntags:\n  release: r50\n",
        ),
        (
            "environments/staging/environment.yaml",
            "parameters:\n  AppVersion: \"1.4.2\"\ntags:\n  release: r42\n",
        ),
        (PROD_FILE, PROD),
    ]);
    repo.commit("initial environments");
    repo
}

fn run(repo: &GitRepo, args: &[&str]) -> Output {
    gitops()
        .arg("--repo")
        .arg(repo.path())
        .args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .output()
        .expect("gitops runs")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn promote_changes_exactly_the_promoted_lines() {
    let repo = repository();
    let out = run(
        &repo,
        &[
            "promote",
            "--from",
            "staging",
            "--to",
            "prod",
            "--write",
            "--skip-verify",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // One line per promoted key, in the block map and in the flow map.
    assert_eq!(
        repo.git(&["diff", "--numstat"]),
        format!("2\t2\t{PROD_FILE}")
    );
    let after = std::fs::read_to_string(repo.path().join(PROD_FILE)).unwrap();
    assert_eq!(
        after,
        PROD.replace("\"1.4.1\"", "\"1.4.2\"")
            .replace("\"r41\"", "\"r42\"")
    );
    let text = stdout(&out);
    assert!(
        text.contains("verification skipped: --skip-verify"),
        "{text}"
    );
    assert!(
        text.contains("Commit message:\n  promote staging to prod: AppVersion 1.4.2, release r42"),
        "{text}"
    );
    assert!(
        text.contains("PR title: Promote staging to prod: AppVersion 1.4.2, release r42"),
        "{text}"
    );
    assert!(
        text.contains("wrote environments/prod/environment.yaml"),
        "{text}"
    );

    // Promoting again changes nothing.
    let out = run(
        &repo,
        &[
            "promote", "--from", "staging", "--write", "--format", "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["changes"], json!([]));
    assert_eq!(v["written"], false);
    assert_eq!(v["diff"], "");
    assert_eq!(
        repo.git(&["diff", "--numstat"]),
        format!("2\t2\t{PROD_FILE}")
    );
}

#[test]
fn json_output_carries_the_plan_and_a_dry_run_changes_nothing() {
    let repo = repository();
    let out = run(
        &repo,
        &[
            "promote", "--from", "staging", "--to", "next", "--format", "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["from"], "staging");
    assert_eq!(v["to"], "prod");
    assert_eq!(v["environment"], "prod");
    assert_eq!(v["forced"], false);
    assert_eq!(v["keys"], json!(["parameters.AppVersion", "tags.release"]));
    assert_eq!(
        v["changes"],
        json!([
            {"key": "parameters.AppVersion", "old": "1.4.1", "new": "1.4.2"},
            {"key": "tags.release", "old": "r41", "new": "r42"},
        ])
    );
    assert_eq!(v["written"], false);
    // No credentials in the environment: the gate says why it did not run.
    assert_eq!(v["verified"], Value::Null);
    assert!(v["verification"]
        .as_str()
        .unwrap()
        .contains("no AWS credentials were found"));
    let diff = v["diff"].as_str().unwrap();
    assert!(diff.contains("-  AppVersion: \"1.4.1\"  # promoted: staging -> prod\n+  AppVersion: \"1.4.2\"  # promoted: staging -> prod\n"), "{diff}");
    assert!(v["commit_message"]
        .as_str()
        .unwrap()
        .starts_with("promote staging to prod"));
    assert!(v["pr_body"]
        .as_str()
        .unwrap()
        .contains("| `parameters.AppVersion` | `1.4.1` | `1.4.2` |"));
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn a_missing_key_is_inserted_in_the_map_style() {
    let repo = repository();
    repo.write(
        PROD_FILE,
        "parameters:\r\n  AppVersion: \"1.4.1\"\r\ntags: { team: payments }",
    );
    repo.commit("prod without a release tag, CRLF, no final newline");
    let out = run(
        &repo,
        &["promote", "--from", "staging", "--write", "--skip-verify"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(repo.path().join(PROD_FILE)).unwrap(),
        "parameters:\r\n  AppVersion: \"1.4.2\"\r\ntags: { team: payments, release: r42 }"
    );
}

#[test]
fn out_of_order_is_refused_without_force() {
    let repo = repository();
    let out = run(
        &repo,
        &[
            "promote",
            "--from",
            "development",
            "--to",
            "prod",
            "--write",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot promote `development` to `prod`: the next environment after `development` in `promotion.order` is `staging`"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");

    let out = run(
        &repo,
        &[
            "promote",
            "--from",
            "development",
            "--to",
            "prod",
            "--force",
            "--skip-verify",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["forced"], true);
    assert!(v["commit_message"].as_str().unwrap().contains("Forced:"));
    assert!(v["pr_body"].as_str().unwrap().contains("**Forced:**"));

    // From the last environment there is no next one; and not to itself.
    let out = run(&repo, &["promote", "--from", "prod"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("`prod` is the last environment"));
    let out = run(&repo, &["promote", "--from", "staging", "--to", "staging"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("to itself"));
}

#[test]
fn an_edit_that_would_change_an_alias_is_refused() {
    let repo = repository();
    repo.write(
        PROD_FILE,
        "parameters:\n  AppVersion: &v \"1.4.1\"\ntags:\n  release: *v\n",
    );
    repo.commit("anchor");
    let out = run(
        &repo,
        &["promote", "--from", "staging", "--write", "--skip-verify"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("carries the anchor `&v`, so every alias `*v` shares it"),
        "{}",
        stderr(&out)
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn rollback_restores_the_previous_version() {
    let repo = repository();
    let before = repo.head();
    let out = run(
        &repo,
        &["promote", "--from", "staging", "--write", "--skip-verify"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    repo.commit("promote staging to prod");
    // An unrelated commit after the promotion.
    repo.write(
        "environments/staging/environment.yaml",
        "parameters:\n  AppVersion: \"1.4.3\"\ntags:\n  release: r43\n",
    );
    repo.commit("staging 1.4.3");

    let out = run(&repo, &["rollback", "prod", "--write", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["environment"], "prod");
    assert_eq!(v["to_revision"], before.as_str());
    assert_eq!(v["written"], true);
    assert_eq!(
        v["changes"],
        json!([
            {"key": "parameters.AppVersion", "old": "1.4.2", "new": "1.4.1"},
            {"key": "tags.release", "old": "r42", "new": "r41"},
        ])
    );
    // Byte for byte the file it was.
    assert_eq!(
        std::fs::read_to_string(repo.path().join(PROD_FILE)).unwrap(),
        PROD
    );
    repo.commit("roll back prod");
    // Now the most recent different state is the promotion.
    let out = run(&repo, &["rollback", "prod", "--format", "json"]);
    let v = json_of(&out);
    assert_eq!(v["changes"][0]["new"], "1.4.2");
    // An explicit revision.
    let out = run(
        &repo,
        &["rollback", "prod", "--to", &before, "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_of(&out)["changes"], json!([]));
    // No earlier different state for development.
    let out = run(&repo, &["rollback", "development"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no earlier commit has different values"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn history_follows_a_rename_of_the_environment_file() {
    let repo = repository();
    repo.write(PROD_FILE, &PROD.replace("1.4.1", "1.4.2"));
    repo.commit("prod 1.4.2");
    // Rename every environment file, and say so in gitops.yaml, in one commit.
    for env in ["development", "staging", "prod"] {
        repo.git(&[
            "mv",
            &format!("environments/{env}/environment.yaml"),
            &format!("environments/{env}/env.yaml"),
        ]);
    }
    repo.write(
        "gitops.yaml",
        &format!(
            "{}environments: {{ file: env.yaml }}\n",
            config(
                "[development, staging, prod]",
                "[parameters.AppVersion, tags.release]"
            )
        ),
    );
    repo.commit("rename environment files");
    repo.write(
        "environments/prod/env.yaml",
        &PROD.replace("1.4.1", "1.4.3").replace("r41", "r43"),
    );
    let last = repo.commit("prod 1.4.3");

    let out = run(&repo, &["history", "prod", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    let changes: Vec<String> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} {}: {} -> {}",
                c["summary"].as_str().unwrap(),
                c["author"].as_str().unwrap(),
                c["key"].as_str().unwrap(),
                c["old"].as_str().unwrap_or("(unset)"),
                c["new"].as_str().unwrap_or("(unset)")
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            "prod 1.4.3 Test parameters.AppVersion: 1.4.2 -> 1.4.3",
            "prod 1.4.3 Test tags.release: r41 -> r43",
            "prod 1.4.2 Test parameters.AppVersion: 1.4.1 -> 1.4.2",
            "initial environments Test parameters.AppVersion: (unset) -> 1.4.1",
            "initial environments Test tags.release: (unset) -> r41",
        ]
    );
    assert_eq!(v["changes"][0]["commit"], last.as_str());
    assert_eq!(v["changes"][0]["date"], "2024-01-01T00:04:00+00:00");

    let out = run(&repo, &["history", "prod"]);
    let text = stdout(&out);
    assert!(text.starts_with("COMMIT"), "{text}");
    assert!(
        text.contains("parameters.AppVersion  1.4.2 → 1.4.3"),
        "{text}"
    );
}

const STACK_TEMPLATE: &str = r#"{"Parameters": {"AppVersion": {"Type": "String"}}, "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}"#;

fn create_stack(moto: &Moto, name: &str, version: &str, release: &str) {
    let body = moto.query(&[
        ("Action", "CreateStack"),
        ("StackName", name),
        ("TemplateBody", STACK_TEMPLATE),
        ("Parameters.member.1.ParameterKey", "AppVersion"),
        ("Parameters.member.1.ParameterValue", version),
        ("Tags.member.1.Key", "release"),
        ("Tags.member.1.Value", release),
        ("Version", "2010-05-15"),
    ]);
    assert!(body.contains("StackId"), "CreateStack failed: {body}");
}

fn run_with_moto(repo: &GitRepo, moto: &Moto, args: &[&str]) -> Output {
    gitops()
        .arg("--repo")
        .arg(repo.path())
        .args(args)
        .envs(moto.env())
        .output()
        .expect("gitops runs")
}

#[test]
fn the_gate_against_moto() {
    let Some(moto) = Moto::start() else { return };
    let repo = repository();
    create_stack(&moto, "staging-app", "1.4.2", "r42");
    create_stack(&moto, "development-app", "1.4.9", "r50");

    // Staging runs what would be promoted: the gate passes (credentials are set).
    let out = run_with_moto(
        &repo,
        &moto,
        &["promote", "--from", "staging", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["verified"], true, "{v}");
    assert!(v["verification"].as_str().unwrap().contains("staging-app"));

    // Staging's file moves on to a version its stack does not run yet: refused.
    repo.write(
        "environments/staging/environment.yaml",
        "parameters:\n  AppVersion: \"1.4.3\"\ntags:\n  release: r42\n",
    );
    repo.commit("staging 1.4.3, not deployed yet");
    let out = run_with_moto(
        &repo,
        &moto,
        &[
            "promote", "--from", "staging", "--to", "prod", "--write", "--format", "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not promoting staging to prod: stack `staging-app` of `staging` is not running what would be promoted: parameter `AppVersion` is `1.4.2`, not `1.4.3`"),
        "{}",
        stderr(&out)
    );
    let v = json_of(&out);
    assert_eq!(v["verified"], false);
    assert_eq!(v["written"], false);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");

    // Development runs another version than its file says: refused.
    let out = run_with_moto(
        &repo,
        &moto,
        &[
            "promote",
            "--from",
            "development",
            "--to",
            "staging",
            "--write",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("stack `development-app` of `development` is not running what would be promoted: parameter `AppVersion` is `1.4.9`, not `1.5.0`"),
        "{err}"
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");

    // A missing stack: refused.
    repo.write(
        "gitops.yaml",
        &config("[development, staging, prod]", "[parameters.AppVersion]").replace(
            "  template: common/app.yaml\n",
            "  template: common/app.yaml\n  name: \"{environment}-svc\"\n",
        ),
    );
    repo.commit("rename stacks");
    let out = run_with_moto(&repo, &moto, &["promote", "--from", "staging", "--write"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("stack `staging-svc` of `staging` does not exist in us-east-1"),
        "{}",
        stderr(&out)
    );
    // --skip-verify promotes anyway.
    let out = run_with_moto(
        &repo,
        &moto,
        &["promote", "--from", "staging", "--write", "--skip-verify"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        repo.git(&["diff", "--numstat"]),
        format!("1\t1\t{PROD_FILE}")
    );
}

/// A repository with a bare `origin` it has pushed `main` to.
fn repository_with_origin() -> (GitRepo, tempfile::TempDir) {
    let repo = repository();
    let remote = tempfile::tempdir().unwrap();
    let bare = remote.path().join("origin.git");
    let out = git_command(remote.path())
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(&bare)
        .output()
        .unwrap();
    assert!(out.status.success());
    repo.git(&["remote", "add", "origin", bare.to_str().unwrap()]);
    repo.git(&["push", "-q", "origin", "main"]);
    (repo, remote)
}

fn remote_git(remote: &tempfile::TempDir, args: &[&str]) -> String {
    let out = git_command(&remote.path().join("origin.git"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_with_github(repo: &GitRepo, stub: &GitHubStub, args: &[&str]) -> Output {
    // No git identity configured: the tool commits as github-actions[bot].
    gitops()
        .arg("--repo")
        .arg(repo.path())
        .args(args)
        .envs(stub.env())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("AWS_ACCESS_KEY_ID")
        .output()
        .expect("gitops runs")
}

#[test]
fn open_pr_creates_then_updates_the_pull_request() {
    let (repo, remote) = repository_with_origin();
    let branch = "gitops/promote-staging-to-prod";
    let stub = GitHubStub::start(vec![
        Route::new("GET", "/repos/acme/app/pulls", 200, json!([])),
        Route::new(
            "POST",
            "/repos/acme/app/pulls",
            201,
            json!({"number": 12, "html_url": "https://github.com/acme/app/pull/12"}),
        ),
    ]);
    let out = run_with_github(
        &repo,
        &stub,
        &[
            "promote",
            "--from",
            "staging",
            "--open-pr",
            "--skip-verify",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stdout(&out).contains(TOKEN) && !stderr(&out).contains(TOKEN));
    let v = json_of(&out);
    assert_eq!(
        v["pull_request"],
        json!({"action": "created", "number": 12, "url": "https://github.com/acme/app/pull/12", "branch": branch, "base": "main"})
    );
    let requests = stub.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].method, "GET");
    assert_eq!(
        requests[0].path,
        "/repos/acme/app/pulls?head=acme%3Agitops%2Fpromote-staging-to-prod&state=open"
    );
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let post = requests[1].json();
    assert_eq!(requests[1].method, "POST");
    assert_eq!(post["head"], branch);
    assert_eq!(post["base"], "main");
    assert_eq!(
        post["title"],
        "Promote staging to prod: AppVersion 1.4.2, release r42"
    );
    assert!(post["body"]
        .as_str()
        .unwrap()
        .contains("| `tags.release` | `r41` | `r42` |"));

    // The branch is on origin with the edit, committed by the bot.
    let pushed = remote_git(&remote, &["show", &format!("{branch}:{PROD_FILE}")]);
    assert_eq!(pushed, PROD.replace("1.4.1", "1.4.2").replace("r41", "r42"));
    let log = remote_git(&remote, &["log", "-1", "--format=%an|%s", branch]);
    assert_eq!(
        log.trim(),
        "github-actions[bot]|promote staging to prod: AppVersion 1.4.2, release r42"
    );
    // The working tree is back on main, untouched.
    assert_eq!(repo.git(&["symbolic-ref", "--short", "HEAD"]), "main");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");

    // Run again with an open pull request for the branch: it is updated.
    let stub = GitHubStub::start(vec![
        Route::new(
            "GET",
            "/repos/acme/app/pulls",
            200,
            json!([{"number": 12, "html_url": "https://github.com/acme/app/pull/12"}]),
        ),
        Route::new(
            "PATCH",
            "/repos/acme/app/pulls/12",
            200,
            json!({"number": 12, "html_url": "https://github.com/acme/app/pull/12"}),
        ),
    ]);
    let out = run_with_github(
        &repo,
        &stub,
        &["promote", "--from", "staging", "--open-pr", "--skip-verify"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("updated pull request #12"),
        "{}",
        stdout(&out)
    );
    let requests = stub.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[1].method, "PATCH");
    assert_eq!(requests[1].path, "/repos/acme/app/pulls/12");
    assert!(requests[1].json()["title"]
        .as_str()
        .unwrap()
        .starts_with("Promote staging to prod"));
}

#[test]
fn open_pr_errors_name_the_status() {
    let (repo, _remote) = repository_with_origin();
    let stub = GitHubStub::start(vec![
        Route::new("GET", "/repos/acme/app/pulls", 200, json!([])),
        Route::new(
            "POST",
            "/repos/acme/app/pulls",
            403,
            json!({"message": "GitHub Actions is not permitted to create or approve pull requests."}),
        ),
    ]);
    let out = run_with_github(
        &repo,
        &stub,
        &["rollback", "prod", "--to", "HEAD", "--open-pr"],
    );
    // Nothing to roll back to at HEAD itself: no pull request, no request.
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stub.requests().is_empty());
    let out = run_with_github(
        &repo,
        &stub,
        &["promote", "--from", "staging", "--open-pr", "--skip-verify"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("GitHub API POST /repos/acme/app/pulls answered 403: GitHub Actions is not permitted to create or approve pull requests; the token lacks a permission"),
        "{err}"
    );
    assert!(!err.contains(TOKEN));
}

#[test]
fn a_failed_push_leaves_the_checkout_as_it_was() {
    let (repo, remote) = repository_with_origin();
    repo.git(&["remote", "set-url", "origin", "/nonexistent/origin.git"]);
    let stub = GitHubStub::start(vec![]);
    let out = run_with_github(
        &repo,
        &stub,
        &["promote", "--from", "staging", "--open-pr", "--skip-verify"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "git push -q --force-with-lease origin gitops/promote-staging-to-prod failed"
        ),
        "{}",
        stderr(&out)
    );
    assert!(stub.requests().is_empty());
    assert_eq!(repo.git(&["symbolic-ref", "--short", "HEAD"]), "main");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    assert_eq!(
        std::fs::read_to_string(repo.path().join(PROD_FILE)).unwrap(),
        PROD
    );
    drop(remote);
}

#[test]
fn open_pr_targets_the_branch_the_target_environment_is_bound_to() {
    let (repo, _remote) = repository_with_origin();
    repo.write(PROD_FILE, &format!("branch: release\n{PROD}"));
    repo.commit("prod deploys from the release branch");
    let stub = GitHubStub::start(vec![
        Route::new("GET", "/repos/acme/app/pulls", 200, json!([])),
        Route::new(
            "POST",
            "/repos/acme/app/pulls",
            201,
            json!({"number": 13, "html_url": "https://github.com/acme/app/pull/13"}),
        ),
    ]);
    let out = run_with_github(
        &repo,
        &stub,
        &["promote", "--from", "staging", "--open-pr", "--skip-verify"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let requests = stub.requests();
    let post = requests
        .iter()
        .find(|r| r.method == "POST")
        .unwrap_or_else(|| panic!("no POST in {requests:?}"))
        .json();
    // Opened from main, aimed at prod's branch.
    assert_eq!(post["base"], "release", "{post}");
    assert_eq!(repo.git(&["symbolic-ref", "--short", "HEAD"]), "main");
}
