//! The stored form of a service: the ECS `Service` shape (without the
//! computed counts, deployments and events) flattened at the top level, so
//! cluster statistics can read `status` and `launchType` as loose JSON,
//! plus the controller's state.

use serde::{Deserialize, Serialize};
use stevedore_api::ecs::{Service, Task};
use stevedore_controllers::state::ServiceState;
use stevedore_model::arn::{Arn, Scope};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRecord {
    #[serde(flatten)]
    pub service: Service,
    /// Deployments, events and the controller's bookkeeping.
    #[serde(default)]
    pub controller: ServiceState,
    /// CreateService's `clientToken`: a retry carrying it gets the service
    /// it created instead of "not idempotent".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
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

pub fn service_arn(scope: &Scope, cluster: &str, name: &str) -> String {
    scope.arn("service", &format!("{cluster}/{name}"))
}

/// The digits of a deployment id (`ecs-svc/DIGITS`).
pub fn id_digits(id: &str) -> &str {
    id.strip_prefix("ecs-svc/").unwrap_or(id)
}

pub fn deployment_arn(scope: &Scope, cluster: &str, name: &str, id: &str) -> String {
    scope.arn(
        "service-deployment",
        &format!("{cluster}/{name}/{}", id_digits(id)),
    )
}

/// One deployment is one service revision; the revision shares its digits.
pub fn revision_arn(scope: &Scope, cluster: &str, name: &str, id: &str) -> String {
    scope.arn(
        "service-revision",
        &format!("{cluster}/{name}/{}", id_digits(id)),
    )
}

/// Splits a `service-deployment` or `service-revision` ARN (`kind`) in
/// `scope` into (cluster, service name, deployment id).
pub fn parse_revision_arn(
    scope: &Scope,
    kind: &str,
    arn: &str,
) -> Option<(String, String, String)> {
    let parsed = Arn::parse(arn)?;
    if parsed.resource_type != kind || !parsed.in_scope(scope) {
        return None;
    }
    let mut parts = parsed.resource.split('/');
    let cluster = parts.next()?;
    let name = parts.next()?;
    let digits = parts.next()?;
    if parts.next().is_some()
        || cluster.is_empty()
        || name.is_empty()
        || digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((
        cluster.to_string(),
        name.to_string(),
        format!("ecs-svc/{digits}"),
    ))
}
