"""`manage.py reconcile` on real PostgreSQL, FerretDB, Redis and Kafka: clean after a few orders
carried by the saga (every context's consumers running, the audit trail and notifications included),
then exit status 1 naming the customer whose balance was changed behind the system's back."""

import json
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections

from brokage.consumer_runner import ensure_topics
from brokage.consumers import consuming_contexts, topics_for
from tests.conftest import wait_until
from tests.integration.test_saga import TIMEOUT, RunningConsumer, deposited, placed, settled
from tests.trading.desk import Desk

pytestmark = pytest.mark.integration


@pytest.fixture
def desk(settings) -> Desk:
    settings.KAFKA_TOPIC_PREFIX = f"test{uuid.uuid4().hex[:8]}.brokage."
    # Every topic first: a consumer that subscribes while one is still being created would not see
    # it until its next metadata refresh, minutes later (the audit trail reads them all).
    ensure_topics(sorted({topic for context in consuming_contexts() for topic in topics_for(context)}))
    running = [RunningConsumer(context) for context in consuming_contexts()]
    yield Desk()
    for consumer in running:
        consumer.stop()


def reconciled() -> tuple[int, dict]:
    out = StringIO()
    try:
        call_command("reconcile", "--json", "--settle-seconds", "0", stdout=out)
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    return status, json.loads(out.getvalue())


def test_reconcile_is_clean_after_trading_and_names_a_tampered_balance(desk):
    trader = desk.new_customer()
    customer_id = trader["id"]
    deposited(desk, customer_id, "100000")
    deposited(desk, customer_id, "100", asset_name="AAPL")
    bought = placed(desk, customer_id, order_side="BUY", size="10", price="150", status="ORDER_CONFIRMED")
    assert desk.match(bought["id"]).status_code == 200
    settled(desk, bought["id"], "MATCHED")
    canceled = placed(desk, customer_id, order_side="SELL", size="5", price="155", status="ORDER_CONFIRMED")
    assert desk.cancel(canceled["id"]).status_code == 200
    placed(desk, customer_id, order_side="BUY", size="1000", price="150", status="REJECTED")

    # Clean once the last events have been settled, audited and notified.
    status, report = wait_until(
        lambda: (result := reconciled())[0] == 0 and result,
        timeout=TIMEOUT,
        interval=1.0,
        message="a clean reconciliation",
    )
    assert report["ok"] and report["counts"]["orders"] == 3 and report["counts"]["audit_entries"] > 0

    with connections["assets"].cursor() as cursor:
        cursor.execute(
            "UPDATE assets SET size = size + 1 WHERE customer_id = %s AND asset_name = 'TRY' RETURNING id",
            [customer_id],
        )
        (asset_id,) = cursor.fetchone()

    status, report = reconciled()

    assert status == 1 and not report["ok"]
    named = {(d["check"], d["ids"]["customer_id"], d["ids"]["asset_id"]) for d in report["discrepancies"]}
    assert ("balance_ledger_total", customer_id, asset_id) in named
    assert ("balance_reserved", customer_id, asset_id) in named
