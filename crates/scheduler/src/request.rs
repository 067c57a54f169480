//! What to place: a task shape, how many, and the placement rules.

use std::collections::BTreeSet;
use std::fmt;

use crate::query::{parse_expression, Expr};

/// ECS limit: strategy rules per service or task.
pub const MAX_STRATEGIES: usize = 5;
/// ECS limit: constraints per service or task, task-definition and runtime
/// constraints counted together.
pub const MAX_CONSTRAINTS: usize = 10;

/// A request to place `count` identical tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskRequest {
    /// CPU units each task reserves (0 = none).
    pub cpu: i64,
    /// MiB each task reserves (0 = none).
    pub memory: i64,
    /// Static TCP host ports (see [`crate::static_host_ports`]).
    pub ports_tcp: BTreeSet<u16>,
    /// Static UDP host ports.
    pub ports_udp: BTreeSet<u16>,
    /// Task group of the new tasks (`service:<name>`, `family:<name>`, or
    /// the RunTask `group`). `spread` and `distinctInstance` count tasks of
    /// this group.
    pub group: String,
    /// Names from the task definition's `requiresAttributes`; an instance
    /// must have every one of them (with any value).
    pub required_attributes: Vec<String>,
    pub count: u32,
    /// Applied in order; empty means [`default_strategies`].
    pub strategies: Vec<Strategy>,
    /// Runtime and task-definition constraints; all must hold. Checked in
    /// this order, which decides the reason reported for an instance that
    /// fails several.
    pub constraints: Vec<Constraint>,
    /// Seed for `random` (the planner has no other source of randomness).
    pub seed: u64,
}

/// A placement strategy rule (`PlacementStrategy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Prefer the instance with the least remaining `field` that still fits.
    Binpack(BinpackField),
    /// Prefer the instance whose `field` value runs the fewest tasks of the
    /// request's group.
    Spread(SpreadField),
    /// Prefer a pseudo-random instance, drawn from [`TaskRequest::seed`].
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinpackField {
    Cpu,
    Memory,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpreadField {
    /// `instanceId` or `host`.
    InstanceId,
    /// `attribute:<name>`, e.g. `attribute:ecs.availability-zone`.
    Attribute(String),
}

/// A placement constraint (`PlacementConstraint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    /// No two live tasks of the request's group on one instance: neither two
    /// tasks of this plan nor a new task next to an existing one.
    DistinctInstance,
    /// Only instances the expression matches.
    MemberOf(Expr),
}

/// A placement rule that cannot be accepted; the server reports the message
/// as `InvalidParameterException`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub message: String,
}

impl SpecError {
    fn new(message: impl Into<String>) -> SpecError {
        SpecError {
            message: message.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecError {}

impl Strategy {
    /// Converts the wire shape (`type`, `field`).
    ///
    /// `random` ignores `field` (ECS: "this field is not used"). Field names
    /// are matched case-insensitively except the attribute name.
    pub fn parse(kind: &str, field: Option<&str>) -> Result<Strategy, SpecError> {
        match kind {
            "random" => Ok(Strategy::Random),
            "binpack" => match field.map(str::to_ascii_lowercase).as_deref() {
                Some("cpu") => Ok(Strategy::Binpack(BinpackField::Cpu)),
                Some("memory") => Ok(Strategy::Binpack(BinpackField::Memory)),
                Some(_) => Err(SpecError::new(format!(
                    "invalid field '{}' for the binpack placement strategy: valid values are cpu and memory",
                    field.unwrap_or_default()
                ))),
                None => Err(SpecError::new(
                    "the binpack placement strategy needs a field: cpu or memory",
                )),
            },
            "spread" => {
                let Some(f) = field else {
                    return Err(SpecError::new(
                        "the spread placement strategy needs a field: instanceId, host or attribute:<name>",
                    ));
                };
                if f.eq_ignore_ascii_case("instanceId") || f.eq_ignore_ascii_case("host") {
                    return Ok(Strategy::Spread(SpreadField::InstanceId));
                }
                match f.strip_prefix("attribute:") {
                    Some(name) if !name.is_empty() => {
                        Ok(Strategy::Spread(SpreadField::Attribute(name.to_string())))
                    }
                    _ => Err(SpecError::new(format!(
                        "invalid field '{f}' for the spread placement strategy: valid values are instanceId, host or attribute:<name>"
                    ))),
                }
            }
            other => Err(SpecError::new(format!(
                "invalid placement strategy type '{other}': valid values are random, spread and binpack"
            ))),
        }
    }
}

impl Constraint {
    /// Converts the wire shape (`type`, `expression`); a bad expression
    /// gives the parser's message.
    pub fn parse(kind: &str, expression: Option<&str>) -> Result<Constraint, SpecError> {
        let expression = expression.filter(|e| !e.trim().is_empty());
        match kind {
            "distinctInstance" => match expression {
                None => Ok(Constraint::DistinctInstance),
                Some(_) => Err(SpecError::new(
                    "an expression cannot be specified for the distinctInstance placement constraint",
                )),
            },
            "memberOf" => match expression {
                None => Err(SpecError::new(
                    "the memberOf placement constraint needs an expression",
                )),
                Some(e) => parse_expression(e)
                    .map(Constraint::MemberOf)
                    .map_err(|err| SpecError::new(format!("invalid memberOf expression: {err}"))),
            },
            other => Err(SpecError::new(format!(
                "invalid placement constraint type '{other}': valid values are distinctInstance and memberOf"
            ))),
        }
    }
}

/// The strategies used when a request gives none.
///
/// ECS documents this default for services (fewest tasks of the service in
/// the AZ, then on the instance); RunTask's default is not documented, so
/// Stevedore uses the same one for both:
/// `spread(attribute:ecs.availability-zone)`, then `spread(instanceId)`.
pub fn default_strategies() -> Vec<Strategy> {
    vec![
        Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".to_string())),
        Strategy::Spread(SpreadField::InstanceId),
    ]
}
