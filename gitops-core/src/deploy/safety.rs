//! The deletion rules: pure checks over what git says about a removed
//! environment ([`Removal`]) and the stacks AWS has, so that `deploy
//! --dry-run` and `gitops plan` show exactly the refusal a deploy makes.
//!
//! A stack is deleted only when every one of these holds (checked in this
//! order by [`check_deletion`], the first that fails is the refusal):
//!
//! 1. its environment was declared at the base and is not declared at head
//!    (checked by the planner against [`super::Desired::declared_at_head`]);
//! 2. the environment's file, at its base path, is gone at head: a change of
//!    `gitops.yaml` alone never deletes anything;
//! 3. no environment declared at head resolves to the same stack name in the
//!    same region and account;
//! 4. the stack is tagged `gitops:managed-by=<id>` and
//!    `gitops:environment=<name>` (`--adopt` never applies to deletions);
//! 5. `protected` at the base is exactly `false` or absent: any other value,
//!    a base file that does not parse, or an unknown base, counts as protected;
//! 6. the stack has no termination protection;
//! 7. `--allow-delete` is given;
//!
//! and, over the whole run, [`deletion_limit`]: no more than
//! `--max-deletions` stacks are deleted (default
//! [`DEFAULT_MAX_DELETIONS`]); a run with more refuses every deletion in it.
//!
//! The rules read no git themselves: [`Removal`] carries what they need, so
//! a caller may build it from a detection (base and head revisions) or from
//! a stack's deployed commit.

use serde::Serialize;

use super::{Action, EnvPlan, Refusal, TAG_ENVIRONMENT, TAG_MANAGED_BY};
use crate::aws::Stack;
use crate::model::{Environment, Protection, Repository};
use crate::source::{normalize, Entry, Source};

/// How many stacks one run deletes at most, unless `--max-deletions` says otherwise.
pub const DEFAULT_MAX_DELETIONS: usize = 5;

/// How a removed environment was declared at the revision its removal is
/// judged from (the base revision, or the commit its stack was deployed from).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum BaseDeclaration {
    /// Its file was read; `protection` is its `protected` key, strictly.
    Declared {
        /// The environment file at that revision.
        file: String,
        /// Its `protected` key.
        protection: Protection,
    },
    /// Its file is there but does not parse: counts as protected.
    Unparseable {
        /// The environment file at that revision.
        file: String,
        /// The first problem found in it.
        problem: String,
    },
    /// Its configuration cannot be read (such as a deployed commit that is
    /// not in the history): counts as protected.
    Unknown {
        /// Why it is not known.
        why: String,
    },
}

impl BaseDeclaration {
    /// The declaration of `env`, loaded at the base revision.
    pub fn of(env: &Environment) -> Self {
        BaseDeclaration::Declared {
            file: env.file.clone(),
            protection: env.protection.clone(),
        }
    }

    /// The declaration of environment `name` in `repo`, a model loaded at
    /// the revision to judge from: declared, present but unparseable (a load
    /// error in its folder), or unknown (not declared there).
    pub fn in_repository(repo: &Repository, name: &str) -> Self {
        if let Some(env) = repo.environment(name) {
            return Self::of(env);
        }
        let root = normalize(&repo.config.environments_path).unwrap_or_default();
        let dir = if root.is_empty() {
            format!("{name}/")
        } else {
            format!("{root}/{name}/")
        };
        match repo
            .problems()
            .iter()
            .find(|p| p.is_error() && p.file.starts_with(&dir))
        {
            Some(p) => BaseDeclaration::Unparseable {
                file: p.file.clone(),
                problem: p.message.clone(),
            },
            None => BaseDeclaration::Unknown {
                why: format!("environment `{name}` is not declared at that revision"),
            },
        }
    }

    /// Whether the deletion rules let its stacks go: only a declaration
    /// whose `protected` is absent or exactly `false`.
    pub fn allows_deletion(&self) -> bool {
        matches!(self, BaseDeclaration::Declared { protection, .. } if protection.allows_deletion())
    }
}

/// An environment declared at head that resolves to one of a removed
/// environment's stacks (same name, region and account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Claim {
    /// The environment at head.
    pub environment: String,
    /// The stack both resolve to.
    pub stack: String,
}

/// What git says about a removed environment, for the deletion rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Removal {
    /// How it was declared at the revision its removal is judged from.
    pub base: BaseDeclaration,
    /// Whether its file, at its base path, is still there at head (then
    /// only `gitops.yaml` changed).
    pub file_at_head: bool,
    /// Environments declared at head that claim one of its stacks.
    pub claimed_by: Vec<Claim>,
}

impl Removal {
    /// A removal about which nothing is known: refused as protected.
    pub fn unknown(why: impl Into<String>) -> Self {
        Removal {
            base: BaseDeclaration::Unknown { why: why.into() },
            file_at_head: false,
            claimed_by: Vec::new(),
        }
    }

    /// The facts about removing `env` (as it was declared at the base:
    /// `base`), read from the model and the files at head.
    pub fn at_head(
        head: &Repository,
        head_source: &dyn Source,
        env: &Environment,
        base: BaseDeclaration,
    ) -> crate::Result<Self> {
        let file_at_head = !env.file.is_empty()
            && matches!(head_source.read(&env.file)?, Entry::File(_) | Entry::Dir);
        Ok(Removal {
            base,
            file_at_head,
            claimed_by: claims(head, env),
        })
    }
}

/// The environments of `head` that resolve to one of `env`'s stacks in the
/// same region and account. An account git does not pin is the account of
/// the credentials, so it matches any other.
pub fn claims(head: &Repository, env: &Environment) -> Vec<Claim> {
    let mine: Vec<&str> = std::iter::once(env.stack.as_str())
        .chain(env.pipeline_stack.as_deref())
        .collect();
    let mut out = Vec::new();
    for h in &head.environments {
        if h.region != env.region {
            continue;
        }
        let same_account = match (env.effective_account(), h.effective_account()) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        if !same_account {
            continue;
        }
        for theirs in std::iter::once(h.stack.as_str()).chain(h.pipeline_stack.as_deref()) {
            if mine.contains(&theirs) {
                out.push(Claim {
                    environment: h.name.clone(),
                    stack: theirs.to_string(),
                });
            }
        }
    }
    out
}

/// The deletion rules for one removed environment (not declared at head)
/// whose existing stacks are `stacks`: `None` when they may all be deleted
/// (or there are none), else the refusal of the first rule that fails.
/// See the module documentation for the rules and their order.
pub fn check_deletion(
    repo_id: &str,
    environment: &str,
    removal: &Removal,
    stacks: &[&Stack],
    allow_delete: bool,
) -> Option<Refusal> {
    let first = stacks.first().map(|s| s.name.clone());
    let named = || first.clone().unwrap_or_default();
    if removal.file_at_head {
        let file = match &removal.base {
            BaseDeclaration::Declared { file, .. } | BaseDeclaration::Unparseable { file, .. } => {
                file.clone()
            }
            BaseDeclaration::Unknown { .. } => String::new(),
        };
        return Some(Refusal::FileStillThere {
            stack: named(),
            environment: environment.to_string(),
            file,
        });
    }
    if stacks.is_empty() {
        return None;
    }
    if let Some(c) = removal
        .claimed_by
        .iter()
        .find(|c| stacks.iter().any(|s| s.name == c.stack))
    {
        return Some(Refusal::ClaimedAtHead {
            stack: c.stack.clone(),
            by: c.environment.clone(),
        });
    }
    for s in stacks {
        let managed_by = s.tags.get(TAG_MANAGED_BY);
        let env_tag = s.tags.get(TAG_ENVIRONMENT);
        if managed_by.map(String::as_str) != Some(repo_id)
            || env_tag.map(String::as_str) != Some(environment)
        {
            return Some(Refusal::NotOwned {
                stack: s.name.clone(),
                managed_by: managed_by.cloned(),
                environment_tag: env_tag.cloned(),
                id: repo_id.to_string(),
                environment: environment.to_string(),
            });
        }
    }
    if !removal.base.allows_deletion() {
        return Some(Refusal::Protected {
            stack: named(),
            environment: environment.to_string(),
            base: removal.base.clone(),
        });
    }
    if let Some(s) = stacks
        .iter()
        .find(|s| s.termination_protection == Some(true))
    {
        return Some(Refusal::TerminationProtected {
            stack: s.name.clone(),
        });
    }
    if !allow_delete {
        return Some(Refusal::DeleteNotAllowed { stack: named() });
    }
    None
}

/// The run-level rule over every environment's actions: when they delete
/// more than `max` stacks in all, the refusal that replaces each of those
/// deletions (listing them all); `None` when the run may go ahead.
pub fn deletion_limit<'a>(
    actions: impl IntoIterator<Item = &'a Action>,
    max: usize,
) -> Option<Refusal> {
    let stacks: Vec<String> = actions
        .into_iter()
        .filter_map(|a| match a {
            Action::DeleteStack { stack, .. } => Some(stack.clone()),
            _ => None,
        })
        .collect();
    (stacks.len() > max).then_some(Refusal::TooManyDeletions { stacks, max })
}

/// Replaces the actions with `refusal` when they delete anything.
pub fn refuse_deletions(actions: &mut Vec<Action>, refusal: &Refusal) {
    if actions
        .iter()
        .any(|a| matches!(a, Action::DeleteStack { .. }))
    {
        *actions = vec![Action::Refuse {
            reason: refusal.clone(),
        }];
    }
}

/// Applies [`deletion_limit`] to a run's plans: with more than `max`
/// deletions, every plan that deletes is refused instead.
pub fn limit_deletions(plans: &mut [EnvPlan], max: usize) {
    if let Some(r) = deletion_limit(plans.iter().flat_map(|p| &p.actions), max) {
        for p in plans {
            refuse_deletions(&mut p.actions, &r);
        }
    }
}
