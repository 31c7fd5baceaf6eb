#!/usr/bin/env python3
"""Tests for infra/lint_iam.py: the lint fails on the policies IAM would not honour, and only
an allowlist entry with a reason, that still matches something, excuses a finding.

    .venv-tools/bin/python infra/test_lint_iam.py [-v]
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lint_iam  # noqa: E402

ARN = "arn:aws:states:eu-west-1:123456789012"


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions: list[str], resources: list[str]) -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


class Lint(unittest.TestCase):
    def lint(self, policies: dict[str, dict], allowlist: list | None = None) -> tuple[int, str]:
        with tempfile.TemporaryDirectory() as d:
            for name, doc in policies.items():
                Path(d, name).write_text(json.dumps(doc))
            argv = [d]
            if allowlist is not None:
                Path(d, "allow.lst").write_text(json.dumps(allowlist))
                argv += ["--allowlist", str(Path(d, "allow.lst"))]
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                code = lint_iam.main(argv)
            return code, out.getvalue()

    def test_task_token_answers_on_state_machine_arns_are_a_finding(self):
        # What the fraud scorer's role said before: denied in AWS, every order timed out.
        code, out = self.lint({"function-fraud-score.json": policy(allow(
            ["states:SendTaskSuccess", "states:SendTaskFailure"],
            [f"{ARN}:stateMachine:commerce-place-order", f"{ARN}:execution:commerce-place-order:*"]))})
        self.assertEqual(code, 1, out)
        self.assertIn("RESOURCE_MISMATCH states:SendTaskSuccess", out)
        self.assertIn("1 role policies, 2 findings", out)

    def test_the_same_answers_on_star_and_precise_table_actions_pass(self):
        code, out = self.lint({"function-ok.json": policy(
            allow(["states:SendTaskSuccess", "states:SendTaskFailure"], ["*"]),
            allow(["dynamodb:GetItem", "dynamodb:PutItem"], ["arn:aws:dynamodb:eu-west-1:123456789012:table/commerce-orders"]),
        )})
        self.assertEqual(code, 0, out)
        self.assertIn("1 role policies, 0 findings", out)

    def test_an_unknown_action_and_a_needless_star_are_findings(self):
        code, out = self.lint({"function-typo.json": policy(
            allow(["dynamodb:PutItems"], ["arn:aws:dynamodb:eu-west-1:123456789012:table/commerce-orders"]),
            allow(["dynamodb:GetItem"], ["*"]),
        )})
        self.assertEqual(code, 1, out)
        self.assertIn("UNKNOWN_ACTION dynamodb:PutItems", out)
        self.assertIn("RESOURCE_STAR dynamodb:GetItem", out)

    def test_an_allowlisted_finding_passes_but_a_stale_entry_fails(self):
        star = {"function-x.json": policy(allow(["dynamodb:GetItem"], ["*"]))}
        entry = {"file": "function-x.json", "issue": "RESOURCE_STAR", "action": "dynamodb:GetItem",
                 "resource": "*", "reason": "test"}
        code, out = self.lint(star, [entry])
        self.assertEqual(code, 0, out)
        self.assertIn("0 findings (1 allowlisted)", out)
        clean = {"function-x.json": policy(allow(["dynamodb:GetItem"], ["arn:aws:dynamodb:eu-west-1:123456789012:table/t"]))}
        code, out = self.lint(clean, [entry])
        self.assertEqual(code, 1, out)
        self.assertIn("matched nothing", out)

    def test_an_entry_without_a_reason_is_refused(self):
        with self.assertRaises(SystemExit):
            self.lint({"function-x.json": policy(allow(["dynamodb:GetItem"], ["*"]))}, [{"issue": "RESOURCE_STAR"}])

    def test_nothing_to_lint_fails(self):
        code, out = self.lint({})
        self.assertEqual(code, 1, out)
        self.assertIn("nothing was linted", out)


if __name__ == "__main__":
    unittest.main()
