"""The event each function gets in the benchmarks, from its declaration, and how its answer
is judged.

- A route gets an API Gateway (payload 2.0) event as the gateway builds it, from a signed-in
  customer (`bench-user`, not an admin), with a valid body where the route takes one. Against
  the AWS stub (aws_stub.py: no item anywhere, every write accepted) that is its ordinary
  path: a read finds nothing (404), an admin route refuses (403), a registration succeeds.
- A queue or stream consumer gets an empty batch (`{"Records": []}`): its runtime, its
  deserialization and its batch-answer path, and no AWS call. The fraud scorer is the
  exception: it gets a batch of 100 `transactions` records from 10 customers (the batch size
  its mapping declares), so its first invoke and its peak memory are those of a full batch
  scored, written and answered (against the stub: no state stored, every write accepted).
- A saga step gets the input its state machine gives it: the Task state's `Payload` (from the
  definitions in infra/state-machines/, rendered as Terraform does) evaluated against a
  place-order execution's input for one order, with a task token and retry count where the
  state passes them. Against the stub that is a step's ordinary path as far as the stub
  lets it go: a step that writes finds nothing to conflict with and writes; one that needs an
  earlier step's record (the payment to capture, the order to pay) finds none and answers
  its business error, which counts as the answer (coldstart.measure, accept_errors). The
  payment provider is never reached: the harness points PAYMENT_PROVIDER_URL at loopback.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from declaration import function_kind  # noqa: E402

BENCH_USER = "bench-user"
ORDER_ID = "01JD0000000000000000000000"
PATH_VALUES = {"user_id": BENCH_USER, "sku": "BENCH-1", "order_id": ORDER_ID}
BODIES = {
    "POST /users": {"email": "bench@example.com", "name": "Bench", "country": "DE"},
    "PATCH /users/{user_id}": {"name": "Bench Again"},
    "PUT /products/{sku}": {"name": "Mug", "price": {"amount": "12.50", "currency": "EUR"}},
    "POST /products/{sku}/stock": {"delta": 1},
    "POST /orders": {
        "items": [{"sku": "BENCH-1", "quantity": 1}],
        "shipping": {"name": "Bench", "line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"},
        "payment": {"token": "tok_visa"},
    },
    "POST /orders/{order_id}/review": {"decision": "approve"},
}
QUERIES = {"GET /analytics/sales": "from=2026-01-01&to=2026-01-31"}
# A place-order execution's input (orders/src/workflow.rs) for one order of BENCH-1, with the
# reason a rejection carries, and the context object's fields the definitions read.
EXECUTION = {
    "order_id": ORDER_ID,
    "user_id": BENCH_USER,
    "items": [{"sku": "BENCH-1", "quantity": 1, "unit_price": {"amount": "12.50", "currency": "EUR"}}],
    "total": {"amount": "12.50", "currency": "EUR"},
    "payment_token": "tok_visa",
    "correlation_id": "bench-correlation",
    "shipping_country": "DE",
    "customer": {"country": "DE", "registered_at": "2025-01-01T00:00:00.000Z"},
    "source_ip": "203.0.113.9",
    "reason": "OUT_OF_STOCK",
}
CONTEXT = {"Task": {"Token": "bench-task-token"}, "State": {"RetryCount": 0}}


def kind(spec: dict) -> str:
    """route, consumer or step (declaration.function_kind)."""
    return function_kind(spec)


def http_event(route: str, public: bool) -> dict:
    method, path = route.split(" ", 1)
    params = {name: PATH_VALUES.get(name, "x") for name in re.findall(r"\{(\w+)\}", path)}
    raw_path = re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], path)
    body = BODIES.get(route)
    headers = {"content-type": "application/json", "host": "api.example.com", "user-agent": "bench"}
    if route == "POST /orders":
        headers["idempotency-key"] = "bench-key-1"
    context = {
        "accountId": "123456789012", "apiId": "bench", "domainName": "api.example.com", "domainPrefix": "api",
        "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
        "requestId": "bench-request", "routeKey": route, "stage": "$default",
        "time": "07/Dec/2026:00:00:00 +0000", "timeEpoch": 1796601600000,
    }
    if not public:
        context["authorizer"] = {"jwt": {"claims": {
            "sub": BENCH_USER, "email": "bench@example.com", "iss": "bench", "aud": "commerce"}, "scopes": None}}
    event = {
        "version": "2.0", "routeKey": route, "rawPath": raw_path, "rawQueryString": QUERIES.get(route, ""),
        "headers": headers, "requestContext": context, "isBase64Encoded": False,
    }
    if params:
        event["pathParameters"] = params
    if body is not None:
        event["body"] = json.dumps(body)
    return event


def _path(doc: dict, path: str):
    """A JSONPath of the simple kind the definitions use (`$.a.b`, `$$.Task.Token`)."""
    node = CONTEXT if path.startswith("$$.") else doc
    for part in path.lstrip("$").lstrip(".").split("."):
        node = node[part]
    return node


def _render(template, doc: dict):
    """A Task's Parameters as Step Functions fills them: `key.$` takes the path's value."""
    if isinstance(template, dict):
        return {(k[:-2] if k.endswith(".$") else k): (_path(doc, v) if k.endswith(".$") else _render(v, doc))
                for k, v in template.items()}
    if isinstance(template, list):
        return [_render(v, doc) for v in template]
    return template


def _tasks(states: dict):
    for name, state in states.items():
        if state.get("Type") == "Task":
            yield name, state
        for branch in state.get("Branches", []):
            yield from _tasks(branch["States"])
        if "Iterator" in state or "ItemProcessor" in state:
            yield from _tasks((state.get("ItemProcessor") or state["Iterator"])["States"])


def step_event(function: str, decl: dict | None = None) -> dict:
    """The payload the first Task state that invokes `function` gives it, for EXECUTION."""
    from declaration import function_arn, load, render_state_machine

    decl = decl or load()
    arn = function_arn(function)
    for machine in decl.get("state_machines", {}):
        definition = json.loads(render_state_machine(decl, machine, "local"))
        for _, state in _tasks(definition["States"]):
            params = state.get("Parameters") or {}
            if params.get("FunctionName") == arn or state.get("Resource") == arn:
                return _render(params.get("Payload", params), EXECUTION)
    raise KeyError(f"no state machine invokes {function}")


def kinesis_batch(records: int, users: int) -> dict:
    """A batch of the `transactions` stream as Lambda delivers it: `records` fraud-check
    records (shared/src/transactions.rs) from `users` customers taking turns, a minute apart."""
    import base64
    import hashlib

    out = []
    for i in range(records):
        user = f"bench-user-{i % users}"
        order = f"01JD{i:022d}"
        data = {
            "order_id": order, "user_id": user,
            "amount": {"amount": f"{20 + i % 7}.50", "currency": "EUR"}, "item_count": 1 + i % 3,
            "shipping_country": "DE", "profile_country": "DE",
            "account_created_at": "2025-01-01T00:00:00.000Z",
            "payment_fingerprint": hashlib.sha256(f"tok-{user}".encode()).hexdigest()[:32],
            "source_ip": "203.0.113.9", "task_token": f"bench-token-{i}",
            "correlation_id": "bench-correlation",
            "requested_at": f"2026-12-01T10:{i // users:02d}:00.000Z",
        }
        seq = f"{i + 1:056d}"
        out.append({
            "kinesis": {
                "kinesisSchemaVersion": "1.0", "partitionKey": user, "sequenceNumber": seq,
                "data": base64.b64encode(json.dumps(data).encode()).decode(),
                "approximateArrivalTimestamp": 1796126400.0,
            },
            "eventSource": "aws:kinesis", "eventVersion": "1.0",
            "eventID": f"shardId-000000000000:{seq}", "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::123456789012:role/commerce-fraud-score",
            "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/commerce-transactions",
        })
    return {"Records": out}


def event_for(spec: dict, name: str | None = None) -> tuple[dict, bool]:
    """(event, accept_errors) for a declared function."""
    k = kind(spec)
    if k == "route":
        return http_event(spec["route"], spec.get("auth") == "none"), False
    if k == "consumer":
        if name == "fraud-score":
            return kinesis_batch(100, 10), False
        return {"Records": []}, False
    if name is None:
        raise ValueError("a saga step's event needs the function's name")
    return step_event(name), True
