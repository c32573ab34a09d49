//! What `gitops plan` gathers per environment before any AWS call
//! ([`EnvInput`]), and how it plans and previews them all against AWS
//! ([`preview_all`]), with a git-level guess wherever AWS could not be read.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::deploy::{self, Desired, EnvPlan, Executor, PlanOptions, StackSpec};
use crate::detect::{Change, EnvChange};
use crate::fanout::{self, CancellationToken, FanOut, TaskError};
use crate::model::{Environment, Repository};
use crate::source::{GitTree, Source};

use super::{env_diffs, guess_plan, why_not_previewed, EnvPreview, FileDiff};

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
                    tokio::select! {
                        p = plan_one(&exec, &repo_id, options, input) => Some(p),
                        () = token.cancelled() => None,
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
