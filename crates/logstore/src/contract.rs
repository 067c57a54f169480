//! The backend-neutral contract of [`LogStore`], written once. A backend
//! crate instantiates it with
//! [`logstore_contract_tests!`](crate::logstore_contract_tests) and a
//! factory returning `(guard, Arc<dyn LogStore>)` for a fresh, empty store.
//! Durability across a crash and reopen are tested in the backend's crate.

#![allow(clippy::missing_panics_doc)]

use crate::{LogStore, NewEvent, Position, ReadRequest, StoredEvent, StreamStats};
use std::sync::Arc;

/// Runs every contract test against the store built by `$factory`.
#[macro_export]
macro_rules! logstore_contract_tests {
    ($factory:expr) => {
        mod logstore_contract {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn append_assigns_sequences_and_counts() {
                let (_guard, store) = $factory();
                $crate::contract::append_assigns_sequences_and_counts(store);
            }

            #[test]
            fn reads_by_position_both_ways() {
                let (_guard, store) = $factory();
                $crate::contract::reads_by_position_both_ways(store);
            }

            #[test]
            fn streams_are_separate() {
                let (_guard, store) = $factory();
                $crate::contract::streams_are_separate(store);
            }

            #[test]
            fn delete_before_updates_counters() {
                let (_guard, store) = $factory();
                $crate::contract::delete_before_updates_counters(store);
            }

            #[test]
            fn delete_stream_and_prefix() {
                let (_guard, store) = $factory();
                $crate::contract::delete_stream_and_prefix(store);
            }

            #[test]
            fn import_is_idempotent_and_keeps_positions() {
                let (_guard, store) = $factory();
                $crate::contract::import_is_idempotent_and_keeps_positions(store);
            }

            #[test]
            fn concurrent_appends_get_distinct_sequences() {
                let (_guard, store) = $factory();
                $crate::contract::concurrent_appends_get_distinct_sequences(store);
            }
        }
    };
}

fn ev(timestamp: i64, message: &str) -> NewEvent {
    NewEvent {
        timestamp,
        message: message.to_string(),
    }
}

fn all(store: &dyn LogStore, stream: &str) -> Vec<StoredEvent> {
    store
        .read(
            stream,
            &ReadRequest {
                after: None,
                before: None,
                reverse: false,
                limit: usize::MAX,
            },
        )
        .unwrap()
}

fn messages(events: &[StoredEvent]) -> Vec<&str> {
    events.iter().map(|e| e.message.as_str()).collect()
}

pub fn append_assigns_sequences_and_counts(store: Arc<dyn LogStore>) {
    assert_eq!(store.stats("s").unwrap(), StreamStats::default());
    let st = store
        .append("s", 500, &[ev(100, "a"), ev(100, "bb"), ev(200, "ccc")])
        .unwrap();
    assert_eq!(
        st,
        StreamStats {
            first_event_timestamp: Some(100),
            last_event_timestamp: Some(200),
            last_ingestion_time: Some(500),
            stored_bytes: 6,
            next_seq: 4,
        }
    );
    // A later batch with an older timestamp sorts by time, not by arrival.
    let st = store.append("s", 600, &[ev(50, "dddd")]).unwrap();
    assert_eq!(st.first_event_timestamp, Some(50));
    assert_eq!(st.last_event_timestamp, Some(200));
    assert_eq!(st.last_ingestion_time, Some(600));
    assert_eq!(st.stored_bytes, 10);
    assert_eq!(st.next_seq, 5);
    assert_eq!(store.stats("s").unwrap(), st);
    let got = all(store.as_ref(), "s");
    assert_eq!(messages(&got), ["dddd", "a", "bb", "ccc"]);
    assert_eq!(
        got.iter().map(|e| e.position).collect::<Vec<_>>(),
        [
            Position::new(50, 4),
            Position::new(100, 1),
            Position::new(100, 2),
            Position::new(200, 3)
        ]
    );
    assert_eq!(got[0].ingestion_time, 600);
    assert_eq!(got[1].ingestion_time, 500);
    // An empty append changes nothing.
    assert_eq!(store.append("s", 700, &[]).unwrap(), st);
    // Unicode survives byte for byte; stored bytes count UTF-8 bytes.
    let st = store.append("u", 1, &[ev(1, "héllo ✓")]).unwrap();
    assert_eq!(st.stored_bytes, "héllo ✓".len() as i64);
    assert_eq!(messages(&all(store.as_ref(), "u")), ["héllo ✓"]);
}

pub fn reads_by_position_both_ways(store: Arc<dyn LogStore>) {
    let batch: Vec<NewEvent> = (0..100).map(|i| ev(i / 10, &format!("m{i}"))).collect();
    store.append("s", 1, &batch).unwrap();
    let read = |after, before, reverse, limit| {
        store
            .read(
                "s",
                &ReadRequest {
                    after,
                    before,
                    reverse,
                    limit,
                },
            )
            .unwrap()
    };
    // Forward from a time: `before_time` includes every event at it.
    let page = read(Some(Position::before_time(3)), None, false, 5);
    assert_eq!(messages(&page), ["m30", "m31", "m32", "m33", "m34"]);
    // Continue after the last one returned.
    let next = read(Some(page[4].position), None, false, 3);
    assert_eq!(messages(&next), ["m35", "m36", "m37"]);
    // An upper bound is exclusive.
    let page = read(
        Some(Position::before_time(8)),
        Some(Position::before_time(9)),
        false,
        100,
    );
    assert_eq!(page.len(), 10);
    assert_eq!(page[9].message, "m89");
    // Backward from the end: newest first.
    let page = read(None, None, true, 3);
    assert_eq!(messages(&page), ["m99", "m98", "m97"]);
    let page = read(
        Some(Position::before_time(2)),
        // m30 is (3, 31): a bound inside a timestamp splits it by sequence.
        Some(Position::new(3, 32)),
        true,
        100,
    );
    assert_eq!(page.first().unwrap().message, "m30");
    assert_eq!(page.last().unwrap().message, "m20");
    assert_eq!(page.len(), 11);
    assert!(read(None, None, false, 0).is_empty());
    assert!(read(Some(Position::before_time(10)), None, false, 10).is_empty());
    // A stream never written reads empty.
    assert!(all(store.as_ref(), "nothing").is_empty());
}

pub fn streams_are_separate(store: Arc<dyn LogStore>) {
    store.append("a", 1, &[ev(1, "a1")]).unwrap();
    store
        .append("ab", 1, &[ev(1, "ab1"), ev(2, "ab2")])
        .unwrap();
    store.append("b", 1, &[ev(1, "b1")]).unwrap();
    assert_eq!(messages(&all(store.as_ref(), "a")), ["a1"]);
    assert_eq!(messages(&all(store.as_ref(), "ab")), ["ab1", "ab2"]);
    assert_eq!(store.stats("a").unwrap().next_seq, 2);
    assert_eq!(store.stats("ab").unwrap().next_seq, 3);
    assert_eq!(store.streams("a").unwrap(), ["a", "ab"]);
    assert_eq!(store.streams("").unwrap(), ["a", "ab", "b"]);
    assert!(store.streams("c").unwrap().is_empty());
}

pub fn delete_before_updates_counters(store: Arc<dyn LogStore>) {
    store
        .append("s", 9, &[ev(1, "old"), ev(2, "older2"), ev(5, "new")])
        .unwrap();
    assert_eq!(store.delete_before("s", 3).unwrap(), 2);
    let st = store.stats("s").unwrap();
    assert_eq!(st.stored_bytes, 3);
    assert_eq!(st.first_event_timestamp, Some(5));
    assert_eq!(st.last_event_timestamp, Some(5));
    assert_eq!(st.next_seq, 4, "sequences are never reused");
    assert_eq!(store.delete_before("s", 3).unwrap(), 0);
    assert_eq!(messages(&all(store.as_ref(), "s")), ["new"]);
    assert_eq!(store.delete_before("s", 100).unwrap(), 1);
    let st = store.stats("s").unwrap();
    assert_eq!((st.stored_bytes, st.first_event_timestamp), (0, None));
    assert_eq!(store.append("s", 10, &[ev(7, "x")]).unwrap().next_seq, 5);
    assert_eq!(store.delete_before("missing", 100).unwrap(), 0);
}

pub fn delete_stream_and_prefix(store: Arc<dyn LogStore>) {
    for s in ["g1:a", "g1:b", "g10:a", "g2:a"] {
        store.append(s, 1, &[ev(1, s)]).unwrap();
    }
    store.delete_stream("g1:a").unwrap();
    assert!(all(store.as_ref(), "g1:a").is_empty());
    assert_eq!(store.stats("g1:a").unwrap(), StreamStats::default());
    store.delete_stream("g1:a").unwrap();
    store.delete_prefix("g1:").unwrap();
    assert_eq!(store.streams("").unwrap(), ["g10:a", "g2:a"]);
    assert_eq!(messages(&all(store.as_ref(), "g10:a")), ["g10:a"]);
    // A stream created again starts afresh.
    assert_eq!(store.append("g1:b", 1, &[ev(1, "x")]).unwrap().next_seq, 2);
}

pub fn import_is_idempotent_and_keeps_positions(store: Arc<dyn LogStore>) {
    let events = vec![
        StoredEvent {
            position: Position::new(10, 3),
            ingestion_time: 20,
            message: "three".into(),
        },
        StoredEvent {
            position: Position::new(11, 7),
            ingestion_time: 21,
            message: "seven".into(),
        },
    ];
    let stats = StreamStats {
        first_event_timestamp: Some(10),
        last_event_timestamp: Some(11),
        last_ingestion_time: Some(21),
        stored_bytes: 10,
        next_seq: 8,
    };
    store.import("s", &events, &stats).unwrap();
    store.import("s", &events, &stats).unwrap();
    assert_eq!(all(store.as_ref(), "s"), events);
    assert_eq!(store.stats("s").unwrap(), stats);
    let st = store.append("s", 30, &[ev(12, "eight")]).unwrap();
    assert_eq!(st.next_seq, 9);
    assert_eq!(all(store.as_ref(), "s")[2].position, Position::new(12, 8));
}

pub fn concurrent_appends_get_distinct_sequences(store: Arc<dyn LogStore>) {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    store
                        .append("s", 1, &[ev(i, &format!("{t}-{i}")), ev(i, "x")])
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let got = all(store.as_ref(), "s");
    assert_eq!(got.len(), 200);
    let mut seqs: Vec<u64> = got.iter().map(|e| e.position.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
    assert_eq!(store.stats("s").unwrap().next_seq, 201);
}
