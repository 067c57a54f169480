//! Task placement for Stevedore: a pure function from a read-only cluster
//! snapshot and a placement request to a plan, in the style of Nomad's
//! scheduler (ECS-SEMANTICS section 6; resource accounting from 3.2).
//!
//! # Purity
//!
//! Nothing in this crate does IO, reads a clock or touches global
//! randomness:
//!
//! * the cluster comes in as a [`ClusterSnapshot`] value;
//! * time comes in as data (`registered_at` in epoch milliseconds);
//! * randomness comes from [`TaskRequest::seed`], through a fixed PRNG, so a
//!   given (snapshot, request) always yields the same [`Plan`].
//!
//! That makes every decision reproducible in a test or from a log line, lets
//! the server compute many plans in parallel without locks, and keeps the
//! store the only place where state changes.
//!
//! # Pipeline
//!
//! [`plan()`] places the tasks one by one. For each task it drops instances
//! that are not ACTIVE (silently), then rejects instances in this order,
//! recording the *first* reason for each: `AGENT` (agent disconnected),
//! `ATTRIBUTE` (a `requiresAttributes` name is missing), `RESOURCE:CPU`,
//! `RESOURCE:MEMORY`, `RESOURCE:PORTS`, `RESOURCE:PORTS_UDP`, then each
//! constraint in request order (`DistinctInstance placement constraint
//! unsatisfied.`, `MemberOf placement constraint unsatisfied.`). The
//! survivors are ranked by the strategies ([`Strategy`]); the best one gets
//! the task, and its remaining resources, ports and group counts are
//! updated before the next task, so a plan never over-commits an instance.
//! If a task fits nowhere, planning stops and [`Plan::failures`] lists every
//! ACTIVE instance with its reason; a cluster with no ACTIVE instance gives
//! one failure without ARN, [`Reason::NoContainerInstances`].
//!
//! # Committing a plan (optimistic concurrency)
//!
//! A plan is a proposal computed from a snapshot that may be stale by the
//! time it is applied. The server commits it optimistically:
//!
//! 1. read a snapshot, call [`plan()`] (outside any lock);
//! 2. in the store transaction that creates the tasks, re-read the
//!    instances the plan used and call [`verify_plan`] on the fresh state:
//!    it re-checks status, agent, attributes, CPU, memory, ports and
//!    constraints for each placement in order, charging each one before
//!    the next;
//! 3. if it passes, write the tasks (their reservations become part of the
//!    next snapshot); if it returns a [`Conflict`], abort and go back to 1
//!    with a new snapshot (bounded retries, then report the last plan's
//!    failures).
//!
//! Nothing is ever over-committed, even with several planners racing, and
//! the node agent's own admission check (ECS-SEMANTICS 3.2) is a second line
//! of defence.
//!
//! # Choices where ECS documents nothing
//!
//! * Reason order within an instance is the pipeline order above; the
//!   constraint strings are the ones ECS emits in service events
//!   (`MemberOf placement constraint unsatisfied.`).
//! * UDP port exhaustion is `RESOURCE:PORTS_UDP` (ECS documents
//!   `RESOURCE:*` with the resource name, and that resource is `PORTS_UDP`).
//!   The 100-reserved-ports limit is applied per protocol.
//! * A cluster whose instances are all non-ACTIVE gives the same
//!   `No Container Instances were found in your cluster.` failure as an
//!   empty one.
//! * Default strategies (none given), for RunTask and services alike:
//!   `spread(attribute:ecs.availability-zone)` then `spread(instanceId)`
//!   ([`default_strategies`]).
//! * Ties left after the last strategy go to the lowest instance ARN, so
//!   plans are reproducible; add `random` last to spread ties instead.
//! * `spread` counts live tasks of the request's group (running or pending,
//!   not asked to stop) on every instance of the snapshot, whatever its
//!   status; instances without the attribute share one bucket.
//! * `distinctInstance` looks at live tasks of the request's group on the
//!   instance and at this plan's own placements.
//!
//! # Cluster query language
//!
//! [`parse_expression`] and [`Expr::matches`] implement the ECS cluster
//! query language on their own, for `ListContainerInstances --filter` as
//! well as `memberOf`; see the [`query`] module.

pub mod plan;
pub mod query;
pub mod request;
pub mod snapshot;

pub use plan::{
    plan, verify_plan, Conflict, ConflictReason, Failure, Plan, Reason, MAX_RESERVED_PORTS,
};
pub use query::{parse_expression, Expr, ParseError, MAX_EXPRESSION_LEN};
pub use request::{
    default_strategies, BinpackField, Constraint, SpecError, SpreadField, Strategy, TaskRequest,
    MAX_CONSTRAINTS, MAX_STRATEGIES,
};
pub use snapshot::{
    static_host_ports, ClusterSnapshot, HostPorts, InstanceSnapshot, InstanceStatus,
    PortMappingSpec, Resources, TaskSnapshot,
};
