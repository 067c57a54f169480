//! UpdateTaskProtection, GetTaskProtection: scale-in protection of service
//! tasks. A protected task has a key `keys::task_protection` holding a
//! `ProtectedTask`; the service controller does not stop protected tasks
//! when scaling in. An expired entry counts as unprotected.

use super::record;
use crate::db::{self, Versioned};
use crate::domain::clusters::load_active;
use crate::error::{ApiError, ApiResult};
use crate::state::Cx;
use stevedore_api::ecs::*;
use stevedore_api::Timestamp;
use stevedore_model::arn::child_id;
use stevedore_model::keys;
use stevedore_store::Op;

fn load_task(cx: &Cx, cluster: &str, given: &str) -> ApiResult<Option<Versioned<Task>>> {
    let Some(id) = child_id(cx.scope(), "task", cluster, given) else {
        return Ok(None);
    };
    db::get(cx.store(), &keys::task(cx.scope(), cluster, &id))
}

fn task_id(t: &Task) -> String {
    t.task_arn
        .as_deref()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or_default()
        .to_string()
}

fn is_service_task(t: &Task) -> bool {
    t.group
        .as_deref()
        .and_then(|g| g.strip_prefix("service:"))
        .is_some_and(|name| record::belongs_to(t, name))
}

fn failure(arn: String, reason: &str, detail: &str) -> Failure {
    Failure {
        arn: Some(arn),
        reason: Some(reason.into()),
        detail: Some(detail.into()),
    }
}

fn check_tasks(given: &[String]) -> ApiResult<()> {
    if given.is_empty() || given.len() > 10 {
        return Err(ApiError::invalid(format!(
            "tasks must name 1 to 10 tasks; {} were given.",
            given.len()
        )));
    }
    Ok(())
}

/// The protection in force for a task now.
fn current(cx: &Cx, cluster: &str, t: &Task) -> ApiResult<ProtectedTask> {
    let key = keys::task_protection(cx.scope(), cluster, &task_id(t));
    let stored = db::get::<ProtectedTask>(cx.store(), &key)?.map(|v| v.value);
    Ok(match stored {
        Some(p)
            if p.protection_enabled == Some(true)
                && p.expiration_date.is_none_or(|e| e > cx.now) =>
        {
            p
        }
        _ => ProtectedTask {
            task_arn: t.task_arn.clone(),
            protection_enabled: Some(false),
            expiration_date: None,
        },
    })
}

pub async fn update_task_protection(
    cx: Cx,
    req: UpdateTaskProtectionRequest,
) -> ApiResult<UpdateTaskProtectionResponse> {
    let cluster = load_active(cx.store(), cx.scope(), req.cluster.as_deref())?.value;
    let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
    let given = req.tasks.clone().unwrap_or_default();
    check_tasks(&given)?;
    let enable = req.protection_enabled.unwrap_or(false);
    let minutes = req.expires_in_minutes.unwrap_or(120);
    if enable && !(1..=2880).contains(&minutes) {
        return Err(ApiError::invalid(format!(
            "expiresInMinutes must be between 1 and 2880 (48 hours); it was {minutes}."
        )));
    }
    let expires = Timestamp::from_millis(cx.now.as_millis() + i64::from(minutes) * 60_000);
    let mut protected = Vec::new();
    let mut failures = Vec::new();
    let mut ops = Vec::new();
    for g in &given {
        let Some(v) = load_task(&cx, &cluster_name, g)? else {
            failures.push(crate::ecs::missing(g, |id| {
                cx.scope().task_arn(&cluster_name, id)
            }));
            continue;
        };
        let t = v.value;
        let arn = t.task_arn.clone().unwrap_or_default();
        if !is_service_task(&t) {
            failures.push(failure(
                arn,
                "TASK_NOT_VALID",
                "Only tasks started by a service can be protected from scale-in.",
            ));
            continue;
        }
        if !crate::live_tasks::is_live(&t)
            || t.desired_status.as_deref() == Some(DesiredStatus::Stopped.as_str())
        {
            failures.push(failure(
                arn,
                "TASK_NOT_VALID",
                "The task is stopped or stopping; only running tasks can be protected.",
            ));
            continue;
        }
        let key = keys::task_protection(cx.scope(), &cluster_name, &task_id(&t));
        if enable {
            let p = ProtectedTask {
                task_arn: Some(arn),
                protection_enabled: Some(true),
                expiration_date: Some(expires),
            };
            ops.push(db::put(key, &p));
            protected.push(p);
        } else {
            ops.push(Op::Delete { key });
            protected.push(ProtectedTask {
                task_arn: Some(arn),
                protection_enabled: Some(false),
                expiration_date: None,
            });
        }
    }
    if !ops.is_empty() {
        db::commit(cx.store(), Vec::new(), ops).await?;
    }
    Ok(UpdateTaskProtectionResponse {
        protected_tasks: Some(protected),
        failures: Some(failures),
    })
}

pub async fn get_task_protection(
    cx: Cx,
    req: GetTaskProtectionRequest,
) -> ApiResult<GetTaskProtectionResponse> {
    let cluster = load_active(cx.store(), cx.scope(), req.cluster.as_deref())?.value;
    let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
    let mut protected = Vec::new();
    let mut failures = Vec::new();
    match req.tasks.as_deref() {
        Some(given) => {
            check_tasks(given)?;
            for g in given {
                match load_task(&cx, &cluster_name, g)? {
                    Some(v) => protected.push(current(&cx, &cluster_name, &v.value)?),
                    None => failures.push(crate::ecs::missing(g, |id| {
                        cx.scope().task_arn(&cluster_name, id)
                    })),
                }
            }
        }
        None => {
            // Every task of the cluster that is protected now.
            let prefix =
                keys::cluster_children_prefix(cx.scope(), &cluster_name, keys::KIND_PROTECTION);
            for v in db::all_versioned::<ProtectedTask>(cx.store(), &prefix)? {
                let p = v.value;
                if p.protection_enabled == Some(true)
                    && p.expiration_date.is_none_or(|e| e > cx.now)
                {
                    protected.push(p);
                }
            }
        }
    }
    Ok(GetTaskProtectionResponse {
        protected_tasks: Some(protected),
        failures: Some(failures),
    })
}
