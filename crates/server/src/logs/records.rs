//! Stored records of the Logs API and the helpers that read them.

use crate::db::{self, Versioned};
use crate::error::ApiResult;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamRecord {
    pub name: String,
    pub creation_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_event_timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ingestion_time: Option<i64>,
    /// Bytes of message text held (what storedBytes reports).
    #[serde(default)]
    pub stored_bytes: i64,
    /// The ingest sequence of the next event (starts at 1, so position
    /// `(t, 0)` sorts before every event at `t`).
    pub next_seq: u64,
}

/// One stored event; the key holds the timestamp and sequence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
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
