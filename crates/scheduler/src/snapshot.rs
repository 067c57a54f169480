//! The read-only view of a cluster that the planner works from.
//!
//! These are plain values, independent of the wire crate: the server builds
//! them from its store (filling in built-in attributes such as
//! `ecs.availability-zone`) and hands them to [`crate::plan()`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Task `lastStatus` values after which a task no longer holds host resources.
const RELEASED_STATUSES: [&str; 2] = ["STOPPED", "DELETED"];

/// Status of a container instance (`ContainerInstanceStatus`).
///
/// Only [`InstanceStatus::Active`] instances receive new tasks; every other
/// status makes the planner skip the instance silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InstanceStatus {
    Registering,
    RegistrationFailed,
    Active,
    Draining,
    Deregistering,
    Inactive,
}

impl InstanceStatus {
    /// The wire spelling (`ACTIVE`, `DRAINING`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Registering => "REGISTERING",
            InstanceStatus::RegistrationFailed => "REGISTRATION_FAILED",
            InstanceStatus::Active => "ACTIVE",
            InstanceStatus::Draining => "DRAINING",
            InstanceStatus::Deregistering => "DEREGISTERING",
            InstanceStatus::Inactive => "INACTIVE",
        }
    }

    /// Parses the wire spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<InstanceStatus> {
        Some(match s {
            "REGISTERING" => InstanceStatus::Registering,
            "REGISTRATION_FAILED" => InstanceStatus::RegistrationFailed,
            "ACTIVE" => InstanceStatus::Active,
            "DRAINING" => InstanceStatus::Draining,
            "DEREGISTERING" => InstanceStatus::Deregistering,
            "INACTIVE" => InstanceStatus::Inactive,
            _ => return None,
        })
    }
}

impl fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount of host resources: what an instance registered, what it has
/// left, or what a task reserves.
///
/// `ports_tcp` / `ports_udp` are *reserved* host ports (the `PORTS` and
/// `PORTS_UDP` string-set resources). CPU is in CPU units (1024 = 1 vCPU),
/// memory in MiB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu: i64,
    pub memory: i64,
    pub ports_tcp: BTreeSet<u16>,
    pub ports_udp: BTreeSet<u16>,
}

impl Resources {
    /// Charges a reservation: CPU and memory go down, the static host ports
    /// join the reserved sets.
    pub fn reserve(&mut self, cpu: i64, memory: i64, tcp: &BTreeSet<u16>, udp: &BTreeSet<u16>) {
        self.cpu -= cpu;
        self.memory -= memory;
        self.ports_tcp.extend(tcp.iter().copied());
        self.ports_udp.extend(udp.iter().copied());
    }
}

/// A task already known to the cluster, as far as placement cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskSnapshot {
    pub arn: String,
    /// Task group (`service:<name>` for service tasks, `family:<name>` by
    /// default for standalone tasks).
    pub group: String,
    pub family: String,
    /// Reserved CPU units (task `cpu`, else the sum of container `cpu`).
    pub cpu: i64,
    /// Reserved MiB (task `memory`, else Σ memoryReservation-or-memory).
    pub memory: i64,
    /// Static TCP host ports (no dynamic ports, no awsvpc ports).
    pub ports_tcp: BTreeSet<u16>,
    /// Static UDP host ports (no dynamic ports, no awsvpc ports).
    pub ports_udp: BTreeSet<u16>,
    pub started_by: Option<String>,
    pub desired_status: String,
    pub last_status: String,
}

impl TaskSnapshot {
    /// Whether the task still holds its reservation: every task whose
    /// `lastStatus` is not `STOPPED` (or `DELETED`), including tasks that are
    /// still stopping. Reserved ports are released only when the task stops.
    pub fn holds_resources(&self) -> bool {
        !RELEASED_STATUSES.contains(&self.last_status.as_str())
    }

    /// Whether the task counts as a live member of its group for `spread`,
    /// `distinctInstance` and `task:group`: it holds resources and nobody has
    /// asked it to stop (`desiredStatus != STOPPED`). Tasks being replaced
    /// (for example on a draining instance) therefore do not skew balance.
    pub fn is_live(&self) -> bool {
        self.holds_resources() && self.desired_status != "STOPPED"
    }

    /// Whether the task counts towards `runningTasksCount`
    /// (`desiredStatus == RUNNING`, as ECS counts it).
    pub fn counts_as_running(&self) -> bool {
        self.desired_status == "RUNNING" && self.holds_resources()
    }
}

/// One container instance as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSnapshot {
    pub arn: String,
    /// `ec2InstanceId`; `None` for instances that have none.
    pub ec2_instance_id: Option<String>,
    pub status: InstanceStatus,
    pub agent_connected: bool,
    /// `versionInfo.agentVersion`, e.g. `1.105.1`.
    pub agent_version: Option<String>,
    /// Registration time, epoch milliseconds.
    pub registered_at: i64,
    /// `registeredResources`; the port sets are the reserved ports.
    pub registered: Resources,
    /// All attributes, including the built-ins the server fills in
    /// (`ecs.os-type`, `ecs.cpu-architecture`, `ecs.availability-zone`,
    /// `ecs.instance-type`, ...). Capability attributes have no value.
    pub attributes: BTreeMap<String, Option<String>>,
    /// Tasks on the instance, in any status; stopped ones are ignored.
    pub running_tasks: Vec<TaskSnapshot>,
}

impl InstanceSnapshot {
    /// A minimal ACTIVE, connected instance with no attributes and no tasks
    /// (a convenience for callers and tests).
    pub fn new(arn: impl Into<String>, cpu: i64, memory: i64) -> InstanceSnapshot {
        InstanceSnapshot {
            arn: arn.into(),
            ec2_instance_id: None,
            status: InstanceStatus::Active,
            agent_connected: true,
            agent_version: None,
            registered_at: 0,
            registered: Resources {
                cpu,
                memory,
                ..Resources::default()
            },
            attributes: BTreeMap::new(),
            running_tasks: Vec::new(),
        }
    }

    /// `remainingResources`: registered minus the reservations of every task
    /// that still holds resources (see [`TaskSnapshot::holds_resources`]).
    pub fn remaining(&self) -> Resources {
        let mut r = self.registered.clone();
        for t in self.running_tasks.iter().filter(|t| t.holds_resources()) {
            r.reserve(t.cpu, t.memory, &t.ports_tcp, &t.ports_udp);
        }
        r
    }

    /// Value of an attribute: `None` if absent, `Some(None)` if present
    /// without a value.
    pub fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes.get(name).map(|v| v.as_deref())
    }

    /// Live tasks (see [`TaskSnapshot::is_live`]).
    pub fn live_tasks(&self) -> impl Iterator<Item = &TaskSnapshot> {
        self.running_tasks.iter().filter(|t| t.is_live())
    }

    /// `runningTasksCount`: tasks whose desired status is RUNNING.
    pub fn running_tasks_count(&self) -> i64 {
        self.running_tasks
            .iter()
            .filter(|t| t.counts_as_running())
            .count() as i64
    }
}

/// Everything the planner may look at: the container instances of one
/// cluster, in a stable order (the order of failures follows it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterSnapshot {
    pub instances: Vec<InstanceSnapshot>,
}

impl ClusterSnapshot {
    pub fn new(instances: Vec<InstanceSnapshot>) -> ClusterSnapshot {
        ClusterSnapshot { instances }
    }

    /// Looks an instance up by ARN.
    pub fn instance(&self, arn: &str) -> Option<&InstanceSnapshot> {
        self.instances.iter().find(|i| i.arn == arn)
    }
}

/// The static host ports a task reserves, from its port mappings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPorts {
    pub tcp: BTreeSet<u16>,
    pub udp: BTreeSet<u16>,
}

/// One port mapping of a container definition, as far as host ports go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortMappingSpec {
    pub container_port: Option<u16>,
    pub host_port: Option<u16>,
    /// `protocol == "udp"`.
    pub udp: bool,
}

/// Which host ports a task reserves (ECS-SEMANTICS 3.2):
///
/// * `awsvpc` (and `none`): nothing, the ports belong to the task ENI;
/// * `host`: `hostPort`, defaulting to `containerPort`;
/// * `bridge` (and any other mode): `hostPort` when it is set and non-zero;
///   an absent or `0` host port is dynamic and reserves nothing (so do
///   `containerPortRange` mappings, which callers simply leave out).
pub fn static_host_ports(network_mode: &str, mappings: &[PortMappingSpec]) -> HostPorts {
    let mut out = HostPorts::default();
    let host_mode = match network_mode {
        "awsvpc" | "none" => return out,
        "host" => true,
        _ => false,
    };
    for m in mappings {
        let port = match m.host_port.filter(|p| *p != 0) {
            Some(p) => Some(p),
            None if host_mode => m.container_port.filter(|p| *p != 0),
            None => None,
        };
        if let Some(p) = port {
            if m.udp {
                out.udp.insert(p);
            } else {
                out.tcp.insert(p);
            }
        }
    }
    out
}
