"""Tasks on real containers: `stevedore up` (server + embedded agent) on the
local Docker engine, driven with boto3 and the aws CLI."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from stevedore_harness import expect_error, uniq
from tasks_harness import (
    IMAGE,
    STOPSIGNAL_IMAGE,
    docker_inspect,
    ensure_test_images,
    http_get,
    remove_containers_of,
    started_up,
    wait_status,
    wait_task,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    ensure_test_images()
    srv = started_up(tmp_path_factory.mktemp("tasks"))
    yield srv
    ecs = srv.client()
    instances = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
    srv.stop()
    for arn in instances:
        remove_containers_of(arn)


@pytest.fixture(scope="module")
def ecs(up):
    return up.client()


def register(ecs, containers, **kw) -> str:
    family = uniq("td")
    for c in containers:
        c.setdefault("image", IMAGE)
        c.setdefault("memory", 64)
        # `sleep` as PID 1 ignores SIGTERM; keep stops short.
        c.setdefault("stopTimeout", 2)
    out = ecs.register_task_definition(family=family, containerDefinitions=containers, **kw)
    return out["taskDefinition"]["taskDefinitionArn"]


def run_one(ecs, td, **kw) -> dict:
    out = ecs.run_task(cluster="default", taskDefinition=td, **kw)
    assert out["failures"] == [], out["failures"]
    assert len(out["tasks"]) == 1
    return out["tasks"][0]


def test_instance_registered_with_real_resources(ecs):
    arns = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
    assert len(arns) == 1
    ci = ecs.describe_container_instances(cluster="default", containerInstances=arns)["containerInstances"][0]
    res = {r["name"]: r for r in ci["registeredResources"]}
    assert res["CPU"]["integerValue"] == 1024 * os.cpu_count()
    assert 0 < res["MEMORY"]["integerValue"] <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    assert {"22", "2375", "2376", "51678", "51679"} <= set(res["PORTS"]["stringSetValue"])
    assert ci["agentConnected"] is True
    assert ci["status"] == "ACTIVE"
    attrs = {a["name"]: a.get("value") for a in ci["attributes"]}
    assert attrs["ecs.os-type"] == "linux"
    assert attrs["ecs.cpu-architecture"] in ("x86_64", "arm64")
    assert ci["versionInfo"]["dockerVersion"]


def test_exit_code_and_lifecycle_timestamps(ecs):
    td = register(ecs, [{"name": "app", "command": ["sh", "-c", "echo hello; exit 3"]}])
    task = run_one(ecs, td)
    assert task["lastStatus"] in ("PROVISIONING", "PENDING")
    assert task["desiredStatus"] == "RUNNING"
    assert task["group"].startswith("family:")
    done = wait_status(ecs, "default", task["taskArn"], "STOPPED")
    c = done["containers"][0]
    assert c["exitCode"] == 3
    assert c["lastStatus"] == "STOPPED"
    assert c["runtimeId"]
    assert done["stopCode"] == "EssentialContainerExited"
    assert "Essential container" in done["stoppedReason"]
    for field in ("createdAt", "pullStartedAt", "pullStoppedAt", "startedAt", "stoppedAt", "executionStoppedAt"):
        assert field in done, field
    assert done["createdAt"] <= done["startedAt"] <= done["stoppedAt"]
    assert done["version"] > task["version"]
    assert done["desiredStatus"] == "STOPPED"


def test_running_task_is_a_real_container_with_limits(ecs):
    td = register(
        ecs,
        [{"name": "app", "command": ["sleep", "3600"], "memory": 96, "memoryReservation": 48, "cpu": 128,
          "environment": [{"name": "A", "value": "1"}], "dockerLabels": {"team": "core"},
          "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}], "readonlyRootFilesystem": True}],
    )
    task = run_one(ecs, td)
    running = wait_status(ecs, "default", task["taskArn"], "RUNNING")
    cid = running["containers"][0]["runtimeId"]
    info = docker_inspect(cid)
    assert info["State"]["Running"] is True
    hc = info["HostConfig"]
    assert hc["Memory"] == 96 * 2**20
    assert hc["MemoryReservation"] == 48 * 2**20
    assert hc["CpuShares"] == 128
    assert hc["ReadonlyRootfs"] is True
    assert {"Name": "nofile", "Soft": 1024, "Hard": 2048} in hc["Ulimits"]
    assert "A=1" in info["Config"]["Env"]
    assert info["Config"]["Labels"]["team"] == "core"
    ecs.stop_task(cluster="default", task=task["taskArn"], reason="test over")


def test_overrides_take_effect(ecs):
    td = register(ecs, [{"name": "app", "command": ["sleep", "3600"], "environment": [{"name": "MODE", "value": "td"}]}])
    task = run_one(
        ecs,
        td,
        overrides={
            "containerOverrides": [
                {"name": "app", "command": ["sh", "-c", "echo $MODE $EXTRA; sleep 3600"], "memory": 80,
                 "environment": [{"name": "MODE", "value": "override"}, {"name": "EXTRA", "value": "x"}]}
            ]
        },
    )
    running = wait_status(ecs, "default", task["taskArn"], "RUNNING")
    info = docker_inspect(running["containers"][0]["runtimeId"])
    assert info["Config"]["Cmd"] == ["sh", "-c", "echo $MODE $EXTRA; sleep 3600"]
    assert "MODE=override" in info["Config"]["Env"] and "EXTRA=x" in info["Config"]["Env"]
    assert info["HostConfig"]["Memory"] == 80 * 2**20
    assert running["overrides"]["containerOverrides"][0]["memory"] == 80
    ecs.stop_task(cluster="default", task=task["taskArn"])


def test_stop_task_sigterm_then_sigkill(ecs):
    ignores = register(ecs, [{"name": "app", "command": ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"],
                              "stopTimeout": 3}])
    polite = register(ecs, [{"name": "app", "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]}])
    a = run_one(ecs, ignores)
    b = run_one(ecs, polite)
    wait_status(ecs, "default", a["taskArn"], "RUNNING")
    wait_status(ecs, "default", b["taskArn"], "RUNNING")
    stopped = ecs.stop_task(cluster="default", task=a["taskArn"], reason="rollback")["task"]
    # StopTask answers at once, not after the 3 s stopTimeout it set in motion.
    assert stopped["desiredStatus"] == "STOPPED" and stopped["lastStatus"] != "STOPPED", stopped
    ecs.stop_task(cluster="default", task=b["taskArn"])
    done_b = wait_status(ecs, "default", b["taskArn"], "STOPPED", timeout=20)
    done_a = wait_status(ecs, "default", a["taskArn"], "STOPPED", timeout=30)
    assert done_b["containers"][0]["exitCode"] == 0
    assert done_a["containers"][0]["exitCode"] == 137
    assert done_a["stoppedReason"] == "rollback"
    assert done_a["stopCode"] == "UserInitiated"
    assert "stoppingAt" in done_a and "stoppedAt" in done_a
    assert (done_a["stoppedAt"] - done_a["stoppingAt"]).total_seconds() >= 2.5


def test_image_stopsignal_is_used(ecs):
    # The image says STOPSIGNAL SIGUSR1; the container exits 0 only on USR1.
    td = register(ecs, [{"name": "app", "image": STOPSIGNAL_IMAGE,
                         "command": ["sh", "-c", "trap 'exit 0' USR1; trap '' TERM; while true; do sleep 1; done"],
                         "stopTimeout": 10}])
    t = run_one(ecs, td)
    wait_status(ecs, "default", t["taskArn"], "RUNNING")
    ecs.stop_task(cluster="default", task=t["taskArn"])
    done = wait_status(ecs, "default", t["taskArn"], "STOPPED", timeout=20)
    assert done["containers"][0]["exitCode"] == 0


def test_non_essential_exit_keeps_task_running(ecs):
    td = register(ecs, [
        {"name": "main", "command": ["sleep", "3600"]},
        {"name": "side", "essential": False, "command": ["sh", "-c", "exit 5"]},
    ])
    t = run_one(ecs, td)
    got = wait_task(ecs, "default", t["taskArn"],
                    lambda x: any(c["name"] == "side" and c.get("lastStatus") == "STOPPED" for c in x["containers"]),
                    what="side container stopped")
    side = next(c for c in got["containers"] if c["name"] == "side")
    assert side["exitCode"] == 5
    time.sleep(1)
    again = ecs.describe_tasks(cluster="default", tasks=[t["taskArn"]])["tasks"][0]
    assert again["lastStatus"] == "RUNNING"
    ecs.stop_task(cluster="default", task=t["taskArn"])


def test_dynamic_host_port_serves_http(ecs):
    td = register(ecs, [{"name": "web", "command": ["sh", "-c", "mkdir -p /tmp/w && echo dyn-ok > /tmp/w/index.html && httpd -f -p 8080 -h /tmp/w"],
                         "portMappings": [{"containerPort": 8080, "hostPort": 0}]}])
    t = run_one(ecs, td)
    running = wait_status(ecs, "default", t["taskArn"], "RUNNING")
    # Docker publishes on IPv4 and IPv6; ECS reports both bindings.
    b = [x for x in running["containers"][0]["networkBindings"] if x["bindIP"] == "0.0.0.0"]
    assert len(b) == 1 and b[0]["containerPort"] == 8080 and b[0]["hostPort"] > 0 and b[0]["protocol"] == "tcp"
    assert http_get(f"http://127.0.0.1:{b[0]['hostPort']}/").strip() == "dyn-ok"
    ecs.stop_task(cluster="default", task=t["taskArn"])


def test_awsvpc_tasks_get_their_own_ip(ecs):
    td = register(
        ecs,
        [{"name": "web", "command": ["sh", "-c", "mkdir -p /tmp/w && hostname -i > /tmp/w/index.html && httpd -f -p 80 -h /tmp/w"],
          "portMappings": [{"containerPort": 80}]}],
        networkMode="awsvpc",
    )
    net = {"awsvpcConfiguration": {"subnets": ["subnet-local"]}}
    ips = []
    arns = []
    for _ in range(2):  # two tasks on the same containerPort
        t = run_one(ecs, td, networkConfiguration=net)
        arns.append(t["taskArn"])
    for arn in arns:
        running = wait_status(ecs, "default", arn, "RUNNING")
        eni = [a for a in running["attachments"] if a["type"] == "ElasticNetworkInterface"][0]
        details = {d["name"]: d["value"] for d in eni["details"]}
        ip = details["privateIPv4Address"]
        assert details["subnetId"] == "subnet-local"
        assert eni["status"] == "ATTACHED"
        assert http_get(f"http://{ip}:80/").strip() == ip
        ips.append(ip)
    assert ips[0] != ips[1]
    for arn in arns:
        ecs.stop_task(cluster="default", task=arn)


def test_awsvpc_requires_network_configuration(ecs):
    td = register(ecs, [{"name": "web", "command": ["sleep", "1"]}], networkMode="awsvpc")
    expect_error(ecs.run_task, "InvalidParameterException", contains=["Network Configuration"],
                 cluster="default", taskDefinition=td)


def test_placement_failures_by_resource(ecs):
    huge = register(ecs, [{"name": "big", "command": ["sleep", "1"], "memory": 4 * 1024 * 1024}])
    out = ecs.run_task(cluster="default", taskDefinition=huge)
    assert out["tasks"] == []
    assert [f["reason"] for f in out["failures"]] == ["RESOURCE:MEMORY"]
    assert out["failures"][0]["arn"].startswith("arn:aws:ecs:us-east-1:000000000000:container-instance/default/")

    cpu = register(ecs, [{"name": "c", "command": ["sleep", "1"], "cpu": 1024 * 1024}])
    out = ecs.run_task(cluster="default", taskDefinition=cpu)
    assert [f["reason"] for f in out["failures"]] == ["RESOURCE:CPU"]

    port = 20000 + int(time.time()) % 10000
    fixed = register(ecs, [{"name": "p", "command": ["sleep", "3600"], "portMappings": [{"containerPort": 80, "hostPort": port}]}])
    out = ecs.run_task(cluster="default", taskDefinition=fixed, count=2)
    assert len(out["tasks"]) == 1
    assert [f["reason"] for f in out["failures"]] == ["RESOURCE:PORTS"]
    ci = ecs.describe_container_instances(cluster="default", containerInstances=[out["tasks"][0]["containerInstanceArn"]])["containerInstances"][0]
    remaining = {r["name"]: r for r in ci["remainingResources"]}
    assert str(port) in remaining["PORTS"]["stringSetValue"]
    ecs.stop_task(cluster="default", task=out["tasks"][0]["taskArn"])
    wait_status(ecs, "default", out["tasks"][0]["taskArn"], "STOPPED")
    ci = ecs.describe_container_instances(cluster="default", containerInstances=[ci["containerInstanceArn"]])["containerInstances"][0]
    remaining = {r["name"]: r for r in ci["remainingResources"]}
    assert str(port) not in remaining["PORTS"]["stringSetValue"]


def test_missing_image_stops_with_cannot_pull(ecs):
    td = register(ecs, [{"name": "app", "image": "stevedore-test/does-not-exist:1", "command": ["true"]}])
    t = run_one(ecs, td)
    done = wait_status(ecs, "default", t["taskArn"], "STOPPED", timeout=60)
    assert done["stopCode"] == "TaskFailedToStart"
    assert done["stoppedReason"].startswith("CannotPullContainerError"), done["stoppedReason"]


def test_run_task_idempotent_with_client_token(ecs):
    td = register(ecs, [{"name": "app", "command": ["sleep", "3600"]}])
    token = uniq("tok")
    a = ecs.run_task(cluster="default", taskDefinition=td, clientToken=token)["tasks"]
    b = ecs.run_task(cluster="default", taskDefinition=td, clientToken=token)["tasks"]
    assert [t["taskArn"] for t in a] == [t["taskArn"] for t in b]
    ecs.stop_task(cluster="default", task=a[0]["taskArn"])


def test_list_tasks_filters(ecs):
    td = register(ecs, [{"name": "app", "command": ["sleep", "3600"]}])
    family = td.rsplit("/", 1)[1].split(":")[0]
    mine = uniq("by")
    t = run_one(ecs, td, startedBy=mine)
    assert ecs.list_tasks(cluster="default", startedBy=mine)["taskArns"] == [t["taskArn"]]
    assert ecs.list_tasks(cluster="default", family=family)["taskArns"] == [t["taskArn"]]
    ecs.stop_task(cluster="default", task=t["taskArn"])
    wait_status(ecs, "default", t["taskArn"], "STOPPED")
    assert ecs.list_tasks(cluster="default", startedBy=mine)["taskArns"] == []
    assert ecs.list_tasks(cluster="default", startedBy=mine, desiredStatus="STOPPED")["taskArns"] == [t["taskArn"]]


def test_cli_waiters(up, ecs, tmp_path):
    td = register(ecs, [{"name": "app", "command": ["sleep", "3600"]}])
    env = dict(os.environ)
    for line in subprocess.run([os.environ.get("STEVEDORE_BIN", "target/debug/stevedore"), "env", "--data-dir", str(up.data_dir)],
                               capture_output=True, text=True, check=True).stdout.splitlines():
        k, v = line.removeprefix("export ").split("=", 1)
        env[k] = v
    def aws(*args):
        return json.loads(subprocess.run(["aws", "ecs", *args, "--output", "json"], env=env, capture_output=True,
                                         text=True, check=True).stdout or "{}")
    arn = aws("run-task", "--task-definition", td)["tasks"][0]["taskArn"]
    subprocess.run(["aws", "ecs", "wait", "tasks-running", "--tasks", arn], env=env, check=True, timeout=120)
    aws("stop-task", "--task", arn, "--reason", "cli")
    subprocess.run(["aws", "ecs", "wait", "tasks-stopped", "--tasks", arn], env=env, check=True, timeout=120)
    got = aws("describe-tasks", "--tasks", arn)["tasks"][0]
    assert got["lastStatus"] == "STOPPED" and got["stoppedReason"] == "cli"


def test_deregister_refused_while_tasks_run(ecs):
    td = register(ecs, [{"name": "app", "command": ["sleep", "3600"]}])
    t = run_one(ecs, td)
    wait_status(ecs, "default", t["taskArn"], "RUNNING")
    expect_error(ecs.deregister_container_instance, "InvalidParameterException", contains=["force"],
                 cluster="default", containerInstance=t["containerInstanceArn"])
    ecs.stop_task(cluster="default", task=t["taskArn"])


def the_instance(ecs) -> str:
    return ecs.list_container_instances(cluster="default")["containerInstanceArns"][0]


def test_attributes_drive_filters_and_placement(ecs):
    arn = the_instance(ecs)
    stack = uniq("stack")
    ecs.put_attributes(cluster="default", attributes=[{"name": "stack", "value": stack, "targetId": arn}])
    listed = ecs.list_attributes(cluster="default", targetType="container-instance", attributeName="stack")["attributes"]
    assert {"name": "stack", "value": stack, "targetType": "container-instance", "targetId": arn} in listed
    assert ecs.list_container_instances(cluster="default", filter=f"attribute:stack == {stack}")["containerInstanceArns"] == [arn]
    assert ecs.list_container_instances(cluster="default", filter="attribute:stack == nowhere")["containerInstanceArns"] == []
    assert ecs.list_container_instances(cluster="default", filter="attribute:ecs.os-type == linux and not(attribute:stack in [a, b])")["containerInstanceArns"] == [arn]

    td = register(ecs, [{"name": "app", "command": ["sleep", "3600"]}])
    out = ecs.run_task(cluster="default", taskDefinition=td,
                       placementConstraints=[{"type": "memberOf", "expression": "attribute:stack == other"}])
    assert out["tasks"] == []
    assert [f["reason"] for f in out["failures"]] == ["MemberOf placement constraint unsatisfied."]
    t = run_one(ecs, td, placementConstraints=[{"type": "memberOf", "expression": f"attribute:stack == {stack}"}],
                placementStrategy=[{"type": "binpack", "field": "memory"}])
    assert t["containerInstanceArn"] == arn
    ecs.stop_task(cluster="default", task=t["taskArn"])

    ecs.delete_attributes(cluster="default", attributes=[{"name": "stack", "targetId": arn}])
    assert ecs.list_container_instances(cluster="default", filter=f"attribute:stack == {stack}")["containerInstanceArns"] == []


def test_attribute_and_filter_errors(ecs):
    arn = the_instance(ecs)
    expect_error(ecs.list_container_instances, "InvalidParameterException", contains=["position"],
                 cluster="default", filter="attribute:ecs.instance-type ==")
    expect_error(ecs.run_task, "InvalidParameterException", cluster="default",
                 taskDefinition=register(ecs, [{"name": "a", "command": ["true"]}]),
                 placementConstraints=[{"type": "memberOf", "expression": "(attribute:x == 1"}])
    expect_error(ecs.put_attributes, "InvalidParameterException", contains=["ecs."],
                 cluster="default", attributes=[{"name": "ecs.mine", "value": "1", "targetId": arn}])
    expect_error(ecs.put_attributes, "TargetNotFoundException", cluster="default",
                 attributes=[{"name": "x", "value": "1", "targetId": "0123456789abcdef0123456789abcdef"}])
    names = [uniq("a") for _ in range(11)]
    ecs.put_attributes(cluster="default", attributes=[{"name": n, "value": "1", "targetId": arn} for n in names[:10]])
    try:
        expect_error(ecs.put_attributes, "AttributeLimitExceededException", cluster="default",
                     attributes=[{"name": names[10], "value": "1", "targetId": arn}])
    finally:
        ecs.delete_attributes(cluster="default", attributes=[{"name": n, "targetId": arn} for n in names[:10]])


def test_draining_places_nothing_new_and_keeps_standalone_tasks(ecs):
    arn = the_instance(ecs)
    td = register(ecs, [{"name": "app", "command": ["sleep", "3600"]}])
    t = run_one(ecs, td)
    wait_status(ecs, "default", t["taskArn"], "RUNNING")
    out = ecs.update_container_instances_state(cluster="default", containerInstances=[arn], status="DRAINING")
    assert out["containerInstances"][0]["status"] == "DRAINING" and out["failures"] == []
    try:
        expect_error(ecs.run_task, "InvalidParameterException", contains=["No Container Instances"],
                     cluster="default", taskDefinition=td)
        time.sleep(1)
        assert ecs.describe_tasks(cluster="default", tasks=[t["taskArn"]])["tasks"][0]["lastStatus"] == "RUNNING"
        assert ecs.list_container_instances(cluster="default", status="DRAINING")["containerInstanceArns"] == [arn]
    finally:
        ecs.update_container_instances_state(cluster="default", containerInstances=[arn], status="ACTIVE")
    again = run_one(ecs, td)
    for x in (t, again):
        ecs.stop_task(cluster="default", task=x["taskArn"])
    bad = ecs.update_container_instances_state(cluster="default", containerInstances=["feedfacefeedfacefeedfacefeedface"], status="ACTIVE")
    assert [f["reason"] for f in bad["failures"]] == ["MISSING"]


def test_health_check_reported_through_the_api(ecs, tmp_path):
    flag = tmp_path / "healthy"
    flag.write_text("ok")
    td = register(
        ecs,
        [{"name": "app", "command": ["sleep", "3600"],
          "mountPoints": [{"sourceVolume": "flag", "containerPath": "/flag"}],
          "healthCheck": {"command": ["CMD-SHELL", "test -f /flag/healthy"], "interval": 5, "timeout": 2,
                          "retries": 1, "startPeriod": 0}}],
        volumes=[{"name": "flag", "host": {"sourcePath": str(tmp_path)}}],
    )
    t = run_one(ecs, td)
    got = wait_task(ecs, "default", t["taskArn"], lambda x: x.get("healthStatus") == "HEALTHY", timeout=60,
                    what="HEALTHY")
    assert got["containers"][0]["healthStatus"] == "HEALTHY"
    flag.unlink()  # the bind mount shows the host file's removal to the check
    got = wait_task(ecs, "default", t["taskArn"], lambda x: x.get("healthStatus") == "UNHEALTHY", timeout=60,
                    what="UNHEALTHY")
    assert got["containers"][0]["healthStatus"] == "UNHEALTHY"
    ecs.stop_task(cluster="default", task=t["taskArn"])


def test_awslogs_output_reaches_cloudwatch_logs(up, ecs):
    group = uniq("/ecs/app")
    td = register(ecs, [{
        "name": "app",
        "command": ["sh", "-c", "for i in 1 2 3; do echo line-$i; done; echo oops >&2; exit 0"],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": group, "awslogs-stream-prefix": "web", "awslogs-create-group": "true",
            "awslogs-region": "us-east-1"}},
    }])
    t = run_one(ecs, td)
    done = wait_status(ecs, "default", t["taskArn"], "STOPPED")
    task_id = t["taskArn"].rsplit("/", 1)[1]
    logs = up.logs()
    stream = f"web/app/{task_id}"
    # Flushed before STOPPED: everything is there at once.
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    messages = [e["message"] for e in events]
    assert [m for m in messages if m.startswith("line-")] == ["line-1", "line-2", "line-3"]
    assert "oops" in messages
    assert done["containers"][0]["exitCode"] == 0
    env = dict(os.environ)
    for line in subprocess.run([os.environ.get("STEVEDORE_BIN", "target/debug/stevedore"), "env", "--data-dir", str(up.data_dir)],
                               capture_output=True, text=True, check=True).stdout.splitlines():
        k, v = line.removeprefix("export ").split("=", 1)
        env[k] = v
    out = subprocess.run(["aws", "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "line-2",
                          "--output", "json"], env=env, capture_output=True, text=True, check=True).stdout
    assert [e["message"] for e in json.loads(out)["events"]] == ["line-2"]
    out = subprocess.run(["aws", "logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream,
                          "--start-from-head", "--output", "json"], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert [e["message"] for e in json.loads(out)["events"] if e["message"].startswith("line-")] == [
        "line-1", "line-2", "line-3"]


def test_empty_role_strings_mean_no_role(up, ecs, tmp_path):
    """Deployment tools that copy a definition send "" for the roles it never had."""
    from services_harness import aws_cli

    base = {"containerDefinitions": [{"name": "app", "image": IMAGE, "memory": 64, "stopTimeout": 2,
                                      "command": ["sleep", "3600"]}],
            "taskRoleArn": "", "executionRoleArn": ""}
    via_boto = ecs.register_task_definition(family=uniq("emptyrole"), **base)["taskDefinition"]
    spec = tmp_path / "td.json"
    spec.write_text(json.dumps({"family": uniq("emptyrole-cli"), **base}))
    cli = aws_cli(up, tmp_path, "register-task-definition", "--cli-input-json", f"file://{spec}", "--output", "json")
    assert cli.returncode == 0, cli.stderr
    via_cli = json.loads(cli.stdout)["taskDefinition"]

    for td in (via_boto, via_cli):
        arn = td["taskDefinitionArn"]
        described = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        assert "taskRoleArn" not in described and "executionRoleArn" not in described, described
        task = run_one(ecs, arn)
        wait_status(ecs, "default", task["taskArn"], "RUNNING", timeout=120)
        ecs.stop_task(cluster="default", task=task["taskArn"])

    name = uniq("emptyrole-svc")
    first = register(ecs, [{"name": "app", "command": ["sleep", "3600"]}])
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=first, desiredCount=0)
    updated = ecs.update_service(cluster="default", service=name, taskDefinition=via_cli["taskDefinitionArn"])
    assert updated["service"]["taskDefinition"] == via_cli["taskDefinitionArn"]
    ecs.delete_service(cluster="default", service=name, force=True)


def test_platform_version_only_for_fargate_and_only_what_is_offered(ecs):
    td = register(ecs, [{"name": "app", "command": ["sleep", "1"]}])
    expect_error(ecs.run_task, "InvalidParameterException", contains=["platformVersion", "FARGATE"],
                 cluster="default", taskDefinition=td, launchType="EC2", platformVersion="LATEST")
    vpc = register(ecs, [{"name": "app", "command": ["sleep", "1"]}], networkMode="awsvpc",
                   requiresCompatibilities=["FARGATE"], cpu="256", memory="512")
    net = {"awsvpcConfiguration": {"subnets": ["subnet-local"]}}
    expect_error(ecs.run_task, "InvalidParameterException", contains=["platformVersion '1.3.0'"],
                 cluster="default", taskDefinition=vpc, launchType="FARGATE", platformVersion="1.3.0",
                 networkConfiguration=net)
    assert ecs.list_tasks(cluster="default", family=vpc.rsplit("/", 1)[1].split(":")[0])["taskArns"] == []


def test_runtime_platform_is_placed_only_on_matching_hosts(ecs):
    # The agent registers ecs.os-family LINUX and its real cpu-architecture.
    host_arch = {"x86_64": "X86_64", "aarch64": "ARM64"}[os.uname().machine]
    other_arch = "ARM64" if host_arch == "X86_64" else "X86_64"
    ok = register(ecs, [{"name": "app", "command": ["sleep", "1"]}],
                  runtimePlatform={"cpuArchitecture": host_arch, "operatingSystemFamily": "LINUX"})
    task = run_one(ecs, ok)
    wait_status(ecs, "default", task["taskArn"], "STOPPED")
    for platform in ({"cpuArchitecture": other_arch},
                     {"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}):
        td = register(ecs, [{"name": "app", "command": ["sleep", "1"]}], runtimePlatform=platform)
        out = ecs.run_task(cluster="default", taskDefinition=td)
        assert out["tasks"] == [], platform
        assert [f["reason"] for f in out["failures"]] == ["ATTRIBUTE"], (platform, out["failures"])


def test_capacity_provider_strategy_must_name_one_attached_provider(ecs):
    td = register(ecs, [{"name": "app", "command": ["sleep", "1"]}], networkMode="awsvpc",
                  requiresCompatibilities=["FARGATE"], cpu="256", memory="512")
    net = {"awsvpcConfiguration": {"subnets": ["subnet-local"]}}
    # "default" lists no capacity providers.
    expect_error(ecs.run_task, "InvalidParameterException", contains=["not associated with the cluster"],
                 cluster="default", taskDefinition=td, networkConfiguration=net,
                 capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])
    name = uniq("cp")
    ecs.create_cluster(clusterName=name, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    try:
        err = expect_error(ecs.run_task, "UnsupportedFeatureException",
                           contains=["capacityProviderStrategy", "FARGATE", "FARGATE_SPOT"],
                           cluster=name, taskDefinition=td, networkConfiguration=net,
                           capacityProviderStrategy=[{"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                                                     {"capacityProvider": "FARGATE_SPOT", "weight": 4}])
        assert "Name one capacity provider" in err["Message"]
        assert ecs.list_tasks(cluster=name)["taskArns"] == []
    finally:
        ecs.delete_cluster(cluster=name)


def test_reference_id_is_refused_by_name(ecs):
    td = register(ecs, [{"name": "app", "command": ["sleep", "1"]}])
    expect_error(ecs.run_task, "UnsupportedFeatureException", contains=["referenceId"],
                 cluster="default", taskDefinition=td, referenceId="ref-1")
