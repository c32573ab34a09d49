//! The status board: every environment of a repository at one glance, in
//! promotion order, with its version, deployed commit, stack status, sync,
//! health, pipeline run and drift.
//!
//! A [`Board`] is built from the typed rows `gitops status` and `gitops
//! drift` compute ([`EnvDrift`]) and renders as
//!
//! - one self-contained HTML page ([`Board::render_html`]): inline CSS, no
//!   script, no request of its own (a Content-Security-Policy says so), and
//!   no URL but links to the repository and the AWS console;
//! - compact markdown ([`Board::render_markdown`]): a Mermaid flowchart of
//!   the promotion path with each node's version and sync, then a table in
//!   promotion order, for step summaries and drift issues.
//!
//! Every value that came from git or AWS is escaped. The module is pure: the
//! caller gives the generation time ([`utc_timestamp`] formats one).
//!
//! ```
//! use gitops_core::board::Board;
//!
//! let board = Board::new("acme-payments", "0123456789abcdef", Vec::new())
//!     .with_order(vec!["staging".into(), "prod".into()])
//!     .with_generated_at("2026-01-01 00:00 UTC");
//! let page = board.render_html();
//! assert!(page.starts_with("<!DOCTYPE html>"));
//! assert!(page.contains("acme-payments"));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::drift::{EnvDrift, EnvStatus, Health, ReasonKind, Sync};
use crate::markdown::{code, commit, html};
use crate::text::short_commit;

/// The most reasons (and resource drifts) shown per environment; the rest are counted.
const MAX_LISTED: usize = 25;

/// Which command drew the board.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BoardKind {
    /// `gitops status`: parameters, tags and existence; no orphan search.
    #[default]
    Status,
    /// `gitops drift`: templates, resource drift and orphan stacks too.
    Drift,
}

impl BoardKind {
    fn command(self) -> &'static str {
        match self {
            BoardKind::Status => "gitops status",
            BoardKind::Drift => "gitops drift",
        }
    }
}

/// Everything one board shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Board {
    /// The command that gathered the rows.
    #[serde(default)]
    pub kind: BoardKind,
    /// The repository's id (`gitops:managed-by`).
    pub repository: String,
    /// The repository's web address (`https://github.com/owner/repo`), for
    /// commit links; anything but a plain http(s) URL is ignored.
    #[serde(default)]
    pub repository_url: Option<String>,
    /// The commit the rows were computed at.
    pub commit: String,
    /// When the board was drawn, as shown (see [`utc_timestamp`]).
    #[serde(default)]
    pub generated_at: Option<String>,
    /// `promotion.order`.
    #[serde(default)]
    pub order: Vec<String>,
    /// One row per environment.
    pub environments: Vec<EnvDrift>,
    /// Stacks tagged as this repository's that no environment declares.
    #[serde(default)]
    pub orphans: Vec<String>,
    /// Why orphans could not be looked for.
    #[serde(default)]
    pub orphans_error: Option<String>,
    /// Notes shown under the board, such as where resource drift was not checked.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// One environment on the board.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Row<'a> {
    /// Its row.
    pub env: &'a EnvDrift,
    /// The environment before it in the promotion path, when this one's
    /// promoted values (in git) differ from that one's: a promotion is due.
    pub behind: Option<&'a str>,
}

/// The board's rows, split as it shows them.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Rows<'a> {
    /// The environments of `promotion.order`, in that order.
    pub path: Vec<Row<'a>>,
    /// The others, by name.
    pub outside: Vec<Row<'a>>,
}

impl Board {
    /// A status board of `environments` at `commit` of the repository `id`.
    pub fn new(
        repository: impl Into<String>,
        commit: impl Into<String>,
        environments: Vec<EnvDrift>,
    ) -> Self {
        Self {
            kind: BoardKind::Status,
            repository: repository.into(),
            repository_url: None,
            commit: commit.into(),
            generated_at: None,
            order: Vec::new(),
            environments,
            orphans: Vec::new(),
            orphans_error: None,
            notes: Vec::new(),
        }
    }

    /// Which command drew it.
    pub fn with_kind(mut self, kind: BoardKind) -> Self {
        self.kind = kind;
        self
    }

    /// The promotion order.
    pub fn with_order(mut self, order: Vec<String>) -> Self {
        self.order = order;
        self
    }

    /// The repository's web address, for commit links.
    pub fn with_repository_url(mut self, url: Option<String>) -> Self {
        self.repository_url = url;
        self
    }

    /// When it was drawn.
    pub fn with_generated_at(mut self, at: impl Into<String>) -> Self {
        self.generated_at = Some(at.into());
        self
    }

    /// The orphan stacks, or why they could not be looked for.
    pub fn with_orphans(mut self, orphans: Vec<String>, error: Option<String>) -> Self {
        self.orphans = orphans;
        self.orphans_error = error;
        self
    }

    /// Notes shown under the board.
    pub fn with_notes(mut self, notes: Vec<String>) -> Self {
        self.notes = notes;
        self
    }

    /// The environments in promotion order (with who is behind whom), then the others.
    pub fn rows(&self) -> Rows<'_> {
        let by_name: BTreeMap<&str, &EnvDrift> = self
            .environments
            .iter()
            .map(|e| (e.status.name.as_str(), e))
            .collect();
        let mut rows = Rows::default();
        let mut previous: Option<&EnvDrift> = None;
        for name in &self.order {
            let Some(env) = by_name.get(name.as_str()).copied() else {
                continue;
            };
            if rows.path.iter().any(|r| r.env.status.name == *name) {
                continue;
            }
            let behind = previous
                .filter(|p| {
                    !env.status.git_version.is_empty()
                        && p.status.git_version != env.status.git_version
                })
                .map(|p| p.status.name.as_str());
            rows.path.push(Row { env, behind });
            previous = Some(env);
        }
        let mut outside: Vec<Row<'_>> = self
            .environments
            .iter()
            .filter(|e| !self.order.contains(&e.status.name))
            .map(|env| Row { env, behind: None })
            .collect();
        outside.sort_by(|a, b| a.env.status.name.cmp(&b.env.status.name));
        rows.outside = outside;
        rows
    }

    fn count(&self, sync: Sync) -> usize {
        self.environments
            .iter()
            .filter(|e| e.status.sync == sync)
            .count()
    }

    fn web_url(&self) -> Option<&str> {
        self.repository_url
            .as_deref()
            .filter(|u| is_web_url(u))
            .map(|u| u.trim_end_matches('/'))
    }

    fn commit_url(&self, commit: &str) -> Option<String> {
        let base = self.web_url()?;
        is_commit_id(commit).then(|| format!("{base}/commit/{commit}"))
    }

    // -----------------------------------------------------------------------
    // HTML
    // -----------------------------------------------------------------------

    /// The board as one self-contained HTML page.
    pub fn render_html(&self) -> String {
        let rows = self.rows();
        let mut out = String::with_capacity(8192 + 1500 * self.environments.len());
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
             <meta name=\"referrer\" content=\"no-referrer\">\n\
             <title>gitops board: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
            html(&self.repository)
        );
        self.html_header(&mut out);
        out.push_str("<main>\n");
        self.html_path(&mut out, &rows);
        self.html_drift(&mut out, &rows);
        self.html_outside(&mut out, &rows);
        if !self.notes.is_empty() {
            out.push_str("<section id=\"notes\"><h2>Notes</h2><ul>");
            for n in &self.notes {
                let _ = write!(out, "<li>{}</li>", html(n));
            }
            out.push_str("</ul></section>\n");
        }
        out.push_str("</main>\n<footer>Sync: does AWS run what git says. Health: does what runs work. Versions are the promoted keys (<code>promotion.keys</code>); an environment is behind when its promoted values in git differ from the one before it. Drawn by <code>");
        out.push_str(self.kind.command());
        out.push_str(" --format html</code>.</footer>\n</body>\n</html>\n");
        out
    }

    fn html_header(&self, out: &mut String) {
        let _ = write!(
            out,
            "<header>\n<h1>Environments of <span class=\"repo\">{}</span></h1>\n<p class=\"meta\">",
            html(&self.repository)
        );
        match self.web_url() {
            Some(u) => {
                let _ = write!(out, "repository <a href=\"{}\">{}</a> · ", html(u), html(u));
            }
            None => {
                let _ = write!(out, "repository <b>{}</b> · ", html(&self.repository));
            }
        }
        out.push_str("commit ");
        self.html_commit(out, &self.commit);
        if let Some(at) = &self.generated_at {
            let _ = write!(out, " · generated {}", html(at));
        }
        let _ = writeln!(out, " · by <code>{}</code></p>", self.kind.command());
        let _ = write!(
            out,
            "<p class=\"totals\">{} environment{}: ",
            self.environments.len(),
            if self.environments.len() == 1 {
                ""
            } else {
                "s"
            }
        );
        for s in [Sync::Synced, Sync::OutOfSync, Sync::Unknown] {
            let _ = write!(out, "{} {} ", self.count(s), sync_badge(s));
        }
        if self.kind == BoardKind::Drift || !self.orphans.is_empty() {
            let _ = write!(out, "· {} orphan stack(s)", self.orphans.len());
        }
        out.push_str("</p>\n</header>\n");
    }

    fn html_commit(&self, out: &mut String, commit: &str) {
        let shown = html(short_commit(commit));
        match self.commit_url(commit) {
            Some(u) => {
                let _ = write!(out, "<a href=\"{}\"><code>{shown}</code></a>", html(&u));
            }
            None => {
                let _ = write!(out, "<code title=\"{}\">{shown}</code>", html(commit));
            }
        }
    }

    fn html_path(&self, out: &mut String, rows: &Rows<'_>) {
        out.push_str("<section id=\"path\">\n<h2>Promotion path</h2>\n");
        if rows.path.is_empty() {
            out.push_str(
                "<p class=\"quiet\">No promotion order (<code>promotion.order</code>) among these environments.</p>\n</section>\n",
            );
            return;
        }
        out.push_str("<p class=\"route\">");
        for (i, r) in rows.path.iter().enumerate() {
            if i > 0 {
                out.push_str(" <span class=\"arrow\">→</span> ");
            }
            let _ = write!(out, "<b>{}</b>", html(&r.env.status.name));
        }
        out.push_str("</p>\n");
        let behind: Vec<&Row<'_>> = rows.path.iter().filter(|r| r.behind.is_some()).collect();
        if behind.is_empty() {
            out.push_str("<p class=\"quiet\">Every environment has the promoted values of the one before it.</p>\n");
        } else {
            out.push_str("<p>Behind the environment before them (<code>gitops promote --from</code> that one would change them):</p>\n<ul class=\"behind-list\">");
            for r in behind {
                let _ = write!(
                    out,
                    "<li><b>{}</b> is behind <b>{}</b></li>",
                    html(&r.env.status.name),
                    html(r.behind.unwrap_or_default())
                );
            }
            out.push_str("</ul>\n");
        }
        out.push_str("<div class=\"cards\">\n");
        for (i, r) in rows.path.iter().enumerate() {
            if i > 0 {
                out.push_str("<div class=\"step\" aria-hidden=\"true\">→</div>\n");
            }
            self.html_card(out, r);
        }
        out.push_str("</div>\n</section>\n");
    }

    fn html_card(&self, out: &mut String, r: &Row<'_>) {
        let s = &r.env.status;
        let _ = write!(
            out,
            "<article class=\"card sync-{}\">\n<h3>{}</h3>\n<p class=\"badges\">{} {}</p>\n",
            slug_sync(s.sync),
            html(&s.name),
            sync_badge(s.sync),
            health_badge(s.health)
        );
        if let Some(prev) = r.behind {
            let _ = writeln!(out, "<p class=\"behind\">behind {}</p>", html(prev));
        }
        out.push_str("<dl>");
        // The version: what runs, and git's value where it differs.
        if s.git_version.is_empty() && s.deployed_version.is_empty() {
            out.push_str("<dt>Version</dt><dd class=\"quiet\">no promotion.keys</dd>");
        }
        for (key, want) in &s.git_version {
            let label = key.split_once('.').map(|(_, n)| n).unwrap_or(key);
            let running = s.deployed_version.get(key).cloned().flatten();
            let _ = write!(out, "<dt>{}</dt><dd>", html(label));
            match (&running, s.stack_status.is_some()) {
                (Some(v), _) => {
                    let _ = write!(out, "<code>{}</code>", html(v));
                }
                (None, true) => out.push_str("<span class=\"quiet\">not set</span>"),
                (None, false) => out.push_str("<span class=\"quiet\">not deployed</span>"),
            }
            if want != &running {
                let _ = write!(
                    out,
                    " <span class=\"want\">git: <code>{}</code></span>",
                    html(want.as_deref().unwrap_or("(not set)"))
                );
            }
            out.push_str("</dd>");
        }
        out.push_str("<dt>Commit</dt><dd>");
        match &s.commit {
            Some(c) => self.html_commit(out, c),
            None => out.push_str("<span class=\"quiet\">-</span>"),
        }
        out.push_str("</dd><dt>Stack</dt><dd>");
        match console_stack_url(&s.region, &s.stack) {
            Some(u) => {
                let _ = write!(out, "<a href=\"{}\">{}</a>", html(&u), html(&s.stack));
            }
            None => out.push_str(&html(&s.stack)),
        }
        let _ = write!(
            out,
            " <span class=\"quiet\">{}</span></dd><dt>Status</dt><dd>{}</dd>",
            html(&s.region),
            match &s.stack_status {
                Some(st) => format!("<code>{}</code>", html(st)),
                None => "<span class=\"quiet\">no stack</span>".into(),
            }
        );
        if let Some(p) = &s.pipeline {
            out.push_str("<dt>Pipeline</dt><dd>");
            match console_pipeline_url(&s.region, &p.name, &p.execution_id) {
                Some(u) => {
                    let _ = write!(out, "<a href=\"{}\">{}</a>", html(&u), html(&p.status));
                }
                None => out.push_str(&html(&p.status)),
            }
            if let Some(t) = &p.time {
                let _ = write!(out, " <span class=\"quiet\">{}</span>", html(t));
            }
            match &p.source_revision {
                Some(rev) if s.commit.as_ref() == Some(rev) => {
                    out.push_str(" <span class=\"quiet\">at that commit</span>");
                }
                Some(rev) => {
                    out.push_str(" @");
                    self.html_commit(out, rev);
                }
                None => {}
            }
            out.push_str("</dd>");
        }
        out.push_str("</dl>\n");
        if let Some(e) = &s.error {
            let _ = writeln!(out, "<p class=\"error\">{}</p>", html(e));
        }
        if let Some(rem) = &r.env.remediation {
            let _ = writeln!(
                out,
                "<p class=\"quiet\">remediation {}: {}</p>",
                rem.action,
                html(&rem.message)
            );
        }
        let n = r.env.reasons.len();
        if n > 0 {
            let _ = writeln!(
                out,
                "<p class=\"quiet\">{n} difference{} ↓</p>",
                if n == 1 { "" } else { "s" }
            );
        }
        out.push_str("</article>\n");
    }

    fn html_drift(&self, out: &mut String, rows: &Rows<'_>) {
        let drifted: Vec<&EnvDrift> = rows
            .path
            .iter()
            .chain(&rows.outside)
            .map(|r| r.env)
            .filter(|e| {
                e.status.sync == Sync::OutOfSync
                    || !e.reasons.is_empty()
                    || !e.resource_drifts.is_empty()
            })
            .collect();
        out.push_str("<section id=\"drift\">\n<h2>Drift</h2>\n");
        if drifted.is_empty() {
            out.push_str("<p class=\"quiet\">No environment is out of sync.</p>\n</section>\n");
            return;
        }
        for e in drifted {
            let s = &e.status;
            let _ = write!(
                out,
                "<details{}>\n<summary><b>{}</b> · {} · {} reason{}{}</summary>\n",
                if s.sync == Sync::OutOfSync {
                    " open"
                } else {
                    ""
                },
                html(&s.name),
                s.sync,
                e.reasons.len(),
                if e.reasons.len() == 1 { "" } else { "s" },
                if e.resource_drifts.is_empty() {
                    String::new()
                } else {
                    format!(", {} resource(s) not in sync", e.resource_drifts.len())
                }
            );
            let listed: Vec<_> = e
                .reasons
                .iter()
                .filter(|r| r.kind != ReasonKind::Resource)
                .collect();
            if !listed.is_empty() {
                out.push_str("<table><thead><tr><th>What</th><th>Key</th><th>Expected (git)</th><th>Actual (AWS)</th></tr></thead><tbody>\n");
                for r in listed.iter().take(MAX_LISTED) {
                    let on = if r.stack == s.stack {
                        String::new()
                    } else {
                        format!(" ({})", html(&r.stack))
                    };
                    let _ = writeln!(
                        out,
                        "<tr><td>{}{on}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        reason_kind(r.kind),
                        opt_code(r.key.as_deref()),
                        value_cell(r.kind, r.expected.as_deref()),
                        value_cell(r.kind, r.actual.as_deref())
                    );
                }
                more_row(out, listed.len(), 4);
                out.push_str("</tbody></table>\n");
            }
            if !e.resource_drifts.is_empty() {
                out.push_str("<table><thead><tr><th>Resource</th><th>Type</th><th>Drift</th><th>Property</th><th>Expected</th><th>Actual</th></tr></thead><tbody>\n");
                for d in e.resource_drifts.iter().take(MAX_LISTED) {
                    let first = d.differences.first();
                    let _ = writeln!(
                        out,
                        "<tr><td><code>{}</code> <span class=\"quiet\">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        html(&d.logical_id),
                        html(&d.stack),
                        html(&d.resource_type),
                        html(&d.status),
                        opt_code(first.map(|x| x.path.as_str())),
                        opt_code(first.map(|x| x.expected.as_str())),
                        opt_code(first.map(|x| x.actual.as_str()))
                    );
                    for x in d.differences.iter().skip(1).take(MAX_LISTED) {
                        let _ = writeln!(
                            out,
                            "<tr><td></td><td></td><td></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                            opt_code(Some(&x.path)),
                            opt_code(Some(&x.expected)),
                            opt_code(Some(&x.actual))
                        );
                    }
                }
                more_row(out, e.resource_drifts.len(), 6);
                out.push_str("</tbody></table>\n");
            }
            if !e.resource_drift_checked && self.kind == BoardKind::Drift {
                out.push_str("<p class=\"quiet\">Resource drift was not checked here.</p>\n");
            }
            out.push_str("</details>\n");
        }
        out.push_str("</section>\n");
    }

    fn html_outside(&self, out: &mut String, rows: &Rows<'_>) {
        out.push_str("<section id=\"outside\">\n<h2>Outside the promotion order</h2>\n");
        if rows.outside.is_empty() {
            out.push_str(
                "<p class=\"quiet\">Every environment is in <code>promotion.order</code>.</p>\n",
            );
        } else {
            out.push_str("<div class=\"cards\">\n");
            for r in &rows.outside {
                self.html_card(out, r);
            }
            out.push_str("</div>\n");
        }
        let _ = write!(
            out,
            "<h3 id=\"orphans\">Orphan stacks</h3>\n<p class=\"quiet\">Stacks tagged <code>gitops:managed-by={}</code> that no environment declares.</p>\n",
            html(&self.repository)
        );
        if !self.orphans.is_empty() {
            out.push_str("<ul class=\"orphans\">");
            for o in &self.orphans {
                let _ = write!(out, "<li><code>{}</code></li>", html(o));
            }
            out.push_str("</ul>\n");
        } else if self.orphans_error.is_none() {
            out.push_str(match self.kind {
                BoardKind::Drift => "<p>None.</p>\n",
                _ => "<p class=\"quiet\">Not looked for: <code>gitops drift</code> looks for them.</p>\n",
            });
        }
        if let Some(e) = &self.orphans_error {
            let _ = writeln!(out, "<p class=\"error\">{}</p>", html(e));
        }
        out.push_str("</section>\n");
    }

    // -----------------------------------------------------------------------
    // Markdown
    // -----------------------------------------------------------------------

    /// The compact view for step summaries and issues: a Mermaid flowchart
    /// of the promotion path (each node's version and sync), then one table
    /// in promotion order (the others after it), with the reasons on a
    /// drift board. Never contains the generation time, so the same state
    /// gives the same text.
    pub fn render_markdown(&self) -> String {
        let rows = self.rows();
        let mut out = String::new();
        if self.environments.is_empty() {
            out.push_str("No environments.\n");
            return out;
        }
        if !rows.path.is_empty() {
            out.push_str("```mermaid\nflowchart LR\n");
            for (i, r) in rows.path.iter().enumerate() {
                let s = &r.env.status;
                let mut label = mermaid_text(&s.name);
                let want = version_text(&s.git_version);
                let _ = write!(label, "<br/>{}", mermaid_text(&want));
                let running = version_text(&s.deployed_version);
                if s.stack_status.is_some() && running != want {
                    let _ = write!(label, "<br/>runs {}", mermaid_text(&running));
                }
                let _ = write!(label, "<br/>{}", s.sync);
                if let Some(prev) = r.behind {
                    let _ = write!(label, "<br/>behind {}", mermaid_text(prev));
                }
                let _ = writeln!(out, "  e{i}[\"{label}\"]:::{}", slug_sync(s.sync));
            }
            for i in 1..rows.path.len() {
                let _ = writeln!(out, "  e{} --> e{i}", i - 1);
            }
            out.push_str("  classDef synced fill:#dafbe1,stroke:#1a7f37,color:#0a3622\n  classDef outofsync fill:#fff8c5,stroke:#9a6700,color:#3b2300\n  classDef unknown fill:#ffebe9,stroke:#cf222e,color:#4c0009\n```\n\n");
        }
        let drift = self.kind == BoardKind::Drift;
        out.push_str(
            "| Environment | Git | Deployed | Commit | Stack status | Pipeline | Sync | Health |",
        );
        out.push_str(if drift {
            " Reasons |\n|---|---|---|---|---|---|---|---|---|\n"
        } else {
            "\n|---|---|---|---|---|---|---|---|\n"
        });
        for r in rows.path.iter().chain(&rows.outside) {
            let s = &r.env.status;
            let mut name = code(&s.name);
            if let Some(prev) = r.behind {
                let _ = write!(name, " ⏳ behind {}", code(prev));
            } else if !self.order.contains(&s.name) && !self.order.is_empty() {
                name.push_str(" (outside the order)");
            }
            let _ = write!(
                out,
                "| {name} | {} | {} | {} | {} | {} | {} | {} |",
                code(&version_text(&s.git_version)),
                code(&version_text(&s.deployed_version)),
                commit(s.commit.as_deref(), "-"),
                s.stack_status.as_deref().map_or_else(|| "-".into(), code),
                s.pipeline
                    .as_ref()
                    .map_or_else(|| "-".into(), |_| code(&pipeline_text(s))),
                s.sync,
                s.health
            );
            if drift {
                let n = r.env.reasons.len();
                let mut reasons: Vec<String> = match (&s.error, n) {
                    (Some(e), 0) => vec![code(e)],
                    _ => r
                        .env
                        .reasons
                        .iter()
                        .take(5)
                        .map(|x| code(&x.message))
                        .collect(),
                };
                if n > 5 {
                    reasons.push(format!("and {} more", n - 5));
                }
                let _ = write!(out, " {} |", reasons.join("<br>"));
            }
            out.push('\n');
        }
        out
    }
}

fn more_row(out: &mut String, total: usize, columns: usize) {
    if total > MAX_LISTED {
        let _ = writeln!(
            out,
            "<tr><td colspan=\"{columns}\" class=\"quiet\">and {} more (<code>gitops drift --format json</code> lists all)</td></tr>",
            total - MAX_LISTED
        );
    }
}

fn opt_code(v: Option<&str>) -> String {
    match v {
        Some("") => "<code>\"\"</code>".into(),
        Some(v) => format!("<code>{}</code>", html(v)),
        None => "<span class=\"quiet\">-</span>".into(),
    }
}

fn value_cell(kind: ReasonKind, v: Option<&str>) -> String {
    match (kind, v) {
        (ReasonKind::StackMissing, None) => "<span class=\"quiet\">-</span>".into(),
        (ReasonKind::Template, None) => "<span class=\"quiet\">see the template</span>".into(),
        (_, None) => "<span class=\"quiet\">(not set)</span>".into(),
        (_, Some(v)) => opt_code(Some(v)),
    }
}

/// A reason's kind as words (`stack missing`), from its serialised name.
fn reason_kind(k: ReasonKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('-', " ")))
        .unwrap_or_default()
}

fn slug_sync(s: Sync) -> &'static str {
    match s {
        Sync::Synced => "synced",
        Sync::OutOfSync => "outofsync",
        Sync::Unknown => "unknown",
    }
}

/// A sync badge: a symbol and the word, so colour is never the only cue.
fn sync_badge(s: Sync) -> String {
    let symbol = match s {
        Sync::Synced => "✓",
        Sync::OutOfSync => "≠",
        Sync::Unknown => "?",
    };
    format!(
        "<span class=\"badge b-{}\"><i aria-hidden=\"true\">{symbol}</i> {s}</span>",
        slug_sync(s)
    )
}

/// A health badge, like [`sync_badge`].
fn health_badge(h: Health) -> String {
    let (class, symbol) = match h {
        Health::Healthy => ("healthy", "♥"),
        Health::Progressing => ("progressing", "↻"),
        Health::Degraded => ("degraded", "✗"),
        Health::Missing => ("missing", "∅"),
        Health::Unknown => ("unknown", "?"),
    };
    format!("<span class=\"badge b-{class}\"><i aria-hidden=\"true\">{symbol}</i> {h}</span>")
}

/// A version map as one line: the value alone for one key, `name=value` pairs otherwise.
pub fn version_text(v: &BTreeMap<String, Option<String>>) -> String {
    if v.is_empty() {
        return "-".into();
    }
    if v.len() == 1 {
        return v
            .values()
            .next()
            .cloned()
            .flatten()
            .unwrap_or_else(|| "-".into());
    }
    v.iter()
        .map(|(k, v)| {
            let short = k.split_once('.').map(|(_, n)| n).unwrap_or(k);
            format!("{short}={}", v.as_deref().unwrap_or("-"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pipeline's last run as one line: status, time and source revision.
pub fn pipeline_text(s: &EnvStatus) -> String {
    match &s.pipeline {
        None => "-".into(),
        Some(p) => {
            let mut out = p.status.clone();
            if let Some(t) = &p.time {
                let _ = write!(out, " {t}");
            }
            if let Some(r) = &p.source_revision {
                let _ = write!(out, " @{}", short_commit(r));
            }
            out
        }
    }
}

/// Text for a Mermaid node label inside `"…"`: letters, digits and a few
/// harmless marks as they are, everything else as an entity code (`#60;`),
/// so no value can end the label, add a node or inject markup.
fn mermaid_text(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '-' | '_' | ',' | ':' | '=' | '+') {
            out.push(c);
        } else {
            let _ = write!(out, "#{};", u32::from(c));
        }
    }
    out
}

/// Whether `u` is a plain http(s) URL that is safe as a link target.
fn is_web_url(u: &str) -> bool {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    rest.is_some_and(|r| {
        !r.is_empty()
            && !r.starts_with('/')
            && r.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~' | '/' | ':' | '%')
            })
    })
}

/// Whether `c` looks like a git commit id (hex, 7 to 64 characters).
fn is_commit_id(c: &str) -> bool {
    (7..=64).contains(&c.len()) && c.chars().all(|x| x.is_ascii_hexdigit())
}

/// The web address of a git remote URL (`https://host/path`,
/// `git@host:path`, `ssh://git@host/path`), without credentials, port (for
/// ssh) or `.git`; `None` for anything else, such as a local path.
pub fn web_url_of_remote(remote: &str) -> Option<String> {
    let remote = remote.trim();
    let (host, path) = if let Some(rest) = remote
        .strip_prefix("https://")
        .or_else(|| remote.strip_prefix("http://"))
    {
        let (authority, path) = rest.split_once('/')?;
        let host = authority.rsplit('@').next()?;
        (host.to_string(), path.to_string())
    } else if let Some(rest) = remote.strip_prefix("ssh://") {
        let (authority, path) = rest.split_once('/')?;
        let host = authority.rsplit('@').next()?;
        let host = host.split(':').next()?;
        (host.to_string(), path.to_string())
    } else if let Some((user_host, path)) = remote.split_once(':') {
        if user_host.contains('/') || path.starts_with("//") {
            return None;
        }
        let host = user_host.rsplit('@').next()?;
        (host.to_string(), path.trim_start_matches('/').to_string())
    } else {
        return None;
    };
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let url = format!("https://{host}/{path}");
    (!host.is_empty() && !path.is_empty() && is_web_url(&url)).then_some(url)
}

/// The AWS console's host for a region (China and GovCloud have their own),
/// or `None` for a region that is not a plain region name.
fn console_host(region: &str) -> Option<String> {
    let plain = !region.is_empty()
        && region.len() <= 32
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !plain {
        return None;
    }
    Some(if region.starts_with("cn-") {
        "console.amazonaws.cn".into()
    } else if region.starts_with("us-gov-") {
        "console.amazonaws-us-gov.com".into()
    } else {
        format!("{region}.console.aws.amazon.com")
    })
}

/// A stack's page in the CloudFormation console.
pub fn console_stack_url(region: &str, stack: &str) -> Option<String> {
    let host = console_host(region)?;
    Some(format!(
        "https://{host}/cloudformation/home?region={region}#/stacks/stackinfo?stackId={}",
        url_component(stack)
    ))
}

/// A pipeline execution's page in the CodePipeline console (the pipeline's
/// page without an execution id).
pub fn console_pipeline_url(region: &str, pipeline: &str, execution: &str) -> Option<String> {
    let host = console_host(region)?;
    let base = format!(
        "https://{host}/codesuite/codepipeline/pipelines/{}",
        url_component(pipeline)
    );
    Some(if execution.is_empty() {
        format!("{base}/view?region={region}")
    } else {
        format!(
            "{base}/executions/{}/timeline?region={region}",
            url_component(execution)
        )
    })
}

/// Percent-encodes everything but unreserved characters.
fn url_component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM UTC` for seconds since the Unix epoch.
pub fn utc_timestamp(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let secs = unix_seconds % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

const CSS: &str = "\
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--card:#fff}\
*{box-sizing:border-box}\
body{margin:0;font:14px/1.45 -apple-system,BlinkMacSystemFont,\"Segoe UI\",Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg)}\
header{background:#24292f;color:#fff;padding:16px 24px}\
header h1{margin:0 0 4px;font-size:20px}\
header a{color:#9ecbff}\
header .meta,header .totals{margin:2px 0;color:#d0d7de}\
main{padding:8px 24px 24px}\
h2{font-size:17px;margin:20px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}\
h3{margin:0 0 6px;font-size:16px;overflow-wrap:anywhere}\
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:rgba(175,184,193,.2);padding:1px 4px;border-radius:4px;overflow-wrap:anywhere}\
.cards{display:flex;flex-wrap:wrap;gap:8px;align-items:stretch}\
.step{align-self:center;font-size:22px;color:var(--muted)}\
.card{background:var(--card);border:1px solid var(--line);border-top:4px solid #8c959f;border-radius:6px;padding:10px 12px;width:250px}\
.card.sync-synced{border-top-color:#1a7f37}.card.sync-outofsync{border-top-color:#bf8700}.card.sync-unknown{border-top-color:#cf222e}\
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 8px;margin:6px 0 0}\
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}\
i{font-style:normal}\
.badge{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600;border:1px solid}\
.b-synced,.b-healthy{background:#dafbe1;color:#116329;border-color:#1a7f37}\
.b-outofsync,.b-missing{background:#fff8c5;color:#6a4300;border-color:#bf8700}\
.b-progressing{background:#ddf4ff;color:#0a3069;border-color:#0969da}\
.b-degraded,.b-unknown{background:#ffebe9;color:#82071e;border-color:#cf222e}\
.behind{color:#6a4300;font-weight:600;margin:4px 0}\
.want{color:#6a4300}\
.quiet{color:var(--muted)}\
.error{color:#82071e;overflow-wrap:anywhere}\
.route{font-size:15px}.arrow{color:var(--muted)}\
details{background:var(--card);border:1px solid var(--line);border-radius:6px;margin:6px 0;padding:6px 10px}\
summary{cursor:pointer}\
table{border-collapse:collapse;margin:8px 0;width:100%}\
th,td{border:1px solid var(--line);padding:3px 6px;text-align:left;vertical-align:top}\
th{background:var(--bg)}\
footer{color:var(--muted);padding:0 24px 24px;font-size:12px}\
";

#[cfg(test)]
mod tests;
