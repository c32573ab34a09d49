//! `gitops status`: one row per environment — the version in git and the
//! one deployed, the commit, the stack's status, the pipeline's last run,
//! sync and health. Fast: no drift detection; every environment is queried
//! at once. Also the preparation `gitops drift` shares.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gitops_core::board::{self, Board, BoardKind};
use gitops_core::deploy::inspect::{self as core_inspect, inspect_all, InspectOptions};
use gitops_core::deploy::{self, Desired};
use gitops_core::detect::{Change, EnvChange};
use gitops_core::drift::EnvDrift;
use gitops_core::report::StatusReport;
use gitops_core::{GitTree, PromotedKey, Repository};

use super::select;
use crate::aws::AwsArgs;
use crate::output::print_json;
use crate::{github, Format, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Also write the status board, one self-contained HTML page, to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// Which environments, at which revision, how many at once.
#[derive(Debug, Clone, clap::Args)]
pub struct ScopeArgs {
    /// Only these environments (repeatable) [default: all].
    #[arg(long = "environment", short = 'e', value_name = "NAME")]
    pub environments: Vec<String>,
    /// The git revision that says what should run.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub rev: String,
    /// How many environments to query at once in each account and region.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
}

/// What git wants, for the selected environments.
pub struct Prepared {
    /// The model at the revision.
    pub model: Repository,
    /// The revision's commit id.
    pub head: String,
    /// One per environment whose desired state could be built.
    pub desired: Vec<Desired>,
    /// Environments whose desired state could not be built (Unknown).
    pub failed: Vec<EnvDrift>,
    /// `promotion.keys`: what "version" means.
    pub keys: Vec<PromotedKey>,
    /// The repository's web address, for the board's commit links.
    pub web_url: Option<String>,
    /// The clone, its GitOps root and the revision's commit, for `pending`.
    pub repo: gix::Repository,
    /// The GitOps root inside the clone.
    pub prefix: String,
    /// The revision's commit.
    pub head_id: gix::ObjectId,
}

/// Reads the repository at `scope.rev` (git is the source of truth, so the
/// committed state, not the working tree) and builds each environment's
/// desired stacks.
pub fn prepare(g: &Globals, scope: &ScopeArgs) -> anyhow::Result<Prepared> {
    let selected = select::at_head(g, Some(&scope.rev))?;
    let head_id = selected
        .head_id
        .ok_or_else(|| anyhow::anyhow!("no commit at {}", scope.rev))?;
    let head = head_id.to_string();
    let tree = GitTree::new(selected.repo.clone(), head_id, &selected.prefix)?;
    let model = super::load_valid(&tree)?;
    gitops_core::select::check_names(&model, &scope.environments, &head)?;
    let keys = model.promoted_keys();
    let (mut desired, mut failed) = (Vec::new(), Vec::new());
    for env in &model.environments {
        if !scope.environments.is_empty() && !scope.environments.contains(&env.name) {
            continue;
        }
        let change = EnvChange::new(env.clone(), Change::Updated);
        match deploy::desired(&model, &tree, &change, &head) {
            Ok(d) => desired.push(d),
            Err(e) => failed.push(EnvDrift::unknown(env, &keys, e.to_string())),
        }
    }
    let web_url = web_url(&selected.repo);
    Ok(Prepared {
        model,
        head,
        desired,
        failed,
        keys,
        web_url,
        repo: selected.repo,
        prefix: selected.prefix,
        head_id,
    })
}

/// Inspects every prepared environment concurrently; results sorted by name.
/// Against a local endpoint (an emulator, which reports termination
/// protection but does not implement UpdateTerminationProtection) its
/// comparison is left out.
pub async fn inspect(
    p: &Prepared,
    factory: Arc<dyn gitops_core::aws::ClientFactory>,
    options: InspectOptions,
    concurrency: usize,
    local: bool,
) -> Vec<EnvDrift> {
    let mut all = inspect_all(
        factory,
        p.desired.clone(),
        p.keys.clone(),
        options,
        concurrency,
    )
    .await;
    if local {
        all.iter_mut()
            .for_each(EnvDrift::ignore_termination_protection);
    }
    all.extend(p.failed.iter().cloned());
    all.sort_by(|a, b| a.status.name.cmp(&b.status.name));
    all
}

/// Whether the endpoint is a local emulator (poll fast there).
pub fn is_local(aws: &AwsArgs) -> bool {
    aws.is_local()
}

pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let p = prepare(g, &args.scope)?;
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let drifts = rt.block_on(async {
        let factory = Arc::new(crate::aws::factory(&args.aws).await);
        // Fast: parameters, tags and existence only; `drift` compares templates.
        let options = InspectOptions::new().with_templates(false);
        let mut drifts = inspect(
            &p,
            factory.clone(),
            options,
            args.scope.concurrency,
            is_local(&args.aws),
        )
        .await;
        let (c, repo, id, prefix) = (args.scope.concurrency, &p.repo, p.head_id, &p.prefix);
        let pending =
            core_inspect::mark_pending(factory, repo, id, prefix, &p.model, c, &mut drifts);
        if let Err(e) = pending.await {
            eprintln!("note: cannot tell which environments have changes pending: {e}");
        }
        drifts
    });
    let report = StatusReport {
        commit: p.head.clone(),
        environments: drifts,
    };
    let board = board_of(&p, report.environments.clone(), BoardKind::Status);
    let markdown = report.render_markdown(&board.render_markdown());
    match g.format {
        _ if g.html => print!("{}", board.render_html()),
        Format::Json => print_json(&report)?,
        Format::Markdown => print!("{markdown}"),
        Format::Text => print!("{}", report.render_text(g.color)),
    }
    github::append_summary(&markdown)?;
    if let Some(path) = &args.html {
        write_board(path, &board)?;
    }
    Ok(ExitCode::from(report.exit_code()))
}

/// The status board of the inspected environments, drawn now.
pub fn board_of(p: &Prepared, drifts: Vec<EnvDrift>, kind: BoardKind) -> Board {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    Board::new(
        p.model.id.clone().unwrap_or_default(),
        p.head.clone(),
        drifts,
    )
    .with_kind(kind)
    .with_order(p.model.config.promotion.order.clone())
    .with_repository_url(p.web_url.clone())
    .with_generated_at(board::utc_timestamp(now))
}

/// Writes the board's page to `path` and says where.
pub fn write_board(path: &Path, board: &Board) -> anyhow::Result<()> {
    std::fs::write(path, board.render_html())
        .with_context(|| format!("cannot write the status board to {}", path.display()))?;
    eprintln!("wrote the status board to {}", path.display());
    Ok(())
}

/// The repository's web address: the GitHub run's repository, else the
/// `origin` remote's (without credentials).
fn web_url(repo: &gix::Repository) -> Option<String> {
    if let (Ok(server), Ok(name)) = (
        std::env::var("GITHUB_SERVER_URL"),
        std::env::var("GITHUB_REPOSITORY"),
    ) {
        if !server.is_empty() && !name.is_empty() {
            return board::web_url_of_remote(&format!("{server}/{name}"));
        }
    }
    let remote = repo.config_snapshot().string("remote.origin.url")?;
    board::web_url_of_remote(&remote.to_string())
}

/// Poll delays for drift detection: fast against a local emulator.
pub fn drift_poll(aws: &AwsArgs) -> (Duration, Duration) {
    if is_local(aws) {
        (Duration::from_millis(200), Duration::from_secs(1))
    } else {
        (Duration::from_secs(2), Duration::from_secs(15))
    }
}
