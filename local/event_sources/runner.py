"""What every mapping's runner shares: its settings from the mapping, its threads, which
restart after an unexpected error, and the encoding of binary data in Lambda events."""

from __future__ import annotations

import base64
import threading
from typing import Any, Callable

from .clients import Aws
from .settings import LOG, REPORT_FAILURES, backoff


def function_name_of(function_arn: str) -> str:
    # arn:aws:lambda:region:account:function:NAME[:qualifier]
    parts = function_arn.split(":")
    return parts[6] if len(parts) > 6 else parts[-1]


class Runner:
    """Runs one enabled mapping until stopped."""

    def __init__(self, aws: Aws, config: dict, fingerprint: str, checkpoints: dict, predecessor: "Runner | None"):
        self.aws = aws
        self.config = config
        self.fingerprint = fingerprint
        self.uuid: str = config["UUID"]
        self.short = self.uuid[:8]
        self.function_arn: str = config["FunctionArn"]
        self.function = function_name_of(self.function_arn)
        self.source_arn: str = config["EventSourceArn"]
        self.batch_size = int(config.get("BatchSize") or 10)
        self.window = float(config.get("MaximumBatchingWindowInSeconds") or 0)
        self.report_failures = REPORT_FAILURES in (config.get("FunctionResponseTypes") or [])
        self.checkpoints = checkpoints  # shard id -> last processed sequence number
        self.predecessor = predecessor
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        for key in ("FilterCriteria", "TumblingWindowInSeconds"):
            if config.get(key):
                LOG.warning("[%s] %s is not applied locally: every record is delivered", self.short, key)

    # lifecycle
    def start(self) -> None:
        raise NotImplementedError

    def refresh(self) -> None:
        """Called on every re-list (streams discover shards here)."""

    def stop(self) -> None:
        self.stop_event.set()

    def alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def spawn(self, name: str, target: Callable[[], None]) -> threading.Thread:
        thread = threading.Thread(target=self._guard(target), name=name, daemon=True)
        self.threads.append(thread)
        thread.start()
        return thread

    def _guard(self, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            # Last line of defence: a worker never dies of an unexpected error, it restarts.
            failures = 0
            while not self.stop_event.is_set():
                try:
                    target()
                    return
                except Exception:
                    failures += 1
                    LOG.exception("[%s] worker error (restarting from the checkpoint)", self.short)
                    self.stop_event.wait(backoff(failures))

        return run

    def wait(self, seconds: float) -> bool:
        """Sleep unless stopped; True when stopped."""
        return self.stop_event.wait(max(seconds, 0))

    def log_invocation(self, source: str, size: int, result: str) -> None:
        LOG.info("[%s] %s %s batch=%d -> %s", self.short, self.function, source, size, result)


def b64(data: Any) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode("ascii")
