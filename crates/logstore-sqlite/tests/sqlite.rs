use std::sync::Arc;
use stevedore_logstore::{LogStore, NewEvent, Position, ReadRequest};
use stevedore_logstore_sqlite::SqliteLogStore;

fn fresh() -> (tempfile::TempDir, Arc<dyn LogStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteLogStore::open(&dir.path().join("logs.db")).unwrap();
    (dir, store)
}

stevedore_logstore::logstore_contract_tests!(fresh);

#[test]
fn appends_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    {
        let store = SqliteLogStore::open(&path).unwrap();
        store
            .append(
                "s",
                5,
                &[NewEvent {
                    timestamp: 1,
                    message: "kept".into(),
                }],
            )
            .unwrap();
    }
    let store = SqliteLogStore::open(&path).unwrap();
    let got = store
        .read(
            "s",
            &ReadRequest {
                after: None,
                before: None,
                reverse: false,
                limit: 10,
            },
        )
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].position, Position::new(1, 1));
    assert_eq!(store.stats("s").unwrap().next_seq, 2);
}

/// A page read must seek on the primary key, not scan the stream or sort:
/// that is what keeps page latency flat as a stream grows.
#[test]
fn page_reads_seek_on_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let _store = SqliteLogStore::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in [
        stevedore_logstore_sqlite::READ_FORWARD,
        stevedore_logstore_sqlite::READ_BACKWARD,
    ] {
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(rusqlite::params!["s", 0, 0, 9, 9, 10], |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let text = plan.join("\n");
        assert!(
            text.contains(
                "SEARCH events USING PRIMARY KEY (stream=? AND (ts,seq)>(?,?) AND (ts,seq)<(?,?))"
            ),
            "{text}"
        );
        assert!(!text.contains("TEMP B-TREE"), "{text}");
    }
}
