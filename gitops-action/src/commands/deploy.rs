//! `gitops deploy`: gather state, plan each environment as data, execute.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gitops_core::deploy::{self, Desired, Executor, ExecutorOptions, PlanOptions};
use gitops_core::report::RunReport;
use gitops_core::GitTree;

use super::select::{self, SelectArgs};
use crate::aws::AwsArgs;
use crate::output::{paint, print_json};
use crate::{github, Format, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    select: SelectArgs,
    /// Deploy these environments (repeatable), as they are at HEAD.
    #[arg(long = "environment", short = 'e', value_name = "NAME")]
    environments: Vec<String>,
    /// Deploy what a `gitops detect --format json` run found (its JSON file),
    /// so a matrix job reuses its detect job's result. Combine with
    /// --environment to take one environment from it.
    #[arg(long, value_name = "FILE")]
    from_detect: Option<std::path::PathBuf>,
    /// Print the actions without creating anything, change sets included.
    #[arg(long)]
    dry_run: bool,
    /// Delete the stacks of environments whose folder was removed (never protected ones).
    #[arg(long)]
    allow_delete: bool,
    /// Delete at most N stacks in this run: with more, every deletion is
    /// refused and listed (a typo in gitops.yaml must not delete the estate).
    #[arg(long, default_value_t = deploy::DEFAULT_MAX_DELETIONS, value_name = "N")]
    max_deletions: usize,
    /// Take over existing stacks that lack this repository's gitops:managed-by tag.
    #[arg(long)]
    adopt: bool,
    /// How many environments to deploy at once in each account and region
    /// (AWS throttles per account and region, so N applies to each one).
    #[arg(long, default_value_t = 4, value_name = "N")]
    concurrency: usize,
    /// Seconds to wait for a busy stack, a stack operation or a pipeline run.
    #[arg(long, default_value_t = 1800, value_name = "SECONDS")]
    timeout: u64,
    /// Start pipeline executions without waiting for them. By default
    /// deploy waits for each execution it started, printing every stage and
    /// action transition, and fails when the execution fails (with the
    /// failed action's message and a console link) or is still running at
    /// --timeout (the execution is then left running).
    #[arg(long)]
    no_wait: bool,
    /// Wait for started pipeline executions (the default; kept for old workflows).
    #[arg(long, hide = true, conflicts_with = "no_wait")]
    wait: bool,
    #[command(flatten)]
    gate: GateArgs,
    #[command(flatten)]
    aws: AwsArgs,
}

/// The drift gate's flags, shared by deploy and plan.
#[derive(Debug, Clone, clap::Args)]
pub struct GateArgs {
    /// Before changing a stack, compare it with what git said at the commit
    /// it was deployed from, and refuse the environment when it was changed
    /// outside gitops (a console hotfix, say): for protected environments,
    /// all, or none.
    #[arg(long, value_enum, default_value_t = GateChoice::Protected, value_name = "WHICH")]
    drift_gate: GateChoice,
    /// Deploy over the out-of-band changes the drift gate finds (the report says so).
    #[arg(long)]
    accept_drift: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum GateChoice {
    Off,
    Protected,
    All,
}

impl GateArgs {
    /// `options` with the gate's settings.
    pub fn apply(&self, options: PlanOptions) -> PlanOptions {
        options
            .with_drift_gate(match self.drift_gate {
                GateChoice::Off => deploy::DriftGate::Off,
                GateChoice::Protected => deploy::DriftGate::Protected,
                GateChoice::All => deploy::DriftGate::All,
            })
            .with_accept_drift(self.accept_drift)
    }
}

pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let (selected, targets) = select::targets(
        g,
        &args.select,
        &args.environments,
        args.from_detect.as_deref(),
        "deploy",
        &args.aws,
    )?;
    let Some(head_id) = selected.head_id else {
        eprintln!("nothing to deploy: the branch was deleted");
        return Ok(ExitCode::SUCCESS);
    };
    let head = head_id.to_string();
    let head_tree = GitTree::new(selected.repo.clone(), head_id, &selected.prefix)?;
    let head_model = super::load_valid(&head_tree)?;
    let repo_id = head_model.owner_id()?.to_string();
    let mut desired: Vec<Desired> = Vec::new();
    for t in &targets {
        // A deleted environment needs no template: its stacks are only deleted.
        let d = deploy::desired(&head_model, &head_tree, t, &head)
            .with_context(|| format!("environment `{}`", t.name))?;
        desired.push(d);
    }
    if desired.is_empty() {
        eprintln!("nothing to deploy: no environment was created, updated or deleted");
    }
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let color = g.color;
    let history = Arc::new(gitops_core::deploy::GitSecretHistory::new(
        &selected.repo,
        &selected.prefix,
        selected.base.as_deref(),
    ));
    let skipped = selected.detection.skipped.clone();
    let (outcomes, interrupt) = rt.block_on(async {
        let interrupt = crate::interrupt::Interrupt::watch(
            "starting nothing new, deleting the change sets not executed; stack operations already executing go on in AWS",
        );
        let factory = crate::aws::factory(&args.aws).await;
        let progress = Arc::new(move |env: &str, line: &str| {
            eprintln!("{} {line}", paint(&format!("[{env}]"), "36", color));
        });
        let options = ExecutorOptions::new()
            .with_timeout(Duration::from_secs(args.timeout))
            .with_poll(poll_interval(&args.aws))
            .with_wait_pipeline(args.wait || !args.no_wait)
            .with_dry_run(args.dry_run)
            .with_plan(
                args.gate.apply(
                    PlanOptions::new()
                        .with_allow_delete(args.allow_delete)
                        .with_adopt(args.adopt)
                        .with_max_deletions(args.max_deletions),
                ),
            );
        let exec = Executor::new(Arc::new(factory), progress, repo_id, options)
            .with_template_bucket(head_model.config.stack.template_bucket.clone())
            .with_cancel(interrupt.token())
            .with_secret_history(history.clone())
            .with_deployed_history(history)
            .with_drift_ignore(head_model.config.drift.ignore.clone());
        let outcomes = Arc::new(exec).run_all(desired, args.concurrency).await;
        (outcomes, interrupt)
    });
    let interrupted = interrupt.exit_code();
    let report =
        RunReport::new(head, args.dry_run, interrupted.is_some(), outcomes).with_skipped(skipped);
    let markdown = report.render_markdown();
    match g.format {
        Format::Json => print_json(&report)?,
        Format::Markdown => print!("{markdown}"),
        Format::Text => print!("{}", report.render_text(g.color)),
    }
    if std::env::var_os("GITHUB_OUTPUT").is_some() {
        github::write_outputs(&[
            ("result", report.result.to_string()),
            ("summary", serde_json::to_string(&report.summary())?),
        ])?;
    }
    github::append_summary(&markdown)?;
    if let Some(code) = interrupted {
        return Ok(code);
    }
    Ok(ExitCode::from(report.exit_code()))
}

/// Polls fast against a local emulator, politely against AWS.
pub(crate) fn poll_interval(aws: &AwsArgs) -> Duration {
    if aws.is_local() {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(5)
    }
}
