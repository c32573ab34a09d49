//! The drift gate: before a deploy changes a stack, compare the stack with
//! what git said at the commit it was last deployed from (its
//! `gitops:commit` tag). A difference is an out-of-band change, such as a
//! hotfix made in the console during an incident, that the deploy would
//! silently overwrite; the planner refuses the environment unless the run
//! accepts the drift (`--accept-drift`).

use serde::Serialize;

use crate::model::Environment;

/// Which environments the drift gate checks (`--drift-gate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DriftGate {
    /// No check.
    #[default]
    Off,
    /// Environments with `protected: true` (the command line's default).
    Protected,
    /// Every environment.
    All,
}

impl DriftGate {
    /// Whether the gate checks `env`.
    pub fn applies(self, env: &Environment) -> bool {
        match self {
            DriftGate::Off => false,
            DriftGate::Protected => env.protected,
            DriftGate::All => true,
        }
    }
}

/// What the gate found on one stack that the deploy would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum GateFinding {
    /// The stack differs from what git said at its deployed commit.
    Drifted {
        /// The stack.
        stack: String,
        /// The commit it was deployed from.
        commit: String,
        /// The differences, as `gitops drift` prints them (such as
        /// `parameters.AppVersion expected 1.2.0, actual 1.2.1`).
        reasons: Vec<String>,
    },
    /// The stack could not be compared: its deployed commit cannot be read.
    Unknown {
        /// The stack.
        stack: String,
        /// The commit it was deployed from.
        commit: String,
        /// Why it could not be compared.
        why: DeployedHistoryError,
    },
}

impl GateFinding {
    /// The stack it is about.
    pub fn stack(&self) -> &str {
        match self {
            GateFinding::Drifted { stack, .. } | GateFinding::Unknown { stack, .. } => stack,
        }
    }

    /// One line for a report: what the deploy would overwrite, or why the
    /// gate could not tell.
    pub fn summary(&self) -> String {
        match self {
            GateFinding::Drifted {
                stack,
                commit,
                reasons,
            } => format!(
                "`{stack}` was changed outside gitops since it was deployed from {}: {}",
                crate::text::short_commit(commit),
                reasons.join("; ")
            ),
            GateFinding::Unknown { stack, commit, why } => format!(
                "`{stack}` cannot be checked for out-of-band changes: its deployed commit {} {why}",
                crate::text::short_commit(commit)
            ),
        }
    }
}

/// What git said about a stack at a past commit, for the gate.
pub trait DeployedHistory: Send + Sync {
    /// The spec git gave stack `stack` of environment `env` at `commit`;
    /// an error saying why when that commit cannot be read (not in this
    /// clone, say) or did not declare it.
    fn spec_at(
        &self,
        commit: &str,
        env: &str,
        stack: &str,
    ) -> Result<super::StackSpec, DeployedHistoryError>;
}

/// Why the gate could not read what git said at a stack's deployed commit.
/// Each message completes "its deployed commit C …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeployedHistoryError {
    /// The `gitops:commit` tag is not a full commit id.
    #[error("is not a full commit id")]
    NotACommitId,
    /// The commit is not in this clone (a shallow one, say).
    #[error("is not in this clone's history (fetch the full history: fetch-depth: 0)")]
    NotInClone,
    /// The repository or the commit's files could not be read.
    #[error("cannot be read: {0}")]
    Unreadable(String),
    /// The run was given no history to read (an embedder's executor
    /// without [`Executor::with_deployed_history`](super::Executor::with_deployed_history)).
    #[error("cannot be read here")]
    NoHistory,
    /// The commit holds no loadable `gitops.yaml`.
    #[error("does not hold a loadable gitops.yaml")]
    NoConfig,
    /// The commit does not declare the environment.
    #[error("does not declare environment `{0}`")]
    Undeclared(String),
    /// The environment at that commit names other stacks.
    #[error("does not name the stack `{stack}` for `{env}`")]
    NoSuchStack {
        /// The stack.
        stack: String,
        /// The environment.
        env: String,
    },
}

impl Serialize for DeployedHistoryError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_checks_protected_environments_by_default_on_the_command_line() {
        let mut env = Environment::undeclared("prod", "prod-app", "us-east-1");
        assert!(!DriftGate::Protected.applies(&env));
        assert!(DriftGate::All.applies(&env));
        env.protected = true;
        assert!(DriftGate::Protected.applies(&env));
        assert!(!DriftGate::Off.applies(&env));
        assert_eq!(DriftGate::default(), DriftGate::Off);
    }
}
