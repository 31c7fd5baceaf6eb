#!/usr/bin/env python3
"""local/provider_books.py's rule: which intents disagree with their order's final status.

    .venv/bin/python local/test_provider_books.py [-v]
"""

from __future__ import annotations

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provider_books import disagreement  # noqa: E402


def intent(status: str, amount: int = 1000, refunded: int = 0) -> dict:
    return {"status": status, "amount": amount, "latest_charge": {"amount_refunded": refunded}}


class ProviderBooksTest(unittest.TestCase):
    def test_money_is_held_or_kept_only_for_a_confirmed_order(self):
        agree = [
            ("CONFIRMED", intent("succeeded")),
            ("REJECTED", intent("canceled")),
            ("REJECTED", intent("requires_payment_method")),
            ("REJECTED", intent("requires_confirmation")),
            ("REJECTED", intent("succeeded", refunded=1000)),
            ("CANCELLED", intent("succeeded", refunded=1000)),
        ]
        for status, i in agree:
            self.assertIsNone(disagreement(status, i), (status, i))
        disagree = [
            ("REJECTED", intent("requires_capture")),
            ("REJECTED", intent("succeeded", refunded=400)),
            ("CANCELLED", intent("succeeded")),
            ("CANCELLED", intent("requires_capture")),
            ("CONFIRMED", intent("requires_capture")),
            ("CONFIRMED", intent("canceled")),
            ("CONFIRMED", intent("succeeded", refunded=1000)),
        ]
        for status, i in disagree:
            self.assertIsNotNone(disagreement(status, i), (status, i))


if __name__ == "__main__":
    unittest.main()
