//! Table-free scenario tests: a tiny simulated world applies each decision
//! (starts become PENDING, then RUNNING a step later; stops become STOPPED)
//! and the invariants are checked at every step.

use crate::service::*;
use crate::state::*;
use stevedore_api::agent::TaskStatus;
use stevedore_api::ecs::TaskStopCode;

struct World {
    now: i64,
    spec: ServiceSpec,
    state: ServiceState,
    tasks: Vec<TaskView>,
    instances: Vec<InstanceView>,
    next: u32,
    /// Deployments whose tasks never reach RUNNING.
    broken: Vec<String>,
    healthy_after_ms: i64,
    placements: u32,
}

fn deployment(id: &str, td: &str, now: i64) -> DeploymentState {
    DeploymentState {
        id: id.into(),
        status: DeploymentStatus::Primary,
        rollout: Rollout::InProgress,
        rollout_reason: format!("ECS deployment {id} in progress."),
        outcome: Outcome::InProgress,
        outcome_reason: None,
        task_definition: td.into(),
        config: serde_json::Value::Null,
        created_at: now,
        updated_at: now,
        finished_at: None,
        failed_tasks: 0,
        ever_healthy: false,
        breaker: Some(Breaker {
            enable: true,
            rollback: true,
        }),
        sources: vec![],
        rollback: None,
        stop_requested: None,
    }
}

fn instance(arn: &str) -> InstanceView {
    InstanceView {
        arn: arn.into(),
        state: InstanceState::Active,
        lost: false,
        eligible: true,
    }
}

impl World {
    fn new(desired: u32, min: u32, max: u32) -> World {
        let mut state = ServiceState::default();
        state.deployments.push(deployment("ecs-svc/1", "td:1", 0));
        World {
            now: 1_000_000,
            spec: ServiceSpec {
                name: "web".into(),
                daemon: false,
                desired_count: desired,
                minimum_healthy_percent: min,
                maximum_percent: max,
                grace_period_ms: 0,
                draining: false,
            },
            state,
            tasks: vec![],
            instances: vec![instance("i-1"), instance("i-2"), instance("i-3")],
            next: 0,
            broken: vec![],
            healthy_after_ms: 0,
            placements: 0,
        }
    }

    fn deploy(&mut self, id: &str, td: &str) {
        for d in self.state.deployments.iter_mut() {
            if d.status == DeploymentStatus::Primary {
                d.status = DeploymentStatus::Active;
            }
        }
        self.state
            .deployments
            .insert(0, deployment(id, td, self.now));
        self.state.steady = false;
    }

    fn decide(&self) -> Decision {
        reconcile(&Input {
            now: self.now,
            spec: &self.spec,
            state: &self.state,
            tasks: &self.tasks,
            instances: &self.instances,
            healthy_after_ms: self.healthy_after_ms,
        })
    }

    /// One controller pass plus one tick of the world.
    fn step(&mut self) -> Decision {
        self.now += 1000;
        // The world moves: pending tasks run (or fail), stopping ones stop.
        for t in self.tasks.iter_mut() {
            if !t.desired_running && t.last_status != TaskStatus::Stopped {
                t.last_status = TaskStatus::Stopped;
                t.stopped_at = Some(self.now);
                if t.stop_code.is_none() {
                    t.stop_code = Some(TaskStopCode::ServiceSchedulerInitiated);
                }
            } else if t.last_status == TaskStatus::Pending {
                if self.broken.contains(&t.deployment) {
                    t.last_status = TaskStatus::Stopped;
                    t.desired_running = false;
                    t.stopped_at = Some(self.now);
                    t.stop_code = Some(TaskStopCode::TaskFailedToStart);
                } else {
                    t.last_status = TaskStatus::Running;
                    t.started_at = Some(self.now);
                }
            }
        }
        let d = self.decide();
        self.apply(&d);
        d
    }

    fn apply(&mut self, d: &Decision) {
        self.state = d.state.clone();
        for s in &d.stops {
            let t = self.tasks.iter_mut().find(|t| t.id == s.task_id).unwrap();
            assert!(t.desired_running, "stopped twice: {}", t.id);
            t.desired_running = false;
            t.stop_code = Some(TaskStopCode::ServiceSchedulerInitiated);
        }
        for s in &d.starts {
            for _ in 0..s.count {
                self.next += 1;
                self.placements += 1;
                let inst = s.instance.clone().unwrap_or_else(|| {
                    let active: Vec<_> = self
                        .instances
                        .iter()
                        .filter(|i| i.state == InstanceState::Active && !i.lost)
                        .collect();
                    active[self.next as usize % active.len()].arn.clone()
                });
                self.tasks.push(TaskView {
                    id: format!("t{}", self.next),
                    deployment: s.deployment.clone(),
                    instance: inst,
                    last_status: TaskStatus::Pending,
                    desired_running: true,
                    started_at: None,
                    stopped_at: None,
                    created_at: self.now,
                    health: Health::Unknown,
                    has_health_check: false,
                    stop_code: None,
                    protected: false,
                });
            }
        }
    }

    fn live(&self) -> Vec<&TaskView> {
        self.tasks.iter().filter(|t| t.desired_running).collect()
    }

    fn running_of(&self, dep: &str) -> usize {
        self.live()
            .iter()
            .filter(|t| t.deployment == dep && t.last_status == TaskStatus::Running)
            .count()
    }

    fn run_until_steady(&mut self, max_steps: usize) {
        for _ in 0..max_steps {
            self.step();
            if self.state.steady {
                return;
            }
        }
        panic!("never steady: {:#?}", self.state.events);
    }
}

#[test]
fn starts_desired_count_and_reaches_steady_state() {
    let mut w = World::new(4, 100, 200);
    let d = w.step();
    assert_eq!(
        d.starts,
        vec![Start {
            deployment: "ecs-svc/1".into(),
            count: 4,
            instance: None
        }]
    );
    w.run_until_steady(5);
    assert_eq!(w.running_of("ecs-svc/1"), 4);
    let p = w.state.primary().unwrap();
    assert_eq!(p.rollout, Rollout::Completed);
    assert_eq!(p.outcome, Outcome::Successful);
    let msgs: Vec<_> = w.state.events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(msgs[0], "(service web) has reached a steady state.");
    assert_eq!(
        msgs[1],
        "(service web) (deployment ecs-svc/1) deployment completed."
    );
    // Steady: nothing more to do, and no repeated event.
    let d = w.step();
    assert!(d.starts.is_empty() && d.stops.is_empty());
    assert_eq!(w.state.events.len(), 2);
}

#[test]
fn rolling_update_stays_within_min_and_max() {
    for (min, max) in [(50, 200), (100, 200), (0, 100), (50, 150), (75, 125)] {
        let mut w = World::new(4, min, max);
        w.healthy_after_ms = 2000;
        w.run_until_steady(20);
        w.deploy("ecs-svc/2", "td:2");
        let max_total = 4 * max / 100;
        let min_healthy = (4 * min).div_ceil(100);
        let mut steady = false;
        for _ in 0..60 {
            w.step();
            let live = w.live().len() as u32;
            assert!(
                live <= max_total,
                "min {min} max {max}: {live} live > {max_total}"
            );
            let running = w
                .live()
                .iter()
                .filter(|t| t.last_status == TaskStatus::Running)
                .count() as u32;
            assert!(
                running >= min_healthy,
                "min {min} max {max}: {running} running < {min_healthy}"
            );
            if w.state.steady {
                steady = true;
                break;
            }
        }
        assert!(
            steady,
            "min {min} max {max} never completed: {:#?}",
            w.state.events
        );
        assert_eq!(w.running_of("ecs-svc/2"), 4);
        assert_eq!(w.running_of("ecs-svc/1"), 0);
        assert_eq!(w.state.visible().count(), 1);
        let old = w.state.deployment("ecs-svc/1").unwrap();
        assert_eq!(old.status, DeploymentStatus::Inactive);
    }
}

#[test]
fn min_equal_max_stalls_with_the_ecs_event() {
    let mut w = World::new(2, 100, 100);
    w.run_until_steady(5);
    w.deploy("ecs-svc/2", "td:2");
    let d = w.step();
    assert!(d.starts.is_empty() && d.stops.is_empty());
    assert!(w.state.events[0]
        .message
        .contains("was unable to stop or start tasks during a deployment"));
}

#[test]
fn breaker_trips_at_threshold_and_rolls_back_to_last_completed() {
    let mut w = World::new(4, 50, 200);
    w.run_until_steady(5);
    w.deploy("ecs-svc/2", "td:2");
    w.run_until_steady(10);
    w.deploy("ecs-svc/3", "td:3");
    w.broken.push("ecs-svc/3".into());
    let mut rolled = None;
    for _ in 0..40 {
        let d = w.step();
        if let Some(td) = d.task_definition {
            rolled = Some(td);
            break;
        }
        // The breaker counts exactly until the threshold.
        assert!(w.state.deployment("ecs-svc/3").unwrap().failed_tasks <= 10 + 4);
    }
    assert_eq!(rolled.as_deref(), Some("td:2"));
    let failed = w.state.deployment("ecs-svc/3").unwrap().clone();
    assert_eq!(failed.rollout, Rollout::Failed);
    assert!(failed.failed_tasks >= breaker_threshold(4));
    assert_eq!(failed.outcome, Outcome::RollbackInProgress);
    assert_eq!(failed.rollback.as_ref().unwrap().to_deployment, "ecs-svc/2");
    let primary = w.state.primary().unwrap().clone();
    assert_eq!(primary.task_definition, "td:2");
    assert!(primary
        .rollout_reason
        .contains("rolling back to deploymentId ecs-svc/2"));
    w.run_until_steady(20);
    let failed = w.state.deployment("ecs-svc/3").unwrap();
    assert_eq!(failed.outcome, Outcome::RollbackSuccessful);
    assert_eq!(w.running_of(&primary.id), 4);
}

#[test]
fn breaker_threshold_matches_ecs() {
    assert_eq!(breaker_threshold(1), 10);
    assert_eq!(breaker_threshold(25), 13);
    assert_eq!(breaker_threshold(400), 200);
    assert_eq!(breaker_threshold(0), 10);
}

#[test]
fn throttle_delays_launches_after_repeated_start_failures() {
    let mut w = World::new(2, 100, 200);
    w.state.deployments[0].breaker = None;
    w.broken.push("ecs-svc/1".into());
    for _ in 0..12 {
        w.step();
    }
    assert!(w.state.throttle.consecutive_start_failures >= THROTTLE_AFTER);
    assert!(w
        .state
        .events
        .iter()
        .any(|e| e.message.contains("is unable to consistently start tasks")));
    let d = w.step();
    assert!(
        d.starts.is_empty(),
        "throttled service started {:?}",
        d.starts
    );
    assert!(d.wake_at.is_some());
}

#[test]
fn tasks_on_a_lost_instance_are_replaced_without_waiting_for_bounds() {
    let mut w = World::new(3, 100, 100);
    w.run_until_steady(5);
    let victim = w.live()[0].instance.clone();
    let on_victim = w.live().iter().filter(|t| t.instance == victim).count();
    w.instances
        .iter_mut()
        .find(|i| i.arn == victim)
        .unwrap()
        .lost = true;
    let d = w.decide();
    assert_eq!(d.stops.len(), on_victim);
    assert!(d.stops[0].reason.contains("lost"));
    w.apply(&d);
    // The lost tasks stay RUNNING as far as anyone knows; they are not live.
    w.run_until_steady(5);
    let live: Vec<_> = w
        .live()
        .into_iter()
        .filter(|t| t.last_status == TaskStatus::Running)
        .collect();
    assert_eq!(live.len(), 3);
    assert!(live.iter().all(|t| t.instance != victim));
}

#[test]
fn draining_instance_tasks_move_before_they_stop_at_min_100() {
    let mut w = World::new(3, 100, 200);
    w.healthy_after_ms = 1500;
    w.run_until_steady(6);
    let victim = "i-1".to_string();
    for t in w.tasks.iter_mut() {
        t.instance = victim.clone();
    }
    w.instances[0].state = InstanceState::Draining;
    w.state.steady = false;
    for _ in 0..20 {
        w.step();
        let running = w
            .live()
            .iter()
            .filter(|t| t.last_status == TaskStatus::Running)
            .count();
        assert!(running >= 3, "dropped to {running}");
        if w.state.steady {
            break;
        }
    }
    assert!(w.state.steady);
    assert!(w.live().iter().all(|t| t.instance != victim));
}

#[test]
fn scale_in_spares_protected_tasks() {
    let mut w = World::new(4, 100, 200);
    w.run_until_steady(5);
    let protected: Vec<String> = w.tasks.iter().take(2).map(|t| t.id.clone()).collect();
    for t in w.tasks.iter_mut() {
        t.protected = protected.contains(&t.id);
    }
    w.spec.desired_count = 1;
    let d = w.step();
    assert_eq!(d.stops.len(), 2, "only the unprotected can go");
    assert!(d.stops.iter().all(|s| !protected.contains(&s.task_id)));
    assert!(w
        .state
        .events
        .iter()
        .any(|e| e.message.contains("protected tasks")));
}

#[test]
fn unhealthy_tasks_are_replaced_first_after_the_grace_period() {
    let mut w = World::new(1, 100, 200);
    w.spec.grace_period_ms = 5000;
    w.run_until_steady(5);
    let sick = w.tasks[0].id.clone();
    {
        let t = &mut w.tasks[0];
        t.has_health_check = true;
        t.health = Health::Unhealthy;
    }
    let started = w.tasks[0].started_at.unwrap();
    w.now = started + 1000;
    let d = w.decide();
    assert!(
        d.stops.is_empty() && d.starts.is_empty(),
        "inside the grace period"
    );
    w.now = started + 6000;
    let d = w.decide();
    // The replacement starts; the failing task keeps running meanwhile.
    assert!(d.stops.is_empty(), "{:?}", d.stops);
    assert_eq!(d.starts.iter().map(|s| s.count).sum::<u32>(), 1);
    assert_eq!(d.state.primary().unwrap().failed_tasks, 1);
    w.apply(&d);
    // The replacement runs (healthy at once here): now the failing one
    // goes, counted once however long it failed.
    let mut stopped = None;
    for _ in 0..3 {
        let d = w.step();
        assert_eq!(d.state.primary().unwrap().failed_tasks, 1);
        if let Some(s) = d.stops.first() {
            stopped = Some(s.clone());
            break;
        }
    }
    let s = stopped.expect("failing task stopped");
    assert_eq!(s.task_id, sick);
    assert_eq!(s.reason, "Task failed container health checks.");
    w.run_until_steady(5);
    assert_eq!(w.live().len(), 1);
}

#[test]
fn unhealthy_tasks_go_one_at_a_time_without_room() {
    let mut w = World::new(2, 50, 100);
    w.run_until_steady(5);
    for t in w.tasks.iter_mut() {
        t.has_health_check = true;
        t.health = Health::Unhealthy;
    }
    let d = w.decide();
    assert!(d.starts.is_empty());
    assert_eq!(d.stops.len(), 1, "one at a time: {:?}", d.stops);
}

#[test]
fn daemon_follows_instances_and_leaves_draining_ones() {
    let mut w = World::new(0, 0, 100);
    w.spec.daemon = true;
    let d = w.step();
    assert_eq!(d.desired_count, Some(3));
    assert_eq!(d.starts.len(), 3);
    assert!(d
        .starts
        .iter()
        .all(|s| s.count == 1 && s.instance.is_some()));
    w.run_until_steady(4);
    w.instances.push(instance("i-4"));
    let d = w.step();
    assert_eq!(d.starts[0].instance.as_deref(), Some("i-4"));
    w.run_until_steady(4);
    w.instances[0].state = InstanceState::Draining;
    let d = w.step();
    assert_eq!(d.desired_count, Some(3));
    assert_eq!(d.stops.len(), 1);
    w.run_until_steady(4);
    assert_eq!(w.live().len(), 3);
}

#[test]
fn delete_stops_everything_then_goes_inactive() {
    let mut w = World::new(2, 100, 200);
    w.run_until_steady(5);
    w.spec.draining = true;
    // INACTIVE once every task is stopping (ECS's rule).
    let d = w.step();
    assert_eq!(d.stops.len(), 2);
    assert!(d.inactive);
    assert_eq!(w.state.visible().count(), 0);
}

#[test]
fn stops_are_accounted_once() {
    let mut w = World::new(2, 100, 200);
    w.run_until_steady(5);
    // A container dies behind the scheduler's back.
    let t = w.tasks.iter_mut().find(|t| t.desired_running).unwrap();
    t.desired_running = false;
    t.last_status = TaskStatus::Stopped;
    t.started_at = None;
    t.stopped_at = Some(w.now);
    t.stop_code = Some(TaskStopCode::EssentialContainerExited);
    let placed = w.placements;
    w.run_until_steady(5);
    assert_eq!(w.placements, placed + 1, "exactly one replacement");
    let failures = w.state.throttle.consecutive_start_failures;
    w.step();
    w.step();
    assert_eq!(w.state.throttle.consecutive_start_failures, failures);
}
