#!/usr/bin/env python3
"""Local AWS emulator: moto in server mode, in this process, with a few patches.

    .venv/bin/python local/emulator.py [--port 5000] [--host 127.0.0.1]

Environment:
    MOTO_PORT              port to serve on when --port is not given (default 5000)
    CARGO_LAMBDA_PORT      port of `cargo lambda watch` (default 9000)
    CARGO_LAMBDA_HOST      host of `cargo lambda watch` (default 127.0.0.1)
    LAMBDA_INVOKE_TIMEOUT  seconds to wait for a function's first invocation (default 600:
                           cargo lambda watch may have to start or build it)
    LOCAL_LAMBDA_INIT_SECONDS  allowance beside a function's declared timeout for its later
                           invocations (default 10, Lambda's init limit: cargo lambda watch
                           starts more instances of a busy function while callers wait)
    LOCAL_FAULTS_FILE      fault injection for the saga's fault tests (_take_injected_fault)
    LOCAL_SDK_CALLS_DIR    where to record each function's AWS calls (local/sdk_calls.py)

What the patches do (see ARCHITECTURE.md, "Local stack"); each restores an AWS behaviour:
  1. Step Functions runs the real ASL definitions (moto's "parser" backend).
  2. Lambda invocations made through moto (Step Functions tasks, Invoke API) run the real
     Rust functions served by `cargo lambda watch` instead of moto's Docker containers; a
     function error comes back as a Lambda function error, so Step Functions names the
     failure after the payload's `errorType` and Retry/Catch match it. A function's
     declared timeout is enforced with Lambda's answer (`Sandbox.Timedout`), and
     LOCAL_FAULTS_FILE injects the faults of the saga's fault matrix (an answer lost, an
     error after the effect, a timeout, a crash before the effect).
  3. moto's own event-source mappings are switched off: the records stay (create/list/get/
     update/delete work), but producers no longer invoke the function inline. The pollers in
     local/ do that job, asynchronously, as Lambda does.
  4. Small corrections to moto's Step Functions interpreter (service-error names on plain
     function-ARN tasks, generated execution names), and each definition parsed once
     instead of once per execution.
  5. DynamoDB as strict as AWS where our code depends on it: every request is atomic
     (conditional writes and transactions cannot interleave between check and write);
     concurrent transactions on one item conflict (TransactionConflict), and so do single
     writes to an item a transaction holds; ClientRequestToken is idempotent for 10 minutes
     and refuses other parameters (IdempotentParameterMismatchException).
  6. A cancelled transaction leaves no trace on the table or its stream, and costs what its
     items cost (moto deep-copies every named table, stream and all, per transaction).
  7. An archive replay sends only the events whose time is in [EventStartTime,
     EventEndTime), only to the rules named in Destination.FilterArns when it names any,
     in time order, and reports EventLastReplayedTime (moto replays the whole archive to
     every rule). Events delivered live carry their `account`, as in AWS (moto's default
     input template leaves it out).
  8. DynamoDB Streams shard iterators expire 15 minutes after they are handed out (moto
     keeps every one: the emulator grew while idle), and an expired or unknown one is
     ExpiredIteratorException.
  9. moto keeps only what can be asked for again: not every model instance it ever made
     (BaseModel tracking), not finished interpreter threads, and the event history of the
     newest LOCAL_SFN_HISTORIES (500) closed executions per state machine.
  10. moto's package directory is listed once, not on every request.
  11. An EventBridge outage on demand (LOCAL_FAULTS_FILE `{"eventbridge": "unavailable"}`).
  12. Work moto repeats per request done once: one SDK client per service for the Step
      Functions interpreter (not a new one per task), each JSONPath parsed once, Kinesis
      reads and writes that find their place in a shard without walking all of it, an SQS
      receive that does not recount the queue per message, a shorter interpreter switch
      interval (threads waiting on sockets get the lock back sooner).
  13. A mapping may name a DynamoDB stream that the stack's second emulator process serves.
  14. DynamoDB stream records kept compressed (the largest share of growth under load).
  15. An event the bus cannot deliver to a rule's SQS target goes to the target's
      DeadLetterConfig queue with EventBridge's attributes, and PutEvents still succeeds
      (moto failed the whole PutEvents call).
SIGUSR1 logs a memory census (objects by type, the sizes of moto's state); SIGUSR2 every
thread's stack.

moto version this was written against: 5.2.5. Line numbers in comments refer to it.
The emulator refuses to start on any moto but the one local/requirements.txt pins
(require_pinned_moto), and MOTO_SOURCES records, per patch, the source of each moto function
it replaces or relies on, which local/test_emulator.py checks against the installed moto.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import importlib
import inspect
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from lambda_gate import GATE, Busy  # local/, beside this file

LOG = logging.getLogger("local.emulator")


# ---------------------------------------------------------------------------------------
# Patch 1: Step Functions executes state machines.
# ---------------------------------------------------------------------------------------
def enable_step_functions_execution() -> None:
    """AWS runs a state machine's definition; moto by default only records executions.

    moto/stepfunctions/responses.py:12-19 picks the backend per request from
    moto.core.config.default_user_config["stepfunctions"]["execute_state_machine"]
    (default False, moto/core/config.py:56). True selects StepFunctionsParserBackend
    (moto/stepfunctions/parser/models.py), which interprets the ASL. This is the same switch
    as `@mock_aws(config={"stepfunctions": {"execute_state_machine": True}})` or
    POST /moto-api/config (moto/moto_api/_internal/models.py:187-188).
    """
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    # Keep the full Lambda backend (functions, mappings, our invoke); use_docker=False would
    # select moto's canned-response backend instead (moto/awslambda/utils.py:49-58).
    default_user_config["lambda"] = {"use_docker": True}


# ---------------------------------------------------------------------------------------
# Patch 2: Lambda invocations go to `cargo lambda watch`.
# ---------------------------------------------------------------------------------------
def _lambda_service_exception(message: str) -> Exception:
    """Lambda's own failure (not the function's): HTTP 500 ServiceException.

    Raised inside the backend, moto turns it into an error response
    (moto/core/responses.py:461-466, JsonRESTError body {"__type", "message"}), so boto3
    callers get a ClientError with Code "ServiceException" and Step Functions names the
    failure "Lambda.ServiceException" (state_task_service_lambda.py:56-70, and patch 4a).
    """
    from moto.awslambda.exceptions import LambdaClientError

    class LambdaServiceException(LambdaClientError):
        code = 500

    return LambdaServiceException("ServiceException", message)


def _function_not_found(message: str) -> Exception:
    from moto.awslambda.exceptions import LambdaClientError

    class ResourceNotFound(LambdaClientError):
        code = 404

    return ResourceNotFound("ResourceNotFoundException", message)


def _is_function_error(body: str) -> bool:
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return isinstance(doc, dict) and "errorType" in doc


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


def _function_error(error_type: str, message: str) -> tuple[str, bool, str]:
    """A function error as `_invoke_lambda` returns it (payload, errored, logs)."""
    return json.dumps({"errorType": error_type, "errorMessage": message}), True, ""


def _timed_out(seconds: float) -> tuple[str, bool, str]:
    """What Lambda answers for an invocation that outlived its timeout: HTTP 200,
    `X-Amz-Function-Error: Unhandled`, and this payload; Step Functions names the error
    after its `errorType` (`Sandbox.Timedout`; only a payload without one is
    `Lambda.Unknown`)."""
    return _function_error(
        "Sandbox.Timedout",
        f"RequestId: {uuid.uuid4()} Error: Task timed out after {seconds:.2f} seconds",
    )


#: Functions that have answered at least once since the emulator started: their next
#: invocations are held to the declared timeout. A function's first invocation includes
#: `cargo lambda watch` starting (and, in `make dev`, perhaps building) its process,
#: which Lambda counts as the init phase, not against the timeout.
_ANSWERED: set[str] = set()


def patch_lambda_invoke(cargo_lambda_url: str, timeout: float, init_seconds: float = 10.0) -> None:
    """Replace moto's Docker-based `LambdaFunction._invoke_lambda`.

    moto/awslambda/models.py:981 `_invoke_lambda(self, event=None) -> (payload, errored, logs)`
    runs the function in a Docker container. Its only caller is `LambdaFunction.invoke`
    (models.py:1143-1163), which json-decodes the request body into `event` (or passes the
    string "{}" when the body is empty) and, when `errored` is true, sets the response header
    `X-Amz-Function-Error` - the header botocore exposes as `FunctionError` and moto's Step
    Functions interpreter turns into LambdaFunctionErrorException (lambda_eval_utils.py:80-84,
    101-105), whose error name is the payload's `errorType`
    (state_task_lambda.py:69-79, state_task_service_lambda.py:73-84).

    `cargo lambda watch` serves the Invoke API: 200 with the function's response, 500 with
    the runtime's error document {"errorType", "errorMessage"} for a function error, 404 when
    no binary has that name.
    """
    from moto.awslambda.models import LambdaFunction

    # No proxy for a loopback call, whatever HTTP(S)_PROXY says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _invoke_lambda(self: LambdaFunction, event=None) -> tuple[str, bool, str]:
        # moto already decoded the body (models.py:1146-1149); "{}" (a str) means "no payload",
        # which AWS delivers to the function as {}.
        if event is None or event == "{}":
            data = b"{}"
        else:
            data = json.dumps(event).encode("utf-8")
        # The function record's name is the Rust binary's name (e.g. users-get).
        url = (
            f"{cargo_lambda_url}/2015-03-31/functions/"
            f"{urllib.parse.quote(self.function_name, safe='')}/invocations"
        )
        request = urllib.request.Request(
            url, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        if _take_injected_fault(self.function_name, event, FAULTS_BEFORE):
            return _function_error(
                "Runtime.ExitError",
                f"RequestId: {uuid.uuid4()} Error: Runtime exited with error: signal: killed "
                f"(injected fault: {self.function_name} crashed before its effect)",
            )
        declared = float(self.timeout or 3)
        # Lambda ends an invocation at the function's timeout; a function not yet started
        # gets the long wait for its process start (see _ANSWERED) plus the init allowance.
        limit = declared + init_seconds if self.function_name in _ANSWERED else timeout
        try:
            with GATE.entry(self.function_name, limit) as left, opener.open(request, timeout=left) as response:
                payload = response.read().decode("utf-8")
            _ANSWERED.add(self.function_name)
            fault = _take_injected_fault(self.function_name, event, FAULTS_AFTER)
            if fault == "lost":
                raise _lambda_service_exception(
                    f"injected fault: the answer of {self.function_name} was lost after it ran"
                )
            if fault == "error_after":
                return _function_error(
                    "InjectedFault",
                    f"injected fault: {self.function_name} failed after its effect",
                )
            if fault == "timeout":
                return _timed_out(declared)
            return payload, False, ""
        except urllib.error.HTTPError as err:
            body = err.read().decode("utf-8", "replace")
            if err.code == 500 and _is_function_error(body):
                # Function error: the error document is the payload, errored=True makes
                # moto set X-Amz-Function-Error (see patch_function_error_header).
                _ANSWERED.add(self.function_name)
                return body, True, ""
            if err.code == 404:
                raise _function_not_found(
                    f"Function not found in cargo lambda watch: {self.function_name} ({body})"
                ) from None
            raise _lambda_service_exception(
                f"cargo lambda watch answered HTTP {err.code} for {self.function_name}: {body}"
            ) from None
        except Busy as err:
            # Waited the whole limit for a place in cargo lambda watch (local/lambda_gate.py).
            raise _lambda_service_exception(f"throttled locally: {err}") from None
        except (TimeoutError, socket.timeout) as err:
            # The function is still running in cargo lambda watch, as a timed-out sandbox
            # may have done part of its work in AWS: whatever it does lands or not.
            LOG.warning("invoke %s timed out after %.1fs: %s", self.function_name, limit, err)
            return _timed_out(declared)
        except (urllib.error.URLError, OSError) as err:
            if isinstance(getattr(err, "reason", None), (TimeoutError, socket.timeout)):
                LOG.warning("invoke %s timed out after %.1fs", self.function_name, limit)
                return _timed_out(declared)
            # Connection refused, reset: Lambda itself failed, not the function.
            LOG.warning("invoke %s via %s failed: %s", self.function_name, url, err)
            raise _lambda_service_exception(
                f"cannot reach cargo lambda watch at {cargo_lambda_url} for "
                f"{self.function_name}: {err}"
            ) from None

    LambdaFunction._invoke_lambda = _invoke_lambda


def patch_function_error_header() -> None:
    """AWS reports an error raised by the function (runtime API /invocation/error, which is
    what every Rust error or panic goes through) as `X-Amz-Function-Error: Unhandled`;
    moto's LambdaFunction.invoke writes "Handled" (moto/awslambda/models.py:1153-1154).
    """
    from moto.awslambda.models import LambdaFunction

    original_invoke = LambdaFunction.invoke

    def invoke(self, body, request_headers, response_headers):
        result = original_invoke(self, body, request_headers, response_headers)
        if response_headers.get("x-amz-function-error") == "Handled":
            response_headers["x-amz-function-error"] = "Unhandled"
        return result

    LambdaFunction.invoke = invoke


# ---------------------------------------------------------------------------------------
# Patch 3: no synchronous invocations from moto's event-source mappings.
# ---------------------------------------------------------------------------------------
class _NoInlineInvocations:
    """Class attribute replacing a producer's `lambda_event_source_mappings` dict.

    In AWS, an event-source mapping is a poller that invokes the function asynchronously to
    the producer, in batches. moto instead registers each mapping on the producer
    (moto/awslambda/models.py:2138 SQS queue, 2151 DynamoDB table, 2162 Kinesis stream) and
    the producer invokes the function inside the SendMessage / PutItem / PutRecord request:
      - moto/sqs/models.py:577-611: receives the messages itself (raising their receive
        count), invokes, then deletes them;
      - moto/dynamodb/models/table.py:235-243: invokes, then *clears* the stream records
        (`self.items = []`), so GetRecords would never see them;
      - moto/kinesis/models.py:422-431: invokes per record.
    Reads always return an empty dict and writes are dropped, so those loops see no mapping.
    The mapping records themselves live in LambdaBackend._event_source_mappings
    (models.py:2135, 2148, 2161), so Create/Get/List/Update/DeleteEventSourceMapping still
    work; the pollers in local/ read them and do the invoking.
    """

    def __get__(self, instance, owner):
        return {}

    def __set__(self, instance, value):
        pass


def disable_event_source_mapping_invocations() -> None:
    from moto.dynamodb.models.table import Table
    from moto.kinesis.models import Stream
    from moto.sqs.models import Queue

    for cls in (Queue, Table, Stream):
        cls.lambda_event_source_mappings = _NoInlineInvocations()


# ---------------------------------------------------------------------------------------
# Patch 4: Step Functions interpreter corrections.
# ---------------------------------------------------------------------------------------
def patch_step_functions_lambda_service_errors() -> None:
    """4a. A Lambda service error (ClientError from Invoke: ServiceException,
    ResourceNotFoundException, TooManyRequestsException...) fails a Task state with the error
    name "Lambda.<Code>" in AWS, for `arn:aws:states:::lambda:invoke` and for a plain
    function ARN alike (the names the Step Functions docs tell you to Retry on). moto does
    this for the integration form (state_task_service_lambda.py:56-70, 85-87) but names it
    "Exception" for the plain-ARN form (state_task_lambda.py:65-68).
    """
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.api import (
        HistoryEventType,
        LambdaFunctionFailedEventDetails,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import (
        StateTaskLambda,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original_from_error = StateTaskLambda._from_error

    def _from_error(self, env, ex):
        if not isinstance(ex, ClientError):
            return original_from_error(self, env, ex)
        error = f"Lambda.{ex.response['Error']['Code']}"
        return FailureEvent(
            env=env,
            error_name=CustomErrorName(error),
            event_type=HistoryEventType.LambdaFunctionFailed,
            event_details=EventDetails(
                lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(
                    error=error, cause=ex.response["Error"].get("Message", "")
                )
            ),
        )

    StateTaskLambda._from_error = _from_error


def keep_task_answers_sent_before_the_wait() -> None:
    """4d. A task token's answer that arrives before the state starts waiting completes the task.

    AWS: a `.waitForTaskToken` task's token is valid from the moment the task starts, so a
    `SendTaskSuccess` that arrives before the invoked Lambda has even returned completes the
    task. moto (state_task_service_callback.py, `_eval_integration_pattern`) sets up the
    heartbeat endpoint only after the Lambda returned, and `CallbackEndpoint.notify` signals
    the heartbeat endpoint only if one exists: an answer sent in between is stored but never
    signalled, `_wait_for_task_token_heartbeat` waits for a heartbeat that never comes, and the
    task fails `States.HeartbeatTimeout` (our `RequestFraudDecision`, with `HeartbeatSeconds`,
    rejected a good order TIMED_OUT when the fraud scorer answered within milliseconds of the
    step's return). The wait now returns an answer already there before it waits."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )

    original = StateTaskServiceCallback._wait_for_task_token_heartbeat

    def _wait_for_task_token_heartbeat(self, env, callback_endpoint, heartbeat_endpoint):
        # notify() stores the outcome before it looks for a heartbeat endpoint, and the
        # endpoint exists by now: an answer is either here already or will be signalled.
        already = callback_endpoint.get_outcome()
        if already is not None:
            return already
        return original(self, env, callback_endpoint, heartbeat_endpoint)

    StateTaskServiceCallback._wait_for_task_token_heartbeat = _wait_for_task_token_heartbeat


def patch_step_functions_execution_names() -> None:
    """4b. StartExecution without `name`: AWS generates a UUID name. moto's parser backend
    uses None (moto/stepfunctions/parser/models.py:160-214): the ARN ends in ":None" and the
    second unnamed start of a machine fails with ExecutionAlreadyExists (or returns the first
    execution) through the name-idempotency check (moto/stepfunctions/models.py:186-202).
    """
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original_start_execution = StepFunctionsParserBackend.start_execution

    def start_execution(self, state_machine_arn, name=None, execution_input=None, trace_header=None):
        return original_start_execution(
            self,
            state_machine_arn,
            name=name or str(uuid.uuid4()),
            execution_input=execution_input,
            trace_header=trace_header,
        )

    StepFunctionsParserBackend.start_execution = start_execution


def parse_each_definition_once() -> None:
    """4c. moto's interpreter parses the state machine's ASL with ANTLR for every execution
    (moto/stepfunctions/parser/backend/execution_worker.py:60-63): 50 ms of CPU for
    place-order on an idle machine, several times that under load, all under the
    emulator's one GIL, so StartExecution itself became what bounded the local order rate.
    AWS parses a definition when it is created. This parses each definition once and gives
    every execution its own deep copy of the parsed program (3 ms), so no execution shares
    evaluation state with another."""
    import copy

    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    parsed: dict[str, object] = {}
    guard = threading.Lock()

    def _get_evaluation_entrypoint(self):
        definition = self._evaluation_details.state_machine_details.definition
        with guard:
            program = parsed.get(definition)
            if program is None:
                if len(parsed) > 256:  # definitions are few; tests create some of their own
                    parsed.clear()
                program = parsed[definition] = AmazonStateLanguageParser.parse(definition)[0]
            return copy.deepcopy(program)

    ExecutionWorker._get_evaluation_entrypoint = _get_evaluation_entrypoint


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


# ---------------------------------------------------------------------------------------
# Patch 9: moto keeps nothing nobody can ask for again.
# ---------------------------------------------------------------------------------------
# How many closed executions per state machine keep their event history locally (AWS keeps
# it 90 days; here it is memory, 150 KB to 1 MB an execution).
CLOSED_EXECUTION_HISTORIES = int(os.environ.get("LOCAL_SFN_HISTORIES") or 500)


def stop_tracking_every_model_instance() -> None:
    """9a. moto's BaseModel.__new__ appends every instance it ever creates to a class-level
    list (moto/core/common_models.py:8-15, moto/core/base_backend.py:36), read only by
    /moto-api/data.json: every Item ever written or overwritten, every deep copy of one
    (UpdateItem makes two, each Query and Scan result one per item), every stream record,
    shard iterator and copied SQS message stays alive for ever. With moto's per-transaction
    table copies on top, this is what took the emulator to 13.8 GB after 800 orders. AWS
    keeps what it stores, not every intermediate object; /moto-api/data.json now lists
    nothing, and nothing here uses it."""
    from moto.core.common_models import BaseModel
    from moto.core.model_instances import model_data

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    BaseModel.__new__ = staticmethod(__new__)
    for models in model_data.values():
        for model in models.values():
            model.instances_tracked.clear()


def bound_step_functions_leftovers() -> None:
    """9b. The interpreter appends every thread it starts (an execution's, each task
    attempt's, each wait for a task token) to moto/stepfunctions/parser/utils.py TMP_THREADS
    and never removes one; finished ones are dropped at each StartExecution.
    9c. A closed execution keeps its whole evaluation environment, history included; beyond
    the newest CLOSED_EXECUTION_HISTORIES per state machine, a closed execution keeps what
    DescribeExecution and ListExecutions answer (and its name, so StartExecution with that
    name is still ExecutionAlreadyExists, as in AWS), and its history reads as empty."""
    from moto.stepfunctions.parser import utils as parser_utils
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original_worker_start = ExecutionWorker.start

    def start(self):
        parser_utils.TMP_THREADS[:] = [t for t in parser_utils.TMP_THREADS if t.is_alive()]
        return original_worker_start(self)

    ExecutionWorker.start = start

    original_start_execution = StepFunctionsParserBackend.start_execution

    def start_execution(self, state_machine_arn, *args, **kwargs):
        result = original_start_execution(self, state_machine_arn, *args, **kwargs)
        for machine in self.state_machines:
            closed = [e for e in machine.executions if e.exec_status is not None and e.status != "RUNNING"
                      and getattr(e, "_local_compacted", False) is False]
            for execution in closed[: max(0, len(closed) - CLOSED_EXECUTION_HISTORIES)]:
                if execution.exec_worker is not None:
                    execution.exec_worker.env = None
                execution.state_machine = machine  # not its own deep copy any more
                execution._local_compacted = True
        return result

    StepFunctionsParserBackend.start_execution = start_execution

    # SendTaskFailure looks for the token in every execution, closed ones included
    # (moto/stepfunctions/parser/models.py:139-159; SendTaskSuccess and heartbeats look only
    # at running ones), through each one's evaluation environment, which a compacted
    # execution no longer has: an admin's rejection answered 500 once the first executions
    # were compacted. The same search, passing over what has no environment (closed, it
    # waits for no token); a token found nowhere is InvalidToken as before.
    from moto.stepfunctions.parser import models as parser_models

    def send_task_failure(self, task_token, error=None, cause=None):
        outcome = parser_models.CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause)
        for execution in self._get_executions():
            worker = execution.exec_worker
            if worker is None or worker.env is None:
                continue
            try:
                if worker.env.callback_pool_manager.notify(callback_id=task_token, outcome=outcome):
                    return parser_models.SendTaskFailureOutput()
            except parser_models.CallbackNotifyConsumerError as consumer_error:
                if isinstance(consumer_error, parser_models.CallbackConsumerTimeout):
                    raise parser_models.TaskTimedOut() from None
                raise parser_models.TaskDoesNotExist() from None
        raise parser_models.InvalidToken()

    StepFunctionsParserBackend.send_task_failure = send_task_failure


def route_requests_without_listing_moto() -> None:
    """10. To find the backend of every request, moto's server calls
    moto.backends.list_of_moto_modules() (moto/moto_server/werkzeug_app.py:127), which lists
    and stats moto's package directory, about 150 entries, and it does so holding the
    dispatcher's one lock (:294). Under load that was a tenth of the emulator's CPU and a
    queue in front of every request. The directory does not change while the emulator runs:
    it is listed once."""
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


# ---------------------------------------------------------------------------------------
# Patch 12: work moto repeats per request, done once.
# ---------------------------------------------------------------------------------------
def share_step_functions_clients() -> None:
    """12a. The Step Functions interpreter builds a new boto3 client for every task it runs
    (moto/stepfunctions/parser/asl/utils/boto_client.py:14, called per Lambda task from
    state_task/lambda_eval_utils.py:57), and building one loads the service model, its
    documentation strings and a TLS context: under load that was a tenth of the emulator's
    CPU. A boto3 client is safe to share between threads; one per (region, service) is kept,
    with a connection pool as large as the executions that may call at once."""

    import boto3
    from botocore.config import Config
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
    from moto.stepfunctions.parser.asl.utils import boto_client

    clients: dict[tuple[str, str, bool], object] = {}
    guard = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials=None):
        intercepting = botocore_stubber.enabled
        key = (region, service, intercepting)
        with guard:
            client = clients.get(key)
            if client is None:
                kwargs = {} if intercepting else {"endpoint_url": f"http://localhost:{moto_server_port()}"}
                client = clients[key] = boto3.session.Session().client(
                    aws_access_key_id="ak", region_name=region, service_name=service, aws_secret_access_key="sk",
                    config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1},
                                  connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                                  read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS, max_pool_connections=256),
                    **kwargs)
            return client

    boto_client.boto_client_for = boto_client_for
    # Every module of the interpreter imported the function by name.
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser") and getattr(module, "boto_client_for", None) is not None:
            module.boto_client_for = boto_client_for


def parse_each_json_path_once() -> None:
    """12b. moto parses a JSONPath every time it evaluates one: EventBridge for each input
    path of each target of each event (moto/events/utils.py:99-108, and jsonpath_ng builds
    its whole LALR parser per call), Step Functions for each InputPath, ResultPath and
    Choice variable of each state (asl/utils/json_path.py:48, common/path/result_path.py).
    That was the largest single cost of a PutEvents. A parsed path is only read afterwards,
    so each distinct one is parsed once."""
    import functools

    import jsonpath_ng
    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    ext_parse = functools.lru_cache(maxsize=4096)(jsonpath_ng.ext.parse)
    plain_parse = functools.lru_cache(maxsize=4096)(jsonpath_ng.parse)
    jsonpath_ng.ext.parse = ext_parse  # moto/events/utils.py imports it at each call
    json_path.parse = ext_parse
    result_path.parse = plain_parse


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


def map_streams_served_apart() -> None:
    """13. The stack serves DynamoDB and DynamoDB Streams from a second emulator process
    (local/stack.py), so a mapping's stream is not in this process's DynamoDB. moto accepts
    a mapping only on a stream it holds (moto/awslambda/models.py:2142-2152) and otherwise
    answers InvalidParameterValueException; here a mapping on any DynamoDB stream ARN is
    kept as moto keeps the others. moto would invoke from its table link; nothing here does
    (patch 3): the pollers read the stream where it is served."""
    from moto.awslambda.models import EventSourceMapping, LambdaBackend
    from moto.core.exceptions import JsonRESTError as RESTError

    original = LambdaBackend.create_event_source_mapping

    def create_event_source_mapping(self, spec):
        try:
            return original(self, spec)
        except RESTError:
            arn = str(spec.get("EventSourceArn") or "")
            if ":dynamodb:" not in arn or "/stream/" not in arn:
                raise
        func = self._lambdas.get_function_by_name_or_arn_with_qualifier(spec.get("FunctionName", ""))
        spec.update({"FunctionArn": func.function_arn})
        esm = EventSourceMapping(spec)
        self._event_source_mappings[esm.uuid] = esm
        return esm

    LambdaBackend.create_event_source_mapping = create_event_source_mapping


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


# ---------------------------------------------------------------------------------------
# Patch: archive replays honour their window and rule filter.
# ---------------------------------------------------------------------------------------
def _epoch_seconds(value) -> float | None:
    """An EventBridge time as epoch seconds: a number (how the JSON protocol sends
    timestamps, and how moto stores `time`) or an RFC 3339 string."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def patch_replay_window_and_filter() -> None:
    """7. StartReplay: AWS replays "only events that occurred between the EventStartTime and
    EventEndTime" (by the event's `time`; "any event with a creation time prior to the
    EventEndTime"), and with Destination.FilterArns only to those rules. moto's
    Replay.replay_events (moto/events/models.py:793-809) sends every archived event to every
    rule of the bus. This keeps moto's synchronous replay (it is COMPLETED when StartReplay
    answers) and everything else it does: a new `id` and the top-level `replay-name` on each
    replayed event, no re-archiving (the archive's rule excludes `replay-name`).
    """
    from moto.events import models as events_models

    Replay = events_models.Replay

    def replay_events(self, archive) -> None:
        start = _epoch_seconds(self.event_start_time)
        end = _epoch_seconds(self.event_end_time)
        filters = set((self.destination or {}).get("FilterArns") or [])
        backend = events_models.events_backends[self.account_id][self.region]
        bus = backend.describe_event_bus(self.destination["Arn"].split("/")[-1])
        timed = [(_epoch_seconds(e.get("time")), e) for e in list(archive.events)]
        if start is None or end is None:
            in_window = []
        else:
            in_window = sorted(((t, e) for t, e in timed if t is not None and start <= t < end), key=lambda te: te[0])
        last = None
        for t, event in in_window:
            for rule in list(bus.rules.values()):
                if filters and rule.arn not in filters:
                    continue
                rule.send_to_targets(
                    dict(event, **{"id": str(uuid.uuid4()), "replay-name": self.name}),
                    transform_input=False,
                )
            last = t
        LOG.info("replay %s: %d of %d archived events in the window, rules %s", self.name, len(in_window), len(timed), sorted(filters) or "all")
        self.event_last_replayed_time = last
        self.state = events_models.ReplayState.COMPLETED
        self.end_time = events_models.unix_time()

    original_describe_short = Replay.describe_short

    def describe_short(self):
        result = original_describe_short(self)
        last = getattr(self, "event_last_replayed_time", None)
        if last is not None:
            result["EventLastReplayedTime"] = last
        return result

    Replay.replay_events = replay_events
    Replay.describe_short = describe_short

    # A target without an input transformer gets the whole event, `account` included
    # (moto/events/utils.py:73 builds it from a template that leaves `account` out).
    from moto.events.utils import EventTemplateParser

    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace(
            '"version": "0",', '"version": "0", "account": "<account>",', 1
        )


# ---------------------------------------------------------------------------------------
# Patch 11: an EventBridge outage on demand.
# ---------------------------------------------------------------------------------------
def _bus_unavailable() -> bool:
    path = os.environ.get("LOCAL_FAULTS_FILE")
    return bool(path) and _faults(path).get("eventbridge") == "unavailable"


def take_the_bus_away_on_demand() -> None:
    """`{"eventbridge": "unavailable"}` in LOCAL_FAULTS_FILE makes every PutEvents answer
    HTTP 500 `InternalException`, as EventBridge does in an outage of the service, until
    the key is gone. The outbox test uses it to keep the bus away for longer than the
    relay's retries (what AWS answers in an outage is the service's to choose; a 5xx is
    what the SDK retries and what the relay must survive)."""
    from moto.core.exceptions import JsonRESTError
    from moto.events.responses import EventsHandler

    class InternalException(JsonRESTError):
        code = 500

    original = EventsHandler.put_events

    def put_events(self):
        if _bus_unavailable():
            raise InternalException(
                "InternalException", "injected fault: EventBridge is unavailable"
            )
        return original(self)

    EventsHandler.put_events = put_events


# ---------------------------------------------------------------------------------------
# Patch: a rule target that cannot be delivered to goes to its dead-letter queue.
# ---------------------------------------------------------------------------------------
def dead_letter_undeliverable_events() -> None:
    """EventBridge delivers to a rule's targets after PutEvents has answered; an event it
    cannot deliver is retried within the target's RetryPolicy and then sent to the target's
    DeadLetterConfig queue (dropped if it has none), the event as the target would have had it
    as the body, with RULE_ARN, TARGET_ARN, ERROR_CODE and ERROR_MESSAGE attributes. An error
    no retry can mend (the target gone, permission refused) goes there at once (AWS,
    "Event retry policy and using dead-letter queues"). moto sends to an SQS target inside
    PutEvents (moto/events/models.py Rule._send_to_sqs_queue) and a missing queue fails the
    whole PutEvents call, which the publisher would retry for ever, and the rule's later
    targets are skipped.

    Here a failed SQS delivery goes to the target's dead-letter queue with those attributes
    and PutEvents succeeds. The only failures moto's SQS gives are of the kind AWS does not
    retry (queue missing, message refused), so nothing is retried; RETRY_ATTEMPTS is 0.
    ERROR_CODE is NO_RESOURCE for a missing queue, SDK_CLIENT_ERROR otherwise (what the bus
    reports is the service's to choose; `commerce-ops redeliver` only reports it)."""
    from moto.events import models as events_models
    from moto.sqs import sqs_backends
    from moto.sqs.exceptions import QueueDoesNotExist, SQSException

    Rule = events_models.Rule
    original = Rule._send_to_sqs_queue

    def _send_to_sqs_queue(self, resource_id, event, group_id=None):
        try:
            original(self, resource_id, event, group_id)
        except SQSException as e:  # what SQS refused; a fault of the emulator's own stays loud
            target = next((t for t in self.targets if t["Arn"].rsplit(":", 1)[-1] == resource_id), {})
            dlq_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
            code = "NO_RESOURCE" if isinstance(e, QueueDoesNotExist) else "SDK_CLIENT_ERROR"
            message = getattr(e, "message", None) or str(e)
            if not dlq_arn:
                LOG.warning("rule %s: event %s dropped, target %s failed (%s) and has no dead-letter queue",
                            self.name, event.get("id"), target.get("Arn"), message)
                return
            attributes = {
                name: {"DataType": "String", "StringValue": value}
                for name, value in (
                    ("RULE_ARN", self.arn), ("TARGET_ARN", target["Arn"]), ("ERROR_CODE", code),
                    ("ERROR_MESSAGE", message), ("RETRY_ATTEMPTS", "0"),
                )
            }
            try:
                sqs_backends[self.account_id][self.region_name].send_message(
                    queue_name=dlq_arn.rsplit(":", 1)[-1], message_body=json.dumps(event), message_attributes=attributes,
                )
                LOG.info("rule %s: event %s to the dead-letter queue (%s: %s)", self.name, event.get("id"), code, message)
            except Exception as dlq_error:  # noqa: BLE001 - AWS: InvocationsFailedToBeSentToDlq, the event is gone
                LOG.warning("rule %s: event %s dropped, its dead-letter queue failed too (%s)", self.name, event.get("id"), dlq_error)

    Rule._send_to_sqs_queue = _send_to_sqs_queue


# ---------------------------------------------------------------------------------------
# The moto these patches were written against.
# ---------------------------------------------------------------------------------------
#: Where the moto pin lives (`moto[...]==X.Y.Z`), the one `make install` installs.
REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"


class MotoVersionError(RuntimeError):
    """The installed moto is not the version local/requirements.txt pins."""


def pinned_moto_version(requirements: Path = REQUIREMENTS) -> str:
    """The version local/requirements.txt pins moto to: its one `moto==X` or `moto[extras]==X` line."""
    try:
        text = requirements.read_text(encoding="utf-8")
    except OSError as err:
        raise MotoVersionError(f"cannot read the moto pin from {requirements}: {err}") from None
    pin = re.compile(r"^\s*moto\s*(?:\[[^\]]*\])?\s*==\s*([^\s;#,]+)\s*(?:[;#].*)?$", re.IGNORECASE | re.MULTILINE)
    pins = pin.findall(text)
    if len(pins) != 1:
        raise MotoVersionError(
            f"{requirements} must pin moto exactly once (a line `moto[...]==X.Y.Z`), found {len(pins)} such lines: "
            "the emulator's patches are written against one moto version"
        )
    return pins[0]


def require_pinned_moto(installed: str | None = None, requirements: Path = REQUIREMENTS) -> str:
    """Refuses (MotoVersionError) any moto but the pinned one: the patches below replace moto
    internals, and on another version they may silently do nothing or break what they meant to
    correct. `installed` defaults to moto.__version__. Returns the version."""
    if installed is None:
        import moto

        installed = moto.__version__
    pinned = pinned_moto_version(requirements)
    if installed != pinned:
        raise MotoVersionError(
            f"moto {installed} is installed, but {requirements} pins moto {pinned}, the version the emulator's "
            f"patches were written against. Install the pinned version ({sys.executable} -m pip install -r "
            f"{requirements}). To move to moto {installed} instead: change the pin, then run local/test_emulator.py; "
            "its MotoSourcesTest lists each patched moto function whose source changed, and each patch that relies "
            "on one needs a look before its hash in MOTO_SOURCES (local/emulator.py) is updated."
        )
    return installed


#: For each patch (a function apply_patches calls), the moto functions, methods and classes it
#: replaces, wraps or relies on, by dotted path, with the sha256 of their source
#: (inspect.getsource) at the pinned moto version. local/test_emulator.py resolves every path in
#: an unpatched moto and names those whose source is no longer the one here: the patch relying
#: on it needs a look, and only then its new hash (the test prints it) belongs here. Not
#: covered, having no source to hash: moto.core.config.default_user_config (patch 1),
#: moto.dynamodb.models.copy (6), moto.core.model_instances.model_data (9a),
#: moto.stepfunctions.parser.utils.TMP_THREADS (9b), and the names boto_client_for,
#: json_path.parse and result_path.parse that modules bound at import (12a, 12b); the
#: functions reading them are here.
MOTO_SOURCES: dict[str, dict[str, str]] = {
    "enable_step_functions_execution": {
        "moto.stepfunctions.responses.get_backend":
            "e736380f7d9c98a50540b6b8e86c014eeb8c3beb66eefc05b2fa73796b0d1589",
        "moto.awslambda.utils.get_backend":
            "889a2b95548422aebfe9c1ac189daf5d5301d7d27a18cb80fba0bd173ebd91c0",
    },
    "patch_lambda_invoke": {
        "moto.awslambda.models.LambdaFunction._invoke_lambda":
            "23ce7a8f956e8090eaf8a3a4de498cf938c79db073ab0284b988f1aed8719f5f",
        "moto.awslambda.models.LambdaFunction.invoke":
            "dadc324f30aed38bf9dde5a93000c195ed3e5fb5e984f71ebd4c6629fc89aa2e",
        "moto.awslambda.exceptions.LambdaClientError":
            "4859347a968427ff750f6edc5cf7617a2dc18f9db62915ec3e35399073a2451c",
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils.exec_lambda_function":
            "26ae15132de11b87a9be9779355f97c1b9841851d3fdaf568282952bab949158",
    },
    "patch_function_error_header": {
        "moto.awslambda.models.LambdaFunction.invoke":
            "dadc324f30aed38bf9dde5a93000c195ed3e5fb5e984f71ebd4c6629fc89aa2e",
    },
    "disable_event_source_mapping_invocations": {
        "moto.sqs.models.Queue.add_message":
            "f27c9231c1f2043382bc1435c4dfbab7b645389df642f050d9dda477f6535c35",
        "moto.dynamodb.models.table.StreamShard.add":
            "357dc6da267e5dd7d46e18ee25d14b232a98679677906a2f02e4d454d1f11e03",
        "moto.kinesis.models.Stream.put_record":
            "cafda0597b231b646bdce503bbf4bae8946c67a702f95c20bbdbb2bd0701586d",
        "moto.awslambda.models.LambdaBackend.create_event_source_mapping":
            "19f8125cabf7d67b294269f6db0c16bc46ebb7e496a9a259894c30546839fe9e",
    },
    "patch_step_functions_lambda_service_errors": {
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda.StateTaskLambda._from_error":
            "1a3cdc6f4b303bfe692e515f02bfdd8cea0cabcc2908ad1f5924096423b81a7f",
    },
    "patch_step_functions_execution_names": {
        "moto.stepfunctions.parser.models.StepFunctionsParserBackend.start_execution":
            "0f8d9dd57baf0c2803dda23c5250b1c787a4a1a3d05239cafbddff1ef905be3a",
    },
    "parse_each_definition_once": {
        "moto.stepfunctions.parser.backend.execution_worker.ExecutionWorker._get_evaluation_entrypoint":
            "2b25949ae855da8035b347b28ac72f90d7d6542bf26ef7e1f03a50ce6a981fde",
        "moto.stepfunctions.parser.asl.parse.asl_parser.AmazonStateLanguageParser.parse":
            "a59a7d18760fb22efc9fd46d8f0fb3bb6c0293abbce2b9053e1589181c6f0711",
    },
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
    "patch_replay_window_and_filter": {
        "moto.events.models.Replay.replay_events":
            "9752fdb56ebb87d689c6401795332118f59d276072f62057e3db5ea9ab97b0f3",
        "moto.events.models.Replay.describe_short":
            "b0a19dc024f73c1ff353b0d29ab5844ac2f92ff44440dfde8bc6c4e306420fb0",
        "moto.events.models.Rule.send_to_targets":
            "472e002e2dab8a599554a7d6c7ea0910625a5b39c7699b9ca4404255efcfc172",
        "moto.events.utils.EventTemplateParser":
            "91e77e4ff0b60f200ed37149ae763b4284e7f46482a8f0d6bac72455acbca416",
    },
    "expire_stream_shard_iterators": {
        "moto.dynamodbstreams.models.DynamoDBStreamsBackend.__init__":
            "074dec7c828aa7e553031ff3e389876a5366a539fdbb77ccdf22af230a98bebd",
        "moto.dynamodbstreams.models.DynamoDBStreamsBackend.get_shard_iterator":
            "a0be676df0bfc9ef0fdb546a45df0f1510de564d215dcafffbd144a8f04219ef",
        "moto.dynamodbstreams.models.DynamoDBStreamsBackend.get_records":
            "db8c6cb04430c08f76be9e6b3cc9317387643b4fee26f43071c5ac22e25d2b64",
    },
    "stop_tracking_every_model_instance": {
        "moto.core.common_models.BaseModel.__new__":
            "08cf0ef20e88029a2eb91949492ce3281001a34b98143db186239962ad379eec",
        "moto.core.base_backend.InstanceTrackerMeta":
            "b78750695097c7eb878dc0d000f0f19b3fa3d83b6974aad6a675550bd6ce44e1",
    },
    "bound_step_functions_leftovers": {
        "moto.stepfunctions.parser.backend.execution_worker.ExecutionWorker.start":
            "0b502dd3a4e5fd2b4a39da9a65b15f74350feef9820bfb36147b2abd7825d4cf",
        "moto.stepfunctions.parser.models.StepFunctionsParserBackend.start_execution":
            "0f8d9dd57baf0c2803dda23c5250b1c787a4a1a3d05239cafbddff1ef905be3a",
        "moto.stepfunctions.parser.models.StepFunctionsParserBackend.send_task_failure":
            "2d5a9597cf1d92f9cb4bc47b3b6ae48a0fe5d3c72e20b3cc57afdeabfcddd5ca",
        "moto.stepfunctions.parser.models.StepFunctionsParserBackend._get_executions":
            "99c66bbf9dd987f228bb924b66520497b1969ad9e334431bb69ef5cc552c1ca4",
        "moto.stepfunctions.parser.backend.execution.Execution.to_history_output":
            "496e8fa069dd23d2373601eb4d6cbed74ccf1f71fe203ceec1e8649ade979882",
    },
    "route_requests_without_listing_moto": {
        "moto.backends.list_of_moto_modules":
            "4f741a10b06500e840c3aaa1b4f02706e6f2bfbababc0e8a2a7b9c9d0e8957dc",
        "moto.moto_server.werkzeug_app.DomainDispatcherApplication.get_backend_for_host":
            "1f41972c1e4e660fbf4e4ddfeeed2fdff56dc105a8f8e1bf015640f710ef511a",
    },
    "take_the_bus_away_on_demand": {
        "moto.events.responses.EventsHandler.put_events":
            "df08b985300c967ce44af55d75172625d4dbf9b658eb8a7cca2d3042979422b5",
    },
    "dead_letter_undeliverable_events": {
        "moto.events.models.Rule._send_to_sqs_queue":
            "026c873dd0091781a534906b49cab5aa18ae4664d6e9382da77c8d8b7649d2be",
    },
    "share_step_functions_clients": {
        "moto.stepfunctions.parser.asl.utils.boto_client.boto_client_for":
            "1f44dc2ac8aa2179df62365a6e5ea377f1770ea828a0f107440a2554f1b4edb8",
    },
    "parse_each_json_path_once": {
        "moto.events.utils.EventTemplateParser.parse":
            "40a5a46a321811bb2643aaabb7b45c37f75644fcce9cb95524e729a43f0d97d7",
        "moto.stepfunctions.parser.asl.utils.json_path.extract_json":
            "932245247973780c72287b75597e70031472f0cd764f35a199100d8a195987a4",
        "moto.stepfunctions.parser.asl.component.common.path.result_path.ResultPath._eval_body":
            "a6d93b4e5a332fadf256032411a32a39e24fdbf8080462c6c037bfe11c195081",
    },
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
    "check_sqs_retention_cheaply": {
        "moto.sqs.models.SQSBackend.is_message_valid_based_on_retention_period":
            "cca23b94a5f3af9d9c5af1c09ee5e615017bdf6bd032301cb321c06c7e595d4b",
    },
    "map_streams_served_apart": {
        "moto.awslambda.models.LambdaBackend.create_event_source_mapping":
            "19f8125cabf7d67b294269f6db0c16bc46ebb7e496a9a259894c30546839fe9e",
        "moto.awslambda.models.EventSourceMapping.__init__":
            "6580bc24f819d09e263acefa05382240e4f9609e4aecc93cf77afa3ceaedc699",
    },
    "pack_stream_records": {
        "moto.dynamodb.models.table.StreamRecord":
            "cf0d90da46216fa246b7e3ea2d7182c90817482652b499acf7ee250fd3c6f7db",
    },
    "keep_task_answers_sent_before_the_wait": {
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback.StateTaskServiceCallback._wait_for_task_token_heartbeat":
            "156c1dac9685af62276ff0b1d4ee7e565d1d84bf8b2a86eaa86ad7c2dfa4bbaa",
        "moto.stepfunctions.parser.asl.eval.callback.callback.CallbackEndpoint.setup_heartbeat_endpoint":
            "bcf8b4650679f830eeb7b7b7927019d2f25909d77983bbebdb4150de472de768",
        "moto.stepfunctions.parser.asl.eval.callback.callback.CallbackEndpoint.notify":
            "8a2febb9b274f7071896c0894219febfeee1b17d1ea56295872cda8efc757b4d",
    },
}

def resolve_moto(path: str) -> object:
    """The object a dotted path names: the longest importable module prefix, then attributes
    (a class's inherited attribute is found as getattr finds it). LookupError when it is gone."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name is not None and module_name != err.name and not module_name.startswith(err.name + "."):
                raise  # a module that does exist failed to import: not this path's absence
            continue
        break
    else:
        raise LookupError(f"no module of {path} can be imported")
    for at in range(cut, len(parts)):
        try:
            obj = getattr(obj, parts[at])
        except AttributeError:
            raise LookupError(f"{'.'.join(parts[:at])} has no attribute {parts[at]!r}") from None
    return obj


def moto_source_sha256(path: str) -> str:
    """sha256 of inspect.getsource of what `path` names (a property: its getter)."""
    obj = resolve_moto(path)
    if isinstance(obj, property):
        obj = obj.fget
    return hashlib.sha256(inspect.getsource(obj).encode("utf-8")).hexdigest()


def changed_moto_sources(recorded: dict[str, dict[str, str]] | None = None) -> list[dict]:
    """The recorded moto sources (MOTO_SOURCES) that the installed moto no longer has, one
    {"patch", "path", "problem", "sha256"} each: problem "changed" (sha256 is the installed
    source's) or why the path no longer resolves (sha256 None). Only meaningful in a process
    whose moto is not patched yet: after apply_patches a path names the replacement."""
    recorded = MOTO_SOURCES if recorded is None else recorded
    found: dict[str, tuple[str | None, str]] = {}
    changed = []
    for patch, sources in recorded.items():
        for path, expected in sources.items():
            if path not in found:
                try:
                    found[path] = (moto_source_sha256(path), "changed")
                except (LookupError, ImportError, OSError, TypeError) as err:
                    found[path] = (None, f"cannot be resolved or read ({type(err).__name__}: {err})")
            actual, problem = found[path]
            if actual != expected:
                changed.append({"patch": patch, "path": path, "problem": problem, "sha256": actual})
    return changed


def apply_patches(cargo_lambda_url: str, invoke_timeout: float, init_seconds: float = 10.0) -> None:
    require_pinned_moto()  # the patches replace internals of that one version
    enable_step_functions_execution()
    patch_lambda_invoke(cargo_lambda_url, invoke_timeout, init_seconds)
    patch_function_error_header()
    disable_event_source_mapping_invocations()
    patch_step_functions_lambda_service_errors()
    patch_step_functions_execution_names()
    keep_task_answers_sent_before_the_wait()
    parse_each_definition_once()
    make_dynamodb_requests_atomic()
    roll_back_only_what_a_transaction_wrote()
    patch_replay_window_and_filter()
    expire_stream_shard_iterators()
    stop_tracking_every_model_instance()
    bound_step_functions_leftovers()
    route_requests_without_listing_moto()
    take_the_bus_away_on_demand()
    dead_letter_undeliverable_events()
    share_step_functions_clients()
    parse_each_json_path_once()
    index_kinesis_shards()
    check_sqs_retention_cheaply()
    map_streams_served_apart()
    pack_stream_records()


# ---------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------
def no_proxy_for_loopback() -> None:
    """moto's Step Functions interpreter calls moto over HTTP (boto_client.py:14-33, endpoint
    http://localhost:$MOTO_PORT), and the pollers call moto and cargo lambda watch; keep
    those calls off any configured HTTP proxy."""
    for key in ("NO_PROXY", "no_proxy"):
        hosts = [h for h in os.environ.get(key, "").split(",") if h]
        for host in ("localhost", "127.0.0.1"):
            if host not in hosts:
                hosts.append(host)
        os.environ[key] = ",".join(hosts)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("MOTO_PORT") or 5000),
        help="port to serve on (default: $MOTO_PORT or 5000; 0 picks a free port)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--log-requests", action="store_true", help="log every request (werkzeug access log)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        require_pinned_moto()
    except MotoVersionError as refusal:
        print(f"emulator: refusing to start: {refusal}", file=sys.stderr, flush=True)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not args.log_requests:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    cargo_host = os.environ.get("CARGO_LAMBDA_HOST", "127.0.0.1")
    cargo_port = int(os.environ.get("CARGO_LAMBDA_PORT") or 9000)
    cargo_lambda_url = f"http://{cargo_host}:{cargo_port}"
    invoke_timeout = float(os.environ.get("LAMBDA_INVOKE_TIMEOUT") or 600)
    init_seconds = float(os.environ.get("LOCAL_LAMBDA_INIT_SECONDS") or 10)

    no_proxy_for_loopback()

    from werkzeug.serving import make_server

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    apply_patches(cargo_lambda_url, invoke_timeout, init_seconds)
    # 12e. Every request is a thread here, and most of a request's life is socket reads and
    # writes: after each, its thread waits for the interpreter lock until a busy thread
    # yields it, by default after 5 ms (sys.getswitchinterval). Under load a DynamoDB
    # GetItem waited 180 ms this way with the process at 0.7 of a core. A shorter interval
    # hands the lock back to threads that are ready sooner.
    sys.setswitchinterval(float(os.environ.get("LOCAL_SWITCH_INTERVAL_MS") or 0.5) / 1000)

    # Same construction as moto's ThreadedMotoServer (moto/moto_server/threaded_moto_server.py
    # :24-35), but binding in this thread so a busy port fails loudly instead of hanging
    # start(), and in this process so the patches above apply.
    app = DomainDispatcherApplication(create_backend_app)
    calls_dir = os.environ.get("LOCAL_SDK_CALLS_DIR")
    if calls_dir:
        # Each function's AWS calls, for the check against what its IAM policy grants
        # (local/sdk_calls.py; the stack runs the check after its tests).
        from sdk_calls import Recorder

        app = Recorder(app, Path(calls_dir) / f"{args.port}.jsonl")
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    port = server.server_port

    # The Step Functions interpreter reaches moto at http://localhost:$MOTO_PORT
    # (moto/stepfunctions/parser/asl/utils/boto_client.py:20, moto/settings.py:119-120),
    # read at each client creation; it must be the port we actually serve on.
    os.environ["MOTO_PORT"] = str(port)

    stop = threading.Event()

    def _on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGUSR1, log_memory_census)
    # SIGUSR2: every thread's stack on stderr (the emulator log), to see what waits on what.
    import faulthandler

    faulthandler.register(signal.SIGUSR2, all_threads=True)

    serving = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    serving.start()
    print(
        f"emulator ready: moto on http://{args.host}:{port} "
        f"(Step Functions execution on, Lambda -> {cargo_lambda_url})",
        flush=True,
    )

    while not stop.wait(1.0):
        pass

    LOG.info("shutting down")
    server.shutdown()
    server.server_close()
    serving.join(timeout=10)
    print("emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
