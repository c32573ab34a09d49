//! Change-set previews for `gitops plan`: read-only planning against AWS,
//! and for each stack a deploy would create or update, a change set that is
//! created, read and then always deleted.
//!
//! Every change set is registered before it is requested and unregistered
//! only once it is gone, so that when the preview is cancelled (Ctrl-C, a
//! cancelled job) [`Executor::cleanup_previews`] can still delete it. A
//! `CREATE` change set makes a stack in `REVIEW_IN_PROGRESS`; that stack is
//! deleted too.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use super::*;
use crate::aws::AwsClients;

/// What a preview found for one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Preview {
    /// The resource changes of every stack previewed, in action order.
    pub changes: Vec<ResourceChange>,
    /// The names of the change sets made (all deleted again).
    pub change_sets: Vec<String>,
    /// Stacks that could not be previewed, and why.
    pub notes: Vec<String>,
}

/// A preview that failed. The message says whether a change set could not
/// be deleted, and how to delete it by hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct PreviewError {
    /// What went wrong.
    pub message: String,
    /// The change sets made before the failure.
    pub change_sets: Vec<String>,
}

impl PreviewError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            change_sets: Vec::new(),
        }
    }
}

impl From<AwsError> for PreviewError {
    fn from(e: AwsError) -> Self {
        Self::new(e.to_string())
    }
}

/// Whether CloudFormation has the change set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The request may or may not have reached CloudFormation.
    Unknown,
    /// CreateChangeSet failed: there is nothing to delete but a
    /// `REVIEW_IN_PROGRESS` stack, maybe.
    NotCreated,
    /// It exists.
    Created,
}

/// A change set that must not be left behind.
#[derive(Clone)]
struct PendingChangeSet {
    clients: AwsClients,
    stack: String,
    name: String,
    create: bool,
    stack_id: Option<String>,
    state: State,
}

/// The registry of change sets not yet deleted.
#[derive(Default)]
pub(super) struct Pending(Mutex<BTreeMap<u64, PendingChangeSet>>);

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, PendingChangeSet>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn preview_change_set_name(tags: &BTreeMap<String, String>) -> String {
    super::change_set_name(PREVIEW_CHANGE_SET_PREFIX, tags)
}

impl Executor {
    /// Observes one environment and plans it, read-only: what
    /// [`Executor::run`] would do, without doing it.
    pub async fn plan(&self, desired: &Desired) -> Result<EnvPlan, AwsError> {
        let env = &desired.environment;
        let clients = self
            .factory
            .clients(&env.region, env.role_arn.as_deref())
            .await?;
        let observed = self.observe(&clients, desired).await?;
        Ok(plan_environment(
            &self.repo_id,
            desired,
            &observed,
            self.options.plan,
        ))
    }

    /// Previews each stack deployment of `plan` through a change set
    /// (`CREATE` or `UPDATE`, never executed): creates it, waits until it is
    /// computed, reads its resource changes, then deletes it, on every path.
    /// An empty change set gives no changes. Refusals and deletions are not
    /// previewed; in pipeline mode, a pipeline start (or creation) previews
    /// the application stack the pipeline will deploy.
    pub async fn preview(
        &self,
        desired: &Desired,
        plan: &EnvPlan,
    ) -> Result<Preview, PreviewError> {
        let env = &desired.environment;
        let mut out = Preview::default();
        if plan.refusal().is_some() {
            return Ok(out);
        }
        let clients = self
            .factory
            .clients(&env.region, env.role_arn.as_deref())
            .await?;
        for action in &plan.actions {
            let Action::DeployStack {
                op,
                spec,
                replace_failed,
                ..
            } = action
            else {
                continue;
            };
            if *replace_failed {
                out.notes.push(format!(
                    "`{}` never finished being created (ROLLBACK_COMPLETE, or REVIEW_IN_PROGRESS left by an interrupted run): the deploy deletes it and creates it again, so every resource is added; not previewed",
                    spec.name
                ));
                continue;
            }
            let name = preview_change_set_name(&spec.tags);
            out.change_sets.push(name.clone());
            match self
                .preview_stack(&clients, &env.name, *op, spec, &name)
                .await
            {
                Ok(changes) => out.changes.extend(changes),
                Err(mut e) => {
                    e.change_sets = out.change_sets;
                    return Err(e);
                }
            }
        }
        if let Err(mut e) = self
            .preview_pipeline_target(&clients, desired, plan, &mut out)
            .await
        {
            e.change_sets = out.change_sets;
            return Err(e);
        }
        Ok(out)
    }

    /// In pipeline mode, previews the application stack as the pipeline
    /// will deploy it (`gitops render` gives the pipeline exactly
    /// `desired.stack`): when the plan starts the pipeline, or creates it
    /// (a new pipeline runs once on creation).
    async fn preview_pipeline_target(
        &self,
        clients: &AwsClients,
        desired: &Desired,
        plan: &EnvPlan,
        out: &mut Preview,
    ) -> Result<(), PreviewError> {
        let runs_pipeline = plan.actions.iter().any(|a| {
            matches!(
                a,
                Action::StartPipeline { .. }
                    | Action::DeployStack {
                        role: StackRole::Pipeline,
                        op: StackOp::Create,
                        ..
                    }
            )
        });
        let Some(spec) = desired.stack.as_ref().filter(|_| runs_pipeline) else {
            return Ok(());
        };
        let env = &desired.environment.name;
        let op = match clients.cloudformation.describe_stack(&spec.name).await? {
            None => StackOp::Create,
            Some(s) if s.is_rollback_complete_never_created() => {
                out.notes.push(format!(
                    "`{}` is in ROLLBACK_COMPLETE: the pipeline cannot update it; delete it first; not previewed",
                    spec.name
                ));
                return Ok(());
            }
            Some(s) if s.status == "REVIEW_IN_PROGRESS" => StackOp::Create,
            Some(_) => StackOp::Update,
        };
        self.say(
            env,
            format!(
                "the pipeline deploys `{}`: previewing what it will change",
                spec.name
            ),
        );
        let name = preview_change_set_name(&spec.tags);
        out.change_sets.push(name.clone());
        let changes = self.preview_stack(clients, env, op, spec, &name).await?;
        out.changes.extend(changes);
        Ok(())
    }

    async fn preview_stack(
        &self,
        clients: &AwsClients,
        env: &str,
        op: StackOp,
        spec: &StackSpec,
        name: &str,
    ) -> Result<Vec<ResourceChange>, PreviewError> {
        let kind = match op {
            StackOp::Create => ChangeSetKind::Create,
            _ => ChangeSetKind::Update,
        };
        let template = self
            .template_source(clients, env, spec)
            .await
            .map_err(|f| PreviewError::new(f.message))?;
        let request = ChangeSetRequest::new(&spec.name, name, kind, template)
            .with_parameters(spec.parameters.clone())
            .with_tags(spec.tags.clone())
            .with_capabilities(spec.capabilities.clone())
            .with_description(format!(
                "gitops plan of {env} (preview; deleted after reading)"
            ));
        self.say(
            env,
            format!(
                "previewing `{}` through change set `{name}` ({})",
                spec.name,
                if kind == ChangeSetKind::Create {
                    "CREATE"
                } else {
                    "UPDATE"
                }
            ),
        );
        let id = self.register(clients, &spec.name, name, kind == ChangeSetKind::Create);
        let result = self.read_change_set(clients, id, request).await;
        let cleanup = self.cleanup_one(id).await;
        match (result, cleanup) {
            (Ok(changes), Ok(())) => Ok(changes),
            (Err(e), Ok(())) => Err(PreviewError::new(e)),
            (Ok(_), Err(c)) => Err(PreviewError::new(c)),
            (Err(e), Err(c)) => Err(PreviewError::new(format!("{e}; {c}"))),
        }
    }

    /// Creates the change set and reads it; the caller deletes it.
    async fn read_change_set(
        &self,
        clients: &AwsClients,
        id: u64,
        request: ChangeSetRequest,
    ) -> Result<Vec<ResourceChange>, String> {
        let cfn = &clients.cloudformation;
        let stack = request.stack_name.clone();
        let name = request.change_set_name.clone();
        let created = cfn.create_change_set(request).await;
        self.record_created(id, &created);
        match created {
            Ok(_) => {}
            Err(e) if e.is_no_updates() => return Ok(Vec::new()),
            Err(e) => return Err(e.to_string()),
        }
        let cs = self
            .wait_change_set(clients, &stack, &name)
            .await
            .map_err(|f| f.message)?;
        if cs.is_empty_no_changes() {
            return Ok(Vec::new());
        }
        if !cs.is_ready() {
            return Err(format!(
                "the change set for `{stack}` failed: {}",
                cs.status_reason.unwrap_or(cs.status)
            ));
        }
        Ok(cs
            .changes
            .iter()
            .map(|c| ResourceChange::from_aws(&stack, c))
            .collect())
    }

    /// Registers a change set before it is requested, so that it is deleted
    /// on every path (see [`Executor::cleanup_previews`]); returns its key.
    pub(super) fn register(
        &self,
        clients: &AwsClients,
        stack: &str,
        name: &str,
        create: bool,
    ) -> u64 {
        let id = CHANGE_SET_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.pending.lock().insert(
            id,
            PendingChangeSet {
                clients: clients.clone(),
                stack: stack.to_string(),
                name: name.to_string(),
                create,
                stack_id: None,
                state: State::Unknown,
            },
        );
        id
    }

    /// Records what CreateChangeSet answered for a registered change set.
    pub(super) fn record_created(
        &self,
        id: u64,
        created: &crate::aws::AwsResult<crate::aws::ChangeSetRef>,
    ) {
        if let Some(p) = self.pending.lock().get_mut(&id) {
            match created {
                Ok(r) => {
                    p.state = State::Created;
                    p.stack_id.clone_from(&r.stack_id);
                }
                Err(_) => p.state = State::NotCreated,
            }
        }
    }

    /// Unregisters a change set that was executed: it is history now.
    pub(super) fn forget(&self, id: u64) {
        self.pending.lock().remove(&id);
    }

    /// Deletes one registered change set (and the `REVIEW_IN_PROGRESS`
    /// stack a `CREATE` one made); unregisters it once gone.
    pub(super) async fn cleanup_one(&self, id: u64) -> Result<(), String> {
        let Some(p) = self.pending.lock().get(&id).cloned() else {
            return Ok(());
        };
        let cfn = &p.clients.cloudformation;
        let manual = || {
            format!(
                "the change set `{}` on `{}` could not be deleted; delete it with `aws cloudformation delete-change-set --stack-name {} --change-set-name {}`",
                p.name, p.stack, p.stack, p.name
            )
        };
        if p.state != State::NotCreated {
            let mut attempt = 0;
            loop {
                match cfn.delete_change_set(&p.stack, &p.name).await {
                    Ok(()) => break,
                    // Never created, or gone with its stack.
                    Err(e) if e.is_not_found() => {
                        // A cancelled request may still land: look once more.
                        if p.state == State::Unknown && attempt == 0 {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                        break;
                    }
                    Err(e) if p.state == State::Unknown && e.code.is_some() => break,
                    // The delete failed without saying why (an emulator answers a
                    // change set it never saw with HTTP 500): it is fine if the
                    // change set is not there.
                    Err(e) => {
                        if p.state == State::Unknown {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        match cfn.list_change_sets(&p.stack).await {
                            Ok(list) if !list.iter().any(|c| c.name == p.name) => break,
                            _ => return Err(format!("{}: {e}", manual())),
                        }
                    }
                }
            }
        }
        if p.create {
            match cfn.describe_stack(&p.stack).await {
                Ok(Some(s))
                    if s.status == "REVIEW_IN_PROGRESS"
                        && p.stack_id.as_ref().is_none_or(|id| *id == s.id) =>
                {
                    if let Err(e) = cfn.delete_stack(&p.stack).await {
                        return Err(format!(
                            "stack `{}` was left in REVIEW_IN_PROGRESS and it could not be deleted ({e}); delete it with `aws cloudformation delete-stack --stack-name {}`",
                            p.stack, p.stack
                        ));
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(format!(
                        "cannot check whether stack `{}` was left in REVIEW_IN_PROGRESS ({e}); if it did, delete it with `aws cloudformation delete-stack --stack-name {}`",
                        p.stack, p.stack
                    ))
                }
            }
        }
        self.pending.lock().remove(&id);
        Ok(())
    }

    /// Deletes every change set a cancelled preview or deploy left
    /// registered (call it after cancelling [`Executor::preview`], on
    /// Ctrl-C say, or after [`Executor::run_all`]). Returns one
    /// message per change set that could not be deleted, with the command to
    /// delete it by hand: empty when nothing is left.
    pub async fn cleanup_previews(&self) -> Vec<String> {
        let ids: Vec<u64> = self.pending.lock().keys().copied().collect();
        let mut failures = Vec::new();
        for id in ids {
            if let Err(e) = self.cleanup_one(id).await {
                failures.push(e);
            }
        }
        failures
    }

    /// How many preview change sets are not deleted yet.
    pub fn pending_previews(&self) -> usize {
        self.pending.lock().len()
    }
}

/// One resource a change-set preview would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ResourceChange {
    /// The stack the change set was made for.
    pub stack: String,
    /// `Add`, `Modify`, `Remove`, `Import` or `Dynamic`.
    pub action: String,
    /// The resource's logical id.
    pub logical_id: String,
    /// Its type, such as `AWS::SNS::Topic`.
    pub resource_type: String,
    /// For `Modify`: `True`, `Conditional` or `False`, where AWS reports it.
    pub replacement: Option<String>,
    /// The resource's physical id, if it exists.
    pub physical_id: Option<String>,
}

impl ResourceChange {
    /// From the AWS layer's change of stack `stack`.
    pub fn from_aws(stack: &str, c: &crate::aws::ResourceChange) -> Self {
        Self {
            stack: stack.to_string(),
            action: c.action.clone(),
            logical_id: c.logical_id.clone(),
            resource_type: c.resource_type.clone(),
            replacement: c.replacement.clone(),
            physical_id: c.physical_id.clone(),
        }
    }

    /// A change with the given action, logical id and type.
    pub fn new(
        stack: impl Into<String>,
        action: impl Into<String>,
        logical_id: impl Into<String>,
        resource_type: impl Into<String>,
    ) -> Self {
        Self {
            stack: stack.into(),
            action: action.into(),
            logical_id: logical_id.into(),
            resource_type: resource_type.into(),
            replacement: None,
            physical_id: None,
        }
    }

    /// Sets the replacement (`True`, `Conditional`, `False`).
    pub fn with_replacement(mut self, replacement: impl Into<String>) -> Self {
        self.replacement = Some(replacement.into());
        self
    }
}

#[cfg(test)]
mod tests;
