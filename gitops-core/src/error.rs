//! The crate's error type.

use crate::problem::Problem;

/// Everything that can go wrong in `gitops-core`.
///
/// Bad *content* in a GitOps repository (a typo in `gitops.yaml`, a missing
/// template) is not an error: it is reported as a [`Problem`] so that one run
/// can report all of them. An `Error` means the operation itself could not be
/// carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No `gitops.yaml` was found.
    #[error("no gitops.yaml found in {0} or any parent folder; create one (see the README's schema) or pass --repo DIR")]
    NoConfig(String),
    /// The repository's configuration is invalid; the problems say where.
    #[error("the GitOps repository is invalid ({} problem(s)); run `gitops validate` for details", .0.iter().filter(|p| p.is_error()).count())]
    Invalid(Vec<Problem>),
    /// A git operation failed.
    #[error("git: {0}")]
    Git(String),
    /// A revision could not be resolved.
    #[error("cannot resolve revision `{rev}`: {reason}")]
    Revision {
        /// The revision as given.
        rev: String,
        /// Why it failed.
        reason: String,
    },
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that failed.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsError),
    /// The repository has no id (no `id` in gitops.yaml and no origin
    /// remote), so it cannot tell its stacks from others': nothing that
    /// changes AWS runs.
    #[error("this repository has no id, so it cannot tell the stacks it manages from anyone else's; set `id:` in gitops.yaml (such as `id: acme/payments`, written on every stack as gitops:managed-by), or add an origin remote to take `owner/repo` from")]
    NoId,
    /// A generic error with a message that already says what to do.
    #[error("{0}")]
    Message(String),
}

impl Error {
    pub(crate) fn git(e: impl std::fmt::Display) -> Self {
        Error::Git(e.to_string())
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
