"""``include("django_oda_realtime.contract.urls")``, e.g. at ``api/realtime/`` (docs/contract.md)."""
from django.urls import path

from .views import ContractView

urlpatterns = [
    path("asyncapi.json", ContractView.as_view(format="json"), name="realtime_asyncapi_json"),
    path("asyncapi.yaml", ContractView.as_view(format="yaml"), name="realtime_asyncapi_yaml"),
    path("realtime.d.ts", ContractView.as_view(format="ts"), name="realtime_typescript"),
]
