"""Writes of the customers context.

Each service changes the customers database (`default`) and writes its catalog event
(docs/events.md) to the outbox in the same transaction, so the other contexts' read models learn
of every customer, role, tier, assignment and preference change, or of none.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from brokage.auth import Role
from brokage.authentication import principal_changed
from brokage.errors import ConflictError, InvalidInput, NotFound
from brokage.outbox import outbox_write
from customers.events import AGGREGATE_TYPE, CONTEXT
from customers.models import EMPLOYEE_ROLES, BrokerAssignment, Customer, CustomerTier, NotificationPreference
from customers.selectors import customer_get_by_id

ALIAS = "default"

USERNAME_MAX_LENGTH = 150
EMAIL_MAX_LENGTH = 254
PHONE_MAX_LENGTH = 32
PHONE_PATTERN = re.compile(r"^\+?[0-9][0-9 ()\-]*$")
PREFERENCES_MAX_BYTES = 16 * 1024
UPDATABLE_FIELDS = frozenset({"email", "phone", "tier", "active", "role", "password"})
# What the API's access tokens carry as claims (brokage/authentication.py): a change makes them stale.
TOKEN_CLAIM_FIELDS = frozenset({"tier", "active", "role"})
REDACTED = "[redacted]"


# --- Customers -------------------------------------------------------------------------------------------


def customer_create(
    *,
    username: str,
    password: str | None,
    email: str,
    phone: str = "",
    tier_code: str = "STANDARD",
    role: str = Role.CUSTOMER,
    actor_id: int | None = None,
    is_superuser: bool = False,
    enforce_password_policy: bool = True,
) -> Customer:
    """Create a customer (or broker, or admin) with its notification preferences; emits CustomerCreated.

    `password=None` makes an account that cannot sign in with a password. Raises InvalidInput
    with field errors, or ConflictError when the username or email is taken.
    """
    if is_superuser:
        role = Role.ADMIN
    errors: dict[str, list[str]] = {}
    username = _clean_username(username, errors)
    email = _clean_email(email, errors)
    phone = _clean_phone(phone, errors)
    tier = _clean_tier(tier_code, errors)
    role = _clean_role(role, errors)
    customer = Customer(
        username=username,
        email=email,
        phone=phone,
        tier_id=getattr(tier, "tier_code", None),
        role=role,
        is_superuser=is_superuser,
        is_staff=role in EMPLOYEE_ROLES,
    )
    if password is None:
        customer.set_unusable_password()
    else:
        if enforce_password_policy:
            _check_password_policy(password, customer, errors)
        customer.set_password(password)
    if errors:
        raise InvalidInput(errors)
    _check_unique(username=username, email=email)
    try:
        with transaction.atomic(using=ALIAS):
            customer.save(using=ALIAS)
            NotificationPreference.objects.using(ALIAS).create(customer=customer)
            outbox_write(
                CONTEXT,
                "CustomerCreated",
                aggregate_type=AGGREGATE_TYPE,
                aggregate_id=customer.pk,
                payload=customer_snapshot(customer),
                actor_id=actor_id,
            )
    except IntegrityError:
        # Lost a race with a concurrent create of the same username or email.
        _check_unique(username=username, email=email)
        raise
    return customer


def customer_update(*, customer: Customer, actor_id: int | None, **fields: Any) -> Customer:
    """Change any of email, phone, tier (a tier code), active, role, password; emits CustomerUpdated.

    Only fields whose value really changes are written and reported in the event's `changes`
    ({field: {old, new}}; a password is reported, never its value). No change, no event.
    """
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"customer_update() cannot change: {', '.join(sorted(unknown))}")
    try:
        with transaction.atomic(using=ALIAS):
            current = _customer_for_update(customer.pk)
            changes = _apply_changes(current, fields)
            if not changes:
                return current
            current.save(using=ALIAS)
            if TOKEN_CLAIM_FIELDS & changes.keys():
                _principal_changed(current.pk)
            outbox_write(
                CONTEXT,
                "CustomerUpdated",
                aggregate_type=AGGREGATE_TYPE,
                aggregate_id=current.pk,
                payload={**customer_snapshot(current), "changes": changes},
                actor_id=actor_id,
            )
    except IntegrityError:
        _check_unique(email=fields.get("email", ""), exclude_id=customer.pk)
        raise
    return current


def _principal_changed(customer_id: int) -> None:
    """Mark the customer's access tokens stale: now, so the change is refused (rolled back) if the
    marker cannot be written, and again after commit, so a token issued while the transaction was
    still open (with the old values) is marked stale too."""
    principal_changed(customer_id)
    transaction.on_commit(lambda: principal_changed(customer_id), using=ALIAS, robust=True)


def customer_snapshot(customer: Customer) -> dict:
    """The customer fields every customer event carries (docs/events.md)."""
    return {
        "customer_id": customer.pk,
        "username": customer.username,
        "email": customer.email,
        "phone": customer.phone,
        "role": customer.effective_role,
        "tier_code": customer.tier_id,
        "active": customer.active,
    }


def _apply_changes(customer: Customer, fields: dict[str, Any]) -> dict[str, dict]:
    """Validate `fields`, set them on `customer` and return {field: {old, new}} of what changed."""
    errors: dict[str, list[str]] = {}
    changes: dict[str, dict] = {}
    old_role = customer.effective_role

    if "email" in fields:
        email = _clean_email(fields["email"], errors)
        if not errors.get("email") and email != customer.email:
            _check_unique(email=email, exclude_id=customer.pk)
            changes["email"] = {"old": customer.email, "new": email}
            customer.email = email
    if "phone" in fields:
        phone = _clean_phone(fields["phone"], errors)
        if not errors.get("phone") and phone != customer.phone:
            changes["phone"] = {"old": customer.phone, "new": phone}
            customer.phone = phone
    if "tier" in fields:
        tier = _clean_tier(getattr(fields["tier"], "tier_code", fields["tier"]), errors)
        if tier is not None and tier.tier_code != customer.tier_id:
            changes["tier"] = {"old": customer.tier_id, "new": tier.tier_code}
            customer.tier = tier
    if "active" in fields:
        active = fields["active"]
        if not isinstance(active, bool):
            errors["active"] = ["Must be true or false."]
        elif active != customer.active:
            changes["active"] = {"old": customer.active, "new": active}
            customer.active = active
    if "role" in fields:
        role = _clean_role(fields["role"], errors)
        if not errors.get("role") and role != old_role:
            _check_role_change_allowed(customer, old_role)
            changes["role"] = {"old": old_role, "new": role}
            customer.role = role
            # The role is the truth from now on: a demoted superuser stops being one.
            customer.is_superuser = customer.is_superuser and role == Role.ADMIN
            customer.is_staff = role in EMPLOYEE_ROLES
    if "password" in fields:
        password = fields["password"]
        if not isinstance(password, str):
            errors["password"] = ["Must be a string."]
        else:
            _check_password_policy(password, customer, errors)
            if not errors.get("password"):
                customer.set_password(password)
                changes["password"] = {"old": REDACTED, "new": REDACTED}
    if errors:
        raise InvalidInput(errors)
    return changes


def _check_role_change_allowed(customer: Customer, old_role: str) -> None:
    """Assignments only make sense between a broker and a customer; keep them from dangling."""
    if old_role == Role.BROKER and BrokerAssignment.objects.using(ALIAS).filter(broker=customer).exists():
        raise ConflictError({"role": ["This broker still has assigned customers; unassign them first."]})
    if old_role == Role.CUSTOMER and BrokerAssignment.objects.using(ALIAS).filter(customer=customer).exists():
        raise ConflictError({"role": ["This customer is still assigned to a broker; unassign it first."]})


def _customer_for_update(customer_id: int) -> Customer:
    try:
        return Customer.objects.using(ALIAS).select_for_update(of=("self",)).get(pk=customer_id)
    except Customer.DoesNotExist:
        raise NotFound(f"Customer {customer_id} not found.")


# --- Broker assignments ----------------------------------------------------------------------------------


def broker_assign(*, broker_id: int, customer_id: int, actor_id: int | None) -> BrokerAssignment:
    """Let a broker act for a customer; emits BrokerCustomerAssigned.

    NotFound for an unknown id, InvalidInput when the broker is not an active broker or the
    customer is not a customer, ConflictError when the assignment already exists.
    """
    broker = customer_get_by_id(customer_id=broker_id)
    customer = customer_get_by_id(customer_id=customer_id)
    if broker.effective_role != Role.BROKER:
        raise InvalidInput({"broker_id": [f"Customer {broker.pk} is not a broker."]})
    if not broker.active:
        raise InvalidInput({"broker_id": [f"Broker {broker.pk} is inactive."]})
    if customer.effective_role != Role.CUSTOMER:
        raise InvalidInput({"customer_id": [f"Only customers can be assigned to a broker; {customer.pk} is not one."]})
    try:
        with transaction.atomic(using=ALIAS):
            if BrokerAssignment.objects.using(ALIAS).filter(broker=broker, customer=customer).exists():
                raise ConflictError(f"Customer {customer.pk} is already assigned to broker {broker.pk}.")
            assignment = BrokerAssignment.objects.using(ALIAS).create(broker=broker, customer=customer)
            outbox_write(
                CONTEXT,
                "BrokerCustomerAssigned",
                aggregate_type=AGGREGATE_TYPE,
                aggregate_id=customer.pk,
                payload={"broker_id": broker.pk, "customer_id": customer.pk},
                actor_id=actor_id,
            )
    except IntegrityError:
        raise ConflictError(f"Customer {customer.pk} is already assigned to broker {broker.pk}.")
    return assignment


def broker_unassign(*, broker_id: int, customer_id: int, actor_id: int | None) -> None:
    """Stop a broker acting for a customer; emits BrokerCustomerUnassigned. NotFound if not assigned."""
    broker = customer_get_by_id(customer_id=broker_id)
    customer = customer_get_by_id(customer_id=customer_id)
    with transaction.atomic(using=ALIAS):
        deleted, _ = BrokerAssignment.objects.using(ALIAS).filter(broker=broker, customer=customer).delete()
        if not deleted:
            raise NotFound(f"Customer {customer.pk} is not assigned to broker {broker.pk}.")
        outbox_write(
            CONTEXT,
            "BrokerCustomerUnassigned",
            aggregate_type=AGGREGATE_TYPE,
            aggregate_id=customer.pk,
            payload={"broker_id": broker.pk, "customer_id": customer.pk},
            actor_id=actor_id,
        )


# --- Notification preferences ----------------------------------------------------------------------------


def notification_preferences_update(
    *,
    customer_id: int,
    actor_id: int | None,
    email_enabled: bool,
    sms_enabled: bool,
    push_enabled: bool,
    preferences: dict,
) -> NotificationPreference:
    """Replace a customer's notification preferences; emits NotificationPreferencesUpdated if anything changed."""
    errors: dict[str, list[str]] = {}
    for name, value in (("email_enabled", email_enabled), ("sms_enabled", sms_enabled), ("push_enabled", push_enabled)):
        if not isinstance(value, bool):
            errors[name] = ["Must be true or false."]
    if not isinstance(preferences, dict):
        errors["preferences"] = ["Must be an object."]
    else:
        try:
            encoded = json.dumps(preferences)
        except (TypeError, ValueError):
            errors["preferences"] = ["Must be plain JSON."]
        else:
            if len(encoded.encode()) > PREFERENCES_MAX_BYTES:
                errors["preferences"] = [f"Must be at most {PREFERENCES_MAX_BYTES} bytes of JSON."]
    if errors:
        raise InvalidInput(errors)
    customer = customer_get_by_id(customer_id=customer_id)
    wanted = {
        "email_enabled": email_enabled,
        "sms_enabled": sms_enabled,
        "push_enabled": push_enabled,
        "preferences": preferences,
    }
    with transaction.atomic(using=ALIAS):
        row, _created = (
            NotificationPreference.objects.using(ALIAS).select_for_update().get_or_create(customer_id=customer.pk)
        )
        if all(getattr(row, name) == value for name, value in wanted.items()):
            return row
        for name, value in wanted.items():
            setattr(row, name, value)
        row.save(using=ALIAS)
        outbox_write(
            CONTEXT,
            "NotificationPreferencesUpdated",
            aggregate_type=AGGREGATE_TYPE,
            aggregate_id=customer.pk,
            payload={"customer_id": customer.pk, **wanted},
            actor_id=actor_id,
        )
    return row


# --- Validation ------------------------------------------------------------------------------------------


def _clean_username(value, errors: dict) -> str:
    username = Customer.normalize_username(value.strip()) if isinstance(value, str) else ""
    if not username:
        errors["username"] = ["This field is required."]
    elif len(username) > USERNAME_MAX_LENGTH:
        errors["username"] = [f"Must be at most {USERNAME_MAX_LENGTH} characters."]
    else:
        try:
            UnicodeUsernameValidator()(username)
        except ValidationError as exc:
            errors["username"] = list(exc.messages)
    return username


def _clean_email(value, errors: dict) -> str:
    email = Customer.objects.normalize_email(value.strip()) if isinstance(value, str) else ""
    if not email:
        errors["email"] = ["This field is required."]
    elif len(email) > EMAIL_MAX_LENGTH:
        errors["email"] = [f"Must be at most {EMAIL_MAX_LENGTH} characters."]
    else:
        try:
            validate_email(email)
        except ValidationError:
            errors["email"] = ["Enter a valid email address."]
    return email


def _clean_phone(value, errors: dict) -> str:
    phone = value.strip() if isinstance(value, str) else None
    if phone is None:
        errors["phone"] = ["Must be a string."]
        return ""
    if len(phone) > PHONE_MAX_LENGTH:
        errors["phone"] = [f"Must be at most {PHONE_MAX_LENGTH} characters."]
    elif phone and not PHONE_PATTERN.match(phone):
        errors["phone"] = ["Enter digits, spaces, dashes or parentheses, optionally after a leading +."]
    return phone


def _clean_tier(tier_code, errors: dict) -> CustomerTier | None:
    tier = None
    if isinstance(tier_code, str) and tier_code:
        tier = CustomerTier.objects.using(ALIAS).filter(tier_code=tier_code.strip().upper()).first()
    if tier is None:
        codes = ", ".join(CustomerTier.objects.using(ALIAS).values_list("tier_code", flat=True))
        errors["tier"] = [f"Unknown tier {str(tier_code)[:32]!r}; one of {codes}."]
    return tier


def _clean_role(value, errors: dict) -> str:
    if value not in Role.values:
        errors["role"] = [f"Must be one of {', '.join(Role.values)}."]
        return Role.CUSTOMER
    return Role(value)


def _check_password_policy(password: str, customer: Customer, errors: dict) -> None:
    try:
        validate_password(password, user=customer)
    except ValidationError as exc:
        errors["password"] = list(exc.messages)


def _check_unique(*, username: str = "", email: str = "", exclude_id: int | None = None) -> None:
    """ConflictError with field errors when the username or email (case-insensitively) is taken."""
    others = Customer.objects.using(ALIAS).exclude(pk=exclude_id) if exclude_id else Customer.objects.using(ALIAS)
    errors = {}
    if username and others.filter(username=username).exists():
        errors["username"] = ["A customer with this username already exists."]
    if email and others.filter(email__iexact=email).exists():
        errors["email"] = ["A customer with this email already exists."]
    if errors:
        raise ConflictError(errors)
