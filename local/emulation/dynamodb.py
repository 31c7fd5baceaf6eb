"""Amazon DynamoDB as strict as AWS where our code depends on it: atomic requests,
conflicting transactions, idempotent ClientRequestTokens, and a cancelled transaction
that leaves no trace (patches 5 and 6)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time


# ---------------------------------------------------------------------------------------
# Patch 5: DynamoDB requests are atomic, transactions conflict, tokens are idempotent.
# ---------------------------------------------------------------------------------------
# moto's models are not thread-safe: one DynamoDB request runs at a time.
_DYNAMODB_LOCK = threading.Lock()
# AWS: a ClientRequestToken "is valid for 10 minutes after the first request that uses it is
# completed".
TOKEN_WINDOW_SECONDS = 600.0
# How long a transaction holds its items before it commits. AWS's transactions are two-phase
# (prepare on every item, then commit) and take tens of milliseconds, during which their
# items conflict; moto applies one in well under a millisecond, which on its own would make
# conflicts all but impossible locally.
TRANSACTION_PREPARE_SECONDS = float(os.environ.get("LOCAL_DYNAMODB_TRANSACTION_MS") or 20) / 1000


class _ItemLocks:
    """The items that transactions in flight are writing, keyed by (table, key).

    In AWS a TransactWriteItems holds its items from the moment it is accepted until it
    commits: another transaction on one of them is cancelled with reason
    `TransactionConflict`, a PutItem/UpdateItem/DeleteItem on one of them fails with
    `TransactionConflictException`, and a TransactGetItems is cancelled with
    `TransactionConflict` (Developer Guide, "Transaction conflict handling in DynamoDB").
    Here a transaction holds its items for its prepare phase (TRANSACTION_PREPARE_SECONDS),
    then while it waits for, and runs under, the request lock, so concurrent transactions on
    one hot item meet each other as they do in AWS."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._owners: dict[tuple, object] = {}

    def try_acquire(self, keys: list, owner: object) -> list[bool]:
        """Takes every key, or none: the answer says which keys another owner holds."""
        with self._guard:
            taken = [key is not None and self._owners.get(key, owner) is not owner for key in keys]
            if not any(taken):
                for key in keys:
                    if key is not None:
                        self._owners[key] = owner
            return taken

    def release(self, keys: list, owner: object) -> None:
        with self._guard:
            for key in keys:
                if key is not None and self._owners.get(key) is owner:
                    del self._owners[key]

    def held(self, key) -> bool:
        with self._guard:
            return key is not None and key in self._owners


_ITEM_LOCKS = _ItemLocks()


class _Tokens:
    """ClientRequestToken bookkeeping, as DynamoDB keeps it: per token, a fingerprint of the
    request and its outcome, forgotten 10 minutes after the request completed (so this stays
    bounded), and the tokens whose request is still running."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._done: dict[str, tuple[str, float, bool]] = {}  # token -> (fingerprint, completed, committed)
        self._running: set[str] = set()

    def begin(self, token: str, fingerprint: str) -> bool:
        """True when the request must run; False when an earlier one with this token and these
        parameters committed (the answer is success, nothing is applied again). Raises the
        errors DynamoDB answers for a token that is in use."""
        from moto.dynamodb.exceptions import DynamodbException, ERROR_TYPE_PREFIX

        now = time.monotonic()
        with self._guard:
            # _done is in completion order (end() re-inserts), so the expired are at its front.
            while self._done:
                oldest = next(iter(self._done))
                if now - self._done[oldest][1] <= TOKEN_WINDOW_SECONDS:
                    break
                del self._done[oldest]
            if token in self._running:
                raise DynamodbException(
                    ERROR_TYPE_PREFIX + "TransactionInProgressException",
                    "The transaction with the given request token is already in progress.",
                )
            done = self._done.get(token)
            if done is not None and done[0] != fingerprint:
                raise DynamodbException(
                    ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
                    "Request token was used with different parameters within the idempotency window.",
                )
            if done is not None and done[2]:
                return False
            self._running.add(token)
            return True

    def end(self, token: str, fingerprint: str, committed: bool | None) -> None:
        """committed None: the request was refused before it ran (not a completion)."""
        with self._guard:
            self._running.discard(token)
            if committed is not None:
                self._done.pop(token, None)
                self._done[token] = (fingerprint, time.monotonic(), committed)

    def __len__(self) -> int:
        with self._guard:
            return len(self._done)


_TOKENS = _Tokens()


def _item_lock_key(backend, table_name, key_or_item) -> tuple | None:
    """(table, canonical key) of the item a write names, or None when moto will refuse the
    request anyway (no such table, key attributes missing)."""
    try:
        table = backend.get_table(table_name)
        names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        return (table_name, json.dumps([key_or_item[n] for n in names], sort_keys=True))
    except Exception:  # noqa: BLE001 - moto answers the malformed request itself
        return None


def _transaction_keys(backend, transact_items: list) -> list:
    keys = []
    for entry in transact_items or []:
        try:
            op_type, op = next(iter(entry.items()))
            attrs = op["Item"] if op_type == "Put" else op["Key"]
            keys.append(_item_lock_key(backend, op["TableName"], attrs))
        except Exception:  # noqa: BLE001
            keys.append(None)
    return keys


def _conflict_cancellation(taken: list[bool]) -> Exception:
    from moto.dynamodb.exceptions import TransactionCanceledException

    return TransactionCanceledException(
        [("TransactionConflict", "Transaction is ongoing for the item", None) if t else (None, None, None) for t in taken]
    )


def make_dynamodb_requests_atomic() -> None:
    """5a. In AWS a conditional write, and a transaction, is atomic: two writers that both
    read version 3 cannot both write "version = 3 -> 4". moto's threaded server checks the
    condition and then writes, with nothing held in between, so concurrent requests can both
    pass. One lock around every DynamoDB and DynamoDB Streams action
    (moto/core/responses.py BaseResponse.call_action, as the handlers inherit it) makes each
    request atomic, reads included (moto applies a transaction's items one by one, so a read
    in between would see half of it).

    5b. Transactions conflict as in AWS (see _ItemLocks): a TransactWriteItems takes its
    items before it waits for the request lock; writes and transactional reads of a held
    item are refused with the errors AWS gives.

    5c. ClientRequestToken, which moto ignores (moto/dynamodb/responses.py
    transact_write_items never reads it). AWS: the same token with the same parameters within
    10 minutes of completion "return[s] successfully without making any changes" when the
    first request committed; with other parameters it is IdempotentParameterMismatchException;
    while the first is running it is TransactionInProgressException. A cancelled transaction
    committed nothing, so its token's repeat runs again.
    """
    from moto.dynamodb.exceptions import DynamodbException, ERROR_TYPE_PREFIX, TransactionCanceledException
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    self_locking = {"TransactWriteItems"}

    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        original = handler.call_action

        def call_action(self, _original=original):
            if self._get_action() in self_locking:
                return _original(self)
            with _DYNAMODB_LOCK:
                return _original(self)

        handler.call_action = call_action

    original_transact_write = DynamoHandler.transact_write_items

    def transact_write_items(self):
        body = self.body
        token = body.get("ClientRequestToken")
        fingerprint = ""
        if token:
            request = {k: v for k, v in body.items() if k != "ClientRequestToken"}
            fingerprint = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
            if not _TOKENS.begin(token, fingerprint):
                from moto.core.responses import ActionResult

                return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
        owner, keys, committed = object(), _transaction_keys(self.dynamodb_backend, body.get("TransactItems")), None
        try:
            taken = _ITEM_LOCKS.try_acquire(keys, owner)
            if any(taken):
                committed = False
                raise _conflict_cancellation(taken)
            try:
                time.sleep(TRANSACTION_PREPARE_SECONDS)  # the prepare phase, items held
                with _DYNAMODB_LOCK:
                    result = original_transact_write(self)
                committed = True
                return result
            except TransactionCanceledException:
                committed = False
                raise
            finally:
                _ITEM_LOCKS.release(keys, owner)
        finally:
            if token:
                _TOKENS.end(token, fingerprint, committed)

    DynamoHandler.transact_write_items = transact_write_items

    def refuse_writes_to_held_items(name: str, key_field: str):
        original = getattr(DynamoHandler, name)

        def write(self):
            key = _item_lock_key(self.dynamodb_backend, self.body.get("TableName"), self.body.get(key_field) or {})
            if _ITEM_LOCKS.held(key):
                raise DynamodbException(
                    ERROR_TYPE_PREFIX + "TransactionConflictException",
                    "Transaction is ongoing for the item",
                )
            return original(self)

        setattr(DynamoHandler, name, write)

    refuse_writes_to_held_items("put_item", "Item")
    refuse_writes_to_held_items("update_item", "Key")
    refuse_writes_to_held_items("delete_item", "Key")

    original_transact_get = DynamoHandler.transact_get_items

    def transact_get_items(self):
        items = [entry.get("Get") or {} for entry in self.body.get("TransactItems") or []]
        taken = [_ITEM_LOCKS.held(_item_lock_key(self.dynamodb_backend, g.get("TableName"), g.get("Key") or {})) for g in items]
        if any(taken):
            raise _conflict_cancellation(taken)
        return original_transact_get(self)

    DynamoHandler.transact_get_items = transact_get_items


class _CopyKeepingTables:
    """moto.dynamodb.models' `copy`, except that deepcopy(Table) is the table itself (see
    roll_back_only_what_a_transaction_wrote)."""

    def __init__(self, real_copy, table_class) -> None:
        self._copy, self._table = real_copy, table_class

    def deepcopy(self, obj, memo=None):
        return obj if isinstance(obj, self._table) else self._copy.deepcopy(obj, memo)

    def __getattr__(self, name):
        return getattr(self._copy, name)


def roll_back_only_what_a_transaction_wrote() -> None:
    """6. In AWS a cancelled transaction leaves no trace, on the table or on its stream, and
    costs what its items cost. moto deep-copies every table a transaction names before it
    starts (moto/dynamodb/models/__init__.py:607-615), stream shard and all, and on failure
    swaps the copies in (:700-716): each transaction costs time and memory in proportion to
    everything the tables and their streams ever held (POST /orders grew slower with every
    order), and the swapped-in copy carries a copied stream shard while open shard iterators
    keep reading the original, which then never receives another record.

    Here the tables are not copied (deepcopy of a Table is the table itself, so moto's swap is
    a no-op); instead the items the transaction names are copied, and on failure they are put
    back and each stream shard is cut back to its length before the transaction.
    """
    import copy as real_copy

    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    dynamodb_models.copy = _CopyKeepingTables(real_copy, Table)
    original = DynamoDBBackend.transact_write_items

    def snapshot(backend, entry):
        op_type, op = next(iter(entry.items()))
        table = backend.get_table(op["TableName"])
        attrs = op["Item"] if op_type == "Put" else op["Key"]
        hash_key = DynamoType(attrs[table.hash_key_attr])
        range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
        return table, hash_key, range_key, real_copy.deepcopy(table.get_item(hash_key, range_key))

    def restore(table, hash_key, range_key, item) -> None:
        if range_key is None:
            if item is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = item
            return
        bucket = table.items[hash_key]
        if item is None:
            bucket.pop(range_key, None)
            if not bucket:
                del table.items[hash_key]
        else:
            bucket[range_key] = item

    def transact_write_items(self, transact_items):
        saved, shards = [], {}
        for entry in transact_items:
            try:
                saved.append(snapshot(self, entry))
            except Exception:  # noqa: BLE001 - moto refuses this item itself; it writes nothing
                continue
            shard = saved[-1][0].stream_shard
            if shard is not None:
                shards.setdefault(id(shard), (shard, len(shard.items)))
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(saved):
                restore(table, hash_key, range_key, item)
            for shard, length in shards.values():
                del shard.items[length:]
            raise

    DynamoDBBackend.transact_write_items = transact_write_items


#: DynamoDB: this module's part of MOTO_SOURCES (the package merges every module's; see
#: local/emulation/__init__.py for what a record is).
MOTO_SOURCES: dict[str, dict[str, str]] = {
    "make_dynamodb_requests_atomic": {
        "moto.dynamodb.responses.DynamoHandler.call_action":
            "ce5f57cf83cde3400fa73a201929d18af92aaba2bb301d4d74609a1467b8daaf",
        "moto.dynamodb.responses.DynamoHandler._get_action":
            "6430b292c4321773ffc1abc56466e3aadf824fac7c98bef729d22c84abe0fbab",
        "moto.dynamodbstreams.responses.DynamoDBStreamsHandler.call_action":
            "26076963fd17fd1a40be642032b5a8d90f159c19d01b80a5f0b0c839770ee0d6",
        "moto.dynamodb.responses.DynamoHandler.transact_write_items":
            "61c163fff213f33a39317a17fda194a9c1e800992421575d2080f4500bf45372",
        "moto.dynamodb.responses.DynamoHandler.put_item":
            "4c9efb73275195eccc6268d6c3952decc1b240da158661ad59421ccec55a74e0",
        "moto.dynamodb.responses.DynamoHandler.update_item":
            "638893af1afd43d274f3788d61ac13b447729de915c6f5ad3bbf008b92dd8e80",
        "moto.dynamodb.responses.DynamoHandler.delete_item":
            "677cb014c5c455d9fa3088aa5213b34b514a9773156f62847f114159b9a75d05",
        "moto.dynamodb.responses.DynamoHandler.transact_get_items":
            "6275dc506a3f7c6bb1a4820d4fd518a36edd6c2b6536a31b2e1493fa3b303052",
        "moto.dynamodb.exceptions.TransactionCanceledException":
            "05625e50da04ee4252301d281f2937fb12a925a8e4fe5a2bcd381d2cfcc4abaf",
    },
    "roll_back_only_what_a_transaction_wrote": {
        "moto.dynamodb.models.DynamoDBBackend.transact_write_items":
            "81db2cb7d94e39c90b3a2077e1f4bb41a449c558ef9b1b1e2910fdaa39978ad4",
        "moto.dynamodb.models.table.Table.get_item":
            "b08e98fe37b7e5836afe03b010d637ef50df5dea6cbecd9cf8816eef326a21cd",
        "moto.dynamodb.models.table.StreamShard.add":
            "357dc6da267e5dd7d46e18ee25d14b232a98679677906a2f02e4d454d1f11e03",
    },
}
