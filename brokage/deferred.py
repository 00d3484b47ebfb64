"""Waiting for something without holding a server thread (`Prefer: wait`).

A synchronous Django view that waits (for an order's saga to settle, say) keeps its thread asleep;
under an ASGI server, sync views share a small thread pool, so a few waiting clients stall the API
for everyone. Here the view does its work and returns at once, naming an asynchronous *waiter*
(`defer_response`); `DeferredResponseMiddleware`, the outermost ASGI layer, holds that response,
awaits the waiter on the event loop (threads are borrowed only for each short poll) and sends
the body the waiter returns instead. The hand-over travels as an internal response header that
never leaves the process.

Under a WSGI server (`runserver`, the bench's granian in WSGI mode) there is no event loop to
wait on: `defer_response` answers False and the view waits as it always did.

A context registers its waiters by name (`register_waiter`); the kernel knows none of them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

HEADER = b"x-brokage-deferred"
SCOPE_KEY = "brokage.deferred"

Waiter = Callable[[str, float], Awaitable[bytes | None]]
_waiters: dict[str, Waiter] = {}


def register_waiter(name: str, waiter: Waiter) -> None:
    """`waiter(argument, seconds)` returns the new response body once it stops waiting (None: keep the old)."""
    _waiters[name] = waiter


def defer_response(request, response, *, waiter: str, argument: str, seconds: float) -> bool:
    """Let `waiter` finish `response` asynchronously, if this request came through the ASGI layer."""
    scope = getattr(request, "scope", None) or getattr(getattr(request, "_request", None), "scope", None)
    if not scope or not scope.get(SCOPE_KEY) or waiter not in _waiters:
        return False
    response[HEADER.decode()] = f"{waiter} {seconds:g} {argument}"
    return True


class DeferredResponseMiddleware:
    """ASGI middleware: finishes responses a view deferred (see the module docstring)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = {**scope, SCOPE_KEY: True}
        held: dict = {}

        async def hold_if_deferred(message) -> None:
            if message["type"] == "http.response.start":
                deferral = next((value for name, value in message.get("headers", []) if name.lower() == HEADER), None)
                if deferral is None:
                    await send(message)
                    return
                held.update(start=message, deferral=deferral.decode("latin-1"), body=[])
                return
            if message["type"] == "http.response.body" and "start" in held:
                held["body"].append(message.get("body", b""))
                if not message.get("more_body", False):
                    await _finish(send, held)
                return
            await send(message)

        await self.app(scope, receive, hold_if_deferred)


async def _finish(send, held: dict) -> None:
    name, seconds, argument = held["deferral"].split(" ", 2)
    body = b"".join(held["body"])
    try:
        body = await _waiters[name](argument, float(seconds)) or body
    except Exception:  # the answer already exists; a failed wait must not turn it into an error
        logger.exception("a deferred wait failed; answering without it", extra={"waiter": name})
    headers = [
        (key, str(len(body)).encode() if key.lower() == b"content-length" else value)
        for key, value in held["start"].get("headers", [])
        if key.lower() != HEADER
    ]
    await send({**held["start"], "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
