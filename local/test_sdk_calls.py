#!/usr/bin/env python3
"""Tests for local/sdk_calls.py: which IAM actions a request needs, and the check of a
function's recorded calls against the real infra/declaration.json.

    .venv/bin/python local/test_sdk_calls.py [-v]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdk_calls  # noqa: E402
from declaration import load  # noqa: E402

DECL = load()
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:commerce-place-order"


def call(function: str, action: str, resource: str) -> dict:
    return {"function": function, "action": action, "resource": resource}


class ActionsOfARequest(unittest.TestCase):
    def test_a_transaction_needs_each_items_own_action_on_its_table(self):
        body = {"TransactItems": [
            {"Put": {"TableName": "commerce-orders"}},
            {"Update": {"TableName": "commerce-idempotency"}},
            {"ConditionCheck": {"TableName": "commerce-inventory"}},
            {"Delete": {"TableName": "commerce-idempotency"}},
        ]}
        self.assertEqual(sdk_calls.calls_of("DynamoDB_20120810.TransactWriteItems", body), [
            ("dynamodb:PutItem", "commerce-orders"),
            ("dynamodb:UpdateItem", "commerce-idempotency"),
            ("dynamodb:ConditionCheckItem", "commerce-inventory"),
            ("dynamodb:DeleteItem", "commerce-idempotency"),
        ])

    def test_a_batch_read_needs_the_batch_action_on_every_table_it_names(self):
        body = {"RequestItems": {"commerce-inventory": {}, "commerce-fraud": {}}}
        self.assertEqual(sorted(sdk_calls.calls_of("DynamoDB_20120810.BatchGetItem", body)), [
            ("dynamodb:BatchGetItem", "commerce-fraud"), ("dynamodb:BatchGetItem", "commerce-inventory")])

    def test_task_token_answers_name_no_resource_and_executions_name_their_machine(self):
        self.assertEqual(sdk_calls.calls_of("AWSStepFunctions.SendTaskSuccess", {"taskToken": "t"}),
                         [("states:SendTaskSuccess", "*")])
        execution = MACHINE.replace(":stateMachine:", ":execution:") + ":01J"
        self.assertEqual(sdk_calls.calls_of("AWSStepFunctions.DescribeExecution", {"executionArn": execution}),
                         [("states:DescribeExecution", "stateMachine:commerce-place-order")])

    def test_bus_stream_and_queue_are_named_by_their_physical_names(self):
        self.assertEqual(sdk_calls.calls_of("AWSEvents.PutEvents", {"Entries": [{"EventBusName": "commerce"}] * 3}),
                         [("events:PutEvents", "commerce")])
        self.assertEqual(sdk_calls.calls_of("AWSEvents.DescribeEventBus", {"Name": "commerce"}),
                         [("events:DescribeEventBus", "commerce")])
        self.assertEqual(sdk_calls.calls_of("DynamoDB_20120810.DescribeTable", {"TableName": "commerce-orders"}),
                         [("dynamodb:DescribeTable", "commerce-orders")])
        self.assertEqual(sdk_calls.calls_of("Kinesis_20131202.PutRecord", {"StreamName": "commerce-transactions"}),
                         [("kinesis:PutRecord", "commerce-transactions")])
        self.assertEqual(sdk_calls.calls_of("AmazonSQS.SendMessage", {"QueueUrl": "http://h/123/commerce-x"}),
                         [("sqs:SendMessage", "commerce-x")])
        self.assertEqual(sdk_calls.calls_of("AmazonSQS.SendMessageBatch", {"QueueUrl": "http://h/123/commerce-x"}),
                         [("sqs:SendMessage", "commerce-x")])

    def test_an_unknown_service_is_named_as_such(self):
        self.assertEqual(sdk_calls.calls_of("AmazonSSM.GetParameter", {}), [("unknown:AmazonSSM.GetParameter", "*")])


class CheckAgainstTheDeclaration(unittest.TestCase):
    def test_the_declared_calls_of_the_saga_functions_pass(self):
        calls = [
            call("orders-create", "dynamodb:PutItem", "commerce-orders"),
            call("orders-create", "dynamodb:BatchGetItem", "commerce-inventory"),
            call("orders-start-saga", "states:StartExecution", "stateMachine:commerce-place-order"),
            call("fraud-score", "states:SendTaskSuccess", "*"),
            call("outbox-relay", "events:PutEvents", "commerce"),
            call("payments-request-fraud-check", "kinesis:PutRecord", "commerce-transactions"),
            call("health-check", "dynamodb:DescribeTable", "commerce-orders"),
            call("health-check", "events:DescribeEventBus", "commerce"),
        ]
        self.assertEqual(sdk_calls.violations(calls, DECL), [])

    def test_an_action_the_function_is_not_granted_is_reported(self):
        found = sdk_calls.violations([call("orders-get", "dynamodb:PutItem", "commerce-orders")], DECL)
        self.assertEqual(found, ["orders-get: dynamodb:PutItem on commerce-orders is not granted by infra/declaration.json"])

    def test_another_services_table_is_reported(self):
        self.assertEqual(len(sdk_calls.violations([call("users-get", "dynamodb:GetItem", "commerce-orders")], DECL)), 1)

    def test_a_task_token_answer_from_a_function_without_the_machine_is_reported(self):
        self.assertEqual(len(sdk_calls.violations([call("orders-get", "states:SendTaskFailure", "*")], DECL)), 1)

    def test_another_state_machine_bus_or_stream_is_reported(self):
        found = sdk_calls.violations([
            call("orders-start-saga", "states:StartExecution", "stateMachine:commerce-cancel-order"),
            call("orders-create", "events:PutEvents", "commerce"),
            call("payments-authorize", "kinesis:PutRecord", "commerce-transactions"),
            call("orders-create", "unknown:AmazonSSM.GetParameter", "*"),
        ], DECL)
        self.assertEqual(len(found), 4, found)

    def test_calls_of_tools_and_tests_are_not_functions_calls(self):
        self.assertEqual(sdk_calls.violations([call("commerce-ops", "dynamodb:Scan", "commerce-orders")], DECL), [])

    def test_a_run_that_recorded_nothing_fails_the_check(self):
        with tempfile.TemporaryDirectory() as d:
            self.assertEqual(sdk_calls.check(Path(d), DECL), 1)

    def test_a_recorded_violation_fails_the_check_and_a_clean_run_passes(self):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "5000.jsonl"
            path.write_text(json.dumps(call("orders-get", "dynamodb:GetItem", "commerce-orders")) + "\n")
            self.assertEqual(sdk_calls.check(Path(d), DECL), 0)
            with open(path, "a") as f:
                f.write(json.dumps(call("orders-get", "dynamodb:DeleteItem", "commerce-orders")) + "\n")
            self.assertEqual(sdk_calls.check(Path(d), DECL), 1)


if __name__ == "__main__":
    unittest.main()
