from django.urls import re_path  # noqa: F401  (paths are added as the assets API grows)

urlpatterns: list = []
