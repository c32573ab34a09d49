//! `gitops promote`, and what `rollback` shares with it: printing a plan,
//! writing the file, and opening a pull request.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context};
use gitops_core::promote::{
    check_upstream, commit_args, plan_promotion, pr_base, promotion_branch, resolve_target,
    Applied, FileEdit, Finishing, Gate, PrAction, PrOutcome, PromotionReport, Target,
};
use gitops_core::{Checks, Environment, PromotedKey, Repository, WorkTree};

use crate::aws::AwsArgs;
use crate::github_api::{GitHub, PullRequest};
use crate::output::{paint, print_json};
use crate::{Format, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment whose values are promoted.
    #[arg(long, value_name = "ENV")]
    from: String,
    /// The environment to promote to; `next` is the one after --from in
    /// `promotion.order`.
    #[arg(long, value_name = "ENV|next", default_value = "next")]
    to: String,
    /// Allow a target other than the next environment in `promotion.order`
    /// (recorded in the output, the commit message and the pull request).
    #[arg(long)]
    force: bool,
    /// Change the environment file (without it, only the diff is printed).
    #[arg(long)]
    write: bool,
    #[command(flatten)]
    pr: PrArgs,
    /// Do not check the source environment's stack in AWS.
    #[arg(long, conflicts_with = "verify")]
    skip_verify: bool,
    /// Check the source environment's stack in AWS even when no credentials
    /// are visible in the environment (for example on an EC2 instance role).
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    aws: AwsArgs,
}

/// The pull-request flags `promote` and `rollback` share.
#[derive(Debug, Clone, clap::Args)]
pub struct PrArgs {
    /// Commit the change on a branch, push it to origin and open a pull
    /// request through the GitHub API (GITHUB_TOKEN, GITHUB_REPOSITORY,
    /// GITHUB_API_URL), or update the open one for the same change. The
    /// current branch is left as it was.
    #[arg(long)]
    pub open_pr: bool,
    /// The branch the pull request targets (default: the target
    /// environment's `branch:` when it names one branch, else the current
    /// branch, else the repository's default branch).
    #[arg(long, value_name = "BRANCH", requires = "open_pr")]
    pub base: Option<String>,
}

pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let (work, repo) = load(&g.repo)?;
    let target = match resolve_target(&repo, &args.from, &Target::parse(&args.to)) {
        Ok(t) => t,
        Err(e) => return refuse(g, &e.to_string()),
    };
    let text = read_file(&work, env(&repo, &target)?)?;
    let target = Target::Env(target);
    let plan = match plan_promotion(&repo, &args.from, &target, args.force, &text) {
        Ok(p) => p,
        Err(e) => return refuse(g, &e.to_string()),
    };
    let source = env(&repo, &args.from)?;
    let may_verify = args.verify || crate::aws::credentials_present();
    let gate = match Gate::skipped(plan.changes.is_empty(), args.skip_verify, may_verify) {
        Some(skipped) => skipped,
        None => run_gate(&args.aws, source, &repo.promoted_keys())?,
    };
    let mut report = PromotionReport::new(plan, gate);
    let plan = &report.plan;
    if let Gate::Failed(why) = &report.gate {
        if g.format == Format::Json {
            print_json(&report.to_json())?;
        }
        return refuse(
            g,
            &format!("not promoting {} to {}: {why}", plan.from, plan.to),
        );
    }
    let finish = Finish {
        work: &work,
        edit: &plan.edit,
        commit_message: &plan.commit_message,
        pr_title: &plan.pr_title,
        pr_body: &report.pr_body,
        branch: &promotion_branch(&plan.from, &plan.to),
        bound_branch: repo.environment(&plan.to).and_then(|e| e.branch_name()),
    };
    report.applied = finish.apply(args.write, &args.pr)?;
    match g.format {
        Format::Json => print_json(&report.to_json())?,
        Format::Markdown => print!("{}", report.pr_body),
        Format::Text => print!("{}", report.render_text(g.color)),
    }
    crate::github::write_outputs(&report.applied.outputs(&report.plan.edit))?;
    Ok(ExitCode::SUCCESS)
}

/// Prints a refusal and returns exit status 1.
pub fn refuse(g: &Globals, message: &str) -> anyhow::Result<ExitCode> {
    eprintln!("{} {message}", paint("error:", "1;31", g.color));
    Ok(ExitCode::from(1))
}

/// The working tree and its model, refused when it has errors (see `load_valid`).
pub fn load(dir: &Path) -> anyhow::Result<(WorkTree, Repository)> {
    let work = super::worktree(dir)?;
    let repo = Repository::load_checked(&work, Checks::Full)?;
    Ok((work, repo))
}

/// The environment `name` (already checked to exist).
pub fn env<'a>(repo: &'a Repository, name: &str) -> anyhow::Result<&'a Environment> {
    repo.environment(name)
        .with_context(|| format!("there is no environment `{name}`"))
}

/// The text of `env`'s file in the working tree.
pub fn read_file(work: &WorkTree, env: &Environment) -> anyhow::Result<String> {
    let path = work.root().join(&env.file);
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
}

/// The gate: `source`'s stack must be deployed successfully and run the promoted values.
fn run_gate(aws: &AwsArgs, source: &Environment, keys: &[PromotedKey]) -> anyhow::Result<Gate> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let gate = rt.block_on(async {
        let factory = crate::aws::factory(aws).await;
        check_upstream(&factory, source, keys).await
    })?;
    Ok(gate)
}

/// What happens to a planned edit: written, or committed and proposed.
pub struct Finish<'a> {
    pub work: &'a WorkTree,
    pub edit: &'a FileEdit,
    pub commit_message: &'a str,
    pub pr_title: &'a str,
    pub pr_body: &'a str,
    pub branch: &'a str,
    /// The target environment's branch, when bound to one: the pull
    /// request's base unless --base says otherwise.
    pub bound_branch: Option<&'a str>,
}

impl Finish<'_> {
    /// Writes the file (`write`) and opens the pull request (`pr.open_pr`).
    /// Returns whether the file in the working tree was changed, and the
    /// pull request.
    pub fn apply(&self, write: bool, pr: &PrArgs) -> anyhow::Result<Applied> {
        let mut applied = Applied {
            written: false,
            pull_request: None,
        };
        match Finishing::of(self.edit, write, pr.open_pr) {
            Finishing::OpenPr => applied.pull_request = Some(self.open_pr(pr.base.as_deref())?),
            Finishing::Write => {
                self.write()?;
                applied.written = true;
            }
            _ => {}
        }
        Ok(applied)
    }

    fn path(&self) -> std::path::PathBuf {
        self.work.root().join(&self.edit.file)
    }

    fn write(&self) -> anyhow::Result<()> {
        let path = self.path();
        // The plan was made from this text: refuse if it changed meanwhile.
        let now = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        self.edit.check_unchanged(&now)?;
        std::fs::write(&path, &self.edit.new_text)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Commits the edit on its branch, pushes it and opens or updates the
    /// pull request into `--base` (`explicit`) or [`pr_base`]'s choice.
    fn open_pr(&self, explicit: Option<&str>) -> anyhow::Result<PrOutcome> {
        let gh = GitHub::from_env()?;
        let root = self.work.root();
        let file = self.edit.file.as_str();
        let status = git(root, &["status", "--porcelain", "--", file])?;
        if !status.trim().is_empty() {
            bail!("{file} has uncommitted changes; commit or stash them before --open-pr");
        }
        let current_branch = git(root, &["symbolic-ref", "--short", "-q", "HEAD"])
            .ok()
            .map(|b| b.trim().to_string())
            .filter(|b| !b.is_empty());
        let original = match &current_branch {
            Some(b) => b.clone(),
            None => git(root, &["rev-parse", "HEAD"])?.trim().to_string(),
        };
        let base = match pr_base(explicit, self.bound_branch, current_branch.as_deref()) {
            Some(b) => b,
            None => gh.call(gh.settings().default_branch())?.0,
        };
        // Know the remote branch, if any, so that --force-with-lease protects it.
        let _ = git(
            root,
            &[
                "fetch",
                "-q",
                "origin",
                &format!("+refs/heads/{0}:refs/remotes/origin/{0}", self.branch),
            ],
        );
        git(root, &["checkout", "-q", "-B", self.branch])?;
        let committed = self.commit(root);
        if committed.is_err() {
            // The edit is still in the working tree: undo it, so that it
            // does not follow us back to the original branch.
            let _ = git(root, &["reset", "-q", "--", &self.edit.file]);
            let _ = std::fs::write(self.path(), &self.edit.old_text);
        }
        let result = committed.and_then(|()| {
            git(
                root,
                &["push", "-q", "--force-with-lease", "origin", self.branch],
            )
            .map(drop)
        });
        // Back to where we were, whatever happened.
        let back = git(root, &["checkout", "-q", &original]);
        result?;
        back?;
        let head = self.branch;
        let api = gh.settings();
        let (action, pr) = match gh.call(api.find_open_pr(head))? {
            Some(existing) => (
                PrAction::Updated,
                gh.call(api.update_pr(existing.number, self.pr_title, self.pr_body))?,
            ),
            None => (
                PrAction::Created,
                gh.call(api.create_pr(head, &base, self.pr_title, self.pr_body))?,
            ),
        };
        let PullRequest { number, url } = pr;
        Ok(PrOutcome {
            action,
            number,
            url,
            branch: head.to_string(),
            base,
        })
    }

    fn commit(&self, root: &Path) -> anyhow::Result<()> {
        std::fs::write(self.path(), &self.edit.new_text)
            .with_context(|| format!("cannot write {}", self.path().display()))?;
        git(root, &["add", "--", &self.edit.file])?;
        let has_identity = git(root, &["config", "user.email"])
            .map(|e| !e.trim().is_empty())
            .unwrap_or(false);
        let commit = commit_args(self.commit_message, has_identity);
        git(root, &commit.iter().map(String::as_str).collect::<Vec<_>>())?;
        Ok(())
    }
}

/// Runs `git args` in `dir`; standard output, or an error with standard error.
fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .context("cannot run git; is it installed?")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
