"""One correlation id follows a request into its events and into every consumer that handles them.

An operator searching the JSON logs for the id a client sent (`X-Correlation-ID`) finds the
request, the event it produced, and what each consuming context logged while handling it, even
though the relay and the consumers run later and elsewhere.
"""

import json
import logging

import pytest
from django.apps import apps
from django.test import override_settings

from brokage.consumers import _handlers, handles
from brokage.observability import JsonFormatter, correlation
from brokage.relay import relay_drain
from customers.services import customer_create

probe_logger = logging.getLogger("tests.ops.probe")
CustomerOutbox = apps.get_model("customers", "OutboxEvent")


@pytest.fixture
def logging_consumer():
    """A consuming context that logs while it handles CustomerCreated, as any real handler may."""

    @handles("CustomerCreated", context="correlation_probe")
    def on_customer_created(event):
        probe_logger.info("probe handled %s", event["payload"]["username"])

    yield
    _handlers.pop("correlation_probe", None)


@pytest.fixture
def admin_client(client):
    admin = customer_create(
        username="root", password="s3cret-pass", email="root@example.com", role="ADMIN", is_superuser=True
    )
    client.force_login(admin)
    return client


def handled_records(caplog, username):
    return [r for r in caplog.records if r.name == probe_logger.name and r.getMessage() == f"probe handled {username}"]


@override_settings(CELERY_TASK_ALWAYS_EAGER=False)  # the relay runs after the request, outside it
def test_a_request_s_correlation_id_reaches_its_event_and_the_consumers_logs(admin_client, logging_consumer, caplog):
    response = admin_client.post(
        "/api/customers",
        {"username": "carol", "password": "s3cret-pass", "email": "carol@example.com"},
        content_type="application/json",
        HTTP_X_CORRELATION_ID="abc-123",
    )
    assert response.status_code == 201, response.content
    assert response["X-Correlation-ID"] == "abc-123"

    row = CustomerOutbox.objects.get(event_type="CustomerCreated", payload__payload__username="carol")
    assert row.payload["correlation_id"] == "abc-123"

    with caplog.at_level(logging.INFO):
        assert relay_drain("customers").published >= 1

    (record,) = handled_records(caplog, "carol")
    assert record.correlation_id == "abc-123"
    line = json.loads(JsonFormatter().format(record))
    assert line["correlation_id"] == "abc-123"
    assert line["message"] == "probe handled carol"


def test_a_service_called_outside_a_request_takes_the_surrounding_correlation_id(logging_consumer, caplog):
    with caplog.at_level(logging.INFO), correlation("job-7"):
        customer_create(username="dave", password="s3cret-pass", email="dave@example.com")

    row = CustomerOutbox.objects.get(event_type="CustomerCreated", payload__payload__username="dave")
    assert row.payload["correlation_id"] == "job-7"
    (record,) = handled_records(caplog, "dave")
    assert record.correlation_id == "job-7"


def test_a_request_without_the_header_gets_a_fresh_id_it_can_quote(client):
    response = client.get("/health/live")
    first = response["X-Correlation-ID"]
    assert first
    assert client.get("/health/live")["X-Correlation-ID"] != first


def test_an_unusable_header_is_replaced_not_echoed(client):
    response = client.get("/health/live", HTTP_X_CORRELATION_ID="bad id\nwith newline")
    assert response["X-Correlation-ID"] != "bad id\nwith newline"
    assert " " not in response["X-Correlation-ID"]


class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_every_record_carries_the_id_whatever_handler_receives_it():
    """A file, syslog or error-tracker handler configured without our filter still gets the id."""
    handler = ListHandler()
    isolated = logging.getLogger("tests.ops.isolated")
    isolated.addHandler(handler)
    isolated.propagate = False  # the console handler (which has the filter) never sees these
    try:
        with correlation("abc-123"):
            isolated.warning("inside")
        isolated.warning("outside")
    finally:
        isolated.removeHandler(handler)
        isolated.propagate = True

    inside, outside = handler.records
    assert inside.correlation_id == "abc-123"
    assert outside.correlation_id is None
