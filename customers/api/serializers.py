"""Request parsing and response shapes of the customers API; no logic beyond types and lengths."""

import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from rest_framework import exceptions, serializers
from rest_framework.exceptions import Throttled
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from brokage.auth import Role
from brokage.authentication import principal_claims


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not know, so a typo is a 400 rather than a silently ignored change."""

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return attrs


class TokenObtainWithRoleSerializer(TokenObtainPairSerializer):
    """Your username and password."""

    # The pair carries the signed-in person's role (clients show or hide admin tools) and the rest
    # of the principal claims the API authenticates by (`brokage.authentication`).

    def validate(self, attrs):
        self.read_at = time.time()  # before the user is read: see `principal_claims`
        try:
            data = super().validate(attrs)
        except exceptions.AuthenticationFailed:
            # Too many failures for this account or from this address (django-axes): say so, and when.
            if getattr(self.context.get("request"), "axes_locked_out", False):
                raise Throttled(
                    wait=settings.AXES_COOLOFF_TIME.total_seconds(),
                    detail="Too many failed sign-ins; try again later.",
                ) from None
            raise
        # A successful sign-in clears the failures counted against the account and address.
        user_logged_in.send(sender=type(self.user), request=self.context.get("request"), user=self.user)
        return data

    def get_token(self, user):
        token = super().get_token(user)
        for name, value in principal_claims(user, read_at=self.read_at).items():
            token[name] = value
        return token


class TokenRefreshWithClaimsSerializer(TokenRefreshSerializer):
    """A refresh token; each works once."""

    # The new access token's principal claims are read afresh rather than copied from the refresh
    # token, so a role, tier or activation change since sign-in reaches it; the used refresh token is
    # blacklisted. A refresh token issued before a password change is refused.

    default_error_messages = {
        "no_active_account": "No active account found for the given token.",
        "password_changed": "The password was changed since this token was issued; sign in again.",
        "used": "This refresh token was already used; sign in again.",
    }

    def validate(self, attrs):
        read_at = time.time()
        refresh = self.token_class(attrs["refresh"])  # checks signature, expiry and the blacklist
        user_id = refresh.payload.get(jwt_settings.USER_ID_CLAIM)
        user = get_user_model().objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first() if user_id else None
        if user is None or not jwt_settings.USER_AUTHENTICATION_RULE(user):
            raise AuthenticationFailed(self.error_messages["no_active_account"], "no_active_account")
        if refresh.payload.get(jwt_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
            raise AuthenticationFailed(self.error_messages["password_changed"], "password_changed")
        _blacklisted, first_use = refresh.blacklist()
        if not first_use:  # two refreshes with one token at once: only one of them gets a pair
            raise AuthenticationFailed(self.error_messages["used"], "token_not_valid")
        access = refresh.access_token
        for name, value in principal_claims(user, read_at=read_at).items():
            access[name] = value
        refresh.set_jti()
        refresh.set_exp()
        refresh.set_iat()
        refresh.outstand()
        return {"access": str(access), "refresh": str(refresh)}


class LogoutInput(serializers.Serializer):
    refresh = serializers.CharField(help_text="The refresh token to revoke.")

    def validate(self, attrs):
        RefreshToken(attrs["refresh"]).blacklist()
        return attrs


class TokenPairOutput(serializers.Serializer):
    access = serializers.CharField(help_text="Bearer token for the API; carries `user_id` and `role`.")
    refresh = serializers.CharField(
        help_text="POST it to /api/auth/token/refresh for a new pair (once: a used refresh token is revoked)."
    )


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
