"""`Idempotency-Key` on every mutating API request, stored in Redis.

Same key and same request -> the stored response, replayed. Same key, different request -> 422.
A key belongs to a person (the signed-in user, whichever token or session they use; anonymous
callers: their client IP) and to the normalized method and path (`/api/assets/withdraw` and
`/api/assets/withdraw/` are one endpoint), so a fresh token or a trailing slash cannot run a
request twice, and two people cannot collide. While the first request is still running, a retry
with the same key gets 409 (with `Retry-After`) instead of running twice.

Only a completed request's answer is kept: a 2xx, or a final 4xx (invalid input, not found, a
state conflict). What a retry may change is never kept: a 5xx, a 401, a 408, a 429, and any
answer carrying `Retry-After` (a lock held by a concurrent request, `brokage.errors.Contention`).

With Redis unreachable, a request is refused with 503 before it does anything (the key cannot be
claimed); one that already did its work returns its answer even if that answer cannot be stored,
rather than a 500 for a change that was made.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging

from django.http import HttpResponse, JsonResponse
from redis.exceptions import RedisError
from rest_framework.exceptions import AuthenticationFailed

from brokage.authentication import PrincipalRoundTrip, bearer_token, principal_round_trip_for, token_user_id
from brokage.clientip import client_ip
from brokage.redis import get_redis

HEADER = "HTTP_IDEMPOTENCY_KEY"
# Signing in and out changes no business state, and a stored answer would keep tokens in Redis.
EXEMPT_PREFIXES = ("/api/auth/",)
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
TTL_SECONDS = 24 * 3600
IN_PROGRESS_TTL_SECONDS = 60
MAX_KEY_LENGTH = 255
# Answers a retry of the same request may turn into something else.
TRANSIENT_STATUSES = frozenset({401, 408, 429})

logger = logging.getLogger(__name__)


def _person(request) -> tuple[str | None, PrincipalRoundTrip | None]:
    """Whose key it is (None when the request's credentials are not valid: it will be refused), and
    the Redis round trip that will authenticate its bearer token, to be made with the key's claim."""
    try:
        token = bearer_token(request)
        if token is not None:
            return f"user:{token_user_id(token)}", principal_round_trip_for(token)
    except AuthenticationFailed:
        return None, None
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}", None
    return f"ip:{client_ip(request)}", None


def applies_to(path: str) -> bool:
    return path.startswith("/api/") and not path.startswith(EXEMPT_PREFIXES)


def normalized_path(path: str) -> str:
    return path.rstrip("/") or "/"


def _fingerprint(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(normalized_path(request.path).encode())
    digest.update(b"?" + request.META.get("QUERY_STRING", "").encode())
    digest.update(request.body)
    return digest.hexdigest()


def completed(response) -> bool:
    """Whether `response` is the final answer to its request, worth replaying to a retry."""
    status = response.status_code
    if getattr(response, "streaming", False) or response.has_header("Retry-After"):
        return False
    return 200 <= status < 300 or (400 <= status < 500 and status not in TRANSIENT_STATUSES)


class IdempotencyMiddleware:
    """Runs after Django's authentication middleware, so a session's user is known."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.META.get(HEADER)
        if not key or request.method not in MUTATING or not applies_to(request.path):
            return self.get_response(request)
        if len(key) > MAX_KEY_LENGTH:
            return JsonResponse({"detail": f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters."}, status=400)
        person, round_trip = _person(request)
        if person is None:
            return self.get_response(request)  # refused by authentication; nothing to remember
        scope = f"{request.method}:{normalized_path(request.path)}"
        key_digest = hashlib.sha256(key.encode()).hexdigest()
        redis_key = f"brokage:idempotency:{person}:{hashlib.sha256(scope.encode()).hexdigest()[:32]}:{key_digest}"
        fingerprint = _fingerprint(request)
        redis = get_redis()
        try:
            # One round trip: the claim, what the key holds when the claim fails, and the token's
            # authentication (brokage.authentication.PrincipalRoundTrip), left on the request for it.
            pipeline = redis.pipeline(transaction=True)
            pipeline.set(
                redis_key,
                json.dumps({"fingerprint": fingerprint, "state": "running"}),
                nx=True,
                ex=IN_PROGRESS_TTL_SECONDS,
            )
            pipeline.get(redis_key)
            if round_trip is not None:
                round_trip.queue(pipeline)
            claimed, held, *replies = pipeline.execute()
            if round_trip is not None:
                round_trip.read(replies)
                request.principal_round_trip = round_trip
            if not claimed:
                return self._replay(held, fingerprint)
        except RedisError:
            logger.warning("idempotency store unavailable; request refused", exc_info=True)
            response = JsonResponse({"detail": "Service temporarily unavailable; retry."}, status=503)
            response["Retry-After"] = "1"
            return response
        try:
            response = self.get_response(request)
        except BaseException:
            with contextlib.suppress(RedisError):
                redis.delete(redis_key)
            raise
        if not completed(response):
            with contextlib.suppress(RedisError):
                redis.delete(redis_key)  # a retry with the same key may get another answer
            return response
        if hasattr(response, "render") and not getattr(response, "is_rendered", True):
            response.render()
        stored = {
            "fingerprint": fingerprint,
            "state": "done",
            "status": response.status_code,
            "content_type": response.get("Content-Type", "application/json"),
            "body": response.content.decode("utf-8", errors="replace"),
        }
        try:
            redis.set(redis_key, json.dumps(stored), ex=TTL_SECONDS)
        except RedisError:  # the work is done: answer; a retry meanwhile gets 409 until the claim expires
            logger.warning("idempotent response not stored", extra={"path": request.path}, exc_info=True)
        return response

    @staticmethod
    def _replay(raw: bytes | None, fingerprint: str) -> HttpResponse:
        if raw is None:
            return _busy("A request with this Idempotency-Key just finished; retry.")
        stored = json.loads(raw)
        if stored["fingerprint"] != fingerprint:
            return JsonResponse({"detail": "This Idempotency-Key was used with a different request."}, status=422)
        if stored["state"] != "done":
            return _busy("A request with this Idempotency-Key is still in progress.")
        response = HttpResponse(stored["body"], status=stored["status"], content_type=stored["content_type"])
        response["Idempotent-Replayed"] = "true"
        return response


def _busy(detail: str) -> HttpResponse:
    response = JsonResponse({"detail": detail}, status=409)
    response["Retry-After"] = "1"
    return response
