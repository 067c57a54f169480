//! Adapter between the server's records and the pure scheduler.

use super::instances::InstanceRecord;
use crate::db::Versioned;
use crate::state::Cx;
use stevedore_api::ecs::{Failure, Task};

/// What one task needs from an instance.
#[derive(Debug, Clone)]
pub struct Demand {
    pub cpu: i64,
    pub memory: i64,
    pub ports_tcp: Vec<u16>,
    pub ports_udp: Vec<u16>,
    /// Attribute names (or `name=value`) the instance must have.
    pub required_attributes: Vec<String>,
    pub group: String,
}

pub struct Plan {
    /// Instance ARN for each placed task.
    pub placements: Vec<String>,
    pub failures: Vec<Failure>,
}

pub fn plan(
    cx: &Cx,
    instances: &[&Versioned<InstanceRecord>],
    _tasks: &[Versioned<Task>],
    d: &Demand,
    count: usize,
) -> Plan {
    // First fit over a local copy of the ledgers; replaced by the scheduler crate.
    let mut ledgers: Vec<InstanceRecord> = instances.iter().map(|i| i.value.clone()).collect();
    let mut placements = Vec::new();
    let mut reasons: Vec<(String, String)> = Vec::new();
    for _ in 0..count {
        let mut placed = false;
        for rec in ledgers.iter_mut() {
            let arn = rec.instance.container_instance_arn.clone().unwrap_or_default();
            if !rec.is_active() {
                continue;
            }
            let reason = if !cx.state.heartbeats.connected(&arn) {
                Some("AGENT")
            } else {
                let used_cpu: i64 = rec.allocations.values().map(|a| a.cpu).sum();
                let used_mem: i64 = rec.allocations.values().map(|a| a.memory).sum();
                let mut tcp = rec.registered_ports("PORTS");
                let mut udp = rec.registered_ports("PORTS_UDP");
                for a in rec.allocations.values() {
                    tcp.extend(a.ports_tcp.iter().copied());
                    udp.extend(a.ports_udp.iter().copied());
                }
                if rec.registered_int("CPU") - used_cpu < d.cpu {
                    Some("RESOURCE:CPU")
                } else if rec.registered_int("MEMORY") - used_mem < d.memory {
                    Some("RESOURCE:MEMORY")
                } else if d.ports_tcp.iter().any(|p| tcp.contains(p)) {
                    Some("RESOURCE:PORTS")
                } else if d.ports_udp.iter().any(|p| udp.contains(p)) {
                    Some("RESOURCE:PORTS_UDP")
                } else {
                    None
                }
            };
            match reason {
                Some(r) => reasons.push((arn, r.to_string())),
                None => {
                    rec.allocations.insert(
                        format!("planned-{}", placements.len()),
                        super::instances::Allocation {
                            cpu: d.cpu,
                            memory: d.memory,
                            ports_tcp: d.ports_tcp.clone(),
                            ports_udp: d.ports_udp.clone(),
                        },
                    );
                    placements.push(arn);
                    placed = true;
                    break;
                }
            }
        }
        if !placed {
            break;
        }
    }
    let failures = if placements.len() < instances.len().max(1) && placements.len() < count {
        let mut seen = std::collections::BTreeSet::new();
        reasons
            .into_iter()
            .filter(|(arn, _)| seen.insert(arn.clone()))
            .map(|(arn, reason)| Failure {
                arn: Some(arn),
                reason: Some(reason),
                detail: None,
            })
            .collect()
    } else {
        Vec::new()
    };
    Plan { placements, failures }
}
