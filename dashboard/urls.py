"""The dashboard under ``/admin/live/`` (staff only, on the default admin site)."""
from django.contrib import admin
from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", admin.site.admin_view(views.live), name="live"),
    path("announce/", admin.site.admin_view(views.announce), name="announce"),
    path("token/", views.token, name="token"),
    path("stats/", views.stats, name="stats"),
]
