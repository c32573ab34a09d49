//! `gitops status` and `gitops drift` end to end against the moto emulator:
//! stacks deployed by the tool, then changed behind its back. moto has no
//! drift-detection API, so these runs use --skip-resource-drift (the
//! resource-drift paths are covered with the crate's AWS fake). Issues and
//! the webhook go to local HTTP stand-ins.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use gitops_e2e::bin::gitops;
use gitops_e2e::fixture::{describe, entry, json_of, streams, update_out_of_band, SSM_TEMPLATE};
use gitops_e2e::git::GitRepo;
use gitops_e2e::github_stub::{GitHubStub, Route, TOKEN};
use gitops_e2e::moto::Moto;
use serde_json::{json, Value};

/// A repository with `dev` (and the given extra environments), all at 1.0.0.
fn repo_with(envs: &[(&str, &str)]) -> (GitRepo, String) {
    let repo = GitRepo::new();
    repo.write(
        "gitops.yaml",
        "version: 1\nid: acme/e2e\nstack: {template: common/app.yaml}\n",
    )
    .write("common/app.yaml", SSM_TEMPLATE);
    for (name, extra) in envs {
        repo.write(
            &format!("environments/{name}/environment.yaml"),
            &format!("parameters: {{AppVersion: '1.0.0'}}\ntags: {{team: pay}}\n{extra}"),
        );
    }
    let head = repo.commit("environments");
    (repo, head)
}

fn run(repo: &GitRepo, moto: &Moto, args: &[&str], env: &[(&str, String)]) -> Output {
    gitops()
        .args(args)
        .args(["--repo", repo.path().to_str().unwrap()])
        .env_remove("GITOPS_NOTIFY_URL")
        .envs(moto.env())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap()
}

fn deploy(repo: &GitRepo, moto: &Moto, envs: &[&str]) {
    let mut args = vec!["deploy"];
    for e in envs {
        args.extend(["--environment", e]);
    }
    let out = run(repo, moto, &args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
}

/// Changes a parameter behind the tool's back, as a person in the console
/// would, keeping the stack's tags.
fn set_version(moto: &Moto, stack: &str, version: &str) {
    update_out_of_band(moto, stack, version, |_, value| Some(value));
}

fn drift_json(
    repo: &GitRepo,
    moto: &Moto,
    extra: &[&str],
    env: &[(&str, String)],
) -> (Output, Value) {
    let mut args = vec!["drift", "--skip-resource-drift", "--format", "json"];
    args.extend(extra);
    let out = run(repo, moto, &args, env);
    let v = json_of(&out);
    (out, v)
}

#[test]
fn an_out_of_band_parameter_change_is_drift_until_redeployed() {
    let Some(moto) = Moto::start() else { return };
    let (repo, head) = repo_with(&[("dev", ""), ("prod", "")]);
    deploy(&repo, &moto, &["dev", "prod"]);

    let out = run(&repo, &moto, &["status", "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let v = json_of(&out);
    assert_eq!(v["commit"], head.as_str());
    for name in ["dev", "prod"] {
        let e = entry(&v, name);
        assert_eq!(
            e["git_version"],
            json!({"parameters.AppVersion": "1.0.0"}),
            "{e}"
        );
        assert_eq!(
            e["deployed_version"],
            json!({"parameters.AppVersion": "1.0.0"}),
            "{e}"
        );
        assert_eq!(e["commit"], head.as_str());
        assert_eq!(e["stack_status"], "CREATE_COMPLETE");
        assert_eq!(e["pipeline"], Value::Null);
        assert_eq!(e["sync"], "Synced");
        assert_eq!(e["health"], "Healthy");
    }
    let (out, v) = drift_json(&repo, &moto, &[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    assert_eq!(v["in_sync"], true);

    set_version(&moto, "dev-app", "9.9.9");

    // text: exit 2, the environment and the parameter named
    let out = run(&repo, &moto, &["drift", "--skip-resource-drift"], &[]);
    let shown = streams(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(shown.contains("dev: OutOfSync"), "{shown}");
    assert!(
        shown.contains("parameters.AppVersion expected 1.0.0, actual 9.9.9"),
        "{shown}"
    );
    assert!(shown.contains("resource drift was not checked"), "{shown}");

    // JSON, with the step outputs
    let outputs = tempfile::NamedTempFile::new().unwrap();
    let gh = [(
        "GITHUB_OUTPUT",
        outputs.path().to_str().unwrap().to_string(),
    )];
    let (out, v) = drift_json(&repo, &moto, &[], &gh);
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    assert_eq!(v["in_sync"], false);
    assert_eq!(v["resource_drift_checked"], false);
    assert_eq!(v["orphans"], json!([]));
    let dev = entry(&v, "dev");
    assert_eq!(dev["sync"], "OutOfSync");
    assert_eq!(dev["health"], "Healthy");
    assert_eq!(dev["error"], Value::Null);
    assert_eq!(dev["reasons"][0]["kind"], "parameter");
    assert_eq!(dev["reasons"][0]["key"], "parameters.AppVersion");
    assert_eq!(dev["reasons"][0]["expected"], "1.0.0");
    assert_eq!(dev["reasons"][0]["actual"], "9.9.9");
    assert_eq!(dev["deployed_version"]["parameters.AppVersion"], "9.9.9");
    assert_eq!(entry(&v, "prod")["sync"], "Synced");
    let written = std::fs::read_to_string(outputs.path()).unwrap();
    assert!(written.contains("in-sync=false\n"), "{written}");
    assert!(written.contains("drifted=[\"dev\"]\n"), "{written}");

    let out = run(&repo, &moto, &["status", "--format", "json"], &[]);
    assert_eq!(entry(&json_of(&out), "dev")["sync"], "OutOfSync");

    // redeploying what git says brings it back
    deploy(&repo, &moto, &["dev"]);
    let (out, v) = drift_json(&repo, &moto, &[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    assert_eq!(v["in_sync"], true);
    assert_eq!(
        entry(&v, "dev")["deployed_version"]["parameters.AppVersion"],
        "1.0.0"
    );
}

#[test]
fn missing_stacks_orphans_and_changed_tags() {
    let Some(moto) = Moto::start() else { return };
    let (repo, head) = repo_with(&[("dev", ""), ("qa", "")]);
    deploy(&repo, &moto, &["dev"]);
    // a stack of this repository that no environment declares any more, and someone else's
    for (name, owner) in [("old-app", "acme/e2e"), ("theirs-app", "someone/else")] {
        let xml = moto.query(&[
            ("Action", "CreateStack"),
            ("StackName", name),
            ("TemplateBody", "Resources:\n  T: {Type: AWS::SNS::Topic}\n"),
            ("Tags.member.1.Key", "gitops:managed-by"),
            ("Tags.member.1.Value", owner),
            ("Version", "2010-05-15"),
        ]);
        assert!(xml.contains("<StackId>"), "{xml}");
    }
    // a tag changed behind the tool's back
    let xml = moto.query(&[
        ("Action", "UpdateStack"),
        ("StackName", "dev-app"),
        ("UsePreviousTemplate", "true"),
        ("Tags.member.1.Key", "team"),
        ("Tags.member.1.Value", "x"),
        ("Tags.member.2.Key", "gitops:managed-by"),
        ("Tags.member.2.Value", "acme/e2e"),
        ("Tags.member.3.Key", "gitops:environment"),
        ("Tags.member.3.Value", "dev"),
        ("Tags.member.4.Key", "gitops:commit"),
        ("Tags.member.4.Value", &head),
        ("Version", "2010-05-15"),
    ]);
    assert!(xml.contains("<StackId>"), "{xml}");

    let (out, v) = drift_json(&repo, &moto, &[], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    let qa = entry(&v, "qa");
    assert_eq!(qa["sync"], "OutOfSync");
    assert_eq!(qa["health"], "Missing");
    assert_eq!(qa["stack_status"], Value::Null);
    assert_eq!(qa["reasons"][0]["message"], "stack missing (qa-app)");
    let dev = entry(&v, "dev");
    assert_eq!(dev["sync"], "OutOfSync");
    assert_eq!(
        dev["reasons"][0]["message"],
        "tags.team expected pay, actual x"
    );
    assert_eq!(v["orphans"], json!(["old-app"]), "{v}");

    let out = run(&repo, &moto, &["drift", "--skip-resource-drift"], &[]);
    let shown = streams(&out);
    assert!(
        shown.contains("orphan stacks (tagged gitops:managed-by=acme/e2e"),
        "{shown}"
    );
    assert!(shown.contains("  old-app"), "{shown}");
    assert!(!shown.contains("theirs-app"), "{shown}");

    let out = run(
        &repo,
        &moto,
        &["status", "--format", "json", "--environment", "qa"],
        &[],
    );
    let v = json_of(&out);
    assert_eq!(v["environments"].as_array().unwrap().len(), 1);
    assert_eq!(entry(&v, "qa")["health"], "Missing");
    assert_eq!(entry(&v, "qa")["deployed_version"], json!({}));
}

#[test]
fn resource_drift_against_an_endpoint_without_it_is_unknown() {
    let Some(moto) = Moto::start() else { return };
    let (repo, _) = repo_with(&[("dev", "")]);
    deploy(&repo, &moto, &["dev"]);
    let out = run(&repo, &moto, &["drift", "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", streams(&out));
    let v = json_of(&out);
    assert_eq!(v["resource_drift_checked"], false, "{v}");
    let dev = entry(&v, "dev");
    assert_eq!(dev["sync"], "Unknown");
    assert_eq!(dev["resource_drift_checked"], false);
    let error = dev["error"].as_str().unwrap();
    assert!(
        error.contains("DetectStackDrift") && error.contains("--skip-resource-drift"),
        "{error}"
    );
    // One line, not the raw answer or the SDK's debug output.
    for dump in ["\n", "{", "<html", "<?xml", "Response"] {
        assert!(!error.contains(dump), "{dump}: {error}");
    }
}

#[test]
fn issues_are_kept_one_per_environment_and_the_webhook_is_told() {
    let Some(moto) = Moto::start() else { return };
    let (repo, _) = repo_with(&[("dev", ""), ("prod", "")]);
    deploy(&repo, &moto, &["dev", "prod"]);
    set_version(&moto, "dev-app", "9.9.9");
    let hook_path = "/services/T000/B000/s3cr3tw3bh00k";
    let issues = "/repos/acme/app/issues";
    let secrets = |out: &Output| {
        let all = streams(out);
        assert!(!all.contains(TOKEN), "the token is printed: {all}");
        assert!(
            !all.contains("s3cr3tw3bh00k"),
            "the webhook URL is printed: {all}"
        );
    };

    // first run: no issue yet, so one is opened; the webhook gets the summary
    let gh = GitHubStub::start(vec![
        Route::new("GET", issues, 200, json!([])),
        Route::new(
            "POST",
            issues,
            201,
            json!({"number": 7, "html_url": "https://github.com/acme/app/issues/7", "title": "t", "body": "b"}),
        ),
    ]);
    let hook = GitHubStub::start(vec![Route::new("POST", hook_path, 200, json!({}))]);
    let mut env_vars = gh.env();
    env_vars.push(("GITOPS_NOTIFY_URL", format!("{}{hook_path}", hook.url)));
    let (out, _) = drift_json(&repo, &moto, &["--open-issues"], &env_vars);
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    secrets(&out);
    let reqs = gh.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].method, "GET");
    assert!(
        reqs[0].path.contains("labels=drift") && reqs[0].path.contains("state=open"),
        "{}",
        reqs[0].path
    );
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let created = reqs[1].json();
    assert_eq!(reqs[1].method, "POST");
    assert_eq!(created["labels"], json!(["drift"]));
    let body = created["body"].as_str().unwrap().to_string();
    assert!(body.starts_with("<!-- gitops-drift:dev -->"), "{body}");
    assert!(
        body.contains("parameters.AppVersion expected 1.0.0, actual 9.9.9"),
        "{body}"
    );
    let posted = hook.requests();
    assert_eq!(posted.len(), 1, "{posted:?}");
    let message = posted[0].json()["text"].as_str().unwrap().to_string();
    assert!(
        message.contains("1 out of sync") && message.contains("dev: OutOfSync"),
        "{message}"
    );

    // second run, the drift changed: the same issue is updated, no duplicate
    set_version(&moto, "dev-app", "8.8.8");
    let open = json!([{"number": 7, "title": "t", "body": body, "html_url": "u"},
                      {"number": 8, "title": "pr", "body": body, "html_url": "u", "pull_request": {}}]);
    let gh = GitHubStub::start(vec![
        Route::new("GET", issues, 200, open),
        Route::new("PATCH", &format!("{issues}/7"), 200, json!({"number": 7})),
    ]);
    let (out, _) = drift_json(&repo, &moto, &["--open-issues"], &gh.env());
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    secrets(&out);
    let reqs = gh.requests();
    assert!(
        !reqs.iter().any(|r| r.method == "POST"),
        "no duplicate: {reqs:?}"
    );
    let patches: Vec<_> = reqs.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 1, "{reqs:?}");
    assert_eq!(patches[0].path, format!("{issues}/7"));
    let body = patches[0].json()["body"].as_str().unwrap().to_string();
    assert!(body.contains("actual 8.8.8"), "{body}");

    // the same drift again: the issue is already right, nothing is written
    let gh = GitHubStub::start(vec![Route::new(
        "GET",
        issues,
        200,
        json!([{"number": 7, "title": "t", "body": body, "html_url": "u"}]),
    )]);
    let (out, _) = drift_json(&repo, &moto, &["--open-issues"], &gh.env());
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    assert_eq!(gh.requests().len(), 1, "{:?}", gh.requests());

    // back in sync: commented on and closed; the webhook is not bothered
    deploy(&repo, &moto, &["dev"]);
    let gh = GitHubStub::start(vec![
        Route::new(
            "GET",
            issues,
            200,
            json!([{"number": 7, "title": "t", "body": body, "html_url": "u"}]),
        ),
        Route::new(
            "POST",
            &format!("{issues}/7/comments"),
            201,
            json!({"id": 1}),
        ),
        Route::new("PATCH", &format!("{issues}/7"), 200, json!({"number": 7})),
    ]);
    let hook = GitHubStub::start(vec![Route::new("POST", hook_path, 200, json!({}))]);
    let mut env_vars = gh.env();
    env_vars.push(("GITOPS_NOTIFY_URL", format!("{}{hook_path}", hook.url)));
    let (out, v) = drift_json(&repo, &moto, &["--open-issues"], &env_vars);
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    assert_eq!(v["in_sync"], true);
    secrets(&out);
    let reqs = gh.requests();
    let comment = reqs.iter().find(|r| r.method == "POST").expect("a comment");
    assert_eq!(comment.path, format!("{issues}/7/comments"));
    assert!(comment.json()["body"]
        .as_str()
        .unwrap()
        .contains("back in sync"));
    let close = reqs.iter().find(|r| r.method == "PATCH").expect("a close");
    assert_eq!(close.json()["state"], "closed");
    assert!(hook.requests().is_empty(), "nothing to notify when in sync");
}

#[test]
fn a_failing_webhook_is_an_error_that_never_shows_the_url() {
    let Some(moto) = Moto::start() else { return };
    let (repo, _) = repo_with(&[("dev", "")]);
    deploy(&repo, &moto, &["dev"]);
    set_version(&moto, "dev-app", "9.9.9");
    let hook = GitHubStub::start(vec![]); // answers 404 to everything
    let url = format!("{}/services/T1/B1/an0th3rs3cr3t", hook.url);
    let out = run(
        &repo,
        &moto,
        &["drift", "--skip-resource-drift", "--notify", &url],
        &[],
    );
    let all = streams(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("the webhook at 127.0.0.1 answered HTTP 404"),
        "{all}"
    );
    assert!(!all.contains("an0th3rs3cr3t"), "{all}");
}

#[test]
fn remediate_redeploys_only_environments_that_opt_in() {
    let Some(moto) = Moto::start() else { return };
    let (repo, _) = repo_with(&[("dev", "auto-remediate: true\n"), ("prod", "")]);
    deploy(&repo, &moto, &["dev", "prod"]);
    set_version(&moto, "dev-app", "9.9.9");
    set_version(&moto, "prod-app", "9.9.9");
    let (out, v) = drift_json(&repo, &moto, &["--remediate"], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "the drift found is reported: {}",
        streams(&out)
    );
    assert_eq!(
        entry(&v, "dev")["remediation"]["action"],
        "redeployed",
        "{v}"
    );
    assert_eq!(entry(&v, "prod")["remediation"]["action"], "skipped");
    assert!(entry(&v, "prod")["remediation"]["message"]
        .as_str()
        .unwrap()
        .contains("auto-remediate"));
    let param = |stack: &str| {
        let xml = describe(&moto, stack);
        let at = xml.find("<ParameterKey>AppVersion</ParameterKey>").unwrap();
        xml[at..]
            .split("<ParameterValue>")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(param("dev-app"), "1.0.0", "dev was redeployed from git");
    assert_eq!(param("prod-app"), "9.9.9", "prod was left alone");
    let (out, v) = drift_json(&repo, &moto, &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(entry(&v, "dev")["sync"], "Synced");
}

#[test]
fn the_status_board_is_one_escaped_page_and_the_summary_a_flowchart() {
    let Some(moto) = Moto::start() else { return };
    let (repo, _) = repo_with(&[("dev", ""), ("prod", ""), ("sandbox", "")]);
    repo.write(
        "gitops.yaml",
        "version: 1\nid: acme/e2e\nstack: {template: common/app.yaml}\npromotion: {order: [dev, prod], keys: [parameters.AppVersion]}\n",
    );
    repo.commit("promotion order");
    deploy(&repo, &moto, &["dev", "sandbox"]);
    set_version(&moto, "dev-app", "<script>alert(1)</script>");
    let xml = moto.query(&[
        ("Action", "CreateStack"),
        ("StackName", "old-app"),
        ("TemplateBody", "Resources:\n  T: {Type: AWS::SNS::Topic}\n"),
        ("Tags.member.1.Key", "gitops:managed-by"),
        ("Tags.member.1.Value", "acme/e2e"),
        ("Version", "2010-05-15"),
    ]);
    assert!(xml.contains("<StackId>"), "{xml}");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("board.html");
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "").unwrap();

    // drift writes the page besides its usual output and summary
    let out = run(
        &repo,
        &moto,
        &[
            "drift",
            "--skip-resource-drift",
            "--format",
            "json",
            "--html",
            page.to_str().unwrap(),
        ],
        &[("GITHUB_STEP_SUMMARY", summary.to_str().unwrap().to_string())],
    );
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    assert_eq!(json_of(&out)["orphans"], json!(["old-app"]));
    assert!(
        streams(&out).contains(&format!("wrote the status board to {}", page.display())),
        "{}",
        streams(&out)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(!html.contains("<script>alert"), "unescaped: {html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("no {s} in {html}"));
    assert!(at("<h3>dev</h3>") < at("<h3>prod</h3>"), "promotion order");
    assert!(
        at("id=\"outside\"") < at("<h3>sandbox</h3>"),
        "outside the order"
    );
    assert!(html.contains("<code>old-app</code>"), "the orphan");
    assert!(html.contains("</i> Missing</span>"), "prod has no stack");
    assert!(html.contains("</i> OutOfSync</span>"));
    assert!(html.contains("Environments of <span class=\"repo\">acme/e2e</span>"));
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("```mermaid\nflowchart LR\n"), "{md}");
    assert!(md.contains("e0 --> e1"), "{md}");
    assert!(md.contains("#60;script#62;"), "escaped in the node: {md}");
    let dev_row = md.find("| `dev`").unwrap();
    let prod_row = md.find("| `prod`").unwrap();
    let sandbox_row = md.find("| `sandbox` (outside the order)").unwrap();
    assert!(dev_row < prod_row && prod_row < sandbox_row, "{md}");

    // status --format html prints the page itself
    let out = run(&repo, &moto, &["status", "--format", "html"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let html = String::from_utf8(out.stdout).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
    assert!(html.contains("by <code>gitops status</code>"));
    assert!(!html.contains("<script>alert"));

    // other commands refuse it
    let out = run(&repo, &moto, &["envs", "--format", "html"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    assert!(streams(&out).contains("--format html is for `gitops status` and `gitops drift`"));
}

#[test]
fn an_orphan_stack_gets_its_own_issue_closed_once_the_stack_is_gone() {
    let Some(moto) = Moto::start() else { return };
    let (repo, _) = repo_with(&[("dev", "")]);
    deploy(&repo, &moto, &["dev"]);
    // A stack of this repository that no environment declares any more.
    let xml = moto.query(&[
        ("Action", "CreateStack"),
        ("StackName", "old-app"),
        ("TemplateBody", "Resources:\n  T: {Type: AWS::SNS::Topic}\n"),
        ("Tags.member.1.Key", "gitops:managed-by"),
        ("Tags.member.1.Value", "acme/e2e"),
        ("Version", "2010-05-15"),
    ]);
    assert!(xml.contains("<StackId>"), "{xml}");
    let issues = "/repos/acme/app/issues";

    // First run: the orphan gets an issue of its own (dev is in sync: none for it).
    let gh = GitHubStub::start(vec![
        Route::new("GET", issues, 200, json!([])),
        Route::new(
            "POST",
            issues,
            201,
            json!({"number": 9, "html_url": "https://github.com/acme/app/issues/9", "title": "t", "body": "b"}),
        ),
    ]);
    let (out, v) = drift_json(&repo, &moto, &["--open-issues"], &gh.env());
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    assert_eq!(v["orphans"], json!(["old-app"]), "{v}");
    let reqs = gh.requests();
    let posts: Vec<_> = reqs.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 1, "{reqs:?}");
    let created = posts[0].json();
    assert_eq!(posts[0].path, issues);
    assert_eq!(created["labels"], json!(["drift"]));
    assert!(
        created["title"].as_str().unwrap().contains("`old-app`"),
        "{created}"
    );
    let body = created["body"].as_str().unwrap().to_string();
    assert!(
        body.starts_with("<!-- gitops-drift-orphan:old-app -->"),
        "{body}"
    );
    assert!(body.contains("--base deployed --allow-delete"), "{body}");

    // Second run, its issue open: nothing is written.
    let open = json!([{"number": 9, "title": "t", "body": body, "html_url": "u"}]);
    let gh = GitHubStub::start(vec![Route::new("GET", issues, 200, open.clone())]);
    let (out, _) = drift_json(&repo, &moto, &["--open-issues"], &gh.env());
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    assert_eq!(gh.requests().len(), 1, "{:?}", gh.requests());

    // The stack is gone: its issue is commented on and closed.
    moto.query(&[
        ("Action", "DeleteStack"),
        ("StackName", "old-app"),
        ("Version", "2010-05-15"),
    ]);
    let gh = GitHubStub::start(vec![
        Route::new("GET", issues, 200, open),
        Route::new(
            "POST",
            &format!("{issues}/9/comments"),
            201,
            json!({"id": 1}),
        ),
        Route::new("PATCH", &format!("{issues}/9"), 200, json!({"number": 9})),
    ]);
    let (out, v) = drift_json(&repo, &moto, &["--open-issues"], &gh.env());
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    assert_eq!(v["orphans"], json!([]), "{v}");
    let reqs = gh.requests();
    let comment = reqs.iter().find(|r| r.method == "POST").expect("a comment");
    assert_eq!(comment.path, format!("{issues}/9/comments"));
    assert!(
        comment.json()["body"]
            .as_str()
            .unwrap()
            .contains("`old-app` is gone"),
        "{reqs:?}"
    );
    let close = reqs.iter().find(|r| r.method == "PATCH").expect("a close");
    assert_eq!(close.path, format!("{issues}/9"));
    assert_eq!(close.json()["state"], "closed");
}
