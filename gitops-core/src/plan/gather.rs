//! What `gitops plan` gathers per environment before any AWS call
//! ([`EnvInput`]), and how it plans and previews them all against AWS
//! ([`preview_all`]), with a git-level guess wherever AWS could not be read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::aws::ClientFactory;
use crate::deploy::{self, Desired, EnvPlan, Executor, ExecutorOptions, PlanOptions, Progress};
use crate::deploy::{GitSecretHistory, StackSpec};
use crate::detect::{Change, EnvChange};
use crate::fanout::{self, CancellationToken, FanOut, TaskError};
use crate::git;
use crate::model::{Environment, Repository};
use crate::select::{Selected, DEPLOYED};
use crate::source::{GitTree, Source};

use super::{env_diffs, guess_plan, why_not_previewed, EnvPreview, FileDiff};

/// Why `gitops plan` could not gather what git says.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatherError {
    /// The repository at head cannot be used (invalid, or without an id
    /// where AWS is read).
    #[error(transparent)]
    Repository(#[from] crate::Error),
    /// One environment's desired state cannot be built.
    #[error("environment `{name}`")]
    Environment {
        /// The environment.
        name: String,
        /// Why.
        #[source]
        source: Box<crate::Error>,
    },
}

/// What `gitops plan` gathers from git for its targets before any AWS
/// call: one [`EnvInput`] each, and what the executor needs to know of the
/// repository.
#[non_exhaustive]
pub struct Gathered {
    /// One input per target, in order.
    pub inputs: Vec<EnvInput>,
    /// The repository's id (`(no id)` for a `--no-aws` guess without one).
    pub repo_id: String,
    /// `stack.template-bucket` at head.
    pub template_bucket: Option<String>,
    /// `drift.ignore` at head.
    pub drift_ignore: Vec<String>,
    /// NoEcho values and the specs at deployed commits, for the previews.
    pub history: Arc<GitSecretHistory>,
    /// Warnings for the log (a base revision that cannot be read).
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for Gathered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gathered")
            .field("inputs", &self.inputs)
            .field("repo_id", &self.repo_id)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

/// The previews of a run against AWS.
#[derive(Debug)]
#[non_exhaustive]
pub struct Previewed {
    /// One preview per input, in order.
    pub previews: Vec<EnvPreview>,
    /// The environments whose plan failed, with the error.
    pub failures: Vec<(String, String)>,
    /// Preview change sets that could not be deleted.
    pub cleanup_errors: Vec<String>,
}

impl Gathered {
    /// Everything git says about `targets` of `selected`: the repository at
    /// head (refused when invalid; without an id only when `no_aws`), and
    /// at the base (or each target's deployed commit, with `--base
    /// deployed`) for value changes and diffs.
    pub fn gather(
        selected: &Selected,
        targets: &[EnvChange],
        no_aws: bool,
    ) -> Result<Self, GatherError> {
        let mut out = Self {
            inputs: Vec::new(),
            repo_id: String::new(),
            template_bucket: None,
            drift_ignore: Vec::new(),
            history: Arc::new(GitSecretHistory::new(
                &selected.repo,
                &selected.prefix,
                selected.base.as_deref(),
            )),
            warnings: Vec::new(),
        };
        let (Some(head_id), Some(head_tree)) = (selected.head_id, selected.head_tree()?) else {
            return Ok(out);
        };
        let head = head_id.to_string();
        let head_model = Repository::load_checked(&head_tree, crate::Checks::Full)?;
        out.repo_id = match head_model.owner_id() {
            Ok(id) => id.to_string(),
            // Without AWS the guess needs no id; with it, change sets are
            // made and stacks' ownership read: only with an id.
            Err(_) if no_aws => "(no id)".to_string(),
            Err(e) => return Err(e.into()),
        };
        out.template_bucket
            .clone_from(&head_model.config.stack.template_bucket);
        out.drift_ignore.clone_from(&head_model.config.drift.ignore);
        let mut load = |c: &str| load_base(selected, c, &mut out.warnings);
        let base = match &selected.base {
            Some(b) if b != DEPLOYED => load(b),
            _ => None,
        };
        // --base deployed: each environment against its own deployed commit.
        let mut deployed = BTreeMap::new();
        for c in targets.iter().filter_map(|t| t.base.clone().flatten()) {
            if !deployed.contains_key(&c) && git::known_commit(&selected.repo, &c).is_some() {
                let model = load(&c);
                deployed.insert(c, model);
            }
        }
        for t in targets {
            let own = match t.base.as_ref() {
                Some(Some(c)) => deployed.get(c).and_then(Option::as_ref),
                Some(None) => None,
                None => base.as_ref(),
            };
            let input = EnvInput::gather(&head_model, &head_tree, &head, own, t);
            out.inputs
                .push(input.map_err(|source| GatherError::Environment {
                    name: t.name.clone(),
                    source: Box::new(source),
                })?);
        }
        Ok(out)
    }

    /// The git-level guess of every input (`--no-aws`).
    pub fn guess(&self, options: PlanOptions) -> Vec<EnvPreview> {
        let guess = |i: &EnvInput| i.guess(&self.repo_id, options);
        self.inputs.iter().map(guess).collect()
    }

    /// The executor that plans and previews against AWS (`options` holds
    /// the [`PlanOptions`]), with the repository's settings, stopping on
    /// `cancel`.
    pub fn executor(
        &self,
        factory: Arc<dyn ClientFactory>,
        progress: Arc<dyn Progress>,
        options: ExecutorOptions,
        cancel: CancellationToken,
    ) -> Executor {
        Executor::new(factory, progress, &self.repo_id, options)
            .with_template_bucket(self.template_bucket.clone())
            .with_cancel(cancel)
            .with_deployed_history(self.history.clone())
            .with_drift_ignore(self.drift_ignore.clone())
    }

    /// Plans and previews every input through `exec` ([`preview_all`]),
    /// then deletes the preview change sets left behind by a cancellation
    /// or a preview stopped half-way.
    pub async fn preview(
        self,
        exec: Arc<Executor>,
        options: PlanOptions,
        concurrency: usize,
        cancel: CancellationToken,
    ) -> Previewed {
        let (repo_id, inputs) = (self.repo_id, self.inputs);
        let stopped = cancel.clone();
        let (previews, failures) =
            preview_all(exec.clone(), &repo_id, options, concurrency, cancel, inputs).await;
        let cleanup_errors = if stopped.is_cancelled() || exec.pending_previews() > 0 {
            exec.cleanup_previews().await
        } else {
            Vec::new()
        };
        Previewed {
            previews,
            failures,
            cleanup_errors,
        }
    }
}

/// The model at the base revision `base`, for value changes and diffs;
/// `None` (with a warning, unless it simply has no gitops.yaml) when
/// unreadable.
fn load_base(selected: &Selected, base: &str, warnings: &mut Vec<String>) -> Option<Base> {
    let id = gix::ObjectId::from_hex(base.as_bytes()).ok()?;
    let tree = match GitTree::new(selected.repo.clone(), id, &selected.prefix) {
        Ok(t) => t,
        Err(e) => {
            warnings.push(format!("cannot read the base revision {base}: {e}"));
            return None;
        }
    };
    match Repository::load(&tree) {
        Ok(m) => Some((m, tree, base.to_string())),
        Err(crate::Error::NoConfig(_)) => None,
        Err(e) => {
            warnings.push(format!("cannot load the repository at the base revision {base} ({e}); value changes and diffs are shown against nothing"));
            None
        }
    }
}

/// What git says about one environment, gathered before any AWS call.
#[derive(Debug, Clone)]
pub struct EnvInput {
    desired: Desired,
    base_env: Option<Environment>,
    base_desired: Option<Desired>,
    head_env: Option<Environment>,
    secrets: BTreeSet<String>,
    diffs: Vec<FileDiff>,
}

/// The repository at the base revision: its model, its tree and its commit.
pub type Base = (Repository, GitTree, String);

impl EnvInput {
    /// Everything git says about `t`: the desired state at `head` (commit
    /// id) from `head_model` and `head_tree`, the environment at `base`, the
    /// names of its secret parameters on either side, and the diffs.
    pub fn gather(
        head_model: &Repository,
        head_tree: &GitTree,
        head: &str,
        base: Option<&Base>,
        t: &EnvChange,
    ) -> crate::Result<Self> {
        let desired = deploy::desired(head_model, head_tree, t, head)?;
        let base_env = match t.change {
            Change::Deleted => Some(t.environment.clone()),
            _ => base.and_then(|(m, _, _)| m.environment(&t.name)).cloned(),
        };
        let base_desired = match (&base_env, base) {
            (Some(env), Some((m, tree, commit))) => deploy::desired(
                m,
                tree,
                &EnvChange::new(env.clone(), Change::Updated),
                commit,
            )
            .ok(),
            _ => None,
        };
        let head_env = (t.change != Change::Deleted).then(|| t.environment.clone());
        let specs: [Option<&StackSpec>; 4] = [
            desired.stack.as_ref(),
            desired.pipeline_stack.as_ref(),
            base_desired.as_ref().and_then(|d| d.stack.as_ref()),
            base_desired
                .as_ref()
                .and_then(|d| d.pipeline_stack.as_ref()),
        ];
        let secrets: BTreeSet<String> = specs
            .iter()
            .flatten()
            .flat_map(|s| s.secret_parameters.iter().cloned())
            .collect();
        let diffs = env_diffs(
            base.map(|(m, tree, _)| (m, tree as &dyn Source)),
            Some((head_model, head_tree as &dyn Source)),
            &t.name,
            &secrets,
        );
        Ok(Self {
            desired,
            base_env,
            base_desired,
            head_env,
            secrets,
            diffs,
        })
    }

    /// The environment's name.
    pub fn name(&self) -> &str {
        &self.desired.environment.name
    }

    /// `plan` with the value changes and diffs.
    pub fn preview(&self, plan: EnvPlan) -> EnvPreview {
        EnvPreview::new(
            plan,
            self.base_env.as_ref(),
            self.head_env.as_ref(),
            &self.secrets,
        )
        .with_diffs(self.diffs.clone())
    }

    /// The git-level guess, assuming AWS matches the base revision.
    pub fn guess(&self, repo_id: &str, options: PlanOptions) -> EnvPreview {
        let plan = guess_plan(
            repo_id,
            &self.desired,
            self.base_env.as_ref(),
            self.base_desired.as_ref(),
            options,
        );
        self.preview(plan).guessed()
    }
}

/// Plans every input against AWS through `exec` and previews it,
/// `concurrency` at a time per account and region, starting nothing new once
/// `cancel` fires. One preview per input, in order; an environment not
/// started, interrupted or failed gets its git-level guess with a note. The
/// failures are returned too, as (environment, error), for the exit code.
///
/// A preview stopped half-way leaves its change set registered in `exec`:
/// call [`Executor::cleanup_previews`] afterwards.
pub async fn preview_all(
    exec: Arc<Executor>,
    repo_id: &str,
    options: PlanOptions,
    concurrency: usize,
    cancel: CancellationToken,
    inputs: Vec<EnvInput>,
) -> (Vec<EnvPreview>, Vec<(String, String)>) {
    let names: Vec<String> = inputs.iter().map(|i| i.name().to_string()).collect();
    let fallback: Vec<EnvPreview> = inputs.iter().map(|i| i.guess(repo_id, options)).collect();
    let results = FanOut::new(concurrency)
        .with_cancel(cancel.clone())
        .run(
            inputs,
            |i| fanout::location(&i.desired.environment),
            |input| {
                let (exec, repo_id, token) = (exec.clone(), repo_id.to_string(), cancel.clone());
                async move {
                    // Cancellation first: the preview is dropped at once and
                    // its change set left for `cleanup_previews`.
                    tokio::select! {
                        biased;
                        () = token.cancelled() => None,
                        p = plan_one(&exec, &repo_id, options, input) => Some(p),
                    }
                }
            },
        )
        .await;
    let (mut out, mut failed) = (Vec::new(), Vec::new());
    for ((r, name), guess) in results.into_iter().zip(names).zip(fallback) {
        match r {
            Ok(Some(p)) => out.push(p),
            Ok(None) | Err(TaskError::NotStarted) => {
                out.push(guess.with_note("interrupted: not previewed"))
            }
            Err(e) => {
                out.push(guess.with_note(format!("the plan of this environment failed: {e}")));
                failed.push((name, e.to_string()));
            }
        }
    }
    (out, failed)
}

/// One environment: observe and plan; preview what deploys a stack. AWS
/// errors become the environment's note, over a git-level guess.
async fn plan_one(
    exec: &Executor,
    repo_id: &str,
    options: PlanOptions,
    input: EnvInput,
) -> EnvPreview {
    let plan = match exec.plan(&input.desired).await {
        Ok(p) => p,
        Err(e) => {
            return input.guess(repo_id, options).with_note(format!(
                "could not read AWS ({e}); the action is a git-level guess, and nothing was previewed"
            ));
        }
    };
    let why_not = why_not_previewed(&plan.actions);
    let preview = input.preview(plan.clone());
    if let Some(note) = why_not {
        return preview.with_note(note);
    }
    match exec.preview(&input.desired, &plan).await {
        Ok(p) => {
            let mut out = preview
                .with_resource_changes(p.changes)
                .with_change_sets(p.change_sets);
            if !p.notes.is_empty() {
                out = out.with_note(p.notes.join("; "));
            }
            out
        }
        Err(e) => preview
            .with_change_sets(e.change_sets.clone())
            .with_note(format!("the change-set preview failed: {e}")),
    }
}
