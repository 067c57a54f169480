//! Agent settings: explicit flags first, then the ECS agent's environment
//! variables, then defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use stevedore_runtime::PullBehavior;

/// The ECS agent's default reserved TCP ports (Linux).
pub const DEFAULT_RESERVED_PORTS: [u16; 5] = [22, 2375, 2376, 51678, 51679];
/// ECS_CONTAINER_STOP_TIMEOUT's default.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// ECS_CONTAINER_STOP_TIMEOUT's minimum.
pub const MIN_STOP_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the containers of a stopped task are kept before removal
/// (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION; ECS's own default is 3 h).
pub const DEFAULT_TASK_CLEANUP_WAIT: Duration = Duration::from_secs(3600);
/// How often the full container list is compared with what the event
/// stream told us.
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_CLUSTER: &str = "default";
pub const DEFAULT_REGION: &str = "us-east-1";

/// Everything the agent needs to run. Build it with
/// [`AgentConfig::from_env_and_flags`], or literally (tests do).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// The server's URL, e.g. `http://127.0.0.1:4566`.
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// The SigV4 signing region.
    pub region: String,
    /// Cluster name (or ARN) to join.
    pub cluster: String,
    /// Where `agent.json` and `checkpoint.json` live. One agent per data dir.
    pub data_dir: PathBuf,
    /// MiB of host memory not offered to tasks.
    pub reserved_memory_mib: i64,
    pub reserved_ports: Vec<u16>,
    pub reserved_ports_udp: Vec<u16>,
    /// User attributes sent at registration.
    pub instance_attributes: BTreeMap<String, String>,
    pub pull_behavior: PullBehavior,
    /// Stop grace period for containers without their own `stopTimeout`.
    pub container_stop_timeout: Duration,
    /// Whether `privileged: true` containers may run. Off by default.
    pub allow_privileged: bool,
    /// Delay between a task stopping and its containers being removed.
    pub task_cleanup_wait: Duration,
    /// The image of awsvpc pause containers, already present locally (the
    /// caller gets it from `DockerRuntime::ensure_pause_image`). `None`:
    /// awsvpc is unsupported and `ecs.capability.task-eni` is not claimed.
    pub pause_image: Option<String>,
    /// Period of the full resync against `ContainerRuntime::list`.
    pub resync_interval: Duration,
}

impl AgentConfig {
    /// A configuration with defaults for everything but the connection.
    pub fn new(
        endpoint: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        AgentConfig {
            endpoint: endpoint.into(),
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
            region: DEFAULT_REGION.to_string(),
            cluster: DEFAULT_CLUSTER.to_string(),
            data_dir: data_dir.into(),
            reserved_memory_mib: 0,
            reserved_ports: DEFAULT_RESERVED_PORTS.to_vec(),
            reserved_ports_udp: Vec::new(),
            instance_attributes: BTreeMap::new(),
            pull_behavior: PullBehavior::Default,
            container_stop_timeout: DEFAULT_STOP_TIMEOUT,
            allow_privileged: false,
            task_cleanup_wait: DEFAULT_TASK_CLEANUP_WAIT,
            pause_image: None,
            resync_interval: DEFAULT_RESYNC_INTERVAL,
        }
    }
}

/// Values given explicitly (command-line flags). Every field is optional;
/// a `Some` wins over the environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentFlags {
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
    pub cluster: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// Used when neither `data_dir` nor `ECS_DATADIR` is set (the CLI's
    /// per-user default).
    pub default_data_dir: Option<PathBuf>,
    pub reserved_memory_mib: Option<i64>,
    pub reserved_ports: Option<Vec<u16>>,
    pub reserved_ports_udp: Option<Vec<u16>>,
    pub instance_attributes: Option<BTreeMap<String, String>>,
    pub pull_behavior: Option<PullBehavior>,
    pub container_stop_timeout: Option<Duration>,
    pub allow_privileged: Option<bool>,
    pub task_cleanup_wait: Option<Duration>,
    pub pause_image: Option<String>,
}

/// A setting that could not be used; the message names the variable or
/// flag and the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct ConfigError {
    /// The environment variable or setting at fault.
    pub name: String,
    pub message: String,
}

fn cerr(name: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        name: name.to_string(),
        message: message.into(),
    }
}

impl AgentConfig {
    /// Resolves the configuration: each setting from `flags` if given, else
    /// from the environment (read through `env`, e.g.
    /// `|k| std::env::var(k).ok()`), else its default.
    ///
    /// Environment variables (ECS agent names where ECS has one):
    /// `ECS_BACKEND_HOST` (endpoint), `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` /
    /// `AWS_DEFAULT_REGION`, `ECS_CLUSTER`, `ECS_DATADIR`,
    /// `ECS_IMAGE_PULL_BEHAVIOR`, `ECS_INSTANCE_ATTRIBUTES` (JSON object),
    /// `ECS_RESERVED_MEMORY` (MiB), `ECS_RESERVED_PORTS` and
    /// `ECS_RESERVED_PORTS_UDP` (JSON arrays), `ECS_CONTAINER_STOP_TIMEOUT`
    /// and `ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION` (Go durations),
    /// `ECS_DISABLE_PRIVILEGED` (`true`/`false`).
    pub fn from_env_and_flags<E>(flags: AgentFlags, env: E) -> Result<AgentConfig, ConfigError>
    where
        E: Fn(&str) -> Option<String>,
    {
        // An empty variable counts as unset, as in the ECS agent.
        let var = |k: &str| env(k).filter(|v| !v.trim().is_empty());

        let endpoint = flags
            .endpoint
            .or_else(|| var("ECS_BACKEND_HOST"))
            .ok_or_else(|| cerr("endpoint", "no server endpoint (flag or ECS_BACKEND_HOST)"))?;
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(cerr(
                "endpoint",
                format!("{endpoint:?} is not an http:// or https:// URL"),
            ));
        }
        let access_key_id = flags
            .access_key_id
            .or_else(|| var("AWS_ACCESS_KEY_ID"))
            .ok_or_else(|| cerr("AWS_ACCESS_KEY_ID", "no access key id"))?;
        let secret_access_key = flags
            .secret_access_key
            .or_else(|| var("AWS_SECRET_ACCESS_KEY"))
            .ok_or_else(|| cerr("AWS_SECRET_ACCESS_KEY", "no secret access key"))?;
        let session_token = flags.session_token.or_else(|| var("AWS_SESSION_TOKEN"));
        let region = flags
            .region
            .or_else(|| var("AWS_REGION"))
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        let cluster = flags
            .cluster
            .or_else(|| var("ECS_CLUSTER"))
            .unwrap_or_else(|| DEFAULT_CLUSTER.to_string());
        let data_dir = flags
            .data_dir
            .or_else(|| var("ECS_DATADIR").map(PathBuf::from))
            .or(flags.default_data_dir)
            .ok_or_else(|| cerr("ECS_DATADIR", "no data directory (flag or ECS_DATADIR)"))?;

        let reserved_memory_mib = match flags.reserved_memory_mib {
            Some(v) => v,
            None => match var("ECS_RESERVED_MEMORY") {
                Some(v) => parse_mib("ECS_RESERVED_MEMORY", &v)?,
                None => 0,
            },
        };
        if reserved_memory_mib < 0 {
            return Err(cerr("ECS_RESERVED_MEMORY", "must not be negative"));
        }
        let reserved_ports = match flags.reserved_ports {
            Some(v) => v,
            None => match var("ECS_RESERVED_PORTS") {
                Some(v) => parse_ports("ECS_RESERVED_PORTS", &v)?,
                None => DEFAULT_RESERVED_PORTS.to_vec(),
            },
        };
        let reserved_ports_udp = match flags.reserved_ports_udp {
            Some(v) => v,
            None => match var("ECS_RESERVED_PORTS_UDP") {
                Some(v) => parse_ports("ECS_RESERVED_PORTS_UDP", &v)?,
                None => Vec::new(),
            },
        };
        let instance_attributes = match flags.instance_attributes {
            Some(v) => v,
            None => match var("ECS_INSTANCE_ATTRIBUTES") {
                Some(v) => parse_attributes("ECS_INSTANCE_ATTRIBUTES", &v)?,
                None => BTreeMap::new(),
            },
        };
        validate_attributes("instance attributes", &instance_attributes)?;
        let pull_behavior = match flags.pull_behavior {
            Some(v) => v,
            None => match var("ECS_IMAGE_PULL_BEHAVIOR") {
                Some(v) => {
                    parse_pull_behavior(&v).map_err(|m| cerr("ECS_IMAGE_PULL_BEHAVIOR", m))?
                }
                None => PullBehavior::Default,
            },
        };
        let container_stop_timeout = match flags.container_stop_timeout {
            Some(v) => v,
            None => match var("ECS_CONTAINER_STOP_TIMEOUT") {
                Some(v) => {
                    parse_go_duration(&v).map_err(|m| cerr("ECS_CONTAINER_STOP_TIMEOUT", m))?
                }
                None => DEFAULT_STOP_TIMEOUT,
            },
        };
        if container_stop_timeout < MIN_STOP_TIMEOUT {
            return Err(cerr(
                "ECS_CONTAINER_STOP_TIMEOUT",
                format!("{container_stop_timeout:?} is below the minimum of 1s"),
            ));
        }
        let task_cleanup_wait = match flags.task_cleanup_wait {
            Some(v) => v,
            None => match var("ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION") {
                Some(v) => parse_go_duration(&v)
                    .map_err(|m| cerr("ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION", m))?,
                None => DEFAULT_TASK_CLEANUP_WAIT,
            },
        };
        let allow_privileged = match flags.allow_privileged {
            Some(v) => v,
            None => match var("ECS_DISABLE_PRIVILEGED") {
                Some(v) => !parse_bool(&v).map_err(|m| cerr("ECS_DISABLE_PRIVILEGED", m))?,
                None => false,
            },
        };

        Ok(AgentConfig {
            endpoint,
            access_key_id,
            secret_access_key,
            session_token,
            region,
            cluster,
            data_dir,
            reserved_memory_mib,
            reserved_ports,
            reserved_ports_udp,
            instance_attributes,
            pull_behavior,
            container_stop_timeout,
            allow_privileged,
            task_cleanup_wait,
            pause_image: flags.pause_image,
            resync_interval: DEFAULT_RESYNC_INTERVAL,
        })
    }
}

fn parse_mib(name: &str, v: &str) -> Result<i64, ConfigError> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| cerr(name, format!("{v:?} is not a whole number of MiB")))
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{v:?} is not true or false")),
    }
}

/// `[22, 2375]`: a JSON array of port numbers.
pub fn parse_ports(name: &str, v: &str) -> Result<Vec<u16>, ConfigError> {
    let values: Vec<serde_json::Value> = serde_json::from_str(v.trim()).map_err(|_| {
        cerr(
            name,
            format!("{v:?} is not a JSON array of port numbers, e.g. [22, 2375]"),
        )
    })?;
    let mut out = Vec::with_capacity(values.len());
    for p in values {
        let port = p
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| cerr(name, format!("{p} is not a port number (1-65535)")))?;
        if !out.contains(&port) {
            out.push(port);
        }
    }
    Ok(out)
}

/// `{"stack": "prod"}`: a JSON object of string values.
pub fn parse_attributes(name: &str, v: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let map: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(v.trim()).map_err(|_| {
            cerr(
                name,
                format!("{v:?} is not a JSON object of strings, e.g. {{\"stack\": \"prod\"}}"),
            )
        })?;
    let mut out = BTreeMap::new();
    for (k, val) in map {
        let s = val
            .as_str()
            .ok_or_else(|| cerr(name, format!("the value of {k:?} is not a string")))?;
        out.insert(k, s.to_string());
    }
    validate_attributes(name, &out)?;
    Ok(out)
}

/// ECS's custom attribute rules: name 1-128 of `[A-Za-z0-9_-/.]`, value
/// 1-128 characters without surrounding whitespace.
fn validate_attributes(name: &str, attrs: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for (k, v) in attrs {
        let name_ok = !k.is_empty()
            && k.len() <= 128
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-/.".contains(&b));
        if !name_ok {
            return Err(cerr(
                name,
                format!(
                    "attribute name {k:?} must be 1-128 characters of letters, digits, _ - / ."
                ),
            ));
        }
        if v.is_empty() || v.chars().count() > 128 || v.trim() != v {
            return Err(cerr(
                name,
                format!("attribute {k:?}: value must be 1-128 characters without surrounding whitespace"),
            ));
        }
    }
    Ok(())
}

/// `default`, `always`, `once` or `prefer-cached`.
pub fn parse_pull_behavior(v: &str) -> Result<PullBehavior, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "default" => Ok(PullBehavior::Default),
        "always" => Ok(PullBehavior::Always),
        "once" => Ok(PullBehavior::Once),
        "prefer-cached" => Ok(PullBehavior::PreferCached),
        _ => Err(format!(
            "{v:?} is not one of default, always, once, prefer-cached"
        )),
    }
}

/// A Go `time.ParseDuration` string: `30s`, `2m`, `1h30m`, `1.5s`, `500ms`
/// (units ns, us, µs, ms, s, m, h). A sign is refused: durations here are
/// never negative.
pub fn parse_go_duration(v: &str) -> Result<Duration, String> {
    let bad = || format!("{v:?} is not a duration like 30s, 2m or 1h30m");
    let s = v.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with(['+', '-']) {
        return Err(bad());
    }
    let mut rest = s;
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total_nanos += number * scale;
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(Duration::from_nanos(total_nanos.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn base_flags() -> AgentFlags {
        AgentFlags {
            endpoint: Some("http://127.0.0.1:4566".into()),
            access_key_id: Some("AKID".into()),
            secret_access_key: Some("SECRET".into()),
            data_dir: Some("/tmp/agent".into()),
            ..Default::default()
        }
    }

    #[test]
    fn defaults() {
        let c = AgentConfig::from_env_and_flags(base_flags(), env_of(&[])).unwrap();
        assert_eq!(c.cluster, "default");
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.reserved_ports, vec![22, 2375, 2376, 51678, 51679]);
        assert!(c.reserved_ports_udp.is_empty());
        assert_eq!(c.reserved_memory_mib, 0);
        assert_eq!(c.pull_behavior, PullBehavior::Default);
        assert_eq!(c.container_stop_timeout, Duration::from_secs(30));
        assert!(!c.allow_privileged);
        assert_eq!(c.task_cleanup_wait, Duration::from_secs(3600));
        assert!(c.instance_attributes.is_empty());
    }

    #[test]
    fn env_is_used_when_no_flag() {
        let env = env_of(&[
            ("ECS_CLUSTER", "web"),
            ("ECS_DATADIR", "/var/lib/ecs/data"),
            ("ECS_IMAGE_PULL_BEHAVIOR", "prefer-cached"),
            (
                "ECS_INSTANCE_ATTRIBUTES",
                r#"{"stack":"prod","team":"a/b.c"}"#,
            ),
            ("ECS_RESERVED_MEMORY", "256"),
            ("ECS_RESERVED_PORTS", "[22, 8080]"),
            ("ECS_RESERVED_PORTS_UDP", "[53]"),
            ("ECS_CONTAINER_STOP_TIMEOUT", "2m"),
            ("ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION", "10m"),
            ("ECS_DISABLE_PRIVILEGED", "false"),
            ("AWS_REGION", "eu-west-1"),
        ]);
        let flags = AgentFlags {
            data_dir: None,
            ..base_flags()
        };
        let c = AgentConfig::from_env_and_flags(flags, env).unwrap();
        assert_eq!(c.cluster, "web");
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/ecs/data"));
        assert_eq!(c.pull_behavior, PullBehavior::PreferCached);
        assert_eq!(c.instance_attributes["stack"], "prod");
        assert_eq!(c.instance_attributes["team"], "a/b.c");
        assert_eq!(c.reserved_memory_mib, 256);
        assert_eq!(c.reserved_ports, vec![22, 8080]);
        assert_eq!(c.reserved_ports_udp, vec![53]);
        assert_eq!(c.container_stop_timeout, Duration::from_secs(120));
        assert_eq!(c.task_cleanup_wait, Duration::from_secs(600));
        assert!(c.allow_privileged);
        assert_eq!(c.region, "eu-west-1");
    }

    #[test]
    fn flags_take_precedence_over_env() {
        let env = env_of(&[
            ("ECS_CLUSTER", "from-env"),
            ("ECS_DATADIR", "/env"),
            ("ECS_IMAGE_PULL_BEHAVIOR", "always"),
            ("ECS_INSTANCE_ATTRIBUTES", r#"{"a":"env"}"#),
            ("ECS_RESERVED_MEMORY", "100"),
            ("ECS_RESERVED_PORTS", "[1]"),
            ("ECS_RESERVED_PORTS_UDP", "[2]"),
            ("ECS_CONTAINER_STOP_TIMEOUT", "5s"),
            ("ECS_BACKEND_HOST", "http://env:1"),
            ("AWS_ACCESS_KEY_ID", "ENVKEY"),
        ]);
        let mut attrs = BTreeMap::new();
        attrs.insert("a".to_string(), "flag".to_string());
        let flags = AgentFlags {
            cluster: Some("from-flag".into()),
            data_dir: Some("/flag".into()),
            pull_behavior: Some(PullBehavior::Once),
            instance_attributes: Some(attrs),
            reserved_memory_mib: Some(7),
            reserved_ports: Some(vec![10]),
            reserved_ports_udp: Some(vec![]),
            container_stop_timeout: Some(Duration::from_secs(9)),
            allow_privileged: Some(true),
            ..base_flags()
        };
        let c = AgentConfig::from_env_and_flags(flags, env).unwrap();
        assert_eq!(c.cluster, "from-flag");
        assert_eq!(c.data_dir, PathBuf::from("/flag"));
        assert_eq!(c.pull_behavior, PullBehavior::Once);
        assert_eq!(c.instance_attributes["a"], "flag");
        assert_eq!(c.reserved_memory_mib, 7);
        assert_eq!(c.reserved_ports, vec![10]);
        assert!(c.reserved_ports_udp.is_empty());
        assert_eq!(c.container_stop_timeout, Duration::from_secs(9));
        assert!(c.allow_privileged);
        assert_eq!(c.endpoint, "http://127.0.0.1:4566");
        assert_eq!(c.access_key_id, "AKID");
    }

    #[test]
    fn default_data_dir_is_last_resort() {
        let flags = AgentFlags {
            data_dir: None,
            default_data_dir: Some("/home/u/.stevedore/agent".into()),
            ..base_flags()
        };
        let c = AgentConfig::from_env_and_flags(flags.clone(), env_of(&[])).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/home/u/.stevedore/agent"));
        let c = AgentConfig::from_env_and_flags(flags, env_of(&[("ECS_DATADIR", "/e")])).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/e"));
        let flags = AgentFlags {
            data_dir: None,
            ..base_flags()
        };
        let e = AgentConfig::from_env_and_flags(flags, env_of(&[])).unwrap_err();
        assert_eq!(e.name, "ECS_DATADIR");
    }

    #[test]
    fn empty_env_values_count_as_unset() {
        let env = env_of(&[("ECS_CLUSTER", ""), ("ECS_RESERVED_PORTS", " ")]);
        let c = AgentConfig::from_env_and_flags(base_flags(), env).unwrap();
        assert_eq!(c.cluster, "default");
        assert_eq!(c.reserved_ports, DEFAULT_RESERVED_PORTS.to_vec());
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "ECS_IMAGE_PULL_BEHAVIOR",
                "sometimes",
                "not one of default, always, once, prefer-cached",
            ),
            ("ECS_INSTANCE_ATTRIBUTES", "stack=prod", "not a JSON object"),
            ("ECS_INSTANCE_ATTRIBUTES", r#"{"a": 1}"#, "is not a string"),
            (
                "ECS_INSTANCE_ATTRIBUTES",
                r#"{"a b": "x"}"#,
                "attribute name",
            ),
            (
                "ECS_INSTANCE_ATTRIBUTES",
                r#"{"a": " x"}"#,
                "surrounding whitespace",
            ),
            ("ECS_RESERVED_MEMORY", "lots", "not a whole number"),
            ("ECS_RESERVED_MEMORY", "-5", "negative"),
            ("ECS_RESERVED_PORTS", "22,80", "not a JSON array"),
            ("ECS_RESERVED_PORTS", "[70000]", "not a port number"),
            ("ECS_RESERVED_PORTS_UDP", r#"["53"]"#, "not a port number"),
            ("ECS_CONTAINER_STOP_TIMEOUT", "30", "not a duration"),
            ("ECS_CONTAINER_STOP_TIMEOUT", "10x", "not a duration"),
            ("ECS_CONTAINER_STOP_TIMEOUT", "500ms", "below the minimum"),
            ("ECS_DISABLE_PRIVILEGED", "maybe", "not true or false"),
        ];
        for (k, v, want) in cases {
            let e = AgentConfig::from_env_and_flags(base_flags(), env_of(&[(k, v)])).unwrap_err();
            assert_eq!(&e.name, k, "{k}={v}: {e}");
            assert!(e.to_string().contains(want), "{k}={v}: {e}");
            assert!(e.to_string().starts_with(k), "{e}");
        }
        let flags = AgentFlags {
            endpoint: Some("localhost:4566".into()),
            ..base_flags()
        };
        assert!(AgentConfig::from_env_and_flags(flags, env_of(&[])).is_err());
        let flags = AgentFlags {
            endpoint: None,
            ..base_flags()
        };
        let e = AgentConfig::from_env_and_flags(flags, env_of(&[])).unwrap_err();
        assert!(e.to_string().contains("ECS_BACKEND_HOST"));
    }

    #[test]
    fn go_durations() {
        let ok = |s: &str| parse_go_duration(s).unwrap();
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("10us"), Duration::from_micros(10));
        assert_eq!(ok("10µs"), Duration::from_micros(10));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok(" 3h "), Duration::from_secs(3 * 3600));
        for bad in ["", "s", "30", "-5s", "+5s", "5 s", "1d", "m5", "1..5s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
    }
}
