"""Amazon Kinesis Data Streams: reads and writes that find their place in a shard without
walking all of it (patch 12c)."""

from __future__ import annotations

import threading


def index_kinesis_shards() -> None:
    """12c. A Kinesis shard keeps its records in an insertion-ordered dict keyed by sequence
    number, and moto walks all of it on every GetRecords to find the records after the
    iterator (moto/kinesis/models.py:122), and copies all its keys into a list on every
    PutRecord to find the last one (:139, :155). Both grew with every order ever placed.
    Sequence numbers only grow, so a sorted list beside the dict finds the place by
    bisection. What GetRecords answers is unchanged."""
    import bisect

    from moto.kinesis.models import Shard

    writing = threading.Lock()  # moto's put_record "is not safe for concurrency" (:137)

    def keys(shard) -> list:
        index = shard.__dict__.get("_local_keys")
        if index is None or len(index) != len(shard.records):
            index = shard.__dict__["_local_keys"] = sorted(shard.records)
        return index

    original_put = Shard.put_record

    def put_record(self, partition_key, data, explicit_hash_key):
        with writing:  # two writers could take the same number, the later record replacing the earlier
            index = keys(self)
            sequence_number = original_put(self, partition_key, data, explicit_hash_key)
            index.append(int(sequence_number))
            return sequence_number

    def get_max_sequence_number(self) -> int:
        index = keys(self)
        return index[-1] if index else 0

    def get_min_sequence_number(self) -> int:
        index = keys(self)
        return index[0] if index else 0

    def get_records(self, last_sequence_id, limit):
        index = keys(self)
        last = int(last_sequence_id)
        start = bisect.bisect_right(index, last)
        chosen = index[start:] if limit is None else index[start:start + limit]
        results = [self.records[n] for n in chosen]
        millis_behind_latest = 0
        if results:
            last = chosen[-1]
            millis_behind_latest = int((self.records[index[-1]].created_at - results[-1].created_at) * 1000)
        return results, last, millis_behind_latest

    Shard.put_record = put_record
    Shard.get_max_sequence_number = get_max_sequence_number
    Shard.get_min_sequence_number = get_min_sequence_number
    Shard.get_records = get_records


#: Kinesis: this module's part of MOTO_SOURCES (the package merges every module's; see
#: local/emulation/__init__.py for what a record is).
MOTO_SOURCES: dict[str, dict[str, str]] = {
    "index_kinesis_shards": {
        "moto.kinesis.models.Shard.put_record":
            "e2d15174261bc63e98ffce9cab9a1038f07c7ff5ce9846cb7b3202652f60ae38",
        "moto.kinesis.models.Shard.get_max_sequence_number":
            "eff48df162f5a63d31722187966dbf749a73bd39c0aba368169c1a4be19f8491",
        "moto.kinesis.models.Shard.get_min_sequence_number":
            "acae970512147e4e42bd2c489c4585b0e635e0b727545f12af39b7b7ddf3a709",
        "moto.kinesis.models.Shard.get_records":
            "1188a73a6b3db1f9acd79de3488b0c52f9f6efa21a5755fbf9ec1da3c5ebc28a",
    },
}
