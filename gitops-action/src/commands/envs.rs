//! `gitops envs`.

use std::process::ExitCode;

use gitops_core::render::{markdown_table, table};
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
        Format::Text | Format::Markdown => print_table(&repo, g.format == Format::Markdown),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(repo: &Repository, markdown: bool) {
    let header = [
        "ENVIRONMENT",
        "STACK",
        "PIPELINE",
        "REGION",
        "ACCOUNT",
        "PROTECTED",
        "PARAMETERS",
    ];
    let rows: Vec<[String; 7]> = repo
        .environments
        .iter()
        .map(|e| {
            [
                e.name.clone(),
                e.stack.clone(),
                e.pipeline.clone().unwrap_or_else(|| "-".into()),
                e.region.clone(),
                e.account.clone().unwrap_or_else(|| "-".into()),
                if e.protected { "yes" } else { "no" }.into(),
                e.parameters
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    if markdown {
        let rows: Vec<[String; 7]> = rows
            .iter()
            .map(|r| r.clone().map(|c| gitops_core::markdown::cell(&c)))
            .collect();
        print!("{}", markdown_table(&header, &rows));
        return;
    }
    print!("{}", table(&header, &rows));
    match &repo.id {
        Some(id) => println!("{} environment(s), repository id `{id}`", rows.len()),
        None => println!(
            "{} environment(s), no repository id (set `id:` in gitops.yaml)",
            rows.len()
        ),
    }
}
