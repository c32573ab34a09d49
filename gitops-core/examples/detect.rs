//! Compares two revisions of a git repository and prints which
//! environments changed, and why. Nothing contacts AWS.
//!
//! `cargo run -p gitops-core --example detect -- [DIR] [BASE] [HEAD]`
//! (defaults: `.`, `HEAD~1`, `HEAD`), for example
//! `cargo run -p gitops-core --example detect -- examples/basic HEAD~20 HEAD`.

use gitops_core::source::{open_repo, prefix_of, resolve};
use gitops_core::{git, WorkTree};

fn main() -> gitops_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| ".".into());
    let base = args.next().unwrap_or_else(|| "HEAD~1".into());
    let head = args.next().unwrap_or_else(|| "HEAD".into());
    let root = WorkTree::discover(&dir)?.root().to_path_buf();
    let repo = open_repo(&root)?;
    let prefix = prefix_of(&repo, &root)?;
    let (b, h) = (resolve(&repo, &base)?, resolve(&repo, &head)?);
    let detection = git::detect_between(&repo, Some(b), h, &prefix)?;
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
    Ok(())
}
