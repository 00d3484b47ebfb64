"""The console's pages read at a glance and link to one another."""

import pytest

from audit.documents import audit_database
from audit.partitions import partitions_list
from processor.models import SagaInstance


@pytest.fixture
def trader(desk):
    customer = desk.new_customer(username="alice", email="alice@example.org")
    desk.deposit(customer["id"], "123643.99")
    desk.deposit(customer["id"], "100", asset_name="AAPL")
    response = desk.place(customer["id"], order_side="BUY", size="12.5", price="1500.25")
    return {**customer, "order_id": response.json()["id"]}


def test_the_order_list_names_customers_and_formats_money(trader, admin_console):
    page = admin_console.get("/admin/orders/order/").content.decode()

    assert '<span class="badge badge-ready">order confirmed</span>' in page
    assert f'<a href="/admin/customers/customer/{trader["id"]}/change/"' in page and ">alice</a>" in page
    assert '<span class="num">12.5</span>' in page  # a quantity without trailing zeros
    assert '<span class="num">1,500.25</span>' in page  # TRY at two decimals
    assert '<span class="num">18,753.13</span>' in page  # the amount, 12.5 × 1500.25 = 18753.125 shown rounded
    assert trader["order_id"][:8] in page


@pytest.mark.parametrize("term", ["alice", "ALICE@example", "{id}"])
def test_orders_are_found_by_a_customers_username_email_or_id(trader, desk, admin_console, term):
    other = desk.new_customer(username="bob")
    desk.deposit(other["id"], "1000")
    other_order = desk.place(other["id"], size="1", price="10").json()["id"]

    page = admin_console.get("/admin/orders/order/", {"q": term.format(id=trader["id"])}).content.decode()

    assert trader["order_id"] in page and other_order not in page


def test_the_low_balance_flag_marks_only_low_balances(trader, desk, admin_console):
    # alice's TRY is 123,643.99 with 18,753.125 reserved (healthy); bob's is nearly all reserved.
    bob = desk.new_customer(username="bob")
    desk.deposit(bob["id"], "100")
    desk.place(bob["id"], size="0.95", price="100")

    page = admin_console.get("/admin/assets/asset/").content.decode()

    assert page.count('class="badge badge-low"') == 1
    assert "123,643.99" in page


def test_an_order_links_to_its_records_and_back(trader, admin_console):
    order_page = admin_console.get(f"/admin/orders/order/{trader['order_id']}/change/").content.decode()
    for link in (
        f"/admin/customers/customer/{trader['id']}/change/",
        f"/admin/processor/sagainstance/?q={trader['order_id']}",
        f"/admin/assets/assetreservation/?q={trader['order_id']}",
        f"/admin/notifications/notifications/?entity_id={trader['order_id']}",
        f"/admin/audit/audit_logs/?entity_type=Order&amp;entity_id={trader['order_id']}",
    ):
        assert link in order_page, link
    assert "18753.125" in order_page  # full precision on the detail page

    sagas = admin_console.get(f"/admin/processor/sagainstance/?q={trader['order_id']}").content.decode()
    assert f"/admin/orders/order/{trader['order_id']}/change/" in sagas
    saga_id = SagaInstance.objects.using("processor").get(aggregate_id=trader["order_id"]).saga_id
    assert f"/admin/processor/sagainstance/{saga_id}/change/" in sagas
    saga = admin_console.get(f"/admin/processor/sagainstance/{saga_id}/change/").content.decode()
    assert '<table class="kv">' in saga and "<th>customer_id</th>" in saga
    reservations = admin_console.get(f"/admin/assets/assetreservation/?q={trader['order_id']}").content.decode()
    assert f"/admin/orders/order/{trader['order_id']}/change/" in reservations
    customer = admin_console.get(f"/admin/customers/customer/{trader['id']}/change/").content.decode()
    assert f"/admin/orders/order/?customer_id={trader['id']}" in customer


def test_the_audit_trail_page_filters_the_document_store(trader, admin_console):
    database = audit_database()
    stored = sum(database[p.name].count_documents({"entity_id": trader["order_id"]}) for p in partitions_list(database))
    assert stored >= 1

    by_order = admin_console.get(
        "/admin/audit/audit_logs/", {"entity_type": "Order", "entity_id": trader["order_id"]}
    ).content.decode()
    assert "OrderCreated" in by_order and "CustomerCreated" not in by_order
    by_customer = admin_console.get("/admin/audit/audit_logs/", {"customer_id": trader["id"]}).content.decode()
    assert "BalanceChanged" in by_customer or "AssetReserved" in by_customer
    assert (
        "Nothing matches" in admin_console.get("/admin/audit/audit_logs/", {"action": "NoSuchEvent"}).content.decode()
    )
    future = admin_console.get("/admin/audit/audit_logs/", {"start": "2999-01-01"}).content.decode()
    assert "Nothing matches" in future
    assert admin_console.get("/admin/audit/audit_logs/", {"start": "not-a-date"}).status_code == 200


def test_the_notifications_page_lists_what_customers_were_told(trader, admin_console):
    page = admin_console.get("/admin/notifications/notifications/", {"customer_id": trader["id"]}).content.decode()
    assert "Nothing matches" not in page
    assert f"/admin/orders/order/{trader['order_id']}/change/" in page


def test_the_console_is_named_and_keeps_its_machinery_apart(admin_console):
    index = admin_console.get("/admin/").content.decode()

    assert "Brokage back office" in index and "Django administration" not in index
    assert 'href="/api/docs/"' in index
    business, internal = index.split("Internal tables", 1)
    assert "Outbox events" not in business and "Outbox events" in internal
    assert "Audit trail" in business and "Notifications" in business
    assert admin_console.get("/admin/orders/outboxevent/add/").status_code == 403
