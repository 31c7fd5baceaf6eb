#!/usr/bin/env python3
"""local/payment_provider.py: each correction to localstripe answers as Stripe does, and each
injected fault does what its name says. Starts the provider on a free loopback port.

    .venv/bin/python local/test_payment_provider.py [-v]
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEY = "sk_test_local"
HOLD = 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Provider:
    def __init__(self):
        self.faults = Path(tempfile.mkdtemp(prefix="provider-faults-"))
        self.port = free_port()
        env = dict(os.environ, LOCAL_PROVIDER_FAULTS_DIR=str(self.faults), LOCAL_PROVIDER_HOLD_SECONDS=str(HOLD))
        self.proc = subprocess.Popen([sys.executable, str(HERE / "payment_provider.py"), "--port", str(self.port)],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the payment provider did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)

    def call(self, path: str, form: dict | None = None, key: str | None = None, timeout: float = 10,
             method: str | None = None) -> tuple[int, dict, dict]:
        data = urllib.parse.urlencode(form or {}).encode() if form is not None or method == "POST" else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method)
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{KEY}:".encode()).decode())
        if key:
            req.add_header("Idempotency-Key", key)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.load(r), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e), dict(e.headers)

    def intent(self, order: str, pm: str = "pm_card_visa", amount: int = 1500) -> dict:
        status, body, _ = self.call("/v1/payment_intents", {
            "amount": amount, "currency": "eur", "payment_method": pm, "capture_method": "manual",
            "payment_method_types[]": "card", "metadata[order_id]": order,
        }, key=f"{order}-intent")
        assert status == 200, body
        return body

    def fault(self, name: str, rules: list[dict]) -> None:
        (self.faults / f"{name}.json").write_text(json.dumps({"rules": rules}))


class PaymentProviderTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = Provider()

    @classmethod
    def tearDownClass(cls):
        cls.p.stop()

    def test_a_key_runs_its_request_once_and_refuses_other_parameters(self):
        first = self.p.intent("o-idem")
        status, again, headers = self.p.call("/v1/payment_intents", {
            "amount": 1500, "currency": "eur", "payment_method": "pm_card_visa", "capture_method": "manual",
            "payment_method_types[]": "card", "metadata[order_id]": "o-idem",
        }, key="o-idem-intent")
        self.assertEqual((status, again["id"], headers.get("Idempotent-Replayed")), (200, first["id"], "true"))
        status, body, _ = self.p.call("/v1/payment_intents", {"amount": 1600, "currency": "eur"}, key="o-idem-intent")
        self.assertEqual((status, body["error"]["type"]), (400, "idempotency_error"))
        # The confirmation is its own key: it holds once, and answers the same again.
        status, held, _ = self.p.call(f"/v1/payment_intents/{first['id']}/confirm", method="POST", key="o-idem-authorize")
        self.assertEqual((status, held["status"]), (200, "requires_capture"))
        status, held, headers = self.p.call(f"/v1/payment_intents/{first['id']}/confirm", method="POST", key="o-idem-authorize")
        self.assertEqual((status, held["status"], headers.get("Idempotent-Replayed")), (200, "requires_capture", "true"))

    def test_declines_happen_at_confirmation_as_card_errors_with_their_code(self):
        for pm, code in [("pm_card_visa_chargeDeclined", "generic_decline"),
                         ("pm_card_visa_chargeDeclinedInsufficientFunds", "insufficient_funds")]:
            intent = self.p.intent(f"o-{code}", pm)
            self.assertEqual(intent["status"], "requires_confirmation")
            status, body, _ = self.p.call(f"/v1/payment_intents/{intent['id']}/confirm", method="POST", key=f"o-{code}-authorize")
            self.assertEqual(status, 402, body)
            self.assertEqual((body["error"]["type"], body["error"]["code"], body["error"]["decline_code"]),
                             ("card_error", "card_declined", code))
            _, after, _ = self.p.call(f"/v1/payment_intents/{intent['id']}")
            self.assertEqual(after["status"], "requires_payment_method")

    def test_a_cancelled_intent_is_not_captured_and_a_local_card_fails_capture(self):
        intent = self.p.intent("o-cancelled")
        self.p.call(f"/v1/payment_intents/{intent['id']}/confirm", method="POST", key="o-cancelled-authorize")
        status, body, _ = self.p.call(f"/v1/payment_intents/{intent['id']}/cancel", method="POST", key="o-cancelled-void")
        self.assertEqual((status, body["status"]), (200, "canceled"))
        status, body, _ = self.p.call(f"/v1/payment_intents/{intent['id']}/capture", method="POST", key="o-cancelled-capture")
        self.assertEqual((status, body["error"]["code"]), (400, "payment_intent_unexpected_state"))
        _, after, _ = self.p.call(f"/v1/payment_intents/{intent['id']}")
        self.assertEqual((after["status"], after["latest_charge"]["captured"]), ("canceled", False))

        intent = self.p.intent("o-expired", "pm_card_localCaptureFails")
        self.p.call(f"/v1/payment_intents/{intent['id']}/confirm", method="POST", key="o-expired-authorize")
        status, body, _ = self.p.call(f"/v1/payment_intents/{intent['id']}/capture", method="POST", key="o-expired-capture")
        self.assertEqual((status, body["error"]["code"]), (400, "charge_expired_for_capture"))

    def test_the_local_timeout_card_is_never_confirmed_in_time(self):
        intent = self.p.intent("o-slow", "pm_card_localTimeout")
        with self.assertRaises((TimeoutError, socket.timeout, urllib.error.URLError)):
            self.p.call(f"/v1/payment_intents/{intent['id']}/confirm", method="POST", key="o-slow-authorize", timeout=HOLD / 4)
        _, after, _ = self.p.call(f"/v1/payment_intents/{intent['id']}")
        self.assertEqual(after["status"], "requires_confirmation", "nothing was held")

    def test_an_answer_lost_after_the_effect_leaves_the_effect_and_replays_it(self):
        intent = self.p.intent("o-late")
        self.p.fault("late", [{"order_id": "o-late", "operation": "authorize", "kind": "timeout_after", "times": 1}])
        with self.assertRaises((TimeoutError, socket.timeout, urllib.error.URLError)):
            self.p.call(f"/v1/payment_intents/{intent['id']}/confirm", method="POST", key="o-late-authorize", timeout=HOLD / 4)
        _, after, _ = self.p.call(f"/v1/payment_intents/{intent['id']}")
        self.assertEqual(after["status"], "requires_capture", "the hold was placed")
        status, again, headers = self.p.call(f"/v1/payment_intents/{intent['id']}/confirm", method="POST", key="o-late-authorize")
        self.assertEqual((status, again["status"], headers.get("Idempotent-Replayed")), (200, "requires_capture", "true"))
        self.assertEqual(json.loads((self.p.faults / "late.json").read_text())["rules"][0]["times"], 0)

    def test_refusals_do_nothing_and_are_not_saved(self):
        self.p.fault("refusals", [
            {"order_id": "o-500", "operation": "intent", "kind": "server_error", "times": 1},
            {"amount": 4242, "kind": "rate_limited", "times": 1},
            {"order_id": "o-drop", "kind": "dropped", "times": 1},
            {"order_id": "o-before", "kind": "timeout_before", "times": 1},
        ])
        form = {"amount": 1500, "currency": "eur", "payment_method": "pm_card_visa"}
        status, body, headers = self.p.call("/v1/payment_intents", form, key="o-500-intent")
        self.assertEqual((status, body["error"]["type"], headers.get("Stripe-Should-Retry")), (500, "api_error", "true"))
        status, body, _ = self.p.call("/v1/payment_intents", form, key="o-500-intent")
        self.assertEqual(status, 200, "the 500 was not saved for its key")
        status, body, _ = self.p.call("/v1/payment_intents", dict(form, amount=4242), key="o-429-intent")
        self.assertEqual((status, body["error"]["code"]), (429, "rate_limit"))
        with self.assertRaises((urllib.error.URLError, ConnectionError, OSError)):
            self.p.call("/v1/payment_intents", form, key="o-drop-intent")
        with self.assertRaises((TimeoutError, socket.timeout, urllib.error.URLError)):
            self.p.call("/v1/payment_intents", form, key="o-before-intent", timeout=HOLD / 4)
        time.sleep(HOLD)
        _, page, _ = self.p.call("/v1/payment_intents?limit=100")
        orders = [(i.get("metadata") or {}).get("order_id") for i in page["data"]]
        self.assertNotIn("o-before", orders, "a timeout before the effect did nothing")


if __name__ == "__main__":
    unittest.main()
