"""AWS Step Functions: moto runs the real ASL definitions, with AWS's error names and
execution names, each definition parsed once, and only what can be asked for again kept
(patches 1, 4, 9b-c and 12a)."""

from __future__ import annotations

import os
import sys
import threading
import uuid


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
# Patch 9: moto keeps nothing nobody can ask for again (9b, 9c; 9a is in core.py).
# ---------------------------------------------------------------------------------------
# How many closed executions per state machine keep their event history locally (AWS keeps
# it 90 days; here it is memory, 150 KB to 1 MB an execution).
CLOSED_EXECUTION_HISTORIES = int(os.environ.get("LOCAL_SFN_HISTORIES") or 500)


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


# ---------------------------------------------------------------------------------------
# Patch 12: work moto repeats per request, done once (12a; 12b is in core.py, 12c in
# kinesis.py, 12d in sqs.py, 12e in local/emulator.py's main).
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


#: Step Functions: this module's part of MOTO_SOURCES (the package merges every module's; see
#: local/emulation/__init__.py for what a record is).
MOTO_SOURCES: dict[str, dict[str, str]] = {
    "enable_step_functions_execution": {
        "moto.stepfunctions.responses.get_backend":
            "e736380f7d9c98a50540b6b8e86c014eeb8c3beb66eefc05b2fa73796b0d1589",
        "moto.awslambda.utils.get_backend":
            "889a2b95548422aebfe9c1ac189daf5d5301d7d27a18cb80fba0bd173ebd91c0",
    },
    "patch_step_functions_lambda_service_errors": {
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda.StateTaskLambda._from_error":
            "1a3cdc6f4b303bfe692e515f02bfdd8cea0cabcc2908ad1f5924096423b81a7f",
    },
    "patch_step_functions_execution_names": {
        "moto.stepfunctions.parser.models.StepFunctionsParserBackend.start_execution":
            "0f8d9dd57baf0c2803dda23c5250b1c787a4a1a3d05239cafbddff1ef905be3a",
    },
    "keep_task_answers_sent_before_the_wait": {
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback.StateTaskServiceCallback._wait_for_task_token_heartbeat":
            "156c1dac9685af62276ff0b1d4ee7e565d1d84bf8b2a86eaa86ad7c2dfa4bbaa",
        "moto.stepfunctions.parser.asl.eval.callback.callback.CallbackEndpoint.setup_heartbeat_endpoint":
            "bcf8b4650679f830eeb7b7b7927019d2f25909d77983bbebdb4150de472de768",
        "moto.stepfunctions.parser.asl.eval.callback.callback.CallbackEndpoint.notify":
            "8a2febb9b274f7071896c0894219febfeee1b17d1ea56295872cda8efc757b4d",
    },
    "parse_each_definition_once": {
        "moto.stepfunctions.parser.backend.execution_worker.ExecutionWorker._get_evaluation_entrypoint":
            "2b25949ae855da8035b347b28ac72f90d7d6542bf26ef7e1f03a50ce6a981fde",
        "moto.stepfunctions.parser.asl.parse.asl_parser.AmazonStateLanguageParser.parse":
            "a59a7d18760fb22efc9fd46d8f0fb3bb6c0293abbce2b9053e1589181c6f0711",
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
    "share_step_functions_clients": {
        "moto.stepfunctions.parser.asl.utils.boto_client.boto_client_for":
            "1f44dc2ac8aa2179df62365a6e5ea377f1770ea828a0f107440a2554f1b4edb8",
    },
}
