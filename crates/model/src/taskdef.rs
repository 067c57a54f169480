//! RegisterTaskDefinition rules: what ECS refuses, what it normalises, and
//! what it computes (`compatibilities`, `requiresAttributes`).
//!
//! Semantic problems are `ClientException`, as ECS answers them; the message
//! always names the container and field to fix.

use crate::{arn::Scope, ModelError};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use stevedore_api::ecs::{
    Attribute, Compatibility, ContainerDefinition, NetworkMode, RegisterTaskDefinitionRequest,
    TaskDefinition, TaskDefinitionStatus, TransportProtocol,
};
use stevedore_api::Timestamp;

pub const MAX_CONTAINERS: usize = 10;
pub const MAX_DEFINITION_BYTES: usize = 64 * 1024;

/// Fargate's valid task sizes: (cpu units, allowed memory MiB).
fn fargate_memory_ok(cpu: u32, mem: u32) -> bool {
    let steps =
        |lo: u32, hi: u32, step: u32| mem >= lo && mem <= hi && (mem - lo).is_multiple_of(step);
    match cpu {
        256 => matches!(mem, 512 | 1024 | 2048),
        512 => steps(1024, 4096, 1024),
        1024 => steps(2048, 8192, 1024),
        2048 => steps(4096, 16384, 1024),
        4096 => steps(8192, 30720, 1024),
        8192 => steps(16384, 61440, 4096),
        16384 => steps(32768, 122880, 8192),
        _ => false,
    }
}

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Parses task-level `cpu`: integer units, or `N vCPU` (case-insensitive).
pub fn parse_cpu(s: &str) -> Option<u32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u32>() {
        return Some(n);
    }
    let lower = t.to_ascii_lowercase();
    let num = lower.strip_suffix("vcpu")?.trim();
    let v: f64 = num.parse().ok()?;
    if !(v.is_finite() && v > 0.0) {
        return None;
    }
    let units = v * 1024.0;
    (units.fract() == 0.0 && units <= u32::MAX as f64).then_some(units as u32)
}

/// Parses task-level `memory`: integer MiB, or `N GB` (case-insensitive).
pub fn parse_memory(s: &str) -> Option<u32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u32>() {
        return Some(n);
    }
    let lower = t.to_ascii_lowercase();
    let num = lower.strip_suffix("gb")?.trim();
    let v: f64 = num.parse().ok()?;
    if !(v.is_finite() && v > 0.0) {
        return None;
    }
    let mib = v * 1024.0;
    (mib.fract() == 0.0 && mib <= u32::MAX as f64).then_some(mib as u32)
}

fn err(msg: impl Into<String>) -> ModelError {
    ModelError::client(msg)
}

fn requires(req: &RegisterTaskDefinitionRequest, c: Compatibility) -> bool {
    req.requires_compatibilities
        .as_deref()
        .unwrap_or_default()
        .contains(&c)
}

/// The result of validation: the normalised task-level sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sizes {
    pub cpu: Option<u32>,
    pub memory: Option<u32>,
}

pub fn validate(req: &RegisterTaskDefinitionRequest) -> Result<Sizes, ModelError> {
    let size = serde_json::to_vec(req).map(|v| v.len()).unwrap_or(0);
    if size > MAX_DEFINITION_BYTES {
        return Err(err(format!(
            "The task definition is {size} bytes; the limit is {MAX_DEFINITION_BYTES} bytes (64 KiB). Move large values such as environment variables into secrets or files."
        )));
    }
    let family = req.family.as_deref().unwrap_or("");
    if !valid_name(family) {
        return Err(err(format!(
            "Invalid family '{family}': a family name must be 1 to 255 letters (uppercase and lowercase), numbers, hyphens and underscores."
        )));
    }
    let containers = req.container_definitions.as_deref().unwrap_or_default();
    if containers.is_empty() {
        return Err(err(
            "containerDefinitions must contain at least one container definition.",
        ));
    }
    if containers.len() > MAX_CONTAINERS {
        return Err(err(format!(
            "containerDefinitions has {} containers; a task definition can have at most {MAX_CONTAINERS}.",
            containers.len()
        )));
    }

    let network = req.network_mode.clone().unwrap_or(NetworkMode::Bridge);
    let fargate = requires(req, Compatibility::Fargate);
    let external = requires(req, Compatibility::External);

    // Task-level sizes.
    let cpu = match req.cpu.as_deref() {
        None => None,
        Some(s) => Some(parse_cpu(s).ok_or_else(|| {
            err(format!(
                "Invalid 'cpu' setting for task: '{s}'. Give CPU units as an integer (e.g. 1024) or as vCPUs (e.g. '1 vCPU')."
            ))
        })?),
    };
    let memory = match req.memory.as_deref() {
        None => None,
        Some(s) => Some(parse_memory(s).ok_or_else(|| {
            err(format!(
                "Invalid 'memory' setting for task: '{s}'. Give MiB as an integer (e.g. 2048) or as GB (e.g. '2 GB')."
            ))
        })?),
    };
    if let Some(c) = cpu {
        if !fargate && !(128..=196_608).contains(&c) {
            return Err(err(format!(
                "Invalid 'cpu' setting for task: {c} CPU units. The task cpu must be between 128 and 196608 units."
            )));
        }
    }
    if let Some(m) = memory {
        if m < 6 {
            return Err(err(format!(
                "Invalid 'memory' setting for task: {m} MiB. The task memory must be at least 6 MiB."
            )));
        }
    }
    if fargate {
        if network != NetworkMode::Awsvpc {
            return Err(err(format!(
                "Fargate only supports network mode 'awsvpc'; this task definition uses '{}'. Set networkMode to awsvpc.",
                network.as_str()
            )));
        }
        match (cpu, memory) {
            (Some(c), Some(m)) if fargate_memory_ok(c, m) => {}
            (Some(c), Some(m)) => {
                return Err(err(format!(
                    "No Fargate configuration exists for given values: {c} CPU, {m} memory. See the valid cpu/memory combinations for Fargate."
                )))
            }
            _ => {
                return Err(err(
                    "Fargate requires task-level 'cpu' and 'memory' to be set on the task definition.",
                ))
            }
        }
    }
    if external && network == NetworkMode::Awsvpc {
        return Err(err(
            "The EXTERNAL launch type does not support network mode 'awsvpc'. Use bridge, host or none.",
        ));
    }
    if let Some(es) = &req.ephemeral_storage {
        let g = es.size_in_gib.unwrap_or(0);
        if !(21..=200).contains(&g) {
            return Err(err(format!(
                "Invalid ephemeralStorage.sizeInGiB {g}: it must be between 21 and 200."
            )));
        }
    }

    // Containers.
    let mut names: HashSet<&str> = HashSet::new();
    for c in containers {
        let name = c.name.as_deref().unwrap_or("");
        if name.is_empty() {
            return Err(err("Container.name should not be null or empty."));
        }
        if !valid_name(name) {
            return Err(err(format!(
                "Invalid container name '{name}': use 1 to 255 letters, numbers, hyphens and underscores."
            )));
        }
        if !names.insert(name) {
            return Err(err(format!(
                "Duplicate container name '{name}': container names must be unique within a task definition."
            )));
        }
        if c.image.as_deref().unwrap_or("").trim().is_empty() {
            return Err(err(format!(
                "Container.image should not be null or empty (container '{name}')."
            )));
        }
    }
    if !containers.iter().any(|c| c.essential.unwrap_or(true)) {
        return Err(err(
            "A task definition must have at least one essential container; set essential=true on one of them.",
        ));
    }

    let volume_names: HashSet<&str> = req
        .volumes
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.name.as_deref())
        .collect();
    {
        let mut seen = HashSet::new();
        for v in req.volumes.as_deref().unwrap_or_default() {
            let n = v.name.as_deref().unwrap_or("");
            if !valid_name(n) {
                return Err(err(format!(
                    "Invalid volume name '{n}': use 1 to 255 letters, numbers, hyphens and underscores."
                )));
            }
            if !seen.insert(n) {
                return Err(err(format!("Duplicate volume name '{n}'.")));
            }
        }
    }

    let mut task_host_ports: HashMap<(i32, String), &str> = HashMap::new();
    let mut container_cpu_sum: u64 = 0;
    for c in containers {
        let name = c.name.as_deref().unwrap_or("");
        validate_container_resources(c, name, memory)?;
        container_cpu_sum += c.cpu.unwrap_or(0).max(0) as u64;

        for d in c.depends_on.as_deref().unwrap_or_default() {
            let dep = d.container_name.as_deref().unwrap_or("");
            if dep == name {
                return Err(err(format!(
                    "Container '{name}' cannot depend on itself in dependsOn."
                )));
            }
            if !names.contains(dep) {
                return Err(err(format!(
                    "Container '{name}' has a dependsOn entry for container '{dep}', which is not in this task definition."
                )));
            }
        }
        let links = c.links.as_deref().unwrap_or_default();
        if !links.is_empty() && network != NetworkMode::Bridge {
            return Err(err(format!(
                "Container '{name}' uses links, which are only supported in network mode 'bridge' (this task uses '{}').",
                network.as_str()
            )));
        }
        for l in links {
            let target = l.split(':').next().unwrap_or("");
            if !names.contains(target) || target == name {
                return Err(err(format!(
                    "Container '{name}' links to '{target}', which is not another container in this task definition."
                )));
            }
        }
        for m in c.mount_points.as_deref().unwrap_or_default() {
            let src = m.source_volume.as_deref().unwrap_or("");
            if !volume_names.contains(src) {
                return Err(err(format!(
                    "Container '{name}' mounts sourceVolume '{src}', which is not declared in the task definition's volumes."
                )));
            }
            if m.container_path.as_deref().unwrap_or("").is_empty() {
                return Err(err(format!(
                    "Container '{name}' has a mount point for '{src}' without a containerPath."
                )));
            }
        }
        for v in c.volumes_from.as_deref().unwrap_or_default() {
            let src = v.source_container.as_deref().unwrap_or("");
            if !names.contains(src) || src == name {
                return Err(err(format!(
                    "Container '{name}' has volumesFrom '{src}', which is not another container in this task definition."
                )));
            }
        }
        if let Some(h) = &c.health_check {
            check_range(name, "healthCheck.interval", h.interval, 5, 300)?;
            check_range(name, "healthCheck.timeout", h.timeout, 2, 60)?;
            check_range(name, "healthCheck.retries", h.retries, 1, 10)?;
            check_range(name, "healthCheck.startPeriod", h.start_period, 0, 300)?;
            if h.command.as_deref().unwrap_or_default().is_empty() {
                return Err(err(format!(
                    "Container '{name}' has a healthCheck without a command."
                )));
            }
        }
        if fargate && c.privileged == Some(true) {
            return Err(err(format!(
                "Container '{name}' sets privileged, which Fargate does not support."
            )));
        }
        validate_ports(c, name, &network, &mut task_host_ports)?;
    }
    if let (Some(tc), true) = (cpu, container_cpu_sum > 0) {
        if container_cpu_sum > tc as u64 {
            return Err(err(format!(
                "The containers' cpu values add up to {container_cpu_sum} units, more than the task cpu of {tc} units."
            )));
        }
    }
    check_no_cycles(containers)?;
    if let Some(p) = &req.proxy_configuration {
        let cn = p.container_name.as_deref().unwrap_or("");
        if !names.contains(cn) {
            return Err(err(format!(
                "proxyConfiguration names container '{cn}', which is not in this task definition."
            )));
        }
    }
    Ok(Sizes { cpu, memory })
}

fn check_range(
    container: &str,
    field: &str,
    v: Option<i32>,
    lo: i32,
    hi: i32,
) -> Result<(), ModelError> {
    match v {
        Some(x) if x < lo || x > hi => Err(err(format!(
            "Container '{container}': {field} is {x}; it must be between {lo} and {hi}."
        ))),
        _ => Ok(()),
    }
}

fn validate_container_resources(
    c: &ContainerDefinition,
    name: &str,
    task_memory: Option<u32>,
) -> Result<(), ModelError> {
    if let Some(cpu) = c.cpu {
        if cpu < 0 {
            return Err(err(format!(
                "Container '{name}': cpu is {cpu}; it must be zero or more CPU units."
            )));
        }
    }
    for (field, v) in [
        ("memory", c.memory),
        ("memoryReservation", c.memory_reservation),
    ] {
        if let Some(m) = v {
            if m < 6 {
                return Err(err(format!(
                    "Container '{name}': {field} is {m} MiB; Docker needs at least 6 MiB per container."
                )));
            }
        }
    }
    if let (Some(m), Some(r)) = (c.memory, c.memory_reservation) {
        if r > m {
            return Err(err(format!(
                "Container '{name}': memoryReservation ({r} MiB) must not be greater than memory ({m} MiB)."
            )));
        }
    }
    match task_memory {
        Some(tm) => {
            for (field, v) in [
                ("memory", c.memory),
                ("memoryReservation", c.memory_reservation),
            ] {
                if let Some(m) = v {
                    if m as i64 > tm as i64 {
                        return Err(err(format!(
                            "Container '{name}': {field} ({m} MiB) is greater than the task memory ({tm} MiB)."
                        )));
                    }
                }
            }
        }
        None => {
            if c.memory.is_none() && c.memory_reservation.is_none() {
                return Err(err(format!(
                    "Invalid setting for container '{name}'. At least one of 'memory' or 'memoryReservation' must be specified when the task has no task-level memory."
                )));
            }
        }
    }
    Ok(())
}

fn validate_ports<'a>(
    c: &'a ContainerDefinition,
    name: &'a str,
    network: &NetworkMode,
    task_host_ports: &mut HashMap<(i32, String), &'a str>,
) -> Result<(), ModelError> {
    let mut own: HashSet<(i32, String)> = HashSet::new();
    for p in c.port_mappings.as_deref().unwrap_or_default() {
        let proto = p
            .protocol
            .clone()
            .unwrap_or(TransportProtocol::Tcp)
            .as_str()
            .to_string();
        if p.container_port_range.is_some() {
            if p.container_port.is_some() || p.host_port.is_some() {
                return Err(err(format!(
                    "Container '{name}': a port mapping with containerPortRange cannot also set containerPort or hostPort."
                )));
            }
            continue;
        }
        let cp = p.container_port.ok_or_else(|| {
            err(format!(
                "Container '{name}': every port mapping needs a containerPort (or a containerPortRange)."
            ))
        })?;
        if !(1..=65535).contains(&cp) {
            return Err(err(format!(
                "Container '{name}': containerPort {cp} is out of range; ports are 1 to 65535."
            )));
        }
        if let Some(hp) = p.host_port {
            if !(0..=65535).contains(&hp) {
                return Err(err(format!(
                    "Container '{name}': hostPort {hp} is out of range; ports are 0 (dynamic) to 65535."
                )));
            }
        }
        if matches!(network, NetworkMode::Awsvpc | NetworkMode::Host) {
            if let Some(hp) = p.host_port {
                if hp != cp && !(hp == 0 && *network == NetworkMode::Awsvpc) {
                    return Err(err(format!(
                        "Container '{name}': when networkMode={}, hostPort must be left out or equal containerPort ({cp}); it is {hp}.",
                        network.as_str()
                    )));
                }
            }
        }
        if !own.insert((cp, proto.clone())) {
            return Err(err(format!(
                "Container '{name}': duplicate port mapping for containerPort {cp}/{proto}."
            )));
        }
        // Ports that bind on the host (or the task's ENI) must not collide
        // between containers of the same task.
        let bound = match network {
            NetworkMode::Awsvpc | NetworkMode::Host => Some(cp),
            _ => p.host_port.filter(|h| *h != 0),
        };
        if let Some(hp) = bound {
            if let Some(other) = task_host_ports.insert((hp, proto.clone()), name) {
                return Err(err(format!(
                    "Port {hp}/{proto} is mapped by both container '{other}' and container '{name}'; host ports must be unique within a task."
                )));
            }
        }
    }
    Ok(())
}

/// dependsOn and links together must form a DAG, or the agent could never
/// choose a start order.
fn check_no_cycles(containers: &[ContainerDefinition]) -> Result<(), ModelError> {
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for c in containers {
        let name = c.name.as_deref().unwrap_or("");
        let e = edges.entry(name).or_default();
        for d in c.depends_on.as_deref().unwrap_or_default() {
            e.insert(d.container_name.as_deref().unwrap_or(""));
        }
        for l in c.links.as_deref().unwrap_or_default() {
            e.insert(l.split(':').next().unwrap_or(""));
        }
    }
    // 0 = unvisited, 1 = on stack, 2 = done.
    let mut state: HashMap<&str, u8> = HashMap::new();
    fn visit<'a>(
        n: &'a str,
        edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        state: &mut HashMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| *p == n).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(n);
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(n, 1);
        path.push(n);
        if let Some(next) = edges.get(n) {
            for m in next {
                if let Some(c) = visit(m, edges, state, path) {
                    return Some(c);
                }
            }
        }
        path.pop();
        state.insert(n, 2);
        None
    }
    for n in edges.keys() {
        let mut path = Vec::new();
        if let Some(cycle) = visit(n, &edges, &mut state, &mut path) {
            return Err(err(format!(
                "Container dependencies form a cycle: {}. Remove one of the dependsOn or links entries.",
                cycle.join(" -> ")
            )));
        }
    }
    Ok(())
}

/// Which launch types the definition can run on, as ECS computes it.
pub fn compatibilities(req: &RegisterTaskDefinitionRequest, sizes: &Sizes) -> Vec<Compatibility> {
    let network = req.network_mode.clone().unwrap_or(NetworkMode::Bridge);
    let containers = req.container_definitions.as_deref().unwrap_or_default();
    let mut out = vec![Compatibility::Ec2];
    if network != NetworkMode::Awsvpc {
        out.push(Compatibility::External);
    }
    let fargate_sizes =
        matches!((sizes.cpu, sizes.memory), (Some(c), Some(m)) if fargate_memory_ok(c, m));
    let host_volumes = req.volumes.as_deref().unwrap_or_default().iter().any(|v| {
        v.docker_volume_configuration.is_some()
            || v.host
                .as_ref()
                .and_then(|h| h.source_path.as_ref())
                .is_some()
    });
    let fargate_containers = containers.iter().all(|c| {
        c.privileged != Some(true)
            && c.linux_parameters
                .as_ref()
                .and_then(|l| l.devices.as_ref())
                .is_none_or(|d| d.is_empty())
    });
    if network == NetworkMode::Awsvpc && fargate_sizes && !host_volumes && fargate_containers {
        out.push(Compatibility::Fargate);
    }
    if requires(req, Compatibility::ManagedInstances) {
        out.push(Compatibility::ManagedInstances);
    }
    out
}

/// The agent capabilities a container instance needs to run this definition.
pub fn requires_attributes(req: &RegisterTaskDefinitionRequest) -> Vec<Attribute> {
    const REMOTE: &str = "com.amazonaws.ecs.capability.docker-remote-api.";
    let mut set: BTreeSet<String> = BTreeSet::new();
    let exec_role = req.execution_role_arn.is_some();
    let network = req.network_mode.clone().unwrap_or(NetworkMode::Bridge);
    if req.task_role_arn.is_some() {
        set.insert("com.amazonaws.ecs.capability.task-iam-role".into());
        if network == NetworkMode::Host {
            set.insert("com.amazonaws.ecs.capability.task-iam-role-network-host".into());
        }
    }
    if network == NetworkMode::Awsvpc {
        set.insert("ecs.capability.task-eni".into());
    }
    for v in req.volumes.as_deref().unwrap_or_default() {
        if v.docker_volume_configuration.is_some() {
            set.insert(format!("{REMOTE}1.25"));
        }
        if v.efs_volume_configuration.is_some() {
            set.insert("ecs.capability.efs".into());
        }
    }
    if req.pid_mode.is_some() || req.ipc_mode.is_some() {
        set.insert(format!("{REMOTE}1.33"));
    }
    for c in req.container_definitions.as_deref().unwrap_or_default() {
        if let Some(l) = &c.log_configuration {
            if let Some(d) = &l.log_driver {
                set.insert(format!(
                    "com.amazonaws.ecs.capability.logging-driver.{}",
                    d.as_str()
                ));
                if d.as_str() == "awslogs" {
                    set.insert(format!("{REMOTE}1.19"));
                    if exec_role {
                        set.insert("ecs.capability.execution-role-awslogs".into());
                    }
                }
            }
        }
        if c.memory_reservation.is_some() {
            set.insert(format!("{REMOTE}1.21"));
        }
        if c.docker_labels.is_some() || c.ulimits.is_some() {
            set.insert(format!("{REMOTE}1.18"));
        }
        if c.health_check.is_some() {
            set.insert("ecs.capability.container-health-check".into());
            set.insert(format!("{REMOTE}1.24"));
        }
        if c.depends_on.as_ref().is_some_and(|d| !d.is_empty())
            || c.start_timeout.is_some()
            || c.stop_timeout.is_some()
        {
            set.insert("ecs.capability.container-ordering".into());
        }
        if c.repository_credentials.is_some() {
            set.insert(
                "com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager"
                    .into(),
            );
        }
        if c.environment_files.as_ref().is_some_and(|e| !e.is_empty()) {
            set.insert("ecs.capability.env-files.s3".into());
        }
        if c.system_controls.is_some() {
            set.insert(format!("{REMOTE}1.38"));
        }
        if let Some(lp) = &c.linux_parameters {
            if lp.init_process_enabled.is_some() || lp.shared_memory_size.is_some() {
                set.insert(format!("{REMOTE}1.25"));
            }
            if lp.tmpfs.is_some() {
                set.insert(format!("{REMOTE}1.22"));
            }
        }
        for s in c.secrets.as_deref().unwrap_or_default() {
            let from = s.value_from.as_deref().unwrap_or("");
            if from.starts_with("arn:aws:secretsmanager:") {
                set.insert("ecs.capability.secrets.asm.environment-variables".into());
            } else {
                set.insert("ecs.capability.secrets.ssm.environment-variables".into());
            }
        }
        if c.firelens_configuration.is_some() {
            set.insert("ecs.capability.firelens.fluentbit".into());
        }
    }
    set.into_iter()
        .map(|name| Attribute {
            name: Some(name),
            ..Default::default()
        })
        .collect()
}

/// Builds the stored definition: every field the user gave, plus the fields
/// ECS computes and the defaults ECS reports.
pub fn build(
    req: &RegisterTaskDefinitionRequest,
    sizes: &Sizes,
    scope: &Scope,
    revision: i32,
    registered_at: Timestamp,
    registered_by: &str,
) -> TaskDefinition {
    let family = req.family.clone().unwrap_or_default();
    let network = req.network_mode.clone();
    let containers = req
        .container_definitions
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|mut c| {
            c.essential.get_or_insert(true);
            c.cpu.get_or_insert(0);
            c.environment.get_or_insert_with(Vec::new);
            c.mount_points.get_or_insert_with(Vec::new);
            c.volumes_from.get_or_insert_with(Vec::new);
            let pms = c.port_mappings.get_or_insert_with(Vec::new);
            for p in pms.iter_mut() {
                p.protocol.get_or_insert(TransportProtocol::Tcp);
                // In awsvpc and host mode the container port is the host
                // port; ECS reports it that way.
                if matches!(network, Some(NetworkMode::Awsvpc) | Some(NetworkMode::Host))
                    && p.container_port_range.is_none()
                    && matches!(p.host_port, None | Some(0))
                {
                    p.host_port = p.container_port;
                }
            }
            c
        })
        .collect();
    TaskDefinition {
        task_definition_arn: Some(scope.task_definition_arn(&family, revision)),
        container_definitions: Some(containers),
        family: Some(family),
        task_role_arn: req.task_role_arn.clone(),
        execution_role_arn: req.execution_role_arn.clone(),
        network_mode: network,
        revision: Some(revision),
        volumes: Some(req.volumes.clone().unwrap_or_default()),
        status: Some(TaskDefinitionStatus::Active),
        requires_attributes: Some(requires_attributes(req)),
        placement_constraints: Some(req.placement_constraints.clone().unwrap_or_default()),
        compatibilities: Some(compatibilities(req, sizes)),
        runtime_platform: req.runtime_platform.clone(),
        requires_compatibilities: req.requires_compatibilities.clone(),
        cpu: sizes.cpu.map(|c| c.to_string()),
        memory: sizes.memory.map(|m| m.to_string()),
        inference_accelerators: req.inference_accelerators.clone(),
        pid_mode: req.pid_mode.clone(),
        ipc_mode: req.ipc_mode.clone(),
        proxy_configuration: req.proxy_configuration.clone(),
        registered_at: Some(registered_at),
        deregistered_at: None,
        delete_requested_at: None,
        registered_by: Some(registered_by.to_string()),
        ephemeral_storage: req.ephemeral_storage.clone(),
        enable_fault_injection: req.enable_fault_injection,
        trusted_execution_configuration: req.trusted_execution_configuration.clone(),
    }
}

fn non_empty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

/// Fields the agent cannot honour yet. RunTask and StartTask refuse a
/// definition that uses one, naming it, rather than run the task without
/// it. Registration still stores everything: the refusal is at launch.
pub fn unsupported_for_run(td: &TaskDefinition) -> Option<String> {
    let mut found: Vec<String> = Vec::new();
    let mut task = |cond: bool, field: &str| {
        if cond {
            found.push(field.to_string());
        }
    };
    for v in td.volumes.as_deref().unwrap_or_default() {
        let name = v.name.as_deref().unwrap_or("");
        task(
            v.efs_volume_configuration.is_some(),
            &format!("volumes[{name}].efsVolumeConfiguration"),
        );
        task(
            v.fsx_windows_file_server_volume_configuration.is_some(),
            &format!("volumes[{name}].fsxWindowsFileServerVolumeConfiguration"),
        );
        task(
            v.s3files_volume_configuration.is_some(),
            &format!("volumes[{name}].s3filesVolumeConfiguration"),
        );
        task(
            v.configured_at_launch == Some(true),
            &format!("volumes[{name}].configuredAtLaunch"),
        );
    }
    let awsvpc = td.network_mode == Some(NetworkMode::Awsvpc);
    let bridge = matches!(td.network_mode, None | Some(NetworkMode::Bridge));
    task(
        td.task_role_arn.is_some(),
        "taskRoleArn (no IAM: task role credentials are not provided)",
    );
    task(td.pid_mode.is_some(), "pidMode");
    task(td.ipc_mode.is_some(), "ipcMode");
    task(td.proxy_configuration.is_some(), "proxyConfiguration");
    task(
        td.inference_accelerators
            .as_ref()
            .is_some_and(|v| !v.is_empty()),
        "inferenceAccelerators",
    );
    task(td.ephemeral_storage.is_some(), "ephemeralStorage");
    for c in td.container_definitions.as_deref().unwrap_or_default() {
        let name = c.name.as_deref().unwrap_or("");
        let mut field = |cond: bool, f: &str| {
            if cond {
                found.push(format!("containerDefinitions[{name}].{f}"));
            }
        };
        field(
            c.linux_parameters
                .as_ref()
                .is_some_and(|l| l.max_swap.is_some() || l.swappiness.is_some()),
            "linuxParameters.maxSwap/swappiness",
        );
        // Log drivers are the agent's to judge: json-file and none go to
        // Docker as they are, awslogs is shipped by the agent, others run
        // when the agent's engine has them (it refuses the task otherwise;
        // the server cannot see the engine's plugins). Secrets cannot be
        // resolved here.
        field(
            c.log_configuration
                .as_ref()
                .is_some_and(|l| l.secret_options.as_ref().is_some_and(|o| !o.is_empty())),
            "logConfiguration.secretOptions",
        );
        field(non_empty(&c.secrets), "secrets");
        field(non_empty(&c.environment_files), "environmentFiles");
        field(c.repository_credentials.is_some(), "repositoryCredentials");
        field(c.firelens_configuration.is_some(), "firelensConfiguration");
        field(
            awsvpc && non_empty(&c.extra_hosts),
            "extraHosts (not in awsvpc network mode)",
        );
        field(
            awsvpc && non_empty(&c.dns_servers),
            "dnsServers (not in awsvpc network mode)",
        );
        field(
            awsvpc && non_empty(&c.dns_search_domains),
            "dnsSearchDomains (not in awsvpc network mode)",
        );
        field(
            awsvpc && c.hostname.is_some(),
            "hostname (not in awsvpc network mode)",
        );
        field(
            !bridge && non_empty(&c.links),
            "links (bridge network mode only)",
        );
        field(non_empty(&c.credential_specs), "credentialSpecs");
        field(non_empty(&c.resource_requirements), "resourceRequirements");
        field(c.restart_policy.is_some(), "restartPolicy");
        field(
            c.port_mappings
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|p| p.container_port_range.is_some()),
            "portMappings.containerPortRange",
        );
    }
    if found.is_empty() {
        None
    } else {
        Some(format!(
            "This task definition uses {} which Stevedore cannot run yet; see the compatibility table in the README.",
            found.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stevedore_api::ecs::{
        ContainerCondition, ContainerDependency, DockerVolumeConfiguration, HealthCheck,
        HostVolumeProperties, LinuxParameters, LogConfiguration, LogDriver, MountPoint, Volume,
    };

    fn td(network: Option<NetworkMode>, c: ContainerDefinition) -> TaskDefinition {
        TaskDefinition {
            network_mode: network,
            container_definitions: Some(vec![c]),
            ..Default::default()
        }
    }

    #[test]
    fn honoured_container_features_are_not_refused() {
        let c = ContainerDefinition {
            name: Some("app".into()),
            health_check: Some(HealthCheck {
                command: Some(vec!["CMD".into(), "true".into()]),
                ..Default::default()
            }),
            depends_on: Some(vec![ContainerDependency {
                container_name: Some("db".into()),
                condition: Some(ContainerCondition::Healthy),
            }]),
            mount_points: Some(vec![MountPoint {
                source_volume: Some("v".into()),
                container_path: Some("/v".into()),
                read_only: Some(true),
            }]),
            linux_parameters: Some(LinuxParameters {
                init_process_enabled: Some(true),
                shared_memory_size: Some(64),
                ..Default::default()
            }),
            hostname: Some("h".into()),
            links: Some(vec!["db".into()]),
            extra_hosts: Some(vec![Default::default()]),
            interactive: Some(true),
            pseudo_terminal: Some(true),
            disable_networking: Some(true),
            docker_security_options: Some(vec!["no-new-privileges".into()]),
            log_configuration: Some(LogConfiguration {
                log_driver: Some(LogDriver::Awslogs),
                options: Some(
                    [("awslogs-group".to_string(), "/ecs/app".to_string())]
                        .into_iter()
                        .collect(),
                ),
                secret_options: None,
            }),
            ..Default::default()
        };
        let mut t = td(None, c.clone());
        t.volumes = Some(vec![
            Volume {
                name: Some("v".into()),
                host: Some(HostVolumeProperties {
                    source_path: Some("/srv".into()),
                }),
                ..Default::default()
            },
            Volume {
                name: Some("d".into()),
                docker_volume_configuration: Some(DockerVolumeConfiguration::default()),
                ..Default::default()
            },
        ]);
        assert_eq!(unsupported_for_run(&t), None);

        // Mode-dependent: hostname/extraHosts not in awsvpc, links bridge only.
        let why = unsupported_for_run(&td(Some(NetworkMode::Awsvpc), c.clone())).unwrap();
        assert!(why.contains("hostname (not in awsvpc"), "{why}");
        assert!(why.contains("extraHosts (not in awsvpc"), "{why}");
        assert!(why.contains("links (bridge network mode only)"), "{why}");
        // Still refused: EFS volumes, swappiness.
        let mut c2 = c;
        c2.linux_parameters = Some(LinuxParameters {
            swappiness: Some(1),
            ..Default::default()
        });
        let mut t = td(None, c2);
        t.volumes = Some(vec![Volume {
            name: Some("e".into()),
            efs_volume_configuration: Some(Default::default()),
            ..Default::default()
        }]);
        let why = unsupported_for_run(&t).unwrap();
        assert!(why.contains("volumes[e].efsVolumeConfiguration"), "{why}");
        assert!(why.contains("maxSwap/swappiness"), "{why}");
        // Log drivers are the agent's to judge; secrets cannot be resolved.
        let mut c3 = ContainerDefinition {
            name: Some("x".into()),
            ..Default::default()
        };
        for driver in [LogDriver::JsonFile, LogDriver::Syslog, LogDriver::Splunk] {
            c3.log_configuration = Some(LogConfiguration {
                log_driver: Some(driver),
                options: Some([("k".to_string(), "v".to_string())].into_iter().collect()),
                secret_options: None,
            });
            assert_eq!(unsupported_for_run(&td(None, c3.clone())), None);
        }
        c3.log_configuration = Some(LogConfiguration {
            log_driver: Some(LogDriver::Awslogs),
            options: None,
            secret_options: Some(vec![Default::default()]),
        });
        let why = unsupported_for_run(&td(None, c3)).unwrap();
        assert!(why.contains("logConfiguration.secretOptions"), "{why}");
    }
}
