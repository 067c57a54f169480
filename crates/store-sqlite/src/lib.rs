//! `stevedore-store-sqlite`: the embedded SQLite implementation of [`Store`].
//!
//! # Design
//!
//! * **SQLite is the source of truth**, in WAL mode with `synchronous=FULL`: a
//!   txn is acknowledged only after its commit is fsynced, so it survives
//!   `kill -9` and power loss.
//! * **Reads never queue behind the writer.** All reads (`get`, `range`,
//!   `count_prefix`, `current_revision`) are served from an in-memory mirror of
//!   the `kv` table behind a `parking_lot::RwLock`: a `HashMap` for point
//!   reads and a `BTreeMap` over the same `Arc<KeyValue>`s for ordered prefix
//!   ranges (`BTreeMap::range`). The mirror is loaded at open and afterwards
//!   changed only by the writer thread, only after the SQLite commit succeeded
//!   and before any caller of that commit is answered. A `get` costs a map
//!   lookup plus a clone, never disk I/O, and a slow fsync never delays a read.
//! * **Group commit.** One dedicated writer thread owns the only write
//!   connection. [`Store::txn`] sends the txn plus a oneshot reply channel to it.
//!   The writer drains everything queued (up to a cap), evaluates each txn's
//!   compares in arrival order against the mirror plus the batch's pending
//!   overlay (later txns see earlier ones), gives each successful writing txn its
//!   own consecutive revision, writes the whole batch in ONE SQLite transaction
//!   (one fsync), then updates the mirror, publishes watch events and answers
//!   every caller. Throughput under concurrency is therefore bounded by fsync
//!   rate × batch size instead of fsync rate. If SQLite fails, the whole batch
//!   fails: every caller gets the error and the mirror is untouched (if the
//!   commit turns out to have reached the disk anyway, the mirror is brought in
//!   line with it, as with an etcd request timeout).
//! * **Watch** = catch-up from the `changes` table + live events from a
//!   `tokio::sync::broadcast` channel. The receiver subscribes *before* reading
//!   history, and the writer publishes only *after* committing, so every
//!   revision is in the history read or in the channel (or both: duplicates are
//!   dropped by revision). A lagging receiver, or any detected hole, falls back
//!   to re-reading history instead of losing events.
//!
//!
//! # Files
//!
//! * `<path>`: the SQLite database (plus SQLite's `<path>-wal` and `<path>-shm`);
//! * `<path>.lock`: held with an exclusive `flock` while the store is open, so
//!   two opens of one store (in one process or two) fail with
//!   [`StoreError::AlreadyOpen`] instead of corrupting the mirror's invariants.
//!
//! # Schema
//!
//! Compiled into the binary as [`MIGRATIONS`], applied in order at open and
//! tracked with `PRAGMA user_version` (= the number of migrations applied).
//!
//! ```sql
//! -- The single metadata row.
//! CREATE TABLE meta (
//!     id        INTEGER PRIMARY KEY CHECK (id = 1),
//!     revision  INTEGER NOT NULL,  -- the current (last committed) revision
//!     compacted INTEGER NOT NULL   -- changes with rev <= compacted were deleted
//! );
//! -- The current key space; mirrored in memory.
//! CREATE TABLE kv (
//!     key        TEXT PRIMARY KEY,  -- UTF-8, BINARY collation = byte order
//!     value      BLOB NOT NULL,
//!     create_rev INTEGER NOT NULL,  -- 1 <= create_rev <= mod_rev <= meta.revision
//!     mod_rev    INTEGER NOT NULL,
//!     version    INTEGER NOT NULL   -- >= 1
//! ) WITHOUT ROWID;
//! -- The change log, for watch catch-up; at most one row per (revision, key).
//! CREATE TABLE changes (
//!     rev        INTEGER NOT NULL,
//!     key        TEXT NOT NULL,
//!     kind       INTEGER NOT NULL,  -- 0 = put, 1 = delete
//!     value      BLOB,              -- the new value for puts, NULL for deletes
//!     create_rev INTEGER NOT NULL,  -- 0 for deletes
//!     version    INTEGER NOT NULL,  -- 0 for deletes
//!     PRIMARY KEY (rev, key)
//! ) WITHOUT ROWID;
//! ```
//!
//! Every batch of txns is one SQLite transaction that upserts/deletes the
//! final state of each touched key in `kv`, appends one `changes` row per event
//! and sets `meta.revision`, so the three always agree after a crash.
//!
//! # Threads
//!
//! * the writer thread (`stevedore-store-writer`) owns the write connection;
//! * readers take the mirror's read lock only;
//! * watch catch-up opens extra read-only connections (pooled), used from
//!   `tokio::task::spawn_blocking` when a tokio runtime is present.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::{broadcast, oneshot};

use stevedore_store::{
    unfold_stream, BoxFuture, Compare, Event, EventKind, KeyValue, Op, RangeRequest, RangeResponse,
    Revision, Store, StoreError, Txn, TxnResponse, Watch,
};

/// Schema migrations, applied in order; `PRAGMA user_version` counts the
/// applied ones. Never edit an entry once released: append a new one.
pub const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE meta (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    revision  INTEGER NOT NULL,
    compacted INTEGER NOT NULL
);
INSERT INTO meta (id, revision, compacted) VALUES (1, 0, 0);
CREATE TABLE kv (
    key        TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    create_rev INTEGER NOT NULL,
    mod_rev    INTEGER NOT NULL,
    version    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE changes (
    rev        INTEGER NOT NULL,
    key        TEXT NOT NULL,
    kind       INTEGER NOT NULL,
    value      BLOB,
    create_rev INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    PRIMARY KEY (rev, key)
) WITHOUT ROWID;
"#];

const KIND_PUT: i64 = 0;
const KIND_DELETE: i64 = 1;

/// How many revisions one watch catch-up read covers at most.
const HISTORY_CHUNK_REVISIONS: i64 = 1_000;

/// Tuning knobs of a [`SqliteStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// How many revisions of change history to keep for watches. The writer
    /// compacts automatically once the log exceeds this by 10%. `None`: never
    /// compact automatically (use [`SqliteStore::compact`]).
    pub retain_revisions: Option<i64>,
    /// The most txns group-committed in one SQLite transaction.
    pub max_batch: usize,
    /// Capacity (in committed batches) of the live watch channel; a watcher
    /// further behind than this re-reads history from disk.
    pub watch_buffer: usize,
    /// SQLite `busy_timeout`.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            retain_revisions: Some(100_000),
            max_batch: 1024,
            watch_buffer: 1024,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Counters of the writer, for benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// SQLite transactions committed for txn batches (= fsync rounds).
    pub commits: u64,
    /// Txns answered (succeeded, failed compares, errors).
    pub txns: u64,
    /// Revisions created (txns that changed something).
    pub revisions: u64,
    /// The largest batch of txns taken at once.
    pub largest_batch: u64,
}

/// A committed batch as published to live watchers: revisions `first..=last`
/// (consecutive), with all their events in revision order.
struct CommitBatch {
    first: Revision,
    last: Revision,
    events: Vec<Event>,
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum WriterMsg {
    Txn(Txn, Reply<TxnResponse>),
    Compact(Revision, Reply<Revision>),
    Shutdown,
}

/// The in-memory copy of the `kv` table: a hash index for point reads (one
/// hash + about one cache miss, instead of a pointer chase per B-tree level)
/// and a B-tree keyed by the key's bytes for ordered prefix scans (so a prefix
/// range can use a byte-level upper bound). Both share the `Arc<KeyValue>`s.
#[derive(Default)]
struct Mirror {
    index: HashMap<Box<str>, Arc<KeyValue>>,
    map: BTreeMap<Box<[u8]>, Arc<KeyValue>>,
    revision: Revision,
}

impl Mirror {
    fn get(&self, key: &str) -> Option<&Arc<KeyValue>> {
        self.index.get(key)
    }

    fn insert(&mut self, kv: Arc<KeyValue>) {
        self.map.insert(kv.key.as_bytes().into(), kv.clone());
        self.index.insert(kv.key.as_str().into(), kv);
    }

    fn remove(&mut self, key: &str) {
        self.map.remove(key.as_bytes());
        self.index.remove(key);
    }

    /// Visits keys under `prefix` after `start_after` in (reverse) byte order
    /// until `f` returns false.
    fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        reverse: bool,
        mut f: impl FnMut(&Arc<KeyValue>) -> bool,
    ) {
        let end = prefix_end(prefix.as_bytes());
        let Some(bounds) = scan_bounds(
            prefix.as_bytes(),
            end.as_deref(),
            start_after.map(str::as_bytes),
            reverse,
        ) else {
            return;
        };
        let range = self.map.range::<[u8], _>(bounds);
        if reverse {
            for (_, kv) in range.rev() {
                if !f(kv) {
                    break;
                }
            }
        } else {
            for (_, kv) in range {
                if !f(kv) {
                    break;
                }
            }
        }
    }
}

/// The smallest byte string greater than every string starting with `prefix`
/// (`None`: unbounded, for the empty prefix).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

type KeyRange<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// The `BTreeMap::range` bounds for a scan, or `None` if the range is empty
/// (`BTreeMap::range` panics on inverted bounds, so they are checked here).
fn scan_bounds<'a>(
    prefix: &'a [u8],
    end: Option<&'a [u8]>,
    start_after: Option<&'a [u8]>,
    reverse: bool,
) -> Option<KeyRange<'a>> {
    let mut lo = Bound::Included(prefix);
    let mut hi = end.map_or(Bound::Unbounded, Bound::Excluded);
    if let Some(after) = start_after {
        if !reverse {
            if after >= prefix {
                lo = Bound::Excluded(after);
            }
        } else {
            match end {
                Some(e) if after >= e => {}
                _ => hi = Bound::Excluded(after),
            }
        }
    }
    match (lo, hi) {
        (_, Bound::Unbounded) => Some((lo, hi)),
        (Bound::Included(l), Bound::Excluded(h)) if l <= h => Some((lo, hi)),
        (Bound::Excluded(l), Bound::Excluded(h)) if l < h => Some((lo, hi)),
        _ => None,
    }
}

/// State shared by the store handle, the writer thread and watchers.
struct Shared {
    path: PathBuf,
    busy_timeout: Duration,
    mirror: RwLock<Mirror>,
    /// Same as `mirror.revision`, readable without the lock.
    revision: AtomicI64,
    /// Changes with rev <= this are gone from the log.
    compacted: AtomicI64,
    closed: AtomicBool,
    /// Pooled read-only connections for watch catch-up.
    readers: Mutex<Vec<Connection>>,
    commits: AtomicU64,
    txns: AtomicU64,
    revisions: AtomicU64,
    largest_batch: AtomicU64,
}

impl Shared {
    fn check_open(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            Err(StoreError::Closed)
        } else {
            Ok(())
        }
    }

    fn take_reader(&self) -> Result<Connection, StoreError> {
        self.check_open()?;
        if let Some(conn) = self.readers.lock().pop() {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_err)?;
        conn.busy_timeout(self.busy_timeout).map_err(sql_err)?;
        conn.pragma_update(None, "query_only", true)
            .map_err(sql_err)?;
        Ok(conn)
    }

    fn return_reader(&self, conn: Connection) {
        if !self.closed.load(Ordering::Acquire) {
            let mut pool = self.readers.lock();
            if pool.len() < 8 {
                pool.push(conn);
            }
        }
    }

    /// Reads the change log after revision `after` (at most
    /// [`HISTORY_CHUNK_REVISIONS`] revisions), keeping keys under `prefix`.
    /// Returns the events, the last revision covered and the head revision of
    /// the snapshot read.
    fn read_history(
        &self,
        prefix: &str,
        after: Revision,
    ) -> Result<(Vec<Event>, Revision, Revision), StoreError> {
        let mut conn = self.take_reader()?;
        let result = read_history(&mut conn, prefix, after);
        if !matches!(result, Err(StoreError::Io(_) | StoreError::Corrupt(_))) {
            self.return_reader(conn);
        }
        result
    }
}

fn read_history(
    conn: &mut Connection,
    prefix: &str,
    after: Revision,
) -> Result<(Vec<Event>, Revision, Revision), StoreError> {
    // One read transaction: the meta row and the log come from one snapshot.
    let tx = conn.transaction().map_err(sql_err)?;
    let (head, compacted) = read_meta(&tx)?;
    if after < compacted {
        return Err(StoreError::Compacted {
            requested: after,
            compacted,
        });
    }
    let upto = head.min(after.saturating_add(HISTORY_CHUNK_REVISIONS));
    let mut events = Vec::new();
    if upto > after {
        let mut stmt = tx
            .prepare_cached(
                "SELECT rev, key, kind, value, create_rev, version FROM changes \
             WHERE rev > ?1 AND rev <= ?2 ORDER BY rev, key",
            )
            .map_err(sql_err)?;
        let mut rows = stmt.query(params![after, upto]).map_err(sql_err)?;
        while let Some(row) = rows.next().map_err(sql_err)? {
            let key: String = row.get(1).map_err(sql_err)?;
            if !key.starts_with(prefix) {
                continue;
            }
            let rev: Revision = row.get(0).map_err(sql_err)?;
            let kind: i64 = row.get(2).map_err(sql_err)?;
            let value: Option<Vec<u8>> = row.get(3).map_err(sql_err)?;
            let create_rev: Revision = row.get(4).map_err(sql_err)?;
            let version: i64 = row.get(5).map_err(sql_err)?;
            events.push(decode_change(rev, key, kind, value, create_rev, version)?);
        }
    }
    drop(tx);
    Ok((events, upto.max(after), head))
}

fn decode_change(
    rev: Revision,
    key: String,
    kind: i64,
    value: Option<Vec<u8>>,
    create_rev: Revision,
    version: i64,
) -> Result<Event, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("change {rev} of {key:?}: {what}"));
    if rev < 1 || key.is_empty() {
        return Err(corrupt("bad revision or empty key"));
    }
    match kind {
        KIND_PUT => {
            let Some(value) = value else {
                return Err(corrupt("put without a value"));
            };
            if create_rev < 1 || create_rev > rev || version < 1 {
                return Err(corrupt("bad create revision or version"));
            }
            Ok(Event {
                kind: EventKind::Put,
                kv: KeyValue {
                    key,
                    value,
                    create_revision: create_rev,
                    mod_revision: rev,
                    version,
                },
            })
        }
        KIND_DELETE => Ok(Event {
            kind: EventKind::Delete,
            kv: KeyValue {
                key,
                mod_revision: rev,
                ..Default::default()
            },
        }),
        _ => Err(corrupt("unknown kind")),
    }
}

fn read_meta(conn: &Connection) -> Result<(Revision, Revision), StoreError> {
    let meta = conn
        .query_row(
            "SELECT revision, compacted FROM meta WHERE id = 1",
            [],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
        )
        .optional()
        .map_err(sql_err)?;
    match meta {
        None => Err(StoreError::Corrupt("the meta row is missing".into())),
        Some((revision, compacted)) if revision < 0 || compacted < 0 || compacted > revision => {
            Err(StoreError::Corrupt(format!(
                "meta row: revision {revision}, compacted {compacted}"
            )))
        }
        Some(meta) => Ok(meta),
    }
}

fn configure_writer(conn: &Connection, busy_timeout: Duration) -> Result<(), StoreError> {
    conn.busy_timeout(busy_timeout).map_err(sql_err)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(sql_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Io(format!(
            "could not enable WAL (journal_mode is {mode})"
        )));
    }
    // FULL: the WAL is fsynced at every commit, so an acknowledged txn survives
    // power loss (NORMAL would only survive a process crash).
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql_err)?;
    conn.pragma_update(None, "fullfsync", true)
        .map_err(sql_err)?;
    conn.pragma_update(None, "checkpoint_fullfsync", true)
        .map_err(sql_err)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(sql_err)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql_err)?;
    let supported = MIGRATIONS.len() as i64;
    if found > supported {
        return Err(StoreError::UnsupportedSchema { found, supported });
    }
    if found < 0 {
        return Err(StoreError::Corrupt(format!("user_version is {found}")));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        tx.execute_batch(sql).map_err(sql_err)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(sql_err)?;
        tx.commit().map_err(sql_err)?;
    }
    Ok(())
}

fn load_mirror(conn: &Connection, revision: Revision) -> Result<Mirror, StoreError> {
    let mut mirror = Mirror {
        revision,
        ..Default::default()
    };
    let mut stmt = conn
        .prepare("SELECT key, value, create_rev, mod_rev, version FROM kv")
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        let kv = KeyValue {
            key: row.get(0).map_err(sql_err)?,
            value: row.get(1).map_err(sql_err)?,
            create_revision: row.get(2).map_err(sql_err)?,
            mod_revision: row.get(3).map_err(sql_err)?,
            version: row.get(4).map_err(sql_err)?,
        };
        if kv.key.is_empty()
            || kv.create_revision < 1
            || kv.create_revision > kv.mod_revision
            || kv.mod_revision > revision
            || kv.version < 1
        {
            return Err(StoreError::Corrupt(format!(
                "kv row {:?}: create_rev {}, mod_rev {}, version {} (store revision {revision})",
                kv.key, kv.create_revision, kv.mod_revision, kv.version
            )));
        }
        mirror.insert(Arc::new(kv));
    }
    let last_change: Option<Revision> = conn
        .query_row("SELECT max(rev) FROM changes", [], |r| r.get(0))
        .map_err(sql_err)?;
    if last_change.is_some_and(|rev| rev > revision) {
        return Err(StoreError::Corrupt(format!(
            "change log reaches revision {last_change:?} beyond the store revision {revision}"
        )));
    }
    Ok(mirror)
}

fn lock_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

fn sync_parent_dir(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// The embedded store: SQLite file + in-memory mirror + group-committing writer
/// thread. See the crate docs for the design.
pub struct SqliteStore {
    shared: Arc<Shared>,
    writer_tx: mpsc::Sender<WriterMsg>,
    events: RwLock<Option<broadcast::Sender<Arc<CommitBatch>>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.shared.path)
            .field("revision", &self.current_revision())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` with default options.
    pub fn open(path: &Path) -> Result<Arc<SqliteStore>, StoreError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Opens (creating if needed) the store at `path`.
    pub fn open_with(path: &Path, opts: StoreOptions) -> Result<Arc<SqliteStore>, StoreError> {
        if opts.max_batch == 0 || opts.watch_buffer == 0 {
            return Err(StoreError::InvalidArgument(
                "max_batch and watch_buffer must be positive".into(),
            ));
        }
        if opts.retain_revisions.is_some_and(|r| r < 0) {
            return Err(StoreError::InvalidArgument(
                "retain_revisions must be >= 0".into(),
            ));
        }
        let lock_path = lock_path(path);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::AlreadyOpen(path.display().to_string()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }

        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_err)?;
        configure_writer(&conn, opts.busy_timeout)?;
        migrate(&mut conn)?;
        // Make the database file's directory entry durable too.
        sync_parent_dir(path)?;
        let (revision, compacted) = read_meta(&conn)?;
        let mirror = load_mirror(&conn, revision)?;

        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            busy_timeout: opts.busy_timeout,
            mirror: RwLock::new(mirror),
            revision: AtomicI64::new(revision),
            compacted: AtomicI64::new(compacted),
            closed: AtomicBool::new(false),
            readers: Mutex::new(Vec::new()),
            commits: AtomicU64::new(0),
            txns: AtomicU64::new(0),
            revisions: AtomicU64::new(0),
            largest_batch: AtomicU64::new(0),
        });
        let (events_tx, _) = broadcast::channel(opts.watch_buffer);
        let (writer_tx, writer_rx) = mpsc::channel();
        let writer = Writer {
            conn,
            shared: shared.clone(),
            events: events_tx.clone(),
            revision,
            compacted,
            opts,
        };
        let handle = std::thread::Builder::new()
            .name("stevedore-store-writer".into())
            .spawn(move || {
                writer.run(writer_rx);
                // Released only once the write connection is closed.
                drop(lock);
            })?;
        Ok(Arc::new(SqliteStore {
            shared,
            writer_tx,
            events: RwLock::new(Some(events_tx)),
            writer: Mutex::new(Some(handle)),
        }))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The oldest revision a watch may start from (changes after it are kept).
    pub fn compacted_revision(&self) -> Revision {
        self.shared.compacted.load(Ordering::SeqCst)
    }

    /// Deletes change history, keeping the last `keep` revisions. Returns the
    /// new compacted revision (watches from before it fail with `Compacted`).
    pub async fn compact(&self, keep: Revision) -> Result<Revision, StoreError> {
        if keep < 0 {
            return Err(StoreError::InvalidArgument("keep must be >= 0".into()));
        }
        self.shared.check_open()?;
        let (tx, rx) = oneshot::channel();
        self.writer_tx
            .send(WriterMsg::Compact(keep, tx))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Counters of the writer since open.
    pub fn stats(&self) -> StoreStats {
        let s = &self.shared;
        StoreStats {
            commits: s.commits.load(Ordering::Relaxed),
            txns: s.txns.load(Ordering::Relaxed),
            revisions: s.revisions.load(Ordering::Relaxed),
            largest_batch: s.largest_batch.load(Ordering::Relaxed),
        }
    }

    /// Stops the writer after the txns already queued, waits for it and
    /// releases the store's files. Later calls fail with `Closed`; open
    /// watches end with `Closed`. Blocks for at most one commit. Idempotent;
    /// also done on drop.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        let _ = self.writer_tx.send(WriterMsg::Shutdown);
        self.events.write().take();
        let handle = self.writer.lock().take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                tracing::error!("store writer thread panicked");
            }
        }
        self.shared.readers.lock().clear();
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

impl Store for SqliteStore {
    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.shared.check_open()?;
        let kv = self.shared.mirror.read().get(key).cloned();
        Ok(kv.map(|kv| (*kv).clone()))
    }

    fn range(&self, req: &RangeRequest) -> Result<RangeResponse, StoreError> {
        self.shared.check_open()?;
        let limit = req.limit.unwrap_or(usize::MAX);
        let mut found = Vec::new();
        let mut more = false;
        let revision = {
            let mirror = self.shared.mirror.read();
            mirror.scan(&req.prefix, req.start_after.as_deref(), req.reverse, |kv| {
                if found.len() >= limit {
                    more = true;
                    return false;
                }
                found.push(kv.clone());
                true
            });
            mirror.revision
        };
        let kvs = found.iter().map(|kv| (**kv).clone()).collect();
        Ok(RangeResponse {
            kvs,
            more,
            revision,
        })
    }

    fn count_prefix(&self, prefix: &str) -> Result<usize, StoreError> {
        self.shared.check_open()?;
        let mut n = 0;
        self.shared.mirror.read().scan(prefix, None, false, |_| {
            n += 1;
            true
        });
        Ok(n)
    }

    fn current_revision(&self) -> Revision {
        self.shared.revision.load(Ordering::SeqCst)
    }

    fn txn(&self, txn: Txn) -> BoxFuture<'_, Result<TxnResponse, StoreError>> {
        Box::pin(async move {
            txn.validate()?;
            self.shared.check_open()?;
            let (tx, rx) = oneshot::channel();
            self.writer_tx
                .send(WriterMsg::Txn(txn, tx))
                .map_err(|_| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn watch(&self, prefix: &str, from_revision: Revision) -> Result<Watch, StoreError> {
        self.shared.check_open()?;
        if from_revision < 0 {
            return Err(StoreError::InvalidArgument(
                "from_revision must be >= 0".into(),
            ));
        }
        let compacted = self.shared.compacted.load(Ordering::SeqCst);
        if from_revision < compacted {
            return Err(StoreError::Compacted {
                requested: from_revision,
                compacted,
            });
        }
        // Subscribe BEFORE looking at the revision / reading history: whatever
        // is committed later is published later, so it reaches this receiver.
        let rx = match self.events.read().as_ref() {
            Some(tx) => tx.subscribe(),
            None => return Err(StoreError::Closed),
        };
        let current = self.shared.revision.load(Ordering::SeqCst);
        let state = WatchState {
            shared: self.shared.clone(),
            rx,
            prefix: prefix.into(),
            next_rev: from_revision + 1,
            // Everything <= current is on disk; everything after it will be
            // received live. Skip the disk read when there is nothing to catch up.
            catching_up: from_revision < current,
            done: false,
        };
        Ok(Watch::from_stream(unfold_stream(
            state,
            |mut st: WatchState| async move {
                if st.done {
                    return None;
                }
                let item = st.next_batch().await;
                if item.is_err() {
                    st.done = true;
                }
                Some((item, st))
            },
        )))
    }
}

struct WatchState {
    shared: Arc<Shared>,
    rx: broadcast::Receiver<Arc<CommitBatch>>,
    prefix: Arc<str>,
    /// Every event with a revision below this has been delivered (or did not match).
    next_rev: Revision,
    /// Read the change log from disk before taking live events.
    catching_up: bool,
    done: bool,
}

impl WatchState {
    async fn next_batch(&mut self) -> Result<Vec<Event>, StoreError> {
        loop {
            if self.catching_up {
                let (events, upto, head) = self.read_history().await?;
                self.next_rev = self.next_rev.max(upto + 1);
                if upto >= head {
                    self.catching_up = false;
                }
                if !events.is_empty() {
                    return Ok(events);
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(batch) => {
                    if batch.last < self.next_rev {
                        continue; // already delivered from history
                    }
                    if batch.first > self.next_rev {
                        // A hole (should not happen; e.g. after a commit whose
                        // outcome was uncertain): the log has it.
                        self.catching_up = true;
                        continue;
                    }
                    let events: Vec<Event> = batch
                        .events
                        .iter()
                        .filter(|e| {
                            e.kv.mod_revision >= self.next_rev
                                && e.kv.key.starts_with(&*self.prefix)
                        })
                        .cloned()
                        .collect();
                    self.next_rev = batch.last + 1;
                    if !events.is_empty() {
                        return Ok(events);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.catching_up = true,
                Err(broadcast::error::RecvError::Closed) => return Err(StoreError::Closed),
            }
        }
    }

    async fn read_history(&self) -> Result<(Vec<Event>, Revision, Revision), StoreError> {
        let shared = self.shared.clone();
        let prefix = self.prefix.clone();
        let after = self.next_rev - 1;
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(move || shared.read_history(&prefix, after))
                .await
                .map_err(|e| StoreError::Io(format!("watch history read failed: {e}")))?,
            Err(_) => shared.read_history(&prefix, after),
        }
    }
}

/// The final state of keys changed by the current batch (`None`: deleted).
type Overlay = BTreeMap<String, Option<Arc<KeyValue>>>;

fn lookup<'a>(overlay: &'a Overlay, mirror: &'a Mirror, key: &str) -> Option<&'a Arc<KeyValue>> {
    match overlay.get(key) {
        Some(state) => state.as_ref(),
        None => mirror.get(key),
    }
}

fn compares_hold(compares: &[Compare], overlay: &Overlay, mirror: &Mirror) -> bool {
    compares
        .iter()
        .all(|c| c.holds(lookup(overlay, mirror, c.key()).map(|kv| &**kv)))
}

/// A key touched by the txn being applied.
struct Touched {
    exists: bool,
    /// The value of the last put, if the last op on the key was a put.
    value: Option<Vec<u8>>,
    /// The key was deleted at some point of the txn (a later put recreates it).
    deleted: bool,
}

/// Applies `ops` at revision `rev` on top of `overlay` + `mirror`. Returns the
/// events (one per changed key, in key order) and records the new states in
/// `overlay`.
fn apply_ops(ops: Vec<Op>, rev: Revision, overlay: &mut Overlay, mirror: &Mirror) -> Vec<Event> {
    let mut touched: BTreeMap<String, Touched> = BTreeMap::new();
    let delete = |touched: &mut BTreeMap<String, Touched>, overlay: &Overlay, key: String| {
        let t = touched.entry(key).or_insert_with_key(|k| Touched {
            exists: lookup(overlay, mirror, k).is_some(),
            value: None,
            deleted: false,
        });
        if t.exists {
            t.deleted = true;
        }
        t.exists = false;
        t.value = None;
    };
    for op in ops {
        match op {
            Op::Put { key, value } => {
                let t = touched.entry(key).or_insert_with_key(|k| Touched {
                    exists: lookup(overlay, mirror, k).is_some(),
                    value: None,
                    deleted: false,
                });
                t.exists = true;
                t.value = Some(value);
            }
            Op::Delete { key } => delete(&mut touched, overlay, key),
            Op::DeletePrefix { prefix } => {
                let mut keys: Vec<String> = Vec::new();
                mirror.scan(&prefix, None, false, |kv| {
                    keys.push(kv.key.clone());
                    true
                });
                keys.extend(
                    overlay
                        .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                        .take_while(|(k, _)| k.starts_with(&prefix))
                        .map(|(k, _)| k.clone()),
                );
                keys.extend(
                    touched
                        .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                        .take_while(|(k, _)| k.starts_with(&prefix))
                        .map(|(k, _)| k.clone()),
                );
                for key in keys {
                    delete(&mut touched, overlay, key);
                }
            }
        }
    }

    let mut events = Vec::new();
    let mut updates = Vec::new();
    for (key, t) in touched {
        let before = lookup(overlay, mirror, &key);
        match (t.exists, t.value) {
            (true, Some(value)) => {
                let (create_revision, version) = match before {
                    Some(b) if !t.deleted => (b.create_revision, b.version + 1),
                    _ => (rev, 1),
                };
                let kv = KeyValue {
                    key,
                    value,
                    create_revision,
                    mod_revision: rev,
                    version,
                };
                events.push(Event {
                    kind: EventKind::Put,
                    kv: kv.clone(),
                });
                updates.push((kv.key.clone(), Some(Arc::new(kv))));
            }
            _ if before.is_some() => {
                events.push(Event {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key: key.clone(),
                        mod_revision: rev,
                        ..Default::default()
                    },
                });
                updates.push((key, None));
            }
            _ => {}
        }
    }
    overlay.extend(updates);
    events
}

struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    events: broadcast::Sender<Arc<CommitBatch>>,
    revision: Revision,
    compacted: Revision,
    opts: StoreOptions,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<WriterMsg>) {
        let mut batch: Vec<(Txn, Reply<TxnResponse>)> = Vec::new();
        'outer: while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    WriterMsg::Txn(txn, reply) => {
                        batch.push((txn, reply));
                        if batch.len() >= self.opts.max_batch {
                            break;
                        }
                    }
                    WriterMsg::Compact(keep, reply) => {
                        if !self.commit_batch(&mut batch) {
                            break 'outer;
                        }
                        let _ = reply.send(self.compact(keep));
                    }
                    WriterMsg::Shutdown => {
                        self.commit_batch(&mut batch);
                        break 'outer;
                    }
                }
                next = rx.try_recv().ok();
            }
            if !self.commit_batch(&mut batch) {
                break;
            }
            if let Some(keep) = self.opts.retain_revisions {
                if self.revision - self.compacted > keep + (keep / 10).max(1) {
                    if let Err(e) = self.compact(keep) {
                        tracing::warn!(error = %e, "store auto-compaction failed");
                    }
                }
            }
        }
        // Dropping `rx` here answers every still-queued txn with `Closed`.
    }

    /// Evaluates, persists and publishes `batch`, then answers its callers.
    /// Returns false if the writer must stop (its view of the disk is unknown).
    fn commit_batch(&mut self, batch: &mut Vec<(Txn, Reply<TxnResponse>)>) -> bool {
        if batch.is_empty() {
            return true;
        }
        let txns = std::mem::take(batch);
        let n = txns.len() as u64;
        self.shared.txns.fetch_add(n, Ordering::Relaxed);
        self.shared.largest_batch.fetch_max(n, Ordering::Relaxed);

        let base = self.revision;
        let mut rev = base;
        let mut overlay = Overlay::new();
        let mut events = Vec::new();
        let mut replies = Vec::with_capacity(txns.len());
        {
            // Only this thread writes the mirror, so holding a read lock while
            // evaluating is safe and does not block readers.
            let mirror = self.shared.mirror.read();
            for (txn, reply) in txns {
                if !compares_hold(&txn.compares, &overlay, &mirror) {
                    replies.push((
                        reply,
                        TxnResponse {
                            succeeded: false,
                            revision: rev,
                        },
                    ));
                    continue;
                }
                let evs = apply_ops(txn.ops, rev + 1, &mut overlay, &mirror);
                if !evs.is_empty() {
                    rev += 1;
                    events.extend(evs);
                }
                replies.push((
                    reply,
                    TxnResponse {
                        succeeded: true,
                        revision: rev,
                    },
                ));
            }
        }

        if rev == base {
            for (reply, resp) in replies {
                let _ = reply.send(Ok(resp));
            }
            return true;
        }

        match self.persist(&overlay, &events, rev) {
            Ok(()) => {
                self.shared.commits.fetch_add(1, Ordering::Relaxed);
                self.publish(base, rev, overlay, events);
                for (reply, resp) in replies {
                    let _ = reply.send(Ok(resp));
                }
                true
            }
            Err(err) => {
                tracing::error!(error = %err, "store commit failed");
                // Did the commit reach the disk anyway? The meta row tells.
                let on_disk = read_meta(&self.conn);
                let keep_going = match on_disk {
                    Ok((r, _)) if r == base => true,
                    Ok((r, _)) if r == rev => {
                        // Committed after all: keep the mirror equal to disk.
                        self.publish(base, rev, overlay, events);
                        true
                    }
                    Ok((r, _)) => {
                        tracing::error!(revision = r, "store revision on disk is unexpected");
                        false
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "store cannot read its revision back");
                        false
                    }
                };
                for (reply, _) in replies {
                    let _ = reply.send(Err(err.clone()));
                }
                if !keep_going {
                    self.shared.closed.store(true, Ordering::SeqCst);
                }
                keep_going
            }
        }
    }

    /// Writes a batch in one SQLite transaction (one fsync at commit).
    fn persist(
        &mut self,
        overlay: &Overlay,
        events: &[Event],
        rev: Revision,
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO kv (key, value, create_rev, mod_rev, version) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
                 create_rev = excluded.create_rev, mod_rev = excluded.mod_rev, version = excluded.version",
            ).map_err(sql_err)?;
            let mut delete = tx
                .prepare_cached("DELETE FROM kv WHERE key = ?1")
                .map_err(sql_err)?;
            for (key, state) in overlay {
                match state {
                    Some(kv) => {
                        upsert
                            .execute(params![
                                kv.key,
                                kv.value,
                                kv.create_revision,
                                kv.mod_revision,
                                kv.version
                            ])
                            .map_err(sql_err)?;
                    }
                    None => {
                        delete.execute(params![key]).map_err(sql_err)?;
                    }
                }
            }
            let mut change = tx
                .prepare_cached(
                    "INSERT INTO changes (rev, key, kind, value, create_rev, version) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql_err)?;
            for e in events {
                let (kind, value) = match e.kind {
                    EventKind::Put => (KIND_PUT, Some(&e.kv.value)),
                    EventKind::Delete => (KIND_DELETE, None),
                };
                change
                    .execute(params![
                        e.kv.mod_revision,
                        e.kv.key,
                        kind,
                        value,
                        e.kv.create_revision,
                        e.kv.version
                    ])
                    .map_err(sql_err)?;
            }
            let updated = tx
                .execute("UPDATE meta SET revision = ?1 WHERE id = 1", [rev])
                .map_err(sql_err)?;
            if updated != 1 {
                return Err(StoreError::Corrupt("the meta row is missing".into()));
            }
        }
        tx.commit().map_err(sql_err)?;
        Ok(())
    }

    /// After a commit: updates the mirror, then wakes watchers.
    fn publish(&mut self, base: Revision, rev: Revision, overlay: Overlay, events: Vec<Event>) {
        {
            let mut mirror = self.shared.mirror.write();
            for (key, state) in overlay {
                match state {
                    Some(kv) => {
                        mirror.insert(kv);
                    }
                    None => {
                        mirror.remove(&key);
                    }
                }
            }
            mirror.revision = rev;
            self.shared.revision.store(rev, Ordering::SeqCst);
        }
        self.revision = rev;
        self.shared
            .revisions
            .fetch_add((rev - base) as u64, Ordering::Relaxed);
        // No receivers is not an error.
        let _ = self.events.send(Arc::new(CommitBatch {
            first: base + 1,
            last: rev,
            events,
        }));
    }

    fn compact(&mut self, keep: Revision) -> Result<Revision, StoreError> {
        let target = self.revision.saturating_sub(keep).max(0);
        if target <= self.compacted {
            return Ok(self.compacted);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        tx.execute("DELETE FROM changes WHERE rev <= ?1", [target])
            .map_err(sql_err)?;
        tx.execute("UPDATE meta SET compacted = ?1 WHERE id = 1", [target])
            .map_err(sql_err)?;
        tx.commit().map_err(sql_err)?;
        self.compacted = target;
        self.shared.compacted.store(target, Ordering::SeqCst);
        Ok(target)
    }
}

/// Classifies a SQLite failure: malformed data is [`StoreError::Corrupt`]
/// (the caller must not retry), anything else is [`StoreError::Io`].
fn sql_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ffi::ErrorCode;
    use rusqlite::Error as E;
    match &e {
        E::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) =>
        {
            StoreError::Corrupt(e.to_string())
        }
        E::FromSqlConversionFailure(..)
        | E::InvalidColumnType(..)
        | E::IntegralValueOutOfRange(..)
        | E::Utf8Error(..) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Io(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(&[b'a', 0xff]), Some(b"b".to_vec()));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }

    #[test]
    fn scan_matches_naive_filter_for_all_cursors() {
        let keys = ["", "a", "a/", "a/b", "a/c", "a0", "ab", "b", "é", "é/x"];
        let stored: Vec<&str> = keys.iter().copied().filter(|k| !k.is_empty()).collect();
        let mirror = mirror_of(&stored);
        for prefix in keys {
            for start_after in std::iter::once(None).chain(keys.iter().map(|k| Some(*k))) {
                for reverse in [false, true] {
                    let mut got = Vec::new();
                    mirror.scan(prefix, start_after, reverse, |kv| {
                        got.push(kv.key.clone());
                        true
                    });
                    let mut want: Vec<String> = stored
                        .iter()
                        .filter(|k| k.starts_with(prefix))
                        .filter(|k| match start_after {
                            None => true,
                            Some(a) if reverse => **k < a,
                            Some(a) => **k > a,
                        })
                        .map(|k| k.to_string())
                        .collect();
                    want.sort();
                    if reverse {
                        want.reverse();
                    }
                    assert_eq!(
                        got, want,
                        "prefix {prefix:?} after {start_after:?} rev {reverse}"
                    );
                }
            }
        }
    }

    fn mirror_of(keys: &[&str]) -> Mirror {
        let mut m = Mirror::default();
        for (i, k) in keys.iter().enumerate() {
            let rev = i as i64 + 1;
            let kv = KeyValue {
                key: k.to_string(),
                value: vec![],
                create_revision: rev,
                mod_revision: rev,
                version: 1,
            };
            m.insert(Arc::new(kv));
            m.revision = rev;
        }
        m
    }

    #[test]
    fn ops_in_one_txn_yield_final_state_per_key() {
        let mirror = mirror_of(&["p/a", "p/b", "q"]);
        let mut overlay = Overlay::new();
        let ops = vec![
            Op::Put {
                key: "p/a".into(),
                value: b"1".to_vec(),
            },
            Op::DeletePrefix {
                prefix: "p/".into(),
            },
            Op::Put {
                key: "p/b".into(),
                value: b"2".to_vec(),
            },
            Op::Put {
                key: "p/c".into(),
                value: b"3".to_vec(),
            },
            Op::Delete {
                key: "missing".into(),
            },
        ];
        let events = apply_ops(ops, 4, &mut overlay, &mirror);
        let summary: Vec<_> = events
            .iter()
            .map(|e| {
                (
                    e.kind,
                    e.kv.key.as_str(),
                    e.kv.create_revision,
                    e.kv.version,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (EventKind::Delete, "p/a", 0, 0),
                (EventKind::Put, "p/b", 4, 1), // recreated after the delete
                (EventKind::Put, "p/c", 4, 1),
            ]
        );
        assert!(overlay["p/a"].is_none());
        // Updating an existing key keeps its create revision and bumps version.
        let events = apply_ops(
            vec![Op::Put {
                key: "q".into(),
                value: b"x".to_vec(),
            }],
            5,
            &mut overlay,
            &mirror,
        );
        assert_eq!((events[0].kv.create_revision, events[0].kv.version), (3, 2));
    }
}
