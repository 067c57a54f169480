//! From an assigned ECS task to the containers to create: pure functions.
//!
//! [`plan_task`] applies the RunTask `overrides`, maps every container
//! definition to a [`ContainerSpec`], and refuses — with the reason the task
//! will report — any field this agent cannot honour, instead of silently
//! dropping it.

use crate::logs::{AwsLogsConfig, AwsLogsError};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use stevedore_api::agent::AssignedTask;
use stevedore_api::ecs::{
    ContainerCondition, ContainerDefinition, ContainerOverride, DeviceCgroupPermission,
    KeyValuePair, NetworkMode, Scope, TransportProtocol,
};
use stevedore_runtime::{
    labels, ContainerOptions, ContainerSpec, DeviceSpec, HealthCheck, LogConfig, MountSpec,
    NetworkSpec, PortSpec, Protocol, TmpfsSpec, Ulimit, VolumeSpec,
};

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
    /// The agent's region (`awslogs-region` must match it).
    pub region: String,
    /// Logging drivers the engine has (Docker info `Plugins.Log`).
    pub log_drivers: Vec<String>,
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

impl NetMode {
    /// The ECS `networkMode` value.
    pub fn as_str(self) -> &'static str {
        match self {
            NetMode::Bridge => "bridge",
            NetMode::Host => "host",
            NetMode::None => "none",
            NetMode::Awsvpc => "awsvpc",
        }
    }
}

impl std::fmt::Display for NetMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `dependsOn` condition this agent implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Condition {
    Start,
    Complete,
    Success,
    Healthy,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Start => "START",
            Condition::Complete => "COMPLETE",
            Condition::Success => "SUCCESS",
            Condition::Healthy => "HEALTHY",
        }
    }
}

/// ECS's health check defaults, seconds.
pub const HEALTH_INTERVAL_DEFAULT: u64 = 30;
pub const HEALTH_TIMEOUT_DEFAULT: u64 = 5;
pub const HEALTH_RETRIES_DEFAULT: u32 = 3;

/// A named Docker volume a container needs before it is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeededVolume {
    pub spec: VolumeSpec,
    /// Create it when missing (task-scoped volumes always; shared ones with
    /// `autoprovision`).
    pub create: bool,
}

/// Where a task definition volume comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum VolumeSource {
    /// `host.sourcePath`: a bind mount.
    Bind(String),
    Docker(NeededVolume),
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
    /// The container definition has a `healthCheck`.
    pub health_check: bool,
    /// Docker volumes to ensure before creating the container.
    pub volumes: Vec<NeededVolume>,
    /// `awslogs`: the agent ships the container's output (Docker keeps it
    /// with json-file).
    pub awslogs: Option<AwsLogsConfig>,
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
    /// Docker volumes that live as long as the task (removed at cleanup).
    pub task_volumes: Vec<String>,
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

/// Whose field a [`SpecError::Unsupported`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldOwner {
    /// The task definition or the task's overrides.
    Task,
    /// A container definition (or its override), by name.
    Container(String),
    /// A task definition volume, by name.
    Volume(String),
}

impl std::fmt::Display for FieldOwner {
    /// How the reason names the owner after the field: nothing for the
    /// task, ` (container NAME)`, ` (volume NAME)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldOwner::Task => Ok(()),
            FieldOwner::Container(name) => write!(f, " (container {name})"),
            FieldOwner::Volume(name) => write!(f, " (volume {name})"),
        }
    }
}

/// Why [`plan_task`] refuses a task. The `Display` text is the stopped
/// reason the task and its containers report, with the ECS error class
/// first (`CannotCreateContainerError: `, or `CannotStartContainerError: `
/// for logging); decide on the variant, never on the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    // Fields and features this agent cannot honour.
    /// A field present that the agent would otherwise drop.
    #[error("CannotCreateContainerError: {field}{owner} is not supported by this agent")]
    Unsupported {
        field: &'static str,
        owner: FieldOwner,
    },
    #[error("CannotCreateContainerError: networkMode {0} is not supported by this agent")]
    UnsupportedNetworkMode(String),
    #[error("CannotCreateContainerError: awsvpc network mode is not available on this container instance (no pause image)")]
    AwsvpcUnavailable,
    #[error("CannotCreateContainerError: container {container} asks for privileged mode, which is not allowed on this container instance")]
    PrivilegedNotAllowed { container: String },
    #[error("CannotCreateContainerError: container {container}: portMappings are not allowed in none network mode")]
    PortMappingsInNoneMode { container: String },
    /// A field the task's network mode does not allow.
    #[error("CannotCreateContainerError: container {container}: {field} is not allowed in {mode} network mode")]
    NotAllowedInNetworkMode {
        container: String,
        field: &'static str,
        mode: NetMode,
    },

    // The task definition's shape.
    #[error("CannotCreateContainerError: invalid task {what} {value:?}")]
    InvalidTaskSize { what: &'static str, value: String },
    #[error("CannotCreateContainerError: the task definition has no containers")]
    NoContainers,
    #[error("CannotCreateContainerError: invalid or duplicate container name {0:?}")]
    InvalidContainerName(String),
    #[error("CannotCreateContainerError: containerOverrides names container {0:?}, which is not in the task definition")]
    UnknownOverrideContainer(String),
    #[error("CannotCreateContainerError: container {container} has no image")]
    MissingImage { container: String },

    // Limits.
    #[error("CannotCreateContainerError: container {container}: cpu must not be negative")]
    NegativeCpu { container: String },
    #[error("CannotCreateContainerError: container {container}: memory {memory} MiB is more than the task memory {task_memory} MiB")]
    MemoryAboveTask {
        container: String,
        memory: i64,
        task_memory: i64,
    },
    /// `what` is `memory` or `memoryReservation`.
    #[error("CannotCreateContainerError: container {container}: {what} {mib} MiB is below the minimum of {MIN_CONTAINER_MEMORY_MIB} MiB")]
    MemoryBelowMinimum {
        container: String,
        what: &'static str,
        mib: i64,
    },
    #[error("CannotCreateContainerError: container {container}: memoryReservation {reservation} MiB is more than the memory limit {limit} MiB")]
    ReservationAboveLimit {
        container: String,
        reservation: i64,
        limit: i64,
    },
    #[error("CannotCreateContainerError: container {container}: ulimit without a name")]
    UlimitWithoutName { container: String },

    // Ports.
    #[error("CannotCreateContainerError: container {container}: invalid containerPort")]
    InvalidContainerPort { container: String },
    #[error("CannotCreateContainerError: container {container}: invalid hostPort {host_port}")]
    InvalidHostPort { container: String, host_port: i32 },
    #[error("CannotCreateContainerError: unknown protocol {0:?}")]
    UnknownProtocol(String),
    /// Host and awsvpc mode publish the container port itself.
    #[error("CannotCreateContainerError: container {container}: hostPort must equal containerPort ({container_port}) in {mode} network mode")]
    HostPortNotContainerPort {
        container: String,
        container_port: u16,
        mode: NetMode,
    },

    // Dependencies between containers.
    #[error("CannotCreateContainerError: container {container} depends on {dependency:?}, which is not another container of the task")]
    UnknownDependency {
        container: String,
        dependency: String,
    },
    #[error("CannotCreateContainerError: container {container} depends on {dependency} being HEALTHY, but {dependency} has no healthCheck")]
    HealthyWithoutHealthCheck {
        container: String,
        dependency: String,
    },
    #[error("CannotCreateContainerError: unknown dependsOn condition {0:?}")]
    UnknownCondition(String),
    #[error("CannotCreateContainerError: the containers' dependsOn form a cycle")]
    DependencyCycle,
    #[error("CannotCreateContainerError: container {container}: volumesFrom names {source_container:?}, which is not another container of the task")]
    InvalidVolumesFrom {
        container: String,
        source_container: String,
    },
    #[error("CannotCreateContainerError: container {container}: link {link:?} does not name another container of the task")]
    InvalidLink { container: String, link: String },

    // Volumes and mounts.
    #[error("CannotCreateContainerError: invalid or duplicate volume name {0:?}")]
    InvalidVolumeName(String),
    #[error(
        "CannotCreateContainerError: volume {volume} has both host and dockerVolumeConfiguration"
    )]
    VolumeHostAndDocker { volume: String },
    #[error("CannotCreateContainerError: volume {volume}: host.sourcePath {path:?} is not an absolute path")]
    VolumeSourceNotAbsolute { volume: String, path: String },
    #[error("CannotCreateContainerError: volume {volume}: unknown scope {scope:?}")]
    UnknownVolumeScope { volume: String, scope: String },
    #[error("CannotCreateContainerError: container {container}: mountPoints names volume {volume:?}, which is not in the task definition")]
    UnknownMountVolume { container: String, volume: String },
    /// A container path (`field` names it) that must be absolute.
    #[error("CannotCreateContainerError: container {container}: {field} {path:?} is not an absolute path")]
    NotAbsolutePath {
        container: String,
        field: &'static str,
        path: Option<String>,
    },

    // Health check, Linux parameters and host options.
    #[error("CannotCreateContainerError: container {container}: healthCheck.command must start with CMD or CMD-SHELL and name a command")]
    InvalidHealthCheckCommand { container: String },
    /// `field` is `interval`, `timeout`, `retries` or `startPeriod`.
    #[error("CannotCreateContainerError: container {container}: healthCheck.{field} {value} is negative")]
    NegativeHealthCheckValue {
        container: String,
        field: &'static str,
        value: i32,
    },
    #[error(
        "CannotCreateContainerError: container {container}: tmpfs {path} needs a positive size"
    )]
    TmpfsWithoutSize { container: String, path: String },
    #[error(
        "CannotCreateContainerError: container {container}: sharedMemorySize must be positive"
    )]
    NonPositiveSharedMemory { container: String },
    #[error("CannotCreateContainerError: container {container}: unknown device permission {permission:?}")]
    UnknownDevicePermission {
        container: String,
        permission: String,
    },
    #[error("CannotCreateContainerError: container {container}: systemControls need a namespace and a value")]
    IncompleteSystemControl { container: String },
    #[error("CannotCreateContainerError: container {container}: extraHosts need a hostname and an ipAddress")]
    IncompleteExtraHost { container: String },

    // Logging.
    #[error(
        "CannotCreateContainerError: container {container}: logConfiguration without a logDriver"
    )]
    MissingLogDriver { container: String },
    #[error("CannotStartContainerError: container {container}: the log driver {driver} is not available on this container instance (the Docker engine has: {})", .available.join(", "))]
    LogDriverUnavailable {
        container: String,
        driver: String,
        /// The engine's logging drivers.
        available: Vec<String>,
    },
    #[error("CannotStartContainerError: awslogs (container {container}): {error}")]
    AwsLogs {
        container: String,
        error: AwsLogsError,
    },
}

fn unsupported(field: &'static str, owner: FieldOwner) -> SpecError {
    SpecError::Unsupported { field, owner }
}

/// Task-level checks: fields the agent would otherwise drop.
fn check_task_fields(task: &AssignedTask) -> Result<(), SpecError> {
    let td = &task.task_definition;
    if td.pid_mode.is_some() {
        return Err(unsupported("pidMode", FieldOwner::Task));
    }
    if td.ipc_mode.is_some() {
        return Err(unsupported("ipcMode", FieldOwner::Task));
    }
    if td.proxy_configuration.is_some() {
        return Err(unsupported("proxyConfiguration", FieldOwner::Task));
    }
    if td
        .inference_accelerators
        .as_ref()
        .is_some_and(|v| !v.is_empty())
    {
        return Err(unsupported("inferenceAccelerators", FieldOwner::Task));
    }
    if td.task_role_arn.is_some()
        || task
            .overrides
            .as_ref()
            .is_some_and(|o| o.task_role_arn.is_some())
    {
        return Err(unsupported(
            "taskRoleArn (task IAM role credentials)",
            FieldOwner::Task,
        ));
    }
    if let Some(o) = &task.overrides {
        if o.inference_accelerator_overrides
            .as_ref()
            .is_some_and(|v| !v.is_empty())
        {
            return Err(unsupported(
                "inferenceAcceleratorOverrides",
                FieldOwner::Task,
            ));
        }
    }
    Ok(())
}

/// Container-level checks: fields present that the agent cannot honour.
fn check_container_fields(
    c: &ContainerDefinition,
    o: Option<&ContainerOverride>,
) -> Result<(), SpecError> {
    let name = c.name.as_deref().unwrap_or("?");
    let checks: [(bool, &'static str); 9] = [
        (c.secrets.as_ref().is_some_and(|v| !v.is_empty()), "secrets"),
        (
            c.environment_files.as_ref().is_some_and(|v| !v.is_empty()),
            "environmentFiles",
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
            return Err(unsupported(field, FieldOwner::Container(name.to_string())));
        }
    }
    if let Some(lp) = &c.linux_parameters {
        if lp.max_swap.is_some() || lp.swappiness.is_some() {
            return Err(unsupported(
                "linuxParameters.maxSwap and swappiness",
                FieldOwner::Container(name.to_string()),
            ));
        }
    }
    Ok(())
}

/// The container's `logConfiguration`: what Docker gets, and the awslogs
/// shipping. `json-file` and `none` go to Docker as they are; `awslogs`
/// runs as json-file and is shipped by the agent; any other driver goes
/// to Docker when the engine has it (`Plugins.Log`), else it is refused.
fn log_plan(
    ctx: &SpecContext,
    c: &ContainerDefinition,
    name: &str,
) -> Result<(Option<LogConfig>, Option<AwsLogsConfig>), SpecError> {
    let Some(lc) = &c.log_configuration else {
        return Ok((None, None));
    };
    let driver = lc
        .log_driver
        .as_ref()
        .map(|d| d.as_str().to_string())
        .unwrap_or_default();
    if lc.secret_options.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(unsupported(
            "logConfiguration.secretOptions",
            FieldOwner::Container(name.to_string()),
        ));
    }
    let options = lc.options.clone().unwrap_or_default();
    match driver.as_str() {
        "awslogs" => {
            let aws = crate::logs::parse_awslogs(&options, &ctx.region).map_err(|error| {
                SpecError::AwsLogs {
                    container: name.to_string(),
                    error,
                }
            })?;
            let local = crate::logs::spool_log_config();
            Ok((Some(local), Some(aws)))
        }
        "json-file" | "none" => Ok((Some(LogConfig { driver, options }), None)),
        "" => Err(SpecError::MissingLogDriver {
            container: name.to_string(),
        }),
        _ if ctx.log_drivers.contains(&driver) => Ok((Some(LogConfig { driver, options }), None)),
        _ => Err(SpecError::LogDriverUnavailable {
            container: name.to_string(),
            driver,
            available: ctx.log_drivers.clone(),
        }),
    }
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

fn protocol(p: &Option<TransportProtocol>) -> Result<Protocol, SpecError> {
    match p {
        None | Some(TransportProtocol::Tcp) => Ok(Protocol::Tcp),
        Some(TransportProtocol::Udp) => Ok(Protocol::Udp),
        Some(TransportProtocol::Unknown(v)) => Err(SpecError::UnknownProtocol(v.clone())),
    }
}

/// Plans `task`: the pause container (awsvpc) and one spec per container
/// definition, with overrides applied. `Err`'s text is the stopped reason.
pub fn plan_task(ctx: &SpecContext, task: &AssignedTask) -> Result<TaskPlan, SpecError> {
    check_task_fields(task)?;
    let td = &task.task_definition;
    let task_id = task_id(&task.task_arn);
    let network = match &td.network_mode {
        None | Some(NetworkMode::Bridge) => NetMode::Bridge,
        Some(NetworkMode::Host) => NetMode::Host,
        Some(NetworkMode::None) => NetMode::None,
        Some(NetworkMode::Awsvpc) => NetMode::Awsvpc,
        Some(NetworkMode::Unknown(m)) => return Err(SpecError::UnsupportedNetworkMode(m.clone())),
    };
    let overrides = task.overrides.as_ref();
    let task_cpu = overrides
        .and_then(|o| o.cpu.as_deref())
        .or(td.cpu.as_deref())
        .map(|s| {
            stevedore_model::taskdef::parse_cpu(s).ok_or_else(|| SpecError::InvalidTaskSize {
                what: "cpu",
                value: s.to_string(),
            })
        })
        .transpose()?;
    let task_memory = overrides
        .and_then(|o| o.memory.as_deref())
        .or(td.memory.as_deref())
        .map(|s| {
            stevedore_model::taskdef::parse_memory(s).ok_or_else(|| SpecError::InvalidTaskSize {
                what: "memory",
                value: s.to_string(),
            })
        })
        .transpose()?;
    let nano_cpus = task_cpu.map(|units| i64::from(units) * 1_000_000_000 / 1024);

    let defs = td.container_definitions.as_deref().unwrap_or_default();
    if defs.is_empty() {
        return Err(SpecError::NoContainers);
    }
    let names: Vec<String> = defs
        .iter()
        .map(|c| c.name.clone().unwrap_or_default())
        .collect();
    let mut seen = BTreeSet::new();
    for n in &names {
        if n.is_empty() || !seen.insert(n.as_str()) {
            return Err(SpecError::InvalidContainerName(n.clone()));
        }
    }
    for o in overrides
        .and_then(|o| o.container_overrides.as_deref())
        .unwrap_or_default()
    {
        let n = o.name.as_deref().unwrap_or_default();
        if !names.iter().any(|x| x == n) {
            return Err(SpecError::UnknownOverrideContainer(n.to_string()));
        }
    }

    let pause_name = pause_docker_name(&task_id, &ctx.name_suffix);
    let base = base_labels(ctx, task);
    let pause = if network == NetMode::Awsvpc {
        let Some(image) = ctx.pause_image.clone() else {
            return Err(SpecError::AwsvpcUnavailable);
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
            options: ContainerOptions::default(),
        })
    } else {
        None
    };

    let volumes = plan_volumes(ctx, task, &task_id)?;
    let task_volumes: Vec<String> = volumes
        .values()
        .filter_map(|v| match v {
            VolumeSource::Docker(n) if n.spec.labels.contains_key(labels::TASK) => {
                Some(n.spec.name.clone())
            }
            _ => None,
        })
        .collect();
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
            .ok_or_else(|| SpecError::MissingImage {
                container: name.clone(),
            })?;
        if c.privileged == Some(true) && !ctx.allow_privileged {
            return Err(SpecError::PrivilegedNotAllowed {
                container: name.clone(),
            });
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
            return Err(SpecError::NegativeCpu {
                container: name.clone(),
            });
        }
        // Task memory caps every container: a container without its own
        // hard limit gets the task's; one above it is refused, as by ECS.
        let memory_limit = match (memory, task_memory.map(i64::from)) {
            (Some(m), Some(t)) if m > t => {
                return Err(SpecError::MemoryAboveTask {
                    container: name.clone(),
                    memory: m,
                    task_memory: t,
                })
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
                    return Err(SpecError::MemoryBelowMinimum {
                        container: name.clone(),
                        what,
                        mib: v,
                    });
                }
            }
        }
        if let (Some(m), Some(r)) = (memory_limit, memory_reservation) {
            if r > m {
                return Err(SpecError::ReservationAboveLimit {
                    container: name.clone(),
                    reservation: r,
                    limit: m,
                });
            }
        }

        let mut ports = Vec::new();
        let mut host_mode_ports = Vec::new();
        for pm in c.port_mappings.as_deref().unwrap_or_default() {
            if pm.container_port_range.is_some() {
                return Err(unsupported(
                    "containerPortRange",
                    FieldOwner::Container(name.clone()),
                ));
            }
            let cp = pm
                .container_port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0)
                .ok_or_else(|| SpecError::InvalidContainerPort {
                    container: name.clone(),
                })?;
            let hp = match pm.host_port {
                None | Some(0) => None,
                Some(h) => Some(u16::try_from(h).ok().filter(|h| *h > 0).ok_or_else(|| {
                    SpecError::InvalidHostPort {
                        container: name.clone(),
                        host_port: h,
                    }
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
                        return Err(SpecError::HostPortNotContainerPort {
                            container: name.clone(),
                            container_port: cp,
                            mode: network,
                        });
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
                    return Err(SpecError::PortMappingsInNoneMode {
                        container: name.clone(),
                    })
                }
            }
        }

        let mut ulimits = Vec::new();
        for u in c.ulimits.as_deref().unwrap_or_default() {
            let uname = u
                .name
                .as_ref()
                .map(|n| n.as_str().to_string())
                .ok_or_else(|| SpecError::UlimitWithoutName {
                    container: name.clone(),
                })?;
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
                return Err(SpecError::UnknownDependency {
                    container: name.clone(),
                    dependency: dep,
                });
            }
            let cond = match &d.condition {
                Some(ContainerCondition::Start) | None => Condition::Start,
                Some(ContainerCondition::Complete) => Condition::Complete,
                Some(ContainerCondition::Success) => Condition::Success,
                Some(ContainerCondition::Healthy) => {
                    let has_check = defs
                        .iter()
                        .any(|x| x.name.as_ref() == Some(&dep) && x.health_check.is_some());
                    if !has_check {
                        return Err(SpecError::HealthyWithoutHealthCheck {
                            container: name.clone(),
                            dependency: dep,
                        });
                    }
                    Condition::Healthy
                }
                Some(ContainerCondition::Unknown(v)) => {
                    return Err(SpecError::UnknownCondition(v.clone()))
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

        let (mut options, needed) = container_options(
            ctx,
            c,
            name,
            &names,
            &task_id,
            network,
            &volumes,
            &mut depends_on,
        )?;
        let (log_config, awslogs) = log_plan(ctx, c, name)?;
        options.log_config = log_config;

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
            options,
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
            health_check: c.health_check.is_some(),
            volumes: needed,
            awslogs,
            spec,
        });
    }
    check_acyclic(&containers)?;
    Ok(TaskPlan {
        task_id,
        network,
        pause,
        containers,
        task_volumes,
    })
}

/// Docker name of a task-scoped volume.
pub fn task_volume_name(task_id: &str, volume: &str, suffix: &str) -> String {
    format!("stevedore-{task_id}-{volume}-{suffix}")
}

/// The task definition's volumes, by name.
fn plan_volumes(
    ctx: &SpecContext,
    task: &AssignedTask,
    task_id: &str,
) -> Result<BTreeMap<String, VolumeSource>, SpecError> {
    let mut out = BTreeMap::new();
    for v in task.task_definition.volumes.as_deref().unwrap_or_default() {
        let name = v.name.clone().unwrap_or_default();
        let valid = !name.is_empty()
            && name.len() <= 255
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid || out.contains_key(&name) {
            return Err(SpecError::InvalidVolumeName(name));
        }
        for (present, what) in [
            (
                v.efs_volume_configuration.is_some(),
                "efsVolumeConfiguration",
            ),
            (
                v.fsx_windows_file_server_volume_configuration.is_some(),
                "fsxWindowsFileServerVolumeConfiguration",
            ),
            (
                v.s3files_volume_configuration.is_some(),
                "s3filesVolumeConfiguration",
            ),
            (v.configured_at_launch == Some(true), "configuredAtLaunch"),
        ] {
            if present {
                return Err(unsupported(what, FieldOwner::Volume(name)));
            }
        }
        let source_path = v
            .host
            .as_ref()
            .and_then(|h| h.source_path.clone())
            .filter(|p| !p.is_empty());
        let source = match (source_path, &v.docker_volume_configuration) {
            (Some(_), Some(_)) => return Err(SpecError::VolumeHostAndDocker { volume: name }),
            (Some(path), None) => {
                if !path.starts_with('/') {
                    return Err(SpecError::VolumeSourceNotAbsolute { volume: name, path });
                }
                VolumeSource::Bind(path)
            }
            (None, Some(d)) => {
                let shared = match &d.scope {
                    None | Some(Scope::Task) => false,
                    Some(Scope::Shared) => true,
                    Some(Scope::Unknown(s)) => {
                        return Err(SpecError::UnknownVolumeScope {
                            volume: name,
                            scope: s.clone(),
                        })
                    }
                };
                let mut l = d.labels.clone().unwrap_or_default();
                let docker_name = if shared {
                    name.clone()
                } else {
                    l.insert(labels::TASK.to_string(), task.task_arn.clone());
                    l.insert(labels::INSTANCE.to_string(), ctx.instance_arn.clone());
                    task_volume_name(task_id, &name, &ctx.name_suffix)
                };
                VolumeSource::Docker(NeededVolume {
                    spec: VolumeSpec {
                        name: docker_name,
                        driver: d.driver.clone().filter(|d| !d.is_empty()),
                        driver_opts: d.driver_opts.clone().unwrap_or_default(),
                        labels: l,
                    },
                    create: !shared || d.autoprovision == Some(true),
                })
            }
            // An empty host volume: Docker volume living as long as the task.
            (None, None) => VolumeSource::Docker(NeededVolume {
                spec: VolumeSpec {
                    name: task_volume_name(task_id, &name, &ctx.name_suffix),
                    driver: None,
                    driver_opts: BTreeMap::new(),
                    labels: BTreeMap::from([
                        (labels::TASK.to_string(), task.task_arn.clone()),
                        (labels::INSTANCE.to_string(), ctx.instance_arn.clone()),
                    ]),
                },
                create: true,
            }),
        };
        out.insert(name, source);
    }
    Ok(out)
}

fn absolute(path: Option<&String>, field: &'static str, name: &str) -> Result<String, SpecError> {
    match path {
        Some(p) if p.starts_with('/') => Ok(p.clone()),
        other => Err(SpecError::NotAbsolutePath {
            container: name.to_string(),
            field,
            path: other.cloned(),
        }),
    }
}

fn add_start_dependency(depends_on: &mut Vec<(String, Condition)>, dep: &str) {
    if !depends_on.iter().any(|(d, _)| d == dep) {
        depends_on.push((dep.to_string(), Condition::Start));
    }
}

/// The health check, volumes, Linux parameters and host options of one
/// container, plus the Docker volumes it needs. `volumesFrom` and `links`
/// add an implicit START dependency on their container, as on ECS.
#[allow(clippy::too_many_arguments)]
fn container_options(
    ctx: &SpecContext,
    c: &ContainerDefinition,
    name: &str,
    names: &[String],
    task_id: &str,
    network: NetMode,
    volumes: &BTreeMap<String, VolumeSource>,
    depends_on: &mut Vec<(String, Condition)>,
) -> Result<(ContainerOptions, Vec<NeededVolume>), SpecError> {
    let mut o = ContainerOptions::default();
    let mut needed: Vec<NeededVolume> = Vec::new();
    let not_in = |field: &'static str| SpecError::NotAllowedInNetworkMode {
        container: name.to_string(),
        field,
        mode: network,
    };

    if let Some(h) = &c.health_check {
        let cmd = h.command.clone().unwrap_or_default();
        match cmd.first().map(String::as_str) {
            Some("CMD" | "CMD-SHELL") if cmd.len() >= 2 => {}
            _ => {
                return Err(SpecError::InvalidHealthCheckCommand {
                    container: name.to_string(),
                })
            }
        }
        let negative = |field: &'static str, value: i32| SpecError::NegativeHealthCheckValue {
            container: name.to_string(),
            field,
            value,
        };
        let secs =
            |v: Option<i32>, default: u64, field: &'static str| -> Result<Duration, SpecError> {
                match v {
                    None => Ok(Duration::from_secs(default)),
                    Some(v) if v >= 0 => Ok(Duration::from_secs(v as u64)),
                    Some(v) => Err(negative(field, v)),
                }
            };
        o.health_check = Some(HealthCheck {
            test: cmd,
            interval: secs(h.interval, HEALTH_INTERVAL_DEFAULT, "interval")?,
            timeout: secs(h.timeout, HEALTH_TIMEOUT_DEFAULT, "timeout")?,
            retries: match h.retries {
                None => HEALTH_RETRIES_DEFAULT,
                Some(r) => u32::try_from(r).map_err(|_| negative("retries", r))?,
            },
            start_period: secs(h.start_period, 0, "startPeriod")?,
        });
    }

    for mp in c.mount_points.as_deref().unwrap_or_default() {
        let vol = mp.source_volume.clone().unwrap_or_default();
        let target = absolute(
            mp.container_path.as_ref(),
            "mountPoints.containerPath",
            name,
        )?;
        let source = match volumes.get(&vol) {
            None => {
                return Err(SpecError::UnknownMountVolume {
                    container: name.to_string(),
                    volume: vol,
                })
            }
            Some(VolumeSource::Bind(path)) => path.clone(),
            Some(VolumeSource::Docker(n)) => {
                if !needed.contains(n) {
                    needed.push(n.clone());
                }
                n.spec.name.clone()
            }
        };
        o.mounts.push(MountSpec {
            source,
            target,
            read_only: mp.read_only == Some(true),
        });
    }

    for vf in c.volumes_from.as_deref().unwrap_or_default() {
        let src = vf.source_container.clone().unwrap_or_default();
        if !names.contains(&src) || src == name {
            return Err(SpecError::InvalidVolumesFrom {
                container: name.to_string(),
                source_container: src,
            });
        }
        add_start_dependency(depends_on, &src);
        o.volumes_from.push((
            docker_name(task_id, &src, &ctx.name_suffix),
            vf.read_only == Some(true),
        ));
    }

    for link in c.links.as_deref().unwrap_or_default() {
        if network != NetMode::Bridge {
            return Err(not_in("links"));
        }
        let (target, alias) = link
            .split_once(':')
            .unwrap_or((link.as_str(), link.as_str()));
        if !names.iter().any(|n| n == target) || target == name || alias.is_empty() {
            return Err(SpecError::InvalidLink {
                container: name.to_string(),
                link: link.clone(),
            });
        }
        add_start_dependency(depends_on, target);
        o.links.push(format!(
            "{}:{alias}",
            docker_name(task_id, target, &ctx.name_suffix)
        ));
    }

    if let Some(lp) = &c.linux_parameters {
        if let Some(caps) = &lp.capabilities {
            o.cap_add = caps.add.clone().unwrap_or_default();
            o.cap_drop = caps.drop.clone().unwrap_or_default();
        }
        o.init = lp.init_process_enabled == Some(true);
        for t in lp.tmpfs.as_deref().unwrap_or_default() {
            let path = absolute(t.container_path.as_ref(), "tmpfs.containerPath", name)?;
            let size = t
                .size
                .filter(|s| *s > 0)
                .ok_or_else(|| SpecError::TmpfsWithoutSize {
                    container: name.to_string(),
                    path: path.clone(),
                })?;
            o.tmpfs.push(TmpfsSpec {
                container_path: path,
                size_mib: Some(i64::from(size)),
                options: t.mount_options.clone().unwrap_or_default(),
            });
        }
        if let Some(shm) = lp.shared_memory_size {
            if shm <= 0 {
                return Err(SpecError::NonPositiveSharedMemory {
                    container: name.to_string(),
                });
            }
            o.shm_size_mib = Some(i64::from(shm));
        }
        for d in lp.devices.as_deref().unwrap_or_default() {
            let host_path = absolute(d.host_path.as_ref(), "devices.hostPath", name)?;
            let container_path = d
                .container_path
                .as_ref()
                .map(|p| absolute(Some(p), "devices.containerPath", name))
                .transpose()?;
            let mut permissions = String::new();
            for p in d.permissions.as_deref().unwrap_or_default() {
                permissions.push(match p {
                    DeviceCgroupPermission::Read => 'r',
                    DeviceCgroupPermission::Write => 'w',
                    DeviceCgroupPermission::Mknod => 'm',
                    DeviceCgroupPermission::Unknown(v) => {
                        return Err(SpecError::UnknownDevicePermission {
                            container: name.to_string(),
                            permission: v.clone(),
                        })
                    }
                });
            }
            if permissions.is_empty() {
                permissions = "rwm".to_string();
            }
            o.devices.push(DeviceSpec {
                host_path,
                container_path,
                permissions,
            });
        }
    }

    for sc in c.system_controls.as_deref().unwrap_or_default() {
        let (Some(k), Some(v)) = (&sc.namespace, &sc.value) else {
            return Err(SpecError::IncompleteSystemControl {
                container: name.to_string(),
            });
        };
        o.sysctls.insert(k.clone(), v.clone());
    }
    for h in c.extra_hosts.as_deref().unwrap_or_default() {
        if network == NetMode::Awsvpc {
            return Err(not_in("extraHosts"));
        }
        let (Some(host), Some(ip)) = (&h.hostname, &h.ip_address) else {
            return Err(SpecError::IncompleteExtraHost {
                container: name.to_string(),
            });
        };
        o.extra_hosts.push(format!("{host}:{ip}"));
    }
    let dns = c.dns_servers.clone().unwrap_or_default();
    let search = c.dns_search_domains.clone().unwrap_or_default();
    if network == NetMode::Awsvpc && !dns.is_empty() {
        return Err(not_in("dnsServers"));
    }
    if network == NetMode::Awsvpc && !search.is_empty() {
        return Err(not_in("dnsSearchDomains"));
    }
    o.dns_servers = dns;
    o.dns_search = search;
    if let Some(h) = &c.hostname {
        if network == NetMode::Awsvpc {
            return Err(not_in("hostname"));
        }
        o.hostname = Some(h.clone());
    }
    o.interactive = c.interactive == Some(true);
    o.tty = c.pseudo_terminal == Some(true);
    o.security_opt = c.docker_security_options.clone().unwrap_or_default();
    o.network_disabled = c.disable_networking == Some(true);
    Ok((o, needed))
}

fn check_acyclic(containers: &[ContainerPlan]) -> Result<(), SpecError> {
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
        Err(SpecError::DependencyCycle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stevedore_api::ecs::{
        ContainerDependency, Device, DockerVolumeConfiguration, HealthCheck as EcsHealthCheck,
        HostEntry, HostVolumeProperties, KernelCapabilities, LinuxParameters, LogConfiguration,
        LogDriver, MountPoint, PortMapping, SystemControl, TaskDefinition, TaskOverride, Tmpfs,
        Ulimit as EcsUlimit, UlimitName, Volume, VolumeFrom,
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
            region: "us-east-1".into(),
            log_drivers: vec!["json-file".into(), "local".into(), "syslog".into()],
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
            desired_status: stevedore_api::agent::TaskStatus::Running,
            task_definition: TaskDefinition {
                family: Some("web".into()),
                revision: Some(3),
                container_definitions: Some(defs),
                ..Default::default()
            },
            overrides: None,
            launch_type: stevedore_api::ecs::LaunchType::Ec2,
            stopped_reason: None,
            stop_code: None,
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
        assert_eq!(
            plan_task(&ctx(), &bad).unwrap_err(),
            SpecError::UnknownOverrideContainer("nope".into())
        );
    }

    #[test]
    fn task_limits() {
        let mut c = def("app");
        c.memory = Some(600);
        let mut t = task(vec![c]);
        t.task_definition.memory = Some("512".into());
        t.task_definition.cpu = Some("256".into());
        let e = plan_task(&ctx(), &t).unwrap_err();
        assert_eq!(
            e,
            SpecError::MemoryAboveTask {
                container: "app".into(),
                memory: 600,
                task_memory: 512
            }
        );
        assert_eq!(
            e.to_string(),
            "CannotCreateContainerError: container app: memory 600 MiB is more than the task memory 512 MiB"
        );
        t.task_definition.container_definitions.as_mut().unwrap()[0].memory = Some(256);
        let p = plan_task(&ctx(), &t).unwrap();
        assert_eq!(p.containers[0].spec.memory_mib, Some(256));
        assert_eq!(p.containers[0].spec.nano_cpus, Some(250_000_000));

        let mut c = def("app");
        c.memory = Some(4);
        let e = plan_task(&ctx(), &task(vec![c])).unwrap_err();
        assert_eq!(
            e,
            SpecError::MemoryBelowMinimum {
                container: "app".into(),
                what: "memory",
                mib: 4
            }
        );
        assert_eq!(
            e.to_string(),
            "CannotCreateContainerError: container app: memory 4 MiB is below the minimum of 6 MiB"
        );
        let mut c = def("app");
        c.memory = Some(64);
        c.memory_reservation = Some(128);
        assert_eq!(
            plan_task(&ctx(), &task(vec![c])).unwrap_err(),
            SpecError::ReservationAboveLimit {
                container: "app".into(),
                reservation: 128,
                limit: 64
            }
        );
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
        assert!(
            matches!(
                e,
                SpecError::HostPortNotContainerPort {
                    mode: NetMode::Host,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .ends_with(": hostPort must equal containerPort (53) in host network mode"),
            "{e}"
        );
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
        let e = plan_task(&ctx(), &t).unwrap_err();
        assert_eq!(
            e,
            SpecError::PortMappingsInNoneMode {
                container: "app".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "CannotCreateContainerError: container app: portMappings are not allowed in none network mode"
        );
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
        assert_eq!(
            plan_task(&no_pause, &t).unwrap_err(),
            SpecError::AwsvpcUnavailable
        );
        assert_eq!(
            cluster_network("arn:aws:ecs:r:1:cluster/web"),
            "stevedore-web"
        );
    }

    #[test]
    fn log_drivers() {
        let with = |driver: LogDriver, opts: &[(&str, &str)]| {
            let mut c = def("app");
            c.log_configuration = Some(LogConfiguration {
                log_driver: Some(driver),
                options: Some(
                    opts.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            });
            plan_task(&ctx(), &task(vec![c])).map(|p| p.containers[0].clone())
        };
        // awslogs: json-file locally, shipped by the agent.
        let c = with(
            LogDriver::Awslogs,
            &[("awslogs-group", "/ecs/x"), ("awslogs-stream-prefix", "p")],
        )
        .unwrap();
        let lc = c.spec.options.log_config.unwrap();
        assert_eq!(lc.driver, "json-file");
        // The agent's rotation, not the daemon's: never under the shipper.
        assert_eq!(lc.options["max-size"], crate::logs::SPOOL_MAX_SIZE);
        assert_eq!(lc.options["max-file"], "1");
        let aws = c.awslogs.unwrap();
        assert_eq!(aws.group, "/ecs/x");
        assert_eq!(aws.stream_prefix.as_deref(), Some("p"));
        // json-file with options and none go to Docker as they are.
        let c = with(LogDriver::JsonFile, &[("max-size", "10m")]).unwrap();
        let lc = c.spec.options.log_config.unwrap();
        assert_eq!(
            (lc.driver.as_str(), lc.options["max-size"].as_str()),
            ("json-file", "10m")
        );
        assert!(c.awslogs.is_none());
        let c = with(LogDriver::Unknown("none".into()), &[]).unwrap();
        assert_eq!(c.spec.options.log_config.unwrap().driver, "none");
        // Others when the engine has them.
        let c = with(LogDriver::Syslog, &[("tag", "x")]).unwrap();
        assert_eq!(c.spec.options.log_config.unwrap().driver, "syslog");
        let e = with(LogDriver::Splunk, &[]).unwrap_err();
        assert!(
            matches!(&e, SpecError::LogDriverUnavailable { driver, .. } if driver == "splunk"),
            "{e:?}"
        );
        assert!(
            e.to_string().starts_with(
                "CannotStartContainerError: container app: the log driver splunk is not available"
            ),
            "{e}"
        );
        let e = with(
            LogDriver::Awslogs,
            &[("awslogs-group", "g"), ("awslogs-region", "eu-west-1")],
        )
        .unwrap_err();
        assert_eq!(
            e,
            SpecError::AwsLogs {
                container: "app".into(),
                error: AwsLogsError::OtherRegion {
                    region: "eu-west-1".into(),
                    agent_region: "us-east-1".into()
                }
            }
        );
        assert_eq!(
            e.to_string(),
            "CannotStartContainerError: awslogs (container app): awslogs-region eu-west-1 is not this agent's region us-east-1 (there is one logs endpoint)"
        );
    }

    #[test]
    fn privileged_needs_permission() {
        let mut c = def("app");
        c.privileged = Some(true);
        let t = task(vec![c]);
        let e = plan_task(&ctx(), &t).unwrap_err();
        assert_eq!(
            e,
            SpecError::PrivilegedNotAllowed {
                container: "app".into()
            }
        );
        assert!(
            e.to_string()
                .starts_with("CannotCreateContainerError: container app asks for privileged mode"),
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
        c.secrets = Some(vec![Default::default()]);
        let e = plan_task(&ctx(), &task(vec![c])).unwrap_err();
        assert_eq!(
            e,
            SpecError::Unsupported {
                field: "secrets",
                owner: FieldOwner::Container("app".into())
            }
        );
        assert_eq!(
            e.to_string(),
            "CannotCreateContainerError: secrets (container app) is not supported by this agent"
        );
        let mut c = def("app");
        c.hostname = Some("h".into());
        let mut t = task(vec![c]);
        t.task_definition.network_mode = Some(NetworkMode::Awsvpc);
        assert_eq!(
            plan_task(&ctx(), &t).unwrap_err(),
            SpecError::NotAllowedInNetworkMode {
                container: "app".into(),
                field: "hostname",
                mode: NetMode::Awsvpc
            }
        );
        let mut c = def("app");
        c.linux_parameters = Some(LinuxParameters {
            swappiness: Some(10),
            ..Default::default()
        });
        assert_eq!(
            plan_task(&ctx(), &task(vec![c])).unwrap_err(),
            SpecError::Unsupported {
                field: "linuxParameters.maxSwap and swappiness",
                owner: FieldOwner::Container("app".into())
            }
        );
        let mut t = task(vec![def("app")]);
        t.task_definition.volumes = Some(vec![Volume {
            name: Some("efs".into()),
            efs_volume_configuration: Some(Default::default()),
            ..Default::default()
        }]);
        let e = plan_task(&ctx(), &t).unwrap_err();
        assert_eq!(
            e,
            SpecError::Unsupported {
                field: "efsVolumeConfiguration",
                owner: FieldOwner::Volume("efs".into())
            }
        );
        assert_eq!(
            e.to_string(),
            "CannotCreateContainerError: efsVolumeConfiguration (volume efs) is not supported by this agent"
        );
        let mut c = def("app");
        c.log_configuration = Some(LogConfiguration {
            log_driver: Some(LogDriver::Awslogs),
            ..Default::default()
        });
        let e = plan_task(&ctx(), &task(vec![c])).unwrap_err();
        assert_eq!(
            e,
            SpecError::AwsLogs {
                container: "app".into(),
                error: AwsLogsError::MissingGroup
            }
        );
        assert_eq!(
            e.to_string(),
            "CannotStartContainerError: awslogs (container app): the awslogs-group option is required"
        );
        // Empty lists and false flags (CLI skeletons) are fine.
        let mut c = def("app");
        c.mount_points = Some(vec![]);
        c.volumes_from = Some(vec![]);
        c.interactive = Some(false);
        let mut t = task(vec![c]);
        t.task_definition.volumes = Some(vec![]);
        plan_task(&ctx(), &t).unwrap();
        t.task_definition.task_role_arn = Some("arn:aws:iam::1:role/x".into());
        let e = plan_task(&ctx(), &t).unwrap_err();
        assert_eq!(
            e,
            SpecError::Unsupported {
                field: "taskRoleArn (task IAM role credentials)",
                owner: FieldOwner::Task
            }
        );
        assert_eq!(
            e.to_string(),
            "CannotCreateContainerError: taskRoleArn (task IAM role credentials) is not supported by this agent"
        );
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
        let e = plan_task(&ctx(), &task(vec![app.clone()])).unwrap_err();
        assert_eq!(
            e,
            SpecError::UnknownDependency {
                container: "app".into(),
                dependency: "init".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "CannotCreateContainerError: container app depends on \"init\", which is not another container of the task"
        );
        let mut init = def("init");
        init.depends_on = Some(vec![ContainerDependency {
            container_name: Some("app".into()),
            condition: Some(ContainerCondition::Start),
        }]);
        assert_eq!(
            plan_task(&ctx(), &task(vec![init, app])).unwrap_err(),
            SpecError::DependencyCycle
        );
        let mut h = def("app");
        h.depends_on = Some(vec![ContainerDependency {
            container_name: Some("init".into()),
            condition: Some(ContainerCondition::Healthy),
        }]);
        assert_eq!(
            plan_task(&ctx(), &task(vec![def("init"), h])).unwrap_err(),
            SpecError::HealthyWithoutHealthCheck {
                container: "app".into(),
                dependency: "init".into()
            }
        );
    }

    #[test]
    fn health_check_defaults_and_forms() {
        let mut c = def("app");
        c.health_check = Some(EcsHealthCheck {
            command: Some(vec!["CMD-SHELL".into(), "curl -f localhost".into()]),
            ..Default::default()
        });
        let p = plan_task(&ctx(), &task(vec![c.clone()])).unwrap();
        assert!(p.containers[0].health_check);
        assert_eq!(
            p.containers[0].spec.options.health_check,
            Some(HealthCheck {
                test: vec!["CMD-SHELL".into(), "curl -f localhost".into()],
                interval: Duration::from_secs(30),
                timeout: Duration::from_secs(5),
                retries: 3,
                start_period: Duration::ZERO,
            })
        );
        c.health_check = Some(EcsHealthCheck {
            command: Some(vec!["CMD".into(), "true".into()]),
            interval: Some(5),
            timeout: Some(2),
            retries: Some(1),
            start_period: Some(10),
        });
        let p = plan_task(&ctx(), &task(vec![c.clone()])).unwrap();
        let h = p.containers[0].spec.options.health_check.clone().unwrap();
        assert_eq!(
            (h.interval, h.timeout, h.retries, h.start_period),
            (
                Duration::from_secs(5),
                Duration::from_secs(2),
                1,
                Duration::from_secs(10)
            )
        );
        c.health_check = Some(EcsHealthCheck {
            command: Some(vec!["curl".into()]),
            ..Default::default()
        });
        assert_eq!(
            plan_task(&ctx(), &task(vec![c])).unwrap_err(),
            SpecError::InvalidHealthCheckCommand {
                container: "app".into()
            }
        );
        // HEALTHY on a dependency with a check is planned.
        let mut db = def("db");
        db.health_check = Some(EcsHealthCheck {
            command: Some(vec!["CMD".into(), "true".into()]),
            ..Default::default()
        });
        let mut app = def("app");
        app.depends_on = Some(vec![ContainerDependency {
            container_name: Some("db".into()),
            condition: Some(ContainerCondition::Healthy),
        }]);
        let p = plan_task(&ctx(), &task(vec![db, app])).unwrap();
        assert_eq!(
            p.containers[1].depends_on,
            vec![("db".to_string(), Condition::Healthy)]
        );
    }

    #[test]
    fn volumes_and_mount_points() {
        let mut web = def("web");
        let mp = |v: &str, path: &str, ro: bool| MountPoint {
            source_volume: Some(v.into()),
            container_path: Some(path.into()),
            read_only: Some(ro),
        };
        web.mount_points = Some(vec![
            mp("hostdir", "/h", true),
            mp("scratch", "/s", false),
            mp("shared", "/shared", false),
            mp("tvol", "/t", false),
        ]);
        let mut side = def("side");
        side.volumes_from = Some(vec![VolumeFrom {
            source_container: Some("web".into()),
            read_only: Some(true),
        }]);
        let mut t = task(vec![web, side]);
        t.task_definition.volumes = Some(vec![
            Volume {
                name: Some("hostdir".into()),
                host: Some(HostVolumeProperties {
                    source_path: Some("/srv/data".into()),
                }),
                ..Default::default()
            },
            Volume {
                name: Some("scratch".into()),
                host: Some(HostVolumeProperties { source_path: None }),
                ..Default::default()
            },
            Volume {
                name: Some("shared".into()),
                docker_volume_configuration: Some(DockerVolumeConfiguration {
                    scope: Some(Scope::Shared),
                    autoprovision: Some(true),
                    driver: Some("local".into()),
                    labels: Some(BTreeMap::from([("team".into(), "a".into())])),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: Some("tvol".into()),
                docker_volume_configuration: Some(DockerVolumeConfiguration {
                    scope: Some(Scope::Task),
                    driver_opts: Some(BTreeMap::from([("type".into(), "tmpfs".into())])),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ]);
        let p = plan_task(&ctx(), &t).unwrap();
        let id = "0123456789abcdef0123456789abcdef";
        let scratch = format!("stevedore-{id}-scratch-abcd1234");
        let tvol = format!("stevedore-{id}-tvol-abcd1234");
        let o = &p.containers[0].spec.options;
        let m = |source: &str, target: &str, read_only: bool| MountSpec {
            source: source.into(),
            target: target.into(),
            read_only,
        };
        assert_eq!(
            o.mounts,
            vec![
                m("/srv/data", "/h", true),
                m(&scratch, "/s", false),
                m("shared", "/shared", false),
                m(&tvol, "/t", false),
            ]
        );
        let needed = &p.containers[0].volumes;
        assert_eq!(needed.len(), 3);
        assert!(needed.iter().all(|n| n.create));
        assert_eq!(needed[1].spec.driver.as_deref(), Some("local"));
        assert_eq!(needed[1].spec.labels["team"], "a");
        assert!(!needed[1].spec.labels.contains_key(labels::TASK));
        assert_eq!(needed[2].spec.driver_opts["type"], "tmpfs");
        let mut tv = p.task_volumes.clone();
        tv.sort();
        assert_eq!(tv, vec![scratch, tvol]);
        // volumesFrom: the Docker name, read-only, and an implied START.
        let side = &p.containers[1];
        assert_eq!(
            side.spec.options.volumes_from,
            vec![(format!("stevedore-{id}-web-abcd1234"), true)]
        );
        assert_eq!(side.depends_on, vec![("web".to_string(), Condition::Start)]);

        // Shared without autoprovision must exist; unknown volumes are refused.
        let mut t2 = t.clone();
        let vols = t2.task_definition.volumes.as_mut().unwrap();
        vols[2]
            .docker_volume_configuration
            .as_mut()
            .unwrap()
            .autoprovision = None;
        let p = plan_task(&ctx(), &t2).unwrap();
        assert!(!p.containers[0].volumes[1].create);
        let mut c = def("x");
        c.mount_points = Some(vec![mp("nope", "/n", false)]);
        assert_eq!(
            plan_task(&ctx(), &task(vec![c])).unwrap_err(),
            SpecError::UnknownMountVolume {
                container: "x".into(),
                volume: "nope".into()
            }
        );
    }

    #[test]
    fn linux_parameters_and_host_options() {
        let mut c = def("app");
        c.linux_parameters = Some(LinuxParameters {
            capabilities: Some(KernelCapabilities {
                add: Some(vec!["NET_ADMIN".into()]),
                drop: Some(vec!["CHOWN".into()]),
            }),
            init_process_enabled: Some(true),
            tmpfs: Some(vec![Tmpfs {
                container_path: Some("/tmp".into()),
                size: Some(64),
                mount_options: Some(vec!["noexec".into()]),
            }]),
            shared_memory_size: Some(256),
            devices: Some(vec![Device {
                host_path: Some("/dev/null".into()),
                container_path: Some("/dev/nothing".into()),
                permissions: Some(vec![DeviceCgroupPermission::Read]),
            }]),
            ..Default::default()
        });
        c.system_controls = Some(vec![SystemControl {
            namespace: Some("net.core.somaxconn".into()),
            value: Some("1024".into()),
        }]);
        c.extra_hosts = Some(vec![HostEntry {
            hostname: Some("db".into()),
            ip_address: Some("10.0.0.5".into()),
        }]);
        c.dns_servers = Some(vec!["10.0.0.2".into()]);
        c.dns_search_domains = Some(vec!["corp".into()]);
        c.hostname = Some("web".into());
        c.interactive = Some(true);
        c.pseudo_terminal = Some(true);
        c.docker_security_options = Some(vec!["no-new-privileges".into()]);
        c.links = Some(vec!["db:database".into()]);
        let mut nonet = def("nonet");
        nonet.disable_networking = Some(true);
        let p = plan_task(&ctx(), &task(vec![c.clone(), def("db"), nonet])).unwrap();
        let o = &p.containers[0].spec.options;
        assert_eq!(o.cap_add, vec!["NET_ADMIN"]);
        assert_eq!(o.cap_drop, vec!["CHOWN"]);
        assert!(o.init);
        assert_eq!(
            o.tmpfs,
            vec![TmpfsSpec {
                container_path: "/tmp".into(),
                size_mib: Some(64),
                options: vec!["noexec".into()],
            }]
        );
        assert_eq!(o.shm_size_mib, Some(256));
        assert_eq!(
            o.devices,
            vec![DeviceSpec {
                host_path: "/dev/null".into(),
                container_path: Some("/dev/nothing".into()),
                permissions: "r".into(),
            }]
        );
        assert_eq!(o.sysctls["net.core.somaxconn"], "1024");
        assert_eq!(o.extra_hosts, vec!["db:10.0.0.5"]);
        assert_eq!(o.dns_servers, vec!["10.0.0.2"]);
        assert_eq!(o.dns_search, vec!["corp"]);
        assert_eq!(o.hostname.as_deref(), Some("web"));
        assert!(o.interactive && o.tty);
        assert_eq!(o.security_opt, vec!["no-new-privileges"]);
        assert_eq!(
            o.links,
            vec!["stevedore-0123456789abcdef0123456789abcdef-db-abcd1234:database"]
        );
        assert_eq!(
            p.containers[0].depends_on,
            vec![("db".to_string(), Condition::Start)]
        );
        assert!(p.containers[2].spec.options.network_disabled);
        // links are bridge-only; extraHosts/dns are not allowed in awsvpc.
        let mut t = task(vec![c, def("db")]);
        t.task_definition.network_mode = Some(NetworkMode::Host);
        let e = plan_task(&ctx(), &t).unwrap_err();
        assert_eq!(
            e,
            SpecError::NotAllowedInNetworkMode {
                container: "app".into(),
                field: "links",
                mode: NetMode::Host
            }
        );
        assert_eq!(
            e.to_string(),
            "CannotCreateContainerError: container app: links is not allowed in host network mode"
        );
        let mut c = def("app");
        c.extra_hosts = Some(vec![HostEntry {
            hostname: Some("db".into()),
            ip_address: Some("10.0.0.5".into()),
        }]);
        let mut t = task(vec![c]);
        t.task_definition.network_mode = Some(NetworkMode::Awsvpc);
        assert_eq!(
            plan_task(&ctx(), &t).unwrap_err(),
            SpecError::NotAllowedInNetworkMode {
                container: "app".into(),
                field: "extraHosts",
                mode: NetMode::Awsvpc
            }
        );
    }

    /// The reasons a task reports keep the text they had as strings.
    #[test]
    fn reasons_keep_their_text() {
        let cases: Vec<(SpecError, &str)> = vec![
            (
                SpecError::UnsupportedNetworkMode("nat".into()),
                "CannotCreateContainerError: networkMode nat is not supported by this agent",
            ),
            (
                SpecError::InvalidTaskSize {
                    what: "cpu",
                    value: "lots".into(),
                },
                "CannotCreateContainerError: invalid task cpu \"lots\"",
            ),
            (
                SpecError::InvalidHostPort {
                    container: "app".into(),
                    host_port: -1,
                },
                "CannotCreateContainerError: container app: invalid hostPort -1",
            ),
            (
                SpecError::HostPortNotContainerPort {
                    container: "app".into(),
                    container_port: 80,
                    mode: NetMode::Awsvpc,
                },
                "CannotCreateContainerError: container app: hostPort must equal containerPort (80) in awsvpc network mode",
            ),
            (
                SpecError::NotAbsolutePath {
                    container: "app".into(),
                    field: "tmpfs.containerPath",
                    path: Some("tmp".into()),
                },
                "CannotCreateContainerError: container app: tmpfs.containerPath Some(\"tmp\") is not an absolute path",
            ),
            (
                SpecError::NotAbsolutePath {
                    container: "app".into(),
                    field: "devices.hostPath",
                    path: None,
                },
                "CannotCreateContainerError: container app: devices.hostPath None is not an absolute path",
            ),
            (
                SpecError::NegativeHealthCheckValue {
                    container: "app".into(),
                    field: "retries",
                    value: -2,
                },
                "CannotCreateContainerError: container app: healthCheck.retries -2 is negative",
            ),
            (
                SpecError::LogDriverUnavailable {
                    container: "app".into(),
                    driver: "splunk".into(),
                    available: vec!["json-file".into(), "local".into()],
                },
                "CannotStartContainerError: container app: the log driver splunk is not available on this container instance (the Docker engine has: json-file, local)",
            ),
            (
                SpecError::UnknownVolumeScope {
                    volume: "v".into(),
                    scope: "global".into(),
                },
                "CannotCreateContainerError: volume v: unknown scope \"global\"",
            ),
            (
                SpecError::VolumeSourceNotAbsolute {
                    volume: "v".into(),
                    path: "data".into(),
                },
                "CannotCreateContainerError: volume v: host.sourcePath \"data\" is not an absolute path",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
    }
}
