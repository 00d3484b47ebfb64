"""The employees' console for customers, tiers, broker assignments and notification preferences.

Every change an admin makes goes through the services, so it writes the same events as the API.
Customers are never deleted (no event says so; other contexts keep their history): deactivate them.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpResponseRedirect

from brokage.admin_display import (
    ConsoleAdmin,
    OutboxEventAdmin,
    admin_url,
    links_list,
)
from brokage.auth import Role, principal_of
from brokage.errors import DomainError
from customers import services
from customers.models import BrokerAssignment, Customer, CustomerTier, NotificationPreference, OutboxEvent
from customers.selectors import customer_list


class ServiceErrorsAsMessages:
    """A domain error from a service (a taken email, a role change that would strand assignments)
    rolls the admin's transaction back and comes back as an error message on the form, not a 500."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            return self._refused(request, exc)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as exc:
            return self._refused(request, exc)

    def _refused(self, request, exc: DomainError) -> HttpResponseRedirect:
        detail = exc.detail
        if isinstance(detail, dict):
            detail = "; ".join(f"{field}: {' '.join(map(str, problems))}" for field, problems in detail.items())
        self.message_user(request, f"Not saved: {detail}", level=messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())


class CustomerAddForm(forms.ModelForm):
    password = forms.CharField(widget=forms.PasswordInput, strip=False)

    class Meta:
        model = Customer
        fields = ["username", "email", "phone", "tier", "role"]

    def clean_password(self):
        password = self.cleaned_data["password"]
        password_validation.validate_password(password)
        return password


class CustomerChangeForm(forms.ModelForm):
    new_password = forms.CharField(
        widget=forms.PasswordInput, strip=False, required=False, help_text="Leave empty to keep the password."
    )

    class Meta:
        model = Customer
        fields = ["email", "phone", "tier", "role", "active"]


@admin.register(Customer)
class CustomerAdmin(ServiceErrorsAsMessages, ConsoleAdmin):
    list_display = ["id", "username", "email", "role", "tier", "active", "created_at"]
    list_display_links = ["id", "username"]
    list_filter = ["role", "tier", "active"]
    search_fields = ["=id", "username", "email", "phone"]
    search_help_text = "A username, e-mail, phone or customer id."
    ordering = ["id"]
    date_hierarchy = "created_at"
    readonly_fields = ["id", "username", "related_records", "is_superuser", "last_login", "created_at", "updated_at"]
    actions = ["activate_selected", "deactivate_selected"]

    def get_queryset(self, request):
        """Brokers see their assigned customers only (the API's scoping)."""
        return customer_list(actor=principal_of(request.user))

    def get_search_results(self, request, queryset, search_term):
        # `=id` on an integer column: only a number can match it.
        term = search_term.strip()
        if term.isdigit() and len(term) < 19:
            return super().get_search_results(request, queryset, term)
        return queryset.filter(
            models.Q(username__icontains=term) | models.Q(email__icontains=term) | models.Q(phone__icontains=term)
        ), False

    @admin.display(description="related records")
    def related_records(self, customer: Customer):
        return links_list(
            [
                ("orders", admin_url("orders_order_changelist", query={"customer_id": customer.pk})),
                ("balances", admin_url("assets_asset_changelist", query={"customer_id": customer.pk})),
                ("deposit", admin_url("assets_asset_deposit", query={"customer_id": customer.pk})),
                ("reservations", admin_url("assets_assetreservation_changelist", query={"q": customer.pk})),
                ("notifications", admin_url("notifications_notifications", query={"customer_id": customer.pk})),
                ("audit trail", admin_url("audit_audit_logs", query={"customer_id": customer.pk})),
            ]
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = CustomerChangeForm if obj is not None else CustomerAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["username", "password", "email", "phone", "tier", "role"]
        readonly = [name for name in self.readonly_fields if name not in {"id", "username", "related_records"}]
        return [
            "id",
            "username",
            "related_records",
            "email",
            "phone",
            "tier",
            "role",
            "active",
            "new_password",
            *readonly,
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return self.get_fields(request, obj)
        return self.readonly_fields if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            fields = {name: data[name] for name in form.changed_data if name in services.UPDATABLE_FIELDS}
            if data.get("new_password"):
                fields["password"] = data["new_password"]
            saved = services.customer_update(customer=obj, actor_id=request.user.pk, **fields)
        else:
            saved = services.customer_create(
                username=data["username"],
                password=data["password"],
                email=data["email"],
                phone=data.get("phone") or "",
                tier_code=data["tier"].tier_code,
                role=data["role"],
                actor_id=request.user.pk,
            )
        obj.pk = saved.pk

    @admin.action(description="Activate selected customers", permissions=["change"])
    def activate_selected(self, request, queryset):
        self._set_active(request, queryset, active=True)

    @admin.action(description="Deactivate selected customers", permissions=["change"])
    def deactivate_selected(self, request, queryset):
        self._set_active(request, queryset, active=False)

    def _set_active(self, request, queryset, *, active: bool) -> None:
        changed = 0
        for customer in queryset:
            if customer.active != active:
                services.customer_update(customer=customer, actor_id=request.user.pk, active=active)
                changed += 1
        verb = "activated" if active else "deactivated"
        self.message_user(request, f"{changed} customer(s) {verb}; {queryset.count() - changed} already were.")


@admin.register(CustomerTier)
class CustomerTierAdmin(ConsoleAdmin):
    list_display = ["tier_code", "tier_name", "priority", "rate_limit", "monthly_fee"]
    ordering = ["priority"]

    def get_readonly_fields(self, request, obj=None):
        return ["tier_code"] if obj is not None else []


class BrokerAssignmentForm(forms.ModelForm):
    class Meta:
        model = BrokerAssignment
        fields = ["broker", "customer"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # An existing assignment's page is read-only (never edited: unassign and assign again), and
        # its form then has no fields to narrow.
        if "broker" in self.fields:
            self.fields["broker"].queryset = Customer.objects.filter(role=Role.BROKER, active=True)
        if "customer" in self.fields:
            self.fields["customer"].queryset = Customer.objects.filter(role=Role.CUSTOMER)

    def clean(self):
        cleaned = super().clean()
        broker, customer = cleaned.get("broker"), cleaned.get("customer")
        if broker and customer and BrokerAssignment.objects.filter(broker=broker, customer=customer).exists():
            raise ValidationError("This customer is already assigned to this broker.")
        return cleaned


@admin.register(BrokerAssignment)
class BrokerAssignmentAdmin(ServiceErrorsAsMessages, ConsoleAdmin):
    form = BrokerAssignmentForm
    list_display = ["broker", "customer", "created_at"]
    list_filter = ["broker"]
    search_fields = ["broker__username", "customer__username", "customer__email"]
    list_select_related = ["broker", "customer"]
    autocomplete_fields = ["broker", "customer"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        assignment = services.broker_assign(
            broker_id=obj.broker_id, customer_id=obj.customer_id, actor_id=request.user.pk
        )
        obj.pk = assignment.pk

    def delete_model(self, request, obj):
        services.broker_unassign(broker_id=obj.broker_id, customer_id=obj.customer_id, actor_id=request.user.pk)

    def delete_queryset(self, request, queryset):
        for assignment in queryset:
            self.delete_model(request, assignment)


class NotificationPreferenceForm(forms.ModelForm):
    class Meta:
        model = NotificationPreference
        fields = ["email_enabled", "sms_enabled", "push_enabled", "preferences"]


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(ServiceErrorsAsMessages, ConsoleAdmin):
    form = NotificationPreferenceForm
    list_display = ["customer", "email_enabled", "sms_enabled", "push_enabled"]
    list_filter = ["email_enabled", "sms_enabled", "push_enabled"]
    search_fields = ["customer__username", "customer__email"]
    list_select_related = ["customer"]
    readonly_fields = ["customer"]

    def has_add_permission(self, request):
        return False  # made with the customer

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        services.notification_preferences_update(
            customer_id=obj.customer_id,
            actor_id=request.user.pk,
            email_enabled=obj.email_enabled,
            sms_enabled=obj.sms_enabled,
            push_enabled=obj.push_enabled,
            preferences=obj.preferences or {},
        )


admin.site.register(OutboxEvent, OutboxEventAdmin)
