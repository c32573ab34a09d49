//! A loopback TCP proxy that holds back every response of the server behind
//! it, to make an emulator slow: long enough to interrupt a command in the
//! middle of an AWS call.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running proxy, stopped on drop.
#[derive(Debug)]
pub struct DelayProxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    delay_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DelayProxy {
    /// Forwards to `upstream` (`http://127.0.0.1:PORT`), delaying the first
    /// bytes of every response by `delay`.
    pub fn start(upstream: &str, delay: Duration) -> DelayProxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let delay_ms = Arc::new(AtomicU64::new(delay.as_millis() as u64));
        let stop = Arc::new(AtomicBool::new(false));
        let (delay, stopping) = (delay_ms.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let delay = delay.clone();
                std::thread::spawn(move || relay(client, server, delay));
            }
        });
        DelayProxy {
            endpoint,
            delay_ms,
            stop,
            thread: Some(thread),
        }
    }

    /// Changes the delay (for connections already open too).
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}

fn relay(client: TcpStream, server: TcpStream, delay: Arc<AtomicU64>) {
    let (Ok(mut client_r), Ok(mut server_w)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    // Requests go through at once.
    let up = std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = client_r.read(&mut buf) {
            if n == 0 || server_w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server_w.shutdown(Shutdown::Write);
    });
    // Responses wait: a read after a quiet spell starts a new response.
    let (mut server_r, mut client_w) = (server, client);
    let mut buf = [0u8; 16 * 1024];
    let mut last: Option<Instant> = None;
    while let Ok(n) = server_r.read(&mut buf) {
        if n == 0 {
            break;
        }
        if last.is_none_or(|t| t.elapsed() > Duration::from_millis(50)) {
            std::thread::sleep(Duration::from_millis(delay.load(Ordering::SeqCst)));
        }
        if client_w.write_all(&buf[..n]).is_err() {
            break;
        }
        last = Some(Instant::now());
    }
    let _ = client_w.shutdown(Shutdown::Write);
    let _ = up.join();
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
