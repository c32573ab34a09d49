//! Branch-bound environments: which environments a push to a branch deploys.
//!
//! An environment file may say `branch: develop` (a branch name, or a glob
//! such as `release/*` whose `*` does not cross `/`); `defaults.branch` in
//! `gitops.yaml` binds those that don't. An environment with no binding
//! follows the repository's default branch. `detect`, `plan` and `deploy`
//! keep only the environments bound to the branch being deployed and list
//! the others as [`Skipped`], with the reason.
//!
//! ```
//! use gitops_core::{BranchScope, Memory, Repository};
//!
//! let source = Memory::new("test")
//!     .with_file("gitops.yaml", "version: 1\nid: acme/app\nstack: { template: t.yaml }\n")
//!     .with_file("t.yaml", "Resources:\n  T: { Type: AWS::SNS::Topic }\n")
//!     .with_file("environments/dev/environment.yaml", "branch: develop\n")
//!     .with_file("environments/prod/environment.yaml", "{}\n");
//! let repo = Repository::load(&source).unwrap();
//! let scope = BranchScope::new("develop", "main");
//! assert!(scope.admits(repo.environment("dev").unwrap()).is_ok());
//! let why = scope.admits(repo.environment("prod").unwrap()).unwrap_err();
//! assert_eq!(why.to_string(), "follows the default branch `main`, not `develop`");
//! ```

use serde::{Deserialize, Serialize};

use crate::config::CONFIG_FILE;
use crate::detect::{Change, Detection};
use crate::model::{Environment, Repository};
use crate::problem::Problem;

/// The branch being deployed and the repository's default branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchScope {
    branch: String,
    default_branch: String,
}

/// Why an environment is not deployed from this branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SkipReason {
    /// Its `branch:` (or `defaults.branch`) does not match the branch.
    BoundTo {
        /// The binding as written.
        binding: String,
        /// The branch being deployed.
        branch: String,
    },
    /// It has no binding, and the branch is not the default branch.
    FollowsDefault {
        /// The repository's default branch.
        default_branch: String,
        /// The branch being deployed.
        branch: String,
    },
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::BoundTo { binding, branch } => {
                write!(f, "bound to branch `{binding}`, not `{branch}`")
            }
            SkipReason::FollowsDefault {
                default_branch,
                branch,
            } => write!(
                f,
                "follows the default branch `{default_branch}`, not `{branch}`"
            ),
        }
    }
}

/// An environment a detection left out for its branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Skipped {
    /// The environment's name.
    pub name: String,
    /// What the change would have been.
    pub change: Change,
    /// Why it was left out, as a sentence.
    pub reason: String,
    /// Why it was left out, as a value.
    pub why: SkipReason,
}

impl BranchScope {
    /// Deploying `branch` of a repository whose default branch is
    /// `default_branch`.
    pub fn new(branch: impl Into<String>, default_branch: impl Into<String>) -> Self {
        BranchScope {
            branch: branch.into(),
            default_branch: default_branch.into(),
        }
    }

    /// The branch being deployed.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The repository's default branch.
    pub fn default_branch(&self) -> &str {
        &self.default_branch
    }

    /// Whether `env` is deployed from this branch; the reason when it is not.
    pub fn admits(&self, env: &Environment) -> Result<(), SkipReason> {
        match &env.branch {
            Some(binding) if matches(binding, &self.branch) => Ok(()),
            Some(binding) => Err(SkipReason::BoundTo {
                binding: binding.clone(),
                branch: self.branch.clone(),
            }),
            None if self.branch == self.default_branch => Ok(()),
            None => Err(SkipReason::FollowsDefault {
                default_branch: self.default_branch.clone(),
                branch: self.branch.clone(),
            }),
        }
    }

    /// Keeps in `detection` only the environments deployed from this
    /// branch. Created, updated and deleted environments bound elsewhere
    /// move to [`Detection::skipped`] (sorted by name), which is also
    /// returned; unchanged ones stay.
    pub fn restrict(&self, detection: &mut Detection) -> Vec<Skipped> {
        let mut skipped = Vec::new();
        detection.environments.retain(|e| {
            if e.change == Change::Unchanged {
                return true;
            }
            match self.admits(&e.environment) {
                Ok(()) => true,
                Err(why) => {
                    skipped.push(Skipped {
                        name: e.name.clone(),
                        change: e.change,
                        reason: why.to_string(),
                        why,
                    });
                    false
                }
            }
        });
        for list in [
            &mut detection.created,
            &mut detection.updated,
            &mut detection.deleted,
        ] {
            list.retain(|n| !skipped.iter().any(|s| &s.name == n));
        }
        skipped.sort_by(|a, b| a.name.cmp(&b.name));
        detection.skipped = skipped.clone();
        skipped
    }
}

/// The branch a GitHub Actions run deploys and the repository's default
/// branch, from the event payload and the runner's variables (`var` reads
/// one, such as `GITHUB_BASE_REF`): a pull request's target branch
/// (`GITHUB_BASE_REF`, what the merge will deploy), else the pushed branch
/// (`GITHUB_REF_NAME` when `GITHUB_REF_TYPE` is `branch`); the default
/// branch is the payload's `repository.default_branch`. `None` where the
/// run does not say.
pub fn github_branches(
    payload: &serde_json::Value,
    var: impl Fn(&str) -> Option<String>,
) -> (Option<String>, Option<String>) {
    let set = |v: Option<String>| v.filter(|s| !s.is_empty());
    let branch = set(var("GITHUB_BASE_REF")).or_else(|| {
        (var("GITHUB_REF_TYPE").as_deref() == Some("branch"))
            .then(|| set(var("GITHUB_REF_NAME")))
            .flatten()
    });
    let default_branch = payload["repository"]["default_branch"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    (branch, default_branch)
}

/// Whether the binding `pattern` (a name or a glob) matches `branch`.
fn matches(pattern: &str, branch: &str) -> bool {
    pattern == branch
        || crate::glob::compile(pattern).is_ok_and(|g| g.compile_matcher().is_match(branch))
}

/// Warnings for bindings that match none of `branches` (the repository's
/// branch names, local and remote-tracking without `origin/`): one at each
/// environment file's `branch:`, and one at `defaults.branch` naming the
/// environments that use it.
pub fn unmatched_bindings(repo: &Repository, branches: &[String]) -> Vec<Problem> {
    let none = |pattern: &str| !branches.iter().any(|b| matches(pattern, b));
    let known = || {
        let mut names: Vec<&str> = branches.iter().map(String::as_str).collect();
        names.sort_unstable();
        names.dedup();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    let mut problems = Vec::new();
    let mut default_users = Vec::new();
    for env in &repo.environments {
        let Some(binding) = &env.branch else { continue };
        if !env.branch_from_file {
            default_users.push(env.name.as_str());
            continue;
        }
        if none(binding) {
            problems.push(
                Problem::warning(
                    &env.file,
                    format!(
                        "environment `{}` is bound to branch `{binding}`, which matches no branch of the repository ({}); no push will deploy it until that branch exists: fix `branch:` or push the branch",
                        env.name,
                        known()
                    ),
                )
                .at(repo.pos(&env.file, &["branch"])),
            );
        }
    }
    if let Some(binding) = &repo.config.defaults.branch {
        if !default_users.is_empty() && none(binding) {
            problems.push(
                Problem::warning(
                    CONFIG_FILE,
                    format!(
                        "`defaults.branch: {binding}` matches no branch of the repository ({}), so no push deploys {}: fix it or push the branch",
                        known(),
                        default_users.join(", ")
                    ),
                )
                .at(repo.pos(CONFIG_FILE, &["defaults", "branch"])),
            );
        }
    }
    problems
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::detect::{detect, ChangedPath};
    use crate::source::Memory;

    fn repo(files: &[(&str, &str)]) -> Repository {
        let mut m = Memory::new("test")
            .with_file(
                "gitops.yaml",
                "version: 1\nid: acme/app\nstack: { template: t.yaml }\n",
            )
            .with_file("t.yaml", "Resources:\n  T: { Type: AWS::SNS::Topic }\n");
        for (path, text) in files {
            m = m.with_file(path, *text);
        }
        Repository::load(&m).unwrap()
    }

    fn names(s: &[Skipped]) -> Vec<String> {
        s.iter()
            .map(|s| format!("{}: {}", s.name, s.reason))
            .collect()
    }

    #[test]
    fn a_push_to_develop_keeps_only_develop_bound_environments() {
        let head = repo(&[
            ("environments/dev/environment.yaml", "branch: develop\n"),
            ("environments/prod/environment.yaml", "{}\n"),
            ("environments/rel/environment.yaml", "branch: 'release/*'\n"),
        ]);
        let changes = vec![
            ChangedPath::modified("environments/dev/environment.yaml"),
            ChangedPath::modified("environments/prod/environment.yaml"),
            ChangedPath::modified("environments/rel/environment.yaml"),
        ];
        let mut d = detect(Some(&head), &head, &changes);
        let skipped = BranchScope::new("develop", "main").restrict(&mut d);
        assert_eq!(d.updated, vec!["dev"]);
        assert_eq!(d.affected().count(), 1);
        assert_eq!(
            names(&skipped),
            vec![
                "prod: follows the default branch `main`, not `develop`",
                "rel: bound to branch `release/*`, not `develop`",
            ]
        );

        let mut d = detect(Some(&head), &head, &changes);
        let skipped = BranchScope::new("release/2.0", "main").restrict(&mut d);
        assert_eq!(d.updated, vec!["rel"]);
        assert_eq!(skipped.len(), 2);

        let mut d = detect(Some(&head), &head, &changes);
        let skipped = BranchScope::new("main", "main").restrict(&mut d);
        assert_eq!(d.updated, vec!["prod"]);
        assert_eq!(
            names(&skipped),
            vec![
                "dev: bound to branch `develop`, not `main`",
                "rel: bound to branch `release/*`, not `main`",
            ]
        );
    }

    #[test]
    fn github_runs_name_the_target_or_pushed_branch() {
        let payload = serde_json::json!({"repository": {"default_branch": "main"}});
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            github_branches(
                &payload,
                vars(&[
                    ("GITHUB_BASE_REF", "develop"),
                    ("GITHUB_REF_NAME", "12/merge"),
                    ("GITHUB_REF_TYPE", "branch")
                ])
            ),
            (Some("develop".into()), Some("main".into()))
        );
        assert_eq!(
            github_branches(
                &payload,
                vars(&[
                    ("GITHUB_BASE_REF", ""),
                    ("GITHUB_REF_NAME", "develop"),
                    ("GITHUB_REF_TYPE", "branch")
                ])
            ),
            (Some("develop".into()), Some("main".into()))
        );
        assert_eq!(
            github_branches(
                &serde_json::json!({}),
                vars(&[("GITHUB_REF_NAME", "v1.0"), ("GITHUB_REF_TYPE", "tag")])
            ),
            (None, None)
        );
    }

    #[test]
    fn without_bindings_the_default_branch_deploys_everything() {
        let head = repo(&[
            ("environments/a/environment.yaml", "{}\n"),
            ("environments/b/environment.yaml", "{}\n"),
        ]);
        let mut d = crate::detect::all_updated(&head);
        assert!(BranchScope::new("main", "main").restrict(&mut d).is_empty());
        assert_eq!(d.updated, vec!["a", "b"]);
    }

    #[test]
    fn defaults_branch_binds_environments_without_their_own() {
        let head = repo(&[
            (
                "gitops.yaml",
                "version: 1\nid: acme/app\nstack: { template: t.yaml }\ndefaults: { branch: develop }\n",
            ),
            ("environments/dev/environment.yaml", "{}\n"),
            ("environments/prod/environment.yaml", "branch: main\n"),
        ]);
        assert_eq!(
            head.environment("dev").unwrap().branch.as_deref(),
            Some("develop")
        );
        let mut d = crate::detect::all_updated(&head);
        let skipped = BranchScope::new("develop", "main").restrict(&mut d);
        assert_eq!(d.updated, vec!["dev"]);
        assert_eq!(
            names(&skipped),
            vec!["prod: bound to branch `main`, not `develop`"]
        );
    }

    #[test]
    fn a_deleted_environment_keeps_the_binding_it_had() {
        let base = repo(&[
            ("environments/dev/environment.yaml", "branch: develop\n"),
            ("environments/prod/environment.yaml", "{}\n"),
        ]);
        let head = repo(&[("environments/prod/environment.yaml", "{}\n")]);
        let changes = vec![ChangedPath::deleted("environments/dev/environment.yaml")];
        let mut d = detect(Some(&base), &head, &changes);
        let skipped = BranchScope::new("main", "main").restrict(&mut d);
        assert!(d.deleted.is_empty());
        assert_eq!(
            names(&skipped),
            vec!["dev: bound to branch `develop`, not `main`"]
        );
    }

    #[test]
    fn bindings_that_match_no_branch_are_warnings_at_their_line() {
        let head = repo(&[
            (
                "gitops.yaml",
                "version: 1\nid: acme/app\nstack: { template: t.yaml }\ndefaults:\n  branch: trunk\n",
            ),
            ("environments/dev/environment.yaml", "region: us-east-1\nbranch: develp\n"),
            ("environments/qa/environment.yaml", "branch: 'release/*'\n"),
            ("environments/prod/environment.yaml", "{}\n"),
        ]);
        let branches = vec![
            "main".to_string(),
            "develop".to_string(),
            "release/1".to_string(),
        ];
        let got: Vec<String> = unmatched_bindings(&head, &branches)
            .iter()
            .map(|p| p.to_string())
            .collect();
        expect_test::expect![[r#"
            [
                "environments/dev/environment.yaml:2:1: warning: environment `dev` is bound to branch `develp`, which matches no branch of the repository (develop, main, release/1); no push will deploy it until that branch exists: fix `branch:` or push the branch",
                "gitops.yaml:5:3: warning: `defaults.branch: trunk` matches no branch of the repository (develop, main, release/1), so no push deploys prod: fix it or push the branch",
            ]
        "#]]
        .assert_debug_eq(&got);
    }

    #[test]
    fn an_unusable_binding_is_an_error_at_its_line() {
        let m = Memory::new("test")
            .with_file(
                "gitops.yaml",
                "version: 1\nid: acme/app\nstack: { template: t.yaml }\n",
            )
            .with_file("t.yaml", "Resources:\n  T: { Type: AWS::SNS::Topic }\n")
            .with_file(
                "environments/dev/environment.yaml",
                "branch: 'feature/[x'\n",
            );
        let repo = Repository::load(&m).unwrap();
        let p: Vec<String> = repo.problems().iter().map(|p| p.to_string()).collect();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("environments/dev/environment.yaml:1:1: error: `branch: feature/[x` is not a usable branch"), "{p:?}");
        assert_eq!(repo.environment("dev").unwrap().branch, None);
    }
}
