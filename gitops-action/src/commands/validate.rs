//! `gitops validate`.

use std::process::ExitCode;

use gitops_core::{Error, Problem, Repository};
use serde::Serialize;

use crate::output::{annotation, in_github_actions, paint, print_json, render_problem};
use crate::{Format, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {}

#[derive(Serialize)]
struct Report<'a> {
    valid: bool,
    problems: &'a [Problem],
}

pub fn run(g: &Globals, _args: Args) -> anyhow::Result<ExitCode> {
    let source = super::worktree(&g.repo)?;
    let problems = match Repository::load(&source) {
        Ok(repo) => repo.validate(&source),
        Err(Error::Invalid(problems)) => problems,
        Err(e) => return Err(e.into()),
    };
    let valid = !problems.iter().any(Problem::is_error);
    match g.format {
        Format::Json => print_json(&Report {
            valid,
            problems: &problems,
        })?,
        Format::Text | Format::Markdown => {
            for p in &problems {
                println!("{}", render_problem(p, g.color));
            }
            let errors = problems.iter().filter(|p| p.is_error()).count();
            let warnings = problems.len() - errors;
            if valid {
                println!(
                    "{} {} ({warnings} warning(s))",
                    paint("valid:", "1;32", g.color),
                    source.root().display()
                );
            } else {
                println!(
                    "{} {errors} error(s), {warnings} warning(s) in {}",
                    paint("invalid:", "1;31", g.color),
                    source.root().display()
                );
            }
        }
    }
    if in_github_actions() {
        let prefix = github_prefix(source.root());
        for p in &problems {
            println!("{}", annotation(p, &prefix));
        }
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Annotations need paths relative to the workspace (the repository checkout).
fn github_prefix(root: &std::path::Path) -> String {
    let Some(ws) = std::env::var_os("GITHUB_WORKSPACE") else {
        return String::new();
    };
    let (Ok(ws), Ok(root)) = (
        std::path::Path::new(&ws).canonicalize(),
        root.canonicalize(),
    ) else {
        return String::new();
    };
    root.strip_prefix(ws)
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .unwrap_or_default()
}
