#!/usr/bin/env python3
"""The local payment provider: localstripe (a Stripe API test server, PyPI, pinned in
local/requirements.txt) on loopback, with the corrections our Stripe adapter depends on and
the faults the saga's fault matrix injects.

    .venv/bin/python local/payment_provider.py [--port 8420]

The functions reach it as they reach Stripe: `PAYMENT_PROVIDER_URL` (this server locally,
https://api.stripe.com in AWS) and a secret key read at cold start (Secrets Manager, which the
emulator serves locally). Each correction restores a Stripe behaviour localstripe 1.15.10
lacks (line numbers refer to it):

  1. Idempotency keys (Stripe: docs.stripe.com/api/idempotent_requests). localstripe never
     reads the `Idempotency-Key` header, so a retried create made a second intent. Here a
     POST with a key runs once: the same key with the same parameters answers the saved
     response again (`Idempotent-Replayed: true`), with other parameters it is a 400
     `idempotency_error`, and while the first is still running a 409
     `idempotency_key_in_use`. Keys are kept 24 hours. Answers that the request never reached
     Stripe's API for (429 rate limits, the injected 5xx, dropped connections) are not saved.
  2. Declines at confirmation. localstripe declines 4000000000000002 and 4000000000009995
     only when a card is attached to a customer (resources.py:2281), and answers a decline
     as `invalid_request_error` without a `decline_code` (resources.py:563). Here the test
     payment methods `pm_card_visa_chargeDeclined` and
     `pm_card_visa_chargeDeclinedInsufficientFunds` decline when the intent is confirmed,
     with Stripe's 402 `card_error`, `code: card_declined` and the `decline_code`
     (`generic_decline`, `insufficient_funds`).
  3. Unexpected states. localstripe answers a capture of a cancelled intent with 200 and
     captures its charge (resources.py:2151), and its other state refusals carry no code.
     Here both are Stripe's 400 `payment_intent_unexpected_state`.
  4. Memory only: localstripe pickles its whole store to /tmp/localstripe.pickle after every
     write (resources.py:50), which two stacks on one machine would share.

Two payment methods exist only here, for the test tokens of API.md that no Stripe test card
stands for: `pm_card_localTimeout` (confirming it is never answered in time, and never
happens) and `pm_card_localCaptureFails` (authorizes; its capture is refused with Stripe's
`charge_expired_for_capture`).

Faults: each `*.json` file in `LOCAL_PROVIDER_FAULTS_DIR` (one per test or fault-matrix cell,
each written whole) holds `{"rules": [...]}`, rules `{"order_id": ..., "operation": "authorize", "amount": 1234,
"kind": ..., "times": n}`; a rule without `order_id`, `operation` or `amount` (the intent's,
in minor units: an end-to-end test knows its order's total before it knows the order's id)
matches any. A request
is matched by its idempotency key, which our adapter builds as `<order_id>-<operation>`.
Kinds, as a client of Stripe meets them:
  - `timeout_before`: no answer in time, and the request never reached the API;
  - `timeout_after`: the request ran (its effect stands, its answer is saved for its key),
    and its answer never arrived (the late authorization of a lost answer);
  - `server_error`: 500 `api_error` with `Stripe-Should-Retry: true`, nothing done;
  - `rate_limited`: 429 `rate_limit`, nothing done;
  - `dropped`: the connection closed without an answer, nothing done (to the client, as
    unknown an outcome as a timeout, only sooner).
A provider that refuses connections altogether is a closed port, which the adapter's tests
use directly.
`LOCAL_PROVIDER_HOLD_SECONDS` (default 15) is how long an unanswered request is held:
longer than any client timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

from aiohttp import web

from localstripe import resources
from localstripe.errors import UserError
from localstripe.server import app

LOG = logging.getLogger("payment_provider")

HOLD_SECONDS = float(os.environ.get("LOCAL_PROVIDER_HOLD_SECONDS", "15"))
IDEMPOTENCY_TTL_SECONDS = 24 * 3600

#: Test payment methods by id: the card number each stands for (Stripe's test cards), and
#: how confirming it ends.
TEST_METHODS = {
    "pm_card_visa": ("4242424242424242", None),
    "pm_card_visa_chargeDeclined": ("4000000000000002", "generic_decline"),
    "pm_card_visa_chargeDeclinedInsufficientFunds": ("4000000000009995", "insufficient_funds"),
    "pm_card_localTimeout": ("4242424242420001", None),
    "pm_card_localCaptureFails": ("4242424242420002", None),
}
DECLINES = {number: code for number, code in TEST_METHODS.values() if code}
TIMEOUT_METHOD = "pm_card_localTimeout"
CAPTURE_FAILS_METHOD = "pm_card_localCaptureFails"


# -- 4. memory only ---------------------------------------------------------------------------
resources.store.dump_to_disk = lambda: None


# -- 2. declines at confirmation --------------------------------------------------------------
def _canonical_test_method(pm_id: str):
    known = TEST_METHODS.get(pm_id)
    if known is None:
        return None
    return resources.PaymentMethod(
        type="card", card=dict(number=known[0], exp_month="12", exp_year="2030", cvc="123"))


resources.PaymentMethod._try_get_canonical_test_article = classmethod(
    lambda cls, pm_id: _canonical_test_method(pm_id))
_charging_is_declined = resources.PaymentMethod._charging_is_declined
resources.PaymentMethod._charging_is_declined = lambda self: (
    (self.type == "card" and self._card_number in DECLINES) or _charging_is_declined(self))


def _raise_decline(charge) -> None:
    pm = resources.PaymentMethod._api_retrieve(charge.payment_method)
    decline_code = DECLINES.get(getattr(pm, "_card_number", ""), "generic_decline")
    raise UserError(402, charge.failure_message, {
        "code": charge.failure_code, "decline_code": decline_code, "charge": charge.id,
        "payment_intent": charge.payment_intent,
    })


resources.Charge._raise_failure = _raise_decline


# -- faults -----------------------------------------------------------------------------------
_FAULTS_LOCK = threading.Lock()


def _take_fault(order_id: str, operation: str, amount: int | None) -> str | None:
    directory = os.environ.get("LOCAL_PROVIDER_FAULTS_DIR")
    if not directory or not order_id:
        return None
    with _FAULTS_LOCK:
        for path in sorted(Path(directory).glob("*.json")):
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (FileNotFoundError, json.JSONDecodeError):
                continue
            for rule in doc.get("rules", []):
                if (rule.get("order_id") in (None, order_id)
                        and rule.get("operation") in (None, operation)
                        and rule.get("amount") in (None, amount)
                        and int(rule.get("times", 0)) > 0):
                    rule["times"] = int(rule["times"]) - 1
                    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                    partial.write_text(json.dumps(doc), encoding="utf-8")
                    os.replace(partial, path)
                    LOG.warning("injected fault %s: %s of order %s", rule["kind"], operation, order_id)
                    return rule["kind"]
    return None


def _stripe_error(status: int, error: dict, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": error}, status=status, headers=headers)


# -- 1. idempotency ---------------------------------------------------------------------------
class Saved:
    def __init__(self, fingerprint: str):
        self.fingerprint = fingerprint
        self.done = False
        self.status = 0
        self.body = b""
        self.at = time.monotonic()


_SAVED: dict[tuple[str, str], Saved] = {}


def _forget_old() -> None:
    now = time.monotonic()
    for key in [k for k, v in _SAVED.items() if v.done and now - v.at > IDEMPOTENCY_TTL_SECONDS]:
        del _SAVED[key]


def _replay(saved: Saved) -> web.Response:
    return web.Response(body=saved.body, status=saved.status, content_type="application/json",
                        headers={"Idempotent-Replayed": "true"})


async def _run(handler, request) -> web.Response:
    """The request through localstripe, as a plain response (its errors included)."""
    try:
        response = await handler(request)
    except UserError as e:
        response = e.to_response()
    return response


def _corrected(request, response: web.Response) -> web.Response:
    """3: localstripe's refusals of a state, with Stripe's code; 2: declines as card errors."""
    if response.status in (400, 402) and request.path.startswith("/v1/payment_intents/"):
        try:
            body = json.loads(response.body)
        except (TypeError, ValueError):
            return response
        error = body.get("error", {})
        if response.status == 402:
            error["type"] = "card_error"
        elif "code" not in error and request.path.rsplit("/", 1)[-1] in ("capture", "cancel", "confirm"):
            error["code"] = "payment_intent_unexpected_state"
        return _stripe_error(response.status, error)
    return response


def _precheck(request, intent_id: str | None) -> web.Response | None:
    """What Stripe refuses before the action and localstripe does not (3, and the local test
    method whose capture fails)."""
    if intent_id is None or not request.path.endswith("/capture"):
        return None
    try:
        intent = resources.PaymentIntent._api_retrieve(intent_id)
    except UserError:
        return None
    if intent.status != "requires_capture":
        return _stripe_error(400, {
            "type": "invalid_request_error", "code": "payment_intent_unexpected_state",
            "message": f"This PaymentIntent could not be captured because it has a status of {intent.status}.",
        })
    if intent.payment_method == CAPTURE_FAILS_METHOD:
        return _stripe_error(400, {
            "type": "invalid_request_error", "code": "charge_expired_for_capture",
            "message": "The charge cannot be captured as the authorization has expired.",
        })
    return None


def _confirms_timeout_method(request, form: dict, intent_id: str | None) -> bool:
    """A request that would confirm an intent of `pm_card_localTimeout`."""
    if intent_id and request.path.endswith("/confirm"):
        try:
            return resources.PaymentIntent._api_retrieve(intent_id).payment_method == TIMEOUT_METHOD
        except UserError:
            return False
    return (request.path == "/v1/payment_intents" and form.get("payment_method") == TIMEOUT_METHOD
            and str(form.get("confirm", "")).lower() == "true")


def _amount(form: dict, intent_id: str | None) -> int | None:
    """The amount a request is about, in minor units: its own, or its intent's."""
    if intent_id:
        try:
            return resources.PaymentIntent._api_retrieve(intent_id).amount
        except UserError:
            return None
    try:
        return int(form["amount"])
    except (KeyError, ValueError):
        return None


@web.middleware
async def stripe_corrections(request, handler):
    if request.method != "POST" or not request.path.startswith("/v1/"):
        return await handler(request)
    raw = await request.read()  # cached: localstripe reads it again
    form = dict((await request.post()) or {})
    parts = request.path.split("/")
    intent_id = parts[3] if len(parts) > 3 and parts[2] == "payment_intents" else None

    key = request.headers.get("Idempotency-Key")
    order_id, _, operation = (key or "").rpartition("-")
    fault = _take_fault(order_id, operation, _amount(form, intent_id)) if key else None
    if fault == "dropped":
        request.transport.close()
        raise asyncio.CancelledError()
    if fault == "rate_limited":
        return _stripe_error(429, {"type": "invalid_request_error", "code": "rate_limit",
                                   "message": "Too many requests hit the API too quickly."})
    if fault == "server_error":
        return _stripe_error(500, {"type": "api_error", "message": "An unknown error occurred."},
                             {"Stripe-Should-Retry": "true"})
    if fault == "timeout_before" or _confirms_timeout_method(request, form, intent_id):
        await asyncio.sleep(HOLD_SECONDS)
        return _stripe_error(504, {"type": "api_error", "message": "held past the client's timeout"})

    response = await _once(request, handler, raw, key, intent_id)
    if fault == "timeout_after":
        await asyncio.sleep(HOLD_SECONDS)
    return response


async def _once(request, handler, raw: bytes, key: str | None, intent_id: str | None) -> web.Response:
    """1: a request with an idempotency key runs once; its answer is saved and replayed."""
    saved = None
    if key:
        auth = request.headers.get("Authorization", "")
        fingerprint = hashlib.sha256(request.path.encode() + b"\0" + raw).hexdigest()
        _forget_old()
        saved = _SAVED.get((auth, key))
        if saved is not None:
            if saved.fingerprint != fingerprint:
                return _stripe_error(400, {
                    "type": "idempotency_error",
                    "message": f"Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request.",
                })
            if not saved.done:
                return _stripe_error(409, {
                    "type": "idempotency_error", "code": "idempotency_key_in_use",
                    "message": "There is currently another in-progress request using this Idempotent Key.",
                })
            return _replay(saved)
        saved = _SAVED[(auth, key)] = Saved(fingerprint)
    try:
        response = _precheck(request, intent_id) or _corrected(request, await _run(handler, request))
    except BaseException:
        if saved is not None:
            _SAVED.pop((request.headers.get("Authorization", ""), key), None)
        raise
    if saved is not None:
        saved.status, saved.body, saved.done = response.status, response.body, True
        saved.at = time.monotonic()
    return response


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_PROVIDER_PORT", "8420")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app.middlewares.insert(0, stripe_corrections)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None,
                print=lambda *_: print(f"payment provider ready on 127.0.0.1:{args.port}", flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
