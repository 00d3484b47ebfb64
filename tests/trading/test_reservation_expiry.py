"""A reservation never vanishes under a confirmed order: the saga alone decides when a reservation
expires, and only before the order is confirmed (the issue's scenario, through the public API)."""

from datetime import timedelta
from decimal import Decimal

from django.core.management import call_command
from django.utils import timezone

from assets.models import AssetReservation, ReservationStatus
from brokage.relay import relay_drain
from processor.models import SagaInstance, SagaState


def saga_started_ago(order_id: str, seconds: float) -> None:
    SagaInstance.objects.using("processor").filter(aggregate_id=order_id).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_a_confirmed_order_past_the_ttl_still_matches_and_settles(desk, trader, settings):
    settings.RESERVATION_TTL_SECONDS = 60
    placed = desk.place(trader["id"], asset_name="AAPL", order_side="BUY", size="1", price="10")
    assert placed.status_code == 201, placed.content
    order_id = placed.json()["id"]
    assert desk.order(order_id)["status"] == "ORDER_CONFIRMED"
    saga_started_ago(order_id, 3600)

    call_command("expire_reservations")
    matched = desk.match(order_id)

    assert matched.status_code == 200, matched.content
    assert desk.order(order_id)["status"] == "MATCHED"
    assert AssetReservation.objects.using("assets").get(order_id=order_id).status == ReservationStatus.SETTLED
    balances = desk.balances(trader["id"])
    assert balances["TRY"] == (Decimal("99990"), Decimal("99990"))
    assert balances["AAPL"] == (Decimal("101"), Decimal("101"))
    desk.assert_invariant(trader["id"])


def test_a_stalled_order_expires_rejected_and_a_match_answers_409(desk, trader, settings):
    """The saga stalls before it hears from assets; it expires, the order is rejected, and the
    reservation that lands afterwards (expiry racing the reservation) is given back."""
    settings.RESERVATION_TTL_SECONDS = 60
    # Nothing is published on commit: the test delivers each context's outbox itself.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.OUTBOX_RELAY_MODE = "off"
    placed = desk.place(trader["id"], asset_name="AAPL", order_side="BUY", size="2", price="100")
    assert placed.status_code == 201, placed.content
    order_id = placed.json()["id"]
    relay_drain("orders")  # OrderCreated reaches the saga, which asks assets to reserve (not delivered yet)
    assert SagaInstance.objects.using("processor").get(aggregate_id=order_id).current_state == SagaState.RESERVING
    saga_started_ago(order_id, 61)

    call_command("expire_reservations")
    for _ in range(4):  # the expiry, the late reservation, its release, and the replies
        for context in ("processor", "assets", "orders"):
            relay_drain(context)

    order = desk.order(order_id)
    assert (order["status"], order["rejection_reason"]) == ("REJECTED", "RESERVATION_EXPIRED")
    matched = desk.match(order_id)
    assert matched.status_code == 409
    assert "REJECTED (RESERVATION_EXPIRED)" in matched.json()["detail"]
    assert AssetReservation.objects.using("assets").get(order_id=order_id).status == ReservationStatus.EXPIRED
    assert SagaInstance.objects.using("processor").get(aggregate_id=order_id).current_state == SagaState.COMPENSATED
    assert desk.balances(trader["id"])["TRY"] == (Decimal("100000"), Decimal("100000"))
    desk.assert_invariant(trader["id"])
