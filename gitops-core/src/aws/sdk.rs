//! The real implementations of the [`aws`](super) traits, over the AWS SDK
//! for Rust.
//!
//! [`load_config`] reads the standard credential chain (environment
//! variables, profiles, SSO, web identity, ...) and sets the standard retry
//! with backoff (it retries throttling) and a timeout on every call.
//! [`SdkFactory`] turns that configuration into per-environment clients:
//! the environment's region, and its role when it sets `role-arn`, assumed
//! with aws-config's assume-role provider on top of the base credentials.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_cloudformation as cfn;
use aws_sdk_cloudformation::config::http::HttpResponse;
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudformation::operation::RequestId;
use aws_sdk_cloudformation::primitives::{DateTime, DateTimeFormat};
use aws_sdk_codepipeline as cp;

use super::{
    AccessAnalyzer, AccessCheck, ActionState, AwsClients, AwsError, AwsErrorKind, AwsResult,
    BoxFuture, ChangeSet, ChangeSetKind, ChangeSetRef, ChangeSetRequest, ChangeSetSummary,
    ClientFactory, CloudFormation, CodePipeline, DriftDetection, ExecutedRevision, Execution,
    ExecutionSummary, FindingType, Identity, Pipeline, PolicyFinding, PolicyKind, PolicyPathStep,
    PropertyDifference, ResourceChange, ResourceDrift, RevisionKind, SourceAction, Stack,
    StackEvent, StageState, StartExecution, Sts, TemplateSource, S3,
};

/// How long to wait for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one attempt of a call may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a call may take, retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts per call (the first one included), with exponential backoff.
pub const MAX_ATTEMPTS: u32 = 5;
/// The region when none is configured anywhere.
pub const FALLBACK_REGION: &str = "us-east-1";
/// The session name of assumed roles (it shows in CloudTrail).
pub const SESSION_NAME: &str = "gitops";

const CFN: &str = "CloudFormation";
const CP: &str = "CodePipeline";
const STS: &str = "STS";
const S3_SERVICE: &str = "S3";
const ACCESS_ANALYZER: &str = "AccessAnalyzer";

/// Most pages of stack events read looking for the last one seen.
const MAX_EVENT_PAGES: usize = 20;

/// Loads the base configuration: credentials from the standard chain, the
/// standard retry ([`MAX_ATTEMPTS`] attempts with backoff) and timeouts.
///
/// `endpoint_url` sends every call (STS included) to another endpoint, such
/// as a local emulator; without it, aws-config honours `AWS_ENDPOINT_URL`.
/// `region` overrides the configured region (`AWS_REGION`, the profile),
/// which falls back to [`FALLBACK_REGION`].
pub async fn load_config(endpoint_url: Option<&str>, region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config());
    if let Some(url) = endpoint_url.filter(|u| !u.is_empty()) {
        loader = loader.endpoint_url(url);
    }
    if let Some(r) = region.filter(|r| !r.is_empty()) {
        loader = loader.region(Region::new(r.to_string()));
    }
    let cfg = loader.load().await;
    if cfg.region().is_none() {
        return cfg
            .to_builder()
            .region(Region::from_static(FALLBACK_REGION))
            .build();
    }
    cfg
}

/// The standard retry with [`MAX_ATTEMPTS`] attempts, or as many as the
/// standard `AWS_MAX_ATTEMPTS` variable says (at least 1).
pub fn retry_config() -> RetryConfig {
    let attempts = std::env::var("AWS_MAX_ATTEMPTS")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(MAX_ATTEMPTS);
    RetryConfig::standard().with_max_attempts(attempts)
}

/// Connect, attempt and operation timeouts.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// Turns an SDK error into an [`AwsError`]: the service's code, message
/// and request id when it answered; otherwise the messages of the chain of
/// causes, on one line. Never the SDK's debug output: it holds whole
/// responses and request internals.
pub fn aws_error<E>(
    service: &'static str,
    operation: &'static str,
    err: SdkError<E, HttpResponse>,
) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let request_id = err.request_id().map(str::to_string);
    let status = err.raw_response().map(|r| r.status().as_u16());
    let without_body = || match status {
        Some(s) => format!("HTTP {s} with no AWS error in the answer"),
        None => "no AWS error in the answer".to_string(),
    };
    let e = match &err {
        SdkError::ServiceError(_) if err.code().is_some() || err.message().is_some() => {
            AwsError::from_service(
                service,
                operation,
                err.code().map(str::to_string),
                err.message().map(str::to_string).unwrap_or_default(),
            )
        }
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            AwsError::new(service, operation, AwsErrorKind::Other, without_body())
        }
        SdkError::TimeoutError(_) => AwsError::new(
            service,
            operation,
            AwsErrorKind::Timeout,
            format!("no answer within {} s", OPERATION_TIMEOUT.as_secs()),
        ),
        SdkError::DispatchFailure(d) if d.is_timeout() => {
            AwsError::new(service, operation, AwsErrorKind::Timeout, causes(&err))
        }
        _ if no_credentials(&err) => AwsError::new(
            service,
            operation,
            AwsErrorKind::NoCredentials,
            "no AWS credentials were found",
        ),
        SdkError::DispatchFailure(_) => {
            AwsError::new(service, operation, AwsErrorKind::Connection, causes(&err))
        }
        _ => AwsError::new(service, operation, AwsErrorKind::Other, causes(&err)),
    };
    e.with_request_id(request_id)
}

/// The messages of `err`'s causes joined by `: `, each once, without the
/// SDK's own generic words ("dispatch failure", "other").
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = err.source();
    while let Some(e) = next {
        let text = e.to_string();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let generic = matches!(
            text.as_str(),
            "" | "dispatch failure" | "other" | "io error" | "io" | "unhandled error"
        );
        if !generic && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    if parts.is_empty() {
        err.to_string()
    } else {
        parts.join(": ")
    }
}

/// Whether the call failed because no credentials could be found.
fn no_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(c) = e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
        {
            return matches!(
                c,
                aws_credential_types::provider::error::CredentialsError::CredentialsNotLoaded(_)
            );
        }
        next = e.source();
    }
    false
}

fn missing(service: &'static str, operation: &'static str, what: &str) -> AwsError {
    AwsError::new(
        service,
        operation,
        AwsErrorKind::Other,
        format!("the response has no {what}"),
    )
}

fn time(t: Option<&DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(DateTimeFormat::DateTime).ok())
}

fn string(s: Option<&str>) -> String {
    s.unwrap_or_default().to_string()
}

fn opt(s: Option<&str>) -> Option<String> {
    s.map(str::to_string)
}

// ---------------------------------------------------------------------------
// Factory
// ---------------------------------------------------------------------------

/// Whether AWS credentials are visible in the process environment: an
/// access key, a profile, a web identity token (GitHub OIDC) or container
/// credentials. Their values are never read beyond "set and not empty".
/// Commands whose AWS checks are optional run them only then.
pub fn credentials_present() -> bool {
    let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ]
    .iter()
    .any(|v| set(v))
        || std::env::vars_os().any(|(k, v)| {
            k.to_string_lossy()
                .starts_with("AWS_CONTAINER_CREDENTIALS_")
                && !v.is_empty()
        })
}

/// Whether `endpoint_url` is a local emulator (a loopback address): polls
/// are fast there, and what emulators lack is left out.
pub fn is_local_endpoint(endpoint_url: Option<&str>) -> bool {
    endpoint_url.is_some_and(|u| u.contains("://127.") || u.contains("://localhost"))
}

/// Builds per-environment clients from a base configuration, memoised per
/// (region, role).
#[derive(Debug)]
pub struct SdkFactory {
    base: SdkConfig,
    cache: Mutex<HashMap<(String, Option<String>), AwsClients>>,
}

impl SdkFactory {
    /// A factory over `base` (see [`load_config`]).
    pub fn new(base: SdkConfig) -> Self {
        // The assume-role provider needs a time source; a configuration made
        // by hand (rather than by `load_config`) may lack one.
        let base = if base.time_source().is_none() {
            let mut builder = base.into_builder();
            builder.set_time_source(Some(Default::default()));
            builder.build()
        } else {
            base
        };
        Self {
            base,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A factory over [`load_config`]`(endpoint_url, region)`.
    pub async fn from_env(endpoint_url: Option<&str>, region: Option<&str>) -> Self {
        Self::new(load_config(endpoint_url, region).await)
    }

    /// The base configuration.
    pub fn base(&self) -> &SdkConfig {
        &self.base
    }

    /// The base configuration's region.
    pub fn default_region(&self) -> Option<&str> {
        self.base.region().map(|r| r.as_ref())
    }

    /// The custom endpoint every call goes to, if any.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.base.endpoint_url()
    }

    /// `gitops whoami`: who the credentials belong to, in the default
    /// region, with the endpoint.
    pub async fn whoami(&self) -> Result<super::WhoAmI, super::WhoAmIError> {
        use super::{ClientFactory, WhoAmIError};
        let region = self.default_region().unwrap_or_default().to_string();
        let clients = self.clients(&region, None).await;
        let clients = clients.map_err(WhoAmIError::Clients)?;
        let id = clients.sts.caller_identity().await;
        let id = id.map_err(WhoAmIError::Identity)?;
        Ok(super::WhoAmI::new(id, &region, self.endpoint_url()))
    }

    /// The configuration for `region` (the base region when empty), with
    /// `role_arn` assumed on top of the base credentials when given.
    pub async fn config_for(&self, region: &str, role_arn: Option<&str>) -> SdkConfig {
        let region = if region.is_empty() {
            self.base
                .region()
                .cloned()
                .unwrap_or(Region::from_static(FALLBACK_REGION))
        } else {
            Region::new(region.to_string())
        };
        let mut builder = self.base.to_builder().region(region.clone());
        if let Some(arn) = role_arn.filter(|a| !a.is_empty()) {
            let provider = aws_config::sts::AssumeRoleProvider::builder(arn)
                .session_name(SESSION_NAME)
                .region(region)
                .configure(&self.base)
                .build()
                .await;
            builder = builder.credentials_provider(SharedCredentialsProvider::new(provider));
        }
        builder.build()
    }
}

/// The real clients for one configuration.
pub fn clients_for(config: &SdkConfig) -> AwsClients {
    AwsClients {
        cloudformation: std::sync::Arc::new(SdkCloudFormation::new(cfn::Client::new(config))),
        codepipeline: std::sync::Arc::new(SdkCodePipeline::new(cp::Client::new(config))),
        sts: std::sync::Arc::new(SdkSts::new(aws_sdk_sts::Client::new(config))),
        s3: std::sync::Arc::new(SdkS3::from_config(config)),
        access_analyzer: std::sync::Arc::new(SdkAccessAnalyzer::new(
            aws_sdk_accessanalyzer::Client::new(config),
        )),
    }
}

impl ClientFactory for SdkFactory {
    fn clients<'a>(
        &'a self,
        region: &'a str,
        role_arn: Option<&'a str>,
    ) -> BoxFuture<'a, AwsResult<AwsClients>> {
        Box::pin(async move {
            let key = (region.to_string(), role_arn.map(str::to_string));
            let cached = {
                let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                cache.get(&key).cloned()
            };
            if let Some(clients) = cached {
                return Ok(clients);
            }
            let config = self.config_for(region, role_arn).await;
            let clients = clients_for(&config);
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            Ok(cache.entry(key).or_insert(clients).clone())
        })
    }
}

// ---------------------------------------------------------------------------
// CloudFormation
// ---------------------------------------------------------------------------

/// [`CloudFormation`] over `aws-sdk-cloudformation`.
#[derive(Debug, Clone)]
pub struct SdkCloudFormation {
    client: cfn::Client,
}

impl SdkCloudFormation {
    /// Wraps a client.
    pub fn new(client: cfn::Client) -> Self {
        Self { client }
    }
}

fn map_stack(s: &cfn::types::Stack) -> Stack {
    Stack {
        name: string(s.stack_name()),
        id: string(s.stack_id()),
        status: s
            .stack_status()
            .map(|x| x.as_str().to_string())
            .unwrap_or_default(),
        status_reason: opt(s.stack_status_reason()),
        parameters: s
            .parameters()
            .iter()
            .filter_map(|p| Some((p.parameter_key()?.to_string(), string(p.parameter_value()))))
            .collect(),
        tags: s
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), string(t.value()))))
            .collect(),
        outputs: s
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_string(), string(o.output_value()))))
            .collect(),
        termination_protection: s.enable_termination_protection(),
        creation_time: time(s.creation_time()),
        last_updated_time: time(s.last_updated_time()),
    }
}

fn map_change(c: &cfn::types::Change) -> Option<ResourceChange> {
    let rc = c.resource_change()?;
    Some(ResourceChange {
        action: rc
            .action()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default(),
        logical_id: string(rc.logical_resource_id()),
        physical_id: opt(rc.physical_resource_id()),
        resource_type: string(rc.resource_type()),
        replacement: rc.replacement().map(|r| r.as_str().to_string()),
        scope: rc.scope().iter().map(|s| s.as_str().to_string()).collect(),
    })
}

fn map_event(e: &cfn::types::StackEvent) -> StackEvent {
    StackEvent {
        event_id: string(e.event_id()),
        timestamp: time(e.timestamp()).unwrap_or_default(),
        logical_id: string(e.logical_resource_id()),
        resource_type: string(e.resource_type()),
        status: e
            .resource_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        reason: opt(e.resource_status_reason()),
    }
}

fn map_drift(d: &cfn::types::StackResourceDrift) -> ResourceDrift {
    ResourceDrift {
        logical_id: string(d.logical_resource_id()),
        resource_type: string(d.resource_type()),
        status: d
            .stack_resource_drift_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        differences: d
            .property_differences()
            .iter()
            .map(|p| PropertyDifference {
                path: string(p.property_path()),
                expected: string(p.expected_value()),
                actual: string(p.actual_value()),
                kind: p
                    .difference_type()
                    .map(|k| k.as_str().to_string())
                    .unwrap_or_default(),
            })
            .collect(),
    }
}

impl CloudFormation for SdkCloudFormation {
    fn describe_stack<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<Option<Stack>>> {
        Box::pin(async move {
            match self.client.describe_stacks().stack_name(name).send().await {
                Ok(out) => Ok(out.stacks().first().map(map_stack)),
                Err(e) => {
                    let err = aws_error(CFN, "DescribeStacks", e);
                    if err.is_not_found() {
                        Ok(None)
                    } else {
                        Err(err)
                    }
                }
            }
        })
    }

    fn list_stacks(&self) -> BoxFuture<'_, AwsResult<Vec<Stack>>> {
        Box::pin(async move {
            let mut stacks = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let out = self
                    .client
                    .describe_stacks()
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| aws_error(CFN, "DescribeStacks", e))?;
                stacks.extend(
                    out.stacks()
                        .iter()
                        .map(map_stack)
                        .filter(|s| !s.is_deleted()),
                );
                match out.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
            Ok(stacks)
        })
    }

    fn list_stacks_with_tag<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, AwsResult<Vec<Stack>>> {
        Box::pin(async move {
            let mut stacks = self.list_stacks().await?;
            stacks.retain(|s| s.tags.get(key).map(String::as_str) == Some(value));
            Ok(stacks)
        })
    }

    fn create_change_set(
        &self,
        request: ChangeSetRequest,
    ) -> BoxFuture<'_, AwsResult<ChangeSetRef>> {
        Box::pin(async move {
            let kind = match request.kind {
                ChangeSetKind::Create => cfn::types::ChangeSetType::Create,
                ChangeSetKind::Update => cfn::types::ChangeSetType::Update,
            };
            let mut call = self
                .client
                .create_change_set()
                .stack_name(&request.stack_name)
                .change_set_name(&request.change_set_name)
                .change_set_type(kind);
            call = match request.template {
                TemplateSource::Body(body) => call.template_body(body),
                TemplateSource::Url(url) => call.template_url(url),
            };
            for (k, v) in request.parameters {
                call = call.parameters(
                    cfn::types::Parameter::builder()
                        .parameter_key(k)
                        .parameter_value(v)
                        .build(),
                );
            }
            for (k, v) in request.tags {
                call = call.tags(cfn::types::Tag::builder().key(k).value(v).build());
            }
            for c in &request.capabilities {
                call = call.capabilities(cfn::types::Capability::from(c.as_str()));
            }
            if let Some(d) = request.description {
                call = call.description(d);
            }
            let out = call
                .send()
                .await
                .map_err(|e| aws_error(CFN, "CreateChangeSet", e))?;
            Ok(ChangeSetRef {
                id: out
                    .id()
                    .ok_or_else(|| missing(CFN, "CreateChangeSet", "change set id"))?
                    .to_string(),
                name: request.change_set_name,
                stack_id: opt(out.stack_id()),
            })
        })
    }

    fn describe_change_set<'a>(
        &'a self,
        stack_name: &'a str,
        change_set_name: &'a str,
    ) -> BoxFuture<'a, AwsResult<ChangeSet>> {
        Box::pin(async move {
            let mut result: Option<ChangeSet> = None;
            let mut token: Option<String> = None;
            loop {
                let out = self
                    .client
                    .describe_change_set()
                    .stack_name(stack_name)
                    .change_set_name(change_set_name)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| aws_error(CFN, "DescribeChangeSet", e))?;
                let cs = result.get_or_insert_with(|| ChangeSet {
                    id: string(out.change_set_id()),
                    name: out.change_set_name().unwrap_or(change_set_name).to_string(),
                    status: out
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    execution_status: out
                        .execution_status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    status_reason: opt(out.status_reason()),
                    changes: Vec::new(),
                });
                cs.changes
                    .extend(out.changes().iter().filter_map(map_change));
                match out.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
            result.ok_or_else(|| missing(CFN, "DescribeChangeSet", "change set"))
        })
    }

    fn execute_change_set<'a>(
        &'a self,
        stack_name: &'a str,
        change_set_name: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>> {
        Box::pin(async move {
            self.client
                .execute_change_set()
                .stack_name(stack_name)
                .change_set_name(change_set_name)
                .send()
                .await
                .map_err(|e| aws_error(CFN, "ExecuteChangeSet", e))?;
            Ok(())
        })
    }

    fn delete_change_set<'a>(
        &'a self,
        stack_name: &'a str,
        change_set_name: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>> {
        Box::pin(async move {
            self.client
                .delete_change_set()
                .stack_name(stack_name)
                .change_set_name(change_set_name)
                .send()
                .await
                .map_err(|e| aws_error(CFN, "DeleteChangeSet", e))?;
            Ok(())
        })
    }

    fn list_change_sets<'a>(
        &'a self,
        stack_name: &'a str,
    ) -> BoxFuture<'a, AwsResult<Vec<ChangeSetSummary>>> {
        Box::pin(async move {
            let mut all = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let out = self
                    .client
                    .list_change_sets()
                    .stack_name(stack_name)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| aws_error(CFN, "ListChangeSets", e))?;
                // moto ignores StackName here: keep only this stack's own,
                // or a sweep of one stack deletes another's change set.
                let own = |s: &&aws_sdk_cloudformation::types::ChangeSetSummary| match (
                    s.stack_name(),
                    s.stack_id(),
                ) {
                    (None, None) => true,
                    (name, id) => name == Some(stack_name) || id == Some(stack_name),
                };
                all.extend(out.summaries().iter().filter(own).map(|s| {
                    ChangeSetSummary {
                        name: string(s.change_set_name()),
                        id: string(s.change_set_id()),
                        status: s
                            .status()
                            .map(|x| x.as_str().to_string())
                            .unwrap_or_default(),
                        execution_status: s
                            .execution_status()
                            .map(|x| x.as_str().to_string())
                            .unwrap_or_default(),
                        creation_time: time(s.creation_time()),
                    }
                }));
                match out.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
            Ok(all)
        })
    }

    fn delete_stack<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<()>> {
        Box::pin(async move {
            self.client
                .delete_stack()
                .stack_name(name)
                .send()
                .await
                .map_err(|e| aws_error(CFN, "DeleteStack", e))?;
            Ok(())
        })
    }

    fn update_termination_protection<'a>(
        &'a self,
        name: &'a str,
        enabled: bool,
    ) -> BoxFuture<'a, AwsResult<()>> {
        Box::pin(async move {
            self.client
                .update_termination_protection()
                .stack_name(name)
                .enable_termination_protection(enabled)
                .send()
                .await
                .map_err(|e| aws_error(CFN, "UpdateTerminationProtection", e))?;
            Ok(())
        })
    }

    fn stack_events<'a>(
        &'a self,
        name: &'a str,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, AwsResult<Vec<StackEvent>>> {
        Box::pin(async move {
            let mut events = Vec::new();
            let mut token: Option<String> = None;
            for _ in 0..MAX_EVENT_PAGES {
                let out = self
                    .client
                    .describe_stack_events()
                    .stack_name(name)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| aws_error(CFN, "DescribeStackEvents", e))?;
                for e in out.stack_events() {
                    if after.is_some() && e.event_id() == after {
                        return Ok(events);
                    }
                    events.push(map_event(e));
                }
                match (after, out.next_token()) {
                    (Some(_), Some(t)) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
            Ok(events)
        })
    }

    fn get_template<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<String>> {
        Box::pin(async move {
            let out = self
                .client
                .get_template()
                .stack_name(name)
                .template_stage(cfn::types::TemplateStage::Original)
                .send()
                .await
                .map_err(|e| aws_error(CFN, "GetTemplate", e))?;
            out.template_body()
                .map(str::to_string)
                .ok_or_else(|| missing(CFN, "GetTemplate", "template body"))
        })
    }

    fn detect_stack_drift<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<String>> {
        Box::pin(async move {
            let out = self
                .client
                .detect_stack_drift()
                .stack_name(name)
                .send()
                .await
                .map_err(|e| aws_error(CFN, "DetectStackDrift", e))?;
            out.stack_drift_detection_id()
                .map(str::to_string)
                .ok_or_else(|| missing(CFN, "DetectStackDrift", "detection id"))
        })
    }

    fn describe_drift_detection<'a>(
        &'a self,
        detection_id: &'a str,
    ) -> BoxFuture<'a, AwsResult<DriftDetection>> {
        Box::pin(async move {
            let out = self
                .client
                .describe_stack_drift_detection_status()
                .stack_drift_detection_id(detection_id)
                .send()
                .await
                .map_err(|e| aws_error(CFN, "DescribeStackDriftDetectionStatus", e))?;
            Ok(DriftDetection {
                status: out
                    .detection_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                stack_drift_status: out.stack_drift_status().map(|s| s.as_str().to_string()),
                reason: opt(out.detection_status_reason()),
                drifted_resources: out.drifted_stack_resource_count(),
            })
        })
    }

    fn describe_resource_drifts<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, AwsResult<Vec<ResourceDrift>>> {
        Box::pin(async move {
            let mut all = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let out = self
                    .client
                    .describe_stack_resource_drifts()
                    .stack_name(name)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| aws_error(CFN, "DescribeStackResourceDrifts", e))?;
                all.extend(out.stack_resource_drifts().iter().map(map_drift));
                match out.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
            Ok(all)
        })
    }

    fn list_stack_resources<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<Vec<String>>> {
        Box::pin(async move {
            let mut all = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let out = self
                    .client
                    .list_stack_resources()
                    .stack_name(name)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| aws_error(CFN, "ListStackResources", e))?;
                all.extend(
                    out.stack_resource_summaries()
                        .iter()
                        .map(|r| string(r.logical_resource_id())),
                );
                match out.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
            Ok(all)
        })
    }
}

// ---------------------------------------------------------------------------
// CodePipeline
// ---------------------------------------------------------------------------

/// [`CodePipeline`] over `aws-sdk-codepipeline`.
#[derive(Debug, Clone)]
pub struct SdkCodePipeline {
    client: cp::Client,
}

impl SdkCodePipeline {
    /// Wraps a client.
    pub fn new(client: cp::Client) -> Self {
        Self { client }
    }
}

fn map_pipeline(p: &cp::types::PipelineDeclaration) -> Pipeline {
    Pipeline {
        name: p.name().to_string(),
        version: p.version(),
        pipeline_type: p
            .pipeline_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_else(|| "V1".to_string()),
        variables: p.variables().iter().map(|v| v.name().to_string()).collect(),
        source_actions: p
            .stages()
            .iter()
            .flat_map(|s| s.actions())
            .filter_map(|a| {
                let id = a.action_type_id()?;
                (id.category() == &cp::types::ActionCategory::Source).then(|| SourceAction {
                    name: a.name().to_string(),
                    provider: id.provider().to_string(),
                    configuration: a
                        .configuration()
                        .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default(),
                })
            })
            .collect(),
    }
}

fn map_action_state(a: &cp::types::ActionState) -> ActionState {
    let latest = a.latest_execution();
    ActionState {
        name: string(a.action_name()),
        status: latest
            .and_then(|e| e.status())
            .map(|s| s.as_str().to_string()),
        execution_id: latest.and_then(|e| opt(e.action_execution_id())),
        summary: latest.and_then(|e| opt(e.summary())),
        error: latest
            .and_then(|e| e.error_details())
            .and_then(|d| opt(d.message())),
        external_url: latest
            .and_then(|e| opt(e.external_execution_url()))
            .or_else(|| opt(a.entity_url())),
    }
}

fn revision_type(kind: RevisionKind) -> cp::types::SourceRevisionType {
    match kind {
        RevisionKind::CommitId => cp::types::SourceRevisionType::CommitId,
        RevisionKind::ImageDigest => cp::types::SourceRevisionType::ImageDigest,
        RevisionKind::S3ObjectKey => cp::types::SourceRevisionType::S3ObjectKey,
        RevisionKind::S3ObjectVersionId => cp::types::SourceRevisionType::S3ObjectVersionId,
    }
}

fn build_error(operation: &'static str, e: impl std::fmt::Display) -> AwsError {
    AwsError::new(
        CP,
        operation,
        AwsErrorKind::Other,
        format!("invalid request: {e}"),
    )
}

impl CodePipeline for SdkCodePipeline {
    fn get_pipeline<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<Option<Pipeline>>> {
        Box::pin(async move {
            match self.client.get_pipeline().name(name).send().await {
                Ok(out) => out
                    .pipeline()
                    .map(|p| Some(map_pipeline(p)))
                    .ok_or_else(|| missing(CP, "GetPipeline", "pipeline")),
                Err(e) => {
                    let typed = e
                        .as_service_error()
                        .is_some_and(|s| s.is_pipeline_not_found_exception());
                    let err = aws_error(CP, "GetPipeline", e);
                    if typed || err.code.as_deref() == Some("PipelineNotFoundException") {
                        Ok(None)
                    } else {
                        Err(err)
                    }
                }
            }
        })
    }

    fn start_execution(&self, request: StartExecution) -> BoxFuture<'_, AwsResult<String>> {
        const OP: &str = "StartPipelineExecution";
        Box::pin(async move {
            let mut call = self.client.start_pipeline_execution().name(&request.name);
            for r in request.source_revisions {
                call = call.source_revisions(
                    cp::types::SourceRevisionOverride::builder()
                        .action_name(r.action_name)
                        .revision_type(revision_type(r.kind))
                        .revision_value(r.value)
                        .build()
                        .map_err(|e| build_error(OP, e))?,
                );
            }
            for (k, v) in request.variables {
                call = call.variables(
                    cp::types::PipelineVariable::builder()
                        .name(k)
                        .value(v)
                        .build()
                        .map_err(|e| build_error(OP, e))?,
                );
            }
            if let Some(t) = request.client_request_token {
                call = call.client_request_token(t);
            }
            let out = call.send().await.map_err(|e| aws_error(CP, OP, e))?;
            out.pipeline_execution_id()
                .map(str::to_string)
                .ok_or_else(|| missing(CP, OP, "execution id"))
        })
    }

    fn get_execution<'a>(
        &'a self,
        name: &'a str,
        execution_id: &'a str,
    ) -> BoxFuture<'a, AwsResult<Execution>> {
        Box::pin(async move {
            let out = self
                .client
                .get_pipeline_execution()
                .pipeline_name(name)
                .pipeline_execution_id(execution_id)
                .send()
                .await
                .map_err(|e| aws_error(CP, "GetPipelineExecution", e))?;
            let x = out
                .pipeline_execution()
                .ok_or_else(|| missing(CP, "GetPipelineExecution", "execution"))?;
            Ok(Execution {
                id: x
                    .pipeline_execution_id()
                    .unwrap_or(execution_id)
                    .to_string(),
                status: x
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                status_summary: opt(x.status_summary()),
                pipeline_version: x.pipeline_version(),
                artifact_revisions: x
                    .artifact_revisions()
                    .iter()
                    .map(|r| ExecutedRevision {
                        name: string(r.name()),
                        revision_id: opt(r.revision_id()),
                        summary: opt(r.revision_summary()),
                    })
                    .collect(),
                variables: x
                    .variables()
                    .iter()
                    .filter_map(|v| Some((v.name()?.to_string(), string(v.resolved_value()))))
                    .collect(),
            })
        })
    }

    fn stage_states<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AwsResult<Vec<StageState>>> {
        Box::pin(async move {
            let out = self
                .client
                .get_pipeline_state()
                .name(name)
                .send()
                .await
                .map_err(|e| aws_error(CP, "GetPipelineState", e))?;
            Ok(out
                .stage_states()
                .iter()
                .map(|s| StageState {
                    name: string(s.stage_name()),
                    status: s
                        .latest_execution()
                        .map(|e| e.status().as_str().to_string()),
                    execution_id: s
                        .latest_execution()
                        .map(|e| e.pipeline_execution_id().to_string()),
                    actions: s.action_states().iter().map(map_action_state).collect(),
                })
                .collect())
        })
    }

    fn list_executions<'a>(
        &'a self,
        name: &'a str,
        max: usize,
    ) -> BoxFuture<'a, AwsResult<Vec<ExecutionSummary>>> {
        Box::pin(async move {
            let mut all = Vec::new();
            let mut token: Option<String> = None;
            while all.len() < max {
                let page = i32::try_from((max - all.len()).min(100)).unwrap_or(100);
                let out = self
                    .client
                    .list_pipeline_executions()
                    .pipeline_name(name)
                    .max_results(page)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| aws_error(CP, "ListPipelineExecutions", e))?;
                all.extend(out.pipeline_execution_summaries().iter().map(|s| {
                    ExecutionSummary {
                        id: string(s.pipeline_execution_id()),
                        status: s
                            .status()
                            .map(|x| x.as_str().to_string())
                            .unwrap_or_default(),
                        status_summary: opt(s.status_summary()),
                        start_time: time(s.start_time()),
                        last_update_time: time(s.last_update_time()),
                        source_revisions: s
                            .source_revisions()
                            .iter()
                            .map(|r| ExecutedRevision {
                                name: r.action_name().to_string(),
                                revision_id: opt(r.revision_id()),
                                summary: opt(r.revision_summary()),
                            })
                            .collect(),
                    }
                }));
                match out.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
            all.truncate(max);
            Ok(all)
        })
    }
}

// ---------------------------------------------------------------------------
// STS
// ---------------------------------------------------------------------------

/// [`Sts`] over `aws-sdk-sts`.
#[derive(Debug, Clone)]
pub struct SdkSts {
    client: aws_sdk_sts::Client,
}

impl SdkSts {
    /// Wraps a client.
    pub fn new(client: aws_sdk_sts::Client) -> Self {
        Self { client }
    }
}

impl Sts for SdkSts {
    fn caller_identity(&self) -> BoxFuture<'_, AwsResult<Identity>> {
        Box::pin(async move {
            let out = self
                .client
                .get_caller_identity()
                .send()
                .await
                .map_err(|e| aws_error(STS, "GetCallerIdentity", e))?;
            Ok(Identity {
                account: string(out.account()),
                arn: string(out.arn()),
                user_id: string(out.user_id()),
            })
        })
    }
}

// ---------------------------------------------------------------------------
// S3
// ---------------------------------------------------------------------------

/// [`S3`] over `aws-sdk-s3`.
#[derive(Debug, Clone)]
pub struct SdkS3 {
    client: aws_sdk_s3::Client,
    region: String,
    endpoint: Option<String>,
}

impl SdkS3 {
    /// Wraps a client whose region is `region`; `endpoint` is the custom
    /// endpoint it sends calls to, if any (URLs then use path style).
    pub fn new(client: aws_sdk_s3::Client, region: &str, endpoint: Option<&str>) -> Self {
        Self {
            client,
            region: region.to_string(),
            endpoint: endpoint.map(str::to_string),
        }
    }

    /// A client for `config`, path style when it has a custom endpoint (as
    /// local emulators need).
    pub fn from_config(config: &SdkConfig) -> Self {
        let endpoint = config.endpoint_url();
        let builder =
            aws_sdk_s3::config::Builder::from(config).force_path_style(endpoint.is_some());
        Self::new(
            aws_sdk_s3::Client::from_conf(builder.build()),
            config
                .region()
                .map(|r| r.as_ref())
                .unwrap_or(FALLBACK_REGION),
            endpoint,
        )
    }
}

/// The URL CloudFormation reads an object from: virtual-hosted style on AWS
/// (path style for bucket names with dots, which break TLS names), path style
/// under a custom endpoint.
pub fn object_url(region: &str, endpoint: Option<&str>, bucket: &str, key: &str) -> String {
    let key = encode_key(key);
    if let Some(e) = endpoint {
        return format!("{}/{bucket}/{key}", e.trim_end_matches('/'));
    }
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    if bucket.contains('.') {
        format!("https://s3.{region}.{domain}/{bucket}/{key}")
    } else {
        format!("https://{bucket}.s3.{region}.{domain}/{key}")
    }
}

/// Percent-encodes a key for a URL path, keeping `/`.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl S3 for SdkS3 {
    fn put_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Vec<u8>,
    ) -> BoxFuture<'a, AwsResult<String>> {
        Box::pin(async move {
            self.client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(aws_sdk_s3::primitives::ByteStream::from(body))
                .send()
                .await
                .map_err(|e| aws_error(S3_SERVICE, "PutObject", e))?;
            Ok(object_url(
                &self.region,
                self.endpoint.as_deref(),
                bucket,
                key,
            ))
        })
    }
}

// ---------------------------------------------------------------------------
// IAM Access Analyzer
// ---------------------------------------------------------------------------

/// [`AccessAnalyzer`] over `aws-sdk-accessanalyzer`.
#[derive(Debug, Clone)]
pub struct SdkAccessAnalyzer {
    client: aws_sdk_accessanalyzer::Client,
}

impl SdkAccessAnalyzer {
    /// Wraps a client.
    pub fn new(client: aws_sdk_accessanalyzer::Client) -> Self {
        Self { client }
    }
}

/// ValidatePolicy's `policyType` for a kind of policy.
fn aa_policy_type(kind: &PolicyKind) -> aws_sdk_accessanalyzer::types::PolicyType {
    use aws_sdk_accessanalyzer::types::PolicyType;
    match kind {
        PolicyKind::Identity => PolicyType::IdentityPolicy,
        PolicyKind::Resource(_) | PolicyKind::RoleTrust => PolicyType::ResourcePolicy,
    }
}

/// ValidatePolicy's `validatePolicyResourceType`, for the resource types it
/// knows (others are validated as generic resource policies).
fn aa_resource_type(
    kind: &PolicyKind,
) -> Option<aws_sdk_accessanalyzer::types::ValidatePolicyResourceType> {
    use aws_sdk_accessanalyzer::types::ValidatePolicyResourceType as T;
    match kind {
        PolicyKind::Identity => None,
        PolicyKind::RoleTrust => Some(T::RoleTrust),
        PolicyKind::Resource(t) => match t.as_str() {
            "AWS::S3::Bucket" => Some(T::S3Bucket),
            "AWS::S3::AccessPoint" => Some(T::S3AccessPoint),
            "AWS::S3::MultiRegionAccessPoint" => Some(T::S3MultiRegionAccessPoint),
            "AWS::S3ObjectLambda::AccessPoint" => Some(T::S3ObjectLambdaAccessPoint),
            "AWS::DynamoDB::Table" => Some(T::DynamodbTable),
            _ => None,
        },
    }
}

/// The `policyType` of CheckNoNewAccess and CheckAccessNotGranted.
fn aa_check_type(kind: &PolicyKind) -> aws_sdk_accessanalyzer::types::AccessCheckPolicyType {
    use aws_sdk_accessanalyzer::types::AccessCheckPolicyType;
    match kind {
        PolicyKind::Identity => AccessCheckPolicyType::IdentityPolicy,
        PolicyKind::Resource(_) | PolicyKind::RoleTrust => AccessCheckPolicyType::ResourcePolicy,
    }
}

fn map_finding(f: &aws_sdk_accessanalyzer::types::ValidatePolicyFinding) -> PolicyFinding {
    use aws_sdk_accessanalyzer::types::PathElement;
    PolicyFinding {
        // A type this SDK does not know yet counts as a warning.
        finding_type: FindingType::parse(f.finding_type().as_str()).unwrap_or(FindingType::Warning),
        issue_code: f.issue_code().to_string(),
        details: f.finding_details().to_string(),
        learn_more_link: f.learn_more_link().to_string(),
        locations: f
            .locations()
            .iter()
            .map(|l| {
                l.path()
                    .iter()
                    .filter_map(|p| match p {
                        PathElement::Index(i) => {
                            Some(PolicyPathStep::Index(usize::try_from(*i).ok()?))
                        }
                        PathElement::Key(k) => Some(PolicyPathStep::Key(k.clone())),
                        PathElement::Value(v) => Some(PolicyPathStep::Value(v.clone())),
                        PathElement::Substring(s) => Some(PolicyPathStep::Substring {
                            start: usize::try_from(s.start()).unwrap_or(0),
                            length: usize::try_from(s.length()).unwrap_or(0),
                        }),
                        _ => None,
                    })
                    .collect()
            })
            .collect(),
    }
}

fn map_reasons(reasons: &[aws_sdk_accessanalyzer::types::ReasonSummary]) -> Vec<String> {
    reasons
        .iter()
        .map(|r| {
            let mut s = String::new();
            if let Some(i) = r.statement_index() {
                s.push_str(&format!("statement {i}"));
            }
            if let Some(id) = r.statement_id().filter(|id| !id.is_empty()) {
                s.push_str(&format!(" ({id})"));
            }
            if let Some(d) = r.description() {
                if !s.is_empty() {
                    s.push_str(": ");
                }
                s.push_str(d);
            }
            s.trim().to_string()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

impl AccessAnalyzer for SdkAccessAnalyzer {
    fn validate_policy<'a>(
        &'a self,
        document: &'a str,
        kind: &'a PolicyKind,
    ) -> BoxFuture<'a, AwsResult<Vec<PolicyFinding>>> {
        Box::pin(async move {
            let mut findings = Vec::new();
            let mut token: Option<String> = None;
            // Bounded, in case a service keeps handing out tokens.
            for _ in 0..100 {
                let out = self
                    .client
                    .validate_policy()
                    .policy_document(document)
                    .policy_type(aa_policy_type(kind))
                    .set_validate_policy_resource_type(aa_resource_type(kind))
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| aws_error(ACCESS_ANALYZER, "ValidatePolicy", e))?;
                findings.extend(out.findings().iter().map(map_finding));
                match out.next_token().filter(|t| !t.is_empty()) {
                    Some(t) => token = Some(t.to_string()),
                    None => break,
                }
            }
            Ok(findings)
        })
    }

    fn check_no_new_access<'a>(
        &'a self,
        new_document: &'a str,
        existing_document: &'a str,
        kind: &'a PolicyKind,
    ) -> BoxFuture<'a, AwsResult<AccessCheck>> {
        Box::pin(async move {
            let out = self
                .client
                .check_no_new_access()
                .new_policy_document(new_document)
                .existing_policy_document(existing_document)
                .policy_type(aa_check_type(kind))
                .send()
                .await
                .map_err(|e| aws_error(ACCESS_ANALYZER, "CheckNoNewAccess", e))?;
            let result = out
                .result()
                .ok_or_else(|| missing(ACCESS_ANALYZER, "CheckNoNewAccess", "result"))?;
            Ok(AccessCheck {
                passed: result.as_str() == "PASS",
                message: string(out.message()),
                reasons: map_reasons(out.reasons()),
            })
        })
    }

    fn check_access_not_granted<'a>(
        &'a self,
        document: &'a str,
        actions: &'a [String],
        kind: &'a PolicyKind,
    ) -> BoxFuture<'a, AwsResult<AccessCheck>> {
        Box::pin(async move {
            let access = aws_sdk_accessanalyzer::types::Access::builder()
                .set_actions(Some(actions.to_vec()))
                .build();
            let out = self
                .client
                .check_access_not_granted()
                .policy_document(document)
                .access(access)
                .policy_type(aa_check_type(kind))
                .send()
                .await
                .map_err(|e| aws_error(ACCESS_ANALYZER, "CheckAccessNotGranted", e))?;
            let result = out
                .result()
                .ok_or_else(|| missing(ACCESS_ANALYZER, "CheckAccessNotGranted", "result"))?;
            Ok(AccessCheck {
                passed: result.as_str() == "PASS",
                message: string(out.message()),
                reasons: map_reasons(out.reasons()),
            })
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "sdk_tests.rs"]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "sdk_access_tests.rs"]
pub(crate) mod access_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "sdk_pipeline_tests.rs"]
mod pipeline_tests;
