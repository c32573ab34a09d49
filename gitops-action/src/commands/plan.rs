//! `gitops plan`: what `gitops deploy` would do, for review.
//!
//! Gathers the same environments as `deploy`, plans each one as the deploy
//! would (from AWS, or guessed from git with `--no-aws`), previews each
//! stack change through a change set that is always deleted, and prints the
//! result as text, JSON or markdown. The markdown goes to the step summary
//! and, on a pull request, into one comment that is edited in place.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use gitops_core::actions::run_url;
use gitops_core::deploy::{self, ExecutorOptions, PlanOptions};
use gitops_core::plan::{
    self as core_plan, GatherError, Gathered, Plan, Previewed, COMMENT_LIMIT, MARKER,
};

use super::select::{self, SelectArgs};
use crate::aws::AwsArgs;
use crate::github_api::{GitHub, Upserted};
use crate::output::{paint, print_json};
use crate::{github, Format, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    select: SelectArgs,
    /// Plan these environments (repeatable), as they are at --head (default
    /// HEAD). Without --base there are no value changes or diffs to show.
    #[arg(long = "environment", short = 'e', value_name = "NAME")]
    environments: Vec<String>,
    /// Make no AWS call: the actions are a git-level guess that assumes AWS
    /// matches the base revision, and nothing is previewed. For pull
    /// requests from forks and jobs without credentials.
    #[arg(long)]
    no_aws: bool,
    /// Exit with 2 when a deploy would change something in AWS, 0 when not (1 is an error).
    #[arg(long)]
    exit_code: bool,
    /// Write the plan as a pull-request comment: one per pull request,
    /// edited in place on every run. Automatic with --github on
    /// pull_request events.
    #[arg(long)]
    comment: bool,
    /// The pull request to comment on [default: the GitHub event's].
    #[arg(long, value_name = "N")]
    pr: Option<u64>,
    /// Plan as `deploy --allow-delete` would: deletions instead of refusals.
    #[arg(long)]
    allow_delete: bool,
    /// Plan as `deploy --adopt` would: take over stacks this repository does not own.
    #[arg(long)]
    adopt: bool,
    /// Plan as `deploy --max-deletions N` would: with more than N stack
    /// deletions, every deletion is refused.
    #[arg(long, default_value_t = deploy::DEFAULT_MAX_DELETIONS, value_name = "N")]
    max_deletions: usize,
    /// How many environments to plan at once in each account and region.
    #[arg(long, default_value_t = 4, value_name = "N")]
    concurrency: usize,
    /// Seconds to wait for a change set to be computed.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    timeout: u64,
    #[command(flatten)]
    gate: super::deploy::GateArgs,
    #[command(flatten)]
    aws: AwsArgs,
}

pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let (selected, targets) =
        select::targets(g, &args.select, &args.environments, None, "plan", &args.aws)?;
    let options = args.gate.apply(
        PlanOptions::new()
            .with_allow_delete(args.allow_delete)
            .with_adopt(args.adopt)
            .with_max_deletions(args.max_deletions),
    );
    let gathered = Gathered::gather(&selected, &targets, args.no_aws).map_err(|e| match e {
        GatherError::Repository(e) => e.into(),
        e => anyhow::Error::from(e),
    })?;
    for w in &gathered.warnings {
        github::warning(w, g.color);
    }
    let mut failed = 0;
    let mut previews = if args.no_aws {
        gathered.guess(options)
    } else if gathered.inputs.is_empty() {
        Vec::new()
    } else {
        let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        match rt.block_on(observe_all(&args, g.color, options, gathered)) {
            Ok(p) => {
                failed = p.failures.len();
                p.previews
            }
            Err(code) => return Ok(code),
        }
    };
    core_plan::limit_deletions(&mut previews, args.max_deletions);
    let plan = Plan::new(selected.base, selected.head, !args.no_aws, previews);
    let markdown = core_plan::render_markdown(&plan);
    match g.format {
        Format::Json => print_json(&plan)?,
        Format::Markdown => print!("{markdown}"),
        Format::Text => print!("{}", core_plan::render_text(&plan, g.color)),
    }
    if std::env::var_os("GITHUB_OUTPUT").is_some() {
        github::write_outputs(&[
            ("has-changes", plan.has_changes.to_string()),
            ("counts", serde_json::to_string(&plan.counts)?),
        ])?;
    }
    github::append_summary(&markdown)?;
    let on_pr = args.select.github && pr_event().is_some();
    if args.comment || on_pr {
        comment(&markdown, args.pr, args.comment, g.color)?;
    }
    Ok(ExitCode::from(plan.exit_code(failed, args.exit_code)))
}

/// Plans every environment against AWS and previews it, `--concurrency` at
/// a time per account and region. `Err(exit code)` when interrupted (after
/// the preview change sets were deleted).
async fn observe_all(
    args: &Args,
    color: bool,
    options: PlanOptions,
    gathered: Gathered,
) -> Result<Previewed, ExitCode> {
    let interrupt =
        crate::interrupt::Interrupt::watch("deleting the preview's change sets before exiting");
    let factory = Arc::new(crate::aws::factory(&args.aws).await);
    let progress = Arc::new(move |env: &str, line: &str| {
        eprintln!("{} {line}", paint(&format!("[{env}]"), "36", color));
    });
    let exec_options = ExecutorOptions::new()
        .with_timeout(Duration::from_secs(args.timeout))
        .with_poll(super::deploy::poll_interval(&args.aws))
        .with_plan(options);
    let exec = gathered.executor(factory, progress, exec_options, interrupt.token());
    let previewed = gathered
        .preview(Arc::new(exec), options, args.concurrency, interrupt.token())
        .await;
    for f in &previewed.cleanup_errors {
        eprintln!("error: {f}");
    }
    if let Some(code) = interrupt.exit_code() {
        if previewed.cleanup_errors.is_empty() {
            eprintln!("no change set was left behind");
        }
        return Err(code);
    }
    for (name, e) in &previewed.failures {
        eprintln!("error: the plan of `{name}` failed: {e}");
    }
    Ok(previewed)
}

/// The pull request of the GitHub event, on pull_request(_target) events.
fn pr_event() -> Option<u64> {
    let name = std::env::var("GITHUB_EVENT_NAME").ok()?;
    let text = std::fs::read_to_string(std::env::var_os("GITHUB_EVENT_PATH")?).ok()?;
    gitops_core::event::pull_request_number(&name, &serde_json::from_str(&text).ok()?)
}

/// A `::notice::` in GitHub Actions (on standard error, so standard output
/// stays the plan), a note elsewhere.
fn notice(message: &str, color: bool) {
    if crate::output::in_github_actions() {
        crate::output::workflow_command_err(&format!(
            "::notice::{}",
            crate::output::escape_data(message)
        ));
    } else {
        eprintln!("{} {message}", paint("note:", "1;34", color));
    }
}

/// Writes the plan comment: edits the one holding [`MARKER`], or posts it.
/// A read-only token (403, or 404 as on forks) falls back to the step
/// summary with a notice. `explicit` (--comment) makes a missing pull
/// request or token an error rather than a notice.
fn comment(markdown: &str, pr: Option<u64>, explicit: bool, color: bool) -> anyhow::Result<()> {
    let Some(number) = pr.or_else(pr_event) else {
        if explicit {
            bail!("--comment needs a pull request: pass --pr N, or run with --github on a pull_request event");
        }
        return Ok(());
    };
    let gh = match GitHub::from_env() {
        Ok(gh) => gh,
        Err(e) if !explicit => {
            notice(
                &format!("the plan is not commented on pull request #{number}: {e}; it is in the job's step summary"),
                color,
            );
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let body = core_plan::truncate_markdown_linked(
        markdown,
        COMMENT_LIMIT,
        run_url(|n| std::env::var(n).ok()).as_deref(),
    );
    if body.len() != markdown.len() {
        notice(
            &format!("the plan is longer than a comment allows ({COMMENT_LIMIT} characters): the comment is cut at an environment, and the whole plan is in the job's step summary"),
            color,
        );
    }
    match gh.upsert_comment(number, MARKER, &body) {
        Ok((Upserted::Created, c)) => {
            eprintln!("posted the plan on pull request #{number}: {}", c.url);
            Ok(())
        }
        Ok((Upserted::Updated, c)) => {
            eprintln!(
                "updated the plan comment on pull request #{number}: {}",
                c.url
            );
            Ok(())
        }
        Err(e) if e.is_forbidden() || e.is_not_found() => {
            notice(
                &format!(
                    "could not write the plan comment on pull request #{number} ({} {} answered {}): the token is read-only, as it is for pull requests from forks; the plan is in the job's step summary",
                    e.method,
                    e.path,
                    e.status.unwrap_or_default()
                ),
                color,
            );
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
