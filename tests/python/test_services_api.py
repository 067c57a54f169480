"""The ECS service API surface (CreateService, UpdateService, DeleteService,
DescribeServices, ListServices, the ServiceDeployment/ServiceRevision API,
task protection) against a real `stevedore server`, with boto3 and the aws
CLI. No agents run: the controller cannot place tasks, so these tests check
what the handlers store and show, not rollouts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stevedore_harness import (
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    clean_env,
    cluster_arn,
    container,
    expect_error,
    parse_env_exports,
    run_stevedore,
    tag_map,
    uniq,
)

PREFIX = f"arn:aws:ecs:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}"


def service_arn(cluster: str, name: str) -> str:
    return f"{PREFIX}:service/{cluster}/{name}"


@pytest.fixture(scope="module")
def cluster(ecs) -> str:
    name = uniq("svc")
    ecs.create_cluster(clusterName=name)
    return name


@pytest.fixture(scope="module")
def td(ecs) -> str:
    out = ecs.register_task_definition(family=uniq("svctd"), containerDefinitions=[container()])
    return out["taskDefinition"]["taskDefinitionArn"]


@pytest.fixture(scope="module")
def td_awsvpc(ecs) -> str:
    out = ecs.register_task_definition(
        family=uniq("svcvpc"),
        networkMode="awsvpc",
        requiresCompatibilities=["EC2", "FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[container()],
    )
    return out["taskDefinition"]["taskDefinitionArn"]


def create(ecs, cluster, td, **kw) -> dict:
    kw.setdefault("serviceName", uniq("web"))
    kw.setdefault("desiredCount", 1)
    return ecs.create_service(cluster=cluster, taskDefinition=td, **kw)["service"]


# ---------------------------------------------------------------- create


def test_create_and_describe_shape(ecs, cluster, td):
    name = uniq("web")
    svc = create(ecs, cluster, td, serviceName=name, desiredCount=2,
                 tags=[{"key": "team", "value": "blue"}], propagateTags="SERVICE",
                 healthCheckGracePeriodSeconds=30,
                 placementStrategy=[{"type": "spread", "field": "attribute:ecs.availability-zone"}])
    assert svc["serviceArn"] == service_arn(cluster, name)
    assert svc["serviceName"] == name
    assert svc["clusterArn"] == cluster_arn(cluster)
    assert svc["status"] == "ACTIVE"
    assert svc["desiredCount"] == 2
    assert svc["runningCount"] == 0 and svc["pendingCount"] == 0
    assert svc["taskDefinition"] == td
    assert svc["launchType"] == "EC2"
    assert svc["schedulingStrategy"] == "REPLICA"
    assert svc["deploymentController"] == {"type": "ECS"}
    dc = svc["deploymentConfiguration"]
    assert dc["maximumPercent"] == 200 and dc["minimumHealthyPercent"] == 100
    assert dc["deploymentCircuitBreaker"] == {"enable": False, "rollback": False}
    assert svc["healthCheckGracePeriodSeconds"] == 30
    assert svc["propagateTags"] == "SERVICE"
    assert svc["enableECSManagedTags"] is False
    assert svc["createdBy"].startswith("arn:aws:iam::")
    assert svc["createdAt"]
    assert len(svc["deployments"]) == 1
    d = svc["deployments"][0]
    assert d["id"].startswith("ecs-svc/") and len(d["id"]) == len("ecs-svc/") + 19
    assert d["status"] == "PRIMARY"
    assert d["rolloutState"] == "IN_PROGRESS"
    assert d["rolloutStateReason"] == f"ECS deployment {d['id']} in progress."
    assert d["taskDefinition"] == td and d["desiredCount"] == 2
    assert d["launchType"] == "EC2"
    assert d["runningCount"] == 0 and d["pendingCount"] == 0 and d["failedTasks"] == 0
    digits = d["id"].removeprefix("ecs-svc/")
    assert svc["currentServiceDeployment"] == f"{PREFIX}:service-deployment/{cluster}/{name}/{digits}"
    assert svc["currentServiceRevisions"][0]["arn"] == f"{PREFIX}:service-revision/{cluster}/{name}/{digits}"
    assert svc["currentServiceRevisions"][0]["requestedTaskCount"] == 2

    got = ecs.describe_services(cluster=cluster, services=[name])
    assert got["failures"] == []
    (s,) = got["services"]
    assert s["serviceArn"] == svc["serviceArn"]
    assert "tags" not in s
    assert s["deployments"][0]["id"] == d["id"]
    assert s["placementStrategy"] == [{"type": "spread", "field": "attribute:ecs.availability-zone"}]
    with_tags = ecs.describe_services(cluster=cluster, services=[svc["serviceArn"]], include=["TAGS"])
    assert tag_map(with_tags["services"][0]["tags"]) == {"team": "blue"}


def test_describe_missing_is_a_failure(ecs, cluster):
    out = ecs.describe_services(cluster=cluster, services=["nope"])
    assert out["services"] == []
    assert out["failures"] == [{"arn": service_arn(cluster, "nope"), "reason": "MISSING"}]
    expect_error(ecs.describe_services, "InvalidParameterException", cluster=cluster,
                 services=[f"s{i}" for i in range(11)])
    expect_error(ecs.describe_services, "ClusterNotFoundException", cluster=uniq("none"), services=["x"])


def test_create_is_not_idempotent(ecs, cluster, td):
    name = uniq("dup")
    create(ecs, cluster, td, serviceName=name)
    expect_error(ecs.create_service, "InvalidParameterException", contains=["not idempotent"],
                 cluster=cluster, serviceName=name, taskDefinition=td, desiredCount=1)


def test_create_retry_with_client_token_is_idempotent(ecs, cluster, td):
    name = uniq("tok")
    first = ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=td, desiredCount=0,
                               clientToken="token-1")["service"]
    again = ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=td, desiredCount=0,
                               clientToken="token-1")["service"]
    assert again["serviceArn"] == first["serviceArn"]
    assert again["createdAt"] == first["createdAt"]
    assert again["deployments"][0]["id"] == first["deployments"][0]["id"]
    expect_error(ecs.create_service, "InvalidParameterException", contains=["not idempotent"],
                 cluster=cluster, serviceName=name, taskDefinition=td, desiredCount=0, clientToken="token-2")


def test_daemon_defaults_and_refusals(ecs, cluster, td):
    svc = ecs.create_service(cluster=cluster, serviceName=uniq("d"), taskDefinition=td,
                             schedulingStrategy="DAEMON")["service"]
    assert svc["schedulingStrategy"] == "DAEMON"
    assert svc["deploymentConfiguration"]["maximumPercent"] == 100
    assert svc["deploymentConfiguration"]["minimumHealthyPercent"] == 0
    expect_error(ecs.create_service, "InvalidParameterException", contains=["desiredCount"],
                 cluster=cluster, serviceName=uniq("d"), taskDefinition=td,
                 schedulingStrategy="DAEMON", desiredCount=1)
    expect_error(ecs.create_service, "InvalidParameterException", contains=["placementStrategy"],
                 cluster=cluster, serviceName=uniq("d"), taskDefinition=td, schedulingStrategy="DAEMON",
                 placementStrategy=[{"type": "binpack", "field": "memory"}])
    expect_error(ecs.create_service, "InvalidParameterException", contains=["maximumPercent"],
                 cluster=cluster, serviceName=uniq("d"), taskDefinition=td, schedulingStrategy="DAEMON",
                 deploymentConfiguration={"maximumPercent": 200})
    expect_error(ecs.update_service, "InvalidParameterException", contains=["DAEMON"],
                 cluster=cluster, service=svc["serviceName"], desiredCount=3)


@pytest.mark.parametrize(
    "extra,code,words",
    [
        ({"desiredCount": None}, "InvalidParameterException", ["desiredCount"]),
        ({"desiredCount": -1}, "InvalidParameterException", ["desiredCount"]),
        ({"serviceName": "bad name!"}, "InvalidParameterException", ["serviceName"]),
        ({"deploymentConfiguration": {"minimumHealthyPercent": 150}}, "InvalidParameterException",
         ["minimumHealthyPercent"]),
        ({"deploymentConfiguration": {"maximumPercent": 50}}, "InvalidParameterException", ["maximumPercent"]),
        ({"deploymentController": {"type": "CODE_DEPLOY"}}, "UnsupportedFeatureException", ["CODE_DEPLOY"]),
        ({"deploymentConfiguration": {"strategy": "BLUE_GREEN"}}, "UnsupportedFeatureException", ["ROLLING"]),
        ({"deploymentConfiguration": {"alarms": {"alarmNames": ["a"], "enable": True, "rollback": False}}},
         "UnsupportedFeatureException", ["alarms"]),
        ({"deploymentConfiguration": {"bakeTimeInMinutes": 5}}, "UnsupportedFeatureException", ["bakeTime"]),
        ({"loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/y",
                             "containerName": "app", "containerPort": 80}]},
         "UnsupportedFeatureException", ["loadBalancers"]),
        ({"serviceRegistries": [{"registryArn": "arn:aws:servicediscovery:us-east-1:1:service/srv-1"}]},
         "UnsupportedFeatureException", ["serviceRegistries"]),
        ({"role": "ecsServiceRole"}, "InvalidParameterException", ["role", "loadBalancers"]),
        ({"enableExecuteCommand": True}, "InvalidParameterException", ["enableExecuteCommand"]),
        ({"availabilityZoneRebalancing": "ENABLED"}, "UnsupportedFeatureException", ["availabilityZoneRebalancing"]),
        ({"healthCheckGracePeriodSeconds": -1}, "InvalidParameterException", ["healthCheckGracePeriodSeconds"]),
        ({"launchType": "EC2", "capacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}]},
         "InvalidParameterException", ["launch type", "capacity provider"]),
        ({"placementConstraints": [{"type": "memberOf", "expression": "attribute:a =="}]},
         "InvalidParameterException", []),
        ({"platformVersion": "1.4.0"}, "InvalidParameterException", ["platformVersion"]),
        ({"tags": [{"key": "aws:x", "value": "y"}]}, "InvalidParameterException", []),
        ({"taskDefinition": "no-such-family"}, "ClientException", []),
        ({"networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s-1"]}}},
         "InvalidParameterException", ["awsvpc"]),
    ],
)
def test_create_refusals(ecs_raw, cluster, td, extra, code, words):
    kw = {"cluster": cluster, "serviceName": uniq("r"), "taskDefinition": td, "desiredCount": 1}
    kw.update(extra)
    kw = {k: v for k, v in kw.items() if v is not None}
    err = expect_error(ecs_raw.create_service, code, contains=words, **kw)
    assert err["Message"]


def test_create_on_missing_cluster(ecs, td):
    expect_error(ecs.create_service, "ClusterNotFoundException", cluster=uniq("none"),
                 serviceName="x", taskDefinition=td, desiredCount=0)


def test_fargate_service_with_network(ecs, cluster, td_awsvpc):
    net = {"awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "DISABLED"}}
    svc = create(ecs, cluster, td_awsvpc, launchType="FARGATE", networkConfiguration=net)
    assert svc["launchType"] == "FARGATE"
    assert svc["platformVersion"] == "LATEST"
    assert svc["networkConfiguration"] == net
    d = svc["deployments"][0]
    assert d["networkConfiguration"] == net and d["platformVersion"] == "LATEST"
    expect_error(ecs.create_service, "InvalidParameterException", contains=["DAEMON", "FARGATE"],
                 cluster=cluster, serviceName=uniq("f"), taskDefinition=td_awsvpc, schedulingStrategy="DAEMON",
                 launchType="FARGATE", networkConfiguration=net)
    expect_error(ecs.create_service, "InvalidParameterException", contains=["Network Configuration"],
                 cluster=cluster, serviceName=uniq("f"), taskDefinition=td_awsvpc, desiredCount=1,
                 launchType="FARGATE")


def test_circuit_breaker_is_stored(ecs, cluster, td):
    svc = create(ecs, cluster, td, deploymentConfiguration={
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "maximumPercent": 150, "minimumHealthyPercent": 50})
    dc = svc["deploymentConfiguration"]
    assert dc["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert dc["maximumPercent"] == 150 and dc["minimumHealthyPercent"] == 50


# ---------------------------------------------------------------- list


def test_list_paging_and_filters(ecs, td, td_awsvpc):
    c = uniq("lst")
    ecs.create_cluster(clusterName=c)
    names = sorted(uniq("s") for _ in range(5))
    for n in names:
        create(ecs, c, td, serviceName=n, desiredCount=0)
    net = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
    far = create(ecs, c, td_awsvpc, launchType="FARGATE", networkConfiguration=net, desiredCount=0)
    daemon = ecs.create_service(cluster=c, serviceName=uniq("dm"), taskDefinition=td,
                                schedulingStrategy="DAEMON")["service"]
    seen, token = [], None
    while True:
        kw = {"cluster": c, "maxResults": 2}
        if token:
            kw["nextToken"] = token
        out = ecs.list_services(**kw)
        assert len(out["serviceArns"]) <= 2
        seen += out["serviceArns"]
        token = out.get("nextToken")
        if not token:
            break
    assert len(seen) == 7 and len(set(seen)) == 7
    assert ecs.list_services(cluster=c, launchType="FARGATE")["serviceArns"] == [far["serviceArn"]]
    assert ecs.list_services(cluster=c, schedulingStrategy="DAEMON")["serviceArns"] == [daemon["serviceArn"]]
    assert len(ecs.list_services(cluster=c)["serviceArns"]) == 7  # default maxResults 10
    expect_error(ecs.list_services, "InvalidParameterException", cluster=c, maxResults=101)
    expect_error(ecs.list_services, "ClusterNotFoundException", cluster=uniq("none"))


# ---------------------------------------------------------------- update / delete


def test_update_scale_vs_new_deployment(ecs, cluster, td):
    family2 = uniq("svctd2")
    td2 = ecs.register_task_definition(family=family2, containerDefinitions=[container()])[
        "taskDefinition"]["taskDefinitionArn"]
    svc = create(ecs, cluster, td, desiredCount=1)
    first = svc["deployments"][0]["id"]
    scaled = ecs.update_service(cluster=cluster, service=svc["serviceName"], desiredCount=3)["service"]
    assert scaled["desiredCount"] == 3
    assert [d["id"] for d in scaled["deployments"]] == [first]
    assert scaled["deployments"][0]["desiredCount"] == 3

    upd = ecs.update_service(cluster=cluster, service=svc["serviceArn"], taskDefinition=family2)["service"]
    assert upd["taskDefinition"] == td2
    assert len(upd["deployments"]) == 2
    new, old = upd["deployments"]
    assert new["status"] == "PRIMARY" and new["taskDefinition"] == td2 and new["rolloutState"] == "IN_PROGRESS"
    assert old["status"] == "ACTIVE" and old["id"] == first and old["taskDefinition"] == td
    assert upd["currentServiceDeployment"].endswith(new["id"].removeprefix("ecs-svc/"))

    forced = ecs.update_service(cluster=cluster, service=svc["serviceName"], forceNewDeployment=True)["service"]
    assert forced["deployments"][0]["id"] not in (new["id"], first)
    assert forced["deployments"][0]["taskDefinition"] == td2

    cfg = ecs.update_service(cluster=cluster, service=svc["serviceName"],
                             deploymentConfiguration={"minimumHealthyPercent": 50},
                             healthCheckGracePeriodSeconds=10)["service"]
    assert cfg["deploymentConfiguration"]["minimumHealthyPercent"] == 50
    assert cfg["deploymentConfiguration"]["maximumPercent"] == 200
    assert cfg["healthCheckGracePeriodSeconds"] == 10
    assert len(cfg["deployments"]) == len(forced["deployments"])

    expect_error(ecs.update_service, "ServiceNotFoundException", cluster=cluster, service=uniq("none"))
    expect_error(ecs.update_service, "UnsupportedFeatureException", cluster=cluster,
                 service=svc["serviceName"], deploymentController={"type": "EXTERNAL"})
    expect_error(ecs.update_service, "InvalidParameterException", cluster=cluster,
                 service=svc["serviceName"], desiredCount=-2)


def test_delete(ecs, cluster, td):
    svc = create(ecs, cluster, td, desiredCount=2)
    err = expect_error(ecs.delete_service, "InvalidParameterException", cluster=cluster, service=svc["serviceName"])
    assert err["Message"] == "The service cannot be stopped while it is scaled above 0.", err
    out = ecs.delete_service(cluster=cluster, service=svc["serviceName"], force=True)["service"]
    assert out["status"] == "DRAINING" and out["desiredCount"] == 0
    expect_error(ecs.update_service, "ServiceNotActiveException", cluster=cluster,
                 service=svc["serviceName"], desiredCount=1)
    expect_error(ecs.delete_service, "ServiceNotActiveException", cluster=cluster, service=svc["serviceName"])
    expect_error(ecs.delete_service, "ServiceNotFoundException", cluster=cluster, service=uniq("none"))
    # A service scaled to 0 deletes without force.
    zero = create(ecs, cluster, td, desiredCount=0)
    assert ecs.delete_service(cluster=cluster, service=zero["serviceArn"])["service"]["status"] == "DRAINING"
    # Still described (DRAINING, later INACTIVE).
    got = ecs.describe_services(cluster=cluster, services=[zero["serviceName"]])["services"][0]
    assert got["status"] in ("DRAINING", "INACTIVE")


def test_service_tags(ecs, cluster, td):
    svc = create(ecs, cluster, td, tags=[{"key": "a", "value": "1"}])
    arn = svc["serviceArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "b", "value": "2"}])
    assert tag_map(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == {"a": "1", "b": "2"}
    ecs.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert tag_map(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == {"b": "2"}
    expect_error(ecs.list_tags_for_resource, "ResourceNotFoundException",
                 resourceArn=service_arn(cluster, uniq("none")))


def test_list_tasks_by_service(ecs, cluster, td):
    svc = create(ecs, cluster, td, desiredCount=0)
    assert ecs.list_tasks(cluster=cluster, serviceName=svc["serviceName"])["taskArns"] == []
    expect_error(ecs.list_tasks, "ServiceNotFoundException", cluster=cluster, serviceName=uniq("none"))


# ---------------------------------------------------------------- deployments API


def test_deployments_api(ecs, cluster, td):
    td2 = ecs.register_task_definition(family=uniq("svctd3"), containerDefinitions=[container(image="busybox:1")])[
        "taskDefinition"]["taskDefinitionArn"]
    svc = create(ecs, cluster, td, desiredCount=1,
                 deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": False}})
    name = svc["serviceName"]
    ecs.update_service(cluster=cluster, service=name, taskDefinition=td2)
    listed = ecs.list_service_deployments(cluster=cluster, service=name)["serviceDeployments"]
    assert len(listed) == 2
    newest, oldest = listed
    assert newest["serviceArn"] == svc["serviceArn"] and newest["clusterArn"] == cluster_arn(cluster)
    assert newest["serviceDeploymentArn"].startswith(f"{PREFIX}:service-deployment/{cluster}/{name}/")
    assert newest["targetServiceRevisionArn"].startswith(f"{PREFIX}:service-revision/{cluster}/{name}/")
    assert newest["status"] in ("IN_PROGRESS", "PENDING")
    assert oldest["status"] == "STOPPED"
    assert "Superseded" in oldest["statusReason"]
    assert newest["createdAt"] >= oldest["createdAt"]

    page1 = ecs.list_service_deployments(cluster=cluster, service=svc["serviceArn"], maxResults=1)
    assert len(page1["serviceDeployments"]) == 1 and page1["nextToken"]
    page2 = ecs.list_service_deployments(cluster=cluster, service=name, maxResults=1,
                                         nextToken=page1["nextToken"])
    assert page2["serviceDeployments"][0]["serviceDeploymentArn"] == oldest["serviceDeploymentArn"]
    assert "nextToken" not in page2
    only_stopped = ecs.list_service_deployments(cluster=cluster, service=name, status=["STOPPED"])
    assert [d["serviceDeploymentArn"] for d in only_stopped["serviceDeployments"]] == [
        oldest["serviceDeploymentArn"]]
    expect_error(ecs.list_service_deployments, "ServiceNotFoundException", cluster=cluster, service=uniq("none"))

    missing = newest["serviceDeploymentArn"].rsplit("/", 1)[0] + "/0000000000000000001"
    out = ecs.describe_service_deployments(serviceDeploymentArns=[newest["serviceDeploymentArn"], missing])
    assert out["failures"] == [{"arn": missing, "reason": "MISSING"}]
    (d,) = out["serviceDeployments"]
    assert d["serviceDeploymentArn"] == newest["serviceDeploymentArn"]
    assert d["serviceArn"] == svc["serviceArn"] and d["clusterArn"] == cluster_arn(cluster)
    assert d["targetServiceRevision"]["arn"] == newest["targetServiceRevisionArn"]
    assert d["targetServiceRevision"]["requestedTaskCount"] == 1
    assert [s["arn"] for s in d["sourceServiceRevisions"]] == [oldest["targetServiceRevisionArn"]]
    assert d["deploymentConfiguration"]["deploymentCircuitBreaker"]["enable"] is True
    cb = d["deploymentCircuitBreaker"]
    assert cb["threshold"] == 10 and cb["failureCount"] >= 0
    assert cb["status"] in ("MONITORING", "TRIGGERED")
    assert d["createdAt"] and d["startedAt"]

    revs = ecs.describe_service_revisions(serviceRevisionArns=[newest["targetServiceRevisionArn"],
                                                               missing.replace("service-deployment", "service-revision")])
    assert len(revs["failures"]) == 1 and revs["failures"][0]["reason"] == "MISSING"
    (r,) = revs["serviceRevisions"]
    assert r["taskDefinition"] == td2 and r["serviceArn"] == svc["serviceArn"]
    assert r["launchType"] == "EC2"
    assert r["containerImages"] == [{"containerName": "app", "image": "busybox:1"}]
    expect_error(ecs.describe_service_deployments, "InvalidParameterException",
                 serviceDeploymentArns=[missing] * 21)

    # No earlier deployment completed (nothing can be placed): no rollback target.
    expect_error(ecs.stop_service_deployment, "InvalidParameterException", contains=["ROLLBACK"],
                 serviceDeploymentArn=newest["serviceDeploymentArn"])
    # The superseded one is no longer in progress.
    expect_error(ecs.stop_service_deployment, "ConflictException",
                 serviceDeploymentArn=oldest["serviceDeploymentArn"], stopType="ABORT")
    expect_error(ecs.stop_service_deployment, "ServiceDeploymentNotFoundException",
                 serviceDeploymentArn=missing)
    stopped = ecs.stop_service_deployment(serviceDeploymentArn=newest["serviceDeploymentArn"], stopType="ABORT")
    assert stopped["serviceDeploymentArn"] == newest["serviceDeploymentArn"]
    again = ecs.describe_service_deployments(serviceDeploymentArns=[newest["serviceDeploymentArn"]])
    assert again["serviceDeployments"][0]["status"] in ("STOP_REQUESTED", "STOPPED")


# ---------------------------------------------------------------- task protection


def test_task_protection_validation(ecs, ecs_raw, cluster):
    task = f"{PREFIX}:task/{cluster}/0123456789abcdef0123456789abcdef"
    out = ecs.update_task_protection(cluster=cluster, tasks=[task], protectionEnabled=True, expiresInMinutes=10)
    assert out["protectedTasks"] == []
    assert out["failures"] == [{"arn": task, "reason": "MISSING"}]
    got = ecs.get_task_protection(cluster=cluster, tasks=[task])
    assert got["failures"] == [{"arn": task, "reason": "MISSING"}]
    assert ecs.get_task_protection(cluster=cluster)["protectedTasks"] == []
    expect_error(ecs_raw.update_task_protection, "InvalidParameterException", contains=["expiresInMinutes"],
                 cluster=cluster, tasks=[task], protectionEnabled=True, expiresInMinutes=3000)
    expect_error(ecs_raw.update_task_protection, "InvalidParameterException", contains=["tasks"],
                 cluster=cluster, tasks=[task] * 11, protectionEnabled=True)
    expect_error(ecs.update_task_protection, "ClusterNotFoundException", cluster=uniq("none"),
                 tasks=[task], protectionEnabled=False)


# ---------------------------------------------------------------- aws CLI


def aws_executable() -> str:
    venv_aws = Path(sys.executable).parent / "aws"
    if venv_aws.exists():
        return str(venv_aws)
    found = shutil.which("aws")
    if not found:
        pytest.fail("the aws CLI is not installed (scripts/test installs it into .venv)", pytrace=False)
    return found


def test_aws_cli_describe_services(server, ecs, cluster, td, tmp_path):
    svc = create(ecs, cluster, td, desiredCount=0)
    env = clean_env(parse_env_exports(run_stevedore(["env", "--data-dir", str(server.data_dir)])))
    creds = tmp_path / "credentials"
    creds.write_text("")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(creds)
    res = subprocess.run(
        [aws_executable(), "ecs", "describe-services", "--cluster", cluster, "--services",
         svc["serviceName"], "--output", "json"],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    s = out["services"][0]
    assert s["serviceArn"] == svc["serviceArn"]
    assert s["deployments"][0]["status"] == "PRIMARY"
    assert isinstance(s["createdAt"], (int, float, str))  # the CLI parsed the timestamp


# ---------------------------------------------------------------- with one real agent


@pytest.fixture(scope="module")
def agent_cluster(tmp_path_factory):
    """A server with one agent (real Docker): service tasks to protect, a
    standalone task to refuse, a deployment that completes."""
    from services_harness import Cluster, start_server
    from tasks_harness import ensure_test_images

    ensure_test_images()
    base = tmp_path_factory.mktemp("svcapi")
    srv = start_server(base / "srv", "services-api-server")
    c = Cluster(srv, base, uniq("svcapi"))
    c.ecs.create_cluster(clusterName=c.name)
    c.add_agent()
    yield c
    c.cleanup()
    srv.stop()


@pytest.mark.timeout(180)
def test_protection_and_rollback_with_an_agent(agent_cluster):
    c = agent_cluster
    ecs = c.ecs
    name = uniq("prot")
    td1 = c.register(uniq("p1"))
    # :2 can never be pulled, so its rollout cannot complete before we stop it below.
    td2 = c.register(uniq("p2"), version="2", image="stevedore-test/does-not-exist:1")
    ecs.create_service(cluster=c.name, serviceName=name, taskDefinition=td1, desiredCount=1)
    c.wait_stable(name)
    (task,) = ecs.list_tasks(cluster=c.name, serviceName=name)["taskArns"]
    svc = c.svc(name)
    assert svc["runningCount"] == 1 and svc["deployments"][0]["runningCount"] == 1
    assert svc["currentServiceRevisions"][0]["runningTaskCount"] == 1

    # A standalone task cannot be protected.
    standalone = ecs.run_task(cluster=c.name, taskDefinition=td1)["tasks"][0]["taskArn"]
    out = ecs.update_task_protection(cluster=c.name, tasks=[task, standalone], protectionEnabled=True,
                                     expiresInMinutes=5)
    assert [p["taskArn"] for p in out["protectedTasks"]] == [task]
    assert out["protectedTasks"][0]["protectionEnabled"] is True
    assert out["protectedTasks"][0]["expirationDate"]
    (f,) = out["failures"]
    assert f["arn"] == standalone and f["reason"] == "TASK_NOT_VALID" and "service" in f["detail"]
    got = ecs.get_task_protection(cluster=c.name, tasks=[task, standalone])
    assert {p["taskArn"]: p["protectionEnabled"] for p in got["protectedTasks"]} == {task: True, standalone: False}
    assert [p["taskArn"] for p in ecs.get_task_protection(cluster=c.name)["protectedTasks"]] == [task]
    out = ecs.update_task_protection(cluster=c.name, tasks=[task], protectionEnabled=False)
    assert out["protectedTasks"] == [{"taskArn": task, "protectionEnabled": False}]
    assert ecs.get_task_protection(cluster=c.name, tasks=[task])["protectedTasks"][0]["protectionEnabled"] is False
    ecs.stop_task(cluster=c.name, task=standalone)

    # With a completed deployment behind it, a new deployment can be rolled back.
    ecs.update_service(cluster=c.name, service=name, taskDefinition=td2)
    dep = ecs.list_service_deployments(cluster=c.name, service=name)["serviceDeployments"][0]
    ecs.stop_service_deployment(serviceDeploymentArn=dep["serviceDeploymentArn"])
    got = ecs.describe_service_deployments(serviceDeploymentArns=[dep["serviceDeploymentArn"]])
    assert got["serviceDeployments"][0]["status"] in (
        "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL"), got


def test_force_new_deployment_keeps_a_deregistered_revision(ecs, cluster, td):
    fam = uniq("dereg")
    arn = ecs.register_task_definition(family=fam, containerDefinitions=[container()])[
        "taskDefinition"]["taskDefinitionArn"]
    svc = create(ecs, cluster, arn, desiredCount=0)
    ecs.deregister_task_definition(taskDefinition=arn)
    out = ecs.update_service(cluster=cluster, service=svc["serviceName"], forceNewDeployment=True)["service"]
    assert out["deployments"][0]["taskDefinition"] == arn
    assert len(out["deployments"]) == 2
    expect_error(ecs.update_service, "ClientException", contains=["inactive"], cluster=cluster,
                 service=svc["serviceName"], taskDefinition=arn)
    expect_error(ecs.create_service, "ClientException", contains=["inactive"], cluster=cluster,
                 serviceName=uniq("x"), taskDefinition=arn, desiredCount=0)
