//! `gitops validate`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use gitops_core::aws::{ClientFactory, FindingType};
use gitops_core::policy::{validate_request, AwsUse, ValidateReport, ValidateRequest};
use gitops_core::{git, Error, GitTree, Repository, Source};

use super::select::{select, SelectArgs};
use gitops_core::actions::workspace_prefix;

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

pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let source = super::worktree(&g.repo)?;
    let aws = match (args.no_aws, args.force_aws) {
        (true, _) => AwsUse::Never,
        (_, true) => AwsUse::Force,
        _ => AwsUse::Auto {
            credentials: crate::aws::credentials_present(),
        },
    };
    let request = ValidateRequest::new(aws, args.fail_on.into())
        .with_check_no_new_access(args.check_no_new_access);
    let report = match Repository::load(&source) {
        Ok(repo) => {
            let mut report = check(g, &args, &request, &repo, &source)?;
            report.check_branches(&repo, git::branch_names(source.root()).as_deref());
            report
        }
        Err(Error::Invalid(problems)) => ValidateReport::unusable(problems),
        Err(e) => return Err(e.into()),
    };
    match g.format {
        Format::Json => print_json(&report)?,
        Format::Text | Format::Markdown => {
            for s in &report.skipped {
                eprintln!("note: {s}");
            }
            print!("{}", report.render_text(source.root(), g.color));
        }
    }
    if in_github_actions() {
        let workspace = std::env::var_os("GITHUB_WORKSPACE").map(std::path::PathBuf::from);
        let prefix = workspace_prefix(source.root(), workspace.as_deref());
        for p in &report.problems {
            workflow_command(&annotation(p, &prefix));
        }
    }
    Ok(ExitCode::from(report.exit_code()))
}

/// The checks of a loaded repository ([`policy::validate_request`]), with
/// the Access Analyzer and the base revision when they run.
fn check(
    g: &Globals,
    args: &Args,
    request: &ValidateRequest,
    repo: &Repository,
    source: &gitops_core::WorkTree,
) -> anyhow::Result<ValidateReport> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    if !request.uses_analyzer(repo) {
        return Ok(rt.block_on(validate_request(repo, source, request, None, None))?);
    }
    let base_tree = if args.check_no_new_access {
        base_tree(g, args)?
    } else {
        None
    };
    rt.block_on(async {
        let factory = crate::aws::factory(&args.aws).await;
        let region = factory.default_region().unwrap_or_default().to_string();
        let analyzer = Arc::clone(&factory.clients(&region, None).await?.access_analyzer);
        let base = base_tree.as_ref().map(|t| t as &dyn Source);
        validate_request(repo, source, request, Some(analyzer), base)
            .await
            .context("the IAM Access Analyzer checks failed; pass --no-aws to run the offline checks only")
    })
}

/// The repository at the base revision of `--check-no-new-access`; `None`
/// when the GitHub event has none.
fn base_tree(g: &Globals, args: &Args) -> anyhow::Result<Option<GitTree>> {
    if args.base.is_none() && !args.github {
        bail!("--check-no-new-access needs the base revision: --base REV, or --github in GitHub Actions");
    }
    let how = SelectArgs {
        base: args.base.clone(),
        head: None,
        github: args.github,
        branch: None,
        default_branch: None,
    };
    let selected = select(g, &how)?;
    let Some(b) = selected.base else {
        return Ok(None);
    };
    let id = gix::ObjectId::from_hex(b.as_bytes())
        .with_context(|| format!("`{b}` is not a commit id"))?;
    Ok(Some(GitTree::new(selected.repo, id, &selected.prefix)?))
}
