"""What the processor context adds to /metrics: how long completed order sagas took.

A gauge histogram over the sagas COMPLETED in the last hour (created → last update), computed at
scrape time in one aggregate query served by idx_saga_state_updated (current_state, updated_at).
"""

from collections.abc import Iterable
from datetime import timedelta

from django.apps import apps
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from prometheus_client.core import GaugeHistogramMetricFamily, Metric

from brokage.metrics import register_collector

WINDOW = timedelta(hours=1)
BUCKETS_SECONDS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


@register_collector
def saga_duration() -> Iterable[Metric]:
    try:
        saga_model = apps.get_model("processor", "SagaInstance")
    except LookupError:
        return []
    duration = ExpressionWrapper(F("updated_at") - F("created_at"), output_field=DurationField())
    aggregates = {
        f"le_{i}": Count("pk", filter=Q(duration__lte=timedelta(seconds=b))) for i, b in enumerate(BUCKETS_SECONDS)
    }
    row = (
        saga_model.objects.filter(current_state="COMPLETED", updated_at__gte=timezone.now() - WINDOW)
        .annotate(duration=duration)
        .aggregate(total=Count("pk"), duration_sum=Sum("duration"), **aggregates)
    )
    buckets = [(str(float(b)), row[f"le_{i}"]) for i, b in enumerate(BUCKETS_SECONDS)]
    buckets.append(("+Inf", row["total"]))
    total_seconds = row["duration_sum"].total_seconds() if row["duration_sum"] else 0.0
    return [
        GaugeHistogramMetricFamily(
            "brokage_saga_duration_seconds",
            "Duration of the order sagas completed in the last hour, from start to completion.",
            buckets=buckets,
            gsum_value=total_seconds,
        )
    ]
