"""The events the notifications context consumes (docs/events.md); each handler is one service call.

No `processed_events` table here: every effect is idempotent on its own (upserts keyed by customer
id; notification ids derived from the event id).
"""

from brokage.consumers import handles
from notifications import services

CONTEXT = "notifications"


@handles("CustomerCreated", "CustomerUpdated", context=CONTEXT)
def on_customer_changed(event: dict) -> None:
    services.customer_event_apply(event=event)


@handles("NotificationPreferencesUpdated", context=CONTEXT)
def on_notification_preferences_updated(event: dict) -> None:
    services.customer_preferences_apply(event=event)


@handles("OrderStatusChanged", "OrderCanceled", "OrderMatched", "BalanceChanged", context=CONTEXT)
def on_customer_facing_event(event: dict) -> None:
    services.notification_create_for_event(event=event)
