from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from realtime.connected import register_connected_extra
        from realtime.contract.schema import integer

        from . import commands, inbox, jobs, receivers, rooms  # noqa: F401  (receivers connect on import)

        rooms.register()
        jobs.register()
        commands.register()
        # The unread count in ``connected`` (docs/notifications.md, *Inbox*).
        register_connected_extra(lambda user: {"unreadCount": inbox.unread_count(user)},
                                 {"unreadCount": integer(minimum=0, description="Unread notifications in the inbox")},
                                 name="notifications.unread")
