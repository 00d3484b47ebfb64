"""What an operator reads: one JSON access line per request, with the client's correlation id and
millisecond timestamps; bad command-line input told in one line with exit status 2."""

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from brokage.observability import JsonFormatter

ROOT = Path(__file__).resolve().parents[2]


def access_records(caplog):
    return [record for record in caplog.records if record.name == "brokage.access"]


def test_a_request_leaves_one_access_line_with_the_correlation_id_it_was_sent(client, caplog):
    with caplog.at_level(logging.INFO):
        response = client.get("/api/tiers", HTTP_X_CORRELATION_ID="support-ticket-4711")

    (record,) = access_records(caplog)
    line = json.loads(JsonFormatter().format(record))
    assert line["correlation_id"] == "support-ticket-4711" == response["X-Correlation-ID"]
    assert (line["method"], line["path"], line["status_code"]) == ("GET", "/api/tiers", response.status_code)
    assert line["message"].startswith("GET /api/tiers 401 ")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    # Neither Django's request warnings nor a server's own access line repeat it.
    assert not [r for r in caplog.records if r.name in {"django.request", "django.server", "django.channels.server"}]


def test_the_startup_tasks_do_not_log_each_success():
    assert logging.getLogger("celery.app.trace").getEffectiveLevel() >= logging.WARNING


@pytest.mark.parametrize(
    "arguments",
    [
        ["archive_orders", "--as-of", "notadate"],
        ["archive_orders", "--batch-size", "0"],
        ["audit_tiering", "--as-of", "yesterday"],
        ["retry_stuck_sagas", "--older-than", "-1"],
    ],
)
def test_bad_command_line_input_is_one_line_and_exit_status_2(arguments):
    result = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env={**os.environ, "BROKAGE_PROFILE": "test"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if not line.startswith("{")]  # JSON logs aside
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"manage.py {arguments[0]}: error: argument {arguments[1]}")
    assert "Traceback" not in result.stderr
