"""The brokerage case end to end through the REST API: every context, the saga, exact balances.

On the test profile the whole event chain runs before a request returns, so each step's outcome
is visible at once.
"""

from decimal import Decimal as D

import pytest

from tests.trading.desk import signed_in


def placed(desk, customer_id, **fields) -> dict:
    response = desk.place(customer_id, **fields)
    assert response.status_code == 201, response.content
    return desk.order(response.json()["id"])


def test_the_brokerage_case(desk, trader):
    cid = trader["id"]
    assert desk.balances(cid) == {"TRY": (D("100000"), D("100000")), "AAPL": (D("100"), D("100"))}

    buy = placed(desk, cid, order_side="BUY", size="10", price="150")
    assert buy["status"] == "ORDER_CONFIRMED"
    assert desk.balances(cid)["TRY"] == (D("100000"), D("98500"))
    desk.assert_invariant(cid)

    sell = placed(desk, cid, order_side="SELL", size="5", price="155")
    assert sell["status"] == "ORDER_CONFIRMED"
    assert desk.balances(cid)["AAPL"] == (D("100"), D("95"))
    desk.assert_invariant(cid)

    # Beyond the balance, beyond the holdings: rejected with a reason, nothing moves.
    before = desk.balances(cid)
    too_big_buy = placed(desk, cid, order_side="BUY", size="1000", price="150")
    too_big_sell = placed(desk, cid, order_side="SELL", size="96", price="155")
    for rejected in (too_big_buy, too_big_sell):
        assert rejected["status"] == "REJECTED"
        assert rejected["rejection_reason"]
    assert desk.balances(cid) == before
    desk.assert_invariant(cid)

    # Cancel releases exactly what was reserved.
    extra = placed(desk, cid, order_side="BUY", size="3", price="200.25")
    assert desk.balances(cid)["TRY"] == (D("100000"), D("97899.25"))
    canceled = desk.cancel(extra["id"])
    assert canceled.status_code == 200, canceled.content
    assert desk.order(extra["id"])["status"] == "CANCELED"
    assert desk.balances(cid)["TRY"] == (D("100000"), D("98500"))
    desk.assert_invariant(cid)

    # Matching a BUY 2 @ 100 (the BUY 10 @ 150 and the SELL 5 stay open).
    small_buy = placed(desk, cid, order_side="BUY", size="2", price="100")
    assert desk.match(small_buy["id"]).status_code == 200
    assert desk.order(small_buy["id"])["status"] == "MATCHED"
    assert desk.balances(cid) == {"TRY": (D("99800"), D("98300")), "AAPL": (D("102"), D("97"))}
    desk.assert_invariant(cid)

    # Matching the SELL 5 @ 155 moves the money back: TRY up by 775, AAPL size down by 5.
    assert desk.match(sell["id"]).status_code == 200
    assert desk.order(sell["id"])["status"] == "MATCHED"
    assert desk.balances(cid) == {"TRY": (D("100575"), D("99075")), "AAPL": (D("97"), D("97"))}
    desk.assert_invariant(cid)

    # Terminal orders can be neither matched nor canceled again, and nothing moves.
    before = desk.balances(cid)
    for terminal in (small_buy, sell, extra, too_big_buy):
        assert desk.match(terminal["id"]).status_code == 409
        assert desk.cancel(terminal["id"]).status_code == 409
    assert desk.balances(cid) == before
    desk.assert_invariant(cid)

    # The BUY 10 @ 150 is still open and still holds exactly its reservation.
    assert desk.order(buy["id"])["status"] == "ORDER_CONFIRMED"
    assert before["TRY"][0] - before["TRY"][1] == D("1500")


def test_an_order_for_an_asset_the_customer_does_not_hold_is_rejected(desk):
    customer = desk.new_customer()
    desk.deposit(customer["id"], "1000")

    sell = placed(desk, customer["id"], order_side="SELL", asset_name="MSFT", size="1", price="10")
    assert sell["status"] == "REJECTED"
    assert sell["rejection_reason"]
    assert desk.balances(customer["id"]) == {"TRY": (D("1000"), D("1000"))}


def test_a_customer_trades_for_itself_with_its_own_token(desk, trader):
    own = signed_in(trader["username"], trader["password"])
    response = desk.place(trader["id"], client=own, order_side="BUY", size="1", price="99.99")
    assert response.status_code == 201, response.content
    assert desk.order(response.json()["id"])["status"] == "ORDER_CONFIRMED"
    assert desk.balances(trader["id"])["TRY"] == (D("100000"), D("99900.01"))
    desk.assert_invariant(trader["id"])


@pytest.mark.parametrize(
    "side,size,price",
    [("BUY", "1.123456789012345678901", "1"), ("BUY", "-1", "150"), ("SELL", "1", "abc"), ("BUY", "1" * 60, "1")],
)
def test_malformed_orders_are_400_and_move_nothing(desk, trader, side, size, price):
    before = desk.balances(trader["id"])
    response = desk.place(trader["id"], order_side=side, size=size, price=price)
    assert response.status_code == 400, response.content
    assert desk.balances(trader["id"]) == before
