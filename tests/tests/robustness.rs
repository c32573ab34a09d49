//! Hostile text, flaky services and odd input, end to end: workflow-command
//! injection through repository content, multi-byte text in AWS tags, a
//! GitHub API that fails once, answers garbage or echoes the token, AWS
//! without credentials, oversized files and annotated tags.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use gitops_e2e::bin::gitops;
use gitops_e2e::fixture::{describe, streams, update_out_of_band, SSM_TEMPLATE};
use gitops_e2e::git::GitRepo;
use gitops_e2e::github_stub::{GitHubStub, Route, TOKEN};
use gitops_e2e::moto::Moto;
use serde_json::{json, Value};

fn repo_with_dev(env_file: &str) -> GitRepo {
    let repo = GitRepo::new();
    repo.write(
        "gitops.yaml",
        "version: 1\nid: acme/e2e\nstack: {template: common/app.yaml}\n",
    )
    .write("common/app.yaml", SSM_TEMPLATE)
    .write("environments/dev/environment.yaml", env_file);
    repo.commit("dev");
    repo
}

/// Every line as the Actions runner reads it (CR and LF both end one).
fn runner_lines(out: &Output) -> Vec<String> {
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    all.split(['\n', '\r']).map(str::to_string).collect()
}

/// The workflow commands the runner would run from this output.
fn workflow_commands(out: &Output) -> Vec<String> {
    runner_lines(out)
        .into_iter()
        .filter(|l| l.trim_start().starts_with("::") || l.contains("##["))
        .collect()
}

#[test]
fn an_injected_key_prints_no_workflow_command() {
    let repo = repo_with_dev(
        "parameters:\n  AppVersion: '1.0.0'\n  \"X\\n::error::injected by a key\": a\n  \"Y\\n::add-mask::AppVersion\": b\n  \"Z\\r##[error]old syntax\": c\ntags:\n  \"t\\n::warning file=x::tag\": v\n",
    );
    for args in [
        vec!["validate"],
        vec!["envs"],
        vec!["validate", "--format", "json"],
    ] {
        let out = gitops()
            .args(&args)
            .args(["--repo", repo.path().to_str().unwrap()])
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", repo.path())
            .output()
            .unwrap();
        let all = streams(&out);
        if args == ["validate"] {
            assert_eq!(out.status.code(), Some(1), "{all}");
            // The keys were reported (so the check below means something) ...
            assert!(all.contains("injected by a key"), "{all}");
            assert!(all.contains("old syntax"), "{all}");
        }
        // ... yet the only commands are our annotations, their text escaped.
        for c in workflow_commands(&out) {
            assert!(
                c.starts_with("::error file=") || c.starts_with("::warning file="),
                "{args:?} printed a workflow command: {c:?}\n{all}"
            );
            // `##[` is a command only at a line's start; inside our
            // annotation's escaped message it is text.
            assert!(!c.starts_with("##["), "{c:?}");
        }
        if args == ["validate"] {
            let ours = workflow_commands(&out);
            assert!(!ours.is_empty(), "{all}");
            assert!(
                ours.iter()
                    .any(|c| c.contains("%0A::error::injected by a key")),
                "{ours:?}"
            );
        }
    }
}

#[test]
fn whoami_without_credentials_is_short_and_says_how_to_provide_them() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = gitops();
    cmd.arg("whoami");
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        // Nothing listens there: no call may leave this machine.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    let all = streams(&out);
    // whoami's error code is 2 (as validate's and envs').
    assert_eq!(out.status.code(), Some(2), "{all}");
    let lines: Vec<&str> = all
        .lines()
        .filter(|l| !l.trim().is_empty() && *l != "--- stderr ---")
        .collect();
    assert!(lines.len() <= 3, "{} lines:\n{all}", lines.len());
    for dump in [
        "DispatchFailure",
        "ConnectorError",
        "Some(",
        " { ",
        "source:",
    ] {
        assert!(!all.contains(dump), "a debug dump ({dump}):\n{all}");
    }
    for way in [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "configure-aws-credentials",
    ] {
        assert!(all.contains(way), "{way} is not named:\n{all}");
    }
}

/// A repository deployed to moto, then its stack's `gitops:commit` tag set
/// to `commit` behind the tool's back.
fn deployed_with_commit_tag(moto: &Moto, commit: &str) -> GitRepo {
    let repo = repo_with_dev("parameters: {AppVersion: '1.0.0'}\n");
    let out = gitops()
        .args(["deploy", "--environment", "dev", "--repo"])
        .arg(repo.path())
        .envs(moto.env())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    // Keep our tags and `team`, change gitops:commit. A changed value:
    // moto answers "No updates are to be performed." to an update that
    // changes only tags.
    update_out_of_band(moto, "dev-app", "1.0.1", |key, value| match key {
        "gitops:commit" => Some(commit.to_string()),
        k if k.starts_with("gitops:") || k == "team" => Some(value),
        _ => None,
    });
    let after = describe(moto, "dev-app");
    assert!(after.contains(commit), "the tag was not set: {after}");
    repo
}

#[test]
fn status_with_a_multibyte_commit_tag_exits_0() {
    let Some(moto) = Moto::start() else { return };
    // 'é' is two bytes: after the one-byte '0', byte 12 falls inside the
    // sixth 'é', where a byte slice `[..12]` panics.
    let commit = "0ééééééééééééééé-déployé";
    let repo = deployed_with_commit_tag(&moto, commit);
    for format in ["text", "markdown", "json"] {
        let out = gitops()
            .args(["status", "--format", format, "--repo"])
            .arg(repo.path())
            .envs(moto.env())
            .output()
            .unwrap();
        let all = streams(&out);
        assert_eq!(out.status.code(), Some(0), "{format}: {all}");
        assert!(!all.contains("panicked"), "{all}");
        if format == "text" {
            assert!(all.contains("0ééééééééééé"), "{all}");
        }
    }
}

#[test]
fn status_exits_1_when_no_row_could_be_read() {
    let repo = repo_with_dev("parameters: {AppVersion: '1.0.0'}\n");
    let out = gitops()
        .args(["status", "--format", "json", "--repo"])
        .arg(repo.path())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    let all = streams(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let dev = &v["environments"][0];
    assert_eq!(dev["sync"], "Unknown", "{v}");
    let error = dev["error"].as_str().unwrap();
    assert!(!error.contains('{') && !error.contains('\n'), "{error}");
    assert!(error.contains("CloudFormation"), "{error}");
}

/// A repository with `dev` changed between two commits, for `plan --no-aws`.
fn plan_repo() -> (GitRepo, String, String) {
    let repo = repo_with_dev("parameters: {AppVersion: '1.0.0'}\n");
    let base = repo.head();
    repo.write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.1.0'}\n",
    );
    let head = repo.commit("dev 1.1.0");
    (repo, base, head)
}

fn plan_comment(repo: &GitRepo, base: &str, head: &str, stub: &GitHubStub) -> Output {
    gitops()
        .args([
            "plan",
            "--no-aws",
            "--comment",
            "--pr",
            "7",
            "--base",
            base,
            "--head",
            head,
        ])
        .arg("--repo")
        .arg(repo.path())
        .envs(stub.env())
        .output()
        .unwrap()
}

fn posts(stub: &GitHubStub) -> usize {
    stub.requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count()
}

#[test]
fn a_502_is_retried_and_the_comment_is_posted() {
    let (repo, base, head) = plan_repo();
    let stub = GitHubStub::start(vec![Route::new(
        "POST",
        "/repos/acme/app/issues/7/comments",
        502,
        json!({"message": "Server Error"}),
    )
    .times(1)]);
    let out = plan_comment(&repo, &base, &head, &stub);
    let all = streams(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_eq!(posts(&stub), 2, "{all}");
    let comments = stub.comments(7);
    assert_eq!(comments.len(), 1, "{all}");
    assert!(comments[0].body.contains("<!-- gitops-plan -->"));
    assert!(all.contains("posted the plan on pull request #7"), "{all}");
}

#[test]
fn a_rate_limit_is_retried_after_the_time_github_asks() {
    let (repo, base, head) = plan_repo();
    let stub = GitHubStub::start(vec![Route::new(
        "POST",
        "/repos/acme/app/issues/7/comments",
        403,
        json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}),
    )
    .header("Retry-After", "1")
    .times(1)]);
    let out = plan_comment(&repo, &base, &head, &stub);
    let all = streams(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_eq!(posts(&stub), 2, "{all}");
    assert_eq!(stub.comments(7).len(), 1, "{all}");
}

#[test]
fn garbage_is_reported_with_the_real_status_and_an_echoed_token_is_redacted() {
    let (repo, base, head) = plan_repo();
    // A 200 whose body is not JSON: not "answered 201".
    let stub = GitHubStub::start(vec![Route::new(
        "POST",
        "/repos/acme/app/issues/7/comments",
        200,
        json!(null),
    )
    .raw_body("<html>proxy login</html>")]);
    let out = plan_comment(&repo, &base, &head, &stub);
    let all = streams(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("answered 200"), "{all}");
    assert!(!all.contains("answered 201"), "{all}");
    assert_eq!(posts(&stub), 1, "a 200 is not retried: {all}");

    // A server that echoes the token back.
    let stub = GitHubStub::start(vec![Route::new(
        "POST",
        "/repos/acme/app/issues/7/comments",
        422,
        json!({"message": format!("Bad credentials: Bearer {TOKEN}"), "errors": [{"message": TOKEN}]}),
    )]);
    let out = plan_comment(&repo, &base, &head, &stub);
    let all = streams(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("answered 422"), "{all}");
    assert!(!all.contains(TOKEN), "the token was printed:\n{all}");
    assert!(all.contains("<redacted>"), "{all}");
}

#[test]
fn the_token_never_follows_a_redirect_to_another_host() {
    let (repo, base, head) = plan_repo();
    let elsewhere = GitHubStub::start(vec![]);
    let stub = GitHubStub::start(vec![Route::new(
        "GET",
        "/repos/acme/app/issues/7/comments",
        307,
        json!({}),
    )
    .header(
        "Location",
        &format!("{}/repos/acme/app/issues/7/comments", elsewhere.url),
    )]);
    let out = plan_comment(&repo, &base, &head, &stub);
    let all = streams(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("answered 307"), "{all}");
    assert!(
        elsewhere
            .requests()
            .iter()
            .all(|r| r.header("authorization").is_none()),
        "the token went to another host"
    );
    assert!(
        elsewhere.requests().is_empty(),
        "{:?}",
        elsewhere.requests()
    );

    // The same origin: followed, with the token.
    let stub = GitHubStub::start(vec![Route::new(
        "GET",
        "/repos/acme/app/issues/7/comments",
        307,
        json!({}),
    )
    .header("Location", "/repos/acme/app/issues/8/comments")
    .times(1)]);
    let out = plan_comment(&repo, &base, &head, &stub);
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let followed: Vec<_> = stub
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/repos/acme/app/issues/8/comments"))
        .collect();
    assert_eq!(followed.len(), 1);
    assert_eq!(
        followed[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[test]
fn files_over_1_mib_are_a_problem_found_before_parsing() {
    let big = format!(
        "parameters:\n  AppVersion: '1.0.0'\n{}",
        "  # padding padding padding padding padding padding padding padding\n".repeat(40_000)
    );
    assert!(big.len() > 2 * 1024 * 1024);
    let repo = repo_with_dev(&big);
    let out = gitops()
        .args(["validate", "--repo"])
        .arg(repo.path())
        .output()
        .unwrap();
    let all = streams(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let line = all
        .lines()
        .find(|l| l.starts_with("environments/dev/environment.yaml"))
        .unwrap_or_else(|| panic!("{all}"));
    assert!(
        line.contains(&big.len().to_string()) && line.contains("1048576"),
        "{line}"
    );

    // gitops.yaml itself.
    let repo = repo_with_dev("parameters: {AppVersion: '1.0.0'}\n");
    let mut config = String::from("version: 1\nid: acme/e2e\nstack: {template: common/app.yaml}\n");
    config.push_str(&"# padding padding padding padding padding padding\n".repeat(30_000));
    std::fs::write(repo.path().join("gitops.yaml"), &config).unwrap();
    let out = gitops()
        .args(["validate", "--repo"])
        .arg(repo.path())
        .output()
        .unwrap();
    let all = streams(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("gitops.yaml") && all.contains(&config.len().to_string()),
        "{all}"
    );
}

#[test]
fn annotated_tags_are_peeled_to_their_commit() {
    let (repo, base, head) = plan_repo();
    repo.git(&["tag", "-a", "v1", "-m", "release 1", &base]);
    let tag_object = repo.git(&["rev-parse", "v1"]).trim().to_string();
    assert_ne!(tag_object, base, "an annotated tag is an object of its own");
    for rev in [tag_object.as_str(), "v1"] {
        let out = gitops()
            .args(["detect", "--format", "json", "--base", rev, "--head", &head])
            .arg("--repo")
            .arg(repo.path())
            .output()
            .unwrap();
        let all = streams(&out);
        assert!(out.status.success(), "{rev}: {all}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["base"], json!(base), "{rev}: {v}");
    }
}

#[test]
fn the_deployed_commit_tag_is_the_peeled_commit() {
    let Some(moto) = Moto::start() else { return };
    let repo = repo_with_dev("parameters: {AppVersion: '1.0.0'}\n");
    let commit = repo.head();
    repo.git(&["tag", "-a", "v1", "-m", "release 1"]);
    let tag_object = repo.git(&["rev-parse", "v1"]).trim().to_string();
    let out = gitops()
        .args([
            "deploy",
            "--environment",
            "dev",
            "--head",
            &tag_object,
            "--repo",
        ])
        .arg(repo.path())
        .envs(moto.env())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let xml = moto.query(&[
        ("Action", "DescribeStacks"),
        ("StackName", "dev-app"),
        ("Version", "2010-05-15"),
    ]);
    assert!(xml.contains(&commit), "{xml}");
    assert!(!xml.contains(&tag_object), "{xml}");
}
