"""Orders endpoints; absolute paths, each with and without a trailing slash."""

from django.urls import re_path

from orders.api.views import OrderCollectionView, OrderDetailView, OrderMatchView

urlpatterns = [
    re_path(r"^api/orders/?$", OrderCollectionView.as_view(), name="orders"),
    re_path(r"^api/orders/(?P<order_id>[^/]+)/match/?$", OrderMatchView.as_view(), name="order-match"),
    re_path(r"^api/orders/(?P<order_id>[^/]+)/?$", OrderDetailView.as_view(), name="order-detail"),
]
