//! The live-task index (layout in `stevedore_model::keys::live_task`).
//!
//! Invariant: a `livetask/CLUSTER/ID` key exists exactly when the task
//! record `task/CLUSTER/ID` exists and its `lastStatus` is not STOPPED. Every
//! writer keeps it by putting `add` in the transaction that creates the
//! record and `remove` in the transaction that records STOPPED (today: the
//! launch commit and the agent's task-state report), so a crash can never
//! leave the two apart. Readers use `live_tasks` and never need to scan the
//! stopped history, which grows with churn until retention removes it.

use crate::db::{self, Versioned};
use crate::error::ApiResult;
use stevedore_api::agent::TaskStatus;
use stevedore_api::ecs::Task;
use stevedore_model::arn::Scope;
use stevedore_model::keys;
use stevedore_store::{Compare, Op, RangeRequest, Store, Txn};

/// The stored task's `lastStatus`; records keep the wire string so existing
/// data dirs load, decisions are made on the enum.
pub fn last_status(task: &Task) -> TaskStatus {
    TaskStatus::from(task.last_status.as_deref().unwrap_or_default())
}

pub fn is_live(task: &Task) -> bool {
    last_status(task) != TaskStatus::Stopped
}

/// The index entry for a task record being created.
pub fn add(scope: &Scope, cluster: &str, id: &str, task: &Task) -> Op {
    db::put(
        keys::live_task(scope, cluster, id),
        &task.task_arn.clone().unwrap_or_default(),
    )
}

/// Drops the entry of a task whose record now says STOPPED.
pub fn remove(scope: &Scope, cluster: &str, id: &str) -> Op {
    Op::Delete {
        key: keys::live_task(scope, cluster, id),
    }
}

/// The cluster's tasks that are not yet STOPPED, in task-id order, each
/// with its record's revision (for compare-and-set). An index key whose
/// record is gone or already STOPPED cannot exist by the invariant; such a
/// key is skipped rather than trusted.
pub fn live_tasks(
    store: &dyn Store,
    scope: &Scope,
    cluster: &str,
) -> ApiResult<Vec<Versioned<Task>>> {
    let prefix = keys::live_tasks_prefix(scope, cluster);
    let index = store.range(&RangeRequest::prefix(prefix.clone()))?;
    let mut out = Vec::with_capacity(index.kvs.len());
    for kv in &index.kvs {
        let id = keys::suffix(&kv.key, &prefix);
        if let Some(v) = db::get::<Task>(store, &keys::task(scope, cluster, id))? {
            if is_live(&v.value) {
                out.push(v);
            }
        }
    }
    Ok(out)
}

/// Indexes a data directory written before the index existed: one
/// transaction that adds every live task record and the marker, so a crash
/// midway leaves nothing half-built and the next start simply redoes it.
/// Runs before the server listens; a store that has the marker costs one get.
pub async fn ensure_index(store: &dyn Store) -> ApiResult<()> {
    let marker = keys::live_task_index_marker();
    if store.get(marker)?.is_some() {
        return Ok(());
    }
    let all = store.range(&RangeRequest::prefix("/ecs/"))?;
    let mut txn = Txn::new().when(Compare::absent(marker));
    for kv in &all.kvs {
        // `/ecs/ACCOUNT/REGION/task/CLUSTER/ID`
        let parts: Vec<&str> = kv.key.split('/').collect();
        let [_, "ecs", account, region, kind, cluster, id] = parts.as_slice() else {
            continue;
        };
        if *kind != keys::KIND_TASK {
            continue;
        }
        let task: Task = db::decode(kv)?;
        if is_live(&task) {
            let scope = Scope {
                account: account.to_string(),
                region: region.to_string(),
            };
            txn.ops.push(add(&scope, cluster, id, &task));
        }
    }
    txn = txn.put(marker, b"1".to_vec());
    store.txn(txn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use stevedore_store_sqlite::SqliteStore;

    fn task(scope: &Scope, id: &str, last: &str) -> Task {
        Task {
            task_arn: Some(format!(
                "arn:aws:ecs:{}:{}:task/c/{id}",
                scope.region, scope.account
            )),
            last_status: Some(last.into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn old_data_dir_is_indexed_once_with_only_live_tasks() {
        let dir = std::env::temp_dir().join(format!("stevedore-live-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(&dir.join("db.sqlite")).unwrap();
        let store: &dyn Store = store.as_ref();
        let scope = Scope::new("123456789012", "us-east-1");
        // Records as a server without the index wrote them.
        let mut ops = Vec::new();
        for (id, last) in [("a", "RUNNING"), ("b", "STOPPED"), ("c", "PENDING")] {
            ops.push(db::put(
                keys::task(&scope, "c", id),
                &task(&scope, id, last),
            ));
        }
        assert!(db::commit(store, vec![], ops).await.unwrap());
        assert!(live_tasks(store, &scope, "c").unwrap().is_empty());

        ensure_index(store).await.unwrap();
        let ids = |store: &dyn Store| -> Vec<String> {
            live_tasks(store, &scope, "c")
                .unwrap()
                .iter()
                .map(|t| t.value.task_arn.clone().unwrap())
                .map(|a| a.rsplit('/').next().unwrap().to_string())
                .collect()
        };
        assert_eq!(ids(store), ["a", "c"]);
        assert!(store.get(keys::live_task_index_marker()).unwrap().is_some());

        // With the marker present a start does not touch the index: a task
        // stopped later (record and removal in one txn) stays out.
        let stopped = task(&scope, "a", "STOPPED");
        db::commit(
            store,
            vec![],
            vec![
                db::put(keys::task(&scope, "c", "a"), &stopped),
                remove(&scope, "c", "a"),
            ],
        )
        .await
        .unwrap();
        ensure_index(store).await.unwrap();
        assert_eq!(ids(store), ["c"]);
    }
}
