#!/usr/bin/env python3
"""Local Lambda event-source mappings: pollers that feed SQS, Kinesis and DynamoDB Streams
records to the functions served by `cargo lambda watch`, as Lambda's pollers do.

    .venv/bin/python local/pollers.py

Environment:
    AWS_ENDPOINT_URL        the emulator (default http://127.0.0.1:$MOTO_PORT, MOTO_PORT 5000)
    AWS_ENDPOINT_URL_DYNAMODB_STREAMS  where DynamoDB Streams is served, when apart from it
    AWS_REGION              region (default us-east-1); credentials default to "test"
    CARGO_LAMBDA_PORT       port of `cargo lambda watch` (default 9000)
    CARGO_LAMBDA_HOST       host of `cargo lambda watch` (default 127.0.0.1)
    LAMBDA_INVOKE_TIMEOUT   seconds to wait for one invocation (default 600: the first invoke
                            of a function may compile it)
    POLLERS_RELIST_SECONDS  how often the mappings (and stream shards) are re-read (default 2)
    POLLERS_IDLE_SECONDS    pause after an empty read (default 0.25)
    POLLERS_SQS_CONCURRENCY concurrent batches per SQS mapping (default 5, as Lambda starts)
    POLLERS_RETRY_SECONDS   first back-off before a retry, doubled per failure of the same
                            batch up to POLLERS_RETRY_MAX_SECONDS (defaults 0.5 and 2)

Source of truth: the event-source mapping records in the emulator
(`lambda:ListEventSourceMappings`), re-read every POLLERS_RELIST_SECONDS, so a mapping
created by provisioning, by Terraform or by a test through the AWS API is picked up; one
that is disabled (State != Enabled), updated or deleted is stopped (an updated one restarts
with its new settings, from its checkpoints). The function invoked is the function name of
the mapping's FunctionArn, which is the binary name cargo lambda serves. The emulator
(local/emulator.py) switches moto's own, synchronous, mappings off; the records stay.

AWS behaviours reproduced
  All sources: asynchronous to the producers; batches of up to BatchSize gathered within
  MaximumBatchingWindowInSeconds (0: invoke as soon as a read returns records; otherwise
  the window opens with the first record of the batch - AWS opens it when the previous
  invocation ends; either way a lone record on an idle source waits up to the window); FunctionResponseTypes
  ["ReportBatchItemFailures"] with AWS's success/failure rules (null or empty response or
  list = success; an itemIdentifier that is missing, empty, not a string or not in the
  batch, or a response that is not a JSON object = the whole batch failed).
  SQS: ReceiveMessage (MaxNumberOfMessages min(BatchSize, 10), all system and message
  attributes, the queue's own visibility timeout), the Lambda SQS event shape; success
  deletes the batch, reported failures are kept, a function error (or an unreachable
  function) deletes nothing. What is not deleted reappears after the queue's visibility
  timeout; the queue's RedrivePolicy is applied by moto itself, as by SQS: ReceiveMessage
  moves a message whose receive count reached maxReceiveCount to the dead-letter queue
  (moto/sqs/models.py, SQSBackend.receive_message, moto 5.2.5), so the pollers do nothing
  for it.
  Kinesis and DynamoDB Streams: one worker per shard, records in order, the Lambda event
  shapes (Kinesis data base64, DynamoDB images in DynamoDB JSON, eventVersion 1.1);
  StartingPosition TRIM_HORIZON / LATEST / AT_TIMESTAMP (Kinesis only, as in AWS), shards
  that appear later are read from their start, a child shard only after its parents were
  read to their end; an in-memory checkpoint per shard (a re-enabled or updated mapping
  resumes from it). Success checkpoints after the batch; reported failures checkpoint just
  before the lowest failed sequence number and the retry starts there; a function error
  retries the whole batch, or with BisectBatchOnFunctionError splits it in two and
  processes each half (splits do not count as retries). MaximumRetryAttempts (counted per
  checkpoint: progress resets the count) and MaximumRecordAgeInSeconds (-1 = infinite)
  discard what is exhausted or too old: an invocation record ("RetryAttemptsExhausted" /
  "RecordAgeExceeded", KinesisBatchInfo or DDBStreamBatchInfo) goes to
  DestinationConfig.OnFailure (SQS queue or SNS topic) and processing moves on. Errors
  where the function was never reached (cargo lambda down, unknown binary) are retried
  without counting, as AWS does for service errors and throttles.

Not reproduced
  FilterCriteria (logged, not applied: every record is delivered), TumblingWindowInSeconds,
  ParallelizationFactor > 1, SQS pollers scaling as far as Lambda's (at most
  POLLERS_SQS_CONCURRENCY, default 5, or the mapping's ScalingConfig.MaximumConcurrency,
  batches at once per SQS mapping, joined while full batches keep coming), the 6 MB payload limit, Kafka/MQ/DocumentDB sources, S3 on-failure
  destinations, checkpoints surviving a restart of this process, shard iterator expiry,
  a partial-failure retry growing beyond the records of the failed batch (AWS re-reads up
  to BatchSize from the checkpoint), and the mapping's LastProcessingResult/State
  transitions. Back-offs are short (0.5 s doubling to 2 s) where AWS waits longer.

Logs: one line per invocation on stderr (mapping id, function, source, batch size,
result); "pollers ready" on stdout once the mappings were read. SIGINT/SIGTERM stop it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any, Callable

from emulator import no_proxy_for_loopback  # local/, beside this file
from lambda_gate import GATE, Busy  # noqa: E402

LOG = logging.getLogger("pollers")

REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL") or f"http://127.0.0.1:{os.environ.get('MOTO_PORT') or 5000}"


def endpoint_for(service: str) -> str:
    """The service's own endpoint when the stack serves it apart (AWS_ENDPOINT_URL_DYNAMODB,
    AWS_ENDPOINT_URL_DYNAMODB_STREAMS, as the SDKs read them), else ENDPOINT."""
    key = "AWS_ENDPOINT_URL_" + service.upper().replace("DYNAMODBSTREAMS", "DYNAMODB_STREAMS")
    return os.environ.get(key) or ENDPOINT
LAMBDA_URL = (
    f"http://{os.environ.get('CARGO_LAMBDA_HOST') or '127.0.0.1'}:"
    f"{os.environ.get('CARGO_LAMBDA_PORT') or 9000}"
)
INVOKE_TIMEOUT = float(os.environ.get("LAMBDA_INVOKE_TIMEOUT") or 600)
RELIST = float(os.environ.get("POLLERS_RELIST_SECONDS") or 2)
IDLE = min(float(os.environ.get("POLLERS_IDLE_SECONDS") or 0.25), 0.5)
RETRY_BASE = float(os.environ.get("POLLERS_RETRY_SECONDS") or 0.5)
RETRY_MAX = float(os.environ.get("POLLERS_RETRY_MAX_SECONDS") or 2)

REPORT_FAILURES = "ReportBatchItemFailures"
# Concurrent batches per SQS mapping under a backlog (Lambda starts with five), and how often
# the extra pollers look whether the backlog is there.
SQS_POLLERS = int(os.environ.get("POLLERS_SQS_CONCURRENCY") or 5)
SQS_POLLERS_MAX = 20
# WaitTimeSeconds of a receive while a batch is empty: short, so stopping takes at most that.
SQS_LONG_POLL_SECONDS = int(os.environ.get("POLLERS_SQS_WAIT_SECONDS") or 2)
IDLE_EXTRA = 0.5


def backoff(failures: int) -> float:
    """Pause before retry number `failures` (1, 2, ...): exponential, bounded."""
    return min(RETRY_BASE * (2 ** max(failures - 1, 0)), RETRY_MAX)


# ---------------------------------------------------------------------------------------
# Emulator clients
# ---------------------------------------------------------------------------------------
class Aws:
    """boto3 clients against the emulator, shared by all threads (clients are thread-safe;
    creating them is not, so it happens here, once)."""

    def __init__(self) -> None:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or "test",
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or "test",
            region_name=REGION,
        )
        config = Config(
            max_pool_connections=64,
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 2, "mode": "standard"},
        )

        def make(service: str):
            return session.client(service, endpoint_url=endpoint_for(service), config=config)

        self.lam = make("lambda")
        self.sqs = make("sqs")
        self.sns = make("sns")
        self.kinesis = make("kinesis")
        self.ddbstreams = make("dynamodbstreams")
        self._queue_urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def queue_url(self, queue_arn: str) -> str:
        with self._lock:
            url = self._queue_urls.get(queue_arn)
        if url is None:
            parts = queue_arn.split(":")
            url = self.sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
            with self._lock:
                self._queue_urls[queue_arn] = url
        return url

    def forget_queue(self, queue_arn: str) -> None:
        with self._lock:
            self._queue_urls.pop(queue_arn, None)


# ---------------------------------------------------------------------------------------
# Invoking a function through cargo lambda watch
# ---------------------------------------------------------------------------------------
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


_WHOLE_BATCH = object()


def reported_failures(outcome: Outcome, known_ids: list[str]) -> list[str] | object:
    """The itemIdentifiers of a ReportBatchItemFailures response.

    [] is a complete success (null or empty response, no or an empty/null list);
    _WHOLE_BATCH is a complete failure: a response that is not a JSON object, a
    batchItemFailures that is not a list, an entry without a non-empty string itemIdentifier, or one that names no
    record of the batch (AWS's "Success and failure conditions")."""
    payload = outcome.payload
    if not outcome.parsed:
        return _WHOLE_BATCH
    if payload is None:
        return []
    if not isinstance(payload, dict):
        return _WHOLE_BATCH
    items = payload.get("batchItemFailures")
    if items is None:
        return []
    if not isinstance(items, list):
        return _WHOLE_BATCH
    known = set(known_ids)
    failed: list[str] = []
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or not ident or ident not in known:
            return _WHOLE_BATCH
        failed.append(ident)
    return failed


# ---------------------------------------------------------------------------------------
# Mapping runners
# ---------------------------------------------------------------------------------------
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
            if failed is _WHOLE_BATCH:
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
        out["binaryValue"] = _b64(value["BinaryValue"])
    out["stringListValues"] = list(value.get("StringListValues") or [])
    out["binaryListValues"] = [_b64(b) for b in value.get("BinaryListValues") or []]
    out["dataType"] = value.get("DataType")
    return out


def _b64(data: Any) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------------------
def _epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    return float(value)


def _iso(epoch: float, millis: bool = True) -> str:
    moment = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ShardInfo:
    shard_id: str
    parents: tuple[str, ...]
    closed: bool


class StreamSource:
    """What differs between Kinesis and DynamoDB Streams."""

    kind = ""
    batch_info_key = ""
    max_limit = 1000

    def __init__(self, aws: Aws, arn: str):
        self.aws = aws
        self.arn = arn
        self.region = arn.split(":")[3]

    def list_shards(self) -> list[ShardInfo]:
        raise NotImplementedError

    def iterator(self, shard_id: str, kind: str, sequence: str | None = None, timestamp: Any = None) -> str:
        raise NotImplementedError

    def get_records(self, iterator: str, limit: int) -> tuple[list[dict], str | None]:
        raise NotImplementedError

    def event_record(self, record: dict, shard_id: str, role_arn: str) -> dict:
        raise NotImplementedError

    @staticmethod
    def sequence(record: dict) -> str:
        raise NotImplementedError

    @staticmethod
    def arrival(record: dict) -> float:
        raise NotImplementedError

    def batch_time(self, epoch: float) -> str:
        return _iso(epoch)


class KinesisSource(StreamSource):
    kind = "kinesis"
    batch_info_key = "KinesisBatchInfo"
    max_limit = 10000

    def list_shards(self) -> list[ShardInfo]:
        shards, token = [], None
        while True:
            args = {"NextToken": token} if token else {"StreamARN": self.arn}
            page = self.aws.kinesis.list_shards(**args)
            shards.extend(page.get("Shards", []))
            token = page.get("NextToken")
            if not token:
                break
        return [
            ShardInfo(
                s["ShardId"],
                tuple(p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p),
                "EndingSequenceNumber" in s.get("SequenceNumberRange", {}),
            )
            for s in shards
        ]

    def iterator(self, shard_id, kind, sequence=None, timestamp=None):
        args: dict[str, Any] = {"StreamARN": self.arn, "ShardId": shard_id, "ShardIteratorType": kind}
        if sequence is not None:
            args["StartingSequenceNumber"] = sequence
        if timestamp is not None:
            args["Timestamp"] = timestamp
        return self.aws.kinesis.get_shard_iterator(**args)["ShardIterator"]

    def get_records(self, iterator, limit):
        page = self.aws.kinesis.get_records(StreamARN=self.arn, ShardIterator=iterator, Limit=limit)
        return page.get("Records", []), page.get("NextShardIterator")

    def event_record(self, record, shard_id, role_arn):
        seq = record["SequenceNumber"]
        return {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": record["PartitionKey"],
                "sequenceNumber": seq,
                "data": _b64(record["Data"]),
                "approximateArrivalTimestamp": round(self.arrival(record), 3),
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{shard_id}:{seq}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": role_arn,
            "awsRegion": self.region,
            "eventSourceARN": self.arn,
        }

    @staticmethod
    def sequence(record):
        return record["SequenceNumber"]

    @staticmethod
    def arrival(record):
        return _epoch(record["ApproximateArrivalTimestamp"])


class DynamoDBSource(StreamSource):
    kind = "dynamodb"
    batch_info_key = "DDBStreamBatchInfo"
    max_limit = 1000

    def list_shards(self) -> list[ShardInfo]:
        shards, start = [], None
        while True:
            args: dict[str, Any] = {"StreamArn": self.arn}
            if start:
                args["ExclusiveStartShardId"] = start
            desc = self.aws.ddbstreams.describe_stream(**args)["StreamDescription"]
            shards.extend(desc.get("Shards", []))
            start = desc.get("LastEvaluatedShardId")
            if not start:
                break
        return [
            ShardInfo(
                s["ShardId"],
                tuple(p for p in (s.get("ParentShardId"),) if p),
                "EndingSequenceNumber" in s.get("SequenceNumberRange", {}),
            )
            for s in shards
        ]

    def iterator(self, shard_id, kind, sequence=None, timestamp=None):
        if kind == "AT_TIMESTAMP":  # not a DynamoDB Streams position (AWS rejects the mapping)
            kind = "TRIM_HORIZON"
        args: dict[str, Any] = {"StreamArn": self.arn, "ShardId": shard_id, "ShardIteratorType": kind}
        if sequence is not None:
            args["SequenceNumber"] = sequence
        return self.aws.ddbstreams.get_shard_iterator(**args)["ShardIterator"]

    def get_records(self, iterator, limit):
        page = self.aws.ddbstreams.get_records(ShardIterator=iterator, Limit=limit)
        return page.get("Records", []), page.get("NextShardIterator")

    def event_record(self, record, shard_id, role_arn):
        src = record.get("dynamodb", {})
        ddb: dict[str, Any] = {}
        if "ApproximateCreationDateTime" in src:
            ddb["ApproximateCreationDateTime"] = int(_epoch(src["ApproximateCreationDateTime"]))
        for key in ("Keys", "NewImage", "OldImage"):
            if key in src:
                ddb[key] = {name: ddb_json(value) for name, value in src[key].items()}
        for key in ("SequenceNumber", "SizeBytes", "StreamViewType"):
            if key in src:
                ddb[key] = src[key]
        out = {
            "eventID": record.get("eventID"),
            "eventName": record.get("eventName"),
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": self.region,
            "dynamodb": ddb,
            "eventSourceARN": self.arn,
        }
        if record.get("userIdentity"):  # TTL deletions
            out["userIdentity"] = record["userIdentity"]
        return out

    @staticmethod
    def sequence(record):
        return record["dynamodb"]["SequenceNumber"]

    @staticmethod
    def arrival(record):
        return _epoch(record["dynamodb"].get("ApproximateCreationDateTime", time.time()))

    def batch_time(self, epoch: float) -> str:
        return _iso(epoch, millis=False)


def ddb_json(value: dict) -> dict:
    """boto3's AttributeValue (B/BS as bytes) -> the wire's DynamoDB JSON (base64)."""
    (kind, inner), = value.items()
    if kind == "B":
        return {"B": _b64(inner)}
    if kind == "BS":
        return {"BS": [_b64(b) for b in inner]}
    if kind == "M":
        return {"M": {k: ddb_json(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [ddb_json(v) for v in inner]}
    return {kind: inner}


class StreamRunner(Runner):
    def start(self) -> None:
        service = self.source_arn.split(":")[2]
        self.source: StreamSource = (KinesisSource if service == "kinesis" else DynamoDBSource)(self.aws, self.source_arn)
        self.starting_position = self.config.get("StartingPosition") or "TRIM_HORIZON"
        self.starting_timestamp = self.config.get("StartingPositionTimestamp")
        self.bisect = bool(self.config.get("BisectBatchOnFunctionError"))
        retries = self.config.get("MaximumRetryAttempts")
        self.max_retries = -1 if retries is None else int(retries)
        age = self.config.get("MaximumRecordAgeInSeconds")
        self.max_age = -1 if age is None else int(age)
        self.destination = ((self.config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        self.shards: dict[str, ShardInfo] = {}
        self.workers: dict[str, threading.Thread] = {}
        self.finished: set[str] = set()  # closed shards read to their end
        self.first_listing = True
        self._role: str | None = None
        self.refresh()

    def role_arn(self) -> str:
        """invokeIdentityArn: the function's execution role."""
        if self._role is None:
            try:
                self._role = self.aws.lam.get_function_configuration(FunctionName=self.function_arn)["Role"]
            except Exception as err:
                LOG.warning("[%s] cannot read the role of %s: %s", self.short, self.function, err)
                return ""
        return self._role

    def refresh(self) -> None:
        if self.stop_event.is_set():
            return
        try:
            listed = self.source.list_shards()
        except Exception as err:
            LOG.warning("[%s] listing shards of %s failed: %s", self.short, self.source_arn, err)
            return
        for info in listed:
            self.shards[info.shard_id] = info
            if info.shard_id in self.workers:
                continue
            # Shards present when the mapping starts begin at StartingPosition; shards that
            # appear later (resharding) and children are read from their start.
            position = self.starting_position if self.first_listing and not info.parents else "TRIM_HORIZON"
            worker = ShardWorker(self, info.shard_id, position)
            self.workers[info.shard_id] = self.spawn(f"{self.source.kind}-{self.short}-{info.shard_id}", worker.run)
        self.first_listing = False

    def shard_closed(self, shard_id: str) -> bool:
        info = self.shards.get(shard_id)
        return bool(info and info.closed)

    def parents_done(self, shard_id: str) -> bool:
        info = self.shards.get(shard_id)
        if not info:
            return True
        return all(p in self.finished or p not in self.shards for p in info.parents)


class ShardWorker:
    """Reads one shard in order and drives the batches through the function."""

    def __init__(self, runner: StreamRunner, shard_id: str, position: str):
        self.r = runner
        self.src = runner.source
        self.shard_id = shard_id
        self.position_type = position
        self.buffer: list[dict] = []  # fetched, not yet checkpointed, in order
        self.fetched: str | None = None  # sequence number of the last record fetched
        self.iterator: str | None = None

    # -- reading --------------------------------------------------------------------------
    def run(self) -> None:
        r = self.r
        # After an update or re-enable, the previous runner of this mapping may still be
        # finishing a batch of this shard: wait for it, then continue from its checkpoint.
        predecessor = r.predecessor
        if predecessor is not None:
            while predecessor.alive() and not r.wait(IDLE):
                pass
        while not r.parents_done(self.shard_id):  # a child shard after its parents (AWS order)
            if r.wait(IDLE):
                return
        self.buffer, self.iterator = [], None
        self.fetched = r.checkpoints.get(self.shard_id)
        LOG.info(
            "[%s] polling %s %s from %s", r.short, self.src.kind, self.shard_id,
            f"checkpoint {self.fetched}" if self.fetched is not None else self.position_type,
        )
        failures = 0
        while not r.stop_event.is_set():
            try:
                batch, exhausted = self.next_batch()
                failures = 0
            except Exception as err:
                failures += 1
                LOG.warning("[%s] reading %s %s failed (%s); retrying from the checkpoint", r.short, self.src.kind, self.shard_id, err)
                self.iterator = None  # re-positioned after the last record fetched
                r.wait(backoff(failures))
                continue
            if batch:
                if self.process(batch):
                    del self.buffer[: len(batch)]
            elif exhausted:
                if self.shard_id not in r.finished:
                    r.finished.add(self.shard_id)  # its children may start now
                    LOG.info("[%s] %s %s closed and fully processed", r.short, self.src.kind, self.shard_id)
                # AWS never adds records to a closed shard, and Lambda stops reading it. moto
                # does: Stream.get_shard_for_key (moto/kinesis/models.py:408-410) routes every
                # PutRecord to the first shard whose hash range matches, closed or not, so
                # after a split new records keep landing in the parent. Keep reading it.
                r.wait(IDLE)

    def new_iterator(self) -> str:
        if self.fetched is not None:
            return self.src.iterator(self.shard_id, "AFTER_SEQUENCE_NUMBER", sequence=self.fetched)
        timestamp = self.r.starting_timestamp if self.position_type == "AT_TIMESTAMP" else None
        return self.src.iterator(self.shard_id, self.position_type, timestamp=timestamp)

    def next_batch(self) -> tuple[list[dict], bool]:
        """Up to BatchSize records from the buffer and GetRecords, within the batching window.
        Returns (batch, shard_exhausted)."""
        r = self.r
        deadline: float | None = time.monotonic() + r.window if self.buffer else None
        while not r.stop_event.is_set():
            if len(self.buffer) >= r.batch_size:
                break
            closed = r.shard_closed(self.shard_id)  # known closed before this read
            if self.iterator is None:
                self.iterator = self.new_iterator()
            limit = min(r.batch_size - len(self.buffer), self.src.max_limit)
            records, next_iterator = self.src.get_records(self.iterator, limit)
            self.iterator = next_iterator
            if records:
                self.buffer.extend(records)
                self.fetched = self.src.sequence(records[-1])
            elif not self.buffer and (closed or next_iterator is None):
                return [], True
            if self.buffer and deadline is None:
                deadline = time.monotonic() + r.window
            if self.buffer and (len(self.buffer) >= r.batch_size or time.monotonic() >= deadline):
                break
            if not records:
                pause = IDLE if deadline is None else min(IDLE, deadline - time.monotonic())
                r.wait(pause)
        return self.buffer[: r.batch_size], False

    # -- processing -------------------------------------------------------------------------
    def checkpoint(self, record: dict) -> None:
        self.r.checkpoints[self.shard_id] = self.src.sequence(record)

    def process(self, batch: list[dict]) -> bool:
        """Invokes until every record of the batch is processed or discarded; False if stopped
        first (the checkpoint then holds what was done)."""
        r = self.r
        # Work list of (records, retries, invocations, last outcome): bisection replaces an
        # entry by its two halves, in order.
        work: list[list[Any]] = [[batch, 0, 0, None]]
        unreached = 0  # consecutive service errors
        while work:
            if r.stop_event.is_set():
                return False
            records, retries, invocations, last = work[0]
            if r.max_age >= 0:
                now = time.time()
                expired = 0
                while expired < len(records) and now - self.src.arrival(records[expired]) > r.max_age:
                    expired += 1
                if expired:
                    self.discard(records[:expired], "RecordAgeExceeded", invocations, last)
                    records = records[expired:]
                    if not records:
                        work.pop(0)
                        continue
                    work[0][0] = records
            role = r.role_arn() if self.src.kind == "kinesis" else ""
            event = {"Records": [self.src.event_record(rec, self.shard_id, role) for rec in records]}
            outcome = invoke(r.function, event)
            source = f"{self.src.kind} {self.shard_id}"
            span = f"{self.src.sequence(records[0])}..{self.src.sequence(records[-1])}"
            if outcome.kind == "service_error":
                # The function was not reached: retried without counting (AWS: service
                # errors and throttles do not consume retry attempts).
                unreached += 1
                r.log_invocation(source, len(records), f"not invoked ({outcome.detail}); retrying {span}")
                r.wait(backoff(unreached))
                continue
            unreached = 0
            invocations += 1
            work[0][2] = invocations
            work[0][3] = outcome
            if outcome.kind == "ok":
                failed = reported_failures(outcome, [self.src.sequence(x) for x in records]) if r.report_failures else []
                if failed is not _WHOLE_BATCH and not failed:
                    self.checkpoint(records[-1])
                    work.pop(0)
                    r.log_invocation(source, len(records), f"ok {span}")
                    continue
                if failed is _WHOLE_BATCH:
                    first = 0
                    why = "invalid batchItemFailures: whole batch failed"
                else:
                    lowest = min(failed, key=int)  # type: ignore[arg-type]
                    first = next(i for i, x in enumerate(records) if self.src.sequence(x) == lowest)
                    why = f"partial: {len(failed)} reported, checkpoint before {lowest}"  # type: ignore[arg-type]
                if first > 0:
                    # Progress: checkpoint just before the lowest failure, retry from there;
                    # the retry count is per checkpoint.
                    self.checkpoint(records[first - 1])
                    records = records[first:]
                    retries = 0
                work[0] = [records, retries + 1, invocations, outcome]
                if self.exhausted(retries + 1):
                    r.log_invocation(source, len(records) + first, f"{why}; retries exhausted")
                    self.discard(records, "RetryAttemptsExhausted", invocations, outcome)
                    work.pop(0)
                    continue
                r.log_invocation(source, len(records) + first, f"{why}; retrying from {self.src.sequence(records[0])}")
                r.wait(backoff(retries + 1))
                continue
            # Function error.
            if r.bisect and len(records) > 1:
                half = (len(records) + 1) // 2
                work[0:1] = [  # each half is a new batch: its own invocation count
                    [records[:half], retries, 0, outcome],
                    [records[half:], retries, 0, outcome],
                ]
                r.log_invocation(source, len(records), f"function error ({outcome.detail}); bisecting {span}")
                r.wait(backoff(1))
                continue
            retries += 1
            work[0][1] = retries
            if self.exhausted(retries):
                r.log_invocation(source, len(records), f"function error ({outcome.detail}); retries exhausted {span}")
                self.discard(records, "RetryAttemptsExhausted", invocations, outcome)
                work.pop(0)
                continue
            r.log_invocation(source, len(records), f"function error ({outcome.detail}); retrying {span}")
            r.wait(backoff(retries))
        return True

    def exhausted(self, retries: int) -> bool:
        return self.r.max_retries >= 0 and retries > self.r.max_retries

    def discard(self, records: list[dict], condition: str, invocations: int, outcome: Outcome | None) -> None:
        """Skip records for good: the invocation record to the on-failure destination (when
        there is one), then the checkpoint moves past them."""
        r = self.r
        span = f"{self.src.sequence(records[0])}..{self.src.sequence(records[-1])}"
        if r.destination:
            document = self.invocation_record(records, condition, invocations, outcome)
            for attempt in range(1, 6):
                try:
                    self.send(r.destination, json.dumps(document))
                    LOG.info("[%s] %s: %d record(s) %s sent to %s", r.short, condition, len(records), span, r.destination)
                    break
                except Exception as err:
                    LOG.warning("[%s] sending to %s failed (attempt %d): %s", r.short, r.destination, attempt, err)
                    if r.wait(backoff(attempt)):
                        break
            else:
                LOG.error("[%s] %s: records %s dropped, destination unreachable", r.short, condition, span)
        else:
            LOG.info("[%s] %s: %d record(s) %s skipped (no on-failure destination)", r.short, condition, len(records), span)
        self.checkpoint(records[-1])

    def send(self, destination: str, message: str) -> None:
        service = destination.split(":")[2]
        if service == "sqs":
            self.r.aws.sqs.send_message(QueueUrl=self.r.aws.queue_url(destination), MessageBody=message)
        elif service == "sns":
            self.r.aws.sns.publish(TopicArn=destination, Message=message)
        else:
            raise ValueError(f"unsupported on-failure destination {destination}")

    def invocation_record(self, records: list[dict], condition: str, invocations: int, outcome: Outcome | None) -> dict:
        """The document Lambda sends to a stream mapping's on-failure destination."""
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"} if outcome else {}
        if outcome and outcome.kind == "function_error":
            response["functionError"] = "Unhandled"
        return {
            "requestContext": {
                "requestId": str(uuidlib.uuid4()),
                "functionArn": self.r.function_arn,
                "condition": condition,
                "approximateInvokeCount": invocations,
            },
            "responseContext": response,
            "version": "1.0",
            "timestamp": _iso(time.time()),
            self.src.batch_info_key: {
                "shardId": self.shard_id,
                "startSequenceNumber": self.src.sequence(records[0]),
                "endSequenceNumber": self.src.sequence(records[-1]),
                "approximateArrivalOfFirstRecord": self.src.batch_time(self.src.arrival(records[0])),
                "approximateArrivalOfLastRecord": self.src.batch_time(self.src.arrival(records[-1])),
                "batchSize": len(records),
                "streamArn": self.src.arn,
            },
        }


# ---------------------------------------------------------------------------------------
# Supervisor
# ---------------------------------------------------------------------------------------
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


if __name__ == "__main__":
    sys.exit(main())
