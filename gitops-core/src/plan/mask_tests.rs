//! `NoEcho` masking is structural: a secret written in any YAML form never
//! reaches any output of a plan (text, markdown, JSON) or of a deploy.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;
use crate::deploy::desired;
use crate::detect::EnvChange;
use crate::source::Memory;

const TEMPLATE: &str = "Parameters:\n  AppVersion: {Type: String}\n  DbPassword: {Type: String, NoEcho: true}\n  AdminPassword: {Type: String, NoEcho: true, Default: ZqdefaultZq}\nResources:\n  Topic: {Type: AWS::SNS::Topic}\n";

fn secrets() -> BTreeSet<String> {
    ["DbPassword".to_string(), "AdminPassword".to_string()].into()
}

/// The ways a value can be written in YAML.
#[derive(Debug, Clone, Copy)]
enum Form {
    Plain,
    Single,
    Double,
    Literal,
    Folded,
    Flow,
    Alias,
    ExplicitKey,
    Tagged,
}

const FORMS: [Form; 9] = [
    Form::Plain,
    Form::Single,
    Form::Double,
    Form::Literal,
    Form::Folded,
    Form::Flow,
    Form::Alias,
    Form::ExplicitKey,
    Form::Tagged,
];

/// An environment file whose `DbPassword` is made of `tokens`, written in `form`.
fn env_file(form: Form, tokens: &[String], version: &str) -> String {
    let spaced = tokens.join(" ");
    match form {
        Form::Plain => format!("parameters:\n  AppVersion: '{version}'\n  DbPassword: {spaced}\n"),
        Form::Single => format!(
            "parameters:\n  AppVersion: '{version}'\n  DbPassword: '{}'\n",
            tokens.join("''")
        ),
        Form::Double => format!(
            "parameters:\n  AppVersion: '{version}'\n  DbPassword: \"{}\"\n",
            tokens.join("\\n\\\"")
        ),
        Form::Literal => format!(
            "parameters:\n  DbPassword: |\n    {}\n  AppVersion: '{version}'\n",
            tokens.join("\n    ")
        ),
        Form::Folded => format!(
            "parameters:\n  DbPassword: >-\n    {}\n\n  AppVersion: '{version}'\n",
            tokens.join("\n    ")
        ),
        Form::Flow => format!(
            "parameters: {{AppVersion: '{version}', DbPassword: \"{spaced}\"}}\n"
        ),
        Form::Alias => format!(
            "parameters:\n  AdminPassword: &pw \"{spaced}\"\n  AppVersion: '{version}'\n  DbPassword: *pw\n"
        ),
        Form::ExplicitKey => format!(
            "parameters:\n  AppVersion: '{version}'\n  ? DbPassword\n  : {spaced}\n"
        ),
        Form::Tagged => format!(
            "parameters:\n  AppVersion: '{version}'\n  DbPassword: !!str {spaced} # the password\n"
        ),
    }
}

fn repo(env: &str) -> (Repository, Memory) {
    let source = Memory::new("x")
        .with_file(
            "gitops.yaml",
            "version: 1\nid: acme/pay\nstack: {template: common/app.yaml}\n",
        )
        .with_file("common/app.yaml", TEMPLATE)
        .with_file("environments/dev/environment.yaml", env);
    let repo = Repository::load(&source).unwrap();
    (repo, source)
}

/// Every output a plan of `base` → `head` makes, and the deploy's plan JSON.
fn outputs(base: &str, head: &str) -> String {
    let (b, bs) = repo(base);
    let (h, hs) = repo(head);
    let benv = b.environment("dev").unwrap().clone();
    let henv = h.environment("dev").unwrap().clone();
    let d = desired(
        &h,
        &hs,
        &EnvChange::new(henv.clone(), Change::Updated),
        "c0ffee",
    )
    .unwrap();
    let bd = desired(
        &b,
        &bs,
        &EnvChange::new(benv.clone(), Change::Updated),
        "ba5e",
    )
    .unwrap();
    let plan = guess_plan(
        "acme/pay",
        &d,
        Some(&benv),
        Some(&bd),
        PlanOptions::default(),
    );
    let deploy_json = serde_json::to_string(&plan.redacted()).unwrap();
    let preview = EnvPreview::new(plan, Some(&benv), Some(&henv), &secrets())
        .with_diffs(env_diffs(
            Some((&b, &bs as &dyn Source)),
            Some((&h, &hs as &dyn Source)),
            "dev",
            &secrets(),
        ))
        .guessed();
    let plan = Plan::new(
        Some("ba5e".into()),
        Some("c0ffee".into()),
        false,
        vec![preview],
    );
    let markdown = render_markdown(&plan);
    format!(
        "{}\n{markdown}\n{}\n{}\n{deploy_json}",
        render_text(&plan, false),
        truncate_markdown(&markdown, 2_000),
        serde_json::to_string(&plan).unwrap(),
    )
}

fn tokens() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z]{6,10}".prop_map(|s| format!("Zq{s}")), 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn a_no_echo_value_never_appears_in_any_output(
        base_form in 0..FORMS.len(),
        head_form in 0..FORMS.len(),
        old in tokens(),
        new in tokens(),
    ) {
        let base = env_file(FORMS[base_form], &old, "1.0");
        let head = env_file(FORMS[head_form], &new, "1.1");
        let out = outputs(&base, &head);
        prop_assert!(out.contains("1.1"), "the outputs show the plan: {}", out);
        for t in old.iter().chain(&new) {
            prop_assert!(!out.contains(t.as_str()), "`{}` leaked from\n{}\n{}\n---\n{}", t, base, head, out);
        }
        prop_assert!(!out.contains("ZqdefaultZq"));
    }
}

#[test]
fn masking_keeps_lines_and_masks_every_form() {
    let s = secrets();
    let src = "parameters:\n  DbPassword: |\n    one\n    two\n  AppVersion: '1'\n  ? AdminPassword\n  : three # c\n";
    let masked = mask_environment_secrets(src, &s);
    assert_eq!(masked.lines().count(), src.lines().count(), "{masked}");
    for t in ["one", "two", "three"] {
        assert!(!masked.contains(t), "{masked}");
    }
    assert!(masked.contains("AppVersion: '1'"), "{masked}");
    let t = mask_template_secrets(TEMPLATE, &s);
    assert!(
        !t.contains("ZqdefaultZq") && t.contains("NoEcho: true"),
        "{t}"
    );
}
