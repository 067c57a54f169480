//! Rough throughput figures of `SqliteStore` on this machine's disk.
//!
//! `cargo run -p stevedore-store --release --example bench [DIR]`
//!
//! DIR (default: a temp dir) should be on the disk you care about: fsync cost
//! dominates txn throughput.

// A benchmark: it measures wall time.
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stevedore_store::{RangeRequest, Store, Txn};
use stevedore_store_sqlite::SqliteStore;

const KEYS: usize = 100_000;
const VALUE_LEN: usize = 256;

fn key(i: usize) -> String {
    format!("/tasks/cluster-{}/task-{i:08}", i % 10)
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::env::args().nth(1).map(std::path::PathBuf::from);
    let dir = dir.as_deref().unwrap_or(tmp.path());
    let path = dir.join("bench.db");
    let _ = std::fs::remove_file(&path);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let store = SqliteStore::open(&path).expect("open");
    println!("store: {}", path.display());

    // Prefill.
    let t = Instant::now();
    rt.block_on(async {
        for chunk in (0..KEYS).collect::<Vec<_>>().chunks(1000) {
            let mut txn = Txn::new();
            for &i in chunk {
                txn = txn.put(key(i), vec![b'x'; VALUE_LEN]);
            }
            store.txn(txn).await.expect("prefill");
        }
    });
    println!(
        "prefill: {KEYS} keys x {VALUE_LEN} B in {:.2?} (1000 puts per txn)",
        t.elapsed()
    );

    // get, single thread.
    let keys: Vec<String> = (0..KEYS).map(key).collect();
    let n = 2_000_000;
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let t = Instant::now();
    let mut hits = 0usize;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = &keys[(x % KEYS as u64) as usize];
        if store.get(k).expect("get").is_some() {
            hits += 1;
        }
    }
    let el = t.elapsed();
    assert_eq!(hits, n);
    println!(
        "get (1 thread, random of 100k):  {:>10.0} ops/s  ({:.0} ns/op)",
        n as f64 / el.as_secs_f64(),
        el.as_nanos() as f64 / n as f64
    );

    // get, hot set (1000 keys, cache-resident).
    let t = Instant::now();
    for j in 0..n {
        std::hint::black_box(store.get(&keys[(j * 7) % 1000]).expect("get"));
    }
    let el = t.elapsed();
    println!(
        "get (1 thread, 1000 hot keys): {:>10.0} ops/s  ({:.0} ns/op)",
        n as f64 / el.as_secs_f64(),
        el.as_nanos() as f64 / n as f64
    );

    // get, 2 threads.
    let keys = Arc::new(keys);
    let t = Instant::now();
    std::thread::scope(|s| {
        for th in 0..2u64 {
            let keys = keys.clone();
            let store = &store;
            s.spawn(move || {
                let mut x: u64 = 0x2545f4914f6cdd1d + th;
                for _ in 0..n / 2 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = &keys[(x % KEYS as u64) as usize];
                    std::hint::black_box(store.get(k).expect("get"));
                }
            });
        }
    });
    let el = t.elapsed();
    println!(
        "get (2 threads, random of 100k): {:>10.0} ops/s",
        n as f64 / el.as_secs_f64()
    );

    // range: pages of 100 under one cluster prefix.
    let pages = 20_000;
    let t = Instant::now();
    for p in 0..pages {
        let req = RangeRequest::prefix("/tasks/cluster-3/")
            .start_after(key((p * 100) % KEYS))
            .limit(100);
        std::hint::black_box(store.range(&req).expect("range"));
    }
    let el = t.elapsed();
    println!(
        "range (100 keys/page): {:>8.0} pages/s",
        pages as f64 / el.as_secs_f64()
    );
    let t = Instant::now();
    let count = store.count_prefix("/tasks/cluster-3/").expect("count");
    println!("count_prefix ({count} keys): {:.2?}", t.elapsed());

    // txn throughput at various concurrency levels (group commit).
    for concurrency in [1usize, 8, 64, 256] {
        let before = store.stats();
        let done = Arc::new(AtomicU64::new(0));
        let dur = Duration::from_secs(3);
        let t = Instant::now();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for c in 0..concurrency {
                let store = store.clone();
                let done = done.clone();
                tasks.push(tokio::spawn(async move {
                    let mut i = 0usize;
                    while t.elapsed() < dur {
                        let k = key((c * 7919 + i * 104_729) % KEYS);
                        let r = store
                            .txn(Txn::new().put(k, vec![b'y'; VALUE_LEN]))
                            .await
                            .expect("txn");
                        assert!(r.succeeded);
                        done.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                }));
            }
            for task in tasks {
                task.await.expect("task");
            }
        });
        let el = t.elapsed();
        let after = store.stats();
        let txns = done.load(Ordering::Relaxed);
        let commits = after.commits - before.commits;
        println!(
            "txn put, {concurrency:>3} concurrent: {:>8.0} txn/s, {:>6.0} commits(fsync)/s, avg batch {:.1}",
            txns as f64 / el.as_secs_f64(),
            commits as f64 / el.as_secs_f64(),
            txns as f64 / commits.max(1) as f64
        );
    }
    store.close();
}
