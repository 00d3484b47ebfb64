"""The order lifecycle: the one table of legal status changes.

Events from other contexts can arrive in any order, so a reservation or confirmation may land
while orders has not yet moved the order past CREATED; those forward jumps are legal. A status
change nobody may make is refused here; the services decide whether that is a 409 (a person
asked) or a quiet no-op (an event asked).
"""

from orders.models import OrderStatus

S = OrderStatus

TRANSITIONS: dict[str, frozenset[str]] = {
    S.CREATED: frozenset({S.PENDING_RESERVATION, S.ASSET_RESERVED, S.ORDER_CONFIRMED, S.CANCELED, S.REJECTED}),
    S.PENDING_RESERVATION: frozenset({S.ASSET_RESERVED, S.ORDER_CONFIRMED, S.CANCELED, S.REJECTED}),
    S.ASSET_RESERVED: frozenset({S.ORDER_CONFIRMED, S.CANCELED, S.REJECTED}),
    S.ORDER_CONFIRMED: frozenset({S.MATCHED, S.CANCELED}),
    S.MATCHED: frozenset({S.ARCHIVED}),
    S.CANCELED: frozenset({S.ARCHIVED}),
    S.REJECTED: frozenset({S.ARCHIVED}),
    S.ARCHIVED: frozenset(),
}


def transition_allowed(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())
