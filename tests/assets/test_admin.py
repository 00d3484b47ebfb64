"""The employees' console shows balances and reservations but cannot change them."""

import pytest

from assets.models import Asset
from tests.assets.conftest import deliver_to_assets, deposit, reserve_command
from tests.assets.factories import AssetFactory, PersonFactory


@pytest.fixture
def admin_client(client):
    client.force_login(PersonFactory(role="ADMIN", is_staff=True, is_superuser=True))
    return client


def test_balances_are_listed_and_searchable_by_customer(admin_client, customer_id):
    deposit(customer_id, "100000")
    AssetFactory(customer_id=customer_id + 1000, asset_name="AAPL", size=5)

    page = admin_client.get(f"/admin/assets/asset/?q={customer_id}")
    by_name = admin_client.get("/admin/assets/asset/?asset_name=AAPL")

    assert page.status_code == 200 and page.context["cl"].result_count == 1
    assert by_name.context["cl"].result_count == 1


def test_low_balance_rows_are_one_filter_away(admin_client):
    low = AssetFactory(size=1000, usable_size=50)
    AssetFactory(size=1000, usable_size=500)

    page = admin_client.get("/admin/assets/asset/?low_balance=yes")

    assert page.status_code == 200
    assert [asset.id for asset in page.context["cl"].result_list] == [low.id]


def test_reservations_filter_by_status_and_search_by_order(admin_client, customer_id):
    deposit(customer_id, "100000")
    command = reserve_command(customer_id)
    deliver_to_assets(command)
    deliver_to_assets(reserve_command(customer_id))

    active = admin_client.get("/admin/assets/assetreservation/?status__exact=ACTIVE")
    found = admin_client.get(f"/admin/assets/assetreservation/?q={command['payload']['order_id']}")
    nonsense = admin_client.get("/admin/assets/assetreservation/?q=not-a-uuid")

    assert active.context["cl"].result_count == 2
    assert found.context["cl"].result_count == 1
    assert nonsense.status_code == 200


def test_nothing_can_be_added_changed_or_deleted(admin_client):
    asset = AssetFactory(size=10)

    assert admin_client.get("/admin/assets/asset/add/").status_code == 403
    detail = admin_client.get(f"/admin/assets/asset/{asset.pk}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    admin_client.post(f"/admin/assets/asset/{asset.pk}/change/", {"size": "999", "usable_size": "999"})
    assert admin_client.post(f"/admin/assets/asset/{asset.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Asset.objects.using("assets").get(pk=asset.pk).size == 10
