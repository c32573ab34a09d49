//! Pipeline mode's parity with direct mode, and the reading of pipeline
//! templates.
//!
//! In pipeline mode the tool does not send the application stack's
//! parameters to the pipeline. The pipeline renders them itself: a build
//! step runs `gitops render` on the source artifact (the repository at the
//! commit the tool pinned), which writes the environment's template
//! ([`RENDERED_TEMPLATE`]) and a CloudFormation template configuration file
//! ([`RENDERED_CONFIGURATION`]: every parameter and every tag, `gitops:*`
//! included) from exactly the [`StackSpec`] direct mode deploys. The
//! pipeline's CloudFormation action points `TemplatePath` and
//! `TemplateConfiguration` at those two files. Nothing passes through
//! pipeline variables, so no 1,000-character variable limit applies.
//!
//! [`actions`] reads a pipeline template's actions (for the parity test and
//! `validate`); [`trigger_warnings`] finds source actions that would start
//! the pipeline on their own on every push.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::StackSpec;
use crate::problem::{Problem, ProblemSource};
use crate::template::Template;

/// The file name `gitops render` writes the environment's template to.
pub const RENDERED_TEMPLATE: &str = "template.yaml";
/// The file name `gitops render` writes the template configuration to.
pub const RENDERED_CONFIGURATION: &str = "template-configuration.json";

/// What `gitops render` writes for one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rendered {
    /// The repository-relative path of the template it came from.
    pub template_path: String,
    /// The template's text, byte for byte.
    pub template: String,
    /// The template configuration file (JSON): `Parameters` and `Tags`.
    pub configuration: String,
}

/// The CloudFormation template configuration of a stack: every parameter
/// and every tag the tool would send in direct mode.
pub fn template_configuration(spec: &StackSpec) -> Value {
    json!({
        "Parameters": spec.parameters,
        "Tags": spec.tags,
    })
}

/// Renders an environment's stack for its pipeline.
pub fn render(spec: &StackSpec) -> Rendered {
    let configuration =
        serde_json::to_string_pretty(&template_configuration(spec)).unwrap_or_else(|_| "{}".into());
    Rendered {
        template_path: spec.template_path.clone(),
        template: spec.template_body.clone(),
        configuration: format!("{configuration}\n"),
    }
}

/// One action of a pipeline template, as declared (intrinsic functions
/// left as they are, in their long form).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ActionDecl {
    /// The logical id of the `AWS::CodePipeline::Pipeline` resource.
    pub resource: String,
    /// The stage's name.
    pub stage: String,
    /// The action's name.
    pub name: String,
    /// `Source`, `Build`, `Test`, `Deploy`, `Approval`, `Invoke`...
    pub category: String,
    /// `CodeStarSourceConnection`, `CodeBuild`, `CloudFormation`...
    pub provider: String,
    /// Its configuration.
    pub configuration: BTreeMap<String, Value>,
    /// Its input artifacts' names.
    pub inputs: Vec<String>,
    /// Its output artifacts' names.
    pub outputs: Vec<String>,
    /// Its variable namespace.
    pub namespace: Option<String>,
    /// The condition the stage is under (`Fn::If`), if any.
    pub condition: Option<String>,
}

fn names(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.get("Name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A stage, or the branches of an `Fn::If` choosing one, with their condition.
fn stages(v: &Value) -> Vec<(Option<String>, &Value)> {
    if let Some(args) = v.get("Fn::If").and_then(Value::as_array) {
        let cond = args.first().and_then(Value::as_str).map(str::to_string);
        return args
            .iter()
            .skip(1)
            .filter(|b| b.get("Name").is_some())
            .map(|b| (cond.clone(), b))
            .collect();
    }
    vec![(None, v)]
}

/// Every action of every `AWS::CodePipeline::Pipeline` in a template
/// (normalised with [`Template::normalized`]), in stage order.
pub fn actions(template: &Value) -> Vec<ActionDecl> {
    let mut out = Vec::new();
    let Some(resources) = template.get("Resources").and_then(Value::as_object) else {
        return out;
    };
    for (id, r) in resources {
        if r.get("Type").and_then(Value::as_str) != Some("AWS::CodePipeline::Pipeline") {
            continue;
        }
        let Some(list) = r.pointer("/Properties/Stages").and_then(Value::as_array) else {
            continue;
        };
        for (condition, stage) in list.iter().flat_map(stages) {
            let stage_name = stage
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            for a in stage
                .get("Actions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let s = |p: &str| a.pointer(p).and_then(Value::as_str).unwrap_or_default();
                out.push(ActionDecl {
                    resource: id.clone(),
                    stage: stage_name.to_string(),
                    name: s("/Name").to_string(),
                    category: s("/ActionTypeId/Category").to_string(),
                    provider: s("/ActionTypeId/Provider").to_string(),
                    configuration: a
                        .get("Configuration")
                        .and_then(Value::as_object)
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default(),
                    inputs: names(a.get("InputArtifacts")),
                    outputs: names(a.get("OutputArtifacts")),
                    namespace: a
                        .get("Namespace")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    condition: condition.clone(),
                });
            }
        }
    }
    out
}

/// Whether a configuration value is `false` (`false` or `"false"`).
fn is_false(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => !b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("false"),
        _ => false,
    }
}

/// Warnings for pipeline source actions that would start the pipeline on
/// every push by themselves, on top of the execution the tool starts
/// pinned to the commit: a connection source (`CodeStarSourceConnection`)
/// without `DetectChanges: false`, a CodeCommit, GitHub (version 1), S3 or
/// ECR source without `PollForSourceChanges: false`, and a V2 `Triggers`
/// entry with a push filter. The tool must be the only trigger.
pub fn trigger_warnings(template: &Template) -> Vec<Problem> {
    let normalized = template.normalized();
    let mut out = Vec::new();
    let warn = |resource: &str, msg: String| {
        Problem::warning(&template.path, msg)
            .at(template.resource_line(resource))
            .with_source(ProblemSource::Template)
            .with_rule("pipeline-trigger")
    };
    for a in actions(&normalized)
        .into_iter()
        .filter(|a| a.category == "Source")
    {
        let (key, hint) = match a.provider.as_str() {
            "CodeStarSourceConnection" => ("DetectChanges", "DetectChanges: \"false\""),
            "CodeCommit" | "GitHub" | "S3" => {
                ("PollForSourceChanges", "PollForSourceChanges: \"false\"")
            }
            _ => continue,
        };
        if !is_false(a.configuration.get(key)) {
            out.push(warn(
                &a.resource,
                format!(
                    "the pipeline's source action `{}` ({}) starts the pipeline by itself on every push, on top of the run gitops starts pinned to the commit: set `{hint}` in its Configuration so that gitops is the only trigger",
                    a.name, a.provider
                ),
            ));
        }
    }
    let Some(resources) = normalized.get("Resources").and_then(Value::as_object) else {
        return out;
    };
    for (id, r) in resources {
        if r.get("Type").and_then(Value::as_str) != Some("AWS::CodePipeline::Pipeline") {
            continue;
        }
        for t in r
            .pointer("/Properties/Triggers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let push = t.pointer("/GitConfiguration/Push").is_some()
                || t.pointer("/GitConfiguration/PullRequest").is_some();
            if push {
                out.push(warn(
                    id,
                    format!("the pipeline `{id}` declares a git trigger (Triggers/GitConfiguration): it starts on pushes by itself, on top of the run gitops starts; remove the trigger so that gitops is the only trigger"),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
