"""Helpers for the ECS *services* end-to-end tests (tests/python/test_services.py):
a server started with short controller timings, per-test clusters with their own
agents, and waiting/sampling helpers that dump the service's deployments and
events when something does not happen in time."""

from __future__ import annotations

import datetime
import json
import math
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from botocore.exceptions import ClientError, WaiterError

from stevedore_harness import Server, clean_env, parse_env_exports, run_stevedore, uniq
from tasks_harness import IMAGE, Agent, docker, remove_containers_of

# Short controller timings (flags of `stevedore server`).
DISCONNECT_AFTER = 2
LOST_GRACE = 2
HEALTHY_AFTER = 1
SERVICE_FLAGS = [
    "--agent-disconnect-after", str(DISCONNECT_AFTER),
    "--lost-instance-grace", str(LOST_GRACE),
    "--task-healthy-after", str(HEALTHY_AFTER),
]
DEPLOYMENT_ID = re.compile(r"^ecs-svc/\d{19}$")


def start_server(data_dir: Path, name: str, port: int | None = None) -> Server:
    s = Server(data_dir, name=name, extra_args=list(SERVICE_FLAGS))
    if port:
        s.listen = f"127.0.0.1:{port}"
    return s.start()


def task_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def ts(v: Any) -> float | None:
    """A boto3 timestamp (datetime) as epoch seconds."""
    if v is None:
        return None
    if isinstance(v, datetime.datetime):
        return v.timestamp()
    return float(v)


# --------------------------------------------------------------------------
# A cluster of its own (on a shared server) with its own agents
# --------------------------------------------------------------------------


@dataclass(eq=False)
class Cluster:
    server: Server
    base: Path
    name: str
    agents: list[Agent] = field(default_factory=list)
    arns: list[str] = field(default_factory=list)
    ecs: Any = None

    def __post_init__(self):
        if self.ecs is None:
            self.ecs = self.server.client()

    def add_agent(self) -> Agent:
        i = len(self.agents)
        a = Agent(self.server, self.base / f"{self.name}-agent{i}", cluster=self.name, name=f"agent{i}").start()
        self.agents.append(a)
        self.arns.append(a.instance_arn())
        return a

    # ---- task definitions ----------------------------------------------------

    def register(self, family: str, command: list[str] | None = None, image: str = IMAGE,
                 version: str = "1", memory: int = 32, **kw) -> str:
        c = {
            "name": "app",
            "image": image,
            "memory": memory,
            "command": command or ["sleep", "3600"],
            "stopTimeout": 2,
            "environment": [{"name": "VERSION", "value": version}],
        }
        return self.ecs.register_task_definition(family=family, containerDefinitions=[c], **kw)[
            "taskDefinition"]["taskDefinitionArn"]

    # ---- reading a service ---------------------------------------------------

    def svc(self, name: str) -> dict:
        out = self.ecs.describe_services(cluster=self.name, services=[name])
        assert not out.get("failures"), f"DescribeServices {name}: {out.get('failures')}"
        assert len(out["services"]) == 1, out
        return out["services"][0]

    def describe_tasks(self, arns: list[str]) -> list[dict]:
        out = []
        for i in range(0, len(arns), 100):
            if arns[i:i + 100]:
                out += self.ecs.describe_tasks(cluster=self.name, tasks=arns[i:i + 100])["tasks"]
        return out

    def list_tasks(self, **kw) -> list[str]:
        arns: list[str] = []
        token = None
        while True:
            args = dict(cluster=self.name, **kw)
            if token:
                args["nextToken"] = token
            out = self.ecs.list_tasks(**args)
            arns += out["taskArns"]
            token = out.get("nextToken")
            if not token:
                return arns

    def service_tasks(self, name: str, desired: str = "RUNNING") -> list[dict]:
        """Tasks of the service (ListTasks serviceName=, desiredStatus=), described."""
        return self.describe_tasks(self.list_tasks(serviceName=name, desiredStatus=desired))

    def started_by(self, started_by: str) -> list[dict]:
        """Every task (RUNNING and STOPPED desired status) with this startedBy."""
        arns = self.list_tasks(startedBy=started_by, desiredStatus="RUNNING")
        arns += self.list_tasks(startedBy=started_by, desiredStatus="STOPPED")
        return self.describe_tasks(sorted(set(arns)))

    def instance(self, arn: str) -> dict:
        return self.ecs.describe_container_instances(cluster=self.name, containerInstances=[arn])[
            "containerInstances"][0]

    def dump(self, name: str, extra: str = "") -> str:
        """Deployments, newest events and tasks of the service, for failure messages."""
        lines = [f"--- service {name} in cluster {self.name} ---"]
        if extra:
            lines.append(extra)
        try:
            s = self.svc(name)
            lines.append(
                f"status={s.get('status')} taskDefinition={s.get('taskDefinition')} desired={s.get('desiredCount')} "
                f"running={s.get('runningCount')} pending={s.get('pendingCount')}")
            lines.append("deployments:")
            for d in s.get("deployments", []):
                lines.append("  " + json.dumps({k: d.get(k) for k in (
                    "id", "status", "rolloutState", "rolloutStateReason", "taskDefinition", "desiredCount",
                    "runningCount", "pendingCount", "failedTasks")}, default=str))
            lines.append("events (newest first):")
            for e in s.get("events", [])[:30]:
                lines.append(f"  {e.get('createdAt')} {e.get('message')}")
        except Exception as e:  # noqa: BLE001 - this is a diagnostic dump
            lines.append(f"(DescribeServices failed: {e})")
        try:
            tasks = self.describe_tasks(self.list_tasks(serviceName=name, desiredStatus="RUNNING")
                                        + self.list_tasks(serviceName=name, desiredStatus="STOPPED"))
            lines.append(f"tasks ({len(tasks)}):")
            for t in tasks[:40]:
                lines.append(
                    f"  {task_id(t['taskArn'])} {t.get('startedBy')} td={t['taskDefinitionArn'].rsplit('/', 1)[-1]} "
                    f"last={t.get('lastStatus')} desired={t.get('desiredStatus')} "
                    f"ci={task_id(t.get('containerInstanceArn') or '-')} reason={t.get('stoppedReason')}")
        except Exception as e:  # noqa: BLE001
            lines.append(f"(listing tasks failed: {e})")
        return "\n".join(lines)

    # ---- waiting -------------------------------------------------------------

    def wait_service(self, name: str, pred: Callable[[dict], Any], timeout: float = 60.0,
                     what: str = "condition", interval: float = 0.3) -> dict:
        deadline = time.monotonic() + timeout
        s = None
        while time.monotonic() < deadline:
            s = self.svc(name)
            if pred(s):
                return s
            time.sleep(interval)
        raise AssertionError(f"service {name} never reached {what} within {timeout}s\n{self.dump(name)}")

    def wait_stable(self, name: str, timeout: float = 60.0) -> dict:
        """The boto3 `services_stable` waiter (1 s delay), then the single PRIMARY
        deployment's rolloutState COMPLETED."""
        t0 = time.monotonic()
        try:
            self.ecs.get_waiter("services_stable").wait(
                cluster=self.name, services=[name],
                WaiterConfig={"Delay": 1, "MaxAttempts": max(1, int(timeout))})
        except WaiterError as e:
            raise AssertionError(f"services_stable waiter failed for {name}: {e}\n{self.dump(name)}") from None
        left = max(5.0, timeout - (time.monotonic() - t0))
        return self.wait_service(
            name,
            lambda s: len(s["deployments"]) == 1 and s["deployments"][0].get("rolloutState") == "COMPLETED"
            and s["runningCount"] == s["desiredCount"] and s["pendingCount"] == 0,
            timeout=left, what="one COMPLETED deployment with runningCount == desiredCount")

    def wait_tasks(self, name: str, pred: Callable[[list[dict]], Any], timeout: float = 60.0,
                   what: str = "condition") -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tasks = self.service_tasks(name)
            if pred(tasks):
                return tasks
            time.sleep(0.3)
        raise AssertionError(f"tasks of service {name} never reached {what} within {timeout}s\n{self.dump(name)}")

    def wait_task(self, arn: str, pred: Callable[[dict], Any], timeout: float = 60.0,
                  what: str = "condition", service: str | None = None) -> dict:
        deadline = time.monotonic() + timeout
        t = None
        while time.monotonic() < deadline:
            got = self.describe_tasks([arn])
            if got:
                t = got[0]
                if pred(t):
                    return t
            time.sleep(0.3)
        raise AssertionError(
            f"task {arn} never reached {what} within {timeout}s; last: {json.dumps(t, default=str)[:2000]}\n"
            + (self.dump(service) if service else ""))

    # ---- clean-up ------------------------------------------------------------

    def cleanup(self) -> None:
        ecs = self.ecs
        try:
            for arn in ecs.list_services(cluster=self.name).get("serviceArns", []):
                try:
                    ecs.delete_service(cluster=self.name, service=arn, force=True)
                except ClientError:
                    pass
        except Exception:  # noqa: BLE001 - the server may be gone already
            pass
        try:
            for arn in self.list_tasks(desiredStatus="RUNNING"):
                try:
                    ecs.stop_task(cluster=self.name, task=arn, reason="test clean-up")
                except ClientError:
                    pass
        except Exception:  # noqa: BLE001
            pass
        for a in self.agents:
            a.stop()
        for arn in self.arns:
            remove_containers_of(arn)


def aws_cli(server: Server, tmp: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real aws CLI (v1, from .venv) against `server`, configured by `stevedore env`."""
    import os
    import sys

    exe = Path(sys.executable).parent / "aws"
    exports = parse_env_exports(run_stevedore(["env", "--data-dir", str(server.data_dir)]))
    creds = tmp / "aws-credentials"
    creds.write_text("")
    env = clean_env(exports)
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(creds)
    env["PATH"] = f"{exe.parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([str(exe), "ecs", *args], env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def running_containers(instance_arns: list[str]) -> list[str]:
    out: list[str] = []
    for arn in instance_arns:
        out += docker("ps", "-q", "--no-trunc", "--filter", f"label=com.stevedore.container-instance={arn}").split()
    return out


def containers_of_task(task_arn: str, all_: bool = True) -> list[str]:
    args = ["ps", "-q", "--no-trunc", "--filter", f"label=com.stevedore.task={task_arn}"]
    if all_:
        args.insert(1, "-a")
    return docker(*args).split()


def container_running(cid: str) -> bool:
    out = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", cid], capture_output=True, text=True)
    return out.stdout.strip() == "true"


def messages(service: dict) -> list[str]:
    return [e.get("message", "") for e in service.get("events", [])]


def bounds(desired: int, min_pct: int, max_pct: int) -> tuple[int, int]:
    """(minimum healthy, maximum live) task counts of a deployment configuration."""
    return math.ceil(desired * min_pct / 100), math.floor(desired * max_pct / 100)


__all__ = [
    "Cluster", "DEPLOYMENT_ID", "DISCONNECT_AFTER", "HEALTHY_AFTER", "LOST_GRACE", "SERVICE_FLAGS",
    "aws_cli", "bounds", "container_running", "containers_of_task", "messages", "running_containers",
    "start_server", "task_id", "ts", "uniq",
]
