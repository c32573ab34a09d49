//! `gitops detect`: which environments changed between two commits.
//!
//! What to compare is chosen in [`super::select`]; this module prints it.

use std::process::ExitCode;

use gitops_core::detect::{Detection, Matrix, MAX_MATRIX_JOBS};
use gitops_core::text::short_commit_or;
use serde::Serialize;

use super::select::{self, SelectArgs, DEPLOYED};
use crate::aws::AwsArgs;
use crate::output::print_json;
use crate::{github, Format, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    select: SelectArgs,
    /// Exit with 2 when an environment changed, 0 when none did.
    #[arg(long)]
    exit_code: bool,
    // AWS, for --base deployed.
    #[command(flatten)]
    aws: AwsArgs,
}

/// The JSON report.
#[derive(Debug, Serialize)]
struct Report<'a> {
    base: Option<String>,
    head: Option<String>,
    #[serde(flatten)]
    detection: &'a Detection,
    matrix: Matrix,
}
pub fn run(g: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let selected = select::select_with(g, &args.select, Some(&args.aws))?;
    let detection = selected.detection;
    let report = Report {
        base: selected.base,
        head: selected.head,
        matrix: detection.matrix(),
        detection: &detection,
    };

    let affected = report.matrix.include.len();
    if affected > MAX_MATRIX_JOBS {
        github::warning(
            &format!(
                "{affected} environments changed, more than the {MAX_MATRIX_JOBS} jobs a GitHub Actions matrix holds; deploy them from one job with `gitops deploy --concurrency N` instead of a matrix"
            ),
            g.color,
        );
    }
    match g.format {
        Format::Json => print_json(&report)?,
        Format::Text => print!("{}", render_text(&report)),
        Format::Markdown => print!("{}", render_markdown(&report)),
    }
    if args.select.github || std::env::var_os("GITHUB_OUTPUT").is_some() {
        github::write_outputs(&outputs(&report)?)?;
        github::append_summary(&render_markdown(&report))?;
    }
    Ok(if args.exit_code && detection.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The step outputs.
fn outputs(r: &Report<'_>) -> anyhow::Result<Vec<(&'static str, String)>> {
    let d = r.detection;
    Ok(vec![
        ("has-changes", d.has_changes().to_string()),
        ("created", serde_json::to_string(&d.created)?),
        ("updated", serde_json::to_string(&d.updated)?),
        ("deleted", serde_json::to_string(&d.deleted)?),
        ("matrix", serde_json::to_string(&r.matrix)?),
        ("base", r.base.clone().unwrap_or_default()),
        ("head", r.head.clone().unwrap_or_default()),
    ])
}

/// The first reason and how many more, such as `common/app.yaml (template) +2 more`.
fn why(e: &gitops_core::EnvChange) -> String {
    match e.reasons.split_first() {
        None => "-".into(),
        Some((r, [])) => format!("{} ({})", r.path, r.why),
        Some((r, rest)) => format!("{} ({}) +{} more", r.path, r.why, rest.len()),
    }
}

fn summary_line(d: &Detection) -> String {
    format!(
        "{} created, {} updated, {} deleted, {} unchanged",
        d.created.len(),
        d.updated.len(),
        d.deleted.len(),
        d.unchanged.len()
    )
}

fn render_text(r: &Report<'_>) -> String {
    let d = r.detection;
    if r.base.as_deref() == Some(DEPLOYED) {
        return render_deployed_text(r);
    }
    let mut out = format!(
        "base {} -> head {}\n",
        short_commit_or(r.base.as_deref(), "(none)"),
        short_commit_or(r.head.as_deref(), "(none)")
    );
    let rows: Vec<[String; 5]> = d
        .affected()
        .map(|e| {
            [
                e.name.clone(),
                e.change.to_string(),
                e.stack.clone(),
                e.region.clone(),
                why(e),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("no environment changed\n");
    } else {
        out.push_str(&crate::output::table(
            &["ENVIRONMENT", "CHANGE", "STACK", "REGION", "WHY"],
            &rows,
        ));
    }
    out.push_str(&summary_line(d));
    out.push('\n');
    out
}

/// `--base deployed`: one line per environment that is affected or in a
/// failed state, such as
/// `qa: deployed 1a2b3c4d5e6f, head 5d6e7f8a9b0c: environments/qa/stage.yaml changed`.
fn render_deployed_text(r: &Report<'_>) -> String {
    let head = r.head.as_deref().unwrap_or_default();
    format!(
        "base deployed -> head {}\n{}{}\n",
        short_commit_or(r.head.as_deref(), "(none)"),
        gitops_core::deployed::render_text(r.detection, head),
        summary_line(r.detection)
    )
}

fn render_markdown(r: &Report<'_>) -> String {
    let d = r.detection;
    let mut out = format!(
        "### Changed environments\n\n`{}` → `{}`: {}\n\n",
        short_commit_or(r.base.as_deref(), "(none)"),
        short_commit_or(r.head.as_deref(), "(none)"),
        summary_line(d)
    );
    if !d.has_changes() {
        out.push_str("No environment changed.\n");
        return out;
    }
    out.push_str("| Environment | Change | Stack | Region | Why |\n|---|---|---|---|---|\n");
    let deployed = r.base.as_deref() == Some(DEPLOYED);
    for e in d.affected() {
        let reasons: Vec<String> = e
            .reasons
            .iter()
            .take(5)
            .map(|x| {
                if deployed {
                    gitops_core::markdown::cell(&gitops_core::deployed::reason_words(x, e))
                } else {
                    format!("{} ({})", gitops_core::markdown::code(&x.path), x.why)
                }
            })
            .collect();
        let more = e.reasons.len().saturating_sub(5);
        let mut why = reasons.join("<br>");
        if more > 0 {
            why.push_str(&format!("<br>+{more} more"));
        }
        out.push_str(&format!(
            "| {} | {} | `{}` | {} | {} |\n",
            e.name, e.change, e.stack, e.region, why
        ));
    }
    out
}
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use gitops_core::detect::{detect, ChangedPath};
    use gitops_core::{Repository, WorkTree};

    use super::*;

    fn detection() -> Detection {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            (
                "gitops.yaml",
                "version: 1\nstack: { template: common/app.yaml }\n",
            ),
            ("environments/dev/environment.yaml", "parameters: {}\n"),
            ("environments/prod/environment.yaml", "region: eu-west-1\n"),
            ("environments/qa/environment.yaml", "parameters: {}\n"),
        ];
        for (p, c) in files {
            let full = dir.path().join(p);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, c).unwrap();
        }
        let head = Repository::load(&WorkTree::new(dir.path()).unwrap()).unwrap();
        std::fs::remove_dir_all(dir.path().join("environments/qa")).unwrap();
        std::fs::create_dir_all(dir.path().join("environments/old")).unwrap();
        std::fs::write(
            dir.path().join("environments/old/environment.yaml"),
            "parameters: {}\n",
        )
        .unwrap();
        let base = Repository::load(&WorkTree::new(dir.path()).unwrap()).unwrap();
        detect(
            Some(&base),
            &head,
            &[
                ChangedPath::modified("common/app.yaml"),
                ChangedPath::modified("common/b.yaml"),
                ChangedPath::deleted("environments/old/environment.yaml"),
                ChangedPath::added("environments/qa/environment.yaml"),
            ],
        )
    }

    fn report(d: &Detection) -> Report<'_> {
        Report {
            base: Some("1111111111111111111111111111111111111111".into()),
            head: Some("2222222222222222222222222222222222222222".into()),
            detection: d,
            matrix: d.matrix(),
        }
    }

    #[test]
    fn text_table() {
        let d = detection();
        expect_test::expect![[r#"
            base 111111111111 -> head 222222222222
            ENVIRONMENT  CHANGE   STACK     REGION     WHY
            dev          updated  dev-app   us-east-1  common/app.yaml (template) +1 more
            old          deleted  old-app   us-east-1  environments/old/environment.yaml (folder)
            prod         updated  prod-app  eu-west-1  common/app.yaml (template) +1 more
            qa           created  qa-app    us-east-1  environments/qa/environment.yaml (folder)
            1 created, 2 updated, 1 deleted, 0 unchanged
        "#]]
        .assert_eq(&render_text(&report(&d)));
    }

    #[test]
    fn markdown_summary() {
        let d = detection();
        expect_test::expect![[r#"
            ### Changed environments

            `111111111111` → `222222222222`: 1 created, 2 updated, 1 deleted, 0 unchanged

            | Environment | Change | Stack | Region | Why |
            |---|---|---|---|---|
            | dev | updated | `dev-app` | us-east-1 | `common/app.yaml` (template)<br>`common/b.yaml` (shared) |
            | old | deleted | `old-app` | us-east-1 | `environments/old/environment.yaml` (folder) |
            | prod | updated | `prod-app` | eu-west-1 | `common/app.yaml` (template)<br>`common/b.yaml` (shared) |
            | qa | created | `qa-app` | us-east-1 | `environments/qa/environment.yaml` (folder) |
        "#]]
        .assert_eq(&render_markdown(&report(&d)));
        let empty = Detection::default();
        let md = render_markdown(&report(&empty));
        assert!(md.contains("No environment changed."), "{md}");
    }

    #[test]
    fn step_outputs() {
        let d = detection();
        let outs = outputs(&report(&d)).unwrap();
        let text = github::format_outputs(&outs, || "EOF".into());
        expect_test::expect![[r#"
            has-changes=true
            created=["qa"]
            updated=["dev","prod"]
            deleted=["old"]
            matrix={"include":[{"environment":"dev","change":"updated","stack":"dev-app","region":"us-east-1"},{"environment":"old","change":"deleted","stack":"old-app","region":"us-east-1"},{"environment":"prod","change":"updated","stack":"prod-app","region":"eu-west-1"},{"environment":"qa","change":"created","stack":"qa-app","region":"us-east-1"}]}
            base=1111111111111111111111111111111111111111
            head=2222222222222222222222222222222222222222
        "#]]
        .assert_eq(&text);
        let empty = Detection::default();
        let outs = outputs(&report(&empty)).unwrap();
        assert_eq!(outs[0], ("has-changes", "false".into()));
        assert_eq!(outs[4], ("matrix", "{\"include\":[]}".into()));
    }
}
