//! `gitops whoami`.

use std::process::ExitCode;

use anyhow::Context;
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata};
use serde::Serialize;

use crate::aws::{self, AwsArgs};
use crate::output::print_json;
use crate::{Format, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    aws: AwsArgs,
}

#[derive(Serialize)]
struct Identity {
    account: String,
    arn: String,
    user_id: String,
    region: String,
    endpoint: Option<String>,
}

pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let id = rt.block_on(async {
        let cfg = aws::load(&args.aws).await;
        let region = cfg.region().map(|r| r.to_string()).unwrap_or_default();
        let sts = aws_sdk_sts::Client::new(&cfg);
        let out = sts.get_caller_identity().send().await.map_err(|e| {
            let hint = match e.code() {
                Some("InvalidClientTokenId" | "SignatureDoesNotMatch") => {
                    "the access key is not valid; check AWS_ACCESS_KEY_ID / AWS_PROFILE"
                }
                Some("ExpiredToken") => "the session has expired; sign in again (aws sso login) or refresh the workflow's credentials",
                _ => "configure credentials (environment variables, AWS_PROFILE, SSO, or aws-actions/configure-aws-credentials) and try again",
            };
            anyhow::anyhow!("cannot resolve the AWS identity: {}; {hint}", DisplayErrorContext(&e))
        })?;
        anyhow::Ok(Identity {
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().unwrap_or_default().to_string(),
            user_id: out.user_id().unwrap_or_default().to_string(),
            region,
            endpoint: args.aws.endpoint_url.clone(),
        })
    })?;
    match g.format {
        Format::Json => print_json(&id)?,
        _ => {
            println!("account:  {}", id.account);
            println!("arn:      {}", id.arn);
            println!("region:   {}", id.region);
            if let Some(e) = &id.endpoint {
                println!("endpoint: {e}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
