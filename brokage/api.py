"""What every context's REST API shares: error mapping, pagination, the OpenAPI entry points."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError
from django.http import Http404
from redis.exceptions import RedisError
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from brokage.errors import DomainError

logger = logging.getLogger(__name__)


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


def exception_handler(exc, context):
    """Domain errors become `{"detail": ...}` with their status; nothing a client sends is a 500."""
    if isinstance(exc, DomainError):
        body = exc.detail if isinstance(exc.detail, dict) else {"detail": exc.detail}
        body = {**body, **exc.extra}
        return Response(body, status=exc.status_code)
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
        return Response({"detail": "Service temporarily unavailable."}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    return None


class ServiceUnavailable(APIException):
    status_code = 503
    default_detail = "Service temporarily unavailable."
