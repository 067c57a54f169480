"""The service table at the edge: each service framed in its own protocol.

CloudWatch speaks awsJson1_0 with `awsQueryCompatible`: answers carry the
1.0 content type, and errors also carry `x-amzn-query-error: CODE;TYPE`,
which botocore splits into the Query error code and type.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.parsers import JSONParser, QueryParser

from stevedore_harness import DEFAULT_REGION, Keys, RawResponse, clean_env, make_client

JSON_10 = "application/x-amz-json-1.0"
CLOUDWATCH_PREFIX = "GraniteServiceVersion20100801"


def signed_json(endpoint, keys, service, target, body, content_type=JSON_10) -> RawResponse:
    """POST a JSON request signed with botocore's SigV4 for `service`."""
    u = urlsplit(endpoint)
    data = json.dumps(body).encode()
    headers = {"Host": u.netloc, "Content-Type": content_type, "X-Amz-Target": target}
    req = AWSRequest(method="POST", url=f"{u.scheme}://{u.netloc}/", data=data, headers=headers)
    SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), service, DEFAULT_REGION).add_auth(req)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("POST", "/", body=data, headers=dict(req.headers.items()))
        resp = conn.getresponse()
        return RawResponse(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def content_type(resp: RawResponse) -> str:
    return (resp.header("Content-Type") or "").split(";")[0].strip()


def test_cloudwatch_json10_error_carries_query_error_header(server, admin_keys):
    resp = signed_json(
        server.endpoint, admin_keys, "monitoring", f"{CLOUDWATCH_PREFIX}.ListMetrics", {"Namespace": "AWS/ECS"}
    )
    assert resp.status == 400, resp.body
    assert content_type(resp) == JSON_10
    assert resp.header("x-amzn-RequestId")
    doc = resp.json()
    assert doc["__type"] == "InvalidAction", doc
    assert "ListMetrics" in doc["message"], doc
    assert resp.header("x-amzn-query-error") == "InvalidAction;Sender"


def test_botocore_reads_the_query_error_code(server, admin_keys):
    """botocore's own JSON parser, fed the raw answer, reports the code and
    type from `x-amzn-query-error` (as a query-compatible client would)."""
    resp = signed_json(
        server.endpoint, admin_keys, "monitoring", f"{CLOUDWATCH_PREFIX}.PutMetricData", {"Namespace": "x"}
    )
    parsed = JSONParser().parse(
        {"status_code": resp.status, "headers": dict(resp.headers.items()), "body": resp.body}, None
    )
    assert parsed["Error"]["Code"] == "InvalidAction", parsed
    assert parsed["Error"]["Type"] == "Sender", parsed
    assert "PutMetricData" in parsed["Error"]["Message"], parsed


def test_cloudwatch_unknown_operation_is_json10(server, admin_keys):
    resp = signed_json(server.endpoint, admin_keys, "monitoring", f"{CLOUDWATCH_PREFIX}.Frobnicate", {})
    assert resp.status == 400, resp.body
    assert content_type(resp) == JSON_10
    assert resp.json()["__type"] == "UnknownOperationException"
    assert resp.header("x-amzn-query-error") == "UnknownOperationException;Sender"


def test_cloudwatch_checks_the_signing_name(server, admin_keys):
    """A CloudWatch target signed for `ecs` is refused, framed as CloudWatch."""
    resp = signed_json(server.endpoint, admin_keys, "ecs", f"{CLOUDWATCH_PREFIX}.ListMetrics", {})
    assert resp.status == 403, resp.body
    assert content_type(resp) == JSON_10
    assert resp.json()["__type"] == "InvalidSignatureException"
    assert "monitoring" in resp.json()["message"]
    assert resp.header("x-amzn-query-error") == "InvalidSignatureException;Sender"


def test_json11_services_keep_their_framing(server, admin_keys):
    """ECS and Logs stay awsJson1_1 and never send the query-error header."""
    ok = signed_json(
        server.endpoint, admin_keys, "ecs", "AmazonEC2ContainerServiceV20141113.ListClusters", {},
        content_type="application/x-amz-json-1.1",
    )
    assert ok.status == 200, ok.body
    assert content_type(ok) == "application/x-amz-json-1.1"
    bad = signed_json(
        server.endpoint, admin_keys, "logs", "Logs_20140328.DescribeLogStreams", {},
        content_type="application/x-amz-json-1.1",
    )
    assert bad.status == 400, bad.body
    assert content_type(bad) == "application/x-amz-json-1.1"
    assert bad.header("x-amzn-query-error") is None


# ---- awsQuery: STS, and CloudWatch for older clients ---------------------

FORM = "application/x-www-form-urlencoded; charset=utf-8"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


def signed_query(endpoint, keys, service, params) -> RawResponse:
    """POST form parameters signed with botocore's SigV4 for `service`, as
    botocore's Query serializer sends them."""
    from urllib.parse import urlencode

    u = urlsplit(endpoint)
    data = urlencode(params).encode()
    headers = {"Host": u.netloc, "Content-Type": FORM}
    req = AWSRequest(method="POST", url=f"{u.scheme}://{u.netloc}/", data=data, headers=headers)
    SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), service, DEFAULT_REGION).add_auth(req)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("POST", "/", body=data, headers=dict(req.headers.items()))
        resp = conn.getresponse()
        return RawResponse(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def query_error(resp: RawResponse) -> dict:
    """The XML ErrorResponse's parts, read with ElementTree."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(resp.body)
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    assert root.tag == f"{ns}ErrorResponse", resp.body
    err = root.find(f"{ns}Error")
    out = {k: err.findtext(f"{ns}{k}") for k in ("Type", "Code", "Message")}
    out["RequestId"] = root.findtext(f"{ns}RequestId")
    out["namespace"] = ns.strip("{}")
    return out


def test_sts_get_caller_identity_boto3(server, admin_keys):
    sts = make_client(server.endpoint, admin_keys, service="sts")
    ident = sts.get_caller_identity()
    assert ident["Account"] == "000000000000"
    assert ident["Arn"] == "arn:aws:iam::000000000000:root"
    assert ident["UserId"] == "000000000000"
    assert ident["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert ident["ResponseMetadata"]["RequestId"]


def test_sts_other_account_key(server):
    keys = server.create_keys("111122223333")
    sts = make_client(server.endpoint, keys, service="sts")
    ident = sts.get_caller_identity()
    assert ident["Account"] == "111122223333"
    assert ident["Arn"].startswith("arn:aws:iam::111122223333:")


def test_sts_unknown_key_is_a_query_error(server):
    sts = make_client(server.endpoint, Keys("AKIANOTAKEY000000000", "nope"), service="sts")
    with pytest.raises(ClientError) as e:
        sts.get_caller_identity()
    assert e.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_sts_xml_answer_and_errors_on_the_wire(server, admin_keys):
    ok = signed_query(server.endpoint, admin_keys, "sts", {"Action": "GetCallerIdentity", "Version": "2011-06-15"})
    assert ok.status == 200, ok.body
    assert content_type(ok) == "text/xml"
    body = ok.body.decode()
    assert f'<GetCallerIdentityResponse xmlns="{STS_NS}"><GetCallerIdentityResult>' in body, body
    assert "<Account>000000000000</Account>" in body
    assert "<ResponseMetadata><RequestId>" in body

    bad = signed_query(
        server.endpoint, admin_keys, "sts", {"Action": "GetCallerIdentity", "Version": "2011-06-15", "Colour": "red"}
    )
    assert bad.status == 400, bad.body
    assert content_type(bad) == "text/xml"
    err = query_error(bad)
    assert err["Type"] == "Sender"
    assert err["Code"] == "ValidationError"
    assert "Colour" in err["Message"], err
    assert err["RequestId"] == bad.header("x-amzn-RequestId")
    assert err["namespace"] == STS_NS

    # botocore's own Query parser reads the same document.
    parsed = QueryParser().parse(
        {"status_code": bad.status, "headers": dict(bad.headers.items()), "body": bad.body}, None
    )
    assert parsed["Error"]["Code"] == "ValidationError", parsed
    assert parsed["Error"]["Type"] == "Sender", parsed

    missing = signed_query(server.endpoint, admin_keys, "sts", {"Version": "2011-06-15"})
    assert missing.status == 400
    assert query_error(missing)["Code"] == "MissingAction"

    old = signed_query(server.endpoint, admin_keys, "sts", {"Action": "GetCallerIdentity", "Version": "2009-01-01"})
    assert old.status == 400
    err = query_error(old)
    assert err["Code"] == "InvalidAction" and "2011-06-15" in err["Message"], err


def test_unserved_actions_and_services_name_themselves(server, admin_keys):
    assume = signed_query(
        server.endpoint, admin_keys, "sts",
        {"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": "arn:aws:iam::000000000000:role/x",
         "RoleSessionName": "s"},
    )
    assert assume.status == 400
    err = query_error(assume)
    assert err["Code"] == "InvalidAction" and "AssumeRole" in err["Message"], err

    nosuch = signed_query(server.endpoint, admin_keys, "sts", {"Action": "Frobnicate", "Version": "2011-06-15"})
    assert query_error(nosuch)["Code"] == "InvalidAction"

    iam = signed_query(server.endpoint, admin_keys, "iam", {"Action": "ListUsers", "Version": "2010-05-08"})
    assert iam.status == 400
    err = query_error(iam)
    assert err["Code"] == "InvalidAction" and "'iam'" in err["Message"] and "'sts'" in err["Message"], err


def test_cloudwatch_answers_older_query_clients_in_xml(server, admin_keys):
    resp = signed_query(
        server.endpoint, admin_keys, "monitoring",
        {"Action": "ListMetrics", "Version": "2010-08-01", "Namespace": "AWS/ECS"},
    )
    assert resp.status == 400, resp.body
    assert content_type(resp) == "text/xml"
    err = query_error(resp)
    assert err["Code"] == "InvalidAction" and "ListMetrics" in err["Message"], err
    assert err["namespace"] == "http://monitoring.amazonaws.com/doc/2010-08-01/"


def test_aws_cli_sts(server, admin_keys, tmp_path):
    """The unmodified aws CLI: get-caller-identity works; an action that is
    not served yet shows the Query error's code and message."""
    env = clean_env(
        {
            "AWS_ENDPOINT_URL": server.endpoint,
            "AWS_ACCESS_KEY_ID": admin_keys.access_key_id,
            "AWS_SECRET_ACCESS_KEY": admin_keys.secret_access_key,
            "AWS_DEFAULT_REGION": DEFAULT_REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        }
    )
    aws = str(Path(sys.executable).parent / "aws")
    ok = subprocess.run(
        [aws, "sts", "get-caller-identity", "--output", "json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["Arn"] == "arn:aws:iam::000000000000:root"
    bad = subprocess.run(
        [aws, "sts", "assume-role", "--role-arn", "arn:aws:iam::000000000000:role/r", "--role-session-name", "session1"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert bad.returncode != 0
    assert "An error occurred (InvalidAction) when calling the AssumeRole operation" in bad.stderr, bad.stderr
