//! Stored records of the Logs API and the helpers that read them.

use crate::db::{self, Versioned};
use crate::error::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use stevedore_logstore::LogStore;
use stevedore_model::arn::Scope;
use stevedore_model::keys;
use stevedore_store::Store;

const DAY_MS: i64 = 86_400_000;

/// Retention values the Logs model documents for `retentionInDays`.
pub const RETENTION_DAYS: &[i32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupRecord {
    pub name: String,
    pub creation_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_in_days: Option<i32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl GroupRecord {
    /// Events with a timestamp below this are past retention: never
    /// returned, and deleted by the sweeper.
    pub fn retention_cutoff(&self, now: i64) -> i64 {
        match self.retention_in_days {
            Some(days) => now.saturating_sub(i64::from(days) * DAY_MS),
            None => i64::MIN,
        }
    }

    pub fn arn(&self, scope: &Scope) -> String {
        format!(
            "arn:aws:logs:{}:{}:log-group:{}",
            scope.region, scope.account, self.name
        )
    }
}

/// A stream's KV record. Its events and counters (sequence, stored bytes,
/// first/last event timestamps) are in the log store under
/// [`StreamRecord::log_name`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamRecord {
    pub name: String,
    pub creation_time: i64,
    /// Tells this incarnation of the stream from one deleted before it
    /// with the same name, whose events may outlive its record for a
    /// moment (a PutLogEvents racing the delete, a crash between the two
    /// stores) until the sweeper removes them. `None` for streams created
    /// before the log store existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_id: Option<String>,
}

impl StreamRecord {
    /// The stream's name in the log store: its KV key, `#`, its `log_id`.
    pub fn log_name(&self, scope: &Scope, group: &str) -> String {
        log_name(
            &keys::log_stream(scope, group, &self.name),
            self.log_id.as_deref(),
        )
    }
}

pub fn log_name(stream_key: &str, log_id: Option<&str>) -> String {
    format!("{stream_key}#{}", log_id.unwrap_or(""))
}

/// The KV key and `log_id` a log-store stream name was made from.
pub fn split_log_name(name: &str) -> Option<(&str, Option<&str>)> {
    let (key, id) = name.rsplit_once('#')?;
    Some((key, (!id.is_empty()).then_some(id)))
}

/// The counters an older version kept in the stream record (and an event
/// per key under `.../event/`); read only to move them to the log store.
#[derive(Debug, Clone, Deserialize)]
pub struct LegacyStreamRecord {
    #[serde(default)]
    pub first_event_timestamp: Option<i64>,
    #[serde(default)]
    pub last_event_timestamp: Option<i64>,
    #[serde(default)]
    pub last_ingestion_time: Option<i64>,
    #[serde(default)]
    pub stored_bytes: i64,
    #[serde(default = "first_seq")]
    pub next_seq: u64,
}

fn first_seq() -> u64 {
    1
}

/// One event as an older version stored it; the key holds the timestamp
/// and sequence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LegacyEventRecord {
    #[serde(rename = "t")]
    pub timestamp: i64,
    #[serde(rename = "i")]
    pub ingestion_time: i64,
    #[serde(rename = "m")]
    pub message: String,
}

pub fn load_group(
    store: &dyn Store,
    scope: &Scope,
    name: &str,
) -> ApiResult<Option<Versioned<GroupRecord>>> {
    db::get(store, &keys::log_group(scope, name))
}

pub fn load_stream(
    store: &dyn Store,
    scope: &Scope,
    group: &str,
    stream: &str,
) -> ApiResult<Option<Versioned<StreamRecord>>> {
    db::get(store, &keys::log_stream(scope, group, stream))
}

/// The sweeper's index entry for a group with a retention policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetentionIndex {
    pub account: String,
    pub region: String,
    pub group: String,
    pub days: i32,
}

/// Runs log-store work on a blocking thread: appends wait for an fsync and
/// deletes may touch many rows, neither of which may hold up the runtime.
pub async fn blocking<T: Send + 'static>(
    logs: &Arc<dyn LogStore>,
    f: impl FnOnce(&dyn LogStore) -> stevedore_logstore::Result<T> + Send + 'static,
) -> ApiResult<T> {
    let logs = logs.clone();
    tokio::task::spawn_blocking(move || f(logs.as_ref()))
        .await
        .map_err(|e| ApiError::server(format!("log store worker failed: {e}")))?
        .map_err(ApiError::from)
}
