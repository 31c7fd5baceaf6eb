#!/usr/bin/env python3
"""Tests of local/bench/coldstart.py, without any Rust build: the function is a fake
bootstrap, a Python script speaking the Lambda Runtime API with http.client over one
keep-alive connection, as lambda_runtime's client does.

    python3 local/bench/test_coldstart.py -v

Timings are asserted as outcomes only (init >= the fake's sleep; generous upper bounds),
since the machine may be busy with a build.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import coldstart  # noqa: E402

# FAKE_MODE: echo (default) | error | exit | init_error | hang | chunked.
# FAKE_INIT_SLEEP: seconds to sleep before the first /next.
FAKE_BOOTSTRAP = r'''#!/usr/bin/env python3
import http.client, json, os, sys, time

mode = os.environ.get("FAKE_MODE", "echo")
time.sleep(float(os.environ.get("FAKE_INIT_SLEEP", "0")))
if mode == "exit":
    print("fake: exiting during init", file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "hang":
    time.sleep(3600)
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))
ports = []

def post(path, body, headers=None, chunked=False):
    headers = dict(headers or {}, **{"Content-Type": "application/json"})
    if chunked:
        conn.request("POST", path, body=iter([body[:5], body[5:]]), headers=headers,
                     encode_chunked=True)
    else:
        conn.request("POST", path, body=body, headers=headers)
    ports.append(conn.sock.getsockname()[1])
    reply = conn.getresponse()
    reply.read()
    if reply.status != 202:
        print(f"fake: POST {path} answered {reply.status}", file=sys.stderr, flush=True)
        sys.exit(4)

if mode == "init_error":
    post("/2018-06-01/runtime/init/error", b'{"errorType":"Fake.Init","errorMessage":"no config"}',
         {"Lambda-Runtime-Function-Error-Type": "Runtime.InitError"})
    time.sleep(3600)
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    ports.append(conn.sock.getsockname()[1])
    reply = conn.getresponse()
    event = reply.read()
    if reply.status != 200:
        print(f"fake: /next answered {reply.status}", file=sys.stderr, flush=True)
        sys.exit(5)
    headers = {k.lower(): v for k, v in reply.getheaders()}
    request_id = headers["lambda-runtime-aws-request-id"]
    base = f"/2018-06-01/runtime/invocation/{request_id}"
    if mode == "error":
        post(base + "/error", b'{"errorType":"Fake.Boom","errorMessage":"it broke"}',
             {"Lambda-Runtime-Function-Error-Type": "unhandled"})
        continue
    env = {k: v for k, v in os.environ.items() if k != "PATH"}
    body = json.dumps({"event": json.loads(event), "headers": headers, "env": env,
                       "cwd": os.getcwd(), "ports": sorted(set(ports))}).encode()
    post(base + "/response", body, chunked=(mode == "chunked"))
'''


class FakeFunction:
    """Writes the fake bootstrap into a temp dir, executable, as a real `bootstrap` would be."""

    def __init__(self, directory: Path):
        self.path = directory / "bootstrap"
        self.path.write_text(FAKE_BOOTSTRAP)
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


class HarnessTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="coldstart-test-")
        self.root = Path(self.dir.name)
        self.fake = FakeFunction(self.root).path
        self.logs = self.root / "logs"

    def tearDown(self):
        self.dir.cleanup()

    def run_fake(self, mode="echo", sleep=0.0, warm=0, timeout_s=20.0, event=None, **kw):
        env = {"FAKE_MODE": mode, "FAKE_INIT_SLEEP": str(sleep), **kw.pop("env", {})}
        return coldstart.measure(self.fake, event if event is not None else {"hello": "world"},
                                 env, warm=warm, timeout_s=timeout_s, log_dir=self.logs, **kw)

    def test_a_successful_run_is_timed_and_the_event_comes_back(self):
        run = self.run_fake(event={"orderId": "o-1", "n": [1, 2]})
        self.assertTrue(run.ok, run.error)
        self.assertIsNone(run.error)
        self.assertGreater(run.init_ms, 0)
        self.assertGreater(run.first_invoke_ms, 0)
        self.assertLess(run.first_invoke_ms, 20_000)
        self.assertEqual(run.warm_ms, [])
        self.assertEqual(json.loads(run.first_response)["event"], {"orderId": "o-1", "n": [1, 2]})
        self.assertEqual(run.exit_code, -9, "killed by the harness, blocked in the last /next")

    def test_init_is_at_least_the_time_spent_before_the_first_next(self):
        run = self.run_fake(sleep=0.2)
        self.assertTrue(run.ok, run.error)
        self.assertGreaterEqual(run.init_ms, 200)
        self.assertLess(run.init_ms, 20_000)

    def test_peak_rss_is_read(self):
        run = self.run_fake()
        self.assertTrue(run.ok, run.error)
        self.assertGreater(run.peak_rss_kb, 1000)  # a Python interpreter is several MB

    def test_warm_gives_exactly_n_timings_over_one_kept_alive_connection(self):
        run = self.run_fake(warm=25)
        self.assertTrue(run.ok, run.error)
        self.assertEqual(len(run.warm_ms), 25)
        self.assertTrue(all(ms > 0 for ms in run.warm_ms))
        stats = run.warm_stats()
        self.assertEqual(stats["n"], 25)
        self.assertLessEqual(stats["median"], stats["p90"])
        self.assertEqual(len(json.loads(run.last_response)["ports"]), 1, "connection not reused")

    def test_the_runtime_api_headers_are_present(self):
        before_ms = time.time() * 1000
        run = self.run_fake(timeout_s=15, name="orders-get")
        self.assertTrue(run.ok, run.error)
        headers = json.loads(run.first_response)["headers"]
        request_id = headers["lambda-runtime-aws-request-id"]
        self.assertRegex(request_id, r"^[0-9a-f-]{36}$")
        deadline = int(headers["lambda-runtime-deadline-ms"])
        self.assertGreaterEqual(deadline, before_ms + 15_000 - 1)
        self.assertLess(deadline, before_ms + 15_000 + 60_000)
        self.assertEqual(headers["lambda-runtime-invoked-function-arn"],
                         "arn:aws:lambda:us-east-1:123456789012:function:orders-get")
        self.assertRegex(headers["lambda-runtime-trace-id"],
                         r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=1$")
        self.assertNotIn("lambda-runtime-client-context", headers)
        self.assertNotIn("lambda-runtime-cognito-identity", headers)
        self.assertEqual(headers["content-length"], str(len(b'{"hello": "world"}')))

    def test_the_environment_is_lambdas_plus_the_callers_and_nothing_else(self):
        os.environ["COLDSTART_TEST_LEAK"] = "must not reach the function"
        try:
            run = self.run_fake(env={"ORDERS_TABLE": "commerce-orders"}, memory_mb=256,
                                name="orders-get")
        finally:
            del os.environ["COLDSTART_TEST_LEAK"]
        self.assertTrue(run.ok, run.error)
        reply = json.loads(run.first_response)
        env = reply["env"]
        self.assertNotIn("COLDSTART_TEST_LEAK", env)
        self.assertEqual(env["ORDERS_TABLE"], "commerce-orders")
        self.assertEqual(env["AWS_ENDPOINT_URL"], "http://127.0.0.1:9")
        self.assertRegex(env["AWS_LAMBDA_RUNTIME_API"], r"^127\.0\.0\.1:\d+$")
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_NAME"], "orders-get")
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST")
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256")
        self.assertEqual(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/orders-get")
        self.assertIn("[$LATEST]", env["AWS_LAMBDA_LOG_STREAM_NAME"])
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            self.assertTrue(env[key])
        self.assertEqual((env["AWS_REGION"], env["AWS_DEFAULT_REGION"]), ("us-east-1",) * 2)
        self.assertEqual((env["_HANDLER"], env["TZ"]), ("bootstrap", ":UTC"))
        self.assertEqual(Path(env["LAMBDA_TASK_ROOT"]), self.root.resolve())
        self.assertEqual(Path(reply["cwd"]), self.root.resolve())

    def test_a_caller_endpoint_url_replaces_the_dead_default(self):
        run = self.run_fake(endpoint_url="http://127.0.0.1:4566")
        self.assertTrue(run.ok, run.error)
        self.assertEqual(json.loads(run.first_response)["env"]["AWS_ENDPOINT_URL"],
                         "http://127.0.0.1:4566")

    def test_a_chunked_response_body_is_read(self):
        run = self.run_fake(mode="chunked", event={"chunked": True}, warm=2)
        self.assertTrue(run.ok, run.error)
        self.assertEqual(json.loads(run.first_response)["event"], {"chunked": True})
        self.assertEqual(len(run.warm_ms), 2)

    def test_an_invocation_error_fails_the_run_with_its_body(self):
        run = self.run_fake(mode="error")
        self.assertFalse(run.ok)
        self.assertIn("invocation 0 error (unhandled)", run.error)
        self.assertIn("it broke", run.error)
        self.assertIsNotNone(run.init_ms)
        self.assertIsNone(run.first_invoke_ms)
        self.assertEqual(run.warm_ms, [])

    def test_with_accept_errors_a_function_error_answers_each_invocation(self):
        # A saga step given no order refuses it: still a timed invocation, for init and memory.
        run = self.run_fake(mode="error", warm=3, accept_errors=True)
        self.assertTrue(run.ok, run.error)
        self.assertIsNotNone(run.first_invoke_ms)
        self.assertEqual(len(run.warm_ms), 3)
        self.assertIn("it broke", run.first_response)

    def test_an_init_error_fails_the_run_with_its_body(self):
        run = self.run_fake(mode="init_error")
        self.assertFalse(run.ok)
        self.assertIn("init error (Runtime.InitError)", run.error)
        self.assertIn("no config", run.error)
        self.assertIsNone(run.init_ms)

    def test_an_early_exit_is_reported_with_the_log_tail_not_waited_for(self):
        started = time.monotonic()
        run = self.run_fake(mode="exit", timeout_s=60)
        self.assertLess(time.monotonic() - started, 30, "waited for the timeout instead")
        self.assertFalse(run.ok)
        self.assertIn("process exited with status 3", run.error)
        self.assertIn("fake: exiting during init", run.error)
        self.assertEqual(run.exit_code, 3)
        self.assertGreater(run.peak_rss_kb, 0, "from wait4's ru_maxrss once it has exited")

    def test_a_process_that_never_polls_times_out(self):
        run = self.run_fake(mode="hang", timeout_s=1)
        self.assertFalse(run.ok)
        self.assertIn("timed out after 1 s waiting for the first GET /next", run.error)
        self.assertEqual(run.exit_code, -9)

    def test_a_binary_that_cannot_start_is_a_failed_run(self):
        run = coldstart.measure(self.root / "missing", {}, {}, log_dir=self.logs)
        self.assertFalse(run.ok)
        self.assertIn("could not start", run.error)

    def test_an_argv_list_runs_the_fake_through_this_interpreter(self):
        run = coldstart.measure([sys.executable, str(self.fake)], {"x": 1},
                                {"FAKE_MODE": "echo"}, log_dir=self.logs)
        self.assertTrue(run.ok, run.error)
        self.assertEqual(json.loads(run.first_response)["event"], {"x": 1})

    def test_the_function_output_goes_to_the_run_log(self):
        run = self.run_fake(mode="exit")
        self.assertIn("fake: exiting during init", Path(run.log_path).read_text())
        self.assertEqual(Path(run.log_path).parent, self.logs)


class RuntimeApiTest(unittest.TestCase):
    """The Runtime API on its own, driven by a plain HTTP client."""

    def test_after_the_last_event_next_blocks_instead_of_answering(self):
        with coldstart.RuntimeApiServer([b"{}"], "f", 5) as server:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("GET", coldstart.NEXT_PATH)
            reply = conn.getresponse()
            reply.read()
            request_id = reply.getheader("Lambda-Runtime-Aws-Request-Id")
            conn.request("POST", f"/2018-06-01/runtime/invocation/{request_id}/response", b"1")
            posted = conn.getresponse()
            posted.read()
            self.assertEqual(posted.status, 202)
            conn.sock.settimeout(0.5)  # the same connection, kept alive
            conn.request("GET", coldstart.NEXT_PATH)
            with self.assertRaises((socket.timeout, TimeoutError)):
                conn.getresponse()
            conn.close()
        self.assertIsNone(server.api.failure)

    def test_a_streaming_error_in_the_trailers_fails_the_invocation(self):
        # lambda_runtime streams with chunked coding and reports a mid-stream failure in the
        # Lambda-Runtime-Function-Error-Type/-Body trailers; http.client cannot send trailers.
        with coldstart.RuntimeApiServer([b"{}"], "f", 5) as server:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n"
                             b"Host: x\r\n\r\n")
                head = sock.recv(65536).decode()
                request_id = head.split("Lambda-Runtime-Aws-Request-Id: ")[1].split("\r\n")[0]
                sock.sendall(
                    f"POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\n"
                    "Host: x\r\nTransfer-Encoding: chunked\r\n"
                    "Lambda-Runtime-Function-Response-Mode: streaming\r\n\r\n"
                    "5\r\npart1\r\n0\r\n"
                    "Lambda-Runtime-Function-Error-Type: Runtime.StreamError\r\n"
                    "Lambda-Runtime-Function-Error-Body: c3RyZWFtIGJyb2tl\r\n\r\n".encode()
                )
                self.assertIn(b" 202 ", sock.recv(65536))
        self.assertIn("invocation 0 error (Runtime.StreamError): part1", server.api.failure)

    def test_an_unknown_request_id_is_refused(self):
        with coldstart.RuntimeApiServer([b"{}"], "f", 5) as server:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("POST", "/2018-06-01/runtime/invocation/nope/response", b"{}")
            reply = conn.getresponse()
            self.assertEqual(reply.status, 400)
            self.assertEqual(json.loads(reply.read())["errorType"], "InvalidRequestID")
            conn.close()

    def test_an_unknown_path_fails_the_run_loudly(self):
        with coldstart.RuntimeApiServer([b"{}"], "f", 5) as server:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("GET", "/2020-01-01/extension/event/next")
            reply = conn.getresponse()
            reply.read()
            conn.close()
            self.assertEqual(reply.status, 404)
        self.assertIn("unexpected Runtime API request", server.api.failure)


class StatisticsTest(unittest.TestCase):
    def test_nearest_rank(self):
        values = list(range(1, 11))
        self.assertEqual(coldstart.nearest_rank(values, 90), 9)
        self.assertEqual(coldstart.nearest_rank(values, 50), 5)
        self.assertEqual(coldstart.nearest_rank([7.0], 90), 7.0)
        self.assertEqual(coldstart.summary([]), {"n": 0, "median": None, "p90": None,
                                                 "min": None, "max": None})

    def test_ratios_are_reported_both_ways(self):
        def run(init):
            return coldstart.Run(init, 1.0, [], 1000, True, None)

        pairs = [(run(10), run(30)), (run(20), run(40)), (run(40), run(80))]
        result = coldstart.summarise_pairs(pairs)
        self.assertEqual(result["init_ratio_of_medians"], 2.0)  # 40 / 20
        self.assertEqual(result["init_ratio_median_of_pairs"], 2.0)  # median(3, 2, 2)
        self.assertEqual(result["pairs_ok"], 3)


class CompareAndCliTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="coldstart-test-")
        self.root = Path(self.dir.name)
        self.fake = FakeFunction(self.root).path

    def tearDown(self):
        self.dir.cleanup()

    def test_compare_alternates_and_gives_ratios_to_hello(self):
        hello = ("hello", self.fake, {}, {})
        slow = ("slow", self.fake, {"a": 1}, {"FAKE_INIT_SLEEP": "0.3"})
        broken = ("broken", self.fake, {}, {"FAKE_MODE": "error"})
        refusing = coldstart.Subject("refusing", self.fake, {}, {"FAKE_MODE": "error"}, accept_errors=True)
        result = coldstart.compare([slow, broken, refusing], hello, rounds=2, log_dir=self.root / "logs")
        json.dumps(result)  # serializable
        self.assertEqual(result["rounds"], 2)
        slow_result = result["functions"]["slow"]
        self.assertEqual(slow_result["init_ms"]["n"], 2)
        self.assertEqual(slow_result["hello_init_ms"]["n"], 2)
        self.assertEqual(slow_result["pairs_ok"], 2)
        self.assertGreater(slow_result["init_ratio_of_medians"], 1)
        self.assertGreater(slow_result["init_ratio_median_of_pairs"], 1)
        self.assertEqual(slow_result["failures"], [])
        broken_result = result["functions"]["broken"]
        self.assertEqual(broken_result["pairs_ok"], 0)
        self.assertIsNone(broken_result["init_ratio_median_of_pairs"])
        self.assertEqual(len(broken_result["failures"]), 2)
        self.assertIn("it broke", broken_result["failures"][0])
        # Told that errors answer, the same function is measured, and its answer kept.
        refusing_result = result["functions"]["refusing"]
        self.assertEqual(refusing_result["pairs_ok"], 2)
        self.assertEqual(refusing_result["failures"], [])
        self.assertIn("it broke", refusing_result["last_response"])

    def test_the_cli_prints_medians_and_p90_as_json(self):
        event = self.root / "event.json"
        event.write_text('{"orderId": "o-1"}')
        out = subprocess.run(
            [sys.executable, str(Path(coldstart.__file__)), "--binary", str(self.fake),
             "--event", str(event), "--env", "ORDERS_TABLE=commerce-orders", "FAKE_MODE=echo",
             "--runs", "3", "--warm", "2", "--log-dir", str(self.root / "logs")],
            capture_output=True, text=True, timeout=120,
        )
        self.assertEqual(out.returncode, 0, out.stderr + out.stdout)
        result = json.loads(out.stdout)
        self.assertEqual((result["runs"], result["ok"]), (3, 3))
        self.assertEqual(result["init_ms"]["n"], 3)
        self.assertLessEqual(result["init_ms"]["median"], result["init_ms"]["p90"])
        self.assertEqual(result["warm_ms"]["n"], 6)
        self.assertGreater(result["peak_rss_kb"]["median"], 0)


if __name__ == "__main__":
    unittest.main()
