//! The GitOps repository model: settings plus resolved environments.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_yaml::{Mapping, Value};

pub use crate::config::PromotedKey;
use crate::config::{self, Config, CONFIG_FILE};
use crate::error::{Error, Result};
use crate::problem::{did_you_mean, Problem, ProblemSource};
use crate::reader::{kind, parse_yaml, Reader};
use crate::source::{normalize, Entry, Source};
use crate::template::{Template, MAX_TEMPLATE_BYTES};
use crate::yaml::{Doc, Seg};

/// The warning `validate` gives when the repository has no id.
pub const NO_ID_WARNING: &str = "gitops.yaml sets no `id` and there is no origin remote to take `owner/repo` from, so deploy, plan and drift --remediate refuse to run; set `id:` in gitops.yaml (such as `id: acme/payments`): it is written on every stack this repository manages";

/// Parameters the tool passes itself, so templates may declare them without defaults.
pub const AUTOMATIC_PARAMETERS: &[&str] = &["EnvironmentName", "StackName", "PipelineName"];

/// One environment, resolved: `defaults` merged under its file, map by map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Environment {
    /// The folder name.
    pub name: String,
    /// The environment stack's name.
    pub stack: String,
    /// The pipeline's name (pipeline mode only).
    pub pipeline: Option<String>,
    /// The name of the stack holding the pipeline (pipeline mode only).
    pub pipeline_stack: Option<String>,
    /// AWS region.
    pub region: String,
    /// Expected AWS account id, if pinned.
    pub account: Option<String>,
    /// Whether automation must never delete this environment's stacks
    /// (`protected: true`).
    pub protected: bool,
    /// The `protected` key as written, read strictly: the deletion rules
    /// count anything but `false` or no key at all as protected.
    pub protection: Protection,
    /// IAM role assumed for all of this environment's AWS calls.
    pub role_arn: Option<String>,
    /// Whether `gitops drift --remediate` may redeploy it when it drifts.
    pub auto_remediate: bool,
    /// Repository-relative path of the environment stack's template.
    pub template: String,
    /// Repository-relative path of the environment file.
    pub file: String,
    /// Stack parameters, as CloudFormation strings.
    pub parameters: BTreeMap<String, String>,
    /// Stack tags.
    pub tags: BTreeMap<String, String>,
    /// The branch (name or glob) this environment is deployed from: its
    /// `branch:`, else `defaults.branch`; `None`: the default branch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Where the binding is written: the environment file, or gitops.yaml
    /// for `defaults.branch`.
    #[serde(skip)]
    pub(crate) branch_from_file: bool,
    #[serde(skip)]
    template_from_file: bool,
}

/// The `protected` key of an environment file, read strictly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Protection {
    /// No `protected` key.
    Absent,
    /// `protected: true` or `protected: false`.
    Set(bool),
    /// Any other value (a string such as `"true"`, a number, `null`, ...),
    /// as written; it is a validation error, and counts as protected.
    Invalid(String),
}

impl Protection {
    /// Whether the environment may be deleted: only with no key or exactly `false`.
    pub fn allows_deletion(&self) -> bool {
        matches!(self, Protection::Absent | Protection::Set(false))
    }

    fn read(v: Option<&Value>) -> Self {
        match v {
            None => Protection::Absent,
            Some(Value::Bool(b)) => Protection::Set(*b),
            Some(Value::String(s)) => Protection::Invalid(format!("{s:?}")),
            Some(Value::Null) => Protection::Invalid("null".into()),
            Some(Value::Number(n)) => Protection::Invalid(n.to_string()),
            Some(other) => Protection::Invalid(kind(other).to_string()),
        }
    }
}

impl Environment {
    /// An environment known only from its stacks (its declaration cannot be
    /// read): `protected`, so that nothing ever deletes them on its account.
    pub(crate) fn stand_in(
        name: &str,
        stack: &str,
        pipeline_stack: Option<String>,
        region: &str,
        role_arn: Option<String>,
    ) -> Self {
        Self {
            pipeline_stack,
            protected: true,
            protection: Protection::Set(true),
            role_arn,
            ..Self::undeclared(name, stack, region)
        }
    }

    /// An environment known by name only, declared nowhere: for an entry of
    /// a detect result that the repository does not declare, so that its
    /// plan can refuse it.
    pub fn undeclared(name: &str, stack: &str, region: &str) -> Self {
        Environment {
            name: name.to_string(),
            stack: stack.to_string(),
            pipeline: None,
            pipeline_stack: None,
            region: region.to_string(),
            account: None,
            protected: false,
            protection: Protection::Absent,
            role_arn: None,
            auto_remediate: false,
            template: String::new(),
            file: String::new(),
            parameters: BTreeMap::new(),
            tags: BTreeMap::new(),
            branch: None,
            branch_from_file: false,
            template_from_file: false,
        }
    }

    /// The account its stacks live in, when git says: `account`, else the
    /// account of its `role-arn`. `None`: the account of the credentials.
    pub fn effective_account(&self) -> Option<&str> {
        self.account.as_deref().or_else(|| {
            self.role_arn
                .as_deref()
                .and_then(|arn| arn.split(':').nth(4))
                .filter(|a| !a.is_empty())
        })
    }

    /// The branch it is deployed from when its binding names one branch
    /// (not a glob): where a promotion's or a rollback's pull request goes.
    pub fn branch_name(&self) -> Option<&str> {
        self.branch
            .as_deref()
            .filter(|b| !b.contains(['*', '?', '[', '{']))
    }

    /// The folder that holds the environment file.
    pub fn dir(&self) -> &str {
        self.file.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
    }

    /// The value of a promoted key such as `parameters.AppVersion`.
    pub fn value(&self, key: &PromotedKey) -> Option<&str> {
        match key {
            PromotedKey::Parameter(n) => self.parameters.get(n),
            PromotedKey::Tag(n) => self.tags.get(n),
        }
        .map(String::as_str)
    }
}

/// A loaded GitOps repository.
#[derive(Debug, Clone)]
pub struct Repository {
    /// The parsed `gitops.yaml`.
    pub config: Config,
    /// The id written on every stack this repository manages: `id` in
    /// `gitops.yaml`, else `owner/repo` of the origin remote. `None` when
    /// there is neither: commands that change AWS refuse (see [`Repository::owner_id`]).
    pub id: Option<String>,
    /// Environments sorted by name.
    pub environments: Vec<Environment>,
    problems: Vec<Problem>,
    docs: BTreeMap<String, Doc>,
}

const ENV_KEYS: &[&str] = &[
    "template-file-path",
    "parameters",
    "tags",
    "region",
    "account",
    "protected",
    "role-arn",
    "auto-remediate",
    "branch",
];

/// `gitops.yaml`, environment files and templates larger than this are a
/// problem, found before they are parsed (1 MiB; CloudFormation's own limit
/// for a template).
pub const MAX_FILE_BYTES: usize = MAX_TEMPLATE_BYTES;

/// The problem of a file over [`MAX_FILE_BYTES`], if it is.
fn too_large(file: &str, size: usize) -> Option<Problem> {
    (size > MAX_FILE_BYTES).then(|| {
        Problem::error(
            file,
            format!(
                "the file is {size} bytes, over the limit of {MAX_FILE_BYTES} bytes (1 MiB); it was not read further"
            ),
        )
    })
}

/// What [`Repository::load_checked`] checks before it accepts a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Checks {
    /// The loading problems: `gitops.yaml` and the environment files.
    Model,
    /// Those and the template checks of [`Repository::validate`].
    Full,
}

impl Repository {
    /// Loads the repository from `source`.
    ///
    /// Problems in environment files are collected (see [`Repository::problems`]);
    /// only an unusable `gitops.yaml` is an [`Error::Invalid`].
    pub fn load(source: &dyn Source) -> Result<Self> {
        let text = match source.read(CONFIG_FILE)? {
            Entry::File(b) => b,
            _ => return Err(Error::NoConfig(source.describe())),
        };
        let mut problems = Vec::new();
        if let Some(p) = too_large(CONFIG_FILE, text.len()) {
            return Err(Error::Invalid(vec![p]));
        }
        let text = match String::from_utf8(text) {
            Ok(t) => t,
            Err(_) => {
                problems.push(Problem::error(CONFIG_FILE, "gitops.yaml is not UTF-8 text"));
                return Err(Error::Invalid(problems));
            }
        };
        let Some((config, doc)) = config::parse(&text, &mut problems) else {
            return Err(Error::Invalid(problems));
        };
        let id = config.id.clone().or_else(|| source.default_id());
        let mut docs = BTreeMap::new();
        if let Some(d) = doc {
            docs.insert(CONFIG_FILE.to_string(), d);
        }
        let mut repo = Repository {
            config,
            id,
            environments: Vec::new(),
            problems,
            docs,
        };
        let env_root = normalize(&repo.config.environments_path).unwrap_or_default();
        // Environments whose file exists but could not be read: already
        // reported, so never "not an environment" as a follow-on.
        let mut unreadable = BTreeSet::new();
        for name in source.subdirs(&env_root)? {
            let dir = join(&env_root, &name);
            let file = join(&dir, &repo.config.environment_file);
            match source.read(&file)? {
                Entry::File(bytes) if bytes.len() > MAX_FILE_BYTES => {
                    repo.problems.extend(too_large(&file, bytes.len()));
                    unreadable.insert(name);
                }
                Entry::File(bytes) => match repo.load_environment(&name, &file, &bytes) {
                    Some(env) => repo.environments.push(env),
                    None => {
                        unreadable.insert(name);
                    }
                },
                _ => repo.problems.push(Problem::warning(
                    &dir,
                    format!(
                        "folder `{dir}` has no {}, so it is not an environment; add one or move the folder out of `{env_root}`",
                        repo.config.environment_file
                    ),
                )),
            }
        }
        repo.check_names(&unreadable);
        Ok(repo)
    }

    /// The problems found while loading (without template checks; see [`Repository::validate`]).
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// [`Repository::load`], refused with [`Error::Invalid`] when the
    /// repository has errors, so that nothing acts on an invalid repository.
    /// [`Checks::Full`] counts every problem of [`Repository::validate`]
    /// (what commands that act on AWS need); [`Checks::Model`] only the
    /// loading problems (enough to list environments).
    pub fn load_checked(source: &dyn Source, checks: Checks) -> Result<Self> {
        let repo = Repository::load(source)?;
        let problems = match checks {
            Checks::Full => repo.validate(source),
            Checks::Model => repo.problems.clone(),
        };
        if problems.iter().any(Problem::is_error) {
            return Err(Error::Invalid(match checks {
                Checks::Full => problems,
                Checks::Model => problems.into_iter().filter(Problem::is_error).collect(),
            }));
        }
        Ok(repo)
    }

    /// The id to tag stacks with and to recognise this repository's stacks
    /// by; an error telling to set `id:` when there is none. Every command
    /// that changes AWS asks for it first.
    pub fn owner_id(&self) -> Result<&str> {
        self.id.as_deref().ok_or(Error::NoId)
    }

    /// The environment named `name`.
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// The keys promotion copies, parsed.
    pub fn promoted_keys(&self) -> Vec<PromotedKey> {
        self.config
            .promotion
            .keys
            .iter()
            .filter_map(|k| PromotedKey::parse(k))
            .collect()
    }

    /// Every problem: those from loading plus the template checks, sorted by
    /// file and line. Reads templates from `source`; contacts nothing else.
    ///
    /// Each template is read once. A template that cannot be used is one
    /// problem per place that names it (`stack.template` or
    /// `pipeline.template` in gitops.yaml, an environment's
    /// `template-file-path`), naming the environments that use it; its
    /// users get no follow-on problems about its parameters.
    pub fn validate(&self, source: &dyn Source) -> Vec<Problem> {
        let mut problems = self.problems.clone();
        if self.id.is_none() {
            problems.push(Problem::warning(CONFIG_FILE, NO_ID_WARNING));
        }
        let pipeline_template = self.config.pipeline.as_ref().map(|p| p.template.clone());
        // (file, key path) naming a template -> (template, environments using it)
        let mut sites: BTreeMap<Site, (String, Vec<&str>)> = BTreeMap::new();
        if let Some(t) = &pipeline_template {
            let users = self.environments.iter().map(|e| e.name.as_str()).collect();
            sites.insert(
                (CONFIG_FILE.to_string(), vec!["pipeline", "template"]),
                (t.clone(), users),
            );
        }
        for env in &self.environments {
            if env.template.is_empty() {
                continue; // reported while loading
            }
            let site = if env.template_from_file {
                (env.file.clone(), vec!["template-file-path"])
            } else {
                (CONFIG_FILE.to_string(), vec!["stack", "template"])
            };
            let entry = sites
                .entry(site)
                .or_insert_with(|| (env.template.clone(), Vec::new()));
            entry.1.push(&env.name);
        }
        let mut templates: BTreeMap<String, Option<Template>> = BTreeMap::new();
        for (path, _) in sites.values() {
            if templates.contains_key(path) {
                continue;
            }
            let naming: Vec<(&Site, &[&str])> = sites
                .iter()
                .filter(|(_, (p, _))| p == path)
                .map(|(site, (_, users))| (site, users.as_slice()))
                .collect();
            let template = self.check_template(source, path, &naming, &mut problems);
            templates.insert(path.clone(), template);
        }
        if let Some(Some(parsed)) = pipeline_template.as_ref().and_then(|t| templates.get(t)) {
            problems.extend(crate::deploy::pipeline::trigger_warnings(parsed));
        }
        for env in &self.environments {
            if env.template.is_empty() {
                continue;
            }
            let stack_t = templates.get(&env.template).and_then(Option::as_ref);
            let pipe_t = pipeline_template
                .as_ref()
                .map(|p| templates.get(p).and_then(Option::as_ref));
            self.check_parameters(env, stack_t, pipe_t, &mut problems);
        }
        problems.sort_by(|a, b| {
            (a.file.as_str(), a.line, a.column).cmp(&(b.file.as_str(), b.line, b.column))
        });
        problems.dedup();
        problems
    }

    /// Line and column of the key at `path` in `file` (`gitops.yaml` or an
    /// environment file), when known.
    pub(crate) fn pos(&self, file: &str, path: &[&str]) -> Option<(usize, usize)> {
        let segs: Vec<Seg<'_>> = path.iter().map(|k| Seg::Key(k)).collect();
        self.docs.get(file).and_then(|d| d.line_col(&segs))
    }

    /// Reads the template at `path`. When it cannot be used: a problem in
    /// the template itself once, or a wrong reference at each place in
    /// `naming` (with the environments using it when that place is
    /// gitops.yaml). `None` then.
    fn check_template(
        &self,
        source: &dyn Source,
        path: &str,
        naming: &[(&Site, &[&str])],
        problems: &mut Vec<Problem>,
    ) -> Option<Template> {
        let mut refer = |msg: String| {
            for ((file, key), users) in naming {
                let users = match users {
                    _ if file != CONFIG_FILE => String::new(),
                    [] => String::new(),
                    [one] => format!("; environment using it: `{one}`"),
                    many => format!(
                        "; environments using it: {}",
                        many.iter()
                            .map(|u| format!("`{u}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                problems.push(
                    Problem::error(file, format!("{msg}{users}"))
                        .at(self.pos(file, key))
                        .with_source(ProblemSource::Template),
                );
            }
        };
        match read_template(source, path) {
            Ok(t) => Some(t),
            Err(TemplateError::Reference(msg)) => {
                refer(msg);
                None
            }
            Err(TemplateError::Content(p)) => {
                problems.push(p);
                None
            }
            Err(TemplateError::Io(e)) => {
                refer(format!("cannot read template `{path}`: {e}"));
                None
            }
        }
    }

    /// `pipeline`: `None` in direct mode, `Some(None)` when the pipeline
    /// template cannot be used (then no parameter is called undeclared).
    fn check_parameters(
        &self,
        env: &Environment,
        stack: Option<&Template>,
        pipeline: Option<Option<&Template>>,
        problems: &mut Vec<Problem>,
    ) {
        let Some(stack) = stack else { return };
        let all_templates = pipeline.is_none_or(|p| p.is_some());
        let templates: Vec<&Template> = std::iter::once(stack).chain(pipeline.flatten()).collect();
        let env_doc_has = |name: &str| {
            self.pos(&env.file, &["parameters", name]).is_some()
                && self
                    .docs
                    .get(&env.file)
                    .and_then(|d| d.get(&[Seg::Key("parameters"), Seg::Key(name)]))
                    .is_some()
        };
        let locate = |name: &str| -> (String, Option<(usize, usize)>) {
            if env_doc_has(name) {
                (env.file.clone(), self.pos(&env.file, &["parameters", name]))
            } else {
                (
                    CONFIG_FILE.to_string(),
                    self.pos(CONFIG_FILE, &["defaults", "parameters", name]),
                )
            }
        };
        for (name, value) in &env.parameters {
            let declared: Vec<&Template> = templates
                .iter()
                .copied()
                .filter(|t| t.parameters.contains_key(name))
                .collect();
            if declared.is_empty() && !all_templates {
                continue; // the unusable template may declare it
            }
            // Positions only for problems: they may cost a parse of the file's spans.
            if declared.is_empty() {
                let (file, pos) = locate(name);
                let all = templates
                    .iter()
                    .flat_map(|t| t.parameters.keys().map(String::as_str));
                let hint = did_you_mean(name, all);
                let names: Vec<&str> = templates.iter().map(|t| t.path.as_str()).collect();
                problems.push(
                    Problem::error(
                        file,
                        format!(
                            "environment `{}` sets parameter `{name}`, which {} does not declare{hint}",
                            env.name,
                            names.join(" or ")
                        ),
                    )
                    .at(pos),
                );
                continue;
            }
            for t in declared {
                if let Err(why) = t.parameters[name].check(value) {
                    let (file, pos) = locate(name);
                    problems.push(
                        Problem::error(
                            file,
                            format!(
                                "environment `{}`: parameter `{name}`: {why} (declared in {})",
                                env.name, t.path
                            ),
                        )
                        .at(pos),
                    );
                }
            }
        }
        for t in templates {
            for (name, spec) in &t.parameters {
                if spec.default.is_none()
                    && !env.parameters.contains_key(name)
                    && !AUTOMATIC_PARAMETERS.contains(&name.as_str())
                {
                    problems.push(
                        Problem::error(
                            env.file.clone(),
                            format!(
                                "environment `{}` does not set parameter `{name}`, which {} requires (it has no Default); add it under `parameters:`",
                                env.name, t.path
                            ),
                        )
                        .at(self.pos(&env.file, &["parameters"])),
                    );
                }
            }
        }
    }

    fn load_environment(&mut self, name: &str, file: &str, bytes: &[u8]) -> Option<Environment> {
        let Ok(text) = std::str::from_utf8(bytes) else {
            self.problems.push(Problem::error(
                file,
                "the environment file is not UTF-8 text",
            ));
            return None;
        };
        let (value, doc) = match parse_yaml(file, text) {
            Ok(v) => v,
            Err(p) => {
                self.problems.push(p);
                return None;
            }
        };
        let empty = Mapping::new();
        let map = match &value {
            Value::Mapping(m) => m,
            Value::Null => &empty,
            other => {
                self.problems.push(Problem::error(
                    file,
                    format!(
                        "the environment file must be a mapping, found {}",
                        kind(other)
                    ),
                ));
                return None;
            }
        };
        let cfg = &self.config;
        let mut r = Reader {
            file,
            doc: doc.as_ref(),
            problems: &mut self.problems,
        };
        r.check_keys(map, &[], ENV_KEYS);
        let template_file = r.get::<String>(map, &[], "template-file-path");
        let mut parameters = cfg.defaults.parameters.clone();
        parameters.extend(r.string_map(map, &[], "parameters"));
        let mut tags = cfg.defaults.tags.clone();
        tags.extend(r.string_map(map, &[], "tags"));
        let region = match r.get::<String>(map, &[], "region") {
            Some(v) => {
                config::check_region(&mut r, &["region"], &v);
                v
            }
            None => cfg.defaults.region.clone(),
        };
        let account = r.get::<Value>(map, &[], "account").and_then(|v| {
            let s = crate::reader::render_scalar(&v).unwrap_or_default();
            if s.len() == 12 && s.chars().all(|c| c.is_ascii_digit()) {
                Some(s)
            } else {
                r.error(
                    &["account"],
                    "`account` must be a 12-digit AWS account id in quotes, such as \"123456789012\"",
                );
                None
            }
        });
        let protection = Protection::read(map.get("protected"));
        let protected = r.get::<bool>(map, &[], "protected").unwrap_or(false);
        let auto_remediate = r.get::<bool>(map, &[], "auto-remediate").unwrap_or(false);
        let role_arn = r.get::<String>(map, &[], "role-arn").filter(|arn| {
            let ok = config::is_role_arn(arn);
            if !ok {
                r.error(
                    &["role-arn"],
                    format!("`{arn}` is not an IAM role ARN such as arn:aws:iam::123456789012:role/deploy"),
                );
            }
            ok
        });
        let own_branch = r
            .get::<String>(map, &[], "branch")
            .filter(|b| config::check_branch(&mut r, &["branch"], b));
        let branch_from_file = own_branch.is_some();
        let branch = own_branch.or_else(|| cfg.defaults.branch.clone());
        let template_from_file = template_file.is_some();
        let template = match template_file.or_else(|| cfg.stack.template.clone()) {
            Some(t) => normalize(&t).unwrap_or(t),
            None => {
                r.error(
                    &[],
                    format!(
                        "environment `{name}` has no template: set `template-file-path` here or `stack.template` in gitops.yaml"
                    ),
                );
                String::new()
            }
        };
        let stack = cfg.stack.name.replace("{environment}", name);
        let (pipeline, pipeline_stack) = match &cfg.pipeline {
            Some(p) => (
                Some(p.name.replace("{environment}", name)),
                Some(p.stack_name.replace("{environment}", name)),
            ),
            None => (None, None),
        };
        if let Some(d) = doc {
            self.docs.insert(file.to_string(), d);
        }
        Some(Environment {
            name: name.to_string(),
            stack,
            pipeline,
            pipeline_stack,
            region,
            account,
            protected,
            protection,
            role_arn,
            auto_remediate,
            template,
            file: file.to_string(),
            parameters,
            tags,
            branch,
            branch_from_file,
            template_from_file,
        })
    }

    /// `unreadable`: environments whose file could not be read (already
    /// reported; still environments for `promotion.order`).
    fn check_names(&mut self, unreadable: &BTreeSet<String>) {
        let mut problems = Vec::new();
        // name -> environments resolving to it
        let mut stacks: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut pipelines: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for env in &self.environments {
            for (what, name) in [
                ("stack", Some(&env.stack)),
                ("pipeline stack", env.pipeline_stack.as_ref()),
            ] {
                let Some(name) = name else { continue };
                if let Err(why) = check_stack_name(name) {
                    problems.push(Problem::error(
                        env.dir(),
                        format!("environment `{}` gives the {what} name `{name}`, which is invalid: {why}; rename the folder or change the name pattern in gitops.yaml", env.name),
                    ));
                }
                stacks.entry(name).or_default().push(&env.name);
            }
            if let Some(p) = &env.pipeline {
                if let Err(why) = check_pipeline_name(p) {
                    problems.push(Problem::error(
                        env.dir(),
                        format!("environment `{}` gives the pipeline name `{p}`, which is invalid: {why}; rename the folder or change `pipeline.name` in gitops.yaml", env.name),
                    ));
                }
                pipelines.entry(p).or_default().push(&env.name);
            }
        }
        for (what, map, key) in [
            ("stack", stacks, ["stack", "name"]),
            ("pipeline", pipelines, ["pipeline", "name"]),
        ] {
            for (name, envs) in map.into_iter().filter(|(_, e)| e.len() > 1) {
                let list = envs
                    .iter()
                    .map(|e| format!("`{e}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                problems.push(
                    Problem::error(
                        CONFIG_FILE,
                        format!("environments {list} all resolve to the {what} name `{name}`; every name pattern in gitops.yaml must include {{environment}} and differ from the others"),
                    )
                    .at(self.pos(CONFIG_FILE, &key)),
                );
            }
        }
        let names: BTreeSet<&str> = self.environments.iter().map(|e| e.name.as_str()).collect();
        for (i, name) in self.config.promotion.order.iter().enumerate() {
            if !names.contains(name.as_str()) && !unreadable.contains(name) {
                let hint = did_you_mean(name, names.iter().copied());
                let pos = self.docs.get(CONFIG_FILE).and_then(|d| {
                    d.line_col(&[Seg::Key("promotion"), Seg::Key("order"), Seg::Index(i)])
                });
                // A warning: removing an environment is one commit, its
                // folder; promote and rollback refuse to use the name.
                problems.push(
                    Problem::warning(
                        CONFIG_FILE,
                        format!(
                            "`promotion.order` names `{name}`, which is not an environment{hint}; promote and rollback refuse it until it is removed from the list"
                        ),
                    )
                    .at(pos),
                );
            }
        }
        self.problems.extend(problems);
    }
}

/// Where a file names a template: the file and the key path in it.
type Site = (String, Vec<&'static str>);

/// Why a template could not be used.
#[derive(Debug)]
pub(crate) enum TemplateError {
    /// The reference itself is wrong (missing, absolute, outside).
    Reference(String),
    /// The file is there but is not a usable template.
    Content(Problem),
    /// Reading failed.
    Io(Error),
}

/// Reads and parses the template at `path`, with every path and size check.
pub(crate) fn read_template(source: &dyn Source, path: &str) -> Result<Template, TemplateError> {
    if path.starts_with('/') || std::path::Path::new(path).is_absolute() {
        return Err(TemplateError::Reference(format!(
            "template path `{path}` is absolute; use a path relative to the repository root"
        )));
    }
    let Some(rel) = normalize(path) else {
        return Err(TemplateError::Reference(format!(
            "template path `{path}` escapes the repository with `..`"
        )));
    };
    match source.read(&rel).map_err(TemplateError::Io)? {
        Entry::Missing => Err(TemplateError::Reference(format!(
            "template `{rel}` does not exist; check the path (relative to the folder holding gitops.yaml)"
        ))),
        Entry::Dir => Err(TemplateError::Reference(format!(
            "template `{rel}` is a folder, not a file"
        ))),
        Entry::Outside(target) => Err(TemplateError::Reference(format!(
            "template `{rel}` is a symlink that points outside the repository (to `{target}`)"
        ))),
        Entry::File(bytes) => {
            let content = |msg: String| {
                TemplateError::Content(
                    Problem::error(&rel, msg).with_source(ProblemSource::Template),
                )
            };
            if bytes.len() > MAX_TEMPLATE_BYTES {
                return Err(content(format!(
                    "template is {} bytes, over CloudFormation's limit of {MAX_TEMPLATE_BYTES} bytes; split it into nested stacks",
                    bytes.len()
                )));
            }
            let text = String::from_utf8(bytes)
                .map_err(|_| content("template is not UTF-8 text".into()))?;
            Template::parse(&rel, &text).map_err(TemplateError::Content)
        }
    }
}

/// Loads the template at `path`, as an [`Error`] when it is unusable.
pub fn load_template(source: &dyn Source, path: &str) -> Result<Template> {
    read_template(source, path).map_err(|e| match e {
        TemplateError::Reference(m) => Error::Invalid(vec![Problem::error(path, m)]),
        TemplateError::Content(p) => Error::Invalid(vec![p]),
        TemplateError::Io(e) => e,
    })
}

/// Why a stack or pipeline name is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Empty, or longer than `max` characters.
    #[error("it must be 1 to {max} characters")]
    Length {
        /// The longest name allowed.
        max: usize,
    },
    /// A stack name must start with a letter.
    #[error("it must start with a letter")]
    FirstNotLetter,
    /// A character that is not allowed.
    #[error("`{found}` is not allowed (only letters, digits and `{allowed}`)")]
    Character {
        /// The first character not allowed.
        found: char,
        /// The punctuation allowed besides letters and digits.
        allowed: &'static str,
    },
}

/// Checks a CloudFormation stack name: a letter first, then `[A-Za-z0-9-]`, at most 128.
pub fn check_stack_name(name: &str) -> std::result::Result<(), NameError> {
    if name.is_empty() || name.len() > 128 {
        return Err(NameError::Length { max: 128 });
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(NameError::FirstNotLetter);
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        Some(found) => Err(NameError::Character {
            found,
            allowed: "-",
        }),
        None => Ok(()),
    }
}

/// Checks a CodePipeline name: `[A-Za-z0-9.@_-]`, at most 100.
pub fn check_pipeline_name(name: &str) -> std::result::Result<(), NameError> {
    if name.is_empty() || name.len() > 100 {
        return Err(NameError::Length { max: 100 });
    }
    let allowed = |c: &char| c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '_' | '-');
    match name.chars().find(|c| !allowed(c)) {
        Some(found) => Err(NameError::Character {
            found,
            allowed: ".@_-",
        }),
        None => Ok(()),
    }
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_stack_name("dev-app").is_ok());
        assert!(check_stack_name("1dev").is_err());
        assert!(check_stack_name("dev_app").is_err());
        assert!(check_stack_name(&"a".repeat(129)).is_err());
        assert!(check_pipeline_name("dev.deploy@x_y-z").is_ok());
        assert_eq!(
            check_pipeline_name("dev deploy").map_err(|e| e.to_string()),
            Err("` ` is not allowed (only letters, digits and `.@_-`)".into())
        );
        assert_eq!(
            check_stack_name("dev_app").map_err(|e| e.to_string()),
            Err("`_` is not allowed (only letters, digits and `-`)".into())
        );
        assert!(check_pipeline_name(&"a".repeat(101)).is_err());
    }

    const APP: &str =
        "Parameters:\n  AppVersion: {Type: String}\nResources:\n  P: {Type: AWS::SSM::Parameter}\n";

    fn problems(files: &[(&str, &str)]) -> Vec<String> {
        let mut m = crate::source::Memory::new("t");
        for (path, text) in files {
            m = m.with_file(path, *text);
        }
        let repo = Repository::load(&m).expect("loads");
        repo.validate(&m).iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_missing_template_is_reported_where_each_file_names_it() {
        let p = problems(&[
            (
                "gitops.yaml",
                "version: 1\nid: t\nstack: {template: common/gone.yaml}\n",
            ),
            (
                "environments/a/environment.yaml",
                "parameters: {AppVersion: '1'}\n",
            ),
            (
                "environments/b/environment.yaml",
                "parameters: {AppVersion: '1'}\n",
            ),
            (
                "environments/c/environment.yaml",
                "template-file-path: common/gone.yaml\n",
            ),
            (
                "environments/d/environment.yaml",
                "template-file-path: common/gone.yaml\n",
            ),
        ]);
        assert_eq!(
            p,
            [
                "environments/c/environment.yaml:1:1: error: template `common/gone.yaml` does not exist; check the path (relative to the folder holding gitops.yaml)",
                "environments/d/environment.yaml:1:1: error: template `common/gone.yaml` does not exist; check the path (relative to the folder holding gitops.yaml)",
                "gitops.yaml:3:9: error: template `common/gone.yaml` does not exist; check the path (relative to the folder holding gitops.yaml); environments using it: `a`, `b`",
            ]
        );
    }

    #[test]
    fn an_unusable_pipeline_template_hides_undeclared_parameters() {
        let files = |pipeline: &'static str| {
            let mut f = vec![
                (
                    "gitops.yaml",
                    "version: 1\nid: t\nstack: {template: common/app.yaml}\npipeline: {template: common/pipeline.yaml}\n",
                ),
                ("common/app.yaml", APP),
                (
                    "environments/prod/environment.yaml",
                    "parameters: {AppVersion: '1', RequireApproval: 'true'}\n",
                ),
            ];
            if !pipeline.is_empty() {
                f.push(("common/pipeline.yaml", pipeline));
            }
            f
        };
        let p = problems(&files(""));
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(
            p[0].contains("`common/pipeline.yaml` does not exist"),
            "{p:#?}"
        );
        // Not a template at all: one problem in it, no follow-on.
        let p = problems(&files("just: text\n"));
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].starts_with("common/pipeline.yaml"), "{p:#?}");
        // A usable pipeline template that lacks it: reported.
        let p = problems(&files(APP));
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(
            p[0].contains("sets parameter `RequireApproval`, which common/app.yaml or common/pipeline.yaml does not declare"),
            "{p:#?}"
        );
    }

    #[test]
    fn a_broken_environment_file_is_still_an_environment_of_promotion_order() {
        let p = problems(&[
            (
                "gitops.yaml",
                "version: 1\nid: t\nstack: {template: common/app.yaml}\npromotion: {order: [dev, staging, prod]}\n",
            ),
            ("common/app.yaml", APP),
            ("environments/dev/environment.yaml", "parameters: {AppVersion: '1'}\n"),
            ("environments/staging/environment.yaml", "parameters: {AppVersion: '1\n"),
        ]);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(
            p[0].starts_with("environments/staging/environment.yaml"),
            "{p:#?}"
        );
        assert!(
            p[1].contains("`promotion.order` names `prod`, which is not an environment"),
            "{p:#?}"
        );
    }

    #[test]
    fn the_id_comes_from_gitops_yaml_or_origin_never_from_the_folder() {
        let cfg = "version: 1\nstack: {template: t.yaml}\n";
        // Two unrelated checkouts both called `infra`, without id or origin.
        for _ in 0..2 {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("infra");
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("gitops.yaml"), cfg).unwrap();
            std::fs::write(dir.join("t.yaml"), "Resources: {}\n").unwrap();
            let source = crate::WorkTree::new(&dir).unwrap();
            let repo = Repository::load(&source).unwrap();
            assert_eq!(repo.id, None);
            let err = repo.owner_id().unwrap_err().to_string();
            assert!(err.contains("set `id:` in gitops.yaml"), "{err}");
            let problems = repo.validate(&source);
            assert!(
                problems
                    .iter()
                    .any(|p| !p.is_error() && p.file == CONFIG_FILE && p.message == NO_ID_WARNING),
                "{problems:?}"
            );
            assert!(problems.iter().all(|p| !p.is_error()), "{problems:?}");
        }
        // The origin remote's owner/repo (a Memory source stands in for it).
        let m = crate::Memory::new("acme/infra").with_file("gitops.yaml", cfg);
        let repo = Repository::load(&m).unwrap();
        assert_eq!(repo.owner_id().unwrap(), "acme/infra");
        assert!(repo.validate(&m).iter().all(|p| p.message != NO_ID_WARNING));
        // gitops.yaml wins.
        let m = crate::Memory::new("acme/infra")
            .with_file("gitops.yaml", format!("{cfg}id: acme/payments\n"));
        assert_eq!(
            Repository::load(&m).unwrap().owner_id().unwrap(),
            "acme/payments"
        );
        let m = crate::Memory::new("").with_file("gitops.yaml", cfg);
        assert_eq!(Repository::load(&m).unwrap().id, None);
    }

    #[test]
    fn promotion_order_naming_a_removed_environment_is_a_warning() {
        let m = crate::Memory::new("acme/x")
            .with_file(
                "gitops.yaml",
                "version: 1\nstack: {template: t.yaml}\npromotion: {order: [dev, qa, prod]}\n",
            )
            .with_file("t.yaml", "Resources: {}\n")
            .with_file("environments/dev/environment.yaml", "{}\n")
            .with_file("environments/prod/environment.yaml", "{}\n");
        let repo = Repository::load(&m).unwrap();
        let problems = repo.validate(&m);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(!problems[0].is_error());
        assert_eq!(problems[0].line, Some(3));
        assert!(
            problems[0].message.contains("`promotion.order` names `qa`")
                && problems[0]
                    .message
                    .contains("promote and rollback refuse it"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn protected_is_kept_as_written() {
        let read = |body: &str| {
            let m = crate::Memory::new("acme/x")
                .with_file("gitops.yaml", "version: 1\nstack: {template: t.yaml}\n")
                .with_file("environments/dev/environment.yaml", body);
            let repo = Repository::load(&m).unwrap();
            let env = repo.environment("dev").unwrap();
            (env.protected, env.protection.clone())
        };
        assert_eq!(read("{}\n"), (false, Protection::Absent));
        assert_eq!(read("protected: false\n"), (false, Protection::Set(false)));
        assert_eq!(read("protected: true\n"), (true, Protection::Set(true)));
        assert_eq!(
            read("protected: \"true\"\n"),
            (false, Protection::Invalid("\"true\"".into()))
        );
        assert!(!Protection::Invalid("null".into()).allows_deletion());
        assert!(Protection::Absent.allows_deletion());
        assert!(Protection::Set(false).allows_deletion());
        assert!(!Protection::Set(true).allows_deletion());
    }

    #[test]
    fn promoted_keys() {
        assert_eq!(
            PromotedKey::parse("parameters.AppVersion"),
            Some(PromotedKey::Parameter("AppVersion".into()))
        );
        assert_eq!(
            PromotedKey::parse("tags.release"),
            Some(PromotedKey::Tag("release".into()))
        );
        assert_eq!(PromotedKey::parse("region"), None);
        assert_eq!(PromotedKey::parse("parameters."), None);
    }
}
