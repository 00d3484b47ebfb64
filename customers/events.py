"""The events the customers context publishes on `brokage.customers` (docs/events.md).

Other contexts keep their read models of customers, brokers' assignments and contact preferences
from these; nothing outside this app reads the customers tables.
"""

from brokage.events import CUSTOMER_ID, register_event

CONTEXT = "customers"
AGGREGATE_TYPE = "Customer"

ROLE = {"type": "string", "enum": ["ADMIN", "BROKER", "CUSTOMER"]}

CUSTOMER_SNAPSHOT = {
    "customer_id": CUSTOMER_ID,
    "username": {"type": "string", "minLength": 1},
    "email": {"type": "string"},
    "phone": {"type": "string"},
    "role": ROLE,
    "tier_code": {"type": "string", "minLength": 1},
    "active": {"type": "boolean"},
}
CUSTOMER_SNAPSHOT_FIELDS = list(CUSTOMER_SNAPSHOT)

CUSTOMER_CREATED = register_event(
    "CustomerCreated",
    context=CONTEXT,
    payload_schema={"required": CUSTOMER_SNAPSHOT_FIELDS, "properties": CUSTOMER_SNAPSHOT},
)

CUSTOMER_UPDATED = register_event(
    "CustomerUpdated",
    context=CONTEXT,
    payload_schema={
        "required": [*CUSTOMER_SNAPSHOT_FIELDS, "changes"],
        "properties": {
            **CUSTOMER_SNAPSHOT,
            "changes": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"type": "object", "required": ["old", "new"]},
            },
        },
    },
)

_ASSIGNMENT = {
    "required": ["broker_id", "customer_id"],
    "properties": {"broker_id": CUSTOMER_ID, "customer_id": CUSTOMER_ID},
}
BROKER_CUSTOMER_ASSIGNED = register_event("BrokerCustomerAssigned", context=CONTEXT, payload_schema=_ASSIGNMENT)
BROKER_CUSTOMER_UNASSIGNED = register_event("BrokerCustomerUnassigned", context=CONTEXT, payload_schema=_ASSIGNMENT)

NOTIFICATION_PREFERENCES_UPDATED = register_event(
    "NotificationPreferencesUpdated",
    context=CONTEXT,
    payload_schema={
        "required": ["customer_id", "email_enabled", "sms_enabled", "push_enabled", "preferences"],
        "properties": {
            "customer_id": CUSTOMER_ID,
            "email_enabled": {"type": "boolean"},
            "sms_enabled": {"type": "boolean"},
            "push_enabled": {"type": "boolean"},
            "preferences": {"type": "object"},
        },
    },
)

# Sign-in refused after repeated failures for one account or from one address (customers/signin.py).
SIGN_IN_LOCKED_OUT = register_event(
    "SignInLockedOut",
    context=CONTEXT,
    payload_schema={
        "required": ["username", "ip_address", "customer_id"],
        "properties": {
            "username": {"type": ["string", "null"]},
            "ip_address": {"type": ["string", "null"]},
            "customer_id": {"type": ["integer", "null"]},
        },
    },
)
