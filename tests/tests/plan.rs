//! `gitops plan` end to end: change-set previews against the moto emulator
//! (nothing left behind), the git-level plan, and the pull-request comment
//! against a GitHub API stand-in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Output;

use gitops_e2e::bin::gitops;
use gitops_e2e::fixture::{describe, entry, json_of, text, SSM_TEMPLATE};
use gitops_e2e::git::GitRepo;
use gitops_e2e::github_stub::{GitHubStub, Route, TOKEN};
use gitops_e2e::moto::Moto;
use serde_json::{json, Value};

fn repo() -> GitRepo {
    let repo = GitRepo::new();
    repo.write(
        "gitops.yaml",
        "version: 1\nid: acme/e2e\nstack: {template: common/app.yaml}\n",
    )
    .write("common/app.yaml", SSM_TEMPLATE);
    repo
}

fn run(repo: &GitRepo, args: &[&str], env: &[(&str, String)]) -> Output {
    gitops()
        .arg("plan")
        .args(["--repo", repo.path().to_str().unwrap()])
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap()
}

fn deploy(repo: &GitRepo, moto: &Moto, base: &str, head: &str) {
    let out = gitops()
        .args(["deploy", "--repo", repo.path().to_str().unwrap()])
        .args(["--base", base, "--head", head])
        .envs(moto.env())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "deploy: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn change_sets(moto: &Moto, stack: &str) -> String {
    moto.query(&[
        ("Action", "ListChangeSets"),
        ("StackName", stack),
        ("Version", "2010-05-15"),
    ])
}

/// dev, prod (protected) and old deployed at `deployed`; then `head`
/// updates dev, creates new, and removes old and prod.
struct Scenario {
    repo: GitRepo,
    deployed: String,
    head: String,
}

fn scenario(moto: Option<&Moto>) -> Scenario {
    let repo = repo();
    let empty = repo.commit("templates only");
    repo.write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.0.0'}\ntags: {team: pay}\n",
    )
    .write(
        "environments/prod/environment.yaml",
        "parameters: {AppVersion: '0.9.0'}\nprotected: true\n",
    )
    .write(
        "environments/old/environment.yaml",
        "parameters: {AppVersion: '0.1.0'}\n",
    );
    let deployed = repo.commit("dev, prod and old");
    if let Some(moto) = moto {
        deploy(&repo, moto, &empty, &deployed);
    }
    repo.write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.1.0'}\ntags: {team: payments}\n",
    )
    .write(
        "environments/new/environment.yaml",
        "parameters: {AppVersion: '2.0.0'}\n",
    )
    .remove("environments/old")
    .remove("environments/prod")
    // moto reports resource changes only for template changes (AWS also
    // for parameter changes): give the parameter a description.
    .write(
        "common/app.yaml",
        &SSM_TEMPLATE.replace(
            "      Type: String\n      Value",
            "      Type: String\n      Description: the app version\n      Value",
        ),
    );
    let head = repo.commit("update dev, create new, remove old and prod");
    Scenario {
        repo,
        deployed,
        head,
    }
}

fn resource_changes(e: &Value) -> Vec<String> {
    e["resource_changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no preview: {e}"))
        .iter()
        .map(|c| {
            format!(
                "{} {} {} {}",
                c["stack"].as_str().unwrap(),
                c["action"].as_str().unwrap(),
                c["logical_id"].as_str().unwrap(),
                c["resource_type"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn previews_created_updated_deleted_and_protected_environments_and_leaves_no_change_set() {
    let Some(moto) = Moto::start() else { return };
    let s = scenario(Some(&moto));
    let out = run(
        &s.repo,
        &[
            "--base",
            &s.deployed,
            "--head",
            &s.head,
            "--format",
            "json",
            "--exit-code",
        ],
        &moto.env(),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "changes: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let v = json_of(&out);
    assert_eq!(v["aws"], true);
    assert_eq!(v["has_changes"], true);
    assert_eq!(
        v["counts"],
        json!({"create-stack": 1, "update-stack": 1, "refuse": 2})
    );

    let new = entry(&v, "new");
    assert_eq!(new["change"], "created");
    assert_eq!(new["observed"], true);
    assert_eq!(new["actions"][0]["action"], "deploy-stack");
    assert_eq!(new["actions"][0]["op"], "create");
    assert_eq!(
        resource_changes(new),
        ["new-app Add Version AWS::SSM::Parameter"]
    );
    assert_eq!(new["parameter_changes"][0]["key"], "AppVersion");
    assert_eq!(new["parameter_changes"][0]["old"], Value::Null);
    assert_eq!(new["parameter_changes"][0]["new"], "2.0.0");

    let dev = entry(&v, "dev");
    assert_eq!(dev["actions"][0]["op"], "update");
    assert_eq!(
        dev["parameter_changes"],
        json!([{"key": "AppVersion", "old": "1.0.0", "new": "1.1.0"}])
    );
    assert_eq!(
        dev["tag_changes"],
        json!([{"key": "team", "old": "pay", "new": "payments"}])
    );
    assert_eq!(
        resource_changes(dev),
        ["dev-app Modify Version AWS::SSM::Parameter"]
    );
    assert_eq!(dev["diffs"][0]["path"], "environments/dev/environment.yaml");
    assert!(dev["diffs"][0]["diff"]
        .as_str()
        .unwrap()
        .contains("+parameters: {AppVersion: '1.1.0'}"));
    assert_eq!(dev["diffs"][1]["path"], "common/app.yaml");
    assert!(dev["diffs"][1]["diff"]
        .as_str()
        .unwrap()
        .contains("+      Description: the app version"));

    let old = entry(&v, "old");
    assert_eq!(old["actions"][0]["action"], "refuse");
    assert_eq!(old["actions"][0]["reason"]["kind"], "delete-not-allowed");
    assert_eq!(old["resource_changes"], Value::Null);
    assert!(old["preview_note"].as_str().unwrap().contains("refuses"));
    let prod = entry(&v, "prod");
    assert_eq!(prod["actions"][0]["reason"]["kind"], "protected");
    assert_eq!(
        prod["parameter_changes"],
        json!([{"key": "AppVersion", "old": "0.9.0", "new": null}])
    );

    // Every change set the plan made is gone, and nothing was changed.
    let mut names = Vec::new();
    for (e, stack) in [(new, "new-app"), (dev, "dev-app")] {
        let made: Vec<&str> = e["change_sets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(made.len(), 1, "{e}");
        assert!(made[0].starts_with("gitops-plan-"), "{made:?}");
        let list = change_sets(&moto, stack);
        assert!(
            !list.contains(made[0]),
            "{} left on {stack}: {list}",
            made[0]
        );
        // moto keeps executed change sets listed; none may be left unexecuted.
        assert!(
            !list.contains("<ExecutionStatus>AVAILABLE"),
            "a change set is left on {stack}: {list}"
        );
        names.extend(made);
    }
    // (moto answers ListChangeSets for a missing stack with other stacks'
    // executed change sets: none may be new-app's or the plan's.)
    let list = change_sets(&moto, "new-app");
    assert!(
        !list.contains("<StackName>new-app</StackName>") && !list.contains("gitops-plan-"),
        "list-change-sets of the new stack is empty: {list}"
    );
    let xml = describe(&moto, "new-app");
    assert!(
        !xml.contains("<StackStatus>") || xml.contains("DELETE_COMPLETE"),
        "the preview's REVIEW_IN_PROGRESS stack is deleted: {xml}"
    );
    let xml = describe(&moto, "dev-app");
    assert!(
        xml.contains("<ParameterValue>1.0.0</ParameterValue>"),
        "{xml}"
    );
    let stderr = text(&out.stderr);
    for n in &names {
        assert!(stderr.contains(n), "progress names {n}: {stderr}");
    }

    // As `deploy --allow-delete` would: old is deleted, prod still refused.
    let out = run(
        &s.repo,
        &[
            "--base",
            &s.deployed,
            "--head",
            &s.head,
            "--format",
            "json",
            "--allow-delete",
        ],
        &moto.env(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = json_of(&out);
    assert_eq!(entry(&v, "old")["actions"][0]["action"], "delete-stack");
    assert_eq!(
        entry(&v, "prod")["actions"][0]["reason"]["kind"],
        "protected"
    );
    assert_eq!(v["highlights"][0]["kind"], "delete-stack");
    assert_eq!(v["highlights"][0]["stack"], "old-app");
    assert!(
        describe(&moto, "old-app").contains("CREATE_COMPLETE"),
        "the plan deletes nothing"
    );
}

#[test]
fn markdown_and_text_against_moto_show_the_preview() {
    let Some(moto) = Moto::start() else { return };
    let s = scenario(Some(&moto));
    let out = run(
        &s.repo,
        &[
            "--base",
            &s.deployed,
            "--head",
            &s.head,
            "--format",
            "markdown",
        ],
        &moto.env(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let md = text(&out.stdout);
    assert!(md.starts_with("<!-- gitops-plan -->\n"), "{md}");
    assert!(
        md.contains("**1** create-stack · **2** refuse · **1** update-stack"),
        "{md}"
    );
    assert!(
        md.contains("| `dev-app` | Modify | `Version` | `AWS::SSM::Parameter` | - |"),
        "{md}"
    );
    assert!(
        md.contains("<details><summary><b>prod</b> · deleted · refuse</summary>"),
        "{md}"
    );

    let out = run(
        &s.repo,
        &["--base", &s.deployed, "--head", &s.head],
        &moto.env(),
    );
    let t = text(&out.stdout);
    assert!(
        t.contains("dev-app Modify Version (AWS::SSM::Parameter)"),
        "{t}"
    );
    assert!(t.contains("AppVersion: 1.0.0 -> 1.1.0"), "{t}");
    assert!(!t.contains('\x1b'), "no colour when not a terminal: {t}");
}

#[test]
fn unreachable_aws_is_a_note_not_a_failure() {
    let s = scenario(None);
    // Nothing listens on port 9: every AWS call fails fast.
    let env = vec![
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9".to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_MAX_ATTEMPTS", "1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
    ];
    let out = run(
        &s.repo,
        &["--base", &s.deployed, "--head", &s.head, "--format", "json"],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = json_of(&out);
    let dev = env_of(&v, "dev");
    assert_eq!(dev["observed"], false);
    assert_eq!(dev["actions"][0]["op"], "update");
    assert!(
        dev["preview_note"]
            .as_str()
            .unwrap()
            .starts_with("could not read AWS"),
        "{dev}"
    );
}

fn env_of<'a>(v: &'a Value, name: &str) -> &'a Value {
    entry(v, name)
}

#[test]
fn no_aws_gives_the_git_level_plan() {
    let s = scenario(None);
    let out = run(
        &s.repo,
        &[
            "--base",
            &s.deployed,
            "--head",
            &s.head,
            "--no-aws",
            "--format",
            "json",
            "--exit-code",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let v = json_of(&out);
    assert_eq!(v["aws"], false);
    for (name, label) in [
        ("new", "deploy-stack"),
        ("dev", "deploy-stack"),
        ("old", "refuse"),
        ("prod", "refuse"),
    ] {
        let e = entry(&v, name);
        assert_eq!(e["observed"], false, "{e}");
        assert_eq!(e["actions"][0]["action"], label, "{e}");
        assert_eq!(e["resource_changes"], Value::Null);
        assert_eq!(e["change_sets"], json!([]));
    }
    assert_eq!(entry(&v, "new")["actions"][0]["op"], "create");
    assert_eq!(entry(&v, "dev")["actions"][0]["op"], "update");
    assert_eq!(
        entry(&v, "prod")["actions"][0]["reason"]["kind"],
        "protected"
    );

    // Text, the default: the diff and the value changes; step outputs.
    let tmp = tempfile::tempdir().unwrap();
    let outputs = tmp.path().join("outputs");
    let out = run(
        &s.repo,
        &["--base", &s.deployed, "--head", &s.head, "--no-aws"],
        &[("GITHUB_OUTPUT", outputs.to_str().unwrap().to_string())],
    );
    let written = std::fs::read_to_string(&outputs).unwrap();
    assert_eq!(
        written,
        "has-changes=true\ncounts={\"create-stack\":1,\"refuse\":2,\"update-stack\":1}\n"
    );
    let t = text(&out.stdout);
    assert!(t.contains("git-level plan"), "{t}");
    assert!(t.contains("+parameters: {AppVersion: '1.1.0'}"), "{t}");
    assert!(t.contains("refuse (protected)"), "{t}");

    // Nothing changed: exit 0.
    let out = run(
        &s.repo,
        &[
            "--base",
            &s.head,
            "--head",
            &s.head,
            "--no-aws",
            "--exit-code",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("No environment changed"));

    // A usage error is 1, not 2 ("changes").
    let out = run(&s.repo, &["--no-such-flag"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(&s.repo, &["--no-aws"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("say what to plan"),
        "{}",
        text(&out.stderr)
    );
}

/// A pull_request event for `base`..`head` of pull request 7.
fn pr_event(dir: &Path, base: &str, head: &str) -> Vec<(&'static str, String)> {
    let path = dir.join("event.json");
    std::fs::write(
        &path,
        json!({"number": 7, "pull_request": {"number": 7, "base": {"sha": base, "ref": "main"}, "head": {"sha": head, "ref": "feature"}}})
            .to_string(),
    )
    .unwrap();
    vec![
        ("GITHUB_ACTIONS", "true".into()),
        ("GITHUB_EVENT_NAME", "pull_request".into()),
        ("GITHUB_EVENT_PATH", path.to_str().unwrap().into()),
        ("GITHUB_SHA", head.into()),
        (
            "GITHUB_STEP_SUMMARY",
            dir.join("summary.md").to_str().unwrap().into(),
        ),
        ("GITHUB_RUN_ID", "4242".into()),
        ("GITHUB_SERVER_URL", "https://github.example.com".into()),
    ]
}

fn methods(stub: &GitHubStub) -> Vec<String> {
    stub.requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[test]
fn the_pull_request_comment_is_created_once_then_edited_in_place() {
    let s = scenario(None);
    let tmp = tempfile::tempdir().unwrap();
    let stub = GitHubStub::start(vec![]);
    // Enough earlier comments that the plan's is on the second page.
    for i in 0..120 {
        stub.seed_comment(7, &format!("review comment {i}"));
    }
    stub.seed_comment(8, "<!-- gitops-plan --> another pull request's plan");
    let mut env = pr_event(tmp.path(), &s.deployed, &s.head);
    env.extend(stub.env());

    let out = run(&s.repo, &["--github", "--no-aws"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let first = stub.comments(7);
    assert_eq!(first.len(), 121);
    let plan_comment = first.last().unwrap().clone();
    assert!(plan_comment.body.starts_with("<!-- gitops-plan -->"));
    assert!(plan_comment.body.contains("<b>dev</b>"));
    assert_eq!(
        methods(&stub),
        [
            "GET /repos/acme/app/issues/7/comments?per_page=100&page=1",
            "GET /repos/acme/app/issues/7/comments?per_page=100&page=2",
            "POST /repos/acme/app/issues/7/comments",
        ]
    );
    let auth = stub.requests()[0]
        .header("authorization")
        .unwrap()
        .to_string();
    assert_eq!(auth, format!("Bearer {TOKEN}"));
    let summary = std::fs::read_to_string(tmp.path().join("summary.md")).unwrap();
    assert!(summary.contains("<!-- gitops-plan -->"), "{summary}");

    // A new push to the pull request: the same comment is edited.
    s.repo.write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.2.0'}\ntags: {team: payments}\n",
    );
    let head2 = s.repo.commit("dev 1.2.0");
    let mut env = pr_event(tmp.path(), &s.deployed, &head2);
    env.extend(stub.env());
    let before = stub.requests().len();
    let out = run(&s.repo, &["--github", "--no-aws"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let second: Vec<String> = methods(&stub)[before..].to_vec();
    assert_eq!(
        second,
        [
            "GET /repos/acme/app/issues/7/comments?per_page=100&page=1".to_string(),
            "GET /repos/acme/app/issues/7/comments?per_page=100&page=2".to_string(),
            format!("PATCH /repos/acme/app/issues/comments/{}", plan_comment.id),
        ]
    );
    let after = stub.comments(7);
    assert_eq!(after.len(), 121, "never a second comment");
    let edited = after.iter().find(|c| c.id == plan_comment.id).unwrap();
    assert!(edited.body.contains("1.2.0"), "{}", edited.body);
    assert_eq!(
        stub.requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        1
    );
    assert_eq!(
        stub.comments(8).len(),
        1,
        "other pull requests are untouched"
    );
    for o in [&out.stdout, &out.stderr] {
        assert!(!text(o).contains(TOKEN), "the token is never printed");
    }
}

#[test]
fn a_read_only_token_falls_back_to_the_step_summary() {
    let s = scenario(None);
    let tmp = tempfile::tempdir().unwrap();
    let stub = GitHubStub::start(vec![Route::new(
        "POST",
        "/repos/acme/app/issues/7/comments",
        403,
        json!({"message": "Resource not accessible by integration"}),
    )]);
    let mut env = pr_event(tmp.path(), &s.deployed, &s.head);
    env.extend(stub.env());
    let out = run(&s.repo, &["--github", "--no-aws", "--format", "json"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    json_of(&out); // standard output stays JSON
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("::notice::could not write the plan comment on pull request #7")
            && stderr.contains("step summary"),
        "{stderr}"
    );
    assert!(stub.comments(7).is_empty());
    let summary = std::fs::read_to_string(tmp.path().join("summary.md")).unwrap();
    assert!(summary.contains("<b>dev</b>"), "{summary}");
    assert!(!stderr.contains(TOKEN));
}

#[test]
fn explicit_comment_needs_a_pull_request_and_other_api_errors_fail() {
    let s = scenario(None);
    let out = run(
        &s.repo,
        &[
            "--base",
            &s.deployed,
            "--head",
            &s.head,
            "--no-aws",
            "--comment",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--pr N"),
        "{}",
        text(&out.stderr)
    );

    let stub = GitHubStub::start(vec![Route::new(
        "GET",
        "/repos/acme/app/issues/5/comments",
        500,
        json!({"message": "boom"}),
    )]);
    let out = run(
        &s.repo,
        &[
            "--base",
            &s.deployed,
            "--head",
            &s.head,
            "--no-aws",
            "--comment",
            "--pr",
            "5",
        ],
        &stub.env(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("answered 500"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_plan_too_long_for_a_comment_is_cut_at_an_environment() {
    let repo = repo();
    let base = repo.commit("template");
    // A big template change shows in each of 20 environments' sections.
    let mut big = String::from(SSM_TEMPLATE);
    for i in 0..30 {
        big.push_str(&format!(
            "  Extra{i}:\n    Type: AWS::SSM::Parameter\n    Properties: {{Name: !Sub \"/${{EnvironmentName}}/extra/{i}\", Type: String, Value: \"{i}\"}}\n"
        ));
    }
    repo.write("common/app.yaml", &big);
    for i in 0..20 {
        repo.write(
            &format!("environments/env-{i:02}/environment.yaml"),
            "parameters: {AppVersion: '1.0.0'}\n",
        );
    }
    let head = repo.commit("20 environments");
    let tmp = tempfile::tempdir().unwrap();
    let stub = GitHubStub::start(vec![]);
    let mut env = stub.env();
    env.push((
        "GITHUB_STEP_SUMMARY",
        tmp.path().join("summary.md").to_str().unwrap().to_string(),
    ));
    env.push(("GITHUB_ACTIONS", "true".into()));
    let out = run(
        &repo,
        &[
            "--base",
            &base,
            "--head",
            &head,
            "--no-aws",
            "--comment",
            "--pr",
            "3",
            "--format",
            "markdown",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let full = text(&out.stdout);
    assert!(
        full.chars().count() > 65_536,
        "the plan is long: {}",
        full.len()
    );
    let summary = std::fs::read_to_string(tmp.path().join("summary.md")).unwrap();
    assert_eq!(summary, full, "the step summary has the whole plan");
    let comments = stub.comments(3);
    assert_eq!(comments.len(), 1);
    let body = &comments[0].body;
    assert!(body.chars().count() <= 65_536, "{}", body.chars().count());
    assert!(body.starts_with("<!-- gitops-plan -->"));
    assert_eq!(
        body.matches("<details>").count(),
        body.matches("</details>").count()
    );
    let tail: String = body
        .chars()
        .rev()
        .take(300)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert!(
        tail.contains("of 20 environment sections are shown"),
        "{tail}"
    );
    assert!(
        tail.contains("The full plan is in") && tail.contains("step summary"),
        "{tail}"
    );
    assert!(text(&out.stderr).contains("::notice::the plan is longer than a comment allows"));
}

#[test]
fn an_interrupted_plan_deletes_its_change_sets_before_exiting() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let Some(moto) = Moto::start() else { return };
    let repo = repo();
    let base = repo.commit("template");
    for i in 0..20 {
        repo.write(
            &format!("environments/env-{i:02}/environment.yaml"),
            "parameters: {AppVersion: '1.0.0'}\n",
        );
    }
    let head = repo.commit("20 environments");
    let mut child = gitops()
        .args(["plan", "--repo", repo.path().to_str().unwrap()])
        .args(["--base", &base, "--head", &head, "--concurrency", "1"])
        .envs(moto.env())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no preview started: {seen}"
        );
        seen.push_str(&line);
        if line.contains("previewing") {
            break;
        }
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert!(rest.contains("no change set was left behind"), "{rest}");

    let stacks = moto.query(&[("Action", "DescribeStacks"), ("Version", "2010-05-15")]);
    assert!(!stacks.contains("REVIEW_IN_PROGRESS"), "{stacks}");
    for i in 0..20 {
        let list = change_sets(&moto, &format!("env-{i:02}-app"));
        assert!(!list.contains("gitops-plan-"), "{list}");
    }
}
