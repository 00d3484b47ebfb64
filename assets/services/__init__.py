"""Writes of the assets context: `balances` (how a balance changes; deposits and withdrawals) and
`reservations` (what the order saga asks for). The services other code calls are importable from here."""

from assets.models import QUOTE_ASSET
from assets.services.balances import InsufficientBalance, asset_deposit, asset_withdraw, iban_validated, positive_money
from assets.services.reservations import (
    ReservationOutcome,
    reservation_create,
    reservation_release,
    reservation_settle,
    reservation_ttl,
)

__all__ = [
    "QUOTE_ASSET",
    "InsufficientBalance",
    "ReservationOutcome",
    "asset_deposit",
    "asset_withdraw",
    "iban_validated",
    "positive_money",
    "reservation_create",
    "reservation_release",
    "reservation_settle",
    "reservation_ttl",
]
