"""Amazon SQS: a receive that does not recount the queue per message (patch 12d)."""

from __future__ import annotations


def check_sqs_retention_cheaply() -> None:
    """12d. For each message ReceiveMessage hands out, moto checks the retention period by
    computing every attribute of the queue (moto/sqs/models.py:1282-1289 calls
    get_queue_attributes, whose Approximate* counts walk all messages and ask each for its
    visibility): a receive cost the square of the queue's length. The period is read
    directly; the answer is the same."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(self, queue_name, message) -> bool:
        retention_period = int(self.get_queue(queue_name).message_retention_period)
        return retention_period + message.sent_timestamp / 1000 > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period


#: SQS: this module's part of MOTO_SOURCES (the package merges every module's; see
#: local/emulation/__init__.py for what a record is).
MOTO_SOURCES: dict[str, dict[str, str]] = {
    "check_sqs_retention_cheaply": {
        "moto.sqs.models.SQSBackend.is_message_valid_based_on_retention_period":
            "cca23b94a5f3af9d9c5af1c09ee5e615017bdf6bd032301cb321c06c7e595d4b",
    },
}
