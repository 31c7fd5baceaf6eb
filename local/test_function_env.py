#!/usr/bin/env python3
"""Every function starts, in the binary that deploys, with only the environment AWS gives it.

Locally cargo lambda watch runs every function with the union of all functions' variables
(local/declaration.py, all_function_env), so a function that reads a variable its
declaration does not give it works here and fails its init in AWS: `orders-get` and
`orders-list` required IDEMPOTENCY_TABLE, which only `orders-create` is given. This test
starts the binary every function is deployed as (the declaration's lambda.package,
functions/bootstrap) for each function the way Lambda does (local/bench/coldstart.py: the
Lambda Runtime API on loopback, Lambda's variables, `_HANDLER` naming the function) with
exactly the variables Terraform gives it (infra/modules/regional/functions.tf, mirrored by
declaration.deployed_env) and holds that it reaches its first `GET /next`, i.e. its init
succeeded, and that a handler naming no function stops the init with a message.

    .venv/bin/python local/test_function_env.py [-v]     # after `cargo build --workspace --bins`
"""

from __future__ import annotations

import os
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "bench"))
import coldstart  # noqa: E402
from aws_stub import AwsStub  # noqa: E402
from declaration import deployed_env, load  # noqa: E402

DECL = load()
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or HERE.parent / "target")
#: The deployed binary, as `cargo build --workspace --bins` leaves it.
BOOTSTRAP = TARGET / "debug" / DECL["lambda"]["package"]
#: Generous: a debug binary on a busy two-core machine; init itself takes milliseconds.
TIMEOUT_S = 60


def start(function: str, env: dict[str, str], log_dir: Path, endpoint_url: str) -> coldstart.Run:
    # Any event: only the init is under test. The answer to it (often an error for `{}`)
    # is not looked at.
    return coldstart.measure(BOOTSTRAP, {}, env, timeout_s=TIMEOUT_S, log_dir=log_dir, name=function,
                             endpoint_url=endpoint_url)


class FunctionEnvironment(unittest.TestCase):
    """Calls made during init (the payment functions read their provider's key from Secrets
    Manager) reach the benchmarks' AWS stub on loopback (local/bench/aws_stub.py)."""

    @classmethod
    def setUpClass(cls):
        cls.stub = AwsStub().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.stub.__exit__(None, None, None)

    def setUp(self):
        if not BOOTSTRAP.exists():
            self.fail(f"not built (cargo build --workspace --bins): {BOOTSTRAP}")
        self.logs = Path(tempfile.mkdtemp(prefix="function-env-"))

    def test_every_function_starts_with_only_the_variables_aws_gives_it(self):
        failed = {}
        for function in DECL["functions"]:
            run = start(function, deployed_env(DECL, function), self.logs, self.stub.url)
            if run.init_ms is None:
                failed[function] = run.error
        self.assertEqual(failed, {}, "\n\n".join(f"{f}: {why}" for f, why in failed.items()))

    def test_a_function_without_its_table_variable_does_not_start(self):
        # The check can fail: users-get without USERS_TABLE exits before its first /next.
        env = {k: v for k, v in deployed_env(DECL, "users-get").items() if k != "USERS_TABLE"}
        run = start("users-get", env, self.logs, self.stub.url)
        self.assertIsNone(run.init_ms, run)
        self.assertIn("USERS_TABLE", run.error or "")

    def test_a_handler_that_names_no_function_does_not_start(self):
        # Terraform sets each function's handler to its name; anything else stops the init.
        env = dict(deployed_env(DECL, "users-get"), _HANDLER="bootstrap")
        run = start("users-get", env, self.logs, self.stub.url)
        self.assertIsNone(run.init_ms, run)
        self.assertIn('_HANDLER is "bootstrap", not a function of this binary', run.error or "")


if __name__ == "__main__":
    unittest.main()
