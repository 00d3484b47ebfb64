"""Correlation ids and structured JSON logs.

A request's correlation id (the `X-Correlation-ID` header, or a new one) is kept in a context
variable; `build_envelope` stamps it on every event the request causes, and consumers restore it
while they handle that event, so one id follows a request through every context.

Each request leaves exactly one access line (logger `brokage.access`), written while its
correlation id is current, so it carries the id the client sent. The servers' own access loggers
are silenced in the settings.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime

_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)

CORRELATION_HEADER = "HTTP_X_CORRELATION_ID"
access_logger = logging.getLogger("brokage.access")


def current_correlation_id() -> str | None:
    return _correlation_id.get()


@contextmanager
def correlation(correlation_id: str | None):
    token = _correlation_id.set(correlation_id)
    try:
        yield
    finally:
        _correlation_id.reset(token)


class CorrelationIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get(CORRELATION_HEADER, "")
        correlation_id = incoming if _looks_like_id(incoming) else str(uuid.uuid4())
        request.correlation_id = correlation_id
        started = time.perf_counter()
        with correlation(correlation_id):
            response = self.get_response(request)
            _access_line(request, response, started)
        response["X-Correlation-ID"] = correlation_id
        return response


def _access_line(request, response, started: float) -> None:
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    user = getattr(request, "user", None)
    access_logger.info(
        "%s %s %s %.1f ms",
        request.method,
        request.path,
        response.status_code,
        duration_ms,
        extra={
            "method": request.method,
            "path": request.path,
            "status_code": response.status_code,
            "duration_ms": duration_ms,
            "user_id": user.pk if getattr(user, "is_authenticated", False) else None,
        },
    )


def _looks_like_id(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c.isalnum() or c in "-_." for c in value)


def _install_record_factory() -> None:
    """Stamp the current correlation id on every log record when it is created.

    A handler filter would only cover the handlers configured with it (and runs later, possibly in
    another thread for queued handlers); stamping at creation reaches every handler, caplog included.
    So never pass `correlation_id` in `extra=`: use `with correlation(...)`.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "stamps_correlation_id", False):
        return

    def record_with_correlation_id(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.correlation_id = current_correlation_id()
        return record

    record_with_correlation_id.stamps_correlation_id = True
    logging.setLogRecordFactory(record_with_correlation_id)


_install_record_factory()


class CorrelationIdFilter(logging.Filter):
    """Kept for logging configurations that name it; records made elsewhere get the id here."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "correlation_id"):
            record.correlation_id = current_correlation_id()
        return True


_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "correlation_id"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, correlation id and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", None),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def logging_config(*, level: str) -> dict:
    """Django's LOGGING: JSON lines with the correlation id, one access line per request (and not the
    servers' own), everything at `level`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"correlation": {"()": "brokage.observability.CorrelationIdFilter"}},
        "formatters": {"json": {"()": "brokage.observability.JsonFormatter"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["correlation"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's own console handler would print its records a second time, unformatted.
            "django": {"level": "INFO"},
            # One access line per request is brokage.access's (with the correlation id); the servers'
            # lines and Django's 4xx warnings would repeat it. 5xx keep their traceback (django.request).
            "django.server": {"level": "CRITICAL"},
            "django.channels.server": {"level": "CRITICAL"},
            "django.request": {"level": "ERROR"},
            "celery.app.trace": {"level": "WARNING"},  # "Task ... succeeded" for every task
            "kafka": {"level": "WARNING"},
        },
    }
