//! `gitops.yaml`: the repository-level settings.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_yaml::{Mapping, Value};

use crate::problem::Problem;
use crate::reader::{kind, parse_yaml, Reader};
use crate::yaml::Doc;

/// The file name of the repository settings.
pub const CONFIG_FILE: &str = "gitops.yaml";

/// The parsed `gitops.yaml`, with defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Config {
    /// Schema version; only `1` is supported.
    pub version: u32,
    /// Identifies this repository on the stacks it manages (`None`: derived).
    pub id: Option<String>,
    /// Folder holding one subfolder per environment.
    pub environments_path: String,
    /// Name of the environment file inside each environment folder.
    pub environment_file: String,
    /// Globs of paths whose change touches every environment.
    pub shared: Vec<String>,
    /// Globs of paths whose change touches nothing.
    pub ignore: Vec<String>,
    /// How environment stacks are named and built.
    pub stack: StackSettings,
    /// Pipeline mode settings; `None` is direct mode.
    pub pipeline: Option<PipelineSettings>,
    /// Settings every environment inherits.
    pub defaults: Defaults,
    /// Promotion order and the keys promotion copies.
    pub promotion: Promotion,
    /// What `gitops drift` leaves out.
    pub drift: DriftSettings,
    /// Policy gates of `gitops validate`: guard rules and IAM policy checks.
    pub policies: Policies,
}

/// `stack:` settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StackSettings {
    /// Stack-name pattern; `{environment}` is the folder name.
    pub name: String,
    /// Default template path (environments may override it).
    pub template: Option<String>,
    /// CloudFormation capabilities to acknowledge.
    pub capabilities: Vec<String>,
    /// S3 bucket for templates over 51,200 bytes (`stack.template-bucket`).
    pub template_bucket: Option<String>,
}

/// `pipeline:` settings (pipeline mode).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PipelineSettings {
    /// Pipeline-name pattern.
    pub name: String,
    /// Name pattern of the stack that holds the pipeline.
    pub stack_name: String,
    /// Template of the pipeline stack.
    pub template: String,
}

/// `defaults:` settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Defaults {
    /// Default AWS region.
    pub region: String,
    /// Default stack parameters, rendered as CloudFormation strings.
    pub parameters: BTreeMap<String, String>,
    /// Default stack tags.
    pub tags: BTreeMap<String, String>,
    /// The branch (name or glob) environments without their own `branch:`
    /// are bound to; `None`: the repository's default branch.
    pub branch: Option<String>,
}

/// `promotion:` settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Promotion {
    /// Environments from first to last.
    pub order: Vec<String>,
    /// Keys copied by promotion: `parameters.<Name>` or `tags.<Key>`.
    pub keys: Vec<String>,
}

/// `policies:` settings: the policy gates of `gitops validate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Policies {
    /// Globs of cfn-guard rule files (`.guard`) every template in use must pass.
    pub guard: Vec<String>,
    /// Globs of standalone JSON IAM policy documents (identity policies) to
    /// check with IAM Access Analyzer, besides those inside the templates.
    pub iam: Vec<String>,
    /// Actions no policy may grant (`service:Action`, such as `iam:PassRole`),
    /// checked with Access Analyzer's CheckAccessNotGranted.
    pub deny_actions: Vec<String>,
}

/// `drift:` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DriftSettings {
    /// Resource drift to leave out: `LogicalId` (the whole resource) or
    /// `LogicalId.PropertyPath` (such as `MyBucket.Tags`: that property and
    /// everything below it).
    pub ignore: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            version: 1,
            id: None,
            environments_path: "environments".into(),
            environment_file: "environment.yaml".into(),
            shared: vec!["common/**".into()],
            ignore: vec!["**/*.md".into()],
            stack: StackSettings {
                name: "{environment}-app".into(),
                template: None,
                capabilities: vec!["CAPABILITY_IAM".into()],
                template_bucket: None,
            },
            pipeline: None,
            defaults: Defaults {
                region: "us-east-1".into(),
                parameters: BTreeMap::new(),
                tags: BTreeMap::new(),
                branch: None,
            },
            promotion: Promotion {
                order: Vec::new(),
                keys: vec!["parameters.AppVersion".into()],
            },
            drift: DriftSettings::default(),
            policies: Policies::default(),
        }
    }
}

impl Default for PipelineSettings {
    fn default() -> Self {
        Self {
            name: "{environment}-deploy".into(),
            stack_name: "{environment}-pipeline".into(),
            template: "common/pipeline.yaml".into(),
        }
    }
}

const TOP_KEYS: &[&str] = &[
    "version",
    "id",
    "environments",
    "shared",
    "ignore",
    "stack",
    "pipeline",
    "defaults",
    "promotion",
    "drift",
    "policies",
];

/// Parses `gitops.yaml`. Problems are appended to `problems`; `None` means the
/// file is unusable (syntax error, not a mapping, bad version).
pub(crate) fn parse(text: &str, problems: &mut Vec<Problem>) -> Option<(Config, Option<Doc>)> {
    let (value, doc) = match parse_yaml(CONFIG_FILE, text) {
        Ok(v) => v,
        Err(p) => {
            problems.push(p);
            return None;
        }
    };
    let empty = Mapping::new();
    let top = match &value {
        Value::Mapping(m) => m,
        Value::Null => &empty,
        other => {
            problems.push(Problem::error(
                CONFIG_FILE,
                format!("gitops.yaml must be a mapping, found {}", kind(other)),
            ));
            return None;
        }
    };
    let mut r = Reader {
        file: CONFIG_FILE,
        doc: doc.as_ref(),
        problems,
    };
    let mut cfg = Config::default();
    r.check_keys(top, &[], TOP_KEYS);

    // A bad version is reported, and the rest is still checked as version 1
    // so that one run shows every problem.
    match top.get("version") {
        None => r.error(
            &[],
            "missing `version`; add `version: 1` at the top of gitops.yaml",
        ),
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        Some(other) => {
            let shown = crate::reader::render_scalar(other).unwrap_or_else(|| kind(other).into());
            r.error(
                &["version"],
                format!("unsupported `version: {shown}`; this gitops supports `version: 1`"),
            );
        }
    }

    cfg.id = r.get::<String>(top, &[], "id");
    if let Some(id) = &cfg.id {
        if id.trim().is_empty() || id.len() > 128 {
            r.error(&["id"], "`id` must be 1 to 128 characters");
        }
    }

    if let Some(m) = r.map(top, &[], "environments") {
        r.check_keys(m, &["environments"], &["path", "file"]);
        if let Some(p) = r.get::<String>(m, &["environments"], "path") {
            cfg.environments_path = p;
        }
        if let Some(f) = r.get::<String>(m, &["environments"], "file") {
            if f.contains('/') || f.is_empty() {
                r.error(
                    &["environments", "file"],
                    "`environments.file` must be a file name, not a path",
                );
            } else {
                cfg.environment_file = f;
            }
        }
        if crate::source::normalize(&cfg.environments_path).is_none() {
            r.error(
                &["environments", "path"],
                "`environments.path` must be a relative path inside the repository",
            );
        }
    }
    for key in ["shared", "ignore"] {
        if let Some(globs) = r.get::<Vec<String>>(top, &[], key) {
            for g in &globs {
                if let Err(e) = crate::glob::compile(g) {
                    r.error(&[key], format!("`{key}` glob `{g}` does not compile: {e}"));
                }
            }
            if key == "shared" {
                cfg.shared = globs;
            } else {
                cfg.ignore = globs;
            }
        }
    }
    if let Some(m) = r.map(top, &[], "stack") {
        r.check_keys(
            m,
            &["stack"],
            &["name", "template", "capabilities", "template-bucket"],
        );
        cfg.stack.template_bucket = r.get::<String>(m, &["stack"], "template-bucket");
        if let Some(b) = &cfg.stack.template_bucket {
            if !is_bucket_name(b) {
                r.error(
                    &["stack", "template-bucket"],
                    format!("`{b}` is not an S3 bucket name (3 to 63 lowercase letters, digits, `.` and `-`)"),
                );
            }
        }
        if let Some(n) = r.get::<String>(m, &["stack"], "name") {
            cfg.stack.name = n;
        }
        cfg.stack.template = r.get::<String>(m, &["stack"], "template");
        if let Some(c) = r.get::<Vec<String>>(m, &["stack"], "capabilities") {
            for cap in &c {
                if !CAPABILITIES.contains(&cap.as_str()) {
                    let hint = crate::problem::did_you_mean(cap, CAPABILITIES.iter().copied());
                    r.error(
                        &["stack", "capabilities"],
                        format!(
                            "unknown capability `{cap}`{hint} (known: {})",
                            CAPABILITIES.join(", ")
                        ),
                    );
                }
            }
            cfg.stack.capabilities = c;
        }
    }
    if top.contains_key("pipeline") {
        let mut p = PipelineSettings::default();
        if let Some(m) = r.map(top, &[], "pipeline") {
            r.check_keys(m, &["pipeline"], &["name", "stack-name", "template"]);
            if let Some(v) = r.get::<String>(m, &["pipeline"], "name") {
                p.name = v;
            }
            if let Some(v) = r.get::<String>(m, &["pipeline"], "stack-name") {
                p.stack_name = v;
            }
            if let Some(v) = r.get::<String>(m, &["pipeline"], "template") {
                p.template = v;
            }
        }
        cfg.pipeline = Some(p);
    }
    if let Some(m) = r.map(top, &[], "defaults") {
        r.check_keys(
            m,
            &["defaults"],
            &["region", "parameters", "tags", "branch"],
        );
        if let Some(v) = r.get::<String>(m, &["defaults"], "region") {
            check_region(&mut r, &["defaults", "region"], &v);
            cfg.defaults.region = v;
        }
        cfg.defaults.parameters = r.string_map(m, &["defaults"], "parameters");
        cfg.defaults.tags = r.string_map(m, &["defaults"], "tags");
        cfg.defaults.branch = r
            .get::<String>(m, &["defaults"], "branch")
            .filter(|b| check_branch(&mut r, &["defaults", "branch"], b));
    }
    if let Some(m) = r.map(top, &[], "promotion") {
        r.check_keys(m, &["promotion"], &["order", "keys"]);
        if let Some(v) = r.get::<Vec<String>>(m, &["promotion"], "order") {
            cfg.promotion.order = v;
        }
        if let Some(v) = r.get::<Vec<String>>(m, &["promotion"], "keys") {
            for k in &v {
                if PromotedKey::parse(k).is_none() {
                    r.error(
                        &["promotion", "keys"],
                        format!("promotion key `{k}` must be `parameters.<Name>` or `tags.<Key>`"),
                    );
                }
            }
            cfg.promotion.keys = v;
        }
    }
    if let Some(m) = r.map(top, &[], "policies") {
        r.check_keys(m, &["policies"], &["guard", "iam", "deny-actions"]);
        for key in ["guard", "iam"] {
            let Some(globs) = r.get::<Vec<String>>(m, &["policies"], key) else {
                continue;
            };
            for g in &globs {
                if let Err(e) = crate::glob::compile(g) {
                    r.error(
                        &["policies", key],
                        format!("`policies.{key}` glob `{g}` does not compile: {e}"),
                    );
                } else if crate::source::normalize(g).is_none() {
                    r.error(
                        &["policies", key],
                        format!(
                            "`policies.{key}` glob `{g}` must be relative to the repository root"
                        ),
                    );
                }
            }
            if key == "guard" {
                cfg.policies.guard = globs;
            } else {
                cfg.policies.iam = globs;
            }
        }
        if let Some(actions) = r.get::<Vec<String>>(m, &["policies"], "deny-actions") {
            for a in &actions {
                if !is_iam_action(a) {
                    r.error(
                        &["policies", "deny-actions"],
                        format!("`policies.deny-actions` entry `{a}` is not an IAM action such as `iam:PassRole` or `s3:DeleteBucket`"),
                    );
                }
            }
            cfg.policies.deny_actions = actions;
        }
    }
    if let Some(m) = r.map(top, &[], "drift") {
        r.check_keys(m, &["drift"], &["ignore"]);
        if let Some(v) = r.get::<Vec<String>>(m, &["drift"], "ignore") {
            for entry in &v {
                if !is_drift_ignore(entry) {
                    r.error(
                        &["drift", "ignore"],
                        format!("`drift.ignore` entry `{entry}` must be `LogicalId` or `LogicalId.PropertyPath`, such as `MyBucket` or `MyBucket.Tags`"),
                    );
                }
            }
            cfg.drift.ignore = v;
        }
    }
    Some((cfg, doc))
}

/// Whether `s` is `LogicalId` or `LogicalId.Property.Path`: an alphanumeric
/// logical id, then non-empty dot-separated segments without `/` or spaces.
fn is_drift_ignore(s: &str) -> bool {
    let mut parts = s.split('.');
    let id = parts.next().unwrap_or_default();
    !id.is_empty()
        && id.chars().all(|c| c.is_ascii_alphanumeric())
        && parts.all(|p| !p.is_empty() && !p.contains(|c: char| c == '/' || c.is_whitespace()))
}

/// Whether `s` looks like an IAM action: `service:Action`, the service in
/// lowercase letters, digits and `-`, the action in letters, digits and the
/// wildcards `*` and `?`.
fn is_iam_action(s: &str) -> bool {
    let Some((service, action)) = s.split_once(':') else {
        return false;
    };
    !service.is_empty()
        && service
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !action.is_empty()
        && action
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
}

/// Capabilities CloudFormation accepts.
pub(crate) const CAPABILITIES: &[&str] = &[
    "CAPABILITY_IAM",
    "CAPABILITY_NAMED_IAM",
    "CAPABILITY_AUTO_EXPAND",
];

fn is_bucket_name(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Whether `s` looks like an IAM role ARN (`arn:<partition>:iam::<12 digits>:role/<name>`).
pub(crate) fn is_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5]
            .strip_prefix("role/")
            .is_some_and(|n| !n.is_empty())
}

/// Checks a `branch:` binding (a branch name or a glob such as
/// `release/*`); reports it at `path` and returns false when it is unusable.
pub(crate) fn check_branch(r: &mut Reader<'_>, path: &[&str], pattern: &str) -> bool {
    let why = if pattern.trim().is_empty() {
        Some("it is empty".to_string())
    } else {
        crate::glob::compile(pattern)
            .err()
            .map(|e| e.kind().to_string())
    };
    match why {
        Some(why) => {
            r.error(
                path,
                format!("`branch: {pattern}` is not a usable branch name or glob ({why}); write a branch such as `main` or a glob such as `release/*`"),
            );
            false
        }
        None => true,
    }
}

pub(crate) fn check_region(r: &mut Reader<'_>, path: &[&str], region: &str) {
    let ok = regex_lite_region(region);
    if !ok {
        r.error(
            path,
            format!("`{region}` is not an AWS region name (such as us-east-1 or eu-west-1)"),
        );
    }
}

fn regex_lite_region(s: &str) -> bool {
    // e.g. us-east-1, us-gov-west-1, ap-southeast-4, eu-central-2
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// A key that promotion copies between environments.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum PromotedKey {
    /// `parameters.<Name>`.
    Parameter(String),
    /// `tags.<Key>`.
    Tag(String),
}

impl PromotedKey {
    /// Parses `parameters.X` or `tags.X`.
    pub fn parse(s: &str) -> Option<Self> {
        let (map, name) = s.split_once('.')?;
        if name.is_empty() {
            return None;
        }
        match map {
            "parameters" => Some(Self::Parameter(name.into())),
            "tags" => Some(Self::Tag(name.into())),
            _ => None,
        }
    }
}

impl std::fmt::Display for PromotedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Parameter(n) => write!(f, "parameters.{n}"),
            Self::Tag(n) => write!(f, "tags.{n}"),
        }
    }
}
