//! The service controller's edge: reads each service's records, asks the
//! pure reconciler (`stevedore_controllers::service::reconcile`) what to
//! do, and does it. Runs in the server process on the controller runtime
//! (`stevedore_ctlrt`), which decides when passes happen.
//!
//! Order of effects per service: stops, then starts, then the service
//! record (CAS). A crash between them is harmless: the next pass derives
//! everything again from task records, and launches are counted from
//! tasks, never from the service record, so nothing is started twice.

use crate::db::{self, Versioned};
use crate::domain::instances::{all_instances, InstanceRecord};
use crate::domain::launch::{
    self, fits_constraints, Launch, LaunchEnv, LaunchError, LaunchRequest, Target,
};
use crate::domain::stop::{self, StopReason};
use crate::domain::task_definitions::resolve as resolve_task_definition;
use crate::domain::tasks::task_id;
use crate::ecs::services::record::{belongs_to, service_group, ServiceRecord};
use crate::ecs::services::RevisionConfig;
use crate::error::ApiResult;
use crate::state::AppState;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use stevedore_api::ecs::*;
use stevedore_api::Timestamp;
use stevedore_controllers::service::{
    reconcile, Decision, Health, Input, InstanceState, InstanceView, ServiceSpec, TaskView,
};
use stevedore_ctlrt::{Action, Context, Reconciler, StoreChanges};
use stevedore_model::arn::Scope;
use stevedore_model::keys;
use stevedore_scheduler::Reason;
use stevedore_store::Store;

/// The service controller on the controller runtime: visits on any ECS
/// change (debounced), at the reconciler's earliest `wake_at`, and at
/// least every second (lost-host detection is a matter of time passing).
pub struct ServiceController {
    state: Arc<AppState>,
}

impl ServiceController {
    pub fn new(state: Arc<AppState>) -> Self {
        ServiceController { state }
    }

    /// What wakes it: any change to ECS records.
    pub fn changes(state: &AppState) -> StoreChanges {
        StoreChanges::new(state.store.clone(), ["/ecs/".to_string()])
    }
}

/// A pass that could not even list the services; per-service failures are
/// logged and retried on the next pass instead.
#[derive(Debug)]
pub struct PassFailed(crate::error::ApiError);

impl std::fmt::Display for PassFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.code, self.0.message)
    }
}

impl Reconciler for ServiceController {
    type Error = PassFailed;

    fn name(&self) -> &'static str {
        "service"
    }

    async fn reconcile(&mut self, rt: &Context) -> Result<Action, PassFailed> {
        let wake_at = pass(&self.state, rt).await.map_err(PassFailed)?;
        Ok(match wake_at {
            Some(w) => {
                let now = Timestamp::now().as_millis();
                Action::requeue(Duration::from_millis((w - now).max(0) as u64))
            }
            None => Action::await_change(),
        })
    }
}

/// One tenant's turn in a pass: the server's state, the tenant's scope and
/// the clock read once for it. Not a caller: the controller acts through
/// the domain layer, which takes exactly these.
struct Tenant<'a> {
    state: &'a AppState,
    scope: Scope,
    now: Timestamp,
}

impl Tenant<'_> {
    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn store(&self) -> &dyn Store {
        self.state.store.as_ref()
    }

    fn launch_env(&self) -> LaunchEnv<'_> {
        LaunchEnv {
            store: self.store(),
            scope: &self.scope,
            now: self.now,
            heartbeats: &self.state.heartbeats,
        }
    }
}

/// One pass over every service that needs a controller. Returns the
/// earliest time any of them asked to be looked at again.
async fn pass(state: &Arc<AppState>, rt: &Context) -> ApiResult<Option<i64>> {
    let index = state
        .store
        .range(&stevedore_store::RangeRequest::prefix(
            keys::controller_services_prefix(),
        ))
        .map_err(crate::error::ApiError::from)?;
    // What the reconciler needs of history: tasks that stopped within its
    // memory (older stops are ignored by it), read from the stopped-task
    // index, so a pass costs live tasks plus one window, not every record.
    let now = Timestamp::now().as_millis();
    let recent = crate::history::stopped_since(
        state.store.as_ref(),
        now - stevedore_controllers::service::STOP_MEMORY_MS,
    )?;
    let mut records_read = 0usize;
    let mut wake: Option<i64> = None;
    // Index keys sort by tenant then cluster, so one cluster's services
    // are consecutive and share one read of its tasks and instances.
    let mut view: Option<(Scope, String, ClusterView)> = None;
    for kv in index.kvs {
        // Each service's writes are complete before the next begins, so
        // this is a write boundary.
        if rt.should_stop() {
            break;
        }
        let Some((scope, cluster, name)) = keys::parse_controller_service(&kv.key) else {
            continue;
        };
        let cx = Tenant {
            state,
            scope: scope.clone(),
            now: Timestamp::now(),
        };
        let fresh = !matches!(&view, Some((s, c, _)) if *s == scope && *c == cluster);
        if fresh {
            let stopped = recent
                .get(&(scope.clone(), cluster.clone()))
                .map_or(&[][..], Vec::as_slice);
            match ClusterView::load(&cx, &cluster, stopped) {
                Ok(v) => {
                    records_read += v.tasks.len();
                    view = Some((scope.clone(), cluster.clone(), v))
                }
                Err(e) => {
                    tracing::warn!(cluster = %cluster, error = %e.message, "cannot read cluster");
                    view = None;
                    continue;
                }
            }
        }
        let Some((_, _, cv)) = &view else {
            continue;
        };
        match reconcile_service(&cx, cv, &cluster, &name, &kv.key).await {
            Ok(Some(w)) => wake = Some(wake.map_or(w, |x| x.min(w))),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(service = %name, cluster = %cluster, error = %e.message, "service reconcile failed");
            }
        }
    }
    use std::sync::atomic::Ordering::Relaxed;
    state.counters.service_passes.fetch_add(1, Relaxed);
    state
        .counters
        .service_task_records_read
        .store(records_read as u64, Relaxed);
    Ok(wake)
}

/// What every service of a cluster reads: its live tasks and recently
/// stopped ones, instances and task protections, as of the start of the cluster's turn in a pass. A
/// service's actions never touch another service's tasks, and placement
/// re-reads instances under compare-and-set, so sharing it is safe.
struct ClusterView {
    tasks: Vec<Versioned<Task>>,
    instances: Vec<Versioned<InstanceRecord>>,
    protections: BTreeMap<String, ProtectedTask>,
}

impl ClusterView {
    fn load(cx: &Tenant<'_>, cluster: &str, stopped: &[String]) -> ApiResult<ClusterView> {
        let scope = cx.scope();
        let protections = db::all_versioned::<ProtectedTask>(
            cx.store(),
            &keys::cluster_children_prefix(scope, cluster, keys::KIND_PROTECTION),
        )?
        .into_iter()
        .filter_map(|v| {
            let arn = v.value.task_arn.clone()?;
            Some((arn.rsplit('/').next()?.to_string(), v.value))
        })
        .collect();
        let mut tasks = crate::live_tasks::live_tasks(cx.store(), scope, cluster)?;
        for id in stopped {
            // Collected since the index was read, or (against the
            // invariant) not STOPPED and so already among the live ones.
            if let Some(t) = db::get::<Task>(cx.store(), &keys::task(scope, cluster, id))? {
                if !crate::live_tasks::is_live(&t.value) {
                    tasks.push(t);
                }
            }
        }
        Ok(ClusterView {
            tasks,
            instances: all_instances(cx.store(), scope, cluster)?,
            protections,
        })
    }
}

fn health(h: Option<&HealthStatus>) -> Health {
    match h {
        Some(HealthStatus::Healthy) => Health::Healthy,
        Some(HealthStatus::Unhealthy) => Health::Unhealthy,
        _ => Health::Unknown,
    }
}

/// Whether any essential container of the definition has a health check.
fn has_health_check(cx: &Tenant<'_>, cache: &mut HashMap<String, bool>, td_arn: &str) -> bool {
    if let Some(v) = cache.get(td_arn) {
        return *v;
    }
    let v = resolve_task_definition(cx.store(), cx.scope(), td_arn)
        .ok()
        .flatten()
        .is_some_and(|(_, td)| {
            td.value
                .definition
                .container_definitions
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|c| c.essential != Some(false) && c.health_check.is_some())
        });
    cache.insert(td_arn.to_string(), v);
    v
}

fn task_view(
    cx: &Tenant<'_>,
    t: &Task,
    protections: &BTreeMap<String, ProtectedTask>,
    checks: &mut HashMap<String, bool>,
) -> TaskView {
    let id = task_id(t).to_string();
    let now = cx.now.as_millis();
    let protected = protections.get(&id).is_some_and(|p| {
        p.protection_enabled == Some(true) && p.expiration_date.is_none_or(|e| e.as_millis() > now)
    });
    TaskView {
        deployment: t.started_by.clone().unwrap_or_default(),
        instance: t.container_instance_arn.clone().unwrap_or_default(),
        last_status: crate::live_tasks::last_status(t),
        desired_running: t.desired_status.as_deref().map(DesiredStatus::from)
            == Some(DesiredStatus::Running),
        started_at: t.started_at.map(|s| s.as_millis()),
        stopped_at: t.stopped_at.map(|s| s.as_millis()),
        created_at: t.created_at.map(|s| s.as_millis()).unwrap_or(0),
        health: health(t.health_status.as_ref()),
        has_health_check: has_health_check(
            cx,
            checks,
            t.task_definition_arn.as_deref().unwrap_or_default(),
        ),
        stop_code: t.stop_code.clone(),
        protected,
        id,
    }
}

async fn reconcile_service(
    cx: &Tenant<'_>,
    cv: &ClusterView,
    cluster: &str,
    name: &str,
    index_key: &str,
) -> ApiResult<Option<i64>> {
    let scope = cx.scope().clone();
    let key = keys::service(&scope, cluster, name);
    let Some(rec) = db::get::<ServiceRecord>(cx.store(), &key)? else {
        db::commit(
            cx.store(),
            vec![],
            vec![stevedore_store::Op::Delete {
                key: index_key.to_string(),
            }],
        )
        .await?;
        return Ok(None);
    };
    if rec.value.service.status.as_deref() == Some("INACTIVE") {
        db::commit(
            cx.store(),
            vec![],
            vec![stevedore_store::Op::Delete {
                key: index_key.to_string(),
            }],
        )
        .await?;
        return Ok(None);
    }
    let svc = &rec.value.service;
    let mut checks = HashMap::new();
    let tasks: Vec<TaskView> = cv
        .tasks
        .iter()
        .filter(|t| belongs_to(&t.value, name))
        .map(|t| task_view(cx, &t.value, &cv.protections, &mut checks))
        .collect();
    let instances = &cv.instances;
    let daemon = svc.scheduling_strategy == Some(SchedulingStrategy::Daemon);
    let config = &cx.state.config;
    let lost_after = config.lost_instance_grace;
    // DAEMON eligibility is judged against the primary deployment's launch.
    let daemon_launch = if daemon {
        rec.value
            .controller
            .primary()
            .and_then(|p| prepare_launch(cx, cluster, svc, p).ok())
    } else {
        None
    };
    let mut views = Vec::new();
    for i in instances {
        let arn = i
            .value
            .instance
            .container_instance_arn
            .clone()
            .unwrap_or_default();
        let state = match i.value.instance.status.as_deref() {
            Some("ACTIVE") => InstanceState::Active,
            Some("DRAINING") => InstanceState::Draining,
            _ => InstanceState::Gone,
        };
        // Silent for the disconnect time plus the grace.
        let lost = cx
            .state
            .heartbeats
            .silent_for(&arn)
            .is_some_and(|d| d >= config.agent_disconnect_after + lost_after);
        let eligible = match &daemon_launch {
            Some(l) if state == InstanceState::Active => {
                fits_constraints(&cx.state.heartbeats, l, &i.value)
            }
            _ => true,
        };
        views.push(InstanceView {
            arn,
            state,
            lost,
            eligible,
        });
    }
    let dc = svc.deployment_configuration.clone().unwrap_or_default();
    let spec = ServiceSpec {
        name: name.to_string(),
        daemon,
        desired_count: svc.desired_count.unwrap_or(0).max(0) as u32,
        minimum_healthy_percent: dc
            .minimum_healthy_percent
            .unwrap_or(if daemon { 0 } else { 100 })
            .max(0) as u32,
        maximum_percent: dc
            .maximum_percent
            .unwrap_or(if daemon { 100 } else { 200 })
            .max(0) as u32,
        grace_period_ms: svc.health_check_grace_period_seconds.unwrap_or(0).max(0) as i64 * 1000,
        draining: svc.status.as_deref() == Some("DRAINING"),
    };
    let now = cx.now.as_millis();
    let mut decision = reconcile(&Input {
        now,
        spec: &spec,
        state: &rec.value.controller,
        tasks: &tasks,
        instances: &views,
        healthy_after_ms: config.task_healthy_after.as_millis() as i64,
    });
    apply_stops(cx, cluster, &decision).await?;
    apply_starts(cx, cluster, &rec.value, &mut decision).await?;
    write_record(cx, &key, index_key, rec, &decision).await?;
    Ok(decision.wake_at)
}

async fn apply_stops(cx: &Tenant<'_>, cluster: &str, d: &Decision) -> ApiResult<()> {
    for s in &d.stops {
        let why = StopReason {
            code: TaskStopCode::ServiceSchedulerInitiated,
            reason: s.reason.clone(),
        };
        stop::stop_task(cx.store(), cx.scope(), cluster, &s.task_id, why, cx.now).await?;
    }
    Ok(())
}

/// ECS's wording for the closest instance that could not take the task.
fn placement_message(service: &str, failures: &[Failure]) -> String {
    let base = format!(
        "(service {service}) was unable to place a task because no container instance met all of its requirements."
    );
    let Some(f) = failures.first() else {
        return base;
    };
    let id = f
        .arn
        .as_deref()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or_default();
    let reason = f.reason.as_deref().unwrap_or_default();
    let why = match Reason::parse(reason) {
        Some(Reason::ResourceCpu) => "has insufficient CPU units available.".to_string(),
        Some(Reason::ResourceMemory) => "has insufficient memory available.".to_string(),
        Some(Reason::ResourcePorts | Reason::ResourcePortsUdp) => {
            "is already using a port required by your task.".to_string()
        }
        // AGENT, the constraints, and anything else by its text.
        _ => format!("encountered error \"{reason}\"."),
    };
    if id.is_empty() {
        format!("{base} Reason: {reason}")
    } else {
        format!("{base} The closest matching container-instance {id} {why}")
    }
}

fn is_constraint_failure(f: &Failure) -> bool {
    matches!(
        f.reason.as_deref().and_then(Reason::parse),
        Some(Reason::Attribute | Reason::MemberOf | Reason::DistinctInstance)
    )
}

/// Builds the launch for a deployment: the service's placement and tags,
/// the deployment's task definition and revision settings. A deployment
/// keeps its revision even if it was deregistered since, as ECS does.
fn prepare_launch(
    cx: &Tenant<'_>,
    cluster: &str,
    svc: &Service,
    deployment: &stevedore_controllers::state::DeploymentState,
) -> ApiResult<Launch> {
    let rc = RevisionConfig::of(deployment);
    let name = svc.service_name.clone().unwrap_or_default();
    let mut tags = Vec::new();
    let mut propagate = svc.propagate_tags.clone();
    if propagate == Some(PropagateTags::Service) {
        tags = svc.tags.clone().unwrap_or_default();
        propagate = None;
    }
    launch::prepare(
        &cx.launch_env(),
        LaunchRequest {
            allow_inactive_task_definition: true,
            launch_type: rc.launch_type,
            capacity_provider_strategy: rc.capacity_provider_strategy,
            group: Some(service_group(&name)),
            started_by: Some(deployment.id.clone()),
            tags,
            enable_ecs_managed_tags: svc.enable_ecs_managed_tags == Some(true),
            propagate_tags: propagate,
            network_configuration: rc.network_configuration,
            placement_strategy: svc.placement_strategy.clone().unwrap_or_default(),
            placement_constraints: svc.placement_constraints.clone().unwrap_or_default(),
            // Set per start in `apply_starts`.
            ..LaunchRequest::new(
                Some(cluster.to_string()),
                deployment.task_definition.clone(),
                Target::Cluster {
                    count: 0,
                    client_token: None,
                },
            )
        },
    )
}

async fn apply_starts(
    cx: &Tenant<'_>,
    cluster: &str,
    rec: &ServiceRecord,
    d: &mut Decision,
) -> ApiResult<()> {
    let name = rec.name().to_string();
    let now = cx.now.as_millis();
    let svc = &rec.service;
    let env = cx.launch_env();
    let mut started: Vec<String> = Vec::new();
    let mut failures: Vec<Failure> = Vec::new();
    let mut errors: Vec<LaunchError> = Vec::new();
    // DAEMON starts come one per instance; validate each deployment once.
    let mut launches: HashMap<String, ApiResult<Launch>> = HashMap::new();
    for s in d.starts.clone() {
        let Some(dep) = d.state.deployment(&s.deployment) else {
            continue;
        };
        let launch = launches
            .entry(s.deployment.clone())
            .or_insert_with(|| prepare_launch(cx, cluster, svc, dep));
        let l = match launch {
            Ok(l) => l,
            Err(e) => {
                errors.push(LaunchError::Failed(e.clone()));
                continue;
            }
        };
        l.target = match s.instance.clone() {
            Some(arn) => Target::EachInstance(vec![arn]),
            None => Target::Cluster {
                count: s.count as usize,
                client_token: None,
            },
        };
        match launch::launch(&env, l).await {
            Ok(out) => {
                started.extend(out.tasks.iter().map(|t| task_id(t).to_string()));
                // A DAEMON launch names one instance that eligibility
                // already vetted; a constraint refusal there is a race
                // with an attribute change, not something to report.
                let daemon = s.instance.is_some();
                failures.extend(
                    out.failures
                        .into_iter()
                        .filter(|f| !(daemon && is_constraint_failure(f))),
                );
            }
            Err(e) => errors.push(e),
        }
    }
    if !started.is_empty() {
        let list: Vec<String> = started.iter().map(|i| format!("(task {i})")).collect();
        d.state.push_event(
            now,
            format!(
                "(service {name}) has started {} tasks: {}.",
                started.len(),
                list.join(" ")
            ),
        );
        d.state.steady = false;
    }
    if !failures.is_empty() {
        d.state.push_event(now, placement_message(&name, &failures));
    }
    for e in errors {
        let msg = match e {
            LaunchError::NoContainerInstances => format!(
                "(service {name}) was unable to place a task because no container instance met all of its requirements. Reason: {e}"
            ),
            LaunchError::Failed(e) => {
                format!("(service {name}) was unable to place a task. Reason: {}", e.message)
            }
        };
        d.state.push_event(now, msg);
    }
    Ok(())
}

async fn write_record(
    cx: &Tenant<'_>,
    key: &str,
    index_key: &str,
    rec: Versioned<ServiceRecord>,
    d: &Decision,
) -> ApiResult<()> {
    let mut next = rec.value.clone();
    next.controller = d.state.clone();
    if let Some(td) = &d.task_definition {
        next.service.task_definition = Some(td.clone());
    }
    if let Some(n) = d.desired_count {
        next.service.desired_count = Some(n as i32);
    }
    let mut ops = Vec::new();
    if d.inactive {
        next.service.status = Some("INACTIVE".into());
        next.service.desired_count = Some(0);
        ops.push(stevedore_store::Op::Delete {
            key: index_key.to_string(),
        });
    }
    if db::encode(&next) == db::encode(&rec.value) {
        return Ok(());
    }
    ops.push(db::put(key, &next));
    // A lost race (UpdateService meanwhile) is fine: the next pass redoes it.
    db::commit(cx.store(), vec![db::unchanged(key, rec.mod_revision)], ops).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(arn: Option<&str>, reason: Reason) -> Failure {
        Failure {
            arn: arn.map(str::to_string),
            reason: Some(reason.as_str().to_string()),
            detail: None,
        }
    }

    #[test]
    fn placement_messages_name_the_closest_instance() {
        let base = "(service web) was unable to place a task because no container instance met all of its requirements.";
        let arn = Some("arn:aws:ecs:us-east-1:1:container-instance/c/abc");
        let msg = |r| placement_message("web", &[failure(arn, r)]);
        assert_eq!(placement_message("web", &[]), base);
        assert_eq!(
            msg(Reason::ResourceCpu),
            format!("{base} The closest matching container-instance abc has insufficient CPU units available.")
        );
        assert_eq!(
            msg(Reason::ResourceMemory),
            format!("{base} The closest matching container-instance abc has insufficient memory available.")
        );
        for r in [Reason::ResourcePorts, Reason::ResourcePortsUdp] {
            assert_eq!(
                msg(r),
                format!("{base} The closest matching container-instance abc is already using a port required by your task.")
            );
        }
        assert_eq!(
            msg(Reason::Agent),
            format!(
                "{base} The closest matching container-instance abc encountered error \"AGENT\"."
            )
        );
        assert_eq!(
            msg(Reason::MemberOf),
            format!("{base} The closest matching container-instance abc encountered error \"MemberOf placement constraint unsatisfied.\".")
        );
        assert_eq!(
            placement_message("web", &[failure(None, Reason::NoContainerInstances)]),
            format!("{base} Reason: No Container Instances were found in your cluster.")
        );
    }

    #[test]
    fn constraint_failures_are_told_by_reason() {
        for r in Reason::ALL {
            let constraint = matches!(
                r,
                Reason::Attribute | Reason::MemberOf | Reason::DistinctInstance
            );
            assert_eq!(
                is_constraint_failure(&failure(Some("a"), r)),
                constraint,
                "{r}"
            );
        }
        assert!(!is_constraint_failure(&Failure::default()));
    }
}
