"""Amazon DynamoDB Streams: shard iterators expire as in AWS, and stream records are kept
compressed (patches 8 and 14). Kinesis shares no code with it: see kinesis.py."""

from __future__ import annotations

import os
import time


# ---------------------------------------------------------------------------------------
# Patch 8: stream shard iterators expire.
# ---------------------------------------------------------------------------------------
# AWS (DynamoDB Streams and Kinesis): "A shard iterator expires 15 minutes after it is
# returned to the requester."
SHARD_ITERATOR_SECONDS = float(os.environ.get("LOCAL_SHARD_ITERATOR_SECONDS") or 15 * 60)  # a test shortens it


class _ExpiringIterators(dict):
    """DynamoDBStreamsBackend.shard_iterators, forgetting iterators 15 minutes after they
    were handed out. moto keeps every one (moto/dynamodbstreams/models.py:59, 124): each
    GetRecords answers with a new iterator (a 630-character random id and a reference to the
    shard), so a poller reading an idle stream four times a second grew the emulator by
    about 40 MB every 15 minutes, for ever. Insertion order is age order, so expiry pops from
    the front."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._born: dict[str, float] = {}

    def __setitem__(self, key, value) -> None:
        now = time.monotonic()
        super().__setitem__(key, value)
        self._born[key] = now
        for old, born in list(self._born.items())[:64]:  # bounded work per insert
            if now - born <= SHARD_ITERATOR_SECONDS:
                break
            del self._born[old]
            self.pop(old, None)

    def __getitem__(self, key):
        born = self._born.get(key)
        if born is not None and time.monotonic() - born > SHARD_ITERATOR_SECONDS:
            raise KeyError(key)
        return super().__getitem__(key)


def expire_stream_shard_iterators() -> None:
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    original_init = DynamoDBStreamsBackend.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.shard_iterators = _ExpiringIterators(self.shard_iterators)

    DynamoDBStreamsBackend.__init__ = __init__

    original_get_records = DynamoDBStreamsBackend.get_records

    def get_records(self, iterator_arn: str, limit: int):
        # An unknown or expired iterator is ExpiredIteratorException in AWS; moto's KeyError
        # would be a 500.
        try:
            self.shard_iterators[iterator_arn]
        except KeyError:
            raise _expired_iterator() from None
        return original_get_records(self, iterator_arn, limit)

    DynamoDBStreamsBackend.get_records = get_records


def _expired_iterator() -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError("ExpiredIteratorException", "Iterator expired. The iterator was created more than 15 minutes ago.")


def pack_stream_records() -> None:
    """14. A DynamoDB stream record keeps its keys and both images as nested dicts of
    DynamoDB JSON (moto/dynamodb/models/table.py:158-199): 5.7 KB of Python objects per
    record, some 23 records an order, and a stream keeps every record (AWS: 24 hours). That
    was the largest share of the emulator's growth under load (130 KB an order). A record
    is kept compressed (pickled) and read back when GetRecords asks for it; what GetRecords
    answers is unchanged."""
    import pickle
    import zlib

    from moto.dynamodb.models.table import StreamRecord

    original_init = StreamRecord.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)  # sets self.record, through the property below
        # pickle, not JSON: the images hold bytes (binary attributes) and the record a datetime.
        self._packed = zlib.compress(pickle.dumps(self.__dict__.pop("_unpacked"), protocol=5), 1)

    def get_record(self):
        if "_unpacked" in self.__dict__:  # moto's __init__ still building it
            return self.__dict__["_unpacked"]
        return pickle.loads(zlib.decompress(self._packed))

    def set_record(self, value):
        self.__dict__["_unpacked"] = value

    StreamRecord.__init__ = __init__
    StreamRecord.record = property(get_record, set_record)
    StreamRecord.to_json = lambda self: self.record


#: DynamoDB Streams: this module's part of MOTO_SOURCES (the package merges every module's; see
#: local/emulation/__init__.py for what a record is).
MOTO_SOURCES: dict[str, dict[str, str]] = {
    "expire_stream_shard_iterators": {
        "moto.dynamodbstreams.models.DynamoDBStreamsBackend.__init__":
            "074dec7c828aa7e553031ff3e389876a5366a539fdbb77ccdf22af230a98bebd",
        "moto.dynamodbstreams.models.DynamoDBStreamsBackend.get_shard_iterator":
            "a0be676df0bfc9ef0fdb546a45df0f1510de564d215dcafffbd144a8f04219ef",
        "moto.dynamodbstreams.models.DynamoDBStreamsBackend.get_records":
            "db8c6cb04430c08f76be9e6b3cc9317387643b4fee26f43071c5ac22e25d2b64",
    },
    "pack_stream_records": {
        "moto.dynamodb.models.table.StreamRecord":
            "cf0d90da46216fa246b7e3ea2d7182c90817482652b499acf7ee250fd3c6f7db",
    },
}
