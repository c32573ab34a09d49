//! Ctrl-C (SIGINT) and SIGTERM for the commands that change AWS or leave
//! change sets: the first signal cancels a token (the core starts nothing
//! new and cleans up what it created), and the command exits 130 (SIGINT)
//! or 143 (SIGTERM) once the cleanup is done.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use gitops_core::fanout::CancellationToken;

/// A watch on SIGINT and SIGTERM.
#[derive(Debug, Clone)]
pub struct Interrupt {
    token: CancellationToken,
    /// 0 until a signal arrives; then 130 (SIGINT) or 143 (SIGTERM).
    code: Arc<AtomicU8>,
}

impl Interrupt {
    /// Starts watching (inside a tokio runtime). `what` says what happens
    /// on the first signal, for the line printed then.
    pub fn watch(what: &'static str) -> Self {
        let me = Interrupt {
            token: CancellationToken::new(),
            code: Arc::new(AtomicU8::new(0)),
        };
        let watcher = me.clone();
        // Registered now, before any work starts, so that no signal is missed.
        let mut signals = Signals::new();
        tokio::spawn(async move {
            let (name, code) = signals.next().await;
            watcher.code.store(code, Ordering::SeqCst);
            eprintln!("interrupted ({name}): {what}");
            watcher.token.cancel();
            loop {
                let (name, _) = signals.next().await;
                eprintln!("{name} again: still cleaning up, so that nothing is left behind in AWS");
            }
        });
        me
    }

    /// The token cancelled on the first signal.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// The exit code once interrupted: 130 for SIGINT, 143 for SIGTERM.
    pub fn exit_code(&self) -> Option<ExitCode> {
        match self.code.load(Ordering::SeqCst) {
            0 => None,
            c => Some(ExitCode::from(c)),
        }
    }
}

/// The SIGINT and SIGTERM streams.
struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next SIGINT or SIGTERM, with its name and exit code; never
    /// resolves when neither can be watched.
    async fn next(&mut self) -> (&'static str, u8) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s.as_mut() {
                    Some(s) => {
                        if s.recv().await.is_none() {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = recv(&mut self.int) => ("SIGINT", 130),
                () = recv(&mut self.term) => ("SIGTERM", 143),
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            ("Ctrl-C", 130)
        }
    }
}
