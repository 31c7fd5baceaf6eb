"""SQS mappings: concurrent batches received, handed to the function and deleted as Lambda does."""

from __future__ import annotations

import threading
import time
from typing import Any

from .invoke import WHOLE_BATCH, invoke, reported_failures
from .runner import Runner, b64
from .settings import IDLE, IDLE_EXTRA, LOG, SQS_LONG_POLL_SECONDS, SQS_POLLERS, SQS_POLLERS_MAX, backoff


class SqsRunner(Runner):
    def start(self) -> None:
        parts = self.source_arn.split(":")
        self.queue_arn = self.source_arn
        self.region = parts[3]
        # Lambda polls an SQS queue with several concurrent batches (up to five to start with,
        # or ScalingConfig.MaximumConcurrency) and scales with the backlog: a queue with a
        # backlog is drained by as many function instances as there are batches in flight.
        # Here the first poller gathers batches as before; the others join while it keeps
        # receiving full batches (a backlog), and stand by once a receive comes back empty,
        # so a quiet queue is still read by one poller with its batching window.
        scaling = (self.config.get("ScalingConfig") or {}).get("MaximumConcurrency")
        self.pollers = max(1, min(int(scaling or SQS_POLLERS), SQS_POLLERS_MAX))
        self.backlog = threading.Event()
        for i in range(self.pollers):
            self.spawn(f"sqs-{self.short}-{i}", lambda i=i: self.run(primary=(i == 0)))

    def run(self, primary: bool = True) -> None:
        failures = 0
        while not self.stop_event.is_set():
            if not primary and not self.backlog.is_set():
                self.wait(IDLE_EXTRA)
                continue
            try:
                url = self.aws.queue_url(self.queue_arn)
                batch = self.gather(url, give_up_when_empty=not primary)
                if len(batch) >= self.batch_size:
                    self.backlog.set()
                elif not batch or not primary:
                    self.backlog.clear()
                failures = 0
            except Exception as err:  # emulator unreachable, queue deleted...
                failures += 1
                self.aws.forget_queue(self.queue_arn)
                LOG.warning("[%s] receive from %s failed: %s", self.short, self.queue_arn, err)
                self.wait(backoff(failures))
                continue
            if batch and not self.stop_event.is_set():
                self.handle(url, batch)
            elif batch:
                self.release(url, batch)

    def release(self, url: str, batch: list[dict]) -> None:
        """Messages received as the mapping stopped (a long poll answered after it was
        disabled) are made visible again at once, not left hidden for the visibility timeout."""
        for start in range(0, len(batch), 10):
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                       for i, m in enumerate(batch[start:start + 10])]
            try:
                self.aws.sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
            except Exception as err:  # noqa: BLE001 - they become visible at their timeout anyway
                LOG.warning("[%s] could not release %d message(s): %s", self.short, len(entries), err)

    def gather(self, url: str, give_up_when_empty: bool = False) -> list[dict]:
        """Up to BatchSize messages: ReceiveMessage until the batch is full or the window,
        opened by the first message, has passed (window 0: the first non-empty receive)."""
        batch: dict[str, dict] = {}  # message id -> message (a re-received one keeps its newest handle)
        deadline: float | None = None
        while not self.stop_event.is_set():
            want = min(self.batch_size - len(batch), 10)
            # Long polling while nothing is gathered, as Lambda's pollers do: the receive
            # returns as soon as a message arrives, and an idle queue costs the emulator one
            # waiting request instead of four full scans of the queue a second.
            long_poll = SQS_LONG_POLL_SECONDS if not batch and not give_up_when_empty else 0
            messages = self.aws.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=want,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=long_poll,
            ).get("Messages", [])
            for message in messages:
                batch[message["MessageId"]] = message
            if batch and deadline is None:
                deadline = time.monotonic() + self.window
            if len(batch) >= self.batch_size or (batch and time.monotonic() >= deadline):
                break
            if not messages:
                if give_up_when_empty and not batch:
                    return []
                if long_poll:
                    continue  # the receive itself waited
                pause = IDLE if deadline is None else min(IDLE, deadline - time.monotonic())
                self.wait(pause)
        return list(batch.values())

    def record(self, message: dict) -> dict:
        attributes = message.get("MessageAttributes") or {}
        rec = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": dict(message.get("Attributes") or {}),
            "messageAttributes": {name: lambda_message_attribute(v) for name, v in attributes.items()},
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }
        if message.get("MD5OfMessageAttributes"):
            rec["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return rec

    def handle(self, url: str, messages: list[dict]) -> None:
        event = {"Records": [self.record(m) for m in messages]}
        outcome = invoke(self.function, event)
        ids = [m["MessageId"] for m in messages]
        if outcome.kind != "ok":
            # Nothing deleted: the messages reappear after the visibility timeout, and the
            # queue's redrive policy applies on a later receive.
            self.log_invocation("sqs", len(messages), f"{outcome.kind} ({outcome.detail}); nothing deleted")
            return
        if self.report_failures:
            failed = reported_failures(outcome, ids)
            if failed is WHOLE_BATCH:
                self.log_invocation("sqs", len(messages), "invalid batchItemFailures: whole batch failed; nothing deleted")
                return
        else:
            failed = []
        keep = set(failed)  # type: ignore[arg-type]
        done = [m for m in messages if m["MessageId"] not in keep]
        self.delete(url, done)
        result = "ok" if not keep else f"partial: {len(keep)} failed, {len(done)} deleted"
        self.log_invocation("sqs", len(messages), result)

    def delete(self, url: str, messages: list[dict]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            for attempt in range(1, 6):
                try:
                    response = self.aws.sqs.delete_message_batch(QueueUrl=url, Entries=entries)
                    for failure in response.get("Failed", []):
                        LOG.warning("[%s] delete failed: %s", self.short, failure)
                    break
                except Exception as err:
                    LOG.warning("[%s] delete_message_batch failed (attempt %d): %s", self.short, attempt, err)
                    if self.wait(backoff(attempt)):
                        return


def lambda_message_attribute(value: dict) -> dict:
    """SQS API shape {"StringValue", "BinaryValue"(bytes), ...} -> Lambda event shape."""
    out: dict[str, Any] = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = b64(value["BinaryValue"])
    out["stringListValues"] = list(value.get("StringListValues") or [])
    out["binaryListValues"] = [b64(b) for b in value.get("BinaryListValues") or []]
    out["dataType"] = value.get("DataType")
    return out
