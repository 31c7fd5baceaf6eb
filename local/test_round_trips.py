#!/usr/bin/env python3
"""Tests of local/round_trips.py: what it counts, and that its check can fail."""

from __future__ import annotations

import json
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import round_trips  # noqa: E402

DECL = {"functions": {
    "orders-get": {"route": "GET /orders/{order_id}"},
    "orders-confirm": {},
    "notifications-send": {"event_sources": [{"queue": "notifications"}]},
}}
BUDGET = {"orders-get": (1, "a get"), "orders-confirm": (2, "read, transaction"),
          "notifications-send": (2, "claim, transaction")}


def api(function: str, status: int, requests: int) -> str:
    return json.dumps({"_aws": {}, "Function": function, "status": status, "DynamoDbRequests": requests})


def task(function: str, requests: int, records: int, failed: int = 0) -> str:
    return json.dumps({"_aws": {}, "Function": function, "DynamoDbRequests": requests,
                       "Records": records, "FailedRecords": failed})


class RoundTripsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="round-trips-")
        self.log = Path(self.dir.name) / "cargo-lambda.log"
        self.saved = round_trips.BUDGET
        round_trips.BUDGET = BUDGET

    def tearDown(self):
        round_trips.BUDGET = self.saved
        self.dir.cleanup()

    def measure(self, *lines: str) -> dict:
        # Function lines are mixed with cargo lambda's own and with tracing's JSON lines.
        self.log.write_text("\n".join(["INFO cargo lambda: compiling", *lines,
                                       '{"level":"INFO","fields":{"message":"request completed"}}']) + "\n")
        kinds = {f: round_trips.kind(s) for f, s in DECL["functions"].items()}
        return round_trips.counts(round_trips.emf_lines(self.log), kinds)

    def test_the_usual_count_of_successful_invocations_meets_the_budget(self):
        measured = self.measure(
            api("orders-get", 200, 1), api("orders-get", 200, 1), api("orders-get", 200, 4),  # a retry
            api("orders-get", 404, 1),  # refused: not counted
            task("orders-confirm", 2, 1), task("orders-confirm", 9, 1, failed=1),
            task("notifications-send", 6, 3),  # a batch of 3: 2 per record
            task("notifications-send", 2, 1), task("notifications-send", 0, 0))
        self.assertEqual(measured["orders-get"]["ok"], {1: 2, 4: 1})
        self.assertEqual(measured["orders-get"]["other"], 1)
        self.assertEqual(measured["orders-confirm"]["ok"], {2: 1})
        self.assertEqual(measured["notifications-send"]["ok"], {2: 2})
        self.assertEqual(round_trips.check(measured, DECL), [])
        self.assertIn("| notifications-send | consumer | 2 per record |", round_trips.table(measured, DECL))

    def test_an_unmeasured_function_fails_the_check(self):
        measured = self.measure(api("orders-get", 200, 1), task("orders-confirm", 2, 1),
                                task("notifications-send", 3, 1, failed=1))
        problems = round_trips.check(measured, DECL)
        self.assertEqual(len(problems), 1)
        self.assertIn("notifications-send: never measured succeeding", problems[0])

    def test_an_operation_over_its_budget_fails_the_check(self):
        measured = self.measure(api("orders-get", 200, 2), api("orders-get", 200, 2), api("orders-get", 200, 1),
                                task("orders-confirm", 2, 1), task("notifications-send", 2, 1))
        problems = round_trips.check(measured, DECL)
        self.assertEqual(len(problems), 1)
        self.assertIn("orders-get: usually 2 DynamoDB requests, its budget is 1", problems[0])

    def test_the_relay_is_counted_per_invocation_that_wrote(self):
        kinds = {"outbox-relay": "consumer"}
        self.log.write_text("\n".join([task("outbox-relay", 0, 7), task("outbox-relay", 1, 3),
                                        task("outbox-relay", 1, 12), task("outbox-relay", 2, 30)]) + "\n")
        measured = round_trips.counts(round_trips.emf_lines(self.log), kinds)
        self.assertEqual(measured["outbox-relay"]["ok"], {1: 2, 2: 1})

    def test_a_function_without_a_budget_fails_the_check(self):
        decl = {"functions": dict(DECL["functions"], **{"users-get": {"route": "GET /users/{id}"}})}
        measured = self.measure(api("orders-get", 200, 1), task("orders-confirm", 2, 1),
                                task("notifications-send", 2, 1), api("users-get", 200, 1))
        self.assertEqual(round_trips.check(measured, decl), ["users-get: no budget in local/round_trips.py"])


if __name__ == "__main__":
    unittest.main()
