"""Helpers for tests that run real containers: agent processes, the local
test image, waiting on task states and asking Docker directly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stevedore_harness import REPO_ROOT, STARTED_SERVERS, Server, clean_env, stevedore_bin

IMAGE = "stevedore-test/busybox:latest"
STOPSIGNAL_IMAGE = "stevedore-test/busybox-stopsignal:latest"


def ensure_test_images() -> None:
    """The images are built locally from a static busybox (no registry)."""
    missing = subprocess.run(
        ["docker", "image", "inspect", IMAGE, STOPSIGNAL_IMAGE], capture_output=True
    ).returncode
    if missing:
        subprocess.run([str(REPO_ROOT / "scripts" / "build-test-images")], check=True)


def docker_inspect(container_id: str) -> dict:
    out = subprocess.run(["docker", "inspect", container_id], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def http_get(url: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except Exception as e:  # the container may still be starting its server
            last = e
            time.sleep(0.2)
    raise AssertionError(f"GET {url} failed: {last}")


@dataclass(eq=False)
class Agent:
    """A `stevedore agent` process joined to a server's cluster."""

    server: Server
    data_dir: Path
    cluster: str = "default"
    extra_args: list[str] = field(default_factory=list)
    name: str = "agent"
    proc: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.{self.name}.log"

    def start(self) -> "Agent":
        keys = self.server.admin_keys()
        env = clean_env(
            {
                "AWS_ACCESS_KEY_ID": keys.access_key_id,
                "AWS_SECRET_ACCESS_KEY": keys.secret_access_key,
                "AWS_REGION": self.server.region,
                "RUST_LOG": os.environ.get("RUST_LOG", "info"),
            }
        )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                str(stevedore_bin()),
                "agent",
                "--endpoint",
                self.server.endpoint,
                "--cluster",
                self.cluster,
                "--data-dir",
                str(self.data_dir),
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        log.close()
        return self

    def instance_arn(self, timeout: float = 30.0) -> str:
        path = self.data_dir / "agent.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"agent exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                arn = json.loads(path.read_text()).get("containerInstanceArn")
                if arn:
                    return arn
            except (OSError, json.JSONDecodeError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"agent did not register within {timeout}s:\n{self.log_tail()}")

    def registrations(self) -> int:
        """How many times this agent's log says it registered (once per start)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return 0
        return sum(1 for line in lines if "registered" in line and "different container instance" not in line)

    def wait_registered(self, before: int, timeout: float = 60.0) -> None:
        """Waits until the agent registered again since `before` = registrations() was read."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"agent exited {self.proc.returncode}:\n{self.log_tail()}")
            if self.registrations() > before:
                return
            time.sleep(0.1)
        raise AssertionError(f"agent did not re-register within {timeout}s:\n{self.log_tail()}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def wait_task(ecs, cluster: str, arn: str, pred, timeout: float = 60.0, what: str = "condition") -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        out = ecs.describe_tasks(cluster=cluster, tasks=[arn])
        if out["tasks"]:
            last = out["tasks"][0]
            if pred(last):
                return last
        time.sleep(0.2)
    raise AssertionError(f"task {arn} never reached {what}; last seen: {json.dumps(last, default=str)[:3000]}")


def wait_status(ecs, cluster: str, arn: str, status: str, timeout: float = 60.0) -> dict:
    return wait_task(ecs, cluster, arn, lambda t: t.get("lastStatus") == status, timeout, status)


def remove_containers_of(instance_arn: str) -> None:
    """Removes every container an agent made (tests clean up after themselves)."""
    ids = docker("ps", "-aq", "--filter", f"label=com.stevedore.container-instance={instance_arn}").split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def started_up(tmp_path, name: str = "up") -> Server:
    """`stevedore up`: server + embedded agent; waits until the host is registered."""
    srv = Server(tmp_path / name, name=name, command="up").start()
    ecs = srv.client()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        arns = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
        if arns:
            return srv
        time.sleep(0.1)
    srv.stop()
    raise AssertionError(f"`stevedore up` registered no container instance:\n{srv.log_tail()}")


__all__ = [
    "IMAGE",
    "STOPSIGNAL_IMAGE",
    "Agent",
    "STARTED_SERVERS",
    "docker",
    "docker_inspect",
    "ensure_test_images",
    "http_get",
    "remove_containers_of",
    "started_up",
    "wait_status",
    "wait_task",
    "pytest",
]
