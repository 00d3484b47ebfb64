"""Request telemetry: one document per API request, written off the request path in batches.

`TelemetryMiddleware` (outermost, so it times the whole stack and sees the final status) builds a
small dict and appends it to a bounded in-memory queue: no I/O on the request path. A daemon
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

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable

from django.conf import settings
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


def redact_headers(headers) -> dict[str, str]:
    redacted = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in CREDENTIAL_HEADERS or CREDENTIAL_NAME.search(lowered) or CREDENTIAL_VALUE.match(str(value)):
            redacted[lowered] = REDACTED
        else:
            redacted[lowered] = str(value)[:MAX_HEADER_VALUE]
    return redacted


def route_of(request) -> str | None:
    """The route pattern that served the request (`/api/orders/{order_id}`), never the raw path."""
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return None
    route = match.route.replace("^", "").replace("$", "").replace("/?", "").replace("\\", "")
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)
    route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
    return "/" + route.lstrip("/")


def _response_headers(response) -> dict[str, str]:
    headers = redact_headers(response.headers)
    if getattr(response, "cookies", None):  # Django keeps Set-Cookie apart from the other headers
        headers["set-cookie"] = REDACTED
    return headers


def _user_id(request):
    """The signed-in user, without a session lookup just for telemetry when no one asked who it was."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = None if user._wrapped is empty else user._wrapped
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.pk


def telemetry_record(record: dict) -> None:
    """Queue one record; never blocks and never raises."""
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


def telemetry_flush() -> int:
    """Hand everything queued to the sinks, in batches; returns how many records were written."""
    written = 0
    with _flush_lock:
        while _queue:
            batch = []
            while _queue and len(batch) < settings.TELEMETRY_BATCH_SIZE:
                batch.append(_queue.popleft())
            for sink in list(_sinks):
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
            telemetry_record(
                {
                    "timestamp": timezone.now(),
                    "endpoint": route_of(request),
                    "path": request.path[:512],
                    "method": request.method,
                    "response_time": round(elapsed_ms, 3),
                    "status_code": response.status_code,
                    "user_id": _user_id(request),
                    "correlation_id": getattr(request, "correlation_id", None),
                    "headers": redact_headers(request.headers),
                    "response_headers": _response_headers(response),
                }
            )
        except Exception:  # telemetry must never turn a good response into a 500
            logger.warning("telemetry record failed", exc_info=True)
        return response
