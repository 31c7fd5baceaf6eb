"""The event each function gets in the benchmarks, from its declaration, and how its answer
is judged.

- A route gets an API Gateway (payload 2.0) event as the gateway builds it, from a signed-in
  customer (`bench-user`, not an admin), with a valid body where the route takes one. Against
  the AWS stub (aws_stub.py: no item anywhere, every write accepted) that is its ordinary
  path: a read finds nothing (404), an admin route refuses (403), a registration succeeds.
- A queue or stream consumer gets an empty batch (`{"Records": []}`): its runtime, its
  deserialization and its batch-answer path, and no AWS call.
- A saga step gets `{}`, which it refuses before any AWS call (its input names no order); its
  error counts as the answer to the invocation (coldstart.measure, accept_errors). A step's
  figures are therefore its init, memory and the cost of a refusal, not of a step.
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


def event_for(spec: dict) -> tuple[dict, bool]:
    """(event, accept_errors) for a declared function."""
    k = kind(spec)
    if k == "route":
        return http_event(spec["route"], spec.get("auth") == "none"), False
    if k == "consumer":
        return {"Records": []}, False
    return {}, True
