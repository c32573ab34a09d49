//! `gitops whoami`.

use std::process::ExitCode;

use anyhow::Context;
use gitops_core::aws::ClientFactory;
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
        let factory = aws::factory(&args.aws).await;
        let region = factory.default_region().unwrap_or_default().to_string();
        let clients = factory.clients(&region, None).await?;
        // The error names the next step (how to provide credentials, say).
        let out = clients
            .sts
            .caller_identity()
            .await
            .map_err(|e| anyhow::anyhow!("cannot resolve the AWS identity: {e}"))?;
        anyhow::Ok(Identity {
            account: out.account,
            arn: out.arn,
            user_id: out.user_id,
            region,
            endpoint: factory.endpoint_url().map(str::to_string),
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
