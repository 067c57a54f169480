//! `stevedore-logstore-sqlite`: the embedded SQLite [`LogStore`], one file
//! (`<data-dir>/logs.db`) apart from the control-plane KV.
//!
//! # Design
//!
//! * **On disk, not in memory.** Reads are SQL range scans over the primary
//!   key; nothing is cached beyond SQLite's page cache (2 MiB per
//!   connection), so server memory does not grow with the volume of logs.
//! * **Durable appends.** WAL mode with `synchronous=FULL`: `append`
//!   returns after its transaction is fsynced, so an acknowledged
//!   PutLogEvents survives `kill -9` and power loss. One writer connection
//!   behind a mutex serialises appends, which is also what makes a stream's
//!   sequences gap-free and distinct. A PutLogEvents batch (up to 10,000
//!   events) is one transaction and one fsync.
//! * **Readers never wait for the writer**: WAL readers see the last
//!   committed state; read connections are pooled.
//! * **Compact rows.** `events` is a `WITHOUT ROWID` table keyed by
//!   `(stream, ts, seq)`: the key is the time-range index, so there is no
//!   second index, and a row costs its message plus about 25 bytes of
//!   integers and SQLite framing. Messages are stored as they came: log
//!   lines of ~100 bytes compress little one by one, and the ratio measured
//!   in BENCHMARKS.md meets the 1.5x target without it.
//! * **Retention deletes ranges** (`ts < cutoff` within a stream); freed
//!   pages are reused by later appends. `journal_size_limit` keeps the WAL
//!   file from staying at its high-water mark after a checkpoint.
//!
//! # Schema
//!
//! ```sql
//! CREATE TABLE streams (
//!     id           INTEGER PRIMARY KEY,
//!     name         TEXT NOT NULL UNIQUE,   -- the caller's stream name
//!     next_seq     INTEGER NOT NULL,
//!     stored_bytes INTEGER NOT NULL,
//!     first_ts     INTEGER,
//!     last_ts      INTEGER,
//!     last_ingest  INTEGER
//! );
//! CREATE TABLE events (
//!     stream INTEGER NOT NULL,             -- streams.id
//!     ts     INTEGER NOT NULL,             -- event timestamp, ms
//!     seq    INTEGER NOT NULL,             -- the stream's ingest sequence
//!     ingest INTEGER NOT NULL,             -- ingestion time, ms
//!     msg    BLOB NOT NULL,                -- UTF-8 message
//!     PRIMARY KEY (stream, ts, seq)
//! ) WITHOUT ROWID;
//! ```

use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stevedore_logstore::{
    LogStore, LogStoreError, NewEvent, Position, ReadRequest, Result, StoredEvent, StreamStats,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS streams (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    next_seq     INTEGER NOT NULL,
    stored_bytes INTEGER NOT NULL,
    first_ts     INTEGER,
    last_ts      INTEGER,
    last_ingest  INTEGER
);
CREATE TABLE IF NOT EXISTS events (
    stream INTEGER NOT NULL,
    ts     INTEGER NOT NULL,
    seq    INTEGER NOT NULL,
    ingest INTEGER NOT NULL,
    msg    BLOB NOT NULL,
    PRIMARY KEY (stream, ts, seq)
) WITHOUT ROWID;
";

/// A page of events: `?1` stream name, `(?2, ?3)` < position < `(?4, ?5)`,
/// `?6` rows. Public so a test can check SQLite's plan for it.
pub const READ_FORWARD: &str = "SELECT ts, seq, ingest, msg FROM events
    WHERE stream = (SELECT id FROM streams WHERE name = ?1)
      AND (ts, seq) > (?2, ?3) AND (ts, seq) < (?4, ?5)
    ORDER BY ts, seq LIMIT ?6";
pub const READ_BACKWARD: &str = "SELECT ts, seq, ingest, msg FROM events
    WHERE stream = (SELECT id FROM streams WHERE name = ?1)
      AND (ts, seq) > (?2, ?3) AND (ts, seq) < (?4, ?5)
    ORDER BY ts DESC, seq DESC LIMIT ?6";

/// Read connections kept open between reads; more are opened under load
/// and closed when returned to a full pool.
const READER_POOL: usize = 4;
/// The WAL file is truncated to this after a checkpoint.
const WAL_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

pub struct SqliteLogStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn backend(e: rusqlite::Error) -> LogStoreError {
    LogStoreError::Backend(e.to_string())
}

fn seq_to_sql(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn seq_from_sql(seq: i64) -> Result<u64> {
    u64::try_from(seq).map_err(|_| LogStoreError::Corrupt(format!("negative sequence {seq}")))
}

fn limit_to_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A stream's row: its id and counters.
fn stream_row(conn: &Connection, name: &str) -> Result<Option<(i64, StreamStats)>> {
    let row = conn
        .prepare_cached(
            "SELECT id, next_seq, stored_bytes, first_ts, last_ts, last_ingest FROM streams WHERE name = ?1",
        )
        .map_err(backend)?
        .query_row([name], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })
        .optional()
        .map_err(backend)?;
    row.map(|(id, next_seq, stored_bytes, first, last, ingest)| {
        Ok((
            id,
            StreamStats {
                first_event_timestamp: first,
                last_event_timestamp: last,
                last_ingestion_time: ingest,
                stored_bytes,
                next_seq: seq_from_sql(next_seq)?,
            },
        ))
    })
    .transpose()
}

/// The row for `name`, created with default counters if missing.
fn ensure_stream(conn: &Connection, name: &str) -> Result<(i64, StreamStats)> {
    if let Some(row) = stream_row(conn, name)? {
        return Ok(row);
    }
    let stats = StreamStats::default();
    conn.execute(
        "INSERT INTO streams (name, next_seq, stored_bytes) VALUES (?1, ?2, 0)",
        params![name, seq_to_sql(stats.next_seq)],
    )
    .map_err(backend)?;
    Ok((conn.last_insert_rowid(), stats))
}

fn write_stats(conn: &Connection, id: i64, s: &StreamStats) -> Result<()> {
    conn.prepare_cached(
        "UPDATE streams SET next_seq = ?2, stored_bytes = ?3, first_ts = ?4, last_ts = ?5, last_ingest = ?6 WHERE id = ?1",
    )
    .map_err(backend)?
    .execute(params![
        id,
        seq_to_sql(s.next_seq),
        s.stored_bytes,
        s.first_event_timestamp,
        s.last_event_timestamp,
        s.last_ingestion_time
    ])
    .map_err(backend)?;
    Ok(())
}

/// `name` starts with `?1` (character-wise, which for UTF-8 TEXT is the
/// same as byte-wise).
const NAME_HAS_PREFIX: &str = "substr(name, 1, length(?1)) = ?1";

fn open_conn(path: &Path, flags: OpenFlags) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, flags).map_err(backend)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(backend)?;
    Ok(conn)
}

impl SqliteLogStore {
    /// Opens (creating if needed) the log store at `path`.
    pub fn open(path: &Path) -> Result<Arc<SqliteLogStore>> {
        let conn = open_conn(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(LogStoreError::Backend(format!(
                "could not enable WAL on {} (journal_mode is {mode})",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(backend)?;
        conn.pragma_update(None, "journal_size_limit", WAL_LIMIT_BYTES)
            .map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        Ok(Arc::new(SqliteLogStore {
            path: path.to_path_buf(),
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
        }))
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.readers.lock().pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = open_conn(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.pragma_update(None, "query_only", true).map_err(backend)?;
                c
            }
        };
        let out = f(&conn);
        let mut pool = self.readers.lock();
        if pool.len() < READER_POOL {
            pool.push(conn);
        }
        out
    }

    /// Runs `f` in one IMMEDIATE transaction on the writer connection.
    fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let out = f(&tx)?;
        tx.commit().map_err(backend)?;
        Ok(out)
    }
}

impl LogStore for SqliteLogStore {
    fn append(
        &self,
        stream: &str,
        ingestion_time: i64,
        events: &[NewEvent],
    ) -> Result<StreamStats> {
        if events.is_empty() {
            return self.stats(stream);
        }
        self.write(|tx| {
            let (id, mut s) = ensure_stream(tx, stream)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (stream, ts, seq, ingest, msg) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(backend)?;
            for e in events {
                insert
                    .execute(params![
                        id,
                        e.timestamp,
                        seq_to_sql(s.next_seq),
                        ingestion_time,
                        e.message.as_bytes()
                    ])
                    .map_err(backend)?;
                s.next_seq += 1;
                s.stored_bytes += e.message.len() as i64;
                s.first_event_timestamp = Some(
                    s.first_event_timestamp
                        .map_or(e.timestamp, |f| f.min(e.timestamp)),
                );
                s.last_event_timestamp = Some(
                    s.last_event_timestamp
                        .map_or(e.timestamp, |l| l.max(e.timestamp)),
                );
            }
            s.last_ingestion_time = Some(ingestion_time);
            write_stats(tx, id, &s)?;
            Ok(s)
        })
    }

    fn import(&self, stream: &str, events: &[StoredEvent], stats: &StreamStats) -> Result<()> {
        self.write(|tx| {
            let (id, _) = ensure_stream(tx, stream)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events (stream, ts, seq, ingest, msg) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(backend)?;
            for e in events {
                insert
                    .execute(params![
                        id,
                        e.position.timestamp,
                        seq_to_sql(e.position.seq),
                        e.ingestion_time,
                        e.message.as_bytes()
                    ])
                    .map_err(backend)?;
            }
            write_stats(tx, id, stats)
        })
    }

    fn read(&self, stream: &str, req: &ReadRequest) -> Result<Vec<StoredEvent>> {
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let after = req.after.unwrap_or(Position::new(i64::MIN, 0));
        let before = req.before.unwrap_or(Position::new(i64::MAX, u64::MAX));
        let sql = if req.reverse {
            READ_BACKWARD
        } else {
            READ_FORWARD
        };
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![
                        stream,
                        after.timestamp,
                        seq_to_sql(after.seq),
                        before.timestamp,
                        seq_to_sql(before.seq),
                        limit_to_sql(req.limit)
                    ],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, Vec<u8>>(3)?,
                        ))
                    },
                )
                .map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                let (ts, seq, ingest, msg) = row.map_err(backend)?;
                let message = String::from_utf8(msg).map_err(|_| {
                    LogStoreError::Corrupt(format!(
                        "event ({ts}, {seq}) of stream {stream} is not UTF-8"
                    ))
                })?;
                out.push(StoredEvent {
                    position: Position::new(ts, seq_from_sql(seq)?),
                    ingestion_time: ingest,
                    message,
                });
            }
            Ok(out)
        })
    }

    fn stats(&self, stream: &str) -> Result<StreamStats> {
        self.with_reader(|conn| {
            Ok(stream_row(conn, stream)?
                .map(|(_, s)| s)
                .unwrap_or_default())
        })
    }

    fn delete_before(&self, stream: &str, cutoff: i64) -> Result<u64> {
        self.write(|tx| {
            let Some((id, mut s)) = stream_row(tx, stream)? else {
                return Ok(0);
            };
            let (count, bytes): (i64, i64) = tx
                .query_row(
                    "SELECT count(*), coalesce(sum(length(msg)), 0) FROM events WHERE stream = ?1 AND ts < ?2",
                    params![id, cutoff],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(backend)?;
            if count == 0 {
                return Ok(0);
            }
            tx.execute(
                "DELETE FROM events WHERE stream = ?1 AND ts < ?2",
                params![id, cutoff],
            )
            .map_err(backend)?;
            s.stored_bytes = (s.stored_bytes - bytes).max(0);
            s.first_event_timestamp = tx
                .query_row(
                    "SELECT min(ts) FROM events WHERE stream = ?1",
                    [id],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            write_stats(tx, id, &s)?;
            Ok(u64::try_from(count).unwrap_or(0))
        })
    }

    fn delete_stream(&self, stream: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM events WHERE stream = (SELECT id FROM streams WHERE name = ?1)",
                [stream],
            )
            .map_err(backend)?;
            tx.execute("DELETE FROM streams WHERE name = ?1", [stream])
                .map_err(backend)?;
            Ok(())
        })
    }

    fn delete_prefix(&self, prefix: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                &format!(
                    "DELETE FROM events WHERE stream IN (SELECT id FROM streams WHERE {NAME_HAS_PREFIX})"
                ),
                [prefix],
            )
            .map_err(backend)?;
            tx.execute(
                &format!("DELETE FROM streams WHERE {NAME_HAS_PREFIX}"),
                [prefix],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn streams(&self, prefix: &str) -> Result<Vec<String>> {
        self.with_reader(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT name FROM streams WHERE {NAME_HAS_PREFIX} ORDER BY name"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map([prefix], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
    }
}
