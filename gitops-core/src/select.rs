//! Environments chosen by name (`--environment`), as commands that act on
//! named environments take them: each one checked against the repository at
//! the revision, with the known names in the error.
//!
//! ```
//! use gitops_core::select::UnknownEnvironment;
//!
//! let e = UnknownEnvironment::new("prod", "0123456789abcdef", ["dev", "qa"]);
//! assert_eq!(e.to_string(), "no environment `prod` at 0123456789ab; known: dev, qa");
//! ```

use crate::detect::{Change, EnvChange};
use crate::model::Repository;

/// A name that is not an environment of the repository at a revision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no environment `{name}` at {}; known: {}", crate::text::short_commit(.at), .known.join(", "))]
#[non_exhaustive]
pub struct UnknownEnvironment {
    /// The name as given.
    pub name: String,
    /// The commit.
    pub at: String,
    /// The environments there.
    pub known: Vec<String>,
}

impl UnknownEnvironment {
    /// `name` is not among `known` at commit `at`.
    pub fn new<S: Into<String>>(name: &str, at: &str, known: impl IntoIterator<Item = S>) -> Self {
        Self {
            name: name.to_string(),
            at: at.to_string(),
            known: known.into_iter().map(Into::into).collect(),
        }
    }
}

/// Checks that every name in `names` is an environment of `model`, the
/// repository at commit `at`.
pub fn check_names(
    model: &Repository,
    names: &[String],
    at: &str,
) -> Result<(), UnknownEnvironment> {
    match names.iter().find(|n| model.environment(n).is_none()) {
        Some(name) => Err(UnknownEnvironment::new(
            name,
            at,
            model.environments.iter().map(|e| e.name.as_str()),
        )),
        None => Ok(()),
    }
}

/// The environments `names` of `model` (the repository at commit `at`), in
/// that order, each counted as updated.
pub fn named(
    model: &Repository,
    names: &[String],
    at: &str,
) -> Result<Vec<EnvChange>, UnknownEnvironment> {
    check_names(model, names, at)?;
    Ok(names
        .iter()
        .filter_map(|n| model.environment(n))
        .map(|e| EnvChange::new(e.clone(), Change::Updated))
        .collect())
}
