"""Bounded task history: a stopped task stays describable for the retention
(`--stopped-task-retention`, ECS: one hour), then DescribeTasks reports it
MISSING; under churn the stored task records and the service controller's
reads per pass stay flat instead of growing with time.

Real server, real agent, real Docker. The counts come from the admin API's
GetDebugCounters (what the collector deleted, what the store holds, what the
service controller's last pass read)."""

from __future__ import annotations

import time

import pytest

from services_harness import SERVICE_FLAGS, Cluster, task_id
from stevedore_harness import Server, raw_call, uniq
from tasks_harness import ensure_test_images

pytestmark = pytest.mark.timeout(240)

RETENTION_S = 5
ADMIN_TARGET = "StevedoreAdmin_20261122"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    ensure_test_images()
    s = Server(
        tmp_path_factory.mktemp("retention") / "srv",
        name="retention-server",
        extra_args=[*SERVICE_FLAGS, "--stopped-task-retention", f"{RETENTION_S}s"],
    ).start()
    yield s
    s.stop()


@pytest.fixture
def cluster(srv, tmp_path):
    c = Cluster(srv, tmp_path, uniq("ret"))
    c.ecs.create_cluster(clusterName=c.name)
    c.add_agent()
    yield c
    c.cleanup()


def counters(srv: Server) -> dict:
    r = raw_call(srv.endpoint, None, {}, keys=srv.admin_keys(), target=f"{ADMIN_TARGET}.GetDebugCounters")
    assert r.status == 200, (r.status, r.body)
    return r.json()


def wait_for(pred, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"never {what} within {timeout}s")


def test_stopped_task_is_describable_then_missing_after_retention(cluster):
    c = cluster
    td = c.register(uniq("ret"), command=["sh", "-c", "exit 0"])
    out = c.ecs.run_task(cluster=c.name, taskDefinition=td)
    assert out["failures"] == [], out["failures"]
    arn = out["tasks"][0]["taskArn"]

    stopped = c.wait_task(arn, lambda t: t["lastStatus"] == "STOPPED", timeout=60, what="STOPPED")
    assert stopped["stopCode"] == "EssentialContainerExited"
    stopped_at = stopped["stoppedAt"].timestamp()
    # Right after stopping it is still listed and described in full.
    assert arn in c.list_tasks(desiredStatus="STOPPED")

    def gone():
        d = c.ecs.describe_tasks(cluster=c.name, tasks=[arn])
        return d if not d["tasks"] else None

    d = wait_for(gone, timeout=RETENTION_S + 30, what=f"task {task_id(arn)} reported MISSING")
    missing_after = time.time() - stopped_at
    assert d["failures"] == [{"arn": arn, "reason": "MISSING"}], d["failures"]
    # Not collected before the retention ran out (1 s for the clocks' ms
    # rounding and the agent's report latency).
    assert missing_after >= RETENTION_S - 1, f"deleted {missing_after:.1f}s after stopping"
    assert arn not in c.list_tasks(desiredStatus="STOPPED")


def test_churning_service_keeps_history_and_controller_reads_flat(srv, cluster):
    """A service whose tasks are stopped as soon as they run, for ~60 s: the
    number of stored task records and of records the controller reads per
    pass does not grow with the number of tasks that ever ran."""
    c = cluster
    name = uniq("churn")
    desired = 2
    td = c.register(uniq("churn"))
    c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td, desiredCount=desired)
    deleted_before = counters(srv)["stoppedTaskCollector"]["tasksDeleted"]

    stopped: set[str] = set()
    samples: list[tuple[float, int, int]] = []  # (t, task records, records read by last pass)
    t0 = time.monotonic()
    budget = 60.0
    while time.monotonic() - t0 < budget:
        for t in c.service_tasks(name):
            if t["lastStatus"] == "RUNNING" and t["taskArn"] not in stopped:
                c.ecs.stop_task(cluster=c.name, task=t["taskArn"], reason="churn")
                stopped.add(t["taskArn"])
        k = counters(srv)
        samples.append(
            (time.monotonic() - t0, k["store"]["taskRecords"], k["serviceController"]["taskRecordsReadLastPass"])
        )
        time.sleep(0.5)

    k = counters(srv)
    deleted = k["stoppedTaskCollector"]["tasksDeleted"] - deleted_before
    first = [s for s in samples if s[0] < budget / 2]
    second = [s for s in samples if s[0] >= budget / 2]
    assert first and second, samples
    peak_records = (max(s[1] for s in first), max(s[1] for s in second))
    peak_reads = (max(s[2] for s in first), max(s[2] for s in second))
    summary = f"stopped={len(stopped)} deleted={deleted} records(peak 1st/2nd half)={peak_records} reads={peak_reads}"
    print(f"\nchurn: {summary}")
    # Enough churn that a history kept forever would show: more tasks went
    # through the service than the store ever held at once.
    assert len(stopped) > peak_records[1] + desired, summary
    assert deleted > 0, summary
    # Flat: the second half holds no more than the first plus the live
    # tasks' worth of timing slack (a history kept forever would add every
    # task stopped in the meantime).
    assert peak_records[1] <= peak_records[0] + desired, summary
    assert peak_reads[1] <= peak_reads[0] + desired, summary
