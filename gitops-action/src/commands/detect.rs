//! `gitops detect`: which environments changed between two commits.
//!
//! What to compare is chosen in [`super::select`]; this module prints it.

use std::process::ExitCode;

use gitops_core::report::DetectReport;

use super::select::{self, SelectArgs};
use crate::aws::AwsArgs;
use crate::output::print_json;
use crate::{github, Format, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    select: SelectArgs,
    /// Exit with 2 when an environment changed, 0 when none did.
    #[arg(long)]
    exit_code: bool,
    // AWS, for --base deployed.
    #[command(flatten)]
    aws: AwsArgs,
}

pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let selected = select::select_with(g, &args.select, Some(&args.aws))?;
    let report = DetectReport::new(selected.base, selected.head, selected.detection);
    if let Some(warning) = report.matrix_warning() {
        github::warning(&warning, g.color);
    }
    match g.format {
        Format::Json => print_json(&report)?,
        Format::Text => print!("{}", report.render_text()),
        Format::Markdown => print!("{}", report.render_markdown()),
    }
    if args.select.github || std::env::var_os("GITHUB_OUTPUT").is_some() {
        github::write_outputs(&report.outputs()?)?;
        github::append_summary(&report.render_markdown())?;
    }
    Ok(ExitCode::from(report.exit_code(args.exit_code)))
}
