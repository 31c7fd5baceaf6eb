#!/usr/bin/env python3
"""Tests of the local gateway and its JWTs (stdlib unittest).

    python local/test_gateway.py [-v]

The run tests start gateway.py as a subprocess against a fake `cargo lambda watch` served
from this process, so no Rust build is needed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gateway  # noqa: E402
import jwt_local  # noqa: E402
from jwt_local import TokenError  # noqa: E402

SECRET = "test-secret"
NOW = 1_800_000_000


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(claims: dict, header: dict | None = None, secret: str = SECRET) -> str:
    """A token with any header and claims, signed with HS256 whatever the header says."""
    header = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


def good_claims(**overrides) -> dict:
    claims = {"sub": "u1", "iss": "local", "aud": "commerce", "iat": NOW, "exp": NOW + 60}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


class JwtTests(unittest.TestCase):
    def reason(self, token, now=NOW, secret=SECRET) -> str:
        with self.assertRaises(TokenError) as ctx:
            jwt_local.verify(token, now=now, secret=secret)
        return ctx.exception.reason

    def test_mint_then_verify(self):
        token = jwt_local.mint("u1", email="u1@example.com", groups=["admin"], now=NOW, secret=SECRET)
        claims = jwt_local.verify(token, now=NOW + 10, secret=SECRET)
        self.assertEqual(claims["sub"], "u1")
        self.assertEqual(claims["email"], "u1@example.com")
        self.assertEqual(claims["cognito:groups"], ["admin"])
        self.assertEqual((claims["iss"], claims["aud"], claims["token_use"]), ("local", "commerce", "id"))
        self.assertEqual((claims["iat"], claims["exp"]), (NOW, NOW + 3600))

    def test_mint_without_optional_claims(self):
        claims = jwt_local.verify(jwt_local.mint("u2", now=NOW, secret=SECRET), now=NOW, secret=SECRET)
        self.assertNotIn("email", claims)
        self.assertNotIn("cognito:groups", claims)

    def test_secret_comes_from_env(self):
        old = os.environ.get("LOCAL_JWT_SECRET")
        try:
            os.environ["LOCAL_JWT_SECRET"] = "from-env"
            token = jwt_local.mint("u1", now=NOW)
            self.assertEqual(jwt_local.verify(token, now=NOW)["sub"], "u1")
            self.assertEqual(self.reason(token, secret="other"), jwt_local.BAD_SIGNATURE)
            del os.environ["LOCAL_JWT_SECRET"]
            self.assertEqual(self.reason(token, secret=None), jwt_local.BAD_SIGNATURE)
            self.assertEqual(jwt_local.verify(jwt_local.mint("u1", now=NOW), now=NOW)["sub"], "u1")
        finally:
            if old is None:
                os.environ.pop("LOCAL_JWT_SECRET", None)
            else:
                os.environ["LOCAL_JWT_SECRET"] = old

    def test_malformed(self):
        good = raw_token(good_claims())
        h, p, s = good.split(".")
        for token in ["", "abc", "a.b", f"{h}.{p}", f"{h}.{p}.{s}.x", f"{h}..{s}",
                      f"{h}.{p}!.{s}", f"{b64url(b'not json')}.{p}.{s}",
                      f"{h}.{b64url(b'[1,2]')}.{s}", f"{h}.{p}.{s}*"]:
            with self.subTest(token=token):
                self.assertEqual(self.reason(token), jwt_local.MALFORMED)

    def test_exp_that_is_not_a_number_is_malformed(self):
        self.assertEqual(self.reason(raw_token(good_claims(exp="soon"))), jwt_local.MALFORMED)
        self.assertEqual(self.reason(raw_token(good_claims(exp=True))), jwt_local.MALFORMED)

    def test_alg_none_and_others_are_refused(self):
        claims = good_claims()
        none_token = f"{b64url(json.dumps({'alg': 'none'}).encode())}.{b64url(json.dumps(claims).encode())}."
        self.assertEqual(self.reason(none_token), jwt_local.UNSUPPORTED_ALG)
        for header in ({"alg": "HS512"}, {"alg": "RS256"}, {"typ": "JWT"}):
            with self.subTest(header=header):
                self.assertEqual(self.reason(raw_token(claims, header)), jwt_local.UNSUPPORTED_ALG)

    def test_bad_signature(self):
        self.assertEqual(self.reason(raw_token(good_claims(), secret="other")), jwt_local.BAD_SIGNATURE)
        h, _, s = raw_token(good_claims()).split(".")
        tampered = f"{h}.{b64url(json.dumps(good_claims(sub='admin')).encode())}.{s}"
        self.assertEqual(self.reason(tampered), jwt_local.BAD_SIGNATURE)

    def test_wrong_issuer(self):
        self.assertEqual(self.reason(raw_token(good_claims(iss="cognito"))), jwt_local.WRONG_ISSUER)
        claims = good_claims()
        del claims["iss"]
        self.assertEqual(self.reason(raw_token(claims)), jwt_local.WRONG_ISSUER)

    def test_audience(self):
        self.assertEqual(self.reason(raw_token(good_claims(aud="other"))), jwt_local.WRONG_AUDIENCE)
        self.assertEqual(self.reason(raw_token(good_claims(aud=["a", "b"]))), jwt_local.WRONG_AUDIENCE)
        claims = good_claims()
        del claims["aud"]
        self.assertEqual(self.reason(raw_token(claims)), jwt_local.WRONG_AUDIENCE)
        ok = jwt_local.verify(raw_token(good_claims(aud=["other", "commerce"])), now=NOW, secret=SECRET)
        self.assertEqual(ok["aud"], ["other", "commerce"])

    def test_expiry(self):
        token = raw_token(good_claims(exp=NOW + 60))
        self.assertEqual(jwt_local.verify(token, now=NOW + 59, secret=SECRET)["sub"], "u1")
        self.assertEqual(self.reason(token, now=NOW + 60), jwt_local.EXPIRED)
        self.assertEqual(self.reason(token, now=NOW + 3600), jwt_local.EXPIRED)

    def test_exp_is_optional(self):
        claims = good_claims()
        del claims["exp"]
        self.assertEqual(jwt_local.verify(raw_token(claims), now=NOW + 10**6, secret=SECRET)["sub"], "u1")

    def test_not_yet_valid(self):
        token = raw_token(good_claims(nbf=NOW + 30))
        self.assertEqual(self.reason(token, now=NOW), jwt_local.NOT_YET_VALID)
        self.assertEqual(jwt_local.verify(token, now=NOW + 30, secret=SECRET)["sub"], "u1")

    def test_missing_sub(self):
        claims = good_claims()
        del claims["sub"]
        self.assertEqual(self.reason(raw_token(claims)), jwt_local.MISSING_SUB)
        self.assertEqual(self.reason(raw_token(good_claims(sub=""))), jwt_local.MISSING_SUB)
        self.assertEqual(self.reason(raw_token(good_claims(sub=42))), jwt_local.MISSING_SUB)


class TokenCliTests(unittest.TestCase):
    def run_cli(self, *args) -> dict:
        env = dict(os.environ, LOCAL_JWT_SECRET=SECRET)
        out = subprocess.run([sys.executable, os.path.join(HERE, "mint_token.py"), *args],
                             capture_output=True, text=True, env=env, check=True, timeout=30)
        return out.stdout.strip()

    def test_user_token(self):
        claims = jwt_local.verify(self.run_cli("01USER"), secret=SECRET)
        self.assertEqual((claims["sub"], claims["email"]), ("01USER", "01USER@example.com"))
        self.assertNotIn("cognito:groups", claims)

    def test_admin_token_with_email_and_ttl(self):
        claims = jwt_local.verify(self.run_cli("a1", "--admin", "--email", "x@y.z", "--ttl", "120"),
                                  secret=SECRET)
        self.assertEqual(claims["cognito:groups"], ["admin"])
        self.assertEqual(claims["email"], "x@y.z")
        self.assertEqual(claims["exp"] - claims["iat"], 120)

    def test_expired_token(self):
        with self.assertRaises(TokenError) as ctx:
            jwt_local.verify(self.run_cli("u1", "--expired"), secret=SECRET)
        self.assertEqual(ctx.exception.reason, jwt_local.EXPIRED)


class FlattenTests(unittest.TestCase):
    def test_every_claim_becomes_a_string(self):
        flat = gateway.flatten_claims({
            "sub": "u1", "exp": 1800000000, "ratio": 1.5, "email_verified": True, "flag": False,
            "cognito:groups": ["admin"], "many": ["a", "b", "c"], "empty": [],
            "address": {"country": "FR"}, "nothing": None,
        })
        self.assertEqual(flat, {
            "sub": "u1", "exp": "1800000000", "ratio": "1.5", "email_verified": "true", "flag": "false",
            "cognito:groups": "[admin]", "many": "[a b c]", "empty": "[]",
            "address": '{"country":"FR"}', "nothing": "null",
        })
        self.assertTrue(all(isinstance(v, str) for v in flat.values()))


def routes_of(*keys):
    routes = [gateway.parse_route(k, f"fn{i}") for i, k in enumerate(keys)]
    routes.sort(key=gateway.Route.specificity)
    return routes


class RouteTests(unittest.TestCase):
    def setUp(self):
        self.routes = routes_of("GET /users/{user_id}", "GET /users/me", "POST /users",
                                "GET /orders/{order_id}/payment", "GET /files/{path+}",
                                "ANY /any/{x}", "DELETE /any/{x}", "GET /")

    def match(self, method, path):
        found = gateway.match_route(self.routes, method, path)
        return None if found is None else (found[0].route_key, found[1])

    def test_param_matches_one_segment_decoded(self):
        self.assertEqual(self.match("GET", "/users/u%201"), ("GET /users/{user_id}", {"user_id": "u 1"}))
        self.assertEqual(self.match("GET", "/orders/o1/payment"),
                         ("GET /orders/{order_id}/payment", {"order_id": "o1"}))
        self.assertEqual(self.match("GET", "/users/a%2Fb"), ("GET /users/{user_id}", {"user_id": "a/b"}))

    def test_literal_wins_over_param(self):
        self.assertEqual(self.match("GET", "/users/me"), ("GET /users/me", {}))

    def test_no_match(self):
        for method, path in [("GET", "/users"), ("GET", "/users/"), ("GET", "/users/a/b"),
                             ("PUT", "/users/u1"), ("GET", "/orders/o1"), ("GET", "/nope"),
                             ("GET", "//users/u1"), ("GET", "/files"), ("GET", "/files/")]:
            with self.subTest(method=method, path=path):
                self.assertIsNone(self.match(method, path))

    def test_greedy(self):
        self.assertEqual(self.match("GET", "/files/a/b%20c"), ("GET /files/{path+}", {"path": "a/b c"}))

    def test_any_and_method_precedence(self):
        self.assertEqual(self.match("PATCH", "/any/1")[0], "ANY /any/{x}")
        self.assertEqual(self.match("DELETE", "/any/1")[0], "DELETE /any/{x}")

    def test_root(self):
        self.assertEqual(self.match("GET", "/"), ("GET /", {}))

    def test_declaration(self):
        routes = gateway.load_routes(gateway.DEFAULT_DECLARATION)
        with open(gateway.DEFAULT_DECLARATION) as f:
            functions = json.load(f)["functions"]
        self.assertEqual({r.route_key: r.function for r in routes},
                         {spec["route"]: name for name, spec in functions.items() if spec.get("route")})

    def test_an_unknown_auth_kind_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "declaration.json")
            with open(path, "w") as f:
                json.dump({"functions": {"x-get": {"route": "GET /x", "auth": "iam"}}}, f)
            with self.assertRaisesRegex(ValueError, "x-get: auth 'iam'"):
                gateway.load_routes(path)

    def test_bad_routes(self):
        for key in ["GET users", "/users", "GET /{a+}/b", "GET /x/{}"]:
            with self.subTest(key=key), self.assertRaises(ValueError):
                gateway.parse_route(key, "f")


class EventAndResponseTests(unittest.TestCase):
    def event(self, **kw):
        args = dict(method="POST", raw_path="/users/u1", raw_query="", header_items=[], body=b"",
                    route=gateway.parse_route("POST /users/{user_id}", "f"),
                    path_params={"user_id": "u1"}, claims={"sub": "u1"}, source_ip="10.0.0.1",
                    request_id="rid=", epoch_ms=1_795_289_400_123)
        args.update(kw)
        return gateway.build_event(**args)

    def test_headers_cookies_query(self):
        ev = self.event(
            raw_query="a=1&b=x%20y&a=2&empty=",
            header_items=[("X-Thing", "1"), ("x-thing", "2"), ("Cookie", "c1=v1; c2=v2"),
                          ("Content-Type", "application/json")],
            body=b'{"k":1}')
        self.assertEqual(ev["headers"]["x-thing"], "1,2")
        self.assertNotIn("cookie", ev["headers"])
        self.assertEqual(ev["cookies"], ["c1=v1", "c2=v2"])
        self.assertEqual(ev["queryStringParameters"], {"a": "1,2", "b": "x y", "empty": ""})
        self.assertEqual(ev["rawQueryString"], "a=1&b=x%20y&a=2&empty=")
        self.assertEqual((ev["body"], ev["isBase64Encoded"]), ('{"k":1}', False))
        self.assertEqual(ev["requestContext"]["time"], "21/Nov/2026:19:30:00 +0000")
        self.assertEqual(ev["requestContext"]["timeEpoch"], 1_795_289_400_123)

    def test_optional_fields_omitted(self):
        ev = self.event(path_params={})
        for key in ("cookies", "queryStringParameters", "pathParameters", "body"):
            self.assertNotIn(key, ev)
        self.assertFalse(ev["isBase64Encoded"])

    def test_binary_body_is_base64(self):
        for ctype, body in [("application/octet-stream", b"abc"), ("application/json", b"\xff\xfe"),
                            ("image/png", b"\x89PNG")]:
            with self.subTest(ctype=ctype):
                ev = self.event(header_items=[("Content-Type", ctype)], body=body)
                self.assertTrue(ev["isBase64Encoded"])
                self.assertEqual(base64.b64decode(ev["body"]), body)
        for ctype in ("text/plain; charset=utf-8", "application/problem+json", "application/xml",
                      "application/x-www-form-urlencoded", None):
            items = [("Content-Type", ctype)] if ctype else []
            self.assertFalse(self.event(header_items=items, body=b"hi")["isBase64Encoded"], ctype)

    def test_response_without_status_code(self):
        reply = gateway.map_response(b'{"hello": "world"}')
        self.assertEqual((reply.status, json.loads(reply.body)), (200, {"hello": "world"}))
        self.assertIn(("content-type", "application/json"), reply.headers)
        self.assertEqual(gateway.map_response(b'"just text"').body, b"just text")

    def test_response_mapping(self):
        reply = gateway.map_response(json.dumps({
            "statusCode": 201, "headers": {"location": "/x", "content-length": "999"},
            "multiValueHeaders": {"x-multi": ["a", "b"]}, "cookies": ["s=1; HttpOnly"],
            "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}).encode())
        self.assertEqual(reply.status, 201)
        self.assertEqual(reply.body, b"\x00\x01")
        self.assertEqual(reply.headers, [("location", "/x"), ("x-multi", "a"), ("x-multi", "b"),
                                         ("set-cookie", "s=1; HttpOnly")])

    def test_malformed_responses_fail(self):
        for data in [b"not json", b'{"statusCode": "abc"}', b'{"statusCode": 200, "body": {"a": 1}}',
                     b'{"statusCode": 200, "headers": {"x": "a\\r\\nb: c"}}']:
            with self.subTest(data=data), self.assertRaises(gateway.FunctionFailed):
                gateway.map_response(data)

    def test_invoke_refused(self):
        with self.assertRaises(gateway.FunctionFailed):
            gateway.invoke("127.0.0.1", free_port(), 5, "f", {})

    def test_request_ids_are_unique_and_shaped_like_aws(self):
        ids = {gateway.new_request_id() for _ in range(1000)}
        self.assertEqual(len(ids), 1000)
        self.assertTrue(all(len(i) == 16 and i.endswith("=") for i in ids))


# ---------------------------------------------------------------------------------------
# Run tests: the gateway as a process, a fake cargo lambda in this process
# ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeCargoLambda(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the stand-in for cargo lambda must not be what resets

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FakeLambdaHandler)
        self.invocations: list[tuple[str, dict]] = []


class FakeLambdaHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        parts = self.path.split("/")  # /2015-03-31/functions/<name>/invocations
        name = parts[3]
        event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.invocations.append((name, event))
        status, answer = 200, None
        if name == "things-get":
            answer = {"statusCode": 200,
                      "headers": {"content-type": "application/json", "x-custom": "yes"},
                      "multiValueHeaders": {"x-multi": ["one", "two"]},
                      "cookies": ["session=abc; HttpOnly"],
                      "body": json.dumps({"thing_id": event["pathParameters"]["thing_id"]}),
                      "isBase64Encoded": False}
        elif name == "things-create":
            answer = {"statusCode": 201, "headers": {"x-request-id": "fn-chosen"},
                      "body": base64.b64encode(b"\x00bin").decode(), "isBase64Encoded": True}
        elif name == "things-plain":
            answer = {"plain": True}
        elif name in ("things-empty", "things-health"):
            answer = {"statusCode": 204}
        elif name == "things-slow":  # holds its caller, as a function doing real work does
            time.sleep(0.5)
            answer = {"statusCode": 200, "body": "slow"}
        elif name == "things-fail":
            status, answer = 500, {"errorType": "InventoryTableUnreachable", "errorMessage": "dial tcp 10.0.0.7: refused"}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


DECLARATION = {
    "tables": {},
    "functions": {
        "things-get": {"route": "GET /things/{thing_id}"},
        "things-create": {"route": "POST /things"},
        "things-plain": {"route": "GET /plain"},
        "things-empty": {"route": "DELETE /things/{thing_id}"},
        "things-fail": {"route": "GET /fail"},
        "things-slow": {"route": "GET /slow"},
        "things-health": {"route": "GET /health", "auth": "none"},
        "no-route": {"description": "a consumer without a route"},
    },
}


class GatewayRunTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = FakeCargoLambda()
        threading.Thread(target=cls.fake.serve_forever, daemon=True).start()
        cls.tmp = tempfile.TemporaryDirectory()
        declaration = os.path.join(cls.tmp.name, "declaration.json")
        with open(declaration, "w") as f:
            json.dump(DECLARATION, f)
        cls.port = free_port()
        # The stand-in function serves any number of invocations at once, unlike cargo lambda
        # watch, whose queue local/lambda_gate.py protects (tested in test_lambda_gate.py):
        # here the gateway's own concurrency is under test, so its gate is opened wide.
        env = dict(os.environ, LOCAL_API_PORT=str(cls.port), CARGO_LAMBDA_PORT=str(cls.fake.server_address[1]),
                   LOCAL_JWT_SECRET=SECRET, LAMBDA_INVOKE_TIMEOUT="10", LOCAL_LAMBDA_INFLIGHT="512")
        cls.stderr = open(os.path.join(cls.tmp.name, "stderr.log"), "w+")
        cls.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "gateway.py"), "--declaration", declaration],
                                    stdout=subprocess.PIPE, stderr=cls.stderr, text=True, env=env)
        ready: list = []
        reader = threading.Thread(target=lambda: ready.append(cls.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(30)
        if not ready or "gateway ready" not in ready[0]:
            cls.proc.kill()
            cls.stderr.seek(0)
            raise RuntimeError(f"gateway did not start: {ready!r}\n{cls.stderr.read()}")
        cls.ready_line = ready[0].strip()
        cls.conn = http.client.HTTPConnection("127.0.0.1", cls.port, timeout=30)

    @classmethod
    def tearDownClass(cls):
        cls.conn.close()
        if cls.proc.poll() is None:
            cls.proc.kill()
            cls.proc.wait()
        cls.proc.stdout.close()
        cls.stderr.close()
        cls.fake.shutdown()
        cls.fake.server_close()
        cls.tmp.cleanup()

    def setUp(self):
        self.fake.invocations.clear()

    def request(self, method, path, token=None, headers=None, body=None):
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.conn.request(method, path, body=body, headers=headers)  # one kept-alive connection
        resp = self.conn.getresponse()
        return resp, resp.read()

    def token(self, **kw):
        return jwt_local.mint("u1", email="u1@example.com", secret=SECRET, **kw)

    def assert_problem(self, resp, body, status, slug):
        self.assertEqual(resp.status, status, body)
        self.assertEqual(resp.getheader("Content-Type"), "application/problem+json")
        doc = json.loads(body)
        self.assertEqual(doc["type"], f"urn:commerce:problem:{slug}")
        self.assertEqual(doc["status"], status)
        self.assertTrue(doc["title"] and doc["detail"])
        self.assertEqual(doc["instance"], resp.getheader("apigw-requestid"))
        self.assertEqual(resp.getheader("x-request-id"), doc["instance"])
        return doc

    def test_ready_line(self):
        self.assertEqual(self.ready_line, f"gateway ready on http://127.0.0.1:{self.port} (7 routes)")

    def test_unauthorized_without_invoking(self):
        expired = jwt_local.mint("u1", ttl_seconds=60, now=time.time() - 120, secret=SECRET)
        cases = {"no token": None, "bad signature": jwt_local.mint("u1", secret="wrong"),
                 "expired": expired, "garbage": "abc"}
        for case, token in cases.items():
            with self.subTest(case=case):
                resp, body = self.request("GET", "/things/t1", token)
                self.assert_problem(resp, body, 401, "unauthorized")
                self.assertEqual(resp.getheader("WWW-Authenticate"), "Bearer")
        self.assertEqual(self.fake.invocations, [])

    def test_a_route_declared_without_auth_is_served_without_a_token_or_claims(self):
        for token in (None, "garbage"):  # an Authorization header is not looked at either
            with self.subTest(token=token):
                self.fake.invocations.clear()
                resp, body = self.request("GET", "/health", token)
                self.assertEqual(resp.status, 204, body)
                [(name, event)] = self.fake.invocations
                self.assertEqual(name, "things-health")
                self.assertNotIn("authorizer", event["requestContext"])  # as in AWS for authorization NONE

    def test_not_found(self):
        for method, path in [("GET", "/nowhere"), ("POST", "/things/t1"), ("PUT", "/things"), ("GET", "/things")]:
            with self.subTest(method=method, path=path):
                resp, body = self.request(method, path, self.token())
                self.assert_problem(resp, body, 404, "not-found")
        self.assertEqual(self.fake.invocations, [])

    def test_event_and_response(self):
        token = self.token(groups=["admin"])
        resp, body = self.request(
            "GET", "/things/t%201?limit=5&tag=a&tag=b", token,
            headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.1", "Cookie": "c1=v1; c2=v2",
                     "User-Agent": "test-agent", "X-Correlation-Id": "corr-1"})
        self.assertEqual(resp.status, 200, body)
        self.assertEqual(json.loads(body), {"thing_id": "t 1"})
        self.assertEqual(resp.getheader("Content-Type"), "application/json")
        self.assertEqual(resp.getheader("x-custom"), "yes")
        self.assertEqual(resp.headers.get_all("x-multi"), ["one", "two"])
        self.assertEqual(resp.headers.get_all("Set-Cookie"), ["session=abc; HttpOnly"])
        self.assertEqual(resp.getheader("Content-Length"), str(len(body)))

        [(name, event)] = self.fake.invocations
        self.assertEqual(name, "things-get")
        self.assertEqual(event["version"], "2.0")
        self.assertEqual(event["routeKey"], "GET /things/{thing_id}")
        self.assertEqual(event["rawPath"], "/things/t%201")
        self.assertEqual(event["rawQueryString"], "limit=5&tag=a&tag=b")
        self.assertEqual(event["queryStringParameters"], {"limit": "5", "tag": "a,b"})
        self.assertEqual(event["pathParameters"], {"thing_id": "t 1"})
        self.assertEqual(event["cookies"], ["c1=v1", "c2=v2"])
        self.assertNotIn("cookie", event["headers"])
        self.assertEqual(event["headers"]["x-correlation-id"], "corr-1")
        self.assertNotIn("body", event)
        self.assertFalse(event["isBase64Encoded"])
        ctx = event["requestContext"]
        claims = ctx["authorizer"]["jwt"]["claims"]
        self.assertTrue(all(isinstance(v, str) for v in claims.values()), claims)
        self.assertEqual(claims["sub"], "u1")
        self.assertEqual(claims["cognito:groups"], "[admin]")
        self.assertEqual(claims["email"], "u1@example.com")
        self.assertRegex(claims["exp"], r"^\d+$")
        self.assertIsNone(ctx["authorizer"]["jwt"]["scopes"])
        self.assertEqual(ctx["requestId"], resp.getheader("apigw-requestid"))
        self.assertEqual(resp.getheader("x-request-id"), ctx["requestId"])
        self.assertEqual(ctx["routeKey"], "GET /things/{thing_id}")
        self.assertEqual(ctx["stage"], "$default")
        self.assertEqual(ctx["http"], {"method": "GET", "path": "/things/t%201", "protocol": "HTTP/1.1",
                                       "sourceIp": "203.0.113.9", "userAgent": "test-agent"})
        self.assertRegex(ctx["time"], r"^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$")
        self.assertAlmostEqual(ctx["timeEpoch"] / 1000, time.time(), delta=60)

        resp2, _ = self.request("GET", "/things/t2", token)
        self.assertNotEqual(resp2.getheader("apigw-requestid"), ctx["requestId"])

    def test_source_ip_without_forwarded_for(self):
        resp, _ = self.request("GET", "/things/t1", self.token())
        self.assertEqual(resp.status, 200)
        self.assertEqual(self.fake.invocations[0][1]["requestContext"]["http"]["sourceIp"], "127.0.0.1")

    def test_body_base64_response_and_function_request_id(self):
        resp, body = self.request("POST", "/things", self.token(),
                                  headers={"Content-Type": "application/json"}, body=b'{"name":"x"}')
        self.assertEqual((resp.status, body), (201, b"\x00bin"))
        self.assertEqual(resp.getheader("x-request-id"), "fn-chosen")
        self.assertTrue(resp.getheader("apigw-requestid"))
        event = self.fake.invocations[0][1]
        self.assertEqual((event["body"], event["isBase64Encoded"]), ('{"name":"x"}', False))
        self.assertEqual(event["headers"]["content-type"], "application/json")

        resp, _ = self.request("POST", "/things", self.token(),
                               headers={"Content-Type": "application/octet-stream"}, body=b"\xff\x00")
        event = self.fake.invocations[1][1]
        self.assertTrue(event["isBase64Encoded"])
        self.assertEqual(base64.b64decode(event["body"]), b"\xff\x00")

    def test_answer_without_status_code_and_204(self):
        resp, body = self.request("GET", "/plain", self.token())
        self.assertEqual((resp.status, json.loads(body)), (200, {"plain": True}))
        self.assertEqual(resp.getheader("Content-Type"), "application/json")
        resp, body = self.request("DELETE", "/things/t1", self.token())
        self.assertEqual((resp.status, body), (204, b""))

    def test_function_error_is_a_bare_500(self):
        resp, body = self.request("GET", "/fail", self.token())
        doc = self.assert_problem(resp, body, 500, "internal-error")
        self.assertNotIn("InventoryTableUnreachable", body.decode())
        self.assertNotIn("10.0.0.7", body.decode())
        self.assertNotIn("errorType", body.decode())
        self.assertEqual(len(self.fake.invocations), 1)

    def test_payload_too_large(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(f"POST /things HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {self.token()}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {10 * 1024 * 1024 + 1}\r\n\r\n".encode())
            s.sendall(b"{" * 1024)
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 413"), head)
        self.assertIn(b"application/problem+json", head)
        self.assertEqual(self.fake.invocations, [])

    def test_256_clients_connecting_at_once_are_all_served(self):
        """A load test opens its connections together; none may be reset or refused."""
        clients, errors, statuses = 256, [], []
        token = self.token()
        start = threading.Barrier(clients)

        def client():
            try:
                start.wait(30)
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                try:
                    for _ in range(2):  # a second request on the kept-alive connection
                        conn.request("GET", "/slow", headers={"Authorization": f"Bearer {token}"})
                        resp = conn.getresponse()
                        resp.read()
                        statuses.append(resp.status)
                finally:
                    conn.close()
            except Exception as exc:  # noqa: BLE001 - every failure is what this test counts
                errors.append(f"{exc.__class__.__name__}: {exc}")

        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [], f"{len(errors)} of {clients} clients failed")
        self.assertEqual(statuses, [200] * (2 * clients))

    def test_zz_sigterm_exits_cleanly(self):
        # Named to run last in this class: it stops the gateway.
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(10), 0)
        self.stderr.seek(0)
        log = self.stderr.read()
        self.assertIn("GET /fail GET /fail -> things-fail 500", log)
        self.assertNotIn("Traceback", log)


if __name__ == "__main__":
    unittest.main()
