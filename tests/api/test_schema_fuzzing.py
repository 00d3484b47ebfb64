"""Schema fuzzing: schemathesis generates requests from `/api/schema/` for every operation, as an
admin and as a customer, and every answer must be no 5xx and exactly what the schema says (status
code, content type, headers, body). It runs the WSGI application in-process, on the fast tier's
profile, bounded by `FUZZ_EXAMPLES` examples per operation and principal (a few minutes in all on
two cores); `derandomize` makes every run try the same requests, so a failure reproduces.

Not checked: that every schema-violating request is refused. Optional query parameters are read
leniently on purpose (an empty `read_status=` or a non-numeric `page_size` is ignored, as DRF's
pagination does), which schemathesis's `negative_data_rejection` would count against the API.
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from brokage.wsgi import application
from tests.customers.factories import PASSWORD, AdminFactory, CustomerFactory

FUZZ_EXAMPLES = int(os.environ.get("BROKAGE_FUZZ_EXAMPLES", "50"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture(params=["admin", "customer"])
def bearer(request, settings) -> tuple[dict, set[int]]:
    """A signed-in principal's Authorization header, and the people the fuzzer must not lock out."""
    settings.RATE_LIMIT_ENABLED = False  # the limits are tested elsewhere; here they would hide the API
    settings.AXES_ENABLED = False
    admin, customer = AdminFactory(), CustomerFactory()
    person = admin if request.param == "admin" else customer
    response = APIClient().post("/api/auth/token", {"username": person.username, "password": PASSWORD}, format="json")
    return {"Authorization": f"Bearer {response.json()['access']}"}, {admin.pk, customer.pk}


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, bearer):
    headers, principals = bearer
    # A generated PATCH or PUT of the fuzzer's own principals could deactivate them or change their
    # password, and every later example would be a 401: keep them as they are.
    changes_a_principal = (
        case.method in {"PATCH", "PUT"} and (case.path_parameters or {}).get("customer_id") in principals
    )
    if changes_a_principal:
        return
    case.call_and_validate(headers=headers, checks=CHECKS)
