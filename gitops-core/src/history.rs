//! The git side of rollback and history: an environment's promoted values at
//! each commit, read with gix from the object database (no checkout, no
//! `git` subprocess).
//!
//! **Renames.** An environment is identified by its folder name, so its file
//! is located afresh at every commit from *that commit's* `gitops.yaml`
//! (`environments.path` and `environments.file`). Moving the environment
//! files (`git mv`) together with the matching change of `gitops.yaml` is
//! therefore followed, and so is moving `environments.path`. A commit where
//! the environment cannot be found (gitops.yaml missing or unusable, or the
//! file not where that gitops.yaml says) has no values and is skipped, so a
//! rename split over two commits does not show up as a removal and a
//! re-addition. Renaming the environment's *folder* makes it another
//! environment, as everywhere else in gitops.
//!
//! Values are the resolved ones (`defaults` merged under the file), so a
//! change of `defaults` in `gitops.yaml` that changes them is listed too.
//! The promoted keys are those asked for (today's `promotion.keys`), not
//! those of each commit.

use std::collections::HashMap;

use gix::ObjectId;

use crate::config::{self, CONFIG_FILE};
use crate::error::{Error, Result};
use crate::model::{PromotedKey, Repository};
use crate::promote::{values_of, CommitInfo, CommitState, Snapshot, Values};
use crate::source::{normalize, Memory};

/// Reads one environment's promoted values at any commit, with caches so
/// that walking a long history parses each distinct file only once.
pub(crate) struct ValueReader<'r> {
    repo: &'r gix::Repository,
    prefix: String,
    env: String,
    keys: Vec<PromotedKey>,
    /// gitops.yaml blob → the environment file's path inside the GitOps root.
    paths: HashMap<ObjectId, Option<String>>,
    /// (gitops.yaml blob, environment file blob) → values.
    values: HashMap<(ObjectId, ObjectId), Option<Values>>,
    /// commit → values.
    commits: HashMap<ObjectId, Option<Values>>,
}

impl std::fmt::Debug for ValueReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueReader")
            .field("prefix", &self.prefix)
            .field("env", &self.env)
            .field("keys", &self.keys)
            .finish()
    }
}

impl<'r> ValueReader<'r> {
    /// A reader of environment `env`'s values of `keys`, with the GitOps
    /// root at `prefix` inside `repo` (`""` for its top).
    pub fn new(repo: &'r gix::Repository, prefix: &str, env: &str, keys: &[PromotedKey]) -> Self {
        Self {
            repo,
            prefix: normalize(prefix).unwrap_or_default(),
            env: env.to_string(),
            keys: keys.to_vec(),
            paths: HashMap::new(),
            values: HashMap::new(),
            commits: HashMap::new(),
        }
    }

    fn full(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }

    /// The environment's values at `commit`, or `None` when it does not
    /// exist there (or its configuration cannot be read).
    pub fn values_at(&mut self, commit: ObjectId) -> Result<Option<Values>> {
        if let Some(v) = self.commits.get(&commit) {
            return Ok(v.clone());
        }
        let v = self.read(commit)?;
        self.commits.insert(commit, v.clone());
        Ok(v)
    }

    fn read(&mut self, commit: ObjectId) -> Result<Option<Values>> {
        let tree = self
            .repo
            .find_commit(commit)
            .map_err(Error::git)?
            .tree()
            .map_err(Error::git)?;
        let Some(cfg_entry) = tree
            .lookup_entry_by_path(self.full(CONFIG_FILE))
            .map_err(Error::git)?
            .filter(|e| e.mode().is_blob())
        else {
            return Ok(None);
        };
        let cfg_id = cfg_entry.object_id();
        if !self.paths.contains_key(&cfg_id) {
            let data = cfg_entry.object().map_err(Error::git)?.detach().data;
            let path = String::from_utf8(data).ok().and_then(|text| {
                let (cfg, _) = config::parse(&text, &mut Vec::new())?;
                let root = normalize(&cfg.environments_path)?;
                let dir = if root.is_empty() {
                    self.env.clone()
                } else {
                    format!("{root}/{}", self.env)
                };
                Some(format!("{dir}/{}", cfg.environment_file))
            });
            self.paths.insert(cfg_id, path);
        }
        let Some(Some(rel)) = self.paths.get(&cfg_id).cloned() else {
            return Ok(None);
        };
        let Some(env_entry) = tree
            .lookup_entry_by_path(self.full(&rel))
            .map_err(Error::git)?
            .filter(|e| e.mode().is_blob())
        else {
            return Ok(None);
        };
        let key = (cfg_id, env_entry.object_id());
        if let Some(v) = self.values.get(&key) {
            return Ok(v.clone());
        }
        let cfg_data = self
            .repo
            .find_object(cfg_id)
            .map_err(Error::git)?
            .detach()
            .data;
        let env_data = env_entry.object().map_err(Error::git)?.detach().data;
        let files = Memory::new("history")
            .with_file(CONFIG_FILE, cfg_data)
            .with_file(&rel, env_data);
        let values = Repository::load(&files)
            .ok()
            .and_then(|r| r.environment(&self.env).map(|e| values_of(e, &self.keys)));
        self.values.insert(key, values.clone());
        Ok(values)
    }
}

/// Author, date and summary of commit `id`.
pub(crate) fn commit_info(repo: &gix::Repository, id: ObjectId) -> Result<CommitInfo> {
    let commit = repo.find_commit(id).map_err(Error::git)?;
    let author = commit.author().map_err(Error::git)?;
    let date = author
        .time()
        .map(|t| t.format_or_unix(gix::date::time::format::ISO8601_STRICT))
        .unwrap_or_default();
    let summary = commit
        .message()
        .map(|m| m.summary().to_string())
        .unwrap_or_default();
    Ok(CommitInfo {
        commit: id.to_string(),
        date,
        author: author.name.to_string(),
        summary,
    })
}

/// The environment's values along the first-parent chain from `head`,
/// newest first, at most `max` commits, skipping commits where it does not
/// exist: the candidates for a rollback.
pub(crate) fn first_parent_snapshots(
    reader: &mut ValueReader<'_>,
    head: ObjectId,
    max: usize,
) -> Result<Vec<Snapshot>> {
    let walk = reader
        .repo
        .rev_walk([head])
        .first_parent_only()
        .all()
        .map_err(Error::git)?;
    let mut out = Vec::new();
    for info in walk.take(max) {
        let info = info.map_err(Error::git)?;
        if let Some(values) = reader.values_at(info.id)? {
            out.push(Snapshot {
                commit: info.id.to_string(),
                values,
            });
        }
    }
    Ok(out)
}

/// Why [`rollback_target`] or [`environment_history`] has nothing to offer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The request itself is refused (unknown environment, no keys, no
    /// earlier revision).
    #[error(transparent)]
    Refused(#[from] crate::promote::PromoteError),
    /// The environment does not exist at the revision asked for.
    #[error("environment `{env}` does not exist at {rev} (or gitops.yaml there is unusable); pick another revision")]
    NotAt {
        /// The environment.
        env: String,
        /// The revision as given.
        rev: String,
    },
    /// The environment exists neither now nor in the history of `rev`.
    #[error("there is no environment `{env}`, now or in the history of {rev}")]
    NeverExisted {
        /// The environment.
        env: String,
        /// The revision as given.
        rev: String,
    },
    /// The git repository could not be read.
    #[error(transparent)]
    Repository(#[from] Error),
}

/// The report of `gitops history`: every change of environment `name`'s
/// promoted values in the first `max` commits reachable from `rev`, in the
/// git repository of the working tree at `root`. The environment may be gone
/// from `repo` (today's model): its history still counts.
pub fn environment_history(
    root: &std::path::Path,
    repo: &Repository,
    name: &str,
    rev: &str,
    max: usize,
) -> std::result::Result<crate::promote::HistoryReport, HistoryError> {
    let keys = repo.promoted_keys();
    if keys.is_empty() {
        return Err(crate::promote::PromoteError::NoKeys.into());
    }
    let git = crate::source::open_repo(root)?;
    let prefix = crate::source::prefix_of(&git, root)?;
    let head = crate::source::resolve(&git, rev)?;
    let mut reader = ValueReader::new(&git, &prefix, name, &keys);
    let states = commit_states(&mut reader, head, max)?;
    if states.is_empty() && repo.environment(name).is_none() {
        return Err(HistoryError::NeverExisted {
            env: name.to_string(),
            rev: rev.to_string(),
        });
    }
    let changes = crate::promote::key_history(&keys, &states);
    Ok(crate::promote::HistoryReport {
        environment: name.to_string(),
        keys,
        changes,
    })
}

/// The values `gitops rollback` restores for environment `name` of `repo`,
/// whose working tree is at `root`: those at revision `to`, or by default
/// at the most recent of the first `max_commits` first-parent commits from
/// HEAD where they differ from now.
pub fn rollback_target(
    root: &std::path::Path,
    repo: &Repository,
    name: &str,
    to: Option<&str>,
    max_commits: usize,
) -> std::result::Result<Snapshot, HistoryError> {
    use crate::promote::PromoteError;
    let Some(environment) = repo.environment(name) else {
        return Err(if repo.config.promotion.order.iter().any(|e| e == name) {
            PromoteError::OrderNamesUndeclared(name.to_string())
        } else {
            PromoteError::UnknownEnvironment {
                name: name.to_string(),
                hint: String::new(),
            }
        }
        .into());
    };
    let keys = repo.promoted_keys();
    if keys.is_empty() {
        return Err(PromoteError::NoKeys.into());
    }
    let git = crate::source::open_repo(root)?;
    let prefix = crate::source::prefix_of(&git, root)?;
    let mut reader = ValueReader::new(&git, &prefix, name, &keys);
    if let Some(rev) = to {
        let commit = crate::source::resolve(&git, rev)?;
        let values = reader
            .values_at(commit)?
            .ok_or_else(|| HistoryError::NotAt {
                env: name.to_string(),
                rev: rev.to_string(),
            })?;
        return Ok(Snapshot {
            commit: commit.to_string(),
            values,
        });
    }
    let head = crate::source::resolve(&git, "HEAD")?;
    let history = first_parent_snapshots(&mut reader, head, max_commits)?;
    let now = values_of(environment, &keys);
    match crate::promote::default_rollback_revision(&now, &history) {
        Some(s) => Ok(s.clone()),
        None => Err(PromoteError::NoEarlierRevision {
            env: name.to_string(),
            keys: keys
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }
        .into()),
    }
}

/// Every commit reachable from `head`, newest first (by commit time), at
/// most `max`, with the environment's values there and at its parents:
/// the input of [`crate::promote::key_history`].
pub(crate) fn commit_states(
    reader: &mut ValueReader<'_>,
    head: ObjectId,
    max: usize,
) -> Result<Vec<CommitState>> {
    use gix::revision::walk::Sorting;
    use gix::traverse::commit::simple::CommitTimeOrder;
    let walk = reader
        .repo
        .rev_walk([head])
        .sorting(Sorting::ByCommitTime(CommitTimeOrder::NewestFirst))
        .all()
        .map_err(Error::git)?;
    let mut out = Vec::new();
    for info in walk.take(max) {
        let info = info.map_err(Error::git)?;
        let values = reader.values_at(info.id)?;
        if values.is_none() {
            continue;
        }
        let mut parents = Vec::new();
        for p in info.parent_ids.iter() {
            // A parent cut off by a shallow clone counts as unknown: no values.
            let v = if reader.repo.has_object(*p) {
                reader.values_at(*p)?
            } else {
                None
            };
            parents.push(v);
        }
        out.push(CommitState {
            commit: commit_info(reader.repo, info.id)?,
            values,
            parents,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;
    use std::process::Command;

    use super::*;
    use crate::promote::{default_rollback_revision, key_history};

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Ann")
            .env("GIT_AUTHOR_EMAIL", "ann@example.com")
            .env("GIT_AUTHOR_DATE", "2024-02-03T04:05:06+01:00")
            .env("GIT_COMMITTER_NAME", "Ann")
            .env("GIT_COMMITTER_EMAIL", "ann@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn write(dir: &Path, path: &str, content: &str) {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }

    fn commit(dir: &Path, msg: &str) -> ObjectId {
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "--allow-empty", "-m", msg]);
        ObjectId::from_hex(git(dir, &["rev-parse", "HEAD"]).as_bytes()).unwrap()
    }

    #[test]
    fn values_history_and_rollback_across_a_rename() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        git(dir, &["init", "-q", "-b", "main"]);
        let cfg = |file: &str| {
            format!("version: 1\nstack: {{ template: t.yaml }}\nenvironments: {{ file: {file} }}\npromotion: {{ order: [staging, prod] }}\n")
        };
        write(dir, "ops/gitops.yaml", &cfg("environment.yaml"));
        write(
            dir,
            "ops/environments/prod/environment.yaml",
            "parameters:\n  AppVersion: \"1.0\"\n",
        );
        let c1 = commit(dir, "create prod");
        write(
            dir,
            "ops/environments/prod/environment.yaml",
            "parameters:\n  AppVersion: \"1.1\"\n",
        );
        let c2 = commit(dir, "prod 1.1");
        write(dir, "ops/README.md", "x");
        let c3 = commit(dir, "unrelated");
        // Rename the file and say so in gitops.yaml, in one commit.
        git(
            dir,
            &[
                "mv",
                "ops/environments/prod/environment.yaml",
                "ops/environments/prod/env.yaml",
            ],
        );
        write(dir, "ops/gitops.yaml", &cfg("env.yaml"));
        let c4 = commit(dir, "rename");
        write(
            dir,
            "ops/environments/prod/env.yaml",
            "parameters:\n  AppVersion: \"1.2\"  # now\n",
        );
        let c5 = commit(dir, "prod 1.2");

        let repo = crate::source::open_repo(dir).unwrap();
        let keys = [PromotedKey::Parameter("AppVersion".into())];
        let mut reader = ValueReader::new(&repo, "ops", "prod", &keys);
        let v = |s: &str| -> Values { [(keys[0].clone(), s.to_string())].into() };
        assert_eq!(reader.values_at(c1).unwrap(), Some(v("1.0")));
        assert_eq!(reader.values_at(c4).unwrap(), Some(v("1.1")));
        assert_eq!(reader.values_at(c5).unwrap(), Some(v("1.2")));
        let mut other = ValueReader::new(&repo, "ops", "nope", &keys);
        assert_eq!(other.values_at(c5).unwrap(), None);

        let states = commit_states(&mut reader, c5, 100).unwrap();
        let h = key_history(&keys, &states);
        let lines: Vec<String> = h
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} {:?} -> {:?}",
                    e.commit.summary, e.commit.author, e.commit.date, e.old, e.new
                )
            })
            .collect();
        expect_test::expect![[r#"
            [
                "prod 1.2 Ann 2024-02-03T04:05:06+01:00 Some(\"1.1\") -> Some(\"1.2\")",
                "prod 1.1 Ann 2024-02-03T04:05:06+01:00 Some(\"1.0\") -> Some(\"1.1\")",
                "create prod Ann 2024-02-03T04:05:06+01:00 None -> Some(\"1.0\")",
            ]
        "#]]
        .assert_debug_eq(&lines);

        let snaps = first_parent_snapshots(&mut reader, c5, 100).unwrap();
        assert_eq!(snaps.len(), 5);
        let rev = default_rollback_revision(&v("1.2"), &snaps).unwrap();
        assert_eq!(rev.commit, c4.to_string());
        assert_eq!(rev.values, v("1.1"));
        let _ = (c2, c3);
    }
}
