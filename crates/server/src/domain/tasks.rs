//! Task record reads shared by the task operations, services, the agent
//! protocol and the controllers. Live tasks (not yet STOPPED) come from the
//! index in `crate::live_tasks`.

use crate::db::{self, Versioned};
use crate::error::ApiResult;
use stevedore_api::ecs::Task;
use stevedore_model::arn::{child_id, Scope};
use stevedore_model::keys;
use stevedore_store::Store;

/// The id at the end of the task's ARN (its key under the cluster).
pub fn task_id(task: &Task) -> &str {
    task.task_arn
        .as_deref()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or_default()
}

/// Every task record of the cluster, stopped history included.
pub fn tasks_in_cluster(
    store: &dyn Store,
    scope: &Scope,
    cluster: &str,
) -> ApiResult<Vec<Versioned<Task>>> {
    db::all_versioned(
        store,
        &keys::cluster_children_prefix(scope, cluster, keys::KIND_TASK),
    )
}

/// The task a `task` parameter (id or ARN) names, with its key.
pub fn load_task(
    store: &dyn Store,
    scope: &Scope,
    cluster: &str,
    given: &str,
) -> ApiResult<Option<(String, Versioned<Task>)>> {
    let Some(id) = child_id(scope, "task", cluster, given) else {
        return Ok(None);
    };
    let key = keys::task(scope, cluster, &id);
    Ok(db::get(store, &key)?.map(|v| (key, v)))
}
