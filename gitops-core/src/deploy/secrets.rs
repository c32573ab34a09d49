//! `NoEcho` values as git had them at the deployed commit: AWS shows a
//! `NoEcho` parameter as `****`, so whether a secret changed since the last
//! deploy can only be read from git.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use gix::ObjectId;

use super::{DeployedHistory, DeployedHistoryError, SecretHistory, StackSpec};
use crate::detect::{Change, EnvChange};
use crate::model::Repository;
use crate::source::GitTree;

/// [`SecretHistory`] over a git repository: the model at the deployed
/// commit (the stack's `gitops:commit` tag), or at the base when that
/// commit is not in the clone. Each commit is loaded once.
pub struct GitSecretHistory {
    /// The git directory: a `gix::Repository` cannot cross threads, so it
    /// is opened again when a commit is first needed.
    git_dir: std::path::PathBuf,
    prefix: String,
    base: Option<ObjectId>,
    models: Mutex<HashMap<ObjectId, Option<Arc<Repository>>>>,
}

impl std::fmt::Debug for GitSecretHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitSecretHistory")
            .field("prefix", &self.prefix)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl GitSecretHistory {
    /// Reads `repo` with the GitOps root at `prefix`, falling back to `base`.
    pub fn new(repo: &gix::Repository, prefix: &str, base: Option<&str>) -> Self {
        Self {
            git_dir: repo.path().to_path_buf(),
            prefix: prefix.to_string(),
            base: base.and_then(|b| ObjectId::from_hex(b.as_bytes()).ok()),
            models: Mutex::new(HashMap::new()),
        }
    }

    fn model(&self, id: ObjectId) -> Option<Arc<Repository>> {
        let mut models = self.models.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = models.get(&id) {
            return m.clone();
        }
        let model = gix::open(&self.git_dir)
            .ok()
            .filter(|repo| crate::git::has_commit(repo, id))
            .and_then(|repo| GitTree::new(repo, id, &self.prefix).ok())
            .and_then(|tree| Repository::load(&tree).ok())
            .map(Arc::new);
        models.insert(id, model.clone());
        model
    }
}

impl SecretHistory for GitSecretHistory {
    fn parameters_at(&self, commit: Option<&str>, env: &str) -> Option<BTreeMap<String, String>> {
        let deployed = commit.and_then(|c| ObjectId::from_hex(c.as_bytes()).ok());
        for id in [deployed, self.base].into_iter().flatten() {
            if let Some(model) = self.model(id) {
                return model.environment(env).map(|e| e.parameters.clone());
            }
        }
        None
    }
}

impl DeployedHistory for GitSecretHistory {
    fn spec_at(
        &self,
        commit: &str,
        env: &str,
        stack: &str,
    ) -> Result<StackSpec, DeployedHistoryError> {
        let unreadable =
            |e: &dyn std::fmt::Display| DeployedHistoryError::Unreadable(e.to_string());
        let id = ObjectId::from_hex(commit.as_bytes())
            .map_err(|_| DeployedHistoryError::NotACommitId)?;
        let repo = gix::open(&self.git_dir).map_err(|e| unreadable(&e))?;
        if !crate::git::has_commit(&repo, id) {
            return Err(DeployedHistoryError::NotInClone);
        }
        let model = self.model(id).ok_or(DeployedHistoryError::NoConfig)?;
        let declared = model
            .environment(env)
            .ok_or_else(|| DeployedHistoryError::Undeclared(env.to_string()))?;
        let tree = GitTree::new(repo, id, &self.prefix).map_err(|e| unreadable(&e))?;
        let desired = super::desired(
            &model,
            &tree,
            &EnvChange::new(declared.clone(), Change::Updated),
            commit,
        )
        .map_err(|e| unreadable(&e))?;
        [desired.stack, desired.pipeline_stack]
            .into_iter()
            .flatten()
            .find(|s| s.name == stack)
            .ok_or_else(|| DeployedHistoryError::NoSuchStack {
                stack: stack.to_string(),
                env: env.to_string(),
            })
    }
}
