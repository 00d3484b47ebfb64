import pytest
from django.test import Client


def test_liveness_answers():
    assert Client().get("/health/live").json() == {"status": "up"}


@pytest.mark.parametrize("path", ["/health/ready", "/health/ready/"])
def test_readiness_reports_every_component(path):
    body = Client().get(path).json()
    assert body["status"] == "up"
    assert {
        "database:default",
        "database:orders",
        "database:assets",
        "database:processor",
        "documents",
        "redis",
    } <= set(body["components"])
