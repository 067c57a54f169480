"""Task definitions: register/describe/list/deregister/delete and pagination."""

from __future__ import annotations

import copy
import datetime
import threading
import time

import pytest

from stevedore_harness import DEFAULT_ACCOUNT, assert_subset, container, expect_error, tag_map, td_arn, uniq


def register(ecs, family, **kw):
    kw.setdefault("containerDefinitions", [container()])
    return ecs.register_task_definition(family=family, **kw)["taskDefinition"]


def big_definition(family: str) -> dict:
    """A realistic EC2/bridge definition that uses most of the schema."""
    return {
        "family": family,
        "taskRoleArn": "arn:aws:iam::000000000000:role/web-task",
        "executionRoleArn": "arn:aws:iam::000000000000:role/ecsTaskExecutionRole",
        "networkMode": "bridge",
        "requiresCompatibilities": ["EC2"],
        "cpu": "1024",
        "memory": "2048",
        "pidMode": "task",
        "ipcMode": "task",
        "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}],
        "volumes": [
            {"name": "data", "host": {"sourcePath": "/srv/data"}},
            {
                "name": "scratch",
                "dockerVolumeConfiguration": {
                    "scope": "task",
                    "driver": "local",
                    "driverOpts": {"type": "tmpfs", "device": "tmpfs"},
                    "labels": {"purpose": "scratch"},
                },
            },
            {
                "name": "shared",
                "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": True, "driver": "local"},
            },
        ],
        "containerDefinitions": [
            {
                "name": "web",
                "image": "public.ecr.aws/docker/library/nginx:1.27",
                "cpu": 512,
                "memory": 1024,
                "memoryReservation": 512,
                "essential": True,
                "portMappings": [
                    {"containerPort": 80, "hostPort": 8080, "protocol": "tcp", "name": "http", "appProtocol": "http"},
                    {"containerPort": 8125, "hostPort": 0, "protocol": "udp"},
                ],
                "links": ["sidecar:side"],
                "entryPoint": ["/docker-entrypoint.sh"],
                "command": ["nginx", "-g", "daemon off;"],
                "environment": [{"name": "MODE", "value": "production"}, {"name": "WORKERS", "value": "4"}],
                "secrets": [
                    {
                        "name": "DB_PASSWORD",
                        "valueFrom": "arn:aws:ssm:us-east-1:000000000000:parameter/db/password",
                    }
                ],
                "mountPoints": [
                    {"sourceVolume": "data", "containerPath": "/usr/share/nginx/html", "readOnly": True},
                    {"sourceVolume": "scratch", "containerPath": "/tmp/scratch", "readOnly": False},
                ],
                "volumesFrom": [{"sourceContainer": "sidecar", "readOnly": True}],
                "linuxParameters": {
                    "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
                    "devices": [
                        {"hostPath": "/dev/fuse", "containerPath": "/dev/fuse", "permissions": ["read", "write"]}
                    ],
                    "initProcessEnabled": True,
                    "sharedMemorySize": 64,
                    "tmpfs": [{"containerPath": "/run", "size": 32, "mountOptions": ["rw", "noexec"]}],
                    "maxSwap": 0,
                    "swappiness": 10,
                },
                "dependsOn": [{"containerName": "sidecar", "condition": "HEALTHY"}],
                "startTimeout": 60,
                "stopTimeout": 30,
                "hostname": "web",
                "user": "nginx",
                "workingDirectory": "/usr/share/nginx",
                "disableNetworking": False,
                "privileged": False,
                "readonlyRootFilesystem": False,
                "dnsServers": ["10.0.0.2"],
                "dnsSearchDomains": ["svc.local"],
                "extraHosts": [{"hostname": "db.local", "ipAddress": "10.0.0.10"}],
                "dockerSecurityOptions": ["no-new-privileges"],
                "interactive": False,
                "pseudoTerminal": False,
                "dockerLabels": {"com.example.team": "web", "com.example.tier": "frontend"},
                "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": "/ecs/web",
                        "awslogs-region": "us-east-1",
                        "awslogs-stream-prefix": "web",
                    },
                },
                "healthCheck": {
                    "command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
                    "interval": 30,
                    "timeout": 5,
                    "retries": 3,
                    "startPeriod": 10,
                },
                "systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}],
                "restartPolicy": {"enabled": True, "ignoredExitCodes": [0, 3], "restartAttemptPeriod": 120},
                "versionConsistency": "disabled",
            },
            {
                "name": "sidecar",
                "image": "public.ecr.aws/docker/library/busybox:1.36",
                "memory": 64,
                "essential": False,
                "command": ["sh", "-c", "sleep 3600"],
                "healthCheck": {"command": ["CMD", "true"], "interval": 10, "timeout": 2, "retries": 2},
                "mountPoints": [{"sourceVolume": "shared", "containerPath": "/shared"}],
                "environment": [],
            },
        ],
        "tags": [{"key": "app", "value": "web"}, {"key": "cost-center", "value": "1234"}],
    }


def assert_recent(ts):
    assert isinstance(ts, datetime.datetime), ts
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - ts).total_seconds()) < 300, f"{ts} is not now ({now})"


# ---- register ------------------------------------------------------------------


def test_register_counts_revisions_per_family(ecs):
    fam_a, fam_b = uniq("rev-a"), uniq("rev-b")
    a1 = register(ecs, fam_a)
    b1 = register(ecs, fam_b)
    a2 = register(ecs, fam_a)
    a3 = register(ecs, fam_a)
    b2 = register(ecs, fam_b)
    assert [a1["revision"], a2["revision"], a3["revision"]] == [1, 2, 3]
    assert [b1["revision"], b2["revision"]] == [1, 2]
    assert a3["taskDefinitionArn"] == td_arn(fam_a, 3)
    assert b2["taskDefinitionArn"] == td_arn(fam_b, 2)
    assert a3["family"] == fam_a


def test_register_computed_fields(ecs):
    td = register(ecs, uniq("computed"))
    assert td["status"] == "ACTIVE"
    assert_recent(td["registeredAt"])
    assert isinstance(td["registeredBy"], str) and DEFAULT_ACCOUNT in td["registeredBy"], td.get("registeredBy")
    assert "EC2" in td["compatibilities"]
    assert "FARGATE" not in td["compatibilities"], "bridge mode without cpu/memory is not Fargate-compatible"
    assert not td.get("deregisteredAt")


def test_register_fargate_definition(ecs):
    td = register(
        ecs,
        uniq("fargate"),
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[container(memory=None, portMappings=[{"containerPort": 80, "protocol": "tcp"}])],
    )
    assert td["requiresCompatibilities"] == ["FARGATE"]
    assert "FARGATE" in td["compatibilities"]
    assert "EC2" in td["compatibilities"]
    assert (td["cpu"], td["memory"]) == ("256", "512")
    assert td["networkMode"] == "awsvpc"
    pm = td["containerDefinitions"][0]["portMappings"][0]
    assert pm["containerPort"] == 80
    assert pm.get("hostPort", 80) == 80, "awsvpc host ports equal container ports"


def test_requires_attributes_for_awslogs(ecs):
    td = register(
        ecs,
        uniq("awslogs"),
        containerDefinitions=[
            container(
                logConfiguration={
                    "logDriver": "awslogs",
                    "options": {"awslogs-group": "/ecs/x", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "x"},
                },
                dockerLabels={"a": "b"},
            )
        ],
    )
    names = {a["name"] for a in td["requiresAttributes"]}
    assert "com.amazonaws.ecs.capability.logging-driver.awslogs" in names, names
    for a in td["requiresAttributes"]:
        assert isinstance(a["name"], str) and a["name"]


def test_big_definition_round_trips(ecs):
    family = uniq("big")
    given = big_definition(family)
    request = copy.deepcopy(given)
    out = ecs.register_task_definition(**request)
    td = out["taskDefinition"]
    assert tag_map(out.get("tags")) == tag_map(given["tags"])
    described = ecs.describe_task_definition(taskDefinition=td["taskDefinitionArn"], include=["TAGS"])
    for source, got in (("register", td), ("describe", described["taskDefinition"])):
        for key, value in given.items():
            if key == "tags":
                continue
            assert key in got, f"{source}: {key} missing"
            assert_subset(value, got[key], f"{source}.{key}")
    assert tag_map(described["tags"]) == tag_map(given["tags"])
    assert described["taskDefinition"] == td, "describe must return exactly what register returned"


def test_register_accepts_vcpu_and_gb_units(ecs):
    td = register(
        ecs,
        uniq("units"),
        requiresCompatibilities=["EC2"],
        cpu="1 vCPU",
        memory="2 GB",
        containerDefinitions=[container(memory=256)],
    )
    assert (td["cpu"], td["memory"]) == ("1024", "2048")


# ---- describe ------------------------------------------------------------------


def test_describe_by_family_revision_and_arn(ecs):
    family = uniq("desc")
    register(ecs, family, tags=[{"key": "k", "value": "v"}])
    second = register(ecs, family, tags=[{"key": "k", "value": "v2"}])
    arn = second["taskDefinitionArn"]
    by_family = ecs.describe_task_definition(taskDefinition=family)
    by_rev = ecs.describe_task_definition(taskDefinition=f"{family}:2")
    by_arn = ecs.describe_task_definition(taskDefinition=arn)
    for out in (by_family, by_rev, by_arn):
        assert out["taskDefinition"]["taskDefinitionArn"] == arn
        assert not out.get("tags"), "tags only with include=TAGS"
    first = ecs.describe_task_definition(taskDefinition=f"{family}:1", include=["TAGS"])
    assert first["taskDefinition"]["revision"] == 1
    assert tag_map(first["tags"]) == {"k": "v"}
    assert tag_map(ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])["tags"]) == {"k": "v2"}


def test_describe_unknown_task_definition(ecs):
    family = uniq("unknown")
    expect_error(ecs.describe_task_definition, "ClientException", taskDefinition=family)
    register(ecs, family)
    expect_error(ecs.describe_task_definition, "ClientException", taskDefinition=f"{family}:2")
    expect_error(ecs.describe_task_definition, "ClientException", taskDefinition=td_arn(family, 7))


# ---- deregister / delete -----------------------------------------------------------


def test_deregister_then_family_resolves_to_latest_active(ecs):
    family = uniq("dereg")
    for _ in range(3):
        register(ecs, family)
    out = ecs.deregister_task_definition(taskDefinition=f"{family}:3")["taskDefinition"]
    assert out["status"] == "INACTIVE"
    assert out["revision"] == 3
    assert_recent(out["deregisteredAt"])
    latest = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    assert latest["revision"] == 2 and latest["status"] == "ACTIVE"
    # An INACTIVE revision can still be described explicitly.
    assert ecs.describe_task_definition(taskDefinition=f"{family}:3")["taskDefinition"]["status"] == "INACTIVE"
    # A new registration still gets the next number, never reusing 3.
    assert register(ecs, family)["revision"] == 4

    for rev in (1, 2, 4):
        ecs.deregister_task_definition(taskDefinition=td_arn(family, rev))
    expect_error(ecs.describe_task_definition, "ClientException", taskDefinition=family)


def test_delete_task_definitions_only_inactive(ecs):
    family = uniq("delete")
    active = register(ecs, family)["taskDefinitionArn"]
    inactive = register(ecs, family)["taskDefinitionArn"]
    ecs.deregister_task_definition(taskDefinition=inactive)
    out = ecs.delete_task_definitions(taskDefinitions=[active, inactive])
    assert [(t["taskDefinitionArn"], t["status"]) for t in out["taskDefinitions"]] == [
        (inactive, "DELETE_IN_PROGRESS")
    ]
    assert [f["arn"] for f in out["failures"]] == [active]
    assert out["failures"][0].get("reason")
    # The ACTIVE one is untouched.
    assert ecs.describe_task_definition(taskDefinition=active)["taskDefinition"]["status"] == "ACTIVE"
    assert inactive not in ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")["taskDefinitionArns"]
    assert inactive not in ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]


def test_delete_unknown_task_definition_is_a_failure(ecs):
    arn = td_arn(uniq("nothere"), 1)
    out = ecs.delete_task_definitions(taskDefinitions=[arn])
    assert out.get("taskDefinitions", []) == []
    assert [f["arn"] for f in out["failures"]] == [arn]


# ---- list ------------------------------------------------------------------------


def test_list_task_definitions_filters_and_sort(ecs):
    family = uniq("list")
    arns = [register(ecs, family)["taskDefinitionArn"] for _ in range(4)]
    ecs.deregister_task_definition(taskDefinition=arns[1])
    active = [arns[0], arns[2], arns[3]]

    assert ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == active
    assert ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"] == active
    assert ecs.list_task_definitions(familyPrefix=family, sort="ASC")["taskDefinitionArns"] == active
    assert ecs.list_task_definitions(familyPrefix=family, sort="DESC")["taskDefinitionArns"] == active[::-1]
    assert ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")["taskDefinitionArns"] == [arns[1]]


def test_deregister_needs_a_revision(ecs):
    family = uniq("norev")
    register(ecs, family)
    err = expect_error(ecs.deregister_task_definition, "ClientException", taskDefinition=family)
    assert err["Message"] == "Revision is missing.", err
    assert ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]["status"] == "ACTIVE"


def test_list_task_definitions_family_prefix_is_the_whole_family(ecs):
    # Unlike ListTaskDefinitionFamilies, ECS matches familyPrefix here as the full family name.
    family = uniq("whole")
    own = register(ecs, family)["taskDefinitionArn"]
    register(ecs, f"{family}x")
    assert ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == [own]
    assert ecs.list_task_definitions(familyPrefix=family[:-1])["taskDefinitionArns"] == []


def test_list_task_definitions_sorts_families_lexicographically(ecs):
    prefix = uniq("lex")
    fam_b, fam_a = f"{prefix}-b", f"{prefix}-a"
    b = [register(ecs, fam_b)["taskDefinitionArn"] for _ in range(2)]
    a = [register(ecs, fam_a)["taskDefinitionArn"] for _ in range(2)]

    def listed(sort):
        return [
            arn
            for page in ecs.get_paginator("list_task_definitions").paginate(sort=sort)
            for arn in page["taskDefinitionArns"]
            if f"/{prefix}-" in arn
        ]

    assert listed("ASC") == a + b
    assert listed("DESC") == b[::-1] + a[::-1]


def test_list_task_definitions_paginator(ecs):
    family = uniq("tdpage")
    arns = [register(ecs, family)["taskDefinitionArn"] for _ in range(5)]
    pages = list(
        ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, PaginationConfig={"PageSize": 2})
    )
    assert [len(p["taskDefinitionArns"]) for p in pages] == [2, 2, 1]
    assert [a for p in pages for a in p["taskDefinitionArns"]] == arns


def test_list_task_definition_families(ecs):
    prefix = uniq("fams")
    live, dead = f"{prefix}-live", f"{prefix}-dead"
    register(ecs, live)
    register(ecs, live)
    ecs.deregister_task_definition(taskDefinition=f"{live}:1")
    register(ecs, dead)
    ecs.deregister_task_definition(taskDefinition=f"{dead}:1")

    def families(**kw):
        return ecs.list_task_definition_families(familyPrefix=prefix, **kw)["families"]

    assert families() == sorted([live, dead]), "default lists ACTIVE and INACTIVE families"
    assert families(status="ALL") == sorted([live, dead])
    assert families(status="ACTIVE") == [live]
    assert families(status="INACTIVE") == [dead]
    # familyPrefix is a real prefix here.
    assert ecs.list_task_definition_families(familyPrefix=live[:-2])["families"] == [live]


def test_list_task_definition_families_paginator(ecs):
    prefix = uniq("fampage")
    fams = sorted(f"{prefix}-{i}" for i in range(5))
    for f in fams:
        register(ecs, f)
    pages = list(
        ecs.get_paginator("list_task_definition_families").paginate(
            familyPrefix=prefix, PaginationConfig={"PageSize": 2}
        )
    )
    got = [f for p in pages for f in p["families"]]
    assert got == fams
    assert len(pages) == 3


def test_pagination_is_stable_under_concurrent_registrations(server, ecs, admin_keys):
    family = uniq("stable")
    before = [register(ecs, family)["taskDefinitionArn"] for _ in range(12)]
    writer_client = server.client(admin_keys)
    stop = threading.Event()
    written: list[str] = []
    errors: list[BaseException] = []

    def writer():
        try:
            while not stop.is_set() and len(written) < 30:
                written.append(register(writer_client, family)["taskDefinitionArn"])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def wait_for_a_write(after: int) -> None:
        deadline = time.monotonic() + 5
        while len(written) <= after and t.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)

    t = threading.Thread(target=writer, daemon=True)
    seen: list[str] = []
    t.start()
    try:
        token = None
        pages = 0
        while True:
            kw = {"familyPrefix": family, "maxResults": 3}
            if token:
                kw["nextToken"] = token
            count = len(written)
            page = ecs.list_task_definitions(**kw)
            pages += 1
            seen.extend(page["taskDefinitionArns"])
            token = page.get("nextToken")
            if not token:
                break
            assert pages < 200, "pagination does not terminate"
            # Make sure at least one registration lands between every two pages.
            wait_for_a_write(count)
    finally:
        stop.set()
        t.join(timeout=30)
    assert not errors, errors
    print(f"{pages} pages, {len(written)} concurrent registrations")
    assert written, "the writer never registered anything concurrently"
    assert len(seen) == len(set(seen)), f"an ARN was returned twice: {seen}"
    missing = [a for a in before if a not in seen]
    assert not missing, f"ARNs that existed before paging started were skipped: {missing}"
    revisions = [int(a.rsplit(":", 1)[1]) for a in seen]
    assert revisions == sorted(revisions), "ASC order must hold across pages"


@pytest.mark.parametrize("sort", ["DESC"])
def test_pagination_desc_is_stable(ecs, sort):
    family = uniq("stabled")
    arns = [register(ecs, family)["taskDefinitionArn"] for _ in range(7)]
    seen = []
    token = None
    while True:
        kw = {"familyPrefix": family, "maxResults": 3, "sort": sort}
        if token:
            kw["nextToken"] = token
        page = ecs.list_task_definitions(**kw)
        seen.extend(page["taskDefinitionArns"])
        token = page.get("nextToken")
        if len(seen) == 3:
            # A write between pages must not shift the remaining pages.
            register(ecs, family)
        if not token:
            break
    assert len(seen) == len(set(seen))
    assert set(arns) <= set(seen)
    revs = [int(a.rsplit(":", 1)[1]) for a in seen]
    assert revs == sorted(revs, reverse=True)


def test_register_without_tags_omits_the_member(ecs):
    # ECS leaves `tags` out of RegisterTaskDefinition's answer when none were
    # given; DescribeTaskDefinition with include=TAGS answers an empty list.
    family = uniq("notags")
    out = ecs.register_task_definition(family=family, containerDefinitions=[container(memory=64)])
    assert "tags" not in out, out.keys()
    described = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    assert described["tags"] == []
