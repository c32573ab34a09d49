//! `gitops status` and `gitops drift` as requests: what git wants for the
//! selected environments ([`Prepared`], read at one commit), the inspection
//! of what AWS runs, and the reports and status board they make
//! ([`status`] → [`StatusOutcome`], [`drift`] → [`DriftOutcome`]).
//!
//! The binary only finds the commit (and fetches it into a shallow clone),
//! builds the AWS client factory and prints the outcome.

use std::sync::Arc;
use std::time::Duration;

use crate::aws::ClientFactory;
use crate::board::{self, Board, BoardKind};
use crate::deploy::inspect::{
    inspect_all_listed, list_bases, observe_listed, orphans_of, pending_from, remediate_all,
    InspectOptions, PendingError,
};
use crate::deploy::{self, Desired, Executor};
use crate::deployed::RegionStacks;
use crate::detect::{Change, EnvChange};
use crate::drift::{EnvDrift, Remediation};
use crate::report::{DriftReport, StatusReport};
use crate::select::{check_names, UnknownEnvironment};
use crate::source::GitTree;
use crate::{Checks, PromotedKey, Repository};

/// Why the environments could not be read at the commit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrepareError {
    /// The repository could not be read, or has errors.
    #[error(transparent)]
    Repository(#[from] crate::Error),
    /// An environment asked for does not exist there.
    #[error(transparent)]
    UnknownEnvironment(#[from] UnknownEnvironment),
}

/// What git wants, for the selected environments, at one commit.
#[derive(Debug)]
#[non_exhaustive]
pub struct Prepared {
    /// The model at the commit.
    pub model: Repository,
    /// The commit id.
    pub head: String,
    /// One per environment whose desired state could be built.
    pub desired: Vec<Desired>,
    /// Environments whose desired state could not be built (Unknown).
    pub failed: Vec<EnvDrift>,
    /// `promotion.keys`: what "version" means.
    pub keys: Vec<PromotedKey>,
    /// The repository's web address, for the board's commit links.
    pub web_url: Option<String>,
    /// The clone, for `pending`.
    pub repo: gix::Repository,
    /// The GitOps root inside the clone.
    pub prefix: String,
    /// The commit.
    pub head_id: gix::ObjectId,
}

impl Prepared {
    /// Reads the repository at commit `head_id` of `repo` (git is the source
    /// of truth, so the committed state, not the working tree), refuses one
    /// with errors or an unknown name in `environments` (empty: all), and
    /// builds each selected environment's desired stacks. `var` reads the
    /// process environment, for the web address (`web_url`).
    pub fn read(
        repo: gix::Repository,
        head_id: gix::ObjectId,
        prefix: String,
        environments: &[String],
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, PrepareError> {
        let head = head_id.to_string();
        let tree = GitTree::new(repo.clone(), head_id, &prefix)?;
        let model = Repository::load_checked(&tree, Checks::Full)?;
        check_names(&model, environments, &head)?;
        let keys = model.promoted_keys();
        let (mut desired, mut failed) = (Vec::new(), Vec::new());
        for env in &model.environments {
            if !environments.is_empty() && !environments.contains(&env.name) {
                continue;
            }
            let change = EnvChange::new(env.clone(), Change::Updated);
            match deploy::desired(&model, &tree, &change, &head) {
                Ok(d) => desired.push(d),
                Err(e) => failed.push(EnvDrift::unknown(env, &keys, e.to_string())),
            }
        }
        let web_url = web_url(&repo, var);
        Ok(Self {
            model,
            head,
            desired,
            failed,
            keys,
            web_url,
            repo,
            prefix,
            head_id,
        })
    }

    /// Inspects every prepared environment, `concurrency` at a time per
    /// account and region; rows sorted by name. Against a local endpoint
    /// (`local`: an emulator, which reports termination protection but does
    /// not implement UpdateTerminationProtection) that comparison is left out.
    pub async fn inspect(
        &self,
        factory: Arc<dyn ClientFactory>,
        options: InspectOptions,
        concurrency: usize,
        local: bool,
    ) -> Vec<EnvDrift> {
        self.inspect_listed(factory, options, concurrency, local, &[])
            .await
    }

    /// [`Prepared::inspect`] with the stacks of some regions and roles
    /// already listed.
    async fn inspect_listed(
        &self,
        factory: Arc<dyn ClientFactory>,
        options: InspectOptions,
        concurrency: usize,
        local: bool,
        listed: &[RegionStacks],
    ) -> Vec<EnvDrift> {
        let desired = self.desired.clone();
        let keys = self.keys.clone();
        let mut all =
            inspect_all_listed(factory, desired, keys, options, concurrency, listed).await;
        if local {
            all.iter_mut()
                .for_each(EnvDrift::ignore_termination_protection);
        }
        all.extend(self.failed.iter().cloned());
        all.sort_by(|a, b| a.status.name.cmp(&b.status.name));
        all
    }

    /// The status board of `drifts`, drawn at `unix_seconds`.
    pub fn board(&self, drifts: Vec<EnvDrift>, kind: BoardKind, unix_seconds: u64) -> Board {
        let id = self.model.id.clone().unwrap_or_default();
        Board::new(id, self.head.clone(), drifts)
            .with_kind(kind)
            .with_order(self.model.config.promotion.order.clone())
            .with_repository_url(self.web_url.clone())
            .with_generated_at(board::utc_timestamp(unix_seconds))
    }

    /// The executor `--remediate` redeploys with: `timeout` per
    /// deployment, polling fast against a local endpoint; refused without
    /// a repository id (remediation changes AWS).
    pub fn remediator(
        &self,
        factory: Arc<dyn ClientFactory>,
        progress: Arc<dyn deploy::Progress>,
        timeout: Duration,
        local: bool,
    ) -> crate::Result<Executor> {
        let id = self.model.owner_id()?.to_string();
        let poll = if local {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        let options = deploy::ExecutorOptions::new()
            .with_timeout(timeout)
            .with_poll(poll);
        Ok(Executor::new(factory, progress, id, options)
            .with_template_bucket(self.model.config.stack.template_bucket.clone()))
    }
}

/// The repository's web address: the GitHub run's repository
/// (`GITHUB_SERVER_URL`/`GITHUB_REPOSITORY`, read with `var`), else the
/// `origin` remote's (without credentials).
pub(crate) fn web_url(
    repo: &gix::Repository,
    var: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let var = |n: &str| var(n).filter(|v| !v.is_empty());
    if let (Some(server), Some(name)) = (var("GITHUB_SERVER_URL"), var("GITHUB_REPOSITORY")) {
        return board::web_url_of_remote(&format!("{server}/{name}"));
    }
    let remote = repo.config_snapshot().string("remote.origin.url")?;
    board::web_url_of_remote(&remote.to_string())
}

/// The first and the longest delay between polls of a drift detection:
/// fast against a local emulator.
pub fn drift_poll(local: bool) -> (Duration, Duration) {
    if local {
        (Duration::from_millis(200), Duration::from_secs(1))
    } else {
        (Duration::from_secs(2), Duration::from_secs(15))
    }
}

/// Seconds since the Unix epoch, now.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// What `gitops status` found.
#[derive(Debug)]
#[non_exhaustive]
pub struct StatusOutcome {
    /// The rows.
    pub report: StatusReport,
    /// Its status board.
    pub board: Board,
    /// Why the rows' `pending` is unknown, if it is.
    pub pending_error: Option<PendingError>,
}

impl StatusOutcome {
    /// The job summary: the report with the board's markdown.
    pub fn markdown(&self) -> String {
        self.report.render_markdown(&self.board.render_markdown())
    }
}

/// `gitops status`: the fast inspection (parameters, tags and existence;
/// no templates, no drift detection) of every prepared environment, and
/// which ones have changes pending against what is deployed.
pub async fn status(
    p: &Prepared,
    factory: Arc<dyn ClientFactory>,
    concurrency: usize,
    local: bool,
) -> StatusOutcome {
    // Each region and role is listed once: for the inspection and for
    // what is deployed there.
    let listed = list_bases(factory.clone(), &p.model, concurrency).await;
    let options = InspectOptions::new().with_templates(false);
    let known = listed.as_deref().unwrap_or_default();
    let mut drifts = p
        .inspect_listed(factory.clone(), options, concurrency, local, known)
        .await;
    let (repo, id, prefix) = (&p.repo, p.head_id, &p.prefix);
    let pending = async {
        let deployed = observe_listed(factory, &p.model, concurrency, listed?).await?;
        pending_from(&deployed, repo, id, prefix, &p.model, &mut drifts)
    };
    let pending_error = pending.await.err();
    let report = StatusReport {
        commit: p.head.clone(),
        environments: drifts,
    };
    let board = p.board(report.environments.clone(), BoardKind::Status, now());
    StatusOutcome {
        report,
        board,
        pending_error,
    }
}

/// How `gitops drift` looks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriftRequest {
    /// Run CloudFormation drift detection on each stack.
    pub resource_drift: bool,
    /// How long one stack's drift detection may take.
    pub drift_timeout: Duration,
    /// How many environments at once per account and region.
    pub concurrency: usize,
    /// Whether the endpoint is a local emulator.
    pub local: bool,
}

impl DriftRequest {
    /// Resource drift detection on, 300 s each, 16 at once, against AWS.
    pub fn new() -> Self {
        Self {
            resource_drift: true,
            drift_timeout: Duration::from_secs(300),
            concurrency: 16,
            local: false,
        }
    }
    /// Turns CloudFormation drift detection on or off.
    pub fn with_resource_drift(mut self, yes: bool) -> Self {
        self.resource_drift = yes;
        self
    }
    /// Sets how long one drift detection may take.
    pub fn with_drift_timeout(mut self, timeout: Duration) -> Self {
        self.drift_timeout = timeout;
        self
    }
    /// Sets how many environments are read at once per account and region.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }
    /// Says whether the endpoint is a local emulator (poll fast there).
    pub fn with_local(mut self, local: bool) -> Self {
        self.local = local;
        self
    }
}

impl Default for DriftRequest {
    fn default() -> Self {
        Self::new()
    }
}

/// What `gitops drift` found.
#[derive(Debug)]
#[non_exhaustive]
pub struct DriftOutcome {
    /// The report.
    pub report: DriftReport,
    /// Its status board, orphans and notes included.
    pub board: Board,
}

impl DriftOutcome {
    /// The job summary: the report with the board's markdown.
    pub fn markdown(&self) -> String {
        self.report.render_markdown(&self.board.render_markdown())
    }
}

/// `gitops drift`: the deep inspection (templates, and resource drift as
/// `request` says) of every prepared environment, the orphan stacks, and,
/// with a `remediator` (see [`Prepared::remediator`]), the redeployment of
/// what may be remediated, `done` hearing of each.
pub async fn drift(
    p: &Prepared,
    factory: Arc<dyn ClientFactory>,
    request: &DriftRequest,
    remediator: Option<&Executor>,
    done: impl Fn(&str, &Remediation),
) -> DriftOutcome {
    let (first, longest) = drift_poll(request.local);
    let options = InspectOptions::new()
        .with_resource_drift(request.resource_drift)
        .with_poll(first, longest)
        .with_timeout(request.drift_timeout)
        .with_ignore(p.model.config.drift.ignore.clone());
    let (concurrency, local) = (request.concurrency, request.local);
    let mut drifts = p
        .inspect(factory.clone(), options, concurrency, local)
        .await;
    let orphans = orphans_of(factory.as_ref(), &p.model).await;
    if let Some(exec) = remediator {
        remediate_all(exec, &p.desired, &mut drifts, &p.head, done).await;
    }
    let report = DriftReport::new(p.head.clone(), p.model.id.clone(), drifts)
        .with_orphans(orphans)
        .with_skipped_resource_drift(!request.resource_drift);
    let board = p
        .board(report.environments.clone(), BoardKind::Drift, now())
        .with_orphans(report.orphans.clone(), report.orphans_error.clone())
        .with_notes(report.unchecked_note().into_iter().collect());
    DriftOutcome { report, board }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn drift_polls_fast_only_against_a_local_endpoint() {
        assert_eq!(
            drift_poll(true),
            (Duration::from_millis(200), Duration::from_secs(1))
        );
        assert_eq!(
            drift_poll(false),
            (Duration::from_secs(2), Duration::from_secs(15))
        );
    }

    #[test]
    fn the_web_address_is_the_runs_repository_else_the_origin_remote() {
        let dir = tempfile::tempdir().unwrap();
        let repo = gix::init(dir.path()).unwrap();
        let none = |_: &str| None;
        assert_eq!(web_url(&repo, none), None);
        let run = |n: &str| match n {
            "GITHUB_SERVER_URL" => Some("https://github.example.com".to_string()),
            "GITHUB_REPOSITORY" => Some("acme/payments".to_string()),
            _ => None,
        };
        assert_eq!(
            web_url(&repo, run).as_deref(),
            Some("https://github.example.com/acme/payments")
        );
        let empty = |n: &str| (n == "GITHUB_SERVER_URL").then(String::new);
        assert_eq!(web_url(&repo, empty), None);
    }
}
