//! `gitops status`: one row per environment — the version in git and the
//! one deployed, the commit, the stack's status, the pipeline's last run,
//! sync and health. Fast: no drift detection; every environment is queried
//! at once. Also the preparation `gitops drift` shares.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use gitops_core::deploy::inspect::{inspect_all, InspectOptions};
use gitops_core::deploy::{self, Desired};
use gitops_core::detect::{Change, EnvChange};
use gitops_core::drift::{EnvDrift, EnvStatus, Health, Sync};
use gitops_core::text::short_commit;
use gitops_core::{GitTree, PromotedKey, Repository};
use serde::Serialize;

use super::select;
use crate::aws::AwsArgs;
use crate::output::{paint, print_json};
use crate::{github, Format, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub scope: ScopeArgs,
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
    for name in &scope.environments {
        if model.environment(name).is_none() {
            let known: Vec<&str> = model.environments.iter().map(|e| e.name.as_str()).collect();
            bail!(
                "no environment `{name}` at {}; known: {}",
                short_commit(&head),
                known.join(", ")
            );
        }
    }
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
    Ok(Prepared {
        model,
        head,
        desired,
        failed,
        keys,
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
    aws.endpoint_url
        .as_deref()
        .is_some_and(|u| u.contains("://127.") || u.contains("://localhost"))
}

#[derive(Serialize)]
struct Report<'a> {
    commit: &'a str,
    environments: Vec<&'a EnvStatus>,
}

pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let p = prepare(g, &args.scope)?;
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let drifts = rt.block_on(async {
        let factory = Arc::new(crate::aws::factory(&args.aws).await);
        // Fast: parameters, tags and existence only; `drift` compares templates.
        let options = InspectOptions::new().with_templates(false);
        inspect(
            &p,
            factory,
            options,
            args.scope.concurrency,
            is_local(&args.aws),
        )
        .await
    });
    let report = Report {
        commit: &p.head,
        environments: drifts.iter().map(|d| &d.status).collect(),
    };
    let markdown = render_markdown(&report);
    match g.format {
        Format::Json => print_json(&report)?,
        Format::Markdown => print!("{markdown}"),
        Format::Text => print!("{}", render_text(&report, g.color)),
    }
    github::append_summary(&markdown)?;
    // A task that failed, or nothing could be read (no credentials, no
    // network): that is a failure.
    let none_read = !drifts.is_empty() && drifts.iter().all(|d| d.status.sync == Sync::Unknown);
    Ok(if none_read || drifts.iter().any(|d| d.failed) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A version map as one cell: the value alone for one key, `name=value` pairs otherwise.
pub fn version_cell(v: &std::collections::BTreeMap<String, Option<String>>) -> String {
    if v.is_empty() {
        return "-".into();
    }
    if v.len() == 1 {
        return v
            .values()
            .next()
            .cloned()
            .flatten()
            .unwrap_or_else(|| "-".into());
    }
    v.iter()
        .map(|(k, v)| {
            let short = k.split_once('.').map(|(_, n)| n).unwrap_or(k);
            format!("{short}={}", v.as_deref().unwrap_or("-"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pipeline's last run as one cell.
pub fn pipeline_cell(s: &EnvStatus) -> String {
    match &s.pipeline {
        None => "-".into(),
        Some(p) => {
            let mut out = p.status.clone();
            if let Some(t) = &p.time {
                out.push_str(&format!(" {t}"));
            }
            if let Some(r) = &p.source_revision {
                out.push_str(&format!(" @{}", short_commit(r)));
            }
            out
        }
    }
}

/// `sync` in colour.
pub fn sync_word(s: Sync, color: bool) -> String {
    let code = match s {
        Sync::Synced => "32",
        Sync::OutOfSync => "1;33",
        _ => "1;31",
    };
    paint(&s.to_string(), code, color)
}

/// `health` in colour.
pub fn health_word(h: Health, color: bool) -> String {
    let code = match h {
        Health::Healthy => "32",
        Health::Progressing => "36",
        Health::Missing => "33",
        _ => "1;31",
    };
    paint(&h.to_string(), code, color)
}

fn short(c: &Option<String>) -> String {
    c.as_deref()
        .map(|c| short_commit(c).to_string())
        .unwrap_or_else(|| "-".into())
}

fn render_text(r: &Report<'_>, color: bool) -> String {
    let rows: Vec<[String; 8]> = r
        .environments
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                version_cell(&s.git_version),
                version_cell(&s.deployed_version),
                short(&s.commit),
                s.stack_status.clone().unwrap_or_else(|| "-".into()),
                pipeline_cell(s),
                sync_word(s.sync, color),
                health_word(s.health, color),
            ]
        })
        .collect();
    let mut out = String::new();
    if rows.is_empty() {
        out.push_str("no environments\n");
        return out;
    }
    out.push_str(&crate::output::table(
        &[
            "ENVIRONMENT",
            "GIT",
            "DEPLOYED",
            "COMMIT",
            "STACK STATUS",
            "PIPELINE",
            "SYNC",
            "HEALTH",
        ],
        &rows,
    ));
    for s in &r.environments {
        if let Some(e) = &s.error {
            out.push_str(&format!("{}: {e}\n", s.name));
        }
    }
    let count = |want: Sync| r.environments.iter().filter(|s| s.sync == want).count();
    out.push_str(&format!(
        "{} environment(s) at {}: {} synced, {} out of sync, {} unknown\n",
        r.environments.len(),
        short_commit(r.commit),
        count(Sync::Synced),
        count(Sync::OutOfSync),
        count(Sync::Unknown),
    ));
    out
}

/// Escapes a table cell.
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn render_markdown(r: &Report<'_>) -> String {
    let mut out = format!("### gitops status at `{}`\n\n", short_commit(r.commit));
    if r.environments.is_empty() {
        out.push_str("No environments.\n");
        return out;
    }
    out.push_str("| Environment | Git | Deployed | Commit | Stack status | Pipeline | Sync | Health |\n|---|---|---|---|---|---|---|---|\n");
    for s in &r.environments {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            cell(&s.name),
            cell(&version_cell(&s.git_version)),
            cell(&version_cell(&s.deployed_version)),
            short(&s.commit),
            s.stack_status.as_deref().unwrap_or("-"),
            cell(&pipeline_cell(s)),
            s.sync,
            s.health
        ));
    }
    for s in r.environments.iter().filter(|s| s.error.is_some()) {
        out.push_str(&format!(
            "\n**{}**: {}\n",
            s.name,
            cell(s.error.as_deref().unwrap_or_default())
        ));
    }
    out
}

/// Poll delays for drift detection: fast against a local emulator.
pub fn drift_poll(aws: &AwsArgs) -> (Duration, Duration) {
    if is_local(aws) {
        (Duration::from_millis(200), Duration::from_secs(1))
    } else {
        (Duration::from_secs(2), Duration::from_secs(15))
    }
}
