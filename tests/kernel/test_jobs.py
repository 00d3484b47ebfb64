"""The daily lifecycle jobs: in the beat at their configured times, run once a day however many beats
ask, and their last run and outcome in /metrics."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from brokage.celery import app
from brokage.jobs import beat_entries, job_run

MORNING = datetime(2026, 12, 5, 2, 15, tzinfo=UTC)


def metrics() -> str:
    return Client().get("/metrics").content.decode()


def sample(text: str, series: str) -> float:
    """The value of one series (`name{labels}`) in a /metrics text."""
    line = next(line for line in text.splitlines() if line.startswith(series + " "))
    return float(line.split()[-1])


def test_the_beat_runs_archival_tiering_backup_and_reconcile_daily_at_their_configured_times(settings):
    settings.LIFECYCLE_JOBS = {
        **settings.LIFECYCLE_JOBS,
        "backup": {**settings.LIFECYCLE_JOBS["backup"], "at": "04:05"},
    }

    entries = beat_entries()

    assert {entry["args"][0] for entry in entries.values()} == {
        "archive_orders",
        "audit_tiering",
        "backup",
        "reconcile",
    }
    backup = entries["job-backup"]["schedule"]
    assert (backup.hour, backup.minute) == ({4}, {5})
    assert "job-audit_tiering" in app.conf.beat_schedule  # registered with the kernel's own entries
    assert "relay-all-outboxes" in app.conf.beat_schedule


def test_a_job_left_without_a_time_is_not_scheduled(settings):
    settings.LIFECYCLE_JOBS = {**settings.LIFECYCLE_JOBS, "reconcile": {"at": "", "command": ["reconcile"]}}

    assert "job-reconcile" not in beat_entries()


def test_a_job_runs_once_a_day_however_many_beats_ask_and_metrics_show_its_last_run():
    first = job_run(job="audit_tiering", now=MORNING)
    second = job_run(job="audit_tiering", now=MORNING + timedelta(minutes=1))  # a second beat's task

    assert first.outcome == "ok" and "audit partitions" in first.detail
    assert second.outcome == "skipped"
    text = metrics()
    assert 'brokage_job_last_outcome{job="audit_tiering",outcome="ok"} 1.0' in text
    assert sample(text, 'brokage_job_last_run_timestamp_seconds{job="audit_tiering"}') == MORNING.timestamp()
    assert 'brokage_job_last_skipped_timestamp_seconds{job="audit_tiering"}' in text
    assert job_run(job="audit_tiering", now=MORNING + timedelta(days=1)).outcome == "ok"  # the next day runs


def test_a_failed_job_is_reported_and_may_run_again_the_same_day(settings):
    settings.LIFECYCLE_JOBS = {
        **settings.LIFECYCLE_JOBS,
        "archive_orders": {"at": "01:30", "command": ["archive_orders", "--batch-size", "0"]},
    }

    failed = job_run(job="archive_orders", now=MORNING)

    assert failed.outcome == "failed" and "--batch-size" in failed.detail
    assert 'brokage_job_last_outcome{job="archive_orders",outcome="failed"} 1.0' in metrics()
    settings.LIFECYCLE_JOBS["archive_orders"] = {"at": "01:30", "command": ["archive_orders", "--no-progress"]}
    assert job_run(job="archive_orders", now=MORNING + timedelta(minutes=5)).outcome == "ok"


@pytest.mark.parametrize("command", [["no_such_command"]])
def test_a_job_whose_command_this_installation_lacks_is_reported_missing(settings, command):
    settings.LIFECYCLE_JOBS = {**settings.LIFECYCLE_JOBS, "reconcile": {"at": "03:30", "command": command}}

    assert job_run(job="reconcile", now=MORNING).outcome == "missing"
    assert 'brokage_job_last_outcome{job="reconcile",outcome="missing"} 1.0' in metrics()


def test_the_beat_task_runs_the_job():
    from brokage.jobs import run_job

    assert run_job.delay("audit_tiering").get() == "ok"
