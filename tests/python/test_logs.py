"""The CloudWatch Logs JSON API on Stevedore's endpoint, with boto3 and the aws CLI."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time

import pytest

from stevedore_harness import (
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    clean_env,
    expect_error,
    parse_env_exports,
    raw_call,
    run_stevedore,
    uniq,
)
from test_cli import aws_executable

DAY_MS = 86_400_000


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture(scope="module")
def logs(server, admin_keys):
    return server.logs(admin_keys)


@pytest.fixture(scope="module")
def logs_raw(server, admin_keys):
    return server.logs(admin_keys, validate=False)


def make_stream(logs, group=None, stream="s1"):
    group = group or uniq("/stevedore/test")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    return group, stream


def put(logs, group, stream, messages, start=None, step=1):
    start = start if start is not None else now_ms() - 60_000
    events = [{"timestamp": start + i * step, "message": m} for i, m in enumerate(messages)]
    return logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def test_group_lifecycle(logs):
    name = uniq("/ecs/app")
    logs.create_log_group(logGroupName=name)
    expect_error(logs.create_log_group, "ResourceAlreadyExistsException", logGroupName=name)
    groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    assert [g["logGroupName"] for g in groups] == [name]
    g = groups[0]
    assert g["arn"] == f"arn:aws:logs:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:log-group:{name}:*"
    assert g["storedBytes"] == 0
    assert "retentionInDays" not in g
    assert abs(g["creationTime"] - now_ms()) < 60_000, "creationTime is epoch milliseconds"

    logs.delete_log_group(logGroupName=name)
    assert logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] == []
    expect_error(logs.delete_log_group, "ResourceNotFoundException", logGroupName=name)


def test_describe_log_groups_pages(logs):
    base = uniq("/paged")
    names = [f"{base}/{i:02d}" for i in range(7)]
    for n in names:
        logs.create_log_group(logGroupName=n)
    seen, token, pages = [], None, 0
    while True:
        kw = {"logGroupNamePrefix": base, "limit": 3}
        if token:
            kw["nextToken"] = token
        out = logs.describe_log_groups(**kw)
        seen += [g["logGroupName"] for g in out["logGroups"]]
        pages += 1
        token = out.get("nextToken")
        if not token:
            break
    assert seen == names and pages == 3
    via_paginator = [
        g["logGroupName"]
        for p in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=base, PaginationConfig={"PageSize": 2})
        for g in p["logGroups"]
    ]
    assert via_paginator == names


def test_stream_lifecycle_and_ordering(logs):
    group = uniq("/streams")
    logs.create_log_group(logGroupName=group)
    for s in ["b", "a", "c"]:
        logs.create_log_stream(logGroupName=group, logStreamName=s)
    expect_error(logs.create_log_stream, "ResourceAlreadyExistsException", logGroupName=group, logStreamName="a")
    expect_error(logs.create_log_stream, "ResourceNotFoundException", logGroupName=group + "-nope", logStreamName="a")

    t = now_ms() - 60_000
    put(logs, group, "c", ["c1"], start=t)
    put(logs, group, "a", ["a1"], start=t + 10)
    put(logs, group, "b", ["b1"], start=t + 20)

    by_name = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in by_name] == ["a", "b", "c"]
    a = by_name[0]
    assert a["firstEventTimestamp"] == a["lastEventTimestamp"] == t + 10
    assert a["lastIngestionTime"] >= a["creationTime"]
    assert a["arn"].endswith(f":log-group:{group}:log-stream:a")

    desc = logs.describe_log_streams(logGroupName=group, descending=True)["logStreams"]
    assert [s["logStreamName"] for s in desc] == ["c", "b", "a"]
    by_time = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True)["logStreams"]
    assert [s["logStreamName"] for s in by_time] == ["b", "a", "c"]
    paged = [
        s["logStreamName"]
        for p in logs.get_paginator("describe_log_streams").paginate(
            logGroupName=group, orderBy="LastEventTime", PaginationConfig={"PageSize": 1}
        )
        for s in p["logStreams"]
    ]
    assert paged == ["c", "a", "b"]
    prefixed = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix="b")["logStreams"]
    assert [s["logStreamName"] for s in prefixed] == ["b"]
    expect_error(
        logs.describe_log_streams, "InvalidParameterException",
        logGroupName=group, orderBy="LastEventTime", logStreamNamePrefix="a",
    )

    g = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    assert g["storedBytes"] == 6

    logs.delete_log_stream(logGroupName=group, logStreamName="a")
    assert [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]] == ["b", "c"]
    expect_error(logs.get_log_events, "ResourceNotFoundException", logGroupName=group, logStreamName="a")


def test_put_and_get_in_time_order(logs):
    group, stream = make_stream(logs)
    t = now_ms() - 120_000
    out = put(logs, group, stream, ["one", "two", "three"], start=t, step=1000)
    assert out.get("nextSequenceToken")
    assert "rejectedLogEventsInfo" not in out
    # A later batch with earlier timestamps still reads back in time order.
    put(logs, group, stream, ["zero"], start=t - 1000)
    # Same timestamp twice: kept in ingestion order.
    put(logs, group, stream, ["three-b"], start=t + 2000)

    head = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    assert [e["message"] for e in head["events"]] == ["zero", "one", "two", "three", "three-b"]
    assert [e["timestamp"] for e in head["events"]] == [t - 1000, t, t + 1000, t + 2000, t + 2000]
    assert all(e["ingestionTime"] >= e["timestamp"] for e in head["events"])
    assert head["nextForwardToken"].startswith("f/") and head["nextBackwardToken"].startswith("b/")

    # Time window: startTime inclusive, endTime exclusive.
    window = logs.get_log_events(
        logGroupName=group, logStreamName=stream, startTime=t, endTime=t + 2000, startFromHead=True
    )
    assert [e["message"] for e in window["events"]] == ["one", "two"]


def test_start_from_head_both_ways_and_tokens_terminate(logs):
    group, stream = make_stream(logs)
    t = now_ms() - 600_000
    msgs = [f"m{i:02d}" for i in range(25)]
    put(logs, group, stream, msgs, start=t, step=100)

    # Default (startFromHead false): the newest page, still in ascending order.
    tail = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=10)
    assert [e["message"] for e in tail["events"]] == msgs[15:]
    # Walking backwards reaches the start, then the token repeats.
    seen, token = list(tail["events"]), tail["nextBackwardToken"]
    for _ in range(10):
        page = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=10, nextToken=token)
        if page["nextBackwardToken"] == token:
            assert page["events"] == []
            break
        seen = page["events"] + seen
        token = page["nextBackwardToken"]
    else:
        pytest.fail("backward paging never terminated")
    assert [e["message"] for e in seen] == msgs

    # From the head, forwards, until the forward token repeats (how clients loop).
    got, token, calls = [], None, 0
    while calls < 10:
        kw = {"logGroupName": group, "logStreamName": stream, "limit": 10, "startFromHead": True}
        if token:
            kw["nextToken"] = token
        page = logs.get_log_events(**kw)
        calls += 1
        got += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert got == msgs and calls == 4

    # A forward token picks up events written after it was issued.
    put(logs, group, stream, ["late"], start=t + 10_000)
    page = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=token)
    assert [e["message"] for e in page["events"]] == ["late"]

    # A forward token from an empty stream also sees later events.
    g2, s2 = make_stream(logs)
    empty = logs.get_log_events(logGroupName=g2, logStreamName=s2)
    assert empty["events"] == []
    again = logs.get_log_events(logGroupName=g2, logStreamName=s2, nextToken=empty["nextForwardToken"])
    assert again["nextForwardToken"] == empty["nextForwardToken"]
    put(logs, g2, s2, ["first"])
    later = logs.get_log_events(logGroupName=g2, logStreamName=s2, nextToken=empty["nextForwardToken"])
    assert [e["message"] for e in later["events"]] == ["first"]

    expect_error(logs.get_log_events, "InvalidParameterException", logGroupName=group, logStreamName=stream, nextToken="x/1")


def test_filter_terms_streams_and_paging(logs):
    group = uniq("/filter")
    logs.create_log_group(logGroupName=group)
    for s in ["app/web/1", "app/web/2", "db/1"]:
        logs.create_log_stream(logGroupName=group, logStreamName=s)
    t = now_ms() - 300_000
    put(logs, group, "app/web/1", ["INFO started", "ERROR disk full", "WARN slow"], start=t, step=10)
    put(logs, group, "app/web/2", ["ERROR net down", "INFO ok"], start=t + 5, step=10)
    put(logs, group, "db/1", ["ERROR disk full again"], start=t + 1)

    def messages(**kw):
        return [e["message"] for e in logs.filter_log_events(logGroupName=group, **kw)["events"]]

    assert messages() == ["INFO started", "ERROR disk full again", "ERROR net down", "ERROR disk full", "INFO ok", "WARN slow"]
    assert messages(filterPattern="ERROR") == ["ERROR disk full again", "ERROR net down", "ERROR disk full"]
    assert messages(filterPattern="ERROR disk") == ["ERROR disk full again", "ERROR disk full"]
    assert messages(filterPattern='"disk full again"') == ["ERROR disk full again"]
    assert messages(filterPattern="?WARN ?net") == ["ERROR net down", "WARN slow"]
    assert messages(filterPattern="ERROR -again") == ["ERROR net down", "ERROR disk full"]
    assert messages(filterPattern="error") == [], "terms are case-sensitive"
    assert messages(logStreamNamePrefix="app/", filterPattern="ERROR") == ["ERROR net down", "ERROR disk full"]
    assert messages(logStreamNames=["db/1"]) == ["ERROR disk full again"]
    assert messages(startTime=t + 5, endTime=t + 20) == ["ERROR net down", "ERROR disk full", "INFO ok"]

    out = logs.filter_log_events(logGroupName=group, filterPattern="ERROR")
    ev = out["events"][0]
    assert ev["logStreamName"] == "db/1" and ev["eventId"] and ev["ingestionTime"] >= ev["timestamp"]
    assert len({e["eventId"] for e in out["events"]}) == 3

    paged = [
        e["message"]
        for p in logs.get_paginator("filter_log_events").paginate(logGroupName=group, PaginationConfig={"PageSize": 2})
        for e in p["events"]
    ]
    assert paged == messages()
    expect_error(logs.filter_log_events, "InvalidParameterException", logGroupName=group, filterPattern="{ $.x = 1 }")
    expect_error(logs.filter_log_events, "ResourceNotFoundException", logGroupName=group + "-missing")


def test_retention_policy_enforced(logs):
    group, stream = make_stream(logs)
    now = now_ms()
    old = now - 3 * DAY_MS
    put(logs, group, stream, ["old-1", "old-2"], start=old)
    put(logs, group, stream, ["fresh"], start=now - 1000)
    assert len(logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]) == 3

    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    g = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    assert g["retentionInDays"] == 1
    # Hidden at once, before any sweep.
    got = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    assert [e["message"] for e in got["events"]] == ["fresh"]
    assert [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]] == ["fresh"]
    # New events past retention are rejected, not stored.
    out = put(logs, group, stream, ["expired", "ok"], start=now - DAY_MS - 3_600_000, step=DAY_MS)
    assert out["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 0}
    got = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    assert [e["message"] for e in got["events"]] == ["ok", "fresh"]

    logs.put_retention_policy(logGroupName=group, retentionInDays=3653)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"] == 3653
    logs.delete_retention_policy(logGroupName=group)
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]

    for bad in [0, 2, 4000, -1]:
        expect_error(logs.put_retention_policy, "InvalidParameterException", contains=["retentionInDays"],
                     logGroupName=group, retentionInDays=bad)
    expect_error(logs.put_retention_policy, "ResourceNotFoundException", logGroupName=group + "-x", retentionInDays=1)


def test_put_log_events_validation(logs, logs_raw):
    group, stream = make_stream(logs)
    now = now_ms()
    expect_error(
        logs.put_log_events, "InvalidParameterException", contains=["chronological"],
        logGroupName=group, logStreamName=stream,
        logEvents=[{"timestamp": now, "message": "b"}, {"timestamp": now - 1, "message": "a"}],
    )
    expect_error(
        logs.put_log_events, "ResourceNotFoundException", contains=["log group"],
        logGroupName=group + "-missing", logStreamName=stream, logEvents=[{"timestamp": now, "message": "x"}],
    )
    expect_error(
        logs.put_log_events, "ResourceNotFoundException", contains=["log stream"],
        logGroupName=group, logStreamName="nope", logEvents=[{"timestamp": now, "message": "x"}],
    )
    big = "x" * (1_048_576 // 2)
    expect_error(
        logs.put_log_events, "InvalidParameterException",
        logGroupName=group, logStreamName=stream,
        logEvents=[{"timestamp": now, "message": big}, {"timestamp": now, "message": big}],
    )
    expect_error(
        logs_raw.put_log_events, "InvalidParameterException",
        logGroupName=group, logStreamName=stream, logEvents=[],
    )
    # Too old and too new events are reported, the rest stored.
    out = logs.put_log_events(
        logGroupName=group, logStreamName=stream,
        logEvents=[
            {"timestamp": now - 15 * DAY_MS, "message": "ancient"},
            {"timestamp": now - 15 * DAY_MS + 1, "message": "ancient too"},
            {"timestamp": now - 15 * DAY_MS + 2 * 3_600_000, "message": "still ancient"},
        ],
    )
    assert out["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 2}
    out = logs.put_log_events(
        logGroupName=group, logStreamName=stream,
        logEvents=[{"timestamp": now, "message": "now"}, {"timestamp": now + 3 * 3_600_000, "message": "future"}],
    )
    assert out["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    got = logs.get_log_events(logGroupName=group, logStreamName=stream)
    assert [e["message"] for e in got["events"]] == ["now"]

    expect_error(logs.create_log_group, "InvalidParameterException", logGroupName="bad name!")
    expect_error(logs_raw.create_log_stream, "InvalidParameterException", logGroupName=group, logStreamName="a:b")


def test_unsupported_operation_is_clear(logs):
    err = expect_error(logs.describe_metric_filters, "InvalidOperationException")
    assert "not supported" in err["Message"]


def test_accounts_are_isolated(server):
    acct_a = str(random.randint(100000000000, 999999999999))
    acct_b = str(int(acct_a) + 1)
    a = server.logs(server.create_keys(acct_a))
    b = server.logs(server.create_keys(acct_b))
    name = uniq("/shared")
    a.create_log_group(logGroupName=name)
    a.create_log_stream(logGroupName=name, logStreamName="s")
    put(a, name, "s", ["secret of a"])
    # B sees nothing of A's and can use the same name independently.
    assert b.describe_log_groups(logGroupNamePrefix=name)["logGroups"] == []
    expect_error(b.get_log_events, "ResourceNotFoundException", logGroupName=name, logStreamName="s")
    expect_error(b.filter_log_events, "ResourceNotFoundException", logGroupName=name)
    arn = a.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]["arn"]
    assert f":{acct_a}:" in arn
    expect_error(b.filter_log_events, "ResourceNotFoundException", logGroupIdentifier=arn)
    b.create_log_group(logGroupName=name)
    b.create_log_stream(logGroupName=name, logStreamName="s")
    assert b.get_log_events(logGroupName=name, logStreamName="s")["events"] == []
    assert [e["message"] for e in a.get_log_events(logGroupName=name, logStreamName="s")["events"]] == ["secret of a"]
    # Regions are separate too.
    other_region = server.logs(server.admin_keys(), region="eu-west-1")
    assert other_region.describe_log_groups(logGroupNamePrefix=name)["logGroups"] == []


def test_signing_for_the_wrong_service_is_refused(server, admin_keys):
    # raw_call signs for service "ecs".
    resp = raw_call(server.endpoint, None, {}, keys=admin_keys, target="Logs_20140328.DescribeLogGroups")
    assert resp.status == 403, resp.body
    assert resp.error_type == "InvalidSignatureException"
    assert "logs" in resp.message
    # The same request signed for "logs" is served.
    assert server.logs(admin_keys).describe_log_groups(limit=1)["logGroups"] is not None


@pytest.fixture(scope="module")
def aws_env(server):
    exports = parse_env_exports(run_stevedore(["env", "--data-dir", str(server.data_dir)]))
    env = clean_env(exports)
    env["AWS_CONFIG_FILE"] = os.devnull
    return env


def aws_logs(env, *args):
    res = subprocess.run(
        [aws_executable(), "logs", *args, "--output", "json"],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, f"aws logs {' '.join(args)} failed ({res.returncode}):\n{res.stderr}"
    return json.loads(res.stdout) if res.stdout.strip() else {}


def test_aws_cli_prints_events(aws_env):
    group = uniq("/cli")
    aws_logs(aws_env, "create-log-group", "--log-group-name", group)
    aws_logs(aws_env, "create-log-stream", "--log-group-name", group, "--log-stream-name", "web/app/1")
    t = now_ms() - 5000
    events = json.dumps([{"timestamp": t, "message": "hello from stevedore"}, {"timestamp": t + 1, "message": "ERROR boom"}])
    aws_logs(aws_env, "put-log-events", "--log-group-name", group, "--log-stream-name", "web/app/1",
             "--log-events", events)
    got = aws_logs(aws_env, "get-log-events", "--log-group-name", group, "--log-stream-name", "web/app/1")
    assert [e["message"] for e in got["events"]] == ["hello from stevedore", "ERROR boom"]
    head = aws_logs(aws_env, "get-log-events", "--log-group-name", group, "--log-stream-name", "web/app/1",
                    "--start-from-head")
    assert [e["message"] for e in head["events"]] == ["hello from stevedore", "ERROR boom"]
    filtered = aws_logs(aws_env, "filter-log-events", "--log-group-name", group, "--filter-pattern", "ERROR")
    assert [(e["logStreamName"], e["message"]) for e in filtered["events"]] == [("web/app/1", "ERROR boom")]
    described = aws_logs(aws_env, "describe-log-groups", "--log-group-name-prefix", group)
    assert [g["logGroupName"] for g in described["logGroups"]] == [group]
    aws_logs(aws_env, "put-retention-policy", "--log-group-name", group, "--retention-in-days", "7")
    described = aws_logs(aws_env, "describe-log-groups", "--log-group-name-prefix", group)
    assert described["logGroups"][0]["retentionInDays"] == 7


def test_concurrent_puts_to_one_stream_keep_every_event(server, admin_keys):
    from concurrent.futures import ThreadPoolExecutor

    clients = [server.logs(admin_keys) for _ in range(6)]
    group, stream = make_stream(clients[0])
    base = now_ms() - 60_000

    def worker(i):
        for j in range(5):
            put(clients[i], group, stream, [f"w{i}-{j}-{k}" for k in range(4)], start=base + i * 10 + j)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(worker, range(6)))
    got = clients[0].get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert len(got) == 6 * 5 * 4
    assert [e["timestamp"] for e in got] == sorted(e["timestamp"] for e in got)
    s = clients[0].describe_log_streams(logGroupName=group)["logStreams"][0]
    assert s["firstEventTimestamp"] == min(e["timestamp"] for e in got)
    assert s["lastEventTimestamp"] == max(e["timestamp"] for e in got)


def test_deleted_group_leaves_nothing_behind(logs):
    group, stream = make_stream(logs)
    put(logs, group, stream, ["before delete"])
    logs.delete_log_group(logGroupName=group)
    logs.create_log_group(logGroupName=group)
    assert logs.describe_log_streams(logGroupName=group)["logStreams"] == []
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    assert logs.get_log_events(logGroupName=group, logStreamName=stream)["events"] == []
    assert logs.filter_log_events(logGroupName=group)["events"] == []


def test_events_survive_sigkill(tmp_path):
    from stevedore_harness import Server

    srv = Server(tmp_path / "data", name="logs-crash").start()
    try:
        client = srv.logs(srv.admin_keys())
        group, stream = make_stream(client)
        client.put_retention_policy(logGroupName=group, retentionInDays=30)
        put(client, group, stream, ["acknowledged 1", "acknowledged 2"])
        srv.kill9()
        srv.start()
        client = srv.logs(srv.admin_keys())
        got = client.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
        assert [e["message"] for e in got["events"]] == ["acknowledged 1", "acknowledged 2"]
        assert client.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"] == 30
    finally:
        srv.stop()
