#!/usr/bin/env python3
"""Every function starts with only the environment AWS gives it.

Locally cargo lambda watch runs every function with the union of all functions' variables
(local/declaration.py, all_function_env), so a function that reads a variable its
declaration does not give it works here and fails its init in AWS: `orders-get` and
`orders-list` required IDEMPOTENCY_TABLE, which only `orders-create` is given. This test
starts each built function binary the way Lambda does (local/bench/coldstart.py: the Lambda
Runtime API on loopback, Lambda's variables) with exactly the variables Terraform gives it
(infra/modules/regional/functions.tf, mirrored by declaration.aws_function_env) and holds that
it reaches its first `GET /next`, i.e. its init succeeded.

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
from declaration import aws_function_env, load  # noqa: E402

DECL = load()
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or HERE.parent / "target")
BINARIES = TARGET / "debug"
#: Generous: a debug binary on a busy two-core machine; init itself takes milliseconds.
TIMEOUT_S = 60


def start(function: str, env: dict[str, str], log_dir: Path) -> coldstart.Run:
    # Any event: only the init is under test. The answer to it (often an error for `{}`)
    # is not looked at.
    return coldstart.measure(BINARIES / function, {}, env, timeout_s=TIMEOUT_S, log_dir=log_dir)


class FunctionEnvironment(unittest.TestCase):
    def setUp(self):
        missing = [f for f in DECL["functions"] if not (BINARIES / f).exists()]
        if missing:
            self.fail(f"not built (cargo build --workspace --bins): {missing}")
        self.logs = Path(tempfile.mkdtemp(prefix="function-env-"))

    def test_every_function_starts_with_only_the_variables_aws_gives_it(self):
        failed = {}
        for function in DECL["functions"]:
            run = start(function, aws_function_env(DECL, function), self.logs)
            if run.init_ms is None:
                failed[function] = run.error
        self.assertEqual(failed, {}, "\n\n".join(f"{f}: {why}" for f, why in failed.items()))

    def test_a_function_without_its_table_variable_does_not_start(self):
        # The check can fail: users-get without USERS_TABLE exits before its first /next.
        env = {k: v for k, v in aws_function_env(DECL, "users-get").items() if k != "USERS_TABLE"}
        run = start("users-get", env, self.logs)
        self.assertIsNone(run.init_ms, run)
        self.assertIn("USERS_TABLE", run.error or "")


if __name__ == "__main__":
    unittest.main()
