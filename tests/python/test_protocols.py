"""The service table at the edge: each service framed in its own protocol.

CloudWatch speaks awsJson1_0 with `awsQueryCompatible`: answers carry the
1.0 content type, and errors also carry `x-amzn-query-error: CODE;TYPE`,
which botocore splits into the Query error code and type.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.parsers import JSONParser

from stevedore_harness import DEFAULT_REGION, RawResponse

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
