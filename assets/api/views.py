"""The assets endpoints: parse, call one service or selector, render."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import ListAPIView
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
from brokage.parsers import DecimalJSONParser


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
        return selectors.asset_list(actor=principal_of(self.request.user), **filters.validated_data)


@extend_schema(
    tags=["assets"],
    summary="The ledger of one balance, newest first (scoped like the balance; 404 if not yours).",
    parameters=[OpenApiParameter("asset_id", int, OpenApiParameter.PATH, description="The balance's id.")],
)
class AssetMovementListView(ListAPIView):
    serializer_class = AssetMovementSerializer

    def get_queryset(self):
        return selectors.asset_movement_list(
            actor=principal_of(self.request.user), asset_id=int(self.kwargs["asset_id"])
        )


class AssetDepositView(APIView):
    parser_classes = [DecimalJSONParser]  # JSON only: a form-encoded amount is a 415

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
