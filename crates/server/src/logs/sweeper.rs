//! The retention sweeper: deletes events older than their group's
//! retention. Reads never return such events even before a sweep; the
//! sweeper only reclaims the space. It visits the groups listed in the
//! retention index (`keys::log_retention_index_prefix`), so groups without
//! a policy cost nothing.

use super::records::{EventRecord, GroupRecord, RetentionIndex, StreamRecord};
use crate::db::{self, commit, put, unchanged, MAX_CAS_RETRIES};
use crate::error::ApiResult;
use std::sync::Arc;
use std::time::Duration;
use stevedore_api::Timestamp;
use stevedore_model::arn::Scope;
use stevedore_model::keys;
use stevedore_store::{Op, RangeRequest, Store};
use tokio_util::sync::CancellationToken;

pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Deletes per transaction, so one sweep step stays a bounded write.
const SWEEP_BATCH: usize = 1000;

/// Sweeps every `interval` until `cancel` fires. A sweep in progress is
/// not interrupted: cancellation is observed between sweeps, so no
/// transaction is cut short.
pub async fn run_sweeper(store: Arc<dyn Store>, interval: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        match sweep_once(store.as_ref(), Timestamp::now().as_millis()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "log retention sweep"),
            Err(e) => tracing::warn!(error = %e.message, "log retention sweep failed"),
        }
    }
}

/// One pass over every group with a retention policy; returns how many
/// events were deleted.
pub async fn sweep_once(store: &dyn Store, now: i64) -> ApiResult<usize> {
    let index = store.range(&RangeRequest::prefix(keys::log_retention_index_prefix()))?;
    let mut deleted = 0;
    for kv in &index.kvs {
        let entry: RetentionIndex = db::decode(kv)?;
        let scope = Scope::new(entry.account.clone(), entry.region.clone());
        let Some(group) = db::get::<GroupRecord>(store, &keys::log_group(&scope, &entry.group))?
        else {
            continue;
        };
        let cutoff = group.value.retention_cutoff(now);
        let streams_prefix = keys::log_streams_prefix(&scope, &entry.group);
        for s in store
            .range(&RangeRequest::prefix(streams_prefix.clone()))?
            .kvs
        {
            let name = keys::suffix(&s.key, &streams_prefix).to_string();
            deleted += sweep_stream(store, &scope, &entry.group, &name, cutoff).await?;
        }
    }
    Ok(deleted)
}

async fn sweep_stream(
    store: &dyn Store,
    scope: &Scope,
    group: &str,
    stream: &str,
    cutoff: i64,
) -> ApiResult<usize> {
    let prefix = keys::log_events_prefix(scope, group, stream);
    let stream_key = keys::log_stream(scope, group, stream);
    let mut deleted = 0;
    let mut attempts = 0;
    loop {
        let Some(mut rec) = db::get::<StreamRecord>(store, &stream_key)? else {
            return Ok(deleted);
        };
        let batch = store.range(&RangeRequest {
            prefix: prefix.clone(),
            start_after: None,
            limit: Some(SWEEP_BATCH + 1),
            reverse: false,
        })?;
        let mut ops = Vec::new();
        let mut freed = 0i64;
        let mut first_left = None;
        for kv in &batch.kvs {
            let pos = keys::suffix(&kv.key, &prefix);
            let t = keys::log_event_position_timestamp(pos).unwrap_or(i64::MAX);
            if t >= cutoff || ops.len() == SWEEP_BATCH {
                first_left = Some(t);
                break;
            }
            let ev: EventRecord = db::decode(kv)?;
            freed += ev.message.len() as i64;
            ops.push(Op::Delete {
                key: kv.key.clone(),
            });
        }
        if ops.is_empty() {
            return Ok(deleted);
        }
        let n = ops.len();
        rec.value.stored_bytes = (rec.value.stored_bytes - freed).max(0);
        if first_left.is_some() || !batch.more {
            rec.value.first_event_timestamp = first_left;
        }
        ops.push(put(stream_key.clone(), &rec.value));
        if commit(
            store,
            vec![unchanged(stream_key.clone(), rec.mod_revision)],
            ops,
        )
        .await?
        {
            deleted += n;
            attempts = 0;
        } else {
            attempts += 1;
            if attempts >= MAX_CAS_RETRIES {
                return Ok(deleted);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::records::GroupRecord;
    use stevedore_store_sqlite::SqliteStore;

    const DAY: i64 = 86_400_000;

    #[tokio::test]
    async fn sweep_deletes_only_events_past_retention() {
        let dir = std::env::temp_dir().join(format!("stevedore-sweep-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(&dir.join("db.sqlite")).unwrap();
        let store: &dyn Store = store.as_ref();
        let scope = Scope::new("123456789012", "us-east-1");
        let now = 100 * DAY;
        let group = GroupRecord {
            name: "g".into(),
            creation_time: 0,
            retention_in_days: Some(1),
            tags: Default::default(),
        };
        let mut stream = StreamRecord {
            name: "s".into(),
            creation_time: 0,
            first_event_timestamp: Some(now - 3 * DAY),
            last_event_timestamp: Some(now - 1000),
            last_ingestion_time: Some(now),
            stored_bytes: 0,
            next_seq: 1,
        };
        let mut ops = vec![
            put(keys::log_group(&scope, "g"), &group),
            put(
                keys::log_retention_index(&scope, "g"),
                &RetentionIndex {
                    account: scope.account.clone(),
                    region: scope.region.clone(),
                    group: "g".into(),
                    days: 1,
                },
            ),
        ];
        for (t, m) in [
            (now - 3 * DAY, "old1"),
            (now - 2 * DAY, "old2"),
            (now - 1000, "new"),
        ] {
            ops.push(put(
                keys::log_event(&scope, "g", "s", t, stream.next_seq),
                &EventRecord {
                    timestamp: t,
                    ingestion_time: now,
                    message: m.into(),
                },
            ));
            stream.next_seq += 1;
            stream.stored_bytes += m.len() as i64;
        }
        ops.push(put(keys::log_stream(&scope, "g", "s"), &stream));
        assert!(commit(store, vec![], ops).await.unwrap());

        assert_eq!(sweep_once(store, now).await.unwrap(), 2);
        assert_eq!(sweep_once(store, now).await.unwrap(), 0);
        let left = store
            .range(&RangeRequest::prefix(keys::log_events_prefix(
                &scope, "g", "s",
            )))
            .unwrap();
        assert_eq!(left.kvs.len(), 1);
        let s: StreamRecord = db::get(store, &keys::log_stream(&scope, "g", "s"))
            .unwrap()
            .unwrap()
            .value;
        assert_eq!(s.stored_bytes, 3);
        assert_eq!(s.first_event_timestamp, Some(now - 1000));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
