"""All HTTP endpoints of the add-on in one ``path("", include("django_oda_realtime.urls"))``
(docs/install.md): JWT login, refresh and logout under ``api/auth/``, the event contract under
``api/realtime/`` (staff, docs/contract.md), ``/metrics``, ``/healthz`` and ``/readyz`` at the
mount point (docs/observability.md). Each part can also be included on its own.
"""
from django.urls import include, path

urlpatterns = [
    path("api/auth/", include("django_oda_realtime.accounts.urls")),
    path("api/realtime/", include("django_oda_realtime.contract.urls")),
    path("", include("django_oda_realtime.ops.urls")),
]
