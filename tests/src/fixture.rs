//! What most suites share: the application template they deploy, running
//! the binary for JSON, reading its output, and reading stacks back from
//! moto. One copy here instead of one per suite.

use std::process::Output;

use serde_json::Value;

use crate::bin::gitops;
use crate::git::GitRepo;
use crate::moto::Moto;

/// The application template most suites deploy: one SSM parameter whose
/// value is the environment's `AppVersion`, so a stack's parameters show
/// what was deployed.
pub const SSM_TEMPLATE: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  EnvironmentName: {Type: String}
  AppVersion: {Type: String}
Resources:
  Version:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${EnvironmentName}/app/version"
      Type: String
      Value: !Ref AppVersion
"#;

/// Bytes as text, invalid UTF-8 replaced.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Both streams of a run, for an assertion's message.
pub fn streams(out: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// A run's standard output as JSON; panics showing both streams when it is
/// not JSON.
pub fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "not JSON: {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

/// Runs `gitops <cmd> --repo REPO --format json ARGS` against moto: the
/// output, and its standard output as JSON (`null` when it is not JSON).
pub fn run_json(cmd: &str, repo: &GitRepo, moto: &Moto, args: &[&str]) -> (Output, Value) {
    let out = gitops()
        .arg(cmd)
        .args(["--repo", repo.path().to_str().unwrap(), "--format", "json"])
        .args(args)
        .envs(moto.env())
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, v)
}

/// The entry for environment `name` in a report's `environments` list (a
/// deploy or plan outcome's `environment`, a status row's `name`); panics
/// when there is none.
pub fn entry<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["environments"]
        .as_array()
        .unwrap_or_else(|| panic!("no environments in {v}"))
        .iter()
        .find(|e| e["environment"] == name || e["name"] == name)
        .unwrap_or_else(|| panic!("no entry for {name} in {v}"))
}

/// DescribeStacks of `stack`, as moto's XML.
pub fn describe(moto: &Moto, stack: &str) -> String {
    moto.query(&[
        ("Action", "DescribeStacks"),
        ("StackName", stack),
        ("Version", "2010-05-15"),
    ])
}

/// Whether `stack` exists and is not deleted.
pub fn exists(moto: &Moto, stack: &str) -> bool {
    let xml = describe(moto, stack);
    xml.contains("<StackStatus>") && !xml.contains("DELETE_COMPLETE")
}

/// The value of parameter `key` in DescribeStacks XML.
pub fn param(xml: &str, key: &str) -> Option<String> {
    let at = xml.find(&format!("<ParameterKey>{key}</ParameterKey>"))?;
    let v = xml[at..]
        .split("<ParameterValue>")
        .nth(1)?
        .split("</ParameterValue>")
        .next()?;
    Some(v.to_string())
}

/// The value of tag `key` in DescribeStacks XML.
pub fn tag(xml: &str, key: &str) -> Option<String> {
    let at = xml.find(&format!("<Key>{key}</Key>"))?;
    let v = xml[at..]
        .split("<Value>")
        .nth(1)?
        .split("</Value>")
        .next()?;
    Some(v.to_string())
}

/// The value of parameter `key` of `stack`; `None` when there is no such
/// stack or parameter.
pub fn parameter(moto: &Moto, stack: &str, key: &str) -> Option<String> {
    let xml = describe(moto, stack);
    if !xml.contains("<StackStatus>") {
        return None;
    }
    param(&xml, key)
}

/// Updates `stack` behind the tool's back, as a person in the console
/// would: the same template, `AppVersion` set to `version`, and the stack's
/// tags passed through `retag` (`None` drops a tag). Panics unless moto
/// took the update and kept at least one tag.
pub fn update_out_of_band(
    moto: &Moto,
    stack: &str,
    version: &str,
    retag: impl Fn(&str, String) -> Option<String>,
) {
    let describe = describe(moto, stack);
    let mut params: Vec<(String, String)> = [
        ("Action", "UpdateStack"),
        ("StackName", stack),
        ("UsePreviousTemplate", "true"),
        ("Parameters.member.1.ParameterKey", "AppVersion"),
        ("Parameters.member.1.ParameterValue", version),
        ("Parameters.member.2.ParameterKey", "EnvironmentName"),
        ("Parameters.member.2.UsePreviousValue", "true"),
        ("Version", "2010-05-15"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut n = 0;
    for tag in describe.split("<member>").skip(1) {
        let field = |name: &str| {
            tag.split(&format!("<{name}>"))
                .nth(1)
                .and_then(|r| r.split(&format!("</{name}>")).next())
                .map(str::to_string)
        };
        let (Some(key), Some(value)) = (field("Key"), field("Value")) else {
            continue;
        };
        let Some(value) = retag(&key, value) else {
            continue;
        };
        n += 1;
        params.push((format!("Tags.member.{n}.Key"), key));
        params.push((format!("Tags.member.{n}.Value"), value));
    }
    assert!(n > 0, "no tags in {describe}");
    let refs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let xml = moto.query(&refs);
    assert!(xml.contains("<StackId>"), "{xml}");
}
