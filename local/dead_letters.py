#!/usr/bin/env python3
"""Prints, as JSON, how many messages wait in each dead-letter queue (`*-dlq`) and mapping
on-failure queue (`*-failures`) of the running stack: what the load tools compare before and
after a run, since a message there is work the stack did not do.

    .venv/bin/python local/dead_letters.py     # inside local/stack.py exec (its environment)
"""

from __future__ import annotations

import json
import os

import boto3


def depths() -> dict[str, int]:
    sqs = boto3.client(
        "sqs", endpoint_url=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )
    out = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        name = url.rsplit("/", 1)[1]
        if name.endswith("-dlq") or name.endswith("-failures"):
            attrs = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            out[name] = int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
    return out


if __name__ == "__main__":
    print(json.dumps(depths()))
