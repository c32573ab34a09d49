//! The one bounded fan-out of the crate: run one task per item (an
//! environment, a policy), at most `N` at a time per key (an account and
//! region), and give every item a result, in input order.
//!
//! A task that panics does not take the others down, and is not lost: its
//! item gets [`TaskError::Panicked`], which the commands report as that
//! item's failure (exit 1). With a [`CancellationToken`], a cancelled run
//! (Ctrl-C, SIGTERM) starts no new task: the items still waiting get
//! [`TaskError::NotStarted`]; the tasks already running go on (they may
//! watch the token themselves).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;
pub use tokio_util::sync::CancellationToken;

use crate::model::Environment;

/// Why an item has no result of its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// Its task panicked (a bug); the message is the panic's.
    #[error("its task stopped unexpectedly (a bug; please report it): {0}")]
    Panicked(String),
    /// The run was cancelled before the item started.
    #[error("not started: the run was interrupted")]
    NotStarted,
}

/// Where an environment's AWS calls go: its account (pinned with `account`,
/// or the one of its `role-arn`; empty for the credentials' own) and its
/// region. [`FanOut`] bounds the work per location, as AWS throttles per
/// account and region.
pub type Location = (String, String);

/// The location of `env`.
pub fn location(env: &Environment) -> Location {
    let account = env
        .account
        .clone()
        .or_else(|| {
            env.role_arn
                .as_deref()
                .and_then(|arn| arn.split(':').nth(4))
                .filter(|a| !a.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_default();
    (account, env.region.clone())
}

/// A bounded fan-out: at most `per_key` tasks at a time for each key.
#[derive(Debug, Clone)]
pub struct FanOut {
    per_key: usize,
    cancel: Option<CancellationToken>,
}

impl FanOut {
    /// At most `per_key` (at least 1) tasks at a time per key.
    pub fn new(per_key: usize) -> Self {
        Self {
            per_key: per_key.max(1),
            cancel: None,
        }
    }

    /// Starts no new task once `token` is cancelled.
    pub fn with_cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Runs `work` on every item, each in its own task, at most `per_key`
    /// at a time for items of the same `key`. Results come back in input
    /// order; a panic or a cancellation is that item's [`TaskError`].
    pub async fn run<I, K, T, F, Fut>(
        &self,
        items: Vec<I>,
        key: impl Fn(&I) -> K,
        work: F,
    ) -> Vec<Result<T, TaskError>>
    where
        K: Ord,
        T: Send + 'static,
        F: Fn(I) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let mut limits: BTreeMap<K, Arc<Semaphore>> = BTreeMap::new();
        let mut set = tokio::task::JoinSet::new();
        let mut index = HashMap::new();
        let n = items.len();
        for (i, item) in items.into_iter().enumerate() {
            let limit = limits
                .entry(key(&item))
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_key)))
                .clone();
            let cancel = self.cancel.clone();
            let task = work(item);
            let handle = set.spawn(async move {
                let permit = match &cancel {
                    Some(c) => tokio::select! {
                        biased;
                        () = c.cancelled() => None,
                        p = limit.acquire_owned() => p.ok(),
                    },
                    None => limit.acquire_owned().await.ok(),
                };
                if permit.is_none() || cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
                    return None;
                }
                let out = task.await;
                drop(permit);
                Some(out)
            });
            index.insert(handle.id(), i);
        }
        let mut out: Vec<Option<Result<T, TaskError>>> = (0..n).map(|_| None).collect();
        while let Some(joined) = set.join_next_with_id().await {
            let (id, result) = match joined {
                Ok((id, Some(v))) => (id, Ok(v)),
                Ok((id, None)) => (id, Err(TaskError::NotStarted)),
                Err(e) => (e.id(), Err(TaskError::Panicked(panic_message(e)))),
            };
            if let Some(slot) = index.get(&id).and_then(|i| out.get_mut(*i)) {
                *slot = Some(result);
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(TaskError::Panicked("its task was lost".into()))))
            .collect()
    }
}

fn panic_message(e: tokio::task::JoinError) -> String {
    if e.is_cancelled() {
        return "it was cancelled".into();
    }
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into()),
        Err(e) => e.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn keeps_order_and_reports_a_panic_as_that_items_failure() {
        let out = FanOut::new(2)
            .run(
                vec![1, 2, 3],
                |_| (),
                |i| async move {
                    if i == 2 {
                        panic!("boom in {i}");
                    }
                    i * 10
                },
            )
            .await;
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], Ok(10));
        assert!(matches!(&out[1], Err(TaskError::Panicked(m)) if m.contains("boom in 2")));
        assert_eq!(out[2], Ok(30));
    }

    #[tokio::test]
    async fn bounds_each_key_separately() {
        let running: Arc<BTreeMap<&str, AtomicUsize>> =
            Arc::new([("a", AtomicUsize::new(0)), ("b", AtomicUsize::new(0))].into());
        let peak: Arc<BTreeMap<&str, AtomicUsize>> =
            Arc::new([("a", AtomicUsize::new(0)), ("b", AtomicUsize::new(0))].into());
        let items: Vec<&'static str> = ["a", "b"].repeat(6);
        let out = FanOut::new(2)
            .run(
                items,
                |k| *k,
                |k| {
                    let (running, peak) = (running.clone(), peak.clone());
                    async move {
                        let now = running[k].fetch_add(1, Ordering::SeqCst) + 1;
                        peak[k].fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        running[k].fetch_sub(1, Ordering::SeqCst);
                    }
                },
            )
            .await;
        assert!(out.iter().all(Result::is_ok));
        assert_eq!(peak["a"].load(Ordering::SeqCst), 2);
        assert_eq!(peak["b"].load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_cancelled_run_starts_nothing_new() {
        let token = CancellationToken::new();
        let t = token.clone();
        let out = FanOut::new(1)
            .with_cancel(token)
            .run(
                vec![1, 2, 3],
                |_| (),
                move |i| {
                    let t = t.clone();
                    async move {
                        t.cancel();
                        i
                    }
                },
            )
            .await;
        assert_eq!(out[0], Ok(1));
        assert_eq!(out[1], Err(TaskError::NotStarted));
        assert_eq!(out[2], Err(TaskError::NotStarted));
    }

    #[test]
    fn location_is_account_and_region() {
        let source = crate::source::Memory::new("x")
            .with_file(
                "gitops.yaml",
                "version: 1\nid: a/b\nstack: {template: t.yaml}\n",
            )
            .with_file("t.yaml", "Resources:\n  T: {Type: AWS::SNS::Topic}\n")
            .with_file("environments/dev/environment.yaml", "region: eu-west-1\n");
        let repo = crate::Repository::load(&source).unwrap();
        let mut env = repo.environment("dev").unwrap().clone();
        assert_eq!(location(&env), (String::new(), "eu-west-1".into()));
        env.role_arn = Some("arn:aws:iam::111122223333:role/deploy".into());
        assert_eq!(location(&env), ("111122223333".into(), "eu-west-1".into()));
        env.account = Some("444455556666".into());
        assert_eq!(location(&env).0, "444455556666");
    }
}
