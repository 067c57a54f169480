//! The server side of the agent protocol (see `stevedore_api::agent`):
//! long-polled task assignments and sequenced state reports.

use crate::db::{self, Versioned};
use crate::domain::instances::{load_instance, InstanceRecord};
use crate::domain::task_definitions::resolve as resolve_task_definition;
use crate::domain::tasks::task_id;
use crate::error::{ApiError, ApiResult};
use crate::live_tasks::last_status;
use crate::operation::{call, Wire};
use crate::state::Cx;
use std::time::Duration;
use stevedore_api::agent::*;
use stevedore_api::ecs::{DesiredStatus, LaunchType, Task};
use stevedore_model::arn::{cluster_ref, ClusterRef};
use stevedore_model::keys;

/// The agent protocol's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    PollTasks,
    ReportTaskStates,
}

impl Operation {
    pub fn from_name(name: &str) -> Option<Operation> {
        match name {
            "PollTasks" => Some(Operation::PollTasks),
            "ReportTaskStates" => Some(Operation::ReportTaskStates),
            _ => None,
        }
    }
}

pub(crate) async fn dispatch(cx: Cx, op: Operation, wire: Wire<'_>) -> ApiResult<Vec<u8>> {
    match op {
        Operation::PollTasks => call(cx, wire, |cx, req| async move { poll(&cx, req).await }).await,
        Operation::ReportTaskStates => {
            call(cx, wire, |cx, req| async move { report(&cx, req).await }).await
        }
    }
}

fn cluster_name(cx: &Cx, given: &str) -> ApiResult<String> {
    match cluster_ref(cx.scope(), Some(given)) {
        ClusterRef::Name(n) => Ok(n),
        ClusterRef::Foreign => Err(ApiError::cluster_not_found()),
    }
}

fn instance(cx: &Cx, cluster: &str, arn: &str) -> ApiResult<(String, Versioned<InstanceRecord>)> {
    let (key, v) = load_instance(cx.store(), cx.scope(), cluster, arn)?.ok_or_else(|| {
        ApiError::client(format!(
            "Container instance {arn} is not registered; register again."
        ))
    })?;
    if v.value.instance.status.as_deref() == Some("INACTIVE") {
        return Err(ApiError::client(format!(
            "Container instance {arn} was deregistered; register again."
        )));
    }
    Ok((key, v))
}

fn assigned(cx: &Cx, cluster: &str, arn: &str) -> ApiResult<Vec<AssignedTask>> {
    let mut out = Vec::new();
    for t in crate::live_tasks::live_tasks(cx.store(), cx.scope(), cluster)? {
        let t = t.value;
        if t.container_instance_arn.as_deref() != Some(arn) {
            continue;
        }
        let desired = DesiredStatus::from(t.desired_status.as_deref().unwrap_or_default());
        let stop = desired == DesiredStatus::Stopped;
        if stop && last_status(&t) == TaskStatus::Stopped {
            continue;
        }
        let td_arn = t.task_definition_arn.clone().unwrap_or_default();
        let Some((_, td)) = resolve_task_definition(cx.store(), cx.scope(), &td_arn)? else {
            continue;
        };
        out.push(AssignedTask {
            task_arn: t.task_arn.clone().unwrap_or_default(),
            desired_status: TaskStatus::from(desired.as_str()),
            task_definition: td.value.definition,
            overrides: t.overrides.clone(),
            launch_type: t.launch_type.clone().unwrap_or(LaunchType::Ec2),
            stopped_reason: stop.then(|| t.stopped_reason.clone()).flatten(),
            stop_code: stop.then(|| t.stop_code.clone()).flatten(),
        });
    }
    Ok(out)
}

async fn poll(cx: &Cx, req: PollTasksRequest) -> ApiResult<PollTasksResponse> {
    let cluster = cluster_name(cx, &req.cluster)?;
    let (_, rec) = instance(cx, &cluster, &req.container_instance_arn)?;
    let arn = rec
        .value
        .instance
        .container_instance_arn
        .clone()
        .unwrap_or_default();
    let _guard = cx.state.heartbeats.poll_started(&arn);
    let wait = Duration::from_secs(req.wait_seconds.min(MAX_WAIT_SECONDS) as u64)
        .min(cx.state.heartbeats.max_poll_wait());
    let revision = cx.store().current_revision();
    if revision <= req.known_revision && !wait.is_zero() {
        // Sleep until a task of this instance changes, or the wait ends.
        let prefix = keys::cluster_children_prefix(cx.scope(), &cluster, keys::KIND_TASK);
        let mut watch = cx.store().watch(&prefix, req.known_revision)?;
        let needle = format!("\"containerInstanceArn\":\"{arn}\"");
        let _ = tokio::time::timeout(wait, async {
            while let Some(batch) = watch.recv().await {
                match batch {
                    Ok(events) => {
                        let mine = events.iter().any(|e| {
                            std::str::from_utf8(&e.kv.value).is_ok_and(|v| v.contains(&needle))
                        });
                        if mine {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        })
        .await;
    }
    let revision = cx.store().current_revision();
    Ok(PollTasksResponse {
        revision,
        tasks: assigned(cx, &cluster, &arn)?,
    })
}

/// Position in the ECS task lifecycle; an unlisted value ranks first, so it
/// never overrides a known later state.
fn rank(status: &TaskStatus) -> u8 {
    match status {
        TaskStatus::Provisioning | TaskStatus::Unknown(_) => 0,
        TaskStatus::Pending => 1,
        TaskStatus::Activating => 2,
        TaskStatus::Running => 3,
        TaskStatus::Deactivating => 4,
        TaskStatus::Stopping => 5,
        TaskStatus::Deprovisioning => 6,
        TaskStatus::Stopped => 7,
    }
}

/// Applies one observation to the stored task; returns whether it changed.
fn apply(cx: &Cx, t: &mut Task, o: &ObservedTask) -> bool {
    let before = serde_json::to_vec(&*t).unwrap_or_default();
    // Status only moves forward: a late report never resurrects a task.
    if rank(&o.last_status) >= rank(&last_status(t)) {
        t.last_status = Some(o.last_status.as_str().to_string());
    }
    let stopped = last_status(t) == TaskStatus::Stopped;
    // Keep our container ARNs; take everything observed.
    let mut containers = t.containers.clone().unwrap_or_default();
    for oc in &o.containers {
        if let Some(c) = containers.iter_mut().find(|c| c.name == oc.name) {
            let arn = c.container_arn.clone();
            let task_arn = c.task_arn.clone();
            let (cpu, mem, res) = (
                c.cpu.clone(),
                c.memory.clone(),
                c.memory_reservation.clone(),
            );
            *c = oc.clone();
            c.container_arn = arn;
            c.task_arn = task_arn;
            c.cpu = oc.cpu.clone().or(cpu);
            c.memory = oc.memory.clone().or(mem);
            c.memory_reservation = oc.memory_reservation.clone().or(res);
            if c.network_bindings.is_none() {
                c.network_bindings = Some(Vec::new());
            }
            if c.network_interfaces.is_none() {
                c.network_interfaces = Some(Vec::new());
            }
        }
    }
    t.containers = Some(containers);
    if !o.attachments.is_empty() {
        let mut atts = t.attachments.clone().unwrap_or_default();
        for oa in &o.attachments {
            match atts.iter_mut().find(|a| a.r#type == oa.r#type) {
                Some(a) => {
                    a.status = oa.status.clone().or(a.status.take());
                    let mut details = a.details.clone().unwrap_or_default();
                    for d in oa.details.clone().unwrap_or_default() {
                        match details.iter_mut().find(|x| x.name == d.name) {
                            Some(x) => x.value = d.value,
                            None => details.push(d),
                        }
                    }
                    a.details = Some(details);
                }
                None => atts.push(oa.clone()),
            }
        }
        t.attachments = Some(atts);
    }
    if let Some(h) = &o.health_status {
        t.health_status = Some(stevedore_api::ecs::HealthStatus::from(h.as_str()));
    }
    t.pull_started_at = t.pull_started_at.or(o.pull_started_at);
    t.pull_stopped_at = t.pull_stopped_at.or(o.pull_stopped_at);
    if t.started_at.is_none() {
        t.started_at = o.started_at;
    }
    if last_status(t) == TaskStatus::Running && t.connectivity_at.is_none() {
        t.connectivity = Some(stevedore_api::ecs::Connectivity::Connected);
        t.connectivity_at = Some(cx.now);
    }
    if rank(&last_status(t)) >= rank(&TaskStatus::Deactivating) && t.stopping_at.is_none() {
        t.stopping_at = Some(cx.now);
    }
    if stopped {
        t.execution_stopped_at = t
            .execution_stopped_at
            .or(o.execution_stopped_at)
            .or(Some(cx.now));
        t.stopped_at = t.stopped_at.or(Some(cx.now));
        t.desired_status = Some(DesiredStatus::Stopped.as_str().to_string());
        t.connectivity = Some(stevedore_api::ecs::Connectivity::Disconnected);
        // A stop the user asked for keeps its code and reason.
        if t.stop_code.is_none() {
            t.stop_code = o.stop_code.clone();
            t.stopped_reason = o.stopped_reason.clone();
        }
    }
    let changed = serde_json::to_vec(&*t).unwrap_or_default() != before;
    if changed {
        t.version = Some(t.version.unwrap_or(0) + 1);
    }
    changed
}

async fn report(cx: &Cx, req: ReportTaskStatesRequest) -> ApiResult<ReportTaskStatesResponse> {
    let cluster = cluster_name(cx, &req.cluster)?;
    for _ in 0..db::MAX_CAS_RETRIES {
        let (ikey, inst) = instance(cx, &cluster, &req.container_instance_arn)?;
        let arn = inst
            .value
            .instance
            .container_instance_arn
            .clone()
            .unwrap_or_default();
        cx.state.heartbeats.seen(&arn);
        if req.seq <= inst.value.report_seq {
            return Ok(ReportTaskStatesResponse { accepted: false });
        }
        let mut rec = inst.value.clone();
        rec.report_seq = req.seq;
        let mut compares = vec![db::unchanged(&ikey, inst.mod_revision)];
        let mut ops = Vec::new();
        for o in &req.tasks {
            let Some(id) = o.task_arn.rsplit('/').next() else {
                continue;
            };
            let key = keys::task(cx.scope(), &cluster, id);
            let Some(v) = db::get::<Task>(cx.store(), &key)? else {
                continue;
            };
            if v.value.container_instance_arn.as_deref() != Some(arn.as_str()) {
                continue;
            }
            let mut t = v.value;
            let was_stopped = last_status(&t) == TaskStatus::Stopped;
            if apply(cx, &mut t, o) {
                if last_status(&t) == TaskStatus::Stopped {
                    rec.allocations.remove(task_id(&t));
                    // Same txn as the STOPPED record: see live_tasks and
                    // history. `stoppedAt` never changes once set, so the
                    // index key is written once, on the transition.
                    ops.push(crate::live_tasks::remove(cx.scope(), &cluster, id));
                    if !was_stopped {
                        ops.push(crate::history::index(cx.scope(), &cluster, id, &t));
                    }
                }
                compares.push(db::unchanged(&key, v.mod_revision));
                ops.push(db::put(&key, &t));
            }
        }
        ops.push(db::put(&ikey, &rec));
        if db::commit(cx.store(), compares, ops).await? {
            return Ok(ReportTaskStatesResponse { accepted: true });
        }
    }
    Err(db::contention())
}
