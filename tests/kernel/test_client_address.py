"""The client address django-axes records: a real IP address or nothing, never a placeholder that an
IP address column on PostgreSQL refuses (a management command signing in has no socket)."""

from django.http import HttpRequest

from brokage.clientip import client_ip_address


def request_from(remote_addr: str | None) -> HttpRequest:
    request = HttpRequest()
    if remote_addr is not None:
        request.META["REMOTE_ADDR"] = remote_addr
    return request


def test_a_request_from_a_socket_is_recorded_with_its_address():
    assert client_ip_address(request_from("203.0.113.7")) == "203.0.113.7"
    assert client_ip_address(request_from("::1")) == "::1"


def test_a_request_without_a_peer_is_recorded_without_an_address():
    assert client_ip_address(request_from(None)) is None
    assert client_ip_address(request_from("not-an-address")) is None
