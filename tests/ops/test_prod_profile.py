"""The prod profile is deployable: `check --deploy` is clean, the demo logins stay out, and
/metrics is not public (docs/security.md)."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from customers.models import Customer

ROOT = Path(__file__).resolve().parents[2]
PROD_ENVIRONMENT = {
    "BROKAGE_PROFILE": "prod",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "brokage.example.com",
    **{
        f"DATABASE_URL_{name}": f"postgresql://brokage:secret@db.internal:5432/brokage_{name.lower()}"
        for name in ("CUSTOMERS", "ORDERS", "ASSETS", "PROCESSOR")
    },
}


def test_the_prod_profile_passes_check_deploy_at_warning_level():
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "DEBUG"))}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**environment, **PROD_ENVIRONMENT},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_seed_demo_refuses_the_prod_profile_without_force(settings):
    settings.PROFILE = "prod"
    with pytest.raises(CommandError, match="--force"):
        call_command("seed_demo")
    assert not Customer.objects.filter(username="admin").exists()


@pytest.fixture
def private_metrics(settings):
    settings.METRICS_PUBLIC = False
    settings.METRICS_TOKEN = "scrape-secret"
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16"]


def test_metrics_refuse_strangers_on_prod(private_metrics):
    assert Client().get("/metrics").status_code == 403
    assert Client().get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    # A forged X-Forwarded-For is not an allowed network.
    assert Client().get("/metrics", headers={"X-Forwarded-For": "10.20.1.1"}).status_code == 403


def test_metrics_answer_the_token_and_the_allowed_network(private_metrics):
    with_token = Client().get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    from_network = Client(REMOTE_ADDR="10.20.3.4").get("/metrics")

    assert with_token.status_code == from_network.status_code == 200
    assert b"# TYPE" in with_token.content
