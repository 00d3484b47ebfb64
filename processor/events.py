"""The saga's commands to assets, published on `brokage.processor`, and its decisions for orders, on
`brokage.processor.outcomes` (docs/events.md): each consumer fetches only the family it acts on."""

from brokage.events import CUSTOMER_ID, DECIMAL_STRING, ID_STRING, register_event

CONTEXT = "processor"
ORDER_SIDE = {"type": "string", "enum": ["BUY", "SELL"]}


def _schema(properties: dict) -> dict:
    """Every listed field is required."""
    return {"required": list(properties), "properties": properties}


RESERVE_ASSETS = register_event(
    "ReserveAssets",
    context=CONTEXT,
    payload_schema=_schema(
        {
            "saga_id": ID_STRING,
            "order_id": ID_STRING,
            "customer_id": CUSTOMER_ID,
            "asset_name": ID_STRING,
            "order_side": ORDER_SIDE,
            "size": DECIMAL_STRING,
            "price": DECIMAL_STRING,
            "reserve_asset_name": ID_STRING,
            "reserve_amount": DECIMAL_STRING,
        }
    ),
)

# Why a reservation is given back: the order was canceled (RELEASE, the default), or its saga
# expired before it was confirmed (EXPIRED: the reservation ends EXPIRED, its ledger movement EXPIRE).
RELEASE_REASONS = ["RELEASE", "EXPIRED"]

RELEASE_ASSETS = register_event(
    "ReleaseAssets",
    context=CONTEXT,
    payload_schema={
        "required": ["saga_id", "order_id", "customer_id"],
        "properties": {
            "saga_id": ID_STRING,
            "order_id": ID_STRING,
            "customer_id": CUSTOMER_ID,
            "reason": {"type": "string", "enum": RELEASE_REASONS},
        },
    },
)

SETTLE_ASSETS = register_event(
    "SettleAssets",
    context=CONTEXT,
    payload_schema=_schema(
        {
            "saga_id": ID_STRING,
            "order_id": ID_STRING,
            "customer_id": CUSTOMER_ID,
            "asset_name": ID_STRING,
            "order_side": ORDER_SIDE,
            "size": DECIMAL_STRING,
            "price": DECIMAL_STRING,
            "amount": DECIMAL_STRING,
        }
    ),
)

ORDER_CONFIRMED = register_event(
    "OrderConfirmed",
    context=CONTEXT,
    family="outcomes",
    payload_schema=_schema(
        {
            "saga_id": ID_STRING,
            "order_id": ID_STRING,
            "customer_id": CUSTOMER_ID,
            "priority": {"type": "integer"},
            "tier_code": ID_STRING,
        }
    ),
)

# The saga gave up on an order that was never confirmed within the reservation TTL: orders rejects it.
ORDER_EXPIRED = register_event(
    "OrderExpired",
    context=CONTEXT,
    family="outcomes",
    payload_schema=_schema(
        {
            "saga_id": ID_STRING,
            "order_id": ID_STRING,
            "customer_id": CUSTOMER_ID,
            "reason": {"type": "string", "enum": ["RESERVATION_EXPIRED"]},
        }
    ),
)
