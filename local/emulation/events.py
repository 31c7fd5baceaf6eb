"""Amazon EventBridge: archive replays honour their window and rule filter, live events
carry their `account`, the bus can be taken away on demand, and an event a rule cannot
deliver to its SQS target goes to the target's dead-letter queue (patches 7, 11 and 15)."""

from __future__ import annotations

import json
import logging
import os
import uuid

from .faults import _faults

LOG = logging.getLogger("local.emulator")


# ---------------------------------------------------------------------------------------
# Patch: archive replays honour their window and rule filter.
# ---------------------------------------------------------------------------------------
def _epoch_seconds(value) -> float | None:
    """An EventBridge time as epoch seconds: a number (how the JSON protocol sends
    timestamps, and how moto stores `time`) or an RFC 3339 string."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def patch_replay_window_and_filter() -> None:
    """7. StartReplay: AWS replays "only events that occurred between the EventStartTime and
    EventEndTime" (by the event's `time`; "any event with a creation time prior to the
    EventEndTime"), and with Destination.FilterArns only to those rules. moto's
    Replay.replay_events (moto/events/models.py:793-809) sends every archived event to every
    rule of the bus. This keeps moto's synchronous replay (it is COMPLETED when StartReplay
    answers) and everything else it does: a new `id` and the top-level `replay-name` on each
    replayed event, no re-archiving (the archive's rule excludes `replay-name`).
    """
    from moto.events import models as events_models

    Replay = events_models.Replay

    def replay_events(self, archive) -> None:
        start = _epoch_seconds(self.event_start_time)
        end = _epoch_seconds(self.event_end_time)
        filters = set((self.destination or {}).get("FilterArns") or [])
        backend = events_models.events_backends[self.account_id][self.region]
        bus = backend.describe_event_bus(self.destination["Arn"].split("/")[-1])
        timed = [(_epoch_seconds(e.get("time")), e) for e in list(archive.events)]
        if start is None or end is None:
            in_window = []
        else:
            in_window = sorted(((t, e) for t, e in timed if t is not None and start <= t < end), key=lambda te: te[0])
        last = None
        for t, event in in_window:
            for rule in list(bus.rules.values()):
                if filters and rule.arn not in filters:
                    continue
                rule.send_to_targets(
                    dict(event, **{"id": str(uuid.uuid4()), "replay-name": self.name}),
                    transform_input=False,
                )
            last = t
        LOG.info("replay %s: %d of %d archived events in the window, rules %s", self.name, len(in_window), len(timed), sorted(filters) or "all")
        self.event_last_replayed_time = last
        self.state = events_models.ReplayState.COMPLETED
        self.end_time = events_models.unix_time()

    original_describe_short = Replay.describe_short

    def describe_short(self):
        result = original_describe_short(self)
        last = getattr(self, "event_last_replayed_time", None)
        if last is not None:
            result["EventLastReplayedTime"] = last
        return result

    Replay.replay_events = replay_events
    Replay.describe_short = describe_short

    # A target without an input transformer gets the whole event, `account` included
    # (moto/events/utils.py:73 builds it from a template that leaves `account` out).
    from moto.events.utils import EventTemplateParser

    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace(
            '"version": "0",', '"version": "0", "account": "<account>",', 1
        )


# ---------------------------------------------------------------------------------------
# Patch 11: an EventBridge outage on demand.
# ---------------------------------------------------------------------------------------
def _bus_unavailable() -> bool:
    path = os.environ.get("LOCAL_FAULTS_FILE")
    return bool(path) and _faults(path).get("eventbridge") == "unavailable"


def take_the_bus_away_on_demand() -> None:
    """`{"eventbridge": "unavailable"}` in LOCAL_FAULTS_FILE makes every PutEvents answer
    HTTP 500 `InternalException`, as EventBridge does in an outage of the service, until
    the key is gone. The outbox test uses it to keep the bus away for longer than the
    relay's retries (what AWS answers in an outage is the service's to choose; a 5xx is
    what the SDK retries and what the relay must survive)."""
    from moto.core.exceptions import JsonRESTError
    from moto.events.responses import EventsHandler

    class InternalException(JsonRESTError):
        code = 500

    original = EventsHandler.put_events

    def put_events(self):
        if _bus_unavailable():
            raise InternalException(
                "InternalException", "injected fault: EventBridge is unavailable"
            )
        return original(self)

    EventsHandler.put_events = put_events


# ---------------------------------------------------------------------------------------
# Patch: a rule target that cannot be delivered to goes to its dead-letter queue.
# ---------------------------------------------------------------------------------------
def dead_letter_undeliverable_events() -> None:
    """EventBridge delivers to a rule's targets after PutEvents has answered; an event it
    cannot deliver is retried within the target's RetryPolicy and then sent to the target's
    DeadLetterConfig queue (dropped if it has none), the event as the target would have had it
    as the body, with RULE_ARN, TARGET_ARN, ERROR_CODE and ERROR_MESSAGE attributes. An error
    no retry can mend (the target gone, permission refused) goes there at once (AWS,
    "Event retry policy and using dead-letter queues"). moto sends to an SQS target inside
    PutEvents (moto/events/models.py Rule._send_to_sqs_queue) and a missing queue fails the
    whole PutEvents call, which the publisher would retry for ever, and the rule's later
    targets are skipped.

    Here a failed SQS delivery goes to the target's dead-letter queue with those attributes
    and PutEvents succeeds. The only failures moto's SQS gives are of the kind AWS does not
    retry (queue missing, message refused), so nothing is retried; RETRY_ATTEMPTS is 0.
    ERROR_CODE is NO_RESOURCE for a missing queue, SDK_CLIENT_ERROR otherwise (what the bus
    reports is the service's to choose; `commerce-ops redeliver` only reports it)."""
    from moto.events import models as events_models
    from moto.sqs import sqs_backends
    from moto.sqs.exceptions import QueueDoesNotExist, SQSException

    Rule = events_models.Rule
    original = Rule._send_to_sqs_queue

    def _send_to_sqs_queue(self, resource_id, event, group_id=None):
        try:
            original(self, resource_id, event, group_id)
        except SQSException as e:  # what SQS refused; a fault of the emulator's own stays loud
            target = next((t for t in self.targets if t["Arn"].rsplit(":", 1)[-1] == resource_id), {})
            dlq_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
            code = "NO_RESOURCE" if isinstance(e, QueueDoesNotExist) else "SDK_CLIENT_ERROR"
            message = getattr(e, "message", None) or str(e)
            if not dlq_arn:
                LOG.warning("rule %s: event %s dropped, target %s failed (%s) and has no dead-letter queue",
                            self.name, event.get("id"), target.get("Arn"), message)
                return
            attributes = {
                name: {"DataType": "String", "StringValue": value}
                for name, value in (
                    ("RULE_ARN", self.arn), ("TARGET_ARN", target["Arn"]), ("ERROR_CODE", code),
                    ("ERROR_MESSAGE", message), ("RETRY_ATTEMPTS", "0"),
                )
            }
            try:
                sqs_backends[self.account_id][self.region_name].send_message(
                    queue_name=dlq_arn.rsplit(":", 1)[-1], message_body=json.dumps(event), message_attributes=attributes,
                )
                LOG.info("rule %s: event %s to the dead-letter queue (%s: %s)", self.name, event.get("id"), code, message)
            except Exception as dlq_error:  # noqa: BLE001 - AWS: InvocationsFailedToBeSentToDlq, the event is gone
                LOG.warning("rule %s: event %s dropped, its dead-letter queue failed too (%s)", self.name, event.get("id"), dlq_error)

    Rule._send_to_sqs_queue = _send_to_sqs_queue


#: EventBridge: this module's part of MOTO_SOURCES (the package merges every module's; see
#: local/emulation/__init__.py for what a record is).
MOTO_SOURCES: dict[str, dict[str, str]] = {
    "patch_replay_window_and_filter": {
        "moto.events.models.Replay.replay_events":
            "9752fdb56ebb87d689c6401795332118f59d276072f62057e3db5ea9ab97b0f3",
        "moto.events.models.Replay.describe_short":
            "b0a19dc024f73c1ff353b0d29ab5844ac2f92ff44440dfde8bc6c4e306420fb0",
        "moto.events.models.Rule.send_to_targets":
            "472e002e2dab8a599554a7d6c7ea0910625a5b39c7699b9ca4404255efcfc172",
        "moto.events.utils.EventTemplateParser":
            "91e77e4ff0b60f200ed37149ae763b4284e7f46482a8f0d6bac72455acbca416",
    },
    "take_the_bus_away_on_demand": {
        "moto.events.responses.EventsHandler.put_events":
            "df08b985300c967ce44af55d75172625d4dbf9b658eb8a7cca2d3042979422b5",
    },
    "dead_letter_undeliverable_events": {
        "moto.events.models.Rule._send_to_sqs_queue":
            "026c873dd0091781a534906b49cab5aa18ae4664d6e9382da77c8d8b7649d2be",
    },
}
