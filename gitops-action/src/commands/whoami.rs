//! `gitops whoami`.

use std::process::ExitCode;

use anyhow::Context;

use crate::aws::{self, AwsArgs};
use crate::output::print_json;
use crate::{Format, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    aws: AwsArgs,
}

pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let id = rt.block_on(async { aws::factory(&args.aws).await.whoami().await })?;
    match g.format {
        Format::Json => print_json(&id)?,
        _ => print!("{}", id.render_text()),
    }
    Ok(ExitCode::SUCCESS)
}
