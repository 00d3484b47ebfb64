"""Sign-in lockouts (django-axes) enter the audit trail.

django-axes counts failed sign-ins per account and per client IP on every form and endpoint that
calls Django's `authenticate` (`/api/auth/token`, `/admin/login/`, `/api-auth/login/`) and refuses
further attempts for a while (settings: "Sign-in lockout"). Each lockout is published here as a
`SignInLockedOut` event, which the audit context records like any other.
"""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from axes.signals import user_locked_out
from django.db import transaction
from django.dispatch import receiver

from brokage.outbox import outbox_write
from customers.events import AGGREGATE_TYPE, CONTEXT, SIGN_IN_LOCKED_OUT
from customers.models import Customer

ALIAS = "default"


def sign_in_lockout_record(*, username: str | None, ip_address: str | None) -> None:
    """Publish that sign-in for `username` / from `ip_address` is locked out."""
    customer_id = Customer.objects.filter(username=username).values_list("pk", flat=True).first() if username else None
    with transaction.atomic(using=ALIAS):
        outbox_write(
            CONTEXT,
            SIGN_IN_LOCKED_OUT.name,
            aggregate_type=AGGREGATE_TYPE,
            aggregate_id=customer_id if customer_id is not None else (username or ip_address or "unknown"),
            payload={"username": username, "ip_address": ip_address, "customer_id": customer_id},
            actor_id=customer_id,
        )


@receiver(user_locked_out, dispatch_uid="customers.sign_in_locked_out")
def on_user_locked_out(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    sign_in_lockout_record(username=username, ip_address=ip_address)


class SignInLockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check, first in `AUTHENTICATION_BACKENDS`. A sign-in without a request
    (a test client's `login()`, a shell) has no client address to count or lock out, so it is let
    through to the next backend instead of refused."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
