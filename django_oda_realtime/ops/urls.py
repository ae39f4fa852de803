"""Operations endpoints, mounted at the site root: ``/metrics``, ``/healthz``, ``/readyz``."""
from django.urls import path

from .health import healthz, readyz
from .metrics_view import metrics_view

urlpatterns = [
    path("metrics", metrics_view, name="realtime_metrics"),
    path("healthz", healthz, name="realtime_healthz"),
    path("readyz", readyz, name="realtime_readyz"),
]
