//! `gitops history`.

use std::process::ExitCode;

use gitops_core::history::{commit_states, ValueReader};
use gitops_core::promote::{key_history, HistoryReport, PromoteError};
use gitops_core::source::{open_repo, prefix_of, resolve};

use super::promote::{load, refuse};
use crate::output::print_json;
use crate::{Format, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment whose promoted values to list.
    #[arg(value_name = "ENV")]
    environment: String,
    /// Where the history starts (a commit, branch, tag or expression).
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    rev: String,
    /// Look at no more than this many commits.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_count: usize,
}

pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let (work, repo) = load(&g.repo)?;
    let name = args.environment.as_str();
    // The environment may be gone from the working tree: its history still counts.
    let keys = repo.promoted_keys();
    if keys.is_empty() {
        return refuse(g, &PromoteError::NoKeys.to_string());
    }
    let git = open_repo(work.root())?;
    let prefix = prefix_of(&git, work.root())?;
    let head = resolve(&git, &args.rev)?;
    let mut reader = ValueReader::new(&git, &prefix, name, &keys);
    let states = commit_states(&mut reader, head, args.max_count)?;
    if states.is_empty() && repo.environment(name).is_none() {
        return refuse(
            g,
            &format!(
                "there is no environment `{name}`, now or in the history of {}",
                args.rev
            ),
        );
    }
    let changes = key_history(&keys, &states);
    let report = HistoryReport {
        environment: name.to_string(),
        keys,
        changes,
    };
    match g.format {
        Format::Json => print_json(&report)?,
        Format::Markdown => print!("{}", report.render_markdown()),
        Format::Text => print!("{}", report.render_text()),
    }
    Ok(ExitCode::SUCCESS)
}
