"""Reads infra/declaration.json, the one description of functions, routes and tables that
Terraform and the local stack share, and derives the names both use."""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DECLARATION = ROOT / "infra" / "declaration.json"
#: Local deployments use the same prefix as Terraform's default `name_prefix`.
LOCAL_PREFIX = os.environ.get("COMMERCE_NAME_PREFIX", "commerce")


def load(path: Path = DECLARATION) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def table_name(table: str, prefix: str = LOCAL_PREFIX) -> str:
    """Physical table name: `<prefix>-<table>`, as in infra/tables.tf."""
    return f"{prefix}-{table}"


def queue_name(queue: str, prefix: str = LOCAL_PREFIX) -> str:
    """Physical queue name: `<prefix>-<queue>` (its dead-letter queue adds `-dlq`)."""
    return f"{prefix}-{queue}"


def bus_name(prefix: str = LOCAL_PREFIX) -> str:
    """The bus is named after the deployment: `commerce` by default."""
    return prefix


def function_env(decl: dict, function: str, prefix: str = LOCAL_PREFIX) -> dict[str, str]:
    """Environment one function gets: the variables of the tables it uses, and the bus's
    if it publishes."""
    spec = decl["functions"][function]
    env = {decl["tables"][t]["env"]: table_name(t, prefix) for t in spec.get("tables", {})}
    if spec.get("bus"):
        env[decl["bus"]["env"]] = bus_name(prefix)
    return env


def all_function_env(decl: dict, prefix: str = LOCAL_PREFIX) -> dict[str, str]:
    """Union of every function's environment. cargo lambda watch runs all functions with one
    environment, so locally each function sees every variable; in AWS each sees its own."""
    env: dict[str, str] = {}
    for name in decl["functions"]:
        env.update(function_env(decl, name, prefix))
    return env
