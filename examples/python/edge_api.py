#!/usr/bin/env python3
"""A client of the edge control API, signed with AWS Signature Version 4 by botocore.

    EDGE_API_URL=http://127.0.0.1:8787 AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
        python3 edge_api.py POST /domains '{"domain": "www.acme-shop.com", "tenant": "acme"}'

On AWS, EDGE_API_URL is the API Gateway stage URL and the credentials are any IAM principal
allowed to invoke it (AWS_SESSION_TOKEN is sent when set). Prints the JSON answer; exits 1 on an
HTTP error.
"""
import json
import os
import sys
import urllib.error
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def call(method, path, body=None):
    url = os.environ["EDGE_API_URL"].rstrip("/") + path
    region = os.environ.get("EDGE_API_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    data = json.dumps(body).encode() if body is not None else b""
    headers = {"content-type": "application/json"} if body is not None else {}
    request = AWSRequest(method=method, url=url, data=data, headers=headers)
    credentials = Credentials(
        os.environ["AWS_ACCESS_KEY_ID"],
        os.environ["AWS_SECRET_ACCESS_KEY"],
        os.environ.get("AWS_SESSION_TOKEN"),
    )
    SigV4Auth(credentials, "execute-api", region).add_auth(request)
    prepared = urllib.request.Request(
        url, data=data or None, method=method, headers=dict(request.headers.items())
    )
    try:
        with urllib.request.urlopen(prepared, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    status, answer = call(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else None)
    print(json.dumps(answer, indent=2))
    sys.exit(0 if status < 400 else 1)
