//! `gitops history`.

use std::process::ExitCode;

use gitops_core::history::environment_history;

use super::promote::load;
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
    let report = environment_history(
        work.root(),
        &repo,
        &args.environment,
        &args.rev,
        args.max_count,
    )?;
    match g.format {
        Format::Json => print_json(&report)?,
        Format::Markdown => print!("{}", report.render_markdown()),
        Format::Text => print!("{}", report.render_text()),
    }
    Ok(ExitCode::SUCCESS)
}
