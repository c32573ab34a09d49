//! The reports of `gitops status`, `gitops drift` and `gitops deploy`
//! ([`RunReport`]) as data, with their
//! exit codes, renderers (text, markdown, JSON through `Serialize`), the
//! chat notification and the drift-issue rules. The CLI only gathers the
//! rows, prints and carries the [`IssueAction`]s out over HTTP.
//!
//! ```
//! use gitops_core::report::{issue_actions, IssueAction, OpenIssue, DriftReport};
//!
//! let report = DriftReport::new("0123456789abcdef", None, Vec::new());
//! assert!(report.in_sync());
//! assert_eq!(report.exit_code(), 0);
//! let open = [OpenIssue { number: 7, body: "<!-- gitops-drift:gone -->".into() }];
//! // An issue of an environment no longer reported is left alone.
//! assert!(issue_actions(&report, &open, "", "").is_empty());
//! ```

use serde::Serialize;

mod detect;
pub use detect::DetectReport;

use crate::deploy::{EnvOutcome, Outcome};
use crate::drift::{EnvDrift, EnvStatus, Health, RemediationAction, Sync};
use crate::markdown::cell;
use crate::render::{paint, table};
use crate::text::short_commit;

/// `sync` in colour.
pub fn sync_word(s: Sync, color: bool) -> String {
    let code = match s {
        Sync::Synced => "32",
        Sync::OutOfSync => "1;33",
        _ => "1;31",
    };
    paint(&s.to_string(), code, color)
}

/// `health` in colour.
pub fn health_word(h: Health, color: bool) -> String {
    let code = match h {
        Health::Healthy => "32",
        Health::Progressing => "36",
        Health::Missing => "33",
        _ => "1;31",
    };
    paint(&h.to_string(), code, color)
}

/// The report of `gitops status`: one row per environment.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The commit git says should run.
    pub commit: String,
    /// The rows, by name.
    #[serde(serialize_with = "statuses")]
    pub environments: Vec<EnvDrift>,
}

fn statuses<S: serde::Serializer>(e: &[EnvDrift], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(e.iter().map(|d| &d.status))
}

impl StatusReport {
    /// 1 when a row's task failed or no row could be read (no credentials,
    /// no network), else 0, whatever the rows say.
    pub fn exit_code(&self) -> u8 {
        let rows = &self.environments;
        let none_read = !rows.is_empty() && rows.iter().all(|d| d.status.sync == Sync::Unknown);
        u8::from(none_read || rows.iter().any(|d| d.failed))
    }

    /// The text table and a summary line.
    pub fn render_text(&self, color: bool) -> String {
        let rows: Vec<[String; 9]> = self
            .environments
            .iter()
            .map(|d| {
                let s = &d.status;
                [
                    s.name.clone(),
                    crate::board::version_text(&s.git_version),
                    crate::board::version_text(&s.deployed_version),
                    crate::text::short_commit_or(s.commit.as_deref(), "-").to_string(),
                    match s.pending {
                        Some(true) => "yes",
                        Some(false) => "no",
                        None => "-",
                    }
                    .to_string(),
                    s.stack_status.clone().unwrap_or_else(|| "-".into()),
                    crate::board::pipeline_text(s),
                    sync_word(s.sync, color),
                    health_word(s.health, color),
                ]
            })
            .collect();
        if rows.is_empty() {
            return "no environments\n".into();
        }
        let mut out = table(
            &[
                "ENVIRONMENT",
                "GIT",
                "DEPLOYED",
                "COMMIT",
                "PENDING",
                "STACK STATUS",
                "PIPELINE",
                "SYNC",
                "HEALTH",
            ],
            &rows,
        );
        let statuses: Vec<&EnvStatus> = self.environments.iter().map(|d| &d.status).collect();
        for s in &statuses {
            if let Some(e) = &s.error {
                out.push_str(&format!("{}: {e}\n", s.name));
            }
        }
        let count = |want: Sync| statuses.iter().filter(|s| s.sync == want).count();
        out.push_str(&format!(
            "{} environment(s) at {}: {} synced, {} out of sync, {} unknown\n",
            statuses.len(),
            short_commit(&self.commit),
            count(Sync::Synced),
            count(Sync::OutOfSync),
            count(Sync::Unknown),
        ));
        out
    }

    /// The step summary: the board's markdown (`board`) and the errors.
    pub fn render_markdown(&self, board: &str) -> String {
        let mut out = format!(
            "### gitops status at `{}`\n\n{board}",
            short_commit(&self.commit)
        );
        for s in self.environments.iter().map(|d| &d.status) {
            if let Some(e) = &s.error {
                out.push_str(&format!("\n**{}**: {}\n", s.name, cell(e)));
            }
        }
        out
    }
}

/// The report of `gitops drift`.
#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    /// The commit git says should run.
    pub commit: String,
    /// The repository's id (`gitops:managed-by`), if any.
    #[serde(skip)]
    pub repository_id: Option<String>,
    /// Whether every environment is Synced and there is no orphan.
    in_sync: bool,
    /// Whether drift detection ran to completion on every existing stack.
    resource_drift_checked: bool,
    /// `--skip-resource-drift`.
    #[serde(skip)]
    pub skipped_resource_drift: bool,
    /// The environments, by name.
    pub environments: Vec<EnvDrift>,
    /// Stacks tagged with this id that no environment declares.
    pub orphans: Vec<String>,
    /// Why the orphans could not be listed.
    pub orphans_error: Option<String>,
}

impl DriftReport {
    /// A report of `environments` (sorted by name here), with no orphans.
    pub fn new(
        commit: impl Into<String>,
        repository_id: Option<String>,
        mut environments: Vec<EnvDrift>,
    ) -> Self {
        environments.sort_by(|a, b| a.status.name.cmp(&b.status.name));
        let mut r = Self {
            commit: commit.into(),
            repository_id,
            in_sync: false,
            resource_drift_checked: false,
            skipped_resource_drift: false,
            environments,
            orphans: Vec::new(),
            orphans_error: None,
        };
        r.update();
        r
    }

    /// With the orphan stacks found, or why they could not be listed.
    pub fn with_orphans(mut self, orphans: Result<Vec<String>, String>) -> Self {
        match orphans {
            Ok(o) => self.orphans = o,
            Err(e) => self.orphans_error = Some(e),
        }
        self.update();
        self
    }

    /// With `--skip-resource-drift` recorded.
    pub fn with_skipped_resource_drift(mut self, skipped: bool) -> Self {
        self.skipped_resource_drift = skipped;
        self.update();
        self
    }

    fn update(&mut self) {
        self.in_sync = self.orphans_error.is_none()
            && self.orphans.is_empty()
            && self
                .environments
                .iter()
                .all(|d| d.status.sync == Sync::Synced);
        self.resource_drift_checked = !self.skipped_resource_drift
            && self
                .environments
                .iter()
                .all(|d| d.resource_drift_checked || d.status.stack_status.is_none());
    }

    /// Whether every environment is Synced and there is no orphan.
    pub fn in_sync(&self) -> bool {
        self.in_sync
    }

    /// How many environments are `sync`.
    pub fn count(&self, sync: Sync) -> usize {
        self.environments
            .iter()
            .filter(|e| e.status.sync == sync)
            .count()
    }

    /// The OutOfSync environments' names.
    pub fn drifted(&self) -> Vec<&str> {
        self.environments
            .iter()
            .filter(|d| d.status.sync == Sync::OutOfSync)
            .map(|d| d.status.name.as_str())
            .collect()
    }

    /// As `terraform plan -detailed-exitcode`: 1 on an error (an Unknown
    /// environment, orphans not listed, a failed remediation), else 2 on
    /// drift (OutOfSync or an orphan), else 0.
    pub fn exit_code(&self) -> u8 {
        let errors = self.orphans_error.is_some()
            || self.environments.iter().any(|d| {
                d.status.sync == Sync::Unknown
                    || d.remediation
                        .as_ref()
                        .is_some_and(|r| r.action == RemediationAction::Failed)
            });
        if errors {
            1
        } else if !self.in_sync {
            2
        } else {
            0
        }
    }

    /// Whether the chat notification is due: anything OutOfSync or
    /// Unknown, or orphans.
    pub fn should_notify(&self) -> bool {
        self.count(Sync::OutOfSync) + self.count(Sync::Unknown) > 0
            || !self.orphans.is_empty()
            || self.orphans_error.is_some()
    }

    /// Where resource drift was not checked, if anywhere.
    pub fn unchecked_note(&self) -> Option<String> {
        if self.skipped_resource_drift {
            return Some("resource drift was not checked (--skip-resource-drift)".into());
        }
        let unchecked: Vec<&str> = self
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

    fn id(&self) -> &str {
        self.repository_id.as_deref().unwrap_or_default()
    }

    /// The text report.
    pub fn render_text(&self, color: bool) -> String {
        let mut out = String::new();
        let rows: Vec<[String; 6]> = self
            .environments
            .iter()
            .map(|d| {
                [
                    d.status.name.clone(),
                    sync_word(d.status.sync, color),
                    health_word(d.status.health, color),
                    crate::board::version_text(&d.status.git_version),
                    crate::board::version_text(&d.status.deployed_version),
                    d.status.stack_status.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        if !rows.is_empty() {
            out.push_str(&table(
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
        for d in &self.environments {
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
            if let Some(r) = &d.remediation {
                out.push_str(&format!("  remediation {}: {}\n", r.action, r.message));
            }
        }
        if !self.orphans.is_empty() {
            out.push_str(&format!(
                "\norphan stacks (tagged gitops:managed-by={}, declared by no environment):\n",
                self.id()
            ));
            for o in &self.orphans {
                out.push_str(&format!("  {o}\n"));
            }
        }
        if let Some(e) = &self.orphans_error {
            out.push_str(&format!("\n{e}\n"));
        }
        out.push('\n');
        if let Some(note) = self.unchecked_note() {
            out.push_str(&format!("{note}\n"));
        }
        out.push_str(&format!(
            "{} environment(s) at {}: {} in sync, {} out of sync, {} unknown; {} orphan stack(s)\n",
            self.environments.len(),
            short_commit(&self.commit),
            self.count(Sync::Synced),
            self.count(Sync::OutOfSync),
            self.count(Sync::Unknown),
            self.orphans.len()
        ));
        out
    }

    /// The markdown report (step summary): a verdict, the board's markdown
    /// (`board`), remediations, orphans and notes.
    pub fn render_markdown(&self, board: &str) -> String {
        let verdict = if self.in_sync {
            "in sync"
        } else {
            "drift found"
        };
        let mut out = format!(
            "### gitops drift at `{}`: {verdict}\n\n{board}",
            short_commit(&self.commit)
        );
        for d in &self.environments {
            if let Some(r) = &d.remediation {
                let line = format!("remediation {}: {}", r.action, r.message);
                out.push_str(&format!("\n**{}**: {}\n", d.status.name, cell(&line)));
            }
        }
        if !self.orphans.is_empty() {
            let list: Vec<String> = self
                .orphans
                .iter()
                .map(|o| crate::markdown::code(o))
                .collect();
            out.push_str(&format!(
                "\nOrphan stacks (tagged `gitops:managed-by={}`, declared by no environment): {}\n",
                self.id(),
                list.join(", ")
            ));
        }
        if let Some(e) = &self.orphans_error {
            out.push_str(&format!("\n{}\n", cell(e)));
        }
        if let Some(note) = self.unchecked_note() {
            let mut c = note.chars();
            let note: String = c
                .next()
                .into_iter()
                .flat_map(char::to_uppercase)
                .chain(c)
                .collect();
            out.push_str(&format!("\n{note}.\n"));
        }
        out
    }

    /// The chat message: a summary line, then one line per environment
    /// that is not in sync.
    pub fn notify_text(&self) -> String {
        let mut out = format!(
            "gitops drift ({} at {}): {} out of sync, {} unknown, {} in sync",
            self.repository_id.as_deref().unwrap_or("no id"),
            short_commit(&self.commit),
            self.count(Sync::OutOfSync),
            self.count(Sync::Unknown),
            self.count(Sync::Synced)
        );
        if !self.orphans.is_empty() {
            out.push_str(&format!(", {} orphan stack(s)", self.orphans.len()));
        }
        out.push('\n');
        for d in self
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
        if !self.orphans.is_empty() {
            out.push_str(&format!("• orphan stacks: {}\n", self.orphans.join(", ")));
        }
        if let Some(e) = &self.orphans_error {
            out.push_str(&format!("• {e}\n"));
        }
        out
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Succeeded => "succeeded",
            Outcome::NoOp => "no-op",
            Outcome::Planned => "planned",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        })
    }
}

/// How a whole `gitops deploy` run ended (the step output `result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RunResult {
    /// Changes were made and every environment succeeded.
    Success,
    /// Nothing needed changing.
    NoOp,
    /// Only planned (`--dry-run`).
    Planned,
    /// An environment failed or was refused.
    Failure,
    /// The run was interrupted (Ctrl-C, SIGTERM).
    Interrupted,
}

impl std::fmt::Display for RunResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunResult::Success => "success",
            RunResult::NoOp => "no-op",
            RunResult::Planned => "planned",
            RunResult::Failure => "failure",
            RunResult::Interrupted => "interrupted",
        })
    }
}

/// The report of `gitops deploy`: every environment's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The head commit deployed.
    pub commit: String,
    /// `--dry-run`.
    pub dry_run: bool,
    /// How the run ended.
    pub result: RunResult,
    /// Each environment's outcome, in order.
    pub environments: Vec<EnvOutcome>,
    /// Environments left out because they are bound to another branch.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<crate::Skipped>,
}

/// One row of the deploy step output `summary`.
#[derive(Debug, Serialize)]
pub struct RunSummaryRow<'a> {
    environment: &'a str,
    action: String,
    result: Outcome,
    duration_ms: u64,
    stack_status: Option<&'a str>,
    execution_id: Option<&'a str>,
}

impl RunReport {
    /// The report of `outcomes`; `interrupted` when the run was.
    pub fn new(
        commit: impl Into<String>,
        dry_run: bool,
        interrupted: bool,
        environments: Vec<EnvOutcome>,
    ) -> Self {
        let result = if interrupted {
            RunResult::Interrupted
        } else if environments.iter().any(|o| o.outcome.is_failure()) {
            RunResult::Failure
        } else if environments
            .iter()
            .all(|o| matches!(o.outcome, Outcome::NoOp | Outcome::Planned))
        {
            if dry_run {
                RunResult::Planned
            } else {
                RunResult::NoOp
            }
        } else {
            RunResult::Success
        };
        Self {
            commit: commit.into(),
            dry_run,
            result,
            environments,
            skipped: Vec::new(),
        }
    }

    /// Lists `skipped`: environments bound to another branch.
    pub fn with_skipped(mut self, skipped: Vec<crate::Skipped>) -> Self {
        self.skipped = skipped;
        self
    }

    /// 1 when any environment failed or was refused, else 0 (an
    /// interruption's 130/143 is the caller's).
    pub fn exit_code(&self) -> u8 {
        u8::from(self.environments.iter().any(|o| o.outcome.is_failure()))
    }

    /// The rows of the step output `summary`.
    pub fn summary(&self) -> Vec<RunSummaryRow<'_>> {
        self.environments
            .iter()
            .map(|o| RunSummaryRow {
                environment: &o.environment,
                action: actions(o),
                result: o.outcome,
                duration_ms: o.duration_ms,
                stack_status: o.stack_status.as_deref(),
                execution_id: o.execution_id.as_deref(),
            })
            .collect()
    }

    /// The text report.
    pub fn render_text(&self, color: bool) -> String {
        let rows: Vec<[String; 5]> = self
            .environments
            .iter()
            .map(|o| {
                let word = o.outcome.to_string();
                let word = match o.outcome {
                    Outcome::Failed | Outcome::Refused | Outcome::Interrupted => {
                        paint(&word, "1;31", color)
                    }
                    Outcome::Succeeded => paint(&word, "32", color),
                    _ => word,
                };
                [
                    o.environment.clone(),
                    actions(o),
                    word,
                    duration(o.duration_ms),
                    status_or_execution(o),
                ]
            })
            .collect();
        let mut out = String::new();
        if !rows.is_empty() {
            out.push_str(&table(
                &[
                    "ENVIRONMENT",
                    "ACTION",
                    "RESULT",
                    "DURATION",
                    "STATUS / EXECUTION",
                ],
                &rows,
            ));
        }
        for o in &self.environments {
            if o.outcome.is_failure() || self.dry_run {
                out.push_str(&format!("{}: {}\n", o.environment, o.message));
                for f in &o.failures {
                    out.push_str(&format!("  {f}\n"));
                }
            }
            for d in o.plan.iter().flat_map(|p| &p.accepted_drift) {
                out.push_str(&format!(
                    "{}: --accept-drift: overwrote {d}\n",
                    o.environment
                ));
            }
        }
        for s in &self.skipped {
            out.push_str(&format!("{}: skipped: {}\n", s.name, s.reason));
        }
        out.push_str(&format!(
            "{} environment(s) at {}: {}\n",
            self.environments.len(),
            short_commit(&self.commit),
            self.result
        ));
        out
    }

    /// The markdown report (step summary).
    pub fn render_markdown(&self) -> String {
        let mut out = format!(
            "### gitops deploy{} at `{}`: {}\n\n",
            if self.dry_run { " (dry run)" } else { "" },
            short_commit(&self.commit),
            self.result
        );
        if self.environments.is_empty() {
            out.push_str("Nothing to deploy.\n");
            if self.skipped.is_empty() {
                return out;
            }
        }
        let rows: Vec<[String; 5]> = self
            .environments
            .iter()
            .map(|o| {
                [
                    cell(&o.environment),
                    cell(&actions(o)),
                    o.outcome.to_string(),
                    duration(o.duration_ms),
                    cell(&status_or_execution(o)),
                ]
            })
            .collect();
        if !rows.is_empty() {
            out.push_str(&crate::render::markdown_table(
                &[
                    "Environment",
                    "Action",
                    "Result",
                    "Duration",
                    "Stack status / execution",
                ],
                &rows,
            ));
        }
        for o in self.environments.iter().filter(|o| o.outcome.is_failure()) {
            out.push_str(&format!(
                "\n**{}**: {}\n",
                cell(&o.environment),
                cell(&o.message)
            ));
            for f in &o.failures {
                out.push_str(&format!("- {}\n", cell(f)));
            }
        }
        for o in &self.environments {
            for d in o.plan.iter().flat_map(|p| &p.accepted_drift) {
                out.push_str(&format!(
                    "\n**{}**: `--accept-drift` overwrote {}\n",
                    cell(&o.environment),
                    cell(d)
                ));
            }
        }
        if !self.skipped.is_empty() {
            out.push_str("\nSkipped (bound to another branch):\n");
            for s in &self.skipped {
                out.push_str(&format!("- **{}**: {}\n", cell(&s.name), cell(&s.reason)));
            }
        }
        out
    }
}

fn actions(o: &EnvOutcome) -> String {
    match &o.plan {
        Some(p) => p
            .actions
            .iter()
            .map(|a| a.label())
            .collect::<Vec<_>>()
            .join(", "),
        None => "-".into(),
    }
}

fn status_or_execution(o: &EnvOutcome) -> String {
    o.execution_id
        .clone()
        .or_else(|| o.stack_status.clone())
        .unwrap_or_else(|| "-".into())
}

fn duration(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// The label of drift issues.
pub const ISSUE_LABEL: &str = "drift";

/// The longest board an issue body carries (GitHub takes 65,536 characters).
const BOARD_IN_ISSUE_MAX: usize = 40_000;

/// The hidden marker that identifies an environment's drift issue.
pub fn issue_marker(env: &str) -> String {
    format!("<!-- gitops-drift:{env} -->")
}

/// The hidden marker that identifies an orphan stack's issue.
pub fn orphan_marker(stack: &str) -> String {
    format!("<!-- gitops-drift-orphan:{stack} -->")
}

/// The stack an orphan issue's body is about, from its marker.
pub fn orphan_of(body: &str) -> Option<&str> {
    let rest = body.split("<!-- gitops-drift-orphan:").nth(1)?;
    rest.split(" -->").next().filter(|s| !s.is_empty())
}

/// An open issue labelled [`ISSUE_LABEL`], as far as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIssue {
    /// Its number.
    pub number: u64,
    /// Its body.
    pub body: String,
}

/// What to do with one environment's drift issue, or an orphan stack's
/// (then `env` is the stack's name).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssueAction {
    /// Open an issue (label [`ISSUE_LABEL`]).
    Create {
        /// The environment.
        env: String,
        /// Its title.
        title: String,
        /// Its body.
        body: String,
    },
    /// Replace the open issue's body.
    Update {
        /// The environment.
        env: String,
        /// The issue.
        number: u64,
        /// The new body.
        body: String,
    },
    /// Comment, then close the issue: the environment is back in sync.
    Close {
        /// The environment.
        env: String,
        /// The issue.
        number: u64,
        /// The comment.
        comment: String,
    },
    /// The open issue already says this.
    UpToDate {
        /// The environment.
        env: String,
        /// The issue.
        number: u64,
    },
}

impl IssueAction {
    /// The environment it is about.
    pub fn env(&self) -> &str {
        match self {
            IssueAction::Create { env, .. }
            | IssueAction::Update { env, .. }
            | IssueAction::Close { env, .. }
            | IssueAction::UpToDate { env, .. } => env,
        }
    }
}

/// The footer of drift issues: a link to the GitHub Actions run
/// ([`crate::actions::run_url`], its variables read with `var`), or nothing
/// outside one.
pub fn issue_footer(var: impl Fn(&str) -> Option<String>) -> String {
    match crate::actions::run_url(var) {
        Some(url) => format!("\nLast checked by [this run]({url}).\n"),
        None => String::new(),
    }
}

/// One issue per OutOfSync environment, found by its marker among `open`:
/// updated when its body changed, created when missing; closed with a
/// comment once the environment is Synced. Unknown environments' issues
/// are left as they are. Each body carries every environment's `board`
/// (markdown) when it fits, and ends with `footer` (a link to the run, say).
///
/// Then one issue per orphan stack (managed by this repository, declared
/// by no environment; [`orphan_marker`]): created when missing, left as it
/// is while the stack remains, closed with a comment once it is gone. When
/// the orphans could not be listed, their issues are left as they are.
pub fn issue_actions(
    report: &DriftReport,
    open: &[OpenIssue],
    board: &str,
    footer: &str,
) -> Vec<IssueAction> {
    let mut out = Vec::new();
    for d in &report.environments {
        let env = d.status.name.clone();
        let m = issue_marker(&env);
        let existing = open.iter().find(|i| i.body.contains(&m));
        match (d.status.sync, existing) {
            (Sync::OutOfSync, Some(i)) => {
                let body = issue_body(d, report, board, footer);
                out.push(if i.body.trim() == body.trim() {
                    IssueAction::UpToDate {
                        env,
                        number: i.number,
                    }
                } else {
                    IssueAction::Update {
                        env,
                        number: i.number,
                        body,
                    }
                });
            }
            (Sync::OutOfSync, None) => out.push(IssueAction::Create {
                title: format!("Drift: environment `{env}` is out of sync with git"),
                body: issue_body(d, report, board, footer),
                env,
            }),
            (Sync::Synced, Some(i)) => out.push(IssueAction::Close {
                comment: format!(
                    "`{env}` is back in sync with git at commit `{}`. Closing.",
                    short_commit(&report.commit)
                ),
                env,
                number: i.number,
            }),
            _ => {}
        }
    }
    if report.orphans_error.is_none() {
        out.extend(orphan_issue_actions(report, open));
    }
    out
}

fn orphan_issue_actions(report: &DriftReport, open: &[OpenIssue]) -> Vec<IssueAction> {
    let short = short_commit(&report.commit);
    let mut out = Vec::new();
    for stack in &report.orphans {
        let m = orphan_marker(stack);
        out.push(match open.iter().find(|i| i.body.contains(&m)) {
            Some(i) => IssueAction::UpToDate {
                env: stack.clone(),
                number: i.number,
            },
            None => IssueAction::Create {
                env: stack.clone(),
                title: format!("Drift: orphan stack `{stack}` is declared by no environment"),
                body: format!(
                    "{m}\nStack **`{stack}`** is tagged as managed by this repository, but no environment at commit `{short}` declares it: an orphan, left behind by a removed environment folder or a renamed stack.\n\nDelete it with `gitops deploy --base deployed --allow-delete` (its environment's configuration at the commit it was deployed from decides whether it may go: a protected one never does), or by hand once you are sure it is unused. `gitops drift --open-issues` closes this issue once the stack is gone.\n"
                ),
            },
        });
    }
    for i in open {
        let Some(stack) = orphan_of(&i.body) else {
            continue;
        };
        if !report.orphans.iter().any(|o| o == stack) {
            out.push(IssueAction::Close {
                env: stack.to_string(),
                number: i.number,
                comment: format!("Stack `{stack}` is gone (checked at commit `{short}`). Closing."),
            });
        }
    }
    out
}

fn issue_body(d: &EnvDrift, r: &DriftReport, board: &str, footer: &str) -> String {
    let s = &d.status;
    let mut body = format!(
        "{}\n**{}** is **{}** with git at commit `{}` (stack `{}`, {}, health {}).\n\n",
        issue_marker(&s.name),
        s.name,
        s.sync,
        short_commit(&r.commit),
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
    if !board.is_empty() && board.len() <= BOARD_IN_ISSUE_MAX {
        body.push_str(&format!("\n#### All environments\n\n{board}"));
    }
    body.push_str(footer);
    body
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::drift::Remediation;

    fn env(name: &str, sync: Sync) -> EnvDrift {
        let files = crate::Memory::new("x")
            .with_file("gitops.yaml", "version: 1\nstack: {template: t.yaml}\n")
            .with_file(&format!("environments/{name}/environment.yaml"), "{}\n");
        let repo = crate::Repository::load(&files).unwrap();
        let mut d = EnvDrift::unknown(repo.environment(name).unwrap(), &[], "");
        d.status.sync = sync;
        d.status.error = None;
        d
    }

    #[test]
    fn the_issue_footer_links_the_run_only_in_one() {
        let run = |n: &str| match n {
            "GITHUB_SERVER_URL" => Some("https://github.example.com".to_string()),
            "GITHUB_REPOSITORY" => Some("acme/payments".to_string()),
            "GITHUB_RUN_ID" => Some("42".to_string()),
            _ => None,
        };
        expect_test::expect![[r#"

            Last checked by [this run](https://github.example.com/acme/payments/actions/runs/42).
        "#]]
        .assert_eq(&issue_footer(run));
        assert_eq!(issue_footer(|_| None), "");
    }

    #[test]
    fn markers_are_exact() {
        assert_eq!(issue_marker("dev"), "<!-- gitops-drift:dev -->");
        assert!(!issue_marker("dev2").contains(&issue_marker("dev")));
    }

    #[test]
    fn exit_codes_follow_terraform() {
        let r = DriftReport::new("c", None, vec![env("a", Sync::Synced)]);
        assert_eq!((r.in_sync(), r.exit_code()), (true, 0));
        let r = DriftReport::new("c", None, vec![env("a", Sync::OutOfSync)]);
        assert_eq!((r.in_sync(), r.exit_code()), (false, 2));
        let r = DriftReport::new("c", None, vec![env("a", Sync::Synced)])
            .with_orphans(Ok(vec!["old".into()]));
        assert_eq!(r.exit_code(), 2);
        let r = DriftReport::new("c", None, vec![]).with_orphans(Err("denied".into()));
        assert_eq!(r.exit_code(), 1);
        let mut failed = env("a", Sync::OutOfSync);
        failed.remediation = Some(Remediation::failed("boom"));
        assert_eq!(DriftReport::new("c", None, vec![failed]).exit_code(), 1);
        assert_eq!(
            DriftReport::new("c", None, vec![env("a", Sync::Unknown)]).exit_code(),
            1
        );
    }

    #[test]
    fn issues_are_created_updated_and_closed() {
        let r = DriftReport::new(
            "c",
            None,
            vec![
                env("new", Sync::OutOfSync),
                env("old", Sync::OutOfSync),
                env("fixed", Sync::Synced),
                env("same", Sync::OutOfSync),
                env("unknown", Sync::Unknown),
            ],
        );
        let same = issue_body(&r.environments[3], &r, "", "");
        let open = [
            OpenIssue {
                number: 1,
                body: issue_marker("old"),
            },
            OpenIssue {
                number: 2,
                body: issue_marker("fixed"),
            },
            OpenIssue {
                number: 3,
                body: same,
            },
            OpenIssue {
                number: 4,
                body: issue_marker("unknown"),
            },
        ];
        let kinds: Vec<String> = issue_actions(&r, &open, "", "")
            .iter()
            .map(|a| match a {
                IssueAction::Create { env, .. } => format!("create {env}"),
                IssueAction::Update { env, number, .. } => format!("update {env} #{number}"),
                IssueAction::Close { env, number, .. } => format!("close {env} #{number}"),
                IssueAction::UpToDate { env, number } => format!("same {env} #{number}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "close fixed #2",
                "create new",
                "update old #1",
                "same same #3"
            ]
        );
    }

    #[test]
    fn an_orphan_stack_has_its_own_issue_closed_once_it_is_gone() {
        let r = DriftReport::new("0123456789abcdef0123", None, vec![env("dev", Sync::Synced)])
            .with_orphans(Ok(vec!["old-app".into(), "ab".into()]));
        let open = [
            OpenIssue {
                number: 7,
                body: orphan_marker("old-app"),
            },
            OpenIssue {
                number: 8,
                body: format!("{}\nabout a stack now deleted", orphan_marker("a")),
            },
            OpenIssue {
                number: 9,
                body: issue_marker("dev"),
            },
        ];
        let actions = issue_actions(&r, &open, "", "");
        assert_eq!(actions.len(), 4, "{actions:?}");
        // dev is back in sync; old-app's issue is open; `a`'s issue is not `ab`'s.
        assert!(matches!(&actions[0], IssueAction::Close { env, number: 9, .. } if env == "dev"));
        assert_eq!(
            actions[1],
            IssueAction::UpToDate {
                env: "old-app".into(),
                number: 7
            }
        );
        let IssueAction::Create { env, title, body } = &actions[2] else {
            unreachable!("{actions:?}")
        };
        assert_eq!(env, "ab");
        assert!(title.contains("`ab`"), "{title}");
        assert!(body.starts_with(&orphan_marker("ab")), "{body}");
        assert!(body.contains("`0123456789ab`"), "{body}");
        assert_eq!(orphan_of(body), Some("ab"));
        assert_eq!(
            actions[3],
            IssueAction::Close {
                env: "a".into(),
                number: 8,
                comment: "Stack `a` is gone (checked at commit `0123456789ab`). Closing.".into()
            }
        );
        // Orphans that could not be listed: their issues are left alone.
        let r = DriftReport::new("c", None, vec![]).with_orphans(Err("denied".into()));
        assert!(issue_actions(&r, &open, "", "").is_empty());
        // No orphans: every orphan issue closes.
        let r = DriftReport::new("c", None, vec![]).with_orphans(Ok(vec![]));
        let actions = issue_actions(&r, &open, "", "");
        assert_eq!(actions.len(), 2, "{actions:?}");
        assert!(actions
            .iter()
            .all(|a| matches!(a, IssueAction::Close { .. })));
        assert_eq!(orphan_of(&issue_marker("dev")), None);
        assert_eq!(orphan_of("<!-- gitops-drift-orphan: -->"), None);
    }
}
