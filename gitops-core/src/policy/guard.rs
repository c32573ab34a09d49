//! cfn-guard rules (`policies.guard`), evaluated with the `cfn-guard` crate
//! as a library.
//!
//! cfn-guard reports each failing clause with the path of the value it
//! looked at (`/Resources/BadBucket/Properties`); its own line numbers are
//! unreliable, so the path is placed on the template with the span tree.
//! One problem is reported per rule and resource.
//!
//! ```
//! use gitops_core::policy::guard::check_guard;
//! use gitops_core::Template;
//!
//! let t = Template::parse("app.yaml", "Resources:\n  B:\n    Type: AWS::S3::Bucket\n").unwrap();
//! let rules = [(
//!     "policies/s3.guard".to_string(),
//!     "rule encrypted { Resources.*[ Type == 'AWS::S3::Bucket' ].Properties.BucketEncryption exists }".to_string(),
//! )];
//! let problems = check_guard(&t, &rules);
//! assert_eq!(problems.len(), 1);
//! assert_eq!(problems[0].rule.as_deref(), Some("encrypted"));
//! assert_eq!(problems[0].line, Some(2));
//! ```

use std::collections::BTreeMap;
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use cfn_guard::commands::validate::{OutputFormatType, ShowSummaryType};
use cfn_guard::commands::Executable;
use cfn_guard::utils::reader::{ReadBuffer, Reader};
use cfn_guard::utils::writer::{WriteBuffer, Writer};
use cfn_guard::CommandBuilder;
use serde_json::Value as J;

use crate::problem::{Problem, ProblemSource};
use crate::template::Template;
use crate::yaml::{Node, NodeKind, Seg};

/// cfn-guard's status when rules parse but some fail.
const STATUS_FAIL: i32 = 19;
/// cfn-guard's status when rules cannot be used.
const STATUS_ERROR: i32 = 5;

/// Evaluates `template` against every rule file (`(path, text)` pairs) and
/// returns one error per failing rule and resource, at the template's file
/// and the line of the value the rule looked at.
///
/// A rule file that does not parse is an error at that rule file (once per
/// call: deduplicate when checking several templates). Nothing here panics:
/// a panic inside cfn-guard becomes a problem too.
pub fn check_guard(template: &Template, rules: &[(String, String)]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (path, text) in rules {
        match parse_rules(path, text) {
            Err(p) => problems.push(p),
            Ok(false) => {} // no rules in the file
            Ok(true) => problems.extend(evaluate(template, path, text)),
        }
    }
    problems
}

/// Whether the rule file parses; `Ok(false)` when it holds no rules.
fn parse_rules(path: &str, text: &str) -> Result<bool, Problem> {
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        cfn_guard::commands::validate::parse_rules(text, path)
            .map(|r| r.is_some())
            .map_err(|e| e.to_string())
    }));
    let err = |msg: String, pos: Option<(usize, usize)>| {
        Problem::error(path, msg)
            .at(pos)
            .with_source(ProblemSource::Guard)
    };
    match parsed {
        Ok(Ok(has_rules)) => Ok(has_rules),
        Ok(Err(e)) => {
            let pos = error_position(&e);
            Err(err(
                format!(
                    "cfn-guard cannot parse this rule file: {}",
                    clean_parse_error(&e)
                ),
                pos,
            ))
        }
        Err(_) => Err(err(
            "cfn-guard failed (it panicked) while parsing this rule file".into(),
            None,
        )),
    }
}

/// `line L at column C` in a cfn-guard parse error.
fn error_position(e: &str) -> Option<(usize, usize)> {
    let re = regex::Regex::new(r"at line (\d+) at column (\d+)").ok()?;
    let c = re.captures(e)?;
    Some((c[1].parse().ok()?, c[2].parse().ok()?))
}

fn clean_parse_error(e: &str) -> String {
    let e = collapse(e);
    let e = e.strip_prefix("Parser Error when parsing ").unwrap_or(&e);
    e.strip_prefix("Parsing Error ").unwrap_or(e).to_string()
}

/// Runs one rule file on the template, through cfn-guard's structured
/// JSON report.
fn evaluate(template: &Template, rule_path: &str, rules: &str) -> Vec<Problem> {
    evaluate_with(template, rule_path, rules, run_guard)
}

/// [`evaluate`] with the evaluator given (tests make it panic).
fn evaluate_with(
    template: &Template,
    rule_path: &str,
    rules: &str,
    run_guard: impl FnOnce(&str, &str) -> Result<Option<J>, String>,
) -> Vec<Problem> {
    let fail =
        |msg: String| vec![Problem::error(&template.path, msg).with_source(ProblemSource::Guard)];
    let run = catch_unwind(AssertUnwindSafe(|| run_guard(&template.text, rules)));
    let report = match run {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            return fail(format!(
                "cfn-guard cannot evaluate the rules of {rule_path} on this template: {}",
                collapse(&e)
            ))
        }
        Err(_) => {
            return fail(format!(
            "cfn-guard failed (it panicked) evaluating the rules of {rule_path} on this template"
        ))
        }
    };
    let Some(report) = report else {
        return Vec::new();
    };
    let mut failures = Vec::new();
    for file in report.as_array().into_iter().flatten() {
        for entry in file["not_compliant"].as_array().into_iter().flatten() {
            collect_rules(entry, &mut failures);
        }
    }
    to_problems(template, rule_path, failures)
}

/// cfn-guard's JSON report, or `None` when every rule passed or was skipped.
fn run_guard(data: &str, rules: &str) -> Result<Option<J>, String> {
    let payload = serde_json::json!({ "rules": [rules], "data": [data] }).to_string();
    let mut reader = Reader::new(ReadBuffer::Cursor(Cursor::new(payload.into_bytes())));
    let mut writer =
        Writer::new_with_err(WriteBuffer::Vec(Vec::new()), WriteBuffer::Vec(Vec::new()))
            .map_err(|e| e.to_string())?;
    let cmd = cfn_guard::ValidateBuilder::default()
        .payload(true)
        .structured(true)
        .output_format(OutputFormatType::JSON)
        .show_summary(vec![ShowSummaryType::None])
        .try_build()
        .map_err(|e| e.to_string())?;
    let status = cmd
        .execute(&mut writer, &mut reader)
        .map_err(|e| e.to_string())?;
    if status == STATUS_ERROR {
        let err = writer.err_to_stripped().map_err(|e| e.to_string())?;
        return Err(err.trim().trim_end_matches("---").trim().to_string());
    }
    let out = writer.into_string().map_err(|e| e.to_string())?;
    if status != STATUS_FAIL {
        return Ok(None);
    }
    serde_json::from_str(&out)
        .map(Some)
        .map_err(|e| format!("unexpected cfn-guard output ({e})"))
}

/// One failing clause.
#[derive(Debug)]
struct Failure {
    rule: String,
    /// The path of the value checked, such as `/Resources/B/Properties`.
    path: String,
    message: String,
}

/// Collects the failing clauses of a `{"Rule": {...}}` entry and of the
/// rules nested in it.
fn collect_rules(entry: &J, out: &mut Vec<Failure>) {
    let Some(rule) = entry.get("Rule") else {
        return;
    };
    let name = rule["name"].as_str().unwrap_or("unnamed").to_string();
    let rule_message = rule["messages"]["custom_message"]
        .as_str()
        .filter(|m| !m.is_empty() && *m != "None")
        .map(collapse);
    let mut clauses = Vec::new();
    collect_clauses(&rule["checks"], &name, &mut clauses, out);
    if clauses.is_empty() {
        // A rule that failed without a clause to show (all of its clauses
        // are in nested rules, or it failed as a whole).
        if !out.iter().any(|f| f.rule == name) {
            clauses.push(Failure {
                rule: name.clone(),
                path: String::new(),
                message: rule_message.clone().unwrap_or_default(),
            });
        }
    }
    for mut c in clauses {
        if c.message.is_empty() {
            if let Some(m) = &rule_message {
                c.message = m.clone();
            }
        }
        out.push(c);
    }
}

/// Walks the `checks` of a rule: clauses and blocks are failures, nested
/// rules are collected under their own name, anything else is walked into.
fn collect_clauses(v: &J, rule: &str, clauses: &mut Vec<Failure>, nested: &mut Vec<Failure>) {
    match v {
        J::Array(items) => {
            for i in items {
                collect_clauses(i, rule, clauses, nested);
            }
        }
        J::Object(m) => {
            if m.contains_key("Rule") {
                collect_rules(v, nested);
                return;
            }
            let leaf = m
                .get("Clause")
                .and_then(|c| c.as_object().and_then(|o| o.values().next()))
                .or_else(|| m.get("Block"));
            match leaf {
                Some(leaf) => clauses.push(failure(rule, leaf)),
                None => {
                    for value in m.values() {
                        collect_clauses(value, rule, clauses, nested);
                    }
                }
            }
        }
        _ => {}
    }
}

fn failure(rule: &str, leaf: &J) -> Failure {
    let path = first_path(leaf).unwrap_or_default();
    let custom = leaf["messages"]["custom_message"]
        .as_str()
        .map(collapse)
        .unwrap_or_default();
    let message = if !custom.is_empty() {
        custom
    } else if let Some(q) = find_key(leaf, "remaining_query").and_then(J::as_str) {
        format!("`{q}` is missing")
    } else if let Some(m) = leaf["messages"]["error_message"]
        .as_str()
        .map(clean_error_message)
        .filter(|m| !m.is_empty())
    {
        m
    } else {
        match leaf["context"].as_str().map(collapse) {
            Some(c) if !c.is_empty() && !c.starts_with("Guard") => format!("`{c}` does not hold"),
            _ => "a check does not hold".into(),
        }
    };
    Failure {
        rule: rule.to_string(),
        path,
        message,
    }
}

/// The first non-empty `path` below `v` (`from` comes before `to`).
fn first_path(v: &J) -> Option<String> {
    match v {
        J::Object(m) => {
            if let Some(p) = m.get("path").and_then(J::as_str).filter(|p| !p.is_empty()) {
                return Some(p.to_string());
            }
            for key in ["check", "from", "unresolved", "traversed_to", "value"] {
                if let Some(p) = m.get(key).and_then(first_path) {
                    return Some(p);
                }
            }
            m.iter()
                .filter(|(k, _)| k.as_str() != "to" && k.as_str() != "messages")
                .find_map(|(_, v)| first_path(v))
        }
        J::Array(items) => items.iter().find_map(first_path),
        _ => None,
    }
}

fn find_key<'v>(v: &'v J, key: &str) -> Option<&'v J> {
    match v {
        J::Object(m) => m
            .get(key)
            .or_else(|| m.values().find_map(|v| find_key(v, key))),
        J::Array(items) => items.iter().find_map(|v| find_key(v, key)),
        _ => None,
    }
}

/// cfn-guard's own message without its unreliable `[L:n,C:m]` positions,
/// shortened: "property value [Path=/Resources/Q/Properties/DelaySeconds
/// Value=5] not equal to value [Path= Value=0]".
fn clean_error_message(m: &str) -> String {
    const MAX: usize = 300;
    let re = regex::Regex::new(r"\[L:\d+,C:\d+\]").ok();
    let m = match &re {
        Some(re) => re.replace_all(m, "").into_owned(),
        None => m.to_string(),
    };
    let m = collapse(&m);
    let m = m
        .strip_prefix("Check was not compliant as ")
        .unwrap_or(&m)
        .trim_end_matches('.')
        .to_string();
    if m.chars().count() > MAX {
        let cut: String = m.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        m
    }
}

/// Whitespace runs (custom messages span lines) collapsed to one space.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One problem per rule and resource (or per rule and path outside
/// `Resources`), at the line of the first failing value.
fn to_problems(template: &Template, rule_path: &str, failures: Vec<Failure>) -> Vec<Problem> {
    // (rule, logical id or path) -> (path of the first failure, messages)
    let mut groups: BTreeMap<(String, Option<String>), (String, Vec<String>)> = BTreeMap::new();
    for f in failures {
        let id = resource_of(&f.path);
        let group_key = (f.rule.clone(), id.clone().or_else(|| Some(f.path.clone())));
        let entry = groups
            .entry(group_key)
            .or_insert_with(|| (f.path.clone(), Vec::new()));
        if !f.message.is_empty() && !entry.1.contains(&f.message) {
            entry.1.push(f.message);
        }
    }
    let types = resource_types(template);
    groups
        .into_iter()
        .map(|((rule, _), (path, messages))| {
            let id = resource_of(&path);
            let subject = match &id {
                Some(id) => match types.get(id) {
                    Some(t) => format!("resource `{id}` ({t})"),
                    None => format!("resource `{id}`"),
                },
                None if path.is_empty() => "the template".to_string(),
                None => format!("`{path}`"),
            };
            let detail = if messages.is_empty() {
                String::new()
            } else {
                format!(": {}", messages.join("; "))
            };
            let pos = template.doc.as_ref().and_then(|d| line_of_path(d, &path));
            Problem::error(
                &template.path,
                format!("guard rule `{rule}` ({rule_path}) fails for {subject}{detail}"),
            )
            .at(pos)
            .with_source(ProblemSource::Guard)
            .with_rule(rule)
        })
        .collect()
}

/// `BadBucket` for `/Resources/BadBucket/...`.
fn resource_of(path: &str) -> Option<String> {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next()) {
        (Some("Resources"), Some(id)) if !id.is_empty() => Some(id.to_string()),
        _ => None,
    }
}

fn resource_types(template: &Template) -> BTreeMap<String, String> {
    template
        .normalized()
        .get("Resources")
        .and_then(J::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(id, r)| Some((id.clone(), r.get("Type")?.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The line and column of a cfn-guard path (`/Resources/B/Properties/Tags/0`),
/// or of its deepest ancestor in the template.
pub(crate) fn line_of_path(doc: &Node, path: &str) -> Option<(usize, usize)> {
    let parts: Vec<&str> = path
        .trim_start_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let mut segs: Vec<Seg<'_>> = Vec::new();
    let mut node = Some(doc);
    for part in &parts {
        let seg = match (node.map(|n| &n.kind), part.parse::<usize>()) {
            (Some(NodeKind::Seq { .. }), Ok(i)) => Seg::Index(i),
            _ => Seg::Key(part),
        };
        node = node.and_then(|n| n.get(std::slice::from_ref(&seg)));
        segs.push(seg);
        if node.is_none() {
            break;
        }
    }
    doc.line_col(&segs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn example_rules() -> Vec<(String, String)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/basic/policies");
        ["s3.guard", "tags.guard"]
            .iter()
            .map(|f| {
                (
                    format!("policies/{f}"),
                    std::fs::read_to_string(format!("{dir}/{f}")).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn examples_pass_their_own_rules() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/basic/common");
        for f in ["environment.yaml", "pipeline.yaml"] {
            let text = std::fs::read_to_string(format!("{dir}/{f}")).unwrap();
            let t = Template::parse(&format!("common/{f}"), &text).unwrap();
            assert_eq!(check_guard(&t, &example_rules()), vec![], "{f}");
        }
    }

    const FAILING: &str = r#"Parameters:
  EnvironmentName: { Type: String }
Resources:
  GoodBucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption:
        ServerSideEncryptionConfiguration:
          - ServerSideEncryptionByDefault: { SSEAlgorithm: AES256 }
      PublicAccessBlockConfiguration:
        BlockPublicAcls: true
        BlockPublicPolicy: true
        IgnorePublicAcls: true
        RestrictPublicBuckets: true
      Tags: [{ Key: environment, Value: !Ref EnvironmentName }]
  BadBucket:
    Type: AWS::S3::Bucket
    Properties:
      Tags: [{ Key: environment, Value: x }]
  HalfBucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption:
        ServerSideEncryptionConfiguration:
          - ServerSideEncryptionByDefault: { SSEAlgorithm: AES256 }
      PublicAccessBlockConfiguration:
        BlockPublicAcls: false
        BlockPublicPolicy: true
        IgnorePublicAcls: true
        RestrictPublicBuckets: true
      Tags: [{ Key: team, Value: x }]
"#;

    #[test]
    fn failing_templates_report_file_line_rule_and_resource() {
        let t = Template::parse("common/app.yaml", FAILING).unwrap();
        let problems = check_guard(&t, &example_rules());
        let got: Vec<(String, Option<usize>, Option<String>)> = problems
            .iter()
            .map(|p| (p.file.clone(), p.line, p.rule.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "common/app.yaml".into(),
                    Some(18),
                    Some("s3_bucket_encrypted".into())
                ),
                (
                    "common/app.yaml".into(),
                    Some(18),
                    Some("s3_bucket_not_public".into())
                ),
                (
                    "common/app.yaml".into(),
                    Some(27),
                    Some("s3_bucket_not_public".into())
                ),
                (
                    "common/app.yaml".into(),
                    Some(31),
                    Some("environment_tag_present".into())
                ),
            ]
        );
        assert!(problems
            .iter()
            .all(|p| p.is_error() && p.source == ProblemSource::Guard));
        assert_eq!(
            problems[0].to_string(),
            "common/app.yaml:18:5: error: guard rule `s3_bucket_encrypted` (policies/s3.guard) fails for resource `BadBucket` (AWS::S3::Bucket): Violation: S3 buckets must set BucketEncryption. Fix: add Properties.BucketEncryption.ServerSideEncryptionConfiguration.; Violation: S3 bucket encryption must use a default SSE algorithm (AES256, aws:kms or aws:kms:dsse)."
        );
        assert!(
            problems[2].message.contains("resource `HalfBucket`"),
            "{}",
            problems[2].message
        );
        assert!(
            problems[3].message.contains("resource `HalfBucket`"),
            "{}",
            problems[3].message
        );
    }

    #[test]
    fn json_templates_and_messages_without_custom_text() {
        let t = Template::parse(
            "t.json",
            "{\n  \"Resources\": {\n    \"Q\": {\n      \"Type\": \"AWS::SQS::Queue\",\n      \"Properties\": {\"DelaySeconds\": 5}\n    }\n  }\n}\n",
        )
        .unwrap();
        let rules = vec![(
            "r.guard".to_string(),
            "rule queue_delay { Resources.*[ Type == 'AWS::SQS::Queue' ].Properties.DelaySeconds == 0 }\nrule queue_kms { Resources.*[ Type == 'AWS::SQS::Queue' ].Properties.KmsMasterKeyId exists }".to_string(),
        )];
        let problems = check_guard(&t, &rules);
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "t.json:5:22: error: guard rule `queue_delay` (r.guard) fails for resource `Q` (AWS::SQS::Queue): property value [Path=/Resources/Q/Properties/DelaySeconds Value=5] not equal to value [Path= Value=0]",
                "t.json:5:7: error: guard rule `queue_kms` (r.guard) fails for resource `Q` (AWS::SQS::Queue): `KmsMasterKeyId` is missing",
            ]
        );
    }

    #[test]
    fn bad_rule_files_are_problems_at_the_rule_file() {
        let t = Template::parse("t.yaml", "Resources:\n  B: { Type: AWS::S3::Bucket }\n").unwrap();
        let rules = vec![
            (
                "policies/broken.guard".to_string(),
                "rule x {\n  Resources.*.Type == \n}\n".to_string(),
            ),
            (
                "policies/empty.guard".to_string(),
                "# nothing\n".to_string(),
            ),
            (
                "policies/garbage.guard".to_string(),
                "\u{0}\u{1}{{{[[[".to_string(),
            ),
        ];
        let problems = check_guard(&t, &rules);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].file, "policies/broken.guard");
        assert_eq!(problems[0].line, Some(2));
        assert!(problems[0]
            .message
            .starts_with("cfn-guard cannot parse this rule file"));
        assert_eq!(problems[1].file, "policies/garbage.guard");
        assert!(problems.iter().all(|p| p.source == ProblemSource::Guard));
    }

    #[test]
    fn odd_input_never_panics() {
        let t = Template::parse(
            "t.yaml",
            "Resources:\n  B: { Type: AWS::S3::Bucket, Properties: !Ref X }\n",
        )
        .unwrap();
        let mut shown = String::new();
        for rules in [
            "rule r { Resources.*.Properties.A.B.C[*].D == /x/ }",
            "let x = Resources.*\nrule r when %x !empty { %x.Properties exists }",
            "rule r { this.that[*] !empty }",
            "rule a { } rule b when a { Resources exists }",
        ] {
            for p in check_guard(&t, &[("r.guard".into(), rules.into())]) {
                shown.push_str(&format!("{p}\n"));
            }
            shown.push_str("--\n");
        }
        // Each odd input has a defined outcome: a problem or none, never a panic.
        expect_test::expect![[r#"
            t.yaml:2:31: error: guard rule `r` (r.guard) fails for resource `B` (AWS::S3::Bucket): `A.B.C[*].D` is missing
            --
            --
            t.yaml:1:1: error: guard rule `r` (r.guard) fails for the template: `that[*]` is missing
            --
            r.guard:1:9: error: cfn-guard cannot parse this rule file: `Parsing Error Error parsing file r.guard at line 1 at column 9, when handling , fragment } rule b when a { Resources exists }`
            --
        "#]].assert_eq(&shown);
    }

    #[test]
    fn a_panic_inside_cfn_guard_is_a_problem() {
        let t = Template::parse("t.yaml", "Resources:\n  B: { Type: AWS::S3::Bucket }\n").unwrap();
        let problems = evaluate_with(&t, "r.guard", "rule r { }", |_, _| panic!("cfn-guard bug"));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].file, "t.yaml");
        assert_eq!(
            problems[0].message,
            "cfn-guard failed (it panicked) evaluating the rules of r.guard on this template"
        );
    }

    #[test]
    fn paths_map_to_lines() {
        let doc = Node::parse("Resources:\n  B:\n    Properties:\n      Tags:\n        - Key: a\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            line_of_path(&doc, "/Resources/B/Properties/Tags/0/Key"),
            Some((5, 11))
        );
        assert_eq!(
            line_of_path(&doc, "/Resources/B/Properties/Nope/x"),
            Some((3, 5))
        );
        assert_eq!(line_of_path(&doc, ""), Some((1, 1)));
        assert_eq!(resource_of("/Resources/B/Properties"), Some("B".into()));
        assert_eq!(resource_of("/Parameters/P"), None);
    }
}
