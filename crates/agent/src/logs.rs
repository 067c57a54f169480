//! The `awslogs` log driver, agent side.
//!
//! A container whose `logConfiguration.logDriver` is `awslogs` runs with
//! Docker's `json-file` driver (so `docker logs` works and nothing needs
//! AWS), and a per-container shipper ([`ship`]) follows its output with
//! [`ContainerRuntime::logs`], batches it within CloudWatch Logs' limits
//! (at most [`MAX_BATCH_EVENTS`] events and [`MAX_BATCH_BYTES`] bytes
//! counting [`EVENT_OVERHEAD_BYTES`] per event, sent at least every
//! [`FLUSH_INTERVAL`]) and sends it with `PutLogEvents` to the server's
//! CloudWatch Logs API through a [`LogsClient`]. The HTTP client,
//! [`HttpLogsClient`], posts to the same endpoint as the ECS calls, signed
//! with SigV4 for service `logs`.
//!
//! Why nothing is missed: the json-file options are the agent's
//! ([`spool_log_config`]), not the daemon's `log-opts` (Docker merges
//! those only for keys a container leaves unset), and they never rotate.
//! Docker 20.10's follower skips whatever it has not read of a file when
//! that file is rotated (and reads part of it again), so a follower that
//! is behind at a rotation loses lines; with no rotation the file holds
//! everything not yet shipped, also across an agent restart. In blocking
//! mode the shipper also attaches to the container
//! ([`ContainerRuntime::attach`]) and stops reading the attachment while
//! it is more than [`HOLD_BEHIND_BYTES`] behind, so a container writing
//! faster than the shipper sends is slowed down to the shipper's pace,
//! as with Docker's own awslogs driver.
//!
//! The shipper ends when the container has exited and its output is
//! exhausted and the last batch was sent (or failed for good); the engine
//! does not report the task STOPPED before that. Progress (the timestamp of
//! the last shipped line) is checkpointed, so a restarted agent resumes
//! where it left off (a batch in flight when the agent died is sent again).
//!
//! Options ([`parse_awslogs`]): `awslogs-group` (required),
//! `awslogs-stream-prefix` (stream `prefix/container-name/task-id`, else the
//! container id), `awslogs-create-group`, `awslogs-region` (must be the
//! agent's region), `mode` (`blocking`, the default: no line is dropped;
//! `non-blocking`: the container is never held, at most `max-buffer-size`
//! bytes are held in memory and the oldest lines beyond it are dropped;
//! the stream then gets an event saying how many, where they were).
//! Anything else is refused. Empty lines are not shipped (CloudWatch events
//! cannot be empty).

use crate::config::AgentConfig;
use crate::control::{BoxFuture, ControlError, HttpControlPlane};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use stevedore_runtime::{ContainerRuntime, LogConfig, LogLine, RuntimeError, Status};
use tokio::sync::Notify;
use tokio::time::Instant;

/// CloudWatch's per-event overhead in the batch size.
pub const EVENT_OVERHEAD_BYTES: usize = 26;
/// CloudWatch's PutLogEvents limits.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// A batch may span at most 24 hours.
const MAX_BATCH_SPAN_MS: i64 = 24 * 3600 * 1000;
/// Lines are sent at most this long after they were read.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// `max-buffer-size` when not given (Docker's default).
pub const DEFAULT_MAX_BUFFER_BYTES: usize = 1024 * 1024;
/// In blocking mode the reader waits when this much is unsent (Docker's
/// json-file holds the rest).
const BLOCKING_BUFFER_BYTES: usize = 2 * MAX_BATCH_BYTES;
/// json-file `max-size` for awslogs containers: rotation that never comes
/// in practice (Docker refuses `-1` per container), so the file keeps all
/// output the shipper has not read (see the module docs).
pub const SPOOL_MAX_SIZE: &str = "1024g";
/// In blocking mode the container is held while the shipper has read this
/// many bytes of its output fewer than the attachment has seen.
pub const HOLD_BEHIND_BYTES: u64 = 1024 * 1024;

/// The Docker log configuration of an awslogs container.
pub fn spool_log_config() -> LogConfig {
    LogConfig {
        driver: "json-file".into(),
        options: BTreeMap::from([
            ("max-size".to_string(), SPOOL_MAX_SIZE.to_string()),
            ("max-file".to_string(), "1".to_string()),
        ]),
    }
}

/// The event a non-blocking stream gets where lines were dropped.
pub fn dropped_notice(dropped: u64, max_buffer_bytes: usize) -> String {
    format!(
        "[stevedore awslogs] {dropped} log lines dropped here: mode non-blocking, the shipper's buffer (max-buffer-size {max_buffer_bytes} bytes) was full"
    )
}

/// After the container exited, transient failures are retried this long
/// before the batch is given up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// The CloudWatch Logs JSON 1.1 target prefix and SigV4 service name.
pub const LOGS_TARGET_PREFIX: &str = "Logs_20140328";
pub const LOGS_SIGNING_NAME: &str = "logs";

/// One CloudWatch log event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputLogEvent {
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub message: String,
}

/// The three CloudWatch Logs calls the shipper makes. Errors are the
/// server's (`ResourceAlreadyExistsException`, `ResourceNotFoundException`,
/// ...) or transport failures, as [`ControlError`]s.
pub trait LogsClient: Send + Sync + 'static {
    fn create_log_group<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<(), ControlError>>;
    fn create_log_stream<'a>(
        &'a self,
        group: &'a str,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<(), ControlError>>;
    fn put_log_events<'a>(
        &'a self,
        group: &'a str,
        stream: &'a str,
        events: &'a [InputLogEvent],
    ) -> BoxFuture<'a, Result<(), ControlError>>;
}

/// [`LogsClient`] over HTTP: the agent's endpoint, SigV4 service `logs`.
#[derive(Debug)]
pub struct HttpLogsClient {
    http: HttpControlPlane,
}

impl HttpLogsClient {
    pub fn from_config(config: &AgentConfig) -> Result<Self, ControlError> {
        Ok(HttpLogsClient {
            http: HttpControlPlane::from_config(config)?,
        })
    }

    async fn call(
        &self,
        op: &str,
        body: &impl Serialize,
    ) -> Result<serde_json::Value, ControlError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ControlError::Transport(format!("cannot encode {op}: {e}")))?;
        let bytes = self
            .http
            .post_signed(
                LOGS_SIGNING_NAME,
                &format!("{LOGS_TARGET_PREFIX}.{op}"),
                body,
            )
            .await?;
        // Parsed loosely: an empty body is an empty object.
        Ok(serde_json::from_slice(&bytes).unwrap_or_default())
    }
}

impl LogsClient for HttpLogsClient {
    fn create_log_group<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            self.call(
                "CreateLogGroup",
                &serde_json::json!({ "logGroupName": group }),
            )
            .await
            .map(drop)
        })
    }

    fn create_log_stream<'a>(
        &'a self,
        group: &'a str,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            self.call(
                "CreateLogStream",
                &serde_json::json!({ "logGroupName": group, "logStreamName": stream }),
            )
            .await
            .map(drop)
        })
    }

    fn put_log_events<'a>(
        &'a self,
        group: &'a str,
        stream: &'a str,
        events: &'a [InputLogEvent],
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            // Typed, so a 10,000-event batch is encoded without building
            // a JSON tree first.
            #[derive(Serialize)]
            #[serde(rename_all = "camelCase")]
            struct Put<'e> {
                log_group_name: &'e str,
                log_stream_name: &'e str,
                log_events: &'e [InputLogEvent],
            }
            let answer = self
                .call(
                    "PutLogEvents",
                    &Put {
                        log_group_name: group,
                        log_stream_name: stream,
                        log_events: events,
                    },
                )
                .await?;
            if let Some(rejected) = answer.get("rejectedLogEventsInfo").filter(|v| !v.is_null()) {
                tracing::warn!(group, stream, %rejected, "CloudWatch Logs rejected some events");
            }
            Ok(())
        })
    }
}

/// `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogMode {
    Blocking,
    NonBlocking,
}

/// A container's `awslogs` options, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsLogsConfig {
    pub group: String,
    #[serde(default)]
    pub stream_prefix: Option<String>,
    #[serde(default)]
    pub create_group: bool,
    pub mode: LogMode,
    /// Non-blocking mode's buffer, bytes.
    pub max_buffer_bytes: usize,
}

impl AwsLogsConfig {
    /// The log stream: `prefix/container-name/task-id` with a prefix (as
    /// ECS names it), else the container id (Docker's awslogs default).
    pub fn stream_name(&self, container_name: &str, task_id: &str, container_id: &str) -> String {
        match &self.stream_prefix {
            Some(p) => format!("{p}/{container_name}/{task_id}"),
            None => container_id.to_string(),
        }
    }
}

/// Docker's size syntax (`units.RAMInBytes`): a number with an optional
/// binary unit `b`, `k`, `m`, `g` (also `kb`, `KiB`, ...), any case.
pub fn parse_size(s: &str) -> Option<usize> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let v = num * mult;
    (v.is_finite() && (0.0..1e15).contains(&v)).then_some(v as usize)
}

/// Why a container's `awslogs` options are refused. The task reports it
/// as `spec::SpecError::AwsLogs`, which names the container.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsLogsError {
    #[error("option {0} is not supported by this agent (supported: awslogs-group, awslogs-stream-prefix, awslogs-create-group, awslogs-region, mode, max-buffer-size)")]
    UnsupportedOption(String),
    #[error("the awslogs-group option is required")]
    MissingGroup,
    #[error("awslogs-region {region} is not this agent's region {agent_region} (there is one logs endpoint)")]
    OtherRegion {
        region: String,
        agent_region: String,
    },
    /// The value, lowercased.
    #[error("awslogs-create-group must be true or false, not {0:?}")]
    InvalidCreateGroup(String),
    #[error("mode must be blocking or non-blocking, not {0:?}")]
    InvalidMode(String),
    #[error("max-buffer-size is only supported with mode non-blocking")]
    BufferSizeNeedsNonBlocking,
    #[error("max-buffer-size {0:?} is not a size")]
    InvalidBufferSize(String),
}

/// Checks a container's `awslogs` options.
pub fn parse_awslogs(
    options: &BTreeMap<String, String>,
    agent_region: &str,
) -> Result<AwsLogsConfig, AwsLogsError> {
    for key in options.keys() {
        let known = matches!(
            key.as_str(),
            "awslogs-group"
                | "awslogs-stream-prefix"
                | "awslogs-create-group"
                | "awslogs-region"
                | "mode"
                | "max-buffer-size"
        );
        if !known {
            return Err(AwsLogsError::UnsupportedOption(key.clone()));
        }
    }
    let group = options
        .get("awslogs-group")
        .filter(|g| !g.is_empty())
        .ok_or(AwsLogsError::MissingGroup)?
        .clone();
    if let Some(region) = options.get("awslogs-region") {
        if region != agent_region {
            return Err(AwsLogsError::OtherRegion {
                region: region.clone(),
                agent_region: agent_region.to_string(),
            });
        }
    }
    let stream_prefix = options
        .get("awslogs-stream-prefix")
        .filter(|p| !p.is_empty())
        .cloned();
    let create_group = match options
        .get("awslogs-create-group")
        .map(|v| v.to_ascii_lowercase())
    {
        None => false,
        Some(v) if v == "true" => true,
        Some(v) if v == "false" => false,
        Some(v) => return Err(AwsLogsError::InvalidCreateGroup(v)),
    };
    let mode = match options.get("mode").map(String::as_str) {
        None | Some("blocking") => LogMode::Blocking,
        Some("non-blocking") => LogMode::NonBlocking,
        Some(v) => return Err(AwsLogsError::InvalidMode(v.to_string())),
    };
    let max_buffer_bytes = match options.get("max-buffer-size") {
        None => DEFAULT_MAX_BUFFER_BYTES,
        Some(_) if mode == LogMode::Blocking => {
            return Err(AwsLogsError::BufferSizeNeedsNonBlocking)
        }
        Some(v) => match parse_size(v) {
            Some(n) if n > 0 => n,
            _ => return Err(AwsLogsError::InvalidBufferSize(v.clone())),
        },
    };
    Ok(AwsLogsConfig {
        group,
        stream_prefix,
        create_group,
        mode,
        max_buffer_bytes,
    })
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Nanoseconds since the epoch (the checkpoint's `shippedUntilNs`).
pub fn nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

pub fn from_nanos(n: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(n)
}

/// The size a line counts for in a batch.
pub fn event_size(line: &LogLine) -> usize {
    line.message.len() + EVENT_OVERHEAD_BYTES
}

/// Takes the next batch from the front of `lines`: as many as fit in the
/// PutLogEvents limits, within 24 hours of the first. Returns the events
/// (timestamps made non-decreasing, as CloudWatch requires) and the last
/// line's timestamp, and the bytes taken.
pub fn take_batch(
    lines: &mut VecDeque<LogLine>,
) -> (Vec<InputLogEvent>, Option<SystemTime>, usize) {
    let mut events: Vec<InputLogEvent> = Vec::new();
    let mut bytes = 0usize;
    let mut last = None;
    let mut first_ms = None;
    while let Some(line) = lines.front() {
        let size = event_size(line);
        let ms = millis(line.timestamp);
        let span_ok = first_ms.is_none_or(|f| ms - f <= MAX_BATCH_SPAN_MS);
        if !events.is_empty()
            && (events.len() >= MAX_BATCH_EVENTS || bytes + size > MAX_BATCH_BYTES || !span_ok)
        {
            break;
        }
        let Some(line) = lines.pop_front() else { break };
        bytes += size;
        let ts = events.last().map_or(ms, |e| e.timestamp.max(ms));
        first_ms.get_or_insert(ts);
        last = Some(line.timestamp);
        events.push(InputLogEvent {
            timestamp: ts,
            message: line.message,
        });
    }
    (events, last, bytes)
}

/// What a shipper tells the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipEvent {
    /// Lines up to this timestamp (ns since the epoch) were delivered.
    Shipped {
        task_arn: String,
        container: String,
        until_ns: u64,
    },
    /// The container's output is exhausted and sent; `error` when some of
    /// it could not be delivered.
    Drained {
        task_arn: String,
        container: String,
        container_id: String,
        error: Option<String>,
    },
}

/// One container to ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipJob {
    pub task_arn: String,
    pub task_id: String,
    /// ECS container name.
    pub container: String,
    pub container_id: String,
    pub config: AwsLogsConfig,
    /// Resume after this line timestamp (ns since the epoch).
    pub since_ns: Option<u64>,
}

#[derive(Default)]
struct BufState {
    lines: VecDeque<LogLine>,
    bytes: usize,
    dropped: u64,
    /// Raw output bytes the reader has taken from the engine.
    read_bytes: u64,
    /// The holder waits for the reader.
    holding: bool,
    /// When the oldest unsent line arrived.
    oldest: Option<Instant>,
    reader_done: bool,
}

struct Shared {
    state: Mutex<BufState>,
    data: Notify,
    space: Notify,
    /// The reader moved on (for the holder).
    progress: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, BufState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn ignore(result: Result<(), ControlError>, code: &str) -> Result<(), ControlError> {
    match result {
        Err(ControlError::Service { code: c, .. }) if c == code => Ok(()),
        other => other,
    }
}

/// Retries a call while its failure is transient; gives up on transient
/// failures only once `give_up` says so (the container has exited and
/// they have lasted [`GIVE_UP_AFTER`]).
async fn with_retries<F>(shared: &Shared, mut call: impl FnMut() -> F) -> Result<(), ControlError>
where
    F: std::future::Future<Output = Result<(), ControlError>>,
{
    let mut delay = Duration::from_millis(200);
    let mut failing_since: Option<Instant> = None;
    loop {
        match call().await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_retryable() => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if shared.lock().reader_done && since.elapsed() >= GIVE_UP_AFTER {
                    return Err(e);
                }
                tracing::debug!(error = %e, retry_in = ?delay, "awslogs: retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Ships one container's output until it is exhausted (see the module
/// docs), sending [`ShipEvent`]s through `report`.
pub async fn ship(
    job: ShipJob,
    runtime: Arc<dyn ContainerRuntime>,
    logs: Arc<dyn LogsClient>,
    report: impl Fn(ShipEvent) + Send + Sync,
) {
    let cfg = &job.config;
    let group = cfg.group.as_str();
    let stream = cfg.stream_name(&job.container, &job.task_id, &job.container_id);
    let shared = Shared {
        state: Mutex::new(BufState::default()),
        data: Notify::new(),
        space: Notify::new(),
        progress: Notify::new(),
    };
    let reader = read_lines(&job, runtime.as_ref(), &shared);
    let holder = hold_back(&job, runtime.as_ref(), &shared);
    let sender = async {
        let setup = async {
            if cfg.create_group {
                with_retries(&shared, || async {
                    ignore(
                        logs.create_log_group(group).await,
                        "ResourceAlreadyExistsException",
                    )
                })
                .await?;
            }
            with_retries(&shared, || async {
                ignore(
                    logs.create_log_stream(group, &stream).await,
                    "ResourceAlreadyExistsException",
                )
            })
            .await
        };
        if let Err(e) = setup.await {
            let error =
                format!("awslogs: cannot create log stream {stream} in log group {group}: {e}");
            tracing::warn!(container = %job.container_id, %error);
            // Nothing can be delivered: stop reading.
            return Some(error);
        }
        let mut error: Option<String> = None;
        let mut lost = 0usize;
        loop {
            let (batch, last, finished, dropped) = {
                let mut st = shared.lock();
                let ready = st.reader_done
                    || st.lines.len() >= MAX_BATCH_EVENTS
                    || st.bytes >= MAX_BATCH_BYTES
                    || st.oldest.is_some_and(|t| t.elapsed() >= FLUSH_INTERVAL);
                if ready && !st.lines.is_empty() {
                    let (batch, last, bytes) = take_batch(&mut st.lines);
                    st.bytes -= bytes;
                    st.oldest = (!st.lines.is_empty()).then(Instant::now);
                    let dropped = std::mem::take(&mut st.dropped);
                    (batch, last, false, dropped)
                } else {
                    let dropped = std::mem::take(&mut st.dropped);
                    (
                        Vec::new(),
                        None,
                        st.reader_done && st.lines.is_empty(),
                        dropped,
                    )
                }
            };
            let mut batch = batch;
            if dropped > 0 {
                tracing::warn!(
                    container = %job.container_id,
                    group, stream = %stream, dropped,
                    "awslogs non-blocking: buffer full (max-buffer-size {}), dropped the oldest lines",
                    cfg.max_buffer_bytes
                );
                // In the stream itself, where the gap is: that is where the
                // user reading the logs looks.
                let timestamp = batch
                    .first()
                    .map_or_else(|| millis(SystemTime::now()), |e| e.timestamp);
                let notice = InputLogEvent {
                    timestamp,
                    message: dropped_notice(dropped, cfg.max_buffer_bytes),
                };
                if batch.len() >= MAX_BATCH_EVENTS {
                    // No room: a batch of its own, first.
                    let sent = with_retries(&shared, || {
                        logs.put_log_events(group, &stream, std::slice::from_ref(&notice))
                    })
                    .await;
                    if let Err(e) = sent {
                        tracing::warn!(container = %job.container_id, error = %e, "awslogs: cannot deliver the dropped-lines notice");
                    }
                } else {
                    batch.insert(0, notice);
                }
            }
            if !batch.is_empty() {
                shared.space.notify_one();
                let sent =
                    with_retries(&shared, || logs.put_log_events(group, &stream, &batch)).await;
                match sent {
                    Ok(()) => {
                        if let Some(t) = last {
                            report(ShipEvent::Shipped {
                                task_arn: job.task_arn.clone(),
                                container: job.container.clone(),
                                until_ns: nanos(t),
                            });
                        }
                    }
                    Err(e) => {
                        lost += batch.len();
                        tracing::warn!(container = %job.container_id, error = %e, events = batch.len(), "awslogs: cannot deliver log events");
                        error = Some(format!(
                            "awslogs: {lost} log events not delivered to {group}/{stream}: {e}"
                        ));
                    }
                }
                continue;
            }
            if finished {
                return error;
            }
            let wait = {
                let st = shared.lock();
                st.oldest.map_or(FLUSH_INTERVAL, |t| {
                    FLUSH_INTERVAL.saturating_sub(t.elapsed())
                })
            };
            tokio::select! {
                _ = shared.data.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    };
    tokio::pin!(reader);
    tokio::pin!(sender);
    tokio::pin!(holder);
    let mut holder_done = job.config.mode == LogMode::NonBlocking;
    // The sender decides the end: it waits for the reader to finish, or
    // gives up early (then the reader is dropped, and the holder with it,
    // which releases the container).
    let error = loop {
        tokio::select! {
            error = &mut sender => break error,
            () = &mut reader, if !shared.lock().reader_done => {}
            () = &mut holder, if !holder_done => holder_done = true,
        }
    };
    report(ShipEvent::Drained {
        task_arn: job.task_arn.clone(),
        container: job.container.clone(),
        container_id: job.container_id.clone(),
        error,
    });
}

/// Where a follower is in a container's output, so that following again
/// (after an engine hiccup, or for the final pass after exit) neither
/// repeats nor misses a line. Timestamps alone cannot say it: Docker
/// stamps stdout and stderr in separate copiers, so the file's order is
/// not the timestamps' order (a stderr line written last can carry an
/// earlier stamp than the stdout lines before it in the file), and lines
/// can share a stamp. Positions can: a follow from second `S` returns the
/// file's lines stamped at or after `S`, in file order, and what was read
/// before is a prefix of the file, so the first `k` of them are exactly
/// the `k` lines already read with a stamp at or after `S`. `S` is one
/// second before the newest stamp read, which only assumes the copiers
/// are less than a second apart.
#[derive(Debug, Default)]
pub struct ReadPosition {
    /// The agent's checkpoint: lines stamped at or before it were shipped
    /// by an earlier agent process (at-least-once across agent restarts).
    resume_after_ns: Option<u64>,
    /// Stamps of the lines read, oldest first, trimmed to the last
    /// seconds before the newest.
    recent: VecDeque<u64>,
    newest_ns: u64,
    read_any: bool,
}

const NS_PER_SEC: u64 = 1_000_000_000;

impl ReadPosition {
    pub fn new(resume_after_ns: Option<u64>) -> Self {
        ReadPosition {
            resume_after_ns,
            ..Default::default()
        }
    }

    fn window_start(&self) -> u64 {
        (self.newest_ns / NS_PER_SEC).saturating_sub(1) * NS_PER_SEC
    }

    /// Where to follow from (lines strictly after it, in ns) and how many
    /// of the lines that follow were read already.
    pub fn refollow(&self) -> (Option<u64>, usize) {
        if !self.read_any {
            return (self.resume_after_ns, 0);
        }
        let start = self.window_start();
        let skip = self.recent.iter().filter(|&&t| t >= start).count();
        (Some(start.saturating_sub(1)), skip)
    }

    /// A line an earlier agent process shipped.
    pub fn before_resume(&self, ts_ns: u64) -> bool {
        self.resume_after_ns.is_some_and(|r| ts_ns <= r)
    }

    /// A line was read.
    pub fn read(&mut self, ts_ns: u64) {
        self.read_any = true;
        self.newest_ns = self.newest_ns.max(ts_ns);
        self.recent.push_back(ts_ns);
        let start = self.window_start();
        while self.recent.front().is_some_and(|&t| t < start) {
            self.recent.pop_front();
        }
    }
}

/// Follows the container's output into the buffer until the container
/// has exited (or is gone), re-following after engine hiccups.
async fn read_lines(job: &ShipJob, runtime: &dyn ContainerRuntime, shared: &Shared) {
    let mut position = ReadPosition::new(job.since_ns);
    let non_blocking = job.config.mode == LogMode::NonBlocking;
    let limit = if non_blocking {
        job.config.max_buffer_bytes
    } else {
        BLOCKING_BUFFER_BYTES
    };
    let mut final_pass = false;
    loop {
        let (since, mut skip) = position.refollow();
        let mut lines = runtime.logs(&job.container_id, since.map(from_nanos));
        let mut failed = false;
        while let Some(item) = lines.next().await {
            let line = match item {
                Ok(line) => line,
                Err(e) => {
                    tracing::debug!(container = %job.container_id, error = %e, "log stream failed");
                    failed = true;
                    break;
                }
            };
            let ts = nanos(line.timestamp);
            if position.before_resume(ts) {
                continue;
            }
            if skip > 0 {
                skip -= 1;
                continue;
            }
            position.read(ts);
            {
                let mut st = shared.lock();
                st.read_bytes += line.consumed.bytes;
                if st.holding {
                    shared.progress.notify_one();
                }
            }
            if line.message.is_empty() {
                continue;
            }
            loop {
                {
                    let mut st = shared.lock();
                    if non_blocking || st.bytes < limit {
                        st.bytes += event_size(&line);
                        st.lines.push_back(line);
                        st.oldest.get_or_insert_with(Instant::now);
                        while non_blocking && st.bytes > limit && st.lines.len() > 1 {
                            if let Some(old) = st.lines.pop_front() {
                                st.bytes -= event_size(&old);
                                st.dropped += 1;
                            }
                        }
                        break;
                    }
                }
                shared.data.notify_one();
                shared.space.notified().await;
            }
            shared.data.notify_one();
        }
        // The stream ended: the container exited, or the engine
        // connection dropped. Only the first ends the shipper, after one
        // more pass begun once the container had exited: Docker 20.10's
        // follower can stop short of the file's end when the container
        // exits, while a read of an exited container's file is whole.
        if final_pass && !failed {
            break;
        }
        match runtime.inspect(&job.container_id).await {
            Ok(s) if s.status == Status::Exited => final_pass = true,
            Err(RuntimeError::NotFound(_)) => break,
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    shared.lock().reader_done = true;
    shared.data.notify_one();
    shared.progress.notify_one();
}

/// Blocking mode's hold on the container: reads its attachment only while
/// the reader is at most [`HOLD_BEHIND_BYTES`] behind it, so the engine
/// stops taking the container's output when the shipper falls behind.
/// Both count the same bytes from the moment of attaching (what was
/// written before is only ever read, so the count can only say less than
/// the true distance: the hold can delay, never stop, a caught-up reader).
/// Ends when the container has exited; the reader finishing releases it.
async fn hold_back(job: &ShipJob, runtime: &dyn ContainerRuntime, shared: &Shared) {
    if job.config.mode == LogMode::NonBlocking {
        return;
    }
    loop {
        let base = shared.lock().read_bytes;
        let mut seen: u64 = 0;
        let mut output = runtime.attach(&job.container_id);
        loop {
            loop {
                {
                    let mut st = shared.lock();
                    let read = st.read_bytes - base;
                    st.holding = seen.saturating_sub(read) > HOLD_BEHIND_BYTES && !st.reader_done;
                    if !st.holding {
                        break;
                    }
                }
                shared.progress.notified().await;
            }
            match output.next().await {
                Some(Ok(count)) => seen += count.bytes,
                Some(Err(e)) => {
                    tracing::debug!(container = %job.container_id, error = %e, "attach failed");
                    break;
                }
                None => break,
            }
        }
        if shared.lock().reader_done {
            return;
        }
        // The attachment ended: the container exited, or the engine
        // connection dropped. Only the first ends the hold.
        match runtime.inspect(&job.container_id).await {
            Ok(s) if s.status == Status::Exited => return,
            Err(RuntimeError::NotFound(_)) => return,
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stevedore_runtime::LogStream;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn line(ms: u64, msg: &str) -> LogLine {
        LogLine {
            stream: LogStream::Stdout,
            timestamp: SystemTime::UNIX_EPOCH + Duration::from_millis(ms),
            message: msg.to_string(),
            consumed: stevedore_runtime::OutputCount::default(),
        }
    }

    #[test]
    fn options() {
        let c = parse_awslogs(
            &opts(&[
                ("awslogs-group", "/ecs/app"),
                ("awslogs-stream-prefix", "web"),
                ("awslogs-region", "us-east-1"),
                ("awslogs-create-group", "true"),
            ]),
            "us-east-1",
        )
        .unwrap();
        assert_eq!(c.group, "/ecs/app");
        assert!(c.create_group);
        assert_eq!(c.mode, LogMode::Blocking);
        assert_eq!(c.stream_name("app", "abc123", "deadbeef"), "web/app/abc123");
        let c = parse_awslogs(
            &opts(&[
                ("awslogs-group", "g"),
                ("mode", "non-blocking"),
                ("max-buffer-size", "4m"),
            ]),
            "us-east-1",
        )
        .unwrap();
        assert_eq!(c.mode, LogMode::NonBlocking);
        assert_eq!(c.max_buffer_bytes, 4 << 20);
        assert!(!c.create_group);
        assert_eq!(c.stream_name("app", "abc123", "deadbeef"), "deadbeef");

        let err = |kv: &[(&str, &str)]| parse_awslogs(&opts(kv), "us-east-1").unwrap_err();
        let e = err(&[("awslogs-stream-prefix", "p")]);
        assert_eq!(e, AwsLogsError::MissingGroup);
        assert_eq!(e.to_string(), "the awslogs-group option is required");
        assert_eq!(
            err(&[("awslogs-group", "g"), ("awslogs-region", "eu-west-1")]),
            AwsLogsError::OtherRegion {
                region: "eu-west-1".into(),
                agent_region: "us-east-1".into()
            }
        );
        let e = err(&[("awslogs-group", "g"), ("awslogs-datetime-format", "%Y")]);
        assert_eq!(
            e,
            AwsLogsError::UnsupportedOption("awslogs-datetime-format".into())
        );
        assert!(
            e.to_string()
                .starts_with("option awslogs-datetime-format is not supported by this agent"),
            "{e}"
        );
        assert_eq!(
            err(&[("awslogs-group", "g"), ("mode", "fast")]),
            AwsLogsError::InvalidMode("fast".into())
        );
        assert_eq!(
            err(&[("awslogs-group", "g"), ("max-buffer-size", "1m")]),
            AwsLogsError::BufferSizeNeedsNonBlocking
        );
        assert_eq!(
            err(&[
                ("awslogs-group", "g"),
                ("mode", "non-blocking"),
                ("max-buffer-size", "lots")
            ]),
            AwsLogsError::InvalidBufferSize("lots".into())
        );
        let e = err(&[("awslogs-group", "g"), ("awslogs-create-group", "YES")]);
        assert_eq!(e, AwsLogsError::InvalidCreateGroup("yes".into()));
        assert_eq!(
            e.to_string(),
            "awslogs-create-group must be true or false, not \"yes\""
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("2k"), Some(2048));
        assert_eq!(parse_size("2KiB"), Some(2048));
        assert_eq!(parse_size("1.5m"), Some(1572864));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("1t"), None);
    }

    #[test]
    fn batches_respect_limits() {
        // Count limit.
        let mut q: VecDeque<LogLine> = (0..10_005).map(|i| line(i, "x")).collect();
        let (b, last, bytes) = take_batch(&mut q);
        assert_eq!(b.len(), MAX_BATCH_EVENTS);
        assert_eq!(bytes, MAX_BATCH_EVENTS * 27);
        assert_eq!(
            last,
            Some(SystemTime::UNIX_EPOCH + Duration::from_millis(9_999))
        );
        assert_eq!(q.len(), 5);
        // Byte limit, 26 bytes per event included.
        let big = "y".repeat(100_000);
        let mut q: VecDeque<LogLine> = (0..20).map(|i| line(i, &big)).collect();
        let (b, _, bytes) = take_batch(&mut q);
        assert_eq!(b.len(), 10);
        assert!(bytes <= MAX_BATCH_BYTES);
        let msg = "z".repeat(MAX_BATCH_BYTES / 2 - EVENT_OVERHEAD_BYTES);
        let mut q: VecDeque<LogLine> = (0..3).map(|i| line(i, &msg)).collect();
        assert_eq!(take_batch(&mut q).0.len(), 2);
        let msg = "z".repeat(MAX_BATCH_BYTES / 2 - EVENT_OVERHEAD_BYTES + 1);
        let mut q: VecDeque<LogLine> = (0..3).map(|i| line(i, &msg)).collect();
        assert_eq!(take_batch(&mut q).0.len(), 1);
        // 24 hours.
        let mut q: VecDeque<LogLine> = [line(0, "a"), line(86_400_000, "b"), line(86_400_001, "c")]
            .into_iter()
            .collect();
        assert_eq!(take_batch(&mut q).0.len(), 2);
        // Timestamps never go backwards within a batch.
        let mut q: VecDeque<LogLine> = [line(5, "a"), line(3, "b")].into_iter().collect();
        let (b, _, _) = take_batch(&mut q);
        assert_eq!(b[1].timestamp, 5);
    }

    #[test]
    fn long_lines_split_at_the_event_limit() {
        let long = "é".repeat(200_000);
        let parts = stevedore_runtime::split_message(&long, stevedore_runtime::MAX_LOG_LINE_BYTES);
        assert_eq!(parts.len(), 2);
        assert!(parts
            .iter()
            .all(|p| p.len() <= stevedore_runtime::MAX_LOG_LINE_BYTES));
        assert_eq!(parts.concat(), long);
        assert_eq!(
            stevedore_runtime::split_message("", 10),
            vec![String::new()]
        );
    }

    /// Replays a follow over `file` (stamps in file order) the way the
    /// engine does: the lines stamped strictly after `since`.
    fn follow(file: &[u64], since: Option<u64>) -> Vec<u64> {
        file.iter()
            .copied()
            .filter(|&t| since.is_none_or(|s| t > s))
            .collect()
    }

    fn read_all(file: &[u64], cut: usize, resume: Option<u64>) -> Vec<u64> {
        let mut pos = ReadPosition::new(resume);
        let mut got = Vec::new();
        // The first follow stops short after `cut` lines.
        for pass in 0..2 {
            let (since, mut skip) = pos.refollow();
            let lines = follow(file, since);
            let take = if pass == 0 { cut } else { usize::MAX };
            for t in lines.into_iter().take(take) {
                if pos.before_resume(t) {
                    continue;
                }
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                pos.read(t);
                got.push(t);
            }
        }
        got
    }

    #[test]
    fn refollow_neither_repeats_nor_misses_out_of_order_stamps() {
        let s = NS_PER_SEC;
        // stdout lines 1..=6 stamped in order, a stderr line written to
        // the file after them but stamped between 2 and 3, and two lines
        // that share a stamp.
        let file = [
            5 * s + 1,
            5 * s + 2,
            5 * s + 4,
            5 * s + 5,
            5 * s + 5,
            6 * s + 1,
            5 * s + 3,
            6 * s + 2,
        ];
        for cut in 0..=file.len() {
            assert_eq!(read_all(&file, cut, None), file.to_vec(), "cut at {cut}");
        }
    }

    #[test]
    fn refollow_after_restart_keeps_the_checkpoint() {
        let s = NS_PER_SEC;
        let file = [5 * s + 1, 5 * s + 2, 5 * s + 3, 6 * s + 1, 6 * s + 2];
        for cut in 0..=3 {
            assert_eq!(
                read_all(&file, cut, Some(5 * s + 2)),
                vec![5 * s + 3, 6 * s + 1, 6 * s + 2],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn read_position_forgets_old_stamps() {
        let mut pos = ReadPosition::new(None);
        for i in 0..10_000u64 {
            pos.read(i * NS_PER_SEC / 1000);
        }
        // Ten seconds of lines; at most the last two seconds are kept.
        assert!(pos.recent.len() <= 2001, "{}", pos.recent.len());
        let (since, skip) = pos.refollow();
        assert_eq!(since, Some(8 * NS_PER_SEC - 1));
        assert_eq!(skip, 2000);
    }

    #[test]
    fn nanos_round_trip() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(from_nanos(nanos(t)), t);
    }
}
