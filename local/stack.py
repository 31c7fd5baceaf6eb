#!/usr/bin/env python3
"""Starts the local stack, and stops every process it started.

    .venv/bin/python local/stack.py dev              # serve until Ctrl-C
    .venv/bin/python local/stack.py exec -- CMD ...  # start, run CMD, stop; exit with CMD's code

In order: the emulator (moto, local/emulator.py) on 127.0.0.1:5000, a second emulator process
for DynamoDB and DynamoDB Streams on 127.0.0.1:5001 (every client reaches it through the SDKs'
AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_DYNAMODB_STREAMS, so no code path differs from
AWS; one Python process runs one thread at a time, and DynamoDB was half of the emulator's
work under load), provisioning of the
declaration (local/provision.py), `cargo lambda watch` on 127.0.0.1:9000, and the API
gateway (local/gateway.py) on 127.0.0.1:3000; beside them the payment provider (localstripe with
our corrections, local/payment_provider.py) on the port its local address in the declaration
names (127.0.0.1:8420). Each runs in its own process group and is
stopped (TERM, then KILL) on exit, Ctrl-C, SIGTERM or any failure. Logs go to .local/logs/.

Ports: MOTO_PORT, LOCAL_DYNAMODB_PORT, CARGO_LAMBDA_PORT, LOCAL_API_PORT change the defaults;
LOCAL_LAMBDA_CONCURRENCY (default 4) is how many processes of one function may run at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import provision  # noqa: E402
from crashes import function_crashes  # noqa: E402

STATE = ROOT / ".local"
LOGS = STATE / "logs"
PY = sys.executable

MOTO_PORT = int(os.environ.get("MOTO_PORT", "5000"))
DYNAMODB_PORT = int(os.environ.get("LOCAL_DYNAMODB_PORT", str(MOTO_PORT + 1)))
LAMBDA_PORT = int(os.environ.get("CARGO_LAMBDA_PORT", "9000"))
API_PORT = int(os.environ.get("LOCAL_API_PORT", "3000"))
LAMBDA_CONCURRENCY = int(os.environ.get("LOCAL_LAMBDA_CONCURRENCY", "4"))
#: The payment provider's port: the one its local address in the declaration names.
PROVIDER_PORT = int(
    provision.declaration.load()["secrets"]["payment-provider"]["settings"]["PAYMENT_PROVIDER_URL"]["local"].rsplit(":", 1)[1]
)


def stack_env() -> dict[str, str]:
    """What every process of the stack, and every test, sees: the standard AWS SDK settings
    pointed at the emulator, so no code path differs from AWS."""
    env = dict(os.environ)
    # `cargo lambda` is the cargo-lambda binary installed next to this Python (.venv/bin).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(
        {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{MOTO_PORT}",
            "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{DYNAMODB_PORT}",
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": f"http://127.0.0.1:{DYNAMODB_PORT}",
            "AWS_REGION": provision.REGION,
            "AWS_DEFAULT_REGION": provision.REGION,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "MOTO_PORT": str(MOTO_PORT),
            "CARGO_LAMBDA_PORT": str(LAMBDA_PORT),
            "LOCAL_API_PORT": str(API_PORT),
            "LOCAL_API_URL": f"http://127.0.0.1:{API_PORT}",
            # Fault injection for the saga's idempotency tests (local/emulation/faults.py).
            "LOCAL_FAULTS_FILE": str(STATE / "faults.json"),
            # ... and the payment provider's (local/payment_provider.py).
            "LOCAL_PROVIDER_FAULTS_DIR": str(STATE / "provider-faults"),
            "LOCAL_SDK_CALLS_DIR": str(STATE / "sdk-calls"),
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    env.setdefault("LOCAL_JWT_SECRET", "local-development-only")
    # RUST_LOG would also set cargo lambda's own log level; functions read this one.
    env.setdefault("AWS_LAMBDA_LOG_LEVEL", "info")
    return env


class Stack:
    def __init__(self, watch_changes: bool):
        self.watch_changes = watch_changes
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        LOGS.mkdir(parents=True, exist_ok=True)
        log = open(LOGS / f"{name}.log", "wb")  # fresh per run: readiness is read from it
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopping it stops its children
        )
        self.procs.append((name, proc))
        return proc

    def wait_until(self, name: str, proc: subprocess.Popen, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {LOGS / (name + '.log')}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{name} not ready after {timeout:.0f}s; see {LOGS / (name + '.log')}")

    def start(self) -> dict[str, str]:
        for port in (MOTO_PORT, DYNAMODB_PORT, LAMBDA_PORT, API_PORT, PROVIDER_PORT):
            if port_open(port):
                raise RuntimeError(f"port {port} is in use: is another stack running? (stop it, or set the *_PORT variables)")
        env = stack_env()
        Path(env["LOCAL_FAULTS_FILE"]).unlink(missing_ok=True)  # no faults left from a previous run
        faults = Path(env["LOCAL_PROVIDER_FAULTS_DIR"])
        faults.mkdir(parents=True, exist_ok=True)
        for rules in faults.glob("*.json"):
            rules.unlink()
        for calls in Path(env["LOCAL_SDK_CALLS_DIR"]).glob("*.jsonl"):
            calls.unlink()  # each run's calls are checked on their own (local/sdk_calls.py)
        t0 = time.monotonic()
        emu = self.spawn("emulator", [PY, str(HERE / "emulator.py"), "--port", str(MOTO_PORT)], env)
        ddb = self.spawn("emulator-dynamodb", [PY, str(HERE / "emulator.py"), "--port", str(DYNAMODB_PORT)], env)
        provider = self.spawn("payment-provider", [PY, str(HERE / "payment_provider.py"), "--port", str(PROVIDER_PORT)], env)
        self.wait_until("emulator", emu, lambda: port_open(MOTO_PORT), 60)
        self.wait_until("emulator-dynamodb", ddb, lambda: port_open(DYNAMODB_PORT), 60)
        self.wait_until("payment-provider", provider, lambda: port_open(PROVIDER_PORT), 60)

        env_file = STATE / "functions.env"
        created = provision.provision(env["AWS_ENDPOINT_URL"], env_file=env_file,
                                      dynamodb_endpoint=env["AWS_ENDPOINT_URL_DYNAMODB"])
        print(f"[stack] provisioned {len(created['tables'])} tables, {len(created['functions'])} functions, "
              f"{len(created['mappings'])} event-source mappings", flush=True)
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value

        watch = [
            "cargo", "lambda", "watch",
            "--invoke-address", "127.0.0.1", "--invoke-port", str(LAMBDA_PORT),
            "--env-file", str(env_file),
            "--env-var", f"AWS_LAMBDA_LOG_LEVEL={env['AWS_LAMBDA_LOG_LEVEL']}",
            # Up to this many processes of one function at once, started as invocations queue
            # up, as Lambda scales a function out (cargo lambda's limit is one for every
            # function; the declaration sets no reserved concurrency below it).
            "--concurrency", str(LAMBDA_CONCURRENCY),
            # No `--timeout`: cargo lambda (1.9.2, lib.rs:222-241) puts it as a TimeoutLayer over
            # every route, the runtime API's long-polling GET .../invocation/next included. A
            # function idle for that long got a bare 408 without lambda-runtime-aws-request-id,
            # lambda_runtime 1.5 panicked on it (types.rs:176), and cargo lambda never starts a
            # dead process again (watcher.rs:168-186), so its invocations queued until they
            # timed out too. In Lambda, /next waits as long as it takes. The callers (emulator,
            # gateway, pollers) bound each invocation themselves.
        ]
        if not self.watch_changes:
            watch.append("--ignore-changes")
        lam = self.spawn("cargo-lambda", watch, env)
        self.wait_until("cargo-lambda", lam, lambda: lambda_ready(LAMBDA_PORT), 300)

        # Lambda's event-source mappings: SQS, Kinesis and DynamoDB-stream pollers.
        pollers = self.spawn("pollers", [PY, str(HERE / "pollers.py")], env)
        self.wait_until("pollers", pollers, lambda: log_says("pollers", "pollers ready"), 60)

        gw = self.spawn("gateway", [PY, str(HERE / "gateway.py"), "--port", str(API_PORT)], env)
        self.wait_until("gateway", gw, lambda: port_open(API_PORT), 30)
        print(f"[stack] ready in {time.monotonic() - t0:.1f}s: API http://127.0.0.1:{API_PORT}, "
              f"emulator http://127.0.0.1:{MOTO_PORT} (DynamoDB :{DYNAMODB_PORT}), functions http://127.0.0.1:{LAMBDA_PORT}; logs in {LOGS}",
              flush=True)
        return env

    def stop(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + 10
        for name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # whatever is left of the group (a function process cargo lambda started)
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        self.procs.clear()
        print("[stack] stopped", flush=True)


def log_says(name: str, text: str) -> bool:
    log = LOGS / f"{name}.log"
    return log.exists() and text in log.read_text(errors="replace")


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def lambda_ready(port: int) -> bool:
    """cargo lambda watch has no health endpoint; an unknown function answers 404 once it
    serves, and starts nothing."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/2015-03-31/functions/__probe__/invocations", data=b"{}", method="POST"
    )
    try:
        urllib.request.urlopen(req, timeout=2)
        return True
    except urllib.error.HTTPError as e:
        return e.code == 404
    except OSError:
        return False


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("dev", "exec"):
        print(__doc__, file=sys.stderr)
        return 2
    mode = argv[0]
    command = argv[2:] if len(argv) > 1 and argv[1] == "--" else argv[1:]
    if mode == "exec" and not command:
        print("stack.py exec: give a command after --", file=sys.stderr)
        return 2

    stack = Stack(watch_changes=(mode == "dev"))

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    # Installed explicitly: a process started in the background by a non-interactive shell
    # inherits SIGINT as ignored, and Ctrl-C must still stop everything.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        env = stack.start()
        if mode == "dev":
            print("[stack] serving; Ctrl-C stops everything", flush=True)
            while all(p.poll() is None for _, p in stack.procs):
                time.sleep(1)
            dead = [n for n, p in stack.procs if p.poll() is not None]
            print(f"[stack] {', '.join(dead)} exited; stopping", file=sys.stderr)
            code = 1
        else:
            # Its own process group, so that everything it started (locust under run.py)
            # goes with the stack, not after it.
            child = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
            try:
                code = child.wait()
            except KeyboardInterrupt:
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(child.pid, sig)
                        child.wait(timeout=10)
                        break
                    except ProcessLookupError:
                        break
                    except subprocess.TimeoutExpired:
                        continue
                raise
            crashes = function_crashes()
            if crashes:
                print(f"[stack] {len(crashes)} function process crash(es) while it ran "
                      f"({LOGS / 'cargo-lambda.log'}):\n  " + "\n  ".join(crashes[:20]), file=sys.stderr)
                code = code or 1
    except KeyboardInterrupt:
        code = 0 if mode == "dev" else 130  # Ctrl-C is how `make dev` is meant to end
    except Exception as e:  # any failure to start: report, stop what runs, fail
        print(f"[stack] {e}", file=sys.stderr)
        for name in ("emulator", "emulator-dynamodb", "cargo-lambda", "pollers", "gateway"):
            log = LOGS / f"{name}.log"
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-15:]
                print(f"--- last lines of {log} ---\n" + "\n".join(tail), file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
