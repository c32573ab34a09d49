//! `gitops validate` as a request and a report: whether the Access Analyzer
//! checks run (and why not), the checks of [`super::validate`], the branch
//! bindings, and the verdict with its exit code.

use std::sync::Arc;

use serde::Serialize;

use super::{templates_in_use, validate, AccessOptions, ValidateOptions};
use crate::aws::{AccessAnalyzer, FindingType};
use crate::model::Repository;
use crate::problem::Problem;
use crate::source::Source;

/// Whether `gitops validate` may call IAM Access Analyzer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AwsUse {
    /// Never (`--no-aws`).
    Never,
    /// Even without visible credentials (`--aws`).
    Force,
    /// When credentials are visible in the environment.
    Auto {
        /// Whether they are ([`crate::aws::sdk::credentials_present`]).
        credentials: bool,
    },
}

/// What `gitops validate` is asked to check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidateRequest {
    /// Whether Access Analyzer may be called.
    pub aws: AwsUse,
    /// Findings of this severity or worse fail validation.
    pub fail_on: FindingType,
    /// `--check-no-new-access`: compare every policy with the base revision's.
    pub check_no_new_access: bool,
}

impl ValidateRequest {
    /// A request with Access Analyzer as `aws` says, failing on `fail_on`.
    pub fn new(aws: AwsUse, fail_on: FindingType) -> Self {
        Self {
            aws,
            fail_on,
            check_no_new_access: false,
        }
    }

    /// With CheckNoNewAccess against the base revision.
    pub fn with_check_no_new_access(mut self, yes: bool) -> Self {
        self.check_no_new_access = yes;
        self
    }

    /// Why the Access Analyzer checks may not run, if they may not.
    pub fn aws_skipped(&self) -> Option<&'static str> {
        match self.aws {
            AwsUse::Never => Some("--no-aws"),
            AwsUse::Force | AwsUse::Auto { credentials: true } => None,
            AwsUse::Auto { credentials: false } => Some("no AWS credentials (use --aws to force)"),
        }
    }

    /// Whether the Access Analyzer checks run on `repo`: they may, and it
    /// has IAM policies (in the templates in use or `policies.iam`).
    pub fn uses_analyzer(&self, repo: &Repository) -> bool {
        let has_policies =
            !templates_in_use(repo).is_empty() || !repo.config.policies.iam.is_empty();
        self.aws_skipped().is_none() && has_policies
    }
}

/// The report of `gitops validate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ValidateReport {
    /// No problem is an error.
    pub valid: bool,
    /// Every problem, sorted by file and line.
    pub problems: Vec<Problem>,
    /// Checks that did not run, and why.
    pub skipped: Vec<String>,
}

impl ValidateReport {
    /// A report of `problems`, with `skipped` notes.
    pub fn new(problems: Vec<Problem>, skipped: Vec<String>) -> Self {
        Self {
            valid: !problems.iter().any(Problem::is_error),
            problems,
            skipped,
        }
    }

    /// The report on a repository whose `gitops.yaml` cannot be used.
    pub fn unusable(problems: Vec<Problem>) -> Self {
        Self::new(
            problems,
            vec!["policy checks: gitops.yaml cannot be used".into()],
        )
    }

    /// Adds the warnings for `branch:` bindings that match none of
    /// `branches` ([`crate::unmatched_bindings`]; `None`: the repository is
    /// not a git clone, said in a note). Nothing when no environment is bound.
    pub fn check_branches(&mut self, repo: &Repository, branches: Option<&[String]>) {
        if repo.environments.iter().all(|e| e.branch.is_none()) {
            return;
        }
        match branches {
            Some(b) => self.problems.extend(crate::unmatched_bindings(repo, b)),
            None => self
                .skipped
                .push("branch bindings not checked: the repository is not a git clone".into()),
        }
        self.valid = !self.problems.iter().any(Problem::is_error);
    }

    /// 0 valid, 1 problems.
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.valid)
    }

    /// The problems and the verdict for the repository at `root`.
    pub fn render_text(&self, root: &std::path::Path, color: bool) -> String {
        crate::render::validation(&self.problems, root, color)
    }
}

/// The whole of `gitops validate` on a loaded repository, as `request`
/// says: [`validate`] offline, or with `analyzer` when
/// [`ValidateRequest::uses_analyzer`] (and CheckNoNewAccess against `base`,
/// when asked and given). What did not run is in the report's `skipped`.
///
/// `Err` only when reading the source or calling Access Analyzer fails.
pub async fn validate_request(
    repo: &Repository,
    source: &dyn Source,
    request: &ValidateRequest,
    analyzer: Option<Arc<dyn AccessAnalyzer>>,
    base: Option<&dyn Source>,
) -> crate::Result<ValidateReport> {
    let mut skipped = Vec::new();
    if let Some(why) = request.aws_skipped() {
        skipped.push(format!("Access Analyzer checks skipped: {why}"));
        if request.check_no_new_access {
            skipped.push(format!("CheckNoNewAccess skipped: {why}"));
        }
    }
    let mut options = ValidateOptions::offline();
    if let (Some(analyzer), true) = (analyzer, request.uses_analyzer(repo)) {
        let deny = repo.config.policies.deny_actions.clone();
        options = options
            .with_analyzer(analyzer)
            .with_access(AccessOptions::new(request.fail_on, deny));
        match base {
            Some(b) if request.check_no_new_access => options = options.with_base(b),
            None if request.check_no_new_access => {
                skipped.push("CheckNoNewAccess skipped: this event has no base revision".into())
            }
            _ => {}
        }
    }
    let v = validate(repo, source, options).await?;
    skipped.extend(v.notes);
    Ok(ValidateReport::new(v.problems, skipped))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Memory;

    fn repo(bound: bool) -> (Memory, Repository) {
        let env = if bound { "branch: release\n" } else { "{}\n" };
        let source = Memory::new("x")
            .with_file("gitops.yaml", "version: 1\nstack: { template: app.yaml }\n")
            .with_file("app.yaml", "Resources:\n  T: { Type: AWS::SNS::Topic }\n")
            .with_file("environments/dev/environment.yaml", env);
        let repo = Repository::load(&source).unwrap();
        (source, repo)
    }

    #[test]
    fn access_analyzer_runs_only_when_allowed_and_there_are_policies() {
        let (_, r) = repo(false);
        let auto =
            |credentials| ValidateRequest::new(AwsUse::Auto { credentials }, FindingType::Error);
        assert_eq!(
            auto(false).aws_skipped(),
            Some("no AWS credentials (use --aws to force)")
        );
        assert_eq!(
            ValidateRequest::new(AwsUse::Never, FindingType::Error).aws_skipped(),
            Some("--no-aws")
        );
        assert!(auto(true).uses_analyzer(&r));
        assert!(ValidateRequest::new(AwsUse::Force, FindingType::Error).uses_analyzer(&r));
        assert!(!auto(false).uses_analyzer(&r));
        let empty = Repository::load(&Memory::new("x").with_file("gitops.yaml", "version: 1\n"));
        assert!(!auto(true).uses_analyzer(&empty.unwrap()));
    }

    #[tokio::test]
    async fn skipped_checks_are_noted_and_the_exit_code_follows_errors() {
        let (source, r) = repo(false);
        let request =
            ValidateRequest::new(AwsUse::Never, FindingType::Error).with_check_no_new_access(true);
        let report = validate_request(&r, &source, &request, None, None)
            .await
            .unwrap();
        expect_test::expect![[r#"
            [
                "Access Analyzer checks skipped: --no-aws",
                "CheckNoNewAccess skipped: --no-aws",
            ]
        "#]]
        .assert_debug_eq(&report.skipped);
        assert_eq!(report.exit_code(), 0);
        let bad = ValidateReport::unusable(vec![Problem::error("gitops.yaml", "bad")]);
        assert_eq!((bad.valid, bad.exit_code()), (false, 1));
    }

    #[test]
    fn branch_bindings_are_checked_only_when_bound_and_in_a_clone() {
        let (_, free) = repo(false);
        let mut report = ValidateReport::new(Vec::new(), Vec::new());
        report.check_branches(&free, None);
        assert!(report.skipped.is_empty());
        let (_, bound) = repo(true);
        report.check_branches(&bound, None);
        assert_eq!(
            report.skipped,
            ["branch bindings not checked: the repository is not a git clone"]
        );
        report.check_branches(&bound, Some(&["main".to_string()]));
        assert_eq!(report.problems.len(), 1);
        assert!(report.valid, "a warning: {:?}", report.problems);
        report.check_branches(&bound, Some(&["release".to_string()]));
        assert_eq!(report.problems.len(), 1);
    }
}
