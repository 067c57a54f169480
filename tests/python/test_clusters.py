"""Clusters: create/describe/list/update/capacity providers/delete."""

from __future__ import annotations

import pytest

from stevedore_harness import assert_subset, cluster_arn, expect_error, tag_map, uniq

COUNT_FIELDS = ["registeredContainerInstancesCount", "runningTasksCount", "pendingTasksCount", "activeServicesCount"]


def test_create_cluster_returns_full_arn(ecs):
    name = uniq("c")
    c = ecs.create_cluster(clusterName=name)["cluster"]
    assert c["clusterName"] == name
    assert c["clusterArn"] == cluster_arn(name)
    assert c["status"] == "ACTIVE"
    for f in COUNT_FIELDS:
        assert c[f] == 0, (f, c)


def test_create_cluster_is_idempotent_on_name(ecs):
    name = uniq("idem")
    first = ecs.create_cluster(clusterName=name)["cluster"]
    second = ecs.create_cluster(clusterName=name)["cluster"]
    assert first["clusterArn"] == second["clusterArn"]
    assert second["status"] == "ACTIVE"
    seen = [
        a
        for page in ecs.get_paginator("list_clusters").paginate()
        for a in page["clusterArns"]
        if a == first["clusterArn"]
    ]
    assert len(seen) == 1, seen


def test_create_cluster_without_name_is_default(ecs):
    c = ecs.create_cluster()["cluster"]
    assert c["clusterName"] == "default"
    assert c["clusterArn"] == cluster_arn("default")


def test_describe_clusters_without_names_means_default(ecs):
    ecs.create_cluster(clusterName="default")
    out = ecs.describe_clusters()
    assert [c["clusterName"] for c in out["clusters"]] == ["default"]
    assert out["clusters"][0]["clusterArn"] == cluster_arn("default")
    assert out.get("failures", []) == []


def test_describe_by_name_and_arn(ecs):
    name = uniq("desc")
    arn = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    by_name = ecs.describe_clusters(clusters=[name])["clusters"]
    by_arn = ecs.describe_clusters(clusters=[arn])["clusters"]
    assert [c["clusterArn"] for c in by_name] == [arn]
    assert [c["clusterArn"] for c in by_arn] == [arn]
    assert by_name[0]["status"] == "ACTIVE"


def test_describe_missing_clusters_are_failures(ecs):
    name = uniq("here")
    missing = uniq("missing")
    ecs.create_cluster(clusterName=name)
    out = ecs.describe_clusters(clusters=[name, missing])
    assert [c["clusterName"] for c in out["clusters"]] == [name]
    assert len(out["failures"]) == 1
    failure = out["failures"][0]
    assert failure["reason"] == "MISSING"
    assert failure["arn"].endswith(missing)
    assert failure["arn"] in (missing, cluster_arn(missing))


def test_describe_include_everything(ecs):
    name = uniq("incl")
    tags = [{"key": "team", "value": "core"}, {"key": "env", "value": "test"}]
    settings = [{"name": "containerInsights", "value": "disabled"}]
    configuration = {"executeCommandConfiguration": {"logging": "DEFAULT"}}
    ecs.create_cluster(clusterName=name, tags=tags, settings=settings, configuration=configuration)

    plain = ecs.describe_clusters(clusters=[name])["clusters"][0]
    assert not plain.get("tags"), "tags are only returned with include=TAGS"

    c = ecs.describe_clusters(clusters=[name], include=["STATISTICS", "TAGS", "SETTINGS", "CONFIGURATIONS"])[
        "clusters"
    ][0]
    assert tag_map(c["tags"]) == {"team": "core", "env": "test"}
    assert {s["name"]: s["value"] for s in c["settings"]}["containerInsights"] == "disabled"
    assert_subset(configuration, c["configuration"])
    for f in COUNT_FIELDS:
        assert isinstance(c[f], int) and c[f] == 0, (f, c.get(f))
    stats = c["statistics"]
    assert isinstance(stats, list) and stats, "STATISTICS must return a statistics list"
    for kv in stats:
        assert isinstance(kv["name"], str) and kv["name"]
        assert int(kv["value"]) >= 0, kv


def test_describe_rejects_bad_include(ecs_raw):
    expect_error(
        ecs_raw.describe_clusters,
        "InvalidParameterException",
        contains_any=["include", "EVERYTHING"],
        clusters=["default"],
        include=["EVERYTHING"],
    )


def test_list_clusters_paginator(ecs):
    prefix = uniq("page")
    arns = {ecs.create_cluster(clusterName=f"{prefix}-{i}")["cluster"]["clusterArn"] for i in range(7)}
    pages = list(ecs.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 2}))
    assert len(pages) >= 4
    all_arns = [a for p in pages for a in p["clusterArns"]]
    for p in pages:
        assert len(p["clusterArns"]) <= 2
    assert len(all_arns) == len(set(all_arns)), "an ARN was returned twice"
    mine = [a for a in all_arns if a.split("/")[-1].startswith(prefix + "-")]
    assert sorted(mine) == sorted(arns)
    # The last page has no token; all earlier ones do.
    assert "nextToken" not in pages[-1] or not pages[-1]["nextToken"]
    assert all(p.get("nextToken") for p in pages[:-1])


def test_list_clusters_max_results(ecs):
    for i in range(3):
        ecs.create_cluster(clusterName=uniq("mr"))
    out = ecs.list_clusters(maxResults=1)
    assert len(out["clusterArns"]) == 1
    assert out["nextToken"]
    nxt = ecs.list_clusters(maxResults=1, nextToken=out["nextToken"])
    assert len(nxt["clusterArns"]) == 1
    assert nxt["clusterArns"] != out["clusterArns"]


def test_update_cluster_settings_and_configuration(ecs):
    name = uniq("upd")
    ecs.create_cluster(clusterName=name)
    configuration = {"executeCommandConfiguration": {"logging": "DEFAULT"}}
    out = ecs.update_cluster(
        cluster=name, settings=[{"name": "containerInsights", "value": "disabled"}], configuration=configuration
    )["cluster"]
    assert out["clusterName"] == name
    assert_subset(configuration, out["configuration"])
    c = ecs.describe_clusters(clusters=[name], include=["SETTINGS", "CONFIGURATIONS"])["clusters"][0]
    assert {s["name"]: s["value"] for s in c["settings"]}["containerInsights"] == "disabled"
    assert_subset(configuration, c["configuration"])

    # A second UpdateCluster replaces the configuration.
    ecs.update_cluster(cluster=name, configuration={"executeCommandConfiguration": {"logging": "NONE"}})
    c = ecs.describe_clusters(clusters=[name], include=["CONFIGURATIONS"])["clusters"][0]
    assert c["configuration"]["executeCommandConfiguration"]["logging"] == "NONE"

    # UpdateClusterSettings changes the settings and leaves the configuration alone.
    out = ecs.update_cluster_settings(cluster=name, settings=[{"name": "containerInsights", "value": "disabled"}])
    assert out["cluster"]["clusterName"] == name
    c = ecs.describe_clusters(clusters=[name], include=["SETTINGS", "CONFIGURATIONS"])["clusters"][0]
    assert {s["name"]: s["value"] for s in c["settings"]}["containerInsights"] == "disabled"
    assert c["configuration"]["executeCommandConfiguration"]["logging"] == "NONE"


def test_container_insights_setting_round_trips(ecs):
    # Stevedore publishes no Container Insights metrics, so it refuses to turn
    # them on rather than store a setting it would ignore (README table).
    name = uniq("insights")
    ecs.create_cluster(clusterName=name)
    err = expect_error(
        ecs.update_cluster_settings,
        "UnsupportedFeatureException",
        cluster=name,
        settings=[{"name": "containerInsights", "value": "enabled"}],
    )
    assert "containerInsights" in err["Message"]
    expect_error(
        ecs.create_cluster,
        "UnsupportedFeatureException",
        clusterName=uniq("insights"),
        settings=[{"name": "containerInsights", "value": "enhanced"}],
    )
    expect_error(
        ecs.update_cluster,
        "InvalidParameterException",
        cluster=name,
        settings=[{"name": "containerInsights", "value": "sometimes"}],
    )
    ecs.update_cluster(cluster=name, settings=[{"name": "containerInsights", "value": "disabled"}])
    c = ecs.describe_clusters(clusters=[name], include=["SETTINGS"])["clusters"][0]
    assert {s["name"]: s["value"] for s in c["settings"]}["containerInsights"] == "disabled"


def test_unhonourable_configuration_is_refused(ecs):
    name = uniq("cfg")
    ecs.create_cluster(clusterName=name)
    for cfg in (
        {"executeCommandConfiguration": {"kmsKeyId": "key-1"}},
        {"executeCommandConfiguration": {"logging": "OVERRIDE", "logConfiguration": {"cloudWatchLogGroupName": "g"}}},
        {"managedStorageConfiguration": {"kmsKeyId": "key-1"}},
    ):
        expect_error(ecs.update_cluster, "UnsupportedFeatureException", cluster=name, configuration=cfg)


def test_update_unknown_cluster(ecs):
    expect_error(
        ecs.update_cluster_settings,
        "ClusterNotFoundException",
        cluster=uniq("ghost"),
        settings=[{"name": "containerInsights", "value": "disabled"}],
    )


def test_put_cluster_capacity_providers(ecs):
    name = uniq("cp")
    ecs.create_cluster(clusterName=name)
    strategy = [
        {"capacityProvider": "FARGATE", "weight": 1, "base": 2},
        {"capacityProvider": "FARGATE_SPOT", "weight": 4},
    ]
    out = ecs.put_cluster_capacity_providers(
        cluster=name, capacityProviders=["FARGATE", "FARGATE_SPOT"], defaultCapacityProviderStrategy=strategy
    )["cluster"]
    assert sorted(out["capacityProviders"]) == ["FARGATE", "FARGATE_SPOT"]
    c = ecs.describe_clusters(clusters=[name])["clusters"][0]
    assert sorted(c["capacityProviders"]) == ["FARGATE", "FARGATE_SPOT"]
    got = {s["capacityProvider"]: s for s in c["defaultCapacityProviderStrategy"]}
    assert set(got) == {"FARGATE", "FARGATE_SPOT"}
    assert got["FARGATE"]["weight"] == 1 and got["FARGATE"]["base"] == 2
    assert got["FARGATE_SPOT"]["weight"] == 4 and got["FARGATE_SPOT"].get("base", 0) == 0

    # The call replaces the whole list.
    ecs.put_cluster_capacity_providers(cluster=name, capacityProviders=[], defaultCapacityProviderStrategy=[])
    c = ecs.describe_clusters(clusters=[name])["clusters"][0]
    assert not c.get("capacityProviders")
    assert not c.get("defaultCapacityProviderStrategy")


def test_strategy_must_use_listed_providers(ecs):
    name = uniq("cpbad")
    ecs.create_cluster(clusterName=name)
    expect_error(
        ecs.put_cluster_capacity_providers,
        ("InvalidParameterException", "ClientException"),
        contains_any=["FARGATE_SPOT", "capacity provider", "capacityProvider"],
        cluster=name,
        capacityProviders=["FARGATE"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
    )


def test_delete_cluster_goes_inactive(ecs):
    name = uniq("del")
    arn = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    deleted = ecs.delete_cluster(cluster=name)["cluster"]
    assert deleted["clusterArn"] == arn
    assert deleted["status"] == "INACTIVE"
    out = ecs.describe_clusters(clusters=[name])
    assert [(c["clusterArn"], c["status"]) for c in out["clusters"]] == [(arn, "INACTIVE")]

    # Deleting again answers with the INACTIVE cluster (as the README promises).
    again = ecs.delete_cluster(cluster=arn)["cluster"]
    assert (again["clusterArn"], again["status"]) == (arn, "INACTIVE")
    out = ecs.describe_clusters(clusters=[arn])
    assert [(c["clusterArn"], c["status"]) for c in out["clusters"]] == [(arn, "INACTIVE")]

    # An inactive cluster can't be updated.
    with pytest.raises(ecs.exceptions.ClientError):
        ecs.update_cluster_settings(cluster=name, settings=[{"name": "containerInsights", "value": "disabled"}])


def test_recreate_deleted_cluster(ecs):
    name = uniq("re")
    arn = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    ecs.delete_cluster(cluster=name)
    again = ecs.create_cluster(clusterName=name)["cluster"]
    assert again["clusterArn"] == arn
    assert again["status"] == "ACTIVE"
    assert ecs.describe_clusters(clusters=[name])["clusters"][0]["status"] == "ACTIVE"


def test_delete_unknown_cluster(ecs):
    expect_error(ecs.delete_cluster, "ClusterNotFoundException", cluster=uniq("never"))


def test_invalid_cluster_name(ecs):
    expect_error(
        ecs.create_cluster,
        ("InvalidParameterException", "ClientException"),
        contains_any=["cluster", "name"],
        clusterName="no spaces allowed!",
    )
