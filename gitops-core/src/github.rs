//! The pure half of a GitHub REST client: the answers' types, what a failed
//! call says, when a call is retried and how long to wait, where a redirect
//! may go, query encoding, and each call the commands make ([`Call`]: its
//! method, path and body, and how its answer is read). The HTTP transport
//! lives in the binary.
//!
//! The token is never printed: [`judge`] redacts it from every message taken
//! from an answer, and [`Settings`] hides it from `Debug`.
//!
//! ```
//! use gitops_core::github::{same_origin, encode, retry_wait};
//! use std::time::Duration;
//!
//! assert!(same_origin("https://API.github.com:443/x", "https://api.github.com"));
//! assert!(!same_origin("https://api.github.com.evil.example/x", "https://api.github.com"));
//! assert_eq!(encode("acme:gitops/promote"), "acme%3Agitops%2Fpromote");
//! assert_eq!(retry_wait(1, None), Some(Duration::from_secs(1)));
//! assert_eq!(retry_wait(1, Some(Duration::from_secs(60))), None);
//! ```

use std::time::Duration;

use serde_json::Value;

mod calls;
pub use calls::{
    Call, CommentPage, DefaultBranch, FromAnswer, COMMENTS_PER_PAGE, MAX_COMMENT_PAGES,
};

use crate::text::url_host as host_of;

/// Attempts per call, the first included.
pub const ATTEMPTS: u32 = 4;
/// The wait before the second attempt; it doubles for each next one.
pub const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between attempts. A server asking (`Retry-After`) for
/// longer is not waited for: the call fails with its answer.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// The API root when `GITHUB_API_URL` is not set.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

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

/// Why [`Settings::from_lookup`] cannot configure a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// `GITHUB_TOKEN` is not set.
    #[error("GITHUB_TOKEN is not set; in a workflow, add `env: {{ GITHUB_TOKEN: ${{{{ github.token }}}} }}` to the step")]
    NoToken,
    /// `GITHUB_REPOSITORY` is not `owner/name`.
    #[error("GITHUB_REPOSITORY is not set to `owner/name`; GitHub Actions sets it, elsewhere set it yourself")]
    NoRepository,
}

/// Where and as whom a client calls: the API root, the token and the
/// repository (`owner/name`).
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// The API root, without a trailing `/`.
    pub base: String,
    /// The bearer token.
    pub token: String,
    /// The repository, `owner/name`.
    pub repo: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("base", &self.base)
            .field("repo", &self.repo)
            .field("token", &crate::text::REDACTED)
            .finish()
    }
}

impl Settings {
    /// Settings for `repo` at API root `base` (a trailing `/` is dropped).
    pub fn new(base: &str, token: &str, repo: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            repo: repo.to_string(),
        }
    }

    /// Settings from the variables GitHub Actions sets, read through
    /// `var`: `GITHUB_API_URL` (default [`DEFAULT_API_URL`]), `GITHUB_TOKEN`
    /// and `GITHUB_REPOSITORY`. An empty variable counts as unset.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        let token = var("GITHUB_TOKEN").ok_or(SettingsError::NoToken)?;
        let repo = var("GITHUB_REPOSITORY")
            .filter(|r| {
                r.split_once('/')
                    .is_some_and(|(o, n)| !o.is_empty() && !n.is_empty())
            })
            .ok_or(SettingsError::NoRepository)?;
        let base = var("GITHUB_API_URL").unwrap_or_else(|| DEFAULT_API_URL.into());
        Ok(Self::new(&base, &token, &repo))
    }

    /// The repository's owner.
    pub fn owner(&self) -> &str {
        self.repo
            .split_once('/')
            .map(|(o, _)| o)
            .unwrap_or(&self.repo)
    }
}

/// A pull request, as far as the tool needs it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PullRequest {
    /// Its number.
    pub number: u64,
    /// Its web page.
    pub url: String,
}

impl PullRequest {
    /// Reads GitHub's JSON; `None` without a number.
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            number: v["number"].as_u64()?,
            url: v["html_url"].as_str().unwrap_or_default().to_string(),
        })
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
    /// Reads GitHub's JSON; `None` without an id.
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            id: v["id"].as_u64()?,
            body: v["body"].as_str().unwrap_or_default().to_string(),
            url: v["html_url"].as_str().unwrap_or_default().to_string(),
        })
    }
}

/// Whether an upsert created or updated a comment (exhaustive by nature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// A new comment was posted.
    Created,
    /// The existing comment was edited.
    Updated,
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
    /// Reads GitHub's JSON; `None` without a number.
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            number: v["number"].as_u64()?,
            title: v["title"].as_str().unwrap_or_default().to_string(),
            body: v["body"].as_str().unwrap_or_default().to_string(),
            url: v["html_url"].as_str().unwrap_or_default().to_string(),
        })
    }

    /// The issues (not pull requests) of a `GET .../issues` answer.
    pub fn list_from_json(v: &Value) -> Vec<Self> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter(|i| i.get("pull_request").is_none())
                    .filter_map(Issue::from_json)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One attempt's answer, before it is judged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// `Retry-After`, when given in seconds.
    pub retry_after: Option<Duration>,
    /// Whether `X-RateLimit-Remaining` was `0`.
    pub rate_limit_exhausted: bool,
    /// `Location`, made absolute.
    pub location: Option<String>,
    /// The body.
    pub text: String,
}

/// What to do with an attempt's answer (exhaustive by nature).
#[derive(Debug, Clone, PartialEq)]
pub enum Judged {
    /// A success: the status and the answer as JSON (`Null` when empty).
    Done(u16, Value),
    /// A failure worth another attempt, after the wait the server asked for, if any.
    Retry(ApiError, Option<Duration>),
    /// A failure for good.
    Failed(ApiError),
}

/// Judges one attempt of `method path` against API root `base`: `answer` is
/// the server's answer, or the transport failure as text. `secrets` are
/// redacted from every message.
///
/// 2xx is done (a body that is not JSON is a failure); a redirect that was
/// not followed fails; 429 and 5xx are retried, and 403 when it is a rate
/// limit; anything else fails with GitHub's message.
pub fn judge<S: AsRef<str>>(
    method: &'static str,
    path: &str,
    base: &str,
    secrets: &[S],
    answer: Result<Answer, String>,
) -> Judged {
    let fail = |status: Option<u16>, message: &str| ApiError {
        method,
        path: path.split('?').next().unwrap_or(path).to_string(),
        status,
        message: crate::text::redact(message, secrets),
    };
    let a = match answer {
        // A transport failure is not retried.
        Err(e) => return Judged::Failed(fail(None, &e)),
        Ok(a) => a,
    };
    match a.status {
        200..=299 if a.text.trim().is_empty() => Judged::Done(a.status, Value::Null),
        200..=299 => match serde_json::from_str(&a.text) {
            Ok(v) => Judged::Done(a.status, v),
            Err(_) => Judged::Failed(fail(
                Some(a.status),
                &format!(
                    "the answer is not JSON: {}",
                    crate::text::truncate_ellipsis(a.text.trim(), 200)
                ),
            )),
        },
        300..=399 => {
            let to = a.location.as_deref().unwrap_or("(no Location)");
            Judged::Failed(fail(
                Some(a.status),
                &format!(
                    "a redirect to {}, not followed: it leaves {} (the token is only sent there)",
                    host_of(to),
                    host_of(base)
                ),
            ))
        }
        status => {
            let value =
                serde_json::from_str(&a.text).unwrap_or_else(|_| Value::String(a.text.clone()));
            let message = error_message(&value);
            let retry = match status {
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
            let error = fail(Some(status), &message);
            if retry {
                Judged::Retry(error, a.retry_after)
            } else {
                Judged::Failed(error)
            }
        }
    }
}

/// The wait before attempt `attempt + 1` (`attempt` counts from 1), or
/// `None` to give up: after [`ATTEMPTS`], or when the server `asked` for
/// longer than [`MAX_WAIT`]. Without a request the wait doubles from
/// [`FIRST_WAIT`].
pub fn retry_wait(attempt: u32, asked: Option<Duration>) -> Option<Duration> {
    let wait = asked.unwrap_or(FIRST_WAIT * 2u32.saturating_pow(attempt.saturating_sub(1)));
    (attempt < ATTEMPTS && wait <= MAX_WAIT).then_some(wait)
}

/// GitHub's `message`, with the details of its `errors` list.
pub fn error_message(v: &Value) -> String {
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

/// Whether `url` is on the same scheme, host and port as `base`: the only
/// redirects followed, so the token never goes to another host.
pub fn same_origin(url: &str, base: &str) -> bool {
    origin(url).is_some_and(|o| Some(o) == origin(base))
}

/// A `Location` header made absolute against the URL that answered it.
pub fn resolve(from: &str, location: &str) -> String {
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
pub fn retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
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
    use serde_json::json;

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
        let s = Settings::new("http://x/", "secret-token", "acme/pay");
        let shown = format!("{s:?}");
        assert!(!shown.contains("secret-token"));
        assert_eq!(s.owner(), "acme");
        assert_eq!(s.base, "http://x");
        let echoed = Answer {
            status: 401,
            text: r#"{"message": "bad token secret-token"}"#.into(),
            ..Answer::default()
        };
        let Judged::Failed(e) = judge("GET", "/x?a=1", &s.base, &[&s.token], Ok(echoed)) else {
            panic!("401 is not retried");
        };
        assert_eq!(e.path, "/x");
        assert!(!e.message.contains("secret-token"), "{e}");
    }

    #[test]
    fn settings_come_from_the_environment() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            Settings::from_lookup(vars(&[("GITHUB_REPOSITORY", "a/b")])),
            Err(SettingsError::NoToken)
        );
        assert_eq!(
            Settings::from_lookup(vars(&[("GITHUB_TOKEN", "t"), ("GITHUB_REPOSITORY", "a/")])),
            Err(SettingsError::NoRepository)
        );
        let s = Settings::from_lookup(vars(&[
            ("GITHUB_TOKEN", "t"),
            ("GITHUB_REPOSITORY", "a/b"),
            ("GITHUB_API_URL", ""),
        ]))
        .expect("all three are set");
        assert_eq!(s.base, DEFAULT_API_URL);
    }

    #[test]
    fn what_is_retried_and_how_long_to_wait() {
        let answer = |status, text: &str| {
            Ok(Answer {
                status,
                text: text.into(),
                ..Answer::default()
            })
        };
        let judged = |a| judge("GET", "/p", "http://h", &[""; 0], a);
        assert_eq!(judged(answer(200, " ")), Judged::Done(200, Value::Null));
        assert_eq!(
            judged(answer(201, r#"{"id":1}"#)),
            Judged::Done(201, json!({"id": 1}))
        );
        assert!(matches!(judged(answer(200, "<html>")), Judged::Failed(_)));
        assert!(matches!(judged(answer(502, "")), Judged::Retry(_, None)));
        assert!(matches!(judged(answer(429, "")), Judged::Retry(_, None)));
        assert!(matches!(judged(answer(404, "")), Judged::Failed(_)));
        assert!(matches!(judged(answer(403, "{}")), Judged::Failed(_)));
        assert!(matches!(
            judged(answer(
                403,
                r#"{"message":"You have exceeded a secondary rate limit"}"#
            )),
            Judged::Retry(..)
        ));
        assert!(matches!(
            judged(Err("connection refused".into())),
            Judged::Failed(ApiError { status: None, .. })
        ));
        let moved = Answer {
            status: 302,
            location: Some("https://evil.example/x".into()),
            ..Answer::default()
        };
        let Judged::Failed(e) = judged(Ok(moved)) else {
            panic!("a redirect that was not followed fails");
        };
        assert!(e.message.contains("evil.example"), "{e}");

        assert_eq!(retry_wait(2, None), Some(Duration::from_secs(2)));
        assert_eq!(retry_wait(3, None), Some(Duration::from_secs(4)));
        assert_eq!(retry_wait(ATTEMPTS, None), None);
        assert_eq!(retry_wait(1, Some(MAX_WAIT)), Some(MAX_WAIT));
    }
}
