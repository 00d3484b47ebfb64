from datetime import UTC, date, datetime, time, timedelta

from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field({"type": "string", "description": "A date (YYYY-MM-DD) or an ISO 8601 date-time."})
class DateOrDateTimeField(serializers.Field):
    """`2025-01-31` or an ISO 8601 date-time (naive ones are UTC). As an `end`, a date includes the whole day."""

    def __init__(self, *, end_of_range: bool = False, **kwargs) -> None:
        self.end_of_range = end_of_range
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> datetime:
        text = str(data).strip()
        try:
            # A bare date first: `parse_datetime` would read "2025-01-31" as its midnight.
            day = parse_date(text)
            moment = None if day else parse_datetime(text)
        except ValueError:
            moment = day = None
        if moment is not None:
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if day is None:
            raise serializers.ValidationError("Use a date (YYYY-MM-DD) or an ISO 8601 date-time.")
        if self.end_of_range:
            day += timedelta(days=1)
        return datetime.combine(day, time.min, tzinfo=UTC)

    def to_representation(self, value):
        return value.isoformat() if isinstance(value, (date, datetime)) else value


class TimeRangeSerializer(serializers.Serializer):
    start = DateOrDateTimeField(required=False, help_text="From this instant (a date means its start).")
    end = DateOrDateTimeField(required=False, end_of_range=True, help_text="Before this instant (a date includes it).")
    user_id = serializers.CharField(required=False, max_length=64)

    def validate(self, attrs):
        if "start" in attrs and "end" in attrs and attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"end": ["Must not be before start."]})
        return attrs


class AuditLogFilterSerializer(TimeRangeSerializer):
    entity_type = serializers.CharField(required=False, max_length=64)
    entity_id = serializers.CharField(required=False, max_length=64)
    action = serializers.CharField(required=False, max_length=64, help_text="The event type, e.g. OrderMatched.")
    include_cold = serializers.BooleanField(
        required=False, default=False, help_text="Also read COLD entries (30–365 days); HOT and WARM by default."
    )


class TelemetryFilterSerializer(TimeRangeSerializer):
    endpoint = serializers.CharField(required=False, max_length=256, help_text="A route, e.g. /api/orders/{order_id}.")
    method = serializers.ChoiceField(
        choices=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"], required=False
    )
    status_code = serializers.IntegerField(required=False, min_value=100, max_value=599)


class AuditLogSerializer(serializers.Serializer):
    """An entry of the audit trail: who did what to which entity, with the values before and after."""

    # The schema's shape only: the views render the documents themselves.

    id = serializers.CharField()
    timestamp = serializers.DateTimeField()
    action = serializers.CharField()
    user_id = serializers.JSONField(allow_null=True)
    entity_type = serializers.CharField()
    entity_id = serializers.CharField()
    old_value = serializers.JSONField(allow_null=True)
    new_value = serializers.JSONField(allow_null=True)
    metadata = serializers.DictField()


class TelemetrySerializer(serializers.Serializer):
    id = serializers.CharField()
    timestamp = serializers.DateTimeField()
    endpoint = serializers.CharField(allow_null=True)
    method = serializers.CharField()
    response_time = serializers.FloatField(help_text="Milliseconds.")
    status_code = serializers.IntegerField()
    user_id = serializers.IntegerField(allow_null=True)
    headers = serializers.DictField(child=serializers.CharField())
