#!/usr/bin/env python3
"""Tests for the benchmarks' events (local/bench/events.py) and AWS stub (aws_stub.py).

    .venv/bin/python local/bench/test_events.py [-v]
"""

from __future__ import annotations

import json
import os
import sys
import unittest
from pathlib import Path
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import events  # noqa: E402
from aws_stub import AwsStub  # noqa: E402
from declaration import load  # noqa: E402

DECL = load()
ROOT = Path(__file__).resolve().parents[2]


class Events(unittest.TestCase):
    def test_every_declared_function_gets_an_event_of_its_kind(self):
        for name, spec in DECL["functions"].items():
            event, accept_errors = events.event_for(spec, name)
            kind = events.kind(spec)
            with self.subTest(function=name, kind=kind):
                if kind == "route":
                    self.assertEqual(event["routeKey"], spec["route"])
                    self.assertNotIn("{", event["rawPath"])  # every path parameter filled
                    self.assertEqual(event["requestContext"]["http"]["method"], spec["route"].split()[0])
                    self.assertFalse(accept_errors)
                elif kind == "consumer" and name == "fraud-score":
                    self.assertEqual(len(event["Records"]), 100)  # its mapping's batch size
                elif kind == "consumer":
                    self.assertEqual(event, {"Records": []})
                else:
                    # What its Task state gives it: the order, and what else the state passes.
                    self.assertEqual(event["order_id"], events.ORDER_ID)
                    self.assertEqual(event["correlation_id"], "bench-correlation")
                    self.assertTrue(accept_errors)

    def test_the_scorers_batch_holds_records_of_the_streams_schema(self):
        import base64
        schema = json.loads((ROOT / "events/schemas/TransactionRecord.json").read_text())
        batch = events.kinesis_batch(100, 10)["Records"]
        self.assertEqual(len({r["kinesis"]["partitionKey"] for r in batch}), 10)
        for record in batch:
            data = json.loads(base64.b64decode(record["kinesis"]["data"]))
            self.assertEqual(record["kinesis"]["partitionKey"], data["user_id"])
            self.assertEqual(set(data) - set(schema["properties"]), set())
            for field in schema["required"]:
                self.assertIn(field, data)
            self.assertRegex(data["order_id"], schema["$defs"]["OrderId"]["pattern"])
            self.assertRegex(data["payment_fingerprint"], schema["properties"]["payment_fingerprint"]["pattern"])

    def test_only_a_public_route_comes_without_identity(self):
        for name, spec in DECL["functions"].items():
            if events.kind(spec) == "route":
                event, _ = events.event_for(spec, name)
                with self.subTest(function=name):
                    self.assertEqual("authorizer" in event["requestContext"], spec.get("auth") != "none")

    def test_a_step_gets_its_task_states_payload(self):
        self.assertEqual(events.step_event("inventory-reserve", DECL), {
            "order_id": events.ORDER_ID, "items": events.EXECUTION["items"], "correlation_id": "bench-correlation"})
        fraud = events.step_event("payments-request-fraud-check", DECL)
        self.assertEqual((fraud["task_token"], fraud["user_id"], fraud["total"]),
                         ("bench-task-token", events.BENCH_USER, events.EXECUTION["total"]))
        self.assertEqual(events.step_event("orders-hold-for-review", DECL)["attempt"], 0)
        self.assertEqual(events.step_event("orders-reject", DECL)["reason"], "OUT_OF_STOCK")
        with self.assertRaises(KeyError):
            events.step_event("users-get", DECL)

    def test_bodies_are_json_for_the_routes_that_take_one(self):
        event = events.http_event("POST /orders", public=False)
        self.assertEqual(json.loads(event["body"])["items"][0]["sku"], "BENCH-1")
        self.assertEqual(event["headers"]["idempotency-key"], "bench-key-1")


class Stub(unittest.TestCase):
    def call(self, url: str, target: str, body: dict) -> tuple[int, dict]:
        req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def test_answers_by_target_and_counts_calls(self):
        with AwsStub() as stub:
            self.assertEqual(self.call(stub.url, "DynamoDB_20120810.GetItem", {"TableName": "t"}), (200, {}))
            status, table = self.call(stub.url, "DynamoDB_20120810.DescribeTable", {"TableName": "t"})
            self.assertEqual((status, table["Table"]["TableStatus"]), (200, "ACTIVE"))
            status, started = self.call(stub.url, "AWSStepFunctions.StartExecution",
                                        {"stateMachineArn": "arn:aws:states:r:1:stateMachine:m", "name": "o1"})
            self.assertEqual(started["executionArn"], "arn:aws:states:r:1:execution:m:o1")
            self.assertEqual(self.call(stub.url, "AmazonSSM.GetParameter", {})[0], 400)
            self.assertEqual(stub.calls["DynamoDB_20120810.GetItem"], 1)
            self.assertEqual(sum(stub.calls.values()), 4)


if __name__ == "__main__":
    unittest.main()
