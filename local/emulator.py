#!/usr/bin/env python3
"""Local AWS emulator: moto in server mode, in this process, with a few patches.

    .venv/bin/python local/emulator.py [--port 5000] [--host 127.0.0.1]

Environment:
    MOTO_PORT              port to serve on when --port is not given (default 5000)
    CARGO_LAMBDA_PORT      port of `cargo lambda watch` (default 9000)
    CARGO_LAMBDA_HOST      host of `cargo lambda watch` (default 127.0.0.1)
    LAMBDA_INVOKE_TIMEOUT  seconds to wait for one invocation (default 600: the first
                           invoke of a function may compile it)

What the patches do (see ARCHITECTURE.md, "Local stack"); each restores an AWS behaviour:
  1. Step Functions runs the real ASL definitions (moto's "parser" backend).
  2. Lambda invocations made through moto (Step Functions tasks, Invoke API) run the real
     Rust functions served by `cargo lambda watch` instead of moto's Docker containers; a
     function error comes back as a Lambda function error, so Step Functions names the
     failure after the payload's `errorType` and Retry/Catch match it.
  3. moto's own event-source mappings are switched off: the records stay (create/list/get/
     update/delete work), but producers no longer invoke the function inline. The pollers in
     local/ do that job, asynchronously, as Lambda does.
  4. Small corrections to moto's Step Functions interpreter (service-error names on plain
     function-ARN tasks, generated execution names).
  5. DynamoDB requests are atomic, as in AWS: concurrent conditional writes and
     transactions cannot interleave between their check and their write, and no stream
     read sees the records of a transaction that is rolled back.
  6. A cancelled transaction leaves the table's stream as it was, and stream readers keep
     reading it (moto swaps in a copied shard on rollback).
  7. An archive replay sends only the events whose time is in [EventStartTime,
     EventEndTime), only to the rules named in Destination.FilterArns when it names any,
     in time order, and reports EventLastReplayedTime (moto replays the whole archive to
     every rule). Events delivered live carry their `account`, as in AWS (moto's default
     input template leaves it out).

moto version this was written against: 5.2.5. Line numbers in comments refer to it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid

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


def _take_injected_fault(function_name: str) -> bool:
    """Fault injection for tests of idempotency: `LOCAL_FAULTS_FILE` (JSON, function name ->
    count) makes the next `count` successful invocations of a function look as if their
    answer was lost: the function ran and its effects stand, but the caller (a Step
    Functions task) sees `Lambda.ServiceException` and retries, as after a network fault in
    AWS. Without the variable or the file nothing is injected."""
    path = os.environ.get("LOCAL_FAULTS_FILE")
    if not path:
        return False
    with _FAULTS_LOCK:
        try:
            with open(path, encoding="utf-8") as f:
                faults = json.load(f)
        except (OSError, ValueError):
            return False
        remaining = int(faults.get(function_name, 0))
        if remaining <= 0:
            return False
        faults[function_name] = remaining - 1
        with open(path, "w", encoding="utf-8") as f:
            json.dump(faults, f)
    LOG.warning("injected fault: dropping the answer of %s", function_name)
    return True


def patch_lambda_invoke(cargo_lambda_url: str, timeout: float) -> None:
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
        try:
            with opener.open(request, timeout=timeout) as response:
                payload = response.read().decode("utf-8")
            if _take_injected_fault(self.function_name):
                raise _lambda_service_exception(
                    f"injected fault: the answer of {self.function_name} was lost after it ran"
                )
            return payload, False, ""
        except urllib.error.HTTPError as err:
            body = err.read().decode("utf-8", "replace")
            if err.code == 500 and _is_function_error(body):
                # Function error: the error document is the payload, errored=True makes
                # moto set X-Amz-Function-Error (see patch_function_error_header).
                return body, True, ""
            if err.code == 404:
                raise _function_not_found(
                    f"Function not found in cargo lambda watch: {self.function_name} ({body})"
                ) from None
            raise _lambda_service_exception(
                f"cargo lambda watch answered HTTP {err.code} for {self.function_name}: {body}"
            ) from None
        except (urllib.error.URLError, OSError) as err:
            # Connection refused, reset, or timed out: Lambda itself failed, not the function.
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


# ---------------------------------------------------------------------------------------
# Patch: DynamoDB requests are atomic.
# ---------------------------------------------------------------------------------------
_DYNAMODB_LOCK = threading.Lock()


def serialize_dynamodb_requests() -> None:
    """In AWS a conditional write, and a transaction, is atomic: two writers that both read
    version 3 cannot both write "version = 3 -> 4". moto's threaded server checks the
    condition and then writes, with nothing in between held, so concurrent requests can
    both pass (seen as lost updates in the inventory concurrency test). One lock around
    every DynamoDB action (moto/core/responses.py BaseResponse.call_action, as
    DynamoHandler inherits it) makes each request atomic again, reads included, so no
    read sees a transaction half applied.
    """
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    # Stream reads too: moto applies a transaction's items one by one (even after a
    # failed condition) and restores a snapshot at the end, so a GetRecords in between
    # would read records of a transaction that never happened.
    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        original = handler.call_action

        def call_action(self, _original=original):
            with _DYNAMODB_LOCK:
                return _original(self)

        handler.call_action = call_action


def keep_stream_shards_through_rollbacks() -> None:
    """In AWS a cancelled transaction leaves no trace, on the table or on its stream, and a
    stream reader carries on. moto applies a transaction's items one by one and, when any
    fails, restores a deep copy of each table taken before
    (moto/dynamodb/models/__init__.py:604-716): the copy comes with a copy of the stream
    shard, while every open shard iterator still holds the original shard object
    (moto/dynamodbstreams/models.py ShardIterator.stream_shard). The original then keeps the
    records of the cancelled items and never receives another one: the outbox relay would
    publish events of transactions that never happened and miss every later one. After a
    rollback, this puts the original shard back on the restored table, cut back to its
    length before the transaction.
    """
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        shards = {
            name: (table.stream_shard, len(table.stream_shard.items))
            for name, table in self.tables.items()
            if getattr(table, "stream_shard", None) is not None
        }
        try:
            return original(self, transact_items)
        except Exception:
            for name, (shard, length) in shards.items():
                table = self.tables.get(name)
                if table is not None and table.stream_shard is not shard:
                    del shard.items[length:]
                    shard.table = table
                    table.stream_shard = shard
            raise

    DynamoDBBackend.transact_write_items = transact_write_items


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


def apply_patches(cargo_lambda_url: str, invoke_timeout: float) -> None:
    enable_step_functions_execution()
    patch_lambda_invoke(cargo_lambda_url, invoke_timeout)
    patch_function_error_header()
    disable_event_source_mapping_invocations()
    patch_step_functions_lambda_service_errors()
    patch_step_functions_execution_names()
    serialize_dynamodb_requests()
    keep_stream_shards_through_rollbacks()
    patch_replay_window_and_filter()


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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not args.log_requests:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    cargo_host = os.environ.get("CARGO_LAMBDA_HOST", "127.0.0.1")
    cargo_port = int(os.environ.get("CARGO_LAMBDA_PORT") or 9000)
    cargo_lambda_url = f"http://{cargo_host}:{cargo_port}"
    invoke_timeout = float(os.environ.get("LAMBDA_INVOKE_TIMEOUT") or 600)

    no_proxy_for_loopback()

    from werkzeug.serving import make_server

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    apply_patches(cargo_lambda_url, invoke_timeout)

    # Same construction as moto's ThreadedMotoServer (moto/moto_server/threaded_moto_server.py
    # :24-35), but binding in this thread so a busy port fails loudly instead of hanging
    # start(), and in this process so the patches above apply.
    app = DomainDispatcherApplication(create_backend_app)
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
