//! Tests of the policy gates as a whole: configuration, finding files in
//! every kind of source, the offline checks on the examples, and the full
//! validate pipeline with a mocked Access Analyzer.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use aws_sdk_accessanalyzer::operation::validate_policy::ValidatePolicyOutput;
use aws_smithy_mocks::{mock, RuleMode};

use super::*;
use crate::aws::FindingType;
use crate::source::{GitTree, Memory, WorkTree};
use crate::Severity;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn memory(config: &str) -> Memory {
    Memory::new("t")
        .with_file("gitops.yaml", config)
        .with_file(
            "common/app.yaml",
            "Resources:\n  T: { Type: AWS::SNS::Topic }\n",
        )
        .with_file("environments/dev/environment.yaml", "{}\n")
}

#[test]
fn policies_configuration() {
    let src = memory(
        "version: 1\nstack: { template: common/app.yaml }\npolicies:\n  guard: [\"policies/**/*.guard\"]\n  iam: [iam/*.json]\n  deny-actions: [iam:PassRole, \"s3:Delete*\"]\n",
    );
    let repo = Repository::load(&src).unwrap();
    assert_eq!(repo.config.policies.guard, ["policies/**/*.guard"]);
    assert_eq!(repo.config.policies.iam, ["iam/*.json"]);
    assert_eq!(
        repo.config.policies.deny_actions,
        ["iam:PassRole", "s3:Delete*"]
    );

    let src = memory(
        "version: 1\nstack: { template: common/app.yaml }\npolicies:\n  guard: [\"a/[b\"]\n  iam: [/abs/*.json]\n  deny-actions: [PassRole, \"iam:\"]\n  gaurd: []\n",
    );
    let repo = Repository::load(&src).unwrap();
    let msgs: Vec<String> = repo.problems().iter().map(ToString::to_string).collect();
    assert_eq!(msgs.len(), 5, "{msgs:#?}");
    assert!(
        msgs[0].starts_with(
            "gitops.yaml:7:3: error: unknown key `gaurd` in `policies`; did you mean `guard`?"
        ),
        "{}",
        msgs[0]
    );
    assert!(
        msgs[1]
            .starts_with("gitops.yaml:4:3: error: `policies.guard` glob `a/[b` does not compile"),
        "{}",
        msgs[1]
    );
    assert_eq!(msgs[2], "gitops.yaml:5:3: error: `policies.iam` glob `/abs/*.json` must be relative to the repository root");
    assert_eq!(msgs[3], "gitops.yaml:6:3: error: `policies.deny-actions` entry `PassRole` is not an IAM action such as `iam:PassRole` or `s3:DeleteBucket`");
    assert!(msgs[4].contains("entry `iam:`"));

    let repo = Repository::load(&memory(
        "version: 1\nstack: { template: common/app.yaml }\npolicies: { guard: 3 }\n",
    ))
    .unwrap();
    assert!(repo.problems()[0]
        .message
        .contains("`policies.guard` has the wrong type"));
}

fn files_of(source: &dyn Source) -> Vec<Vec<String>> {
    [
        vec!["policies/*.guard".to_string()],
        vec!["policies/**/*.guard".to_string()],
        vec!["**/*.json".to_string()],
        vec![
            "./policies/s3.guard".to_string(),
            "nope/*.guard".to_string(),
        ],
    ]
    .iter()
    .map(|g| find_files(source, g).unwrap())
    .collect()
}

fn expected_files() -> Vec<Vec<String>> {
    let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&["policies/s3.guard", "policies/tags.guard"]),
        v(&[
            "policies/deep/more.guard",
            "policies/s3.guard",
            "policies/tags.guard",
        ]),
        v(&["iam/a.json", "policies/deep/p.json"]),
        v(&["policies/s3.guard"]),
    ]
}

const TREE: &[(&str, &str)] = &[
    ("gitops.yaml", "version: 1\n"),
    ("policies/s3.guard", "rule a { Resources exists }\n"),
    ("policies/tags.guard", "rule b { Resources exists }\n"),
    ("policies/README.md", "rules\n"),
    ("policies/deep/more.guard", "rule c { Resources exists }\n"),
    ("policies/deep/p.json", "{}\n"),
    ("iam/a.json", "{}\n"),
];

fn write_tree(dir: &Path) {
    for (p, c) in TREE {
        let full = dir.join(p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, c).unwrap();
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn globs_find_files_in_every_source() {
    let mut mem = Memory::new("t");
    for (p, c) in TREE {
        mem.insert(p, *c);
    }
    assert_eq!(files_of(&mem), expected_files());

    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path());
    let wt = WorkTree::new(dir.path()).unwrap();
    assert_eq!(files_of(&wt), expected_files());

    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "c"]);
    std::fs::remove_dir_all(dir.path().join("policies")).unwrap();
    let tree = GitTree::at_revision(dir.path(), "HEAD").unwrap();
    assert_eq!(files_of(&tree), expected_files());
}

#[test]
fn examples_basic_passes_its_policy_gates() {
    let src = WorkTree::new(root().join("examples/basic")).unwrap();
    let repo = Repository::load(&src).unwrap();
    assert_eq!(repo.config.policies.guard, ["policies/*.guard"]);
    assert_eq!(
        templates_in_use(&repo),
        ["common/environment.yaml", "common/pipeline.yaml"]
    );
    let offline = check_offline(&repo, &src).unwrap();
    assert_eq!(offline.problems, vec![]);
    assert_eq!(offline.unresolved, vec![]);
    // Trust policies, inline policies and bucket policies of both templates.
    let names: Vec<String> = offline
        .policies
        .iter()
        .map(|p| format!("{} {}", p.file, p.name()))
        .collect();
    assert_eq!(
        names,
        [
            "common/environment.yaml `DataBucketPolicy` Properties.PolicyDocument",
            "common/environment.yaml `TaskRole` Properties.AssumeRolePolicyDocument",
            "common/environment.yaml `TaskRole` Properties.Policies[0].PolicyDocument",
            "common/pipeline.yaml `ArtifactBucketPolicy` Properties.PolicyDocument",
            "common/pipeline.yaml `DeployRole` Properties.AssumeRolePolicyDocument",
            "common/pipeline.yaml `DeployRole` Properties.Policies[0].PolicyDocument",
            "common/pipeline.yaml `PipelineRole` Properties.AssumeRolePolicyDocument",
            "common/pipeline.yaml `PipelineRole` Properties.Policies[0].PolicyDocument",
            "common/pipeline.yaml `RenderRole` Properties.AssumeRolePolicyDocument",
            "common/pipeline.yaml `RenderRole` Properties.Policies[0].PolicyDocument",
        ]
    );
    // No placeholder is left unresolved.
    for p in &offline.policies {
        let text = p.text();
        assert!(
            !text.contains("Fn::") && !text.contains("\"Ref\""),
            "{text}"
        );
    }
}

#[test]
fn offline_checks_report_rule_files_and_globs() {
    let src = memory(
        "version: 1\nstack: { template: common/app.yaml }\npolicies:\n  guard: [rules/*.guard, none/*.guard]\n  iam: [iam/*.json]\n",
    )
    .with_file("rules/bad.guard", "rule x {\n  Resources.*.Type == \n}\n")
    .with_file("rules/ok.guard", "rule topic_named { Resources.*[ Type == 'AWS::SNS::Topic' ].Properties.TopicName exists }\n")
    .with_file("iam/bad.json", "{ nope")
    .with_file("iam/good.json", "{\"Statement\": []}");
    let repo = Repository::load(&src).unwrap();
    let offline = check_offline(&repo, &src).unwrap();
    let mut problems = offline.problems.clone();
    sort(&mut problems);
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 4, "{shown:#?}");
    assert!(shown[0].starts_with("common/app.yaml:2:3: error: guard rule `topic_named` (rules/ok.guard) fails for resource `T` (AWS::SNS::Topic)"), "{}", shown[0]);
    assert_eq!(
        shown[1],
        "gitops.yaml:4:3: warning: `policies.guard` glob `none/*.guard` matches no file"
    );
    assert!(
        shown[2].starts_with("iam/bad.json:1:3: error: not a JSON IAM policy document"),
        "{}",
        shown[2]
    );
    assert!(shown[3].starts_with("rules/bad.guard:2:"), "{}", shown[3]);
    assert_eq!(offline.policies.len(), 1);
    assert_eq!(offline.policies[0].file, "iam/good.json");
}

/// What the acceptance test compares: file, line, severity, check and rule.
type Summary = (
    String,
    Option<usize>,
    Severity,
    ProblemSource,
    Option<String>,
);

/// The acceptance repository: an unencrypted bucket (guard) and an inline
/// policy allowing `*` on `*` (Access Analyzer, mocked with aws-smithy-mocks).
#[tokio::test]
async fn full_pipeline_reports_guard_and_access_analyzer_problems() {
    let dir = root().join("tests/fixtures/policy-gates/repo");
    let src = WorkTree::new(&dir).unwrap();
    let repo = Repository::load(&src).unwrap();

    // Offline, only the guard problem.
    let offline = validate(&repo, &src, ValidateOptions::offline())
        .await
        .unwrap();
    let shown: Vec<String> = offline.problems.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 1, "{shown:#?}");
    assert!(shown[0].starts_with("common/app.yaml:7:5: error: guard rule `s3_bucket_encrypted` (policies/s3.guard) fails for resource `DataBucket` (AWS::S3::Bucket)"), "{}", shown[0]);

    // With Access Analyzer (the SDK adapter over a mocked service).
    let star = mock!(aws_sdk_accessanalyzer::Client::validate_policy)
        .match_requests(|r| {
            r.policy_document()
                .is_some_and(|d| d.contains(r#""Action":"*""#))
        })
        .then_output(|| {
            ValidatePolicyOutput::builder()
                .findings(crate::aws::sdk::access_tests::star_finding())
                .build()
                .unwrap()
        });
    let clean = mock!(aws_sdk_accessanalyzer::Client::validate_policy).then_output(|| {
        ValidatePolicyOutput::builder()
            .set_findings(Some(Vec::new()))
            .build()
            .unwrap()
    });
    let client = crate::aws::sdk::access_tests::aa_client(RuleMode::MatchAny, &[&star, &clean]);
    let options = ValidateOptions::offline().with_analyzer(Arc::new(client));
    let v = validate(&repo, &src, options).await.unwrap();
    let got: Vec<Summary> = v
        .problems
        .iter()
        .map(|p| (p.file.clone(), p.line, p.severity, p.source, p.rule.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "common/app.yaml".into(),
                Some(7),
                Severity::Error,
                ProblemSource::Guard,
                Some("s3_bucket_encrypted".into())
            ),
            (
                "common/app.yaml".into(),
                Some(28),
                Severity::Error,
                ProblemSource::AccessAnalyzer,
                Some("PASS_ROLE_WITH_STAR_IN_ACTION_AND_RESOURCE".into())
            ),
        ]
    );
    assert!(v.problems[1].message.starts_with("Access Analyzer SECURITY_WARNING PASS_ROLE_WITH_STAR_IN_ACTION_AND_RESOURCE in IAM identity policy `AppRole` Properties.Policies[0].PolicyDocument"));
    assert_eq!(star.num_calls(), 1);
    assert_eq!(clean.num_calls(), 1, "the trust policy");

    // --fail-on error turns the security warning into a warning.
    let client = crate::aws::sdk::access_tests::aa_client(RuleMode::MatchAny, &[&star, &clean]);
    let options = ValidateOptions::offline()
        .with_analyzer(Arc::new(client))
        .with_access(AccessOptions::new(FindingType::Error, Vec::new()));
    let v = validate(&repo, &src, options).await.unwrap();
    assert_eq!(v.problems[1].severity, Severity::Warning);
    assert!(v.problems[0].is_error());
}

/// CheckNoNewAccess compares with the policy read from a git revision.
#[tokio::test]
async fn check_no_new_access_reads_the_base_revision_from_git() {
    use crate::policy::access::tests::Scripted;

    let dir = tempfile::tempdir().unwrap();
    let fixture = root().join("tests/fixtures/policy-gates/repo");
    for f in [
        "gitops.yaml",
        "common/app.yaml",
        "policies/s3.guard",
        "environments/dev/environment.yaml",
    ] {
        let to = dir.path().join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let text = std::fs::read_to_string(fixture.join(f)).unwrap();
        // The base revision grants s3:GetObject only.
        let text = text.replace("Action: \"*\"", "Action: s3:GetObject");
        std::fs::write(to, text).unwrap();
    }
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "base"]);
    std::fs::copy(
        fixture.join("common/app.yaml"),
        dir.path().join("common/app.yaml"),
    )
    .unwrap();

    let head = WorkTree::new(dir.path()).unwrap();
    let base = GitTree::at_revision(dir.path(), "HEAD").unwrap();
    let repo = Repository::load(&head).unwrap();
    let aa = Arc::new(Scripted {
        new_access_if: Some(r#""Action":"*""#.into()),
        ..Scripted::default()
    });
    let options = ValidateOptions::offline()
        .with_analyzer(aa.clone())
        .with_base(&base);
    let v = validate(&repo, &head, options).await.unwrap();
    let calls = aa.calls("CheckNoNewAccess");
    assert_eq!(calls.len(), 1, "only the changed inline policy: {calls:?}");
    assert!(calls[0][0].contains(r#""Action":"*""#));
    assert!(calls[0][1].contains(r#""Action":"s3:GetObject""#));
    let new_access: Vec<&Problem> = v
        .problems
        .iter()
        .filter(|p| p.rule.as_deref() == Some(access::RULE_NO_NEW_ACCESS))
        .collect();
    assert_eq!(new_access.len(), 1);
    assert_eq!(new_access[0].line, Some(24));
    assert!(new_access[0]
        .message
        .contains("`AppRole` Properties.Policies[0].PolicyDocument grants new access"));
}

#[test]
fn problems_serialize_with_source_and_rule() {
    let p = Problem::error("a.yaml", "m")
        .at(Some((3, 4)))
        .with_source(ProblemSource::Guard)
        .with_rule("r");
    assert_eq!(
        serde_json::to_value(&p).unwrap(),
        serde_json::json!({"severity": "error", "file": "a.yaml", "line": 3, "column": 4, "message": "m", "source": "guard", "rule": "r"})
    );
    let p = Problem::warning("a.yaml", "m").with_source(ProblemSource::AccessAnalyzer);
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["source"], "access-analyzer");
    assert!(v.get("rule").is_none());
}
