"""`make faults`' own checks (faults/checks.py) hold a fault's customers to what their orders imply."""

from collections import Counter
from decimal import Decimal as D

import pytest

from faults.checks import check
from faults.load import DEPOSIT_AAPL, DEPOSIT_TRY, Placed

CUSTOMER = 7
BUY = {
    "id": "o-buy",
    "client_order_id": "c-buy",
    "customer_id": CUSTOMER,
    "side": "BUY",
    "size": D("2"),
    "price": D("10"),
}
SELL = {
    "id": "o-sell",
    "client_order_id": "c-sell",
    "customer_id": CUSTOMER,
    "side": "SELL",
    "size": D("3"),
    "price": D("5"),
}
GONE = {
    "id": "o-gone",
    "client_order_id": "c-gone",
    "customer_id": CUSTOMER,
    "side": "BUY",
    "size": D("1"),
    "price": D("1"),
}


class Stores:
    """Each context's store as the suite reads it, for one customer: a matched BUY of 2 at 10, a
    confirmed SELL of 3, a canceled BUY; `balances` what the assets context holds."""

    def __init__(self, *, try_balance, aapl_balance, audit=None) -> None:
        self.try_balance, self.aapl_balance = try_balance, aapl_balance
        self.audit = audit if audit is not None else Counter({"e1": 1, "e2": 1})

    def orders(self, customers):
        return {
            "o-buy": {**BUY, "status": "MATCHED"},
            "o-sell": {**SELL, "status": "ORDER_CONFIRMED"},
            "o-gone": {**GONE, "status": "CANCELED"},
        }

    def reservations(self, customers):
        return [("o-buy", "SETTLED", D("20")), ("o-sell", "ACTIVE", D("3")), ("o-gone", "RELEASED", D("1"))]

    def balances(self, customers):
        return {(CUSTOMER, "TRY"): self.try_balance, (CUSTOMER, "AAPL"): self.aapl_balance}

    def ledger_repeats(self, customers):
        return []

    def events_of(self, order_ids):
        return ["e1", "e2"]

    def audit_entries(self, order_ids):
        return self.audit

    def notifications(self, customers):
        return Counter({("e1", "ORDER_CONFIRMED"): 1})


def placed(order, **told):
    return Placed(
        customer_id=CUSTOMER,
        client_order_id=order["client_order_id"],
        side=order["side"],
        size=order["size"],
        price=order["price"],
        action="keep",
        order_id=order["id"],
        created=True,
        **told,
    )


RIGHT_TRY = (DEPOSIT_TRY - 20, DEPOSIT_TRY - 20)
RIGHT_AAPL = (DEPOSIT_AAPL + 2, DEPOSIT_AAPL + 2 - 3)


def test_balances_that_match_the_orders_are_neither_lost_nor_duplicated():
    findings = check(Stores(try_balance=RIGHT_TRY, aapl_balance=RIGHT_AAPL), [CUSTOMER], [placed(BUY), placed(SELL)])
    assert (findings.lost, findings.duplicated) == ([], [])


@pytest.mark.parametrize(
    ("try_balance", "aapl_balance", "lost", "duplicated"),
    [
        ((DEPOSIT_TRY - 40, DEPOSIT_TRY - 40), (DEPOSIT_AAPL + 4, DEPOSIT_AAPL + 1), 0, 2),  # settled twice
        ((DEPOSIT_TRY, DEPOSIT_TRY), (DEPOSIT_AAPL, DEPOSIT_AAPL - 3), 2, 0),  # the settlement never happened
    ],
)
def test_a_balance_moved_twice_is_duplicated_and_one_never_moved_is_lost(try_balance, aapl_balance, lost, duplicated):
    findings = check(Stores(try_balance=try_balance, aapl_balance=aapl_balance), [CUSTOMER], [placed(BUY)])
    assert (len(findings.lost), len(findings.duplicated)) == (lost, duplicated)


def test_a_201_without_its_order_and_an_event_missing_from_the_audit_trail_are_lost():
    vanished = placed({**GONE, "id": "o-other", "client_order_id": "c-vanished"})
    stores = Stores(try_balance=RIGHT_TRY, aapl_balance=RIGHT_AAPL, audit=Counter({"e1": 2}))
    findings = check(stores, [CUSTOMER], [vanished])
    assert len(findings.lost) == 2  # the order, and event e2 never audited
    assert findings.duplicated == ["audit entry e1 written 2 times"]
