from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from django_oda_realtime import Broadcast
        from django_oda_realtime.connected import register_connected_extra
        from django_oda_realtime.contract.schema import integer

        from . import commands, events, inbox, jobs, receivers, rooms  # noqa: F401  (receivers connect on import)

        rooms.register()
        jobs.register()
        commands.register()
        # A product created or saved is user activity for staff (schema: schemas.py, one of user:activity's).
        Broadcast("inventory.Product", event=events.NOTIFICATION, type=events.USER_ACTIVITY, on=["create", "update"],
                  payload=lambda product, change: events.product_payload(product, change.created),
                  rooms=[rooms.STAFF])
        # The unread count in ``connected`` (docs/notifications.md, *Inbox*).
        register_connected_extra(lambda user: {"unreadCount": inbox.unread_count(user)},
                                 {"unreadCount": integer(minimum=0, description="Unread notifications in the inbox")},
                                 name="notifications.unread")
