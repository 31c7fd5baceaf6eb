"""What the pollers are told by their environment (local/pollers.py lists the variables),
and the back-off they retry with."""

from __future__ import annotations

import logging
import os

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
