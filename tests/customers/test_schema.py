"""The OpenAPI document describes every customers endpoint without a warning."""

from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from customers.api import urls

PATHS = {
    "/api/auth/token/": {"post"},
    "/api/auth/token/refresh/": {"post"},
    "/api/auth/logout/": {"post"},
    "/api/customers/": {"get", "post"},
    "/api/customers/me/": {"get"},
    "/api/customers/{customer_id}/": {"get", "patch"},
    "/api/customers/{customer_id}/notification-preferences/": {"get", "put"},
    "/api/brokers/{broker_id}/customers/{customer_id}/": {"post", "delete"},
    "/api/tiers/": {"get"},
}


def test_customers_endpoints_are_documented_without_warnings():
    GENERATOR_STATS.reset()
    schema = SchemaGenerator(patterns=urls.urlpatterns).get_schema(request=None, public=True)
    assert not GENERATOR_STATS, (dict(GENERATOR_STATS._warn_cache), dict(GENERATOR_STATS._error_cache))
    validate_schema(schema)
    assert {path: set(operations) for path, operations in schema["paths"].items()} == PATHS
    created = schema["paths"]["/api/customers/"]["post"]["responses"]["201"]["content"]["application/json"]
    assert created["schema"]["$ref"] == "#/components/schemas/CustomerOutput"
