//! One module per subcommand, plus [`select`], the environment selection
//! shared by the commands that act on changes.

pub mod deploy;
pub mod detect;
pub mod drift;
pub mod envs;
pub mod history;
pub mod plan;
pub mod promote;
pub mod render;
pub mod rollback;
pub mod select;
pub mod status;
pub mod validate;
pub mod whoami;

use std::path::Path;

use gitops_core::{Checks, Repository, Source, WorkTree};

/// Finds the GitOps root at or above `dir`.
pub fn worktree(dir: &Path) -> anyhow::Result<WorkTree> {
    Ok(WorkTree::discover(dir)?)
}

/// Loads the model from `source` and refuses to go on when it has errors,
/// so that nothing is changed in AWS from an invalid repository.
pub fn load_valid(source: &dyn Source) -> anyhow::Result<Repository> {
    Ok(Repository::load_checked(source, Checks::Full)?)
}
