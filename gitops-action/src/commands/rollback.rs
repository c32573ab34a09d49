//! `gitops rollback`.

use std::process::ExitCode;

use anyhow::Context;
use gitops_core::history::{first_parent_snapshots, ValueReader};
use gitops_core::promote::{
    default_rollback_revision, plan_rollback, rollback_branch, values_of, PromoteError,
    RollbackReport, Snapshot,
};
use gitops_core::source::{open_repo, prefix_of};

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
    let Some(environment) = repo.environment(name) else {
        let error = if repo.config.promotion.order.iter().any(|e| e == name) {
            PromoteError::OrderNamesUndeclared(name.to_string())
        } else {
            PromoteError::UnknownEnvironment {
                name: name.to_string(),
                hint: String::new(),
            }
        };
        return refuse(g, &error.to_string());
    };
    let keys = repo.promoted_keys();
    if keys.is_empty() {
        return refuse(g, &PromoteError::NoKeys.to_string());
    }
    let git = open_repo(work.root())?;
    let prefix = prefix_of(&git, work.root())?;
    let mut reader = ValueReader::new(&git, &prefix, name, &keys);
    let target: Snapshot = match &args.to {
        Some(rev) => {
            let commit = gitops_core::source::resolve(&git, rev)?;
            let values = reader.values_at(commit)?.with_context(|| {
                format!("environment `{name}` does not exist at {rev} (or gitops.yaml there is unusable); pick another revision")
            })?;
            Snapshot {
                commit: commit.to_string(),
                values,
            }
        }
        None => {
            let head = gitops_core::source::resolve(&git, "HEAD")?;
            let history = first_parent_snapshots(&mut reader, head, MAX_COMMITS)?;
            let now = values_of(environment, &keys);
            match default_rollback_revision(&now, &history) {
                Some(s) => s.clone(),
                None => {
                    let e = PromoteError::NoEarlierRevision {
                        env: name.to_string(),
                        keys: keys
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                    };
                    return refuse(g, &e.to_string());
                }
            }
        }
    };
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
