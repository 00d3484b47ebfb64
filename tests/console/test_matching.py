"""Matching in the console: reviewed first, one path with the API, a trail afterwards."""

from decimal import Decimal as D

from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model

from audit.documents import audit_database
from audit.partitions import partitions_list
from orders.models import Order


def confirmed(desk, customer_id, **fields) -> dict:
    response = desk.place(customer_id, **fields)
    assert response.status_code == 201, response.content
    order = desk.order(response.json()["id"])
    assert order["status"] == "ORDER_CONFIRMED"
    return order


def funded_customer(desk, tier="STANDARD") -> dict:
    customer = desk.new_customer(tier=tier)
    desk.deposit(customer["id"], "100000")
    desk.deposit(customer["id"], "100", asset_name="AAPL")
    return customer


def test_match_selected_reviews_then_matches_in_queue_order_and_leaves_a_trail(desk, admin_console):
    standard = funded_customer(desk)
    vip = funded_customer(desk, tier="VIP")
    standard_buy = confirmed(desk, standard["id"], order_side="BUY", size="10", price="150")
    vip_sell = confirmed(desk, vip["id"], order_side="SELL", size="5", price="155")
    vip_buy = confirmed(desk, vip["id"], order_side="BUY", size="2", price="1000")
    selected = [standard_buy["id"], vip_sell["id"], vip_buy["id"]]

    review = admin_console.post("/admin/orders/order/", {"action": "match_selected", "_selected_action": selected})

    page = review.content.decode()
    # Every order with its customer, side, size, price, amount and the balances it moves, and totals.
    assert vip["username"] in page and standard["username"] in page
    assert "AAPL +10, TRY −1,500.00" in page
    assert "AAPL −5, TRY +775.00" in page
    assert "Buyers pay 3,500.00 TRY · sellers receive 775.00 TRY" in page
    # In the matching queue's order: VIP before STANDARD, BUY before SELL, then best price.
    assert page.index(vip_buy["id"][:8]) < page.index(vip_sell["id"][:8]) < page.index(standard_buy["id"][:8])
    assert all(desk.order(order_id)["status"] == "ORDER_CONFIRMED" for order_id in selected)

    result = admin_console.post("/admin/orders/order/match/", {"order_ids": selected, "confirm": "yes"})

    assert "Matched 3 of 3 orders" in result.content.decode()
    assert [desk.order(order_id)["status"] for order_id in selected] == ["MATCHED"] * 3
    assert desk.balances(standard["id"]) == {"TRY": (D("98500"), D("98500")), "AAPL": (D("110"), D("110"))}
    matched_in = list(Order.objects.filter(pk__in=selected).order_by("updated_at").values_list("id", flat=True))
    assert [str(order_id) for order_id in matched_in] == [vip_buy["id"], vip_sell["id"], standard_buy["id"]]

    employee = get_user_model().objects.get(username="desk-admin")
    history = admin_console.get(f"/admin/orders/order/{vip_buy['id']}/history/").content.decode()
    assert "Matched (ORDER_CONFIRMED → MATCHED) after review." in history
    assert LogEntry.objects.filter(user=employee, object_id=vip_buy["id"]).count() == 1
    database = audit_database()
    [audit] = [
        entry
        for partition in partitions_list(database)
        for entry in database[partition.name].find({"entity_id": vip_buy["id"], "action": "OrderMatched"})
    ]
    assert audit["user_id"] == employee.pk


def test_the_result_page_says_what_was_skipped_and_why(desk, admin_console):
    customer = funded_customer(desk)
    matchable = confirmed(desk, customer["id"], size="1", price="10")
    already = confirmed(desk, customer["id"], size="1", price="11")
    assert desk.match(already["id"]).status_code == 200  # matched through the API meanwhile

    result = admin_console.post(
        "/admin/orders/order/match/", {"order_ids": [matchable["id"], already["id"], "not-an-id"], "confirm": "yes"}
    )

    page = result.content.decode()
    assert "Matched 1 of 3 orders" in page
    assert "It is MATCHED; only ORDER_CONFIRMED orders can be matched." in page
    assert "Not found, or not an order of your customers." in page
    assert f'href="/admin/orders/order/{already["id"]}/change/"' in page
    assert desk.order(matchable["id"])["status"] == "MATCHED"


def test_match_next_n_goes_through_the_same_review(desk, admin_console):
    standard = funded_customer(desk)
    vip = funded_customer(desk, tier="VIP")
    standard_order = confirmed(desk, standard["id"], size="1", price="200")
    vip_order = confirmed(desk, vip["id"], size="1", price="100")

    handed = admin_console.post("/admin/processor/matchingqueueentry/match-next/", {"count": "1"}).content.decode()
    assert f'value="{vip_order["id"]}"' in handed and standard_order["id"] not in handed
    review = admin_console.post("/admin/orders/order/match/", {"order_ids": [vip_order["id"]]}).content.decode()
    assert "Yes, match 1 order" in review
    assert desk.order(vip_order["id"])["status"] == "ORDER_CONFIRMED"

    admin_console.post("/admin/orders/order/match/", {"order_ids": [vip_order["id"]], "confirm": "yes"})

    assert desk.order(vip_order["id"])["status"] == "MATCHED"
    assert desk.order(standard_order["id"])["status"] == "ORDER_CONFIRMED"
    assert desk.balances(vip["id"])["TRY"] == (D("99900"), D("99900"))
    queue = admin_console.get("/admin/processor/matchingqueueentry/").content.decode()
    assert vip_order["id"] not in queue and standard_order["id"] in queue
    assert LogEntry.objects.filter(object_id=vip_order["id"]).exists()
