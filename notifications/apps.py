from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from realtime import Broadcast

        from . import events, receivers, rooms  # noqa: F401  (receivers connect on import)

        rooms.register()
        # A product created or saved is user activity for staff (schema: schemas.py, one of user:activity's).
        Broadcast("inventory.Product", event=events.NOTIFICATION, type=events.USER_ACTIVITY, on=["create", "update"],
                  payload=lambda product, change: events.product_payload(product, change.created),
                  rooms=[rooms.STAFF])
