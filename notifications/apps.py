from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from . import receivers, rooms  # noqa: F401  (receivers connect on import)

        rooms.register()
