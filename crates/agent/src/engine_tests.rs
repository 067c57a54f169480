//! Unit tests of the engine's decisions: inputs in, actions and reports out.

use super::*;
use std::collections::BTreeMap;
use stevedore_api::ecs::{
    ContainerDefinition, ContainerDependency, LaunchType, NetworkMode, PortMapping, TaskDefinition,
};
use stevedore_runtime::PortBinding;

const ARN: &str =
    "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef";
const INSTANCE: &str = "arn:aws:ecs:us-east-1:000000000000:container-instance/default/ci";

fn cfg() -> EngineConfig {
    EngineConfig {
        ctx: SpecContext {
            cluster: "default".into(),
            instance_arn: INSTANCE.into(),
            name_suffix: "s1".into(),
            allow_privileged: false,
            default_stop_timeout: Duration::from_secs(30),
            pause_image: Some("stevedore/pause:1".into()),
            region: "us-east-1".into(),
            log_drivers: vec!["json-file".into()],
        },
        pull_behavior: PullBehavior::Default,
        cleanup_wait: Duration::from_secs(3600),
    }
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_secs(1_700_000_000 + secs)
}

fn def(name: &str, essential: bool) -> ContainerDefinition {
    ContainerDefinition {
        name: Some(name.into()),
        image: Some(format!("img-{name}")),
        essential: Some(essential),
        memory: Some(64),
        ..Default::default()
    }
}

fn assigned(defs: Vec<ContainerDefinition>) -> AssignedTask {
    AssignedTask {
        task_arn: ARN.into(),
        desired_status: TaskStatus::Running,
        task_definition: TaskDefinition {
            family: Some("web".into()),
            revision: Some(1),
            container_definitions: Some(defs),
            ..Default::default()
        },
        overrides: None,
        launch_type: LaunchType::Ec2,
        stopped_reason: None,
        stop_code: None,
    }
}

fn poll(tasks: Vec<AssignedTask>, revision: i64) -> PollTasksResponse {
    PollTasksResponse { revision, tasks }
}

fn state(id: &str, container: &str, status: Status, exit: Option<i64>) -> ContainerState {
    ContainerState {
        id: id.into(),
        name: format!("n-{container}"),
        labels: BTreeMap::from([
            (labels::TASK.to_string(), ARN.to_string()),
            (labels::CONTAINER.to_string(), container.to_string()),
        ]),
        status,
        exit_code: exit,
        oom_killed: false,
        error: None,
        started_at: (status != Status::Created).then(|| SystemTime::from(t(1))),
        finished_at: (status == Status::Exited).then(|| SystemTime::from(t(2))),
        ports: Vec::new(),
        ips: BTreeMap::new(),
        image_id: "sha256:x".into(),
        health: None,
    }
}

use std::time::SystemTime;

fn launches(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Launch { container, .. } => Some(container.clone()),
            _ => None,
        })
        .collect()
}

fn stops(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Stop { container, .. } => Some(container.clone()),
            _ => None,
        })
        .collect()
}

fn launched(e: &mut Engine, container: &str, id: &str, now: Timestamp) {
    e.apply_outcome(
        Outcome::Created {
            task_arn: ARN.into(),
            container: container.into(),
            id: id.into(),
        },
        now,
    );
    e.apply_outcome(
        Outcome::Launched {
            task_arn: ARN.into(),
            container: container.into(),
            result: Ok(state(id, container, Status::Running, None)),
        },
        now,
    );
}

fn pulled(e: &mut Engine, now: Timestamp) {
    e.apply_outcome(
        Outcome::Pulled {
            task_arn: ARN.into(),
            result: Ok(vec![Some("img@sha256:1".into()), None]),
        },
        now,
    );
}

fn report(e: &mut Engine) -> ObservedTask {
    let (req, covered) = e.build_report("default").expect("something to report");
    e.report_accepted(&covered);
    req.tasks
        .into_iter()
        .find(|t| t.task_arn == ARN)
        .expect("task reported")
}

/// Pull, create and start two containers: the happy path.
fn running_engine(defs: Vec<ContainerDefinition>) -> Engine {
    let names: Vec<String> = defs.iter().map(|d| d.name.clone().unwrap()).collect();
    let mut e = Engine::new(cfg(), None);
    e.apply_poll(&poll(vec![assigned(defs)], 1), t(0));
    let a = e.step(t(0));
    assert!(
        matches!(&a[..], [Action::Pull { images, .. }] if images.len() == names.len()),
        "{a:?}"
    );
    pulled(&mut e, t(1));
    let a = e.step(t(1));
    assert_eq!(launches(&a), names);
    for (i, n) in names.iter().enumerate() {
        launched(&mut e, n, &format!("id{i}"), t(2));
    }
    assert!(e.step(t(2)).is_empty());
    e
}

#[test]
fn happy_path_to_running() {
    let mut e = Engine::new(cfg(), None);
    e.apply_poll(
        &poll(
            vec![assigned(vec![def("app", true), def("side", false)])],
            1,
        ),
        t(0),
    );
    assert!(e.take_dirty(), "a new task is checkpointed");
    let rec = e.task(ARN).unwrap();
    assert_eq!(
        rec.containers[0].docker_name,
        "stevedore-0123456789abcdef0123456789abcdef-app-s1"
    );
    let a = e.step(t(0));
    assert_eq!(
        a,
        vec![Action::Pull {
            task_arn: ARN.into(),
            images: vec!["img-app".into(), "img-side".into()],
            behavior: PullBehavior::Default
        }]
    );
    assert!(
        e.step(t(0)).is_empty(),
        "the pull is in flight: nothing twice"
    );
    let o = report(&mut e);
    assert_eq!(o.last_status, TaskStatus::Pending);
    assert_eq!(o.pull_started_at, Some(t(0)));
    assert_eq!(o.containers[0].last_status.as_deref(), Some("PENDING"));

    pulled(&mut e, t(1));
    let a = e.step(t(1));
    assert_eq!(launches(&a), ["app", "side"]);
    match &a[0] {
        Action::Launch {
            spec,
            existing_id,
            network,
            ..
        } => {
            assert_eq!(spec.image, "img-app");
            assert_eq!(spec.memory_mib, Some(64));
            assert!(existing_id.is_none() && network.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert!(e.step(t(1)).is_empty());
    launched(&mut e, "app", "id-app", t(2));
    assert_eq!(e.step(t(2)), vec![]);
    assert_eq!(
        report(&mut e).last_status,
        TaskStatus::Pending,
        "one container still starting"
    );
    let mut s = state("id-side", "side", Status::Running, None);
    s.ports = vec![PortBinding {
        container_port: 80,
        host_port: 49153,
        host_ip: "0.0.0.0".into(),
        protocol: Protocol::Tcp,
    }];
    e.apply_outcome(
        Outcome::Launched {
            task_arn: ARN.into(),
            container: "side".into(),
            result: Ok(s),
        },
        t(3),
    );
    e.step(t(3));
    let o = report(&mut e);
    assert_eq!(o.last_status, TaskStatus::Running);
    assert_eq!(o.started_at, Some(t(3)));
    assert_eq!(o.pull_stopped_at, Some(t(1)));
    assert_eq!(o.containers[0].runtime_id.as_deref(), Some("id-app"));
    assert_eq!(
        o.containers[0].image_digest.as_deref(),
        Some("img@sha256:1")
    );
    assert_eq!(o.containers[0].memory.as_deref(), Some("64"));
    assert_eq!(o.containers[1].last_status.as_deref(), Some("RUNNING"));
    let b = &o.containers[1].network_bindings.as_ref().unwrap()[0];
    assert_eq!(b.host_port, Some(49153));
    assert_eq!(b.container_port, Some(80));
    assert_eq!(b.bind_ip.as_deref(), Some("0.0.0.0"));
    assert!(o.stop_code.is_none());
    assert!(!e.has_unreported());
    // A repeated observation changes nothing and reports nothing.
    e.apply_state(&state("id-app", "app", Status::Running, None), t(4));
    e.step(t(4));
    assert!(!e.has_unreported());
}

#[test]
fn essential_exit_stops_the_rest() {
    let mut e = running_engine(vec![def("app", true), def("side", false)]);
    report(&mut e);
    e.apply_state(&state("id0", "app", Status::Exited, Some(1)), t(10));
    let a = e.step(t(10));
    assert_eq!(stops(&a), ["side"]);
    match &a[0] {
        Action::Stop { id, timeout, .. } => {
            assert_eq!(id, "id1");
            assert_eq!(*timeout, Duration::from_secs(30));
        }
        other => panic!("{other:?}"),
    }
    let o = report(&mut e);
    assert_eq!(o.last_status, TaskStatus::Stopping);
    assert_eq!(o.stop_code, Some(TaskStopCode::EssentialContainerExited));
    assert_eq!(
        o.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert_eq!(o.execution_stopped_at, Some(t(10)));
    assert_eq!(o.containers[0].exit_code, Some(1));
    assert_eq!(o.containers[0].last_status.as_deref(), Some("STOPPED"));
    e.apply_outcome(
        Outcome::Stopped {
            task_arn: ARN.into(),
            container: "side".into(),
            result: Ok(Some(state("id1", "side", Status::Exited, Some(143)))),
        },
        t(11),
    );
    e.step(t(11));
    let o = report(&mut e);
    assert_eq!(o.last_status, TaskStatus::Stopped);
    assert_eq!(o.containers[1].exit_code, Some(143));
    assert_eq!(o.stop_code, Some(TaskStopCode::EssentialContainerExited));
}

#[test]
fn non_essential_exit_keeps_the_task_running() {
    let mut e = running_engine(vec![def("app", true), def("side", false)]);
    report(&mut e);
    e.apply_state(&state("id1", "side", Status::Exited, Some(3)), t(10));
    assert!(e.step(t(10)).is_empty());
    let o = report(&mut e);
    assert_eq!(o.last_status, TaskStatus::Running);
    assert_eq!(o.containers[1].last_status.as_deref(), Some("STOPPED"));
    assert_eq!(o.containers[1].exit_code, Some(3));
    assert!(o.stop_code.is_none());
    // A stale inspect saying "running" cannot revive it.
    e.apply_state(&state("id1", "side", Status::Running, None), t(11));
    assert_eq!(e.task(ARN).unwrap().containers[1].status, CStatus::Stopped);
}

#[test]
fn pull_failure_stops_the_task() {
    let mut e = Engine::new(cfg(), None);
    e.apply_poll(&poll(vec![assigned(vec![def("app", true)])], 1), t(0));
    e.step(t(0));
    let reason = "CannotPullContainerError: pull image img-app: no such host";
    e.apply_outcome(
        Outcome::Pulled {
            task_arn: ARN.into(),
            result: Err(reason.into()),
        },
        t(1),
    );
    assert!(e.step(t(1)).is_empty(), "nothing is created");
    let o = report(&mut e);
    assert_eq!(o.last_status, TaskStatus::Stopped);
    assert_eq!(o.stop_code, Some(TaskStopCode::TaskFailedToStart));
    assert_eq!(o.stopped_reason.as_deref(), Some(reason));
    assert_eq!(o.containers[0].reason.as_deref(), Some(reason));
    assert_eq!(o.containers[0].last_status.as_deref(), Some("STOPPED"));
    assert_eq!(o.pull_stopped_at, Some(t(1)));
}

#[test]
fn create_failure_stops_the_task_and_its_other_containers() {
    let mut e = Engine::new(cfg(), None);
    e.apply_poll(
        &poll(
            vec![assigned(vec![def("side", false), def("app", true)])],
            1,
        ),
        t(0),
    );
    e.step(t(0));
    pulled(&mut e, t(0));
    e.step(t(0));
    launched(&mut e, "side", "id-side", t(1));
    let reason = "CannotCreateContainerError: container x (image img-app): bad";
    e.apply_outcome(
        Outcome::Launched {
            task_arn: ARN.into(),
            container: "app".into(),
            result: Err((reason.into(), None)),
        },
        t(1),
    );
    let a = e.step(t(1));
    assert_eq!(stops(&a), ["side"]);
    let o = report(&mut e);
    assert_eq!(o.stop_code, Some(TaskStopCode::TaskFailedToStart));
    assert_eq!(o.stopped_reason.as_deref(), Some(reason));
    assert_eq!(o.containers[1].reason.as_deref(), Some(reason));
    assert!(o.started_at.is_none());
}

#[test]
fn refused_definitions_stop_at_once() {
    let mut d = def("app", true);
    d.privileged = Some(true);
    let mut e = Engine::new(cfg(), None);
    e.apply_poll(&poll(vec![assigned(vec![d])], 1), t(0));
    assert!(e.step(t(0)).is_empty());
    let o = report(&mut e);
    assert_eq!(o.last_status, TaskStatus::Stopped);
    assert_eq!(o.stop_code, Some(TaskStopCode::TaskFailedToStart));
    assert!(o.stopped_reason.unwrap().contains("privileged"));
    assert!(o.containers[0]
        .reason
        .as_ref()
        .unwrap()
        .starts_with("CannotCreateContainerError: "));
}

#[test]
fn server_stop_goes_in_reverse_dependency_order() {
    let mut app = def("app", true);
    app.depends_on = Some(vec![ContainerDependency {
        container_name: Some("db".into()),
        condition: Some(stevedore_api::ecs::ContainerCondition::Start),
    }]);
    app.stop_timeout = Some(2);
    let mut e = Engine::new(cfg(), None);
    e.apply_poll(&poll(vec![assigned(vec![def("db", true), app])], 1), t(0));
    e.step(t(0));
    pulled(&mut e, t(0));
    assert_eq!(launches(&e.step(t(0))), ["db"], "app waits for db to start");
    launched(&mut e, "db", "id-db", t(1));
    assert_eq!(launches(&e.step(t(1))), ["app"]);
    launched(&mut e, "app", "id-app", t(2));
    e.step(t(2));
    assert_eq!(report(&mut e).last_status, TaskStatus::Running);

    let mut stop = assigned(vec![]);
    stop.desired_status = TaskStatus::Stopped;
    stop.stop_code = Some("UserInitiated".into());
    stop.stopped_reason = Some("rollback".into());
    e.apply_poll(&poll(vec![stop], 2), t(3));
    let a = e.step(t(3));
    assert_eq!(stops(&a), ["app"], "db waits for app");
    assert!(matches!(&a[0], Action::Stop { timeout, .. } if *timeout == Duration::from_secs(2)));
    let o = report(&mut e);
    assert_eq!(o.last_status, TaskStatus::Stopping);
    assert_eq!(o.stop_code, Some(TaskStopCode::UserInitiated));
    assert_eq!(o.stopped_reason.as_deref(), Some("rollback"));
    e.apply_outcome(
        Outcome::Stopped {
            task_arn: ARN.into(),
            container: "app".into(),
            result: Ok(Some(state("id-app", "app", Status::Exited, Some(137)))),
        },
        t(5),
    );
    assert_eq!(stops(&e.step(t(5))), ["db"]);
    e.apply_outcome(
        Outcome::Stopped {
            task_arn: ARN.into(),
            container: "db".into(),
            result: Ok(Some(state("id-db", "db", Status::Exited, Some(0)))),
        },
        t(6),
    );
    e.step(t(6));
    let o = report(&mut e);
    assert_eq!(o.last_status, TaskStatus::Stopped);
    assert_eq!(
        o.stop_code,
        Some(TaskStopCode::UserInitiated),
        "the essential rule does not overwrite"
    );
    assert_eq!(o.containers[1].exit_code, Some(137));
}

#[test]
fn stop_before_start_never_creates() {
    let mut e = Engine::new(cfg(), None);
    let mut a = assigned(vec![def("app", true)]);
    a.desired_status = TaskStatus::Stopped;
    a.stop_code = Some("UserInitiated".into());
    e.apply_poll(&poll(vec![a.clone()], 1), t(0));
    assert!(e.step(t(0)).is_empty());
    let o = report(&mut e);
    assert_eq!(o.last_status, TaskStatus::Stopped);
    assert_eq!(o.containers[0].last_status.as_deref(), Some("STOPPED"));
    assert!(o.containers[0].runtime_id.is_none());

    // Stopped while the pull is in flight: the pull result is ignored.
    let mut e = Engine::new(cfg(), None);
    a.desired_status = TaskStatus::Running;
    e.apply_poll(&poll(vec![a.clone()], 1), t(0));
    e.step(t(0));
    a.desired_status = TaskStatus::Stopped;
    e.apply_poll(&poll(vec![a], 2), t(1));
    e.step(t(1));
    assert!(e.task(ARN).unwrap().is_stopped());
    pulled(&mut e, t(2));
    assert!(e.step(t(2)).is_empty());
}

#[test]
fn depends_on_success_and_failure() {
    let mut app = def("app", true);
    app.depends_on = Some(vec![ContainerDependency {
        container_name: Some("init".into()),
        condition: Some(stevedore_api::ecs::ContainerCondition::Success),
    }]);
    let tasks = vec![assigned(vec![def("init", false), app])];

    // init exits 0: app starts.
    let mut e = Engine::new(cfg(), None);
    e.apply_poll(&poll(tasks.clone(), 1), t(0));
    e.step(t(0));
    pulled(&mut e, t(0));
    assert_eq!(launches(&e.step(t(0))), ["init"]);
    launched(&mut e, "init", "id-init", t(1));
    assert!(launches(&e.step(t(1))).is_empty());
    e.apply_state(&state("id-init", "init", Status::Exited, Some(0)), t(2));
    assert_eq!(launches(&e.step(t(2))), ["app"]);
    launched(&mut e, "app", "id-app", t(3));
    e.step(t(3));
    assert_eq!(report(&mut e).last_status, TaskStatus::Running);

    // init exits 1: app can never start; the task fails to start.
    let mut e = Engine::new(cfg(), None);
    e.apply_poll(&poll(tasks, 1), t(0));
    e.step(t(0));
    pulled(&mut e, t(0));
    e.step(t(0));
    launched(&mut e, "init", "id-init", t(1));
    e.apply_state(&state("id-init", "init", Status::Exited, Some(1)), t(2));
    assert!(e.step(t(2)).is_empty());
    let o = report(&mut e);
    assert_eq!(o.last_status, TaskStatus::Stopped);
    assert_eq!(o.stop_code, Some(TaskStopCode::TaskFailedToStart));
    assert_eq!(o.containers[1].exit_code, Some(DEPENDENCY_EXIT_CODE));
    let reason = o.containers[1].reason.clone().unwrap();
    assert!(
        reason.starts_with("CannotStartContainerError: "),
        "{reason}"
    );
    assert!(reason.contains("exited with code 1"), "{reason}");
}

#[test]
fn start_timeout_gives_up_on_a_dependency() {
    let mut init = def("init", false);
    init.start_timeout = Some(5);
    let mut app = def("app", true);
    app.depends_on = Some(vec![ContainerDependency {
        container_name: Some("init".into()),
        condition: Some(stevedore_api::ecs::ContainerCondition::Complete),
    }]);
    let mut e = Engine::new(cfg(), None);
    e.apply_poll(&poll(vec![assigned(vec![init, app])], 1), t(0));
    e.step(t(0));
    pulled(&mut e, t(0));
    e.step(t(0));
    launched(&mut e, "init", "id-init", t(1));
    e.step(t(1));
    // init started at t(1) (see `state`): the deadline is t(6).
    assert_eq!(e.next_deadline(), Some(t(6)));
    assert!(e.step(t(5)).is_empty());
    assert!(e.task(ARN).unwrap().stop.is_none());
    let a = e.step(t(6));
    assert_eq!(stops(&a), ["init"]);
    let rec = e.task(ARN).unwrap();
    assert_eq!(
        rec.stop.as_ref().unwrap().code,
        Some(TaskStopCode::TaskFailedToStart)
    );
    assert!(rec.containers[1]
        .reason
        .as_ref()
        .unwrap()
        .contains("startTimeout"));
}

#[test]
fn awsvpc_pause_first_and_reported_ip() {
    let mut app = def("app", true);
    app.port_mappings = Some(vec![PortMapping {
        container_port: Some(80),
        ..Default::default()
    }]);
    let mut a = assigned(vec![app]);
    a.task_definition.network_mode = Some(NetworkMode::Awsvpc);
    let mut e = Engine::new(cfg(), None);
    e.apply_poll(&poll(vec![a], 1), t(0));
    e.step(t(0));
    pulled(&mut e, t(0));
    let acts = e.step(t(0));
    assert_eq!(launches(&acts), [spec::PAUSE_CONTAINER_NAME]);
    match &acts[0] {
        Action::Launch { network, spec, .. } => {
            assert_eq!(network.as_deref(), Some("stevedore-default"));
            assert_eq!(spec.image, "stevedore/pause:1");
        }
        other => panic!("{other:?}"),
    }
    let mut ps = state(
        "id-pause",
        spec::PAUSE_CONTAINER_NAME,
        Status::Running,
        None,
    );
    ps.ips = BTreeMap::from([("stevedore-default".to_string(), "172.30.0.5".to_string())]);
    e.apply_outcome(
        Outcome::Launched {
            task_arn: ARN.into(),
            container: spec::PAUSE_CONTAINER_NAME.into(),
            result: Ok(ps),
        },
        t(1),
    );
    let acts = e.step(t(1));
    assert_eq!(launches(&acts), ["app"]);
    match &acts[0] {
        Action::Launch { spec, .. } => assert!(matches!(
            &spec.network,
            stevedore_runtime::NetworkSpec::Container(n) if n.ends_with(".pause")
        )),
        other => panic!("{other:?}"),
    }
    launched(&mut e, "app", "id-app", t(2));
    e.step(t(2));
    let o = report(&mut e);
    assert_eq!(o.last_status, TaskStatus::Running);
    assert_eq!(
        o.containers.len(),
        1,
        "the pause container is not reported as a task container"
    );
    let att = &o.attachments[0];
    assert_eq!(att.r#type.as_deref(), Some("ElasticNetworkInterface"));
    assert_eq!(att.status.as_deref(), Some("ATTACHED"));
    assert_eq!(
        att.id.as_deref(),
        Some("01234567-89ab-cdef-0123-456789abcdef")
    );
    let d = &att.details.as_ref().unwrap()[0];
    assert_eq!(d.name.as_deref(), Some("privateIPv4Address"));
    assert_eq!(d.value.as_deref(), Some("172.30.0.5"));
    let ni = &o.containers[0].network_interfaces.as_ref().unwrap()[0];
    assert_eq!(ni.private_ipv4_address.as_deref(), Some("172.30.0.5"));
    assert!(o.containers[0].network_bindings.is_none());

    // Stop: the app first, the pause container last.
    e.apply_state(&state("id-app", "app", Status::Exited, Some(0)), t(3));
    assert_eq!(stops(&e.step(t(3))), [spec::PAUSE_CONTAINER_NAME]);
    assert_eq!(report(&mut e).last_status, TaskStatus::Deprovisioning);
}

#[test]
fn restart_adopts_without_restarting() {
    let mut e = running_engine(vec![def("app", true), def("side", false)]);
    report(&mut e);
    let seq = e.seq();
    let cp = e.checkpoint();
    // Through JSON, as on disk.
    let cp: Checkpoint = serde_json::from_slice(&serde_json::to_vec(&cp).unwrap()).unwrap();
    assert_eq!(cp.seq, seq);

    // Both still running: nothing to do.
    let mut e2 = Engine::new(cfg(), Some(cp.clone()));
    let gen = e2.generation();
    e2.apply_resync(
        &[
            state("id0", "app", Status::Running, None),
            state("id1", "side", Status::Running, None),
        ],
        gen,
        t(20),
    );
    assert!(e2.step(t(20)).is_empty(), "no container is started again");
    let (req, _) = e2.build_report("default").unwrap();
    assert!(req.seq > seq, "the sequence keeps growing across restarts");
    assert_eq!(
        req.tasks[0].last_status,
        TaskStatus::Running,
        "reported again after a restart"
    );

    // The essential container exited while the agent was down; the other
    // vanished.
    let mut e3 = Engine::new(cfg(), Some(cp));
    let gen = e3.generation();
    e3.apply_resync(&[state("id0", "app", Status::Exited, Some(7))], gen, t(20));
    let a = e3.step(t(20));
    assert!(launches(&a).is_empty() && stops(&a).is_empty(), "{a:?}");
    let o = report(&mut e3);
    assert_eq!(o.last_status, TaskStatus::Stopped);
    assert_eq!(o.containers[0].exit_code, Some(7));
    assert_eq!(o.stop_code, Some(TaskStopCode::EssentialContainerExited));
    assert!(o.containers[1]
        .reason
        .as_ref()
        .unwrap()
        .contains("removed outside the agent"));
}

#[test]
fn crash_between_checkpoint_and_create() {
    let mut e = Engine::new(cfg(), None);
    e.apply_poll(&poll(vec![assigned(vec![def("app", true)])], 1), t(0));
    e.step(t(0));
    pulled(&mut e, t(0));
    assert_eq!(launches(&e.step(t(0))), ["app"]);
    let cp = e.checkpoint();

    // The container was created (labels carry the task) but not started.
    let mut e2 = Engine::new(cfg(), Some(cp.clone()));
    let gen = e2.generation();
    e2.apply_resync(&[state("idx", "app", Status::Created, None)], gen, t(1));
    let a = e2.step(t(1));
    match &a[..] {
        [Action::Launch { existing_id, .. }] => assert_eq!(existing_id.as_deref(), Some("idx")),
        other => panic!("{other:?}"),
    }
    // Not created at all: create it.
    let mut e3 = Engine::new(cfg(), Some(cp));
    let gen = e3.generation();
    e3.apply_resync(&[], gen, t(1));
    match &e3.step(t(1))[..] {
        [Action::Launch {
            existing_id: None, ..
        }] => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn resync_does_not_miss_or_invent() {
    let mut e = running_engine(vec![def("app", true)]);
    report(&mut e);
    // A list started before the container was known cannot prove it gone.
    let mut e2 = Engine::new(cfg(), None);
    e2.apply_poll(&poll(vec![assigned(vec![def("app", true)])], 1), t(0));
    let early = e2.generation();
    e2.step(t(0));
    pulled(&mut e2, t(0));
    e2.step(t(0));
    launched(&mut e2, "app", "id-app", t(1));
    e2.apply_resync(&[], early, t(2));
    assert_eq!(e2.task(ARN).unwrap().containers[0].status, CStatus::Running);
    // A later one can: the container was removed behind our back.
    let gen = e.generation();
    e.apply_resync(&[], gen, t(3));
    e.step(t(3));
    let o = report(&mut e);
    assert_eq!(o.last_status, TaskStatus::Stopped);
    // A missed die event is caught by the resync.
    let mut e = running_engine(vec![def("app", true)]);
    let gen = e.generation();
    e.apply_resync(&[state("id0", "app", Status::Exited, Some(2))], gen, t(4));
    e.step(t(4));
    assert_eq!(report(&mut e).containers[0].exit_code, Some(2));
}

#[test]
fn cleanup_after_the_delay_then_forget() {
    let mut e = running_engine(vec![def("app", true)]);
    e.apply_state(&state("id0", "app", Status::Exited, Some(0)), t(10));
    e.step(t(10));
    report(&mut e);
    assert_eq!(e.next_deadline(), Some(t(3610)));
    assert!(e.step(t(3609)).is_empty());
    let a = e.step(t(3610));
    assert_eq!(
        a,
        vec![Action::Remove {
            task_arn: ARN.into(),
            ids: vec!["id0".into()],
            volumes: vec![],
        }]
    );
    assert!(e.step(t(3611)).is_empty(), "removal in flight");
    assert_eq!(e.next_deadline(), None, "no busy wake-up while removing");
    e.apply_outcome(
        Outcome::Removed {
            task_arn: ARN.into(),
            result: Ok(()),
        },
        t(3612),
    );
    assert!(e.task(ARN).unwrap().removed);
    assert!(!e.has_unreported(), "removal changes nothing reported");
    // Still assigned: kept (its report stays describable).
    e.apply_poll(&poll(vec![assigned(vec![def("app", true)])], 5), t(3613));
    assert!(e.task(ARN).is_some());
    // No longer assigned: forgotten.
    e.apply_poll(&poll(vec![], 6), t(3614));
    assert!(e.task(ARN).is_none());
}

#[test]
fn unassigned_running_task_is_stopped() {
    let mut e = running_engine(vec![def("app", true)]);
    report(&mut e);
    e.apply_poll(&poll(vec![], 9), t(5));
    assert_eq!(stops(&e.step(t(5))), ["app"]);
    let o = report(&mut e);
    assert_eq!(o.stopped_reason.as_deref(), Some(REASON_UNASSIGNED));
}

#[test]
fn stop_failures_are_retried_later() {
    let mut e = running_engine(vec![def("app", true)]);
    let mut stop = assigned(vec![def("app", true)]);
    stop.desired_status = TaskStatus::Stopped;
    e.apply_poll(&poll(vec![stop], 2), t(5));
    assert_eq!(stops(&e.step(t(5))), ["app"]);
    e.apply_outcome(
        Outcome::Stopped {
            task_arn: ARN.into(),
            container: "app".into(),
            result: Err("CannotStopContainerError: boom".into()),
        },
        t(6),
    );
    assert!(e.step(t(6)).is_empty());
    assert_eq!(e.next_deadline(), Some(t(11)));
    assert_eq!(stops(&e.step(t(11))), ["app"]);
}

#[test]
fn reports_sequence_and_resend() {
    let mut e = Engine::new(cfg(), None);
    e.apply_poll(&poll(vec![assigned(vec![def("app", true)])], 1), t(0));
    e.step(t(0));
    e.take_dirty();
    let (r1, _c1) = e.build_report("default").unwrap();
    assert!(e.take_dirty(), "a new seq is checkpointed before sending");
    assert_eq!(e.checkpoint().seq, r1.seq);
    // Not accepted (send failed): still unreported, next seq is higher.
    assert!(e.has_unreported());
    let (r2, c2) = e.build_report("default").unwrap();
    assert!(r2.seq > r1.seq);
    assert_eq!(r2.container_instance_arn, INSTANCE);
    e.report_accepted(&c2);
    assert!(!e.has_unreported());
    assert!(e.build_report("default").is_none());
    e.report_all_again();
    assert!(e.has_unreported());
    e.skip_seq_to(1_000_000);
    assert_eq!(e.build_report("default").unwrap().0.seq, 1_000_001);
}

#[test]
fn oom_is_reported() {
    let mut e = running_engine(vec![def("app", true)]);
    let mut s = state("id0", "app", Status::Exited, Some(137));
    s.oom_killed = true;
    e.apply_state(&s, t(3));
    e.step(t(3));
    let o = report(&mut e);
    assert_eq!(o.containers[0].reason.as_deref(), Some(REASON_OOM));
    assert_eq!(o.containers[0].exit_code, Some(137));
}

#[test]
fn host_mode_bindings_are_static() {
    let mut d = def("app", true);
    d.port_mappings = Some(vec![PortMapping {
        container_port: Some(8080),
        ..Default::default()
    }]);
    let mut a = assigned(vec![d]);
    a.task_definition.network_mode = Some(NetworkMode::Host);
    let mut e = Engine::new(cfg(), None);
    e.apply_poll(&poll(vec![a], 1), t(0));
    e.step(t(0));
    assert!(
        report(&mut e).containers[0].network_bindings.is_none(),
        "not before it runs"
    );
    pulled(&mut e, t(0));
    e.step(t(0));
    launched(&mut e, "app", "id", t(1));
    e.step(t(1));
    let o = report(&mut e);
    let b = &o.containers[0].network_bindings.as_ref().unwrap()[0];
    assert_eq!((b.container_port, b.host_port), (Some(8080), Some(8080)));
}

fn with_health(mut c: ContainerDefinition) -> ContainerDefinition {
    c.health_check = Some(stevedore_api::ecs::HealthCheck {
        command: Some(vec!["CMD-SHELL".into(), "true".into()]),
        ..Default::default()
    });
    c
}

fn healthy(id: &str, container: &str, h: stevedore_runtime::Health) -> ContainerState {
    let mut s = state(id, container, Status::Running, None);
    s.health = Some(h);
    s
}

#[test]
fn health_gates_dependants_and_sets_task_health() {
    use stevedore_api::ecs::HealthStatus;
    use stevedore_runtime::Health;
    let mut app = def("app", true);
    app.depends_on = Some(vec![ContainerDependency {
        container_name: Some("db".into()),
        condition: Some(stevedore_api::ecs::ContainerCondition::Healthy),
    }]);
    let tasks = vec![assigned(vec![with_health(def("db", true)), app])];
    let mut e = Engine::new(cfg(), None);
    e.apply_poll(&poll(tasks.clone(), 1), t(0));
    e.step(t(0));
    pulled(&mut e, t(0));
    assert_eq!(launches(&e.step(t(0))), ["db"]);
    launched(&mut e, "db", "id-db", t(1));
    e.apply_state(&healthy("id-db", "db", Health::Starting), t(1));
    assert!(launches(&e.step(t(1))).is_empty(), "db is only starting");
    let o = report(&mut e);
    assert_eq!(
        o.containers[0].health_status,
        Some(HealthStatus::UnknownValue)
    );
    assert_eq!(o.containers[1].health_status, None);
    assert_eq!(o.health_status, Some(HealthStatus::UnknownValue));
    e.apply_state(&healthy("id-db", "db", Health::Healthy), t(2));
    assert_eq!(launches(&e.step(t(2))), ["app"]);
    launched(&mut e, "app", "id-app", t(3));
    e.step(t(3));
    let o = report(&mut e);
    assert_eq!(o.last_status, TaskStatus::Running);
    assert_eq!(o.containers[0].health_status, Some(HealthStatus::Healthy));
    assert_eq!(o.health_status, Some(HealthStatus::Healthy));
    // Unhealthy essential container: the task is UNHEALTHY, and keeps running.
    e.apply_state(&healthy("id-db", "db", Health::Unhealthy), t(4));
    e.step(t(4));
    let o = report(&mut e);
    assert_eq!(o.last_status, TaskStatus::Running);
    assert_eq!(o.health_status, Some(HealthStatus::Unhealthy));

    // A dependency that turns UNHEALTHY before HEALTHY can never be met.
    let mut e = Engine::new(cfg(), None);
    e.apply_poll(&poll(tasks, 1), t(0));
    e.step(t(0));
    pulled(&mut e, t(0));
    e.step(t(0));
    launched(&mut e, "db", "id-db", t(1));
    e.apply_state(&healthy("id-db", "db", Health::Unhealthy), t(2));
    e.step(t(2));
    let o = report(&mut e);
    let reason = o.containers[1].reason.clone().unwrap();
    assert!(
        reason.contains("db is UNHEALTHY (condition HEALTHY)"),
        "{reason}"
    );
    assert_eq!(o.containers[1].exit_code, Some(DEPENDENCY_EXIT_CODE));
    assert!(o.stopped_reason.as_deref().unwrap().contains("UNHEALTHY"));
}

#[test]
fn task_health_counts_only_essential_checked_containers() {
    use stevedore_runtime::Health;
    let defs = vec![
        with_health(def("a", true)),
        with_health(def("side", false)),
        def("plain", true),
    ];
    let mut e = Engine::new(cfg(), None);
    e.apply_poll(&poll(vec![assigned(defs)], 1), t(0));
    e.step(t(0));
    pulled(&mut e, t(0));
    e.step(t(0));
    for (c, id) in [("a", "i1"), ("side", "i2"), ("plain", "i3")] {
        launched(&mut e, c, id, t(1));
    }
    e.apply_state(&healthy("i1", "a", Health::Healthy), t(2));
    e.apply_state(&healthy("i2", "side", Health::Unhealthy), t(2));
    e.step(t(2));
    assert_eq!(report(&mut e).health_status, Some(HealthStatus::Healthy));
    // No checked essential container at all: UNKNOWN.
    let mut e = Engine::new(cfg(), None);
    e.apply_poll(&poll(vec![assigned(vec![def("plain", true)])], 1), t(0));
    assert_eq!(
        report(&mut e).health_status,
        Some(HealthStatus::UnknownValue)
    );
}
