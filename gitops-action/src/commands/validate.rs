//! `gitops validate`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use gitops_core::aws::{ClientFactory, FindingType};
use gitops_core::policy::{self, AccessOptions, ValidateOptions};
use gitops_core::{Error, GitTree, Problem, Repository};
use serde::Serialize;

use super::select::{select, SelectArgs};
use gitops_core::actions::workspace_prefix;
use gitops_core::render::validation;

use crate::output::{annotation, in_github_actions, print_json, workflow_command};
use crate::{Format, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run the IAM Access Analyzer checks even when no AWS credentials are
    /// visible in the environment.
    #[arg(long = "aws", conflicts_with = "no_aws")]
    force_aws: bool,
    /// Never call AWS: run the offline checks only.
    #[arg(long)]
    no_aws: bool,
    /// Access Analyzer findings of this severity or worse fail validation;
    /// less serious ones are reported as warnings.
    #[arg(long, value_enum, value_name = "SEVERITY", default_value_t = FailOn::SecurityWarning)]
    fail_on: FailOn,
    /// Compare every IAM policy with its version at the base revision
    /// (Access Analyzer CheckNoNewAccess): a policy that grants new access
    /// fails validation. Needs --base or --github.
    #[arg(long)]
    check_no_new_access: bool,
    /// The base revision for --check-no-new-access: a commit, branch, tag or
    /// expression such as origin/main.
    #[arg(long, value_name = "REV", requires = "check_no_new_access")]
    base: Option<String>,
    /// Take the base revision for --check-no-new-access from the GitHub
    /// event (a pull request's merge base, a push's previous commit).
    #[arg(long, requires = "check_no_new_access")]
    github: bool,
    #[command(flatten)]
    aws: crate::aws::AwsArgs,
}

/// `--fail-on` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Only ERROR findings fail.
    Error,
    /// SECURITY_WARNING and ERROR findings fail.
    SecurityWarning,
    /// WARNING, SECURITY_WARNING and ERROR findings fail.
    Warning,
    /// Every finding fails.
    Suggestion,
}

impl From<FailOn> for FindingType {
    fn from(f: FailOn) -> Self {
        match f {
            FailOn::Error => FindingType::Error,
            FailOn::SecurityWarning => FindingType::SecurityWarning,
            FailOn::Warning => FindingType::Warning,
            FailOn::Suggestion => FindingType::Suggestion,
        }
    }
}

#[derive(Serialize)]
struct Report<'a> {
    valid: bool,
    problems: &'a [Problem],
    /// Checks that did not run, and why.
    skipped: &'a [String],
}

pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let source = super::worktree(&g.repo)?;
    let mut skipped = Vec::new();
    let problems = match Repository::load(&source) {
        Ok(repo) => {
            let mut problems = check(g, &args, &repo, &source, &mut skipped)?;
            problems.extend(branch_warnings(source.root(), &repo, &mut skipped));
            problems
        }
        Err(Error::Invalid(problems)) => {
            skipped.push("policy checks: gitops.yaml cannot be used".into());
            problems
        }
        Err(e) => return Err(e.into()),
    };
    let valid = !problems.iter().any(Problem::is_error);
    match g.format {
        Format::Json => print_json(&Report {
            valid,
            problems: &problems,
            skipped: &skipped,
        })?,
        Format::Text | Format::Markdown => {
            for s in &skipped {
                eprintln!("note: {s}");
            }
            print!("{}", validation(&problems, source.root(), g.color));
        }
    }
    if in_github_actions() {
        let workspace = std::env::var_os("GITHUB_WORKSPACE").map(std::path::PathBuf::from);
        let prefix = workspace_prefix(source.root(), workspace.as_deref());
        for p in &problems {
            workflow_command(&annotation(p, &prefix));
        }
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Every check of a loaded repository: its own, the guard rules, and the
/// Access Analyzer checks when they may run. What was not checked is added
/// to `skipped`.
fn check(
    g: &Globals,
    args: &Args,
    repo: &Repository,
    source: &gitops_core::WorkTree,
    skipped: &mut Vec<String>,
) -> anyhow::Result<Vec<Problem>> {
    let has_policies =
        !policy::templates_in_use(repo).is_empty() || !repo.config.policies.iam.is_empty();
    let why_not = if args.no_aws {
        Some("--no-aws")
    } else if args.force_aws || crate::aws::credentials_present() {
        None
    } else {
        Some("no AWS credentials (use --aws to force)")
    };
    if let Some(why) = why_not {
        skipped.push(format!("Access Analyzer checks skipped: {why}"));
        if args.check_no_new_access {
            skipped.push(format!("CheckNoNewAccess skipped: {why}"));
        }
    }
    if why_not.is_some() || !has_policies {
        let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        let v = rt.block_on(policy::validate(repo, source, ValidateOptions::offline()))?;
        skipped.extend(v.notes);
        return Ok(v.problems);
    }

    // Access Analyzer.
    let base_tree = if args.check_no_new_access {
        if args.base.is_none() && !args.github {
            bail!("--check-no-new-access needs the base revision: --base REV, or --github in GitHub Actions");
        }
        let selected = select(
            g,
            &SelectArgs {
                base: args.base.clone(),
                head: None,
                github: args.github,
                branch: None,
                default_branch: None,
            },
        )?;
        match selected.base {
            Some(b) => {
                let id = gix::ObjectId::from_hex(b.as_bytes())
                    .with_context(|| format!("`{b}` is not a commit id"))?;
                Some(GitTree::new(selected.repo, id, &selected.prefix)?)
            }
            None => {
                skipped.push("CheckNoNewAccess skipped: this event has no base revision".into());
                None
            }
        }
    } else {
        None
    };
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let v = rt.block_on(async {
        let factory = crate::aws::factory(&args.aws).await;
        let region = factory.default_region().unwrap_or_default().to_string();
        let clients = factory.clients(&region, None).await?;
        let mut options = ValidateOptions::offline()
            .with_analyzer(Arc::clone(&clients.access_analyzer))
            .with_access(AccessOptions::new(
                args.fail_on.into(),
                repo.config.policies.deny_actions.clone(),
            ));
        if let Some(t) = &base_tree {
            options = options.with_base(t);
        }
        policy::validate(repo, source, options).await.map_err(|e| {
            anyhow::Error::from(e).context(
                "the IAM Access Analyzer checks failed; pass --no-aws to run the offline checks only",
            )
        })
    })?;
    skipped.extend(v.notes);
    Ok(v.problems)
}

/// Warnings for `branch:` bindings that match no branch of the clone
/// (local and remote-tracking); nothing when no environment is bound.
fn branch_warnings(
    dir: &std::path::Path,
    repo: &Repository,
    skipped: &mut Vec<String>,
) -> Vec<Problem> {
    if repo.environments.iter().all(|e| e.branch.is_none()) {
        return Vec::new();
    }
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "for-each-ref",
            "--format=%(refname)",
            "refs/heads",
            "refs/remotes",
        ])
        .output();
    let Some(text) = out
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
    else {
        skipped.push("branch bindings not checked: the repository is not a git clone".into());
        return Vec::new();
    };
    let branches: Vec<String> = text
        .lines()
        .filter_map(|r| {
            r.strip_prefix("refs/heads/").or_else(|| {
                r.strip_prefix("refs/remotes/")
                    .and_then(|rest| rest.split_once('/'))
                    .map(|(_, b)| b)
            })
        })
        .filter(|b| *b != "HEAD")
        .map(str::to_string)
        .collect();
    gitops_core::unmatched_bindings(repo, &branches)
}
