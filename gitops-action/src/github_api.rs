//! A small client for GitHub's REST API: generic JSON requests plus the
//! pull-request calls `promote` and `rollback` make.
//!
//! Configuration comes from the variables GitHub Actions sets:
//! `GITHUB_API_URL` (default `https://api.github.com`), `GITHUB_TOKEN` and
//! `GITHUB_REPOSITORY` (`owner/name`). The token is sent as a bearer token
//! and never printed, not even in `Debug` output, nor when a server echoes
//! it: every message taken from an answer has it redacted.
//!
//! Calls are retried on 5xx, 429 and secondary rate limits, at most
//! [`ATTEMPTS`] times with a growing wait that honours `Retry-After`. Each
//! attempt has a connect and a total timeout. Redirects are followed only to
//! the API's own origin (scheme, host and port), so the token never goes to
//! another host.

use std::time::Duration;

use serde_json::{json, Value};

/// A failed API call: the method, the path, the HTTP status (when there was
/// an answer), GitHub's message and a hint at what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// `GET`, `POST`, ...
    pub method: &'static str,
    /// The path, such as `/repos/acme/pay/pulls`.
    pub path: String,
    /// The HTTP status, `None` when the server could not be reached.
    pub status: Option<u16>,
    /// GitHub's message (with its validation errors), or the transport error.
    pub message: String,
}

// Not every caller needs every accessor yet; later ones (PR comments, issues) will.
#[allow(dead_code)]
impl ApiError {
    /// Whether GitHub answered 403 Forbidden (missing permissions, or a
    /// secondary rate limit).
    pub fn is_forbidden(&self) -> bool {
        self.status == Some(403)
    }

    /// Whether GitHub answered 404 Not Found.
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }

    fn hint(&self) -> &'static str {
        match self.status {
            None => "check GITHUB_API_URL and the network",
            Some(401) => "GITHUB_TOKEN is missing, invalid or expired",
            Some(403) => "the token lacks a permission: give the job `permissions: { contents: write, pull-requests: write }` and allow GitHub Actions to create pull requests (repository Settings > Actions > General); or a rate limit was hit, so retry later",
            Some(404) => "the repository or pull request was not found, or the token cannot see it; check GITHUB_REPOSITORY",
            Some(422) => "GitHub rejected the request as invalid",
            Some(200..=399) => "the server at GITHUB_API_URL did not answer as GitHub does; check GITHUB_API_URL",
            Some(s) if s >= 500 => "GitHub had an internal error; retry later",
            Some(_) => "see GitHub's message",
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(
                f,
                "GitHub API {} {} answered {s}: {}; {}",
                self.method,
                self.path,
                self.message.trim_end_matches('.'),
                self.hint()
            ),
            None => write!(
                f,
                "GitHub API {} {} failed: {}; {}",
                self.method,
                self.path,
                self.message,
                self.hint()
            ),
        }
    }
}

impl std::error::Error for ApiError {}

/// A pull request, as far as the tool needs it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PullRequest {
    /// Its number.
    pub number: u64,
    /// Its web page.
    pub url: String,
}

impl PullRequest {
    fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            number: v["number"].as_u64()?,
            url: v["html_url"].as_str().unwrap_or_default().to_string(),
        })
    }
}

/// A GitHub REST client for one repository.
#[derive(Clone)]
pub struct GitHub {
    base: String,
    token: String,
    repo: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("base", &self.base)
            .field("repo", &self.repo)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Attempts per call, the first included.
pub const ATTEMPTS: u32 = 4;
/// The wait before the second attempt; it doubles for each next one.
const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between attempts. A server asking (`Retry-After`) for
/// longer is not waited for: the call fails with its answer.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one attempt may take in all.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed (to the same origin only) per attempt.
const MAX_REDIRECTS: u32 = 3;

/// One attempt's answer, before it is judged.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    rate_limit_exhausted: bool,
    location: Option<String>,
    text: String,
}

impl GitHub {
    /// A client for `repo` (`owner/name`) at API root `base`, authenticated with `token`.
    pub fn new(base: &str, token: &str, repo: &str) -> Self {
        crate::output::add_secret(token);
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(ATTEMPT_TIMEOUT))
            // Redirects are followed by hand, to the same origin only.
            .max_redirects(0)
            .user_agent("gitops-aws")
            .build();
        Self {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            repo: repo.to_string(),
            agent: config.into(),
        }
    }

    /// A client configured from `GITHUB_API_URL`, `GITHUB_TOKEN` and `GITHUB_REPOSITORY`.
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let token = var("GITHUB_TOKEN").ok_or_else(|| {
            anyhow::anyhow!(
                "GITHUB_TOKEN is not set; in a workflow, add `env: {{ GITHUB_TOKEN: ${{{{ github.token }}}} }}` to the step"
            )
        })?;
        let repo = var("GITHUB_REPOSITORY")
            .filter(|r| r.split_once('/').is_some_and(|(o, n)| !o.is_empty() && !n.is_empty()))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "GITHUB_REPOSITORY is not set to `owner/name`; GitHub Actions sets it, elsewhere set it yourself"
                )
            })?;
        let base = var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
        Ok(Self::new(&base, &token, &repo))
    }

    /// The repository, `owner/name`.
    #[allow(dead_code)]
    pub fn repo(&self) -> &str {
        &self.repo
    }

    /// The repository's owner.
    pub fn owner(&self) -> &str {
        self.repo
            .split_once('/')
            .map(|(o, _)| o)
            .unwrap_or(&self.repo)
    }

    /// `GET path` (relative to the API root), as JSON.
    pub fn get(&self, path: &str) -> Result<Value, ApiError> {
        self.request("GET", path, None)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.request("POST", path, Some(body))
    }

    /// `PATCH path` with a JSON body.
    pub fn patch(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.request("PATCH", path, Some(body))
    }

    fn request(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        self.send(method, path, body).map(|(_, v)| v)
    }

    /// `method path`, retried as the module says; the final status and the
    /// answer as JSON (`Null` when empty).
    fn send(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ApiError> {
        let fail = |status: Option<u16>, message: &str| ApiError {
            method,
            path: path.split('?').next().unwrap_or(path).to_string(),
            status,
            message: gitops_core::text::redact(message, &[&self.token]),
        };
        let mut attempt = 1;
        loop {
            let result = self.attempt(method, path, body);
            let (error, wait) = match result {
                Err(e) => (fail(None, &e), None),
                Ok(a) if (200..300).contains(&a.status) => {
                    if a.text.trim().is_empty() {
                        return Ok((a.status, Value::Null));
                    }
                    return serde_json::from_str(&a.text)
                        .map(|v| (a.status, v))
                        .map_err(|_| {
                            fail(
                                Some(a.status),
                                &format!(
                                    "the answer is not JSON: {}",
                                    gitops_core::text::truncate_ellipsis(a.text.trim(), 200)
                                ),
                            )
                        });
                }
                Ok(a) if (300..400).contains(&a.status) => {
                    let to = a.location.as_deref().unwrap_or("(no Location)");
                    return Err(fail(
                        Some(a.status),
                        &format!(
                            "a redirect to {}, not followed: it leaves {} (the token is only sent there)",
                            host_of(to),
                            host_of(&self.base)
                        ),
                    ));
                }
                Ok(a) => {
                    let value = serde_json::from_str(&a.text)
                        .unwrap_or_else(|_| Value::String(a.text.clone()));
                    let message = error_message(&value);
                    let retry = match a.status {
                        429 | 500..=599 => true,
                        403 => {
                            a.retry_after.is_some()
                                || a.rate_limit_exhausted
                                || message
                                    .to_ascii_lowercase()
                                    .contains("secondary rate limit")
                        }
                        _ => false,
                    };
                    let error = fail(Some(a.status), &message);
                    if !retry {
                        return Err(error);
                    }
                    (error, Some(a.retry_after))
                }
            };
            let Some(asked) = wait else {
                return Err(error);
            };
            let wait = asked.unwrap_or(FIRST_WAIT * 2u32.pow(attempt - 1));
            if attempt >= ATTEMPTS || wait > MAX_WAIT {
                return Err(error);
            }
            std::thread::sleep(wait);
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
        let auth = format!("Bearer {}", self.token);
        let mut url = format!("{}{path}", self.base);
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
                if let Some(to) = location.as_deref().filter(|to| same_origin(to, &self.base)) {
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
        let head = format!("{}:{branch}", self.owner());
        let v = self.get(&format!(
            "/repos/{}/pulls?head={}&state=open",
            self.repo,
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
            &format!("/repos/{}/pulls", self.repo),
            &json!({"title": title, "head": head, "base": base, "body": body}),
            "pull request number",
            PullRequest::from_json,
        )
    }

    /// Changes the title and body of pull request `number`.
    pub fn update_pr(&self, number: u64, title: &str, body: &str) -> Result<PullRequest, ApiError> {
        self.send_expecting(
            "PATCH",
            &format!("/repos/{}/pulls/{number}", self.repo),
            &json!({"title": title, "body": body}),
            "pull request number",
            PullRequest::from_json,
        )
    }

    /// The repository's default branch.
    pub fn default_branch(&self) -> Result<String, ApiError> {
        let v = self.get(&format!("/repos/{}", self.repo))?;
        Ok(v["default_branch"].as_str().unwrap_or("main").to_string())
    }
}

/// An issue or pull-request comment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IssueComment {
    /// Its id.
    pub id: u64,
    /// Its body.
    pub body: String,
    /// Its web page.
    pub url: String,
}

impl IssueComment {
    fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            id: v["id"].as_u64()?,
            body: v["body"].as_str().unwrap_or_default().to_string(),
            url: v["html_url"].as_str().unwrap_or_default().to_string(),
        })
    }
}

/// Whether [`GitHub::upsert_comment`] created or updated the comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// A new comment was posted.
    Created,
    /// The existing comment was edited.
    Updated,
}

/// At most this many pages of comments are read (10,000 comments).
const MAX_COMMENT_PAGES: u32 = 100;

/// Issue comments: the pull-request comment of `gitops plan`.
impl GitHub {
    /// Every comment of issue or pull request `number`, oldest first, reading
    /// `GET /repos/{repo}/issues/{number}/comments` page by page.
    pub fn list_issue_comments(&self, number: u64) -> Result<Vec<IssueComment>, ApiError> {
        let mut all = Vec::new();
        for page in 1..=MAX_COMMENT_PAGES {
            let v = self.get(&format!(
                "/repos/{}/issues/{number}/comments?per_page=100&page={page}",
                self.repo
            ))?;
            let items = v.as_array().cloned().unwrap_or_default();
            all.extend(items.iter().filter_map(IssueComment::from_json));
            if items.len() < 100 {
                break;
            }
        }
        Ok(all)
    }

    /// Posts a new comment on issue or pull request `number`.
    pub fn create_issue_comment(&self, number: u64, body: &str) -> Result<IssueComment, ApiError> {
        self.send_expecting(
            "POST",
            &format!("/repos/{}/issues/{number}/comments", self.repo),
            &json!({ "body": body }),
            "comment id",
            IssueComment::from_json,
        )
    }

    /// Replaces the body of comment `id`.
    pub fn update_issue_comment(&self, id: u64, body: &str) -> Result<IssueComment, ApiError> {
        self.send_expecting(
            "PATCH",
            &format!("/repos/{}/issues/comments/{id}", self.repo),
            &json!({ "body": body }),
            "comment id",
            IssueComment::from_json,
        )
    }

    /// Keeps exactly one comment holding `marker` on issue or pull request
    /// `number`: edits the first such comment in place, or posts one.
    pub fn upsert_comment(
        &self,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<(Upserted, IssueComment), ApiError> {
        let existing = self
            .list_issue_comments(number)?
            .into_iter()
            .find(|c| c.body.contains(marker));
        match existing {
            Some(c) => Ok((Upserted::Updated, self.update_issue_comment(c.id, body)?)),
            None => Ok((Upserted::Created, self.create_issue_comment(number, body)?)),
        }
    }
}

/// An issue, as far as the tool needs it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Issue {
    /// Its number.
    pub number: u64,
    /// Its title.
    pub title: String,
    /// Its body (empty when it has none).
    pub body: String,
    /// Its web page.
    pub url: String,
}

impl Issue {
    fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            number: v["number"].as_u64()?,
            title: v["title"].as_str().unwrap_or_default().to_string(),
            body: v["body"].as_str().unwrap_or_default().to_string(),
            url: v["html_url"].as_str().unwrap_or_default().to_string(),
        })
    }
}

/// The issue calls `gitops drift --open-issues` makes.
impl GitHub {
    /// The open issues (not pull requests) carrying `label`, at most 100.
    pub fn open_issues_with_label(&self, label: &str) -> Result<Vec<Issue>, ApiError> {
        let v = self.get(&format!(
            "/repos/{}/issues?labels={}&state=open&per_page=100",
            self.repo,
            encode(label)
        ))?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter(|i| i.get("pull_request").is_none())
                    .filter_map(Issue::from_json)
                    .collect()
            })
            .unwrap_or_default())
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
            &format!("/repos/{}/issues", self.repo),
            &json!({"title": title, "body": body, "labels": labels}),
            "issue number",
            Issue::from_json,
        )
    }

    /// Replaces the body of issue `number`.
    pub fn update_issue_body(&self, number: u64, body: &str) -> Result<(), ApiError> {
        self.patch(
            &format!("/repos/{}/issues/{number}", self.repo),
            &json!({"body": body}),
        )
        .map(|_| ())
    }

    /// Closes issue `number` as completed.
    pub fn close_issue(&self, number: u64) -> Result<(), ApiError> {
        self.patch(
            &format!("/repos/{}/issues/{number}", self.repo),
            &json!({"state": "closed", "state_reason": "completed"}),
        )
        .map(|_| ())
    }
}

/// GitHub's `message`, with the details of its `errors` list.
fn error_message(v: &Value) -> String {
    let mut msg = match v {
        Value::String(s) => s.chars().take(300).collect(),
        _ => v["message"].as_str().unwrap_or("(no message)").to_string(),
    };
    if let Some(errors) = v["errors"].as_array() {
        let details: Vec<String> = errors
            .iter()
            .map(|e| match e["message"].as_str() {
                Some(m) => m.to_string(),
                None => e.to_string(),
            })
            .collect();
        if !details.is_empty() {
            msg.push_str(&format!(" ({})", details.join("; ")));
        }
    }
    msg
}

use gitops_core::text::url_host as host_of;

/// `scheme://host:port` of a URL, lower case.
fn origin(url: &str) -> Option<String> {
    let (scheme, _) = url.split_once("://")?;
    let host = host_of(url).to_ascii_lowercase();
    let scheme = scheme.to_ascii_lowercase();
    let host = match (scheme.as_str(), host.rsplit_once(':')) {
        (_, Some((_, port))) if port.chars().all(|c| c.is_ascii_digit()) => host,
        ("https", _) => format!("{host}:443"),
        ("http", _) => format!("{host}:80"),
        _ => host,
    };
    Some(format!("{scheme}://{host}"))
}

/// Whether `url` is on the same scheme, host and port as `base`.
fn same_origin(url: &str, base: &str) -> bool {
    origin(url).is_some_and(|o| Some(o) == origin(base))
}

/// A `Location` header made absolute against the URL that answered it.
fn resolve(from: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let Some((scheme, _)) = from.split_once("://") else {
        return location.to_string();
    };
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    let root = format!("{scheme}://{}", host_of(from));
    if location.starts_with('/') {
        format!("{root}{location}")
    } else {
        let dir = from.rsplit_once('/').map(|(d, _)| d).unwrap_or(&root);
        format!("{dir}/{location}")
    }
}

/// A `Retry-After` in seconds (the HTTP-date form is not used by GitHub).
fn retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_status_and_hint() {
        let e = ApiError {
            method: "POST",
            path: "/repos/a/b/pulls".into(),
            status: Some(403),
            message: error_message(&json!({"message": "Resource not accessible by integration"})),
        };
        assert!(e.is_forbidden());
        let text = e.to_string();
        assert!(text.starts_with("GitHub API POST /repos/a/b/pulls answered 403: Resource not accessible by integration; the token lacks a permission"), "{text}");
        let m = error_message(
            &json!({"message": "Validation Failed", "errors": [{"message": "A pull request already exists for a:b."}]}),
        );
        assert_eq!(
            m,
            "Validation Failed (A pull request already exists for a:b.)"
        );
        assert_eq!(
            encode("acme:gitops/promote-a-to-b"),
            "acme%3Agitops%2Fpromote-a-to-b"
        );
    }

    #[test]
    fn redirects_stay_on_the_origin() {
        let base = "https://api.github.com";
        assert!(same_origin("https://api.github.com/repos/a/b", base));
        assert!(same_origin("https://API.github.com:443/x", base));
        assert!(!same_origin("http://api.github.com/x", base));
        assert!(!same_origin("https://evil.example/x", base));
        assert!(!same_origin("https://api.github.com.evil.example/x", base));
        assert!(!same_origin(
            "http://127.0.0.1:8081/x",
            "http://127.0.0.1:8080"
        ));
        assert_eq!(
            resolve("http://h:1/repos/a/b/pulls", "/repos/c/d/pulls"),
            "http://h:1/repos/c/d/pulls"
        );
        assert_eq!(resolve("http://h:1/a/b", "c"), "http://h:1/a/c");
        assert_eq!(resolve("https://h/a", "//other/x"), "https://other/x");
        assert_eq!(retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn the_token_is_never_shown() {
        let gh = GitHub::new("http://x/", "secret-token", "acme/pay");
        let shown = format!("{gh:?}");
        assert!(!shown.contains("secret-token"));
        assert_eq!(gh.owner(), "acme");
        assert_eq!(gh.base, "http://x");
    }
}
