//! The composite actions (`action.yml`, `detect/`, `plan/`, `deploy/`,
//! `promote/`, `drift/`, `validate/`) run the way the GitHub runner runs
//! them (see `gitops_e2e::runner`): no INPUT_* variables, expressions only
//! from inputs, steps, env and github.action_path, fresh runner files,
//! `bash --noprofile --norc -eo pipefail`.
//!
//! - Input mapping and output mapping of every action, against a stub
//!   `gitops` that records its argv (so actions whose commands are still
//!   being written are covered too).
//! - Hostile values (a pull-request title such as `"; echo INJECTED; "`) in
//!   every input of every action never run.
//! - detect, deploy, validate and promote for real, with the debug binary
//!   (`install: path`), deploy against moto.
//! - The installer: a verified release download, a checksum mismatch, a
//!   missing asset falling back to `cargo build`, the tool cache, and
//!   actions/cache (a stand-in shared by the runners of later jobs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use gitops_e2e::fixture::{describe, SSM_TEMPLATE};
use gitops_e2e::git::GitRepo;
use gitops_e2e::http::FileServer;
use gitops_e2e::moto::Moto;
use gitops_e2e::runner::{ActionRun, Runner};
use gitops_e2e::tools::repo_root;

/// Every action: its folder relative to the repository root.
const ACTIONS: &[&str] = &[
    ".", "detect", "plan", "deploy", "promote", "drift", "validate",
];

fn action(dir: &str) -> PathBuf {
    repo_root().join(dir)
}

fn write_exe(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The declared inputs of an action, with their defaults.
fn declared_inputs(dir: &str) -> BTreeMap<String, String> {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(action(dir).join("action.yml")).unwrap())
            .unwrap();
    doc["inputs"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let d = match &v["default"] {
                serde_yaml::Value::String(s) => s.clone(),
                _ => String::new(),
            };
            (k.as_str().unwrap().to_string(), d)
        })
        .collect()
}

fn declared_outputs(dir: &str) -> Vec<String> {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(action(dir).join("action.yml")).unwrap())
            .unwrap();
    doc["outputs"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

/// A stand-in `gitops` that records each call (argv NUL-separated, and the
/// variables that carry the token) in `$GITOPS_STUB_LOG/N.*`, writes the
/// outputs listed in `$GITOPS_STUB_OUTPUTS` (name=value lines) to
/// GITHUB_OUTPUT, prints `$GITOPS_STUB_STDOUT` and exits with
/// `$GITOPS_STUB_EXIT`.
const STUB: &str = r#"#!/usr/bin/env bash
set -eu
if [ "${1:-}" = --version ]; then
  echo 'gitops 0.0.0-stub'
  exit 0
fi
log=${GITOPS_STUB_LOG:?}
n=$(find "$log" -name '*.argv' | wc -l | tr -d ' ')
printf '%s\0' "$@" >"$log/$n.argv"
{
  printf 'GITHUB_TOKEN=%s\n' "${GITHUB_TOKEN-}"
  printf 'GITHUB_ACTIONS=%s\n' "${GITHUB_ACTIONS-}"
  printf 'GITOPS_NOTIFY_URL=%s\n' "${GITOPS_NOTIFY_URL-}"
  env | grep '^GIT_CONFIG_' | sort || true
} >"$log/$n.env"
if [ -n "${GITOPS_STUB_OUTPUTS:-}" ] && [ -n "${GITHUB_OUTPUT:-}" ]; then
  printf '%s\n' "$GITOPS_STUB_OUTPUTS" >>"$GITHUB_OUTPUT"
fi
printf '%s' "${GITOPS_STUB_STDOUT:-}"
exit "${GITOPS_STUB_EXIT:-0}"
"#;

/// A runner whose PATH has the stub as `gitops`, and `install` = path.
struct Stubbed {
    _tmp: tempfile::TempDir,
    log: PathBuf,
    runner: Runner,
}

impl Stubbed {
    fn new() -> Stubbed {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        write_exe(&bin.join("gitops"), STUB);
        let log = tmp.path().join("log");
        std::fs::create_dir_all(&log).unwrap();
        let ws = tmp.path().join("workspace");
        std::fs::create_dir_all(&ws).unwrap();
        let mut runner = Runner::new(&ws);
        runner.path.push(bin);
        runner.set_env("GITOPS_STUB_LOG", log.to_str().unwrap());
        runner.set_env("GITOPS_INSTALL", "path");
        Stubbed {
            _tmp: tmp,
            log,
            runner,
        }
    }

    /// The argv of each recorded call, in order.
    fn calls(&self) -> Vec<Vec<String>> {
        let mut n = 0;
        let mut out = Vec::new();
        while let Ok(bytes) = std::fs::read(self.log.join(format!("{n}.argv"))) {
            let text = String::from_utf8(bytes).unwrap();
            let mut args: Vec<String> = text.split('\0').map(String::from).collect();
            args.pop(); // after the last NUL
            out.push(args);
            n += 1;
        }
        out
    }

    fn call_env(&self, n: usize) -> String {
        std::fs::read_to_string(self.log.join(format!("{n}.env"))).unwrap()
    }

    fn clear(&self) {
        for e in std::fs::read_dir(&self.log).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    }
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

fn assert_ok(run: &ActionRun) {
    for st in &run.steps {
        eprintln!("step {:?}: {:?}", st.id, st.duration);
    }
    assert!(run.success, "the action failed:\n{}", run.log());
}

/// For each action: inputs given a value other than their default, and
/// the exact argv gitops must get.
/// An action folder, its inputs, and the argv gitops must get.
type Case = (&'static str, Vec<(&'static str, &'static str)>, Vec<String>);

fn mapping_cases() -> Vec<Case> {
    vec![
        (
            ".",
            vec![
                ("command", "rollback"),
                ("args", "prod --to 'HEAD~2' --write \"two words\""),
                ("repo", "ops/gitops"),
                ("github-token", "tok-123"),
            ],
            argv(&[
                "rollback",
                "--repo",
                "ops/gitops",
                "prod",
                "--to",
                "HEAD~2",
                "--write",
                "two words",
            ]),
        ),
        (
            "detect",
            vec![
                ("base", "deployed"),
                ("head", "def456"),
                ("branch", "develop"),
                ("github", "false"),
                ("region", "eu-west-1"),
                ("endpoint-url", "http://127.0.0.1:5000"),
                ("repo", "sub dir"),
                ("args", "--exit-code"),
                ("github-token", "tok-123"),
            ],
            argv(&[
                "detect",
                "--format",
                "json",
                "--base",
                "deployed",
                "--head",
                "def456",
                "--branch",
                "develop",
                "--region",
                "eu-west-1",
                "--endpoint-url",
                "http://127.0.0.1:5000",
                "--repo",
                "sub dir",
                "--exit-code",
            ]),
        ),
        (
            "plan",
            vec![
                ("base", "origin/main"),
                ("head", "HEAD"),
                ("branch", "release/2.0"),
                ("drift-gate", "all"),
                ("accept-drift", "true"),
                ("github", "false"),
                ("environment", "dev\nstaging, prod"),
                ("no-aws", "true"),
                ("comment", "true"),
                ("exit-code", "true"),
                ("pr", "42"),
                ("allow-delete", "true"),
                ("max-deletions", "7"),
                ("adopt", "true"),
                ("concurrency", "3"),
                ("timeout", "60"),
                ("region", "eu-west-1"),
                ("endpoint-url", "http://127.0.0.1:5000"),
                ("format", "markdown"),
                ("repo", "r"),
                ("args", "--color never"),
                ("github-token", "tok-123"),
            ],
            argv(&[
                "plan",
                "--base",
                "origin/main",
                "--head",
                "HEAD",
                "--branch",
                "release/2.0",
                "--drift-gate",
                "all",
                "--accept-drift",
                "--environment=dev",
                "--environment=staging",
                "--environment=prod",
                "--no-aws",
                "--comment",
                "--exit-code",
                "--pr",
                "42",
                "--allow-delete",
                "--max-deletions",
                "7",
                "--adopt",
                "--concurrency",
                "3",
                "--timeout",
                "60",
                "--region",
                "eu-west-1",
                "--endpoint-url",
                "http://127.0.0.1:5000",
                "--format",
                "markdown",
                "--repo",
                "r",
                "--color",
                "never",
            ]),
        ),
        (
            "deploy",
            vec![
                ("from-detect", "detect.json"),
                ("environment", "prod"),
                ("base", "b"),
                ("head", "h"),
                ("branch", "main"),
                ("drift-gate", "off"),
                ("accept-drift", "true"),
                ("github", "false"),
                ("dry-run", "true"),
                ("allow-delete", "true"),
                ("max-deletions", "9"),
                ("adopt", "true"),
                ("concurrency", "8"),
                ("timeout", "60"),
                ("wait", "false"),
                ("region", "eu-west-1"),
                ("endpoint-url", "http://127.0.0.1:5000"),
                ("repo", "r"),
                ("args", "--color never"),
            ],
            argv(&[
                "deploy",
                "--from-detect",
                "detect.json",
                "--environment=prod",
                "--base",
                "b",
                "--head",
                "h",
                "--branch",
                "main",
                "--drift-gate",
                "off",
                "--accept-drift",
                "--dry-run",
                "--allow-delete",
                "--max-deletions",
                "9",
                "--adopt",
                "--concurrency",
                "8",
                "--timeout",
                "60",
                "--no-wait",
                "--region",
                "eu-west-1",
                "--endpoint-url",
                "http://127.0.0.1:5000",
                "--repo",
                "r",
                "--color",
                "never",
            ]),
        ),
        (
            "promote",
            vec![
                ("from", "staging"),
                ("to", "prod"),
                ("force", "true"),
                ("skip-verify", "true"),
                ("verify", "true"),
                ("write", "true"),
                ("open-pr", "true"),
                ("base", "main"),
                ("format", "json"),
                ("region", "eu-west-1"),
                ("endpoint-url", "http://127.0.0.1:5000"),
                ("repo", "r"),
                ("args", "--color never"),
                ("github-token", "tok-123"),
            ],
            argv(&[
                "promote",
                "--from",
                "staging",
                "--to",
                "prod",
                "--force",
                "--skip-verify",
                "--verify",
                "--write",
                "--open-pr",
                "--base",
                "main",
                "--format",
                "json",
                "--region",
                "eu-west-1",
                "--endpoint-url",
                "http://127.0.0.1:5000",
                "--repo",
                "r",
                "--color",
                "never",
            ]),
        ),
        (
            "drift",
            vec![
                ("environment", "dev,prod"),
                ("rev", "HEAD~1"),
                ("skip-resource-drift", "true"),
                ("drift-timeout", "30"),
                ("open-issues", "true"),
                ("notify", "https://hooks.example.com/x?a=1&b=2"),
                ("remediate", "true"),
                ("timeout", "60"),
                ("concurrency", "2"),
                ("region", "eu-west-1"),
                ("endpoint-url", "http://127.0.0.1:5000"),
                ("fail-on-drift", "false"),
                ("format", "json"),
                ("repo", "r"),
                ("args", "--color never"),
                ("github-token", "tok-123"),
            ],
            argv(&[
                "drift",
                "--environment=dev",
                "--environment=prod",
                "--rev",
                "HEAD~1",
                "--skip-resource-drift",
                "--drift-timeout",
                "30",
                "--open-issues",
                "--remediate",
                "--timeout",
                "60",
                "--concurrency",
                "2",
                "--region",
                "eu-west-1",
                "--endpoint-url",
                "http://127.0.0.1:5000",
                "--format",
                "json",
                "--repo",
                "r",
                "--color",
                "never",
            ]),
        ),
        (
            "validate",
            vec![("repo", "r"), ("args", "--color never")],
            argv(&["validate", "--repo", "r", "--color", "never"]),
        ),
    ]
}

#[test]
fn every_input_maps_to_its_flag() {
    let cases = mapping_cases();
    // Every action is covered, and every input but `install` is set to
    // something other than its default, so a new input needs a case here.
    for dir in ACTIONS {
        let case = cases
            .iter()
            .find(|(d, _, _)| d == dir)
            .unwrap_or_else(|| panic!("no mapping case for {dir}"));
        for (name, default) in declared_inputs(dir) {
            // install: the installer tests; detection (which excludes
            // from-detect): deploy_detection_input_becomes_a_from_detect_file.
            if name == "install" || name == "detection" {
                continue;
            }
            let given = case.1.iter().find(|(n, _)| *n == name);
            assert!(
                given.is_some_and(|(_, v)| *v != default),
                "{dir}: input `{name}` has no case with a non-default value"
            );
        }
    }
    for (dir, inputs, expected) in cases {
        let s = Stubbed::new();
        let run = s.runner.run(&action(dir), &inputs);
        assert_ok(&run);
        let calls = s.calls();
        // validate runs twice: once for JSON, once for the log.
        let last = calls
            .last()
            .unwrap_or_else(|| panic!("{dir}: gitops never ran"));
        assert_eq!(last, &expected, "{dir}: argv");
        if dir == "validate" {
            let mut json = expected.clone();
            json.extend(argv(&["--format", "json"]));
            assert_eq!(calls, vec![json, expected.clone()], "{dir}: both runs");
            assert!(
                s.call_env(0).contains("GITHUB_ACTIONS=\n"),
                "the JSON run has no annotations mixed in"
            );
        } else {
            assert_eq!(calls.len(), 1, "{dir}: one call");
        }
        // The webhook, a secret, reaches gitops through the environment.
        if dir == "drift" {
            let env = s.call_env(0);
            assert!(
                env.contains("GITOPS_NOTIFY_URL=https://hooks.example.com/x?a=1&b=2\n"),
                "{env}"
            );
            assert!(run
                .log()
                .contains("::add-mask::https://hooks.example.com/x?a=1&b=2"));
        }
        // The token reaches gitops and git through the environment, never argv.
        if inputs.iter().any(|(n, _)| *n == "github-token") {
            let env = s.call_env(calls.len() - 1);
            assert!(env.contains("GITHUB_TOKEN=tok-123\n"), "{dir}: {env}");
            assert!(
                env.contains("GIT_CONFIG_KEY_0=http.https://github.com/.extraheader"),
                "{dir}: {env}"
            );
            // base64("x-access-token:tok-123")
            assert!(
                env.contains(
                    "GIT_CONFIG_VALUE_0=AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46dG9rLTEyMw=="
                ),
                "{dir}: {env}"
            );
            assert!(!last.iter().any(|a| a.contains("tok-123")));
            assert!(
                run.log()
                    .contains("::add-mask::eC1hY2Nlc3MtdG9rZW46dG9rLTEyMw=="),
                "the encoded token is masked"
            );
        }
    }
}

#[test]
fn defaults_map_to_the_minimal_command_line() {
    let s = Stubbed::new();
    let cases: Vec<Case> = vec![
        (
            ".",
            vec![("command", "status")],
            argv(&["status", "--repo", "."]),
        ),
        (
            "detect",
            vec![],
            argv(&["detect", "--format", "json", "--github", "--repo", "."]),
        ),
        ("plan", vec![], argv(&["plan", "--github", "--repo", "."])),
        (
            "deploy",
            vec![],
            argv(&["deploy", "--github", "--repo", "."]),
        ),
        (
            "promote",
            vec![("from", "dev")],
            argv(&["promote", "--from", "dev", "--to", "next", "--repo", "."]),
        ),
        ("drift", vec![], argv(&["drift", "--repo", "."])),
    ];
    for (dir, inputs, expected) in cases {
        s.clear();
        let run = s.runner.run(&action(dir), &inputs);
        assert_ok(&run);
        assert_eq!(s.calls(), vec![expected], "{dir}");
        // no token given: nothing set
        assert!(s.call_env(0).contains("GITHUB_TOKEN=\n"), "{dir}");
        assert!(!s.call_env(0).contains("GIT_CONFIG_KEY"), "{dir}");
    }
}

#[test]
fn deploy_detection_input_becomes_a_from_detect_file() {
    let s = Stubbed::new();
    let detection = r#"{"base":"a","head":"b","environments":[{"name":"dev","change":"created"}]}"#;
    let run = s.runner.run(
        &action("deploy"),
        &[
            ("detection", detection),
            ("environment", "dev"),
            ("allow-delete", "true"),
        ],
    );
    assert_ok(&run);
    let call = &s.calls()[0];
    assert_eq!(call[1], "--from-detect");
    let file = PathBuf::from(&call[2]);
    assert!(file.starts_with(s.runner.runner_temp()), "{file:?}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim_end(),
        detection
    );
    assert_eq!(
        call[3..],
        argv(&["--environment=dev", "--allow-delete", "--repo", "."])[..],
        "no --github when the detection says what to deploy"
    );
    // both at once is refused
    let run = s.runner.run(
        &action("deploy"),
        &[("detection", detection), ("from-detect", "x.json")],
    );
    assert!(!run.success);
    assert!(run.log().contains("not both"), "{}", run.log());
}

#[test]
fn every_output_is_mapped_from_the_step() {
    for dir in ACTIONS {
        let s = Stubbed::new();
        let mut runner = s.runner;
        let outputs = declared_outputs(dir);
        // detect's and validate's `json` come from the command's standard output.
        let from_stdout = ["json"];
        let lines: Vec<String> = outputs
            .iter()
            .filter(|o| {
                !from_stdout.contains(&o.as_str()) && *o != "gitops-version" && *o != "valid"
            })
            .map(|o| format!("{o}=value of {o}"))
            .collect();
        runner.set_env("GITOPS_STUB_OUTPUTS", &lines.join("\n"));
        runner.set_env("GITOPS_STUB_STDOUT", "{\"stub\": true}\n");
        let inputs: Vec<(&str, &str)> = match *dir {
            "." => vec![("command", "detect")],
            "promote" => vec![("from", "dev")],
            _ => vec![],
        };
        let run = runner.run(&action(dir), &inputs);
        assert_ok(&run);
        for o in &outputs {
            let expected = match o.as_str() {
                "json" => "{\"stub\": true}".to_string(),
                "valid" => "true".to_string(), // from validate's exit status
                "gitops-version" => run.step("install").outputs["version"].clone(),
                _ => format!("value of {o}"),
            };
            assert_eq!(run.output(o), expected, "{dir}: output `{o}`");
        }
    }
}

/// Pull-request titles and branch names an attacker controls.
const HOSTILE: &[&str] = &[
    r#"Fix "; echo INJECTED; ""#,
    "x'; echo INJECTED; touch \"$MARK\"; echo '",
    "$(echo INJECTED; touch \"$MARK\")`touch \"$MARK\"`",
    "line\necho INJECTED\n::set-output name=result::pwned\n${{ github.token }}",
];

#[test]
fn hostile_inputs_never_run() {
    let s = Stubbed::new();
    let mut runner = s.runner;
    let mark = s._tmp.path().join("pwned");
    runner.set_env("MARK", mark.to_str().unwrap());
    for dir in ACTIONS {
        for (name, _) in declared_inputs(dir) {
            for payload in HOSTILE {
                for e in std::fs::read_dir(&s.log).unwrap() {
                    std::fs::remove_file(e.unwrap().path()).unwrap();
                }
                let mut inputs: Vec<(&str, &str)> = vec![(name.as_str(), payload)];
                if *dir == "." && name != "command" {
                    inputs.push(("command", "status"));
                }
                if *dir == "promote" && name != "from" {
                    inputs.push(("from", "dev"));
                }
                let run = runner.run(&action(dir), &inputs);
                let log = run.log();
                assert!(
                    !mark.exists(),
                    "{dir}: input `{name}` = {payload:?} ran a command:\n{log}"
                );
                assert!(
                    !log.lines().any(|l| l.trim() == "INJECTED"),
                    "{dir}: input `{name}` = {payload:?} ran echo:\n{log}"
                );
                assert_ne!(run.output("result"), "pwned", "{dir}: {name}");
                assert!(
                    !log.lines().any(|l| l.starts_with("::set-output")),
                    "{dir}: input `{name}` started a workflow command:\n{log}"
                );
                // Where the value was accepted, gitops got it as data.
                if run.success && name != "args" && name != "github-token" {
                    let calls = stub_calls(&s.log);
                    let last = calls.last().unwrap();
                    let as_list = ["environment"].contains(&name.as_str());
                    let needle = if name == "detection" {
                        // written to a file whose path is passed
                        let i = last.iter().position(|a| a == "--from-detect").unwrap();
                        std::fs::read_to_string(&last[i + 1]).unwrap()
                    } else {
                        // argv, and the variables gitops got
                        let env =
                            std::fs::read_to_string(s.log.join(format!("{}.env", calls.len() - 1)))
                                .unwrap();
                        format!("{}\n{env}", last.join("\u{0}"))
                    };
                    if !as_list {
                        assert!(
                            needle.contains(payload),
                            "{dir}: input `{name}`: the value reaches gitops verbatim: {last:?}"
                        );
                    }
                }
            }
        }
    }
}

fn stub_calls(log: &Path) -> Vec<Vec<String>> {
    let mut n = 0;
    let mut out = Vec::new();
    while let Ok(bytes) = std::fs::read(log.join(format!("{n}.argv"))) {
        let text = String::from_utf8(bytes).unwrap();
        let mut args: Vec<String> = text.split('\0').map(String::from).collect();
        args.pop();
        out.push(args);
        n += 1;
    }
    out
}

#[test]
fn drift_exit_2_fails_the_step_unless_fail_on_drift_is_false() {
    let s = Stubbed::new();
    let mut runner = s.runner;
    runner.set_env("GITOPS_STUB_EXIT", "2");
    runner.set_env("GITOPS_STUB_OUTPUTS", "in-sync=false\ndrifted=[\"prod\"]");
    let run = runner.run(&action("drift"), &[]);
    assert!(!run.success, "drift fails the step by default");
    assert_eq!(run.step("run").code, Some(2));
    assert_eq!(run.output("in-sync"), "false");
    let run = runner.run(&action("drift"), &[("fail-on-drift", "false")]);
    assert_ok(&run);
    assert_eq!(run.output("drifted"), r#"["prod"]"#);
    // an error (exit 1) still fails
    runner.set_env("GITOPS_STUB_EXIT", "1");
    let run = runner.run(&action("drift"), &[("fail-on-drift", "false")]);
    assert!(!run.success);
}

#[test]
fn bad_booleans_commands_and_quotes_stop_the_step() {
    let s = Stubbed::new();
    for (dir, inputs, message) in [
        (
            "deploy",
            vec![("allow-delete", "yes")],
            "input `allow-delete` must be true or false, not: yes",
        ),
        (
            ".",
            vec![("command", "rm")],
            "input `command` must be detect, plan, deploy, promote, rollback, drift, status or validate, not: rm",
        ),
        (
            "drift",
            vec![("args", "--notify 'unterminated")],
            "input `args` could not be split into words",
        ),
        ("promote", vec![], "input `from` is required"),
        (
            "validate",
            vec![("install", "curl")],
            "input `install` must be auto, release, build or path, not: curl",
        ),
    ] {
        s.clear();
        let run = s.runner.run(&action(dir), &inputs);
        assert!(!run.success, "{dir}: {inputs:?} should fail");
        assert!(run.log().contains(message), "{dir}: {}", run.log());
        assert!(run.log().contains("::error title="), "an annotation: {}", run.log());
        assert!(s.calls().is_empty(), "{dir}: gitops never runs");
    }
}

// ---------------------------------------------------------------------------
// The real binary

/// A folder holding only `gitops`, a link to the debug build.
fn debug_bin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(gitops_e2e::bin::gitops_path(), dir.path().join("gitops")).unwrap();
    dir
}

fn app_repo() -> GitRepo {
    let repo = GitRepo::new();
    repo.write(
        "gitops.yaml",
        "version: 1\nid: acme/actions\nstack: {template: common/app.yaml}\n",
    )
    .write("common/app.yaml", SSM_TEMPLATE)
    .write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.0.0'}\n",
    );
    repo
}

fn real_runner(repo: &GitRepo, bin: &tempfile::TempDir) -> Runner {
    let mut r = Runner::new(repo.path());
    r.path.push(bin.path().to_path_buf());
    r.set_env("NO_COLOR", "1");
    r
}

fn push_event(before: &str, after: &str) -> serde_json::Value {
    serde_json::json!({
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "created": false,
        "forced": false,
        "repository": {"default_branch": "main"},
    })
}

#[test]
fn detect_action_reports_a_new_environment() {
    let bin = debug_bin_dir();
    let repo = app_repo();
    let first = repo.commit("dev");
    repo.write(
        "environments/staging/environment.yaml",
        "parameters: {AppVersion: '0.9.0'}\n",
    );
    let second = repo.commit("staging");
    let mut runner = real_runner(&repo, &bin);
    runner.event = push_event(&first, &second);
    runner.set_env("GITHUB_SHA", &second);
    let run = runner.run(&action("detect"), &[("install", "path")]);
    assert_ok(&run);
    assert_eq!(run.step("install").outputs["source"], "path");
    assert_eq!(run.output("has-changes"), "true");
    assert_eq!(run.output("created"), r#"["staging"]"#);
    assert_eq!(run.output("updated"), "[]");
    assert_eq!(run.output("deleted"), "[]");
    assert_eq!(run.output("base"), first);
    assert_eq!(run.output("head"), second);
    let matrix: serde_json::Value = serde_json::from_str(run.output("matrix")).unwrap();
    assert_eq!(matrix["include"][0]["environment"], "staging");
    assert_eq!(matrix["include"][0]["change"], "created");
    assert_eq!(matrix["include"].as_array().unwrap().len(), 1);
    let json: serde_json::Value = serde_json::from_str(run.output("json")).unwrap();
    assert_eq!(json["head"], second.as_str());
    assert_eq!(json["created"][0], "staging");
    assert!(run.summary.contains("staging"), "summary: {}", run.summary);

    // explicit revisions, no event
    let run = runner.run(
        &action("detect"),
        &[
            ("install", "path"),
            ("github", "false"),
            ("base", &second),
            ("head", &second),
        ],
    );
    assert_ok(&run);
    assert_eq!(run.output("has-changes"), "false");
    assert_eq!(run.output("matrix"), r#"{"include":[]}"#);
}

#[test]
fn deploy_action_creates_and_deletes_stacks_in_moto() {
    let Some(moto) = Moto::start() else { return };
    let bin = debug_bin_dir();
    let repo = app_repo();
    let first = repo.commit("dev");
    repo.write(
        "environments/staging/environment.yaml",
        "parameters: {AppVersion: '0.9.0'}\n",
    );
    let second = repo.commit("staging");
    let mut runner = real_runner(&repo, &bin);
    for (k, v) in moto.env() {
        runner.set_env(k, &v);
    }
    runner.event = push_event(&first, &second);
    runner.set_env("GITHUB_SHA", &second);
    let detect = runner.run(&action("detect"), &[("install", "path")]);
    assert_ok(&detect);
    let run = runner.run(
        &action("deploy"),
        &[
            ("install", "path"),
            ("detection", detect.output("json")),
            ("environment", "staging"),
        ],
    );
    assert_ok(&run);
    assert_eq!(run.output("result"), "success");
    let summary: serde_json::Value = serde_json::from_str(run.output("summary")).unwrap();
    assert_eq!(summary[0]["environment"], "staging");
    assert_eq!(summary[0]["result"], "succeeded");
    assert!(run.summary.contains("staging"), "{}", run.summary);
    assert!(describe(&moto, "staging-app").contains("CREATE_COMPLETE"));
    assert!(
        !describe(&moto, "dev-app").contains("<StackStatus>"),
        "dev did not change, so it was not deployed"
    );

    // The same again is a no-op.
    let run = runner.run(
        &action("deploy"),
        &[
            ("install", "path"),
            ("detection", detect.output("json")),
            ("environment", "staging"),
        ],
    );
    assert_ok(&run);
    assert_eq!(run.output("result"), "no-op");

    // Removing the folder deletes the stack, with allow-delete only.
    repo.remove("environments/staging");
    let third = repo.commit("remove staging");
    runner.event = push_event(&second, &third);
    runner.set_env("GITHUB_SHA", &third);
    let detect = runner.run(&action("detect"), &[("install", "path")]);
    assert_ok(&detect);
    assert_eq!(detect.output("deleted"), r#"["staging"]"#);
    let refused = runner.run(
        &action("deploy"),
        &[("install", "path"), ("detection", detect.output("json"))],
    );
    assert!(!refused.success);
    assert_eq!(refused.output("result"), "failure");
    assert!(describe(&moto, "staging-app").contains("CREATE_COMPLETE"));
    let run = runner.run(
        &action("deploy"),
        &[
            ("install", "path"),
            ("detection", detect.output("json")),
            ("environment", "staging"),
            ("allow-delete", "true"),
        ],
    );
    assert_ok(&run);
    assert_eq!(run.output("result"), "success");
    let status = describe(&moto, "staging-app");
    assert!(
        !status.contains("<StackStatus>") || status.contains("DELETE_COMPLETE"),
        "{status}"
    );
}

#[test]
fn plan_drift_and_status_actions_against_moto() {
    let Some(moto) = Moto::start() else { return };
    let bin = debug_bin_dir();
    let repo = app_repo();
    let first = repo.commit("dev");
    let mut runner = real_runner(&repo, &bin);
    for (k, v) in moto.env() {
        runner.set_env(k, &v);
    }
    let run = runner.run(
        &action("deploy"),
        &[("install", "path"), ("environment", "dev")],
    );
    assert_ok(&run);
    assert_eq!(run.output("result"), "success");

    // In sync at the deployed commit.
    let run = runner.run(
        &action("drift"),
        &[
            ("install", "path"),
            ("skip-resource-drift", "true"),
            ("rev", &first),
        ],
    );
    assert_ok(&run);
    assert_eq!(run.output("in-sync"), "true");
    assert_eq!(run.output("drifted"), "[]");

    // A new version in git: the plan shows it, drift reports dev.
    repo.write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '2.0.0'}\n",
    );
    let second = repo.commit("dev 2.0.0");
    runner.event = push_event(&first, &second);
    runner.set_env("GITHUB_SHA", &second);
    let run = runner.run(&action("plan"), &[("install", "path")]);
    assert_ok(&run);
    assert_eq!(run.output("has-changes"), "true");
    let counts: serde_json::Value = serde_json::from_str(run.output("counts")).unwrap();
    assert!(
        counts.as_object().is_some_and(|c| !c.is_empty()),
        "{counts}"
    );
    assert!(run.summary.contains("dev"), "{}", run.summary);
    assert!(run.log().contains("2.0.0"), "{}", run.log());

    let run = runner.run(
        &action("drift"),
        &[("install", "path"), ("skip-resource-drift", "true")],
    );
    assert!(!run.success, "drift fails the step by default");
    assert_eq!(run.output("in-sync"), "false");
    let run = runner.run(
        &action("drift"),
        &[
            ("install", "path"),
            ("skip-resource-drift", "true"),
            ("fail-on-drift", "false"),
        ],
    );
    assert_ok(&run);
    assert_eq!(run.output("in-sync"), "false");
    assert_eq!(run.output("drifted"), r#"["dev"]"#);

    // status through the root action
    let run = runner.run(
        &action("."),
        &[
            ("install", "path"),
            ("command", "status"),
            ("args", "--format json"),
        ],
    );
    assert_ok(&run);
    let json: serde_json::Value = serde_json::from_str(&run.step("run").stdout).unwrap();
    assert_eq!(json["environments"][0]["name"], "dev");
}

#[test]
fn validate_action_reports_problems_with_annotations() {
    let bin = debug_bin_dir();
    let repo = app_repo();
    repo.commit("dev");
    let runner = real_runner(&repo, &bin);
    let run = runner.run(&action("validate"), &[("install", "path")]);
    assert_ok(&run);
    assert_eq!(run.output("valid"), "true");
    let json: serde_json::Value = serde_json::from_str(run.output("json")).unwrap();
    assert_eq!(json["valid"], true);

    repo.write(
        "environments/dev/environment.yaml",
        "parameters: {AppVersion: '1.0.0', Nope: 1}\n",
    );
    let run = runner.run(&action("validate"), &[("install", "path")]);
    assert!(!run.success, "an invalid repository fails the step");
    assert_eq!(run.output("valid"), "false");
    let json: serde_json::Value = serde_json::from_str(run.output("json")).unwrap();
    assert_eq!(json["valid"], false);
    assert!(json["problems"][0]["message"]
        .as_str()
        .unwrap()
        .contains("Nope"));
    let log = run.log();
    assert!(
        log.contains("::error file=environments/dev/environment.yaml,line=1"),
        "annotations for the pull request: {log}"
    );
}

#[test]
fn promote_action_and_rollback_through_the_root_action() {
    let bin = debug_bin_dir();
    let repo = app_repo();
    repo.write(
        "gitops.yaml",
        "version: 1\nid: acme/actions\nstack: {template: common/app.yaml}\npromotion: {order: [dev, staging], keys: [parameters.AppVersion]}\n",
    )
    .write(
        "environments/staging/environment.yaml",
        "# staging\nparameters: {AppVersion: '0.9.0'}\n",
    );
    repo.commit("dev and staging");
    let runner = real_runner(&repo, &bin);
    let run = runner.run(
        &action("promote"),
        &[
            ("install", "path"),
            ("from", "dev"),
            ("write", "true"),
            ("skip-verify", "true"),
        ],
    );
    assert_ok(&run);
    assert_eq!(run.output("changed"), "true");
    assert_eq!(run.output("written"), "true");
    assert_eq!(run.output("pr-number"), "");
    assert_eq!(
        std::fs::read_to_string(repo.path().join("environments/staging/environment.yaml")).unwrap(),
        "# staging\nparameters: {AppVersion: '1.0.0'}\n"
    );

    // rollback, through the root action, undoes it once committed.
    repo.commit("promote dev to staging");
    let run = runner.run(
        &action("."),
        &[
            ("install", "path"),
            ("command", "rollback"),
            ("args", "staging --write"),
        ],
    );
    assert_ok(&run);
    assert_eq!(run.output("changed"), "true");
    assert_eq!(run.output("written"), "true");
    assert_eq!(
        std::fs::read_to_string(repo.path().join("environments/staging/environment.yaml")).unwrap(),
        "# staging\nparameters: {AppVersion: '0.9.0'}\n"
    );
}

// ---------------------------------------------------------------------------
// The installer

/// A copy of what the runner downloads for the action (its files, the
/// manifest the version comes from), with `checksums.txt` for `assets`.
struct ActionCopy {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    server_root: PathBuf,
    bin: PathBuf,
}

fn asset_name(version: &str) -> String {
    let os = if cfg!(target_os = "macos") {
        "macos"
    } else {
        "linux"
    };
    let arch = if cfg!(target_arch = "aarch64") {
        "aarch64"
    } else {
        "x86_64"
    };
    format!("gitops-v{version}-{os}-{arch}")
}

fn version() -> String {
    let toml = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    toml.lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string()
}

/// A fake release binary: answers --version and records its calls.
fn fake_gitops(tag: &str) -> String {
    format!("#!/usr/bin/env bash\nif [ \"${{1:-}}\" = --version ]; then echo 'gitops {tag}'; exit 0; fi\necho \"fake gitops {tag}: $*\"\n")
}

impl ActionCopy {
    /// `served`: the bytes the server answers for this runner's asset
    /// (None: 404). `committed`: the bytes whose checksum is committed
    /// (None: no line for this asset).
    fn new(served: Option<&str>, committed: Option<&str>) -> ActionCopy {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("action");
        std::fs::create_dir_all(root.join("action")).unwrap();
        for f in ["action.yml", "Cargo.toml", "Cargo.lock"] {
            std::fs::copy(repo_root().join(f), root.join(f)).unwrap();
        }
        for f in ["install.sh", "lib.sh"] {
            std::fs::copy(
                repo_root().join("action").join(f),
                root.join("action").join(f),
            )
            .unwrap();
        }
        let v = version();
        let asset = asset_name(&v);
        // checksums.txt as the release script writes it
        let stage = tmp.path().join("stage");
        std::fs::create_dir_all(&stage).unwrap();
        if let Some(c) = committed {
            std::fs::write(stage.join(&asset), c).unwrap();
        }
        std::fs::write(stage.join(format!("gitops-v{v}-other-os")), "x").unwrap();
        let out = std::process::Command::new("bash")
            .arg(repo_root().join("scripts/release.sh"))
            .args(["checksums", stage.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(root.join("action/checksums.txt"), &out.stdout).unwrap();
        let server_root = tmp.path().join("server");
        std::fs::create_dir_all(server_root.join(format!("v{v}"))).unwrap();
        if let Some(s) = served {
            std::fs::write(server_root.join(format!("v{v}")).join(&asset), s).unwrap();
        }
        // A stand-in cargo that "builds" a fake binary where asked.
        let bin = tmp.path().join("bin");
        write_exe(
            &bin.join("cargo"),
            &format!(
                r#"#!/usr/bin/env bash
set -eu
printf '%s\n' "$*" >>"{log}"
target=
while [ $# -gt 0 ]; do
  if [ "$1" = --target-dir ]; then target=$2; fi
  shift
done
mkdir -p "$target/release"
cat >"$target/release/gitops" <<'EOF'
{fake}EOF
chmod +x "$target/release/gitops"
"#,
                log = tmp.path().join("cargo.log").display(),
                fake = fake_gitops("built"),
            ),
        );
        // and a rustc of the version FAKE_RUSTC_VERSION says (default: new enough).
        write_exe(
            &bin.join("rustc"),
            "#!/usr/bin/env bash\necho \"rustc ${FAKE_RUSTC_VERSION:-99.0.0} (stand-in)\"\n",
        );
        ActionCopy {
            _tmp: tmp,
            root,
            server_root,
            bin,
        }
    }

    fn cargo_calls(&self) -> String {
        std::fs::read_to_string(self._tmp.path().join("cargo.log")).unwrap_or_default()
    }

    fn runner(&self, server: &FileServer, with_cargo: bool) -> Runner {
        let ws = self._tmp.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        let mut r = Runner::new(&ws);
        if with_cargo {
            r.path.push(self.bin.clone());
        }
        r.set_env("GITOPS_RELEASE_BASE_URL", &server.url);
        r
    }
}

#[test]
fn install_verifies_the_release_binary_and_caches_it() {
    let fake = fake_gitops("released");
    let copy = ActionCopy::new(Some(&fake), Some(&fake));
    let server = FileServer::start(&copy.server_root);
    let runner = copy.runner(&server, true);
    let run = runner.run(&copy.root, &[("command", "status")]);
    assert_ok(&run);
    let install = &run.step("install").outputs;
    assert_eq!(install["source"], "release");
    assert_eq!(install["version"], version());
    let bin = PathBuf::from(&install["bin"]);
    assert!(
        bin.starts_with(runner.tool_cache().join("gitops").join(version())),
        "{bin:?}"
    );
    assert!(runner
        .tool_cache()
        .join("gitops")
        .join(version())
        .join(if cfg!(target_arch = "aarch64") {
            "aarch64.complete"
        } else {
            "x86_64.complete"
        })
        .is_file());
    assert!(
        run.log().contains("fake gitops released: status --repo ."),
        "{}",
        run.log()
    );
    assert_eq!(run.output("gitops-version"), version());
    assert_eq!(
        server.requests(),
        vec![format!("/v{}/{}", version(), asset_name(&version()))]
    );
    assert_eq!(copy.cargo_calls(), "", "no build");

    // Again: from the tool cache, no download.
    let run = runner.run(&copy.root, &[("command", "status")]);
    assert_ok(&run);
    assert_eq!(run.step("install").outputs["source"], "cache");
    assert_eq!(server.requests().len(), 1);

    // A tampered cache entry is noticed and replaced, also when the
    // actions cache restores the tampered copy.
    std::fs::write(&bin, fake_gitops("tampered")).unwrap();
    let mut poisoned = 0;
    let mut dirs = vec![runner.cache.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.file_name().is_some_and(|n| n == "gitops") {
                std::fs::write(&p, fake_gitops("tampered")).unwrap();
                poisoned += 1;
            }
        }
    }
    assert_eq!(
        poisoned, 1,
        "the first run saved the binary in the actions cache"
    );
    let run = runner.run(&copy.root, &[("command", "status")]);
    assert_ok(&run);
    assert_eq!(run.step("install").outputs["source"], "release");
    assert!(run.log().contains("fake gitops released"), "{}", run.log());
}

#[test]
fn install_refuses_a_binary_whose_checksum_differs() {
    let copy = ActionCopy::new(Some(&fake_gitops("evil")), Some(&fake_gitops("released")));
    let server = FileServer::start(&copy.server_root);
    let runner = copy.runner(&server, true);
    for mode in ["", "release"] {
        let run = runner.run(&copy.root, &[("command", "status"), ("install", mode)]);
        assert!(!run.success, "{}", run.log());
        assert!(!run.ran("run"), "the command never runs");
        let log = run.log();
        assert!(
            log.contains("::error title=gitops install::checksum mismatch for gitops-v"),
            "{log}"
        );
        assert!(!log.contains("fake gitops evil"), "{log}");
        assert_eq!(
            copy.cargo_calls(),
            "",
            "a mismatch is never a reason to build"
        );
        assert!(!runner.tool_cache().join("gitops").join(version()).exists());
    }
}

#[test]
fn install_builds_from_source_when_there_is_no_release_asset() {
    // The checksum is committed but the asset is missing (404).
    let fake = fake_gitops("released");
    let copy = ActionCopy::new(None, Some(&fake));
    let server = FileServer::start(&copy.server_root);
    let runner = copy.runner(&server, true);
    let run = runner.run(&copy.root, &[("command", "status")]);
    assert_ok(&run);
    assert_eq!(run.step("install").outputs["source"], "build");
    assert!(run.log().contains("HTTP 404"), "{}", run.log());
    assert!(
        run.log().contains("fake gitops built: status"),
        "{}",
        run.log()
    );
    let calls = copy.cargo_calls();
    assert!(
        calls.starts_with("build --release --locked -p gitops-action --bin gitops --target-dir "),
        "{calls}"
    );
    let bin = PathBuf::from(&run.step("install").outputs["bin"]);
    assert!(
        bin.starts_with(runner.tool_cache().join("gitops")),
        "{bin:?}"
    );
    assert!(
        bin.parent()
            .unwrap()
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("{}-src.", version())),
        "keyed by the sources: {bin:?}"
    );
    // The second time the build comes from the tool cache.
    let run = runner.run(&copy.root, &[("command", "status")]);
    assert_ok(&run);
    assert_eq!(run.step("install").outputs["source"], "cache");
    assert_eq!(copy.cargo_calls().lines().count(), 1);

    // install: release never builds.
    let run = copy
        .runner(&server, true)
        .run(&copy.root, &[("command", "status"), ("install", "release")]);
    assert!(!run.success);
    assert!(run.log().contains("no release binary"), "{}", run.log());

    // Without cargo the failure says what to do.
    let fresh = ActionCopy::new(None, None);
    let server = FileServer::start(&fresh.server_root);
    let run = fresh
        .runner(&server, false)
        .run(&fresh.root, &[("command", "status"), ("install", "build")]);
    if which("cargo").is_none() {
        assert!(!run.success);
        assert!(run.log().contains("needs cargo"), "{}", run.log());
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[test]
fn install_builds_when_the_version_has_no_committed_checksum() {
    // A fork or an unreleased commit: no line in checksums.txt, no download.
    let copy = ActionCopy::new(Some(&fake_gitops("released")), None);
    let server = FileServer::start(&copy.server_root);
    let run = copy
        .runner(&server, true)
        .run(&copy.root, &[("command", "status")]);
    assert_ok(&run);
    assert_eq!(run.step("install").outputs["source"], "build");
    assert!(
        server.requests().is_empty(),
        "nothing to verify, so nothing downloaded"
    );
    assert!(run.log().contains("no released binary"), "{}", run.log());
}

#[test]
fn install_path_uses_the_gitops_on_path() {
    let copy = ActionCopy::new(None, None);
    let server = FileServer::start(&copy.server_root);
    let runner = copy.runner(&server, false);
    let run = runner.run(&copy.root, &[("command", "status"), ("install", "path")]);
    if which("gitops").is_none() {
        assert!(!run.success);
        assert!(run.log().contains("no gitops on PATH"), "{}", run.log());
    }
    let s = Stubbed::new();
    let run = s.runner.run(&copy.root, &[("command", "status")]);
    assert_ok(&run);
    assert_eq!(run.step("install").outputs["source"], "path");
    assert!(server.requests().is_empty());
}

/// Runners that share one actions cache: the jobs of a workflow, and later
/// runs, on fresh machines (each with an empty tool cache, at the one path
/// hosted runners use). `store` holds the cache and that path.
fn jobs(copy: &ActionCopy, server: &FileServer, store: &Path) -> impl Fn() -> Runner {
    let base = copy.runner(server, true);
    let (path, env) = (base.path.clone(), base.env.clone());
    let ws = base.workspace.clone();
    let store = store.to_path_buf();
    move || {
        let mut r = Runner::new(&ws);
        r.path = path.clone();
        r.env = env.clone();
        r.cache = store.join("actions-cache");
        r.tool_cache_dir = store.join("hostedtoolcache");
        let _ = std::fs::remove_dir_all(&r.tool_cache_dir);
        std::fs::create_dir_all(&r.tool_cache_dir).unwrap();
        std::fs::create_dir_all(&r.cache).unwrap();
        r
    }
}

#[test]
fn a_later_job_restores_the_built_binary_from_the_actions_cache_without_building() {
    // No release binary for this version: the first job builds.
    let copy = ActionCopy::new(None, None);
    let server = FileServer::start(&copy.server_root);
    let store = tempfile::tempdir().unwrap();
    let job = jobs(&copy, &server, store.path());

    let first = job();
    let run = first.run(&copy.root, &[("command", "status")]);
    assert_ok(&run);
    let key = run.step("cache-key").outputs["key"].clone();
    let (os, arch) = asset_name("x")
        .strip_prefix("gitops-vx-")
        .unwrap()
        .split_once('-')
        .map(|(o, a)| (o.to_string(), a.to_string()))
        .unwrap();
    assert!(
        key.starts_with(&format!("gitops-{os}-{arch}-v{}-", version())) && key.ends_with("-auto"),
        "the key names the OS, the architecture, the version and a hash of the action: {key}"
    );
    assert_eq!(run.step("cache").outputs["cache-hit"], "false");
    assert_eq!(run.step("install").outputs["source"], "build");
    assert!(
        run.step("cache-save")
            .stdout
            .contains(&format!("Cache saved with key: {key}")),
        "{}",
        run.log()
    );
    assert_eq!(copy.cargo_calls().lines().count(), 1);

    // A later job on a fresh runner: restored, not built, not saved again.
    let second = job();
    assert!(!second.tool_cache().join("gitops").exists());
    let run = second.run(&copy.root, &[("command", "status")]);
    assert_ok(&run);
    assert_eq!(run.step("cache").outputs["cache-hit"], "true");
    assert_eq!(run.step("install").outputs["source"], "cache");
    assert!(
        run.log()
            .contains("restored by actions/cache: no download, no build"),
        "{}",
        run.log()
    );
    assert!(!run.ran("cache-save"), "nothing new to save");
    assert!(
        run.log().contains("fake gitops built: status"),
        "{}",
        run.log()
    );
    assert_eq!(copy.cargo_calls().lines().count(), 1, "no second build");
    assert!(server.requests().is_empty());

    // Another version of the action (its sources changed) has its own key.
    let lock = copy.root.join("Cargo.lock");
    let text = std::fs::read_to_string(&lock).unwrap();
    std::fs::write(&lock, format!("{text}\n# changed\n")).unwrap();
    let run = job().run(&copy.root, &[("command", "status")]);
    assert_ok(&run);
    assert_ne!(run.step("cache-key").outputs["key"], key);
    assert_eq!(run.step("cache").outputs["cache-hit"], "false");
    assert_eq!(run.step("install").outputs["source"], "build");
    assert_eq!(copy.cargo_calls().lines().count(), 2);

    // install: path caches nothing.
    let run = job().run(&copy.root, &[("command", "status"), ("install", "path")]);
    assert!(!run.ran("cache") && !run.ran("cache-save"), "{}", run.log());
}

#[test]
fn a_later_job_restores_the_release_binary_from_the_actions_cache_without_downloading() {
    let fake = fake_gitops("released");
    let copy = ActionCopy::new(Some(&fake), Some(&fake));
    let server = FileServer::start(&copy.server_root);
    let store = tempfile::tempdir().unwrap();
    let job = jobs(&copy, &server, store.path());
    let run = job().run(&copy.root, &[("command", "status")]);
    assert_ok(&run);
    assert_eq!(run.step("install").outputs["source"], "release");
    assert!(run.ran("cache-save"));
    assert_eq!(server.requests().len(), 1);
    for _ in 0..2 {
        let run = job().run(&copy.root, &[("command", "status")]);
        assert_ok(&run);
        assert_eq!(run.step("cache").outputs["cache-hit"], "true");
        assert_eq!(run.step("install").outputs["source"], "cache");
        assert!(run.log().contains("fake gitops released: status"));
    }
    assert_eq!(server.requests().len(), 1, "downloaded once");
    assert_eq!(copy.cargo_calls(), "", "never built");
}

#[test]
fn a_build_with_an_old_rust_says_which_rust_it_needs() {
    let copy = ActionCopy::new(None, None);
    let server = FileServer::start(&copy.server_root);
    let mut runner = copy.runner(&server, true);
    runner.set_env("FAKE_RUSTC_VERSION", "1.80.0");
    let run = runner.run(&copy.root, &[("command", "status"), ("install", "build")]);
    assert!(!run.success);
    let toml = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let min = toml
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .unwrap()
        .trim_end_matches('"');
    assert!(
        run.log().contains(&format!(
            "building gitops from source needs Rust {min} or later, and this runner has rustc 1.80.0"
        )),
        "{}",
        run.log()
    );
    assert_eq!(copy.cargo_calls(), "", "cargo never runs");
}
