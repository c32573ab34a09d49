//! End-to-end tests of `gitops detect`, on throwaway git repositories with
//! their own layout: the GitOps root in `infra/`, environments under
//! `deploy/targets/<name>/target.yaml`, set through gitops.yaml.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use gitops_e2e::bin::gitops;
use gitops_e2e::git::GitRepo;
use serde_json::{json, Value};

const ZERO: &str = "0000000000000000000000000000000000000000";

const CONFIG: &str = r#"version: 1
environments:
  path: deploy/targets
  file: target.yaml
shared: ["shared/**"]
ignore: ["**/*.md", "docs/**"]
stack:
  name: "{environment}-svc"
  template: templates/app.yaml
defaults:
  region: eu-west-1
  parameters: { LogLevel: INFO }
"#;

const TEMPLATE: &str = "Parameters:\n  LogLevel: { Type: String }\n  AppVersion: { Type: String }\nResources:\n  Topic: { Type: AWS::SNS::Topic }\n";

fn env_file(version: &str) -> String {
    format!("parameters:\n  AppVersion: \"{version}\"\n")
}

/// A repository whose GitOps root is `infra/`, with environments dev, qa
/// (region us-west-2) and prod (its own template), committed once.
fn layout() -> (GitRepo, String) {
    let repo = GitRepo::new();
    repo.write("README.md", "outside the GitOps root\n")
        .write("infra/gitops.yaml", CONFIG)
        .write("infra/templates/app.yaml", TEMPLATE)
        .write("infra/templates/special.yaml", TEMPLATE)
        .write("infra/shared/macros.yaml", "a: 1\n")
        .write("infra/docs/guide.txt", "guide\n")
        .write("infra/deploy/targets/dev/target.yaml", &env_file("1.0"))
        .write("infra/deploy/targets/dev/config/extra.json", "{}\n")
        .write(
            "infra/deploy/targets/qa/target.yaml",
            &format!("{}region: us-west-2\n", env_file("1.0")),
        )
        .write(
            "infra/deploy/targets/prod/target.yaml",
            &format!(
                "template-file-path: templates/special.yaml\n{}",
                env_file("0.9")
            ),
        );
    let first = repo.commit("layout");
    (repo, first)
}

fn root(repo: &GitRepo) -> PathBuf {
    repo.path().join("infra")
}

struct Run {
    code: Option<i32>,
    json: Value,
    stdout: String,
    stderr: String,
}

fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = gitops();
    cmd.arg("detect")
        .arg("--repo")
        .arg(dir)
        .args(args)
        // `git fetch` must not read the user's configuration either.
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("gitops runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Run {
        code: out.status.code(),
        json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn detect(repo: &GitRepo, base: &str, head: &str) -> Run {
    let r = run_in(
        &root(repo),
        &["--base", base, "--head", head, "--format", "json"],
        &[],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    r
}

/// `(created, updated, deleted, unchanged)` from a JSON report.
fn sets(v: &Value) -> [Vec<String>; 4] {
    ["created", "updated", "deleted", "unchanged"].map(|k| {
        v[k].as_array()
            .unwrap_or_else(|| panic!("no `{k}` in {v}"))
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    })
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn expect_sets(
    v: &Value,
    created: &[&str],
    updated: &[&str],
    deleted: &[&str],
    unchanged: &[&str],
) {
    assert_eq!(
        sets(v),
        [
            names(created),
            names(updated),
            names(deleted),
            names(unchanged)
        ],
        "{v:#}"
    );
    // One matrix job per affected environment, in name order.
    let mut affected: Vec<&str> = created
        .iter()
        .chain(updated)
        .chain(deleted)
        .copied()
        .collect();
    affected.sort();
    let jobs: Vec<&str> = v["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["environment"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, affected, "{v:#}");
}

fn reasons(v: &Value, env: &str) -> Vec<(String, String)> {
    let e = v["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == env)
        .unwrap_or_else(|| panic!("no environment {env} in {v}"));
    e["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["why"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn reason(path: &str, why: &str) -> (String, String) {
    (path.to_string(), why.to_string())
}

#[test]
fn acceptance_every_kind_of_change_at_once() {
    let (repo, a) = layout();
    repo.write(
        "infra/deploy/targets/feature-x/target.yaml",
        &env_file("2.0"),
    )
    .rename("infra/deploy/targets/qa", "infra/deploy/targets/test")
    .write("infra/deploy/targets/dev/config/extra.json", "{\"k\": 1}\n")
    .write("infra/deploy/targets/prod/NOTES.md", "ignored\n")
    .write("README.md", "outside the root\n");
    let b = repo.commit("change");
    let r = detect(&repo, &a, &b);
    expect_sets(
        &r.json,
        &["feature-x", "test"],
        &["dev"],
        &["qa"],
        &["prod"],
    );
    assert_eq!(r.json["base"], a);
    assert_eq!(r.json["head"], b);
    let job = &r.json["matrix"]["include"][0];
    assert_eq!(
        job,
        &json!({"environment": "dev", "change": "updated", "stack": "dev-svc", "region": "eu-west-1"})
    );
    // The deleted environment is described as it was at base.
    let qa = r.json["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "qa")
        .unwrap();
    assert_eq!(qa["change"], "deleted");
    assert_eq!(qa["stack"], "qa-svc");
    assert_eq!(qa["region"], "us-west-2");
    assert_eq!(
        reasons(&r.json, "dev"),
        [reason("deploy/targets/dev/config/extra.json", "folder")]
    );
}

#[test]
fn renamed_folder_is_old_deleted_and_new_created() {
    let (repo, a) = layout();
    repo.rename(
        "infra/deploy/targets/dev",
        "infra/deploy/targets/development",
    );
    let b = repo.commit("rename dev");
    let r = detect(&repo, &a, &b);
    expect_sets(&r.json, &["development"], &[], &["dev"], &["prod", "qa"]);
    assert_eq!(
        reasons(&r.json, "development"),
        [
            reason("deploy/targets/development/config/extra.json", "folder"),
            reason("deploy/targets/development/target.yaml", "folder"),
        ]
    );
}

#[test]
fn deleted_folder() {
    let (repo, a) = layout();
    repo.remove("infra/deploy/targets/dev");
    let b = repo.commit("delete dev");
    let r = detect(&repo, &a, &b);
    expect_sets(&r.json, &[], &[], &["dev"], &["prod", "qa"]);
    // Only the environment file removed: the folder is no environment any more.
    let (repo, a) = layout();
    repo.remove("infra/deploy/targets/qa/target.yaml")
        .write("infra/deploy/targets/qa/leftover.txt", "x\n");
    let b = repo.commit("delete qa's file");
    let r = detect(&repo, &a, &b);
    expect_sets(&r.json, &[], &[], &["qa"], &["dev", "prod"]);
}

#[test]
fn shared_glob_updates_every_environment() {
    let (repo, a) = layout();
    repo.write("infra/shared/macros.yaml", "a: 2\n");
    let b = repo.commit("shared");
    let r = detect(&repo, &a, &b);
    expect_sets(&r.json, &[], &["dev", "prod", "qa"], &[], &[]);
    assert_eq!(
        reasons(&r.json, "prod"),
        [reason("shared/macros.yaml", "shared")]
    );
}

#[test]
fn ignore_glob_never_counts() {
    let (repo, a) = layout();
    repo.write("infra/deploy/targets/dev/README.md", "notes\n")
        .write("infra/shared/README.md", "about shared\n")
        .write("infra/docs/guide.txt", "new guide\n")
        .write("infra/docs/more/page.txt", "page\n");
    let b = repo.commit("docs only");
    let r = detect(&repo, &a, &b);
    expect_sets(&r.json, &[], &[], &[], &["dev", "prod", "qa"]);
    assert_eq!(r.json["matrix"], json!({"include": []}));
}

#[test]
fn template_used_by_only_some_environments() {
    let (repo, a) = layout();
    repo.write("infra/templates/special.yaml", &format!("{TEMPLATE}# v2\n"));
    let b = repo.commit("special template");
    let r = detect(&repo, &a, &b);
    expect_sets(&r.json, &[], &["prod"], &[], &["dev", "qa"]);
    assert_eq!(
        reasons(&r.json, "prod"),
        [reason("templates/special.yaml", "template")]
    );
    repo.write("infra/templates/app.yaml", &format!("{TEMPLATE}# v2\n"));
    let c = repo.commit("app template");
    let r = detect(&repo, &b, &c);
    expect_sets(&r.json, &[], &["dev", "qa"], &[], &["prod"]);
}

#[test]
fn gitops_yaml_edit_that_changes_nothing_resolved() {
    let (repo, a) = layout();
    let reformatted = format!(
        "# Settings of this repository.\n{}",
        CONFIG.replace(
            "defaults:\n  region: eu-west-1",
            "defaults:\n  region: eu-west-1   # the default region"
        )
    );
    repo.write("infra/gitops.yaml", &reformatted);
    let b = repo.commit("comment");
    let r = detect(&repo, &a, &b);
    expect_sets(&r.json, &[], &[], &[], &["dev", "prod", "qa"]);

    // A real change of the defaults updates only the environments it reaches:
    // qa sets its own region.
    repo.write(
        "infra/gitops.yaml",
        &reformatted.replace("region: eu-west-1", "region: eu-central-1"),
    );
    let c = repo.commit("region");
    let r = detect(&repo, &b, &c);
    expect_sets(&r.json, &[], &["dev", "prod"], &[], &["qa"]);
    assert_eq!(reasons(&r.json, "dev"), [reason("gitops.yaml", "config")]);
}

#[test]
fn text_output_and_exit_codes() {
    let (repo, a) = layout();
    repo.write("infra/deploy/targets/dev/target.yaml", &env_file("1.1"));
    let b = repo.commit("bump dev");
    let dir = root(&repo);
    let r = run_in(&dir, &["--base", &a, "--head", &b], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout.contains(
            "dev          updated  dev-svc  eu-west-1  deploy/targets/dev/target.yaml (folder)"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("0 created, 1 updated, 0 deleted, 2 unchanged"),
        "{}",
        r.stdout
    );
    let r = run_in(&dir, &["--base", &a, "--head", &b, "--exit-code"], &[]);
    assert_eq!(r.code, Some(2));
    let r = run_in(&dir, &["--base", &b, "--head", &b, "--exit-code"], &[]);
    assert_eq!(r.code, Some(0));
    // --head defaults to HEAD.
    let r = run_in(&dir, &["--base", &a, "--format", "json"], &[]);
    assert_eq!(r.json["head"], b);
    // Errors exit with 1.
    let r = run_in(&dir, &["--base", "no-such-rev"], &[]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("no-such-rev"), "{}", r.stderr);
    let r = run_in(&dir, &[], &[]);
    assert_eq!(r.code, Some(1), "a usage error: {}", r.stderr);
}

// --- GitHub events ---------------------------------------------------------

struct Github {
    _tmp: tempfile::TempDir,
    event: PathBuf,
    output: PathBuf,
    summary: PathBuf,
}

impl Github {
    fn new(payload: &Value) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let event = tmp.path().join("event.json");
        std::fs::write(&event, payload.to_string()).unwrap();
        Self {
            event,
            output: tmp.path().join("output"),
            summary: tmp.path().join("summary.md"),
            _tmp: tmp,
        }
    }

    fn run(&self, dir: &Path, name: &str, extra: &[&str]) -> Run {
        let mut args = vec!["--github", "--format", "json"];
        args.extend_from_slice(extra);
        run_in(
            dir,
            &args,
            &[
                ("GITHUB_EVENT_NAME", name),
                ("GITHUB_EVENT_PATH", self.event.to_str().unwrap()),
                ("GITHUB_OUTPUT", self.output.to_str().unwrap()),
                ("GITHUB_STEP_SUMMARY", self.summary.to_str().unwrap()),
            ],
        )
    }

    /// The step outputs written, by name (heredocs decoded).
    fn outputs(&self) -> std::collections::BTreeMap<String, String> {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let mut out = std::collections::BTreeMap::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if let Some((name, delim)) = line.split_once("<<") {
                let mut value = Vec::new();
                for l in lines.by_ref() {
                    if l == delim {
                        break;
                    }
                    value.push(l);
                }
                out.insert(name.to_string(), value.join("\n"));
            } else if let Some((name, value)) = line.split_once('=') {
                out.insert(name.to_string(), value.to_string());
            }
        }
        out
    }
}

/// main: A (layout) - B (bumps qa) - C (bumps prod); feature: B - F1 (bumps dev).
/// Returns the repository (on `feature`) and the commits.
fn history() -> (GitRepo, [String; 4]) {
    let (repo, a) = layout();
    repo.write(
        "infra/deploy/targets/qa/target.yaml",
        &format!("{}region: us-west-2\n", env_file("1.1")),
    );
    let b = repo.commit("bump qa");
    repo.write(
        "infra/deploy/targets/prod/target.yaml",
        &format!(
            "template-file-path: templates/special.yaml\n{}",
            env_file("1.0")
        ),
    );
    let c = repo.commit("bump prod");
    repo.branch("feature", &b);
    repo.write("infra/deploy/targets/dev/target.yaml", &env_file("1.1"));
    let f1 = repo.commit("bump dev");
    (repo, [a, b, c, f1])
}

fn push(before: &str, after: &str, branch: &str, extra: Value) -> Value {
    let mut p = json!({
        "ref": format!("refs/heads/{branch}"),
        "before": before,
        "after": after,
        "created": false,
        "deleted": false,
        "forced": false,
        "repository": {"default_branch": "main"},
    });
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

#[test]
fn push_compares_before_with_after_and_writes_outputs() {
    let (repo, [a, b, _, _]) = history();
    repo.checkout("main");
    let gh = Github::new(&push(&a, &b, "main", json!({})));
    let r = gh.run(&root(&repo), "push", &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.json["base"], a);
    assert_eq!(r.json["head"], b);
    expect_sets(&r.json, &[], &["qa"], &[], &["dev", "prod"]);
    let outs = gh.outputs();
    assert_eq!(outs["has-changes"], "true");
    assert_eq!(outs["updated"], "[\"qa\"]");
    assert_eq!(outs["created"], "[]");
    assert_eq!(outs["deleted"], "[]");
    assert_eq!(outs["base"], a);
    assert_eq!(outs["head"], b);
    let matrix: Value = serde_json::from_str(&outs["matrix"]).unwrap();
    assert_eq!(
        matrix,
        json!({"include": [{"environment": "qa", "change": "updated", "stack": "qa-svc", "region": "us-west-2"}]})
    );
    let summary = std::fs::read_to_string(&gh.summary).unwrap();
    assert!(
        summary.contains("| qa | updated | `qa-svc` | us-west-2 |"),
        "{summary}"
    );

    // Nothing changed: an empty matrix, so a workflow can skip its matrix job.
    let gh = Github::new(&push(&b, &b, "main", json!({})));
    let r = gh.run(&root(&repo), "push", &["--exit-code"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let outs = gh.outputs();
    assert_eq!(outs["has-changes"], "false");
    assert_eq!(outs["matrix"], "{\"include\":[]}");
}

#[test]
fn first_push_with_all_zero_before_uses_the_default_branch() {
    let (repo, [_, b, _, f1]) = history();
    let gh = Github::new(&push(ZERO, &f1, "feature", json!({"created": true})));
    let r = gh.run(&root(&repo), "push", &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // The merge base with main is B: prod's change on main does not count.
    assert_eq!(r.json["base"], b);
    expect_sets(&r.json, &[], &["dev"], &[], &["prod", "qa"]);

    // A default branch that is not in the clone: everything is created.
    let mut payload = push(ZERO, &f1, "feature", json!({"created": true}));
    payload["repository"]["default_branch"] = json!("trunk");
    let gh = Github::new(&payload);
    let r = gh.run(&root(&repo), "push", &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.json["base"], Value::Null);
    expect_sets(&r.json, &["dev", "prod", "qa"], &[], &[], &[]);
    assert!(r.stderr.contains("not in this clone"), "{}", r.stderr);
}

#[test]
fn force_push_uses_the_merge_base_of_before_and_after() {
    let (repo, [_, b, _, f1]) = history();
    // Rewrite feature: drop F1, bump qa's version instead.
    repo.git(&["reset", "-q", "--hard", &b]);
    repo.write(
        "infra/deploy/targets/qa/target.yaml",
        &format!("{}region: us-west-2\n", env_file("9.9")),
    );
    let r1 = repo.commit("rewritten");
    let gh = Github::new(&push(&f1, &r1, "feature", json!({"forced": true})));
    let r = gh.run(&root(&repo), "push", &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // Base B, not F1: dev's dropped change is not a change of the branch.
    assert_eq!(r.json["base"], b);
    expect_sets(&r.json, &[], &["qa"], &[], &["dev", "prod"]);
}

#[test]
fn pull_request_uses_the_merge_base() {
    let (repo, [_, b, c, f1]) = history();
    for event in ["pull_request", "pull_request_target"] {
        let gh = Github::new(&json!({
            "pull_request": {"base": {"sha": c, "ref": "main"}, "head": {"sha": f1, "ref": "feature"}},
            "repository": {"default_branch": "main"},
        }));
        let r = gh.run(&root(&repo), event, &[]);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        assert_eq!(r.json["base"], b);
        assert_eq!(r.json["head"], f1);
        expect_sets(&r.json, &[], &["dev"], &[], &["prod", "qa"]);
    }
}

#[test]
fn manual_run_updates_everything() {
    let (repo, [_, _, _, f1]) = history();
    let gh = Github::new(&json!({"inputs": {}}));
    let r = gh.run(&root(&repo), "workflow_dispatch", &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    expect_sets(&r.json, &[], &["dev", "prod", "qa"], &[], &[]);
    assert_eq!(r.json["head"], f1);
    // Unless --base is given.
    let r = gh.run(&root(&repo), "workflow_dispatch", &["--base", "HEAD~1"]);
    expect_sets(&r.json, &[], &["dev"], &[], &["prod", "qa"]);
}

#[test]
fn deleted_branch_gives_an_empty_result() {
    let (repo, [_, _, _, f1]) = history();
    let gh = Github::new(&push(&f1, ZERO, "feature", json!({"deleted": true})));
    let r = gh.run(&root(&repo), "push", &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    expect_sets(&r.json, &[], &[], &[], &[]);
    assert_eq!(gh.outputs()["has-changes"], "false");
}

#[test]
fn shallow_clone_fetches_a_missing_base() {
    let (origin, [a, b, _, _]) = history();
    origin.checkout("main");
    let clone = origin.clone_with(&["--depth=1", "--branch", "main"]);
    let c = clone.head();
    assert!(!clone.has_object(&b), "the clone must lack B");
    let gh = Github::new(&push(&b, &c, "main", json!({})));
    let r = gh.run(&root(&clone), "push", &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(clone.has_object(&b), "B was fetched");
    assert_eq!(r.json["base"], b);
    expect_sets(&r.json, &[], &["prod"], &[], &["dev", "qa"]);

    // --base with a missing commit id is fetched too.
    let clone = origin.clone_with(&["--depth=1", "--branch", "main"]);
    let r = run_in(&root(&clone), &["--base", &a, "--format", "json"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    expect_sets(&r.json, &[], &["prod", "qa"], &[], &["dev"]);
}

#[test]
fn shallow_clone_deepens_to_find_a_pull_request_merge_base() {
    let (origin, [_, b, c, f1]) = history();
    let clone = origin.clone_with(&["--depth=1", "--branch", "feature"]);
    assert!(!clone.has_object(&c) && !clone.has_object(&b));
    let gh = Github::new(&json!({
        "pull_request": {"base": {"sha": c}, "head": {"sha": f1}},
    }));
    let r = gh.run(&root(&clone), "pull_request", &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.json["base"], b);
    expect_sets(&r.json, &[], &["dev"], &[], &["prod", "qa"]);
}

#[test]
fn shallow_clone_that_cannot_fetch_advises_fetch_depth_0() {
    let (origin, [_, b, _, _]) = history();
    origin.checkout("main");
    let clone = origin.clone_with(&["--depth=1", "--branch", "main"]);
    let c = clone.head();
    clone.git(&[
        "remote",
        "set-url",
        "origin",
        "file:///nonexistent/repository",
    ]);
    let gh = Github::new(&push(&b, &c, "main", json!({})));
    let r = gh.run(&root(&clone), "push", &[]);
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    assert!(r.stderr.contains("fetch-depth: 0"), "{}", r.stderr);
    assert!(r.stderr.contains(&b), "{}", r.stderr);
    assert!(!gh.output.exists(), "no outputs on failure");
}

#[test]
fn more_affected_environments_than_a_matrix_holds_warns() {
    let repo = GitRepo::new();
    repo.write("gitops.yaml", "version: 1\nstack: { template: app.yaml }\n");
    for i in 0..256 {
        repo.write(
            &format!("environments/e{i:03}/environment.yaml"),
            "parameters: {}\n",
        );
    }
    let a = repo.commit("256 environments");
    // 256 affected: still one matrix.
    repo.write("app.yaml", "Resources: {}\n");
    let c = repo.commit("template");
    let r = run_in(
        repo.path(),
        &["--base", &a, "--head", &c, "--format", "json"],
        &[],
    );
    assert_eq!(r.json["matrix"]["include"].as_array().unwrap().len(), 256);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    // 257: a warning that suggests one deploy job.
    repo.write("environments/e256/environment.yaml", "parameters: {}\n");
    let d = repo.commit("one more");
    let r = run_in(
        repo.path(),
        &["--base", &a, "--head", &d, "--format", "json"],
        &[],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.json["matrix"]["include"].as_array().unwrap().len(), 257);
    assert!(
        r.stderr.contains("more than the 256 jobs") && r.stderr.contains("--concurrency N"),
        "{}",
        r.stderr
    );
}
