//! Integration tests of `SqliteStore` on real SQLite files.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stevedore_store::{
    Compare, Event, EventKind, KeyValue, RangeRequest, SqliteStore, Store, StoreError,
    StoreOptions, Txn, Watch,
};

fn temp_store() -> (tempfile::TempDir, PathBuf, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    (dir, path, store)
}

async fn put(store: &SqliteStore, key: &str, value: &str) -> i64 {
    let resp = store.txn(Txn::new().put(key, value)).await.unwrap();
    assert!(resp.succeeded);
    resp.revision
}

fn keys(kvs: &[KeyValue]) -> Vec<&str> {
    kvs.iter().map(|kv| kv.key.as_str()).collect()
}

/// Receives batches until an event at `upto` arrived; checks batches are
/// non-empty and revisions never go backwards.
async fn collect_until(watch: &mut Watch, upto: i64) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    while out.last().is_none_or(|e| e.kv.mod_revision < upto) {
        let batch = tokio::time::timeout(Duration::from_secs(10), watch.recv())
            .await
            .expect("watch stalled")
            .expect("watch ended")
            .expect("watch failed");
        assert!(!batch.is_empty());
        for e in batch {
            if let Some(last) = out.last() {
                assert!(
                    (e.kv.mod_revision, &e.kv.key) > (last.kv.mod_revision, &last.kv.key),
                    "out of order or duplicate: {e:?} after {last:?}"
                );
            }
            out.push(e);
        }
    }
    out
}

fn summary(events: &[Event]) -> Vec<(EventKind, String, i64)> {
    events
        .iter()
        .map(|e| (e.kind, e.kv.key.clone(), e.kv.mod_revision))
        .collect()
}

#[tokio::test]
async fn cas_create_update_and_conflict() {
    let (_dir, _path, store) = temp_store();
    assert_eq!(store.current_revision(), 0);
    assert_eq!(store.get("a").unwrap(), None);

    // Create-if-absent.
    let r = store
        .txn(Txn::new().when(Compare::absent("a")).put("a", "1"))
        .await
        .unwrap();
    assert_eq!((r.succeeded, r.revision), (true, 1));
    let kv = store.get("a").unwrap().unwrap();
    assert_eq!(
        kv,
        KeyValue {
            key: "a".into(),
            value: b"1".to_vec(),
            create_revision: 1,
            mod_revision: 1,
            version: 1
        }
    );

    // Second create-if-absent conflicts and changes nothing.
    let r = store
        .txn(Txn::new().when(Compare::absent("a")).put("a", "2"))
        .await
        .unwrap();
    assert_eq!((r.succeeded, r.revision), (false, 1));
    assert_eq!(store.get("a").unwrap().unwrap().value, b"1");

    // Update-if-unchanged.
    let r = store
        .txn(Txn::new().when(Compare::mod_revision("a", 1)).put("a", "2"))
        .await
        .unwrap();
    assert_eq!((r.succeeded, r.revision), (true, 2));
    let kv = store.get("a").unwrap().unwrap();
    assert_eq!(
        (
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        (&b"2"[..], 1, 2, 2)
    );

    // Stale mod revision conflicts.
    let r = store
        .txn(Txn::new().when(Compare::mod_revision("a", 1)).put("a", "3"))
        .await
        .unwrap();
    assert_eq!((r.succeeded, r.revision), (false, 2));
    // Version compare.
    let r = store
        .txn(Txn::new().when(Compare::version("a", 1)).put("a", "3"))
        .await
        .unwrap();
    assert!(!r.succeeded);
    let r = store
        .txn(Txn::new().when(Compare::version("a", 2)).put("a", "3"))
        .await
        .unwrap();
    assert_eq!((r.succeeded, r.revision), (true, 3));
    assert_eq!(store.get("a").unwrap().unwrap().version, 3);
    // ModRevision / Version on a missing key.
    let r = store
        .txn(
            Txn::new()
                .when(Compare::mod_revision("zz", 3))
                .put("zz", "x"),
        )
        .await
        .unwrap();
    assert!(!r.succeeded);
    let r = store
        .txn(Txn::new().when(Compare::version("zz", 0)).put("zz", "x"))
        .await
        .unwrap();
    assert!(r.succeeded);
    assert_eq!(store.current_revision(), 4);

    // Delete, then recreate: a new incarnation.
    let r = store
        .txn(Txn::new().when(Compare::mod_revision("a", 3)).delete("a"))
        .await
        .unwrap();
    assert_eq!((r.succeeded, r.revision), (true, 5));
    assert_eq!(store.get("a").unwrap(), None);
    put(&store, "a", "again").await;
    let kv = store.get("a").unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (6, 6, 1));
}

#[tokio::test]
async fn multi_op_txns_are_atomic() {
    let (_dir, _path, store) = temp_store();
    put(&store, "x", "0").await; // rev 1

    // Failing compare: none of the ops is applied.
    let r = store
        .txn(
            Txn::new()
                .when(Compare::absent("new/1"))
                .when(Compare::mod_revision("x", 99))
                .put("new/1", "a")
                .put("new/2", "b")
                .delete("x"),
        )
        .await
        .unwrap();
    assert!(!r.succeeded);
    assert_eq!(store.get("new/1").unwrap(), None);
    assert_eq!(store.get("new/2").unwrap(), None);
    assert!(store.get("x").unwrap().is_some());
    assert_eq!(store.current_revision(), 1);

    // Succeeding: all ops under one revision.
    let r = store
        .txn(
            Txn::new()
                .when(Compare::absent("new/1"))
                .when(Compare::mod_revision("x", 1))
                .put("new/1", "a")
                .put("new/2", "b")
                .delete("x"),
        )
        .await
        .unwrap();
    assert_eq!((r.succeeded, r.revision), (true, 2));
    assert_eq!(store.get("new/1").unwrap().unwrap().mod_revision, 2);
    assert_eq!(store.get("new/2").unwrap().unwrap().mod_revision, 2);
    assert_eq!(store.get("x").unwrap(), None);

    // A txn that changes nothing consumes no revision.
    let r = store
        .txn(Txn::new().delete("does-not-exist"))
        .await
        .unwrap();
    assert_eq!((r.succeeded, r.revision), (true, 2));
    let r = store
        .txn(Txn::new().when(Compare::absent("x")))
        .await
        .unwrap();
    assert_eq!((r.succeeded, r.revision), (true, 2));

    // Invalid requests are refused before reaching the writer.
    assert!(matches!(
        store.txn(Txn::new().put("", "v")).await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        store.txn(Txn::new().delete_prefix("")).await,
        Err(StoreError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn delete_prefix_deletes_only_the_prefix() {
    let (_dir, _path, store) = temp_store();
    for k in ["t/1", "t/2", "t/3", "t0", "t", "u/1"] {
        put(&store, k, "v").await;
    }
    let r = store.txn(Txn::new().delete_prefix("t/")).await.unwrap();
    assert_eq!((r.succeeded, r.revision), (true, 7));
    let all = store.range(&RangeRequest::prefix("")).unwrap();
    assert_eq!(keys(&all.kvs), vec!["t", "t0", "u/1"]);
    assert_eq!(store.count_prefix("t/").unwrap(), 0);

    // Replace a set atomically: delete the prefix and put new members.
    for k in ["s/a", "s/b"] {
        put(&store, k, "old").await;
    }
    let r = store
        .txn(
            Txn::new()
                .delete_prefix("s/")
                .put("s/b", "new")
                .put("s/c", "new"),
        )
        .await
        .unwrap();
    assert!(r.succeeded);
    let s = store.range(&RangeRequest::prefix("s/")).unwrap();
    assert_eq!(keys(&s.kvs), vec!["s/b", "s/c"]);
    let b = &s.kvs[0];
    assert_eq!(
        (b.value.as_slice(), b.create_revision, b.version),
        (&b"new"[..], r.revision, 1)
    );
    let mut w = store.watch("s/", r.revision - 1).unwrap();
    let events = collect_until(&mut w, r.revision).await;
    assert_eq!(
        summary(&events),
        vec![
            (EventKind::Delete, "s/a".into(), r.revision),
            (EventKind::Put, "s/b".into(), r.revision),
            (EventKind::Put, "s/c".into(), r.revision),
        ]
    );
}

#[tokio::test]
async fn range_order_limit_more_reverse_and_pagination() {
    let (_dir, _path, store) = temp_store();
    // Insert out of order, including a multi-byte UTF-8 key (byte order).
    for k in ["k/b", "k/é", "k/a", "k/c", "k/aa", "j", "l"] {
        put(&store, k, "v").await;
    }
    let all = store.range(&RangeRequest::prefix("k/")).unwrap();
    assert_eq!(keys(&all.kvs), vec!["k/a", "k/aa", "k/b", "k/c", "k/é"]);
    assert!(!all.more);
    assert_eq!(all.revision, 7);
    assert_eq!(store.count_prefix("k/").unwrap(), 5);
    assert_eq!(store.count_prefix("").unwrap(), 7);

    let page = store.range(&RangeRequest::prefix("k/").limit(2)).unwrap();
    assert_eq!(keys(&page.kvs), vec!["k/a", "k/aa"]);
    assert!(page.more);
    let page = store
        .range(&RangeRequest::prefix("k/").start_after("k/aa").limit(3))
        .unwrap();
    assert_eq!(keys(&page.kvs), vec!["k/b", "k/c", "k/é"]);
    assert!(!page.more);
    let page = store.range(&RangeRequest::prefix("k/").limit(0)).unwrap();
    assert!(page.kvs.is_empty() && page.more);

    let rev = store
        .range(&RangeRequest::prefix("k/").reverse().limit(2))
        .unwrap();
    assert_eq!(keys(&rev.kvs), vec!["k/é", "k/c"]);
    assert!(rev.more);
    let rev = store
        .range(&RangeRequest::prefix("k/").reverse().start_after("k/c"))
        .unwrap();
    assert_eq!(keys(&rev.kvs), vec!["k/b", "k/aa", "k/a"]);
    // Cursors outside the prefix.
    let r = store
        .range(&RangeRequest::prefix("k/").start_after("z"))
        .unwrap();
    assert!(r.kvs.is_empty());
    let r = store
        .range(&RangeRequest::prefix("k/").start_after("a"))
        .unwrap();
    assert_eq!(r.kvs.len(), 5);
    let r = store
        .range(&RangeRequest::prefix("k/").reverse().start_after("a"))
        .unwrap();
    assert!(r.kvs.is_empty());
    let r = store
        .range(&RangeRequest::prefix("k/").reverse().start_after("z"))
        .unwrap();
    assert_eq!(r.kvs.len(), 5);
    let r = store.range(&RangeRequest::prefix("nothing/")).unwrap();
    assert!(r.kvs.is_empty() && !r.more);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pagination_is_stable_under_concurrent_inserts() {
    let (_dir, _path, store) = temp_store();
    // Keys present throughout: the even ones.
    let mut txn = Txn::new();
    for i in (0..2000).step_by(2) {
        txn = txn.put(format!("p/{i:05}"), "v");
    }
    store.txn(txn).await.unwrap();

    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in (1..2000).step_by(2) {
                store
                    .txn(Txn::new().put(format!("p/{i:05}"), "v"))
                    .await
                    .unwrap();
            }
        })
    };
    for reverse in [false, true] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let req = RangeRequest {
                prefix: "p/".into(),
                start_after: cursor.clone(),
                limit: Some(37),
                reverse,
            };
            let page = store.range(&req).unwrap();
            seen.extend(page.kvs.iter().map(|kv| kv.key.clone()));
            cursor = page.kvs.last().map(|kv| kv.key.clone());
            if !page.more {
                break;
            }
            tokio::task::yield_now().await;
        }
        // Strictly monotonic: no duplicates, right order.
        for w in seen.windows(2) {
            assert!(if reverse { w[0] > w[1] } else { w[0] < w[1] }, "{w:?}");
        }
        let seen: HashSet<String> = seen.into_iter().collect();
        for i in (0..2000).step_by(2) {
            assert!(seen.contains(&format!("p/{i:05}")), "skipped p/{i:05}");
        }
    }
    writer.await.unwrap();
    assert_eq!(store.count_prefix("p/").unwrap(), 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_assigns_distinct_consecutive_revisions() {
    let (_dir, _path, store) = temp_store();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let r = store
                .txn(Txn::new().put(format!("g/{i:03}"), i.to_string()))
                .await
                .unwrap();
            assert!(r.succeeded);
            (i, r.revision)
        }));
    }
    let mut revs = BTreeMap::new();
    for t in tasks {
        let (i, rev) = t.await.unwrap();
        assert!(revs.insert(rev, i).is_none(), "revision {rev} given twice");
    }
    assert_eq!(
        revs.keys().copied().collect::<Vec<_>>(),
        (1..=200).collect::<Vec<_>>()
    );
    assert_eq!(store.current_revision(), 200);
    for (rev, i) in &revs {
        let kv = store.get(&format!("g/{i:03}")).unwrap().unwrap();
        assert_eq!(kv.mod_revision, *rev);
        assert_eq!(kv.value, i.to_string().into_bytes());
    }
    let stats = store.stats();
    assert_eq!((stats.txns, stats.revisions), (200, 200));
    assert!(stats.commits >= 1 && stats.commits <= 200);
    eprintln!("200 concurrent txns: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cas_contention_counter_ends_exact() {
    let (_dir, _path, store) = temp_store();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut attempts = 0;
            loop {
                attempts += 1;
                let cur = store.get("counter").unwrap();
                let (n, cmp) = match &cur {
                    None => (0u64, Compare::absent("counter")),
                    Some(kv) => (
                        std::str::from_utf8(&kv.value)
                            .unwrap()
                            .parse::<u64>()
                            .unwrap(),
                        Compare::mod_revision("counter", kv.mod_revision),
                    ),
                };
                let r = store
                    .txn(Txn::new().when(cmp).put("counter", (n + 1).to_string()))
                    .await
                    .unwrap();
                if r.succeeded {
                    return attempts;
                }
            }
        }));
    }
    let mut total_attempts = 0;
    for t in tasks {
        total_attempts += t.await.unwrap();
    }
    let kv = store.get("counter").unwrap().unwrap();
    assert_eq!(kv.value, b"50");
    assert_eq!(kv.version, 50);
    assert_eq!(store.current_revision(), 50);
    assert!(total_attempts >= 50);
}

#[tokio::test]
async fn reopen_preserves_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (before, rev) = {
        let store = SqliteStore::open(&path).unwrap();
        for i in 0..50 {
            put(&store, &format!("r/{i:02}"), &format!("v{i}")).await;
        }
        put(&store, "r/07", "updated").await;
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
    assert_eq!(put(&store, "r/new", "x").await, 54);

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
        put(&store, "ok", "v").await;
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

#[tokio::test]
async fn usable_as_dyn_store() {
    let (_dir, _path, store) = temp_store();
    let dyn_store: Arc<dyn Store> = store;
    let r = dyn_store.txn(Txn::new().put("k", "v")).await.unwrap();
    assert_eq!(r.revision, 1);
    assert_eq!(dyn_store.get("k").unwrap().unwrap().value, b"v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_history_then_live() {
    let (_dir, _path, store) = temp_store();
    put(&store, "a/1", "x").await; // 1
    put(&store, "a/2", "y").await; // 2
    put(&store, "b/1", "z").await; // 3
    store.txn(Txn::new().delete("a/1")).await.unwrap(); // 4

    let mut w = store.watch("a/", 0).unwrap();
    let events = collect_until(&mut w, 4).await;
    assert_eq!(
        summary(&events),
        vec![
            (EventKind::Put, "a/1".into(), 1),
            (EventKind::Put, "a/2".into(), 2),
            (EventKind::Delete, "a/1".into(), 4),
        ]
    );
    assert_eq!(events[1].kv.value, b"y");
    assert_eq!(
        events[2].kv,
        KeyValue {
            key: "a/1".into(),
            mod_revision: 4,
            ..Default::default()
        }
    );

    // Live.
    put(&store, "b/2", "ignored").await; // 5
    put(&store, "a/3", "live").await; // 6
    let events = collect_until(&mut w, 6).await;
    assert_eq!(summary(&events), vec![(EventKind::Put, "a/3".into(), 6)]);
    assert_eq!(
        (
            events[0].kv.value.as_slice(),
            events[0].kv.create_revision,
            events[0].kv.version
        ),
        (&b"live"[..], 6, 1)
    );

    // From a revision in the middle.
    let mut w = store.watch("a/", 2).unwrap();
    let events = collect_until(&mut w, 6).await;
    assert_eq!(
        summary(&events),
        vec![
            (EventKind::Delete, "a/1".into(), 4),
            (EventKind::Put, "a/3".into(), 6)
        ]
    );
    // From "now" (a future revision works too): only live events.
    let mut w = store.watch("", store.current_revision()).unwrap();
    put(&store, "c", "1").await; // 7
    let events = collect_until(&mut w, 7).await;
    assert_eq!(summary(&events), vec![(EventKind::Put, "c".into(), 7)]);

    // Closing the store ends watches with Closed.
    let mut w = store.watch("", 7).unwrap();
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
        put(&store, &format!("k{i}"), "v").await;
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
        put(&store, &format!("auto{i}"), "v").await;
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
        put(&store, &format!("k{i:02}"), "v").await; // one batch each: overflows the buffer
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
