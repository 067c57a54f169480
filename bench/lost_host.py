#!/usr/bin/env python3
"""Lost-host recovery: a service of N tasks spread over two agents; one
agent is killed with SIGKILL (its containers keep running, as on a host
that dropped off the network). Prints the seconds from the kill until
(a) the instance shows agentConnected false, (b) the service again runs N
tasks, all on the surviving host; then restarts the agent and prints how
long until its orphaned service containers are stopped.

usage: bench/lost_host.py [TASKS] [-- extra `stevedore server` flags]
Defaults are the server's own (--agent-disconnect-after 10,
--lost-instance-grace 20). Needs a release build and the test images
(run through bench/lost_host.sh).
"""

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "python"))
os.environ.setdefault("STEVEDORE_BIN", str(REPO / "target" / "release" / "stevedore"))

from stevedore_harness import Server  # noqa: E402
from tasks_harness import IMAGE, Agent, docker, remove_containers_of  # noqa: E402


def main() -> None:
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        i = args.index("--")
        args, extra = args[:i], args[i + 1 :]
    n = int(args[0]) if args else 6
    root = Path(tempfile.mkdtemp(prefix="stevedore-lost-"))
    srv = Server(root / "srv", extra_args=["--task-healthy-after", "1", *extra]).start()
    agents = []
    try:
        ecs = srv.client()
        ecs.create_cluster(clusterName="default")
        a = Agent(srv, root / "a", name="a").start()
        b = Agent(srv, root / "b", name="b").start()
        agents = [a, b]
        ia, ib = a.instance_arn(), b.instance_arn()
        td = ecs.register_task_definition(
            family="lost",
            containerDefinitions=[
                {"name": "app", "image": IMAGE, "memory": 16, "command": ["sleep", "3600"], "stopTimeout": 1}
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(serviceName="lost", taskDefinition=td, desiredCount=n)
        ecs.get_waiter("services_stable").wait(services=["lost"], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        tasks = ecs.describe_tasks(tasks=ecs.list_tasks(serviceName="lost")["taskArns"])["tasks"]
        on_a = sum(t["containerInstanceArn"] == ia for t in tasks)
        print(f"{n} tasks running, {on_a} on the host to be lost")
        t0 = time.monotonic()
        a.kill9()
        detected = replaced = None
        while time.monotonic() - t0 < 300:
            if detected is None:
                ci = ecs.describe_container_instances(containerInstances=[ia])["containerInstances"][0]
                if not ci["agentConnected"]:
                    detected = time.monotonic() - t0
            arns = ecs.list_tasks(serviceName="lost")["taskArns"]
            tasks = ecs.describe_tasks(tasks=arns)["tasks"] if arns else []
            ok = [t for t in tasks if t["containerInstanceArn"] == ib and t["lastStatus"] == "RUNNING"]
            if len(ok) == n:
                replaced = time.monotonic() - t0
                break
            time.sleep(0.2)
        print(f"agentConnected false after   {detected:.1f} s")
        print(f"service back to {n} RUNNING after {replaced:.1f} s (all on the surviving host)")
        t1 = time.monotonic()
        a = Agent(srv, root / "a", name="a").start()
        agents[0] = a
        while time.monotonic() - t1 < 120:
            if not docker("ps", "-q", "--filter", f"label=com.stevedore.container-instance={ia}").split():
                break
            time.sleep(0.2)
        back = time.monotonic() - t1
        svc = ecs.describe_services(services=["lost"])["services"][0]
        print(f"agent restarted: its {on_a} orphaned containers stopped after {back:.1f} s; "
              f"runningCount {svc['runningCount']} / desiredCount {svc['desiredCount']}")
        ecs.delete_service(service="lost", force=True)
        time.sleep(3)
    finally:
        for ag in agents:
            ag.stop()
        for ag in agents:
            try:
                remove_containers_of(ag.instance_arn(timeout=1))
            except Exception:
                pass
        srv.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
