"""Per-tier API rate limits (429 when a tier's requests per minute are used up).

`TierRateThrottle` is every API view's default throttle (`REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]`).
A signed-in user may make `user.rate_limit_per_minute` requests per fixed minute (the customers
context exposes its tier's limit under that name, so the kernel imports no context); anonymous
callers get `DEFAULT_THROTTLE_RATES["anonymous"]` per client IP address (`brokage.clientip`: a
forged `X-Forwarded-For` counts only behind configured proxies). Employees (ADMIN, BROKER) are not
customers of a tier: they get `RATE_LIMIT_STAFF`.

A request is counted by INCR and EXPIRE of its window's counter in one MULTI. For a bearer token
that is the Redis round trip its authentication makes anyway (`brokage.authentication` reads the
person's last-change marker in the same MULTI and hands the count on as `CountedRequest`); other
requests (session, anonymous) are counted here. So every authenticated API request is counted,
including one a permission check then refuses and, for a token authenticated by its claims, one
answered with an `Idempotency-Key`'s stored response (its count rides on the key's claim). The
throttle puts `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix time the
window ends) on the view's response headers, which DRF copies onto every response of that view,
the 429 included (DRF adds its `Retry-After`); a request refused before the throttle runs gets no
such headers.

If Redis cannot be reached the request is let through: a rate limiter must not take the API down.
`RATE_LIMIT_ENABLED=0` turns the limits off.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from redis.exceptions import RedisError
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from brokage.auth import Role, principal_of
from brokage.clientip import client_ip
from brokage.redis import get_redis

logger = logging.getLogger(__name__)

KEY = "brokage:ratelimit:{subject}:{window_seconds}:{window_index}"
ANONYMOUS_SCOPE = "anonymous"
DEFAULT_ANONYMOUS_RATE = "300/min"
DEFAULT_STAFF_RATE = "6000/min"
STAFF_ROLES = frozenset({Role.ADMIN, Role.BROKER})
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """`"300/min"` -> (300, 60): requests per window, window length in seconds."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period.strip()[:1].lower()]


# A signed-in user's window: their tier's limit is per minute.
USER_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class CountedRequest:
    """A request already counted in its window (by the Redis round trip of its authentication)."""

    subject: str
    window_index: int
    count: int
    at: float


def user_subject(user_id) -> str:
    return f"user:{user_id}"


def rate_limit_count(pipeline, subject: str, *, window_seconds: int) -> tuple[int, float]:
    """Queue the INCR and EXPIRE that count one request of `subject` on `pipeline` (a MULTI);
    returns the window's index and the time it was taken. The INCR's reply is the count."""
    now = time.time()
    window_index = int(now // window_seconds)
    key = KEY.format(subject=subject, window_seconds=window_seconds, window_index=window_index)
    pipeline.incr(key)
    pipeline.expire(key, window_seconds + 1)
    return window_index, now


def rate_limit_verdict(count: int, *, limit: int, window_index: int, window_seconds: int, now: float) -> dict:
    """What the headers report for the `count`-th request of a window."""
    reset_at = (window_index + 1) * window_seconds
    return {
        "allowed": count <= limit,
        "limit": limit,
        "remaining": max(0, limit - count),
        "reset_at": reset_at,
        "retry_after": max(1, math.ceil(reset_at - now)),
    }


def rate_limit_hit(subject: str, *, limit: int, window_seconds: int) -> dict:
    """Count one request of `subject` in the current fixed window; returns what the headers report."""
    pipeline = get_redis().pipeline(transaction=True)
    window_index, now = rate_limit_count(pipeline, subject, window_seconds=window_seconds)
    count, _ = pipeline.execute()
    return rate_limit_verdict(count, limit=limit, window_index=window_index, window_seconds=window_seconds, now=now)


class TierRateThrottle(BaseThrottle):
    """The signed-in user's tier limit per minute, or the anonymous limit per IP address."""

    def __init__(self) -> None:
        self.retry_after: int | None = None

    def allow_request(self, request, view) -> bool:
        if not getattr(settings, "RATE_LIMIT_ENABLED", True):
            return True
        user = getattr(request, "user", None)
        signed_in = getattr(user, "is_authenticated", False)
        per_minute = getattr(user, "rate_limit_per_minute", None) if signed_in else None
        if signed_in and principal_of(user).role in STAFF_ROLES:
            limit, window_seconds = parse_rate(getattr(settings, "RATE_LIMIT_STAFF", DEFAULT_STAFF_RATE))
            subject = user_subject(user.pk)
        elif per_minute is not None:
            subject, limit, window_seconds = user_subject(user.pk), int(per_minute), USER_WINDOW_SECONDS
        else:
            rate = api_settings.DEFAULT_THROTTLE_RATES.get(ANONYMOUS_SCOPE) or DEFAULT_ANONYMOUS_RATE
            limit, window_seconds = parse_rate(rate)
            subject = f"ip:{self.get_ident(request)}"
        counted = getattr(user, "counted_request", None)
        try:
            if isinstance(counted, CountedRequest) and counted.subject == subject:
                hit = rate_limit_verdict(
                    counted.count,
                    limit=limit,
                    window_index=counted.window_index,
                    window_seconds=window_seconds,
                    now=counted.at,
                )
            else:
                hit = rate_limit_hit(subject, limit=limit, window_seconds=window_seconds)
        except RedisError:
            logger.warning("rate limit not checked: Redis unavailable", exc_info=True)
            return True
        headers = getattr(view, "headers", None)
        if isinstance(headers, dict):
            headers["X-RateLimit-Limit"] = str(hit["limit"])
            headers["X-RateLimit-Remaining"] = str(hit["remaining"])
            headers["X-RateLimit-Reset"] = str(hit["reset_at"])
        self.retry_after = hit["retry_after"]
        return hit["allowed"]

    def get_ident(self, request) -> str:
        return client_ip(request)  # X-Forwarded-For only from the configured proxies

    def wait(self) -> int | None:
        return self.retry_after
