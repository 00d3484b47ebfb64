"""Deposits and withdrawals in the console: the API's services and checks, confirmed, then logged."""

from decimal import Decimal as D

from django.contrib.admin.models import LogEntry

from assets.models import Asset

VALID_IBAN = "TR330006100519786457841326"


def test_a_deposit_is_confirmed_then_made_and_logged(desk, admin_console):
    customer = desk.new_customer()
    desk.deposit(customer["id"], "1000")
    form = {"customer_id": customer["id"], "asset_name": "TRY", "amount": "2500.5"}

    confirmation = admin_console.post("/admin/assets/asset/deposit/", form).content.decode()

    assert "Yes, deposit 2,500.50 TRY" in confirmation
    assert "1,000.00 → <strong>3,500.50</strong> TRY" in confirmation
    assert desk.balances(customer["id"]) == {"TRY": (D("1000"), D("1000"))}  # not yet

    done = admin_console.post("/admin/assets/asset/deposit/", {**form, "confirm": "yes"}, follow=True)

    assert desk.balances(customer["id"]) == {"TRY": (D("3500.5"), D("3500.5"))}
    assert "Deposited 2,500.50 TRY." in done.content.decode()
    asset = Asset.objects.get(customer_id=customer["id"], asset_name="TRY")
    assert LogEntry.objects.get(object_id=str(asset.pk)).change_message == "Deposited 2,500.50 TRY."


def test_a_withdrawal_checks_the_iban_and_the_usable_balance(desk, admin_console):
    customer = desk.new_customer()
    desk.deposit(customer["id"], "1000")

    bad_iban = admin_console.post(
        "/admin/assets/asset/withdraw/", {"customer_id": customer["id"], "amount": "10", "iban": "TR00 1234"}
    )
    assert "Not a valid IBAN" in bad_iban.content.decode()

    too_much = {"customer_id": customer["id"], "amount": "5000", "iban": VALID_IBAN, "confirm": "yes"}
    refused = admin_console.post("/admin/assets/asset/withdraw/", too_much).content.decode()
    assert "Insufficient usable TRY" in refused
    assert desk.balances(customer["id"]) == {"TRY": (D("1000"), D("1000"))}

    form = {"customer_id": customer["id"], "amount": "400", "iban": VALID_IBAN}
    assert "Yes, withdraw 400.00 TRY" in admin_console.post("/admin/assets/asset/withdraw/", form).content.decode()
    admin_console.post("/admin/assets/asset/withdraw/", {**form, "confirm": "yes"})

    assert desk.balances(customer["id"]) == {"TRY": (D("600"), D("600"))}
    assert LogEntry.objects.filter(change_message__startswith="Withdrew 400.00 TRY").exists()


def test_a_deposit_of_a_float_like_or_negative_amount_is_refused(desk, admin_console):
    customer = desk.new_customer()
    for amount in ("-5", "1e400", "0.000000001", "abc"):
        page = admin_console.post(
            "/admin/assets/asset/deposit/",
            {"customer_id": customer["id"], "asset_name": "TRY", "amount": amount, "confirm": "yes"},
        )
        assert page.status_code == 200
        assert "errorlist" in page.content.decode()
    assert desk.balances(customer["id"]) == {}


def test_a_deposit_of_an_asset_name_the_api_refuses_is_refused_here_too(desk, admin_console):
    customer = desk.new_customer()
    page = admin_console.post(
        "/admin/assets/asset/deposit/",
        {"customer_id": customer["id"], "asset_name": "NOT A TICKER", "amount": "5", "confirm": "yes"},
    ).content.decode()
    assert "Upper-case letters, digits" in page
    assert desk.balances(customer["id"]) == {}
