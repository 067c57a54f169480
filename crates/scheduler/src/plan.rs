//! The planner: `(ClusterSnapshot, TaskRequest) -> Plan`.

use std::collections::BTreeMap;

use crate::request::{
    default_strategies, BinpackField, Constraint, SpreadField, Strategy, TaskRequest,
};
use crate::snapshot::{ClusterSnapshot, InstanceSnapshot, InstanceStatus, Resources};

/// Why a task cannot be placed: an ECS failure `reason`. On the wire (the
/// `reason` of an ECS `Failure`, service events) it is [`Reason::as_str`],
/// verbatim; decide on the variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `AGENT`: the instance's agent is disconnected.
    Agent,
    /// `ATTRIBUTE`: the instance lacks an attribute from
    /// `requiresAttributes`.
    Attribute,
    /// `RESOURCE:CPU`.
    ResourceCpu,
    /// `RESOURCE:MEMORY`.
    ResourceMemory,
    /// `RESOURCE:PORTS`: a static TCP host port is taken (or the instance
    /// would exceed [`MAX_RESERVED_PORTS`]).
    ResourcePorts,
    /// `RESOURCE:PORTS_UDP`: same for UDP. ECS documents `RESOURCE:*` with
    /// the resource's name, and the UDP port resource is named `PORTS_UDP`.
    ResourcePortsUdp,
    /// `MemberOf placement constraint unsatisfied.`
    MemberOf,
    /// `DistinctInstance placement constraint unsatisfied.`
    DistinctInstance,
    /// `No Container Instances were found in your cluster.`: the cluster
    /// has no ACTIVE container instance. RunTask raises this as
    /// `InvalidParameterException`; a service emits `... was unable to place
    /// a task because no container instance met all of its requirements.
    /// Reason: No Container Instances were found in your cluster.`
    NoContainerInstances,
    /// `MISSING`: the instance does not exist (any longer), as for a named
    /// instance in StartTask, or in [`verify_plan`].
    Missing,
}

impl Reason {
    pub const ALL: [Reason; 10] = [
        Reason::Agent,
        Reason::Attribute,
        Reason::ResourceCpu,
        Reason::ResourceMemory,
        Reason::ResourcePorts,
        Reason::ResourcePortsUdp,
        Reason::MemberOf,
        Reason::DistinctInstance,
        Reason::NoContainerInstances,
        Reason::Missing,
    ];

    /// The wire text, as ECS spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Agent => "AGENT",
            Reason::Attribute => "ATTRIBUTE",
            Reason::ResourceCpu => "RESOURCE:CPU",
            Reason::ResourceMemory => "RESOURCE:MEMORY",
            Reason::ResourcePorts => "RESOURCE:PORTS",
            Reason::ResourcePortsUdp => "RESOURCE:PORTS_UDP",
            Reason::MemberOf => "MemberOf placement constraint unsatisfied.",
            Reason::DistinctInstance => "DistinctInstance placement constraint unsatisfied.",
            Reason::NoContainerInstances => "No Container Instances were found in your cluster.",
            Reason::Missing => "MISSING",
        }
    }

    /// Parses the wire text; `None` for anything else (a reason that is not
    /// a placement reason, e.g. one a newer server wrote).
    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ECS limit on reserved host ports per instance and protocol, counting the
/// ones reserved at registration. Dynamic ports do not count.
pub const MAX_RESERVED_PORTS: usize = 100;

/// Why a task could not be placed on an instance (`Failure` in RunTask).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The container instance, or `None` for cluster-wide failures.
    pub arn: Option<String>,
    pub reason: Reason,
}

/// The outcome of [`plan()`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Instance ARN for each placed task, in placement order. Shorter than
    /// `count` when not every task fits.
    pub placements: Vec<String>,
    /// Empty when every task was placed. Otherwise one entry per ACTIVE
    /// instance, in snapshot order, with the first reason it rejected the
    /// first task that could not be placed; or a single
    /// [`Reason::NoContainerInstances`] entry without ARN.
    pub failures: Vec<Failure>,
}

/// A placement that no longer holds at commit time (see [`verify_plan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Index into the plan's placements.
    pub index: usize,
    pub instance_arn: String,
    pub reason: ConflictReason,
}

/// Why a placement no longer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictReason {
    /// The instance would refuse the task now, or is gone
    /// ([`Reason::Missing`]).
    Refused(Reason),
    /// The instance is no longer ACTIVE (`DRAINING`, ...).
    NotActive(InstanceStatus),
}

impl ConflictReason {
    /// The wire text: the ECS failure reason or the instance's status.
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictReason::Refused(r) => r.as_str(),
            ConflictReason::NotActive(s) => s.as_str(),
        }
    }
}

impl std::fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Places `req.count` tasks on `snapshot`, one at a time.
///
/// For each task: keep the ACTIVE instances that pass every check (agent
/// connected, required attributes, CPU, memory, TCP ports, UDP ports, then
/// the constraints in request order), rank them by the strategies
/// lexicographically (the first strategy decides, later ones break its ties,
/// the instance ARN breaks what is left), take the best and charge the task
/// to it, so the next task sees what is left. Planning stops at the first
/// task that fits nowhere: the request is uniform and resources only shrink,
/// so no later task could fit either.
pub fn plan(snapshot: &ClusterSnapshot, req: &TaskRequest) -> Plan {
    let mut out = Plan::default();
    if req.count == 0 {
        return out;
    }
    let mut state = State::new(snapshot, req);
    let active: Vec<usize> = (0..state.slots.len())
        .filter(|i| state.slots[*i].inst.status == InstanceStatus::Active)
        .collect();
    if active.is_empty() {
        out.failures.push(Failure {
            arn: None,
            reason: Reason::NoContainerInstances,
        });
        return out;
    }
    let default;
    let strategies: &[Strategy] = if req.strategies.is_empty() {
        default = default_strategies();
        &default
    } else {
        &req.strategies
    };
    let uses_random = strategies.contains(&Strategy::Random);
    let mut rng = SplitMix64(req.seed);

    for _ in 0..req.count {
        let mut best: Option<(Vec<i128>, usize)> = None;
        let mut rejections = Vec::new();
        for &i in &active {
            match state.check(i) {
                Err(r) => rejections.push((i, r)),
                Ok(()) => {
                    let key = state.rank_key(i, strategies, uses_random.then_some(&mut rng));
                    let better = match &best {
                        None => true,
                        Some((bk, bi)) => {
                            (&key, &state.slots[i].inst.arn) < (bk, &state.slots[*bi].inst.arn)
                        }
                    };
                    if better {
                        best = Some((key, i));
                    }
                }
            }
        }
        match best {
            Some((_, i)) => {
                state.charge(i);
                out.placements.push(state.slots[i].inst.arn.clone());
            }
            None => {
                out.failures = rejections
                    .into_iter()
                    .map(|(i, r)| Failure {
                        arn: Some(state.slots[i].inst.arn.clone()),
                        reason: r,
                    })
                    .collect();
                break;
            }
        }
    }
    out
}

/// Re-checks `placements` (a plan for `req`, possibly computed from an
/// older snapshot) against `current`, in order, charging each placement
/// before checking the next. The applier calls this at commit time, inside
/// the same transaction that writes the tasks; on `Err` it discards the
/// plan and plans again from a fresh snapshot.
///
/// Strategies are not re-checked (they are best effort); everything binding
/// is: the instance exists and is ACTIVE, the agent is connected, required
/// attributes, CPU, memory, ports, and the constraints.
pub fn verify_plan(
    current: &ClusterSnapshot,
    req: &TaskRequest,
    placements: &[String],
) -> Result<(), Conflict> {
    let mut state = State::new(current, req);
    for (index, arn) in placements.iter().enumerate() {
        let conflict = |reason: ConflictReason| Conflict {
            index,
            instance_arn: arn.clone(),
            reason,
        };
        let Some(i) = state.slots.iter().position(|s| &s.inst.arn == arn) else {
            return Err(conflict(ConflictReason::Refused(Reason::Missing)));
        };
        let status = state.slots[i].inst.status;
        if status != InstanceStatus::Active {
            return Err(conflict(ConflictReason::NotActive(status)));
        }
        state
            .check(i)
            .map_err(|r| conflict(ConflictReason::Refused(r)))?;
        state.charge(i);
    }
    Ok(())
}

/// Per-instance working state.
struct Slot<'a> {
    inst: &'a InstanceSnapshot,
    remaining: Resources,
    /// Live tasks of the request's group already on the instance.
    group_tasks: i64,
    /// Tasks this plan has put on the instance.
    planned: usize,
}

struct State<'a> {
    req: &'a TaskRequest,
    slots: Vec<Slot<'a>>,
    /// For each `spread(attribute:<name>)`: tasks of the request's group per
    /// attribute value, over the whole cluster. Instances without the
    /// attribute (or with no value) share the `None` bucket.
    spread: BTreeMap<&'a str, BTreeMap<Option<&'a str>, i64>>,
}

impl<'a> State<'a> {
    fn new(snapshot: &'a ClusterSnapshot, req: &'a TaskRequest) -> State<'a> {
        let slots: Vec<Slot<'a>> = snapshot
            .instances
            .iter()
            .map(|inst| Slot {
                inst,
                remaining: inst.remaining(),
                group_tasks: inst.live_tasks().filter(|t| t.group == req.group).count() as i64,
                planned: 0,
            })
            .collect();
        let mut spread: BTreeMap<&'a str, BTreeMap<Option<&'a str>, i64>> = BTreeMap::new();
        let strategies = if req.strategies.is_empty() {
            None
        } else {
            Some(&req.strategies)
        };
        let attribute_names: Vec<&'a str> = match strategies {
            Some(s) => s
                .iter()
                .filter_map(|s| match s {
                    Strategy::Spread(SpreadField::Attribute(name)) => Some(name.as_str()),
                    _ => None,
                })
                .collect(),
            None => vec![DEFAULT_SPREAD_ATTRIBUTE],
        };
        for name in attribute_names {
            let counts = spread.entry(name).or_default();
            for slot in &slots {
                *counts.entry(attribute_value(slot.inst, name)).or_default() += slot.group_tasks;
            }
        }
        State { req, slots, spread }
    }

    /// The first reason instance `i` cannot take one more task.
    fn check(&self, i: usize) -> Result<(), Reason> {
        let slot = &self.slots[i];
        let (inst, req, rem) = (slot.inst, self.req, &slot.remaining);
        if !inst.agent_connected {
            return Err(Reason::Agent);
        }
        if req
            .required_attributes
            .iter()
            .any(|a| !has_required_attribute(inst, a))
        {
            return Err(Reason::Attribute);
        }
        if req.cpu > 0 && rem.cpu < req.cpu {
            return Err(Reason::ResourceCpu);
        }
        if req.memory > 0 && rem.memory < req.memory {
            return Err(Reason::ResourceMemory);
        }
        let ports_clash = |want: &std::collections::BTreeSet<u16>,
                           have: &std::collections::BTreeSet<u16>| {
            !want.is_empty()
                && (want.iter().any(|p| have.contains(p))
                    || have.len() + want.len() > MAX_RESERVED_PORTS)
        };
        if ports_clash(&req.ports_tcp, &rem.ports_tcp) {
            return Err(Reason::ResourcePorts);
        }
        if ports_clash(&req.ports_udp, &rem.ports_udp) {
            return Err(Reason::ResourcePortsUdp);
        }
        for c in &req.constraints {
            match c {
                Constraint::DistinctInstance => {
                    if slot.group_tasks > 0 || slot.planned > 0 {
                        return Err(Reason::DistinctInstance);
                    }
                }
                Constraint::MemberOf(expr) => {
                    let planned = vec![req.group.as_str(); slot.planned];
                    if !expr.matches_with(inst, &planned) {
                        return Err(Reason::MemberOf);
                    }
                }
            }
        }
        Ok(())
    }

    /// Ranking key of a feasible instance: lower is better.
    fn rank_key(
        &self,
        i: usize,
        strategies: &[Strategy],
        rng: Option<&mut SplitMix64>,
    ) -> Vec<i128> {
        let slot = &self.slots[i];
        // One draw per candidate and task, shared by repeated `random` rules.
        let random = rng.map(|r| r.next_u64()).unwrap_or(0);
        strategies
            .iter()
            .map(|s| match s {
                Strategy::Binpack(BinpackField::Cpu) => i128::from(slot.remaining.cpu),
                Strategy::Binpack(BinpackField::Memory) => i128::from(slot.remaining.memory),
                Strategy::Spread(SpreadField::InstanceId) => {
                    i128::from(slot.group_tasks) + slot.planned as i128
                }
                Strategy::Spread(SpreadField::Attribute(name)) => {
                    let value = attribute_value(slot.inst, name);
                    i128::from(
                        self.spread
                            .get(name.as_str())
                            .and_then(|m| m.get(&value))
                            .copied()
                            .unwrap_or(0),
                    )
                }
                Strategy::Random => i128::from(random),
            })
            .collect()
    }

    /// Charges one task to instance `i`.
    fn charge(&mut self, i: usize) {
        let req = self.req;
        let slot = &mut self.slots[i];
        slot.remaining
            .reserve(req.cpu, req.memory, &req.ports_tcp, &req.ports_udp);
        slot.planned += 1;
        let inst = slot.inst;
        for (name, counts) in self.spread.iter_mut() {
            *counts.entry(attribute_value(inst, name)).or_default() += 1;
        }
    }
}

const DEFAULT_SPREAD_ATTRIBUTE: &str = "ecs.availability-zone";

fn attribute_value<'a>(inst: &'a InstanceSnapshot, name: &str) -> Option<&'a str> {
    inst.attribute(name).flatten()
}

/// SplitMix64: a tiny, stable PRNG, so a seed gives the same plan on every
/// platform and dependency version.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A required attribute is a name (present with any value), or `name=value`
/// (present with exactly that value), as ECS's `requiresAttributes` and
/// `runtimePlatform` checks need: `ecs.cpu-architecture=arm64` must not be
/// met by an x86_64 host that merely has the attribute.
fn has_required_attribute(inst: &InstanceSnapshot, required: &str) -> bool {
    match required.split_once('=') {
        Some((name, value)) => inst.attribute(name) == Some(Some(value)),
        None => inst.attribute(required).is_some(),
    }
}
