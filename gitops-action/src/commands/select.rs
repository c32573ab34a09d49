//! Which environments a command acts on: from two revisions, from a GitHub
//! event, or from a detect run's JSON. Shared by `detect`, `deploy` and `plan`.
//!
//! The decision of what to compare (from flags or a GitHub event) is
//! `gitops_core::event`; the classification is
//! `gitops_core::git::detect_between`. Only the fetching of missing commits
//! in shallow clones runs `git`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context};
use gitops_core::deploy::inspect;
use gitops_core::detect::{Change, Detection, EnvChange};
use gitops_core::git;
use gitops_core::source::{open_repo, prefix_of, resolve};
use gitops_core::{Environment, GitTree, Repository, WorkTree};

use crate::aws::AwsArgs;
use crate::Globals;
use gitops_core::event::{self, decide, fetch_advice, Decision, EventError};

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

/// What was selected.
pub struct Selected {
    /// The clone, at the GitOps root's prefix.
    pub repo: gix::Repository,
    /// The GitOps root's path inside the git repository.
    pub prefix: String,
    /// The base commit, when there is one.
    pub base: Option<String>,
    /// The head commit, when there is one (a deleted branch has none).
    pub head: Option<String>,
    /// The head commit's id.
    pub head_id: Option<gix::ObjectId>,
    /// What changed.
    pub detection: Detection,
}

/// The `--base` that reconciles against what is deployed.
pub const DEPLOYED: &str = "deployed";

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
    if args.base.as_deref() == Some(DEPLOYED) {
        let Some(aws) = aws else {
            bail!("--base deployed reads AWS: it works with detect, plan and deploy");
        };
        return select_deployed(g, args, aws);
    }
    let mut clone = Checkout::open(&root(g))?;
    let mut notes = Vec::new();
    let payload = event_payload(args)?;
    let decision = if let (Some(payload), None) = (&payload, &args.base) {
        let name = std::env::var("GITHUB_EVENT_NAME")
            .context("--github needs GITHUB_EVENT_NAME (GitHub Actions sets it)")?;
        let sha = std::env::var("GITHUB_SHA").ok();
        let head = args.head.as_deref().or(sha.as_deref());
        let mut d = decide(&name, payload, head, &mut clone, &mut notes)?;
        if let (Some(h), Decision::Compare { head, .. }) = (&args.head, &mut d) {
            head.clone_from(h);
        }
        d
    } else {
        let Some(base) = args.base.clone() else {
            bail!("say what to compare: --base REV [--head REV], or --github in GitHub Actions");
        };
        let head = head_rev(args);
        for rev in [&base, &head] {
            if is_full_sha(rev) {
                clone.ensure(rev).map_err(|why| fetch_advice(rev, &why))?;
            }
        }
        Decision::Compare { base, head }
    };
    for n in &notes {
        eprintln!("note: {n}");
    }

    let (base, head_id, mut detection) = match &decision {
        Decision::Compare { base, head } => {
            let b = resolve(&clone.repo, base)?;
            let h = resolve(&clone.repo, head)?;
            let d = git::detect_between(&clone.repo, Some(b), h, &clone.prefix)?;
            (Some(b.to_string()), Some(h), d)
        }
        Decision::AllCreated { head } => {
            let h = resolve(&clone.repo, head)?;
            let d = git::detect_between(&clone.repo, None, h, &clone.prefix)?;
            (None, Some(h), d)
        }
        Decision::AllUpdated { head } => {
            let h = resolve(&clone.repo, head)?;
            let model = git::load_at(&clone.repo, h, &clone.prefix)?;
            (None, Some(h), gitops_core::detect::all_updated(&model))
        }
        Decision::Deleted { before, .. } => (Some(before.clone()), None, Detection::default()),
        _ => bail!("this GitHub event names no revisions to compare; pass --base REV [--head REV]"),
    };
    restrict_to_branch(args, payload.as_ref(), &clone.repo, &mut detection);
    let head = match (&decision, head_id) {
        (Decision::Deleted { after, .. }, _) => Some(after.clone()),
        (_, h) => h.map(|h| h.to_string()),
    };
    Ok(Selected {
        repo: clone.repo,
        prefix: clone.prefix,
        base,
        head,
        head_id,
        detection,
    })
}

/// `--base deployed`: every environment against the commit it was last
/// deployed from, read from AWS (one paginated DescribeStacks per region
/// and role; in pipeline mode, each pipeline's latest executions). Deployed
/// commits a shallow clone lacks are fetched; those that cannot be are
/// "not in history".
fn select_deployed(g: &Globals, args: &SelectArgs, aws: &AwsArgs) -> anyhow::Result<Selected> {
    let mut clone = Checkout::open(&root(g))?;
    let head = head_rev(args);
    if is_full_sha(&head) {
        clone
            .ensure(&head)
            .map_err(|why| fetch_advice(&head, &why))?;
    }
    let head_id = resolve(&clone.repo, &head)?;
    let head_model = git::load_at(&clone.repo, head_id, &clone.prefix)?;
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let deployed = rt
        .block_on(async {
            let factory = std::sync::Arc::new(crate::aws::factory(aws).await);
            inspect::observe_bases(factory, &head_model, 16).await
        })
        .context("reading what is deployed (--base deployed)")?;
    let commits: std::collections::BTreeSet<&str> = deployed
        .commits()
        .into_iter()
        .chain(deployed.undeclared_commits())
        .collect();
    for c in commits {
        if is_full_sha(c) && git::known_commit(&clone.repo, c).is_none() {
            if let Err(why) = clone.ensure(c) {
                eprintln!("note: deployed commit {c} is not in this clone ({why}); its environments count as updated");
            }
        }
    }
    let mut detection =
        git::detect_deployed(&clone.repo, head_id, &clone.prefix, &head_model, &deployed)?;
    let payload = event_payload(args)?;
    restrict_to_branch(args, payload.as_ref(), &clone.repo, &mut detection);
    Ok(Selected {
        repo: clone.repo,
        prefix: clone.prefix,
        base: Some(DEPLOYED.to_string()),
        head: Some(head_id.to_string()),
        head_id: Some(head_id),
        detection,
    })
}

/// --head, else GITHUB_SHA with --github, else HEAD.
fn head_rev(args: &SelectArgs) -> String {
    args.head
        .clone()
        .or_else(|| {
            args.github
                .then(|| std::env::var("GITHUB_SHA").ok())
                .flatten()
        })
        .unwrap_or_else(|| "HEAD".into())
}

/// With --github, the event payload at GITHUB_EVENT_PATH.
fn event_payload(args: &SelectArgs) -> anyhow::Result<Option<serde_json::Value>> {
    if !args.github {
        return Ok(None);
    }
    let path = std::env::var_os("GITHUB_EVENT_PATH")
        .ok_or_else(|| anyhow!("--github needs GITHUB_EVENT_PATH (GitHub Actions sets it)"))?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the event payload {}", path.to_string_lossy()))?;
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("the event payload {} is not JSON", path.to_string_lossy()))
}

/// Leaves out of `detection` the environments bound to another branch than
/// the one being deployed, saying so for each.
fn restrict_to_branch(
    args: &SelectArgs,
    payload: Option<&serde_json::Value>,
    repo: &gix::Repository,
    detection: &mut Detection,
) {
    for s in branch_scope(args, payload, repo).restrict(detection) {
        eprintln!("{}: skipped: {}", s.name, s.reason);
    }
}

/// The branch being deployed and the default branch, from the flags, the
/// GitHub run, or the clone's origin/HEAD (see [`SelectArgs`]).
fn branch_scope(
    args: &SelectArgs,
    payload: Option<&serde_json::Value>,
    repo: &gix::Repository,
) -> gitops_core::BranchScope {
    let (event_branch, event_default) = match payload {
        Some(p) => gitops_core::github_branches(p, |k| std::env::var(k).ok()),
        None => (None, None),
    };
    let default_branch = args
        .default_branch
        .clone()
        .or(event_default)
        .or_else(|| origin_head(repo))
        .unwrap_or_else(|| "main".into());
    let branch = args
        .branch
        .clone()
        .or(event_branch)
        .unwrap_or_else(|| default_branch.clone());
    gitops_core::BranchScope::new(branch, default_branch)
}

/// The branch origin/HEAD points at, when the clone knows it.
fn origin_head(repo: &gix::Repository) -> Option<String> {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(repo.path())
        .args([
            "symbolic-ref",
            "--quiet",
            "--short",
            "refs/remotes/origin/HEAD",
        ])
        .output()
        .ok()?;
    let name = String::from_utf8(out.stdout).ok()?;
    name.trim()
        .strip_prefix("origin/")
        .filter(|b| !b.is_empty())
        .map(str::to_string)
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
        let (selected, mut changes) = from_detect_file(g, file)?;
        if !environments.is_empty() {
            changes.retain(|c| environments.contains(&c.name));
            for name in environments {
                if !changes.iter().any(|c| &c.name == name) {
                    bail!(
                        "environment `{name}` is not among the changes in {}",
                        file.display()
                    );
                }
            }
        }
        return Ok((selected, changes));
    }
    if !environments.is_empty() {
        let selected = at_head(g, select.head.as_deref())?;
        let head = selected.head_id.ok_or_else(|| anyhow!("no head commit"))?;
        let tree = GitTree::new(selected.repo.clone(), head, &selected.prefix)?;
        let model = Repository::load(&tree)?;
        let changes = gitops_core::select::named(&model, environments, &head.to_string())?;
        return Ok((selected, changes));
    }
    if select.base.is_none() && !select.github {
        let extra = if verb == "deploy" {
            ", --environment NAME or --from-detect FILE"
        } else {
            " or --environment NAME"
        };
        bail!("say what to {verb}: --base REV [--head REV], --github{extra}");
    }
    let selected = self::select_with(g, select, Some(aws))?;
    if selected.base.as_deref() == Some(DEPLOYED) {
        let head = selected.head.as_deref().unwrap_or_default();
        for e in selected.detection.affected() {
            eprintln!("{}", gitops_core::deployed::describe(e, head));
        }
    }
    let changes = selected.detection.affected().cloned().collect();
    Ok((selected, changes))
}

/// Only the head revision (default HEAD), with nothing detected: for commands
/// given environments by name.
pub fn at_head(g: &Globals, head: Option<&str>) -> anyhow::Result<Selected> {
    let mut clone = Checkout::open(&root(g))?;
    let head = head.unwrap_or("HEAD");
    if is_full_sha(head) {
        clone.ensure(head).map_err(|why| fetch_advice(head, &why))?;
    }
    let id = resolve(&clone.repo, head)?;
    Ok(Selected {
        repo: clone.repo,
        prefix: clone.prefix,
        base: None,
        head: Some(id.to_string()),
        head_id: Some(id),
        detection: Detection::default(),
    })
}

/// The environments a `gitops detect --format json` run found, read again
/// at its head (and at its base for deleted ones), so that a matrix job acts
/// on exactly its detect job's result.
pub fn from_detect_file(g: &Globals, file: &Path) -> anyhow::Result<(Selected, Vec<EnvChange>)> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not the JSON of `gitops detect --format json`",
            file.display()
        )
    })?;
    let head = v["head"].as_str().filter(|s| !s.is_empty());
    let mut selected = at_head(g, head)?;
    let head_id = selected.head_id.ok_or_else(|| anyhow!("no head commit"))?;
    let head_model = git::load_at(&selected.repo, head_id, &selected.prefix)?;
    let mut base_model = None;
    let mut models = git::Models::default();
    let mut out = Vec::new();
    let Some(envs) = v["environments"].as_array() else {
        bail!(
            "{} has no `environments` list; pass the JSON of `gitops detect --format json`",
            file.display()
        );
    };
    for e in envs {
        let name = e["name"].as_str().unwrap_or_default();
        let change = match e["change"].as_str() {
            Some("created") => Change::Created,
            Some("updated") => Change::Updated,
            Some("deleted") => Change::Deleted,
            _ => continue,
        };
        if change == Change::Deleted && v["base"].as_str() == Some(DEPLOYED) {
            // `--base deployed`: each deleted environment at its own deployed commit.
            let commit = e["base"].as_str().filter(|s| !s.is_empty());
            if let Some(c) = commit.filter(|c| is_full_sha(c)) {
                if git::known_commit(&selected.repo, c).is_none() {
                    let mut clone = Checkout {
                        root: root(g),
                        repo: selected.repo.clone(),
                        prefix: selected.prefix.clone(),
                    };
                    if clone.ensure(c).is_ok() {
                        selected.repo = clone.repo;
                    }
                }
            }
            let at = models.declaration(&selected.repo, &selected.prefix, commit, name);
            let env = at.environment(
                name,
                e["stack"].as_str().unwrap_or_default(),
                e["region"].as_str().unwrap_or_default(),
            );
            let mut c = EnvChange::new(env, change);
            c.declaration = Some(at.declaration);
            out.push(c);
            continue;
        }
        // Each entry is checked against the repository by the planner (a
        // deleted environment must be absent at head, a created or updated
        // one present): a mismatch refuses that environment.
        let env = if change == Change::Deleted {
            if base_model.is_none() {
                let Some(base) = v["base"].as_str().filter(|s| !s.is_empty()) else {
                    bail!(
                        "{} lists deleted environment `{name}` but has no base commit",
                        file.display()
                    );
                };
                let mut clone = Checkout {
                    root: root(g),
                    repo: selected.repo.clone(),
                    prefix: selected.prefix.clone(),
                };
                clone.ensure(base).map_err(|why| fetch_advice(base, &why))?;
                selected.repo = clone.repo;
                let id = resolve(&selected.repo, base)?;
                base_model = Some(git::load_at(&selected.repo, id, &selected.prefix)?);
                selected.base = Some(id.to_string());
            }
            base_model
                .as_ref()
                .and_then(|m| m.environment(name))
                .or_else(|| head_model.environment(name))
                .cloned()
        } else {
            Some(head_model.environment(name).cloned().unwrap_or_else(|| {
                Environment::undeclared(
                    name,
                    e["stack"].as_str().unwrap_or_default(),
                    e["region"].as_str().unwrap_or_default(),
                )
            }))
        };
        let Some(env) = env else {
            bail!(
                "environment `{name}` from {} is not in the repository at that revision",
                file.display()
            );
        };
        out.push(EnvChange::new(env, change));
    }
    Ok((selected, out))
}

fn root(g: &Globals) -> PathBuf {
    match WorkTree::discover(&g.repo) {
        Ok(w) => w.root().to_path_buf(),
        Err(_) => g.repo.clone(),
    }
}

fn is_full_sha(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The clone being read, and the `git fetch` that fills a shallow one in.
pub struct Checkout {
    root: PathBuf,
    repo: gix::Repository,
    prefix: String,
}

impl Checkout {
    fn open(root: &Path) -> anyhow::Result<Self> {
        let repo = open_repo(root)?;
        let prefix = prefix_of(&repo, root)?;
        Ok(Self {
            root: root.to_path_buf(),
            repo,
            prefix,
        })
    }

    fn reopen(&mut self) -> anyhow::Result<()> {
        self.repo = open_repo(&self.root)?;
        Ok(())
    }

    /// Makes sure commit `sha` is here, fetching it when missing.
    fn ensure(&mut self, sha: &str) -> Result<(), String> {
        event::ensure_commit(self, sha)
    }
}

impl event::Fetch for Checkout {
    fn repo(&self) -> &gix::Repository {
        &self.repo
    }

    fn fetch(&mut self, args: &[String], shas: &[&str]) -> Result<(), String> {
        eprintln!(
            "note: fetching {} {} from origin",
            shas.join(" "),
            args.join(" ")
        );
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["fetch", "--no-tags", "--quiet"])
            .args(args)
            .arg("origin")
            .args(shas)
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        let reopened = self.reopen().map_err(|e| e.to_string());
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let msg = stderr.trim();
            return Err(if msg.is_empty() {
                format!("git fetch exited with {}", out.status)
            } else {
                msg.lines().last().unwrap_or(msg).to_string()
            });
        }
        reopened
    }
}

impl event::Git for Checkout {
    fn fetch_commit(&mut self, sha: &str) -> Result<(), EventError> {
        self.ensure(sha).map_err(|why| fetch_advice(sha, why))
    }

    fn merge_base(&mut self, a: &str, b: &str) -> Result<Option<String>, EventError> {
        event::deepen_to_merge_base(self, a, b)
    }

    fn is_ancestor(&mut self, a: &str, b: &str) -> Option<bool> {
        event::is_ancestor_in(&self.repo, a, b)
    }

    fn branch(&mut self, name: &str) -> Option<String> {
        git::branch_commit(&self.repo, name).map(|id| id.to_string())
    }
}
