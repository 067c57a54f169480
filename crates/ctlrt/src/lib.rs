//! Controller runtime: the one loop every controller runs in.
//!
//! A controller supplies a [`Reconciler`] (one pass over the objects it
//! owns, returning an [`Action`] that says when it wants to look again).
//! The runtime decides *when* passes happen: on a change under the watched
//! store prefixes (bursts debounced), at the reconciler's requested wake-up,
//! at least every `resync`, and after a failed pass only once its backoff
//! has elapsed (exponential, capped). Passes run only while the
//! [`LeaderGate`] says this process leads, and each pass carries the
//! gate's [`FencingToken`] so writes can be fenced once a lease backend
//! (issue 15) replaces [`AlwaysLeader`].
//!
//! Shutdown: the runtime never aborts a pass. Cancellation is observed
//! between passes, and a reconciler checks [`Context::should_stop`]
//! between its writes, so a stop lands between writes, never inside one.
//!
//! All timing uses tokio time so tests drive it with `tokio::time::pause`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use stevedore_store::{Revision, Store};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use tokio_util::sync::CancellationToken as Cancel;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a pass asks of the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Action {
    requeue_after: Option<Duration>,
}

impl Action {
    /// Look again after `d` (or sooner, on a change or at resync).
    pub fn requeue(d: Duration) -> Self {
        Action {
            requeue_after: Some(d),
        }
    }

    /// Nothing pending in time: look again on a change or at resync.
    pub fn await_change() -> Self {
        Action::default()
    }

    pub fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// Identifies one term of leadership. A lease backend hands out a strictly
/// larger token per term; a write carrying a stale token must be refused by
/// the store so a deposed leader cannot overwrite its successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(pub u64);

/// Who may run controllers. Single-server mode is [`AlwaysLeader`].
pub trait LeaderGate: Send + Sync + 'static {
    /// Resolves once this process leads, with the term's token.
    fn acquired(&self) -> BoxFuture<'_, FencingToken>;
    /// Whether this process leads right now.
    fn is_leader(&self) -> bool;
    /// Resolves when the current term ends (never, for [`AlwaysLeader`]).
    fn lost(&self) -> BoxFuture<'_, ()>;
}

/// The only server leads forever, in one term.
#[derive(Debug, Default, Clone, Copy)]
pub struct AlwaysLeader;

impl LeaderGate for AlwaysLeader {
    fn acquired(&self) -> BoxFuture<'_, FencingToken> {
        Box::pin(async { FencingToken(0) })
    }
    fn is_leader(&self) -> bool {
        true
    }
    fn lost(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::pending())
    }
}

/// A gate switched by hand: the shape a lease-backed gate takes (a watch
/// of the current term), usable in tests and by anything that learns of
/// leadership from elsewhere.
#[derive(Debug)]
pub struct ManualLeader {
    term: watch::Sender<Option<FencingToken>>,
}

impl Default for ManualLeader {
    fn default() -> Self {
        ManualLeader {
            term: watch::channel(None).0,
        }
    }
}

impl ManualLeader {
    /// Becomes leader with `token`.
    pub fn grant(&self, token: FencingToken) {
        self.term.send_replace(Some(token));
    }
    /// Stops being leader.
    pub fn revoke(&self) {
        self.term.send_replace(None);
    }
}

impl LeaderGate for ManualLeader {
    fn acquired(&self) -> BoxFuture<'_, FencingToken> {
        let mut rx = self.term.subscribe();
        Box::pin(async move {
            loop {
                if let Some(t) = *rx.borrow_and_update() {
                    return t;
                }
                if rx.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        })
    }
    fn is_leader(&self) -> bool {
        self.term.borrow().is_some()
    }
    fn lost(&self) -> BoxFuture<'_, ()> {
        let mut rx = self.term.subscribe();
        Box::pin(async move {
            let _ = rx.wait_for(|t| t.is_none()).await;
        })
    }
}

/// Where change notifications come from.
pub trait Changes: Send + Sync + 'static {
    /// A position to watch from, taken before a pass reads anything.
    fn mark(&self) -> Revision;
    /// Resolves once anything relevant changed after `mark`. Never
    /// resolving is allowed (the runtime still wakes on its timers).
    fn changed_since(&self, mark: Revision) -> BoxFuture<'_, ()>;
}

/// No change notifications: for a controller whose `wake_at` already
/// covers everything that could concern it (the stopped-task collector).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoChanges;

impl Changes for NoChanges {
    fn mark(&self) -> Revision {
        0
    }
    fn changed_since(&self, _mark: Revision) -> BoxFuture<'_, ()> {
        Box::pin(std::future::pending())
    }
}

/// Changes under any of some key prefixes of a store.
pub struct StoreChanges {
    store: Arc<dyn Store>,
    prefixes: Vec<String>,
}

impl StoreChanges {
    pub fn new(store: Arc<dyn Store>, prefixes: impl IntoIterator<Item = String>) -> Self {
        StoreChanges {
            store,
            prefixes: prefixes.into_iter().collect(),
        }
    }
}

impl Changes for StoreChanges {
    fn mark(&self) -> Revision {
        // Store::watch is exclusive of `from`: what commits after the
        // revision the pass starts from is news.
        self.store.current_revision()
    }

    fn changed_since(&self, mark: Revision) -> BoxFuture<'_, ()> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let mut tasks = Vec::new();
        for prefix in &self.prefixes {
            match self.store.watch(prefix, mark) {
                Ok(mut w) => {
                    let tx = tx.clone();
                    tasks.push(tokio::spawn(async move {
                        if let Some(Ok(_)) = w.recv().await {
                            let _ = tx.try_send(());
                        }
                    }));
                }
                // A compacted or closed store: fall back to the timers.
                Err(e) => tracing::debug!(error = %e, prefix, "watch unavailable"),
            }
        }
        drop(tx);
        Box::pin(async move {
            let _abort_on_drop = AbortAll(tasks);
            if rx.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        })
    }
}

/// The watch tasks only read; aborting them drops a subscription, nothing
/// more.
struct AbortAll(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortAll {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// What a pass gets to know about the run it is part of.
#[derive(Clone)]
pub struct Context {
    fencing: FencingToken,
    cancel: CancellationToken,
    gate: Arc<dyn LeaderGate>,
}

impl Context {
    /// A context for driving one pass outside [`run`] (tests, tools).
    pub fn new(
        fencing: FencingToken,
        cancel: CancellationToken,
        gate: Arc<dyn LeaderGate>,
    ) -> Self {
        Context {
            fencing,
            cancel,
            gate,
        }
    }
    /// The leadership term this pass runs in; attach it to writes.
    pub fn fencing_token(&self) -> FencingToken {
        self.fencing
    }
    /// True once the pass should end at its next write boundary: shutdown
    /// began or leadership was lost.
    pub fn should_stop(&self) -> bool {
        self.cancel.is_cancelled() || !self.gate.is_leader()
    }
}

/// One controller's pass logic.
pub trait Reconciler: Send + 'static {
    type Error: std::fmt::Display + Send;
    /// Names the controller in logs.
    fn name(&self) -> &'static str;
    /// One pass. Should check `cx.should_stop()` between writes.
    fn reconcile(
        &mut self,
        cx: &Context,
    ) -> impl Future<Output = Result<Action, Self::Error>> + Send;
}

/// Loop timing.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// A pass happens at least this often while leader.
    pub resync: Duration,
    /// After a wake-up, wait this long so a burst becomes one pass.
    pub debounce: Duration,
    /// First retry delay after a failed pass; doubles per consecutive failure.
    pub backoff_base: Duration,
    /// Retry delay ceiling.
    pub backoff_max: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            resync: Duration::from_secs(1),
            debounce: Duration::from_millis(50),
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// Delay before the next attempt after `failures` consecutive failures.
    pub fn backoff(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(20);
        self.backoff_base
            .saturating_mul(1u32 << shift)
            .min(self.backoff_max)
    }
}

/// Runs `r` until `cancel` fires. Returns only between passes.
pub async fn run<R: Reconciler>(
    mut r: R,
    changes: Arc<dyn Changes>,
    gate: Arc<dyn LeaderGate>,
    cfg: Config,
    cancel: CancellationToken,
) {
    'term: loop {
        let fencing = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            t = gate.acquired() => t,
        };
        tracing::debug!(controller = r.name(), token = fencing.0, "leading");
        let cx = Context {
            fencing,
            cancel: cancel.clone(),
            gate: gate.clone(),
        };
        let mut failures = 0u32;
        loop {
            if cancel.is_cancelled() {
                return;
            }
            if !gate.is_leader() {
                continue 'term;
            }
            let mark = changes.mark();
            // Not raced against cancellation: a pass ends on its own, at a
            // write boundary (see Context::should_stop).
            let outcome = r.reconcile(&cx).await;
            let (wait, wake_on_change) = match outcome {
                Ok(action) => {
                    failures = 0;
                    let wait = action
                        .requeue_after()
                        .map_or(cfg.resync, |d| d.min(cfg.resync));
                    (wait, true)
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let wait = cfg.backoff(failures);
                    tracing::warn!(controller = r.name(), error = %e, failures, retry_in = ?wait, "pass failed");
                    // A change does not cut a backoff short: a failing
                    // controller under steady writes must not spin.
                    (wait, false)
                }
            };
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                _ = gate.lost() => continue 'term,
                _ = changes.changed_since(mark), if wake_on_change => {}
                _ = tokio::time::sleep(wait) => {}
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(cfg.debounce) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
