"""WebSocket routes: each context may offer `<app>/routing.py` with `websocket_urlpatterns`."""

from importlib import import_module
from importlib.util import find_spec

from django.apps import apps


def websocket_urlpatterns() -> list:
    patterns: list = []
    for config in apps.get_app_configs():
        if find_spec(f"{config.name}.routing"):
            patterns += getattr(import_module(f"{config.name}.routing"), "websocket_urlpatterns", [])
    return patterns
