//! Typed reading of YAML files that collects every problem with its position,
//! instead of stopping at the first serde error.

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use crate::problem::{did_you_mean, Problem};
use crate::yaml::{Doc, Node, Seg};

/// Reads one YAML file, collecting problems located by path.
pub(crate) struct Reader<'a> {
    pub file: &'a str,
    pub doc: Option<&'a Doc>,
    pub problems: &'a mut Vec<Problem>,
}

impl Reader<'_> {
    pub fn pos(&self, path: &[&str]) -> Option<(usize, usize)> {
        let segs: Vec<Seg<'_>> = path.iter().map(|k| Seg::Key(k)).collect();
        self.doc.and_then(|d| d.line_col(&segs))
    }

    pub fn error(&mut self, path: &[&str], message: impl Into<String>) {
        let p = Problem::error(self.file, message).at(self.pos(path));
        self.problems.push(p);
    }

    /// Reports keys of `map` not in `allowed`.
    pub fn check_keys(&mut self, map: &Mapping, path: &[&str], allowed: &[&str]) {
        for key in map.keys() {
            let name = match key {
                Value::String(s) => s.clone(),
                other => {
                    self.error(path, format!("keys must be strings, found {}", kind(other)));
                    continue;
                }
            };
            if !allowed.contains(&name.as_str()) {
                let mut p: Vec<&str> = path.to_vec();
                p.push(&name);
                let where_ = if path.is_empty() {
                    "at the top level".to_string()
                } else {
                    format!("in `{}`", path.join("."))
                };
                let hint = did_you_mean(&name, allowed.iter().copied());
                let known = allowed.join(", ");
                self.error(
                    &p,
                    format!("unknown key `{name}` {where_}{hint} (known keys: {known})"),
                );
            }
        }
    }

    /// Reads `map[key]` as `T`, reporting a type error at the key.
    pub fn get<T: DeserializeOwned>(
        &mut self,
        map: &Mapping,
        path: &[&str],
        key: &str,
    ) -> Option<T> {
        let v = map.get(key)?;
        let mut p: Vec<&str> = path.to_vec();
        p.push(key);
        match serde_yaml::from_value::<T>(v.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                let dotted = p.join(".");
                self.error(
                    &p,
                    format!("`{dotted}` has the wrong type: {}", clean(&e.to_string())),
                );
                None
            }
        }
    }

    /// Reads `map[key]` as a mapping (absent: `None`; wrong type: reported).
    pub fn map<'m>(&mut self, map: &'m Mapping, path: &[&str], key: &str) -> Option<&'m Mapping> {
        match map.get(key)? {
            Value::Mapping(m) => Some(m),
            Value::Null => None,
            other => {
                let mut p: Vec<&str> = path.to_vec();
                p.push(key);
                let dotted = p.join(".");
                self.error(
                    &p,
                    format!("`{dotted}` must be a mapping, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// Reads a map of scalar values rendered as CloudFormation strings.
    pub fn string_map(
        &mut self,
        map: &Mapping,
        path: &[&str],
        key: &str,
    ) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        let Some(m) = self.map(map, path, key) else {
            return out;
        };
        for (k, v) in m {
            let Some(name) = k.as_str() else { continue };
            let mut p: Vec<&str> = path.to_vec();
            p.push(key);
            p.push(name);
            match render_scalar(v) {
                Some(s) => {
                    out.insert(name.to_string(), s);
                }
                None => {
                    let dotted = p.join(".");
                    self.error(
                        &p,
                        format!(
                            "`{dotted}` must be a string, number, boolean or list of those, found {}",
                            kind(v)
                        ),
                    );
                }
            }
        }
        out
    }
}

/// Renders a YAML value the way CloudFormation receives it: strings as they are,
/// numbers and booleans as text, lists comma-joined (CommaDelimitedList).
pub(crate) fn render_scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Sequence(items) => items
            .iter()
            .map(|i| match i {
                Value::Sequence(_) => None,
                other => render_scalar(other),
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        _ => None,
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// serde messages end with " at line X column Y" for some errors; positions are ours.
fn clean(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Parses YAML text into a value, with its span tree to be built on first
/// use (see [`Doc`]); a syntax error becomes a problem.
pub(crate) fn parse_yaml(file: &str, text: &str) -> Result<(Value, Option<Doc>), Problem> {
    let value = parse_value(file, text)?;
    Ok((value, Some(Doc::new(text))))
}

/// Parses YAML text into a value and its span tree, both at once (for
/// templates, whose spans are always needed); a syntax error becomes a problem.
pub(crate) fn parse_yaml_with_spans(
    file: &str,
    text: &str,
) -> Result<(Value, Option<Node>), Problem> {
    let value = parse_value(file, text)?;
    let doc = Node::parse(text).map_err(|e| {
        Problem::error(file, format!("invalid YAML: {}", e.message))
            .at(Some((e.pos.line, e.pos.column)))
    })?;
    Ok((value, doc))
}

fn parse_value(file: &str, text: &str) -> Result<Value, Problem> {
    serde_yaml::from_str(text).map_err(|e| {
        let pos = e.location().map(|l| (l.line(), l.column()));
        Problem::error(file, format!("invalid YAML: {}", clean(&e.to_string()))).at(pos)
    })
}
