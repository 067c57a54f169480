"""Container features and placement with real containers and real clients:
dependsOn order, volumes, capabilities, and strategies/constraints across
two agents sharing one Docker engine."""

from __future__ import annotations

import datetime
import subprocess
import time

import pytest

from stevedore_harness import Server, uniq
from tasks_harness import IMAGE, Agent, docker_inspect, ensure_test_images, remove_containers_of, wait_status, wait_task

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def two_agents(tmp_path_factory):
    ensure_test_images()
    base = tmp_path_factory.mktemp("features")
    srv = Server(base / "srv", name="features-server").start()
    ecs = srv.client()
    ecs.create_cluster(clusterName="default")
    agents = [Agent(srv, base / f"agent{i}", name=f"agent{i}").start() for i in range(2)]
    arns = [a.instance_arn() for a in agents]
    yield srv, ecs, arns
    for a in agents:
        a.stop()
    srv.stop()
    for arn in arns:
        remove_containers_of(arn)


def register(ecs, containers, **kw) -> str:
    for c in containers:
        c.setdefault("image", IMAGE)
        c.setdefault("memory", 32)
        c.setdefault("stopTimeout", 2)
    return ecs.register_task_definition(family=uniq("feat"), containerDefinitions=containers, **kw)[
        "taskDefinition"]["taskDefinitionArn"]


def docker_time(s: str) -> datetime.datetime:
    # 2026-11-23T00:42:28.733319123Z -> microseconds
    head, _, frac = s.rstrip("Z").partition(".")
    return datetime.datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}")


def stop_all(ecs, arns):
    for a in arns:
        ecs.stop_task(cluster="default", task=a)


def test_depends_on_chain_orders_starts(two_agents):
    _, ecs, _ = two_agents
    td = register(ecs, [
        {"name": "first", "essential": False, "command": ["sh", "-c", "sleep 1; exit 0"]},
        {"name": "second", "essential": False, "command": ["sh", "-c", "sleep 1; exit 0"],
         "dependsOn": [{"containerName": "first", "condition": "COMPLETE"}]},
        {"name": "main", "command": ["sleep", "3600"],
         "dependsOn": [{"containerName": "second", "condition": "SUCCESS"}]},
    ])
    t = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]
    running = wait_task(ecs, "default", t["taskArn"],
                        lambda x: any(c["name"] == "main" and c.get("lastStatus") == "RUNNING" for c in x["containers"]),
                        timeout=60, what="main running")
    by = {c["name"]: docker_inspect(c["runtimeId"])["State"] for c in running["containers"]}
    assert docker_time(by["second"]["StartedAt"]) >= docker_time(by["first"]["FinishedAt"])
    assert docker_time(by["main"]["StartedAt"]) >= docker_time(by["second"]["FinishedAt"])
    assert by["first"]["ExitCode"] == 0 and by["second"]["ExitCode"] == 0
    stop_all(ecs, [t["taskArn"]])


def test_success_condition_never_met_stops_task(two_agents):
    _, ecs, _ = two_agents
    td = register(ecs, [
        {"name": "setup", "essential": False, "command": ["sh", "-c", "exit 2"]},
        {"name": "main", "command": ["sleep", "3600"],
         "dependsOn": [{"containerName": "setup", "condition": "SUCCESS"}]},
    ])
    t = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]
    done = wait_status(ecs, "default", t["taskArn"], "STOPPED", timeout=60)
    assert "setup" in done["stoppedReason"], done["stoppedReason"]
    main = next(c for c in done["containers"] if c["name"] == "main")
    # main was never created, let alone started, and says why.
    assert main["lastStatus"] == "STOPPED" and "runtimeId" not in main, main
    assert main["reason"].startswith("CannotStartContainerError:") and "setup" in main["reason"], main


def test_volume_shared_between_containers_of_a_task(two_agents):
    _, ecs, _ = two_agents
    td = register(ecs, [
        {"name": "writer", "command": ["sh", "-c", "echo shared-ok > /data/msg; sleep 3600"],
         "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/data"}]},
        {"name": "reader", "command": ["sleep", "3600"],
         "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/in", "readOnly": True}],
         "dependsOn": [{"containerName": "writer", "condition": "START"}]},
    ], volumes=[{"name": "scratch", "host": {}}])
    t = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]
    running = wait_status(ecs, "default", t["taskArn"], "RUNNING")
    reader = next(c for c in running["containers"] if c["name"] == "reader")["runtimeId"]
    deadline = time.monotonic() + 10
    out = ""
    while time.monotonic() < deadline and "shared-ok" not in out:
        out = subprocess.run(["docker", "exec", reader, "cat", "/in/msg"], capture_output=True, text=True).stdout
        time.sleep(0.2)
    assert out.strip() == "shared-ok"
    ro = subprocess.run(["docker", "exec", reader, "sh", "-c", "echo x > /in/other"], capture_output=True)
    assert ro.returncode != 0, "readOnly mount point was writable"
    stop_all(ecs, [t["taskArn"]])


def test_shared_docker_volume_outlives_the_task(two_agents):
    _, ecs, arns = two_agents
    vol = uniq("vol")
    volumes = [{"name": "data", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": True,
                                                              "driver": "local", "labels": {"app": "test"}}}]
    # The Docker volume is named after the task definition's volume name.
    volumes[0]["name"] = vol
    writer = register(ecs, [{"name": "w", "command": ["sh", "-c", "echo kept > /d/file"],
                             "mountPoints": [{"sourceVolume": vol, "containerPath": "/d"}]}], volumes=volumes)
    reader = register(ecs, [{"name": "r", "command": ["sh", "-c", "test \"$(cat /d/file)\" = kept"],
                             "mountPoints": [{"sourceVolume": vol, "containerPath": "/d"}]}], volumes=volumes)
    t1 = ecs.start_task(cluster="default", taskDefinition=writer, containerInstances=[arns[0]])["tasks"][0]
    d1 = wait_status(ecs, "default", t1["taskArn"], "STOPPED")
    assert d1["containers"][0]["exitCode"] == 0
    assert subprocess.run(["docker", "volume", "inspect", vol], capture_output=True).returncode == 0
    t2 = ecs.start_task(cluster="default", taskDefinition=reader, containerInstances=[arns[0]])["tasks"][0]
    d2 = wait_status(ecs, "default", t2["taskArn"], "STOPPED")
    assert d2["containers"][0]["exitCode"] == 0, "the second task did not see the first task's file"
    subprocess.run(["docker", "volume", "rm", "-f", vol], capture_output=True)


def test_capabilities_seen_from_inside(two_agents):
    _, ecs, _ = two_agents
    # Exit code = 2*NET_ADMIN(bit 12) + CHOWN(bit 0) from the effective set.
    script = 'c=$(grep CapEff /proc/self/status | cut -f2); exit $(( ((0x$c >> 12) & 1) * 2 + (0x$c & 1) ))'
    td = register(ecs, [{"name": "caps", "command": ["sh", "-c", script],
                         "linuxParameters": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["CHOWN"]}}}])
    t = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]
    done = wait_status(ecs, "default", t["taskArn"], "STOPPED")
    assert done["containers"][0]["exitCode"] == 2


def test_spread_places_evenly_across_agents(two_agents):
    _, ecs, arns = two_agents
    td = register(ecs, [{"name": "s", "command": ["sleep", "3600"]}])
    out = ecs.run_task(cluster="default", taskDefinition=td, count=4,
                       placementStrategy=[{"type": "spread", "field": "instanceId"}])
    assert out["failures"] == []
    placed = [t["containerInstanceArn"] for t in out["tasks"]]
    assert sorted(placed.count(a) for a in arns) == [2, 2]
    stop_all(ecs, [t["taskArn"] for t in out["tasks"]])


def test_binpack_fills_one_instance_first(two_agents):
    _, ecs, arns = two_agents
    td = register(ecs, [{"name": "b", "command": ["sleep", "3600"], "memory": 64}])
    out = ecs.run_task(cluster="default", taskDefinition=td, count=3,
                       placementStrategy=[{"type": "binpack", "field": "memory"}])
    assert out["failures"] == []
    placed = {t["containerInstanceArn"] for t in out["tasks"]}
    assert len(placed) == 1, placed
    stop_all(ecs, [t["taskArn"] for t in out["tasks"]])


def test_distinct_instance_refuses_a_second_task_per_host(two_agents):
    _, ecs, arns = two_agents
    td = register(ecs, [{"name": "d", "command": ["sleep", "3600"]}])
    out = ecs.run_task(cluster="default", taskDefinition=td, count=3,
                       placementConstraints=[{"type": "distinctInstance"}])
    assert sorted(t["containerInstanceArn"] for t in out["tasks"]) == sorted(arns)
    assert [f["reason"] for f in out["failures"]] == ["DistinctInstance placement constraint unsatisfied."] * 2
    stop_all(ecs, [t["taskArn"] for t in out["tasks"]])
