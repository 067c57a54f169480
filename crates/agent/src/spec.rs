//! From an assigned ECS task to the containers to create: pure functions.
//!
//! [`plan_task`] applies the RunTask `overrides`, maps every container
//! definition to a [`ContainerSpec`], and refuses — with the reason the task
//! will report — any field this agent cannot honour, instead of silently
//! dropping it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use stevedore_api::agent::AssignedTask;
use stevedore_api::ecs::{
    ContainerCondition, ContainerDefinition, ContainerOverride, KeyValuePair, NetworkMode,
    TransportProtocol,
};
use stevedore_runtime::{labels, ContainerSpec, NetworkSpec, PortSpec, Protocol, Ulimit};

/// Docker's minimum memory limit (since 20.10), MiB.
pub const MIN_CONTAINER_MEMORY_MIB: i64 = 6;
/// ECS's CpuShares bounds.
pub const MIN_CPU_SHARES: i64 = 2;
pub const MAX_CPU_SHARES: i64 = 262_144;
/// The container name ECS gives the awsvpc pause container.
pub const PAUSE_CONTAINER_NAME: &str = "~internal~ecs~pause";
/// The `com.stevedore.role` value of pause containers.
pub const PAUSE_ROLE: &str = "pause";

/// What the mapping needs to know about this agent.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecContext {
    pub cluster: String,
    pub instance_arn: String,
    /// Short instance-unique suffix of Docker names (several agents may
    /// share one engine).
    pub name_suffix: String,
    pub allow_privileged: bool,
    /// `ECS_CONTAINER_STOP_TIMEOUT`.
    pub default_stop_timeout: Duration,
    /// The awsvpc pause image, if awsvpc is available.
    pub pause_image: Option<String>,
}

/// The task's network mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    Bridge,
    Host,
    None,
    Awsvpc,
}

/// A `dependsOn` condition this agent implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Condition {
    Start,
    Complete,
    Success,
}

/// One container of a planned task.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerPlan {
    /// The ECS container name.
    pub name: String,
    pub essential: bool,
    pub depends_on: Vec<(String, Condition)>,
    /// `startTimeout`: how long dependants wait for this container to
    /// reach COMPLETE/SUCCESS after it started.
    pub start_timeout: Option<Duration>,
    pub stop_timeout: Duration,
    /// Effective (post-override) values, as reported on the container.
    pub cpu: i64,
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    /// Static host-side bindings to report for host-mode tasks (Docker has
    /// none to show).
    pub host_mode_ports: Vec<PortSpec>,
    pub spec: ContainerSpec,
}

/// An assigned task, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPlan {
    pub task_id: String,
    pub network: NetMode,
    /// The pause container (awsvpc only).
    pub pause: Option<ContainerSpec>,
    /// In definition order.
    pub containers: Vec<ContainerPlan>,
}

/// The last segment of a task ARN (`.../task/cluster/ID`), made safe for a
/// Docker name.
pub fn task_id(task_arn: &str) -> String {
    let id = task_arn.rsplit('/').next().unwrap_or(task_arn);
    let id: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if id.is_empty() {
        "task".to_string()
    } else {
        id
    }
}

/// Docker name of a task container: `stevedore-<task id>-<name>-<suffix>`.
pub fn docker_name(task_id: &str, container: &str, suffix: &str) -> String {
    format!("stevedore-{task_id}-{container}-{suffix}")
}

/// Docker name of a task's pause container. The `.` cannot occur in an ECS
/// container name, so it never collides with a task container.
pub fn pause_docker_name(task_id: &str, suffix: &str) -> String {
    format!("stevedore-{task_id}-{suffix}.pause")
}

/// The user-defined network awsvpc tasks of `cluster` attach to.
pub fn cluster_network(cluster: &str) -> String {
    let name = cluster.rsplit('/').next().unwrap_or(cluster);
    format!("stevedore-{name}")
}

/// The labels every container of the task carries.
fn base_labels(ctx: &SpecContext, task: &AssignedTask) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert(labels::MANAGED.to_string(), "true".to_string());
    l.insert(labels::CLUSTER.to_string(), ctx.cluster.clone());
    l.insert(labels::INSTANCE.to_string(), ctx.instance_arn.clone());
    l.insert(labels::TASK.to_string(), task.task_arn.clone());
    // The ECS agent's labels, for tools that know them.
    l.insert("com.amazonaws.ecs.cluster".into(), ctx.cluster.clone());
    l.insert("com.amazonaws.ecs.task-arn".into(), task.task_arn.clone());
    if let Some(f) = &task.task_definition.family {
        l.insert("com.amazonaws.ecs.task-definition-family".into(), f.clone());
    }
    if let Some(r) = task.task_definition.revision {
        l.insert(
            "com.amazonaws.ecs.task-definition-version".into(),
            r.to_string(),
        );
    }
    l
}

fn unsupported(what: &str) -> String {
    format!("CannotCreateContainerError: {what} is not supported by this agent")
}

fn create_error(msg: impl std::fmt::Display) -> String {
    format!("CannotCreateContainerError: {msg}")
}

/// Task-level checks: fields the agent would otherwise drop.
fn check_task_fields(task: &AssignedTask) -> Result<(), String> {
    let td = &task.task_definition;
    if td.volumes.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(unsupported("task definition volumes"));
    }
    if td.pid_mode.is_some() {
        return Err(unsupported("pidMode"));
    }
    if td.ipc_mode.is_some() {
        return Err(unsupported("ipcMode"));
    }
    if td.proxy_configuration.is_some() {
        return Err(unsupported("proxyConfiguration"));
    }
    if td
        .inference_accelerators
        .as_ref()
        .is_some_and(|v| !v.is_empty())
    {
        return Err(unsupported("inferenceAccelerators"));
    }
    if td.task_role_arn.is_some()
        || task
            .overrides
            .as_ref()
            .is_some_and(|o| o.task_role_arn.is_some())
    {
        return Err(unsupported("taskRoleArn (task IAM role credentials)"));
    }
    if let Some(o) = &task.overrides {
        if o.inference_accelerator_overrides
            .as_ref()
            .is_some_and(|v| !v.is_empty())
        {
            return Err(unsupported("inferenceAcceleratorOverrides"));
        }
    }
    Ok(())
}

/// Container-level checks: fields present that the agent cannot honour.
fn check_container_fields(
    c: &ContainerDefinition,
    o: Option<&ContainerOverride>,
) -> Result<(), String> {
    let name = c.name.as_deref().unwrap_or("?");
    let checks: [(bool, &str); 22] = [
        (
            c.mount_points.as_ref().is_some_and(|v| !v.is_empty()),
            "mountPoints",
        ),
        (
            c.volumes_from.as_ref().is_some_and(|v| !v.is_empty()),
            "volumesFrom",
        ),
        (c.links.as_ref().is_some_and(|v| !v.is_empty()), "links"),
        (c.hostname.is_some(), "hostname"),
        (c.health_check.is_some(), "healthCheck"),
        (c.secrets.as_ref().is_some_and(|v| !v.is_empty()), "secrets"),
        (
            c.environment_files.as_ref().is_some_and(|v| !v.is_empty()),
            "environmentFiles",
        ),
        (
            c.dns_servers.as_ref().is_some_and(|v| !v.is_empty()),
            "dnsServers",
        ),
        (
            c.dns_search_domains.as_ref().is_some_and(|v| !v.is_empty()),
            "dnsSearchDomains",
        ),
        (
            c.extra_hosts.as_ref().is_some_and(|v| !v.is_empty()),
            "extraHosts",
        ),
        (
            c.docker_security_options
                .as_ref()
                .is_some_and(|v| !v.is_empty()),
            "dockerSecurityOptions",
        ),
        (
            c.system_controls.as_ref().is_some_and(|v| !v.is_empty()),
            "systemControls",
        ),
        (
            c.resource_requirements
                .as_ref()
                .is_some_and(|v| !v.is_empty()),
            "resourceRequirements",
        ),
        (c.repository_credentials.is_some(), "repositoryCredentials"),
        (c.firelens_configuration.is_some(), "firelensConfiguration"),
        (
            c.credential_specs.as_ref().is_some_and(|v| !v.is_empty()),
            "credentialSpecs",
        ),
        (
            c.restart_policy
                .as_ref()
                .is_some_and(|r| r.enabled == Some(true)),
            "restartPolicy",
        ),
        (c.interactive == Some(true), "interactive"),
        (c.pseudo_terminal == Some(true), "pseudoTerminal"),
        (c.disable_networking == Some(true), "disableNetworking"),
        (
            o.is_some_and(|o| o.environment_files.as_ref().is_some_and(|v| !v.is_empty())),
            "environmentFiles overrides",
        ),
        (
            o.is_some_and(|o| {
                o.resource_requirements
                    .as_ref()
                    .is_some_and(|v| !v.is_empty())
            }),
            "resourceRequirements overrides",
        ),
    ];
    for (present, field) in checks {
        if present {
            return Err(unsupported(&format!("{field} (container {name})")));
        }
    }
    if let Some(lp) = &c.linux_parameters {
        // An all-empty linuxParameters is harmless; anything set is not.
        let empty = lp.capabilities.is_none()
            && lp.devices.as_ref().is_none_or(|v| v.is_empty())
            && lp.init_process_enabled.is_none_or(|v| !v)
            && lp.max_swap.is_none()
            && lp.shared_memory_size.is_none()
            && lp.swappiness.is_none()
            && lp.tmpfs.as_ref().is_none_or(|v| v.is_empty());
        if !empty {
            return Err(unsupported(&format!("linuxParameters (container {name})")));
        }
    }
    if let Some(lc) = &c.log_configuration {
        let driver = lc.log_driver.as_ref().map(|d| d.as_str().to_string());
        let plain = lc.options.as_ref().is_none_or(|o| o.is_empty())
            && lc.secret_options.as_ref().is_none_or(|o| o.is_empty());
        // json-file is the engine's default driver: honoured by doing
        // nothing, as long as no options are asked for.
        if !(driver.as_deref() == Some("json-file") && plain) {
            return Err(unsupported(&format!(
                "logConfiguration with driver {} (container {name}); only json-file without options is",
                driver.unwrap_or_default()
            )));
        }
    }
    Ok(())
}

fn merge_env(base: &[KeyValuePair], over: &[KeyValuePair]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for kv in base.iter().chain(over) {
        let Some(name) = kv.name.clone() else {
            continue;
        };
        let value = kv.value.clone().unwrap_or_default();
        if let Some(slot) = out.iter_mut().find(|(k, _)| *k == name) {
            slot.1 = value;
        } else {
            out.push((name, value));
        }
    }
    out
}

fn protocol(p: &Option<TransportProtocol>) -> Result<Protocol, String> {
    match p {
        None | Some(TransportProtocol::Tcp) => Ok(Protocol::Tcp),
        Some(TransportProtocol::Udp) => Ok(Protocol::Udp),
        Some(TransportProtocol::Unknown(v)) => Err(create_error(format!("unknown protocol {v:?}"))),
    }
}

/// Plans `task`: the pause container (awsvpc) and one spec per container
/// definition, with overrides applied. `Err` is the stopped reason.
pub fn plan_task(ctx: &SpecContext, task: &AssignedTask) -> Result<TaskPlan, String> {
    check_task_fields(task)?;
    let td = &task.task_definition;
    let task_id = task_id(&task.task_arn);
    let network = match &td.network_mode {
        None | Some(NetworkMode::Bridge) => NetMode::Bridge,
        Some(NetworkMode::Host) => NetMode::Host,
        Some(NetworkMode::None) => NetMode::None,
        Some(NetworkMode::Awsvpc) => NetMode::Awsvpc,
        Some(NetworkMode::Unknown(m)) => return Err(unsupported(&format!("networkMode {m}"))),
    };
    let overrides = task.overrides.as_ref();
    let task_cpu = overrides
        .and_then(|o| o.cpu.as_deref())
        .or(td.cpu.as_deref())
        .map(|s| {
            stevedore_model::taskdef::parse_cpu(s)
                .ok_or_else(|| create_error(format!("invalid task cpu {s:?}")))
        })
        .transpose()?;
    let task_memory = overrides
        .and_then(|o| o.memory.as_deref())
        .or(td.memory.as_deref())
        .map(|s| {
            stevedore_model::taskdef::parse_memory(s)
                .ok_or_else(|| create_error(format!("invalid task memory {s:?}")))
        })
        .transpose()?;
    let nano_cpus = task_cpu.map(|units| i64::from(units) * 1_000_000_000 / 1024);

    let defs = td.container_definitions.as_deref().unwrap_or_default();
    if defs.is_empty() {
        return Err(create_error("the task definition has no containers"));
    }
    let names: Vec<String> = defs
        .iter()
        .map(|c| c.name.clone().unwrap_or_default())
        .collect();
    let mut seen = BTreeSet::new();
    for n in &names {
        if n.is_empty() || !seen.insert(n.as_str()) {
            return Err(create_error(format!(
                "invalid or duplicate container name {n:?}"
            )));
        }
    }
    for o in overrides
        .and_then(|o| o.container_overrides.as_deref())
        .unwrap_or_default()
    {
        let n = o.name.as_deref().unwrap_or_default();
        if !names.iter().any(|x| x == n) {
            return Err(create_error(format!(
                "containerOverrides names container {n:?}, which is not in the task definition"
            )));
        }
    }

    let pause_name = pause_docker_name(&task_id, &ctx.name_suffix);
    let base = base_labels(ctx, task);
    let pause = if network == NetMode::Awsvpc {
        let Some(image) = ctx.pause_image.clone() else {
            return Err(create_error(
                "awsvpc network mode is not available on this container instance (no pause image)",
            ));
        };
        let mut l = base.clone();
        l.insert(labels::ROLE.to_string(), PAUSE_ROLE.to_string());
        l.insert(
            labels::CONTAINER.to_string(),
            PAUSE_CONTAINER_NAME.to_string(),
        );
        l.insert(
            "com.amazonaws.ecs.container-name".into(),
            PAUSE_CONTAINER_NAME.into(),
        );
        Some(ContainerSpec {
            name: pause_name.clone(),
            image,
            entry_point: None,
            command: None,
            env: Vec::new(),
            working_dir: None,
            user: None,
            cpu_shares: Some(MIN_CPU_SHARES),
            memory_mib: None,
            memory_reservation_mib: None,
            nano_cpus: None,
            ports: Vec::new(),
            network: NetworkSpec::Network(cluster_network(&ctx.cluster)),
            labels: l,
            ulimits: Vec::new(),
            readonly_rootfs: false,
            privileged: false,
            stop_timeout: Some(ctx.default_stop_timeout),
        })
    } else {
        None
    };

    let mut containers = Vec::with_capacity(defs.len());
    for (c, name) in defs.iter().zip(&names) {
        let o = overrides
            .and_then(|o| o.container_overrides.as_deref())
            .unwrap_or_default()
            .iter()
            .find(|o| o.name.as_deref() == Some(name.as_str()));
        check_container_fields(c, o)?;
        let image = c
            .image
            .clone()
            .filter(|i| !i.trim().is_empty())
            .ok_or_else(|| create_error(format!("container {name} has no image")))?;
        if c.privileged == Some(true) && !ctx.allow_privileged {
            return Err(create_error(format!(
                "container {name} asks for privileged mode, which is not allowed on this container instance"
            )));
        }

        let command = o
            .and_then(|o| o.command.clone())
            .or_else(|| c.command.clone());
        let env = merge_env(
            c.environment.as_deref().unwrap_or_default(),
            o.and_then(|o| o.environment.as_deref()).unwrap_or_default(),
        );
        let cpu = i64::from(o.and_then(|o| o.cpu).or(c.cpu).unwrap_or(0));
        let memory = o.and_then(|o| o.memory).or(c.memory).map(i64::from);
        let memory_reservation = o
            .and_then(|o| o.memory_reservation)
            .or(c.memory_reservation)
            .map(i64::from);
        if cpu < 0 {
            return Err(create_error(format!(
                "container {name}: cpu must not be negative"
            )));
        }
        // Task memory caps every container: a container without its own
        // hard limit gets the task's; one above it is refused, as by ECS.
        let memory_limit = match (memory, task_memory.map(i64::from)) {
            (Some(m), Some(t)) if m > t => {
                return Err(create_error(format!(
                    "container {name}: memory {m} MiB is more than the task memory {t} MiB"
                )))
            }
            (Some(m), _) => Some(m),
            (None, t) => t,
        };
        for (what, v) in [
            ("memory", memory_limit),
            ("memoryReservation", memory_reservation),
        ] {
            if let Some(v) = v {
                if v < MIN_CONTAINER_MEMORY_MIB {
                    return Err(create_error(format!(
                        "container {name}: {what} {v} MiB is below the minimum of {MIN_CONTAINER_MEMORY_MIB} MiB"
                    )));
                }
            }
        }
        if let (Some(m), Some(r)) = (memory_limit, memory_reservation) {
            if r > m {
                return Err(create_error(format!(
                    "container {name}: memoryReservation {r} MiB is more than the memory limit {m} MiB"
                )));
            }
        }

        let mut ports = Vec::new();
        let mut host_mode_ports = Vec::new();
        for pm in c.port_mappings.as_deref().unwrap_or_default() {
            if pm.container_port_range.is_some() {
                return Err(unsupported(&format!(
                    "containerPortRange (container {name})"
                )));
            }
            let cp = pm
                .container_port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0)
                .ok_or_else(|| create_error(format!("container {name}: invalid containerPort")))?;
            let hp = match pm.host_port {
                None | Some(0) => None,
                Some(h) => Some(u16::try_from(h).ok().filter(|h| *h > 0).ok_or_else(|| {
                    create_error(format!("container {name}: invalid hostPort {h}"))
                })?),
            };
            let proto = protocol(&pm.protocol)?;
            match network {
                NetMode::Bridge => ports.push(PortSpec {
                    container_port: cp,
                    host_port: hp,
                    protocol: proto,
                }),
                NetMode::Host | NetMode::Awsvpc => {
                    if hp.is_some_and(|h| h != cp) {
                        return Err(create_error(format!(
                            "container {name}: hostPort must equal containerPort ({cp}) in {} network mode",
                            if network == NetMode::Host { "host" } else { "awsvpc" }
                        )));
                    }
                    if network == NetMode::Host {
                        host_mode_ports.push(PortSpec {
                            container_port: cp,
                            host_port: Some(cp),
                            protocol: proto,
                        });
                    }
                }
                NetMode::None => {
                    return Err(create_error(format!(
                        "container {name}: portMappings are not allowed in none network mode"
                    )))
                }
            }
        }

        let mut ulimits = Vec::new();
        for u in c.ulimits.as_deref().unwrap_or_default() {
            let uname = u
                .name
                .as_ref()
                .map(|n| n.as_str().to_string())
                .ok_or_else(|| create_error(format!("container {name}: ulimit without a name")))?;
            ulimits.push(Ulimit {
                name: uname,
                soft: i64::from(u.soft_limit.unwrap_or(0)),
                hard: i64::from(u.hard_limit.unwrap_or(0)),
            });
        }

        let mut depends_on = Vec::new();
        for d in c.depends_on.as_deref().unwrap_or_default() {
            let dep = d.container_name.clone().unwrap_or_default();
            if !names.contains(&dep) || dep == *name {
                return Err(create_error(format!(
                    "container {name} depends on {dep:?}, which is not another container of the task"
                )));
            }
            let cond = match &d.condition {
                Some(ContainerCondition::Start) | None => Condition::Start,
                Some(ContainerCondition::Complete) => Condition::Complete,
                Some(ContainerCondition::Success) => Condition::Success,
                Some(ContainerCondition::Healthy) => {
                    return Err(unsupported(&format!(
                        "dependsOn condition HEALTHY (container {name}; container health checks)"
                    )))
                }
                Some(ContainerCondition::Unknown(v)) => {
                    return Err(create_error(format!("unknown dependsOn condition {v:?}")))
                }
            };
            depends_on.push((dep, cond));
        }

        let mut l: BTreeMap<String, String> = c.docker_labels.clone().unwrap_or_default();
        // Ours win: a task cannot pose as another task's container.
        l.extend(base.clone());
        l.insert(labels::CONTAINER.to_string(), name.clone());
        l.insert("com.amazonaws.ecs.container-name".into(), name.clone());

        let stop_timeout = c
            .stop_timeout
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s as u64))
            .unwrap_or(ctx.default_stop_timeout);
        let start_timeout = c
            .start_timeout
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s as u64));

        let net = match network {
            NetMode::Bridge => NetworkSpec::Bridge,
            NetMode::Host => NetworkSpec::Host,
            NetMode::None => NetworkSpec::None,
            NetMode::Awsvpc => NetworkSpec::Container(pause_name.clone()),
        };
        let spec = ContainerSpec {
            name: docker_name(&task_id, name, &ctx.name_suffix),
            image,
            entry_point: c.entry_point.clone(),
            command,
            env,
            working_dir: c.working_directory.clone(),
            user: c.user.clone(),
            cpu_shares: Some(cpu.clamp(MIN_CPU_SHARES, MAX_CPU_SHARES)),
            memory_mib: memory_limit,
            memory_reservation_mib: memory_reservation,
            nano_cpus,
            ports,
            network: net,
            labels: l,
            ulimits,
            readonly_rootfs: c.readonly_root_filesystem == Some(true),
            privileged: c.privileged == Some(true),
            stop_timeout: Some(stop_timeout),
        };
        containers.push(ContainerPlan {
            name: name.clone(),
            essential: c.essential.unwrap_or(true),
            depends_on,
            start_timeout,
            stop_timeout,
            cpu,
            memory,
            memory_reservation,
            host_mode_ports,
            spec,
        });
    }
    check_acyclic(&containers)?;
    Ok(TaskPlan {
        task_id,
        network,
        pause,
        containers,
    })
}

fn check_acyclic(containers: &[ContainerPlan]) -> Result<(), String> {
    // Kahn's algorithm over dependsOn edges.
    let index: BTreeMap<&str, usize> = containers
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let mut indegree: Vec<usize> = containers.iter().map(|c| c.depends_on.len()).collect();
    let mut ready: Vec<usize> = (0..containers.len())
        .filter(|i| indegree[*i] == 0)
        .collect();
    let mut done = 0;
    while let Some(i) = ready.pop() {
        done += 1;
        for (j, c) in containers.iter().enumerate() {
            for (dep, _) in &c.depends_on {
                if index[dep.as_str()] == i {
                    indegree[j] -= 1;
                    if indegree[j] == 0 {
                        ready.push(j);
                    }
                }
            }
        }
    }
    if done == containers.len() {
        Ok(())
    } else {
        Err(create_error("the containers' dependsOn form a cycle"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stevedore_api::ecs::{
        ContainerDependency, LogConfiguration, LogDriver, PortMapping, TaskDefinition,
        TaskOverride, Ulimit as EcsUlimit, UlimitName,
    };

    pub(crate) fn ctx() -> SpecContext {
        SpecContext {
            cluster: "default".into(),
            instance_arn: "arn:aws:ecs:us-east-1:000000000000:container-instance/default/ci1"
                .into(),
            name_suffix: "abcd1234".into(),
            allow_privileged: false,
            default_stop_timeout: Duration::from_secs(30),
            pause_image: Some("stevedore/pause:latest".into()),
        }
    }

    fn kv(k: &str, v: &str) -> KeyValuePair {
        KeyValuePair {
            name: Some(k.into()),
            value: Some(v.into()),
        }
    }

    fn def(name: &str) -> ContainerDefinition {
        ContainerDefinition {
            name: Some(name.into()),
            image: Some("busybox".into()),
            ..Default::default()
        }
    }

    fn task(defs: Vec<ContainerDefinition>) -> AssignedTask {
        AssignedTask {
            task_arn:
                "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef"
                    .into(),
            desired_status: "RUNNING".into(),
            task_definition: TaskDefinition {
                family: Some("web".into()),
                revision: Some(3),
                container_definitions: Some(defs),
                ..Default::default()
            },
            launch_type: "EC2".into(),
            ..Default::default()
        }
    }

    #[test]
    fn names_and_labels() {
        let p = plan_task(&ctx(), &task(vec![def("app")])).unwrap();
        assert_eq!(p.task_id, "0123456789abcdef0123456789abcdef");
        let s = &p.containers[0].spec;
        assert_eq!(
            s.name,
            "stevedore-0123456789abcdef0123456789abcdef-app-abcd1234"
        );
        assert_eq!(s.labels[labels::MANAGED], "true");
        assert_eq!(s.labels[labels::CLUSTER], "default");
        assert_eq!(s.labels[labels::INSTANCE], ctx().instance_arn);
        assert_eq!(s.labels[labels::TASK], task(vec![]).task_arn);
        assert_eq!(s.labels[labels::CONTAINER], "app");
        assert_eq!(s.labels["com.amazonaws.ecs.task-definition-family"], "web");
        assert_eq!(s.labels["com.amazonaws.ecs.task-definition-version"], "3");
        assert_eq!(s.network, NetworkSpec::Bridge);
        assert_eq!(p.network, NetMode::Bridge);
        assert!(p.pause.is_none());
        assert!(p.containers[0].essential);
        assert_eq!(s.cpu_shares, Some(2), "no cpu -> ECS's minimum of 2 shares");
        assert_eq!(s.stop_timeout, Some(Duration::from_secs(30)));
        assert_ne!(
            pause_docker_name("t", "s"),
            docker_name("t", "pause", "s"),
            "pause never collides"
        );
    }

    #[test]
    fn fields_are_mapped() {
        let mut c = def("app");
        c.command = Some(vec!["httpd".into(), "-f".into()]);
        c.entry_point = Some(vec!["/bin/sh".into(), "-c".into()]);
        c.environment = Some(vec![kv("A", "1"), kv("B", "2")]);
        c.working_directory = Some("/srv".into());
        c.user = Some("nobody".into());
        c.cpu = Some(512);
        c.memory = Some(128);
        c.memory_reservation = Some(64);
        c.essential = Some(false);
        c.readonly_root_filesystem = Some(true);
        c.stop_timeout = Some(5);
        c.start_timeout = Some(7);
        c.docker_labels = Some(BTreeMap::from([
            ("team".to_string(), "a".to_string()),
            (labels::TASK.to_string(), "spoofed".to_string()),
        ]));
        c.ulimits = Some(vec![EcsUlimit {
            name: Some(UlimitName::Nofile),
            soft_limit: Some(1024),
            hard_limit: Some(4096),
        }]);
        c.log_configuration = Some(LogConfiguration {
            log_driver: Some(LogDriver::JsonFile),
            ..Default::default()
        });
        let p = plan_task(&ctx(), &task(vec![c])).unwrap();
        let cp = &p.containers[0];
        let s = &cp.spec;
        assert_eq!(s.command.as_deref().unwrap(), ["httpd", "-f"]);
        assert_eq!(s.entry_point.as_deref().unwrap(), ["/bin/sh", "-c"]);
        assert_eq!(
            s.env,
            vec![("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        assert_eq!(s.working_dir.as_deref(), Some("/srv"));
        assert_eq!(s.user.as_deref(), Some("nobody"));
        assert_eq!(s.cpu_shares, Some(512));
        assert_eq!(s.memory_mib, Some(128));
        assert_eq!(s.memory_reservation_mib, Some(64));
        assert_eq!(s.nano_cpus, None);
        assert!(s.readonly_rootfs);
        assert!(!s.privileged);
        assert_eq!(s.stop_timeout, Some(Duration::from_secs(5)));
        assert_eq!(cp.start_timeout, Some(Duration::from_secs(7)));
        assert!(!cp.essential);
        assert_eq!(s.labels["team"], "a");
        assert_eq!(s.labels[labels::TASK], task(vec![]).task_arn, "ours win");
        assert_eq!(
            s.ulimits,
            vec![Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 4096
            }]
        );
    }

    #[test]
    fn overrides_are_applied() {
        let mut c = def("app");
        c.command = Some(vec!["old".into()]);
        c.environment = Some(vec![kv("A", "1"), kv("B", "2")]);
        c.cpu = Some(256);
        c.memory = Some(128);
        let mut t = task(vec![c, def("side")]);
        t.task_definition.cpu = Some("1024".into());
        t.task_definition.memory = Some("512".into());
        t.overrides = Some(TaskOverride {
            container_overrides: Some(vec![ContainerOverride {
                name: Some("app".into()),
                command: Some(vec!["new".into(), "arg".into()]),
                environment: Some(vec![kv("B", "override"), kv("C", "3")]),
                cpu: Some(100),
                memory: Some(200),
                memory_reservation: Some(50),
                ..Default::default()
            }]),
            cpu: Some("2 vCPU".into()),
            memory: Some("1 GB".into()),
            ..Default::default()
        });
        let p = plan_task(&ctx(), &t).unwrap();
        let s = &p.containers[0].spec;
        assert_eq!(s.command.as_deref().unwrap(), ["new", "arg"]);
        assert_eq!(
            s.env,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "override".into()),
                ("C".into(), "3".into())
            ]
        );
        assert_eq!(s.cpu_shares, Some(100));
        assert_eq!(s.memory_mib, Some(200));
        assert_eq!(s.memory_reservation_mib, Some(50));
        assert_eq!(
            s.nano_cpus,
            Some(2_000_000_000),
            "task cpu override: 2 vCPU"
        );
        // A container without its own limit gets the task memory.
        assert_eq!(p.containers[1].spec.memory_mib, Some(1024));
        assert_eq!(p.containers[1].spec.nano_cpus, Some(2_000_000_000));

        let mut bad = t.clone();
        bad.overrides
            .as_mut()
            .unwrap()
            .container_overrides
            .as_mut()
            .unwrap()[0]
            .name = Some("nope".into());
        assert!(plan_task(&ctx(), &bad).unwrap_err().contains("\"nope\""));
    }

    #[test]
    fn task_limits() {
        let mut c = def("app");
        c.memory = Some(600);
        let mut t = task(vec![c]);
        t.task_definition.memory = Some("512".into());
        t.task_definition.cpu = Some("256".into());
        let e = plan_task(&ctx(), &t).unwrap_err();
        assert!(e.starts_with("CannotCreateContainerError: "), "{e}");
        assert!(e.contains("more than the task memory"), "{e}");
        t.task_definition.container_definitions.as_mut().unwrap()[0].memory = Some(256);
        let p = plan_task(&ctx(), &t).unwrap();
        assert_eq!(p.containers[0].spec.memory_mib, Some(256));
        assert_eq!(p.containers[0].spec.nano_cpus, Some(250_000_000));

        let mut c = def("app");
        c.memory = Some(4);
        assert!(plan_task(&ctx(), &task(vec![c]))
            .unwrap_err()
            .contains("minimum of 6 MiB"));
        let mut c = def("app");
        c.memory = Some(64);
        c.memory_reservation = Some(128);
        assert!(plan_task(&ctx(), &task(vec![c]))
            .unwrap_err()
            .contains("memoryReservation"));
        let mut c = def("app");
        c.cpu = Some(1_000_000);
        let p = plan_task(&ctx(), &task(vec![c])).unwrap();
        assert_eq!(p.containers[0].spec.cpu_shares, Some(MAX_CPU_SHARES));
    }

    fn pm(cp: i32, hp: Option<i32>, proto: Option<TransportProtocol>) -> PortMapping {
        PortMapping {
            container_port: Some(cp),
            host_port: hp,
            protocol: proto,
            ..Default::default()
        }
    }

    #[test]
    fn ports_by_network_mode() {
        let mut c = def("app");
        c.port_mappings = Some(vec![
            pm(80, None, None),
            pm(81, Some(0), None),
            pm(53, Some(5353), Some(TransportProtocol::Udp)),
        ]);
        let p = plan_task(&ctx(), &task(vec![c.clone()])).unwrap();
        assert_eq!(
            p.containers[0].spec.ports,
            vec![
                PortSpec {
                    container_port: 80,
                    host_port: None,
                    protocol: Protocol::Tcp
                },
                PortSpec {
                    container_port: 81,
                    host_port: None,
                    protocol: Protocol::Tcp
                },
                PortSpec {
                    container_port: 53,
                    host_port: Some(5353),
                    protocol: Protocol::Udp
                },
            ]
        );

        let mut t = task(vec![c.clone()]);
        t.task_definition.network_mode = Some(NetworkMode::Host);
        let e = plan_task(&ctx(), &t).unwrap_err();
        assert!(e.contains("hostPort must equal containerPort"), "{e}");
        let mut hc = def("app");
        hc.port_mappings = Some(vec![pm(8080, None, None), pm(9090, Some(9090), None)]);
        let mut t = task(vec![hc.clone()]);
        t.task_definition.network_mode = Some(NetworkMode::Host);
        let p = plan_task(&ctx(), &t).unwrap();
        assert_eq!(p.containers[0].spec.network, NetworkSpec::Host);
        assert!(p.containers[0].spec.ports.is_empty());
        assert_eq!(p.containers[0].host_mode_ports.len(), 2);
        assert_eq!(p.containers[0].host_mode_ports[0].host_port, Some(8080));

        let mut t = task(vec![hc]);
        t.task_definition.network_mode = Some(NetworkMode::None);
        assert!(plan_task(&ctx(), &t)
            .unwrap_err()
            .contains("none network mode"));
        let mut t = task(vec![def("app")]);
        t.task_definition.network_mode = Some(NetworkMode::None);
        assert_eq!(
            plan_task(&ctx(), &t).unwrap().containers[0].spec.network,
            NetworkSpec::None
        );
    }

    #[test]
    fn awsvpc_uses_a_pause_container() {
        let mut c = def("app");
        c.port_mappings = Some(vec![pm(80, None, None)]);
        let mut t = task(vec![c, def("side")]);
        t.task_definition.network_mode = Some(NetworkMode::Awsvpc);
        let p = plan_task(&ctx(), &t).unwrap();
        assert_eq!(p.network, NetMode::Awsvpc);
        let pause = p.pause.as_ref().unwrap();
        assert_eq!(pause.image, "stevedore/pause:latest");
        assert_eq!(
            pause.network,
            NetworkSpec::Network("stevedore-default".into())
        );
        assert_eq!(pause.labels[labels::ROLE], "pause");
        assert_eq!(pause.labels[labels::TASK], t.task_arn);
        for c in &p.containers {
            assert_eq!(c.spec.network, NetworkSpec::Container(pause.name.clone()));
            assert!(c.spec.ports.is_empty(), "the task IP owns its ports");
        }
        let no_pause = SpecContext {
            pause_image: None,
            ..ctx()
        };
        assert!(plan_task(&no_pause, &t).unwrap_err().contains("awsvpc"));
        assert_eq!(
            cluster_network("arn:aws:ecs:r:1:cluster/web"),
            "stevedore-web"
        );
    }

    #[test]
    fn privileged_needs_permission() {
        let mut c = def("app");
        c.privileged = Some(true);
        let t = task(vec![c]);
        let e = plan_task(&ctx(), &t).unwrap_err();
        assert!(
            e.starts_with("CannotCreateContainerError: container app asks for privileged mode"),
            "{e}"
        );
        let allowed = SpecContext {
            allow_privileged: true,
            ..ctx()
        };
        assert!(
            plan_task(&allowed, &t).unwrap().containers[0]
                .spec
                .privileged
        );
    }

    #[test]
    fn unsupported_fields_are_refused_not_dropped() {
        let mut c = def("app");
        c.hostname = Some("h".into());
        assert!(plan_task(&ctx(), &task(vec![c]))
            .unwrap_err()
            .contains("hostname"));
        let mut c = def("app");
        c.log_configuration = Some(LogConfiguration {
            log_driver: Some(LogDriver::Awslogs),
            ..Default::default()
        });
        assert!(plan_task(&ctx(), &task(vec![c]))
            .unwrap_err()
            .contains("logConfiguration"));
        // Empty lists and false flags (CLI skeletons) are fine.
        let mut c = def("app");
        c.mount_points = Some(vec![]);
        c.volumes_from = Some(vec![]);
        c.interactive = Some(false);
        let mut t = task(vec![c]);
        t.task_definition.volumes = Some(vec![]);
        plan_task(&ctx(), &t).unwrap();
        t.task_definition.task_role_arn = Some("arn:aws:iam::1:role/x".into());
        assert!(plan_task(&ctx(), &t).unwrap_err().contains("taskRoleArn"));
    }

    #[test]
    fn depends_on() {
        let mut app = def("app");
        app.depends_on = Some(vec![ContainerDependency {
            container_name: Some("init".into()),
            condition: Some(ContainerCondition::Success),
        }]);
        let p = plan_task(&ctx(), &task(vec![def("init"), app.clone()])).unwrap();
        assert_eq!(
            p.containers[1].depends_on,
            vec![("init".to_string(), Condition::Success)]
        );
        assert!(plan_task(&ctx(), &task(vec![app.clone()]))
            .unwrap_err()
            .contains("\"init\""));
        let mut init = def("init");
        init.depends_on = Some(vec![ContainerDependency {
            container_name: Some("app".into()),
            condition: Some(ContainerCondition::Start),
        }]);
        assert!(plan_task(&ctx(), &task(vec![init, app]))
            .unwrap_err()
            .contains("cycle"));
        let mut h = def("app");
        h.depends_on = Some(vec![ContainerDependency {
            container_name: Some("init".into()),
            condition: Some(ContainerCondition::Healthy),
        }]);
        assert!(plan_task(&ctx(), &task(vec![def("init"), h]))
            .unwrap_err()
            .contains("HEALTHY"));
    }
}
