//! The retention sweeper: deletes events older than their group's
//! retention. Reads never return such events even before a sweep; the
//! sweeper only reclaims the space. It visits the groups listed in the
//! retention index (`keys::log_retention_index_prefix`), so groups without
//! a policy cost nothing. It also deletes log-store streams whose KV
//! record is gone (a crash between the two deletes of DeleteLogStream or
//! DeleteLogGroup, or a PutLogEvents that raced one).

use super::records::{blocking, split_log_name, GroupRecord, RetentionIndex, StreamRecord};
use crate::db;
use crate::error::ApiResult;
use std::sync::Arc;
use std::time::Duration;
use stevedore_api::Timestamp;
use stevedore_logstore::LogStore;
use stevedore_model::arn::Scope;
use stevedore_model::keys;
use stevedore_store::{RangeRequest, Store};
use tokio_util::sync::CancellationToken;

pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Sweeps every `interval` until `cancel` fires. A sweep in progress is
/// not interrupted: cancellation is observed between sweeps, so no
/// transaction is cut short.
pub async fn run_sweeper(
    store: Arc<dyn Store>,
    logs: Arc<dyn LogStore>,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        match sweep_once(store.as_ref(), &logs, Timestamp::now().as_millis()).await {
            Ok(Swept {
                expired: 0,
                orphaned_streams: 0,
            }) => {}
            Ok(s) => tracing::info!(
                deleted = s.expired,
                orphaned_streams = s.orphaned_streams,
                "log retention sweep"
            ),
            Err(e) => tracing::warn!(error = %e.message, "log retention sweep failed"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Swept {
    /// Events deleted for being past their group's retention.
    pub expired: u64,
    /// Log-store streams deleted because no stream record names them.
    pub orphaned_streams: usize,
}

/// One pass: every group with a retention policy, then orphaned streams.
pub async fn sweep_once(store: &dyn Store, logs: &Arc<dyn LogStore>, now: i64) -> ApiResult<Swept> {
    let mut swept = Swept::default();
    let index = store.range(&RangeRequest::prefix(keys::log_retention_index_prefix()))?;
    for kv in &index.kvs {
        let entry: RetentionIndex = db::decode(kv)?;
        let scope = Scope::new(entry.account.clone(), entry.region.clone());
        let Some(group) = db::get::<GroupRecord>(store, &keys::log_group(&scope, &entry.group))?
        else {
            continue;
        };
        let cutoff = group.value.retention_cutoff(now);
        let streams_prefix = keys::log_streams_prefix(&scope, &entry.group);
        for s in db::all_versioned::<StreamRecord>(store, &streams_prefix)? {
            let name = s.value.log_name(&scope, &entry.group);
            swept.expired += blocking(logs, move |l| l.delete_before(&name, cutoff)).await?;
        }
    }
    for name in logs.streams("/logs/")? {
        let live = match split_log_name(&name) {
            Some((key, log_id)) => db::get::<StreamRecord>(store, key)?
                .is_some_and(|s| s.value.log_id.as_deref() == log_id),
            None => false,
        };
        if !live {
            blocking(logs, move |l| l.delete_stream(&name)).await?;
            swept.orphaned_streams += 1;
        }
    }
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{commit, put};
    use stevedore_logstore::{NewEvent, ReadRequest};
    use stevedore_logstore_sqlite::SqliteLogStore;
    use stevedore_store_sqlite::SqliteStore;

    const DAY: i64 = 86_400_000;

    fn all(logs: &dyn LogStore, name: &str) -> Vec<String> {
        logs.read(
            name,
            &ReadRequest {
                after: None,
                before: None,
                reverse: false,
                limit: usize::MAX,
            },
        )
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect()
    }

    #[tokio::test]
    async fn sweep_deletes_expired_events_and_orphaned_streams() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        let store: &dyn Store = store.as_ref();
        let logs: Arc<dyn LogStore> = SqliteLogStore::open(&dir.path().join("logs.db")).unwrap();
        let scope = Scope::new("123456789012", "us-east-1");
        let now = 100 * DAY;
        let group = GroupRecord {
            name: "g".into(),
            creation_time: 0,
            retention_in_days: Some(1),
            tags: Default::default(),
        };
        let stream = StreamRecord {
            name: "s".into(),
            creation_time: 0,
            log_id: Some("one".into()),
        };
        let ops = vec![
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
            put(keys::log_stream(&scope, "g", "s"), &stream),
        ];
        assert!(commit(store, vec![], ops).await.unwrap());
        let name = stream.log_name(&scope, "g");
        let events: Vec<NewEvent> = [
            (now - 3 * DAY, "old1"),
            (now - 2 * DAY, "old2"),
            (now - 1000, "new"),
        ]
        .into_iter()
        .map(|(timestamp, m)| NewEvent {
            timestamp,
            message: m.into(),
        })
        .collect();
        logs.append(&name, now, &events).unwrap();
        // An earlier incarnation of the same stream, left behind.
        let stale = StreamRecord {
            log_id: Some("zero".into()),
            ..stream.clone()
        }
        .log_name(&scope, "g");
        logs.append(&stale, now, &events).unwrap();

        let swept = sweep_once(store, &logs, now).await.unwrap();
        assert_eq!(
            swept,
            Swept {
                expired: 2,
                orphaned_streams: 1
            }
        );
        assert_eq!(
            sweep_once(store, &logs, now).await.unwrap(),
            Swept::default()
        );
        assert_eq!(all(logs.as_ref(), &name), ["new"]);
        assert!(all(logs.as_ref(), &stale).is_empty());
        let st = logs.stats(&name).unwrap();
        assert_eq!(st.stored_bytes, 3);
        assert_eq!(st.first_event_timestamp, Some(now - 1000));
    }
}
