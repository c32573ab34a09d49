//! `gitops plan`: what a deploy would do, as data, and its renderings.
//!
//! A [`Plan`] holds one [`EnvPreview`] per affected environment: the deploy
//! planner's [`Action`]s (from AWS, or guessed from git with
//! [`guess_plan`]), the parameter and tag changes from base to head
//! ([`value_changes`]), the unified diffs of the environment file and of the
//! templates it uses that changed ([`env_diffs`]), and, where AWS was
//! reachable, the resource changes of a change-set preview (made by
//! [`crate::deploy::Executor::preview`]).
//!
//! Everything here is pure. The renderers ([`render_markdown`],
//! [`render_text`]) and [`truncate_markdown`] give the pull-request comment,
//! the step summary and the terminal output. `NoEcho` parameter values are
//! masked as `****` everywhere, JSON included.
//!
//! ```
//! use gitops_core::plan::{file_diff, truncate_markdown};
//!
//! let d = file_diff("environments/dev/environment.yaml", "a: 1\n", "a: 2\n").unwrap();
//! assert!(d.diff.contains("-a: 1\n+a: 2\n"));
//! assert_eq!(truncate_markdown("short", 100), "short");
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::aws::Stack;
use crate::deploy::{
    plan_environment, Action, Desired, EnvPlan, Observed, PlanOptions, Refusal, StackRole,
    TAG_MANAGED_BY,
};
use crate::detect::Change;
use crate::markdown::{code, html};
use crate::model::{Environment, Repository};
use crate::source::{Entry, Source};
use crate::yaml::{Node, NodeKind, Seg};

/// The hidden marker that identifies the plan's pull-request comment.
pub const MARKER: &str = "<!-- gitops-plan -->";
/// GitHub's limit on a comment body, in characters.
pub const COMMENT_LIMIT: usize = 65_536;
pub use crate::text::MASK;

/// One parameter or tag that differs between base and head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ValueChange {
    /// The parameter name or tag key.
    pub key: String,
    /// The value at base (`None`: not set).
    pub old: Option<String>,
    /// The value at head (`None`: not set).
    pub new: Option<String>,
}

/// The parameter and tag changes of one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ValueChanges {
    /// Parameter changes, by name.
    pub parameters: Vec<ValueChange>,
    /// Tag changes, by key.
    pub tags: Vec<ValueChange>,
}

/// The resolved parameters and tags that differ from `base` to `head`
/// (either may be absent: a created or a deleted environment), sorted by key.
/// Values are not masked here; [`EnvPreview::new`] masks `NoEcho` ones.
pub fn value_changes(base: Option<&Environment>, head: Option<&Environment>) -> ValueChanges {
    let empty = BTreeMap::new();
    let diff = |old: &BTreeMap<String, String>, new: &BTreeMap<String, String>| {
        let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        keys.into_iter()
            .filter(|k| old.get(*k) != new.get(*k))
            .map(|k| ValueChange {
                key: k.clone(),
                old: old.get(k).cloned(),
                new: new.get(k).cloned(),
            })
            .collect()
    };
    ValueChanges {
        parameters: diff(
            base.map_or(&empty, |e| &e.parameters),
            head.map_or(&empty, |e| &e.parameters),
        ),
        tags: diff(
            base.map_or(&empty, |e| &e.tags),
            head.map_or(&empty, |e| &e.tags),
        ),
    }
}

/// A unified diff of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FileDiff {
    /// The repository-relative path.
    pub path: String,
    /// The unified diff (`--- a/…`, `+++ b/…`, hunks with 3 lines of context).
    pub diff: String,
}

/// The unified diff of `path` from `old` to `new`, or `None` when they are equal.
pub fn file_diff(path: &str, old: &str, new: &str) -> Option<FileDiff> {
    if old == new {
        return None;
    }
    let mut diff = similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string();
    if !diff.ends_with('\n') {
        diff.push('\n');
    }
    Some(FileDiff {
        path: path.to_string(),
        diff,
    })
}

/// The diffs of environment `name` from base to head: its environment file,
/// then each template it uses (at base or at head) whose content changed.
/// A side given as `None` counts as empty (a first commit, say). Every
/// value of a `secrets` parameter is masked before diffing, whatever its
/// YAML form ([`mask_environment_secrets`], [`mask_template_secrets`]).
pub fn env_diffs(
    base: Option<(&Repository, &dyn Source)>,
    head: Option<(&Repository, &dyn Source)>,
    name: &str,
    secrets: &BTreeSet<String>,
) -> Vec<FileDiff> {
    let base_env = base.and_then(|(r, _)| r.environment(name));
    let head_env = head.and_then(|(r, _)| r.environment(name));
    let read = |side: Option<(&Repository, &dyn Source)>, path: &str| -> String {
        match side.map(|(_, s)| s.read(path)) {
            Some(Ok(Entry::File(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
            _ => String::new(),
        }
    };
    let mut out = Vec::new();
    // The environment file, read from each side at that side's own path.
    let old = base_env
        .map(|e| mask_environment_secrets(&read(base, &e.file), secrets))
        .unwrap_or_default();
    let new = head_env
        .map(|e| mask_environment_secrets(&read(head, &e.file), secrets))
        .unwrap_or_default();
    if let Some(path) = head_env.or(base_env).map(|e| e.file.clone()) {
        out.extend(file_diff(&path, &old, &new));
    }
    let mut templates = BTreeSet::new();
    for (side, env) in [(base, base_env), (head, head_env)] {
        if let (Some((repo, _)), Some(env)) = (side, env) {
            templates.insert(env.template.clone());
            if let Some(p) = &repo.config.pipeline {
                templates.insert(p.template.clone());
            }
        }
    }
    for path in templates {
        out.extend(file_diff(
            &path,
            &mask_template_secrets(&read(base, &path), secrets),
            &mask_template_secrets(&read(head, &path), secrets),
        ));
    }
    out
}

/// `src`, an environment file (or any YAML), with the value of every
/// mapping entry whose key is one of `secrets` replaced by [`MASK`],
/// found on the YAML syntax tree: plain, quoted, block (`|`) and folded
/// (`>`) scalars, flow maps, explicit keys (`? DbPassword`), and through
/// aliases (the anchored value is masked where it is written). Line breaks
/// are kept, so a diff still lines up. A file that does not parse is
/// masked whole.
pub fn mask_environment_secrets(src: &str, secrets: &BTreeSet<String>) -> String {
    if secrets.is_empty() {
        return src.to_string();
    }
    let root = match Node::parse(src) {
        Ok(Some(root)) => root,
        Ok(None) => return src.to_string(),
        Err(_) => return mask_range(src, 0, src.len()),
    };
    let mut ranges = Vec::new();
    secret_values(src, &root, &root, secrets, &mut ranges);
    mask_ranges(src, ranges)
}

/// `src`, a CloudFormation template (YAML or JSON), with the `Default` of
/// every `secrets` parameter replaced by [`MASK`].
pub fn mask_template_secrets(src: &str, secrets: &BTreeSet<String>) -> String {
    if secrets.is_empty() {
        return src.to_string();
    }
    let Ok(Some(root)) = Node::parse(src) else {
        return src.to_string();
    };
    let mut ranges = Vec::new();
    for name in secrets {
        if let Some(v) = root.get(&[Seg::Key("Parameters"), Seg::Key(name), Seg::Key("Default")]) {
            masked_node(src, &root, v, &mut ranges, 0);
        }
    }
    mask_ranges(src, ranges)
}

/// The key text of a mapping key: a scalar's value, or an alias's target's.
fn key_text<'n>(src: &str, root: &'n Node, key: &'n Node) -> Option<&'n str> {
    match &key.kind {
        NodeKind::Alias => anchored(src, root, alias_name(src, key)?).and_then(Node::as_str),
        _ => key.as_str(),
    }
}

/// Collects the byte ranges of every value of a `secrets` key under `node`.
fn secret_values(
    src: &str,
    root: &Node,
    node: &Node,
    secrets: &BTreeSet<String>,
    out: &mut Vec<(usize, usize)>,
) {
    match &node.kind {
        NodeKind::Map { entries, .. } => {
            for (k, v) in entries {
                if key_text(src, root, k).is_some_and(|k| secrets.contains(k)) {
                    masked_node(src, root, v, out, 0);
                }
                secret_values(src, root, k, secrets, out);
                secret_values(src, root, v, secrets, out);
            }
        }
        NodeKind::Seq { items, .. } => {
            for i in items {
                secret_values(src, root, i, secrets, out);
            }
        }
        _ => {}
    }
}

/// Collects the byte ranges of every scalar of `node`, following aliases.
fn masked_node(src: &str, root: &Node, node: &Node, out: &mut Vec<(usize, usize)>, depth: usize) {
    if depth > 16 {
        return;
    }
    match &node.kind {
        NodeKind::Scalar { .. } => {
            let start = node.content_start(src).min(node.end.byte);
            out.push((start, node.end.byte));
        }
        NodeKind::Alias => {
            if let Some(target) = alias_name(src, node).and_then(|n| anchored(src, root, n)) {
                masked_node(src, root, target, out, depth + 1);
            }
        }
        NodeKind::Map { entries, .. } => {
            for (_, v) in entries {
                masked_node(src, root, v, out, depth + 1);
            }
        }
        NodeKind::Seq { items, .. } => {
            for i in items {
                masked_node(src, root, i, out, depth + 1);
            }
        }
    }
}

/// The name of the alias `*name` at `node`.
fn alias_name<'s>(src: &'s str, node: &Node) -> Option<&'s str> {
    let rest = src.get(node.start.byte..)?.strip_prefix('*')?;
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, ',' | ']' | '}'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The node anchored `&name` (the last one, as an alias refers back to the
/// nearest definition before it; any of them is masked the same way).
fn anchored<'n>(src: &str, node: &'n Node, name: &str) -> Option<&'n Node> {
    let mut found = (node.anchor(src) == Some(name)).then_some(node);
    let children: Vec<&Node> = match &node.kind {
        NodeKind::Map { entries, .. } => entries.iter().flat_map(|(k, v)| [k, v]).collect(),
        NodeKind::Seq { items, .. } => items.iter().collect(),
        _ => Vec::new(),
    };
    for c in children {
        if let Some(n) = anchored(src, c, name) {
            found = Some(n);
        }
    }
    found
}

/// `src` with every range masked.
fn mask_ranges(src: &str, mut ranges: Vec<(usize, usize)>) -> String {
    ranges.sort_unstable();
    let mut out = String::with_capacity(src.len());
    let mut at = 0;
    for (a, b) in ranges {
        let (a, b) = (a.max(at), b.min(src.len()));
        if a >= b || !src.is_char_boundary(a) || !src.is_char_boundary(b) {
            continue;
        }
        out.push_str(&src[at..a]);
        out.push_str(&mask_range(&src[a..b], 0, b - a));
        at = b;
    }
    out.push_str(&src[at..]);
    out
}

/// `text[a..b]` with the content of each line replaced by [`MASK`]
/// (indentation, line breaks and blank lines kept).
fn mask_range(text: &str, a: usize, b: usize) -> String {
    text[a..b]
        .split('\n')
        .map(|line| {
            let body = line.trim_end_matches('\r');
            let content = body.trim_start_matches([' ', '\t']);
            if content.is_empty() {
                line.to_string()
            } else {
                let indent = &body[..body.len() - content.len()];
                let cr = if line.ends_with('\r') { "\r" } else { "" };
                format!("{indent}{MASK}{cr}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub use crate::deploy::ResourceChange;

/// What reviewers must not miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum HighlightKind {
    /// A whole stack is deleted.
    DeleteStack,
    /// A resource is removed from a stack.
    Remove,
    /// A resource is replaced (`replacement: True`).
    Replace,
    /// A resource may be replaced (`replacement: Conditional`).
    MayReplace,
}

/// One replacement or deletion, listed at the top of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Highlight {
    /// The environment.
    pub environment: String,
    /// What happens.
    pub kind: HighlightKind,
    /// The stack.
    pub stack: String,
    /// The resource's logical id (not for a stack deletion).
    pub logical_id: Option<String>,
    /// The resource's type (not for a stack deletion).
    pub resource_type: Option<String>,
}

impl std::fmt::Display for Highlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let res = format!(
            "`{}` ({})",
            self.logical_id.as_deref().unwrap_or_default(),
            self.resource_type.as_deref().unwrap_or_default()
        );
        match self.kind {
            HighlightKind::DeleteStack => write!(f, "stack `{}` will be deleted", self.stack),
            HighlightKind::Remove => write!(f, "{res} will be removed from `{}`", self.stack),
            HighlightKind::Replace => write!(f, "{res} in `{}` will be replaced", self.stack),
            HighlightKind::MayReplace => write!(
                f,
                "{res} in `{}` may be replaced (replacement: Conditional)",
                self.stack
            ),
        }
    }
}

/// The plan of one environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EnvPreview {
    /// The environment.
    pub environment: String,
    /// How it changed in git.
    pub change: Change,
    /// Its region.
    pub region: String,
    /// Whether the actions come from what AWS has (`false`: a git-level
    /// guess that assumes AWS matches the base revision).
    pub observed: bool,
    /// What the deploy would do (the deploy planner's actions; `NoEcho`
    /// values masked).
    pub actions: Vec<Action>,
    /// Parameter changes, base → head.
    pub parameter_changes: Vec<ValueChange>,
    /// Tag changes, base → head.
    pub tag_changes: Vec<ValueChange>,
    /// The environment file's diff and those of changed templates it uses.
    pub diffs: Vec<FileDiff>,
    /// The change-set preview; `None` when not previewed (see `preview_note`).
    pub resource_changes: Option<Vec<ResourceChange>>,
    /// Why there is no preview, or what went wrong making it.
    pub preview_note: Option<String>,
    /// The names of the change sets made for the preview (all deleted since).
    pub change_sets: Vec<String>,
    /// Secret parameter names and the values to hide, for diffs.
    #[serde(skip)]
    secrets: Vec<(String, Vec<String>)>,
}

impl EnvPreview {
    /// The preview of `plan`, with the value changes from `base` to `head`
    /// (the resolved environment at each side). Values of `secret`
    /// parameters (`NoEcho` in a template) are masked in the value changes
    /// and in the actions.
    pub fn new(
        plan: EnvPlan,
        base: Option<&Environment>,
        head: Option<&Environment>,
        secret: &BTreeSet<String>,
    ) -> Self {
        let changes = value_changes(base, head);
        let mask = |v: Option<String>, key: &str| v.map(|v| mask_if(secret, key, v));
        let parameter_changes = changes
            .parameters
            .into_iter()
            .map(|c| ValueChange {
                old: mask(c.old, &c.key),
                new: mask(c.new, &c.key),
                key: c.key,
            })
            .collect();
        let secrets = secret
            .iter()
            .map(|k| {
                let values: BTreeSet<String> = [base, head]
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.parameters.get(k).cloned())
                    .collect();
                (k.clone(), values.into_iter().collect())
            })
            .collect();
        let actions = plan
            .actions
            .into_iter()
            .map(|a| mask_action(a, secret))
            .collect();
        Self {
            environment: plan.environment,
            change: plan.change,
            region: plan.region,
            observed: true,
            actions,
            parameter_changes,
            tag_changes: changes.tags,
            diffs: Vec::new(),
            resource_changes: None,
            preview_note: None,
            change_sets: Vec::new(),
            secrets,
        }
    }

    /// Marks the actions as a git-level guess (AWS was not consulted).
    pub fn guessed(mut self) -> Self {
        self.observed = false;
        self
    }

    /// Sets the diffs, with secret values hidden.
    pub fn with_diffs(mut self, diffs: Vec<FileDiff>) -> Self {
        self.diffs = diffs
            .into_iter()
            .map(|d| FileDiff {
                diff: redact_diff(&d.diff, &self.secrets),
                path: d.path,
            })
            .collect();
        self
    }

    /// Sets the change-set preview's resource changes.
    pub fn with_resource_changes(mut self, changes: Vec<ResourceChange>) -> Self {
        self.resource_changes = Some(changes);
        self
    }

    /// Sets the names of the change sets the preview made (and deleted).
    pub fn with_change_sets(mut self, names: Vec<String>) -> Self {
        self.change_sets = names;
        self
    }

    /// Sets the preview note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.preview_note = Some(note.into());
        self
    }

    /// Whether a deploy would change anything in AWS.
    pub fn has_changes(&self) -> bool {
        self.actions.iter().any(Action::mutates)
    }

    /// The action labels, such as `update-pipeline-stack, start-pipeline`.
    pub fn labels(&self) -> String {
        if self.actions.is_empty() {
            return "nothing".into();
        }
        self.actions
            .iter()
            .map(Action::label)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The replacements and deletions of this environment.
    pub fn highlights(&self) -> Vec<Highlight> {
        let mut out = Vec::new();
        for a in &self.actions {
            if let Action::DeleteStack { stack, .. } = a {
                out.push(Highlight {
                    environment: self.environment.clone(),
                    kind: HighlightKind::DeleteStack,
                    stack: stack.clone(),
                    logical_id: None,
                    resource_type: None,
                });
            }
        }
        for c in self.resource_changes.iter().flatten() {
            let kind = if c.action == "Remove" {
                HighlightKind::Remove
            } else {
                match c.replacement.as_deref() {
                    Some("True") => HighlightKind::Replace,
                    Some("Conditional") => HighlightKind::MayReplace,
                    _ => continue,
                }
            };
            out.push(Highlight {
                environment: self.environment.clone(),
                kind,
                stack: c.stack.clone(),
                logical_id: Some(c.logical_id.clone()),
                resource_type: Some(c.resource_type.clone()),
            });
        }
        out
    }
}

fn mask_if(secret: &BTreeSet<String>, key: &str, value: String) -> String {
    if secret.contains(key) {
        MASK.to_string()
    } else {
        value
    }
}

fn mask_action(mut a: Action, secret: &BTreeSet<String>) -> Action {
    match &mut a {
        Action::DeployStack { spec, .. } => {
            for (k, v) in spec.parameters.iter_mut() {
                if secret.contains(k) || spec.secret_parameters.contains(k) {
                    *v = MASK.to_string();
                }
            }
        }
        Action::StartPipeline { variables, .. } => {
            for (k, v) in variables.iter_mut() {
                if secret.contains(k) {
                    *v = MASK.to_string();
                }
            }
        }
        _ => {}
    }
    a
}

/// Hides secret values in a diff: the value after `Key:` on a changed or
/// context line, and any literal occurrence of a known value of 4 or more
/// characters.
fn redact_diff(diff: &str, secrets: &[(String, Vec<String>)]) -> String {
    if secrets.is_empty() {
        return diff.to_string();
    }
    let mut out = String::with_capacity(diff.len());
    for line in diff.split_inclusive('\n') {
        let is_header = line.starts_with("+++") || line.starts_with("---");
        let mut l = line.to_string();
        if !is_header {
            for (key, values) in secrets {
                l = redact_key(&l, key);
                for v in values.iter().filter(|v| v.chars().count() >= 4) {
                    l = l.replace(v.as_str(), MASK);
                }
            }
        }
        out.push_str(&l);
    }
    out
}

/// Replaces the value of `key: value` (plain, quoted, or inside a flow map) with the mask.
fn redact_key(line: &str, key: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find(key) {
        let before_ok = rest[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-'));
        let after = &rest[i + key.len()..];
        let after_quote = after.strip_prefix(['"', '\'']).unwrap_or(after);
        let colon = after_quote.trim_start_matches([' ', '\t']);
        if !before_ok || !colon.starts_with(':') {
            out.push_str(&rest[..i + key.len()]);
            rest = after;
            continue;
        }
        let value_start = &colon[1..];
        let trimmed = value_start.trim_start_matches([' ', '\t']);
        let head_len = rest.len() - trimmed.len();
        out.push_str(&rest[..head_len]);
        let end = value_end(trimmed);
        if end > 0 {
            out.push_str(MASK);
        }
        rest = &trimmed[end..];
    }
    out.push_str(rest);
    out
}

/// The byte length of the YAML scalar at the start of `s`.
fn value_end(s: &str) -> usize {
    let mut chars = s.char_indices();
    match chars.next() {
        None => 0,
        Some((_, q @ ('"' | '\''))) => {
            let mut prev_escape = false;
            for (i, c) in chars {
                if c == q && !(q == '"' && prev_escape) {
                    return i + c.len_utf8();
                }
                prev_escape = c == '\\' && !prev_escape;
            }
            s.trim_end_matches(['\n', '\r']).len()
        }
        Some((_, '|' | '>' | '{' | '[')) => 0,
        Some(_) => {
            let line = s.trim_end_matches(['\n', '\r']);
            let mut end = line.len();
            for pat in [",", "}", "]", " #"] {
                if let Some(i) = line.find(pat) {
                    end = end.min(i);
                }
            }
            line[..end].trim_end().len()
        }
    }
}

/// Why an environment's plan gets no change-set preview, or `None` when it
/// deploys a stack and can be previewed.
pub fn why_not_previewed(actions: &[Action]) -> Option<String> {
    if actions.iter().any(|a| matches!(a, Action::Refuse { .. })) {
        return Some("not previewed: the deploy refuses".into());
    }
    if actions
        .iter()
        .any(|a| matches!(a, Action::DeployStack { .. }))
    {
        return None;
    }
    if actions
        .iter()
        .any(|a| matches!(a, Action::DeleteStack { .. }))
    {
        return Some("not previewed: the stacks are deleted".into());
    }
    if actions
        .iter()
        .any(|a| matches!(a, Action::StartPipeline { .. }))
    {
        // The preview shows the environment stack as the pipeline will
        // deploy it (`Executor::preview`).
        return None;
    }
    if actions
        .iter()
        .any(|a| matches!(a, Action::SetTerminationProtection { .. }))
    {
        return Some("not previewed: only termination protection changes".into());
    }
    Some("not previewed: nothing to deploy".into())
}

/// What AWS would hold if it matched the base revision: the base's stacks,
/// healthy, managed by their repository, with the base's template,
/// parameters and tags. For an environment that did not exist at base,
/// nothing. When the base's desired state could not be built (`base` is
/// `None` but `base_env` is known), the stacks exist with unknown templates.
pub fn assumed_observed(
    repo_id: &str,
    base_env: Option<&Environment>,
    base: Option<&Desired>,
) -> Observed {
    let mut o = Observed::new();
    let Some(env) = base_env else {
        return o;
    };
    let stack = |name: &str, spec: Option<&crate::deploy::StackSpec>| {
        let mut tags = spec.map(|s| s.tags.clone()).unwrap_or_default();
        tags.entry(TAG_MANAGED_BY.into())
            .or_insert_with(|| repo_id.to_string());
        tags.entry(crate::deploy::TAG_ENVIRONMENT.into())
            .or_insert_with(|| env.name.clone());
        Stack {
            name: name.to_string(),
            id: format!("(assumed) {name}"),
            status: "UPDATE_COMPLETE".into(),
            parameters: spec.map(|s| s.parameters.clone()).unwrap_or_default(),
            tags,
            ..Stack::default()
        }
    };
    let spec = base.and_then(|d| d.stack.as_ref());
    o.stack = Some(stack(&env.stack, spec));
    o.stack_template = spec.map(|s| s.template_normalized.clone());
    if let Some(ps) = &env.pipeline_stack {
        let spec = base.and_then(|d| d.pipeline_stack.as_ref());
        o.pipeline_stack = Some(stack(ps, spec));
        o.pipeline_stack_template = spec.map(|s| s.template_normalized.clone());
    }
    o
}

/// The deploy plan of `desired` as git alone can tell it: planned against
/// [`assumed_observed`], so it never checks the account, the stacks'
/// ownership or their states.
pub fn guess_plan(
    repo_id: &str,
    desired: &Desired,
    base_env: Option<&Environment>,
    base: Option<&Desired>,
    options: PlanOptions,
) -> EnvPlan {
    let observed = assumed_observed(repo_id, base_env, base);
    let mut plan = plan_environment(repo_id, desired, &observed, options);
    for a in &mut plan.actions {
        if let Action::Nothing { reason } = a {
            if desired.change == Change::Deleted {
                *reason = "the environment was removed".into();
            } else {
                *reason =
                    "the template, parameters and tags are the same as at the base revision".into();
            }
        }
    }
    plan
}

/// The run-level deletion rule over every environment's preview (as
/// [`crate::deploy::limit_deletions`] does for a deploy): with more than
/// `max` stack deletions in all, each preview that deletes shows the
/// refusal instead.
pub fn limit_deletions(previews: &mut [EnvPreview], max: usize) {
    if let Some(r) = crate::deploy::deletion_limit(previews.iter().flat_map(|p| &p.actions), max) {
        for p in previews {
            if p.actions
                .iter()
                .any(|a| matches!(a, Action::DeleteStack { .. }))
            {
                crate::deploy::safety::refuse_deletions(&mut p.actions, &r);
                p.preview_note = why_not_previewed(&p.actions);
            }
        }
    }
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Plan {
    /// The base commit, when there is one.
    pub base: Option<String>,
    /// The head commit.
    pub head: Option<String>,
    /// Whether AWS was consulted (`false` with `--no-aws`).
    pub aws: bool,
    /// How many times each action label occurs, over all environments.
    pub counts: BTreeMap<String, usize>,
    /// Whether a deploy would change anything in AWS.
    pub has_changes: bool,
    /// Replacements and deletions, for the top of the plan.
    pub highlights: Vec<Highlight>,
    /// One entry per affected environment.
    pub environments: Vec<EnvPreview>,
}

impl Plan {
    /// The plan of `environments` from `base` to `head`; `aws` says whether AWS was consulted.
    pub fn new(
        base: Option<String>,
        head: Option<String>,
        aws: bool,
        environments: Vec<EnvPreview>,
    ) -> Self {
        let mut counts = BTreeMap::new();
        for e in &environments {
            if e.actions.is_empty() {
                *counts.entry("nothing".to_string()).or_insert(0) += 1;
            }
            for a in &e.actions {
                *counts.entry(a.label().to_string()).or_insert(0) += 1;
            }
        }
        Self {
            has_changes: environments.iter().any(EnvPreview::has_changes),
            highlights: environments
                .iter()
                .flat_map(EnvPreview::highlights)
                .collect(),
            base,
            head,
            aws,
            counts,
            environments,
        }
    }

    /// The exit code of `gitops plan`: 1 when `failures` environments
    /// could not be planned, else 2 when `changes_exit` (`--exit-code`) and
    /// a deploy would change something, else 0.
    pub fn exit_code(&self, failures: usize, changes_exit: bool) -> u8 {
        if failures > 0 {
            1
        } else if changes_exit && self.has_changes {
            2
        } else {
            0
        }
    }

    fn counts_line(&self, bold: bool) -> String {
        if self.counts.is_empty() {
            return "nothing to do".into();
        }
        self.counts
            .iter()
            .map(|(k, n)| {
                if bold {
                    format!("**{n}** {k}")
                } else {
                    format!("{n} {k}")
                }
            })
            .collect::<Vec<_>>()
            .join(if bold { " · " } else { ", " })
    }
}

/// One line per action, as a reviewer reads it.
pub fn describe_action(a: &Action) -> String {
    match a {
        Action::DeployStack {
            spec,
            replace_failed,
            protect,
            ..
        } => {
            let mut s = format!("{} `{}`", a.label(), spec.name);
            if *replace_failed {
                s.push_str(" (deleting it first: it is in ROLLBACK_COMPLETE)");
            }
            if *protect {
                s.push_str(" (termination protection on)");
            }
            s
        }
        Action::StartPipeline {
            pipeline, commit, ..
        } => format!(
            "start-pipeline `{pipeline}` at `{}`",
            crate::text::short_commit(commit)
        ),
        Action::DeleteStack { role, stack } => match role {
            StackRole::Pipeline => format!("delete-stack `{stack}` (the pipeline's stack)"),
            _ => format!("delete-stack `{stack}`"),
        },
        Action::SetTerminationProtection { stack, enabled, .. } => format!(
            "set-termination-protection `{stack}` ({})",
            if *enabled { "on" } else { "off" }
        ),
        Action::Refuse { reason } => format!("refuse ({}): {reason}", refusal_kind(reason)),
        Action::Nothing { reason } => format!("nothing: {reason}"),
    }
}

fn refusal_kind(r: &Refusal) -> &'static str {
    match r {
        Refusal::Protected { .. } => "protected",
        Refusal::DeleteNotAllowed { .. } => "deletion not allowed",
        Refusal::FileStillThere { .. } => "environment file still there",
        Refusal::ClaimedAtHead { .. } => "stack claimed at head",
        Refusal::NotOwned { .. } => "not this repository's stack",
        Refusal::TerminationProtected { .. } => "termination protection",
        Refusal::TooManyDeletions { .. } => "too many deletions",
        Refusal::DetectMismatch { .. } => "detect result mismatch",
        Refusal::ForeignStack { .. } => "foreign stack",
        Refusal::AccountMismatch { .. } => "account mismatch",
        Refusal::UpdateRollbackFailed { .. } => "update rollback failed",
        Refusal::OutOfBand { .. } => "changed outside gitops",
    }
}

fn show(v: Option<&str>) -> &str {
    v.unwrap_or("(unset)")
}

// ---------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------

fn cell_value(v: Option<&str>) -> String {
    match v {
        Some(v) => code(v),
        None => "_(unset)_".into(),
    }
}

/// Turns the backticks of [`describe_action`] and [`Highlight`] text into
/// safe markdown (escaping HTML outside code spans).
fn md_text(s: &str) -> String {
    html(s)
}

fn fence(content: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in content.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

fn value_table(out: &mut String, title: &str, changes: &[ValueChange]) {
    if changes.is_empty() {
        return;
    }
    let _ = write!(out, "| {title} | Old | New |\n|---|---|---|\n");
    for c in changes {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            code(&c.key),
            cell_value(c.old.as_deref()),
            cell_value(c.new.as_deref())
        );
    }
    out.push('\n');
}

/// The plan as markdown for a pull-request comment or a step summary: the
/// hidden [`MARKER`], a header with counts per action, the replacements and
/// deletions, then one collapsible `<details>` section per environment.
pub fn render_markdown(plan: &Plan) -> String {
    let mut out = format!("{MARKER}\n### gitops plan\n\n");
    let _ = writeln!(
        out,
        "`{}` → `{}` · {} environment{}: {}\n",
        crate::text::short_commit_or(plan.base.as_deref(), "(none)"),
        crate::text::short_commit_or(plan.head.as_deref(), "(none)"),
        plan.environments.len(),
        if plan.environments.len() == 1 {
            ""
        } else {
            "s"
        },
        plan.counts_line(true)
    );
    if !plan.aws {
        out.push_str("> **Git-level plan** (`--no-aws`): the actions assume AWS matches the base revision, and no change set was previewed.\n\n");
    }
    if plan.environments.is_empty() {
        out.push_str("No environment changed.\n");
        return out;
    }
    if !plan.highlights.is_empty() {
        out.push_str("#### ⚠️ Replacements and deletions\n\n");
        for h in &plan.highlights {
            let _ = writeln!(
                out,
                "- **{}**: {}",
                html(&h.environment),
                md_text(&h.to_string())
            );
        }
        out.push('\n');
    }
    for e in &plan.environments {
        let _ = write!(
            out,
            "<details><summary><b>{}</b> · {} · {}{}</summary>\n\n",
            html(&e.environment),
            e.change,
            html(&e.labels()),
            if e.observed { "" } else { " (git-level guess)" }
        );
        for a in &e.actions {
            let _ = writeln!(out, "- {}", md_text(&describe_action(a)));
        }
        out.push('\n');
        value_table(&mut out, "Parameter", &e.parameter_changes);
        value_table(&mut out, "Tag", &e.tag_changes);
        match &e.resource_changes {
            Some(changes) if changes.is_empty() => {
                out.push_str("**Change set**: no resource changes.\n\n");
            }
            Some(changes) => {
                out.push_str("**Change set**\n\n| Stack | Action | Logical id | Type | Replacement |\n|---|---|---|---|---|\n");
                for c in changes {
                    let repl = match c.replacement.as_deref() {
                        Some("True") => "**True**".to_string(),
                        Some(r) => html(r),
                        None => "-".into(),
                    };
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} | {} |",
                        code(&c.stack),
                        html(&c.action),
                        code(&c.logical_id),
                        code(&c.resource_type),
                        repl
                    );
                }
                out.push('\n');
            }
            None => {}
        }
        if let Some(note) = &e.preview_note {
            let _ = write!(out, "_{}_\n\n", html(note).replace('_', "\\_"));
        }
        for d in &e.diffs {
            let f = fence(&d.diff);
            let _ = write!(out, "{f}diff\n{}{f}\n\n", d.diff);
        }
        out.push_str("</details>\n\n");
    }
    out
}

/// [`truncate_markdown_linked`] without a link.
pub fn truncate_markdown(body: &str, limit: usize) -> String {
    truncate_markdown_linked(body, limit, None)
}

/// `body` if it has at most `limit` characters; otherwise cut before the
/// first environment section (`<details>`) that does not fit, with a note
/// saying how many sections are shown and that the whole plan is in the
/// step summary (`summary_url`, when given, links to the run). Should even
/// the header not fit, it is cut at a line.
pub fn truncate_markdown_linked(body: &str, limit: usize, summary_url: Option<&str>) -> String {
    if body.chars().count() <= limit {
        return body.to_string();
    }
    let mut starts = Vec::new();
    let mut at = 0;
    for line in body.split_inclusive('\n') {
        if line.starts_with("<details>") {
            starts.push(at);
        }
        at += line.len();
    }
    let total = starts.len();
    let where_ = match summary_url {
        Some(u) => format!("[the job's step summary]({u})"),
        None => "the job's step summary".into(),
    };
    let note = |shown: usize| {
        format!(
            "---\n\n**This plan is cut to fit a comment**: {shown} of {total} environment sections are shown. The full plan is in {where_}.\n"
        )
    };
    for k in (0..total).rev() {
        let prefix = &body[..starts[k]];
        let n = note(k);
        if prefix.chars().count() + n.chars().count() <= limit {
            return format!("{prefix}{n}");
        }
    }
    // Not even the header fits: cut it at a line.
    let n = note(0);
    let budget = limit.saturating_sub(n.chars().count() + 1);
    let mut out = String::new();
    let mut used = 0;
    for line in body.split_inclusive('\n') {
        let c = line.chars().count();
        if used + c > budget {
            break;
        }
        out.push_str(line);
        used += c;
    }
    if !out.ends_with('\n') && !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&n);
    out
}

// ---------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------

use crate::render::paint;

fn action_color(a: &Action) -> &'static str {
    match a {
        Action::DeployStack {
            op: crate::deploy::StackOp::Create,
            ..
        } => "32",
        Action::DeployStack { .. } | Action::StartPipeline { .. } => "33",
        Action::DeleteStack { .. } | Action::Refuse { .. } => "1;31",
        _ => "2",
    }
}

/// The plan for a terminal; `color` adds ANSI colours (diffs included).
pub fn render_text(plan: &Plan, color: bool) -> String {
    let mut out = format!(
        "Plan {} -> {}: {} environment(s): {}\n",
        crate::text::short_commit_or(plan.base.as_deref(), "(none)"),
        crate::text::short_commit_or(plan.head.as_deref(), "(none)"),
        plan.environments.len(),
        plan.counts_line(false)
    );
    if !plan.aws {
        out.push_str("(git-level plan, --no-aws: the actions assume AWS matches the base revision; no change set was previewed)\n");
    }
    if plan.environments.is_empty() {
        out.push_str("No environment changed.\n");
        return out;
    }
    if !plan.highlights.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            paint("Replacements and deletions:", "1;31", color)
        );
        for h in &plan.highlights {
            let _ = writeln!(out, "  ! {}: {h}", h.environment);
        }
    }
    for e in &plan.environments {
        let _ = writeln!(
            out,
            "\n{} ({}){}",
            paint(&e.environment, "1", color),
            e.change,
            if e.observed { "" } else { " [git-level guess]" }
        );
        for a in &e.actions {
            let _ = writeln!(
                out,
                "  {}",
                paint(&describe_action(a), action_color(a), color)
            );
        }
        for (title, changes) in [
            ("parameters", &e.parameter_changes),
            ("tags", &e.tag_changes),
        ] {
            if changes.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  {title}:");
            for c in changes {
                let _ = writeln!(
                    out,
                    "    {}: {} -> {}",
                    c.key,
                    show(c.old.as_deref()),
                    show(c.new.as_deref())
                );
            }
        }
        match &e.resource_changes {
            Some(changes) if changes.is_empty() => {
                out.push_str("  change set: no resource changes\n");
            }
            Some(changes) => {
                out.push_str("  change set:\n");
                for c in changes {
                    let repl = c
                        .replacement
                        .as_deref()
                        .map(|r| format!("  replacement: {r}"))
                        .unwrap_or_default();
                    let line = format!(
                        "    {} {} {} ({}){repl}",
                        c.stack, c.action, c.logical_id, c.resource_type
                    );
                    let code = match (c.action.as_str(), c.replacement.as_deref()) {
                        ("Remove", _) | (_, Some("True")) => "1;31",
                        ("Add", _) => "32",
                        _ => "33",
                    };
                    let _ = writeln!(out, "{}", paint(&line, code, color));
                }
            }
            None => {}
        }
        if let Some(note) = &e.preview_note {
            let _ = writeln!(out, "  {note}");
        }
        for d in &e.diffs {
            for line in crate::render::color_diff(&d.diff, color).lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
    out
}

mod gather;
pub use gather::{preview_all, Base, EnvInput, GatherError, Gathered, Previewed};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod mask_tests;
