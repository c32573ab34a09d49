//! GitHub event resolution: which commits to compare for a GitHub Actions
//! event. The payload decides; the clone (through [`Git`], so tests and
//! embedders can fake it) answers ancestry questions and fetches what a
//! shallow checkout lacks.
//!
//! ```
//! use gitops_core::event::{decide, Decision, EventError, Git};
//!
//! /// A clone that has every commit, on one line of history.
//! struct Linear;
//! impl Git for Linear {
//!     fn fetch_commit(&mut self, _: &str) -> Result<(), EventError> { Ok(()) }
//!     fn merge_base(&mut self, a: &str, _: &str) -> Result<Option<String>, EventError> {
//!         Ok(Some(a.to_string()))
//!     }
//!     fn is_ancestor(&mut self, _: &str, _: &str) -> Option<bool> { Some(true) }
//!     fn branch(&mut self, _: &str) -> Option<String> { None }
//! }
//!
//! let payload = serde_json::json!({"before": "a1", "after": "b2"});
//! let d = decide("push", &payload, None, &mut Linear, &mut Vec::new()).unwrap();
//! assert_eq!(d, Decision::Compare { base: "a1".into(), head: "b2".into() });
//! ```

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Why an event could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// A commit the event names is not in the clone and cannot be fetched.
    #[error("commit {commit} is not in this clone and fetching it failed ({why}); set `fetch-depth: 0` on actions/checkout so the history is there")]
    Fetch {
        /// The commit.
        commit: String,
        /// Why it cannot be had.
        why: FetchError,
    },
    /// A shallow clone could not be deepened enough to find a merge base.
    #[error("{0}; set `fetch-depth: 0` on actions/checkout so the history is there")]
    Shallow(String),
    /// An event `--github` does not handle.
    #[error("--github does not handle `{0}` events (only push, pull_request, pull_request_target, workflow_dispatch and schedule); pass --base REV and --head REV instead")]
    Unsupported(String),
    /// The payload lacks a field the event needs.
    #[error("the event payload has no `{0}`")]
    MissingField(String),
    /// Reading the clone failed.
    #[error(transparent)]
    Git(#[from] crate::Error),
}

/// `Result` of this module.
pub type Result<T, E = EventError> = std::result::Result<T, E>;

/// What [`decide`] needs from the clone.
pub trait Git {
    /// Makes sure commit `sha` is in the clone, fetching it if needed.
    /// `Err` ([`EventError::Fetch`]) says why it cannot be had.
    fn fetch_commit(&mut self, sha: &str) -> Result<()>;
    /// The merge base of `a` and `b` (both present), deepening a shallow
    /// clone as needed. `Ok(None)`: the histories are unrelated. `Err`: a
    /// shallow clone could not be deepened enough.
    fn merge_base(&mut self, a: &str, b: &str) -> Result<Option<String>>;
    /// Whether `a` is an ancestor of `b`, without fetching; `None` when a
    /// shallow clone cannot tell.
    fn is_ancestor(&mut self, a: &str, b: &str) -> Option<bool>;
    /// The commit of branch `name` (`origin/<name>` or `<name>`), if in the clone.
    fn branch(&mut self, name: &str) -> Option<String>;
}

/// Why a commit could not be fetched into the clone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The revision is not a full commit id, so it cannot be fetched by id.
    #[error("`{0}` is not a commit id")]
    NotACommit(String),
    /// `git` could not be started.
    #[error("cannot run git: {0}")]
    Spawn(String),
    /// `git fetch` failed; its last line of complaint, or its exit status.
    #[error("{0}")]
    Git(String),
    /// The clone could not be opened again after the fetch.
    #[error("{0}")]
    Reopen(String),
    /// The fetch succeeded but the commit is still not there.
    #[error("the fetch did not bring it")]
    NotBrought,
}

/// The `git fetch` of a shallow clone's missing commits (a subprocess, in
/// the binary): what a [`Checkout`] calls to implement [`Git`].
pub trait Fetch {
    /// `git -C <dir> fetch --no-tags <args> origin <shas>`.
    fn fetch(&mut self, dir: &Path, args: &[String], shas: &[&str]) -> Result<(), FetchError>;
}

/// How deep a merge-base search may deepen a shallow clone.
pub const MAX_DEPTH: u32 = 4096;

fn commit_id(sha: &str) -> Result<gix::ObjectId, FetchError> {
    gix::ObjectId::from_hex(sha.as_bytes()).map_err(|_| FetchError::NotACommit(sha.to_string()))
}

/// Whether `rev` is a full commit id (40 hex digits), which a shallow clone
/// can fetch when it lacks it.
pub fn is_full_sha(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The clone being read (with gix) at the GitOps root, and the [`Fetch`]
/// that fills a shallow one in. It holds the shallow-clone policy: depth 1
/// for a missing commit, then 32 doubling to [`MAX_DEPTH`] for a merge base.
pub struct Checkout {
    root: PathBuf,
    repo: gix::Repository,
    prefix: String,
    fetch: Box<dyn Fetch>,
}

impl std::fmt::Debug for Checkout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkout")
            .field("root", &self.root)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Checkout {
    /// The clone holding `dir` (the GitOps root found at or above it, else
    /// `dir` itself), fetching through `fetch`.
    pub fn discover(dir: &Path, fetch: Box<dyn Fetch>) -> crate::Result<Self> {
        let root = match crate::WorkTree::discover(dir) {
            Ok(w) => w.root().to_path_buf(),
            Err(_) => dir.to_path_buf(),
        };
        let repo = crate::source::open_repo(&root)?;
        let prefix = crate::source::prefix_of(&repo, &root)?;
        Ok(Self {
            root,
            repo,
            prefix,
            fetch,
        })
    }

    /// The repository as read now (opened again after each fetch).
    pub(crate) fn repo(&self) -> &gix::Repository {
        &self.repo
    }

    /// The GitOps root's path inside the git repository.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn fetch(&mut self, args: &[String], shas: &[&str]) -> Result<(), FetchError> {
        let fetched = self.fetch.fetch(&self.root, args, shas);
        let reopened = crate::source::open_repo(&self.root)
            .map(|r| self.repo = r)
            .map_err(|e| FetchError::Reopen(e.to_string()));
        fetched.and(reopened)
    }

    /// Makes sure commit `sha` is in the clone: fetched (at depth 1 in a
    /// shallow clone) when missing.
    pub fn ensure(&mut self, sha: &str) -> Result<(), FetchError> {
        let id = commit_id(sha)?;
        if crate::git::has_commit(&self.repo, id) {
            return Ok(());
        }
        let depth: Vec<String> = if crate::git::is_shallow(&self.repo) {
            vec!["--depth=1".into()]
        } else {
            Vec::new()
        };
        self.fetch(&depth, &[sha])?;
        if crate::git::has_commit(&self.repo, id) {
            Ok(())
        } else {
            Err(FetchError::NotBrought)
        }
    }

    /// [`Checkout::ensure`] for a revision that is a full commit id; other
    /// revisions (branches, HEAD~1) are left to resolve as they are.
    pub fn ensure_if_sha(&mut self, rev: &str) -> Result<()> {
        if is_full_sha(rev) {
            self.ensure(rev).map_err(|why| fetch_advice(rev, why))?;
        }
        Ok(())
    }
}

impl Git for Checkout {
    fn fetch_commit(&mut self, sha: &str) -> Result<()> {
        self.ensure(sha).map_err(|why| fetch_advice(sha, why))
    }

    /// A shallow clone is deepened from 32 commits, doubling, up to [`MAX_DEPTH`].
    fn merge_base(&mut self, a: &str, b: &str) -> Result<Option<String>> {
        let ia = commit_id(a).map_err(|e| fetch_advice(a, e))?;
        let ib = commit_id(b).map_err(|e| fetch_advice(b, e))?;
        let mut depth = 32;
        loop {
            if let Some(m) = crate::git::merge_base(&self.repo, ia, ib)? {
                return Ok(Some(m.to_string()));
            }
            if !crate::git::is_shallow(&self.repo) {
                return Ok(None);
            }
            if depth > MAX_DEPTH {
                return Err(EventError::Shallow(format!(
                    "{a} and {b} have no common ancestor within {MAX_DEPTH} commits of this shallow clone"
                )));
            }
            self.fetch(&[format!("--depth={depth}")], &[a, b])
                .map_err(|why| {
                    EventError::Shallow(format!(
                    "cannot deepen this shallow clone to find the merge base of {a} and {b} ({why})"
                ))
                })?;
            depth *= 2;
        }
    }

    fn is_ancestor(&mut self, a: &str, b: &str) -> Option<bool> {
        let (ia, ib) = (commit_id(a).ok()?, commit_id(b).ok()?);
        crate::git::is_ancestor(&self.repo, ia, ib).ok().flatten()
    }

    fn branch(&mut self, name: &str) -> Option<String> {
        crate::git::branch_commit(&self.repo, name).map(|id| id.to_string())
    }
}

/// What to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Compare the trees of `base` and `head`.
    Compare {
        /// The base commit.
        base: String,
        /// The head commit.
        head: String,
    },
    /// Every environment at `head` counts as created.
    AllCreated {
        /// The head commit.
        head: String,
    },
    /// Every environment at `head` counts as updated (a manual or scheduled run).
    AllUpdated {
        /// The head revision.
        head: String,
    },
    /// A deleted branch: nothing to do.
    Deleted {
        /// The branch's last commit.
        before: String,
        /// All zeros.
        after: String,
    },
}

/// The pull request of a `pull_request` or `pull_request_target` event
/// named `name` with payload `payload`; `None` for other events.
pub fn pull_request_number(name: &str, payload: &Value) -> Option<u64> {
    if !matches!(name, "pull_request" | "pull_request_target") {
        return None;
    }
    payload["pull_request"]["number"]
        .as_u64()
        .or_else(|| payload["number"].as_u64())
}

/// The error when commit `sha` cannot be had, and `why`.
pub fn fetch_advice(sha: &str, why: FetchError) -> EventError {
    EventError::Fetch {
        commit: sha.to_string(),
        why,
    }
}

fn is_zero(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

fn field<'a>(payload: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(payload, |v, k| v.get(k))
}

fn string(payload: &Value, path: &[&str]) -> Result<String> {
    field(payload, path)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| EventError::MissingField(path.join(".")))
}

fn flag(payload: &Value, key: &str) -> bool {
    payload.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Decides what to compare for the GitHub event `event` with payload
/// `payload`. `sha` is `GITHUB_SHA`, the head of events whose payload has
/// none. Explanations for the log go to `notes`.
pub fn decide(
    event: &str,
    payload: &Value,
    sha: Option<&str>,
    git: &mut dyn Git,
    notes: &mut Vec<String>,
) -> Result<Decision> {
    match event {
        "push" => push(payload, git, notes),
        "pull_request" | "pull_request_target" => {
            let base = string(payload, &["pull_request", "base", "sha"])?;
            let head = string(payload, &["pull_request", "head", "sha"])?;
            for c in [&base, &head] {
                git.fetch_commit(c)?;
            }
            match git.merge_base(&base, &head)? {
                Some(m) => Ok(Decision::Compare { base: m, head }),
                None => {
                    notes.push(format!(
                        "{base} and {head} share no history; comparing their trees directly"
                    ));
                    Ok(Decision::Compare { base, head })
                }
            }
        }
        "workflow_dispatch" | "schedule" => Ok(Decision::AllUpdated {
            head: sha.unwrap_or("HEAD").to_string(),
        }),
        other => Err(EventError::Unsupported(other.to_string())),
    }
}

fn push(payload: &Value, git: &mut dyn Git, notes: &mut Vec<String>) -> Result<Decision> {
    let before = string(payload, &["before"])?;
    let after = string(payload, &["after"])?;
    if flag(payload, "deleted") || is_zero(&after) {
        return Ok(Decision::Deleted { before, after });
    }
    git.fetch_commit(&after)?;
    if flag(payload, "created") || is_zero(&before) {
        return from_default_branch(payload, after, git, notes);
    }
    let forced = flag(payload, "forced");
    if let Err(e) = git.fetch_commit(&before) {
        let why = match &e {
            EventError::Fetch { why, .. } => why.to_string(),
            other => other.to_string(),
        };
        if forced {
            notes.push(format!(
                "the commit before the forced push ({before}) cannot be fetched ({why}); comparing with the default branch instead"
            ));
            return from_default_branch(payload, after, git, notes);
        }
        return Err(e);
    }
    if forced || git.is_ancestor(&before, &after) == Some(false) {
        return match git.merge_base(&before, &after)? {
            Some(m) => Ok(Decision::Compare {
                base: m,
                head: after,
            }),
            None => {
                notes.push(format!(
                    "{before} and {after} share no history; comparing their trees directly"
                ));
                Ok(Decision::Compare {
                    base: before,
                    head: after,
                })
            }
        };
    }
    Ok(Decision::Compare {
        base: before,
        head: after,
    })
}

/// A new branch: compare with where it left the default branch.
fn from_default_branch(
    payload: &Value,
    head: String,
    git: &mut dyn Git,
    notes: &mut Vec<String>,
) -> Result<Decision> {
    let Ok(branch) = string(payload, &["repository", "default_branch"]) else {
        notes.push(
            "the payload names no default branch; every environment counts as created".into(),
        );
        return Ok(Decision::AllCreated { head });
    };
    if payload.get("ref").and_then(Value::as_str) == Some(&format!("refs/heads/{branch}")) {
        notes.push(format!(
            "first push of the default branch `{branch}`; every environment counts as created"
        ));
        return Ok(Decision::AllCreated { head });
    }
    let Some(tip) = git.branch(&branch) else {
        notes.push(format!(
            "the default branch `{branch}` is not in this clone; every environment counts as created"
        ));
        return Ok(Decision::AllCreated { head });
    };
    match git.merge_base(&head, &tip)? {
        Some(m) => Ok(Decision::Compare { base: m, head }),
        None => {
            notes.push(format!(
                "{head} shares no history with `{branch}`; every environment counts as created"
            ));
            Ok(Decision::AllCreated { head })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::json;

    use super::*;

    /// A commit graph in memory: commit -> parents, plus what the clone has.
    #[derive(Default)]
    struct Fake {
        parents: BTreeMap<&'static str, Vec<&'static str>>,
        present: BTreeSet<String>,
        fetchable: BTreeSet<String>,
        branches: BTreeMap<&'static str, &'static str>,
        /// Deepening fails (a shallow clone whose remote is gone).
        deepen_fails: bool,
        fetched: Vec<String>,
    }

    impl Fake {
        fn ancestors(&self, c: &str) -> BTreeSet<String> {
            let mut seen = BTreeSet::new();
            let mut todo = vec![c.to_string()];
            while let Some(c) = todo.pop() {
                if seen.insert(c.clone()) {
                    for p in self.parents.get(c.as_str()).into_iter().flatten() {
                        todo.push(p.to_string());
                    }
                }
            }
            seen
        }
    }

    impl Git for Fake {
        fn fetch_commit(&mut self, sha: &str) -> Result<()> {
            if self.present.contains(sha) {
                return Ok(());
            }
            if self.fetchable.contains(sha) {
                self.fetched.push(sha.to_string());
                self.present.insert(sha.to_string());
                return Ok(());
            }
            Err(fetch_advice(sha, FetchError::Git("not our ref".into())))
        }
        fn merge_base(&mut self, a: &str, b: &str) -> Result<Option<String>> {
            if self.deepen_fails {
                return Err(EventError::Shallow("deepening failed".into()));
            }
            let (pa, pb) = (self.ancestors(a), self.ancestors(b));
            // The common ancestor that no other common ancestor descends from.
            let common: BTreeSet<String> = pa.intersection(&pb).cloned().collect();
            Ok(common
                .iter()
                .find(|c| {
                    common
                        .iter()
                        .all(|o| o == *c || !self.ancestors(o).contains(*c))
                })
                .cloned())
        }
        fn is_ancestor(&mut self, a: &str, b: &str) -> Option<bool> {
            Some(self.ancestors(b).contains(a))
        }
        fn branch(&mut self, name: &str) -> Option<String> {
            self.branches.get(name).map(|s| s.to_string())
        }
    }

    /// main: a - b - c ; feature: b - f1 - f2 ; rewritten: a - r1 (force-pushed over f2).
    fn graph() -> Fake {
        let mut f = Fake::default();
        for (c, p) in [
            ("a", vec![]),
            ("b", vec!["a"]),
            ("c", vec!["b"]),
            ("f1", vec!["b"]),
            ("f2", vec!["f1"]),
            ("r1", vec!["a"]),
        ] {
            f.parents.insert(c, p);
            f.present.insert(c.to_string());
        }
        f.branches.insert("main", "c");
        f
    }

    const ZERO: &str = "0000000000000000000000000000000000000000";

    fn run(event: &str, payload: Value, git: &mut Fake) -> Result<Decision> {
        decide(event, &payload, Some("sha-from-env"), git, &mut Vec::new())
    }

    fn compare(base: &str, head: &str) -> Decision {
        Decision::Compare {
            base: base.into(),
            head: head.into(),
        }
    }

    fn repo() -> Value {
        json!({"default_branch": "main"})
    }

    #[test]
    fn push_compares_before_and_after() {
        let d = run(
            "push",
            json!({"before": "b", "after": "c", "ref": "refs/heads/main", "repository": repo()}),
            &mut graph(),
        );
        assert_eq!(d.unwrap(), compare("b", "c"));
    }

    #[test]
    fn first_push_of_a_branch_uses_the_merge_base_with_the_default_branch() {
        let payload = json!({"before": ZERO, "after": "f2", "created": true,
                             "ref": "refs/heads/feature", "repository": repo()});
        assert_eq!(
            run("push", payload.clone(), &mut graph()).unwrap(),
            compare("b", "f2")
        );
        // No default branch in the clone: everything is created.
        let mut g = graph();
        g.branches.clear();
        let mut notes = Vec::new();
        let d = decide("push", &payload, None, &mut g, &mut notes).unwrap();
        assert_eq!(d, Decision::AllCreated { head: "f2".into() });
        assert!(notes[0].contains("not in this clone"), "{notes:?}");
        // The first push of the default branch itself.
        let payload = json!({"before": ZERO, "after": "c", "created": true,
                             "ref": "refs/heads/main", "repository": repo()});
        assert_eq!(
            run("push", payload, &mut graph()).unwrap(),
            Decision::AllCreated { head: "c".into() }
        );
    }

    #[test]
    fn forced_push_uses_the_merge_base() {
        let payload = json!({"before": "f2", "after": "r1", "forced": true,
                             "ref": "refs/heads/feature", "repository": repo()});
        assert_eq!(
            run("push", payload, &mut graph()).unwrap(),
            compare("a", "r1")
        );
        // Not flagged as forced, but `before` is not an ancestor: same rule.
        let payload = json!({"before": "f2", "after": "r1", "ref": "refs/heads/feature",
                             "repository": repo()});
        assert_eq!(
            run("push", payload, &mut graph()).unwrap(),
            compare("a", "r1")
        );
        // A forced push whose old commit is gone: fall back to the default branch.
        let mut g = graph();
        g.present.remove("f2");
        let payload = json!({"before": "f2", "after": "r1", "forced": true,
                             "ref": "refs/heads/feature", "repository": repo()});
        assert_eq!(run("push", payload, &mut g).unwrap(), compare("a", "r1"));
    }

    #[test]
    fn deleted_branch_is_empty() {
        let payload = json!({"before": "f2", "after": ZERO, "deleted": true,
                             "ref": "refs/heads/feature", "repository": repo()});
        assert_eq!(
            run("push", payload, &mut graph()).unwrap(),
            Decision::Deleted {
                before: "f2".into(),
                after: ZERO.into()
            }
        );
    }

    #[test]
    fn pull_request_uses_the_merge_base_of_base_and_head() {
        for event in ["pull_request", "pull_request_target"] {
            let payload = json!({"pull_request": {"base": {"sha": "c"}, "head": {"sha": "f2"}}});
            assert_eq!(
                run(event, payload, &mut graph()).unwrap(),
                compare("b", "f2")
            );
        }
    }

    #[test]
    fn missing_commits_are_fetched_or_explained() {
        let mut g = graph();
        g.present.remove("b");
        g.fetchable.insert("b".into());
        let payload = json!({"before": "b", "after": "c", "repository": repo()});
        assert_eq!(run("push", payload, &mut g).unwrap(), compare("b", "c"));
        assert_eq!(g.fetched, ["b"]);

        let mut g = graph();
        g.present.remove("b");
        let payload = json!({"before": "b", "after": "c", "repository": repo()});
        let err = run("push", payload, &mut g).unwrap_err().to_string();
        assert!(err.contains("fetch-depth: 0"), "{err}");

        let mut g = graph();
        g.deepen_fails = true;
        let payload = json!({"pull_request": {"base": {"sha": "c"}, "head": {"sha": "f2"}}});
        let err = run("pull_request", payload, &mut g)
            .unwrap_err()
            .to_string();
        assert!(err.contains("fetch-depth: 0"), "{err}");
    }

    /// A fetch that brings nothing, and records its arguments.
    struct Records(std::rc::Rc<std::cell::RefCell<Vec<String>>>);

    impl Fetch for Records {
        fn fetch(&mut self, _: &Path, args: &[String], shas: &[&str]) -> Result<(), FetchError> {
            self.0.borrow_mut().push(format!("{args:?} {shas:?}"));
            Ok(())
        }
    }

    #[test]
    fn a_checkout_fetches_only_missing_commits_by_id() {
        use crate::git::tests::{commit, git};
        let tmp = tempfile::tempdir().unwrap();
        git(tmp.path(), &["init", "-q", "-b", "main"]);
        let c = commit(tmp.path()).to_string();
        let calls = std::rc::Rc::default();
        let mut clone =
            Checkout::discover(tmp.path(), Box::new(Records(std::rc::Rc::clone(&calls)))).unwrap();
        assert_eq!(clone.ensure(&c), Ok(()));
        assert_eq!(
            clone.ensure("main"),
            Err(FetchError::NotACommit("main".into()))
        );
        let missing = "2".repeat(40);
        assert_eq!(clone.ensure(&missing), Err(FetchError::NotBrought));
        // Not shallow: no depth.
        assert_eq!(*calls.borrow(), [format!("[] [\"{missing}\"]")]);
        let err = clone.fetch_commit(&missing).unwrap_err().to_string();
        assert!(
            err.contains("(the fetch did not bring it); set `fetch-depth: 0`"),
            "{err}"
        );
        assert!(clone.ensure_if_sha("HEAD~1").is_ok());
        assert_eq!(clone.merge_base(&c, &c).unwrap(), Some(c.clone()));
        assert_eq!(clone.is_ancestor(&c, &c), Some(true));
        assert_eq!(clone.branch("main"), Some(c));
    }

    #[test]
    fn manual_and_scheduled_runs_update_everything() {
        for event in ["workflow_dispatch", "schedule"] {
            assert_eq!(
                run(event, json!({}), &mut graph()).unwrap(),
                Decision::AllUpdated {
                    head: "sha-from-env".into()
                }
            );
        }
        let err = run("release", json!({}), &mut graph()).unwrap_err();
        assert!(err.to_string().contains("--base"), "{err}");
        let err = run("push", json!({"after": "c"}), &mut graph()).unwrap_err();
        assert!(err.to_string().contains("`before`"), "{err}");
    }
}
