"""The patches that make moto behave like AWS, one module per emulated service, each patch
beside the AWS behaviour it restores (the numbers are those of local/emulator.py's list):

    stepfunctions.py  Step Functions (1, 4, 9b-c, 12a)
    awslambda.py      Lambda: invocations, event-source mappings (2, 3, 13)
    dynamodb.py       DynamoDB requests and transactions (5, 6)
    streams.py        DynamoDB Streams (8, 14)
    events.py         EventBridge (7, 11, 15)
    kinesis.py        Kinesis (12c)
    sqs.py            SQS (12d)
    core.py           moto's shared machinery (9a, 10, 12b)
    faults.py         LOCAL_FAULTS_FILE, the faults the Lambda and EventBridge patches inject
    moto_guard.py     the moto version guard, and the check of MOTO_SOURCES against moto
    diagnostics.py    the memory census (SIGUSR1)

local/emulator.py is the entry point: its apply_patches applies these, in its order, and it
serves moto. Importing this package patches nothing; it imports no moto either (every patch
imports what it needs when it is applied).

moto version this was written against: 5.2.5. Line numbers in comments refer to it.
"""

from __future__ import annotations

from . import awslambda, core, dynamodb, events, kinesis, sqs, stepfunctions, streams
from .awslambda import (
    disable_event_source_mapping_invocations,
    map_streams_served_apart,
    patch_function_error_header,
    patch_lambda_invoke,
)
from .core import (
    parse_each_json_path_once,
    route_requests_without_listing_moto,
    stop_tracking_every_model_instance,
)
from .diagnostics import log_memory_census
from .dynamodb import make_dynamodb_requests_atomic, roll_back_only_what_a_transaction_wrote
from .events import (
    dead_letter_undeliverable_events,
    patch_replay_window_and_filter,
    take_the_bus_away_on_demand,
)
from .kinesis import index_kinesis_shards
from .moto_guard import (
    REQUIREMENTS,
    MotoVersionError,
    changed_moto_sources,
    moto_source_sha256,
    pinned_moto_version,
    require_pinned_moto,
    resolve_moto,
)
from .sqs import check_sqs_retention_cheaply
from .stepfunctions import (
    bound_step_functions_leftovers,
    enable_step_functions_execution,
    keep_task_answers_sent_before_the_wait,
    parse_each_definition_once,
    patch_step_functions_execution_names,
    patch_step_functions_lambda_service_errors,
    share_step_functions_clients,
)
from .streams import expire_stream_shard_iterators, pack_stream_records

#: What local/emulator.py imports: every patch, the census, the moto guard, MOTO_SOURCES.
__all__ = [
    "MOTO_SOURCES",
    "REQUIREMENTS",
    "MotoVersionError",
    "bound_step_functions_leftovers",
    "changed_moto_sources",
    "check_sqs_retention_cheaply",
    "dead_letter_undeliverable_events",
    "disable_event_source_mapping_invocations",
    "enable_step_functions_execution",
    "expire_stream_shard_iterators",
    "index_kinesis_shards",
    "log_memory_census",
    "make_dynamodb_requests_atomic",
    "map_streams_served_apart",
    "moto_source_sha256",
    "pack_stream_records",
    "parse_each_definition_once",
    "parse_each_json_path_once",
    "patch_function_error_header",
    "patch_lambda_invoke",
    "patch_replay_window_and_filter",
    "patch_step_functions_execution_names",
    "keep_task_answers_sent_before_the_wait",
    "patch_step_functions_lambda_service_errors",
    "pinned_moto_version",
    "require_pinned_moto",
    "resolve_moto",
    "roll_back_only_what_a_transaction_wrote",
    "route_requests_without_listing_moto",
    "share_step_functions_clients",
    "stop_tracking_every_model_instance",
    "take_the_bus_away_on_demand",
]

#: For each patch (a function apply_patches calls), the moto functions, methods and classes it
#: replaces, wraps or relies on, by dotted path, with the sha256 of their source
#: (inspect.getsource) at the pinned moto version. local/test_emulator.py resolves every path in
#: an unpatched moto and names those whose source is no longer the one here: the patch relying
#: on it needs a look, and only then its new hash (the test prints it) belongs here. Not
#: covered, having no source to hash: moto.core.config.default_user_config (patch 1),
#: moto.dynamodb.models.copy (6), moto.core.model_instances.model_data (9a),
#: moto.stepfunctions.parser.utils.TMP_THREADS (9b), and the names boto_client_for,
#: json_path.parse and result_path.parse that modules bound at import (12a, 12b); the
#: functions reading them are here.
#: Each module keeps its own patches' part (its MOTO_SOURCES, at its end); this merges them, one entry
#: per patch.
MOTO_SOURCES: dict[str, dict[str, str]] = {}
for _module in (stepfunctions, awslambda, dynamodb, streams, events, kinesis, sqs, core):
    for _patch, _sources in _module.MOTO_SOURCES.items():
        if _patch in MOTO_SOURCES:
            raise RuntimeError(f"MOTO_SOURCES: {_patch} is recorded twice ({_module.__name__})")
        MOTO_SOURCES[_patch] = _sources
del _module, _patch, _sources
