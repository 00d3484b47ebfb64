"""The saga's commands and decisions, published on `brokage.processor` (docs/events.md)."""

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

RELEASE_ASSETS = register_event(
    "ReleaseAssets",
    context=CONTEXT,
    payload_schema=_schema({"saga_id": ID_STRING, "order_id": ID_STRING, "customer_id": CUSTOMER_ID}),
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
