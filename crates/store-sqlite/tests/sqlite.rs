//! Integration tests of `SqliteStore` on real SQLite files: the shared
//! contract suite plus SQLite-specific reopen, corruption, compaction and
//! crash tests.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stevedore_store::contract::{collect_until, put, summary};
use stevedore_store::{Compare, EventKind, KeyValue, RangeRequest, Store, StoreError, Txn};
use stevedore_store_sqlite::{SqliteStore, StoreOptions};

fn fresh_store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let (dir, _path, store) = temp_store();
    (dir, store)
}

stevedore_store::store_contract_tests!(super::fresh_store);

/// Concurrent txns share fsyncs: SQLite-specific accounting on top of the
/// contract's distinct-consecutive-revisions check.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_batches_concurrent_txns() {
    let (_dir, _path, store) = temp_store();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .txn(Txn::new().put(format!("g/{i:03}"), "v"))
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().succeeded);
    }
    let stats = store.stats();
    assert_eq!((stats.txns, stats.revisions), (200, 200));
    assert!(stats.commits >= 1 && stats.commits <= 200);
    eprintln!("200 concurrent txns: {stats:?}");
}

fn temp_store() -> (tempfile::TempDir, PathBuf, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    (dir, path, store)
}

#[tokio::test]
async fn reopen_preserves_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (before, rev) = {
        let store = SqliteStore::open(&path).unwrap();
        for i in 0..50 {
            put(&*store, &format!("r/{i:02}"), &format!("v{i}")).await;
        }
        put(&*store, "r/07", "updated").await;
        store.txn(Txn::new().delete("r/13")).await.unwrap();
        let bin: Vec<u8> = (0..=255).collect();
        store.txn(Txn::new().put("bin", bin)).await.unwrap();
        // A second open while the first is live is refused.
        assert!(matches!(
            SqliteStore::open(&path),
            Err(StoreError::AlreadyOpen(_))
        ));
        let all = store.range(&RangeRequest::prefix("")).unwrap();
        (all.kvs, store.current_revision())
    }; // dropped: closed
    assert_eq!(rev, 53);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.current_revision(), rev);
    let after = store.range(&RangeRequest::prefix("")).unwrap();
    assert_eq!(after.kvs, before);
    assert_eq!(after.revision, rev);
    let kv = store.get("r/07").unwrap().unwrap();
    assert_eq!(
        (
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        (&b"updated"[..], 8, 51, 2)
    );
    assert_eq!(store.get("r/13").unwrap(), None);
    // History survived too, and revisions continue.
    let mut w = store.watch("r/1", 51).unwrap();
    let events = collect_until(&mut w, 52).await;
    assert_eq!(
        summary(&events),
        vec![(EventKind::Delete, "r/13".into(), 52)]
    );
    assert_eq!(put(&*store, "r/new", "x").await, 54);

    // close() then a fresh open works; the closed handle refuses work.
    store.close();
    assert_eq!(store.get("r/07"), Err(StoreError::Closed));
    assert_eq!(
        store.txn(Txn::new().put("a", "b")).await,
        Err(StoreError::Closed)
    );
    let again = SqliteStore::open(&path).unwrap();
    assert_eq!(again.current_revision(), 54);
}

#[tokio::test]
async fn corrupt_rows_are_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        put(&*store, "ok", "v").await;
    }
    // Invalid UTF-8 key.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO kv (key, value, create_rev, mod_rev, version) VALUES (CAST(X'FF' AS TEXT), X'00', 1, 1, 1)",
            [],
        )
        .unwrap();
    }
    assert!(matches!(
        SqliteStore::open(&path),
        Err(StoreError::Corrupt(_))
    ));
    // Impossible revisions.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("DELETE FROM kv WHERE key <> 'ok'", [])
            .unwrap();
        conn.execute("UPDATE kv SET mod_rev = 99", []).unwrap();
    }
    assert!(matches!(
        SqliteStore::open(&path),
        Err(StoreError::Corrupt(_))
    ));
    // Missing meta row.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("UPDATE kv SET mod_rev = 1", []).unwrap();
        conn.execute("DELETE FROM meta", []).unwrap();
    }
    assert!(matches!(
        SqliteStore::open(&path),
        Err(StoreError::Corrupt(_))
    ));
    // Not a database at all.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![b'x'; 8192]).unwrap();
    assert!(matches!(
        SqliteStore::open(&junk),
        Err(StoreError::Corrupt(_))
    ));
    // A schema from the future.
    let future = dir.path().join("future.db");
    {
        let conn = rusqlite::Connection::open(&future).unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
    }
    assert!(matches!(
        SqliteStore::open(&future),
        Err(StoreError::UnsupportedSchema { found: 999, .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_watches() {
    // History and live delivery are the contract suite's
    // `watch_history_then_live`; closing is SQLite-specific.
    let (_dir, _path, store) = temp_store();
    put(&*store, "a/1", "x").await;
    let mut w = store.watch("", 0).unwrap();
    assert_eq!(
        summary(&collect_until(&mut w, 1).await),
        vec![(EventKind::Put, "a/1".into(), 1)]
    );
    store.close();
    let end = tokio::time::timeout(Duration::from_secs(10), w.recv())
        .await
        .unwrap();
    assert_eq!(end, Some(Err(StoreError::Closed)));
    assert_eq!(w.recv().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_compacted_revision_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let opts = StoreOptions {
        retain_revisions: None,
        ..Default::default()
    };
    let store = SqliteStore::open_with(&path, opts).unwrap();
    for i in 0..10 {
        put(&*store, &format!("k{i}"), "v").await;
    }
    assert_eq!(store.compact(4).await.unwrap(), 6);
    assert_eq!(store.compacted_revision(), 6);
    assert_eq!(
        store.watch("", 5).err(),
        Some(StoreError::Compacted {
            requested: 5,
            compacted: 6
        })
    );
    let mut w = store.watch("", 6).unwrap();
    let events = collect_until(&mut w, 10).await;
    assert_eq!(
        events.iter().map(|e| e.kv.mod_revision).collect::<Vec<_>>(),
        vec![7, 8, 9, 10]
    );
    // Compaction survives reopen.
    drop(w);
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.compacted_revision(), 6);
    assert!(matches!(
        store.watch("", 0),
        Err(StoreError::Compacted { .. })
    ));

    // Automatic compaction keeps about `retain_revisions`.
    drop(store);
    let opts = StoreOptions {
        retain_revisions: Some(10),
        ..Default::default()
    };
    let store = SqliteStore::open_with(&path, opts).unwrap();
    for i in 0..40 {
        put(&*store, &format!("auto{i}"), "v").await;
    }
    let compacted = store.compacted_revision();
    assert!(
        (50 - 10 - 2..=50 - 10).contains(&compacted),
        "compacted {compacted}"
    );
    let mut w = store.watch("auto", 50 - 10).unwrap();
    let events = collect_until(&mut w, 50).await;
    assert_eq!(events.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_watcher_rereads_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let opts = StoreOptions {
        watch_buffer: 2,
        ..Default::default()
    };
    let store = SqliteStore::open_with(&path, opts).unwrap();
    let mut w = store.watch("", 0).unwrap();
    for i in 0..50 {
        put(&*store, &format!("k{i:02}"), "v").await; // one batch each: overflows the buffer
    }
    let events = collect_until(&mut w, 50).await;
    assert_eq!(
        events.iter().map(|e| e.kv.mod_revision).collect::<Vec<_>>(),
        (1..=50).collect::<Vec<_>>()
    );
}

/// Many watchers started at various revisions while writers run: each sees
/// every revision after its start exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_handoff_is_gap_free_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let opts = StoreOptions {
        watch_buffer: 8,
        ..Default::default()
    };
    let store = SqliteStore::open_with(&path, opts).unwrap();
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 60;
    let total = (WRITERS * PER_WRITER) as i64;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..PER_WRITER {
                store
                    .txn(Txn::new().put(format!("w{w}/{i}"), "v"))
                    .await
                    .unwrap();
            }
        }));
    }
    let mut watchers = Vec::new();
    for n in 0..12 {
        tokio::time::sleep(Duration::from_millis(3)).await;
        let from = if n % 3 == 0 {
            store.current_revision()
        } else {
            store.current_revision() / 2
        };
        let mut watch = store.watch("", from).unwrap();
        watchers.push(tokio::spawn(async move {
            // A watcher that starts after the last write has nothing to
            // see (on a loaded machine the writers can finish before the
            // later watchers start); collecting would wait forever.
            if from >= total {
                let next = tokio::time::timeout(Duration::from_millis(200), watch.recv()).await;
                assert!(next.is_err(), "watch from {from} saw {next:?}");
                return;
            }
            let events = collect_until(&mut watch, total).await;
            let revs: Vec<i64> = events.iter().map(|e| e.kv.mod_revision).collect();
            assert_eq!(
                revs,
                ((from + 1)..=total).collect::<Vec<_>>(),
                "watch from {from}"
            );
        }));
    }
    for t in writers {
        t.await.unwrap();
    }
    for t in watchers {
        t.await.unwrap();
    }
}

// ---- crash durability -------------------------------------------------------

const CHILD_ENV: &str = "STEVEDORE_STORE_CRASH_CHILD";

/// Not a test on its own: the body of the child process of
/// `acknowledged_writes_survive_sigkill` (does nothing without the env var).
#[test]
#[ignore = "child process of acknowledged_writes_survive_sigkill"]
// Writes until the parent's SIGKILL; the deadline is a wall-time safety net.
#[allow(clippy::disallowed_methods)]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = SqliteStore::open(Path::new(&path)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut tasks = Vec::new();
        for t in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = 0;
                while Instant::now() < deadline {
                    let id = format!("{t:02}-{i:06}");
                    // A multi-op txn: both keys or neither must survive.
                    let r = store
                        .txn(
                            Txn::new()
                                .when(Compare::absent(format!("c/{id}/a")))
                                .put(format!("c/{id}/a"), id.clone())
                                .put(format!("c/{id}/b"), vec![7u8; 300]),
                        )
                        .await
                        .unwrap();
                    assert!(r.succeeded);
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {id} {}", r.revision).unwrap();
                    out.flush().unwrap();
                    i += 1;
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut acked: BTreeMap<String, i64> = BTreeMap::new();
    let mut parse = |line: &str| {
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (id, rev) = rest.split_once(' ').unwrap();
            acked.insert(id.to_string(), rev.parse().unwrap());
        }
    };
    let mut seen = 0;
    for line in lines.by_ref() {
        let line = line.unwrap();
        parse(&line);
        if line.starts_with("ACK ") {
            seen += 1;
            if seen == 400 {
                break;
            }
        }
    }
    assert_eq!(seen, 400, "child stopped early");
    child.kill().unwrap(); // SIGKILL, while 16 writers are mid-flight
                           // Lines the child wrote before dying are acknowledged writes too.
    for line in lines {
        parse(&line.unwrap());
    }
    child.wait().unwrap();
    assert!(acked.len() >= 400);

    let store = SqliteStore::open(&path).unwrap();
    for (id, rev) in &acked {
        let a = store
            .get(&format!("c/{id}/a"))
            .unwrap()
            .unwrap_or_else(|| panic!("lost {id}"));
        assert_eq!(a.value, id.as_bytes());
        assert_eq!(a.mod_revision, *rev);
    }
    // No half-applied txn: every txn present has both keys at one revision,
    // and revisions are exactly 1..=current with one txn each.
    let all = store.range(&RangeRequest::prefix("c/")).unwrap();
    let mut by_id: BTreeMap<&str, Vec<&KeyValue>> = BTreeMap::new();
    for kv in &all.kvs {
        let id = kv.key.split('/').nth(1).unwrap();
        by_id.entry(id).or_default().push(kv);
    }
    let mut revs = BTreeSet::new();
    for (id, kvs) in &by_id {
        assert_eq!(kvs.len(), 2, "txn {id} half-applied");
        assert_eq!(kvs[0].mod_revision, kvs[1].mod_revision);
        assert_eq!(kvs[1].value, vec![7u8; 300]);
        revs.insert(kvs[0].mod_revision);
    }
    assert_eq!(revs.len(), by_id.len());
    assert_eq!(
        revs.into_iter().collect::<Vec<_>>(),
        (1..=store.current_revision()).collect::<Vec<_>>()
    );
    eprintln!(
        "acknowledged {} txns before SIGKILL; {} on disk",
        acked.len(),
        by_id.len()
    );
}
