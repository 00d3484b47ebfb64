"""Audit consumes every domain event, and is where request telemetry is stored."""

from audit import services
from brokage.consumers import ALL_EVENTS, handles
from brokage.telemetry import register_sink

CONTEXT = "audit"


@handles(ALL_EVENTS, context=CONTEXT)
def on_any_event(event: dict) -> None:
    services.audit_log_record(event=event)


register_sink(services.telemetry_batch_write)
