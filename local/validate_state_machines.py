#!/usr/bin/env python3
"""Validates every state machine of the declaration with asl-validator (npm, pinned in
local/node/): each definition rendered as Terraform renders it for AWS and as
provisioning renders it locally.

    .venv/bin/python local/validate_state_machines.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import declaration  # noqa: E402

VALIDATOR = declaration.ROOT / "local" / "node" / "node_modules" / ".bin" / "asl-validator"


def main() -> int:
    decl = declaration.load()
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for machine in decl.get("state_machines", {}):
            for where in ("aws", "local"):
                path = Path(tmp) / f"{machine}.{where}.json"
                path.write_text(declaration.render_state_machine(decl, machine, where), encoding="utf-8")
                result = subprocess.run([str(VALIDATOR), "--json-path", str(path)], capture_output=True, text=True)
                status = "valid" if result.returncode == 0 else "INVALID"
                print(f"{machine} ({where}): {status}")
                if result.returncode != 0:
                    failed += 1
                    print(result.stdout + result.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
