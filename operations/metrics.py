"""The last reconciliation's outcome in /metrics (read from Redis at scrape time)."""

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric

from brokage.metrics import register_collector
from operations.selectors import reconcile_last_result


@register_collector
def reconcile_outcome() -> Iterable[Metric]:
    found = GaugeMetricFamily(
        "brokage_reconcile_discrepancies",
        "Discrepancies the last reconciliation (manage.py reconcile, or the daily job) found, by check.",
        labels=["check"],
    )
    finished = GaugeMetricFamily(
        "brokage_reconcile_last_run_timestamp_seconds", "When the last reconciliation finished (Unix time)."
    )
    last = reconcile_last_result()
    if last is None:
        return []
    found.add_metric(["all"], last["discrepancies"])
    for check, count in sorted(last.get("by_check", {}).items()):
        found.add_metric([check], count)
    finished.add_metric([], last["finished_at"])
    return [found, finished]
