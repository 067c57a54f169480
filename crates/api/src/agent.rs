//! Stevedore's agent protocol: how `stevedore agent` and the server talk.
//!
//! It rides the same endpoint, framing and SigV4 authentication as ECS,
//! under its own target prefix, so an agent needs nothing but an access
//! key. State moves level-triggered:
//!
//! - `PollTasks` (agent → server, long poll): "the tasks this instance should
//!   run, as of store revision R". The server answers at once when its
//!   revision is newer than `knownRevision`, else within `waitSeconds`.
//!   Every poll is also the instance's heartbeat.
//! - `ReportTaskStates` (agent → server): the observed state of tasks, with
//!   a sequence number that only grows per instance; a report whose `seq`
//!   is not greater than the last accepted one is ignored, so retries and
//!   reordering are harmless.
//!
//! The instance itself registers with the ECS operation
//! `RegisterContainerInstance`.

use crate::ecs::{Attachment, Container, TaskDefinition, TaskOverride};
use crate::Timestamp;
use serde::{Deserialize, Serialize};

pub const TARGET_PREFIX: &str = "StevedoreAgent_20261122";
/// The longest a poll is held open.
pub const MAX_WAIT_SECONDS: u32 = 30;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollTasksRequest {
    pub cluster: String,
    pub container_instance_arn: String,
    #[serde(default)]
    pub known_revision: i64,
    #[serde(default)]
    pub wait_seconds: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollTasksResponse {
    pub revision: i64,
    /// Every task assigned to the instance that the agent must run or stop.
    /// A task absent from this list may be forgotten once it is stopped.
    pub tasks: Vec<AssignedTask>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedTask {
    pub task_arn: String,
    /// `RUNNING` or `STOPPED`.
    pub desired_status: String,
    pub task_definition: TaskDefinition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<TaskOverride>,
    /// `EC2`, `FARGATE` or `EXTERNAL`.
    pub launch_type: String,
    /// Why the task is to stop, when desiredStatus is STOPPED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    /// The ECS `stopCode` to report when stopping at the server's request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportTaskStatesRequest {
    pub cluster: String,
    pub container_instance_arn: String,
    pub seq: u64,
    pub tasks: Vec<ObservedTask>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportTaskStatesResponse {
    /// False when `seq` was stale and the report was ignored.
    pub accepted: bool,
}

/// What the agent observed of one task. Fields use the ECS shapes so the
/// server can copy them into DescribeTasks unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedTask {
    pub task_arn: String,
    /// ECS task lastStatus: PENDING, ACTIVATING, RUNNING, DEACTIVATING,
    /// STOPPING, DEPROVISIONING or STOPPED.
    pub last_status: String,
    pub containers: Vec<Container>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_stopped_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    /// ECS TaskStopCode value, e.g. EssentialContainerExited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    /// ECS task healthStatus (HEALTHY, UNHEALTHY or UNKNOWN), derived from
    /// the essential containers' health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<String>,
}
