"""What every context's REST API shares: error mapping, pagination, the OpenAPI entry points."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator as DjangoPaginator
from django.db import DatabaseError
from django.http import Http404, JsonResponse
from django.views.defaults import page_not_found
from redis.exceptions import RedisError
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from brokage.errors import DomainError

logger = logging.getLogger(__name__)


MAX_OFFSET = 2**31 - 1
RETRY_AFTER_SECONDS = 1  # what a 503 tells the client to wait before trying again


class CountFromShortPagePaginator(DjangoPaginator):
    """A paginator that knows the count without `COUNT(*)` when the page it reads is the last one.

    A page that comes back shorter than `per_page` (or an empty first page) ends the list, so the
    count is its offset plus its length. Only a full page, or an empty page past the first, asks the
    database to count. Most listings (a customer's orders over a month, say) fit on one page, so
    this saves a query per request; the answer is the same `{count, next, previous, results}`.
    """

    def page(self, number):
        if self.orphans or "count" in self.__dict__:
            return super().page(number)
        try:
            wanted = int(number) if not (isinstance(number, float) and not number.is_integer()) else 0
        except (TypeError, ValueError):
            wanted = 0
        bottom = (wanted - 1) * self.per_page
        if wanted < 1 or bottom > MAX_OFFSET:
            return super().page(number)  # raises the InvalidPage Django would (no absurd OFFSET is sent)
        rows = list(self.object_list[bottom : bottom + self.per_page])
        if 0 < len(rows) < self.per_page or (not rows and wanted == 1 and self.allow_empty_first_page):
            self.count = bottom + len(rows)
            return self._get_page(rows, wanted, self)
        # A full page (more may follow) or nothing past the first page (404 unless rows just arrived).
        return self._get_page(rows, self.validate_number(wanted), self)


class Pagination(PageNumberPagination):
    django_paginator_class = CountFromShortPagePaginator
    page_size_query_param = "page_size"
    max_page_size = 500


def exception_handler(exc, context):
    """Domain errors become `{"detail": ...}` with their status; nothing a client sends is a 500."""
    if isinstance(exc, DomainError):
        body = exc.detail if isinstance(exc.detail, dict) else {"detail": exc.detail}
        body = {**body, **exc.extra}
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return Response(body, status=exc.status_code, headers=headers)
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages})
    if isinstance(exc, Http404):
        return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    if isinstance(exc, (ValueError, OverflowError)):
        return Response({"detail": f"Invalid input: {exc}"}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, (DatabaseError, RedisError)):
        logger.exception("redis error" if isinstance(exc, RedisError) else "database error")
        # Transient (a database or Redis restarting, SQLite's lock lost to another process): try again.
        return Response(
            {"detail": "Service temporarily unavailable."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return None


class ServiceUnavailable(APIException):
    status_code = 503
    default_detail = "Service temporarily unavailable."


def not_found(request, exception=None):
    """`handler404`: under /api/ a path that matches no route (e.g. `/api/customers/abc`) is a JSON
    `{"detail": ...}` like every other API error; elsewhere Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
