//! The AWS layer: small traits over the few AWS operations the tool uses,
//! returning this crate's own types.
//!
//! The planner and executor talk to [`CloudFormation`], [`CodePipeline`],
//! [`Sts`] and [`S3`] only, and `gitops validate` to [`AccessAnalyzer`], so
//! tests can swap in fakes; [`sdk`] holds the real implementations over the
//! AWS SDK for Rust. A [`ClientFactory`] hands out
//! one [`AwsClients`] per environment: its region, and its `role-arn` if it
//! has one.
//!
//! The traits return boxed futures ([`BoxFuture`]) so that they stay
//! dyn-compatible: callers hold `Arc<dyn CloudFormation>` and so on.
//!
//! ```
//! use gitops_core::aws::{ChangeSetKind, ChangeSetRequest, TemplateSource};
//!
//! let req = ChangeSetRequest::new(
//!     "dev-app",
//!     "gitops-1a2b3c",
//!     ChangeSetKind::Create,
//!     TemplateSource::Body("Resources: {}".into()),
//! )
//! .with_parameter("AppVersion", "1.2.3")
//! .with_tag("gitops:env", "dev")
//! .with_capabilities(["CAPABILITY_IAM"]);
//! assert_eq!(req.parameters["AppVersion"], "1.2.3");
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

#[cfg(any(test, feature = "test-util"))]
pub mod fake;
pub mod sdk;

/// A boxed, `Send` future: what every trait method here returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `Result` with [`AwsError`].
pub type AwsResult<T> = std::result::Result<T, AwsError>;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// What kind of failure an [`AwsError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AwsErrorKind {
    /// The service answered with an error (see [`AwsError::code`]).
    Service,
    /// The resource does not exist.
    NotFound,
    /// The service kept throttling the calls, even after the retries.
    Throttled,
    /// The call timed out.
    Timeout,
    /// The service could not be reached, or the request could not be sent.
    Connection,
    /// No credentials were found anywhere in the standard chain.
    NoCredentials,
    /// Anything else: an unreadable response, a response without a field
    /// that should be there.
    Other,
}

/// A failed AWS call.
///
/// `code` and `message` are the service's own when it answered; for a
/// failure to reach it, `code` is `None` and `message` has the chain of
/// causes (their messages, never a debug dump). Neither ever holds
/// credentials.
///
/// Shown as one line: service, operation, error code, message, request id
/// and, where there is one, the next step ([`AwsError::next_step`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("{}", self.one_line())]
pub struct AwsError {
    /// The service, such as `CloudFormation`.
    pub service: &'static str,
    /// The operation, such as `CreateChangeSet`.
    pub operation: &'static str,
    /// The service's error code, such as `ValidationError`.
    pub code: Option<String>,
    /// What went wrong.
    pub message: String,
    /// The kind of failure.
    pub kind: AwsErrorKind,
    /// The request id AWS gave the call, when it answered.
    pub request_id: Option<String>,
}

/// The ways to provide AWS credentials, for the error that found none.
pub const CREDENTIALS_HELP: &str = "provide AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE (aws configure, aws sso login), a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN), or, in GitHub Actions, aws-actions/configure-aws-credentials";

/// Error codes that mean "slow down", as the AWS SDKs list them, less
/// `LimitExceededException` (which for CloudFormation is a quota).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
];

impl AwsError {
    /// An error the service answered with; the kind follows from the code
    /// and message (`Throttling` is [`AwsErrorKind::Throttled`], a
    /// `...NotFoundException` or "... does not exist" is
    /// [`AwsErrorKind::NotFound`]).
    pub fn from_service(
        service: &'static str,
        operation: &'static str,
        code: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        let kind = classify(code.as_deref(), &message);
        Self {
            service,
            operation,
            code,
            message,
            kind,
            request_id: None,
        }
    }

    /// The same error with the request id AWS gave the call.
    pub fn with_request_id(mut self, id: Option<impl Into<String>>) -> Self {
        self.request_id = id.map(Into::into);
        self
    }

    /// What to do about it, when there is something to say.
    pub fn next_step(&self) -> Option<&'static str> {
        if self.is_bad_credentials() {
            return Some(match self.code.as_deref() {
                Some("ExpiredToken" | "ExpiredTokenException") => "the session has expired: sign in again (aws sso login) or refresh the workflow's credentials",
                _ => "the credentials were rejected: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
            });
        }
        if self.is_access_denied() {
            return Some("grant the identity (see `gitops whoami`) permission for this call, or set the environment's role-arn");
        }
        match self.kind {
            AwsErrorKind::NoCredentials => Some(CREDENTIALS_HELP),
            AwsErrorKind::Throttled => Some("AWS kept throttling the calls after the retries: lower --concurrency or try again later"),
            AwsErrorKind::Timeout | AwsErrorKind::Connection => Some("check the network, and the endpoint if one is set (--endpoint-url, AWS_ENDPOINT_URL)"),
            AwsErrorKind::Other if self.code.is_none() => Some("the endpoint's answer is not an AWS response: check --endpoint-url or AWS_ENDPOINT_URL, or whether the endpoint implements this call"),
            _ => None,
        }
    }

    /// The error on one line (what `Display` shows).
    fn one_line(&self) -> String {
        let mut s = format!("{} {} failed", self.service, self.operation);
        if let Some(c) = &self.code {
            s.push_str(&format!(" ({c})"));
        }
        let message = self
            .message
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !message.is_empty() {
            s.push_str(": ");
            s.push_str(message.trim_end_matches('.'));
        }
        if let Some(id) = &self.request_id {
            s.push_str(&format!(" (request id {id})"));
        }
        if let Some(step) = self.next_step() {
            s.push_str("; ");
            s.push_str(step);
        }
        s
    }

    /// An error of the given kind, without a service code.
    pub fn new(
        service: &'static str,
        operation: &'static str,
        kind: AwsErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            service,
            operation,
            code: None,
            message: message.into(),
            kind,
            request_id: None,
        }
    }

    /// A "does not exist" error, for fakes and for adapters.
    pub fn not_found(
        service: &'static str,
        operation: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::new(service, operation, AwsErrorKind::NotFound, message)
    }

    /// Whether the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind == AwsErrorKind::NotFound
    }

    /// Whether the service kept throttling the calls.
    pub fn is_throttled(&self) -> bool {
        self.kind == AwsErrorKind::Throttled
    }

    /// Whether the call timed out.
    pub fn is_timeout(&self) -> bool {
        self.kind == AwsErrorKind::Timeout
    }

    /// Whether CloudFormation said there is nothing to change: `UpdateStack`
    /// or `CreateChangeSet` failing with `ValidationError` "No updates are to
    /// be performed." (For a change set that was created but is empty, see
    /// [`ChangeSet::is_empty_no_changes`].)
    pub fn is_no_updates(&self) -> bool {
        self.code.as_deref() == Some("ValidationError") && is_no_changes_message(&self.message)
    }

    /// Whether the caller lacks permission (`AccessDenied`,
    /// `AccessDeniedException`, `UnauthorizedOperation`).
    pub fn is_access_denied(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation")
        )
    }

    /// Whether the credentials were rejected or have expired.
    pub fn is_bad_credentials(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some(
                "InvalidClientTokenId"
                    | "SignatureDoesNotMatch"
                    | "ExpiredToken"
                    | "ExpiredTokenException"
                    | "UnrecognizedClientException"
                    | "InvalidAccessKeyId"
            )
        )
    }
}

fn classify(code: Option<&str>, message: &str) -> AwsErrorKind {
    match code {
        Some(c) if THROTTLING_CODES.contains(&c) => AwsErrorKind::Throttled,
        Some(c)
            if c.ends_with("NotFoundException")
                || c.ends_with("NotFound")
                || matches!(c, "NoSuchKey" | "NoSuchBucket") =>
        {
            AwsErrorKind::NotFound
        }
        Some("ValidationError") if message.contains("does not exist") => AwsErrorKind::NotFound,
        _ => AwsErrorKind::Service,
    }
}

fn is_no_changes_message(s: &str) -> bool {
    s.contains("No updates are to be performed") || s.contains("didn't contain changes")
}

// ---------------------------------------------------------------------------
// CloudFormation
// ---------------------------------------------------------------------------

/// A CloudFormation stack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stack {
    /// The stack's name.
    pub name: String,
    /// The stack's id (an ARN).
    pub id: String,
    /// Its status, such as `UPDATE_COMPLETE`.
    pub status: String,
    /// Why it has that status, when CloudFormation says.
    pub status_reason: Option<String>,
    /// Parameter values (`NoEcho` ones come back masked).
    pub parameters: BTreeMap<String, String>,
    /// Stack tags.
    pub tags: BTreeMap<String, String>,
    /// Outputs.
    pub outputs: BTreeMap<String, String>,
    /// Whether termination protection is on; `None` when the endpoint does
    /// not say (an emulator).
    pub termination_protection: Option<bool>,
    /// When it was created (RFC 3339).
    pub creation_time: Option<String>,
    /// When it was last updated (RFC 3339).
    pub last_updated_time: Option<String>,
}

impl Stack {
    /// Whether an operation is running (`*_IN_PROGRESS`): wait before acting.
    pub fn is_in_progress(&self) -> bool {
        self.status.ends_with("_IN_PROGRESS")
    }

    /// Whether the last operation succeeded: `*_COMPLETE` other than the
    /// rollbacks and `DELETE_COMPLETE`.
    pub fn is_complete_ok(&self) -> bool {
        self.status.ends_with("_COMPLETE")
            && !self.status.contains("ROLLBACK")
            && self.status != "DELETE_COMPLETE"
    }

    /// `ROLLBACK_COMPLETE`: the stack was never created and can only be
    /// deleted (then created again).
    pub fn is_rollback_complete_never_created(&self) -> bool {
        self.status == "ROLLBACK_COMPLETE"
    }

    /// `UPDATE_ROLLBACK_FAILED`: it needs `ContinueUpdateRollback` first.
    pub fn is_update_rollback_failed(&self) -> bool {
        self.status == "UPDATE_ROLLBACK_FAILED"
    }

    /// Whether the last operation failed and was rolled back
    /// (`UPDATE_ROLLBACK_COMPLETE`, `ROLLBACK_COMPLETE`, ...).
    pub fn is_rolled_back(&self) -> bool {
        self.status.ends_with("ROLLBACK_COMPLETE")
    }

    /// Whether the stack is in a `*_FAILED` state.
    pub fn is_failed(&self) -> bool {
        self.status.ends_with("_FAILED")
    }

    /// `DELETE_COMPLETE` (only seen when describing by stack id).
    pub fn is_deleted(&self) -> bool {
        self.status == "DELETE_COMPLETE"
    }
}

/// Whether a change set creates a stack or updates one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeSetKind {
    /// The stack does not exist yet (`ChangeSetType=CREATE`).
    Create,
    /// The stack exists (`ChangeSetType=UPDATE`).
    Update,
}

/// Where CloudFormation reads the template from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateSource {
    /// The template itself (up to 51,200 bytes).
    Body(String),
    /// An S3 URL (see [`S3::put_object`]), for larger templates.
    Url(String),
}

/// What [`CloudFormation::create_change_set`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChangeSetRequest {
    /// The stack.
    pub stack_name: String,
    /// The change set's name (unique per stack; moto wants it unique overall).
    pub change_set_name: String,
    /// Create or update.
    pub kind: ChangeSetKind,
    /// The template.
    pub template: TemplateSource,
    /// Parameter values.
    pub parameters: BTreeMap<String, String>,
    /// Stack tags.
    pub tags: BTreeMap<String, String>,
    /// Capabilities such as `CAPABILITY_IAM`.
    pub capabilities: Vec<String>,
    /// A description for the change set.
    pub description: Option<String>,
}

impl ChangeSetRequest {
    /// A request with no parameters, tags, capabilities or description.
    pub fn new(
        stack_name: impl Into<String>,
        change_set_name: impl Into<String>,
        kind: ChangeSetKind,
        template: TemplateSource,
    ) -> Self {
        Self {
            stack_name: stack_name.into(),
            change_set_name: change_set_name.into(),
            kind,
            template,
            parameters: BTreeMap::new(),
            tags: BTreeMap::new(),
            capabilities: Vec::new(),
            description: None,
        }
    }

    /// Sets all parameters.
    pub fn with_parameters(mut self, parameters: BTreeMap<String, String>) -> Self {
        self.parameters = parameters;
        self
    }

    /// Adds one parameter.
    pub fn with_parameter(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.parameters.insert(key.into(), value.into());
        self
    }

    /// Sets all tags.
    pub fn with_tags(mut self, tags: BTreeMap<String, String>) -> Self {
        self.tags = tags;
        self
    }

    /// Adds one tag.
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Sets the capabilities.
    pub fn with_capabilities<I, S>(mut self, capabilities: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.capabilities = capabilities.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

/// A change set just created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSetRef {
    /// Its id (an ARN).
    pub id: String,
    /// Its name.
    pub name: String,
    /// The stack's id (an ARN), when CloudFormation returns it.
    pub stack_id: Option<String>,
}

/// One resource a change set would change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceChange {
    /// `Add`, `Modify`, `Remove`, `Import` or `Dynamic`.
    pub action: String,
    /// The resource's logical id.
    pub logical_id: String,
    /// The resource's physical id, if it exists.
    pub physical_id: Option<String>,
    /// Its type, such as `AWS::SNS::Topic`.
    pub resource_type: String,
    /// For `Modify`: `True`, `False` or `Conditional`.
    pub replacement: Option<String>,
    /// What changes: `Properties`, `Metadata`, `Tags`, ...
    pub scope: Vec<String>,
}

/// A change set, described.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Its id (an ARN).
    pub id: String,
    /// Its name.
    pub name: String,
    /// `CREATE_PENDING`, `CREATE_IN_PROGRESS`, `CREATE_COMPLETE`, `FAILED`, ...
    pub status: String,
    /// `AVAILABLE`, `UNAVAILABLE`, `EXECUTE_IN_PROGRESS`, ...
    pub execution_status: String,
    /// Why it has that status.
    pub status_reason: Option<String>,
    /// The changes, from every page.
    pub changes: Vec<ResourceChange>,
}

impl ChangeSet {
    /// Whether CloudFormation is still computing it.
    pub fn is_pending(&self) -> bool {
        matches!(
            self.status.as_str(),
            "CREATE_PENDING" | "CREATE_IN_PROGRESS"
        )
    }

    /// Whether it was computed and can be executed.
    pub fn is_ready(&self) -> bool {
        self.status == "CREATE_COMPLETE" && self.execution_status == "AVAILABLE"
    }

    /// Whether it failed.
    pub fn is_failed(&self) -> bool {
        self.status == "FAILED"
    }

    /// Whether it failed only because there was nothing to change
    /// ("The submitted information didn't contain changes", or "No updates
    /// are to be performed"): not an error for a deployment.
    pub fn is_empty_no_changes(&self) -> bool {
        self.is_failed()
            && self
                .status_reason
                .as_deref()
                .is_some_and(is_no_changes_message)
    }
}

/// One change set of a stack, as listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSetSummary {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: String,
    /// Its status.
    pub status: String,
    /// Its execution status.
    pub execution_status: String,
    /// When it was created (RFC 3339).
    pub creation_time: Option<String>,
}

/// One stack event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackEvent {
    /// The event's id.
    pub event_id: String,
    /// When it happened (RFC 3339).
    pub timestamp: String,
    /// The resource's logical id (the stack's name for the stack itself).
    pub logical_id: String,
    /// The resource's type.
    pub resource_type: String,
    /// The resource's status, such as `CREATE_FAILED`.
    pub status: String,
    /// Why, when CloudFormation says.
    pub reason: Option<String>,
}

/// The state of a drift detection run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriftDetection {
    /// `DETECTION_IN_PROGRESS`, `DETECTION_COMPLETE` or `DETECTION_FAILED`.
    pub status: String,
    /// `DRIFTED`, `IN_SYNC`, `UNKNOWN` or `NOT_CHECKED`, once known.
    pub stack_drift_status: Option<String>,
    /// Why detection failed, if it did.
    pub reason: Option<String>,
    /// How many resources drifted, once known.
    pub drifted_resources: Option<i32>,
}

/// One property that differs from the template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PropertyDifference {
    /// The property's path, such as `/Properties/Tags/0/Value`.
    pub path: String,
    /// The value in the template.
    pub expected: String,
    /// The live value.
    pub actual: String,
    /// `ADD`, `REMOVE` or `NOT_EQUAL`.
    pub kind: String,
}

/// A resource's drift.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceDrift {
    /// The resource's logical id.
    pub logical_id: String,
    /// Its type.
    pub resource_type: String,
    /// `IN_SYNC`, `MODIFIED`, `DELETED`, `NOT_CHECKED`, ...
    pub status: String,
    /// What differs.
    pub differences: Vec<PropertyDifference>,
}

/// The CloudFormation operations the tool uses.
pub trait CloudFormation: Send + Sync {
    /// The stack, or `None` when it does not exist.
    fn describe_stack<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<Option<Stack>>>;

    /// Every live stack (not `DELETE_COMPLETE`), every page of DescribeStacks:
    /// one call per page instead of one per stack.
    fn list_stacks(&self) -> BoxFuture<'_, AwsResult<Vec<Stack>>>;

    /// Every live stack (not `DELETE_COMPLETE`) with tag `key` = `value`.
    fn list_stacks_with_tag<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, AwsResult<Vec<Stack>>>;

    /// Starts creating a change set; poll [`CloudFormation::describe_change_set`]
    /// until it is no longer pending.
    fn create_change_set(
        &self,
        request: ChangeSetRequest,
    ) -> BoxFuture<'_, AwsResult<ChangeSetRef>>;

    /// The change set with all its changes.
    fn describe_change_set<'a>(
        &'a self,
        stack_name: &'a str,
        change_set_name: &'a str,
    ) -> BoxFuture<'a, AwsResult<ChangeSet>>;

    /// Executes a change set; poll [`CloudFormation::describe_stack`] for the
    /// outcome.
    fn execute_change_set<'a>(
        &'a self,
        stack_name: &'a str,
        change_set_name: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>>;

    /// Deletes a change set.
    fn delete_change_set<'a>(
        &'a self,
        stack_name: &'a str,
        change_set_name: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>>;

    /// The stack's change sets.
    fn list_change_sets<'a>(
        &'a self,
        stack_name: &'a str,
    ) -> BoxFuture<'a, AwsResult<Vec<ChangeSetSummary>>>;

    /// Starts deleting a stack.
    fn delete_stack<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<()>>;

    /// Turns termination protection on or off.
    fn update_termination_protection<'a>(
        &'a self,
        name: &'a str,
        enabled: bool,
    ) -> BoxFuture<'a, AwsResult<()>>;

    /// Stack events, newest first: those newer than the event `after` when
    /// given (following pages until it is found), otherwise the latest page.
    fn stack_events<'a>(
        &'a self,
        name: &'a str,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, AwsResult<Vec<StackEvent>>>;

    /// The stack's template, as submitted (stage `Original`).
    fn get_template<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<String>>;

    /// Starts drift detection; returns the detection id.
    fn detect_stack_drift<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<String>>;

    /// The state of a drift detection run.
    fn describe_drift_detection<'a>(
        &'a self,
        detection_id: &'a str,
    ) -> BoxFuture<'a, AwsResult<DriftDetection>>;

    /// The drift of every resource of the stack, from the last detection.
    fn describe_resource_drifts<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, AwsResult<Vec<ResourceDrift>>>;

    /// The logical ids of the stack's resources (ListStackResources, every
    /// page). A stack only reviewed (`REVIEW_IN_PROGRESS`) has none.
    fn list_stack_resources<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<Vec<String>>>;
}

// ---------------------------------------------------------------------------
// CodePipeline
// ---------------------------------------------------------------------------

/// A source action of a pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceAction {
    /// The action's name.
    pub name: String,
    /// Its provider, such as `CodeStarSourceConnection` or `S3`.
    pub provider: String,
    /// Its configuration (`FullRepositoryId`, `BranchName`, ...).
    pub configuration: BTreeMap<String, String>,
}

/// A pipeline's declaration, reduced to what the tool needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pipeline {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: Option<i32>,
    /// `V1` or `V2` (`V1` when CodePipeline does not say).
    pub pipeline_type: String,
    /// The names of its pipeline-level variables (V2 only).
    pub variables: Vec<String>,
    /// Its source actions, in stage order.
    pub source_actions: Vec<SourceAction>,
}

/// The kind of revision a source revision override names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevisionKind {
    /// A git commit id.
    CommitId,
    /// A container image digest.
    ImageDigest,
    /// An S3 object key.
    S3ObjectKey,
    /// An S3 object version id.
    S3ObjectVersionId,
}

/// A source revision override for [`CodePipeline::start_execution`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRevision {
    /// The source action it applies to.
    pub action_name: String,
    /// What `value` is.
    pub kind: RevisionKind,
    /// The revision.
    pub value: String,
}

impl SourceRevision {
    /// A commit id for a source action.
    pub fn commit(action_name: impl Into<String>, commit: impl Into<String>) -> Self {
        Self {
            action_name: action_name.into(),
            kind: RevisionKind::CommitId,
            value: commit.into(),
        }
    }
}

/// What [`CodePipeline::start_execution`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StartExecution {
    /// The pipeline.
    pub name: String,
    /// Source revisions to run instead of the latest.
    pub source_revisions: Vec<SourceRevision>,
    /// Pipeline variables (V2 only).
    pub variables: BTreeMap<String, String>,
    /// An idempotency token: the same token starts at most one execution.
    pub client_request_token: Option<String>,
}

impl StartExecution {
    /// Starts `name` with the latest revisions and no variables.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            source_revisions: Vec::new(),
            variables: BTreeMap::new(),
            client_request_token: None,
        }
    }

    /// Adds a source revision override.
    pub fn with_source_revision(mut self, revision: SourceRevision) -> Self {
        self.source_revisions.push(revision);
        self
    }

    /// Adds a variable.
    pub fn with_variable(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.variables.insert(name.into(), value.into());
        self
    }

    /// Sets the idempotency token.
    pub fn with_client_request_token(mut self, token: impl Into<String>) -> Self {
        self.client_request_token = Some(token.into());
        self
    }
}

/// A revision an execution ran on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutedRevision {
    /// For [`Execution`], the artifact's name; for [`ExecutionSummary`], the
    /// source action's name.
    pub name: String,
    /// The revision (a commit id, say).
    pub revision_id: Option<String>,
    /// Its summary (a commit message, say).
    pub summary: Option<String>,
}

/// One pipeline execution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Execution {
    /// Its id.
    pub id: String,
    /// `InProgress`, `Succeeded`, `Failed`, `Stopped`, `Superseded`, ...
    pub status: String,
    /// Why, when CodePipeline says.
    pub status_summary: Option<String>,
    /// The pipeline version it ran.
    pub pipeline_version: Option<i32>,
    /// The source artifacts' revisions.
    pub artifact_revisions: Vec<ExecutedRevision>,
    /// The variables it resolved.
    pub variables: BTreeMap<String, String>,
}

impl Execution {
    /// Whether it is still running (`InProgress`, `Stopping`).
    pub fn is_running(&self) -> bool {
        matches!(self.status.as_str(), "InProgress" | "Stopping")
    }
}

/// One pipeline execution, as listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionSummary {
    /// Its id.
    pub id: String,
    /// Its status.
    pub status: String,
    /// Why, when CodePipeline says.
    pub status_summary: Option<String>,
    /// When it started (RFC 3339).
    pub start_time: Option<String>,
    /// When it last changed (RFC 3339).
    pub last_update_time: Option<String>,
    /// Its source revisions (by source action name).
    pub source_revisions: Vec<ExecutedRevision>,
}

impl ExecutionSummary {
    /// The first source revision's id: for a one-source pipeline, its commit.
    pub fn source_revision(&self) -> Option<&str> {
        self.source_revisions
            .iter()
            .find_map(|r| r.revision_id.as_deref())
    }
}

/// A stage's latest execution, for progress reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageState {
    /// The stage's name.
    pub name: String,
    /// `InProgress`, `Succeeded`, `Failed`, ... (`None` before it ever ran).
    pub status: Option<String>,
    /// The pipeline execution the stage ran last.
    pub execution_id: Option<String>,
    /// Its actions' latest executions, in declaration order.
    pub actions: Vec<ActionState>,
}

/// An action's latest execution, for progress reports and failures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionState {
    /// The action's name.
    pub name: String,
    /// `InProgress`, `Succeeded`, `Failed`, `Abandoned` (`None` before it ever ran).
    pub status: Option<String>,
    /// The pipeline execution it ran in, when CodePipeline says.
    pub execution_id: Option<String>,
    /// Its summary (a change set's name, a build's phase...).
    pub summary: Option<String>,
    /// The error message of a failed run.
    pub error: Option<String>,
    /// A link to the run in its own service's console (a build's log, say).
    pub external_url: Option<String>,
}

/// The CodePipeline operations the tool uses.
pub trait CodePipeline: Send + Sync {
    /// The pipeline, or `None` when it does not exist.
    fn get_pipeline<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<Option<Pipeline>>>;

    /// Starts an execution; returns its id.
    fn start_execution(&self, request: StartExecution) -> BoxFuture<'_, AwsResult<String>>;

    /// One execution.
    fn get_execution<'a>(
        &'a self,
        name: &'a str,
        execution_id: &'a str,
    ) -> BoxFuture<'a, AwsResult<Execution>>;

    /// Every stage's latest execution, in pipeline order.
    fn stage_states<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<Vec<StageState>>>;

    /// The latest executions, newest first, at most `max`.
    fn list_executions<'a>(
        &'a self,
        name: &'a str,
        max: usize,
    ) -> BoxFuture<'a, AwsResult<Vec<ExecutionSummary>>>;
}

// ---------------------------------------------------------------------------
// STS and S3
// ---------------------------------------------------------------------------

/// Who the credentials belong to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The account id.
    pub account: String,
    /// The caller's ARN (an assumed role's ARN after `role-arn`).
    pub arn: String,
    /// The caller's unique id.
    pub user_id: String,
}

/// What `gitops whoami` reports: who the credentials belong to, the
/// region and the endpoint calls go to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct WhoAmI {
    /// The account id.
    pub account: String,
    /// The caller's ARN.
    pub arn: String,
    /// The caller's unique id.
    pub user_id: String,
    /// The default region.
    pub region: String,
    /// The custom endpoint, if any.
    pub endpoint: Option<String>,
}

impl WhoAmI {
    /// `identity` in `region`, calling `endpoint`.
    pub fn new(identity: Identity, region: &str, endpoint: Option<&str>) -> Self {
        Self {
            account: identity.account,
            arn: identity.arn,
            user_id: identity.user_id,
            region: region.to_string(),
            endpoint: endpoint.map(str::to_string),
        }
    }

    /// One `name: value` line each (the endpoint only when there is one).
    pub fn render_text(&self) -> String {
        let mut out = format!(
            "account:  {}\narn:      {}\nregion:   {}\n",
            self.account, self.arn, self.region
        );
        if let Some(e) = &self.endpoint {
            out.push_str(&format!("endpoint: {e}\n"));
        }
        out
    }
}

/// Why `gitops whoami` cannot say who the credentials belong to.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WhoAmIError {
    /// The clients could not be made.
    #[error(transparent)]
    Clients(AwsError),
    /// GetCallerIdentity failed (its error names the next step, such as how
    /// to provide credentials).
    #[error("cannot resolve the AWS identity: {0}")]
    Identity(AwsError),
}

/// The STS operation the tool uses.
pub trait Sts: Send + Sync {
    /// Who the credentials belong to.
    fn caller_identity(&self) -> BoxFuture<'_, AwsResult<Identity>>;
}

/// The S3 operation the tool uses: uploading templates too large to pass inline.
pub trait S3: Send + Sync {
    /// Uploads `body` to `bucket`/`key` and returns the URL CloudFormation
    /// reads it from.
    fn put_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Vec<u8>,
    ) -> BoxFuture<'a, AwsResult<String>>;
}

// ---------------------------------------------------------------------------
// IAM Access Analyzer
// ---------------------------------------------------------------------------

/// What kind of IAM policy a document is: it decides how Access Analyzer
/// reads it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum PolicyKind {
    /// An identity-based policy (of a role, user or group, or a managed policy).
    Identity,
    /// A resource-based policy on a resource of this CloudFormation type,
    /// such as `AWS::S3::Bucket` or `AWS::SQS::Queue`.
    Resource(String),
    /// A role's trust policy (`AssumeRolePolicyDocument`).
    RoleTrust,
}

impl PolicyKind {
    /// A short description for messages: `identity policy`, ...
    pub fn label(&self) -> &'static str {
        match self {
            Self::Identity => "identity policy",
            Self::Resource(_) => "resource policy",
            Self::RoleTrust => "role trust policy",
        }
    }
}

/// How serious a ValidatePolicy finding is, least serious first, so that
/// `finding >= threshold` compares severities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum FindingType {
    /// `SUGGESTION`: an improvement that does not change what the policy allows.
    Suggestion,
    /// `WARNING`: the policy does not follow best practice.
    Warning,
    /// `SECURITY_WARNING`: the policy allows access considered a security risk.
    SecurityWarning,
    /// `ERROR`: the policy will not work (or cannot be saved).
    Error,
}

impl FindingType {
    /// Every type, least serious first.
    pub const ALL: [FindingType; 4] = [
        Self::Suggestion,
        Self::Warning,
        Self::SecurityWarning,
        Self::Error,
    ];

    /// The AWS name: `ERROR`, `SECURITY_WARNING`, `WARNING` or `SUGGESTION`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Suggestion => "SUGGESTION",
            Self::Warning => "WARNING",
            Self::SecurityWarning => "SECURITY_WARNING",
            Self::Error => "ERROR",
        }
    }

    /// Parses the AWS name or its lowercase, dashed form (`security-warning`).
    pub fn parse(s: &str) -> Option<Self> {
        let norm = s.trim().to_ascii_uppercase().replace('-', "_");
        Self::ALL.into_iter().find(|t| t.as_str() == norm)
    }
}

impl std::fmt::Display for FindingType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of the path to the part of a policy document a finding is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyPathStep {
    /// An index into an array, such as the statement number.
    Index(usize),
    /// A key of an object, such as `Action`.
    Key(String),
    /// A value, such as one action of a list.
    Value(String),
    /// A part of a string value.
    Substring {
        /// Where it starts (characters).
        start: usize,
        /// How long it is.
        length: usize,
    },
}

/// One finding of Access Analyzer's ValidatePolicy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFinding {
    /// How serious it is.
    pub finding_type: FindingType,
    /// The issue code, such as `PASS_ROLE_WITH_STAR_IN_RESOURCE`.
    pub issue_code: String,
    /// What the finding says.
    pub details: String,
    /// A link to the documentation of the issue.
    pub learn_more_link: String,
    /// Where in the policy document: one path per location.
    pub locations: Vec<Vec<PolicyPathStep>>,
}

/// The outcome of CheckNoNewAccess or CheckAccessNotGranted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessCheck {
    /// `true` for `PASS`: no new access, or the access is not granted.
    pub passed: bool,
    /// Access Analyzer's message.
    pub message: String,
    /// Why, per statement, when it says.
    pub reasons: Vec<String>,
}

/// The IAM Access Analyzer policy checks the tool uses.
pub trait AccessAnalyzer: Send + Sync {
    /// ValidatePolicy, every page: grammar and best-practice findings.
    fn validate_policy<'a>(
        &'a self,
        document: &'a str,
        kind: &'a PolicyKind,
    ) -> BoxFuture<'a, AwsResult<Vec<PolicyFinding>>>;

    /// CheckNoNewAccess: whether `new_document` allows access that
    /// `existing_document` does not.
    fn check_no_new_access<'a>(
        &'a self,
        new_document: &'a str,
        existing_document: &'a str,
        kind: &'a PolicyKind,
    ) -> BoxFuture<'a, AwsResult<AccessCheck>>;

    /// CheckAccessNotGranted: whether `document` grants none of `actions`.
    fn check_access_not_granted<'a>(
        &'a self,
        document: &'a str,
        actions: &'a [String],
        kind: &'a PolicyKind,
    ) -> BoxFuture<'a, AwsResult<AccessCheck>>;
}

// ---------------------------------------------------------------------------
// Clients per environment
// ---------------------------------------------------------------------------

/// The clients for one region and identity.
#[derive(Clone)]
pub struct AwsClients {
    /// CloudFormation.
    pub cloudformation: Arc<dyn CloudFormation>,
    /// CodePipeline.
    pub codepipeline: Arc<dyn CodePipeline>,
    /// STS.
    pub sts: Arc<dyn Sts>,
    /// S3.
    pub s3: Arc<dyn S3>,
    /// IAM Access Analyzer.
    pub access_analyzer: Arc<dyn AccessAnalyzer>,
}

impl std::fmt::Debug for AwsClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsClients").finish_non_exhaustive()
    }
}

/// Hands out the clients for an environment: its region, and the role it
/// assumes (chained from the workflow's credentials) if it sets `role-arn`.
pub trait ClientFactory: Send + Sync {
    /// The clients for `region`, acting as `role_arn` when given.
    fn clients<'a>(
        &'a self,
        region: &'a str,
        role_arn: Option<&'a str>,
    ) -> BoxFuture<'a, AwsResult<AwsClients>>;
}

/// The same clients for every region and role: for tests with fakes.
impl ClientFactory for AwsClients {
    fn clients<'a>(
        &'a self,
        _region: &'a str,
        _role_arn: Option<&'a str>,
    ) -> BoxFuture<'a, AwsResult<AwsClients>> {
        let clients = self.clone();
        Box::pin(async move { Ok(clients) })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn whoami_text_names_the_endpoint_only_when_set() {
        let id = Identity {
            account: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:user/ci".into(),
            user_id: "AIDA".into(),
        };
        expect_test::expect![[r#"
            account:  123456789012
            arn:      arn:aws:iam::123456789012:user/ci
            region:   eu-west-1
            endpoint: http://127.0.0.1:5000
        "#]]
        .assert_eq(
            &WhoAmI::new(id.clone(), "eu-west-1", Some("http://127.0.0.1:5000")).render_text(),
        );
        assert!(!WhoAmI::new(id, "eu-west-1", None)
            .render_text()
            .contains("endpoint"));
    }

    fn stack(status: &str) -> Stack {
        Stack {
            status: status.into(),
            ..Stack::default()
        }
    }

    #[test]
    fn stack_status_helpers() {
        assert!(stack("UPDATE_IN_PROGRESS").is_in_progress());
        assert!(stack("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS").is_in_progress());
        assert!(!stack("UPDATE_COMPLETE").is_in_progress());

        for ok in ["CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"] {
            assert!(stack(ok).is_complete_ok(), "{ok}");
        }
        for not in [
            "ROLLBACK_COMPLETE",
            "UPDATE_ROLLBACK_COMPLETE",
            "IMPORT_ROLLBACK_COMPLETE",
            "DELETE_COMPLETE",
            "CREATE_IN_PROGRESS",
            "UPDATE_ROLLBACK_FAILED",
        ] {
            assert!(!stack(not).is_complete_ok(), "{not}");
        }
        assert!(stack("ROLLBACK_COMPLETE").is_rollback_complete_never_created());
        assert!(!stack("UPDATE_ROLLBACK_COMPLETE").is_rollback_complete_never_created());
        assert!(stack("UPDATE_ROLLBACK_COMPLETE").is_rolled_back());
        assert!(stack("UPDATE_ROLLBACK_FAILED").is_update_rollback_failed());
        assert!(stack("UPDATE_ROLLBACK_FAILED").is_failed());
        assert!(stack("DELETE_COMPLETE").is_deleted());
    }

    #[test]
    fn change_set_no_changes() {
        let cs = |status: &str, reason: Option<&str>| ChangeSet {
            status: status.into(),
            status_reason: reason.map(Into::into),
            ..ChangeSet::default()
        };
        assert!(cs(
            "FAILED",
            Some("The submitted information didn't contain changes. Submit different information to create a change set.")
        )
        .is_empty_no_changes());
        assert!(cs("FAILED", Some("No updates are to be performed.")).is_empty_no_changes());
        assert!(!cs("FAILED", Some("Template format error")).is_empty_no_changes());
        assert!(!cs("CREATE_COMPLETE", None).is_empty_no_changes());
        assert!(cs("CREATE_PENDING", None).is_pending());
    }

    #[test]
    fn error_classification() {
        let e = |code: &str, msg: &str| AwsError::from_service("X", "Op", Some(code.into()), msg);
        assert!(e("Throttling", "Rate exceeded").is_throttled());
        assert!(!e("LimitExceededException", "too many stacks").is_throttled());
        assert!(e("ValidationError", "Stack with id x does not exist").is_not_found());
        assert!(e("PipelineNotFoundException", "").is_not_found());
        assert!(e("ChangeSetNotFound", "").is_not_found());
        assert!(e("ValidationError", "No updates are to be performed.").is_no_updates());
        assert!(!e("ValidationError", "Template error").is_no_updates());
        assert!(!e("ValidationError", "Template error").is_not_found());
        assert!(e("AccessDenied", "no").is_access_denied());
        assert!(e("ExpiredToken", "no").is_bad_credentials());
        assert_eq!(
            e("ValidationError", "bad.\n  really")
                .with_request_id(Some("r-1"))
                .to_string(),
            "X Op failed (ValidationError): bad. really (request id r-1)"
        );
        assert_eq!(
            AwsError::new("X", "Op", AwsErrorKind::Timeout, "slow").to_string(),
            "X Op failed: slow; check the network, and the endpoint if one is set (--endpoint-url, AWS_ENDPOINT_URL)"
        );
        let none = AwsError::new(
            "STS",
            "GetCallerIdentity",
            AwsErrorKind::NoCredentials,
            "no credentials found",
        );
        assert_eq!(
            none.to_string(),
            format!("STS GetCallerIdentity failed: no credentials found; {CREDENTIALS_HELP}")
        );
        assert!(e("AccessDenied", "no")
            .to_string()
            .ends_with("or set the environment's role-arn"));
    }

    #[test]
    fn traits_are_dyn_compatible() {
        fn takes(_: Option<Arc<dyn CloudFormation>>, _: Option<Arc<dyn ClientFactory>>) {}
        takes(None, None);
    }
}
