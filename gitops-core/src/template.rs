//! CloudFormation templates: just enough parsing to check what environments pass them.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_yaml::Value;

use crate::problem::{Problem, ProblemSource};
use crate::reader::{parse_yaml_with_spans, render_scalar};
use crate::yaml::Node;

/// Templates larger than this are rejected (CloudFormation's limit via S3).
pub const MAX_TEMPLATE_BYTES: usize = 1024 * 1024;

/// A parsed CloudFormation template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Repository-relative path.
    pub path: String,
    /// The declared parameters by name.
    pub parameters: BTreeMap<String, TemplateParameter>,
    /// The whole document (short-form tags kept as tagged values).
    pub body: Value,
    /// Positions of every node, when the text could be mapped.
    pub(crate) doc: Option<Node>,
    /// The template's text, as sent to CloudFormation.
    pub text: String,
}

/// One entry of a template's `Parameters` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateParameter {
    /// The parameter's `Type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `Default`, rendered as a string.
    pub default: Option<String>,
    /// `AllowedValues`, rendered as strings.
    pub allowed_values: Vec<String>,
    /// `AllowedPattern`.
    pub allowed_pattern: Option<String>,
    /// Whether the value is secret (`NoEcho: true`).
    pub no_echo: bool,
}

impl Template {
    /// Parses a template from its text. JSON and YAML (with short-form tags) are accepted.
    pub fn parse(path: &str, text: &str) -> Result<Template, Problem> {
        let err = |msg: String| Problem::error(path, msg).with_source(ProblemSource::Template);
        let trimmed = text.trim_start_matches('\u{feff}').trim_start();
        let (body, doc) = if trimmed.starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(trimmed).map_err(|e| {
                err(format!("invalid JSON template: {e}")).at(Some((e.line(), e.column())))
            })?;
            let body: Value = serde_yaml::to_value(&v).map_err(|e| err(e.to_string()))?;
            (body, Node::parse(text).ok().flatten())
        } else {
            parse_yaml_with_spans(path, text).map_err(|p| p.with_source(ProblemSource::Template))?
        };
        let Value::Mapping(top) = &body else {
            return Err(err(
                "not a CloudFormation template: expected a mapping with a `Resources` section"
                    .into(),
            ));
        };
        if !top.contains_key("Resources") {
            return Err(err(
                "not a CloudFormation template: it has no `Resources` section".into(),
            ));
        }
        let mut parameters = BTreeMap::new();
        if let Some(Value::Mapping(params)) = top.get("Parameters") {
            for (name, spec) in params {
                let Some(name) = name.as_str() else { continue };
                let get = |k: &str| match spec {
                    Value::Mapping(m) => m.get(k),
                    _ => None,
                };
                parameters.insert(
                    name.to_string(),
                    TemplateParameter {
                        kind: get("Type")
                            .and_then(render_scalar)
                            .unwrap_or_else(|| "String".into()),
                        default: get("Default").and_then(render_scalar),
                        allowed_values: match get("AllowedValues") {
                            Some(Value::Sequence(s)) => {
                                s.iter().filter_map(render_scalar).collect()
                            }
                            _ => Vec::new(),
                        },
                        allowed_pattern: get("AllowedPattern").and_then(render_scalar),
                        no_echo: matches!(get("NoEcho"), Some(Value::Bool(true)))
                            || get("NoEcho").and_then(render_scalar).as_deref() == Some("true"),
                    },
                );
            }
        }
        Ok(Template {
            path: path.to_string(),
            parameters,
            body,
            doc,
            text: text.to_string(),
        })
    }

    /// Line and column of the resource with this logical id, when known.
    pub fn resource_line(&self, logical_id: &str) -> Option<(usize, usize)> {
        use crate::yaml::Seg;
        self.doc
            .as_ref()?
            .line_col(&[Seg::Key("Resources"), Seg::Key(logical_id)])
    }
}

impl Template {
    /// The template as JSON with short-form tags in long form (`!Ref X` →
    /// `{"Ref": "X"}`, `!GetAtt A.B` → `{"Fn::GetAtt": ["A", "B"]}`), so that a
    /// JSON and a YAML rendering of the same template compare equal, whatever
    /// their key order.
    pub fn normalized(&self) -> serde_json::Value {
        normalize(&self.body)
    }
}

fn normalize(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Number(n) => serde_json::to_value(n).unwrap_or(J::Null),
        Value::String(s) => J::String(s.clone()),
        Value::Sequence(items) => J::Array(items.iter().map(normalize).collect()),
        Value::Mapping(m) => J::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::String(s) => s.clone(),
                        other => render_scalar(other).unwrap_or_default(),
                    };
                    (key, normalize(v))
                })
                .collect(),
        ),
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let inner = match (tag, &t.value) {
                ("GetAtt", Value::String(s)) => match s.split_once('.') {
                    Some((a, b)) => J::Array(vec![J::String(a.into()), J::String(b.into())]),
                    None => J::String(s.clone()),
                },
                _ => normalize(&t.value),
            };
            let key = if tag == "Ref" || tag == "Condition" {
                tag.to_string()
            } else {
                format!("Fn::{tag}")
            };
            J::Object([(key, inner)].into_iter().collect())
        }
    }
}

/// Why a value does not fit a template parameter's constraints. A NoEcho
/// parameter's value never appears in it, not even when it is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParameterError {
    /// A value (or list item) outside `AllowedValues`.
    #[error("`{value}` is not one of the AllowedValues: {}", allowed.join(", "))]
    NotAllowed {
        /// The value.
        value: String,
        /// The template's `AllowedValues`.
        allowed: Vec<String>,
    },
    /// A value (or list item) that does not match `AllowedPattern`.
    #[error("`{value}` does not match the AllowedPattern `{pattern}`")]
    NoMatch {
        /// The value.
        value: String,
        /// The template's `AllowedPattern`.
        pattern: String,
    },
    /// A `Number` parameter's value that is not a number.
    #[error("`{value}` is not a Number")]
    NotANumber {
        /// The value.
        value: String,
    },
}

impl ParameterError {
    /// The same error with `secret`, and each item of it as a list, masked
    /// wherever it appears.
    fn masked(self, secret: &str) -> Self {
        let mask = |text: String| {
            let mut text = text.replace(secret, crate::text::MASK);
            for piece in secret.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                text = text.replace(piece, crate::text::MASK);
            }
            text
        };
        match self {
            ParameterError::NotAllowed { value, allowed } => ParameterError::NotAllowed {
                value: mask(value),
                allowed: allowed.into_iter().map(mask).collect(),
            },
            ParameterError::NoMatch { value, pattern } => ParameterError::NoMatch {
                value: mask(value),
                pattern: mask(pattern),
            },
            ParameterError::NotANumber { value } => {
                ParameterError::NotANumber { value: mask(value) }
            }
        }
    }
}

impl TemplateParameter {
    /// Checks `value` against `AllowedValues`, `AllowedPattern` and the
    /// `Number` type.
    pub fn check(&self, value: &str) -> Result<(), ParameterError> {
        // A NoEcho value is never printed, not even when it is wrong.
        self.check_shown(value)
            .map_err(|e| if self.no_echo { e.masked(value) } else { e })
    }

    fn check_shown(&self, value: &str) -> Result<(), ParameterError> {
        let values: Vec<&str> =
            if self.kind.starts_with("CommaDelimitedList") || self.kind.starts_with("List<") {
                value.split(',').map(str::trim).collect()
            } else {
                vec![value]
            };
        if !self.allowed_values.is_empty() {
            for v in &values {
                if !self.allowed_values.iter().any(|a| a == v) {
                    return Err(ParameterError::NotAllowed {
                        value: v.to_string(),
                        allowed: self.allowed_values.clone(),
                    });
                }
            }
        }
        if let Some(pattern) = &self.allowed_pattern {
            // CloudFormation matches the whole value.
            match regex::Regex::new(&format!("^(?:{pattern})$")) {
                Ok(re) => {
                    for v in &values {
                        if !re.is_match(v) {
                            return Err(ParameterError::NoMatch {
                                value: v.to_string(),
                                pattern: pattern.clone(),
                            });
                        }
                    }
                }
                Err(_) => return Ok(()), // a pattern we cannot evaluate is left to CloudFormation
            }
        }
        if self.kind == "Number" && value.trim().parse::<f64>().is_err() {
            return Err(ParameterError::NotANumber {
                value: value.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_value_says_which_rule_and_a_no_echo_one_is_masked() {
        let y = "Parameters:\n  L: {Type: CommaDelimitedList, AllowedValues: [a, b]}\n  S: {Type: String, NoEcho: true, AllowedPattern: '[a-z]+'}\n  N: {Type: Number}\nResources: {T: {Type: AWS::SNS::Topic}}\n";
        let t = Template::parse("t.yaml", y).unwrap();
        let e = t.parameters["L"].check("a, c").unwrap_err();
        assert_eq!(e.to_string(), "`c` is not one of the AllowedValues: a, b");
        assert!(matches!(e, ParameterError::NotAllowed { .. }));
        let e = t.parameters["S"].check("Hunter2").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "`{}` does not match the AllowedPattern `[a-z]+`",
                crate::text::MASK
            )
        );
        let e = t.parameters["N"].check("ten").unwrap_err();
        assert_eq!(
            e,
            ParameterError::NotANumber {
                value: "ten".into()
            }
        );
    }

    #[test]
    fn parses_yaml_with_short_tags_and_json() {
        let y = "Parameters:\n  A: {Type: String, AllowedValues: [x, y]}\n  N: {Type: Number, Default: 3}\nResources:\n  T:\n    Type: AWS::SNS::Topic\n    Properties: {TopicName: !Sub '${A}-t'}\n";
        let t = Template::parse("t.yaml", y).unwrap();
        assert_eq!(t.parameters["N"].default.as_deref(), Some("3"));
        assert!(t.parameters["A"].check("x").is_ok());
        assert!(t.parameters["A"].check("z").is_err());
        assert_eq!(t.resource_line("T"), Some((5, 3)));
        let j = r#"{"Resources": {"T": {"Type": "AWS::SNS::Topic"}}, "Parameters": {"P": {"Type": "String", "AllowedPattern": "[0-9]+"}}}"#;
        let t = Template::parse("t.json", j).unwrap();
        assert!(t.parameters["P"].check("12").is_ok());
        assert!(t.parameters["P"].check("12a").is_err());
        assert!(Template::parse("x.yaml", "a: 1\n").is_err());
        assert!(Template::parse("x.yaml", "[1, 2]\n").is_err());
        assert!(Template::parse("x.json", "{ nope").is_err());
        let y = Template::parse(
            "a.yaml",
            "Resources:\n  B: {Type: X, Properties: {A: !GetAtt C.Arn, R: !Ref D, S: !Sub 'x'}}\n",
        )
        .unwrap();
        let j = Template::parse("a.json", r#"{"Resources": {"B": {"Properties": {"S": {"Fn::Sub": "x"}, "R": {"Ref": "D"}, "A": {"Fn::GetAtt": ["C", "Arn"]}}, "Type": "X"}}}"#).unwrap();
        assert_eq!(y.normalized(), j.normalized());
    }
}
