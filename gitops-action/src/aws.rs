//! AWS configuration flags. The loading itself (standard credential chain,
//! retries, timeouts, endpoint and region overrides, role chaining) lives in
//! `gitops_core::aws::sdk`.

pub use gitops_core::aws::sdk::credentials_present;
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

impl AwsArgs {
    /// Whether the endpoint is a local emulator (poll fast there).
    pub fn is_local(&self) -> bool {
        gitops_core::aws::sdk::is_local_endpoint(self.endpoint_url.as_deref())
    }
}

/// The per-environment client factory over the standard credential chain,
/// with standard retries with backoff and a timeout on every call.
pub async fn factory(args: &AwsArgs) -> SdkFactory {
    SdkFactory::from_env(args.endpoint_url.as_deref(), args.region.as_deref()).await
}
