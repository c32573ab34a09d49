//! Policy gates of `gitops validate` (`policies:` in `gitops.yaml`).
//!
//! - [`guard`]: every template in use is evaluated against the cfn-guard
//!   rule files of `policies.guard`. Offline.
//! - [`iam`]: the IAM policy documents inside the templates, and the JSON
//!   files of `policies.iam`, are collected with their lines and their
//!   intrinsic functions resolved to placeholders. Offline.
//! - [`access`]: IAM Access Analyzer checks those documents (ValidatePolicy,
//!   CheckNoNewAccess against a base revision, CheckAccessNotGranted for
//!   `policies.deny-actions`), through the [`AccessAnalyzer`] trait.
//!
//! [`check_offline`] runs the first two; [`validate`] is the whole of
//! `gitops validate`: [`Repository::validate`], the offline gates, then the
//! Access Analyzer checks when an analyzer is given; [`validate_request`]
//! decides whether they run and makes the [`ValidateReport`].
//!
//! ```
//! use gitops_core::{policy, Memory, Repository};
//!
//! let source = Memory::new("demo")
//!     .with_file("gitops.yaml", "version: 1\nstack: { template: app.yaml }\npolicies: { guard: [\"rules/*.guard\"] }\n")
//!     .with_file("app.yaml", "Resources:\n  B: { Type: AWS::S3::Bucket }\n")
//!     .with_file("rules/s3.guard", "rule enc { Resources.*[ Type == 'AWS::S3::Bucket' ].Properties exists }\n")
//!     .with_file("environments/dev/environment.yaml", "{}\n");
//! let repo = Repository::load(&source).unwrap();
//! let offline = policy::check_offline(&repo, &source).unwrap();
//! assert_eq!(offline.problems.len(), 1);
//! assert_eq!(offline.problems[0].file, "app.yaml");
//! assert_eq!(offline.problems[0].line, Some(2));
//! assert_eq!(offline.problems[0].rule.as_deref(), Some("enc"));
//! ```

pub mod access;
pub mod guard;
pub mod iam;
mod request;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::aws::{AccessAnalyzer, AwsError};
use crate::config::CONFIG_FILE;
use crate::error::Result;
use crate::model::{read_template, Repository};
use crate::problem::{Problem, ProblemSource};
use crate::source::{normalize, Entry, Source};
use crate::template::Template;

pub use access::{AccessOptions, AccessReport};
pub use iam::PolicyDoc;
pub use request::{validate_request, AwsUse, ValidateReport, ValidateRequest};

/// Most files a glob walk visits before it stops.
const MAX_WALK: usize = 20_000;

/// Repository-relative paths of the files matching any of `globs`, sorted.
/// Each glob is walked from its literal prefix (`policies/` for
/// `policies/**/*.guard`); hidden folders are not entered.
pub fn find_files(source: &dyn Source, globs: &[String]) -> Result<Vec<String>> {
    let mut out = BTreeSet::new();
    for g in globs {
        let Ok(glob) = crate::glob::compile(g.trim_start_matches("./")) else {
            continue; // reported with the configuration
        };
        let matcher = glob.compile_matcher();
        let Some(root) = literal_prefix(g) else {
            continue;
        };
        let mut stack = vec![root];
        let mut seen = 0;
        while let Some(dir) = stack.pop() {
            if seen > MAX_WALK {
                break;
            }
            for f in source.files(&dir)? {
                seen += 1;
                let path = join(&dir, &f);
                if matcher.is_match(&path) {
                    out.insert(path);
                }
            }
            for d in source.subdirs(&dir)?.into_iter().rev() {
                stack.push(join(&dir, &d));
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// The folder a glob's matches are all under: its leading components
/// without glob characters (`policies` for `policies/*.guard`).
fn literal_prefix(glob: &str) -> Option<String> {
    let norm = normalize(glob)?;
    let parts: Vec<&str> = norm.split('/').collect();
    let literal: Vec<&str> = parts
        .iter()
        .take(parts.len().saturating_sub(1))
        .take_while(|p| !p.contains(['*', '?', '[', '{']))
        .copied()
        .collect();
    Some(literal.join("/"))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The templates the environments use: each environment's stack template
/// and, in pipeline mode, the pipeline template; sorted, without repeats.
pub fn templates_in_use(repo: &Repository) -> Vec<String> {
    let mut out: BTreeSet<String> = repo
        .environments
        .iter()
        .map(|e| e.template.clone())
        .filter(|t| !t.is_empty())
        .collect();
    if let Some(p) = &repo.config.pipeline {
        if !repo.environments.is_empty() {
            out.extend(normalize(&p.template));
        }
    }
    out.into_iter().collect()
}

/// What the offline policy gates found.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Offline {
    /// Guard failures, rule files that do not parse, unreadable policy files.
    pub problems: Vec<Problem>,
    /// The IAM policies, ready for Access Analyzer.
    pub policies: Vec<PolicyDoc>,
    /// Policies that cannot be sent to Access Analyzer (an intrinsic
    /// function that cannot be resolved): warnings that matter when the
    /// Access Analyzer checks run.
    pub unresolved: Vec<Problem>,
}

/// Runs the guard rules on every template in use, and collects the IAM
/// policies (from those templates and the `policies.iam` files).
/// Contacts nothing but `source`.
pub fn check_offline(repo: &Repository, source: &dyn Source) -> Result<Offline> {
    let mut offline = Offline::default();
    let templates = load_templates(source, &templates_in_use(repo));
    let cfg = &repo.config.policies;

    // Guard.
    let mut rules = Vec::new();
    for g in &cfg.guard {
        let files = find_files(source, std::slice::from_ref(g))?;
        if files.is_empty() {
            offline.problems.push(no_match(repo, "guard", g));
        }
        for f in files {
            if rules.iter().any(|(p, _): &(String, String)| *p == f) {
                continue;
            }
            match read_text(source, &f, ProblemSource::Guard)? {
                Ok(text) => rules.push((f, text)),
                Err(p) => offline.problems.push(p),
            }
        }
    }
    if !rules.is_empty() {
        for t in &templates {
            for p in guard::check_guard(t, &rules) {
                if !offline.problems.contains(&p) {
                    offline.problems.push(p);
                }
            }
        }
    }

    // IAM policies.
    for g in &cfg.iam {
        if find_files(source, std::slice::from_ref(g))?.is_empty() {
            offline.problems.push(no_match(repo, "iam", g));
        }
    }
    let (policies, unresolved, problems) = collect_policies(source, &templates, &cfg.iam)?;
    offline.policies = policies;
    offline.unresolved = unresolved;
    offline.problems.extend(problems);
    Ok(offline)
}

/// The IAM policies of the templates at `template_paths` and of the files
/// matching `iam_globs`, read from `source`: for the base revision of
/// CheckNoNewAccess. Templates that cannot be read are left out.
pub fn extract_policies(
    source: &dyn Source,
    template_paths: &[String],
    iam_globs: &[String],
) -> Result<Vec<PolicyDoc>> {
    let templates = load_templates(source, template_paths);
    Ok(collect_policies(source, &templates, iam_globs)?.0)
}

/// (policies, unresolved warnings, problems reading the `iam` files).
fn collect_policies(
    source: &dyn Source,
    templates: &[Template],
    iam_globs: &[String],
) -> Result<(Vec<PolicyDoc>, Vec<Problem>, Vec<Problem>)> {
    let mut policies = Vec::new();
    let mut unresolved = Vec::new();
    let mut problems = Vec::new();
    for t in templates {
        let (p, w) = iam::extract(t);
        policies.extend(p);
        unresolved.extend(w);
    }
    for f in find_files(source, iam_globs)? {
        match read_text(source, &f, ProblemSource::AccessAnalyzer)? {
            Ok(text) => match iam::parse_standalone(&f, &text) {
                Ok(p) => policies.push(p),
                Err(p) => problems.push(p),
            },
            Err(p) => problems.push(p),
        }
    }
    Ok((policies, unresolved, problems))
}

fn load_templates(source: &dyn Source, paths: &[String]) -> Vec<Template> {
    // Templates that cannot be used are reported by `Repository::validate`.
    paths
        .iter()
        .filter_map(|p| read_template(source, p).ok())
        .collect()
}

/// The text of a file, or a problem when it is not UTF-8 or cannot be read.
fn read_text(
    source: &dyn Source,
    path: &str,
    check: ProblemSource,
) -> Result<std::result::Result<String, Problem>> {
    let problem = |m: &str| Problem::error(path, m).with_source(check);
    Ok(match source.read(path)? {
        Entry::File(bytes) => String::from_utf8(bytes).map_err(|_| problem("not UTF-8 text")),
        Entry::Outside(target) => Err(problem(&format!(
            "a symlink that points outside the repository (to `{target}`)"
        ))),
        _ => Err(problem("cannot be read")),
    })
}

fn no_match(repo: &Repository, key: &str, glob: &str) -> Problem {
    Problem::warning(
        CONFIG_FILE,
        format!("`policies.{key}` glob `{glob}` matches no file"),
    )
    .at(repo.pos(CONFIG_FILE, &["policies", key]))
}

/// What [`validate`] runs beyond the offline checks.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ValidateOptions<'a> {
    /// The Access Analyzer to call; `None` runs the offline checks only.
    pub analyzer: Option<Arc<dyn AccessAnalyzer>>,
    /// The repository at the base revision, for CheckNoNewAccess.
    pub base: Option<&'a dyn Source>,
    /// Threshold, deny-actions (filled from `policies.deny-actions` when
    /// empty) and concurrency.
    pub access: AccessOptions,
}

impl std::fmt::Debug for ValidateOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidateOptions")
            .field("analyzer", &self.analyzer.is_some())
            .field("base", &self.base.map(|b| b.describe()))
            .field("access", &self.access)
            .finish()
    }
}

impl<'a> ValidateOptions<'a> {
    /// Offline checks only.
    pub fn offline() -> Self {
        Self::default()
    }

    /// With Access Analyzer checks through `analyzer`.
    pub fn with_analyzer(mut self, analyzer: Arc<dyn AccessAnalyzer>) -> Self {
        self.analyzer = Some(analyzer);
        self
    }

    /// With CheckNoNewAccess against the repository at `base`.
    pub fn with_base(mut self, base: &'a dyn Source) -> Self {
        self.base = Some(base);
        self
    }

    /// With these Access Analyzer options.
    pub fn with_access(mut self, access: AccessOptions) -> Self {
        self.access = access;
        self
    }
}

/// What [`validate`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Validation {
    /// Every problem, sorted by file and line.
    pub problems: Vec<Problem>,
    /// Notes on what was not checked.
    pub notes: Vec<String>,
}

/// The whole of `gitops validate` on a loaded repository: its own checks
/// ([`Repository::validate`]), the guard rules, and, with an analyzer, the
/// Access Analyzer checks of every IAM policy (CheckNoNewAccess too when a
/// base is given).
///
/// `Err` only when reading the source or calling Access Analyzer fails.
pub async fn validate(
    repo: &Repository,
    source: &dyn Source,
    options: ValidateOptions<'_>,
) -> std::result::Result<Validation, crate::Error> {
    let mut problems = repo.validate(source);
    let offline = check_offline(repo, source)?;
    problems.extend(offline.problems);
    let mut notes = Vec::new();
    if let Some(analyzer) = options.analyzer {
        let base = match options.base {
            Some(b) => Some(extract_policies(
                b,
                &templates_in_use(repo),
                &repo.config.policies.iam,
            )?),
            None => None,
        };
        let mut access = options.access;
        if access.deny_actions.is_empty() {
            access.deny_actions = repo.config.policies.deny_actions.clone();
        }
        problems.extend(offline.unresolved);
        let report = access::run(analyzer, &offline.policies, base.as_deref(), &access)
            .await
            .map_err(|e: AwsError| crate::Error::Aws(e))?;
        problems.extend(report.problems);
        notes.extend(report.notes);
    }
    sort(&mut problems);
    Ok(Validation { problems, notes })
}

/// Sorts problems by file, line and column, and drops repeats.
pub fn sort(problems: &mut Vec<Problem>) {
    problems.sort_by(|a, b| {
        (a.file.as_str(), a.line, a.column).cmp(&(b.file.as_str(), b.line, b.column))
    });
    let mut seen = Vec::new();
    problems.retain(|p| {
        if seen.contains(p) {
            false
        } else {
            seen.push(p.clone());
            true
        }
    });
}

#[cfg(test)]
mod tests;
