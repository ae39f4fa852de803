from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "Realtime"

    def ready(self) -> None:
        from .ops import audit
        from .accounts import receivers
        from .permissions import register_builtin_rooms
        from .subscriptions import register_builtin_topics

        register_builtin_rooms()
        register_builtin_topics()
        receivers.connect()
        audit.connect()
