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


def queue_url(queue: str, prefix: str = LOCAL_PREFIX, region: str = "us-east-1", account: str = "123456789012") -> str:
    """A queue's URL as SQS gives it. The SDK sends it in the request's body to whatever
    endpoint it is configured with; the emulator finds the queue by the URL's last part."""
    return f"https://sqs.{region}.amazonaws.com/{account}/{queue_name(queue, prefix)}"


def bus_name(prefix: str = LOCAL_PREFIX) -> str:
    """The bus is named after the deployment: `commerce` by default."""
    return prefix


def secret_name(secret: str, prefix: str = LOCAL_PREFIX) -> str:
    """Physical secret name: `<prefix>-<secret>`, as in infra/modules/regional/secrets.tf."""
    return f"{prefix}-{secret}"


def function_env(decl: dict, function: str, prefix: str = LOCAL_PREFIX, where: str = "local") -> dict[str, str]:
    """Environment one function gets: the variables of the tables it uses, the bus's if it
    publishes, its streams and state machines, and for each secret it reads the secret's
    name and the settings that go with it (for `where`: "local" or "aws")."""
    spec = decl["functions"][function]
    env = {decl["tables"][t]["env"]: table_name(t, prefix) for t in spec.get("tables", {})}
    if spec.get("bus"):
        env[decl["bus"]["env"]] = bus_name(prefix)
    for stream in spec.get("kinesis_put", []) + spec.get("kinesis", []):
        env[decl["streams"][stream]["env"]] = stream_name(stream, prefix)
    # A queue that names a variable is one its function writes to itself (the scorer parks
    # records it can never score in its on-failure queue): the variable holds its URL.
    for source in spec.get("event_sources", []):
        queue = source.get("on_failure_queue")
        if queue and decl["queues"][queue].get("env"):
            env[decl["queues"][queue]["env"]] = queue_url(queue, prefix)
    for machine in spec.get("state_machines", {}):
        env[decl["state_machines"][machine]["env"]] = state_machine_arn(machine, prefix)
    for secret in spec.get("secrets", {}):
        env[decl["secrets"][secret]["env"]] = secret_name(secret, prefix)
        for name, values in decl["secrets"][secret].get("settings", {}).items():
            env[name] = values[where]
    return env


def function_kind(spec: dict) -> str:
    """What invokes a declared function: `route` (API Gateway), `consumer` (a queue or a
    stream), or `step` (the state machines)."""
    if spec.get("route"):
        return "route"
    if spec.get("event_sources"):
        return "consumer"
    return "step"


def aws_function_env(decl: dict, function: str, prefix: str = LOCAL_PREFIX) -> dict[str, str]:
    """What Terraform puts in a deployed function's environment (functions.tf,
    `environment`): its declared variables and the log level. Lambda adds its own
    `AWS_*` variables on top."""
    return dict(function_env(decl, function, prefix, where="aws"), AWS_LAMBDA_LOG_LEVEL="info")


def deployed_env(decl: dict, function: str, prefix: str = LOCAL_PREFIX) -> dict[str, str]:
    """What a deployed function's process gets that is ours to choose: Terraform's
    variables, and `_HANDLER`, which Lambda sets from the function's handler (its name,
    functions.tf) and by which the one deployed binary (the declaration's lambda.package)
    chooses the function to run."""
    return dict(aws_function_env(decl, function, prefix), _HANDLER=function)


def stream_name(stream: str, prefix: str = LOCAL_PREFIX) -> str:
    """Physical Kinesis stream name: `<prefix>-<stream>`."""
    return f"{prefix}-{stream}"


def state_machine_name(machine: str, prefix: str = LOCAL_PREFIX) -> str:
    """Physical state machine name: `<prefix>-<machine>`."""
    return f"{prefix}-{machine}"


def state_machine_arn(machine: str, prefix: str = LOCAL_PREFIX, region: str = "us-east-1", account: str = "123456789012") -> str:
    return f"arn:aws:states:{region}:{account}:stateMachine:{state_machine_name(machine, prefix)}"


def function_arn(function: str, region: str = "us-east-1", account: str = "123456789012") -> str:
    """Locally a function's record is named after its binary (cargo lambda serves it so)."""
    return f"arn:aws:lambda:{region}:{account}:function:{function}"


def render_state_machine(decl: dict, machine: str, where: str = "local") -> str:
    """The definition with its template variables filled in, as Terraform's templatefile
    does: `${<function>_arn}` (function name with `_` for `-`) and the machine's
    parameters for `where` ("local" or "aws"; `value` where both share one), as JSON. Only `${name}` is replaced, so JSONPath's
    `$$.Task.Token` stays as written."""
    import re

    spec = decl["state_machines"][machine]
    values = {f.replace("-", "_") + "_arn": function_arn(f) for f in spec["functions"]}
    values.update(
        {k: json.dumps(v[where] if where in v else v["value"]) for k, v in spec.get("parameters", {}).items()}
    )
    text = (ROOT / "infra" / "state-machines" / spec["definition"]).read_text(encoding="utf-8")
    missing = sorted(set(re.findall(r"\$\{(\w+)\}", text)) - set(values))
    if missing:
        raise ValueError(f"{machine}: template variables without a value: {missing}")
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)


def all_function_env(decl: dict, prefix: str = LOCAL_PREFIX) -> dict[str, str]:
    """Union of every function's environment. cargo lambda watch runs all functions with one
    environment, so locally each function sees every variable; in AWS each sees its own."""
    env: dict[str, str] = {}
    for name in decl["functions"]:
        env.update(function_env(decl, name, prefix))
    return env
