#!/usr/bin/env python3
"""Tests of local/lambda_gate.py: the bound that keeps cargo lambda watch's per-function
queue (100, cargo-lambda 1.9.2 state.rs) from filling up and deadlocking the stack.

    .venv/bin/python local/test_lambda_gate.py
"""

from __future__ import annotations

import threading
import time
import unittest

from lambda_gate import CARGO_LAMBDA_QUEUE, GATE, Busy, Gate


class GateTest(unittest.TestCase):
    def test_the_three_callers_together_stay_below_cargo_lambdas_queue(self):
        # The gateway, the emulator and the pollers each hold at most INFLIGHT places.
        self.assertLess(3 * GATE.inflight, CARGO_LAMBDA_QUEUE)

    def test_no_more_than_inflight_invocations_of_one_function_at_once(self):
        gate, running, most, guard = Gate(inflight=4), [0], [0], threading.Lock()

        def call():
            with gate.entry("orders-get", timeout=10):
                with guard:
                    running[0] += 1
                    most[0] = max(most[0], running[0])
                time.sleep(0.05)
                with guard:
                    running[0] -= 1

        threads = [threading.Thread(target=call) for _ in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(most[0], 4)
        self.assertEqual(running[0], 0)

    def test_other_functions_are_not_held_up_by_a_full_one(self):
        gate = Gate(inflight=1)
        with gate.entry("orders-get", timeout=1):
            with gate.entry("users-get", timeout=0.1) as left:
                self.assertGreater(left, 0)

    def test_a_caller_waits_its_timeout_then_gets_busy_and_the_place_is_not_lost(self):
        gate = Gate(inflight=1)
        with gate.entry("orders-get", timeout=1):
            started = time.monotonic()
            with self.assertRaises(Busy):
                with gate.entry("orders-get", timeout=0.2):
                    pass
            self.assertGreaterEqual(time.monotonic() - started, 0.2)
        with gate.entry("orders-get", timeout=0.1) as left:  # released on the way out
            self.assertLessEqual(left, 0.1)


if __name__ == "__main__":
    unittest.main()
