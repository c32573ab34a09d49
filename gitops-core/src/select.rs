//! Which environments a command acts on: those that changed between two
//! revisions ([`select`]: from `--base`/`--head` or a GitHub event, and
//! [`deployed`] for `--base deployed`), those a detect run found
//! ([`from_detect_file`], each entry checked against the repository), or
//! those chosen by name ([`named`], [`named_at_head`]: each one checked
//! against the repository at the revision, with the known names in the
//! error). Every selection keeps only the environments bound to the branch
//! being deployed ([`crate::BranchScope`]). Missing commits of a shallow
//! clone are fetched through the [`Checkout`]'s [`crate::event::Fetch`].
//!
//! ```
//! use gitops_core::select::UnknownEnvironment;
//!
//! let e = UnknownEnvironment::new("prod", "0123456789abcdef", ["dev", "qa"]);
//! assert_eq!(e.to_string(), "no environment `prod` at 0123456789ab; known: dev, qa");
//! ```

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::aws::{AwsError, ClientFactory};
use crate::detect::{Change, Detection, EnvChange};
use crate::event::{decide, fetch_advice, is_full_sha, Checkout, Decision, EventError};
use crate::git;
use crate::model::{Environment, Repository};
use crate::report::DetectReport;
use crate::source::{resolve, GitTree};

/// The `--base` that compares each environment with the commit it was last
/// deployed from, read from AWS.
pub const DEPLOYED: &str = "deployed";

/// A name that is not an environment of the repository at a revision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no environment `{name}` at {}; known: {}", crate::text::short_commit(.at), .known.join(", "))]
#[non_exhaustive]
pub struct UnknownEnvironment {
    /// The name as given.
    pub name: String,
    /// The commit.
    pub at: String,
    /// The environments there.
    pub known: Vec<String>,
}

impl UnknownEnvironment {
    /// `name` is not among `known` at commit `at`.
    pub fn new<S: Into<String>>(name: &str, at: &str, known: impl IntoIterator<Item = S>) -> Self {
        Self {
            name: name.to_string(),
            at: at.to_string(),
            known: known.into_iter().map(Into::into).collect(),
        }
    }
}

/// Checks that every name in `names` is an environment of `model`, the
/// repository at commit `at`.
pub fn check_names(
    model: &Repository,
    names: &[String],
    at: &str,
) -> Result<(), UnknownEnvironment> {
    match names.iter().find(|n| model.environment(n).is_none()) {
        Some(name) => Err(UnknownEnvironment::new(
            name,
            at,
            model.environments.iter().map(|e| e.name.as_str()),
        )),
        None => Ok(()),
    }
}

/// The environments `names` of `model` (the repository at commit `at`), in
/// that order, each counted as updated.
pub fn named(
    model: &Repository,
    names: &[String],
    at: &str,
) -> Result<Vec<EnvChange>, UnknownEnvironment> {
    check_names(model, names, at)?;
    Ok(names
        .iter()
        .filter_map(|n| model.environment(n))
        .map(|e| EnvChange::new(e.clone(), Change::Updated))
        .collect())
}

/// What a GitHub Actions run says, for `--github`: the event and its
/// payload, `GITHUB_SHA`, and the branches it deploys.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct GithubRun {
    /// `GITHUB_EVENT_NAME`.
    pub event: Option<String>,
    /// The event payload (the JSON at `GITHUB_EVENT_PATH`).
    pub payload: Value,
    /// `GITHUB_SHA`.
    pub sha: Option<String>,
    /// The branch the run deploys ([`crate::github_branches`]).
    pub branch: Option<String>,
    /// The repository's default branch, from the payload.
    pub default_branch: Option<String>,
}

impl GithubRun {
    /// The run with event payload `payload`; `var` reads the runner's
    /// variables (`GITHUB_EVENT_NAME`, `GITHUB_SHA`, `GITHUB_BASE_REF`, ...).
    pub fn new(payload: Value, var: impl Fn(&str) -> Option<String>) -> Self {
        let (branch, default_branch) = crate::github_branches(&payload, &var);
        Self {
            event: var("GITHUB_EVENT_NAME"),
            sha: var("GITHUB_SHA"),
            payload,
            branch,
            default_branch,
        }
    }
}

/// What to compare, as the flags say.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Request {
    /// `--base`: a revision, or [`DEPLOYED`].
    pub base: Option<String>,
    /// `--head`.
    pub head: Option<String>,
    /// `--github`: the run whose event decides base and head (`--base` and
    /// `--head` win).
    pub github: Option<GithubRun>,
    /// `--branch`: the branch being deployed.
    pub branch: Option<String>,
    /// `--default-branch`.
    pub default_branch: Option<String>,
}

impl Request {
    /// A request with nothing said: [`select`] asks for a base.
    pub fn new() -> Self {
        Self::default()
    }

    /// With `--base`.
    pub fn with_base(mut self, base: Option<String>) -> Self {
        self.base = base;
        self
    }

    /// With `--head`.
    pub fn with_head(mut self, head: Option<String>) -> Self {
        self.head = head;
        self
    }

    /// With `--github`.
    pub fn with_github(mut self, run: GithubRun) -> Self {
        self.github = Some(run);
        self
    }

    /// With `--branch` and `--default-branch`.
    pub fn with_branches(mut self, branch: Option<String>, default_branch: Option<String>) -> Self {
        self.branch = branch;
        self.default_branch = default_branch;
        self
    }

    /// Whether this is `--base deployed` ([`deployed`] reads AWS for it).
    pub fn is_deployed(&self) -> bool {
        self.base.as_deref() == Some(DEPLOYED)
    }

    /// The head revision: `--head`, else `GITHUB_SHA` with `--github`, else `HEAD`.
    pub fn head_rev(&self) -> String {
        self.head
            .clone()
            .or_else(|| self.github.as_ref().and_then(|g| g.sha.clone()))
            .unwrap_or_else(|| "HEAD".into())
    }

    /// The branch being deployed and the default branch: the flags, else
    /// the GitHub run, else `origin_head` (the clone's `origin/HEAD`) for
    /// the default branch, else `main`; the branch defaults to the default
    /// branch.
    pub fn branch_scope(&self, origin_head: Option<String>) -> crate::BranchScope {
        let run = self.github.as_ref();
        let default_branch = self
            .default_branch
            .clone()
            .or_else(|| run.and_then(|r| r.default_branch.clone()))
            .or(origin_head)
            .unwrap_or_else(|| "main".into());
        let branch = self
            .branch
            .clone()
            .or_else(|| run.and_then(|r| r.branch.clone()))
            .unwrap_or_else(|| default_branch.clone());
        crate::BranchScope::new(branch, default_branch)
    }
}

/// Why no selection could be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// Neither `--base` nor `--github`.
    #[error("say what to compare: --base REV [--head REV], or --github in GitHub Actions")]
    NoRevisions,
    /// A command that needs a selection got none (`verb` names it).
    #[error("say what to {verb}: --base REV [--head REV], --github{}", if .verb == "deploy" { ", --environment NAME or --from-detect FILE" } else { " or --environment NAME" })]
    NothingChosen {
        /// The command: deploy, plan, ...
        verb: String,
    },
    /// `--github` without `GITHUB_EVENT_NAME`.
    #[error("--github needs GITHUB_EVENT_NAME (GitHub Actions sets it)")]
    NoEventName,
    /// `--base deployed` could not read AWS.
    #[error("reading what is deployed (--base deployed)")]
    Deployed(#[source] AwsError),
    /// The event could not be resolved, or a commit fetched.
    #[error(transparent)]
    Event(#[from] EventError),
    /// A name given with `--environment` is not an environment.
    #[error(transparent)]
    Unknown(#[from] UnknownEnvironment),
    /// A `--from-detect` file that cannot be used.
    #[error(transparent)]
    DetectFile(#[from] DetectFileError),
    /// Reading the repository failed (an invalid repository, an unknown
    /// revision, ...).
    #[error(transparent)]
    Repository(#[from] crate::Error),
}

/// Why a `--from-detect` file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DetectFileError {
    /// The file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a detect run's JSON.
    #[error("{path} is not the JSON of `gitops detect --format json`")]
    NotJson {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The JSON has no `environments` list.
    #[error("{path} has no `environments` list; pass the JSON of `gitops detect --format json`")]
    NoEnvironments {
        /// The file.
        path: String,
    },
    /// A deleted environment, and no base commit to read it at.
    #[error("{path} lists deleted environment `{name}` but has no base commit")]
    NoBase {
        /// The file.
        path: String,
        /// The environment.
        name: String,
    },
    /// A deleted environment that neither base nor head declares.
    #[error("environment `{name}` from {path} is not in the repository at that revision")]
    NotInRepository {
        /// The file.
        path: String,
        /// The environment.
        name: String,
    },
    /// An `--environment` that the file does not list as changed.
    #[error("environment `{name}` is not among the changes in {path}")]
    NotAmongChanges {
        /// The file.
        path: String,
        /// The environment.
        name: String,
    },
}

/// What was selected.
#[derive(Debug)]
#[non_exhaustive]
pub struct Selected {
    /// The clone, at the GitOps root's prefix.
    pub repo: gix::Repository,
    /// The GitOps root's path inside the git repository.
    pub prefix: String,
    /// The base commit, when there is one ([`DEPLOYED`] for `--base deployed`).
    pub base: Option<String>,
    /// The head commit, when there is one (a deleted branch has none).
    pub head: Option<String>,
    /// The head commit's id.
    pub head_id: Option<gix::ObjectId>,
    /// What changed (empty for environments chosen by name or by a detect file).
    pub detection: Detection,
    /// Explanations for the log (how the event was read, commits not fetched).
    pub notes: Vec<String>,
}

impl Selected {
    fn new(
        clone: &Checkout,
        base: Option<String>,
        head_id: Option<gix::ObjectId>,
        detection: Detection,
    ) -> Self {
        Self {
            repo: clone.repo().clone(),
            prefix: clone.prefix().to_string(),
            base,
            head: head_id.map(|h| h.to_string()),
            head_id,
            detection,
            notes: Vec::new(),
        }
    }

    /// The repository at the head commit, when there is one.
    pub fn head_tree(&self) -> crate::Result<Option<GitTree>> {
        self.head_id
            .map(|id| GitTree::new(self.repo.clone(), id, &self.prefix))
            .transpose()
    }

    /// The created, updated and deleted environments.
    pub fn changes(&self) -> Vec<EnvChange> {
        self.detection.affected().cloned().collect()
    }

    /// The lines for the log: each note (`note: …`), then each environment
    /// left out for its branch (`dev: skipped: bound to branch …`).
    pub fn log(&self) -> Vec<String> {
        let notes = self.notes.iter().map(|n| format!("note: {n}"));
        let skipped = self.detection.skipped.iter();
        notes
            .chain(skipped.map(|s| format!("{}: skipped: {}", s.name, s.reason)))
            .collect()
    }

    /// With `--base deployed`, a line per affected environment saying what
    /// was deployed and what changed since (`qa: deployed X, head Y: …`).
    pub fn deployed_lines(&self) -> Vec<String> {
        if self.base.as_deref() != Some(DEPLOYED) {
            return Vec::new();
        }
        let head = self.head.as_deref().unwrap_or_default();
        let describe = |e| crate::deployed::describe(e, head);
        self.detection.affected().map(describe).collect()
    }
}

/// Keeps in `detection` the environments bound to the branch being deployed.
fn restrict(request: &Request, clone: &Checkout, detection: &mut Detection) {
    let scope = request.branch_scope(git::origin_head(clone.repo()));
    scope.restrict(detection);
}

/// Decides base and head from the request (the flags, or the GitHub event),
/// fetches what a shallow clone lacks, and classifies every environment.
/// Not for `--base deployed` ([`deployed`]).
pub fn select(clone: &mut Checkout, request: &Request) -> Result<Selected, SelectError> {
    let mut notes = Vec::new();
    let decision = match (&request.github, &request.base) {
        (Some(run), None) => {
            let name = run.event.as_deref().ok_or(SelectError::NoEventName)?;
            let head = request.head.as_deref().or(run.sha.as_deref());
            let mut d = decide(name, &run.payload, head, clone, &mut notes)?;
            if let (Some(h), Decision::Compare { head, .. }) = (&request.head, &mut d) {
                head.clone_from(h);
            }
            d
        }
        (None, None) => return Err(SelectError::NoRevisions),
        (_, Some(base)) => {
            let head = request.head_rev();
            clone.ensure_if_sha(base)?;
            clone.ensure_if_sha(&head)?;
            Decision::Compare {
                base: base.clone(),
                head,
            }
        }
    };
    let (repo, prefix) = (clone.repo(), clone.prefix());
    let (base, head_id, mut detection) = match &decision {
        Decision::Compare { base, head } => {
            let b = resolve(repo, base)?;
            let h = resolve(repo, head)?;
            let d = git::detect_between(repo, Some(b), h, prefix)?;
            (Some(b.to_string()), Some(h), d)
        }
        Decision::AllCreated { head } => {
            let h = resolve(repo, head)?;
            let d = git::detect_between(repo, None, h, prefix)?;
            (None, Some(h), d)
        }
        Decision::AllUpdated { head } => {
            let h = resolve(repo, head)?;
            let model = git::load_at(repo, h, prefix)?;
            (None, Some(h), crate::detect::all_updated(&model))
        }
        Decision::Deleted { before, .. } => (Some(before.clone()), None, Detection::default()),
    };
    restrict(request, clone, &mut detection);
    let mut selected = Selected::new(clone, base, head_id, detection);
    if let Decision::Deleted { after, .. } = decision {
        selected.head = Some(after);
    }
    selected.notes = notes;
    Ok(selected)
}

/// `--base deployed`: every environment against the commit it was last
/// deployed from, read from AWS through `factory` (one paginated
/// DescribeStacks per region and role; in pipeline mode, each pipeline's
/// latest executions). Deployed commits a shallow clone lacks are fetched;
/// those that cannot be are "not in history", with a note.
pub async fn deployed(
    clone: &mut Checkout,
    request: &Request,
    factory: Arc<dyn ClientFactory>,
) -> Result<Selected, SelectError> {
    let head = request.head_rev();
    clone.ensure_if_sha(&head)?;
    let head_id = resolve(clone.repo(), &head)?;
    let head_model = git::load_at(clone.repo(), head_id, clone.prefix())?;
    let deployed = crate::deploy::inspect::observe_bases(factory, &head_model, 16)
        .await
        .map_err(SelectError::Deployed)?;
    let commits: BTreeSet<&str> = deployed
        .commits()
        .into_iter()
        .chain(deployed.undeclared_commits())
        .collect();
    let mut notes = Vec::new();
    for c in commits {
        if is_full_sha(c) && git::known_commit(clone.repo(), c).is_none() {
            if let Err(why) = clone.ensure(c) {
                notes.push(format!("deployed commit {c} is not in this clone ({why}); its environments count as updated"));
            }
        }
    }
    let (repo, prefix) = (clone.repo(), clone.prefix());
    let mut detection = git::detect_deployed(repo, head_id, prefix, &head_model, &deployed)?;
    restrict(request, clone, &mut detection);
    let mut selected = Selected::new(clone, Some(DEPLOYED.to_string()), Some(head_id), detection);
    selected.notes = notes;
    Ok(selected)
}

/// Only the head revision (default `HEAD`), with nothing detected: for
/// commands given environments by name.
pub fn at_head(clone: &mut Checkout, head: Option<&str>) -> Result<Selected, SelectError> {
    let head = head.unwrap_or("HEAD");
    clone.ensure_if_sha(head)?;
    let id = resolve(clone.repo(), head)?;
    Ok(Selected::new(clone, None, Some(id), Detection::default()))
}

/// The environments `names` as they are at `head` (default `HEAD`), each
/// counted as updated ([`named`]).
pub fn named_at_head(
    clone: &mut Checkout,
    head: Option<&str>,
    names: &[String],
) -> Result<(Selected, Vec<EnvChange>), SelectError> {
    let selected = at_head(clone, head)?;
    let model = match selected.head_tree()? {
        Some(tree) => Repository::load(&tree)?,
        None => return Ok((selected, Vec::new())),
    };
    let changes = named(&model, names, selected.head.as_deref().unwrap_or_default())?;
    Ok((selected, changes))
}

/// Reads a detect run's JSON: `Err` names the file.
fn read_detect_file(path: &str, text: &str) -> Result<DetectReport, DetectFileError> {
    let not_json = |source| DetectFileError::NotJson {
        path: path.to_string(),
        source,
    };
    let value: Value = serde_json::from_str(text).map_err(not_json)?;
    if !value["environments"].is_array() {
        return Err(DetectFileError::NoEnvironments {
            path: path.to_string(),
        });
    }
    serde_json::from_value(value).map_err(not_json)
}

/// The environments a `gitops detect --format json` run found (the JSON in
/// `file`, narrowed to `names` when given), read again at its head (and at
/// its base for deleted ones; with `--base deployed`, each at its own
/// deployed commit), so that a matrix job acts on exactly its detect job's
/// result. Each entry is checked against the repository by the planner (a
/// deleted environment must be absent at head, a created or updated one
/// present): a mismatch refuses that environment.
pub fn from_detect_file(
    clone: &mut Checkout,
    file: &Path,
    names: &[String],
) -> Result<(Selected, Vec<EnvChange>), SelectError> {
    let path = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|source| DetectFileError::Read {
        path: path.clone(),
        source,
    })?;
    let report = read_detect_file(&path, &text)?;
    let head = report.head.as_deref().filter(|s| !s.is_empty());
    let head = head.unwrap_or("HEAD");
    clone.ensure_if_sha(head)?;
    let head_id = resolve(clone.repo(), head)?;
    let head_model = git::load_at(clone.repo(), head_id, clone.prefix())?;
    let at_deployed = report.base.as_deref() == Some(DEPLOYED);
    let mut base: Option<(gix::ObjectId, Repository)> = None;
    let mut models = git::Models::default();
    let mut out = Vec::new();
    for e in &report.detection.environments {
        let name = e.name.as_str();
        let env = match e.change {
            Change::Unchanged => continue,
            Change::Deleted if at_deployed => {
                // Each deleted environment at its own deployed commit.
                let commit = e.base.clone().flatten().filter(|s| !s.is_empty());
                if let Some(c) = commit.as_deref().filter(|c| is_full_sha(c)) {
                    if git::known_commit(clone.repo(), c).is_none() {
                        // A commit that cannot be had makes the declaration unknown.
                        let _ = clone.ensure(c);
                    }
                }
                let at = models.declaration(clone.repo(), clone.prefix(), commit.as_deref(), name);
                let mut c = EnvChange::new(at.environment(name, &e.stack, &e.region), e.change);
                c.declaration = Some(at.declaration);
                out.push(c);
                continue;
            }
            Change::Deleted => {
                if base.is_none() {
                    let Some(b) = report.base.as_deref().filter(|s| !s.is_empty()) else {
                        let (path, name) = (path, name.to_string());
                        return Err(DetectFileError::NoBase { path, name }.into());
                    };
                    clone.ensure(b).map_err(|why| fetch_advice(b, why))?;
                    let id = resolve(clone.repo(), b)?;
                    base = Some((id, git::load_at(clone.repo(), id, clone.prefix())?));
                }
                let at_base = base.as_ref().and_then(|(_, m)| m.environment(name));
                at_base.or_else(|| head_model.environment(name)).cloned()
            }
            _ => Some(
                head_model
                    .environment(name)
                    .cloned()
                    .unwrap_or_else(|| Environment::undeclared(name, &e.stack, &e.region)),
            ),
        };
        let Some(env) = env else {
            let (path, name) = (path, name.to_string());
            return Err(DetectFileError::NotInRepository { path, name }.into());
        };
        out.push(EnvChange::new(env, e.change));
    }
    if !names.is_empty() {
        out.retain(|c| names.contains(&c.name));
        if let Some(name) = names.iter().find(|n| !out.iter().any(|c| &c.name == *n)) {
            let name = name.clone();
            return Err(DetectFileError::NotAmongChanges { path, name }.into());
        }
    }
    let base = base.map(|(id, _)| id.to_string());
    Ok((
        Selected::new(clone, base, Some(head_id), Detection::default()),
        out,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::event::{Fetch, FetchError};
    use crate::git::tests::{commit, git, write};

    /// A fetch that never brings anything, and records what it was asked.
    struct NoFetch(std::rc::Rc<std::cell::RefCell<Vec<String>>>);

    impl Fetch for NoFetch {
        fn fetch(&mut self, _: &Path, args: &[String], shas: &[&str]) -> Result<(), FetchError> {
            self.0.borrow_mut().push(format!("{args:?} {shas:?}"));
            Err(FetchError::Git("fatal: couldn't find remote ref".into()))
        }
    }

    const CONFIG: &str = "version: 1\nid: acme/app\nstack: { template: t.yaml }\n";

    /// A clone with `dev` (bound to branch `develop`) and `prod`, then a
    /// commit that changes both and removes `old`: (dir, first, second).
    fn clone() -> (tempfile::TempDir, String, String) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        git(dir, &["init", "-q", "-b", "main"]);
        write(dir, "gitops.yaml", CONFIG);
        write(
            dir,
            "t.yaml",
            "Resources:\n  T: { Type: AWS::SNS::Topic }\n",
        );
        write(
            dir,
            "environments/dev/environment.yaml",
            "branch: develop\n",
        );
        write(dir, "environments/prod/environment.yaml", "{}\n");
        write(dir, "environments/old/environment.yaml", "{}\n");
        let first = commit(dir).to_string();
        write(
            dir,
            "environments/dev/environment.yaml",
            "branch: develop\nparameters: {}\n",
        );
        write(
            dir,
            "environments/prod/environment.yaml",
            "parameters: {}\n",
        );
        std::fs::remove_dir_all(dir.join("environments/old")).unwrap();
        let second = commit(dir).to_string();
        (tmp, first, second)
    }

    fn checkout(dir: &Path) -> (Checkout, std::rc::Rc<std::cell::RefCell<Vec<String>>>) {
        let calls = std::rc::Rc::default();
        let c = Checkout::discover(dir, Box::new(NoFetch(std::rc::Rc::clone(&calls)))).unwrap();
        (c, calls)
    }

    fn names(changes: &[EnvChange]) -> Vec<String> {
        changes
            .iter()
            .map(|c| format!("{} {}", c.name, c.change))
            .collect()
    }

    #[test]
    fn head_and_branches_come_from_flags_then_the_run() {
        let run = GithubRun::new(
            json!({"repository": {"default_branch": "trunk"}}),
            |k| match k {
                "GITHUB_SHA" => Some("abc".into()),
                "GITHUB_REF_TYPE" => Some("branch".into()),
                "GITHUB_REF_NAME" => Some("feature".into()),
                _ => None,
            },
        );
        let r = Request::new().with_github(run.clone());
        assert_eq!(r.head_rev(), "abc");
        let scope = r.branch_scope(Some("origin-head".into()));
        assert_eq!(
            (scope.branch(), scope.default_branch()),
            ("feature", "trunk")
        );
        let r = r
            .with_head(Some("h".into()))
            .with_branches(Some("b".into()), Some("d".into()));
        assert_eq!(r.head_rev(), "h");
        let scope = r.branch_scope(None);
        assert_eq!((scope.branch(), scope.default_branch()), ("b", "d"));
        let scope = Request::new().branch_scope(Some("origin-head".into()));
        assert_eq!(
            (scope.branch(), scope.default_branch()),
            ("origin-head", "origin-head")
        );
        let scope = Request::new().branch_scope(None);
        assert_eq!((scope.branch(), scope.default_branch()), ("main", "main"));
        assert_eq!(Request::new().head_rev(), "HEAD");
        assert!(Request::new()
            .with_base(Some(DEPLOYED.into()))
            .is_deployed());
    }

    #[test]
    fn select_compares_base_and_head_on_the_branch_deployed() {
        let (tmp, first, second) = clone();
        let (mut c, calls) = checkout(tmp.path());
        let err = select(&mut c, &Request::new()).unwrap_err();
        assert!(matches!(err, SelectError::NoRevisions), "{err}");
        let request = Request::new().with_base(Some(first.clone()));
        let s = select(&mut c, &request).unwrap();
        assert_eq!(
            (s.base.as_deref(), s.head.as_deref()),
            (Some(&*first), Some(&*second))
        );
        assert_eq!(names(&s.changes()), ["old deleted", "prod updated"]);
        expect_test::expect![[r#"
            [
                "dev: skipped: bound to branch `develop`, not `main`",
            ]
        "#]]
        .assert_debug_eq(&s.log());
        let s = select(&mut c, &request.with_branches(Some("develop".into()), None)).unwrap();
        assert_eq!(names(&s.changes()), ["dev updated"]);
        assert!(calls.borrow().is_empty(), "{:?}", calls.borrow());
        // A missing commit is fetched, and the error says how to have it.
        let missing = "1".repeat(40);
        let err = select(&mut c, &Request::new().with_base(Some(missing))).unwrap_err();
        assert!(err.to_string().contains("fetch-depth: 0"), "{err}");
        assert_eq!(calls.borrow().len(), 1);
    }

    #[test]
    fn select_follows_the_github_event() {
        let (tmp, first, second) = clone();
        let (mut c, _) = checkout(tmp.path());
        let payload = json!({"before": first, "after": second});
        let mut run = GithubRun::new(payload.clone(), |_| None);
        let err = select(&mut c, &Request::new().with_github(run.clone())).unwrap_err();
        assert!(matches!(err, SelectError::NoEventName), "{err}");
        run.event = Some("push".into());
        let s = select(&mut c, &Request::new().with_github(run.clone())).unwrap();
        assert_eq!(s.base.as_deref(), Some(&*first));
        assert_eq!(names(&s.changes()), ["old deleted", "prod updated"]);
        run.event = Some("workflow_dispatch".into());
        let s = select(&mut c, &Request::new().with_github(run)).unwrap();
        // Every environment at head, but `dev` follows another branch.
        assert_eq!(names(&s.changes()), ["prod updated"]);
    }

    #[test]
    fn named_environments_are_checked() {
        let (tmp, _, second) = clone();
        let (mut c, _) = checkout(tmp.path());
        let (s, changes) = named_at_head(&mut c, None, &["prod".into()]).unwrap();
        assert_eq!(s.head.as_deref(), Some(&*second));
        assert_eq!(names(&changes), ["prod updated"]);
        let err = named_at_head(&mut c, None, &["nope".into()]).unwrap_err();
        assert!(
            err.to_string().starts_with("no environment `nope` at "),
            "{err}"
        );
    }

    #[test]
    fn detect_files_are_checked_against_the_repository() {
        let (tmp, first, second) = clone();
        let (mut c, _) = checkout(tmp.path());
        let file = tmp.path().join("detect.json");
        let run = |c: &mut Checkout, v: Value, names: &[&str]| {
            std::fs::write(&file, v.to_string()).unwrap();
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            from_detect_file(c, &file, &names)
        };
        let entry = |name: &str, change: &str| json!({"name": name, "change": change});
        // What detect wrote, read back whole.
        let request = Request::new().with_base(Some(first.clone()));
        let selected = select(&mut c, &request).unwrap();
        let report = DetectReport::new(selected.base, selected.head, selected.detection);
        let v = serde_json::to_value(&report).unwrap();
        let (s, changes) = run(&mut c, v.clone(), &[]).unwrap();
        assert_eq!(names(&changes), ["old deleted", "prod updated"]);
        assert_eq!(changes[0].environment.stack, "old-app");
        assert_eq!(
            (s.base.as_deref(), s.head.as_deref()),
            (Some(&*first), Some(&*second))
        );
        let (_, changes) = run(&mut c, v.clone(), &["prod"]).unwrap();
        assert_eq!(names(&changes), ["prod updated"]);
        // Entries are taken as they are: the planner refuses a mismatch.
        let v2 = json!({"head": second, "environments": [entry("ghost", "updated"), entry("dev", "unchanged")]});
        let (_, changes) = run(&mut c, v2, &[]).unwrap();
        assert_eq!(names(&changes), ["ghost updated"]);
        let path = file.display().to_string();
        let errors = [
            run(&mut c, v, &["dev"]),
            run(
                &mut c,
                json!({"environments": [entry("old", "deleted")]}),
                &[],
            ),
            run(
                &mut c,
                json!({"base": first, "environments": [entry("ghost", "deleted")]}),
                &[],
            ),
            run(&mut c, json!({"environments": 1}), &[]),
            run(&mut c, json!({"environments": [{"name": "dev"}]}), &[]),
        ]
        .map(|r| r.unwrap_err().to_string().replace(&path, "FILE"));
        expect_test::expect![[r#"
            [
                "environment `dev` is not among the changes in FILE",
                "FILE lists deleted environment `old` but has no base commit",
                "environment `ghost` from FILE is not in the repository at that revision",
                "FILE has no `environments` list; pass the JSON of `gitops detect --format json`",
                "FILE is not the JSON of `gitops detect --format json`",
            ]
        "#]]
        .assert_debug_eq(&errors);
    }

    #[test]
    fn nothing_chosen_names_the_command() {
        let e = |verb: &str| SelectError::NothingChosen { verb: verb.into() }.to_string();
        expect_test::expect![[r#"
            [
                "say what to deploy: --base REV [--head REV], --github, --environment NAME or --from-detect FILE",
                "say what to plan: --base REV [--head REV], --github or --environment NAME",
            ]
        "#]]
        .assert_debug_eq(&[e("deploy"), e("plan")]);
    }
}
