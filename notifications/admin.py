"""Notifications in the console: what each customer was told and how it was delivered, read-only."""

from django import forms
from django.contrib import admin
from django.utils.html import format_html

from brokage.admin_display import admin_url, customer_link, date_time_text, link, short_id
from brokage.admin_documents import DocumentFilterForm, document_page, may_view_everything
from brokage.auth import principal_of
from notifications.selectors import notification_list_for_staff


class NotificationFilterForm(DocumentFilterForm):
    type = forms.CharField(required=False, max_length=64, label="Type")
    field_order = ["customer_id", "entity_id", "type", "start", "end"]


def _related(document: dict):
    entity = document.get("related_entity") or {}
    entity_type, entity_id = entity.get("type"), entity.get("id")
    if not entity_id:
        return "–"
    url = admin_url("orders_order_change", entity_id) if entity_type == "Order" else None
    return format_html("{} {}", entity_type or "", link(url, short_id(entity_id), title=str(entity_id)))


def _channels(document: dict) -> str:
    channels = document.get("channels") or {}
    return ", ".join(f"{name}: {(state or {}).get('status', '–')}" for name, state in sorted(channels.items()))


def notifications_view(request):
    form = NotificationFilterForm(request.GET or {})

    def documents(filters: dict):
        start, end = form.time_range()
        return notification_list_for_staff(
            actor=principal_of(request.user),
            customer_id=filters.get("customer_id"),
            entity_id=filters.get("entity_id") or None,
            notification_type=filters.get("type") or None,
            start=start,
            end=end,
        )

    return document_page(
        request,
        admin.site,
        title="Notifications",
        form=form,
        documents=documents,
        headers=["When", "Customer", "Type", "Title", "Related", "Read", "Channels"],
        row=lambda document: [
            date_time_text(document.get("created_at")),
            customer_link(document.get("customer_id")),
            document.get("type"),
            document.get("title"),
            _related(document),
            document.get("read_status"),
            _channels(document),
        ],
    )


admin.site.register_view(
    app_label="notifications",
    app_name="Notifications",
    slug="notifications",
    title="Notifications",
    view=notifications_view,
    may_view=may_view_everything,
)
