"""Request telemetry: one document per API request, written off the request path in batches.

`TelemetryMiddleware` (outermost, so it times the whole stack and sees the final status) takes
the raw values it needs (a few attributes and the header pairs) and appends them to a bounded
in-memory queue: no I/O and no header redaction on the request path; the document is built when
the queue is flushed, off the request's clock (redaction and route formatting). A daemon
thread drains the queue every `TELEMETRY_FLUSH_SECONDS` or as soon as `TELEMETRY_BATCH_SIZE`
records wait, and hands each batch to the registered sink. On the test profile there is no thread:
`telemetry_flush()` drains synchronously so a test can assert on what was written.

The kernel does not know where telemetry is stored: the audit context owns the `telemetry`
collection and registers its writer with `register_sink` (the kernel imports no context). With no
sink registered, batches are dropped. A full queue drops the oldest records rather than slow a request.

Credentials never leave the request: Authorization, Cookie, Set-Cookie, CSRF and proxy credentials,
API keys, and any header whose name or value looks like a secret are stored as "[REDACTED]".
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http.request import HttpHeaders
from django.utils import timezone
from django.utils.functional import SimpleLazyObject, empty

logger = logging.getLogger(__name__)

REDACTED = "[REDACTED]"
CREDENTIAL_HEADERS = {
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-csrftoken",
    "x-csrf-token",
    "x-xsrf-token",
    "x-api-key",
    "x-auth-token",
    "x-amz-security-token",
}
CREDENTIAL_NAME = re.compile(r"auth|token|secret|passw|session|cookie|api[-_]?key|signature|credential", re.I)
CREDENTIAL_VALUE = re.compile(r"^\s*(bearer|basic|digest|token|jwt)\s+\S", re.I)
MAX_HEADER_VALUE = 512

Sink = Callable[[list[dict]], None]
_sinks: list[Sink] = []
_queue: deque[dict] = deque()
_dropped = 0
_flush_lock = threading.Lock()
_wake = threading.Event()
_thread: threading.Thread | None = None
_thread_lock = threading.Lock()


def register_sink(sink: Sink) -> None:
    """`sink(records)` stores a batch of telemetry records; registered once by the owning context."""
    if sink not in _sinks:
        _sinks.append(sink)


@functools.lru_cache(maxsize=1024)
def _is_credential_name(lowered: str) -> bool:
    return lowered in CREDENTIAL_HEADERS or bool(CREDENTIAL_NAME.search(lowered))


def redact_headers(headers) -> dict[str, str]:
    return _redacted(headers.items())


def _redacted(pairs) -> dict[str, str]:
    redacted = {}
    for name, value in pairs:
        lowered = name.lower()
        if _is_credential_name(lowered) or CREDENTIAL_VALUE.match(str(value)):
            redacted[lowered] = REDACTED
        else:
            redacted[lowered] = str(value)[:MAX_HEADER_VALUE]
    return redacted


def route_of(request) -> str | None:
    """The route pattern that served the request (`/api/orders/{order_id}`), never the raw path."""
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return None
    return _route_pattern(match.route)


@functools.lru_cache(maxsize=1024)
def _route_pattern(route: str) -> str:
    route = route.replace("^", "").replace("$", "").replace("/?", "").replace("\\", "")
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)
    route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
    return "/" + route.lstrip("/")


def _request_header_items(request) -> list[tuple[str, str]]:
    """The META entries `request.headers` is made of, as they are (names are parsed at flush time)."""
    return [
        (key, value)
        for key, value in request.META.items()
        if key.startswith(HttpHeaders.HTTP_PREFIX) or key in HttpHeaders.UNPREFIXED_HEADERS
    ]


@dataclass(frozen=True, slots=True)
class _RequestSeen:
    """What the middleware keeps of a request; the telemetry document is made from it at flush time."""

    timestamp: object
    route: str | None
    path: str
    method: str
    response_time: float
    status_code: int
    user_id: object
    correlation_id: str | None
    request_headers: list[tuple[str, str]]  # (META key, value)
    response_headers: list[tuple[str, str]]
    response_sets_cookies: bool

    def document(self) -> dict:
        response_headers = _redacted(self.response_headers)
        if self.response_sets_cookies:  # Django keeps Set-Cookie apart from the other headers
            response_headers["set-cookie"] = REDACTED
        return {
            "timestamp": self.timestamp,
            "endpoint": None if self.route is None else _route_pattern(self.route),
            "path": self.path,
            "method": self.method,
            "response_time": self.response_time,
            "status_code": self.status_code,
            "user_id": self.user_id,
            "correlation_id": self.correlation_id,
            "headers": _redacted((HttpHeaders.parse_header_name(key), value) for key, value in self.request_headers),
            "response_headers": response_headers,
        }


def _user_id(request):
    """The signed-in user, without a session lookup just for telemetry when no one asked who it was."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = None if user._wrapped is empty else user._wrapped
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.pk


def telemetry_record(record: dict | _RequestSeen) -> None:
    """Queue one record (a document, or what a request left to make one of); never blocks or raises."""
    global _dropped
    if len(_queue) >= settings.TELEMETRY_QUEUE_MAX:
        try:
            _queue.popleft()
            _dropped += 1
        except IndexError:
            pass
    _queue.append(record)
    if settings.TELEMETRY_BACKGROUND:
        _ensure_thread()
        if len(_queue) >= settings.TELEMETRY_BATCH_SIZE:
            _wake.set()


def _document(record: dict | _RequestSeen) -> dict | None:
    if not isinstance(record, _RequestSeen):
        return record
    try:
        return record.document()
    except Exception:  # one odd request must not cost the batch
        logger.warning("telemetry record dropped", exc_info=True)
        return None


def telemetry_flush() -> int:
    """Hand everything queued to the sinks, in batches; returns how many records were written."""
    written = 0
    with _flush_lock:
        while _queue:
            batch = []
            while _queue and len(batch) < settings.TELEMETRY_BATCH_SIZE:
                batch.append(_document(_queue.popleft()))
            batch = [document for document in batch if document is not None]
            for sink in list(_sinks) if batch else []:
                try:
                    sink(batch)
                except Exception:  # the store is down: these records are lost, requests are not
                    logger.warning("telemetry batch not written", extra={"records": len(batch)}, exc_info=True)
            written += len(batch)
    return written


def telemetry_discard() -> None:
    """Forget what is queued (tests start from a clean queue)."""
    with _flush_lock:
        _queue.clear()


def _flush_forever() -> None:
    while True:
        _wake.wait(settings.TELEMETRY_FLUSH_SECONDS)
        _wake.clear()
        try:
            telemetry_flush()
        except Exception:  # keep the thread alive whatever a sink does
            logger.exception("telemetry flush failed")


def _ensure_thread() -> None:
    global _thread
    if _thread is not None and _thread.is_alive():
        return
    with _thread_lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_flush_forever, name="telemetry-flush", daemon=True)
            _thread.start()


class TelemetryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.prefixes = tuple(settings.TELEMETRY_PATH_PREFIXES)

    def __call__(self, request):
        if not settings.TELEMETRY_ENABLED or not request.path.startswith(self.prefixes):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        try:
            match = getattr(request, "resolver_match", None)
            telemetry_record(
                _RequestSeen(
                    timestamp=timezone.now(),
                    route=getattr(match, "route", None) or None,
                    path=request.path[:512],
                    method=request.method,
                    response_time=round(elapsed_ms, 3),
                    status_code=response.status_code,
                    user_id=_user_id(request),
                    correlation_id=getattr(request, "correlation_id", None),
                    request_headers=_request_header_items(request),
                    response_headers=list(response.headers.items()),
                    response_sets_cookies=bool(getattr(response, "cookies", None)),
                )
            )
        except Exception:  # telemetry must never turn a good response into a 500
            logger.warning("telemetry record failed", exc_info=True)
        return response
