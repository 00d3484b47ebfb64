"""The events the notifications context consumes (docs/events.md); each handler is one service call.

No `processed_events` table here: every effect is idempotent on its own (upserts keyed by customer
id; notification ids derived from the event id).
"""

from brokage.consumers import handles
from notifications import services

CONTEXT = "notifications"


@handles("CustomerCreated", "CustomerUpdated", context=CONTEXT)
def on_customer_changed(event: dict) -> None:
    """The whole event: the notification it sends is keyed by the event id."""
    services.customer_event_apply(event=event)


@handles("NotificationPreferencesUpdated", context=CONTEXT)
def on_notification_preferences_updated(event: dict) -> None:
    payload = event["payload"]
    services.customer_preferences_apply(
        customer_id=payload["customer_id"],
        email_enabled=payload["email_enabled"],
        sms_enabled=payload["sms_enabled"],
        push_enabled=payload["push_enabled"],
        preferences=payload.get("preferences"),
    )


@handles("OrderStatusChanged", "OrderCanceled", "OrderMatched", "BalanceChanged", context=CONTEXT, batch=True)
def on_customer_facing_events(events: list[dict]) -> None:
    """A poll's order and balance events: their notifications are written and sent together."""
    services.notifications_create_for_events(events=events)
