"""How many invocations of one function each stack process has in `cargo lambda watch` at once.

cargo lambda watch (1.9.2) queues the invocations of each function in a bounded channel of
100 (crates/cargo-lambda-watch/src/state.rs, `RequestQueue::new`: `channel(100)`), and
`RequestCache::upsert` awaits a place in that channel while it holds the write lock of the
map of every function's queue (state.rs, `upsert`: `self.inner.write()` then
`push(req).await`). Function processes take work from that map through its read lock
(`RequestCache::pop`), so once 101 invocations of one function wait, nothing is ever taken
again, for any function: the scheduler task is parked in `upsert`, every instance's
`GET /next` waits for the read lock, and every caller hangs until its own timeout. Under the
load test this happened to `GET /orders/{id}` (120 shoppers against 4 instances) within two
minutes, and the whole stack stopped.

The callers of cargo lambda watch are three processes (the gateway, the emulator, the
pollers). Each lets at most INFLIGHT invocations of one function be in cargo lambda at once
(default 24: 3 x 24 leaves room below 100 for invocations whose caller gave up while they
were still queued, which stay in the channel until an instance takes them). A caller beyond
that waits here, in its own process, as it would wait in cargo lambda's queue, within the
time it allows the invocation; Lambda, with a function at its concurrency limit, would
throttle instead. The upstream report: "watch: upsert awaits a full bounded channel while
holding RequestCache's write lock, so pop can never free it (deadlock at 101 queued
invocations of one function)".
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager

#: cargo-lambda 1.9.2's per-function queue capacity, which the three callers together stay under.
CARGO_LAMBDA_QUEUE = 100
INFLIGHT = int(os.environ.get("LOCAL_LAMBDA_INFLIGHT") or 24)


class Busy(Exception):
    """The function had INFLIGHT invocations from this process for the whole wait."""


class Gate:
    def __init__(self, inflight: int = INFLIGHT) -> None:
        self.inflight = inflight
        self._guard = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    def _slot(self, function: str) -> threading.BoundedSemaphore:
        with self._guard:
            slot = self._slots.get(function)
            if slot is None:
                slot = self._slots[function] = threading.BoundedSemaphore(self.inflight)
            return slot

    @contextmanager
    def entry(self, function: str, timeout: float):
        """Holds one of the function's places for the invocation; Busy after `timeout` s.
        Yields the seconds left of `timeout` for the invocation itself."""
        started = time.monotonic()
        slot = self._slot(function)
        if not slot.acquire(timeout=max(timeout, 0)):
            raise Busy(f"{function}: {self.inflight} invocations in flight from this process for {timeout:.0f} s")
        try:
            yield max(timeout - (time.monotonic() - started), 0.001)
        finally:
            slot.release()


GATE = Gate()
