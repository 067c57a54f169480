"""Test harness for driving a real `stevedore server` process.

Everything here talks to the binary named by $STEVEDORE_BIN (default:
target/debug/stevedore in the repository) over real HTTP, exactly as a user's
boto3 or aws CLI would. Nothing is mocked on the server side.
"""

from __future__ import annotations

import configparser
import datetime
import http.client
import json
import os
import shlex
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable
from unittest import mock
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

REPO_ROOT = Path(__file__).resolve().parents[2]
TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113"
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
DEFAULT_ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"
IMAGE = "public.ecr.aws/docker/library/nginx:1.27"

# Every server started in this pytest process, so that the terminal summary
# can show their logs when something failed.
STARTED_SERVERS: list["Server"] = []


def stevedore_bin() -> Path:
    return Path(os.environ.get("STEVEDORE_BIN") or REPO_ROOT / "target" / "debug" / "stevedore")


def uniq(prefix: str) -> str:
    """A name that no other test (or earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The current environment without any AWS_* variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    if extra:
        env.update(extra)
    return env


# --------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------


@dataclass
class Keys:
    access_key_id: str
    secret_access_key: str
    account_id: str = DEFAULT_ACCOUNT


@dataclass(eq=False)
class Server:
    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    name: str = "server"
    command: str = "server"
    listen: str = "127.0.0.1:0"
    proc: subprocess.Popen | None = None
    endpoint: str = ""
    region: str = ""
    pid: int = 0
    info: dict = field(default_factory=dict)
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.{self.name}.log"

    @property
    def host_port(self) -> tuple[str, int]:
        u = urlsplit(self.endpoint)
        return u.hostname, u.port

    def start(self, timeout: float = 30.0) -> "Server":
        binary = stevedore_bin()
        if not binary.exists():
            pytest.fail(
                f"stevedore binary not found at {binary}; build it with `cargo build -p stevedore` "
                "or set STEVEDORE_BIN",
                pytrace=False,
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        info_file = self.data_dir / "server.json"
        if info_file.exists():
            # A stale file from a previous (killed) run; the new server must write its own.
            info_file.unlink()
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts}: {self.data_dir} {self.extra_args}\n".encode())
        log.flush()
        cmd = [
            str(binary),
            self.command,
            "--listen",
            self.listen,
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]
        env = clean_env({"RUST_BACKTRACE": "1"})
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        log.close()
        if self not in STARTED_SERVERS:
            STARTED_SERVERS.append(self)

        deadline = time.monotonic() + timeout
        info = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"stevedore server exited with code {self.proc.returncode} during start-up:\n"
                    f"{self.log_tail()}",
                    pytrace=False,
                )
            if info_file.exists():
                try:
                    info = json.loads(info_file.read_text())
                    if info.get("endpoint"):
                        break
                except (json.JSONDecodeError, OSError):
                    pass  # still being written
            time.sleep(0.05)
        if not info:
            self.stop()
            pytest.fail(
                f"stevedore server did not write {info_file} within {timeout}s:\n{self.log_tail()}",
                pytrace=False,
            )
        self.info = info
        self.endpoint = info["endpoint"].rstrip("/")
        self.region = info.get("region", DEFAULT_REGION)
        self.pid = int(info.get("pid") or self.proc.pid)
        self._wait_for_port(deadline)
        return self

    def _wait_for_port(self, deadline: float) -> None:
        import socket

        host, port = self.host_port
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((host, port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"server at {self.endpoint} does not accept connections", pytrace=False)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def kill9(self) -> None:
        """SIGKILL the server process (the pid it reported in server.json)."""
        assert self.proc is not None
        os.kill(self.pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # ---- credentials --------------------------------------------------------

    def admin_keys(self) -> Keys:
        cp = configparser.ConfigParser()
        path = self.data_dir / "credentials"
        assert path.exists(), f"{path} was not written by the server"
        cp.read(path)
        sec = cp["default"]
        return Keys(sec["aws_access_key_id"].strip(), sec["aws_secret_access_key"].strip())

    def create_keys(self, account_id: str) -> Keys:
        out = run_stevedore(["keys", "create", "--data-dir", str(self.data_dir), "--account-id", account_id])
        doc = json.loads(out)
        assert doc["accountId"] == account_id, doc
        return Keys(doc["accessKeyId"], doc["secretAccessKey"], doc["accountId"])

    def client(
        self,
        keys: Keys | None = None,
        region: str = DEFAULT_REGION,
        validate: bool = True,
        **config: Any,
    ):
        keys = keys or self.admin_keys()
        return make_client(self.endpoint, keys, region, validate=validate, **config)

    def logs(
        self,
        keys: Keys | None = None,
        region: str = DEFAULT_REGION,
        validate: bool = True,
        **config: Any,
    ):
        """A boto3 CloudWatch Logs client for this server (same endpoint as ECS)."""
        keys = keys or self.admin_keys()
        return make_client(self.endpoint, keys, region, validate=validate, service="logs", **config)


def run_stevedore(args: list[str], timeout: float = 30.0, check: bool = True) -> str:
    res = subprocess.run(
        [str(stevedore_bin()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
    )
    if check and res.returncode != 0:
        raise AssertionError(
            f"`stevedore {' '.join(args)}` exited {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
        )
    return res.stdout


def make_client(
    endpoint: str,
    keys: Keys,
    region: str = DEFAULT_REGION,
    validate: bool = True,
    service: str = "ecs",
    **config: Any,
):
    cfg = dict(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        parameter_validation=validate,
    )
    cfg.update(config)
    session = boto3.session.Session(
        aws_access_key_id=keys.access_key_id,
        aws_secret_access_key=keys.secret_access_key,
        region_name=region,
    )
    return session.client(service, endpoint_url=endpoint, config=Config(**cfg))


def parse_env_exports(text: str) -> dict[str, str]:
    """Parse `export NAME=VALUE` lines (as printed by `stevedore env`)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("export "):
            continue
        for tok in shlex.split(line[len("export "):]):
            if "=" in tok:
                k, v = tok.split("=", 1)
                out[k] = v
    return out


# --------------------------------------------------------------------------
# Raw HTTP (for status codes, headers and raw bodies)
# --------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_type(self) -> str:
        t = self.json().get("__type", "")
        return t.split(":")[0].rsplit("#", 1)[-1]

    @property
    def message(self) -> str:
        d = self.json()
        return d.get("message") or d.get("Message") or ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def raw_call(
    endpoint: str,
    operation: str | None,
    body: bytes | str | dict | None = None,
    keys: Keys | None = None,
    region: str = DEFAULT_REGION,
    target: str | None = None,
    sign_at: datetime.datetime | None = None,
    send_body: bytes | None = None,
    extra_headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> RawResponse:
    """POST one JSON 1.1 request, optionally SigV4-signed with botocore's signer.

    `sign_at` signs the request as if the clock read that (naive UTC) time.
    `send_body` replaces the body after signing (to break the payload hash).
    """
    if body is None:
        body = {}
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    u = urlsplit(endpoint)
    host = u.netloc
    headers = {
        "Host": host,
        "Content-Type": JSON_CONTENT_TYPE,
    }
    if target is None and operation is not None:
        target = f"{TARGET_PREFIX}.{operation}"
    if target is not None:
        headers["X-Amz-Target"] = target
    req = AWSRequest(method="POST", url=f"{u.scheme}://{host}/", data=body, headers=headers)
    if keys is not None:
        signer = SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), "ecs", region)
        if sign_at is not None:
            with mock.patch("botocore.auth.get_current_datetime", return_value=sign_at):
                signer.add_auth(req)
        else:
            signer.add_auth(req)
    out_headers = {k: v for k, v in req.headers.items()}
    if extra_headers:
        out_headers.update(extra_headers)
    payload = send_body if send_body is not None else body
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("POST", "/", body=payload, headers=out_headers)
        resp = conn.getresponse()
        data = resp.read()
        return RawResponse(resp.status, resp.headers, data)
    finally:
        conn.close()


# --------------------------------------------------------------------------
# Assertions
# --------------------------------------------------------------------------


def expect_error(
    fn,
    code: str | Iterable[str],
    *,
    contains: Iterable[str] = (),
    contains_any: Iterable[str] = (),
    **kwargs: Any,
) -> dict:
    """Call `fn(**kwargs)` and require a ClientError with the given code(s).

    `contains`: every substring must appear in the message (case-insensitive).
    `contains_any`: at least one must appear.
    Returns the botocore error dict (Code, Message) plus HTTPStatusCode.
    """
    codes = {code} if isinstance(code, str) else set(code)
    try:
        resp = fn(**kwargs)
    except ClientError as e:
        err = dict(e.response.get("Error", {}))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        err["HTTPStatusCode"] = status
        msg = err.get("Message") or ""
        assert err.get("Code") in codes, f"expected one of {sorted(codes)}, got {err}"
        assert status is not None and 400 <= status < 500, f"client errors must be 4xx, got {status}: {err}"
        for s in contains:
            assert s.lower() in msg.lower(), f"message should mention {s!r}: {msg!r}"
        any_of = list(contains_any)
        if any_of:
            assert any(s.lower() in msg.lower() for s in any_of), f"message should mention one of {any_of}: {msg!r}"
        return err
    resp.pop("ResponseMetadata", None)
    pytest.fail(f"expected {sorted(codes)}, but the call succeeded: {json.dumps(resp, default=str)[:2000]}")


def assert_subset(expected: Any, actual: Any, path: str = "$") -> None:
    """Every field in `expected` is present in `actual` with the same value.

    Dicts: `actual` may have extra keys (server-side defaults). Lists: same
    length, element-wise subset. Scalars: equal.
    """
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for k, v in expected.items():
            assert k in actual, f"{path}.{k} missing from response (has {sorted(actual)})"
            assert_subset(v, actual[k], f"{path}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), f"{path}: expected {len(expected)} items, got {len(actual)}: {actual!r}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_subset(e, a, f"{path}[{i}]")
    else:
        assert actual == expected, f"{path}: expected {expected!r}, got {actual!r}"


def tag_map(tags: list[dict] | None) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in (tags or [])}


# --------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------


def container(name: str = "app", **kw: Any) -> dict:
    """A minimal valid container definition; a keyword set to None removes that field."""
    c = {"name": name, "image": IMAGE, "memory": 128, "essential": True}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


def cluster_arn(name: str, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION) -> str:
    return f"arn:aws:ecs:{region}:{account}:cluster/{name}"


def td_arn(family: str, rev: int, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION) -> str:
    return f"arn:aws:ecs:{region}:{account}:task-definition/{family}:{rev}"
