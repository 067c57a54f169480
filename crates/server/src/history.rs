//! Bounded task history: the stopped-task index (layout in
//! `stevedore_model::keys::stopped_task`) and the collector that deletes
//! stopped tasks once they are past retention.
//!
//! Invariant: a `/ctl/stoppedtask/MS/ACCOUNT/REGION/CLUSTER/ID` key exists
//! exactly when the task record exists and its `lastStatus` is STOPPED,
//! with MS its `stoppedAt`. The agent report that records STOPPED puts it
//! (`index`, next to `live_tasks::remove`); the collector deletes it in the
//! same transaction as the record.
//!
//! The collector is a ctlrt reconciler. Each pass reads only the head of
//! the index (at most one batch), asks the pure
//! `stevedore_controllers::gc::decide` what is past retention, and deletes
//! those tasks with everything hanging off them, compare-and-set on each
//! record so a write racing the delete is never lost (the task is then
//! retried on a later pass).

use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::live_tasks::{is_live, last_status};
use crate::state::Counters;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use stevedore_api::agent::TaskStatus;
use stevedore_api::ecs::Task;
use stevedore_api::Timestamp;
use stevedore_ctlrt::{Action, Context, Reconciler};
use stevedore_model::arn::Scope;
use stevedore_model::keys::{self, StoppedTaskKey};
use stevedore_store::{Compare, KeyValue, Op, RangeRequest, Store, Txn};

/// Deletes per transaction: bounds the txn (and the writer's batch) while
/// a backlog (a first start on an old data dir) drains in a few passes.
pub const GC_BATCH: usize = 128;

/// The index entry for a task whose record now says STOPPED.
pub fn index(scope: &Scope, cluster: &str, id: &str, task: &Task) -> Op {
    db::put(
        keys::stopped_task(scope, cluster, stopped_at_ms(task), id),
        &task.task_arn.clone().unwrap_or_default(),
    )
}

/// A STOPPED record always has `stoppedAt` (the report sets it); 0 only for
/// a hand-damaged record, which then expires at once rather than never.
fn stopped_at_ms(task: &Task) -> i64 {
    task.stopped_at.map(|t| t.as_millis()).unwrap_or(0)
}

/// Indexes the STOPPED records of a data directory written before the
/// index existed, in one transaction with the marker (see
/// `live_tasks::ensure_index`). Their retention counts from `stoppedAt`,
/// so history older than the retention goes on the collector's first pass.
pub async fn ensure_index(store: &dyn Store) -> ApiResult<()> {
    let marker = keys::stopped_task_index_marker();
    if store.get(marker)?.is_some() {
        return Ok(());
    }
    let all = store.range(&RangeRequest::prefix("/ecs/"))?;
    let mut txn = Txn::new().when(Compare::absent(marker));
    for kv in &all.kvs {
        let Some((scope, cluster, id)) = task_key(&kv.key) else {
            continue;
        };
        let task: Task = db::decode(kv)?;
        if last_status(&task) == TaskStatus::Stopped {
            txn.ops.push(index(&scope, cluster, id, &task));
        }
    }
    txn = txn.put(marker, b"1".to_vec());
    store.txn(txn).await?;
    Ok(())
}

/// `/ecs/ACCOUNT/REGION/task/CLUSTER/ID` split into its parts.
fn task_key(key: &str) -> Option<(Scope, &str, &str)> {
    let parts: Vec<&str> = key.split('/').collect();
    let ["", "ecs", account, region, kind, cluster, id] = parts.as_slice() else {
        return None;
    };
    (*kind == keys::KIND_TASK).then(|| (Scope::new(*account, *region), *cluster, *id))
}

/// How many task records the store holds, across tenants (admin debug).
pub fn count_task_records(store: &dyn Store) -> ApiResult<usize> {
    let all = store.range(&RangeRequest::prefix("/ecs/"))?;
    Ok(all
        .kvs
        .iter()
        .filter(|kv| task_key(&kv.key).is_some())
        .count())
}

/// Task ids per (scope, cluster) that stopped at or after `since_ms`, read
/// from the index: what the service controller needs of history.
pub fn stopped_since(
    store: &dyn Store,
    since_ms: i64,
) -> ApiResult<HashMap<(Scope, String), Vec<String>>> {
    let prefix = keys::stopped_tasks_prefix();
    // Every key at `since_ms` or later sorts after the bare time part.
    let cursor = format!("{prefix}{}", keys::stopped_task_time(since_ms));
    let cursor = cursor.trim_end_matches('/');
    let r = store.range(&RangeRequest::prefix(prefix).start_after(cursor))?;
    let mut out: HashMap<(Scope, String), Vec<String>> = HashMap::new();
    for kv in &r.kvs {
        if let Some(k) = keys::parse_stopped_task(&kv.key) {
            out.entry((k.scope, k.cluster)).or_default().push(k.id);
        }
    }
    Ok(out)
}

/// The collector's clock (ms since the epoch): wall time in the server,
/// tokio time in tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn wall_clock() -> Clock {
    Arc::new(|| Timestamp::now().as_millis())
}

/// Deletes stopped tasks once they are `retention` past `stoppedAt`.
pub struct GcController {
    store: Arc<dyn Store>,
    retention: Duration,
    clock: Clock,
    counters: Arc<Counters>,
}

impl GcController {
    pub fn new(
        store: Arc<dyn Store>,
        retention: Duration,
        clock: Clock,
        counters: Arc<Counters>,
    ) -> Self {
        GcController {
            store,
            retention,
            clock,
            counters,
        }
    }

    /// Loop timing: the decision's wake-up is never later than one
    /// retention from now (a task stopping later expires later), so the
    /// collector needs no change notifications and no resync shorter
    /// than the retention.
    pub fn config(retention: Duration) -> stevedore_ctlrt::Config {
        stevedore_ctlrt::Config {
            resync: retention.max(Duration::from_secs(1)),
            ..Default::default()
        }
    }
}

/// A pass that could not read or write the store.
#[derive(Debug)]
pub struct GcFailed(ApiError);

impl std::fmt::Display for GcFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.code, self.0.message)
    }
}

impl From<ApiError> for GcFailed {
    fn from(e: ApiError) -> Self {
        GcFailed(e)
    }
}

impl From<stevedore_store::StoreError> for GcFailed {
    fn from(e: stevedore_store::StoreError) -> Self {
        GcFailed(e.into())
    }
}

impl Reconciler for GcController {
    type Error = GcFailed;

    fn name(&self) -> &'static str {
        "gc"
    }

    async fn reconcile(&mut self, cx: &Context) -> Result<Action, GcFailed> {
        let now = (self.clock)();
        let retention_ms = self.retention.as_millis().min(i64::MAX as u128) as i64;
        let head = self
            .store
            .range(&RangeRequest::prefix(keys::stopped_tasks_prefix()).limit(GC_BATCH))?;
        // A key the code cannot have written sorts as stopped at 0, so it is
        // cleared at once instead of blocking the head of the index.
        let parsed: Vec<Option<StoppedTaskKey>> = head
            .kvs
            .iter()
            .map(|kv| keys::parse_stopped_task(&kv.key))
            .collect();
        let times: Vec<i64> = parsed
            .iter()
            .map(|p| p.as_ref().map_or(0, |k| k.stopped_at_ms))
            .collect();
        let d = stevedore_controllers::gc::decide(&times, head.more, now, retention_ms, GC_BATCH);
        self.counters.gc_passes.fetch_add(1, Ordering::Relaxed);
        if !d.expired.is_empty() && !cx.should_stop() {
            let deletes: Vec<(Vec<Compare>, Vec<Op>)> = d
                .expired
                .iter()
                .map(|&i| delete_ops(self.store.as_ref(), &head.kvs[i], parsed[i].as_ref()))
                .collect::<ApiResult<_>>()?;
            let deleted = commit_deletes(self.store.as_ref(), deletes).await?;
            self.counters
                .gc_tasks_deleted
                .fetch_add(deleted as u64, Ordering::Relaxed);
        }
        Ok(Action::requeue(Duration::from_millis(
            d.wake_at.saturating_sub(now).max(0) as u64,
        )))
    }
}

/// What deleting one index entry takes: its task record (if it is still
/// the STOPPED record the entry stands for) and everything keyed by the
/// task, each compared against the revision read.
fn delete_ops(
    store: &dyn Store,
    entry: &KeyValue,
    key: Option<&StoppedTaskKey>,
) -> ApiResult<(Vec<Compare>, Vec<Op>)> {
    let mut compares = vec![db::unchanged(&entry.key, entry.mod_revision)];
    let mut ops = vec![Op::Delete {
        key: entry.key.clone(),
    }];
    let Some(k) = key else {
        return Ok((compares, ops));
    };
    let task_key = keys::task(&k.scope, &k.cluster, &k.id);
    let Some(task) = db::get::<Task>(store, &task_key)? else {
        return Ok((compares, ops));
    };
    if is_live(&task.value) {
        // Cannot happen by the invariant; never delete a live task on the
        // word of the index.
        tracing::warn!(key = %entry.key, "stopped-task index names a live task; dropping the entry");
        return Ok((compares, ops));
    }
    compares.push(db::unchanged(&task_key, task.mod_revision));
    ops.push(Op::Delete { key: task_key });
    // Kept off the record, keyed by the task id.
    for key in [
        keys::task_protection(&k.scope, &k.cluster, &k.id),
        keys::live_task(&k.scope, &k.cluster, &k.id),
    ] {
        ops.push(Op::Delete { key });
    }
    Ok((compares, ops))
}

/// Commits the deletes in one transaction; if a racing write fails a
/// compare, each task on its own, so one busy task does not hold back the
/// rest (it is retried on the next pass). Returns how many went.
async fn commit_deletes(
    store: &dyn Store,
    deletes: Vec<(Vec<Compare>, Vec<Op>)>,
) -> ApiResult<usize> {
    let all = Txn {
        compares: deletes.iter().flat_map(|(c, _)| c.clone()).collect(),
        ops: deletes.iter().flat_map(|(_, o)| o.clone()).collect(),
    };
    if store.txn(all).await?.succeeded {
        return Ok(deletes.len());
    }
    let mut n = 0;
    for (compares, ops) in deletes {
        if db::commit(store, compares, ops).await? {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
