from django.urls import re_path  # noqa: F401  (paths are added as the orders API grows)

urlpatterns: list = []
