//! The stored form of a service: the ECS `Service` shape (without the
//! computed counts, deployments and events) flattened at the top level, so
//! cluster statistics can read `status` and `launchType` as loose JSON,
//! plus the controller's state.

use serde::{Deserialize, Serialize};
use stevedore_api::ecs::{Service, Task};
use stevedore_controllers::state::ServiceState;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRecord {
    #[serde(flatten)]
    pub service: Service,
    /// Deployments, events and the controller's bookkeeping.
    #[serde(default)]
    pub controller: ServiceState,
}

impl ServiceRecord {
    pub fn name(&self) -> &str {
        self.service.service_name.as_deref().unwrap_or_default()
    }
}

/// The `group` of every task a service starts.
pub fn service_group(name: &str) -> String {
    format!("service:{name}")
}

/// Whether `task` was started by the service named `name`.
pub fn belongs_to(task: &Task, name: &str) -> bool {
    task.group.as_deref() == Some(service_group(name).as_str())
        && task
            .started_by
            .as_deref()
            .is_some_and(|s| s.starts_with("ecs-svc/"))
}

/// Live: the scheduler still wants it running.
pub fn is_live(task: &Task) -> bool {
    task.desired_status.as_deref() == Some("RUNNING")
}

/// (running, pending) over live tasks, as `runningCount`/`pendingCount`
/// report them. A task the scheduler is stopping counts in neither.
pub fn counts<'a>(tasks: impl Iterator<Item = &'a Task>) -> (i32, i32) {
    let mut running = 0;
    let mut pending = 0;
    for t in tasks.filter(|t| is_live(t)) {
        match t.last_status.as_deref() {
            Some("RUNNING") => running += 1,
            Some("PROVISIONING") | Some("PENDING") | Some("ACTIVATING") => pending += 1,
            _ => {}
        }
    }
    (running, pending)
}
