//! Test harness: the real Docker runtime, a real agent, and an in-process
//! fake control plane (the only fake) that holds the assigned tasks and
//! records registrations and reports.

#![allow(dead_code)]

use parking_lot_free::Mutex;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use stevedore_agent::{
    Agent, AgentConfig, AgentError, BoxFuture, ControlError, ControlPlane, InputLogEvent,
    LogsClient,
};
use stevedore_api::agent::{
    AssignedTask, ObservedTask, PollTasksRequest, PollTasksResponse, ReportTaskStatesRequest,
    ReportTaskStatesResponse, TaskStatus,
};
use stevedore_api::ecs::{
    ContainerDefinition, ContainerInstance, KeyValuePair, RegisterContainerInstanceRequest,
    RegisterContainerInstanceResponse, TaskDefinition,
};
use stevedore_runtime::{labels, DockerRuntime, PullBehavior};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

/// std's Mutex under a short name (no extra dependency).
mod parking_lot_free {
    #[derive(Default)]
    pub struct Mutex<T>(std::sync::Mutex<T>);
    impl<T> Mutex<T> {
        pub fn new(v: T) -> Self {
            Mutex(std::sync::Mutex::new(v))
        }
        pub fn lock(&self) -> std::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }
}

pub const BUSYBOX: &str = "stevedore-test/busybox:latest";
pub const BUSYBOX_STOPSIGNAL: &str = "stevedore-test/busybox-stopsignal:latest";

/// Builds the local test images once per test binary.
pub fn ensure_test_images() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-test-images");
        let status = Command::new(&script)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(status.success(), "{} failed", script.display());
    });
}

#[derive(Default)]
struct FakeState {
    tasks: Vec<AssignedTask>,
    registrations: Vec<RegisterContainerInstanceRequest>,
    reports: Vec<ReportTaskStatesRequest>,
    last_seq: u64,
    stale_reports: usize,
    latest: BTreeMap<String, ObservedTask>,
    polls: usize,
}

/// The fake server.
pub struct FakeControl {
    state: Mutex<FakeState>,
    revision: watch::Sender<i64>,
    /// While true, every call fails as if the server were down.
    pub down: std::sync::atomic::AtomicBool,
}

impl FakeControl {
    pub fn new() -> Arc<Self> {
        Arc::new(FakeControl {
            state: Mutex::new(FakeState::default()),
            revision: watch::channel(1).0,
            down: Default::default(),
        })
    }

    fn bump(&self) {
        self.revision.send_modify(|r| *r += 1);
    }

    pub fn assign(&self, task: AssignedTask) {
        let mut s = self.state.lock();
        s.tasks.retain(|t| t.task_arn != task.task_arn);
        s.tasks.push(task);
        drop(s);
        self.bump();
    }

    /// StopTask: desired STOPPED with a code and reason.
    pub fn stop_task(&self, arn: &str, code: &str, reason: &str) {
        let mut s = self.state.lock();
        for t in s.tasks.iter_mut().filter(|t| t.task_arn == arn) {
            t.desired_status = "STOPPED".into();
            t.stop_code = Some(code.into());
            t.stopped_reason = Some(reason.into());
        }
        drop(s);
        self.bump();
    }

    pub fn latest(&self, arn: &str) -> Option<ObservedTask> {
        self.state.lock().latest.get(arn).cloned()
    }

    pub fn registrations(&self) -> Vec<RegisterContainerInstanceRequest> {
        self.state.lock().registrations.clone()
    }

    pub fn reports(&self) -> Vec<ReportTaskStatesRequest> {
        self.state.lock().reports.clone()
    }

    pub fn stale_reports(&self) -> usize {
        self.state.lock().stale_reports
    }

    pub fn last_seq(&self) -> u64 {
        self.state.lock().last_seq
    }

    pub fn polls(&self) -> usize {
        self.state.lock().polls
    }

    /// Waits until the latest report of `arn` satisfies `pred`.
    pub async fn wait_for(
        &self,
        arn: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&ObservedTask) -> bool,
    ) -> ObservedTask {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(t) = self.latest(arn) {
                if pred(&t) {
                    return t;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; latest report: {:#?}",
                    self.latest(arn)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_status(&self, arn: &str, status: &str, timeout: Duration) -> ObservedTask {
        self.wait_for(arn, status, timeout, |t| t.last_status.as_str() == status)
            .await
    }

    fn is_down(&self) -> bool {
        self.down.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn down() -> ControlError {
    ControlError::Transport("connection refused (fake server down)".into())
}

impl ControlPlane for FakeControl {
    fn register(
        &self,
        req: RegisterContainerInstanceRequest,
    ) -> BoxFuture<'_, Result<RegisterContainerInstanceResponse, ControlError>> {
        Box::pin(async move {
            if self.is_down() {
                return Err(down());
            }
            let cluster = req.cluster.clone().unwrap_or_else(|| "default".into());
            let arn = req.container_instance_arn.clone().unwrap_or_else(|| {
                format!(
                    "arn:aws:ecs:us-east-1:000000000000:container-instance/{cluster}/{}",
                    uuid::Uuid::new_v4().simple()
                )
            });
            self.state.lock().registrations.push(req);
            Ok(RegisterContainerInstanceResponse {
                container_instance: Some(ContainerInstance {
                    container_instance_arn: Some(arn),
                    status: Some("ACTIVE".into()),
                    ..Default::default()
                }),
            })
        })
    }

    fn poll(
        &self,
        req: PollTasksRequest,
    ) -> BoxFuture<'_, Result<PollTasksResponse, ControlError>> {
        Box::pin(async move {
            if self.is_down() {
                tokio::time::sleep(Duration::from_millis(20)).await;
                return Err(down());
            }
            self.state.lock().polls += 1;
            let mut rx = self.revision.subscribe();
            if *rx.borrow_and_update() <= req.known_revision {
                let wait = Duration::from_secs(u64::from(req.wait_seconds.min(30)));
                let _ = tokio::time::timeout(wait, rx.changed()).await;
            }
            if self.is_down() {
                return Err(down());
            }
            let revision = *self.revision.borrow();
            let tasks = self.state.lock().tasks.clone();
            Ok(PollTasksResponse { revision, tasks })
        })
    }

    fn report(
        &self,
        req: ReportTaskStatesRequest,
    ) -> BoxFuture<'_, Result<ReportTaskStatesResponse, ControlError>> {
        Box::pin(async move {
            if self.is_down() {
                return Err(down());
            }
            let mut s = self.state.lock();
            if req.seq <= s.last_seq {
                s.stale_reports += 1;
                return Ok(ReportTaskStatesResponse { accepted: false });
            }
            s.last_seq = req.seq;
            for t in &req.tasks {
                s.latest.insert(t.task_arn.clone(), t.clone());
            }
            s.reports.push(req);
            Ok(ReportTaskStatesResponse { accepted: true })
        })
    }
}

/// The in-memory CloudWatch Logs sink: groups of streams of events, with
/// CloudWatch's errors for missing and duplicate resources.
#[derive(Default)]
pub struct FakeLogs {
    groups: Mutex<BTreeMap<String, BTreeMap<String, Vec<InputLogEvent>>>>,
    /// Delay of every PutLogEvents, ms.
    pub put_delay_ms: std::sync::atomic::AtomicU64,
}

fn logs_error(code: &str, message: &str) -> ControlError {
    ControlError::Service {
        status: 400,
        code: code.into(),
        message: message.into(),
    }
}

impl FakeLogs {
    pub fn create_group(&self, group: &str) {
        self.groups.lock().entry(group.into()).or_default();
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.groups.lock().contains_key(group)
    }

    pub fn streams(&self, group: &str) -> Vec<String> {
        self.groups
            .lock()
            .get(group)
            .map(|g| g.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The messages of a stream, in order.
    pub fn messages(&self, group: &str, stream: &str) -> Vec<String> {
        self.groups
            .lock()
            .get(group)
            .and_then(|g| g.get(stream))
            .map(|events| events.iter().map(|e| e.message.clone()).collect())
            .unwrap_or_default()
    }

    pub fn events(&self, group: &str, stream: &str) -> Vec<InputLogEvent> {
        self.groups
            .lock()
            .get(group)
            .and_then(|g| g.get(stream))
            .cloned()
            .unwrap_or_default()
    }
}

impl LogsClient for FakeLogs {
    fn create_log_group<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let mut g = self.groups.lock();
            if g.contains_key(group) {
                return Err(logs_error(
                    "ResourceAlreadyExistsException",
                    "The specified log group already exists",
                ));
            }
            g.insert(group.into(), BTreeMap::new());
            Ok(())
        })
    }

    fn create_log_stream<'a>(
        &'a self,
        group: &'a str,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let mut g = self.groups.lock();
            let Some(streams) = g.get_mut(group) else {
                return Err(logs_error(
                    "ResourceNotFoundException",
                    "The specified log group does not exist.",
                ));
            };
            if streams.contains_key(stream) {
                return Err(logs_error(
                    "ResourceAlreadyExistsException",
                    "The specified log stream already exists",
                ));
            }
            streams.insert(stream.into(), Vec::new());
            Ok(())
        })
    }

    fn put_log_events<'a>(
        &'a self,
        group: &'a str,
        stream: &'a str,
        events: &'a [InputLogEvent],
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let delay = self.put_delay_ms.load(std::sync::atomic::Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            assert!(!events.is_empty() && events.len() <= 10_000);
            assert!(events.iter().map(|e| e.message.len() + 26).sum::<usize>() <= 1_048_576);
            assert!(events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
            let mut g = self.groups.lock();
            let Some(s) = g.get_mut(group).and_then(|s| s.get_mut(stream)) else {
                return Err(logs_error(
                    "ResourceNotFoundException",
                    "The specified log group or stream does not exist.",
                ));
            };
            s.extend(events.iter().cloned());
            Ok(())
        })
    }
}

type RunningAgent = (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), AgentError>>,
);

/// A unique cluster, data dir and agent; cleans up its containers and
/// network on drop, even when the test fails.
pub struct Harness {
    pub fake: Arc<FakeControl>,
    pub logs: Arc<FakeLogs>,
    pub runtime: Arc<DockerRuntime>,
    pub dir: tempfile::TempDir,
    pub cluster: String,
    pub config: AgentConfig,
    running: Option<RunningAgent>,
}

impl Harness {
    pub async fn new() -> Harness {
        ensure_test_images();
        let runtime = Arc::new(DockerRuntime::connect().expect("Docker"));
        let dir = tempfile::tempdir().unwrap();
        let cluster = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let mut config = AgentConfig::new("http://unused", "AKID", "SECRET", dir.path());
        config.cluster = cluster.clone();
        config.pull_behavior = PullBehavior::PreferCached;
        config.container_stop_timeout = Duration::from_secs(2);
        config.resync_interval = Duration::from_secs(5);
        Harness {
            fake: FakeControl::new(),
            logs: Arc::new(FakeLogs::default()),
            runtime,
            dir,
            cluster,
            config,
            running: None,
        }
    }

    pub async fn with_pause(mut self) -> Harness {
        let image = self
            .runtime
            .ensure_pause_image()
            .await
            .expect("pause image");
        self.config.pause_image = Some(image);
        self
    }

    pub fn start(&mut self) {
        assert!(self.running.is_none());
        let (tx, rx) = oneshot::channel::<()>();
        let config = self.config.clone();
        let runtime = self.runtime.clone();
        let control: Arc<dyn ControlPlane> = self.fake.clone();
        let logs: Arc<dyn LogsClient> = self.logs.clone();
        let handle = tokio::spawn(async move {
            Agent::run_with_logs(config, runtime, control, logs, async {
                let _ = rx.await;
            })
            .await
        });
        self.running = Some((tx, handle));
    }

    /// Stops the agent (containers keep running).
    pub async fn stop(&mut self) {
        let (tx, handle) = self.running.take().expect("running");
        let _ = tx.send(());
        handle.await.expect("agent task").expect("agent result");
    }

    pub fn instance_arn(&self) -> String {
        let raw = std::fs::read(self.dir.path().join("agent.json")).expect("agent.json");
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        v["containerInstanceArn"].as_str().unwrap().to_string()
    }

    pub fn task_arn(&self) -> String {
        format!(
            "arn:aws:ecs:us-east-1:000000000000:task/{}/{}",
            self.cluster,
            uuid::Uuid::new_v4().simple()
        )
    }

    /// Ids of this harness's containers (all states).
    pub fn container_ids(&self) -> Vec<String> {
        let out = Command::new("docker")
            .args(["ps", "-aq", "--no-trunc", "--filter"])
            .arg(format!("label={}={}", labels::CLUSTER, self.cluster))
            .output()
            .expect("docker ps");
        let mut ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        ids.sort();
        ids
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some((tx, handle)) = self.running.take() {
            let _ = tx.send(());
            handle.abort();
        }
        let ids = self.container_ids();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output();
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &format!("stevedore-{}", self.cluster)])
            .output();
    }
}

pub fn docker_inspect(id: &str) -> serde_json::Value {
    let out = Command::new("docker")
        .args(["inspect", id])
        .output()
        .expect("docker inspect");
    assert!(
        out.status.success(),
        "docker inspect {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0].clone()
}

pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn container(name: &str, command: &str) -> ContainerDefinition {
    ContainerDefinition {
        name: Some(name.into()),
        image: Some(BUSYBOX.into()),
        command: Some(vec!["sh".into(), "-c".into(), command.into()]),
        memory: Some(32),
        essential: Some(true),
        ..Default::default()
    }
}

pub fn kv(k: &str, v: &str) -> KeyValuePair {
    KeyValuePair {
        name: Some(k.into()),
        value: Some(v.into()),
    }
}

pub fn task(arn: &str, containers: Vec<ContainerDefinition>) -> AssignedTask {
    AssignedTask {
        task_arn: arn.into(),
        desired_status: TaskStatus::Running,
        task_definition: TaskDefinition {
            family: Some("test".into()),
            revision: Some(1),
            container_definitions: Some(containers),
            ..Default::default()
        },
        overrides: None,
        launch_type: stevedore_api::ecs::LaunchType::Ec2,
        stopped_reason: None,
        stop_code: None,
    }
}

/// A shell loop that exits 0 at once on SIGTERM.
pub const GRACEFUL: &str = "trap 'exit 0' TERM; while true; do sleep 1; done";

pub fn find<'a>(t: &'a ObservedTask, name: &str) -> &'a stevedore_api::ecs::Container {
    t.containers
        .iter()
        .find(|c| c.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no container {name} in {t:#?}"))
}

pub async fn http_get(url: &str, timeout: Duration) -> String {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        match client.get(url).send().await {
            Ok(r) if r.status().is_success() => return r.text().await.unwrap(),
            other => {
                if Instant::now() > deadline {
                    panic!("GET {url}: {other:?}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
