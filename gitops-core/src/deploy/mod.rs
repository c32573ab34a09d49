//! Deploying environments: what to do is computed first, as data
//! ([`plan_environment`] → [`EnvPlan`]), and executed second
//! ([`Executor`]), in the reconcile style of kube-runtime.
//!
//! The planner is pure: it turns the desired state (from git) and the
//! observed state (from AWS) into [`Action`]s, with every safety rule
//! (ownership tags, protection, account pinning) applied there, so a
//! `--dry-run` shows exactly what a real run would do.

mod execute;
pub mod inspect;
pub mod pipeline;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::aws::Stack;
use crate::detect::{Change, EnvChange};
use crate::model::{Environment, Repository};
use crate::source::Source;
use crate::template::Template;

pub use execute::{
    EnvOutcome, Executor, ExecutorOptions, Outcome, Preview, PreviewError, Progress,
    CHANGE_SET_PREFIX,
};

/// Tag key naming the repository that manages a stack.
pub const TAG_MANAGED_BY: &str = "gitops:managed-by";
/// Tag key naming the environment a stack belongs to.
pub const TAG_ENVIRONMENT: &str = "gitops:environment";
/// Tag key naming the commit a stack was last deployed from.
pub const TAG_COMMIT: &str = "gitops:commit";
/// Tag key naming the commit `gitops drift --remediate` last redeployed an
/// environment to, so that it never remediates it twice at one commit.
pub const TAG_REMEDIATED: &str = "gitops:remediated-commit";
/// Templates larger than this must go through S3.
pub const MAX_TEMPLATE_BODY: usize = 51_200;

/// A stack as git wants it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StackSpec {
    /// Stack name.
    pub name: String,
    /// Repository-relative template path.
    pub template_path: String,
    /// Template text.
    #[serde(skip)]
    pub template_body: String,
    /// The template, normalised, for comparisons.
    #[serde(skip)]
    pub template_normalized: serde_json::Value,
    /// Parameters to pass: only those the template declares.
    pub parameters: BTreeMap<String, String>,
    /// Tags: the environment's plus the `gitops:*` ownership tags.
    pub tags: BTreeMap<String, String>,
    /// Capabilities to acknowledge.
    pub capabilities: Vec<String>,
    /// Parameters whose values must not be printed (`NoEcho`).
    #[serde(skip)]
    pub secret_parameters: Vec<String>,
}

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
    /// The environment was `protected` at the base revision.
    Protected {
        /// The stack that would have been deleted.
        stack: String,
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
            Refusal::Protected { stack } => write!(
                f,
                "refusing to delete `{stack}`: the environment is protected (`protected: true` at the base revision); remove the flag in a separate commit first if you really mean it"
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
        /// Delete a stack stuck in ROLLBACK_COMPLETE first.
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
                    *v = crate::plan::MASK.to_string();
                }
            }
        }
        out
    }
}

/// Options that change what the planner allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlanOptions {
    /// Allow deleting the stacks of removed environments.
    pub allow_delete: bool,
    /// Take over stacks that lack this repository's `managed-by` tag.
    pub adopt: bool,
}

impl PlanOptions {
    /// The defaults: no deletion, no adoption.
    pub fn new() -> Self {
        Self::default()
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
            environment,
        }
    }
}

/// Builds what git wants for one affected environment. Reads templates from
/// `source` (the head revision, or the base one for a deleted environment —
/// for which no specs are built).
pub fn desired(
    repo: &Repository,
    source: &dyn Source,
    change: &EnvChange,
    commit: &str,
) -> crate::Result<Desired> {
    let env = &change.environment;
    let mut out = Desired {
        environment: env.clone(),
        change: change.change,
        stack: None,
        pipeline_stack: None,
        commit: commit.to_string(),
    };
    if change.change == Change::Deleted {
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
    tags.insert(TAG_MANAGED_BY.into(), repo.id.clone());
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
    };
    let refuse = |plan: &mut EnvPlan, reason: Refusal| {
        plan.actions = vec![Action::Refuse { reason }];
    };
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
    // Ownership and stuck states of every existing stack we could touch.
    for stack in [&observed.stack, &observed.pipeline_stack]
        .into_iter()
        .flatten()
    {
        let managed_by = stack.tags.get(TAG_MANAGED_BY);
        if managed_by.map(String::as_str) != Some(repo_id) && !options.adopt {
            refuse(
                &mut plan,
                Refusal::ForeignStack {
                    stack: stack.name.clone(),
                    managed_by: managed_by.cloned(),
                },
            );
            return plan;
        }
        if stack.is_update_rollback_failed() && desired.change != Change::Deleted {
            refuse(
                &mut plan,
                Refusal::UpdateRollbackFailed {
                    stack: stack.name.clone(),
                },
            );
            return plan;
        }
    }

    if desired.change == Change::Deleted {
        let existing: Vec<(StackRole, &Stack)> = [
            (StackRole::Environment, &observed.stack),
            (StackRole::Pipeline, &observed.pipeline_stack),
        ]
        .into_iter()
        .filter_map(|(r, s)| s.as_ref().map(|s| (r, s)))
        .collect();
        let Some((_, first)) = existing.first() else {
            plan.actions.push(Action::Nothing {
                reason: "the environment was removed and its stacks are already gone".into(),
            });
            return plan;
        };
        if env.protected {
            refuse(
                &mut plan,
                Refusal::Protected {
                    stack: first.name.clone(),
                },
            );
            return plan;
        }
        if !options.allow_delete {
            refuse(
                &mut plan,
                Refusal::DeleteNotAllowed {
                    stack: first.name.clone(),
                },
            );
            return plan;
        }
        for (role, s) in existing {
            plan.actions.push(Action::DeleteStack {
                role,
                stack: s.name.clone(),
            });
        }
        return plan;
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
                Some(s) if s.is_rollback_complete_never_created() => {
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
                    if !up_to_date(pspec, s, observed.pipeline_stack_template.as_ref()) {
                        plan.actions.push(deploy(
                            StackRole::Pipeline,
                            StackOp::Update,
                            pspec,
                            false,
                            env.protected,
                        ));
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
                Some(s) if s.is_rollback_complete_never_created() => plan.actions.push(deploy(
                    StackRole::Environment,
                    StackOp::Create,
                    spec,
                    true,
                    env.protected,
                )),
                Some(s)
                    if up_to_date(spec, s, observed.stack_template.as_ref())
                        && !s.is_in_progress() =>
                {
                    plan.actions.push(Action::Nothing {
                        reason: format!("`{}` is up to date ({})", s.name, s.status),
                    });
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
