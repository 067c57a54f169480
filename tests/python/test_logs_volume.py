"""awslogs delivery at volume: a task printing numbered lines as fast as it
can, read back through the CloudWatch Logs API, every line exactly once and
in order; and the same with the agent killed (`kill -9`) mid-burst.

The engine on the test machines rotates json-file at 10m x 3 (daemon
`log-opts`), which holds about 30 MB of json-file, ~400,000 of these short
lines: a burst bigger than that loses lines unless the shipper keeps up or
the agent owns the rotation. The agent sets the container's own json-file
options (see README, awslogs), which the first test checks with `docker
inspect` before counting the lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from stevedore_harness import Server, uniq
from tasks_harness import IMAGE, Agent, docker, ensure_test_images, remove_containers_of, wait_status, wait_task
from test_cli import aws_executable

LINES = int(os.environ.get("STEVEDORE_LOGS_VOLUME_LINES", "1000000"))


@pytest.fixture
def cluster(tmp_path):
    ensure_test_images()
    srv = Server(tmp_path / "srv", name="logs-volume-server").start()
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


def burst_task(ecs, group: str, lines: int) -> str:
    return ecs.register_task_definition(
        family=uniq("burst"),
        containerDefinitions=[
            {
                "name": "app",
                "image": IMAGE,
                "memory": 64,
                "command": ["seq", "1", str(lines)],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": group,
                        "awslogs-stream-prefix": "burst",
                        "awslogs-create-group": "true",
                    },
                },
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]


def read_stream(logs, group: str, stream: str) -> list[str]:
    """Every event of the stream, paging forward with nextForwardToken."""
    out: list[str] = []
    kw = {"logGroupName": group, "logStreamName": stream, "startFromHead": True, "limit": 10000}
    while True:
        page = logs.get_log_events(**kw)
        out += [e["message"] for e in page["events"]]
        token = page["nextForwardToken"]
        if not page["events"] or token == kw.get("nextToken"):
            return out
        kw["nextToken"] = token


def first_page_with_aws_cli(srv, group: str, stream: str) -> list[str]:
    keys = srv.admin_keys()
    env = dict(os.environ)
    env.update(
        {
            "AWS_ACCESS_KEY_ID": keys.access_key_id,
            "AWS_SECRET_ACCESS_KEY": keys.secret_access_key,
            "AWS_DEFAULT_REGION": srv.region,
        }
    )
    env.pop("AWS_PROFILE", None)
    out = subprocess.run(
        [aws_executable(), "--endpoint-url", srv.endpoint, "logs", "get-log-events", "--log-group-name", group,
         "--log-stream-name", stream, "--start-from-head", "--limit", "100", "--output", "json"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    ).stdout
    return [e["message"] for e in json.loads(out)["events"]]


def run_burst(srv, ecs, lines: int) -> tuple[str, str, str]:
    group = uniq("/burst")
    arn = ecs.run_task(cluster="default", taskDefinition=burst_task(ecs, group, lines))["tasks"][0]["taskArn"]
    return arn, group, f"burst/app/{arn.rsplit('/', 1)[-1]}"


@pytest.mark.timeout(240)
def test_a_million_lines_arrive_once_and_in_order(cluster, tmp_path):
    srv, ecs, agents = cluster
    agent = Agent(srv, tmp_path / "agent").start()
    agents.append(agent)
    agent.instance_arn()
    t0 = time.monotonic()
    arn, group, stream = run_burst(srv, ecs, LINES)
    task = wait_task(ecs, "default", arn, lambda t: t["containers"][0].get("runtimeId"), 60, "a container")
    config = json.loads(docker("inspect", "-f", "{{json .HostConfig.LogConfig}}", task["containers"][0]["runtimeId"]))
    assert config["Type"] == "json-file"
    assert config["Config"]["max-file"] == "1", "the agent's rotation, not the daemon's log-opts"
    task = wait_status(ecs, "default", arn, "STOPPED", timeout=180)
    shipped_s = time.monotonic() - t0
    assert task["containers"][0]["exitCode"] == 0
    assert "reason" not in task["containers"][0], task["containers"][0]

    logs = srv.logs(srv.admin_keys())
    got = read_stream(logs, group, stream)
    assert len(got) == LINES, f"{len(got)} of {LINES} lines"
    assert got == [str(i) for i in range(1, LINES + 1)], "every number once, in order"
    assert first_page_with_aws_cli(srv, group, stream) == [str(i) for i in range(1, 101)]
    print(f"{LINES} lines shipped in {shipped_s:.1f}s (task start to STOPPED)")


@pytest.mark.timeout(240)
def test_agent_kill9_mid_burst_loses_no_line(cluster, tmp_path):
    srv, ecs, agents = cluster
    lines = LINES
    agent = Agent(srv, tmp_path / "agent").start()
    agents.append(agent)
    agent.instance_arn()
    arn, group, stream = run_burst(srv, ecs, lines)
    logs = srv.logs(srv.admin_keys())
    # Mid-burst: some lines delivered, the container still writing.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            page = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True, limit=1)
            if page["events"]:
                break
        except logs.exceptions.ResourceNotFoundException:
            pass
        time.sleep(0.05)
    else:
        raise AssertionError(f"nothing shipped:\n{agent.log_tail()}")
    cid = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]["containers"][0]["runtimeId"]
    # Blocking mode holds the writer to the shipper's pace: `seq` alone
    # would be done in about a second.
    assert docker("inspect", "-f", "{{.State.Status}}", cid).strip() == "running"
    agent.kill9()
    time.sleep(1)
    agent.start()
    task = wait_status(ecs, "default", arn, "STOPPED", timeout=180)
    assert task["containers"][0]["exitCode"] == 0
    # The restart adopted the container, never started another.
    assert task["containers"][0]["runtimeId"] == cid
    assert docker("inspect", "-f", "{{.RestartCount}}", cid).strip() == "0"

    got = [int(m) for m in read_stream(logs, group, stream)]
    assert set(got) == set(range(1, lines + 1)), f"missing: {sorted(set(range(1, lines + 1)) - set(got))[:20]}"
    # In order, except that the batch in flight at the kill may come again.
    dups = len(got) - lines
    assert dups <= 10_000, f"{dups} lines sent twice; at most one batch may be"
    print(f"{dups} lines sent twice")
