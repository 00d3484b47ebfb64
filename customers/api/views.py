"""The customers REST API: parse, call one selector or service, render."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from brokage.auth import IsAdminRole, principal_of
from brokage.errors import PermissionDenied
from customers import selectors, services
from customers.api.serializers import (
    BrokerAssignmentOutput,
    CustomerCreateInput,
    CustomerOutput,
    CustomerUpdateInput,
    LogoutInput,
    NotificationPreferencesInput,
    NotificationPreferencesOutput,
    TierOutput,
    TokenObtainWithRoleSerializer,
    TokenPairOutput,
    TokenRefreshWithClaimsSerializer,
)

TAGS = ["customers"]
CUSTOMER_ID = OpenApiParameter("customer_id", int, OpenApiParameter.PATH)
BROKER_ID = OpenApiParameter("broker_id", int, OpenApiParameter.PATH)


@extend_schema_view(
    post=extend_schema(
        tags=["auth"],
        responses={200: TokenPairOutput, 401: OpenApiResponse(description="Wrong credentials or inactive")},
    )
)
class TokenObtainView(TokenObtainPairView):
    """`{username, password}` -> `{access, refresh}`; inactive customers get 401."""

    serializer_class = TokenObtainWithRoleSerializer


@extend_schema_view(
    post=extend_schema(
        tags=["auth"],
        responses={
            200: TokenPairOutput,
            401: OpenApiResponse(description="Invalid, expired, used or revoked refresh token"),
        },
    )
)
class TokenRefreshWithClaimsView(TokenRefreshView):
    """`{refresh}` -> `{access, refresh}` with the person's current role and tier; the refresh token
    sent is revoked (each works once). Inactive people, and tokens older than a password change, get 401."""

    serializer_class = TokenRefreshWithClaimsSerializer


class LogoutView(APIView):
    """Revoke a refresh token: it can no longer mint access tokens. The refresh token is the credential."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'  # a bad refresh token is a 401, as on /api/auth/token/refresh

    @extend_schema(
        tags=["auth"],
        request=LogoutInput,
        responses={204: None, 401: OpenApiResponse(description="Invalid or expired refresh token")},
        summary="Sign out: revoke a refresh token",
    )
    def post(self, request):
        try:
            _valid(LogoutInput, request.data)
        except TokenError as error:
            raise InvalidToken(error.args[0]) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class CustomerListCreateView(GenericAPIView):
    serializer_class = CustomerOutput

    @extend_schema(tags=TAGS, responses=CustomerOutput(many=True), summary="Customers you may see")
    def get(self, request):
        customers = selectors.customer_list(actor=principal_of(request.user))
        page = self.paginate_queryset(customers)
        return self.get_paginated_response(CustomerOutput(page, many=True).data)

    @extend_schema(
        tags=TAGS,
        request=CustomerCreateInput,
        responses={201: CustomerOutput, 409: OpenApiResponse(description="Username or email taken")},
        summary="Create a customer, broker or admin (admins only)",
    )
    def post(self, request):
        actor = principal_of(request.user)
        if not actor.is_admin:
            raise PermissionDenied("Only administrators may create customers.")
        data = _valid(CustomerCreateInput, request.data)
        customer = services.customer_create(
            username=data["username"],
            password=data["password"],
            email=data["email"],
            phone=data["phone"],
            tier_code=data["tier"],
            role=data["role"],
            actor_id=actor.user_id,
        )
        return Response(CustomerOutput(customer).data, status=status.HTTP_201_CREATED)


class CustomerMeView(APIView):
    @extend_schema(tags=TAGS, responses=CustomerOutput, summary="The signed-in customer")
    def get(self, request):
        actor = principal_of(request.user)
        customer = selectors.customer_get(actor=actor, customer_id=actor.user_id)
        return Response(CustomerOutput(customer).data)


class CustomerDetailView(APIView):
    @extend_schema(tags=TAGS, parameters=[CUSTOMER_ID], responses=CustomerOutput, summary="One customer")
    def get(self, request, customer_id: int):
        customer = selectors.customer_get(actor=principal_of(request.user), customer_id=int(customer_id))
        return Response(CustomerOutput(customer).data)

    @extend_schema(
        tags=TAGS,
        parameters=[CUSTOMER_ID],
        request=CustomerUpdateInput,
        responses=CustomerOutput,
        summary="Change a customer (admins: any field; a customer: its own email and phone)",
    )
    def patch(self, request, customer_id: int):
        actor = principal_of(request.user)
        customer = selectors.customer_get(actor=actor, customer_id=int(customer_id))
        data = _valid(CustomerUpdateInput, request.data)
        forbidden = set(data) - selectors.customer_editable_fields(actor=actor, customer=customer)
        if forbidden:
            raise PermissionDenied(f"You may not change: {', '.join(sorted(forbidden))}.")
        customer = services.customer_update(customer=customer, actor_id=actor.user_id, **data)
        return Response(CustomerOutput(customer).data)


class BrokerAssignmentView(APIView):
    permission_classes = [IsAuthenticated, IsAdminRole]

    @extend_schema(
        tags=TAGS,
        parameters=[BROKER_ID, CUSTOMER_ID],
        request=None,
        responses={201: BrokerAssignmentOutput, 409: OpenApiResponse(description="Already assigned")},
        summary="Assign a customer to a broker (admins only)",
    )
    def post(self, request, broker_id: int, customer_id: int):
        assignment = services.broker_assign(
            broker_id=int(broker_id), customer_id=int(customer_id), actor_id=request.user.pk
        )
        return Response(BrokerAssignmentOutput(assignment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=TAGS,
        parameters=[BROKER_ID, CUSTOMER_ID],
        request=None,
        responses={204: None},
        summary="Unassign (admins only)",
    )
    def delete(self, request, broker_id: int, customer_id: int):
        services.broker_unassign(broker_id=int(broker_id), customer_id=int(customer_id), actor_id=request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class NotificationPreferencesView(APIView):
    @extend_schema(
        tags=TAGS,
        parameters=[CUSTOMER_ID],
        responses=NotificationPreferencesOutput,
        summary="A customer's notification preferences",
    )
    def get(self, request, customer_id: int):
        preferences = selectors.notification_preferences_get(
            actor=principal_of(request.user), customer_id=int(customer_id)
        )
        return Response(NotificationPreferencesOutput(preferences).data)

    @extend_schema(
        tags=TAGS,
        parameters=[CUSTOMER_ID],
        request=NotificationPreferencesInput,
        responses=NotificationPreferencesOutput,
        summary="Replace a customer's notification preferences",
    )
    def put(self, request, customer_id: int):
        actor = principal_of(request.user)
        selectors.notification_preferences_get(actor=actor, customer_id=int(customer_id))
        data = _valid(NotificationPreferencesInput, request.data)
        preferences = services.notification_preferences_update(
            customer_id=int(customer_id), actor_id=actor.user_id, **data
        )
        return Response(NotificationPreferencesOutput(preferences).data)


class TierListView(APIView):
    @extend_schema(tags=TAGS, responses=TierOutput(many=True), summary="Customer tiers and their limits")
    def get(self, request):
        return Response(TierOutput(selectors.tier_list(), many=True).data)


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
