#!/usr/bin/env python3
"""Creates every resource of infra/declaration.json in the local emulator (moto).

    .venv/bin/python local/provision.py [--endpoint http://127.0.0.1:5000]

Idempotent: what exists is left alone, so it can run against a live emulator. It also
writes .local/functions.env, the environment cargo lambda watch gives the functions.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import zipfile
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))
import declaration  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE_NAME = "commerce-local-lambda"


def client(service: str, endpoint: str):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def placeholder_zip() -> bytes:
    """moto stores a function's code but never runs it here: invocations are forwarded to
    cargo lambda watch, which runs the real binary of the same name."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n# served by cargo lambda watch locally\n")
    return buf.getvalue()


def ensure_role(iam) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    try:
        return iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def ensure_table(ddb, name: str, spec: dict) -> bool:
    existing = ddb.list_tables()["TableNames"]
    if name in existing:
        return False
    keys = [{"AttributeName": spec["hash_key"], "KeyType": "HASH"}]
    if spec.get("range_key"):
        keys.append({"AttributeName": spec["range_key"], "KeyType": "RANGE"})
    args = {
        "TableName": name,
        "KeySchema": keys,
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": t} for a, t in spec["attributes"].items()],
        "BillingMode": "PAY_PER_REQUEST",
    }
    gsis = spec.get("global_secondary_indexes", [])
    if gsis:
        args["GlobalSecondaryIndexes"] = [
            {
                "IndexName": g["name"],
                "KeySchema": [{"AttributeName": g["hash_key"], "KeyType": "HASH"}]
                + ([{"AttributeName": g["range_key"], "KeyType": "RANGE"}] if g.get("range_key") else []),
                "Projection": {"ProjectionType": g.get("projection", "ALL")},
            }
            for g in gsis
        ]
    if spec.get("stream"):
        args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": spec["stream"]}
    ddb.create_table(**args)
    if spec.get("ttl_attribute"):
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec["ttl_attribute"]}
        )
    return True


def ensure_function(lam, name: str, spec: dict, env: dict, role_arn: str, code: bytes) -> bool:
    try:
        lam.get_function(FunctionName=name)
        return False
    except lam.exceptions.ResourceNotFoundException:
        pass
    lam.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Handler="bootstrap",
        Role=role_arn,
        Code={"ZipFile": code},
        Description=spec.get("description", ""),
        Timeout=spec.get("timeout_s", 10),
        MemorySize=spec.get("memory_mb", 256),
        Architectures=["x86_64"],
        Environment={"Variables": env},
    )
    return True


def provision(endpoint: str, decl: dict | None = None, env_file: Path | None = None) -> dict:
    decl = decl or declaration.load()
    ddb, lam, iam = client("dynamodb", endpoint), client("lambda", endpoint), client("iam", endpoint)
    created = {"tables": [], "functions": []}
    for table, spec in decl["tables"].items():
        name = declaration.table_name(table)
        if ensure_table(ddb, name, spec):
            created["tables"].append(name)
    role_arn = ensure_role(iam)
    code = placeholder_zip()
    for fn, spec in decl["functions"].items():
        if ensure_function(lam, fn, spec, declaration.function_env(decl, fn), role_arn, code):
            created["functions"].append(fn)
    if env_file is not None:
        env_file.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{k}={v}" for k, v in sorted(declaration.all_function_env(decl).items())]
        env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return created


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default=f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '5000')}")
    p.add_argument("--env-file", default=str(declaration.ROOT / ".local" / "functions.env"))
    args = p.parse_args()
    created = provision(args.endpoint, env_file=Path(args.env_file))
    print(f"provisioned: {len(created['tables'])} table(s), {len(created['functions'])} function record(s) created")
    return 0


if __name__ == "__main__":
    sys.exit(main())
