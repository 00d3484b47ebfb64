"""What a production server gets from `brokage.wsgi.application`: the same answer as Django's own
handler, a whole response as one chunk, and the end-of-request housekeeping run once."""

import io

import pytest
from django.core.signals import request_finished
from django.http import StreamingHttpResponse

from brokage import wsgi


def environ_for(path: str) -> dict:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
    }


def served(application, path: str) -> tuple[str, dict, object]:
    started = {}

    def start_response(status, headers, exc_info=None):
        started["status"], started["headers"] = status, dict(headers)

    body = application(environ_for(path), start_response)
    return started["status"], started["headers"], body


@pytest.mark.django_db
def test_a_whole_response_is_one_chunk_with_django_s_status_headers_and_body():
    finished = []

    def count(**_kwargs):
        finished.append(1)

    request_finished.connect(count)
    try:
        status, headers, body = served(wsgi.application, "/health/live")
        assert finished == [1]  # closed here, once: the server's close of a list does nothing more
        django_status, django_headers, django_body = served(wsgi.django_application, "/health/live")
        expected = b"".join(django_body)
        django_body.close()
    finally:
        request_finished.disconnect(count)
    assert isinstance(body, list) and len(body) == 1
    assert (status, body[0]) == (django_status, expected)
    assert headers.keys() == django_headers.keys()
    assert status.startswith("200")


def test_a_streaming_response_is_passed_through_to_be_iterated(monkeypatch):
    stream = StreamingHttpResponse(iter([b"a", b"b"]))

    def django_application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return stream

    monkeypatch.setattr(wsgi, "django_application", django_application)
    _status, _headers, body = served(wsgi.application, "/anything")
    assert body is stream
    assert b"".join(body) == b"ab"
