from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/live/", include("dashboard.urls")),  # before admin/: the admin's catch-all would answer first
    path("admin/", admin.site.urls),
    path("shopify/", include("shopify_sync.urls")),
    path("api/notifications/", include("notifications.urls")),  # inbox and Web Push (docs/notifications.md)
    # api/auth/ (JWT), api/realtime/ (the event contract, staff only), /metrics, /healthz, /readyz
    path("", include("django_oda_realtime.urls")),
]
