#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use expect_test::expect;

use super::*;
use crate::drift::{
    Difference, DriftedResource, EnvStatus, PipelineRun, Reason, Remediation, Sync,
};

const INJECTED: &str = "<script>alert(\"x\")</script>";
const INJECTED_TAG: &str = "<img src=x onerror='alert(1)'>";

fn env(name: &str, version: &str, sync: Sync, health: Health) -> EnvDrift {
    let v: BTreeMap<String, Option<String>> = [(
        "parameters.AppVersion".to_string(),
        Some(version.to_string()),
    )]
    .into();
    EnvDrift {
        status: EnvStatus {
            name: name.into(),
            stack: format!("{name}-app"),
            region: "eu-west-1".into(),
            git_version: v.clone(),
            deployed_version: v,
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            stack_status: Some("UPDATE_COMPLETE".into()),
            pipeline: None,
            sync,
            health,
            error: None,
            pending: None,
        },
        reasons: Vec::new(),
        resource_drifts: Vec::new(),
        resource_drift_checked: true,
        remediated_commit: None,
        remediation: None,
        failed: false,
    }
}

/// dev → qa → prod, with qa drifted (a `<script>` parameter value and an
/// `<img>` tag value), prod behind, and `sandbox` outside the order.
fn board() -> Board {
    let dev = env("dev", "1.5.0", Sync::Synced, Health::Healthy);
    let mut qa = env("qa", "1.5.0", Sync::OutOfSync, Health::Healthy);
    qa.status
        .deployed_version
        .insert("parameters.AppVersion".into(), Some(INJECTED.into()));
    qa.reasons = vec![
        Reason::parameter("qa-app", "AppVersion", Some("1.5.0"), Some(INJECTED)),
        Reason::tag("qa-app", "owner", Some("pay"), Some(INJECTED_TAG)),
    ];
    qa.resource_drifts = vec![DriftedResource {
        stack: "qa-app".into(),
        logical_id: "Bucket".into(),
        resource_type: "AWS::S3::Bucket".into(),
        status: "MODIFIED".into(),
        differences: vec![Difference {
            path: "/Tags/0/Value".into(),
            expected: "a".into(),
            actual: INJECTED_TAG.into(),
            kind: "NOT_EQUAL".into(),
        }],
    }];
    let mut prod = env("prod", "1.4.0", Sync::Synced, Health::Healthy);
    prod.status.pipeline = Some(PipelineRun {
        name: "prod-pipeline".into(),
        status: "Succeeded".into(),
        time: Some("2026-01-01T00:00:00Z".into()),
        source_revision: Some("0123456789abcdef0123456789abcdef01234567".into()),
        execution_id: "exec-1".into(),
    });
    let mut sandbox = env("sandbox", "2.0.0", Sync::Unknown, Health::Unknown);
    sandbox.status.error = Some(format!("AccessDenied {INJECTED}"));
    sandbox.remediation = Some(Remediation::skipped("it is Unknown"));
    Board::new(
        "acme",
        "0123456789abcdef0123456789abcdef01234567",
        vec![prod, sandbox, qa, dev],
    )
    .with_kind(BoardKind::Drift)
    .with_order(vec!["dev".into(), "qa".into(), "prod".into()])
    .with_repository_url(Some("https://github.com/acme/app".into()))
    .with_generated_at("2026-01-01 00:00 UTC")
    .with_orphans(vec!["old-app".into()], None)
}

#[test]
fn rows_follow_the_promotion_order_and_say_who_is_behind() {
    let b = board();
    let rows = b.rows();
    let path: Vec<(&str, Option<&str>)> = rows
        .path
        .iter()
        .map(|r| (r.env.status.name.as_str(), r.behind))
        .collect();
    assert_eq!(
        path,
        [("dev", None), ("qa", None), ("prod", Some("qa"))],
        "prod's 1.4.0 differs from qa's 1.5.0 in git"
    );
    let outside: Vec<&str> = rows
        .outside
        .iter()
        .map(|r| r.env.status.name.as_str())
        .collect();
    assert_eq!(outside, ["sandbox"]);
}

#[test]
fn an_order_naming_missing_environments_skips_them() {
    let b = Board::new(
        "acme",
        "c",
        vec![
            env("a", "1", Sync::Synced, Health::Healthy),
            env("c", "2", Sync::Synced, Health::Healthy),
        ],
    )
    .with_order(vec!["a".into(), "b".into(), "c".into(), "a".into()]);
    let rows = b.rows();
    let path: Vec<(&str, Option<&str>)> = rows
        .path
        .iter()
        .map(|r| (r.env.status.name.as_str(), r.behind))
        .collect();
    assert_eq!(path, [("a", None), ("c", Some("a"))]);
}

/// Every `href` of the page, and whether it has any `src`, `url(` or `@import`.
fn links(page: &str) -> Vec<String> {
    page.split("href=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

#[test]
fn the_page_escapes_every_value_from_git_and_aws() {
    let page = board().render_html();
    for needle in ["<script", "<img", "onerror='"] {
        assert!(!page.contains(needle), "unescaped {needle} in the page");
    }
    assert!(page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
    assert!(page.contains("&lt;img src=x onerror=&#39;alert(1)&#39;&gt;"));
    assert!(page.contains("AccessDenied &lt;script&gt;"));
}

#[test]
fn the_page_requests_nothing_and_links_only_to_the_repository_and_the_console() {
    let page = board().render_html();
    assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none'"));
    for banned in [" src=\"", "url(", "@import", "<link", "<script", "<iframe"] {
        assert!(!page.contains(banned), "{banned} in the page");
    }
    let links = links(&page);
    assert!(links.len() >= 8, "{links:?}");
    for l in &links {
        assert!(
            l.starts_with("https://github.com/acme/app")
                || l.starts_with("https://eu-west-1.console.aws.amazon.com/"),
            "{l}"
        );
    }
    assert!(links.contains(
        &"https://github.com/acme/app/commit/0123456789abcdef0123456789abcdef01234567".to_string()
    ));
    assert!(links
        .iter()
        .any(|l| l.contains("/stacks/stackinfo?stackId=qa-app")));
    assert!(links
        .iter()
        .any(|l| l.contains("/codepipeline/pipelines/prod-pipeline/executions/exec-1/")));
}

#[test]
fn an_unsafe_repository_url_or_region_gives_no_link() {
    let mut b = board().with_repository_url(Some("javascript:alert(1)".into()));
    b.environments[0].status.region = "eu-west-1.evil.example/x?".into();
    let page = b.render_html();
    assert!(!page.contains("javascript:"));
    assert!(
        !links(&page).iter().any(|l| l.contains("evil")),
        "no link to it"
    );
    assert!(page.contains("eu-west-1.evil.example/x?"), "shown as text");
    assert!(!links(&page).iter().any(|l| l.contains("github.com")));
    let b = board().with_repository_url(Some("https://github.com/a\" onclick=\"x".into()));
    assert!(!b.render_html().contains("onclick"));
}

#[test]
fn the_page_shows_every_section() {
    let page = board().render_html();
    for text in [
        "Promotion path",
        "<b>dev</b> <span class=\"arrow\">→</span> <b>qa</b> <span class=\"arrow\">→</span> <b>prod</b>",
        "<b>prod</b> is behind <b>qa</b>",
        "Outside the promotion order",
        "Orphan stacks",
        "<code>old-app</code>",
        "generated 2026-01-01 00:00 UTC",
        "</i> OutOfSync</span>",
        "</i> Synced</span>",
        "</i> Unknown</span>",
        "</i> Healthy</span>",
        "<details open>",
        "Expected (git)",
        "/Tags/0/Value",
        "remediation skipped: it is Unknown",
        "git: <code>1.5.0</code>",
        "Succeeded</a>",
    ] {
        assert!(page.contains(text), "no {text:?} in the page");
    }
    // Sections in order: path, drift, outside.
    let at = |s: &str| page.find(s).unwrap();
    assert!(at("id=\"path\"") < at("id=\"drift\"") && at("id=\"drift\"") < at("id=\"outside\""));
}

#[test]
fn a_hundred_environments_stay_under_200_kb() {
    let mut envs = Vec::new();
    let mut order = Vec::new();
    for i in 0..100 {
        let name = format!("environment-{i:03}");
        let mut e = env(&name, &format!("1.{i}.0"), Sync::OutOfSync, Health::Healthy);
        e.status.pipeline = Some(PipelineRun {
            name: format!("{name}-pipeline"),
            status: "Succeeded".into(),
            time: Some("2026-01-01T00:00:00Z".into()),
            source_revision: Some("0123456789abcdef0123456789abcdef01234567".into()),
            execution_id: "0b8e2f1c-6a4d-4c6e-9f3a-2d1e0c9b8a7f".into(),
        });
        e.reasons = vec![
            Reason::parameter(&e.status.stack, "AppVersion", Some("1.0.0"), Some("1.0.1")),
            Reason::tag(&e.status.stack, "owner", Some("pay"), None),
        ];
        if i < 90 {
            order.push(name);
        }
        envs.push(e);
    }
    let b = Board::new("acme", "0123456789abcdef0123456789abcdef01234567", envs)
        .with_kind(BoardKind::Drift)
        .with_order(order)
        .with_repository_url(Some("https://github.com/acme/app".into()))
        .with_generated_at("2026-01-01 00:00 UTC");
    let page = b.render_html();
    if let Some(dir) = std::env::var_os("BOARD_SAMPLE_DIR") {
        std::fs::write(std::path::Path::new(&dir).join("board-100.html"), &page).unwrap();
    }
    assert!(page.len() < 200 * 1024, "{} bytes", page.len());
    assert!(page.len() > 50 * 1024, "every environment is shown");
    assert_eq!(page.matches("<article").count(), 100);
}

#[test]
fn markdown_is_a_flowchart_and_a_table_in_promotion_order() {
    let mut b = board();
    b.environments.retain(|e| e.status.name != "sandbox");
    b.environments[1].reasons.truncate(1);
    expect![[r#"
        ```mermaid
        flowchart LR
          e0["dev<br/>1.5.0<br/>Synced"]:::synced
          e1["qa<br/>1.5.0<br/>runs #60;script#62;alert#40;#34;x#34;#41;#60;#47;script#62;<br/>OutOfSync"]:::outofsync
          e2["prod<br/>1.4.0<br/>Synced<br/>behind qa"]:::synced
          e0 --> e1
          e1 --> e2
          classDef synced fill:#dafbe1,stroke:#1a7f37,color:#0a3622
          classDef outofsync fill:#fff8c5,stroke:#9a6700,color:#3b2300
          classDef unknown fill:#ffebe9,stroke:#cf222e,color:#4c0009
        ```

        | Environment | Git | Deployed | Commit | Stack status | Pipeline | Sync | Health | Reasons |
        |---|---|---|---|---|---|---|---|---|
        | `dev` | `1.5.0` | `1.5.0` | `0123456789ab` | `UPDATE_COMPLETE` | - | Synced | Healthy |  |
        | `qa` | `1.5.0` | `<script>alert("x")</script>` | `0123456789ab` | `UPDATE_COMPLETE` | - | OutOfSync | Healthy | `parameters.AppVersion expected 1.5.0, actual <script>alert("x")</script>` |
        | `prod` ⏳ behind `qa` | `1.4.0` | `1.4.0` | `0123456789ab` | `UPDATE_COMPLETE` | `Succeeded 2026-01-01T00:00:00Z @0123456789ab` | Synced | Healthy |  |
    "#]]
    .assert_eq(&b.render_markdown());
}

#[test]
fn mermaid_labels_cannot_break_out() {
    let t = mermaid_text("a\"]\n--> x[\"b` #");
    assert!(!t.contains(['"', ']', '[', '\n', '`', '>']), "{t}");
    assert_eq!(mermaid_text("1.2.3-rc_1"), "1.2.3-rc_1");
    assert_eq!(mermaid_text("<"), "#60;");
}

#[test]
fn markdown_cells_keep_table_and_markup_safe() {
    let mut b = board();
    b.environments[0].status.stack_status = Some("A|B `x`".into());
    let md = b.render_markdown();
    assert!(md.contains("<code>A\\|B `x`</code>"), "{md}");
}

#[test]
fn remote_urls_become_web_addresses_without_credentials() {
    let cases = [
        (
            "https://github.com/acme/app.git",
            Some("https://github.com/acme/app"),
        ),
        (
            "https://x-access-token:ghs_secret@github.com/acme/app",
            Some("https://github.com/acme/app"),
        ),
        (
            "git@github.com:acme/app.git",
            Some("https://github.com/acme/app"),
        ),
        (
            "ssh://git@github.example.com:2222/acme/app.git",
            Some("https://github.example.com/acme/app"),
        ),
        ("/srv/git/app.git", None),
        ("file:///srv/git/app.git", None),
        ("https://github.com/acme/app\" onclick=\"x", None),
    ];
    for (remote, want) in cases {
        assert_eq!(web_url_of_remote(remote).as_deref(), want, "{remote}");
    }
}

#[test]
fn console_links_encode_names_and_know_the_partitions() {
    assert_eq!(
        console_stack_url("eu-west-1", "a b/c").unwrap(),
        "https://eu-west-1.console.aws.amazon.com/cloudformation/home?region=eu-west-1#/stacks/stackinfo?stackId=a%20b%2Fc"
    );
    assert!(console_stack_url("cn-north-1", "s")
        .unwrap()
        .starts_with("https://console.amazonaws.cn/"));
    assert_eq!(console_stack_url("eu-west-1.evil.com/", "s"), None);
    assert_eq!(console_stack_url("", "s"), None);
    assert_eq!(
        console_pipeline_url("us-east-1", "p", "").unwrap(),
        "https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/p/view?region=us-east-1"
    );
}

#[test]
fn timestamps_are_utc() {
    assert_eq!(utc_timestamp(0), "1970-01-01 00:00 UTC");
    assert_eq!(utc_timestamp(951_782_400), "2000-02-29 00:00 UTC");
    assert_eq!(utc_timestamp(1_798_761_599), "2026-12-31 23:59 UTC");
}

#[test]
fn the_browser_fixture_is_a_board_of_six() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/board/board.json"
    );
    let b: Board = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let rows = b.rows();
    let states: Vec<(&str, Sync, Health)> = rows
        .path
        .iter()
        .chain(&rows.outside)
        .map(|r| {
            (
                r.env.status.name.as_str(),
                r.env.status.sync,
                r.env.status.health,
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("dev", Sync::Synced, Health::Healthy),
            ("qa", Sync::OutOfSync, Health::Healthy),
            ("staging", Sync::Synced, Health::Degraded),
            ("prod", Sync::OutOfSync, Health::Missing),
            ("sandbox", Sync::Synced, Health::Healthy),
        ]
    );
    assert_eq!(b.orphans, ["feature-x-app"]);
    assert!(!b.render_html().contains("<script"));
}
