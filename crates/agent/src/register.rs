//! Registration as an ECS container instance, and the agent's files in its
//! data dir: `agent.json` (identity) and `checkpoint.json` (task state),
//! both written atomically.

use crate::config::AgentConfig;
use crate::engine::{Checkpoint, CHECKPOINT_FORMAT};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use stevedore_api::ecs::{Attribute, RegisterContainerInstanceRequest, Resource, VersionInfo};
use stevedore_runtime::HostInfo;

pub const AGENT_FILE: &str = "agent.json";
pub const CHECKPOINT_FILE: &str = "checkpoint.json";
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

const REMOTE_API: &str = "com.amazonaws.ecs.capability.docker-remote-api.";
/// The Docker API versions ECS agents advertise, oldest first.
const MIN_REMOTE_API: u32 = 17;
const MAX_REMOTE_API: u32 = 44;

/// `DATA_DIR/agent.json`: who this agent is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub format: u32,
    pub cluster: String,
    #[serde(default)]
    pub container_instance_arn: Option<String>,
    /// Short random suffix of this agent's Docker container names.
    pub name_suffix: String,
}

impl Identity {
    fn fresh(cluster: &str) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Identity {
            format: 1,
            cluster: cluster.to_string(),
            container_instance_arn: None,
            name_suffix: id[..8].to_string(),
        }
    }
}

/// Errors reading or writing the data dir.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DataError {
    pub path: PathBuf,
    pub message: String,
}

fn derr(path: &Path, e: impl std::fmt::Display) -> DataError {
    DataError {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, fsync, rename over `path`, fsync of the directory. A crash
/// leaves either the old or the new content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp).map_err(|e| derr(&tmp, e))?;
        f.write_all(bytes).map_err(|e| derr(&tmp, e))?;
        f.sync_all().map_err(|e| derr(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| derr(path, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, DataError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            derr(
                path,
                format!("unreadable ({e}); move it away to start afresh"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(derr(path, e)),
    }
}

/// Loads `agent.json`, or makes a fresh identity (not yet saved). A saved
/// identity for another cluster keeps its name suffix but not its ARN.
pub fn load_identity(data_dir: &Path, cluster: &str) -> Result<Identity, DataError> {
    let path = data_dir.join(AGENT_FILE);
    match read_json::<Identity>(&path)? {
        Some(mut id) => {
            if id.cluster != cluster {
                tracing::warn!(
                    old = %id.cluster,
                    new = %cluster,
                    "the data dir belonged to another cluster; registering as a new container instance"
                );
                id.cluster = cluster.to_string();
                id.container_instance_arn = None;
            }
            Ok(id)
        }
        None => Ok(Identity::fresh(cluster)),
    }
}

pub fn save_identity(data_dir: &Path, id: &Identity) -> Result<(), DataError> {
    let bytes = serde_json::to_vec_pretty(id).expect("identity serializes");
    write_atomic(&data_dir.join(AGENT_FILE), &bytes)
}

/// Loads `checkpoint.json` if it belongs to `instance_arn`.
pub fn load_checkpoint(
    data_dir: &Path,
    instance_arn: &str,
) -> Result<Option<Checkpoint>, DataError> {
    let path = data_dir.join(CHECKPOINT_FILE);
    let Some(cp) = read_json::<Checkpoint>(&path)? else {
        return Ok(None);
    };
    if cp.format != CHECKPOINT_FORMAT {
        return Err(derr(
            &path,
            format!("checkpoint format {} is not {CHECKPOINT_FORMAT}", cp.format),
        ));
    }
    if cp.container_instance_arn != instance_arn {
        tracing::warn!(
            old = %cp.container_instance_arn,
            new = %instance_arn,
            "the checkpoint belongs to another container instance; ignoring it"
        );
        // Keep the sequence: it only has to grow.
        return Ok(Some(Checkpoint {
            format: CHECKPOINT_FORMAT,
            container_instance_arn: instance_arn.to_string(),
            seq: cp.seq,
            tasks: Vec::new(),
        }));
    }
    Ok(Some(cp))
}

pub fn save_checkpoint(data_dir: &Path, cp: &Checkpoint) -> Result<(), DataError> {
    let bytes = serde_json::to_vec(cp).expect("checkpoint serializes");
    write_atomic(&data_dir.join(CHECKPOINT_FILE), &bytes)
}

/// The highest Docker Remote API minor version of an engine release
/// (`20.10.24` → 41). Unknown future releases get the newest we know.
pub fn docker_api_minor(docker_version: &str) -> Option<u32> {
    let mut parts = docker_version.split(['.', '-', '+']);
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    let v = match (major, minor) {
        (1, m) if m >= 5 => 12 + m, // 1.5 → 1.17, …, 1.13 → 1.25
        (1, _) => return None,
        (17, 0..=3) => 26,
        (17, 4) => 28,
        (17, 5) => 29,
        (17, 6..=8) => 30,
        (17, 9..=10) => 32,
        (17, _) => 35,
        (18, 0..=2) => 35,
        (18, 3..=5) => 37,
        (18, 6..=8) => 38,
        (18, _) => 39,
        (19, _) => 40,
        (20, _) => 41,
        (23, _) => 42,
        (24, _) => 43,
        (25, _) => 44,
        (26, 0) => 45,
        (26, _) => 45,
        (27, 0) => 46,
        (27, _) => 47,
        (28, 0) => 48,
        (28, 1) => 49,
        (28, _) => 50,
        (m, _) if m > 28 => 51,
        _ => return None,
    };
    Some(v)
}

fn attr(name: impl Into<String>, value: Option<String>) -> Attribute {
    Attribute {
        name: Some(name.into()),
        value,
        ..Default::default()
    }
}

/// The capability attributes this agent really has.
pub fn capabilities(info: &HostInfo, config: &AgentConfig, awsvpc: bool) -> Vec<String> {
    let mut caps = Vec::new();
    if let Some(max) = docker_api_minor(&info.docker_version) {
        for v in MIN_REMOTE_API..=max.min(MAX_REMOTE_API) {
            caps.push(format!("{REMOTE_API}1.{v}"));
        }
    }
    // json-file always; awslogs is shipped by the agent (it needs Docker
    // remote API 1.19, which every supported engine has); others as the
    // engine's logging plugins say.
    caps.push("com.amazonaws.ecs.capability.logging-driver.json-file".to_string());
    caps.push("com.amazonaws.ecs.capability.logging-driver.awslogs".to_string());
    caps.push("com.amazonaws.ecs.capability.logging-driver.none".to_string());
    for d in &info.log_drivers {
        let cap = format!("com.amazonaws.ecs.capability.logging-driver.{d}");
        if d != "awslogs" && !caps.contains(&cap) {
            caps.push(cap);
        }
    }
    let api_1_19 = format!("{REMOTE_API}1.19");
    if !caps.contains(&api_1_19) {
        caps.push(api_1_19);
    }
    // The execution role is accepted for awslogs (there is no IAM).
    caps.push("ecs.capability.execution-role-awslogs".to_string());
    if config.allow_privileged {
        caps.push("com.amazonaws.ecs.capability.privileged-container".to_string());
    }
    // dependsOn (START/COMPLETE/SUCCESS), startTimeout and stopTimeout.
    caps.push("ecs.capability.container-ordering".to_string());
    // Docker health checks, mapped to container and task healthStatus.
    caps.push("ecs.capability.container-health-check".to_string());
    if awsvpc {
        caps.push("ecs.capability.task-eni".to_string());
    }
    caps
}

/// `RegisterContainerInstance` for this host.
pub fn registration_request(
    config: &AgentConfig,
    info: &HostInfo,
    existing_arn: Option<&str>,
    awsvpc: bool,
) -> RegisterContainerInstanceRequest {
    let cpu = i64::from(info.cpus) * 1024;
    let memory = (info.memory_mib - config.reserved_memory_mib).max(0);
    let clamp = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
    let ports = |p: &[u16]| p.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    let resources = vec![
        Resource {
            name: Some("CPU".into()),
            r#type: Some("INTEGER".into()),
            integer_value: Some(clamp(cpu)),
            ..Default::default()
        },
        Resource {
            name: Some("MEMORY".into()),
            r#type: Some("INTEGER".into()),
            integer_value: Some(clamp(memory)),
            ..Default::default()
        },
        Resource {
            name: Some("PORTS".into()),
            r#type: Some("STRINGSET".into()),
            string_set_value: Some(ports(&config.reserved_ports)),
            ..Default::default()
        },
        Resource {
            name: Some("PORTS_UDP".into()),
            r#type: Some("STRINGSET".into()),
            string_set_value: Some(ports(&config.reserved_ports_udp)),
            ..Default::default()
        },
    ];
    let mut attributes = vec![attr("ecs.os-type", Some(info.os_type.clone()))];
    if info.os_type == "linux" {
        attributes.push(attr("ecs.os-family", Some("LINUX".into())));
    }
    attributes.push(attr(
        "ecs.cpu-architecture",
        Some(info.architecture.clone()),
    ));
    for c in capabilities(info, config, awsvpc) {
        attributes.push(attr(c, None));
    }
    for (k, v) in &config.instance_attributes {
        attributes.push(attr(k.clone(), Some(v.clone())));
    }
    RegisterContainerInstanceRequest {
        cluster: Some(config.cluster.clone()),
        container_instance_arn: existing_arn.map(str::to_string),
        total_resources: Some(resources),
        attributes: Some(attributes),
        version_info: Some(VersionInfo {
            agent_version: Some(AGENT_VERSION.to_string()),
            agent_hash: None,
            docker_version: Some(format!("DockerVersion: {}", info.docker_version)),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn info() -> HostInfo {
        HostInfo {
            cpus: 4,
            memory_mib: 8000,
            os_type: "linux".into(),
            architecture: "x86_64".into(),
            docker_version: "20.10.24+dfsg1".into(),
            kernel_version: "6.1".into(),
            hostname: "h".into(),
            log_drivers: vec!["awslogs".into(), "json-file".into(), "syslog".into()],
        }
    }

    #[test]
    fn request_shape() {
        let mut config = AgentConfig::new("http://x", "a", "b", "/tmp");
        config.reserved_memory_mib = 500;
        config.reserved_ports_udp = vec![53];
        config.instance_attributes = BTreeMap::from([("stack".to_string(), "prod".to_string())]);
        let req = registration_request(&config, &info(), Some("arn:ci"), true);
        assert_eq!(req.cluster.as_deref(), Some("default"));
        assert_eq!(req.container_instance_arn.as_deref(), Some("arn:ci"));
        let res = req.total_resources.unwrap();
        let get = |n: &str| {
            res.iter()
                .find(|r| r.name.as_deref() == Some(n))
                .unwrap()
                .clone()
        };
        assert_eq!(get("CPU").integer_value, Some(4096));
        assert_eq!(get("CPU").r#type.as_deref(), Some("INTEGER"));
        assert_eq!(get("MEMORY").integer_value, Some(7500));
        assert_eq!(
            get("PORTS").string_set_value.unwrap(),
            vec!["22", "2375", "2376", "51678", "51679"]
        );
        assert_eq!(get("PORTS").r#type.as_deref(), Some("STRINGSET"));
        assert_eq!(get("PORTS_UDP").string_set_value.unwrap(), vec!["53"]);
        let attrs = req.attributes.unwrap();
        let has = |n: &str| attrs.iter().any(|a| a.name.as_deref() == Some(n));
        let val = |n: &str| {
            attrs
                .iter()
                .find(|a| a.name.as_deref() == Some(n))
                .and_then(|a| a.value.clone())
        };
        assert_eq!(val("ecs.os-type").as_deref(), Some("linux"));
        assert_eq!(val("ecs.cpu-architecture").as_deref(), Some("x86_64"));
        assert_eq!(val("stack").as_deref(), Some("prod"));
        assert!(has("com.amazonaws.ecs.capability.docker-remote-api.1.17"));
        assert!(has("com.amazonaws.ecs.capability.docker-remote-api.1.41"));
        assert!(!has("com.amazonaws.ecs.capability.docker-remote-api.1.42"));
        assert!(has("com.amazonaws.ecs.capability.logging-driver.json-file"));
        assert!(has("com.amazonaws.ecs.capability.logging-driver.awslogs"));
        assert!(has("com.amazonaws.ecs.capability.logging-driver.syslog"));
        assert!(has("com.amazonaws.ecs.capability.docker-remote-api.1.19"));
        assert!(has("ecs.capability.execution-role-awslogs"));
        assert!(has("ecs.capability.task-eni"));
        assert!(has("ecs.capability.container-ordering"));
        assert!(has("ecs.capability.container-health-check"));
        assert!(!has("com.amazonaws.ecs.capability.privileged-container"));
        let v = req.version_info.unwrap();
        assert_eq!(v.agent_version.as_deref(), Some(AGENT_VERSION));
        assert!(v.docker_version.unwrap().contains("20.10.24"));

        let req = registration_request(&config, &info(), None, false);
        assert!(req.container_instance_arn.is_none());
        let attrs = req.attributes.unwrap();
        assert!(!attrs
            .iter()
            .any(|a| a.name.as_deref() == Some("ecs.capability.task-eni")));
        config.allow_privileged = true;
        let caps = capabilities(&info(), &config, false);
        assert!(caps.contains(&"com.amazonaws.ecs.capability.privileged-container".to_string()));
    }

    #[test]
    fn api_versions() {
        assert_eq!(docker_api_minor("20.10.24+dfsg1"), Some(41));
        assert_eq!(docker_api_minor("24.0.7"), Some(43));
        assert_eq!(docker_api_minor("28.2.2"), Some(50));
        assert_eq!(docker_api_minor("1.13.1"), Some(25));
        assert_eq!(docker_api_minor("19.03.15"), Some(40));
        assert_eq!(docker_api_minor("garbage"), None);
        let mut i = info();
        i.docker_version = "28.2.2".into();
        let caps = capabilities(&i, &AgentConfig::new("http://x", "a", "b", "/"), false);
        assert!(caps.iter().any(|c| c.ends_with("docker-remote-api.1.44")));
        assert!(!caps.iter().any(|c| c.ends_with("docker-remote-api.1.45")));
    }

    #[test]
    fn files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let id = load_identity(dir.path(), "default").unwrap();
        assert_eq!(id.name_suffix.len(), 8);
        assert!(id.container_instance_arn.is_none());
        let id = Identity {
            container_instance_arn: Some("arn:1".into()),
            ..id
        };
        save_identity(dir.path(), &id).unwrap();
        assert_eq!(load_identity(dir.path(), "default").unwrap(), id);
        let other = load_identity(dir.path(), "web").unwrap();
        assert_eq!(other.name_suffix, id.name_suffix);
        assert!(other.container_instance_arn.is_none());

        assert!(load_checkpoint(dir.path(), "arn:1").unwrap().is_none());
        let cp = Checkpoint {
            format: CHECKPOINT_FORMAT,
            container_instance_arn: "arn:1".into(),
            seq: 42,
            tasks: Vec::new(),
        };
        save_checkpoint(dir.path(), &cp).unwrap();
        assert_eq!(load_checkpoint(dir.path(), "arn:1").unwrap().unwrap(), cp);
        let foreign = load_checkpoint(dir.path(), "arn:2").unwrap().unwrap();
        assert_eq!(foreign.seq, 42);
        assert_eq!(foreign.container_instance_arn, "arn:2");
        std::fs::write(dir.path().join(CHECKPOINT_FILE), b"{").unwrap();
        let e = load_checkpoint(dir.path(), "arn:1").unwrap_err();
        assert!(e.to_string().contains("unreadable"), "{e}");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }
}
