//! `DockerRuntime` against the real Docker engine.
//!
//! Needs a Docker engine and the local test images; those are built by
//! `scripts/build-test-images`, which the tests run themselves (it returns at
//! once when the images exist). Nothing is pulled: no registry is needed.
//!
//! Every test names its containers and networks with a unique prefix and
//! labels its containers with a unique `stevedore.test` value; a [`Cleanup`]
//! guard removes them in `Drop`, so also when an assertion fails.

use futures::StreamExt;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};
use stevedore_runtime::{
    labels, ContainerRuntime, ContainerSpec, DockerRuntime, EventKind, Health, HealthCheck,
    LogConfig, LogLine, LogStream, MountSpec, NetworkSpec, PortSpec, Protocol, PullBehavior,
    RuntimeError, Status, TmpfsSpec, Ulimit, VolumeSpec, MAX_LOG_LINE_BYTES,
};
use tokio::time::Instant;

const BUSYBOX: &str = "stevedore-test/busybox:latest";
const BUSYBOX_STOPSIGNAL: &str = "stevedore-test/busybox-stopsignal:latest";
const TEST_LABEL: &str = "stevedore.test";

fn test_images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-test-images");
        let status = Command::new("bash").arg(&script).status();
        match status {
            Ok(s) if s.success() => {}
            other => panic!(
                "the test images are missing and {} failed ({other:?}); run scripts/build-test-images",
                script.display()
            ),
        }
    });
}

/// One test's namespace: unique names, a unique label, and cleanup on drop.
struct Cleanup {
    id: String,
    networks: Vec<String>,
}

impl Cleanup {
    fn new() -> Self {
        test_images();
        let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
        Cleanup {
            id,
            networks: Vec::new(),
        }
    }

    fn name(&self, what: &str) -> String {
        format!("stevedore-rt-{}-{what}", self.id)
    }

    fn network(&mut self, what: &str) -> String {
        let name = self.name(what);
        self.networks.push(name.clone());
        name
    }

    /// A busybox spec carrying this test's label.
    fn spec(&self, what: &str, command: &[&str]) -> ContainerSpec {
        ContainerSpec {
            name: self.name(what),
            image: BUSYBOX.to_string(),
            entry_point: None,
            command: Some(command.iter().map(|s| s.to_string()).collect()),
            env: vec![],
            working_dir: None,
            user: None,
            cpu_shares: None,
            memory_mib: None,
            memory_reservation_mib: None,
            nano_cpus: None,
            ports: vec![],
            network: NetworkSpec::Bridge,
            labels: BTreeMap::from([(TEST_LABEL.to_string(), self.id.clone())]),
            ulimits: vec![],
            readonly_rootfs: false,
            privileged: false,
            stop_timeout: None,
            options: Default::default(),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let out = Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label={TEST_LABEL}={}", self.id))
            .output();
        if let Ok(out) = out {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-fv"])
                    .args(&ids)
                    .output();
            }
        }
        // Unlabelled helpers are named with the prefix.
        let _ = Command::new("docker")
            .args(["rm", "-fv", &self.name("unlabelled")])
            .output();
        for net in &self.networks {
            // By id: a name would be ambiguous if duplicates were left.
            let out = Command::new("docker")
                .args(["network", "ls", "-q", "--filter"])
                .arg(format!("name=^{net}$"))
                .output();
            if let Ok(out) = out {
                for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("docker").args(["network", "rm", id]).output();
                }
            }
        }
    }
}

fn runtime() -> DockerRuntime {
    DockerRuntime::connect().expect("connect to Docker")
}

async fn wait_exited(rt: &DockerRuntime, id: &str) -> stevedore_runtime::ContainerState {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let state = rt.inspect(id).await.expect("inspect");
        if state.status == Status::Exited {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "container {id} did not exit: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run(rt: &DockerRuntime, spec: &ContainerSpec) -> String {
    let id = rt.create(spec).await.expect("create");
    rt.start(&id).await.expect("start");
    id
}

fn logs(id: &str) -> String {
    let out = Command::new("docker")
        .args(["logs", id])
        .output()
        .expect("docker logs");
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

fn docker_inspect(id: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "--format", format, id])
        .output()
        .expect("docker inspect");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `sh` as PID 1 that exits 0 on SIGTERM; says "ready" once the trap is set.
const TRAP_TERM: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 0' TERM; echo ready; sleep 1000 & wait",
];

/// Waits for "ready" in the container's output (its signal traps are set).
async fn wait_ready(id: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !logs(id).contains("ready") {
        assert!(
            Instant::now() < deadline,
            "{id} never got ready: {}",
            logs(id)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn lifecycle_create_start_inspect_stop_remove() {
    let t = Cleanup::new();
    let rt = runtime();
    let spec = t.spec("life", TRAP_TERM);
    let id = rt.create(&spec).await.unwrap();

    let created = rt.inspect(&id).await.unwrap();
    assert_eq!(created.status, Status::Created);
    assert_eq!(created.name, spec.name);
    assert_eq!(created.exit_code, None);
    assert_eq!(created.started_at, None);
    assert_eq!(created.finished_at, None);
    assert_eq!(created.labels.get(TEST_LABEL), Some(&t.id));
    assert!(created.image_id.starts_with("sha256:"), "{created:?}");

    let before = SystemTime::now() - Duration::from_secs(5);
    rt.start(&id).await.unwrap();
    let running = rt.inspect(&id).await.unwrap();
    assert_eq!(running.status, Status::Running);
    assert!(running.started_at.unwrap() > before);
    assert!(running.ips.contains_key("bridge"), "{running:?}");
    wait_ready(&id).await;

    rt.stop(&id, Duration::from_secs(10)).await.unwrap();
    let stopped = rt.inspect(&id).await.unwrap();
    assert_eq!(stopped.status, Status::Exited);
    assert_eq!(stopped.exit_code, Some(0));
    assert!(stopped.finished_at.unwrap() >= stopped.started_at.unwrap());
    // Stopping a stopped container is fine.
    rt.stop(&id, Duration::from_secs(1)).await.unwrap();

    rt.remove(&id).await.unwrap();
    assert!(matches!(
        rt.inspect(&id).await,
        Err(RuntimeError::NotFound(_))
    ));
    assert!(matches!(
        rt.stop(&id, Duration::from_secs(1)).await,
        Err(RuntimeError::NotFound(_))
    ));
    assert!(matches!(
        rt.remove(&id).await,
        Err(RuntimeError::NotFound(_))
    ));
}

#[tokio::test]
async fn exit_code_and_create_errors() {
    let t = Cleanup::new();
    let rt = runtime();
    let id = run(&rt, &t.spec("exit7", &["sh", "-c", "exit 7"])).await;
    let state = wait_exited(&rt, &id).await;
    assert_eq!(state.exit_code, Some(7));
    assert!(!state.oom_killed);
    assert!(state.finished_at.is_some());

    // Same name twice.
    let dup = rt.create(&t.spec("exit7", &["true"])).await;
    assert!(matches!(dup, Err(RuntimeError::NameInUse(_))), "{dup:?}");
    // The reason a task reports is still the ECS create error.
    assert!(dup
        .unwrap_err()
        .to_string()
        .starts_with("CannotCreateContainerError: "));
    // A command that does not exist fails at start, with Docker's error.
    let bad = rt
        .create(&t.spec("nocmd", &["/no/such/binary"]))
        .await
        .unwrap();
    let err = rt.start(&bad).await.unwrap_err();
    assert!(matches!(err, RuntimeError::CannotStart(_)), "{err:?}");
    assert!(
        err.to_string().starts_with("CannotStartContainerError: "),
        "{err}"
    );
    let state = rt.inspect(&bad).await.unwrap();
    assert!(state.error.is_some(), "{state:?}");
    assert!(matches!(
        rt.inspect("stevedore-no-such-container").await,
        Err(RuntimeError::NotFound(_))
    ));
}

#[tokio::test]
async fn stop_sends_sigterm_then_sigkill_after_the_timeout() {
    let t = Cleanup::new();
    let rt = runtime();
    let graceful = run(&rt, &t.spec("graceful", TRAP_TERM)).await;
    let stubborn = run(
        &rt,
        &t.spec(
            "stubborn",
            &[
                "sh",
                "-c",
                "trap '' TERM; echo ready; while true; do sleep 1; done",
            ],
        ),
    )
    .await;
    wait_ready(&graceful).await;
    wait_ready(&stubborn).await;

    let (graceful_took, stubborn_took) = tokio::join!(
        async {
            let start = Instant::now();
            rt.stop(&graceful, Duration::from_secs(10)).await.unwrap();
            start.elapsed()
        },
        async {
            let start = Instant::now();
            rt.stop(&stubborn, Duration::from_secs(2)).await.unwrap();
            start.elapsed()
        }
    );
    assert!(graceful_took < Duration::from_secs(5), "{graceful_took:?}");
    assert_eq!(rt.inspect(&graceful).await.unwrap().exit_code, Some(0));
    assert!(
        stubborn_took >= Duration::from_millis(1900) && stubborn_took < Duration::from_secs(6),
        "{stubborn_took:?}"
    );
    assert_eq!(rt.inspect(&stubborn).await.unwrap().exit_code, Some(137));
}

#[tokio::test]
async fn stop_uses_the_images_stopsignal() {
    let t = Cleanup::new();
    let rt = runtime();
    let mut spec = t.spec(
        "usr1",
        &[
            "sh",
            "-c",
            "trap 'exit 42' USR1; trap '' TERM; echo ready; sleep 1000 & wait",
        ],
    );
    spec.image = BUSYBOX_STOPSIGNAL.to_string();
    let id = run(&rt, &spec).await;
    wait_ready(&id).await;
    let start = Instant::now();
    rt.stop(&id, Duration::from_secs(10)).await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(rt.inspect(&id).await.unwrap().exit_code, Some(42));
}

#[tokio::test]
async fn resources_user_workdir_env_ulimits_readonly() {
    let t = Cleanup::new();
    let rt = runtime();
    let mut spec = t.spec(
        "res",
        &[
            "sh",
            "-c",
            "echo uid=$(id -u) pwd=$(pwd) foo=$FOO nofile=$(ulimit -n)/$(ulimit -Hn); \
             touch /rootfs-write 2>/dev/null && echo rootfs=writable || echo rootfs=readonly",
        ],
    );
    spec.user = Some("nobody".into());
    spec.working_dir = Some("/tmp".into());
    spec.env = vec![("FOO".into(), "bar baz".into())];
    spec.memory_mib = Some(64);
    spec.memory_reservation_mib = Some(32);
    spec.cpu_shares = Some(1); // raised to Docker's minimum, 2
    spec.nano_cpus = Some(500_000_000);
    spec.ulimits = vec![Ulimit {
        name: "nofile".into(),
        soft: 1000,
        hard: 2000,
    }];
    spec.readonly_rootfs = true;
    spec.stop_timeout = Some(Duration::from_secs(7));
    let id = run(&rt, &spec).await;
    let state = wait_exited(&rt, &id).await;
    assert_eq!(state.exit_code, Some(0), "{}", logs(&id));

    let out = logs(&id);
    assert!(
        out.contains("uid=65534 pwd=/tmp foo=bar baz nofile=1000/2000"),
        "{out}"
    );
    assert!(out.contains("rootfs=readonly"), "{out}");
    assert_eq!(
        docker_inspect(
            &id,
            "{{.HostConfig.Memory}} {{.HostConfig.MemoryReservation}} {{.HostConfig.CpuShares}} \
             {{.HostConfig.NanoCpus}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Privileged}} \
             {{.Config.StopTimeout}} {{.Config.User}} {{.Config.WorkingDir}} {{.HostConfig.NetworkMode}}"
        ),
        format!(
            "{} {} 2 500000000 true false 7 nobody /tmp bridge",
            64 * 1024 * 1024,
            32 * 1024 * 1024
        )
    );
    assert!(docker_inspect(&id, "{{json .Config.Env}}").contains("\"FOO=bar baz\""));
}

fn http_get(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

#[tokio::test]
async fn dynamic_host_port_is_resolved_and_answers_http() {
    let t = Cleanup::new();
    let rt = runtime();
    let mut spec = t.spec("httpd", &["httpd", "-f", "-p", "8080", "-h", "/www"]);
    spec.ports = vec![
        PortSpec {
            container_port: 8080,
            host_port: None,
            protocol: Protocol::Tcp,
        },
        PortSpec {
            container_port: 9999,
            host_port: Some(0),
            protocol: Protocol::Udp,
        },
    ];
    let id = run(&rt, &spec).await;
    let state = rt.inspect(&id).await.unwrap();
    let tcp: Vec<_> = state
        .ports
        .iter()
        .filter(|p| p.container_port == 8080)
        .collect();
    assert!(!tcp.is_empty(), "{state:?}");
    assert!(tcp
        .iter()
        .all(|p| p.host_port != 0 && p.protocol == Protocol::Tcp));
    assert!(state
        .ports
        .iter()
        .any(|p| p.container_port == 9999 && p.protocol == Protocol::Udp && p.host_port != 0));

    let port = tcp[0].host_port;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match http_get(port) {
            Ok(body) if body.contains("stevedore test image") => break,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "no HTTP answer on {port}: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test]
async fn ensure_image_pull_behaviours() {
    let _t = Cleanup::new();
    let rt = runtime();
    let local_id = docker_inspect(BUSYBOX, "{{.Id}}");

    // No registry: the pull fails and Default falls back to the local image.
    let start = Instant::now();
    let image = rt
        .ensure_image(BUSYBOX, PullBehavior::Default)
        .await
        .unwrap();
    assert_eq!(image.image_id, local_id);
    assert_eq!(image.digest, None);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "pull is slow: {:?}",
        start.elapsed()
    );
    // Untagged means :latest.
    let image = rt
        .ensure_image("stevedore-test/busybox", PullBehavior::Default)
        .await
        .unwrap();
    assert_eq!(image.image_id, local_id);

    for behavior in [PullBehavior::Once, PullBehavior::PreferCached] {
        let image = rt.ensure_image(BUSYBOX, behavior).await.unwrap();
        assert_eq!(image.image_id, local_id);
    }

    let err = rt
        .ensure_image(BUSYBOX, PullBehavior::Always)
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::CannotPull(_)), "{err:?}");
    assert!(err.to_string().contains(BUSYBOX), "{err}");

    for behavior in [
        PullBehavior::Default,
        PullBehavior::Once,
        PullBehavior::PreferCached,
    ] {
        let missing = "stevedore-test/no-such-image:1";
        let err = rt.ensure_image(missing, behavior).await.unwrap_err();
        assert!(matches!(err, RuntimeError::CannotPull(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("CannotPullContainerError: ") && text.contains(missing),
            "{text}"
        );
    }
}

#[tokio::test]
async fn events_arrive_for_labelled_containers_only() {
    let t = Cleanup::new();
    let rt = runtime();
    let mut events = rt.events(vec![(TEST_LABEL.to_string(), t.id.clone())]);

    // An unlabelled container runs and exits first; its events would come
    // before the labelled container's die.
    let mut other = t.spec("unlabelled", &["true"]);
    other.labels.clear();
    let other_id = run(&rt, &other).await;
    wait_exited(&rt, &other_id).await;

    let id = run(&rt, &t.spec("events", &["sh", "-c", "exit 3"])).await;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !seen.contains(&(id.clone(), EventKind::Die)) {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| panic!("timed out; saw {seen:?}"))
            .expect("stream ended")
            .expect("event");
        assert_ne!(
            event.id, other_id,
            "event for an unlabelled container: {event:?}"
        );
        assert_eq!(event.labels.get(TEST_LABEL), Some(&t.id), "{event:?}");
        assert!(!event.labels.contains_key("image"), "{event:?}");
        seen.push((event.id, event.kind));
    }
    let kinds: Vec<_> = seen
        .iter()
        .filter(|(i, _)| *i == id)
        .map(|(_, k)| k.clone())
        .collect();
    assert!(kinds.contains(&EventKind::Create), "{kinds:?}");
    assert!(kinds.contains(&EventKind::Start), "{kinds:?}");
}

#[tokio::test]
async fn list_finds_all_containers_with_all_labels() {
    let t = Cleanup::new();
    let rt = runtime();
    let a = rt.create(&t.spec("a", &["true"])).await.unwrap();
    let mut spec_b = t.spec("b", &["true"]);
    spec_b.labels.insert(labels::ROLE.into(), "x".into());
    let b = run(&rt, &spec_b).await;
    wait_exited(&rt, &b).await;

    let all = rt.list(&[(TEST_LABEL, &t.id)]).await.unwrap();
    let mut ids: Vec<_> = all.iter().map(|s| s.id.clone()).collect();
    ids.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(ids, want);
    let only_b = rt
        .list(&[(TEST_LABEL, &t.id), (labels::ROLE, "x")])
        .await
        .unwrap();
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0].id, b);
    assert_eq!(only_b[0].status, Status::Exited);
}

#[tokio::test]
async fn unreachable_engine_is_unavailable() {
    let missing = DockerRuntime::connect_with_host("unix:///nonexistent/docker.sock");
    assert!(
        matches!(missing, Err(RuntimeError::Unavailable(_))),
        "{missing:?}"
    );
    // A path that exists but is no socket: connect succeeds, calls fail.
    let path = std::env::temp_dir().join(format!("stevedore-not-a-socket-{}", std::process::id()));
    std::fs::write(&path, b"").unwrap();
    let rt = DockerRuntime::connect_with_host(&format!("unix://{}", path.display())).unwrap();
    for _ in 0..2 {
        let err = rt.info().await.unwrap_err();
        assert!(matches!(err, RuntimeError::Unavailable(_)), "{err:?}");
        let err = rt.inspect("x").await.unwrap_err();
        assert!(matches!(err, RuntimeError::Unavailable(_)), "{err:?}");
    }
    let mut events = rt.events(vec![]);
    assert!(matches!(
        events.next().await,
        Some(Err(RuntimeError::Unavailable(_)))
    ));
}

#[tokio::test]
async fn info_reports_the_host() {
    let rt = runtime();
    let info = rt.info().await.unwrap();
    assert!(info.cpus >= 1, "{info:?}");
    assert!(info.memory_mib > 0, "{info:?}");
    assert_eq!(info.os_type, "linux");
    assert!(
        ["x86_64", "arm64"].contains(&info.architecture.as_str()),
        "{info:?}"
    );
    assert!(!info.docker_version.is_empty() && !info.kernel_version.is_empty());
}

#[tokio::test]
async fn ensure_network_is_idempotent_under_concurrency() {
    let mut t = Cleanup::new();
    let name = t.network("net");
    // Four "agents" racing, each with its own connection.
    let agents: Vec<DockerRuntime> = (0..4).map(|_| runtime()).collect();
    let results = futures::future::join_all(agents.iter().map(|a| a.ensure_network(&name))).await;
    for r in results {
        assert_eq!(r.unwrap(), name);
    }
    assert_eq!(agents[0].ensure_network(&name).await.unwrap(), name);

    let out = Command::new("docker")
        .args(["network", "ls", "-q", "--filter"])
        .arg(format!("name=^{name}$"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert_eq!(
        docker_inspect(
            &name,
            "{{.Driver}} {{index .Labels \"com.stevedore.managed\"}}"
        ),
        "bridge true"
    );
}

/// awsvpc: two pause containers on one network, each with an httpd on the
/// same port 8080 in its namespace, and a client in each namespace that
/// reaches "its" httpd on 127.0.0.1.
#[tokio::test]
async fn pause_containers_hold_network_namespaces() {
    let mut t = Cleanup::new();
    let rt = runtime();
    let image = rt.ensure_pause_image().await.unwrap();
    assert_eq!(image, stevedore_runtime::PAUSE_IMAGE);
    assert_eq!(rt.ensure_pause_image().await.unwrap(), image);
    let net = t.network("awsvpc");
    rt.ensure_network(&net).await.unwrap();

    let mut pauses = Vec::new();
    for task in ["t1", "t2"] {
        let mut spec = t.spec(&format!("{task}-pause"), &[]);
        spec.image = image.clone();
        spec.command = None;
        spec.network = NetworkSpec::Network(net.clone());
        spec.labels.insert(labels::ROLE.into(), "pause".into());
        pauses.push(run(&rt, &spec).await);
    }
    let mut httpds = Vec::new();
    for (task, pause) in ["t1", "t2"].iter().zip(&pauses) {
        let mut spec = t.spec(
            &format!("{task}-httpd"),
            &["httpd", "-f", "-p", "8080", "-h", "/www"],
        );
        spec.network = NetworkSpec::Container(pause.clone());
        // Ignored for a shared namespace (Docker would refuse them).
        spec.ports = vec![PortSpec {
            container_port: 8080,
            host_port: None,
            protocol: Protocol::Tcp,
        }];
        httpds.push(run(&rt, &spec).await);
    }
    let mut clients = Vec::new();
    for (task, pause) in ["t1", "t2"].iter().zip(&pauses) {
        let mut spec = t.spec(
            &format!("{task}-client"),
            &[
                "sh",
                "-c",
                // (busybox 1.35's static wget segfaults with -T.)
                "for i in $(seq 50); do wget -q -O - http://127.0.0.1:8080/ && exit 0; sleep 0.1; done; exit 1",
            ],
        );
        spec.network = NetworkSpec::Container(pause.clone());
        clients.push(run(&rt, &spec).await);
    }
    for client in &clients {
        let state = wait_exited(&rt, client).await;
        assert_eq!(state.exit_code, Some(0), "{}", logs(client));
        assert!(logs(client).contains("stevedore test image"));
    }

    // Both httpds bound 8080: separate namespaces. Both pauses are up, each
    // with its own IP on the network.
    let mut ips = Vec::new();
    for id in pauses.iter().chain(&httpds) {
        let state = rt.inspect(id).await.unwrap();
        assert_eq!(state.status, Status::Running, "{state:?} {}", logs(id));
        if pauses.contains(id) {
            let ip = state.ips.get(&net).cloned().unwrap_or_default();
            assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{state:?}");
            ips.push(ip);
        }
    }
    assert_ne!(ips[0], ips[1]);
    // The client's view of its own address is the pause container's.
    let mut spec = t.spec("t1-ip", &["sh", "-c", "ip -4 -o addr show eth0"]);
    spec.network = NetworkSpec::Container(pauses[0].clone());
    let ip_probe = run(&rt, &spec).await;
    wait_exited(&rt, &ip_probe).await;
    assert!(
        logs(&ip_probe).contains(&format!("inet {}/", ips[0])),
        "{}",
        logs(&ip_probe)
    );

    // The pause executable exits 0 on SIGTERM at once (no SIGKILL wait).
    let start = Instant::now();
    rt.stop(&pauses[0], Duration::from_secs(10)).await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(rt.inspect(&pauses[0]).await.unwrap().exit_code, Some(0));
}

#[tokio::test]
async fn health_moves_from_starting_to_healthy_to_unhealthy() {
    let t = Cleanup::new();
    let rt = runtime();
    let mut spec = t.spec(
        "health",
        &[
            "sh",
            "-c",
            "sleep 2; touch /tmp/ok; sleep 3; rm /tmp/ok; sleep 60",
        ],
    );
    spec.stop_timeout = Some(Duration::from_secs(1));
    spec.options.health_check = Some(HealthCheck {
        test: vec!["CMD-SHELL".into(), "test -f /tmp/ok".into()],
        interval: Duration::from_millis(500),
        timeout: Duration::from_secs(2),
        retries: 1,
        // Failures inside it do not count: starting until the first success.
        start_period: Duration::from_secs(20),
    });
    let id = run(&rt, &spec).await;
    let first = rt.inspect(&id).await.unwrap().health;
    assert_eq!(first, Some(Health::Starting));
    let mut seen = vec![Health::Starting];
    let deadline = Instant::now() + Duration::from_secs(15);
    while !seen.contains(&Health::Unhealthy) {
        assert!(Instant::now() < deadline, "health went {seen:?}");
        if let Some(h) = rt.inspect(&id).await.unwrap().health {
            if seen.last() != Some(&h) {
                seen.push(h);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen,
        vec![Health::Starting, Health::Healthy, Health::Unhealthy]
    );
    // Without a health check there is no health.
    let plain = run(&rt, &t.spec("plain", &["true"])).await;
    assert_eq!(rt.inspect(&plain).await.unwrap().health, None);
    rt.stop(&id, Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn linux_parameters_and_host_options_reach_docker() {
    let t = Cleanup::new();
    let rt = runtime();
    let mut spec = t.spec("opts", &["sh", "-c", "cat /etc/hosts; hostname; sleep 60"]);
    let o = &mut spec.options;
    o.cap_add = vec!["NET_ADMIN".into()];
    o.cap_drop = vec!["CHOWN".into()];
    o.init = true;
    o.tmpfs = vec![TmpfsSpec {
        container_path: "/scratch".into(),
        size_mib: Some(16),
        options: vec!["noexec".into()],
    }];
    o.shm_size_mib = Some(128);
    o.sysctls = BTreeMap::from([("net.ipv4.ip_forward".into(), "1".into())]);
    o.extra_hosts = vec!["db.internal:10.1.2.3".into()];
    o.dns_servers = vec!["10.0.0.2".into()];
    o.dns_search = vec!["example.internal".into()];
    o.hostname = Some("web-1".into());
    o.interactive = true;
    o.tty = true;
    o.security_opt = vec!["no-new-privileges".into()];
    let id = run(&rt, &spec).await;
    let j = |f: &str| docker_inspect(&id, &format!("{{{{json {f}}}}}"));
    assert_eq!(j(".HostConfig.CapAdd"), r#"["NET_ADMIN"]"#);
    assert_eq!(j(".HostConfig.CapDrop"), r#"["CHOWN"]"#);
    assert_eq!(j(".HostConfig.Init"), "true");
    assert_eq!(j(".HostConfig.Tmpfs"), r#"{"/scratch":"noexec,size=16m"}"#);
    assert_eq!(j(".HostConfig.ShmSize"), (128 * 1024 * 1024).to_string());
    assert_eq!(j(".HostConfig.Sysctls"), r#"{"net.ipv4.ip_forward":"1"}"#);
    assert_eq!(j(".HostConfig.ExtraHosts"), r#"["db.internal:10.1.2.3"]"#);
    assert_eq!(j(".HostConfig.Dns"), r#"["10.0.0.2"]"#);
    assert_eq!(j(".HostConfig.DnsSearch"), r#"["example.internal"]"#);
    assert_eq!(j(".HostConfig.SecurityOpt"), r#"["no-new-privileges"]"#);
    assert_eq!(j(".Config.Hostname"), r#""web-1""#);
    assert_eq!(j(".Config.OpenStdin"), "true");
    assert_eq!(j(".Config.Tty"), "true");
    // Seen from inside: the host entry, the hostname, NET_ADMIN.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !logs(&id).contains("web-1") {
        assert!(Instant::now() < deadline, "{}", logs(&id));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(logs(&id).contains("10.1.2.3"), "{}", logs(&id));
    let caps = Command::new("docker")
        .args(["exec", &id, "grep", "CapEff", "/proc/self/status"])
        .output()
        .unwrap();
    let hex = String::from_utf8_lossy(&caps.stdout);
    let eff = u64::from_str_radix(hex.split_whitespace().nth(1).unwrap_or("0"), 16).unwrap();
    assert!(eff & (1 << 12) != 0, "NET_ADMIN (12) missing: {hex}");
    assert!(eff & 1 == 0, "CHOWN (0) not dropped: {hex}");
    rt.stop(&id, Duration::from_secs(0)).await.unwrap();
}

#[tokio::test]
async fn volumes_binds_and_autoprovision() {
    let t = Cleanup::new();
    let rt = runtime();
    let vol = t.name("vol");
    let missing = VolumeSpec {
        name: vol.clone(),
        ..Default::default()
    };
    let err = rt.ensure_volume(&missing, false).await.unwrap_err();
    assert!(err.to_string().contains("autoprovision"), "{err}");
    rt.ensure_volume(&missing, true).await.unwrap();
    // Existing: fine either way.
    rt.ensure_volume(&missing, false).await.unwrap();
    let dir = std::env::temp_dir().join(format!("stevedore-rt-{}", t.id));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hello"), "from the host").unwrap();
    let mut writer = t.spec(
        "writer",
        &[
            "sh",
            "-c",
            "cat /host/hello; echo data > /data/f; touch /host/x || echo ro-ok",
        ],
    );
    writer.options.mounts = vec![
        MountSpec {
            source: dir.display().to_string(),
            target: "/host".into(),
            read_only: true,
        },
        MountSpec {
            source: vol.clone(),
            target: "/data".into(),
            read_only: false,
        },
    ];
    let w = run(&rt, &writer).await;
    assert_eq!(wait_exited(&rt, &w).await.exit_code, Some(0));
    let out = logs(&w);
    assert!(
        out.contains("from the host") && out.contains("ro-ok"),
        "{out}"
    );
    let mut reader = t.spec("reader", &["cat", "/data/f"]);
    reader.options.volumes_from = vec![(writer.name.clone(), true)];
    let r = run(&rt, &reader).await;
    assert_eq!(wait_exited(&rt, &r).await.exit_code, Some(0));
    assert!(logs(&r).contains("data"), "{}", logs(&r));
    rt.remove(&r).await.unwrap();
    rt.remove(&w).await.unwrap();
    rt.remove_volume(&vol).await.unwrap();
    rt.remove_volume(&vol).await.unwrap();
    assert!(rt.ensure_volume(&missing, false).await.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn logs_follow_both_streams_with_timestamps_and_since() {
    let t = Cleanup::new();
    let rt = runtime();
    let mut spec = t.spec(
        "logs",
        &[
            "sh",
            "-c",
            "echo one; echo two >&2; sleep 1; echo three; head -c 300000 /dev/zero | tr '\\0' x; echo",
        ],
    );
    spec.options.log_config = Some(LogConfig {
        driver: "json-file".into(),
        options: BTreeMap::from([("max-size".to_string(), "10m".to_string())]),
    });
    let started = SystemTime::now() - Duration::from_secs(5);
    let id = run(&rt, &spec).await;
    // (The daemon's own log-opts are merged in.)
    let log_config = docker_inspect(
        &id,
        "{{.HostConfig.LogConfig.Type}} {{.HostConfig.LogConfig.Config}}",
    );
    assert!(
        log_config.starts_with("json-file ") && log_config.contains("max-size:10m"),
        "{log_config}"
    );
    // Follows a running container to its end.
    let lines: Vec<LogLine> = tokio::time::timeout(
        Duration::from_secs(15),
        rt.logs(&id, None)
            .map(|l| l.expect("line"))
            .collect::<Vec<_>>(),
    )
    .await
    .expect("the stream ends when the container exits");
    let text: Vec<(LogStream, &str)> = lines
        .iter()
        .take(3)
        .map(|l| (l.stream, l.message.as_str()))
        .collect();
    assert!(text.contains(&(LogStream::Stdout, "one")), "{text:?}");
    assert!(text.contains(&(LogStream::Stderr, "two")), "{text:?}");
    assert_eq!(text[2], (LogStream::Stdout, "three"));
    assert!(lines.iter().all(|l| l.timestamp > started));
    // The 300,000-byte line comes split at the CloudWatch event limit.
    let long: Vec<&LogLine> = lines.iter().skip(3).collect();
    assert!(long.iter().all(|l| l.message.len() <= MAX_LOG_LINE_BYTES));
    let joined: String = long.iter().map(|l| l.message.as_str()).collect();
    assert!(joined.len() >= 300_000 && joined.chars().all(|c| c == 'x'));
    assert_eq!(long.len(), 2, "Docker's 16 KiB partials are joined first");
    assert_eq!(long[0].message.len(), MAX_LOG_LINE_BYTES);
    // `since` is exclusive: after "three" only the long line's pieces.
    let three = lines[2].timestamp;
    let after: Vec<LogLine> = rt
        .logs(&id, Some(three))
        .map(|l| l.expect("line"))
        .collect()
        .await;
    assert_eq!(after.len(), long.len());
    assert!(after.iter().all(|l| l.timestamp > three));
    // A missing container: one error, then the end.
    let missing: Vec<_> = rt.logs("stevedore-no-such-container", None).collect().await;
    assert!(
        matches!(missing.as_slice(), [Err(RuntimeError::NotFound(_))]),
        "{missing:?}"
    );
}
