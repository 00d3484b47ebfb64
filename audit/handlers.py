"""Audit consumes every domain event, and is where request telemetry is stored."""

from audit import services
from brokage.consumers import ALL_EVENTS, handles
from brokage.telemetry import register_sink

CONTEXT = "audit"


@handles(ALL_EVENTS, context=CONTEXT, batch=True)
def on_events(events: list[dict]) -> None:
    """Every event of a poll in one write (the audit trail is the consumer with the most to do)."""
    services.audit_logs_record(events=events)


register_sink(services.telemetry_batch_write)
