#!/usr/bin/env python3
"""Every AWS call a function makes, held against what the declaration grants it.

IAM is not enforced locally, so a call that AWS would deny (an action or a resource missing
from the function's policy) passes every local test and fails only in production. The
functions' SDK clients name the function in their user agent (`app/<function>`,
shared::aws::sdk_config); the emulator's recorder (`Recorder`, installed by
local/emulator.py) writes each distinct (function, action, resource) it sees to a file, and
this module's check holds them against infra/declaration.json, the file every function's
IAM policy is generated from (infra/modules/regional/functions.tf).

    .venv/bin/python local/sdk_calls.py check [DIR]   # after a run of the stack; exit 1 on a violation

DIR (default .local/sdk-calls/, LOCAL_SDK_CALLS_DIR) holds one `<port>.jsonl` per emulator
process. The check fails when a function made a call its declaration does not grant, when a
call could not be attributed to an action, or when nothing was recorded at all (a check that
saw nothing proves nothing).
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from declaration import LOCAL_PREFIX, load  # noqa: E402

DEFAULT_DIR = HERE.parent / ".local" / "sdk-calls"
_APP = re.compile(r"(?:^|\s)app/(\S+)")

#: Actions a transaction item needs, by the item's kind (DynamoDB authorizes each item of a
#: TransactWriteItems/TransactGetItems as the single-item action).
_TRANSACT_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}

#: The JSON protocols' X-Amz-Target prefixes, by IAM service prefix.
_TARGET_SERVICES = {
    "DynamoDB_20120810": "dynamodb",
    "AWSStepFunctions": "states",
    "AWSEvents": "events",
    "Kinesis_20131202": "kinesis",
    "AmazonSQS": "sqs",
    "secretsmanager": "secretsmanager",
}


def _tail(arn_or_name: str, sep: str) -> str:
    return arn_or_name.rsplit(sep, 1)[-1]


def calls_of(target: str, body: dict) -> list[tuple[str, str]]:
    """The IAM (action, resource) pairs one request needs. The resource is a physical name:
    a table, `stateMachine:<name>`, a bus, a stream, a queue, a secret, or `*` for actions
    that take none. An unknown service gives ("unknown:<target>", "*")."""
    prefix, _, operation = target.partition(".")
    service = _TARGET_SERVICES.get(prefix)
    if service is None or not operation:
        return [(f"unknown:{target}", "*")]
    action = f"{service}:{operation}"
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            pairs = []
            for item in body.get("TransactItems", []):
                for kind, spec in item.items():
                    pairs.append((f"dynamodb:{_TRANSACT_ITEM_ACTIONS.get(kind, kind)}", spec.get("TableName", "?")))
            return pairs
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(action, table) for table in body.get("RequestItems", {})]
        return [(action, _tail(body.get("TableName", "?"), "/"))]
    if service == "states":
        arn = body.get("stateMachineArn") or body.get("executionArn")
        if not arn:
            return [(action, "*")]  # SendTaskSuccess/Failure/Heartbeat: no resource type
        parts = arn.split(":")  # ...:stateMachine:<name> or ...:execution:<name>:<id>
        return [(action, f"stateMachine:{parts[6] if len(parts) > 6 else '?'}")]
    if service == "events":
        if "Entries" in body:  # PutEvents: each entry names its bus
            buses = {_tail(e.get("EventBusName") or "default", "/") for e in body["Entries"]}
            return [(action, bus) for bus in sorted(buses)]
        return [(action, _tail(body.get("Name") or body.get("EventBusName") or "default", "/"))]
    if service == "kinesis":
        return [(action, _tail(body.get("StreamName") or body.get("StreamARN") or "?", "/"))]
    if service == "sqs":
        # IAM has no action of its own for the batch calls: SendMessageBatch is authorized
        # by sqs:SendMessage, DeleteMessageBatch by sqs:DeleteMessage.
        action = {"sqs:SendMessageBatch": "sqs:SendMessage", "sqs:DeleteMessageBatch": "sqs:DeleteMessage"}.get(action, action)
        return [(action, _tail(body.get("QueueUrl", "?"), "/"))]
    if service == "secretsmanager":
        return [(action, _tail(body.get("SecretId", "?"), ":"))]
    return [(action, "*")]


class Recorder:
    """WSGI middleware: for each request whose user agent names a function (`app/<name>`),
    records the (function, action, resource) pairs it needs, each distinct one once, as a
    JSON line in `path`. Requests without a function's name (the pollers, the interpreter,
    tests, commerce-ops) pass untouched."""

    def __init__(self, app, path: Path):
        self.app = app
        self.path = path
        self.seen: set[tuple[str, str, str]] = set()
        self.lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")

    def __call__(self, environ, start_response):
        agent = f"{environ.get('HTTP_USER_AGENT', '')} {environ.get('HTTP_X_AMZ_USER_AGENT', '')}"
        found = _APP.search(agent)
        target = environ.get("HTTP_X_AMZ_TARGET")
        if found and target:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(raw)
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            self.record(found.group(1), calls_of(target, body if isinstance(body, dict) else {}))
        return self.app(environ, start_response)

    def record(self, function: str, pairs: list[tuple[str, str]]) -> None:
        new = [(function, a, r) for a, r in pairs if (function, a, r) not in self.seen]
        if not new:
            return
        with self.lock:
            new = [c for c in new if c not in self.seen]
            self.seen.update(new)
            with open(self.path, "a", encoding="utf-8") as out:
                for function_, action, resource in new:
                    out.write(json.dumps({"function": function_, "action": action, "resource": resource}) + "\n")


def _unprefixed(name: str, prefix: str) -> str | None:
    return name[len(prefix) + 1 :] if name.startswith(prefix + "-") else None


def violations(calls: list[dict], decl: dict, prefix: str = LOCAL_PREFIX) -> list[str]:
    """Each recorded call the declaration does not grant the function that made it, in words."""
    out = []
    functions = decl["functions"]
    for call in calls:
        raw_name, action, resource = call["function"], call["action"], call["resource"]
        name = raw_name if raw_name in functions else _unprefixed(raw_name, prefix)
        if name not in functions:
            continue  # not one of ours (a tool or a test naming itself)
        spec = functions[name]
        service = action.split(":", 1)[0]
        granted = False
        if service == "dynamodb":
            table = _unprefixed(resource, prefix)
            granted = table is not None and action in spec.get("tables", {}).get(table, [])
        elif service == "states":
            machines = spec.get("state_machines", {})
            if resource == "*":
                granted = any(action in actions for actions in machines.values())
            else:
                machine = _unprefixed(resource.removeprefix("stateMachine:"), prefix)
                granted = action in machines.get(machine, [])
        elif service == "events":
            granted = resource == prefix and action in spec.get("bus", [])
        elif service == "kinesis":
            granted = action in ("kinesis:PutRecord", "kinesis:PutRecords") and _unprefixed(resource, prefix) in spec.get("kinesis_put", [])
        elif service == "sqs":
            sends_to = {s.get("on_failure_queue") for s in spec.get("event_sources", [])}
            granted = action == "sqs:SendMessage" and _unprefixed(resource, prefix) in sends_to
        elif service == "secretsmanager":
            granted = action in spec.get("secrets", {}).get(_unprefixed(resource, prefix) or "", [])
        if not granted:
            out.append(f"{name}: {action} on {resource} is not granted by infra/declaration.json")
    return out


def read_calls(directory: Path) -> list[dict]:
    calls = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                calls.append(json.loads(line))
    return calls


def check(directory: Path, decl: dict) -> int:
    calls = read_calls(directory)
    ours = sorted({c["function"] for c in calls if c["function"] in decl["functions"]})
    if not ours:
        print(f"sdk_calls: no call of a declared function was recorded in {directory}: nothing was checked", file=sys.stderr)
        return 1
    found = violations(calls, decl)
    silent = sorted(set(decl["functions"]) - set(ours))
    print(f"sdk_calls: {len(calls)} distinct calls of {len(ours)} functions held against the declaration")
    if silent:
        print(f"sdk_calls: made no AWS call in this run: {', '.join(silent)}")
    for v in found:
        print(f"sdk_calls: {v}", file=sys.stderr)
    print(f"sdk_calls: {len(found)} violation(s)")
    return 1 if found else 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "check" or len(argv) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    directory = Path(argv[1]) if len(argv) == 2 else Path(os.environ.get("LOCAL_SDK_CALLS_DIR") or DEFAULT_DIR)
    return check(directory, load())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
