"""How a commit wakes its context's relay worker without a task: PostgreSQL NOTIFY, on a channel per context.

With `OUTBOX_RELAY_MODE = "celery"` and `OUTBOX_RELAY_WAKE = "notify"`, a statement-level trigger on
each context's `outbox_events` runs `pg_notify('brokage_outbox_<context>', '')` after an INSERT.
PostgreSQL folds the identical notifications of one transaction into one and delivers it only when
the transaction commits, so the request path pays no round trip for it and a rolled-back row wakes
nobody. The relay worker LISTENs on the channel (`brokage.relay_listen`).

The trigger fires only in sessions that carry `brokage.outbox_notify=on` (settings pass it as a
connection option in that mode alone): a transaction that NOTIFYs takes a cluster-wide lock from
its commit until its WAL is flushed, so notifying commits do not share a flush with each other, and
the other relay modes must not pay for that.
"""

from __future__ import annotations

from django.db import connections
from django.db.migrations.operations.base import Operation

NOTIFY_SETTING = "brokage.outbox_notify"
# The connection option (libpq `options`) that turns the trigger on for a session.
NOTIFY_CONNECTION_OPTION = f"-c {NOTIFY_SETTING}=on"
TRIGGER_NAME = "outbox_events_notify"
FUNCTION_NAME = "brokage_outbox_notify"


def notify_channel(context: str) -> str:
    """The channel a context's commits notify (contexts may share a database, so one per context)."""
    return f"brokage_outbox_{context}"


def relay_notify(context: str, *, using: str) -> None:
    """NOTIFY `context`'s relay worker on `using`: at commit inside a transaction, at once outside one.

    For the writes the trigger does not see (an UPDATE that puts published rows back in line)."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [notify_channel(context)])


class OutboxNotifyTrigger(Operation):
    """Migration operation: the NOTIFY trigger on a context's `outbox_events` (PostgreSQL only; SQLite
    keeps the eager relay and needs none)."""

    reversible = True
    reduces_to_sql = False

    def __init__(self, context: str) -> None:
        self.context = context

    def deconstruct(self):
        return (f"{self.__class__.__module__}.{self.__class__.__name__}", [], {"context": self.context})

    def describe(self) -> str:
        return f"NOTIFY {notify_channel(self.context)} after inserts into {self.context}'s outbox (PostgreSQL)"

    def state_forwards(self, app_label, state) -> None:
        pass  # no model state: a trigger only

    def _applies(self, app_label, schema_editor, state) -> bool:
        model = state.apps.get_model(app_label, "OutboxEvent")
        return schema_editor.connection.vendor == "postgresql" and self.allow_migrate_model(
            schema_editor.connection.alias, model
        )

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if not self._applies(app_label, schema_editor, to_state):
            return
        table = schema_editor.quote_name(to_state.apps.get_model(app_label, "OutboxEvent")._meta.db_table)
        schema_editor.execute(
            f"CREATE OR REPLACE FUNCTION {FUNCTION_NAME}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN PERFORM pg_notify(TG_ARGV[0], ''); RETURN NULL; END $$"
        )
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER_NAME} ON {table}")
        schema_editor.execute(
            f"CREATE TRIGGER {TRIGGER_NAME} AFTER INSERT ON {table} FOR EACH STATEMENT "
            f"WHEN (current_setting('{NOTIFY_SETTING}', true) = 'on') "
            f"EXECUTE FUNCTION {FUNCTION_NAME}('{notify_channel(self.context)}')"
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if not self._applies(app_label, schema_editor, from_state):
            return
        table = schema_editor.quote_name(from_state.apps.get_model(app_label, "OutboxEvent")._meta.db_table)
        # The function stays: contexts that share a database share it.
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER_NAME} ON {table}")
