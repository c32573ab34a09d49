//! One module per subcommand.

pub mod detect;
pub mod envs;
pub mod validate;
pub mod whoami;

use std::path::Path;

use gitops_core::{Repository, WorkTree};

/// Finds the GitOps root at or above `dir`.
pub fn worktree(dir: &Path) -> anyhow::Result<WorkTree> {
    Ok(WorkTree::discover(dir)?)
}

/// Loads the working-tree model and refuses to go on when it has errors.
pub fn load_valid(dir: &Path) -> anyhow::Result<(WorkTree, Repository)> {
    let source = worktree(dir)?;
    let repo = Repository::load(&source)?;
    let problems = repo.validate(&source);
    if problems.iter().any(|p| p.is_error()) {
        return Err(gitops_core::Error::Invalid(problems).into());
    }
    Ok((source, repo))
}
