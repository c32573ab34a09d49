//! End-to-end tests of the foundation: `validate`, `envs` and `whoami`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gitops_e2e::bin::gitops;
use gitops_e2e::moto::Moto;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(args: &[&str]) -> Output {
    gitops().args(args).output().expect("gitops runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn examples_are_valid() {
    for example in ["examples/basic", "examples/direct", "examples/ecs"] {
        let dir = root().join(example);
        let out = run(&["validate", "--repo", dir.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{example}: {}", stdout(&out));
        let out = run(&[
            "validate",
            "--repo",
            dir.to_str().unwrap(),
            "--format",
            "json",
        ]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["valid"], true);
        assert_eq!(v["problems"], serde_json::json!([]));
    }
}

#[test]
fn envs_lists_resolved_environments() {
    let dir = root().join("examples/basic");
    let out = run(&["envs", "--repo", dir.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let envs = v["environments"].as_array().unwrap();
    let names: Vec<&str> = envs.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["development", "feature-x", "prod", "staging"]);
    let prod = &envs[2];
    assert_eq!(prod["stack"], "prod-app");
    assert_eq!(prod["pipeline"], "prod-deploy");
    assert_eq!(prod["region"], "us-east-1");
    assert_eq!(prod["account"], "123456789012");
    assert_eq!(prod["protected"], true);
    assert_eq!(prod["template"], "common/environment.yaml");
    // defaults merged under the file
    assert_eq!(prod["parameters"]["AppVersion"], "1.4.1");
    assert_eq!(prod["parameters"]["LogLevel"], "INFO");
    assert_eq!(prod["tags"]["app"], "payments");
    assert_eq!(prod["tags"]["cost-center"], "4711");
    assert_eq!(envs[0]["parameters"]["LogLevel"], "DEBUG");
    assert_eq!(envs[0]["protected"], false);
}

#[test]
fn every_mistake_is_reported_in_one_run() {
    let case = root().join("tests/fixtures/many-mistakes");
    let out = run(&["validate", "--repo", case.join("repo").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let expected = std::fs::read_to_string(case.join("expected.txt")).unwrap();
    let strip = |s: &str| -> String {
        s.lines()
            .filter(|l| !l.starts_with("invalid:"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(strip(&stdout(&out)), strip(&expected));
    assert!(stdout(&out).contains("invalid: 14 error(s), 2 warning(s)"));

    // JSON carries the same problems with file, line and column.
    let out = run(&[
        "validate",
        "--repo",
        case.join("repo").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 16);
    let colour = problems
        .iter()
        .find(|p| p["message"].as_str().unwrap().contains("`Colour`"))
        .unwrap();
    assert_eq!(colour["file"], "environments/dev/environment.yaml");
    assert_eq!(colour["line"], 5);
    assert_eq!(colour["column"], 3);
    assert_eq!(colour["severity"], "error");
}

#[test]
fn a_missing_template_is_one_problem_without_follow_ons() {
    let case = root().join("tests/fixtures/missing-template");
    let repo = case.join("repo");
    let out = run(&["validate", "--repo", repo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let expected = std::fs::read_to_string(case.join("expected.txt")).unwrap();
    let strip = |s: &str| -> String {
        s.lines()
            .filter(|l| !l.starts_with("invalid:"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(strip(&stdout(&out)), strip(&expected));

    let out = run(&[
        "validate",
        "--repo",
        repo.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = v["problems"].as_array().unwrap();
    let messages: Vec<&str> = problems
        .iter()
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    // Exactly one problem per missing template file, at the line naming it.
    for (template, line) in [("common/app.yaml", 5), ("common/pipeline.yaml", 7)] {
        let about: Vec<&serde_json::Value> = problems
            .iter()
            .filter(|p| {
                p["message"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("template `{template}` does not exist"))
            })
            .collect();
        assert_eq!(about.len(), 1, "{template}: {messages:#?}");
        assert_eq!(about[0]["file"], "gitops.yaml");
        assert_eq!(about[0]["line"], line, "{template}");
    }
    // The users are named: four environments use the stack template.
    assert!(
        messages
            .iter()
            .any(|m| m.contains("environments using it: `dev`, `feature-x`, `qa`, `test`")),
        "{messages:#?}"
    );
    // No follow-on problems: prod's parameter the missing pipeline template
    // would declare, staging (whose file is broken) in promotion.order.
    assert!(
        !messages.iter().any(|m| m.contains("does not declare")),
        "{messages:#?}"
    );
    assert!(
        !messages.iter().any(|m| m.contains("not an environment")),
        "{messages:#?}"
    );
    assert_eq!(problems.len(), 3, "{messages:#?}");
}

/// `gitops <command> --help` for every command.
fn help(command: &str) -> String {
    let out = run(&[command, "--help"]);
    assert_eq!(out.status.code(), Some(0), "{command}");
    stdout(&out)
}

#[test]
fn long_help_keeps_its_lists_and_names_exit_codes() {
    let text = help("deploy");
    // Each bullet on its own line, not run into the paragraph.
    for bullet in [
        "* pipeline mode (`pipeline:` in gitops.yaml)",
        "* direct mode:",
        "* a removed environment's stacks are deleted",
    ] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(bullet)),
            "`{bullet}` does not start a line:\n{text}"
        );
    }
    assert!(!text.contains("; * "), "a list run together:\n{text}");
    assert!(!text.contains(": * "), "a list run together:\n{text}");
    // Paragraphs stay apart.
    assert!(text.contains("\n\nThe tool only touches stacks"), "{text}");
    let plan = help("plan");
    assert!(
        plan.lines()
            .any(|l| l.trim_start().starts_with("* the unified diff")),
        "{plan}"
    );
    // Every command's help lists its exit codes.
    let top = stdout(&run(&["--help"]));
    let commands: Vec<&str> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 11, "{commands:?}\n{top}");
    assert!(top.contains("Exit status"), "{top}");
    for c in commands {
        let text = help(c);
        assert!(
            text.contains("\nExit status"),
            "`gitops {c} --help` has no \"Exit status\" part:\n{text}"
        );
    }
}

#[test]
fn github_annotations_are_printed_in_actions() {
    let case = root().join("tests/fixtures/many-mistakes/repo");
    let out = gitops()
        .args(["validate", "--repo", case.to_str().unwrap()])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", root())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("::error file=tests/fixtures/many-mistakes/repo/environments/dev/environment.yaml,line=5,col=3::environment `dev` sets parameter `Colour`"),
        "{text}"
    );
    assert!(text.contains("::warning file=tests/fixtures/many-mistakes/repo/environments/notes::"));
}

fn write(dir: &Path, path: &str, content: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

const TEMPLATE: &str =
    "Parameters:\n  AppVersion: {Type: String}\nResources:\n  T: {Type: AWS::SNS::Topic}\n";

#[test]
fn template_paths_must_stay_inside_and_be_templates() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(
        d,
        "gitops.yaml",
        "version: 1\nstack: {template: common/app.yaml}\n",
    );
    write(d, "common/app.yaml", TEMPLATE);
    write(outside.path(), "app.yaml", TEMPLATE);
    std::os::unix::fs::symlink(outside.path().join("app.yaml"), d.join("common/link.yaml"))
        .unwrap();
    write(
        d,
        "common/big.yaml",
        &format!("{TEMPLATE}# {}\n", "x".repeat(1024 * 1024)),
    );
    write(
        d,
        "common/app.json",
        r#"{"Parameters": {"AppVersion": {"Type": "String"}}, "Resources": {"T": {"Type": "AWS::SNS::Topic"}}}"#,
    );
    let envs = [
        ("abs", "/etc/app.yaml"),
        ("dotdot", "../app.yaml"),
        ("link", "common/link.yaml"),
        ("big", "common/big.yaml"),
        ("json", "common/app.json"),
    ];
    for (name, tpl) in envs {
        write(
            d,
            &format!("environments/{name}/environment.yaml"),
            &format!("template-file-path: {tpl}\nparameters: {{AppVersion: '1'}}\n"),
        );
    }
    let out = run(&["validate", "--repo", d.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("environments/abs/environment.yaml:1:1: error: template path `/etc/app.yaml` is absolute"), "{text}");
    assert!(text.contains("environments/dotdot/environment.yaml:1:1: error: template path `../app.yaml` escapes the repository"), "{text}");
    assert!(text.contains("environments/link/environment.yaml:1:1: error: template `common/link.yaml` is a symlink that points outside the repository"), "{text}");
    assert!(
        text.contains("common/big.yaml: error: template is 1048")
            && text.contains("over CloudFormation's limit"),
        "{text}"
    );
    assert!(
        !text.contains("environments/json"),
        "a JSON template is fine: {text}"
    );
    assert!(text.contains("invalid: 4 error(s)"), "{text}");
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

#[test]
fn envs_reads_a_revision_without_checkout() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(
        d,
        "gitops.yaml",
        "version: 1\nstack: {template: common/app.yaml}\n",
    );
    write(d, "common/app.yaml", TEMPLATE);
    write(
        d,
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1'}\n",
    );
    write(
        d,
        "environments/old/environment.yaml",
        "parameters: {AppVersion: '0'}\n",
    );
    git(d, &["init", "-q", "-b", "main"]);
    git(d, &["add", "-A"]);
    git(d, &["commit", "-qm", "two environments"]);
    git(d, &["rm", "-rq", "environments/old"]);
    git(d, &["commit", "-qm", "delete old"]);

    let names = |args: &[&str]| -> Vec<String> {
        let out = run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["environments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    let repo = d.to_str().unwrap();
    assert_eq!(
        names(&["envs", "--repo", repo, "--format", "json"]),
        ["dev"]
    );
    assert_eq!(
        names(&["envs", "--repo", repo, "--format", "json", "--rev", "HEAD~1"]),
        ["dev", "old"]
    );
    let out = run(&["envs", "--repo", repo, "--rev", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot resolve revision `nope`"));
}

#[test]
fn errors_name_the_next_step() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(&["validate", "--repo", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no gitops.yaml found"));
}

#[test]
fn whoami_against_moto() {
    let Some(moto) = Moto::start() else { return };
    let out = gitops()
        .args(["whoami", "--format", "json"])
        .envs(moto.env())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["account"], "123456789012");
    assert_eq!(v["region"], "us-east-1");
    assert!(v["arn"].as_str().unwrap().starts_with("arn:aws:"));
}

#[test]
fn whoami_without_credentials_says_what_to_do() {
    // A closed local port: nothing answers, and the error must say what to configure.
    let out = gitops()
        .args(["whoami", "--endpoint-url", "http://127.0.0.1:9"])
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot resolve the AWS identity"), "{err}");
}
