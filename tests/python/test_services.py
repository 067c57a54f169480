"""ECS services end to end: real server, real agents, real Docker containers,
driven through boto3 exactly as a user would.

One server (short controller timings: see services_harness.SERVICE_FLAGS) is
shared by the module; every test makes a cluster of its own with its own
agents, so tests do not depend on each other or on their order. The server
kill -9 test runs its own server.

Run: cargo build -p stevedore && .venv/bin/pytest tests/python/test_services.py -x -q -s
"""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from services_harness import (
    DEPLOYMENT_ID,
    DISCONNECT_AFTER,
    HEALTHY_AFTER,
    LOST_GRACE,
    Cluster,
    aws_cli,
    bounds,
    container_running,
    containers_of_task,
    messages,
    running_containers,
    start_server,
    task_id,
    ts,
    uniq,
)
from tasks_harness import docker, ensure_test_images

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def svc_server(tmp_path_factory):
    ensure_test_images()
    srv = start_server(tmp_path_factory.mktemp("services") / "srv", "services-server")
    yield srv
    srv.stop()


@pytest.fixture
def make_cluster(svc_server, tmp_path):
    """make_cluster(n_agents) -> Cluster (own cluster name, own agents); cleaned up after the test."""
    made: list[Cluster] = []

    def make(n_agents: int, server=None) -> Cluster:
        srv = server or svc_server
        c = Cluster(srv, tmp_path, uniq("svc"))
        c.ecs.create_cluster(clusterName=c.name)
        made.append(c)
        for _ in range(n_agents):
            c.add_agent()
        return c

    yield make
    for c in made:
        c.cleanup()


@pytest.fixture
def own_server(svc_server, tmp_path):
    """A server of the test's own (requested before make_cluster, so it stops after the clean-up)."""
    srv = start_server(tmp_path / "own-srv", "services-own-server")
    yield srv
    srv.stop()


def live(tasks):
    return [t for t in tasks if t["desiredStatus"] == "RUNNING"]


def running(tasks):
    return [t for t in live(tasks) if t["lastStatus"] == "RUNNING"]


def healthy(tasks, now: float):
    """RUNNING tasks that have been running for at least --task-healthy-after.

    The controller can only count a task healthy after it has seen it RUNNING
    for that long, and it sees it RUNNING no earlier than its startedAt; so
    this count is never below the controller's own healthy count."""
    return [t for t in running(tasks) if t.get("startedAt") and ts(t["startedAt"]) <= now - HEALTHY_AFTER + 0.05]


def assert_events_newest_first(s):
    times = [ts(e["createdAt"]) for e in s.get("events", [])]
    assert times == sorted(times, reverse=True), f"events are not newest first: {times[:10]}"


# --------------------------------------------------------------------------
# Basic lifecycle
# --------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_service_runs_desired_count_and_deletes(make_cluster):
    c = make_cluster(1)
    name = uniq("life")
    td = c.register(uniq("life"))
    created = c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td, desiredCount=2)["service"]
    assert created["serviceName"] == name and created["desiredCount"] == 2
    assert created["status"] == "ACTIVE"
    assert created["deployments"][0]["status"] == "PRIMARY"
    dep = created["deployments"][0]["id"]
    assert DEPLOYMENT_ID.match(dep), dep

    s = c.wait_stable(name)
    assert s["taskDefinition"] == td
    assert s["runningCount"] == 2 and s["pendingCount"] == 0
    assert name in json.dumps(c.ecs.list_services(cluster=c.name)["serviceArns"])
    # The unmodified aws CLI's waiter (it checks once before its first 15 s sleep).
    t0 = time.monotonic()
    res = aws_cli(c.server, c.base, "wait", "services-stable", "--cluster", c.name, "--services", name)
    assert res.returncode == 0, f"aws ecs wait services-stable: {res.returncode}\n{res.stderr}\n{c.dump(name)}"
    assert time.monotonic() - t0 < 14, "aws ecs wait services-stable did not see the service stable at once"

    tasks = c.service_tasks(name)
    assert len(tasks) == 2, c.dump(name)
    for t in tasks:
        assert t["group"] == f"service:{name}", t["group"]
        assert t["startedBy"] == dep, t["startedBy"]
        assert t["taskDefinitionArn"] == td
        assert t["lastStatus"] == "RUNNING"
    assert set(c.list_tasks(serviceName=name)) == {t["taskArn"] for t in tasks}

    msgs = messages(s)
    assert_events_newest_first(s)
    started = [m for m in msgs if f"(service {name}) has started" in m]
    assert started, c.dump(name)
    for t in tasks:
        assert any(f"(task {task_id(t['taskArn'])})" in m for m in started), (t["taskArn"], c.dump(name))
    assert any(f"(service {name}) has reached a steady state." in m for m in msgs), c.dump(name)
    assert any(f"(service {name}) (deployment {dep}) deployment completed." in m for m in msgs), c.dump(name)

    # ECS refuses to delete a scaled-up service without force.
    with pytest.raises(ClientError) as ei:
        c.ecs.delete_service(cluster=c.name, service=name)
    assert ei.value.response["Error"]["Code"] == "InvalidParameterException", ei.value.response

    c.ecs.delete_service(cluster=c.name, service=name, force=True)
    try:
        c.ecs.get_waiter("services_inactive").wait(cluster=c.name, services=[name],
                                                   WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"service never became INACTIVE: {e}\n{c.dump(name)}") from None
    for t in tasks:
        c.wait_task(t["taskArn"], lambda x: x["lastStatus"] == "STOPPED", timeout=30, what="STOPPED")
        for cid in containers_of_task(t["taskArn"]):
            assert not container_running(cid), f"container {cid} of deleted service still running"


UNPLACEABLE = {
    # No instance has the attribute.
    "constraint": dict(placementConstraints=[{"type": "memberOf",
                                              "expression": "attribute:stevedore.no-such-attribute == x"}]),
    # No instance has that much memory (the task definition asks for 64 TiB).
    "memory": dict(),
}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("why", sorted(UNPLACEABLE))
def test_unplaceable_task_event(make_cluster, why):
    c = make_cluster(1)
    name = uniq("noplace")
    td = c.register(uniq("noplace"), memory=64 * 1024 * 1024 if why == "memory" else 32)
    c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td, desiredCount=1, **UNPLACEABLE[why])
    s = c.wait_service(
        name,
        lambda s: any(f"(service {name}) was unable to place a task because no container instance met all of its "
                      "requirements." in m for m in messages(s)),
        timeout=30, what="an 'unable to place a task' event")
    assert s["runningCount"] == 0
    assert c.service_tasks(name) == []


# --------------------------------------------------------------------------
# Rolling update :1 -> :2, desired 4, min 50 %, max 200 %
# --------------------------------------------------------------------------


@pytest.mark.timeout(150)
@pytest.mark.parametrize("min_pct,max_pct", [(50, 200), (100, 150), (0, 100), (75, 100)],
                         ids=["min50-max200", "min100-max150", "min0-max100", "min75-max100"])
def test_rolling_update_respects_min_healthy_and_max_percent(make_cluster, min_pct, max_pct):
    c = make_cluster(2)
    fam = uniq("roll")
    td1 = c.register(fam, version="1")
    td2 = c.register(fam, version="2")
    assert td1.endswith(":1") and td2.endswith(":2")
    name = uniq("roll")
    desired = 4
    min_healthy, max_live = bounds(desired, min_pct, max_pct)  # 2, 8
    c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td1, desiredCount=desired,
                         deploymentConfiguration={"minimumHealthyPercent": min_pct, "maximumPercent": max_pct})
    s = c.wait_stable(name)
    d1 = s["deployments"][0]["id"]
    old = c.service_tasks(name)
    assert len(old) == desired and all(t["taskDefinitionArn"] == td1 and t["startedBy"] == d1 for t in old), c.dump(name)
    # Let the first tasks become healthy before the update.
    time.sleep(HEALTHY_AFTER + 0.5)

    upd = c.ecs.update_service(cluster=c.name, service=name, taskDefinition=td2)["service"]
    deps = upd["deployments"]
    primary = [d for d in deps if d["status"] == "PRIMARY"]
    assert len(primary) == 1 and primary[0]["taskDefinition"] == td2, deps
    assert primary[0]["rolloutState"] == "IN_PROGRESS", deps
    d2 = primary[0]["id"]
    assert DEPLOYMENT_ID.match(d2) and d2 != d1, (d1, d2)
    assert any(d["id"] == d1 and d["status"] == "ACTIVE" for d in deps), deps
    assert upd["taskDefinition"] == td2

    samples = []
    saw_both = False
    deadline = time.monotonic() + 60
    done = False
    while time.monotonic() < deadline:
        s = c.svc(name)
        tasks = c.service_tasks(name)
        now = time.time()
        lv, rn, hl = live(tasks), running(tasks), healthy(tasks, now)
        new_n = sum(1 for t in lv if t["taskDefinitionArn"] == td2)
        old_n = sum(1 for t in lv if t["taskDefinitionArn"] == td1)
        sample = dict(t=round(now, 2), live=len(lv), running=len(rn), healthy=len(hl), new=new_n, old=old_n,
                      svc_running=s["runningCount"], svc_pending=s["pendingCount"],
                      deps=[(d["status"], d.get("rolloutState"), d["runningCount"], d["pendingCount"])
                            for d in s["deployments"]])
        samples.append(sample)
        ctx = f"sample {sample}\nall samples: {samples}\n{c.dump(name)}"
        assert len(lv) <= max_live, f"more than {max_live} live tasks\n{ctx}"
        assert s["runningCount"] + s["pendingCount"] <= max_live, f"service counts exceed {max_live}\n{ctx}"
        assert sum(d["runningCount"] + d["pendingCount"] for d in s["deployments"]) <= max_live, ctx
        assert len(hl) >= min_healthy, f"fewer than {min_healthy} healthy RUNNING tasks\n{ctx}"
        assert s["runningCount"] >= min_healthy, ctx
        if len(s["deployments"]) == 2 and any(d["runningCount"] for d in s["deployments"] if d["id"] == d1):
            saw_both = True
        if (len(s["deployments"]) == 1 and s["deployments"][0]["id"] == d2
                and s["deployments"][0].get("rolloutState") == "COMPLETED"
                and s["runningCount"] == desired and old_n == 0 and len(rn) == desired):
            done = True
            break
        time.sleep(0.3)
    print(f"\nrolling update samples ({len(samples)}):")
    for smp in samples:
        print("  ", smp)
    assert done, f"deployment {d2} did not complete within 60 s\nsamples: {samples}\n{c.dump(name)}"
    if min_healthy > 0:
        assert saw_both, f"never saw the old and new deployments side by side: {samples}"

    s = c.wait_stable(name)
    assert s["taskDefinition"] == td2
    assert s["deployments"][0]["id"] == d2 and s["deployments"][0]["status"] == "PRIMARY"
    new = c.service_tasks(name)
    assert len(new) == desired and all(t["taskDefinitionArn"] == td2 and t["startedBy"] == d2 for t in new), c.dump(name)
    # A healthy deployment starts exactly desiredCount tasks.
    assert len(c.started_by(d2)) == desired, c.dump(name)
    for t in old:
        c.wait_task(t["taskArn"], lambda x: x["lastStatus"] == "STOPPED", timeout=30, what="STOPPED", service=name)
    msgs = messages(c.svc(name))
    stopped_msgs = [m for m in msgs if f"(service {name}) has stopped" in m]
    for t in old:
        assert any(f"(task {task_id(t['taskArn'])})" in m for m in stopped_msgs), (t["taskArn"], c.dump(name))
    assert any(f"(service {name}) (deployment {d2}) deployment completed." in m for m in msgs), c.dump(name)


# --------------------------------------------------------------------------
# Circuit breaker: :3 broken -> rollback to :2 (the last COMPLETED revision)
# --------------------------------------------------------------------------


BROKEN = {
    # The container exits at once (the task reaches RUNNING, or nearly, then stops).
    "exits": dict(command=["sh", "-c", "exit 1"]),
    # The image cannot be pulled: CannotPullContainerError, never RUNNING.
    "missing-image": dict(image="stevedore-test/does-not-exist:1"),
}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_circuit_breaker_rolls_back_to_last_completed(make_cluster, broken):
    c = make_cluster(2)
    fam = uniq("cb")
    td1 = c.register(fam, version="1")
    td2 = c.register(fam, version="2")
    td3 = c.register(fam, version="3", **BROKEN[broken])
    name = uniq("cb")
    desired = 2
    threshold = min(max((desired + 1) // 2, 10), 200)
    c.ecs.create_service(
        cluster=c.name, serviceName=name, taskDefinition=td1, desiredCount=desired,
        deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200,
                                 "deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    c.wait_stable(name)
    d2 = c.ecs.update_service(cluster=c.name, service=name, taskDefinition=td2)["service"]["deployments"][0]["id"]
    s = c.wait_stable(name)
    assert s["deployments"][0]["id"] == d2 and s["taskDefinition"] == td2, c.dump(name)
    time.sleep(HEALTHY_AFTER + 0.5)

    upd = c.ecs.update_service(cluster=c.name, service=name, taskDefinition=td3)["service"]
    d3 = next(d["id"] for d in upd["deployments"] if d["status"] == "PRIMARY")
    assert upd["taskDefinition"] == td3

    t0 = time.monotonic()
    seen_failed = False
    rollback_dep = None
    samples = []
    while time.monotonic() - t0 < 120:
        s = c.svc(name)
        deps = {d["id"]: d for d in s["deployments"]}
        samples.append([(d["id"][-6:], d["status"], d.get("rolloutState"), d["taskDefinition"].rsplit(":", 1)[-1],
                         d["runningCount"], d.get("failedTasks")) for d in s["deployments"]])
        # minimumHealthyPercent 100: the :2 tasks keep serving while :3 fails.
        assert s["runningCount"] >= desired, f"runningCount fell below {desired}\n{samples[-5:]}\n{c.dump(name)}"
        if d3 in deps and deps[d3].get("rolloutState") == "FAILED":
            seen_failed = True
        prim = next((d for d in s["deployments"] if d["status"] == "PRIMARY"), None)
        if prim and prim["id"] not in (d2, d3) and prim["taskDefinition"] == td2:
            rollback_dep = prim["id"]
            if (prim.get("rolloutState") == "COMPLETED" and len(s["deployments"]) == 1
                    and s["runningCount"] == desired):
                break
        time.sleep(0.3)
    elapsed = time.monotonic() - t0
    print(f"\ncircuit breaker: rollback completed after {elapsed:.1f}s; deployments seen: {samples[::5]}")
    assert rollback_dep, f"no rollback deployment to {td2} appeared within 120 s\n{c.dump(name)}"
    s = c.wait_stable(name, timeout=30)
    assert s["taskDefinition"] == td2, c.dump(name)
    assert s["deployments"][0]["id"] == rollback_dep and DEPLOYMENT_ID.match(rollback_dep)
    # The failed deployment leaves deployments[] as soon as its tasks are gone,
    # which can be before a sample sees it FAILED; its event and the
    # ServiceDeployments API (below) are the durable record.
    msgs = messages(s)
    assert seen_failed or any(f"(deployment {d3}) deployment failed" in m for m in msgs), \
        f"deployment {d3} was never seen FAILED (nor a 'deployment failed' event)\n{samples}\n{c.dump(name)}"
    assert d3 not in {d["id"] for d in s["deployments"]}, c.dump(name)

    tasks = c.service_tasks(name)
    assert len(tasks) == desired and all(t["taskDefinitionArn"] == td2 for t in tasks), c.dump(name)
    failed = c.started_by(d3)
    assert all(t["desiredStatus"] == "STOPPED" for t in failed), c.dump(name)
    # The breaker trips at `threshold` failed tasks; at most the tasks in flight
    # at that moment (maximumPercent headroom: `desired`) come on top.
    assert threshold <= len(failed) <= threshold + desired, (len(failed), c.dump(name))

    # ServiceDeployments API: the failed deployment is rolled back.
    arns = c.ecs.list_service_deployments(cluster=c.name, service=name)["serviceDeployments"]
    sd_arns = [x["serviceDeploymentArn"] for x in arns]
    assert len(sd_arns) >= 3, arns
    sds = c.ecs.describe_service_deployments(serviceDeploymentArns=sd_arns)["serviceDeployments"]
    rolled = [d for d in sds if d.get("status") in ("ROLLBACK_SUCCESSFUL", "ROLLBACK_IN_PROGRESS")]
    assert len(rolled) == 1, json.dumps(sds, default=str, indent=1)
    rb = rolled[0]
    assert rb.get("rollback", {}).get("serviceRevisionArn"), json.dumps(rb, default=str)
    assert rb.get("rollback", {}).get("reason"), json.dumps(rb, default=str)
    cb = rb["deploymentCircuitBreaker"]
    assert (cb["status"], cb["threshold"]) == ("TRIGGERED", threshold) and cb["failureCount"] >= threshold, cb
    # Once the rollback deployment completed, the failed one is ROLLBACK_SUCCESSFUL.
    deadline = time.monotonic() + 20
    while rb["status"] != "ROLLBACK_SUCCESSFUL" and time.monotonic() < deadline:
        time.sleep(0.5)
        rb = c.ecs.describe_service_deployments(serviceDeploymentArns=[rb["serviceDeploymentArn"]])[
            "serviceDeployments"][0]
    assert rb["status"] == "ROLLBACK_SUCCESSFUL", json.dumps(rb, default=str)
    # The revision that failed is :3's, and the one we returned to is :2's.
    target = rb["targetServiceRevision"]["arn"]
    revs = c.ecs.describe_service_revisions(serviceRevisionArns=[target, rb["rollback"]["serviceRevisionArn"]])
    assert revs["failures"] == [], revs["failures"]
    by = {r["serviceRevisionArn"]: r["taskDefinition"] for r in revs["serviceRevisions"]}
    assert by == {target: td3, rb["rollback"]["serviceRevisionArn"]: td2}, by


# --------------------------------------------------------------------------
# DAEMON
# --------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_daemon_runs_one_task_per_instance(make_cluster):
    c = make_cluster(2)
    name = uniq("daemon")
    td = c.register(uniq("daemon"))
    created = c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td,
                                   schedulingStrategy="DAEMON")["service"]
    assert created["schedulingStrategy"] == "DAEMON"

    def one_per_instance(n):
        def pred(tasks):
            rn = running(tasks)
            return len(live(tasks)) == n and len(rn) == n and {t["containerInstanceArn"] for t in rn} == set(c.arns)
        return pred

    c.wait_tasks(name, one_per_instance(2), timeout=40, what="one RUNNING task on each of 2 instances")
    s = c.wait_stable(name, timeout=30)
    assert s["desiredCount"] == 2 and s["runningCount"] == 2, c.dump(name)

    c.add_agent()
    c.wait_tasks(name, one_per_instance(3), timeout=40, what="one RUNNING task on each of 3 instances")
    s = c.wait_service(name, lambda s: s["desiredCount"] == 3 and s["runningCount"] == 3, timeout=20,
                       what="desiredCount == runningCount == 3")
    # And it stays that way.
    time.sleep(2)
    tasks = c.service_tasks(name)
    assert one_per_instance(3)(tasks), c.dump(name)


# --------------------------------------------------------------------------
# Draining
# --------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_draining_instance_replaces_service_tasks_first(make_cluster):
    c = make_cluster(2)
    a, b = c.arns
    name = uniq("drain")
    td = c.register(uniq("drain"))
    desired = 2
    c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td, desiredCount=desired,
                         deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200},
                         placementStrategy=[{"type": "spread", "field": "instanceId"}])
    c.wait_stable(name)
    tasks = c.service_tasks(name)
    on_a = [t for t in tasks if t["containerInstanceArn"] == a]
    assert len(on_a) == 1, f"spread by instanceId should put one task on each instance\n{c.dump(name)}"
    victim = on_a[0]
    orig = {t["taskArn"] for t in tasks}
    time.sleep(HEALTHY_AFTER + 0.5)

    c.ecs.update_container_instances_state(cluster=c.name, containerInstances=[a], status="DRAINING")
    samples = []
    deadline = time.monotonic() + 60
    done = False
    while time.monotonic() < deadline:
        tasks = c.service_tasks(name)
        rn = running(tasks)
        samples.append([(task_id(t["taskArn"])[:8], "A" if t["containerInstanceArn"] == a else "B",
                         t["lastStatus"]) for t in tasks])
        ctx = f"samples: {samples[-5:]}\n{c.dump(name)}"
        assert len(rn) >= desired, f"minimumHealthyPercent 100 violated while draining\n{ctx}"
        assert not [t for t in live(tasks) if t["containerInstanceArn"] == a and t["taskArn"] != victim["taskArn"]], \
            f"a new task landed on the DRAINING instance\n{ctx}"
        if len(rn) == desired and all(t["containerInstanceArn"] == b for t in live(tasks)) and len(live(tasks)) == desired:
            done = True
            break
        time.sleep(0.3)
    assert done, f"the draining instance's task was not replaced within 60 s\n{samples}\n{c.dump(name)}"

    old = c.wait_task(victim["taskArn"], lambda x: x["lastStatus"] == "STOPPED", timeout=30, what="STOPPED",
                      service=name)
    replacements = [t for t in c.service_tasks(name) if t["taskArn"] not in orig]
    assert len(replacements) == 1, c.dump(name)
    newest = replacements[0]
    assert newest["containerInstanceArn"] == b
    stop_began = ts(old.get("stoppingAt") or old.get("stoppedAt"))
    # minimumHealthyPercent 100: the replacement was healthy (RUNNING for
    # --task-healthy-after) before the drained task was told to stop.
    assert ts(newest["startedAt"]) + HEALTHY_AFTER <= stop_began + 0.05, (
        f"the replacement started at {newest['startedAt']} after the drained task began stopping at "
        f"{old.get('stoppingAt')}\n{c.dump(name)}")

    # Nothing new lands on the draining instance, even when scaling up.
    c.ecs.update_service(cluster=c.name, service=name, desiredCount=3)
    c.wait_stable(name)
    tasks = c.service_tasks(name)
    assert len(tasks) == 3 and all(t["containerInstanceArn"] == b for t in tasks), c.dump(name)
    assert c.instance(a)["status"] == "DRAINING"
    deadline = time.monotonic() + 15
    while c.instance(a)["runningTasksCount"] != 0 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert c.instance(a)["runningTasksCount"] == 0, c.instance(a)


# --------------------------------------------------------------------------
# Task protection
# --------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_protected_tasks_survive_scale_in(make_cluster):
    c = make_cluster(1)
    name = uniq("prot")
    td = c.register(uniq("prot"))
    c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td, desiredCount=3)
    c.wait_stable(name)
    tasks = c.service_tasks(name)
    assert len(tasks) == 3
    keep = tasks[1]["taskArn"]
    out = c.ecs.update_task_protection(cluster=c.name, tasks=[keep], protectionEnabled=True, expiresInMinutes=60)
    assert not out.get("failures"), out
    assert out["protectedTasks"][0]["taskArn"] == keep and out["protectedTasks"][0]["protectionEnabled"] is True
    got = c.ecs.get_task_protection(cluster=c.name, tasks=[keep])["protectedTasks"][0]
    assert got["protectionEnabled"] is True and got.get("expirationDate"), got

    c.ecs.update_service(cluster=c.name, service=name, desiredCount=1)
    rest = c.wait_tasks(name, lambda ts_: len(live(ts_)) == 1, timeout=40, what="one task left")
    assert rest[0]["taskArn"] == keep, f"the protected task was stopped\n{c.dump(name)}"
    for t in tasks:
        if t["taskArn"] != keep:
            c.wait_task(t["taskArn"], lambda x: x["lastStatus"] == "STOPPED", timeout=30, what="STOPPED")
    c.wait_stable(name)

    # Even scaling to zero leaves a protected task running ...
    c.ecs.update_service(cluster=c.name, service=name, desiredCount=0)
    end = time.monotonic() + 5
    while time.monotonic() < end:
        t = c.describe_tasks([keep])[0]
        assert t["desiredStatus"] == "RUNNING" and t["lastStatus"] == "RUNNING", \
            f"protected task stopped on scale to 0\n{c.dump(name)}"
        time.sleep(0.3)
    # ... until its protection is removed.
    c.ecs.update_task_protection(cluster=c.name, tasks=[keep], protectionEnabled=False)
    c.wait_task(keep, lambda x: x["lastStatus"] == "STOPPED", timeout=30, what="STOPPED after unprotecting",
                service=name)
    c.wait_service(name, lambda s: s["runningCount"] == 0 and s["pendingCount"] == 0, timeout=20,
                   what="no tasks")


# --------------------------------------------------------------------------
# A container dies behind the agent's back
# --------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_killed_container_is_replaced(make_cluster):
    c = make_cluster(1)
    name = uniq("kill")
    td = c.register(uniq("kill"))
    c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td, desiredCount=2)
    s = c.wait_stable(name)
    dep = s["deployments"][0]["id"]
    tasks = c.service_tasks(name)
    victim = tasks[0]
    cids = containers_of_task(victim["taskArn"], all_=False)
    assert cids and victim["containers"][0]["runtimeId"] in cids, (cids, victim["containers"])
    docker("kill", victim["containers"][0]["runtimeId"])

    c.wait_task(victim["taskArn"], lambda x: x["lastStatus"] == "STOPPED", timeout=30, what="STOPPED", service=name)
    after = c.wait_tasks(
        name, lambda ts_: len(running(ts_)) == 2 and victim["taskArn"] not in {t["taskArn"] for t in ts_},
        timeout=30, what="two RUNNING tasks without the killed one")
    s = c.wait_stable(name, timeout=30)
    assert s["runningCount"] == 2
    new = [t for t in after if t["taskArn"] not in {x["taskArn"] for x in tasks}]
    assert len(new) == 1 and new[0]["startedBy"] == dep, c.dump(name)
    msgs = messages(s)
    assert any(f"(service {name}) has started 1 tasks" in m and task_id(new[0]["taskArn"]) in m for m in msgs), \
        c.dump(name)


# --------------------------------------------------------------------------
# Lost host
# --------------------------------------------------------------------------


@pytest.mark.timeout(150)
def test_lost_host_tasks_are_replaced_and_stopped_on_return(make_cluster):
    c = make_cluster(2)
    a, b = c.arns
    lost_agent = c.agents[0]
    std_td = c.register(uniq("standalone"))
    standalone = c.ecs.start_task(cluster=c.name, taskDefinition=std_td, containerInstances=[a])["tasks"][0]["taskArn"]
    c.wait_task(standalone, lambda x: x["lastStatus"] == "RUNNING", timeout=30, what="RUNNING")

    name = uniq("lost")
    td = c.register(uniq("lost"))
    desired = 2
    c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td, desiredCount=desired,
                         placementStrategy=[{"type": "spread", "field": "instanceId"}])
    c.wait_stable(name)
    tasks = c.service_tasks(name)
    on_a = [t for t in tasks if t["containerInstanceArn"] == a]
    assert len(on_a) == 1, c.dump(name)
    lost = on_a[0]
    lost_cid = lost["containers"][0]["runtimeId"]
    std_cid = c.describe_tasks([standalone])[0]["containers"][0]["runtimeId"]

    t0 = time.monotonic()
    lost_agent.kill9()
    t_disc = t_repl = None
    while time.monotonic() - t0 < 60 and (t_disc is None or t_repl is None):
        now = time.monotonic() - t0
        if t_disc is None and c.instance(a)["agentConnected"] is False:
            t_disc = now
        st = c.describe_tasks([standalone])[0]
        assert st["desiredStatus"] == "RUNNING", f"standalone task on the lost host was stopped: {st}"
        s = c.svc(name)
        tk = c.service_tasks(name)
        if (t_repl is None and s["runningCount"] == desired and len(running(tk)) == desired
                and all(t["containerInstanceArn"] == b for t in live(tk))):
            t_repl = now
        time.sleep(0.2)
    timing = (f"lost host: agentConnected false after {t_disc}s (--agent-disconnect-after {DISCONNECT_AFTER}); "
              f"replacements RUNNING elsewhere with runningCount == {desired} after {t_repl}s "
              f"(+ --lost-instance-grace {LOST_GRACE})")
    print("\n" + timing)
    assert t_disc is not None and t_disc <= DISCONNECT_AFTER + 5, f"{timing}\n{c.dump(name)}"
    assert t_repl is not None and t_repl <= DISCONNECT_AFTER + LOST_GRACE + 20, f"{timing}\n{c.dump(name)}"
    assert c.describe_tasks([lost["taskArn"]])[0]["desiredStatus"] == "STOPPED", c.dump(name)
    assert container_running(lost_cid), "the lost host's container should keep running while its agent is gone"

    # The agent comes back: it stops the replaced service task, keeps the standalone one.
    lost_agent.start()
    assert lost_agent.instance_arn() == a
    c.wait_task(lost["taskArn"], lambda x: x["lastStatus"] == "STOPPED", timeout=40,
                what="STOPPED after its agent returned", service=name)
    deadline = time.monotonic() + 20
    while container_running(lost_cid) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not container_running(lost_cid), "the returned agent did not stop the replaced task's container"
    deadline = time.monotonic() + 20
    while not c.instance(a)["agentConnected"] and time.monotonic() < deadline:
        time.sleep(0.3)
    assert c.instance(a)["agentConnected"], lost_agent.log_tail()
    end = time.monotonic() + 3
    while time.monotonic() < end:
        s = c.svc(name)
        tk = c.service_tasks(name)
        assert s["runningCount"] == desired and len(live(tk)) == desired and len(running(tk)) == desired, c.dump(name)
        time.sleep(0.3)
    st = c.describe_tasks([standalone])[0]
    assert st["lastStatus"] == "RUNNING" and st["desiredStatus"] == "RUNNING", st
    assert container_running(std_cid)
    c.ecs.stop_task(cluster=c.name, task=standalone)


# --------------------------------------------------------------------------
# Server kill -9 in the middle of a deployment
# --------------------------------------------------------------------------


def _kill_point_reached(c: Cluster, point: str, d1: str, d2: str) -> bool:
    if point == "at-once":
        return True
    if point == "first-start":
        return bool(c.list_tasks(startedBy=d2))
    # "old-stopping": the new deployment's tasks are up and the old ones are being stopped.
    return any(t["desiredStatus"] == "STOPPED" for t in c.started_by(d1))


@pytest.mark.timeout(150)
@pytest.mark.parametrize("point", ["at-once", "first-start", "old-stopping"])
def test_server_kill9_mid_deployment_resumes_without_double_starts(own_server, make_cluster, point):
    srv = own_server
    c = make_cluster(2, server=srv)
    fam = uniq("k9")
    td1 = c.register(fam, version="1")
    td2 = c.register(fam, version="2")
    name = uniq("k9")
    desired = 4
    c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td1, desiredCount=desired,
                         deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 150})
    s = c.wait_stable(name)
    d1 = s["deployments"][0]["id"]
    d2 = c.ecs.update_service(cluster=c.name, service=name, taskDefinition=td2)["service"]["deployments"][0]["id"]
    assert d2 != d1
    deadline = time.monotonic() + 30
    while not _kill_point_reached(c, point, d1, d2) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _kill_point_reached(c, point, d1, d2), f"kill point {point} never reached\n{c.dump(name)}"
    s = c.svc(name)
    assert len(s["deployments"]) == 2, f"deployment finished before the kill; test is moot\n{c.dump(name)}"

    port = srv.host_port[1]
    srv.kill9()
    srv.listen = f"127.0.0.1:{port}"  # same port: the agents find it again
    srv.start()
    c.ecs = srv.client()

    s = c.wait_stable(name, timeout=60)
    assert s["taskDefinition"] == td2 and s["deployments"][0]["id"] == d2, c.dump(name)
    by_d2 = c.started_by(d2)
    assert len(by_d2) == desired, (
        f"deployment {d2} started {len(by_d2)} tasks for desiredCount {desired}\n{c.dump(name)}")
    assert all(t["desiredStatus"] == "RUNNING" and t["lastStatus"] == "RUNNING" for t in by_d2), c.dump(name)
    assert not [t for t in c.started_by(d1) if t["desiredStatus"] == "RUNNING"], c.dump(name)
    # No orphan containers from a start the old process made and the new one forgot.
    deadline = time.monotonic() + 20
    while len(running_containers(c.arns)) != desired and time.monotonic() < deadline:
        time.sleep(0.3)
    assert len(running_containers(c.arns)) == desired, (running_containers(c.arns), c.dump(name))


# --------------------------------------------------------------------------
# More rolling: a new revision while a deployment is in progress; scaling
# --------------------------------------------------------------------------


def watch_bounds(c: Cluster, name: str, desired: int, min_pct: int, max_pct: int, done, timeout: float = 60.0):
    """Samples the service every ~0.3 s, asserting the rolling bounds over all
    deployments' tasks, until done(service, live tasks) is true."""
    min_healthy, max_live = bounds(desired, min_pct, max_pct)
    samples = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = c.svc(name)
        tasks = c.service_tasks(name)
        now = time.time()
        lv, rn, hl = live(tasks), running(tasks), healthy(tasks, now)
        by_td: dict[str, int] = {}
        for t in lv:
            k = t["taskDefinitionArn"].rsplit(":", 1)[-1]
            by_td[k] = by_td.get(k, 0) + 1
        sample = dict(live=len(lv), running=len(rn), healthy=len(hl), by_revision=by_td,
                      deps=[(d["id"][-4:], d["status"], d.get("rolloutState"), d["runningCount"], d["pendingCount"])
                            for d in s["deployments"]])
        samples.append(sample)
        ctx = f"sample {sample}\nlast samples: {samples[-8:]}\n{c.dump(name)}"
        assert len(lv) <= max_live, f"more than {max_live} live tasks\n{ctx}"
        assert s["runningCount"] + s["pendingCount"] <= max_live, f"service counts exceed {max_live}\n{ctx}"
        assert len(hl) >= min_healthy, f"fewer than {min_healthy} healthy RUNNING tasks\n{ctx}"
        if done(s, lv):
            return samples
        time.sleep(0.3)
    raise AssertionError(f"service {name} did not finish within {timeout}s\nsamples: {samples}\n{c.dump(name)}")


@pytest.mark.timeout(150)
def test_new_revision_during_a_deployment_supersedes_it(make_cluster):
    c = make_cluster(2)
    fam = uniq("super")
    td1, td2, td3 = (c.register(fam, version=str(i)) for i in (1, 2, 3))
    name = uniq("super")
    desired, min_pct, max_pct = 4, 50, 200
    c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td1, desiredCount=desired,
                         deploymentConfiguration={"minimumHealthyPercent": min_pct, "maximumPercent": max_pct})
    d1 = c.wait_stable(name)["deployments"][0]["id"]
    time.sleep(HEALTHY_AFTER + 0.5)
    d2 = c.ecs.update_service(cluster=c.name, service=name, taskDefinition=td2)["service"]["deployments"][0]["id"]
    deadline = time.monotonic() + 20
    while not c.list_tasks(startedBy=d2) and time.monotonic() < deadline:
        time.sleep(0.05)
    upd = c.ecs.update_service(cluster=c.name, service=name, taskDefinition=td3)["service"]
    d3 = upd["deployments"][0]["id"]
    assert upd["deployments"][0]["status"] == "PRIMARY" and upd["deployments"][0]["taskDefinition"] == td3
    assert {d["id"] for d in upd["deployments"]} >= {d2, d3}, upd["deployments"]
    assert sum(1 for d in upd["deployments"] if d["status"] == "PRIMARY") == 1, upd["deployments"]

    samples = watch_bounds(
        c, name, desired, min_pct, max_pct,
        lambda s, lv: (len(s["deployments"]) == 1 and s["deployments"][0]["id"] == d3
                       and s["deployments"][0].get("rolloutState") == "COMPLETED" and len(lv) == desired
                       and all(t["taskDefinitionArn"] == td3 and t["lastStatus"] == "RUNNING" for t in lv)))
    print(f"\nsuperseded deployment samples: {samples}")
    s = c.wait_stable(name)
    assert s["taskDefinition"] == td3
    assert len(c.started_by(d3)) == desired, c.dump(name)
    for dep in (d1, d2):
        assert not [t for t in c.started_by(dep) if t["desiredStatus"] == "RUNNING"], c.dump(name)


@pytest.mark.timeout(120)
def test_scale_out_and_in(make_cluster):
    c = make_cluster(2)
    name = uniq("scale")
    td = c.register(uniq("scale"))
    c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td, desiredCount=2)
    dep = c.wait_stable(name)["deployments"][0]["id"]
    first = {t["taskArn"] for t in c.service_tasks(name)}

    c.ecs.update_service(cluster=c.name, service=name, desiredCount=5)
    s = c.wait_stable(name)
    assert s["desiredCount"] == 5 and s["runningCount"] == 5
    assert s["deployments"][0]["id"] == dep, "a desiredCount change must not start a new deployment"
    tasks = c.service_tasks(name)
    assert len(tasks) == 5 and first <= {t["taskArn"] for t in tasks}, c.dump(name)
    assert all(t["startedBy"] == dep for t in tasks)

    c.ecs.update_service(cluster=c.name, service=name, desiredCount=1)
    s = c.wait_stable(name)
    assert s["runningCount"] == 1 and len(c.service_tasks(name)) == 1, c.dump(name)
    stopped_msgs = [m for m in messages(s) if f"(service {name}) has stopped" in m]
    gone = {t["taskArn"] for t in tasks} - {t["taskArn"] for t in c.service_tasks(name)}
    assert len(gone) == 4
    for arn in gone:
        assert any(f"(task {task_id(arn)})" in m for m in stopped_msgs), (arn, c.dump(name))
        c.wait_task(arn, lambda x: x["lastStatus"] == "STOPPED", timeout=30, what="STOPPED", service=name)
    # Exactly the tasks it needed: 2 + 3, none extra.
    assert len(c.started_by(dep)) == 5, c.dump(name)


# --------------------------------------------------------------------------
# Short outages and deletion mid-deployment
# --------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_agent_back_within_grace_replaces_nothing(make_cluster):
    c = make_cluster(2)
    name = uniq("blip")
    td = c.register(uniq("blip"))
    desired = 2
    c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td, desiredCount=desired,
                         placementStrategy=[{"type": "spread", "field": "instanceId"}])
    dep = c.wait_stable(name)["deployments"][0]["id"]
    before = {t["taskArn"] for t in c.service_tasks(name)}
    agent = c.agents[0]
    registrations = agent.registrations()
    agent.kill9()
    time.sleep(1)  # the blip: well under --agent-disconnect-after + --lost-instance-grace
    agent.start()
    agent.wait_registered(registrations)
    assert agent.instance_arn() == c.arns[0]
    deadline = time.monotonic() + 60
    while not c.ecs.describe_container_instances(cluster=c.name, containerInstances=[c.arns[0]])[
            "containerInstances"][0]["agentConnected"]:
        assert time.monotonic() < deadline, f"agent never reconnected\n{c.dump(name)}"
        time.sleep(0.2)
    # Had the server taken the blip for a lost host, it would act within this window.
    end = time.monotonic() + DISCONNECT_AFTER + LOST_GRACE + 4
    while time.monotonic() < end:
        tasks = c.service_tasks(name)
        assert {t["taskArn"] for t in live(tasks)} == before, f"tasks were replaced after a 1 s blip\n{c.dump(name)}"
        time.sleep(0.3)
    assert len(c.started_by(dep)) == desired, c.dump(name)
    assert all(t["lastStatus"] == "RUNNING" for t in c.service_tasks(name)), c.dump(name)


@pytest.mark.timeout(90)
def test_delete_service_mid_deployment_stops_everything(make_cluster):
    c = make_cluster(2)
    fam = uniq("delmid")
    td1, td2 = c.register(fam, version="1"), c.register(fam, version="2")
    name = uniq("delmid")
    c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td1, desiredCount=3)
    d1 = c.wait_stable(name)["deployments"][0]["id"]
    d2 = c.ecs.update_service(cluster=c.name, service=name, taskDefinition=td2)["service"]["deployments"][0]["id"]
    deadline = time.monotonic() + 20
    while not c.list_tasks(startedBy=d2) and time.monotonic() < deadline:
        time.sleep(0.05)
    out = c.ecs.delete_service(cluster=c.name, service=name, force=True)["service"]
    assert out["status"] == "DRAINING", out["status"]
    try:
        c.ecs.get_waiter("services_inactive").wait(cluster=c.name, services=[name],
                                                   WaiterConfig={"Delay": 1, "MaxAttempts": 45})
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"service never became INACTIVE: {e}\n{c.dump(name)}") from None
    for dep in (d1, d2):
        for t in c.started_by(dep):
            c.wait_task(t["taskArn"], lambda x: x["lastStatus"] == "STOPPED", timeout=30, what="STOPPED")
    assert running_containers(c.arns) == [], "containers of a deleted service still run"
    # Nothing starts afterwards.
    time.sleep(2)
    assert c.list_tasks(desiredStatus="RUNNING") == [], c.dump(name)


@pytest.mark.timeout(150)
def test_server_kill9_during_failing_deployment_keeps_breaker_count(own_server, make_cluster):
    """The breaker's failure count survives a server crash: the rollback comes
    after `threshold` failures in total, not `threshold` more after the restart."""
    srv = own_server
    c = make_cluster(2, server=srv)
    fam = uniq("cbk9")
    td1 = c.register(fam, version="1")
    td2 = c.register(fam, version="2", command=["sh", "-c", "exit 1"])
    name = uniq("cbk9")
    desired = 2
    threshold = 10
    c.ecs.create_service(
        cluster=c.name, serviceName=name, taskDefinition=td1, desiredCount=desired,
        deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200,
                                 "deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    c.wait_stable(name)
    d2 = c.ecs.update_service(cluster=c.name, service=name, taskDefinition=td2)["service"]["deployments"][0]["id"]
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if sum(1 for t in c.started_by(d2) if t["lastStatus"] == "STOPPED") >= threshold // 2:
            break
        time.sleep(0.1)
    s = c.svc(name)
    assert any(d["id"] == d2 and d.get("rolloutState") == "IN_PROGRESS" for d in s["deployments"]), \
        f"the breaker tripped before the kill; test is moot\n{c.dump(name)}"
    before = len(c.started_by(d2))

    port = srv.host_port[1]
    srv.kill9()
    srv.listen = f"127.0.0.1:{port}"
    srv.start()
    c.ecs = srv.client()

    s = c.wait_service(
        name, lambda s: s["taskDefinition"] == td1 and len(s["deployments"]) == 1
        and s["deployments"][0].get("rolloutState") == "COMPLETED" and s["runningCount"] == desired,
        timeout=90, what=f"rolled back to {td1} and COMPLETED")
    failed = c.started_by(d2)
    print(f"\nbreaker across a server kill -9: {before} tasks of {d2} before the kill, {len(failed)} in total")
    assert threshold <= len(failed) <= threshold + desired, (
        f"{len(failed)} tasks started by the failing deployment ({before} before the kill); "
        f"threshold {threshold}\n{c.dump(name)}")
    assert len(c.service_tasks(name)) == desired


@pytest.mark.timeout(120)
def test_server_kill9_with_stable_services_changes_nothing(own_server, make_cluster):
    """After a crash the server must not take its agents for lost (nor restart
    anything) just because it has not heard from them yet."""
    srv = own_server
    c = make_cluster(2, server=srv)
    name, dname = uniq("calm"), uniq("calmd")
    td = c.register(uniq("calm"))
    c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td, desiredCount=3)
    c.ecs.create_service(cluster=c.name, serviceName=dname, taskDefinition=td, schedulingStrategy="DAEMON")
    dep = c.wait_stable(name)["deployments"][0]["id"]
    ddep = c.wait_stable(dname)["deployments"][0]["id"]
    before = {t["taskArn"] for t in c.service_tasks(name) + c.service_tasks(dname)}
    assert len(before) == 5, c.dump(name) + c.dump(dname)
    containers = set(running_containers(c.arns))

    port = srv.host_port[1]
    srv.kill9()
    srv.listen = f"127.0.0.1:{port}"
    srv.start()
    c.ecs = srv.client()

    end = time.monotonic() + DISCONNECT_AFTER + LOST_GRACE + 5
    while time.monotonic() < end:
        now = {t["taskArn"] for t in live(c.service_tasks(name) + c.service_tasks(dname))}
        assert now == before, f"tasks changed after a server restart\n{c.dump(name)}\n{c.dump(dname)}"
        time.sleep(0.3)
    assert len(c.started_by(dep)) == 3 and len(c.started_by(ddep)) == 2, c.dump(name) + c.dump(dname)
    assert set(running_containers(c.arns)) == containers
    for n in (name, dname):
        s = c.svc(n)
        assert s["runningCount"] == s["desiredCount"] and len(s["deployments"]) == 1, c.dump(n)


@pytest.mark.timeout(90)
def test_daemon_task_killed_is_replaced_on_its_instance(make_cluster):
    c = make_cluster(2)
    name = uniq("dkill")
    td = c.register(uniq("dkill"))
    c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td, schedulingStrategy="DAEMON")
    c.wait_stable(name)
    tasks = c.service_tasks(name)
    victim = tasks[0]
    docker("kill", victim["containers"][0]["runtimeId"])
    c.wait_task(victim["taskArn"], lambda x: x["lastStatus"] == "STOPPED", timeout=30, what="STOPPED", service=name)
    after = c.wait_tasks(
        name, lambda ts_: len(running(ts_)) == 2 and len(live(ts_)) == 2
        and {t["containerInstanceArn"] for t in running(ts_)} == set(c.arns)
        and victim["taskArn"] not in {t["taskArn"] for t in ts_},
        timeout=30, what="one RUNNING task per instance again")
    new = [t for t in after if t["taskArn"] != tasks[1]["taskArn"]]
    assert len(new) == 1 and new[0]["containerInstanceArn"] == victim["containerInstanceArn"], c.dump(name)
    s = c.wait_stable(name, timeout=20)
    assert s["desiredCount"] == 2 and s["runningCount"] == 2


@pytest.mark.timeout(120)
def test_frozen_agent_is_lost_then_stops_its_replaced_tasks(make_cluster):
    """A partition rather than a crash: the agent is frozen (SIGSTOP), its tasks
    are replaced elsewhere; thawed (SIGCONT), the same agent process must stop
    the replaced task and keep the service at exactly desiredCount."""
    import os
    import signal

    c = make_cluster(2)
    a, b = c.arns
    agent = c.agents[0]
    name = uniq("frozen")
    td = c.register(uniq("frozen"))
    desired = 2
    c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td, desiredCount=desired,
                         placementStrategy=[{"type": "spread", "field": "instanceId"}])
    c.wait_stable(name)
    lost = next(t for t in c.service_tasks(name) if t["containerInstanceArn"] == a)
    cid = lost["containers"][0]["runtimeId"]
    t0 = time.monotonic()
    os.kill(agent.proc.pid, signal.SIGSTOP)
    try:
        c.wait_tasks(name, lambda ts_: len(running(ts_)) == desired
                     and all(t["containerInstanceArn"] == b for t in live(ts_)),
                     timeout=40, what="replacement RUNNING on the other instance")
        t_repl = time.monotonic() - t0
        assert container_running(cid)
    finally:
        os.kill(agent.proc.pid, signal.SIGCONT)
    print(f"\nfrozen agent: replaced after {t_repl:.1f}s")
    c.wait_task(lost["taskArn"], lambda x: x["lastStatus"] == "STOPPED", timeout=40,
                what="STOPPED after the agent thawed", service=name)
    deadline = time.monotonic() + 20
    while container_running(cid) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not container_running(cid), f"the thawed agent left the replaced task's container running\n{agent.log_tail()}"
    end = time.monotonic() + 3
    while time.monotonic() < end:
        s = c.svc(name)
        assert s["runningCount"] == desired and len(live(c.service_tasks(name))) == desired, c.dump(name)
        time.sleep(0.3)


# --------------------------------------------------------------------------
# Container health checks
# --------------------------------------------------------------------------


@pytest.mark.timeout(150)
def test_unhealthy_task_is_replaced_first_after_the_grace_period(make_cluster):
    """A container whose health check starts failing is replaced first, then
    stopped with ECS's reason once the replacement is healthy; the grace
    period holds the verdict back."""
    c = make_cluster(1)
    name = uniq("health")
    # HEALTHY at the first check (5 s), UNHEALTHY from the second (10 s).
    td = c.ecs.register_task_definition(
        family=uniq("health"),
        containerDefinitions=[{
            "name": "app",
            "image": "stevedore-test/busybox:latest",
            "memory": 32,
            "stopTimeout": 2,
            "command": ["sh", "-c", "touch /tmp/ok; sleep 7; rm /tmp/ok; sleep 3600"],
            "healthCheck": {"command": ["CMD-SHELL", "test -f /tmp/ok"],
                            "interval": 5, "timeout": 2, "retries": 1, "startPeriod": 0},
        }],
    )["taskDefinition"]["taskDefinitionArn"]
    grace = 12
    c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td, desiredCount=1,
                         healthCheckGracePeriodSeconds=grace,
                         deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 100})
    first = c.wait_tasks(name, lambda ts_: len(running(ts_)) == 1, timeout=40, what="one RUNNING task")[0]
    c.wait_task(first["taskArn"], lambda t: t.get("healthStatus") == "HEALTHY",
                timeout=30, what="HEALTHY", service=name)
    c.wait_task(first["taskArn"], lambda t: t.get("healthStatus") == "UNHEALTHY",
                timeout=30, what="UNHEALTHY", service=name)
    stopped = c.wait_task(first["taskArn"], lambda t: t["desiredStatus"] == "STOPPED",
                          timeout=60, what="stopped by the scheduler", service=name)
    assert stopped["stoppedReason"] == "Task failed container health checks.", stopped
    assert stopped["stopCode"] == "ServiceSchedulerInitiated", stopped
    # Not before the grace period, counted from when the task started.
    assert ts(stopped["stoppingAt"]) - ts(first["startedAt"]) >= grace - 0.5, (first, stopped)
    # The replacement was already running (and healthy) when it was stopped.
    others = [t for t in c.started_by(first["startedBy"]) if t["taskArn"] != first["taskArn"]]
    assert others, c.dump(name)
    replacement = min(others, key=lambda t: ts(t["createdAt"]))
    assert replacement.get("startedAt") and ts(replacement["startedAt"]) < ts(stopped["stoppingAt"]), \
        (replacement, stopped)
    s = c.svc(name)
    assert any(f"(task {task_id(first['taskArn'])}) failed container health checks" in m
               for m in messages(s)), c.dump(name)
    assert s["deployments"][0]["failedTasks"] >= 1, c.dump(name)


# --------------------------------------------------------------------------
# StopServiceDeployment
# --------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_stop_service_deployment_rolls_back_or_aborts(make_cluster):
    """A deployment that cannot place its tasks is rolled back on request
    (the earlier revision runs again) or aborted (nothing more is launched)."""
    c = make_cluster(1)
    td1 = c.register(uniq("sd1"))
    # More memory than any host has: placement fails, the rollout never ends.
    td2 = c.register(uniq("sd2"), version="2", memory=10_000_000)
    for stop_type in ("ROLLBACK", "ABORT"):
        name = uniq("stopdep")
        c.ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td1, desiredCount=2,
                             deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200})
        first = c.wait_stable(name)["deployments"][0]["id"]
        c.ecs.update_service(cluster=c.name, service=name, taskDefinition=td2)
        c.wait_service(name, lambda s: any("unable to place a task" in m for m in messages(s)),
                       timeout=30, what="a placement failure event")
        deps = c.ecs.list_service_deployments(cluster=c.name, service=name)["serviceDeployments"]
        current = deps[0]
        assert current["status"] == "IN_PROGRESS", deps
        c.ecs.stop_service_deployment(serviceDeploymentArn=current["serviceDeploymentArn"], stopType=stop_type)
        if stop_type == "ROLLBACK":
            s = c.wait_service(name, lambda s: len(s["deployments"]) == 1
                               and s["deployments"][0]["taskDefinition"] == td1
                               and s["deployments"][0]["rolloutState"] == "COMPLETED",
                               timeout=40, what="the rollback to completed")
            assert s["taskDefinition"] == td1, c.dump(name)
            assert s["deployments"][0]["id"] != first
            got = c.ecs.describe_service_deployments(
                serviceDeploymentArns=[current["serviceDeploymentArn"]])["serviceDeployments"][0]
            assert got["status"] == "ROLLBACK_SUCCESSFUL", got
            assert got["rollback"]["serviceRevisionArn"], got
        else:
            got = c.wait_service(name, lambda s: s["deployments"][0]["rolloutState"] == "FAILED",
                                 timeout=30, what="the aborted deployment FAILED")
            assert got["deployments"][0]["taskDefinition"] == td2
            d = c.ecs.describe_service_deployments(
                serviceDeploymentArns=[current["serviceDeploymentArn"]])["serviceDeployments"][0]
            assert d["status"] == "STOPPED", d
            # The old tasks keep serving; nothing new is started.
            time.sleep(2)
            s = c.svc(name)
            assert s["runningCount"] == 2, c.dump(name)
            assert all(t["startedBy"] == first for t in c.service_tasks(name)), c.dump(name)
        c.ecs.delete_service(cluster=c.name, service=name, force=True)
