//! The agent's IO loop: registration, adoption, then poll / observe /
//! decide / checkpoint / act / report until shutdown.

use crate::config::AgentConfig;
use crate::control::{ControlError, ControlPlane};
use crate::engine::{Action, Engine, EngineConfig, Outcome};
use crate::logs::{self, HttpLogsClient, LogsClient, ShipEvent};
use crate::register;
use crate::spec::SpecContext;
use futures::stream::BoxStream;
use futures::StreamExt;
use rand::Rng;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
// Tokio's clock, so the agent's timers follow a paused test clock too.
use stevedore_api::agent::{
    PollTasksRequest, PollTasksResponse, ReportTaskStatesResponse, MAX_WAIT_SECONDS,
};
use stevedore_api::Timestamp;
use stevedore_runtime::{
    labels, ContainerEvent, ContainerRuntime, ContainerState, EventKind, PullBehavior,
    RuntimeError, Status,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Why [`Agent::run`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The data dir could not be read or written.
    #[error("agent data: {0}")]
    Data(#[from] register::DataError),
    /// The server refused the registration (not a transient failure).
    #[error("cannot register the container instance: {0}")]
    Register(ControlError),
    #[error("cannot register the container instance: the server returned no containerInstanceArn")]
    NoArn,
    /// The CloudWatch Logs client could not be set up.
    #[error("logs client: {0}")]
    Logs(ControlError),
}

/// The Stevedore agent.
pub struct Agent;

/// Exponential backoff with jitter.
struct Backoff {
    base: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            next: base,
        }
    }
    /// The next delay: the current step, jittered to 50-100 %.
    fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        let factor = rand::rng().random_range(0.5..=1.0);
        d.mul_f64(factor)
    }
    fn reset(&mut self) {
        self.next = self.base;
    }
}

/// Everything that wakes the loop, on one channel.
enum Input {
    Outcome(Outcome),
    State(ContainerState),
    Gone(String),
    Resync {
        gen: u64,
        result: Result<Vec<ContainerState>, RuntimeError>,
    },
    Poll(PollTasksResponse),
    PollReconnected,
    Report {
        result: Result<ReportTaskStatesResponse, ControlError>,
        covered: Vec<(String, u64)>,
    },
    Logs(ShipEvent),
}

enum Wake {
    Input(Box<Input>),
    Event(Option<Result<ContainerEvent, RuntimeError>>),
    Timer,
    Resync,
}

fn now() -> Timestamp {
    Timestamp::now()
}

fn instant_of(t: Timestamp) -> Instant {
    let target = SystemTime::from(t);
    let wait = target
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Instant::now() + wait
}

/// Waits for `fut`, or returns `None` if `shutdown` finishes first.
async fn or_shutdown<T>(
    shutdown: &mut (impl Future<Output = ()> + Unpin),
    fut: impl Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        _ = shutdown => None,
        v = fut => Some(v),
    }
}

impl Agent {
    /// Runs the agent until `shutdown` completes: registers the container
    /// instance (re-registering the saved ARN), re-adopts this instance's
    /// containers, then long-polls the server, runs the assigned tasks and
    /// reports their state. Containers are left running on shutdown.
    ///
    /// Transient failures (server or Docker unreachable) are retried with
    /// backoff for as long as it takes; only a refused registration or an
    /// unusable data dir end it with an error.
    ///
    /// awslogs output goes to the CloudWatch Logs API on the same endpoint
    /// ([`HttpLogsClient`]).
    pub async fn run<F>(
        config: AgentConfig,
        runtime: Arc<dyn ContainerRuntime>,
        control: Arc<dyn ControlPlane>,
        shutdown: F,
    ) -> Result<(), AgentError>
    where
        F: Future<Output = ()> + Send,
    {
        let logs: Arc<dyn LogsClient> =
            Arc::new(HttpLogsClient::from_config(&config).map_err(AgentError::Logs)?);
        Self::run_with_logs(config, runtime, control, logs, shutdown).await
    }

    /// [`Agent::run`] with the CloudWatch Logs client to ship awslogs
    /// output through.
    pub async fn run_with_logs<F>(
        config: AgentConfig,
        runtime: Arc<dyn ContainerRuntime>,
        control: Arc<dyn ControlPlane>,
        logs: Arc<dyn LogsClient>,
        shutdown: F,
    ) -> Result<(), AgentError>
    where
        F: Future<Output = ()> + Send,
    {
        let shutdown = shutdown;
        tokio::pin!(shutdown);
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|e| register::DataError {
            path: data_dir.clone(),
            message: e.to_string(),
        })?;
        let mut identity = register::load_identity(&data_dir, &config.cluster)?;

        // The host, as Docker describes it.
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let info = loop {
            match or_shutdown(&mut shutdown, runtime.info()).await {
                None => return Ok(()),
                Some(Ok(info)) => break info,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "Docker is not available; retrying");
                    if or_shutdown(&mut shutdown, tokio::time::sleep(backoff.next_delay()))
                        .await
                        .is_none()
                    {
                        return Ok(());
                    }
                }
            }
        };
        let awsvpc = match &config.pause_image {
            Some(image) => match runtime
                .ensure_image(image, PullBehavior::PreferCached)
                .await
            {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(image, error = %e, "the pause image is unusable; awsvpc tasks cannot run here");
                    false
                }
            },
            None => false,
        };

        // Registration.
        let request = register::registration_request(
            &config,
            &info,
            identity.container_instance_arn.as_deref(),
            awsvpc,
        );
        backoff.reset();
        let response = loop {
            match or_shutdown(&mut shutdown, control.register(request.clone())).await {
                None => return Ok(()),
                Some(Ok(r)) => break r,
                Some(Err(e)) if e.is_retryable() => {
                    tracing::warn!(error = %e, "cannot register yet; retrying");
                    if or_shutdown(&mut shutdown, tokio::time::sleep(backoff.next_delay()))
                        .await
                        .is_none()
                    {
                        return Ok(());
                    }
                }
                Some(Err(e)) => return Err(AgentError::Register(e)),
            }
        };
        let arn = response
            .container_instance
            .and_then(|ci| ci.container_instance_arn)
            .ok_or(AgentError::NoArn)?;
        if identity.container_instance_arn.as_deref() != Some(arn.as_str()) {
            if let Some(old) = &identity.container_instance_arn {
                tracing::warn!(%old, new = %arn, "registered as a different container instance");
            }
            identity.container_instance_arn = Some(arn.clone());
        }
        register::save_identity(&data_dir, &identity)?;
        tracing::info!(container_instance = %arn, cluster = %config.cluster, "registered");

        let checkpoint = register::load_checkpoint(&data_dir, &arn)?;
        let engine = Engine::new(
            EngineConfig {
                ctx: SpecContext {
                    cluster: config.cluster.clone(),
                    instance_arn: arn.clone(),
                    name_suffix: identity.name_suffix.clone(),
                    allow_privileged: config.allow_privileged,
                    default_stop_timeout: config.container_stop_timeout,
                    pause_image: if awsvpc {
                        config.pause_image.clone()
                    } else {
                        None
                    },
                    region: config.region.clone(),
                    log_drivers: info.log_drivers.clone(),
                },
                pull_behavior: config.pull_behavior,
                cleanup_wait: config.task_cleanup_wait,
            },
            checkpoint,
        );
        let mut runner = Runner::new(config, runtime, control, logs, engine, arn);
        let result = runner.run(&mut shutdown).await;
        runner.jobs.abort_all();
        result
    }
}

struct Runner {
    config: AgentConfig,
    runtime: Arc<dyn ContainerRuntime>,
    control: Arc<dyn ControlPlane>,
    engine: Engine,
    arn: String,
    logs: Arc<dyn LogsClient>,
    /// Container ids with a log shipper running.
    shipping: HashSet<String>,
    tx: mpsc::UnboundedSender<Input>,
    rx: mpsc::UnboundedReceiver<Input>,
    jobs: JoinSet<()>,
    report_in_flight: bool,
    report_retry_at: Option<Instant>,
    report_backoff: Backoff,
    events: Option<BoxStream<'static, Result<ContainerEvent, RuntimeError>>>,
    events_retry_at: Option<Instant>,
    events_backoff: Backoff,
}

impl Runner {
    fn new(
        config: AgentConfig,
        runtime: Arc<dyn ContainerRuntime>,
        control: Arc<dyn ControlPlane>,
        logs: Arc<dyn LogsClient>,
        engine: Engine,
        arn: String,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Runner {
            config,
            runtime,
            control,
            engine,
            arn,
            logs,
            shipping: HashSet::new(),
            tx,
            rx,
            jobs: JoinSet::new(),
            report_in_flight: false,
            report_retry_at: None,
            report_backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(30)),
            events: None,
            events_retry_at: None,
            events_backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(30)),
        }
    }

    fn labels(&self) -> Vec<(String, String)> {
        vec![
            (labels::MANAGED.to_string(), "true".to_string()),
            (labels::INSTANCE.to_string(), self.arn.clone()),
        ]
    }

    /// Subscribes to events (first, so nothing is missed), then lists.
    fn subscribe_and_resync(&mut self) {
        self.events = Some(self.runtime.events(self.labels()));
        self.events_retry_at = None;
        self.spawn_resync();
    }

    fn spawn_resync(&mut self) {
        let gen = self.engine.generation();
        let rt = self.runtime.clone();
        let tx = self.tx.clone();
        let labels = self.labels();
        self.jobs.spawn(async move {
            let refs: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let result = rt.list(&refs).await;
            let _ = tx.send(Input::Resync { gen, result });
        });
    }

    fn write_checkpoint(&mut self) -> Result<(), AgentError> {
        if self.engine.take_dirty() {
            register::save_checkpoint(&self.config.data_dir, &self.engine.checkpoint())?;
        }
        Ok(())
    }

    async fn run(
        &mut self,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> Result<(), AgentError> {
        // Adopt: what Docker has now, before acting on anything.
        let labels = self.labels();
        self.events = Some(self.runtime.events(labels.clone()));
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        loop {
            let gen = self.engine.generation();
            let refs: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            match or_shutdown(shutdown, self.runtime.list(&refs)).await {
                None => return Ok(()),
                Some(Ok(states)) => {
                    tracing::info!(
                        containers = states.len(),
                        tasks = self.engine.tasks().count(),
                        "adopting"
                    );
                    self.engine.apply_resync(&states, gen, now());
                    break;
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "cannot list containers; retrying");
                    if or_shutdown(shutdown, tokio::time::sleep(backoff.next_delay()))
                        .await
                        .is_none()
                    {
                        return Ok(());
                    }
                }
            }
        }

        self.jobs.spawn(poller(
            self.control.clone(),
            self.config.cluster.clone(),
            self.arn.clone(),
            self.tx.clone(),
        ));
        let period = self.config.resync_interval.max(Duration::from_secs(1));
        let mut resync = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        loop {
            self.turn()?;
            let wake = self.next_wake();
            let events = &mut self.events;
            let woke = tokio::select! {
                _ = &mut *shutdown => break,
                Some(input) = self.rx.recv() => Wake::Input(Box::new(input)),
                ev = async {
                    match events.as_mut() {
                        Some(s) => s.next().await,
                        None => std::future::pending().await,
                    }
                } => Wake::Event(ev),
                _ = tokio::time::sleep_until(wake) => Wake::Timer,
                _ = resync.tick() => Wake::Resync,
            };
            match woke {
                Wake::Input(input) => self.handle(*input),
                Wake::Event(ev) => self.handle_event(ev),
                Wake::Timer => {}
                Wake::Resync => self.spawn_resync(),
            }
            // Batch whatever else is already queued.
            while let Ok(input) = self.rx.try_recv() {
                self.handle(input);
            }
            if self.events.is_none() && self.events_retry_at.is_some_and(|t| Instant::now() >= t) {
                self.subscribe_and_resync();
            }
        }
        // Leave containers running; keep what we know, including log
        // shipping progress already reported.
        while let Ok(input) = self.rx.try_recv() {
            if matches!(input, Input::Logs(ShipEvent::Shipped { .. })) {
                self.handle(input);
            }
        }
        let _ = self.write_checkpoint();
        Ok(())
    }

    /// Decide, checkpoint, act, report.
    fn turn(&mut self) -> Result<(), AgentError> {
        let actions = self.engine.step(now());
        let report = if !self.report_in_flight
            && self.report_retry_at.is_none_or(|t| Instant::now() >= t)
            && self.engine.has_unreported()
        {
            self.engine.build_report(&self.config.cluster)
        } else {
            None
        };
        // Checkpoint first: nothing is created, started or reported that
        // the checkpoint does not already describe.
        self.write_checkpoint()?;
        for action in actions {
            let rt = self.runtime.clone();
            let tx = self.tx.clone();
            self.jobs.spawn(async move {
                execute(action, rt, &tx).await;
            });
        }
        // One log shipper per started awslogs container until its output
        // is drained.
        for job in self.engine.log_shippers() {
            if self.shipping.insert(job.container_id.clone()) {
                let rt = self.runtime.clone();
                let logs = self.logs.clone();
                let tx = self.tx.clone();
                self.jobs.spawn(logs::ship(job, rt, logs, move |ev| {
                    let _ = tx.send(Input::Logs(ev));
                }));
            }
        }
        if let Some((req, covered)) = report {
            self.report_in_flight = true;
            self.report_retry_at = None;
            let control = self.control.clone();
            let tx = self.tx.clone();
            tracing::debug!(seq = req.seq, tasks = req.tasks.len(), "reporting");
            self.jobs.spawn(async move {
                let result = control.report(req).await;
                let _ = tx.send(Input::Report { result, covered });
            });
        }
        // Reap finished jobs so the set does not grow.
        while self.jobs.try_join_next().is_some() {}
        Ok(())
    }

    fn next_wake(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let mut wake = self.engine.next_deadline().map_or(far, instant_of);
        if !self.report_in_flight && self.engine.has_unreported() {
            if let Some(t) = self.report_retry_at {
                wake = wake.min(t);
            }
        }
        if let Some(t) = self.events_retry_at {
            wake = wake.min(t);
        }
        // Never spin, whatever a deadline says.
        wake.max(Instant::now() + Duration::from_millis(20))
    }

    fn handle(&mut self, input: Input) {
        let t = now();
        match input {
            Input::Outcome(o) => self.engine.apply_outcome(o, t),
            Input::State(s) => {
                self.engine.apply_state(&s, t);
            }
            Input::Gone(id) => self.engine.apply_gone(&id, t),
            Input::Resync { gen, result } => match result {
                Ok(states) => self.engine.apply_resync(&states, gen, t),
                Err(e) => tracing::warn!(error = %e, "resync: cannot list containers"),
            },
            Input::Poll(resp) => {
                tracing::debug!(
                    revision = resp.revision,
                    tasks = resp.tasks.len(),
                    "assigned tasks"
                );
                self.engine.apply_poll(&resp, t);
            }
            Input::Logs(ShipEvent::Shipped {
                task_arn,
                container,
                until_ns,
            }) => self
                .engine
                .apply_logs_shipped(&task_arn, &container, until_ns),
            Input::Logs(ShipEvent::Drained {
                task_arn,
                container,
                container_id,
                error,
            }) => {
                self.shipping.remove(&container_id);
                self.engine
                    .apply_logs_drained(&task_arn, &container, &container_id, error);
            }
            Input::PollReconnected => {
                tracing::info!("reconnected to the server");
                self.engine.report_all_again();
            }
            Input::Report { result, covered } => {
                self.report_in_flight = false;
                match result {
                    Ok(r) if r.accepted => {
                        self.engine.report_accepted(&covered);
                        self.report_backoff.reset();
                    }
                    Ok(_) => {
                        // Our sequence is behind the server's: jump ahead
                        // to a time-based value and send again.
                        let floor = (t.as_millis().max(0) as u64).saturating_mul(1000);
                        tracing::warn!(
                            seq = self.engine.seq(),
                            floor,
                            "report ignored as stale; moving the sequence ahead"
                        );
                        self.engine.skip_seq_to(floor);
                    }
                    Err(e) => {
                        let delay = self.report_backoff.next_delay();
                        tracing::warn!(error = %e, retry_in = ?delay, "cannot report task states");
                        self.report_retry_at = Some(Instant::now() + delay);
                    }
                }
            }
        }
    }

    fn handle_event(&mut self, ev: Option<Result<ContainerEvent, RuntimeError>>) {
        match ev {
            Some(Ok(ev)) => {
                self.events_backoff.reset();
                match ev.kind {
                    EventKind::Destroy => {
                        let _ = self.tx.send(Input::Gone(ev.id));
                    }
                    EventKind::Create
                    | EventKind::Start
                    | EventKind::Die
                    | EventKind::Oom
                    | EventKind::HealthStatus(_) => {
                        let rt = self.runtime.clone();
                        let tx = self.tx.clone();
                        self.jobs.spawn(async move {
                            match rt.inspect(&ev.id).await {
                                Ok(s) => {
                                    let _ = tx.send(Input::State(s));
                                }
                                Err(RuntimeError::NotFound(_)) => {
                                    let _ = tx.send(Input::Gone(ev.id));
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "cannot inspect after an event")
                                }
                            }
                        });
                    }
                    EventKind::Other(_) => {}
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "Docker event stream failed; resubscribing");
                self.drop_events();
            }
            None => {
                tracing::warn!("Docker event stream ended; resubscribing");
                self.drop_events();
            }
        }
    }

    fn drop_events(&mut self) {
        self.events = None;
        self.events_retry_at = Some(Instant::now() + self.events_backoff.next_delay());
    }
}

/// The long-poll loop: one request open at a time, reconnecting with
/// exponential backoff and jitter. Sends the assigned set whenever it
/// changes (and after every reconnect).
async fn poller(
    control: Arc<dyn ControlPlane>,
    cluster: String,
    arn: String,
    tx: mpsc::UnboundedSender<Input>,
) {
    let mut known: i64 = 0;
    let mut first = true;
    let mut failing = false;
    let mut last_error = String::new();
    // Capped low: after a server restart the agent must be back well
    // within the server's lost-instance window (disconnect + grace, 30 s
    // by default), or its service tasks would be replaced elsewhere.
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(3));
    loop {
        let started = Instant::now();
        let req = PollTasksRequest {
            cluster: cluster.clone(),
            container_instance_arn: arn.clone(),
            known_revision: known,
            wait_seconds: MAX_WAIT_SECONDS,
        };
        match control.poll(req).await {
            Ok(resp) => {
                backoff.reset();
                let reconnected = std::mem::take(&mut failing);
                last_error.clear();
                if reconnected && tx.send(Input::PollReconnected).is_err() {
                    return;
                }
                let unchanged = resp.revision == known && !first && !reconnected;
                known = resp.revision;
                first = false;
                if !unchanged && tx.send(Input::Poll(resp)).is_err() {
                    return;
                }
                // A server that answers at once without news must not make
                // this a busy loop.
                if unchanged && started.elapsed() < Duration::from_millis(500) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            Err(e) => {
                let delay = backoff.next_delay();
                let text = e.to_string();
                if text != last_error {
                    // Each distinct failure once; repeats only at debug.
                    tracing::warn!(error = %e, retry_in = ?delay, "cannot poll the server; retrying with backoff");
                    last_error = text;
                } else {
                    tracing::debug!(error = %e, retry_in = ?delay, "server still unreachable");
                }
                failing = true;
                tokio::time::sleep(delay).await;
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

fn with_prefix(prefix: &str, e: &RuntimeError) -> String {
    let s = e.to_string();
    if s.starts_with(prefix) {
        s
    } else {
        format!("{prefix}: {s}")
    }
}

/// Runs one action against the runtime, sending its outcome(s).
async fn execute(action: Action, rt: Arc<dyn ContainerRuntime>, tx: &mpsc::UnboundedSender<Input>) {
    let send = |o: Outcome| {
        let _ = tx.send(Input::Outcome(o));
    };
    match action {
        Action::Pull {
            task_arn,
            images,
            behavior,
        } => {
            let mut digests = Vec::with_capacity(images.len());
            let mut result = Ok(());
            for image in &images {
                match rt.ensure_image(image, behavior).await {
                    Ok(p) => digests.push(p.digest),
                    Err(e) => {
                        result = Err(with_prefix("CannotPullContainerError", &e));
                        break;
                    }
                }
            }
            send(Outcome::Pulled {
                task_arn,
                result: result.map(|()| digests),
            });
        }
        Action::Launch {
            task_arn,
            container,
            spec,
            existing_id,
            network,
            volumes,
        } => {
            let fail = |reason: String, state: Option<ContainerState>| Outcome::Launched {
                task_arn: task_arn.clone(),
                container: container.clone(),
                result: Err((reason, state)),
            };
            if let Some(net) = network {
                if let Err(e) = rt.ensure_network(&net).await {
                    send(fail(with_prefix("CannotCreateContainerError", &e), None));
                    return;
                }
            }
            for v in &volumes {
                if let Err(e) = rt.ensure_volume(&v.spec, v.create).await {
                    send(fail(with_prefix("CannotCreateContainerError", &e), None));
                    return;
                }
            }
            let id = match existing_id {
                Some(id) => id,
                None => match rt.create(&spec).await {
                    Ok(id) => id,
                    Err(e @ RuntimeError::NameInUse(_)) => {
                        // Created before a crash: adopt it, never duplicate.
                        match rt.inspect(&spec.name).await {
                            Ok(s)
                                if s.labels.get(labels::TASK) == spec.labels.get(labels::TASK) =>
                            {
                                send(Outcome::Created {
                                    task_arn: task_arn.clone(),
                                    container: container.clone(),
                                    id: s.id.clone(),
                                });
                                if s.status != Status::Created {
                                    send(Outcome::Launched {
                                        task_arn,
                                        container,
                                        result: Ok(s),
                                    });
                                    return;
                                }
                                s.id
                            }
                            _ => {
                                send(fail(with_prefix("CannotCreateContainerError", &e), None));
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        send(fail(with_prefix("CannotCreateContainerError", &e), None));
                        return;
                    }
                },
            };
            send(Outcome::Created {
                task_arn: task_arn.clone(),
                container: container.clone(),
                id: id.clone(),
            });
            match rt.start(&id).await {
                Ok(()) => {
                    let state = match rt.inspect(&id).await {
                        Ok(s) => s,
                        // Started; details will come with the next event
                        // or resync.
                        Err(_) => ContainerState {
                            id: id.clone(),
                            name: spec.name.clone(),
                            labels: spec.labels.clone(),
                            status: Status::Running,
                            exit_code: None,
                            oom_killed: false,
                            error: None,
                            started_at: Some(SystemTime::now()),
                            finished_at: None,
                            ports: Vec::new(),
                            ips: Default::default(),
                            image_id: String::new(),
                            health: None,
                        },
                    };
                    send(Outcome::Launched {
                        task_arn,
                        container,
                        result: Ok(state),
                    });
                }
                Err(e) => {
                    let state = rt.inspect(&id).await.ok();
                    send(fail(with_prefix("CannotStartContainerError", &e), state));
                }
            }
        }
        Action::Stop {
            task_arn,
            container,
            id,
            timeout,
        } => {
            let result = match rt.stop(&id, timeout).await {
                Ok(()) => match rt.inspect(&id).await {
                    Ok(s) => Ok(Some(s)),
                    Err(RuntimeError::NotFound(_)) => Ok(None),
                    Err(e) => Err(e.to_string()),
                },
                Err(RuntimeError::NotFound(_)) => Ok(None),
                Err(e) => Err(e.to_string()),
            };
            send(Outcome::Stopped {
                task_arn,
                container,
                result,
            });
        }
        Action::Remove {
            task_arn,
            ids,
            volumes,
        } => {
            let mut result = Ok(());
            for id in &ids {
                match rt.remove(id).await {
                    Ok(()) | Err(RuntimeError::NotFound(_)) => {}
                    Err(e) => {
                        result = Err(e.to_string());
                        break;
                    }
                }
            }
            if result.is_ok() {
                for v in &volumes {
                    if let Err(e) = rt.remove_volume(v).await {
                        result = Err(e.to_string());
                        break;
                    }
                }
            }
            send(Outcome::Removed { task_arn, result });
        }
    }
}
