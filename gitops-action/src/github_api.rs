//! The HTTP transport of the GitHub REST client: one generic `call` of the
//! [`Call`]s [`gitops_core::github`] builds (what to send, how to read the
//! answer), which also decides what the answers mean, when to retry and
//! where a redirect may go.
//!
//! Configuration comes from `GITHUB_API_URL`, `GITHUB_TOKEN` and
//! `GITHUB_REPOSITORY`. The token is sent as a bearer token and never
//! printed. Each attempt has a connect and a total timeout; redirects are
//! followed only to the API's own origin.

use std::time::Duration;

use gitops_core::github::{
    judge, resolve, retry_after, retry_wait, same_origin, Answer, Call, CommentPage, IssueComment,
    Judged, Settings, MAX_COMMENT_PAGES,
};
pub use gitops_core::github::{ApiError, PullRequest, Upserted};
use serde_json::Value;

/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one attempt may take in all.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed (to the same origin only) per attempt.
const MAX_REDIRECTS: u32 = 3;

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

    /// Where and as whom it calls; its methods build the [`Call`]s.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Makes `call` and reads its answer.
    pub fn call<T>(&self, call: Call<T>) -> Result<T, ApiError> {
        let (status, v) = self.send(call.method, &call.path, call.body.as_ref())?;
        call.read(status, &v)
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
            let v = self.call(self.settings.comments_page(number, page))?;
            match CommentPage::search(&v, marker) {
                CommentPage::More => {}
                CommentPage::Found(c) => {
                    existing = Some(c);
                    break;
                }
                _ => break,
            }
        }
        let (upserted, call) = self
            .settings
            .upsert_comment(number, existing.as_ref(), body);
        Ok((upserted, self.call(call)?))
    }
}
