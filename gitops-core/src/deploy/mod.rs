//! Deploying environments: what to do is computed first, as data
//! ([`plan_environment`] → [`EnvPlan`]), and executed second
//! ([`Executor`]), in the reconcile style of kube-runtime.
//!
//! The planner is pure: it turns the desired state (from git) and the
//! observed state (from AWS) into [`Action`]s, with every safety rule
//! (ownership tags, protection, account pinning, the deletion rules of
//! [`safety`]) applied there, so a `--dry-run` shows exactly what a real run
//! would do.

mod execute;
mod gate;
pub mod inspect;
pub mod pipeline;
pub mod safety;
mod secrets;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::aws::Stack;
use crate::detect::{Change, EnvChange};
use crate::model::{Environment, Repository};
use crate::source::Source;
use crate::template::Template;

pub use gate::{DeployedHistory, DeployedHistoryError, DriftGate, GateFinding};
pub use secrets::GitSecretHistory;

pub use crate::spec::{StackSpec, TAG_COMMIT, TAG_ENVIRONMENT, TAG_MANAGED_BY, TAG_REMEDIATED};
pub use execute::{
    EnvOutcome, Executor, ExecutorOptions, Outcome, Preview, PreviewError, Progress,
    ResourceChange, SecretHistory, CHANGE_SET_PREFIX, PREVIEW_CHANGE_SET_PREFIX,
};
pub use safety::{
    check_deletion, deletion_limit, limit_deletions, BaseDeclaration, Claim, Removal,
    DEFAULT_MAX_DELETIONS,
};

/// Templates larger than this must go through S3.
pub const MAX_TEMPLATE_BODY: usize = 51_200;

/// Everything git says about one environment's deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Desired {
    /// The environment (at head; at base for a deleted one).
    pub environment: Environment,
    /// How it changed.
    pub change: Change,
    /// The environment stack (absent for a deleted environment).
    pub stack: Option<StackSpec>,
    /// The pipeline stack (pipeline mode, not deleted).
    pub pipeline_stack: Option<StackSpec>,
    /// The commit being deployed.
    pub commit: String,
    /// Whether the environment is declared at head. It must be, unless it
    /// was deleted; a detect result saying otherwise is refused.
    pub declared_at_head: bool,
    /// For a deleted environment: what the deletion rules need from git.
    pub removal: Option<Removal>,
}

/// What AWS says about one environment, observed before planning.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Observed {
    /// The account the credentials resolve to, when known.
    pub account: Option<String>,
    /// The environment stack, if it exists.
    pub stack: Option<Stack>,
    /// Its current template, normalised, if read.
    pub stack_template: Option<serde_json::Value>,
    /// The pipeline stack, if it exists.
    pub pipeline_stack: Option<Stack>,
    /// Its current template, normalised, if read.
    pub pipeline_stack_template: Option<serde_json::Value>,
    /// What was found about each stack in `REVIEW_IN_PROGRESS`, by name.
    pub review: BTreeMap<String, ReviewStack>,
    /// `NoEcho` parameters whose value changed in git since the deployed
    /// commit (or the base): AWS shows them as `****`, so only git can say.
    pub changed_secrets: BTreeSet<String>,
    /// What the drift gate found on the existing stacks (empty when it
    /// did not apply, or found them as deployed).
    pub gate: Vec<GateFinding>,
}

/// A stack in `REVIEW_IN_PROGRESS`: made by a `CREATE` change set that was
/// never executed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReviewStack {
    /// How many resources it has.
    pub resources: usize,
    /// The names of its change sets.
    pub change_sets: Vec<String>,
}

impl ReviewStack {
    /// The facts about a stack in review.
    pub fn new(resources: usize, change_sets: Vec<String>) -> Self {
        Self {
            resources,
            change_sets,
        }
    }
}

/// Whether `stack` is a creation this tool left unexecuted (an interrupted
/// deploy or plan): `REVIEW_IN_PROGRESS`, no resources, and our
/// `gitops:managed-by` tag or only change sets of ours. Such a stack is
/// deleted and created again rather than waited on.
pub fn is_review_leftover(repo_id: &str, stack: &Stack, observed: &Observed) -> bool {
    if stack.status != "REVIEW_IN_PROGRESS" {
        return false;
    }
    let Some(r) = observed.review.get(&stack.name) else {
        return false;
    };
    let ours =
        |n: &String| n.starts_with(CHANGE_SET_PREFIX) || n.starts_with(PREVIEW_CHANGE_SET_PREFIX);
    r.resources == 0
        && (stack.tags.get(TAG_MANAGED_BY).map(String::as_str) == Some(repo_id)
            || (!r.change_sets.is_empty() && r.change_sets.iter().all(ours)))
}

fn secret_changed(spec: &StackSpec, observed: &Observed) -> bool {
    spec.secret_parameters
        .iter()
        .any(|k| observed.changed_secrets.contains(k) && spec.parameters.contains_key(k))
}

impl Observed {
    /// An empty observation: nothing exists.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Whether to create or update a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StackOp {
    /// The stack does not exist.
    Create,
    /// The stack exists.
    Update,
}

/// Why the tool refuses to act on an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Refusal {
    /// The environment was protected at the base revision: `protected`
    /// was not exactly `false` or absent, its file did not parse there, or
    /// its configuration there is unknown.
    Protected {
        /// The stack that would have been deleted.
        stack: String,
        /// The environment.
        environment: String,
        /// How it was declared at the base revision.
        base: BaseDeclaration,
    },
    /// The environment is not declared at head, but its file at its base
    /// path still is: only `gitops.yaml` changed, and that never deletes.
    FileStillThere {
        /// The stack that would have been deleted.
        stack: String,
        /// The environment.
        environment: String,
        /// Its file, still in the repository.
        file: String,
    },
    /// An environment declared at head resolves to the same stack.
    ClaimedAtHead {
        /// The stack.
        stack: String,
        /// The environment at head that claims it.
        by: String,
    },
    /// The stack is not tagged as this repository's stack of this environment.
    NotOwned {
        /// The stack.
        stack: String,
        /// Its `gitops:managed-by` tag.
        managed_by: Option<String>,
        /// Its `gitops:environment` tag.
        environment_tag: Option<String>,
        /// This repository's id.
        id: String,
        /// The environment.
        environment: String,
    },
    /// The stack has termination protection on.
    TerminationProtected {
        /// The stack.
        stack: String,
    },
    /// The run would delete more stacks than `--max-deletions` allows.
    TooManyDeletions {
        /// Every stack the run would delete.
        stacks: Vec<String>,
        /// The limit.
        max: usize,
    },
    /// A detect result (`--from-detect`) disagrees with the repository: a
    /// deleted environment that is declared at head, or a created or
    /// updated one that is not.
    DetectMismatch {
        /// The environment.
        environment: String,
        /// What the detect result says happened to it.
        listed: Change,
    },
    /// The drift gate found a stack changed outside gitops since its
    /// deployed commit (or could not tell): deploying would overwrite it.
    OutOfBand {
        /// The environment.
        environment: String,
        /// What the gate found, per stack.
        findings: Vec<GateFinding>,
    },
    /// Deleting needs `--allow-delete`.
    DeleteNotAllowed {
        /// The stack that would have been deleted.
        stack: String,
    },
    /// The stack exists but is not tagged as managed by this repository.
    ForeignStack {
        /// The stack.
        stack: String,
        /// Its `gitops:managed-by` tag, if it has another.
        managed_by: Option<String>,
    },
    /// The credentials resolve to another account than the environment pins.
    AccountMismatch {
        /// The environment's `account`.
        expected: String,
        /// The credentials' account.
        actual: String,
    },
    /// The stack is in UPDATE_ROLLBACK_FAILED and needs a human.
    UpdateRollbackFailed {
        /// The stack.
        stack: String,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Protected {
                stack,
                environment,
                base,
            } => {
                let why = match base {
                    BaseDeclaration::Declared {
                        file,
                        protection: crate::model::Protection::Invalid(v),
                    } => format!("`protected: {v}` in {file} at the base revision is not exactly `false`, so it counts as protected"),
                    BaseDeclaration::Declared { file, .. } => {
                        format!("it is protected (`protected: true` in {file} at the base revision)")
                    }
                    BaseDeclaration::Unparseable { file, problem } => format!(
                        "its file {file} does not parse at the base revision ({problem}), so it counts as protected"
                    ),
                    BaseDeclaration::Unknown { why } => format!(
                        "its configuration at the base revision is unknown ({why}), so it counts as protected"
                    ),
                };
                write!(
                    f,
                    "refusing to delete `{stack}` of environment `{environment}`: {why}; to delete it on purpose, first set `protected: false` (or remove the key) in a commit of its own and deploy it, then remove the folder"
                )
            }
            Refusal::FileStillThere {
                stack,
                environment,
                file,
            } => {
                let what = if stack.is_empty() {
                    String::new()
                } else {
                    format!(" `{stack}`")
                };
                write!(
                    f,
                    "refusing to delete{what}: environment `{environment}` is no longer declared, but its file {file} is still there, so only gitops.yaml changed (environments.path, environments.file or a name pattern), and that never deletes anything; fix gitops.yaml, or to delete the environment on purpose, remove its folder in a commit of its own"
                )
            }
            Refusal::ClaimedAtHead { stack, by } => write!(
                f,
                "refusing to delete `{stack}`: environment `{by}` at head resolves to the same stack name in the same region and account, and a stack git still claims is updated or left alone, never deleted; nothing to do if that rename is intended"
            ),
            Refusal::NotOwned {
                stack,
                managed_by,
                environment_tag,
                id,
                environment,
            } => write!(
                f,
                "refusing to delete `{stack}`: it is tagged {TAG_MANAGED_BY}={} and {TAG_ENVIRONMENT}={}, and only a stack tagged {TAG_MANAGED_BY}={id} and {TAG_ENVIRONMENT}={environment} is deleted (--adopt never applies to deletions); delete it by hand if it really should go",
                managed_by.as_deref().unwrap_or("(none)"),
                environment_tag.as_deref().unwrap_or("(none)")
            ),
            Refusal::TerminationProtected { stack } => write!(
                f,
                "refusing to delete `{stack}`: it has termination protection on; restore the environment's folder, remove `protected` from its file in a commit of its own and deploy it (that turns termination protection off), then remove the folder"
            ),
            Refusal::TooManyDeletions { stacks, max } => write!(
                f,
                "refusing every deletion of this run: it would delete {} stacks ({}), more than --max-deletions {max}; if that is intended, run again with --max-deletions {}",
                stacks.len(),
                stacks
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                stacks.len()
            ),
            Refusal::DetectMismatch {
                environment,
                listed: Change::Deleted,
            } => write!(
                f,
                "refusing `{environment}`: the detect result lists it as deleted, but it is declared at head; run `gitops detect` again for this head"
            ),
            Refusal::DetectMismatch {
                environment,
                listed,
            } => write!(
                f,
                "refusing `{environment}`: the detect result lists it as {listed}, but it is not declared at head; run `gitops detect` again for this head"
            ),
            Refusal::OutOfBand {
                environment,
                findings,
            } => write!(
                f,
                "refusing to deploy `{environment}`: {}; put the change in git (see `gitops drift --environment {environment}`), or pass --accept-drift to overwrite it",
                findings
                    .iter()
                    .map(GateFinding::summary)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Refusal::DeleteNotAllowed { stack } => write!(
                f,
                "not deleting `{stack}`: deletions need --allow-delete"
            ),
            Refusal::ForeignStack { stack, managed_by: None } => write!(
                f,
                "refusing to touch `{stack}`: it exists but has no `{TAG_MANAGED_BY}` tag, so this repository does not own it; pass --adopt to take it over"
            ),
            Refusal::ForeignStack { stack, managed_by: Some(other) } => write!(
                f,
                "refusing to touch `{stack}`: it is managed by `{other}`, not by this repository; pass --adopt to take it over"
            ),
            Refusal::AccountMismatch { expected, actual } => write!(
                f,
                "refusing to deploy: the environment pins account {expected} but the credentials resolve to {actual}; use credentials for {expected} (or set `role-arn`)"
            ),
            Refusal::UpdateRollbackFailed { stack } => write!(
                f,
                "`{stack}` is in UPDATE_ROLLBACK_FAILED; fix the cause shown in its events, then run `aws cloudformation continue-update-rollback --stack-name {stack}` and deploy again"
            ),
        }
    }
}

/// One step of an environment's plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Action {
    /// Create or update a stack through a change set.
    DeployStack {
        /// What the stack holds: `environment` or `pipeline`.
        role: StackRole,
        /// Create or update.
        op: StackOp,
        /// The stack.
        spec: StackSpec,
        /// Delete the stack first: stuck in ROLLBACK_COMPLETE, or a creation
        /// left unexecuted in REVIEW_IN_PROGRESS.
        replace_failed: bool,
        /// Turn on termination protection (protected environments).
        protect: bool,
    },
    /// Start the pipeline, pinned to the commit.
    StartPipeline {
        /// The pipeline's name.
        pipeline: String,
        /// The commit to run.
        commit: String,
        /// Candidate pipeline variables (passed where the pipeline declares them).
        variables: BTreeMap<String, String>,
    },
    /// Turn termination protection on or off, so that it follows the
    /// environment's `protected` (an otherwise unchanged stack).
    SetTerminationProtection {
        /// Which stack.
        role: StackRole,
        /// The stack.
        stack: String,
        /// On or off.
        enabled: bool,
    },
    /// Delete a stack and wait for DELETE_COMPLETE.
    DeleteStack {
        /// What the stack holds.
        role: StackRole,
        /// The stack.
        stack: String,
    },
    /// Refuse to act.
    Refuse {
        /// Why.
        reason: Refusal,
    },
    /// Nothing to do.
    Nothing {
        /// Why.
        reason: String,
    },
}

/// Which of an environment's stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StackRole {
    /// The environment stack.
    Environment,
    /// The stack holding the pipeline.
    Pipeline,
}

impl Action {
    /// A short name for summaries: `create-stack`, `start-pipeline`, ...
    pub fn label(&self) -> &'static str {
        match self {
            Action::DeployStack {
                role: StackRole::Pipeline,
                op: StackOp::Create,
                ..
            } => "create-pipeline",
            Action::DeployStack {
                role: StackRole::Pipeline,
                ..
            } => "update-pipeline-stack",
            Action::DeployStack {
                op: StackOp::Create,
                ..
            } => "create-stack",
            Action::DeployStack { .. } => "update-stack",
            Action::StartPipeline { .. } => "start-pipeline",
            Action::SetTerminationProtection { .. } => "set-termination-protection",
            Action::DeleteStack { .. } => "delete-stack",
            Action::Refuse { .. } => "refuse",
            Action::Nothing { .. } => "nothing",
        }
    }

    /// Whether this action changes anything in AWS.
    pub fn mutates(&self) -> bool {
        !matches!(self, Action::Refuse { .. } | Action::Nothing { .. })
    }
}

/// The plan for one environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EnvPlan {
    /// The environment's name.
    pub environment: String,
    /// How it changed in git.
    pub change: Change,
    /// Its region.
    pub region: String,
    /// The steps, in order. A refusal is always alone.
    pub actions: Vec<Action>,
    /// Out-of-band changes this plan overwrites because the run accepted
    /// them (`--accept-drift`), one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accepted_drift: Vec<String>,
}

impl EnvPlan {
    /// The refusal, if the plan is one.
    pub fn refusal(&self) -> Option<&Refusal> {
        self.actions.iter().find_map(|a| match a {
            Action::Refuse { reason } => Some(reason),
            _ => None,
        })
    }

    /// Whether the plan changes anything.
    pub fn mutates(&self) -> bool {
        self.actions.iter().any(Action::mutates)
    }

    /// The plan with every `NoEcho` parameter value (and the pipeline
    /// variable of the same name) replaced by `****`, for printing.
    pub fn redacted(&self) -> EnvPlan {
        let secrets: Vec<String> = self
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::DeployStack { spec, .. } => Some(spec.secret_parameters.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        let mut out = self.clone();
        for a in &mut out.actions {
            let values = match a {
                Action::DeployStack { spec, .. } => &mut spec.parameters,
                Action::StartPipeline { variables, .. } => variables,
                _ => continue,
            };
            for (k, v) in values.iter_mut() {
                if secrets.contains(k) {
                    *v = crate::text::MASK.to_string();
                }
            }
        }
        out
    }
}

/// Options that change what the planner allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlanOptions {
    /// Allow deleting the stacks of removed environments.
    pub allow_delete: bool,
    /// Take over stacks that lack this repository's `managed-by` tag.
    pub adopt: bool,
    /// How many stacks one run may delete (`--max-deletions`).
    pub max_deletions: usize,
    /// Which environments the drift gate checks before changing their
    /// stacks (off unless set; the command line defaults to protected ones).
    pub drift_gate: DriftGate,
    /// Deploy over out-of-band changes the gate finds (`--accept-drift`).
    pub accept_drift: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            allow_delete: false,
            adopt: false,
            max_deletions: DEFAULT_MAX_DELETIONS,
            drift_gate: DriftGate::Off,
            accept_drift: false,
        }
    }
}

impl PlanOptions {
    /// The defaults: no deletion, no adoption, at most
    /// [`DEFAULT_MAX_DELETIONS`] deletions per run.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how many stacks one run may delete.
    pub fn with_max_deletions(mut self, max: usize) -> Self {
        self.max_deletions = max;
        self
    }

    /// Allows deletions.
    pub fn with_allow_delete(mut self, yes: bool) -> Self {
        self.allow_delete = yes;
        self
    }

    /// Allows adopting foreign stacks.
    pub fn with_adopt(mut self, yes: bool) -> Self {
        self.adopt = yes;
        self
    }

    /// Sets which environments the drift gate checks.
    pub fn with_drift_gate(mut self, gate: DriftGate) -> Self {
        self.drift_gate = gate;
        self
    }

    /// Deploys over out-of-band changes instead of refusing.
    pub fn with_accept_drift(mut self, yes: bool) -> Self {
        self.accept_drift = yes;
        self
    }
}

impl EnvChange {
    /// An environment selected by name rather than by detection (such as
    /// `deploy --environment NAME`), with no reasons.
    pub fn new(environment: Environment, change: Change) -> Self {
        Self {
            name: environment.name.clone(),
            change,
            stack: environment.stack.clone(),
            pipeline: environment.pipeline.clone(),
            region: environment.region.clone(),
            reasons: Vec::new(),
            base: None,
            stack_status: None,
            declaration: None,
            environment,
        }
    }
}

/// Builds what git wants for one affected environment from `repo` and
/// `source`, the model and the files at head: its stack specs (templates
/// read from `source`), or for a deleted environment (as declared at the
/// base: `change.environment`), the facts of its [`Removal`].
pub fn desired(
    repo: &Repository,
    source: &dyn Source,
    change: &EnvChange,
    commit: &str,
) -> crate::Result<Desired> {
    let env = &change.environment;
    let declared_at_head = repo.environment(&env.name).is_some();
    let mut out = Desired {
        environment: env.clone(),
        change: change.change,
        stack: None,
        pipeline_stack: None,
        commit: commit.to_string(),
        declared_at_head,
        removal: None,
    };
    if change.change == Change::Deleted {
        let base = change
            .declaration
            .clone()
            .unwrap_or_else(|| BaseDeclaration::of(env));
        out.removal = Some(Removal::at_head(repo, source, env, base)?);
        return Ok(out);
    }
    if !declared_at_head {
        // A detect result that disagrees with head: the planner refuses it.
        return Ok(out);
    }
    let tags = ownership_tags(repo, env, commit);
    let template = crate::model::load_template(source, &env.template)?;
    let mut params = declared(&template, &env.parameters);
    if template.parameters.contains_key("EnvironmentName") {
        params
            .entry("EnvironmentName".into())
            .or_insert_with(|| env.name.clone());
    }
    out.stack = Some(spec(repo, &env.stack, &template, params, tags.clone()));
    if let (Some(p), Some(pstack), Some(pname)) =
        (&repo.config.pipeline, &env.pipeline_stack, &env.pipeline)
    {
        let t = crate::model::load_template(source, &p.template)?;
        let mut params = declared(&t, &env.parameters);
        for (k, v) in [
            ("EnvironmentName", env.name.as_str()),
            ("StackName", env.stack.as_str()),
            ("PipelineName", pname.as_str()),
            ("Protected", if env.protected { "true" } else { "false" }),
        ] {
            if t.parameters.contains_key(k) {
                params.insert(k.into(), v.into());
            }
        }
        out.pipeline_stack = Some(spec(repo, pstack, &t, params, tags));
    }
    Ok(out)
}

fn declared(t: &Template, params: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    params
        .iter()
        .filter(|(k, _)| t.parameters.contains_key(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn spec(
    repo: &Repository,
    name: &str,
    t: &Template,
    parameters: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
) -> StackSpec {
    StackSpec {
        name: name.to_string(),
        template_path: t.path.clone(),
        template_body: t.text.clone(),
        template_normalized: t.normalized(),
        parameters,
        tags,
        capabilities: repo.config.stack.capabilities.clone(),
        secret_parameters: t
            .parameters
            .iter()
            .filter(|(_, p)| p.no_echo)
            .map(|(k, _)| k.clone())
            .collect(),
    }
}

/// The environment's tags plus `gitops:managed-by`, `gitops:environment` and `gitops:commit`.
pub fn ownership_tags(
    repo: &Repository,
    env: &Environment,
    commit: &str,
) -> BTreeMap<String, String> {
    let mut tags = env.tags.clone();
    if let Some(id) = &repo.id {
        tags.insert(TAG_MANAGED_BY.into(), id.clone());
    }
    tags.insert(TAG_ENVIRONMENT.into(), env.name.clone());
    tags.insert(TAG_COMMIT.into(), commit.to_string());
    tags
}

/// Plans one environment: pure, from what git wants and what AWS has.
pub fn plan_environment(
    repo_id: &str,
    desired: &Desired,
    observed: &Observed,
    options: PlanOptions,
) -> EnvPlan {
    let env = &desired.environment;
    let mut plan = EnvPlan {
        environment: env.name.clone(),
        change: desired.change,
        region: env.region.clone(),
        actions: Vec::new(),
        accepted_drift: Vec::new(),
    };
    let refuse = |plan: &mut EnvPlan, reason: Refusal| {
        plan.actions = vec![Action::Refuse { reason }];
    };
    let deleted = desired.change == Change::Deleted;
    if deleted == desired.declared_at_head {
        refuse(
            &mut plan,
            Refusal::DetectMismatch {
                environment: env.name.clone(),
                listed: desired.change,
            },
        );
        return plan;
    }
    if let (Some(expected), Some(actual)) = (&env.account, &observed.account) {
        if expected != actual {
            refuse(
                &mut plan,
                Refusal::AccountMismatch {
                    expected: expected.clone(),
                    actual: actual.clone(),
                },
            );
            return plan;
        }
    }
    if deleted {
        return plan_deletion(repo_id, desired, observed, options, plan);
    }
    // Ownership and stuck states of every existing stack we could touch.
    for stack in [&observed.stack, &observed.pipeline_stack]
        .into_iter()
        .flatten()
    {
        let managed_by = stack.tags.get(TAG_MANAGED_BY);
        if managed_by.map(String::as_str) != Some(repo_id)
            && !options.adopt
            && !is_review_leftover(repo_id, stack, observed)
        {
            refuse(
                &mut plan,
                Refusal::ForeignStack {
                    stack: stack.name.clone(),
                    managed_by: managed_by.cloned(),
                },
            );
            return plan;
        }
        if stack.is_update_rollback_failed() {
            refuse(
                &mut plan,
                Refusal::UpdateRollbackFailed {
                    stack: stack.name.clone(),
                },
            );
            return plan;
        }
    }
    // The drift gate: never overwrite an out-of-band change unasked.
    if options.drift_gate.applies(env) && !observed.gate.is_empty() {
        if !options.accept_drift {
            refuse(
                &mut plan,
                Refusal::OutOfBand {
                    environment: env.name.clone(),
                    findings: observed.gate.clone(),
                },
            );
            return plan;
        }
        plan.accepted_drift = observed.gate.iter().map(GateFinding::summary).collect();
    }

    match (&desired.pipeline_stack, &env.pipeline) {
        (Some(pspec), Some(pipeline)) => {
            match &observed.pipeline_stack {
                None => {
                    // A new pipeline runs once on creation: do not start it too.
                    plan.actions.push(deploy(
                        StackRole::Pipeline,
                        StackOp::Create,
                        pspec,
                        false,
                        env.protected,
                    ));
                    return plan;
                }
                Some(s)
                    if s.is_rollback_complete_never_created()
                        || is_review_leftover(repo_id, s, observed) =>
                {
                    plan.actions.push(deploy(
                        StackRole::Pipeline,
                        StackOp::Create,
                        pspec,
                        true,
                        env.protected,
                    ));
                    return plan;
                }
                Some(s) => {
                    if !up_to_date(pspec, s, observed.pipeline_stack_template.as_ref())
                        || secret_changed(pspec, observed)
                    {
                        plan.actions.push(deploy(
                            StackRole::Pipeline,
                            StackOp::Update,
                            pspec,
                            false,
                            env.protected,
                        ));
                    } else if let Some(a) = protection_change(StackRole::Pipeline, s, env.protected)
                    {
                        plan.actions.push(a);
                    }
                }
            }
            plan.actions.push(Action::StartPipeline {
                pipeline: pipeline.clone(),
                commit: desired.commit.clone(),
                variables: env.parameters.clone(),
            });
        }
        _ => {
            let Some(spec) = &desired.stack else {
                return plan;
            };
            match &observed.stack {
                None => plan.actions.push(deploy(
                    StackRole::Environment,
                    StackOp::Create,
                    spec,
                    false,
                    env.protected,
                )),
                Some(s)
                    if s.is_rollback_complete_never_created()
                        || is_review_leftover(repo_id, s, observed) =>
                {
                    plan.actions.push(deploy(
                        StackRole::Environment,
                        StackOp::Create,
                        spec,
                        true,
                        env.protected,
                    ))
                }
                Some(s)
                    if up_to_date(spec, s, observed.stack_template.as_ref())
                        && !secret_changed(spec, observed)
                        && !s.is_in_progress() =>
                {
                    plan.actions.push(
                        protection_change(StackRole::Environment, s, env.protected).unwrap_or_else(
                            || Action::Nothing {
                                reason: format!("`{}` is up to date ({})", s.name, s.status),
                            },
                        ),
                    );
                }
                Some(_) => plan.actions.push(deploy(
                    StackRole::Environment,
                    StackOp::Update,
                    spec,
                    false,
                    env.protected,
                )),
            }
        }
    }
    plan
}

/// The deletion of a removed environment's existing stacks (environment,
/// then pipeline), or the refusal of the first deletion rule that fails
/// ([`check_deletion`]).
fn plan_deletion(
    repo_id: &str,
    desired: &Desired,
    observed: &Observed,
    options: PlanOptions,
    mut plan: EnvPlan,
) -> EnvPlan {
    let existing: Vec<(StackRole, &Stack)> = [
        (StackRole::Environment, &observed.stack),
        (StackRole::Pipeline, &observed.pipeline_stack),
    ]
    .into_iter()
    .filter_map(|(r, s)| s.as_ref().filter(|s| !s.is_deleted()).map(|s| (r, s)))
    .collect();
    let unknown;
    let removal = match &desired.removal {
        Some(r) => r,
        None => {
            unknown = Removal::unknown("the deletion facts were not gathered");
            &unknown
        }
    };
    let stacks: Vec<&Stack> = existing.iter().map(|(_, s)| *s).collect();
    if let Some(reason) = check_deletion(
        repo_id,
        &desired.environment.name,
        removal,
        &stacks,
        options.allow_delete,
    ) {
        plan.actions = vec![Action::Refuse { reason }];
        return plan;
    }
    if existing.is_empty() {
        plan.actions.push(Action::Nothing {
            reason: "the environment was removed and its stacks are already gone".into(),
        });
        return plan;
    }
    for (role, s) in existing {
        plan.actions.push(Action::DeleteStack {
            role,
            stack: s.name.clone(),
        });
    }
    plan
}

/// Turning termination protection on or off when a stack's (known) state
/// differs from `protected`.
fn protection_change(role: StackRole, stack: &Stack, protected: bool) -> Option<Action> {
    (stack.termination_protection == Some(!protected)).then(|| Action::SetTerminationProtection {
        role,
        stack: stack.name.clone(),
        enabled: protected,
    })
}

fn deploy(
    role: StackRole,
    op: StackOp,
    spec: &StackSpec,
    replace_failed: bool,
    protect: bool,
) -> Action {
    Action::DeployStack {
        role,
        op,
        spec: spec.clone(),
        replace_failed,
        protect,
    }
}

/// Whether a healthy existing stack already has the template, parameters and
/// tags git wants (`gitops:commit` aside: a new commit alone changes
/// nothing; `gitops:remediated-commit` too, unless `spec` sets it, as a
/// remediation does so that the tag is recorded).
pub fn up_to_date(spec: &StackSpec, stack: &Stack, template: Option<&serde_json::Value>) -> bool {
    if !stack.is_complete_ok() {
        return false;
    }
    let remediation = spec.tags.contains_key(TAG_REMEDIATED);
    let strip = |t: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        t.iter()
            .filter(|(k, _)| {
                k.as_str() != TAG_COMMIT && (remediation || k.as_str() != TAG_REMEDIATED)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    // Parameters the stack has that we do not pass keep their template defaults;
    // compare only what we pass (NoEcho values come back masked: not comparable).
    let params_same = spec
        .parameters
        .iter()
        .all(|(k, v)| spec.secret_parameters.contains(k) || stack.parameters.get(k) == Some(v));
    params_same
        && strip(&spec.tags) == strip(&stack.tags)
        && template == Some(&spec.template_normalized)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod robust_tests;
