"""TagResource / UntagResource / ListTagsForResource on clusters and task definitions."""

from __future__ import annotations

import pytest

from stevedore_harness import cluster_arn, container, expect_error, tag_map, uniq


def new_cluster(ecs, tags=None):
    kw = {"clusterName": uniq("tags")}
    if tags:
        kw["tags"] = tags
    return ecs.create_cluster(**kw)["cluster"]["clusterArn"]


def new_task_definition(ecs, tags=None):
    kw = {"family": uniq("tagtd"), "containerDefinitions": [container()]}
    if tags:
        kw["tags"] = tags
    return ecs.register_task_definition(**kw)["taskDefinition"]["taskDefinitionArn"]


def tags_of(ecs, arn):
    return tag_map(ecs.list_tags_for_resource(resourceArn=arn)["tags"])


@pytest.mark.parametrize("kind", ["cluster", "task-definition"])
def test_tag_list_untag(ecs, kind):
    make = new_cluster if kind == "cluster" else new_task_definition
    arn = make(ecs, tags=[{"key": "a", "value": "1"}])
    assert tags_of(ecs, arn) == {"a": "1"}

    ecs.tag_resource(resourceArn=arn, tags=[{"key": "b", "value": "2"}, {"key": "a", "value": "changed"}])
    assert tags_of(ecs, arn) == {"a": "changed", "b": "2"}

    ecs.untag_resource(resourceArn=arn, tagKeys=["a", "not-there"])
    assert tags_of(ecs, arn) == {"b": "2"}


def test_cluster_tags_show_in_describe(ecs):
    arn = new_cluster(ecs)
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "owner", "value": "ops"}])
    c = ecs.describe_clusters(clusters=[arn], include=["TAGS"])["clusters"][0]
    assert tag_map(c["tags"]) == {"owner": "ops"}


def test_task_definition_tags_show_in_describe(ecs):
    arn = new_task_definition(ecs)
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "owner", "value": "web"}, {"key": "empty", "value": ""}])
    out = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    assert tag_map(out["tags"]) == {"owner": "web", "empty": ""}


def test_fifty_tags_allowed(ecs):
    tags = [{"key": f"k{i}", "value": f"v{i}"} for i in range(50)]
    arn = new_cluster(ecs, tags=tags)
    assert len(tags_of(ecs, arn)) == 50


def test_more_than_fifty_tags_in_one_call(ecs_raw):
    arn = new_cluster(ecs_raw)
    tags = [{"key": f"k{i}", "value": "v"} for i in range(51)]
    expect_error(
        ecs_raw.tag_resource, "InvalidParameterException", contains_any=["tag", "50"], resourceArn=arn, tags=tags
    )
    assert tags_of(ecs_raw, arn) == {}


def test_more_than_fifty_tags_on_create(ecs_raw):
    name = uniq("toomany")
    tags = [{"key": f"k{i}", "value": "v"} for i in range(51)]
    expect_error(
        ecs_raw.create_cluster, "InvalidParameterException", contains_any=["tag", "50"], clusterName=name, tags=tags
    )
    assert ecs_raw.describe_clusters(clusters=[name])["clusters"] == []


def test_more_than_fifty_tags_in_total(ecs):
    arn = new_cluster(ecs, tags=[{"key": f"old{i}", "value": "v"} for i in range(45)])
    expect_error(
        ecs.tag_resource,
        ("InvalidParameterException", "LimitExceededException"),
        contains_any=["tag", "50"],
        resourceArn=arn,
        tags=[{"key": f"new{i}", "value": "v"} for i in range(10)],
    )
    assert len(tags_of(ecs, arn)) == 45
    # Overwriting existing keys does not count against the limit.
    ecs.tag_resource(resourceArn=arn, tags=[{"key": f"old{i}", "value": "w"} for i in range(45)])
    assert set(tags_of(ecs, arn).values()) == {"w"}


@pytest.mark.parametrize("key", ["aws:owner", "AWS:Owner"])
def test_aws_prefix_is_reserved(ecs, key):
    arn = new_cluster(ecs)
    expect_error(
        ecs.tag_resource, "InvalidParameterException", contains_any=["aws:", "reserved", "prefix"], resourceArn=arn,
        tags=[{"key": key, "value": "x"}],
    )
    assert tags_of(ecs, arn) == {}


def test_aws_prefix_is_reserved_on_register(ecs):
    family = uniq("awstag")
    expect_error(
        ecs.register_task_definition,
        "InvalidParameterException",
        contains_any=["aws:", "reserved", "prefix"],
        family=family,
        containerDefinitions=[container()],
        tags=[{"key": "aws:cloudformation:stack", "value": "x"}],
    )
    assert ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == []


def test_tag_key_and_value_lengths(ecs_raw):
    arn = new_cluster(ecs_raw)
    ecs_raw.tag_resource(resourceArn=arn, tags=[{"key": "k" * 128, "value": "v" * 256}])
    expect_error(
        ecs_raw.tag_resource, "InvalidParameterException", contains_any=["key", "128"], resourceArn=arn,
        tags=[{"key": "k" * 129, "value": "v"}],
    )
    expect_error(
        ecs_raw.tag_resource, "InvalidParameterException", contains_any=["value", "256"], resourceArn=arn,
        tags=[{"key": "k", "value": "v" * 257}],
    )
    expect_error(
        ecs_raw.tag_resource, "InvalidParameterException", contains_any=["key", "length"], resourceArn=arn,
        tags=[{"key": "", "value": "v"}],
    )
    assert tags_of(ecs_raw, arn) == {"k" * 128: "v" * 256}


def test_tag_unknown_resource(ecs):
    expect_error(
        ecs.tag_resource,
        ("ResourceNotFoundException", "ClusterNotFoundException", "InvalidParameterException"),
        resourceArn=cluster_arn(uniq("nobody")),
        tags=[{"key": "a", "value": "b"}],
    )


def test_list_tags_malformed_arn(ecs):
    expect_error(
        ecs.list_tags_for_resource,
        ("InvalidParameterException", "ClientException"),
        resourceArn="not-an-arn",
    )
