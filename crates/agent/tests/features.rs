//! Container definition features against the real Docker engine: health
//! checks and HEALTHY dependencies, volumes, Linux parameters. The control
//! plane is the in-process fake (tests/common).

mod common;

use common::*;
use std::time::Duration;
use stevedore_api::agent::TaskStatus;
use stevedore_api::ecs::{
    ContainerCondition, ContainerDependency, DockerVolumeConfiguration, HealthCheck, HealthStatus,
    HostEntry, HostVolumeProperties, KernelCapabilities, LinuxParameters, MountPoint, Scope,
    SystemControl, TaskStopCode, Tmpfs, Volume, VolumeFrom,
};
use stevedore_runtime::labels;

const T: Duration = Duration::from_secs(20);

fn health(cmd: &str, retries: i32, start_period: i32) -> Option<HealthCheck> {
    Some(HealthCheck {
        command: Some(vec!["CMD-SHELL".into(), cmd.into()]),
        interval: Some(1),
        timeout: Some(2),
        retries: Some(retries),
        start_period: Some(start_period),
    })
}

fn depends(on: &str, condition: ContainerCondition) -> Option<Vec<ContainerDependency>> {
    Some(vec![ContainerDependency {
        container_name: Some(on.into()),
        condition: Some(condition),
    }])
}

fn started_ms(c: &stevedore_api::ecs::Container) -> i64 {
    let id = c.runtime_id.clone().expect("runtime id");
    let at = docker(&["inspect", "--format", "{{.State.StartedAt}}", &id]);
    // `YYYY-MM-DDTHH:MM:SS.fffffffffZ` (UTC): milliseconds of the day is
    // enough to compare two starts a few seconds apart.
    let clock = at
        .split('T')
        .nth(1)
        .expect("StartedAt")
        .trim_end_matches('Z');
    let mut parts = clock.split(':');
    let hours: f64 = parts.next().unwrap().parse().unwrap();
    let minutes: f64 = parts.next().unwrap().parse().unwrap();
    let seconds: f64 = parts.next().unwrap().parse().unwrap();
    ((hours * 3600.0 + minutes * 60.0 + seconds) * 1000.0) as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_gate_healthy_dependants_and_set_task_health() {
    let mut h = Harness::new().await;
    h.start();

    // db becomes healthy after ~2 s, then unhealthy 3 s later.
    let mut db = container(
        "db",
        "sleep 2; touch /tmp/ok; sleep 3; rm /tmp/ok; trap 'exit 0' TERM; while true; do sleep 1; done",
    );
    db.health_check = health("test -f /tmp/ok", 1, 20);
    let mut app = container("app", GRACEFUL);
    app.depends_on = depends("db", ContainerCondition::Healthy);
    app.essential = Some(false);
    // Linux parameters and host options, checked in docker inspect below.
    app.linux_parameters = Some(LinuxParameters {
        capabilities: Some(KernelCapabilities {
            add: Some(vec!["NET_ADMIN".into()]),
            drop: Some(vec!["MKNOD".into()]),
        }),
        init_process_enabled: Some(true),
        tmpfs: Some(vec![Tmpfs {
            container_path: Some("/scratch".into()),
            size: Some(8),
            mount_options: Some(vec!["noexec".into()]),
        }]),
        shared_memory_size: Some(64),
        ..Default::default()
    });
    app.system_controls = Some(vec![SystemControl {
        namespace: Some("net.ipv4.ip_forward".into()),
        value: Some("1".into()),
    }]);
    app.extra_hosts = Some(vec![HostEntry {
        hostname: Some("db.internal".into()),
        ip_address: Some("10.9.8.7".into()),
    }]);
    app.hostname = Some("app-host".into());
    let arn = h.task_arn();
    h.fake.assign(task(&arn, vec![db, app]));

    // A dependency that goes UNHEALTHY first can never be met.
    let mut sick = container("sick", GRACEFUL);
    sick.health_check = health("false", 1, 0);
    sick.essential = Some(false);
    let mut waiter = container("waiter", GRACEFUL);
    waiter.depends_on = depends("sick", ContainerCondition::Healthy);
    let sick_arn = h.task_arn();
    h.fake.assign(task(&sick_arn, vec![sick, waiter]));

    let starting = h
        .fake
        .wait_for(&arn, "db running", T, |t| {
            find(t, "db").last_status.as_deref() == Some("RUNNING")
        })
        .await;
    assert_eq!(
        find(&starting, "db").health_status,
        Some(HealthStatus::UnknownValue)
    );
    assert_eq!(starting.health_status, Some(HealthStatus::UnknownValue));
    assert_eq!(
        find(&starting, "app").last_status.as_deref(),
        Some("PENDING")
    );

    let running = h.fake.wait_status(&arn, "RUNNING", T).await;
    let db = find(&running, "db");
    let app = find(&running, "app");
    assert_eq!(db.health_status, Some(HealthStatus::Healthy));
    assert_eq!(running.health_status, Some(HealthStatus::Healthy));
    let gap = started_ms(app) - started_ms(db);
    assert!(
        gap >= 1500,
        "app started {gap} ms after db, before it was healthy"
    );

    let inspect = docker_inspect(app.runtime_id.as_deref().unwrap());
    let hc = &inspect["HostConfig"];
    assert_eq!(hc["CapAdd"], serde_json::json!(["NET_ADMIN"]));
    assert_eq!(hc["CapDrop"], serde_json::json!(["MKNOD"]));
    assert_eq!(hc["Init"], true);
    assert_eq!(hc["Tmpfs"]["/scratch"], "noexec,size=8m");
    assert_eq!(hc["ShmSize"], 64 * 1024 * 1024);
    assert_eq!(hc["Sysctls"]["net.ipv4.ip_forward"], "1");
    assert_eq!(
        hc["ExtraHosts"],
        serde_json::json!(["db.internal:10.9.8.7"])
    );
    assert_eq!(inspect["Config"]["Hostname"], "app-host");

    let unhealthy = h
        .fake
        .wait_for(&arn, "task UNHEALTHY", T, |t| {
            t.health_status == Some(HealthStatus::Unhealthy)
        })
        .await;
    assert_eq!(
        find(&unhealthy, "db").health_status,
        Some(HealthStatus::Unhealthy)
    );
    // A standalone task keeps running whatever its health.
    assert_eq!(unhealthy.last_status, TaskStatus::Running);

    let stopped = h.fake.wait_status(&sick_arn, "STOPPED", T).await;
    assert_eq!(stopped.stop_code, Some(TaskStopCode::TaskFailedToStart));
    let reason = stopped.stopped_reason.clone().unwrap();
    assert!(
        reason.contains("dependency sick is UNHEALTHY (condition HEALTHY)"),
        "{reason}"
    );
    assert!(find(&stopped, "waiter").runtime_id.is_none());

    h.fake.stop_task(&arn, "UserInitiated", "done");
    h.fake.wait_status(&arn, "STOPPED", T).await;
}

fn mount(volume: &str, path: &str, read_only: bool) -> MountPoint {
    MountPoint {
        source_volume: Some(volume.into()),
        container_path: Some(path.into()),
        read_only: Some(read_only),
    }
}

fn shared_volume(name: &str, autoprovision: bool) -> Volume {
    Volume {
        name: Some(name.into()),
        docker_volume_configuration: Some(DockerVolumeConfiguration {
            scope: Some(Scope::Shared),
            autoprovision: Some(autoprovision),
            driver: Some("local".into()),
            labels: Some([("stevedore.test".to_string(), "yes".to_string())].into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn task_volumes(arn: &str) -> String {
    docker(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("label={}={arn}", labels::TASK),
    ])
}

/// Removes the volume, and first the containers that still use it (the
/// harness, dropped later, would remove them too late).
struct RemoveVolume(String);
impl Drop for RemoveVolume {
    fn drop(&mut self) {
        let users = std::process::Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("volume={}", self.0)])
            .output();
        if let Ok(out) = users {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let _ = std::process::Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&ids)
                    .output();
            }
        }
        let _ = std::process::Command::new("docker")
            .args(["volume", "rm", "-f", &self.0])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_bind_task_scoped_and_shared() {
    let mut h = Harness::new().await;
    h.config.task_cleanup_wait = Duration::from_secs(1);
    h.start();
    let shared = format!("stevedore-test-{}", h.cluster);
    let _guard = RemoveVolume(shared.clone());
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("hello"), "from-the-host").unwrap();

    // Task 1: w writes into a task volume and the shared one; r reads both
    // through volumesFrom (read-only) and the bind mount.
    let mut w = container(
        "w",
        "echo scratch-data > /s/y && cp /h/hello /shared/hello && echo shared-data > /shared/f",
    );
    w.essential = Some(false);
    w.mount_points = Some(vec![
        mount("hostdir", "/h", true),
        mount("scratch", "/s", false),
        mount("shared", "/shared", false),
    ]);
    let mut r = container(
        "r",
        "grep -q scratch-data /s/y && grep -q from-the-host /h/hello && grep -q shared-data /shared/f && ! touch /shared/x 2>/dev/null",
    );
    r.depends_on = depends("w", ContainerCondition::Success);
    r.volumes_from = Some(vec![VolumeFrom {
        source_container: Some("w".into()),
        read_only: Some(true),
    }]);
    let arn1 = h.task_arn();
    let mut t1 = task(&arn1, vec![w, r]);
    t1.task_definition.volumes = Some(vec![
        Volume {
            name: Some("hostdir".into()),
            host: Some(HostVolumeProperties {
                source_path: Some(host_dir.path().display().to_string()),
            }),
            ..Default::default()
        },
        Volume {
            name: Some("scratch".into()),
            host: Some(HostVolumeProperties { source_path: None }),
            ..Default::default()
        },
        shared_volume("shared", true),
    ]);
    // The shared volume's Docker name is the volume name.
    let vols = t1.task_definition.volumes.as_mut().unwrap();
    vols[2].name = Some(shared.clone());
    t1.task_definition.container_definitions.as_mut().unwrap()[0]
        .mount_points
        .as_mut()
        .unwrap()[2]
        .source_volume = Some(shared.clone());
    h.fake.assign(t1);
    let stopped = h.fake.wait_status(&arn1, "STOPPED", T).await;
    assert_eq!(find(&stopped, "w").exit_code, Some(0));
    assert_eq!(find(&stopped, "r").exit_code, Some(0), "{stopped:#?}");
    // Cleanup removes the task-scoped volume, not the shared one.
    let deadline = tokio::time::Instant::now() + T;
    while !task_volumes(&arn1).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "task volume left");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("name=^{shared}$")
        ]),
        shared
    );

    // Task 2 reuses the shared volume without autoprovision.
    let mut reader = container("reader", "grep -q shared-data /data/f");
    reader.mount_points = Some(vec![mount(&shared, "/data", true)]);
    let arn2 = h.task_arn();
    let mut t2 = task(&arn2, vec![reader]);
    t2.task_definition.volumes = Some(vec![shared_volume(&shared, false)]);
    h.fake.assign(t2);
    let stopped = h.fake.wait_status(&arn2, "STOPPED", T).await;
    assert_eq!(find(&stopped, "reader").exit_code, Some(0), "{stopped:#?}");

    // Task 3: a missing shared volume without autoprovision fails to start.
    let missing = format!("{shared}-missing");
    let mut c = container("c", "true");
    c.mount_points = Some(vec![mount(&missing, "/m", false)]);
    let arn3 = h.task_arn();
    let mut t3 = task(&arn3, vec![c]);
    t3.task_definition.volumes = Some(vec![shared_volume(&missing, false)]);
    h.fake.assign(t3);
    let stopped = h.fake.wait_status(&arn3, "STOPPED", T).await;
    assert_eq!(stopped.stop_code, Some(TaskStopCode::TaskFailedToStart));
    let reason = stopped.stopped_reason.clone().unwrap();
    assert!(
        reason.contains(&missing) && reason.contains("autoprovision is false"),
        "{reason}"
    );
}
