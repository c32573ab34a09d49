//! Change detection: which environments a list of changed paths touches.
//!
//! [`detect`] is a pure function over two loaded models (the repository at
//! the base and at the head revision) and the paths that changed between
//! them, so the changes may come from any source: a git diff (see
//! [`crate::git::changed_paths`]), `git diff --name-status` output parsed
//! with [`ChangedPath::parse_name_status`], or a list built by hand.
//!
//! All paths are relative to the GitOps root (the folder holding
//! `gitops.yaml`), `/`-separated.
//!
//! ```
//! use gitops_core::detect::{detect, Change, ChangedPath};
//! use gitops_core::{Repository, WorkTree};
//!
//! # fn main() -> gitops_core::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! for env in ["dev", "prod"] {
//!     std::fs::create_dir_all(dir.path().join("environments").join(env)).unwrap();
//!     std::fs::write(dir.path().join("environments").join(env).join("environment.yaml"),
//!         "parameters: { AppVersion: \"1\" }\n").unwrap();
//! }
//! std::fs::write(dir.path().join("gitops.yaml"),
//!     "version: 1\nstack: { template: common/app.yaml }\n").unwrap();
//! let repo = Repository::load(&WorkTree::new(dir.path())?)?;
//!
//! let changes = [ChangedPath::modified("environments/dev/environment.yaml")];
//! let detection = detect(Some(&repo), &repo, &changes);
//! assert_eq!(detection.updated, ["dev"]);
//! assert_eq!(detection.unchanged, ["prod"]);
//! assert_eq!(detection.environments[0].change, Change::Updated);
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::config::{Config, CONFIG_FILE};
use crate::error::{Error, Result};
use crate::model::{Environment, Repository};
use crate::source::{normalize, normalized};

/// One path that changed between two revisions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ChangedPath {
    /// The path after the change (for a deletion, the path that was deleted).
    pub path: String,
    /// How it changed.
    pub status: PathStatus,
}

/// How a path changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PathStatus {
    /// The path is new.
    Added,
    /// The path's content or mode changed.
    Modified,
    /// The path is gone.
    Deleted,
    /// The file moved here from `from`.
    Renamed {
        /// The path before the rename.
        from: String,
    },
}

impl ChangedPath {
    /// An added path.
    pub fn added(path: impl Into<String>) -> Self {
        Self::new(path, PathStatus::Added)
    }

    /// A modified path.
    pub fn modified(path: impl Into<String>) -> Self {
        Self::new(path, PathStatus::Modified)
    }

    /// A deleted path.
    pub fn deleted(path: impl Into<String>) -> Self {
        Self::new(path, PathStatus::Deleted)
    }

    /// A path renamed from `from` to `to`.
    pub fn renamed(from: impl Into<String>, to: impl Into<String>) -> Self {
        Self::new(to, PathStatus::Renamed { from: from.into() })
    }

    /// A changed `path` with `status`.
    pub fn new(path: impl Into<String>, status: PathStatus) -> Self {
        Self {
            path: path.into(),
            status,
        }
    }

    /// Every path this change touches: the path itself, plus the old path of a rename.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        let from = match &self.status {
            PathStatus::Renamed { from } => Some(from.as_str()),
            _ => None,
        };
        std::iter::once(self.path.as_str()).chain(from)
    }

    /// Parses the output of `git diff --name-status` (with or without `-M`/`-C`,
    /// but without `-z`). Copies count as added paths, type changes as
    /// modifications. Paths stay as git prints them, relative to the top of
    /// the git repository.
    pub fn parse_name_status(text: &str) -> Result<Vec<ChangedPath>> {
        let mut out = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut fields = line.split('\t');
            let status = fields.next().unwrap_or_default();
            let paths: Vec<&str> = fields.collect();
            let bad = || Error::Message(format!("not a `git diff --name-status` line: `{line}`"));
            let change = match (status.chars().next(), paths.as_slice()) {
                (Some('A'), [p]) => Self::added(*p),
                (Some('M' | 'T'), [p]) => Self::modified(*p),
                (Some('D'), [p]) => Self::deleted(*p),
                (Some('R'), [from, to]) => Self::renamed(*from, *to),
                (Some('C'), [_, to]) => Self::added(*to),
                _ => return Err(bad()),
            };
            out.push(change);
        }
        Ok(out)
    }
}

/// What happened to an environment.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Change {
    /// The environment exists at head and not at base.
    Created,
    /// It exists at both, and something it depends on changed.
    Updated,
    /// It exists at base and not at head.
    Deleted,
    /// Nothing it depends on changed.
    Unchanged,
}

impl Change {
    /// The lowercase name used in JSON and outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
            Self::Unchanged => "unchanged",
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a changed path touches an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Why {
    /// The path is inside the environment's folder.
    Folder,
    /// The path is a template the environment uses.
    Template,
    /// The path matches a `shared` glob.
    Shared,
    /// The environment's resolved configuration differs (a `gitops.yaml` edit).
    Config,
    /// `--base deployed`: the environment has no stack yet.
    NotDeployed,
    /// `--base deployed`: its deployed commit is not in this clone's history.
    NotInHistory,
    /// `--base deployed`: its stack is in a failed state that a deployment retries.
    FailedState,
    /// `--base deployed`: its stack is managed by this repository, and head
    /// declares no such environment.
    NotDeclared,
}

impl Why {
    /// The lowercase name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Folder => "folder",
            Self::Template => "template",
            Self::Shared => "shared",
            Self::Config => "config",
            Self::NotDeployed => "not-deployed",
            Self::NotInHistory => "not-in-history",
            Self::FailedState => "failed-state",
            Self::NotDeclared => "not-declared",
        }
    }
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One changed path that touched an environment, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Reason {
    /// The changed path, relative to the GitOps root.
    pub path: String,
    /// Why it touches the environment.
    pub why: Why,
    /// `--base deployed`: the deployed commit this reason is relative to
    /// (the commit the path changed since, or the one not in history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

impl Reason {
    /// A reason with no deployed commit.
    pub fn new(path: impl Into<String>, why: Why) -> Self {
        Self {
            path: path.into(),
            why,
            since: None,
        }
    }

    /// The reason, relative to the deployed commit `commit`.
    pub fn with_since(mut self, commit: Option<String>) -> Self {
        self.since = commit;
        self
    }
}

/// The verdict for one environment. Read back from JSON (a detect run's
/// result), it has no `declaration` and an unresolved `environment` (no
/// configuration, empty names): resolve it from the repository before use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EnvChange {
    /// The environment's name.
    pub name: String,
    /// What happened to it.
    pub change: Change,
    /// Its stack name.
    #[serde(default)]
    pub stack: String,
    /// Its pipeline name (pipeline mode only).
    #[serde(default)]
    pub pipeline: Option<String>,
    /// Its AWS region.
    #[serde(default)]
    pub region: String,
    /// The changed paths that touched it, sorted by path.
    #[serde(default)]
    pub reasons: Vec<Reason>,
    /// `--base deployed` only: the commit it was last deployed from (`null`
    /// when it has no stack, or its stack names no commit).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub base: Option<Option<String>>,
    /// `--base deployed` only: its stack's status, when that is a failed one
    /// (`UPDATE_ROLLBACK_COMPLETE`, `UPDATE_ROLLBACK_FAILED`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_status: Option<String>,
    /// `--base deployed`, for a deleted environment: how it was declared at
    /// its stack's deployed commit, which the deletion rules judge.
    #[serde(skip)]
    pub declaration: Option<crate::deploy::BaseDeclaration>,
    /// The resolved environment: at head, or at base for a deleted one.
    #[serde(skip, default = "unresolved")]
    pub environment: Environment,
}

/// A field that is present, `null` included: `Some(None)` for `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The environment of an [`EnvChange`] read from JSON, before it is resolved.
fn unresolved() -> Environment {
    Environment::undeclared("", "", "")
}

/// The result of change detection. Name lists are sorted. It reads back
/// from its JSON (every field may be absent), with each environment
/// unresolved (see [`EnvChange`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Detection {
    /// Environments that exist at head and not at base.
    pub created: Vec<String>,
    /// Environments that exist at both and are touched by a change.
    pub updated: Vec<String>,
    /// Environments that exist at base and not at head.
    pub deleted: Vec<String>,
    /// The other environments.
    pub unchanged: Vec<String>,
    /// Every environment of base and head, sorted by name.
    pub environments: Vec<EnvChange>,
    /// Environments left out because they are bound to another branch
    /// (see [`crate::BranchScope::restrict`]); absent from the JSON when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<crate::branch::Skipped>,
}

/// A GitHub Actions job matrix: `{"include": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Matrix {
    /// One entry per affected environment.
    pub include: Vec<MatrixEntry>,
}

/// One job of a [`Matrix`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MatrixEntry {
    /// The environment's name.
    pub environment: String,
    /// What happened to it.
    pub change: Change,
    /// Its stack name.
    pub stack: String,
    /// Its AWS region.
    pub region: String,
}

/// The most jobs one GitHub Actions matrix may hold.
pub const MAX_MATRIX_JOBS: usize = 256;

impl Detection {
    /// Whether any environment was created, updated or deleted.
    pub fn has_changes(&self) -> bool {
        !(self.created.is_empty() && self.updated.is_empty() && self.deleted.is_empty())
    }

    /// The created, updated and deleted environments, sorted by name.
    pub fn affected(&self) -> impl Iterator<Item = &EnvChange> {
        self.environments
            .iter()
            .filter(|e| e.change != Change::Unchanged)
    }

    /// The verdict for the environment named `name`.
    pub fn environment(&self, name: &str) -> Option<&EnvChange> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// A job matrix with one entry per affected environment.
    pub fn matrix(&self) -> Matrix {
        Matrix {
            include: self
                .affected()
                .map(|e| MatrixEntry {
                    environment: e.name.clone(),
                    change: e.change,
                    stack: e.stack.clone(),
                    region: e.region.clone(),
                })
                .collect(),
        }
    }

    pub(crate) fn from_changes(environments: Vec<EnvChange>) -> Self {
        let mut d = Detection::default();
        for e in &environments {
            let list = match e.change {
                Change::Created => &mut d.created,
                Change::Updated => &mut d.updated,
                Change::Deleted => &mut d.deleted,
                Change::Unchanged => &mut d.unchanged,
            };
            list.push(e.name.clone());
        }
        d.environments = environments;
        d
    }
}

fn env_change(env: &Environment, change: Change, reasons: Vec<Reason>) -> EnvChange {
    moved_change(env.clone(), change, reasons)
}

/// [`env_change`] taking the environment.
fn moved_change(env: Environment, change: Change, reasons: Vec<Reason>) -> EnvChange {
    EnvChange {
        name: env.name.clone(),
        change,
        stack: env.stack.clone(),
        pipeline: env.pipeline.clone(),
        region: env.region.clone(),
        reasons,
        base: None,
        stack_status: None,
        declaration: None,
        environment: env,
    }
}

/// Every environment at `head` counts as updated, with no reasons (for a
/// manual or scheduled run that compares nothing).
pub fn all_updated(head: &Repository) -> Detection {
    Detection::from_changes(
        head.environments
            .iter()
            .map(|e| env_change(e, Change::Updated, Vec::new()))
            .collect(),
    )
}

/// Classifies every environment of `base` and `head` given the paths that
/// changed between them. With no `base`, every environment at head counts as
/// created.
///
/// - created: in `head`, not in `base`; deleted: the other way round
///   (environments are identified by folder name, so a renamed folder is
///   the old name deleted and the new one created);
/// - updated: in both, and a changed path is inside its folder, is the
///   template it resolves to (or, in pipeline mode, the pipeline template),
///   or matches a `shared` glob; or its resolved configuration differs;
/// - unchanged: the rest.
///
/// Paths matching an `ignore` glob never count. The globs, the environments
/// folder and the pipeline template come from `head`'s configuration.
pub fn detect(base: Option<&Repository>, head: &Repository, changes: &[ChangedPath]) -> Detection {
    detect_partial(base, None, head, changes)
}

/// [`detect`]; with `read_at_base`, `base` was read only for the
/// environments so named (those the change may have touched), and every
/// other environment at head is the same at base (rather than created).
pub(crate) fn detect_partial(
    base: Option<&Repository>,
    read_at_base: Option<&BTreeSet<String>>,
    head: &Repository,
    changes: &[ChangedPath],
) -> Detection {
    let base_envs: &[Environment] = base.map(|b| b.environments.as_slice()).unwrap_or(&[]);
    Detection::from_changes(
        classify(
            base,
            read_at_base,
            head,
            &Changed::new(&head.config, changes),
        )
        .into_iter()
        .map(|(side, change, reasons)| {
            let env = match side {
                Side::Head(i) => &head.environments[i],
                Side::Base(i) => &base_envs[i],
            };
            env_change(env, change, reasons)
        })
        .collect(),
    )
}

/// [`detect_partial`] taking the model at head, whose environments then
/// move into the result rather than being copied (for a caller done with
/// it), and the changes already read with its configuration.
pub(crate) fn detect_owned(
    base: Option<&Repository>,
    read_at_base: Option<&BTreeSet<String>>,
    head: Repository,
    changed: &Changed<'_>,
) -> Detection {
    let verdicts = classify(base, read_at_base, &head, changed);
    let base_envs: &[Environment] = base.map(|b| b.environments.as_slice()).unwrap_or(&[]);
    let mut heads: Vec<Option<Environment>> = head.environments.into_iter().map(Some).collect();
    Detection::from_changes(
        verdicts
            .into_iter()
            .map(|(side, change, reasons)| match side {
                // Each head environment has one name, so one verdict.
                Side::Head(i) => {
                    moved_change(heads[i].take().unwrap_or_else(unresolved), change, reasons)
                }
                Side::Base(i) => env_change(&base_envs[i], change, reasons),
            })
            .collect(),
    )
}

/// The changed paths as [`classify`] reads them.
pub(crate) struct Changed<'a> {
    /// Normal, sorted, without duplicates and without those an `ignore`
    /// glob matches; borrowed from the changes where already normal (a git
    /// diff's are).
    paths: Vec<Cow<'a, str>>,
    /// Whether each of `paths` matches a `shared` glob.
    shared: Vec<bool>,
}

impl<'a> Changed<'a> {
    /// `changes` read with the `ignore` and `shared` globs of `config`.
    pub(crate) fn new(config: &Config, changes: &'a [ChangedPath]) -> Self {
        let ignore = crate::glob::set(&config.ignore);
        let shared = crate::glob::set(&config.shared);
        let mut paths: Vec<Cow<'a, str>> = changes
            .iter()
            .flat_map(ChangedPath::paths)
            .filter_map(normalized)
            .filter(|p| !p.is_empty())
            .collect();
        paths.sort_unstable();
        paths.dedup();
        // Both glob sets match one candidate per path.
        let mut is_shared = Vec::with_capacity(paths.len());
        paths.retain(|p| {
            let candidate = globset::Candidate::new(p.as_ref());
            let kept = !ignore.is_match_candidate(&candidate);
            if kept {
                is_shared.push(shared.is_match_candidate(&candidate));
            }
            kept
        });
        Changed {
            paths,
            shared: is_shared,
        }
    }
}

/// Which model an environment's verdict describes it from, by index.
#[derive(Clone, Copy)]
enum Side {
    Head(usize),
    Base(usize),
}

/// The verdict for each environment of `base` and `head`, sorted by name
/// (see [`detect_partial`]).
fn classify(
    base: Option<&Repository>,
    read_at_base: Option<&BTreeSet<String>>,
    head: &Repository,
    changed: &Changed<'_>,
) -> Vec<(Side, Change, Vec<Reason>)> {
    let cfg = &head.config;
    let paths = &changed.paths;
    let shared_paths: Vec<&str> = paths
        .iter()
        .zip(&changed.shared)
        .filter(|(_, shared)| **shared)
        .map(|(p, _)| p.as_ref())
        .collect();
    let changed = |path: &str| paths.binary_search_by(|p| p.as_ref().cmp(path)).is_ok();
    let config_changed = changed(CONFIG_FILE);
    let pipeline_template_changed = cfg
        .pipeline
        .as_ref()
        .and_then(|p| normalize(&p.template))
        .filter(|t| changed(t));

    // Changed paths by the environment folder they are in.
    let base_envs: &[Environment] = base.map(|b| b.environments.as_slice()).unwrap_or(&[]);
    let mut roots: BTreeSet<String> = BTreeSet::new();
    roots.extend(normalize(&cfg.environments_path));
    if let Some(b) = base {
        roots.extend(normalize(&b.config.environments_path));
    }
    let mut by_folder: HashMap<&str, Vec<&str>> = HashMap::new();
    for p in paths {
        for root in &roots {
            if let Some(dir) = env_folder(p, root) {
                by_folder.entry(dir).or_default().push(p);
            }
        }
    }
    let heads: BTreeMap<&str, (usize, &Environment)> = head
        .environments
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.as_str(), (i, e)))
        .collect();
    let bases: BTreeMap<&str, (usize, &Environment)> = base_envs
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.as_str(), (i, e)))
        .collect();
    let names: BTreeSet<&str> = heads.keys().chain(bases.keys()).copied().collect();

    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let mut reasons: BTreeMap<&str, Why> = BTreeMap::new();
        let at_head = heads.get(name);
        let at_base = match bases.get(name) {
            None if read_at_base.is_some_and(|read| !read.contains(name)) => at_head,
            found => found,
        };
        let (side, change) = match (at_base, at_head) {
            (None, Some(&(i, h))) => {
                folder_reasons(&by_folder, h, &mut reasons);
                if base.is_some() && config_changed && reasons.is_empty() {
                    config_reason(config_changed, h, &mut reasons);
                }
                (Side::Head(i), Change::Created)
            }
            (Some(&(i, b)), None) => {
                folder_reasons(&by_folder, b, &mut reasons);
                if config_changed && reasons.is_empty() {
                    config_reason(config_changed, b, &mut reasons);
                }
                (Side::Base(i), Change::Deleted)
            }
            (Some(&(_, b)), Some(&(i, h))) => {
                folder_reasons(&by_folder, h, &mut reasons);
                if b.dir() != h.dir() {
                    folder_reasons(&by_folder, b, &mut reasons);
                }
                if changed(&h.template) {
                    reasons.insert(&h.template, Why::Template);
                }
                if let (Some(t), Some(_)) = (&pipeline_template_changed, &h.pipeline) {
                    reasons.insert(t, Why::Template);
                }
                for p in &shared_paths {
                    reasons.entry(p).or_insert(Why::Shared);
                }
                if !std::ptr::eq(b, h) && b != h {
                    config_reason(config_changed, h, &mut reasons);
                }
                let change = if reasons.is_empty() {
                    Change::Unchanged
                } else {
                    Change::Updated
                };
                (Side::Head(i), change)
            }
            (None, None) => continue,
        };
        let reasons = reasons
            .into_iter()
            .map(|(path, why)| Reason::new(path, why))
            .collect();
        out.push((side, change, reasons));
    }
    out
}

/// Adds the changed paths inside `env`'s folder (from `by_folder`) to `reasons`.
fn folder_reasons<'a>(
    by_folder: &HashMap<&str, Vec<&'a str>>,
    env: &Environment,
    reasons: &mut BTreeMap<&'a str, Why>,
) {
    for p in by_folder.get(env.dir()).into_iter().flatten() {
        let why = if *p == env.template {
            Why::Template
        } else {
            Why::Folder
        };
        reasons.entry(p).or_insert(why);
    }
}

/// Adds the configuration reason: `gitops.yaml` when it changed, otherwise
/// `env`'s file when nothing else touched it.
fn config_reason<'a>(
    config_changed: bool,
    env: &'a Environment,
    reasons: &mut BTreeMap<&'a str, Why>,
) {
    let path = if config_changed {
        CONFIG_FILE
    } else {
        env.file.as_str()
    };
    if config_changed || reasons.is_empty() {
        reasons.entry(path).or_insert(Why::Config);
    }
}

/// The environment folder (`<root>/<name>`) that `path` lies inside, if any.
pub(crate) fn env_folder<'p>(path: &'p str, root: &str) -> Option<&'p str> {
    let rest = if root.is_empty() {
        path
    } else {
        path.strip_prefix(root)?.strip_prefix('/')?
    };
    let (name, inner) = rest.split_once('/')?;
    if name.is_empty() || inner.is_empty() {
        return None;
    }
    Some(&path[..path.len() - rest.len() + name.len()])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::WorkTree;

    /// A repository on disk from `(path, content)` pairs.
    fn load(files: &[(&str, &str)]) -> Repository {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, content).unwrap();
        }
        let repo = Repository::load(&WorkTree::new(dir.path()).unwrap()).unwrap();
        let errors: Vec<_> = repo.problems().iter().filter(|p| p.is_error()).collect();
        assert!(errors.is_empty(), "{errors:?}");
        repo
    }

    const CONFIG: &str = "version: 1\nenvironments: { path: envs, file: env.yaml }\nshared: [\"shared/**\"]\nignore: [\"**/*.md\"]\nstack: { template: tpl/app.yaml }\n";

    fn base_files() -> Vec<(&'static str, &'static str)> {
        vec![
            ("gitops.yaml", CONFIG),
            ("envs/dev/env.yaml", "parameters: { AppVersion: \"1\" }\n"),
            (
                "envs/staging/env.yaml",
                "parameters: { AppVersion: \"1\" }\n",
            ),
            (
                "envs/prod/env.yaml",
                "template-file-path: tpl/prod.yaml\nparameters: { AppVersion: \"1\" }\n",
            ),
        ]
    }

    /// `created | updated | deleted | unchanged` lists plus reasons, for snapshots.
    fn render(d: &Detection) -> String {
        let mut s = format!(
            "created={:?} updated={:?} deleted={:?} unchanged={:?}\n",
            d.created, d.updated, d.deleted, d.unchanged
        );
        for e in d.affected() {
            let reasons: Vec<String> = e
                .reasons
                .iter()
                .map(|r| format!("{} ({})", r.path, r.why))
                .collect();
            s.push_str(&format!(
                "{} {}: {}\n",
                e.name,
                e.change,
                reasons.join(", ")
            ));
        }
        s
    }

    fn with(files: &[(&'static str, &'static str)]) -> Repository {
        let mut all = base_files();
        for (p, c) in files {
            all.retain(|(q, _)| q != p);
            all.push((p, c));
        }
        load(&all)
    }

    fn without(prefix: &str) -> Repository {
        let mut all = base_files();
        all.retain(|(p, _)| !p.starts_with(prefix));
        load(&all)
    }

    #[test]
    fn folder_change_updates_that_environment() {
        let base = load(&base_files());
        let head = with(&[("envs/dev/env.yaml", "parameters: { AppVersion: \"2\" }\n")]);
        let d = detect(
            Some(&base),
            &head,
            &[
                ChangedPath::modified("envs/dev/env.yaml"),
                ChangedPath::added("envs/dev/extra/params.json"),
            ],
        );
        expect_test::expect![[r#"
            created=[] updated=["dev"] deleted=[] unchanged=["prod", "staging"]
            dev updated: envs/dev/env.yaml (folder), envs/dev/extra/params.json (folder)
        "#]]
        .assert_eq(&render(&d));
    }

    #[test]
    fn no_base_means_everything_created() {
        let head = load(&base_files());
        let d = detect(None, &head, &[]);
        assert_eq!(d.created, ["dev", "prod", "staging"]);
        assert!(d.updated.is_empty() && d.deleted.is_empty() && d.unchanged.is_empty());
        assert_eq!(d.matrix().include.len(), 3);
    }

    #[test]
    fn renamed_folder_is_deleted_plus_created() {
        let base = load(&base_files());
        let mut files = base_files();
        files.retain(|(p, _)| !p.starts_with("envs/staging/"));
        files.push(("envs/stage/env.yaml", "parameters: { AppVersion: \"1\" }\n"));
        let head = load(&files);
        let d = detect(
            Some(&base),
            &head,
            &[ChangedPath::renamed(
                "envs/staging/env.yaml",
                "envs/stage/env.yaml",
            )],
        );
        expect_test::expect![[r#"
            created=["stage"] updated=[] deleted=["staging"] unchanged=["dev", "prod"]
            stage created: envs/stage/env.yaml (folder)
            staging deleted: envs/staging/env.yaml (folder)
        "#]]
        .assert_eq(&render(&d));
        // The deleted environment is described as it was at base.
        let staging = d.environment("staging").unwrap();
        assert_eq!(staging.stack, "staging-app");
        assert_eq!(staging.environment.file, "envs/staging/env.yaml");
    }

    #[test]
    fn deleted_folder() {
        let base = load(&base_files());
        let head = without("envs/dev/");
        let d = detect(
            Some(&base),
            &head,
            &[ChangedPath::deleted("envs/dev/env.yaml")],
        );
        assert_eq!(d.deleted, ["dev"]);
        assert_eq!(d.unchanged, ["prod", "staging"]);
        let m = d.matrix();
        assert_eq!(m.include.len(), 1);
        assert_eq!(m.include[0].environment, "dev");
        assert_eq!(m.include[0].change, Change::Deleted);
    }

    #[test]
    fn shared_glob_updates_everything_and_ignore_never_counts() {
        let base = load(&base_files());
        let d = detect(
            Some(&base),
            &base,
            &[
                ChangedPath::modified("shared/macros.yaml"),
                ChangedPath::modified("shared/README.md"),
                ChangedPath::modified("envs/dev/NOTES.md"),
                ChangedPath::added("docs/guide.txt"),
            ],
        );
        expect_test::expect![[r#"
            created=[] updated=["dev", "prod", "staging"] deleted=[] unchanged=[]
            dev updated: shared/macros.yaml (shared)
            prod updated: shared/macros.yaml (shared)
            staging updated: shared/macros.yaml (shared)
        "#]]
        .assert_eq(&render(&d));

        let d = detect(
            Some(&base),
            &base,
            &[
                ChangedPath::modified("envs/dev/NOTES.md"),
                ChangedPath::modified("README.md"),
            ],
        );
        assert!(!d.has_changes());
        assert_eq!(d.unchanged, ["dev", "prod", "staging"]);
        assert_eq!(d.matrix(), Matrix::default());
    }

    #[test]
    fn template_used_by_some_environments() {
        let base = load(&base_files());
        let d = detect(
            Some(&base),
            &base,
            &[ChangedPath::modified("tpl/prod.yaml")],
        );
        expect_test::expect![[r#"
            created=[] updated=["prod"] deleted=[] unchanged=["dev", "staging"]
            prod updated: tpl/prod.yaml (template)
        "#]]
        .assert_eq(&render(&d));
        let d = detect(Some(&base), &base, &[ChangedPath::modified("tpl/app.yaml")]);
        assert_eq!(d.updated, ["dev", "staging"]);
        assert_eq!(d.unchanged, ["prod"]);
    }

    #[test]
    fn config_edit_counts_only_where_it_changes_the_resolved_environment() {
        let base = load(&base_files());
        let reformatted = format!("# A comment\n{}", CONFIG.replace(": ", ":  "));
        let head = with(&[("gitops.yaml", Box::leak(reformatted.into_boxed_str()))]);
        let d = detect(Some(&base), &head, &[ChangedPath::modified("gitops.yaml")]);
        assert!(!d.has_changes(), "{}", render(&d));

        let region = format!("{CONFIG}defaults: {{ region: eu-west-1 }}\n");
        let head = with(&[
            ("gitops.yaml", Box::leak(region.into_boxed_str())),
            ("envs/prod/env.yaml", "template-file-path: tpl/prod.yaml\nregion: us-east-1\nparameters: { AppVersion: \"1\" }\n"),
        ]);
        let d = detect(
            Some(&base),
            &head,
            &[
                ChangedPath::modified("gitops.yaml"),
                ChangedPath::modified("envs/prod/env.yaml"),
            ],
        );
        expect_test::expect![[r#"
            created=[] updated=["dev", "prod", "staging"] deleted=[] unchanged=[]
            dev updated: gitops.yaml (config)
            prod updated: envs/prod/env.yaml (folder)
            staging updated: gitops.yaml (config)
        "#]]
        .assert_eq(&render(&d));
        assert_eq!(d.environment("dev").unwrap().region, "eu-west-1");
    }

    #[test]
    fn pipeline_template_updates_every_pipeline_environment() {
        let cfg = format!("{CONFIG}pipeline: {{ template: tpl/pipeline.yaml }}\n");
        let base = with(&[("gitops.yaml", Box::leak(cfg.into_boxed_str()))]);
        let d = detect(
            Some(&base),
            &base,
            &[ChangedPath::modified("./tpl/pipeline.yaml")],
        );
        assert_eq!(d.updated, ["dev", "prod", "staging"]);
        assert_eq!(
            d.environments[0].reasons,
            [Reason::new("tpl/pipeline.yaml", Why::Template)]
        );
        assert_eq!(d.environments[0].pipeline.as_deref(), Some("dev-deploy"));
    }

    #[test]
    fn json_shape() {
        let base = load(&base_files());
        let head = without("envs/dev/");
        let d = detect(
            Some(&base),
            &head,
            &[
                ChangedPath::deleted("envs/dev/env.yaml"),
                ChangedPath::modified("tpl/prod.yaml"),
            ],
        );
        let json = serde_json::to_string(&serde_json::json!({
            "detection": d, "matrix": d.matrix()
        }))
        .unwrap();
        expect_test::expect![[r#"{"detection":{"created":[],"updated":["prod"],"deleted":["dev"],"unchanged":["staging"],"environments":[{"name":"dev","change":"deleted","stack":"dev-app","pipeline":null,"region":"us-east-1","reasons":[{"path":"envs/dev/env.yaml","why":"folder"}]},{"name":"prod","change":"updated","stack":"prod-app","pipeline":null,"region":"us-east-1","reasons":[{"path":"tpl/prod.yaml","why":"template"}]},{"name":"staging","change":"unchanged","stack":"staging-app","pipeline":null,"region":"us-east-1","reasons":[]}]},"matrix":{"include":[{"environment":"dev","change":"deleted","stack":"dev-app","region":"us-east-1"},{"environment":"prod","change":"updated","stack":"prod-app","region":"us-east-1"}]}}"#]].assert_eq(&json);
    }

    #[test]
    fn detection_reads_back_from_its_json() {
        let base = load(&base_files());
        let head = without("envs/dev/");
        let mut d = detect(
            Some(&base),
            &head,
            &[
                ChangedPath::deleted("envs/dev/env.yaml"),
                ChangedPath::modified("tpl/prod.yaml"),
            ],
        );
        // The fields only `--base deployed` fills, `null` commit included.
        d.environments[0].base = Some(None);
        d.environments[1].base = Some(Some("abc".into()));
        d.environments[1].stack_status = Some("UPDATE_ROLLBACK_COMPLETE".into());
        d.environments[1].reasons[0].since = Some("abc".into());
        d.environments[1]
            .reasons
            .push(Reason::new("x", Why::NotInHistory));
        let json = serde_json::to_string(&d).unwrap();
        let mut back: Detection = serde_json::from_str(&json).unwrap();
        // The environments themselves are not in the JSON: they come back
        // unresolved, and are read again from the repository.
        assert!(back
            .environments
            .iter()
            .all(|e| e.environment.name.is_empty()));
        for e in &mut back.environments {
            let model = if e.change == Change::Deleted {
                &base
            } else {
                &head
            };
            e.environment = model.environment(&e.name).unwrap().clone();
        }
        assert_eq!(back, d);
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        // A hand-written entry: only name and change are needed.
        let d: Detection =
            serde_json::from_str(r#"{"environments": [{"name": "dev", "change": "updated"}]}"#)
                .unwrap();
        assert_eq!(
            (
                d.environments[0].name.as_str(),
                d.environments[0].base.clone()
            ),
            ("dev", None)
        );
        assert!(
            serde_json::from_str::<Detection>(r#"{"environments": [{"name": "dev"}]}"#).is_err()
        );
    }

    #[test]
    fn all_updated_lists_every_environment() {
        let head = load(&base_files());
        let d = all_updated(&head);
        assert_eq!(d.updated, ["dev", "prod", "staging"]);
        assert!(d.environments.iter().all(|e| e.reasons.is_empty()));
    }

    #[test]
    fn name_status_parsing() {
        let parsed = ChangedPath::parse_name_status(
            "M\ta.yaml\nA\tb\nD\tc\nR087\told/x\tnew/x\nC100\tsrc\tcopy\nT\tlink\n",
        )
        .unwrap();
        assert_eq!(
            parsed,
            [
                ChangedPath::modified("a.yaml"),
                ChangedPath::added("b"),
                ChangedPath::deleted("c"),
                ChangedPath::renamed("old/x", "new/x"),
                ChangedPath::added("copy"),
                ChangedPath::modified("link"),
            ]
        );
        assert!(ChangedPath::parse_name_status("X\tfoo").is_err());
        assert!(ChangedPath::parse_name_status("R100\tonly-one").is_err());
    }

    #[test]
    fn env_folders() {
        assert_eq!(env_folder("envs/dev/env.yaml", "envs"), Some("envs/dev"));
        assert_eq!(env_folder("envs/dev/a/b", "envs"), Some("envs/dev"));
        assert_eq!(env_folder("envs/README", "envs"), None);
        assert_eq!(env_folder("envsx/dev/a", "envs"), None);
        assert_eq!(env_folder("dev/env.yaml", ""), Some("dev"));
    }
}
