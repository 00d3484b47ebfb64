"""The last reconciliation's outcome in /metrics (read from Redis at scrape time, so the web process
shows what the command or the beat's worker found)."""

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric

from brokage.metrics import register_collector
from operations.selectors import reconcile_last_result


@register_collector
def reconcile_outcome() -> Iterable[Metric]:
    last = reconcile_last_result()
    if last is None:
        return []  # never run: no series rather than a misleading 0
    found = GaugeMetricFamily(
        "brokage_reconcile_discrepancies",
        "Discrepancies the last reconciliation (manage.py reconcile or the daily job) found.",
        value=last["discrepancies"],
    )
    by_check = GaugeMetricFamily(
        "brokage_reconcile_discrepancies_by_check",
        "Discrepancies the last reconciliation found, per check that found any.",
        labels=["check"],
    )
    for check, count in sorted(last.get("by_check", {}).items()):
        by_check.add_metric([check], count)
    finished = GaugeMetricFamily(
        "brokage_reconcile_last_run_timestamp_seconds",
        "When the last reconciliation finished (Unix time).",
        value=last["finished_at"],
    )
    return [found, by_check, finished]
