"""The audit trail in the console: every recorded change, read-only, straight from the document store.

Each entry links to the record it is about and to the person who made the change (`user_id` is the
event's actor: the employee who matched, deposited or changed a customer).
"""

import json
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin
from django.utils.html import format_html

from audit.selectors import audit_log_list
from brokage.admin_display import admin_url, customer_link, date_time_text, link, short_id
from brokage.admin_documents import DocumentFilterForm, document_page, may_view_everything
from brokage.auth import principal_of

# Where an audited entity's page is, by entity type.
ENTITY_PAGES = {"Order": "orders_order_change", "Customer": "customers_customer_change", "Asset": "assets_asset_change"}


class AuditFilterForm(DocumentFilterForm):
    entity_type = forms.CharField(required=False, max_length=64, label="Entity type")
    action = forms.CharField(required=False, max_length=64, label="Action (event type)")
    user_id = forms.CharField(required=False, max_length=32, label="By (user id)")
    field_order = ["customer_id", "entity_type", "entity_id", "action", "user_id", "start", "end"]


def _entity(entry: dict):
    entity_type, entity_id = entry.get("entity_type"), entry.get("entity_id")
    page = ENTITY_PAGES.get(entity_type)
    url = admin_url(page, entity_id) if page and entity_id else None
    text = short_id(entity_id) if entity_type == "Order" else entity_id
    return format_html("{} {}", entity_type or "", link(url, str(text or "–"), title=str(entity_id)))


# The fields of a new value worth a glance in the list; the whole document is in the tooltip.
SUMMARY_FIELDS = ("order_side", "size", "asset_name", "price", "amount", "reason", "username", "role", "tier_code")


def _change(entry: dict):
    """One line: what changed (`status: ORDER_CONFIRMED → MATCHED`), or the new record's gist."""
    old, new = entry.get("old_value") or {}, entry.get("new_value")
    if not isinstance(new, dict):
        return "–" if new is None else str(new)
    changed = [f"{key}: {old.get(key)} → {value}" for key, value in new.items() if key in old and old[key] != value]
    gist = changed or [f"{key} {_plain(new[key])}" for key in SUMMARY_FIELDS if new.get(key) not in (None, "")]
    return format_html('<span title="{}">{}</span>', json.dumps(new, default=str, indent=1), "; ".join(gist) or "–")


def _plain(value) -> str:
    """Decimals as events carry them (`1.00000000`), shown without the padding."""
    try:
        return (
            format(Decimal(str(value)).normalize(), "f")
            if isinstance(value, str) and value[:1].isdigit()
            else str(value)
        )
    except InvalidOperation:
        return str(value)


def _person(user_id):
    """Who made the change: an employee or customer (linked to their page), or the system."""
    if isinstance(user_id, int):
        return link(admin_url("customers_customer_change", user_id), f"user #{user_id}")
    return user_id or "system"


def audit_logs_view(request):
    form = AuditFilterForm(request.GET or {})

    def documents(filters: dict):
        start, end = form.time_range()
        return audit_log_list(
            actor=principal_of(request.user),
            customer_id=filters.get("customer_id"),
            entity_type=filters.get("entity_type") or None,
            entity_id=filters.get("entity_id") or None,
            action=filters.get("action") or None,
            user_id=filters.get("user_id") or None,
            start=start,
            end=end,
        )

    return document_page(
        request,
        admin.site,
        title="Audit trail",
        form=form,
        documents=documents,
        headers=["When", "Action", "Entity", "Customer", "By", "Change"],
        row=lambda entry: [
            date_time_text(entry.get("timestamp")),
            entry.get("action"),
            _entity(entry),
            customer_link((entry.get("metadata") or {}).get("customer_id")),
            _person(entry.get("user_id")),
            _change(entry),
        ],
    )


admin.site.register_view(
    app_label="audit",
    app_name="Audit",
    slug="audit_logs",
    title="Audit trail",
    view=audit_logs_view,
    may_view=may_view_everything,
)
