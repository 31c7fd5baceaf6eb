#!/usr/bin/env python3
"""Tests for local/pollers.py: the local Lambda event-source mappings.

    .venv/bin/python local/test_pollers.py [-v]

Starts local/emulator.py (moto) as a subprocess on a free port, a fake `cargo lambda watch`
invoke API in this process (it records every event and answers per function name as each
test tells it), and local/pollers.py as a subprocess pointed at both. Resources and mappings
are created through boto3 against the emulator, as Terraform would create them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import boto3

HERE = os.path.dirname(os.path.abspath(__file__))
REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE_NAME = "pollers-test-role"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}"
INVOKE_PREFIX = "/2015-03-31/functions/"
RELIST = 2.0  # pollers.py default re-list interval


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n--- pollers output (tail) ---\n"
                         + "\n".join(POLLERS.lines[-40:]))


# ---------------------------------------------------------------------------------------
# Fake cargo lambda watch
# ---------------------------------------------------------------------------------------
Behaviour = Callable[[dict, int], "tuple[int, object]"]  # (event, call number from 1) -> (status, body)


class FakeCargoLambda:
    """The invoke API of `cargo lambda watch`: 200 + the function's result, 500 +
    {"errorType","errorMessage"} for a function error, 404 for an unknown binary."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[str, list[dict]] = {}
        self.behaviours: dict[str, Behaviour] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                event = json.loads(self.rfile.read(length) or b"null")
                name = self.path[len(INVOKE_PREFIX) : -len("/invocations")]
                with fake.lock:
                    behaviour = fake.behaviours.get(name)
                    calls = fake.calls.setdefault(name, [])
                    calls.append(event)
                    number = len(calls)
                if behaviour is None:
                    status, doc = 404, {"title": "Missing function", "detail": name}
                else:
                    status, doc = behaviour(event, number)
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def behave(self, name: str, behaviour: Behaviour) -> None:
        with self.lock:
            self.behaviours[name] = behaviour

    def events(self, name: str) -> list[dict]:
        with self.lock:
            return list(self.calls.get(name, []))


OK: tuple[int, object] = (200, None)
BOOM: tuple[int, object] = (500, {"errorType": "Boom", "errorMessage": "the function failed"})


# ---------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------
class Pollers:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []

    def start(self, env: dict) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "pollers.py")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.append(line.rstrip("\n"))
            if os.environ.get("POLLERS_TEST_ECHO"):
                print("    | " + line.rstrip("\n"), file=sys.stderr)

    def saw(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))


POLLERS = Pollers()
FAKE: FakeCargoLambda
EMULATOR: subprocess.Popen
EMULATOR_LOG = None
CLIENTS: dict = {}


def client(service: str):
    return CLIENTS[service]


def setUpModule() -> None:
    global FAKE, EMULATOR, EMULATOR_LOG
    FAKE = FakeCargoLambda()
    moto_port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "MOTO_PORT": str(moto_port),
            "CARGO_LAMBDA_PORT": str(FAKE.port),
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    EMULATOR_LOG = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"test_pollers_emulator_{moto_port}.log"), "w+")
    EMULATOR = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "emulator.py")],
        env=env, stdout=EMULATOR_LOG, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )

    def emulator_up() -> bool:
        if EMULATOR.poll() is not None:
            raise RuntimeError(f"emulator exited {EMULATOR.returncode}; see {EMULATOR_LOG.name}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", moto_port)) == 0

    deadline = time.monotonic() + 60
    while not emulator_up():
        if time.monotonic() > deadline:
            raise RuntimeError("emulator did not start")
        time.sleep(0.1)

    for service in ("lambda", "sqs", "kinesis", "dynamodb", "iam"):
        CLIENTS[service] = boto3.client(
            service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=REGION,
            aws_access_key_id="test", aws_secret_access_key="test",
        )
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    client("iam").create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))

    POLLERS.start(env)
    deadline = time.monotonic() + 30
    while not POLLERS.saw("pollers ready"):
        if POLLERS.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("pollers did not start:\n" + "\n".join(POLLERS.lines))
        time.sleep(0.05)


def tearDownModule() -> None:
    if POLLERS.proc and POLLERS.proc.poll() is None:
        POLLERS.proc.kill()
        POLLERS.proc.wait()
    EMULATOR.send_signal(signal.SIGTERM)
    try:
        EMULATOR.wait(10)
    except subprocess.TimeoutExpired:
        EMULATOR.kill()
        EMULATOR.wait()
    FAKE.server.shutdown()
    EMULATOR_LOG.close()
    os.unlink(EMULATOR_LOG.name)


# ---------------------------------------------------------------------------------------
# Resource helpers (the calls Terraform makes)
# ---------------------------------------------------------------------------------------
def dummy_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    return buf.getvalue()


def create_function(name: str, behaviour: Behaviour) -> str:
    FAKE.behave(name, behaviour)
    return client("lambda").create_function(
        FunctionName=name, Runtime="provided.al2023", Handler="bootstrap", Role=ROLE_ARN,
        Code={"ZipFile": dummy_zip()}, Architectures=["x86_64"],
    )["FunctionArn"]


def create_queue(name: str, **attributes: str) -> tuple[str, str]:
    url = client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def queue_depth(url: str) -> int:
    attrs = client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def drain(url: str) -> list[dict]:
    """Every message of a queue (received once, then deleted)."""
    out = []
    while True:
        msgs = client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
        if not msgs:
            return out
        out.extend(msgs)
        for m in msgs:
            client("sqs").delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def create_mapping(function: str, source_arn: str, **kwargs) -> str:
    uuid = client("lambda").create_event_source_mapping(FunctionName=function, EventSourceArn=source_arn, **kwargs)["UUID"]
    return uuid


def wait_started(uuid: str) -> None:
    wait_until(lambda: POLLERS.saw(f"[{uuid[:8]}] mapping started"), RELIST * 3, f"mapping {uuid} to start")


def create_stream(name: str, shards: int = 1) -> tuple[str, str]:
    kinesis = client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    desc = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    return desc["StreamARN"], desc["Shards"][0]["ShardId"]


def seqs(event: dict) -> list[str]:
    return [r["kinesis"]["sequenceNumber"] if "kinesis" in r else r["dynamodb"]["SequenceNumber"] for r in event["Records"]]


# ---------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------
class SqsMappings(unittest.TestCase):
    def test_partial_batch_failure_then_dlq(self):
        """ReportBatchItemFailures: one invocation deletes all but the reported message,
        which comes back after the visibility timeout and, after maxReceiveCount receives,
        is moved to the DLQ (by moto's SQS, as by SQS)."""
        fn = "sqs-partial"
        bad_body = "m3"

        def behaviour(event, _n):
            failed = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == bad_body]
            return 200, {"batchItemFailures": failed}

        create_function(fn, behaviour)
        dlq_url, dlq_arn = create_queue("t1-dlq")
        url, arn = create_queue(
            "t1-src", VisibilityTimeout="1",
            RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}),
        )
        entries = [{"Id": str(i), "MessageBody": f"m{i}"} for i in range(1, 6)]
        entries[0]["MessageAttributes"] = {
            "kind": {"DataType": "String", "StringValue": "order"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\x02"},
        }
        client("sqs").send_message_batch(QueueUrl=url, Entries=entries)
        create_mapping(fn, arn, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])

        dead = wait_until(lambda: drain(dlq_url), 15, "the failing message in the DLQ")
        self.assertEqual([m["Body"] for m in dead], [bad_body])
        wait_until(lambda: queue_depth(url) == 0, 5, "the source queue to be empty")
        time.sleep(1.5)  # longer than the visibility timeout: nothing else comes back

        events = FAKE.events(fn)
        first = events[0]["Records"]
        self.assertEqual(sorted(r["body"] for r in first), ["m1", "m2", "m3", "m4", "m5"])
        per_id: dict[str, int] = {}
        for event in events:
            for rec in event["Records"]:
                per_id[rec["messageId"]] = per_id.get(rec["messageId"], 0) + 1
        bad_id = next(r["messageId"] for r in first if r["body"] == bad_body)
        self.assertEqual(per_id.pop(bad_id), 2, "the failing message is delivered maxReceiveCount times")
        self.assertEqual(sorted(per_id.values()), [1, 1, 1, 1], "the others exactly once")
        self.assertEqual(len(events), 2)
        self.assertEqual([r["messageId"] for r in events[1]["Records"]], [bad_id])
        self.assertEqual(events[1]["Records"][0]["attributes"]["ApproximateReceiveCount"], "2")

        # The Lambda SQS event shape.
        rec = next(r for r in first if r["body"] == "m1")
        self.assertEqual(
            set(rec),
            {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
             "md5OfMessageAttributes", "eventSource", "eventSourceARN", "awsRegion"},
        )
        self.assertEqual(rec["eventSource"], "aws:sqs")
        self.assertEqual(rec["eventSourceARN"], arn)
        self.assertEqual(rec["awsRegion"], REGION)
        self.assertEqual(rec["md5OfBody"], hashlib.md5(b"m1").hexdigest())
        self.assertTrue({"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"}
                        <= set(rec["attributes"]))
        self.assertEqual(rec["attributes"]["ApproximateReceiveCount"], "1")
        self.assertEqual(rec["messageAttributes"]["kind"],
                         {"stringValue": "order", "stringListValues": [], "binaryListValues": [], "dataType": "String"})
        self.assertEqual(rec["messageAttributes"]["blob"],
                         {"binaryValue": base64.b64encode(b"\x00\x01\x02").decode(), "stringListValues": [],
                          "binaryListValues": [], "dataType": "Binary"})
        other = next(r for r in first if r["body"] == "m2")
        self.assertEqual(other["messageAttributes"], {})
        self.assertNotIn("md5OfMessageAttributes", other)

    def test_function_error_deletes_nothing(self):
        """A function error deletes nothing: the whole batch comes back after the visibility
        timeout. Also: the batching window gathers messages sent one by one."""
        fn = "sqs-error-once"
        create_function(fn, lambda event, n: BOOM if n == 1 else OK)
        url, arn = create_queue("t2-src", VisibilityTimeout="2")
        uuid = create_mapping(fn, arn, BatchSize=10, MaximumBatchingWindowInSeconds=1)
        wait_started(uuid)
        for i in range(3):
            client("sqs").send_message(QueueUrl=url, MessageBody=f"w{i}")

        wait_until(lambda: len(FAKE.events(fn)) >= 2, 10, "the redelivered batch")
        wait_until(lambda: queue_depth(url) == 0, 5, "the queue to be empty")
        first, second = FAKE.events(fn)[:2]
        self.assertEqual(sorted(r["body"] for r in first["Records"]), ["w0", "w1", "w2"], "one batch within the window")
        self.assertEqual({r["messageId"] for r in first["Records"]}, {r["messageId"] for r in second["Records"]})
        self.assertEqual({r["attributes"]["ApproximateReceiveCount"] for r in second["Records"]}, {"2"})
        time.sleep(1.5)
        self.assertEqual(len(FAKE.events(fn)), 2)

    def test_unknown_item_identifier_fails_whole_batch(self):
        fn = "sqs-bad-identifier"
        create_function(fn, lambda event, n: (200, {"batchItemFailures": [{"itemIdentifier": "not-a-message-id"}]})
                        if n == 1 else (200, {"batchItemFailures": []}))
        url, arn = create_queue("t2b-src", VisibilityTimeout="1")
        client("sqs").send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "a"}, {"Id": "b", "MessageBody": "b"}])
        create_mapping(fn, arn, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
        wait_until(lambda: len(FAKE.events(fn)) >= 2, 10, "the redelivered batch")
        wait_until(lambda: queue_depth(url) == 0, 5, "the queue to be empty")
        first, second = FAKE.events(fn)[:2]
        self.assertEqual(len(first["Records"]), 2)
        self.assertEqual({r["messageId"] for r in first["Records"]}, {r["messageId"] for r in second["Records"]})


class KinesisMappings(unittest.TestCase):
    def test_partial_failure_retries_from_lowest_failed_record(self):
        fn = "kinesis-partial"

        def behaviour(event, n):
            if n == 1:  # report records 5 and 3: the checkpoint is the lowest (#3)
                return 200, {"batchItemFailures": [{"itemIdentifier": seqs(event)[4]}, {"itemIdentifier": seqs(event)[2]}]}
            return 200, {"batchItemFailures": []}

        create_function(fn, behaviour)
        arn, shard = create_stream("t3")
        put = client("kinesis").put_records(
            StreamARN=arn, Records=[{"Data": f"r{i}".encode(), "PartitionKey": "p"} for i in range(1, 7)]
        )
        numbers = [r["SequenceNumber"] for r in put["Records"]]
        t_put = time.time()
        create_mapping(fn, arn, StartingPosition="TRIM_HORIZON", BatchSize=10,
                       FunctionResponseTypes=["ReportBatchItemFailures"])
        wait_until(lambda: len(FAKE.events(fn)) >= 2, 10, "the retry")
        time.sleep(1)
        events = FAKE.events(fn)
        self.assertEqual(len(events), 2)
        self.assertEqual(seqs(events[0]), numbers)
        self.assertEqual(seqs(events[1]), numbers[2:], "retry starts exactly at #3, nothing after it skipped")

        rec = events[0]["Records"][0]
        self.assertEqual(rec["eventSource"], "aws:kinesis")
        self.assertEqual(rec["eventVersion"], "1.0")
        self.assertEqual(rec["eventName"], "aws:kinesis:record")
        self.assertEqual(rec["eventID"], f"{shard}:{numbers[0]}")
        self.assertEqual(rec["invokeIdentityArn"], ROLE_ARN)
        self.assertEqual(rec["awsRegion"], REGION)
        self.assertEqual(rec["eventSourceARN"], arn)
        k = rec["kinesis"]
        self.assertEqual(set(k), {"kinesisSchemaVersion", "partitionKey", "sequenceNumber", "data", "approximateArrivalTimestamp"})
        self.assertEqual((k["kinesisSchemaVersion"], k["partitionKey"]), ("1.0", "p"))
        self.assertEqual([base64.b64decode(r["kinesis"]["data"]) for r in events[0]["Records"]],
                         [f"r{i}".encode() for i in range(1, 7)])
        self.assertLess(abs(k["approximateArrivalTimestamp"] - t_put), 10)

        # After success the checkpoint is past the batch: new records only.
        more = client("kinesis").put_records(StreamARN=arn, Records=[{"Data": b"r7", "PartitionKey": "p"}])
        wait_until(lambda: len(FAKE.events(fn)) >= 3, 10, "the next record")
        self.assertEqual(seqs(FAKE.events(fn)[2]), [more["Records"][0]["SequenceNumber"]])

    def test_bisect_retries_then_on_failure_destination(self):
        fn = "kinesis-always-error"
        failing = threading.Event()
        failing.set()
        create_function(fn, lambda event, n: BOOM if failing.is_set() else OK)
        dest_url, dest_arn = create_queue("t4-on-failure")
        arn, shard = create_stream("t4")
        put = client("kinesis").put_records(
            StreamARN=arn, Records=[{"Data": f"x{i}".encode(), "PartitionKey": "p"} for i in range(4)]
        )
        numbers = [r["SequenceNumber"] for r in put["Records"]]
        create_mapping(
            fn, arn, StartingPosition="TRIM_HORIZON", BatchSize=10, MaximumRetryAttempts=1,
            BisectBatchOnFunctionError=True, DestinationConfig={"OnFailure": {"Destination": dest_arn}},
        )
        received: list[dict] = []
        wait_until(lambda: received.extend(drain(dest_url)) or len(received) >= 4, 30, "4 invocation records")
        failing.clear()
        records = [json.loads(m["Body"]) for m in received]

        # Bisection isolates each record; each is tried once and retried once, then discarded.
        sizes = [len(e["Records"]) for e in FAKE.events(fn)]
        self.assertEqual(sizes[:3], [4, 2, 1])
        self.assertEqual(sizes.count(1), 8, "each record: 1 try + 1 retry")
        infos = sorted((r["KinesisBatchInfo"] for r in records), key=lambda i: int(i["startSequenceNumber"]))
        self.assertEqual([i["startSequenceNumber"] for i in infos], numbers)
        self.assertEqual([i["endSequenceNumber"] for i in infos], numbers)
        doc = records[0]
        self.assertEqual(set(doc), {"requestContext", "responseContext", "version", "timestamp", "KinesisBatchInfo"})
        self.assertEqual(doc["version"], "1.0")
        ctx = doc["requestContext"]
        self.assertEqual(ctx["condition"], "RetryAttemptsExhausted")
        self.assertEqual(ctx["functionArn"], f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}")
        self.assertEqual(ctx["approximateInvokeCount"], 2)
        self.assertTrue(ctx["requestId"])
        self.assertEqual(doc["responseContext"], {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"})
        self.assertRegex(doc["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        info = doc["KinesisBatchInfo"]
        self.assertEqual(set(info), {"shardId", "startSequenceNumber", "endSequenceNumber", "approximateArrivalOfFirstRecord",
                                     "approximateArrivalOfLastRecord", "batchSize", "streamArn"})
        self.assertEqual((info["shardId"], info["batchSize"], info["streamArn"]), (shard, 1, arn))
        self.assertRegex(info["approximateArrivalOfFirstRecord"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

        # The poller moved on: a later record is processed, the discarded ones are not retried.
        calls_before = len(FAKE.events(fn))
        later = client("kinesis").put_record(StreamARN=arn, Data=b"later", PartitionKey="p")["SequenceNumber"]
        wait_until(lambda: len(FAKE.events(fn)) > calls_before, 10, "the later record")
        time.sleep(0.8)
        self.assertEqual([seqs(e) for e in FAKE.events(fn)[calls_before:]], [[later]])

    def test_bisect_isolates_a_poison_record(self):
        """Bisection lets the good records of a failing batch through."""
        fn = "kinesis-poison"
        create_function(fn, lambda event, n: BOOM if any(base64.b64decode(r["kinesis"]["data"]) == b"poison"
                                                         for r in event["Records"]) else OK)
        dest_url, dest_arn = create_queue("t4b-on-failure")
        arn, _ = create_stream("t4b")
        data = [b"a", b"b", b"poison", b"d"]
        put = client("kinesis").put_records(StreamARN=arn, Records=[{"Data": d, "PartitionKey": "p"} for d in data])
        numbers = [r["SequenceNumber"] for r in put["Records"]]
        create_mapping(fn, arn, StartingPosition="TRIM_HORIZON", BatchSize=10, MaximumRetryAttempts=0,
                       BisectBatchOnFunctionError=True, DestinationConfig={"OnFailure": {"Destination": dest_arn}})
        received: list[dict] = []
        wait_until(lambda: received.extend(drain(dest_url)) or received, 15, "the invocation record")
        wait_until(lambda: [numbers[3]] in [seqs(e) for e in FAKE.events(fn)], 5, "the record after the poison")
        self.assertEqual([seqs(e) for e in FAKE.events(fn)],
                         [numbers, numbers[:2], numbers[2:], [numbers[2]], [numbers[3]]])
        info = json.loads(received[0]["Body"])["KinesisBatchInfo"]
        self.assertEqual((info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]),
                         (numbers[2], numbers[2], 1))


    def test_new_shards_are_picked_up(self):
        """After a split, the parent is read to its end and the new (child) shards are polled
        from their start. (moto keeps routing PutRecord to the closed parent, see
        pollers.py, so the records put after the split arrive from there.)"""
        fn = "kinesis-reshard"
        create_function(fn, lambda event, n: OK)
        arn, parent = create_stream("t3b")
        uuid = create_mapping(fn, arn, StartingPosition="TRIM_HORIZON", BatchSize=10)
        client("kinesis").put_record(StreamARN=arn, Data=b"before", PartitionKey="p")
        wait_until(lambda: FAKE.events(fn), 10, "the record before the split")
        client("kinesis").update_shard_count(StreamARN=arn, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
        children = {s["ShardId"] for s in client("kinesis").list_shards(StreamARN=arn)["Shards"]} - {parent}
        self.assertEqual(len(children), 2)
        wait_until(lambda: POLLERS.saw(f"[{uuid[:8]}] kinesis {parent} closed and fully processed"), RELIST * 3,
                   "the parent shard to finish")
        for child in children:
            wait_until(lambda: POLLERS.saw(f"[{uuid[:8]}] polling kinesis {child} from TRIM_HORIZON"), RELIST * 2,
                       f"a worker on {child}")
        for i in range(3):
            client("kinesis").put_record(StreamARN=arn, Data=f"after{i}".encode(), PartitionKey=f"key{i}")

        def after() -> list:
            return [base64.b64decode(r["kinesis"]["data"]) for e in FAKE.events(fn) for r in e["Records"]
                    if base64.b64decode(r["kinesis"]["data"]).startswith(b"after")]

        wait_until(lambda: len(after()) >= 3, 10, "the records put after the split")
        self.assertEqual(after(), [b"after0", b"after1", b"after2"])


class DynamoDBMappings(unittest.TestCase):
    def test_stream_records_and_partial_failure(self):
        fn = "ddb-partial"

        def behaviour(event, n):
            if n == 1:
                return 200, {"batchItemFailures": [{"itemIdentifier": seqs(event)[1]}]}
            return 200, {}

        create_function(fn, behaviour)
        ddb = client("dynamodb")
        ddb.create_table(
            TableName="t5", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        stream_arn = ddb.describe_table(TableName="t5")["Table"]["LatestStreamArn"]
        for i in range(1, 5):
            ddb.put_item(TableName="t5", Item={"pk": {"S": f"i{i}"}, "n": {"N": str(i)}, "b": {"B": b"\x00\xff"},
                                               "tags": {"L": [{"S": "x"}, {"M": {"deep": {"B": b"\x01"}}}]}})
        t_put = time.time()
        create_mapping(fn, stream_arn, StartingPosition="TRIM_HORIZON", BatchSize=10,
                       FunctionResponseTypes=["ReportBatchItemFailures"])
        wait_until(lambda: len(FAKE.events(fn)) >= 2, 10, "the retry")
        time.sleep(1)
        events = FAKE.events(fn)
        self.assertEqual(len(events), 2)
        first = events[0]["Records"]
        self.assertEqual(len(first), 4)
        self.assertEqual(seqs(events[1]), seqs(events[0])[1:], "retry starts at the failed record")
        self.assertEqual([r["eventName"] for r in first], ["INSERT"] * 4)
        rec = first[0]
        self.assertEqual(set(rec), {"eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN"})
        self.assertEqual((rec["eventVersion"], rec["eventSource"], rec["awsRegion"], rec["eventSourceARN"]),
                         ("1.1", "aws:dynamodb", REGION, stream_arn))
        d = rec["dynamodb"]
        self.assertEqual(set(d), {"ApproximateCreationDateTime", "Keys", "NewImage", "SequenceNumber", "SizeBytes", "StreamViewType"})
        self.assertEqual(d["Keys"], {"pk": {"S": "i1"}})
        b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
        self.assertEqual(d["NewImage"], {"pk": {"S": "i1"}, "n": {"N": "1"}, "b": {"B": b64(b"\x00\xff")},
                                         "tags": {"L": [{"S": "x"}, {"M": {"deep": {"B": b64(b"\x01")}}}]}})
        self.assertEqual(d["StreamViewType"], "NEW_AND_OLD_IMAGES")
        self.assertIsInstance(d["SizeBytes"], int)
        self.assertIsInstance(d["ApproximateCreationDateTime"], int)
        self.assertLess(abs(d["ApproximateCreationDateTime"] - t_put), 10)

        ddb.update_item(TableName="t5", Key={"pk": {"S": "i1"}}, UpdateExpression="SET n = :n",
                        ExpressionAttributeValues={":n": {"N": "10"}})
        ddb.delete_item(TableName="t5", Key={"pk": {"S": "i2"}})
        wait_until(lambda: sum(len(e["Records"]) for e in FAKE.events(fn)[2:]) >= 2, 10, "MODIFY and REMOVE")
        later = [r for e in FAKE.events(fn)[2:] for r in e["Records"]]
        self.assertEqual([r["eventName"] for r in later], ["MODIFY", "REMOVE"])
        self.assertEqual(later[0]["dynamodb"]["OldImage"]["n"], {"N": "1"})
        self.assertEqual(later[0]["dynamodb"]["NewImage"]["n"], {"N": "10"})
        self.assertNotIn("NewImage", later[1]["dynamodb"])
        self.assertEqual(later[1]["dynamodb"]["OldImage"]["pk"], {"S": "i2"})


class MappingLifecycle(unittest.TestCase):
    def test_mappings_are_followed_as_they_change(self):
        """Created disabled: not polled. Enabled later: picked up. Disabled, deleted: stopped."""
        fn = "late-fn"
        create_function(fn, lambda event, n: OK)
        url, arn = create_queue("t6-src")
        sqs = client("sqs")
        sqs.send_message(QueueUrl=url, MessageBody="first")
        uuid = create_mapping(fn, arn, BatchSize=5, Enabled=False)
        time.sleep(RELIST * 1.5 + 0.5)
        self.assertEqual(FAKE.events(fn), [], "a disabled mapping is not polled")
        self.assertEqual(queue_depth(url), 1)

        client("lambda").update_event_source_mapping(UUID=uuid, Enabled=True)
        wait_until(lambda: FAKE.events(fn), RELIST * 3, "the enabled mapping to deliver")
        self.assertEqual([r["body"] for r in FAKE.events(fn)[0]["Records"]], ["first"])
        wait_until(lambda: queue_depth(url) == 0, 5, "the message to be deleted")

        client("lambda").update_event_source_mapping(UUID=uuid, Enabled=False)
        wait_until(lambda: POLLERS.saw(f"[{uuid[:8]}] mapping stopped (disabled)"), RELIST * 3, "the mapping to stop")
        sqs.send_message(QueueUrl=url, MessageBody="while disabled")
        time.sleep(1.0)
        self.assertEqual(len(FAKE.events(fn)), 1)

        client("lambda").update_event_source_mapping(UUID=uuid, Enabled=True)
        wait_until(lambda: len(FAKE.events(fn)) == 2, RELIST * 3, "delivery after re-enabling")
        self.assertEqual([r["body"] for r in FAKE.events(fn)[1]["Records"]], ["while disabled"])

        client("lambda").delete_event_source_mapping(UUID=uuid)
        wait_until(lambda: POLLERS.saw(f"[{uuid[:8]}] mapping stopped (deleted)"), RELIST * 3, "the mapping to stop")
        sqs.send_message(QueueUrl=url, MessageBody="after delete")
        time.sleep(1.0)
        self.assertEqual(len(FAKE.events(fn)), 2)

    def test_stream_mapping_update_resumes_from_checkpoint(self):
        """An updated stream mapping restarts with its new settings from its checkpoint."""
        fn = "kinesis-update"
        create_function(fn, lambda event, n: OK)
        arn, _ = create_stream("t6b")
        first = client("kinesis").put_record(StreamARN=arn, Data=b"1", PartitionKey="p")["SequenceNumber"]
        uuid = create_mapping(fn, arn, StartingPosition="TRIM_HORIZON", BatchSize=10)
        wait_until(lambda: FAKE.events(fn), 10, "the first record")
        client("lambda").update_event_source_mapping(UUID=uuid, BatchSize=2)
        wait_until(lambda: POLLERS.saw(f"[{uuid[:8]}] mapping stopped (updated)"), RELIST * 3, "the restart")
        wait_started(uuid)
        put = client("kinesis").put_records(StreamARN=arn, Records=[{"Data": b"x", "PartitionKey": "p"}] * 3)
        numbers = [r["SequenceNumber"] for r in put["Records"]]
        wait_until(lambda: sum(len(e["Records"]) for e in FAKE.events(fn)) >= 4, 10, "the new records")
        time.sleep(0.5)
        batches = [seqs(e) for e in FAKE.events(fn)]
        self.assertEqual(batches[0], [first])
        self.assertEqual([s for b in batches[1:] for s in b], numbers, "resumed after the checkpoint, nothing twice")
        self.assertTrue(all(len(b) <= 2 for b in batches[1:]), "the new BatchSize applies")


class Errors(unittest.TestCase):
    def test_unreached_function_is_retried_without_counting(self):
        """cargo lambda answering 404 (binary not built) is a service error: retried, not a
        retry attempt, so MaximumRetryAttempts 0 does not discard the records."""
        fn = "kinesis-not-built-yet"
        create_function(fn, lambda event, n: OK)
        with FAKE.lock:
            del FAKE.behaviours[fn]  # 404 until "built"
        dest_url, dest_arn = create_queue("t7-on-failure")
        arn, _ = create_stream("t7")
        client("kinesis").put_records(StreamARN=arn, Records=[{"Data": b"a", "PartitionKey": "p"}, {"Data": b"b", "PartitionKey": "p"}])
        create_mapping(fn, arn, StartingPosition="TRIM_HORIZON", BatchSize=10, MaximumRetryAttempts=0,
                       DestinationConfig={"OnFailure": {"Destination": dest_arn}})
        wait_until(lambda: len(FAKE.events(fn)) >= 3, 15, "a few unanswered invocations")
        FAKE.behave(fn, lambda event, n: OK)
        wait_until(lambda: POLLERS.saw(f"{fn} kinesis shardId-000000000000 batch=2 -> ok"), 10, "the delivery")
        self.assertEqual({len(e["Records"]) for e in FAKE.events(fn)}, {2})
        self.assertEqual(drain(dest_url), [])

    def test_sqs_poller_survives_a_missing_queue(self):
        fn = "sqs-queue-recreated"
        create_function(fn, lambda event, n: OK)
        url, arn = create_queue("t8-src")
        uuid = create_mapping(fn, arn, BatchSize=10)
        wait_started(uuid)
        client("sqs").delete_queue(QueueUrl=url)
        wait_until(lambda: POLLERS.saw(f"[{uuid[:8]}] receive from {arn} failed"), 10, "the receive error")
        url, _ = create_queue("t8-src")
        client("sqs").send_message(QueueUrl=url, MessageBody="again")
        wait_until(lambda: FAKE.events(fn), 10, "delivery from the re-created queue")
        self.assertEqual(FAKE.events(fn)[0]["Records"][0]["body"], "again")


class ZzShutdown(unittest.TestCase):
    def test_clean_exit_on_sigterm(self):
        POLLERS.proc.send_signal(signal.SIGTERM)
        self.assertEqual(POLLERS.proc.wait(15), 0)
        time.sleep(0.2)
        self.assertTrue(POLLERS.saw("pollers stopped"))


if __name__ == "__main__":
    unittest.main()
