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

import sys

from event_sources.supervisor import main  # local/event_sources/, beside this file

if __name__ == "__main__":
    sys.exit(main())
