//! What AWS runs, read for `gitops status` and `gitops drift`: the stacks,
//! their templates and the pipeline's last execution, then CloudFormation
//! drift detection with bounded polling. Everything here only reads, except
//! [`remediate`], which hands one environment to the [`Executor`].
//!
//! The comparison itself is pure and lives in [`crate::drift`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Desired, Executor, Observed, Outcome, TAG_COMMIT, TAG_MANAGED_BY, TAG_REMEDIATED};
use crate::aws::{
    AwsClients, AwsError, AwsResult, ClientFactory, CloudFormation, ExecutionSummary,
    ResourceDrift, Stack,
};
use crate::deployed::{Deployed, RegionStacks};
use crate::detect::Change;
use crate::drift::{
    compare, health, may_remediate, orphans, EnvDrift, PipelineRun, Reason, ReasonKind, Remediation,
};
use crate::fanout::{self, FanOut};
use crate::model::Environment;
use crate::model::{PromotedKey, Repository};
use crate::template::Template;

/// How [`inspect`] works.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InspectOptions {
    /// Read and compare the deployed templates (GetTemplate, one call per
    /// stack). `gitops status` leaves them out to stay fast.
    pub templates: bool,
    /// Run CloudFormation drift detection on each stack.
    pub resource_drift: bool,
    /// The first delay between polls of a drift detection.
    pub poll: Duration,
    /// The longest delay between polls (the delay doubles up to it).
    pub max_poll: Duration,
    /// How long one stack's drift detection may take.
    pub timeout: Duration,
    /// `drift.ignore` from gitops.yaml.
    pub ignore: Vec<String>,
}

impl Default for InspectOptions {
    fn default() -> Self {
        Self {
            templates: true,
            resource_drift: false,
            poll: Duration::from_secs(2),
            max_poll: Duration::from_secs(15),
            timeout: Duration::from_secs(300),
            ignore: Vec::new(),
        }
    }
}

impl InspectOptions {
    /// Templates compared, no drift detection; 2 s first poll, 15 s longest, 300 s bound.
    pub fn new() -> Self {
        Self::default()
    }
    /// Turns reading and comparing the deployed templates on or off.
    pub fn with_templates(mut self, yes: bool) -> Self {
        self.templates = yes;
        self
    }
    /// Turns CloudFormation drift detection on or off.
    pub fn with_resource_drift(mut self, yes: bool) -> Self {
        self.resource_drift = yes;
        self
    }
    /// Sets the first and the longest delay between polls.
    pub fn with_poll(mut self, first: Duration, longest: Duration) -> Self {
        self.poll = first;
        self.max_poll = longest.max(first);
        self
    }
    /// Sets how long one drift detection may take.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Sets the `drift.ignore` entries.
    pub fn with_ignore(mut self, ignore: Vec<String>) -> Self {
        self.ignore = ignore;
        self
    }
}

/// Why CloudFormation drift detection of a stack gave no (complete) answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DriftCheckError {
    /// A call failed.
    #[error("{0}")]
    Aws(AwsError),
    /// Detection ended `DETECTION_FAILED`; `partial` holds the results of
    /// the resources it did check.
    #[error("drift detection of `{stack}` failed: {reason}")]
    Failed {
        /// The stack.
        stack: String,
        /// CloudFormation's reason.
        reason: String,
        /// The resources it checked.
        partial: Vec<ResourceDrift>,
    },
    /// Detection was still running when the bound was reached.
    #[error("drift detection of `{stack}` was still running after {}s; raise --drift-timeout, or see the stack's drift in the CloudFormation console", .after.as_secs())]
    TimedOut {
        /// The stack.
        stack: String,
        /// The bound.
        after: Duration,
    },
}

impl From<AwsError> for DriftCheckError {
    fn from(e: AwsError) -> Self {
        DriftCheckError::Aws(e)
    }
}

/// Runs CloudFormation drift detection on `stack`: DetectStackDrift, then
/// DescribeStackDriftDetectionStatus with a delay that doubles from
/// `options.poll` up to `options.max_poll`, for at most `options.timeout`,
/// then DescribeStackResourceDrifts (every resource, `NOT_CHECKED` ones included).
pub async fn detect_resource_drift(
    cfn: &dyn CloudFormation,
    stack: &str,
    options: &InspectOptions,
) -> Result<Vec<ResourceDrift>, DriftCheckError> {
    let id = cfn.detect_stack_drift(stack).await?;
    let deadline = Instant::now() + options.timeout;
    let mut delay = options.poll;
    loop {
        let d = cfn.describe_drift_detection(&id).await?;
        match d.status.as_str() {
            "DETECTION_COMPLETE" => break,
            "DETECTION_FAILED" => {
                // Results are there for the resources it could check.
                let partial = cfn
                    .describe_resource_drifts(stack)
                    .await
                    .unwrap_or_default();
                return Err(DriftCheckError::Failed {
                    stack: stack.to_string(),
                    reason: d.reason.unwrap_or_else(|| "no reason given".into()),
                    partial,
                });
            }
            _ => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(DriftCheckError::TimedOut {
                        stack: stack.to_string(),
                        after: options.timeout,
                    });
                }
                tokio::time::sleep(delay.min(deadline - now)).await;
                delay = (delay * 2).min(options.max_poll);
            }
        }
    }
    Ok(cfn.describe_resource_drifts(stack).await?)
}

/// Every stack of one region and role, by name, read with
/// [`CloudFormation::list_stacks`].
pub type Listing = BTreeMap<String, Stack>;

/// From this many environments in one region and role on, [`inspect_all`]
/// reads their stacks with one paginated DescribeStacks instead of one call each.
pub const LIST_THRESHOLD: usize = 4;

async fn describe(
    cfn: &dyn CloudFormation,
    name: &str,
    listing: Option<&Listing>,
) -> AwsResult<Option<Stack>> {
    match listing {
        Some(l) => Ok(l.get(name).cloned()),
        None => cfn.describe_stack(name).await,
    }
}

/// Reads an environment's stacks (from `listing` when given), their
/// templates (normalised; with `templates`) and, in pipeline mode, its
/// pipeline's last execution (`None` when the pipeline does not exist or
/// never ran).
pub async fn observe_deployed(
    clients: &AwsClients,
    desired: &Desired,
    templates: bool,
    listing: Option<&Listing>,
) -> AwsResult<(Observed, Option<ExecutionSummary>)> {
    let env = &desired.environment;
    let cfn = clients.cloudformation.as_ref();
    let mut o = Observed::new();
    o.stack = describe(cfn, &env.stack, listing).await?;
    if templates {
        o.stack_template = template_of(cfn, o.stack.as_ref()).await?;
    }
    if let Some(ps) = &env.pipeline_stack {
        o.pipeline_stack = describe(cfn, ps, listing).await?;
        if templates {
            o.pipeline_stack_template = template_of(cfn, o.pipeline_stack.as_ref()).await?;
        }
    }
    let last = match &env.pipeline {
        Some(name) => match clients.codepipeline.list_executions(name, 1).await {
            Ok(list) => list.into_iter().next(),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    Ok((o, last))
}

async fn template_of(
    cfn: &dyn CloudFormation,
    stack: Option<&Stack>,
) -> AwsResult<Option<serde_json::Value>> {
    match stack {
        // A stack only reviewed (a change set never executed) has no template of its own yet.
        Some(s) if !s.is_deleted() && s.status != "REVIEW_IN_PROGRESS" => {
            let text = cfn.get_template(&s.name).await?;
            Ok(Some(match Template::parse("deployed", &text) {
                Ok(t) => t.normalized(),
                // Not something we can read back: it differs from git's.
                Err(_) => serde_json::Value::String(text),
            }))
        }
        _ => Ok(None),
    }
}

/// Checks one environment: reads what AWS runs, compares it with `desired`
/// and, with `options.resource_drift`, runs drift detection on its existing
/// stacks that are not busy. Never fails: an error makes the environment
/// `Unknown` (or is recorded next to the differences already found).
pub async fn inspect(
    clients: &AwsClients,
    desired: &Desired,
    keys: &[PromotedKey],
    options: &InspectOptions,
) -> EnvDrift {
    inspect_with(clients, desired, keys, options, None).await
}

/// [`inspect`], with the stacks taken from `listing` when given.
pub async fn inspect_with(
    clients: &AwsClients,
    desired: &Desired,
    keys: &[PromotedKey],
    options: &InspectOptions,
    listing: Option<&Listing>,
) -> EnvDrift {
    let observed = observe_deployed(clients, desired, options.templates, listing).await;
    let (observed, last) = match observed {
        Ok(x) => x,
        Err(e) => return EnvDrift::unknown(&desired.environment, keys, e.to_string()),
    };
    let mut d = assess(desired, &observed, last.as_ref(), keys);
    if !options.resource_drift {
        return d;
    }
    let stacks: Vec<&Stack> = [&observed.stack, &observed.pipeline_stack]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_deleted())
        .collect();
    let mut checked = !stacks.is_empty();
    for s in stacks {
        if s.is_in_progress() {
            checked = false;
            continue;
        }
        match detect_resource_drift(clients.cloudformation.as_ref(), &s.name, options).await {
            Ok(drifts) => d.add_resource_drift(&s.name, &drifts, &options.ignore),
            Err(DriftCheckError::Failed {
                stack,
                reason,
                partial,
            }) => {
                checked = false;
                d.add_resource_drift(&stack, &partial, &options.ignore);
                d.add_error(format!("drift detection of `{stack}` failed: {reason}"));
            }
            Err(DriftCheckError::Aws(e)) => {
                checked = false;
                let hint = if e.code.is_none() && e.operation == "DetectStackDrift" {
                    " (an emulator such as moto does not implement drift detection: pass --skip-resource-drift)"
                } else {
                    ""
                };
                d.add_error(format!("{e}{hint}"));
            }
            Err(e) => {
                checked = false;
                d.add_error(e.to_string());
            }
        }
    }
    d.resource_drift_checked = checked;
    d
}

/// [`inspect`]s every environment, at most `concurrency` at a time per
/// account and region ([`fanout::location`]), each with the
/// clients for its region and role. Where a region and role hold at least
/// [`LIST_THRESHOLD`] of them, their stacks are read with one paginated
/// DescribeStacks first (far fewer calls than one per stack, which matters
/// for throttling and for endpoints that serve calls one at a time); when
/// that listing fails, each environment reads its own. Results come back in
/// input order.
pub async fn inspect_all(
    factory: Arc<dyn ClientFactory>,
    desired: Vec<Desired>,
    keys: Vec<PromotedKey>,
    options: InspectOptions,
    concurrency: usize,
) -> Vec<EnvDrift> {
    inspect_all_listed(factory, desired, keys, options, concurrency, &[]).await
}

/// [`inspect_all`] with the stacks of some regions and roles already
/// listed (`listed`, from [`list_bases`]): those are not listed again,
/// whatever the number of environments there.
pub(crate) async fn inspect_all_listed(
    factory: Arc<dyn ClientFactory>,
    desired: Vec<Desired>,
    keys: Vec<PromotedKey>,
    options: InspectOptions,
    concurrency: usize,
    listed: &[RegionStacks],
) -> Vec<EnvDrift> {
    type Location = (String, Option<String>);
    let location = |d: &Desired| -> Location {
        (d.environment.region.clone(), d.environment.role_arn.clone())
    };
    let mut counts: BTreeMap<Location, usize> = BTreeMap::new();
    for d in &desired {
        *counts.entry(location(d)).or_default() += 1;
    }
    // Make each location's clients once, before the fan-out, and list the
    // stacks of the busy ones.
    let mut listings: BTreeMap<Location, Arc<Listing>> = BTreeMap::new();
    for (loc, n) in &counts {
        let known = listed
            .iter()
            .find(|l| l.region == loc.0 && l.role_arn == loc.1);
        if let Some(known) = known {
            let by_name = known.stacks.iter().map(|s| (s.name.clone(), s.clone()));
            listings.insert(loc.clone(), Arc::new(by_name.collect()));
            continue;
        }
        let Ok(clients) = factory.clients(&loc.0, loc.1.as_deref()).await else {
            continue;
        };
        if *n >= LIST_THRESHOLD {
            if let Ok(stacks) = clients.cloudformation.list_stacks().await {
                let by_name = stacks.into_iter().map(|s| (s.name.clone(), s)).collect();
                listings.insert(loc.clone(), Arc::new(by_name));
            }
        }
    }
    let (keys, options) = (Arc::new(keys), Arc::new(options));
    let envs: Vec<Environment> = desired.iter().map(|d| d.environment.clone()).collect();
    let results = FanOut::new(concurrency)
        .run(
            desired,
            |d| fanout::location(&d.environment),
            |d| {
                let (factory, keys, options) = (factory.clone(), keys.clone(), options.clone());
                let listing = listings.get(&location(&d)).cloned();
                async move {
                    let env = &d.environment;
                    match factory.clients(&env.region, env.role_arn.as_deref()).await {
                        Ok(clients) => {
                            inspect_with(&clients, &d, &keys, &options, listing.as_deref()).await
                        }
                        Err(e) => EnvDrift::unknown(&d.environment, &keys, e.to_string()),
                    }
                }
            },
        )
        .await;
    results
        .into_iter()
        .zip(envs)
        .map(|(r, env)| {
            r.unwrap_or_else(|e| {
                let mut d = EnvDrift::unknown(&env, &keys, format!("the check failed: {e}"));
                d.failed = true;
                d
            })
        })
        .collect()
}

/// Lists the stacks tagged `gitops:managed-by=repo_id` in each location
/// (region and role) and returns those not in `declared`: the orphans.
pub async fn find_orphans(
    factory: &dyn ClientFactory,
    repo_id: &str,
    locations: &[(String, Option<String>)],
    declared: &[String],
) -> AwsResult<Vec<String>> {
    let mut tagged: Vec<Stack> = Vec::new();
    for (region, role) in locations {
        let clients = factory.clients(region, role.as_deref()).await?;
        for s in clients
            .cloudformation
            .list_stacks_with_tag(TAG_MANAGED_BY, repo_id)
            .await?
        {
            if !tagged.iter().any(|t| t.id == s.id && t.name == s.name) {
                tagged.push(s);
            }
        }
    }
    Ok(orphans(declared.iter().map(String::as_str), &tagged))
}

/// The orphans of `model`: the stacks tagged with its id, in every region
/// (and role) its environments use and in its default region, that no
/// environment declares. The error is a sentence, for the report.
pub async fn orphans_of(
    factory: &dyn ClientFactory,
    model: &crate::Repository,
) -> Result<Vec<String>, String> {
    let mut locations: Vec<(String, Option<String>)> = Vec::new();
    let mut declared = Vec::new();
    for e in &model.environments {
        let loc = (e.region.clone(), e.role_arn.clone());
        if !locations.contains(&loc) {
            locations.push(loc);
        }
        declared.push(e.stack.clone());
        declared.extend(e.pipeline_stack.clone());
    }
    let default = (model.config.defaults.region.clone(), None);
    if !locations.contains(&default) {
        locations.push(default);
    }
    let id = model.owner_id().map_err(|e| e.to_string())?;
    find_orphans(factory, id, &locations, &declared)
        .await
        .map_err(|e| format!("looking for orphan stacks: {e}"))
}

/// [`remediate`] for every OutOfSync drift whose environment is in
/// `desired`, one after the other, until `executor` is cancelled; `done`
/// hears of each remediation as it is recorded in its drift.
pub async fn remediate_all(
    executor: &Executor,
    desired: &[Desired],
    drifts: &mut [EnvDrift],
    head: &str,
    done: impl Fn(&str, &Remediation),
) {
    for d in drifts
        .iter_mut()
        .filter(|d| d.status.sync == crate::drift::Sync::OutOfSync)
    {
        let Some(desired) = desired.iter().find(|x| x.environment.name == d.status.name) else {
            continue;
        };
        if executor.is_cancelled() {
            break;
        }
        let r = remediate(executor, desired, d, head).await;
        done(&d.status.name, &r);
        d.remediation = Some(r);
    }
}

/// Self-healing: redeploys an OutOfSync environment with the executor when
/// `may_remediate` (the rules of `drift`) allows it — in direct mode its stack is updated (or
/// created), in pipeline mode its pipeline is started — recording `head` in
/// the tag `gitops:remediated-commit` of the stack the tool deploys (the
/// environment stack, or the pipeline stack). Never deletes anything.
pub async fn remediate(
    executor: &Executor,
    desired: &Desired,
    drift: &EnvDrift,
    head: &str,
) -> Remediation {
    if desired.change == Change::Deleted {
        return Remediation::skipped("its folder was removed; remediation never deletes");
    }
    if let Err(why) = may_remediate(drift, desired.environment.auto_remediate, head) {
        return Remediation::skipped(why.to_string());
    }
    let mut d = desired.clone();
    d.change = Change::Updated;
    let target = if d.pipeline_stack.is_some() {
        d.pipeline_stack.as_mut()
    } else {
        d.stack.as_mut()
    };
    if let Some(spec) = target {
        spec.tags.insert(TAG_REMEDIATED.into(), head.to_string());
    }
    let outcome = executor.run(&d).await;
    match outcome.outcome {
        Outcome::Succeeded | Outcome::NoOp => Remediation::redeployed(outcome.message),
        Outcome::Planned => Remediation::skipped(format!("dry run: {}", outcome.message)),
        _ => {
            let mut m = outcome.message;
            for f in &outcome.failures {
                m.push_str(&format!("; {f}"));
            }
            Remediation::failed(m)
        }
    }
}

/// Builds an environment's drift from what git wants and what AWS has,
/// without CloudFormation drift detection (see [`EnvDrift::add_resource_drift`]).
///
/// The environment stack is compared with [`compare`]. In pipeline mode the
/// pipeline deploys the environment stack and sets no stack tags, so only
/// its template and parameters are compared there, while the pipeline stack
/// (which the tool deploys itself) is compared in full.
pub fn assess(
    desired: &Desired,
    observed: &Observed,
    last_execution: Option<&ExecutionSummary>,
    keys: &[PromotedKey],
) -> EnvDrift {
    let env = &desired.environment;
    let mut d = EnvDrift::unknown(env, keys, "");
    d.status.error = None;
    let stack = observed.stack.as_ref().filter(|s| !s.is_deleted());
    if let Some(s) = stack {
        d.status.deployed_version = keys
            .iter()
            .map(|k| {
                let v = match k {
                    PromotedKey::Parameter(n) => s.parameters.get(n),
                    PromotedKey::Tag(n) => s.tags.get(n),
                };
                (k.to_string(), v.cloned())
            })
            .collect();
        d.status.commit = s.tags.get(TAG_COMMIT).cloned();
        d.status.stack_status = Some(s.status.clone());
    }
    if let (Some(name), Some(e)) = (&env.pipeline, last_execution) {
        d.status.pipeline = Some(PipelineRun::new(name, e));
    }
    d.status.health = health(stack, last_execution);
    let pipeline_mode = desired.pipeline_stack.is_some();
    if let Some(spec) = &desired.stack {
        match stack {
            None => d.reasons.push(Reason::stack_missing(&spec.name)),
            Some(s) => {
                let mut r = compare(spec, s, observed.stack_template.as_ref());
                if pipeline_mode {
                    r.retain(|r| r.kind != ReasonKind::Tag);
                } else if s.termination_protection == Some(!env.protected) {
                    // The tool deploys this stack: its protection follows `protected`.
                    r.push(Reason::termination_protection(&spec.name, env.protected));
                }
                d.reasons.extend(r);
            }
        }
    }
    let pstack = observed.pipeline_stack.as_ref().filter(|s| !s.is_deleted());
    if let Some(spec) = &desired.pipeline_stack {
        match pstack {
            None => d
                .reasons
                .push(Reason::stack_missing(&spec.name).on_pipeline_stack()),
            Some(s) => {
                let mut r = compare(spec, s, observed.pipeline_stack_template.as_ref());
                if s.termination_protection == Some(!env.protected) {
                    r.push(Reason::termination_protection(&spec.name, env.protected));
                }
                d.reasons
                    .extend(r.into_iter().map(Reason::on_pipeline_stack));
            }
        }
        d.remediated_commit = pstack.and_then(|s| s.tags.get(TAG_REMEDIATED).cloned());
    } else {
        d.remediated_commit = stack.and_then(|s| s.tags.get(TAG_REMEDIATED).cloned());
    }
    d.refresh_sync();
    d
}

/// How many executions of a pipeline [`observe_bases`] reads to find its
/// latest succeeded one.
pub const EXECUTIONS_READ: usize = 20;

/// The regions and roles `--base deployed` reads: those of every
/// environment declared at `head`, and the default region without a role.
pub fn base_locations(head: &Repository) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for e in &head.environments {
        let loc = (e.region.clone(), e.role_arn.clone());
        if !out.contains(&loc) {
            out.push(loc);
        }
    }
    let default = (head.config.defaults.region.clone(), None);
    if !out.contains(&default) {
        out.push(default);
    }
    out
}

/// Reads what is deployed for `--base deployed`: every stack of each
/// region and role of [`base_locations`] with one paginated DescribeStacks
/// each, and in pipeline mode the latest [`EXECUTIONS_READ`] executions of
/// each existing pipeline (the source revision of the latest succeeded one
/// is its base). Both go through [`FanOut`], `concurrency` at a time per
/// region and role. Read-only.
pub async fn observe_bases(
    factory: Arc<dyn ClientFactory>,
    head: &Repository,
    concurrency: usize,
) -> AwsResult<Deployed> {
    let listings = list_bases(factory.clone(), head, concurrency).await?;
    observe_listed(factory, head, concurrency, listings).await
}

/// A fan-out task that failed (panicked or was cancelled), as an AWS error.
fn failed(service: &'static str, operation: &'static str, e: fanout::TaskError) -> AwsError {
    AwsError::new(
        service,
        operation,
        crate::aws::AwsErrorKind::Other,
        e.to_string(),
    )
}

/// The stacks of each region and role of [`base_locations`]: one
/// paginated DescribeStacks each, `concurrency` at a time per region and
/// role; the first error if any fails.
pub(crate) async fn list_bases(
    factory: Arc<dyn ClientFactory>,
    head: &Repository,
    concurrency: usize,
) -> AwsResult<Vec<RegionStacks>> {
    let listed = FanOut::new(concurrency)
        .run(
            base_locations(head),
            |loc| loc.clone(),
            |(region, role)| {
                let factory = factory.clone();
                async move {
                    let clients = factory.clients(&region, role.as_deref()).await?;
                    let stacks = clients.cloudformation.list_stacks().await?;
                    Ok::<_, AwsError>(RegionStacks::new(region, role, stacks))
                }
            },
        )
        .await;
    let mut listings = Vec::new();
    for r in listed {
        listings.push(r.map_err(|e| failed("CloudFormation", "DescribeStacks", e))??);
    }
    Ok(listings)
}

/// [`observe_bases`] with the stacks already listed (`listings`, from
/// [`list_bases`]).
pub(crate) async fn observe_listed(
    factory: Arc<dyn ClientFactory>,
    head: &Repository,
    concurrency: usize,
    listings: Vec<RegionStacks>,
) -> AwsResult<Deployed> {
    let fan = FanOut::new(concurrency);
    let without = Deployed::from_listings(head, &listings, &BTreeMap::new());
    let pipelines: Vec<(String, String, Option<String>)> = head
        .environments
        .iter()
        .filter(|e| without.environments.contains_key(&e.name))
        .filter_map(|e| {
            e.pipeline
                .clone()
                .map(|p| (p, e.region.clone(), e.role_arn.clone()))
        })
        .collect();
    if pipelines.is_empty() {
        return Ok(without);
    }
    let read = fan
        .run(
            pipelines,
            |(_, region, role)| (region.clone(), role.clone()),
            |(name, region, role)| {
                let factory = factory.clone();
                async move {
                    let clients = factory.clients(&region, role.as_deref()).await?;
                    let list = match clients
                        .codepipeline
                        .list_executions(&name, EXECUTIONS_READ)
                        .await
                    {
                        Ok(list) => list,
                        Err(e) if e.is_not_found() => Vec::new(),
                        Err(e) => return Err(e),
                    };
                    let rev = list
                        .iter()
                        .find(|x| x.status == "Succeeded")
                        .and_then(|x| x.source_revision().map(str::to_string));
                    Ok::<_, AwsError>((name, rev))
                }
            },
        )
        .await;
    let mut succeeded = BTreeMap::new();
    for r in read {
        if let (name, Some(rev)) =
            r.map_err(|e| failed("CodePipeline", "ListPipelineExecutions", e))??
        {
            succeeded.insert(name, rev);
        }
    }
    Ok(Deployed::from_listings(head, &listings, &succeeded))
}

/// `gitops status`'s `pending`, from what is `deployed` (read with
/// [`observe_listed`]): classifies every environment against its deployed
/// commit ([`crate::git::detect_deployed`], `head` being the commit
/// `head_model` was read at, under `prefix` in `repo`) and sets each row's
/// `pending` (`deployed::mark_pending`). On an error the rows stay unknown.
pub(crate) fn pending_from(
    deployed: &Deployed,
    repo: &gix::Repository,
    head: gix::ObjectId,
    prefix: &str,
    head_model: &Repository,
    drifts: &mut [EnvDrift],
) -> Result<(), PendingError> {
    let detection = crate::git::detect_deployed(repo, head, prefix, head_model, deployed)?;
    crate::deployed::mark_pending(drifts, &detection);
    Ok(())
}

/// Why `gitops status` could not tell which environments have changes pending.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PendingError {
    /// Reading what is deployed failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// Comparing it with git failed.
    #[error(transparent)]
    Git(#[from] crate::Error),
}
