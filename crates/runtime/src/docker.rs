//! [`DockerRuntime`]: the [`ContainerRuntime`] on the local Docker engine, via
//! bollard.
//!
//! Every Docker answer is treated as untrusted input: missing fields, odd
//! values and unparsable timestamps become `None`/defaults or a
//! [`RuntimeError`], never a panic.

use crate::{
    labels, split_message, BoxFuture, ContainerEvent, ContainerRuntime, ContainerSpec,
    ContainerState, EventKind, Health, HostInfo, LogLine, LogStream, NetworkSpec, OutputCount,
    PortBinding, Protocol, PullBehavior, PulledImage, RuntimeError, Status, VolumeSpec,
    MAX_LOG_LINE_BYTES,
};
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, DeviceMapping,
    EventMessage, HealthConfig, HealthStatusEnum, HostConfig, HostConfigLogConfig,
    NetworkCreateRequest, PortBinding as DockerPortBinding, ResourcesUlimits, VolumeCreateRequest,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    EventsOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
    StopContainerOptionsBuilder,
};
use bollard::Docker;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::OnceCell;

/// The image [`DockerRuntime::ensure_pause_image`] creates; bump the tag when
/// the embedded executable changes.
pub const PAUSE_IMAGE: &str = "stevedore/pause:1";
const PAUSE_REPO: &str = "stevedore/pause";
const PAUSE_TAG: &str = "1";

/// Per-request timeout for ordinary calls (pulls and event streams are not
/// bounded by it once their response has started). `stop` extends it by
/// the stop timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Docker reports this for "never" (`StartedAt` of a created container).
const DOCKER_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Attributes Docker adds to a container event's actor next to the
/// container's labels; they are not labels.
const EVENT_NON_LABEL_ATTRIBUTES: &[&str] = &["image", "name", "exitCode", "signal"];

/// The Docker implementation of [`ContainerRuntime`].
///
/// Cheap to clone (clones share one connection pool). The API version is
/// negotiated with the engine on first use, so one build works against old
/// (20.10, API 1.41) and new engines.
#[derive(Clone)]
pub struct DockerRuntime {
    docker: Docker,
    negotiated: Arc<OnceCell<()>>,
    /// Serialises network creation within this process: two tasks starting
    /// at once must not both create the cluster network, or Docker ends up
    /// with two networks of one name and refuses the ambiguous name.
    network_lock: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("api_version", &self.docker.client_version().to_string())
            .finish()
    }
}

impl DockerRuntime {
    /// Connects with Docker's local defaults: `DOCKER_HOST` when set
    /// (`unix://`, `tcp://`, `http://`), else `/var/run/docker.sock`.
    ///
    /// Fails with [`RuntimeError::Unavailable`] when the unix socket does
    /// not exist. No request is made here: an engine that does not answer
    /// shows up as `Unavailable` on the first call (and the API version is
    /// negotiated on the first successful one).
    pub fn connect() -> Result<Self, RuntimeError> {
        Self::from_client(Docker::connect_with_defaults())
    }

    /// Connects to an explicit engine address, in `DOCKER_HOST` syntax
    /// (`unix:///var/run/docker.sock`, `tcp://127.0.0.1:2375`).
    pub fn connect_with_host(host: &str) -> Result<Self, RuntimeError> {
        Self::from_client(Docker::connect_with_host(host))
    }

    fn from_client(docker: Result<Docker, DockerError>) -> Result<Self, RuntimeError> {
        let docker = docker
            .map_err(|e| RuntimeError::Unavailable(format!("cannot connect to Docker: {e}")))?
            .with_timeout(REQUEST_TIMEOUT);
        Ok(Self {
            docker,
            negotiated: Arc::new(OnceCell::new()),
            network_lock: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// The client, after API version negotiation (done once; retried on the
    /// next call if the engine was unreachable).
    async fn client(&self) -> Result<&Docker, RuntimeError> {
        self.negotiated
            .get_or_try_init(|| async {
                self.docker
                    .clone()
                    .negotiate_version()
                    .await
                    .map(|_| ())
                    .map_err(|e| RuntimeError::Unavailable(format!("Docker: {e}")))
            })
            .await?;
        Ok(&self.docker)
    }

    /// Makes sure the awsvpc pause image ([`PAUSE_IMAGE`]) exists locally and
    /// returns its reference.
    ///
    /// When missing, it is created without any registry: an in-memory tar
    /// holding one hand-assembled static executable, `/pause`, is imported
    /// the way `docker import` does, with `CMD ["/pause"]`. The executable
    /// sleeps until SIGTERM or SIGINT and then exits 0 (see [`pause_elf`]).
    /// x86_64 and arm64 engines are supported; on any other architecture
    /// this returns `CannotCreate("awsvpc is not supported on <arch> yet")`.
    pub async fn ensure_pause_image(&self) -> Result<String, RuntimeError> {
        let docker = self.client().await?;
        if docker.inspect_image(PAUSE_IMAGE).await.is_ok() {
            return Ok(PAUSE_IMAGE.to_string());
        }
        let info = self.info().await?;
        let Some(elf) = pause_elf(&info.architecture) else {
            return Err(RuntimeError::CannotCreate(format!(
                "awsvpc is not supported on {} yet",
                info.architecture
            )));
        };
        let tar = tar_with_one_file("pause", 0o755, &elf);
        let options = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(PAUSE_REPO)
            .tag(PAUSE_TAG)
            .message("stevedore awsvpc pause container")
            .changes(vec![r#"CMD ["/pause"]"#.to_string()])
            .build();
        let mut progress = docker.create_image(
            Some(options),
            Some(bollard::body_full(Bytes::from(tar))),
            None,
        );
        while let Some(item) = progress.next().await {
            if let Err(e) = item {
                return Err(RuntimeError::CannotCreate(format!(
                    "cannot import the pause image {PAUSE_IMAGE}: {e}"
                )));
            }
        }
        // Concurrent imports by two agents both succeed; the tag ends on one.
        docker.inspect_image(PAUSE_IMAGE).await.map_err(|e| {
            RuntimeError::CannotCreate(format!(
                "the pause image {PAUSE_IMAGE} is missing after import: {e}"
            ))
        })?;
        Ok(PAUSE_IMAGE.to_string())
    }

    async fn pull(&self, image: &str) -> Result<(), String> {
        let docker = self.client().await.map_err(|e| e.to_string())?;
        let reference = with_default_tag(image);
        let options = CreateImageOptionsBuilder::new()
            .from_image(&reference)
            .build();
        // One attempt, no retries: with no registry this fails in well under
        // a second (name resolution error), and Default falls back to the
        // local image.
        let mut progress = docker.create_image(Some(options), None, None);
        while let Some(item) = progress.next().await {
            if let Err(e) = item {
                return Err(docker_message(&e));
            }
        }
        Ok(())
    }

    async fn local_image(&self, image: &str) -> Result<Option<PulledImage>, RuntimeError> {
        let docker = self.client().await?;
        match docker.inspect_image(&with_default_tag(image)).await {
            Ok(inspect) => {
                let image_id = inspect.id.unwrap_or_default();
                let digests = inspect.repo_digests.unwrap_or_default();
                let repo = repository_of(image);
                let digest = digests
                    .iter()
                    .find(|d| d.split('@').next() == Some(repo))
                    .or_else(|| digests.first())
                    .cloned();
                Ok(Some(PulledImage { image_id, digest }))
            }
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(RuntimeError::CannotPull(format!(
                "cannot inspect image {image}: {}",
                docker_message(&e)
            ))),
        }
    }

    async fn do_ensure_image(
        &self,
        image: &str,
        behavior: PullBehavior,
    ) -> Result<PulledImage, RuntimeError> {
        let cannot_pull =
            |err: &str| RuntimeError::CannotPull(format!("pull image {image}: {err}"));
        match behavior {
            PullBehavior::Once | PullBehavior::PreferCached => {
                if let Some(local) = self.local_image(image).await? {
                    return Ok(local);
                }
                self.pull(image).await.map_err(|e| cannot_pull(&e))?;
            }
            PullBehavior::Always => {
                self.pull(image).await.map_err(|e| cannot_pull(&e))?;
            }
            PullBehavior::Default => {
                if let Err(e) = self.pull(image).await {
                    return match self.local_image(image).await {
                        Ok(Some(local)) => {
                            tracing::info!(image, error = %e, "pull failed; using the cached image");
                            Ok(local)
                        }
                        // The pull error says more than the local lookup's.
                        Ok(None) | Err(_) => Err(cannot_pull(&e)),
                    };
                }
            }
        }
        self.local_image(image)
            .await?
            .ok_or_else(|| cannot_pull("the image is not present after the pull"))
    }

    async fn do_create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let docker = self.client().await?;
        let body = create_body(spec);
        let options = CreateContainerOptionsBuilder::new()
            .name(&spec.name)
            .build();
        match docker.create_container(Some(options), body).await {
            Ok(created) => Ok(created.id),
            Err(e) => Err(match unavailable(&e) {
                Some(u) => u,
                None => {
                    let message = format!(
                        "container {} (image {}): {}",
                        spec.name,
                        spec.image,
                        docker_message(&e)
                    );
                    // Create's only 409 is "the container name is already in use".
                    if status_of(&e) == Some(409) {
                        RuntimeError::NameInUse(message)
                    } else {
                        RuntimeError::CannotCreate(message)
                    }
                }
            }),
        }
    }

    async fn do_inspect(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        let docker = self.client().await?;
        match docker.inspect_container(id, None).await {
            Ok(inspect) => Ok(container_state(inspect)),
            Err(e) => Err(not_found_or(&e, id, RuntimeError::CannotInspect)),
        }
    }

    async fn do_ensure_network(&self, name: &str) -> Result<String, RuntimeError> {
        let _serial = self.network_lock.lock().await;
        let docker = self.client().await?;
        if let Ok(existing) = docker.inspect_network(name, None).await {
            // Inspect also matches an id prefix; only an exact name counts.
            if existing.name.as_deref() == Some(name) {
                return Ok(name.to_string());
            }
        }
        // bollard's model lacks CheckDuplicate, which engines before API 1.44
        // need to refuse a second network of the same name (later engines
        // always refuse and ignore the field). Send our own body on a
        // throwaway clone of the client.
        let mut managed = serde_json::Map::new();
        managed.insert(labels::MANAGED.into(), "true".into());
        let body = serde_json::json!({
            "Name": name,
            "Driver": "bridge",
            "CheckDuplicate": true,
            "Labels": managed,
        })
        .to_string();
        let creator = docker.clone().with_request_modifier(move |mut req| {
            if req.uri().path().ends_with("/networks/create") {
                *req.body_mut() = bollard::body_full(Bytes::from(body.clone()));
            }
            req
        });
        let request = NetworkCreateRequest {
            name: name.to_string(),
            ..Default::default()
        };
        match creator.create_network(request).await {
            Ok(_) => {}
            // "network with name ... already exists": another agent won.
            Err(e) if status_of(&e) == Some(409) => {}
            Err(e) => {
                return Err(unavailable(&e).unwrap_or_else(|| {
                    RuntimeError::CannotCreate(format!(
                        "cannot create network {name}: {}",
                        docker_message(&e)
                    ))
                }))
            }
        }
        self.remove_duplicate_networks(name).await;
        Ok(name.to_string())
    }

    /// If racing creators still produced several networks named `name`,
    /// keep the oldest (ties: lowest id), which every agent agrees on, and
    /// remove the others. Best effort: errors are logged.
    async fn remove_duplicate_networks(&self, name: &str) {
        let Ok(docker) = self.client().await else {
            return;
        };
        let filters = HashMap::from([("name", vec![name])]);
        let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
        let mut same: Vec<(SystemTime, String)> = match docker.list_networks(Some(options)).await {
            Ok(list) => list
                .into_iter()
                .filter(|n| n.name.as_deref() == Some(name))
                .filter_map(|n| {
                    let created = n.created.as_deref().and_then(parse_docker_time);
                    Some((created.unwrap_or(SystemTime::UNIX_EPOCH), n.id?))
                })
                .collect(),
            Err(e) => {
                tracing::warn!(network = name, error = %e, "cannot list networks");
                return;
            }
        };
        if same.len() < 2 {
            return;
        }
        same.sort();
        for (_, id) in same.into_iter().skip(1) {
            if let Err(e) = docker.remove_network(&id).await {
                if status_of(&e) != Some(404) {
                    tracing::warn!(network = name, id, error = %e, "cannot remove duplicate network");
                }
            }
        }
    }

    async fn do_ensure_volume(&self, v: &VolumeSpec, create: bool) -> Result<(), RuntimeError> {
        let docker = self.client().await?;
        match docker.inspect_volume(&v.name).await {
            Ok(_) => return Ok(()),
            Err(e) if status_of(&e) == Some(404) => {}
            Err(e) => {
                return Err(unavailable(&e).unwrap_or_else(|| {
                    RuntimeError::CannotCreate(format!(
                        "cannot inspect volume {}: {}",
                        v.name,
                        docker_message(&e)
                    ))
                }))
            }
        }
        if !create {
            return Err(RuntimeError::CannotCreate(format!(
                "volume {} does not exist and autoprovision is false",
                v.name
            )));
        }
        let mut volume_labels: HashMap<String, String> = v
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        volume_labels.insert(labels::MANAGED.into(), "true".into());
        let request = VolumeCreateRequest {
            name: Some(v.name.clone()),
            driver: v.driver.clone(),
            driver_opts: (!v.driver_opts.is_empty()).then(|| {
                v.driver_opts
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }),
            labels: Some(volume_labels),
            ..Default::default()
        };
        // Creating an existing local volume returns it: a racing creator
        // is harmless.
        docker
            .create_volume(request)
            .await
            .map(|_| ())
            .map_err(|e| {
                unavailable(&e).unwrap_or_else(|| {
                    RuntimeError::CannotCreate(format!(
                        "cannot create volume {}: {}",
                        v.name,
                        docker_message(&e)
                    ))
                })
            })
    }

    async fn do_remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        let docker = self.client().await?;
        let options = RemoveVolumeOptionsBuilder::new().build();
        match docker.remove_volume(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(unavailable(&e).unwrap_or_else(|| {
                RuntimeError::CannotRemove(format!(
                    "cannot remove volume {name}: {}",
                    docker_message(&e)
                ))
            })),
        }
    }

    async fn do_list(&self, wanted: &[(&str, &str)]) -> Result<Vec<ContainerState>, RuntimeError> {
        let docker = self.client().await?;
        let filters = HashMap::from([("label", label_filters(wanted.iter().copied()))]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = docker.list_containers(Some(options)).await.map_err(|e| {
            unavailable(&e).unwrap_or_else(|| {
                RuntimeError::CannotInspect(format!(
                    "cannot list containers: {}",
                    docker_message(&e)
                ))
            })
        })?;
        let mut states = Vec::with_capacity(summaries.len());
        for id in summaries.into_iter().filter_map(|s| s.id) {
            match self.do_inspect(&id).await {
                Ok(state) => states.push(state),
                // Removed between list and inspect.
                Err(RuntimeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(states)
    }
}

impl ContainerRuntime for DockerRuntime {
    fn info(&self) -> BoxFuture<'_, Result<HostInfo, RuntimeError>> {
        Box::pin(async move {
            let docker = self.client().await?;
            let info = docker
                .info()
                .await
                .map_err(|e| RuntimeError::Unavailable(format!("Docker info: {e}")))?;
            Ok(HostInfo {
                cpus: info.ncpu.and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
                memory_mib: info.mem_total.unwrap_or(0).max(0) / (1024 * 1024),
                os_type: info.os_type.unwrap_or_default(),
                architecture: ecs_architecture(info.architecture.as_deref().unwrap_or_default()),
                docker_version: info.server_version.unwrap_or_default(),
                kernel_version: info.kernel_version.unwrap_or_default(),
                hostname: info.name.unwrap_or_default(),
                log_drivers: info.plugins.and_then(|p| p.log).unwrap_or_default(),
            })
        })
    }

    fn ensure_image<'a>(
        &'a self,
        image: &'a str,
        behavior: PullBehavior,
    ) -> BoxFuture<'a, Result<PulledImage, RuntimeError>> {
        Box::pin(self.do_ensure_image(image, behavior))
    }

    fn create<'a>(
        &'a self,
        spec: &'a ContainerSpec,
    ) -> BoxFuture<'a, Result<String, RuntimeError>> {
        Box::pin(self.do_create(spec))
    }

    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let docker = self.client().await?;
            // 304 (already started) is a success for bollard.
            docker.start_container(id, None).await.map_err(|e| {
                unavailable(&e).unwrap_or_else(|| {
                    RuntimeError::CannotStart(format!("container {id}: {}", docker_message(&e)))
                })
            })
        })
    }

    fn stop<'a>(
        &'a self,
        id: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let docker = self.client().await?;
            // Docker takes whole seconds; round up so the container gets at
            // least `timeout` before SIGKILL.
            let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
            let t = i32::try_from(secs).unwrap_or(i32::MAX);
            let options = StopContainerOptionsBuilder::new().t(t).build();
            // The request lasts up to the timeout, plus the kill.
            let client = docker
                .clone()
                .with_timeout(REQUEST_TIMEOUT.saturating_add(Duration::from_secs(secs)));
            match client.stop_container(id, Some(options)).await {
                // 304 (already stopped) is a success for bollard.
                Ok(()) => Ok(()),
                Err(e) => Err(not_found_or(&e, id, RuntimeError::CannotStop)),
            }
        })
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let docker = self.client().await?;
            let options = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            match docker.remove_container(id, Some(options)).await {
                Ok(()) => Ok(()),
                // "removal of container ... is already in progress"
                Err(e)
                    if status_of(&e) == Some(409) && docker_message(&e).contains("in progress") =>
                {
                    Ok(())
                }
                Err(e) => Err(not_found_or(&e, id, RuntimeError::CannotRemove)),
            }
        })
    }

    fn inspect<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<ContainerState, RuntimeError>> {
        Box::pin(self.do_inspect(id))
    }

    fn list<'a>(
        &'a self,
        labels: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<Vec<ContainerState>, RuntimeError>> {
        Box::pin(self.do_list(labels))
    }

    fn events(
        &self,
        labels: Vec<(String, String)>,
    ) -> BoxStream<'static, Result<ContainerEvent, RuntimeError>> {
        // `since` = now: Docker replays from its in-memory event buffer, so
        // events between this call and the request reaching the engine are
        // not lost even though the request is only sent on first poll.
        let since = match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => format!("{}.{:09}", d.as_secs(), d.subsec_nanos()),
            Err(_) => "0".to_string(),
        };
        let filters = HashMap::from([
            ("type", vec!["container".to_string()]),
            (
                "label",
                label_filters(labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            ),
        ]);
        let options = EventsOptionsBuilder::new()
            .since(&since)
            .filters(&filters)
            .build();
        let this = self.clone();
        stream::once(async move {
            match this.client().await {
                Ok(docker) => docker
                    .events(Some(options))
                    .filter_map(|item| async move {
                        match item {
                            Ok(message) => container_event(message).map(Ok),
                            Err(e) => Some(Err(RuntimeError::Unavailable(format!(
                                "Docker event stream: {e}"
                            )))),
                        }
                    })
                    .boxed(),
                Err(e) => stream::once(async move { Err(e) }).boxed(),
            }
        })
        .flatten()
        // An error ends the stream (the caller resyncs and subscribes again).
        .scan(false, |failed, item| {
            let emit = (!*failed).then_some(item);
            if matches!(emit, Some(Err(_))) {
                *failed = true;
            }
            async move { emit }
        })
        .boxed()
    }

    fn ensure_network<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<String, RuntimeError>> {
        Box::pin(self.do_ensure_network(name))
    }

    fn ensure_volume<'a>(
        &'a self,
        volume: &'a VolumeSpec,
        create: bool,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(self.do_ensure_volume(volume, create))
    }

    fn remove_volume<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(self.do_remove_volume(name))
    }

    fn logs(
        &self,
        id: &str,
        since: Option<SystemTime>,
    ) -> BoxStream<'static, Result<LogLine, RuntimeError>> {
        // Docker's `since` is whole seconds: ask from the second of `since`
        // and drop what is not strictly after it.
        let since_secs = since
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX));
        let options = LogsOptionsBuilder::new()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .since(since_secs)
            .build();
        let this = self.clone();
        let id = id.to_string();
        let frames = stream::once(async move {
            match this.client().await {
                Ok(docker) => {
                    let id2 = id.clone();
                    // No request timeout: the stream lasts as long as the
                    // container runs.
                    let docker = docker
                        .clone()
                        .with_timeout(Duration::from_secs(u64::from(u32::MAX)));
                    docker
                        .logs(&id, Some(options))
                        .map(move |item| {
                            item.map_err(|e| {
                                not_found_or(&e, &id2, |m| {
                                    RuntimeError::Unavailable(format!("Docker logs: {m}"))
                                })
                            })
                        })
                        .boxed()
                }
                Err(e) => stream::once(async move { Err(e) }).boxed(),
            }
        })
        .flatten()
        .boxed();
        // Lines are joined across frames (json-file stores a long line as
        // 16 KiB partial entries), then split at the CloudWatch limit. An
        // error ends the stream, after what was joined so far.
        type Lines = BoxStream<'static, Result<LogLine, RuntimeError>>;
        stream::unfold(
            (frames, LineJoiner::default(), false),
            move |(mut frames, mut joiner, done)| async move {
                if done {
                    return None;
                }
                loop {
                    match frames.next().await {
                        Some(Ok(output)) => {
                            let lines = joiner.push(output, since);
                            if !lines.is_empty() {
                                let out: Lines = stream::iter(lines.into_iter().map(Ok)).boxed();
                                return Some((out, (frames, joiner, false)));
                            }
                        }
                        Some(Err(e)) => {
                            let mut items: Vec<Result<LogLine, RuntimeError>> =
                                joiner.flush(since).into_iter().map(Ok).collect();
                            items.push(Err(e));
                            let out: Lines = stream::iter(items).boxed();
                            return Some((out, (frames, joiner, true)));
                        }
                        None => {
                            let lines = joiner.flush(since);
                            let out: Lines = stream::iter(lines.into_iter().map(Ok)).boxed();
                            return Some((out, (frames, joiner, true)));
                        }
                    }
                }
            },
        )
        .flatten()
        .boxed()
    }

    fn attach(&self, id: &str) -> BoxStream<'static, Result<OutputCount, RuntimeError>> {
        let this = self.clone();
        let id = id.to_string();
        let options = AttachContainerOptionsBuilder::new()
            .stream(true)
            .stdout(true)
            .stderr(true)
            .build();
        type Counts = BoxStream<'static, Result<OutputCount, RuntimeError>>;
        stream::once(async move {
            let docker = match this.client().await {
                Ok(d) => d,
                Err(e) => return stream::once(async move { Err(e) }).boxed(),
            };
            // No request timeout: the stream lasts as long as the container
            // runs.
            let docker = docker
                .clone()
                .with_timeout(Duration::from_secs(u64::from(u32::MAX)));
            match docker.attach_container(&id, Some(options)).await {
                Ok(attached) => {
                    // Held so the connection stays whole while we read.
                    let input = attached.input;
                    let id2 = id.clone();
                    let counts: Counts = attached
                        .output
                        .map(move |item| {
                            let _ = &input;
                            item.map(|o| OutputCount::of(o.as_ref())).map_err(|e| {
                                not_found_or(&e, &id2, |m| {
                                    RuntimeError::Unavailable(format!("Docker attach: {m}"))
                                })
                            })
                        })
                        .boxed();
                    counts
                }
                Err(e) => {
                    let e = not_found_or(&e, &id, |m| {
                        RuntimeError::Unavailable(format!("Docker attach: {m}"))
                    });
                    stream::once(async move { Err(e) }).boxed()
                }
            }
        })
        .flatten()
        // An error ends the stream.
        .scan(false, |failed, item| {
            let emit = (!*failed).then_some(item);
            if matches!(emit, Some(Err(_))) {
                *failed = true;
            }
            async move { emit }
        })
        .boxed()
    }
}

/// Assembles lines from `docker logs --timestamps` frames: each frame's
/// RFC 3339 prefix is parsed (a frame without one is stamped now), a text
/// without a trailing newline is a partial line continued by the next frame
/// of the same stream (kept with its first timestamp), long lines are split
/// at [`MAX_LOG_LINE_BYTES`], and lines not after `since` are dropped.
///
/// Docker 20.10's json-file follower reads part of a file again after a
/// rotation. json-file entries of one stream have increasing timestamps
/// (the partial entries of one long line share their line's), so an entry
/// at or before the last one taken from its stream is such a repeat and is
/// skipped, uncounted.
#[derive(Default)]
struct LineJoiner {
    /// Partial line per stream (stdout, stderr): first timestamp, text,
    /// raw output counted so far.
    pending: [Option<(SystemTime, String, OutputCount)>; 2],
    /// Timestamp of the last entry taken, per stream.
    last: [Option<SystemTime>; 2],
}

impl LineJoiner {
    fn push(
        &mut self,
        output: bollard::container::LogOutput,
        since: Option<SystemTime>,
    ) -> Vec<LogLine> {
        use bollard::container::LogOutput;
        let (stream, bytes) = match output {
            LogOutput::StdErr { message } => (LogStream::Stderr, message),
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (LogStream::Stdout, message)
            }
            LogOutput::StdIn { .. } => return Vec::new(),
        };
        let slot = usize::from(stream == LogStream::Stderr);
        let text = String::from_utf8_lossy(&bytes);
        let frame_stamp = text
            .split_once(' ')
            .and_then(|(ts, _)| parse_docker_time(ts));
        if let (Some(t), Some(last)) = (frame_stamp, self.last[slot]) {
            let continues_partial = self.pending[slot].as_ref().is_some_and(|p| p.0 == t);
            if t < last || (t == last && !continues_partial) {
                return Vec::new();
            }
        }
        if frame_stamp.is_some() {
            self.last[slot] = frame_stamp;
        }
        let mut out = Vec::new();
        // A frame is normally one (partial) line; a TTY's may hold several.
        let mut segments: Vec<&str> = text.split('\n').collect();
        // After the last newline: a partial line ("" when the text ended
        // with a newline).
        let tail = segments.pop().unwrap_or("");
        let mut stamp = SystemTime::now();
        let mut first = true;
        for raw in segments {
            let (t, msg) = split_stamp(raw, first);
            stamp = t.unwrap_or(stamp);
            first = false;
            let mut consumed = OutputCount {
                bytes: msg.len() as u64 + 1,
                lines: 1,
            };
            let msg = msg.strip_suffix('\r').map(str::to_string).unwrap_or(msg);
            let (ts, line) = match self.pending[slot].take() {
                Some((t, mut p, before)) => {
                    p.push_str(&msg);
                    consumed += before;
                    (t, p)
                }
                None => (stamp, msg),
            };
            emit(&mut out, stream, ts, &line, consumed, since);
        }
        if !tail.is_empty() {
            let (t, msg) = split_stamp(tail, first);
            stamp = t.unwrap_or(stamp);
            let entry = self.pending[slot]
                .get_or_insert_with(|| (stamp, String::new(), OutputCount::default()));
            entry.1.push_str(&msg);
            entry.2.bytes += msg.len() as u64;
            if entry.1.len() > MAX_LOG_LINE_BYTES {
                // Emit the full pieces, keep the rest pending. The bytes
                // counted so far go out now: a reader holding the container
                // by this count must see a line without an end progress.
                let (ts, long, consumed) = self.pending[slot].take().unwrap_or((
                    stamp,
                    String::new(),
                    OutputCount::default(),
                ));
                let mut pieces = split_message(&long, MAX_LOG_LINE_BYTES);
                let rest = pieces.pop().unwrap_or_default();
                let n = pieces.len();
                for (i, p) in pieces.into_iter().enumerate() {
                    let count = if i + 1 == n {
                        consumed
                    } else {
                        OutputCount::default()
                    };
                    emit(&mut out, stream, ts, &p, count, since);
                }
                self.pending[slot] = Some((ts, rest, OutputCount::default()));
            }
        }
        out
    }

    fn flush(&mut self, since: Option<SystemTime>) -> Vec<LogLine> {
        let mut out = Vec::new();
        for (slot, stream) in [(0, LogStream::Stdout), (1, LogStream::Stderr)] {
            if let Some((ts, line, consumed)) = self.pending[slot].take() {
                emit(&mut out, stream, ts, &line, consumed, since);
            }
        }
        out
    }
}

/// `TIMESTAMP message` → the timestamp and the message; a bare timestamp
/// (only as a frame's first segment) is an empty message.
fn split_stamp(raw: &str, first: bool) -> (Option<SystemTime>, String) {
    match raw.split_once(' ') {
        Some((ts, rest)) => match parse_docker_time(ts) {
            Some(t) => (Some(t), rest.to_string()),
            None => (None, raw.to_string()),
        },
        None if first => match parse_docker_time(raw) {
            Some(t) => (Some(t), String::new()),
            None => (None, raw.to_string()),
        },
        None => (None, raw.to_string()),
    }
}

fn emit(
    out: &mut Vec<LogLine>,
    stream: LogStream,
    timestamp: SystemTime,
    message: &str,
    consumed: OutputCount,
    since: Option<SystemTime>,
) {
    if since.is_some_and(|s| timestamp <= s) {
        return;
    }
    let pieces = split_message(message, MAX_LOG_LINE_BYTES);
    let n = pieces.len();
    for (i, piece) in pieces.into_iter().enumerate() {
        out.push(LogLine {
            stream,
            timestamp,
            message: piece,
            consumed: if i + 1 == n {
                consumed
            } else {
                OutputCount::default()
            },
        });
    }
}

// ---------------------------------------------------------------------------
// Errors

fn status_of(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Docker's own message when it sent one, else the client error.
fn docker_message(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => message.clone(),
        DockerError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// Transport failures (no engine to talk to) are `Unavailable`, whatever the
/// operation.
fn unavailable(e: &DockerError) -> Option<RuntimeError> {
    match e {
        DockerError::SocketNotFoundError(_) | DockerError::HyperLegacyError { .. } => {
            Some(RuntimeError::Unavailable(e.to_string()))
        }
        _ => None,
    }
}

fn not_found_or(e: &DockerError, id: &str, other: fn(String) -> RuntimeError) -> RuntimeError {
    if let Some(u) = unavailable(e) {
        return u;
    }
    if status_of(e) == Some(404) {
        return RuntimeError::NotFound(id.to_string());
    }
    other(format!("container {id}: {}", docker_message(e)))
}

// ---------------------------------------------------------------------------
// Mapping to Docker

fn label_filters<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    labels.map(|(k, v)| format!("{k}={v}")).collect()
}

/// `repo` → `repo:latest`, as `docker pull` does (the API with no tag would
/// pull every tag). References with a tag or digest are unchanged.
fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// The repository part of a reference (no tag, no digest).
fn repository_of(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

const MIB: i64 = 1024 * 1024;
/// ECS never gives Docker fewer than 2 CPU shares (Docker's own minimum;
/// 0 would mean "default", 1024).
const MIN_CPU_SHARES: i64 = 2;

fn non_empty(v: Vec<String>) -> Option<Vec<String>> {
    (!v.is_empty()).then_some(v)
}

fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let o = &spec.options;
    let network_mode = match &spec.network {
        NetworkSpec::Bridge => "bridge".to_string(),
        NetworkSpec::Host => "host".to_string(),
        NetworkSpec::None => "none".to_string(),
        NetworkSpec::Container(id) => format!("container:{id}"),
        NetworkSpec::Network(name) => name.clone(),
    };
    // Ports are published only where the container has its own network
    // stack on a bridge; Docker rejects them with `container:` and ignores
    // them with host/none.
    let publish = matches!(spec.network, NetworkSpec::Bridge | NetworkSpec::Network(_));
    let (exposed_ports, port_bindings) = if publish && !spec.ports.is_empty() {
        let mut exposed = Vec::new();
        let mut bindings: HashMap<String, Option<Vec<DockerPortBinding>>> = HashMap::new();
        for p in &spec.ports {
            let key = format!("{}/{}", p.container_port, protocol_name(p.protocol));
            let host_port = match p.host_port {
                None | Some(0) => String::new(),
                Some(port) => port.to_string(),
            };
            if !exposed.contains(&key) {
                exposed.push(key.clone());
            }
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(DockerPortBinding {
                    host_ip: Some(String::new()),
                    host_port: Some(host_port),
                });
        }
        (Some(exposed), Some(bindings))
    } else {
        (None, None)
    };
    let host_config = HostConfig {
        cpu_shares: spec.cpu_shares.map(|c| c.max(MIN_CPU_SHARES)),
        memory: spec.memory_mib.map(|m| m.saturating_mul(MIB)),
        memory_reservation: spec.memory_reservation_mib.map(|m| m.saturating_mul(MIB)),
        nano_cpus: spec.nano_cpus,
        network_mode: Some(network_mode),
        port_bindings,
        ulimits: (!spec.ulimits.is_empty()).then(|| {
            spec.ulimits
                .iter()
                .map(|u| ResourcesUlimits {
                    name: Some(u.name.clone()),
                    soft: Some(u.soft),
                    hard: Some(u.hard),
                })
                .collect()
        }),
        readonly_rootfs: Some(spec.readonly_rootfs),
        privileged: Some(spec.privileged),
        binds: non_empty(
            o.mounts
                .iter()
                .map(|m| {
                    let ro = if m.read_only { ":ro" } else { "" };
                    format!("{}:{}{ro}", m.source, m.target)
                })
                .collect(),
        ),
        volumes_from: non_empty(
            o.volumes_from
                .iter()
                .map(|(c, ro)| format!("{c}:{}", if *ro { "ro" } else { "rw" }))
                .collect(),
        ),
        cap_add: non_empty(o.cap_add.clone()),
        cap_drop: non_empty(o.cap_drop.clone()),
        init: o.init.then_some(true),
        tmpfs: (!o.tmpfs.is_empty()).then(|| {
            o.tmpfs
                .iter()
                .map(|t| {
                    let mut opts = t.options.clone();
                    if let Some(size) = t.size_mib {
                        opts.push(format!("size={size}m"));
                    }
                    (t.container_path.clone(), opts.join(","))
                })
                .collect()
        }),
        shm_size: o.shm_size_mib.map(|m| m.saturating_mul(MIB)),
        devices: (!o.devices.is_empty()).then(|| {
            o.devices
                .iter()
                .map(|d| DeviceMapping {
                    path_on_host: Some(d.host_path.clone()),
                    path_in_container: Some(
                        d.container_path
                            .clone()
                            .unwrap_or_else(|| d.host_path.clone()),
                    ),
                    cgroup_permissions: Some(d.permissions.clone()),
                })
                .collect()
        }),
        sysctls: (!o.sysctls.is_empty()).then(|| {
            o.sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        extra_hosts: non_empty(o.extra_hosts.clone()),
        dns: non_empty(o.dns_servers.clone()),
        dns_search: non_empty(o.dns_search.clone()),
        links: non_empty(o.links.clone()),
        security_opt: non_empty(o.security_opt.clone()),
        log_config: o.log_config.as_ref().map(|l| HostConfigLogConfig {
            typ: Some(l.driver.clone()),
            config: Some(
                l.options
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
        }),
        ..Default::default()
    };
    let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    ContainerCreateBody {
        healthcheck: o.health_check.as_ref().map(|h| HealthConfig {
            test: Some(h.test.clone()),
            interval: Some(nanos(h.interval)),
            timeout: Some(nanos(h.timeout)),
            retries: Some(i64::from(h.retries)),
            start_period: Some(nanos(h.start_period)),
            start_interval: None,
        }),
        hostname: o.hostname.clone(),
        open_stdin: o.interactive.then_some(true),
        tty: o.tty.then_some(true),
        network_disabled: o.network_disabled.then_some(true),
        image: Some(spec.image.clone()),
        entrypoint: spec.entry_point.clone(),
        cmd: spec.command.clone(),
        env: (!spec.env.is_empty())
            .then(|| spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: spec.working_dir.clone(),
        user: spec.user.clone(),
        exposed_ports,
        labels: (!spec.labels.is_empty()).then(|| {
            spec.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        stop_timeout: spec.stop_timeout.map(|t| {
            let secs = t.as_secs() + u64::from(t.subsec_nanos() > 0);
            i64::try_from(secs).unwrap_or(i64::MAX)
        }),
        host_config: Some(host_config),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------
// Mapping from Docker

/// Docker/Go architecture names → ECS spelling.
fn ecs_architecture(arch: &str) -> String {
    match arch {
        "x86_64" | "amd64" => "x86_64".to_string(),
        "aarch64" | "arm64" => "arm64".to_string(),
        other => other.to_string(),
    }
}

/// RFC 3339 (Docker's nanosecond form included) → `SystemTime`; Docker's
/// zero time and anything before 1970 mean "never" → `None`.
pub(crate) fn parse_docker_time(s: &str) -> Option<SystemTime> {
    if s.is_empty() || s == DOCKER_ZERO_TIME {
        return None;
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    if t.unix_timestamp() < 0 {
        return None;
    }
    Some(SystemTime::from(t))
}

fn parse_port_key(key: &str) -> Option<(u16, Protocol)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let protocol = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    Some((port.parse().ok()?, protocol))
}

fn container_state(c: ContainerInspectResponse) -> ContainerState {
    let state = c.state.unwrap_or_default();
    let health = match state.health.as_ref().and_then(|h| h.status) {
        Some(HealthStatusEnum::STARTING) => Some(Health::Starting),
        Some(HealthStatusEnum::HEALTHY) => Some(Health::Healthy),
        Some(HealthStatusEnum::UNHEALTHY) => Some(Health::Unhealthy),
        Some(HealthStatusEnum::NONE | HealthStatusEnum::EMPTY) | None => None,
    };
    let status = match state.status {
        Some(ContainerStateStatusEnum::CREATED) => Status::Created,
        Some(
            ContainerStateStatusEnum::RUNNING
            | ContainerStateStatusEnum::PAUSED
            | ContainerStateStatusEnum::RESTARTING,
        ) => Status::Running,
        Some(
            ContainerStateStatusEnum::EXITED
            | ContainerStateStatusEnum::DEAD
            | ContainerStateStatusEnum::REMOVING
            | ContainerStateStatusEnum::STOPPING,
        ) => Status::Exited,
        Some(ContainerStateStatusEnum::EMPTY) | None => {
            if state.running == Some(true) {
                Status::Running
            } else {
                Status::Created
            }
        }
    };
    let settings = c.network_settings.unwrap_or_default();
    let mut ports: Vec<PortBinding> = settings
        .ports
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(key, bindings)| Some((parse_port_key(&key)?, bindings?)))
        .flat_map(|((container_port, protocol), bindings)| {
            bindings.into_iter().filter_map(move |b| {
                Some(PortBinding {
                    container_port,
                    host_port: b.host_port?.parse().ok()?,
                    host_ip: b.host_ip.unwrap_or_default(),
                    protocol,
                })
            })
        })
        .collect();
    ports.sort_by(|a, b| {
        (
            a.container_port,
            protocol_name(a.protocol),
            a.host_port,
            &a.host_ip,
        )
            .cmp(&(
                b.container_port,
                protocol_name(b.protocol),
                b.host_port,
                &b.host_ip,
            ))
    });
    let ips = settings
        .networks
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, endpoint)| {
            let ip = endpoint.ip_address.filter(|ip| !ip.is_empty())?;
            Some((name, ip))
        })
        .collect();
    let labels = c
        .config
        .and_then(|config| config.labels)
        .unwrap_or_default()
        .into_iter()
        .collect();
    ContainerState {
        id: c.id.unwrap_or_default(),
        name: c
            .name
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        labels,
        status,
        exit_code: if status == Status::Exited {
            state.exit_code
        } else {
            None
        },
        oom_killed: state.oom_killed.unwrap_or(false),
        error: state.error.filter(|e| !e.is_empty()),
        started_at: state.started_at.as_deref().and_then(parse_docker_time),
        finished_at: state.finished_at.as_deref().and_then(parse_docker_time),
        ports,
        ips,
        image_id: c.image.unwrap_or_default(),
        health,
    }
}

fn event_kind(action: &str) -> EventKind {
    match action {
        "create" => EventKind::Create,
        "start" => EventKind::Start,
        "die" => EventKind::Die,
        "oom" => EventKind::Oom,
        "destroy" => EventKind::Destroy,
        other => match other.strip_prefix("health_status") {
            Some(rest) => EventKind::HealthStatus(rest.trim_start_matches(':').trim().to_string()),
            None => EventKind::Other(other.to_string()),
        },
    }
}

fn container_event(message: EventMessage) -> Option<ContainerEvent> {
    let actor = message.actor?;
    let id = actor.id.filter(|id| !id.is_empty())?;
    let labels: BTreeMap<String, String> = actor
        .attributes
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !EVENT_NON_LABEL_ATTRIBUTES.contains(&k.as_str()))
        .collect();
    Some(ContainerEvent {
        id,
        kind: event_kind(message.action.as_deref().unwrap_or_default()),
        labels,
    })
}

// ---------------------------------------------------------------------------
// The pause image: a hand-assembled static ELF in an in-memory tar

/// Load address of the executables below (the traditional static one).
const ELF_BASE: u64 = 0x40_0000;
/// ELF header (64 bytes) plus two program headers (56 bytes each); the code
/// follows at this offset in the file and in memory.
const ELF_HEADERS: u64 = 64 + 2 * 56;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// The `/pause` executable for an engine architecture (Docker or ECS
/// spelling), or `None` when we have none for it.
///
/// Behaviour, both architectures: install one handler for SIGTERM and SIGINT
/// (`rt_sigaction`), then block forever (x86_64: `pause`; arm64, which has
/// no `pause` syscall: `ppoll(NULL, 0, NULL, NULL)`), looping if woken; the
/// handler calls `exit_group(0)`. As PID 1 of its container it would ignore
/// SIGTERM without a handler, and every `docker stop` would wait for the
/// full timeout and SIGKILL; with it, it stops at once with exit code 0.
pub fn pause_elf(architecture: &str) -> Option<Vec<u8>> {
    match architecture {
        "x86_64" | "amd64" => Some(pause_elf_x86_64()),
        "arm64" | "aarch64" => Some(pause_elf_aarch64()),
        _ => None,
    }
}

/// `struct sigaction` as the kernel takes it (x86_64 and arm64 alike):
/// handler, flags, restorer, mask (8 bytes each).
fn kernel_sigaction(handler: u64, flags: u64, restorer: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[0..8].copy_from_slice(&handler.to_le_bytes());
    out[8..16].copy_from_slice(&flags.to_le_bytes());
    out[16..24].copy_from_slice(&restorer.to_le_bytes());
    // sa_mask: empty
    out
}

fn pause_elf_x86_64() -> Vec<u8> {
    const SYS_RT_SIGACTION: u32 = 13;
    const SYS_PAUSE: u32 = 34;
    const SYS_EXIT_GROUP: u32 = 231;
    // x86_64 signal delivery needs a restorer; the handler never returns,
    // so it doubles as one.
    const SA_RESTORER: u64 = 0x0400_0000;
    // Offsets in the code, fixed by the instruction lengths below
    // (2 × 25 bytes of rt_sigaction, 9 bytes of loop, 9 of handler).
    const HANDLER: u64 = 59;
    const ACT: u64 = 72; // 8-aligned, after the handler
    let code_addr = ELF_BASE + ELF_HEADERS;
    let act_addr = u32::try_from(code_addr + ACT).unwrap_or(0);

    let mut c: Vec<u8> = Vec::with_capacity(ACT as usize + 32);
    for signal in [15u32 /* SIGTERM */, 2 /* SIGINT */] {
        c.push(0xb8); // mov eax, imm32
        c.extend(SYS_RT_SIGACTION.to_le_bytes());
        c.push(0xbf); // mov edi, imm32          signal
        c.extend(signal.to_le_bytes());
        c.push(0xbe); // mov esi, imm32          &act
        c.extend(act_addr.to_le_bytes());
        c.extend([0x31, 0xd2]); // xor edx, edx  old action: NULL
        c.extend([0x41, 0xba]); // mov r10d, imm32  sizeof(sigset_t)
        c.extend(8u32.to_le_bytes());
        c.extend([0x0f, 0x05]); // syscall
    }
    // loop:
    c.push(0xb8); // mov eax, imm32
    c.extend(SYS_PAUSE.to_le_bytes());
    c.extend([0x0f, 0x05]); // syscall
    c.extend([0xeb, 0xf7]); // jmp loop (rel8 -9)
    debug_assert_eq!(c.len() as u64, HANDLER);
    // handler:
    c.push(0xb8); // mov eax, imm32
    c.extend(SYS_EXIT_GROUP.to_le_bytes());
    c.extend([0x31, 0xff]); // xor edi, edi  status 0
    c.extend([0x0f, 0x05]); // syscall
    c.resize(ACT as usize, 0xcc); // int3 padding
    let handler = code_addr + HANDLER;
    c.extend(kernel_sigaction(handler, SA_RESTORER, handler));
    elf64(EM_X86_64, 0x1000, &c)
}

fn pause_elf_aarch64() -> Vec<u8> {
    const SYS_PPOLL: u32 = 73;
    const SYS_EXIT_GROUP: u32 = 94;
    const SYS_RT_SIGACTION: u32 = 134;
    /// `movz x<rd>, #imm16`
    fn movz(rd: u32, imm16: u32) -> u32 {
        0xd280_0000 | ((imm16 & 0xffff) << 5) | (rd & 31)
    }
    /// `adr x<rd>, pc+offset` (offset in bytes, ±1 MiB)
    fn adr(rd: u32, offset: i32) -> u32 {
        let imm = offset as u32;
        0x1000_0000 | ((imm & 3) << 29) | (((imm >> 2) & 0x7ffff) << 5) | (rd & 31)
    }
    /// `b pc+offset` (offset in bytes, multiple of 4)
    fn b(offset: i32) -> u32 {
        0x1400_0000 | (((offset >> 2) as u32) & 0x03ff_ffff)
    }
    const SVC0: u32 = 0xd400_0001;
    // Instruction indexes (4 bytes each): 2 × 6 for rt_sigaction, then the
    // 8-instruction loop, then 3 for the handler; the sigaction struct
    // follows at an 8-aligned offset.
    const LOOP: usize = 12;
    const HANDLER: usize = 20;
    const ACT: usize = 24; // in instructions: byte offset 96

    let mut ins: Vec<u32> = Vec::with_capacity(ACT);
    for signal in [15u32 /* SIGTERM */, 2 /* SIGINT */] {
        ins.push(movz(0, signal));
        let here = (ins.len() * 4) as i32;
        ins.push(adr(1, (ACT * 4) as i32 - here)); // &act
        ins.push(movz(2, 0)); // old action: NULL
        ins.push(movz(3, 8)); // sizeof(sigset_t)
        ins.push(movz(8, SYS_RT_SIGACTION));
        ins.push(SVC0);
    }
    debug_assert_eq!(ins.len(), LOOP);
    // loop: ppoll(NULL, 0, NULL, NULL, 0) blocks until a signal.
    for reg in 0..5 {
        ins.push(movz(reg, 0));
    }
    ins.push(movz(8, SYS_PPOLL));
    ins.push(SVC0);
    let here = (ins.len() * 4) as i32;
    ins.push(b((LOOP * 4) as i32 - here));
    debug_assert_eq!(ins.len(), HANDLER);
    // handler: exit_group(0)
    ins.push(movz(0, 0));
    ins.push(movz(8, SYS_EXIT_GROUP));
    ins.push(SVC0);
    ins.resize(ACT, 0xd420_0000); // brk #0 padding

    let mut c: Vec<u8> = ins.iter().flat_map(|i| i.to_le_bytes()).collect();
    let handler = ELF_BASE + ELF_HEADERS + (HANDLER * 4) as u64;
    // arm64 returns from handlers through the vDSO; no restorer needed.
    c.extend(kernel_sigaction(handler, 0, 0));
    elf64(EM_AARCH64, 0x1_0000, &c)
}

/// A static little-endian ELF64 executable: one read+execute `PT_LOAD`
/// segment mapping the whole file at [`ELF_BASE`] (entry = first byte after
/// the headers) and a `PT_GNU_STACK` asking for a non-executable stack.
fn elf64(machine: u16, align: u64, code: &[u8]) -> Vec<u8> {
    let size = ELF_HEADERS + code.len() as u64;
    let mut e = Vec::with_capacity(size as usize);
    // e_ident: magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE
    e.extend([0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    e.extend([0u8; 8]);
    e.extend(2u16.to_le_bytes()); // e_type: ET_EXEC
    e.extend(machine.to_le_bytes()); // e_machine
    e.extend(1u32.to_le_bytes()); // e_version
    e.extend((ELF_BASE + ELF_HEADERS).to_le_bytes()); // e_entry
    e.extend(64u64.to_le_bytes()); // e_phoff
    e.extend(0u64.to_le_bytes()); // e_shoff: no sections
    e.extend(0u32.to_le_bytes()); // e_flags
    e.extend(64u16.to_le_bytes()); // e_ehsize
    e.extend(56u16.to_le_bytes()); // e_phentsize
    e.extend(2u16.to_le_bytes()); // e_phnum
    e.extend(64u16.to_le_bytes()); // e_shentsize
    e.extend(0u16.to_le_bytes()); // e_shnum
    e.extend(0u16.to_le_bytes()); // e_shstrndx
                                  // PT_LOAD, PF_R | PF_X, the whole file
    e.extend(1u32.to_le_bytes());
    e.extend(5u32.to_le_bytes());
    e.extend(0u64.to_le_bytes()); // p_offset
    e.extend(ELF_BASE.to_le_bytes()); // p_vaddr
    e.extend(ELF_BASE.to_le_bytes()); // p_paddr
    e.extend(size.to_le_bytes()); // p_filesz
    e.extend(size.to_le_bytes()); // p_memsz
    e.extend(align.to_le_bytes()); // p_align
                                   // PT_GNU_STACK, PF_R | PF_W
    e.extend(0x6474_e551u32.to_le_bytes());
    e.extend(6u32.to_le_bytes());
    e.extend([0u8; 40]); // offset, vaddr, paddr, filesz, memsz: 0
    e.extend(16u64.to_le_bytes()); // p_align
    debug_assert_eq!(e.len() as u64, ELF_HEADERS);
    e.extend_from_slice(code);
    e
}

/// A ustar archive holding one regular file (owner root) at the top level.
fn tar_with_one_file(name: &str, mode: u32, data: &[u8]) -> Vec<u8> {
    fn octal(field: &mut [u8], value: u64) {
        // Zero-padded octal, NUL-terminated, filling the field.
        let digits = field.len() - 1;
        let text = format!("{value:0digits$o}");
        let text = text.as_bytes();
        let start = text.len().saturating_sub(digits);
        field[..digits].copy_from_slice(&text[start..]);
        field[digits] = 0;
    }
    let mut header = [0u8; 512];
    let name = name.as_bytes();
    let n = name.len().min(100);
    header[..n].copy_from_slice(&name[..n]);
    octal(&mut header[100..108], u64::from(mode)); // mode
    octal(&mut header[108..116], 0); // uid
    octal(&mut header[116..124], 0); // gid
    octal(&mut header[124..136], data.len() as u64); // size
    octal(&mut header[136..148], 0); // mtime
    header[156] = b'0'; // typeflag: regular file
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[265..269].copy_from_slice(b"root"); // uname
    header[297..301].copy_from_slice(b"root"); // gname
                                               // Checksum: byte sum with the checksum field read as spaces.
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(text.as_bytes());

    let padded = data.len().div_ceil(512) * 512;
    let mut out = Vec::with_capacity(512 + padded + 1024);
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out.resize(512 + padded, 0);
    out.resize(512 + padded + 1024, 0); // two zero blocks: end of archive
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_frames_join_partials_and_split_long_lines() {
        use bollard::container::LogOutput;
        let out = |t: &str| LogOutput::StdOut {
            message: Bytes::from(t.to_string()),
        };
        let err = |t: &str| LogOutput::StdErr {
            message: Bytes::from(t.to_string()),
        };
        let mut j = LineJoiner::default();
        let a = j.push(out("2024-01-02T03:04:05.000000001Z hello\n"), None);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].message, "hello");
        assert_eq!(a[0].stream, LogStream::Stdout);
        let t1 = a[0].timestamp;
        // Partials of one line, interleaved with the other stream.
        assert!(j.push(out("2024-01-02T03:04:06Z part-"), None).is_empty());
        let e = j.push(err("2024-01-02T03:04:06.5Z oops\r\n"), None);
        assert_eq!(
            (e[0].stream, e[0].message.as_str()),
            (LogStream::Stderr, "oops")
        );
        let b = j.push(out("2024-01-02T03:04:07Z two\n"), None);
        assert_eq!(b[0].message, "part-two");
        assert_eq!(
            b[0].timestamp,
            parse_docker_time("2024-01-02T03:04:06Z").unwrap()
        );
        // `since` is exclusive; an empty line is a line.
        let c = j.push(out("2024-01-02T03:04:05.000000001Z \n"), Some(t1));
        assert!(c.is_empty());
        let c = j.push(out("2024-01-02T03:04:08Z \n"), Some(t1));
        assert_eq!(c[0].message, "");
        // A long line arriving in pieces comes out in CloudWatch-sized parts.
        let piece = "x".repeat(16 * 1024);
        let mut lines = Vec::new();
        for _ in 0..20 {
            lines.extend(j.push(out(&format!("2024-01-02T03:04:09Z {piece}")), None));
        }
        lines.extend(j.flush(None));
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].message.len(), MAX_LOG_LINE_BYTES);
        assert_eq!(
            lines[0].message.len() + lines[1].message.len(),
            20 * 16 * 1024
        );
        assert!(j.flush(None).is_empty());
    }

    #[test]
    fn log_frames_read_again_after_rotation_are_skipped_and_counted_once() {
        use bollard::container::LogOutput;
        let out = |t: &str| LogOutput::StdOut {
            message: Bytes::from(t.to_string()),
        };
        let err = |t: &str| LogOutput::StdErr {
            message: Bytes::from(t.to_string()),
        };
        let mut j = LineJoiner::default();
        let a = j.push(out("2024-01-02T03:04:05.1Z one\r\n"), None);
        assert_eq!(a[0].message, "one");
        assert_eq!(a[0].consumed, OutputCount { bytes: 5, lines: 1 });
        let b = j.push(out("2024-01-02T03:04:05.2Z two\n"), None);
        assert_eq!(b[0].message, "two");
        // The follower starts the rotated file again: both are repeats.
        assert!(j
            .push(out("2024-01-02T03:04:05.1Z one\r\n"), None)
            .is_empty());
        assert!(j.push(out("2024-01-02T03:04:05.2Z two\n"), None).is_empty());
        // The other stream keeps its own order.
        assert_eq!(j.push(err("2024-01-02T03:04:05.15Z e\n"), None).len(), 1);
        // Partial entries of one line share its timestamp: not repeats.
        assert!(j.push(out("2024-01-02T03:04:05.3Z ab"), None).is_empty());
        let c = j.push(out("2024-01-02T03:04:05.3Z cd\n"), None);
        assert_eq!(c[0].message, "abcd");
        assert_eq!(c[0].consumed, OutputCount { bytes: 5, lines: 1 });
        // A long line counts once, on its last piece.
        let piece = "x".repeat(16 * 1024);
        let mut lines = Vec::new();
        for _ in 0..20 {
            lines.extend(j.push(out(&format!("2024-01-02T03:04:06Z {piece}")), None));
        }
        lines.extend(j.push(out("2024-01-02T03:04:06Z \n"), None));
        assert_eq!(lines.len(), 2);
        // Counted as the pieces go out (a line still without its newline
        // must move the count), in all exactly once.
        assert!(lines[0].consumed.bytes > MAX_LOG_LINE_BYTES as u64);
        let mut total = OutputCount::default();
        for l in &lines {
            total += l.consumed;
        }
        assert_eq!(
            total,
            OutputCount {
                bytes: 20 * 16 * 1024 + 1,
                lines: 1
            }
        );
        assert_eq!(
            OutputCount::of(b"a\nbc\n"),
            OutputCount { bytes: 5, lines: 2 }
        );
    }

    #[test]
    fn docker_times() {
        assert_eq!(parse_docker_time(DOCKER_ZERO_TIME), None);
        assert_eq!(parse_docker_time(""), None);
        assert_eq!(parse_docker_time("garbage"), None);
        let t = parse_docker_time("2024-05-01T12:00:00.123456789Z").unwrap();
        let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(d.as_secs(), 1_714_564_800);
        assert_eq!(d.subsec_nanos(), 123_456_789);
    }

    #[test]
    fn image_references() {
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(with_default_tag("a/b:1"), "a/b:1");
        assert_eq!(
            with_default_tag("localhost:5000/b"),
            "localhost:5000/b:latest"
        );
        assert_eq!(with_default_tag("b@sha256:00"), "b@sha256:00");
        assert_eq!(repository_of("localhost:5000/b:2"), "localhost:5000/b");
        assert_eq!(repository_of("localhost:5000/b"), "localhost:5000/b");
        assert_eq!(repository_of("b@sha256:00"), "b");
    }

    #[test]
    fn event_kinds() {
        assert_eq!(event_kind("die"), EventKind::Die);
        assert_eq!(
            event_kind("health_status: healthy"),
            EventKind::HealthStatus("healthy".into())
        );
        assert_eq!(
            event_kind("exec_start: sh"),
            EventKind::Other("exec_start: sh".into())
        );
    }

    #[test]
    fn cpu_shares_minimum_and_ports() {
        let spec = ContainerSpec {
            name: "n".into(),
            image: "i".into(),
            entry_point: None,
            command: None,
            env: vec![],
            working_dir: None,
            user: None,
            cpu_shares: Some(0),
            memory_mib: Some(3),
            memory_reservation_mib: None,
            nano_cpus: None,
            ports: vec![crate::PortSpec {
                container_port: 80,
                host_port: Some(0),
                protocol: Protocol::Udp,
            }],
            network: NetworkSpec::Bridge,
            labels: BTreeMap::new(),
            ulimits: vec![],
            readonly_rootfs: false,
            privileged: false,
            stop_timeout: Some(Duration::from_millis(1500)),
            options: Default::default(),
        };
        let body = create_body(&spec);
        let host = body.host_config.unwrap();
        assert_eq!(host.cpu_shares, Some(2));
        assert_eq!(host.memory, Some(3 * MIB));
        assert_eq!(body.stop_timeout, Some(2));
        assert_eq!(body.exposed_ports, Some(vec!["80/udp".to_string()]));
        let bindings = host.port_bindings.unwrap();
        let b = &bindings["80/udp"].as_ref().unwrap()[0];
        assert_eq!(b.host_port.as_deref(), Some(""));
        assert_eq!(b.host_ip.as_deref(), Some(""));
    }

    #[test]
    fn options_map_to_docker() {
        let spec = ContainerSpec {
            name: "n".into(),
            image: "i".into(),
            entry_point: None,
            command: None,
            env: vec![],
            working_dir: None,
            user: None,
            cpu_shares: None,
            memory_mib: None,
            memory_reservation_mib: None,
            nano_cpus: None,
            ports: vec![],
            network: NetworkSpec::Bridge,
            labels: BTreeMap::new(),
            ulimits: vec![],
            readonly_rootfs: false,
            privileged: false,
            stop_timeout: None,
            options: crate::ContainerOptions {
                health_check: Some(crate::HealthCheck {
                    test: vec!["CMD".into(), "true".into()],
                    interval: Duration::from_secs(30),
                    timeout: Duration::from_secs(5),
                    retries: 3,
                    start_period: Duration::from_secs(2),
                }),
                mounts: vec![
                    crate::MountSpec {
                        source: "/srv".into(),
                        target: "/data".into(),
                        read_only: true,
                    },
                    crate::MountSpec {
                        source: "vol".into(),
                        target: "/v".into(),
                        read_only: false,
                    },
                ],
                volumes_from: vec![("other".into(), true), ("rw".into(), false)],
                devices: vec![crate::DeviceSpec {
                    host_path: "/dev/fuse".into(),
                    container_path: None,
                    permissions: "rw".into(),
                }],
                tmpfs: vec![crate::TmpfsSpec {
                    container_path: "/t".into(),
                    size_mib: Some(4),
                    options: vec![],
                }],
                network_disabled: true,
                ..Default::default()
            },
        };
        let body = create_body(&spec);
        let hc = body.healthcheck.unwrap();
        assert_eq!(hc.interval, Some(30_000_000_000));
        assert_eq!(hc.start_period, Some(2_000_000_000));
        assert_eq!(hc.retries, Some(3));
        assert_eq!(body.network_disabled, Some(true));
        assert_eq!(body.tty, None);
        let host = body.host_config.unwrap();
        assert_eq!(
            host.binds,
            Some(vec!["/srv:/data:ro".to_string(), "vol:/v".to_string()])
        );
        assert_eq!(
            host.volumes_from,
            Some(vec!["other:ro".to_string(), "rw:rw".to_string()])
        );
        let d = &host.devices.unwrap()[0];
        assert_eq!(d.path_in_container.as_deref(), Some("/dev/fuse"));
        assert_eq!(d.cgroup_permissions.as_deref(), Some("rw"));
        assert_eq!(host.tmpfs.unwrap()["/t"], "size=4m");
        assert_eq!(host.cap_add, None);
        assert_eq!(host.init, None);
    }

    #[test]
    fn tar_header_checksum() {
        let tar = tar_with_one_file("pause", 0o755, b"abc");
        assert_eq!(tar.len(), 512 * 4);
        let mut header = tar[..512].to_vec();
        let stored = std::str::from_utf8(&header[148..154]).unwrap().to_string();
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(u32::from_str_radix(&stored, 8).unwrap(), sum);
        assert_eq!(&tar[512..515], b"abc");
    }

    #[test]
    fn aarch64_encodings() {
        let elf = pause_elf_aarch64();
        let word = |i: usize| {
            let at = ELF_HEADERS as usize + i * 4;
            u32::from_le_bytes(elf[at..at + 4].try_into().unwrap())
        };
        assert_eq!(word(0), 0xd280_01e0); // mov x0, #15
        assert_eq!(word(1), 0x1000_02e1); // adr x1, .+92 (act at byte 96)
        assert_eq!(word(4), 0xd280_10c8); // mov x8, #134
        assert_eq!(word(5), 0xd400_0001); // svc #0
        assert_eq!(word(19), 0x17ff_fff9); // b .-28 (loop)
        assert_eq!(word(21), 0xd280_0bc8); // mov x8, #94
    }

    /// Runs the x86_64 pause executable on the host (when it is x86_64):
    /// it must stay up, then exit 0 on SIGTERM.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    // A real child process: it must stay up for 300 ms of wall time.
    #[allow(clippy::disallowed_methods)]
    fn x86_64_pause_runs_and_exits_on_sigterm() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("stevedore-pause-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pause");
        std::fs::write(&path, pause_elf_x86_64()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut child = std::process::Command::new(&path).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(child.try_wait().unwrap().is_none(), "pause exited early");
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(status.code(), Some(0), "{status:?}");
    }
}
