//! The Stevedore host agent (`stevedore agent`).
//!
//! One agent runs per host (or per data dir: several may share one Docker
//! engine). It registers the host as an ECS container instance, receives the
//! tasks the server assigns to it, runs them in Docker through
//! [`stevedore_runtime::ContainerRuntime`], and reports what really happens
//! to them.
//!
//! # Flow
//!
//! 1. **Register.** `RegisterContainerInstance` with the host's resources
//!    (CPU = 1024 × cores, MEMORY = MiB − reserve, PORTS / PORTS_UDP), the
//!    attributes and capabilities the agent really has, and `versionInfo`.
//!    The returned ARN is kept in `DATA_DIR/agent.json`; a restarted agent
//!    re-registers the same ARN. Transient failures are retried with
//!    backoff; a refusal ends [`Agent::run`] with an error.
//! 2. **Adopt.** Subscribe to Docker events for containers labelled with
//!    this instance, then list them and match them to the tasks of the
//!    checkpoint. Containers are adopted as they are: a running container
//!    is never restarted or recreated; one that exited while the agent was
//!    down is recorded as STOPPED with its real exit code (and stops its task
//!    if essential); one that vanished is STOPPED too. Everything is
//!    reported once after a restart.
//! 3. **Loop.** A long poll (`PollTasks`, also the heartbeat) brings the
//!    full assigned task set whenever its store revision changes; Docker
//!    events (each followed by one inspect) bring container changes, and a
//!    slow resync (`list`, every 60 s) catches anything missed. After each
//!    input the pure [`engine::Engine`] decides the next actions (pull,
//!    create + start, stop, remove); the checkpoint is written; the actions
//!    run concurrently; changes are reported with `ReportTaskStates`, one
//!    report in flight at a time, under a strictly increasing sequence
//!    number, resent with backoff on failure. Poll failures reconnect with
//!    exponential backoff and jitter, and after a reconnect every task is
//!    reported again. Idle, the agent sleeps: one open poll, one open event
//!    stream, one list a minute.
//! 4. **Shutdown** leaves every container running; the next agent on the
//!    same data dir takes them over.
//!
//! # Task lifecycle
//!
//! `PENDING` (pull, then create + start in `dependsOn` order; awsvpc tasks
//! first get a pause container on the cluster network `stevedore-<cluster>`
//! whose network namespace the task containers join) → `RUNNING` (every
//! container has started) → `STOPPING` (containers stopped in reverse
//! dependency order, each with its `stopTimeout`, else
//! `ECS_CONTAINER_STOP_TIMEOUT`) → `DEPROVISIONING` (awsvpc: the pause
//! container, last) → `STOPPED`. Stop codes: `EssentialContainerExited`
//! when an essential container exits; `TaskFailedToStart` (stopped reason
//! `CannotPullContainerError: …`, `CannotCreateContainerError: …`,
//! `CannotStartContainerError: …`) when the task cannot start; the
//! server's own code and reason for StopTask. A task definition field the
//! agent cannot honour stops the task with `TaskFailedToStart` and a
//! reason naming the field, rather than being silently ignored. Containers
//! of stopped tasks are removed after `task_cleanup_wait`.
//!
//! # Files in the data dir
//!
//! Both are JSON, written atomically (temporary file, fsync, rename, fsync
//! of the directory), so a crash leaves the old or the new version.
//!
//! - `agent.json` ([`register::Identity`]): `cluster`,
//!   `containerInstanceArn`, and `nameSuffix`, the 8 hex characters that end
//!   this agent's Docker container names
//!   (`stevedore-<task id>-<container>-<suffix>`).
//! - `checkpoint.json` ([`engine::Checkpoint`]): `{format: 1,
//!   containerInstanceArn, seq, tasks: [TaskRecord]}`. `seq` is the last
//!   report sequence number used, so it keeps growing across restarts. Each
//!   task record holds the assignment as received (definition, overrides,
//!   desired status), the stop decision (`stop: {code, reason}`), the pull
//!   state, the task timestamps, and per container its ECS name, its
//!   Docker name, essential flag, dependencies and timeouts, status, Docker
//!   id, exit code, reason, bindings and, for the pause container, the task
//!   IP.
//!
//! # Why the checkpoint is written before anything starts
//!
//! The agent can be killed at any instant, including between "Docker
//! created the container" and "the agent noted it". So every Docker name is
//! fixed, and written to the checkpoint, before the container is created,
//! and the checkpoint is written before any action runs. After a crash the
//! restarted agent therefore always knows which task a container it finds
//! belongs to and what it is (also through the container's labels), finds a
//! half-done creation under its fixed name instead of creating a duplicate,
//! and still knows what Docker cannot tell it: why a task is stopping, the
//! stop code to report, when it was pulled and started, and the report
//! sequence number.
//!
//! # Public API
//!
//! - [`AgentConfig`] / [`AgentFlags`] / [`AgentConfig::from_env_and_flags`]
//! - [`ControlPlane`] and [`HttpControlPlane`]
//! - [`Agent::run`]

mod agent;
pub mod config;
pub mod control;
pub mod engine;
pub mod logs;
pub mod register;
pub mod spec;

pub use agent::{Agent, AgentError};
pub use config::{AgentConfig, AgentFlags, ConfigError};
pub use control::{BoxFuture, ControlError, ControlPlane, HttpControlPlane};
pub use logs::{HttpLogsClient, InputLogEvent, LogsClient};
