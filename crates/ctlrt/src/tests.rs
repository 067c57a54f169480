//! The runtime under paused tokio time: every duration below is virtual,
//! so the assertions are exact and nothing sleeps for real.

use super::*;
use std::sync::Mutex;
use tokio::time::Instant;

/// Changes driven by the test: a counter bumped per "commit".
#[derive(Default)]
struct TestChanges {
    rev: watch::Sender<Revision>,
}

impl TestChanges {
    fn commit(&self) {
        self.rev.send_modify(|r| *r += 1);
    }
}

impl Changes for TestChanges {
    fn mark(&self) -> Revision {
        *self.rev.borrow()
    }
    fn changed_since(&self, mark: Revision) -> BoxFuture<'_, ()> {
        let mut rx = self.rev.subscribe();
        Box::pin(async move {
            let _ = rx.wait_for(|r| *r > mark).await;
        })
    }
}

#[derive(Debug)]
struct Failed;

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("scripted failure")
    }
}

type Script = Box<dyn FnMut(usize, &Context) -> Result<Action, Failed> + Send>;

/// Records when each pass ran; behaviour scripted per pass.
struct Probe {
    start: Instant,
    passes: Arc<Mutex<Vec<Duration>>>,
    script: Script,
}

impl Reconciler for Probe {
    type Error = Failed;
    fn name(&self) -> &'static str {
        "probe"
    }
    async fn reconcile(&mut self, cx: &Context) -> Result<Action, Failed> {
        let n = {
            let mut p = self.passes.lock().unwrap();
            p.push(self.start.elapsed());
            p.len()
        };
        (self.script)(n, cx)
    }
}

fn cfg() -> Config {
    Config {
        resync: Duration::from_secs(1),
        debounce: Duration::from_millis(50),
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
    }
}

struct Harness {
    passes: Arc<Mutex<Vec<Duration>>>,
    changes: Arc<TestChanges>,
    cancel: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

fn spawn(
    gate: Arc<dyn LeaderGate>,
    script: impl FnMut(usize, &Context) -> Result<Action, Failed> + Send + 'static,
) -> Harness {
    let passes = Arc::new(Mutex::new(Vec::new()));
    let changes = Arc::new(TestChanges::default());
    let cancel = CancellationToken::new();
    let probe = Probe {
        start: Instant::now(),
        passes: passes.clone(),
        script: Box::new(script),
    };
    let handle = tokio::spawn(run(probe, changes.clone(), gate, cfg(), cancel.clone()));
    Harness {
        passes,
        changes,
        cancel,
        handle,
    }
}

impl Harness {
    fn times(&self) -> Vec<u64> {
        self.passes
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.as_millis() as u64)
            .collect()
    }
    async fn stop(self) {
        self.cancel.cancel();
        self.handle.await.unwrap();
    }
}

/// Lets every ready task run without moving the clock.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn resyncs_every_second_without_changes() {
    let h = spawn(Arc::new(AlwaysLeader), |_, _| Ok(Action::await_change()));
    tokio::time::sleep(Duration::from_millis(3200)).await;
    // Pass, then resync (1 s) + debounce (50 ms) between passes.
    assert_eq!(h.times(), vec![0, 1050, 2100, 3150]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_changes_is_one_pass_after_the_debounce() {
    let h = spawn(Arc::new(AlwaysLeader), |_, _| Ok(Action::await_change()));
    settle().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..5 {
        h.changes.commit();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The first commit at 200 ms wakes the loop; the rest fall inside the
    // debounce window and ride along in the pass at 250 ms.
    assert_eq!(h.times(), vec![0, 250]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn wake_at_is_honoured_when_earlier_than_resync() {
    let h = spawn(Arc::new(AlwaysLeader), |n, _| {
        Ok(if n == 1 {
            Action::requeue(Duration::from_millis(300))
        } else {
            Action::await_change()
        })
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(h.times(), vec![0, 350, 1400]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_exponentially_up_to_the_cap_and_reset_on_success() {
    let h = spawn(Arc::new(AlwaysLeader), |n, _| {
        if n <= 4 {
            Err(Failed)
        } else {
            Ok(Action::await_change())
        }
    });
    settle().await;
    // Changes during a backoff do not cut it short.
    h.changes.commit();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Backoffs 100, 200, 400, 400 (capped), each plus the debounce; then
    // success returns to the 1 s resync.
    assert_eq!(h.times(), vec![0, 150, 400, 850, 1300, 2350]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn passes_run_only_while_leader_and_carry_the_terms_token() {
    let gate = Arc::new(ManualLeader::default());
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let seen = tokens.clone();
    let h = spawn(gate.clone(), move |_, cx| {
        seen.lock().unwrap().push(cx.fencing_token());
        Ok(Action::await_change())
    });
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(h.times().is_empty(), "no pass before leadership");

    gate.grant(FencingToken(7));
    settle().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(h.times(), vec![2000, 3050]);

    gate.revoke();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(h.times().len(), 2, "no pass after leadership is lost");

    gate.grant(FencingToken(8));
    settle().await;
    assert_eq!(h.times().len(), 3, "a new term starts with a pass");
    assert_eq!(
        *tokens.lock().unwrap(),
        vec![FencingToken(7), FencingToken(7), FencingToken(8)]
    );
    h.stop().await;
}

/// A reconciler with several writes per pass that yields (as real IO
/// does) between them.
struct Writer {
    writes: Arc<Mutex<Vec<&'static str>>>,
    started: Arc<tokio::sync::Notify>,
}

impl Reconciler for Writer {
    type Error = Failed;
    fn name(&self) -> &'static str {
        "writer"
    }
    async fn reconcile(&mut self, cx: &Context) -> Result<Action, Failed> {
        self.started.notify_one();
        for w in ["a", "b", "c"] {
            if cx.should_stop() {
                break;
            }
            // A write is begin + end with an await inside; an abort would
            // leave a "begin" without its "end".
            self.writes.lock().unwrap().push(w);
            tokio::time::sleep(Duration::from_millis(10)).await;
            self.writes.lock().unwrap().push("end");
        }
        Ok(Action::await_change())
    }
}

#[tokio::test(start_paused = true)]
async fn cancellation_lands_between_writes_not_inside_one() {
    let writes = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(tokio::sync::Notify::new());
    let cancel = CancellationToken::new();
    let handle = tokio::spawn(run(
        Writer {
            writes: writes.clone(),
            started: started.clone(),
        },
        Arc::new(TestChanges::default()),
        Arc::new(AlwaysLeader),
        cfg(),
        cancel.clone(),
    ));
    started.notified().await;
    settle().await;
    // Cancel while the first write is in flight.
    cancel.cancel();
    handle.await.unwrap();
    assert_eq!(*writes.lock().unwrap(), vec!["a", "end"]);
}

#[tokio::test(start_paused = true)]
async fn cancel_while_idle_returns_at_once() {
    let h = spawn(Arc::new(AlwaysLeader), |_, _| Ok(Action::await_change()));
    settle().await;
    let before = Instant::now();
    h.cancel.cancel();
    h.handle.await.unwrap();
    assert_eq!(before.elapsed(), Duration::ZERO);
}

#[test]
fn backoff_doubles_and_caps() {
    let c = cfg();
    let got: Vec<u64> = (1..=6).map(|f| c.backoff(f).as_millis() as u64).collect();
    assert_eq!(got, vec![100, 200, 400, 400, 400, 400]);
    assert_eq!(c.backoff(u32::MAX), c.backoff_max);
}
