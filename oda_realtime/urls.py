from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/live/", include("dashboard.urls")),  # before admin/: the admin's catch-all would answer first
    path("admin/", admin.site.urls),
    path("api/auth/", include("django_oda_realtime.accounts.urls")),
    path("api/realtime/", include("django_oda_realtime.contract.urls")),  # the event contract, staff only (docs/contract.md)
    path("shopify/", include("shopify_sync.urls")),
    path("api/notifications/", include("notifications.urls")),  # inbox and Web Push (docs/notifications.md)
    path("", include("django_oda_realtime.ops.urls")),  # /metrics, /healthz, /readyz
]
