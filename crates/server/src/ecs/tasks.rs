//! Tasks: RunTask, StartTask, StopTask, DescribeTasks, ListTasks.
//!
//! A task record is the ECS `Task` shape, stored whole. Placement is
//! optimistic: a plan is computed from a snapshot of the cluster's
//! instances, then committed in one transaction that compares every
//! instance it placed on; a lost race re-plans.

use super::clusters::load_active;
use super::instances::{all_instances, load_instance, Allocation, InstanceRecord};
use super::placement::{self, Demand};
use super::task_definitions::{resolve, TaskDefRecord};
use crate::db::{self, Versioned};
use crate::error::{ApiError, ApiResult};
use crate::state::Cx;
use serde::{Deserialize, Serialize};
use stevedore_api::ecs::*;
use stevedore_model::arn::{child_id, Scope};
use stevedore_model::taskdef::{parse_cpu, parse_memory, unsupported_for_run};
use stevedore_model::{keys, tags as tag_rules};
use stevedore_store::Store;

pub(crate) fn task_id(task: &Task) -> &str {
    task.task_arn
        .as_deref()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or_default()
}

/// (running, pending) tasks whose containerInstanceArn is `instance_arn`.
pub(crate) fn counts_on_instance(
    store: &dyn Store,
    scope: &Scope,
    cluster: &str,
    instance_arn: &str,
) -> ApiResult<(i32, i32)> {
    Ok(super::instances::counts_of(
        &crate::live_tasks::live_tasks(store, scope, cluster)?,
        instance_arn,
    ))
}

pub(crate) fn tasks_in_cluster(
    store: &dyn Store,
    scope: &Scope,
    cluster: &str,
) -> ApiResult<Vec<Versioned<Task>>> {
    db::all_versioned(
        store,
        &keys::cluster_children_prefix(scope, cluster, keys::KIND_TASK),
    )
}

fn load_task(
    store: &dyn Store,
    scope: &Scope,
    cluster: &str,
    given: &str,
) -> ApiResult<Option<(String, Versioned<Task>)>> {
    let Some(id) = child_id(scope, "task", cluster, given) else {
        return Ok(None);
    };
    let key = keys::task(scope, cluster, &id);
    Ok(db::get(store, &key)?.map(|v| (key, v)))
}

/// What a clientToken produced, so a retried RunTask returns the same tasks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenRecord {
    task_arns: Vec<String>,
    failures: Vec<Failure>,
}

/// A validated launch request, shared by RunTask and StartTask.
pub(crate) struct Launch {
    pub(crate) cluster: Cluster,
    pub(crate) td: TaskDefinition,
    pub(crate) launch_type: LaunchType,
    pub(crate) capacity_provider: Option<String>,
    overrides: TaskOverride,
    group: String,
    started_by: Option<String>,
    tags: Vec<Tag>,
    network: Option<NetworkConfiguration>,
    strategies: Vec<stevedore_scheduler::Strategy>,
    constraints: Vec<stevedore_scheduler::Constraint>,
}

/// ECS takes `platformVersion` only for FARGATE. Stevedore runs one Fargate
/// platform, so LATEST and 1.4.0 are the versions it can honour (tasks report
/// 1.4.0, what LATEST resolves to); anything else is refused by name rather
/// than accepted and ignored.
pub(crate) fn check_platform_version<'a>(
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

#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare(
    cx: &Cx,
    cluster_ref: Option<&str>,
    task_definition: &str,
    launch_type: Option<&LaunchType>,
    strategy: Option<&[CapacityProviderStrategyItem]>,
    overrides: Option<&TaskOverride>,
    group: Option<&str>,
    started_by: Option<&str>,
    tags: &[Tag],
    enable_managed_tags: bool,
    propagate: Option<&PropagateTags>,
    network: Option<&NetworkConfiguration>,
    enable_execute_command: Option<bool>,
    volume_configurations: bool,
    placement: (&[PlacementStrategy], &[PlacementConstraint]),
) -> ApiResult<Launch> {
    let cluster = load_active(cx, cluster_ref)?.value;
    if enable_execute_command == Some(true) {
        return Err(ApiError::invalid(
            "enableExecuteCommand is not supported yet: Stevedore has no ECS Exec.",
        ));
    }
    if volume_configurations {
        return Err(ApiError::unsupported(
            "volumeConfigurations (EBS) are not supported.",
        ));
    }
    let (_, td_rec) = resolve(cx.store(), cx.scope(), task_definition)?
        .ok_or_else(|| ApiError::client("Unable to find task definition."))?;
    let TaskDefRecord {
        definition: td,
        tags: td_tags,
    } = td_rec.value;
    if td.status != Some(TaskDefinitionStatus::Active) && !cx.allow_inactive_task_definition {
        return Err(ApiError::client(format!(
            "TaskDefinition {} is inactive and cannot be used to start tasks.",
            td.task_definition_arn.as_deref().unwrap_or(task_definition)
        )));
    }
    if let Some(why) = unsupported_for_run(&td) {
        return Err(ApiError::unsupported(why));
    }
    let (launch_type, capacity_provider) = resolve_launch_type(&cluster, launch_type, strategy)?;
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
    let network = network.cloned();
    check_network(&td, &network)?;
    let overrides = overrides.cloned().unwrap_or_default();
    check_overrides(&td, &overrides)?;
    if let Some(s) = started_by {
        if s.len() > 128 {
            return Err(ApiError::invalid(
                "startedBy must be at most 128 characters.",
            ));
        }
    }
    let mut tags = tag_rules::validate(tags)?;
    match propagate {
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
    if enable_managed_tags {
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
    let mut all_constraints = placement.1.to_vec();
    all_constraints.extend(td_constraints);
    let (strategies, constraints) =
        super::placement::parse_placement(placement.0, &all_constraints)?;
    let family = td.family.clone().unwrap_or_default();
    Ok(Launch {
        cluster,
        td,
        launch_type,
        capacity_provider,
        overrides,
        group: group
            .map(String::from)
            .unwrap_or_else(|| format!("family:{family}")),
        started_by: started_by.map(String::from),
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
pub(crate) fn fits_constraints(cx: &Cx, l: &Launch, inst: &InstanceRecord) -> bool {
    let mut d = demand(l);
    d.cpu = 0;
    d.memory = 0;
    d.ports_tcp.clear();
    d.ports_udp.clear();
    placement::fits_alone(cx, inst, &d)
}

/// Builds a new task record in PROVISIONING/PENDING on `instance_arn`.
fn new_task(cx: &Cx, l: &Launch, instance_arn: &str, d: &Demand) -> Task {
    let scope = cx.scope();
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
                    last_status: Some("PENDING".into()),
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
        last_status: Some(if awsvpc { "PROVISIONING" } else { "PENDING" }.into()),
        desired_status: Some("RUNNING".into()),
        cpu: Some(d.cpu.to_string()),
        memory: Some(d.memory.to_string()),
        containers: Some(containers),
        started_by: l.started_by.clone(),
        version: Some(1),
        created_at: Some(cx.now),
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

fn view(task: &Task, with_tags: bool) -> Task {
    let mut t = task.clone();
    if !with_tags {
        t.tags = None;
    }
    t
}

/// Places `count` tasks and commits them with compare-and-set on every
/// instance used. `only` restricts candidates (StartTask).
pub(crate) async fn launch(
    cx: &Cx,
    l: &Launch,
    count: usize,
    only: Option<&[String]>,
    token: Option<&str>,
) -> ApiResult<(Vec<Task>, Vec<Failure>)> {
    let scope = cx.scope().clone();
    let cluster_name = l.cluster.cluster_name.clone().unwrap_or_default();
    let d = demand(l);
    let token_key = token.map(|t| keys::client_token(&scope, &cluster_name, t));
    for _ in 0..db::MAX_CAS_RETRIES {
        if let Some(k) = &token_key {
            if let Some(v) = db::get::<TokenRecord>(cx.store(), k)? {
                let mut tasks = Vec::new();
                for arn in &v.value.task_arns {
                    if let Some((_, t)) = load_task(cx.store(), &scope, &cluster_name, arn)? {
                        tasks.push(t.value);
                    }
                }
                return Ok((tasks, v.value.failures));
            }
        }
        let instances = all_instances(cx.store(), &scope, &cluster_name)?;
        if only.is_none() && !instances.iter().any(|i| i.value.is_active()) {
            return Err(ApiError::invalid(
                "No Container Instances were found in your cluster.",
            ));
        }
        // Stopped tasks hold nothing and count for no constraint.
        let tasks_now = crate::live_tasks::live_tasks(cx.store(), &scope, &cluster_name)?;
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
        let plan = placement::plan(cx, &candidates, &tasks_now, &d, count);
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
            let task = new_task(cx, l, arn, &d);
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
                keys::task(&scope, &cluster_name, task_id(&task)),
                &task,
            ));
            ops.push(crate::live_tasks::add(
                &scope,
                &cluster_name,
                task_id(&task),
                &task,
            ));
            tasks.push(task);
        }
        for (rec, rev) in touched.values() {
            let key = keys::instance(&scope, &cluster_name, rec.id());
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
        if ops.is_empty() || db::commit(cx.store(), compares, ops).await? {
            return Ok((tasks, plan.failures));
        }
    }
    Err(db::contention())
}

pub async fn run_task(cx: Cx, req: RunTaskRequest) -> ApiResult<RunTaskResponse> {
    let count = req.count.unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(ApiError::invalid(format!(
            "count must be between 1 and 10; it was {count}."
        )));
    }
    if req.reference_id.is_some() {
        // Nothing in Stevedore reads a reference id yet (ECS passes it to
        // EventBridge), so it is refused rather than stored and ignored.
        return Err(ApiError::unsupported(
            "referenceId is not supported by Stevedore; remove it from the RunTask request.",
        ));
    }
    let l = prepare(
        &cx,
        req.cluster.as_deref(),
        req.task_definition.as_deref().unwrap_or_default(),
        req.launch_type.as_ref(),
        req.capacity_provider_strategy.as_deref(),
        req.overrides.as_ref(),
        req.group.as_deref(),
        req.started_by.as_deref(),
        req.tags.as_deref().unwrap_or_default(),
        req.enable_ecs_managed_tags == Some(true),
        req.propagate_tags.as_ref(),
        req.network_configuration.as_ref(),
        req.enable_execute_command,
        req.volume_configurations
            .as_ref()
            .is_some_and(|v| !v.is_empty()),
        (
            req.placement_strategy.as_deref().unwrap_or_default(),
            req.placement_constraints.as_deref().unwrap_or_default(),
        ),
    )?;
    check_platform_version(&l.launch_type, req.platform_version.as_deref())?;
    let (tasks, failures) =
        launch(&cx, &l, count as usize, None, req.client_token.as_deref()).await?;
    Ok(RunTaskResponse {
        tasks: Some(tasks.iter().map(|t| view(t, true)).collect()),
        failures: Some(failures),
    })
}

pub async fn start_task(cx: Cx, req: StartTaskRequest) -> ApiResult<StartTaskResponse> {
    let given = req.container_instances.clone().unwrap_or_default();
    if given.is_empty() || given.len() > 10 {
        return Err(ApiError::invalid(
            "containerInstances must name 1 to 10 container instances.",
        ));
    }
    let l = prepare(
        &cx,
        req.cluster.as_deref(),
        req.task_definition.as_deref().unwrap_or_default(),
        None,
        None,
        req.overrides.as_ref(),
        req.group.as_deref(),
        req.started_by.as_deref(),
        req.tags.as_deref().unwrap_or_default(),
        req.enable_ecs_managed_tags == Some(true),
        req.propagate_tags.as_ref(),
        req.network_configuration.as_ref(),
        req.enable_execute_command,
        req.volume_configurations
            .as_ref()
            .is_some_and(|v| !v.is_empty()),
        (&[], &[]),
    )?;
    let cluster_name = l.cluster.cluster_name.clone().unwrap_or_default();
    let mut arns = Vec::new();
    let mut failures = Vec::new();
    for g in &given {
        match load_instance(cx.store(), cx.scope(), &cluster_name, g)? {
            Some((_, v)) => arns.push(
                v.value
                    .instance
                    .container_instance_arn
                    .clone()
                    .unwrap_or_default(),
            ),
            None => failures.push(Failure {
                arn: Some(g.clone()),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    let mut tasks = Vec::new();
    // StartTask starts one task on each named instance.
    for arn in arns {
        let (t, f) = launch(&cx, &l, 1, Some(std::slice::from_ref(&arn)), None).await?;
        tasks.extend(t);
        failures.extend(f);
    }
    Ok(StartTaskResponse {
        tasks: Some(tasks.iter().map(|t| view(t, true)).collect()),
        failures: Some(failures),
    })
}

/// Records the intent to stop: the agent acts on `desiredStatus`; the
/// reason and code are what DescribeTasks shows once it is STOPPED.
pub(crate) fn request_stop(
    t: &mut Task,
    reason: String,
    code: TaskStopCode,
    now: stevedore_api::Timestamp,
) {
    t.desired_status = Some("STOPPED".into());
    t.stopped_reason = Some(reason);
    t.stop_code = Some(code);
    t.stopping_at = Some(now);
    t.version = Some(t.version.unwrap_or(0) + 1);
}

pub async fn stop_task(cx: Cx, req: StopTaskRequest) -> ApiResult<StopTaskResponse> {
    let cluster = load_active(&cx, req.cluster.as_deref())?.value;
    let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
    let given = req.task.clone().unwrap_or_default();
    if let Some(r) = &req.reason {
        if r.len() > 255 {
            return Err(ApiError::invalid("reason must be at most 255 characters."));
        }
    }
    for _ in 0..db::MAX_CAS_RETRIES {
        let (key, v) =
            load_task(cx.store(), cx.scope(), &cluster_name, &given)?.ok_or_else(|| {
                ApiError::invalid(format!("The referenced task was not found: {given}"))
            })?;
        let mut t = v.value;
        if t.desired_status.as_deref() == Some("STOPPED") {
            return Ok(StopTaskResponse {
                task: Some(view(&t, false)),
            });
        }
        request_stop(
            &mut t,
            req.reason
                .clone()
                .unwrap_or_else(|| "Task stopped by user".into()),
            TaskStopCode::UserInitiated,
            cx.now,
        );
        if db::commit(
            cx.store(),
            vec![db::unchanged(&key, v.mod_revision)],
            vec![db::put(&key, &t)],
        )
        .await?
        {
            return Ok(StopTaskResponse {
                task: Some(view(&t, false)),
            });
        }
    }
    Err(db::contention())
}

pub async fn describe_tasks(cx: Cx, req: DescribeTasksRequest) -> ApiResult<DescribeTasksResponse> {
    let cluster = super::clusters::load_any(cx.store(), cx.scope(), req.cluster.as_deref())?
        .ok_or_else(ApiError::cluster_not_found)?
        .value;
    let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
    let given = req.tasks.clone().unwrap_or_default();
    if given.len() > 100 {
        return Err(ApiError::invalid("tasks can name at most 100 tasks."));
    }
    let with_tags = req
        .include
        .as_deref()
        .unwrap_or_default()
        .contains(&TaskField::Tags);
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for g in &given {
        match load_task(cx.store(), cx.scope(), &cluster_name, g)? {
            Some((_, v)) => tasks.push(view(&v.value, with_tags)),
            None => failures.push(super::missing(g, |id| {
                cx.scope().task_arn(&cluster_name, id)
            })),
        }
    }
    Ok(DescribeTasksResponse {
        tasks: Some(tasks),
        failures: Some(failures),
    })
}

pub async fn list_tasks(cx: Cx, req: ListTasksRequest) -> ApiResult<ListTasksResponse> {
    let cluster = load_active(&cx, req.cluster.as_deref())?.value;
    let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
    let limit = db::max_results(req.max_results, 100, 100)?;
    if req.daemon_name.is_some() {
        return Err(ApiError::unsupported(
            "daemonName: daemons are not supported.",
        ));
    }
    let service_group = match &req.service_name {
        None => None,
        Some(s) => {
            let (_, v) = super::services::load_service(cx.store(), cx.scope(), &cluster_name, s)?
                .ok_or_else(ApiError::service_not_found)?;
            Some(super::services::record::service_group(v.value.name()))
        }
    };
    let instance_arn = match req.container_instance.as_deref() {
        None => None,
        Some(g) => Some(
            load_instance(cx.store(), cx.scope(), &cluster_name, g)?
                .map(|(_, v)| v.value.instance.container_instance_arn.unwrap_or_default())
                .ok_or_else(|| ApiError::invalid(format!("Container instance {g} not found.")))?,
        ),
    };
    let desired = req
        .desired_status
        .as_ref()
        .map(|d| d.as_str().to_string())
        .unwrap_or_else(|| "RUNNING".into());
    let family = req.family.clone();
    let prefix = keys::cluster_children_prefix(cx.scope(), &cluster_name, keys::KIND_TASK);
    let page = db::page(
        cx.store(),
        &prefix,
        req.next_token.as_deref(),
        limit,
        false,
        |kv| {
            let t: Task = db::decode(kv)?;
            // ECS lists PENDING-desired tasks under RUNNING too.
            let d = t.desired_status.as_deref().unwrap_or("");
            let desired_ok = d == desired || (desired == "RUNNING" && d == "PENDING");
            let family_ok = family.as_deref().is_none_or(|f| {
                t.task_definition_arn
                    .as_deref()
                    .and_then(|a| a.rsplit('/').next())
                    .and_then(|fr| fr.rsplit_once(':'))
                    .is_some_and(|(fam, _)| fam == f)
            });
            Ok(desired_ok
                && family_ok
                && service_group
                    .as_deref()
                    .is_none_or(|g| t.group.as_deref() == Some(g))
                && instance_arn
                    .as_deref()
                    .is_none_or(|i| t.container_instance_arn.as_deref() == Some(i))
                && req
                    .started_by
                    .as_deref()
                    .is_none_or(|s| t.started_by.as_deref() == Some(s))
                && req
                    .launch_type
                    .as_ref()
                    .is_none_or(|lt| t.launch_type.as_ref() == Some(lt)))
        },
    )?;
    let mut arns = Vec::new();
    for kv in &page.kvs {
        let t: Task = db::decode(kv)?;
        arns.push(t.task_arn.unwrap_or_default());
    }
    Ok(ListTasksResponse {
        task_arns: Some(arns),
        next_token: page.next_token,
    })
}
