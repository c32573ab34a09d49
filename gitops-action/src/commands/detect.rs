//! `gitops detect`: which environments changed between two commits.
//!
//! The decision of what to compare (from flags or a GitHub event) is in
//! [`event`]; the classification is `gitops_core::git::detect_between`.
//! Only the fetching of missing commits in shallow clones runs `git`.

pub mod event;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{anyhow, bail, Context};
use gitops_core::detect::{Detection, Matrix, MAX_MATRIX_JOBS};
use gitops_core::git;
use gitops_core::source::{open_repo, prefix_of, resolve};
use gitops_core::WorkTree;
use serde::Serialize;

use self::event::{decide, fetch_advice, Decision};
use crate::output::print_json;
use crate::{github, Format, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The revision to compare from: a commit, branch, tag or expression
    /// such as HEAD~1 or origin/main.
    #[arg(long, value_name = "REV", required_unless_present = "github")]
    base: Option<String>,
    /// The revision to compare to [default: HEAD, or GITHUB_SHA with --github].
    #[arg(long, value_name = "REV")]
    head: Option<String>,
    /// Work out base and head from the GitHub event (GITHUB_EVENT_NAME and
    /// the payload at GITHUB_EVENT_PATH), fetching commits a shallow
    /// checkout lacks. --base and --head, when given, win.
    #[arg(long)]
    github: bool,
    /// Exit with 2 when an environment changed, 0 when none did.
    #[arg(long)]
    exit_code: bool,
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
    let root = match WorkTree::discover(&g.repo) {
        Ok(w) => w.root().to_path_buf(),
        Err(_) => g.repo.clone(),
    };
    let mut clone = Checkout::open(&root)?;
    let mut notes = Vec::new();
    let decision = if args.github && args.base.is_none() {
        let name = std::env::var("GITHUB_EVENT_NAME")
            .context("--github needs GITHUB_EVENT_NAME (GitHub Actions sets it)")?;
        let path = std::env::var_os("GITHUB_EVENT_PATH")
            .ok_or_else(|| anyhow!("--github needs GITHUB_EVENT_PATH (GitHub Actions sets it)"))?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the event payload {}", path.to_string_lossy()))?;
        let payload: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("the event payload {} is not JSON", path.to_string_lossy()))?;
        let sha = std::env::var("GITHUB_SHA").ok();
        let head = args.head.as_deref().or(sha.as_deref());
        let mut d = decide(&name, &payload, head, &mut clone, &mut notes)?;
        if let (Some(h), Decision::Compare { head, .. }) = (&args.head, &mut d) {
            head.clone_from(h);
        }
        d
    } else {
        let base = args.base.clone().unwrap_or_default();
        let head = args
            .head
            .clone()
            .or_else(|| {
                args.github
                    .then(|| std::env::var("GITHUB_SHA").ok())
                    .flatten()
            })
            .unwrap_or_else(|| "HEAD".into());
        for rev in [&base, &head] {
            if is_full_sha(rev) {
                clone.ensure(rev).map_err(|why| fetch_advice(rev, &why))?;
            }
        }
        Decision::Compare { base, head }
    };
    for n in &notes {
        eprintln!("note: {n}");
    }

    let (base, head, detection) = match &decision {
        Decision::Compare { base, head } => {
            let b = resolve(&clone.repo, base)?;
            let h = resolve(&clone.repo, head)?;
            let d = git::detect_between(&clone.repo, Some(b), h, &clone.prefix)?;
            (Some(b.to_string()), Some(h.to_string()), d)
        }
        Decision::AllCreated { head } => {
            let h = resolve(&clone.repo, head)?;
            let d = git::detect_between(&clone.repo, None, h, &clone.prefix)?;
            (None, Some(h.to_string()), d)
        }
        Decision::AllUpdated { head } => {
            let h = resolve(&clone.repo, head)?;
            let model = git::load_at(&clone.repo, h, &clone.prefix)?;
            (
                None,
                Some(h.to_string()),
                gitops_core::detect::all_updated(&model),
            )
        }
        Decision::Deleted { before, after } => (
            Some(before.clone()),
            Some(after.clone()),
            Detection::default(),
        ),
    };
    let report = Report {
        base,
        head,
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
    if args.github || std::env::var_os("GITHUB_OUTPUT").is_some() {
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

fn short(sha: &Option<String>) -> String {
    match sha {
        Some(s) => s.chars().take(12).collect(),
        None => "(none)".into(),
    }
}

/// The first reason and how many more, such as `common/app.yaml (template) +2 more`.
fn why(e: &gitops_core::EnvChange) -> String {
    match e.reasons.split_first() {
        None => "-".into(),
        Some((r, rest)) if rest.is_empty() => format!("{} ({})", r.path, r.why),
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
    let mut out = format!("base {} -> head {}\n", short(&r.base), short(&r.head));
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

fn render_markdown(r: &Report<'_>) -> String {
    let d = r.detection;
    let mut out = format!(
        "### Changed environments\n\n`{}` → `{}`: {}\n\n",
        short(&r.base),
        short(&r.head),
        summary_line(d)
    );
    if !d.has_changes() {
        out.push_str("No environment changed.\n");
        return out;
    }
    out.push_str("| Environment | Change | Stack | Region | Why |\n|---|---|---|---|---|\n");
    for e in d.affected() {
        let reasons: Vec<String> = e
            .reasons
            .iter()
            .take(5)
            .map(|r| format!("`{}` ({})", r.path.replace('|', "\\|"), r.why))
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

fn is_full_sha(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The clone being read, and the `git fetch` that fills a shallow one in.
struct Checkout {
    root: PathBuf,
    repo: gix::Repository,
    prefix: String,
}

/// How deep a merge-base search may deepen a shallow clone.
const MAX_DEPTH: u32 = 4096;

impl Checkout {
    fn open(root: &Path) -> anyhow::Result<Self> {
        let repo = open_repo(root)?;
        let prefix = prefix_of(&repo, root)?;
        Ok(Self {
            root: root.to_path_buf(),
            repo,
            prefix,
        })
    }

    fn reopen(&mut self) -> anyhow::Result<()> {
        self.repo = open_repo(&self.root)?;
        Ok(())
    }

    fn id(sha: &str) -> Result<gix::ObjectId, String> {
        gix::ObjectId::from_hex(sha.as_bytes()).map_err(|_| format!("`{sha}` is not a commit id"))
    }

    /// Runs `git fetch --no-tags <args> origin <shas>`; `Err` holds git's complaint.
    fn fetch(&mut self, args: &[String], shas: &[&str]) -> Result<(), String> {
        eprintln!(
            "note: fetching {} {} from origin",
            shas.join(" "),
            args.join(" ")
        );
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["fetch", "--no-tags", "--quiet"])
            .args(args)
            .arg("origin")
            .args(shas)
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        let reopened = self.reopen().map_err(|e| e.to_string());
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let msg = stderr.trim();
            return Err(if msg.is_empty() {
                format!("git fetch exited with {}", out.status)
            } else {
                msg.lines().last().unwrap_or(msg).to_string()
            });
        }
        reopened
    }

    fn ensure(&mut self, sha: &str) -> Result<(), String> {
        let id = Self::id(sha)?;
        if git::has_commit(&self.repo, id) {
            return Ok(());
        }
        let depth: Vec<String> = if git::is_shallow(&self.repo) {
            vec!["--depth=1".into()]
        } else {
            Vec::new()
        };
        self.fetch(&depth, &[sha])?;
        if git::has_commit(&self.repo, id) {
            Ok(())
        } else {
            Err("the fetch did not bring it".into())
        }
    }
}

impl event::Git for Checkout {
    fn fetch_commit(&mut self, sha: &str) -> Result<(), String> {
        self.ensure(sha)
    }

    fn merge_base(&mut self, a: &str, b: &str) -> anyhow::Result<Option<String>> {
        let (ia, ib) = (
            Self::id(a).map_err(|e| anyhow!(e))?,
            Self::id(b).map_err(|e| anyhow!(e))?,
        );
        let mut depth = 32;
        loop {
            if let Some(m) = git::merge_base(&self.repo, ia, ib)? {
                return Ok(Some(m.to_string()));
            }
            if !git::is_shallow(&self.repo) {
                return Ok(None);
            }
            if depth > MAX_DEPTH {
                bail!(
                    "{a} and {b} have no common ancestor within {MAX_DEPTH} commits of this shallow clone; set `fetch-depth: 0` on actions/checkout so the history is there"
                );
            }
            self.fetch(&[format!("--depth={depth}")], &[a, b])
                .map_err(|why| {
                    anyhow!(
                        "cannot deepen this shallow clone to find the merge base of {a} and {b} ({why}); set `fetch-depth: 0` on actions/checkout so the history is there"
                    )
                })?;
            depth *= 2;
        }
    }

    fn is_ancestor(&mut self, a: &str, b: &str) -> Option<bool> {
        let (ia, ib) = (Self::id(a).ok()?, Self::id(b).ok()?);
        git::is_ancestor(&self.repo, ia, ib).ok().flatten()
    }

    fn branch(&mut self, name: &str) -> Option<String> {
        git::branch_commit(&self.repo, name).map(|id| id.to_string())
    }
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
