//! How long one reconcile of a large service takes: a service of N tasks
//! in the middle of a rolling deployment (half old, half new) spread over
//! M instances, with an hour of stopped tasks behind it.
//!
//! usage: cargo run --release -p stevedore-controllers --example reconcile_bench [TASKS] [INSTANCES]

use std::time::Instant;
use stevedore_api::agent::TaskStatus;
use stevedore_api::ecs::TaskStopCode;
use stevedore_controllers::service::*;
use stevedore_controllers::state::*;

fn deployment(id: &str, status: DeploymentStatus, rollout: Rollout) -> DeploymentState {
    DeploymentState {
        id: id.into(),
        status,
        rollout,
        rollout_reason: String::new(),
        outcome: Outcome::InProgress,
        outcome_reason: None,
        task_definition: format!("td:{id}"),
        config: serde_json::Value::Null,
        created_at: 0,
        updated_at: 0,
        finished_at: None,
        failed_tasks: 0,
        ever_healthy: true,
        breaker: Some(Breaker {
            enable: true,
            rollback: true,
        }),
        sources: vec![],
        rollback: None,
        stop_requested: None,
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(1000);
    let m = args.get(1).copied().unwrap_or(50);
    let now = 10_000_000i64;
    let mut state = ServiceState::default();
    state.deployments.push(deployment(
        "ecs-svc/2",
        DeploymentStatus::Primary,
        Rollout::InProgress,
    ));
    state.deployments.push(deployment(
        "ecs-svc/1",
        DeploymentStatus::Active,
        Rollout::Completed,
    ));
    let instances: Vec<InstanceView> = (0..m)
        .map(|i| InstanceView {
            arn: format!("arn:instance/{i}"),
            state: InstanceState::Active,
            lost: false,
            eligible: true,
        })
        .collect();
    let mut tasks = Vec::new();
    for i in 0..n * 2 {
        // n live tasks, half per deployment; n stopped ones from the last hour.
        let live = i < n;
        let id = format!("{i:032x}");
        if !live {
            state.accounted.insert(id.clone(), now - 1000);
        }
        tasks.push(TaskView {
            id,
            deployment: if i % 2 == 0 { "ecs-svc/1" } else { "ecs-svc/2" }.into(),
            instance: format!("arn:instance/{}", i % m),
            last_status: if live {
                TaskStatus::Running
            } else {
                TaskStatus::Stopped
            },
            desired_running: live,
            started_at: Some(now - 120_000),
            stopped_at: (!live).then_some(now - 60_000),
            created_at: now - 130_000 + i as i64,
            health: Health::Unknown,
            has_health_check: false,
            stop_code: (!live).then_some(TaskStopCode::ServiceSchedulerInitiated),
            protected: false,
        });
    }
    let spec = ServiceSpec {
        name: "bench".into(),
        daemon: false,
        desired_count: n as u32,
        minimum_healthy_percent: 50,
        maximum_percent: 200,
        grace_period_ms: 0,
        draining: false,
    };
    let input = Input {
        now,
        spec: &spec,
        state: &state,
        tasks: &tasks,
        instances: &instances,
        healthy_after_ms: 40_000,
    };
    // Warm up, then time.
    let d = reconcile(&input);
    let rounds = 200;
    // A benchmark: it measures wall time.
    #[allow(clippy::disallowed_methods)]
    let t = Instant::now();
    let mut stops = 0;
    for _ in 0..rounds {
        stops += reconcile(&input).stops.len();
    }
    let per = t.elapsed() / rounds;
    println!(
        "{n} live + {n} stopped tasks, {m} instances, mid-rollout: {:.3} ms per reconcile \
         ({} starts, {} stops decided)",
        per.as_secs_f64() * 1000.0,
        d.starts.iter().map(|s| s.count).sum::<u32>(),
        stops / rounds as usize
    );
}
