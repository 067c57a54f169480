//! The collector against a real SQLite store: what a pass deletes, that a
//! racing write survives, and (under paused tokio time) when passes run.

use super::*;
use stevedore_ctlrt::{AlwaysLeader, Cancel as CancellationToken};
use stevedore_store_sqlite::SqliteStore;

fn store() -> Arc<dyn Store> {
    let dir = std::env::temp_dir().join(format!("stevedore-gc-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    SqliteStore::open(&dir.join("db.sqlite")).unwrap()
}

fn scope() -> Scope {
    Scope::new("123456789012", "us-east-1")
}

fn task(id: &str, last: &str, stopped_at: Option<i64>) -> Task {
    Task {
        task_arn: Some(format!("arn:aws:ecs:us-east-1:123456789012:task/c/{id}")),
        last_status: Some(last.into()),
        stopped_at: stopped_at.map(Timestamp::from_millis),
        ..Default::default()
    }
}

/// A STOPPED task as the agent report leaves it: record, index entry, and
/// a protection record hanging off it.
async fn stopped(store: &dyn Store, id: &str, at: i64) {
    let t = task(id, "STOPPED", Some(at));
    let s = scope();
    let ops = vec![
        db::put(keys::task(&s, "c", id), &t),
        index(&s, "c", id, &t),
        db::put(keys::task_protection(&s, "c", id), &serde_json::json!({})),
    ];
    assert!(db::commit(store, vec![], ops).await.unwrap());
}

fn exists(store: &dyn Store, key: &str) -> bool {
    store.get(key).unwrap().is_some()
}

fn gc(store: &Arc<dyn Store>, retention: Duration, now: i64) -> GcController {
    GcController::new(
        store.clone(),
        retention,
        Arc::new(move || now),
        Arc::default(),
    )
}

async fn one_pass(c: &mut GcController) -> Action {
    let cancel = CancellationToken::new();
    let cx = stevedore_ctlrt::Context::new(
        stevedore_ctlrt::FencingToken(0),
        cancel,
        Arc::new(AlwaysLeader),
    );
    c.reconcile(&cx).await.map_err(|e| e.to_string()).unwrap()
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_pass_deletes_tasks_past_retention_with_what_hangs_off_them() {
    let store = store();
    let s = scope();
    let now = 100 * 3_600_000;
    stopped(store.as_ref(), "old", now - 2 * 3_600_000).await;
    stopped(store.as_ref(), "recent", now - 60_000).await;
    // A live task is never the collector's business.
    let live = task("live", "RUNNING", None);
    db::commit(
        store.as_ref(),
        vec![],
        vec![
            db::put(keys::task(&s, "c", "live"), &live),
            crate::live_tasks::add(&s, "c", "live", &live),
        ],
    )
    .await
    .unwrap();

    let mut c = gc(&store, HOUR, now);
    let action = one_pass(&mut c).await;
    assert!(!exists(store.as_ref(), &keys::task(&s, "c", "old")));
    assert!(!exists(
        store.as_ref(),
        &keys::task_protection(&s, "c", "old")
    ));
    assert!(!exists(
        store.as_ref(),
        &keys::stopped_task(&s, "c", now - 2 * 3_600_000, "old")
    ));
    assert!(exists(store.as_ref(), &keys::task(&s, "c", "recent")));
    assert!(exists(
        store.as_ref(),
        &keys::task_protection(&s, "c", "recent")
    ));
    assert!(exists(store.as_ref(), &keys::task(&s, "c", "live")));
    assert_eq!(c.counters.gc_tasks_deleted.load(Ordering::Relaxed), 1);
    // Next look: when "recent" turns one hour old.
    assert_eq!(action.requeue_after(), Some(HOUR - Duration::from_secs(60)));
    assert_eq!(count_task_records(store.as_ref()).unwrap(), 2);
}

#[tokio::test]
async fn a_write_racing_the_delete_wins_and_others_still_go() {
    let store = store();
    let s = scope();
    let now = 100 * 3_600_000;
    for id in ["a", "b", "c"] {
        stopped(store.as_ref(), id, now - 2 * 3_600_000).await;
    }
    let mut c = gc(&store, HOUR, now);
    // Read "b" the way a pass does, then let a late write land before the
    // commit: the batch fails its compares and falls back to one by one.
    let head = store
        .range(&RangeRequest::prefix(keys::stopped_tasks_prefix()))
        .unwrap();
    let deletes: Vec<_> = head
        .kvs
        .iter()
        .map(|kv| {
            delete_ops(
                store.as_ref(),
                kv,
                keys::parse_stopped_task(&kv.key).as_ref(),
            )
            .unwrap()
        })
        .collect();
    let mut late = task("b", "STOPPED", Some(now - 2 * 3_600_000));
    late.stopped_reason = Some("late report".into());
    db::commit(
        store.as_ref(),
        vec![],
        vec![db::put(keys::task(&s, "c", "b"), &late)],
    )
    .await
    .unwrap();
    assert_eq!(commit_deletes(store.as_ref(), deletes).await.unwrap(), 2);
    assert!(!exists(store.as_ref(), &keys::task(&s, "c", "a")));
    assert!(!exists(store.as_ref(), &keys::task(&s, "c", "c")));
    let b: Task = db::get(store.as_ref(), &keys::task(&s, "c", "b"))
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(b.stopped_reason.as_deref(), Some("late report"));
    // The next pass takes it.
    one_pass(&mut c).await;
    assert!(!exists(store.as_ref(), &keys::task(&s, "c", "b")));
    assert_eq!(count_task_records(store.as_ref()).unwrap(), 0);
}

#[tokio::test]
async fn a_backlog_larger_than_a_batch_drains_over_immediate_passes() {
    let store = store();
    let now = 100 * 3_600_000;
    let n = GC_BATCH + 5;
    for i in 0..n {
        stopped(
            store.as_ref(),
            &format!("t{i:04}"),
            now - 2 * 3_600_000 + i as i64,
        )
        .await;
    }
    let mut c = gc(&store, HOUR, now);
    assert_eq!(one_pass(&mut c).await.requeue_after(), Some(Duration::ZERO));
    assert_eq!(count_task_records(store.as_ref()).unwrap(), 5);
    assert_eq!(one_pass(&mut c).await.requeue_after(), Some(HOUR));
    assert_eq!(count_task_records(store.as_ref()).unwrap(), 0);
}

#[tokio::test]
async fn an_old_data_dir_gets_its_stopped_tasks_indexed_once() {
    let store = store();
    let s = scope();
    let ops = vec![
        db::put(keys::task(&s, "c", "a"), &task("a", "STOPPED", Some(5_000))),
        db::put(keys::task(&s, "c", "b"), &task("b", "RUNNING", None)),
    ];
    db::commit(store.as_ref(), vec![], ops).await.unwrap();
    ensure_index(store.as_ref()).await.unwrap();
    let idx = store
        .range(&RangeRequest::prefix(keys::stopped_tasks_prefix()))
        .unwrap();
    let keys_: Vec<&str> = idx.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys_, [keys::stopped_task(&s, "c", 5_000, "a").as_str()]);
    assert!(exists(store.as_ref(), keys::stopped_task_index_marker()));
    // With the marker present nothing is re-indexed.
    db::commit(
        store.as_ref(),
        vec![],
        vec![Op::Delete {
            key: keys::stopped_task(&s, "c", 5_000, "a"),
        }],
    )
    .await
    .unwrap();
    ensure_index(store.as_ref()).await.unwrap();
    assert!(store
        .range(&RangeRequest::prefix(keys::stopped_tasks_prefix()))
        .unwrap()
        .kvs
        .is_empty());
    assert_eq!(
        stopped_since(store.as_ref(), 0).unwrap().len(),
        0,
        "the window reads the index, not the records"
    );
}

/// The collector on the controller runtime under paused time: it wakes
/// exactly when the oldest stopped task reaches retention (plus the
/// runtime's 50 ms debounce), with no change notifications.
#[tokio::test(start_paused = true)]
async fn the_collector_wakes_when_the_next_task_expires() {
    let store = store();
    let s = scope();
    let base = 1_000_000_000i64;
    let retention = Duration::from_secs(10);
    stopped(store.as_ref(), "a", base - 4_000).await; // due at 6 s
    stopped(store.as_ref(), "b", base).await; // due at 10 s
    let start = tokio::time::Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    // The clock is read once at the start of every pass: it records when
    // passes run, in virtual ms since the start.
    let clock: Clock = Arc::new(move || {
        let ms = start.elapsed().as_millis() as u64;
        let _ = tx.send(ms);
        base + ms as i64
    });
    let counters = Arc::new(Counters::default());
    let cancel = CancellationToken::new();
    let handle = tokio::spawn(stevedore_ctlrt::run(
        GcController::new(store.clone(), retention, clock, counters.clone()),
        Arc::new(stevedore_ctlrt::NoChanges),
        Arc::new(AlwaysLeader),
        GcController::config(retention),
        cancel.clone(),
    ));
    let alive = |id: &str| exists(store.as_ref(), &keys::task(&s, "c", id));
    let mut passes = Vec::new();
    for _ in 0..4 {
        passes.push(rx.recv().await.unwrap());
    }
    // 0: nothing due, wake at 6 s. 6050: "a" goes, wake at 10 s.
    // 10050: "b" goes, index empty: wake one retention later.
    assert_eq!(passes, vec![0, 6_050, 10_050, 20_100]);
    assert!(!alive("a") && !alive("b"));
    assert_eq!(counters.gc_tasks_deleted.load(Ordering::Relaxed), 2);
    cancel.cancel();
    handle.await.unwrap();
}
