//! The calls the commands make, as data: each [`Call`] says what to send
//! and how to read the answer, so the binary's transport has one generic
//! `call`.

use serde_json::{json, Value};

use super::{encode, ApiError, Issue, IssueComment, PullRequest, Settings, Upserted};

/// Comments read per page when looking for a marked one.
pub const COMMENTS_PER_PAGE: usize = 100;
/// At most this many pages of comments are read (10,000 comments).
pub const MAX_COMMENT_PAGES: u32 = 100;

/// One call of the REST API: the method, the path (relative to the API
/// root), the JSON body, and how a success's answer is read.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Call<T> {
    /// `GET`, `POST` or `PATCH`.
    pub method: &'static str,
    /// The path, with its query.
    pub path: String,
    /// The JSON body (none for `GET`).
    pub body: Option<Value>,
    /// What the answer must hold, for the error when it does not.
    what: &'static str,
    /// Reads the answer.
    parse: fn(&Value) -> Option<T>,
}

impl<T> Call<T> {
    fn new(method: &'static str, path: String, body: Option<Value>, what: &'static str) -> Self
    where
        T: FromAnswer,
    {
        Self {
            method,
            path,
            body,
            what,
            parse: T::from_answer,
        }
    }

    /// Reads the answer of a success (`status`, `v`); one it cannot read is
    /// an error with the status the server really gave.
    pub fn read(&self, status: u16, v: &Value) -> Result<T, ApiError> {
        (self.parse)(v).ok_or_else(|| ApiError {
            method: self.method,
            path: self.path.clone(),
            status: Some(status),
            message: format!("the answer has no {}", self.what),
        })
    }
}

/// What a call's answer is read into.
pub trait FromAnswer: Sized {
    /// `None` when the answer does not hold it.
    fn from_answer(v: &Value) -> Option<Self>;
}

impl FromAnswer for PullRequest {
    fn from_answer(v: &Value) -> Option<Self> {
        Self::from_json(v)
    }
}

impl FromAnswer for Option<PullRequest> {
    fn from_answer(v: &Value) -> Option<Self> {
        Some(v.as_array()?.first().and_then(PullRequest::from_json))
    }
}

impl FromAnswer for IssueComment {
    fn from_answer(v: &Value) -> Option<Self> {
        Self::from_json(v)
    }
}

impl FromAnswer for Issue {
    fn from_answer(v: &Value) -> Option<Self> {
        Self::from_json(v)
    }
}

impl FromAnswer for Vec<Issue> {
    fn from_answer(v: &Value) -> Option<Self> {
        Some(Issue::list_from_json(v))
    }
}

impl FromAnswer for () {
    fn from_answer(_: &Value) -> Option<Self> {
        Some(())
    }
}

/// The repository's default branch (`main` when the answer does not say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultBranch(pub String);

impl FromAnswer for DefaultBranch {
    fn from_answer(v: &Value) -> Option<Self> {
        Some(Self(v["default_branch"].as_str().unwrap_or("main").into()))
    }
}

/// One page of comments, searched for a marker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommentPage {
    /// The first comment holding the marker.
    Found(IssueComment),
    /// Not here, and the page was full: read the next one.
    More,
    /// Not here, and this was the last page.
    End,
}

impl CommentPage {
    /// Searches one page (a JSON array of comments) for `marker`.
    pub fn search(v: &Value, marker: &str) -> Self {
        let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
        let found = items
            .iter()
            .filter_map(IssueComment::from_json)
            .find(|c| c.body.contains(marker));
        match found {
            Some(c) => Self::Found(c),
            None if items.len() < COMMENTS_PER_PAGE => Self::End,
            None => Self::More,
        }
    }
}

impl Settings {
    fn at(&self, rest: &str) -> String {
        format!("/repos/{}{rest}", self.repo)
    }

    /// The open pull request whose head is `branch` in this repository, if any.
    pub fn find_open_pr(&self, branch: &str) -> Call<Option<PullRequest>> {
        let head = encode(&format!("{}:{branch}", self.owner()));
        let path = self.at(&format!("/pulls?head={head}&state=open"));
        Call::new("GET", path, None, "list")
    }

    /// Opens a pull request from `head` into `base`.
    pub fn create_pr(&self, head: &str, base: &str, title: &str, body: &str) -> Call<PullRequest> {
        let body = json!({"title": title, "head": head, "base": base, "body": body});
        Call::new("POST", self.at("/pulls"), Some(body), "pull request number")
    }

    /// Changes the title and body of pull request `number`.
    pub fn update_pr(&self, number: u64, title: &str, body: &str) -> Call<PullRequest> {
        let body = json!({"title": title, "body": body});
        let path = self.at(&format!("/pulls/{number}"));
        Call::new("PATCH", path, Some(body), "pull request number")
    }

    /// The repository's default branch.
    pub fn default_branch(&self) -> Call<DefaultBranch> {
        Call::new("GET", self.at(""), None, "default branch")
    }

    /// Page `page` (from 1) of the comments of issue or pull request `number`.
    pub fn comments_page(&self, number: u64, page: u32) -> Call<Value> {
        let path = self.at(&format!(
            "/issues/{number}/comments?per_page={COMMENTS_PER_PAGE}&page={page}"
        ));
        Call::new("GET", path, None, "list")
    }

    /// Edits `existing` to `body`, or posts `body` on issue or pull
    /// request `number` when there is none.
    pub fn upsert_comment(
        &self,
        number: u64,
        existing: Option<&IssueComment>,
        body: &str,
    ) -> (Upserted, Call<IssueComment>) {
        let body = Some(json!({ "body": body }));
        match existing {
            Some(c) => {
                let path = self.at(&format!("/issues/comments/{}", c.id));
                (
                    Upserted::Updated,
                    Call::new("PATCH", path, body, "comment id"),
                )
            }
            None => {
                let path = self.at(&format!("/issues/{number}/comments"));
                (
                    Upserted::Created,
                    Call::new("POST", path, body, "comment id"),
                )
            }
        }
    }

    /// The open issues (not pull requests) carrying `label`, at most 100.
    pub fn open_issues_with_label(&self, label: &str) -> Call<Vec<Issue>> {
        let path = self.at(&format!(
            "/issues?labels={}&state=open&per_page=100",
            encode(label)
        ));
        Call::new("GET", path, None, "list")
    }

    /// Opens an issue with `labels` (GitHub creates a missing label).
    pub fn create_issue(&self, title: &str, body: &str, labels: &[&str]) -> Call<Issue> {
        let body = json!({"title": title, "body": body, "labels": labels});
        Call::new("POST", self.at("/issues"), Some(body), "issue number")
    }

    /// Comments on issue `number` (the answer is not read).
    pub fn comment(&self, number: u64, body: &str) -> Call<()> {
        let path = self.at(&format!("/issues/{number}/comments"));
        Call::new("POST", path, Some(json!({ "body": body })), "comment")
    }

    /// Replaces the body of issue `number`.
    pub fn update_issue_body(&self, number: u64, body: &str) -> Call<()> {
        let path = self.at(&format!("/issues/{number}"));
        Call::new("PATCH", path, Some(json!({ "body": body })), "issue")
    }

    /// Closes issue `number` as completed.
    pub fn close_issue(&self, number: u64) -> Call<()> {
        let path = self.at(&format!("/issues/{number}"));
        let change = json!({"state": "closed", "state_reason": "completed"});
        Call::new("PATCH", path, Some(change), "issue")
    }
}

impl FromAnswer for Value {
    fn from_answer(v: &Value) -> Option<Self> {
        Some(v.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn settings() -> Settings {
        Settings::new("https://api.example.com/", "t", "acme/pay")
    }

    #[test]
    fn calls_name_the_path_and_body() {
        let s = settings();
        let c = s.find_open_pr("gitops/promote-dev-qa");
        assert_eq!(
            (c.method, c.path.as_str()),
            (
                "GET",
                "/repos/acme/pay/pulls?head=acme%3Agitops%2Fpromote-dev-qa&state=open"
            )
        );
        let c = s.close_issue(7);
        assert_eq!(
            (c.method, c.path.as_str()),
            ("PATCH", "/repos/acme/pay/issues/7")
        );
        assert_eq!(
            c.body,
            Some(json!({"state": "closed", "state_reason": "completed"}))
        );
        let existing = IssueComment {
            id: 9,
            body: String::new(),
            url: String::new(),
        };
        let (how, c) = s.upsert_comment(3, Some(&existing), "hi");
        assert_eq!(
            (how, c.path.as_str()),
            (Upserted::Updated, "/repos/acme/pay/issues/comments/9")
        );
        let (how, c) = s.upsert_comment(3, None, "hi");
        assert_eq!(
            (how, c.method, c.path.as_str()),
            (
                Upserted::Created,
                "POST",
                "/repos/acme/pay/issues/3/comments"
            )
        );
    }

    #[test]
    fn answers_are_read_or_the_error_says_what_is_missing() {
        let s = settings();
        let pr = s.create_pr("h", "main", "t", "b");
        let read = pr
            .read(201, &json!({"number": 4, "html_url": "u"}))
            .unwrap();
        assert_eq!(read.number, 4);
        let e = pr.read(201, &json!({})).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (Some(201), "the answer has no pull request number")
        );
        assert_eq!(s.find_open_pr("b").read(200, &json!([])).unwrap(), None);
        assert_eq!(s.default_branch().read(200, &json!({})).unwrap().0, "main");
    }

    #[test]
    fn comment_pages_are_read_until_the_marker_or_a_short_page() {
        let comment = |id: u64, body: &str| json!({"id": id, "body": body});
        let full: Vec<Value> = (0..100).map(|i| comment(i, "other")).collect();
        assert_eq!(
            CommentPage::search(&Value::Array(full), "<!-- m -->"),
            CommentPage::More
        );
        let short = json!([comment(1, "other"), comment(2, "x <!-- m -->")]);
        assert!(
            matches!(CommentPage::search(&short, "<!-- m -->"), CommentPage::Found(c) if c.id == 2)
        );
        assert_eq!(
            CommentPage::search(&json!([]), "<!-- m -->"),
            CommentPage::End
        );
    }
}
