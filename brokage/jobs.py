"""The daily lifecycle jobs, run by Celery beat through one guarded runner.

Each job is a management command: archive finished orders, age the audit trail, back everything
up, reconcile balances. The beat enqueues `brokage.run_job` once a day per job at the UTC time
its `BROKAGE_<JOB>_AT` setting names. The runner takes a Redis key per job and day before it
starts, so a second beat (or a redelivered task) finds the day taken and skips it; a failed run
gives the day back, so running it again by hand is possible. Every run's start, end, duration and
outcome are kept in Redis, where `/metrics` reads them in any process:

    brokage_job_last_run_timestamp_seconds{job}     brokage_job_last_success_timestamp_seconds{job}
    brokage_job_last_duration_seconds{job}          brokage_job_last_outcome{job, outcome}  (1 for the last)

Outcomes: `ok`, `failed` (an exception or a non-zero exit, e.g. reconcile's discrepancies),
`missing` (no such command in this installation). A run skipped because another had the day only
sets `brokage_job_last_skipped_timestamp_seconds{job}`.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from celery.schedules import crontab
from django.conf import settings
from django.core.management import call_command, get_commands
from prometheus_client.core import GaugeMetricFamily, Metric

from brokage.celery import app
from brokage.metrics import register_collector
from brokage.redis import get_redis

logger = logging.getLogger(__name__)

OUTCOMES = ("ok", "failed", "missing")
# The day's key outlives the day, so a beat restarted just after midnight cannot run yesterday's twice.
DAY_KEY_SECONDS = 36 * 3600
DETAIL_CHARS = 500


@dataclass(frozen=True)
class JobRun:
    job: str
    outcome: str
    started_at: datetime
    seconds: float
    detail: str = ""


def job_command(job: str) -> list[str]:
    """The management command and arguments a job runs (settings.LIFECYCLE_JOBS)."""
    return [str(argument) for argument in settings.LIFECYCLE_JOBS[job]["command"]]


def job_run(*, job: str, now: datetime | None = None) -> JobRun:
    """Run `job` unless a run already had today; record how it went."""
    started = now or datetime.now(UTC)
    redis = get_redis()
    day_key = f"brokage:job:{job}:{started.date().isoformat()}"
    if not redis.set(day_key, started.isoformat(), nx=True, ex=DAY_KEY_SECONDS):
        run = JobRun(job, "skipped", started, 0.0, f"already run on {started.date().isoformat()}")
        _record(run)
        return run
    clock = time.monotonic()
    command = job_command(job)
    output = io.StringIO()
    if command[0] not in get_commands():
        outcome, detail = "missing", f"no management command {command[0]!r} in this installation"
    else:
        try:
            call_command(*command, stdout=output, stderr=output)
            outcome, detail = "ok", _last_line(output.getvalue())
        except SystemExit as exit_:  # a command that ends with sys.exit(n), e.g. reconcile on a discrepancy
            outcome = "ok" if exit_.code in (0, None) else "failed"
            detail = f"exit {exit_.code}: {_last_line(output.getvalue())}"
        except Exception as exc:
            logger.exception("lifecycle job failed", extra={"job": job})
            outcome, detail = "failed", f"{type(exc).__name__}: {exc}"
    if outcome != "ok":
        redis.delete(day_key)  # a run by hand may try again today
    run = JobRun(job, outcome, started, time.monotonic() - clock, detail[:DETAIL_CHARS])
    _record(run)
    logger.info("lifecycle job finished", extra={"job": job, "outcome": outcome, "seconds": round(run.seconds, 3)})
    return run


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _record(run: JobRun) -> None:
    if run.outcome == "skipped":  # the run that had the day keeps its outcome
        fields = {"skipped_at": run.started_at.timestamp()}
    else:
        fields = {"outcome": run.outcome, "detail": run.detail, "started_at": run.started_at.timestamp()}
        fields["seconds"] = run.seconds
        if run.outcome == "ok":
            fields["succeeded_at"] = run.started_at.timestamp() + run.seconds
    get_redis().hset(f"brokage:job:last:{run.job}", mapping=fields)


def job_last_runs() -> dict[str, dict[str, str]]:
    """Every job's last recorded run (empty for a job that never ran), read from Redis."""
    redis = get_redis()
    runs = {}
    for job in settings.LIFECYCLE_JOBS:
        stored = redis.hgetall(f"brokage:job:last:{job}")
        runs[job] = {key.decode(): value.decode() for key, value in stored.items()}
    return runs


@app.task(name="brokage.run_job", ignore_result=True)
def run_job(job: str) -> str:
    return job_run(job=job).outcome


def beat_entries() -> dict:
    """One daily beat entry per job whose time is set (`HH:MM`, UTC); an empty time leaves it out."""
    entries = {}
    for job, spec in settings.LIFECYCLE_JOBS.items():
        at = spec.get("at") or ""
        if not at:
            continue
        hour, minute = (int(part) for part in at.split(":"))
        entries[f"job-{job}"] = {
            "task": "brokage.run_job",
            "schedule": crontab(hour=hour, minute=minute),
            "args": [job],
        }
    return entries


app.conf.beat_schedule = {**(app.conf.beat_schedule or {}), **beat_entries()}


@register_collector
def lifecycle_jobs() -> Iterable[Metric]:
    last_run = GaugeMetricFamily(
        "brokage_job_last_run_timestamp_seconds", "When the job's last run started (Unix time).", labels=["job"]
    )
    last_success = GaugeMetricFamily(
        "brokage_job_last_success_timestamp_seconds", "When the job last finished successfully.", labels=["job"]
    )
    duration = GaugeMetricFamily("brokage_job_last_duration_seconds", "How long the last run took.", labels=["job"])
    outcome = GaugeMetricFamily(
        "brokage_job_last_outcome",
        "1 for the outcome of the job's last run (ok, failed, missing), 0 for the others.",
        labels=["job", "outcome"],
    )
    skipped = GaugeMetricFamily(
        "brokage_job_last_skipped_timestamp_seconds", "When a run last found the day taken.", labels=["job"]
    )
    for job, run in job_last_runs().items():
        if "started_at" in run:
            last_run.add_metric([job], float(run["started_at"]))
            duration.add_metric([job], float(run["seconds"]))
        if "succeeded_at" in run:
            last_success.add_metric([job], float(run["succeeded_at"]))
        if "skipped_at" in run:
            skipped.add_metric([job], float(run["skipped_at"]))
        if "outcome" in run:
            for name in OUTCOMES:
                outcome.add_metric([job, name], 1 if run["outcome"] == name else 0)
    return [last_run, last_success, duration, outcome, skipped]
