"""Invoking a function through cargo lambda watch's Invoke API, and reading its answer as
Lambda's pollers do (ReportBatchItemFailures)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from lambda_gate import GATE, Busy  # local/

from .settings import INVOKE_TIMEOUT, LAMBDA_URL

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


@dataclass
class Outcome:
    kind: str  # "ok" | "function_error" | "service_error"
    payload: Any = None  # the decoded response ("ok"), or the error document
    detail: str = ""
    parsed: bool = True  # False when an "ok" body is not JSON


def invoke(function_name: str, event: dict) -> Outcome:
    """POST the event to cargo lambda watch's Invoke API.

    200: the function's result. 500 with {"errorType", "errorMessage"}: a function error.
    Anything else (404 unknown binary, connection refused, timeout): the function was not
    reached - what AWS calls a service error.
    """
    url = f"{LAMBDA_URL}/2015-03-31/functions/{urllib.parse.quote(function_name, safe='')}/invocations"
    request = urllib.request.Request(
        url, data=json.dumps(event).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with GATE.entry(function_name, INVOKE_TIMEOUT) as left, _OPENER.open(request, timeout=left) as response:
            body = response.read().decode("utf-8", "replace")
    except Busy as err:
        return Outcome("service_error", None, str(err))
    except urllib.error.HTTPError as err:
        body = err.read().decode("utf-8", "replace")
        doc = _json_or_none(body)
        if err.code == 500 and isinstance(doc, dict) and "errorType" in doc:
            return Outcome("function_error", doc, f"{doc.get('errorType')}: {str(doc.get('errorMessage'))[:200]}")
        return Outcome("service_error", None, f"HTTP {err.code} {body[:200]}")
    except (urllib.error.URLError, OSError) as err:
        return Outcome("service_error", None, f"cannot reach cargo lambda at {LAMBDA_URL}: {err}")
    if not body.strip():
        return Outcome("ok", None)
    try:
        return Outcome("ok", json.loads(body))
    except ValueError:
        return Outcome("ok", body, parsed=False)


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


WHOLE_BATCH = object()


def reported_failures(outcome: Outcome, known_ids: list[str]) -> list[str] | object:
    """The itemIdentifiers of a ReportBatchItemFailures response.

    [] is a complete success (null or empty response, no or an empty/null list);
    WHOLE_BATCH is a complete failure: a response that is not a JSON object, a
    batchItemFailures that is not a list, an entry without a non-empty string itemIdentifier, or one that names no
    record of the batch (AWS's "Success and failure conditions")."""
    payload = outcome.payload
    if not outcome.parsed:
        return WHOLE_BATCH
    if payload is None:
        return []
    if not isinstance(payload, dict):
        return WHOLE_BATCH
    items = payload.get("batchItemFailures")
    if items is None:
        return []
    if not isinstance(items, list):
        return WHOLE_BATCH
    known = set(known_ids)
    failed: list[str] = []
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or not ident or ident not in known:
            return WHOLE_BATCH
        failed.append(ident)
    return failed
