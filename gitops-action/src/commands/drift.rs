//! `gitops drift`: `status` plus the deep checks — what git wants against
//! what is deployed, orphan stacks, and CloudFormation resource drift — with
//! the exit codes of `terraform plan -detailed-exitcode`, GitHub issues, a
//! chat notification and, where allowed, self-healing.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gitops_core::drift::Remediation;
use gitops_core::report::{issue_actions, DriftReport, IssueAction, OpenIssue, ISSUE_LABEL};
use gitops_core::status::{drift, DriftRequest};

use super::status::{self, ScopeArgs};
use crate::aws::AwsArgs;
use crate::github_api::GitHub;
use crate::output::paint;
use crate::{github, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    scope: ScopeArgs,
    /// Only compare git with the deployed stacks (template, parameters,
    /// tags, existence) and look for orphans: no CloudFormation drift
    /// detection, so it is fast and needs no drift-detection API.
    #[arg(long)]
    skip_resource_drift: bool,
    /// Seconds one stack's drift detection may take.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    drift_timeout: u64,
    /// Keep one GitHub issue (label `drift`) per drifted environment: open
    /// it, update its body, close it once back in sync. Needs GITHUB_TOKEN
    /// (with `issues: write`) and GITHUB_REPOSITORY.
    #[arg(long)]
    open_issues: bool,
    /// Post a short summary to this Slack or Microsoft Teams incoming
    /// webhook when anything is OutOfSync or Unknown. The URL is a secret:
    /// it is never printed.
    #[arg(
        long,
        value_name = "URL",
        env = "GITOPS_NOTIFY_URL",
        hide_env_values = true
    )]
    notify: Option<String>,
    /// Redeploy OutOfSync environments whose file sets `auto-remediate: true`
    /// (direct mode: update the stack; pipeline mode: start the pipeline),
    /// at most once per commit, never when Degraded or Progressing, never
    /// by deleting.
    #[arg(long)]
    remediate: bool,
    /// Seconds a remediation's deployment may take.
    #[arg(long, default_value_t = 1800, value_name = "SECONDS")]
    timeout: u64,
    /// Also write the status board, one self-contained HTML page, to FILE
    /// (for a workflow artifact or GitHub Pages).
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
    #[command(flatten)]
    aws: AwsArgs,
}

pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let notify = match args.notify.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
            // Never printed, whatever echoes it.
            crate::output::add_secret(u);
            Some(u.to_string())
        }
        Some(_) => {
            anyhow::bail!("--notify (or GITOPS_NOTIFY_URL) must be an http(s) incoming-webhook URL")
        }
    };
    let p = status::prepare(g, &args.scope)?;
    if args.remediate {
        // Remediation changes AWS: only with an id to tag stacks with.
        p.model.owner_id()?;
    }
    let request = DriftRequest::new()
        .with_resource_drift(!args.skip_resource_drift)
        .with_drift_timeout(Duration::from_secs(args.drift_timeout))
        .with_concurrency(args.scope.concurrency)
        .with_local(args.aws.is_local());
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let color = g.color;
    let label = move |env: &str| paint(&format!("[{env}]"), "36", color);
    let (out, interrupt) = rt.block_on(async {
        let interrupt = args.remediate.then(|| {
            crate::interrupt::Interrupt::watch(
                "remediating nothing new, deleting the change sets not executed; stack operations already executing go on in AWS",
            )
        });
        let factory = Arc::new(crate::aws::factory(&args.aws).await);
        let mut exec = None;
        if args.remediate {
            let progress = Arc::new(move |env: &str, line: &str| eprintln!("{} {line}", label(env)));
            let timeout = Duration::from_secs(args.timeout);
            let e = p.remediator(factory.clone(), progress, timeout, request.local)?;
            exec = Some(match &interrupt {
                Some(i) => e.with_cancel(i.token()),
                None => e,
            });
        }
        let done = |env: &str, r: &Remediation| {
            eprintln!("{} remediation {}: {}", label(env), r.action, r.message);
        };
        let out = drift(&p, factory, &request, exec.as_ref(), done).await;
        anyhow::Ok((out, interrupt))
    })?;
    let (report, markdown) = (&out.report, out.markdown());
    let text = report.render_text(g.color);
    status::show(
        g,
        report,
        &text,
        &markdown,
        &out.board,
        args.html.as_deref(),
    )?;
    if std::env::var_os("GITHUB_OUTPUT").is_some() {
        github::write_outputs(&[
            ("in-sync", report.in_sync().to_string()),
            ("drifted", serde_json::to_string(&report.drifted())?),
        ])?;
    }
    let mut failed = false;
    if args.open_issues {
        if let Err(e) = sync_issues(report, &out.board.render_markdown()) {
            crate::output::print_error(&e.context("keeping the drift issues"), g.color);
            failed = true;
        }
    }
    if let (Some(url), true) = (&notify, report.should_notify()) {
        match post_webhook(url, &report.notify_text()) {
            Ok(host) => eprintln!("notified the webhook at {host}"),
            Err(e) => {
                crate::output::print_error(&anyhow::anyhow!(e), g.color);
                failed = true;
            }
        }
    }
    if let Some(code) = interrupt.as_ref().and_then(|i| i.exit_code()) {
        return Ok(code);
    }
    Ok(ExitCode::from(if failed { 1 } else { report.exit_code() }))
}

/// Carries out the drift-issue rules (`gitops_core::report::issue_actions`)
/// over the GitHub API.
fn sync_issues(r: &DriftReport, board: &str) -> anyhow::Result<()> {
    let gh = GitHub::from_env()?;
    let api = gh.settings();
    let open: Vec<OpenIssue> = gh
        .call(api.open_issues_with_label(ISSUE_LABEL))?
        .into_iter()
        .map(|i| OpenIssue {
            number: i.number,
            body: i.body,
        })
        .collect();
    let footer = gitops_core::report::issue_footer(|name| std::env::var(name).ok());
    let mut errors = Vec::new();
    for action in issue_actions(r, &open, board, &footer) {
        let result = match &action {
            IssueAction::UpToDate { env, number } => {
                eprintln!("drift issue #{number} for `{env}` is up to date");
                Ok(())
            }
            IssueAction::Update { env, number, body } => gh
                .call(api.update_issue_body(*number, body))
                .map(|()| eprintln!("updated drift issue #{number} for `{env}`")),
            IssueAction::Create { env, title, body } => gh
                .call(api.create_issue(title, body, &[ISSUE_LABEL]))
                .map(|i| eprintln!("opened drift issue #{} for `{env}` {}", i.number, i.url)),
            IssueAction::Close {
                env,
                number,
                comment,
            } => gh
                .call(api.comment(*number, comment))
                .and_then(|()| gh.call(api.close_issue(*number)))
                .map(|()| eprintln!("closed drift issue #{number} for `{env}`")),
            _ => Ok(()),
        };
        if let Err(e) = result {
            errors.push(format!("{}: {e}", action.env()));
        }
    }
    if !errors.is_empty() {
        anyhow::bail!("{}", errors.join("; "));
    }
    Ok(())
}

/// Posts `{"text": text}` to an incoming webhook (Slack and Microsoft Teams
/// both read `text`). Returns the host; errors never contain the URL.
fn post_webhook(url: &str, text: &str) -> Result<String, String> {
    let host = gitops_core::text::url_host(url)
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(15)))
        .user_agent("gitops-aws")
        .build()
        .into();
    match agent
        .post(url)
        .send_json(serde_json::json!({ "text": text }))
    {
        Ok(resp) if resp.status().is_success() => Ok(host),
        Ok(resp) => Err(format!(
            "the webhook at {host} answered HTTP {}",
            resp.status().as_u16()
        )),
        Err(e) => Err(format!(
            "the webhook at {host} could not be reached: {}",
            gitops_core::text::redact(&e.to_string(), &[url])
        )),
    }
}
