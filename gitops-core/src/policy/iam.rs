//! The IAM policy documents of a repository: those inside CloudFormation
//! templates (roles, users and groups, managed and inline policies, and the
//! resource policies of buckets, topics, queues, keys and secrets) and
//! standalone JSON files, prepared for IAM Access Analyzer.
//!
//! Access Analyzer parses plain JSON, so intrinsic functions are resolved
//! first to placeholders of the right shape: `!Ref` of a parameter gives its
//! `Default`, `!GetAtt Bucket.Arn` an S3 bucket ARN, `!Sub` substitutes
//! pseudo parameters, parameters and attributes, `Fn::Join` joins. A policy
//! that uses anything else (`Fn::If`, `Fn::ImportValue`, ...) cannot be
//! resolved: it is skipped with a warning.
//!
//! ```
//! use gitops_core::policy::iam::extract;
//! use gitops_core::aws::PolicyKind;
//! use gitops_core::Template;
//!
//! let t = Template::parse("app.yaml", r#"
//! Resources:
//!   Topic: { Type: AWS::SNS::Topic }
//!   Role:
//!     Type: AWS::IAM::Role
//!     Properties:
//!       AssumeRolePolicyDocument:
//!         Statement: [{ Effect: Allow, Principal: { Service: lambda.amazonaws.com }, Action: sts:AssumeRole }]
//!       Policies:
//!         - PolicyName: publish
//!           PolicyDocument:
//!             Statement: [{ Effect: Allow, Action: sns:Publish, Resource: !Ref Topic }]
//! "#).unwrap();
//! let (policies, warnings) = extract(&t);
//! assert!(warnings.is_empty());
//! assert_eq!(policies.len(), 2);
//! assert_eq!(policies[0].kind, PolicyKind::RoleTrust);
//! assert_eq!(policies[1].path, "Properties.Policies[0].PolicyDocument");
//! assert_eq!(
//!     policies[1].document["Statement"][0]["Resource"],
//!     "arn:aws:sns:us-east-1:123456789012:placeholder-topic"
//! );
//! assert_eq!(policies[1].line, Some((11, 11)));
//! ```

use std::collections::BTreeMap;

use serde_json::Value as J;

use crate::aws::{PolicyKind, PolicyPathStep};
use crate::problem::{Problem, ProblemSource};
use crate::template::{Template, TemplateParameter};
use crate::yaml::{Node, NodeKind, Seg};

/// The account id placeholders use.
pub const PLACEHOLDER_ACCOUNT: &str = "123456789012";
/// The region placeholders use.
pub const PLACEHOLDER_REGION: &str = "us-east-1";
/// The partition placeholders use.
pub const PLACEHOLDER_PARTITION: &str = "aws";

/// One IAM policy document, ready for Access Analyzer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PolicyDoc {
    /// Repository-relative path of the template or JSON file it is in.
    pub file: String,
    /// The logical id of the resource holding it (`None` for a standalone file).
    pub logical_id: Option<String>,
    /// The type of that resource, such as `AWS::IAM::Role`.
    pub resource_type: Option<String>,
    /// Where the document is inside the resource, such as
    /// `Properties.Policies[0].PolicyDocument` (empty for a standalone file).
    pub path: String,
    /// Identity, resource or role trust policy.
    pub kind: PolicyKind,
    /// The document, intrinsic functions resolved to placeholders.
    pub document: J,
    /// Line and column of the document in its file, when known.
    pub line: Option<(usize, usize)>,
    /// Line and column of every key and item inside the document, by path
    /// (`Statement/0/Action`), to place findings on the line they are about.
    pub positions: BTreeMap<String, (usize, usize)>,
}

impl PolicyDoc {
    /// A name for messages: `` `TaskRole` Properties.Policies[0].PolicyDocument ``,
    /// or the file for a standalone policy.
    pub fn name(&self) -> String {
        match &self.logical_id {
            Some(id) => format!("`{id}` {}", self.path),
            None => format!("`{}`", self.file),
        }
    }

    /// What identifies a policy across revisions: file, logical id and path.
    pub fn key(&self) -> (&str, Option<&str>, &str) {
        (&self.file, self.logical_id.as_deref(), &self.path)
    }

    /// The document as JSON text, as sent to Access Analyzer.
    pub fn text(&self) -> String {
        self.document.to_string()
    }

    /// The line and column of the part of the document at `path` (from an
    /// Access Analyzer finding): the deepest part that can be placed, or the
    /// document itself.
    pub fn line_of(&self, path: &[PolicyPathStep]) -> Option<(usize, usize)> {
        let mut best = self.line;
        let mut pointer = String::new();
        for step in path {
            let part = match step {
                PolicyPathStep::Index(i) => i.to_string(),
                PolicyPathStep::Key(k) => k.clone(),
                _ => break,
            };
            if !pointer.is_empty() {
                pointer.push('/');
            }
            pointer.push_str(&part);
            match self.positions.get(&pointer) {
                Some(p) => best = Some(*p),
                None => break,
            }
        }
        best
    }
}

/// Every IAM policy document in `template`, and a warning for each one that
/// cannot be prepared (an intrinsic function that cannot be resolved, a
/// document that is not a JSON object).
pub fn extract(template: &Template) -> (Vec<PolicyDoc>, Vec<Problem>) {
    let mut policies = Vec::new();
    let mut warnings = Vec::new();
    let body = template.normalized();
    let Some(resources) = body.get("Resources").and_then(J::as_object) else {
        return (policies, warnings);
    };
    let types: BTreeMap<String, String> = resources
        .iter()
        .filter_map(|(id, r)| Some((id.clone(), r.get("Type")?.as_str()?.to_string())))
        .collect();
    let ctx = Ctx {
        parameters: &template.parameters,
        resources: &types,
    };
    // Sorted by logical id, whatever the order of the JSON map.
    let mut ids: Vec<&String> = resources.keys().collect();
    ids.sort();
    for id in ids {
        let Some(resource) = resources.get(id) else {
            continue;
        };
        let Some(rtype) = types.get(id) else { continue };
        for (segs, kind) in locations(rtype, resource) {
            let path = dotted(&segs);
            let mut tree_path: Vec<Seg<'_>> = vec![Seg::Key("Resources"), Seg::Key(id)];
            tree_path.extend(segs.iter().map(Step::seg));
            let node = template.doc.as_ref().and_then(|d| d.get(&tree_path));
            let line = template.doc.as_ref().and_then(|d| d.line_col(&tree_path));
            let warn = |why: String| {
                Problem::warning(
                    &template.path,
                    format!("IAM policy `{id}` {path} skipped for Access Analyzer: {why}"),
                )
                .at(line)
                .with_source(ProblemSource::AccessAnalyzer)
            };
            let Some(raw) = lookup(resource, &segs) else {
                continue;
            };
            let document = match resolve(raw, &ctx).and_then(as_document) {
                Ok(d) => d,
                Err(why) => {
                    warnings.push(warn(why));
                    continue;
                }
            };
            policies.push(PolicyDoc {
                file: template.path.clone(),
                logical_id: Some(id.clone()),
                resource_type: Some(rtype.clone()),
                path,
                kind,
                document,
                line,
                positions: node.map(positions).unwrap_or_default(),
            });
        }
        // A policy list that is itself an intrinsic function cannot be read.
        if let Some(p) = resource.pointer("/Properties/Policies") {
            if !p.is_array() && has_policies_list(rtype) {
                let line = template.doc.as_ref().and_then(|d| {
                    d.line_col(&[
                        Seg::Key("Resources"),
                        Seg::Key(id),
                        Seg::Key("Properties"),
                        Seg::Key("Policies"),
                    ])
                });
                warnings.push(
                    Problem::warning(
                        &template.path,
                        format!(
                            "IAM policies of `{id}` skipped for Access Analyzer: cannot resolve {}",
                            describe_intrinsic(p)
                        ),
                    )
                    .at(line)
                    .with_source(ProblemSource::AccessAnalyzer),
                );
            }
        }
    }
    (policies, warnings)
}

/// A standalone JSON policy document (an identity policy) at `path`; `Err`
/// is a problem at that file.
pub fn parse_standalone(path: &str, text: &str) -> Result<PolicyDoc, Problem> {
    let err = |msg: String| Problem::error(path, msg).with_source(ProblemSource::AccessAnalyzer);
    let document: J = serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| {
        err(format!("not a JSON IAM policy document: {e}")).at(Some((e.line(), e.column())))
    })?;
    if !document.is_object() {
        return Err(err(
            "not an IAM policy document: expected a JSON object with `Statement`".into(),
        ));
    }
    let node = Node::parse(text).ok().flatten();
    Ok(PolicyDoc {
        file: path.to_string(),
        logical_id: None,
        resource_type: None,
        path: String::new(),
        kind: PolicyKind::Identity,
        document,
        line: Some((1, 1)),
        positions: node.as_ref().map(positions).unwrap_or_default(),
    })
}

// ---------------------------------------------------------------------------
// Where policies are
// ---------------------------------------------------------------------------

/// One step of a property path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(&'static str),
    Index(usize),
}

impl Step {
    fn seg<'a>(&self) -> Seg<'a> {
        match self {
            Step::Key(k) => Seg::Key(k),
            Step::Index(i) => Seg::Index(*i),
        }
    }
}

fn dotted(segs: &[Step]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Step::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn lookup<'v>(v: &'v J, segs: &[Step]) -> Option<&'v J> {
    segs.iter().try_fold(v, |v, s| match s {
        Step::Key(k) => v.get(*k),
        Step::Index(i) => v.get(*i),
    })
}

fn has_policies_list(rtype: &str) -> bool {
    matches!(
        rtype,
        "AWS::IAM::Role" | "AWS::IAM::User" | "AWS::IAM::Group"
    )
}

/// The property paths of the policy documents a resource of type `rtype` may hold.
fn locations(rtype: &str, resource: &J) -> Vec<(Vec<Step>, PolicyKind)> {
    use Step::{Index, Key};
    let resource_policy = |prop: &'static str, of: &str| {
        vec![(
            vec![Key("Properties"), Key(prop)],
            PolicyKind::Resource(of.to_string()),
        )]
    };
    match rtype {
        "AWS::IAM::Role" | "AWS::IAM::User" | "AWS::IAM::Group" => {
            let mut out = Vec::new();
            if rtype == "AWS::IAM::Role" {
                out.push((
                    vec![Key("Properties"), Key("AssumeRolePolicyDocument")],
                    PolicyKind::RoleTrust,
                ));
            }
            let n = resource
                .pointer("/Properties/Policies")
                .and_then(J::as_array)
                .map_or(0, Vec::len);
            for i in 0..n {
                out.push((
                    vec![
                        Key("Properties"),
                        Key("Policies"),
                        Index(i),
                        Key("PolicyDocument"),
                    ],
                    PolicyKind::Identity,
                ));
            }
            out
        }
        "AWS::IAM::ManagedPolicy"
        | "AWS::IAM::Policy"
        | "AWS::IAM::RolePolicy"
        | "AWS::IAM::UserPolicy"
        | "AWS::IAM::GroupPolicy" => vec![(
            vec![Key("Properties"), Key("PolicyDocument")],
            PolicyKind::Identity,
        )],
        "AWS::S3::BucketPolicy" => resource_policy("PolicyDocument", "AWS::S3::Bucket"),
        "AWS::SNS::TopicPolicy" => resource_policy("PolicyDocument", "AWS::SNS::Topic"),
        "AWS::SQS::QueuePolicy" => resource_policy("PolicyDocument", "AWS::SQS::Queue"),
        "AWS::KMS::Key" => resource_policy("KeyPolicy", "AWS::KMS::Key"),
        "AWS::SecretsManager::ResourcePolicy" => {
            resource_policy("ResourcePolicy", "AWS::SecretsManager::Secret")
        }
        "AWS::S3::AccessPoint" => resource_policy("Policy", "AWS::S3::AccessPoint"),
        _ => Vec::new(),
    }
}

/// Line and column of every key and item under `node`, by `/`-joined path.
fn positions(node: &Node) -> BTreeMap<String, (usize, usize)> {
    fn walk(node: &Node, prefix: &str, out: &mut BTreeMap<String, (usize, usize)>) {
        let join = |part: &str| {
            if prefix.is_empty() {
                part.to_string()
            } else {
                format!("{prefix}/{part}")
            }
        };
        match &node.kind {
            NodeKind::Map { entries, .. } => {
                for (k, v) in entries {
                    let Some(name) = k.as_str() else { continue };
                    let p = join(name);
                    out.insert(p.clone(), (k.start.line, k.start.column));
                    walk(v, &p, out);
                }
            }
            NodeKind::Seq { items, .. } => {
                for (i, item) in items.iter().enumerate() {
                    let p = join(&i.to_string());
                    out.insert(p.clone(), (item.start.line, item.start.column));
                    walk(item, &p, out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(node, "", &mut out);
    out
}

// ---------------------------------------------------------------------------
// Intrinsic functions
// ---------------------------------------------------------------------------

/// What resolution needs from the template.
struct Ctx<'a> {
    parameters: &'a BTreeMap<String, TemplateParameter>,
    /// Logical id → resource type.
    resources: &'a BTreeMap<String, String>,
}

/// A policy document is a JSON object, or a string holding one.
fn as_document(v: J) -> Result<J, String> {
    match v {
        J::Object(_) => Ok(v),
        J::String(s) => match serde_json::from_str::<J>(&s) {
            Ok(d @ J::Object(_)) => Ok(d),
            _ => Err("the document is a string that is not a JSON object".into()),
        },
        other => Err(format!(
            "the document is not a JSON object (found {})",
            json_kind(&other)
        )),
    }
}

fn json_kind(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "a boolean",
        J::Number(_) => "a number",
        J::String(_) => "a string",
        J::Array(_) => "a list",
        J::Object(_) => "an object",
    }
}

/// The intrinsic function `v` is (`{"Fn::X": ...}` or `{"Ref": ...}`), if any.
fn intrinsic(v: &J) -> Option<(&str, &J)> {
    let m = v.as_object()?;
    if m.len() != 1 {
        return None;
    }
    let (k, arg) = m.iter().next()?;
    (k == "Ref" || k.starts_with("Fn::")).then_some((k.as_str(), arg))
}

fn describe_intrinsic(v: &J) -> String {
    match intrinsic(v) {
        Some((name, _)) => format!("`{name}`"),
        None => format!("{} where a list was expected", json_kind(v)),
    }
}

/// Resolves every intrinsic function in `v` to a placeholder; `Err` says
/// which one could not be.
fn resolve(v: &J, ctx: &Ctx<'_>) -> Result<J, String> {
    if let Some((name, arg)) = intrinsic(v) {
        return resolve_intrinsic(name, arg, ctx);
    }
    match v {
        J::Object(m) => m
            .iter()
            .map(|(k, v)| Ok((k.clone(), resolve(v, ctx)?)))
            .collect::<Result<serde_json::Map<_, _>, String>>()
            .map(J::Object),
        J::Array(items) => items
            .iter()
            .map(|i| resolve(i, ctx))
            .collect::<Result<Vec<_>, _>>()
            .map(J::Array),
        other => Ok(other.clone()),
    }
}

fn cannot(name: &str, why: &str) -> String {
    format!("cannot resolve `{name}` ({why})")
}

fn resolve_intrinsic(name: &str, arg: &J, ctx: &Ctx<'_>) -> Result<J, String> {
    match name {
        "Ref" => {
            let target = arg
                .as_str()
                .ok_or_else(|| cannot("Ref", "its argument is not a name"))?;
            ref_value(target, ctx).map(J::String)
        }
        "Fn::GetAtt" => {
            let (id, attr) = match arg {
                J::String(s) => s
                    .split_once('.')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| cannot("Fn::GetAtt", "expected `Resource.Attribute`"))?,
                J::Array(items) if items.len() == 2 => {
                    let id = items[0]
                        .as_str()
                        .ok_or_else(|| cannot("Fn::GetAtt", "the resource is not a name"))?;
                    let attr = match resolve(&items[1], ctx)? {
                        J::String(a) => a,
                        _ => return Err(cannot("Fn::GetAtt", "the attribute is not a name")),
                    };
                    (id.to_string(), attr)
                }
                _ => return Err(cannot("Fn::GetAtt", "expected [Resource, Attribute]")),
            };
            get_att(&id, &attr, ctx).map(J::String)
        }
        "Fn::Sub" => {
            let (text, vars) = match arg {
                J::String(s) => (s.as_str(), None),
                J::Array(items) if items.len() == 2 => (
                    items[0]
                        .as_str()
                        .ok_or_else(|| cannot("Fn::Sub", "the template is not a string"))?,
                    Some(
                        items[1]
                            .as_object()
                            .ok_or_else(|| cannot("Fn::Sub", "the variables are not a map"))?,
                    ),
                ),
                _ => {
                    return Err(cannot(
                        "Fn::Sub",
                        "expected a string or [string, variables]",
                    ))
                }
            };
            sub(text, vars, ctx).map(J::String)
        }
        "Fn::Join" => {
            let items = arg
                .as_array()
                .filter(|a| a.len() == 2)
                .ok_or_else(|| cannot("Fn::Join", "expected [delimiter, list]"))?;
            let delim = items[0]
                .as_str()
                .ok_or_else(|| cannot("Fn::Join", "the delimiter is not a string"))?;
            let parts = match resolve(&items[1], ctx)? {
                J::Array(parts) => parts,
                _ => return Err(cannot("Fn::Join", "the values are not a list")),
            };
            let strings = parts
                .iter()
                .map(|p| match p {
                    J::String(s) => Ok(s.clone()),
                    J::Number(n) => Ok(n.to_string()),
                    J::Bool(b) => Ok(b.to_string()),
                    _ => Err(cannot("Fn::Join", "a value is not a string")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(J::String(strings.join(delim)))
        }
        other => Err(format!("cannot resolve `{other}`")),
    }
}

/// `${...}` substitution.
fn sub(
    text: &str,
    vars: Option<&serde_json::Map<String, J>>,
    ctx: &Ctx<'_>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| cannot("Fn::Sub", "a `${` is never closed"))?;
        let name = after[..end].trim();
        if let Some(literal) = name.strip_prefix('!') {
            out.push_str("${");
            out.push_str(literal);
            out.push('}');
        } else if let Some(v) = vars.and_then(|m| m.get(name)) {
            match resolve(v, ctx)? {
                J::String(s) => out.push_str(&s),
                J::Number(n) => out.push_str(&n.to_string()),
                _ => return Err(cannot("Fn::Sub", &format!("`{name}` is not a string"))),
            }
        } else if let Some((id, attr)) = name.split_once('.') {
            if ctx.resources.contains_key(id) {
                out.push_str(&get_att(id, attr, ctx)?);
            } else {
                out.push_str(&ref_value(name, ctx)?);
            }
        } else {
            out.push_str(&ref_value(name, ctx)?);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// What `Ref` gives: a pseudo parameter, a parameter's `Default` (or a
/// placeholder), or a resource's physical id in the shape its type returns.
fn ref_value(name: &str, ctx: &Ctx<'_>) -> Result<String, String> {
    let pseudo = match name {
        "AWS::AccountId" => Some(PLACEHOLDER_ACCOUNT.to_string()),
        "AWS::Region" => Some(PLACEHOLDER_REGION.to_string()),
        "AWS::Partition" => Some(PLACEHOLDER_PARTITION.to_string()),
        "AWS::URLSuffix" => Some("amazonaws.com".to_string()),
        "AWS::StackName" => Some("placeholder-stack".to_string()),
        "AWS::StackId" => Some(format!(
            "arn:aws:cloudformation:{PLACEHOLDER_REGION}:{PLACEHOLDER_ACCOUNT}:stack/placeholder-stack/00000000-0000-0000-0000-000000000000"
        )),
        _ => None,
    };
    if let Some(p) = pseudo {
        return Ok(p);
    }
    if name.starts_with("AWS::") {
        return Err(cannot("Ref", &format!("`{name}` has no single value")));
    }
    if let Some(p) = ctx.parameters.get(name) {
        return Ok(match &p.default {
            Some(d) => d.clone(),
            None if name.ends_with("Arn") || name.ends_with("ARN") => generic_arn("placeholder"),
            None => "placeholder".to_string(),
        });
    }
    if let Some(rtype) = ctx.resources.get(name) {
        return Ok(ref_of(rtype, name));
    }
    Err(cannot(
        "Ref",
        &format!("`{name}` is neither a parameter nor a resource"),
    ))
}

fn get_att(id: &str, attr: &str, ctx: &Ctx<'_>) -> Result<String, String> {
    let rtype = ctx.resources.get(id).ok_or_else(|| {
        cannot(
            "Fn::GetAtt",
            &format!("`{id}` is not a resource of this template"),
        )
    })?;
    let n = slug(id);
    Ok(match attr {
        a if a == "Arn" || a.ends_with(".Arn") || a.ends_with("Arn") => arn_of(rtype, id),
        "QueueUrl" => queue_url(&n),
        "KeyId" => KEY_ID.to_string(),
        "RoleId" => "AROAPLACEHOLDER0000000".to_string(),
        a if a.ends_with("Name") => n,
        a => format!("{n}-{}", slug(a)),
    })
}

const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

/// A name made from a logical id: lowercase letters, digits and `-`.
fn slug(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    format!("placeholder-{s}")
}

fn queue_url(name: &str) -> String {
    format!("https://sqs.{PLACEHOLDER_REGION}.amazonaws.com/{PLACEHOLDER_ACCOUNT}/{name}")
}

fn generic_arn(name: &str) -> String {
    format!("arn:aws:service:{PLACEHOLDER_REGION}:{PLACEHOLDER_ACCOUNT}:{name}")
}

/// A placeholder ARN of a resource of type `rtype`.
fn arn_of(rtype: &str, id: &str) -> String {
    let n = slug(id);
    let (r, a) = (PLACEHOLDER_REGION, PLACEHOLDER_ACCOUNT);
    match rtype {
        "AWS::S3::Bucket" => format!("arn:aws:s3:::{n}"),
        "AWS::SNS::Topic" => format!("arn:aws:sns:{r}:{a}:{n}"),
        "AWS::SQS::Queue" => format!("arn:aws:sqs:{r}:{a}:{n}"),
        "AWS::IAM::Role" => format!("arn:aws:iam::{a}:role/{n}"),
        "AWS::IAM::User" => format!("arn:aws:iam::{a}:user/{n}"),
        "AWS::IAM::Group" => format!("arn:aws:iam::{a}:group/{n}"),
        "AWS::IAM::ManagedPolicy" => format!("arn:aws:iam::{a}:policy/{n}"),
        "AWS::IAM::InstanceProfile" => format!("arn:aws:iam::{a}:instance-profile/{n}"),
        "AWS::Lambda::Function" => format!("arn:aws:lambda:{r}:{a}:function:{n}"),
        "AWS::DynamoDB::Table" => format!("arn:aws:dynamodb:{r}:{a}:table/{n}"),
        "AWS::KMS::Key" => format!("arn:aws:kms:{r}:{a}:key/{KEY_ID}"),
        "AWS::Logs::LogGroup" => format!("arn:aws:logs:{r}:{a}:log-group:{n}:*"),
        "AWS::Kinesis::Stream" => format!("arn:aws:kinesis:{r}:{a}:stream/{n}"),
        "AWS::ECR::Repository" => format!("arn:aws:ecr:{r}:{a}:repository/{n}"),
        "AWS::SecretsManager::Secret" => {
            format!("arn:aws:secretsmanager:{r}:{a}:secret:{n}-AbCdEf")
        }
        "AWS::StepFunctions::StateMachine" => format!("arn:aws:states:{r}:{a}:stateMachine:{n}"),
        "AWS::Events::EventBus" => format!("arn:aws:events:{r}:{a}:event-bus/{n}"),
        "AWS::Events::Rule" => format!("arn:aws:events:{r}:{a}:rule/{n}"),
        "AWS::SSM::Parameter" => format!("arn:aws:ssm:{r}:{a}:parameter/{n}"),
        "AWS::CodePipeline::Pipeline" => format!("arn:aws:codepipeline:{r}:{a}:{n}"),
        "AWS::CloudFormation::Stack" => {
            format!("arn:aws:cloudformation:{r}:{a}:stack/{n}/00000000-0000-0000-0000-000000000000")
        }
        other => {
            let service = other
                .split("::")
                .nth(1)
                .map(str::to_ascii_lowercase)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "service".into());
            format!("arn:aws:{service}:{r}:{a}:{n}")
        }
    }
}

/// What `Ref` of a resource of type `rtype` gives: an ARN, a URL, a key id or a name.
fn ref_of(rtype: &str, id: &str) -> String {
    match rtype {
        "AWS::SNS::Topic"
        | "AWS::IAM::ManagedPolicy"
        | "AWS::StepFunctions::StateMachine"
        | "AWS::SecretsManager::Secret"
        | "AWS::CloudFormation::Stack" => arn_of(rtype, id),
        "AWS::SQS::Queue" => queue_url(&slug(id)),
        "AWS::KMS::Key" => KEY_ID.to_string(),
        _ => slug(id),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn template(text: &str) -> Template {
        Template::parse("common/app.yaml", text).unwrap()
    }

    /// Every resource kind the issue lists, with every intrinsic function.
    const ALL_KINDS: &str = r#"Parameters:
  EnvironmentName: { Type: String }
  BucketPrefix: { Type: String, Default: acme }
  ExternalArn: { Type: String }
Resources:
  Bucket: { Type: AWS::S3::Bucket }
  Topic: { Type: AWS::SNS::Topic }
  Queue: { Type: AWS::SQS::Queue }
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: { Service: !Sub "lambda.${AWS::URLSuffix}" }
            Action: sts:AssumeRole
      Policies:
        - PolicyName: inline
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Effect: Allow
                Action: s3:GetObject
                Resource: !Sub "${Bucket.Arn}/*"
              - Effect: Allow
                Action: sqs:SendMessage
                Resource: !GetAtt Queue.Arn
  Managed:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: ssm:GetParameter
            Resource: !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/${EnvironmentName}/*
  Inline:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: extra
      Roles: [!Ref Role]
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: s3:ListBucket
            Resource: !Join ["", ["arn:aws:s3:::", !Ref BucketPrefix, "-", !Ref Bucket]]
  BucketPolicy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Bucket
      PolicyDocument:
        Statement:
          - Effect: Deny
            Principal: "*"
            Action: s3:*
            Resource: [!GetAtt Bucket.Arn, !Sub "${Bucket.Arn}/*"]
            Condition: { Bool: { aws:SecureTransport: "false" } }
  TopicPolicy:
    Type: AWS::SNS::TopicPolicy
    Properties:
      Topics: [!Ref Topic]
      PolicyDocument:
        Statement:
          - Effect: Allow
            Principal: { Service: events.amazonaws.com }
            Action: sns:Publish
            Resource: !Ref Topic
  QueuePolicy:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues: [!Ref Queue]
      PolicyDocument:
        Statement:
          - Effect: Allow
            Principal: { AWS: !Ref ExternalArn }
            Action: sqs:SendMessage
            Resource: !GetAtt Queue.Arn
"#;

    #[test]
    fn extracts_every_kind_with_intrinsics_resolved() {
        let (policies, warnings) = extract(&template(ALL_KINDS));
        assert!(warnings.is_empty(), "{warnings:?}");
        let got: Vec<(String, String, PolicyKind)> = policies
            .iter()
            .map(|p| {
                (
                    p.logical_id.clone().unwrap(),
                    p.path.clone(),
                    p.kind.clone(),
                )
            })
            .collect();
        let r = |t: &str| PolicyKind::Resource(t.into());
        assert_eq!(
            got,
            vec![
                (
                    "BucketPolicy".into(),
                    "Properties.PolicyDocument".into(),
                    r("AWS::S3::Bucket")
                ),
                (
                    "Inline".into(),
                    "Properties.PolicyDocument".into(),
                    PolicyKind::Identity
                ),
                (
                    "Managed".into(),
                    "Properties.PolicyDocument".into(),
                    PolicyKind::Identity
                ),
                (
                    "QueuePolicy".into(),
                    "Properties.PolicyDocument".into(),
                    r("AWS::SQS::Queue")
                ),
                (
                    "Role".into(),
                    "Properties.AssumeRolePolicyDocument".into(),
                    PolicyKind::RoleTrust
                ),
                (
                    "Role".into(),
                    "Properties.Policies[0].PolicyDocument".into(),
                    PolicyKind::Identity
                ),
                (
                    "TopicPolicy".into(),
                    "Properties.PolicyDocument".into(),
                    r("AWS::SNS::Topic")
                ),
            ]
        );
        let by = |id: &str, path: &str| {
            policies
                .iter()
                .find(|p| p.logical_id.as_deref() == Some(id) && p.path == path)
                .unwrap()
        };
        let stmt = |id: &str, path: &str, i: usize| by(id, path).document["Statement"][i].clone();

        // !Sub with a pseudo parameter
        assert_eq!(
            stmt("Role", "Properties.AssumeRolePolicyDocument", 0)["Principal"]["Service"],
            "lambda.amazonaws.com"
        );
        // !Sub with ${Res.Arn}, !GetAtt X.Arn by type
        let inline = "Properties.Policies[0].PolicyDocument";
        assert_eq!(
            stmt("Role", inline, 0)["Resource"],
            "arn:aws:s3:::placeholder-bucket/*"
        );
        assert_eq!(
            stmt("Role", inline, 1)["Resource"],
            "arn:aws:sqs:us-east-1:123456789012:placeholder-queue"
        );
        // !Sub with ${AWS::Partition} ${AWS::Region} ${AWS::AccountId} ${Param}
        assert_eq!(
            stmt("Managed", "Properties.PolicyDocument", 0)["Resource"],
            "arn:aws:ssm:us-east-1:123456789012:parameter/placeholder/*"
        );
        // Fn::Join with a parameter Default and a bucket's Ref (its name)
        assert_eq!(
            stmt("Inline", "Properties.PolicyDocument", 0)["Resource"],
            "arn:aws:s3:::acme-placeholder-bucket"
        );
        assert_eq!(
            stmt("BucketPolicy", "Properties.PolicyDocument", 0)["Resource"],
            json!([
                "arn:aws:s3:::placeholder-bucket",
                "arn:aws:s3:::placeholder-bucket/*"
            ])
        );
        // Ref of a topic is its ARN
        assert_eq!(
            stmt("TopicPolicy", "Properties.PolicyDocument", 0)["Resource"],
            "arn:aws:sns:us-east-1:123456789012:placeholder-topic"
        );
        // Ref of a parameter without Default whose name says ARN
        assert_eq!(
            stmt("QueuePolicy", "Properties.PolicyDocument", 0)["Principal"]["AWS"],
            "arn:aws:service:us-east-1:123456789012:placeholder"
        );
        // Lines: the document's key, and the keys inside it.
        let role = by("Role", inline);
        assert_eq!(role.line, Some((20, 11)));
        assert_eq!(
            role.line_of(&[
                PolicyPathStep::Key("Statement".into()),
                PolicyPathStep::Index(1),
                PolicyPathStep::Key("Resource".into()),
            ]),
            Some((28, 17))
        );
        // A path past what the tree knows stops at the deepest known part.
        assert_eq!(
            role.line_of(&[
                PolicyPathStep::Key("Statement".into()),
                PolicyPathStep::Index(0),
                PolicyPathStep::Key("Nope".into()),
            ]),
            Some((23, 17))
        );
        assert_eq!(role.name(), "`Role` Properties.Policies[0].PolicyDocument");
    }

    #[test]
    fn json_templates_and_long_forms() {
        let t = Template::parse(
            "t.json",
            r#"{"Resources": {
  "Fn": {"Type": "AWS::Lambda::Function"},
  "P": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
      "Resource": {"Fn::GetAtt": ["Fn", "Arn"]}},
      {"Effect": "Allow", "Action": "logs:*",
      "Resource": {"Fn::Sub": ["arn:aws:logs:${R}:${AWS::AccountId}:*", {"R": {"Ref": "AWS::Region"}}]}}]}}}}}"#,
        )
        .unwrap();
        let (p, w) = extract(&t);
        assert!(w.is_empty());
        assert_eq!(
            p[0].document["Statement"][0]["Resource"],
            "arn:aws:lambda:us-east-1:123456789012:function:placeholder-fn"
        );
        assert_eq!(
            p[0].document["Statement"][1]["Resource"],
            "arn:aws:logs:us-east-1:123456789012:*"
        );
        assert_eq!(p[0].line, Some((3, 59)));
    }

    #[test]
    fn unresolvable_policies_are_skipped_with_a_warning() {
        let t = template(
            r#"Conditions:
  Prod: !Equals [a, b]
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: sts:AssumeRole}]
      Policies:
        - PolicyName: a
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: s3:GetObject
                Resource: !If [Prod, "arn:aws:s3:::a/*", "arn:aws:s3:::b/*"]
        - PolicyName: b
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: s3:GetObject
                Resource: !ImportValue shared-bucket-arn
        - PolicyName: c
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: s3:GetObject
                Resource: !GetAtt Missing.Arn
  Other:
    Type: AWS::IAM::User
    Properties:
      Policies: !If [Prod, [], []]
  Managed:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument: [1, 2]
"#,
        );
        let (p, w) = extract(&t);
        assert_eq!(p.len(), 1, "only the trust policy is usable");
        let msgs: Vec<String> = w.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                "common/app.yaml:35:7: warning: IAM policy `Managed` Properties.PolicyDocument skipped for Access Analyzer: the document is not a JSON object (found a list)",
                "common/app.yaml:31:7: warning: IAM policies of `Other` skipped for Access Analyzer: cannot resolve `Fn::If`",
                "common/app.yaml:11:11: warning: IAM policy `Role` Properties.Policies[0].PolicyDocument skipped for Access Analyzer: cannot resolve `Fn::If`",
                "common/app.yaml:17:11: warning: IAM policy `Role` Properties.Policies[1].PolicyDocument skipped for Access Analyzer: cannot resolve `Fn::ImportValue`",
                "common/app.yaml:23:11: warning: IAM policy `Role` Properties.Policies[2].PolicyDocument skipped for Access Analyzer: cannot resolve `Fn::GetAtt` (`Missing` is not a resource of this template)",
            ]
        );
        assert!(w.iter().all(|w| w.source == ProblemSource::AccessAnalyzer));
    }

    #[test]
    fn sub_edge_cases() {
        let params = BTreeMap::new();
        let resources: BTreeMap<String, String> =
            [("Key".to_string(), "AWS::KMS::Key".to_string())].into();
        let ctx = Ctx {
            parameters: &params,
            resources: &resources,
        };
        assert_eq!(
            sub("${!Literal}-${Key}-${Key.Arn}", None, &ctx).unwrap(),
            format!("${{Literal}}-{KEY_ID}-arn:aws:kms:us-east-1:123456789012:key/{KEY_ID}")
        );
        assert!(sub("${Nope}", None, &ctx).unwrap_err().contains("`Nope`"));
        assert!(sub("${Open", None, &ctx).is_err());
        assert!(ref_value("AWS::NoValue", &ctx).is_err());
    }

    #[test]
    fn standalone_files() {
        let p = parse_standalone(
            "policies/iam/deploy.json",
            "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\"}\n  ]\n}\n",
        )
        .unwrap();
        assert_eq!(p.kind, PolicyKind::Identity);
        assert_eq!(p.name(), "`policies/iam/deploy.json`");
        assert_eq!(
            p.line_of(&[
                PolicyPathStep::Key("Statement".into()),
                PolicyPathStep::Index(0)
            ]),
            Some((4, 5))
        );
        let e = parse_standalone("x.json", "{ nope").unwrap_err();
        assert!(e.message.starts_with("not a JSON IAM policy document"));
        assert_eq!((e.line, e.column), (Some(1), Some(3)));
        assert!(parse_standalone("x.json", "[1]").is_err());
    }
}
