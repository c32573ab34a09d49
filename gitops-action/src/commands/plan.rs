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
use gitops_core::deploy::{self, Executor, ExecutorOptions, PlanOptions};
use gitops_core::plan::{
    self as core_plan, preview_all, Base, EnvInput, EnvPreview, Plan, COMMENT_LIMIT, MARKER,
};
use gitops_core::{git, GitTree, Repository};

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
    let history = Arc::new(gitops_core::deploy::GitSecretHistory::new(
        &selected.repo,
        &selected.prefix,
        selected.base.as_deref(),
    ));
    let mut inputs = Vec::new();
    let mut repo_id = String::new();
    let mut template_bucket = None;
    let mut drift_ignore = Vec::new();
    if let Some(head_id) = selected.head_id {
        let head = head_id.to_string();
        let head_tree = GitTree::new(selected.repo.clone(), head_id, &selected.prefix)?;
        let head_model = super::load_valid(&head_tree)?;
        repo_id = match head_model.owner_id() {
            Ok(id) => id.to_string(),
            // Without AWS the guess needs no id; with it, change sets are
            // made and stacks' ownership read: only with an id.
            Err(_) if args.no_aws => "(no id)".to_string(),
            Err(e) => return Err(e.into()),
        };
        template_bucket.clone_from(&head_model.config.stack.template_bucket);
        drift_ignore.clone_from(&head_model.config.drift.ignore);
        let base = match &selected.base {
            Some(b) if b != select::DEPLOYED => {
                load_base(&selected.repo, b, &selected.prefix, g.color)
            }
            _ => None,
        };
        // --base deployed: each environment against its own deployed commit.
        let mut deployed = std::collections::BTreeMap::new();
        for c in targets.iter().filter_map(|t| t.base.clone().flatten()) {
            if !deployed.contains_key(&c) && git::known_commit(&selected.repo, &c).is_some() {
                let model = load_base(&selected.repo, &c, &selected.prefix, g.color);
                deployed.insert(c, model);
            }
        }
        for t in &targets {
            let own = match t.base.as_ref() {
                Some(Some(c)) => deployed.get(c).and_then(Option::as_ref),
                Some(None) => None,
                None => base.as_ref(),
            };
            inputs.push(
                EnvInput::gather(&head_model, &head_tree, &head, own, t)
                    .with_context(|| format!("environment `{}`", t.name))?,
            );
        }
    }

    let mut failed = 0;
    let mut previews: Vec<EnvPreview> = if args.no_aws {
        inputs.iter().map(|i| i.guess(&repo_id, options)).collect()
    } else if inputs.is_empty() {
        Vec::new()
    } else {
        let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        match rt.block_on(observe_all(
            &args,
            g.color,
            &repo_id,
            template_bucket,
            options,
            inputs,
            (history, drift_ignore),
        ))? {
            Ok((p, f)) => {
                failed = f;
                p
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
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else if args.exit_code && plan.has_changes {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The model at the base revision, for value changes and diffs; `None`
/// (with a warning, unless it simply has no gitops.yaml) when unreadable.
fn load_base(repo: &gix::Repository, base: &str, prefix: &str, color: bool) -> Option<Base> {
    let id = gix::ObjectId::from_hex(base.as_bytes()).ok()?;
    let tree = match GitTree::new(repo.clone(), id, prefix) {
        Ok(t) => t,
        Err(e) => {
            github::warning(&format!("cannot read the base revision {base}: {e}"), color);
            return None;
        }
    };
    match Repository::load(&tree) {
        Ok(m) => Some((m, tree, base.to_string())),
        Err(gitops_core::Error::NoConfig(_)) => None,
        Err(e) => {
            github::warning(
                &format!("cannot load the repository at the base revision {base} ({e}); value changes and diffs are shown against nothing"),
                color,
            );
            None
        }
    }
}

/// Plans every environment against AWS and previews it, `--concurrency` at
/// a time per account and region. `Err(exit code)` when interrupted (after
/// the preview change sets were deleted).
async fn observe_all(
    args: &Args,
    color: bool,
    repo_id: &str,
    template_bucket: Option<String>,
    options: PlanOptions,
    inputs: Vec<EnvInput>,
    (history, drift_ignore): (Arc<gitops_core::deploy::GitSecretHistory>, Vec<String>),
) -> anyhow::Result<Result<(Vec<EnvPreview>, usize), ExitCode>> {
    let interrupt =
        crate::interrupt::Interrupt::watch("deleting the preview's change sets before exiting");
    let token = interrupt.token();
    let factory = crate::aws::factory(&args.aws).await;
    let progress = Arc::new(move |env: &str, line: &str| {
        eprintln!("{} {line}", paint(&format!("[{env}]"), "36", color));
    });
    let exec_options = ExecutorOptions::new()
        .with_timeout(Duration::from_secs(args.timeout))
        .with_poll(super::deploy::poll_interval(&args.aws))
        .with_plan(options);
    let exec = Arc::new(
        Executor::new(Arc::new(factory), progress, repo_id, exec_options)
            .with_template_bucket(template_bucket)
            .with_cancel(token.clone())
            .with_deployed_history(history)
            .with_drift_ignore(drift_ignore),
    );
    let (previews, failures) = preview_all(
        exec.clone(),
        repo_id,
        options,
        args.concurrency,
        token,
        inputs,
    )
    .await;
    if let Some(code) = interrupt.exit_code() {
        let failures = exec.cleanup_previews().await;
        for f in &failures {
            eprintln!("error: {f}");
        }
        if failures.is_empty() {
            eprintln!("no change set was left behind");
        }
        return Ok(Err(code));
    }
    if exec.pending_previews() > 0 {
        for f in exec.cleanup_previews().await {
            eprintln!("error: {f}");
        }
    }
    for (name, e) in &failures {
        eprintln!("error: the plan of `{name}` failed: {e}");
    }
    Ok(Ok((previews, failures.len())))
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
