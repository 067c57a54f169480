//! What the service controller persists inside a service record. The
//! server stores it whole in the service's key; only the controller and
//! the service API handlers change it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// At most this many events are kept (ECS shows the newest 100).
pub const MAX_EVENTS: usize = 100;
/// Deployments kept for ListServiceDeployments after they went INACTIVE.
pub const MAX_HISTORY: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    Primary,
    Active,
    Inactive,
}

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Primary => "PRIMARY",
            DeploymentStatus::Active => "ACTIVE",
            DeploymentStatus::Inactive => "INACTIVE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Rollout {
    InProgress,
    Completed,
    Failed,
}

impl Rollout {
    pub fn as_str(self) -> &'static str {
        match self {
            Rollout::InProgress => "IN_PROGRESS",
            Rollout::Completed => "COMPLETED",
            Rollout::Failed => "FAILED",
        }
    }
}

/// The ServiceDeployment API's status (`ServiceDeploymentStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Pending,
    InProgress,
    Successful,
    Stopped,
    StopRequested,
    RollbackRequested,
    RollbackInProgress,
    RollbackSuccessful,
    RollbackFailed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "PENDING",
            Outcome::InProgress => "IN_PROGRESS",
            Outcome::Successful => "SUCCESSFUL",
            Outcome::Stopped => "STOPPED",
            Outcome::StopRequested => "STOP_REQUESTED",
            Outcome::RollbackRequested => "ROLLBACK_REQUESTED",
            Outcome::RollbackInProgress => "ROLLBACK_IN_PROGRESS",
            Outcome::RollbackSuccessful => "ROLLBACK_SUCCESSFUL",
            Outcome::RollbackFailed => "ROLLBACK_FAILED",
        }
    }
}

/// A rollback that replaced this deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackInfo {
    pub reason: String,
    pub started_at: i64,
    /// The deployment rolled back to (its revision is the target).
    pub to_deployment: String,
    /// The new deployment that carries the rollback.
    pub by_deployment: String,
}

/// One deployment of a service; one deployment is one service revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentState {
    /// `ecs-svc/` followed by 19 digits.
    pub id: String,
    pub status: DeploymentStatus,
    pub rollout: Rollout,
    pub rollout_reason: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome_reason: Option<String>,
    /// Task definition ARN this deployment runs.
    pub task_definition: String,
    /// What else defines the revision (launch type, network configuration,
    /// capacity provider strategy, platform version). Opaque here: the
    /// server writes and reads it.
    #[serde(default)]
    pub config: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    /// Failures counted by the circuit breaker (see `reconcile`).
    #[serde(default)]
    pub failed_tasks: u32,
    /// Set once a task of this deployment has been healthy; from then on
    /// the breaker counts health failures (its second stage).
    #[serde(default)]
    pub ever_healthy: bool,
    /// Circuit breaker settings captured when the deployment started.
    #[serde(default)]
    pub breaker: Option<Breaker>,
    /// The deployments that had tasks when this one started.
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackInfo>,
    /// Set by StopServiceDeployment: `ROLLBACK` or `ABORT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_requested: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Breaker {
    pub enable: bool,
    pub rollback: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: String,
    pub created_at: i64,
    pub message: String,
}

/// ECS's service throttle: tasks that keep failing before RUNNING delay
/// further launches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttle {
    pub consecutive_start_failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
}

/// The controller's persistent memory of one service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceState {
    /// Newest first. PRIMARY and ACTIVE ones are shown in
    /// `Service.deployments`; INACTIVE ones remain for the
    /// ServiceDeployment API, trimmed to `MAX_HISTORY`.
    pub deployments: Vec<DeploymentState>,
    /// Newest first, at most `MAX_EVENTS`.
    pub events: Vec<Event>,
    /// Stopped tasks whose stop the controller has already accounted for
    /// (task id -> when accounted, ms), pruned after an hour.
    #[serde(default)]
    pub accounted: BTreeMap<String, i64>,
    #[serde(default)]
    pub throttle: Throttle,
    /// Whether the "steady state" event was emitted for the current state.
    #[serde(default)]
    pub steady: bool,
    /// Counter for ids: events and deployments are numbered from it so the
    /// controller stays free of randomness.
    #[serde(default)]
    pub seq: u64,
}

impl ServiceState {
    pub fn primary(&self) -> Option<&DeploymentState> {
        self.deployments
            .iter()
            .find(|d| d.status == DeploymentStatus::Primary)
    }

    pub fn primary_mut(&mut self) -> Option<&mut DeploymentState> {
        self.deployments
            .iter_mut()
            .find(|d| d.status == DeploymentStatus::Primary)
    }

    pub fn deployment(&self, id: &str) -> Option<&DeploymentState> {
        self.deployments.iter().find(|d| d.id == id)
    }

    /// PRIMARY then ACTIVE deployments, as `Service.deployments` lists them.
    pub fn visible(&self) -> impl Iterator<Item = &DeploymentState> {
        self.deployments
            .iter()
            .filter(|d| d.status != DeploymentStatus::Inactive)
    }

    /// Appends an event unless the same message is among the recent ones
    /// (ECS suppresses repeats until the cause changes).
    pub fn push_event(&mut self, now: i64, message: String) {
        const SIX_HOURS: i64 = 6 * 3600 * 1000;
        let repeat = self
            .events
            .iter()
            .take(5)
            .any(|e| e.message == message && now - e.created_at < SIX_HOURS);
        if repeat {
            return;
        }
        self.seq += 1;
        self.events.insert(
            0,
            Event {
                id: event_id(now, self.seq),
                created_at: now,
                message,
            },
        );
        self.events.truncate(MAX_EVENTS);
    }

    /// Drops INACTIVE deployments beyond the history limit.
    pub fn trim_history(&mut self) {
        let mut inactive = 0;
        self.deployments.retain(|d| {
            if d.status != DeploymentStatus::Inactive {
                return true;
            }
            inactive += 1;
            inactive <= MAX_HISTORY
        });
    }
}

/// A UUID-shaped event id derived from time and sequence (deterministic).
fn event_id(now: i64, seq: u64) -> String {
    let a = now as u64;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (a >> 16) as u32,
        (a & 0xffff) as u16,
        (seq >> 12) & 0xfff,
        seq & 0xfff,
        (a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seq) & 0xffff_ffff_ffff
    )
}

/// A deployment id: `ecs-svc/` and 19 digits, derived from time and a
/// sequence so ids sort by creation.
pub fn deployment_id(now: i64, seq: u64) -> String {
    let n = (now.max(0) as u64 % 10_000_000_000_000) * 1_000_000 + seq % 1_000_000;
    format!("ecs-svc/{n:019}")
}
