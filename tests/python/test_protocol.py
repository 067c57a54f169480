"""The awsJson1_1 wire protocol: framing, headers, errors, timestamps."""

from __future__ import annotations

import json
import re

import pytest

from stevedore_harness import (
    JSON_CONTENT_TYPE,
    container,
    expect_error,
    raw_call,
    uniq,
)


def assert_json_error(resp, error_type: str, status: int = 400):
    assert resp.status == status, f"expected HTTP {status}, got {resp.status}: {resp.body[:500]!r}"
    doc = resp.json()
    assert isinstance(doc, dict), doc
    assert resp.error_type == error_type, doc
    assert isinstance(doc.get("message"), str) and doc["message"], f"error without a message: {doc}"
    return doc


def test_success_response_framing(server, admin_keys):
    resp = raw_call(server.endpoint, "ListClusters", {}, keys=admin_keys)
    assert resp.status == 200, resp.body
    assert resp.header("Content-Type").split(";")[0].strip() == JSON_CONTENT_TYPE
    request_id = resp.header("x-amzn-RequestId")
    assert request_id, dict(resp.headers)
    doc = resp.json()
    assert isinstance(doc, dict)
    assert isinstance(doc["clusterArns"], list)


def test_request_ids_are_unique(server, admin_keys):
    ids = {raw_call(server.endpoint, "ListClusters", {}, keys=admin_keys).header("x-amzn-RequestId") for _ in range(5)}
    assert None not in ids
    assert len(ids) == 5


def test_error_response_framing(server, admin_keys):
    resp = raw_call(server.endpoint, "DescribeTaskDefinition", {"taskDefinition": uniq("nope") + ":1"}, keys=admin_keys)
    assert 400 <= resp.status < 500
    assert resp.header("Content-Type").split(";")[0].strip() == JSON_CONTENT_TYPE
    assert resp.header("x-amzn-RequestId")
    doc = resp.json()
    assert doc["__type"].split("#")[-1] == "ClientException"
    assert doc["message"]


def test_unknown_operation(server, admin_keys):
    resp = raw_call(server.endpoint, "FrobnicateClusters", {}, keys=admin_keys)
    assert_json_error(resp, "UnknownOperationException")


def test_unknown_target_prefix(server, admin_keys):
    resp = raw_call(server.endpoint, None, {}, keys=admin_keys, target="AmazonSomethingElse.ListClusters")
    assert_json_error(resp, "UnknownOperationException")


def test_garbage_body_is_serialization_exception(server, admin_keys):
    resp = raw_call(server.endpoint, "CreateCluster", b'{"clusterName": "x",,, nope', keys=admin_keys)
    assert_json_error(resp, "SerializationException")


def test_non_object_body_is_serialization_exception(server, admin_keys):
    resp = raw_call(server.endpoint, "ListClusters", b"[1, 2, 3]", keys=admin_keys)
    assert_json_error(resp, "SerializationException")


# Operations that later issues implement. When one of them lands, move it out of this list.
LATER_OPERATIONS = {
    "ExecuteCommand": {"task": "t", "command": "sh", "interactive": True},
    "CreateTaskSet": {"service": "web", "cluster": "default", "taskDefinition": "web:1"},
    "CreateCapacityProvider": {"name": "cp", "autoScalingGroupProvider": {"autoScalingGroupArn": "arn:x"}},
}


@pytest.mark.parametrize("operation", sorted(LATER_OPERATIONS))
def test_later_operations_are_unsupported_not_faked(server, admin_keys, operation):
    resp = raw_call(server.endpoint, operation, LATER_OPERATIONS[operation], keys=admin_keys)
    assert_json_error(resp, "UnsupportedFeatureException")


def test_unsupported_operation_through_boto3(ecs):
    expect_error(ecs.describe_capacity_providers, "UnsupportedFeatureException")


def test_timestamps_are_json_numbers(server, admin_keys):
    family = uniq("ts")
    body = {"family": family, "containerDefinitions": [container()]}
    resp = raw_call(server.endpoint, "RegisterTaskDefinition", body, keys=admin_keys)
    assert resp.status == 200, resp.body
    td = resp.json()["taskDefinition"]
    registered_at = td["registeredAt"]
    assert isinstance(registered_at, (int, float)) and not isinstance(registered_at, bool), registered_at
    assert 1.6e9 < registered_at < 4.1e9, f"registeredAt should be epoch seconds: {registered_at}"
    # Make sure it is a bare number in the body text, not a quoted string.
    assert re.search(rb'"registeredAt"\s*:\s*[0-9]', resp.body), resp.body[:500]

    dereg = raw_call(
        server.endpoint, "DeregisterTaskDefinition", {"taskDefinition": f"{family}:1"}, keys=admin_keys
    )
    assert dereg.status == 200, dereg.body
    deregistered_at = dereg.json()["taskDefinition"]["deregisteredAt"]
    assert isinstance(deregistered_at, (int, float)) and not isinstance(deregistered_at, bool)
    assert deregistered_at >= registered_at - 1


def test_missing_required_member_is_invalid_parameter(server, admin_keys):
    resp = raw_call(server.endpoint, "DescribeTaskDefinition", {}, keys=admin_keys)
    doc = assert_json_error(resp, "InvalidParameterException")
    assert "taskDefinition" in doc["message"]


def test_missing_required_member_via_boto3(ecs_raw):
    expect_error(
        ecs_raw.register_task_definition,
        "InvalidParameterException",
        contains=["family"],
        containerDefinitions=[container()],
    )


def test_invalid_enum_value_is_invalid_parameter(server, admin_keys):
    resp = raw_call(server.endpoint, "ListTaskDefinitions", {"status": "SLEEPING"}, keys=admin_keys)
    doc = assert_json_error(resp, "InvalidParameterException")
    assert "status" in doc["message"] or "SLEEPING" in doc["message"]


def test_invalid_enum_in_nested_member(ecs_raw):
    expect_error(
        ecs_raw.register_task_definition,
        "InvalidParameterException",
        contains_any=["networkMode", "bogus"],
        family=uniq("enum"),
        networkMode="bogus",
        containerDefinitions=[container()],
    )


def test_out_of_range_per_model_is_invalid_parameter(ecs_raw, ecs):
    name = uniq("range")
    ecs.create_cluster(clusterName=name)
    # CapacityProviderStrategyItemWeight is 0..1000 in the model.
    expect_error(
        ecs_raw.put_cluster_capacity_providers,
        "InvalidParameterException",
        contains=["weight"],
        cluster=name,
        capacityProviders=["FARGATE"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1001}],
    )


def test_empty_body_treated_as_empty_object_or_rejected_cleanly(server, admin_keys):
    # botocore always sends "{}"; an empty body must not crash the server.
    resp = raw_call(server.endpoint, "ListClusters", b"", keys=admin_keys)
    assert resp.status in (200, 400), resp.status
    if resp.status == 400:
        assert resp.error_type == "SerializationException"
    else:
        assert "clusterArns" in resp.json()


def test_server_json_describes_the_running_server(server):
    info = json.loads((server.data_dir / "server.json").read_text())
    assert info["endpoint"].startswith("http://127.0.0.1:")
    assert info["region"] == "us-east-1"
    assert info["pid"] == server.proc.pid
