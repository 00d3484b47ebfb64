"""Requests through the ASGI application in-process, as an ASGI server would make them."""

import asyncio
import json
import time

from brokage.asgi import application


async def asgi_call(method: str, path: str, *, token: str, body: dict | None = None, headers=()) -> dict:
    """One HTTP request through the ASGI application, as the server would make it."""
    payload = json.dumps(body).encode() if body is not None else b""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            *[(name.encode(), value.encode()) for name, value in headers],
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    requests = [{"type": "http.request", "body": payload, "more_body": False}]
    never = asyncio.Event()

    async def receive():
        if requests:
            return requests.pop(0)
        await never.wait()
        return {"type": "http.disconnect"}

    answer: dict = {"body": b""}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {name.decode().lower(): value.decode() for name, value in message["headers"]}
        else:
            answer["body"] += message.get("body", b"")

    started = time.monotonic()
    await application(scope, receive, send)
    answer["seconds"] = time.monotonic() - started
    return answer
