//! `gitops envs`.

use std::process::ExitCode;

use gitops_core::render::environments;
use gitops_core::{Checks, Environment, GitTree, Repository};
use serde::Serialize;

use crate::output::print_json;
use crate::{Format, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read the repository at this git revision (a commit, branch, tag or
    /// expression such as HEAD~1) instead of the working tree.
    #[arg(long, value_name = "REV")]
    rev: Option<String>,
}

#[derive(Serialize)]
struct Report<'a> {
    environments: &'a [Environment],
}

pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let work = super::worktree(&g.repo)?;
    let repo = match &args.rev {
        None => Repository::load_checked(&work, Checks::Model)?,
        Some(rev) => {
            let tree = GitTree::at_revision(work.root(), rev)?;
            Repository::load_checked(&tree, Checks::Model)?
        }
    };
    match g.format {
        Format::Json => print_json(&Report {
            environments: &repo.environments,
        })?,
        Format::Text | Format::Markdown => {
            print!("{}", environments(&repo, g.format == Format::Markdown))
        }
    }
    Ok(ExitCode::SUCCESS)
}
