//! The awslogs log driver against the real Docker engine: the agent
//! follows the containers' output and ships it to a CloudWatch Logs API.
//! The control plane and the logs sink are in-process fakes (tests/common).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::time::Duration;
use stevedore_api::ecs::{ContainerDefinition, LogConfiguration, LogDriver};
use tokio::time::Instant;

const T: Duration = Duration::from_secs(20);

fn awslogs(mut c: ContainerDefinition, opts: &[(&str, &str)]) -> ContainerDefinition {
    let options: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    c.log_configuration = Some(LogConfiguration {
        log_driver: Some(LogDriver::Awslogs),
        options: Some(options),
        secret_options: None,
    });
    c
}

fn task_id(arn: &str) -> String {
    arn.rsplit('/').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_task_output_is_shipped_before_stopped() {
    let mut h = Harness::new().await;
    h.logs.create_group("/ecs/short");
    h.start();
    let arn = h.task_arn();
    let app = awslogs(
        container(
            "app",
            "i=1; while [ $i -le 200 ]; do echo line-$i; i=$((i+1)); done; echo oops >&2",
        ),
        &[
            ("awslogs-group", "/ecs/short"),
            ("awslogs-stream-prefix", "web"),
        ],
    );
    h.fake.assign(task(&arn, vec![app]));
    let stopped = h.fake.wait_status(&arn, "STOPPED", T).await;
    // Everything is there the moment the task reports STOPPED.
    let stream = format!("web/app/{}", task_id(&arn));
    assert_eq!(h.logs.streams("/ecs/short"), vec![stream.clone()]);
    let expected: Vec<String> = (1..=200).map(|i| format!("line-{i}")).collect();
    let mut got = h.logs.messages("/ecs/short", &stream);
    // Docker copies stdout and stderr separately: their interleaving is
    // Docker's, each one's order is the program's.
    let before = got.len();
    got.retain(|m| m != "oops");
    assert_eq!(before, got.len() + 1, "stderr's line once");
    assert_eq!(got, expected);
    let app = find(&stopped, "app");
    assert_eq!(app.exit_code, Some(0));
    assert_eq!(app.reason, None);
    // Locally the container used json-file, so `docker logs` works.
    let id = app.runtime_id.clone().unwrap();
    assert_eq!(
        docker(&["inspect", "--format", "{{.HostConfig.LogConfig.Type}}", &id]),
        "json-file"
    );
    assert!(docker(&["logs", &id]).contains("line-200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_group_and_missing_group() {
    let mut h = Harness::new().await;
    h.start();
    let arn = h.task_arn();
    // No prefix: the stream is the container id. The group is created.
    let a = awslogs(
        container("a", "echo from-a"),
        &[
            ("awslogs-group", "/ecs/new"),
            ("awslogs-create-group", "true"),
        ],
    );
    // Without create-group a missing group is an error in the reason.
    let b = awslogs(
        container("b", "echo from-b"),
        &[
            ("awslogs-group", "/ecs/missing"),
            ("awslogs-stream-prefix", "p"),
        ],
    );
    h.fake.assign(task(&arn, vec![a, b]));
    let stopped = h.fake.wait_status(&arn, "STOPPED", T).await;
    let a_id = find(&stopped, "a").runtime_id.clone().unwrap();
    assert_eq!(h.logs.streams("/ecs/new"), vec![a_id.clone()]);
    assert_eq!(h.logs.messages("/ecs/new", &a_id), vec!["from-a"]);
    assert!(!h.logs.has_group("/ecs/missing"));
    let reason = find(&stopped, "b").reason.clone().unwrap_or_default();
    assert!(
        reason.contains("awslogs") && reason.contains("ResourceNotFoundException"),
        "{reason}"
    );

    // A missing awslogs-group refuses the task with a clear reason.
    let arn2 = h.task_arn();
    let bad = awslogs(container("c", "true"), &[("awslogs-stream-prefix", "p")]);
    h.fake.assign(task(&arn2, vec![bad]));
    let stopped = h.fake.wait_status(&arn2, "STOPPED", T).await;
    let reason = stopped.stopped_reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("CannotStartContainerError") && reason.contains("awslogs-group"),
        "{reason}"
    );
    assert!(find(&stopped, "c").runtime_id.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_blocking_drops_the_oldest_lines() {
    let mut h = Harness::new().await;
    h.logs.create_group("g");
    h.logs
        .put_delay_ms
        .store(300, std::sync::atomic::Ordering::SeqCst);
    h.start();
    let arn = h.task_arn();
    let app = awslogs(
        container(
            "app",
            "i=0; while [ $i -lt 5000 ]; do echo n-$i; i=$((i+1)); done",
        ),
        &[
            ("awslogs-group", "g"),
            ("awslogs-stream-prefix", "nb"),
            ("mode", "non-blocking"),
            ("max-buffer-size", "2k"),
        ],
    );
    h.fake.assign(task(&arn, vec![app]));
    h.fake.wait_status(&arn, "STOPPED", T).await;
    let all = h.logs.messages("g", &format!("nb/app/{}", task_id(&arn)));
    // What was dropped is said in the stream, where it was dropped.
    let (notices, got): (Vec<String>, Vec<String>) = all
        .into_iter()
        .partition(|m| m.starts_with("[stevedore awslogs] "));
    let dropped: usize = notices
        .iter()
        .map(|n| {
            n.trim_start_matches("[stevedore awslogs] ")
                .split(' ')
                .next()
                .and_then(|d| d.parse::<usize>().ok())
                .unwrap_or_else(|| panic!("{n}"))
        })
        .sum();
    assert!(!got.is_empty() && got.len() < 5000, "{} lines", got.len());
    assert_eq!(got.len() + dropped, 5000, "{notices:?}");
    // The newest lines survive; order is kept.
    assert_eq!(got.last().map(String::as_str), Some("n-4999"));
    let nums: Vec<u32> = got
        .iter()
        .map(|m| m.trim_start_matches("n-").parse().unwrap())
        .collect();
    assert!(nums.windows(2).all(|w| w[0] < w[1]), "{nums:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_shipping_without_losing_lines() {
    let mut h = Harness::new().await;
    h.logs.create_group("g");
    h.start();
    let arn = h.task_arn();
    let app = awslogs(
        container(
            "app",
            "i=0; while [ $i -lt 40 ]; do echo tick-$i; i=$((i+1)); sleep 0.1; done",
        ),
        &[("awslogs-group", "g"), ("awslogs-stream-prefix", "r")],
    );
    h.fake.assign(task(&arn, vec![app]));
    let stream = format!("r/app/{}", task_id(&arn));
    let deadline = Instant::now() + T;
    while h.logs.messages("g", &stream).len() < 5 {
        assert!(Instant::now() < deadline, "no lines shipped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.stop().await;
    let before = h.logs.messages("g", &stream).len();
    // The container keeps printing while no agent runs.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(h.logs.messages("g", &stream).len(), before);
    h.start();
    h.fake.wait_status(&arn, "STOPPED", T).await;
    let got = h.logs.messages("g", &stream);
    let expected: Vec<String> = (0..40).map(|i| format!("tick-{i}")).collect();
    assert_eq!(got, expected, "every line exactly once, in order");
}
