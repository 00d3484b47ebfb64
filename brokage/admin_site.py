"""The employees' console: one admin site for admins and brokers.

Business pages are grouped by context as Django groups them; the machinery each context keeps
(outboxes, processed-event ledgers, read models) is moved into one "Internal tables" group at the
end, read-only. A context whose records are documents, not models, adds its pages with
`register_view`: they appear in the app list like a model's page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.urls import path, reverse

INTERNAL_GROUP = "Internal tables"


@dataclass(frozen=True)
class ConsoleView:
    """A page of the console that is not a model's changelist (documents from the document store)."""

    app_label: str
    app_name: str
    slug: str
    title: str
    view: Callable
    may_view: Callable  # (request) -> bool

    @property
    def url_name(self) -> str:
        return f"{self.app_label}_{self.slug}"


class BrokageAdminSite(admin.AdminSite):
    site_header = "Brokage back office"
    site_title = "Brokage back office"
    index_title = "Employees' console"
    site_url = "/api/docs/"  # "View site": the API the console sits beside
    enable_nav_sidebar = False  # the lists need the width; Home and the breadcrumbs lead everywhere

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._views: list[ConsoleView] = []

    def register_view(
        self, *, app_label: str, app_name: str, slug: str, title: str, view: Callable, may_view: Callable
    ) -> None:
        """Serve `view` at /admin/<app_label>/<slug>/ (URL name `admin:<app_label>_<slug>`)."""
        self._views.append(ConsoleView(app_label, app_name, slug, title, view, may_view))

    def get_urls(self):
        views = [
            path(f"{item.app_label}/{item.slug}/", self.admin_view(item.view), name=item.url_name)
            for item in self._views
        ]
        return views + super().get_urls()

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        self._add_views(request, apps, app_label)
        if app_label is not None:
            return apps
        internal = []
        for app in apps:
            kept = []
            for model in app["models"]:
                model_admin = self._registry.get(model.get("model"))
                (internal if getattr(model_admin, "internal", False) else kept).append(model)
            for model in app["models"]:
                if model not in kept:
                    model["name"] = f"{model['name']} ({app['name']})"
            app["models"] = kept
        apps = [app for app in apps if app["models"]]
        if internal:
            apps.append(
                {
                    "name": INTERNAL_GROUP,
                    "app_label": "internal",
                    "app_url": reverse("admin:index", current_app=self.name) + "#internal",
                    "has_module_perms": True,
                    "models": sorted(internal, key=lambda model: model["name"].lower()),
                }
            )
        return apps

    def _add_views(self, request, apps: list[dict], app_label: str | None) -> None:
        for item in self._views:
            if (app_label is not None and app_label != item.app_label) or not item.may_view(request):
                continue
            entry = {
                "name": item.title,
                "object_name": item.slug,
                "perms": {"view": True},
                "admin_url": reverse(f"admin:{item.url_name}", current_app=self.name),
                "add_url": None,
                "view_only": True,
            }
            app = next((app for app in apps if app["app_label"] == item.app_label), None)
            if app is None:
                app = {
                    "name": item.app_name,
                    "app_label": item.app_label,
                    "app_url": entry["admin_url"],
                    "has_module_perms": True,
                    "models": [],
                }
                apps.append(app)
                apps.sort(key=lambda each: each["name"].lower())
            app["models"].append(entry)


class BrokageAdminConfig(AdminConfig):
    default_site = "brokage.admin_site.BrokageAdminSite"
