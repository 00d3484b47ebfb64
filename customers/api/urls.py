"""The customers API; every path works with and without a trailing slash."""

from django.urls import re_path

from customers.api import views

ID = r"[0-9]+"

urlpatterns = [
    re_path(r"^api/auth/token/?$", views.TokenObtainView.as_view(), name="auth-token"),
    re_path(r"^api/auth/token/refresh/?$", views.TokenRefreshWithClaimsView.as_view(), name="auth-token-refresh"),
    re_path(r"^api/auth/logout/?$", views.LogoutView.as_view(), name="auth-logout"),
    re_path(r"^api/customers/?$", views.CustomerListCreateView.as_view(), name="customer-list"),
    re_path(r"^api/customers/me/?$", views.CustomerMeView.as_view(), name="customer-me"),
    re_path(rf"^api/customers/(?P<customer_id>{ID})/?$", views.CustomerDetailView.as_view(), name="customer-detail"),
    re_path(
        rf"^api/customers/(?P<customer_id>{ID})/notification-preferences/?$",
        views.NotificationPreferencesView.as_view(),
        name="customer-notification-preferences",
    ),
    re_path(
        rf"^api/brokers/(?P<broker_id>{ID})/customers/(?P<customer_id>{ID})/?$",
        views.BrokerAssignmentView.as_view(),
        name="broker-assignment",
    ),
    re_path(r"^api/tiers/?$", views.TierListView.as_view(), name="tier-list"),
]
