"""Shapes of the orders API: parsing requests into service arguments and rendering orders.

Validation of the order itself lives in `orders.services.order_create`; these only check types.
"""

from __future__ import annotations

import decimal
import re
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orders.models import ASSET_NAME_MAX_LENGTH, DECIMAL_MAX_DIGITS, DECIMAL_PLACES, Order, OrderSide, OrderStatus

MAX_BIGINT = 2**63 - 1


# Render the values exactly as the fields OrderSerializer declares (DRF's defaults) would.
_AMOUNT = serializers.DecimalField(max_digits=DECIMAL_MAX_DIGITS, decimal_places=DECIMAL_PLACES, read_only=True)
_AMOUNT_STEP = Decimal(1).scaleb(-DECIMAL_PLACES)
_AMOUNT_CONTEXT = decimal.Context(prec=DECIMAL_MAX_DIGITS)
_MOMENT = serializers.DateTimeField(read_only=True)


def _amount(value: Decimal) -> str:
    """What `_AMOUNT` renders (quantized to the scale, fixed-point text), without its per-call setup."""
    if not isinstance(value, Decimal):
        return _AMOUNT.to_representation(value)
    return f"{value.quantize(_AMOUNT_STEP, context=_AMOUNT_CONTEXT):f}"


class OrderSerializer(serializers.ModelSerializer):
    """An order. Amounts are decimal strings."""

    # The fields declare the shape (and the OpenAPI schema); `to_representation` is written out
    # because DRF's generic one, which builds and walks a field per column for every order, is most
    # of a listing page's CPU (docs/performance.md).

    size = serializers.DecimalField(max_digits=DECIMAL_MAX_DIGITS, decimal_places=DECIMAL_PLACES, read_only=True)
    price = serializers.DecimalField(max_digits=DECIMAL_MAX_DIGITS, decimal_places=DECIMAL_PLACES, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "client_order_id",
            "customer_id",
            "asset_name",
            "order_side",
            "size",
            "price",
            "status",
            "rejection_reason",
            "created_at",
            "updated_at",
            "version",
        ]
        read_only_fields = fields

    def to_representation(self, order: Order) -> dict:
        rejection_reason = order.rejection_reason
        return {
            "id": str(order.id),
            "client_order_id": str(order.client_order_id),
            "customer_id": int(order.customer_id),
            "asset_name": str(order.asset_name),
            "order_side": str(order.order_side),
            "size": _amount(order.size),
            "price": _amount(order.price),
            "status": str(order.status),
            "rejection_reason": None if rejection_reason is None else str(rejection_reason),
            "created_at": self._moment(order.created_at),
            "updated_at": self._moment(order.updated_at),
            "version": int(order.version),
        }

    @cached_property
    def _time_zone(self):
        return timezone.get_current_timezone()  # once per serializer, not per value

    def _moment(self, value: datetime) -> str:
        """ISO 8601 in the current time zone, "Z" for UTC: what DRF's DateTimeField renders."""
        if timezone.is_naive(value):
            return _MOMENT.to_representation(value)
        text = value.astimezone(self._time_zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": r"^[0-9]{1,12}(\.[0-9]{1,8})?$",
        "description": 'A decimal as a string, e.g. "12.50" (at most 8 decimal places).',
    }
)
class DecimalInputField(serializers.Field):
    """A decimal as a string (or an exact JSON number); passed on untouched for the service to check."""

    default_error_messages = {"invalid": 'Must be a decimal number, sent as a string such as "12.5".'}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int, Decimal)):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return str(value)


class OrderCreateSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_BIGINT,
        help_text="Defaults to the signed-in customer.",
    )
    asset_name = serializers.CharField(max_length=64, trim_whitespace=False, help_text="Upper-case ticker, not TRY.")
    order_side = serializers.ChoiceField(choices=OrderSide.choices)
    size = DecimalInputField()
    price = DecimalInputField()
    client_order_id = serializers.CharField(
        required=False, allow_null=True, max_length=255, trim_whitespace=False, help_text="Generated when omitted."
    )

    FIELD_NAMES = ("customer_id", "asset_name", "order_side", "size", "price", "client_order_id")


ORDER_SIDES = frozenset(OrderSide.values)


def _plain_text(value: object, max_length: int) -> bool:
    """A string DRF's CharField (no blank, no trimming) would pass on unchanged."""
    return isinstance(value, str) and 0 < len(value) <= max_length and value.isascii() and "\x00" not in value


def _plain_customer_id(value: object) -> bool:
    return value is None or (type(value) is int and 1 <= value <= MAX_BIGINT)


def _plain_amount(value: object) -> bool:
    return type(value) in (str, int, Decimal)


def order_create_arguments(data) -> dict:
    """`OrderCreateSerializer(data=data).validated_data`, without building a serializer for the usual
    body: a JSON object whose fields already have the plain types the serializer would pass through
    (which is what its per-request field copies cost). Anything else goes through the serializer,
    so every error reads exactly as it would."""
    if type(data) is dict:
        side, client_order_id = data.get("order_side"), data.get("client_order_id")
        if (
            _plain_customer_id(data.get("customer_id"))
            and _plain_text(data.get("asset_name"), 64)
            and isinstance(side, str)
            and side in ORDER_SIDES
            and _plain_amount(data.get("size"))
            and _plain_amount(data.get("price"))
            and (client_order_id is None or _plain_text(client_order_id, 255))
        ):
            return {name: data[name] for name in OrderCreateSerializer.FIELD_NAMES if name in data}
    serializer = OrderCreateSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


@extend_schema_field({"type": "string", "description": "A date (YYYY-MM-DD) or an ISO 8601 date-time."})
class DateOrDateTimeField(serializers.Field):
    """`YYYY-MM-DD` (a whole day) or an ISO 8601 date-time (UTC when no offset is given)."""

    default_error_messages = {"invalid": "Must be a date (YYYY-MM-DD) or an ISO 8601 date-time."}

    def to_internal_value(self, data):
        if not isinstance(data, str) or len(data) > 64:
            self.fail("invalid")
        text = data.strip()
        # An unencoded "+03:00" offset arrives in a query string as " 03:00".
        text = re.sub(r"(T\S+) (\d{2}:?\d{2})$", r"\1+\2", text)
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                day = parse_date(text)
                if day is not None:
                    return day
            moment = parse_datetime(text)
        except ValueError:
            moment = None
        if moment is None:
            self.fail("invalid")
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, timezone.get_default_timezone())
        return moment

    def to_representation(self, value):
        return value.isoformat()


class OrderFilterSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_BIGINT)
    start = DateOrDateTimeField(required=False)
    end = DateOrDateTimeField(required=False)
    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
    asset_name = serializers.RegexField(r"^[A-Z0-9][A-Z0-9.]*$", max_length=ASSET_NAME_MAX_LENGTH, required=False)
    order_side = serializers.ChoiceField(choices=OrderSide.choices, required=False)

    def validate(self, attrs):
        start, end = attrs.get("start"), attrs.get("end")
        if start is not None and end is not None and _moment(start) > _moment(end, end_of_day=True):
            raise serializers.ValidationError({"end": ["Must not be before start."]})
        return attrs


def _moment(value: date | datetime, *, end_of_day: bool = False) -> datetime:
    if isinstance(value, datetime):
        return value
    moment = datetime.combine(value, datetime.max.time() if end_of_day else datetime.min.time())
    return timezone.make_aware(moment, timezone.get_default_timezone())
