//! Which environments a command acts on: from two revisions, from a GitHub
//! event, or from a detect run's JSON. Shared by `detect`, `deploy` and `plan`.
//!
//! The selection is `gitops_core::select` (what to compare, from the flags
//! or a GitHub event, and the classification); this module reads the flags,
//! the event payload and, for `--base deployed`, AWS, and runs the
//! `git fetch` that fills in a shallow clone.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use gitops_core::detect::EnvChange;
use gitops_core::event::{Checkout, Fetch, FetchError};
pub use gitops_core::select::Selected;
use gitops_core::select::{self as core, GithubRun, Request, SelectError};

use crate::aws::AwsArgs;
use crate::Globals;

/// The flags that choose what to compare.
#[derive(Debug, Clone, clap::Args)]
pub struct SelectArgs {
    /// The revision to compare from: a commit, branch, tag or expression
    /// such as HEAD~1 or origin/main; or `deployed`: each environment
    /// against the commit it was last deployed from, read from AWS (its
    /// stack's gitops:commit tag; in pipeline mode the latest succeeded
    /// execution's source revision), so no failed or skipped run ever loses
    /// a change (detect, plan and deploy).
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// The revision to compare to [default: HEAD, or GITHUB_SHA with --github].
    #[arg(long, value_name = "REV")]
    pub head: Option<String>,
    /// Work out base and head from the GitHub event (GITHUB_EVENT_NAME and
    /// the payload at GITHUB_EVENT_PATH), fetching commits a shallow
    /// checkout lacks. --base and --head, when given, win.
    #[arg(long)]
    pub github: bool,
    /// The branch being deployed: only environments bound to it (`branch:`
    /// in their file, else `defaults.branch` in gitops.yaml; unbound ones
    /// follow the default branch) are selected, the others listed as
    /// skipped [default: with --github, the pull request's target or the
    /// pushed branch; else the default branch].
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// The repository's default branch [default: with --github, the event's
    /// repository.default_branch; else origin/HEAD; else main].
    #[arg(long, value_name = "NAME")]
    pub default_branch: Option<String>,
}

/// Decides base and head from the flags or the GitHub event, fetches what a
/// shallow clone lacks, and classifies every environment.
pub fn select(g: &Globals, args: &SelectArgs) -> anyhow::Result<Selected> {
    select_with(g, args, None)
}

/// [`select`], with AWS for `--base deployed`.
pub fn select_with(
    g: &Globals,
    args: &SelectArgs,
    aws: Option<&AwsArgs>,
) -> anyhow::Result<Selected> {
    let request = request(args)?;
    let mut clone = checkout(g)?;
    let selected = if request.is_deployed() {
        let Some(aws) = aws else {
            bail!("--base deployed reads AWS: it works with detect, plan and deploy");
        };
        let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        rt.block_on(async {
            let factory = Arc::new(crate::aws::factory(aws).await);
            core::deployed(&mut clone, &request, factory).await
        })
    } else {
        core::select(&mut clone, &request)
    }
    .map_err(error)?;
    for line in selected.log() {
        eprintln!("{line}");
    }
    Ok(selected)
}

/// The request the flags make; with --github, the event payload at
/// GITHUB_EVENT_PATH and the runner's variables.
fn request(args: &SelectArgs) -> anyhow::Result<Request> {
    let request = Request::new()
        .with_base(args.base.clone())
        .with_head(args.head.clone())
        .with_branches(args.branch.clone(), args.default_branch.clone());
    if !args.github {
        return Ok(request);
    }
    let path = std::env::var_os("GITHUB_EVENT_PATH")
        .ok_or_else(|| anyhow!("--github needs GITHUB_EVENT_PATH (GitHub Actions sets it)"))?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the event payload {}", path.to_string_lossy()))?;
    let payload = serde_json::from_str(&text)
        .with_context(|| format!("the event payload {} is not JSON", path.to_string_lossy()))?;
    Ok(request.with_github(GithubRun::new(payload, |k| std::env::var(k).ok())))
}

/// The environments a command acts on, with their change: those a detect
/// run found (`from_detect`, narrowed to `environments` when given), those
/// named (`environments`, as they are at --head, counted as updated), or
/// those that changed between base and head (`select`). `verb` names the
/// command in the message asking for a selection.
pub fn targets(
    g: &Globals,
    select: &SelectArgs,
    environments: &[String],
    from_detect: Option<&Path>,
    verb: &str,
    aws: &AwsArgs,
) -> anyhow::Result<(Selected, Vec<EnvChange>)> {
    if let Some(file) = from_detect {
        return core::from_detect_file(&mut checkout(g)?, file, environments).map_err(error);
    }
    if !environments.is_empty() {
        let head = select.head.as_deref();
        return core::named_at_head(&mut checkout(g)?, head, environments).map_err(error);
    }
    if select.base.is_none() && !select.github {
        let verb = verb.to_string();
        return Err(SelectError::NothingChosen { verb }.into());
    }
    let selected = self::select_with(g, select, Some(aws))?;
    for line in selected.deployed_lines() {
        eprintln!("{line}");
    }
    let changes = selected.changes();
    Ok((selected, changes))
}

/// Only the head revision (default HEAD), with nothing detected: for commands
/// given environments by name.
pub fn at_head(g: &Globals, head: Option<&str>) -> anyhow::Result<Selected> {
    core::at_head(&mut checkout(g)?, head).map_err(error)
}

/// The clone holding --repo, fetching with `git`.
fn checkout(g: &Globals) -> anyhow::Result<Checkout> {
    Ok(Checkout::discover(&g.repo, Box::new(GitFetch))?)
}

/// A selection error, with a repository's own error on top (so that its
/// problems are printed).
fn error(e: SelectError) -> anyhow::Error {
    match e {
        SelectError::Repository(e) => e.into(),
        e => e.into(),
    }
}

/// `git fetch` from origin, for the commits a shallow clone lacks.
struct GitFetch;

impl Fetch for GitFetch {
    fn fetch(&mut self, dir: &Path, args: &[String], shas: &[&str]) -> Result<(), FetchError> {
        eprintln!(
            "note: fetching {} {} from origin",
            shas.join(" "),
            args.join(" ")
        );
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["fetch", "--no-tags", "--quiet"])
            .args(args)
            .arg("origin")
            .args(shas)
            .output()
            .map_err(|e| FetchError::Spawn(e.to_string()))?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let msg = stderr.trim();
        Err(FetchError::Git(match msg.lines().last() {
            Some(last) => last.to_string(),
            None => format!("git fetch exited with {}", out.status),
        }))
    }
}
