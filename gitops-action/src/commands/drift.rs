//! `gitops drift`: `status` plus the deep checks — what git wants against
//! what is deployed, orphan stacks, and CloudFormation resource drift — with
//! the exit codes of `terraform plan -detailed-exitcode`, GitHub issues, a
//! chat notification and, where allowed, self-healing.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gitops_core::board::{Board, BoardKind};
use gitops_core::deploy::inspect::{find_orphans, remediate, InspectOptions};
use gitops_core::deploy::{Executor, ExecutorOptions};
use gitops_core::drift::{EnvDrift, Sync};
use serde::Serialize;

use super::status::{self, cell, health_word, sync_word, version_cell, Prepared, ScopeArgs};
use crate::aws::AwsArgs;
use crate::github_api::GitHub;
use crate::output::{paint, print_json};
use crate::{github, Format, Globals};

/// The label of drift issues.
pub const LABEL: &str = "drift";

/// The longest board an issue body carries (GitHub takes 65,536 characters).
const BOARD_IN_ISSUE_MAX: usize = 40_000;

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

#[derive(Serialize)]
struct Report<'a> {
    commit: &'a str,
    in_sync: bool,
    /// Whether drift detection ran to completion on every existing stack.
    resource_drift_checked: bool,
    #[serde(skip)]
    skipped_resource_drift: bool,
    environments: &'a [EnvDrift],
    orphans: &'a [String],
    orphans_error: Option<&'a str>,
}

impl Report<'_> {
    fn count(&self, s: Sync) -> usize {
        self.environments
            .iter()
            .filter(|e| e.status.sync == s)
            .count()
    }
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
    let (first, longest) = status::drift_poll(&args.aws);
    let options = InspectOptions::new()
        .with_resource_drift(!args.skip_resource_drift)
        .with_poll(first, longest)
        .with_timeout(Duration::from_secs(args.drift_timeout))
        .with_ignore(p.model.config.drift.ignore.clone());
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let color = g.color;
    let (mut drifts, orphans, interrupt) = rt.block_on(async {
        let interrupt = args.remediate.then(|| {
            crate::interrupt::Interrupt::watch(
                "remediating nothing new, deleting the change sets not executed; stack operations already executing go on in AWS",
            )
        });
        let factory = Arc::new(crate::aws::factory(&args.aws).await);
        let drifts = status::inspect(
            &p,
            factory.clone(),
            options,
            args.scope.concurrency,
            status::is_local(&args.aws),
        )
        .await;
        let orphans = orphan_check(&p, factory.as_ref()).await;
        let mut drifts = drifts;
        if args.remediate {
            let progress = Arc::new(move |env: &str, line: &str| {
                eprintln!("{} {line}", paint(&format!("[{env}]"), "36", color));
            });
            let exec = Executor::new(
                factory,
                progress,
                p.model.id.clone().unwrap_or_default(),
                ExecutorOptions::new()
                    .with_timeout(Duration::from_secs(args.timeout))
                    .with_poll(if status::is_local(&args.aws) {
                        Duration::from_millis(200)
                    } else {
                        Duration::from_secs(5)
                    }),
            )
            .with_template_bucket(p.model.config.stack.template_bucket.clone());
            let exec = match &interrupt {
                Some(i) => exec.with_cancel(i.token()),
                None => exec,
            };
            for d in drifts
                .iter_mut()
                .filter(|d| d.status.sync == Sync::OutOfSync)
            {
                let Some(desired) = p
                    .desired
                    .iter()
                    .find(|x| x.environment.name == d.status.name)
                else {
                    continue;
                };
                if exec.is_cancelled() {
                    break;
                }
                let r = remediate(&exec, desired, d, &p.head).await;
                eprintln!(
                    "{} remediation {}: {}",
                    paint(&format!("[{}]", d.status.name), "36", color),
                    r.action,
                    r.message
                );
                d.remediation = Some(r);
            }
        }
        (drifts, orphans, interrupt)
    });
    drifts.sort_by(|a, b| a.status.name.cmp(&b.status.name));
    let (orphan_list, orphans_error) = match orphans {
        Ok(o) => (o, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let in_sync = orphans_error.is_none()
        && orphan_list.is_empty()
        && drifts.iter().all(|d| d.status.sync == Sync::Synced);
    let report = Report {
        commit: &p.head,
        in_sync,
        resource_drift_checked: !args.skip_resource_drift
            && drifts
                .iter()
                .all(|d| d.resource_drift_checked || d.status.stack_status.is_none()),
        skipped_resource_drift: args.skip_resource_drift,
        environments: &drifts,
        orphans: &orphan_list,
        orphans_error: orphans_error.as_deref(),
    };
    let board = status::board_of(&p, drifts.clone(), BoardKind::Drift)
        .with_orphans(orphan_list.clone(), orphans_error.clone())
        .with_notes(unchecked_note(&report).into_iter().collect());
    let markdown = render_markdown(&report, &p, &board);
    match g.format {
        _ if g.html => print!("{}", board.render_html()),
        Format::Json => print_json(&report)?,
        Format::Markdown => print!("{markdown}"),
        Format::Text => print!("{}", render_text(&report, &p, g.color)),
    }
    github::append_summary(&markdown)?;
    if let Some(path) = &args.html {
        status::write_board(path, &board)?;
    }
    if std::env::var_os("GITHUB_OUTPUT").is_some() {
        let drifted: Vec<&str> = drifts
            .iter()
            .filter(|d| d.status.sync == Sync::OutOfSync)
            .map(|d| d.status.name.as_str())
            .collect();
        github::write_outputs(&[
            ("in-sync", in_sync.to_string()),
            ("drifted", serde_json::to_string(&drifted)?),
        ])?;
    }
    let mut failed = false;
    if args.open_issues {
        if let Err(e) = sync_issues(&report, &board) {
            crate::output::print_error(&e.context("keeping the drift issues"), g.color);
            failed = true;
        }
    }
    if let Some(url) = &notify {
        let worth = report.count(Sync::OutOfSync) + report.count(Sync::Unknown) > 0
            || !orphan_list.is_empty()
            || orphans_error.is_some();
        if worth {
            match post_webhook(url, &notify_text(&report, &p)) {
                Ok(host) => eprintln!("notified the webhook at {host}"),
                Err(e) => {
                    crate::output::print_error(&anyhow::anyhow!(e), g.color);
                    failed = true;
                }
            }
        }
    }
    if let Some(code) = interrupt.as_ref().and_then(|i| i.exit_code()) {
        return Ok(code);
    }
    let errors = failed
        || report.orphans_error.is_some()
        || drifts.iter().any(|d| {
            d.status.sync == Sync::Unknown
                || d.remediation.as_ref().is_some_and(|r| r.action == "failed")
        });
    let drifted = !in_sync;
    Ok(ExitCode::from(if errors {
        1
    } else if drifted {
        2
    } else {
        0
    }))
}

/// Orphans in every region (and role) the repository's environments use.
async fn orphan_check(
    p: &Prepared,
    factory: &dyn gitops_core::aws::ClientFactory,
) -> Result<Vec<String>, String> {
    let mut locations: Vec<(String, Option<String>)> = Vec::new();
    let mut declared = Vec::new();
    for e in &p.model.environments {
        let loc = (e.region.clone(), e.role_arn.clone());
        if !locations.contains(&loc) {
            locations.push(loc);
        }
        declared.push(e.stack.clone());
        declared.extend(e.pipeline_stack.clone());
    }
    let default = (p.model.config.defaults.region.clone(), None);
    if !locations.contains(&default) {
        locations.push(default);
    }
    let id = p.model.owner_id().map_err(|e| e.to_string())?;
    find_orphans(factory, id, &locations, &declared)
        .await
        .map_err(|e| format!("looking for orphan stacks: {e}"))
}

fn short(s: &str) -> &str {
    gitops_core::text::short_commit(s)
}

fn remediation_line(d: &EnvDrift) -> Option<String> {
    d.remediation
        .as_ref()
        .map(|r| format!("remediation {}: {}", r.action, r.message))
}

fn render_text(r: &Report<'_>, p: &Prepared, color: bool) -> String {
    let mut out = String::new();
    let rows: Vec<[String; 6]> = r
        .environments
        .iter()
        .map(|d| {
            [
                d.status.name.clone(),
                sync_word(d.status.sync, color),
                health_word(d.status.health, color),
                version_cell(&d.status.git_version),
                version_cell(&d.status.deployed_version),
                d.status.stack_status.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.push_str(&crate::output::table(
            &[
                "ENVIRONMENT",
                "SYNC",
                "HEALTH",
                "GIT",
                "DEPLOYED",
                "STACK STATUS",
            ],
            &rows,
        ));
    }
    for d in r.environments {
        let interesting = d.status.sync != Sync::Synced
            || d.remediation.is_some()
            || d.resource_drifts.iter().any(|x| !x.is_drift());
        if !interesting {
            continue;
        }
        out.push_str(&format!(
            "\n{}: {}",
            d.status.name,
            sync_word(d.status.sync, color)
        ));
        if let Some(e) = &d.status.error {
            out.push_str(&format!(": {e}"));
        }
        out.push('\n');
        for reason in &d.reasons {
            out.push_str(&format!("  {reason}\n"));
        }
        for x in d.resource_drifts.iter().filter(|x| !x.is_drift()) {
            out.push_str(&format!(
                "  not checked: {} ({}) {}\n",
                x.logical_id, x.resource_type, x.status
            ));
        }
        if let Some(line) = remediation_line(d) {
            out.push_str(&format!("  {line}\n"));
        }
    }
    if !r.orphans.is_empty() {
        out.push_str(&format!(
            "\norphan stacks (tagged gitops:managed-by={}, declared by no environment):\n",
            p.model.id.as_deref().unwrap_or_default()
        ));
        for o in r.orphans {
            out.push_str(&format!("  {o}\n"));
        }
    }
    if let Some(e) = r.orphans_error {
        out.push_str(&format!("\n{e}\n"));
    }
    out.push('\n');
    if let Some(note) = unchecked_note(r) {
        out.push_str(&format!("{note}\n"));
    }
    out.push_str(&format!(
        "{} environment(s) at {}: {} in sync, {} out of sync, {} unknown; {} orphan stack(s)\n",
        r.environments.len(),
        short(r.commit),
        r.count(Sync::Synced),
        r.count(Sync::OutOfSync),
        r.count(Sync::Unknown),
        r.orphans.len()
    ));
    out
}

fn render_markdown(r: &Report<'_>, p: &Prepared, board: &Board) -> String {
    let verdict = if r.in_sync { "in sync" } else { "drift found" };
    let mut out = format!("### gitops drift at `{}`: {verdict}\n\n", short(r.commit));
    out.push_str(&board.render_markdown());
    for d in r.environments.iter().filter(|d| d.remediation.is_some()) {
        if let Some(line) = remediation_line(d) {
            out.push_str(&format!("\n**{}**: {}\n", d.status.name, cell(&line)));
        }
    }
    if !r.orphans.is_empty() {
        out.push_str(&format!(
            "\nOrphan stacks (tagged `gitops:managed-by={}`, declared by no environment): {}\n",
            p.model.id.as_deref().unwrap_or_default(),
            r.orphans
                .iter()
                .map(|o| format!("`{o}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(e) = r.orphans_error {
        out.push_str(&format!("\n{}\n", cell(e)));
    }
    if let Some(note) = unchecked_note(r) {
        out.push_str(&format!("\n{}.\n", capitalise(&note)));
    }
    out
}

/// Says where resource drift was not checked, if anywhere.
fn unchecked_note(r: &Report<'_>) -> Option<String> {
    if r.skipped_resource_drift {
        return Some("resource drift was not checked (--skip-resource-drift)".into());
    }
    let unchecked: Vec<&str> = r
        .environments
        .iter()
        .filter(|d| !d.resource_drift_checked && d.status.stack_status.is_some())
        .map(|d| d.status.name.as_str())
        .collect();
    (!unchecked.is_empty()).then(|| {
        format!(
            "resource drift was not checked in {} (a busy stack, or an error above)",
            unchecked.join(", ")
        )
    })
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The hidden marker that identifies an environment's drift issue.
pub fn marker(env: &str) -> String {
    format!("<!-- gitops-drift:{env} -->")
}

fn issue_title(env: &str) -> String {
    format!("Drift: environment `{env}` is out of sync with git")
}

fn issue_body(d: &EnvDrift, r: &Report<'_>, board: &Board) -> String {
    let s = &d.status;
    let mut body = format!(
        "{}\n**{}** is **{}** with git at commit `{}` (stack `{}`, {}, health {}).\n\n",
        marker(&s.name),
        s.name,
        s.sync,
        short(r.commit),
        s.stack,
        s.region,
        s.health
    );
    for reason in &d.reasons {
        body.push_str(&format!("- {}\n", reason.message));
    }
    if let Some(e) = &s.error {
        body.push_str(&format!("\nThe check was incomplete: {e}\n"));
    }
    if !d.resource_drift_checked {
        body.push_str("\nResource drift was not checked.\n");
    }
    body.push_str(&format!(
        "\nRedeploy what git says with `gitops deploy --environment {}`, or change git to match what runs. `gitops drift --open-issues` updates this issue on each run and closes it once the environment is back in sync.\n",
        s.name
    ));
    // Every environment, compact; left out where it would make the body too long.
    let all = board.render_markdown();
    if all.len() <= BOARD_IN_ISSUE_MAX {
        body.push_str(&format!("\n#### All environments\n\n{all}"));
    }
    if let (Ok(server), Ok(repo), Ok(run)) = (
        std::env::var("GITHUB_SERVER_URL"),
        std::env::var("GITHUB_REPOSITORY"),
        std::env::var("GITHUB_RUN_ID"),
    ) {
        body.push_str(&format!(
            "\nLast checked by [this run]({server}/{repo}/actions/runs/{run}).\n"
        ));
    }
    body
}

/// One issue per OutOfSync environment: found by its marker among the open
/// issues labelled `drift`, updated when its body changed, created when
/// missing; closed with a comment once the environment is Synced. Unknown
/// environments' issues are left as they are.
fn sync_issues(r: &Report<'_>, board: &Board) -> anyhow::Result<()> {
    let gh = GitHub::from_env()?;
    let open = gh.open_issues_with_label(LABEL)?;
    let mut errors = Vec::new();
    for d in r.environments {
        let m = marker(&d.status.name);
        let existing = open.iter().find(|i| i.body.contains(&m));
        let result = match (d.status.sync, existing) {
            (Sync::OutOfSync, Some(i)) => {
                let body = issue_body(d, r, board);
                if i.body.trim() == body.trim() {
                    eprintln!(
                        "drift issue #{} for `{}` is up to date",
                        i.number, d.status.name
                    );
                    Ok(())
                } else {
                    gh.update_issue_body(i.number, &body).map(|()| {
                        eprintln!("updated drift issue #{} for `{}`", i.number, d.status.name)
                    })
                }
            }
            (Sync::OutOfSync, None) => gh
                .create_issue(
                    &issue_title(&d.status.name),
                    &issue_body(d, r, board),
                    &[LABEL],
                )
                .map(|i| {
                    eprintln!(
                        "opened drift issue #{} for `{}` {}",
                        i.number, d.status.name, i.url
                    )
                }),
            (Sync::Synced, Some(i)) => gh
                .post(
                    &format!("/repos/{}/issues/{}/comments", gh.repo(), i.number),
                    &serde_json::json!({"body": format!(
                        "`{}` is back in sync with git at commit `{}`. Closing.",
                        d.status.name,
                        short(r.commit)
                    )}),
                )
                .and_then(|_| gh.close_issue(i.number))
                .map(|()| eprintln!("closed drift issue #{} for `{}`", i.number, d.status.name)),
            _ => Ok(()),
        };
        if let Err(e) = result {
            errors.push(format!("{}: {e}", d.status.name));
        }
    }
    if !errors.is_empty() {
        anyhow::bail!("{}", errors.join("; "));
    }
    Ok(())
}

/// The chat message: one line per environment that is not in sync.
fn notify_text(r: &Report<'_>, p: &Prepared) -> String {
    let mut out = format!(
        "gitops drift ({} at {}): {} out of sync, {} unknown, {} in sync",
        p.model.id.as_deref().unwrap_or("no id"),
        short(r.commit),
        r.count(Sync::OutOfSync),
        r.count(Sync::Unknown),
        r.count(Sync::Synced)
    );
    if !r.orphans.is_empty() {
        out.push_str(&format!(", {} orphan stack(s)", r.orphans.len()));
    }
    out.push('\n');
    for d in r
        .environments
        .iter()
        .filter(|d| d.status.sync != Sync::Synced)
    {
        let detail = match (&d.status.error, d.reasons.as_slice()) {
            (Some(e), []) => e.clone(),
            (_, reasons) => {
                let mut s = reasons
                    .iter()
                    .take(3)
                    .map(|x| x.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
                if reasons.len() > 3 {
                    s.push_str(&format!("; and {} more", reasons.len() - 3));
                }
                s
            }
        };
        out.push_str(&format!(
            "• {}: {} — {detail}\n",
            d.status.name, d.status.sync
        ));
    }
    if !r.orphans.is_empty() {
        out.push_str(&format!("• orphan stacks: {}\n", r.orphans.join(", ")));
    }
    if let Some(e) = r.orphans_error {
        out.push_str(&format!("• {e}\n"));
    }
    out
}

/// The host of a URL, without credentials, port or path: what may be shown.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    host.split(':').next().unwrap_or_default().to_string()
}

/// Removes every trace of `url` (whole, or its path and query) from `text`.
pub fn redact(text: &str, url: &str) -> String {
    gitops_core::text::redact(text, &[url])
}

/// Posts `{"text": text}` to an incoming webhook (Slack and Microsoft Teams
/// both read `text`). Returns the host; errors never contain the URL.
fn post_webhook(url: &str, text: &str) -> Result<String, String> {
    let host = host_of(url);
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
            redact(&e.to_string(), url)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_never_shown() {
        let url = "https://hooks.slack.com/services/T000/B000/secretpart";
        assert_eq!(host_of(url), "hooks.slack.com");
        assert_eq!(host_of("http://user:pw@127.0.0.1:8080/x?y"), "127.0.0.1");
        let msg = format!("io: failed to connect to {url}");
        assert_eq!(redact(&msg, url), "io: failed to connect to <redacted>");
        let msg = "GET /services/T000/B000/secretpart failed";
        assert!(!redact(msg, url).contains("secretpart"));
    }

    #[test]
    fn markers_are_exact() {
        assert_eq!(marker("dev"), "<!-- gitops-drift:dev -->");
        assert!(!marker("dev2").contains(&marker("dev")));
    }
}
