//! Loads a GitOps repository, prints its environments and every problem.
//!
//! `cargo run -p gitops-core --example validate -- examples/basic`

use gitops_core::{Repository, WorkTree};

fn main() -> gitops_core::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let source = WorkTree::discover(&dir)?;
    let repo = Repository::load(&source)?;
    for env in &repo.environments {
        println!(
            "{:<14} stack {:<20} region {:<10} {} parameter(s)",
            env.name,
            env.stack,
            env.region,
            env.parameters.len()
        );
    }
    let problems = repo.validate(&source);
    for p in &problems {
        println!("{p}");
    }
    if problems.iter().any(|p| p.is_error()) {
        std::process::exit(1);
    }
    Ok(())
}
