#!/usr/bin/env python3
"""The accountant's question asked of the payment provider's books: is any customer's money
held, or taken and kept, for an order that is not confirmed?

    .venv/bin/python local/provider_books.py    # inside `local/stack.py exec`; exit 1 on a violation

Every payment intent at the local payment provider (local/payment_provider.py) names its
order (`metadata[order_id]`, our adapter sets it). For each, the order's status is read from
the orders table, and the intent must agree with it: money held (`requires_capture`) or
taken and not all given back (`succeeded`) only for a `CONFIRMED` order; a `CANCELLED` order
taken and refunded in full. Orders still on their way (`PENDING`, `UNDER_REVIEW`,
`CANCELLING`) may hold money and are counted apart; an intent whose order does not exist is
a violation. Prints one JSON summary line.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.request
from pathlib import Path

import boto3

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import declaration  # noqa: E402

FINAL = ("CONFIRMED", "REJECTED", "CANCELLED")


def intents(url: str, key: str) -> list[dict]:
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    found, after = [], None
    while True:
        query = "limit=100" + (f"&starting_after={after}" if after else "")
        req = urllib.request.Request(f"{url}/v1/payment_intents?{query}", headers={"Authorization": auth})
        with urllib.request.urlopen(req, timeout=30) as r:
            page = json.load(r)
        data = page.get("data", [])
        found.extend(data)
        if not page.get("has_more") or not data:
            return found
        after = data[-1]["id"]


def disagreement(status: str, intent: dict) -> str | None:
    """Why an intent disagrees with its order's final `status` (tests/src/lib.rs,
    `provider_disagrees`, is the same rule)."""
    state = intent.get("status")
    amount = intent.get("amount") or 0
    charge = intent.get("latest_charge") if isinstance(intent.get("latest_charge"), dict) else {}
    refunded = (charge or {}).get("amount_refunded") or 0
    held, kept = state == "requires_capture", state == "succeeded" and refunded < amount
    if status == "CONFIRMED":
        if state != "succeeded" or refunded:
            return f"CONFIRMED, but the provider's intent is {state} ({refunded} of {amount} refunded)"
        return None
    if status == "CANCELLED" and state == "succeeded" and refunded != amount:
        return f"CANCELLED, but the provider gave back {refunded} of {amount}"
    if held or kept:
        return f"{status}, but the provider holds the customer's money: intent {state}, {refunded} of {amount} refunded"
    return None


def check() -> dict:
    decl = declaration.load()
    secret = decl["secrets"]["payment-provider"]
    url, key = secret["settings"]["PAYMENT_PROVIDER_URL"]["local"], secret["local_value"]
    ddb = boto3.client("dynamodb", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ["AWS_ENDPOINT_URL"],
                       region_name=os.environ.get("AWS_REGION", "us-east-1"))
    table = declaration.table_name("orders")
    summary = {"intents": 0, "orders_final": 0, "orders_in_flight": 0, "violations": []}
    statuses: dict[str, str | None] = {}
    for intent in intents(url, key):
        summary["intents"] += 1
        order_id = (intent.get("metadata") or {}).get("order_id")
        if not order_id:
            summary["violations"].append(f"{intent['id']}: no order_id in its metadata")
            continue
        if order_id not in statuses:
            item = ddb.get_item(TableName=table, Key={"order_id": {"S": order_id}}, ConsistentRead=True).get("Item")
            statuses[order_id] = item["status"]["S"] if item else None
        status = statuses[order_id]
        if status is None:
            if intent.get("status") in ("requires_capture", "succeeded"):
                summary["violations"].append(f"{intent['id']}: {intent.get('status')} for order {order_id}, which does not exist")
            continue
        if status not in FINAL:
            summary["orders_in_flight"] += 1
            continue
        summary["orders_final"] += 1
        why = disagreement(status, intent)
        if why:
            summary["violations"].append(f"order {order_id}: {why} ({intent['id']})")
    return summary


def main() -> int:
    summary = check()
    print(json.dumps(summary))
    return 1 if summary["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
