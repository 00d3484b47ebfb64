"""The Redis client: real Redis on dev/prod, an in-process fake on the embedded and test profiles.

Idempotency keys, distributed locks, rate-limit counters and relay wake-up flags all go through
`get_redis()`, so the same code runs against both.
"""

import threading

from django.conf import settings

_client = None
_lock = threading.Lock()


def get_redis():
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                if settings.REDIS_BACKEND == "redis":
                    import redis

                    _client = redis.Redis.from_url(
                        settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30
                    )
                else:
                    import fakeredis

                    _client = fakeredis.FakeRedis()
    return _client


def redis_lock(name: str, *, timeout: float = 10.0, blocking_timeout: float = 5.0):
    """A distributed lock (released on exit; expires after `timeout` if its holder dies)."""
    return get_redis().lock(f"brokage:lock:{name}", timeout=timeout, blocking_timeout=blocking_timeout)
