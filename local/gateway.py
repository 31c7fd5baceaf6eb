#!/usr/bin/env python3
"""Local API Gateway: HTTP API (payload format 2.0) with a JWT authorizer, stdlib only.

    python local/gateway.py [--port 3000] [--declaration infra/declaration.json]

Environment:
    LOCAL_API_PORT         port to serve on when --port is not given (default 3000)
    CARGO_LAMBDA_PORT      port of `cargo lambda watch` (default 9000)
    CARGO_LAMBDA_HOST      host of `cargo lambda watch` (default 127.0.0.1)
    LAMBDA_INVOKE_TIMEOUT  seconds to wait for one invocation (default 600: the first
                           invoke of a function may compile it)
    LOCAL_JWT_SECRET       HS256 secret of the authorizer (default local-development-only)

Routes come from infra/declaration.json, the declaration Terraform reads: every function
with a `route` ("METHOD /path/{param}") is invoked for it, through the Lambda invoke API
of `cargo lambda watch`. Every route requires a valid token (API.md, "Locally"), except one
declared `"auth": "none"` (GET /health, for health checkers that have no identity), whose
event then has no `authorizer`, as in AWS.

The one place local differs from AWS: the answers the gateway makes itself (401 from the
authorizer, 404 for no route, 413, 500 when the function fails) are RFC 9457 problem
documents (application/problem+json), the shape the functions produce. In AWS the HTTP
API's own 401/404/413/500 bodies are `{"message": "..."}` (e.g. {"message":"Unauthorized"},
{"message":"Not Found"}, {"message":"Internal Server Error"}) and cannot be customised.
Everything else (routing, the event, the response mapping) follows AWS.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import http.client
import http.server
import json
import os
import secrets
import signal
import sys
import threading
import time
import traceback
import urllib.parse
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jwt_local  # noqa: E402
from lambda_gate import GATE, Busy  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DECLARATION = os.path.join(REPO_ROOT, "infra", "declaration.json")

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API's payload limit
TOO_LARGE = "The request body is larger than 10 MiB."
ACCOUNT_ID = "123456789012"
API_ID = "local"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Hop-by-hop or framing headers: the gateway sets its own.
_NOT_RELAYED = {"content-length", "transfer-encoding", "connection", "keep-alive"}


# ---------------------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    method: str  # upper case, or ANY
    path: str  # as declared, e.g. /users/{user_id}
    function: str  # the Lambda (binary) name
    segments: tuple  # ("lit", "users") | ("param", "user_id") | ("greedy", "proxy")
    public: bool = False  # declared "auth": "none": no authorizer (Terraform: authorization_type NONE)

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def specificity(self) -> tuple:
        """Sort key, most specific first: AWS prefers literal segments over {param}, any
        non-greedy route over {proxy+}, and a method over ANY."""
        rank = {"lit": 0, "param": 1, "greedy": 2}
        return (
            any(kind == "greedy" for kind, _ in self.segments),
            tuple(rank[kind] for kind, _ in self.segments),
            self.method == "ANY",
        )

    def match(self, raw_segments: list[str]) -> dict | None:
        """Path parameters (URL-decoded) when the path matches, else None."""
        params: dict = {}
        for i, (kind, name) in enumerate(self.segments):
            if kind == "greedy":
                rest = raw_segments[i:]
                if not rest or not "".join(rest):
                    return None
                params[name] = urllib.parse.unquote("/".join(rest))
                return params
            if i >= len(raw_segments):
                return None
            value = urllib.parse.unquote(raw_segments[i])
            if kind == "lit":
                if value != name:
                    return None
            elif not value:
                return None
            else:
                params[name] = value
        return params if len(raw_segments) == len(self.segments) else None


def parse_route(route_key: str, function: str) -> Route:
    method, sep, path = route_key.strip().partition(" ")
    path = path.strip()
    if not sep or not path.startswith("/"):
        raise ValueError(f"{function}: route {route_key!r} is not 'METHOD /path'")
    segments = []
    raw = path[1:].split("/") if path != "/" else []
    for i, seg in enumerate(raw):
        if seg.startswith("{") and seg.endswith("}"):
            name = seg[1:-1]
            if name.endswith("+"):
                if i != len(raw) - 1:
                    raise ValueError(f"{function}: greedy {seg} must be the last segment")
                segments.append(("greedy", name[:-1]))
            else:
                segments.append(("param", name))
            if not segments[-1][1]:
                raise ValueError(f"{function}: empty parameter name in {route_key!r}")
        else:
            segments.append(("lit", seg))
    return Route(method.upper(), path, function, tuple(segments))


def load_routes(declaration_path: str) -> list[Route]:
    with open(declaration_path, encoding="utf-8") as f:
        declaration = json.load(f)
    routes = []
    seen: dict = {}
    for name, spec in (declaration.get("functions") or {}).items():
        route_key = (spec or {}).get("route")
        if not route_key:
            continue
        auth = (spec or {}).get("auth", "jwt")
        if auth not in ("jwt", "none"):
            raise ValueError(f"{name}: auth {auth!r} is neither \"jwt\" (the default) nor \"none\"")
        route = dataclasses.replace(parse_route(route_key, name), public=auth == "none")
        if route.route_key in seen:
            raise ValueError(f"route {route.route_key} declared by {seen[route.route_key]} and {name}")
        seen[route.route_key] = name
        routes.append(route)
    routes.sort(key=Route.specificity)
    return routes


def split_path(raw_path: str) -> list[str]:
    return raw_path[1:].split("/") if raw_path.startswith("/") and raw_path != "/" else []


def match_route(routes: list[Route], method: str, raw_path: str) -> tuple[Route, dict] | None:
    """The most specific route for method and path, with its path parameters."""
    segments = split_path(raw_path)
    for route in routes:  # sorted most specific first
        if route.method not in (method.upper(), "ANY"):
            continue
        params = route.match(segments)
        if params is not None:
            return route, params
    return None


# ---------------------------------------------------------------------------------------
# The payload 2.0 event
# ---------------------------------------------------------------------------------------
def flatten_claim(value) -> str:
    """API Gateway HTTP API hands every claim to the function as a string."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + " ".join(flatten_claim(v) for v in value) + "]"
    if value is None:
        return "null"
    return json.dumps(value, separators=(",", ":"))


def flatten_claims(claims: dict) -> dict:
    return {name: flatten_claim(value) for name, value in claims.items()}


def new_request_id() -> str:
    """Shaped as API Gateway's, e.g. `Jd8mKgEXoAMEP8g=` (11 random bytes, base64)."""
    return base64.b64encode(secrets.token_bytes(11)).decode("ascii")


def request_time(epoch_ms: int) -> str:
    t = time.gmtime(epoch_ms / 1000)
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{time.strftime('%H:%M:%S', t)} +0000"


def is_text(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    if not media:
        return True
    return (
        media.startswith("text/")
        or media in ("application/json", "application/xml", "application/x-www-form-urlencoded")
        or media.endswith("+json")
        or media.endswith("+xml")
    )


def build_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    header_items: list[tuple[str, str]],
    body: bytes,
    route: Route,
    path_params: dict,
    claims: dict | None,
    source_ip: str,
    request_id: str,
    epoch_ms: int,
    peer_ip: str | None = None,
    port: int = 443,
) -> dict:
    headers: dict = {}
    cookies: list = []
    for name, value in header_items:
        lname = name.lower()
        if lname == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[lname] = f"{headers[lname]},{value}" if lname in headers else value
    # Headers API Gateway adds: the peer appended to x-forwarded-for, port, proto, trace id.
    peer_ip = peer_ip or source_ip
    sent = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{sent}, {peer_ip}" if sent else peer_ip
    headers["x-forwarded-port"] = str(port)
    headers["x-forwarded-proto"] = "http"
    headers.setdefault(
        "x-amzn-trace-id", f"Root=1-{epoch_ms // 1000:08x}-{secrets.token_hex(12)}"
    )
    content_type = headers.get("content-type")
    user_agent = headers.get("user-agent", "")

    event: dict = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    query: dict = {}
    for key, value in urllib.parse.parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        # A route without an authorizer has no `authorizer` in its context, as in AWS.
        **({"authorizer": {"jwt": {"claims": flatten_claims(claims), "scopes": None}}} if claims is not None else {}),
        "domainName": "127.0.0.1",
        "domainPrefix": "127",
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": user_agent,
        },
        "requestId": request_id,
        "routeKey": route.route_key,
        "stage": "$default",
        "time": request_time(epoch_ms),
        "timeEpoch": epoch_ms,
    }
    if path_params:
        event["pathParameters"] = path_params
    if body:
        text = None
        if is_text(content_type):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is not None:
            event["body"] = text
            event["isBase64Encoded"] = False
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    return event


# ---------------------------------------------------------------------------------------
# Invoking the function and mapping its answer
# ---------------------------------------------------------------------------------------
class FunctionFailed(Exception):
    """The invocation failed (function error, bad response, timeout, refused): a 500."""


@dataclass
class Reply:
    status: int
    headers: list  # [(name, value)]
    body: bytes


def invoke(host: str, port: int, timeout: float, function: str, event: dict) -> bytes:
    try:
        with GATE.entry(function, timeout) as left:
            return _invoke(host, port, left, function, event)
    except Busy as exc:
        raise FunctionFailed(f"invoke failed: {exc}") from exc


def _invoke(host: str, port: int, timeout: float, function: str, event: dict) -> bytes:
    payload = json.dumps(event).encode("utf-8")
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(
            "POST",
            f"/2015-03-31/functions/{urllib.parse.quote(function)}/invocations",
            body=payload,
            headers={"Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        data = resp.read()
        function_error = resp.getheader("X-Amz-Function-Error")
    except (OSError, http.client.HTTPException) as exc:
        raise FunctionFailed(f"invoke failed: {exc.__class__.__name__}: {exc}") from exc
    finally:
        conn.close()
    if resp.status != 200 or function_error:
        raise FunctionFailed(f"function error (HTTP {resp.status}): {data[:500]!r}")
    return data


def map_response(data: bytes) -> Reply:
    """The function's payload 2.0 response as an HTTP response, as API Gateway maps it."""
    try:
        answer = json.loads(data)
    except ValueError as exc:
        raise FunctionFailed(f"response is not JSON: {data[:200]!r}") from exc
    if not isinstance(answer, dict) or "statusCode" not in answer:
        # Payload 2.0: valid JSON without statusCode is a 200 with that JSON as the body
        # (a JSON string is the body itself).
        body = answer if isinstance(answer, str) else json.dumps(answer)
        return Reply(200, [("content-type", "application/json")], body.encode("utf-8"))

    status = answer.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise FunctionFailed(f"malformed response: statusCode {status!r}")
    headers: list = []
    for name, value in (answer.get("headers") or {}).items():
        if name.lower() not in _NOT_RELAYED and value is not None:
            headers.append((name, _header_value(value)))
    for name, values in (answer.get("multiValueHeaders") or {}).items():
        if name.lower() in _NOT_RELAYED:
            continue
        for value in values if isinstance(values, list) else [values]:
            if value is not None:
                headers.append((name, _header_value(value)))
    for cookie in answer.get("cookies") or []:
        headers.append(("set-cookie", str(cookie)))

    body = answer.get("body")
    if body is None:
        raw = b""
    elif not isinstance(body, str):
        raise FunctionFailed(f"malformed response: body is a {type(body).__name__}, not a string")
    elif answer.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except ValueError as exc:
            raise FunctionFailed("malformed response: body is not base64") from exc
    else:
        raw = body.encode("utf-8")
    return Reply(status, headers, raw)


def _header_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if "\r" in text or "\n" in text:
        raise FunctionFailed("malformed response: header value contains a line break")
    return text


_PROBLEMS = {
    401: ("unauthorized", "Unauthorized"),
    404: ("not-found", "Not Found"),
    400: ("bad-request", "Bad Request"),
    413: ("payload-too-large", "Payload Too Large"),
    500: ("internal-error", "Internal Server Error"),
}


def problem(status: int, detail: str, request_id: str, extra_headers: list | None = None) -> Reply:
    slug, title = _PROBLEMS[status]
    doc = {
        "type": f"urn:commerce:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request_id,
    }
    headers = [("content-type", "application/problem+json")] + (extra_headers or [])
    return Reply(status, headers, json.dumps(doc).encode("utf-8"))


# ---------------------------------------------------------------------------------------
# The HTTP server
# ---------------------------------------------------------------------------------------
class BodyTooLarge(Exception):
    pass


class GatewayServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: with more clients connecting at once than
    # the accept loop drains, the kernel's accept queue overflows and clients see resets
    # (32 concurrent clients were enough). API Gateway takes thousands of connections; the
    # kernel caps this at net.core.somaxconn (4096 on current Linux).
    request_queue_size = 1024

    def __init__(self, address, routes: list[Route], lambda_host: str, lambda_port: int,
                 invoke_timeout: float):
        super().__init__(address, GatewayHandler)
        self.routes = routes
        self.lambda_host = lambda_host
        self.lambda_port = lambda_port
        self.invoke_timeout = invoke_timeout


class GatewayHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "local-apigw"
    server: GatewayServer

    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code="-", size="-"):
        pass  # _finish writes the one line per request

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's name
        sys.stderr.write(f"gateway: {format % args}\n")

    def handle_expect_100(self):
        # Refuse an oversized body before the client sends it.
        if self._declared_length() > MAX_BODY_BYTES:
            started = time.monotonic()
            request_id = new_request_id()
            self.close_connection = True
            self._finish(problem(413, TOO_LARGE, request_id), request_id,
                         self.path.partition("?")[0], "-", started)
            return False
        return super().handle_expect_100()

    def _declared_length(self) -> int:
        try:
            return int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return 0

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    raise BodyTooLarge()
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self._declared_length()
        if length > MAX_BODY_BYTES:
            raise BodyTooLarge()
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self):
        started = time.monotonic()
        epoch_ms = int(time.time() * 1000)
        request_id = new_request_id()
        target = self.path
        if "://" in target.split("?", 1)[0]:  # absolute-form request target
            parts = urllib.parse.urlsplit(target)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        raw_path, _, raw_query = target.partition("?")
        label = "-"
        try:
            try:
                body = self._read_body()
            except BodyTooLarge:
                self.close_connection = True
                reply = problem(413, TOO_LARGE, request_id)
            except ValueError:
                self.close_connection = True
                reply = problem(400, "The request body is not valid chunked encoding.", request_id)
            else:
                reply, label = self._dispatch(raw_path, raw_query, body, request_id, epoch_ms)
        except Exception:  # a bug here must still answer, without detail
            traceback.print_exc(file=sys.stderr)
            reply = problem(500, "The request could not be processed.", request_id)
        self._finish(reply, request_id, raw_path, label, started)

    def _finish(self, reply: Reply, request_id: str, raw_path: str, label: str, started: float):
        names = {name.lower() for name, _ in reply.headers}
        reply.headers.append(("apigw-requestid", request_id))
        if "x-request-id" not in names:
            reply.headers.append(("x-request-id", request_id))
        self._send(reply)
        ms = (time.monotonic() - started) * 1000
        sys.stderr.write(f"{self.command} {raw_path} {label} {reply.status} {ms:.0f}ms\n")
        sys.stderr.flush()

    def _dispatch(self, raw_path, raw_query, body, request_id, epoch_ms) -> tuple[Reply, str]:
        found = match_route(self.server.routes, self.command, raw_path)
        if found is None:
            return problem(404, f"No route for {self.command} {raw_path}.", request_id), "-"
        route, path_params = found
        label = f"{route.route_key} -> {route.function}"

        claims = None
        if not route.public:
            claims, why = self._authorize()
            if claims is None:
                return problem(401, why, request_id, [("www-authenticate", "Bearer")]), f"{label} (authorizer)"

        peer = self.client_address[0]
        forwarded = (self.headers.get("X-Forwarded-For") or "").split(",")[0].strip()
        event = build_event(
            method=self.command,
            raw_path=raw_path,
            raw_query=raw_query,
            header_items=list(self.headers.items()),
            body=body,
            route=route,
            path_params=path_params,
            claims=claims,
            source_ip=forwarded or peer,
            peer_ip=peer,
            port=self.server.server_address[1],
            request_id=request_id,
            epoch_ms=epoch_ms,
        )
        try:
            data = invoke(self.server.lambda_host, self.server.lambda_port,
                          self.server.invoke_timeout, route.function, event)
            return map_response(data), label
        except FunctionFailed as exc:
            sys.stderr.write(f"gateway: {route.function} [{request_id}]: {exc}\n")
            return problem(500, "The request could not be processed.", request_id), label

    def _authorize(self) -> tuple[dict | None, str]:
        header = self.headers.get("Authorization")
        if not header or not header.strip():
            return None, "A bearer token is required."
        token = header.strip()
        scheme, _, rest = token.partition(" ")
        if scheme.lower() == "bearer":
            token = rest.strip()
        try:
            return jwt_local.verify(token), ""
        except jwt_local.TokenError as exc:
            return None, f"The bearer token was refused ({exc.reason})."

    def _send(self, reply: Reply):
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        bodyless = reply.status in (204, 304) or 100 <= reply.status < 200
        if not bodyless:
            self.send_header("Content-Length", str(len(reply.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not bodyless and self.command != "HEAD":
            self.wfile.write(reply.body)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


# ---------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_API_PORT") or 3000))
    parser.add_argument("--declaration", default=DEFAULT_DECLARATION,
                        help="the declaration to read routes from (default infra/declaration.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    routes = load_routes(args.declaration)
    server = GatewayServer(
        ("127.0.0.1", args.port),
        routes,
        os.environ.get("CARGO_LAMBDA_HOST") or "127.0.0.1",
        int(os.environ.get("CARGO_LAMBDA_PORT") or 9000),
        float(os.environ.get("LAMBDA_INVOKE_TIMEOUT") or 600),
    )

    def _on_signal(signum, _frame):
        # shutdown() waits for serve_forever() to return: call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    port = server.server_address[1]
    print(f"gateway ready on http://127.0.0.1:{port} ({len(routes)} routes)", flush=True)
    for route in routes:
        sys.stderr.write(f"  {route.route_key} -> {route.function}\n")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
