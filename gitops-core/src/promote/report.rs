//! The reports of `promote`, `rollback` and `history`: the verification
//! [`Gate`], what `--write` and `--open-pr` did, step outputs, and the text,
//! markdown and JSON renderings.

use serde::Serialize;

use super::{FileEdit, HistoryEntry, PromoteError, Promotion, Rollback};
use crate::markdown::{cell, code};
use crate::model::PromotedKey;
use crate::render::{color_diff, markdown_table, paint, table};
use crate::text::short_commit;

/// The outcome of the promotion's verification gate
/// ([`super::verify_upstream`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Gate {
    /// It ran and passed: what was seen.
    Passed(String),
    /// It ran and refused: why, and the next step.
    Failed(String),
    /// It did not run: why not.
    Skipped(String),
}

impl Gate {
    /// The gate when it does not run, or `None` when it must: it is skipped
    /// when there is `nothing_to_promote`, on `--skip-verify`, and when it
    /// may not `verify` (no `--verify` and no AWS credentials visible).
    pub fn skipped(nothing_to_promote: bool, skip_verify: bool, verify: bool) -> Option<Gate> {
        if nothing_to_promote {
            Some(Gate::Skipped("nothing to promote".into()))
        } else if skip_verify {
            Some(Gate::Skipped("--skip-verify".into()))
        } else if verify {
            None
        } else {
            Some(Gate::Skipped(
                "no AWS credentials were found (AWS_ACCESS_KEY_ID, AWS_PROFILE, web identity or container credentials); pass --verify to check anyway".into(),
            ))
        }
    }

    /// `Some(true)` passed, `Some(false)` failed, `None` skipped.
    pub fn verified(&self) -> Option<bool> {
        match self {
            Gate::Passed(_) => Some(true),
            Gate::Failed(_) => Some(false),
            Gate::Skipped(_) => None,
        }
    }
}

impl std::fmt::Display for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Gate::Passed(m) => write!(f, "passed: {m}"),
            Gate::Failed(m) => write!(f, "failed: {m}"),
            Gate::Skipped(m) => write!(f, "skipped: {m}"),
        }
    }
}

/// Whether `--open-pr` opened a pull request or updated the open one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PrAction {
    /// A new pull request.
    Created,
    /// The open pull request of the same branch, its title and body replaced.
    Updated,
}

/// What `--open-pr` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrOutcome {
    /// Created or updated.
    pub action: PrAction,
    /// The pull request's number.
    pub number: u64,
    /// Its web page.
    pub url: String,
    /// The branch it comes from.
    pub branch: String,
    /// The branch it goes into.
    pub base: String,
}

/// A name made safe for a branch: letters, digits, `.`, `_` and `-`.
pub fn branch_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The branch of a promotion's pull request.
pub fn promotion_branch(from: &str, to: &str) -> String {
    format!(
        "gitops/promote-{}-to-{}",
        branch_safe(from),
        branch_safe(to)
    )
}

/// The branch of a rollback's pull request.
pub fn rollback_branch(env: &str) -> String {
    format!("gitops/rollback-{}", branch_safe(env))
}

/// What becomes of a planned edit (`--write`, `--open-pr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finishing {
    /// It changes nothing: nothing to do.
    Nothing,
    /// Commit it on its branch, push it, and open or update the pull request.
    OpenPr,
    /// Write the file in the working tree.
    Write,
    /// Only show the diff.
    Show,
}

impl Finishing {
    /// What `write` and `open_pr` ask for `edit` (a pull request wins).
    pub fn of(edit: &FileEdit, write: bool, open_pr: bool) -> Self {
        match (edit.changes.is_empty(), open_pr, write) {
            (true, _, _) => Self::Nothing,
            (false, true, _) => Self::OpenPr,
            (false, false, true) => Self::Write,
            (false, false, false) => Self::Show,
        }
    }
}

impl FileEdit {
    /// Refuses to write over a file (`now`) that is no longer the text the
    /// edit was planned from.
    pub fn check_unchanged(&self, now: &str) -> Result<(), PromoteError> {
        if now == self.old_text {
            Ok(())
        } else {
            Err(PromoteError::ChangedMeanwhile(self.file.clone()))
        }
    }
}

/// The branch a pull request goes into: `--base`, else the target
/// environment's bound branch, else the current branch; `None`: the
/// repository's default branch (asked of GitHub).
pub fn pr_base(
    explicit: Option<&str>,
    bound: Option<&str>,
    current: Option<&str>,
) -> Option<String> {
    explicit.or(bound).or(current).map(str::to_string)
}

/// The `git` arguments that commit the staged edit with `message`; as the
/// github-actions bot when the clone has no identity (`user.email`).
pub fn commit_args(message: &str, has_identity: bool) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    if !has_identity {
        for c in [
            "user.name=github-actions[bot]",
            "user.email=41898282+github-actions[bot]@users.noreply.github.com",
        ] {
            args.extend(["-c".to_string(), c.to_string()]);
        }
    }
    args.extend(["commit", "-q", "-m", message].map(str::to_string));
    args
}

/// What happened to a planned edit of an environment file, for the report
/// of `promote` and `rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// Whether the file in the working tree was changed (`--write`).
    pub written: bool,
    /// The pull request (`--open-pr`).
    pub pull_request: Option<PrOutcome>,
}

impl Applied {
    /// The step outputs: `changed`, `written`, `pr-number`, `pr-url`.
    pub fn outputs(&self, edit: &FileEdit) -> Vec<(&'static str, String)> {
        let pr = self.pull_request.as_ref();
        vec![
            ("changed", (!edit.changes.is_empty()).to_string()),
            ("written", self.written.to_string()),
            (
                "pr-number",
                pr.map(|p| p.number.to_string()).unwrap_or_default(),
            ),
            ("pr-url", pr.map(|p| p.url.clone()).unwrap_or_default()),
        ]
    }
}

/// The report of `gitops promote`.
#[derive(Debug, Clone)]
pub struct PromotionReport {
    /// The plan.
    pub plan: Promotion,
    /// The verification gate.
    pub gate: Gate,
    /// The pull request body as proposed: the plan's, plus the gate's
    /// finding when it passed.
    pub pr_body: String,
    /// What `--write`/`--open-pr` did.
    pub applied: Applied,
}

impl PromotionReport {
    /// The report before anything is written; the PR body gets the gate's finding.
    pub fn new(plan: Promotion, gate: Gate) -> Self {
        let mut pr_body = plan.pr_body.clone();
        if let Gate::Passed(m) = &gate {
            pr_body.push_str(&format!("\nVerified: {m}.\n"));
        }
        Self {
            plan,
            gate,
            pr_body,
            applied: Applied {
                written: false,
                pull_request: None,
            },
        }
    }

    /// The JSON document of `--format json`.
    pub fn to_json(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct Json<'a> {
            #[serde(flatten)]
            plan: &'a Promotion,
            written: bool,
            verified: Option<bool>,
            verification: String,
            pull_request: &'a Option<PrOutcome>,
        }
        serde_json::to_value(Json {
            plan: &self.plan,
            written: self.applied.written,
            verified: self.gate.verified(),
            verification: self.gate.to_string(),
            pull_request: &self.applied.pull_request,
        })
        .unwrap_or_default()
    }

    /// The text report.
    pub fn render_text(&self, color: bool) -> String {
        let p = &self.plan;
        let mut heading = format!("Promote {} → {}", p.from, p.to);
        if p.forced {
            heading.push_str(&format!(
                " {}",
                paint("(forced: out of promotion.order)", "1;33", color)
            ));
        }
        EditText {
            heading: &heading,
            edit: &p.edit,
            gate: Some(&self.gate),
            commit_message: &p.commit_message,
            pr_title: &p.pr_title,
            pr_body: &self.pr_body,
            applied: &self.applied,
        }
        .render(color)
    }
}

/// The report of `gitops rollback`.
#[derive(Debug, Clone)]
pub struct RollbackReport {
    /// The plan.
    pub plan: Rollback,
    /// What `--write`/`--open-pr` did.
    pub applied: Applied,
}

impl RollbackReport {
    /// The JSON document of `--format json`.
    pub fn to_json(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct Json<'a> {
            #[serde(flatten)]
            plan: &'a Rollback,
            #[serde(flatten)]
            applied: &'a Applied,
        }
        serde_json::to_value(Json {
            plan: &self.plan,
            applied: &self.applied,
        })
        .unwrap_or_default()
    }

    /// The text report.
    pub fn render_text(&self, color: bool) -> String {
        let p = &self.plan;
        EditText {
            heading: &format!(
                "Roll back {} to {}",
                p.edit.environment,
                short_commit(&p.to_revision)
            ),
            edit: &p.edit,
            gate: None,
            commit_message: &p.commit_message,
            pr_title: &p.pr_title,
            pr_body: &p.pr_body,
            applied: &self.applied,
        }
        .render(color)
    }
}

struct EditText<'a> {
    heading: &'a str,
    edit: &'a FileEdit,
    gate: Option<&'a Gate>,
    commit_message: &'a str,
    pr_title: &'a str,
    pr_body: &'a str,
    applied: &'a Applied,
}

impl EditText<'_> {
    fn render(&self, color: bool) -> String {
        let edit = self.edit;
        let mut out = format!("{} ({})\n", paint(self.heading, "1", color), edit.file);
        if edit.changes.is_empty() {
            out.push_str(&format!(
                "{} already has these values; nothing to change\n",
                edit.environment
            ));
            return out;
        }
        for c in &edit.changes {
            out.push_str(&format!(
                "  {}  {} → {}\n",
                c.key,
                c.old.as_deref().unwrap_or("(unset)"),
                paint(&c.new, "1", color)
            ));
        }
        if let Some(gate) = self.gate {
            let code = match gate {
                Gate::Passed(_) => "32",
                Gate::Failed(_) => "31",
                Gate::Skipped(_) => "33",
            };
            out.push_str(&format!(
                "verification {}\n",
                paint(&gate.to_string(), code, color)
            ));
        }
        out.push('\n');
        out.push_str(&color_diff(&edit.diff, color));
        out.push('\n');
        out.push_str(&format!("{}\n", paint("Commit message:", "1", color)));
        for line in self.commit_message.lines() {
            out.push_str(&format!("  {line}\n"));
        }
        out.push('\n');
        out.push_str(&format!(
            "{} {}\n{}\n",
            paint("PR title:", "1", color),
            self.pr_title,
            paint("PR body:", "1", color)
        ));
        for line in self.pr_body.lines() {
            out.push_str(&format!("  {line}\n"));
        }
        out.push('\n');
        match (self.applied.written, &self.applied.pull_request) {
            (_, Some(pr)) => out.push_str(&format!(
                "{} pull request #{} ({}): {}\n",
                paint(
                    match pr.action {
                        PrAction::Created => "created",
                        PrAction::Updated => "updated",
                    },
                    "1;32",
                    color
                ),
                pr.number,
                pr.branch,
                pr.url
            )),
            (true, None) => out.push_str(&format!(
                "{} {}\n",
                paint("wrote", "1;32", color),
                edit.file
            )),
            (false, None) => out.push_str(&format!(
                "dry run: pass --write to change {}, or --open-pr to propose it\n",
                edit.file
            )),
        }
        out
    }
}

/// The report of `gitops history`: every change of an environment's
/// promoted values.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryReport {
    /// The environment.
    pub environment: String,
    /// The promoted keys.
    #[serde(serialize_with = "super::keys_as_display")]
    pub keys: Vec<PromotedKey>,
    /// The changes, newest first.
    pub changes: Vec<HistoryEntry>,
}

impl HistoryReport {
    fn rows(&self, markdown: bool) -> Vec<[String; 5]> {
        let text = |s: &str| if markdown { cell(s) } else { s.to_string() };
        self.changes
            .iter()
            .map(|c| {
                let change = format!(
                    "{} → {}",
                    c.old.as_deref().unwrap_or("(unset)"),
                    c.new.as_deref().unwrap_or("(unset)")
                );
                let (commit, key) = (short_commit(&c.commit.commit), c.key.to_string());
                [
                    if markdown {
                        code(commit)
                    } else {
                        commit.to_string()
                    },
                    text(&c.commit.date),
                    text(&c.commit.author),
                    if markdown { code(&key) } else { key },
                    text(&change),
                ]
            })
            .collect()
    }

    /// The text report: a table, or a line saying nothing changed.
    pub fn render_text(&self) -> String {
        if self.changes.is_empty() {
            let keys: Vec<String> = self.keys.iter().map(ToString::to_string).collect();
            return format!(
                "no changes of {} in `{}`\n",
                keys.join(", "),
                self.environment
            );
        }
        table(
            &["COMMIT", "DATE", "AUTHOR", "KEY", "CHANGE"],
            &self.rows(false),
        )
    }

    /// The markdown report: a table, every cell escaped.
    pub fn render_markdown(&self) -> String {
        markdown_table(
            &["commit", "date", "author", "key", "change"],
            &self.rows(true),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn edit(changes: bool) -> FileEdit {
        let change = super::super::KeyChange {
            key: PromotedKey::Parameter("AppVersion".into()),
            old: Some("1".into()),
            new: "2".into(),
        };
        FileEdit {
            environment: "qa".into(),
            file: "environments/qa/environment.yaml".into(),
            keys: Vec::new(),
            changes: if changes { vec![change] } else { Vec::new() },
            old_text: "a: 1\n".into(),
            new_text: "a: 2\n".into(),
            diff: String::new(),
        }
    }

    #[test]
    fn an_edit_is_proposed_written_or_shown() {
        assert_eq!(Finishing::of(&edit(false), true, true), Finishing::Nothing);
        assert_eq!(Finishing::of(&edit(true), true, true), Finishing::OpenPr);
        assert_eq!(Finishing::of(&edit(true), true, false), Finishing::Write);
        assert_eq!(Finishing::of(&edit(true), false, false), Finishing::Show);
    }

    #[test]
    fn a_file_changed_meanwhile_is_not_written_over() {
        let e = edit(true);
        assert_eq!(e.check_unchanged("a: 1\n"), Ok(()));
        expect_test::expect!["environments/qa/environment.yaml changed while the edit was planned; run the command again"]
            .assert_eq(&e.check_unchanged("a: 3\n").unwrap_err().to_string());
    }

    #[test]
    fn the_pull_request_base_and_the_commit_identity() {
        assert_eq!(
            pr_base(Some("b"), Some("r"), Some("c")).as_deref(),
            Some("b")
        );
        assert_eq!(pr_base(None, Some("r"), Some("c")).as_deref(), Some("r"));
        assert_eq!(pr_base(None, None, Some("c")).as_deref(), Some("c"));
        assert_eq!(pr_base(None, None, None), None);
        assert_eq!(commit_args("m", true), ["commit", "-q", "-m", "m"]);
        expect_test::expect![[r#"
            [
                "-c",
                "user.name=github-actions[bot]",
                "-c",
                "user.email=41898282+github-actions[bot]@users.noreply.github.com",
                "commit",
                "-q",
                "-m",
                "m",
            ]
        "#]]
        .assert_debug_eq(&commit_args("m", false));
    }
}
