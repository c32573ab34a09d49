//! Headless Chromium for the status board's browser test: a screenshot and
//! the DOM after parsing (`--dump-dom`), with no network of its own.
//!
//! Like [`crate::moto`], a missing browser skips the test locally and fails
//! it when `CI=true`. `scripts/test` installs Debian's `chromium` where it
//! can (see `ensure_chromium` in scripts/tools.sh).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The names a Chromium binary goes by, in the order they are looked for.
const NAMES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// A headless Chromium.
#[derive(Debug)]
pub struct Browser {
    bin: PathBuf,
}

impl Browser {
    /// `$GITOPS_CHROMIUM`, else the first of [`NAMES`] on PATH; `None` with
    /// a note when there is none (a panic under `CI=true`).
    pub fn find() -> Option<Browser> {
        let from_env = std::env::var_os("GITOPS_CHROMIUM").map(PathBuf::from);
        let found = from_env
            .filter(|p| p.is_file())
            .or_else(|| NAMES.iter().find_map(|n| crate::tools::find(n)));
        if let Some(bin) = found {
            return Some(Browser { bin });
        }
        let how = "scripts/test installs it as root with `apt-get install -y chromium`; \
                   otherwise install your distribution's chromium package, or set GITOPS_CHROMIUM";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("headless Chromium is not installed: {how}");
        }
        eprintln!("SKIPPED: headless Chromium not found: {how}");
        None
    }

    /// The binary.
    pub fn path(&self) -> &Path {
        &self.bin
    }

    /// Runs Chromium headless on `page` with `args`, in a fresh profile,
    /// with background networking off; kills it after two minutes.
    fn run(&self, page: &Path, args: &[String]) -> Output {
        let profile = tempfile::tempdir().expect("a temporary profile");
        let mut child = Command::new(&self.bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .arg(format!("file://{}", page.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        // Read both pipes while waiting, so a full pipe never blocks it.
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let out = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stdout, &mut b);
            b
        });
        let err = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stderr, &mut b);
            b
        });
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for chromium") {
                break status;
            }
            if start.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within 2 minutes");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Output {
            status,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        }
    }

    /// A PNG of `page` at `width`×`height` CSS pixels, written to `png`.
    pub fn screenshot(&self, page: &Path, png: &Path, width: u32, height: u32) {
        let _ = std::fs::remove_file(png);
        let out = self.run(
            page,
            &[
                format!("--screenshot={}", png.display()),
                format!("--window-size={width},{height}"),
            ],
        );
        assert!(
            png.is_file(),
            "chromium wrote no screenshot ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The DOM of `page` after parsing (and any script), serialised.
    pub fn dump_dom(&self, page: &Path) -> String {
        let out = self.run(page, &["--dump-dom".to_string()]);
        assert!(
            out.status.success(),
            "chromium --dump-dom failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("the DOM is UTF-8")
    }
}

/// The width and height of a PNG, from its header.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || &bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
    Some((w, h))
}
