"""RegisterTaskDefinition validation, with ECS's error types and messages that
name the offending field or value.

Semantic problems are ClientException (as real ECS does); problems with the
shape itself (missing required member, bad enum) are InvalidParameterException.
"""

from __future__ import annotations

import re

import pytest

from stevedore_harness import container, expect_error, uniq


def rejected(ecs, *, code="ClientException", contains=(), contains_any=(), family=None, **kwargs):
    family = family or uniq("bad")
    err = expect_error(
        ecs.register_task_definition, code, contains=contains, contains_any=contains_any, family=family, **kwargs
    )
    if re.fullmatch(r"[A-Za-z0-9_-]{1,255}", family):
        arns = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]
        assert arns == [], f"a rejected definition was stored: {arns}"
    return err


def accepted(ecs, **kwargs):
    kwargs.setdefault("family", uniq("ok"))
    return ecs.register_task_definition(**kwargs)["taskDefinition"]


# ---- family --------------------------------------------------------------------


@pytest.mark.parametrize("family", ["has space", "dots.not.allowed", "slash/no", "colon:1"])
def test_family_characters(ecs, family):
    rejected(ecs, family=family, contains=["family"], containerDefinitions=[container()])


def test_family_length(ecs):
    ok = "f" * 244 + uniq("x")[-11:]
    assert len(ok) == 255
    assert accepted(ecs, family=ok, containerDefinitions=[container()])["family"] == ok
    rejected(ecs, family="g" * 256, contains=["family"], containerDefinitions=[container()])


def test_family_empty(ecs_raw):
    expect_error(
        ecs_raw.register_task_definition,
        ("ClientException", "InvalidParameterException"),
        contains=["family"],
        family="",
        containerDefinitions=[container()],
    )


# ---- containers ----------------------------------------------------------------


def test_no_containers(ecs):
    rejected(ecs, contains=["container"], containerDefinitions=[])


def test_too_many_containers(ecs):
    ten = [container(f"c{i}", memory=32) for i in range(10)]
    assert len(accepted(ecs, containerDefinitions=ten)["containerDefinitions"]) == 10
    eleven = [container(f"c{i}", memory=32) for i in range(11)]
    rejected(ecs, contains=["container"], containerDefinitions=eleven)


def test_duplicate_container_names(ecs):
    rejected(
        ecs,
        contains=["twin"],
        containerDefinitions=[container("twin"), container("other"), container("twin", essential=False)],
    )


def test_container_without_name_or_image(ecs):
    rejected(ecs, contains=["name"], containerDefinitions=[{"image": "busybox", "memory": 64}])
    rejected(ecs, contains=["image"], containerDefinitions=[{"name": "noimage", "memory": 64}])


def test_no_essential_container(ecs):
    rejected(
        ecs,
        contains=["essential"],
        containerDefinitions=[container("a", essential=False), container("b", essential=False)],
    )


def test_essential_defaults_to_true(ecs):
    c = container("solo")
    del c["essential"]
    td = accepted(ecs, containerDefinitions=[c])
    assert td["containerDefinitions"][0].get("essential", True) is True


# ---- dependsOn / links -------------------------------------------------------------


def test_depends_on_missing_container(ecs):
    rejected(
        ecs,
        contains=["ghost"],
        containerDefinitions=[container("app", dependsOn=[{"containerName": "ghost", "condition": "START"}])],
    )


def test_depends_on_cycle(ecs):
    rejected(
        ecs,
        contains_any=["cycl", "circular", "depend"],
        containerDefinitions=[
            container("a", dependsOn=[{"containerName": "b", "condition": "START"}]),
            container("b", essential=False, dependsOn=[{"containerName": "c", "condition": "START"}]),
            container("c", essential=False, dependsOn=[{"containerName": "a", "condition": "START"}]),
        ],
    )


def test_depends_on_self(ecs):
    rejected(
        ecs,
        contains_any=["cycl", "circular", "depend", "itself"],
        containerDefinitions=[container("me", dependsOn=[{"containerName": "me", "condition": "START"}])],
    )


def test_depends_on_dag_is_fine(ecs):
    td = accepted(
        ecs,
        containerDefinitions=[
            container(
                "app",
                dependsOn=[
                    {"containerName": "init", "condition": "START"},
                    {"containerName": "proxy", "condition": "START"},
                ],
            ),
            container("proxy", essential=False, dependsOn=[{"containerName": "init", "condition": "SUCCESS"}]),
            container("init", essential=False),
        ],
    )
    assert [c["name"] for c in td["containerDefinitions"]] == ["app", "proxy", "init"]


def test_links_to_missing_container(ecs):
    rejected(
        ecs,
        contains=["database"],
        networkMode="bridge",
        containerDefinitions=[container("web", links=["database:db"]), container("cache", essential=False)],
    )


def test_links_to_existing_container(ecs):
    td = accepted(
        ecs,
        networkMode="bridge",
        containerDefinitions=[container("web", links=["cache:redis"]), container("cache", essential=False)],
    )
    assert td["containerDefinitions"][0]["links"] == ["cache:redis"]


# ---- ports ---------------------------------------------------------------------


def test_container_port_out_of_range(ecs):
    rejected(
        ecs,
        contains_any=["70000", "containerPort", "port"],
        containerDefinitions=[container(portMappings=[{"containerPort": 70000, "protocol": "tcp"}])],
    )


def test_host_port_out_of_range(ecs):
    rejected(
        ecs,
        contains_any=["70000", "hostPort", "port"],
        networkMode="bridge",
        containerDefinitions=[container(portMappings=[{"containerPort": 80, "hostPort": 70000, "protocol": "tcp"}])],
    )


def test_duplicate_port_mappings(ecs):
    rejected(
        ecs,
        contains_any=["8080", "port"],
        networkMode="bridge",
        containerDefinitions=[
            container(
                portMappings=[
                    {"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"},
                    {"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"},
                ]
            )
        ],
    )


@pytest.mark.parametrize("mode", ["awsvpc", "host"])
def test_host_port_must_equal_container_port(ecs, mode):
    err = rejected(
        ecs,
        networkMode=mode,
        containerDefinitions=[container(portMappings=[{"containerPort": 80, "hostPort": 8080, "protocol": "tcp"}])],
    )
    msg = err["Message"].lower()
    assert re.search(r"host\s*port", msg) or mode in msg, f"message should name hostPort/{mode}: {err['Message']!r}"


@pytest.mark.parametrize("mode", ["awsvpc", "host"])
def test_host_port_equal_to_container_port_is_fine(ecs, mode):
    td = accepted(
        ecs,
        networkMode=mode,
        containerDefinitions=[container(portMappings=[{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}])],
    )
    assert td["containerDefinitions"][0]["portMappings"][0]["hostPort"] == 80


# ---- Fargate and resources -------------------------------------------------------


def test_fargate_invalid_cpu_memory_pair(ecs):
    rejected(
        ecs,
        contains=["256", "4096"],
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="4096",
        containerDefinitions=[container(memory=None)],
    )


@pytest.mark.parametrize("cpu,memory", [("256", "512"), ("512", "4096"), ("1024", "8192"), ("4096", "30720")])
def test_fargate_valid_pairs(ecs, cpu, memory):
    td = accepted(
        ecs,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu=cpu,
        memory=memory,
        containerDefinitions=[container(memory=None)],
    )
    assert (td["cpu"], td["memory"]) == (cpu, memory)


@pytest.mark.parametrize("mode", ["bridge", "host"])
def test_fargate_requires_awsvpc(ecs, mode):
    rejected(
        ecs,
        contains_any=["awsvpc", "networkMode", "network mode"],
        networkMode=mode,
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[container(memory=None)],
    )


def test_container_memory_above_task_memory(ecs):
    rejected(
        ecs,
        contains=["memory"],
        cpu="1024",
        memory="512",
        containerDefinitions=[container(memory=1024)],
    )


# ---- size ----------------------------------------------------------------------


def big_env(total_bytes: int) -> list[dict]:
    per = 1000
    return [{"name": f"VAR_{i}", "value": "x" * per} for i in range(total_bytes // (per + 30))]


def test_definition_over_64_kib(ecs):
    rejected(
        ecs,
        contains_any=["65536", "64", "size", "length", "large"],
        containerDefinitions=[container(environment=big_env(70 * 1024))],
    )


def test_definition_under_64_kib_is_fine(ecs):
    env = big_env(48 * 1024)
    td = accepted(ecs, containerDefinitions=[container(environment=env)])
    assert td["containerDefinitions"][0]["environment"] == env


# ---- shape-level problems ----------------------------------------------------------


def test_missing_container_definitions_member(ecs_raw):
    expect_error(
        ecs_raw.register_task_definition,
        "InvalidParameterException",
        contains=["containerDefinitions"],
        family=uniq("shape"),
    )


def test_invalid_protocol_enum(ecs_raw):
    expect_error(
        ecs_raw.register_task_definition,
        "InvalidParameterException",
        contains_any=["protocol", "sctp"],
        family=uniq("shape"),
        containerDefinitions=[container(portMappings=[{"containerPort": 80, "protocol": "sctp"}])],
    )


def test_invalid_depends_on_condition(ecs_raw):
    expect_error(
        ecs_raw.register_task_definition,
        "InvalidParameterException",
        contains_any=["condition", "READY"],
        family=uniq("shape"),
        containerDefinitions=[
            container("a", dependsOn=[{"containerName": "b", "condition": "READY"}]),
            container("b", essential=False),
        ],
    )


def test_missing_required_nested_member(ecs_raw):
    # Ulimit requires name, softLimit and hardLimit.
    expect_error(
        ecs_raw.register_task_definition,
        "InvalidParameterException",
        contains_any=["hardLimit", "ulimit"],
        family=uniq("shape"),
        containerDefinitions=[container(ulimits=[{"name": "nofile", "softLimit": 1024}])],
    )
