//! In-place edits of environment files: set promoted values without
//! re-serialising the document.
//!
//! [`set_values`] replaces only the bytes of the scalars it changes, so
//! comments, key order, quoting style, indentation, CRLF line endings and a
//! missing final newline all survive. A key the file lacks is inserted into
//! the right map in that map's style: a new line after the last entry of a
//! block map, `, Key: "v"` before the `}` of a flow map. A missing
//! `parameters:` or `tags:` map is appended at the end of the file.
//!
//! Edits that would change what an alias points to are refused, as are
//! values this editor cannot write in place (block scalars, tagged values,
//! lists). Every result is checked by parsing it again: the document must
//! equal the original with exactly the requested values set.
//!
//! ```
//! use gitops_core::edit::set_values;
//! use gitops_core::PromotedKey;
//!
//! let text = "parameters:\n  AppVersion: \"1.4.1\"  # promoted\n";
//! let edits = [(PromotedKey::Parameter("AppVersion".into()), "1.4.2".to_string())];
//! assert_eq!(
//!     set_values(text, &edits).unwrap(),
//!     "parameters:\n  AppVersion: \"1.4.2\"  # promoted\n"
//! );
//! ```

use serde_yaml::{Mapping, Value};

use crate::model::PromotedKey;
use crate::reader::render_scalar;
use crate::yaml::{Node, NodeKind, Style};

/// Why an environment file could not be edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// The file is not valid YAML.
    #[error("the file is not valid YAML: {0}")]
    Syntax(String),
    /// The document, or the `parameters`/`tags` value in it, is not a mapping.
    #[error("`{path}` is {found}, not a mapping; fix the file by hand first")]
    NotAMap {
        /// `(document)`, `parameters` or `tags`.
        path: String,
        /// What was found instead.
        found: String,
    },
    /// The edit would change what an alias points to, or the value is an alias.
    #[error("cannot change `{key}`: {reason}")]
    Alias {
        /// The promoted key, such as `parameters.AppVersion`.
        key: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// The value is written in a way this editor does not change in place.
    #[error("cannot change `{key}` in place: {reason}")]
    Unsupported {
        /// The promoted key.
        key: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// The edited text did not read back as intended (a bug: please report it).
    #[error("the edited file would not read back as intended ({0}); nothing was changed, please report this")]
    Verify(String),
}

/// Sets each promoted key to its value in the environment file `text`, and
/// returns the new text. Keys whose value is already the one asked for are
/// left alone (so an edit that changes nothing returns `text` as it is).
///
/// See the [module documentation](self) for what is preserved and refused.
pub fn set_values(text: &str, edits: &[(PromotedKey, String)]) -> Result<String, EditError> {
    let original: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_yaml::from_str(text).map_err(|e| EditError::Syntax(e.to_string()))?
    };
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = text.to_string();
    let mut expected = original.clone();
    for (key, value) in edits {
        let (map_name, name) = split(key);
        let current = original
            .get(map_name)
            .and_then(|m| m.get(name))
            .and_then(render_scalar);
        if current.as_deref() == Some(value.as_str()) {
            continue;
        }
        out = set_one(&out, key, value, eol)?;
        expect(&mut expected, map_name, name, value);
    }
    if out == text {
        return Ok(out);
    }
    let reread: Value = serde_yaml::from_str(&out)
        .map_err(|e| EditError::Verify(format!("the result does not parse: {e}")))?;
    if reread != expected {
        return Err(EditError::Verify(
            "the result differs from the original in more than the promoted values".into(),
        ));
    }
    Ok(out)
}

fn split(key: &PromotedKey) -> (&'static str, &str) {
    match key {
        PromotedKey::Parameter(n) => ("parameters", n),
        PromotedKey::Tag(n) => ("tags", n),
    }
}

/// Applies the edit to the expected document value.
fn expect(doc: &mut Value, map_name: &str, name: &str, value: &str) {
    if !matches!(doc, Value::Mapping(_)) {
        *doc = Value::Mapping(Mapping::new());
    }
    if let Value::Mapping(root) = doc {
        let map = root
            .entry(Value::String(map_name.into()))
            .or_insert(Value::Null);
        if !matches!(map, Value::Mapping(_)) {
            *map = Value::Mapping(Mapping::new());
        }
        if let Value::Mapping(m) = map {
            m.insert(Value::String(name.into()), Value::String(value.into()));
        }
    }
}

/// One edit, on text that has gone through the previous ones.
fn set_one(text: &str, key: &PromotedKey, value: &str, eol: &str) -> Result<String, EditError> {
    let (map_name, name) = split(key);
    let key_str = key.to_string();
    let doc = Node::parse(text).map_err(|e| {
        EditError::Syntax(format!(
            "{} at line {} column {}",
            e.message, e.pos.line, e.pos.column
        ))
    })?;
    let unit = indent_unit(doc.as_ref());
    let Some(root) = doc else {
        // Nothing but comments (or nothing at all).
        let block = format!(
            "{map_name}:{eol}{}{}",
            " ".repeat(unit),
            entry(name, value, None, false)
        );
        return Ok(append_at_end(text, &block, eol));
    };
    refuse_anchor(&root, text, &key_str, "the document")?;
    let NodeKind::Map {
        entries,
        flow: root_flow,
        ..
    } = &root.kind
    else {
        return Err(EditError::NotAMap {
            path: "(document)".into(),
            found: describe(&root),
        });
    };
    let found: Vec<&(Node, Node)> = entries
        .iter()
        .filter(|(k, _)| k.as_str() == Some(map_name))
        .collect();
    let (map_key, map) = match found.as_slice() {
        [] => {
            // No `parameters:`/`tags:` yet.
            if *root_flow {
                let inner = format!("{map_name}: {{ {} }}", entry(name, value, None, true));
                return Ok(insert_into_flow(text, &root, &inner, eol));
            }
            let indent = entries
                .first()
                .map(|(k, _)| k.start.column.saturating_sub(1))
                .unwrap_or(0);
            let block = format!(
                "{}{map_name}:{eol}{}{}",
                " ".repeat(indent),
                " ".repeat(indent + unit),
                entry(name, value, None, false)
            );
            return Ok(append_at_end(text, &block, eol));
        }
        [one] => (&one.0, &one.1),
        _ => {
            return Err(EditError::Unsupported {
                key: key_str,
                reason: format!("`{map_name}` appears more than once in the file"),
            })
        }
    };
    match &map.kind {
        NodeKind::Alias => {
            return Err(EditError::Alias {
                key: key_str,
                reason: format!(
                    "`{map_name}` is an alias of a map defined elsewhere in the file, so this change would also change that map; write `{map_name}` out in full here"
                ),
            })
        }
        NodeKind::Scalar {
            value: v,
            style: Style::Plain,
            tag: None,
        } if matches!(v.as_str(), "" | "~" | "null" | "Null" | "NULL") => {
            refuse_anchor(map, text, &key_str, &format!("`{map_name}`"))?;
            // `parameters:` with nothing (or null) after it.
            if map.end.byte == map.start.byte {
                let indent = map_key.start.column.saturating_sub(1) + unit;
                let line = format!("{eol}{}{}", " ".repeat(indent), entry(name, value, None, false));
                let at = line_end(text, map_key.content_end());
                return Ok(splice(text, at, at, &line));
            }
            let flow = format!("{{ {} }}", entry(name, value, None, true));
            return Ok(splice(text, map.start.byte, map.end.byte, &flow));
        }
        NodeKind::Map { .. } => {}
        _ => {
            return Err(EditError::NotAMap {
                path: map_name.into(),
                found: describe(map),
            })
        }
    }
    refuse_anchor(map, text, &key_str, &format!("`{map_name}`"))?;
    let NodeKind::Map { entries, flow, .. } = &map.kind else {
        return Ok(text.to_string());
    };
    let found: Vec<&(Node, Node)> = entries
        .iter()
        .filter(|(k, _)| k.as_str() == Some(name))
        .collect();
    match found.as_slice() {
        [] => {
            let sibling = entries.iter().rev().find_map(|(_, v)| match &v.kind {
                NodeKind::Scalar {
                    style: s @ (Style::Plain | Style::Single | Style::Double),
                    ..
                } => Some(*s),
                _ => None,
            });
            if *flow {
                let e = entry(name, value, sibling, true);
                Ok(insert_into_flow(text, map, &e, eol))
            } else {
                let indent = entries
                    .last()
                    .map(|(k, _)| k.start.column.saturating_sub(1))
                    .unwrap_or(0);
                let line = format!(
                    "{eol}{}{}",
                    " ".repeat(indent),
                    entry(name, value, sibling, false)
                );
                let at = line_end(text, map.content_end());
                Ok(splice(text, at, at, &line))
            }
        }
        [(_, v)] => replace_scalar(text, v, value, *flow, &key_str),
        _ => Err(EditError::Unsupported {
            key: key_str,
            reason: format!("`{name}` appears more than once in `{map_name}`"),
        }),
    }
}

/// Replaces the scalar `node` with `value`, keeping its quoting style.
fn replace_scalar(
    text: &str,
    node: &Node,
    value: &str,
    flow: bool,
    key: &str,
) -> Result<String, EditError> {
    let unsupported = |reason: &str| EditError::Unsupported {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    match &node.kind {
        NodeKind::Alias => Err(EditError::Alias {
            key: key.to_string(),
            reason: format!(
                "its value is an alias ({}) of a value anchored elsewhere; replace the alias with a plain value first",
                text.get(node.start.byte..node.end.byte).unwrap_or("*")
            ),
        }),
        NodeKind::Scalar { tag: Some(t), .. } => Err(unsupported(&format!(
            "its value carries the tag `!{t}`; environment values must be plain strings"
        ))),
        NodeKind::Scalar { style, .. } => {
            refuse_anchor(node, text, key, "its value")?;
            let new = match style {
                Style::Block => {
                    return Err(unsupported(
                        "its value is a block scalar (`|` or `>`); write it on one line, such as `AppVersion: \"1.4.2\"`",
                    ))
                }
                s => format_scalar(value, *s, flow),
            };
            let (start, end) = (node.start.byte, node.end.byte);
            if start < end {
                return Ok(splice(text, start, end, &new));
            }
            // An empty value: saphyr places it at the colon.
            if text[start..].starts_with(':') {
                Ok(splice(text, start + 1, start + 1, &format!(" {new}")))
            } else if text[..start].ends_with(':') {
                Ok(splice(text, start, start, &format!(" {new}")))
            } else {
                Err(unsupported("its value is empty and its position is unclear; write `Key: \"value\"` by hand"))
            }
        }
        NodeKind::Seq { .. } => Err(unsupported(
            "its value is a list; promotion writes single values",
        )),
        NodeKind::Map { .. } => Err(unsupported(
            "its value is a map; promotion writes single values",
        )),
    }
}

/// Refuses when `node` carries an anchor: aliases elsewhere may share it.
fn refuse_anchor(node: &Node, text: &str, key: &str, what: &str) -> Result<(), EditError> {
    if !node.anchored {
        return Ok(());
    }
    let name = node.anchor(text).unwrap_or("…");
    Err(EditError::Alias {
        key: key.to_string(),
        reason: format!(
            "{what} carries the anchor `&{name}`, so every alias `*{name}` shares it and would change too; replace the aliases with plain values (or remove the anchor) first"
        ),
    })
}

fn describe(node: &Node) -> String {
    match &node.kind {
        NodeKind::Scalar { value, .. } if value.is_empty() => "empty".into(),
        NodeKind::Scalar { value, .. } => format!("the scalar `{value}`"),
        NodeKind::Seq { .. } => "a list".into(),
        NodeKind::Map { .. } => "a mapping".into(),
        NodeKind::Alias => "an alias".into(),
    }
}

fn splice(text: &str, start: usize, end: usize, new: &str) -> String {
    let mut out = String::with_capacity(text.len() + new.len());
    out.push_str(&text[..start]);
    out.push_str(new);
    out.push_str(&text[end..]);
    out
}

/// Where to insert a line after content ending at byte `pos`: the end of
/// that content's line (past any comment), before its line break.
fn line_end(text: &str, pos: usize) -> usize {
    let mut pos = pos.min(text.len());
    // Block scalars end after their line break: step back onto their last line.
    if text[..pos].ends_with('\n') {
        pos -= 1;
        if text[..pos].ends_with('\r') {
            pos -= 1;
        }
        return pos;
    }
    match text[pos..].find('\n') {
        Some(i) => {
            let at = pos + i;
            if text[..at].ends_with('\r') {
                at - 1
            } else {
                at
            }
        }
        None => text.len(),
    }
}

/// Appends a block at the end of the file, keeping a missing final newline missing.
fn append_at_end(text: &str, block: &str, eol: &str) -> String {
    if text.is_empty() {
        return format!("{block}{eol}");
    }
    if text.ends_with('\n') {
        format!("{text}{block}{eol}")
    } else {
        format!("{text}{eol}{block}")
    }
}

/// Inserts `entry` as the last entry of the flow map `map`.
fn insert_into_flow(text: &str, map: &Node, entry: &str, eol: &str) -> String {
    let close = map.end.byte.saturating_sub(1);
    let NodeKind::Map { entries, .. } = &map.kind else {
        return text.to_string();
    };
    let Some((last_key, last_value)) = entries.last() else {
        // `{}` (or `{ }`): fill it.
        let open = map.content_start(text);
        return splice(text, open + 1, close, &format!(" {entry} "));
    };
    let last_end = last_key.content_end().max(last_value.content_end());
    let same_line = !text[last_end..close].contains('\n');
    if same_line {
        return splice(text, last_end, last_end, &format!(", {entry}"));
    }
    // A flow map over several lines: a new line in the last entry's column.
    let indent = " ".repeat(last_key.start.column.saturating_sub(1));
    let after = &text[last_end..close];
    let trimmed = after.trim_start_matches([' ', '\t']);
    if trimmed.starts_with(',') {
        let comma = last_end + (after.len() - trimmed.len()) + 1;
        let at = line_end(text, comma);
        splice(text, at, at, &format!("{eol}{indent}{entry},"))
    } else {
        splice(text, last_end, last_end, &format!(",{eol}{indent}{entry}"))
    }
}

/// `Key: value` for a new entry, with the value in `style` (or double quotes).
fn entry(name: &str, value: &str, style: Option<Style>, flow: bool) -> String {
    let key = if plain_ok(name, flow) {
        name.to_string()
    } else {
        double_quoted(name)
    };
    format!(
        "{key}: {}",
        format_scalar(value, style.unwrap_or(Style::Double), flow)
    )
}

/// `value` written in `style`, or in double quotes when that style cannot
/// carry it as the same string.
fn format_scalar(value: &str, style: Style, flow: bool) -> String {
    match style {
        Style::Plain if plain_ok(value, flow) => value.to_string(),
        Style::Single if value.chars().all(|c| !needs_escape(c)) => {
            format!("'{}'", value.replace('\'', "''"))
        }
        _ => double_quoted(value),
    }
}

/// Whether `value` written plain reads back as the very same string (not a
/// number, a boolean, null, or something cut short by a comment).
fn plain_ok(value: &str, flow: bool) -> bool {
    const INDICATORS: &[char] = &[
        '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@',
        '`',
    ];
    let Some(first) = value.chars().next() else {
        return false;
    };
    if INDICATORS.contains(&first)
        || value.starts_with(char::is_whitespace)
        || value.ends_with(char::is_whitespace)
        || value.ends_with(':')
        || value.contains(": ")
        || value.contains(" #")
        || value.contains(":\t")
        || value.contains("\t#")
        || value.chars().any(|c| needs_escape(c) || c == '\t')
        || (flow && value.contains([',', '[', ']', '{', '}']))
    {
        return false;
    }
    let probe = if flow {
        format!("{{k: {value}}}")
    } else {
        format!("k: {value}")
    };
    matches!(
        serde_yaml::from_str::<Value>(&probe),
        Ok(Value::Mapping(m)) if m.len() == 1 && m.get("k") == Some(&Value::String(value.to_string()))
    )
}

/// Characters that only double quotes can carry (as escapes): YAML's
/// non-printable characters, and line and page breaks.
fn needs_escape(c: char) -> bool {
    let printable = matches!(c,
        '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
    !printable || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if needs_escape(c) => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{n:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The file's indentation step: how far the first nested block map is
/// indented under its key; 2 when there is none.
fn indent_unit(doc: Option<&Node>) -> usize {
    let Some(NodeKind::Map { entries, .. }) = doc.map(|d| &d.kind) else {
        return 2;
    };
    entries
        .iter()
        .find_map(|(k, v)| match &v.kind {
            NodeKind::Map {
                entries: inner,
                flow: false,
                ..
            } => inner
                .first()
                .map(|(ik, _)| ik.start.column.saturating_sub(k.start.column))
                .filter(|n| *n > 0),
            _ => None,
        })
        .unwrap_or(2)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use expect_test::{expect, Expect};

    use super::*;

    fn p(name: &str) -> PromotedKey {
        PromotedKey::Parameter(name.into())
    }

    fn t(name: &str) -> PromotedKey {
        PromotedKey::Tag(name.into())
    }

    fn check(text: &str, edits: &[(PromotedKey, &str)], expected: Expect) {
        let edits: Vec<(PromotedKey, String)> = edits
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        let out = match set_values(text, &edits) {
            Ok(s) => s,
            Err(e) => format!("error: {e}"),
        };
        expected.assert_eq(&out);
    }

    /// Lines that differ between two texts (same line count assumed).
    fn changed_lines(a: &str, b: &str) -> usize {
        a.lines().zip(b.lines()).filter(|(x, y)| x != y).count()
            + a.lines().count().abs_diff(b.lines().count())
    }

    #[test]
    fn comments_above_beside_and_below_stay() {
        check(
            "# Production.\nparameters:\n  # The version, promoted from staging.\n  AppVersion: \"1.4.1\"  # promoted: staging -> prod\n  # below\n  LogLevel: INFO\n",
            &[(p("AppVersion"), "1.4.2")],
            expect![[r#"
                # Production.
                parameters:
                  # The version, promoted from staging.
                  AppVersion: "1.4.2"  # promoted: staging -> prod
                  # below
                  LogLevel: INFO
            "#]],
        );
    }

    #[test]
    fn quoting_styles_are_kept() {
        check(
            "parameters:\n  A: '1.0'\n  B: \"1.0\"\n  C: v1.0\n",
            &[(p("A"), "2.0"), (p("B"), "2.0"), (p("C"), "v2.0")],
            expect![[r#"
                parameters:
                  A: '2.0'
                  B: "2.0"
                  C: v2.0
            "#]],
        );
    }

    #[test]
    fn plain_values_that_would_change_type_get_double_quotes() {
        check(
            "parameters:\n  A: v1\n  B: v1\n  C: v1\n  D: v1\n  E: v1\n",
            &[
                (p("A"), "1.10"),
                (p("B"), "true"),
                (p("C"), "a: b"),
                (p("D"), "x #y"),
                (p("E"), ""),
            ],
            expect![[r#"
                parameters:
                  A: "1.10"
                  B: "true"
                  C: "a: b"
                  D: "x #y"
                  E: ""
            "#]],
        );
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        check(
            "parameters:\n  A: 'x'\n  B: \"x\"\n  C: 'x'\n",
            &[
                (p("A"), "it's"),
                (p("B"), "say \"hi\" \\o/"),
                (p("C"), "tab\there"),
            ],
            expect![[r#"
                parameters:
                  A: 'it''s'
                  B: "say \"hi\" \\o/"
                  C: "tab\there"
            "#]],
        );
    }

    #[test]
    fn flow_maps() {
        check(
            "parameters: { AppVersion: \"1\" }\ntags: {team: payments, cost-center: \"4711\"}  # tags\n",
            &[
                (p("AppVersion"), "2"),
                (t("team"), "platform"),
                (t("release"), "r7"),
            ],
            expect![[r#"
                parameters: { AppVersion: "2" }
                tags: {team: platform, cost-center: "4711", release: "r7"}  # tags
            "#]],
        );
    }

    #[test]
    fn missing_keys_are_inserted_in_the_map_style() {
        check(
            "parameters:\n    LogLevel: INFO  # level\n    # trailing comment\ntags: { team: payments }\nregion: us-east-1\n",
            &[(p("AppVersion"), "1.4.2"), (t("release"), "1.4.2")],
            expect![[r#"
                parameters:
                    LogLevel: INFO  # level
                    AppVersion: 1.4.2
                    # trailing comment
                tags: { team: payments, release: 1.4.2 }
                region: us-east-1
            "#]],
        );
        // A new value follows its siblings' quoting.
        check(
            "parameters:\n  LogLevel: 'INFO'\n",
            &[(p("AppVersion"), "1.4.2")],
            expect![[r#"
                parameters:
                  LogLevel: 'INFO'
                  AppVersion: '1.4.2'
            "#]],
        );
    }

    #[test]
    fn missing_maps_are_appended() {
        check(
            "# comment\nregion: us-east-1\nother:\n    deep: 1\n",
            &[(p("AppVersion"), "1.4.2"), (t("release"), "r1")],
            expect![[r#"
                # comment
                region: us-east-1
                other:
                    deep: 1
                parameters:
                    AppVersion: "1.4.2"
                tags:
                    release: "r1"
            "#]],
        );
        check(
            "# nothing yet\n",
            &[(p("AppVersion"), "1.4.2")],
            expect![[r#"
                # nothing yet
                parameters:
                  AppVersion: "1.4.2"
            "#]],
        );
        check(
            "",
            &[(p("AppVersion"), "1")],
            expect![[r#"
                parameters:
                  AppVersion: "1"
            "#]],
        );
        check(
            "{region: us-east-1}\n",
            &[(p("AppVersion"), "1")],
            expect![[r#"
                {region: us-east-1, parameters: { AppVersion: "1" }}
            "#]],
        );
    }

    #[test]
    fn empty_and_null_maps_and_values() {
        check(
            "parameters:  # none yet\nregion: us-east-1\n",
            &[(p("AppVersion"), "1.4.2")],
            expect![[r#"
                parameters:  # none yet
                  AppVersion: "1.4.2"
                region: us-east-1
            "#]],
        );
        check(
            "parameters: ~\ntags: {}\n",
            &[(p("AppVersion"), "1"), (t("release"), "r1")],
            expect![[r#"
                parameters: { AppVersion: "1" }
                tags: { release: "r1" }
            "#]],
        );
        check(
            "parameters:\n  AppVersion:\n  Other: x\n",
            &[(p("AppVersion"), "1.4.2")],
            expect![[r#"
                parameters:
                  AppVersion: 1.4.2
                  Other: x
            "#]],
        );
    }

    #[test]
    fn flow_maps_with_trailing_commas_and_comments() {
        check(
            "tags: {a: 1,}   # c\nparameters: {  }  # d\n",
            &[(t("b"), "2"), (p("X"), "y")],
            expect![[r#"
                tags: {a: 1, b: "2",}   # c
                parameters: { X: "y" }  # d
            "#]],
        );
    }

    #[test]
    fn multi_line_flow_maps() {
        check(
            "tags: {\n  team: payments,\n  app: pay\n}\n",
            &[(t("release"), "r1")],
            expect![[r#"
                tags: {
                  team: payments,
                  app: pay,
                  release: r1
                }
            "#]],
        );
        check(
            "tags: {\n  team: payments,\n}\n",
            &[(t("release"), "r1")],
            expect![[r#"
                tags: {
                  team: payments,
                  release: r1,
                }
            "#]],
        );
    }

    #[test]
    fn crlf_and_missing_final_newline_are_kept() {
        let text = "# c\r\nparameters:\r\n  AppVersion: \"1\" # x\r\n  B: y\r\n";
        let out = set_values(
            text,
            &[(p("AppVersion"), "2".into()), (p("New"), "n".into())],
        )
        .unwrap();
        assert_eq!(
            out,
            "# c\r\nparameters:\r\n  AppVersion: \"2\" # x\r\n  B: y\r\n  New: n\r\n"
        );
        let text = "parameters:\n  AppVersion: '1'";
        let out = set_values(text, &[(p("AppVersion"), "2".into())]).unwrap();
        assert_eq!(out, "parameters:\n  AppVersion: '2'");
        let out = set_values(text, &[(p("B"), "2".into())]).unwrap();
        assert_eq!(out, "parameters:\n  AppVersion: '1'\n  B: '2'");
        let out = set_values(text, &[(t("release"), "2".into())]).unwrap();
        assert_eq!(
            out,
            "parameters:\n  AppVersion: '1'\ntags:\n  release: \"2\""
        );
        let text = "region: x\r\n";
        let out = set_values(text, &[(t("release"), "2".into())]).unwrap();
        assert_eq!(out, "region: x\r\ntags:\r\n  release: \"2\"\r\n");
    }

    #[test]
    fn anchors_and_aliases_are_refused() {
        check(
            "base: &v \"1.4.1\"\nparameters:\n  AppVersion: *v\n",
            &[(p("AppVersion"), "2")],
            expect![[
                r#"error: cannot change `parameters.AppVersion`: its value is an alias (*v) of a value anchored elsewhere; replace the alias with a plain value first"#
            ]],
        );
        check(
            "parameters:\n  AppVersion: &v \"1.4.1\"\ntags:\n  release: *v\n",
            &[(p("AppVersion"), "2")],
            expect![[
                r#"error: cannot change `parameters.AppVersion`: its value carries the anchor `&v`, so every alias `*v` shares it and would change too; replace the aliases with plain values (or remove the anchor) first"#
            ]],
        );
        check(
            "defaults: &d\n  AppVersion: \"1\"\nparameters: *d\n",
            &[(p("AppVersion"), "2")],
            expect![[
                r#"error: cannot change `parameters.AppVersion`: `parameters` is an alias of a map defined elsewhere in the file, so this change would also change that map; write `parameters` out in full here"#
            ]],
        );
        check(
            "parameters: &p { AppVersion: \"1\" }\nother: *p\n",
            &[(p("New"), "2")],
            expect![[
                r#"error: cannot change `parameters.New`: `parameters` carries the anchor `&p`, so every alias `*p` shares it and would change too; replace the aliases with plain values (or remove the anchor) first"#
            ]],
        );
        // An alias elsewhere in the file does not matter.
        check(
            "x: &a 1\ny: *a\nparameters:\n  AppVersion: \"1\"\n",
            &[(p("AppVersion"), "2")],
            expect![[r#"
                x: &a 1
                y: *a
                parameters:
                  AppVersion: "2"
            "#]],
        );
    }

    #[test]
    fn unsupported_values_are_refused() {
        check(
            "parameters:\n  AppVersion: |\n    1.4.1\n",
            &[(p("AppVersion"), "2")],
            expect![[
                r#"error: cannot change `parameters.AppVersion` in place: its value is a block scalar (`|` or `>`); write it on one line, such as `AppVersion: "1.4.2"`"#
            ]],
        );
        check(
            "parameters:\n  AppVersion: !Ref X\n",
            &[(p("AppVersion"), "2")],
            expect![[
                r#"error: cannot change `parameters.AppVersion` in place: its value carries the tag `!Ref`; environment values must be plain strings"#
            ]],
        );
        check(
            "parameters:\n  Subnets: [a, b]\n",
            &[(p("Subnets"), "c")],
            expect![[
                r#"error: cannot change `parameters.Subnets` in place: its value is a list; promotion writes single values"#
            ]],
        );
        check(
            "parameters: 3\n",
            &[(p("AppVersion"), "2")],
            expect![[
                r#"error: `parameters` is the scalar `3`, not a mapping; fix the file by hand first"#
            ]],
        );
        check(
            "- a\n",
            &[(p("AppVersion"), "2")],
            expect![[
                r#"error: `(document)` is a list, not a mapping; fix the file by hand first"#
            ]],
        );
        check(
            "parameters: [\n",
            &[(p("AppVersion"), "2")],
            expect!["error: the file is not valid YAML: did not find expected node content at line 2 column 1, while parsing a flow node"],
        );
    }

    #[test]
    fn unchanged_values_leave_the_text_alone() {
        let text = "parameters:\n  A: 1.5\n  B: 'x'\n";
        let out = set_values(text, &[(p("A"), "1.5".into()), (p("B"), "x".into())]).unwrap();
        assert_eq!(out, text);
    }

    #[test]
    fn non_ascii_text_and_anchored_neighbours() {
        check(
            "# Café ☕\nparameters:\n  Name: \"crème brûlée\"  # dessert\n  AppVersion: \"1\"\n",
            &[(p("Name"), "tarte tatin"), (p("AppVersion"), "2")],
            expect![[r#"
                # Café ☕
                parameters:
                  Name: "tarte tatin"  # dessert
                  AppVersion: "2"
            "#]],
        );
    }

    #[test]
    fn only_promoted_lines_change() {
        let text = include_str!("../../examples/basic/environments/prod/environment.yaml");
        let out = set_values(
            text,
            &[
                (p("AppVersion"), "1.4.2".into()),
                (t("cost-center"), "4712".into()),
            ],
        )
        .unwrap();
        assert_eq!(changed_lines(text, &out), 2, "{out}");
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        #[derive(Debug, Clone)]
        struct Entry {
            name: String,
            value: String,
            style: Style,
            comment: bool,
        }

        fn value_for(style: Style) -> BoxedStrategy<String> {
            match style {
                // Plain values stay plain only when they read back as strings.
                Style::Plain => "[a-z][a-z0-9.-]{0,8}"
                    .prop_filter("plain string", |v| plain_ok(v, false) && plain_ok(v, true))
                    .boxed(),
                Style::Single => "[ -~é]{0,10}".prop_map(String::from).boxed(),
                _ => "[ -~é\t\\\\\"]{0,10}".prop_map(String::from).boxed(),
            }
        }

        fn entries() -> impl Strategy<Value = Vec<Entry>> {
            prop::collection::vec(
                (
                    "[A-Z][A-Za-z0-9]{0,6}",
                    prop_oneof![Just(Style::Plain), Just(Style::Single), Just(Style::Double)],
                    any::<bool>(),
                )
                    .prop_flat_map(|(name, style, comment)| {
                        value_for(style).prop_map(move |value| Entry {
                            name: name.clone(),
                            value,
                            style,
                            comment,
                        })
                    }),
                1..6,
            )
            .prop_map(|mut es| {
                let mut seen = std::collections::BTreeSet::new();
                es.retain(|e| seen.insert(e.name.clone()));
                es
            })
        }

        fn render(
            entries: &[Entry],
            flow: bool,
            indent: usize,
            eol: &str,
            last_nl: bool,
        ) -> String {
            let mut s = format!("# header{eol}region: us-east-1{eol}");
            if flow {
                let inner: Vec<String> = entries
                    .iter()
                    .map(|e| format!("{}: {}", e.name, format_scalar(&e.value, e.style, true)))
                    .collect();
                s.push_str(&format!(
                    "parameters: {{ {} }}  # flow{eol}",
                    inner.join(", ")
                ));
            } else {
                s.push_str(&format!("parameters:{eol}"));
                for e in entries {
                    if e.comment {
                        s.push_str(&format!("{}# about {}{eol}", " ".repeat(indent), e.name));
                    }
                    s.push_str(&format!(
                        "{}{}: {}{}{eol}",
                        " ".repeat(indent),
                        e.name,
                        format_scalar(&e.value, e.style, false),
                        if e.comment { "  # beside" } else { "" }
                    ));
                }
            }
            s.push_str(&format!("tags: {{ team: payments }}{eol}# footer"));
            if last_nl {
                s.push_str(eol);
            }
            s
        }

        proptest! {
            /// Promote, then roll back: the file comes back byte for byte.
            #[test]
            fn set_then_set_back_is_identity(
                es in entries(),
                flow in any::<bool>(),
                indent in 1usize..5,
                crlf in any::<bool>(),
                last_nl in any::<bool>(),
                pick in any::<prop::sample::Index>(),
                new_values in prop::collection::vec("[a-z][a-z0-9.-]{0,8}", 1..3),
            ) {
                let eol = if crlf { "\r\n" } else { "\n" };
                let text = render(&es, flow, indent, eol, last_nl);
                // Edit one to three existing keys, starting at a random one.
                let start = pick.index(es.len());
                let targets: Vec<&Entry> = es.iter().cycle().skip(start).take(new_values.len().min(es.len())).collect();
                let forward: Vec<(PromotedKey, String)> = targets
                    .iter()
                    .zip(&new_values)
                    .filter(|(e, v)| e.style != Style::Plain || plain_ok(v, flow))
                    .map(|(e, v)| (p(&e.name), v.clone()))
                    .collect();
                let back: Vec<(PromotedKey, String)> = forward
                    .iter()
                    .map(|(k, _)| {
                        let e = es.iter().find(|e| p(&e.name) == *k).unwrap();
                        (k.clone(), e.value.clone())
                    })
                    .collect();
                let promoted = set_values(&text, &forward).unwrap();
                let lines_changed = changed_lines(&text, &promoted);
                prop_assert!(lines_changed <= forward.len(), "{text}\n=>\n{promoted}");
                let rolled_back = set_values(&promoted, &back).unwrap();
                prop_assert_eq!(rolled_back, text);
            }

            /// Any value, existing key or new: the file reads back with that
            /// value and everything else as it was.
            #[test]
            fn any_value_reads_back(
                es in entries(),
                flow in any::<bool>(),
                crlf in any::<bool>(),
                last_nl in any::<bool>(),
                name in "[A-Z][a-z]{0,3}",
                value in any::<String>(),
            ) {
                let eol = if crlf { "\r\n" } else { "\n" };
                let text = render(&es, flow, 2, eol, last_nl);
                let out = set_values(&text, &[(p(&name), value.clone())]).unwrap();
                let v: Value = serde_yaml::from_str(&out).unwrap();
                prop_assert_eq!(v["parameters"][name.as_str()].as_str(), Some(value.as_str()));
                prop_assert_eq!(out.ends_with('\n'), last_nl);
                prop_assert_eq!(out.contains("\r\n"), crlf);
                if crlf {
                    prop_assert!(!out.replace("\r\n", "").contains('\n'));
                }
            }
        }
    }
}
