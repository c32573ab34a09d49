//! AWS configuration from the standard chain, with endpoint and region overrides.

use std::time::Duration;

use aws_config::{retry::RetryConfig, timeout::TimeoutConfig, BehaviorVersion, Region, SdkConfig};

/// Flags shared by every command that talks to AWS.
#[derive(Debug, Clone, clap::Args)]
pub struct AwsArgs {
    /// Send every AWS call to this endpoint (for example a local emulator).
    /// Defaults to AWS_ENDPOINT_URL when set.
    #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Region to use when none is configured. Defaults to AWS_REGION, the profile, then us-east-1.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

/// Loads the SDK configuration: credentials from the standard chain, standard
/// retries with backoff, and a timeout on every call.
pub async fn load(args: &AwsArgs) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(120))
                .build(),
        );
    if let Some(url) = &args.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(r) = &args.region {
        loader = loader.region(Region::new(r.clone()));
    }
    let cfg = loader.load().await;
    if cfg.region().is_none() {
        return cfg
            .to_builder()
            .region(Region::from_static("us-east-1"))
            .build();
    }
    cfg
}
