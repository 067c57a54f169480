#!/usr/bin/env python3
"""awslogs throughput: one task prints LINES lines of LEN bytes (with its
newline) as fast as it can; the agent ships them to the server's
CloudWatch Logs API in blocking mode. Prints the shipped lines/s (task
RUNNING to STOPPED, which waits for the last batch), then, as the
reference, the engine's own read rate of the same output (`docker logs`
of the exited container, into /dev/null), and checks every line arrived.

usage: bench/logs_burst.py [LINES] [LEN]   (defaults 1000000 100)
Needs the test images (run through bench/logs_burst.sh, which also builds
the release binary; STEVEDORE_BIN picks another).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "python"))
os.environ.setdefault("STEVEDORE_BIN", str(REPO / "target" / "release" / "stevedore"))

from stevedore_harness import Server, uniq  # noqa: E402
from tasks_harness import IMAGE, Agent, docker, remove_containers_of, wait_status  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    length = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    pad = "x" * (length - 1 - 8)  # 8-digit number, padding, newline
    root = Path(tempfile.mkdtemp(prefix="stevedore-logs-"))
    srv = Server(root / "srv").start()
    agent = None
    try:
        ecs = srv.client()
        ecs.create_cluster(clusterName="default")
        agent = Agent(srv, root / "agent").start()
        agent.instance_arn()
        group = uniq("/bench/burst")
        td = ecs.register_task_definition(
            family=uniq("burst"),
            containerDefinitions=[{
                "name": "app", "image": IMAGE, "memory": 64,
                # busybox seq -f is not there; awk prints the fixed-size lines.
                "command": ["awk", f"BEGIN {{ for (i = 1; i <= {lines}; i++) printf \"%08d{pad}\\n\", i }}"],
                "logConfiguration": {"logDriver": "awslogs", "options": {
                    "awslogs-group": group, "awslogs-stream-prefix": "b", "awslogs-create-group": "true"}},
            }],
        )["taskDefinition"]["taskDefinitionArn"]
        arn = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]["taskArn"]
        task = wait_status(ecs, "default", arn, "RUNNING", timeout=60)
        t0 = time.monotonic()
        cpu0 = (cpu_seconds(srv.pid), cpu_seconds(agent.proc.pid))
        task = wait_status(ecs, "default", arn, "STOPPED", timeout=1800)
        shipped_s = time.monotonic() - t0
        cpu = (cpu_seconds(srv.pid) - cpu0[0], cpu_seconds(agent.proc.pid) - cpu0[1])
        cid = task["containers"][0]["runtimeId"]

        t1 = time.monotonic()
        with open(os.devnull, "wb") as null:
            subprocess.run(["docker", "logs", cid], stdout=null, stderr=null, check=True)
        docker_s = time.monotonic() - t1

        logs = srv.logs(srv.admin_keys())
        stream = f"b/app/{arn.rsplit('/', 1)[-1]}"
        got, kw = 0, {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        while True:
            page = logs.get_log_events(**kw)
            got += len(page["events"])
            if not page["events"]:
                break
            kw["nextToken"] = page["nextForwardToken"]
        print(f"lines: {lines} of {length} bytes; delivered: {got}")
        print(f"stevedore awslogs (RUNNING -> STOPPED, all delivered): {shipped_s:7.2f} s  {lines / shipped_s:10.0f} lines/s")
        print(f"docker logs (engine read of the same output):        {docker_s:7.2f} s  {lines / docker_s:10.0f} lines/s")
        print(f"CPU during the shipping: server {cpu[0]:.1f} s, agent {cpu[1]:.1f} s")
        if got != lines:
            sys.exit(f"{lines - got} lines missing")
    finally:
        arn = None
        if agent is not None:
            try:
                arn = agent.instance_arn(timeout=1)
            except AssertionError:
                pass
            agent.stop()
        srv.stop()
        if arn:
            remove_containers_of(arn)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
