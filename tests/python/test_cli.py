"""The unmodified aws CLI (v1, from PyPI) against a fresh server, configured
only through `stevedore env`, as the README tells users to do."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stevedore_harness import Server, clean_env, cluster_arn, parse_env_exports, run_stevedore, stevedore_bin, td_arn

TD_JSON = {
    "family": "web",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "256",
    "memory": "512",
    "containerDefinitions": [
        {
            "name": "web",
            "image": "public.ecr.aws/docker/library/nginx:1.27",
            "essential": True,
            "portMappings": [{"containerPort": 80, "protocol": "tcp"}],
            "environment": [{"name": "GREETING", "value": "hello"}],
        }
    ],
}


def aws_executable() -> str:
    venv_aws = Path(sys.executable).parent / "aws"
    if venv_aws.exists():
        return str(venv_aws)
    found = shutil.which("aws")
    if not found:
        pytest.fail("the aws CLI is not installed (scripts/test installs it into .venv)", pytrace=False)
    return found


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("cli") / "data", name="cli").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def cli_env(cli_server, tmp_path_factory):
    exports = parse_env_exports(run_stevedore(["env", "--data-dir", str(cli_server.data_dir)]))
    creds = tmp_path_factory.mktemp("awscfg") / "credentials"
    creds.write_text("")
    env = clean_env(exports)
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(creds)
    env["PATH"] = f"{Path(aws_executable()).parent}{os.pathsep}{env.get('PATH', '')}"
    return exports, env


def aws(env, *args, check=True):
    res = subprocess.run(
        [aws_executable(), "ecs", *args, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert res.returncode == 0, f"aws ecs {' '.join(args)} failed ({res.returncode}):\n{res.stderr}"
        return json.loads(res.stdout) if res.stdout.strip() else {}
    return res


def test_stevedore_env_prints_exports(cli_server, cli_env):
    exports, _ = cli_env
    assert set(exports) >= {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}
    assert exports["AWS_ENDPOINT_URL"].rstrip("/") == cli_server.endpoint
    assert exports["AWS_DEFAULT_REGION"] == "us-east-1"
    keys = cli_server.admin_keys()
    assert exports["AWS_ACCESS_KEY_ID"] == keys.access_key_id
    assert exports["AWS_SECRET_ACCESS_KEY"] == keys.secret_access_key


def test_issue_walkthrough(cli_env, tmp_path):
    _, env = cli_env
    created = aws(env, "create-cluster", "--cluster-name", "web")["cluster"]
    assert created["clusterArn"] == cluster_arn("web")
    assert created["status"] == "ACTIVE"

    td_file = tmp_path / "td.json"
    td_file.write_text(json.dumps(TD_JSON))
    registered = aws(env, "register-task-definition", "--cli-input-json", f"file://{td_file}")["taskDefinition"]
    assert registered["family"] == "web"
    assert registered["revision"] == 1
    assert registered["taskDefinitionArn"] == td_arn("web", 1)

    described = aws(env, "describe-task-definition", "--task-definition", "web:1")["taskDefinition"]
    assert described["taskDefinitionArn"] == td_arn("web", 1)
    assert described["status"] == "ACTIVE"
    assert (described["cpu"], described["memory"]) == ("256", "512")
    c = described["containerDefinitions"][0]
    assert c["image"] == TD_JSON["containerDefinitions"][0]["image"]
    assert c["environment"] == [{"name": "GREETING", "value": "hello"}]
    assert isinstance(described["registeredAt"], (int, float)), "aws CLI shows epoch seconds from the wire"

    listed = aws(env, "list-clusters")["clusterArns"]
    assert cluster_arn("web") in listed


def test_cli_auto_paginates(cli_env):
    _, env = cli_env
    names = [f"cli-page-{i}" for i in range(5)]
    for n in names:
        aws(env, "create-cluster", "--cluster-name", n)
    listed = aws(env, "list-clusters", "--page-size", "2")["clusterArns"]
    assert len(listed) == len(set(listed))
    assert {cluster_arn(n) for n in names} <= set(listed)


def test_cli_reports_errors(cli_env):
    _, env = cli_env
    res = aws(env, "describe-task-definition", "--task-definition", "does-not-exist:1", check=False)
    assert res.returncode != 0
    assert "ClientException" in res.stderr, res.stderr


def test_eval_stevedore_env_in_a_shell(cli_server, cli_env):
    _, env = cli_env
    shell_env = clean_env()
    shell_env["PATH"] = env["PATH"]
    shell_env["AWS_CONFIG_FILE"] = os.devnull
    script = (
        f'eval "$({shlex.quote(str(stevedore_bin()))} env --data-dir {shlex.quote(str(cli_server.data_dir))})" && '
        "aws ecs create-cluster --cluster-name from-shell --output json"
    )
    res = subprocess.run(["bash", "-c", script], env=shell_env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["cluster"]["clusterArn"] == cluster_arn("from-shell")
