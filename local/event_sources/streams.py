"""Kinesis and DynamoDB Streams mappings: one worker per shard, in order, with checkpoints,
bisection, retry and age bounds, and on-failure destinations, as Lambda does."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from .clients import Aws
from .invoke import WHOLE_BATCH, Outcome, invoke, reported_failures
from .runner import Runner, b64
from .settings import IDLE, LOG, backoff


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
                "data": b64(record["Data"]),
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
        return {"B": b64(inner)}
    if kind == "BS":
        return {"BS": [b64(b) for b in inner]}
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
                if failed is not WHOLE_BATCH and not failed:
                    self.checkpoint(records[-1])
                    work.pop(0)
                    r.log_invocation(source, len(records), f"ok {span}")
                    continue
                if failed is WHOLE_BATCH:
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
