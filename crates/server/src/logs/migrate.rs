//! Moves CloudWatch Logs events that an older version kept in the KV store
//! (one key per event under `/logs/ACCOUNT/REGION/event/`) into the log
//! store, once, at start-up.

use super::records::{log_name, LegacyEventRecord, LegacyStreamRecord};
use crate::db;
use crate::error::{ApiError, ApiResult};
use stevedore_logstore::{LogStore, Position, StoredEvent, StreamStats};
use stevedore_model::keys;
use stevedore_store::{RangeRequest, Store, Txn};

/// Events imported per log-store write.
const BATCH: usize = 5_000;

/// Imports every legacy event into the log store, then deletes the event
/// keys and writes the marker in one KV transaction. The import is
/// idempotent (an event already at its position is kept), so a crash
/// between the two steps only repeats the import on the next start.
pub async fn move_legacy_events(store: &dyn Store, logs: &dyn LogStore) -> ApiResult<()> {
    let marker = keys::logs_moved_marker();
    if store.get(marker)?.is_some() {
        return Ok(());
    }
    let mut moved_prefixes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = RangeRequest::prefix("/logs/").limit(1_000);
        if let Some(c) = cursor.take() {
            req = req.start_after(c);
        }
        let page = store.range(&req)?;
        for kv in &page.kvs {
            if let Some((tenancy, rest)) = split_stream_key(&kv.key) {
                let legacy: LegacyStreamRecord = db::decode(kv)?;
                let prefix = format!("{tenancy}event/{rest}:");
                import_stream(store, logs, &kv.key, &prefix, &legacy)?;
                moved_prefixes.push(prefix);
            }
        }
        if !page.more {
            break;
        }
        cursor = page.kvs.last().map(|kv| kv.key.clone());
    }
    // Events whose stream record is gone (deleted by an older version
    // between its two writes) are dropped with the rest of `event/`.
    let mut txn = Txn::new();
    let mut tenancies: Vec<String> = moved_prefixes
        .iter()
        .filter_map(|p| {
            p.find("event/")
                .map(|i| p[..i + "event/".len()].to_string())
        })
        .collect();
    tenancies.sort();
    tenancies.dedup();
    for t in &tenancies {
        txn = txn.delete_prefix(t.clone());
    }
    txn = txn.put(marker, b"1".to_vec());
    store.txn(txn).await?;
    if !moved_prefixes.is_empty() {
        tracing::info!(
            streams = moved_prefixes.len(),
            "moved log events from the state store to the log store"
        );
    }
    Ok(())
}

/// `/logs/A/R/stream/GROUP:STREAM` -> (`/logs/A/R/`, `GROUP:STREAM`).
fn split_stream_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("/logs/")?;
    let mut parts = rest.splitn(3, '/');
    let account = parts.next()?;
    let region = parts.next()?;
    let tail = parts.next()?;
    let stream = tail.strip_prefix("stream/")?;
    let tenancy_len = "/logs/".len() + account.len() + 1 + region.len() + 1;
    Some((&key[..tenancy_len], stream))
}

fn import_stream(
    store: &dyn Store,
    logs: &dyn LogStore,
    stream_key: &str,
    event_prefix: &str,
    legacy: &LegacyStreamRecord,
) -> ApiResult<()> {
    let name = log_name(stream_key, None);
    let stats = StreamStats {
        first_event_timestamp: legacy.first_event_timestamp,
        last_event_timestamp: legacy.last_event_timestamp,
        last_ingestion_time: legacy.last_ingestion_time,
        stored_bytes: legacy.stored_bytes,
        next_seq: legacy.next_seq,
    };
    let mut cursor: Option<String> = None;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let mut req = RangeRequest::prefix(event_prefix).limit(BATCH);
        if let Some(c) = cursor.take() {
            req = req.start_after(c);
        }
        let page = store.range(&req)?;
        for kv in &page.kvs {
            let position = kv
                .key
                .strip_prefix(event_prefix)
                .and_then(keys::parse_log_event_position)
                .ok_or_else(|| {
                    ApiError::server(format!("Stored log event key {} is unreadable.", kv.key))
                })?;
            let e: LegacyEventRecord = db::decode(kv)?;
            batch.push(StoredEvent {
                position: Position::new(position.0, position.1),
                ingestion_time: e.ingestion_time,
                message: e.message,
            });
        }
        logs.import(&name, &batch, &stats)?;
        batch.clear();
        if !page.more {
            return Ok(());
        }
        cursor = page.kvs.last().map(|kv| kv.key.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{commit, encode};
    use stevedore_logstore::ReadRequest;
    use stevedore_logstore_sqlite::SqliteLogStore;
    use stevedore_model::arn::Scope;
    use stevedore_store::Op;
    use stevedore_store_sqlite::SqliteStore;

    #[tokio::test]
    async fn legacy_events_move_once_with_positions_and_counters() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        let logs = SqliteLogStore::open(&dir.path().join("logs.db")).unwrap();
        let scope = Scope::new("123456789012", "us-east-1");
        let stream_key = keys::log_stream(&scope, "g", "s");
        // What an older version wrote: counters in the stream record, one
        // key per event.
        let record = serde_json::json!({
            "name": "s", "creation_time": 1, "first_event_timestamp": 10,
            "last_event_timestamp": 20, "last_ingestion_time": 30,
            "stored_bytes": 6, "next_seq": 3,
        });
        let mut ops = vec![Op::Put {
            key: stream_key.clone(),
            value: encode(&record),
        }];
        for (t, seq, m) in [(10, 1, "one"), (20, 2, "two")] {
            ops.push(Op::Put {
                key: keys::log_event(&scope, "g", "s", t, seq),
                value: encode(&LegacyEventRecord {
                    timestamp: t,
                    ingestion_time: 30,
                    message: m.into(),
                }),
            });
        }
        assert!(commit(store.as_ref(), vec![], ops).await.unwrap());

        move_legacy_events(store.as_ref(), logs.as_ref())
            .await
            .unwrap();
        let name = log_name(&stream_key, None);
        let read = |l: &dyn LogStore| {
            l.read(
                &name,
                &ReadRequest {
                    after: None,
                    before: None,
                    reverse: false,
                    limit: 100,
                },
            )
            .unwrap()
        };
        let got = read(logs.as_ref());
        let summary: Vec<_> = got
            .iter()
            .map(|e| (e.position, e.message.as_str()))
            .collect();
        assert_eq!(
            summary,
            [(Position::new(10, 1), "one"), (Position::new(20, 2), "two")]
        );
        let stats = logs.stats(&name).unwrap();
        assert_eq!((stats.next_seq, stats.stored_bytes), (3, 6));
        assert_eq!(
            store
                .count_prefix(&keys::log_group_events_prefix(&scope, "g"))
                .unwrap(),
            0
        );
        assert!(store.get(keys::logs_moved_marker()).unwrap().is_some());
        // A second start finds the marker and does nothing.
        move_legacy_events(store.as_ref(), logs.as_ref())
            .await
            .unwrap();
        assert_eq!(read(logs.as_ref()).len(), 2);
    }

    #[test]
    fn stream_keys_split_into_tenancy_and_name() {
        assert_eq!(
            split_stream_key("/logs/000000000000/us-east-1/stream/g:s"),
            Some(("/logs/000000000000/us-east-1/", "g:s"))
        );
        assert_eq!(
            split_stream_key("/logs/000000000000/us-east-1/group/g"),
            None
        );
        assert_eq!(
            split_stream_key("/logs/000000000000/us-east-1/event/g:s:1"),
            None
        );
    }
}
