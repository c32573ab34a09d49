//! Progress lines for long tests. libtest captures what `println!` and
//! `eprintln!` print in a test, so these write to the process's standard
//! error directly: they show while `cargo test` runs, one whole line at a
//! time, each starting with `progress:` (never mistaken for cargo's or
//! libtest's own lines).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

/// Prints `progress: TEST: MESSAGE` on standard error, past the capture.
pub fn progress(test: &str, message: &str) {
    let line = format!("progress: {test}: {message}\n");
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.flush();
}

/// Runs `cmd` to the end, collecting standard output and standard error
/// (interleaved by line) and passing the lines `show` picks to
/// [`progress`], with the seconds since the start. Standard input is
/// closed.
pub fn run_with_progress(
    test: &str,
    cmd: &mut Command,
    show: impl Fn(&str) -> Option<String> + Send + Sync,
) -> (ExitStatus, String) {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let log = std::sync::Mutex::new(String::new());
    let forward = |reader: Box<dyn std::io::Read + Send>| {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if let Some(m) = show(&line) {
                progress(test, &format!("{:>4}s {m}", started.elapsed().as_secs()));
            }
            let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
            l.push_str(&line);
            l.push('\n');
        }
    };
    let forward = &forward;
    std::thread::scope(|s| {
        s.spawn(move || forward(Box::new(stdout)));
        s.spawn(move || forward(Box::new(stderr)));
    });
    let status = child.wait().expect("the command ends");
    progress(
        test,
        &format!("{:>4}s done ({status})", started.elapsed().as_secs()),
    );
    (status, log.into_inner().unwrap_or_else(|e| e.into_inner()))
}
