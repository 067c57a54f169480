"""Tenancy: every resource belongs to (account, region); accounts never see each other."""

from __future__ import annotations

import random

import pytest
from botocore.exceptions import ClientError

from stevedore_harness import DEFAULT_ACCOUNT, cluster_arn, container, expect_error, tag_map, td_arn, uniq

NOT_VISIBLE = ("ClientException", "AccessDeniedException", "ClusterNotFoundException", "ResourceNotFoundException",
               "InvalidParameterException")


def random_account() -> str:
    return str(random.randint(100000000000, 999999999999))


@pytest.fixture(scope="module")
def two_accounts(server):
    acct_a, acct_b = random_account(), random_account()
    while acct_b == acct_a:
        acct_b = random_account()
    keys_a = server.create_keys(acct_a)
    keys_b = server.create_keys(acct_b)
    assert keys_a.access_key_id != keys_b.access_key_id
    return (acct_a, server.client(keys_a)), (acct_b, server.client(keys_b))


def all_cluster_arns(client):
    return [a for p in client.get_paginator("list_clusters").paginate() for a in p["clusterArns"]]


def all_families(client, prefix):
    return [
        f
        for p in client.get_paginator("list_task_definition_families").paginate(familyPrefix=prefix)
        for f in p["families"]
    ]


def test_keys_create_prints_usable_keys(server):
    acct = random_account()
    keys = server.create_keys(acct)
    client = server.client(keys)
    name = uniq("keyed")
    arn = client.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    assert arn == cluster_arn(name, acct)


def test_same_names_in_two_accounts_are_separate(two_accounts, ecs):
    (acct_a, a), (acct_b, b) = two_accounts
    name = uniq("shared")
    arn_a = a.create_cluster(clusterName=name, tags=[{"key": "owner", "value": "a"}])["cluster"]["clusterArn"]
    arn_b = b.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    assert arn_a == cluster_arn(name, acct_a)
    assert arn_b == cluster_arn(name, acct_b)

    assert arn_a in all_cluster_arns(a) and arn_b not in all_cluster_arns(a)
    assert arn_b in all_cluster_arns(b) and arn_a not in all_cluster_arns(b)
    admin_arns = all_cluster_arns(ecs)
    assert arn_a not in admin_arns and arn_b not in admin_arns

    # Each account resolves the bare name to its own cluster.
    assert [c["clusterArn"] for c in a.describe_clusters(clusters=[name])["clusters"]] == [arn_a]
    assert [c["clusterArn"] for c in b.describe_clusters(clusters=[name])["clusters"]] == [arn_b]


def test_cannot_describe_or_touch_another_accounts_cluster(two_accounts):
    (acct_a, a), (acct_b, b) = two_accounts
    name = uniq("private")
    arn_a = a.create_cluster(clusterName=name, tags=[{"key": "owner", "value": "a"}])["cluster"]["clusterArn"]

    try:
        out = b.describe_clusters(clusters=[arn_a], include=["TAGS"])
    except ClientError as e:
        assert e.response["Error"]["Code"] in NOT_VISIBLE
    else:
        assert out["clusters"] == [], f"account B saw account A's cluster: {out['clusters']}"
        assert [f["arn"] for f in out["failures"]] == [arn_a]

    expect_error(b.delete_cluster, NOT_VISIBLE, cluster=arn_a)
    expect_error(b.tag_resource, NOT_VISIBLE, resourceArn=arn_a, tags=[{"key": "owner", "value": "b"}])
    expect_error(b.list_tags_for_resource, NOT_VISIBLE, resourceArn=arn_a)
    expect_error(
        b.update_cluster_settings,
        NOT_VISIBLE,
        cluster=arn_a,
        settings=[{"name": "containerInsights", "value": "disabled"}],
    )

    c = a.describe_clusters(clusters=[name], include=["TAGS", "SETTINGS"])["clusters"][0]
    assert c["status"] == "ACTIVE"
    assert tag_map(c["tags"]) == {"owner": "a"}


def test_task_definitions_are_per_account(two_accounts, ecs):
    (acct_a, a), (acct_b, b) = two_accounts
    family = uniq("tenant")
    a.register_task_definition(family=family, containerDefinitions=[container(image="a:1")])
    a2 = a.register_task_definition(family=family, containerDefinitions=[container(image="a:2")])["taskDefinition"]
    b1 = b.register_task_definition(family=family, containerDefinitions=[container(image="b:1")])["taskDefinition"]

    assert a2["taskDefinitionArn"] == td_arn(family, 2, acct_a)
    assert b1["taskDefinitionArn"] == td_arn(family, 1, acct_b), "revisions count per account"

    got_b = b.describe_task_definition(taskDefinition=family)["taskDefinition"]
    assert got_b["taskDefinitionArn"] == b1["taskDefinitionArn"]
    assert got_b["containerDefinitions"][0]["image"] == "b:1"

    assert a.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == [
        td_arn(family, 1, acct_a),
        td_arn(family, 2, acct_a),
    ]
    assert b.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == [td_arn(family, 1, acct_b)]
    assert ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == []
    assert all_families(ecs, family) == []

    # B can't read or change A's revisions, not even by full ARN.
    expect_error(b.describe_task_definition, NOT_VISIBLE, taskDefinition=a2["taskDefinitionArn"])
    expect_error(b.describe_task_definition, NOT_VISIBLE, taskDefinition=f"{family}:2")
    expect_error(b.deregister_task_definition, NOT_VISIBLE, taskDefinition=a2["taskDefinitionArn"])
    out = b.delete_task_definitions(taskDefinitions=[a2["taskDefinitionArn"]])
    assert out.get("taskDefinitions", []) == []
    assert [f["arn"] for f in out["failures"]] == [a2["taskDefinitionArn"]]
    assert a.describe_task_definition(taskDefinition=a2["taskDefinitionArn"])["taskDefinition"]["status"] == "ACTIVE"


def test_account_settings_are_per_account(two_accounts):
    (acct_a, a), (acct_b, b) = two_accounts
    a.put_account_setting_default(name="fargateTaskRetirementWaitPeriod", value="14")
    got_a = a.list_account_settings(name="fargateTaskRetirementWaitPeriod", effectiveSettings=True)["settings"]
    assert [s["value"] for s in got_a] == ["14"]
    got_b = b.list_account_settings(name="fargateTaskRetirementWaitPeriod", effectiveSettings=True)["settings"]
    assert all(s["value"] != "14" for s in got_b), got_b
    assert all(acct_a not in s.get("principalArn", "") for s in got_b), got_b


def test_region_comes_from_the_request(server, admin_keys, ecs):
    eu = server.client(admin_keys, region="eu-west-1")
    name = uniq("region")
    arn_eu = eu.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    assert arn_eu == cluster_arn(name, DEFAULT_ACCOUNT, "eu-west-1")

    # us-east-1 does not see the eu-west-1 cluster, by name or in lists.
    out = ecs.describe_clusters(clusters=[name])
    assert out["clusters"] == []
    assert out["failures"][0]["reason"] == "MISSING"
    assert arn_eu not in all_cluster_arns(ecs)

    # ... and eu-west-1 does not see us-east-1's.
    us_name = uniq("useast")
    arn_us = ecs.create_cluster(clusterName=us_name)["cluster"]["clusterArn"]
    assert arn_us == cluster_arn(us_name)
    assert arn_us not in all_cluster_arns(eu)
    assert arn_eu in all_cluster_arns(eu)

    td = eu.register_task_definition(family=name, containerDefinitions=[container()])["taskDefinition"]
    assert td["taskDefinitionArn"] == td_arn(name, 1, DEFAULT_ACCOUNT, "eu-west-1")
    assert ecs.list_task_definitions(familyPrefix=name)["taskDefinitionArns"] == []
    assert eu.list_task_definitions(familyPrefix=name)["taskDefinitionArns"] == [td["taskDefinitionArn"]]
