//! Asking a task to stop: StopTask, the service controller's stops (scale
//! down, replacement, DeleteService draining) all record the same intent.
//! The agent acts on `desiredStatus`; the reason and code are what
//! DescribeTasks shows once the task is STOPPED.

use crate::db;
use crate::error::ApiResult;
use stevedore_api::ecs::{DesiredStatus, Task, TaskStopCode};
use stevedore_api::Timestamp;
use stevedore_model::arn::Scope;
use stevedore_model::keys;
use stevedore_store::Store;

/// Why a task is being stopped, as DescribeTasks will show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopReason {
    pub code: TaskStopCode,
    pub reason: String,
}

pub fn desired_stopped(t: &Task) -> bool {
    t.desired_status.as_deref().map(DesiredStatus::from) == Some(DesiredStatus::Stopped)
}

/// Records the intent to stop on the record (no IO).
pub fn request_stop(t: &mut Task, why: StopReason, now: Timestamp) {
    t.desired_status = Some(DesiredStatus::Stopped.as_str().to_string());
    t.stopped_reason = Some(why.reason);
    t.stop_code = Some(why.code);
    t.stopping_at = Some(now);
    t.version = Some(t.version.unwrap_or(0) + 1);
}

/// Sets `desiredStatus` STOPPED on the task `id` with compare-and-set,
/// retrying a lost race. A task already asked to stop keeps its first
/// reason. Returns the record as it now stands, or `None` if there is no
/// such task.
pub async fn stop_task(
    store: &dyn Store,
    scope: &Scope,
    cluster: &str,
    id: &str,
    why: StopReason,
    now: Timestamp,
) -> ApiResult<Option<Task>> {
    let key = keys::task(scope, cluster, id);
    for _ in 0..db::MAX_CAS_RETRIES {
        let Some(v) = db::get::<Task>(store, &key)? else {
            return Ok(None);
        };
        let mut t = v.value;
        if desired_stopped(&t) {
            return Ok(Some(t));
        }
        request_stop(&mut t, why.clone(), now);
        if db::commit(
            store,
            vec![db::unchanged(&key, v.mod_revision)],
            vec![db::put(&key, &t)],
        )
        .await?
        {
            return Ok(Some(t));
        }
    }
    Err(db::contention())
}

#[cfg(test)]
mod tests {
    use super::*;
    use stevedore_store_sqlite::SqliteStore;

    #[tokio::test]
    async fn a_stop_is_recorded_once_and_keeps_its_first_reason() {
        let dir = std::env::temp_dir().join(format!("stevedore-stop-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(&dir.join("db.sqlite")).unwrap();
        let store: &dyn Store = store.as_ref();
        let scope = Scope::new("123456789012", "us-east-1");
        let task = Task {
            task_arn: Some(scope.task_arn("c", "t1")),
            desired_status: Some(DesiredStatus::Running.as_str().to_string()),
            version: Some(1),
            ..Default::default()
        };
        let put = db::put(keys::task(&scope, "c", "t1"), &task);
        assert!(db::commit(store, vec![], vec![put]).await.unwrap());

        let why = |code, reason: &str| StopReason {
            code,
            reason: reason.into(),
        };
        let now = Timestamp::from_millis(1_700_000_000_000);
        let first = why(TaskStopCode::ServiceSchedulerInitiated, "scaling in");
        let t = stop_task(store, &scope, "c", "t1", first, now)
            .await
            .unwrap()
            .unwrap();
        assert!(desired_stopped(&t));
        assert_eq!(t.stop_code, Some(TaskStopCode::ServiceSchedulerInitiated));
        assert_eq!(t.stopped_reason.as_deref(), Some("scaling in"));
        assert_eq!(t.stopping_at, Some(now));
        assert_eq!(t.version, Some(2));

        // A later StopTask answers the task as it is.
        let later = why(TaskStopCode::UserInitiated, "by hand");
        let again = stop_task(store, &scope, "c", "t1", later.clone(), now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            again.stop_code,
            Some(TaskStopCode::ServiceSchedulerInitiated)
        );
        assert_eq!(again.version, Some(2));
        let stored = db::get::<Task>(store, &keys::task(&scope, "c", "t1"))
            .unwrap()
            .unwrap();
        assert_eq!(stored.value.stopped_reason.as_deref(), Some("scaling in"));

        assert!(stop_task(store, &scope, "c", "gone", later, now)
            .await
            .unwrap()
            .is_none());
    }
}
