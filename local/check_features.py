#!/usr/bin/env python3
"""Fails when a function package resolves its dependencies' features differently from the
whole workspace (see "Feature unification" in shared/Cargo.toml): then `cargo lambda watch`
recompiles under the tests' feet. Reads `cargo tree`; builds nothing.

    python3 local/check_features.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = "x86_64-unknown-linux-gnu"


def features(*selection: str, edges: str) -> dict[str, set[str]]:
    out = subprocess.run(
        ["cargo", "tree", *selection, "-e", edges, "--target", TARGET, "-f", "{p}|{f}", "--prefix", "none", "--locked"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    found: dict[str, set[str]] = {}
    for line in out.splitlines():
        if "|" not in line:
            continue
        name, _, feats = line.replace(" (*)", "").partition("|")
        name = name.replace(" (proc-macro)", "").strip()
        if "(/" in name:  # a workspace member
            continue
        found.setdefault(name, set()).update(f for f in feats.split(",") if f)
    return found


def main() -> int:
    declaration = json.loads((ROOT / "infra" / "declaration.json").read_text())
    packages = sorted({spec["service"] for spec in declaration["functions"].values()})
    workspace = features("--workspace", edges="normal,build,dev")
    problems = []
    for package in packages:
        for crate, feats in sorted(features("-p", package, edges="normal,build").items()):
            if feats != workspace.get(crate, set()):
                problems.append(f"{package}: {crate} gets {sorted(feats)}, the workspace {sorted(workspace.get(crate, set()))}")
    if problems:
        print("feature sets differ between `cargo run --bin <function>` and the workspace build; "
              "add the missing features under \"Feature unification\" in shared/Cargo.toml:\n  " + "\n  ".join(problems))
        return 1
    print(f"features: {len(packages)} function packages resolve like the workspace")
    return 0


if __name__ == "__main__":
    sys.exit(main())
