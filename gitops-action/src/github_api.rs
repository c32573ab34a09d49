//! The HTTP transport of the GitHub REST client: generic JSON requests plus
//! the pull-request, comment and issue calls the commands make. What the
//! answers mean, when to retry and where a redirect may go are decided in
//! [`gitops_core::github`].
//!
//! Configuration comes from `GITHUB_API_URL`, `GITHUB_TOKEN` and
//! `GITHUB_REPOSITORY`. The token is sent as a bearer token and never
//! printed. Each attempt has a connect and a total timeout; redirects are
//! followed only to the API's own origin.

use std::time::Duration;

use gitops_core::github::{
    encode, judge, resolve, retry_after, retry_wait, same_origin, Answer, Issue, IssueComment,
    Judged, Settings,
};
pub use gitops_core::github::{ApiError, PullRequest, Upserted};
use serde_json::{json, Value};

/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one attempt may take in all.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed (to the same origin only) per attempt.
const MAX_REDIRECTS: u32 = 3;
/// At most this many pages of comments are read (10,000 comments).
const MAX_COMMENT_PAGES: u32 = 100;

/// A GitHub REST client for one repository.
#[derive(Clone, Debug)]
pub struct GitHub {
    settings: Settings,
    agent: ureq::Agent,
}

impl GitHub {
    /// A client configured from `GITHUB_API_URL`, `GITHUB_TOKEN` and `GITHUB_REPOSITORY`.
    pub fn from_env() -> anyhow::Result<Self> {
        let settings = Settings::from_lookup(|name| std::env::var(name).ok())?;
        crate::output::add_secret(&settings.token);
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(ATTEMPT_TIMEOUT))
            // Redirects are followed by hand, to the same origin only.
            .max_redirects(0)
            .user_agent("gitops-aws")
            .build();
        Ok(Self {
            settings,
            agent: config.into(),
        })
    }

    /// The repository, `owner/name`.
    pub fn repo(&self) -> &str {
        &self.settings.repo
    }

    /// `GET path` (relative to the API root), as JSON.
    pub fn get(&self, path: &str) -> Result<Value, ApiError> {
        self.send("GET", path, None).map(|(_, v)| v)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.send("POST", path, Some(body)).map(|(_, v)| v)
    }

    /// `PATCH path` with a JSON body.
    pub fn patch(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.send("PATCH", path, Some(body)).map(|(_, v)| v)
    }

    /// `method path`, retried as [`gitops_core::github::judge`] and
    /// [`retry_wait`] say; the final status and the answer as JSON.
    fn send(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ApiError> {
        let s = &self.settings;
        let mut attempt = 1;
        loop {
            let answer = self.attempt(method, path, body);
            match judge(method, path, &s.base, &[&s.token], answer) {
                Judged::Done(status, v) => return Ok((status, v)),
                Judged::Retry(e, asked) => match retry_wait(attempt, asked) {
                    Some(wait) => std::thread::sleep(wait),
                    None => return Err(e),
                },
                Judged::Failed(e) => return Err(e),
            }
            attempt += 1;
        }
    }

    /// One attempt, following redirects to the same origin; a transport
    /// failure as text.
    fn attempt(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        let auth = format!("Bearer {}", self.settings.token);
        let mut url = format!("{}{path}", self.settings.base);
        for _ in 0..=MAX_REDIRECTS {
            let result = match (method, body) {
                ("GET", _) => self
                    .agent
                    .get(&url)
                    .header("Authorization", &auth)
                    .header("Accept", "application/vnd.github+json")
                    .header("X-GitHub-Api-Version", "2022-11-28")
                    .call(),
                (_, body) => {
                    let req = match method {
                        "POST" => self.agent.post(&url),
                        "PUT" => self.agent.put(&url),
                        _ => self.agent.patch(&url),
                    };
                    req.header("Authorization", &auth)
                        .header("Accept", "application/vnd.github+json")
                        .header("X-GitHub-Api-Version", "2022-11-28")
                        .send_json(body.cloned().unwrap_or(Value::Null))
                }
            };
            let mut response = result.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let location = header("location").map(|l| resolve(&url, &l));
            if (300..400).contains(&status) {
                if let Some(to) = location
                    .as_deref()
                    .filter(|to| same_origin(to, &self.settings.base))
                {
                    url = to.to_string();
                    continue;
                }
            }
            let retry_after = header("retry-after").and_then(|v| retry_after(&v));
            let rate_limit_exhausted = header("x-ratelimit-remaining").as_deref() == Some("0");
            let text = response.body_mut().read_to_string().map_err(|e| {
                format!("answered {status}, then the answer could not be read: {e}")
            })?;
            return Ok(Answer {
                status,
                retry_after,
                rate_limit_exhausted,
                location,
                text,
            });
        }
        Err(format!("more than {MAX_REDIRECTS} redirects"))
    }

    /// `method path`, the answer read by `parse`; an answer it cannot read
    /// is an error with the status the server really gave.
    fn send_expecting<T>(
        &self,
        method: &'static str,
        path: &str,
        body: &Value,
        what: &str,
        parse: impl Fn(&Value) -> Option<T>,
    ) -> Result<T, ApiError> {
        let (status, v) = self.send(method, path, Some(body))?;
        parse(&v).ok_or_else(|| ApiError {
            method,
            path: path.to_string(),
            status: Some(status),
            message: format!("the answer has no {what}"),
        })
    }

    /// The open pull request whose head is `branch` in this repository, if any.
    pub fn find_open_pr(&self, branch: &str) -> Result<Option<PullRequest>, ApiError> {
        let head = format!("{}:{branch}", self.settings.owner());
        let v = self.get(&format!(
            "/repos/{}/pulls?head={}&state=open",
            self.repo(),
            encode(&head)
        ))?;
        Ok(v.as_array()
            .and_then(|a| a.first())
            .and_then(PullRequest::from_json))
    }

    /// Opens a pull request from `head` into `base`.
    pub fn create_pr(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<PullRequest, ApiError> {
        self.send_expecting(
            "POST",
            &format!("/repos/{}/pulls", self.repo()),
            &json!({"title": title, "head": head, "base": base, "body": body}),
            "pull request number",
            PullRequest::from_json,
        )
    }

    /// Changes the title and body of pull request `number`.
    pub fn update_pr(&self, number: u64, title: &str, body: &str) -> Result<PullRequest, ApiError> {
        self.send_expecting(
            "PATCH",
            &format!("/repos/{}/pulls/{number}", self.repo()),
            &json!({"title": title, "body": body}),
            "pull request number",
            PullRequest::from_json,
        )
    }

    /// The repository's default branch.
    pub fn default_branch(&self) -> Result<String, ApiError> {
        let v = self.get(&format!("/repos/{}", self.repo()))?;
        Ok(v["default_branch"].as_str().unwrap_or("main").to_string())
    }

    /// Keeps exactly one comment holding `marker` on issue or pull request
    /// `number`: edits the first such comment in place, or posts one.
    pub fn upsert_comment(
        &self,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<(Upserted, IssueComment), ApiError> {
        let mut existing = None;
        for page in 1..=MAX_COMMENT_PAGES {
            let v = self.get(&format!(
                "/repos/{}/issues/{number}/comments?per_page=100&page={page}",
                self.repo()
            ))?;
            let items = v.as_array().cloned().unwrap_or_default();
            existing = items
                .iter()
                .filter_map(IssueComment::from_json)
                .find(|c| c.body.contains(marker));
            if existing.is_some() || items.len() < 100 {
                break;
            }
        }
        let (upserted, path, method) = match existing {
            Some(c) => (
                Upserted::Updated,
                format!("/repos/{}/issues/comments/{}", self.repo(), c.id),
                "PATCH",
            ),
            None => (
                Upserted::Created,
                format!("/repos/{}/issues/{number}/comments", self.repo()),
                "POST",
            ),
        };
        let body = json!({ "body": body });
        let comment =
            self.send_expecting(method, &path, &body, "comment id", IssueComment::from_json)?;
        Ok((upserted, comment))
    }

    /// The open issues (not pull requests) carrying `label`, at most 100.
    pub fn open_issues_with_label(&self, label: &str) -> Result<Vec<Issue>, ApiError> {
        let v = self.get(&format!(
            "/repos/{}/issues?labels={}&state=open&per_page=100",
            self.repo(),
            encode(label)
        ))?;
        Ok(Issue::list_from_json(&v))
    }

    /// Opens an issue with `labels` (GitHub creates a missing label).
    pub fn create_issue(
        &self,
        title: &str,
        body: &str,
        labels: &[&str],
    ) -> Result<Issue, ApiError> {
        self.send_expecting(
            "POST",
            &format!("/repos/{}/issues", self.repo()),
            &json!({"title": title, "body": body, "labels": labels}),
            "issue number",
            Issue::from_json,
        )
    }

    /// Replaces the body of issue `number`.
    pub fn update_issue_body(&self, number: u64, body: &str) -> Result<(), ApiError> {
        let path = format!("/repos/{}/issues/{number}", self.repo());
        self.patch(&path, &json!({ "body": body })).map(|_| ())
    }

    /// Closes issue `number` as completed.
    pub fn close_issue(&self, number: u64) -> Result<(), ApiError> {
        let path = format!("/repos/{}/issues/{number}", self.repo());
        let change = json!({"state": "closed", "state_reason": "completed"});
        self.patch(&path, &change).map(|_| ())
    }
}
