//! The task engine: pure decisions, no IO.
//!
//! [`Engine`] holds one [`TaskRecord`] per task the agent knows. Inputs are
//! applied as they arrive — the server's assigned task set
//! ([`Engine::apply_poll`]), what Docker says about containers
//! ([`Engine::apply_state`], [`Engine::apply_resync`]) and the results of
//! the actions it asked for ([`Engine::apply_outcome`]) — and
//! [`Engine::step`] answers with the next [`Action`]s, marking them in
//! flight so nothing is done twice. The caller (see `agent.rs`) executes
//! actions, writes the checkpoint before executing any of them, and sends
//! [`Engine::build_report`] to the server. Time is always passed in.

use crate::logs::{AwsLogsConfig, ShipJob};
use crate::spec::{self, Condition, NeededVolume, NetMode, SpecContext, TaskPlan};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use stevedore_api::agent::{
    AssignedTask, ObservedTask, PollTasksResponse, ReportTaskStatesRequest, TaskStatus,
};
use stevedore_api::ecs::{
    Attachment, Container, HealthStatus, KeyValuePair, NetworkBinding, NetworkInterface,
    TaskStopCode, TransportProtocol,
};
use stevedore_api::Timestamp;
use stevedore_runtime::{
    labels, ContainerSpec, ContainerState, Health, Protocol, PullBehavior, Status,
};

pub const REASON_ESSENTIAL: &str = "Essential container in task exited";
pub const REASON_UNASSIGNED: &str = "Task is no longer assigned to this container instance";
pub const REASON_OOM: &str = "OutOfMemoryError: Container killed due to memory usage";
/// ECS's exit code for a container whose dependency can never be met.
pub const DEPENDENCY_EXIT_CODE: i32 = 143;
pub const HEALTH_HEALTHY: &str = "HEALTHY";
pub const HEALTH_UNHEALTHY: &str = "UNHEALTHY";
pub const HEALTH_UNKNOWN: &str = "UNKNOWN";
/// Delay before retrying a failed stop or remove.
const RETRY_STOP: Duration = Duration::from_secs(5);
const RETRY_REMOVE: Duration = Duration::from_secs(60);
/// The checkpoint format this build writes.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// A container's state as the agent tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CStatus {
    /// Not created yet (or creation in flight).
    Pending,
    /// Exists, never started.
    Created,
    Running,
    /// Exited, failed, or never to run. Final.
    Stopped,
}

/// An operation in flight on a container (memory only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Launch,
    Stop,
    Remove,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecord {
    /// ECS container name (`~internal~ecs~pause` for the pause container).
    pub name: String,
    /// Docker name, fixed before the container is created.
    pub docker_name: String,
    pub image: String,
    pub essential: bool,
    #[serde(default)]
    pub depends_on: Vec<(String, Condition)>,
    #[serde(default)]
    pub start_timeout_ms: Option<u64>,
    pub stop_timeout_ms: u64,
    pub status: CStatus,
    #[serde(default)]
    pub runtime_id: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    #[serde(default)]
    pub bindings: Vec<NetworkBinding>,
    /// The task IP (pause container only).
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub image_digest: Option<String>,
    /// Reported sizes (post-override), as ECS reports them.
    #[serde(default)]
    pub cpu: i64,
    #[serde(default)]
    pub memory: Option<i64>,
    #[serde(default)]
    pub memory_reservation: Option<i64>,
    /// The definition has a `healthCheck` (Docker runs it).
    #[serde(default)]
    pub health_check: bool,
    /// ECS container healthStatus: HEALTHY, UNHEALTHY or UNKNOWN (only
    /// with a health check).
    #[serde(default)]
    pub health: Option<String>,
    /// `awslogs`: the agent ships this container's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awslogs: Option<AwsLogsConfig>,
    /// The timestamp (ns since the epoch) of the last line delivered; a
    /// restarted agent resumes after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipped_until_ns: Option<u64>,
    /// The container's output is exhausted and shipped (or given up).
    #[serde(default)]
    pub logs_drained: bool,
    #[serde(skip)]
    pub op: Option<Op>,
    #[serde(skip)]
    pub not_before: Option<Timestamp>,
    /// Engine generation at which `runtime_id` became known (memory only;
    /// a resync listed before that cannot prove the container gone).
    #[serde(skip)]
    pub known_gen: u64,
}

impl ContainerRecord {
    pub fn has_started(&self) -> bool {
        self.started_at.is_some() || self.status == CStatus::Running
    }
    fn stop_timeout(&self) -> Duration {
        Duration::from_millis(self.stop_timeout_ms)
    }
    /// The container's output still has to be shipped before the task
    /// may report STOPPED.
    pub fn logs_pending(&self) -> bool {
        self.awslogs.is_some()
            && !self.logs_drained
            && self.runtime_id.is_some()
            && self.has_started()
    }
}

/// The image pull of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PullState {
    NotStarted,
    InFlight,
    Done,
}

/// Why the agent is stopping a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopInfo {
    pub code: Option<TaskStopCode>,
    pub reason: Option<String>,
}

/// Everything the agent knows of one task; the unit of the checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRecord {
    /// The latest assignment (definition, overrides, desired status).
    pub assigned: AssignedTask,
    pub task_id: String,
    #[serde(default)]
    pub network: Option<NetMode>,
    pub containers: Vec<ContainerRecord>,
    #[serde(default)]
    pub pause: Option<ContainerRecord>,
    pub pull: PullState,
    #[serde(default)]
    pub stop: Option<StopInfo>,
    #[serde(default)]
    pub pull_started_at: Option<Timestamp>,
    #[serde(default)]
    pub pull_stopped_at: Option<Timestamp>,
    /// When the task reached RUNNING.
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub execution_stopped_at: Option<Timestamp>,
    /// When the task reached STOPPED (all containers stopped).
    #[serde(default)]
    pub stopped_at: Option<Timestamp>,
    /// Containers removed after the cleanup delay.
    #[serde(default)]
    pub removed: bool,
    /// Counts observable changes (memory only).
    #[serde(skip)]
    pub version: u64,
    /// The version the server has accepted (memory only: after a restart
    /// everything is reported again).
    #[serde(skip)]
    pub reported_version: u64,
    /// In the latest poll response (memory only).
    #[serde(skip, default = "yes")]
    pub assigned_now: bool,
}

fn yes() -> bool {
    true
}

impl TaskRecord {
    pub fn is_stopped(&self) -> bool {
        self.stopped_at.is_some()
    }

    fn all(&self) -> impl Iterator<Item = &ContainerRecord> {
        self.containers.iter().chain(self.pause.iter())
    }

    fn all_mut(&mut self) -> impl Iterator<Item = &mut ContainerRecord> {
        self.containers.iter_mut().chain(self.pause.iter_mut())
    }

    fn container_mut(&mut self, name: &str) -> Option<&mut ContainerRecord> {
        self.all_mut().find(|c| c.name == name)
    }

    fn any_op(&self) -> bool {
        self.all().any(|c| c.op.is_some())
    }

    /// ECS task lastStatus.
    pub fn last_status(&self) -> TaskStatus {
        if self.is_stopped() {
            TaskStatus::Stopped
        } else if self.stop.is_some() {
            let app_active = self.containers.iter().any(|c| c.status != CStatus::Stopped);
            if app_active || self.pause.is_none() {
                TaskStatus::Stopping
            } else {
                TaskStatus::Deprovisioning
            }
        } else if self.started_at.is_some() {
            TaskStatus::Running
        } else {
            TaskStatus::Pending
        }
    }
}

/// On-disk state: `DATA_DIR/checkpoint.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub format: u32,
    pub container_instance_arn: String,
    /// The last ReportTaskStates sequence number used.
    pub seq: u64,
    pub tasks: Vec<TaskRecord>,
}

/// Work for the IO side.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Make the task's images available (in order; the first failure fails
    /// the task).
    Pull {
        task_arn: String,
        images: Vec<String>,
        behavior: PullBehavior,
    },
    /// Create (unless `existing_id`) and start a container. For the pause
    /// container, `network` is ensured first.
    Launch {
        task_arn: String,
        container: String,
        spec: Box<ContainerSpec>,
        existing_id: Option<String>,
        network: Option<String>,
        /// Docker volumes to ensure first.
        volumes: Vec<NeededVolume>,
    },
    /// `docker stop` with the timeout, then inspect.
    Stop {
        task_arn: String,
        container: String,
        id: String,
        timeout: Duration,
    },
    /// Remove the task's containers, then its task-scoped volumes
    /// (cleanup).
    Remove {
        task_arn: String,
        ids: Vec<String>,
        volumes: Vec<String>,
    },
}

/// The result of an [`Action`].
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `Ok`: digest per image, when known.
    Pulled {
        task_arn: String,
        result: Result<Vec<Option<String>>, String>,
    },
    /// The container exists (created, or found under its name); a
    /// `Launched` follows.
    Created {
        task_arn: String,
        container: String,
        id: String,
    },
    Launched {
        task_arn: String,
        container: String,
        /// `Ok`: the state after start. `Err`: the reason, plus the state
        /// if the container exists.
        result: Result<ContainerState, (String, Option<ContainerState>)>,
    },
    Stopped {
        task_arn: String,
        container: String,
        /// `Ok(None)`: the container is gone.
        result: Result<Option<ContainerState>, String>,
    },
    Removed {
        task_arn: String,
        result: Result<(), String>,
    },
}

/// Engine settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    pub ctx: SpecContext,
    pub pull_behavior: PullBehavior,
    pub cleanup_wait: Duration,
}

pub struct Engine {
    cfg: EngineConfig,
    tasks: BTreeMap<String, TaskRecord>,
    seq: u64,
    dirty: bool,
    gen: u64,
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    Timestamp::from_millis(t.as_millis().saturating_add(d.as_millis() as i64))
}

fn ts(t: Option<std::time::SystemTime>) -> Option<Timestamp> {
    t.map(Timestamp::from)
}

impl Engine {
    pub fn new(cfg: EngineConfig, checkpoint: Option<Checkpoint>) -> Self {
        let mut e = Engine {
            cfg,
            tasks: BTreeMap::new(),
            seq: 0,
            dirty: false,
            gen: 1,
        };
        if let Some(cp) = checkpoint {
            e.seq = cp.seq;
            for mut t in cp.tasks {
                // An in-flight pull died with the old process: pull again
                // (nothing was created yet).
                if t.pull == PullState::InFlight {
                    t.pull = PullState::NotStarted;
                }
                // Nothing is in flight in a new process.
                for c in t.all_mut() {
                    c.op = None;
                    c.not_before = None;
                    c.known_gen = 0;
                }
                // Everything is reported once after a restart.
                t.version = 1;
                t.reported_version = 0;
                t.assigned_now = true;
                e.tasks.insert(t.assigned.task_arn.clone(), t);
            }
        }
        e
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn tasks(&self) -> impl Iterator<Item = &TaskRecord> {
        self.tasks.values()
    }

    pub fn task(&self, arn: &str) -> Option<&TaskRecord> {
        self.tasks.get(arn)
    }

    /// A generation counter for resyncs: take it when a `list` starts.
    pub fn generation(&self) -> u64 {
        self.gen
    }

    /// Whether the checkpoint must be written; clears the flag.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            format: CHECKPOINT_FORMAT,
            container_instance_arn: self.cfg.ctx.instance_arn.clone(),
            seq: self.seq,
            tasks: self.tasks.values().cloned().collect(),
        }
    }

    fn changed(rec: &mut TaskRecord, dirty: &mut bool) {
        rec.version += 1;
        *dirty = true;
    }

    // ------------------------------------------------------------------
    // Inputs

    /// The server's assigned task set.
    pub fn apply_poll(&mut self, resp: &PollTasksResponse, now: Timestamp) {
        self.gen += 1;
        for t in self.tasks.values_mut() {
            t.assigned_now = false;
        }
        for a in &resp.tasks {
            match self.tasks.get_mut(&a.task_arn) {
                Some(rec) => {
                    rec.assigned_now = true;
                    if rec.assigned.desired_status != a.desired_status
                        || rec.assigned.stop_code != a.stop_code
                        || rec.assigned.stopped_reason != a.stopped_reason
                    {
                        rec.assigned.desired_status = a.desired_status.clone();
                        rec.assigned.stop_code = a.stop_code.clone();
                        rec.assigned.stopped_reason = a.stopped_reason.clone();
                        self.dirty = true;
                    }
                }
                None => {
                    let rec = self.new_record(a, now);
                    self.dirty = true;
                    self.tasks.insert(a.task_arn.clone(), rec);
                }
            }
        }
        // Not assigned any more: stop what still runs; forget what is
        // stopped, reported and cleaned up.
        let mut forget = Vec::new();
        for (arn, rec) in self.tasks.iter_mut() {
            if rec.assigned_now {
                continue;
            }
            if !rec.is_stopped() && rec.stop.is_none() {
                rec.stop = Some(StopInfo {
                    code: None,
                    reason: Some(REASON_UNASSIGNED.to_string()),
                });
                Self::changed(rec, &mut self.dirty);
            }
            let cleaned = rec.removed || rec.all().all(|c| c.runtime_id.is_none());
            if rec.is_stopped() && cleaned && !rec.any_op() && rec.reported_version >= rec.version {
                forget.push(arn.clone());
            }
        }
        for arn in forget {
            self.tasks.remove(&arn);
            self.dirty = true;
        }
    }

    fn new_record(&self, a: &AssignedTask, now: Timestamp) -> TaskRecord {
        let mut rec = TaskRecord {
            assigned: a.clone(),
            task_id: spec::task_id(&a.task_arn),
            network: None,
            containers: Vec::new(),
            pause: None,
            pull: PullState::NotStarted,
            stop: None,
            pull_started_at: None,
            pull_stopped_at: None,
            started_at: None,
            execution_stopped_at: None,
            stopped_at: None,
            removed: false,
            version: 1,
            reported_version: 0,
            assigned_now: true,
        };
        match spec::plan_task(&self.cfg.ctx, a) {
            Ok(plan) => {
                rec.network = Some(plan.network);
                rec.pause = plan.pause.as_ref().map(|p| ContainerRecord {
                    name: spec::PAUSE_CONTAINER_NAME.to_string(),
                    docker_name: p.name.clone(),
                    image: p.image.clone(),
                    essential: true,
                    depends_on: Vec::new(),
                    start_timeout_ms: None,
                    stop_timeout_ms: self.cfg.ctx.default_stop_timeout.as_millis() as u64,
                    ..blank_container()
                });
                rec.containers = plan
                    .containers
                    .iter()
                    .map(|c| ContainerRecord {
                        bindings: host_mode_bindings(&plan, &c.name),
                        name: c.name.clone(),
                        docker_name: c.spec.name.clone(),
                        image: c.spec.image.clone(),
                        essential: c.essential,
                        depends_on: c.depends_on.clone(),
                        start_timeout_ms: c.start_timeout.map(|d| d.as_millis() as u64),
                        stop_timeout_ms: c.stop_timeout.as_millis() as u64,
                        cpu: c.cpu,
                        memory: c.memory,
                        memory_reservation: c.memory_reservation,
                        health_check: c.health_check,
                        health: c.health_check.then(|| HEALTH_UNKNOWN.to_string()),
                        awslogs: c.awslogs.clone(),
                        ..blank_container()
                    })
                    .collect();
            }
            Err(e) => {
                // The task cannot run here: it stops at once, each
                // container carrying the reason.
                let reason = e.to_string();
                rec.containers = a
                    .task_definition
                    .container_definitions
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .map(|c| ContainerRecord {
                        name: c.name.clone().unwrap_or_default(),
                        image: c.image.clone().unwrap_or_default(),
                        essential: c.essential.unwrap_or(true),
                        status: CStatus::Stopped,
                        reason: Some(reason.clone()),
                        ..blank_container()
                    })
                    .collect();
                rec.pull = PullState::Done;
                rec.stop = Some(StopInfo {
                    code: Some(TaskStopCode::TaskFailedToStart),
                    reason: Some(reason),
                });
                rec.execution_stopped_at = Some(now);
            }
        }
        rec
    }

    /// What Docker says about one of this instance's containers (from an
    /// event's inspect, a list, or an action). Matched by id, else by the
    /// task and container labels. Returns false if it is no container of a
    /// known task.
    pub fn apply_state(&mut self, state: &ContainerState, now: Timestamp) -> bool {
        self.gen += 1;
        let gen = self.gen;
        let found = self.tasks.iter_mut().find_map(|(arn, t)| {
            let by_id = t
                .all()
                .position(|c| c.runtime_id.as_deref() == Some(state.id.as_str()));
            let idx = by_id.or_else(|| {
                if state.labels.get(labels::TASK) != Some(arn) {
                    return None;
                }
                let name = state.labels.get(labels::CONTAINER)?;
                t.all()
                    .position(|c| &c.name == name && c.runtime_id.is_none())
            })?;
            Some((t, idx))
        });
        let Some((rec, idx)) = found else {
            return false;
        };
        let network = rec.network;
        let c = rec.all_mut().nth(idx).expect("index from position");
        let _ = now;
        if observe(c, state, network, gen) {
            Self::changed(rec, &mut self.dirty);
        }
        true
    }

    /// A container id Docker no longer has (destroy event).
    pub fn apply_gone(&mut self, id: &str, now: Timestamp) {
        for rec in self.tasks.values_mut() {
            let mut changed = false;
            for c in rec.all_mut() {
                if c.runtime_id.as_deref() == Some(id) && c.op.is_none() {
                    changed |= mark_gone(c, now);
                }
            }
            if changed {
                Self::changed(rec, &mut self.dirty);
            }
        }
    }

    /// A full `list` of this instance's containers, taken when the engine's
    /// generation was `gen`. Anything known before then and missing from the
    /// list is gone.
    pub fn apply_resync(&mut self, states: &[ContainerState], gen: u64, now: Timestamp) {
        for s in states {
            self.apply_state(s, now);
        }
        let present: std::collections::BTreeSet<&str> =
            states.iter().map(|s| s.id.as_str()).collect();
        for rec in self.tasks.values_mut() {
            if rec.removed {
                continue;
            }
            let mut changed = false;
            for c in rec.all_mut() {
                let Some(id) = c.runtime_id.as_deref() else {
                    continue;
                };
                if c.op.is_none() && c.known_gen < gen && !present.contains(id) {
                    changed |= mark_gone(c, now);
                }
            }
            if changed {
                Self::changed(rec, &mut self.dirty);
            }
        }
    }

    pub fn apply_outcome(&mut self, outcome: Outcome, now: Timestamp) {
        self.gen += 1;
        let gen = self.gen;
        let arn = match &outcome {
            Outcome::Pulled { task_arn, .. }
            | Outcome::Created { task_arn, .. }
            | Outcome::Launched { task_arn, .. }
            | Outcome::Stopped { task_arn, .. }
            | Outcome::Removed { task_arn, .. } => task_arn.clone(),
        };
        let Some(rec) = self.tasks.get_mut(&arn) else {
            return;
        };
        let network = rec.network;
        match outcome {
            Outcome::Pulled { result, .. } => {
                if rec.pull != PullState::InFlight {
                    return;
                }
                rec.pull = PullState::Done;
                rec.pull_stopped_at = Some(now);
                match result {
                    Ok(digests) => {
                        // One digest per distinct image, in first-use order.
                        let mut images: Vec<String> = Vec::new();
                        for c in &rec.containers {
                            if !images.contains(&c.image) {
                                images.push(c.image.clone());
                            }
                        }
                        for c in rec.containers.iter_mut() {
                            if let Some(i) = images.iter().position(|x| *x == c.image) {
                                c.image_digest = digests.get(i).cloned().flatten();
                            }
                        }
                    }
                    Err(reason) => {
                        if rec.stop.is_none() {
                            rec.stop = Some(StopInfo {
                                code: Some(TaskStopCode::TaskFailedToStart),
                                reason: Some(reason.clone()),
                            });
                            rec.execution_stopped_at = Some(now);
                        }
                        for c in rec.all_mut() {
                            if c.status == CStatus::Pending && c.op.is_none() {
                                c.status = CStatus::Stopped;
                                c.reason = Some(reason.clone());
                            }
                        }
                    }
                }
            }
            Outcome::Created { container, id, .. } => {
                if let Some(c) = rec.container_mut(&container) {
                    if c.runtime_id.as_deref() != Some(id.as_str()) {
                        c.runtime_id = Some(id);
                        c.known_gen = gen;
                    }
                    if c.status == CStatus::Pending {
                        c.status = CStatus::Created;
                    }
                }
            }
            Outcome::Launched {
                container, result, ..
            } => {
                let Some(c) = rec.container_mut(&container) else {
                    return;
                };
                c.op = None;
                match result {
                    Ok(state) => {
                        observe(c, &state, network, gen);
                    }
                    Err((reason, state)) => {
                        if let Some(state) = &state {
                            observe(c, state, network, gen);
                        }
                        if c.status != CStatus::Stopped && c.status != CStatus::Running {
                            c.status = CStatus::Stopped;
                        }
                        if c.status == CStatus::Stopped && c.reason.is_none() {
                            c.reason = Some(reason);
                        }
                    }
                }
            }
            Outcome::Stopped {
                container, result, ..
            } => {
                let Some(c) = rec.container_mut(&container) else {
                    return;
                };
                c.op = None;
                match result {
                    Ok(Some(state)) => {
                        observe(c, &state, network, gen);
                        if c.status != CStatus::Stopped {
                            // Docker says it still runs: try again later.
                            c.not_before = Some(add(now, RETRY_STOP));
                        }
                    }
                    Ok(None) => {
                        mark_gone(c, now);
                    }
                    Err(reason) => {
                        tracing::warn!(container = %c.docker_name, %reason, "cannot stop container; will retry");
                        c.not_before = Some(add(now, RETRY_STOP));
                    }
                }
            }
            Outcome::Removed { result, .. } => {
                for c in rec.all_mut() {
                    if c.op == Some(Op::Remove) {
                        c.op = None;
                    }
                }
                match result {
                    Ok(()) => rec.removed = true,
                    Err(reason) => {
                        tracing::warn!(task = %arn, %reason, "cannot remove the task's containers; will retry");
                        for c in rec.all_mut() {
                            c.not_before = Some(add(now, RETRY_REMOVE));
                        }
                    }
                }
                self.dirty = true;
                return;
            }
        }
        Self::changed(rec, &mut self.dirty);
    }

    // ------------------------------------------------------------------
    // Decisions

    /// Advances every task as far as it can go without IO and returns the
    /// IO to do. Call after applying inputs; write the checkpoint (if
    /// [`Engine::take_dirty`]) before executing the actions.
    pub fn step(&mut self, now: Timestamp) -> Vec<Action> {
        let mut actions = Vec::new();
        let cfg = &self.cfg;
        for rec in self.tasks.values_mut() {
            for c in rec.all_mut() {
                if c.not_before.is_some_and(|t| now >= t) {
                    c.not_before = None;
                }
            }
            let before = (rec.last_status(), rec.version);
            let mut changed = false;
            // Settle the local transitions first, then emit actions.
            for _ in 0..4 {
                if !settle(rec, now) {
                    break;
                }
                changed = true;
            }
            plan_actions(cfg, rec, now, &mut actions, &mut changed);
            if changed || rec.last_status() != before.0 {
                Self::changed(rec, &mut self.dirty);
            }
        }
        actions
    }

    /// The awslogs containers whose output must be shipped now (started,
    /// not drained); the caller runs one shipper per container id.
    pub fn log_shippers(&self) -> Vec<ShipJob> {
        let mut out = Vec::new();
        for rec in self.tasks.values() {
            for c in &rec.containers {
                if !c.logs_pending() {
                    continue;
                }
                if let (Some(cfg), Some(id)) = (&c.awslogs, &c.runtime_id) {
                    out.push(ShipJob {
                        task_arn: rec.assigned.task_arn.clone(),
                        task_id: rec.task_id.clone(),
                        container: c.name.clone(),
                        container_id: id.clone(),
                        config: cfg.clone(),
                        since_ns: c.shipped_until_ns,
                    });
                }
            }
        }
        out
    }

    /// A shipper delivered lines up to `until_ns` (checkpointed).
    pub fn apply_logs_shipped(&mut self, task_arn: &str, container: &str, until_ns: u64) {
        if let Some(c) = self
            .tasks
            .get_mut(task_arn)
            .and_then(|t| t.container_mut(container))
        {
            if c.shipped_until_ns.is_none_or(|u| u < until_ns) {
                c.shipped_until_ns = Some(until_ns);
                self.dirty = true;
            }
        }
    }

    /// A shipper finished: the output is exhausted; `error` when some of it
    /// could not be delivered (noted in the container's reason).
    pub fn apply_logs_drained(
        &mut self,
        task_arn: &str,
        container: &str,
        container_id: &str,
        error: Option<String>,
    ) {
        let Some(rec) = self.tasks.get_mut(task_arn) else {
            return;
        };
        let Some(c) = rec.container_mut(container) else {
            return;
        };
        if c.runtime_id.as_deref() != Some(container_id) || c.logs_drained {
            return;
        }
        c.logs_drained = true;
        if let Some(e) = error {
            c.reason = Some(match c.reason.take() {
                Some(r) => format!("{r}; {e}"),
                None => e,
            });
        }
        Self::changed(rec, &mut self.dirty);
    }

    /// The earliest time [`Engine::step`] has something to do without new
    /// input: retries, start timeouts, cleanup.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let mut best: Option<Timestamp> = None;
        let mut consider = |t: Timestamp| {
            best = Some(best.map_or(t, |b| b.min(t)));
        };
        for rec in self.tasks.values() {
            for c in rec.all() {
                if let Some(t) = c.not_before {
                    consider(t);
                }
            }
            let waiting = rec.all().any(|c| c.op.is_some() || c.not_before.is_some());
            if let (Some(stopped), false, false) = (rec.stopped_at, rec.removed, waiting) {
                consider(add(stopped, self.cfg.cleanup_wait));
            }
            if rec.stop.is_none() {
                for c in &rec.containers {
                    if c.status != CStatus::Pending {
                        continue;
                    }
                    for (dep, cond) in &c.depends_on {
                        if *cond == Condition::Start {
                            continue;
                        }
                        if let Some(d) = rec.containers.iter().find(|x| &x.name == dep) {
                            if let (Some(st), Some(ms), true) = (
                                d.started_at,
                                d.start_timeout_ms,
                                d.status == CStatus::Running,
                            ) {
                                consider(add(st, Duration::from_millis(ms)));
                            }
                        }
                    }
                }
            }
        }
        best
    }

    // ------------------------------------------------------------------
    // Reports

    /// Whether some task has changes the server has not accepted.
    pub fn has_unreported(&self) -> bool {
        self.tasks.values().any(|t| t.version > t.reported_version)
    }

    /// The next report: every task with unreported changes, as full
    /// observed state, under a new sequence number (persisted with the next
    /// checkpoint, which the caller writes before sending). Returns the
    /// versions covered, for [`Engine::report_accepted`].
    pub fn build_report(
        &mut self,
        cluster: &str,
    ) -> Option<(ReportTaskStatesRequest, Vec<(String, u64)>)> {
        let pending: Vec<&TaskRecord> = self
            .tasks
            .values()
            .filter(|t| t.version > t.reported_version)
            .collect();
        if pending.is_empty() {
            return None;
        }
        let covered = pending
            .iter()
            .map(|t| (t.assigned.task_arn.clone(), t.version))
            .collect();
        let tasks = pending.iter().map(|t| observed_task(t)).collect();
        self.seq += 1;
        self.dirty = true;
        Some((
            ReportTaskStatesRequest {
                cluster: cluster.to_string(),
                container_instance_arn: self.cfg.ctx.instance_arn.clone(),
                seq: self.seq,
                tasks,
            },
            covered,
        ))
    }

    pub fn report_accepted(&mut self, covered: &[(String, u64)]) {
        for (arn, v) in covered {
            if let Some(t) = self.tasks.get_mut(arn) {
                t.reported_version = t.reported_version.max(*v);
            }
        }
    }

    /// The server ignored a report as stale: our sequence is behind its
    /// (lost checkpoint). Jump ahead to a time-based value.
    pub fn skip_seq_to(&mut self, floor: u64) {
        if self.seq < floor {
            self.seq = floor;
            self.dirty = true;
        }
    }

    /// Marks every task as unreported (after reconnecting to a server that
    /// may have lost track).
    pub fn report_all_again(&mut self) {
        for t in self.tasks.values_mut() {
            t.reported_version = 0;
        }
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }
}

fn blank_container() -> ContainerRecord {
    ContainerRecord {
        name: String::new(),
        docker_name: String::new(),
        image: String::new(),
        essential: true,
        depends_on: Vec::new(),
        start_timeout_ms: None,
        stop_timeout_ms: 30_000,
        status: CStatus::Pending,
        runtime_id: None,
        exit_code: None,
        reason: None,
        started_at: None,
        finished_at: None,
        bindings: Vec::new(),
        ip: None,
        image_digest: None,
        cpu: 0,
        memory: None,
        memory_reservation: None,
        health_check: false,
        health: None,
        awslogs: None,
        shipped_until_ns: None,
        logs_drained: false,
        op: None,
        not_before: None,
        known_gen: 0,
    }
}

fn transport(p: Protocol) -> TransportProtocol {
    match p {
        Protocol::Tcp => TransportProtocol::Tcp,
        Protocol::Udp => TransportProtocol::Udp,
    }
}

/// Applies a Docker observation to a container record. Status only moves
/// forward (Pending → Created → Running → Stopped), so a stale inspect
/// arriving late cannot undo a newer one. Returns whether anything changed.
fn observe(
    c: &mut ContainerRecord,
    s: &ContainerState,
    network: Option<NetMode>,
    gen: u64,
) -> bool {
    let before = c.clone();
    if c.runtime_id.as_deref() != Some(s.id.as_str()) {
        if c.runtime_id.is_some() {
            // Another container with the same labels: not this one.
            return false;
        }
        c.runtime_id = Some(s.id.clone());
        c.known_gen = gen;
    }
    match s.status {
        Status::Created => {
            if c.status == CStatus::Pending {
                c.status = CStatus::Created;
            }
        }
        Status::Running => {
            if c.status != CStatus::Stopped {
                c.status = CStatus::Running;
                c.started_at = ts(s.started_at).or(c.started_at);
                if c.health_check {
                    c.health = Some(
                        match s.health {
                            Some(Health::Healthy) => HEALTH_HEALTHY,
                            Some(Health::Unhealthy) => HEALTH_UNHEALTHY,
                            Some(Health::Starting) | None => HEALTH_UNKNOWN,
                        }
                        .to_string(),
                    );
                }
                if network == Some(NetMode::Bridge) || network.is_none() {
                    c.bindings = s
                        .ports
                        .iter()
                        .map(|p| NetworkBinding {
                            bind_ip: Some(p.host_ip.clone()),
                            container_port: Some(i32::from(p.container_port)),
                            host_port: Some(i32::from(p.host_port)),
                            protocol: Some(transport(p.protocol)),
                            ..Default::default()
                        })
                        .collect();
                }
                if let Some(ip) = s.ips.values().next() {
                    if c.name == spec::PAUSE_CONTAINER_NAME {
                        c.ip = Some(ip.clone());
                    }
                }
            }
        }
        Status::Exited => {
            if c.status != CStatus::Stopped {
                c.status = CStatus::Stopped;
                c.started_at = ts(s.started_at).or(c.started_at);
                c.finished_at = ts(s.finished_at).or(c.finished_at);
                c.exit_code = s.exit_code.map(|e| e as i32);
                if s.oom_killed {
                    c.reason = Some(REASON_OOM.to_string());
                } else if let (Some(err), None) = (&s.error, &c.reason) {
                    c.reason = Some(format!("CannotStartContainerError: {err}"));
                }
            } else if c.exit_code.is_none() && s.exit_code.is_some() {
                c.exit_code = s.exit_code.map(|e| e as i32);
                c.finished_at = ts(s.finished_at).or(c.finished_at);
            }
        }
    }
    *c != before
}

/// The container disappeared from Docker without the agent removing it.
fn mark_gone(c: &mut ContainerRecord, now: Timestamp) -> bool {
    if c.status == CStatus::Stopped {
        return false;
    }
    c.status = CStatus::Stopped;
    c.finished_at.get_or_insert(now);
    if c.reason.is_none() {
        c.reason = Some("DockerStateError: the container was removed outside the agent".into());
    }
    true
}

fn dependants_stopped(rec: &TaskRecord, name: &str) -> bool {
    rec.containers
        .iter()
        .filter(|c| c.depends_on.iter().any(|(d, _)| d == name))
        .all(|c| c.status == CStatus::Stopped)
}

enum DepState {
    Satisfied,
    Waiting,
    Terminal(String),
}

fn dependency_state(rec: &TaskRecord, c: &ContainerRecord, now: Timestamp) -> DepState {
    let mut waiting = false;
    for (dep, cond) in &c.depends_on {
        let Some(d) = rec.containers.iter().find(|x| &x.name == dep) else {
            return DepState::Terminal(format!("dependency {dep} does not exist"));
        };
        let terminal = |why: String| {
            DepState::Terminal(format!(
                "CannotStartContainerError: container {} cannot start: dependency {dep} {why} (condition {})",
                c.name,
                cond.as_str()
            ))
        };
        let stopped = d.status == CStatus::Stopped;
        if stopped && !d.has_started() {
            return terminal("never started".into());
        }
        let timed_out = |what: &str| {
            if let (Some(st), Some(ms)) = (d.started_at, d.start_timeout_ms) {
                if now >= add(st, Duration::from_millis(ms)) {
                    return Some(terminal(format!(
                        "did not {what} within its startTimeout of {}s",
                        ms / 1000
                    )));
                }
            }
            None
        };
        match cond {
            Condition::Healthy => match d.health.as_deref() {
                Some(HEALTH_HEALTHY) => {}
                Some(HEALTH_UNHEALTHY) => return terminal("is UNHEALTHY".into()),
                _ if stopped => return terminal("exited without becoming HEALTHY".into()),
                _ => {
                    if let Some(t) = timed_out("become HEALTHY") {
                        return t;
                    }
                    waiting = true;
                }
            },
            Condition::Start => {
                if !d.has_started() {
                    waiting = true;
                }
            }
            Condition::Complete | Condition::Success => {
                if stopped {
                    if *cond == Condition::Success && d.exit_code != Some(0) {
                        return terminal(format!(
                            "exited with code {}",
                            d.exit_code.map_or("unknown".into(), |e| e.to_string())
                        ));
                    }
                } else {
                    if let Some(t) = timed_out("complete") {
                        return t;
                    }
                    waiting = true;
                }
            }
        }
    }
    if waiting {
        DepState::Waiting
    } else {
        DepState::Satisfied
    }
}

/// Local transitions that need no IO. Returns whether anything changed.
fn settle(rec: &mut TaskRecord, now: Timestamp) -> bool {
    if rec.is_stopped() {
        return false;
    }
    let mut changed = false;
    // The server's stop.
    if rec.stop.is_none() && rec.assigned.desired_status == TaskStatus::Stopped {
        rec.stop = Some(StopInfo {
            code: rec.assigned.stop_code.clone(),
            reason: rec.assigned.stopped_reason.clone(),
        });
        changed = true;
    }
    if rec.stop.is_none() {
        // Dependencies that can never be met.
        if rec.pull == PullState::Done {
            let mut failed = Vec::new();
            for (i, c) in rec.containers.iter().enumerate() {
                if c.status == CStatus::Pending && c.op.is_none() {
                    if let DepState::Terminal(reason) = dependency_state(rec, c, now) {
                        failed.push((i, reason));
                    }
                }
            }
            for (i, reason) in failed {
                let c = &mut rec.containers[i];
                c.status = CStatus::Stopped;
                c.exit_code = Some(DEPENDENCY_EXIT_CODE);
                c.reason = Some(reason);
                changed = true;
            }
        }
        // The essential rule (the pause container counts as essential).
        let exited = rec
            .all()
            .find(|c| c.essential && c.status == CStatus::Stopped)
            .map(|c| (c.has_started(), c.reason.clone()));
        if let Some((started, reason)) = exited {
            let stop = if started {
                StopInfo {
                    code: Some(TaskStopCode::EssentialContainerExited),
                    reason: Some(REASON_ESSENTIAL.to_string()),
                }
            } else {
                StopInfo {
                    code: Some(TaskStopCode::TaskFailedToStart),
                    reason: reason.or_else(|| Some("Task failed to start".into())),
                }
            };
            rec.stop = Some(stop);
            rec.execution_stopped_at.get_or_insert(now);
            // A task whose containers all started, even if one exited
            // before we saw it running, did start: ECS reports startedAt.
            if rec.started_at.is_none() && rec.containers.iter().all(|c| c.started_at.is_some()) {
                rec.started_at = rec.containers.iter().filter_map(|c| c.started_at).max();
            }
            changed = true;
        }
    }
    if rec.stop.is_none() && rec.started_at.is_none() {
        // RUNNING: every container has started (some may have exited
        // since), at least one runs, and the task network is up.
        let all_started = rec
            .containers
            .iter()
            .all(|c| c.has_started() || c.status == CStatus::Stopped);
        let one_running = rec.containers.iter().any(|c| c.status == CStatus::Running);
        let net_up = rec
            .pause
            .as_ref()
            .is_none_or(|p| p.status == CStatus::Running);
        if all_started && one_running && net_up {
            rec.started_at = Some(now);
            changed = true;
        }
    }
    if rec.stop.is_some() {
        // Containers that were never started will never run now.
        for c in rec.containers.iter_mut() {
            if matches!(c.status, CStatus::Pending | CStatus::Created) && c.op.is_none() {
                c.status = CStatus::Stopped;
                changed = true;
            }
        }
        let apps_done = rec.containers.iter().all(|c| c.status == CStatus::Stopped);
        if apps_done {
            if let Some(p) = rec.pause.as_mut() {
                if matches!(p.status, CStatus::Pending | CStatus::Created) && p.op.is_none() {
                    p.status = CStatus::Stopped;
                    changed = true;
                }
            }
            // awslogs output is flushed before the task reports STOPPED.
            if rec.all().all(|c| c.status == CStatus::Stopped)
                && !rec.containers.iter().any(|c| c.logs_pending())
            {
                rec.stopped_at = Some(now);
                rec.execution_stopped_at.get_or_insert(now);
                changed = true;
            }
        }
    }
    changed
}

fn plan_actions(
    cfg: &EngineConfig,
    rec: &mut TaskRecord,
    now: Timestamp,
    out: &mut Vec<Action>,
    changed: &mut bool,
) {
    let arn = rec.assigned.task_arn.clone();
    let ready = |c: &ContainerRecord| c.op.is_none() && c.not_before.is_none_or(|t| now >= t);
    if rec.is_stopped() {
        // Cleanup after the delay.
        let due = rec
            .stopped_at
            .is_some_and(|s| now >= add(s, cfg.cleanup_wait));
        if due && !rec.removed && rec.all().all(ready) {
            let ids: Vec<String> = rec.all().filter_map(|c| c.runtime_id.clone()).collect();
            // Task-scoped volumes exist only once a container was created.
            let volumes = if ids.is_empty() {
                Vec::new()
            } else {
                spec::plan_task(&cfg.ctx, &rec.assigned)
                    .map(|p| p.task_volumes)
                    .unwrap_or_default()
            };
            if ids.is_empty() {
                rec.removed = true;
                *changed = true;
            } else {
                for c in rec.all_mut() {
                    c.op = Some(Op::Remove);
                    c.not_before = None;
                }
                out.push(Action::Remove {
                    task_arn: arn,
                    ids,
                    volumes,
                });
            }
        }
        return;
    }
    if rec.stop.is_some() {
        // Reverse dependency order: a container stops once everything that
        // depends on it has stopped; the pause container goes last.
        let mut stops = Vec::new();
        for (i, c) in rec.containers.iter().enumerate() {
            if c.status == CStatus::Running && ready(c) && dependants_stopped(rec, &c.name) {
                stops.push(i);
            }
        }
        for i in stops {
            let c = &mut rec.containers[i];
            c.op = Some(Op::Stop);
            c.not_before = None;
            out.push(Action::Stop {
                task_arn: arn.clone(),
                container: c.name.clone(),
                id: c.runtime_id.clone().unwrap_or_default(),
                timeout: c.stop_timeout(),
            });
        }
        let apps_done = rec.containers.iter().all(|c| c.status == CStatus::Stopped);
        if let (true, Some(p)) = (apps_done, rec.pause.as_mut()) {
            if p.status == CStatus::Running && ready(p) {
                p.op = Some(Op::Stop);
                p.not_before = None;
                out.push(Action::Stop {
                    task_arn: arn.clone(),
                    container: p.name.clone(),
                    id: p.runtime_id.clone().unwrap_or_default(),
                    timeout: p.stop_timeout(),
                });
            }
        }
        return;
    }
    // Starting.
    match rec.pull {
        PullState::NotStarted => {
            let mut images: Vec<String> = Vec::new();
            for c in &rec.containers {
                if !images.contains(&c.image) {
                    images.push(c.image.clone());
                }
            }
            rec.pull = PullState::InFlight;
            rec.pull_started_at.get_or_insert(now);
            *changed = true;
            out.push(Action::Pull {
                task_arn: arn,
                images,
                behavior: cfg.pull_behavior,
            });
            return;
        }
        PullState::InFlight => return,
        PullState::Done => {}
    }
    let needs_launch =
        |c: &ContainerRecord| matches!(c.status, CStatus::Pending | CStatus::Created) && ready(c);
    let mut plan: Option<TaskPlan> = None;
    let mut plan_for = |rec: &TaskRecord| -> Option<TaskPlan> {
        if plan.is_none() {
            plan = spec::plan_task(&cfg.ctx, &rec.assigned).ok();
        }
        plan.clone()
    };
    if let Some(p) = rec.pause.as_ref() {
        if needs_launch(p) {
            if let Some(tp) = plan_for(rec) {
                let spec = tp.pause.clone().expect("awsvpc plan has a pause container");
                let p = rec.pause.as_mut().expect("checked");
                p.op = Some(Op::Launch);
                out.push(Action::Launch {
                    task_arn: arn.clone(),
                    container: p.name.clone(),
                    existing_id: if p.status == CStatus::Created {
                        p.runtime_id.clone()
                    } else {
                        None
                    },
                    network: Some(spec::cluster_network(&cfg.ctx.cluster)),
                    volumes: Vec::new(),
                    spec: Box::new(spec),
                });
            }
        }
        if rec
            .pause
            .as_ref()
            .is_some_and(|p| p.status != CStatus::Running)
        {
            return;
        }
    }
    let mut launches = Vec::new();
    for (i, c) in rec.containers.iter().enumerate() {
        if needs_launch(c) && matches!(dependency_state(rec, c, now), DepState::Satisfied) {
            launches.push(i);
        }
    }
    for i in launches {
        let Some(tp) = plan_for(rec) else { break };
        let c = &mut rec.containers[i];
        let Some(cp) = tp.containers.iter().find(|p| p.name == c.name) else {
            continue;
        };
        c.op = Some(Op::Launch);
        out.push(Action::Launch {
            task_arn: arn.clone(),
            container: c.name.clone(),
            existing_id: if c.status == CStatus::Created {
                c.runtime_id.clone()
            } else {
                None
            },
            network: None,
            volumes: cp.volumes.clone(),
            spec: Box::new(cp.spec.clone()),
        });
    }
}

/// An attachment id in UUID form, derived from the task id.
fn attachment_id(task_id: &str) -> String {
    let hex: String = task_id.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    if hex.len() >= 32 {
        let h = &hex[..32];
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    } else {
        task_id.to_string()
    }
}

/// The ECS shape of what the agent knows of a task.
pub fn observed_task(rec: &TaskRecord) -> ObservedTask {
    let eni_ip = rec.pause.as_ref().and_then(|p| p.ip.clone());
    let att_id = attachment_id(&rec.task_id);
    let containers = rec
        .containers
        .iter()
        .map(|c| Container {
            name: Some(c.name.clone()),
            image: Some(c.image.clone()).filter(|i| !i.is_empty()),
            image_digest: c.image_digest.clone(),
            runtime_id: c.runtime_id.clone(),
            task_arn: Some(rec.assigned.task_arn.clone()),
            last_status: Some(
                match c.status {
                    CStatus::Pending | CStatus::Created => "PENDING",
                    CStatus::Running => "RUNNING",
                    CStatus::Stopped => "STOPPED",
                }
                .to_string(),
            ),
            exit_code: c.exit_code,
            reason: c.reason.as_ref().map(|r| truncate(r, 1024)),
            network_bindings: match rec.network {
                Some(NetMode::Bridge) | Some(NetMode::Host)
                    if !c.bindings.is_empty() && c.has_started() =>
                {
                    Some(c.bindings.clone())
                }
                _ => None,
            },
            network_interfaces: match (&rec.network, &eni_ip) {
                (Some(NetMode::Awsvpc), Some(ip)) => Some(vec![NetworkInterface {
                    attachment_id: Some(att_id.clone()),
                    private_ipv4_address: Some(ip.clone()),
                    ipv6_address: None,
                }]),
                _ => None,
            },
            cpu: Some(c.cpu.to_string()),
            memory: c.memory.map(|m| m.to_string()),
            memory_reservation: c.memory_reservation.map(|m| m.to_string()),
            health_status: c.health.as_deref().map(health_status),
            ..Default::default()
        })
        .collect();
    let attachments = match (&rec.network, &rec.pause) {
        (Some(NetMode::Awsvpc), Some(p)) => {
            let status = match (p.status, rec.is_stopped()) {
                (_, true) | (CStatus::Stopped, _) => "DELETED",
                (CStatus::Running, _) => "ATTACHED",
                _ => "PRECREATED",
            };
            let mut details = Vec::new();
            if let Some(ip) = &eni_ip {
                details.push(KeyValuePair {
                    name: Some("privateIPv4Address".into()),
                    value: Some(ip.clone()),
                });
            }
            vec![Attachment {
                id: Some(att_id),
                r#type: Some("ElasticNetworkInterface".into()),
                status: Some(status.into()),
                details: Some(details),
            }]
        }
        _ => Vec::new(),
    };
    ObservedTask {
        task_arn: rec.assigned.task_arn.clone(),
        last_status: rec.last_status(),
        containers,
        attachments,
        pull_started_at: rec.pull_started_at,
        pull_stopped_at: rec.pull_stopped_at,
        started_at: rec.started_at,
        execution_stopped_at: rec.execution_stopped_at,
        stopped_reason: rec
            .stop
            .as_ref()
            .and_then(|s| s.reason.as_ref())
            .map(|r| truncate(r, 1024)),
        stop_code: rec.stop.as_ref().and_then(|s| s.code.clone()),
        health_status: Some(task_health(rec)),
    }
}

fn health_status(h: &str) -> HealthStatus {
    match h {
        HEALTH_HEALTHY => HealthStatus::Healthy,
        HEALTH_UNHEALTHY => HealthStatus::Unhealthy,
        _ => HealthStatus::UnknownValue,
    }
}

/// ECS's task healthStatus: only essential containers with a health check
/// decide; any UNHEALTHY makes it UNHEALTHY, all HEALTHY make it HEALTHY,
/// anything else (none with a check included) is UNKNOWN.
pub fn task_health(rec: &TaskRecord) -> HealthStatus {
    let mut checked = rec
        .containers
        .iter()
        .filter(|c| c.essential && c.health_check)
        .peekable();
    if checked.peek().is_none() {
        return HealthStatus::UnknownValue;
    }
    let mut all_healthy = true;
    for c in checked {
        match c.health.as_deref() {
            Some(HEALTH_UNHEALTHY) => return HealthStatus::Unhealthy,
            Some(HEALTH_HEALTHY) => {}
            _ => all_healthy = false,
        }
    }
    if all_healthy {
        HealthStatus::Healthy
    } else {
        HealthStatus::UnknownValue
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Host-mode bindings are static, known from the plan (Docker has none to
/// show); they are reported once the container has started.
fn host_mode_bindings(plan: &TaskPlan, container: &str) -> Vec<NetworkBinding> {
    plan.containers
        .iter()
        .find(|c| c.name == container)
        .map(|c| {
            c.host_mode_ports
                .iter()
                .map(|p| NetworkBinding {
                    bind_ip: Some("0.0.0.0".into()),
                    container_port: Some(i32::from(p.container_port)),
                    host_port: Some(i32::from(p.host_port.unwrap_or(p.container_port))),
                    protocol: Some(transport(p.protocol)),
                    ..Default::default()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
