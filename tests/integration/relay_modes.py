"""The relay modes as the integration tier runs them: the wiring each mode's processes get at start-up.

The session's default (tests/conftest.py) is the eager relay, in-line after commit. `relay_thread`
gives this process a relay thread, as the web and consumer processes have on `thread`;
`relay_workers` is `celery`: the writers' sessions notify (the connection option the settings add in
that mode) and an `OutboxListener` per context, the thread a relay worker runs, LISTENs for them.
Each overrides settings: enter it after a test's `settings` fixture changes, so they unwind in order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.conf import settings
from django.db import connections
from django.test import override_settings

from brokage.models import publishing_contexts
from brokage.relay_listen import OutboxListener
from brokage.relay_notify import NOTIFY_CONNECTION_OPTION
from brokage.relay_thread import relay_thread_stop
from tests.conftest import wait_until


@contextlib.contextmanager
def relay_thread() -> Iterator[None]:
    with override_settings(CELERY_TASK_ALWAYS_EAGER=False, OUTBOX_RELAY_MODE="thread"):
        try:
            yield
        finally:
            relay_thread_stop()


@contextlib.contextmanager
def notifying_sessions() -> Iterator[None]:
    """Mode celery for the writers of this process: their sessions carry the option that makes the
    outbox's trigger NOTIFY (connections opened from here on; the open ones are closed)."""
    changed = []
    for database in settings.DATABASES.values():
        if database["ENGINE"] == "django.db.backends.postgresql":
            options = database.setdefault("OPTIONS", {})
            changed.append((options, options.get("options")))
            options["options"] = NOTIFY_CONNECTION_OPTION
    connections.close_all()
    try:
        with override_settings(CELERY_TASK_ALWAYS_EAGER=False, OUTBOX_RELAY_MODE="celery", OUTBOX_RELAY_WAKE="notify"):
            yield
    finally:
        for options, before in changed:
            if before is None:
                options.pop("options", None)
            else:
                options["options"] = before
        connections.close_all()


def listener_started(context: str) -> OutboxListener:
    """A relay worker's listener for `context`, once it LISTENs and its first drain is done."""
    listener = OutboxListener(context).start()
    wait_until(lambda: listener.listening.is_set() and listener.drains >= 1, message=f"{context}'s relay listening")
    return listener


@contextlib.contextmanager
def relay_workers(contexts=None) -> Iterator[dict[str, OutboxListener]]:
    with notifying_sessions():
        listeners = {context: listener_started(context) for context in contexts or publishing_contexts()}
        try:
            yield listeners
        finally:
            for listener in listeners.values():
                listener.stop()


@contextlib.contextmanager
def relay_mode(mode: str) -> Iterator[None]:
    """`eager` (the session's default), `thread` or `celery`."""
    if mode == "thread":
        with relay_thread():
            yield
    elif mode == "celery":
        with relay_workers():
            yield
    else:
        yield
