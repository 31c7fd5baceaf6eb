"""Load and soak test of the local stack with locust: the flows a shop's users and admins go
through, against the gateway on 127.0.0.1, while the stack's processes are watched.

Run by `make soak` (60 minutes at 5 orders per second) and by `make test`'s load smoke
(a couple of minutes, 64 clients), through local/soak/run.py, which sets:

    SOAK_MINUTES            how long the load runs (locust's --run-time is set from it)
    SOAK_ORDERS_PER_SECOND  the orders placed per second, all shoppers together
    SOAK_SHOPPERS           concurrent shoppers (each a keep-alive HTTP client)
    SOAK_SAMPLE_SECONDS     the length of one row of the series (default 60)
    SOAK_SETTLE_SECONDS     the bound within which an order must reach a final state (30)
    SOAK_OUT                where the JSON results go (series and summary)
    LOCAL_API_URL, LOCAL_JWT_SECRET   the gateway and its token secret

Each shopper registers, then loops: browse the catalogue, look at a product, place an order
with an Idempotency-Key (one in ten sends the same request again with the same key and must
get the same order back), follow the order to its final state, and cancel one confirmed
order in ten and follow that to CANCELLED. An order of the 2500.00 product is held for
review (a newly registered customer's order of that size scores `review`; after the
shopper's other orders it may score `deny`); an admin reviews held orders (approve, one in four rejected), restocks the catalogue and reads the
sales report. Every request is bounded by a timeout, every loop by the run time.

A request fails when it cannot connect, times out, or answers anything but its expected
status. At the end, orders still in flight get SOAK_SETTLE_SECONDS to settle; the run fails
(exit code 1) on any failed request, any function process crash (local/stack.py's
function_crashes), or any order that did not reach a final state within its bound.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

import gevent
from locust import HttpUser, constant_pacing, events, task

HERE = Path(__file__).resolve().parent
LOCAL = HERE.parent
sys.path.insert(0, str(LOCAL))
import jwt_local  # noqa: E402
from crashes import function_crashes  # noqa: E402

API = os.environ.get("LOCAL_API_URL", "http://127.0.0.1:3000")
MINUTES = float(os.environ.get("SOAK_MINUTES", "60"))
RATE = float(os.environ.get("SOAK_ORDERS_PER_SECOND", "5"))
SHOPPERS = int(os.environ.get("SOAK_SHOPPERS", "50"))
SAMPLE = float(os.environ.get("SOAK_SAMPLE_SECONDS", "60"))
SETTLE = float(os.environ.get("SOAK_SETTLE_SECONDS", "30"))
OUT = Path(os.environ.get("SOAK_OUT", str(LOCAL.parent / ".local" / "soak.json")))
TIMEOUT = 30  # seconds for one request: the gateway's own integration limit in AWS

FINAL = {"CONFIRMED", "REJECTED", "CANCELLED"}
RUN = uuid.uuid4().hex[:6].upper()
CHEAP = [f"SOAK-{RUN}-{i}" for i in range(8)]
HOT = f"SOAK-{RUN}-HOT"
DEAR = f"SOAK-{RUN}-DEAR"  # 2500.00 EUR: a new customer's order of one scores "review" and waits for an admin


def bearer(user_id: str, admin: bool = False) -> dict:
    token = jwt_local.mint(user_id, email=f"{user_id.lower()}@example.com", groups=["admin"] if admin else None)
    return {"Authorization": f"Bearer {token}"}


ADMIN = bearer(f"SOAK-ADMIN-{RUN}", admin=True)


def epoch(rfc3339: str | None) -> float | None:
    try:
        return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() if rfc3339 else None
    except ValueError:
        return None


class Ledger:
    """Every order placed, when, and when it reached its final state (or was held)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.placed: dict[str, float] = {}
        self.status: dict[str, str] = {}
        self.settled: dict[str, float] = {}  # order id -> seconds from placing to final
        self.review: list[str] = []
        self.held: set[str] = set()  # ever UNDER_REVIEW: they wait for a person

    def place(self, order_id: str, created_at: str | None = None) -> None:
        with self.lock:
            self.placed.setdefault(order_id, epoch(created_at) or time.time())

    def observe(self, order_id: str, status: str, updated_at: str | None = None) -> None:
        """Records what a read of the order showed. A final order's settle time is its own
        `updated_at` (when the saga wrote the final status) less when it was placed, so an
        order first seen final late (its shopper stopped following) is not counted late."""
        with self.lock:
            self.status[order_id] = status
            if status == "UNDER_REVIEW":
                self.held.add(order_id)
                if order_id not in self.review and order_id not in self.settled:
                    self.review.append(order_id)
            if status in ("CONFIRMED", "REJECTED") and order_id not in self.settled:
                at = epoch(updated_at) or time.time()
                self.settled[order_id] = at - self.placed[order_id]

    def in_flight(self) -> list[str]:
        with self.lock:
            return [o for o, s in self.status.items() if s not in FINAL] + [
                o for o in self.placed if o not in self.status
            ]


LEDGER = Ledger()


def expect(response, *statuses: int) -> dict | None:
    """Marks the request failed unless it answered one of `statuses`; the JSON body."""
    if response.status_code not in statuses:
        response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
        return None
    try:
        return response.json() if response.text else {}
    except ValueError:
        response.failure("the body is not JSON")
        return None


class Shopper(HttpUser):
    """A customer: register, browse, order, follow, sometimes cancel."""

    weight = 50
    host = API
    # One iteration a pacing interval: SHOPPERS / pacing = RATE orders per second.
    wait_time = constant_pacing(max(SHOPPERS / RATE, 0.1))

    def on_start(self) -> None:
        # Shoppers arrive spread over one pacing interval, not all in the same second.
        gevent.sleep(random.uniform(0, max(SHOPPERS / RATE, 0.1)))
        self.user_id = f"SOAK{RUN}{uuid.uuid4().hex[:12].upper()}"
        self.auth = bearer(self.user_id)
        body = {"email": f"{self.user_id.lower()}@example.com", "name": "Soak Shopper", "country": "GB"}
        with self.client.post("/users", json=body, headers=self.auth, name="POST /users",
                              catch_response=True, timeout=TIMEOUT) as r:
            expect(r, 201)

    def follow(self, order_id: str, until: set[str], bound: float) -> str | None:
        """Reads the order until its status is in `until` or `bound` seconds passed, as a
        shop's order page does: again after 1 s, then backing off by half up to 5 s."""
        deadline = time.time() + bound
        status, pause = None, 1.0
        while time.time() < deadline:
            with self.client.get(f"/orders/{order_id}", headers=self.auth, name="GET /orders/{id}",
                                 catch_response=True, timeout=TIMEOUT) as r:
                order = expect(r, 200)
            if order:
                status = order["status"]
                LEDGER.observe(order_id, status, order.get("updated_at"))
                if status in until:
                    return status
            gevent.sleep(min(pause, max(deadline - time.time(), 0)))
            pause = min(pause * 1.5, 5.0)
        return status

    @task
    def shop(self) -> None:
        with self.client.get("/products?limit=20", headers=self.auth, name="GET /products",
                             catch_response=True, timeout=TIMEOUT) as r:
            expect(r, 200)
        roll = random.random()
        sku = DEAR if roll < 0.04 else HOT if roll < 0.24 else random.choice(CHEAP)
        with self.client.get(f"/products/{sku}", headers=self.auth, name="GET /products/{sku}",
                             catch_response=True, timeout=TIMEOUT) as r:
            expect(r, 200)
        body = {
            "items": [{"sku": sku, "quantity": 1}],
            "shipping": {"name": "Soak Shopper", "line1": "1 Load Street", "city": "London",
                         "postal_code": "N1 9GU", "country": "GB"},
            "payment": {"token": "tok_declined" if random.random() < 0.05 else "tok_visa"},
        }
        headers = dict(self.auth, **{"Idempotency-Key": uuid.uuid4().hex})
        order_id = created_at = None
        for attempt in range(2 if random.random() < 0.1 else 1):  # a client retrying its request
            with self.client.post("/orders", json=body, headers=headers, name="POST /orders",
                                  catch_response=True, timeout=TIMEOUT) as r:
                # 409: not enough stock at intake, a valid answer under load on the hot sku.
                order = expect(r, 202, 409)
                if order and r.status_code == 202:
                    if order_id is not None and order["order_id"] != order_id:
                        r.failure(f"the retried key answered order {order['order_id']}, not {order_id}")
                    order_id, created_at = order["order_id"], order.get("created_at")
        if order_id is None:
            return
        LEDGER.place(order_id, created_at)
        status = self.follow(order_id, FINAL | {"UNDER_REVIEW"}, SETTLE)
        if status == "CONFIRMED" and random.random() < 0.1:
            with self.client.post(f"/orders/{order_id}/cancel", headers=self.auth, name="POST /orders/{id}/cancel",
                                  catch_response=True, timeout=TIMEOUT) as r:
                if expect(r, 202) is not None:
                    self.follow(order_id, {"CANCELLED"}, SETTLE)


class Admin(HttpUser):
    """The shop's staff: restock, review held orders, read the sales report."""

    fixed_count = 1
    host = API
    wait_time = constant_pacing(1)

    @task(5)
    def review(self) -> None:
        with LEDGER.lock:
            pending = LEDGER.review[:]
            LEDGER.review.clear()
        for order_id in pending:
            decision = "reject" if random.random() < 0.25 else "approve"
            with self.client.post(f"/orders/{order_id}/review", json={"decision": decision}, headers=ADMIN,
                                  name="POST /orders/{id}/review", catch_response=True, timeout=TIMEOUT) as r:
                expect(r, 202)

    @task(2)
    def restock(self) -> None:
        sku = random.choice(CHEAP + [HOT, HOT, DEAR])
        for attempt in range(3):
            with self.client.post(f"/products/{sku}/stock", json={"delta": 40}, headers=ADMIN,
                                  name="POST /products/{sku}/stock", catch_response=True, timeout=TIMEOUT) as r:
                # 409 concurrent-modification with Retry-After: the hot sku is being reserved
                # from all the time; the admin's page tries again after the time it is told.
                if r.status_code == 409 and "concurrent-modification" in r.text and attempt < 2:
                    r.success()
                    gevent.sleep(float(r.headers.get("Retry-After") or 1))
                    continue
                expect(r, 200)
                return

    @task(1)
    def sales(self) -> None:
        day = time.strftime("%Y-%m-%d", time.gmtime())
        with self.client.get(f"/analytics/sales?from={day}&to={day}", headers=ADMIN, name="GET /analytics/sales",
                             catch_response=True, timeout=TIMEOUT) as r:
            expect(r, 200)


# ---------------------------------------------------------------------------------------
# The catalogue, the series, the verdict
# ---------------------------------------------------------------------------------------
def call(method: str, path: str, body: dict | None, headers: dict) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(API + path, data=data, method=method,
                                 headers=dict(headers, **{"Content-Type": "application/json"}))
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as e:
        return e.code, {}


def stock_catalogue() -> None:
    for sku in CHEAP + [HOT, DEAR]:
        price = "2500.00" if sku == DEAR else "9.99"
        status, _ = call("PUT", f"/products/{sku}", {"name": f"Soak {sku}", "price": {"amount": price, "currency": "EUR"}}, ADMIN)
        assert status == 201, f"creating {sku}: HTTP {status}"
        status, _ = call("POST", f"/products/{sku}/stock", {"delta": 100_000 if sku != HOT else 200}, ADMIN)
        assert status == 200, f"stocking {sku}: HTTP {status}"


def stack_memory() -> dict[str, float]:
    """Resident memory (MB) of the stack's processes by role, from /proc: the emulator, the
    gateway, the pollers, cargo lambda watch, and all function processes together."""
    roles = {"emulator": 0.0, "gateway": 0.0, "pollers": 0.0, "cargo-lambda": 0.0, "functions": 0.0}
    target = str(LOCAL.parent / "target")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                       if line.startswith("VmRSS:")) / 1024
        except (OSError, StopIteration, ValueError):
            continue
        if "local/emulator.py" in cmd:
            roles["emulator"] += rss
        elif "local/gateway.py" in cmd:
            roles["gateway"] += rss
        elif "local/pollers.py" in cmd:
            roles["pollers"] += rss
        elif "cargo-lambda" in cmd and " watch" in cmd:
            roles["cargo-lambda"] += rss
        elif cmd.startswith(target) or cmd.startswith("target/debug/") or cmd.startswith("target/release/"):
            roles["functions"] += rss
    return {k: round(v, 1) for k, v in roles.items()}


def percentile(hist: dict[int, int], q: float) -> float | None:
    total = sum(hist.values())
    if not total:
        return None
    rank, seen = q * total, 0
    for ms in sorted(hist):
        seen += hist[ms]
        if seen >= rank:
            return float(ms)
    return float(max(hist))


class Recorder:
    """One row per SOAK_SAMPLE_SECONDS: requests, failures and p50/p95/p99 per route in that
    window, orders placed and settled (and how long they took), memory, crashes."""

    def __init__(self, environment) -> None:
        self.env = environment
        self.rows: list[dict] = []
        self.started = time.time()
        self.last: dict[str, tuple[int, int, dict]] = {}
        self.last_settled: set[str] = set()
        self.placed_before = 0

    def sample(self) -> dict:
        now = time.time()
        routes = {}
        for (name, method), entry in self.env.stats.entries.items():
            key = name
            before = self.last.get(key, (0, 0, {}))
            hist = {ms: n - before[2].get(ms, 0) for ms, n in entry.response_times.items() if n - before[2].get(ms, 0) > 0}
            requests, failures = entry.num_requests - before[0], entry.num_failures - before[1]
            self.last[key] = (entry.num_requests, entry.num_failures, dict(entry.response_times))
            if requests or failures:
                routes[key] = {"requests": requests, "failures": failures,
                               "p50_ms": percentile(hist, 0.5), "p95_ms": percentile(hist, 0.95),
                               "p99_ms": percentile(hist, 0.99)}
        with LEDGER.lock:
            settled_now = {o: t for o, t in LEDGER.settled.items() if o not in self.last_settled}
            self.last_settled.update(settled_now)
            placed = len(LEDGER.placed)
        times = sorted(settled_now.values())
        row = {
            "minute": round((now - self.started) / 60, 2),
            "requests": sum(r["requests"] for r in routes.values()),
            "failures": sum(r["failures"] for r in routes.values()),
            "routes": routes,
            "orders_placed": placed - self.placed_before,
            "orders_settled": len(times),
            "settle_p50_s": round(times[len(times) // 2], 2) if times else None,
            "settle_max_s": round(times[-1], 2) if times else None,
            "rss_mb": stack_memory(),
            "function_crashes": len(function_crashes()),
        }
        self.placed_before = placed
        self.rows.append(row)
        print(f"[soak] {row['minute']:6.2f} min: {row['requests']} requests, {row['failures']} failed, {row['orders_placed']} orders placed, "
              f"{row['orders_settled']} orders settled (max {row['settle_max_s']} s), emulator "
              f"{row['rss_mb']['emulator']} MB, crashes {row['function_crashes']}", flush=True)
        return row

    def loop(self) -> None:
        while True:
            gevent.sleep(SAMPLE)
            self.sample()


RECORDER: Recorder | None = None


@events.test_start.add_listener
def on_test_start(environment, **_kw) -> None:
    global RECORDER
    stock_catalogue()
    RECORDER = Recorder(environment)
    gevent.spawn(RECORDER.loop)


def drain() -> list[str]:
    """Waits up to SOAK_SETTLE_SECONDS for the orders still in flight; those left over."""
    deadline = time.time() + SETTLE
    left = LEDGER.in_flight()
    while left and time.time() < deadline:
        for order_id in left:
            status, order = call("GET", f"/orders/{order_id}", None, ADMIN)
            if status == 200:
                LEDGER.observe(order_id, order["status"], order.get("updated_at"))
                if order["status"] == "UNDER_REVIEW":
                    call("POST", f"/orders/{order_id}/review", {"decision": "approve"}, ADMIN)
        time.sleep(1)
        left = LEDGER.in_flight()
    return left


@events.quitting.add_listener
def on_quitting(environment, **_kw) -> None:
    if RECORDER is None:
        return
    RECORDER.sample()
    left = drain()
    total = environment.stats.total
    # An order held for review waits for a person; its bound runs from its review, so only
    # orders never held count against SOAK_SETTLE_SECONDS.
    held = LEDGER.held
    slow = sorted(o for o, t in LEDGER.settled.items() if t > SETTLE and o not in held)
    crashes = function_crashes()
    settle_times = sorted(LEDGER.settled.values())
    summary = {
        "minutes": MINUTES,
        "shoppers": SHOPPERS,
        "target_orders_per_second": RATE,
        "requests": total.num_requests,
        "failed_requests": total.num_failures,
        "orders_placed": len(LEDGER.placed),
        "orders_settled": len(LEDGER.settled),
        "orders_accepted_per_second": round(len(LEDGER.placed) / max(MINUTES * 60, 1), 2),
        "settle_p50_s": settle_times[len(settle_times) // 2] if settle_times else None,
        "settle_p99_s": settle_times[int(len(settle_times) * 0.99)] if settle_times else None,
        "settle_max_s": settle_times[-1] if settle_times else None,
        "orders_not_settled": left,
        "orders_settled_late": slow,
        "cancelled": sum(1 for s in LEDGER.status.values() if s == "CANCELLED"),
        "function_crashes": crashes,
        "errors": [f"{e.method} {e.name}: {e.error} x{e.occurrences}" for e in environment.stats.errors.values()][:20],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"summary": summary, "series": RECORDER.rows}, indent=1))
    problems = []
    if total.num_failures:
        problems.append(f"{total.num_failures} failed requests")
    if crashes:
        problems.append(f"{len(crashes)} function crashes")
    if left:
        problems.append(f"{len(left)} orders not settled")
    if slow:
        problems.append(f"{len(slow)} orders settled after {SETTLE:.0f} s")
    if not LEDGER.settled:
        problems.append("no order settled")
    summary["problems"] = problems
    OUT.write_text(json.dumps({"summary": summary, "series": RECORDER.rows}, indent=1))
    print(f"[soak] summary: {json.dumps({k: v for k, v in summary.items() if k not in ('orders_not_settled', 'orders_settled_late')})}", flush=True)
    if problems:
        print("[soak] FAILED: " + "; ".join(problems), flush=True)
        environment.process_exit_code = 1
    else:
        print("[soak] passed", flush=True)
        environment.process_exit_code = 0
