"""moto's shared machinery, under every service: no tracking of every model instance ever
made, the package directory listed once, each JSONPath parsed once (patches 9a, 10 and
12b)."""

from __future__ import annotations


# ---------------------------------------------------------------------------------------
# Patch 9: moto keeps nothing nobody can ask for again (9a; 9b and 9c are in
# stepfunctions.py).
# ---------------------------------------------------------------------------------------
def stop_tracking_every_model_instance() -> None:
    """9a. moto's BaseModel.__new__ appends every instance it ever creates to a class-level
    list (moto/core/common_models.py:8-15, moto/core/base_backend.py:36), read only by
    /moto-api/data.json: every Item ever written or overwritten, every deep copy of one
    (UpdateItem makes two, each Query and Scan result one per item), every stream record,
    shard iterator and copied SQS message stays alive for ever. With moto's per-transaction
    table copies on top, this is what took the emulator to 13.8 GB after 800 orders. AWS
    keeps what it stores, not every intermediate object; /moto-api/data.json now lists
    nothing, and nothing here uses it."""
    from moto.core.common_models import BaseModel
    from moto.core.model_instances import model_data

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    BaseModel.__new__ = staticmethod(__new__)
    for models in model_data.values():
        for model in models.values():
            model.instances_tracked.clear()


def route_requests_without_listing_moto() -> None:
    """10. To find the backend of every request, moto's server calls
    moto.backends.list_of_moto_modules() (moto/moto_server/werkzeug_app.py:127), which lists
    and stats moto's package directory, about 150 entries, and it does so holding the
    dispatcher's one lock (:294). Under load that was a tenth of the emulator's CPU and a
    queue in front of every request. The directory does not change while the emulator runs:
    it is listed once."""
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


# ---------------------------------------------------------------------------------------
# Patch 12: work moto repeats per request, done once (12b; 12a is in stepfunctions.py,
# 12c in kinesis.py, 12d in sqs.py, 12e in local/emulator.py's main).
# ---------------------------------------------------------------------------------------
def parse_each_json_path_once() -> None:
    """12b. moto parses a JSONPath every time it evaluates one: EventBridge for each input
    path of each target of each event (moto/events/utils.py:99-108, and jsonpath_ng builds
    its whole LALR parser per call), Step Functions for each InputPath, ResultPath and
    Choice variable of each state (asl/utils/json_path.py:48, common/path/result_path.py).
    That was the largest single cost of a PutEvents. A parsed path is only read afterwards,
    so each distinct one is parsed once."""
    import functools

    import jsonpath_ng
    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    ext_parse = functools.lru_cache(maxsize=4096)(jsonpath_ng.ext.parse)
    plain_parse = functools.lru_cache(maxsize=4096)(jsonpath_ng.parse)
    jsonpath_ng.ext.parse = ext_parse  # moto/events/utils.py imports it at each call
    json_path.parse = ext_parse
    result_path.parse = plain_parse


#: moto's core: this module's part of MOTO_SOURCES (the package merges every module's; see
#: local/emulation/__init__.py for what a record is).
MOTO_SOURCES: dict[str, dict[str, str]] = {
    "stop_tracking_every_model_instance": {
        "moto.core.common_models.BaseModel.__new__":
            "08cf0ef20e88029a2eb91949492ce3281001a34b98143db186239962ad379eec",
        "moto.core.base_backend.InstanceTrackerMeta":
            "b78750695097c7eb878dc0d000f0f19b3fa3d83b6974aad6a675550bd6ce44e1",
    },
    "route_requests_without_listing_moto": {
        "moto.backends.list_of_moto_modules":
            "4f741a10b06500e840c3aaa1b4f02706e6f2bfbababc0e8a2a7b9c9d0e8957dc",
        "moto.moto_server.werkzeug_app.DomainDispatcherApplication.get_backend_for_host":
            "1f41972c1e4e660fbf4e4ddfeeed2fdff56dc105a8f8e1bf015640f710ef511a",
    },
    "parse_each_json_path_once": {
        "moto.events.utils.EventTemplateParser.parse":
            "40a5a46a321811bb2643aaabb7b45c37f75644fcce9cb95524e729a43f0d97d7",
        "moto.stepfunctions.parser.asl.utils.json_path.extract_json":
            "932245247973780c72287b75597e70031472f0cd764f35a199100d8a195987a4",
        "moto.stepfunctions.parser.asl.component.common.path.result_path.ResultPath._eval_body":
            "a6d93b4e5a332fadf256032411a32a39e24fdbf8080462c6c037bfe11c195081",
    },
}
