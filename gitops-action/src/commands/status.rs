//! `gitops status`: one row per environment — the version in git and the
//! one deployed, the commit, the stack's status, the pipeline's last run,
//! sync and health. Fast: no drift detection; every environment is queried
//! at once. Also the preparation and printing `gitops drift` shares.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use gitops_core::board::Board;
use gitops_core::status::{self as core_status, PrepareError, Prepared};

use super::select;
use crate::aws::AwsArgs;
use crate::output::print_json;
use crate::{github, Format, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Also write the status board, one self-contained HTML page, to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// Which environments, at which revision, how many at once.
#[derive(Debug, Clone, clap::Args)]
pub struct ScopeArgs {
    /// Only these environments (repeatable) [default: all].
    #[arg(long = "environment", short = 'e', value_name = "NAME")]
    pub environments: Vec<String>,
    /// The git revision that says what should run.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub rev: String,
    /// How many environments to query at once in each account and region.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
}

/// Reads the repository at `scope.rev` and builds each selected
/// environment's desired stacks ([`Prepared::read`]).
pub fn prepare(g: &Globals, scope: &ScopeArgs) -> anyhow::Result<Prepared> {
    let selected = select::at_head(g, Some(&scope.rev))?;
    let head_id = selected
        .head_id
        .ok_or_else(|| anyhow::anyhow!("no commit at {}", scope.rev))?;
    let var = |name: &str| std::env::var(name).ok();
    let (repo, prefix, names) = (selected.repo, selected.prefix, &scope.environments);
    // A repository's own error on top, so that its problems are printed.
    Prepared::read(repo, head_id, prefix, names, var).map_err(|e| match e {
        PrepareError::Repository(e) => e.into(),
        e => e.into(),
    })
}

pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let p = prepare(g, &args.scope)?;
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let out = rt.block_on(async {
        let factory = Arc::new(crate::aws::factory(&args.aws).await);
        let local = args.aws.is_local();
        core_status::status(&p, factory, args.scope.concurrency, local).await
    });
    if let Some(e) = &out.pending_error {
        eprintln!("note: cannot tell which environments have changes pending: {e}");
    }
    let text = out.report.render_text(g.color);
    show(
        g,
        &out.report,
        &text,
        &out.markdown(),
        &out.board,
        args.html.as_deref(),
    )?;
    Ok(ExitCode::from(out.report.exit_code()))
}

/// Prints a report of `status` or `drift` in the format asked for (`html`:
/// its board), appends its markdown to the job summary, and writes the
/// board's page to `html`, if given.
pub fn show(
    g: &Globals,
    report: &impl serde::Serialize,
    text: &str,
    markdown: &str,
    board: &Board,
    html: Option<&Path>,
) -> anyhow::Result<()> {
    match g.format {
        _ if g.html => print!("{}", board.render_html()),
        Format::Json => print_json(report)?,
        Format::Markdown => print!("{markdown}"),
        Format::Text => print!("{text}"),
    }
    github::append_summary(markdown)?;
    if let Some(path) = html {
        std::fs::write(path, board.render_html())
            .with_context(|| format!("cannot write the status board to {}", path.display()))?;
        eprintln!("wrote the status board to {}", path.display());
    }
    Ok(())
}
