"""The mappings as the emulator lists them, each run by its runner: started, restarted with
new settings, stopped when disabled or deleted."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time

from emulator import no_proxy_for_loopback  # local/

from .clients import Aws
from .runner import Runner
from .settings import ENDPOINT, LAMBDA_URL, LOG, RELIST
from .sqs import SqsRunner
from .streams import StreamRunner


_VOLATILE = ("LastModified", "LastProcessingResult", "State", "StateTransitionReason")


def fingerprint(config: dict) -> str:
    return json.dumps({k: v for k, v in config.items() if k not in _VOLATILE}, sort_keys=True, default=str)


class Supervisor:
    def __init__(self, aws: Aws):
        self.aws = aws
        self.runners: dict[str, Runner] = {}
        self.retired: dict[str, Runner] = {}  # stopped, possibly still finishing a batch
        self.checkpoints: dict[str, dict] = {}  # mapping uuid -> {shard id: sequence number}

    def list_mappings(self) -> list[dict]:
        mappings, marker = [], None
        while True:
            page = self.aws.lam.list_event_source_mappings(**({"Marker": marker} if marker else {}))
            mappings.extend(page.get("EventSourceMappings", []))
            marker = page.get("NextMarker")
            if not marker:
                return mappings

    def tick(self) -> bool:
        try:
            mappings = self.list_mappings()
        except Exception as err:
            LOG.warning("listing event-source mappings failed: %s", err)
            return False
        enabled = {m["UUID"]: m for m in mappings if m.get("State") == "Enabled"}
        existing = {m["UUID"] for m in mappings}
        for uuid, runner in list(self.runners.items()):
            config = enabled.get(uuid)
            if config is None:
                self.retire(uuid, "deleted" if uuid not in existing else "disabled")
            elif fingerprint(config) != runner.fingerprint:
                self.retire(uuid, "updated")
        for uuid, config in enabled.items():
            if uuid not in self.runners:
                self.launch(config)
        for uuid in list(self.checkpoints):
            if uuid not in existing:
                del self.checkpoints[uuid]
        for uuid, runner in list(self.retired.items()):
            if not runner.alive():
                del self.retired[uuid]
        for runner in self.runners.values():
            runner.refresh()
        return True

    def launch(self, config: dict) -> None:
        uuid = config["UUID"]
        service = config["EventSourceArn"].split(":")[2]
        cls = {"sqs": SqsRunner, "kinesis": StreamRunner, "dynamodb": StreamRunner}.get(service)
        if cls is None:
            LOG.warning("[%s] unsupported event source %s: not polled", uuid[:8], config["EventSourceArn"])
            return
        runner = cls(self.aws, config, fingerprint(config), self.checkpoints.setdefault(uuid, {}), self.retired.get(uuid))
        self.runners[uuid] = runner
        LOG.info(
            "[%s] mapping started: %s -> %s (batch %s, window %ss%s)",
            runner.short, config["EventSourceArn"], runner.function, runner.batch_size, runner.window,
            ", ReportBatchItemFailures" if runner.report_failures else "",
        )
        runner.start()

    def retire(self, uuid: str, why: str) -> None:
        runner = self.runners.pop(uuid)
        runner.stop()
        runner.predecessor = None  # no chain of retired runners
        self.retired[uuid] = runner
        LOG.info("[%s] mapping stopped (%s)", runner.short, why)

    def shutdown(self, timeout: float = 5.0) -> None:
        runners = list(self.runners.values()) + list(self.retired.values())
        for runner in runners:
            runner.stop()
        deadline = time.monotonic() + timeout
        for runner in runners:
            for thread in runner.threads:
                thread.join(max(deadline - time.monotonic(), 0))


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s pollers %(levelname)s %(message)s"
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    no_proxy_for_loopback()

    stop = threading.Event()

    def on_signal(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    supervisor = Supervisor(Aws())
    ready = False
    while not stop.is_set():
        ok = supervisor.tick()
        if ok and not ready:
            ready = True
            print(f"pollers ready: mappings from {ENDPOINT}, functions at {LAMBDA_URL}", flush=True)
        stop.wait(RELIST)
    supervisor.shutdown()
    print("pollers stopped", flush=True)
    return 0
