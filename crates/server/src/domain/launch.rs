//! One launch path. RunTask, StartTask and the service controller place
//! and commit tasks here: `prepare` validates a [`LaunchRequest`] against
//! the cluster and the resolved task definition, `launch` plans with the
//! pure scheduler and commits the plan.
//!
//! Placement is optimistic: a plan is computed from a snapshot of the
//! cluster's instances, then committed in one transaction that compares
//! every instance it placed on; a lost race re-plans.
//!
//! Who asked is the caller's business: this module takes the store, the
//! tenant's scope, `now` and the heartbeats in a [`LaunchEnv`], never a
//! request context.

use super::clusters::load_active;
use super::instances::{all_instances, load_instance, Allocation, InstanceRecord};
use super::placement::{self, Demand};
use super::task_definitions::{resolve, TaskDefRecord};
use super::tasks::{load_task, task_id};
use crate::db::{self, Versioned};
use crate::error::{ApiError, ApiResult};
use crate::heartbeat::Heartbeats;
use serde::{Deserialize, Serialize};
use stevedore_api::agent::TaskStatus;
use stevedore_api::ecs::*;
use stevedore_api::Timestamp;
use stevedore_model::arn::Scope;
use stevedore_model::taskdef::{parse_cpu, parse_memory, unsupported_for_run};
use stevedore_model::{keys, tags as tag_rules};
use stevedore_scheduler::Reason;
use stevedore_store::Store;

/// What a launch reads and writes with, passed in by the caller.
#[derive(Clone, Copy)]
pub struct LaunchEnv<'a> {
    pub store: &'a dyn Store,
    pub scope: &'a Scope,
    /// Stamped on the new task records (`createdAt`).
    pub now: Timestamp,
    /// Placement skips instances whose agent is not connected.
    pub heartbeats: &'a Heartbeats,
}

/// Where a launch's tasks go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `count` tasks wherever placement puts them (RunTask, a service's
    /// replicas). A retry with the same client token returns the first
    /// answer instead of launching again.
    Cluster {
        count: usize,
        client_token: Option<String>,
    },
    /// One task on each named container instance, given by ARN or id
    /// (StartTask, a DAEMON start). A name that matches no instance of the
    /// cluster is a MISSING failure.
    EachInstance(Vec<String>),
}

/// Everything a launch asks for, as RunTask, StartTask or a service
/// deployment states it.
#[derive(Debug, Clone)]
pub struct LaunchRequest {
    /// The `cluster` parameter (name or ARN; `None` is `default`).
    pub cluster: Option<String>,
    /// The `taskDefinition` parameter: family, family:revision or ARN.
    pub task_definition: String,
    /// A service deployment may keep running a revision deregistered after
    /// it was chosen, as ECS allows; RunTask and StartTask need an ACTIVE one.
    pub allow_inactive_task_definition: bool,
    pub launch_type: Option<LaunchType>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub platform_version: Option<String>,
    pub overrides: Option<TaskOverride>,
    /// Default: `family:FAMILY`.
    pub group: Option<String>,
    pub started_by: Option<String>,
    pub tags: Vec<Tag>,
    pub enable_ecs_managed_tags: bool,
    pub propagate_tags: Option<PropagateTags>,
    pub network_configuration: Option<NetworkConfiguration>,
    pub enable_execute_command: bool,
    pub volume_configurations: Vec<TaskVolumeConfiguration>,
    pub placement_strategy: Vec<PlacementStrategy>,
    pub placement_constraints: Vec<PlacementConstraint>,
    pub target: Target,
}

impl LaunchRequest {
    /// A request for `task_definition` on `cluster` that asks for nothing
    /// else; callers set the fields their operation has with `..`.
    pub fn new(cluster: Option<String>, task_definition: String, target: Target) -> Self {
        LaunchRequest {
            cluster,
            task_definition,
            allow_inactive_task_definition: false,
            launch_type: None,
            capacity_provider_strategy: None,
            platform_version: None,
            overrides: None,
            group: None,
            started_by: None,
            tags: Vec::new(),
            enable_ecs_managed_tags: false,
            propagate_tags: None,
            network_configuration: None,
            enable_execute_command: false,
            volume_configurations: Vec::new(),
            placement_strategy: Vec::new(),
            placement_constraints: Vec::new(),
            target,
        }
    }
}

/// A validated launch: the request resolved against the cluster and the
/// task definition, ready to place.
#[derive(Debug, Clone)]
pub struct Launch {
    pub cluster: Cluster,
    pub td: TaskDefinition,
    pub launch_type: LaunchType,
    pub capacity_provider: Option<String>,
    /// FARGATE only: the version asked for (default LATEST).
    pub platform_version: Option<String>,
    /// Set per start by callers that reuse one prepared launch.
    pub target: Target,
    overrides: TaskOverride,
    group: String,
    started_by: Option<String>,
    tags: Vec<Tag>,
    network: Option<NetworkConfiguration>,
    strategies: Vec<stevedore_scheduler::Strategy>,
    constraints: Vec<stevedore_scheduler::Constraint>,
}

/// What a launch placed, and the instances that could not take a task.
#[derive(Debug, Clone, Default)]
pub struct Launched {
    pub tasks: Vec<Task>,
    pub failures: Vec<Failure>,
}

/// Why a prepared launch placed nothing at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchError {
    /// The cluster has no ACTIVE container instance. RunTask answers
    /// InvalidParameterException; a service reports it in an event.
    NoContainerInstances,
    /// The store failed, or every compare-and-set retry lost its race.
    Failed(ApiError),
}

impl From<ApiError> for LaunchError {
    fn from(e: ApiError) -> Self {
        LaunchError::Failed(e)
    }
}

impl From<LaunchError> for ApiError {
    fn from(e: LaunchError) -> Self {
        match e {
            LaunchError::NoContainerInstances => {
                ApiError::invalid(Reason::NoContainerInstances.as_str())
            }
            LaunchError::Failed(e) => e,
        }
    }
}

impl std::fmt::Display for LaunchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LaunchError::NoContainerInstances => f.write_str(Reason::NoContainerInstances.as_str()),
            LaunchError::Failed(e) => f.write_str(&e.message),
        }
    }
}

/// What a clientToken produced, so a retried RunTask returns the same tasks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenRecord {
    task_arns: Vec<String>,
    failures: Vec<Failure>,
}

/// ECS takes `platformVersion` only for FARGATE. Stevedore runs one Fargate
/// platform, so LATEST and 1.4.0 are the versions it can honour (tasks report
/// 1.4.0, what LATEST resolves to); anything else is refused by name rather
/// than accepted and ignored.
fn check_platform_version<'a>(
    launch_type: &LaunchType,
    given: Option<&'a str>,
) -> ApiResult<Option<&'a str>> {
    if *launch_type == LaunchType::Fargate {
        let pv = given.unwrap_or("LATEST");
        if !matches!(pv, "LATEST" | "1.4.0") {
            return Err(ApiError::invalid(format!(
                "platformVersion '{pv}' is not available: Stevedore offers LATEST (1.4.0)."
            )));
        }
        Ok(Some(pv))
    } else if let Some(pv) = given {
        Err(ApiError::invalid(format!(
            "platformVersion '{pv}' is only valid for the FARGATE launch type; leave it out for {}.",
            launch_type.as_str()
        )))
    } else {
        Ok(None)
    }
}

fn network_mode(td: &TaskDefinition) -> NetworkMode {
    td.network_mode.clone().unwrap_or(NetworkMode::Bridge)
}

fn check_overrides(td: &TaskDefinition, o: &TaskOverride) -> ApiResult<()> {
    let names: Vec<&str> = td
        .container_definitions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.name.as_deref())
        .collect();
    for co in o.container_overrides.as_deref().unwrap_or_default() {
        let n = co.name.as_deref().unwrap_or("");
        if !names.contains(&n) {
            return Err(ApiError::invalid(format!(
                "overrides.containerOverrides names container '{n}', which is not in the task definition."
            )));
        }
        if co.environment_files.as_ref().is_some_and(|v| !v.is_empty()) {
            return Err(ApiError::unsupported(
                "environmentFiles (S3) cannot be fetched by Stevedore; use environment instead.",
            ));
        }
        if co
            .resource_requirements
            .as_ref()
            .is_some_and(|v| !v.is_empty())
        {
            return Err(ApiError::unsupported(
                "resourceRequirements (GPUs) are not supported yet.",
            ));
        }
        for (f, v) in [
            ("memory", co.memory),
            ("memoryReservation", co.memory_reservation),
        ] {
            if v.is_some_and(|m| m < 6) {
                return Err(ApiError::invalid(format!(
                    "overrides for container '{n}': {f} must be at least 6 MiB."
                )));
            }
        }
        if co.cpu.is_some_and(|c| c < 0) {
            return Err(ApiError::invalid(format!(
                "overrides for container '{n}': cpu must not be negative."
            )));
        }
    }
    if let Some(c) = &o.cpu {
        parse_cpu(c)
            .ok_or_else(|| ApiError::invalid(format!("overrides.cpu '{c}' is not a CPU value.")))?;
    }
    if let Some(m) = &o.memory {
        parse_memory(m).ok_or_else(|| {
            ApiError::invalid(format!("overrides.memory '{m}' is not a memory value."))
        })?;
    }
    if o.inference_accelerator_overrides
        .as_ref()
        .is_some_and(|v| !v.is_empty())
    {
        return Err(ApiError::unsupported(
            "inferenceAcceleratorOverrides are not supported.",
        ));
    }
    if o.task_role_arn.is_some() {
        return Err(ApiError::unsupported(
            "overrides.taskRoleArn is not supported: Stevedore has no IAM, so task role credentials cannot be provided.",
        ));
    }
    if o.ephemeral_storage.is_some() {
        return Err(ApiError::unsupported(
            "overrides.ephemeralStorage is not supported yet.",
        ));
    }
    Ok(())
}

fn check_network(td: &TaskDefinition, net: &Option<NetworkConfiguration>) -> ApiResult<()> {
    let awsvpc = network_mode(td) == NetworkMode::Awsvpc;
    match (
        awsvpc,
        net.as_ref().and_then(|n| n.awsvpc_configuration.as_ref()),
    ) {
        (true, None) => Err(ApiError::invalid(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        )),
        (false, Some(_)) => Err(ApiError::invalid(
            "networkConfiguration is only valid for task definitions with networkMode 'awsvpc'.",
        )),
        (true, Some(cfg)) => {
            if cfg.security_groups.as_ref().is_some_and(|v| !v.is_empty()) {
                return Err(ApiError::unsupported(
                    "securityGroups are not enforced by Stevedore, so they are refused: every awsvpc task of a cluster shares the cluster network. Leave securityGroups out.",
                ));
            }
            if matches!(cfg.assign_public_ip, Some(AssignPublicIp::Enabled)) {
                return Err(ApiError::unsupported(
                    "assignPublicIp ENABLED is not supported: tasks get an address on the cluster network only.",
                ));
            }
            Ok(())
        }
        (false, None) => Ok(()),
    }
}

fn resolve_launch_type(
    cluster: &Cluster,
    launch_type: Option<&LaunchType>,
    strategy: Option<&[CapacityProviderStrategyItem]>,
) -> ApiResult<(LaunchType, Option<String>)> {
    let strategy = strategy.filter(|s| !s.is_empty());
    // Giving both a launch type and a strategy is refused first, below.
    if let (Some(s), None) = (strategy, launch_type) {
        check_strategy(cluster, s, "capacityProviderStrategy")?;
    } else if launch_type.is_none() {
        if let Some(d) = cluster
            .default_capacity_provider_strategy
            .as_deref()
            .filter(|d| !d.is_empty())
        {
            check_strategy(cluster, d, "the cluster's defaultCapacityProviderStrategy")?;
        }
    }
    let provider_to_launch = |p: &str| -> ApiResult<(LaunchType, Option<String>)> {
        if matches!(p, "FARGATE" | "FARGATE_SPOT") {
            Ok((LaunchType::Fargate, Some(p.to_string())))
        } else {
            Err(ApiError::invalid(format!(
                "The capacity provider '{p}' does not exist; Stevedore clusters use FARGATE and FARGATE_SPOT."
            )))
        }
    };
    match (launch_type, strategy) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "Specifying both a launch type and capacity provider strategy is not supported. Give one of them.",
        )),
        (Some(LaunchType::ManagedInstances), None) => Err(ApiError::unsupported(
            "The MANAGED_INSTANCES launch type is not supported.",
        )),
        (Some(lt), None) => Ok((lt.clone(), None)),
        (None, Some(s)) => pick_provider(s).map_or_else(
            || Err(ApiError::invalid("capacityProviderStrategy must name a capacity provider.")),
            provider_to_launch,
        ),
        (None, None) => {
            let default = cluster.default_capacity_provider_strategy.as_deref().unwrap_or_default();
            match pick_provider(default) {
                Some(p) => provider_to_launch(p),
                None => Ok((LaunchType::Ec2, None)),
            }
        }
    }
}

/// ECS refuses providers the cluster does not list. `base` and `weight`
/// spread a launch's tasks over several providers; Stevedore places every
/// task of a launch with one provider, so a strategy naming more than one is
/// refused by name rather than silently collapsed onto one.
fn check_strategy(
    cluster: &Cluster,
    s: &[CapacityProviderStrategyItem],
    what: &str,
) -> ApiResult<()> {
    let attached = cluster.capacity_providers.as_deref().unwrap_or_default();
    for item in s {
        let name = item.capacity_provider.as_deref().unwrap_or_default();
        if !attached.iter().any(|p| p == name) {
            return Err(ApiError::invalid(
                "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.",
            ));
        }
    }
    let mut names: Vec<&str> = s
        .iter()
        .filter_map(|i| i.capacity_provider.as_deref())
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.len() > 1 {
        return Err(ApiError::unsupported(format!(
            "{what} names {} capacity providers ({}); Stevedore places all tasks of a launch with one provider, so base/weight splits across providers are not supported. Name one capacity provider.",
            names.len(),
            names.join(", ")
        )));
    }
    Ok(())
}

/// The provider a single task goes to: one with a base first, else the
/// heaviest weight (ties: first listed).
fn pick_provider(s: &[CapacityProviderStrategyItem]) -> Option<&str> {
    s.iter()
        .find(|i| i.base.unwrap_or(0) > 0)
        .or_else(|| {
            s.iter()
                .filter(|i| i.weight.unwrap_or(0) > 0)
                .max_by_key(|i| i.weight.unwrap_or(0))
        })
        .or_else(|| s.first())
        .and_then(|i| i.capacity_provider.as_deref())
}

/// Validates a launch the way RunTask does, in ECS's order of checks, and
/// resolves its cluster, task definition, launch type and placement.
pub fn prepare(env: &LaunchEnv<'_>, req: LaunchRequest) -> ApiResult<Launch> {
    let LaunchRequest {
        cluster,
        task_definition,
        allow_inactive_task_definition,
        launch_type,
        capacity_provider_strategy,
        platform_version,
        overrides,
        group,
        started_by,
        tags,
        enable_ecs_managed_tags,
        propagate_tags,
        network_configuration: network,
        enable_execute_command,
        volume_configurations,
        placement_strategy,
        placement_constraints,
        target,
    } = req;
    let cluster = load_active(env.store, env.scope, cluster.as_deref())?.value;
    if enable_execute_command {
        return Err(ApiError::invalid(
            "enableExecuteCommand is not supported yet: Stevedore has no ECS Exec.",
        ));
    }
    if !volume_configurations.is_empty() {
        return Err(ApiError::unsupported(
            "volumeConfigurations (EBS) are not supported.",
        ));
    }
    let (_, td_rec) = resolve(env.store, env.scope, &task_definition)?
        .ok_or_else(|| ApiError::client("Unable to find task definition."))?;
    let TaskDefRecord {
        definition: td,
        tags: td_tags,
    } = td_rec.value;
    if td.status != Some(TaskDefinitionStatus::Active) && !allow_inactive_task_definition {
        return Err(ApiError::client(format!(
            "TaskDefinition {} is inactive and cannot be used to start tasks.",
            td.task_definition_arn
                .as_deref()
                .unwrap_or(&task_definition)
        )));
    }
    if let Some(why) = unsupported_for_run(&td) {
        return Err(ApiError::unsupported(why));
    }
    let (launch_type, capacity_provider) = resolve_launch_type(
        &cluster,
        launch_type.as_ref(),
        capacity_provider_strategy.as_deref(),
    )?;
    let compatible = td
        .compatibilities
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|c| c.as_str() == launch_type.as_str());
    if !compatible {
        return Err(ApiError::invalid(format!(
            "Task definition does not support launch_type {}.",
            launch_type.as_str()
        )));
    }
    check_network(&td, &network)?;
    let overrides = overrides.unwrap_or_default();
    check_overrides(&td, &overrides)?;
    if let Some(s) = &started_by {
        if s.len() > 128 {
            return Err(ApiError::invalid(
                "startedBy must be at most 128 characters.",
            ));
        }
    }
    let mut tags = tag_rules::validate(&tags)?;
    match propagate_tags {
        Some(PropagateTags::TaskDefinition) => {
            for t in &td_tags {
                if !tags.iter().any(|x| x.key == t.key) {
                    tags.push(t.clone());
                }
            }
        }
        Some(PropagateTags::Service) => {
            return Err(ApiError::invalid(
                "propagateTags SERVICE is only valid for tasks started by a service.",
            ))
        }
        _ => {}
    }
    if enable_ecs_managed_tags {
        tags.push(Tag {
            key: Some("aws:ecs:clusterName".into()),
            value: cluster.cluster_name.clone(),
        });
    }
    if tags.len() > tag_rules::MAX_TAGS {
        return Err(ApiError::invalid("A task can have at most 50 tags."));
    }
    // Constraints of the task definition apply to every launch of it.
    let td_constraints: Vec<PlacementConstraint> = td
        .placement_constraints
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|c| PlacementConstraint {
            r#type: c
                .r#type
                .as_ref()
                .map(|t| PlacementConstraintType::from(t.as_str())),
            expression: c.expression.clone(),
        })
        .collect();
    let mut all_constraints = placement_constraints;
    all_constraints.extend(td_constraints);
    let (strategies, constraints) =
        placement::parse_placement(&placement_strategy, &all_constraints)?;
    let platform_version =
        check_platform_version(&launch_type, platform_version.as_deref())?.map(str::to_string);
    let family = td.family.clone().unwrap_or_default();
    Ok(Launch {
        cluster,
        td,
        launch_type,
        capacity_provider,
        platform_version,
        target,
        overrides,
        group: group.unwrap_or_else(|| format!("family:{family}")),
        started_by,
        tags,
        network,
        strategies,
        constraints,
    })
}

/// What a task of this launch reserves on an instance.
fn demand(l: &Launch) -> Demand {
    let containers = l.td.container_definitions.as_deref().unwrap_or_default();
    let over = |name: &str| {
        l.overrides
            .container_overrides
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|o| o.name.as_deref() == Some(name))
    };
    let task_cpu = l
        .overrides
        .cpu
        .as_deref()
        .or(l.td.cpu.as_deref())
        .and_then(parse_cpu);
    let task_mem = l
        .overrides
        .memory
        .as_deref()
        .or(l.td.memory.as_deref())
        .and_then(parse_memory);
    let cpu = match task_cpu {
        Some(c) => c as i64,
        None => containers
            .iter()
            .map(|c| {
                let o = over(c.name.as_deref().unwrap_or(""));
                o.and_then(|o| o.cpu).or(c.cpu).unwrap_or(0).max(0) as i64
            })
            .sum(),
    };
    let memory = match task_mem {
        Some(m) => m as i64,
        None => containers
            .iter()
            .map(|c| {
                let o = over(c.name.as_deref().unwrap_or(""));
                let reservation = o
                    .and_then(|o| o.memory_reservation)
                    .or(c.memory_reservation);
                let hard = o.and_then(|o| o.memory).or(c.memory);
                reservation.or(hard).unwrap_or(0).max(0) as i64
            })
            .sum(),
    };
    let mode = network_mode(&l.td);
    let mut tcp = Vec::new();
    let mut udp = Vec::new();
    if mode != NetworkMode::Awsvpc {
        for c in containers {
            for p in c.port_mappings.as_deref().unwrap_or_default() {
                let host = match mode {
                    NetworkMode::Host => p.container_port,
                    _ => p.host_port.filter(|h| *h > 0),
                };
                if let Some(h) = host.and_then(|h| u16::try_from(h).ok()) {
                    match p.protocol {
                        Some(TransportProtocol::Udp) => udp.push(h),
                        _ => tcp.push(h),
                    }
                }
            }
        }
    }
    let mut required: Vec<String> =
        l.td.requires_attributes
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a.name.clone())
            .collect();
    if let Some(rp) = &l.td.runtime_platform {
        // Agents register `ecs.os-family` (LINUX on Linux hosts), so a Windows
        // definition finds no instance (ATTRIBUTE) instead of landing on Linux.
        if let Some(family) = &rp.operating_system_family {
            required.push(format!("ecs.os-family={}", family.as_str()));
        }
        if let Some(arch) = &rp.cpu_architecture {
            required.push(format!(
                "ecs.cpu-architecture={}",
                match arch.as_str() {
                    "ARM64" => "arm64",
                    _ => "x86_64",
                }
            ));
        }
    }
    Demand {
        cpu,
        memory,
        ports_tcp: tcp,
        ports_udp: udp,
        required_attributes: required,
        group: l.group.clone(),
        strategies: l.strategies.clone(),
        constraints: l.constraints.clone(),
    }
}

/// DAEMON eligibility: the instance satisfies the launch's constraints and
/// required attributes, resources and agent connectivity aside.
pub fn fits_constraints(heartbeats: &Heartbeats, l: &Launch, inst: &InstanceRecord) -> bool {
    let mut d = demand(l);
    d.cpu = 0;
    d.memory = 0;
    d.ports_tcp.clear();
    d.ports_udp.clear();
    placement::fits_alone(heartbeats, inst, &d)
}

/// Builds a new task record in PROVISIONING/PENDING on `instance_arn`.
fn new_task(env: &LaunchEnv<'_>, l: &Launch, instance_arn: &str, d: &Demand) -> Task {
    let scope = env.scope;
    let cluster_name = l.cluster.cluster_name.clone().unwrap_or_default();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let task_arn = scope.task_arn(&cluster_name, &id);
    let containers =
        l.td.container_definitions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let name = c.name.clone().unwrap_or_default();
                let o = l
                    .overrides
                    .container_overrides
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .find(|o| o.name.as_deref() == Some(name.as_str()));
                Container {
                    container_arn: Some(scope.container_arn(
                        &cluster_name,
                        &id,
                        &uuid::Uuid::new_v4().to_string(),
                    )),
                    task_arn: Some(task_arn.clone()),
                    name: Some(name),
                    image: c.image.clone(),
                    last_status: Some(TaskStatus::Pending.as_str().to_string()),
                    network_interfaces: Some(Vec::new()),
                    network_bindings: Some(Vec::new()),
                    cpu: Some(o.and_then(|o| o.cpu).or(c.cpu).unwrap_or(0).to_string()),
                    memory: o.and_then(|o| o.memory).or(c.memory).map(|m| m.to_string()),
                    memory_reservation: o
                        .and_then(|o| o.memory_reservation)
                        .or(c.memory_reservation)
                        .map(|m| m.to_string()),
                    health_status: Some(HealthStatus::UnknownValue),
                    ..Default::default()
                }
            })
            .collect();
    let awsvpc = network_mode(&l.td) == NetworkMode::Awsvpc;
    let attachments = if awsvpc {
        let cfg = l
            .network
            .as_ref()
            .and_then(|n| n.awsvpc_configuration.as_ref());
        let mut details = Vec::new();
        if let Some(subnet) = cfg.and_then(|c| c.subnets.as_ref()).and_then(|s| s.first()) {
            details.push(KeyValuePair {
                name: Some("subnetId".into()),
                value: Some(subnet.clone()),
            });
        }
        vec![Attachment {
            id: Some(uuid::Uuid::new_v4().to_string()),
            r#type: Some("ElasticNetworkInterface".into()),
            status: Some("PRECREATED".into()),
            details: Some(details),
        }]
    } else {
        Vec::new()
    };
    let fargate = l.launch_type == LaunchType::Fargate;
    Task {
        task_arn: Some(task_arn),
        cluster_arn: l.cluster.cluster_arn.clone(),
        task_definition_arn: l.td.task_definition_arn.clone(),
        container_instance_arn: Some(instance_arn.to_string()),
        overrides: Some(l.overrides.clone()),
        last_status: Some(
            if awsvpc {
                TaskStatus::Provisioning
            } else {
                TaskStatus::Pending
            }
            .as_str()
            .to_string(),
        ),
        desired_status: Some(DesiredStatus::Running.as_str().to_string()),
        cpu: Some(d.cpu.to_string()),
        memory: Some(d.memory.to_string()),
        containers: Some(containers),
        started_by: l.started_by.clone(),
        version: Some(1),
        created_at: Some(env.now),
        group: Some(l.group.clone()),
        launch_type: Some(l.launch_type.clone()),
        capacity_provider_name: l.capacity_provider.clone(),
        platform_version: fargate.then(|| "1.4.0".to_string()),
        platform_family: fargate.then(|| "Linux".to_string()),
        attachments: Some(attachments),
        tags: Some(l.tags.clone()),
        enable_execute_command: Some(false),
        health_status: Some(HealthStatus::UnknownValue),
        connectivity: None,
        ..Default::default()
    }
}

/// Places and commits the launch's tasks on its target.
pub async fn launch(env: &LaunchEnv<'_>, l: &Launch) -> Result<Launched, LaunchError> {
    match &l.target {
        Target::Cluster {
            count,
            client_token,
        } => place(env, l, *count, None, client_token.as_deref()).await,
        Target::EachInstance(given) => {
            let cluster_name = l.cluster.cluster_name.clone().unwrap_or_default();
            let mut arns = Vec::new();
            let mut out = Launched::default();
            for g in given {
                match load_instance(env.store, env.scope, &cluster_name, g)? {
                    Some((_, v)) => arns.push(
                        v.value
                            .instance
                            .container_instance_arn
                            .clone()
                            .unwrap_or_default(),
                    ),
                    None => out.failures.push(Failure {
                        arn: Some(g.clone()),
                        reason: Some(Reason::Missing.as_str().into()),
                        detail: None,
                    }),
                }
            }
            // One commit per instance: a lost race on one does not re-plan
            // the others.
            for arn in arns {
                let one = place(env, l, 1, Some(std::slice::from_ref(&arn)), None).await?;
                out.tasks.extend(one.tasks);
                out.failures.extend(one.failures);
            }
            Ok(out)
        }
    }
}

/// Places `count` tasks and commits them with compare-and-set on every
/// instance used. `only` restricts candidates to the named instances.
async fn place(
    env: &LaunchEnv<'_>,
    l: &Launch,
    count: usize,
    only: Option<&[String]>,
    token: Option<&str>,
) -> Result<Launched, LaunchError> {
    let scope = env.scope;
    let cluster_name = l.cluster.cluster_name.clone().unwrap_or_default();
    let d = demand(l);
    let token_key = token.map(|t| keys::client_token(scope, &cluster_name, t));
    for _ in 0..db::MAX_CAS_RETRIES {
        if let Some(k) = &token_key {
            if let Some(v) = db::get::<TokenRecord>(env.store, k)? {
                let mut tasks = Vec::new();
                for arn in &v.value.task_arns {
                    if let Some((_, t)) = load_task(env.store, scope, &cluster_name, arn)? {
                        tasks.push(t.value);
                    }
                }
                return Ok(Launched {
                    tasks,
                    failures: v.value.failures,
                });
            }
        }
        let instances = all_instances(env.store, scope, &cluster_name)?;
        if only.is_none() && !instances.iter().any(|i| i.value.is_active()) {
            return Err(LaunchError::NoContainerInstances);
        }
        // Stopped tasks hold nothing and count for no constraint.
        let tasks_now = crate::live_tasks::live_tasks(env.store, scope, &cluster_name)?;
        let candidates: Vec<&Versioned<InstanceRecord>> = instances
            .iter()
            .filter(|i| {
                only.is_none_or(|o| {
                    o.iter().any(|g| {
                        i.value.instance.container_instance_arn.as_deref() == Some(g.as_str())
                    })
                })
            })
            .collect();
        let plan = placement::plan(env.heartbeats, &candidates, &tasks_now, &d, count);
        let mut compares = Vec::new();
        let mut ops = Vec::new();
        let mut tasks = Vec::new();
        let mut touched: std::collections::BTreeMap<String, (InstanceRecord, i64)> =
            Default::default();
        for arn in &plan.placements {
            let Some(inst) = candidates
                .iter()
                .find(|i| i.value.instance.container_instance_arn.as_deref() == Some(arn.as_str()))
            else {
                continue;
            };
            let entry = touched
                .entry(arn.clone())
                .or_insert_with(|| (inst.value.clone(), inst.mod_revision));
            let task = new_task(env, l, arn, &d);
            entry.0.allocations.insert(
                task_id(&task).to_string(),
                Allocation {
                    cpu: d.cpu,
                    memory: d.memory,
                    ports_tcp: d.ports_tcp.clone(),
                    ports_udp: d.ports_udp.clone(),
                },
            );
            ops.push(db::put(
                keys::task(scope, &cluster_name, task_id(&task)),
                &task,
            ));
            ops.push(crate::live_tasks::add(
                scope,
                &cluster_name,
                task_id(&task),
                &task,
            ));
            tasks.push(task);
        }
        for (rec, rev) in touched.values() {
            let key = keys::instance(scope, &cluster_name, rec.id());
            compares.push(db::unchanged(&key, *rev));
            ops.push(db::put(key, rec));
        }
        if let Some(k) = &token_key {
            compares.push(db::unchanged(k, 0));
            ops.push(db::put(
                k,
                &TokenRecord {
                    task_arns: tasks.iter().filter_map(|t| t.task_arn.clone()).collect(),
                    failures: plan.failures.clone(),
                },
            ));
        }
        if ops.is_empty() || db::commit(env.store, compares, ops).await? {
            return Ok(Launched {
                tasks,
                failures: plan.failures,
            });
        }
    }
    Err(db::contention().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;
    use stevedore_store_sqlite::SqliteStore;

    struct World {
        store: std::sync::Arc<SqliteStore>,
        scope: Scope,
        heartbeats: Heartbeats,
    }

    impl World {
        async fn new() -> World {
            let dir =
                std::env::temp_dir().join(format!("stevedore-launch-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            let store = SqliteStore::open(&dir.join("db.sqlite")).unwrap();
            let scope = Scope::new("123456789012", "us-east-1");
            let cluster = Cluster {
                cluster_name: Some("c".into()),
                cluster_arn: Some(scope.cluster_arn("c")),
                status: Some("ACTIVE".into()),
                ..Default::default()
            };
            let td = TaskDefinition {
                family: Some("web".into()),
                revision: Some(1),
                task_definition_arn: Some(scope.task_definition_arn("web", 1)),
                status: Some(TaskDefinitionStatus::Active),
                compatibilities: Some(vec![Compatibility::Ec2]),
                container_definitions: Some(vec![ContainerDefinition {
                    name: Some("app".into()),
                    image: Some("busybox".into()),
                    memory: Some(64),
                    ..Default::default()
                }]),
                ..Default::default()
            };
            let ops = vec![
                db::put(keys::cluster(&scope, "c"), &cluster),
                db::put(
                    keys::task_definition(&scope, "web", 1),
                    &TaskDefRecord {
                        definition: td,
                        tags: Vec::new(),
                    },
                ),
            ];
            assert!(db::commit(store.as_ref(), vec![], ops).await.unwrap());
            World {
                store,
                scope,
                heartbeats: Heartbeats::new(Duration::from_secs(10)),
            }
        }

        fn env(&self) -> LaunchEnv<'_> {
            LaunchEnv {
                store: self.store.as_ref(),
                scope: &self.scope,
                now: Timestamp::from_millis(1_700_000_000_000),
                heartbeats: &self.heartbeats,
            }
        }

        /// An ACTIVE instance with 1024 CPU units and 256 MiB whose agent
        /// is connected.
        async fn add_instance(&self, id: &str) -> String {
            let arn = self.scope.container_instance_arn("c", id);
            let int = |name: &str, v: i32| Resource {
                name: Some(name.into()),
                r#type: Some("INTEGER".into()),
                integer_value: Some(v),
                ..Default::default()
            };
            let rec = InstanceRecord {
                instance: ContainerInstance {
                    container_instance_arn: Some(arn.clone()),
                    status: Some("ACTIVE".into()),
                    registered_resources: Some(vec![int("CPU", 1024), int("MEMORY", 256)]),
                    ..Default::default()
                },
                cluster_name: "c".into(),
                report_seq: 0,
                allocations: BTreeMap::new(),
            };
            let put = db::put(keys::instance(&self.scope, "c", id), &rec);
            assert!(db::commit(self.store.as_ref(), vec![], vec![put])
                .await
                .unwrap());
            self.heartbeats.seen(&arn);
            arn
        }
    }

    fn request(target: Target) -> LaunchRequest {
        LaunchRequest::new(Some("c".into()), "web:1".into(), target)
    }

    #[tokio::test]
    async fn a_cluster_without_instances_is_a_typed_error() {
        let w = World::new().await;
        let l = prepare(
            &w.env(),
            request(Target::Cluster {
                count: 1,
                client_token: None,
            }),
        )
        .unwrap();
        assert_eq!(
            launch(&w.env(), &l).await.unwrap_err(),
            LaunchError::NoContainerInstances
        );
        // RunTask's answer for it.
        let e = ApiError::from(LaunchError::NoContainerInstances);
        assert_eq!(
            e.code,
            stevedore_api::ecs::ErrorCode::InvalidParameterException.into()
        );
        assert_eq!(e.message, Reason::NoContainerInstances.as_str());
    }

    #[tokio::test]
    async fn placed_tasks_are_committed_with_their_index_and_allocation_once_per_token() {
        let w = World::new().await;
        let arn = w.add_instance("i1").await;
        let l = prepare(
            &w.env(),
            request(Target::Cluster {
                count: 5,
                client_token: Some("tok".into()),
            }),
        )
        .unwrap();
        let first = launch(&w.env(), &l).await.unwrap();
        // 256 MiB holds four 64 MiB tasks; the fifth is refused by memory.
        assert_eq!(first.tasks.len(), 4);
        assert_eq!(first.failures.len(), 1);
        assert_eq!(
            first.failures[0].reason.as_deref(),
            Some(Reason::ResourceMemory.as_str())
        );
        for t in &first.tasks {
            assert_eq!(t.container_instance_arn.as_deref(), Some(arn.as_str()));
            assert_eq!(t.last_status.as_deref(), Some("PENDING"));
            assert_eq!(t.desired_status.as_deref(), Some("RUNNING"));
            assert_eq!(t.group.as_deref(), Some("family:web"));
        }
        let live = crate::live_tasks::live_tasks(w.store.as_ref(), &w.scope, "c").unwrap();
        assert_eq!(live.len(), 4);
        let (_, inst) = load_instance(w.store.as_ref(), &w.scope, "c", "i1")
            .unwrap()
            .unwrap();
        assert_eq!(inst.value.allocations.len(), 4);

        // A retry with the token answers the same tasks and places nothing.
        let again = launch(&w.env(), &l).await.unwrap();
        let arns = |x: &Launched| -> Vec<String> {
            x.tasks.iter().filter_map(|t| t.task_arn.clone()).collect()
        };
        assert_eq!(arns(&again), arns(&first));
        assert_eq!(again.failures, first.failures);
        let live = crate::live_tasks::live_tasks(w.store.as_ref(), &w.scope, "c").unwrap();
        assert_eq!(live.len(), 4);
    }

    #[tokio::test]
    async fn each_instance_places_one_task_per_named_instance_and_reports_unknown_ones() {
        let w = World::new().await;
        let a = w.add_instance("a").await;
        let b = w.add_instance("b").await;
        let l = prepare(
            &w.env(),
            request(Target::EachInstance(vec![
                "a".into(),
                "nope".into(),
                b.clone(),
            ])),
        )
        .unwrap();
        let out = launch(&w.env(), &l).await.unwrap();
        let on: Vec<&str> = out
            .tasks
            .iter()
            .filter_map(|t| t.container_instance_arn.as_deref())
            .collect();
        assert_eq!(on, [a.as_str(), b.as_str()]);
        assert_eq!(out.failures.len(), 1);
        assert_eq!(out.failures[0].arn.as_deref(), Some("nope"));
        assert_eq!(
            out.failures[0].reason.as_deref(),
            Some(Reason::Missing.as_str())
        );
    }

    #[tokio::test]
    async fn an_inactive_revision_is_refused_unless_the_request_allows_it() {
        let w = World::new().await;
        let key = keys::task_definition(&w.scope, "web", 1);
        let mut rec = db::get::<TaskDefRecord>(w.store.as_ref(), &key)
            .unwrap()
            .unwrap()
            .value;
        rec.definition.status = Some(TaskDefinitionStatus::Inactive);
        let put = db::put(&key, &rec);
        assert!(db::commit(w.store.as_ref(), vec![], vec![put])
            .await
            .unwrap());
        let target = Target::Cluster {
            count: 1,
            client_token: None,
        };
        let e = prepare(&w.env(), request(target.clone())).unwrap_err();
        assert_eq!(
            e.code,
            stevedore_api::ecs::ErrorCode::ClientException.into()
        );
        assert!(e.message.contains("is inactive"), "{}", e.message);
        let allowed = LaunchRequest {
            allow_inactive_task_definition: true,
            ..request(target)
        };
        assert!(prepare(&w.env(), allowed).is_ok());
    }
}
