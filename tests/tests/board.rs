//! The status board in a real browser: headless Chromium renders the page
//! of `tests/fixtures/board/board.json` (dev Synced, qa OutOfSync with
//! reasons and injected markup in a parameter value and a tag, staging
//! Degraded, prod Missing, sandbox outside the promotion order, one orphan
//! stack) to a PNG and dumps its DOM, which must show every environment and
//! badge and no element made from a value.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use gitops_core::board::Board;
use gitops_e2e::browser::{png_size, Browser};
use gitops_e2e::tools::repo_root;

fn fixture() -> Board {
    let path = repo_root().join("tests/fixtures/board/board.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The serialised DOM of each `<article>` card, by the environment in its `<h3>`.
fn cards(dom: &str) -> Vec<(String, String)> {
    dom.split("<article")
        .skip(1)
        .map(|a| {
            let card = a.split("</article>").next().unwrap().to_string();
            let name = card
                .split("<h3>")
                .nth(1)
                .and_then(|s| s.split("</h3>").next())
                .unwrap()
                .to_string();
            (name, card)
        })
        .collect()
}

#[test]
fn the_board_renders_in_a_real_browser() {
    let Some(browser) = Browser::find() else {
        return;
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("board");
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("board.html");
    let png = dir.join("board.png");
    std::fs::write(&page, fixture().render_html()).unwrap();

    browser.screenshot(&page, &png, 1400, 1100);
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(png_size(&bytes), Some((1400, 1100)), "a PNG of the window");
    assert!(
        bytes.len() > 30_000,
        "the screenshot is nearly blank ({} bytes)",
        bytes.len()
    );
    eprintln!("screenshot of the status board: {}", png.display());

    let dom = browser.dump_dom(&page);
    // The values with markup stayed text: no element came from them and no
    // script ran (it would have renamed the page).
    assert!(
        dom.contains("<title>gitops board: acme-payments</title>"),
        "{dom}"
    );
    assert!(!dom.contains("pwned</title>"), "an injected script ran");
    assert!(!dom.contains("<script"), "a script element in the DOM");
    assert!(!dom.contains("<img"), "an img element in the DOM");
    assert!(dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;"));
    assert!(dom.contains("&lt;img src=x onerror=\"document.title='pwned'\"&gt;"));

    // Every environment, with its sync and health badges' text.
    let want = [
        ("dev", "Synced", "Healthy"),
        ("qa", "OutOfSync", "Healthy"),
        ("staging", "Synced", "Degraded"),
        ("prod", "OutOfSync", "Missing"),
        ("sandbox", "Synced", "Healthy"),
    ];
    let cards = cards(&dom);
    let names: Vec<&str> = cards.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["dev", "qa", "staging", "prod", "sandbox"],
        "promotion order, then the environment outside it"
    );
    for ((name, sync, health), (_, card)) in want.iter().zip(&cards) {
        assert!(
            card.contains(&format!("</i> {sync}</span>")),
            "{name}: no {sync} badge in {card}"
        );
        assert!(
            card.contains(&format!("</i> {health}</span>")),
            "{name}: no {health} badge in {card}"
        );
    }
    let outside = dom.split("id=\"outside\"").nth(1).unwrap();
    assert!(outside.contains("<h3>sandbox</h3>"));
    assert!(outside.contains("<code>feature-x-app</code>"), "the orphan");

    // The path, who is behind, and qa's reasons (expected against actual).
    assert!(dom.contains("<b>qa</b> is behind <b>dev</b>"));
    assert!(dom.contains("<b>prod</b> is behind <b>staging</b>"));
    let drift = dom.split("id=\"drift\"").nth(1).unwrap();
    assert!(drift.contains("<code>parameters.AppVersion</code>"));
    assert!(drift.contains("<code>1.4.0</code>"));
    assert!(drift.contains("<code>Suspended</code>"));
    assert!(drift.contains("stack missing"));

    // Links only to the repository and the AWS console.
    for link in dom.split("href=\"").skip(1) {
        let link = link.split('"').next().unwrap();
        assert!(
            link == "https://github.com/acme/payments-gitops"
                || link.starts_with("https://github.com/acme/payments-gitops/")
                || link.starts_with("https://eu-west-1.console.aws.amazon.com/")
                || link.starts_with("https://us-east-1.console.aws.amazon.com/"),
            "{link}"
        );
    }
}
