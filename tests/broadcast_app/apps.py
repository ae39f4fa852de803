"""The app of docs/extending.md: ``ready()`` is the tutorial, ``live.register()`` the rest of the worked app."""
from django.apps import AppConfig


class ReturnsConfig(AppConfig):
    name = "tests.broadcast_app"
    label = "returns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # -- tutorial: start
        from django_oda_realtime import Broadcast
        from django_oda_realtime.contract.schema import ID, obj, string

        from .models import Return

        Broadcast(
            Return,
            event="returns:statusChanged",
            on=["update"],
            fields=["status"],
            payload=lambda ret, change: {"returnId": str(ret.pk), "status": ret.status,
                                         "previousStatus": change.old["status"]},
            rooms=["returns:all"],
            join={"returns:all": "returns.view_return"},
            topic="returns",
            schema=obj({"returnId": ID, "status": string(), "previousStatus": string()}),
        )
        # -- tutorial: end
        from . import live

        live.register()
