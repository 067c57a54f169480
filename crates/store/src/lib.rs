//! `stevedore-store`: Stevedore's state store, shaped like etcd.
//!
//! # Data model
//!
//! The interface *is* etcd's data model, so an etcd backend can be added later
//! without touching callers:
//!
//! * a flat, byte-ordered key space of UTF-8 string keys and opaque byte values;
//! * one global [`Revision`] counter. Every committed transaction that changes at
//!   least one key gets exactly one new revision, strictly greater than all
//!   previous ones and consecutive (no holes). Revision `0` means "never";
//! * per key: `create_revision` (revision of the put that created the current
//!   incarnation), `mod_revision` (revision of the last change) and `version`
//!   (number of puts since creation; deleting resets the key);
//! * transactions ([`Txn`]) are compare-and-set: all [`Compare`]s must hold, then
//!   all [`Op`]s are applied atomically under one revision, else nothing is applied;
//! * watches ([`Store::watch`]) replay the change log after a revision and then
//!   continue with live changes, gap-free and without duplicates. The log is
//!   compacted; asking for a revision older than the retained log is
//!   [`StoreError::Compacted`].
//!
//! # Who assigns what
//!
//! The store assigns revisions (and therefore create/mod revisions and versions).
//! Everything else, such as resource IDs, ARNs and timestamps, is chosen by the
//! caller and stored inside values. The store never interprets values.
//!
//! # Semantics details
//!
//! * Ops in one txn apply in order. A key touched several times in one txn
//!   produces one event (its final state): e.g. `DeletePrefix("a/")` followed by
//!   `Put("a/x")` yields `Delete` events for the other `a/` keys and one `Put`
//!   for `a/x` (a fresh incarnation: version 1, create_revision = the txn's revision).
//! * A successful txn that changes nothing (no ops, or only deletes of absent
//!   keys) does not consume a revision (as in etcd); its response carries the
//!   current revision.
//! * Keys must be non-empty; `DeletePrefix` with an empty prefix is refused
//!   ([`StoreError::InvalidArgument`]) so a bug cannot wipe the whole store.
//! * Reads are linearizable with respect to acknowledged writes: once
//!   [`Store::txn`] has returned, every subsequent read sees it.
//!
//! # Backends
//!
//! This crate holds only the interface and its [contract tests](contract)
//! (behind the `contract` feature), so no backend's dependencies leak into
//! callers. The embedded implementation is `stevedore-store-sqlite`
//! (`SqliteStore`); an etcd backend is planned (issue 15). Both must pass the
//! same contract suite.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

#[cfg(feature = "contract")]
pub mod contract;

/// A global revision of the store. Strictly increasing per committed txn that
/// changed something; `0` means "never".
pub type Revision = i64;

/// A boxed, `Send` future: what the dyn-compatible [`Store`] trait returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A boxed stream of watch batches; see [`Watch`].
pub type BoxEventStream =
    Pin<Box<dyn futures_core::Stream<Item = Result<Vec<Event>, StoreError>> + Send>>;

/// One key and its value plus etcd-style metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the put that created this incarnation of the key.
    pub create_revision: Revision,
    /// Revision of the last change to the key.
    pub mod_revision: Revision,
    /// Number of puts since creation (1 after creation).
    pub version: i64,
}

/// A condition of a [`Txn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key's `mod_revision` equals `revision`. `revision == 0` means "the
    /// key must not exist".
    ModRevision { key: String, revision: Revision },
    /// The key's `version` equals `version`. `version == 0` means "the key must
    /// not exist".
    Version { key: String, version: i64 },
}

impl Compare {
    /// Holds iff `key` does not exist.
    pub fn absent(key: impl Into<String>) -> Self {
        Compare::ModRevision {
            key: key.into(),
            revision: 0,
        }
    }

    /// Holds iff `key`'s mod revision is `revision` (0: absent).
    pub fn mod_revision(key: impl Into<String>, revision: Revision) -> Self {
        Compare::ModRevision {
            key: key.into(),
            revision,
        }
    }

    /// Holds iff `key`'s version is `version` (0: absent).
    pub fn version(key: impl Into<String>, version: i64) -> Self {
        Compare::Version {
            key: key.into(),
            version,
        }
    }

    /// The key this compare looks at.
    pub fn key(&self) -> &str {
        match self {
            Compare::ModRevision { key, .. } | Compare::Version { key, .. } => key,
        }
    }

    /// Evaluates the compare against the key's current state.
    pub fn holds(&self, current: Option<&KeyValue>) -> bool {
        match self {
            Compare::ModRevision { revision, .. } => {
                current.map_or(0, |kv| kv.mod_revision) == *revision
            }
            Compare::Version { version, .. } => current.map_or(0, |kv| kv.version) == *version,
        }
    }
}

/// A write of a [`Txn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put { key: String, value: Vec<u8> },
    Delete { key: String },
    DeletePrefix { prefix: String },
}

/// A compare-and-set transaction: if all `compares` hold, all `ops` are applied
/// atomically (in order, under one revision); otherwise nothing is applied.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
}

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a condition.
    pub fn when(mut self, compare: Compare) -> Self {
        self.compares.push(compare);
        self
    }

    /// Adds a put.
    pub fn put(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Adds a delete of one key.
    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }

    /// Adds a delete of every key starting with `prefix` (which must be non-empty).
    pub fn delete_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.ops.push(Op::DeletePrefix {
            prefix: prefix.into(),
        });
        self
    }

    /// Checks the txn is well-formed (non-empty keys and prefixes).
    pub fn validate(&self) -> Result<(), StoreError> {
        for c in &self.compares {
            if c.key().is_empty() {
                return Err(StoreError::InvalidArgument(
                    "compare on an empty key".into(),
                ));
            }
        }
        for op in &self.ops {
            match op {
                Op::Put { key, .. } | Op::Delete { key } if key.is_empty() => {
                    return Err(StoreError::InvalidArgument("empty key".into()));
                }
                Op::DeletePrefix { prefix } if prefix.is_empty() => {
                    return Err(StoreError::InvalidArgument(
                        "DeletePrefix with an empty prefix".into(),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The outcome of a [`Txn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnResponse {
    /// Whether all compares held (and the ops were applied).
    pub succeeded: bool,
    /// The txn's new revision if it succeeded and changed something; otherwise
    /// the store's current revision.
    pub revision: Revision,
}

/// A prefix scan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeRequest {
    /// Only keys starting with this (empty: all keys).
    pub prefix: String,
    /// Exclusive cursor: only keys after this one in iteration order (greater
    /// when forward, smaller when `reverse`). Pass the last key of the previous
    /// page to paginate.
    pub start_after: Option<String>,
    /// At most this many keys (`Some(0)` returns none, with `more` telling
    /// whether any exist). `None`: no limit.
    pub limit: Option<usize>,
    /// Descending byte order instead of ascending.
    pub reverse: bool,
}

impl RangeRequest {
    /// All keys under `prefix`, ascending, no limit.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        RangeRequest {
            prefix: prefix.into(),
            ..Default::default()
        }
    }

    pub fn start_after(mut self, key: impl Into<String>) -> Self {
        self.start_after = Some(key.into());
        self
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }
}

/// The result of a [`RangeRequest`]: a consistent snapshot at `revision`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeResponse {
    pub kvs: Vec<KeyValue>,
    /// More keys matched beyond `limit`.
    pub more: bool,
    /// The store revision the snapshot was taken at.
    pub revision: Revision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// For `Put`: the new key-value. For `Delete`: the key, `mod_revision` = the
    /// delete's revision, empty value, `create_revision` and `version` 0.
    pub kv: KeyValue,
}

impl Event {
    /// The revision this event happened at.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// Errors of the store. `Clone` so that one failure can be reported to every
/// caller of a group-committed batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, SQLite error, ...). The write may or may not
    /// have been applied only if the failure hit the commit itself.
    #[error("store I/O error: {0}")]
    Io(String),
    /// Data read from disk is malformed.
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
    /// The change log no longer reaches back to `requested`.
    #[error("revision {requested} is compacted (history starts after revision {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// The store has been closed (or its writer stopped after a fatal error).
    #[error("store is closed")]
    Closed,
    /// Another process (or another open in this one) holds the store.
    #[error("store {0} is already open")]
    AlreadyOpen(String),
    /// The on-disk schema is newer than this binary understands.
    #[error("store schema version {found} is newer than the supported {supported}")]
    UnsupportedSchema { found: i64, supported: i64 },
    /// The request is malformed (empty key, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

/// An etcd-shaped key-value store. Dyn-compatible: the server holds an
/// `Arc<dyn Store>`.
pub trait Store: Send + Sync + 'static {
    /// The current value of `key`. Served from memory; never waits for writes.
    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Keys under `req.prefix` in byte order (descending if `req.reverse`),
    /// strictly after `req.start_after`, at most `req.limit`, as one consistent
    /// snapshot.
    fn range(&self, req: &RangeRequest) -> Result<RangeResponse, StoreError>;

    /// The number of keys under `prefix`.
    fn count_prefix(&self, prefix: &str) -> Result<usize, StoreError>;

    /// The revision of the last committed change.
    fn current_revision(&self) -> Revision;

    /// Applies `txn` atomically if its compares hold. Resolves only once the
    /// commit is durable (and visible to reads).
    fn txn(&self, txn: Txn) -> BoxFuture<'_, Result<TxnResponse, StoreError>>;

    /// Watches keys under `prefix` (empty: all): first every change with a
    /// revision `> from_revision` still in the log, then live changes. Fails
    /// with [`StoreError::Compacted`] if the log no longer reaches back to
    /// `from_revision`. To watch "from now", pass the revision of the read the
    /// watcher started from (e.g. [`RangeResponse::revision`]).
    fn watch(&self, prefix: &str, from_revision: Revision) -> Result<Watch, StoreError>;
}

/// A stream of change batches from [`Store::watch`].
///
/// Each item is a non-empty `Vec<Event>` in revision order (key order within a
/// revision); a revision's events are never split across items, and no
/// revision is skipped or repeated. An `Err` item is terminal: the stream ends
/// after it (e.g. [`StoreError::Compacted`] if the watcher fell behind the
/// retained log, [`StoreError::Closed`] when the store is closed).
///
/// Use [`Watch::recv`], or use it as a `futures_core::Stream`.
pub struct Watch {
    stream: BoxEventStream,
}

impl Watch {
    /// Wraps a backend's event stream.
    pub fn from_stream(stream: BoxEventStream) -> Self {
        Watch { stream }
    }

    /// The next batch; `None` once the stream has ended.
    pub async fn recv(&mut self) -> Option<Result<Vec<Event>, StoreError>> {
        std::future::poll_fn(|cx| self.stream.as_mut().poll_next(cx)).await
    }
}

impl futures_core::Stream for Watch {
    type Item = Result<Vec<Event>, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.stream.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

/// Builds a stream from an async step function: `step(state)` yields the next
/// item (or `None` to end) and the state for the next call. A tiny stand-in for
/// `futures::stream::unfold`, so backends need nothing beyond `futures-core`.
pub fn unfold_stream<S, F, Fut>(state: S, step: F) -> BoxEventStream
where
    S: Send + Unpin + 'static,
    F: FnMut(S) -> Fut + Send + Unpin + 'static,
    Fut: Future<Output = Option<(Result<Vec<Event>, StoreError>, S)>> + Send + 'static,
{
    struct Unfold<S, F> {
        state: Option<S>,
        step: F,
        pending: Option<BoxFuture<'static, Option<StepOut<S>>>>,
    }
    type StepOut<S> = (Result<Vec<Event>, StoreError>, S);

    impl<S, F, Fut> futures_core::Stream for Unfold<S, F>
    where
        S: Send + Unpin + 'static,
        F: FnMut(S) -> Fut + Send + Unpin + 'static,
        Fut: Future<Output = Option<StepOut<S>>> + Send + 'static,
    {
        type Item = Result<Vec<Event>, StoreError>;

        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            // Unfold is Unpin: S and F are Unpin and the future is boxed.
            let this = self.get_mut();
            if this.pending.is_none() {
                match this.state.take() {
                    Some(state) => this.pending = Some(Box::pin((this.step)(state))),
                    None => return Poll::Ready(None),
                }
            }
            let Some(fut) = this.pending.as_mut() else {
                return Poll::Ready(None);
            };
            match fut.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(out) => {
                    this.pending = None;
                    match out {
                        Some((item, state)) => {
                            this.state = Some(state);
                            Poll::Ready(Some(item))
                        }
                        None => Poll::Ready(None),
                    }
                }
            }
        }
    }

    Box::pin(Unfold {
        state: Some(state),
        step,
        pending: None,
    })
}
