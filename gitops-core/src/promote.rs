//! Promotion, rollback and the history of promoted values, computed as data.
//!
//! A promotion copies the values of `promotion.keys` (such as
//! `parameters.AppVersion`) from one environment's resolved configuration
//! into the next environment's file, edited in place by
//! `edit::set_values`. [`plan_promotion`] checks the order given by
//! `promotion.order` and returns a [`Promotion`]: the changes, the new file
//! text, its unified diff, a commit message and a pull request's title and
//! body. [`plan_rollback`] does the same to restore the values an
//! environment had at an earlier commit, and [`default_rollback_revision`]
//! picks that commit. [`key_history`] turns the values at each commit into
//! the list of changes. [`verify_upstream`] is the gate that refuses to
//! promote what is not running successfully upstream.
//!
//! Nothing here reads files, walks git or calls AWS: see
//! [`crate::history`] for the git side.
//!
//! ```
//! use gitops_core::promote::{plan_promotion, Target};
//! use gitops_core::{Memory, Repository};
//!
//! let files = Memory::new("demo")
//!     .with_file("gitops.yaml", "version: 1\nstack: { template: t.yaml }\npromotion: { order: [staging, prod] }\n")
//!     .with_file("environments/staging/environment.yaml", "parameters: { AppVersion: \"1.4.2\" }\n")
//!     .with_file("environments/prod/environment.yaml", "parameters:\n  AppVersion: \"1.4.1\"  # live\n");
//! let repo = Repository::load(&files).unwrap();
//! let prod = "parameters:\n  AppVersion: \"1.4.1\"  # live\n";
//! let plan = plan_promotion(&repo, "staging", &Target::Next, false, prod).unwrap();
//! assert_eq!(plan.to, "prod");
//! assert_eq!(plan.new_text, "parameters:\n  AppVersion: \"1.4.2\"  # live\n");
//! assert_eq!(plan.changes[0].old.as_deref(), Some("1.4.1"));
//! ```

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use crate::edit::{set_values, EditError};
use crate::model::{Environment, PromotedKey, Repository};
use crate::problem::did_you_mean;

mod report;

pub use report::{
    branch_safe, commit_args, pr_base, promotion_branch, rollback_branch, Applied, Finishing, Gate,
    HistoryReport, PrAction, PrOutcome, PromotionReport, RollbackReport,
};

/// The values of the promoted keys in one environment (absent keys are left out).
pub type Values = BTreeMap<PromotedKey, String>;

/// Why a promotion or rollback cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PromoteError {
    /// `promotion.order` is empty.
    #[error("`promotion.order` in gitops.yaml is empty; list the environments from first to last, such as `order: [development, staging, prod]`")]
    NoOrder,
    /// `promotion.keys` is empty.
    #[error("`promotion.keys` in gitops.yaml is empty, so there is nothing to promote; list keys such as `keys: [parameters.AppVersion]`")]
    NoKeys,
    /// An environment that does not exist.
    #[error("there is no environment `{name}`{hint} (`gitops envs` lists them)")]
    UnknownEnvironment {
        /// The name as given.
        name: String,
        /// A "did you mean" suggestion, or empty.
        hint: String,
    },
    /// `promotion.order` names an environment that is not declared (a
    /// warning for `validate`, an error here).
    #[error("`promotion.order` names `{0}`, which is not an environment (no folder declares it); remove it from `promotion.order` in gitops.yaml, or restore its folder")]
    OrderNamesUndeclared(String),
    /// Promoting an environment to itself.
    #[error("cannot promote `{0}` to itself; pick the environment after it in `promotion.order`")]
    SameEnvironment(String),
    /// `--to next` from an environment that is not in `promotion.order`.
    #[error("`{0}` is not in `promotion.order`, so it has no next environment; name the target with --to ENV and pass --force")]
    NotInOrder(String),
    /// `--to next` from the last environment.
    #[error("`{0}` is the last environment in `promotion.order`; there is nothing after it to promote to")]
    LastInOrder(String),
    /// A target other than the next environment, without `force`.
    #[error("cannot promote `{from}` to `{to}`: {}; promote one step at a time, or pass --force to skip ahead", match .next { Some(n) => format!("the next environment after `{from}` in `promotion.order` is `{n}`"), None => format!("`{from}` has no next environment in `promotion.order`") })]
    OutOfOrder {
        /// The source environment.
        from: String,
        /// The requested target.
        to: String,
        /// The environment `promotion.order` puts next, if any.
        next: Option<String>,
    },
    /// The source environment has no value for a promoted key.
    #[error("`{env}` has no value for `{key}`, so it cannot be promoted; set it in {env}'s environment file (or in `defaults`), or remove it from `promotion.keys`")]
    MissingValue {
        /// The environment.
        env: String,
        /// The key.
        key: String,
    },
    /// No earlier commit has different values (rollback).
    #[error("no earlier commit has different values of {keys} in `{env}`, so there is nothing to roll back to; name a revision with --to REV")]
    NoEarlierRevision {
        /// The environment.
        env: String,
        /// The promoted keys, listed.
        keys: String,
    },
    /// A key with no value at the rollback revision.
    #[error("`{key}` had no value in `{env}` at {revision}; rollback restores values but does not remove keys, so remove it by hand or pick a later revision")]
    NotSetAt {
        /// The environment.
        env: String,
        /// The key.
        key: String,
        /// The revision.
        revision: String,
    },
    /// The environment file could not be edited.
    #[error("{file}: {source}")]
    Edit {
        /// The environment file.
        file: String,
        /// Why.
        source: EditError,
    },
    /// The environment file changed between planning and writing.
    #[error("{0} changed while the edit was planned; run the command again")]
    ChangedMeanwhile(String),
}

/// Where to promote to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// The environment after the source in `promotion.order`.
    Next,
    /// A named environment.
    Env(String),
}

impl Target {
    /// `next` is [`Target::Next`]; anything else names an environment.
    pub fn parse(s: &str) -> Self {
        if s == "next" {
            Self::Next
        } else {
            Self::Env(s.to_string())
        }
    }
}

/// One promoted key whose value changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyChange {
    /// The key, such as `parameters.AppVersion`.
    #[serde(serialize_with = "as_display")]
    pub key: PromotedKey,
    /// Its value now (resolved: from the file or `defaults`), if any.
    pub old: Option<String>,
    /// Its new value.
    pub new: String,
}

/// The edit of one environment file: shared by promotions and rollbacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEdit {
    /// The environment whose file changes.
    pub environment: String,
    /// Repository-relative path of its file.
    pub file: String,
    /// Every promoted key.
    #[serde(serialize_with = "keys_as_display")]
    pub keys: Vec<PromotedKey>,
    /// The keys whose value changes (empty: nothing to do).
    pub changes: Vec<KeyChange>,
    /// The file as it is.
    #[serde(skip)]
    pub old_text: String,
    /// The file as it will be.
    #[serde(skip)]
    pub new_text: String,
    /// Unified diff from `old_text` to `new_text` (empty when they are equal).
    pub diff: String,
}

/// A planned promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Promotion {
    /// The source environment.
    pub from: String,
    /// The target environment.
    pub to: String,
    /// Whether `--force` allowed a target other than the next one.
    pub forced: bool,
    /// The edit of the target's file.
    #[serde(flatten)]
    pub edit: FileEdit,
    /// A commit message for the edit.
    pub commit_message: String,
    /// A pull request title.
    pub pr_title: String,
    /// A pull request body (Markdown).
    pub pr_body: String,
}

impl std::ops::Deref for Promotion {
    type Target = FileEdit;
    fn deref(&self) -> &FileEdit {
        &self.edit
    }
}

/// A planned rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Rollback {
    /// The revision whose values are restored (as given, or the default's commit id).
    pub to_revision: String,
    /// The edit of the environment's file.
    #[serde(flatten)]
    pub edit: FileEdit,
    /// A commit message for the edit.
    pub commit_message: String,
    /// A pull request title.
    pub pr_title: String,
    /// A pull request body (Markdown).
    pub pr_body: String,
}

impl std::ops::Deref for Rollback {
    type Target = FileEdit;
    fn deref(&self) -> &FileEdit {
        &self.edit
    }
}

fn as_display<S: Serializer>(key: &PromotedKey, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(key)
}

fn keys_as_display<S: Serializer>(keys: &[PromotedKey], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(keys.iter().map(ToString::to_string))
}

/// The environment after `env` in `order`, if any.
pub fn next_after<'a>(order: &'a [String], env: &str) -> Option<&'a str> {
    let i = order.iter().position(|e| e == env)?;
    order.get(i + 1).map(String::as_str)
}

/// The values of `keys` in `env`'s resolved configuration.
pub fn values_of(env: &Environment, keys: &[PromotedKey]) -> Values {
    keys.iter()
        .filter_map(|k| env.value(k).map(|v| (k.clone(), v.to_string())))
        .collect()
}

fn environment<'a>(repo: &'a Repository, name: &str) -> Result<&'a Environment, PromoteError> {
    repo.environment(name).ok_or_else(|| {
        if repo.config.promotion.order.iter().any(|e| e == name) {
            return PromoteError::OrderNamesUndeclared(name.to_string());
        }
        PromoteError::UnknownEnvironment {
            name: name.to_string(),
            hint: did_you_mean(name, repo.environments.iter().map(|e| e.name.as_str())),
        }
    })
}

fn keys_of(repo: &Repository) -> Result<Vec<PromotedKey>, PromoteError> {
    let keys = repo.promoted_keys();
    if keys.is_empty() {
        return Err(PromoteError::NoKeys);
    }
    Ok(keys)
}

/// The name of the environment `to` means when promoting from `from`: the
/// next one in `promotion.order` for [`Target::Next`]. Checks that both
/// exist and differ, but not the order (see [`plan_promotion`]).
pub fn resolve_target(repo: &Repository, from: &str, to: &Target) -> Result<String, PromoteError> {
    let order = &repo.config.promotion.order;
    if order.is_empty() {
        return Err(PromoteError::NoOrder);
    }
    environment(repo, from)?;
    let name = match to {
        Target::Next => {
            if !order.iter().any(|e| e == from) {
                return Err(PromoteError::NotInOrder(from.to_string()));
            }
            next_after(order, from)
                .ok_or_else(|| PromoteError::LastInOrder(from.to_string()))?
                .to_string()
        }
        Target::Env(name) => name.clone(),
    };
    if name == from {
        return Err(PromoteError::SameEnvironment(from.to_string()));
    }
    environment(repo, &name)?;
    Ok(name)
}

/// Plans promoting `from` to `to`, where `to_text` is the target's
/// environment file as it is now.
///
/// Refuses a target other than the next one in `promotion.order` unless
/// `force` is set. A plan with no [`FileEdit::changes`] means the target
/// already has the source's values.
pub fn plan_promotion(
    repo: &Repository,
    from: &str,
    to: &Target,
    force: bool,
    to_text: &str,
) -> Result<Promotion, PromoteError> {
    let keys = keys_of(repo)?;
    let to_name = resolve_target(repo, from, to)?;
    let source = environment(repo, from)?;
    let next = next_after(&repo.config.promotion.order, from);
    let target = environment(repo, &to_name)?;
    let in_order = next == Some(to_name.as_str());
    if !in_order && !force {
        return Err(PromoteError::OutOfOrder {
            from: from.to_string(),
            to: to_name,
            next: next.map(str::to_string),
        });
    }
    let mut wanted = Vec::new();
    for key in &keys {
        let value = source
            .value(key)
            .ok_or_else(|| PromoteError::MissingValue {
                env: from.to_string(),
                key: key.to_string(),
            })?;
        wanted.push((key.clone(), value.to_string()));
    }
    let edit = file_edit(target, keys, &wanted, to_text)?;
    let forced = !in_order;
    let (commit_message, pr_title, pr_body) = promotion_texts(from, &to_name, forced, &edit);
    Ok(Promotion {
        from: from.to_string(),
        to: to_name,
        forced,
        edit,
        commit_message,
        pr_title,
        pr_body,
    })
}

/// Plans restoring `env`'s promoted keys to `values`, the values they had
/// at `revision` (see [`default_rollback_revision`]); `text` is the
/// environment file as it is now.
pub fn plan_rollback(
    repo: &Repository,
    env: &str,
    text: &str,
    revision: &str,
    values: &Values,
) -> Result<Rollback, PromoteError> {
    let keys = keys_of(repo)?;
    let target = environment(repo, env)?;
    let mut wanted = Vec::new();
    for key in &keys {
        let value = values.get(key).ok_or_else(|| PromoteError::NotSetAt {
            env: env.to_string(),
            key: key.to_string(),
            revision: revision.to_string(),
        })?;
        wanted.push((key.clone(), value.clone()));
    }
    let edit = file_edit(target, keys, &wanted, text)?;
    let short = short_rev(revision);
    let summary = summary(&edit.changes);
    let commit_message = format!(
        "rollback {env} to {short}: {summary}\n\nRestores the promoted values {env} had at {revision}.\n\n{}",
        change_lines(&edit.changes)
    );
    let pr_title = format!("Roll back {env} to {short}: {summary}");
    let pr_body = format!(
        "Restores the promoted values of **{env}** to those at `{revision}`.\n\n{}\n{}\nGenerated by `gitops rollback {env}`.\n",
        change_table(&edit.changes, env, &format!("at {short}")),
        diff_block(&edit.diff)
    );
    Ok(Rollback {
        to_revision: revision.to_string(),
        edit,
        commit_message,
        pr_title,
        pr_body,
    })
}

fn file_edit(
    target: &Environment,
    keys: Vec<PromotedKey>,
    wanted: &[(PromotedKey, String)],
    text: &str,
) -> Result<FileEdit, PromoteError> {
    let changes: Vec<KeyChange> = wanted
        .iter()
        .filter(|(k, v)| target.value(k) != Some(v.as_str()))
        .map(|(k, v)| KeyChange {
            key: k.clone(),
            old: target.value(k).map(str::to_string),
            new: v.clone(),
        })
        .collect();
    let edits: Vec<(PromotedKey, String)> = changes
        .iter()
        .map(|c| (c.key.clone(), c.new.clone()))
        .collect();
    let new_text = set_values(text, &edits).map_err(|source| PromoteError::Edit {
        file: target.file.clone(),
        source,
    })?;
    let diff = unified_diff(&target.file, text, &new_text);
    Ok(FileEdit {
        environment: target.name.clone(),
        file: target.file.clone(),
        keys,
        changes,
        old_text: text.to_string(),
        new_text,
        diff,
    })
}

/// A git-style unified diff of `file` from `old` to `new` (empty when equal).
pub fn unified_diff(file: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{file}"), &format!("b/{file}"))
        .to_string()
}

fn short_rev(rev: &str) -> &str {
    crate::text::short_rev(rev)
}

fn short_key(key: &PromotedKey) -> &str {
    match key {
        PromotedKey::Parameter(n) | PromotedKey::Tag(n) => n,
    }
}

fn summary(changes: &[KeyChange]) -> String {
    if changes.is_empty() {
        return "no changes".into();
    }
    changes
        .iter()
        .map(|c| format!("{} {}", short_key(&c.key), c.new))
        .collect::<Vec<_>>()
        .join(", ")
}

fn change_lines(changes: &[KeyChange]) -> String {
    changes
        .iter()
        .map(|c| {
            format!(
                "- {}: {} → {}\n",
                c.key,
                c.old.as_deref().unwrap_or("(unset)"),
                c.new
            )
        })
        .collect()
}

fn change_table(changes: &[KeyChange], env: &str, new_header: &str) -> String {
    use crate::markdown::code;
    let mut out = format!("| key | {env} now | {new_header} |\n|---|---|---|\n");
    for c in changes {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            code(&c.key.to_string()),
            c.old
                .as_deref()
                .map(code)
                .unwrap_or_else(|| "(unset)".into()),
            code(&c.new)
        ));
    }
    out
}

fn diff_block(diff: &str) -> String {
    if diff.is_empty() {
        return String::new();
    }
    let fence = if diff.contains("```") { "~~~~" } else { "```" };
    format!("<details><summary>Diff</summary>\n\n{fence}diff\n{diff}{fence}\n\n</details>\n\n")
}

fn promotion_texts(
    from: &str,
    to: &str,
    forced: bool,
    edit: &FileEdit,
) -> (String, String, String) {
    let summary = summary(&edit.changes);
    let why = format!("`{to}` is not the next environment after `{from}` in promotion.order.");
    let (forced_commit, forced_pr, force_flag) = if forced {
        (
            format!("\nForced: {why}\n"),
            format!("> **Forced:** {why}\n\n"),
            " --force",
        )
    } else {
        (String::new(), String::new(), "")
    };
    let commit_message = format!(
        "promote {from} to {to}: {summary}\n\nCopies the promoted values of {from} into {to}.\n\n{}{forced_commit}",
        change_lines(&edit.changes),
    );
    let pr_title = format!("Promote {from} to {to}: {summary}");
    let pr_body = format!(
        "Promotes the values of `promotion.keys` from **{from}** to **{to}**.\n\n{}\n{forced_pr}{}Generated by `gitops promote --from {from} --to {to}{force_flag}`.\n",
        change_table(&edit.changes, to, &format!("from {from}")),
        diff_block(&edit.diff),
    );
    (commit_message, pr_title, pr_body)
}

/// The state of an upstream stack, as plain data, for [`verify_upstream`].
#[derive(Debug, Clone, Copy)]
pub struct DeployedStack<'a> {
    /// The stack's name.
    pub name: &'a str,
    /// Its status, such as `UPDATE_COMPLETE`.
    pub status: &'a str,
    /// Its deployed parameter values.
    pub parameters: &'a BTreeMap<String, String>,
    /// Its tags.
    pub tags: &'a BTreeMap<String, String>,
}

/// Why the promotion gate could not read the source environment's stack.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot check stack `{stack}` of `{environment}`: {error}; fix the credentials, or pass --skip-verify to promote without checking")]
#[non_exhaustive]
pub struct UpstreamError {
    /// The stack.
    pub stack: String,
    /// The source environment.
    pub environment: String,
    /// What AWS said.
    pub error: crate::aws::AwsError,
}

/// The promotion gate against AWS: reads `source`'s stack through
/// `factory` and applies [`verify_upstream`] to the values of `keys`. The
/// error says how to go on without the check.
pub async fn check_upstream(
    factory: &dyn crate::aws::ClientFactory,
    source: &Environment,
    keys: &[PromotedKey],
) -> Result<Gate, UpstreamError> {
    let values: Vec<(PromotedKey, String)> = values_of(source, keys).into_iter().collect();
    let clients = factory.clients(&source.region, source.role_arn.as_deref());
    let stack = match clients.await {
        Ok(c) => c.cloudformation.describe_stack(&source.stack).await,
        Err(e) => Err(e),
    };
    let stack = stack.map_err(|error| UpstreamError {
        stack: source.stack.clone(),
        environment: source.name.clone(),
        error,
    })?;
    let deployed = stack.as_ref().map(|s| DeployedStack {
        name: &s.name,
        status: &s.status,
        parameters: &s.parameters,
        tags: &s.tags,
    });
    Ok(verify_upstream(source, deployed, &values))
}

/// The verification gate: `env`'s stack (`stack`, `None` when it does not
/// exist) must be in a `*_COMPLETE` state other than a rollback and carry
/// `values` as its deployed parameters or tags. [`Gate::Failed`] says what
/// is wrong and the next step.
pub fn verify_upstream(
    env: &Environment,
    stack: Option<DeployedStack<'_>>,
    values: &[(PromotedKey, String)],
) -> Gate {
    let Some(stack) = stack else {
        return Gate::Failed(format!(
            "stack `{}` of `{}` does not exist in {}; deploy {} first (or pass --skip-verify)",
            env.stack, env.name, env.region, env.name
        ));
    };
    let ok = stack.status.ends_with("_COMPLETE")
        && !stack.status.contains("ROLLBACK")
        && stack.status != "DELETE_COMPLETE";
    if !ok {
        return Gate::Failed(format!(
            "stack `{}` of `{}` is {}, not successfully deployed; wait for it to finish or fix it before promoting what it runs (or pass --skip-verify)",
            stack.name, env.name, stack.status
        ));
    }
    let mut wrong = Vec::new();
    for (key, want) in values {
        let (what, have) = match key {
            PromotedKey::Parameter(n) => ("parameter", stack.parameters.get(n)),
            PromotedKey::Tag(n) => ("tag", stack.tags.get(n)),
        };
        match have {
            Some(h) if h == want => {}
            Some(h) => wrong.push(format!(
                "{what} `{}` is `{h}`, not `{want}`",
                short_key(key)
            )),
            None => wrong.push(format!(
                "{what} `{}` is not set (expected `{want}`)",
                short_key(key)
            )),
        }
    }
    if wrong.is_empty() {
        return Gate::Passed(format!(
            "stack `{}` is {} and runs these values",
            env.stack, stack.status
        ));
    }
    Gate::Failed(format!(
        "stack `{}` of `{}` is not running what would be promoted: {}; deploy {} first, then promote (or pass --skip-verify)",
        stack.name,
        env.name,
        wrong.join("; "),
        env.name
    ))
}

/// The values of an environment at one commit, newest first in a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The commit id.
    pub commit: String,
    /// The promoted keys' values there.
    pub values: Values,
}

/// The default rollback revision: the most recent snapshot (`history` is
/// newest first) whose values differ from `current`.
pub fn default_rollback_revision<'a>(
    current: &Values,
    history: &'a [Snapshot],
) -> Option<&'a Snapshot> {
    history.iter().find(|s| &s.values != current)
}

/// Who made a commit, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitInfo {
    /// The commit id.
    pub commit: String,
    /// The author date, ISO 8601 (`2024-01-31T12:00:00+01:00`).
    pub date: String,
    /// The author's name.
    pub author: String,
    /// The first line of the message.
    pub summary: String,
}

/// One commit of a history, with the environment's values there and at
/// each parent (`None`: the environment did not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitState {
    /// The commit.
    pub commit: CommitInfo,
    /// The values at the commit.
    pub values: Option<Values>,
    /// The values at each parent, in parent order.
    pub parents: Vec<Option<Values>>,
}

/// One change of one promoted key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// The commit that made it.
    #[serde(flatten)]
    pub commit: CommitInfo,
    /// The key.
    #[serde(serialize_with = "as_display")]
    pub key: PromotedKey,
    /// The value before (`None`: unset).
    pub old: Option<String>,
    /// The value after (`None`: unset).
    pub new: Option<String>,
}

/// Every change of `keys` in `states` (in the order given, usually newest
/// first). A commit changes a key when its value differs from the first
/// parent's; a merge only when it differs from every parent's (a change
/// made on a merged branch is listed at the commit that made it). Commits
/// where the environment does not exist are skipped.
pub fn key_history(keys: &[PromotedKey], states: &[CommitState]) -> Vec<HistoryEntry> {
    let empty = Values::new();
    let mut out = Vec::new();
    for state in states {
        let Some(values) = &state.values else {
            continue;
        };
        for key in keys {
            let new = values.get(key);
            let parent_values: Vec<Option<&String>> = if state.parents.is_empty() {
                vec![None]
            } else {
                state
                    .parents
                    .iter()
                    .map(|p| p.as_ref().unwrap_or(&empty).get(key))
                    .collect()
            };
            let changed = if parent_values.len() > 1 {
                parent_values.iter().all(|p| *p != new)
            } else {
                parent_values[0] != new
            };
            if changed {
                out.push(HistoryEntry {
                    commit: state.commit.clone(),
                    key: key.clone(),
                    old: parent_values[0].cloned(),
                    new: new.cloned(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use expect_test::expect;

    use super::*;
    use crate::source::Memory;

    const PROD: &str = "# Production.\nparameters:\n  AppVersion: \"1.4.1\"  # promoted\n  LogLevel: INFO\ntags: { team: payments }\n";

    fn repo(order: &str, keys: &str) -> Repository {
        let files = Memory::new("t")
            .with_file(
                "gitops.yaml",
                format!("version: 1\nstack: {{ template: t.yaml }}\ndefaults: {{ tags: {{ release: r1 }} }}\npromotion: {{ order: {order}, keys: {keys} }}\n"),
            )
            .with_file(
                "environments/development/environment.yaml",
                "parameters: { AppVersion: \"1.5.0\" }\ntags: { release: r3 }\n",
            )
            .with_file(
                "environments/staging/environment.yaml",
                "parameters: { AppVersion: \"1.4.2\" }\ntags: { release: r2 }\n",
            )
            .with_file("environments/prod/environment.yaml", PROD);
        Repository::load(&files).unwrap()
    }

    fn default_repo() -> Repository {
        repo(
            "[development, staging, prod]",
            "[parameters.AppVersion, tags.release]",
        )
    }

    #[test]
    fn next_environment() {
        let order: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert_eq!(next_after(&order, "a"), Some("b"));
        assert_eq!(next_after(&order, "c"), None);
        assert_eq!(next_after(&order, "x"), None);
        assert_eq!(Target::parse("next"), Target::Next);
        assert_eq!(Target::parse("prod"), Target::Env("prod".into()));
    }

    #[test]
    fn an_order_naming_a_removed_environment_is_an_error_here() {
        let r = repo(
            "[development, qa, staging, prod]",
            "[parameters.AppVersion]",
        );
        let err = plan_promotion(&r, "development", &Target::Next, false, PROD).unwrap_err();
        assert_eq!(err, PromoteError::OrderNamesUndeclared("qa".into()));
        assert!(
            err.to_string().contains("`promotion.order` names `qa`"),
            "{err}"
        );
        let err = plan_promotion(&r, "qa", &Target::Next, false, PROD).unwrap_err();
        assert_eq!(err, PromoteError::OrderNamesUndeclared("qa".into()));
        let err = plan_rollback(&r, "qa", PROD, "HEAD~1", &Values::new()).unwrap_err();
        assert_eq!(err, PromoteError::OrderNamesUndeclared("qa".into()));
        // The environments around it still promote.
        let plan = plan_promotion(&r, "staging", &Target::Next, false, PROD).unwrap();
        assert_eq!(plan.to, "prod");
    }

    #[test]
    fn promotes_to_the_next_environment() {
        let plan = plan_promotion(&default_repo(), "staging", &Target::Next, false, PROD).unwrap();
        assert_eq!(
            (plan.from.as_str(), plan.to.as_str(), plan.forced),
            ("staging", "prod", false)
        );
        expect![[r#"
            --- a/environments/prod/environment.yaml
            +++ b/environments/prod/environment.yaml
            @@ -1,5 +1,5 @@
             # Production.
             parameters:
            -  AppVersion: "1.4.1"  # promoted
            +  AppVersion: "1.4.2"  # promoted
               LogLevel: INFO
            -tags: { team: payments }
            +tags: { team: payments, release: r2 }
        "#]]
        .assert_eq(&plan.diff);
        expect![[r#"
            promote staging to prod: AppVersion 1.4.2, release r2

            Copies the promoted values of staging into prod.

            - parameters.AppVersion: 1.4.1 → 1.4.2
            - tags.release: r1 → r2
        "#]]
        .assert_eq(&plan.commit_message);
        expect!["Promote staging to prod: AppVersion 1.4.2, release r2"].assert_eq(&plan.pr_title);
        expect![[r#"
            Promotes the values of `promotion.keys` from **staging** to **prod**.

            | key | prod now | from staging |
            |---|---|---|
            | `parameters.AppVersion` | `1.4.1` | `1.4.2` |
            | `tags.release` | `r1` | `r2` |

            <details><summary>Diff</summary>

            ```diff
            --- a/environments/prod/environment.yaml
            +++ b/environments/prod/environment.yaml
            @@ -1,5 +1,5 @@
             # Production.
             parameters:
            -  AppVersion: "1.4.1"  # promoted
            +  AppVersion: "1.4.2"  # promoted
               LogLevel: INFO
            -tags: { team: payments }
            +tags: { team: payments, release: r2 }
            ```

            </details>

            Generated by `gitops promote --from staging --to prod`.
        "#]]
        .assert_eq(&plan.pr_body);
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(
            json["keys"],
            serde_json::json!(["parameters.AppVersion", "tags.release"])
        );
        assert_eq!(
            json["changes"][1],
            serde_json::json!({"key": "tags.release", "old": "r1", "new": "r2"})
        );
        assert_eq!(json["environment"], "prod");
    }

    #[test]
    fn order_is_enforced_unless_forced() {
        let r = default_repo();
        let err = plan_promotion(&r, "development", &Target::Env("prod".into()), false, PROD)
            .unwrap_err();
        expect!["cannot promote `development` to `prod`: the next environment after `development` in `promotion.order` is `staging`; promote one step at a time, or pass --force to skip ahead"]
            .assert_eq(&err.to_string());
        let plan =
            plan_promotion(&r, "development", &Target::Env("prod".into()), true, PROD).unwrap();
        assert!(plan.forced);
        assert!(plan
            .commit_message
            .contains("Forced: `prod` is not the next environment"));
        assert!(
            plan.pr_body
                .contains("> **Forced:** `prod` is not the next"),
            "{}",
            plan.pr_body
        );
        assert!(plan.pr_body.contains("--force`"));
        // --force on the next environment is not recorded as forced.
        let plan = plan_promotion(&r, "staging", &Target::Env("prod".into()), true, PROD).unwrap();
        assert!(!plan.forced);

        let err = |from: &str, to: Target| {
            plan_promotion(&r, from, &to, false, PROD)
                .unwrap_err()
                .to_string()
        };
        expect!["cannot promote `staging` to itself; pick the environment after it in `promotion.order`"]
            .assert_eq(&err("staging", Target::Env("staging".into())));
        expect!["`prod` is the last environment in `promotion.order`; there is nothing after it to promote to"]
            .assert_eq(&err("prod", Target::Next));
        expect![
            "there is no environment `stagin`; did you mean `staging`? (`gitops envs` lists them)"
        ]
        .assert_eq(&err("stagin", Target::Next));
        expect!["there is no environment `prd`; did you mean `prod`? (`gitops envs` lists them)"]
            .assert_eq(&err("staging", Target::Env("prd".into())));
    }

    #[test]
    fn empty_order_or_keys_and_missing_values() {
        let r = repo("[]", "[parameters.AppVersion]");
        assert_eq!(
            plan_promotion(&r, "staging", &Target::Next, false, PROD).unwrap_err(),
            PromoteError::NoOrder
        );
        let r = repo("[staging, prod]", "[]");
        assert_eq!(
            plan_promotion(&r, "staging", &Target::Next, false, PROD).unwrap_err(),
            PromoteError::NoKeys
        );
        let r = repo("[development, staging, prod]", "[parameters.Missing]");
        expect!["`staging` has no value for `parameters.Missing`, so it cannot be promoted; set it in staging's environment file (or in `defaults`), or remove it from `promotion.keys`"]
            .assert_eq(&plan_promotion(&r, "staging", &Target::Next, false, PROD).unwrap_err().to_string());
        let r = repo("[development, prod]", "[parameters.AppVersion]");
        assert_eq!(
            plan_promotion(&r, "staging", &Target::Next, false, PROD).unwrap_err(),
            PromoteError::NotInOrder("staging".into())
        );
    }

    #[test]
    fn nothing_to_promote_gives_an_empty_plan() {
        let files = Memory::new("t")
            .with_file(
                "gitops.yaml",
                "version: 1\nstack: { template: t.yaml }\npromotion: { order: [a, b] }\n",
            )
            .with_file(
                "environments/a/environment.yaml",
                "parameters: { AppVersion: \"1\" }\n",
            )
            .with_file(
                "environments/b/environment.yaml",
                "parameters: { AppVersion: '1' }\n",
            );
        let r = Repository::load(&files).unwrap();
        let plan = plan_promotion(
            &r,
            "a",
            &Target::Next,
            false,
            "parameters: { AppVersion: '1' }\n",
        )
        .unwrap();
        assert!(plan.changes.is_empty());
        assert_eq!(plan.diff, "");
        assert_eq!(plan.new_text, plan.old_text);
        expect!["Promote a to b: no changes"].assert_eq(&plan.pr_title);
    }

    fn stack<'a>(
        status: &'a str,
        parameters: &'a BTreeMap<String, String>,
        tags: &'a BTreeMap<String, String>,
    ) -> DeployedStack<'a> {
        DeployedStack {
            name: "staging-app",
            status,
            parameters,
            tags,
        }
    }

    #[test]
    fn the_gate() {
        let r = default_repo();
        let staging = r.environment("staging").unwrap();
        let values = vec![
            (
                PromotedKey::Parameter("AppVersion".into()),
                "1.4.2".to_string(),
            ),
            (PromotedKey::Tag("release".into()), "r2".to_string()),
        ];
        let params: BTreeMap<String, String> =
            [("AppVersion".to_string(), "1.4.2".to_string())].into();
        let tags: BTreeMap<String, String> = [("release".to_string(), "r2".to_string())].into();
        assert_eq!(
            verify_upstream(
                staging,
                Some(stack("UPDATE_COMPLETE", &params, &tags)),
                &values
            )
            .verified(),
            Some(true)
        );
        assert_eq!(
            verify_upstream(
                staging,
                Some(stack("CREATE_COMPLETE", &params, &tags)),
                &values
            )
            .verified(),
            Some(true)
        );
        let no = |s: Option<DeployedStack<'_>>| match verify_upstream(staging, s, &values) {
            Gate::Failed(why) => why,
            other => panic!("{other:?}"),
        };
        expect!["stack `staging-app` of `staging` does not exist in us-east-1; deploy staging first (or pass --skip-verify)"]
            .assert_eq(&no(None));
        for status in [
            "UPDATE_ROLLBACK_COMPLETE",
            "ROLLBACK_COMPLETE",
            "UPDATE_IN_PROGRESS",
            "CREATE_FAILED",
            "DELETE_COMPLETE",
        ] {
            assert!(no(Some(stack(status, &params, &tags)))
                .contains(&format!("is {status}, not successfully deployed")));
        }
        let old: BTreeMap<String, String> =
            [("AppVersion".to_string(), "1.4.1".to_string())].into();
        let none = BTreeMap::new();
        expect!["stack `staging-app` of `staging` is not running what would be promoted: parameter `AppVersion` is `1.4.1`, not `1.4.2`; tag `release` is not set (expected `r2`); deploy staging first, then promote (or pass --skip-verify)"]
            .assert_eq(&no(Some(stack("UPDATE_COMPLETE", &old, &none))));
    }

    fn snap(commit: &str, v: &str) -> Snapshot {
        Snapshot {
            commit: commit.into(),
            values: [(PromotedKey::Parameter("AppVersion".into()), v.to_string())].into(),
        }
    }

    #[test]
    fn default_rollback_revision_is_the_latest_with_other_values() {
        let history = vec![
            snap("c4", "3"),
            snap("c3", "3"),
            snap("c2", "2"),
            snap("c1", "2"),
            snap("c0", "1"),
        ];
        let now = snap("", "3").values;
        assert_eq!(
            default_rollback_revision(&now, &history).unwrap().commit,
            "c2"
        );
        // An uncommitted change: HEAD itself is the previous state.
        let now = snap("", "4").values;
        assert_eq!(
            default_rollback_revision(&now, &history).unwrap().commit,
            "c4"
        );
        let now = snap("", "1").values;
        assert_eq!(default_rollback_revision(&now, &history[4..]), None);
    }

    #[test]
    fn rollback_plan() {
        let r = default_repo();
        let values: Values = [
            (
                PromotedKey::Parameter("AppVersion".into()),
                "1.4.0".to_string(),
            ),
            (PromotedKey::Tag("release".into()), "r1".to_string()),
        ]
        .into();
        let rev = "0123456789abcdef0123456789abcdef01234567";
        let plan = plan_rollback(&r, "prod", PROD, rev, &values).unwrap();
        assert_eq!(plan.changes.len(), 1);
        expect![[r#"
            rollback prod to 0123456789ab: AppVersion 1.4.0

            Restores the promoted values prod had at 0123456789abcdef0123456789abcdef01234567.

            - parameters.AppVersion: 1.4.1 → 1.4.0
        "#]]
        .assert_eq(&plan.commit_message);
        expect!["Roll back prod to 0123456789ab: AppVersion 1.4.0"].assert_eq(&plan.pr_title);
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["to_revision"], rev);
        assert_eq!(json["environment"], "prod");
        let partial: Values = [(
            PromotedKey::Parameter("AppVersion".into()),
            "1.4.0".to_string(),
        )]
        .into();
        expect!["`tags.release` had no value in `prod` at HEAD~3; rollback restores values but does not remove keys, so remove it by hand or pick a later revision"]
            .assert_eq(&plan_rollback(&r, "prod", PROD, "HEAD~3", &partial).unwrap_err().to_string());
    }

    fn info(c: &str) -> CommitInfo {
        CommitInfo {
            commit: c.into(),
            date: "2024-01-01T00:00:00+00:00".into(),
            author: "A".into(),
            summary: "s".into(),
        }
    }

    #[test]
    fn history_lists_changes_per_key() {
        let v = |s: &str| Some(snap("", s).values);
        let keys = [PromotedKey::Parameter("AppVersion".into())];
        let states = vec![
            // A merge that brings in c3's change: not listed again.
            CommitState {
                commit: info("m5"),
                values: v("3"),
                parents: vec![v("2"), v("3")],
            },
            CommitState {
                commit: info("c3"),
                values: v("3"),
                parents: vec![v("2")],
            },
            // Unrelated commit.
            CommitState {
                commit: info("c2"),
                values: v("2"),
                parents: vec![v("2")],
            },
            CommitState {
                commit: info("c1"),
                values: v("2"),
                parents: vec![v("1")],
            },
            // The environment appears.
            CommitState {
                commit: info("c0"),
                values: v("1"),
                parents: vec![],
            },
            // The environment missing: skipped.
            CommitState {
                commit: info("cx"),
                values: None,
                parents: vec![],
            },
        ];
        let h = key_history(&keys, &states);
        let lines: Vec<String> = h
            .iter()
            .map(|e| format!("{} {} {:?} -> {:?}", e.commit.commit, e.key, e.old, e.new))
            .collect();
        expect![[r#"
            [
                "c3 parameters.AppVersion Some(\"2\") -> Some(\"3\")",
                "c1 parameters.AppVersion Some(\"1\") -> Some(\"2\")",
                "c0 parameters.AppVersion None -> Some(\"1\")",
            ]
        "#]]
        .assert_debug_eq(&lines);
        // A merge that resolves to a third value is a change.
        let states = vec![CommitState {
            commit: info("m"),
            values: v("9"),
            parents: vec![v("2"), v("3")],
        }];
        assert_eq!(key_history(&keys, &states).len(), 1);
        let json = serde_json::to_value(&h[0]).unwrap();
        assert_eq!(json["commit"], "c3");
        assert_eq!(json["key"], "parameters.AppVersion");
        assert_eq!(json["author"], "A");
    }
}
