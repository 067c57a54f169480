//! The agent against the real Docker engine. The control plane is an
//! in-process fake (tests/common); everything else is real.

mod common;

use common::*;
use std::time::Duration;
use stevedore_api::agent::TaskStatus;
use stevedore_api::ecs::{
    ContainerOverride, NetworkMode, PortMapping, TaskOverride, TaskStopCode, Ulimit, UlimitName,
};
use stevedore_runtime::{labels, PullBehavior};
use tokio::time::Instant;

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_a_task_reports_exit_codes_and_cleans_up() {
    let mut h = Harness::new().await;
    h.config.task_cleanup_wait = Duration::from_secs(2);
    h.start();
    let arn = h.task_arn();
    let mut side = container("side", "trap '' TERM; sleep 300");
    side.essential = Some(false);
    side.stop_timeout = Some(1);
    h.fake
        .assign(task(&arn, vec![container("app", "sleep 2; exit 3"), side]));

    let running = h.fake.wait_status(&arn, "RUNNING", T).await;
    let app = find(&running, "app");
    let id = app.runtime_id.clone().expect("runtimeId");
    assert_eq!(app.last_status.as_deref(), Some("RUNNING"));
    assert!(running.pull_started_at.is_some() && running.pull_stopped_at.is_some());
    assert!(running.started_at.is_some());
    let inspect = docker_inspect(&id);
    let l = &inspect["Config"]["Labels"];
    assert_eq!(l[labels::MANAGED], "true");
    assert_eq!(l[labels::CLUSTER], h.cluster.as_str());
    assert_eq!(l[labels::INSTANCE], h.instance_arn().as_str());
    assert_eq!(l[labels::TASK], arn.as_str());
    assert_eq!(l[labels::CONTAINER], "app");
    let name = inspect["Name"].as_str().unwrap();
    assert!(
        name.starts_with("/stevedore-") && name.contains("-app-"),
        "{name}"
    );

    // The essential container exits 3: the task stops, the side container
    // (which ignores SIGTERM) is killed after its 1 s stopTimeout.
    let stopped = h.fake.wait_status(&arn, "STOPPED", T).await;
    assert_eq!(
        stopped.stop_code,
        Some(TaskStopCode::EssentialContainerExited)
    );
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert_eq!(find(&stopped, "app").exit_code, Some(3));
    assert_eq!(find(&stopped, "side").exit_code, Some(137));
    assert_eq!(
        find(&stopped, "side").last_status.as_deref(),
        Some("STOPPED")
    );
    assert!(stopped.execution_stopped_at.is_some());
    // Status went PENDING → RUNNING → STOPPING → STOPPED, never backwards.
    let statuses: Vec<String> = h
        .fake
        .reports()
        .iter()
        .flat_map(|r| {
            r.tasks
                .iter()
                .filter(|t| t.task_arn == arn)
                .map(|t| t.last_status.as_str().to_string())
        })
        .collect();
    let order = ["PENDING", "RUNNING", "STOPPING", "STOPPED"];
    let ranks: Vec<usize> = statuses
        .iter()
        .map(|s| order.iter().position(|o| o == s).unwrap())
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{statuses:?}");
    assert!(statuses.contains(&"STOPPING".to_string()), "{statuses:?}");

    // Removed after the (short) cleanup delay.
    let deadline = Instant::now() + T;
    while !h.container_ids().is_empty() {
        assert!(
            Instant::now() < deadline,
            "containers not removed: {:?}",
            h.container_ids()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_essential_exit_keeps_the_task_running() {
    let mut h = Harness::new().await;
    h.start();
    let arn = h.task_arn();
    let mut side = container("side", "exit 5");
    side.essential = Some(false);
    h.fake
        .assign(task(&arn, vec![container("app", GRACEFUL), side]));
    let t = h
        .fake
        .wait_for(&arn, "side stopped", T, |t| {
            t.containers
                .iter()
                .any(|c| c.name.as_deref() == Some("side") && c.exit_code.is_some())
        })
        .await;
    assert_eq!(find(&t, "side").exit_code, Some(5));
    assert_eq!(find(&t, "side").last_status.as_deref(), Some("STOPPED"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = h.fake.latest(&arn).unwrap();
    assert_eq!(t.last_status, TaskStatus::Running);
    assert_eq!(find(&t, "app").last_status.as_deref(), Some("RUNNING"));
    assert!(t.stop_code.is_none());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_task_sends_sigterm_then_sigkill() {
    let mut h = Harness::new().await;
    h.start();
    let arn = h.task_arn();
    let mut stubborn = container("stubborn", "trap '' TERM; while true; do sleep 1; done");
    stubborn.stop_timeout = Some(3);
    // STOPSIGNAL SIGUSR1 in the image: docker stop sends it, not SIGTERM.
    let mut usr1 = container("usr1", "trap 'exit 7' USR1; while true; do sleep 1; done");
    usr1.image = Some(BUSYBOX_STOPSIGNAL.into());
    h.fake.assign(task(
        &arn,
        vec![container("graceful", GRACEFUL), stubborn, usr1],
    ));
    h.fake.wait_status(&arn, "RUNNING", T).await;

    let asked = Instant::now();
    h.fake.stop_task(&arn, "UserInitiated", "rollback");
    let stopping = h.fake.wait_status(&arn, "STOPPING", T).await;
    assert_eq!(stopping.stop_code, Some(TaskStopCode::UserInitiated));
    let t = h.fake.wait_status(&arn, "STOPPED", T).await;
    let took = asked.elapsed();
    assert_eq!(t.stop_code, Some(TaskStopCode::UserInitiated));
    assert_eq!(t.stopped_reason.as_deref(), Some("rollback"));
    assert_eq!(find(&t, "graceful").exit_code, Some(0), "SIGTERM handled");
    assert_eq!(
        find(&t, "stubborn").exit_code,
        Some(137),
        "SIGKILL after stopTimeout"
    );
    assert_eq!(
        find(&t, "usr1").exit_code,
        Some(7),
        "the image's STOPSIGNAL"
    );
    assert!(
        took >= Duration::from_secs(3),
        "SIGKILL came before the 3 s stopTimeout: {took:?}"
    );
    // No upper bound on `took`: wait_status's own bound catches a stop that
    // never ends, and a wall-clock ceiling only flakes on a loaded machine.
    // The graceful container did not wait for the stubborn one's timeout.
    let g = docker_inspect(find(&t, "graceful").runtime_id.as_deref().unwrap());
    let s = docker_inspect(find(&t, "stubborn").runtime_id.as_deref().unwrap());
    let finished = |v: &serde_json::Value| v["State"]["FinishedAt"].as_str().unwrap().to_string();
    assert!(finished(&g) < finished(&s));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonexistent_image_fails_to_start() {
    let mut h = Harness::new().await;
    h.config.pull_behavior = PullBehavior::Default;
    h.start();
    let arn = h.task_arn();
    let mut c = container("app", "true");
    c.image = Some(format!(
        "stevedore-test/does-not-exist-{}:latest",
        &arn[arn.len() - 8..]
    ));
    h.fake.assign(task(&arn, vec![c]));
    let t = h
        .fake
        .wait_status(&arn, "STOPPED", Duration::from_secs(60))
        .await;
    assert_eq!(t.stop_code, Some(TaskStopCode::TaskFailedToStart));
    let reason = t.stopped_reason.clone().unwrap();
    assert!(reason.starts_with("CannotPullContainerError: "), "{reason}");
    assert_eq!(find(&t, "app").reason.as_deref(), Some(reason.as_str()));
    assert!(find(&t, "app").runtime_id.is_none());
    assert!(h.container_ids().is_empty());

    // An executable that does not exist: created, cannot start.
    let arn = h.task_arn();
    let mut c = container("app", "true");
    c.command = Some(vec!["/no/such/binary".into()]);
    h.fake.assign(task(&arn, vec![c]));
    let t = h.fake.wait_status(&arn, "STOPPED", T).await;
    assert_eq!(t.stop_code, Some(TaskStopCode::TaskFailedToStart), "{t:#?}");
    let reason = find(&t, "app").reason.clone().unwrap();
    assert!(
        reason.starts_with("CannotStartContainerError: "),
        "{reason}"
    );
    assert_eq!(t.stopped_reason.as_deref(), Some(reason.as_str()));
    assert!(find(&t, "app").runtime_id.is_some());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_and_limits_reach_docker() {
    let mut h = Harness::new().await;
    h.start();
    let arn = h.task_arn();
    let mut c = container("app", "sleep 300");
    c.environment = Some(vec![kv("KEEP", "1"), kv("CHANGE", "old")]);
    c.memory = Some(64);
    c.memory_reservation = Some(32);
    c.cpu = Some(128);
    c.working_directory = Some("/tmp".into());
    c.user = Some("nobody".into());
    c.readonly_root_filesystem = Some(true);
    c.docker_labels = Some([("team".to_string(), "blue".to_string())].into());
    c.ulimits = Some(vec![Ulimit {
        name: Some(UlimitName::Nofile),
        soft_limit: Some(1000),
        hard_limit: Some(2000),
    }]);
    c.stop_timeout = Some(1);
    let mut t = task(&arn, vec![c]);
    t.task_definition.cpu = Some("256".into());
    t.task_definition.memory = Some("512".into());
    t.overrides = Some(TaskOverride {
        container_overrides: Some(vec![ContainerOverride {
            name: Some("app".into()),
            command: Some(vec![
                "sh".into(),
                "-c".into(),
                "echo overridden; sleep 300".into(),
            ]),
            environment: Some(vec![kv("CHANGE", "new"), kv("ADDED", "yes")]),
            cpu: Some(256),
            memory: Some(96),
            memory_reservation: Some(48),
            ..Default::default()
        }]),
        cpu: Some("512".into()),
        ..Default::default()
    });
    h.fake.assign(t);
    let r = h.fake.wait_status(&arn, "RUNNING", T).await;
    let app = find(&r, "app");
    assert_eq!(app.memory.as_deref(), Some("96"));
    assert_eq!(app.cpu.as_deref(), Some("256"));
    let v = docker_inspect(app.runtime_id.as_deref().unwrap());
    let hc = &v["HostConfig"];
    assert_eq!(hc["Memory"], 96 * 1024 * 1024);
    assert_eq!(hc["MemoryReservation"], 48 * 1024 * 1024);
    assert_eq!(hc["CpuShares"], 256);
    assert_eq!(
        hc["NanoCpus"], 500_000_000,
        "task cpu override 512 units = 0.5 vCPU"
    );
    assert_eq!(hc["ReadonlyRootfs"], true);
    assert_eq!(hc["Privileged"], false);
    assert_eq!(hc["Ulimits"][0]["Name"], "nofile");
    assert_eq!(hc["Ulimits"][0]["Soft"], 1000);
    assert_eq!(hc["Ulimits"][0]["Hard"], 2000);
    let cfg = &v["Config"];
    assert_eq!(
        cfg["Cmd"],
        serde_json::json!(["sh", "-c", "echo overridden; sleep 300"])
    );
    let env: Vec<String> = serde_json::from_value(cfg["Env"].clone()).unwrap();
    for want in ["KEEP=1", "CHANGE=new", "ADDED=yes"] {
        assert!(env.contains(&want.to_string()), "{want} not in {env:?}");
    }
    assert!(!env.contains(&"CHANGE=old".to_string()));
    assert_eq!(cfg["WorkingDir"], "/tmp");
    assert_eq!(cfg["User"], "nobody");
    assert_eq!(cfg["Labels"]["team"], "blue");
    assert_eq!(cfg["StopTimeout"], 1);

    // Privileged is refused unless allowed.
    let arn2 = h.task_arn();
    let mut p = container("priv", "true");
    p.privileged = Some(true);
    h.fake.assign(task(&arn2, vec![p]));
    let t = h.fake.wait_status(&arn2, "STOPPED", T).await;
    assert_eq!(t.stop_code, Some(TaskStopCode::TaskFailedToStart));
    assert!(t.stopped_reason.unwrap().contains("privileged"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_host_port_answers_http() {
    let mut h = Harness::new().await;
    h.start();
    let arn = h.task_arn();
    let mut c = container("web", "exec httpd -f -p 8080 -h /www");
    c.port_mappings = Some(vec![PortMapping {
        container_port: Some(8080),
        host_port: Some(0),
        ..Default::default()
    }]);
    h.fake.assign(task(&arn, vec![c]));
    let t = h.fake.wait_status(&arn, "RUNNING", T).await;
    let bindings = find(&t, "web")
        .network_bindings
        .clone()
        .expect("networkBindings");
    let b = bindings
        .iter()
        .find(|b| b.bind_ip.as_deref() == Some("0.0.0.0"))
        .unwrap_or(&bindings[0]);
    assert_eq!(b.container_port, Some(8080));
    let port = b.host_port.unwrap();
    assert!(port > 0 && port != 8080, "dynamic port {port}");
    let body = http_get(&format!("http://127.0.0.1:{port}/"), T).await;
    assert_eq!(body.trim(), "stevedore test image");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awsvpc_tasks_get_their_own_reachable_ip() {
    let mut h = Harness::new().await.with_pause().await;
    h.start();
    let mut ips = Vec::new();
    let mut arns = Vec::new();
    for _ in 0..2 {
        let arn = h.task_arn();
        // Two containers sharing the namespace: the sidecar reaches the web
        // server on localhost.
        let mut web = container("web", "exec httpd -f -p 80 -h /www");
        web.port_mappings = Some(vec![PortMapping {
            container_port: Some(80),
            ..Default::default()
        }]);
        let mut probe = container(
            "probe",
            "sleep 1; wget -q -O - http://127.0.0.1:80/ && sleep 300",
        );
        probe.essential = Some(false);
        probe.stop_timeout = Some(1);
        let mut t = task(&arn, vec![web, probe]);
        t.task_definition.network_mode = Some(NetworkMode::Awsvpc);
        h.fake.assign(t);
        arns.push(arn);
    }
    for arn in &arns {
        let t = h.fake.wait_status(arn, "RUNNING", T).await;
        let att = &t.attachments[0];
        assert_eq!(att.r#type.as_deref(), Some("ElasticNetworkInterface"));
        assert_eq!(att.status.as_deref(), Some("ATTACHED"));
        let ip = att
            .details
            .as_ref()
            .unwrap()
            .iter()
            .find(|d| d.name.as_deref() == Some("privateIPv4Address"))
            .and_then(|d| d.value.clone())
            .expect("privateIPv4Address");
        let web = find(&t, "web");
        assert_eq!(
            web.network_interfaces.as_ref().unwrap()[0]
                .private_ipv4_address
                .as_deref(),
            Some(ip.as_str())
        );
        assert!(web.network_bindings.is_none());
        ips.push(ip);
    }
    assert_ne!(ips[0], ips[1]);
    let regs = h.fake.registrations();
    assert!(regs[0]
        .attributes
        .as_ref()
        .unwrap()
        .iter()
        .any(|a| a.name.as_deref() == Some("ecs.capability.task-eni")));
    // Both use port 80, each on its own IP, reachable from the host.
    for ip in &ips {
        let body = http_get(&format!("http://{ip}:80/"), T).await;
        assert_eq!(body.trim(), "stevedore test image");
    }
    // The probe got an answer over localhost (it would have exited 1).
    tokio::time::sleep(Duration::from_secs(2)).await;
    for arn in &arns {
        let t = h.fake.latest(arn).unwrap();
        assert_eq!(
            find(&t, "probe").last_status.as_deref(),
            Some("RUNNING"),
            "{t:#?}"
        );
    }
    // Stopping releases the pause container last.
    h.fake.stop_task(&arns[0], "UserInitiated", "done");
    let t = h.fake.wait_status(&arns[0], "STOPPED", T).await;
    assert_eq!(t.attachments[0].status.as_deref(), Some("DELETED"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_adopts_containers_and_reports_what_changed() {
    let mut h = Harness::new().await;
    h.start();
    let a = h.task_arn();
    let b = h.task_arn();
    let mut side = container("side", "while true; do sleep 1; done");
    side.essential = Some(false);
    h.fake
        .assign(task(&a, vec![container("app", GRACEFUL), side]));
    h.fake.assign(task(
        &b,
        vec![container("solo", "while true; do sleep 1; done")],
    ));
    let ta = h.fake.wait_status(&a, "RUNNING", T).await;
    let tb = h.fake.wait_status(&b, "RUNNING", T).await;
    let app_id = find(&ta, "app").runtime_id.clone().unwrap();
    let side_id = find(&ta, "side").runtime_id.clone().unwrap();
    let solo_id = find(&tb, "solo").runtime_id.clone().unwrap();
    let started = docker_inspect(&app_id)["State"]["StartedAt"].clone();
    let before = h.container_ids();
    let arn = h.instance_arn();
    let seq = h.fake.last_seq();

    // The agent goes away; meanwhile two containers are killed.
    h.stop().await;
    docker(&["kill", &side_id]);
    docker(&["kill", &solo_id]);

    h.start();
    let tb = h.fake.wait_status(&b, "STOPPED", T).await;
    assert_eq!(find(&tb, "solo").exit_code, Some(137));
    assert_eq!(tb.stop_code, Some(TaskStopCode::EssentialContainerExited));
    let ta = h
        .fake
        .wait_for(&a, "side reported stopped", T, |t| {
            t.containers
                .iter()
                .any(|c| c.name.as_deref() == Some("side") && c.exit_code == Some(137))
        })
        .await;
    assert_eq!(
        ta.last_status,
        TaskStatus::Running,
        "a non-essential exit does not stop the task"
    );
    assert_eq!(
        find(&ta, "app").runtime_id.as_deref(),
        Some(app_id.as_str())
    );

    // Nothing was restarted or recreated.
    assert_eq!(docker_inspect(&app_id)["State"]["StartedAt"], started);
    assert_eq!(docker_inspect(&app_id)["State"]["Running"], true);
    assert_eq!(docker_inspect(&side_id)["State"]["Running"], false);
    assert_eq!(h.container_ids(), before, "no new containers");

    // Same identity, and the report sequence kept growing.
    let regs = h.fake.registrations();
    assert_eq!(regs.len(), 2);
    assert!(regs[0].container_instance_arn.is_none());
    assert_eq!(
        regs[1].container_instance_arn.as_deref(),
        Some(arn.as_str())
    );
    assert!(h.fake.last_seq() > seq);
    assert_eq!(h.fake.stale_reports(), 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_server_outage_and_two_agents_share_the_engine() {
    let mut h1 = Harness::new().await;
    let mut h2 = Harness::new().await;
    h1.start();
    h2.start();
    let a1 = h1.task_arn();
    let a2 = h2.task_arn();
    h1.fake.assign(task(&a1, vec![container("app", GRACEFUL)]));
    h2.fake.assign(task(&a2, vec![container("app", GRACEFUL)]));
    h1.fake.wait_status(&a1, "RUNNING", T).await;
    let t2 = h2.fake.wait_status(&a2, "RUNNING", T).await;

    // Server 1 goes down; its task changes meanwhile; agent 2 is unaffected.
    h1.fake
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let id1 = find(&h1.fake.latest(&a1).unwrap(), "app")
        .runtime_id
        .clone()
        .unwrap();
    docker(&["kill", "--signal", "TERM", &id1]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        h1.fake.latest(&a1).unwrap().last_status,
        TaskStatus::Running,
        "not reported yet"
    );
    h1.fake
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let t1 = h1
        .fake
        .wait_status(&a1, "STOPPED", Duration::from_secs(45))
        .await;
    assert_eq!(find(&t1, "app").exit_code, Some(0));

    let id2 = find(&t2, "app").runtime_id.clone().unwrap();
    assert_eq!(
        docker_inspect(&id2)["State"]["Running"],
        true,
        "agent 1 never touched agent 2's container"
    );
    assert_eq!(
        h2.fake.latest(&a2).unwrap().last_status,
        TaskStatus::Running
    );
    h1.stop().await;
    h2.stop().await;
}
