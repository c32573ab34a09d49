//! `gitops rollback`.

use std::process::ExitCode;

use gitops_core::history::rollback_target;
use gitops_core::promote::{plan_rollback, rollback_branch, RollbackReport};

use super::promote::{env, load, read_file, refuse, Finish, PrArgs};
use crate::output::print_json;
use crate::{Format, Globals};

/// How far back the default revision is searched, in first-parent commits.
const MAX_COMMITS: usize = 10_000;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment to roll back.
    #[arg(value_name = "ENV")]
    environment: String,
    /// The revision whose values to restore (a commit, tag, branch or
    /// expression such as HEAD~2). Default: the most recent earlier commit
    /// where the promoted values differ from now.
    #[arg(long = "to", value_name = "REV")]
    to: Option<String>,
    /// Change the environment file (without it, only the diff is printed).
    #[arg(long)]
    write: bool,
    #[command(flatten)]
    pr: PrArgs,
}

pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let (work, repo) = load(&g.repo)?;
    let name = args.environment.as_str();
    let target = rollback_target(work.root(), &repo, name, args.to.as_deref(), MAX_COMMITS)?;
    let text = read_file(&work, env(&repo, name)?)?;
    let plan = match plan_rollback(&repo, name, &text, &target.commit, &target.values) {
        Ok(p) => p,
        Err(e) => return refuse(g, &e.to_string()),
    };
    let finish = Finish {
        work: &work,
        edit: &plan.edit,
        commit_message: &plan.commit_message,
        pr_title: &plan.pr_title,
        pr_body: &plan.pr_body,
        branch: &rollback_branch(name),
        bound_branch: repo.environment(name).and_then(|e| e.branch_name()),
    };
    let applied = finish.apply(args.write, &args.pr)?;
    let report = RollbackReport { plan, applied };
    match g.format {
        Format::Json => print_json(&report.to_json())?,
        Format::Markdown => print!("{}", report.plan.pr_body),
        Format::Text => print!("{}", report.render_text(g.color)),
    }
    crate::github::write_outputs(&report.applied.outputs(&report.plan.edit))?;
    Ok(ExitCode::SUCCESS)
}
