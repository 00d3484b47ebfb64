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


def _start_django(env_overrides):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, timeout=60
    )


def test_prod_refuses_to_start_without_a_secret_key():
    result = _start_django({"BROKAGE_PROFILE": "prod", "DEBUG": "false"})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_prod_refuses_to_start_with_debug_on():
    result = _start_django({"BROKAGE_PROFILE": "prod", "SECRET_KEY": "x" * 50, "DEBUG": "true"})
    assert result.returncode != 0
    assert "DEBUG" in result.stderr


def test_openapi_schema_and_docs_are_served():
    client = Client()
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"openapi" in schema.content
    assert client.get("/api/docs/").status_code == 200
