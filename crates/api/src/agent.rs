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

use crate::ecs::{
    Attachment, Container, HealthStatus, LaunchType, TaskDefinition, TaskOverride, TaskStopCode,
};
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedTask {
    pub task_arn: String,
    /// `RUNNING` or `STOPPED`.
    pub desired_status: TaskStatus,
    pub task_definition: TaskDefinition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<TaskOverride>,
    /// `EC2`, `FARGATE` or `EXTERNAL`.
    pub launch_type: LaunchType,
    /// Why the task is to stop, when desiredStatus is STOPPED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    /// The ECS `stopCode` to report when stopping at the server's request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<TaskStopCode>,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedTask {
    pub task_arn: String,
    /// ECS task lastStatus: PENDING, ACTIVATING, RUNNING, DEACTIVATING,
    /// STOPPING, DEPROVISIONING or STOPPED.
    pub last_status: TaskStatus,
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
    pub stop_code: Option<TaskStopCode>,
    /// ECS task healthStatus (HEALTHY, UNHEALTHY or UNKNOWN), derived from
    /// the essential containers' health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<HealthStatus>,
}

/// ECS task `lastStatus` / `desiredStatus` as the task lifecycle documents
/// it. The botocore model types both as plain strings, so this enum is
/// hand-written in the generated enums' style: the wire value is the
/// SCREAMING_CASE name, and a value this version does not list is kept in
/// [`TaskStatus::Unknown`] (as the SDKs keep it) rather than rejected, so a
/// newer peer's status survives a round trip.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    Provisioning,
    Pending,
    Activating,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
    /// A value this version does not list.
    Unknown(String),
}

impl TaskStatus {
    /// The lifecycle values, in lifecycle order.
    pub const VALUES: &'static [&'static str] = &[
        "PROVISIONING",
        "PENDING",
        "ACTIVATING",
        "RUNNING",
        "DEACTIVATING",
        "STOPPING",
        "DEPROVISIONING",
        "STOPPED",
    ];

    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            TaskStatus::Provisioning => "PROVISIONING",
            TaskStatus::Pending => "PENDING",
            TaskStatus::Activating => "ACTIVATING",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Deactivating => "DEACTIVATING",
            TaskStatus::Stopping => "STOPPING",
            TaskStatus::Deprovisioning => "DEPROVISIONING",
            TaskStatus::Stopped => "STOPPED",
            TaskStatus::Unknown(value) => value,
        }
    }

    fn known(value: &str) -> Option<Self> {
        Some(match value {
            "PROVISIONING" => TaskStatus::Provisioning,
            "PENDING" => TaskStatus::Pending,
            "ACTIVATING" => TaskStatus::Activating,
            "RUNNING" => TaskStatus::Running,
            "DEACTIVATING" => TaskStatus::Deactivating,
            "STOPPING" => TaskStatus::Stopping,
            "DEPROVISIONING" => TaskStatus::Deprovisioning,
            "STOPPED" => TaskStatus::Stopped,
            _ => return None,
        })
    }
}

impl From<&str> for TaskStatus {
    fn from(value: &str) -> Self {
        Self::known(value).unwrap_or_else(|| TaskStatus::Unknown(value.to_owned()))
    }
}

impl From<String> for TaskStatus {
    fn from(value: String) -> Self {
        Self::known(&value).unwrap_or(TaskStatus::Unknown(value))
    }
}

impl std::str::FromStr for TaskStatus {
    type Err = std::convert::Infallible;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self::from(value))
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TaskStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TaskStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <String as Deserialize>::deserialize(deserializer).map(Self::from)
    }
}

/// A name or ARN the server must resolve; empty means the agent is broken.
fn non_empty(value: &str, path: &str) -> Result<(), crate::ValidationError> {
    if value.is_empty() {
        Err(crate::__private::missing(path.to_string()))
    } else {
        Ok(())
    }
}

impl crate::Validate for PollTasksRequest {
    fn validate(&self, _path: &str) -> Result<(), crate::ValidationError> {
        non_empty(&self.cluster, "cluster")?;
        non_empty(&self.container_instance_arn, "containerInstanceArn")
    }
}

impl crate::Validate for ReportTaskStatesRequest {
    fn validate(&self, _path: &str) -> Result<(), crate::ValidationError> {
        non_empty(&self.cluster, "cluster")?;
        non_empty(&self.container_instance_arn, "containerInstanceArn")?;
        for (i, t) in self.tasks.iter().enumerate() {
            let path = crate::__private::index("tasks", i);
            non_empty(&t.task_arn, &crate::__private::join(&path, "taskArn"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod task_status_tests {
    use super::TaskStatus;

    /// Every lifecycle value parses to a known variant and serializes back
    /// to the same JSON string.
    #[test]
    fn wire_round_trip() {
        for value in TaskStatus::VALUES {
            let json = format!("\"{value}\"");
            let status: TaskStatus = serde_json::from_str(&json).unwrap();
            assert!(!matches!(status, TaskStatus::Unknown(_)), "{value}");
            assert_eq!(status.as_str(), *value);
            assert_eq!(serde_json::to_string(&status).unwrap(), json);
        }
        assert_eq!(TaskStatus::from("STOPPED"), TaskStatus::Stopped);
    }

    /// A status from a newer peer is kept verbatim, not rejected or mapped.
    #[test]
    fn unknown_value_is_kept() {
        let status: TaskStatus = serde_json::from_str("\"HIBERNATING\"").unwrap();
        assert_eq!(status, TaskStatus::Unknown("HIBERNATING".into()));
        assert_eq!(serde_json::to_string(&status).unwrap(), "\"HIBERNATING\"");
        // Case matters on the wire, as in ECS.
        assert!(matches!(
            TaskStatus::from("running"),
            TaskStatus::Unknown(_)
        ));
    }
}
