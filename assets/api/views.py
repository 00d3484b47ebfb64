"""The assets endpoints: parse, call one service or selector, render."""

import codecs
import json
from decimal import Decimal

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ParseError
from rest_framework.generics import ListAPIView
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from assets import selectors, services
from assets.api.serializers import (
    AssetFilterSerializer,
    AssetMovementSerializer,
    AssetSerializer,
    DepositSerializer,
    WithdrawSerializer,
)
from brokage.auth import principal_of


class DecimalJSONParser(JSONParser):
    """JSON numbers with a fraction become Decimal, not float, so `"amount": 0.1` stays exactly 0.1."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            decoded_stream = codecs.getreader(encoding)(stream)
            return json.load(decoded_stream, parse_float=Decimal, parse_constant=_reject_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number")


@extend_schema(
    tags=["assets"],
    parameters=[
        OpenApiParameter("customer_id", int, description="Only this customer's balances."),
        OpenApiParameter("asset_name", str, description="Only this asset, e.g. TRY or AAPL."),
    ],
)
class AssetListView(ListAPIView):
    """Balances in the caller's scope: admins see all, brokers their assigned customers, customers their own."""

    serializer_class = AssetSerializer

    def get_queryset(self):
        filters = AssetFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.asset_list(principal=principal_of(self.request.user), **filters.validated_data)


@extend_schema(
    tags=["assets"],
    summary="The ledger of one balance, newest first (scoped like the balance; 404 if not yours).",
    parameters=[OpenApiParameter("asset_id", int, OpenApiParameter.PATH, description="The balance's id.")],
)
class AssetMovementListView(ListAPIView):
    serializer_class = AssetMovementSerializer

    def get_queryset(self):
        return selectors.asset_movement_list(
            principal=principal_of(self.request.user), asset_id=int(self.kwargs["asset_id"])
        )


class AssetDepositView(APIView):
    parser_classes = [DecimalJSONParser]

    @extend_schema(
        tags=["assets"],
        request=DepositSerializer,
        responses={200: AssetSerializer},
        summary="Credit a customer's balance (admins; the customer's brokers).",
    )
    def post(self, request):
        data = DepositSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        asset = services.asset_deposit(actor=principal_of(request.user), **data.validated_data)
        return Response(AssetSerializer(asset).data)


class AssetWithdrawView(APIView):
    parser_classes = [DecimalJSONParser]

    @extend_schema(
        tags=["assets"],
        request=WithdrawSerializer,
        responses={200: AssetSerializer},
        summary="Pay TRY out to an IBAN (admins; the customer itself). 409 when more than is usable.",
    )
    def post(self, request):
        data = WithdrawSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        asset = services.asset_withdraw(actor=principal_of(request.user), **data.validated_data)
        return Response(AssetSerializer(asset).data)
