"""`Idempotency-Key` on every mutating API request, stored in Redis (ARCHITECTURE §7).

Same key and same request -> the stored response, replayed. Same key, different request -> 422.
The key is scoped to the caller's credentials and the path, so two users cannot collide. While
the first request is still running, a retry with the same key gets 409 instead of running twice.

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

from brokage.redis import get_redis

HEADER = "HTTP_IDEMPOTENCY_KEY"
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
TTL_SECONDS = 24 * 3600
IN_PROGRESS_TTL_SECONDS = 60
MAX_KEY_LENGTH = 255

logger = logging.getLogger(__name__)


def _caller(request) -> str:
    credentials = request.META.get("HTTP_AUTHORIZATION") or request.COOKIES.get("sessionid") or "anonymous"
    return hashlib.sha256(credentials.encode()).hexdigest()[:32]


def _fingerprint(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(request.get_full_path().encode())
    digest.update(request.body)
    return digest.hexdigest()


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.META.get(HEADER)
        if not key or request.method not in MUTATING or not request.path.startswith("/api/"):
            return self.get_response(request)
        if len(key) > MAX_KEY_LENGTH:
            return JsonResponse({"detail": f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters."}, status=400)
        redis_key = f"brokage:idempotency:{_caller(request)}:{request.path}:{hashlib.sha256(key.encode()).hexdigest()}"
        fingerprint = _fingerprint(request)
        redis = get_redis()
        try:
            claimed = redis.set(
                redis_key,
                json.dumps({"fingerprint": fingerprint, "state": "running"}),
                nx=True,
                ex=IN_PROGRESS_TTL_SECONDS,
            )
            if not claimed:
                return self._replay(redis.get(redis_key), fingerprint)
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
        if response.status_code >= 500 or getattr(response, "streaming", False):
            with contextlib.suppress(RedisError):
                redis.delete(redis_key)  # a server-side failure may be retried with the same key
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
            return JsonResponse({"detail": "A request with this Idempotency-Key just finished; retry."}, status=409)
        stored = json.loads(raw)
        if stored["fingerprint"] != fingerprint:
            return JsonResponse({"detail": "This Idempotency-Key was used with a different request."}, status=422)
        if stored["state"] != "done":
            return JsonResponse({"detail": "A request with this Idempotency-Key is still in progress."}, status=409)
        response = HttpResponse(stored["body"], status=stored["status"], content_type=stored["content_type"])
        response["Idempotent-Replayed"] = "true"
        return response
