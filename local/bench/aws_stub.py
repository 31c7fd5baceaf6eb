#!/usr/bin/env python3
"""The smallest AWS a benchmark invocation needs, on loopback: every JSON-protocol call is
answered at once with a valid, empty-handed answer (by `X-Amz-Target`), so a function's
first invocation pays what the SDK pays on a first request (credentials, connector, signing,
one HTTP exchange) and the handler takes its ordinary path, without the emulator's own
latency in the figure.

DynamoDB answers `{}` (no item, no page, a write accepted), except DescribeTable (ACTIVE);
Step Functions, EventBridge and Kinesis answer the members their SDK output requires, and
Secrets Manager a test key.
Every call is counted by target, so the bench can say which calls a function made.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCOUNT = "123456789012"
REGION = "us-east-1"

#: Answers by X-Amz-Target; anything else of a known prefix answers `{}`.
ANSWERS = {
    "DynamoDB_20120810.DescribeTable": lambda body: {
        "Table": {"TableName": body.get("TableName", "t"), "TableStatus": "ACTIVE"}},
    "AWSEvents.DescribeEventBus": lambda body: {
        "Name": body.get("Name", "commerce"),
        "Arn": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{body.get('Name', 'commerce')}"},
    "AWSEvents.PutEvents": lambda body: {
        "FailedEntryCount": 0, "Entries": [{"EventId": f"e-{i}"} for i, _ in enumerate(body.get("Entries", []))]},
    "AWSStepFunctions.StartExecution": lambda body: {
        "executionArn": f"{body.get('stateMachineArn', '').replace(':stateMachine:', ':execution:')}:{body.get('name', 'x')}",
        "startDate": time.time()},
    "AWSStepFunctions.DescribeExecution": lambda body: {
        "executionArn": body.get("executionArn", ""), "stateMachineArn": "", "status": "SUCCEEDED",
        "startDate": time.time()},
    "Kinesis_20131202.PutRecord": lambda body: {"SequenceNumber": "1", "ShardId": "shardId-000000000000"},
    # The payment functions read the provider's key at cold start.
    "secretsmanager.GetSecretValue": lambda body: {
        "ARN": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{body.get('SecretId', 's')}-AbCdEf",
        "Name": body.get("SecretId", "s"), "SecretString": "sk_test_bench", "VersionId": "v1"},
}
KNOWN_PREFIXES = ("DynamoDB_20120810.", "AWSStepFunctions.", "AWSEvents.", "Kinesis_20131202.", "secretsmanager.")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The headers and the body go out as two writes; with Nagle's algorithm on, the body
    # waited for the client's delayed ACK of the headers (40 ms on Linux), which the first
    # invoke of every function that called AWS paid once per connection (orders-create's
    # measured 88 ms). The Runtime API of coldstart.py answers the same way.
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target", "")
        self.server.calls[target] += 1
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = {}
        if target in ANSWERS:
            status, answer = 200, ANSWERS[target](request)
        elif target.startswith(KNOWN_PREFIXES):
            status, answer = 200, {}
        else:
            status, answer = 400, {"__type": "UnknownOperationException", "message": target}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class AwsStub:
    """The stub in a background thread: `with AwsStub() as stub: ... stub.url ... stub.calls`."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.calls = Counter()
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def calls(self) -> Counter:
        return self.server.calls

    def __enter__(self) -> "AwsStub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
