from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/auth/", include("realtime.urls")),
    path("shopify/", include("shopify_sync.urls")),
]
