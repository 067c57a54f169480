"""SigV4 authentication: refusals, the clock window, --accept-any-credentials."""

from __future__ import annotations

import datetime
import secrets

import pytest

from stevedore_harness import (
    DEFAULT_ACCOUNT,
    Keys,
    Server,
    cluster_arn,
    expect_error,
    make_client,
    raw_call,
    uniq,
    utcnow,
)

SKEW_WORDS = ["expired", "not yet current", "skew"]


def random_keys() -> Keys:
    return Keys("AKIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30))


def assert_refused(resp, error_type: str):
    assert not (200 <= resp.status < 300), f"refused request got {resp.status}: {resp.body[:300]!r}"
    assert 400 <= resp.status < 500, f"auth refusals are client errors, got {resp.status}"
    assert resp.error_type == error_type, resp.body[:500]
    assert resp.message, resp.body
    return resp.message


def test_admin_credentials_file(server):
    keys = server.admin_keys()
    assert keys.access_key_id and keys.secret_access_key
    assert keys.access_key_id != keys.secret_access_key


def test_signed_request_is_accepted(server, admin_keys):
    resp = raw_call(server.endpoint, "ListClusters", {}, keys=admin_keys)
    assert resp.status == 200, resp.body


def test_unsigned_request(server):
    resp = raw_call(server.endpoint, "ListClusters", {}, keys=None)
    assert_refused(resp, "MissingAuthenticationTokenException")


def test_unsigned_write_is_not_executed(server, ecs):
    name = uniq("unsigned")
    resp = raw_call(server.endpoint, "CreateCluster", {"clusterName": name}, keys=None)
    assert_refused(resp, "MissingAuthenticationTokenException")
    out = ecs.describe_clusters(clusters=[name])
    assert out["clusters"] == []
    assert [f["reason"] for f in out["failures"]] == ["MISSING"]


def test_unknown_access_key(server):
    resp = raw_call(server.endpoint, "ListClusters", {}, keys=random_keys())
    assert_refused(resp, "UnrecognizedClientException")


def test_unknown_access_key_via_boto3(server):
    client = make_client(server.endpoint, random_keys())
    expect_error(client.list_clusters, "UnrecognizedClientException")


def test_bad_secret(server, admin_keys):
    bad = Keys(admin_keys.access_key_id, admin_keys.secret_access_key[:-4] + "ABCD")
    resp = raw_call(server.endpoint, "ListClusters", {}, keys=bad)
    assert_refused(resp, "InvalidSignatureException")


def test_bad_secret_write_is_not_executed(server, admin_keys, ecs):
    name = uniq("badsig")
    bad = Keys(admin_keys.access_key_id, "x" * 40)
    client = make_client(server.endpoint, bad)
    expect_error(client.create_cluster, "InvalidSignatureException", clusterName=name)
    out = ecs.describe_clusters(clusters=[name])
    assert out["clusters"] == []
    assert out["failures"][0]["reason"] == "MISSING"


def test_tampered_body_breaks_payload_hash(server, admin_keys, ecs):
    signed = b'{"clusterName": "aaaaaaaaaa"}'
    name = uniq("tamp")[:10]
    sent = ('{"clusterName": "%s"}' % name).encode()
    assert len(sent) == len(signed)
    resp = raw_call(server.endpoint, "CreateCluster", signed, keys=admin_keys, send_body=sent)
    assert_refused(resp, "InvalidSignatureException")
    assert ecs.describe_clusters(clusters=[name])["clusters"] == []


def test_tampered_target_header(server, admin_keys):
    # X-Amz-Target is a signed header: changing it after signing must be caught.
    resp = raw_call(
        server.endpoint,
        "ListClusters",
        {},
        keys=admin_keys,
        extra_headers={"X-Amz-Target": "AmazonEC2ContainerServiceV20141113.DeleteCluster"},
    )
    assert_refused(resp, "InvalidSignatureException")


def test_malformed_authorization_header(server):
    resp = raw_call(
        server.endpoint,
        "ListClusters",
        {},
        keys=None,
        extra_headers={"Authorization": "AWS4-HMAC-SHA256 this is not a signature", "X-Amz-Date": "20250101T000000Z"},
    )
    assert not (200 <= resp.status < 300)
    assert 400 <= resp.status < 500
    assert resp.json().get("__type")


@pytest.mark.parametrize("minutes", [-20, 20], ids=["past", "future"])
def test_request_outside_clock_window(server, admin_keys, minutes):
    when = utcnow() + datetime.timedelta(minutes=minutes)
    resp = raw_call(server.endpoint, "ListClusters", {}, keys=admin_keys, sign_at=when)
    msg = assert_refused(resp, "InvalidSignatureException")
    assert any(w in msg.lower() for w in SKEW_WORDS), f"message should name the time skew: {msg!r}"


def test_request_inside_clock_window(server, admin_keys):
    when = utcnow() - datetime.timedelta(minutes=10)
    resp = raw_call(server.endpoint, "ListClusters", {}, keys=admin_keys, sign_at=when)
    assert resp.status == 200, resp.body


# ---- --accept-any-credentials -------------------------------------------------


@pytest.fixture(scope="module")
def any_creds_server(tmp_path_factory):
    srv = Server(
        tmp_path_factory.mktemp("anycreds") / "data", extra_args=["--accept-any-credentials"], name="anycreds"
    ).start()
    yield srv
    srv.stop()


def test_accept_any_credentials_maps_to_default_account(any_creds_server):
    name = uniq("anykey")
    client = make_client(any_creds_server.endpoint, random_keys())
    arn = client.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    assert arn == cluster_arn(name, DEFAULT_ACCOUNT, "us-east-1")
    # Another random key lands in the same account and sees the cluster.
    other = make_client(any_creds_server.endpoint, random_keys())
    assert arn in other.list_clusters()["clusterArns"]
    out = other.describe_clusters(clusters=[name])
    assert [c["clusterArn"] for c in out["clusters"]] == [arn]


def test_accept_any_credentials_still_requires_a_signature(any_creds_server):
    resp = raw_call(any_creds_server.endpoint, "ListClusters", {}, keys=None)
    assert_refused(resp, "MissingAuthenticationTokenException")


def test_accept_any_credentials_with_account_id(tmp_path):
    srv = Server(
        tmp_path / "data", extra_args=["--accept-any-credentials", "--account-id", "123456789012"], name="anyacct"
    ).start()
    try:
        client = make_client(srv.endpoint, random_keys(), region="eu-central-1")
        name = uniq("acct")
        arn = client.create_cluster(clusterName=name)["cluster"]["clusterArn"]
        assert arn == cluster_arn(name, "123456789012", "eu-central-1")
    finally:
        srv.stop()


def test_server_without_flag_rejects_unknown_keys(server):
    # The strict default must not behave like --accept-any-credentials.
    resp = raw_call(server.endpoint, "CreateCluster", {"clusterName": uniq("strict")}, keys=random_keys())
    assert_refused(resp, "UnrecognizedClientException")
