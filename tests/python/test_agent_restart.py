"""Restart safety with separate `stevedore server` and `stevedore agent`
processes on the real Docker engine."""

from __future__ import annotations

import subprocess
import time

import pytest

from stevedore_harness import Server, uniq
from tasks_harness import (
    IMAGE,
    Agent,
    docker,
    docker_inspect,
    ensure_test_images,
    remove_containers_of,
    wait_status,
    wait_task,
)

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def cluster(tmp_path):
    ensure_test_images()
    srv = Server(tmp_path / "srv", name="restart-server").start()
    ecs = srv.client()
    ecs.create_cluster(clusterName="default")
    agents: list[Agent] = []
    yield srv, ecs, agents
    arns = []
    for a in agents:
        try:
            arns.append(a.instance_arn(timeout=1))
        except AssertionError:
            pass
        a.stop()
    srv.stop()
    for arn in arns:
        remove_containers_of(arn)


def sleeper(ecs) -> str:
    return ecs.register_task_definition(
        family=uniq("sleep"),
        containerDefinitions=[{"name": "app", "image": IMAGE, "memory": 32, "command": ["sleep", "3600"], "stopTimeout": 2}],
    )["taskDefinition"]["taskDefinitionArn"]


def test_agent_kill9_restarts_no_container(cluster, tmp_path):
    srv, ecs, agents = cluster
    agent = Agent(srv, tmp_path / "agent").start()
    agents.append(agent)
    arn = agent.instance_arn()
    td = sleeper(ecs)
    tasks = ecs.run_task(cluster="default", taskDefinition=td, count=2)["tasks"]
    assert len(tasks) == 2
    running = [wait_status(ecs, "default", t["taskArn"], "RUNNING") for t in tasks]
    ids = [t["containers"][0]["runtimeId"] for t in running]
    started = {i: docker_inspect(i)["State"]["StartedAt"] for i in ids}
    before = set(docker("ps", "-aq", "--no-trunc", "--filter", f"label=com.stevedore.container-instance={arn}").split())

    agent.kill9()
    # While the agent is down, one container dies behind its back.
    docker("kill", ids[1])
    agent.start()
    assert agent.instance_arn() == arn

    done = wait_status(ecs, "default", tasks[1]["taskArn"], "STOPPED", timeout=60)
    assert done["containers"][0]["exitCode"] == 137
    still = ecs.describe_tasks(cluster="default", tasks=[tasks[0]["taskArn"]])["tasks"][0]
    assert still["lastStatus"] == "RUNNING"
    assert docker_inspect(ids[0])["State"]["StartedAt"] == started[ids[0]], "the container was restarted"
    after = set(docker("ps", "-aq", "--no-trunc", "--filter", f"label=com.stevedore.container-instance={arn}").split())
    assert after == before, "the restarted agent created or removed containers"
    ci = ecs.describe_container_instances(cluster="default", containerInstances=[arn])["containerInstances"][0]
    assert ci["agentConnected"] is True
    assert ci["runningTasksCount"] == 1


def test_server_kill9_loses_no_task(cluster, tmp_path):
    srv, ecs, agents = cluster
    agent = Agent(srv, tmp_path / "agent").start()
    agents.append(agent)
    agent.instance_arn()
    td = sleeper(ecs)
    t = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]
    running = wait_status(ecs, "default", t["taskArn"], "RUNNING")
    cid = running["containers"][0]["runtimeId"]
    port = srv.host_port[1]
    srv.kill9()
    # Same port, so the running agent finds the server again.
    srv2 = _start_on_port(srv.data_dir, port)
    ecs2 = srv2.client()
    got = ecs2.describe_tasks(cluster="default", tasks=[t["taskArn"]])["tasks"][0]
    assert got["lastStatus"] == "RUNNING"
    assert docker_inspect(cid)["State"]["Running"] is True
    wait_task(ecs2, "default", t["taskArn"], lambda x: True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ci = ecs2.describe_container_instances(cluster="default", containerInstances=[got["containerInstanceArn"]])["containerInstances"][0]
        if ci["agentConnected"]:
            break
        time.sleep(0.2)
    assert ci["agentConnected"] is True, agent.log_tail()
    ecs2.stop_task(cluster="default", task=t["taskArn"])
    wait_status(ecs2, "default", t["taskArn"], "STOPPED", timeout=30)
    srv2.stop()


def _start_on_port(data_dir, port) -> Server:
    s = Server(data_dir, name="restart-server-2")
    s.listen = f"127.0.0.1:{port}"
    return s.start()


def test_two_agents_share_one_engine(cluster, tmp_path):
    srv, ecs, agents = cluster
    a = Agent(srv, tmp_path / "a", name="agent-a").start()
    b = Agent(srv, tmp_path / "b", name="agent-b").start()
    agents += [a, b]
    arn_a, arn_b = a.instance_arn(), b.instance_arn()
    assert arn_a != arn_b
    td = sleeper(ecs)
    ta = ecs.start_task(cluster="default", taskDefinition=td, containerInstances=[arn_a])["tasks"][0]
    tb = ecs.start_task(cluster="default", taskDefinition=td, containerInstances=[arn_b])["tasks"][0]
    ra = wait_status(ecs, "default", ta["taskArn"], "RUNNING")
    rb = wait_status(ecs, "default", tb["taskArn"], "RUNNING")
    assert docker_inspect(ra["containers"][0]["runtimeId"])["Config"]["Labels"]["com.stevedore.container-instance"] == arn_a
    assert docker_inspect(rb["containers"][0]["runtimeId"])["Config"]["Labels"]["com.stevedore.container-instance"] == arn_b
    # Restarting agent A leaves B's container alone, and vice versa.
    a.kill9()
    a.start()
    assert a.instance_arn() == arn_a
    time.sleep(2)
    assert docker_inspect(rb["containers"][0]["runtimeId"])["State"]["Running"] is True
    assert docker_inspect(ra["containers"][0]["runtimeId"])["State"]["Running"] is True
    ecs.stop_task(cluster="default", task=tb["taskArn"])
    wait_status(ecs, "default", tb["taskArn"], "STOPPED")
    assert docker_inspect(ra["containers"][0]["runtimeId"])["State"]["Running"] is True
    ecs.stop_task(cluster="default", task=ta["taskArn"])
