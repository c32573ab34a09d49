//! A throwaway AWS emulator: `moto_server` (PyPI `moto[server]==5.2.1`) on 127.0.0.1.
//!
//! Each [`Moto`] is its own server on a free port, so tests stay isolated
//! and can run in parallel. Where moto is not installed the helper skips the
//! test locally, and fails it when `CI=true`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server, killed on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Where moto's recorder writes the requests (see [`Moto::record`]).
    recording: tempfile::TempDir,
}

/// Where `moto_server` is: on PATH, or in the venv the test script makes.
pub fn moto_server() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/moto_server");
    if venv.is_file() {
        return Some(venv);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("moto_server"))
        .find(|p| p.is_file())
}

impl Moto {
    /// Starts a server, or returns `None` (with a note on stderr) when moto is
    /// missing outside CI. Panics when it cannot start, or is missing in CI.
    pub fn start() -> Option<Moto> {
        let Some(bin) = moto_server() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("moto_server is not installed; the test script (scripts/test) installs moto[server]==5.2.1");
            }
            eprintln!(
                "SKIPPED: moto_server not found; run scripts/test to install moto[server]==5.2.1"
            );
            return None;
        };
        let recording = tempfile::tempdir().expect("a temporary folder");
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .env(
                "MOTO_RECORDER_FILEPATH",
                recording.path().join("requests.jsonl"),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(i) = line.find("Running on http://127.0.0.1:") {
                    let rest = &line[i + "Running on http://127.0.0.1:".len()..];
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(port);
                    }
                }
                // keep draining so the server never blocks on a full pipe
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                panic!("moto_server did not print its port within 30 s");
            }
        };
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            recording,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while moto.get("/moto-api/").map(|(s, _)| s) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "moto_server did not become ready in 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(moto)
    }

    /// Environment variables that point the SDK (and the `gitops` binary) at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_SESSION_TOKEN", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            // moto answers unimplemented calls with HTTP 500, which the
            // standard retry would repeat five times.
            ("AWS_MAX_ATTEMPTS", "2".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ]
    }

    /// Starts (again) recording the AWS calls made from now on, forgetting
    /// earlier ones (moto's recorder); read them with [`Moto::operations`].
    pub fn record(&self) {
        let _ = self.request("POST", "/moto-api/recorder/stop-recording", "", &[]);
        let _ = std::fs::write(self.recording.path().join("requests.jsonl"), "");
        let started = self.request("POST", "/moto-api/recorder/start-recording", "", &[]);
        assert_eq!(started.map(|(s, _)| s), Some(200), "moto's recorder starts");
    }

    /// The operations called since [`Moto::record`], in order, such as
    /// `DescribeStacks` or `CodePipeline_20150709.ListPipelineExecutions`.
    pub fn operations(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.recording.path().join("requests.jsonl"))
            .unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                if let Some(t) = v["headers"]["X-Amz-Target"].as_str() {
                    return t.to_string();
                }
                let body = v["body"].as_str().unwrap_or_default();
                let body = if v["body_encoded"].as_bool() == Some(true) {
                    decode_base64(body)
                } else {
                    body.to_string()
                };
                body.split('&')
                    .find_map(|kv| kv.strip_prefix("Action="))
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{} {}", v["method"], v["url"]))
            })
            .collect()
    }

    /// A plain HTTP GET on the server; `(status, body)`.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        self.request("GET", path, "", &[])
    }

    /// A form-encoded AWS query-protocol call (CloudFormation, STS), for
    /// tests that inspect or change state behind the tool's back.
    pub fn query(&self, params: &[(&str, &str)]) -> String {
        self.query_service("cloudformation", params)
    }

    /// [`Moto::query`] for another query-protocol service, such as `ec2`.
    pub fn query_service(&self, service: &str, params: &[(&str, &str)]) -> String {
        let body: Vec<String> = params
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    gitops_core::github::encode(k),
                    gitops_core::github::encode(v)
                )
            })
            .collect();
        let auth = format!("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0");
        let auth = auth.as_str();
        let (_, body) = self
            .request(
                "POST",
                "/",
                &body.join("&"),
                &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Authorization", auth),
                ],
            )
            .expect("moto answers");
        body
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Option<(u16, String)> {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).ok()?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).ok()?;
        let status = resp.split_whitespace().nth(1)?.parse().ok()?;
        let body = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((status, body))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn decode_base64(s: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let Some(v) = ALPHABET.iter().position(|&a| a == c) else {
            continue;
        };
        bits = (bits << 6) | v as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
