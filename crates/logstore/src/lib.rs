//! `stevedore-logstore`: where CloudWatch Logs events live.
//!
//! Log events are append-mostly, read by time range, and far bigger in
//! total than the control-plane state, so they stay out of the KV store
//! (`stevedore-store`) and its in-memory mirror: a [`LogStore`] keeps them
//! on disk and reads pages from there. Groups and stream *records* (names,
//! creation times, retention) stay in the KV store, where the handlers
//! already compare-and-set them; this store holds the events and the
//! per-stream counters that must change atomically with them (next
//! sequence, stored bytes, first/last event timestamps).
//!
//! A stream is named by an opaque string chosen by the caller (the server
//! uses its KV stream key plus a per-incarnation id, so a stream deleted
//! and created again never sees the old events). Prefix operations
//! ([`LogStore::delete_prefix`], [`LogStore::streams`]) compare bytes.
//!
//! The trait is synchronous: every call is a bounded piece of disk work and
//! `append` returns only once its events are durable. Async callers run
//! writes on a blocking thread. This crate holds only the interface and its
//! [contract tests](contract) (behind the `contract` feature), so a
//! replicated or remote backend can implement and test against it without
//! pulling in SQLite.

#[cfg(feature = "contract")]
pub mod contract;

/// Where an event sits in its stream: events are ordered by timestamp, then
/// by the stream's ingest sequence (assigned by [`LogStore::append`],
/// starting at 1, so `(t, 0)` sorts before every event at `t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub timestamp: i64,
    pub seq: u64,
}

impl Position {
    pub const fn new(timestamp: i64, seq: u64) -> Position {
        Position { timestamp, seq }
    }

    /// Sorts before every event at `timestamp` or later.
    pub const fn before_time(timestamp: i64) -> Position {
        Position { timestamp, seq: 0 }
    }
}

/// An event as PutLogEvents hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub timestamp: i64,
    pub message: String,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub position: Position,
    pub ingestion_time: i64,
    pub message: String,
}

/// The counters of one stream, changed in the same write as its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStats {
    pub first_event_timestamp: Option<i64>,
    pub last_event_timestamp: Option<i64>,
    pub last_ingestion_time: Option<i64>,
    /// Bytes of message text held.
    pub stored_bytes: i64,
    /// The sequence the next appended event gets.
    pub next_seq: u64,
}

impl Default for StreamStats {
    /// A stream nothing was appended to.
    fn default() -> Self {
        StreamStats {
            first_event_timestamp: None,
            last_event_timestamp: None,
            last_ingestion_time: None,
            stored_bytes: 0,
            next_seq: 1,
        }
    }
}

/// A page of one stream's events strictly between `after` and `before`,
/// in position order (`reverse`: newest first), at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub after: Option<Position>,
    pub before: Option<Position>,
    pub reverse: bool,
    pub limit: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    /// The backend failed (disk, I/O, a lost connection); the operation
    /// did not take effect unless it is idempotent and is retried.
    #[error("log store backend error: {0}")]
    Backend(String),
    /// Stored data is not what this version wrote.
    #[error("log store data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, LogStoreError>;

pub trait LogStore: Send + Sync {
    /// Appends `events` (in timestamp order) to `stream`, creating it if
    /// new, with consecutive sequences from the stream's `next_seq`, and
    /// returns the stream's counters after the append. Durable on return:
    /// a crash after it returns loses none of these events.
    fn append(&self, stream: &str, ingestion_time: i64, events: &[NewEvent])
        -> Result<StreamStats>;

    /// Writes events with their original positions and sets the stream's
    /// counters: for moving events from an older store. Idempotent: an
    /// event already at a position is kept.
    fn import(&self, stream: &str, events: &[StoredEvent], stats: &StreamStats) -> Result<()>;

    /// A page of events (see [`ReadRequest`]).
    fn read(&self, stream: &str, req: &ReadRequest) -> Result<Vec<StoredEvent>>;

    /// The stream's counters; the default ones for a stream never written.
    fn stats(&self, stream: &str) -> Result<StreamStats>;

    /// Deletes the stream's events with a timestamp below `cutoff`, updates
    /// its counters (stored bytes, first event timestamp), and returns how
    /// many were deleted. Sequences are never reused.
    fn delete_before(&self, stream: &str, cutoff: i64) -> Result<u64>;

    /// Deletes a stream with its events and counters.
    fn delete_stream(&self, stream: &str) -> Result<()>;

    /// Deletes every stream whose name starts with `prefix`.
    fn delete_prefix(&self, prefix: &str) -> Result<()>;

    /// The names of the streams that start with `prefix`, in byte order.
    fn streams(&self, prefix: &str) -> Result<Vec<String>>;
}
