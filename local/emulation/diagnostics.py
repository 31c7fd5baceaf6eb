"""What the emulator's memory holds: the census SIGUSR1 logs."""

from __future__ import annotations

import json
import logging
import sys
import threading

from .dynamodb import _TOKENS

LOG = logging.getLogger("local.emulator")


# ---------------------------------------------------------------------------------------
# Diagnostics: what the emulator's memory holds.
# ---------------------------------------------------------------------------------------
def log_memory_census(_signum=None, _frame=None) -> None:
    """SIGUSR1 (`kill -USR1 <emulator pid>`): logs the resident memory, the live objects by
    type (the 25 most numerous) and the sizes of the state moto keeps, to find what grows."""
    import gc
    from collections import Counter

    counts = Counter(type(o).__name__ for o in gc.get_objects())
    try:
        sizes = state_sizes()
    except Exception as exc:  # noqa: BLE001 - a census must never take the emulator down
        sizes = {"error": repr(exc)}
    try:
        estimate = state_megabytes()
    except Exception as exc:  # noqa: BLE001
        estimate = {"error": repr(exc)}
    LOG.warning("memory census: rss %.0f MB; state %s; estimated %s; objects %s", _rss_mb(), json.dumps(sizes),
                json.dumps(estimate), counts.most_common(25))


def _deep_size(obj, seen: set, depth: int = 0) -> int:
    """Bytes held by obj and what it alone refers to (dicts, lists, strings, plain objects;
    not classes, functions, modules or backends)."""
    import types

    if id(obj) in seen or depth > 40 or isinstance(obj, (type, types.ModuleType, types.FunctionType,
                                                          types.MethodType, threading.Thread)):
        return 0
    name = type(obj).__name__
    if name.endswith("Backend") or name in ("Table", "StateMachine", "Lock", "RLock", "Condition", "Event"):
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj, 64)
    if isinstance(obj, dict):
        size += sum(_deep_size(k, seen, depth + 1) + _deep_size(v, seen, depth + 1) for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        size += sum(_deep_size(v, seen, depth + 1) for v in obj)
    elif hasattr(obj, "__dict__"):
        size += _deep_size(vars(obj), seen, depth + 1)
    return size


def state_megabytes(samples: int = 40) -> dict:
    """What each kind of state holds, estimated from `samples` of each (MB)."""
    import random

    from moto.dynamodb.models import dynamodb_backends
    from moto.events.models import events_backends

    kinds: dict[str, list] = {"items": [], "stream_records": [], "archived_events": [], "executions": []}
    for _, _, backend in dynamodb_backends.iter_backends():
        for table in backend.tables.values():
            for v in table.items.values():
                kinds["items"].extend(v.values() if table.has_range_key else [v])
            if table.stream_shard is not None:
                kinds["stream_records"].extend(table.stream_shard.items)
    for _, _, backend in events_backends.iter_backends():
        for archive in backend.archives.values():
            kinds["archived_events"].extend(archive.events)
    try:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        for _, _, backend in stepfunctions_parser_backends.iter_backends():
            for machine in backend.state_machines:
                kinds["executions"].extend(machine.executions)
    except Exception:  # noqa: BLE001 - diagnostics only
        pass
    out = {}
    for kind, objs in kinds.items():
        if not objs:
            continue
        picked = random.sample(objs, min(samples, len(objs)))
        mean = sum(_deep_size(o, set()) for o in picked) / len(picked)
        out[kind] = {"count": len(objs), "kb_each": round(mean / 1024, 1), "mb": round(mean * len(objs) / 2**20, 1)}
    return out


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    except (OSError, StopIteration):
        return -1.0


def state_sizes() -> dict:
    """Counts of what moto's backends hold, per kind (tables' items, stream records, shard
    iterators, executions, archived events, queued messages, tokens)."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodbstreams.models import dynamodbstreams_backends
    from moto.events.models import events_backends
    from moto.sqs.models import sqs_backends

    sizes = {"items": 0, "stream_records": 0, "shard_iterators": 0, "executions": 0, "archived_events": 0,
             "messages": 0, "tokens": len(_TOKENS)}
    for _, _, backend in dynamodb_backends.iter_backends():
        for table in backend.tables.values():
            sizes["items"] += sum(len(v) if table.has_range_key else 1 for v in table.items.values())
            if table.stream_shard is not None:
                sizes["stream_records"] += len(table.stream_shard.items)
    for _, _, backend in dynamodbstreams_backends.iter_backends():
        sizes["shard_iterators"] += len(backend.shard_iterators)
    for _, _, backend in events_backends.iter_backends():
        sizes["archived_events"] += sum(len(a.events) for a in backend.archives.values())
    for _, _, backend in sqs_backends.iter_backends():
        sizes["messages"] += sum(len(q._messages) for q in backend.queues.values())
    try:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        for _, _, backend in stepfunctions_parser_backends.iter_backends():
            sizes["executions"] += sum(len(m.executions) for m in backend.state_machines)
    except Exception:  # noqa: BLE001 - diagnostics only
        pass
    return sizes
