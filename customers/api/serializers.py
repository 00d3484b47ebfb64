"""Request parsing and response shapes of the customers API; no logic beyond types and lengths."""

from rest_framework import serializers
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

from brokage.auth import Role


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not know, so a typo is a 400 rather than a silently ignored change."""

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return attrs


class TokenObtainWithRoleSerializer(TokenObtainPairSerializer):
    """The JWT pair, with the signed-in person's role as a claim (clients show or hide admin tools)."""

    @classmethod
    def get_token(cls, user):
        token = super().get_token(user)
        token["role"] = user.effective_role
        return token


class TokenPairOutput(serializers.Serializer):
    access = serializers.CharField(help_text="Bearer token for the API; carries `user_id` and `role`.")
    refresh = serializers.CharField(help_text="POST it to /api/auth/token/refresh for a new access token.")


class CustomerCreateInput(StrictSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    email = serializers.EmailField(max_length=254)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    tier = serializers.CharField(max_length=16, required=False, default="STANDARD")
    role = serializers.ChoiceField(choices=Role.choices, required=False, default=Role.CUSTOMER)


class CustomerUpdateInput(StrictSerializer):
    email = serializers.EmailField(max_length=254, required=False)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    tier = serializers.CharField(max_length=16, required=False)
    active = serializers.BooleanField(required=False)
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    password = serializers.CharField(max_length=128, required=False, write_only=True, trim_whitespace=False)


class CustomerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()
    phone = serializers.CharField()
    tier = serializers.CharField(source="tier_id")
    role = serializers.ChoiceField(choices=Role.choices, source="effective_role")
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class BrokerAssignmentOutput(serializers.Serializer):
    broker_id = serializers.IntegerField()
    customer_id = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class NotificationPreferencesInput(StrictSerializer):
    email_enabled = serializers.BooleanField()
    sms_enabled = serializers.BooleanField()
    push_enabled = serializers.BooleanField()
    preferences = serializers.DictField(required=False, default=dict)


class NotificationPreferencesOutput(serializers.Serializer):
    customer_id = serializers.IntegerField()
    email_enabled = serializers.BooleanField()
    sms_enabled = serializers.BooleanField()
    push_enabled = serializers.BooleanField()
    preferences = serializers.DictField()


class TierOutput(serializers.Serializer):
    tier_code = serializers.CharField()
    tier_name = serializers.CharField()
    priority = serializers.IntegerField()
    rate_limit = serializers.IntegerField(help_text="API requests per minute.")
    monthly_fee = serializers.DecimalField(max_digits=12, decimal_places=2)
