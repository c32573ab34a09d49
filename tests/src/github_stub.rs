//! A stand-in for GitHub's REST API on 127.0.0.1: canned JSON answers per
//! route, and a record of every request, for tests of commands that call
//! the API (pull requests, comments, issues).
//!
//! Behind the canned routes, the stub keeps issue comments in memory, as
//! GitHub does: `GET /repos/{repo}/issues/{n}/comments` (with `per_page`
//! and `page`), `POST` to the same path, and `PATCH` and `GET`
//! `/repos/{repo}/issues/comments/{id}`. A canned route for one of those
//! paths wins, so a test can make posting fail with 403, say. See
//! [`GitHubStub::comments`] and [`GitHubStub::seed_comment`].
//!
//! ```no_run
//! use gitops_e2e::github_stub::{GitHubStub, Route};
//! use serde_json::json;
//!
//! let stub = GitHubStub::start(vec![
//!     Route::new("GET", "/repos/acme/app/pulls", 200, json!([])),
//!     Route::new("POST", "/repos/acme/app/pulls", 201, json!({"number": 7, "html_url": "https://github.com/acme/app/pull/7"})),
//! ]);
//! // run the binary with `.envs(stub.env())`, then:
//! let posts: Vec<_> = stub.requests().into_iter().filter(|r| r.method == "POST").collect();
//! # let _ = posts;
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One canned answer.
#[derive(Debug, Clone)]
pub struct Route {
    /// `GET`, `POST`, `PATCH`, ...
    pub method: String,
    /// The path to match. Without `?`, the query string of a request is
    /// ignored; with one, path and query must match exactly.
    pub path: String,
    /// The HTTP status to answer.
    pub status: u16,
    /// The JSON body to answer.
    pub body: serde_json::Value,
    /// Extra headers to answer with, such as `Retry-After` or `Location`.
    pub headers: Vec<(String, String)>,
    /// Answer only the first this many matching requests; later ones fall
    /// through to the next routes (`None`: every one).
    pub times: Option<usize>,
    /// The raw body to answer instead of `body` (not JSON, say).
    pub raw: Option<String>,
}

impl Route {
    /// A route answering `status` with `body` to `method path`.
    pub fn new(method: &str, path: &str, status: u16, body: serde_json::Value) -> Self {
        Self {
            method: method.to_string(),
            path: path.to_string(),
            status,
            body,
            headers: Vec::new(),
            times: None,
            raw: None,
        }
    }

    /// This route answers only the first `n` matching requests.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    /// Adds a header to the answer.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Answers `text` as the body, as it is (instead of the JSON body).
    pub fn raw_body(mut self, text: &str) -> Self {
        self.raw = Some(text.to_string());
        self
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        if self.method != method {
            return false;
        }
        if self.path.contains('?') {
            self.path == target
        } else {
            self.path == target.split('?').next().unwrap_or(target)
        }
    }
}

/// A request the stub received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The method.
    pub method: String,
    /// The path with its query string.
    pub path: String,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Recorded {
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running stub, stopped on drop.
#[derive(Debug)]
pub struct GitHubStub {
    /// `http://127.0.0.1:PORT`: use as `GITHUB_API_URL`.
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    comments: Arc<Mutex<Vec<Comment>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The token [`GitHubStub::env`] sets, so tests can check it is never printed.
pub const TOKEN: &str = "ghs_stubtoken0123456789";

/// The repository [`GitHubStub::env`] sets.
pub const REPOSITORY: &str = "acme/app";

impl GitHubStub {
    /// Starts a stub on a free port that answers with the first matching
    /// route, or 404 `{"message": "Not Found"}` when none matches.
    pub fn start(routes: Vec<Route>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("a local address"));
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let comments: Arc<Mutex<Vec<Comment>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, stopped) = (requests.clone(), stop.clone());
        let store = comments.clone();
        let thread = std::thread::spawn(move || {
            let mut used = vec![0usize; routes.len()];
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                serve(stream, &routes, &mut used, &store, &reqs);
            }
        });
        Self {
            url,
            requests,
            comments,
            stop,
            thread: Some(thread),
        }
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }

    /// The comments of issue (or pull request) `issue`, oldest first.
    pub fn comments(&self, issue: u64) -> Vec<Comment> {
        self.comments
            .lock()
            .expect("lock")
            .iter()
            .filter(|c| c.issue == issue)
            .cloned()
            .collect()
    }

    /// Adds a comment to issue `issue`, as if someone had written it; returns its id.
    pub fn seed_comment(&self, issue: u64, body: &str) -> u64 {
        let mut all = self.comments.lock().expect("lock");
        let id = 1000 + all.len() as u64;
        all.push(Comment {
            id,
            issue,
            body: body.to_string(),
        });
        id
    }

    /// `GITHUB_API_URL` (this stub), `GITHUB_TOKEN` ([`TOKEN`]) and
    /// `GITHUB_REPOSITORY` ([`REPOSITORY`]).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GITHUB_API_URL", self.url.clone()),
            ("GITHUB_TOKEN", TOKEN.to_string()),
            ("GITHUB_REPOSITORY", REPOSITORY.to_string()),
        ]
    }
}

impl Drop for GitHubStub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop up.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An issue comment the stub holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Its id.
    pub id: u64,
    /// The issue or pull request number.
    pub issue: u64,
    /// Its body.
    pub body: String,
}

/// The in-memory issue-comments API: `None` when `path` is not one of its routes.
fn comments_api(
    store: &Mutex<Vec<Comment>>,
    method: &str,
    target: &str,
    body: &str,
) -> Option<(u16, serde_json::Value)> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    let new_body = || {
        serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["body"].as_str().map(str::to_string))
    };
    let as_json = |c: &Comment| serde_json::json!({"id": c.id, "body": c.body, "html_url": format!("https://github.com/{REPOSITORY}/issues/{}#issuecomment-{}", c.issue, c.id)});
    let mut all = store.lock().expect("lock");
    match (method, segs.as_slice()) {
        ("GET", ["repos", _, _, "issues", n, "comments"]) => {
            let n: u64 = n.parse().ok()?;
            let per_page = param("per_page").unwrap_or(30).clamp(1, 100);
            let page = param("page").unwrap_or(1).max(1);
            let list: Vec<_> = all
                .iter()
                .filter(|c| c.issue == n)
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(as_json)
                .collect();
            Some((200, serde_json::Value::Array(list)))
        }
        ("POST", ["repos", _, _, "issues", n, "comments"]) => {
            let issue: u64 = n.parse().ok()?;
            let Some(text) = new_body() else {
                return Some((422, serde_json::json!({"message": "body is missing"})));
            };
            let id = 1000 + all.len() as u64;
            all.push(Comment {
                id,
                issue,
                body: text,
            });
            Some((201, as_json(&all[all.len() - 1])))
        }
        (m @ ("PATCH" | "GET"), ["repos", _, _, "issues", "comments", id]) => {
            let id: u64 = id.parse().ok()?;
            let Some(c) = all.iter_mut().find(|c| c.id == id) else {
                return Some((404, serde_json::json!({"message": "Not Found"})));
            };
            if m == "PATCH" {
                let Some(text) = new_body() else {
                    return Some((422, serde_json::json!({"message": "body is missing"})));
                };
                c.body = text;
            }
            Some((200, as_json(c)))
        }
        _ => None,
    }
}

/// Reads one request from `stream`, records it, then answers it (recording
/// first, so a test that saw the answer also sees the record).
fn serve(
    stream: TcpStream,
    routes: &[Route],
    used: &mut [usize],
    comments: &Mutex<Vec<Comment>>,
    record: &Mutex<Vec<Recorded>>,
) -> Option<()> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body).ok()?;
    } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let found = routes
        .iter()
        .enumerate()
        .find(|(i, r)| r.matches(&method, &path) && r.times.is_none_or(|n| used[*i] < n));
    let mut extra = String::new();
    let (status, answer) = match found {
        Some((i, r)) => {
            used[i] += 1;
            for (k, v) in &r.headers {
                extra.push_str(&format!("{k}: {v}\r\n"));
            }
            (
                r.status,
                r.raw.clone().unwrap_or_else(|| r.body.to_string()),
            )
        }
        None => match comments_api(comments, &method, &path, &text) {
            Some((status, v)) => (status, v.to_string()),
            None => (404, r#"{"message":"Not Found"}"#.to_string()),
        },
    };
    record.lock().expect("lock").push(Recorded {
        method,
        path,
        headers,
        body: text,
    });
    let mut out = stream;
    let _ = write!(
        out,
        "HTTP/1.1 {status} Stub\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = out.flush();
    Some(())
}
