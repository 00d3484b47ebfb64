"""Each consumer group is sent the events it acts on: topics per event family (docs/events.md)."""

import pytest

from brokage.consumers import consuming_contexts, handlers_for, topics_for
from brokage.events import event_type_named, registered_event_types

# The order path: what one confirmed order publishes, in the order the saga writes it.
ORDER_PATH = [
    "OrderCreated",
    "ReserveAssets",
    "OrderStatusChanged",  # PENDING_RESERVATION
    "AssetReserved",
    "BalanceChanged",
    "OrderStatusChanged",  # ASSET_RESERVED
    "OrderConfirmed",
    "OrderStatusChanged",  # ORDER_CONFIRMED
]


def deliveries(event_name: str) -> set[str]:
    """The consumer groups whose subscriptions include the topic `event_name` is published on."""
    topic = event_type_named(event_name).topic
    return {context for context in consuming_contexts() if topic in topics_for(context)}


def test_status_changes_and_balance_changes_reach_only_notices_and_the_audit_trail():
    assert deliveries("OrderStatusChanged") == {"notifications", "audit"}
    assert deliveries("BalanceChanged") == {"notifications", "audit"}


def test_the_saga_decisions_for_orders_do_not_reach_assets():
    assert deliveries("OrderConfirmed") == {"orders", "audit"}
    assert deliveries("ReserveAssets") == {"assets", "audit"}


def test_a_confirmed_order_is_fetched_19_times_by_all_groups_together():
    """Eight events; 30 fetches with one topic per context, 19 now (the one fetch nobody acts on: the
    notices' group reads OrderCreated, on the topic that also carries the cancels and matches it notices)."""
    fetched = sum(len(deliveries(name)) for name in ORDER_PATH)
    acted_on = sum(1 for name in ORDER_PATH for context in consuming_contexts() if handlers_for(context, name))
    assert (len(ORDER_PATH), acted_on, fetched) == (8, 18, 19)


@pytest.mark.parametrize("context", ["orders", "processor", "assets"])
def test_a_saga_group_handles_every_order_path_event_it_is_sent(context):
    sent = [name for name in ORDER_PATH if context in deliveries(name)]
    assert sent
    assert all(handlers_for(context, name) for name in sent), sent


def test_events_that_must_stay_in_order_share_a_topic():
    """A cancel or a match never overtakes the creation of its order at the processor, nor a release
    or a settlement the reservation at assets: one topic, one partition per customer."""
    same = [
        ("OrderCreated", "OrderCanceled", "OrderMatched"),
        ("ReserveAssets", "ReleaseAssets", "SettleAssets"),
        ("AssetReserved", "AssetReservationFailed", "AssetReleased", "AssetsSettled"),
    ]
    for names in same:
        assert len({event_type_named(name).topic for name in names}) == 1, names


def test_every_registered_event_is_on_a_topic_some_group_reads():
    read = {topic for context in consuming_contexts() for topic in topics_for(context)}
    assert {event.topic for event in registered_event_types()} <= read
