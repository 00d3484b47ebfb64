"""The API docs work without internet: Swagger UI and ReDoc come from the installed
drf-spectacular-sidecar package, served as the project's own static files."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_docs_load_nothing_from_another_host(path):
    page = Client().get(path)

    assert page.status_code == 200
    html = page.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"(?:src|href)='([^']+)'", html)
    scripts = [asset for asset in assets if asset.endswith(".js")]
    assert scripts, html
    for asset in assets:
        assert not asset.startswith(("http://", "https://", "//")), asset
    for script in scripts:
        static_path = script.split("/static/", 1)[1]
        assert finders.find(static_path), f"{static_path} is not a static file of the project"


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_docs_point_at_the_schema(path):
    assert "/api/schema" in Client().get(path).content.decode()
