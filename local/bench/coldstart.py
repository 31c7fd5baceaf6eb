#!/usr/bin/env python3
"""Cold-start harness: plays the AWS Lambda service for one function process at a time.

What it measures, for one process (a "run"):

* **init** -- from process spawn (``time.perf_counter_ns()`` just before ``Popen``) to the
  arrival of the function's first ``GET /2018-06-01/runtime/invocation/next``. This is what
  Lambda reports as ``Init Duration``: exec, dynamic loading, ``main`` up to the runtime's
  first poll (config read, SDK clients built, ...).
* **first invoke** -- from the moment the harness hands the first event out (the answer to
  that first ``/next``) to the moment it has received the whole
  ``POST /2018-06-01/runtime/invocation/<request-id>/response``. A ``POST .../error``
  instead fails the run, with the error body in ``Run.error``.
* **peak memory** -- ``VmHWM`` (peak resident set) from ``/proc/<pid>/status`` after the last
  invocation, before the process is killed. If the process is already gone by then, the
  ``ru_maxrss`` that ``wait4`` reports for it (the same peak, as the kernel kept it) is used.
* **warm invokes** -- with ``warm=N``, N more invocations of the same event after the first,
  each timed like the first; ``Run.warm_stats()`` gives their median and p90.

How it mirrors Lambda:

* A Runtime API on 127.0.0.1 (port chosen by the kernel: bind to port 0) that is close enough
  for the Rust ``lambda_runtime`` 1.x client: ``GET .../invocation/next`` answers 200 with the
  event and the ``Lambda-Runtime-Aws-Request-Id``, ``Lambda-Runtime-Deadline-Ms`` (epoch ms,
  now + timeout), ``Lambda-Runtime-Invoked-Function-Arn`` and ``Lambda-Runtime-Trace-Id``
  headers (no client context, no Cognito identity); ``POST .../response``, ``.../error`` and
  ``/runtime/init/error`` answer 202. HTTP/1.1 keep-alive (the Rust client reuses its
  connection), ``Content-Length`` on every answer, and chunked request bodies with trailers
  (how ``lambda_runtime`` posts streaming responses and their mid-stream errors) are
  understood. Events are handed out one at a time, as Lambda does for a sequential runtime;
  after the last one, ``/next`` blocks -- like an idle Lambda environment -- until the
  harness SIGKILLs the process (as Lambda freezes, then eventually discards it).
* The environment Lambda gives a ``provided.al2023`` function, and nothing else from the
  parent but ``PATH``: ``AWS_LAMBDA_RUNTIME_API``, ``AWS_LAMBDA_FUNCTION_NAME``,
  ``AWS_LAMBDA_FUNCTION_VERSION=$LATEST``, ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``,
  ``AWS_LAMBDA_LOG_GROUP_NAME``, ``AWS_LAMBDA_LOG_STREAM_NAME``,
  ``AWS_LAMBDA_INITIALIZATION_TYPE=on-demand``, ``AWS_REGION``/``AWS_DEFAULT_REGION``
  (us-east-1), dummy ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``
  (Lambda injects the role's session credentials, so the SDK never looks further: no profile
  files, no IMDS), ``_HANDLER=bootstrap``, ``LAMBDA_TASK_ROOT`` (the binary's directory, also
  the working directory, as /var/task is in Lambda), ``TZ=:UTC``, ``LANG=en_US.UTF-8``, then
  the caller's variables (table names, ...), which may override any of these except
  ``AWS_LAMBDA_RUNTIME_API``.
* ``AWS_ENDPOINT_URL`` is set too (not a Lambda variable): by default to
  ``http://127.0.0.1:9``, where nothing listens, so that a function calling AWS during init
  or in its handler gets "connection refused" at once (``shared::aws::sdk_config`` reads the
  standard SDK settings) instead of reaching the internet with dummy credentials. Such a call
  fails loudly -- an init that exits, or an error response -- after the SDK's own retries and
  backoff, and always within ``timeout_s``. Pass ``endpoint_url`` (e.g. the local emulator)
  to measure a function whose cold path calls AWS.
* The function's stdout and stderr go to a log file per run (``Run.log_path``); the tail of it
  is quoted in ``Run.error`` when a run fails.

What it does not mirror: there is no Firecracker microVM (no guest kernel boot, no memory or
CPU limit from ``memory_mb``: the value is only passed in the environment), no network
namespace, no code download or unzip (the binary is run where it lies), and the page cache is
warm after the first run (the binary and its shared libraries are read from memory, not from
disk). Absolute numbers are therefore lower than Lambda's and vary with the machine's load,
which is why ``compare`` reports them as ratios to a hello-world binary measured alternately
with each function (function, hello, function, hello...): drift on a noisy machine hits both.

Every wait is bounded: the init by ``timeout_s``, and each invocation (from the end of the
previous phase to its response) by ``timeout_s``. A run that times out, whose process exits
early or fails to spawn, or that posts an init or invocation error is an ``ok=False`` result
with the reason; it never hangs.

Percentiles: medians are ``statistics.median`` (the mean of the two middle values for an even
count); p90 is the nearest-rank percentile (the smallest observed value with at least 90% of
the values at or below it), so it is always a measured value and is defined for one sample.

    python3 local/bench/coldstart.py --binary target/release/orders-get \\
        --event events/orders-get.json --env ORDERS_TABLE=commerce-orders --runs 20
    python3 local/bench/coldstart.py --binary target/release/orders-get --warm 100 --runs 3
    python3 local/bench/coldstart.py --binary target/release/orders-get --hello PATH --runs 20
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import secrets
import signal
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence, Union
from urllib.parse import urlsplit

#: Where AWS calls go unless the caller says otherwise: loopback port 9 (discard), where
#: nothing listens, so SDK calls are refused at once instead of leaving the machine.
DEFAULT_ENDPOINT_URL = "http://127.0.0.1:9"
REGION = "us-east-1"
ACCOUNT = "123456789012"
LOG_TAIL_BYTES = 2000
BODY_KEEP_BYTES = 8192

NEXT_PATH = "/2018-06-01/runtime/invocation/next"
INIT_ERROR_PATH = "/2018-06-01/runtime/init/error"
INVOCATION_PATH = re.compile(r"^/2018-06-01/runtime/invocation/([^/]+)/(response|error)$")

Binary = Union[str, Path, Sequence[str]]


# --------------------------------------------------------------------------- statistics


def nearest_rank(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile: a measured value, defined for any non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, Any]:
    """n, median (statistics.median), p90 (nearest rank), min and max, rounded to 0.001."""
    if not values:
        return {"n": 0, "median": None, "p90": None, "min": None, "max": None}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 3),
        "p90": round(nearest_rank(values, 90), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


# --------------------------------------------------------------------------- results


@dataclass
class Run:
    """One process, from spawn to SIGKILL. Times in milliseconds; None where not reached."""

    init_ms: float | None
    first_invoke_ms: float | None
    warm_ms: list[float]
    peak_rss_kb: int | None
    ok: bool
    error: str | None
    log_path: str | None = None
    #: The exit status as subprocess reports it: -9 when the harness killed it (a normal end).
    exit_code: int | None = None
    #: The first and last response bodies (truncated), so a caller can check that the
    #: function did what it should (a lambda_http 500 is a successful invocation to Lambda).
    first_response: str | None = None
    last_response: str | None = None

    def warm_stats(self) -> dict[str, Any]:
        """Median and p90 of the warm invocations (n=0 when none were asked for)."""
        return summary(self.warm_ms)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable, with the warm summary alongside the raw warm timings."""
        return {**asdict(self), "warm": self.warm_stats()}


@dataclass
class Invocation:
    """One event handed out by the Runtime API, and what came back for it."""

    request_id: str
    event: bytes
    deadline_ms: int
    sent_ns: int
    done_ns: int | None = None
    ok: bool | None = None
    body: bytes = b""
    error_type: str | None = None


# --------------------------------------------------------------------------- Runtime API state


class RuntimeApi:
    """The state of one run's Runtime API, shared by the HTTP handler threads and the harness.

    One condition variable guards everything, so the harness can wait for "the function made
    progress, or failed, or exited" in a single bounded wait.
    """

    def __init__(self, events: Sequence[bytes], function_name: str, timeout_s: float,
                 accept_errors: bool = False):
        self.events = list(events)
        #: A function error (POST .../error) completes its invocation instead of failing the
        #: run: for an event whose cheapest path is a refusal (a saga step given no order).
        self.accept_errors = accept_errors
        self.arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.timeout_s = timeout_s
        self.cond = threading.Condition()
        self.invocations: list[Invocation] = []
        self.first_next_ns: int | None = None
        self.failure: str | None = None
        self.exit_code: int | None = None
        self.closing = False

    def _dispatchable(self) -> bool:
        """Sequential, like Lambda: the next event only once the previous one is answered."""
        if self.failure is not None or len(self.invocations) >= len(self.events):
            return False
        return not self.invocations or self.invocations[-1].done_ns is not None

    def take_next(self, arrived_ns: int) -> Invocation | None:
        """Blocks until an event is due (returned) or the run is over (None: never answer)."""
        with self.cond:
            if self.first_next_ns is None:
                self.first_next_ns = arrived_ns
                self.cond.notify_all()
            self.cond.wait_for(lambda: self.closing or self._dispatchable())
            if self.closing:
                return None
            inv = Invocation(
                request_id=str(uuid.uuid4()),
                event=self.events[len(self.invocations)],
                deadline_ms=int(time.time() * 1000 + self.timeout_s * 1000),
                sent_ns=time.perf_counter_ns(),
            )
            self.invocations.append(inv)
            return inv

    def headers_for(self, inv: Invocation) -> list[tuple[str, str]]:
        """The headers lambda_runtime 1.x reads from /next (request id and deadline required)."""
        trace = (
            f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};"
            f"Parent={secrets.token_hex(8)};Sampled=1"
        )
        return [
            ("Lambda-Runtime-Aws-Request-Id", inv.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(inv.deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", self.arn),
            ("Lambda-Runtime-Trace-Id", trace),
        ]

    def complete(self, request_id: str, done_ns: int, ok: bool, body: bytes,
                 error_type: str | None) -> bool:
        """Records a response or error; False for an unknown or already answered request id."""
        with self.cond:
            inv = next((i for i in self.invocations if i.request_id == request_id), None)
            if inv is None or inv.done_ns is not None:
                return False
            inv.done_ns, inv.ok, inv.body, inv.error_type = done_ns, ok, body, error_type
            if not ok and not self.accept_errors:
                index = self.invocations.index(inv)
                self.failure = (
                    f"invocation {index} error ({error_type or 'unknown type'}): "
                    f"{_text(body)}"
                )
            self.cond.notify_all()
            return True

    def fail(self, reason: str) -> None:
        """An init error, or a request this Runtime API does not know (a mismatch to fix)."""
        with self.cond:
            self.failure = self.failure or reason
            self.cond.notify_all()

    def process_exited(self, code: int) -> None:
        """Called by the child watcher, so that waits end as soon as the process is gone."""
        with self.cond:
            self.exit_code = code
            self.cond.notify_all()

    def close(self) -> None:
        """Releases handler threads blocked in /next (they return without answering)."""
        with self.cond:
            self.closing = True
            self.cond.notify_all()

    def wait_until(self, done: Callable[[], bool], timeout_s: float, what: str) -> str | None:
        """Waits for `done`; None if it happened, else why not (failure, exit or timeout)."""
        with self.cond:
            self.cond.wait_for(
                lambda: done() or self.failure is not None or self.exit_code is not None,
                timeout=timeout_s,
            )
            if self.failure is not None:  # first: an /error also completes its invocation
                return self.failure
            if done():
                return None
            if self.exit_code is not None:
                return f"process exited with status {self.exit_code} while waiting for {what}"
            return f"timed out after {timeout_s:g} s waiting for {what}"

    def completed(self, index: int) -> bool:
        """Whether invocation `index` has been answered (call with the condition held)."""
        return len(self.invocations) > index and self.invocations[index].done_ns is not None


def _text(body: bytes, limit: int = BODY_KEEP_BYTES) -> str:
    """A body as text for reports, cut to `limit` bytes."""
    cut = body[:limit].decode("utf-8", "replace")
    return cut + ("..." if len(body) > limit else "")


# --------------------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    """The Runtime API's HTTP side: HTTP/1.1 keep-alive, one write per answer, no Nagle."""

    protocol_version = "HTTP/1.1"
    # Small answers written as one segment, with TCP_NODELAY: no Nagle/delayed-ACK stalls
    # (tens of ms) in the timings.
    disable_nagle_algorithm = True
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        """Silent: the function's log is the one that matters."""

    def do_GET(self) -> None:
        """/next: the first one ends init; it blocks until an event is due, or forever."""
        arrived = time.perf_counter_ns()
        if urlsplit(self.path).path != NEXT_PATH:
            self._unknown()
            return
        api = self.server.api
        inv = api.take_next(arrived)
        if inv is None:
            self.close_connection = True  # the run is over; the process is being killed
            return
        self._reply(200, inv.event, api.headers_for(inv))

    def do_POST(self) -> None:
        """/response, /error and /init/error: all 202, timed once the body is in."""
        try:
            body, trailers = self._read_body()
        except (ValueError, OSError) as err:
            self.close_connection = True
            self._reply(400, _error_json("InvalidRequest", f"unreadable body: {err}"))
            return
        received = time.perf_counter_ns()
        api, path = self.server.api, urlsplit(self.path).path
        error_type = trailers.get("lambda-runtime-function-error-type") or self.headers.get(
            "Lambda-Runtime-Function-Error-Type"
        )
        if path == INIT_ERROR_PATH:
            api.fail(f"init error ({error_type or 'unknown type'}): {_text(body)}")
            self._reply(202, b'{"status":"OK"}')
            return
        match = INVOCATION_PATH.match(path)
        if match is None:
            self._unknown()
            return
        request_id, kind = match.groups()
        ok = kind == "response" and "lambda-runtime-function-error-type" not in trailers
        if kind == "response" and not ok:  # a streaming response that failed mid-stream
            body += b" " + trailers.get("lambda-runtime-function-error-body", "").encode()
        if not api.complete(request_id, received, ok, body, error_type):
            self._reply(400, _error_json("InvalidRequestID", f"unknown request {request_id}"))
            return
        self._reply(202, b'{"status":"OK"}')

    def _unknown(self) -> None:
        """A request this harness does not implement fails the run: better loud than wrong."""
        self.server.api.fail(f"unexpected Runtime API request: {self.command} {self.path}")
        self._reply(404, _error_json("NotFound", f"{self.command} {self.path}"))

    def _read_body(self) -> tuple[bytes, dict[str, str]]:
        """The request body, by Content-Length or chunked (with trailers, lower-cased)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if len(body) != length:
            raise ValueError("connection closed mid-body")
        return body, {}

    def _read_chunked(self) -> tuple[bytes, dict[str, str]]:
        """Chunked transfer coding (RFC 9112 7.1), as hyper sends streaming responses."""
        chunks = []
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise ValueError("connection closed mid-body")
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                break
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after the chunk data
        trailers = {}
        while (line := self.rfile.readline(65537)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            trailers[name.strip().lower()] = value.strip()
        return b"".join(chunks), trailers

    def _reply(self, status: int, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> None:
        """Status line, headers (always Content-Length) and body in a single write."""
        lines = [
            f"HTTP/1.1 {status} {self.responses[status][0]}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers),
        ]
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def _error_json(error_type: str, message: str) -> bytes:
    """Lambda's error body shape."""
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer on 127.0.0.1, port 0, without HTTPServer's reverse DNS lookup."""

    daemon_threads = True

    def __init__(self, api: RuntimeApi):
        self.api = api
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about connections the killed process dropped; loud about anything else."""
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn, a DNS lookup that can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class RuntimeApiServer:
    """A Runtime API serving `events` in order, in a background thread (a context manager)."""

    def __init__(self, events: Sequence[bytes], function_name: str, timeout_s: float,
                 accept_errors: bool = False):
        self.api = RuntimeApi(events, function_name, timeout_s, accept_errors)
        self._server = _Server(self.api)
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> "RuntimeApiServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------- the process


class Child:
    """The function process, reaped by a watcher thread that also reports its exit.

    The watcher first waits without reaping (waitid WNOWAIT) and marks the process as exited
    under a lock, and only then reaps it: so while `exited` is False under that lock the pid
    is still ours, and kill() or reading /proc/<pid> can never reach a recycled pid.
    """

    def __init__(self, proc: Any, api: RuntimeApi):
        self.proc, self.api = proc, api
        self.lock = threading.Lock()
        self.exited = False
        self.maxrss_kb: int | None = None
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        pid = self.proc.pid
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        with self.lock:
            self.exited = True
        _, status, usage = os.wait4(pid, 0)
        self.maxrss_kb = usage.ru_maxrss  # kilobytes on Linux
        self.proc.returncode = os.waitstatus_to_exitcode(status)  # Popen won't reap again
        self.api.process_exited(self.proc.returncode)

    def peak_rss_kb(self) -> int | None:
        """VmHWM from /proc/<pid>/status while the process lives (None once it has exited)."""
        with self.lock:
            if self.exited:
                return None
            try:
                status = Path(f"/proc/{self.proc.pid}/status").read_text()
            except OSError:
                return None
        match = re.search(r"^VmHWM:\s+(\d+)\s+kB", status, re.MULTILINE)
        return int(match.group(1)) if match else None

    def kill(self, wait_s: float = 10) -> int | None:
        """SIGKILL (its whole session) unless it is already gone, then wait for the reaping."""
        with self.lock:
            if not self.exited:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._thread.join(timeout=wait_s)
        return self.proc.returncode


def lambda_env(name: str, port: int, memory_mb: int, task_root: Path, endpoint_url: str,
               extra: dict[str, str]) -> dict[str, str]:
    """Lambda's environment for a provided.al2023 function; from the parent only PATH."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": (
            f"{datetime.now(timezone.utc):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        ),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "ASIACOLDSTARTDUMMY00",
        "AWS_SECRET_ACCESS_KEY": "coldstart/dummy/secret/key/0000000000000",
        "AWS_SESSION_TOKEN": "coldstart-dummy-session-token",
        "AWS_ENDPOINT_URL": endpoint_url,
        "_HANDLER": "bootstrap",
        "LAMBDA_TASK_ROOT": str(task_root),
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
    }
    env.update({key: str(value) for key, value in extra.items()})
    env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{port}"
    return env


def _argv(binary: Binary) -> tuple[list[str], Path]:
    """The command line and the task root: a path is run as is, a list is an argv whose
    last element names the code (e.g. [sys.executable, "fake.py"]); the root is its dir."""
    if isinstance(binary, (str, Path)):
        argv = [str(Path(binary).resolve())]
    else:
        argv = [str(arg) for arg in binary]
    return argv, Path(argv[-1]).resolve().parent


def _log_tail(path: Path) -> str:
    """The end of a run's log, quoted in failures."""
    try:
        with open(path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
            return log.read().decode("utf-8", "replace")
    except OSError as err:
        return f"(log unreadable: {err})"


_LOG_DIR: Path | None = None


def _default_log_dir() -> Path:
    """One temporary directory per harness process, so the logs outlive the runs."""
    global _LOG_DIR
    if _LOG_DIR is None:
        _LOG_DIR = Path(tempfile.mkdtemp(prefix="coldstart-logs-"))
    return _LOG_DIR


# --------------------------------------------------------------------------- measure


def measure(binary: Binary, event: Any, env: dict[str, str], warm: int = 0,
            timeout_s: float = 30, memory_mb: int = 128, *, name: str | None = None,
            endpoint_url: str = DEFAULT_ENDPOINT_URL,
            log_dir: Path | None = None, accept_errors: bool = False) -> Run:
    """Spawns `binary` as Lambda would, invokes it 1 + `warm` times with `event`, kills it.

    `binary` is a path, or an argv list. `env` holds the function's own variables (added to
    Lambda's, see lambda_env). `name` is the function name (default: the binary's name).
    With `accept_errors`, a function error answers its invocation like a response does.
    """
    argv, task_root = _argv(binary)
    name = name or Path(argv[-1]).stem
    payload = json.dumps(event).encode()
    log_dir = Path(log_dir) if log_dir else _default_log_dir()
    log_dir.mkdir(parents=True, exist_ok=True)
    fd, log_name = tempfile.mkstemp(prefix=f"{name}-", suffix=".log", dir=log_dir)
    with RuntimeApiServer([payload] * (1 + warm), name, timeout_s, accept_errors) as server:
        child_env = lambda_env(name, server.port, memory_mb, task_root, endpoint_url, env)
        try:
            start = _spawn(argv, child_env, task_root, fd, server.api)
        finally:
            os.close(fd)
        if isinstance(start, str):
            return Run(None, None, [], None, False, start, log_name)
        started_ns, child = start
        reason = _drive(server.api, 1 + warm, timeout_s)
        peak = child.peak_rss_kb()
        exit_code = child.kill()
        if peak is None:
            peak = child.maxrss_kb
    return _result(server.api, started_ns, peak, reason, Path(log_name), exit_code)


def _spawn(argv: list[str], env: dict[str, str], cwd: Path, log_fd: int,
           api: RuntimeApi) -> tuple[int, Child] | str:
    """Starts the process (clock first); a reason string if it cannot be started at all."""
    started_ns = time.perf_counter_ns()
    try:
        proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log_fd,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    except OSError as err:
        return f"could not start {argv[0]}: {err}"
    return started_ns, Child(proc, api)


def _drive(api: RuntimeApi, total: int, timeout_s: float) -> str | None:
    """Waits for init, then each of `total` invocations; the first reason to stop, if any."""
    reason = api.wait_until(lambda: api.first_next_ns is not None, timeout_s,
                            "the first GET /next (init)")
    for index in range(total):
        if reason is not None:
            break
        reason = api.wait_until(lambda: api.completed(index), timeout_s,
                                f"the response to invocation {index}")
    return reason


def _ms(ns: int) -> float:
    """Nanoseconds to milliseconds, to the microsecond."""
    return round(ns / 1e6, 3)


def _result(api: RuntimeApi, started_ns: int, peak: int | None, reason: str | None,
            log_path: Path, exit_code: int | None) -> Run:
    """The Run from what the Runtime API saw; the log's tail appended to any failure."""
    done = [i for i in api.invocations if i.done_ns is not None and (i.ok or api.accept_errors)]
    init_ms = _ms(api.first_next_ns - started_ns) if api.first_next_ns is not None else None
    first = done[0] if done and done[0] is api.invocations[0] else None
    error = None
    if reason is not None:
        error = f"{reason}\n--- log tail ({log_path}) ---\n{_log_tail(log_path)}"
    return Run(
        init_ms=init_ms,
        first_invoke_ms=_ms(first.done_ns - first.sent_ns) if first else None,
        warm_ms=[_ms(i.done_ns - i.sent_ns) for i in done[1:]],
        peak_rss_kb=peak,
        ok=reason is None,
        error=error,
        log_path=str(log_path),
        exit_code=exit_code,
        first_response=_text(done[0].body) if done else None,
        last_response=_text(done[-1].body) if done else None,
    )


# --------------------------------------------------------------------------- compare


class Subject(NamedTuple):
    """One binary to compare: its name, executable, event and environment, and whether
    its function error answers count (a saga step refusing the bench's event still
    measures init and the answer's path)."""
    name: str
    binary: Binary
    event: Any
    env: dict[str, str]
    accept_errors: bool = False


def compare(functions: Sequence[Subject | tuple], hello: Subject | tuple, rounds: int, *,
            warm: int = 0, timeout_s: float = 30, memory_mb: int = 128,
            endpoint_url: str = DEFAULT_ENDPOINT_URL,
            log_dir: Path | None = None) -> dict[str, Any]:
    """Each round, for each function: hello world, then the function, so that drift on a
    noisy machine hits both. Each function is summarised against its own hello runs.

    `functions` and `hello` are `Subject`s (or tuples of their fields). Returns a
    JSON-serializable dict; each function's summary keeps its last answer.
    """
    subjects = [Subject(*f) for f in functions]
    hello = Subject(*hello)
    names = [f.name for f in subjects]
    if len(set(names)) != len(names):
        raise ValueError(f"function names must be unique: {names}")
    options = dict(warm=warm, timeout_s=timeout_s, memory_mb=memory_mb,
                   endpoint_url=endpoint_url, log_dir=log_dir)
    pairs: dict[str, list[tuple[Run, Run]]] = {name: [] for name in names}
    for _ in range(rounds):
        for f in subjects:
            h = measure(hello.binary, hello.event, hello.env, name=hello.name,
                        accept_errors=hello.accept_errors, **options)
            r = measure(f.binary, f.event, f.env, name=f.name, accept_errors=f.accept_errors, **options)
            pairs[f.name].append((h, r))
    return {
        "rounds": rounds,
        "warm": warm,
        "hello": hello.name,
        "percentiles": "median: statistics.median; p90: nearest rank",
        "functions": {name: summarise_pairs(p) for name, p in pairs.items()},
    }


def summarise_pairs(pairs: Sequence[tuple[Run, Run]]) -> dict[str, Any]:
    """Medians/p90 of function and hello runs, and the init ratio two ways: the ratio of
    the medians, and the median of the per-round ratios (more robust to drift)."""
    hellos = [h for h, _ in pairs if h.ok]
    funcs = [f for _, f in pairs if f.ok]
    both = [(h, f) for h, f in pairs if h.ok and f.ok and h.init_ms]
    f_init = summary([f.init_ms for f in funcs])
    h_init = summary([h.init_ms for h in hellos])
    failures = [
        f"round {n} {which}: {run.error}"
        for n, pair in enumerate(pairs)
        for which, run in zip(("hello", "function"), pair)
        if not run.ok
    ]
    return {
        "init_ms": f_init,
        "first_invoke_ms": summary([f.first_invoke_ms for f in funcs]),
        "warm_ms": summary([ms for f in funcs for ms in f.warm_ms]),
        "peak_rss_kb": summary([f.peak_rss_kb for f in funcs if f.peak_rss_kb]),
        "hello_init_ms": h_init,
        "hello_first_invoke_ms": summary([h.first_invoke_ms for h in hellos]),
        "hello_peak_rss_kb": summary([h.peak_rss_kb for h in hellos if h.peak_rss_kb]),
        "init_ratio_of_medians": (
            round(f_init["median"] / h_init["median"], 3)
            if f_init["n"] and h_init["n"] and h_init["median"] else None
        ),
        "init_ratio_median_of_pairs": (
            round(statistics.median(f.init_ms / h.init_ms for h, f in both), 3) if both else None
        ),
        "pairs_ok": len(both),
        "failures": failures,
        "last_response": next((f.first_response for f in reversed(funcs) if f.first_response), None),
    }


# --------------------------------------------------------------------------- CLI


def summarise_runs(runs: Sequence[Run]) -> dict[str, Any]:
    """The CLI's summary of repeated runs of one binary (failed runs only listed)."""
    good = [r for r in runs if r.ok]
    return {
        "runs": len(runs),
        "ok": len(good),
        "percentiles": "median: statistics.median; p90: nearest rank",
        "init_ms": summary([r.init_ms for r in good]),
        "first_invoke_ms": summary([r.first_invoke_ms for r in good]),
        "warm_ms": summary([ms for r in good for ms in r.warm_ms]),
        "peak_rss_kb": summary([r.peak_rss_kb for r in good if r.peak_rss_kb]),
        "failures": [r.error for r in runs if not r.ok],
    }


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True, help="the function's executable")
    parser.add_argument("--event", help="JSON file with the event (default: {})")
    parser.add_argument("--env", nargs="+", action="extend", default=[], metavar="K=V",
                        help="extra environment for the function (also given to --hello)")
    parser.add_argument("--runs", type=int, default=20, help="processes (rounds with --hello)")
    parser.add_argument("--warm", type=int, default=0, help="warm invocations after the first")
    parser.add_argument("--timeout", type=float, default=30, help="seconds per wait")
    parser.add_argument("--memory", type=int, default=128, help="AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    parser.add_argument("--name", help="function name (default: the binary's name)")
    parser.add_argument("--endpoint-url", default=DEFAULT_ENDPOINT_URL, help="AWS_ENDPOINT_URL")
    parser.add_argument("--log-dir", type=Path, help="per-run logs (default: a temp dir)")
    parser.add_argument("--hello", help="hello-world binary: compare alternately, with ratios")
    parser.add_argument("--hello-event", help="JSON file with hello's event (default: {})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the summary as JSON; exit status 1 if any run failed."""
    args = _parse_args(argv)
    if any("=" not in pair for pair in args.env):
        raise SystemExit(f"--env takes K=V pairs, got {args.env}")
    env = dict(pair.split("=", 1) for pair in args.env)
    event = json.loads(Path(args.event).read_text()) if args.event else {}
    name = args.name or Path(args.binary).name
    log_dir = args.log_dir or _default_log_dir()
    options = dict(warm=args.warm, timeout_s=args.timeout, memory_mb=args.memory,
                   endpoint_url=args.endpoint_url, log_dir=log_dir)
    if args.hello:
        hello_event = json.loads(Path(args.hello_event).read_text()) if args.hello_event else {}
        hello = (Path(args.hello).name, args.hello, hello_event, env)
        result = compare([(name, args.binary, event, env)], hello, args.runs, **options)
        failed = bool(result["functions"][name]["failures"])
    else:
        runs = [measure(args.binary, event, env, name=name, **options) for _ in range(args.runs)]
        result = summarise_runs(runs)
        failed = result["ok"] < len(runs)
    result["log_dir"] = str(log_dir)
    print(json.dumps(result, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
