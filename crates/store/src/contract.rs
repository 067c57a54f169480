//! The backend-neutral contract of [`Store`]: behaviour every backend must
//! show, written once. A backend crate instantiates the whole suite in its
//! tests with [`store_contract_tests!`](crate::store_contract_tests) and a
//! factory returning `(guard, Arc<dyn Store>)` for a fresh, empty store (the
//! guard, e.g. a temp dir, lives as long as the test).
//!
//! Backend-specific behaviour (durability across a crash, reopen, compaction
//! policy, file locking) is tested in the backend's own crate.

#![allow(clippy::missing_panics_doc)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::{Compare, Event, EventKind, KeyValue, RangeRequest, Store, StoreError, Txn, Watch};

/// Runs every contract test against the store built by `$factory`, a
/// `fn() -> (G, Arc<dyn Store>)` (any expression callable with no arguments).
#[macro_export]
macro_rules! store_contract_tests {
    ($factory:expr) => {
        mod store_contract {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn cas_create_update_and_conflict() {
                let (_guard, store) = $factory();
                $crate::contract::cas_create_update_and_conflict(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn multi_op_txns_are_atomic() {
                let (_guard, store) = $factory();
                $crate::contract::multi_op_txns_are_atomic(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn delete_prefix_deletes_only_the_prefix() {
                let (_guard, store) = $factory();
                $crate::contract::delete_prefix_deletes_only_the_prefix(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn range_order_limit_more_reverse_and_pagination() {
                let (_guard, store) = $factory();
                $crate::contract::range_order_limit_more_reverse_and_pagination(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn pagination_is_stable_under_concurrent_inserts() {
                let (_guard, store) = $factory();
                $crate::contract::pagination_is_stable_under_concurrent_inserts(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_txns_get_distinct_consecutive_revisions() {
                let (_guard, store) = $factory();
                $crate::contract::concurrent_txns_get_distinct_consecutive_revisions(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn cas_contention_counter_ends_exact() {
                let (_guard, store) = $factory();
                $crate::contract::cas_contention_counter_ends_exact(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn watch_history_then_live() {
                let (_guard, store) = $factory();
                $crate::contract::watch_history_then_live(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn usable_through_arc_dyn() {
                let (_guard, store) = $factory();
                $crate::contract::usable_through_arc_dyn(store).await;
            }
        }
    };
}

/// Commits one put and returns its revision.
pub async fn put(store: &dyn Store, key: &str, value: &str) -> i64 {
    let resp = store.txn(Txn::new().put(key, value)).await.unwrap();
    assert!(resp.succeeded);
    resp.revision
}

fn keys(kvs: &[KeyValue]) -> Vec<&str> {
    kvs.iter().map(|kv| kv.key.as_str()).collect()
}

/// Receives batches until an event at `upto` arrived; checks batches are
/// non-empty and revisions never go backwards.
pub async fn collect_until(watch: &mut Watch, upto: i64) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    while out.last().is_none_or(|e| e.kv.mod_revision < upto) {
        let batch = tokio::time::timeout(Duration::from_secs(30), watch.recv())
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

/// (kind, key, mod revision) of each event, for compact assertions.
pub fn summary(events: &[Event]) -> Vec<(EventKind, String, i64)> {
    events
        .iter()
        .map(|e| (e.kind, e.kv.key.clone(), e.kv.mod_revision))
        .collect()
}

pub async fn cas_create_update_and_conflict(store: Arc<dyn Store>) {
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
    put(&*store, "a", "again").await;
    let kv = store.get("a").unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (6, 6, 1));
}

pub async fn multi_op_txns_are_atomic(store: Arc<dyn Store>) {
    put(&*store, "x", "0").await; // rev 1

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

pub async fn delete_prefix_deletes_only_the_prefix(store: Arc<dyn Store>) {
    for k in ["t/1", "t/2", "t/3", "t0", "t", "u/1"] {
        put(&*store, k, "v").await;
    }
    let r = store.txn(Txn::new().delete_prefix("t/")).await.unwrap();
    assert_eq!((r.succeeded, r.revision), (true, 7));
    let all = store.range(&RangeRequest::prefix("")).unwrap();
    assert_eq!(keys(&all.kvs), vec!["t", "t0", "u/1"]);
    assert_eq!(store.count_prefix("t/").unwrap(), 0);

    // Replace a set atomically: delete the prefix and put new members.
    for k in ["s/a", "s/b"] {
        put(&*store, k, "old").await;
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

pub async fn range_order_limit_more_reverse_and_pagination(store: Arc<dyn Store>) {
    // Insert out of order, including a multi-byte UTF-8 key (byte order).
    for k in ["k/b", "k/é", "k/a", "k/c", "k/aa", "j", "l"] {
        put(&*store, k, "v").await;
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

pub async fn pagination_is_stable_under_concurrent_inserts(store: Arc<dyn Store>) {
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

pub async fn concurrent_txns_get_distinct_consecutive_revisions(store: Arc<dyn Store>) {
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
}

pub async fn cas_contention_counter_ends_exact(store: Arc<dyn Store>) {
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

pub async fn watch_history_then_live(store: Arc<dyn Store>) {
    put(&*store, "a/1", "x").await; // 1
    put(&*store, "a/2", "y").await; // 2
    put(&*store, "b/1", "z").await; // 3
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
    put(&*store, "b/2", "ignored").await; // 5
    put(&*store, "a/3", "live").await; // 6
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
    put(&*store, "c", "1").await; // 7
    let events = collect_until(&mut w, 7).await;
    assert_eq!(summary(&events), vec![(EventKind::Put, "c".into(), 7)]);
}

pub async fn usable_through_arc_dyn(store: Arc<dyn Store>) {
    assert_eq!(store.current_revision(), 0);
    let r = store.txn(Txn::new().put("k", "v")).await.unwrap();
    assert_eq!(r.revision, 1);
    assert_eq!(store.get("k").unwrap().unwrap().value, b"v");
    assert_eq!(store.current_revision(), 1);
}
