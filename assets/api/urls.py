from django.urls import re_path

from assets.api import views

urlpatterns = [
    re_path(r"^api/assets/?$", views.AssetListView.as_view(), name="asset-list"),
    re_path(
        r"^api/assets/(?P<asset_id>[0-9]{1,19})/movements/?$",
        views.AssetMovementListView.as_view(),
        name="asset-movement-list",
    ),
    re_path(r"^api/assets/deposit/?$", views.AssetDepositView.as_view(), name="asset-deposit"),
    re_path(r"^api/assets/withdraw/?$", views.AssetWithdrawView.as_view(), name="asset-withdraw"),
]
