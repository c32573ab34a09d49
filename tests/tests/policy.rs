//! End-to-end tests of the policy gates of `gitops validate`: guard rules
//! offline, and which Access Analyzer checks run or are skipped. (The
//! Access Analyzer findings themselves are tested in gitops-core against a
//! mocked service: moto does not implement Access Analyzer.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

use gitops_e2e::bin::gitops;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The acceptance repository: an unencrypted bucket and an inline policy
/// allowing `*` on `*`.
fn fixture() -> String {
    root()
        .join("tests/fixtures/policy-gates/repo")
        .to_str()
        .unwrap()
        .to_string()
}

/// `gitops` with no AWS credentials in its environment.
fn no_credentials() -> Command {
    let mut cmd = gitops();
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("gitops runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn guard_failure_fails_validate_offline_with_file_line_and_rule() {
    let repo = fixture();
    let out = run(no_credentials().args(["validate", "--no-aws", "--repo", &repo]));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("common/app.yaml:7:5: error: guard rule `s3_bucket_encrypted` (policies/s3.guard) fails for resource `DataBucket` (AWS::S3::Bucket): Violation: S3 buckets must set BucketEncryption."),
        "{text}"
    );
    assert!(text.contains("invalid: 1 error(s), 0 warning(s)"), "{text}");
    assert!(
        stderr(&out).contains("note: Access Analyzer checks skipped: --no-aws"),
        "{}",
        stderr(&out)
    );

    let out =
        run(no_credentials().args(["validate", "--no-aws", "--repo", &repo, "--format", "json"]));
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = &problems[0];
    assert_eq!(p["severity"], "error");
    assert_eq!(p["file"], "common/app.yaml");
    assert_eq!(p["line"], 7);
    assert_eq!(p["column"], 5);
    assert_eq!(p["source"], "guard");
    assert_eq!(p["rule"], "s3_bucket_encrypted");
    assert!(p["message"].as_str().unwrap().contains("`DataBucket`"));
    assert_eq!(
        v["skipped"],
        serde_json::json!(["Access Analyzer checks skipped: --no-aws"])
    );
}

#[test]
fn without_credentials_access_analyzer_is_skipped_and_said_so() {
    let out = run(no_credentials().args([
        "validate",
        "--repo",
        &fixture(),
        "--format",
        "json",
        "--check-no-new-access",
        "--base",
        "HEAD",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["skipped"],
        serde_json::json!([
            "Access Analyzer checks skipped: no AWS credentials (use --aws to force)",
            "CheckNoNewAccess skipped: no AWS credentials (use --aws to force)"
        ])
    );
    // Config and template problems keep their JSON shape: no `rule` key.
    assert_eq!(v["problems"].as_array().unwrap().len(), 1);
}

#[test]
fn examples_basic_passes_the_policy_gates() {
    let dir = root().join("examples/basic");
    for args in [vec!["--no-aws"], vec![]] {
        let out = run(no_credentials()
            .args([
                "validate",
                "--repo",
                dir.to_str().unwrap(),
                "--format",
                "json",
            ])
            .args(&args));
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["valid"], true);
        assert_eq!(v["problems"], serde_json::json!([]));
    }
}

#[test]
fn guard_problems_become_annotations() {
    let out = run(no_credentials()
        .args(["validate", "--no-aws", "--repo", &fixture()])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", root()));
    let text = stdout(&out);
    assert!(
        text.contains("::error file=tests/fixtures/policy-gates/repo/common/app.yaml,line=7,col=5::guard rule `s3_bucket_encrypted`"),
        "{text}"
    );
}

#[test]
fn flag_mistakes_are_usage_errors() {
    let repo = fixture();
    for args in [
        vec!["--base", "HEAD"],     // --base needs --check-no-new-access
        vec!["--github"],           // so does --github
        vec!["--fail-on", "fatal"], // not a severity
        vec!["--aws", "--no-aws"],  // contradictory
    ] {
        let out = run(no_credentials()
            .args(["validate", "--repo", &repo])
            .args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    // Forced Access Analyzer checks need a base for CheckNoNewAccess.
    let out = run(no_credentials().args([
        "validate",
        "--repo",
        &repo,
        "--aws",
        "--check-no-new-access",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--base REV"), "{}", stderr(&out));
}

#[test]
fn unreachable_access_analyzer_is_an_error_that_shows_no_credentials() {
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
    let out = run(no_credentials()
        .args([
            "validate",
            "--repo",
            &fixture(),
            "--endpoint-url",
            "http://127.0.0.1:9",
            "--region",
            "us-east-1",
        ])
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_EC2_METADATA_DISABLED", "true"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the IAM Access Analyzer checks failed; pass --no-aws"),
        "{err}"
    );
    assert!(!err.contains(secret) && !stdout(&out).contains(secret));
}
