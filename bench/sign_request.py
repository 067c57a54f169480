#!/usr/bin/env python3
"""Signs one ECS request with botocore's SigV4 signer and writes a wrk Lua
script that replays it. The signature stays valid for the server's 15-minute
window, so wrk exercises full SigV4 verification on every request.

usage: sign_request.py DATA_DIR OPERATION JSON_BODY OUT.lua
"""
import json
import pathlib
import sys

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def main():
    data_dir, op, body, out = sys.argv[1:5]
    d = pathlib.Path(data_dir)
    info = json.loads((d / "server.json").read_text())
    creds = {}
    for line in (d / "credentials").read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            creds[k.strip()] = v.strip()
    endpoint = info["endpoint"].rstrip("/") + "/"
    req = AWSRequest(
        method="POST",
        url=endpoint,
        data=body.encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"AmazonEC2ContainerServiceV20141113.{op}",
        },
    )
    SigV4Auth(
        Credentials(creds["aws_access_key_id"], creds["aws_secret_access_key"]),
        "ecs",
        info["region"],
    ).add_auth(req)
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
    for k, v in req.headers.items():
        lines.append(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}")
    pathlib.Path(out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
