#!/usr/bin/env python3
"""DynamoDB round trips of every operation, counted through the SDK, held against their budget.

Every function counts the DynamoDB requests its SDK client sends (an interceptor,
shared::metrics) and writes one EMF metrics line per invocation: an API invocation with its
HTTP status, a saga step or a batch of records with its records and failed records
(shared::metrics::measure_task). `make test` runs every route, saga step and consumer on the
local stack; afterwards this reads those lines back from the functions' log and, per function:

- keeps the invocations that succeeded (an API answer under 400; a step or batch with no
  failed record), since a refused request stops early and a failed one may stop anywhere;
- counts per invocation for a route or a saga step, per record for a consumer (a batch's
  requests divided by its records), and for the outbox relay per invocation that made any
  (`PER_WRITING_INVOCATION`: its stream carries every change of the table, most of which it
  passes over);
- takes the most common count (the fault tests' retries and the idempotent replays make
  others, shown beside it), and holds it against `BUDGET`.

It fails when a declared function was never measured succeeding (a check that saw nothing
proves nothing), or when a function's usual count is not its budget: a change that adds a
round trip to an operation has to say so here, and in the README's table.

    .venv/bin/python local/round_trips.py check [LOG]   # after a run of the stack
    .venv/bin/python local/round_trips.py table [LOG]   # the Markdown table only

LOG defaults to .local/logs/cargo-lambda.log. The table is also written to
.local/round-trips.md, and with the counts to .local/round-trips.json, which `make bench`
copies into its results file.
"""

from __future__ import annotations

import collections
import datetime
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from declaration import function_kind as kind, load  # noqa: E402

DEFAULT_LOG = HERE.parent / ".local" / "logs" / "cargo-lambda.log"
REPORT = HERE.parent / ".local" / "round-trips.md"
#: The same, with the counts, for `make bench`'s results file (local/bench/run.py).
REPORT_JSON = HERE.parent / ".local" / "round-trips.json"

#: The usual DynamoDB requests of each operation that succeeds: per invocation for a route or
#: a saga step, per record for a consumer. Each with what they are.
BUDGET: dict[str, tuple[float, str]] = {
    "users-create": (1, "a conditional put"),
    "users-get": (1, "a get"),
    "users-update": (1, "a conditional update returning the new item"),
    "users-delete": (1, "a delete"),
    "inventory-put-product": (2, "a read of the product, then one transaction (product and outbox event)"),
    "inventory-get-product": (1, "a get"),
    "inventory-list-products": (1, "a query of one page"),
    "inventory-adjust-stock": (2, "a read, then one transaction (stock and outbox event); with an Idempotency-Key, its claim first and the claim's completion in the transaction (3)"),
    "inventory-reserve": (2, "a read of the reservation, then one transaction (stock, reservation, event)"),
    "inventory-release": (2, "a read, then one transaction"),
    "inventory-commit": (2, "a read, then one transaction"),
    "inventory-restock": (2, "a read, then one transaction"),
    "orders-create": (3, "the idempotency claim, one batch read of the prices, one transaction (order, outbox event, idempotency record)"),
    "orders-get": (1, "a get"),
    "orders-list": (1, "a query of one page"),
    "orders-hold-for-review": (2, "a read of the order, then one transaction (status, token, event)"),
    "orders-confirm": (2, "a read, then one transaction"),
    "orders-reject": (2, "a read, then one transaction"),
    "orders-finish-cancel": (2, "a read, then one transaction"),
    "orders-start-saga": (4, "the dedupe claim, a read of the order (its payment token, shipping country and client address, for the saga's input), a read of the customer's country and account age (users, for the fraud check), then the claim's completion (the execution, started by name, is no DynamoDB write)"),
    "orders-cancel": (2, "a read, then one conditional update (and a StartExecution)"),
    "orders-review": (1, "a read of the order (then the task token's SendTask*)"),
    "payments-authorize": (3, "a read of the payment, the pending payment naming the provider's intent (a conditional put), then one transaction settling it with its event (the order's total and token come in the saga's input)"),
    "payments-capture": (2, "a read, then one transaction"),
    "payments-void": (2, "a read, then one transaction (the void and its event) or, with no payment, the seal (a conditional put)"),
    "payments-refund": (2, "a read, then one transaction"),
    "payments-get": (1, "a get"),
    "payments-request-fraud-check": (0, "none: its input carries the order, which it puts on the transactions stream"),
    "fraud-score": (2, "one BatchGetItem of the batch's users' states, then conditional transactions of up to 100 items (a user's state with its orders' assessments and events); a record alone: 2"),
    "fraud-get-risk": (1, "a get"),
    "outbox-relay": (1, "one transaction marking what one PutEvents published (up to 10 events); counted per invocation that wrote, since most stream records (the marks themselves, state changes) need none"),
    "notifications-send": (2, "the dedupe claim, then one transaction (notification and dedupe record)"),
    "analytics-project-sales": (3, "the dedupe claim, a read of the order's fact, one transaction"),
    "analytics-get-sales": (1, "one query per calendar month of the window (the tests ask for one)"),
    "health-check": (5, "DescribeTable of each of the five tables"),
}


#: Consumers counted per invocation that made a request, not per record.
PER_WRITING_INVOCATION = {"outbox-relay"}


def emf_lines(log: Path):
    """The EMF documents in the log, in order (other lines are skipped)."""
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            if '"_aws"' not in line or '"DynamoDbRequests"' not in line:
                continue
            start = line.find("{")
            try:
                doc = json.loads(line[start:])
            except ValueError:
                continue
            if isinstance(doc, dict) and "Function" in doc and "DynamoDbRequests" in doc:
                yield doc


def counts(docs, kinds: dict[str, str]) -> dict[str, dict]:
    """Per function: the per-invocation (route, step) or per-record (consumer) counts of the
    invocations that succeeded, and how many did not."""
    out: dict[str, dict] = collections.defaultdict(lambda: {"ok": collections.Counter(), "other": 0})
    for doc in docs:
        f = doc["Function"]
        requests = doc["DynamoDbRequests"]
        if "status" in doc:  # an API invocation
            if doc["status"] >= 400:
                out[f]["other"] += 1
                continue
            out[f]["ok"][requests] += 1
            continue
        records, failed = doc.get("Records", 0), doc.get("FailedRecords", 0)
        if failed or not records:
            out[f]["other"] += 1
            continue
        if f in PER_WRITING_INVOCATION:
            if requests:
                out[f]["ok"][requests] += 1
            continue
        per = requests / records if kinds.get(f) == "consumer" else requests
        out[f]["ok"][round(per, 2)] += 1
    return dict(out)


def check(measured: dict[str, dict], decl: dict) -> list[str]:
    problems = []
    for f in decl["functions"]:
        if f not in BUDGET:
            problems.append(f"{f}: no budget in local/round_trips.py")
            continue
        seen = measured.get(f, {}).get("ok")
        if not seen:
            problems.append(f"{f}: never measured succeeding (no metrics line of a successful invocation)")
            continue
        usual = seen.most_common(1)[0][0]
        if usual != BUDGET[f][0]:
            problems.append(f"{f}: usually {usual:g} DynamoDB requests, its budget is {BUDGET[f][0]:g} ({BUDGET[f][1]})"
                            f"; seen {dict(seen)}")
    for f in BUDGET:
        if f not in decl["functions"]:
            problems.append(f"{f}: budgeted but not a declared function")
    return problems


def table(measured: dict[str, dict], decl: dict) -> str:
    rows = ["| function | kind | usual DynamoDB requests | what they are | successful invocations (count: times) |",
            "|---|---|---:|---|---|"]
    for f, spec in decl["functions"].items():
        seen = measured.get(f, {}).get("ok") or collections.Counter()
        usual = f"{seen.most_common(1)[0][0]:g}" if seen else "not measured"
        per = ""
        if seen and f in PER_WRITING_INVOCATION:
            per = " per writing invocation"
        elif seen and kind(spec) == "consumer":
            per = " per record"
        spread = ", ".join(f"{c:g}: {n}" for c, n in sorted(seen.items()))
        what = BUDGET.get(f, (None, ""))[1]
        label = spec.get("route") or kind(spec)
        rows.append(f"| {f} | {label} | {usual}{per} | {what} | {spread} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in ("check", "table"):
        print(__doc__, file=sys.stderr)
        return 2
    log = Path(argv[2]) if len(argv) > 2 else DEFAULT_LOG
    if not log.exists():
        print(f"round_trips: no log at {log}: run the stack's tests first", file=sys.stderr)
        return 1
    decl = load()
    kinds = {f: kind(spec) for f, spec in decl["functions"].items()}
    measured = counts(emf_lines(log), kinds)
    text = table(measured, decl)
    if argv[1] == "table":
        print(text, end="")
        return 0
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text, encoding="utf-8")
    REPORT_JSON.write_text(json.dumps({
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "table": text,
        "functions": {f: {str(k): n for k, n in m["ok"].items()} for f, m in measured.items()},
    }, indent=2) + "\n", encoding="utf-8")
    print(text, end="")
    problems = check(measured, decl)
    for p in problems:
        print(f"round_trips: {p}", file=sys.stderr)
    total = sum(sum(m["ok"].values()) for m in measured.values())
    print(f"round_trips: {len(decl['functions'])} functions, {total} successful invocations measured, "
          f"{len(problems)} problems (table in {REPORT})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
