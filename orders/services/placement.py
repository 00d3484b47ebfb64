"""Placing an order: the input checked field by field (every problem reported at once), the
customer checked against this context's replica, and the order and its OrderCreated in one
transaction: on PostgreSQL one statement, the customer check included."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError

from brokage.auth import Principal, Role, can_act_for
from brokage.db import instance_values
from brokage.errors import ConflictError, Contention, InvalidInput, NotFound, PermissionDenied
from brokage.guarded_rows import rows_insert_if
from brokage.money import money_parse
from brokage.outbox import outbox_row, outbox_stored
from orders import events
from orders.models import (
    CLIENT_ORDER_ID_MAX_LENGTH,
    DECIMAL_MAX_DIGITS,
    DECIMAL_PLACES,
    BrokerAssignmentReplica,
    CustomerReplica,
    Order,
    OrderSide,
    OrderStatus,
)
from orders.selectors import customer_replica_get
from orders.services.order_events import AGGREGATE_TYPE, ALIAS, order_snapshot

QUOTE_ASSET = "TRY"
MAX_CUSTOMER_ID = 2**63 - 1
# How long order_create waits for a customer's CustomerCreated to reach the replica (it may still be
# on its way through Kafka when the customer places a first order).
DEFAULT_CUSTOMER_WAIT_SECONDS = 2.0

ASSET_NAME_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9.]{0,11}")
CLIENT_ORDER_ID_PATTERN = re.compile(rf"[A-Za-z0-9._:\-]{{1,{CLIENT_ORDER_ID_MAX_LENGTH}}}")


def _quantity(value: object, field: str, errors: dict) -> Decimal | None:
    """A positive size or price that fits its column exactly; the problem goes into `errors`."""
    try:
        return money_parse(value, field=field, max_digits=DECIMAL_MAX_DIGITS, decimal_places=DECIMAL_PLACES)
    except InvalidInput as exc:
        errors.update(exc.detail)
        return None


def _validated_order_input(
    *,
    actor: Principal,
    customer_id: object,
    asset_name: object,
    order_side: object,
    size: object,
    price: object,
    client_order_id: object,
) -> dict:
    errors: dict[str, list[str]] = {}
    if customer_id is None and actor.is_customer:
        customer_id = actor.user_id
    if customer_id is None:
        errors["customer_id"] = ["This field is required."]
    elif isinstance(customer_id, bool) or not isinstance(customer_id, int) or not 0 < customer_id <= MAX_CUSTOMER_ID:
        errors["customer_id"] = ["Must be a customer id (a positive integer)."]
    if not isinstance(asset_name, str) or not ASSET_NAME_PATTERN.fullmatch(asset_name):
        errors["asset_name"] = ["Must be an upper-case ticker of 1-12 characters (A-Z, 0-9, '.')."]
    elif asset_name == QUOTE_ASSET:
        errors["asset_name"] = [f"{QUOTE_ASSET} is the currency orders are paid in; it cannot be traded."]
    if order_side not in OrderSide.values:
        errors["order_side"] = ["Must be BUY or SELL."]
    size = _quantity(size, "size", errors)
    price = _quantity(price, "price", errors)
    if client_order_id is None:
        client_order_id = str(uuid.uuid4())
    elif not isinstance(client_order_id, str) or not CLIENT_ORDER_ID_PATTERN.fullmatch(client_order_id):
        errors["client_order_id"] = [
            f"Must be 1-{CLIENT_ORDER_ID_MAX_LENGTH} characters of letters, digits and . _ : -"
        ]
    if errors:
        raise InvalidInput(errors)
    return {
        "customer_id": customer_id,
        "asset_name": asset_name,
        "order_side": order_side,
        "size": size,
        "price": price,
        "client_order_id": client_order_id,
    }


def _check_customer_may_trade(customer_id: int, *, wait: bool = True) -> None:
    """Why orders cannot be placed for `customer_id` (an error), waiting for a customer on the way."""
    wait_seconds = getattr(settings, "ORDERS_CUSTOMER_WAIT_SECONDS", DEFAULT_CUSTOMER_WAIT_SECONDS) if wait else 0
    replica: CustomerReplica | None = customer_replica_get(customer_id=customer_id, wait_seconds=wait_seconds)
    if replica is None:
        raise NotFound("Customer not found.")
    if replica.role != Role.CUSTOMER:
        raise InvalidInput({"customer_id": ["Orders are placed for customers, not for brokers or admins."]})
    if not replica.active:
        raise InvalidInput({"customer_id": ["This customer is not active."]})


def _order_insert(order: Order, *, actor: Principal) -> bool:
    """Write `order` and its OrderCreated if the replica says its customer may trade; whether it did.

    One statement (`rows_insert_if`): the customer check, both INSERTs and the commit are a single
    round trip to PostgreSQL. The unique index on (customer_id, client_order_id) is the duplicate
    check (IntegrityError), so nothing is read first.
    """
    created = outbox_row(
        events.CONTEXT,
        events.ORDER_CREATED,
        aggregate_type=AGGREGATE_TYPE,
        aggregate_id=order.id,
        payload=order_snapshot(order, old_status=None),
        actor_id=actor.user_id,
    )
    may_trade = {"customer_id": order.customer_id, "role": Role.CUSTOMER, "active": True}
    rows = [(Order, instance_values(order)), (created.model, created.values)]
    if not rows_insert_if(rows, ALIAS, exists=(CustomerReplica, may_trade)):
        return False
    order._state.adding, order._state.db = False, ALIAS
    outbox_stored(created)
    return True


def order_create(
    *,
    actor: Principal,
    customer_id: int | None = None,
    asset_name: str,
    order_side: str,
    size: Decimal | str,
    price: Decimal | str,
    client_order_id: str | None = None,
) -> Order:
    """Place an order (CREATED) and publish OrderCreated; the saga takes it from there."""
    fields = _validated_order_input(
        actor=actor,
        customer_id=customer_id,
        asset_name=asset_name,
        order_side=order_side,
        size=size,
        price=price,
        client_order_id=client_order_id,
    )
    if not can_act_for(actor, fields["customer_id"], BrokerAssignmentReplica):
        raise PermissionDenied("You may not place orders for this customer.")
    order = Order(status=OrderStatus.CREATED, **fields)
    try:
        if not _order_insert(order, actor=actor):
            _check_customer_may_trade(order.customer_id)  # why not; or the customer has just arrived
            if not _order_insert(order, actor=actor):
                _check_customer_may_trade(order.customer_id, wait=False)
                raise Contention("The customer changed while the order was being placed; try again.")
    except IntegrityError:
        existing = (
            Order.objects.using(ALIAS)
            .filter(customer_id=fields["customer_id"], client_order_id=fields["client_order_id"])
            .first()
        )
        if existing is None:
            raise
        # A client order id is private to its customer, and the actor may act for that customer.
        raise ConflictError("An order with this client_order_id already exists.", order_id=str(existing.id)) from None
    return order
