//! `gitops history`.

use std::process::ExitCode;

use gitops_core::history::{commit_states, ValueReader};
use gitops_core::promote::{key_history, HistoryEntry, PromoteError};
use gitops_core::source::{open_repo, prefix_of, resolve};
use serde::Serialize;

use super::promote::{load, refuse};
use crate::output::{print_json, table};
use crate::{Format, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment whose promoted values to list.
    #[arg(value_name = "ENV")]
    environment: String,
    /// Where the history starts (a commit, branch, tag or expression).
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    rev: String,
    /// Look at no more than this many commits.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_count: usize,
}

#[derive(Serialize)]
struct Report<'a> {
    environment: &'a str,
    keys: Vec<String>,
    changes: &'a [HistoryEntry],
}

pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let (work, repo) = load(&g.repo)?;
    let name = args.environment.as_str();
    // The environment may be gone from the working tree: its history still counts.
    let keys = repo.promoted_keys();
    if keys.is_empty() {
        return refuse(g, &PromoteError::NoKeys.to_string());
    }
    let git = open_repo(work.root())?;
    let prefix = prefix_of(&git, work.root())?;
    let head = resolve(&git, &args.rev)?;
    let mut reader = ValueReader::new(&git, &prefix, name, &keys);
    let states = commit_states(&mut reader, head, args.max_count)?;
    if states.is_empty() && repo.environment(name).is_none() {
        return refuse(
            g,
            &format!(
                "there is no environment `{name}`, now or in the history of {}",
                args.rev
            ),
        );
    }
    let changes = key_history(&keys, &states);
    match g.format {
        Format::Json => print_json(&Report {
            environment: name,
            keys: keys.iter().map(ToString::to_string).collect(),
            changes: &changes,
        })?,
        Format::Markdown => {
            println!("| commit | date | author | key | change |");
            println!("|---|---|---|---|---|");
            for c in &changes {
                let [commit, date, author, key, change] = row(c);
                println!("| `{commit}` | {date} | {author} | `{key}` | {change} |");
            }
        }
        Format::Text => {
            if changes.is_empty() {
                println!(
                    "no changes of {} in `{name}`",
                    keys.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            } else {
                let rows: Vec<[String; 5]> = changes.iter().map(row).collect();
                print!(
                    "{}",
                    table(&["COMMIT", "DATE", "AUTHOR", "KEY", "CHANGE"], &rows)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn row(c: &HistoryEntry) -> [String; 5] {
    [
        gitops_core::text::short_commit(&c.commit.commit).to_string(),
        c.commit.date.clone(),
        c.commit.author.clone(),
        c.key.to_string(),
        format!(
            "{} → {}",
            c.old.as_deref().unwrap_or("(unset)"),
            c.new.as_deref().unwrap_or("(unset)")
        ),
    ]
}
