//! The container runtime behind a trait. Only this crate knows Docker.
//!
//! # Why a trait
//!
//! The agent describes containers as [`ContainerSpec`]s and observes them as
//! [`ContainerState`]s and a stream of [`ContainerEvent`]s; it never sees a
//! Docker type. That keeps the ECS task/container state machine in the agent
//! independent of the engine API (and of bollard's churn), gives errors the
//! ECS reason names the task reports ([`RuntimeError`] displays as
//! `CannotPullContainerError: ...` etc.), and lets a simulated runtime stand
//! in for scale benchmarks. [`DockerRuntime`] (module [`docker`], via
//! bollard) is the default and the only one used by tests.
//!
//! # Labels
//!
//! Every container the agent creates carries the [`labels`]:
//! `com.stevedore.managed=true`, `com.stevedore.cluster`,
//! `com.stevedore.container-instance`, `com.stevedore.task`,
//! `com.stevedore.container-name`, and `com.stevedore.role=pause` on an
//! awsvpc task's pause container. Several agents may share one engine, so a
//! restarted agent finds exactly its own containers with
//! [`ContainerRuntime::list`] on its instance label and subscribes to
//! [`ContainerRuntime::events`] with the same labels. Networks created by
//! [`ContainerRuntime::ensure_network`] carry `com.stevedore.managed=true`.
//!
//! # The pause image (awsvpc)
//!
//! An awsvpc task gets its own network namespace and IP, as on ECS: the agent
//! starts a pause container on the cluster's user-defined bridge network
//! ([`NetworkSpec::Network`]) and every container of the task joins its
//! namespace ([`NetworkSpec::Container`]), so they share one IP and talk over
//! `127.0.0.1`, and two tasks can use the same container port.
//! [`DockerRuntime::ensure_pause_image`] creates the image ([`PAUSE_IMAGE`],
//! `stevedore/pause:1`) without any registry: it imports an in-memory tar
//! holding a ~300-byte hand-assembled static executable (x86_64 and arm64;
//! see [`docker::pause_elf`]) that sleeps until SIGTERM/SIGINT and then exits
//! 0, so stopping it is immediate.
//!
//! # Images without a registry
//!
//! [`PullBehavior::Default`] tries the pull and falls back to a local image
//! when it fails, like the ECS agent; that is how locally built images run on
//! a machine with no registry. The integration tests build theirs with
//! `scripts/build-test-images`.

pub mod docker;

pub use docker::{DockerRuntime, PAUSE_IMAGE};

use futures::stream::BoxStream;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Labels every Stevedore container carries, so a restarted agent can find
/// and re-adopt exactly its own containers (several agents may share one
/// Docker engine).
pub mod labels {
    pub const MANAGED: &str = "com.stevedore.managed";
    pub const CLUSTER: &str = "com.stevedore.cluster";
    pub const INSTANCE: &str = "com.stevedore.container-instance";
    pub const TASK: &str = "com.stevedore.task";
    pub const CONTAINER: &str = "com.stevedore.container-name";
    /// "pause" for the per-task network namespace holder (awsvpc).
    pub const ROLE: &str = "com.stevedore.role";
}

/// ECS_IMAGE_PULL_BEHAVIOR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullBehavior {
    /// Pull; if the pull fails, use a cached local image if there is one.
    #[default]
    Default,
    /// Always pull; fail if the pull fails.
    Always,
    /// Pull only if the image is not present locally.
    Once,
    /// Use the local image if present, else pull.
    PreferCached,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub container_port: u16,
    /// `None` or `Some(0)`: Docker picks a free host port.
    pub host_port: Option<u16>,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkSpec {
    /// Docker's default bridge, with port publishing.
    Bridge,
    Host,
    None,
    /// Join another container's network namespace (awsvpc: the task's pause
    /// container, which owns the task's IP).
    Container(String),
    /// Attach to a named user-defined network (the pause container of an
    /// awsvpc task).
    Network(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// Everything needed to create one container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// Docker container name (unique on the engine).
    pub name: String,
    pub image: String,
    pub entry_point: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// Docker CpuShares (ECS `cpu`, minimum 2).
    pub cpu_shares: Option<i64>,
    /// Hard limit, MiB.
    pub memory_mib: Option<i64>,
    /// Soft limit, MiB.
    pub memory_reservation_mib: Option<i64>,
    /// Task-level limits on the container's cgroup when set (CFS quota from
    /// vCPUs; memory cap in MiB).
    pub nano_cpus: Option<i64>,
    pub ports: Vec<PortSpec>,
    pub network: NetworkSpec,
    pub labels: BTreeMap<String, String>,
    pub ulimits: Vec<Ulimit>,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    /// Docker-level stop timeout (SIGKILL after it).
    pub stop_timeout: Option<Duration>,
    /// Health check, volumes, Linux parameters and the other less common
    /// options.
    pub options: ContainerOptions,
}

/// A Docker health check (`HEALTHCHECK`). `test` is Docker's form: first
/// element `CMD` (exec the rest) or `CMD-SHELL` (one shell command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

/// A bind of a host path or a named Docker volume into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// An absolute host path (bind mount) or a Docker volume name.
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsSpec {
    pub container_path: String,
    pub size_mib: Option<i64>,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    pub host_path: String,
    /// Defaults to `host_path`.
    pub container_path: Option<String>,
    /// Docker cgroup permissions, e.g. `rwm`.
    pub permissions: String,
}

/// The less common container options (all default to "not set").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerOptions {
    pub health_check: Option<HealthCheck>,
    pub mounts: Vec<MountSpec>,
    /// Docker names of containers whose volumes to mount, and read-only.
    pub volumes_from: Vec<(String, bool)>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// Docker `--init`.
    pub init: bool,
    pub tmpfs: Vec<TmpfsSpec>,
    pub shm_size_mib: Option<i64>,
    pub devices: Vec<DeviceSpec>,
    pub sysctls: BTreeMap<String, String>,
    /// `hostname:ip`.
    pub extra_hosts: Vec<String>,
    pub dns_servers: Vec<String>,
    pub dns_search: Vec<String>,
    pub hostname: Option<String>,
    /// `docker-name:alias`.
    pub links: Vec<String>,
    /// OpenStdin.
    pub interactive: bool,
    pub tty: bool,
    pub security_opt: Vec<String>,
    pub network_disabled: bool,
    /// Docker `--log-driver` and `--log-opt`; `None`: the engine's default.
    pub log_config: Option<LogConfig>,
}

/// A Docker logging driver and its options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogConfig {
    pub driver: String,
    pub options: BTreeMap<String, String>,
}

/// Which output a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// An amount of a container's raw output: bytes, and the newlines among
/// them. [`ContainerRuntime::attach`] and [`ContainerRuntime::logs`] count
/// the same bytes, so a reader of the second can tell how far it is behind
/// the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputCount {
    pub bytes: u64,
    pub lines: u64,
}

impl OutputCount {
    /// The count of `raw` output.
    pub fn of(raw: &[u8]) -> Self {
        OutputCount {
            bytes: raw.len() as u64,
            lines: raw.iter().filter(|&&b| b == b'\n').count() as u64,
        }
    }
}

impl std::ops::AddAssign for OutputCount {
    fn add_assign(&mut self, other: Self) {
        self.bytes += other.bytes;
        self.lines += other.lines;
    }
}

/// One line of a container's output, as [`ContainerRuntime::logs`] yields
/// it: without the trailing newline, at most [`MAX_LOG_LINE_BYTES`] long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: LogStream,
    pub timestamp: SystemTime,
    pub message: String,
    /// The raw output this line stands for (with its newline, and any
    /// `\r` the message lost); a long line split into pieces counts
    /// what was read when each piece went out.
    pub consumed: OutputCount,
}

/// The longest message of one line: CloudWatch's 256 KiB event limit less
/// its 26 bytes of per-event overhead (what Docker's awslogs driver splits
/// at). Longer lines are split into several [`LogLine`]s.
pub const MAX_LOG_LINE_BYTES: usize = 262_144 - 26;

/// Splits `message` into pieces of at most `max` bytes, on UTF-8
/// character boundaries. An empty message gives one empty piece.
pub fn split_message(message: &str, max: usize) -> Vec<String> {
    let max = max.max(4);
    if message.len() <= max {
        return vec![message.to_string()];
    }
    let mut out = Vec::new();
    let mut rest = message;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(rest[..cut].to_string());
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// A named Docker volume to make sure of before a container mounts it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VolumeSpec {
    pub name: String,
    /// `None`: Docker's default (`local`).
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// Docker's health of a container that has a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBinding {
    pub container_port: u16,
    pub host_port: u16,
    pub host_ip: String,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    /// Exited or dead.
    Exited,
}

/// What Docker says about one container right now.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerState {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub status: Status,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    /// Docker's error text when the container could not start.
    pub error: Option<String>,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub ports: Vec<PortBinding>,
    /// IP addresses by network name.
    pub ips: BTreeMap<String, String>,
    pub image_id: String,
    /// `None` when the container has no health check.
    pub health: Option<Health>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Create,
    Start,
    /// The main process exited (or was killed).
    Die,
    Oom,
    Destroy,
    HealthStatus(String),
    Other(String),
}

/// A change reported by Docker's event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub id: String,
    pub kind: EventKind,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    pub cpus: u32,
    pub memory_mib: i64,
    pub os_type: String,
    /// ECS spelling: `x86_64` or `arm64`.
    pub architecture: String,
    pub docker_version: String,
    pub kernel_version: String,
    pub hostname: String,
    /// Logging drivers the engine has as plugins (Docker info
    /// `Plugins.Log`, e.g. `json-file`, `local`, `syslog`).
    pub log_drivers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    pub image_id: String,
    /// `repo@sha256:...` when known.
    pub digest: Option<String>,
}

/// Errors carry the ECS reason prefix the task will report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("CannotPullContainerError: {0}")]
    CannotPull(String),
    #[error("CannotCreateContainerError: {0}")]
    CannotCreate(String),
    /// Creating failed because a container with the name already exists
    /// (Docker's 409). Its own variant so a restarted agent can adopt the
    /// container it created before a crash; the reason it reports is the
    /// same as any other create failure.
    #[error("CannotCreateContainerError: {0}")]
    NameInUse(String),
    #[error("CannotStartContainerError: {0}")]
    CannotStart(String),
    #[error("CannotStopContainerError: {0}")]
    CannotStop(String),
    #[error("CannotRemoveContainerError: {0}")]
    CannotRemove(String),
    #[error("CannotInspectContainerError: {0}")]
    CannotInspect(String),
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("the container runtime is unavailable: {0}")]
    Unavailable(String),
}

pub trait ContainerRuntime: Send + Sync + 'static {
    fn info(&self) -> BoxFuture<'_, Result<HostInfo, RuntimeError>>;
    /// Makes `image` available locally according to `behavior`.
    fn ensure_image<'a>(
        &'a self,
        image: &'a str,
        behavior: PullBehavior,
    ) -> BoxFuture<'a, Result<PulledImage, RuntimeError>>;
    /// Creates (not starts) a container; returns its id.
    fn create<'a>(&'a self, spec: &'a ContainerSpec)
        -> BoxFuture<'a, Result<String, RuntimeError>>;
    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>>;
    /// Sends the image's STOPSIGNAL (SIGTERM by default), then SIGKILL after
    /// `timeout`. Stopping a stopped container is not an error.
    fn stop<'a>(
        &'a self,
        id: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>>;
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>>;
    fn inspect<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<ContainerState, RuntimeError>>;
    /// All containers (running or not) carrying every given label.
    fn list<'a>(
        &'a self,
        labels: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<Vec<ContainerState>, RuntimeError>>;
    /// Container events for containers carrying every given label, from now
    /// on. The stream ends if the engine connection drops; callers resync
    /// with `list` and subscribe again.
    fn events(
        &self,
        labels: Vec<(String, String)>,
    ) -> BoxStream<'static, Result<ContainerEvent, RuntimeError>>;
    /// Creates the user-defined bridge network awsvpc tasks of a cluster
    /// attach to, if it does not exist. Returns the network name.
    fn ensure_network<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<String, RuntimeError>>;
    /// Makes sure the named volume exists: an existing one is used as it
    /// is; a missing one is created when `create`, else it is an error
    /// (`CannotCreate`, naming the volume).
    fn ensure_volume<'a>(
        &'a self,
        volume: &'a VolumeSpec,
        create: bool,
    ) -> BoxFuture<'a, Result<(), RuntimeError>>;
    /// Removes a volume; a missing one is not an error.
    fn remove_volume<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>>;
    /// Follows a container's stdout and stderr (the engine must keep them:
    /// `json-file` or `local` driver): every line with a timestamp strictly
    /// after `since` (all when `None`), in order, then new lines as they
    /// come. The stream ends when the container has exited and its output
    /// is exhausted (at once for an exited container), or with one error
    /// if the engine connection fails; callers that need to know which
    /// inspect the container and follow again from the last timestamp.
    fn logs(
        &self,
        id: &str,
        since: Option<SystemTime>,
    ) -> BoxStream<'static, Result<LogLine, RuntimeError>>;
    /// Attaches to a running container's stdout and stderr and yields how
    /// much output passes, as it is written. While the stream is not
    /// polled the engine stops taking the container's output once its
    /// buffers (about 1 MiB) are full, so the container's writes block:
    /// that is how a slow log reader holds a container back. Closing the
    /// stream releases the container. Ends when the container exits, or
    /// with one error.
    fn attach(&self, id: &str) -> BoxStream<'static, Result<OutputCount, RuntimeError>>;
}
