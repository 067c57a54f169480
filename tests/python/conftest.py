"""Shared fixtures: a real stevedore server on a free port, and clients for it."""

from __future__ import annotations

import os

import pytest

from stevedore_harness import STARTED_SERVERS, Server

# Nothing from the developer's own AWS set-up may leak into the tests.
for _k in [k for k in os.environ if k.startswith("AWS_")]:
    del os.environ[_k]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One server shared by most tests. Tests use unique names, so they stay independent."""
    srv = Server(tmp_path_factory.mktemp("stevedore") / "data", name="main").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def admin_keys(server):
    return server.admin_keys()


@pytest.fixture(scope="session")
def ecs(server, admin_keys):
    """boto3 ECS client for the admin key (account 000000000000, us-east-1)."""
    return server.client(admin_keys)


@pytest.fixture(scope="session")
def ecs_raw(server, admin_keys):
    """Like `ecs`, but without botocore's client-side parameter validation, so
    that malformed input reaches the server."""
    return server.client(admin_keys, validate=False)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not (terminalreporter.stats.get("failed") or terminalreporter.stats.get("error")):
        return
    for srv in STARTED_SERVERS:
        terminalreporter.section(f"stevedore {srv.name} log ({srv.log_path})")
        terminalreporter.write_line(srv.log_tail(120))
