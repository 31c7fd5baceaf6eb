"""AWS Lambda: invocations made through moto run the real Rust functions in `cargo lambda
watch`, with Lambda's answers for function errors, timeouts and its own failures; moto's
event-source mappings keep their records but invoke nothing (the pollers in local/ do);
a mapping may name a stream the second emulator process serves (patches 2, 3 and 13)."""

from __future__ import annotations

import json
import logging
import socket
import urllib.error
import urllib.parse
import urllib.request
import uuid

from lambda_gate import GATE, Busy  # local/, beside this package

from .faults import FAULTS_AFTER, FAULTS_BEFORE, _take_injected_fault

LOG = logging.getLogger("local.emulator")


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


#: Lambda: this module's part of MOTO_SOURCES (the package merges every module's; see
#: local/emulation/__init__.py for what a record is).
MOTO_SOURCES: dict[str, dict[str, str]] = {
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
    "map_streams_served_apart": {
        "moto.awslambda.models.LambdaBackend.create_event_source_mapping":
            "19f8125cabf7d67b294269f6db0c16bc46ebb7e496a9a259894c30546839fe9e",
        "moto.awslambda.models.EventSourceMapping.__init__":
            "6580bc24f819d09e263acefa05382240e4f9609e4aecc93cf77afa3ceaedc699",
    },
}
