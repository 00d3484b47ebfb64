"""Read-only console pages over a document collection (the audit trail, notifications).

Documents have no Django model, so they get no changelist: a context's admin module registers a
view with `BrokageAdminSite.register_view` and renders its documents here, with a filter form
(customer, entity, action, dates) and pages of 50, newest first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta

from django import forms
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.template.response import TemplateResponse
from django.utils import timezone

from brokage.auth import principal_of
from brokage.errors import DomainError

PAGE_SIZE = 50


class DocumentFilterForm(forms.Form):
    """The filters every document page offers; a page adds its own fields."""

    customer_id = forms.IntegerField(required=False, min_value=1, label="Customer id")
    entity_id = forms.CharField(required=False, max_length=64, label="Entity id")
    start = forms.DateField(required=False, label="From (date)", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To (date, inclusive)", widget=forms.DateInput(attrs={"type": "date"}))

    def time_range(self) -> tuple[datetime | None, datetime | None]:
        data = self.cleaned_data
        zone = timezone.get_default_timezone()
        start = timezone.make_aware(datetime.combine(data["start"], time.min), zone) if data.get("start") else None
        end = data.get("end")
        end = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min), zone) if end else None
        return start, end


def may_view_everything(request) -> bool:
    """Document pages hold every customer's records: administrators only, as in the API."""
    return principal_of(request.user).is_admin


def document_page(
    request,
    admin_site,
    *,
    title: str,
    form: forms.Form,
    documents: Callable,  # (cleaned filters) -> DocumentSequence
    headers: list[str],
    row: Callable,  # (document) -> list of cells
):
    if not may_view_everything(request):
        raise PermissionDenied
    rows, page, error = [], None, None
    if form.is_valid():
        try:
            found = documents(form.cleaned_data)
        except DomainError as exc:
            error = str(exc.detail)
        else:
            page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("p"))
            rows = [row(document) for document in page.object_list]
    query = request.GET.copy()
    query.pop("p", None)
    context = {
        **admin_site.each_context(request),
        "title": title,
        "form": form,
        "headers": headers,
        "rows": rows,
        "page": page,
        "query": query.urlencode(),
        "error": error,
    }
    return TemplateResponse(request, "admin/brokage/documents.html", context)
