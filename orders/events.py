"""The events the orders context publishes on `brokage.orders` and `brokage.orders.status` (docs/events.md).

Every one carries the order snapshot plus the status it left and the status it entered.
"""

from brokage.events import CUSTOMER_ID, DECIMAL_STRING, ID_STRING, register_event

CONTEXT = "orders"

STATUS = {"type": "string", "minLength": 1}

ORDER_SNAPSHOT_SCHEMA = {
    "required": [
        "order_id",
        "client_order_id",
        "customer_id",
        "asset_name",
        "order_side",
        "size",
        "price",
        "status",
        "rejection_reason",
        "version",
        "old_status",
        "new_status",
    ],
    "properties": {
        "order_id": ID_STRING,
        "client_order_id": ID_STRING,
        "customer_id": CUSTOMER_ID,
        "asset_name": {"type": "string", "minLength": 1},
        "order_side": {"enum": ["BUY", "SELL"]},
        "size": DECIMAL_STRING,
        "price": DECIMAL_STRING,
        "status": STATUS,
        "rejection_reason": {"type": ["string", "null"]},
        "version": {"type": "integer"},
        "old_status": {"type": ["string", "null"]},
        "new_status": STATUS,
    },
}

ORDER_CREATED = "OrderCreated"
ORDER_STATUS_CHANGED = "OrderStatusChanged"
ORDER_CANCELED = "OrderCanceled"
ORDER_MATCHED = "OrderMatched"

# The saga's inputs stay on `brokage.orders`, in the order they were written (a cancel never overtakes
# the creation). The status changes, three an order, are for notices and the audit trail only: on
# `brokage.orders.status` the saga's consumers never fetch them.
for _name in (ORDER_CREATED, ORDER_CANCELED, ORDER_MATCHED):
    register_event(_name, context=CONTEXT, payload_schema=ORDER_SNAPSHOT_SCHEMA)
register_event(ORDER_STATUS_CHANGED, context=CONTEXT, payload_schema=ORDER_SNAPSHOT_SCHEMA, family="status")
