//! Adapter between the server's records and the pure scheduler
//! (`stevedore-scheduler`): builds its snapshot, asks for a plan, and turns
//! the answer back into ECS failures.

use super::instances::InstanceRecord;
use super::tasks::task_id;
use crate::db::Versioned;
use crate::error::{ApiError, ApiResult};
use crate::heartbeat::Heartbeats;
use std::collections::BTreeSet;
use stevedore_api::ecs::{Failure, PlacementConstraint, PlacementStrategy, Task};
use stevedore_model::taskdef::{parse_cpu, parse_memory};
use stevedore_scheduler as sched;

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
    pub strategies: Vec<sched::Strategy>,
    pub constraints: Vec<sched::Constraint>,
}

pub struct Plan {
    /// Instance ARN for each placed task.
    pub placements: Vec<String>,
    pub failures: Vec<Failure>,
}

/// Parses the ECS placement parameters, with InvalidParameterException
/// naming the problem.
pub fn parse_placement(
    strategies: &[PlacementStrategy],
    constraints: &[PlacementConstraint],
) -> ApiResult<(Vec<sched::Strategy>, Vec<sched::Constraint>)> {
    if strategies.len() > sched::MAX_STRATEGIES {
        return Err(ApiError::invalid(format!(
            "At most {} placement strategies can be given.",
            sched::MAX_STRATEGIES
        )));
    }
    if constraints.len() > sched::MAX_CONSTRAINTS {
        return Err(ApiError::invalid(format!(
            "At most {} placement constraints can be given.",
            sched::MAX_CONSTRAINTS
        )));
    }
    let s = strategies
        .iter()
        .map(|p| {
            let kind = p
                .r#type
                .as_ref()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default();
            sched::Strategy::parse(&kind, p.field.as_deref())
                .map_err(|e| ApiError::invalid(format!("Invalid placement strategy: {e}")))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let c = constraints
        .iter()
        .map(|p| {
            let kind = p
                .r#type
                .as_ref()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default();
            sched::Constraint::parse(&kind, p.expression.as_deref())
                .map_err(|e| ApiError::invalid(format!("Invalid placement constraint: {e}")))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok((s, c))
}

fn attributes(rec: &InstanceRecord) -> std::collections::BTreeMap<String, Option<String>> {
    rec.instance
        .attributes
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a.name.clone().map(|n| (n, a.value.clone())))
        .collect()
}

/// The scheduler's view of one instance and the tasks on it.
pub fn snapshot_instance(
    heartbeats: &Heartbeats,
    rec: &InstanceRecord,
    tasks: &[Versioned<Task>],
) -> sched::InstanceSnapshot {
    let arn = rec
        .instance
        .container_instance_arn
        .clone()
        .unwrap_or_default();
    let mut s = sched::InstanceSnapshot::new(
        arn.clone(),
        rec.registered_int("CPU"),
        rec.registered_int("MEMORY"),
    );
    s.ec2_instance_id = rec.instance.ec2_instance_id.clone();
    s.status = sched::InstanceStatus::parse(rec.instance.status.as_deref().unwrap_or(""))
        .unwrap_or(sched::InstanceStatus::Inactive);
    s.agent_connected = heartbeats.connected(&arn);
    s.agent_version = rec
        .instance
        .version_info
        .as_ref()
        .and_then(|v| v.agent_version.clone());
    s.registered_at = rec
        .instance
        .registered_at
        .map(|t| t.as_millis())
        .unwrap_or(0);
    s.registered.ports_tcp = rec.registered_ports("PORTS");
    s.registered.ports_udp = rec.registered_ports("PORTS_UDP");
    s.attributes = attributes(rec);
    for t in tasks.iter().map(|v| &v.value) {
        if t.container_instance_arn.as_deref() != Some(arn.as_str()) {
            continue;
        }
        let alloc = rec.allocations.get(task_id(t));
        s.running_tasks.push(sched::TaskSnapshot {
            arn: t.task_arn.clone().unwrap_or_default(),
            group: t.group.clone().unwrap_or_default(),
            family: t
                .task_definition_arn
                .as_deref()
                .and_then(|a| a.rsplit('/').next())
                .and_then(|fr| fr.rsplit_once(':'))
                .map(|(f, _)| f.to_string())
                .unwrap_or_default(),
            cpu: alloc
                .map(|a| a.cpu)
                .or_else(|| t.cpu.as_deref().and_then(parse_cpu).map(i64::from))
                .unwrap_or(0),
            memory: alloc
                .map(|a| a.memory)
                .or_else(|| t.memory.as_deref().and_then(parse_memory).map(i64::from))
                .unwrap_or(0),
            ports_tcp: alloc
                .map(|a| a.ports_tcp.iter().copied().collect())
                .unwrap_or_default(),
            ports_udp: alloc
                .map(|a| a.ports_udp.iter().copied().collect())
                .unwrap_or_default(),
            started_by: t.started_by.clone(),
            desired_status: t.desired_status.clone().unwrap_or_default(),
            last_status: t.last_status.clone().unwrap_or_default(),
        });
    }
    s
}

pub fn plan(
    heartbeats: &Heartbeats,
    instances: &[&Versioned<InstanceRecord>],
    tasks: &[Versioned<Task>],
    d: &Demand,
    count: usize,
) -> Plan {
    let snapshot = sched::ClusterSnapshot::new(
        instances
            .iter()
            .map(|i| snapshot_instance(heartbeats, &i.value, tasks))
            .collect(),
    );
    let req = sched::TaskRequest {
        cpu: d.cpu,
        memory: d.memory,
        ports_tcp: d.ports_tcp.iter().copied().collect::<BTreeSet<_>>(),
        ports_udp: d.ports_udp.iter().copied().collect::<BTreeSet<_>>(),
        group: d.group.clone(),
        required_attributes: d.required_attributes.clone(),
        count: count as u32,
        strategies: if d.strategies.is_empty() {
            sched::default_strategies()
        } else {
            d.strategies.clone()
        },
        constraints: d.constraints.clone(),
        seed: rand::random(),
    };
    let p = sched::plan(&snapshot, &req);
    Plan {
        placements: p.placements,
        failures: p
            .failures
            .into_iter()
            .map(|f| Failure {
                arn: f.arn,
                reason: Some(f.reason.as_str().to_string()),
                detail: None,
            })
            .collect(),
    }
}

/// Whether `d` could be placed on `rec` if it were the only instance and
/// its agent were connected (constraints and attributes only when `d`
/// asks for no resources).
pub fn fits_alone(heartbeats: &Heartbeats, rec: &InstanceRecord, d: &Demand) -> bool {
    let mut snap = snapshot_instance(heartbeats, rec, &[]);
    snap.agent_connected = true;
    let req = sched::TaskRequest {
        cpu: d.cpu,
        memory: d.memory,
        ports_tcp: d.ports_tcp.iter().copied().collect(),
        ports_udp: d.ports_udp.iter().copied().collect(),
        group: d.group.clone(),
        required_attributes: d.required_attributes.clone(),
        count: 1,
        strategies: sched::default_strategies(),
        constraints: d.constraints.clone(),
        seed: 0,
    };
    sched::plan(&sched::ClusterSnapshot::new(vec![snap]), &req)
        .placements
        .len()
        == 1
}

/// For ListContainerInstances `filter`.
pub fn parse_filter(expr: &str) -> ApiResult<sched::Expr> {
    sched::parse_expression(expr)
        .map_err(|e| ApiError::invalid(format!("Invalid filter expression: {e}")))
}
