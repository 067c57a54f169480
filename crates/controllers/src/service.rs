//! The service controller's decision: desired service + observed tasks and
//! instances + now -> tasks to start, tasks to stop, and the new persisted
//! state (deployments, events, bookkeeping). No IO, no clock, no
//! randomness; the caller applies the decision and calls again.

use crate::state::{
    deployment_id, DeploymentState, DeploymentStatus, Outcome, RollbackInfo, Rollout, ServiceState,
};
use std::collections::{BTreeMap, BTreeSet};
use stevedore_api::agent::TaskStatus;
use stevedore_api::ecs::TaskStopCode;

/// How long a stopped task stays interesting: older stops were either
/// accounted already or predate the controller.
pub const STOP_MEMORY_MS: i64 = 3600 * 1000;
/// Consecutive start failures before ECS's service throttle delays
/// launches. Equal to the circuit breaker's minimum threshold, so a
/// deployment with the breaker on fails before it is ever throttled.
pub const THROTTLE_AFTER: u32 = 10;
const THROTTLE_BASE_MS: i64 = 10_000;
const HEALTH_REASON: &str = "Task failed container health checks.";
const THROTTLE_MAX_MS: i64 = 27 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Unhealthy,
    Unknown,
}

/// One task of the service, as the store says it is.
#[derive(Debug, Clone)]
pub struct TaskView {
    pub id: String,
    /// The deployment that started it (`startedBy`).
    pub deployment: String,
    pub instance: String,
    pub last_status: TaskStatus,
    /// `desiredStatus == RUNNING`.
    pub desired_running: bool,
    /// When it reached RUNNING (ms).
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
    pub created_at: i64,
    pub health: Health,
    /// Whether any essential container has a health check.
    pub has_health_check: bool,
    pub stop_code: Option<TaskStopCode>,
    /// Scale-in protection in force now.
    pub protected: bool,
}

impl TaskView {
    fn is_stopped(&self) -> bool {
        self.last_status == TaskStatus::Stopped
    }
    fn is_running(&self) -> bool {
        self.last_status == TaskStatus::Running
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Active,
    Draining,
    /// INACTIVE, deregistering, or gone.
    Gone,
}

#[derive(Debug, Clone)]
pub struct InstanceView {
    pub arn: String,
    pub state: InstanceState,
    /// Disconnected for longer than the lost-instance grace.
    pub lost: bool,
    /// For DAEMON: the service's placement constraints allow it.
    pub eligible: bool,
}

#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub name: String,
    pub daemon: bool,
    pub desired_count: u32,
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    pub grace_period_ms: i64,
    /// DeleteService was called: stop everything, then go INACTIVE.
    pub draining: bool,
}

#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub now: i64,
    pub spec: &'a ServiceSpec,
    pub state: &'a ServiceState,
    pub tasks: &'a [TaskView],
    pub instances: &'a [InstanceView],
    /// A RUNNING task without health checks counts as healthy after this
    /// long (ECS waits 40 s).
    pub healthy_after_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub deployment: String,
    pub count: u32,
    /// DAEMON: the one instance to place on.
    pub instance: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub task_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub state: ServiceState,
    pub starts: Vec<Start>,
    pub stops: Vec<Stop>,
    /// The service's `taskDefinition` after this decision (a rollback
    /// changes it).
    pub task_definition: Option<String>,
    /// DAEMON: the desired count is the number of eligible instances.
    pub desired_count: Option<u32>,
    /// The service has no live task left after DeleteService.
    pub inactive: bool,
    /// Call again no later than this (ms), even if nothing changes.
    pub wake_at: Option<i64>,
}

/// The circuit breaker's threshold for a desired count.
pub fn breaker_threshold(desired: u32) -> u32 {
    desired.div_ceil(2).clamp(10, 200)
}

fn throttle_delay(failures: u32) -> i64 {
    let steps = failures.saturating_sub(THROTTLE_AFTER).min(16);
    (THROTTLE_BASE_MS << steps).min(THROTTLE_MAX_MS)
}

struct Ctx<'a> {
    input: &'a Input<'a>,
    name: String,
    instances: BTreeMap<&'a str, &'a InstanceView>,
}

impl<'a> Ctx<'a> {
    fn instance(&self, arn: &str) -> Option<&'a InstanceView> {
        self.instances.get(arn).copied()
    }
    fn on_lost(&self, t: &TaskView) -> bool {
        self.instance(&t.instance).is_none_or(|i| i.lost)
    }
    fn on_draining(&self, t: &TaskView) -> bool {
        self.instance(&t.instance)
            .is_some_and(|i| i.state != InstanceState::Active)
    }
    fn running_for(&self, t: &TaskView) -> Option<i64> {
        if !t.is_running() {
            return None;
        }
        Some(self.input.now - t.started_at.unwrap_or(self.input.now))
    }
    fn healthy(&self, t: &TaskView) -> bool {
        match self.running_for(t) {
            None => false,
            Some(_) if t.has_health_check => t.health == Health::Healthy,
            Some(age) => age >= self.input.healthy_after_ms,
        }
    }
    /// Failing health checks beyond the grace period.
    fn unhealthy(&self, t: &TaskView) -> bool {
        t.has_health_check
            && t.health == Health::Unhealthy
            && self
                .running_for(t)
                .is_some_and(|age| age >= self.input.spec.grace_period_ms)
    }
    /// ECS's "(service X) has stopped N running tasks: (task a) (task b)."
    fn tasks_message(&self, verb: &str, ids: &[&str]) -> String {
        let list: Vec<String> = ids.iter().map(|i| format!("(task {i})")).collect();
        format!(
            "(service {}) has {verb} {} running tasks: {}.",
            self.name,
            ids.len(),
            list.join(" ")
        )
    }
}

pub fn reconcile(input: &Input) -> Decision {
    let spec = input.spec;
    let now = input.now;
    let mut st = input.state.clone();
    let cx = Ctx {
        input,
        name: spec.name.clone(),
        instances: input
            .instances
            .iter()
            .map(|i| (i.arn.as_str(), i))
            .collect(),
    };
    let mut stops: Vec<Stop> = Vec::new();
    let mut starts: Vec<Start> = Vec::new();
    let mut wake_at: Option<i64> = None;
    let mut wake = |t: i64| wake_at = Some(wake_at.map_or(t, |w: i64| w.min(t)));

    account_stops(&cx, &mut st);

    // Marks a deployment healthy the first time one of its tasks is.
    for t in input.tasks.iter().filter(|t| t.desired_running) {
        if cx.healthy(t) {
            if let Some(d) = st.deployments.iter_mut().find(|d| d.id == t.deployment) {
                if !d.ever_healthy {
                    d.ever_healthy = true;
                    // ECS resets the count once a task runs successfully;
                    // from then on health failures count (stage two).
                    d.failed_tasks = 0;
                }
            }
            st.throttle = Default::default();
        } else if t.is_running() && !t.has_health_check {
            wake(t.started_at.unwrap_or(now) + input.healthy_after_ms);
        }
    }

    // Tasks the controller stops whatever the bounds: on lost or gone
    // instances, failing health checks, or everything when deleting.
    let mut doomed: BTreeSet<&str> = BTreeSet::new();
    let mut lost_ids = Vec::new();
    let mut unhealthy_ids = Vec::new();
    for t in input.tasks.iter().filter(|t| t.desired_running) {
        if spec.draining {
            doomed.insert(&t.id);
            stops.push(stop(t, "Service is being deleted."));
        } else if cx.on_lost(t) {
            doomed.insert(&t.id);
            lost_ids.push(t.id.as_str());
            stops.push(stop(
                t,
                "Container instance lost: its agent stopped reporting. The service scheduler replaced this task.",
            ));
        } else if cx.unhealthy(t) {
            // Counted once, when first seen failing.
            if !st.accounted.contains_key(&t.id) {
                if let Some(d) = st.deployments.iter_mut().find(|d| d.id == t.deployment) {
                    d.failed_tasks += 1;
                }
                st.accounted.insert(t.id.clone(), now);
                st.push_event(
                    now,
                    format!(
                        "(service {}) (task {}) failed container health checks.",
                        cx.name, t.id
                    ),
                );
            }
            // A REPLICA service replaces first (plan_replica); a DAEMON task
            // has no room beside it and goes at once.
            if spec.daemon {
                doomed.insert(&t.id);
                unhealthy_ids.push(t.id.as_str());
                stops.push(stop(t, HEALTH_REASON));
            }
        }
    }
    if !lost_ids.is_empty() {
        st.push_event(
            now,
            format!(
                "(service {}) replaced {} tasks on lost container instances: {}.",
                cx.name,
                lost_ids.len(),
                lost_ids
                    .iter()
                    .map(|i| format!("(task {i})"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        );
    }
    if !unhealthy_ids.is_empty() {
        st.push_event(
            now,
            format!(
                "(service {}) has stopped {} running tasks: {} due to failed container health checks.",
                cx.name,
                unhealthy_ids.len(),
                unhealthy_ids
                    .iter()
                    .map(|i| format!("(task {i})"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        );
    }

    if spec.draining {
        let live_left = input
            .tasks
            .iter()
            .any(|t| t.desired_running && !doomed.contains(t.id.as_str()));
        for d in st.deployments.iter_mut() {
            if d.status != DeploymentStatus::Inactive {
                d.status = DeploymentStatus::Inactive;
                d.updated_at = now;
                if matches!(d.outcome, Outcome::InProgress | Outcome::Pending) {
                    d.outcome = Outcome::Stopped;
                    d.outcome_reason = Some("The service was deleted.".into());
                    d.finished_at = Some(now);
                }
            }
        }
        let ids: Vec<&str> = stops.iter().map(|s| s.task_id.as_str()).collect();
        if !ids.is_empty() {
            st.push_event(now, cx.tasks_message("stopped", &ids));
        }
        st.trim_history();
        return Decision {
            state: st,
            starts,
            stops,
            task_definition: None,
            desired_count: None,
            inactive: !live_left,
            wake_at,
        };
    }

    let mut task_definition = None;
    breaker_and_requests(&cx, &mut st, &mut task_definition);

    let live: Vec<&TaskView> = input
        .tasks
        .iter()
        .filter(|t| t.desired_running && !doomed.contains(t.id.as_str()))
        .collect();
    let primary = st.primary().cloned();
    let throttled = st.throttle.until.is_some_and(|u| u > now);
    if let Some(u) = st.throttle.until.filter(|u| *u > now) {
        wake(u);
    }
    let may_start = primary
        .as_ref()
        .is_some_and(|p| p.rollout != Rollout::Failed && p.stop_requested.is_none())
        && !throttled;

    let desired_count;
    let scheduler_stops: Vec<&TaskView>;
    if spec.daemon {
        let (n, s, st_) = plan_daemon(&cx, &live, primary.as_ref(), may_start);
        desired_count = Some(n);
        starts = s;
        scheduler_stops = st_;
    } else {
        let (s, st_, health_stops, stalled) =
            plan_replica(&cx, &live, primary.as_ref(), may_start, &mut st);
        starts = s;
        scheduler_stops = st_;
        if !health_stops.is_empty() {
            let ids: Vec<&str> = health_stops.iter().map(|t| t.id.as_str()).collect();
            st.push_event(now, cx.tasks_message("stopped", &ids));
            for t in &health_stops {
                stops.push(stop(t, HEALTH_REASON));
            }
        }
        desired_count = None;
        if stalled {
            st.push_event(
                now,
                format!(
                    "(service {}) was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again.",
                    cx.name
                ),
            );
        }
    }
    let desired = desired_count.unwrap_or(spec.desired_count);
    if !scheduler_stops.is_empty() {
        let ids: Vec<&str> = scheduler_stops.iter().map(|t| t.id.as_str()).collect();
        st.push_event(now, cx.tasks_message("stopped", &ids));
        let by = primary_id_for_reason(primary.as_ref());
        for t in &scheduler_stops {
            stops.push(stop(
                t,
                &format!("Scaling activity initiated by (deployment {by})"),
            ));
        }
    }

    // Deployments without live tasks go INACTIVE; the primary completes
    // when it alone runs the desired count.
    let stopping: BTreeSet<&str> = stops.iter().map(|s| s.task_id.as_str()).collect();
    let remaining: Vec<&TaskView> = live
        .iter()
        .copied()
        .filter(|t| !stopping.contains(t.id.as_str()))
        .collect();
    let primary_id = primary.as_ref().map(|p| p.id.clone());
    let mut completed_now = None;
    for d in st.deployments.iter_mut() {
        if d.status == DeploymentStatus::Active
            && !remaining.iter().any(|t| t.deployment == d.id)
            && !starts.iter().any(|s| s.deployment == d.id)
        {
            d.status = DeploymentStatus::Inactive;
            d.updated_at = now;
            if d.outcome == Outcome::RollbackInProgress {
                // Finished below when the rollback completes.
            } else if matches!(d.outcome, Outcome::InProgress | Outcome::StopRequested) {
                d.outcome = Outcome::Stopped;
                d.finished_at = Some(now);
            }
        }
    }
    let others_live = remaining
        .iter()
        .any(|t| Some(&t.deployment) != primary_id.as_ref());
    let primary_running = remaining
        .iter()
        .filter(|t| Some(&t.deployment) == primary_id.as_ref())
        .filter(|t| t.is_running() && (!t.has_health_check || t.health == Health::Healthy))
        .count() as u32;
    let primary_live = remaining
        .iter()
        .filter(|t| Some(&t.deployment) == primary_id.as_ref())
        .count() as u32;
    let settled =
        starts.is_empty() && !others_live && primary_running == desired && primary_live == desired;
    if let Some(p) = st.primary_mut() {
        if settled && p.rollout == Rollout::InProgress {
            p.rollout = Rollout::Completed;
            p.rollout_reason = format!("ECS deployment {} completed.", p.id);
            p.outcome = Outcome::Successful;
            p.outcome_reason = None;
            p.finished_at = Some(now);
            p.updated_at = now;
            completed_now = Some(p.id.clone());
        }
    }
    if let Some(id) = completed_now {
        for d in st.deployments.iter_mut() {
            if d.outcome == Outcome::RollbackInProgress
                && d.rollback.as_ref().is_some_and(|r| r.by_deployment == id)
            {
                d.outcome = Outcome::RollbackSuccessful;
                d.finished_at = Some(now);
                d.updated_at = now;
            }
        }
        st.push_event(
            now,
            format!(
                "(service {}) (deployment {id}) deployment completed.",
                cx.name
            ),
        );
    }
    let steady = settled && st.visible().count() == 1;
    if steady && !st.steady {
        st.push_event(
            now,
            format!("(service {}) has reached a steady state.", cx.name),
        );
    }
    st.steady = steady;
    st.trim_history();
    Decision {
        state: st,
        starts,
        stops,
        task_definition,
        desired_count,
        inactive: false,
        wake_at,
    }
}

fn primary_id_for_reason(p: Option<&DeploymentState>) -> String {
    p.map(|p| p.id.clone()).unwrap_or_else(|| "none".into())
}

fn stop(t: &TaskView, reason: &str) -> Stop {
    Stop {
        task_id: t.id.clone(),
        reason: reason.to_string(),
    }
}

/// Counts each newly stopped task once: circuit-breaker failures, the
/// start throttle.
fn account_stops(cx: &Ctx, st: &mut ServiceState) {
    let now = cx.input.now;
    st.accounted.retain(|_, at| now - *at < STOP_MEMORY_MS);
    for t in cx.input.tasks.iter().filter(|t| t.is_stopped()) {
        if st.accounted.contains_key(&t.id) {
            continue;
        }
        if t.stopped_at.is_some_and(|s| now - s >= STOP_MEMORY_MS) {
            continue;
        }
        st.accounted.insert(t.id.clone(), now);
        // A stop someone asked for is not a failure.
        if matches!(
            t.stop_code,
            Some(TaskStopCode::UserInitiated | TaskStopCode::ServiceSchedulerInitiated)
        ) {
            continue;
        }
        let ran_for = match (t.started_at, t.stopped_at) {
            (Some(a), Some(b)) => Some(b - a),
            (Some(a), None) => Some(now - a),
            _ => None,
        };
        let was_healthy = match ran_for {
            None => false,
            Some(_) if t.has_health_check => t.health == Health::Healthy,
            Some(age) => age >= cx.input.healthy_after_ms,
        };
        if t.started_at.is_none() {
            st.throttle.consecutive_start_failures += 1;
            if st.throttle.consecutive_start_failures >= THROTTLE_AFTER {
                let first = st.throttle.until.is_none_or(|u| u <= now)
                    && st.throttle.consecutive_start_failures == THROTTLE_AFTER;
                st.throttle.until =
                    Some(now + throttle_delay(st.throttle.consecutive_start_failures));
                if first {
                    st.push_event(
                        now,
                        format!(
                            "(service {}) is unable to consistently start tasks successfully.",
                            cx.name
                        ),
                    );
                }
            }
        }
        if !was_healthy {
            if let Some(d) = st.deployments.iter_mut().find(|d| d.id == t.deployment) {
                if d.rollout == Rollout::InProgress {
                    d.failed_tasks += 1;
                    d.updated_at = now;
                }
            }
        }
    }
}

/// Trips the circuit breaker and carries out StopServiceDeployment.
fn breaker_and_requests(cx: &Ctx, st: &mut ServiceState, task_definition: &mut Option<String>) {
    let now = cx.input.now;
    let threshold = breaker_threshold(cx.input.spec.desired_count);
    let Some(p) = st.primary().cloned() else {
        return;
    };
    if p.rollout != Rollout::InProgress {
        return;
    }
    let breaker = p.breaker.filter(|b| b.enable);
    let tripped = breaker.is_some() && p.failed_tasks >= threshold;
    let requested = p.stop_requested.clone();
    if !tripped && requested.is_none() {
        return;
    }
    let rollback_wanted = match &requested {
        Some(kind) => kind == "ROLLBACK",
        None => breaker.is_some_and(|b| b.rollback),
    };
    let target = st
        .deployments
        .iter()
        .find(|d| d.id != p.id && d.rollout == Rollout::Completed)
        .cloned();
    let reason = if tripped {
        "ECS deployment circuit breaker: tasks failed to start.".to_string()
    } else if rollback_wanted {
        "Rollback requested by StopServiceDeployment.".to_string()
    } else {
        "Stopped by StopServiceDeployment.".to_string()
    };
    {
        let d = st.primary_mut().expect("primary exists");
        d.rollout = Rollout::Failed;
        d.rollout_reason = reason.clone();
        d.updated_at = now;
        d.stop_requested = None;
    }
    if tripped {
        st.push_event(
            now,
            format!(
                "(service {}) (deployment {}) deployment failed: tasks failed to start.",
                cx.name, p.id
            ),
        );
    }
    match target.filter(|_| rollback_wanted) {
        Some(target) => {
            st.seq += 1;
            let new_id = deployment_id(now, st.seq);
            let rollback_reason = format!(
                "ECS deployment circuit breaker: rolling back to deploymentId {}.",
                target.id
            );
            for d in st.deployments.iter_mut() {
                if d.id == p.id {
                    d.status = DeploymentStatus::Active;
                    d.outcome = Outcome::RollbackInProgress;
                    d.outcome_reason = Some(reason.clone());
                    d.rollback = Some(RollbackInfo {
                        reason: rollback_reason.clone(),
                        started_at: now,
                        to_deployment: target.id.clone(),
                        by_deployment: new_id.clone(),
                    });
                }
            }
            let sources = st.visible().map(|d| d.id.clone()).collect();
            st.deployments.insert(
                0,
                DeploymentState {
                    id: new_id.clone(),
                    status: DeploymentStatus::Primary,
                    rollout: Rollout::InProgress,
                    rollout_reason: rollback_reason.clone(),
                    outcome: Outcome::InProgress,
                    outcome_reason: None,
                    task_definition: target.task_definition.clone(),
                    config: target.config.clone(),
                    created_at: now,
                    updated_at: now,
                    finished_at: None,
                    failed_tasks: 0,
                    ever_healthy: false,
                    breaker: p.breaker,
                    sources,
                    rollback: None,
                    stop_requested: None,
                },
            );
            st.throttle = Default::default();
            st.steady = false;
            *task_definition = Some(target.task_definition.clone());
            st.push_event(
                now,
                format!(
                    "(service {}) (deployment {}) {rollback_reason}",
                    cx.name, new_id
                ),
            );
        }
        None => {
            let d = st.primary_mut().expect("primary exists");
            d.outcome = if rollback_wanted {
                Outcome::RollbackFailed
            } else {
                Outcome::Stopped
            };
            d.outcome_reason = Some(if rollback_wanted {
                format!("{reason} No completed deployment to roll back to.")
            } else {
                reason
            });
            d.finished_at = Some(now);
        }
    }
}

/// REPLICA: start and stop within minimumHealthyPercent/maximumPercent.
/// Returns (starts, stops, stalled).
fn plan_replica<'t>(
    cx: &Ctx,
    live: &[&'t TaskView],
    primary: Option<&DeploymentState>,
    may_start: bool,
    st: &mut ServiceState,
) -> ReplicaPlan<'t> {
    let spec = cx.input.spec;
    let desired = spec.desired_count as i64;
    let max_total = desired * spec.maximum_percent as i64 / 100;
    let min_healthy = (desired * spec.minimum_healthy_percent as i64 + 99) / 100;
    let Some(primary) = primary else {
        return (Vec::new(), Vec::new(), Vec::new(), false);
    };
    let frozen = primary.rollout == Rollout::Failed && primary.stop_requested.is_none();
    // Tasks that will stay: the primary's on ACTIVE instances, passing
    // their health checks. Failing ones are replaced first (ECS since
    // 2023) and stopped below.
    let (keep, obsolete): (Vec<&TaskView>, Vec<&TaskView>) = live
        .iter()
        .copied()
        .partition(|t| t.deployment == primary.id && !cx.on_draining(t));
    let (failing, keep): (Vec<&TaskView>, Vec<&TaskView>) =
        keep.into_iter().partition(|t| cx.unhealthy(t));
    let mut stops: Vec<&TaskView> = Vec::new();

    // Scale-in: surplus primary tasks, never protected ones; the ones not
    // yet useful first, then from the most crowded instance.
    let surplus = keep.len() as i64 - desired;
    let mut keep_left = keep.clone();
    if surplus > 0 {
        let mut per_instance: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &keep {
            *per_instance.entry(t.instance.as_str()).or_default() += 1;
        }
        let mut candidates: Vec<&TaskView> =
            keep.iter().copied().filter(|t| !t.protected).collect();
        candidates.sort_by_key(|t| {
            (
                cx.healthy(t),
                std::cmp::Reverse(per_instance[t.instance.as_str()]),
                std::cmp::Reverse(t.created_at),
            )
        });
        let n = (surplus as usize).min(candidates.len());
        for t in candidates.into_iter().take(n) {
            stops.push(t);
            keep_left.retain(|k| k.id != t.id);
        }
        if (n as i64) < surplus {
            st.push_event(
                cx.input.now,
                format!(
                    "(service {}) was unable to reach steady state because deployment ({}) was unable to scale in. Reason: The number of protected tasks are more than the desired count of tasks.",
                    cx.name, primary.id
                ),
            );
        }
    }

    let live_total = live.len() as i64 - stops.len() as i64;
    let need = (desired - keep_left.len() as i64).max(0);
    let room = (max_total - live_total).max(0);
    let start_n = if may_start && !frozen {
        need.min(room)
    } else {
        0
    };

    // Stop obsolete tasks: the not-yet-healthy ones cost nothing; healthy
    // ones only while the healthy count stays at or above the minimum.
    // After a failure without rollback the old tasks stay.
    let mut obsolete_stops = 0;
    if !frozen {
        // New tasks count once proven healthy; an old task counts while it
        // runs and passes its checks, young or not, since stopping it
        // costs real capacity.
        let counts = |t: &TaskView| {
            cx.healthy(t)
                || (t.deployment != primary.id && t.is_running() && t.health != Health::Unhealthy)
                || (cx.on_draining(t) && t.is_running() && t.health != Health::Unhealthy)
        };
        let mut healthy_total = live
            .iter()
            .filter(|t| counts(t) && !stops.iter().any(|s| s.id == t.id))
            .count() as i64;
        let mut ordered: Vec<&TaskView> =
            obsolete.iter().copied().filter(|t| !t.protected).collect();
        ordered.sort_by_key(|t| (counts(t), std::cmp::Reverse(t.created_at)));
        for t in ordered {
            if counts(t) {
                if healthy_total - 1 < min_healthy {
                    continue;
                }
                healthy_total -= 1;
            }
            stops.push(t);
            obsolete_stops += 1;
        }
    }
    // Failing tasks go once their replacements are healthy; when
    // maximumPercent leaves no room for a replacement, one at a time.
    let mut health_stops = Vec::new();
    let keep_healthy = keep_left.iter().filter(|t| cx.healthy(t)).count() as i64;
    let settling = keep_left.iter().any(|t| !cx.healthy(t));
    if keep_healthy >= desired {
        health_stops = failing.clone();
    } else if start_n == 0 && !settling {
        health_stops.extend(failing.first().copied());
    }
    let mut starts = Vec::new();
    if start_n > 0 {
        starts.push(Start {
            deployment: primary.id.clone(),
            count: start_n as u32,
            instance: None,
        });
    }
    // Stalled: work remains, nothing is in flight, and the bounds forbid
    // both a start and a stop.
    let work_left = need > 0 || !obsolete.is_empty();
    let in_flight = live.iter().any(|t| !cx.healthy(t));
    let stalled = work_left
        && !frozen
        && may_start
        && start_n == 0
        && obsolete_stops == 0
        && stops.is_empty()
        && health_stops.is_empty()
        && !in_flight;
    (starts, stops, health_stops, stalled)
}

/// (starts, scheduler stops, stops for failing health checks, stalled).
type ReplicaPlan<'t> = (Vec<Start>, Vec<&'t TaskView>, Vec<&'t TaskView>, bool);

/// DAEMON: one primary task on every eligible ACTIVE instance.
/// Returns (desired count, starts, stops).
fn plan_daemon<'t>(
    cx: &Ctx,
    live: &[&'t TaskView],
    primary: Option<&DeploymentState>,
    may_start: bool,
) -> (u32, Vec<Start>, Vec<&'t TaskView>) {
    let spec = cx.input.spec;
    let eligible: Vec<&InstanceView> = cx
        .input
        .instances
        .iter()
        .filter(|i| i.state == InstanceState::Active && !i.lost && i.eligible)
        .collect();
    let n = eligible.len() as u32;
    let min_healthy = (n as i64 * spec.minimum_healthy_percent as i64 + 99) / 100;
    let mut healthy_total = live.iter().filter(|t| cx.healthy(t)).count() as i64;
    let mut starts = Vec::new();
    let mut stops: Vec<&TaskView> = Vec::new();
    let Some(primary) = primary else {
        return (n, starts, stops);
    };
    let eligible_set: BTreeSet<&str> = eligible.iter().map(|i| i.arn.as_str()).collect();
    // Tasks on instances that no longer qualify (draining, ineligible).
    for t in live {
        if !eligible_set.contains(t.instance.as_str()) {
            stops.push(t);
        }
    }
    for inst in &eligible {
        let here: Vec<&TaskView> = live
            .iter()
            .copied()
            .filter(|t| t.instance == inst.arn)
            .collect();
        let (mine, old): (Vec<&TaskView>, Vec<&TaskView>) =
            here.into_iter().partition(|t| t.deployment == primary.id);
        // maximumPercent is 100: an old task goes before the new one starts.
        for t in &old {
            if cx.healthy(t) {
                if healthy_total - 1 < min_healthy {
                    continue;
                }
                healthy_total -= 1;
            }
            stops.push(t);
        }
        for extra in mine.iter().skip(1) {
            stops.push(extra);
        }
        if mine.is_empty() && old.is_empty() && may_start && primary.rollout != Rollout::Failed {
            starts.push(Start {
                deployment: primary.id.clone(),
                count: 1,
                instance: Some(inst.arn.clone()),
            });
        }
    }
    (n, starts, stops)
}
