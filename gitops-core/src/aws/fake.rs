//! An in-memory AWS for tests of the executor and the other commands: it
//! behaves like CloudFormation and CodePipeline for the calls the tool makes,
//! and can be scripted into the states moto cannot produce (rollbacks, busy
//! stacks, empty change sets, executions).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::*;

/// A stack's scripted fate.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Describe answers `*_IN_PROGRESS` this many times before settling.
    pub busy_polls: usize,
    /// Executing a change set ends in this status instead of `*_COMPLETE`.
    pub fail_with: Option<String>,
    /// Every change set computes as "didn't contain changes".
    pub empty_change_sets: bool,
    /// DescribeChangeSet answers `CREATE_PENDING` this many times first.
    pub pending_change_set_polls: usize,
    /// DescribeChangeSet fails (throttled).
    pub fail_describe_change_set: bool,
    /// DescribeStacks of this stack panics (a bug in a task).
    pub panic_on_describe: bool,
}

/// A stack's scripted drift detection. The default: complete, in sync.
#[derive(Debug, Clone)]
pub struct DriftScript {
    /// Status polls answering DETECTION_IN_PROGRESS before the result
    /// (`usize::MAX`: never finishes).
    pub in_progress_polls: usize,
    /// The final status: DETECTION_COMPLETE or DETECTION_FAILED.
    pub status: String,
    /// The final stack drift status (DRIFTED, IN_SYNC, ...).
    pub stack_drift_status: Option<String>,
    /// Why detection failed.
    pub reason: Option<String>,
    /// What DescribeStackResourceDrifts returns.
    pub resources: Vec<ResourceDrift>,
}

impl Default for DriftScript {
    fn default() -> Self {
        Self {
            in_progress_polls: 0,
            status: "DETECTION_COMPLETE".into(),
            stack_drift_status: Some("IN_SYNC".into()),
            reason: None,
            resources: Vec::new(),
        }
    }
}

/// Everything the fake holds; read or change it through [`Fake::state`].
#[derive(Debug, Default)]
pub struct State {
    /// The stacks, by name.
    pub stacks: BTreeMap<String, Stack>,
    /// Each stack's template body, by stack name.
    pub templates: BTreeMap<String, String>,
    /// Change sets by (stack, name): the request and the computed change set.
    pub change_sets: BTreeMap<(String, String), (ChangeSetRequest, ChangeSet)>,
    /// Stack events, newest first, by stack.
    pub events: BTreeMap<String, Vec<StackEvent>>,
    /// Scripted fates, by stack.
    pub scripts: BTreeMap<String, Script>,
    /// Pipelines, by name.
    pub pipelines: BTreeMap<String, Pipeline>,
    /// Every StartPipelineExecution, in order.
    pub executions: Vec<StartExecution>,
    /// The statuses GetPipelineExecution answers, one per call, in order.
    pub execution_statuses: Vec<String>,
    /// What ListPipelineExecutions returns, by pipeline (newest first).
    pub listed_executions: BTreeMap<String, Vec<ExecutionSummary>>,
    /// Scripted drift detection, by stack.
    pub drift: BTreeMap<String, DriftScript>,
    /// The account GetCallerIdentity answers.
    pub account: String,
    /// Every call, as `Operation stack`.
    pub calls: Vec<String>,
    /// Change sets compute as "didn't contain changes" when the request equals the stack.
    pub event_counter: u64,
    /// Every CreateChangeSet request, in order (kept after execution).
    pub change_set_requests: Vec<ChangeSetRequest>,
}

/// The fake; clone it to share state.
#[derive(Debug, Clone, Default)]
pub struct Fake {
    /// The shared state.
    pub state: Arc<Mutex<State>>,
}

const MUTATING: &[&str] = &[
    "CreateChangeSet",
    "ExecuteChangeSet",
    "DeleteChangeSet",
    "DeleteStack",
    "UpdateTerminationProtection",
    "StartPipelineExecution",
    "PutObject",
];

impl Fake {
    /// An empty AWS whose account is 123456789012.
    pub fn new() -> Self {
        let f = Self::default();
        f.state.lock().unwrap().account = "123456789012".into();
        f
    }

    /// Clients for every service, all backed by this fake (an
    /// [`AwsClients`] is also a [`ClientFactory`]).
    pub fn clients(&self) -> AwsClients {
        AwsClients {
            cloudformation: Arc::new(self.clone()),
            codepipeline: Arc::new(self.clone()),
            sts: Arc::new(self.clone()),
            s3: Arc::new(self.clone()),
            access_analyzer: Arc::new(self.clone()),
        }
    }

    /// The fake with `stack` deployed from `template`.
    pub fn with_stack(self, stack: Stack, template: &str) -> Self {
        {
            let mut s = self.state.lock().unwrap();
            s.templates.insert(stack.name.clone(), template.to_string());
            s.stacks.insert(stack.name.clone(), stack);
        }
        self
    }

    /// Scripts the fate of `stack`'s next operations.
    pub fn script(&self, stack: &str, script: Script) {
        self.state
            .lock()
            .unwrap()
            .scripts
            .insert(stack.into(), script);
    }

    /// Scripts drift detection of `stack`.
    pub fn script_drift(&self, stack: &str, script: DriftScript) {
        self.state
            .lock()
            .unwrap()
            .drift
            .insert(stack.into(), script);
    }

    /// What ListPipelineExecutions answers for `pipeline` (newest first).
    pub fn list_executions_answer(&self, pipeline: &str, executions: Vec<ExecutionSummary>) {
        self.state
            .lock()
            .unwrap()
            .listed_executions
            .insert(pipeline.into(), executions);
    }

    /// Changes a stack behind the tool's back.
    pub fn edit_stack(&self, name: &str, edit: impl FnOnce(&mut Stack)) {
        if let Some(s) = self.state.lock().unwrap().stacks.get_mut(name) {
            edit(s);
        }
    }

    /// Every call so far, as `Operation stack`.
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The calls so far that change something.
    pub fn mutating_calls(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| MUTATING.iter().any(|m| c.starts_with(m)))
            .collect()
    }

    /// Stack `name` as it is now.
    pub fn stack(&self, name: &str) -> Option<Stack> {
        self.state.lock().unwrap().stacks.get(name).cloned()
    }

    fn call(&self, what: String) {
        self.state.lock().unwrap().calls.push(what);
    }

    fn event(s: &mut State, stack: &str, logical: &str, status: &str, reason: Option<&str>) {
        s.event_counter += 1;
        let e = StackEvent {
            event_id: format!("e{}", s.event_counter),
            timestamp: format!("2026-01-01T00:00:{:02}Z", s.event_counter % 60),
            logical_id: logical.into(),
            resource_type: if logical == stack {
                "AWS::CloudFormation::Stack".into()
            } else {
                "AWS::SNS::Topic".into()
            },
            status: status.into(),
            reason: reason.map(Into::into),
        };
        s.events.entry(stack.into()).or_default().insert(0, e);
    }
}

fn ready<T: Send + 'static>(v: T) -> BoxFuture<'static, T> {
    Box::pin(async move { v })
}

fn validation(msg: &str) -> AwsError {
    AwsError::from_service(
        "CloudFormation",
        "op",
        Some("ValidationError".into()),
        msg.to_string(),
    )
}

impl CloudFormation for Fake {
    fn describe_stack<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<Option<Stack>>> {
        self.call(format!("DescribeStacks {name}"));
        let panics = self
            .state
            .lock()
            .unwrap()
            .scripts
            .get(name)
            .is_some_and(|x| x.panic_on_describe);
        assert!(!panics, "scripted panic describing {name}");
        let mut s = self.state.lock().unwrap();
        let busy = s.scripts.get(name).map(|x| x.busy_polls).unwrap_or(0);
        let out = s.stacks.get(name).cloned().map(|mut st| {
            if busy > 0 {
                st.status = "UPDATE_IN_PROGRESS".into();
            }
            st
        });
        if busy > 0 {
            if let Some(sc) = s.scripts.get_mut(name) {
                sc.busy_polls -= 1;
            }
        }
        ready(Ok(out))
    }

    fn list_stacks(&self) -> BoxFuture<'_, AwsResult<Vec<Stack>>> {
        self.call("DescribeStacks *".into());
        let s = self.state.lock().unwrap();
        ready(Ok(s.stacks.values().cloned().collect()))
    }

    fn list_stacks_with_tag<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, AwsResult<Vec<Stack>>> {
        self.call("DescribeStacks *".into());
        let s = self.state.lock().unwrap();
        let v = s
            .stacks
            .values()
            .filter(|st| st.tags.get(key).map(String::as_str) == Some(value))
            .cloned()
            .collect();
        ready(Ok(v))
    }

    fn create_change_set(
        &self,
        request: ChangeSetRequest,
    ) -> BoxFuture<'_, AwsResult<ChangeSetRef>> {
        self.call(format!("CreateChangeSet {}", request.stack_name));
        let mut s = self.state.lock().unwrap();
        let exists = s.stacks.contains_key(&request.stack_name);
        match (request.kind, exists) {
            (ChangeSetKind::Create, true) => {
                return ready(Err(validation(&format!(
                    "Stack [{}] already exists",
                    request.stack_name
                ))))
            }
            (ChangeSetKind::Update, false) => {
                return ready(Err(validation(&format!(
                    "Stack [{}] does not exist",
                    request.stack_name
                ))))
            }
            _ => {}
        }
        let body = match &request.template {
            TemplateSource::Body(b) => b.clone(),
            TemplateSource::Url(u) => u.clone(),
        };
        let forced_empty = s
            .scripts
            .get(&request.stack_name)
            .is_some_and(|x| x.empty_change_sets);
        let same = forced_empty
            || exists
                && s.templates.get(&request.stack_name) == Some(&body)
                && request
                    .parameters
                    .iter()
                    .all(|(k, v)| s.stacks[&request.stack_name].parameters.get(k) == Some(v))
                && s.stacks[&request.stack_name].tags == request.tags;
        let cs = ChangeSet {
            id: format!("arn:cs/{}", request.change_set_name),
            name: request.change_set_name.clone(),
            status: if same { "FAILED".into() } else { "CREATE_COMPLETE".into() },
            execution_status: if same { "UNAVAILABLE".into() } else { "AVAILABLE".into() },
            status_reason: same.then(|| "The submitted information didn't contain changes. Submit different information to create a change set.".into()),
            changes: if same { vec![] } else { vec![ResourceChange { action: if exists { "Modify".into() } else { "Add".into() }, logical_id: "Topic".into(), resource_type: "AWS::SNS::Topic".into(), replacement: exists.then(|| "False".into()), ..Default::default() }] },
        };
        if !exists {
            s.stacks.insert(
                request.stack_name.clone(),
                Stack {
                    name: request.stack_name.clone(),
                    id: format!("arn:stack/{}", request.stack_name),
                    status: "REVIEW_IN_PROGRESS".into(),
                    termination_protection: Some(false),
                    ..Default::default()
                },
            );
        }
        let r = ChangeSetRef {
            id: cs.id.clone(),
            name: cs.name.clone(),
            stack_id: None,
        };
        s.change_set_requests.push(request.clone());
        s.change_sets.insert(
            (request.stack_name.clone(), request.change_set_name.clone()),
            (request, cs),
        );
        ready(Ok(r))
    }

    fn describe_change_set<'a>(
        &'a self,
        stack_name: &'a str,
        change_set_name: &'a str,
    ) -> BoxFuture<'a, AwsResult<ChangeSet>> {
        self.call(format!("DescribeChangeSet {stack_name}"));
        let mut s = self.state.lock().unwrap();
        if let Some(sc) = s.scripts.get_mut(stack_name) {
            if sc.fail_describe_change_set {
                return ready(Err(AwsError::new(
                    "CloudFormation",
                    "DescribeChangeSet",
                    AwsErrorKind::Throttled,
                    "Rate exceeded",
                )));
            }
            if sc.pending_change_set_polls > 0 {
                sc.pending_change_set_polls -= 1;
                return ready(Ok(ChangeSet {
                    name: change_set_name.into(),
                    status: "CREATE_PENDING".into(),
                    ..Default::default()
                }));
            }
        }
        ready(
            s.change_sets
                .get(&(stack_name.into(), change_set_name.into()))
                .map(|(_, cs)| cs.clone())
                .ok_or_else(|| {
                    AwsError::not_found(
                        "cloudformation",
                        "DescribeChangeSet",
                        format!("ChangeSet [{change_set_name}] does not exist"),
                    )
                }),
        )
    }

    fn execute_change_set<'a>(
        &'a self,
        stack_name: &'a str,
        change_set_name: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>> {
        self.call(format!("ExecuteChangeSet {stack_name}"));
        let mut s = self.state.lock().unwrap();
        let Some((req, _)) = s
            .change_sets
            .remove(&(stack_name.into(), change_set_name.into()))
        else {
            return ready(Err(validation("no such change set")));
        };
        let script = s.scripts.get(stack_name).cloned().unwrap_or_default();
        let creating = s
            .stacks
            .get(stack_name)
            .map(|st| st.status == "REVIEW_IN_PROGRESS")
            .unwrap_or(true);
        let status = match (&script.fail_with, creating) {
            (Some(f), _) => f.clone(),
            (None, true) => "CREATE_COMPLETE".into(),
            (None, false) => "UPDATE_COMPLETE".into(),
        };
        if let Some(reason) = script
            .fail_with
            .as_ref()
            .map(|_| "Resource handler returned message: \"Access Denied\"")
        {
            Fake::event(
                &mut s,
                stack_name,
                "Topic",
                if creating {
                    "CREATE_FAILED"
                } else {
                    "UPDATE_FAILED"
                },
                Some(reason),
            );
        }
        Fake::event(&mut s, stack_name, stack_name, &status, None);
        let body = match &req.template {
            TemplateSource::Body(b) => b.clone(),
            TemplateSource::Url(u) => u.clone(),
        };
        // Like CloudFormation, parameters not passed take their template default.
        let mut parameters = req.parameters.clone();
        if let Ok(t) = crate::template::Template::parse("fake", &body) {
            for (name, p) in &t.parameters {
                if let Some(d) = &p.default {
                    let shown = if p.no_echo {
                        "****".to_string()
                    } else {
                        d.clone()
                    };
                    parameters.entry(name.clone()).or_insert(shown);
                }
            }
        }
        s.templates.insert(stack_name.into(), body);
        let st = s.stacks.entry(stack_name.into()).or_default();
        st.name = stack_name.into();
        st.status = status;
        st.parameters = parameters;
        st.tags = req.tags.clone();
        ready(Ok(()))
    }

    fn delete_change_set<'a>(
        &'a self,
        stack_name: &'a str,
        change_set_name: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>> {
        self.call(format!("DeleteChangeSet {stack_name}"));
        self.state
            .lock()
            .unwrap()
            .change_sets
            .remove(&(stack_name.into(), change_set_name.into()));
        ready(Ok(()))
    }

    fn list_change_sets<'a>(
        &'a self,
        stack_name: &'a str,
    ) -> BoxFuture<'a, AwsResult<Vec<ChangeSetSummary>>> {
        self.call(format!("ListChangeSets {stack_name}"));
        let s = self.state.lock().unwrap();
        let v = s
            .change_sets
            .iter()
            .filter(|((st, _), _)| st == stack_name)
            .map(|((_, n), (_, cs))| ChangeSetSummary {
                name: n.clone(),
                id: cs.id.clone(),
                status: cs.status.clone(),
                execution_status: cs.execution_status.clone(),
                creation_time: None,
            })
            .collect();
        ready(Ok(v))
    }

    fn delete_stack<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<()>> {
        self.call(format!("DeleteStack {name}"));
        let mut s = self.state.lock().unwrap();
        s.stacks.remove(name);
        s.change_sets.retain(|(st, _), _| st != name);
        ready(Ok(()))
    }

    fn update_termination_protection<'a>(
        &'a self,
        name: &'a str,
        enabled: bool,
    ) -> BoxFuture<'a, AwsResult<()>> {
        self.call(format!("UpdateTerminationProtection {name} {enabled}"));
        if let Some(st) = self.state.lock().unwrap().stacks.get_mut(name) {
            st.termination_protection = Some(enabled);
        }
        ready(Ok(()))
    }

    fn stack_events<'a>(
        &'a self,
        name: &'a str,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, AwsResult<Vec<StackEvent>>> {
        self.call(format!("DescribeStackEvents {name}"));
        let s = self.state.lock().unwrap();
        let all = s.events.get(name).cloned().unwrap_or_default();
        let v = match after {
            Some(id) => all.into_iter().take_while(|e| e.event_id != id).collect(),
            None => all,
        };
        ready(Ok(v))
    }

    fn get_template<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<String>> {
        self.call(format!("GetTemplate {name}"));
        let s = self.state.lock().unwrap();
        ready(
            s.templates
                .get(name)
                .cloned()
                .ok_or_else(|| validation("no template")),
        )
    }

    fn detect_stack_drift<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<String>> {
        self.call(format!("DetectStackDrift {name}"));
        if !self.state.lock().unwrap().stacks.contains_key(name) {
            return ready(Err(validation(&format!("Stack [{name}] does not exist"))));
        }
        ready(Ok(format!("detection-{name}")))
    }

    fn describe_drift_detection<'a>(
        &'a self,
        detection_id: &'a str,
    ) -> BoxFuture<'a, AwsResult<DriftDetection>> {
        self.call(format!("DescribeStackDriftDetectionStatus {detection_id}"));
        let stack = detection_id.trim_start_matches("detection-");
        let mut s = self.state.lock().unwrap();
        let script = s.drift.entry(stack.into()).or_default();
        if script.in_progress_polls > 0 {
            if script.in_progress_polls != usize::MAX {
                script.in_progress_polls -= 1;
            }
            return ready(Ok(DriftDetection {
                status: "DETECTION_IN_PROGRESS".into(),
                ..Default::default()
            }));
        }
        ready(Ok(DriftDetection {
            status: script.status.clone(),
            stack_drift_status: script.stack_drift_status.clone(),
            reason: script.reason.clone(),
            drifted_resources: Some(
                script
                    .resources
                    .iter()
                    .filter(|r| r.status == "MODIFIED" || r.status == "DELETED")
                    .count() as i32,
            ),
        }))
    }

    fn describe_resource_drifts<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, AwsResult<Vec<ResourceDrift>>> {
        self.call(format!("DescribeStackResourceDrifts {name}"));
        let s = self.state.lock().unwrap();
        ready(Ok(s
            .drift
            .get(name)
            .map(|d| d.resources.clone())
            .unwrap_or_default()))
    }

    fn list_stack_resources<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<Vec<String>>> {
        self.call(format!("ListStackResources {name}"));
        let s = self.state.lock().unwrap();
        ready(match s.stacks.get(name) {
            None => Err(validation(&format!("Stack with id {name} does not exist"))),
            Some(st) if st.status == "REVIEW_IN_PROGRESS" => Ok(Vec::new()),
            Some(_) => Ok(vec!["Topic".into()]),
        })
    }
}

impl CodePipeline for Fake {
    fn get_pipeline<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<Option<Pipeline>>> {
        self.call(format!("GetPipeline {name}"));
        ready(Ok(self.state.lock().unwrap().pipelines.get(name).cloned()))
    }

    fn start_execution(&self, request: StartExecution) -> BoxFuture<'_, AwsResult<String>> {
        self.call(format!("StartPipelineExecution {}", request.name));
        let mut s = self.state.lock().unwrap();
        s.executions.push(request);
        ready(Ok(format!("exec-{}", s.executions.len())))
    }

    fn get_execution<'a>(
        &'a self,
        name: &'a str,
        execution_id: &'a str,
    ) -> BoxFuture<'a, AwsResult<Execution>> {
        self.call(format!("GetPipelineExecution {name}"));
        let mut s = self.state.lock().unwrap();
        let status = if s.execution_statuses.is_empty() {
            "Succeeded".to_string()
        } else {
            s.execution_statuses.remove(0)
        };
        ready(Ok(Execution {
            id: execution_id.into(),
            status,
            ..Default::default()
        }))
    }

    fn stage_states<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<Vec<StageState>>> {
        self.call(format!("GetPipelineState {name}"));
        ready(Ok(vec![]))
    }

    fn list_executions<'a>(
        &'a self,
        name: &'a str,
        max: usize,
    ) -> BoxFuture<'a, AwsResult<Vec<ExecutionSummary>>> {
        self.call(format!("ListPipelineExecutions {name}"));
        let s = self.state.lock().unwrap();
        if !s.pipelines.contains_key(name) && !s.listed_executions.contains_key(name) {
            return ready(Err(AwsError::not_found(
                "CodePipeline",
                "ListPipelineExecutions",
                format!("pipeline {name} does not exist"),
            )));
        }
        let mut v = s.listed_executions.get(name).cloned().unwrap_or_default();
        v.truncate(max);
        ready(Ok(v))
    }
}

impl Sts for Fake {
    fn caller_identity(&self) -> BoxFuture<'_, AwsResult<Identity>> {
        self.call("GetCallerIdentity".into());
        let account = self.state.lock().unwrap().account.clone();
        ready(Ok(Identity {
            arn: format!("arn:aws:iam::{account}:user/test"),
            account,
            user_id: "AIDA".into(),
        }))
    }
}

impl S3 for Fake {
    fn put_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        _body: Vec<u8>,
    ) -> BoxFuture<'a, AwsResult<String>> {
        self.call(format!("PutObject {bucket}/{key}"));
        ready(Ok(format!("https://{bucket}.s3.amazonaws.com/{key}")))
    }
}

/// Access Analyzer: no findings, and every access check passes.
impl AccessAnalyzer for Fake {
    fn validate_policy<'a>(
        &'a self,
        _document: &'a str,
        kind: &'a PolicyKind,
    ) -> BoxFuture<'a, AwsResult<Vec<PolicyFinding>>> {
        self.call(format!("ValidatePolicy {}", kind.label()));
        ready(Ok(Vec::new()))
    }

    fn check_no_new_access<'a>(
        &'a self,
        _new_document: &'a str,
        _existing_document: &'a str,
        kind: &'a PolicyKind,
    ) -> BoxFuture<'a, AwsResult<AccessCheck>> {
        self.call(format!("CheckNoNewAccess {}", kind.label()));
        ready(Ok(AccessCheck {
            passed: true,
            message: String::new(),
            reasons: Vec::new(),
        }))
    }

    fn check_access_not_granted<'a>(
        &'a self,
        _document: &'a str,
        _actions: &'a [String],
        kind: &'a PolicyKind,
    ) -> BoxFuture<'a, AwsResult<AccessCheck>> {
        self.call(format!("CheckAccessNotGranted {}", kind.label()));
        ready(Ok(AccessCheck {
            passed: true,
            message: String::new(),
            reasons: Vec::new(),
        }))
    }
}
