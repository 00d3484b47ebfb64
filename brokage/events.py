"""The event envelope and the registry of versioned event schemas.

Every context declares the events it publishes in its own `events.py` with `register_event`.
An envelope is validated against its schema when it is produced (before it reaches the outbox)
and again when it is consumed, so a malformed event is caught on both sides of the bus.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any

import fastjsonschema
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from brokage.observability import current_correlation_id

ENVELOPE_FIELDS = (
    "event_id",
    "event_type",
    "schema_version",
    "aggregate_type",
    "aggregate_id",
    "occurred_at",
    "correlation_id",
    "causation_id",
    "actor_id",
    "payload",
)

ENVELOPE_SCHEMA = {
    "type": "object",
    "required": list(ENVELOPE_FIELDS),
    "properties": {
        "event_id": {"type": "string", "format": "uuid"},
        "event_type": {"type": "string", "minLength": 1},
        "schema_version": {"type": "integer", "minimum": 1},
        "aggregate_type": {"type": "string", "minLength": 1},
        "aggregate_id": {"type": "string", "minLength": 1},
        "occurred_at": {"type": "string"},
        "correlation_id": {"type": "string"},
        "causation_id": {"type": ["string", "null"]},
        "actor_id": {"type": ["string", "null"]},
        "payload": {"type": "object"},
    },
}

# JSON-schema fragments the contexts reuse in their payload schemas.
DECIMAL_STRING = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}
ID_STRING = {"type": "string", "minLength": 1}
CUSTOMER_ID = {"type": "integer"}


# Schemas are compiled to Python once (fastjsonschema); `jsonschema` interprets them on every call,
# which made validation most of a consumer's time.
FORMATS = {"uuid": r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"}


def compile_schema(schema: dict):
    return fastjsonschema.compile(schema, formats=FORMATS)


_ENVELOPE_VALIDATOR = compile_schema(ENVELOPE_SCHEMA)


class EventValidationError(ValueError):
    """An envelope or payload does not match the registered schema."""


@dataclass(frozen=True, eq=False)
class EventType:
    name: str
    version: int
    context: str
    schema: dict
    family: str = ""

    @cached_property
    def validator(self):
        """Compiled once per event type."""
        return compile_schema(self.schema)

    @property
    def topic(self) -> str:
        return topic_for(self.context, self.family)


_registry: dict[tuple[str, int], EventType] = {}
_latest: dict[str, EventType] = {}


def topic_for(context: str, family: str = "") -> str:
    """`brokage.<context>`, or `brokage.<context>.<family>` for a family of the context's events that
    other consumers read apart; tests on shared Kafka use their own prefix (`settings.KAFKA_TOPIC_PREFIX`)."""
    return f"{settings.KAFKA_TOPIC_PREFIX}{context}" + (f".{family}" if family else "")


def envelope_topic(envelope: dict) -> str:
    """The topic an envelope is published on: its event type's."""
    return event_type_named(envelope["event_type"], envelope["schema_version"]).topic


def dlq_topic_for(topic: str) -> str:
    return f"{topic}.dlq"


def register_event(name: str, *, context: str, payload_schema: dict, version: int = 1, family: str = "") -> EventType:
    """Declare an event type published by `context`; re-registering the same version is a no-op.

    `family`: the event goes to `brokage.<context>.<family>` instead of `brokage.<context>`. A consumer
    group is sent only the topics of the types it handles, so events that most groups ignore (and
    that need no order relative to the context's other events) get a topic of their own: a group
    that does not read it never fetches them (docs/events.md).
    """
    schema = {"type": "object", "additionalProperties": True, **payload_schema}
    event_type = EventType(name=name, version=version, context=context, schema=schema, family=family)
    existing = _registry.get((name, version))
    if existing and existing.context != context:
        raise ValueError(f"{name} v{version} is already published by {existing.context}")
    _registry[(name, version)] = event_type
    if name not in _latest or _latest[name].version <= version:
        _latest[name] = event_type
    return event_type


def event_type_named(name: str, version: int | None = None) -> EventType:
    try:
        return _latest[name] if version is None else _registry[(name, version)]
    except KeyError:
        raise EventValidationError(f"unknown event type {name} v{version or 'latest'}") from None


def registered_event_types() -> list[EventType]:
    return sorted(_registry.values(), key=lambda e: (e.context, e.name, e.version))


def _jsonable(payload: dict) -> dict:
    """Round-trip through Django's encoder: Decimal and UUID become strings, datetimes ISO 8601."""
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


def validate_envelope(envelope: dict) -> EventType:
    """Raise EventValidationError unless the envelope and its payload match their schemas."""
    try:
        _ENVELOPE_VALIDATOR(envelope)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise EventValidationError(f"bad envelope: {_reason(exc)}") from None
    event_type = event_type_named(envelope["event_type"], envelope["schema_version"])
    try:
        event_type.validator(envelope["payload"])
    except fastjsonschema.JsonSchemaValueException as exc:
        path = ".".join(str(p) for p in exc.path[1:]) or "payload"
        raise EventValidationError(f"{event_type.name} v{event_type.version}: {path}: {_reason(exc)}") from None
    return event_type


def _reason(exc: fastjsonschema.JsonSchemaValueException) -> str:
    """'data.size must match pattern …' → 'size must match pattern …' (the document is not 'data')."""
    return exc.message.removeprefix("data.").removeprefix("data ")


def build_envelope(
    event_type: str,
    *,
    aggregate_type: str,
    aggregate_id: Any,
    payload: dict,
    actor_id: Any = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    version: int | None = None,
) -> dict:
    """Make a validated envelope. The correlation id defaults to the current request's."""
    declared = event_type_named(event_type, version)
    envelope = {
        "event_id": str(uuid.uuid4()),
        "event_type": declared.name,
        "schema_version": declared.version,
        "aggregate_type": aggregate_type,
        "aggregate_id": str(aggregate_id),
        "occurred_at": timezone.now().isoformat(),
        "correlation_id": correlation_id or current_correlation_id() or str(uuid.uuid4()),
        "causation_id": causation_id,
        "actor_id": None if actor_id is None else str(actor_id),
        "payload": _jsonable(payload),
    }
    validate_envelope(envelope)
    return envelope


def caused_by(event: dict) -> dict:
    """Keyword arguments that make a new event follow `event`'s correlation and causation chain."""
    return {
        "correlation_id": event["correlation_id"],
        "causation_id": event["event_id"],
        "actor_id": event.get("actor_id"),
    }


def partition_key(envelope: dict) -> str:
    """Kafka message key: the customer id, so one customer's events keep their order."""
    customer_id = envelope["payload"].get("customer_id")
    return str(customer_id if customer_id is not None else envelope["aggregate_id"])


def decimal_from(value: str | int | Decimal) -> Decimal:
    """Decimals travel as strings; this is the one way back."""
    return Decimal(str(value))
