//! Compares two revisions of a git repository and prints which
//! environments changed, and why, the way `gitops detect` chooses them
//! (`select::select`: base and head resolved, environments bound to another
//! branch set aside). Nothing contacts AWS, and nothing is fetched.
//!
//! `cargo run -p gitops-core --example detect -- [DIR] [BASE] [HEAD]`
//! (defaults: `.`, `HEAD~1`, `HEAD`), for example
//! `cargo run -p gitops-core --example detect -- . HEAD~5 HEAD`.

use std::path::Path;
use std::process::ExitCode;

use gitops_core::event::{Checkout, Fetch, FetchError};
use gitops_core::select::{select, Request};

/// A clone that has every commit it needs: nothing to fetch.
struct NoFetch;

impl Fetch for NoFetch {
    fn fetch(&mut self, _: &Path, _: &[String], _: &[&str]) -> Result<(), FetchError> {
        Err(FetchError::NotBrought)
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| ".".into());
    let base = args.next().unwrap_or_else(|| "HEAD~1".into());
    let head = args.next().unwrap_or_else(|| "HEAD".into());
    let mut clone = Checkout::discover(Path::new(&dir), Box::new(NoFetch))?;
    let request = Request::new()
        .with_base(Some(base.clone()))
        .with_head(Some(head.clone()));
    let detection = select(&mut clone, &request)?.detection;
    println!(
        "{base} -> {head}: {} environment(s) changed",
        detection.affected().count()
    );
    for env in detection.affected() {
        let why: Vec<String> = env
            .reasons
            .iter()
            .map(|r| format!("{} ({})", r.path, r.why))
            .collect();
        println!("  {:<12} {:<8} {}", env.name, env.change, why.join(", "));
    }
    for skipped in &detection.skipped {
        println!("  {:<12} skipped: {}", skipped.name, skipped.reason);
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
