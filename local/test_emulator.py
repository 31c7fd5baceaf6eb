#!/usr/bin/env python3
"""Tests for local/emulator.py, against a fake `cargo lambda watch`.

    .venv/bin/python local/test_emulator.py [-v]

Starts emulator.py as a subprocess on a free port and a fake cargo-lambda invoke API in this
process (CARGO_LAMBDA_PORT points the emulator at it), then drives moto with boto3.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.join(HERE, "emulator.py")
REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/x"
INVOKE_PREFIX = "/2015-03-31/functions/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeCargoLambda(BaseHTTPRequestHandler):
    """The invoke API of `cargo lambda watch`: 200 + response, 500 + error document for a
    function error, 404 for an unknown binary."""

    calls: list[tuple[str, object]] = []
    lock = threading.Lock()

    def log_message(self, *args):  # keep test output quiet
        pass

    def _reply(self, status: int, doc: object) -> None:
        body = json.dumps(doc).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the caller gave up (a timed-out invocation)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        event = json.loads(self.rfile.read(length) or b"null")
        path = self.path
        if not (path.startswith(INVOKE_PREFIX) and path.endswith("/invocations")):
            return self._reply(404, {"title": "not found"})
        name = path[len(INVOKE_PREFIX) : -len("/invocations")]
        with self.lock:
            self.calls.append((name, event))
        if name == "ok-fn":
            return self._reply(200, {"hello": event})
        if name == "slow-fn":
            time.sleep(float(event.get("sleep", 0)) if isinstance(event, dict) else 0)
            return self._reply(200, {"slept": event})
        if name == "boom-fn":
            return self._reply(500, {"errorType": "OutOfStock", "errorMessage": "no stock"})
        if name == "down-fn":
            # Drop the connection without an answer: a transport failure, not a function error.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        return self._reply(
            404, {"title": "Missing function", "detail": f"no binary named {name}"}
        )

    @classmethod
    def calls_for(cls, name: str) -> list[object]:
        with cls.lock:
            return [event for n, event in cls.calls if n == name]


def dummy_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("bootstrap", "not a real binary")
    return buf.getvalue()


class EmulatorTest(unittest.TestCase):
    proc: subprocess.Popen
    fake: ThreadingHTTPServer

    @classmethod
    def setUpClass(cls):
        cls.fake = ThreadingHTTPServer(("127.0.0.1", 0), FakeCargoLambda)
        threading.Thread(target=cls.fake.serve_forever, daemon=True).start()

        cls.port = free_port()
        cls.faults_file = os.path.join(tempfile.mkdtemp(), "faults.json")
        env = dict(
            os.environ,
            CARGO_LAMBDA_PORT=str(cls.fake.server_port),
            LOCAL_FAULTS_FILE=cls.faults_file,
            LOCAL_LAMBDA_INIT_SECONDS="0",
            LOCAL_SDK_CALLS_DIR=tempfile.mkdtemp(),
        )
        cls.calls_file = os.path.join(env["LOCAL_SDK_CALLS_DIR"], f"{cls.port}.jsonl")
        env.pop("MOTO_PORT", None)
        cls.proc = subprocess.Popen(
            [sys.executable, EMULATOR, "--port", str(cls.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        cls.output: list[str] = []
        lines: queue.Queue[str] = queue.Queue()

        def pump():
            for line in cls.proc.stdout:
                cls.output.append(line)
                lines.put(line)
            lines.put("")

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + 60
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if line.startswith("emulator ready"):
                break
            if line == "" and (cls.proc.poll() is not None or time.monotonic() > deadline):
                cls.tearDownClass()
                raise RuntimeError("emulator did not start:\n" + "".join(cls.output))

        endpoint = f"http://127.0.0.1:{cls.port}"
        session = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        no_retry = Config(retries={"total_max_attempts": 1})
        cls.iam = session.client("iam", endpoint_url=endpoint)
        cls.lam = session.client("lambda", endpoint_url=endpoint, config=no_retry)
        cls.sfn = session.client("stepfunctions", endpoint_url=endpoint)
        cls.sqs = session.client("sqs", endpoint_url=endpoint)
        cls.ddb = session.client("dynamodb", endpoint_url=endpoint)
        cls.ddb_no_retry = session.client("dynamodb", endpoint_url=endpoint, config=no_retry)
        cls.ddbs = session.client("dynamodbstreams", endpoint_url=endpoint)
        cls.kinesis = session.client("kinesis", endpoint_url=endpoint)

        # moto checks that the role exists in IAM (moto/awslambda/models.py:1753-1767).
        cls.iam.create_role(
            RoleName="x",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )
        code = dummy_zip()
        cls.fn_arn = {}
        for name in ("ok-fn", "boom-fn", "down-fn", "gone-fn", "slow-fn"):
            resp = cls.lam.create_function(
                FunctionName=name,
                Runtime="provided.al2023",
                Role=ROLE_ARN,
                Handler="bootstrap",
                Code={"ZipFile": code},
                Timeout=1 if name == "slow-fn" else 3,
            )
            cls.fn_arn[name] = resp["FunctionArn"]

    @classmethod
    def tearDownClass(cls):
        if cls.proc.poll() is None:
            cls.proc.terminate()
            try:
                cls.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
                cls.proc.wait()
        cls.proc.stdout.close()
        cls.fake.shutdown()
        cls.fake.server_close()

    # ---- helpers ---------------------------------------------------------------------
    _machines = 0

    def machine(self, task: dict) -> str:
        """A state machine: Call (the task) -> Done, with Catch -> Caught."""
        EmulatorTest._machines += 1
        task = dict(task, Type="Task", Next="Done")
        task.setdefault(
            "Catch",
            [
                {
                    "ErrorEquals": ["OutOfStock", "Lambda.ServiceException"],
                    "ResultPath": "$.error",
                    "Next": "Caught",
                }
            ],
        )
        definition = {
            "StartAt": "Call",
            "States": {
                "Call": task,
                "Done": {"Type": "Pass", "End": True},
                "Caught": {"Type": "Pass", "Result": "caught", "ResultPath": "$.path", "End": True},
            },
        }
        resp = self.sfn.create_state_machine(
            name=f"sm-{EmulatorTest._machines}",
            definition=json.dumps(definition),
            roleArn=ROLE_ARN,
            type="STANDARD",
        )
        return resp["stateMachineArn"]

    def run_execution(self, machine_arn: str, execution_input: dict, timeout: float = 60) -> dict:
        start = time.monotonic()
        arn = self.sfn.start_execution(
            stateMachineArn=machine_arn, input=json.dumps(execution_input)
        )["executionArn"]
        while True:
            desc = self.sfn.describe_execution(executionArn=arn)
            if desc["status"] != "RUNNING":
                desc["elapsed"] = time.monotonic() - start
                return desc
            if time.monotonic() - start > timeout:
                self.fail(f"execution {arn} still RUNNING after {timeout}s")
            time.sleep(0.05)

    def integration_task(self, fn: str) -> dict:
        return {
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": fn, "Payload.$": "$.input"},
        }

    def arn_task(self, fn: str) -> dict:
        return {"Resource": self.fn_arn[fn], "InputPath": "$.input", "ResultPath": "$.result"}

    # ---- Step Functions -> Lambda ----------------------------------------------------
    def test_integration_success_wraps_payload(self):
        desc = self.run_execution(self.machine(self.integration_task("ok-fn")), {"input": {"sku": "A"}})
        self.assertEqual(desc["status"], "SUCCEEDED", desc)
        output = json.loads(desc["output"])
        # lambda:invoke yields the Invoke response: the function's answer is under Payload.
        self.assertEqual(output["Payload"], {"hello": {"sku": "A"}})
        self.assertEqual(output["StatusCode"], 200)
        print(f"\n  lambda:invoke output: {desc['output']} ({desc['elapsed']:.2f}s)", file=sys.stderr)

    def test_integration_function_error_is_caught_by_error_type(self):
        desc = self.run_execution(self.machine(self.integration_task("boom-fn")), {"input": {"sku": "B"}})
        self.assertEqual(desc["status"], "SUCCEEDED", desc)
        output = json.loads(desc["output"])
        self.assertEqual(output["path"], "caught")
        self.assertEqual(output["error"]["Error"], "OutOfStock")
        self.assertEqual(json.loads(output["error"]["Cause"])["errorMessage"], "no stock")

    def test_plain_arn_success_is_bare_payload(self):
        desc = self.run_execution(self.machine(self.arn_task("ok-fn")), {"input": {"sku": "C"}})
        self.assertEqual(desc["status"], "SUCCEEDED", desc)
        output = json.loads(desc["output"])
        self.assertEqual(output["result"], {"hello": {"sku": "C"}})

    def test_plain_arn_function_error_is_caught_by_error_type(self):
        desc = self.run_execution(self.machine(self.arn_task("boom-fn")), {"input": {"sku": "D"}})
        self.assertEqual(desc["status"], "SUCCEEDED", desc)
        output = json.loads(desc["output"])
        self.assertEqual(output["path"], "caught")
        self.assertEqual(output["error"]["Error"], "OutOfStock")

    def test_uncaught_function_error_fails_execution_with_error_type(self):
        task = dict(self.integration_task("boom-fn"), Catch=[])
        desc = self.run_execution(self.machine(task), {"input": {}})
        self.assertEqual(desc["status"], "FAILED", desc)
        self.assertEqual(desc.get("error"), "OutOfStock")

    def test_retry_on_error_type(self):
        before = len(FakeCargoLambda.calls_for("boom-fn"))
        task = dict(
            self.integration_task("boom-fn"),
            Retry=[{"ErrorEquals": ["OutOfStock"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1}],
        )
        desc = self.run_execution(self.machine(task), {"input": {"retry": True}})
        self.assertEqual(desc["status"], "SUCCEEDED", desc)
        self.assertEqual(json.loads(desc["output"])["error"]["Error"], "OutOfStock")
        retried = [e for e in FakeCargoLambda.calls_for("boom-fn")[before:] if e == {"retry": True}]
        self.assertEqual(len(retried), 3)  # first attempt + 2 retries

    def test_unreachable_runtime_is_lambda_service_exception(self):
        for task in (self.integration_task("down-fn"), self.arn_task("down-fn")):
            desc = self.run_execution(self.machine(task), {"input": {}})
            self.assertEqual(desc["status"], "SUCCEEDED", desc)
            self.assertEqual(json.loads(desc["output"])["error"]["Error"], "Lambda.ServiceException")

    def test_unnamed_executions_get_distinct_names(self):
        machine = self.machine(self.integration_task("ok-fn"))
        a = self.sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
        b = self.sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
        self.assertNotEqual(a, b)
        self.assertFalse(a.endswith(":None"), a)

    # ---- Lambda Invoke API -----------------------------------------------------------
    def test_invoke_api(self):
        ok = self.lam.invoke(FunctionName="ok-fn", Payload=json.dumps({"n": 1}))
        self.assertNotIn("FunctionError", ok)
        self.assertEqual(json.loads(ok["Payload"].read()), {"hello": {"n": 1}})

        boom = self.lam.invoke(FunctionName="boom-fn", Payload=b"{}")
        self.assertEqual(boom["StatusCode"], 200)
        self.assertEqual(boom["FunctionError"], "Unhandled")
        self.assertEqual(json.loads(boom["Payload"].read())["errorType"], "OutOfStock")

        with self.assertRaises(ClientError) as down:
            self.lam.invoke(FunctionName="down-fn", Payload=b"{}")
        self.assertEqual(down.exception.response["Error"]["Code"], "ServiceException")
        self.assertEqual(down.exception.response["ResponseMetadata"]["HTTPStatusCode"], 500)

        with self.assertRaises(ClientError) as gone:
            self.lam.invoke(FunctionName="gone-fn", Payload=b"{}")
        self.assertEqual(gone.exception.response["Error"]["Code"], "ResourceNotFoundException")

    # ---- event-source mappings do not invoke inline --------------------------------
    def test_sqs_mapping_does_not_invoke(self):
        url = self.sqs.create_queue(QueueName="orders")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        esm = self.lam.create_event_source_mapping(
            EventSourceArn=queue_arn, FunctionName="ok-fn", BatchSize=10
        )
        listed = self.lam.list_event_source_mappings(EventSourceArn=queue_arn)["EventSourceMappings"]
        self.assertEqual([m["UUID"] for m in listed], [esm["UUID"]])
        self.assertEqual(self.lam.get_event_source_mapping(UUID=esm["UUID"])["State"], "Enabled")

        before = len(FakeCargoLambda.calls)
        self.sqs.send_message(QueueUrl=url, MessageBody="order-1")
        time.sleep(0.5)
        self.assertEqual(len(FakeCargoLambda.calls), before, FakeCargoLambda.calls[before:])
        # The message is untouched: first receive is ours.
        msgs = self.sqs.receive_message(
            QueueUrl=url, AttributeNames=["ApproximateReceiveCount"], WaitTimeSeconds=1
        )["Messages"]
        self.assertEqual([m["Body"] for m in msgs], ["order-1"])
        self.assertEqual(msgs[0]["Attributes"]["ApproximateReceiveCount"], "1")

    def test_dynamodb_stream_mapping_does_not_invoke_or_drop_records(self):
        table = self.ddb.create_table(
            TableName="items",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]
        stream_arn = table["LatestStreamArn"]
        self.lam.create_event_source_mapping(
            EventSourceArn=stream_arn, FunctionName="ok-fn", StartingPosition="TRIM_HORIZON"
        )
        before = len(FakeCargoLambda.calls)
        self.ddb.put_item(TableName="items", Item={"pk": {"S": "a"}})
        time.sleep(0.5)
        self.assertEqual(len(FakeCargoLambda.calls), before, FakeCargoLambda.calls[before:])
        shard = self.ddbs.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
        it = self.ddbs.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = self.ddbs.get_records(ShardIterator=it)["Records"]
        self.assertEqual([r["eventName"] for r in records], ["INSERT"])

    def test_kinesis_mapping_does_not_invoke(self):
        self.kinesis.create_stream(StreamName="events", ShardCount=1)
        stream_arn = self.kinesis.describe_stream(StreamName="events")["StreamDescription"]["StreamARN"]
        self.lam.create_event_source_mapping(
            EventSourceArn=stream_arn, FunctionName="ok-fn", StartingPosition="TRIM_HORIZON"
        )
        before = len(FakeCargoLambda.calls)
        self.kinesis.put_record(StreamName="events", Data=b"x", PartitionKey="p")
        time.sleep(0.5)
        self.assertEqual(len(FakeCargoLambda.calls), before, FakeCargoLambda.calls[before:])

    def test_an_event_the_bus_cannot_deliver_goes_to_the_targets_dead_letter_queue(self):
        events = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION).client(
            "events", endpoint_url=self.sqs.meta.endpoint_url
        )
        events.create_event_bus(Name="dlq-bus")
        dlq_url = self.sqs.create_queue(QueueName="dlq-bus-dlq")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        live_url = self.sqs.create_queue(QueueName="dlq-bus-live")["QueueUrl"]
        live_arn = self.sqs.get_queue_attributes(QueueUrl=live_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        gone_arn = live_arn.rsplit(":", 1)[0] + ":dlq-bus-gone"
        rules = {}
        for name, target, dead_letter in (("to-gone", gone_arn, dlq_arn), ("to-live", live_arn, dlq_arn), ("no-dlq", gone_arn, None)):
            rules[name] = events.put_rule(Name=name, EventBusName="dlq-bus", EventPattern=json.dumps({"source": ["test"]}))["RuleArn"]
            spec = {"Id": "q", "Arn": target, "RetryPolicy": {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 0}}
            if dead_letter:
                spec["DeadLetterConfig"] = {"Arn": dead_letter}
            events.put_targets(Rule=name, EventBusName="dlq-bus", Targets=[spec])

        put = events.put_events(Entries=[{"EventBusName": "dlq-bus", "Source": "test", "DetailType": "T", "Detail": json.dumps({"n": 1})}])
        self.assertEqual(put["FailedEntryCount"], 0, "delivery is the bus's business, after PutEvents")
        event_id = put["Entries"][0]["EventId"]

        live = self.sqs.receive_message(QueueUrl=live_url, MaxNumberOfMessages=10)["Messages"]
        self.assertEqual([json.loads(m["Body"])["id"] for m in live], [event_id], "the other rule still delivers")
        dead = self.sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
        self.assertEqual(len(dead), 1, "one dead letter: the rule without a DLQ drops its copy, as AWS does")
        body, attrs = json.loads(dead[0]["Body"]), {k: v["StringValue"] for k, v in dead[0]["MessageAttributes"].items()}
        self.assertEqual(body, json.loads(live[0]["Body"]), "the event as the queue would have had it")
        self.assertEqual(attrs["RULE_ARN"], rules["to-gone"])
        self.assertEqual(attrs["TARGET_ARN"], gone_arn)
        self.assertEqual(attrs["ERROR_CODE"], "NO_RESOURCE")
        self.assertIn("does not exist", attrs["ERROR_MESSAGE"])

    def test_replays_honour_their_window_and_rule_filter(self):
        events = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION).client(
            "events", endpoint_url=self.sqs.meta.endpoint_url
        )
        bus_arn = events.create_event_bus(Name="replay-bus")["EventBusArn"]
        archive_arn = events.create_archive(ArchiveName="replay-archive", EventSourceArn=bus_arn)["ArchiveArn"]
        rule_arns, queue_urls = {}, {}
        for name in ("first", "second"):
            url = self.sqs.create_queue(QueueName=f"replay-{name}")["QueueUrl"]
            queue_arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            rule_arns[name] = events.put_rule(
                Name=f"replay-{name}", EventBusName="replay-bus", EventPattern=json.dumps({"source": ["test"]})
            )["RuleArn"]
            events.put_targets(Rule=f"replay-{name}", EventBusName="replay-bus", Targets=[{"Id": "q", "Arn": queue_arn}])
            queue_urls[name] = url

        def drain(name):
            got = []
            while True:
                msgs = self.sqs.receive_message(QueueUrl=queue_urls[name], MaxNumberOfMessages=10).get("Messages", [])
                if not msgs:
                    return got
                for m in msgs:
                    got.append(json.loads(m["Body"]))
                    self.sqs.delete_message(QueueUrl=queue_urls[name], ReceiptHandle=m["ReceiptHandle"])

        t0 = int(time.time()) - 100
        for i in range(3):
            events.put_events(
                Entries=[{"EventBusName": "replay-bus", "Source": "test", "DetailType": "T", "Detail": json.dumps({"n": i}), "Time": t0 + 10 * i}]
            )
        live = drain("first")
        self.assertEqual(sorted(e["detail"]["n"] for e in live), [0, 1, 2])
        self.assertTrue(all(e["account"] == "123456789012" and "replay-name" not in e for e in live), live)
        drain("second")

        # A window covering the second and third events: [t0 + 5, t0 + 20] with the end exclusive
        # by a hair, as AWS replays events that occurred before EventEndTime.
        events.start_replay(
            ReplayName="window",
            EventSourceArn=archive_arn,
            EventStartTime=t0 + 5,
            EventEndTime=t0 + 20.5,
            Destination={"Arn": bus_arn},
        )
        for name in ("first", "second"):
            replayed = drain(name)
            self.assertEqual(sorted(e["detail"]["n"] for e in replayed), [1, 2], name)
            self.assertTrue(all(e["replay-name"] == "window" and e["account"] == "123456789012" for e in replayed), replayed)
        described = events.describe_replay(ReplayName="window")
        self.assertEqual(described["State"], "COMPLETED")
        self.assertEqual(int(described["EventLastReplayedTime"].timestamp()), t0 + 20)

        # The end is exclusive.
        events.start_replay(
            ReplayName="end-exclusive", EventSourceArn=archive_arn, EventStartTime=t0, EventEndTime=t0 + 10, Destination={"Arn": bus_arn}
        )
        self.assertEqual([e["detail"]["n"] for e in drain("first")], [0])
        drain("second")

        # Limited to one rule: only its queue hears the replay.
        events.start_replay(
            ReplayName="filtered",
            EventSourceArn=archive_arn,
            EventStartTime=t0 - 1,
            EventEndTime=t0 + 100,
            Destination={"Arn": bus_arn, "FilterArns": [rule_arns["second"]]},
        )
        self.assertEqual(drain("first"), [])
        self.assertEqual(sorted(e["detail"]["n"] for e in drain("second")), [0, 1, 2])

    def test_concurrent_conditional_writes_never_lose_an_update(self):
        self.ddb.create_table(
            TableName="atomic",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.ddb.put_item(TableName="atomic", Item={"pk": {"S": "counter"}, "version": {"N": "0"}})
        # A table of some size: moto copies a transaction's tables for rollback
        # (moto/dynamodb/models/__init__.py:613) and restores the copy on failure, so without
        # the lock concurrent transactions fail with 500s and the rollback wipes other
        # writers' updates.
        for chunk in range(0, 1000, 25):
            self.ddb.batch_write_item(RequestItems={"atomic": [
                {"PutRequest": {"Item": {"pk": {"S": f"filler-{i}"}, "data": {"S": "x" * 200}}}}
                for i in range(chunk, chunk + 25)
            ]})
        import concurrent.futures

        rounds, writers = 12, 8
        barrier = threading.Barrier(writers, timeout=60)

        def bump(n):
            # As the inventory service writes: read the version, then one transaction that
            # puts the item with `version = :old` and an outbox item. All writers of a round
            # are released together so their reads see the same version.
            barrier.wait()
            item = self.ddb.get_item(TableName="atomic", Key={"pk": {"S": "counter"}}, ConsistentRead=True)["Item"]
            v, hits = int(item["version"]["N"]), int(item.get("hits", {"N": "0"})["N"])
            try:
                self.ddb.transact_write_items(TransactItems=[
                    {"Put": {
                        "TableName": "atomic",
                        "Item": {"pk": {"S": "counter"}, "version": {"N": str(v + 1)}, "hits": {"N": str(hits + 1)}},
                        "ConditionExpression": "version = :old",
                        "ExpressionAttributeValues": {":old": {"N": str(v)}},
                    }},
                    {"Put": {"TableName": "atomic", "Item": {"pk": {"S": f"outbox#{n}"}}}},
                ])
                return True
            except self.ddb.exceptions.TransactionCanceledException:
                return False

        with concurrent.futures.ThreadPoolExecutor(writers) as pool:
            wins = sum(pool.map(bump, range(rounds * writers)))
        item = self.ddb.get_item(TableName="atomic", Key={"pk": {"S": "counter"}}, ConsistentRead=True)["Item"]
        # Every successful write moved the version by exactly one: none was lost.
        # Every successful write moved the version by exactly one: none was lost.
        self.assertEqual((int(item["version"]["N"]), int(item["hits"]["N"])), (wins, wins))
        self.assertGreater(wins, 0)

    def test_rolled_back_transactions_leave_no_stream_records(self):
        self.ddb.create_table(
            TableName="phantoms",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )
        for chunk in range(0, 1000, 25):
            self.ddb.batch_write_item(RequestItems={"phantoms": [
                {"PutRequest": {"Item": {"pk": {"S": f"filler-{i}"}, "data": {"S": "x" * 200}}}}
                for i in range(chunk, chunk + 25)
            ]})
        arn = self.ddb.describe_table(TableName="phantoms")["Table"]["LatestStreamArn"]
        shard = self.ddbs.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = self.ddbs.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
        seen, stop = [], threading.Event()

        def read():
            it = iterator
            while not stop.is_set():
                out = self.ddbs.get_records(ShardIterator=it)
                seen.extend(r["dynamodb"]["Keys"]["pk"]["S"] for r in out["Records"])
                it = out["NextShardIterator"]

        reader = threading.Thread(target=read)
        reader.start()
        try:
            for n in range(40):
                # The first item's condition fails; moto still applies the second, then rolls
                # both back. In AWS neither is ever visible, on the table or on its stream.
                with self.assertRaises(self.ddb.exceptions.TransactionCanceledException):
                    self.ddb.transact_write_items(TransactItems=[
                        {"ConditionCheck": {"TableName": "phantoms", "Key": {"pk": {"S": "filler-0"}},
                                            "ConditionExpression": "attribute_not_exists(pk)"}},
                        {"Put": {"TableName": "phantoms", "Item": {"pk": {"S": f"phantom-{n}"}}}},
                    ])
            # And the reader still sees what comes after.
            self.ddb.put_item(TableName="phantoms", Item={"pk": {"S": "after"}})
            deadline = time.monotonic() + 10
            while "after" not in seen and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            reader.join()
        self.assertEqual([k for k in seen if k.startswith("phantom")], [])
        self.assertIn("after", seen, "the stream reader lost the stream after a rollback")

    def test_injected_faults_lose_the_answer_after_the_function_ran(self):
        with open(self.faults_file, "w") as f:
            json.dump({"ok-fn": 1}, f)
        calls_before = len([c for c in FakeCargoLambda.calls if c[0] == "ok-fn"])
        with self.assertRaises(self.lam.exceptions.ServiceException):
            self.lam.invoke(FunctionName="ok-fn", Payload=b'{"n": 1}')
        self.assertEqual(len([c for c in FakeCargoLambda.calls if c[0] == "ok-fn"]), calls_before + 1, "the function ran")
        ok = self.lam.invoke(FunctionName="ok-fn", Payload=b'{"n": 2}')
        self.assertNotIn("FunctionError", ok)
        with open(self.faults_file) as f:
            self.assertEqual(json.load(f), {"ok-fn": 0})

    def _invoke(self, fn: str, event: dict) -> tuple[dict, str | None]:
        out = self.lam.invoke(FunctionName=fn, Payload=json.dumps(event).encode())
        return json.loads(out["Payload"].read()), out.get("FunctionError")

    def test_injected_fault_kinds_strike_their_correlation_id_only(self):
        rules = [
            {"kind": kind, "times": 1, "correlation_id": f"cell-{kind}"}
            for kind in ("crash", "error_after", "timeout", "lost")
        ]
        with open(self.faults_file, "w") as f:
            json.dump({"ok-fn": rules}, f)

        def ran(cell: str) -> int:
            return len([e for e in FakeCargoLambda.calls_for("ok-fn") if e.get("correlation_id") == cell])

        # Another order's invocation is not struck.
        doc, error = self._invoke("ok-fn", {"correlation_id": "someone-else"})
        self.assertIsNone(error)
        # Crash before the effect: the function never ran; Lambda's name for a dead runtime.
        doc, error = self._invoke("ok-fn", {"correlation_id": "cell-crash"})
        self.assertEqual((error, doc["errorType"]), ("Unhandled", "Runtime.ExitError"), doc)
        self.assertEqual(ran("cell-crash"), 0, "a crash before the effect runs nothing")
        # Error after the effect: it ran, then failed with an error no Retry names.
        doc, error = self._invoke("ok-fn", {"correlation_id": "cell-error_after"})
        self.assertEqual((error, doc["errorType"]), ("Unhandled", "InjectedFault"), doc)
        self.assertEqual(ran("cell-error_after"), 1)
        # Timeout: it ran, the caller saw Lambda's timeout answer.
        doc, error = self._invoke("ok-fn", {"correlation_id": "cell-timeout"})
        self.assertEqual((error, doc["errorType"]), ("Unhandled", "Sandbox.Timedout"), doc)
        self.assertIn("Task timed out after 3.00 seconds", doc["errorMessage"])
        self.assertEqual(ran("cell-timeout"), 1)
        # Lost: it ran, the caller saw a service error.
        with self.assertRaises(self.lam.exceptions.ServiceException):
            self._invoke("ok-fn", {"correlation_id": "cell-lost"})
        self.assertEqual(ran("cell-lost"), 1)
        # Each rule struck once: the next invocations answer.
        for kind in ("crash", "error_after", "timeout", "lost"):
            doc, error = self._invoke("ok-fn", {"correlation_id": f"cell-{kind}"})
            self.assertIsNone(error, (kind, doc))
        with open(self.faults_file) as f:
            self.assertEqual([r["times"] for r in json.load(f)["ok-fn"]], [0, 0, 0, 0])

    def test_the_bus_can_be_taken_away_and_given_back(self):
        events = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        ).client(
            "events",
            endpoint_url=f"http://127.0.0.1:{self.port}",
            config=Config(retries={"total_max_attempts": 1}),
        )
        entry = {"Source": "t", "DetailType": "d", "Detail": "{}", "EventBusName": "default"}
        with open(self.faults_file, "w") as f:
            json.dump({"eventbridge": "unavailable"}, f)
        with self.assertRaises(ClientError) as caught:
            events.put_events(Entries=[entry])
        self.assertEqual(caught.exception.response["Error"]["Code"], "InternalException")
        self.assertEqual(caught.exception.response["ResponseMetadata"]["HTTPStatusCode"], 500)
        with open(self.faults_file, "w") as f:
            json.dump({}, f)
        self.assertEqual(events.put_events(Entries=[entry])["FailedEntryCount"], 0)

    def test_declared_timeouts_are_enforced_with_lambdas_error_name(self):
        # The first invocation may include the process start: it is not held to the timeout.
        doc, error = self._invoke("slow-fn", {"sleep": 1.5})
        self.assertIsNone(error, doc)
        started = time.monotonic()
        doc, error = self._invoke("slow-fn", {"sleep": 4})
        elapsed = time.monotonic() - started
        self.assertEqual((error, doc["errorType"]), ("Unhandled", "Sandbox.Timedout"), doc)
        self.assertIn("Task timed out after 1.00 seconds", doc["errorMessage"])
        self.assertLess(elapsed, 3.5, "the caller waited past the declared timeout")
        # In a state machine the timeout is named as in AWS, so a Retry on it retries.
        machine = self.machine(
            dict(
                self.integration_task("slow-fn"),
                Catch=[{"ErrorEquals": ["Sandbox.Timedout"], "ResultPath": "$.error", "Next": "Caught"}],
            )
        )
        out = self.run_execution(machine, {"input": {"sleep": 4}})
        self.assertEqual(out["status"], "SUCCEEDED", out)
        self.assertEqual(json.loads(out["output"])["path"], "caught", out)



    def _counter_table(self, name: str) -> None:
        self.ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    def _count(self, table: str, pk: str = "c") -> int:
        item = self.ddb.get_item(TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item") or {}
        return int(item.get("n", {"N": "0"})["N"])

    def test_client_request_tokens_are_idempotent_as_in_dynamodb(self):
        self._counter_table("tokens")
        ddb = self.ddb_no_retry

        def bump(by: int, when: str | None = None) -> list:
            update = {"TableName": "tokens", "Key": {"pk": {"S": "c"}},
                      "UpdateExpression": "ADD n :by", "ExpressionAttributeValues": {":by": {"N": str(by)}}}
            if when:
                update["ConditionExpression"] = when
            return [{"Update": update}]

        # Same token, same request: success, applied once.
        ddb.transact_write_items(TransactItems=bump(1), ClientRequestToken="order-1-reserve")
        ddb.transact_write_items(TransactItems=bump(1), ClientRequestToken="order-1-reserve")
        self.assertEqual(self._count("tokens"), 1)
        # Same token, another request (a retry that carries a new timestamp or event id).
        with self.assertRaises(ddb.exceptions.IdempotentParameterMismatchException):
            ddb.transact_write_items(TransactItems=bump(2), ClientRequestToken="order-1-reserve")
        self.assertEqual(self._count("tokens"), 1)
        # A cancelled transaction committed nothing: its repeat runs again.
        guarded = bump(5, "attribute_exists(ready)")
        with self.assertRaises(ddb.exceptions.TransactionCanceledException):
            ddb.transact_write_items(TransactItems=guarded, ClientRequestToken="order-2")
        ddb.update_item(TableName="tokens", Key={"pk": {"S": "c"}}, UpdateExpression="SET ready = :t",
                        ExpressionAttributeValues={":t": {"BOOL": True}})
        ddb.transact_write_items(TransactItems=guarded, ClientRequestToken="order-2")
        self.assertEqual(self._count("tokens"), 6)
        # Without a token every request is a new one.
        ddb.transact_write_items(TransactItems=bump(1))
        ddb.transact_write_items(TransactItems=bump(1))
        self.assertEqual(self._count("tokens"), 8)

    def test_concurrent_writes_to_one_item_meet_transaction_conflicts(self):
        """Transactions on one hot item, and single writes beside them, conflict as in AWS;
        whatever was accepted is counted exactly once."""
        import concurrent.futures

        self._counter_table("hot")
        ddb = self.ddb_no_retry
        accepted, reasons, errors = [0], set(), set()
        lock = threading.Lock()
        writers = 12

        def write(n: int, barrier: threading.Barrier) -> None:
            barrier.wait()
            try:
                if n % 3 == 0:
                    ddb.update_item(TableName="hot", Key={"pk": {"S": "c"}}, UpdateExpression="ADD n :one",
                                    ExpressionAttributeValues={":one": {"N": "1"}})
                else:
                    ddb.transact_write_items(TransactItems=[
                        {"Update": {"TableName": "hot", "Key": {"pk": {"S": "c"}}, "UpdateExpression": "ADD n :one",
                                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                        {"Put": {"TableName": "hot", "Item": {"pk": {"S": f"outbox-{n}-{time.monotonic_ns()}"}}}},
                    ])
            except ClientError as e:
                with lock:
                    errors.add(e.response["Error"]["Code"])
                    reasons.update(r.get("Code") for r in e.response.get("CancellationReasons", []))
                return
            with lock:
                accepted[0] += 1

        with concurrent.futures.ThreadPoolExecutor(writers) as pool:
            for _ in range(30):
                barrier = threading.Barrier(writers, timeout=60)
                list(pool.map(lambda n: write(n, barrier), range(writers)))
                if "TransactionConflict" in reasons and "TransactionConflictException" in errors:
                    break
        self.assertIn("TransactionConflict", reasons, "no transaction met another on the hot item")
        self.assertIn("TransactionConflictException", errors, "no single write met a transaction")
        self.assertLessEqual(errors, {"TransactionCanceledException", "TransactionConflictException"})
        self.assertEqual(self._count("hot"), accepted[0])

    def test_calls_naming_a_function_are_recorded_once_each(self):
        """The recorder behind local/sdk_calls.py: a client that names itself as a function
        (`app/<name>` in its user agent, as shared::aws::sdk_config does) has each distinct
        (function, action, resource) written once; an anonymous client nothing."""
        endpoint = f"http://127.0.0.1:{self.port}"
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        as_function = session.client("dynamodb", endpoint_url=endpoint, config=Config(user_agent_appid="orders-create"))
        self.ddb.create_table(
            TableName="recorded", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        )
        for n in range(3):
            as_function.put_item(TableName="recorded", Item={"pk": {"S": f"k{n}"}})
        as_function.transact_write_items(TransactItems=[
            {"Update": {"TableName": "recorded", "Key": {"pk": {"S": "k0"}}, "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"N": "1"}}}},
            {"ConditionCheck": {"TableName": "recorded", "Key": {"pk": {"S": "k1"}},
                                "ConditionExpression": "attribute_exists(pk)"}},
        ])
        self.ddb.get_item(TableName="recorded", Key={"pk": {"S": "k0"}})  # anonymous: not recorded
        with open(self.calls_file, encoding="utf-8") as f:
            recorded = [json.loads(line) for line in f if "recorded" in line]
        self.assertEqual(
            sorted((c["function"], c["action"], c["resource"]) for c in recorded),
            [("orders-create", "dynamodb:ConditionCheckItem", "recorded"),
             ("orders-create", "dynamodb:PutItem", "recorded"),
             ("orders-create", "dynamodb:UpdateItem", "recorded")],
        )


class BoundedStateTest(unittest.TestCase):
    """An emulator whose shard iterators live 2 seconds instead of AWS's 15 minutes, and
    which keeps the history of 2 closed executions per state machine."""

    def test_iterators_expire_and_polling_an_idle_stream_keeps_memory_bounded(self):
        port = free_port()
        env = dict(os.environ, LOCAL_SHARD_ITERATOR_SECONDS="2", LOCAL_SFN_HISTORIES="2")
        env.pop("MOTO_PORT", None)
        proc = subprocess.Popen([sys.executable, EMULATOR, "--port", str(port)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
        try:
            while not lines.get(timeout=60).startswith("emulator ready"):
                pass
            session = boto3.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name=REGION)
            ddb = session.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}")
            streams = session.client("dynamodbstreams", endpoint_url=f"http://127.0.0.1:{port}")
            arn = ddb.create_table(
                TableName="polled", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
            )["TableDescription"]["LatestStreamArn"]
            shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
            first = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
            # A poller on an idle stream: every read hands out a new iterator. When each was
            # received (time.monotonic is the machine's one monotonic clock, the emulator's too).
            iterator, deadline, handed_out = first, time.monotonic() + 6, []
            while time.monotonic() < deadline:
                iterator = streams.get_records(ShardIterator=iterator)["NextShardIterator"]
                handed_out.append(time.monotonic())
            with self.assertRaises(ClientError) as ctx:
                streams.get_records(ShardIterator=first)
            self.assertEqual(ctx.exception.response["Error"]["Code"], "ExpiredIteratorException")
            ddb.put_item(TableName="polled", Item={"pk": {"S": "after"}})
            records = streams.get_records(ShardIterator=iterator)["Records"]  # the newest still works
            self.assertEqual([r["dynamodb"]["Keys"]["pk"]["S"] for r in records], ["after"])

            proc.send_signal(signal.SIGUSR1)
            census = ""
            while "WARNING memory census" not in census:
                census = lines.get(timeout=30)
            held = json.loads(census.split("; state ", 1)[1].split("; estimated", 1)[0])["shard_iterators"]
            # Iterators live 2 s here, and each new one drops those past their time: what is
            # kept was handed out in the loop's last 2 s (counted with 1.5 s more, for the
            # reads' own latency on a busy machine), plus the one read after it. Without
            # expiry all 6 s of them would be kept. How many that is depends on the machine's
            # speed, so the bound is counted, never a constant.
            recent = sum(1 for t in handed_out if t >= handed_out[-1] - 3.5)
            self.assertLessEqual(held, recent + 2, f"{len(handed_out)} handed out, {recent} in the last 3.5 s; {census}")
            self.assertLess(held, len(handed_out), census)
            self.assertGreater(held, 0, census)

            # Closed executions beyond the newest 2 keep their name and description only.
            sfn = session.client("stepfunctions", endpoint_url=f"http://127.0.0.1:{port}")
            machine = sfn.create_state_machine(
                name="passes", roleArn=ROLE_ARN,
                definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
            )["stateMachineArn"]
            arns = []
            for n in range(5):
                arns.append(sfn.start_execution(stateMachineArn=machine, name=f"run-{n}", input="{}")["executionArn"])
                wait = time.monotonic() + 10
                while sfn.describe_execution(executionArn=arns[-1])["status"] == "RUNNING" and time.monotonic() < wait:
                    time.sleep(0.05)
            histories = [len(sfn.get_execution_history(executionArn=a)["events"]) for a in arns]
            self.assertEqual(histories[:2], [0, 0], histories)
            self.assertTrue(all(h > 0 for h in histories[3:]), histories)
            self.assertEqual(sfn.describe_execution(executionArn=arns[0])["status"], "SUCCEEDED")
            with self.assertRaises(sfn.exceptions.ExecutionAlreadyExists):
                sfn.start_execution(stateMachineArn=machine, name="run-0", input="{}")
            # A task failure is looked for in closed executions too; compacted ones have no
            # environment left and must be passed over (it was a 500), not break the search.
            with self.assertRaises(sfn.exceptions.InvalidToken):
                sfn.send_task_failure(taskToken="no-such-token", error="Rejected")
        finally:
            proc.terminate()
            proc.wait(timeout=15)


class ShutdownTest(unittest.TestCase):
    def test_sigterm_stops_cleanly(self):
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, EMULATOR, "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            line = proc.stdout.readline()
            while line and not line.startswith("emulator ready"):
                line = proc.stdout.readline()
            self.assertTrue(line.startswith("emulator ready"), line)
            self.assertIn(f":{port} ", line)
            proc.terminate()
            self.assertEqual(proc.wait(timeout=15), 0)
            self.assertIn("emulator stopped", proc.stdout.read())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()


def emulator_module():
    """local/emulator.py imported into this process: importing it patches nothing (only
    apply_patches does, and main calls it)."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import emulator

    return emulator


class MotoVersionTest(unittest.TestCase):
    """The emulator runs only on the moto local/requirements.txt pins."""

    def test_a_moto_other_than_the_pinned_one_is_refused(self):
        emulator = emulator_module()
        pinned = emulator.pinned_moto_version()
        self.assertEqual(emulator.require_pinned_moto(installed=pinned), pinned)
        other = pinned + ".post1"
        with self.assertRaises(emulator.MotoVersionError) as ctx:
            emulator.require_pinned_moto(installed=other)
        message = str(ctx.exception)
        for part in (f"moto {other} is installed", f"pins moto {pinned}", "pip install -r", "requirements.txt",
                     "MOTO_SOURCES"):
            self.assertIn(part, message)

    def test_the_installed_moto_is_the_pinned_one(self):
        emulator = emulator_module()
        emulator.require_pinned_moto()

    def test_the_pin_is_read_from_the_requirements_file(self):
        emulator = emulator_module()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "requirements.txt")

            def pin(text: str) -> str:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
                return emulator.pinned_moto_version(Path(path))

            pinned = pin("# moto==0.0.1 in a comment\nmotor==2.0\nmoto[server, sqs]==9.8.7\nboto3==1\n")
            self.assertEqual(pinned, "9.8.7")
            self.assertEqual(pin('moto == 1.2.3 ; python_version >= "3.9"  # why\n'), "1.2.3")
            for refused in ("boto3==1.0\n", "moto>=5\n", "moto==1.0\nmoto[sqs]==1.1\n"):
                with self.assertRaises(emulator.MotoVersionError, msg=refused):
                    pin(refused)
            with self.assertRaises(emulator.MotoVersionError) as ctx:
                emulator.require_pinned_moto(installed="1.0", requirements=Path(tmp, "absent.txt"))
            self.assertIn("cannot read the moto pin", str(ctx.exception))

    def test_the_emulator_refuses_to_start_on_another_moto(self):
        emulator = emulator_module()
        import moto

        stderr = io.StringIO()
        with mock.patch.object(moto, "__version__", "0.0.1"), contextlib.redirect_stderr(stderr):
            self.assertEqual(emulator.main(["--port", "0"]), 2)
        self.assertIn("emulator: refusing to start: moto 0.0.1 is installed", stderr.getvalue())
        with mock.patch.object(moto, "__version__", "0.0.1"), self.assertRaises(emulator.MotoVersionError):
            emulator.apply_patches("http://127.0.0.1:9", 1.0)


class MotoSourcesTest(unittest.TestCase):
    """Each moto function a patch replaces or relies on still has the source the patch was
    written against (MOTO_SOURCES in local/emulation/), so a moto upgrade fails here, naming
    the patches that need a look, instead of in the stack."""

    def test_every_patch_lists_the_moto_it_relies_on(self):
        emulator = emulator_module()
        with open(EMULATOR, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        apply = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "apply_patches")
        patches = [n.func.id for n in ast.walk(apply) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
        patches = [name for name in patches if name != "require_pinned_moto"]
        self.assertEqual(sorted(emulator.MOTO_SOURCES), sorted(patches),
                         "MOTO_SOURCES must have one entry per patch apply_patches applies")
        for patch, sources in emulator.MOTO_SOURCES.items():
            self.assertTrue(sources, f"{patch} lists no moto source")
            for path, digest in sources.items():
                self.assertTrue(path.startswith("moto."), path)
                self.assertRegex(digest, r"^[0-9a-f]{64}$", path)

    def test_every_patched_moto_source_is_the_one_its_patch_was_written_against(self):
        # A fresh interpreter, in which nothing has patched moto: each path names moto's own.
        code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import emulator, moto; "
                "print(json.dumps({'moto': moto.__version__, 'pinned': emulator.pinned_moto_version(), "
                "'changed': emulator.changed_moto_sources()}))")
        run = subprocess.run([sys.executable, "-c", code, HERE], capture_output=True, text=True, timeout=300)
        self.assertEqual(run.returncode, 0, run.stderr)
        report = json.loads(run.stdout.strip().splitlines()[-1])
        changed = report["changed"]
        if changed:
            lines = [
                f"  {c['patch']} relies on {c['path']}: {c['problem']}"
                + (f" (its source's sha256 is now {c['sha256']})" if c["sha256"] else "")
                for c in changed
            ]
            self.fail(
                f"{len(changed)} moto source(s) differ from MOTO_SOURCES in local/emulation/ (moto {report['moto']} "
                f"installed, {report['pinned']} pinned). Each patch named needs a look: does it "
                "still replace what it meant to, with moto's behaviour otherwise kept? Then record the new "
                "sha256, or the path that replaced a gone one.\n" + "\n".join(lines)
            )

    def test_a_changed_or_missing_source_is_named_with_its_patch(self):
        emulator = emulator_module()
        real = emulator.moto_source_sha256("moto.backends.list_of_moto_modules")
        changed = emulator.changed_moto_sources({
            "some_patch": {"moto.backends.list_of_moto_modules": real, "moto.backends.no_such_function": "0" * 64},
            "another_patch": {"moto.backends.list_of_moto_modules": "0" * 64, "moto.no_such_module.f": "0" * 64},
        })
        self.assertEqual(
            [(c["patch"], c["path"], c["problem"].split(" (")[0], c["sha256"]) for c in changed],
            [("some_patch", "moto.backends.no_such_function", "cannot be resolved or read", None),
             ("another_patch", "moto.backends.list_of_moto_modules", "changed", real),
             ("another_patch", "moto.no_such_module.f", "cannot be resolved or read", None)],
        )


class TaskAnswerBeforeWaitTest(unittest.TestCase):
    """Patch 4d: an answer sent before the heartbeat wait starts completes the task."""

    SCRIPT = textwrap.dedent("""
        import sys, time
        sys.path.insert(0, {local!r})
        import emulator
        if {patched}:
            emulator.keep_task_answers_sent_before_the_wait()
        from moto.stepfunctions.parser.asl.eval.callback.callback import (
            CallbackEndpoint, CallbackOutcomeSuccess)
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
            StateTaskServiceCallback)
        class Env:
            def is_running(self):
                return True
        endpoint = CallbackEndpoint("token-2")
        # The scorer answers while the Lambda's answer is still being processed...
        endpoint.notify(CallbackOutcomeSuccess(callback_id="token-2", output="{{}}"))
        # ... and only then does the state set up its heartbeat and wait.
        heartbeat = endpoint.setup_heartbeat_endpoint(heartbeat_seconds=2)
        started = time.monotonic()
        outcome = StateTaskServiceCallback._wait_for_task_token_heartbeat(None, Env(), endpoint, heartbeat)
        print(type(outcome).__name__, round(time.monotonic() - started, 1))
    """)

    def run_wait(self, patched: bool) -> str:
        script = self.SCRIPT.format(local=HERE, patched=patched)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout.split()[0]

    def test_an_answer_sent_before_the_wait_completes_the_task(self):
        self.assertEqual(self.run_wait(patched=True), "CallbackOutcomeSuccess")

    def test_without_the_patch_moto_waits_out_the_heartbeat(self):
        self.assertEqual(self.run_wait(patched=False), "HeartbeatTimedOut")


if __name__ == "__main__":
    unittest.main()
