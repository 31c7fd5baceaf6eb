"""Fault injection on demand: `LOCAL_FAULTS_FILE`, read by the Lambda patch (a function's
answer lost, an error after its effect, a timeout, a crash before its effect: the saga's
fault matrix) and by the EventBridge patch (the bus unavailable, patch 11)."""

from __future__ import annotations

import copy
import json
import logging
import os
import threading

LOG = logging.getLogger("local.emulator")


_FAULTS_LOCK = threading.Lock()

#: The fault kinds of `LOCAL_FAULTS_FILE`, by when they strike.
FAULTS_BEFORE = {"crash"}
FAULTS_AFTER = {"lost", "error_after", "timeout"}


_FAULTS_CACHE: tuple[tuple[int, int, int], dict] | None = None


def _faults(path: str) -> dict:
    """LOCAL_FAULTS_FILE as a dict (empty when absent or not a JSON object), parsed again
    only when the file changed: it is consulted on every invocation and every PutEvents.
    Writers replace it whole (rename), which gives it a new inode."""
    global _FAULTS_CACHE
    try:
        st = os.stat(path)
    except OSError:
        return {}
    identity = (st.st_ino, st.st_mtime_ns, st.st_size)
    cached = _FAULTS_CACHE
    if cached is not None and cached[0] == identity:
        return cached[1]
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    _FAULTS_CACHE = (identity, doc)
    return doc


def _take_injected_fault(function_name: str, event: object, kinds: set[str]) -> str | None:
    """Fault injection for the saga's fault tests: `LOCAL_FAULTS_FILE` (JSON) maps a
    function name to either a count (that many answers lost, the original form) or a list
    of rules `{"kind": ..., "times": n, "correlation_id": optional}`; a rule with a
    correlation id only strikes invocations whose event carries that `correlation_id`
    (every saga step's payload does), so the cells of a fault matrix run side by side.

    Kinds, each as a Step Functions task meets it in AWS:
      - `lost`: the function ran and its effects stand, its answer is lost on the way
        (`Lambda.ServiceException`, as after a network fault);
      - `error_after`: the function ran and its effects stand, then it failed with an error
        no `Retry` names (`InjectedFault`: e.g. a panic while building its answer);
      - `timeout`: the function ran and its effects stand, but it did not answer within its
        timeout (`Sandbox.Timedout`, Lambda's name for it);
      - `crash`: the process died before the handler's effect (`Runtime.ExitError`).
    Only invocations that reached the function take an after-the-effect fault, so a
    count means that many effects. Without the variable or the file nothing is injected.
    Returns the kind taken, if any."""
    path = os.environ.get("LOCAL_FAULTS_FILE")
    if not path:
        return None
    correlation = event.get("correlation_id") if isinstance(event, dict) else None
    with _FAULTS_LOCK:
        faults = _faults(path)
        if function_name not in faults:
            return None
        faults = copy.deepcopy(faults)  # the cached document stays as read
        entry = faults.get(function_name)
        taken = None
        if isinstance(entry, int):
            if entry > 0 and "lost" in kinds:
                faults[function_name] = entry - 1
                taken = "lost"
        elif isinstance(entry, list):
            for rule in entry:
                if (
                    rule.get("kind") in kinds
                    and int(rule.get("times", 0)) > 0
                    and rule.get("correlation_id") in (None, correlation)
                ):
                    rule["times"] = int(rule["times"]) - 1
                    taken = rule["kind"]
                    break
        if taken is None:
            return None
        # Replaced whole (write, then rename), so a reader never sees a half-written file.
        partial = f"{path}.{os.getpid()}.tmp"
        with open(partial, "w", encoding="utf-8") as f:
            json.dump(faults, f)
        os.replace(partial, path)
    LOG.warning("injected fault %s: %s (correlation %s)", taken, function_name, correlation)
    return taken
