#!/usr/bin/env python3
"""Creates Ratecard's table on a DynamoDB endpoint (DynamoDB Local) from infra/table.json.

There is no AWS CLI on these machines, so this speaks DynamoDB's JSON protocol with the
standard library: POST / with `X-Amz-Target: DynamoDB_20120810.<Operation>`, signed with
SigV4 using fixed local credentials. DynamoDB Local checks that the Authorization header is
well formed (it reads Credential=...) but not the signature; the signature is real anyway, so
the request is what any SDK would send.

Steps, each idempotent: CreateTable (an existing table is left alone, and its key schema must
match table.json), wait until ACTIVE, then UpdateTimeToLive on table.json's
TimeToLiveAttribute unless TTL is already enabled on it.

Usage: create_table.py --endpoint http://127.0.0.1:PORT [--name NAME] [--table-json PATH]
Exit status: 0 on success, 1 on any error (printed on one line).
"""

import argparse
import datetime
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

INFRA_DIR = Path(__file__).resolve().parent
DEFAULT_NAME = "ratecard-local"
# Fixed fake credentials: DynamoDB Local runs with -sharedDb, so any key id and region reach the
# same tables.
ACCESS_KEY_ID = "ratecardlocal"
SECRET_ACCESS_KEY = "ratecardlocal"
REGION = "us-east-1"
SERVICE = "dynamodb"
# DynamoDB Local answers in milliseconds; a table that is not ACTIVE after this is a fault.
ACTIVE_WAIT_S = 20
REQUEST_TIMEOUT_S = 10
# table.json keys that CreateTable understands. TimeToLiveAttribute is ours: TTL is a separate
# call (UpdateTimeToLive) in DynamoDB's API.
CREATE_TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "BillingMode")


class DynamoDbError(Exception):
    def __init__(self, error_type, message):
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type


def _hmac(key, text):
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sigv4_headers(url, target, body, now):
    """Headers for a SigV4-signed DynamoDB JSON request (AWS4-HMAC-SHA256)."""
    parsed = urllib.parse.urlsplit(url)
    host = parsed.netloc
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = now.strftime("%Y%m%d")
    payload_hash = hashlib.sha256(body).hexdigest()
    headers = {
        "content-type": "application/x-amz-json-1.0",
        "host": host,
        "x-amz-date": amz_date,
        "x-amz-target": target,
    }
    signed_headers = ";".join(sorted(headers))
    canonical_headers = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers))
    canonical_request = "\n".join(
        ["POST", parsed.path or "/", "", canonical_headers, signed_headers, payload_hash]
    )
    scope = f"{date}/{REGION}/{SERVICE}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + SECRET_ACCESS_KEY).encode(), date)
    for part in (REGION, SERVICE, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    del headers["host"]  # urllib sets Host itself, to the same value
    return headers


def call(endpoint, operation, request):
    """Calls one DynamoDB operation; returns the decoded response or raises DynamoDbError."""
    body = json.dumps(request).encode("utf-8")
    target = f"DynamoDB_20120810.{operation}"
    headers = sigv4_headers(endpoint, target, body, datetime.datetime.now(datetime.timezone.utc))
    req = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            detail = json.loads(raw)
        except ValueError:
            raise DynamoDbError(f"HTTP {err.code}", raw.decode("utf-8", "replace")) from None
        error_type = detail.get("__type", f"HTTP {err.code}").rsplit("#", 1)[-1]
        message = detail.get("message") or detail.get("Message") or ""
        raise DynamoDbError(error_type, message) from None
    except urllib.error.URLError as err:
        raise DynamoDbError("ConnectionError", f"{endpoint}: {err.reason}") from None


def key_schema_set(items):
    return sorted((k["AttributeName"], k["KeyType"]) for k in items)


def ensure_table(endpoint, name, table_json):
    request = {k: table_json[k] for k in CREATE_TABLE_KEYS if k in table_json}
    request["TableName"] = name
    try:
        call(endpoint, "CreateTable", request)
        print(f"create-table: created {name}")
    except DynamoDbError as err:
        if err.error_type != "ResourceInUseException":
            raise
        existing = call(endpoint, "DescribeTable", {"TableName": name})["Table"]
        if key_schema_set(existing["KeySchema"]) != key_schema_set(table_json["KeySchema"]):
            raise DynamoDbError(
                "KeySchemaMismatch",
                f"table {name} exists with key schema {existing['KeySchema']}, "
                f"not the one in table.json {table_json['KeySchema']}",
            ) from None
        print(f"create-table: {name} already exists")

    deadline = time.monotonic() + ACTIVE_WAIT_S
    while True:
        status = call(endpoint, "DescribeTable", {"TableName": name})["Table"]["TableStatus"]
        if status == "ACTIVE":
            return
        if time.monotonic() > deadline:
            raise DynamoDbError("Timeout", f"table {name} still {status} after {ACTIVE_WAIT_S}s")
        time.sleep(0.1)


def ensure_ttl(endpoint, name, attribute):
    described = call(endpoint, "DescribeTimeToLive", {"TableName": name})["TimeToLiveDescription"]
    if described.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        if described.get("AttributeName") != attribute:
            raise DynamoDbError(
                "TtlMismatch",
                f"TTL of {name} is on {described.get('AttributeName')!r}, table.json says {attribute!r}",
            )
        print(f"create-table: TTL already enabled on {attribute}")
        return
    call(
        endpoint,
        "UpdateTimeToLive",
        {"TableName": name, "TimeToLiveSpecification": {"AttributeName": attribute, "Enabled": True}},
    )
    print(f"create-table: TTL enabled on {attribute}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--name", default=None, help=f"table name (default: table.json's, else {DEFAULT_NAME})")
    parser.add_argument("--table-json", default=INFRA_DIR / "table.json", type=Path)
    args = parser.parse_args(argv)

    try:
        table_json = json.loads(args.table_json.read_text(encoding="utf-8"))
        name = args.name or table_json.get("TableName") or DEFAULT_NAME
        ensure_table(args.endpoint, name, table_json)
        ttl_attribute = table_json.get("TimeToLiveAttribute")
        if ttl_attribute:
            ensure_ttl(args.endpoint, name, ttl_attribute)
    except (OSError, ValueError, KeyError, DynamoDbError) as err:
        print(f"create-table: failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
