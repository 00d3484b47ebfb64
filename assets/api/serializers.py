"""Request and response shapes of the assets API. Decimals are strings both ways; nothing is rounded."""

from rest_framework import serializers

from assets.models import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS, QUOTE_ASSET, Asset, AssetMovement

BIGINT_MAX = 2**63 - 1
ASSET_NAME_PATTERN = r"^[A-Z0-9][A-Z0-9._-]{0,31}$"


def amount_field(**kwargs) -> serializers.DecimalField:
    # DRF rejects (400) a value with more digits than the column holds; it never rounds on input.
    return serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, coerce_to_string=True, **kwargs
    )


def customer_id_field(**kwargs) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=BIGINT_MAX, **kwargs)


class StrictRegexField(serializers.RegexField):
    """A text field that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    default_error_messages = {"not_text": "A string is required."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_text")
        return super().to_internal_value(data)


def asset_name_field(**kwargs) -> serializers.RegexField:
    return StrictRegexField(
        ASSET_NAME_PATTERN,
        max_length=32,
        error_messages={"invalid": "Upper-case letters, digits, '.', '_' or '-', at most 32 characters."},
        **kwargs,
    )


class AssetSerializer(serializers.ModelSerializer):
    size = amount_field(read_only=True)
    usable_size = amount_field(read_only=True)

    class Meta:
        model = Asset
        fields = ["id", "customer_id", "asset_name", "size", "usable_size", "updated_at"]
        read_only_fields = fields


class AssetMovementSerializer(serializers.ModelSerializer):
    """One ledger line: what moved (deltas, negative when the balance went down) and what it left."""

    asset_id = serializers.IntegerField(read_only=True)
    size_delta = amount_field(read_only=True)
    usable_delta = amount_field(read_only=True)
    size_after = amount_field(read_only=True)
    usable_after = amount_field(read_only=True)

    class Meta:
        model = AssetMovement
        fields = [
            "id",
            "asset_id",
            "customer_id",
            "asset_name",
            "kind",
            "size_delta",
            "usable_delta",
            "size_after",
            "usable_after",
            "order_id",
            "reference",
            "created_at",
        ]
        read_only_fields = fields


class AssetFilterSerializer(serializers.Serializer):
    customer_id = customer_id_field(required=False)
    asset_name = asset_name_field(required=False)


class PositiveAmountMixin:
    def validate_amount(self, value):
        if value <= 0:
            raise serializers.ValidationError("Must be greater than zero.")
        return value


class DepositSerializer(PositiveAmountMixin, serializers.Serializer):
    customer_id = customer_id_field()
    amount = amount_field()
    asset_name = asset_name_field(required=False, default=QUOTE_ASSET)


class WithdrawSerializer(PositiveAmountMixin, serializers.Serializer):
    customer_id = customer_id_field()
    amount = amount_field()
    iban = StrictCharField(max_length=64, help_text="Validated (country format and check digits).")
    asset_name = StrictCharField(
        required=False, default=QUOTE_ASSET, max_length=32, help_text=f"Only {QUOTE_ASSET} can be withdrawn."
    )
