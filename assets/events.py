"""The events the assets context publishes: the saga's replies on `brokage.assets`, balance changes on
`brokage.assets.balances` (read by notices and the audit trail only; docs/events.md)."""

from brokage.events import CUSTOMER_ID, DECIMAL_STRING, ID_STRING, register_event

CONTEXT = "assets"

ASSET_RESERVED = "AssetReserved"
ASSET_RESERVATION_FAILED = "AssetReservationFailed"
ASSET_RELEASED = "AssetReleased"
ASSETS_SETTLED = "AssetsSettled"
BALANCE_CHANGED = "BalanceChanged"

BALANCE = {
    "type": "object",
    "required": ["size", "usable_size"],
    "properties": {"size": DECIMAL_STRING, "usable_size": DECIMAL_STRING},
}


def _schema(properties: dict) -> dict:
    """Every listed field is required (nullable ones say so in their type)."""
    return {"required": list(properties), "properties": properties}


register_event(
    ASSET_RESERVED,
    context=CONTEXT,
    payload_schema=_schema(
        {
            "saga_id": ID_STRING,
            "order_id": ID_STRING,
            "customer_id": CUSTOMER_ID,
            "reservation_id": ID_STRING,
            "asset_name": ID_STRING,
            "amount": DECIMAL_STRING,
        }
    ),
)

register_event(
    ASSET_RESERVATION_FAILED,
    context=CONTEXT,
    payload_schema=_schema(
        {
            "saga_id": ID_STRING,
            "order_id": ID_STRING,
            "customer_id": CUSTOMER_ID,
            "reason": {"type": "string", "minLength": 1},
        }
    ),
)

register_event(
    ASSET_RELEASED,
    context=CONTEXT,
    payload_schema=_schema(
        {
            # null when the expiry sweep released it rather than a saga.
            "saga_id": {"type": ["string", "null"]},
            "order_id": ID_STRING,
            "customer_id": CUSTOMER_ID,
            "reservation_id": ID_STRING,
            "asset_name": ID_STRING,
            "amount": DECIMAL_STRING,
        }
    ),
)

register_event(
    ASSETS_SETTLED,
    context=CONTEXT,
    payload_schema=_schema({"saga_id": ID_STRING, "order_id": ID_STRING, "customer_id": CUSTOMER_ID}),
)

_BALANCE_CHANGED_SCHEMA = _schema(
    {
        "customer_id": CUSTOMER_ID,
        "asset_id": {"type": "integer"},
        "asset_name": ID_STRING,
        "reason": {"enum": ["DEPOSIT", "WITHDRAW", "RESERVE", "RELEASE", "SETTLE", "EXPIRE"]},
        "amount": DECIMAL_STRING,
        "order_id": {"type": ["string", "null"]},
        "old": BALANCE,
        "new": BALANCE,
    }
)
# Optional: the account a WITHDRAW paid out to, for the audit trail.
_BALANCE_CHANGED_SCHEMA["properties"]["iban"] = {"type": "string"}

register_event(BALANCE_CHANGED, context=CONTEXT, payload_schema=_BALANCE_CHANGED_SCHEMA, family="balances")
