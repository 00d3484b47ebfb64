"""The customers context: people who sign in (customers, brokers, admins), their tiers and preferences.

`customers` is Django's user table (AUTH_USER_MODEL), so auth, admin and sessions share its
database (`default`).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser, PermissionsMixin, UserManager
from django.db import models
from django.utils import timezone

from brokage.auth import Role
from brokage.models import OutboxEventBase


class CustomerTier(models.Model):
    tier_code = models.CharField(max_length=16, primary_key=True)
    tier_name = models.CharField(max_length=64)
    priority = models.IntegerField(help_text="1 is served first in the matching queue.")
    rate_limit = models.IntegerField(help_text="API requests per minute.")
    monthly_fee = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))

    class Meta:
        db_table = "customer_tiers"
        ordering = ["priority"]

    def __str__(self) -> str:
        return f"{self.tier_name} ({self.tier_code})"


class CustomerManager(UserManager):
    """Every customer, however it is made (API, admin, `createsuperuser`), is made by `customer_create`,
    so its CustomerCreated event reaches the other contexts' read models.

    The service sits above the models (it imports them), so it is handed to the manager when the app
    is ready (`CustomersConfig.ready`) rather than imported from here.
    """

    customer_create: Callable[..., Customer] | None = None

    def get_queryset(self):
        # The tier rides along with every customer read: the rate limiter needs it on each request.
        return super().get_queryset().select_related("tier")

    def create_user(self, username, email=None, password=None, **extra_fields):
        return self._create_through_service(username, email, password, **extra_fields)

    def create_superuser(self, username, email=None, password=None, **extra_fields):
        extra_fields.setdefault("role", Role.ADMIN)
        extra_fields.setdefault("is_superuser", True)
        if extra_fields.get("is_superuser") is not True:
            raise ValueError("Superuser must have is_superuser=True.")
        return self._create_through_service(username, email, password, **extra_fields)

    def _create_through_service(self, username, email, password, **extra_fields):
        tier = extra_fields.pop("tier", None)
        tier_code = extra_fields.pop("tier_code", None) or getattr(tier, "tier_code", tier) or "STANDARD"
        # `is_staff` follows the role (employees sign in to the admin); Django passes it, we derive it.
        extra_fields.pop("is_staff", None)
        unknown = set(extra_fields) - {"role", "phone", "is_superuser", "actor_id"}
        if unknown:
            raise TypeError(f"create_user() got unexpected fields: {', '.join(sorted(unknown))}")
        return type(self).customer_create(
            username=username,
            password=password,
            email=email or "",
            tier_code=tier_code,
            # `createsuperuser` has already applied (or knowingly overridden) the password policy.
            enforce_password_policy=False,
            **extra_fields,
        )


# Employees sign in to the admin: admins for everything, brokers for their assigned customers.
EMPLOYEE_ROLES = frozenset({Role.ADMIN, Role.BROKER})

# What a broker may open in the admin. Each page then shows only the broker's assigned customers
# (the same scoping as the API), and what a broker may do there (match, deposit) is decided by the
# same services as in the API.
BROKER_ADMIN_PERMISSIONS = frozenset(
    {
        "customers.view_customer",
        "orders.view_order",
        "assets.view_asset",
        "assets.view_assetreservation",
    }
)


class Customer(AbstractBaseUser, PermissionsMixin):
    """A person who signs in; `role` says whether they trade for themselves, for others, or run the shop."""

    username = models.CharField(max_length=150, unique=True)
    # AbstractBaseUser calls it `password`; the table column is the seed's `password_hash`.
    password = models.CharField(max_length=128, db_column="password_hash")
    email = models.EmailField(unique=True)
    phone = models.CharField(max_length=32, blank=True, default="")
    tier = models.ForeignKey(
        CustomerTier, on_delete=models.PROTECT, db_column="tier", to_field="tier_code", default="STANDARD"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CUSTOMER)
    active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May sign in to the admin.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CustomerManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        db_table = "customers"
        ordering = ["id"]

    def __str__(self) -> str:
        return self.username

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def effective_role(self) -> str:
        return Role.ADMIN if self.is_superuser else self.role

    @property
    def rate_limit_per_minute(self) -> int:
        """The API requests per minute this customer's tier allows (read by `brokage.ratelimit`)."""
        return self.tier.rate_limit

    # ADMIN (everything) holds every admin permission, superuser or not.
    def has_perm(self, perm, obj=None) -> bool:
        if self.active and self.role == Role.ADMIN:
            return True
        if self.active and self.role == Role.BROKER and perm in BROKER_ADMIN_PERMISSIONS:
            return True
        return super().has_perm(perm, obj)

    def has_module_perms(self, app_label) -> bool:
        if self.active and self.role == Role.ADMIN:
            return True
        if (
            self.active
            and self.role == Role.BROKER
            and any(perm.startswith(f"{app_label}.") for perm in BROKER_ADMIN_PERMISSIONS)
        ):
            return True
        return super().has_module_perms(app_label)


class NotificationPreference(models.Model):
    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, related_name="notification_preferences", db_column="customer_id"
    )
    email_enabled = models.BooleanField(default=True)
    sms_enabled = models.BooleanField(default=False)
    push_enabled = models.BooleanField(default=True)
    preferences = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "notification_preferences"

    def __str__(self) -> str:
        return f"preferences of {self.customer_id}"


class BrokerAssignment(models.Model):
    """A broker acts for the customers assigned to it."""

    broker = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="assigned_customers")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="brokers")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "broker_customer_assignments"
        constraints = [models.UniqueConstraint(fields=["broker", "customer"], name="uniq_broker_customer")]

    def __str__(self) -> str:
        return f"{self.broker_id} -> {self.customer_id}"


class OutboxEvent(OutboxEventBase):
    class Meta(OutboxEventBase.Meta):
        pass
