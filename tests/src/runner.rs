//! A stand-in for the GitHub Actions runner that runs a composite action
//! (`action.yml`) the way the real runner does, strictly enough to catch
//! what act does not:
//!
//! - no `INPUT_*` variables: a composite action sees its inputs only through
//!   `${{ inputs.x }}` (so every input must be mapped through `env:`);
//! - expressions limited to `inputs`, `steps.<id>.outputs`, `env` and
//!   `github.action_path`, and none at all inside `run:` (a script with
//!   `${{` fails the run: that is how injection happens);
//! - each step gets fresh `GITHUB_OUTPUT`, `GITHUB_ENV`, `GITHUB_PATH` and
//!   `GITHUB_STEP_SUMMARY` files, and runs as
//!   `bash --noprofile --norc -eo pipefail SCRIPT` with a clean environment;
//! - the event payload is a fresh `GITHUB_EVENT_PATH` file;
//! - step outputs are parsed from `GITHUB_OUTPUT` (`name=value` and
//!   `name<<DELIMITER` heredocs), and the action's `outputs:` are evaluated
//!   from them.
//!
//! - `if:` conditions of the forms `A == B`, `A != B`, `!A` and `A`,
//!   joined by `&&` and `||`, over the same contexts and `'strings'` (a
//!   skipped step is left out of [`ActionRun::steps`]);
//! - `uses:` only for stand-ins of the actions listed in [`STAND_INS`],
//!   pinned by a full commit SHA, with only the inputs the real action
//!   declares: `actions/cache/restore` and `actions/cache/save` keep their
//!   entries in [`Runner::cache`], a folder that several runners (the jobs
//!   of a workflow, and later runs) may share.
//!
//! Run steps must say `shell: bash`; anything else makes the run panic, so
//! an action that needs more must grow the harness first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;
use tempfile::TempDir;

/// The result of one step.
#[derive(Debug, Clone)]
pub struct StepResult {
    /// Its `id`, if any.
    pub id: Option<String>,
    /// Its exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// What it printed on standard output.
    pub stdout: String,
    /// What it printed on standard error.
    pub stderr: String,
    /// Its outputs, from `GITHUB_OUTPUT`.
    pub outputs: BTreeMap<String, String>,
    /// How long it ran.
    pub duration: std::time::Duration,
}

/// The result of running an action.
#[derive(Debug, Clone)]
pub struct ActionRun {
    /// Whether every step succeeded.
    pub success: bool,
    /// The action's outputs, evaluated from its `outputs:`.
    pub outputs: BTreeMap<String, String>,
    /// The steps that ran, in order (a failed step is the last).
    pub steps: Vec<StepResult>,
    /// Everything the steps appended to `GITHUB_STEP_SUMMARY`.
    pub summary: String,
    /// Variables the steps exported through `GITHUB_ENV`.
    pub exported: BTreeMap<String, String>,
}

/// The actions a composite action may `uses:` here, each with the inputs
/// its real `action.yml` declares (actions/cache v5.0.5).
pub const STAND_INS: &[(&str, &[&str])] = &[
    (
        "actions/cache/restore",
        &[
            "path",
            "key",
            "restore-keys",
            "enableCrossOsArchive",
            "fail-on-cache-miss",
            "lookup-only",
        ],
    ),
    (
        "actions/cache/save",
        &["path", "key", "upload-chunk-size", "enableCrossOsArchive"],
    ),
];

impl ActionRun {
    /// The step with id `id` that ran. Panics when there is none.
    pub fn step(&self, id: &str) -> &StepResult {
        self.steps
            .iter()
            .find(|s| s.id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no step `{id}` ran:\n{}", self.log()))
    }

    /// Whether the step with id `id` ran.
    pub fn ran(&self, id: &str) -> bool {
        self.steps.iter().any(|s| s.id.as_deref() == Some(id))
    }

    /// Standard output and standard error of every step, one after the other.
    pub fn log(&self) -> String {
        let mut s = String::new();
        for st in &self.steps {
            s.push_str(&st.stdout);
            s.push_str(&st.stderr);
        }
        s
    }

    /// The output `name` ("" when unset, as the runner gives it).
    pub fn output(&self, name: &str) -> &str {
        self.outputs.get(name).map(String::as_str).unwrap_or("")
    }
}

/// A job environment in which actions run: a workspace, a `PATH`, job-level
/// environment variables and an event.
#[derive(Debug)]
pub struct Runner {
    tmp: TempDir,
    /// `GITHUB_WORKSPACE`, the default working directory of every step.
    pub workspace: PathBuf,
    /// Folders put before the system `PATH`, first one first.
    pub path: Vec<PathBuf>,
    /// Job-level environment variables (`env:` of the job), which every step sees.
    pub env: BTreeMap<String, String>,
    /// `GITHUB_EVENT_NAME`.
    pub event_name: String,
    /// The event payload, written to a fresh `GITHUB_EVENT_PATH` for each run.
    pub event: serde_json::Value,
    /// Where the `actions/cache` stand-ins keep their entries (one folder
    /// per key). Each runner starts with its own; point several runners at
    /// one folder to model jobs that share the repository's cache.
    pub cache: PathBuf,
    /// `RUNNER_TOOL_CACHE`: the runner's own folder unless set. GitHub's
    /// hosted runners all use one path (a fresh, empty folder per job), which
    /// the actions cache relies on: its entries are found by key and paths.
    pub tool_cache_dir: PathBuf,
}

impl Runner {
    /// A runner whose workspace is `workspace`, with a `push` event and an
    /// empty payload.
    pub fn new(workspace: &Path) -> Runner {
        let tmp = tempfile::tempdir().expect("temporary folder");
        for d in ["home", "temp", "tool-cache", "files", "cache"] {
            std::fs::create_dir_all(tmp.path().join(d)).expect("create folder");
        }
        Runner {
            cache: tmp.path().join("cache"),
            tool_cache_dir: tmp.path().join("tool-cache"),
            tmp,
            workspace: workspace.to_path_buf(),
            path: Vec::new(),
            env: BTreeMap::new(),
            event_name: "push".into(),
            event: serde_json::json!({}),
        }
    }

    /// `RUNNER_TEMP`.
    pub fn runner_temp(&self) -> PathBuf {
        self.tmp.path().join("temp")
    }

    /// `RUNNER_TOOL_CACHE`.
    pub fn tool_cache(&self) -> PathBuf {
        self.tool_cache_dir.clone()
    }

    /// Sets a job-level environment variable.
    pub fn set_env(&mut self, key: &str, value: &str) -> &mut Self {
        assert!(
            !key.starts_with("INPUT_"),
            "the runner gives composite actions no INPUT_* variables"
        );
        self.env.insert(key.into(), value.into());
        self
    }

    /// The variables the runner itself sets for every step.
    fn runner_env(&self, event_path: &Path) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let mut path: Vec<PathBuf> = self.path.clone();
        if let Some(sys) = std::env::var_os("PATH") {
            path.extend(std::env::split_paths(&sys));
        }
        let path = std::env::join_paths(path).expect("PATH entries without separators");
        let os = if cfg!(target_os = "macos") {
            "macOS"
        } else {
            "Linux"
        };
        let arch = if cfg!(target_arch = "aarch64") {
            "ARM64"
        } else {
            "X64"
        };
        let s = |p: &Path| p.to_string_lossy().into_owned();
        for (k, v) in [
            ("PATH", path.to_string_lossy().into_owned()),
            ("HOME", s(&self.tmp.path().join("home"))),
            ("CI", "true".into()),
            ("GITHUB_ACTIONS", "true".into()),
            ("GITHUB_WORKSPACE", s(&self.workspace)),
            ("GITHUB_EVENT_NAME", self.event_name.clone()),
            ("GITHUB_EVENT_PATH", s(event_path)),
            ("GITHUB_REPOSITORY", "acme/app".into()),
            ("GITHUB_SERVER_URL", "https://github.com".into()),
            ("GITHUB_API_URL", "https://api.github.com".into()),
            ("RUNNER_OS", os.into()),
            ("RUNNER_ARCH", arch.into()),
            ("RUNNER_TEMP", s(&self.runner_temp())),
            ("RUNNER_TOOL_CACHE", s(&self.tool_cache())),
            ("LANG", "C.UTF-8".into()),
        ] {
            env.insert(k.to_string(), v);
        }
        for (k, v) in &self.env {
            env.insert(k.clone(), v.clone());
        }
        env
    }

    /// Runs the composite action in folder `action` (its `action.yml`)
    /// with `inputs`. Panics on what the real runner would reject (an
    /// unknown input) and on what this harness does not support.
    pub fn run(&self, action: &Path, inputs: &[(&str, &str)]) -> ActionRun {
        let file = action.join("action.yml");
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let doc: Value = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not YAML: {e}", file.display()));
        assert_eq!(
            doc["runs"]["using"].as_str(),
            Some("composite"),
            "{}: only composite actions",
            file.display()
        );
        let action_path = action
            .canonicalize()
            .unwrap_or_else(|_| action.to_path_buf());

        // One folder per run for the runner's files.
        let files = tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(self.tmp.path().join("files"))
            .expect("run folder")
            .keep();
        let event_path = files.join("event.json");
        std::fs::write(&event_path, self.event.to_string()).expect("write event");
        let mut env = self.runner_env(&event_path);

        let mut ctx = Context {
            inputs: BTreeMap::new(),
            steps: BTreeMap::new(),
            env: BTreeMap::new(),
            action_path: action_path.to_string_lossy().into_owned(),
        };
        // Inputs: declared ones with their defaults, then the given ones.
        let declared = doc["inputs"].as_mapping().cloned().unwrap_or_default();
        for (name, spec) in &declared {
            let name = name.as_str().expect("input names are strings").to_string();
            let default = scalar(&spec["default"]).unwrap_or_default();
            let value = ctx.eval(&default, &file);
            ctx.inputs.insert(name, value);
        }
        for (name, value) in inputs {
            assert!(
                ctx.inputs.contains_key(*name),
                "{}: no input named `{name}`",
                file.display()
            );
            ctx.inputs.insert(name.to_string(), value.to_string());
        }
        let mut run = ActionRun {
            success: true,
            outputs: BTreeMap::new(),
            steps: Vec::new(),
            summary: String::new(),
            exported: BTreeMap::new(),
        };
        let steps = doc["runs"]["steps"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        for (i, step) in steps.iter().enumerate() {
            let map = step.as_mapping().expect("a step is a mapping");
            for key in map.keys() {
                let key = key.as_str().unwrap_or_default();
                assert!(
                    [
                        "id",
                        "name",
                        "shell",
                        "env",
                        "run",
                        "working-directory",
                        "if",
                        "uses",
                        "with"
                    ]
                    .contains(&key),
                    "{}: step {i}: `{key}` is not supported by this harness",
                    file.display()
                );
            }
            ctx.env = env.clone();
            if let Some(cond) = scalar(&step["if"]) {
                if !ctx.condition(&cond, &file) {
                    continue;
                }
            }
            if let Some(uses) = scalar(&step["uses"]) {
                assert!(
                    step["run"].is_null() && step["shell"].is_null(),
                    "{}: step {i}: `uses:` with `run:` or `shell:`",
                    file.display()
                );
                let mut with = BTreeMap::new();
                if let Some(m) = step["with"].as_mapping() {
                    for (k, v) in m {
                        let k = k.as_str().expect("with: names are strings").to_string();
                        with.insert(k, ctx.eval(&scalar(v).unwrap_or_default(), &file));
                    }
                }
                let started = std::time::Instant::now();
                let (ok, stdout, outputs) = self.stand_in(&uses, &with, &file);
                let id = scalar(&step["id"]);
                if let Some(id) = &id {
                    ctx.steps.insert(id.clone(), outputs.clone());
                }
                run.steps.push(StepResult {
                    id,
                    code: Some(if ok { 0 } else { 1 }),
                    stdout,
                    stderr: String::new(),
                    outputs,
                    duration: started.elapsed(),
                });
                if !ok {
                    run.success = false;
                    break;
                }
                continue;
            }
            assert!(
                step["with"].is_null(),
                "{}: step {i}: `with:` without `uses:`",
                file.display()
            );
            assert_eq!(
                step["shell"].as_str(),
                Some("bash"),
                "{}: step {i}: composite run steps must say `shell: bash`",
                file.display()
            );
            let script = step["run"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: step {i} has no run", file.display()));
            assert!(
                !script.contains("${{"),
                "{}: step {i}: an expression inside run: is an injection risk; map it through env:",
                file.display()
            );
            ctx.env = env.clone();
            let mut step_env = env.clone();
            if let Some(m) = step["env"].as_mapping() {
                for (k, v) in m {
                    let k = k.as_str().expect("env names are strings").to_string();
                    let v = ctx.eval(&scalar(v).unwrap_or_default(), &file);
                    step_env.insert(k, v);
                }
            }
            step_env.insert(
                "GITHUB_ACTION_PATH".into(),
                action_path.to_string_lossy().into_owned(),
            );
            let f = |n: &str| files.join(format!("step{i}-{n}"));
            let (out_file, env_file, path_file, summary_file) =
                (f("output"), f("env"), f("path"), f("summary"));
            for p in [&out_file, &env_file, &path_file, &summary_file] {
                std::fs::write(p, "").expect("create runner file");
            }
            for (k, p) in [
                ("GITHUB_OUTPUT", &out_file),
                ("GITHUB_ENV", &env_file),
                ("GITHUB_PATH", &path_file),
                ("GITHUB_STEP_SUMMARY", &summary_file),
            ] {
                step_env.insert(k.into(), p.to_string_lossy().into_owned());
            }
            assert!(
                !step_env.keys().any(|k| k.starts_with("INPUT_")),
                "no INPUT_* variable may reach a composite step"
            );
            let script_file = f("script.sh");
            std::fs::write(&script_file, script).expect("write script");
            let cwd = match scalar(&step["working-directory"]) {
                Some(wd) => {
                    let wd = ctx.eval(&wd, &file);
                    self.workspace.join(wd)
                }
                None => self.workspace.clone(),
            };
            let started = std::time::Instant::now();
            let out = Command::new("bash")
                .args(["--noprofile", "--norc", "-eo", "pipefail"])
                .arg(&script_file)
                .env_clear()
                .envs(&step_env)
                .current_dir(&cwd)
                .output()
                .expect("bash runs");
            let outputs =
                parse_output_file(&std::fs::read_to_string(&out_file).unwrap_or_default());
            let exported =
                parse_output_file(&std::fs::read_to_string(&env_file).unwrap_or_default());
            for (k, v) in &exported {
                env.insert(k.clone(), v.clone());
                run.exported.insert(k.clone(), v.clone());
            }
            let added = std::fs::read_to_string(&path_file).unwrap_or_default();
            for dir in added.lines().filter(|l| !l.trim().is_empty()) {
                let old = env.get("PATH").cloned().unwrap_or_default();
                env.insert("PATH".into(), format!("{dir}:{old}"));
            }
            run.summary
                .push_str(&std::fs::read_to_string(&summary_file).unwrap_or_default());
            let id = scalar(&step["id"]);
            if let Some(id) = &id {
                ctx.steps.insert(id.clone(), outputs.clone());
            }
            let ok = out.status.success();
            run.steps.push(StepResult {
                id,
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                outputs,
                duration: started.elapsed(),
            });
            if !ok {
                run.success = false;
                break;
            }
        }
        ctx.env = env;
        if let Some(outs) = doc["outputs"].as_mapping() {
            for (name, spec) in outs {
                let name = name.as_str().expect("output names are strings").to_string();
                let value = scalar(&spec["value"]).unwrap_or_default();
                run.outputs.insert(name, ctx.eval(&value, &file));
            }
        }
        run
    }
}

impl Runner {
    /// Runs the stand-in for `uses` with inputs `with`: (success, log,
    /// outputs). Panics on an action without a stand-in, one not pinned by
    /// a full commit SHA, or an input the real action does not declare.
    fn stand_in(
        &self,
        uses: &str,
        with: &BTreeMap<String, String>,
        file: &Path,
    ) -> (bool, String, BTreeMap<String, String>) {
        let (name, sha) = uses
            .split_once('@')
            .unwrap_or_else(|| panic!("{}: `uses: {uses}` has no ref", file.display()));
        assert!(
            sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
            "{}: `uses: {uses}` is not pinned by a full commit SHA",
            file.display()
        );
        let inputs = STAND_INS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, inputs)| *inputs)
            .unwrap_or_else(|| {
                panic!(
                    "{}: this harness has no stand-in for `uses: {uses}`",
                    file.display()
                )
            });
        for k in with.keys() {
            assert!(
                inputs.contains(&k.as_str()),
                "{}: `{name}` has no input `{k}`",
                file.display()
            );
        }
        let key = with.get("key").cloned().unwrap_or_default();
        let paths: Vec<PathBuf> = with
            .get("path")
            .map(String::as_str)
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect();
        let mut outputs = BTreeMap::new();
        if key.is_empty() || paths.is_empty() {
            return (
                false,
                "Error: Input required and not supplied: key and path\n".into(),
                outputs,
            );
        }
        assert!(
            paths.iter().all(|p| p.is_absolute()),
            "{}: the cache stand-in takes absolute paths only: {paths:?}",
            file.display()
        );
        // Like the real cache, an entry is found by its key and the exact
        // list of paths (part of the entry's version).
        let entry = self.cache.join(cache_entry_name(&key));
        let path_list: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
        if name == "actions/cache/restore" {
            outputs.insert("cache-primary-key".into(), key.clone());
            let hit = std::fs::read_to_string(entry.join("paths")).ok() == Some(path_list);
            if !hit {
                outputs.insert("cache-hit".into(), "false".into());
                return (
                    true,
                    format!("Cache not found for input keys: {key}\n"),
                    outputs,
                );
            }
            for p in &paths {
                let saved = entry.join("files").join(p.strip_prefix("/").unwrap_or(p));
                if saved.exists() {
                    copy_tree(&saved, p);
                }
            }
            outputs.insert("cache-hit".into(), "true".into());
            outputs.insert("cache-matched-key".into(), key.clone());
            (true, format!("Cache restored from key: {key}\n"), outputs)
        } else {
            if entry.exists() {
                return (
                    true,
                    format!("Warning: Failed to save: Unable to reserve cache with key {key}, another job may be creating this cache.\n"),
                    outputs,
                );
            }
            let existing: Vec<&PathBuf> = paths.iter().filter(|p| p.exists()).collect();
            if existing.is_empty() {
                return (
                    false,
                    "Error: Path Validation Error: Path(s) specified in the action for caching do(es) not exist, hence no cache is being saved.\n".into(),
                    outputs,
                );
            }
            std::fs::create_dir_all(entry.join("files")).expect("cache entry");
            for p in existing {
                copy_tree(
                    p,
                    &entry.join("files").join(p.strip_prefix("/").unwrap_or(p)),
                );
            }
            std::fs::write(entry.join("paths"), path_list).expect("cache entry");
            (true, format!("Cache saved with key: {key}\n"), outputs)
        }
    }
}

/// A folder name for a cache key.
fn cache_entry_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Copies the file or folder `from` to `to`, with permissions.
fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("create folder");
        for e in std::fs::read_dir(from).expect("read folder") {
            let e = e.expect("folder entry");
            copy_tree(&e.path(), &to.join(e.file_name()));
        }
    } else {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).expect("create folder");
        }
        std::fs::copy(from, to).expect("copy file");
    }
}

/// A scalar as the runner sees it: a string (numbers and booleans as written).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

struct Context {
    inputs: BTreeMap<String, String>,
    steps: BTreeMap<String, BTreeMap<String, String>>,
    env: BTreeMap<String, String>,
    action_path: String,
}

impl Context {
    /// Replaces each `${{ expr }}` in `s`; `expr` must be one of
    /// `inputs.NAME`, `steps.ID.outputs.NAME`, `env.NAME` or
    /// `github.action_path`.
    fn eval(&self, s: &str, file: &Path) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 3..];
            let end = after
                .find("}}")
                .unwrap_or_else(|| panic!("{}: unterminated expression in {s:?}", file.display()));
            let expr = after[..end].trim();
            out.push_str(&self.lookup(expr, file));
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// Evaluates an `if:` condition (with or without `${{ }}`): `||` of
    /// `&&` of `A == B`, `A != B`, `!A` or `A`, where an operand is a
    /// `'string'` or a context value; strings compare without case, and a
    /// value is true when it is not empty.
    fn condition(&self, cond: &str, file: &Path) -> bool {
        let cond = cond.trim();
        let cond = cond
            .strip_prefix("${{")
            .and_then(|c| c.strip_suffix("}}"))
            .unwrap_or(cond);
        cond.split("||").any(|alt| {
            alt.split("&&").all(|term| {
                let term = term.trim();
                if let Some((a, b)) = term.split_once("!=") {
                    !self
                        .operand(a, file)
                        .eq_ignore_ascii_case(&self.operand(b, file))
                } else if let Some((a, b)) = term.split_once("==") {
                    self.operand(a, file)
                        .eq_ignore_ascii_case(&self.operand(b, file))
                } else if let Some(a) = term.strip_prefix('!') {
                    self.operand(a, file).is_empty()
                } else {
                    !self.operand(term, file).is_empty()
                }
            })
        })
    }

    fn operand(&self, s: &str, file: &Path) -> String {
        let s = s.trim();
        match s.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
            Some(literal) => literal.replace("''", "'"),
            None => self.lookup(s, file),
        }
    }

    fn lookup(&self, expr: &str, file: &Path) -> String {
        let parts: Vec<&str> = expr.split('.').collect();
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        match parts.as_slice() {
            ["inputs", name] if name_ok(name) => {
                self.inputs.get(*name).cloned().unwrap_or_else(|| {
                    panic!("{}: `{expr}`: no such input", file.display())
                })
            }
            ["steps", id, "outputs", name] if name_ok(id) && name_ok(name) => self
                .steps
                .get(*id)
                .and_then(|o| o.get(*name))
                .cloned()
                .unwrap_or_default(),
            ["env", name] if name_ok(name) => self.env.get(*name).cloned().unwrap_or_default(),
            ["github", "action_path"] => self.action_path.clone(),
            _ => panic!(
                "{}: expression `{expr}` is outside what composite actions here may use (inputs, steps.<id>.outputs, env, github.action_path)",
                file.display()
            ),
        }
    }
}

/// Parses a `GITHUB_OUTPUT` / `GITHUB_ENV` file: `name=value` lines and
/// `name<<DELIMITER` … `DELIMITER` blocks. Panics on a malformed file, as
/// the runner fails the step.
pub fn parse_output_file(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let eq = line.find('=');
        let heredoc = line.find("<<");
        match (eq, heredoc) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                out.insert(line[..e].to_string(), line[e + 1..].to_string());
            }
            (_, Some(h)) => {
                let name = &line[..h];
                let delim = &line[h + 2..];
                assert!(!delim.is_empty(), "empty heredoc delimiter in {line:?}");
                let mut value: Vec<&str> = Vec::new();
                loop {
                    let l = lines
                        .next()
                        .unwrap_or_else(|| panic!("heredoc {delim:?} for {name} never ends"));
                    if l == delim {
                        break;
                    }
                    value.push(l);
                }
                out.insert(name.to_string(), value.join("\n"));
            }
            _ => panic!("malformed line in an output file: {line:?}"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_files_parse_both_forms() {
        let m = parse_output_file("a=1\nb<<EOF\nx=y\nz<<w\nEOF\nc=\n");
        assert_eq!(m["a"], "1");
        assert_eq!(m["b"], "x=y\nz<<w");
        assert_eq!(m["c"], "");
    }
}
