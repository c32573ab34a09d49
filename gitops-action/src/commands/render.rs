//! `gitops render`: what direct mode would deploy for one environment,
//! written as files for a pipeline's CloudFormation action.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use gitops_core::deploy::pipeline::{self, RENDERED_CONFIGURATION, RENDERED_TEMPLATE};
use gitops_core::deploy::{self};
use gitops_core::detect::{Change, EnvChange};

use crate::output::print_json;
use crate::{Format, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment to render.
    #[arg(long = "environment", short = 'e', value_name = "NAME")]
    environment: String,
    /// The commit being deployed, recorded in the `gitops:commit` tag (in a
    /// pipeline: the source action's CommitId variable).
    #[arg(long, value_name = "SHA")]
    commit: String,
    /// The folder to write `template.yaml` and `template-configuration.json` to.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let work = super::worktree(&g.repo)?;
    let repo = super::load_valid(&work)?;
    let Some(env) = repo.environment(&args.environment) else {
        anyhow::bail!(
            "no environment `{}` in {}; `gitops envs` lists them",
            args.environment,
            work.root().display()
        );
    };
    if args.commit.trim().is_empty() {
        anyhow::bail!("--commit is empty; pass the commit being deployed (#{{SourceVariables.CommitId}} in a pipeline)");
    }
    let change = EnvChange::new(env.clone(), Change::Updated);
    let desired = deploy::desired(&repo, &work, &change, args.commit.trim())
        .with_context(|| format!("environment `{}`", args.environment))?;
    let Some(spec) = desired.stack else {
        anyhow::bail!("environment `{}` has no stack to render", args.environment);
    };
    let rendered = pipeline::render(&spec);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let template = args.out.join(RENDERED_TEMPLATE);
    let configuration = args.out.join(RENDERED_CONFIGURATION);
    std::fs::write(&template, &rendered.template)
        .with_context(|| format!("cannot write {}", template.display()))?;
    std::fs::write(&configuration, &rendered.configuration)
        .with_context(|| format!("cannot write {}", configuration.display()))?;
    match g.format {
        Format::Json => print_json(&serde_json::json!({
            "environment": args.environment,
            "stack": spec.name,
            "template_path": rendered.template_path,
            "template": template,
            "configuration": configuration,
        }))?,
        Format::Text | Format::Markdown => println!(
            "rendered `{}` (stack `{}`, template {}): {} and {}",
            args.environment,
            spec.name,
            rendered.template_path,
            template.display(),
            configuration.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
