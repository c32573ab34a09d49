//! Plans and deploys one environment through the `Executor`, against the
//! in-memory AWS of the `test-util` feature, and shows the stack it created.
//!
//! `cargo run -p gitops-core --features test-util --example deploy`

use std::sync::Arc;

use gitops_core::aws::fake::Fake;
use gitops_core::deploy::{desired, Executor, ExecutorOptions};
use gitops_core::{Change, EnvChange, Memory, Repository};

#[tokio::main(flavor = "current_thread")]
async fn main() -> gitops_core::Result<()> {
    let source = Memory::new("demo")
        .with_file(
            "gitops.yaml",
            "version: 1\nid: acme/payments\nstack: { template: common/app.yaml }\n",
        )
        .with_file(
            "common/app.yaml",
            "Parameters:\n  AppVersion: { Type: String }\nResources:\n  Topic: { Type: AWS::SNS::Topic }\n",
        )
        .with_file(
            "environments/dev/environment.yaml",
            "parameters: { AppVersion: \"1.2.3\" }\n",
        );
    let repo = Repository::load_checked(&source, gitops_core::Checks::Full)?;
    let dev = repo.environment("dev").expect("declared above").clone();
    let change = EnvChange::new(dev, Change::Created);
    let wanted = desired(
        &repo,
        &source,
        &change,
        "0123456789abcdef0123456789abcdef01234567",
    )?;

    let aws = Fake::new();
    let progress = Arc::new(|env: &str, line: &str| println!("[{env}] {line}"));
    let options = ExecutorOptions::new().with_poll(std::time::Duration::from_millis(1));
    let executor = Executor::new(Arc::new(aws.clients()), progress, repo.owner_id()?, options);
    // What a dry run or `gitops plan` would show.
    let plan = executor.plan(&wanted).await?;
    for action in &plan.actions {
        println!("planned: {}", gitops_core::plan::describe_action(action));
    }
    for outcome in Arc::new(executor).run_all(vec![wanted], 4).await {
        println!(
            "{}: {} {}",
            outcome.environment, outcome.outcome, outcome.message
        );
    }
    match aws.stack("dev-app") {
        Some(stack) => println!(
            "the fake now has stack {} ({}), AppVersion {}",
            stack.name,
            stack.status,
            stack
                .parameters
                .get("AppVersion")
                .map_or("-", String::as_str)
        ),
        None => println!("the fake has no stack dev-app"),
    }
    Ok(())
}
