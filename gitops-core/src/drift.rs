//! Drift: how what AWS runs compares with what git wants. Pure: the AWS
//! reads, and their assessment, are in [`crate::deploy::inspect`]; this
//! module holds what they are made of: the comparison, the sync status,
//! the health and the reasons.
//!
//! Two answers per environment, as in Argo CD:
//!
//! - **sync** ([`Sync`]): does AWS run what git says? `Synced`, `OutOfSync`
//!   (with [`Reason`]s), or `Unknown` when an error prevented the check;
//! - **health** ([`Health`]): is what runs working? See [`health`].
//!
//! ```
//! use gitops_core::aws::Stack;
//! use gitops_core::drift::{health, Health};
//!
//! let stack = Stack { status: "UPDATE_COMPLETE".into(), ..Stack::default() };
//! assert_eq!(health(Some(&stack), None), Health::Healthy);
//! assert_eq!(health(None, None), Health::Missing);
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::aws::{ExecutionSummary, ResourceDrift, Stack};
use crate::model::{Environment, PromotedKey};
use crate::spec::{StackSpec, TAG_COMMIT, TAG_REMEDIATED};

/// Whether AWS runs what git says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Sync {
    /// Everything compared equal.
    Synced,
    /// At least one difference (see the reasons).
    OutOfSync,
    /// An error prevented the check.
    Unknown,
}

impl std::fmt::Display for Sync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sync::Synced => "Synced",
            Sync::OutOfSync => "OutOfSync",
            Sync::Unknown => "Unknown",
        })
    }
}

/// Whether what runs works, from the stack's and the pipeline's states (see [`health`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Health {
    /// The last operation succeeded.
    Healthy,
    /// An operation is running.
    Progressing,
    /// The last operation failed or was rolled back.
    Degraded,
    /// The environment's stack does not exist.
    Missing,
    /// The state is not known (an error, or a state not in the table).
    Unknown,
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Health::Healthy => "Healthy",
            Health::Progressing => "Progressing",
            Health::Degraded => "Degraded",
            Health::Missing => "Missing",
            Health::Unknown => "Unknown",
        })
    }
}

/// The health of an environment from its stack (the environment stack) and,
/// in pipeline mode, its pipeline's last execution. The first matching row wins:
///
/// | stack status | pipeline's last execution | health |
/// |---|---|---|
/// | `*_IN_PROGRESS` | any | `Progressing` |
/// | any | `InProgress`, `Stopping` | `Progressing` |
/// | no stack (or `DELETE_COMPLETE`) | any | `Missing` |
/// | `*_FAILED`, `*ROLLBACK*` | any | `Degraded` |
/// | any | `Failed`, `Stopped` | `Degraded` |
/// | `*_COMPLETE` | `Succeeded`, `Superseded`, `Cancelled`, or none | `Healthy` |
/// | anything else | | `Unknown` |
pub fn health(stack: Option<&Stack>, last_execution: Option<&ExecutionSummary>) -> Health {
    let pipeline = last_execution.map(|e| e.status.as_str());
    let stack = stack.filter(|s| !s.is_deleted());
    if stack.is_some_and(Stack::is_in_progress)
        || matches!(pipeline, Some("InProgress" | "Stopping"))
    {
        return Health::Progressing;
    }
    let Some(stack) = stack else {
        return Health::Missing;
    };
    if stack.is_failed() || stack.status.contains("ROLLBACK") {
        return Health::Degraded;
    }
    if matches!(pipeline, Some("Failed" | "Stopped")) {
        return Health::Degraded;
    }
    if stack.status.ends_with("_COMPLETE")
        && matches!(
            pipeline,
            None | Some("Succeeded" | "Superseded" | "Cancelled")
        )
    {
        return Health::Healthy;
    }
    Health::Unknown
}

/// What a [`Reason`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ReasonKind {
    /// The stack does not exist.
    StackMissing,
    /// The deployed template differs from git's (after normalising).
    Template,
    /// A parameter's value differs.
    Parameter,
    /// A stack tag differs.
    Tag,
    /// A resource drifted (CloudFormation drift detection).
    Resource,
    /// Termination protection does not follow the environment's `protected`.
    TerminationProtection,
}

/// One difference between git and AWS.
///
/// `message` is what people read, such as
/// `parameters.AppVersion expected 1.2.0, actual 1.3.0`; the other fields are
/// the same, for programs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Reason {
    /// What it is about.
    pub kind: ReasonKind,
    /// The stack it was found on.
    pub stack: String,
    /// `parameters.<Name>`, `tags.<Key>`, `<LogicalId><PropertyPath>`, or
    /// the template's differing paths (comma-separated); `None` for a missing stack.
    pub key: Option<String>,
    /// Git's value (`None`: not set).
    pub expected: Option<String>,
    /// AWS's value (`None`: not set).
    pub actual: Option<String>,
    /// The line people read.
    pub message: String,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

const NOT_SET: &str = "(not set)";
const MAX_SHOWN: usize = 200;

fn shown(v: Option<&str>) -> String {
    match v {
        None => NOT_SET.to_string(),
        Some("") => "\"\"".to_string(),
        Some(s) if s.chars().count() > MAX_SHOWN => {
            format!("{}…", s.chars().take(MAX_SHOWN).collect::<String>())
        }
        Some(s) => s.to_string(),
    }
}

impl Reason {
    fn new(
        kind: ReasonKind,
        stack: &str,
        key: Option<String>,
        expected: Option<String>,
        actual: Option<String>,
        message: String,
    ) -> Self {
        Self {
            kind,
            stack: stack.to_string(),
            key,
            expected,
            actual,
            message,
        }
    }

    /// `stack missing (NAME)`.
    pub fn stack_missing(stack: &str) -> Self {
        Self::new(
            ReasonKind::StackMissing,
            stack,
            None,
            None,
            None,
            format!("stack missing ({stack})"),
        )
    }

    /// `template differs (Resources.Bucket, ...)`.
    pub fn template_differs(stack: &str, paths: &[String]) -> Self {
        let key = (!paths.is_empty()).then(|| paths.join(", "));
        let message = match &key {
            Some(k) => format!("template differs ({k})"),
            None => "template differs".to_string(),
        };
        Self::new(ReasonKind::Template, stack, key, None, None, message)
    }

    /// `parameters.NAME expected X, actual Y`.
    pub fn parameter(
        stack: &str,
        name: &str,
        expected: Option<&str>,
        actual: Option<&str>,
    ) -> Self {
        Self::difference(
            ReasonKind::Parameter,
            stack,
            format!("parameters.{name}"),
            expected,
            actual,
        )
    }

    /// `tags.KEY expected X, actual Y`.
    pub fn tag(stack: &str, key: &str, expected: Option<&str>, actual: Option<&str>) -> Self {
        Self::difference(
            ReasonKind::Tag,
            stack,
            format!("tags.{key}"),
            expected,
            actual,
        )
    }

    fn difference(
        kind: ReasonKind,
        stack: &str,
        key: String,
        expected: Option<&str>,
        actual: Option<&str>,
    ) -> Self {
        let message = format!(
            "{key} expected {}, actual {}",
            shown(expected),
            shown(actual)
        );
        Self::new(
            kind,
            stack,
            Some(key),
            expected.map(str::to_string),
            actual.map(str::to_string),
            message,
        )
    }

    /// `termination protection expected on, actual off` (and the other way).
    pub fn termination_protection(stack: &str, expected: bool) -> Self {
        let word = |b: bool| if b { "on" } else { "off" };
        Self::new(
            ReasonKind::TerminationProtection,
            stack,
            Some("termination-protection".into()),
            Some(word(expected).into()),
            Some(word(!expected).into()),
            format!(
                "termination protection expected {}, actual {} (`protected: {expected}`; a deploy sets it)",
                word(expected),
                word(!expected)
            ),
        )
    }

    /// A drifted resource: one reason per property difference, or one for
    /// the resource when it was deleted (or drifted without details).
    pub fn resources(stack: &str, r: &DriftedResource) -> Vec<Self> {
        if r.differences.is_empty() {
            return vec![Self::new(
                ReasonKind::Resource,
                stack,
                Some(r.logical_id.clone()),
                None,
                None,
                format!(
                    "resource {} ({}) {}",
                    r.logical_id, r.resource_type, r.status
                ),
            )];
        }
        r.differences
            .iter()
            .map(|d| {
                let key = format!("{}{}", r.logical_id, d.path);
                Self::new(
                    ReasonKind::Resource,
                    stack,
                    Some(key.clone()),
                    Some(d.expected.clone()),
                    Some(d.actual.clone()),
                    format!(
                        "resource {key} ({}) expected {}, actual {} ({})",
                        r.resource_type,
                        shown(Some(&d.expected)),
                        shown(Some(&d.actual)),
                        d.kind
                    ),
                )
            })
            .collect()
    }

    /// The same reason, found on the pipeline stack: the message says so.
    pub(crate) fn on_pipeline_stack(mut self) -> Self {
        self.message = format!("pipeline stack {}: {}", self.stack, self.message);
        self
    }
}

/// Tags that record what the tool did rather than what git wants; never compared.
pub const BOOKKEEPING_TAGS: &[&str] = &[TAG_COMMIT, TAG_REMEDIATED];

/// Compares a stack with what git wants: the template (normalised, so JSON
/// or YAML and key order do not matter; skipped when `deployed_template` is
/// `None`), every parameter the template declares (git's value, else the
/// template's `Default`; `NoEcho` ones are never compared, as AWS masks
/// them) and the stack tags (less [`BOOKKEEPING_TAGS`]).
pub fn compare(
    desired: &StackSpec,
    stack: &Stack,
    deployed_template: Option<&serde_json::Value>,
) -> Vec<Reason> {
    let mut out = Vec::new();
    if let Some(t) = deployed_template {
        if t != &desired.template_normalized {
            let mut paths = Vec::new();
            diff_paths(&desired.template_normalized, t, "", 2, &mut paths);
            out.push(Reason::template_differs(&desired.name, &paths));
        }
    }
    let declared = desired.template_normalized["Parameters"].as_object();
    let mut names: BTreeSet<&str> = desired.parameters.keys().map(String::as_str).collect();
    if let Some(d) = declared {
        names.extend(d.keys().map(String::as_str));
    }
    for name in names {
        if desired.secret_parameters.iter().any(|s| s == name) {
            continue;
        }
        let expected = desired.parameters.get(name).cloned().or_else(|| {
            declared
                .and_then(|d| d.get(name))
                .and_then(|p| p.get("Default"))
                .and_then(render_default)
        });
        let Some(expected) = expected else { continue };
        let actual = stack.parameters.get(name);
        if actual != Some(&expected) {
            out.push(Reason::parameter(
                &desired.name,
                name,
                Some(&expected),
                actual.map(String::as_str),
            ));
        }
    }
    let keep = |k: &String| !BOOKKEEPING_TAGS.contains(&k.as_str());
    let keys: BTreeSet<&String> = desired
        .tags
        .keys()
        .chain(stack.tags.keys())
        .filter(|k| keep(k))
        .collect();
    for key in keys {
        let (e, a) = (desired.tags.get(key), stack.tags.get(key));
        if e != a {
            out.push(Reason::tag(
                &desired.name,
                key,
                e.map(String::as_str),
                a.map(String::as_str),
            ));
        }
    }
    out
}

/// A template `Default` as CloudFormation passes it: lists comma-joined.
fn render_default(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value as J;
    match v {
        J::String(s) => Some(s.clone()),
        J::Number(n) => Some(n.to_string()),
        J::Bool(b) => Some(b.to_string()),
        J::Array(items) => Some(
            items
                .iter()
                .filter_map(render_default)
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    }
}

/// The dotted paths (at most `depth` deep, at most 5) where two JSON values differ.
fn diff_paths(
    a: &serde_json::Value,
    b: &serde_json::Value,
    at: &str,
    depth: usize,
    out: &mut Vec<String>,
) {
    if out.len() >= 5 || a == b {
        return;
    }
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) if depth > 0 => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => diff_paths(p, q, &path, depth - 1, out),
                    _ => {
                        if out.len() < 5 {
                            out.push(path)
                        }
                    }
                }
            }
        }
        _ => out.push(if at.is_empty() {
            "(root)".into()
        } else {
            at.into()
        }),
    }
}

/// The last execution of a pipeline, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PipelineRun {
    /// The pipeline's name.
    pub name: String,
    /// Its last execution's status (`Succeeded`, `InProgress`, ...).
    pub status: String,
    /// When it last changed (RFC 3339), else when it started.
    pub time: Option<String>,
    /// The first source revision it ran (a commit id).
    pub source_revision: Option<String>,
    /// The execution's id.
    pub execution_id: String,
}

impl PipelineRun {
    /// From a listed execution of pipeline `name`.
    pub fn new(name: &str, e: &ExecutionSummary) -> Self {
        Self {
            name: name.to_string(),
            status: e.status.clone(),
            time: e.last_update_time.clone().or_else(|| e.start_time.clone()),
            source_revision: e.source_revision().map(str::to_string),
            execution_id: e.id.clone(),
        }
    }
}

/// One row of `gitops status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EnvStatus {
    /// The environment.
    pub name: String,
    /// Its stack's name.
    pub stack: String,
    /// Its region.
    pub region: String,
    /// The promoted keys (such as `parameters.AppVersion`) in git.
    pub git_version: BTreeMap<String, Option<String>>,
    /// The same keys on the deployed stack (its parameters and tags).
    pub deployed_version: BTreeMap<String, Option<String>>,
    /// The `gitops:commit` the stack was last deployed from.
    pub commit: Option<String>,
    /// The stack's status; `None` when it does not exist.
    pub stack_status: Option<String>,
    /// The pipeline's last execution (pipeline mode, once it ran).
    pub pipeline: Option<PipelineRun>,
    /// Whether AWS runs what git says.
    pub sync: Sync,
    /// Whether it works.
    pub health: Health,
    /// The error that prevented the check (then `sync` is `Unknown`, unless
    /// differences were found before it).
    pub error: Option<String>,
    /// Whether head has changes not yet deployed: what `--base deployed`
    /// would act on (its verdict against the deployed commit is created or
    /// updated). `None` when that could not be read.
    pub pending: Option<bool>,
}

/// One resource CloudFormation drift detection did not find in sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DriftedResource {
    /// The stack.
    pub stack: String,
    /// Its logical id.
    pub logical_id: String,
    /// Its type.
    pub resource_type: String,
    /// `MODIFIED`, `DELETED`, `NOT_CHECKED` (a type drift detection does
    /// not support), `UNKNOWN`.
    pub status: String,
    /// What differs (for `MODIFIED`), less what `drift.ignore` leaves out.
    pub differences: Vec<Difference>,
}

impl DriftedResource {
    /// Whether it makes the environment OutOfSync (`MODIFIED`, `DELETED`),
    /// rather than being only reported (`NOT_CHECKED`, `UNKNOWN`).
    pub fn is_drift(&self) -> bool {
        matches!(self.status.as_str(), "MODIFIED" | "DELETED")
    }
}

/// One property difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Difference {
    /// The property path, such as `/Tags/0/Value`.
    pub path: String,
    /// The value the template gives.
    pub expected: String,
    /// The live value.
    pub actual: String,
    /// `ADD`, `REMOVE` or `NOT_EQUAL`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// What `--remediate` did (`redeployed`, `skipped` or `failed` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RemediationAction {
    /// The environment was redeployed.
    Redeployed,
    /// It was not attempted; the message says why.
    Skipped,
    /// The redeployment failed.
    Failed,
}

impl std::fmt::Display for RemediationAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RemediationAction::Redeployed => "redeployed",
            RemediationAction::Skipped => "skipped",
            RemediationAction::Failed => "failed",
        })
    }
}

/// What `--remediate` did for an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Remediation {
    /// What was done.
    pub action: RemediationAction,
    /// Why, or what happened.
    pub message: String,
}

impl Remediation {
    /// A remediation not attempted, and why.
    pub fn skipped(why: impl Into<String>) -> Self {
        Self {
            action: RemediationAction::Skipped,
            message: why.into(),
        }
    }

    /// A redeployment that succeeded.
    pub fn redeployed(message: impl Into<String>) -> Self {
        Self {
            action: RemediationAction::Redeployed,
            message: message.into(),
        }
    }

    /// A redeployment that failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            action: RemediationAction::Failed,
            message: message.into(),
        }
    }
}

/// One environment's drift: its status row plus why it is out of sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EnvDrift {
    /// The status row.
    #[serde(flatten)]
    pub status: EnvStatus,
    /// Every difference found.
    #[serde(default)]
    pub reasons: Vec<Reason>,
    /// Resources drift detection did not find in sync (drifted or not checked).
    #[serde(default)]
    pub resource_drifts: Vec<DriftedResource>,
    /// Whether CloudFormation drift detection ran to completion on its stacks.
    #[serde(default)]
    pub resource_drift_checked: bool,
    /// The commit `--remediate` last redeployed it to (tag `gitops:remediated-commit`).
    #[serde(default)]
    pub remediated_commit: Option<String>,
    /// What `--remediate` did.
    #[serde(default)]
    pub remediation: Option<Remediation>,
    /// Its check stopped unexpectedly (its task panicked): the command exits 1.
    #[serde(skip)]
    pub failed: bool,
}

impl EnvDrift {
    /// An environment whose check failed before anything was compared.
    pub fn unknown(env: &Environment, keys: &[PromotedKey], error: impl Into<String>) -> Self {
        let mut d = Self {
            status: EnvStatus {
                name: env.name.clone(),
                stack: env.stack.clone(),
                region: env.region.clone(),
                git_version: keys
                    .iter()
                    .map(|k| (k.to_string(), env.value(k).map(str::to_string)))
                    .collect(),
                deployed_version: BTreeMap::new(),
                commit: None,
                stack_status: None,
                pipeline: None,
                sync: Sync::Unknown,
                health: Health::Unknown,
                error: Some(error.into()),
                pending: None,
            },
            reasons: Vec::new(),
            resource_drifts: Vec::new(),
            resource_drift_checked: false,
            remediated_commit: None,
            remediation: None,
            failed: false,
        };
        d.refresh_sync();
        d
    }

    /// Records an error that stopped part of the check (several are joined).
    pub fn add_error(&mut self, error: impl Into<String>) {
        let error = error.into();
        self.status.error = Some(match self.status.error.take() {
            Some(e) => format!("{e}; {error}"),
            None => error,
        });
        self.refresh_sync();
    }

    /// Adds drift detection's findings for `stack`: `drift.ignore` entries
    /// are left out, resources in sync dropped, drifted ones turned into reasons.
    pub fn add_resource_drift(&mut self, stack: &str, drifts: &[ResourceDrift], ignore: &[String]) {
        for r in filter_ignored(stack, drifts, ignore) {
            if r.is_drift() {
                let mut reasons = Reason::resources(stack, &r);
                if stack != self.status.stack {
                    reasons = reasons.into_iter().map(Reason::on_pipeline_stack).collect();
                }
                self.reasons.extend(reasons);
            }
            self.resource_drifts.push(r);
        }
        self.refresh_sync();
    }

    /// Leaves out the termination-protection reasons: for an endpoint that
    /// reports termination protection but cannot change it (a local
    /// emulator), where the mismatch says nothing about the repository.
    pub fn ignore_termination_protection(&mut self) {
        self.reasons
            .retain(|r| r.kind != ReasonKind::TerminationProtection);
        self.refresh_sync();
    }

    /// Sets `sync` from the reasons and the error: differences make it
    /// `OutOfSync` (even when part of the check failed), an error without
    /// differences `Unknown`, otherwise `Synced`.
    pub fn refresh_sync(&mut self) {
        self.status.sync = if !self.reasons.is_empty() {
            Sync::OutOfSync
        } else if self.status.error.is_some() {
            Sync::Unknown
        } else {
            Sync::Synced
        };
    }
}

/// Turns drift detection's results into reported resources: `IN_SYNC` ones
/// are dropped, and so is whatever a `drift.ignore` entry matches —
/// `LogicalId` matches the whole resource, `LogicalId.A.B` the property
/// path `/A/B` and everything below it (a leading `/Properties` in the
/// path is skipped). A `MODIFIED` resource left with no difference is in sync.
pub fn filter_ignored(
    stack: &str,
    drifts: &[ResourceDrift],
    ignore: &[String],
) -> Vec<DriftedResource> {
    let mut out = Vec::new();
    for r in drifts {
        if r.status == "IN_SYNC" || ignore.iter().any(|i| i == &r.logical_id) {
            continue;
        }
        let differences: Vec<Difference> = r
            .differences
            .iter()
            .filter(|d| !ignore.iter().any(|i| ignores(i, &r.logical_id, &d.path)))
            .map(|d| Difference {
                path: d.path.clone(),
                expected: d.expected.clone(),
                actual: d.actual.clone(),
                kind: d.kind.clone(),
            })
            .collect();
        if r.status == "MODIFIED" && !r.differences.is_empty() && differences.is_empty() {
            continue;
        }
        out.push(DriftedResource {
            stack: stack.to_string(),
            logical_id: r.logical_id.clone(),
            resource_type: r.resource_type.clone(),
            status: r.status.clone(),
            differences,
        });
    }
    out
}

/// Whether the `drift.ignore` entry `entry` covers `path` of `logical_id`.
fn ignores(entry: &str, logical_id: &str, path: &str) -> bool {
    let mut parts = entry.split('.');
    if parts.next() != Some(logical_id) {
        return false;
    }
    let want: Vec<&str> = parts.collect();
    let mut have: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if have.first() == Some(&"Properties") && want.first() != Some(&"Properties") {
        have.remove(0);
    }
    have.len() >= want.len() && have[..want.len()] == want[..]
}

/// The stacks tagged as managed by this repository that no environment
/// declares (`declared`: every environment's stack and pipeline stack),
/// sorted and without duplicates.
pub fn orphans<'a>(
    declared: impl IntoIterator<Item = &'a str>,
    stacks_with_managed_by_tag: &[Stack],
) -> Vec<String> {
    let declared: BTreeSet<&str> = declared.into_iter().collect();
    let found: BTreeSet<String> = stacks_with_managed_by_tag
        .iter()
        .filter(|s| !s.is_deleted() && !declared.contains(s.name.as_str()))
        .map(|s| s.name.clone())
        .collect();
    found.into_iter().collect()
}

/// Why `--remediate` does not redeploy an environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoRemediation {
    /// It is not OutOfSync.
    #[error("it is {0}")]
    NotOutOfSync(Sync),
    /// Its file does not set `auto-remediate: true`.
    #[error("`auto-remediate: true` is not set in its environment file")]
    NotEnabled,
    /// A deployment is running.
    #[error("a deployment is in progress; the next run will look again")]
    Progressing,
    /// Its last deployment failed (the pipeline's or the stack's status).
    #[error("its last deployment failed ({0}); a person should look before it is redeployed")]
    Degraded(String),
    /// It was remediated at this commit already.
    #[error("it was already remediated at {} (tag {TAG_REMEDIATED}); it is not redeployed twice at one commit", crate::text::short_commit(.0))]
    AlreadyRemediated(String),
}

/// Whether `--remediate` may redeploy this environment at `head`; `Err` says why not.
///
/// It must be OutOfSync, have `auto-remediate: true`, not be Progressing
/// (a deployment is running) nor Degraded (the last deployment failed: a
/// redeploy of the same thing would fail again, so a person looks first),
/// and not have been remediated at `head` already (tag
/// `gitops:remediated-commit`), so that a deploy that does not fix the drift
/// never loops.
pub fn may_remediate(
    drift: &EnvDrift,
    auto_remediate: bool,
    head: &str,
) -> Result<(), NoRemediation> {
    if drift.status.sync != Sync::OutOfSync {
        return Err(NoRemediation::NotOutOfSync(drift.status.sync));
    }
    if !auto_remediate {
        return Err(NoRemediation::NotEnabled);
    }
    match drift.status.health {
        Health::Progressing => return Err(NoRemediation::Progressing),
        Health::Degraded => {
            return Err(NoRemediation::Degraded(
                drift
                    .status
                    .pipeline
                    .as_ref()
                    .filter(|p| matches!(p.status.as_str(), "Failed" | "Stopped"))
                    .map(|p| format!("pipeline {}", p.status))
                    .or_else(|| drift.status.stack_status.clone())
                    .unwrap_or_default(),
            ))
        }
        _ => {}
    }
    if drift.remediated_commit.as_deref() == Some(head) {
        return Err(NoRemediation::AlreadyRemediated(head.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
