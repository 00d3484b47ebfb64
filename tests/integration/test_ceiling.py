"""The benchmark's PostgreSQL ceiling runs on copies of the tables as the migrations leave them.

`make bench` ends with pgbench running the saga as plain SQL on `pg_dump --schema-only` copies of
the contexts' tables; a schema object the copy cannot recreate (the relay's NOTIFY trigger, whose
function is not among the dumped tables) stopped the whole run there, after 25 minutes of load.
"""

import pytest
from django.db import connections

from bench import ceiling

pytestmark = pytest.mark.integration


def test_the_ceiling_measures_the_saga_on_copies_of_the_migrated_tables(django_db_setup, tmp_path):
    sources = {context: connections[context].settings_dict["NAME"] for context in ceiling.CONTEXT_TABLES}
    with connections["orders"].cursor() as cursor:  # the copy's source carries the trigger
        cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'outbox_events_notify'")
        assert cursor.fetchone()[0] == 1

    result = ceiling.measure(clients=2, seconds=2, out=tmp_path, use_cgroups=False, sources=sources, paced_rate=20)

    assert result["saga"]["failed"] == 0
    assert result["saga"]["transactions"] > 0
    assert result["placement"]["transactions"] > 0
    assert result["cpu_ms_per_order"] > 0
    assert result["postgres_settings"]["synchronous_commit"] == "on"
    paced = result["saga_paced"]  # the same saga at the rate the system's cost is measured at
    assert paced["failed"] == 0 and paced["rate"] == 20
    assert 10 <= paced["tps"] <= 30 and paced["cpu_ms_per_order"] > 0


@pytest.mark.django_db(databases=["default", "orders", "assets", "processor"], transaction=True)
def test_the_cost_phase_counts_the_commits_of_each_contexts_database():
    from bench.cost import postgres_work

    before = postgres_work()
    assert set(before) == {"customers", "orders", "assets", "processor"}
    with connections["orders"].cursor() as cursor:
        cursor.execute("SELECT 1")  # a transaction of its own (autocommit)
        cursor.execute("SELECT pg_stat_force_next_flush()")  # this backend reports its counts now
    after = postgres_work()
    assert after["orders"]["commits"] > before["orders"]["commits"]
