#!/usr/bin/env python3
"""Log store at volume: ingests BYTES of log text through PutLogEvents
(boto3, batches of 7,500 lines of ~100 bytes, just under the 1 MiB limit) into
one stream, then prints the server's idle RSS and RSS after, the bytes on
disk (logs.db + its WAL, plus the growth of stevedore.db) against the
message bytes ingested, and the p99 latency of GetLogEvents and
FilterLogEvents pages (default limit: up to 10,000 events) at random start
times over the whole stream.

usage: bench/logs_ingest.py [BYTES] (default 1e9; e.g. 2e8)
STEVEDORE_BIN picks the binary (default target/release/stevedore).
"""

import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "python"))
os.environ.setdefault("STEVEDORE_BIN", str(REPO / "target" / "release" / "stevedore"))

from stevedore_harness import Server  # noqa: E402

BATCH = 7500
PAGES = 100


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def disk(data: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in data.iterdir() if p.name.startswith(("logs.db", "stevedore.db"))}


def p99(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=100)[98] if len(xs) >= 2 else xs[0]


def main() -> None:
    target = int(float(sys.argv[1])) if len(sys.argv) > 1 else 1_000_000_000
    root = Path(tempfile.mkdtemp(prefix="stevedore-logs-bench-"))
    srv = Server(root / "srv").start()
    try:
        keys = srv.admin_keys()
        logs = srv.logs(keys, read_timeout=120)
        logs.create_log_group(logGroupName="bench")
        logs.create_log_stream(logGroupName="bench", logStreamName="s")
        time.sleep(1)
        idle = rss_kib(srv.pid)
        before = disk(srv.data_dir)
        rnd = random.Random(1)
        paths = ["/api/v1/orders", "/api/v1/users", "/healthz", "/api/v2/search", "/static/app.js"]
        levels = ["INFO"] * 8 + ["WARN", "ERROR"]
        agents = ["curl/8.5.0", "Mozilla/5.0 (X11; Linux)", "python-requests/2.31", "Go-http-client/1.1"]
        t0 = int(time.time() * 1000) - 3_600_000  # an hour ago, 1 ms apart per batch
        ingested = events = 0
        n = 0
        start = time.monotonic()
        while ingested < target:
            ts = t0 + n
            batch = []
            for _ in range(BATCH):
                msg = (
                    f"{levels[rnd.randrange(10)]} req={rnd.getrandbits(64):016x} {paths[rnd.randrange(5)]} "
                    f"status={rnd.choice((200, 200, 200, 404, 500))} latency_ms={rnd.randrange(1, 900)} n={events} "
                    f"ua={rnd.choice(agents)}"
                )
                batch.append({"timestamp": ts, "message": msg})
                ingested += len(msg.encode())
                events += 1
            logs.put_log_events(logGroupName="bench", logStreamName="s", logEvents=batch)
            n += 1
        took = time.monotonic() - start
        after_rss = rss_kib(srv.pid)
        after = disk(srv.data_dir)
        grew = sum(after.values()) - sum(before.values())
        t_last = t0 + n

        get_ms, filt_ms = [], []
        for _ in range(PAGES):
            st = rnd.randrange(t0, t_last)
            s = time.monotonic()
            page = logs.get_log_events(logGroupName="bench", logStreamName="s", startTime=st, startFromHead=True)
            get_ms.append((time.monotonic() - s) * 1000)
            assert page["events"], "GetLogEvents returned nothing"
        for _ in range(PAGES):
            st = rnd.randrange(t0, t_last)
            s = time.monotonic()
            page = logs.filter_log_events(logGroupName="bench", startTime=st, filterPattern="ERROR")
            filt_ms.append((time.monotonic() - s) * 1000)
        final_rss = rss_kib(srv.pid)

        print(f"ingested: {ingested / 1e6:.1f} MB of message text, {events} events in {n} calls, {took:.0f} s ({ingested / 1e6 / took:.1f} MB/s)")
        print(f"RSS: idle {idle / 1024:.1f} MiB, after ingest {after_rss / 1024:.1f} MiB (+{(after_rss - idle) / 1024:.1f}), after reads {final_rss / 1024:.1f} MiB")
        print(f"disk: {grew / 1e6:.1f} MB grown ({grew / ingested:.2f}x ingested); files {after}")
        print(f"GetLogEvents page (up to 10,000 events): p50 {statistics.median(get_ms):.0f} ms, p99 {p99(get_ms):.0f} ms over {PAGES}")
        print(f"FilterLogEvents page ('ERROR', up to 10,000 events): p50 {statistics.median(filt_ms):.0f} ms, p99 {p99(filt_ms):.0f} ms over {PAGES}")
    finally:
        srv.stop()
        # A 1 GB run leaves about 1.4 GB of data directory behind.
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
