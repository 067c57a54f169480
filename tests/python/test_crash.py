"""Crash safety: SIGKILL while writes are in flight loses no acknowledged write
and leaves no half-written object."""

from __future__ import annotations

import threading
import time

from stevedore_harness import Server, container

THREADS = 8
RUN_SECONDS = 2.0


def test_sigkill_loses_no_acknowledged_write(tmp_path):
    srv = Server(tmp_path / "data", name="crash").start()
    keys = srv.admin_keys()
    credentials_before = (srv.data_dir / "credentials").read_bytes()
    # Build the clients up front: boto3 sessions are not thread-safe to create.
    clients = [srv.client(keys, connect_timeout=2, read_timeout=10) for _ in range(THREADS)]

    acked_clusters: dict[int, list[str]] = {t: [] for t in range(THREADS)}
    acked_tds: dict[int, list[dict]] = {t: [] for t in range(THREADS)}
    attempted_registers = {t: 0 for t in range(THREADS)}
    stop = threading.Event()
    killing = threading.Event()
    unexpected: list[str] = []

    def worker(t: int) -> None:
        ecs = clients[t]
        i = 0
        while not stop.is_set():
            i += 1
            try:
                if i % 2:
                    name = f"crash-{t}-{i}"
                    arn = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
                    acked_clusters[t].append(arn)
                else:
                    seq = attempted_registers[t] + 1
                    attempted_registers[t] = seq
                    td = ecs.register_task_definition(
                        family=f"crash-fam-{t}",
                        containerDefinitions=[
                            container(
                                "app",
                                environment=[{"name": "SEQ", "value": str(seq)}, {"name": "PAD", "value": "p" * 500}],
                            )
                        ],
                        tags=[{"key": "seq", "value": str(seq)}],
                    )["taskDefinition"]
                    acked_tds[t].append(td)
            except Exception as e:  # noqa: BLE001
                if not killing.is_set():
                    unexpected.append(f"thread {t}: {e!r}")
                return

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
    try:
        for th in threads:
            th.start()
        time.sleep(RUN_SECONDS)
        assert srv.alive(), "server died before it was killed:\n" + srv.log_tail()
        killing.set()
        srv.kill9()
        stop.set()
        for th in threads:
            th.join(timeout=30)
        assert not any(th.is_alive() for th in threads), "a writer hung after the server was killed"
        assert not unexpected, unexpected

        total_clusters = sum(len(v) for v in acked_clusters.values())
        total_tds = sum(len(v) for v in acked_tds.values())
        assert total_clusters > 8 and total_tds > 8, (
            f"too few writes were acknowledged before the kill ({total_clusters} clusters, {total_tds} "
            "task definitions) for the test to mean anything"
        )

        print(f"acknowledged before SIGKILL: {total_clusters} clusters, {total_tds} task definitions")
        srv.start()
        assert (srv.data_dir / "credentials").read_bytes() == credentials_before, "restart must keep the admin key"
        ecs = srv.client(keys)

        # Every acknowledged cluster is there and ACTIVE.
        all_acked = [a for v in acked_clusters.values() for a in v]
        for i in range(0, len(all_acked), 100):
            batch = all_acked[i : i + 100]
            out = ecs.describe_clusters(clusters=batch)
            assert out.get("failures", []) == [], f"acknowledged clusters lost: {out['failures'][:5]}"
            assert sorted(c["clusterArn"] for c in out["clusters"]) == sorted(batch)
            assert {c["status"] for c in out["clusters"]} == {"ACTIVE"}

        listed = {a for p in ecs.get_paginator("list_clusters").paginate() for a in p["clusterArns"]}
        for t in range(THREADS):
            mine = {a for a in listed if a.split("/")[-1].startswith(f"crash-{t}-")}
            acked = set(acked_clusters[t])
            assert acked <= mine
            # At most the one request that was in flight may have committed without an answer.
            assert len(mine - acked) <= 1, f"thread {t}: unexpected clusters {sorted(mine - acked)}"

        # Every acknowledged revision describes exactly as acknowledged; revisions are 1..N.
        for t in range(THREADS):
            family = f"crash-fam-{t}"
            arns = [
                a
                for p in ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family)
                for a in p["taskDefinitionArns"]
            ]
            revisions = [int(a.rsplit(":", 1)[1]) for a in arns]
            n = len(revisions)
            assert revisions == list(range(1, n + 1)), f"{family}: revisions are not 1..N: {revisions}"
            acked = acked_tds[t]
            assert len(acked) <= n <= len(acked) + 1, f"{family}: {len(acked)} acknowledged, {n} stored"
            for td in acked:
                got = ecs.describe_task_definition(taskDefinition=td["taskDefinitionArn"], include=["TAGS"])
                assert got["taskDefinition"] == td, f"{td['taskDefinitionArn']} changed across the crash"
                assert got["tags"] == [{"key": "seq", "value": str(td["revision"])}]
            # No half-written object: every stored revision is complete and in order.
            for rev in range(1, n + 1):
                got = ecs.describe_task_definition(taskDefinition=f"{family}:{rev}", include=["TAGS"])
                env = {e["name"]: e["value"] for e in got["taskDefinition"]["containerDefinitions"][0]["environment"]}
                assert env == {"SEQ": str(rev), "PAD": "p" * 500}, f"{family}:{rev} is damaged: {env}"
                assert got["tags"] == [{"key": "seq", "value": str(rev)}]

        # The restarted server keeps counting where it left off.
        nxt = ecs.register_task_definition(family="crash-fam-0", containerDefinitions=[container()])["taskDefinition"]
        stored0 = len([a for p in ecs.get_paginator("list_task_definitions").paginate(familyPrefix="crash-fam-0")
                       for a in p["taskDefinitionArns"]])
        assert nxt["revision"] == stored0
    finally:
        stop.set()
        srv.stop()


def test_sigkill_loses_no_acknowledged_log_event(tmp_path):
    """PutLogEvents answers only once its events are durable in the log store."""
    srv = Server(tmp_path / "data", name="crash-logs").start()
    keys = srv.admin_keys()
    logs = srv.logs(keys, connect_timeout=2, read_timeout=10)
    logs.create_log_group(logGroupName="crash")
    writers = 4
    for t in range(writers):
        logs.create_log_stream(logGroupName="crash", logStreamName=f"w{t}")
    clients = [srv.logs(keys, connect_timeout=2, read_timeout=10) for _ in range(writers)]
    acked: dict[int, list[int]] = {t: [] for t in range(writers)}
    stop = threading.Event()
    killing = threading.Event()
    unexpected: list[str] = []
    base = int(time.time() * 1000)

    def worker(t: int) -> None:
        n = 0
        while not stop.is_set():
            batch = list(range(n, n + 200))
            try:
                clients[t].put_log_events(
                    logGroupName="crash",
                    logStreamName=f"w{t}",
                    logEvents=[{"timestamp": base + i // 100, "message": f"{t}-{i:08d} " + "x" * 80} for i in batch],
                )
            except Exception as e:  # noqa: BLE001
                if not killing.is_set():
                    unexpected.append(f"writer {t}: {e!r}")
                return
            acked[t].extend(batch)
            n += len(batch)

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(writers)]
    try:
        for th in threads:
            th.start()
        time.sleep(RUN_SECONDS)
        assert srv.alive(), "server died before it was killed:\n" + srv.log_tail()
        killing.set()
        srv.kill9()
        stop.set()
        for th in threads:
            th.join(timeout=30)
        assert not unexpected, unexpected
        assert sum(len(v) for v in acked.values()) >= 1000, "too few events acknowledged to mean anything"

        srv.start()
        logs = srv.logs(keys)
        for t in range(writers):
            got: list[str] = []
            token = None
            while True:
                kw = {"nextToken": token} if token else {}
                page = logs.get_log_events(logGroupName="crash", logStreamName=f"w{t}", startFromHead=True, **kw)
                got.extend(e["message"].split(" ", 1)[0] for e in page["events"])
                if page["nextForwardToken"] == token:
                    break
                token = page["nextForwardToken"]
            want = [f"{t}-{i:08d}" for i in acked[t]]
            # Every acknowledged event is there, once and in order; at most the
            # one batch in flight at the kill may have committed unanswered.
            assert got[: len(want)] == want, f"writer {t}: acknowledged events lost or reordered"
            assert len(got) - len(want) in (0, 200), f"writer {t}: {len(got) - len(want)} extra events"
    finally:
        stop.set()
        srv.stop()
