//! Executing plans against AWS through the crate's own traits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{
    plan_environment, Action, Desired, EnvPlan, Observed, PlanOptions, ReviewStack, StackOp,
    StackRole, StackSpec, MAX_TEMPLATE_BODY, TAG_COMMIT,
};
use crate::aws::{
    AwsClients, AwsError, ChangeSetKind, ChangeSetRequest, ClientFactory, SourceRevision,
    StartExecution, TemplateSource,
};
use crate::fanout::{self, CancellationToken, FanOut, TaskError};
use crate::template::Template;

mod preview;
mod wait;

pub use preview::{Preview, PreviewError, ResourceChange};

/// Receives progress lines while the executor works.
pub trait Progress: Send + Sync {
    /// One line about `environment`.
    fn line(&self, environment: &str, line: &str);
}

impl<F: Fn(&str, &str) + Send + Sync> Progress for F {
    fn line(&self, environment: &str, line: &str) {
        self(environment, line)
    }
}

/// How an environment's deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Outcome {
    /// Changes were made and succeeded.
    Succeeded,
    /// Nothing needed changing.
    NoOp,
    /// Only planned (`--dry-run`).
    Planned,
    /// The tool refused to act.
    Refused,
    /// Something failed.
    Failed,
    /// The run was interrupted (Ctrl-C, SIGTERM) before this environment
    /// finished: not started, its change sets deleted, or its stack
    /// operation left going on in AWS (see the message and stack status).
    Interrupted,
}

impl Outcome {
    /// Whether the run should exit non-zero.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Outcome::Refused | Outcome::Failed | Outcome::Interrupted
        )
    }
}

/// The `NoEcho` parameter values git had before: the executor compares
/// them with head's, since AWS shows a `NoEcho` value as `****`.
pub trait SecretHistory: Send + Sync {
    /// Environment `env`'s resolved parameters at `commit` (the stack's
    /// `gitops:commit` tag), or at the base revision when that commit is
    /// unknown or cannot be read; `None` when neither can be read.
    fn parameters_at(
        &self,
        commit: Option<&str>,
        env: &str,
    ) -> Option<std::collections::BTreeMap<String, String>>;
}

/// The result for one environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EnvOutcome {
    /// The environment.
    pub environment: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The plan that was (or would be) executed.
    pub plan: Option<EnvPlan>,
    /// A one-line summary.
    pub message: String,
    /// The stack's final status, when known.
    pub stack_status: Option<String>,
    /// The pipeline execution started, if any.
    pub execution_id: Option<String>,
    /// Failed resources with their reasons.
    pub failures: Vec<String>,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

impl EnvOutcome {
    /// A `Failed` outcome with no details yet.
    fn new(environment: String) -> Self {
        Self {
            environment,
            outcome: Outcome::Failed,
            plan: None,
            message: String::new(),
            stack_status: None,
            execution_id: None,
            failures: Vec::new(),
            duration_ms: 0,
        }
    }
}

/// Executor settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecutorOptions {
    /// How long to wait for a busy stack, a stack operation or a pipeline run.
    pub timeout: Duration,
    /// Delay between polls.
    pub poll: Duration,
    /// Wait for started pipeline executions to finish.
    pub wait_pipeline: bool,
    /// Plan only.
    pub dry_run: bool,
    /// What the planner may do.
    pub plan: PlanOptions,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30 * 60),
            poll: Duration::from_secs(5),
            wait_pipeline: false,
            dry_run: false,
            plan: PlanOptions::default(),
        }
    }
}

impl ExecutorOptions {
    /// The defaults: 30 minutes, 5 s polls, no pipeline wait, real run.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the timeout.
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    /// Sets the poll delay.
    pub fn with_poll(mut self, p: Duration) -> Self {
        self.poll = p;
        self
    }
    /// Waits for pipeline executions.
    pub fn with_wait_pipeline(mut self, yes: bool) -> Self {
        self.wait_pipeline = yes;
        self
    }
    /// Plans without executing.
    pub fn with_dry_run(mut self, yes: bool) -> Self {
        self.dry_run = yes;
        self
    }
    /// Sets the planner options.
    pub fn with_plan(mut self, plan: PlanOptions) -> Self {
        self.plan = plan;
        self
    }
}

/// Observes, plans and executes deployments.
pub struct Executor {
    factory: Arc<dyn ClientFactory>,
    progress: Arc<dyn Progress>,
    options: ExecutorOptions,
    repo_id: String,
    template_bucket: Option<String>,
    /// Change sets a preview or a deploy made and has not executed or deleted yet.
    pending: preview::Pending,
    /// Cancelled on Ctrl-C or SIGTERM: start nothing new, clean up.
    cancel: CancellationToken,
    /// Where `NoEcho` values at the deployed commit come from.
    secrets: Option<Arc<dyn SecretHistory>>,
    /// Where the drift gate reads what git said at a deployed commit.
    history: Option<Arc<dyn super::DeployedHistory>>,
    /// `drift.ignore` of gitops.yaml, for the drift gate's resource drift.
    drift_ignore: Vec<String>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("options", &self.options)
            .field("repo_id", &self.repo_id)
            .finish_non_exhaustive()
    }
}

/// A failure inside one environment's run.
#[derive(Default)]
struct Failure {
    message: String,
    failures: Vec<String>,
    stack_status: Option<String>,
    interrupted: bool,
}

impl From<AwsError> for Failure {
    fn from(e: AwsError) -> Self {
        fail(e.to_string())
    }
}

fn fail(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        ..Failure::default()
    }
}

fn interrupted(message: impl Into<String>, stack_status: Option<String>) -> Failure {
    Failure {
        message: message.into(),
        stack_status,
        interrupted: true,
        ..Failure::default()
    }
}

static CHANGE_SET_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Prefix of the change sets `deploy` creates. Its leftovers (never
/// executed) are removed by the next deploy of the stack.
pub const CHANGE_SET_PREFIX: &str = "gitops-deploy-";

/// Prefix of the change sets a `plan` preview creates (and always deletes
/// itself): a deploy never sweeps them, as a plan may be running.
pub const PREVIEW_CHANGE_SET_PREFIX: &str = "gitops-plan-";

impl Executor {
    /// An executor for the repository `repo_id`.
    pub fn new(
        factory: Arc<dyn ClientFactory>,
        progress: Arc<dyn Progress>,
        repo_id: impl Into<String>,
        options: ExecutorOptions,
    ) -> Self {
        Self {
            factory,
            progress,
            options,
            repo_id: repo_id.into(),
            template_bucket: None,
            pending: Default::default(),
            cancel: CancellationToken::new(),
            secrets: None,
            history: None,
            drift_ignore: Vec::new(),
        }
    }

    /// Stops starting new work once `token` is cancelled (Ctrl-C, SIGTERM):
    /// environments not started are reported interrupted, change sets not
    /// executed are deleted, and stack operations already executing are
    /// left to finish in AWS and reported interrupted with their status.
    pub fn with_cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// Reads `NoEcho` values at the deployed commit from `history`, so that
    /// a changed secret gets a change set although AWS shows it as `****`.
    pub fn with_secret_history(mut self, history: Arc<dyn SecretHistory>) -> Self {
        self.secrets = Some(history);
        self
    }

    /// Reads what git said at a stack's deployed commit from `history`,
    /// for the drift gate ([`PlanOptions::drift_gate`]). Without it, the
    /// gate cannot compare and refuses the environments it checks.
    pub fn with_deployed_history(mut self, history: Arc<dyn super::DeployedHistory>) -> Self {
        self.history = Some(history);
        self
    }

    /// Leaves resource drift matching `ignore` (`drift.ignore` of
    /// gitops.yaml) out of the drift gate.
    pub fn with_drift_ignore(mut self, ignore: Vec<String>) -> Self {
        self.drift_ignore = ignore;
        self
    }

    /// Whether the run was interrupted.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Sleeps one poll interval; `true` when interrupted instead.
    async fn pause(&self) -> bool {
        tokio::select! {
            () = self.cancel.cancelled() => true,
            () = tokio::time::sleep(self.options.poll) => false,
        }
    }

    /// Sets the bucket for templates over 51,200 bytes.
    pub fn with_template_bucket(mut self, bucket: Option<String>) -> Self {
        self.template_bucket = bucket;
        self
    }

    fn say(&self, env: &str, line: impl AsRef<str>) {
        self.progress.line(env, line.as_ref());
    }

    /// Deploys every environment, at most `concurrency` at a time per
    /// account and region ([`fanout::location`]): observes and plans them
    /// all first, applies the run-level rule (no more than `--max-deletions`
    /// deletions, [`super::limit_deletions`]), then executes. One failure
    /// does not stop the others; a panic in one environment's task makes
    /// that environment `Failed`. Results come back in input order. Change
    /// sets left registered (by a panicked task, say) are deleted before it
    /// returns.
    pub async fn run_all(
        self: Arc<Self>,
        desired: Vec<Desired>,
        concurrency: usize,
    ) -> Vec<EnvOutcome> {
        let desired: Vec<Arc<Desired>> = desired.into_iter().map(Arc::new).collect();
        let names: Vec<String> = desired.iter().map(|d| d.environment.name.clone()).collect();
        let fan = FanOut::new(concurrency).with_cancel(self.cancel.clone());
        let me = self.clone();
        let mut planned = fan
            .run(
                desired.clone(),
                |d| fanout::location(&d.environment),
                move |d| {
                    let me = me.clone();
                    async move { me.prepare(&d).await }
                },
            )
            .await;
        {
            let mut oks: Vec<&mut Planned> =
                planned.iter_mut().filter_map(|p| p.as_mut().ok()).collect();
            self.limit(&mut oks);
        }
        let jobs: Vec<(Arc<Desired>, Result<Planned, TaskError>)> =
            desired.into_iter().zip(planned).collect();
        let me = self.clone();
        let results = fan
            .run(
                jobs,
                |(d, _)| fanout::location(&d.environment),
                move |(d, p)| {
                    let me = me.clone();
                    async move {
                        match p {
                            Ok(p) => Ok(me.finish(&d, p).await),
                            Err(e) => Err(e),
                        }
                    }
                },
            )
            .await;
        for f in self.cleanup_previews().await {
            self.say("-", format!("error: {f}"));
        }
        results
            .into_iter()
            .zip(names)
            .map(|(r, name)| match r.and_then(|r| r) {
                Ok(o) => o,
                Err(e) => {
                    let mut o = EnvOutcome::new(name);
                    o.outcome = match e {
                        TaskError::NotStarted => Outcome::Interrupted,
                        _ => Outcome::Failed,
                    };
                    o.message = e.to_string();
                    o
                }
            })
            .collect()
    }

    /// Observes, plans and (unless a dry run) executes one environment.
    pub async fn run(&self, desired: &Desired) -> EnvOutcome {
        let mut planned = self.prepare(desired).await;
        self.limit(&mut [&mut planned]);
        self.finish(desired, planned).await
    }

    /// Observes and plans one environment, read-only.
    async fn prepare(&self, desired: &Desired) -> Planned {
        let start = Instant::now();
        if self.is_cancelled() {
            return Planned {
                start,
                clients: None,
                plan: Err(interrupted(TaskError::NotStarted.to_string(), None)),
            };
        }
        let clients = match self
            .factory
            .clients(
                &desired.environment.region,
                desired.environment.role_arn.as_deref(),
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                return Planned {
                    start,
                    clients: None,
                    plan: Err(e.into()),
                }
            }
        };
        let plan = match self.observe(&clients, desired).await {
            Ok(observed) => Ok(plan_environment(
                &self.repo_id,
                desired,
                &observed,
                self.options.plan,
            )),
            Err(e) => Err(e.into()),
        };
        Planned {
            start,
            clients: Some(clients),
            plan,
        }
    }

    /// The run-level rule over the plans made: `--max-deletions`.
    fn limit(&self, planned: &mut [&mut Planned]) {
        let max = self.options.plan.max_deletions;
        let actions = planned
            .iter()
            .filter_map(|p| p.plan.as_ref().ok())
            .flat_map(|p| &p.actions);
        if let Some(r) = super::deletion_limit(actions, max) {
            for p in planned.iter_mut() {
                if let Ok(plan) = &mut p.plan {
                    super::safety::refuse_deletions(&mut plan.actions, &r);
                }
            }
        }
    }

    /// Executes one environment's plan (unless a dry run).
    async fn finish(&self, desired: &Desired, planned: Planned) -> EnvOutcome {
        let Planned {
            start,
            clients,
            plan,
        } = planned;
        let mut outcome = EnvOutcome::new(desired.environment.name.clone());
        let result = async {
            let plan = plan?;
            let Some(clients) = clients else {
                return Err(fail("no AWS clients"));
            };
            outcome.plan = Some(plan.redacted());
            if let Some(r) = plan.refusal() {
                outcome.outcome = Outcome::Refused;
                outcome.message = r.to_string();
                return Ok::<_, Failure>(());
            }
            if self.options.dry_run {
                outcome.outcome = Outcome::Planned;
                outcome.message = describe(&plan);
                return Ok(());
            }
            outcome.outcome = if plan.mutates() {
                Outcome::Succeeded
            } else {
                Outcome::NoOp
            };
            let mut messages = Vec::new();
            for action in &plan.actions {
                if self.is_cancelled() && action.mutates() {
                    let done = if messages.is_empty() {
                        String::new()
                    } else {
                        format!(" after: {}", messages.join("; "))
                    };
                    return Err(interrupted(
                        format!("interrupted before `{}`{done}", action.label()),
                        outcome.stack_status.clone(),
                    ));
                }
                match self
                    .execute(&clients, desired, action, &mut outcome)
                    .await?
                {
                    Step::Done(m) => messages.push(m),
                    Step::NoChange(m) => messages.push(m),
                }
            }
            if plan.mutates()
                && outcome.execution_id.is_none()
                && messages.iter().all(|m| m.ends_with("(no changes)"))
            {
                outcome.outcome = Outcome::NoOp;
            }
            outcome.message = messages.join("; ");
            Ok(())
        }
        .await;
        if let Err(f) = result {
            outcome.outcome = if f.interrupted {
                Outcome::Interrupted
            } else {
                Outcome::Failed
            };
            outcome.message = f.message;
            outcome.failures = f.failures;
            if f.stack_status.is_some() {
                outcome.stack_status = f.stack_status;
            }
        }
        outcome.duration_ms = start.elapsed().as_millis() as u64;
        outcome
    }

    /// Reads what exists: the account (when the environment pins one), the
    /// stacks and their templates. Read-only.
    pub async fn observe(
        &self,
        clients: &AwsClients,
        desired: &Desired,
    ) -> Result<Observed, AwsError> {
        let env = &desired.environment;
        let mut o = Observed::new();
        if env.account.is_some() {
            o.account = Some(clients.sts.caller_identity().await?.account);
        }
        let cfn = &clients.cloudformation;
        o.stack = cfn.describe_stack(&env.stack).await?;
        if let Some(s) = &o.stack {
            if s.is_complete_ok() {
                o.stack_template = normalized_template(&cfn.get_template(&env.stack).await?);
            }
        }
        if let Some(ps) = &env.pipeline_stack {
            o.pipeline_stack = cfn.describe_stack(ps).await?;
            if let Some(s) = &o.pipeline_stack {
                if s.is_complete_ok() {
                    o.pipeline_stack_template = normalized_template(&cfn.get_template(ps).await?);
                }
            }
        }
        for s in [&o.stack, &o.pipeline_stack].into_iter().flatten() {
            if s.status == "REVIEW_IN_PROGRESS" {
                let resources = cfn.list_stack_resources(&s.name).await?.len();
                let change_sets = cfn
                    .list_change_sets(&s.name)
                    .await?
                    .into_iter()
                    .map(|c| c.name)
                    .collect();
                o.review
                    .insert(s.name.clone(), ReviewStack::new(resources, change_sets));
            }
        }
        if self.options.plan.drift_gate.applies(env)
            && desired.change != crate::detect::Change::Deleted
        {
            o.gate = self.gate(clients, desired, &o).await;
        }
        if let Some(history) = &self.secrets {
            let pairs = [
                (desired.stack.as_ref(), o.stack.as_ref()),
                (desired.pipeline_stack.as_ref(), o.pipeline_stack.as_ref()),
            ];
            for (spec, stack) in pairs {
                let (Some(spec), Some(stack)) = (spec, stack) else {
                    continue;
                };
                let passed: Vec<&String> = spec
                    .secret_parameters
                    .iter()
                    .filter(|k| spec.parameters.contains_key(*k))
                    .collect();
                if passed.is_empty() {
                    continue;
                }
                let before = history
                    .parameters_at(stack.tags.get(TAG_COMMIT).map(String::as_str), &env.name);
                for k in passed {
                    // Unknown history: let the change set decide.
                    if before
                        .as_ref()
                        .is_none_or(|b| b.get(k) != spec.parameters.get(k))
                    {
                        o.changed_secrets.insert(k.clone());
                    }
                }
            }
        }
        Ok(o)
    }

    /// The drift gate over the existing stacks `desired` would change:
    /// each one carrying a `gitops:commit` tag is compared with what git
    /// said at that commit (parameters, tags and, when read, the template),
    /// then CloudFormation drift detection runs on it where the endpoint
    /// supports it (resource drift; `drift.ignore` applies).
    async fn gate(
        &self,
        clients: &AwsClients,
        desired: &Desired,
        o: &Observed,
    ) -> Vec<super::GateFinding> {
        use super::GateFinding;
        let pairs = [
            (
                desired.stack.as_ref(),
                o.stack.as_ref(),
                o.stack_template.as_ref(),
            ),
            (
                desired.pipeline_stack.as_ref(),
                o.pipeline_stack.as_ref(),
                o.pipeline_stack_template.as_ref(),
            ),
        ];
        let mut out = Vec::new();
        for (spec, stack, template) in pairs {
            let (Some(spec), Some(stack)) = (spec, stack) else {
                continue;
            };
            if stack.is_deleted() {
                continue;
            }
            let Some(commit) = stack.tags.get(TAG_COMMIT) else {
                // Never deployed by this tool: nothing to compare with.
                continue;
            };
            let then = match &self.history {
                Some(h) => h.spec_at(commit, &desired.environment.name, &spec.name),
                None => Err(super::DeployedHistoryError::NoHistory),
            };
            match then {
                Ok(then) => {
                    let mut reasons: Vec<String> = crate::drift::compare(&then, stack, template)
                        .into_iter()
                        .map(|r| r.message)
                        .collect();
                    if !stack.is_in_progress() {
                        reasons.extend(self.resource_drift(clients, desired, &stack.name).await);
                    }
                    if !reasons.is_empty() {
                        out.push(GateFinding::Drifted {
                            stack: stack.name.clone(),
                            commit: commit.clone(),
                            reasons,
                        });
                    }
                }
                Err(why) => out.push(GateFinding::Unknown {
                    stack: stack.name.clone(),
                    commit: commit.clone(),
                    why,
                }),
            }
        }
        out
    }

    /// Resource drift of `stack` for the gate, one line per drifted
    /// property; nothing when the endpoint cannot detect drift (an
    /// emulator) or detection gives no answer in time (said in progress).
    async fn resource_drift(
        &self,
        clients: &AwsClients,
        desired: &Desired,
        stack: &str,
    ) -> Vec<String> {
        use super::inspect::{detect_resource_drift, DriftCheckError, InspectOptions};
        let options = InspectOptions::new()
            .with_poll(
                self.options.poll,
                self.options.poll.max(Duration::from_secs(10)),
            )
            .with_timeout(self.options.timeout.min(Duration::from_secs(300)));
        let drifts =
            match detect_resource_drift(clients.cloudformation.as_ref(), stack, &options).await {
                Ok(d) => d,
                Err(DriftCheckError::Failed { partial, .. }) => partial,
                Err(DriftCheckError::Aws(e)) if e.code.is_none() => return Vec::new(),
                Err(e) => {
                    self.say(
                        &desired.environment.name,
                        format!("drift gate: resource drift of `{stack}` not checked: {e}"),
                    );
                    return Vec::new();
                }
            };
        crate::drift::filter_ignored(stack, &drifts, &self.drift_ignore)
            .iter()
            .filter(|r| r.is_drift())
            .flat_map(|r| crate::drift::Reason::resources(stack, r))
            .map(|r| r.message)
            .collect()
    }

    async fn execute(
        &self,
        clients: &AwsClients,
        desired: &Desired,
        action: &Action,
        outcome: &mut EnvOutcome,
    ) -> Result<Step, Failure> {
        let env = &desired.environment.name;
        match action {
            Action::DeployStack {
                role,
                op,
                spec,
                replace_failed,
                protect,
            } => {
                let step = self
                    .deploy_stack(clients, env, *role, *op, spec, *replace_failed, *protect)
                    .await;
                match step {
                    Ok((step, status)) => {
                        outcome.stack_status = Some(status);
                        Ok(step)
                    }
                    Err(f) => Err(f),
                }
            }
            Action::StartPipeline {
                pipeline,
                commit,
                variables,
            } => {
                let id = self
                    .start_pipeline(clients, env, pipeline, commit, variables)
                    .await?;
                outcome.execution_id = Some(id.clone());
                if self.options.wait_pipeline {
                    let region = &desired.environment.region;
                    let done = self
                        .wait_execution(clients, env, region, pipeline, &id)
                        .await?;
                    return Ok(Step::Done(done));
                }
                Ok(Step::Done(format!(
                    "started pipeline `{pipeline}` (execution {id})"
                )))
            }
            Action::SetTerminationProtection { stack, enabled, .. } => {
                let set = self
                    .ensure_protection(clients, env, stack, *enabled, Some(!enabled))
                    .await?;
                if let Some(s) = clients.cloudformation.describe_stack(stack).await? {
                    outcome.stack_status = Some(s.status);
                }
                let state = if *enabled { "on" } else { "off" };
                Ok(if set {
                    Step::Done(format!("termination protection {state} for `{stack}`"))
                } else {
                    // The endpoint does not implement the call (an emulator).
                    Step::NoChange(format!(
                        "termination protection of `{stack}` left {}: the endpoint does not answer UpdateTerminationProtection (no changes)",
                        if *enabled { "off" } else { "on" }
                    ))
                })
            }
            Action::DeleteStack { stack, .. } => {
                self.delete_stack(clients, env, stack).await?;
                outcome.stack_status = Some("DELETE_COMPLETE".into());
                Ok(Step::Done(format!("deleted `{stack}`")))
            }
            Action::Nothing { reason } => {
                if let Some(s) = clients
                    .cloudformation
                    .describe_stack(&desired.environment.stack)
                    .await?
                {
                    outcome.stack_status = Some(s.status);
                }
                Ok(Step::NoChange(format!("{reason} (no changes)")))
            }
            Action::Refuse { reason } => Err(fail(reason.to_string())),
        }
    }

    /// Waits while the stack is busy; returns its state once settled (or `None` when gone).
    async fn wait_settled(
        &self,
        clients: &AwsClients,
        env: &str,
        stack: &str,
    ) -> Result<Option<crate::aws::Stack>, Failure> {
        let deadline = Instant::now() + self.options.timeout;
        let mut said = false;
        loop {
            let s = clients.cloudformation.describe_stack(stack).await?;
            match &s {
                Some(st) if st.is_in_progress() => {
                    if Instant::now() >= deadline {
                        return Err(Failure {
                            message: format!(
                                "`{stack}` is still busy ({}) after {}s; wait for it to finish (see its events in the CloudFormation console) and run again, or raise --timeout",
                                st.status,
                                self.options.timeout.as_secs()
                            ),
                            failures: Vec::new(),
                            stack_status: Some(st.status.clone()),
                            interrupted: false,
                        });
                    }
                    if !said {
                        self.say(
                            env,
                            format!("waiting for `{stack}`: it is busy ({})", st.status),
                        );
                        said = true;
                    }
                    if self.pause().await {
                        return Err(interrupted(
                            format!(
                                "interrupted while waiting for `{stack}` ({}); nothing was changed",
                                st.status
                            ),
                            Some(st.status.clone()),
                        ));
                    }
                }
                _ => return Ok(s),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn deploy_stack(
        &self,
        clients: &AwsClients,
        env: &str,
        role: StackRole,
        op: StackOp,
        spec: &StackSpec,
        replace_failed: bool,
        protect: bool,
    ) -> Result<(Step, String), Failure> {
        let cfn = &clients.cloudformation;
        // A creation left unexecuted is deleted, not waited on.
        let mut current = if replace_failed {
            match cfn.describe_stack(&spec.name).await? {
                Some(s) if s.status == "REVIEW_IN_PROGRESS" => Some(s),
                _ => self.wait_settled(clients, env, &spec.name).await?,
            }
        } else {
            self.wait_settled(clients, env, &spec.name).await?
        };
        if let Some(s) = &current {
            if s.is_update_rollback_failed() {
                return Err(fail(
                    super::Refusal::UpdateRollbackFailed {
                        stack: spec.name.clone(),
                    }
                    .to_string(),
                ));
            }
        }
        if replace_failed
            || current
                .as_ref()
                .is_some_and(|s| s.is_rollback_complete_never_created())
        {
            if let Some(s) = &current {
                let why = if s.status == "REVIEW_IN_PROGRESS" {
                    "REVIEW_IN_PROGRESS with no resources (a creation never executed, left by an interrupted run)"
                } else {
                    "ROLLBACK_COMPLETE (its creation failed)"
                };
                self.say(
                    env,
                    format!(
                        "`{}` is in {why}: deleting it to create it again",
                        spec.name
                    ),
                );
                cfn.delete_stack(&spec.name).await?;
                self.wait_gone(clients, env, &spec.name).await?;
            }
            current = None;
        }
        let kind = match (&current, op) {
            (None, _) => ChangeSetKind::Create,
            (Some(_), _) => ChangeSetKind::Update,
        };
        if current.is_some() {
            for cs in cfn.list_change_sets(&spec.name).await? {
                // Executed change sets are history, not leftovers.
                if cs.name.starts_with(CHANGE_SET_PREFIX)
                    && cs.execution_status != "EXECUTE_COMPLETE"
                {
                    self.say(env, format!("removing stale change set `{}`", cs.name));
                    cfn.delete_change_set(&spec.name, &cs.name).await?;
                }
            }
        }
        let template = self.template_source(clients, env, spec).await?;
        let cs_name = change_set_name(CHANGE_SET_PREFIX, &spec.tags);
        let request = ChangeSetRequest::new(&spec.name, &cs_name, kind, template)
            .with_parameters(spec.parameters.clone())
            .with_tags(spec.tags.clone())
            .with_capabilities(spec.capabilities.clone())
            .with_description(format!("gitops deploy of {env}"));
        let what = match role {
            StackRole::Pipeline => "pipeline stack",
            StackRole::Environment => "stack",
        };
        self.say(
            env,
            format!(
                "{} {what} `{}` through change set `{cs_name}`",
                if kind == ChangeSetKind::Create {
                    "creating"
                } else {
                    "updating"
                },
                spec.name
            ),
        );
        // From here on, the change set must not be left behind: it is
        // registered before it is requested, and deleted on every path
        // short of its execution.
        let create = kind == ChangeSetKind::Create;
        let id = self.register(clients, &spec.name, &cs_name, create);
        let created = cfn.create_change_set(request).await;
        self.record_created(id, &created);
        if let Err(e) = created {
            let cleanup = self.cleanup_one(id).await;
            if e.is_no_updates() {
                return Ok((
                    Step::NoChange(format!("`{}` is up to date (no changes)", spec.name)),
                    current.map(|s| s.status).unwrap_or_default(),
                ));
            }
            return Err(with_cleanup(e.into(), cleanup));
        }
        let cs = match self.wait_change_set(clients, &spec.name, &cs_name).await {
            Ok(cs) => cs,
            Err(f) => {
                let cleanup = self.cleanup_one(id).await;
                return Err(with_cleanup(f, cleanup));
            }
        };
        if cs.is_empty_no_changes() {
            if let Err(c) = self.cleanup_one(id).await {
                return Err(fail(c));
            }
            let status = current
                .as_ref()
                .map(|s| s.status.clone())
                .unwrap_or_default();
            self.ensure_protection(
                clients,
                env,
                &spec.name,
                protect,
                current.as_ref().and_then(|s| s.termination_protection),
            )
            .await?;
            return Ok((
                Step::NoChange(format!("`{}` is up to date (no changes)", spec.name)),
                status,
            ));
        }
        if !cs.is_ready() {
            let cleanup = self.cleanup_one(id).await;
            return Err(with_cleanup(
                fail(format!(
                    "change set for `{}` failed: {}",
                    spec.name,
                    cs.status_reason.unwrap_or(cs.status)
                )),
                cleanup,
            ));
        }
        for c in &cs.changes {
            let repl = c
                .replacement
                .as_deref()
                .map(|r| format!(" (replacement: {r})"))
                .unwrap_or_default();
            self.say(
                env,
                format!("  {} {} {}{repl}", c.action, c.logical_id, c.resource_type),
            );
        }
        let last_event = if current.is_some() {
            match cfn.stack_events(&spec.name, None).await {
                Ok(events) => events.first().map(|e| e.event_id.clone()),
                Err(e) => {
                    let cleanup = self.cleanup_one(id).await;
                    return Err(with_cleanup(e.into(), cleanup));
                }
            }
        } else {
            None
        };
        if self.is_cancelled() {
            let cleanup = self.cleanup_one(id).await;
            let what = if create {
                format!(
                    "change set `{cs_name}` and the REVIEW_IN_PROGRESS stack `{}` deleted",
                    spec.name
                )
            } else {
                format!("change set `{cs_name}` deleted")
            };
            let status = if create {
                None
            } else {
                current.as_ref().map(|s| s.status.clone())
            };
            let mut f = interrupted(
                format!(
                    "interrupted before executing: {what}; `{}` was not changed",
                    spec.name
                ),
                status,
            );
            if let Err(c) = cleanup {
                f.message = c;
            }
            return Err(f);
        }
        if let Err(e) = cfn.execute_change_set(&spec.name, &cs_name).await {
            let cleanup = self.cleanup_one(id).await;
            return Err(with_cleanup(e.into(), cleanup));
        }
        self.forget(id);
        let final_stack = self.follow(clients, env, &spec.name, last_event).await?;
        let status = final_stack.status.clone();
        if !final_stack.is_complete_ok() {
            let failures = self.failed_events(clients, &spec.name).await;
            return Err(Failure {
                message: format!(
                    "`{}` ended in {}{}",
                    spec.name,
                    status,
                    final_stack
                        .status_reason
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
                failures,
                stack_status: Some(status),
                interrupted: false,
            });
        }
        self.ensure_protection(
            clients,
            env,
            &spec.name,
            protect,
            final_stack.termination_protection,
        )
        .await?;
        let verb = if kind == ChangeSetKind::Create {
            "created"
        } else {
            "updated"
        };
        Ok((
            Step::Done(format!("{verb} `{}` ({status})", spec.name)),
            status,
        ))
    }

    /// Turns termination protection on or off so that it is `protect`, when
    /// `current` (as the stack reports it; `None`: not reported) says it is
    /// not: a stack that does not report it is only ever turned on.
    async fn ensure_protection(
        &self,
        clients: &AwsClients,
        env: &str,
        stack: &str,
        protect: bool,
        current: Option<bool>,
    ) -> Result<bool, Failure> {
        let needed = match current {
            Some(c) => c != protect,
            None => protect,
        };
        if needed {
            let state = if protect { "on" } else { "off" };
            self.say(
                env,
                format!("turning termination protection {state} for `{stack}`"),
            );
            match clients
                .cloudformation
                .update_termination_protection(stack, protect)
                .await
            {
                Ok(()) => {}
                // An endpoint that does not implement the call (an emulator) answers
                // without a service error code: say so, and go on.
                Err(e) if e.code.is_none() && e.kind != crate::aws::AwsErrorKind::Connection => {
                    self.say(env, format!("warning: could not turn termination protection {state} for `{stack}`: the endpoint does not answer UpdateTerminationProtection"));
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }

    async fn template_source(
        &self,
        clients: &AwsClients,
        env: &str,
        spec: &StackSpec,
    ) -> Result<TemplateSource, Failure> {
        if spec.template_body.len() <= MAX_TEMPLATE_BODY {
            return Ok(TemplateSource::Body(spec.template_body.clone()));
        }
        let Some(bucket) = &self.template_bucket else {
            return Err(fail(format!(
                "template `{}` is {} bytes, over CloudFormation's inline limit of {MAX_TEMPLATE_BODY}; set `stack.template-bucket` in gitops.yaml to upload it to S3",
                spec.template_path,
                spec.template_body.len()
            )));
        };
        let digest = short_hash(&spec.template_body);
        let key = format!(
            "gitops/{}/{env}/{digest}.template",
            self.repo_id.replace('/', "-")
        );
        self.say(
            env,
            format!("uploading `{}` to s3://{bucket}/{key}", spec.template_path),
        );
        let url = clients
            .s3
            .put_object(bucket, &key, spec.template_body.clone().into_bytes())
            .await?;
        Ok(TemplateSource::Url(url))
    }

    async fn wait_change_set(
        &self,
        clients: &AwsClients,
        stack: &str,
        name: &str,
    ) -> Result<crate::aws::ChangeSet, Failure> {
        let deadline = Instant::now() + self.options.timeout;
        loop {
            let cs = clients
                .cloudformation
                .describe_change_set(stack, name)
                .await?;
            if !cs.is_pending() {
                return Ok(cs);
            }
            if Instant::now() >= deadline {
                return Err(fail(format!(
                    "change set `{name}` was still being created after {}s",
                    self.options.timeout.as_secs()
                )));
            }
            if self.pause().await {
                return Err(interrupted(
                    format!("interrupted while change set `{name}` was computed; it was deleted, and `{stack}` was not changed"),
                    None,
                ));
            }
        }
    }

    /// Streams new stack events until the stack settles; returns its final state.
    async fn follow(
        &self,
        clients: &AwsClients,
        env: &str,
        stack: &str,
        mut last: Option<String>,
    ) -> Result<crate::aws::Stack, Failure> {
        let deadline = Instant::now() + self.options.timeout;
        loop {
            let s = clients.cloudformation.describe_stack(stack).await?;
            let events = clients
                .cloudformation
                .stack_events(stack, last.as_deref())
                .await
                .unwrap_or_default();
            if let Some(first) = events.first() {
                last = Some(first.event_id.clone());
            }
            for e in events.iter().rev() {
                let reason = e
                    .reason
                    .as_deref()
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default();
                self.say(
                    env,
                    format!("{} {} {}{reason}", e.timestamp, e.logical_id, e.status),
                );
            }
            match s {
                None => return Err(fail(format!("`{stack}` disappeared while deploying"))),
                Some(s) if !s.is_in_progress() => return Ok(s),
                Some(s) => {
                    if Instant::now() >= deadline {
                        return Err(Failure {
                            message: format!("`{stack}` is still {} after {}s; it keeps going in AWS: watch it in the console, or raise --timeout", s.status, self.options.timeout.as_secs()),
                            stack_status: Some(s.status),
                            ..Failure::default()
                        });
                    }
                    if self.pause().await {
                        return Err(interrupted(
                            format!("interrupted while `{stack}` was {}: the operation was not cancelled and goes on in AWS; watch it in the console", s.status),
                            Some(s.status),
                        ));
                    }
                }
            }
        }
    }

    async fn failed_events(&self, clients: &AwsClients, stack: &str) -> Vec<String> {
        clients
            .cloudformation
            .stack_events(stack, None)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.status.ends_with("_FAILED"))
            .map(|e| {
                format!(
                    "{} ({}) {}: {}",
                    e.logical_id,
                    e.resource_type,
                    e.status,
                    e.reason.unwrap_or_default()
                )
            })
            .collect()
    }

    async fn wait_gone(&self, clients: &AwsClients, env: &str, stack: &str) -> Result<(), Failure> {
        let deadline = Instant::now() + self.options.timeout;
        loop {
            match clients.cloudformation.describe_stack(stack).await? {
                None => return Ok(()),
                Some(s) if s.is_deleted() => return Ok(()),
                Some(s) if s.status == "DELETE_FAILED" => {
                    let failures = self.failed_events(clients, stack).await;
                    return Err(Failure {
                        message: format!(
                            "deleting `{stack}` failed{}",
                            s.status_reason
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default()
                        ),
                        failures,
                        stack_status: Some(s.status),
                        interrupted: false,
                    });
                }
                Some(s) => {
                    if Instant::now() >= deadline {
                        return Err(Failure {
                            message: format!(
                                "`{stack}` is still {} after {}s",
                                s.status,
                                self.options.timeout.as_secs()
                            ),
                            failures: Vec::new(),
                            stack_status: Some(s.status),
                            interrupted: false,
                        });
                    }
                    self.say(env, format!("waiting for `{stack}` ({})", s.status));
                    if self.pause().await {
                        return Err(interrupted(
                            format!(
                                "interrupted while `{stack}` was {}: the deletion goes on in AWS",
                                s.status
                            ),
                            Some(s.status),
                        ));
                    }
                }
            }
        }
    }

    async fn delete_stack(
        &self,
        clients: &AwsClients,
        env: &str,
        stack: &str,
    ) -> Result<(), Failure> {
        let Some(s) = self.wait_settled(clients, env, stack).await? else {
            return Ok(());
        };
        if s.termination_protection == Some(true) {
            return Err(Failure {
                message: format!("`{stack}` has termination protection on; turn it off (`aws cloudformation update-termination-protection --no-enable-termination-protection --stack-name {stack}`) if it really should go"),
                failures: Vec::new(),
                stack_status: Some(s.status),
                interrupted: false,
            });
        }
        self.say(env, format!("deleting `{stack}`"));
        clients.cloudformation.delete_stack(stack).await?;
        self.wait_gone(clients, env, stack).await
    }

    async fn start_pipeline(
        &self,
        clients: &AwsClients,
        env: &str,
        name: &str,
        commit: &str,
        variables: &std::collections::BTreeMap<String, String>,
    ) -> Result<String, Failure> {
        let Some(p) = clients.codepipeline.get_pipeline(name).await? else {
            return Err(fail(format!(
                "pipeline `{name}` does not exist although its stack does; check the pipeline stack's template creates a pipeline named `{name}` (parameter PipelineName)"
            )));
        };
        let mut req = StartExecution::new(name).with_client_request_token(format!(
            "gitops-{}-{}",
            crate::text::short_commit(commit),
            CHANGE_SET_COUNTER.fetch_add(1, Ordering::Relaxed) + unix_millis()
        ));
        for a in &p.source_actions {
            if matches!(
                a.provider.as_str(),
                "CodeStarSourceConnection" | "CodeCommit"
            ) {
                req = req.with_source_revision(SourceRevision::commit(&a.name, commit));
            }
        }
        for (k, v) in variables {
            if p.variables.iter().any(|d| d == k) {
                req = req.with_variable(k, v);
            }
        }
        let pinned = !req.source_revisions.is_empty();
        let id = clients.codepipeline.start_execution(req).await?;
        self.say(
            env,
            format!(
                "started pipeline `{name}`: execution {id}{}",
                if pinned {
                    format!(" pinned to {}", crate::text::short_commit(commit))
                } else {
                    String::new()
                }
            ),
        );
        Ok(id)
    }
}

enum Step {
    Done(String),
    NoChange(String),
}

/// One environment observed and planned, waiting to be executed.
struct Planned {
    start: Instant,
    clients: Option<AwsClients>,
    plan: Result<EnvPlan, Failure>,
}

/// `f`, with the reason its change set could not be deleted, if so.
fn with_cleanup(mut f: Failure, cleanup: Result<(), String>) -> Failure {
    if let Err(c) = cleanup {
        f.message = format!("{}; {c}", f.message);
    }
    f
}

fn normalized_template(text: &str) -> Option<serde_json::Value> {
    Template::parse("deployed", text)
        .ok()
        .map(|t| t.normalized())
}

/// A short summary of a plan, for dry runs.
pub(crate) fn describe(plan: &EnvPlan) -> String {
    plan.actions
        .iter()
        .map(|a| match a {
            Action::DeployStack { spec, .. } => format!("{} `{}`", a.label(), spec.name),
            Action::StartPipeline {
                pipeline, commit, ..
            } => format!(
                "start `{pipeline}` at {}",
                crate::text::short_commit(commit)
            ),
            Action::DeleteStack { stack, .. } => format!("delete `{stack}`"),
            Action::SetTerminationProtection { stack, enabled, .. } => format!(
                "turn termination protection {} for `{stack}`",
                if *enabled { "on" } else { "off" }
            ),
            Action::Refuse { reason } => reason.to_string(),
            Action::Nothing { reason } => reason.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A unique change-set name: `prefix`, the commit's first characters, the
/// time and a counter.
pub(super) fn change_set_name(
    prefix: &str,
    tags: &std::collections::BTreeMap<String, String>,
) -> String {
    let commit = tags
        .get(super::TAG_COMMIT)
        .map(String::as_str)
        .unwrap_or("0");
    let short: String = commit
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(crate::text::SHORT_COMMIT_LEN)
        .collect();
    format!(
        "{prefix}{short}-{}-{}",
        unix_millis(),
        CHANGE_SET_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn short_hash(s: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    format!("{:016x}", h.finish())
}
