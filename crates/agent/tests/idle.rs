//! The agent's CPU use with 100 idle tasks (real Docker). Slow: ignored by
//! default; run with `cargo test -p stevedore-agent --test idle -- --ignored
//! --nocapture`.

mod common;

use common::*;
use std::time::Duration;
use tokio::time::Instant;

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the full line: 11 and 12 here.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ = 100 on Linux
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: starts 100 containers"]
async fn hundred_idle_tasks_cost_well_under_one_percent() {
    let mut h = Harness::new().await;
    // One resync inside the measured window.
    h.config.resync_interval = Duration::from_secs(20);
    h.start();
    let arns: Vec<String> = (0..100).map(|_| h.task_arn()).collect();
    let started = Instant::now();
    for arn in &arns {
        let mut c = container("app", "exec sleep 3600");
        c.memory = Some(8);
        c.stop_timeout = Some(1);
        h.fake.assign(task(arn, vec![c]));
    }
    for arn in &arns {
        h.fake
            .wait_status(arn, "RUNNING", Duration::from_secs(300))
            .await;
    }
    println!("100 tasks RUNNING after {:?}", started.elapsed());
    // Let the start-up settle (reports, inspects).
    tokio::time::sleep(Duration::from_secs(5)).await;

    let window = Duration::from_secs(45);
    let (cpu0, t0, polls0) = (cpu_time(), Instant::now(), h.fake.polls());
    tokio::time::sleep(window).await;
    let (cpu1, t1, polls1) = (cpu_time(), Instant::now(), h.fake.polls());
    let share = (cpu1 - cpu0).as_secs_f64() / (t1 - t0).as_secs_f64() * 100.0;
    println!(
        "idle: {:?} CPU in {:?} = {share:.3}% of one core; {} polls",
        cpu1 - cpu0,
        t1 - t0,
        polls1 - polls0
    );
    assert!(share < 0.5, "agent used {share:.3}% of a core while idle");
    assert!(
        polls1 - polls0 <= 4,
        "polls are long-held: {}",
        polls1 - polls0
    );
    h.stop().await;
}
