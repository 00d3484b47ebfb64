"""What the orders context adds to /metrics: how many orders sit in each status."""

from collections.abc import Iterable

from django.apps import apps
from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from brokage.metrics import register_collector


@register_collector
def orders_by_status() -> Iterable[Metric]:
    try:
        order_model = apps.get_model("orders", "Order")
    except LookupError:  # an installation without the orders table yet reports nothing
        return []
    family = GaugeMetricFamily("brokage_orders_by_status", "Orders in each status.", labels=["status"])
    counts = dict.fromkeys((value for value, _label in order_model._meta.get_field("status").choices or []), 0)
    # One GROUP BY over the status column; ARCHIVED rows are deleted after retention, so the table stays bounded.
    for row in order_model.objects.order_by().values("status").annotate(count=Count("pk")):
        counts[row["status"]] = row["count"]
    for status, count in sorted(counts.items()):
        family.add_metric([status], count)
    return [family]
