"""The emulator's AWS API, as the pollers call it."""

from __future__ import annotations

import os
import threading

from .settings import REGION, endpoint_for


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
