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

The patches live in local/emulation/, one module per service, each beside the AWS behaviour
it restores: stepfunctions.py (1, 4, 9b-c, 12a), awslambda.py (2, 3, 13), dynamodb.py (5, 6),
streams.py (8, 14), events.py (7, 11, 15), kinesis.py (12c), sqs.py (12d), core.py (9a, 10,
12b), faults.py (LOCAL_FAULTS_FILE), moto_guard.py (the moto version guard), diagnostics.py
(the SIGUSR1 census). This file applies them (apply_patches, in order; 12e is in main) and
serves moto.

moto version this was written against: 5.2.5. Line numbers in comments refer to it.
The emulator refuses to start on any moto but the one local/requirements.txt pins
(require_pinned_moto), and MOTO_SOURCES records, per patch, the source of each moto function
it replaces or relies on, which local/test_emulator.py checks against the installed moto.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

# local/emulation/, beside this file. What other files import from here: event_sources/supervisor.py
# no_proxy_for_loopback (defined below); test_emulator.py main, apply_patches, MOTO_SOURCES,
# MotoVersionError, pinned_moto_version, require_pinned_moto, changed_moto_sources and
# moto_source_sha256 (re-exported from the package).
from emulation import (  # noqa: F401 - re-exported
    MOTO_SOURCES,
    REQUIREMENTS,
    MotoVersionError,
    bound_step_functions_leftovers,
    changed_moto_sources,
    check_sqs_retention_cheaply,
    dead_letter_undeliverable_events,
    disable_event_source_mapping_invocations,
    enable_step_functions_execution,
    expire_stream_shard_iterators,
    index_kinesis_shards,
    log_memory_census,
    make_dynamodb_requests_atomic,
    map_streams_served_apart,
    moto_source_sha256,
    pack_stream_records,
    parse_each_definition_once,
    parse_each_json_path_once,
    patch_function_error_header,
    patch_lambda_invoke,
    patch_replay_window_and_filter,
    patch_step_functions_execution_names,
    keep_task_answers_sent_before_the_wait,
    patch_step_functions_lambda_service_errors,
    pinned_moto_version,
    require_pinned_moto,
    resolve_moto,
    roll_back_only_what_a_transaction_wrote,
    route_requests_without_listing_moto,
    share_step_functions_clients,
    stop_tracking_every_model_instance,
    take_the_bus_away_on_demand,
)

LOG = logging.getLogger("local.emulator")


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
