"""The one-row statements of `brokage.db` on PostgreSQL, where the dev and prod profiles bind
parameters on the server and prepare a statement after DB_PREPARE_THRESHOLD runs: the checks of
`tests/kernel/test_rows.py`, and the same read past the threshold."""

import uuid

import pytest
from django.conf import settings
from django.db import connections, transaction

from brokage.db import inserts_held, row_get
from processor.models import SagaInstance, SagaType
from tests.kernel.test_rows import (  # noqa: F401 (collected here too, against PostgreSQL)
    a_marker,
    a_saga,
    test_a_decimal_comes_back_exact,
    test_a_held_row_of_a_rolled_back_savepoint_is_not_written,
    test_a_held_row_outside_a_held_block_is_written_at_once,
    test_a_held_row_that_collides_fails_the_block_and_nothing_of_it_is_written,
    test_a_row_locked_for_update_is_read_inside_the_transaction,
    test_a_row_read_by_its_unique_key_equals_what_the_orm_reads,
    test_a_row_update_of_a_row_that_is_gone_says_so,
    test_a_row_update_writes_only_the_named_columns,
    test_a_versioned_update_moves_the_version_and_refuses_a_stale_copy,
    test_an_inserted_instance_is_stored_with_its_defaults_and_a_second_insert_is_refused,
    test_held_rows_are_written_together_when_the_block_ends,
    test_held_rows_of_every_column_type_come_back_as_written,
    test_no_row_is_none,
)

pytestmark = pytest.mark.integration


def test_the_databases_bind_on_the_server_and_prepare_repeated_statements():
    for alias in settings.RELATIONAL_CONTEXTS:
        options = settings.DATABASES[alias]["OPTIONS"]
        assert connections[alias].vendor == "postgresql"
        assert options["server_side_binding"] is True and options["prepare_threshold"] >= 1


def test_a_read_repeated_past_the_prepare_threshold_still_reads_each_row():
    sagas = [a_saga() for _ in range(3)]
    threshold = settings.DATABASES["processor"]["OPTIONS"]["prepare_threshold"]
    for round_ in range(threshold + 3):
        saga = sagas[round_ % len(sagas)]
        got = row_get(SagaInstance, "processor", saga_type=SagaType.ORDER, aggregate_id=saga.aggregate_id)
        assert (got.saga_id, got.payload) == (saga.saga_id, saga.payload)


def test_a_consumer_connection_keeps_one_prepared_insert_per_table_whatever_its_polls_hold():
    """Polls of 2 to 40 events, each size past the prepare threshold: the connection's backend holds
    one prepared multi-row INSERT of the markers, not one per poll size (each is server memory)."""
    threshold = settings.DATABASES["processor"]["OPTIONS"]["prepare_threshold"]
    for size in range(2, 41):
        for _ in range(threshold + 1):
            with transaction.atomic(using="processor"), inserts_held("processor"):
                for _event in range(size):
                    a_marker(uuid.uuid4(), hold=True)
    with connections["processor"].cursor() as cursor:
        cursor.execute(
            "SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s", ["%INSERT INTO%processed%"]
        )
        prepared = [row[0] for row in cursor.fetchall()]
    assert 1 <= len(prepared) <= 2, prepared  # the one-row INSERT and the multi-row one
