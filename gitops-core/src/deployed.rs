//! Reconciling against what is deployed (`--base deployed`): each
//! environment's base is the commit it was last deployed from, read from
//! AWS, so that no failed, cancelled or skipped run ever loses a change.
//!
//! - [`Deployed`] is what AWS says: for each environment declared at head,
//!   its stack's status and deployed commit, and the stacks this repository
//!   manages for environments head no longer declares. It is built by the
//!   pure [`Deployed::from_listings`] from one paginated DescribeStacks per
//!   region and role (and, in pipeline mode, each pipeline's latest
//!   succeeded execution), read by [`crate::deploy::inspect::observe_bases`].
//! - [`classify`] is the pure verdict, given the detection of each distinct
//!   deployed commit against head and, for undeclared environments, their
//!   declaration at their own deployed commit.
//! - [`crate::git::detect_deployed`] joins the two with git: one tree diff
//!   per distinct deployed commit, so 1,000 environments deployed at a
//!   handful of commits cost a handful of diffs.

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::Stack;
use crate::deploy::{BaseDeclaration, TAG_COMMIT, TAG_ENVIRONMENT, TAG_MANAGED_BY};
use crate::detect::{Change, Detection, EnvChange, Reason, Why};
use crate::model::{Environment, Repository};
use crate::text::short_commit;

/// What is deployed for one environment declared at head.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeployedEnv {
    /// The commit it was last deployed from: in pipeline mode the source
    /// revision of its pipeline's latest succeeded execution, else the
    /// `gitops:commit` tag of its stack (the pipeline stack in pipeline
    /// mode). `None` when neither says, or the stack is not this repository's.
    pub commit: Option<String>,
    /// Its stack's status.
    pub status: String,
}

impl DeployedEnv {
    /// An environment deployed from `commit`, its stack in `status`.
    pub fn new(commit: Option<String>, status: impl Into<String>) -> Self {
        Self {
            commit,
            status: status.into(),
        }
    }
}

/// A stack tagged `gitops:managed-by=<id>` whose `gitops:environment` head
/// does not declare.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagedStack {
    /// The stack's name.
    pub name: String,
    /// Its `gitops:environment` tag.
    pub environment: String,
    /// The region it was found in.
    pub region: String,
    /// The role it was read with, if any.
    pub role_arn: Option<String>,
    /// Its `gitops:commit` tag.
    pub commit: Option<String>,
    /// Its status.
    pub status: String,
}

/// The stacks of one region, read with one role (or none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegionStacks {
    /// The region.
    pub region: String,
    /// The role, if any.
    pub role_arn: Option<String>,
    /// Every live stack there.
    pub stacks: Vec<Stack>,
}

impl RegionStacks {
    /// The stacks of `region`, read as `role_arn`.
    pub fn new(region: impl Into<String>, role_arn: Option<String>, stacks: Vec<Stack>) -> Self {
        Self {
            region: region.into(),
            role_arn,
            stacks,
        }
    }
}

/// What AWS says was deployed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deployed {
    /// By name, the environments declared at head that have a stack.
    pub environments: BTreeMap<String, DeployedEnv>,
    /// The stacks this repository manages for environments head does not declare.
    pub undeclared: Vec<ManagedStack>,
}

/// Whether a stack exists for deployment purposes: a stack only reviewed (a
/// change set never executed) or deleted has never been deployed.
fn live(s: &Stack) -> bool {
    !s.is_deleted() && s.status != "REVIEW_IN_PROGRESS"
}

impl Deployed {
    /// Nothing deployed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the deployed state from each region's stacks. `succeeded`:
    /// by pipeline name, the source revision of its latest succeeded
    /// execution (pipeline mode). Only stacks tagged
    /// `gitops:managed-by=<head's id>` give a commit.
    pub fn from_listings(
        head: &Repository,
        listings: &[RegionStacks],
        succeeded: &BTreeMap<String, String>,
    ) -> Self {
        let mut out = Deployed::new();
        let ours = |s: &Stack| head.id.is_some() && s.tags.get(TAG_MANAGED_BY) == head.id.as_ref();
        let find = |region: &str, role: &Option<String>, name: &str| -> Option<&Stack> {
            listings
                .iter()
                .filter(|l| l.region == region && &l.role_arn == role)
                .flat_map(|l| l.stacks.iter())
                .find(|s| s.name == name && live(s))
        };
        for env in &head.environments {
            let key = env.pipeline_stack.as_deref().unwrap_or(&env.stack);
            let Some(stack) = find(&env.region, &env.role_arn, key) else {
                continue;
            };
            let commit = env
                .pipeline
                .as_ref()
                .and_then(|p| succeeded.get(p).cloned())
                .or_else(|| {
                    ours(stack)
                        .then(|| stack.tags.get(TAG_COMMIT).cloned())
                        .flatten()
                });
            out.environments
                .insert(env.name.clone(), DeployedEnv::new(commit, &stack.status));
        }
        // Every stack name head declares, in any region: never undeclared.
        let declared: BTreeSet<&str> = head
            .environments
            .iter()
            .flat_map(|e| std::iter::once(e.stack.as_str()).chain(e.pipeline_stack.as_deref()))
            .collect();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for l in listings {
            for s in &l.stacks {
                let Some(env) = s.tags.get(TAG_ENVIRONMENT) else {
                    continue;
                };
                if !live(s)
                    || !ours(s)
                    || declared.contains(s.name.as_str())
                    || head.environment(env).is_some()
                    || !seen.insert(s.id.as_str())
                {
                    continue;
                }
                out.undeclared.push(ManagedStack {
                    name: s.name.clone(),
                    environment: env.clone(),
                    region: l.region.clone(),
                    role_arn: l.role_arn.clone(),
                    commit: s.tags.get(TAG_COMMIT).cloned(),
                    status: s.status.clone(),
                });
            }
        }
        out.undeclared
            .sort_by(|a, b| (&a.environment, &a.name).cmp(&(&b.environment, &b.name)));
        out
    }

    /// The distinct deployed commits of the environments declared at head:
    /// one tree diff each.
    pub fn commits(&self) -> BTreeSet<&str> {
        self.environments
            .values()
            .filter_map(|e| e.commit.as_deref())
            .collect()
    }

    /// The distinct deployed commits of the undeclared stacks: one model load each.
    pub fn undeclared_commits(&self) -> BTreeSet<&str> {
        self.undeclared
            .iter()
            .filter_map(|s| s.commit.as_deref())
            .collect()
    }
}

/// An environment head does not declare, as read at its stack's deployed
/// commit: its declaration there (for [`crate::deploy::safety`]'s rules) and,
/// when it is declared there, its configuration.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AtCommit {
    /// Its configuration at that commit, when declared there.
    pub environment: Option<Environment>,
    /// How it is declared there: [`BaseDeclaration::Unknown`] when the
    /// commit is not in history (so it counts as protected).
    pub declaration: BaseDeclaration,
}

impl AtCommit {
    /// Nothing is known: counts as protected.
    pub fn unknown(why: impl Into<String>) -> Self {
        Self {
            environment: None,
            declaration: BaseDeclaration::Unknown { why: why.into() },
        }
    }

    /// The environment a deletion is planned with: its configuration at
    /// that commit, or a protected stand-in for `stack` in `region`.
    pub fn environment(&self, name: &str, stack: &str, region: &str) -> Environment {
        self.environment
            .clone()
            .unwrap_or_else(|| Environment::stand_in(name, stack, None, region, None))
    }
}

/// What comparing head with one deployed commit gave.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BaseDetection {
    /// The detection between that commit and head.
    Compared(Detection),
    /// The commit is in history but its repository cannot be compared
    /// (`gitops.yaml` unusable there).
    Unusable(String),
}

/// Whether a deployment retries a stack in this failed state:
/// `*_ROLLBACK_COMPLETE` (a creation or update that failed and was rolled back).
pub fn is_retryable_failure(status: &str) -> bool {
    status.ends_with("ROLLBACK_COMPLETE")
}

/// Whether a stack status is a failed one, listed with the verdict.
pub fn is_failed_state(status: &str) -> bool {
    is_retryable_failure(status) || status.ends_with("_FAILED")
}

/// The verdict of `--base deployed` for every environment, pure:
///
/// - declared at head with no stack: created (reason `not-deployed`);
/// - deployed from a commit in `bases` (a detection between it and head):
///   updated when its inputs changed since, unchanged otherwise;
/// - deployed from an unknown commit, or with none: updated (reason
///   `not-in-history`), and the change set's result decides the no-op;
/// - stack in a retryable failed state: updated (reason `failed-state`);
///   any failed state is listed (`stack_status`);
/// - stacks managed by this repository whose environment head does not
///   declare: deleted, with their declaration at their own commit from
///   `declarations` (by environment name), which the deletion rules of
///   [`crate::deploy::safety`] judge (missing or unknown: protected, so
///   never deleted).
pub fn classify(
    head: &Repository,
    deployed: &Deployed,
    bases: &BTreeMap<String, BaseDetection>,
    declarations: &BTreeMap<String, AtCommit>,
) -> Detection {
    let mut out = Vec::new();
    for env in &head.environments {
        let mut c = EnvChange::new(env.clone(), Change::Unchanged);
        let Some(d) = deployed.environments.get(&env.name) else {
            c.change = Change::Created;
            c.base = Some(None);
            c.reasons = vec![Reason::new(env.file.clone(), Why::NotDeployed)];
            out.push(c);
            continue;
        };
        c.base = Some(d.commit.clone());
        let since = || d.commit.clone();
        match d.commit.as_deref().and_then(|k| bases.get(k)) {
            Some(BaseDetection::Compared(det)) => {
                if let Some(e) = det.environment(&env.name) {
                    if e.change != Change::Unchanged {
                        c.change = Change::Updated;
                        c.reasons = e
                            .reasons
                            .iter()
                            .map(|r| r.clone().with_since(since()))
                            .collect();
                    }
                }
            }
            Some(BaseDetection::Unusable(_)) => {
                c.change = Change::Updated;
                c.reasons =
                    vec![Reason::new(crate::config::CONFIG_FILE, Why::Config).with_since(since())];
            }
            None => {
                c.change = Change::Updated;
                c.reasons =
                    vec![Reason::new(env.file.clone(), Why::NotInHistory).with_since(since())];
            }
        }
        if is_failed_state(&d.status) {
            c.stack_status = Some(d.status.clone());
            if is_retryable_failure(&d.status) {
                c.change = Change::Updated;
                c.reasons
                    .push(Reason::new(env.file.clone(), Why::FailedState).with_since(since()));
            }
        }
        out.push(c);
    }
    let mut by_env: BTreeMap<&str, Vec<&ManagedStack>> = BTreeMap::new();
    for s in &deployed.undeclared {
        by_env.entry(&s.environment).or_default().push(s);
    }
    for (name, stacks) in by_env {
        let first = stacks[0];
        let commit = stacks.iter().find_map(|s| s.commit.clone());
        let at = declarations
            .get(name)
            .cloned()
            .unwrap_or_else(|| AtCommit::unknown("its deployed commit was not read"));
        let env = match &at.environment {
            Some(e) => e.clone(),
            None => stand_in(name, &stacks),
        };
        let unknown = !matches!(at.declaration, BaseDeclaration::Declared { .. });
        let mut c = EnvChange::new(env, Change::Deleted);
        c.base = Some(commit.clone());
        c.declaration = Some(at.declaration);
        let path = if c.environment.file.is_empty() {
            first.name.clone()
        } else {
            c.environment.file.clone()
        };
        c.reasons = vec![Reason::new(path.clone(), Why::NotDeclared).with_since(commit.clone())];
        if unknown && at.environment.is_none() {
            c.reasons
                .push(Reason::new(path, Why::NotInHistory).with_since(commit));
        }
        if let Some(s) = stacks.iter().find(|s| is_failed_state(&s.status)) {
            c.stack_status = Some(s.status.clone());
        }
        out.push(c);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Detection::from_changes(out)
}

/// What one reason means, in words: `environments/qa/stage.yaml changed`,
/// `deployed commit 1a2b3c4d5e6f not in history`, ...
pub fn reason_words(r: &Reason, e: &EnvChange) -> String {
    match r.why {
        Why::NotDeployed => "no stack yet".into(),
        Why::NotInHistory => match &r.since {
            Some(c) => format!("deployed commit {} not in history", short_commit(c)),
            None => "its stack names no deployed commit".into(),
        },
        Why::FailedState => format!(
            "stack is {}: retried",
            e.stack_status.as_deref().unwrap_or("failed")
        ),
        Why::NotDeclared => format!("not declared at head: stack `{}` goes", e.stack),
        _ => format!("{} changed", r.path),
    }
}

/// One line of `--base deployed` text output:
/// `qa: deployed 1a2b3c4d5e6f, head 5d6e7f8a9b0c: environments/qa/stage.yaml changed`.
pub fn describe(e: &EnvChange, head: &str) -> String {
    let deployed = match &e.base {
        Some(Some(c)) => format!("deployed {}", short_commit(c)),
        Some(None) if e.change == Change::Created => "not deployed".into(),
        _ => "deployed commit unknown".into(),
    };
    let state = match &e.stack_status {
        Some(s) => format!(" ({s})"),
        None => String::new(),
    };
    let mut what: Vec<String> = e
        .reasons
        .iter()
        .take(5)
        .map(|r| reason_words(r, e))
        .collect();
    if e.reasons.len() > 5 {
        what.push(format!("+{} more", e.reasons.len() - 5));
    }
    if what.is_empty() {
        what.push("unchanged".into());
        if let Some(s) = e
            .stack_status
            .as_deref()
            .filter(|s| !is_retryable_failure(s))
        {
            what.push(format!(
                "stack is {s}: it needs a person (see its events) before a deployment can retry it"
            ));
        }
    }
    format!(
        "{}: {deployed}{state}, head {}: {}",
        e.name,
        short_commit(head),
        what.join(", ")
    )
}

/// The `--base deployed` lines of `detect`'s text output: one
/// [`describe`] line per environment that is affected or in a failed state,
/// or a line saying every environment is deployed at head's inputs.
pub fn render_text(d: &Detection, head: &str) -> String {
    let mut out = String::new();
    for e in d
        .environments
        .iter()
        .filter(|e| e.change != Change::Unchanged || e.stack_status.is_some())
    {
        out.push_str(&describe(e, head));
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str("every environment is deployed at its inputs' latest state\n");
    }
    out
}

/// Sets each environment's `pending` (`gitops status`): whether head has
/// changes not yet deployed, that is, whether `--base deployed` would act
/// on it (`detection`, its verdict against the deployed commits, is created,
/// updated or deleted). An environment the detection does not list stays
/// unknown.
pub fn mark_pending(drifts: &mut [crate::drift::EnvDrift], detection: &Detection) {
    for x in drifts.iter_mut() {
        x.status.pending = detection
            .environment(&x.status.name)
            .map(|e| e.change != Change::Unchanged);
    }
}

/// An environment whose declaration cannot be read, standing in for its
/// stacks: protected, so that it is never deleted.
fn stand_in(name: &str, stacks: &[&ManagedStack]) -> Environment {
    Environment::stand_in(
        name,
        &stacks[0].name,
        stacks.get(1).map(|s| s.name.clone()),
        &stacks[0].region,
        stacks[0].role_arn.clone(),
    )
}

#[cfg(test)]
mod tests;
