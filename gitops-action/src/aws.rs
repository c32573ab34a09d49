//! AWS configuration flags. The loading itself (standard credential chain,
//! retries, timeouts, endpoint and region overrides, role chaining) lives in
//! `gitops_core::aws::sdk`.

use gitops_core::aws::sdk::SdkFactory;

/// Flags shared by every command that talks to AWS.
#[derive(Debug, Clone, clap::Args)]
pub struct AwsArgs {
    /// Send every AWS call to this endpoint (for example a local emulator).
    /// Defaults to AWS_ENDPOINT_URL when set.
    #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Region to use instead of the configured one (AWS_REGION, then the
    /// profile, then us-east-1). An environment's own region still wins.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

/// The per-environment client factory over the standard credential chain,
/// with standard retries with backoff and a timeout on every call.
pub async fn factory(args: &AwsArgs) -> SdkFactory {
    SdkFactory::from_env(args.endpoint_url.as_deref(), args.region.as_deref()).await
}

/// Whether AWS credentials are visible in the environment: an access key,
/// a profile, a web identity token (GitHub OIDC) or container credentials.
/// Their values are never printed.
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
