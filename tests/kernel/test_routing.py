"""Each context's tables live in its own database and nowhere else."""

import pytest
from django.apps import apps
from django.db import DatabaseError, connections, router

from brokage.db_router import ContextRouter

CONTEXT_TABLES = {
    "default": {"customers", "customer_tiers", "notification_preferences", "outbox_events", "auth_permission"},
    "orders": {"orders", "outbox_events", "processed_events"},
    "assets": {"assets", "asset_reservations", "outbox_events", "processed_events"},
    "processor": {"saga_instances", "processed_events", "matching_queue", "outbox_events"},
}


@pytest.mark.parametrize("alias", sorted(CONTEXT_TABLES))
def test_each_alias_holds_its_context_tables(alias):
    tables = set(connections[alias].introspection.table_names())
    assert CONTEXT_TABLES[alias] <= tables


def test_no_context_table_exists_in_another_database():
    owned = {"orders": "orders", "assets": "assets", "asset_reservations": "assets", "saga_instances": "processor"}
    owned |= {"matching_queue": "processor", "customers": "default", "customer_tiers": "default"}
    for alias in CONTEXT_TABLES:
        tables = set(connections[alias].introspection.table_names())
        for table, home in owned.items():
            if home != alias:
                assert table not in tables, f"{table} leaked into {alias}"


def test_models_route_to_their_own_alias():
    assert router.db_for_write(apps.get_model("orders", "Order")) == "orders"
    assert router.db_for_read(apps.get_model("assets", "Asset")) == "assets"
    assert router.db_for_write(apps.get_model("processor", "SagaInstance")) == "processor"
    assert router.db_for_write(apps.get_model("customers", "Customer")) == "default"


def test_a_model_cannot_be_read_or_written_through_another_alias():
    order_model = apps.get_model("orders", "Order")
    with pytest.raises(DatabaseError):
        list(order_model.objects.using("assets").all())
    asset_model = apps.get_model("assets", "Asset")
    with pytest.raises(DatabaseError):
        asset_model.objects.using("orders").create(customer_id=1, asset_name="TRY", size=1, usable_size=1)


def test_relations_across_contexts_are_refused():
    order = apps.get_model("orders", "Order")()
    customer = apps.get_model("customers", "Customer")()
    assert ContextRouter().allow_relation(order, customer) is False
    assert ContextRouter().allow_migrate("orders", "customers") is False
    assert ContextRouter().allow_migrate("default", "customers") is True
