"""What a customer is told about an event: type, title, message, priority, category, related entity.

One function per event family; `notification_content_for` returns None for events a customer does
not need to hear about (the saga's intermediate steps, balance moves that an order notice covers).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import InvalidOperation

from brokage.events import decimal_from
from brokage.money import decimal_string


class Priority:
    HIGH = "HIGH"
    NORMAL = "NORMAL"
    LOW = "LOW"


class Category:
    ORDER = "ORDER"
    BALANCE = "BALANCE"
    ACCOUNT = "ACCOUNT"


@dataclass(frozen=True)
class NotificationContent:
    customer_id: int
    type: str
    title: str
    message: str
    priority: str
    category: str
    related_entity: dict


REJECTION_REASONS = {
    "INSUFFICIENT_BALANCE": "your usable balance was not enough",
    "NO_ASSET": "you hold none of the asset it needs",
}

# Fields whose change a customer should hear about (a changed e-mail address may be someone else's doing).
ACCOUNT_FIELDS = {"email": "e-mail address", "phone": "phone number", "tier_code": "tier", "active": "account status"}


def amount_text(value) -> str:
    """`"125.000000"` -> `"125"`, `"0.50"` -> `"0.5"`: what a person reads, exact (no float)."""
    try:
        number = decimal_from(value)
    except (InvalidOperation, TypeError, ValueError):
        return str(value)
    return decimal_string(number, trim=True)


def _order_phrase(payload: dict) -> str:
    side = str(payload.get("order_side", "")).upper()
    return (
        f"Your {side} order for {amount_text(payload.get('size'))} {payload.get('asset_name')} "
        f"at {amount_text(payload.get('price'))} TRY"
    )


def _order_entity(payload: dict) -> dict:
    return {"type": "Order", "id": str(payload.get("order_id"))}


def _order_content(event: dict) -> NotificationContent | None:
    payload = event["payload"]
    new_status = payload.get("new_status") or payload.get("status")
    phrase = _order_phrase(payload)
    customer_id = int(payload["customer_id"])
    if event["event_type"] == "OrderMatched" or new_status == "MATCHED":
        try:
            total = amount_text(decimal_from(payload["size"]) * decimal_from(payload["price"]))
        except (InvalidOperation, KeyError, TypeError, ValueError):
            total = "?"
        return NotificationContent(
            customer_id,
            "ORDER_MATCHED",
            "Order matched",
            f"{phrase} was matched, for {total} TRY in total.",
            Priority.HIGH,
            Category.ORDER,
            _order_entity(payload),
        )
    if event["event_type"] == "OrderCanceled" or new_status == "CANCELED":
        return NotificationContent(
            customer_id,
            "ORDER_CANCELED",
            "Order canceled",
            f"{phrase} was canceled; whatever it had reserved is released.",
            Priority.NORMAL,
            Category.ORDER,
            _order_entity(payload),
        )
    if new_status == "ORDER_CONFIRMED":
        return NotificationContent(
            customer_id,
            "ORDER_CONFIRMED",
            "Order confirmed",
            f"{phrase} is confirmed: its balance is reserved and it is waiting to be matched.",
            Priority.NORMAL,
            Category.ORDER,
            _order_entity(payload),
        )
    if new_status == "REJECTED":
        code = payload.get("rejection_reason") or "UNKNOWN"
        reason = REJECTION_REASONS.get(code, code.replace("_", " ").lower())
        return NotificationContent(
            customer_id,
            "ORDER_REJECTED",
            "Order rejected",
            f"{phrase} was rejected: {reason} ({code}).",
            Priority.HIGH,
            Category.ORDER,
            _order_entity(payload),
        )
    return None  # CREATED, PENDING_RESERVATION, ASSET_RESERVED, ARCHIVED: nothing the customer must act on


def _masked_iban(iban: str) -> str:
    compact = iban.replace(" ", "")
    return f"{compact[:4]}…{compact[-4:]}" if len(compact) > 8 else "your account"


def _balance_content(event: dict) -> NotificationContent | None:
    payload = event["payload"]
    reason = payload.get("reason")
    asset = payload.get("asset_name")
    amount = amount_text(payload.get("amount"))
    usable = amount_text((payload.get("new") or {}).get("usable_size"))
    entity = {"type": "Asset", "id": str(payload.get("asset_id"))}
    customer_id = int(payload["customer_id"])
    if reason == "DEPOSIT":
        return NotificationContent(
            customer_id,
            "DEPOSIT_RECEIVED",
            "Deposit received",
            f"{amount} {asset} was deposited to your account. Usable balance: {usable} {asset}.",
            Priority.NORMAL,
            Category.BALANCE,
            entity,
        )
    if reason == "WITHDRAW":
        destination = _masked_iban(payload["iban"]) if payload.get("iban") else "your bank account"
        return NotificationContent(
            customer_id,
            "WITHDRAWAL_COMPLETED",
            "Withdrawal sent",
            f"{amount} {asset} was withdrawn to {destination}. Usable balance: {usable} {asset}.",
            Priority.HIGH,
            Category.BALANCE,
            entity,
        )
    if reason == "EXPIRE":
        return NotificationContent(
            customer_id,
            "RESERVATION_EXPIRED",
            "Reservation expired",
            f"A reservation of {amount} {asset} expired and is usable again. Usable balance: {usable} {asset}.",
            Priority.NORMAL,
            Category.BALANCE,
            entity,
        )
    return None  # RESERVE, RELEASE, SETTLE: the order notices already tell the story


def _customer_content(event: dict) -> NotificationContent | None:
    payload = event["payload"]
    customer_id = int(payload["customer_id"])
    entity = {"type": "Customer", "id": str(customer_id)}
    if event["event_type"] == "CustomerCreated":
        return NotificationContent(
            customer_id,
            "WELCOME",
            "Welcome to Brokage",
            f"Hello {payload.get('username')}, your account is ready. Deposit TRY to start trading.",
            Priority.LOW,
            Category.ACCOUNT,
            entity,
        )
    changed = [label for field, label in ACCOUNT_FIELDS.items() if field in (payload.get("changes") or {})]
    if not changed:
        return None
    return NotificationContent(
        customer_id,
        "ACCOUNT_UPDATED",
        "Your account details changed",
        f"Changed: {', '.join(changed)}. If this was not you, contact support at once.",
        Priority.HIGH,
        Category.ACCOUNT,
        entity,
    )


CONTENT_BY_EVENT = {
    "OrderStatusChanged": _order_content,
    "OrderCanceled": _order_content,
    "OrderMatched": _order_content,
    "BalanceChanged": _balance_content,
    "CustomerCreated": _customer_content,
    "CustomerUpdated": _customer_content,
}


def notification_content_for(event: dict) -> NotificationContent | None:
    build = CONTENT_BY_EVENT.get(event["event_type"])
    return build(event) if build else None
