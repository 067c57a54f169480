//! Container instance records and the reads placement, the agent protocol
//! and the controllers share.

use crate::db::{self, Versioned};
use crate::error::ApiResult;
use crate::live_tasks::last_status;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use stevedore_api::agent::TaskStatus;
use stevedore_api::ecs::{ContainerInstance, ContainerInstanceStatus, Resource, Task};
use stevedore_model::arn::{child_id, Scope};
use stevedore_model::keys;
use stevedore_store::Store;

/// What one placed task reserves on its instance until it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Allocation {
    pub cpu: i64,
    pub memory: i64,
    #[serde(default)]
    pub ports_tcp: Vec<u16>,
    #[serde(default)]
    pub ports_udp: Vec<u16>,
}

/// A stored container instance: the ECS shape plus the bookkeeping the
/// server needs. `allocations` is the resource ledger placement commits
/// against (compare-and-set on this record), so two placements can never
/// both take the last of an instance's memory or the same host port.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRecord {
    #[serde(flatten)]
    pub instance: ContainerInstance,
    pub cluster_name: String,
    #[serde(default)]
    pub report_seq: u64,
    #[serde(default)]
    pub allocations: BTreeMap<String, Allocation>,
}

impl InstanceRecord {
    pub fn id(&self) -> &str {
        self.instance
            .container_instance_arn
            .as_deref()
            .and_then(|a| a.rsplit('/').next())
            .unwrap_or_default()
    }

    pub fn registered(&self, name: &str) -> Option<&Resource> {
        self.instance
            .registered_resources
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|r| r.name.as_deref() == Some(name))
    }

    pub fn registered_int(&self, name: &str) -> i64 {
        self.registered(name)
            .map(|r| {
                r.integer_value
                    .map(i64::from)
                    .or(r.long_value)
                    .or(r.double_value.map(|d| d as i64))
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    pub fn registered_ports(&self, name: &str) -> BTreeSet<u16> {
        self.registered(name)
            .and_then(|r| r.string_set_value.as_ref())
            .map(|v| v.iter().filter_map(|p| p.parse().ok()).collect())
            .unwrap_or_default()
    }

    pub fn status(&self) -> ContainerInstanceStatus {
        ContainerInstanceStatus::from(self.instance.status.as_deref().unwrap_or_default())
    }

    pub fn is_active(&self) -> bool {
        self.status() == ContainerInstanceStatus::Active
    }

    /// registeredResources minus what placed tasks hold.
    pub fn remaining(&self) -> Vec<Resource> {
        let cpu: i64 = self.allocations.values().map(|a| a.cpu).sum();
        let mem: i64 = self.allocations.values().map(|a| a.memory).sum();
        let mut tcp = self.registered_ports("PORTS");
        let mut udp = self.registered_ports("PORTS_UDP");
        for a in self.allocations.values() {
            tcp.extend(a.ports_tcp.iter().copied());
            udp.extend(a.ports_udp.iter().copied());
        }
        let int = |name: &str, v: i64| Resource {
            name: Some(name.into()),
            r#type: Some("INTEGER".into()),
            integer_value: Some(v.clamp(i32::MIN as i64, i32::MAX as i64) as i32),
            ..Default::default()
        };
        let set = |name: &str, v: BTreeSet<u16>| Resource {
            name: Some(name.into()),
            r#type: Some("STRINGSET".into()),
            string_set_value: Some(v.iter().map(|p| p.to_string()).collect()),
            ..Default::default()
        };
        vec![
            int("CPU", self.registered_int("CPU") - cpu),
            int("MEMORY", self.registered_int("MEMORY") - mem),
            set("PORTS", tcp),
            set("PORTS_UDP", udp),
        ]
    }
}

pub fn load_instance(
    store: &dyn Store,
    scope: &Scope,
    cluster: &str,
    given: &str,
) -> ApiResult<Option<(String, Versioned<InstanceRecord>)>> {
    let Some(id) = child_id(scope, "container-instance", cluster, given) else {
        return Ok(None);
    };
    let key = keys::instance(scope, cluster, &id);
    Ok(db::get(store, &key)?.map(|v| (key, v)))
}

pub fn all_instances(
    store: &dyn Store,
    scope: &Scope,
    cluster: &str,
) -> ApiResult<Vec<Versioned<InstanceRecord>>> {
    db::all_versioned(
        store,
        &keys::cluster_children_prefix(scope, cluster, keys::KIND_INSTANCE),
    )
}

/// (running, pending) tasks whose containerInstanceArn is `arn`.
pub fn counts_of(tasks: &[Versioned<Task>], arn: &str) -> (i32, i32) {
    let mut c = (0, 0);
    for t in tasks
        .iter()
        .filter(|t| t.value.container_instance_arn.as_deref() == Some(arn))
    {
        match last_status(&t.value) {
            TaskStatus::Running => c.0 += 1,
            TaskStatus::Provisioning | TaskStatus::Pending | TaskStatus::Activating => c.1 += 1,
            _ => {}
        }
    }
    c
}

/// (running, pending) live tasks on the instance `instance_arn`.
pub fn counts_on_instance(
    store: &dyn Store,
    scope: &Scope,
    cluster: &str,
    instance_arn: &str,
) -> ApiResult<(i32, i32)> {
    Ok(counts_of(
        &crate::live_tasks::live_tasks(store, scope, cluster)?,
        instance_arn,
    ))
}
