//! The report of `gitops detect`: which environments changed between two
//! commits, with its step outputs and its text and markdown renderings.

use serde::{Deserialize, Serialize};

use crate::detect::{Detection, EnvChange, Matrix, MAX_MATRIX_JOBS};
use crate::select::DEPLOYED;
use crate::text::short_commit_or;

/// The report of `gitops detect` (its JSON: base, head, the detection's
/// fields and the matrix), read back by `deploy --from-detect` (every
/// field may be absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DetectReport {
    /// The base commit, when there is one.
    #[serde(default)]
    pub base: Option<String>,
    /// The head commit, when there is one.
    #[serde(default)]
    pub head: Option<String>,
    /// What changed.
    #[serde(flatten)]
    pub detection: Detection,
    /// The GitHub Actions matrix of the affected environments.
    #[serde(default)]
    pub matrix: Matrix,
}

impl DetectReport {
    /// The report of `detection` between `base` and `head`.
    pub fn new(base: Option<String>, head: Option<String>, detection: Detection) -> Self {
        Self {
            base,
            head,
            matrix: detection.matrix(),
            detection,
        }
    }

    /// 2 when `changes_exit` (`--exit-code`) and an environment changed, else 0.
    pub fn exit_code(&self, changes_exit: bool) -> u8 {
        if changes_exit && self.detection.has_changes() {
            2
        } else {
            0
        }
    }

    /// The warning when more environments changed than a matrix holds.
    pub fn matrix_warning(&self) -> Option<String> {
        let affected = self.matrix.include.len();
        (affected > MAX_MATRIX_JOBS).then(|| format!(
            "{affected} environments changed, more than the {MAX_MATRIX_JOBS} jobs a GitHub Actions matrix holds; deploy them from one job with `gitops deploy --concurrency N` instead of a matrix"
        ))
    }

    /// The step outputs: has-changes, created, updated, deleted (JSON
    /// arrays), matrix, base and head.
    pub fn outputs(&self) -> Result<Vec<(&'static str, String)>, serde_json::Error> {
        let d = &self.detection;
        Ok(vec![
            ("has-changes", d.has_changes().to_string()),
            ("created", serde_json::to_string(&d.created)?),
            ("updated", serde_json::to_string(&d.updated)?),
            ("deleted", serde_json::to_string(&d.deleted)?),
            ("matrix", serde_json::to_string(&self.matrix)?),
            ("base", self.base.clone().unwrap_or_default()),
            ("head", self.head.clone().unwrap_or_default()),
        ])
    }

    /// Whether the base is `deployed` (each environment against the commit
    /// it was last deployed from).
    fn against_deployed(&self) -> bool {
        self.base.as_deref() == Some(DEPLOYED)
    }

    /// For a terminal: base and head, a table of the affected environments,
    /// counts. Against `deployed`: one line per environment that is affected
    /// or in a failed state, such as
    /// `qa: deployed 1a2b3c4d5e6f, head 5d6e7f8a9b0c: environments/qa/stage.yaml changed`.
    pub fn render_text(&self) -> String {
        let d = &self.detection;
        if self.against_deployed() {
            return format!(
                "base deployed -> head {}\n{}{}\n",
                short_commit_or(self.head.as_deref(), "(none)"),
                crate::deployed::render_text(d, self.head.as_deref().unwrap_or_default()),
                summary_line(d)
            );
        }
        let mut out = format!(
            "base {} -> head {}\n",
            short_commit_or(self.base.as_deref(), "(none)"),
            short_commit_or(self.head.as_deref(), "(none)")
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
            out.push_str(&crate::render::table(
                &["ENVIRONMENT", "CHANGE", "STACK", "REGION", "WHY"],
                &rows,
            ));
        }
        out.push_str(&summary_line(d));
        out.push('\n');
        out
    }

    /// For the step summary: a heading, counts and a table with every reason.
    pub fn render_markdown(&self) -> String {
        let d = &self.detection;
        let mut out = format!(
            "### Changed environments\n\n`{}` → `{}`: {}\n\n",
            short_commit_or(self.base.as_deref(), "(none)"),
            short_commit_or(self.head.as_deref(), "(none)"),
            summary_line(d)
        );
        if !d.has_changes() {
            out.push_str("No environment changed.\n");
            return out;
        }
        out.push_str("| Environment | Change | Stack | Region | Why |\n|---|---|---|---|---|\n");
        let deployed = self.against_deployed();
        for e in d.affected() {
            let reasons: Vec<String> = e
                .reasons
                .iter()
                .take(5)
                .map(|x| {
                    if deployed {
                        crate::markdown::cell(&crate::deployed::reason_words(x, e))
                    } else {
                        format!("{} ({})", crate::markdown::code(&x.path), x.why)
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
}

/// The first reason and how many more, such as `common/app.yaml (template) +2 more`.
fn why(e: &EnvChange) -> String {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::detect::{detect, ChangedPath};
    use crate::{Repository, WorkTree};

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

    fn report(d: &Detection) -> DetectReport {
        DetectReport::new(
            Some("1111111111111111111111111111111111111111".into()),
            Some("2222222222222222222222222222222222222222".into()),
            d.clone(),
        )
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
        .assert_eq(&report(&d).render_text());
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
        .assert_eq(&report(&d).render_markdown());
        let empty = Detection::default();
        let md = report(&empty).render_markdown();
        assert!(md.contains("No environment changed."), "{md}");
    }

    #[test]
    fn step_outputs() {
        let d = detection();
        let outs = report(&d).outputs().unwrap();
        let text = crate::actions::format_outputs(&outs, || "EOF".into());
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
        let outs = report(&empty).outputs().unwrap();
        assert_eq!(outs[0], ("has-changes", "false".into()));
        assert_eq!(outs[4], ("matrix", "{\"include\":[]}".into()));
    }
}
