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
import time
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


def _queue_arn(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def ensure_queue(sqs, name: str, spec: dict) -> str:
    """A queue (and its dead-letter queue unless `dlq: false`); returns its ARN."""
    attrs = {
        # Locally a consumer queue may redeliver sooner (`local_visibility_timeout_s`), so a
        # poison message reaches its DLQ in about two minutes, not ten; AWS uses the declared
        # one (six times the function's timeout, as AWS advises). Never below the consuming
        # function's timeout (30 s), the least AWS accepts for a mapping's queue: with 3 s, a
        # batch that took longer under load was received again while it still ran, and
        # messages that had been handled went to the dead-letter queue.
        "VisibilityTimeout": str(spec.get("local_visibility_timeout_s", spec.get("visibility_timeout_s", 30))),
        "MessageRetentionPeriod": str(spec.get("message_retention_s", 345600)),
    }
    if spec.get("dlq", True):
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
        dlq_arn = _queue_arn(sqs, dlq_url)
        attrs["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.get("max_receive_count", 5)})
    url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]  # idempotent for equal attributes
    return _queue_arn(sqs, url)


def ensure_bus(events, decl: dict) -> str:
    name = declaration.bus_name()
    try:
        arn = events.describe_event_bus(Name=name)["Arn"]
    except events.exceptions.ResourceNotFoundException:
        arn = events.create_event_bus(Name=name)["EventBusArn"]
    archive = f"{name}-archive"
    try:
        events.describe_archive(ArchiveName=archive)
    except events.exceptions.ResourceNotFoundException:
        events.create_archive(
            ArchiveName=archive,
            EventSourceArn=arn,
            Description="Every event published on the bus, for replay",
            RetentionDays=decl["bus"].get("archive_retention_days", 0),
        )
    return arn


def ensure_rule(events, bus: str, name: str, spec: dict, queue_arn: str, decl: dict, queue_arns: dict) -> None:
    """A rule and its queue target, which retries and then dead-letters as the declaration's
    `bus` says (Terraform's aws_cloudwatch_event_target gets the same)."""
    rule = f"{bus}-{name}"
    events.put_rule(
        Name=rule,
        EventBusName=bus,
        EventPattern=json.dumps(spec["event_pattern"]),
        Description=spec.get("description", ""),
        State="ENABLED",
    )
    retry = decl["bus"]["target_retry"]
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{
        "Id": "queue",
        "Arn": queue_arn,
        "RetryPolicy": {
            "MaximumEventAgeInSeconds": retry["maximum_event_age_s"],
            "MaximumRetryAttempts": retry["maximum_retry_attempts"],
        },
        "DeadLetterConfig": {"Arn": queue_arns[decl["bus"]["dead_letter_queue"]]},
    }])


def ensure_mapping(lam, function: str, source_arn: str, spec: dict, queue_arns: dict) -> bool:
    existing = lam.list_event_source_mappings(FunctionName=function, EventSourceArn=source_arn)["EventSourceMappings"]
    if existing:
        return False
    args = {
        "FunctionName": function,
        "EventSourceArn": source_arn,
        "BatchSize": spec.get("batch_size", 10),
        "MaximumBatchingWindowInSeconds": spec.get("batching_window_s", 0),
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "Enabled": True,
    }
    if "queue" not in spec:  # streams
        args.update(
            StartingPosition=spec.get("starting_position", "TRIM_HORIZON"),
            MaximumRetryAttempts=spec.get("maximum_retry_attempts", 10),
            MaximumRecordAgeInSeconds=spec.get("maximum_record_age_s", 3600),
            BisectBatchOnFunctionError=spec.get("bisect_on_error", True),
        )
        if spec.get("on_failure_queue"):
            args["DestinationConfig"] = {"OnFailure": {"Destination": queue_arns[spec["on_failure_queue"]]}}
    lam.create_event_source_mapping(**args)
    return True


def ensure_stream(kinesis, name: str, spec: dict) -> str:
    """A Kinesis stream, waited for until ACTIVE; returns its ARN."""
    try:
        desc = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    except kinesis.exceptions.ResourceNotFoundException:
        kinesis.create_stream(StreamName=name, ShardCount=spec.get("shards", 1))
        desc = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    for _ in range(100):
        if desc["StreamStatus"] == "ACTIVE":
            break
        time.sleep(0.1)
        desc = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    return desc["StreamARN"]


def ensure_state_machine(sfn, decl: dict, machine: str, role_arn: str) -> None:
    name = declaration.state_machine_name(machine)
    definition = declaration.render_state_machine(decl, machine, "local")
    arn = declaration.state_machine_arn(machine)
    try:
        sfn.describe_state_machine(stateMachineArn=arn)
        sfn.update_state_machine(stateMachineArn=arn, definition=definition)
    except sfn.exceptions.StateMachineDoesNotExist:
        sfn.create_state_machine(name=name, definition=definition, roleArn=role_arn, type=decl["state_machines"][machine].get("type", "STANDARD"))


def ensure_secret(secrets, name: str, spec: dict) -> None:
    """The secret with its local value (in AWS the operator puts the real one)."""
    try:
        secrets.describe_secret(SecretId=name)
    except secrets.exceptions.ResourceNotFoundException:
        secrets.create_secret(Name=name, Description=spec["description"], SecretString=spec["local_value"])


def provision(endpoint: str, decl: dict | None = None, env_file: Path | None = None,
              dynamodb_endpoint: str | None = None) -> dict:
    """dynamodb_endpoint: where the tables live when DynamoDB is served apart (local/stack.py)."""
    decl = decl or declaration.load()
    ddb = client("dynamodb", dynamodb_endpoint or endpoint)
    lam, iam = client("lambda", endpoint), client("iam", endpoint)
    sqs, events = client("sqs", endpoint), client("events", endpoint)
    kinesis, sfn = client("kinesis", endpoint), client("stepfunctions", endpoint)
    created = {"tables": [], "functions": [], "mappings": []}
    for table, spec in decl["tables"].items():
        name = declaration.table_name(table)
        if ensure_table(ddb, name, spec):
            created["tables"].append(name)
    role_arn = ensure_role(iam)
    code = placeholder_zip()
    for fn, spec in decl["functions"].items():
        if ensure_function(lam, fn, spec, declaration.function_env(decl, fn), role_arn, code):
            created["functions"].append(fn)
    queue_arns = {q: ensure_queue(sqs, declaration.queue_name(q), spec) for q, spec in decl.get("queues", {}).items()}
    stream_arns = {s: ensure_stream(kinesis, declaration.stream_name(s), spec) for s, spec in decl.get("streams", {}).items()}
    for machine in decl.get("state_machines", {}):
        ensure_state_machine(sfn, decl, machine, role_arn)
    secrets = client("secretsmanager", endpoint)
    for secret, spec in decl.get("secrets", {}).items():
        ensure_secret(secrets, declaration.secret_name(secret), spec)
    if decl.get("bus"):
        ensure_bus(events, decl)
        for rule, spec in decl.get("rules", {}).items():
            ensure_rule(events, declaration.bus_name(), rule, spec, queue_arns[spec["queue"]], decl, queue_arns)
    for fn, spec in decl["functions"].items():
        for source in spec.get("event_sources", []):
            if "table_stream" in source:
                arn = ddb.describe_table(TableName=declaration.table_name(source["table_stream"]))["Table"]["LatestStreamArn"]
            elif "queue" in source:
                arn = queue_arns[source["queue"]]
            elif "kinesis_stream" in source:
                arn = stream_arns[source["kinesis_stream"]]
            else:
                raise ValueError(f"{fn}: unknown event source {source}")
            if ensure_mapping(lam, fn, arn, source, queue_arns):
                created["mappings"].append(f"{fn} <- {arn.split(':')[-1]}")
    if env_file is not None:
        env_file.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{k}={v}" for k, v in sorted(declaration.all_function_env(decl).items())]
        env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return created


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default=f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '5000')}")
    p.add_argument("--dynamodb-endpoint", default=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"))
    p.add_argument("--env-file", default=str(declaration.ROOT / ".local" / "functions.env"))
    args = p.parse_args()
    created = provision(args.endpoint, env_file=Path(args.env_file), dynamodb_endpoint=args.dynamodb_endpoint)
    print(f"provisioned: {len(created['tables'])} table(s), {len(created['functions'])} function record(s), "
          f"{len(created['mappings'])} event-source mapping(s) created")
    return 0


if __name__ == "__main__":
    sys.exit(main())
