"""Every API request leaves a telemetry document: route, method, time, status, user; no credentials."""

import pytest
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from brokage.documents import context_database
from brokage.telemetry import REDACTED, TelemetryMiddleware, telemetry_discard, telemetry_flush
from tests.customers.factories import AdminFactory, CustomerFactory


@pytest.fixture(autouse=True)
def _empty_queue():
    telemetry_discard()  # what earlier tests' requests left behind
    yield
    telemetry_discard()


def telemetry():
    return context_database("audit")["telemetry"]


def bearer(user) -> str:
    return f"Bearer {RefreshToken.for_user(user).access_token}"


def test_a_bearer_token_is_recorded_redacted_with_the_route_and_the_user():
    customer = CustomerFactory()
    token = bearer(customer)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=token, HTTP_X_API_KEY="k-123", HTTP_X_TRACE="visible")

    client.get("/api/notifications/unread-count")
    client.get("/api/notifications/some-id/read")  # GET on a POST route: 405
    telemetry_flush()

    [read_count] = list(telemetry().find({"endpoint": "/api/notifications/unread-count"}))
    assert read_count["method"] == "GET"
    assert read_count["status_code"] == 200
    assert read_count["user_id"] == customer.pk
    assert 0 < read_count["response_time"] < 5000
    assert read_count["headers"]["authorization"] == REDACTED
    assert read_count["headers"]["x-api-key"] == REDACTED
    assert read_count["headers"]["x-trace"] == "visible"
    [wrong_method] = list(telemetry().find({"status_code": 405}))
    assert wrong_method["endpoint"] == "/api/notifications/{notification_id}/read"  # the route, not the path
    stored = str(list(telemetry().find({}, {"_id": 0})))
    assert token.split()[1] not in stored


def test_a_session_cookie_csrf_token_and_set_cookie_are_redacted():
    customer = CustomerFactory()
    browser = Client()
    browser.force_login(customer)
    session = browser.cookies["sessionid"].value

    browser.get("/api/notifications", HTTP_X_CSRFTOKEN="csrf-secret", HTTP_PROXY_AUTHORIZATION="Basic Zm9vOmJhcg==")
    telemetry_flush()

    [record] = list(telemetry().find({"endpoint": "/api/notifications"}))
    assert record["user_id"] == customer.pk
    assert record["headers"]["cookie"] == REDACTED
    assert record["headers"]["x-csrftoken"] == REDACTED
    assert record["headers"]["proxy-authorization"] == REDACTED
    assert session not in str(record)
    assert "csrf-secret" not in str(record)


def test_set_cookie_in_a_response_is_recorded_redacted():
    from django.http import JsonResponse
    from django.test import RequestFactory

    def view_setting_a_cookie(request):
        response = JsonResponse({"ok": True})
        response.set_cookie("sessionid", "s3cr3t-session")
        return response

    TelemetryMiddleware(view_setting_a_cookie)(RequestFactory().post("/api/auth/token"))
    telemetry_flush()

    [record] = list(telemetry().find({}))
    assert record["response_headers"]["set-cookie"] == REDACTED
    assert "s3cr3t-session" not in str(record)


def test_admins_read_telemetry_filtered_others_are_refused():
    admin = AdminFactory()
    customer = CustomerFactory()
    as_admin, as_customer = APIClient(), APIClient()
    as_admin.credentials(HTTP_AUTHORIZATION=bearer(admin))
    as_customer.credentials(HTTP_AUTHORIZATION=bearer(customer))
    as_customer.get("/api/notifications")
    as_customer.get("/api/notifications/unread-count")
    telemetry_flush()

    mine = as_admin.get(f"/api/telemetry?user_id={customer.pk}&method=GET").json()
    by_route = as_admin.get("/api/telemetry", {"endpoint": "/api/notifications/unread-count"}).json()
    by_status = as_admin.get("/api/telemetry?status_code=200&start=2000-01-01").json()

    assert mine["count"] == 2
    assert [r["endpoint"] for r in mine["results"]] == ["/api/notifications/unread-count", "/api/notifications"]
    assert by_route["count"] == 1
    assert by_status["count"] == 2
    assert as_customer.get("/api/telemetry").status_code == 403
    assert APIClient().get("/api/telemetry").status_code == 401
    assert as_admin.get("/api/telemetry?status_code=abc").status_code == 400


def test_every_request_is_recorded_once_in_a_batch():
    from django.http import HttpResponse
    from django.test import RequestFactory

    middleware = TelemetryMiddleware(lambda request: HttpResponse("ok"))
    factory = RequestFactory()
    for _ in range(500):
        middleware(factory.get("/api/orders", HTTP_AUTHORIZATION="Bearer abc", HTTP_COOKIE="sessionid=x"))

    assert telemetry_flush() == 500
